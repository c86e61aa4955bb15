#!/usr/bin/env python3
#
# Copyright 2026 gr-largesc authors.
# SPDX-License-Identifier: GPL-3.0-or-later
#
"""Hostile messages into RUNNING flowgraphs, one test per Python block
(issue 13): wrong PMT and vector types, empty and 64 KiB PDUs, out-of-range
values, NaN and inf, huge and negative frame indices, bursts of 1000 without
pause; each followed by valid traffic that must come out exact, with the
counters adding up, the block still answering (no thread death) and every
wait bounded (pacing.wait_for raises after its timeout). Plus the guard
(guard.py) and the construction checks (params.py) by parameter name.

Codec blocks use random untrained Mimi weights (weights="random:1")."""

import os
import tempfile
import threading
import time
import zlib

import numpy as np
import pmt
from gnuradio import blocks, gr, gr_unittest, pdu

from gnuradio import largesc
from gnuradio.largesc.common import guard as G
from gnuradio.largesc.common import params as P
from gnuradio.largesc import phy
from gnuradio.largesc.uep import uep_plan as up
from gnuradio.largesc.codec.mimi_decoder import mimi_decoder
from gnuradio.largesc.codec.mimi_encoder import mimi_encoder
from gnuradio.largesc.common.pacing import wait_for
from gnuradio.largesc.recovery import RecoveryError

SEED = "random:1"
TIMEOUT = 30.0
NAN, INF = float("nan"), float("inf")


def d(**kw):
    """PMT dict from keyword arguments (PMT values, or Python ints -> long)."""
    m = pmt.make_dict()
    for k, v in kw.items():
        if not isinstance(v, pmt.pmt_base):
            v = pmt.from_long(v) if isinstance(v, int) else pmt.to_pmt(v)
        m = pmt.dict_add(m, pmt.intern(k), v)
    return m


def frame_pdu(frame, tokens, n_q=None, mask=None, **extra):
    """A token-frame PDU; frame: int (-> uint64) or a PMT."""
    if isinstance(frame, int):
        frame = pmt.from_uint64(frame)
    meta = d(**extra)
    if frame is not None:
        meta = pmt.dict_add(meta, pmt.intern("frame"), frame)
    toks = tokens if isinstance(tokens, pmt.pmt_base) else pmt.init_u16vector(len(tokens), list(tokens))
    meta = pmt.dict_add(meta, pmt.intern("n_q"),
                        pmt.from_long(pmt.length(toks) if n_q is None else n_q))
    if mask is not None:
        mv = mask if isinstance(mask, pmt.pmt_base) else pmt.init_u8vector(len(mask), list(mask))
        meta = pmt.dict_add(meta, pmt.intern("mask"), mv)
    return pmt.cons(meta, toks)


def toks(f, n=8):
    return [(f * 37 + 11 * k) % 2048 for k in range(n)]


def not_pdus():
    """Messages that are no PDU at all, or a PDU of the wrong kind."""
    big8 = pmt.init_u8vector(65536, [0xFF] * 65536)           # no LargeSC header either
    big16 = pmt.init_u16vector(32768, [7] * 32768)           # 64 KiB
    return [pmt.PMT_NIL, pmt.PMT_T, pmt.PMT_F, pmt.from_long(5), pmt.from_double(NAN),
            pmt.from_double(INF), pmt.intern("hello"), pmt.make_dict(),
            d(frame=3, n_q=8), pmt.cons(pmt.PMT_NIL, pmt.PMT_NIL),
            pmt.cons(pmt.from_long(1), pmt.init_u16vector(2, [1, 2])),
            pmt.cons(pmt.make_dict(), pmt.init_u8vector(0, [])),
            pmt.cons(pmt.make_dict(), big8), pmt.cons(pmt.make_dict(), big16),
            pmt.cons(d(frame=1, n_q=4), pmt.init_f32vector(4, [1.0] * 4)),
            pmt.cons(d(frame=1, n_q=4), pmt.init_s32vector(4, [1] * 4)),
            pmt.make_vector(3, pmt.PMT_T), pmt.make_tuple(pmt.from_long(1), pmt.from_long(2))]


def bad_frames(idx):
    """Token-frame PDUs that are malformed by the documented rule; those with
    a readable index use `idx`."""
    full = [1] * 8
    return [frame_pdu(pmt.from_long(-1), toks(0), mask=full),
            frame_pdu(pmt.intern("seven"), toks(0), mask=full),
            frame_pdu(pmt.from_double(3.0), toks(0), mask=full),
            frame_pdu(pmt.from_double(NAN), toks(0), mask=full),
            frame_pdu(idx, [], mask=[]),                                    # empty
            frame_pdu(idx, [5] * 33, mask=[1] * 33),                        # 33 tokens
            frame_pdu(idx, pmt.init_u16vector(32768, [1] * 32768), mask=full),  # 64 KiB
            frame_pdu(idx, toks(0), n_q=7, mask=full),                      # n_q mismatch
            frame_pdu(idx, [4095] + toks(0)[1:], mask=full),                # token > 2047
            frame_pdu(idx, toks(0), mask=[2] + [1] * 7),                    # mask value 2
            frame_pdu(idx, toks(0), mask=[1] * 7),                          # mask length
            frame_pdu(idx, toks(0), mask=pmt.init_f32vector(8, [1.0] * 8)),  # mask type
            pmt.cons(d(frame=idx, n_q=8, mask=pmt.init_u8vector(8, full)),
                     pmt.init_u8vector(8, [1] * 8))]                        # u8 tokens


def captured(guard):
    """Replaces guard.log by a list of lines (WARNING lines the block writes)."""
    lines = []
    guard.log = lines.append
    return lines


class Flowgraph:
    def __init__(self, blk, outs=("out",)):
        self.tb = gr.top_block()
        self.blk = blk
        self.dbg = {}
        for port in outs:
            self.dbg[port] = blocks.message_debug()
            self.tb.msg_connect(blk, port, self.dbg[port], "store")
        self.tb.start()

    def post(self, port, msgs):
        bb = self.blk.to_basic_block()
        for m in msgs:
            bb._post(pmt.intern(port), m)
        return len(msgs)

    def out(self, port="out"):
        g = self.dbg[port]
        return [g.get_message(i) for i in range(g.num_messages())]

    def stop(self):
        self.tb.stop()
        self.tb.wait()


class qa_guard_and_params(gr_unittest.TestCase):

    def test_guard_counts_logs_rate_limited(self):
        g = G.Guard("x", logger=object())
        lines = captured(g)
        for _ in range(2500):
            g.note("in: bad", "detail")
        g.note("feedback: bad")
        self.assertEqual(g.counts(), {"in: bad": 2500, "feedback: bad": 1})
        self.assertEqual(len(lines), 4)                  # 1, 1001, 2001 + the other reason
        self.assertIn("in: bad: detail (1 so far", lines[0])
        self.assertIn("(2001 so far", lines[2])
        got = []

        def boom(msg):
            raise OverflowError("big")
        h = g.wrap(boom, "in", on_error=lambda m, e: got.append((m, type(e).__name__)))
        self.assertEqual(h.__name__, "_guarded_in")
        h(1)
        h(2)
        self.assertEqual(got, [(1, "OverflowError"), (2, "OverflowError")])
        self.assertEqual(g.counts()["in: OverflowError"], 2)
        h2 = g.wrap(boom, "in", on_error=lambda m, e: 1 / 0)       # a failing error path
        h2(3)
        self.assertEqual(g.counts()["in: error output failed: ZeroDivisionError"], 1)

    def test_checks(self):
        self.assertEqual(P.check_int("n", 3.0, 1, 5), 3)
        for bad in (True, NAN, INF, 2.5, "3", None, 1e9):
            with self.assertRaisesRegex(ValueError, r"^n must be an integer in 1\.\.5, got"):
                P.check_int("n", bad, 1, 5)
        self.assertEqual(P.check_float("t", 2, 0, 3), 2.0)
        for bad in (NAN, INF, -INF, True, "1", None, -1, 1e300):
            with self.assertRaisesRegex(ValueError, r"^t must be a finite number >= 0 and <= 10"):
                P.check_float("t", bad, 0, 10)
        self.assertIs(P.check_bool("b", 1), True)
        self.assertIs(P.check_bool("b", np.bool_(False)), False)
        for bad in (2, NAN, "True", 0.0, None):
            with self.assertRaisesRegex(ValueError, r"^b must be a boolean \(True or False\)"):
                P.check_bool("b", bad)
        with self.assertRaisesRegex(ValueError, r"^c must be one of 'a', 'b', got 'maybe'"):
            P.check_choice("c", "maybe", ("a", "b"))
        self.assertIsNone(P.check_optional_int("s", None, 0))
        with self.assertRaisesRegex(ValueError, "s must be None or an integer in >= 0, got -5"):
            P.check_optional_int("s", -5, 0)


class qa_construction(gr_unittest.TestCase):
    """Every bad parameter is refused by NAME with the allowed values, before
    any weights are loaded."""

    def check(self, make, cases, exc=ValueError):
        for kwargs, what in cases:
            with self.subTest(kwargs=kwargs):
                with self.assertRaisesRegex(exc, what):
                    make(**kwargs)

    def test_controller(self):
        self.check(largesc.adaptive_controller, (
            ({"budget": 1e12}, r"budget must be .*\(1..62 token slots\)"),
            ({"budget": NAN}, "budget"),
            ({"budget": "1100"}, "budget"),
            ({"mean_burst": 1e300}, r"mean_burst: .* <= 1000"),
            ({"mean_burst": NAN}, "mean_burst"),
            ({"loss_rate": INF}, "loss_rate"),
            ({"loss_rate": True}, "loss_rate"),
            ({"content_adaptation": "maybe"}, r"content_adaptation must be a boolean"),
            ({"content_adaptation": 2}, r"content_adaptation must be a boolean"),
            ({"max_offset": NAN}, r"max_offset must be an integer in 0..2"),
            ({"max_offset": 2 ** 40}, r"max_offset must be an integer in 0..2"),
            ({"mode": "maybe"}, r"mode must be one of 'adaptive', 'fixed'"),
            ({"silence_codebooks": 1e9}, r"silence_codebooks must be an integer in 1..32")))
        ctl = largesc.adaptive_controller()
        with self.assertRaisesRegex(ValueError, "budget"):
            ctl.set_budget(1e12)
        with self.assertRaisesRegex(ValueError, "content_adaptation"):
            ctl.set_content_adaptation("maybe")
        with self.assertRaisesRegex(ValueError, "mean_burst"):
            ctl.set_loss(0.1, 1e300)

    def test_token_recovery(self):
        self.check(lambda **k: largesc.token_recovery(**k), (
            ({"backend": "magic"}, "unknown recovery backend 'magic': use one of hold, lm, moshi"),
            ({"max_hold": NAN}, r"max_hold must be an integer in -1..12500"),
            ({"max_hold": 1e9}, r"max_hold must be an integer in -1..12500"),
            ({"min_codebooks": 0}, r"min_codebooks must be an integer in 1..32"),
            ({"threads": -1}, r"threads must be an integer in 0..1024"),
            ({"temperature": NAN}, r"backend 'hold' takes no temperature=nan"),
            ({"temperature": 0.7}, r"backend 'hold' takes no temperature=0.7"),
            ({"top_k": 5}, r"backend 'hold' takes no top_k=5"),
            ({"seed": 3}, r"backend 'hold' takes no seed=3"),
            ({"feed_back": "erased"}, r"backend 'hold' takes no feed_back='erased'"),
            ({"model": "tiny"}, r"backend 'hold' takes no model"),
            ({"backend": "lm", "model": "tiny", "temperature": NAN}, "temperature"),
            ({"backend": "lm", "model": "tiny", "top_k": 2.5}, "top_k must be an integer"),
            ({"backend": "lm", "model": "tiny", "seed": -1}, "seed must be an integer")),
            exc=(ValueError, RecoveryError))

    def test_codec_blocks(self):
        self.check(lambda **k: mimi_decoder(weights=SEED, **k), (
            ({"frames_per_call": 1e9}, r"frames_per_call must be an integer in 1..125"),
            ({"frames_per_call": 0}, r"frames_per_call must be an integer in 1..125"),
            ({"done_grace_s": -1}, r"done_grace_s must be a finite number >= 0 and <= 3600"),
            ({"done_grace_s": NAN}, r"done_grace_s must be a finite number"),
            ({"start_frame": -5}, r"start_frame must be None or an integer in 0..18446744073709551615"),
            ({"start_frame": 2.5}, "start_frame"),
            ({"max_gap": -1}, r"max_gap must be an integer in 0..12500"),
            ({"threads": NAN}, "threads must be an integer"),
            ({"mode": "turbo"}, "mode must be one of"),
            ({"sample_rate": NAN}, "sample rate")))
        self.check(lambda **k: mimi_encoder(**dict({"weights": SEED}, **k)), (
            ({"n_q": -1}, r"n_q \(number of codebooks\) must be an integer in 1..32, got -1"),
            ({"n_q": NAN}, "n_q"),
            ({"frames_per_call": 1e9}, "frames_per_call"),
            ({"vad_threshold_db": NAN}, "vad_threshold_db must be a finite number"),
            ({"send_eos": 2}, "send_eos must be a boolean"),
            ({"weights": 5}, "weights must be a string")))

    def test_hier_blocks(self):
        self.check(lambda **k: largesc.largesc_tx(weights=SEED, **k), (
            ({"crc": NAN}, r"crc must be a boolean"),
            ({"crc": 2}, r"crc must be a boolean"),
            ({"budget": 1e12}, "budget"),
            ({"mean_burst": 1e300}, "mean_burst"),
            ({"max_offset": 3}, "max_offset must be an integer in 0..2"),
            ({"codec_mode": "x"}, "codec_mode must be one of"),
            ({"sample_rate": 1234}, "sample rate")))
        self.check(lambda **k: largesc.largesc_rx(weights=SEED, **k), (
            ({"require_crc": 2}, r"require_crc must be a boolean"),
            ({"require_crc": NAN}, r"require_crc must be a boolean"),
            ({"delay": 3}, r"delay must be an integer in 0..2"),
            ({"recovery": "maybe"}, r"recovery must be one of 'hold', 'lm', 'moshi', 'none'"),
            ({"start_frame": -5}, "start_frame must be None or an integer"),
            ({"feedback_interval": NAN}, "feedback_interval"),
            ({"recovery_args": "x"}, "recovery_args must be None or a dict")))

    def test_link_monitor_and_audio_out(self):
        self.check(largesc.link_monitor, (
            ({"window": NAN}, r"window must be an integer in 3..200"),
            ({"window": 1e9}, r"window must be an integer in 3..200"),
            ({"update_every": 0}, r"update_every must be an integer in 1..1000000"),
            ({"frame_rate": NAN}, r"frame_rate must be a finite number > 0")))
        self.check(largesc.audio_out, (
            ({"sample_rate": NAN}, "sample_rate must be an integer"),
            ({"ok_to_block": 2}, "ok_to_block must be a boolean")))

    def test_phy_blocks(self):
        """Every bad value of issue 25's list, refused by name; none hangs
        (samp_rate 1e300 or 2^63 once built filters for ever)."""
        self.check(phy.packet_modem_tx, (
            ({"samp_rate": 1e300}, r"^samp_rate must be a finite number > 0 and <= 1e\+09"),
            ({"samp_rate": 2 ** 63}, r"^samp_rate must be a finite number > 0"),
            ({"samp_rate": NAN}, r"^samp_rate must be"),
            ({"samp_rate": 0}, r"^samp_rate must be"),
            ({"bit_rate": NAN}, r"^bit_rate must be a finite number > 0"),
            ({"bit_rate": -1}, r"^bit_rate must be"),
            ({"bit_rate": 9600}, r"^samp_rate / bit_rate must be an integer >= 2 and <= 1000"),
            ({"samp_rate": 8e7}, r"^samp_rate / bit_rate must be an integer >= 2 and <= 1000"),
            ({"amplitude": NAN}, r"^amplitude must be a finite number > 0 and <= 1000"),
            ({"amplitude": INF}, r"^amplitude must be"),
            ({"amplitude": 0}, r"^amplitude must be"),
            ({"amplitude": -1}, r"^amplitude must be"),
            ({"amplitude": 1j}, r"^amplitude must be"),
            ({"bt": NAN}, r"^bt must be a finite number >= 0.1 and <= 1"),
            ({"bt": 0}, r"^bt must be"),
            ({"bt": -1}, r"^bt must be"),
            ({"frame_period": 1e300}, r"^frame_period must be a finite number >= 0 and <= 10"),
            ({"frame_period": NAN}, r"^frame_period must be"),
            ({"frame_period": 0.08, "mode": "burst"}, r"^frame_period applies to mode 'stream' only"),
            ({"length_tag": ""}, r"^length_tag must be a non-empty string without spaces"),
            ({"length_tag": 5}, r"^length_tag must be"),
            ({"mode": "bursty"}, r"^mode must be one of 'stream', 'continuous', 'burst'"),
            ({"preamble": -1}, r"^preamble must be an integer in 0..1024"),
            ({"postamble": 2.5}, r"^postamble must be an integer in 0..1024"),
            ({"access_code": "0101"}, r"^access_code must be a string of '0'/'1', a multiple of 8 bits"),
            ({"access_code": 5}, r"^access_code must be"),
            ({"fec": "turbo"}, r"^fec must be one of none, cc, rep3")))
        tx = phy.packet_modem_tx()
        for bad in (NAN, 0, -1, 1j):
            with self.assertRaisesRegex(ValueError, "^amplitude must be"):
                tx.set_amplitude(bad)
        self.check(phy.packet_modem_rx, (
            ({"samp_rate": 1e300}, r"^samp_rate must be a finite number > 0 and <= 1e\+09"),
            ({"samp_rate": 2 ** 63}, r"^samp_rate must be"),
            ({"threshold": -1}, r"^threshold must be an integer in 0..16"),
            ({"threshold": 65}, r"^threshold must be an integer in 0..16"),
            ({"threshold": 100}, r"^threshold must be"),
            ({"threshold": NAN}, r"^threshold must be"),
            ({"timing_loop_bw": NAN}, r"^timing_loop_bw must be a finite number >= 0.0001 and <= 0.5"),
            ({"timing_loop_bw": INF}, r"^timing_loop_bw must be"),
            ({"timing_loop_bw": 0}, r"^timing_loop_bw must be"),
            ({"afc_symbols": NAN}, r"^afc_symbols must be a finite number >= 1 and <= 1e\+06"),
            ({"afc_symbols": INF}, r"^afc_symbols must be"),
            ({"afc_symbols": 0}, r"^afc_symbols must be"),
            ({"max_freq_offset": NAN}, r"^max_freq_offset must be a finite number >= 0 and <= 31500"),
            ({"max_freq_offset": -1}, r"^max_freq_offset must be"),
            ({"max_freq_offset": 40000}, r"^max_freq_offset must be"),
            ({"length_tag": ""}, r"^length_tag must be a non-empty string"),
            ({"fec": None}, r"^fec must be one of")))
        self.check(phy.packet_source, (
            ({"k": 0}, r"^k must be an integer in 1..32"),
            ({"k": -1}, r"^k must be"),
            ({"k": 33}, r"^k must be"),
            ({"r1": 16}, r"^r1 must be an integer in 0..15"),
            ({"r2": -1}, r"^r2 must be an integer in 0..15"),
            ({"linger": INF}, r"^linger must be a finite number >= 0 and <= 3600"),
            ({"linger": -1}, r"^linger must be"),
            ({"count": -1}, r"^count must be an integer in 0..4294967296"),
            ({"count": 2.5}, r"^count must be"),
            ({"count": True}, r"^count must be"),
            ({"interval": NAN}, r"^interval must be a finite number >= 0.0001 and <= 3600"),
            ({"interval": -1}, r"^interval must be"),
            ({"interval": 0}, r"^interval must be"),
            ({"crc": "no"}, r"^crc must be a boolean"),
            ({"seed": None}, r"^seed must be an integer in 0..9223372036854775807"),
            ({"seed": -1}, r"^seed must be")))
        self.check(phy.packet_framer, (
            ({"mode": "x"}, r"^mode must be one of"),
            ({"bit_rate": NAN}, r"^bit_rate must be"),
            ({"slot_bytes": -1}, r"^slot_bytes must be an integer"),
            ({"slot_bytes": 100, "mode": "burst"}, r"^slot_bytes \(frame period\) applies to mode 'stream' only")))
        with tempfile.TemporaryDirectory() as tmp:
            self.check(largesc.trace_recorder, (
                ({"path": tmp}, r"^path must be a writable trace file path .*: is a directory"),
                ({"path": tmp + "/missing/x.trace"}, r"^path must be .*does not exist"),
                ({"path": 5}, r"^path must be a string"),
                ({"expected": 1e300}, r"^expected must be an integer in 0..10000000"),
                ({"expected": -1}, r"^expected must be"),
                ({"interval": NAN}, r"^interval must be a finite number >= 0 and <= 3600"),
                ({"bit_rate": INF}, r"^bit_rate must be"),
                ({"flush_interval": INF}, r"^flush_interval must be")))


class qa_hostile_controller(gr_unittest.TestCase):

    def test_frames_and_feedback(self):
        t0 = time.monotonic()
        ctl = largesc.adaptive_controller(1100, 0.1, 1.0, 1)
        lines = captured(ctl.guard)
        fg = Flowgraph(ctl)
        try:
            # the controller does not read masks: the mask cases are not malformed for it
            bf = bad_frames(3)
            hostile = not_pdus() + bf[:9] + bf[12:] + \
                [frame_pdu(1, toks(1), vad=pmt.from_long(1))] + \
                [pmt.from_double(NAN)] * 1000                                 # burst
            n_bad = fg.post("in", hostile)
            wait_for(lambda: ctl.frames_out() + ctl.frames_rejected() == n_bad, TIMEOUT,
                     "controller stalled on hostile frames")
            self.assertEqual(ctl.frames_out(), 0)
            self.assertEqual(ctl.frames_rejected(), n_bad)
            # odd but valid: huge frame indices are planned (the controller resets on a jump back)
            odd = [frame_pdu(2 ** 40, toks(1)), frame_pdu(2 ** 64 - 1, toks(2))]
            valid = [frame_pdu(f, toks(f, 8), vad=pmt.from_bool(f % 3 != 0)) for f in range(20)]
            fg.post("in", odd + valid)
            wait_for(lambda: ctl.frames_out() == len(odd) + len(valid), TIMEOUT, "controller stalled")
            wait_for(lambda: fg.dbg["out"].num_messages() >= len(odd) + len(valid), TIMEOUT, "frames not delivered")
            out = fg.out()[len(odd):]
            self.assertEqual(len(out), len(valid))
            ref = up.UepController(1100, up.check_loss_parameters(0.1, 1.0), 1)
            for f, m in enumerate(out):
                meta = pmt.car(m)
                p = ref.plan(f, 8, f % 3 != 0)
                self.assertEqual(pmt.to_long(pmt.dict_ref(meta, pmt.intern("uep_k"), pmt.PMT_NIL)), p.k)
                self.assertEqual(list(pmt.s32vector_elements(
                    pmt.dict_ref(meta, pmt.intern("uep_copies"), pmt.PMT_NIL))), list(p.copies))
                self.assertEqual(list(pmt.u16vector_elements(pmt.cdr(m))), toks(f, 8))
                self.assertEqual(pmt.to_uint64(pmt.dict_ref(meta, pmt.intern("frame"), pmt.PMT_NIL)), f)
            self.assertEqual(ctl.frames_in(), n_bad + len(odd) + len(valid))
            counts = ctl.rejections()
            self.assertEqual(sum(counts.values()), n_bad)
            self.assertEqual(counts["in: malformed frame"], n_bad)
            self.assertEqual(len(lines), 2)                  # first and 1001st of one reason
            # feedback
            fb = [pmt.cons(d(loss_rate=pmt.from_double(0.2), mean_burst=pmt.from_double(1e300),
                             window=50), pmt.init_u8vector(0, [])),
                  d(loss_rate=pmt.from_double(NAN), mean_burst=pmt.from_double(2.0)),
                  d(loss_rate=pmt.from_double(INF), mean_burst=pmt.from_double(2.0)),
                  d(loss_rate=pmt.from_double(1.5), mean_burst=pmt.from_double(2.0)),
                  d(loss_rate=pmt.from_double(0.2), mean_burst=pmt.from_double(-INF)),
                  d(loss_rate=pmt.intern("high"), mean_burst=pmt.from_double(2.0)),
                  d(loss_rate=pmt.from_double(0.2), mean_burst=pmt.from_double(2.0), window=-3)] + \
                not_pdus() + [d(loss_rate=pmt.from_double(0.2), mean_burst=pmt.from_double(NAN))] * 1000
            n_fb_bad = fg.post("feedback", fb)
            good = d(loss_rate=pmt.from_double(0.25), mean_burst=pmt.from_double(3.0), window=50)
            fg.post("feedback", [good])                      # a bare dict with valid values
            wait_for(lambda: ctl.feedback_in() == n_fb_bad + 1, TIMEOUT, "feedback stalled")
            time.sleep(0.05)
            self.assertEqual(ctl.feedback_rejected(), n_fb_bad)
            self.assertEqual((ctl.loss_rate(), ctl.mean_burst()), (0.25, 3.0))
            self.assertEqual(ctl.rejections()["feedback: rejected"], n_fb_bad)
            # still answers
            fg.post("in", [frame_pdu(20, toks(20))])
            wait_for(lambda: ctl.frames_out() == len(odd) + len(valid) + 1, TIMEOUT, "controller died")
        finally:
            fg.stop()
        self.assertLess(time.monotonic() - t0, 60)


class qa_hostile_token_recovery(gr_unittest.TestCase):

    def test_hold(self):
        t0 = time.monotonic()
        blk = largesc.token_recovery("hold", max_hold=3)
        lines = captured(blk.guard)
        fg = Flowgraph(blk)
        try:
            valid1 = [frame_pdu(f, toks(f), mask=[1] * 8) for f in range(5)]
            hostile = not_pdus() + bad_frames(5) + [pmt.intern("x")] * 1000
            odd = [frame_pdu(2 ** 40, toks(1), mask=[1] * 8),      # valid frames, far jumps
                   frame_pdu(2 ** 64 - 1, toks(2), mask=[1] * 8),
                   frame_pdu(None, toks(3), mask=[1] * 8)]          # no index: previous + 1 = 0
            valid2 = [frame_pdu(f, toks(f), mask=[1] * 8) for f in range(100, 110)]
            msgs = valid1 + hostile + odd + valid2
            fg.post("in", msgs)
            wait_for(lambda: blk.frames_in() == len(msgs), TIMEOUT, "token_recovery stalled",
                     progress=blk.frames_in)
            # the block counts a frame out before the sink has stored it: wait for the sink too
            wait_for(lambda: fg.dbg["out"].num_messages() >= len(msgs), TIMEOUT, "frames not delivered",
                     progress=fg.dbg["out"].num_messages)
            out = fg.out()
            self.assertEqual(blk.frames_out(), len(msgs))      # hold: one frame out per frame in
            self.assertEqual(len(out), len(msgs))
            self.assertEqual(blk.frames_malformed(), len(hostile))
            self.assertEqual(blk.frames_dropped(), 0)
            self.assertEqual(sum(blk.rejections().values()), len(hostile))

            def frame_of(m):
                return pmt.to_uint64(pmt.dict_ref(pmt.car(m), pmt.intern("frame"), pmt.PMT_NIL))

            def flagged(m):
                return pmt.to_python(pmt.dict_ref(pmt.car(m), pmt.intern("recovery_malformed"), pmt.PMT_F))
            for m, f in zip(out[:5], range(5)):
                self.assertEqual((frame_of(m), list(pmt.u16vector_elements(pmt.cdr(m)))), (f, toks(f)))
                self.assertFalse(flagged(m))
            bad_out = out[5:5 + len(hostile)]
            self.assertTrue(all(flagged(m) for m in bad_out))
            # frame -1, a symbol, a double, NaN: flagged and numbered previous + 1
            k = len(not_pdus())
            self.assertEqual([frame_of(m) for m in bad_out[k:k + 4]],
                             [frame_of(bad_out[k - 1]) + 1 + i for i in range(4)])
            for m in bad_out:       # all lost, of the last good width (hold may drop codebooks)
                mask = list(pmt.u8vector_elements(pmt.dict_ref(pmt.car(m), pmt.intern("mask"), pmt.PMT_NIL)))
                self.assertEqual(mask, [0] * len(mask))
                self.assertEqual(pmt.to_long(pmt.dict_ref(pmt.car(m), pmt.intern("n_q_in"), pmt.PMT_NIL)), 8)
            o = out[5 + len(hostile):]
            self.assertEqual([frame_of(m) for m in o[:3]], [2 ** 40, 2 ** 64 - 1, 0])
            for m, f in zip(o[3:], range(100, 110)):
                self.assertEqual((frame_of(m), list(pmt.u16vector_elements(pmt.cdr(m)))), (f, toks(f)))
                self.assertFalse(flagged(m))
            self.assertLessEqual(len(lines), len(blk.rejections()) + 1)
            self.assertGreaterEqual(len(lines), len(blk.rejections()))
            # flush port: hostile messages are fine
            fg.post("flush", [pmt.from_double(NAN), pmt.PMT_NIL])
            fg.post("in", [frame_pdu(7, toks(7), mask=[1] * 8)])
            wait_for(lambda: blk.frames_out() == len(msgs) + 1, TIMEOUT, "token_recovery died")
        finally:
            fg.stop()
        self.assertLess(time.monotonic() - t0, 60)


class qa_hostile_link_monitor(gr_unittest.TestCase):

    def test_ports(self):
        mon = largesc.link_monitor(window=10, update_every=1)
        lines = captured(mon.guard)
        fg = Flowgraph(mon, outs=("figures",))
        try:
            hostile = not_pdus() + [pmt.from_double(NAN)] * 1000
            n = 0
            for port in ("sent", "received", "feedback"):
                n += fg.post(port, hostile)
            fb_bad = [d(loss_rate=pmt.from_double(NAN)), d(loss_rate=pmt.from_double(2.0)),
                      d(loss_rate=pmt.intern("x"))]
            n += fg.post("feedback", fb_bad)
            wait_for(lambda: mon.messages_handled() == n, TIMEOUT, "link_monitor stalled")
            self.assertEqual(mon.messages_rejected(), n)
            self.assertEqual(sum(mon.rejections().values()), n)
            self.assertEqual(mon.updates(), 0)

            def packet(seq):
                data = [seq, 0x40 | 7, 0x10] + [0] * 16            # K 8, r1 1
                return pmt.cons(pmt.make_dict(), pmt.init_u8vector(len(data), data))
            fg.post("sent", [packet(s) for s in range(6)])
            fg.post("received", [packet(s) for s in range(4)])
            fg.post("feedback", [d(loss_rate=pmt.from_double(0.25), mean_burst=pmt.from_double(2.0))])
            wait_for(lambda: mon.messages_handled() == n + 11, TIMEOUT, "link_monitor died")
            f = mon.figures()
            self.assertEqual((f["packets_sent"], f["packets_delivered"], f["K"], f["r1"]), (6, 4, 8, 1))
            self.assertEqual((f["feedback_loss"], f["feedback_burst"]), (0.25, 2.0))
            self.assertEqual(mon.messages_rejected(), n)
            self.assertEqual(mon.updates(), 6)
            self.assertLessEqual(len(lines), len(mon.rejections()) * 2)
        finally:
            fg.stop()

    def test_duplicates_and_unknown_are_not_deliveries(self):
        mon = largesc.link_monitor(window=20, update_every=100)
        lines = captured(mon.guard)
        fg = Flowgraph(mon, outs=("figures",))

        def packet(seq):
            data = [seq, 0x40 | 7, 0x10] + [0] * 16            # K 8, r1 1
            return pmt.cons(pmt.make_dict(), pmt.init_u8vector(len(data), data))
        try:
            fg.post("sent", [packet(s) for s in range(6)])
            wait_for(lambda: mon.messages_handled() == 6, TIMEOUT, "link_monitor stalled")
            received = [0, 1, 1, 2, 3, 0, 200] + [3] * 160        # 162 duplicates, 200 never sent
            fg.post("received", [packet(s) for s in received])
            fg.post("received", [packet(6)])                    # before its `sent` copy: delivered then
            # the ports are served in turn, not in posting order: all received first
            wait_for(lambda: mon.messages_handled() == 6 + len(received) + 1, TIMEOUT, "link_monitor stalled")
            fg.post("sent", [packet(s) for s in range(6, 6 + mon_wait())])
            n = 6 + len(received) + 1 + mon_wait()
            wait_for(lambda: mon.messages_handled() == n, TIMEOUT, "link_monitor stalled")
            f = mon.figures()
            self.assertEqual((f["packets_sent"], f["packets_delivered"]), (6 + mon_wait(), 5))
            self.assertEqual((mon.packets_duplicate(), mon.packets_unknown()), (162, 1))
            self.assertEqual(mon.rejections(), {"received: duplicate": 162, "received: unknown packet": 1})
            self.assertEqual(mon.messages_rejected(), 163)
            self.assertEqual(len(lines), 2)
        finally:
            fg.stop()


class _silent_source(gr.basic_block):
    """A message output that never publishes."""

    def __init__(self):
        gr.basic_block.__init__(self, "silent_source", in_sig=None, out_sig=None)
        self.message_port_register_out(pmt.intern("out"))


def mon_wait():
    from gnuradio.largesc.hier.link_monitor import EARLY_WAIT
    return EARLY_WAIT


class qa_hostile_trace_recorder(gr_unittest.TestCase):

    def test_hostile_reports_and_packets(self):
        """Header-only packets with seq +127 each (once grew a 5000-packet run
        into a 634,874-packet trace), duplicates on `sent`, a flood of
        crc_failed reports beyond the bound, an absurd SNR: counted; the trace
        holds exactly the valid packets' fates; flushes run on their own
        thread and leave no temporary file, a failed one included; a killed
        writer's temporary file is removed at construction."""
        from gnuradio.largesc.traces import trace as T
        pk = largesc.packetizer_core(False)
        rng = np.random.default_rng(2)

        def packet(f, meta=None):
            b = pk.packetize(f, rng.integers(0, 2048, size=8, dtype=np.int64), 8, 0, 0)
            return u8_pdu(b, meta)
        with tempfile.TemporaryDirectory() as tmp:
            path = tmp + "/rx.trace"
            stale = f"{path}.tmp{2 ** 22 + 12345}"             # above pid_max's default: no such process
            open(stale, "w").close()
            rec = largesc.trace_recorder(path, interval=0.0, flush_interval=0.02)
            self.assertFalse(os.path.exists(stale))
            lines = captured(rec.guard)
            tb = gr.top_block()
            src = _silent_source()                            # puts the recorder in the flowgraph
            tb.msg_connect(src, "out", rec, "in")
            tb.start()
            fg = Flowgraph.__new__(Flowgraph)
            fg.tb, fg.blk = tb, rec
            try:
                hdr_only = [u8_pdu(bytes([(127 * i) & 0xFF, 0x40 | 7, 0x00])) for i in range(1, 1001)]
                good = [packet(f, d(snr_db=pmt.from_double(1e308)) if f == 2 else None) for f in range(10) if f != 4]
                reports = [d(crc_failed=pmt.PMT_T)] * (T.MAX_CRC_REPORTS + 5)
                fg.post("in", good[:3] + hdr_only + good[3:])
                fg.post("sent", [packet(f) for f in range(12) for _ in range(2)])
                fg.post("crc_failed", reports)
                wait_for(lambda: rec.delivered() == len(good) and rec.sent() == 12 and
                         rec.guard.total() == 1000 + 12 + 5 + 1, TIMEOUT, "recorder stalled",
                         progress=lambda: (rec.delivered(), rec.sent(), rec.rejections()))
                time.sleep(0.1)                               # a few flushes on the thread
            finally:
                fg.stop()
            t = T.read_trace(path)
            want = np.zeros(12, np.uint8)
            want[[4, 10, 11]] = 1
            np.testing.assert_array_equal(t.fates, want)
            self.assertTrue(np.isnan(t.snr_db[2]))
            self.assertEqual(rec.rejections(), {"in: packet length does not match its header": 1000,
                                                "sent: duplicate": 12,
                                                f"crc_failed: more than {T.MAX_CRC_REPORTS} reports": 5,
                                                "snr_db: beyond +-1000 dB, written as unknown": 1})
            self.assertEqual(t.header["sent_duplicates"], "12")
            self.assertEqual(len(lines), 4)
            # a failing flush (the path became a folder) leaves nothing behind
            os.remove(path)
            os.mkdir(path)
            self.assertFalse(rec.flush())
            self.assertEqual(rec.rejections()["write: IsADirectoryError"], 1)
            self.assertEqual(sorted(os.listdir(tmp)), ["rx.trace"])


class qa_hostile_codec(gr_unittest.TestCase):

    def test_encoder_n_q_port(self):
        enc = mimi_encoder(16000, 8, weights=SEED, threads=1, send_eos=False)
        lines = captured(enc.guard)
        tb = gr.top_block()
        src = pdu.pdu_to_tagged_stream(gr.types.float_t, "len")
        dbg = blocks.message_debug()
        tb.connect(src, enc)
        tb.msg_connect(enc, "out", dbg, "store")
        tb.start()
        try:
            bb = enc.to_basic_block()
            hostile = [pmt.from_double(NAN), pmt.from_double(INF), pmt.from_double(1e300),
                       pmt.from_long(-1), pmt.from_long(33), pmt.from_uint64(2 ** 64 - 1),
                       pmt.intern("eight"), d(n_q=pmt.intern("x")), d(n_q=4, frame=-5),
                       d(n_q=4, frame=pmt.intern("now")), d(n_q=pmt.from_double(4.0)),
                       d(frame=3)] + \
                [m for i, m in enumerate(not_pdus()) if i not in (3, 8, 10, 14, 15)]  # those are valid
            hostile = [m for m in hostile if not pmt.is_integer(m)] + \
                [pmt.from_long(-1), pmt.from_long(33)] + [pmt.from_double(NAN)] * 1000
            for m in hostile:
                bb._post(pmt.intern("n_q"), m)
            bb._post(pmt.intern("n_q"), pmt.from_long(3))
            wait_for(lambda: enc.n_q_in() == len(hostile) + 1, TIMEOUT, "encoder n_q port stalled")
            self.assertEqual(enc.n_q_rejected(), len(hostile))
            self.assertEqual(sum(enc.rejections().values()), len(hostile))
            self.assertEqual(len(lines), 2)                 # one reason: first and 1001st
            audio = (0.1 * np.sin(np.arange(3 * 1280) * 0.05)).astype(np.float32)
            src.to_basic_block()._post(pmt.intern("pdus"),
                                       pmt.cons(pmt.make_dict(), pmt.init_f32vector(len(audio), audio)))
            wait_for(lambda: dbg.num_messages() == 3, TIMEOUT, "encoder died")
            for i in range(3):
                m = dbg.get_message(i)
                self.assertEqual(pmt.length(pmt.cdr(m)), 3)
                self.assertEqual(pmt.to_uint64(pmt.dict_ref(pmt.car(m), pmt.intern("frame"), pmt.PMT_NIL)), i)
        finally:
            tb.stop()
            tb.wait()

    def test_encoder_audio_sanitised(self):
        """NaN and inf samples (frame 1) and a frame x 1e30 (frame 8) never
        poison the codec: the tokens equal those of the same audio with the
        bad samples set to 0 / clipped to +-MAX_AUDIO_ABS (what the encoder
        does), every frame; before frame 1 and from frame 4 to 7 they equal
        the clean run's (a sample's change reaches the next two frames through
        the codec's receptive field; with this seed no further). Each bad
        frame is counted, the reason logged once."""
        from gnuradio.largesc.codec.mimi_encoder import MAX_AUDIO_ABS, TokenFramer
        n, spf = 12, 1280
        rng = np.random.default_rng(7)
        t = np.arange(n * spf) / 16000.0
        clean = (0.2 * np.sin(2 * np.pi * (200 + 150 * t) * t) + 0.03 * rng.standard_normal(len(t))).astype(np.float32)
        bad, same = clean.copy(), clean.copy()
        bad[spf + 100], bad[spf + 900] = NAN, -INF
        same[spf + 100], same[spf + 900] = 0.0, 0.0
        bad[8 * spf:9 * spf] *= np.float32(1e30)
        same[8 * spf:9 * spf] = np.clip(clean[8 * spf:9 * spf] * np.float32(1e30), -MAX_AUDIO_ABS, MAX_AUDIO_ABS)
        enc = mimi_encoder(16000, 8, weights=SEED, threads=1, send_eos=False)
        lines = captured(enc.guard)
        tb = gr.top_block()
        dbg = blocks.message_debug()
        tb.connect(blocks.vector_source_f(bad.tolist()), enc)
        tb.msg_connect(enc, "out", dbg, "store")
        tb.start()
        try:
            wait_for(lambda: dbg.num_messages() == n, TIMEOUT, "encoder stalled")
        finally:
            tb.stop()
            tb.wait()
        got = np.array([pmt.u16vector_elements(pmt.cdr(dbg.get_message(i))) for i in range(n)])

        def tokens(audio):
            enc.codec.reset()
            return np.array([tk for _, tk, _, _ in TokenFramer(enc.codec, 16000, 8).push(audio)])
        np.testing.assert_array_equal(got, tokens(same))
        ref = tokens(clean)
        np.testing.assert_array_equal(got[:1], ref[:1])
        np.testing.assert_array_equal(got[4:8], ref[4:8])
        self.assertGreater(len(set(got[:, 0].tolist())), 1)        # not all one token
        self.assertEqual((enc.frames_sanitised(), enc.samples_sanitised()), (2, 2 + spf))
        self.assertEqual(enc.rejections(), {"in: audio sanitised": 2})
        self.assertEqual(len(lines), 1)

    def run_decoder(self, msgs, eos_frame, **kw):
        """Runs a decoder flowgraph on msgs, then an end-of-stream PDU with
        frame eos_frame; returns (decoder, audio, warning lines)."""
        dec = mimi_decoder(24000, weights=SEED, threads=1, **kw)
        lines = captured(dec.guard)
        tb = gr.top_block()
        sink = blocks.vector_sink_f()
        tb.connect(dec, sink)
        tb.start()
        bb = dec.to_basic_block()
        for m in msgs:
            bb._post(pmt.intern("in"), m)
        # messages are handled in order: the end-of-stream PDU comes after all of them
        wait_for(lambda: dec.queued() == 0, TIMEOUT, "decoder stalled")
        eos = pmt.cons(d(eos=pmt.PMT_T, frame=pmt.from_uint64(eos_frame), n_q=0), pmt.init_u16vector(0, []))
        bb._post(pmt.intern("in"), eos)
        done = threading.Thread(target=tb.wait, daemon=True)
        done.start()
        done.join(TIMEOUT)
        if done.is_alive():
            tb.stop()
            self.fail(f"decoder never ended its stream: {dec.stats()}")
        return dec, np.array(sink.data(), dtype=np.float32), lines

    def test_decoder_malformed_exact(self):
        """Malformed messages between valid frames: the valid frames' audio is
        exactly that of a clean run, malformed slots are silence, the
        end-of-stream with a huge index is refused."""
        t0 = time.monotonic()
        valid = [frame_pdu(f, toks(f), mask=[1] * 8) for f in range(10) if f != 5]
        hostile = not_pdus() + bad_frames(5) + [pmt.from_double(NAN)] * 1000 + \
            [pmt.cons(d(eos=pmt.PMT_T, frame=pmt.from_uint64(2 ** 63), n_q=0), pmt.init_u16vector(0, [])),
             pmt.cons(d(eos=pmt.PMT_T, frame=pmt.from_long(-1), n_q=0), pmt.init_u16vector(0, []))]
        dec, got, lines = self.run_decoder(valid[:5] + hostile + valid[5:], 12)
        _ref_dec, ref, _ = self.run_decoder(valid, 12)
        spf = 1920
        self.assertEqual(len(got), 12 * spf)
        self.assertEqual(len(ref), 12 * spf)
        np.testing.assert_array_equal(got, ref)             # slot 5: silence in both
        np.testing.assert_array_equal(got[5 * spf:6 * spf], 0.0)
        np.testing.assert_array_equal(got[10 * spf:], 0.0)  # 10, 11 missing before the end
        s = dec.stats()
        self.assertEqual((s["frames_decoded"], s["frames_late"], s["restarts"], s["eos_refused"]), (9, 0, 0, 1))
        n_malformed = len(hostile) - 1          # all but the refused end of stream
        self.assertEqual(s["frames_malformed"], n_malformed)
        self.assertEqual(sum(dec.rejections().values()), len(hostile))
        self.assertEqual(dec.rejections()["in: end-of-stream index out of range"], 1)
        self.assertGreaterEqual(len(lines), len(dec.rejections()))
        self.assertLessEqual(len(lines), len(dec.rejections()) + 1)
        self.assertLess(time.monotonic() - t0, 90)

    def test_decoder_frame_jumps_bounded(self):
        """Frame indices 10000, 2^40, 2^63 and 2^64-1: each starts a new stream
        (no silence), then the valid frames continue; a frame behind by up
        to max_gap is late; no message creates more than max_gap + 1 frames."""
        t0 = time.monotonic()
        t = [1] * 8
        msgs = [frame_pdu(0, toks(0), mask=t), frame_pdu(1, toks(1), mask=t),
                frame_pdu(10000, toks(2), mask=t),            # jump ahead: restart
                frame_pdu(2 ** 40, toks(3), mask=t),
                frame_pdu(2 ** 63, toks(4), mask=t),
                frame_pdu(2 ** 64 - 1, toks(5), mask=t),
                frame_pdu(2, toks(6), mask=t),                # jump back: restart
                frame_pdu(3, toks(7), mask=t),
                frame_pdu(1, toks(8), mask=t),                # late
                frame_pdu(3 + 20, toks(9), mask=t),           # gap of 19 within max_gap 20: silence
                frame_pdu(24, toks(10), mask=t)]
        dec, got, _lines = self.run_decoder(msgs, 25, max_gap=20)
        s = dec.stats()
        self.assertEqual((s["frames_in"], s["frames_decoded"], s["frames_late"], s["restarts"],
                          s["frames_missing"]), (11, 10, 1, 5, 19))
        self.assertEqual(len(got), (10 + 19) * 1920)
        self.assertEqual(s["samples_out"], len(got))
        self.assertEqual(dec.rejections()["in: frame index jump (new stream)"], 5)
        self.assertLess(time.monotonic() - t0, 60)


def u8_pdu(b, meta=None):
    b = bytes(b)
    return pmt.cons(pmt.make_dict() if meta is None else meta, pmt.init_u8vector(len(b), list(b)))


def air_header(length):
    """Access code and the two 16-bit length copies (docs/phy.md, "Frame on air")."""
    ac = int(phy.DEFAULT_ACCESS_CODE, 2).to_bytes(8, "big")
    return ac + length.to_bytes(2, "big") * 2


def air_frame(packet):
    """One frame as packet_modem_tx(fec='none') sends it, from the spec:
    preamble, access code, length twice, packet + CRC-32 (zlib, little-endian)
    scrambled (frame format 2), postamble."""
    body = bytes(packet) + zlib.crc32(bytes(packet)).to_bytes(4, "little")
    return IDLE2 + air_header(len(body)) + bytes(phy.scramble_bytes(np.frombuffer(body, np.uint8))) + IDLE2


IDLE2 = bytes([phy.IDLE_BYTE] * 2)


def gmsk(byte_stream, sps=8):
    """GMSK samples of a byte stream (the transmitter's modulator)."""
    from gnuradio import digital
    tb = gr.top_block()
    src = blocks.vector_source_b(list(byte_stream))
    snk = blocks.vector_sink_c()
    tb.connect(src, digital.gmsk_mod(sps, phy.GMSK_BT), snk)
    tb.run()
    return np.array(snk.data(), np.complex64)


class Link:
    """samples or packet_modem_tx -> packet_modem_rx, the received packets
    and CRC-failure reports collected."""

    def __init__(self, source, **rx_kw):
        self.tb = gr.top_block()
        self.rx = phy.packet_modem_rx(**rx_kw)
        self.out = blocks.message_debug(False)
        self.bad = blocks.message_debug(False)
        self.tb.connect(source, self.rx)
        self.tb.msg_connect(self.rx, "out", self.out, "store")
        self.tb.msg_connect(self.rx, "crc_failed", self.bad, "store")
        self.sync_lines = captured(self.rx.sync.guard)
        self.tb.start()

    def packets(self):
        return [bytes(pmt.u8vector_elements(pmt.cdr(self.out.get_message(i)))) for i in range(self.out.num_messages())]

    def wait(self, n_packets, n_reports=0):
        wait_for(lambda: self.out.num_messages() >= n_packets and self.bad.num_messages() >= n_reports, TIMEOUT,
                 "receiver stalled", progress=lambda: (self.rx.samples_in(), self.rx.frames_detected()))
        time.sleep(0.2)                                    # nothing more may come

    def stop(self):
        self.tb.stop()
        self.tb.wait()


class qa_hostile_phy(gr_unittest.TestCase):
    """The packet modem (issue 25): what the TX cannot send is refused and
    counted; the RX survives any sample value and any length field; the
    helper blocks count what they drop. Noiseless links: exact results."""

    def test_tx_refuses_what_it_cannot_send(self):
        rng = np.random.default_rng(5)
        for fec in phy.FEC_CODES:
            with self.subTest(fec=fec):
                most = phy.max_packet_bytes(fec)
                self.assertEqual(most, {"none": 4091, "cc": 1495, "rep3": 1361}[fec])
                tx = phy.packet_modem_tx(fec=fec)
                lines = captured(tx.gate.guard)
                link = Link(tx, fec=fec)
                try:
                    valid = [bytes([7]), bytes(rng.integers(0, 256, 17, dtype=np.uint8)),
                             bytes(rng.integers(0, 256, most, dtype=np.uint8)), bytes(40)]
                    hostile = not_pdus() + [u8_pdu(bytes(most + 1)), u8_pdu(bytes(65636))]
                    msgs = [u8_pdu(valid[0], pmt.PMT_NIL), u8_pdu(valid[1])] + hostile + \
                        [u8_pdu(valid[2], pmt.from_long(3)), u8_pdu(valid[3])]
                    bb = tx.gate.to_basic_block()
                    for m in msgs:
                        bb._post(pmt.intern("in"), m)
                    wait_for(lambda: tx.messages_in() == len(msgs), TIMEOUT, "transmitter stalled")
                    link.wait(len(valid))
                    self.assertEqual(link.packets(), valid)
                    self.assertEqual(tx.packets_in(), len(valid))
                    self.assertEqual(tx.rejections(), {"in: not a PDU": 11, "in: not a u8 PDU": 5,
                                                       "in: empty packet": 1, f"in: packet over {most} bytes": 3})
                    self.assertEqual(len(lines), 4)
                    self.assertEqual(link.rx.crc_failures(), 0)
                finally:
                    link.stop()

    def test_rx_survives_any_sample_value(self):
        """inf, -inf, NaN, 3e38 samples in the gaps and a whole frame x 1e20:
        every packet is delivered exactly, each bad sample counted."""
        packets = [bytes([f] * 3) + bytes(range(f, f + 14)) for f in range(6)]
        gap = bytes([phy.IDLE_BYTE] * 20)
        frames = [air_frame(p) + gap for p in packets]
        x = gmsk(bytes([phy.IDLE_BYTE] * 16) + b"".join(frames) + gap)
        spb = 8 * 8                                        # samples per byte
        start = [16 + sum(len(f) for f in frames[:k]) for k in range(len(frames))]
        g0 = (start[1] - 10) * spb                         # in the gap after frame 0
        x[g0:g0 + 5] = [complex(INF, 0), complex(-INF, 0), complex(NAN, NAN), complex(3e38, 0), complex(INF, NAN)]
        s2, e2 = start[2] * spb, start[3] * spb            # frame 2 and its gap, x 1e20
        x[s2:e2] *= np.float32(1e20)
        g3 = (start[4] - 15) * spb
        x[g3:g3 + 100] = 3e38
        link = Link(blocks.vector_source_c(x.tolist()))
        try:
            link.wait(len(packets))
            self.assertEqual(link.packets(), packets)
            rx = link.rx
            self.assertEqual((rx.samples_zeroed(), rx.samples_limited()), (4, 1 + (e2 - s2) + 100))
            self.assertEqual(rx.crc_failures(), 0)
            self.assertEqual(set(rx.rejections()), {"largesc_sample_guard in: non-finite samples zeroed",
                                                    "largesc_sample_guard in: samples over MAX_SAMPLE_ABS limited"})
        finally:
            link.stop()

    def test_rx_survives_any_length_field(self):
        """Headers with lengths no transmitter of this modem sends (65535,
        4096, 0, 3) are dropped and counted and the frame right behind each is
        found; a 2048-byte frame (which deadlocked GNU Radio's tagged stream)
        fails its CRC and the next one arrives."""
        rng = np.random.default_rng(3)
        p = [bytes(rng.integers(0, 256, 17, dtype=np.uint8)) for _ in range(3)]
        gap = bytes([phy.IDLE_BYTE] * 20)
        stream = (bytes([phy.IDLE_BYTE] * 16) + air_header(65535) + air_frame(p[0]) + gap
                  + air_header(4096) + air_header(0) + air_header(3) + air_frame(p[1]) + gap
                  + air_header(2048) + bytes(rng.integers(0, 256, 2048, dtype=np.uint8)) + air_frame(p[2]) + gap)
        link = Link(blocks.vector_source_c(gmsk(stream).tolist()))
        lines = link.sync_lines
        try:
            link.wait(3, 1)
            self.assertEqual(link.packets(), p)
            rx = link.rx
            self.assertEqual(rx.rejections(), {"largesc_frame_sync in: frame length out of range": 4})
            self.assertEqual((rx.frames_detected(), rx.crc_failed_out(), rx.headers_bad()), (4, 1, 0))
            self.assertEqual(len(lines), 1)
        finally:
            link.stop()

    def test_helper_blocks_count_what_they_drop(self):
        from gnuradio.largesc.phy import fec as F
        from gnuradio.largesc.phy import modem_rx as R
        hostile = not_pdus()
        n_not_pdu, n_not_vec = 11, 5
        soft = np.tile(np.float32([1.5, -0.5, 2.0, -2.0]), 16)          # 64 symbols = 8 bytes
        nan_soft = soft.copy()
        nan_soft[3] = NAN
        f32 = pmt.cons(pmt.make_dict(), pmt.init_f32vector(len(soft), soft.tolist()))
        f32_nan = pmt.cons(pmt.make_dict(), pmt.init_f32vector(len(nan_soft), nan_soft.tolist()))
        soft_reasons = {"in: not a PDU": n_not_pdu, "in: not an f32 PDU": n_not_vec + 1,
                        "in: not whole bytes": 1, "in: non-finite soft symbols": 1}
        cases = [  # block, messages, reasons, outputs
            (F._tail_byte(True), hostile + [u8_pdu(b"ab")], {"in: not a PDU": n_not_pdu, "in: not a u8 PDU": n_not_vec},
             3),                                           # + the empty and the 64 KiB u8 PDUs of not_pdus
            (R._soft_bytes(), hostile + [f32_nan, f32], soft_reasons, 1),   # not_pdus' f32 PDU: 4 symbols
            (R._soft_frame(), hostile + [f32_nan, f32], soft_reasons, 1),
            (R._crc_failures(), hostile + [u8_pdu(b"abcdefgh")],
             {"in: not a PDU": n_not_pdu, "in: not a u8 PDU": n_not_vec}, 3)]   # empty, 64 KiB of 0xFF, abcdefgh
        for blk, msgs, reasons, n_out in cases:
            with self.subTest(block=blk.guard.block_name):
                captured(blk.guard)
                fg = Flowgraph(blk)
                try:
                    fg.post("in", msgs)
                    wait_for(lambda: blk.pdus_in() == len(msgs) and len(fg.out()) >= n_out, TIMEOUT,
                             "helper stalled")
                    time.sleep(0.05)                       # nothing more may come
                    self.assertEqual(blk.rejections(), reasons)
                    self.assertEqual(len(fg.out()), n_out)
                    self.assertEqual(blk.pdus_out(), n_out)
                finally:
                    fg.stop()
        # the last output of _soft_bytes: the valid frame's hard decisions, with its SNR and heard index
        blk = R._soft_bytes()
        fg = Flowgraph(blk)
        try:
            fg.post("in", [f32_nan, f32])
            wait_for(lambda: blk.pdus_in() == 2 and len(fg.out()) == 1, TIMEOUT, "soft bytes stalled")
            m = fg.out()[0]
            self.assertEqual(bytes(pmt.u8vector_elements(pmt.cdr(m))), bytes(np.packbits(soft >= 0)))
            self.assertEqual(pmt.to_uint64(pmt.dict_ref(pmt.car(m), pmt.intern("rx_frame"), pmt.PMT_NIL)), 0)
        finally:
            fg.stop()
        self.assertIsNone(phy.soft_snr_db(nan_soft))
        self.assertIsNone(phy.soft_snr_db(np.full(64, INF)))
        framer = phy.packet_framer()
        lines = captured(framer.guard)
        tb = gr.top_block()
        tb.connect(framer, blocks.null_sink(1))
        tb.start()
        try:
            bad = [m for m in hostile if not (pmt.is_pair(m) and pmt.is_u8vector(pmt.cdr(m)))]
            bb = framer.to_basic_block()
            for port in ("header", "payload"):
                for m in bad:
                    bb._post(pmt.intern(port), m)
            wait_for(lambda: sum(framer.rejections().values()) == 2 * len(bad), TIMEOUT, "framer stalled")
            self.assertEqual(framer.rejections(), {"header: not a u8 PDU": len(bad), "payload: not a u8 PDU": len(bad)})
            self.assertEqual(len(lines), 2)
        finally:
            tb.stop()
            tb.wait()


class qa_hostile_hier(gr_unittest.TestCase):
    """The LargeSC TX and RX hier blocks as a whole, running: garbage into
    RX's packet input and TX's feedback input, mixed with the real packets;
    the decoded audio must equal that of a clean run sample for sample, and
    every garbage message must be counted where it landed."""

    N = 25                                  # 2 s of audio, 80 ms frames
    SPF = 1280                              # samples per frame at 16 kHz

    def run_link(self, rx_garbage=(), fb_garbage=()):
        rng = np.random.default_rng(7)
        t = np.arange(self.N * self.SPF) / 16000.0
        audio = (0.2 * np.sin(2 * np.pi * (200 + 150 * t) * t)
                 + 0.03 * rng.standard_normal(len(t))).astype(np.float32)
        tb = gr.top_block()
        src = blocks.vector_source_f(audio.tolist())
        tx = largesc.largesc_tx(sample_rate=16000, weights=SEED, threads=1, loss_rate=0.0, mean_burst=1.0,
                                device="cpu")
        rx = largesc.largesc_rx(sample_rate=16000, weights=SEED, threads=1, start_frame=0,
                                feedback_interval=0, device="cpu")
        sink = blocks.vector_sink_f()
        tb.connect(src, tx)
        tb.msg_connect(tx, "out", rx, "in")
        tb.connect(rx, sink)
        # queued before the start: handled among the first real packets
        dep, ctrl = rx.depacketizer.to_basic_block(), tx.controller.to_basic_block()
        for m in rx_garbage:
            dep._post(pmt.intern("in"), m)
        for m in fb_garbage:
            ctrl._post(pmt.intern("feedback"), m)
        tb.start()
        try:
            wait_for(lambda: rx.depacketizer.packets_in() >= self.N + len(rx_garbage), 120,
                     "packets into the RX")
            rx.flush()                               # the last frame waits for copies (delay 1)
            wait_for(lambda: len(sink.data()) >= self.N * self.SPF, 120, "decoded audio")
            time.sleep(0.3)                          # nothing more may come
        finally:
            tb.stop()
            tb.wait()
        return tx, rx, np.asarray(sink.data(), np.float32)

    def test_garbage_into_rx_and_feedback(self):
        t0 = time.monotonic()
        bad_packets = [pmt.cons(pmt.make_dict(), pmt.init_u8vector(len(b), list(b))) for b in
                       (b"\x05\x41", b"\x05\xc1\x00\xff\xe0\x04",          # too short, bad version
                        b"\x05\x41\x00\xff\xe0", bytes(300))] + \
            [pmt.cons(pmt.PMT_NIL, pmt.init_u8vector(0, []))] * 1000
        rx_garbage = not_pdus() + bad_packets
        fb_garbage = not_pdus() + [d(loss_rate=NAN, mean_burst=2.0), d(loss_rate=0.5, mean_burst=-1.0),
                                   d(loss_rate=0.5, mean_burst=2.0, window=-3)] * 300
        _, _, clean = self.run_link()
        tx, rx, got = self.run_link(rx_garbage, fb_garbage)
        self.assertEqual(len(clean), self.N * self.SPF)
        self.assertGreater(float(np.abs(clean).max()), 1e-3)
        np.testing.assert_array_equal(got, clean)
        c = rx.counters()
        self.assertEqual(c["frames_out"], self.N)
        self.assertEqual(c["packets_accepted"], self.N)
        self.assertEqual(c["malformed"], len(rx_garbage))
        self.assertEqual(c["packets_in"], self.N + len(rx_garbage))
        self.assertEqual(tx.controller.feedback_rejected(), len(fb_garbage))
        self.assertEqual(tx.packets_out(), self.N)
        self.assertLess(time.monotonic() - t0, 240)


if __name__ == "__main__":
    gr_unittest.main()
