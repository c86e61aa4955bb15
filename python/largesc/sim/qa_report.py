#!/usr/bin/env python3
#
# Copyright 2026 gr-largesc authors.
# SPDX-License-Identifier: GPL-3.0-or-later
#
"""QA of the campaign report (report.py) on synthetic rows (no codec runs):
confidence intervals against scipy's, the n = 1 case, untrained rows kept out
of plots and comparisons, paired LargeSC-against-baseline verdicts with the
metric's direction (WER lower is better), the plot files, and the schema."""

import csv
import json
import os
import tempfile
import unittest

import numpy as np
from scipy import stats

from gnuradio.largesc.sim import report as R


def row(system, bitrate, loss, clip, burst=1.0, recovery=None, untrained=False, trace="", **metrics):
    recovery = recovery or ("hold" if system == "largesc" else "-")
    r = dict(point=f"{system}|{bitrate:g}|{loss:g}|{burst:g}|{recovery}|1" + (f"|trace={trace}" if trace else ""),
             system=system, bitrate=float(bitrate), loss_rate=float(loss), mean_burst=float(burst),
             recovery=recovery, seed=1, clip=clip, untrained=untrained, token_bitrate=float(bitrate),
             on_air_bitrate=float(bitrate) + 300.0, latency_ms=100.0, packets_sent=10,
             packets_delivered=9, packets_dropped=1, packets_lost_elsewhere=0, run_s=0.1)
    if system == "largesc":
        r.update(codec_untrained=untrained, recovery_untrained=False)
    if trace:
        r.update(trace=trace, trace_packets=17, trace_loss_rate=loss, trace_bursts=3,
                 trace_mean_burst=2.0, trace_longest_burst=3)
    r.update({f"m_{k}": v for k, v in metrics.items()})
    return r


CLIPS = [f"c{i}" for i in range(6)]


def campaign(seed=0, losses=(0.0, 0.1, 0.3), bursts=(1.0,), untrained_budget=None):
    """LargeSC at 550 and 1100 bit/s (hold) and two baselines, six clips.
    LargeSC's STOI is 0.1 above codec2_700c's on every clip, its WER 0.2
    above (worse), its PESQ the baseline's plus a zero-sum pattern (no
    significant difference)."""
    rng = np.random.default_rng(seed)
    rows = []
    base = {c: (0.6 + 0.05 * i, 0.3 + 0.02 * i, 1.5 + 0.1 * i) for i, c in enumerate(CLIPS)}
    zero_sum = dict(zip(CLIPS, (0.3, -0.1, 0.2, -0.3, 0.1, -0.2)))
    for loss in losses:
        for burst in bursts:
            for c in CLIPS:
                s, w, p = base[c]
                s -= loss / 2
                rows.append(row("codec2_700c", 700, loss, c, burst, stoi=s, wer=w, pesq_wb=p))
                rows.append(row("opus_6k", 6000, loss, c, burst, stoi=s + 0.2, wer=w - 0.1, pesq_wb=p + 1))
                for br in (550, 1100):
                    rows.append(row("largesc", br, loss, c, burst, untrained=(br == untrained_budget),
                                    stoi=s + 0.1 + rng.normal(0, 0.01), wer=w + 0.2 + rng.normal(0, 0.01),
                                    pesq_wb=p + zero_sum[c] * br / 1100))
    return rows


class qa_report(unittest.TestCase):

    # ---- statistics

    def test_mean_ci_against_scipy(self):
        st = R.mean_ci([1.0, 2.0, 3.0, 4.0])
        self.assertEqual(st["n"], 4)
        self.assertAlmostEqual(st["mean"], 2.5, places=12)
        self.assertAlmostEqual(st["half_width"], 2.054260256760879, places=12)
        self.assertAlmostEqual(st["low"], 0.445739743239121, places=12)
        rng = np.random.default_rng(5)
        for n in (2, 3, 7, 30):
            with self.subTest(n=n):
                v = rng.normal(3.0, 0.7, n)
                st = R.mean_ci(list(v))
                lo, hi = stats.t.interval(0.95, n - 1, loc=np.mean(v), scale=stats.sem(v))
                self.assertAlmostEqual(st["low"], lo, places=10)
                self.assertAlmostEqual(st["high"], hi, places=10)
                self.assertAlmostEqual(st["sd"], np.std(v, ddof=1), places=12)

    def test_one_and_no_utterance(self):
        self.assertEqual(R.mean_ci([2.5]), dict(mean=2.5, n=1, sd=None, half_width=None, low=None, high=None))
        self.assertEqual(R.mean_ci([None, 2.5, None])["n"], 1)
        self.assertEqual(R.mean_ci([None]), dict(mean=None, n=0, sd=None, half_width=None, low=None, high=None))
        rows = [row("codec2_700c", 700, 0.1, "c0", stoi=0.7)]
        rep = R.build_report(rows, {})
        self.assertEqual(rep["summary"][0]["stats"]["stoi"]["half_width"], None)
        text = R.format_summary(rep)
        self.assertIn("0.700 (n=1)", text)
        self.assertIn("n=1: one utterance, no confidence interval", text)

    def test_summary_means_and_intervals(self):
        rows = campaign()
        rep = R.build_report(rows, {})
        s = [x for x in rep["summary"] if x["system"] == "opus_6k" and x["loss_rate"] == 0.1][0]
        v = [r["m_stoi"] for r in rows if r["system"] == "opus_6k" and r["loss_rate"] == 0.1]
        lo, hi = stats.t.interval(0.95, 5, loc=np.mean(v), scale=stats.sem(v))
        self.assertEqual(s["clips"], 6)
        self.assertEqual(s["stats"]["stoi"]["n"], 6)
        self.assertEqual((s["packets_sent"], s["packets_dropped"], s["measured_loss_rate"]), (60, 6, 0.1))
        self.assertAlmostEqual(s["metrics"]["stoi"], np.mean(v), places=12)
        self.assertAlmostEqual(s["stats"]["stoi"]["low"], lo, places=10)
        self.assertAlmostEqual(s["stats"]["stoi"]["high"], hi, places=10)
        text = R.format_summary(rep)
        line = [ln for ln in text.splitlines() if ln.startswith("opus_6k") and "  0.10" in ln][0]
        self.assertIn(f"{np.mean(v):.3f}±{(hi - lo) / 2:.3f}", line)
        self.assertTrue(line.startswith("opus_6k" + " " * 27 + "  0.10   1.0  10.0   6      6000"), line)
        self.assertIn("wer lower is better", text)
        # a metric that failed on one clip: n = 5 there, marked
        rows[0]["m_stoi"] = None
        rep = R.build_report(rows, {})
        s = [x for x in rep["summary"] if x["system"] == "codec2_700c" and x["loss_rate"] == 0.0][0]
        self.assertEqual((s["clips"], s["stats"]["stoi"]["n"], s["stats"]["wer"]["n"]), (6, 5, 6))
        self.assertIn("*: the metric failed on some utterances", R.format_summary(rep))

    def test_wer_reference_is_labelled(self):
        rows = campaign(losses=(0.1,))
        for r in rows:
            r["wer_reference"] = "whisper-clean-input" if r["clip"] in ("c0", "c1") else "corpus"
        rep = R.build_report(rows, {})
        self.assertEqual(rep["summary"][0]["wer_reference"], {"corpus": 4, "whisper-clean-input": 2})
        self.assertIn("(WER reference: the transcript for 16 of 24 utterance rows, Whisper's transcript of "
                      "the clean input for 8 (no transcript given))", R.format_summary(rep))
        self.assertIn("partly Whisper", R.axis_label("wer", rep["summary"]))
        for r in rows:
            r["wer_reference"] = "whisper-clean-input"
        rep = R.build_report(rows, {})
        self.assertIn("WER reference: Whisper's transcript of the clean input", R.format_summary(rep))
        self.assertTrue(R.axis_label("wer", rep["summary"]).endswith("reference: Whisper on the clean input"))
        for r in rows:
            r["wer_reference"] = "corpus"
        rep = R.build_report(rows, {})
        self.assertNotIn("WER reference", R.format_summary(rep))
        self.assertEqual(R.axis_label("wer", rep["summary"]),
                         "wer: word error rate, Whisper tiny.en\n(LOWER is better)")

    # ---- comparisons

    def test_paired_verdicts_follow_the_metric_direction(self):
        rows = campaign()
        # the baseline's rows in another order: pairing is by clip name
        rows = [r for r in rows if r["system"] != "codec2_700c"] + \
            [r for r in rows if r["system"] == "codec2_700c"][::-1]
        rep = R.build_report(rows, {})
        c = rep["comparisons"]
        self.assertTrue(c["possible"])
        res = {(x["largesc"], x["baseline"], x["loss_rate"], x["metric"]): x for x in c["results"]}
        self.assertEqual(len(res), 2 * 2 * 3 * 3)
        for loss in (0.0, 0.1, 0.3):
            for br in (550, 1100):
                ls = f"LargeSC {br} bit/s (hold)"
                with self.subTest(loss=loss, budget=br):
                    self.assertEqual(res[(ls, "codec2_700c", loss, "stoi")]["verdict"], R.BETTER)
                    self.assertEqual(res[(ls, "codec2_700c", loss, "wer")]["verdict"], R.WORSE)   # higher WER
                    self.assertEqual(res[(ls, "opus_6k", loss, "stoi")]["verdict"], R.WORSE)
                    self.assertEqual(res[(ls, "opus_6k", loss, "wer")]["verdict"], R.WORSE)
                    self.assertFalse(res[(ls, "codec2_700c", loss, "wer")]["higher_is_better"])
        # the numbers: the paired differences, against scipy
        x = res[("LargeSC 1100 bit/s (hold)", "codec2_700c", 0.1, "pesq_wb")]
        a = {r["clip"]: r["m_pesq_wb"] for r in rows if r["system"] == "largesc" and r["bitrate"] == 1100
             and r["loss_rate"] == 0.1}
        b = {r["clip"]: r["m_pesq_wb"] for r in rows if r["system"] == "codec2_700c" and r["loss_rate"] == 0.1}
        d = np.array([a[k] - b[k] for k in CLIPS])
        lo, hi = stats.t.interval(0.95, 5, loc=d.mean(), scale=stats.sem(d))
        self.assertEqual(x["n"], 6)
        self.assertAlmostEqual(x["mean_diff"], d.mean(), places=12)
        self.assertAlmostEqual(x["low"], lo, places=10)
        self.assertAlmostEqual(x["high"], hi, places=10)
        self.assertEqual(x["verdict"], R.BETTER if lo > 0 else R.WORSE if hi < 0 else R.NO_DIFFERENCE)
        # differences that sum to zero: no significant difference
        pesq = [v["verdict"] for k, v in res.items() if k[1] == "codec2_700c" and k[3] == "pesq_wb"]
        self.assertEqual(pesq, [R.NO_DIFFERENCE] * 6)
        self.assertEqual(x["verdict"], R.NO_DIFFERENCE)
        # per-system summary and the console
        ps = {(p["largesc"], p["baseline"]): p for p in c["per_system"]}
        p = ps[("LargeSC 550 bit/s (hold)", "codec2_700c")]
        self.assertEqual(sorted(p["better"]), ["stoi, loss 0 % i.i.d.", "stoi, loss 10 % i.i.d.",
                                               "stoi, loss 30 % i.i.d."])
        self.assertEqual(len(p["worse"]), 3)
        text = R.format_summary(rep)
        self.assertIn("LargeSC 550 bit/s (hold) vs codec2_700c: better in 3, worse in 3, no significant "
                      "difference in 3", text)
        self.assertIn("LargeSC 1100 bit/s (hold) vs opus_6k: better in 0, worse in 9, no significant difference in 0 "
                      "(of 9 metric x loss settings)", text)

    def test_verdict_rules(self):
        self.assertEqual(R.verdict(dict(n=5, low=0.1, high=0.3), True), R.BETTER)
        self.assertEqual(R.verdict(dict(n=5, low=0.1, high=0.3), False), R.WORSE)
        self.assertEqual(R.verdict(dict(n=5, low=-0.3, high=-0.1), False), R.BETTER)
        self.assertEqual(R.verdict(dict(n=5, low=-0.1, high=0.3), True), R.NO_DIFFERENCE)
        self.assertEqual(R.verdict(dict(n=1, low=None, high=None), True), R.TOO_FEW)
        self.assertEqual(R.verdict(dict(n=5, low=0.1, high=0.3), None), R.HIGHER)
        self.assertFalse(R.higher_is_better("wer"))
        self.assertTrue(R.higher_is_better("visqol"))
        self.assertIsNone(R.higher_is_better("no_such_metric"))

    def test_pairing_uses_only_common_clips_and_one_clip_has_no_verdict(self):
        rows = [row("largesc", 1100, 0.1, c, stoi=0.8) for c in ("a", "b", "c")] + \
            [row("codec2_700c", 700, 0.1, c, stoi=0.5) for c in ("b", "c", "d")]
        x = R.build_report(rows, {})["comparisons"]["results"][0]
        self.assertEqual((x["n"], x["half_width"]), (2, 0.0))
        self.assertAlmostEqual(x["mean_diff"], 0.3, places=12)
        self.assertEqual(x["verdict"], R.BETTER)
        rows = [row("largesc", 1100, 0.1, "a", stoi=0.8), row("codec2_700c", 700, 0.1, "a", stoi=0.5)]
        rep = R.build_report(rows, {})
        x = rep["comparisons"]["results"][0]
        self.assertEqual((x["n"], x["verdict"], x["low"]), (1, R.TOO_FEW, None))
        self.assertIn("too few utterances in 1", R.format_summary(rep))

    def test_untrained_rows_left_out_of_comparisons(self):
        rows = campaign(untrained_budget=550)
        # an untrained neural baseline too
        rows += [row("encodec_1.5k", 1500, 0.1, c, untrained=True, stoi=0.99, wer=0.0, pesq_wb=4.0)
                 for c in CLIPS]
        c = R.build_report(rows, {})["comparisons"]
        self.assertEqual({x["largesc"] for x in c["results"]}, {"LargeSC 1100 bit/s (hold)"})
        self.assertEqual({x["baseline"] for x in c["results"]}, {"codec2_700c", "opus_6k"})
        self.assertEqual(c["left_out"], dict(largesc=["LargeSC 550 bit/s (hold)"], baselines=["encodec_1.5k"],
                                             rows=3 * 6 + 6))
        self.assertIn("left out (UNTRAINED): LargeSC 550 bit/s (hold)", c["note"])

    def test_only_untrained_largesc_means_no_comparison(self):
        rows = [r for r in campaign(untrained_budget=550) if r["bitrate"] != 1100]
        rep = R.build_report(rows, {})
        c = rep["comparisons"]
        self.assertFalse(c["possible"])
        self.assertEqual(c["results"], [])
        self.assertIn("no comparison possible: all 18 LargeSC utterance runs ran untrained (18 with an UNTRAINED "
                      "(random) Mimi codec)", c["note"])
        text = R.format_summary(rep)
        self.assertIn("no comparison possible", text)
        self.assertIn("LargeSC 550 bit/s (hold) UNTRAINED", text)

    def test_trace_rows_summarized_and_compared_per_trace_not_drawn(self):
        rows = [row(s, br, 6 / 17, c, burst=2.0, trace="mylink@abc", stoi=v + 0.01 * i)
                for s, br, v in (("largesc", 1100, 0.8), ("codec2_700c", 700, 0.6))
                for i, c in enumerate(CLIPS)]
        rep = R.build_report(rows, {})
        self.assertTrue(all(s["trace"] == "mylink@abc" for s in rep["summary"]))
        self.assertEqual({x["setting"] for x in rep["comparisons"]["results"]}, {"trace mylink"})
        self.assertEqual(R.loss_series(rep, "stoi"), {})
        self.assertEqual(R.bitrate_series(rep, "stoi"), {})

    # ---- plots

    def test_plot_series_leave_out_untrained(self):
        rep = R.build_report(campaign(untrained_budget=550, bursts=(1.0, 3.0)), {})
        ser = R.loss_series(rep, "wer")
        self.assertEqual(sorted(ser), [("LargeSC 1100 bit/s (hold)", 1.0), ("LargeSC 1100 bit/s (hold)", 3.0),
                                       ("codec2_700c", 1.0), ("codec2_700c", 3.0),
                                       ("opus_6k", 1.0), ("opus_6k", 3.0)])
        self.assertEqual([p[0] for p in ser[("opus_6k", 3.0)]], [0.0, 0.1, 0.3])
        s = [x for x in rep["summary"] if x["system"] == "opus_6k" and x["loss_rate"] == 0.3
             and x["mean_burst"] == 3.0][0]
        self.assertEqual(ser[("opus_6k", 3.0)][2], (0.3, s["stats"]["wer"]["mean"],
                                                    s["stats"]["wer"]["half_width"], 6))
        cells = R.bitrate_series(rep, "stoi")
        self.assertEqual(list(cells), [(0.0, 1.0), (0.0, 3.0), (0.1, 1.0), (0.1, 3.0), (0.3, 1.0), (0.3, 3.0)])
        self.assertEqual([p[0] for p in cells[(0.1, 1.0)]["largesc"]["hold"]], [1100.0])
        self.assertEqual(sorted(cells[(0.1, 1.0)]["baselines"]), ["codec2_700c", "opus_6k"])
        self.assertEqual(cells[(0.1, 1.0)]["baselines"]["opus_6k"][0], 6000.0)
        notes = R._notes(rep, "stoi", (6, 6))
        self.assertEqual(notes[1], "left out: 6 UNTRAINED system/setting points (36 utterance rows): "
                                   "LargeSC 550 bit/s (hold)")

    def test_plot_files_and_stale_ones_removed(self):
        rep = R.build_report(campaign(untrained_budget=550, bursts=(1.0, 3.0)), {})
        with tempfile.TemporaryDirectory() as d:
            os.makedirs(os.path.join(d, "plots"))
            for stale in ("visqol_vs_loss.png", "visqol_vs_bitrate.png"):
                open(os.path.join(d, "plots", stale), "w").close()
            open(os.path.join(d, "plots", "mine.png"), "w").close()
            files = R.plot_report(rep, d)
            names = ["pesq_wb_vs_loss.png", "pesq_wb_vs_bitrate.png", "stoi_vs_loss.png",
                     "stoi_vs_bitrate.png", "wer_vs_loss.png", "wer_vs_bitrate.png"]
            self.assertEqual([os.path.basename(f) for f in files], names)
            self.assertEqual(sorted(os.listdir(os.path.join(d, "plots"))), sorted(names + ["mine.png"]))
            for f in files:
                with open(f, "rb") as fh:
                    self.assertEqual(fh.read(8), b"\x89PNG\r\n\x1a\n")
                self.assertGreater(os.path.getsize(f), 10000)

    def test_one_bit_rate_draws_no_bitrate_figure(self):
        rows = [r for r in campaign(untrained_budget=550) if r["system"] in ("largesc", "codec2_700c")
                and r["bitrate"] != 1100]
        rep = R.build_report(rows, {})
        with tempfile.TemporaryDirectory() as d:
            files = R.plot_report(rep, d)
        self.assertEqual([os.path.basename(f) for f in files],
                         ["pesq_wb_vs_loss.png", "stoi_vs_loss.png", "wer_vs_loss.png"])

    def test_report_of_a_real_campaign(self):
        """Rows of a real (short) baseline campaign: two Codec2 modes, two
        utterances, two loss rates -> tables, intervals and both figures."""
        from gnuradio.largesc.sim import campaign as sim
        from gnuradio.largesc.eval import speech as S
        with tempfile.TemporaryDirectory() as d:
            clips = []
            for c in S.demo_clips(2):
                path = os.path.join(d, c.name + ".wav")
                S.save(path, S.load(c.path, 16000)[:24000], 16000)
                clips.append(dict(name=c.name, path=path, text=None))
            opts = sim.Options(metrics=("stoi",), out_dir=d, save_audio=False)
            pts = sim.make_grid(["codec2_700c", "codec2_3200"], [], [0.0, 0.2], [1.0], [], 3,
                                {"codec2_700c": 700, "codec2_3200": 3200})
            rows = sim.run_campaign(pts, clips, opts, jobs=1, progress=False, log=lambda s: None)
            rep = R.write_report(rows, {}, d)
            R.read_report(os.path.join(d, "report.json"))
            files = [os.path.basename(f) for f in R.plot_report(rep, d)]
        self.assertEqual(files, ["stoi_vs_loss.png", "stoi_vs_bitrate.png"])
        self.assertEqual(len(rep["summary"]), 4)
        for s in rep["summary"]:
            rs = [r for r in rows if r["system"] == s["system"] and r["loss_rate"] == s["loss_rate"]]
            lo, hi = stats.t.interval(0.95, 1, loc=np.mean([r["m_stoi"] for r in rs]),
                                      scale=stats.sem([r["m_stoi"] for r in rs]))
            self.assertAlmostEqual(s["stats"]["stoi"]["low"], lo, places=10)
            self.assertAlmostEqual(s["stats"]["stoi"]["high"], hi, places=10)
            self.assertEqual(s["measured_loss_rate"],
                             sum(r["packets_dropped"] for r in rs) / sum(r["packets_sent"] for r in rs))
        self.assertIn("no comparison: the campaign has no LargeSC rows", R.format_summary(rep))

    # ---- files and schema

    def test_report_files(self):
        rows = campaign()
        with tempfile.TemporaryDirectory() as d:
            rep = R.write_report(rows, {"test": True}, d, failures=[("p|x", "boom")])
            back = R.read_report(os.path.join(d, "report.json"))
            self.assertEqual(back["summary"], json.loads(json.dumps(rep["summary"])))
            self.assertEqual(back["failed_points"], [dict(point="p|x", reason="boom")])
            with open(os.path.join(d, "summary.csv")) as f:
                summ = list(csv.DictReader(f))
            with open(os.path.join(d, "comparisons.csv")) as f:
                comp = list(csv.DictReader(f))
            with open(os.path.join(d, "report.csv")) as f:
                self.assertEqual(len(list(csv.DictReader(f))), len(rows))
        self.assertEqual(len(summ), 4 * 3)
        s = [x for x in summ if x["system"] == "opus_6k" and float(x["loss_rate"]) == 0.1][0]
        want = [x for x in rep["summary"] if x["system"] == "opus_6k" and x["loss_rate"] == 0.1][0]["stats"]["stoi"]
        self.assertAlmostEqual(float(s["stoi_mean"]), want["mean"], places=12)
        self.assertAlmostEqual(float(s["stoi_ci95_half_width"]), want["half_width"], places=12)
        self.assertEqual(s["stoi_n"], "6")
        self.assertEqual(len(comp), len(rep["comparisons"]["results"]))

    def test_schema_validation(self):
        rows = campaign(losses=(0.1,))
        good = json.loads(json.dumps(R.build_report(rows, {})))
        R.validate_report(good)

        def broken(f):
            rep = json.loads(json.dumps(good))
            f(rep)
            return rep
        cases = [
            (lambda r: r.__setitem__("schema_version", 3), "schema_version 3 != 2"),
            (lambda r: r.pop("comparisons"), "missing 'comparisons'"),
            (lambda r: r["summary"][0]["stats"]["stoi"].__setitem__("n", 1),
             "a confidence interval with n = 1"),
            (lambda r: r["summary"][0]["stats"]["stoi"].__setitem__("high", 9.0), "is not mean \\+- half_width"),
            (lambda r: r["summary"][0]["stats"]["stoi"].__setitem__("n", 7), "n = 7 > 6 utterances"),
            (lambda r: r["summary"][0]["metrics"].__setitem__("stoi", 0.0), "metrics mean != stats mean"),
            (lambda r: r["summary"][0]["stats"].pop("wer"), "metrics and stats name other metrics"),
            (lambda r: r["comparisons"]["results"][0].__setitem__("verdict", "great"), "verdict 'great'"),
            (lambda r: r["comparisons"]["results"][0].__setitem__(
                "verdict", R.WORSE if r["comparisons"]["results"][0]["verdict"] != R.WORSE else R.BETTER),
             "the interval says"),
            (lambda r: r["comparisons"].__setitem__("possible", False), "'possible' disagrees"),
            (lambda r: r["rows"][0].__setitem__("m_stoi", float("nan")), "is not a number"),
        ]
        for f, msg in cases:
            with self.subTest(msg=msg), self.assertRaisesRegex(R.ReportSchemaError, msg):
                R.validate_report(broken(f))

    def test_schema_1_report_is_rebuilt_from_its_rows(self):
        rows = campaign(losses=(0.1,))
        old = dict(schema_version=1, config={"x": 1}, rows=rows, untrained_rows=0, failed_points=[],
                   summary=[dict(system="codec2_700c", metrics={"stoi": 0.5})])
        with tempfile.TemporaryDirectory() as d:
            p = os.path.join(d, "report.json")
            with open(p, "w") as f:
                json.dump(old, f)
            rep = R.read_report(p)
            self.assertEqual(rep["upgraded_from"], 1)
            self.assertEqual(rep["schema_version"], R.SCHEMA_VERSION)
            self.assertEqual(len(rep["summary"]), 4)
            with open(p, "w") as f:
                json.dump(dict(old, schema_version=0), f)
            with self.assertRaisesRegex(R.ReportSchemaError, "schema_version 0"):
                R.read_report(p)


if __name__ == "__main__":
    unittest.main()
