#!/usr/bin/env python3
#
# Copyright 2026 gr-largesc authors.
# SPDX-License-Identifier: GPL-3.0-or-later
#
"""QA for the adaptive_controller block: real token-frame PDUs posted into its
ports in a running flowgraph, exact plan metadata out, feedback, run-time
budget changes, malformed input and bad parameters. Every PDU is counted in
and out (message ports drop silently past their queue limit)."""

import numpy as np
import pmt
from gnuradio import blocks, gr, gr_unittest

from gnuradio import largesc
from gnuradio.largesc.uep import uep_plan as up
from gnuradio.largesc.common.pacing import wait_for


def token_frame(frame, n_q=32, vad=None, extra=None, seed=0):
    rng = np.random.default_rng(frame * 7919 + seed)
    meta = pmt.make_dict()
    meta = pmt.dict_add(meta, pmt.intern("frame"), pmt.from_uint64(frame))
    meta = pmt.dict_add(meta, pmt.intern("n_q"), pmt.from_long(n_q))
    meta = pmt.dict_add(meta, pmt.intern("energy_db"), pmt.from_double(-23.5))
    if vad is not None:
        meta = pmt.dict_add(meta, pmt.intern("vad"), pmt.from_bool(vad))
    for k, v in (extra or {}).items():
        meta = pmt.dict_add(meta, pmt.intern(k), v)
    tokens = [int(t) for t in rng.integers(0, 2048, n_q)]
    return pmt.cons(meta, pmt.init_u16vector(n_q, tokens)), tokens


def feedback(loss_rate, mean_burst, window=100):
    meta = pmt.make_dict()
    meta = pmt.dict_add(meta, pmt.intern("loss_rate"), pmt.from_double(loss_rate))
    meta = pmt.dict_add(meta, pmt.intern("mean_burst"), pmt.from_double(mean_burst))
    meta = pmt.dict_add(meta, pmt.intern("window"), pmt.from_long(window))
    return pmt.cons(meta, pmt.init_u8vector(0, []))


def plan_of(msg):
    meta = pmt.car(msg)
    k = pmt.to_long(pmt.dict_ref(meta, pmt.intern("uep_k"), pmt.PMT_NIL))
    copies = pmt.dict_ref(meta, pmt.intern("uep_copies"), pmt.PMT_NIL)
    assert pmt.is_s32vector(copies), "uep_copies must be an s32vector"
    return up.Plan(int(k), tuple(int(x) for x in pmt.s32vector_elements(copies)))


class Harness:
    """A running flowgraph: posts into the controller, collects its output."""

    def __init__(self, ctl):
        self.ctl = ctl
        self.tb = gr.top_block()
        self.sink = blocks.message_debug()
        self.tb.msg_connect((ctl, "out"), (self.sink, "store"))
        self.tb.start()

    def post(self, msgs):
        before = self.ctl.frames_in()
        for m in msgs:
            self.ctl.to_basic_block()._post(pmt.intern("in"), m)
        n = before + len(msgs)
        wait_for(lambda: self.ctl.frames_out() + self.ctl.frames_rejected() == n, 10, "controller stalled")
        self.assert_in(n)
        wait_for(lambda: self.sink.num_messages() == self.ctl.frames_out(), 10, "output lost")

    def assert_in(self, n):
        if self.ctl.frames_in() != n:
            raise AssertionError(f"controller took {self.ctl.frames_in()} frames, {n} posted")

    def post_feedback(self, msg):
        before = self.ctl.feedback_in()
        self.ctl.to_basic_block()._post(pmt.intern("feedback"), msg)
        wait_for(lambda: self.ctl.feedback_in() == before + 1, 10, "feedback not handled")

    def outputs(self):
        return [self.sink.get_message(i) for i in range(self.sink.num_messages())]

    def stop(self):
        self.tb.stop()
        self.tb.wait()


class InfoLines:
    """A logger whose INFO lines go to a list."""

    def __init__(self, lines):
        self.info = lines.append


class qa_adaptive_controller(gr_unittest.TestCase):

    def run_frames(self, ctl, frames):
        h = Harness(ctl)
        try:
            h.post([m for m, _ in frames])
        finally:
            h.stop()
        out = h.outputs()
        self.assertEqual(ctl.frames_in(), len(frames))
        self.assertEqual(ctl.frames_in(), ctl.frames_out() + ctl.frames_rejected())
        self.assertEqual(len(out), ctl.frames_out())
        return out

    def test_exact_plans_and_unchanged_frames(self):
        for budget, loss, burst, D in ((550, 0.1, 3.0, 1), (1100, 0.2, 3.0, 2), (2060, 0.3, 1.0, 2),
                                       (1100, 0.05, 1.0, 0)):
            with self.subTest(budget=budget, loss=loss, burst=burst, D=D):
                ctl = largesc.adaptive_controller(budget, loss, burst, D)
                model = up.LossModel.gilbert_elliott(loss, burst)
                ref = up.UepController(budget, model, D)
                best = up.greedy_plan(up.slots_for_budget(budget), model, D, up.default_weights())
                self.assertEqual(ctl.speech_plan(), (best.k, list(best.copies)))
                frames = [token_frame(f, vad=True) for f in range(20)]
                out = self.run_frames(ctl, frames)
                self.assertEqual(len(out), 20)
                for f, (msg, (_, tokens)) in enumerate(zip(out, frames)):
                    meta = pmt.car(msg)
                    self.assertEqual(list(pmt.u16vector_elements(pmt.cdr(msg))), tokens)
                    self.assertEqual(pmt.to_uint64(pmt.dict_ref(meta, pmt.intern("frame"), pmt.PMT_NIL)), f)
                    self.assertEqual(pmt.to_double(pmt.dict_ref(meta, pmt.intern("energy_db"), pmt.PMT_NIL)), -23.5)
                    plan = plan_of(msg)
                    self.assertEqual(plan, ref.plan(f, 32, True))
                    self.assertEqual(len(plan.copies), D)
                    plan.check(up.slots_for_budget(budget))
                    if f >= D:
                        self.assertEqual(plan, best)

    def test_fixed_mode(self):
        ctl = largesc.adaptive_controller(1100, 0.3, 3.0, 2, mode="fixed")
        out = self.run_frames(ctl, [token_frame(f, vad=f % 2 == 0) for f in range(6)] + [token_frame(6, n_q=5)])
        self.assertEqual([plan_of(m) for m in out], [up.Plan(8, (0, 0))] * 6 + [up.Plan(5, (0, 0))])

    def test_content_adaptation(self):
        vads = [True] * 5 + [False] * 4 + [True] * 5
        ctl = largesc.adaptive_controller(1100, 0.2, 3.0, 2)
        out = self.run_frames(ctl, [token_frame(f, vad=v) for f, v in enumerate(vads)])
        ref = up.UepController(1100, up.LossModel.gilbert_elliott(0.2, 3.0), 2)
        expect = [ref.plan(f, 32, v) for f, v in enumerate(vads)]
        self.assertEqual([plan_of(m) for m in out], expect)
        self.assertEqual(plan_of(out[5]).k, up.SILENCE_CODEBOOKS)
        self.assertEqual(plan_of(out[8]), up.Plan(2, (2, 2)))
        # off: vad ignored
        ctl = largesc.adaptive_controller(1100, 0.2, 3.0, 2, content_adaptation=False)
        out = self.run_frames(ctl, [token_frame(f, vad=v) for f, v in enumerate(vads)])
        k, r = ctl.speech_plan()
        self.assertTrue(all(plan_of(m) == up.Plan(k, tuple(r)) for m in out[2:]))

    def test_feedback_changes_plan(self):
        ctl = largesc.adaptive_controller(1100, 0.0, 1.0, 2)
        self.assertEqual(ctl.speech_plan(), (8, [0, 0]))
        h = Harness(ctl)
        try:
            h.post([token_frame(f)[0] for f in range(4)])
            h.post_feedback(feedback(0.3, 3.0))
            h.post([token_frame(f)[0] for f in range(4, 10)])
            h.post_feedback(feedback(0.0, 1.0, window=0))  # nothing measured: no change
            h.post_feedback(pmt.intern("garbage"))
            h.post_feedback(feedback(1.5, 3.0))
            h.post([token_frame(10)[0]])
        finally:
            h.stop()
        plans = [plan_of(m) for m in h.outputs()]
        best = up.greedy_plan(8, up.LossModel.gilbert_elliott(0.3, 3.0), 2, up.default_weights())
        self.assertGreater(sum(best.copies), 0)
        self.assertEqual(plans[:4], [up.Plan(8, (0, 0))] * 4)
        self.assertEqual(plans[6:], [best] * 5)
        self.assertEqual(ctl.speech_plan(), (best.k, list(best.copies)))
        self.assertAlmostEqual(ctl.loss_rate(), 0.3)
        self.assertAlmostEqual(ctl.mean_burst(), 3.0)
        self.assertEqual(ctl.feedback_in(), 4)
        self.assertEqual(ctl.feedback_rejected(), 2)

    def test_feedback_clamped_to_a_valid_model(self):
        ctl = largesc.adaptive_controller(1100, 0.1, 1.0, 1)
        h = Harness(ctl)
        try:
            h.post_feedback(feedback(0.6, 1.0))  # burst below L/(1-L) = 1.5
        finally:
            h.stop()
        self.assertAlmostEqual(ctl.mean_burst(), 1.5)
        self.assertEqual(ctl.feedback_rejected(), 0)

    def test_feedback_ageing(self):
        # timeout 0.8 s = 10 frames of stream time; refused reports and a
        # report with window 0 do not refresh the age
        ctl = largesc.adaptive_controller(1100, 0.0, 1.0, 2, feedback_timeout=0.8)
        self.assertEqual((ctl.feedback_timeout(), ctl.feedback_state(), ctl.feedback_stale()), (0.8, "parameters", 0))
        warnings, infos = [], []
        ctl.guard.log = warnings.append
        ctl.logger = InfoLines(infos)
        states = []
        h = Harness(ctl)
        try:
            h.post([token_frame(f)[0] for f in range(4)])
            states.append(ctl.feedback_state())
            h.post_feedback(feedback(0.1, 1.0))
            states.append(ctl.feedback_state())
            h.post([token_frame(f)[0] for f in range(4, 9)])          # age 5 frames
            for bad in (pmt.intern("garbage"), feedback(1.5, 3.0), feedback(0.0, 1.0, window=0)):
                h.post_feedback(bad)
            h.post([token_frame(f)[0] for f in range(9, 13)])         # age 9 frames
            states.append(ctl.feedback_state())
            h.post([token_frame(13)[0]])                              # age 10 frames = 0.8 s
            states.append(ctl.feedback_state())
            stale_loss = (ctl.loss_rate(), ctl.mean_burst())
            h.post([token_frame(f)[0] for f in range(14, 40)])
            self.assertEqual((infos, ctl.feedback_stale()), ([], 1))
            h.post_feedback(feedback(0.1, 1.0))
            states.append(ctl.feedback_state())
            h.post([token_frame(f)[0] for f in range(40, 45)])
        finally:
            h.stop()
        self.assertEqual(states, ["parameters", "feedback", "feedback", "stale", "feedback"])
        self.assertEqual(ctl.feedback_stale(), 1)
        self.assertEqual(stale_loss, (0.3, 3.0))                      # the worse of (0, 1) and (0.3, 3)
        self.assertEqual((ctl.loss_rate(), ctl.mean_burst()), (0.1, 1.0))
        # one line for the refused reports (the first of their reason), one for the fall-back
        self.assertEqual(len(warnings), 2)
        self.assertIn("feedback: rejected", warnings[0])
        self.assertRegex(warnings[1], r"no valid loss report for 0\.8 s \(feedback_timeout 0\.8 s\): planning for "
                                      r"the fallback loss model \(loss_rate 0\.3, mean_burst 3\)")
        self.assertEqual(len(infos), 1)
        self.assertRegex(infos[0], r"a valid loss report after 2\.88 s without one: planning for the reported loss")
        self.assertEqual(ctl.rejections(), {"feedback: rejected": 2})  # ageing is no rejection
        plans = [plan_of(m) for m in h.outputs()]
        report = up.greedy_plan(8, up.LossModel.gilbert_elliott(0.1, 1.0), 2, up.default_weights())
        stale = up.greedy_plan(8, up.LossModel.gilbert_elliott(0.3, 3.0), 2, up.default_weights())
        self.assertNotEqual(report, stale)
        self.assertEqual(plans[6:13], [report] * 7)
        self.assertEqual(plans[15:40], [stale] * 25)
        self.assertEqual(plans[42:], [report] * 3)

    def test_set_budget_at_run_time(self):
        ctl = largesc.adaptive_controller(550, 0.0, 1.0, 1)
        h = Harness(ctl)
        try:
            h.post([token_frame(f)[0] for f in range(3)])
            ctl.set_budget(2060)
            h.post([token_frame(f)[0] for f in range(3, 6)])
            ctl.set_loss(0.3, 1.0)
            h.post([token_frame(f)[0] for f in range(6, 9)])
            with self.assertRaisesRegex(ValueError, "budget"):
                ctl.set_budget(20)
            with self.assertRaisesRegex(ValueError, "mean burst"):
                ctl.set_loss(0.1, 0.2)
        finally:
            h.stop()
        plans = [plan_of(m) for m in h.outputs()]
        self.assertEqual(plans[:3], [up.Plan(4, (0,))] * 3)
        self.assertEqual(plans[3:6], [up.Plan(15, (0,))] * 3)
        best = up.greedy_plan(15, up.LossModel.gilbert_elliott(0.3, 1.0), 1, up.default_weights())
        self.assertGreater(best.copies[0], 0)
        self.assertEqual(plans[7:], [best] * 2)
        self.assertEqual(ctl.slots(), 15)
        self.assertEqual(ctl.token_bitrate(), 2062.5)

    def test_custom_weights(self):
        # only the semantic codebook matters: at 30 % loss it is copied at both offsets
        ctl = largesc.adaptive_controller(550, 0.3, 3.0, 2, weights=[1.0, 0.01])
        out = self.run_frames(ctl, [token_frame(f) for f in range(5)])
        self.assertEqual(plan_of(out[-1]), up.Plan(2, (1, 1)))

    def test_malformed_counted_and_dropped(self):
        good = [token_frame(f) for f in range(6)]
        meta_ok = pmt.car(good[0][0])
        bad = [
            pmt.intern("not a pdu"),
            pmt.cons(meta_ok, pmt.init_u8vector(32, [0] * 32)),  # wrong vector type
            pmt.cons(pmt.from_long(3), pmt.cdr(good[0][0])),  # car not a dict
            token_frame(0, extra={"n_q": pmt.from_long(31)})[0],  # n_q != len
            pmt.cons(pmt.dict_delete(meta_ok, pmt.intern("frame")), pmt.cdr(good[0][0])),
            pmt.cons(pmt.dict_add(pmt.dict_add(pmt.make_dict(), pmt.intern("frame"), pmt.from_long(1)),
                                  pmt.intern("n_q"), pmt.from_long(2)), pmt.init_u16vector(2, [5, 2048])),
            pmt.cons(pmt.dict_add(pmt.dict_add(pmt.make_dict(), pmt.intern("frame"), pmt.from_long(1)),
                                  pmt.intern("n_q"), pmt.from_long(0)), pmt.init_u16vector(0, [])),
            token_frame(0, extra={"vad": pmt.intern("maybe")})[0],
            pmt.cons(pmt.intern("frame"), pmt.from_long(4)),
        ]
        msgs = []
        for i, (m, _) in enumerate(good):
            msgs.append(m)
            msgs.extend(bad[i * 2:i * 2 + 2])
        ctl = largesc.adaptive_controller(1100, 0.1, 1.0, 1)
        h = Harness(ctl)
        try:
            h.post(msgs)
        finally:
            h.stop()
        out = h.outputs()
        self.assertEqual(ctl.frames_rejected(), len(bad))
        self.assertEqual(ctl.frames_out(), len(good))
        self.assertEqual(ctl.frames_in(), len(good) + len(bad))
        self.assertEqual([pmt.to_uint64(pmt.dict_ref(pmt.car(m), pmt.intern("frame"), pmt.PMT_NIL)) for m in out],
                         list(range(6)))
        self.assertEqual([list(pmt.u16vector_elements(pmt.cdr(m))) for m in out], [t for _, t in good])

    def test_bad_parameters(self):
        for kwargs, what in (({"budget": 100}, "budget"),
                             ({"loss_rate": 1.0}, r"loss rate must be in \[0, 1\)"),
                             ({"mean_burst": 0.5}, "mean burst must be >= 1"),
                             ({"loss_rate": 0.6, "mean_burst": 1.0}, "impossible"),
                             ({"max_offset": 3}, "0..2"),
                             ({"weights": [0.2, 1.0]}, "non-increasing"),
                             ({"weights": "flat"}, "'default' or a list"),
                             ({"mode": "auto"}, "adaptive"),
                             ({"silence_codebooks": 40}, "1..32"),
                             ({"feedback_timeout": -1}, r"feedback_timeout must be a finite number >= 0 and <= 3600"),
                             ({"feedback_timeout": float("nan")}, "feedback_timeout")):
            with self.subTest(kwargs=kwargs):
                with self.assertRaisesRegex(ValueError, what):
                    largesc.adaptive_controller(**kwargs)


if __name__ == "__main__":
    gr_unittest.run(qa_adaptive_controller)
