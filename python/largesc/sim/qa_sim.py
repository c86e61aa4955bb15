#!/usr/bin/env python3
#
# Copyright 2026 gr-largesc authors.
# SPDX-License-Identifier: GPL-3.0-or-later
#
"""QA for largesc-sim: a small campaign end to end (LargeSC link flowgraph with
an untrained codec + a Codec2 baseline), packet accounting, the same loss
pattern for every system, resuming, the report schema, a Dask local cluster,
and the CLI's input checks."""

import contextlib
import io
import json
import os
import tempfile
import time

import numpy as np
from gnuradio import gr_unittest

from gnuradio.largesc.sim import report as R
from gnuradio.largesc.sim import campaign as sim
from gnuradio.largesc.eval import speech as S
from gnuradio.largesc.sim.cli import main as cli_main


def short_clip(d, seconds=2.0):
    c = S.demo_clips(1)[0]
    x = S.load(c.path, 16000)[:int(seconds * 16000)]
    path = os.path.join(d, "clip.wav")
    S.save(path, x, 16000)
    return [dict(name="clip", path=path, text=None)]


def run_cli(*args):
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            rc = cli_main(list(args))
        except SystemExit as e:
            rc = e.code
    return rc, err.getvalue()


class qa_sim(gr_unittest.TestCase):

    def test_campaign_end_to_end(self):
        with tempfile.TemporaryDirectory() as d:
            clips = short_clip(d)
            opts = sim.Options(weights="random:3", metrics=("stoi",), out_dir=d, save_audio=True)
            pts = sim.make_grid(["largesc", "codec2_700c"], [1100], [0.0, 0.3], [1.0], ["hold"], 7,
                                {"codec2_700c": 700})
            self.assertEqual(len(pts), 4)
            rows = sim.run_campaign(pts, clips, opts, jobs=1, progress=False, log=lambda s: None)
            self.assertEqual(len(rows), 4)
            by = {(r["system"], r["loss_rate"]): r for r in rows}
            for loss in (0.0, 0.3):
                a, b = by[("largesc", loss)], by[("codec2_700c", loss)]
                # one 80 ms packet slot each, same seed: the very same loss pattern
                self.assertEqual(a["packets_sent"], b["packets_sent"])
                self.assertEqual(a["packets_dropped"], b["packets_dropped"])
                for r in (a, b):
                    self.assertEqual(r["packets_lost_elsewhere"], 0)
                    self.assertEqual(r["packets_sent"], r["packets_delivered"] + r["packets_dropped"])
                    self.assertTrue(os.path.exists(os.path.join(d, r["audio"])))
            self.assertEqual(by[("largesc", 0.0)]["packets_dropped"], 0)
            self.assertGreater(by[("largesc", 0.3)]["packets_dropped"], 0)
            self.assertTrue(by[("largesc", 0.0)]["untrained"])
            self.assertFalse(by[("codec2_700c", 0.0)]["untrained"])
            self.assertEqual(by[("largesc", 0.0)]["token_bitrate"], 1100.0)
            self.assertEqual(by[("largesc", 0.0)]["on_air_bitrate"], 1400.0)
            self.assertEqual(by[("largesc", 0.0)]["latency_ms"], 160.0)
            # the baseline degrades with loss on real speech
            self.assertLess(by[("codec2_700c", 0.3)]["m_stoi"], by[("codec2_700c", 0.0)]["m_stoi"])

            rep = R.write_report(rows, {"test": True}, d)
            self.assertEqual(R.read_report(os.path.join(d, "report.json"))["untrained_rows"], 2)
            plots = R.plot_report(rep, d)
            self.assertEqual([os.path.basename(p) for p in plots], ["stoi_vs_loss.png"])
            self.assertIn("UNTRAINED", R.format_summary(rep))

            # resuming: nothing left to do, rows.jsonl unchanged
            with open(os.path.join(d, "rows.jsonl")) as f:
                before = f.read()
            logs = []
            rows2 = sim.run_campaign(pts, clips, opts, jobs=1, progress=False, log=logs.append)
            with open(os.path.join(d, "rows.jsonl")) as f:
                self.assertEqual(f.read(), before)
            self.assertEqual(len(rows2), 4)
            self.assertIn("resuming: 4 of 4", logs[0])

    def test_each_utterance_its_own_loss_pattern(self):
        """Every utterance of a setting gets its own seeded loss pattern
        (setting seed + 7919 per utterance), the same one for every system."""
        from gnuradio.largesc.eval import baselines as B
        with tempfile.TemporaryDirectory() as d:
            one = short_clip(d)[0]
            clips = [dict(one, name=f"u{i}") for i in range(3)]
            opts = sim.Options(weights="random:3", metrics=("stoi",), out_dir=d, save_audio=False)
            pts = sim.make_grid(["largesc", "codec2_700c"], [1100], [0.3], [1.0], ["hold"], 7,
                                {"codec2_700c": 700})
            rows = sim.run_campaign(pts, clips, opts, jobs=1, progress=False, log=lambda s: None)
            self.assertEqual(len(rows), 6)
            seed = pts[0].seed
            patterns = []
            for i, name in enumerate(("u0", "u1", "u2")):
                rs = [r for r in rows if r["clip"] == name]
                self.assertEqual(len(rs), 2)
                n = rs[0]["packets_sent"]
                pat = B.LossSpec(loss_rate=0.3, seed=seed + 7919 * i).pattern(n)
                patterns.append(pat)
                for r in rs:
                    self.assertEqual(r["channel_seed"], seed + 7919 * i)
                    self.assertEqual(r["packets_sent"], n)
                    self.assertEqual(r["packets_dropped"], int(pat.sum()), (name, r["system"]))
            self.assertFalse(all(np.array_equal(patterns[0], p) for p in patterns[1:]))

    def test_resume_refuses_other_settings(self):
        """A resumed campaign must not mix rows made with other clips or
        options: the output folder remembers them (campaign.json)."""
        with tempfile.TemporaryDirectory() as d:
            clips = short_clip(d, 1.0)
            opts = sim.Options(metrics=("stoi",), out_dir=d, save_audio=False)
            pts = sim.make_grid(["codec2_1200"], [], [0.1], [1.0], [], 1, {"codec2_1200": 1200})
            sim.run_campaign(pts, clips, opts, jobs=1, progress=False, log=lambda s: None)
            with self.assertRaisesRegex(sim.CampaignMismatch, "differs in: metrics"):
                sim.run_campaign(pts, clips, sim.Options(metrics=("stoi", "pesq_wb"), out_dir=d,
                                                         save_audio=False),
                                 jobs=1, progress=False, log=lambda s: None)
            other = short_clip(os.path.join(d, "x") if os.makedirs(os.path.join(d, "x")) is None else d, 0.5)
            with self.assertRaisesRegex(sim.CampaignMismatch, "differs in: clips"):
                sim.run_campaign(pts, other, opts, jobs=1, progress=False, log=lambda s: None)
            # the same settings resume
            rows = sim.run_campaign(pts, clips, opts, jobs=1, progress=False, log=lambda s: None)
            self.assertEqual(len(rows), 1)

    def test_interrupted_campaign_keeps_finished_rows(self):
        with tempfile.TemporaryDirectory() as d:
            clips = short_clip(d, 1.0)
            opts = sim.Options(metrics=("stoi",), out_dir=d, save_audio=False)
            pts = sim.make_grid(["codec2_1200"], [], [0.0, 0.1, 0.2], [1.0], [], 1, {"codec2_1200": 1200})
            sim.run_campaign(pts[:2], clips, opts, jobs=1, progress=False, log=lambda s: None)
            ran = []
            orig = sim._run_point_job
            try:
                sim._run_point_job = lambda a: (ran.append(a[0].key()), orig(a))[1]
                rows = sim.run_campaign(pts, clips, opts, jobs=1, progress=False, log=lambda s: None)
            finally:
                sim._run_point_job = orig
            self.assertEqual(ran, [pts[2].key()])
            self.assertEqual(len(rows), 3)

    def test_failed_point_keeps_finished_points(self):
        """One point fails inside its worker (an lm point whose adapter
        vanished after the checks): every other point is kept in rows.jsonl,
        the failure is reported with its reason, and resuming runs only it."""
        with tempfile.TemporaryDirectory() as d:
            clips = short_clip(d, 1.0)
            opts = sim.Options(metrics=("stoi",), out_dir=d, save_audio=False,
                               recovery_args=dict(model="tiny", adapter=os.path.join(d, "gone.safetensors")))
            pts = sim.make_grid(["largesc", "codec2_1200"], [1100], [0.0, 0.2], [1.0], ["lm"], 1,
                                {"codec2_1200": 1200})
            bad = [p.key() for p in pts if p.system == "largesc"]
            good = [p.key() for p in pts if p.system != "largesc"]
            for jobs in (1, 2):   # in-process and the process pool
                with self.subTest(jobs=jobs):
                    for f in ("rows.jsonl", "failures.jsonl"):
                        if os.path.exists(os.path.join(d, f)):
                            os.remove(os.path.join(d, f))
                    with self.assertRaises(sim.CampaignError) as cm:
                        sim.run_campaign(pts, clips, opts, jobs=jobs, progress=False, log=lambda s: None)
                    self.assertEqual(sorted(r["point"] for r in cm.exception.rows), sorted(good))
                    self.assertEqual(sorted(k for k, _ in cm.exception.failures), sorted(bad))
                    for _, why in cm.exception.failures:
                        self.assertIn("RecoveryError", why)
                        self.assertIn("gone.safetensors", why)
                    with open(os.path.join(d, "rows.jsonl")) as f:
                        self.assertEqual(sorted(json.loads(l)["point"] for l in f), sorted(good))
                    with open(os.path.join(d, "failures.jsonl")) as f:
                        self.assertEqual(sorted(json.loads(l)["point"] for l in f), sorted(bad))
            # resume with a failures list: only the failed points run again
            ran, failures = [], []
            orig = sim._run_point_job
            try:
                sim._run_point_job = lambda a: (ran.append(a[0].key()), orig(a))[1]
                rows = sim.run_campaign(pts, clips, opts, jobs=1, progress=False, log=lambda s: None,
                                        failures=failures)
            finally:
                sim._run_point_job = orig
            self.assertEqual(sorted(ran), sorted(bad))
            self.assertEqual(len(rows), len(good))
            self.assertEqual(sorted(k for k, _ in failures), sorted(bad))

    def test_lm_recovery_in_a_campaign(self):
        """The generative backend runs in the main job beside hold: a tiny
        untrained LM, labelled untrained, with its extra latency."""
        with tempfile.TemporaryDirectory() as d:
            clips = short_clip(d, 1.0)
            opts = sim.Options(weights="random:2", metrics=("stoi",), out_dir=d, save_audio=False,
                               recovery_args=dict(model="tiny", device="cpu"))
            pts = sim.make_grid(["largesc"], [1100], [0.3], [1.0], ["hold", "lm"], 4, {})
            rows = sim.run_campaign(pts, clips, opts, jobs=1, progress=False, log=lambda s: None)
            by = {r["recovery"]: r for r in rows}
            self.assertEqual(sorted(by), ["hold", "lm"])
            self.assertFalse(by["hold"]["recovery_untrained"])
            self.assertTrue(by["lm"]["recovery_untrained"])
            self.assertTrue(by["lm"]["untrained"])
            # the same loss pattern for both backends
            self.assertEqual(by["hold"]["packets_dropped"], by["lm"]["packets_dropped"])
            self.assertGreater(by["lm"]["packets_dropped"], 0)
            # tiny has no codebook delays: no extra frame of latency
            self.assertEqual(by["lm"]["latency_ms"], by["hold"]["latency_ms"])
            rep = R.write_report(rows, {}, d)
            self.assertIn("LargeSC 1100 bit/s (lm) UNTRAINED", R.format_summary(rep))

    def test_dask_local_cluster(self):
        from dask.distributed import Client, LocalCluster
        with tempfile.TemporaryDirectory() as d:
            clips = short_clip(d, 1.0)
            opts = sim.Options(metrics=("stoi",), out_dir=d, save_audio=False)
            pts = sim.make_grid(["codec2_700c", "codec2_3200"], [], [0.0, 0.2], [1.0, 3.0], [], 2,
                                {"codec2_700c": 700, "codec2_3200": 3200})
            with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                              dashboard_address=None) as cluster, Client(cluster) as client:
                rows = sim.run_campaign(pts, clips, opts, scheduler=client, progress=False,
                                        log=lambda s: None)
            local = sim.run_campaign(pts, clips, sim.Options(metrics=("stoi",), out_dir=os.path.join(d, "l"),
                                                             save_audio=False),
                                     jobs=1, progress=False, log=lambda s: None)
        self.assertEqual(len(rows), 8)
        key = lambda r: r["point"]
        for a, b in zip(sorted(rows, key=key), sorted(local, key=key)):
            self.assertEqual(a["packets_dropped"], b["packets_dropped"])
            self.assertAlmostEqual(a["m_stoi"], b["m_stoi"], places=9)

    def test_link_over_a_loss_trace(self):
        """A measured loss trace (as largesc-phy-sweep --speech passes one) drives
        the link's channel packet by packet; every frame still comes out."""
        from gnuradio.largesc.common.loss import LossSpec
        from gnuradio.largesc.sim.link import LinkConfig, run_link
        with tempfile.TemporaryDirectory() as d:
            x = S.load(short_clip(d, 1.6)[0]["path"], 16000)
        trace = (0, 1, 1, 0, 0)
        res = run_link(x, 16000, LinkConfig(loss=LossSpec(model="trace", trace=trace), weights="random:1",
                                            recovery="hold", threads=1))
        n = res.frames
        self.assertEqual(n, 20)
        self.assertEqual(res.counters["packets_sent"], n)
        self.assertEqual(res.counters["packets_dropped_by_channel"], sum(trace[i % 5] for i in range(n)))
        self.assertEqual(len(res.audio), n * 1280)

    def test_unreachable_scheduler_is_one_line(self):
        t0 = time.monotonic()
        with tempfile.TemporaryDirectory() as d:
            rc, err = run_cli("--demo", "--baselines", "none", "--out", d, "--scheduler", "tcp://127.0.0.1:9",
                              "--scheduler-timeout", "1")
            self.assertFalse(os.path.exists(os.path.join(d, "rows.jsonl")))
            rc_bad, err_bad = run_cli("--demo", "--out", d, "--scheduler-timeout", "0")
        self.assertEqual(rc, 2)
        self.assertIn("cannot reach the Dask scheduler at tcp://127.0.0.1:9 within 1 s", err)
        self.assertEqual(rc_bad, 2)
        self.assertIn("--scheduler-timeout must be 0.1..600 seconds, got 0", err_bad)
        self.assertNotIn("Traceback", err)
        self.assertLess(time.monotonic() - t0, 60)

    def test_report_schema(self):
        good = dict(point="p", system="codec2_700c", bitrate=700.0, loss_rate=0.1, mean_burst=1.0,
                    recovery="-", seed=1, clip="c", untrained=False, token_bitrate=700.0,
                    on_air_bitrate=1000.0, latency_ms=107.0, packets_sent=10, packets_delivered=9,
                    packets_dropped=1, packets_lost_elsewhere=0, run_s=0.1, m_stoi=0.7)
        R.validate_row(good)
        for k, v, msg in (("packets_lost_elsewhere", 2, "outside the channel"),
                          ("loss_rate", 1.5, "out of"), ("seed", "x", "not"), ("m_stoi", "bad", "not a number")):
            with self.assertRaisesRegex(R.ReportSchemaError, msg):
                R.validate_row(dict(good, **{k: v}))
        bad = dict(good)
        del bad["clip"]
        with self.assertRaisesRegex(R.ReportSchemaError, "missing field 'clip'"):
            R.validate_row(bad)

    def test_cli_rejects_bad_input_before_work(self):
        with tempfile.TemporaryDirectory() as d:
            silent = os.path.join(d, "silent.wav")
            S.save(silent, np.zeros(16000, np.float32), 16000)
            junk = os.path.join(d, "junk.wav")
            with open(junk, "w") as f:
                f.write("not audio")
            ro = os.path.join(d, "ro")
            os.makedirs(ro)
            os.chmod(ro, 0o500)
            out = os.path.join(d, "o")
            for args, msg in (
                    ([], "give speech files, --corpus DIR or --demo"),
                    (["--demo", "--metrics", "mos9000", "--out", out], "unknown metric"),
                    (["--demo", "--baselines", "g729", "--out", out], "unknown codec"),
                    (["--demo", "--bitrate", "100", "--out", out], "outside LargeSC's 550..2060"),
                    (["--demo", "--loss", "1.5", "--out", out], r"loss rate 1.5 must be in \[0, 1\)"),
                    (["--demo", "--burst", "0.5", "--out", out], "mean burst"),
                    (["--demo", "--jobs", "0", "--out", out], "--jobs must be >= 1"),
                    (["--demo", "--max-offset", "5", "--out", out], "--max-offset .* must be 0, 1 or 2"),
                    (["--demo", "--clips", "0", "--out", out], "--clips must be >= 1"),
                    (["--demo", "--max-seconds", "-1", "--out", out], "--max-seconds must be"),
                    (["--demo", "--max-seconds", "nan", "--out", out], "--max-seconds must be"),
                    ([silent, "--out", out], "silent"),
                    ([junk, "--out", out], "cannot read"),
                    ([os.path.join(d, "missing.wav"), "--out", out], "no such file")):
                with self.subTest(args=args):
                    rc, err = run_cli(*args)
                    self.assertEqual(rc, 2)
                    self.assertRegex(err, msg)
            # recovery backends and their model files are checked before any work
            for args, msg in (
                    (["--recovery", "magic"], "unknown recovery backend 'magic'"),
                    (["--recovery", "hold,lm"], "backend 'lm' needs a model config"),
                    (["--recovery", "lm", "--lm-model", "huge"], "model config 'huge'"),
                    (["--recovery", "lm", "--lm-adapter", os.path.join(d, "none.safetensors")],
                     "adapter file .*none.safetensors' does not exist"),
                    (["--recovery", "lm", "--lm-model", "tiny", "--lm-checkpoint", os.path.join(d, "x.safetensors")],
                     "model checkpoint .*x.safetensors' does not exist"),
                    (["--recovery", "moshi"], "needs a CUDA GPU"),
                    (["--recovery", "hold", "--lm-model", "tiny"], "are for --recovery lm or moshi")):
                with self.subTest(args=args):
                    rc, err = run_cli("--demo", "--out", out, "--baselines", "none", *args)
                    self.assertEqual(rc, 2)
                    self.assertRegex(err, msg)
            if os.geteuid() != 0:  # root writes anywhere
                rc, err = run_cli("--demo", "--out", os.path.join(ro, "x"))
                self.assertEqual(rc, 2)
                self.assertIn("cannot be written", err)
            self.assertFalse(os.path.exists(os.path.join(out, "rows.jsonl")))


if __name__ == "__main__":
    gr_unittest.run(qa_sim)
