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


if __name__ == "__main__":
    gr_unittest.run(qa_frame_pdu)
