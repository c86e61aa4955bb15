#
# Copyright 2026 gr-largesc authors.
# SPDX-License-Identifier: GPL-3.0-or-later
#
"""adaptive_controller: adds an in-band UEP plan (`uep_k`, `uep_copies`) to
every token-frame PDU. The planning math lives in uep_plan.py; this file is
the GNU Radio glue (ports, parameters, counters)."""

import threading

import pmt
from gnuradio import gr

from ..common import frame_pdu as FP
from ..common import params as P
from . import uep_plan
from ..common.guard import Guard
from ..common.pmt_util import parse_feedback

# feedback estimates are clamped to what a Gilbert channel can express
MAX_FEEDBACK_LOSS = 0.95


class adaptive_controller(gr.basic_block):
    """Adaptive UEP controller for token-frame PDUs.

    Ports
      in: token-frame PDUs (dict with `frame`, `n_q`, optional `vad`;
          u16vector of n_q tokens, codebook order).
      out: the same PDUs with `uep_k` (long) and `uep_copies` (s32vector of
          length max_offset) added.
      feedback: feedback PDUs from the depacketizer (dict with `loss_rate`,
          `mean_burst`, `window`), or that dict alone; each one replaces the
          loss model. Accepted: loss_rate a finite number in [0, 1],
          mean_burst a finite number in [0, 1000], window an integer >= 0
          (default 1; 0 = nothing measured, the model is kept).

    Malformed input (a frame that is not a dict + u16vector of n_q tokens
    in 1..32 with values <= 2047, `frame` an integer >= 0 and `vad` a bool;
    feedback out of range) is dropped, counted (frames_rejected,
    feedback_rejected, rejections() per reason) and logged at WARNING level
    (first, then every 1000th per reason). An exception in a handler is
    caught the same way (guard.py) and the message dropped.

    Parameters
      budget: token-payload budget in bit/s (slots S = floor(B*1.01/137.5)).
      loss_rate, mean_burst: Gilbert-Elliott loss model used until feedback
          arrives (mean_burst = 1/(1-loss_rate) is i.i.d. loss).
      max_offset: D in 0..2, copies ride up to D packets later (D*80 ms
          playout delay at the receiver).
      weights: 'default' or a non-increasing list of per-codebook weights.
      mode: 'adaptive' or 'fixed' (K = S, no copies).
      content_adaptation: frames with vad False need only silence_codebooks
          codebooks; their spare slots protect the speech frames before them.
    """

    def __init__(self, budget=1100.0, loss_rate=0.1, mean_burst=1.0, max_offset=1,
                 weights="default", mode="adaptive", content_adaptation=True,
                 silence_codebooks=uep_plan.SILENCE_CODEBOOKS):
        gr.basic_block.__init__(self, name="adaptive_controller", in_sig=None, out_sig=None)
        uep_plan.check_budget(budget)
        model = uep_plan.check_loss_parameters(loss_rate, mean_burst)
        max_offset = P.check_int("max_offset", max_offset, 0, uep_plan.MAX_OFFSET)
        P.check_choice("mode", mode, uep_plan.MODES)
        content_adaptation = P.check_bool("content_adaptation", content_adaptation)
        silence_codebooks = P.check_int("silence_codebooks", silence_codebooks, 1, uep_plan.MAX_K)
        self._core = uep_plan.UepController(budget, model, max_offset, weights, mode,
                                            content_adaptation, silence_codebooks)
        self._loss_rate, self._mean_burst = float(loss_rate), float(mean_burst)
        self._lock = threading.Lock()
        self._frames_in = self._frames_out = self._frames_rejected = 0
        self._feedback_in = self._feedback_rejected = 0
        self.guard = Guard("adaptive_controller", self.logger)
        self.message_port_register_in(pmt.intern("in"))
        self.message_port_register_in(pmt.intern("feedback"))
        self.message_port_register_out(pmt.intern("out"))
        self.guard.install(self, "in", self._handle_frame)
        self.guard.install(self, "feedback", self._handle_feedback)

    # --- message handlers -------------------------------------------------

    @staticmethod
    def _parse(msg):
        """(meta, tokens, frame, n_q, vad), or a string saying why msg is
        not a valid token frame (common.frame_pdu.parse_frame)."""
        try:
            f = FP.parse_frame(msg)
        except FP.MalformedFrame as e:
            return str(e)
        return f.meta, pmt.cdr(msg), f.frame, len(f.tokens), f.vad

    def _handle_frame(self, msg):
        with self._lock:
            self._frames_in += 1
            parsed = self._parse(msg)
            if isinstance(parsed, str):
                self.guard.note("in: malformed frame", parsed)
                self._frames_rejected += 1
                return
            meta, tokens, frame, n_q, vad = parsed
            try:
                plan = self._core.plan(frame, n_q, vad)
            except Exception as e:  # noqa: BLE001 - counted as rejected, logged, dropped
                self.guard.note(f"in: {type(e).__name__}", e)
                self._frames_rejected += 1
                return
        meta = pmt.dict_add(meta, FP.UEP_K, pmt.from_long(plan.k))
        meta = pmt.dict_add(meta, FP.UEP_COPIES, pmt.init_s32vector(len(plan.copies), list(plan.copies)))
        self.message_port_pub(pmt.intern("out"), pmt.cons(meta, tokens))
        with self._lock:
            self._frames_out += 1  # counted once published

    @staticmethod
    def _parse_feedback(msg):
        """(L, B, window) or a string saying why the feedback is refused."""
        return parse_feedback(msg)

    def _handle_feedback(self, msg):
        with self._lock:
            self._feedback_in += 1
            try:
                parsed = self._parse_feedback(msg)
            except Exception as e:  # noqa: BLE001
                parsed = f"unreadable ({type(e).__name__}: {e})"
            if isinstance(parsed, str):
                self.guard.note("feedback: rejected", parsed)
                self._feedback_rejected += 1
                return
            L, B, window = parsed
            if window == 0:
                return  # nothing measured yet: keep the current model
            L = min(L, MAX_FEEDBACK_LOSS)
            B = max(B, 1.0, L / (1.0 - L))
            self._core.set_model(uep_plan.LossModel.gilbert_elliott(L, B))
            self._loss_rate, self._mean_burst = L, B

    # --- run-time settings (GRC callbacks) ----------------------------------

    def set_budget(self, budget):
        with self._lock:
            self._core.set_budget(budget)

    def set_loss(self, loss_rate, mean_burst):
        model = uep_plan.check_loss_parameters(loss_rate, mean_burst)
        with self._lock:
            self._core.set_model(model)
            self._loss_rate, self._mean_burst = float(loss_rate), float(mean_burst)

    def set_content_adaptation(self, on):
        on = P.check_bool("content_adaptation", on)
        with self._lock:
            self._core.set_content_adaptation(on)

    # --- state and counters ----------------------------------------------

    def budget(self):
        return self._core.budget

    def slots(self):
        return self._core.slots

    def loss_rate(self):
        return self._loss_rate

    def mean_burst(self):
        return self._mean_burst

    def speech_plan(self):
        """(K, [r_1..r_D]) of the steady-state plan for speech frames."""
        with self._lock:
            p = self._core.speech_plan()
        return p.k, list(p.copies)

    def token_bitrate(self):
        return uep_plan.SLOT_BITRATE * self._core.slots

    def frames_in(self):
        return self._frames_in

    def frames_out(self):
        return self._frames_out

    def frames_rejected(self):
        return self._frames_rejected

    def feedback_in(self):
        return self._feedback_in

    def feedback_rejected(self):
        return self._feedback_rejected

    def rejections(self):
        """{reason: count} of rejected or failed messages (see guard.py)."""
        return self.guard.counts()
