#!/usr/bin/env python3
#
# Copyright 2026 gr-largesc authors.
# SPDX-License-Identifier: GPL-3.0-or-later
#
"""Packet-loss traces: format, recorder block, replay (docs/traces.md)."""

import json
import os
import subprocess
import sys
import tempfile
import time
import unittest

import numpy as np
import pmt
from gnuradio import gr

from gnuradio import largesc
from gnuradio.largesc.traces import trace as T

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
SHIPPED = os.path.join(ROOT, "docs", "traces", "phy_awgn_12db.trace")


class _poster(gr.basic_block):
    def __init__(self):
        gr.basic_block.__init__(self, "poster", in_sig=None, out_sig=None)
        self.message_port_register_out(pmt.intern("in"))
        self.message_port_register_out(pmt.intern("sent"))

    def post(self, port, msg):
        self.message_port_pub(pmt.intern(port), msg)


def packet(frame, meta=None):
    core = largesc.packetizer_core(False)
    b = core.packetize(frame, np.arange(8, dtype=np.int64), 8, 0, 0)
    return pmt.cons(meta if meta is not None else pmt.make_dict(), pmt.init_u8vector(len(b), list(b)))


def wait_for(cond, timeout=10.0):
    t = time.monotonic() + timeout
    while not cond() and time.monotonic() < t:
        time.sleep(0.01)
    return cond()


class qa_trace_format(unittest.TestCase):

    def test_round_trip(self):
        fates = np.array([0, 1, 1, 0, 0, 1, 0], np.uint8)
        arr = np.array([0.0, np.nan, np.nan, 0.24, 0.32, np.nan, 0.48])
        snr = np.array([12.5, np.nan, np.nan, 11.0, np.nan, np.nan, 9.25])
        t = T.Trace(fates, None, arr, snr, {"source": "test (SIMULATED)", "bit_rate": "10000"})
        with tempfile.TemporaryDirectory() as d:
            p = os.path.join(d, "x.trace")
            T.write_trace(p, t)
            u = T.read_trace(p)
            np.testing.assert_array_equal(u.fates, fates)
            self.assertEqual(u.status, ["ok", "lost", "lost", "ok", "ok", "lost", "ok"])
            np.testing.assert_allclose(u.arrival_s, arr, equal_nan=True)
            np.testing.assert_allclose(u.snr_db, snr, equal_nan=True)
            self.assertEqual(u.header["source"], "test (SIMULATED)")
            self.assertEqual(u.header["bit_rate"], "10000")
            self.assertTrue(u.header["lost"].startswith("3 (42.86 %), 2 bursts"))
            # the C++ reader (erasure channel's trace mode) reads the same file as it is
            np.testing.assert_array_equal(largesc.loss_model.read_trace_file(p), fates)
            np.testing.assert_array_equal(T.to_loss_pattern(p), fates)
            # and a plain 0/1 file is a trace too
            q = os.path.join(d, "plain.txt")
            T.write_loss_pattern(q, fates)
            np.testing.assert_array_equal(T.to_loss_pattern(q), fates)
            with open(q, "w") as f:
                f.write("0 1, 1\n# comment\n0 0 1 0\n")
            np.testing.assert_array_equal(T.to_loss_pattern(q), fates)

    def test_malformed(self):
        for text, msg in (("", "no packets"), ("# only a header\n", "no packets"),
                          ("2 # 0 ok - -\n", "starts with 0 or 1"),
                          ("0 # 0 lost - -\n", "contradicts"),
                          ("1 # 0 gone - -\n", "unknown status"),
                          ("0 # 0 ok soon -\n", "a number or '-'")):
            with self.assertRaisesRegex(T.TraceError, msg):
                T.parse_trace(text)
        with self.assertRaisesRegex(T.TraceError, "cannot read trace file"):
            T.read_trace("/nonexistent/x.trace")

    def test_stats_and_identity(self):
        s = T.loss_stats([0, 1, 1, 0, 1, 0, 0, 0])
        self.assertEqual(s, dict(packets=8, lost=3, loss_rate=0.375, bursts=2, mean_burst=1.5,
                                 longest_burst=2))
        self.assertNotEqual(T.pattern_digest([0, 1]), T.pattern_digest([1, 0]))
        name, dig, pat = T.trace_identity(SHIPPED)
        self.assertEqual(name, "phy_awgn_12db")
        self.assertEqual(dig, T.pattern_digest(pat))

    def test_shipped_trace(self):
        t = T.read_trace(SHIPPED)
        self.assertIn("SIMULATED", t.header["source"])
        self.assertEqual(len(t), 250)
        np.testing.assert_array_equal(largesc.loss_model.read_trace_file(SHIPPED), t.fates)

    def test_seq_unwrap(self):
        u = T.SeqUnwrapper()
        seqs = [0, 1, 2, 5, 130, 255, 0, 3, 2, 100]   # 5 -> 130 is +125; 2 late; 3 -> 100 = +97
        self.assertEqual([u.frame(s) for s in seqs], [0, 1, 2, 5, 130, 255, 256, 259, 258, 356])
        # with arrival times, an outage longer than 256 packets unwraps right
        u = T.SeqUnwrapper(0.08)
        self.assertEqual(u.frame(10, 0.0), 10)
        self.assertEqual(u.frame(20, 0.8), 20)
        self.assertEqual(u.frame(20, 0.8 + 300 * 0.08), 20 + 256)       # 300 packets on air: 256 + 0
        self.assertEqual(u.frame(30, 0.8 + 300 * 0.08 + 0.8), 30 + 256)


class qa_trace_recorder(unittest.TestCase):

    def run_recorder(self, posts, **kw):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "rx.trace")
            tb = gr.top_block()
            src = _poster()
            rec = T.trace_recorder(path, **kw)
            tb.msg_connect(src, "in", rec, "in")
            tb.msg_connect(src, "sent", rec, "sent")
            rec.guard.log = lambda text: None
            tb.start()
            n_msgs = 0
            for port, m in posts:
                src.post(port, m)
                n_msgs += 1
            ok = wait_for(lambda: rec.delivered() + rec.guard.total() + rec.sent()
                          + getattr(rec, "_dups", 0) >= n_msgs)
            tb.stop()
            tb.wait()
            self.assertTrue(ok, "the recorder did not handle every message")
            self.assertTrue(os.path.exists(path))
            return rec, T.read_trace(path)

    def test_exact_fates_with_hostile_messages(self):
        hostile = [pmt.intern("junk"), pmt.PMT_NIL, pmt.cons(pmt.make_dict(), pmt.init_u8vector(2, [1, 2])),
                   pmt.cons(pmt.make_dict(), pmt.init_u8vector(5, [0, 0, 0, 0, 0])),   # version 00
                   pmt.cons(pmt.make_dict(), pmt.init_f32vector(3, [1, 2, 3])), pmt.from_long(7)]
        delivered = [0, 1, 3, 4, 7, 8, 9, 12]
        posts = []
        for i, f in enumerate(delivered):
            meta = pmt.make_dict()
            if f == 3:
                meta = pmt.dict_add(meta, pmt.intern("snr_db"), pmt.from_double(11.5))
            posts.append(("in", packet(f, meta)))
            posts.append(("in", hostile[i % len(hostile)]))
        posts += [("sent", packet(f)) for f in range(15)]
        posts.append(("in", packet(4)))  # a duplicate
        rec, t = self.run_recorder(posts, interval=0.0, bit_rate=10000.0, source="qa (SIMULATED)")
        want = np.ones(15, np.uint8)
        want[delivered] = 0
        np.testing.assert_array_equal(t.fates, want)         # 13, 14: lost after the last delivered
        self.assertEqual(t.snr_db[3], 11.5)
        self.assertTrue(np.isnan(t.snr_db[0]))
        self.assertTrue(np.all(np.isfinite(t.arrival_s[delivered])))
        self.assertEqual(rec.guard.total(), len(delivered))
        self.assertEqual(t.header["source"], "qa (SIMULATED)")
        self.assertEqual(t.header["duplicates"], "1")
        self.assertEqual(t.header["rejected_messages"], str(len(delivered)))

    def test_seq_wrap_in_flowgraph(self):
        frames = [f for f in range(600) if f % 7 and not 300 <= f < 310]
        posts = [("in", packet(f)) for f in frames]
        _rec, t = self.run_recorder(posts, interval=0.0, expected=600)
        want = np.ones(600, np.uint8)
        want[frames] = 0
        np.testing.assert_array_equal(t.fates, want)

    def test_bad_parameters(self):
        for kw, msg in ((dict(expected=-1), "expected"), (dict(interval=-0.1), "interval"),
                        (dict(path=3), "path"), (dict(flush_interval=float("nan")), "flush_interval")):
            with self.assertRaisesRegex(ValueError, msg):
                T.trace_recorder(**kw)

    def test_unwritable_path(self):
        """A path no trace can be written to is refused at construction, by
        name; one that fails later (its folder removed) never raises: the
        failed write is counted and logged."""
        with self.assertRaisesRegex(ValueError, r"^path must be a writable trace file path .* does not exist"):
            T.trace_recorder("/nonexistent/dir/x.trace")
        with tempfile.TemporaryDirectory() as d:
            with self.assertRaisesRegex(ValueError, r"^path must be .*: is a directory"):
                T.trace_recorder(d)
            sub = os.path.join(d, "sub")
            os.mkdir(sub)
            rec = T.trace_recorder(os.path.join(sub, "x.trace"))
            os.rmdir(sub)
            rec.guard.log = lambda text: None
            rec.handle_in(packet(0))
            self.assertFalse(rec.flush())
            self.assertEqual(list(rec.counts()), ["write: FileNotFoundError"])


class qa_replay_alignment(unittest.TestCase):
    """The one rule (baselines.LossSpec.frame_losses): a trace is 80 ms air
    slots; a baseline packet / codec frame is lost when the slot its midpoint
    falls in is lost, in either alignment; the trace repeats."""

    TRACE = (0, 1, 0, 0, 1, 1, 0)

    def test_exact_frames_per_codec_duration(self):
        from gnuradio.largesc.eval import baselines as B
        L = B.LossSpec(model="trace", trace=self.TRACE)
        slot = np.array(self.TRACE, bool)
        # 40 ms (Codec2 700C): 2 frames per slot, 9 slots -> the trace repeats at slot 7
        want40 = np.repeat(np.resize(slot, 9), 2)
        np.testing.assert_array_equal(L.frame_losses(18, 40.0), want40)
        # 20 ms (Codec2 3200, Opus): 4 per slot
        np.testing.assert_array_equal(L.frame_losses(28, 20.0), np.repeat(slot, 4))
        # 30 ms (LPCNet): midpoints 15, 45, 75 | 105, 135 | 165, 195, 225 | ... ms
        np.testing.assert_array_equal(
            L.frame_losses(8, 30.0), [False, False, False, True, True, False, False, False])
        # frame alignment: the same rule for a trace (time, not packet count)
        F = B.LossSpec(model="trace", trace=self.TRACE, alignment="frame")
        np.testing.assert_array_equal(F.frame_losses(18, 40.0), want40)
        # the slot pattern is the LargeSC erasure channel's: loss_model.trace, repeated
        np.testing.assert_array_equal(L.pattern(10), np.resize(slot, 10))
        with self.assertRaisesRegex(ValueError, "needs trace"):
            B.LossSpec(model="trace")
        with self.assertRaisesRegex(ValueError, "needs trace"):
            B.LossSpec(model="trace", trace=(0, 2))

    def test_codec2_run_loses_exactly_those_frames(self):
        from gnuradio.largesc.eval import baselines as B
        ok, why = B.available_baselines()["codec2_700c"]
        if not ok:
            self.skipTest(why)
        x = (0.1 * np.sin(np.arange(16000) * 0.05)).astype(np.float32)   # 1 s: 25 frames, 13 slots
        res = B.run_baseline("codec2_700c", x, 16000, B.LossSpec(model="trace", trace=self.TRACE))
        want = np.repeat(np.resize(np.array(self.TRACE, bool), 13), 2)[:res.frames]
        np.testing.assert_array_equal(res.frame_lost, want)
        self.assertEqual(res.packets_lost, int(np.resize(np.array(self.TRACE), res.packets).sum()))


class qa_replay_sim(unittest.TestCase):

    def test_largesc_and_codec2_replay_the_same_trace(self):
        from gnuradio.largesc.sim import campaign as sim
        with tempfile.TemporaryDirectory() as d:
            tr = os.path.join(d, "mylink.trace")
            pattern = np.array([0, 0, 1, 1, 1, 0, 0, 0, 1, 0, 0, 0, 0, 1, 1, 0, 0], np.uint8)
            T.write_trace(tr, T.Trace(pattern, header={"source": "qa (SIMULATED)"}))
            out = os.path.join(d, "out")
            cmd = [os.path.join(os.path.dirname(sys.executable), "largesc-sim"), "--demo", "--clips", "1",
                   "--max-seconds", "1.5", "--metrics", "stoi", "--budget", "1100", "--jobs", "1",
                   "--baselines", "codec2_700c", "--weights", "random:1", "--no-progress", "--no-audio",
                   "--trace", tr, "--out", out]
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
            self.assertEqual(r.returncode, 0, r.stderr[-3000:])
            _name, digest, _ = T.trace_identity(tr)
            self.assertIn(f"trace mylink@{digest}: 17 packets (80 ms slots), loss 35.3 %, 3 bursts, "
                          "mean burst 2.00, longest 3", r.stdout)
            with open(os.path.join(out, "rows.jsonl")) as f:
                rows = [json.loads(line) for line in f]
            self.assertEqual(sorted(x["system"] for x in rows), ["codec2_700c", "largesc"])
            for x in rows:
                self.assertTrue(x["point"].endswith(f"|trace=mylink@{digest}"), x["point"])
                self.assertEqual(x["trace"], f"mylink@{digest}")
                self.assertAlmostEqual(x["loss_rate"], 6 / 17)
                self.assertEqual(x["trace_longest_burst"], 3)
                # the same losses in time: packet k of either system sees trace entry k (repeated)
                self.assertEqual(x["packets_dropped"], int(np.resize(pattern, x["packets_sent"]).sum()), x)
                self.assertGreater(x["packets_sent"], len(pattern))   # 1.5 s = 19 slots: it repeats
            with open(os.path.join(out, "report.json")) as f:
                rep = json.load(f)
            self.assertEqual([t["name"] for t in rep["config"]["traces"]], ["mylink"])
            self.assertTrue(all(s["trace"] == f"mylink@{digest}" for s in rep["summary"]))
            # resume: the same command finds both points done
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
            self.assertEqual(r.returncode, 0, r.stderr[-3000:])
            self.assertIn("resuming: 2 of 2 points already", r.stderr)
            # the same name with other content is another point (the digest is in the key)
            T.write_trace(tr, T.Trace(1 - pattern))
            pts = sim.make_grid(["largesc"], [1100], [], [1], ["hold"], 1, {}, sim.load_traces([tr]))
            self.assertNotEqual(pts[0].key(), rows[0]["point"])
            self.assertEqual(len(pts), 1)

    def test_traces_of_a_channel_sweep_against_ebn0(self):
        """Traces whose header names channel and Eb/N0 (largesc-phy-sweep
        --trace-dir writes them) label their rows and the console, and the
        report draws each system's metric against Eb/N0 per channel."""
        from gnuradio.largesc.sim import report as R
        with tempfile.TemporaryDirectory() as d:
            rng = np.random.default_rng(5)
            files = []
            for chan, ebn0, p in (("rayleigh", 10, 0.5), ("rayleigh", 14, 0.2), ("awgn", 10, 0.3)):
                tr = os.path.join(d, f"phy_{chan}_{ebn0}db.trace")
                T.write_trace(tr, T.Trace((rng.random(40) < p).astype(np.uint8),
                                          header={"source": "qa (SIMULATED)", "channel": chan,
                                                  "ebn0_db": str(ebn0), "fec": "none",
                                                  "doppler_hz": "2" if chan == "rayleigh" else "-"}))
                files.append(tr)
            out = os.path.join(d, "out")
            # a folder stands for its *.trace files (largesc-phy-sweep --trace-dir)
            cmd = [os.path.join(os.path.dirname(sys.executable), "largesc-sim"), "--demo", "--clips", "1",
                   "--max-seconds", "1.5", "--metrics", "stoi", "--budget", "1100", "--jobs", "1",
                   "--baselines", "codec2_700c", "--weights", "random:1", "--no-progress", "--no-audio",
                   "--out", out, "--trace", d]
            from gnuradio.largesc.sim import campaign as sim
            self.assertEqual(sim.expand_trace_args([d]), sorted(files))
            os.makedirs(os.path.join(d, "empty"))
            with self.assertRaisesRegex(T.TraceError, "has no \\*.trace file"):
                sim.expand_trace_args([files[0], os.path.join(d, "empty")])
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
            self.assertEqual(r.returncode, 0, r.stderr[-3000:])
            self.assertIn("; from rayleigh channel, Doppler 2 Hz, Eb/N0 14 dB, FEC none", r.stdout)
            self.assertIn("; from awgn channel, Eb/N0 10 dB, FEC none", r.stdout)
            with open(os.path.join(out, "rows.jsonl")) as f:
                rows = [json.loads(line) for line in f]
            self.assertEqual(len(rows), 6)
            for x in rows:
                name = x["trace"].split("@")[0]
                self.assertEqual(x["trace_channel"], name.split("_")[1])
                self.assertEqual(x["trace_ebn0_db"], float(name.split("_")[2][:-2]))
                self.assertEqual(x["trace_fec"], "none")
                self.assertEqual("trace_doppler_hz" in x, x["trace_channel"] == "rayleigh")
            rep = R.read_report(os.path.join(out, "report.json"))
            ser = R.ebn0_series(rep, "stoi")
            # LargeSC ran an untrained codec: only the baseline is drawn
            self.assertEqual(sorted(ser), [("codec2_700c", "awgn", "none"), ("codec2_700c", "rayleigh", "none")])
            stoi = {(x["trace_channel"], x["trace_ebn0_db"]): x["m_stoi"] for x in rows
                    if x["system"] == "codec2_700c"}
            self.assertEqual([(e, m) for e, m, _, _ in ser[("codec2_700c", "rayleigh", "none")]],
                             [(10.0, stoi[("rayleigh", 10.0)]), (14.0, stoi[("rayleigh", 14.0)])])
            # trace replays only: the Eb/N0 figure, no empty loss-rate figure
            self.assertEqual(sorted(os.listdir(os.path.join(out, "plots"))), ["stoi_vs_ebn0.png"])

    def test_bad_trace_is_refused_before_work(self):
        with tempfile.TemporaryDirectory() as d:
            bad = os.path.join(d, "bad.trace")
            with open(bad, "w") as f:
                f.write("0 1 x\n")
            r = subprocess.run([os.path.join(os.path.dirname(sys.executable), "largesc-sim"), "--demo",
                                "--trace", bad, "--out", os.path.join(d, "o")],
                               capture_output=True, text=True, timeout=120)
            self.assertEqual(r.returncode, 2)
            self.assertIn("--trace: " + bad + " line 1: a packet line starts with 0 or 1", r.stderr)


class qa_phy_sim_recording(unittest.TestCase):

    def test_phy_sim_writes_a_trace(self):
        with tempfile.TemporaryDirectory() as d:
            r = subprocess.run([os.path.join(os.path.dirname(sys.executable), "grcc"),
                                os.path.join(ROOT, "examples", "phy_sim.grc"), "-o", d],
                               capture_output=True, text=True)
            self.assertEqual(r.returncode, 0, r.stderr)
            path = os.path.join(d, "t.trace")
            r = subprocess.run([sys.executable, "-B", os.path.join(d, "phy_sim.py"), "-e", "12", "-n", "40",
                                "--trace-file", path], capture_output=True, text=True, timeout=120)
            self.assertEqual(r.returncode, 0, r.stderr[-2000:])
            summary = json.loads(r.stdout.strip().splitlines()[-1])
            t = T.read_trace(path)
            self.assertEqual(len(t), 40)
            self.assertEqual(int((t.fates == 0).sum()), summary["packets_delivered"])
            self.assertIn("SIMULATED", t.header["source"])
            # 10 dB: most frames are heard, many fail their CRC; every report
            # reaches the recorder, and is placed on a lost packet or counted
            r = subprocess.run([sys.executable, "-B", os.path.join(d, "phy_sim.py"), "-e", "10", "-n", "60",
                                "--trace-file", path], capture_output=True, text=True, timeout=120)
            self.assertEqual(r.returncode, 0, r.stderr[-2000:])
            summary = json.loads(r.stdout.strip().splitlines()[-1])
            self.assertEqual(summary["crc_failed"], summary["frames_detected"] - summary["packets_delivered"])
            self.assertGreater(summary["crc_failed"], 5)
            t = T.read_trace(path)
            crc = [i for i, st in enumerate(t.status) if st == "crc"]
            self.assertTrue(all(t.fates[i] == 1 for i in crc))
            placed = int(t.header["crc_failed"].split(", ")[1].split()[0])
            unplaced = int(t.header["crc_failed"].split(", ")[2].split()[0])
            self.assertEqual(t.header["crc_failed"].split()[0], str(summary["crc_failed"]))
            self.assertEqual((len(crc), placed + unplaced), (placed, summary["crc_failed"]))
            # the modem's heard-frame index places every report between the
            # right delivered packets, however loaded the machine; only one
            # before the first or after the last delivered packet may miss
            self.assertGreaterEqual(placed, summary["crc_failed"] - 2)
            # the modem's soft-symbol SNR reaches the trace, for CRC-failed packets too
            ok = [i for i, st in enumerate(t.status) if st == "ok"]
            self.assertTrue(all(np.isfinite(t.snr_db[i]) for i in ok + crc))
            self.assertTrue(all(np.isnan(t.snr_db[i]) for i, st in enumerate(t.status) if st == "lost"))


class qa_crc_placement(unittest.TestCase):
    """place_crc_failures: CRC-failed frames placed by time on lost packets."""

    GOT = {0: (0.0,), 1: (0.08,), 5: (0.40,), 9: (0.72,)}

    def status(self):
        return ["ok" if f in self.GOT else "lost" for f in range(10)]

    def test_nearest_lost_packet_within_half_an_interval(self):
        st = self.status()
        # 0.165 -> frame 2 (0.16); 0.31 -> 4 (0.32); 0.33 -> 4 is taken, 3
        # (0.24) is 0.09 away: not placed; 0.62 -> 8 (0.64); 2.0: nothing near
        placed = {}
        n = T.place_crc_failures(st, self.GOT, [0.62, 0.165, 0.31, 0.33, 2.0], 0.08, placed)
        self.assertEqual(n, 2)
        self.assertEqual(placed, {2: 1, 4: 2, 8: 0})     # packet -> its event
        self.assertEqual([f for f, x in enumerate(st) if x == "crc"], [2, 4, 8])
        self.assertEqual([f for f, x in enumerate(st) if x == "ok"], [0, 1, 5, 9])

    def test_beyond_the_delivered_packets_and_without_interval(self):
        st = self.status() + ["lost", "lost"]          # frames 10, 11 after the last delivered
        n = T.place_crc_failures(st, self.GOT, [0.88, 0.79], 0.0)   # spacing from the data: 0.08
        self.assertEqual(n, 0)
        self.assertEqual([f for f, x in enumerate(st) if x == "crc"], [10, 11])

    def test_heard_order_bounds_late_reports(self):
        """With heard-frame indices a report lands between the delivered
        packets it was heard between, however late it arrived."""
        got = {0: (0.0, 0.0, 0), 1: (0.08, 0.0, 1), 5: (0.40, 0.0, 4), 9: (0.72, 0.0, 7)}
        st = ["ok" if f in got else "lost" for f in range(12)]
        reports = [(0.17, 2), (0.55, 3),       # gap 1..5 (lost 2, 3, 4): 0.55 is late -> 4 (in order, nearest)
                   (0.90, 5), (0.95, 6),       # gap 5..9 (lost 6, 7, 8): both very late -> 7, 8
                   (0.80, 8), (1.50, 9),       # after 9: 10 (0.80); 1.50 is > one interval from 11 (0.88)
                   (0.30, 4)]                  # a delivered frame's own index: not a failure
        placed = {}
        n = T.place_crc_failures(st, got, [t for t, _ in reports], 0.08, placed, [h for _, h in reports])
        self.assertEqual(placed, {2: 0, 4: 1, 7: 2, 8: 3, 10: 4})
        self.assertEqual(n, 2)
        self.assertEqual([f for f, x in enumerate(st) if x == "crc"], [2, 4, 7, 8, 10])
        # by time alone (no indices) the late reports land on the wrong
        # packets: 0.55 -> 7, 0.90 -> 11, and 0.30 (a delivered frame's) -> 4
        st2 = ["ok" if f in got else "lost" for f in range(12)]
        placed2 = {}
        T.place_crc_failures(st2, got, [t for t, _ in reports], 0.08, placed2)
        self.assertEqual(placed2, {2: 0, 4: 6, 7: 1, 10: 4, 11: 2})

    def test_more_reports_than_lost_packets_and_bad_indices(self):
        got = {0: (0.0, 0.0, 0), 2: (0.16, 0.0, 4)}
        st = ["ok", "lost", "ok", "lost"]
        # three reports heard between packets 0 and 2, one lost packet there:
        # the one nearest its expected time (0.08) takes it
        placed = {}
        n = T.place_crc_failures(st, got, [0.05, 0.09, 0.14], 0.08, placed, [1, 2, 3])
        self.assertEqual((n, placed), (2, {1: 1}))
        # indices that are not non-negative integers count as absent: by time
        st = ["ok", "lost", "ok", "lost"]
        placed = {}
        n = T.place_crc_failures(st, got, [0.07, 0.25], 0.08, placed, [-1, "x"])
        self.assertEqual((n, placed), (0, {1: 0, 3: 1}))

    def test_long_outage_goes_by_time(self):
        """A gap with more reports x lost packets than ALIGN_MAX is matched
        by time alone (bounded work on a long outage)."""
        n_lost = 600
        got = {0: (0.0, 0.0, 0), n_lost + 1: ((n_lost + 1) * 0.08, 0.0, n_lost + 1)}
        st = ["ok"] + ["lost"] * n_lost + ["ok"]
        times = [f * 0.08 + 0.01 for f in range(1, n_lost + 1)]
        self.assertGreater(n_lost * n_lost, T.ALIGN_MAX)
        n = T.place_crc_failures(st, got, times, 0.08, None, list(range(1, n_lost + 1)))
        self.assertEqual(n, 0)
        self.assertEqual(st.count("crc"), n_lost)

    def test_recorder_reads_heard_index(self):
        rec = T.trace_recorder(interval=0.08)
        meta = pmt.dict_add(pmt.make_dict(), pmt.intern("rx_frame"), pmt.from_uint64(3))
        rec.handle_in(packet(0, meta))
        rec.handle_crc_failed(pmt.cons(pmt.dict_add(meta, pmt.intern("rx_frame"), pmt.from_long(4)),
                                       pmt.init_u8vector(1, [0])))
        rec.handle_crc_failed(pmt.cons(pmt.dict_add(meta, pmt.intern("rx_frame"), pmt.intern("x")),
                                       pmt.init_u8vector(1, [0])))
        self.assertEqual(rec._got[0][2], 3)
        self.assertEqual([h for _, _, h in rec._crc], [4, None])

    def test_nothing_to_place_on(self):
        st = self.status()
        self.assertEqual(T.place_crc_failures(st, {}, [0.1, 0.2], 0.08), 2)
        self.assertEqual(T.place_crc_failures(st, self.GOT, [], 0.08), 0)
        self.assertEqual(st, self.status())

    def test_recorder_port_counts_and_refuses_garbage(self):
        rec = T.trace_recorder(interval=0.08)
        rec.handle_crc_failed(pmt.intern("x"))
        self.assertEqual(rec.counts(), {"crc_failed: not a PDU or dict": 1})
        rec.handle_crc_failed(pmt.make_dict())
        self.assertEqual(len(rec._crc), 1)


if __name__ == "__main__":
    unittest.main()
