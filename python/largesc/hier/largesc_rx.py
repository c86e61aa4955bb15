#
# Copyright 2026 gr-largesc authors.
# SPDX-License-Identifier: GPL-3.0-or-later
#
"""largesc_rx: the receive chain as one block (packets in, audio out)."""

from gnuradio import gr

from .. import largesc_python as _core
from ..codec import mimi_codec as C
from ..common import params as P
from ..codec.mimi_decoder import MAX_PRIME_S, mimi_decoder
from ..common.frame_pdu import MAX_FRAME_INDEX
from ..common.latency import LATE_PACKETS
from ..uep import playout

RECOVERY = ("hold", "lm", "moshi", "none")


class largesc_rx(gr.hier_block2):
    """LargeSC receiver: uep_depacketizer -> token_recovery -> mimi_decoder.

    Message ports: `in` packet PDUs (u8; lost packets simply never arrive),
    `flush` (in) plays out the frames waiting for copies at end of stream,
    `feedback` (out) loss rate and mean burst for largesc_tx's `feedback`,
    `latency` (out) one message per timed frame as it leaves (mimi_decoder's
    latency port plus late_packets; link_monitor's `latency` input).
    Output: float audio at `sample_rate`, exactly sample_rate x 0.08 samples
    per frame from the first packet received, lost frames included (with the
    playout clock and fixed_rate_output, plus or minus its slips).

    delay: playout delay in frames (0..2) = the transmitter's max_offset.
    recovery: 'hold', 'lm' or 'moshi' (see docs/recovery.md), or 'none'.
    device: where the Mimi decoder runs (auto, cpu, cuda, cuda:N; the
    recovery model's device is recovery_args['device']).
    start_frame: play out from this frame index (0 when the receiver hears the
    transmitter from its start, as in simulations) instead of from the first
    packet heard.
    jitter_buffer_ms: the playout clock's target delay (uep/playout.py): with
    packets that carry their arrival time (rx_time, stamped by packet_sorter on
    a live link), frame n leaves at a fixed rate, its earliest arrival time +
    this delay, whether its packet came or not; 0 = no clock. Packets without
    rx_time (simulations) never start the clock. See docs/latency.md.
    With the clock on, the lm/moshi recovery gets a deadline (token_recovery
    deadline_ms, LIVE_DEADLINE_MS unless recovery_args sets it): a frame that
    reaches the model more than that after its playout time is filled by hold
    and the model restarts, so a model slower than real time cannot make the
    latency grow (counters()['recovery']).
    decode_lead_ms: with the clock on, a frame whose own packet has come leaves
    the depacketizer up to this long before its playout time and the decoder
    holds its audio until then, so recovery and decoding are done when the frame
    is due (0..500; 0 = every frame leaves at its playout time and the decoding
    comes on top of the jitter buffer). docs/latency.md, "Decode lead".
    fixed_rate_output: with the clock on, the audio leaves as one stream at a fixed
    rate on the host's clock, as a sound card takes it: when the clock's schedule
    moves (its anchor follows the packets' arrival), the stream slips by inserting
    or cutting a few ms at a frame's start instead of stalling (mimi_decoder
    fixed_rate, counters()['playout']); False = each frame leaves at its own playout
    time. docs/latency.md, "Fixed-rate output".
    output_prime_ms: with the fixed-rate output, this much silence goes out ahead of
    the stream when it starts (and when it starts again after a silence), so that a
    sound card begins with that much audio in its buffer and does not underrun when
    the host delivers a frame up to that late; it adds as much to what the listener
    hears after the output (0..500, default 0: for a WAV file or a sink that buffers by
    itself; 100-150 for a sound card on a busy host). docs/latency.md, "Sound card
    prime"."""

    def __init__(self, sample_rate=16000, delay=1, recovery="hold", weights="hf",
                 require_crc=False, feedback_interval=25, threads=0, codec_mode="exact",
                 recovery_args=None, start_frame=None, device="auto",
                 jitter_buffer_ms=playout.DEFAULT_TARGET_MS, decode_lead_ms=playout.DEFAULT_LEAD_MS,
                 fixed_rate_output=True, output_prime_ms=0.0):
        C.check_rate(sample_rate)
        delay = P.check_int("delay", delay, 0, 2)
        P.check_choice("recovery", recovery, RECOVERY)
        P.check_str("weights", weights)
        require_crc = P.check_bool("require_crc", require_crc)
        feedback_interval = P.check_int("feedback_interval", feedback_interval, 0, 1000000)
        threads = P.check_int("threads", threads, 0, 1024)
        P.check_choice("codec_mode", codec_mode, C.MODES)
        if recovery_args is not None and not isinstance(recovery_args, dict):
            raise P.ParameterError(f"recovery_args must be None or a dict, got {recovery_args!r}")
        if recovery == "none" and recovery_args:
            raise P.ParameterError("recovery_args given but recovery is 'none'")
        P.check_optional_int("start_frame", start_frame, 0, MAX_FRAME_INDEX)
        jitter_buffer_ms = P.check_float("jitter_buffer_ms", jitter_buffer_ms, 0.0, 2000.0)
        if 0 < jitter_buffer_ms < 10:
            raise P.ParameterError(f"jitter_buffer_ms must be 0 (no playout clock) or 10..2000, got {jitter_buffer_ms!r}")
        decode_lead_ms = P.check_float("decode_lead_ms", decode_lead_ms, 0.0, playout.MAX_LEAD_MS)
        fixed_rate_output = P.check_bool("fixed_rate_output", fixed_rate_output)
        output_prime_ms = P.check_float("output_prime_ms", output_prime_ms, 0.0, 1000.0 * MAX_PRIME_S)
        if output_prime_ms and not (jitter_buffer_ms and fixed_rate_output):
            raise P.ParameterError(f"output_prime_ms={output_prime_ms!r} needs the fixed-rate output (a jitter "
                                   f"buffer and fixed_rate_output=True); use 0 without it")
        gr.hier_block2.__init__(self, "largesc_rx", gr.io_signature(0, 0, 0),
                                gr.io_signature(1, 1, gr.sizeof_float))
        self.message_port_register_hier_in("in")
        self.message_port_register_hier_in("flush")
        self.message_port_register_hier_out("feedback")
        self.message_port_register_hier_out("latency")
        self.depacketizer = _core.uep_depacketizer(delay, 8, 125, feedback_interval, require_crc)
        self.decoder = mimi_decoder(sample_rate=sample_rate, weights=weights, device=device,
                                    threads=threads, mode=codec_mode, start_frame=start_frame,
                                    fixed_rate=bool(jitter_buffer_ms) and fixed_rate_output,
                                    output_prime_ms=output_prime_ms)
        self.recovery = None
        self.clock = None
        if jitter_buffer_ms:
            self.clock = playout.playout_clock(self.depacketizer, jitter_buffer_ms, lead_ms=decode_lead_ms)
            self.msg_connect(self, "in", self.clock, "in")
            self.msg_connect(self.clock, "out", self.depacketizer, "in")
        else:
            self.msg_connect(self, "in", self.depacketizer, "in")
        self.msg_connect(self, "flush", self.depacketizer, "flush")
        self.msg_connect(self.depacketizer, "feedback", self, "feedback")
        if recovery != "none":
            from ..recovery.token_recovery import LIVE_DEADLINE_MS, token_recovery
            args = dict(recovery_args or {})
            if self.clock is not None and recovery != "hold":
                args.setdefault("deadline_ms", LIVE_DEADLINE_MS)
            self.recovery = token_recovery(backend=recovery, **args)
            self.msg_connect(self.depacketizer, "out", self.recovery, "in")
            self.msg_connect(self.recovery, "out", self.decoder, "in")
        else:
            self.msg_connect(self.depacketizer, "out", self.decoder, "in")
        self.connect(self.decoder, self)
        # per-frame latency (mimi_decoder's `latency` port), with the late packets so far
        self.decoder.latency_extra = self._late
        self.msg_connect(self.decoder, "latency", self, "latency")

    def _late(self):
        return {LATE_PACKETS: self.depacketizer.counters()["late"]}

    def latency(self):
        """mimi_decoder.latency() (receive_to_output: a frame's first packet arriving to its
        first sample leaving the decoder, p50/p95/max over the last 125 frames) plus
        late_packets: packets that came after their frame had been played out."""
        d = self.decoder.latency()
        d.update(self._late())
        return d

    def flush(self):
        self.depacketizer.flush()

    def counters(self):
        c = dict(self.depacketizer.counters())
        c["decoder"] = self.decoder.stats()
        if self.recovery is not None:
            r = self.recovery
            c["recovery"] = dict(backend=r.backend(), frames_in=r.frames_in(), frames_out=r.frames_out(),
                                 frames_late=r.frames_late(), late_restarts=r.late_restarts(),
                                 deadline_ms=r.deadline_ms())
        if self.clock is not None:      # the decode lead: frames let go early, audio held to its time
            c["playout"] = dict(frames_early=self.clock.early, frames_held=self.decoder.frames_held(),
                                hold_refused=self.decoder.hold_refused(), lead_ms=1000.0 * self.clock.lead_s,
                                **self.decoder.rate_stats())
        return c
