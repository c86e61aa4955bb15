#
# Copyright 2026 gr-largesc authors.
# SPDX-License-Identifier: GPL-3.0-or-later
#
"""largesc_tx: the transmit chain as one block (audio in, packets out)."""

from gnuradio import gr

from .. import largesc_python as _core
from ..codec import mimi_codec as C
from ..common import params as P
from ..uep.adaptive_controller import adaptive_controller
from ..codec.mimi_encoder import mimi_encoder
from ..uep import uep_plan


class largesc_tx(gr.hier_block2):
    """LargeSC transmitter: mimi_encoder -> adaptive_controller -> uep_packetizer.

    Input: float audio stream at `sample_rate`. Message ports: `out` packet
    PDUs (u8, one per 80 ms; hand them to a framer/modulator or an
    erasure_channel), `feedback` (in) loss reports from largesc_rx's
    `feedback` port, carried over a return channel (closed loop).

    budget: token payload bit/s (550..2060); the encoder sends as many
    codebooks as the budget has token slots. max_offset: D (0..2), copies of
    earlier frames ride up to D packets later; set the receiver's playout
    delay to the same value. feedback_timeout: seconds without a valid loss
    report after which the controller plans for a conservative loss model
    (0 = never; adaptive_controller, docs/uep_controller.md "Feedback
    ageing")."""

    def __init__(self, sample_rate=16000, budget=1100.0, loss_rate=0.1, mean_burst=1.0,
                 max_offset=1, mode="adaptive", weights="hf", crc=False, threads=0,
                 codec_mode="exact", device="auto", feedback_timeout=uep_plan.FEEDBACK_TIMEOUT):
        C.check_rate(sample_rate)
        uep_plan.check_budget(budget)
        uep_plan.check_loss_parameters(loss_rate, mean_burst)
        max_offset = P.check_int("max_offset", max_offset, 0, uep_plan.MAX_OFFSET)
        P.check_choice("mode", mode, uep_plan.MODES)
        P.check_str("weights", weights)
        crc = P.check_bool("crc", crc)
        threads = P.check_int("threads", threads, 0, 1024)
        P.check_choice("codec_mode", codec_mode, C.MODES)
        feedback_timeout = uep_plan.check_feedback_timeout(feedback_timeout)
        gr.hier_block2.__init__(self, "largesc_tx", gr.io_signature(1, 1, gr.sizeof_float),
                                gr.io_signature(0, 0, 0))
        self.message_port_register_hier_in("feedback")
        self.message_port_register_hier_out("out")
        n_q = min(32, uep_plan.slots_for_budget(budget))
        self.encoder = mimi_encoder(sample_rate=sample_rate, n_q=n_q, weights=weights,
                                    device=device, threads=threads, mode=codec_mode, send_eos=False)
        self.controller = adaptive_controller(budget=budget, loss_rate=loss_rate,
                                              mean_burst=mean_burst, max_offset=max_offset, mode=mode,
                                              feedback_timeout=feedback_timeout)
        self.packetizer = _core.uep_packetizer(crc)
        self.connect(self, self.encoder)
        self.msg_connect(self.encoder, "out", self.controller, "in")
        self.msg_connect(self.controller, "out", self.packetizer, "in")
        self.msg_connect(self.packetizer, "out", self, "out")
        self.msg_connect(self, "feedback", self.controller, "feedback")

    def set_budget(self, budget):
        """Changes the bit-rate budget; the encoder follows with the codebook count."""
        self.controller.set_budget(budget)
        self.encoder.set_n_q(min(32, uep_plan.slots_for_budget(budget)))

    def set_loss(self, loss_rate, mean_burst):
        self.controller.set_loss(loss_rate, mean_burst)

    def frames_out(self):
        return self.encoder.frames_out()

    def packets_out(self):
        return self.packetizer.packets_out()
