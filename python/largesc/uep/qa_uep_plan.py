#!/usr/bin/env python3
#
# Copyright 2026 gr-largesc authors.
# SPDX-License-Identifier: GPL-3.0-or-later
#
"""QA for the UEP planning math (uep_plan.py): slots and rates, arrival
probabilities (analytic and measured over 100,000 frames), greedy versus brute
force, plan limits, and the frame-by-frame controller with content adaptation."""

import itertools

import numpy as np
from gnuradio import gr_unittest

from gnuradio import largesc
from gnuradio.largesc.uep import uep_plan as up

N_FRAMES = 100_000


def simulate_reference(k, copies, lost, n_codebooks=32):
    """numpy reference of largesc.simulate_uep (docs/interfaces.md):
    mask[f, c] = 1 if codebook c of frame f arrived in packet f (c < k[f], not
    lost[f]) or as a copy in packet f+d (c < copies[f+d, d-1], not lost[f+d])."""
    k = np.asarray(k)
    copies = np.asarray(copies).reshape(len(k), -1)
    got = np.asarray(lost) == 0
    c = np.arange(n_codebooks)
    mask = (c[None, :] < k[:, None]) & got[:, None]
    for d in range(1, copies.shape[1] + 1):
        carry = (c[None, :] < copies[d:, d - 1][:, None]) & got[d:, None]
        mask[:-d] |= carry
    return mask.astype(np.uint8)


def simulate(k, copies, lost, n_codebooks=32):
    """largesc.simulate_uep (the C++ core)."""
    return largesc.simulate_uep(np.asarray(k, np.int32),
                                np.ascontiguousarray(np.asarray(copies, np.int32).reshape(len(k), -1)),
                                np.asarray(lost, np.uint8), n_codebooks)


def loss_pattern(kind, L, B, n, seed):
    if kind == "iid":
        return largesc.loss_model.bernoulli(L, seed).pattern(n)
    return largesc.loss_model.gilbert_elliott_mean(L, B, seed).pattern(n)


def model_of(kind, L, B):
    return up.LossModel.iid(L) if kind == "iid" else up.LossModel.gilbert_elliott(L, B)


def random_weights(rng):
    w = np.sort(rng.random(32))[::-1].copy()
    w[rng.integers(1, 33):] *= rng.random()
    return np.sort(w)[::-1].copy()


class qa_slots_and_rates(gr_unittest.TestCase):

    def test_paper_budgets(self):
        for b, s in ((550, 4), (1100, 8), (2060, 15), (2062.5, 15), (137.5, 1), (136.2, 1),
                     (274, 1 + 1), (10000, 73)):
            with self.subTest(budget=b):
                self.assertEqual(up.slots_for_budget(b), s)

    def test_budget_errors(self):
        for b in (0, 135, -550, float("nan"), float("inf"), "fast", None):
            with self.subTest(budget=b):
                with self.assertRaisesRegex(ValueError, "budget"):
                    up.slots_for_budget(b)

    def test_rates(self):
        # token payload (the paper's figure), on air: 3-byte header + ceil(11 S / 8) (+2 CRC)
        for plan, tok, air, air_crc in ((up.Plan(4), 550, 900, 1100),
                                        (up.Plan(8), 1100, 1400, 1600),
                                        (up.Plan(15), 2062.5, 2400, 2600),
                                        (up.Plan(11, (2, 2)), 2062.5, 2400, 2600),
                                        (up.Plan(1, (0, 0)), 137.5, 500, 700)):
            with self.subTest(plan=str(plan)):
                self.assertEqual(up.token_bitrate(plan), tok)
                self.assertEqual(up.on_air_bitrate(plan), air)
                self.assertEqual(up.on_air_bitrate(plan, crc=True), air_crc)
                self.assertEqual(up.packet_bytes(plan), air / 100)

    def test_latency(self):
        self.assertEqual([up.playout_latency_ms(d) for d in (0, 1, 2)], [0, 80, 160])
        with self.assertRaisesRegex(ValueError, "0..2"):
            up.playout_latency_ms(3)

    def test_plan_check(self):
        up.Plan(32, (15, 15)).check()
        for p in (up.Plan(0), up.Plan(33), up.Plan(4, (16,)), up.Plan(4, (-1,)), up.Plan(4, (1, 1, 1))):
            with self.subTest(plan=str(p)):
                with self.assertRaises(ValueError):
                    p.check()
        with self.assertRaisesRegex(ValueError, "budget is 8"):
            up.Plan(7, (1, 1)).check(8)

    def test_weights(self):
        w = up.default_weights()
        self.assertEqual(len(w), 32)
        self.assertEqual(w[0], 1.0)
        self.assertAlmostEqual(w[1], 0.5)
        self.assertAlmostEqual(w[2], 0.375)
        self.assertTrue(np.all(np.diff(w) < 0))
        np.testing.assert_array_equal(up.check_weights("default"), w)
        np.testing.assert_array_equal(up.check_weights([3, 2, 1]), [3, 2, 1] + [0] * 29)
        for bad in ([1, 2], [0, 0], [1, -1], [], [1] * 33, "heavy", [1, float("nan")]):
            with self.subTest(weights=bad):
                with self.assertRaisesRegex(ValueError, "weights"):
                    up.check_weights(bad)
        np.testing.assert_array_equal(up.silence_weights([4, 3, 2, 1], 2), [4, 3, 0, 0])


class qa_arrival_probability(gr_unittest.TestCase):

    def test_iid(self):
        for p in (0.0, 0.05, 0.3, 1.0):
            m = up.LossModel.iid(p)
            for offs in ((0,), (0, 1), (0, 2), (0, 1, 2), (1,), ()):
                with self.subTest(p=p, offsets=offs):
                    expect = 1 - p ** len(offs) if offs else 0.0
                    self.assertAlmostEqual(m.arrival_probability(offs), expect, places=12)
            self.assertTrue(m.is_iid)
            self.assertAlmostEqual(m.loss_rate, p)

    def test_gilbert_closed_forms(self):
        for L, B in ((0.05, 1.0), (0.1, 3.0), (0.2, 3.0), (0.3, 5.0)):
            with self.subTest(L=L, B=B):
                m = up.LossModel.gilbert_elliott(L, B)
                p_gb, p_bg = L / (B * (1 - L)), 1 / B
                self.assertAlmostEqual(m.loss_rate, L, places=12)
                self.assertAlmostEqual(m.mean_burst, B, places=9)
                self.assertAlmostEqual(m.arrival_probability((0,)), 1 - L, places=12)
                # both lost: in Bad, stay Bad
                self.assertAlmostEqual(m.arrival_probability((0, 1)), 1 - L * (1 - p_bg), places=12)
                # two steps: Bad -> Bad -> Bad, or Bad -> Good -> Bad
                p2 = L * ((1 - p_bg) ** 2 + p_bg * p_gb)
                self.assertAlmostEqual(m.arrival_probability((0, 2)), 1 - p2, places=12)
                self.assertAlmostEqual(m.arrival_probability((5, 7)), 1 - p2, places=12)
                self.assertAlmostEqual(m.arrival_probability((0, 1, 2)), 1 - L * (1 - p_bg) ** 2, places=12)
                self.assertFalse(m.is_iid)
        # mean burst 1: losses never adjacent, a copy one packet later always arrives
        self.assertEqual(up.LossModel.gilbert_elliott(0.1, 1.0).arrival_probability((0, 1)), 1.0)

    def test_memoryless_gilbert_is_iid(self):
        L = 0.2
        g = up.LossModel.gilbert_elliott(L, 1 / (1 - L))
        i = up.LossModel.iid(L)
        self.assertTrue(g.is_iid)
        for offs in ((0,), (0, 1), (0, 2), (0, 1, 2), (0, 4)):
            self.assertAlmostEqual(g.arrival_probability(offs), i.arrival_probability(offs), places=12)

    def test_raw_parameters_match_cpp_model(self):
        for args in ((0.02, 0.25, 0.01, 0.7), (0.1, 0.5, 0.0, 1.0), (0.3, 0.3, 0.2, 0.9)):
            with self.subTest(args=args):
                m = up.LossModel(*args)
                c = largesc.loss_model.gilbert_elliott(*args, seed=1)
                self.assertAlmostEqual(m.loss_rate, c.mean_loss_rate, places=12)
                self.assertAlmostEqual(m.mean_burst, c.mean_burst_length, places=9)

    def test_bad_parameters(self):
        for f, args, what in ((up.LossModel.gilbert_elliott, (0.1, 0.5), "mean_burst .* must be a finite number >= 1"),
                              (up.LossModel.gilbert_elliott, (1.0, 3.0), "needs loss_rate < 1"),
                              (up.LossModel.gilbert_elliott, (0.6, 1.0),
                               r"impossible .* need mean_burst >= loss_rate/\(1-loss_rate\) = 1.5"),
                              (up.LossModel.iid, (1.5,), "probability"),
                              (up.LossModel, (0.0, 0.0, 0.0, 1.0), "both be 0"),
                              (up.LossModel, (0.1, 0.2, 0.0, 2.0), "loss_bad")):
            with self.subTest(args=args):
                with self.assertRaisesRegex(ValueError, what):
                    f(*args)

    def test_codebook_probabilities_of_a_plan(self):
        m = up.LossModel.gilbert_elliott(0.2, 3.0)
        plan = up.Plan(5, (3, 1))
        q = up.codebook_arrival_probabilities(plan, m, 8)
        expect = [m.arrival_probability((0, 1, 2))] + [m.arrival_probability((0, 1))] * 2 + \
                 [m.arrival_probability((0,))] * 2 + [0.0] * 3
        np.testing.assert_allclose(q, expect, rtol=0, atol=1e-12)
        w = up.default_weights()
        self.assertAlmostEqual(up.expected_importance(plan, m, w), float(np.dot(w[:8], expect)), places=12)


class qa_measured_arrival(gr_unittest.TestCase):
    """Measured P(codebook-c token arrives) over 100,000 frames of
    largesc.loss_model patterns versus the analytic value."""

    PLANS = (up.Plan(5, (3, 1)), up.Plan(4, (0, 2)), up.Plan(6, (2,)), up.Plan(8, (0, 0)))
    CHANNELS = (("iid", 0.1, None), ("iid", 0.3, None), ("ge", 0.1, 3.0), ("ge", 0.2, 3.0),
                ("ge", 0.3, 1.0), ("ge", 0.2, 6.0))

    def test_reference_equals_cpp_simulation(self):
        rng = np.random.default_rng(7)
        n = 5000
        k = rng.integers(1, 33, n).astype(np.int32)
        copies = rng.integers(0, 16, (n, 2)).astype(np.int32)
        lost = (rng.random(n) < 0.3).astype(np.uint8)
        np.testing.assert_array_equal(largesc.simulate_uep(k, copies, lost, 32),
                                      simulate_reference(k, copies, lost, 32))

    def test_measured_matches_analytic(self):
        n = N_FRAMES
        seed = 11
        for kind, L, B in self.CHANNELS:
            model = model_of(kind, L, B)
            for plan in self.PLANS:
                seed += 1
                with self.subTest(channel=(kind, L, B), plan=str(plan)):
                    D = plan.max_offset
                    k = np.full(n + D, plan.k, np.int32)
                    copies = np.tile(np.asarray(plan.copies, np.int32), (n + D, 1))
                    lost = loss_pattern(kind, L, B, n + D, seed)
                    mask = simulate(k, copies, lost, 16)[:n]  # frames whose copies were all sent
                    expect = up.codebook_arrival_probabilities(plan, model, 16)
                    measured = mask.mean(axis=0)
                    # bound from batch means (losses are correlated across frames)
                    batches = mask.reshape(100, -1, 16).mean(axis=1)
                    sd = np.maximum(batches.std(axis=0, ddof=1) / 10, np.sqrt(expect * (1 - expect) / n))
                    np.testing.assert_array_less(np.abs(measured - expect), 5 * sd + 1e-12)
                    np.testing.assert_array_equal(measured[plan.k:], 0)

    def test_bound_tells_offsets_apart(self):
        # the check above can fail: under fades of 3 packets, a copy one packet
        # later is measured far outside the bound of the analytic value for a
        # copy two packets later (and the other way round)
        m = up.LossModel.gilbert_elliott(0.2, 3.0)
        n = N_FRAMES
        lost = loss_pattern("ge", 0.2, 3.0, n + 1, 5)
        mask = simulate(np.ones(n + 1, np.int32), np.ones((n + 1, 1), np.int32), lost, 1)[:n, 0]
        sd = mask.reshape(100, -1).mean(axis=1).std(ddof=1) / 10
        self.assertLess(abs(mask.mean() - m.arrival_probability((0, 1))), 5 * sd)
        self.assertGreater(abs(mask.mean() - m.arrival_probability((0, 2))), 10 * sd)


class qa_allocation(gr_unittest.TestCase):

    def test_greedy_equals_brute_force(self):
        rng = np.random.default_rng(3)
        weight_sets = [up.default_weights()] + [random_weights(rng) for _ in range(3)]
        channels = [("iid", L, None) for L in (0.0, 0.05, 0.1, 0.3, 0.6)] + \
                   [("ge", L, B) for L in (0.05, 0.1, 0.2, 0.3) for B in (1.0, 3.0, 8.0)]
        n = 0
        for (kind, L, B), S, D in itertools.product(channels, range(1, 12), (0, 1, 2)):
            model = model_of(kind, L, B)
            for wi, w in enumerate(weight_sets):
                g = up.greedy_plan(S, model, D, w)
                b = up.brute_force_plan(S, model, D, w)
                n += 1
                if g != b or abs(up.expected_importance(g, model, w) - up.expected_importance(b, model, w)) > 1e-12:
                    self.fail(f"{kind} L={L} B={B} S={S} D={D} weights#{wi}: greedy {g} "
                              f"({up.expected_importance(g, model, w):.12f}) != brute force {b} "
                              f"({up.expected_importance(b, model, w):.12f})")
        self.assertEqual(n, len(channels) * 11 * 3 * 4)

    def test_greedy_equals_brute_force_raw_gilbert(self):
        rng = np.random.default_rng(5)
        for _ in range(150):
            m = up.LossModel(float(rng.random()), float(rng.random()), float(rng.random() * 0.3),
                             float(0.5 + rng.random() * 0.5))
            w = random_weights(rng)
            S, D = int(rng.integers(1, 12)), int(rng.integers(0, 3))
            g, b = up.greedy_plan(S, m, D, w), up.brute_force_plan(S, m, D, w)
            self.assertAlmostEqual(up.expected_importance(g, m, w), up.expected_importance(b, m, w), places=12,
                                   msg=f"{m} S={S} D={D}: {g} vs {b}")

    def test_iid_optimum_is_top_units(self):
        # i.i.d.: the j-th packet carrying codebook c gains w_c p^(j-1) (1-p);
        # the optimum is the sum of the S largest such gains (j <= D+1, copies
        # only for c < 15)
        w = up.default_weights()
        for p, S, D in itertools.product((0.05, 0.2, 0.5), (4, 8, 15, 40), (1, 2)):
            with self.subTest(p=p, S=S, D=D):
                gains = [w[c] * p ** (j - 1) * (1 - p) for c in range(32) for j in range(1, D + 2)
                         if j == 1 or c < 15]
                best = sum(sorted(gains, reverse=True)[:S])
                plan = up.greedy_plan(S, up.LossModel.iid(p), D, w)
                self.assertAlmostEqual(up.expected_importance(plan, up.LossModel.iid(p), w), best, places=12)

    def test_plans_respect_limits(self):
        w = up.default_weights()
        for budget in list(range(140, 2100, 37)) + [550, 1100, 2060, 5000, 9000]:
            S = up.slots_for_budget(budget)
            for kind, L, B in (("iid", 0.0, None), ("iid", 0.2, None), ("ge", 0.3, 3.0), ("ge", 0.05, 1.0)):
                for D in (0, 1, 2):
                    for n_q in (32, 3):
                        p = up.greedy_plan(S, model_of(kind, L, B), D, w, n_q=n_q)
                        with self.subTest(budget=budget, channel=(kind, L, B), D=D, n_q=n_q, plan=str(p)):
                            p.check(S)
                            self.assertEqual(len(p.copies), D)
                            self.assertLessEqual(p.k, n_q)
                            self.assertTrue(all(r <= p.k for r in p.copies))
                            self.assertLessEqual(up.token_bitrate(p), budget * 1.01)

    def test_no_loss_sends_codebooks_not_copies(self):
        w = up.default_weights()
        for S in (4, 8, 15, 40):
            p = up.greedy_plan(S, up.LossModel.iid(0.0), 2, w)
            self.assertEqual(p, up.Plan(min(S, 32), (0, 0)))
            self.assertEqual(up.fixed_plan(S, 2), up.Plan(min(S, 32), (0, 0)))

    def test_burst_length_moves_copies(self):
        w = up.default_weights()
        # isolated losses (B = 1): offset 1 always rescues, offset 2 is wasted
        p1 = up.greedy_plan(15, up.LossModel.gilbert_elliott(0.2, 1.0), 2, w)
        self.assertGreater(p1.copies[0], 0)
        self.assertEqual(p1.copies[1], 0)
        # fades of 3 packets: offset 2 beats offset 1
        p3 = up.greedy_plan(15, up.LossModel.gilbert_elliott(0.2, 3.0), 2, w)
        self.assertGreater(p3.copies[1], p3.copies[0])
        # more loss, more protection
        lo = up.greedy_plan(8, up.LossModel.iid(0.05), 1, w)
        hi = up.greedy_plan(8, up.LossModel.iid(0.3), 1, w)
        self.assertGreater(hi.copies[0], lo.copies[0])
        self.assertLess(hi.k, lo.k)

    def test_adaptive_not_worse_than_any_fixed_plan(self):
        w = up.default_weights()
        for S, (kind, L, B) in itertools.product((4, 8, 15), (("ge", 0.1, 3.0), ("iid", 0.3, None))):
            m = model_of(kind, L, B)
            g = up.greedy_plan(S, m, 2, w)
            vg = up.expected_importance(g, m, w)
            for p in up.all_plans(S, 2):
                self.assertLessEqual(up.expected_importance(p, m, w), vg + 1e-12)
            if g != up.fixed_plan(S, 2):
                self.assertGreater(vg, up.expected_importance(up.fixed_plan(S, 2), m, w) + 1e-3)


class qa_controller_sequence(gr_unittest.TestCase):
    """UepController: the plan sequence the block emits."""

    def run_frames(self, ctl, vads, n_q=32, start=0):
        return [ctl.plan(start + i, n_q, v) for i, v in enumerate(vads)]

    def test_speech_stream_is_steady_state_plan(self):
        w = up.default_weights()
        for budget, D, (kind, L, B) in itertools.product((550, 1100, 2060), (0, 1, 2),
                                                         (("iid", 0.1, None), ("ge", 0.2, 3.0),
                                                          ("ge", 0.3, 1.0), ("ge", 0.05, 3.0))):
            with self.subTest(budget=budget, D=D, channel=(kind, L, B)):
                m = model_of(kind, L, B)
                ctl = up.UepController(budget, m, D)
                plans = self.run_frames(ctl, [True] * 10)
                best = up.greedy_plan(up.slots_for_budget(budget), m, D, w)
                self.assertEqual(ctl.speech_plan(), best)
                for p in plans[D:]:
                    self.assertEqual(p, best)
                for n, p in enumerate(plans[:D]):  # no copies of frames before the start
                    self.assertTrue(all(r == 0 for r in p.copies[n:]), (n, p))
                    p.check(up.slots_for_budget(budget))

    def test_fixed_mode(self):
        ctl = up.UepController(1100, up.LossModel.iid(0.3), 2, mode="fixed")
        for p in self.run_frames(ctl, [True, False, None, True]):
            self.assertEqual(p, up.Plan(8, (0, 0)))
        self.assertEqual(ctl.plan(10, 5), up.Plan(5, (0, 0)))

    def test_silence_moves_budget_to_speech(self):
        m = up.LossModel.gilbert_elliott(0.2, 3.0)
        ctl = up.UepController(1100, m, 2)
        best = ctl.speech_plan()
        plans = self.run_frames(ctl, [True] * 6 + [False] * 4 + [True] * 6)
        # the first silent frame: 2 codebooks, the rest of the packet protects speech
        p = plans[6]
        self.assertEqual(p.k, up.SILENCE_CODEBOOKS)
        self.assertEqual(p.slots, 8)
        self.assertGreater(sum(p.copies), sum(best.copies))
        # long silence: copies of silent frames only need 2 codebooks, the packet shrinks
        self.assertEqual(plans[9], up.Plan(2, (2, 2)))
        # speech again: full plan once the window is speech only
        self.assertEqual(plans[15], best)
        for q in plans:
            q.check(8)
        # without content adaptation vad is ignored
        off = up.UepController(1100, m, 2, content_adaptation=False)
        self.assertTrue(all(q == best for q in self.run_frames(off, [True] * 6 + [False] * 4 + [True] * 6)[2:]))

    def test_content_adaptation_delivers_more_speech(self):
        # talk spurts and pauses: expected importance-weighted delivery of the
        # speech frames, exact over the plan sequence, with and without
        # content adaptation; the simulation agrees with the exact value
        rng = np.random.default_rng(2)
        n = 4000
        vad = np.repeat(rng.random(n // 10) < 0.7, 10)
        w = up.default_weights()
        for budget, (kind, L, B) in itertools.product((550, 1100, 2060), (("ge", 0.2, 3.0), ("iid", 0.1, None))):
            with self.subTest(budget=budget, channel=(kind, L, B)):
                m = model_of(kind, L, B)
                S = up.slots_for_budget(budget)
                got = {}
                for ca in (True, False):
                    ctl = up.UepController(budget, m, 2, content_adaptation=ca)
                    plans = [ctl.plan(i, 32, bool(v)) for i, v in enumerate(vad)]
                    self.assertLessEqual(max(p.slots for p in plans), S)
                    q = up.sequence_arrival_probabilities(plans, m)
                    got[ca] = float((q[vad] @ w).mean())
                    if ca and budget == 1100:
                        k = np.array([p.k for p in plans] * 25, np.int32)
                        copies = np.array([p.copies for p in plans] * 25, np.int32)
                        mask = simulate(k, copies, loss_pattern(kind, L, B, len(k), 99), 32)
                        v = (mask @ w).reshape(25, n)[:, vad].mean(axis=1)
                        self.assertLess(abs(v.mean() - got[ca]), 5 * v.std(ddof=1) / 5)
                self.assertGreater(got[True], got[False] + 0.005, got)

    def test_restart_and_gaps(self):
        m = up.LossModel.iid(0.3)
        ctl = up.UepController(1100, m, 1)
        best = ctl.speech_plan()
        self.assertGreater(best.copies[0], 0)
        self.run_frames(ctl, [True] * 5)
        self.assertEqual(ctl.plan(5, 32), best)
        self.assertEqual(ctl.plan(7, 32).copies, (0,))  # frame 6 never seen: nothing to copy
        self.assertEqual(ctl.plan(0, 32).copies, (0,))  # restart
        self.assertEqual(ctl.plan(1, 32), best)

    def test_few_tokens_per_frame(self):
        ctl = up.UepController(2060, up.LossModel.iid(0.1), 1)
        plans = self.run_frames(ctl, [True] * 4, n_q=4)
        for p in plans:
            self.assertLessEqual(p.k, 4)
            self.assertLessEqual(p.copies[0], 4)
        self.assertEqual(plans[-1], up.Plan(4, (4,)))

    def test_set_budget_and_model(self):
        ctl = up.UepController(550, up.LossModel.iid(0.0), 1)
        self.assertEqual(ctl.speech_plan(), up.Plan(4, (0,)))
        ctl.set_budget(2060)
        self.assertEqual(ctl.speech_plan(), up.Plan(15, (0,)))
        ctl.set_model(up.LossModel.iid(0.3))
        self.assertGreater(ctl.speech_plan().copies[0], 0)
        with self.assertRaisesRegex(ValueError, "budget"):
            ctl.set_budget(50)

    def test_constructor_errors(self):
        m = up.LossModel.iid(0.1)
        for kwargs, what in (({"max_offset": 3}, "0..2"), ({"mode": "greedy"}, "adaptive"),
                             ({"weights": [1, 2]}, "non-increasing"), ({"silence_codebooks": 0}, "1..32")):
            with self.subTest(kwargs=kwargs):
                with self.assertRaisesRegex(ValueError, what):
                    up.UepController(1100, m, **kwargs)
        with self.assertRaisesRegex(ValueError, "budget"):
            up.UepController(100, m)


class qa_feedback_ageing(gr_unittest.TestCase):
    """Loss reports age in stream time (80 ms per frame planned): the frame
    indices are the clock, so every step is exact."""

    PARAMS = up.LossModel.gilbert_elliott(0.05, 1.0)
    REPORT = up.LossModel.gilbert_elliott(0.1, 1.0)

    def test_state_sequence_and_fallback_plans(self):
        # timeout 0.4 s = 5 frames; a twin without ageing is given the same
        # models by hand: the plans must agree frame for frame
        ctl = up.UepController(1100, self.PARAMS, 2, feedback_timeout=0.4)
        twin = up.UepController(1100, self.PARAMS, 2, feedback_timeout=0)
        fallback = up.fallback_model(self.PARAMS)
        states, ages, plans, twin_plans = [], [], [], []
        for f in range(24):
            if f in (3, 15):
                ctl.report(self.REPORT)
                twin.set_model(self.REPORT)
            if f in (7, 19):
                twin.set_model(fallback)
            plans.append(ctl.plan(f, 32, True))
            twin_plans.append(twin.plan(f, 32, True))
            states.append(ctl.feedback_state)
            ages.append(ctl.report_age)
        self.assertEqual(states, ["parameters"] * 3 + ["feedback"] * 4 + ["stale"] * 8 + ["feedback"] * 4
                         + ["stale"] * 5)
        self.assertEqual(ages[:3], [None] * 3)
        self.assertEqual([round(a / 0.08, 9) for a in ages[3:9]], [1, 2, 3, 4, 5, 6])  # stale at exactly 5 (frame 7)
        self.assertEqual(ctl.stale_count, 2)
        self.assertEqual(plans, twin_plans)
        stale_plan = up.greedy_plan(8, up.LossModel.gilbert_elliott(0.3, 3.0), 2, up.default_weights())
        report_plan = up.greedy_plan(8, self.REPORT, 2, up.default_weights())
        self.assertNotEqual(stale_plan, report_plan)
        self.assertEqual(plans[9:15], [stale_plan] * 6)
        self.assertEqual(plans[17:19], [report_plan] * 2)
        self.assertIs(ctl.model, ctl._fallback)
        self.assertAlmostEqual(ctl.model.loss_rate, 0.3)
        self.assertAlmostEqual(ctl.model.mean_burst, 3.0)

    def test_timeout_rounds_up_to_a_frame(self):
        ctl = up.UepController(1100, self.PARAMS, 1, feedback_timeout=0.41)
        ctl.report(self.REPORT)
        states = [(ctl.plan(f, 32), ctl.feedback_state)[1] for f in range(7)]
        self.assertEqual(states, ["feedback"] * 5 + ["stale"] * 2)  # 6 frames = 480 ms >= 410 ms

    def test_zero_timeout_never_ages(self):
        ctl = up.UepController(1100, self.PARAMS, 1, feedback_timeout=0)
        ctl.report(self.REPORT)
        for f in range(2000):
            ctl.plan(f, 32)
        self.assertEqual((ctl.feedback_state, ctl.stale_count), ("feedback", 0))
        self.assertIs(ctl.model, self.REPORT)
        self.assertAlmostEqual(ctl.report_age, 160.0)

    def test_no_ageing_without_a_report(self):
        ctl = up.UepController(1100, self.PARAMS, 1, feedback_timeout=0.08)
        for f in range(50):
            ctl.plan(f, 32)
        self.assertEqual((ctl.feedback_state, ctl.report_age, ctl.stale_count), ("parameters", None, 0))
        # new parameters forget the report: nothing ages until the next one
        ctl.report(self.REPORT)
        ctl.set_model(self.PARAMS)
        for f in range(50, 60):
            ctl.plan(f, 32)
        self.assertEqual((ctl.feedback_state, ctl.report_age, ctl.stale_count), ("parameters", None, 0))
        self.assertIs(ctl.model, self.PARAMS)

    def test_restarts_and_jumps(self):
        # a restart counts one frame; a jump of the index counts every frame it skips
        ctl = up.UepController(1100, self.PARAMS, 1, feedback_timeout=8.0)
        ctl.plan(10, 32)
        ctl.report(self.REPORT)
        ctl.plan(0, 32)
        self.assertAlmostEqual(ctl.report_age, 0.08)
        ctl.plan(98, 32)
        self.assertEqual(ctl.feedback_state, "feedback")
        ctl.plan(99, 32)  # 100 frames = 8 s
        self.assertEqual(ctl.feedback_state, "stale")
        ctl.report(self.REPORT)
        ctl.plan(2 ** 64 - 1, 32)
        self.assertEqual((ctl.feedback_state, ctl.stale_count), ("stale", 2))

    def test_fallback_loss(self):
        self.assertEqual(up.fallback_loss(0.1, 1.0), (0.3, 3.0))
        self.assertEqual(up.fallback_loss(0.5, 5.0), (0.5, 5.0))
        self.assertEqual(up.fallback_loss(0.5, 1.0), (0.5, 3.0))
        self.assertEqual(up.fallback_loss(0.99, 2000.0), (0.95, 1000.0))
        L, B = up.fallback_loss(0.9, 1.0)
        self.assertEqual(L, 0.9)
        self.assertAlmostEqual(B, 9.0)
        m = up.fallback_model(up.LossModel.iid(1.0))  # a raw model the parameters cannot express
        self.assertAlmostEqual(m.loss_rate, 0.95)
        L, B = up.clamp_loss(0.6, 1.0)  # burst below L/(1-L) = 1.5
        self.assertEqual(L, 0.6)
        self.assertAlmostEqual(B, 1.5)

    def test_fallback_plan_is_robust(self):
        # docs/uep_controller.md, "Feedback ageing": over i.i.d. or burstier
        # channels of 2..50 % loss, the plan for the fallback model loses at
        # most 10 % of J against the plan for the true channel, at every
        # budget and D; a plan for a clean channel (K = S) loses up to 31 %
        w = up.default_weights()
        losses = (0.02, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5)
        channels = [(L, B) for L in losses for B in (1 / (1 - L), 2.0, 3.0, 5.0) if B >= 1 / (1 - L)]
        worst = {}
        for budget, D in itertools.product((550, 1100, 2060), (1, 2)):
            S = up.slots_for_budget(budget)
            fb = up.greedy_plan(S, up.fallback_model(up.check_loss_parameters(0.1, 1.0)), D, w)  # (0.3, 3)
            for name, p in (("fallback", fb), ("clean", up.fixed_plan(S, D))):
                loss = max(1 - up.expected_importance(p, m, w)
                           / up.expected_importance(up.greedy_plan(S, m, D, w), m, w)
                           for m in (up.LossModel.gilbert_elliott(L, B) for L, B in channels))
                worst[name] = max(worst.get(name, 0.0), loss)
        self.assertLess(worst["fallback"], 0.10)
        self.assertGreater(worst["clean"], 0.30)

    def test_bad_timeout(self):
        for v in (-1, float("nan"), float("inf"), 3601, "5", True, None):
            with self.subTest(v=v):
                with self.assertRaisesRegex(ValueError, r"feedback_timeout must be a finite number >= 0 and <= 3600"):
                    up.UepController(1100, self.PARAMS, feedback_timeout=v)


if __name__ == "__main__":
    gr_unittest.run(qa_allocation)  # runs every TestCase in this file
