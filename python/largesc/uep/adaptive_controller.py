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


class adaptive_controller(gr.basic_block):
    """Adaptive UEP controller for token-frame PDUs.

    Ports
      in: token-frame PDUs (dict with `frame`, `n_q`, optional `vad`;
          u16vector of n_q tokens, codebook order).
      out: the same PDUs with `uep_k` (long) and `uep_copies` (s32vector of
          length max_offset) added.
      feedback: feedback PDUs from the depacketizer (dict with `loss_rate`,
          `mean_burst`, `window`), or that dict alone, or a feedback packet
          PDU as it comes off a modem (docs/packet_format.md, "Feedback
          packets"; common.pmt_util.parse_feedback); each one replaces the
          loss model. Accepted: loss_rate a finite number in [0, 1],
          mean_burst a finite number in [0, 1000], window an integer >= 0
          (default 1; 0 = nothing measured, the model is kept and the
          report does not count as one for ageing).

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
      feedback_timeout: seconds (0..3600, 0 = never) after the last valid
          report from which the plans fall back to the worse of the loss
          parameters and loss 0.3 / burst 3 until the next report; time is
          stream time, 80 ms per frame planned (docs/uep_controller.md,
          "Feedback ageing"). feedback_state() says which model the plans
          use, feedback_stale() counts the fall-backs; each fall-back logs
          one WARNING line, each return to reported loss one INFO line.
    """

    def __init__(self, budget=1100.0, loss_rate=0.1, mean_burst=1.0, max_offset=1,
                 weights="default", mode="adaptive", content_adaptation=True,
                 silence_codebooks=uep_plan.SILENCE_CODEBOOKS, feedback_timeout=uep_plan.FEEDBACK_TIMEOUT):
        gr.basic_block.__init__(self, name="adaptive_controller", in_sig=None, out_sig=None)
        uep_plan.check_budget(budget)
        model = uep_plan.check_loss_parameters(loss_rate, mean_burst)
        max_offset = P.check_int("max_offset", max_offset, 0, uep_plan.MAX_OFFSET)
        P.check_choice("mode", mode, uep_plan.MODES)
        content_adaptation = P.check_bool("content_adaptation", content_adaptation)
        silence_codebooks = P.check_int("silence_codebooks", silence_codebooks, 1, uep_plan.MAX_K)
        feedback_timeout = uep_plan.check_feedback_timeout(feedback_timeout)
        self._core = uep_plan.UepController(budget, model, max_offset, weights, mode,
                                            content_adaptation, silence_codebooks, feedback_timeout)
        # (L, B) of the parameters and of what the plans were last given (parameters or a report)
        self._params = self._given = (float(loss_rate), float(mean_burst))
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
            stale_before = self._core.stale_count
            try:
                plan = self._core.plan(frame, n_q, vad)
            except Exception as e:  # noqa: BLE001 - counted as rejected, logged, dropped
                self.guard.note(f"in: {type(e).__name__}", e)
                self._frames_rejected += 1
                return
            finally:
                if self._core.stale_count != stale_before:
                    self._log_fallback()
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
            L, B = uep_plan.clamp_loss(L, B)
            was_stale, age = self._core.feedback_state == "stale", self._core.report_age
            self._core.report(uep_plan.LossModel.gilbert_elliott(L, B))
            self._given = (L, B)
        if was_stale:
            self.logger.info(f"adaptive_controller: a valid loss report after {age:g} s without one: "
                             f"planning for the reported loss again (loss_rate {L:g}, mean_burst {B:g})")

    def _log_fallback(self):
        """The one WARNING line of a fall-back to the stale-feedback model."""
        L, B = uep_plan.fallback_loss(*self._params)
        self.guard.log(f"adaptive_controller: no valid loss report for {self._core.report_age:g} s "
                       f"(feedback_timeout {self._core.feedback_timeout:g} s): planning for the fallback "
                       f"loss model (loss_rate {L:g}, mean_burst {B:g}) until a report arrives "
                       f"(fall-back {self._core.stale_count})")

    # --- run-time settings (GRC callbacks) ----------------------------------

    def set_budget(self, budget):
        with self._lock:
            self._core.set_budget(budget)

    def set_loss(self, loss_rate, mean_burst):
        model = uep_plan.check_loss_parameters(loss_rate, mean_burst)
        with self._lock:
            self._core.set_model(model)
            self._params = self._given = (float(loss_rate), float(mean_burst))

    def set_content_adaptation(self, on):
        on = P.check_bool("content_adaptation", on)
        with self._lock:
            self._core.set_content_adaptation(on)

    # --- state and counters ----------------------------------------------

    def budget(self):
        return self._core.budget

    def slots(self):
        return self._core.slots

    def _planned_loss(self):
        """(L, B) the plans are made for: the parameters, the last report, or
        the fallback while the reports are stale."""
        with self._lock:
            if self._core.feedback_state == "stale":
                return uep_plan.fallback_loss(*self._params)
            return self._given

    def loss_rate(self):
        """Loss rate the plans are made for (see feedback_state())."""
        return self._planned_loss()[0]

    def mean_burst(self):
        """Mean burst the plans are made for (see feedback_state())."""
        return self._planned_loss()[1]

    def feedback_timeout(self):
        return self._core.feedback_timeout

    def feedback_state(self):
        """'parameters' (no valid report since the loss parameters were set),
        'feedback' (the last report is younger than feedback_timeout) or
        'stale' (it is not: the fallback model is planned for)."""
        with self._lock:  # a message being handled finishes first
            return self._core.feedback_state

    def feedback_stale(self):
        """Times the controller fell back because the reports had stopped."""
        with self._lock:
            return self._core.stale_count

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
