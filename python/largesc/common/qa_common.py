#!/usr/bin/env python3
#
# Copyright 2026 gr-largesc authors.
# SPDX-License-Identifier: GPL-3.0-or-later
#
"""QA of the facts defined once in common/: the token-frame PDU (keys, parser,
builders), the weight spec parser and the frame constants (against the C++
core and Mimi's published numbers)."""

from pathlib import Path

import numpy as np
import pmt
from gnuradio import gr_unittest

from gnuradio import largesc
from gnuradio.largesc.common import constants as K
from gnuradio.largesc.common import frame_pdu as FP
from gnuradio.largesc.common import latency as L
from gnuradio.largesc.common.weights_spec import WeightsSpec, WeightsSpecError, parse_weights_spec


def pdu(meta_items, tokens, vec=pmt.init_u16vector):
    meta = pmt.make_dict()
    for k, v in meta_items:
        meta = pmt.dict_add(meta, pmt.intern(k), v)
    return pmt.cons(meta, vec(len(tokens), list(tokens)))


def u8(values):
    return pmt.init_u8vector(len(values), list(values))


class qa_constants(gr_unittest.TestCase):

    def test_frame_facts(self):
        # Mimi: 24 kHz, 1920 samples per frame, 12.5 Hz, 32 codebooks of 2048 entries
        self.assertEqual((K.SAMPLE_RATE, K.FRAME_SIZE, K.FRAME_RATE, K.FRAME_MS), (24000, 1920, 12.5, 80.0))
        self.assertEqual((K.N_CODEBOOKS, K.CARDINALITY, K.TOKEN_BITS), (32, 2048, 11))

    def test_token_width_is_the_packet_formats(self):
        self.assertEqual(K.TOKEN_BITS, largesc.TOKEN_BITS)
        self.assertEqual(largesc.uep_plan.SLOT_BITRATE, 137.5)

    def test_one_budget_check(self):
        up = largesc.uep_plan
        self.assertEqual(up.check_budget(550), 550.0)
        self.assertEqual(up.check_budget(300), 300.0)           # the controller takes any slot count
        self.assertEqual(up.check_budget(544.5, largesc_range=True), 544.5)   # 550 - 1 %
        for bad in (100, 300, 2100, float("nan"), "1100"):
            with self.subTest(budget=bad):
                with self.assertRaisesRegex(ValueError, r"budget .*(outside LargeSC's 550\.\.2060 bit/s "
                                                        r"\(4\.\.15 token slots of 137\.5 bit/s\)|number of bit/s)"):
                    up.check_budget(bad, largesc_range=True)
        with self.assertRaisesRegex(ValueError, r"budget must be a number of bit/s in 136\.1\.\.8525 \(1\.\.62 token"):
            up.check_budget(1e6)


class qa_frame_pdu(gr_unittest.TestCase):

    def test_builders_and_parser_agree(self):
        msg = FP.make_frame_pdu(7, [1, 2, 2047], energy_db=-20.0, vad=True, untrained=True)
        f = FP.parse_frame(msg)
        self.assertEqual((f.frame, f.tokens.tolist(), f.vad, f.mask), (7, [1, 2, 2047], True, None))
        self.assertEqual(f.present().tolist(), [True] * 3)
        meta = pmt.car(msg)
        self.assertTrue(pmt.to_bool(pmt.dict_ref(meta, FP.UNTRAINED, pmt.PMT_F)))
        self.assertEqual(pmt.to_double(pmt.dict_ref(meta, FP.ENERGY_DB, pmt.PMT_NIL)), -20.0)
        eos = FP.parse_frame(FP.make_eos_pdu(9), allow_eos=True)
        self.assertEqual(eos, FP.EndOfStream(9))
        with self.assertRaises(FP.MalformedFrame):     # an EOS PDU is no frame where EOS is not allowed
            FP.parse_frame(FP.make_eos_pdu(9))

    def test_mask_and_recovered(self):
        msg = pdu([("frame", pmt.from_uint64(3)), ("n_q", pmt.from_long(4)), ("mask", u8([1, 0, 0, 1])),
                   ("recovered", u8([0, 1, 0, 0]))], [5, 6, 7, 8])
        f = FP.parse_frame(msg, require_mask=True)
        self.assertEqual(f.mask.tolist(), [1, 0, 0, 1])
        self.assertEqual(f.present().tolist(), [True, True, False, True])

    def test_every_rule_with_its_reason(self):
        good = [("frame", pmt.from_uint64(3)), ("n_q", pmt.from_long(2))]
        cases = [
            (pmt.intern("junk"), "not a PDU"),
            (pmt.make_dict(), "not a PDU"),
            (pmt.cons(pmt.intern("x"), pmt.init_u16vector(2, [1, 2])), "not a PDU"),
            (pdu([("frame", pmt.from_double(3.0)), ("n_q", pmt.from_long(2))], [1, 2]), "bad frame index"),
            (pdu([("frame", pmt.from_long(-1)), ("n_q", pmt.from_long(2))], [1, 2]), "bad frame index"),
            (pdu([("n_q", pmt.from_long(2))], [1, 2]), "bad frame index"),
            (pdu(good, [1, 2], vec=pmt.init_u8vector), "bad tokens"),
            (pdu([("frame", pmt.from_uint64(3)), ("n_q", pmt.from_long(0))], []), "bad tokens"),
            (pdu([("frame", pmt.from_uint64(3)), ("n_q", pmt.from_long(33))], range(33)), "bad tokens"),
            (pdu(good, [1, 2048]), "bad tokens"),
            (pdu([("frame", pmt.from_uint64(3)), ("n_q", pmt.from_long(3))], [1, 2]), "bad n_q"),
            (pdu([("frame", pmt.from_uint64(3))], [1, 2]), "bad n_q"),
            (pdu(good + [("mask", u8([1]))], [1, 2]), "bad mask"),
            (pdu(good + [("mask", u8([1, 2]))], [1, 2]), "bad mask"),
            (pdu(good + [("mask", u8([1, 1])), ("recovered", u8([0, 5]))], [1, 2]), "bad mask"),
            (pdu(good + [("vad", pmt.from_long(1))], [1, 2]), "bad vad"),
        ]
        for msg, reason in cases:
            with self.subTest(msg=pmt.write_string(msg)[:80]):
                with self.assertRaises(FP.MalformedFrame) as cm:
                    FP.parse_frame(msg)
                self.assertEqual(cm.exception.reason, reason)
        # what a block may leave optional: index, n_q (token_recovery), but a mask it needs
        f = FP.parse_frame(pdu([("mask", u8([1, 0]))], [1, 2]), require_index=False, require_n_q=False,
                           require_mask=True)
        self.assertEqual((f.frame, f.mask.tolist()), (None, [1, 0]))
        with self.assertRaises(FP.MalformedFrame) as cm:
            FP.parse_frame(pdu(good, [1, 2]), require_mask=True)
        self.assertEqual(cm.exception.reason, "bad mask")
        self.assertEqual(FP.frame_index(pmt.car(pdu([("frame", pmt.from_uint64(2 ** 64 - 1))], [1]))),
                         (True, 2 ** 64 - 1))


class qa_weights_spec(gr_unittest.TestCase):

    def test_kinds(self):
        hub = ("kyutai/repo", "model.safetensors")
        self.assertEqual(parse_weights_spec("random"), WeightsSpec("random", 0))
        self.assertEqual(parse_weights_spec("random:7"), ("random", 7))
        self.assertTrue(parse_weights_spec("random:7").untrained)
        self.assertEqual(parse_weights_spec("hf", hub=hub), ("hub", hub))
        self.assertEqual(parse_weights_spec("hf:a/b", hub=hub), ("hub", ("a/b", "model.safetensors")))
        self.assertEqual(parse_weights_spec("hf://a/b/c/d.st", hub=hub), ("hub", ("a/b", "c/d.st")))
        self.assertEqual(parse_weights_spec("hf"), ("file", Path("hf")))     # no hub for this model
        self.assertEqual(parse_weights_spec("file:///x/y.st"), ("file", Path("/x/y.st")))
        self.assertEqual(parse_weights_spec("~/w.st").value, Path.home() / "w.st")
        self.assertFalse(parse_weights_spec("/x/y.st").untrained)

    def test_errors(self):
        for spec, msg in (("random:abc", "seed must be an integer"), (None, "no weight spec"),
                          ("hf:onlyowner", "expected 'hf:OWNER/REPO")):
            with self.subTest(spec=spec):
                with self.assertRaisesRegex(WeightsSpecError, msg):
                    parse_weights_spec(spec, hub=("a/b", "c"))

    def test_every_model_uses_it(self):
        from gnuradio.largesc.codec import weights as W
        from gnuradio.largesc.eval.codecs import encodec as N
        from gnuradio.largesc import recovery as R
        self.assertEqual(W.parse_spec("random:3"), ("random", 3))
        with self.assertRaisesRegex(W.WeightsError, "seed must be an integer"):
            W.parse_spec("random:x")
        self.assertEqual(N.resolve_weights("random:4"), ("random", 4))
        self.assertEqual(R.parse_checkpoint("random:5"), ("random", 5))
        with self.assertRaisesRegex(R.RecoveryError, "expected 'random:SEED'"):
            R.parse_checkpoint("random:x")
        self.assertIsInstance(np.int64(R.parse_checkpoint(None).value), np.int64)


class qa_latency(gr_unittest.TestCase):
    """common/latency.py: the capture clock on a scripted host clock, the latency window."""

    def test_capture_clock_follows_the_newest_sample(self):
        now = [100.0]
        c = L.CaptureClock(16000, clock=lambda: now[0])
        self.assertIsNone(c.capture_time(0))
        # 10 ms chunks of 160 samples seen 2 ms after their release, one late call (a backlog:
        # the block saw the buffer 30 ms late, the newest sample still in it), one early call
        for i, delay in enumerate([0.002, 0.002, 0.030, 0.002, 0.001]):
            now[0] = 100.0 + 0.010 * (i + 1) + delay
            c.observe(160 * (i + 1))
        # anchor: the tightest bound, t - n/rate = 100.001 (the 1 ms call), less no drift allowance
        self.assertAlmostEqual(c.anchor, 100.001, places=9)
        self.assertAlmostEqual(c.capture_time(1279), 100.001 + 0.08, places=9)  # frame 0's last sample
        self.assertAlmostEqual(c.capture_time(2559) - c.capture_time(1279), 0.08, places=12)

    def test_capture_clock_follows_a_slow_source_within_the_drift_allowance(self):
        now = [0.0]
        c = L.CaptureClock(1000, clock=lambda: now[0])
        c.observe(0)
        # the source runs 50 ppm slow: sample n is in at n / 1000 * (1 + 5e-5)
        for n in range(1000, 600001, 1000):
            now[0] = n / 1000 * (1 + 5e-5)
            c.observe(n)
        # after 600 s the true anchor is 0.03 s later than at the start; 50 ppm < ANCHOR_DRIFT
        self.assertAlmostEqual(c.anchor, 0.03, delta=1e-3)
        with self.assertRaisesRegex(ValueError, "rate must be > 0"):
            L.CaptureClock(0)

    def test_latency_stats_nearest_rank(self):
        s = L.LatencyStats(window=20)
        self.assertEqual(s.summary()["frames"], 0)
        self.assertNotEqual(s.summary()["p50_ms"], s.summary()["p50_ms"])  # NaN before any
        for v in [0.001 * k for k in range(1, 31)]:   # 1..30 ms; the window keeps 11..30
            s.add(v)
        s.add(float("nan"))
        s.add(None)
        got = s.summary()
        self.assertEqual((got["frames"], got["window"], s.rejected), (30, 20, 2))
        self.assertAlmostEqual(got["p50_ms"], 20.0)    # rank ceil(0.5 x 20) = 10th of 11..30
        self.assertAlmostEqual(got["p95_ms"], 29.0)    # rank 19
        self.assertAlmostEqual(got["max_ms"], 30.0)

    def test_meta_time(self):
        meta = pmt.dict_add(pmt.make_dict(), FP.RX_TIME, pmt.from_double(3.5))
        meta = pmt.dict_add(meta, FP.CAPTURE_TIME, pmt.from_double(float("nan")))
        self.assertEqual(FP.meta_time(meta, FP.RX_TIME), 3.5)
        self.assertIsNone(FP.meta_time(meta, FP.CAPTURE_TIME))
        self.assertIsNone(FP.meta_time(pmt.PMT_NIL, FP.RX_TIME))
        self.assertIsNone(FP.meta_time(pmt.dict_add(pmt.make_dict(), FP.RX_TIME, pmt.intern("x")), FP.RX_TIME))


class qa_live(gr_unittest.TestCase):
    """common/live.py: the live-process settings, applied once."""

    def test_prepare_once(self):
        import gc
        import sys
        from gnuradio.largesc.common import live
        sys.setswitchinterval(0.005)
        self.assertTrue(live.prepare())                       # nothing else in this process starts a live block
        self.assertEqual(sys.getswitchinterval(), live.LIVE_SWITCH_S)
        self.assertGreater(gc.get_freeze_count(), 1000)       # this process's objects, frozen
        self.assertFalse(live.prepare())                      # once per process
        gc.unfreeze()
        sys.setswitchinterval(0.005)


if __name__ == "__main__":
    gr_unittest.run(qa_frame_pdu)
