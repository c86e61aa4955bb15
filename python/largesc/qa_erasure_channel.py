#!/usr/bin/env python3
#
# Copyright 2026 gr-largesc authors.
# SPDX-License-Identifier: GPL-3.0-or-later
#
"""QA for the C++ loss models (through the bindings) and the erasure_channel block."""

import os
import tempfile
import time

import numpy as np
import pmt
from gnuradio import blocks, gr, gr_unittest

try:
    from gnuradio import largesc
except ImportError:  # build tree without install
    import sys
    sys.path.append(os.path.join(os.path.dirname(os.path.abspath(__file__)), "bindings"))
    import largesc_python as largesc


def make_pdu(i, n_bytes=7):
    meta = pmt.dict_add(pmt.make_dict(), pmt.intern("seq"), pmt.from_long(i))
    data = pmt.init_u8vector(n_bytes, [(i * 7 + k) % 256 for k in range(n_bytes)])
    return pmt.cons(meta, data)


def wait_until(cond, timeout, what):
    """Polls cond() until true; fails the test (AssertionError) after timeout s."""
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s: {what}")
        time.sleep(0.005)


def run_channel(chan, msgs, timeout=10.0, n_stats=0):
    """Posts msgs into chan's input port, returns (received PDUs, stats dicts).

    Waits until the channel has handled every message, the sink holds every
    passed PDU and the stats sink holds n_stats dicts; fails the test if any of
    these does not happen within timeout seconds."""
    tb = gr.top_block()
    sink = blocks.message_debug()
    stats = blocks.message_debug()
    tb.msg_connect((chan, "out"), (sink, "store"))
    tb.msg_connect((chan, "stats"), (stats, "store"))
    in0, passed0 = chan.packets_in(), chan.packets_passed()   # a channel may be reused
    tb.start()
    try:
        for m in msgs:
            chan.to_basic_block()._post(pmt.intern("in"), m)
        wait_until(lambda: chan.packets_in() - in0 >= len(msgs), timeout,
                   f"channel handled {chan.packets_in() - in0} of {len(msgs)} messages")
        passed = chan.packets_passed() - passed0
        wait_until(lambda: sink.num_messages() >= passed, timeout,
                   f"sink got {sink.num_messages()} of {passed} passed PDUs")
        wait_until(lambda: stats.num_messages() >= n_stats, timeout,
                   f"stats sink got {stats.num_messages()} of {n_stats} dicts")
    finally:
        tb.stop()
        tb.wait()
    return ([sink.get_message(i) for i in range(sink.num_messages())],
            [stats.get_message(i) for i in range(stats.num_messages())])


def seqs(pdus):
    return [pmt.to_long(pmt.dict_ref(pmt.car(m), pmt.intern("seq"), pmt.PMT_NIL)) for m in pdus]


class qa_loss_model(gr_unittest.TestCase):

    def test_bernoulli_rate_within_bounds(self):
        n = 100_000
        for p in (0.0, 0.01, 0.1, 0.3, 0.5, 1.0):
            with self.subTest(p=p):
                pat = largesc.loss_model.bernoulli(p, seed=3).pattern(n)
                self.assertEqual(pat.dtype, np.uint8)
                self.assertEqual(len(pat), n)
                sd = np.sqrt(p * (1 - p) / n)
                self.assertLessEqual(abs(pat.mean() - p), 5 * sd + 1e-12)
                # i.i.d. losses have geometric runs with mean 1/(1-p)
                if 0 < p < 1:
                    s = largesc.measure_bursts(pat)
                    self.assertAlmostEqual(s.mean_burst, 1 / (1 - p), delta=0.05 / (1 - p))

    def test_gilbert_elliott_mean_parameters(self):
        n = 100_000
        for L in (0.05, 0.1, 0.3):
            for B in (1.0, 2.0, 3.0, 6.0):
                with self.subTest(L=L, B=B):
                    m = largesc.loss_model.gilbert_elliott_mean(L, B, seed=5)
                    self.assertAlmostEqual(m.p_bg, 1 / B)
                    self.assertAlmostEqual(m.p_gb, L / (B * (1 - L)))
                    self.assertAlmostEqual(m.mean_loss_rate, L)
                    self.assertAlmostEqual(m.mean_burst_length, B)
                    s = largesc.measure_bursts(m.pattern(n))
                    sd_l = np.sqrt(L * (1 - L) * 2 * B / n)
                    self.assertLessEqual(abs(s.loss_rate - L), 5 * sd_l)
                    sd_b = np.sqrt(B * (B - 1) / s.n_bursts) if B > 1 else 0.0
                    self.assertLessEqual(abs(s.mean_burst - B), 5 * sd_b + 1e-9)

    def test_gilbert_elliott_raw(self):
        # lossy Good state and leaky Bad state
        m = largesc.loss_model.gilbert_elliott(0.02, 0.25, loss_good=0.01, loss_bad=0.7, seed=9)
        pi_b = 0.02 / 0.27
        expect = (1 - pi_b) * 0.01 + pi_b * 0.7
        self.assertAlmostEqual(m.mean_loss_rate, expect)
        s = largesc.measure_bursts(m.pattern(200_000))
        self.assertAlmostEqual(s.loss_rate, expect, delta=0.006)
        self.assertAlmostEqual(s.mean_burst, m.mean_burst_length, delta=0.1)

    def test_seed_reproducible(self):
        for make in (lambda s: largesc.loss_model.bernoulli(0.2, s),
                     lambda s: largesc.loss_model.gilbert_elliott_mean(0.2, 3, s)):
            a, b, c = make(1).pattern(5000), make(1).pattern(5000), make(2).pattern(5000)
            np.testing.assert_array_equal(a, b)
            self.assertTrue((a != c).any())
            m = make(1)
            m.pattern(100)
            m.reset()
            np.testing.assert_array_equal(m.pattern(5000), a)

    def test_chunks_equal_one_call(self):
        m1 = largesc.loss_model.gilbert_elliott_mean(0.2, 3, 4)
        m2 = largesc.loss_model.gilbert_elliott_mean(0.2, 3, 4)
        whole = m1.pattern(1000)
        parts = np.concatenate([m2.pattern(1), m2.pattern(499), m2.pattern(500)])
        np.testing.assert_array_equal(whole, parts)

    def test_trace_file(self):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "trace.txt")
            with open(path, "w") as f:
                f.write("# measured on a 70 cm link\n0 1 1,0\n0001 # tail\n")
            np.testing.assert_array_equal(largesc.loss_model.read_trace_file(path),
                                          [0, 1, 1, 0, 0, 0, 0, 1])
            m = largesc.loss_model.trace_file(path, repeat=True)
            np.testing.assert_array_equal(m.pattern(10), [0, 1, 1, 0, 0, 0, 0, 1, 0, 1])
            m = largesc.loss_model.trace_file(path, repeat=False)
            np.testing.assert_array_equal(m.pattern(10), [0, 1, 1, 0, 0, 0, 0, 1, 0, 0])
            bad = os.path.join(d, "bad.txt")
            with open(bad, "w") as f:
                f.write("0 1\n0 x 1\n")
            with self.assertRaisesRegex(RuntimeError, "line 2 column 3"):
                largesc.loss_model.trace_file(bad)
            empty = os.path.join(d, "empty.txt")
            open(empty, "w").close()
            with self.assertRaisesRegex(RuntimeError, "no 0/1 entries"):
                largesc.loss_model.trace_file(empty)
            with self.assertRaisesRegex(RuntimeError, "not readable"):
                largesc.loss_model.trace_file(os.path.join(d, "missing.txt"))

    def test_bad_parameters(self):
        for bad in (-0.1, 1.1, float("nan")):
            with self.assertRaisesRegex(ValueError, r"\[0, 1\]"):
                largesc.loss_model.bernoulli(bad)
        with self.assertRaisesRegex(ValueError, ">= 1"):
            largesc.loss_model.gilbert_elliott_mean(0.1, 0.5)
        with self.assertRaisesRegex(ValueError, "impossible"):
            largesc.loss_model.gilbert_elliott_mean(0.8, 2.0)

    def test_bitpack_every_width(self):
        rng = np.random.default_rng(0)
        for w in range(1, 17):
            with self.subTest(width=w):
                tok = rng.integers(0, 2 ** w, size=517)
                b = largesc.pack_tokens(tok, w)
                self.assertEqual(len(b), (517 * w + 7) // 8)
                np.testing.assert_array_equal(largesc.unpack_tokens(b, 517, w), tok)
                if w < 16:
                    with self.assertRaisesRegex(ValueError, "does not fit"):
                        largesc.pack_tokens(np.array([2 ** w]), w)

    def test_crc_check_values(self):
        self.assertEqual(largesc.crc8(b"123456789"), 0xF4)
        self.assertEqual(largesc.crc16(b"123456789"), 0x29B1)


class qa_erasure_channel(gr_unittest.TestCase):

    def test_no_loss_passes_everything_unchanged(self):
        chan = largesc.erasure_channel("bernoulli", 0.0, seed=1)
        msgs = [make_pdu(i, 1 + i % 40) for i in range(500)]
        out, _ = run_channel(chan, msgs)
        self.assertEqual(len(out), 500)
        for a, b in zip(msgs, out):
            self.assertTrue(pmt.equal(a, b))
        self.assertEqual((chan.packets_in(), chan.packets_passed(), chan.packets_dropped()),
                         (500, 500, 0))

    def test_full_loss_drops_everything(self):
        chan = largesc.erasure_channel("bernoulli", 1.0)
        out, _ = run_channel(chan, [make_pdu(i) for i in range(300)])
        self.assertEqual(len(out), 0)
        self.assertEqual(chan.packets_dropped(), 300)
        self.assertEqual(chan.current_burst(), 300)
        self.assertEqual(chan.longest_burst(), 300)

    def test_block_follows_the_loss_model(self):
        """The block drops exactly the packets the same seeded model marks lost."""
        for model, kw, ref in (
                ("bernoulli", dict(loss_rate=0.3, seed=7),
                 largesc.loss_model.bernoulli(0.3, 7)),
                ("gilbert_elliott", dict(loss_rate=0.2, mean_burst=3.0, seed=8),
                 largesc.loss_model.gilbert_elliott_mean(0.2, 3.0, 8)),
                ("gilbert_elliott_raw", dict(p_gb=0.05, p_bg=0.3, loss_good=0.0,
                                             loss_bad=0.9, seed=9),
                 largesc.loss_model.gilbert_elliott(0.05, 0.3, 0.0, 0.9, 9))):
            with self.subTest(model=model):
                chan = largesc.erasure_channel(model, **kw)
                n = 2000
                out, _ = run_channel(chan, [make_pdu(i) for i in range(n)])
                lost = ref.pattern(n)
                kept = [pmt.to_long(pmt.dict_ref(pmt.car(m), pmt.intern("seq"), pmt.PMT_NIL))
                        for m in out]
                self.assertEqual(kept, [i for i in range(n) if not lost[i]])
                self.assertEqual(chan.packets_in(), chan.packets_passed() + chan.packets_dropped())

    def test_trace_model_and_stats_port(self):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "t.txt")
            with open(path, "w") as f:
                f.write("0 0 1 1 1 0 1 0 0 0")
            chan = largesc.erasure_channel("trace", trace_file=path, trace_repeat=True,
                                           stats_interval=10)
            out, stats = run_channel(chan, [make_pdu(i) for i in range(30)], n_stats=3)
        kept = [pmt.to_long(pmt.dict_ref(pmt.car(m), pmt.intern("seq"), pmt.PMT_NIL)) for m in out]
        self.assertEqual(kept, [i for i in range(30) if i % 10 not in (2, 3, 4, 6)])
        self.assertEqual(len(stats), 3)
        last = stats[-1]
        get = lambda k: pmt.to_python(pmt.dict_ref(last, pmt.intern(k), pmt.PMT_NIL))
        self.assertEqual(get("packets_in"), 30)
        self.assertEqual(get("packets_dropped"), 12)
        self.assertEqual(get("packets_passed"), 18)
        self.assertEqual(get("longest_burst"), 3)
        self.assertAlmostEqual(get("measured_loss_rate"), 0.4)
        self.assertAlmostEqual(get("nominal_loss_rate"), 0.4)

    def test_trace_pattern_equals_trace_file(self):
        """A trace passed as a pattern (trace=, no file) drops exactly the
        packets the same pattern in a file drops, repeated or played once,
        and reports the same nominal loss."""
        rng = np.random.default_rng(4)
        pattern = [int(v) for v in rng.random(37) < 0.35]
        n = 100
        kept = {}
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "t.txt")
            with open(path, "w") as f:
                f.write(" ".join(map(str, pattern)))
            for repeat in (True, False):
                with self.subTest(repeat=repeat):
                    from_file = largesc.erasure_channel("trace", trace_file=path, trace_repeat=repeat,
                                                        stats_interval=0)
                    direct = largesc.erasure_channel("trace", trace=pattern, trace_repeat=repeat,
                                                     stats_interval=0)
                    want = kept[repeat] = seqs(run_channel(from_file, [make_pdu(i) for i in range(n)])[0])
                    self.assertEqual(seqs(run_channel(direct, [make_pdu(i) for i in range(n)])[0]), want)
                    lost = [pattern[i % len(pattern)] if repeat or i < len(pattern) else 0 for i in range(n)]
                    self.assertEqual(want, [i for i in range(n) if not lost[i]])
                    self.assertEqual((direct.model(), direct.loss_rate(), direct.longest_burst()),
                                     (from_file.model(), from_file.loss_rate(), from_file.longest_burst()))
        # a tuple and a numpy array are patterns too
        for given in (tuple(pattern), np.array(pattern, np.uint8), np.array(pattern, np.int64)):
            with self.subTest(type=type(given).__name__):
                chan = largesc.erasure_channel("trace", trace=given, stats_interval=0)   # repeated
                self.assertEqual(seqs(run_channel(chan, [make_pdu(i) for i in range(n)])[0]), kept[True])

    def test_non_pdu_counted_and_dropped(self):
        chan = largesc.erasure_channel("bernoulli", 0.0)
        msgs = [make_pdu(0), pmt.intern("junk"), pmt.cons(pmt.make_dict(), pmt.from_long(3)),
                pmt.from_long(5), make_pdu(1)]
        out, _ = run_channel(chan, msgs)
        self.assertEqual(len(out), 2)
        self.assertEqual(chan.packets_rejected(), 3)
        self.assertEqual(chan.packets_in(), 5)
        self.assertEqual(chan.packets_in(),
                         chan.packets_passed() + chan.packets_dropped() + chan.packets_rejected())

    def test_non_pdu_does_not_shift_the_loss_pattern(self):
        """Rejected messages draw no loss decision: at a nonzero loss rate, with
        junk between the PDUs, exactly the PDUs the seeded model passes come out
        (the i-th PDU meets the i-th draw), as in a run without the junk."""
        junk = (pmt.intern("junk"), pmt.from_long(5), pmt.cons(pmt.make_dict(), pmt.from_long(3)),
                pmt.cons(pmt.from_long(1), pmt.init_u8vector(2, [1, 2])), pmt.make_dict())
        for model, kw, ref in (
                ("bernoulli", dict(loss_rate=0.3, seed=11), lambda: largesc.loss_model.bernoulli(0.3, 11)),
                ("gilbert_elliott", dict(loss_rate=0.25, mean_burst=3.0, seed=12),
                 lambda: largesc.loss_model.gilbert_elliott_mean(0.25, 3.0, 12))):
            with self.subTest(model=model):
                n = 400
                msgs, n_junk = [], 0
                for i in range(n):
                    # junk before the first PDU, single and in runs of 2..3
                    for _ in range((i % 3 == 0) + (i % 7 == 0) + (i % 11 == 0)):
                        msgs.append(junk[n_junk % len(junk)])
                        n_junk += 1
                    msgs.append(make_pdu(i))
                lost = ref().pattern(n)
                want = [i for i in range(n) if not lost[i]]
                self.assertTrue(0.15 * n < n - len(want) < 0.45 * n)  # the test means something
                chan = largesc.erasure_channel(model, **kw)
                out, _ = run_channel(chan, msgs)
                self.assertEqual(seqs(out), want)
                self.assertEqual((chan.packets_in(), chan.packets_rejected(), chan.packets_passed(),
                                  chan.packets_dropped()),
                                 (n + n_junk, n_junk, len(want), n - len(want)))
                clean = largesc.erasure_channel(model, **kw)
                self.assertEqual(seqs(run_channel(clean, [make_pdu(i) for i in range(n)])[0]), want)

    def test_set_loss_rate_at_run_time(self):
        chan = largesc.erasure_channel("bernoulli", 0.0, seed=2)
        out, _ = run_channel(chan, [make_pdu(i) for i in range(100)])
        self.assertEqual(len(out), 100)
        chan.set_loss_rate(1.0)
        self.assertEqual(chan.loss_rate(), 1.0)
        out, _ = run_channel(chan, [make_pdu(i) for i in range(100)])
        self.assertEqual(len(out), 0)
        ge = largesc.erasure_channel("gilbert_elliott", 0.1, 4.0)
        ge.set_loss_rate(0.25)
        self.assertAlmostEqual(ge.loss_rate(), 0.25)
        self.assertAlmostEqual(ge.mean_burst(), 4.0)
        with self.assertRaisesRegex(ValueError, r"\[0, 1\]"):
            chan.set_loss_rate(1.5)

    def test_construction_errors(self):
        with self.assertRaisesRegex(ValueError, r"loss_rate must be a probability in \[0, 1\]"):
            largesc.erasure_channel("bernoulli", 1.5)
        with self.assertRaisesRegex(ValueError, "mean_burst"):
            largesc.erasure_channel("gilbert_elliott", 0.1, 0.5)
        with self.assertRaisesRegex(ValueError, "allowed: bernoulli, gilbert_elliott"):
            largesc.erasure_channel("rayleigh", 0.1)
        with self.assertRaisesRegex(ValueError, "needs trace_file"):
            largesc.erasure_channel("trace")
        with self.assertRaisesRegex(ValueError, "needs trace_file, .* or trace, the 0/1 pattern itself"):
            largesc.erasure_channel("trace", trace=[])
        with self.assertRaisesRegex(RuntimeError, "not readable"):
            largesc.erasure_channel("trace", trace_file="/nonexistent/loss.txt")
        with self.assertRaisesRegex(ValueError, "stats_interval"):
            largesc.erasure_channel(stats_interval=-1)


class qa_erasure_channel_hostile(gr_unittest.TestCase):
    """Hostile messages into a running channel between valid PDUs: non-PDUs are
    counted as rejected and dropped, any PDU (empty, 64 KiB, any uniform vector
    type) passes unchanged; the counters add up and every wait can fail."""

    def test_hostile_messages_between_valid_pdus(self):
        junk = [pmt.PMT_NIL, pmt.intern("x"), pmt.from_long(-1), pmt.from_double(float("nan")),
                pmt.from_double(float("inf")), pmt.make_dict(),
                pmt.cons(pmt.make_dict(), pmt.from_long(3)),
                pmt.cons(pmt.from_uint64(2 ** 64 - 1), pmt.init_u8vector(2, [1, 2])),
                pmt.cons(pmt.make_dict(), pmt.make_vector(2, pmt.from_long(1))),
                pmt.cons(pmt.make_dict(), pmt.intern("bytes"))]
        odd = [pmt.cons(pmt.make_dict(), pmt.init_u8vector(0, [])),                   # empty PDU
               pmt.cons(pmt.make_dict(), pmt.init_u8vector(65536, [7] * 65536)),      # 64 KiB
               pmt.cons(pmt.make_dict(), pmt.init_f32vector(2, [float("nan"), 1.0])),
               pmt.cons(pmt.make_dict(), pmt.init_s64vector(1, [-2 ** 63]))]
        msgs, want, i = [], [], 0
        for m in junk + odd:
            msgs.append(m)
            if m in odd:
                want.append(m)
            msgs.append(make_pdu(i))
            want.append(msgs[-1])
            i += 1
        msgs += [junk[j % len(junk)] for j in range(1000)]   # a burst without pause
        for _ in range(50):
            msgs.append(make_pdu(i))
            want.append(msgs[-1])
            i += 1
        n_junk = len(msgs) - len(want)
        chan = largesc.erasure_channel("bernoulli", 0.0, stats_interval=0)
        t0 = time.monotonic()
        out, _ = run_channel(chan, msgs, timeout=20.0)
        self.assertLess(time.monotonic() - t0, 40.0)
        self.assertEqual(len(out), len(want))
        for got, exp in zip(out, want):            # the same messages, unchanged, in order
            self.assertTrue(pmt.equal(got, exp))
        self.assertEqual((chan.packets_in(), chan.packets_passed(), chan.packets_dropped(),
                          chan.packets_rejected()),
                         (len(msgs), len(want), 0, n_junk))

    def test_construction_names_the_parameter(self):
        nan, inf = float("nan"), float("inf")
        cases = [
            (dict(model="gilbert_elliott", loss_rate=0.1, mean_burst=1e300),
             r"erasure_channel: mean_burst must be a finite number in \[1, 1e6\].*got 1e\+300"),
            (dict(mean_burst=nan), r"mean_burst must be a finite number in \[1, 1e6\].*got nan"),
            (dict(mean_burst=0.5), r"mean_burst must be"),
            (dict(loss_rate=nan), r"erasure_channel: loss_rate must be a probability in \[0, 1\], got nan"),
            (dict(loss_rate=inf), r"loss_rate must be a probability in \[0, 1\], got inf"),
            (dict(loss_rate="0.1"), r"loss_rate must be a probability in \[0, 1\], got '0.1'"),
            (dict(loss_rate=True), r"loss_rate must be a probability .*got True"),
            (dict(p_gb=2.0), r"erasure_channel: p_gb must be a probability in \[0, 1\], got 2.0"),
            (dict(p_bg=-0.1), r"p_bg must be"),
            (dict(loss_good=nan), r"loss_good must be"),
            (dict(loss_bad=1.5), r"loss_bad must be"),
            (dict(seed=-1), r"erasure_channel: seed must be an integer in 0..2\^64-1, got -1"),
            (dict(seed=2 ** 64), r"seed must be an integer in 0..2\^64-1, got 18446744073709551616"),
            (dict(seed=1.5), r"seed must be an integer .*got 1.5"),
            (dict(model=3), r"erasure_channel: model must be one of 'bernoulli', 'gilbert_elliott', "
                            r"'gilbert_elliott_raw', 'trace', got 3"),
            (dict(model="rayleigh"), r"unknown model 'rayleigh'; allowed: bernoulli"),
            (dict(trace_repeat=1), r"trace_repeat must be a bool \(True/False\), got 1"),
            (dict(trace_file=None), r"trace_file must be a str"),
            (dict(model="trace", trace=[0, 2, 1]), r"erasure_channel: trace entry 1 must be an integer in 0..1, got 2"),
            (dict(trace=[0, True]), r"trace entry 1 must be an integer in 0..1, got True"),
            (dict(trace=[0, 1.0]), r"trace entry 1 must be an integer in 0..1, got 1.0"),
            (dict(trace="0110"), r"erasure_channel: trace must be a sequence of 0 \(received\) and 1 \(lost\)"),
            (dict(trace=None), r"trace must be a sequence of 0 \(received\) and 1 \(lost\).*got None"),
            (dict(trace={0, 1}), r"trace must be a sequence"),
            (dict(model="trace", trace=[0, 1], trace_file="t.txt"),
             r"erasure_channel: give trace_file or trace \(the pattern itself\), not both"),
            (dict(stats_interval=nan), r"stats_interval must be an integer in 0..1000000000, got nan"),
            (dict(stats_interval=-1), r"stats_interval must be an integer in 0..1000000000, got -1"),
        ]
        for kw, msg in cases:
            with self.subTest(kw=kw):
                with self.assertRaisesRegex(ValueError, msg):
                    largesc.erasure_channel(**kw)
        chan = largesc.erasure_channel("bernoulli", 0.1, 1.0, np.uint64(3), stats_interval=np.int32(0))
        for bad in (nan, 1.5, "0.2", None):
            with self.assertRaisesRegex(ValueError, r"erasure_channel: loss_rate must be a probability"):
                chan.set_loss_rate(bad)
        self.assertAlmostEqual(chan.loss_rate(), 0.1)
        largesc.erasure_channel("gilbert_elliott", 0.2, 1e6)   # the bound itself is allowed


if __name__ == "__main__":
    gr_unittest.run(qa_erasure_channel)  # runs every TestCase in this file
