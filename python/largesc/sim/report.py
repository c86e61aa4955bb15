#
# Copyright 2026 gr-largesc authors.
# SPDX-License-Identifier: GPL-3.0-or-later
#
"""Campaign reports of largesc-sim, read like the paper's figures.

Files written into the campaign folder (names are stable):

  report.json        schema below (SCHEMA_VERSION), validated on write and read
  report.csv         one row per system, loss setting and utterance (clip)
  summary.csv        one row per system and loss setting: per metric the mean
                     over utterances, its 95 % confidence interval and n
  comparisons.csv    LargeSC against each baseline, per metric and loss
                     setting: paired mean difference, 95 % CI, verdict
  plots/METRIC_vs_loss.png     metric against packet-loss rate, a line per
                     system and bit rate (solid i.i.d., dashed bursts), error
                     bars = 95 % CI
  plots/METRIC_vs_bitrate.png  metric against bit rate, one panel per loss
                     setting: LargeSC a line over its token budgets (one per
                     recovery backend), each baseline a point at its own rate;
                     written when trained rows cover two bit rates or more
  plots/METRIC_vs_ebn0.png     metric over replayed traces whose header gives
                     the Eb/N0 of the channel simulation they came from
                     (largesc-phy-sweep --trace-dir), a line per system,
                     channel and FEC; written when a line has two points

Confidence intervals are Student t intervals over utterances (n - 1 degrees
of freedom); with one utterance there is no interval (half_width None).
Rows produced with an untrained (random) codec or recovery model, and
neural baselines run without their trained weights, carry `untrained` True:
they stay in the tables, labelled, and are left out of every plot and every
LargeSC-against-baseline comparison (the figures say how many).
Trace replays (--trace) are summarized per trace in the tables and compared
per trace; they are drawn only against the Eb/N0 their header names
(METRIC_vs_ebn0.png), never on the loss-rate axis (their loss rate is a
property of the trace, not a sweep axis).
"""

import csv
import io
import json
import math
import os

import numpy as np

from ..common.plotting import pyplot
from ..eval.corpus import REF_WHISPER
from ..eval.metrics import METRICS

SCHEMA_VERSION = 2
CI_LEVEL = 0.95

# field -> allowed types (row level)
ROW_FIELDS = {
    "point": str, "system": str, "bitrate": (int, float), "loss_rate": (int, float),
    "mean_burst": (int, float), "recovery": str, "seed": int, "clip": str,
    "untrained": bool, "token_bitrate": (int, float), "on_air_bitrate": (int, float),
    "latency_ms": (int, float), "packets_sent": int, "packets_delivered": int,
    "packets_dropped": int, "packets_lost_elsewhere": int, "run_s": (int, float),
}


# optional row fields of a replayed trace (sim._trace_row)
TRACE_FIELDS = ("trace_packets", "trace_loss_rate", "trace_bursts", "trace_mean_burst",
                "trace_longest_burst",
                # from the trace's header where it has them (sim.trace_meta)
                "trace_channel", "trace_ebn0_db", "trace_fec", "trace_doppler_hz", "trace_k_factor_db")

# verdicts of a LargeSC-against-baseline comparison
BETTER, WORSE, NO_DIFFERENCE, TOO_FEW = ("better", "worse", "no significant difference",
                                         "too few utterances")
HIGHER, LOWER = "LargeSC higher", "LargeSC lower"   # metric of unknown direction
VERDICTS = (BETTER, WORSE, NO_DIFFERENCE, TOO_FEW, HIGHER, LOWER)

STAT_KEYS = ("mean", "n", "sd", "half_width", "low", "high")
SUMMARY_KEYS = ("system", "system_name", "bitrate", "recovery", "loss_rate", "mean_burst", "measured_loss_rate",
                "untrained", "clips", "token_bitrate", "on_air_bitrate", "latency_ms",
                "metrics", "stats")
RESULT_KEYS = ("largesc", "baseline", "setting", "trace", "loss_rate", "mean_burst", "metric",
               "higher_is_better", "n", "mean_diff", "half_width", "low", "high", "verdict")


class ReportSchemaError(ValueError):
    pass


# --------------------------------------------------------------------------
# statistics

def mean_ci(values, level=CI_LEVEL):
    """Mean of `values` (None entries skipped) with its Student t confidence
    interval (n - 1 degrees of freedom): dict(mean, n, sd, half_width, low,
    high). n = 1: no interval (sd, half_width, low, high None); n = 0: all None."""
    v = np.asarray([x for x in values if x is not None], dtype=float)
    n = int(len(v))
    out = dict(mean=None, n=n, sd=None, half_width=None, low=None, high=None)
    if n == 0:
        return out
    out["mean"] = float(v.mean())
    if n == 1:
        return out
    from scipy.stats import t
    sd = float(v.std(ddof=1))
    hw = float(t.ppf(0.5 + level / 2, n - 1) * sd / math.sqrt(n))
    out.update(sd=sd, half_width=hw, low=out["mean"] - hw, high=out["mean"] + hw)
    return out


def higher_is_better(metric):
    """True / False from the metric registry (eval.metrics); None when the
    metric is not known there."""
    return bool(METRICS[metric].higher_is_better) if metric in METRICS else None


def verdict(stats, higher_better):
    """Verdict of a paired difference LargeSC - baseline (mean_ci of the
    differences): better / worse when the 95 % interval excludes 0 (taking
    the metric's direction into account), otherwise no significant
    difference; too few utterances below n = 2 (no interval)."""
    if stats["n"] < 2:
        return TOO_FEW
    if stats["low"] > 0:
        up = True
    elif stats["high"] < 0:
        up = False
    else:
        return NO_DIFFERENCE
    if higher_better is None:
        return HIGHER if up else LOWER
    return BETTER if up == higher_better else WORSE


# --------------------------------------------------------------------------
# rows and labels

def validate_row(r):
    for k, t in ROW_FIELDS.items():
        if k not in r:
            raise ReportSchemaError(f"row {r.get('point')!r}: missing field {k!r}")
        if not isinstance(r[k], t) or (t is int and isinstance(r[k], bool)):
            raise ReportSchemaError(f"row {r.get('point')!r}: field {k!r} = {r[k]!r} is not {t}")
    if not 0.0 <= r["loss_rate"] <= 1.0:
        raise ReportSchemaError(f"row {r['point']!r}: loss_rate out of [0, 1]")
    if r["packets_lost_elsewhere"] != 0:
        raise ReportSchemaError(f"row {r['point']!r}: {r['packets_lost_elsewhere']} packets lost "
                                "outside the channel")
    for k, v in r.items():
        if k.startswith("m_") and v is not None and (
                isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v)):
            raise ReportSchemaError(f"row {r['point']!r}: metric {k} = {v!r} is not a number "
                                    "(finite; a failed metric is None)")


def metric_names(rows):
    return sorted({k[2:] for r in rows for k in r if k.startswith("m_")})


def label(r):
    if r["system"] == "largesc":
        return f"LargeSC {r['bitrate']:g} bit/s ({r['recovery']})"
    return r["system"]


def setting_key(r):
    """The loss setting of a row or summary entry: (trace, loss_rate, mean_burst)."""
    return (r.get("trace", "") or "", float(r["loss_rate"]), float(r["mean_burst"]))


def setting_label(key):
    trace, loss, burst = key
    if trace:
        return f"trace {trace.split('@')[0]}"
    return f"loss {100 * loss:g} % " + ("i.i.d." if burst <= 1.0 else f"burst {burst:g}")


# --------------------------------------------------------------------------
# summary and comparisons

def summarize(rows):
    """Per (system label, loss setting): the mean of each metric over the
    utterances with its 95 % confidence interval (`stats`), and the mean
    alone in `metrics` (as in schema 1)."""
    groups = {}
    for r in rows:
        groups.setdefault((r.get("trace", ""), label(r), r["loss_rate"], r["mean_burst"], r["untrained"]),
                          []).append(r)

    def order(item):        # LargeSC by budget and backend, then the baselines; loss settings in order
        (trace, _lab, loss, burst, _untrained), rs = item
        r = rs[0]
        return (trace, r["system"] != "largesc", r["system"], r["bitrate"], r["recovery"], loss, burst)
    out = []
    for (trace, lab, loss, burst, untrained), rs in sorted(groups.items(), key=order):
        s = dict(system=lab, system_name=rs[0]["system"], bitrate=rs[0]["bitrate"],
                 recovery=rs[0]["recovery"], loss_rate=loss, mean_burst=burst, untrained=untrained,
                 clips=len(rs), token_bitrate=rs[0]["token_bitrate"],
                 on_air_bitrate=float(np.mean([x["on_air_bitrate"] for x in rs])),
                 latency_ms=rs[0]["latency_ms"],
                 packets_sent=sum(x["packets_sent"] for x in rs),
                 packets_delivered=sum(x["packets_delivered"] for x in rs),
                 packets_dropped=sum(x["packets_dropped"] for x in rs),
                 packets_lost_elsewhere=sum(x["packets_lost_elsewhere"] for x in rs))
        # the loss the channel drew (all utterances of a setting), next to the nominal rate
        s["measured_loss_rate"] = (s["packets_dropped"] / s["packets_sent"]) if s["packets_sent"] else None
        if trace:
            s["trace"] = trace
            s["trace_stats"] = {k[6:]: rs[0][k] for k in TRACE_FIELDS if k in rs[0]}
        refs = [x["wer_reference"] for x in rs if x.get("wer_reference")]
        if refs:           # where WER's reference transcripts came from (sim.wer_reference)
            s["wer_reference"] = {k: refs.count(k) for k in sorted(set(refs))}
        s["metrics"], s["stats"] = {}, {}
        for m in metric_names(rs):
            st = mean_ci([x.get("m_" + m) for x in rs])
            s["stats"][m] = st
            s["metrics"][m] = st["mean"]
        out.append(s)
    return out


def _untrained_why(rows):
    codec = sum(1 for r in rows if r.get("codec_untrained"))
    rec = sum(1 for r in rows if r.get("recovery_untrained"))
    parts = []
    if codec:
        parts.append(f"{codec} with an UNTRAINED (random) Mimi codec")
    if rec:
        parts.append(f"{rec} with an UNTRAINED recovery model")
    return ", ".join(parts) or "UNTRAINED"


def compare(rows):
    """LargeSC against each baseline from trained rows only: per LargeSC
    configuration, baseline, loss setting and metric, the differences
    LargeSC - baseline paired over the same utterances (clip names), their
    mean with a 95 % confidence interval and a verdict (see `verdict`).
    Returns dict(possible, note, left_out, results, per_system)."""
    ls_rows = [r for r in rows if r["system"] == "largesc"]
    base_rows = [r for r in rows if r["system"] != "largesc"]
    left_out = dict(largesc=sorted({label(r) for r in ls_rows if r["untrained"]}),
                    baselines=sorted({label(r) for r in base_rows if r["untrained"]}),
                    rows=sum(1 for r in rows if r["untrained"]))
    out = dict(level=CI_LEVEL, difference="LargeSC - baseline", possible=False, note="",
               left_out=left_out, results=[], per_system=[])
    ls_trained = [r for r in ls_rows if not r["untrained"]]
    base_trained = [r for r in base_rows if not r["untrained"]]
    if not ls_rows:
        out["note"] = "no comparison: the campaign has no LargeSC rows"
        return out
    if not ls_trained:
        out["note"] = (f"no comparison possible: all {len(ls_rows)} LargeSC utterance runs ran untrained "
                       f"({_untrained_why(ls_rows)}); their audio says nothing about speech "
                       "quality. Give trained weights (--weights, --lm-adapter) to compare")
        return out
    if not base_rows:
        out["note"] = "no comparison: the campaign has no baseline rows"
        return out
    if not base_trained:
        out["note"] = (f"no comparison possible: all {len(base_rows)} baseline utterance runs ran untrained "
                       "(a neural baseline without its trained weights)")
        return out

    def by_clip(rs):
        d, seen = {}, {}
        for r in rs:       # a repeated clip name pairs by its order of appearance
            k = seen[r["clip"]] = seen.get(r["clip"], -1) + 1
            d[(r["clip"], k)] = r
        return d

    cells = {}
    for r in ls_trained + base_trained:
        cells.setdefault(setting_key(r), {}).setdefault(label(r), []).append(r)
    ms = metric_names(rows)
    ls_labels = sorted({label(r) for r in ls_trained}, key=_ls_order(ls_trained))
    base_labels = sorted({label(r) for r in base_trained})
    for key in sorted(cells):
        cell = cells[key]
        for ls in ls_labels:
            if ls not in cell:
                continue
            a = by_clip(cell[ls])
            for bl in base_labels:
                if bl not in cell:
                    continue
                b = by_clip(cell[bl])
                for m in ms:
                    if not any(r.get("m_" + m) is not None for r in cell[ls] + cell[bl]):
                        continue       # the metric was not run (or failed) on both
                    diffs = [a[c]["m_" + m] - b[c]["m_" + m] for c in a if c in b
                             and a[c].get("m_" + m) is not None and b[c].get("m_" + m) is not None]
                    st = mean_ci(diffs)
                    hb = higher_is_better(m)
                    out["results"].append(dict(
                        largesc=ls, baseline=bl, setting=setting_label(key), trace=key[0],
                        loss_rate=key[1], mean_burst=key[2], metric=m, higher_is_better=hb,
                        n=st["n"], mean_diff=st["mean"], half_width=st["half_width"],
                        low=st["low"], high=st["high"], verdict=verdict(st, hb)))
    out["possible"] = bool(out["results"])
    if not out["results"]:
        out["note"] = ("no comparison possible: no loss setting has both a trained LargeSC row "
                       "and a trained baseline row with a metric")
    notes = []
    if left_out["largesc"]:
        notes.append("left out (UNTRAINED): " + ", ".join(left_out["largesc"]))
    if left_out["baselines"]:
        notes.append("left out (UNTRAINED baselines): " + ", ".join(left_out["baselines"]))
    if notes and out["possible"]:
        out["note"] = "; ".join(notes)
    out["per_system"] = per_system(out["results"])
    return out


def _ls_order(rows):
    order = {label(r): (r["bitrate"], r["recovery"]) for r in rows}
    return lambda lab: order[lab]


def per_system(results):
    """Where each LargeSC configuration wins or loses against each baseline:
    the results grouped by verdict ("metric, setting")."""
    out = {}
    for x in results:
        p = out.setdefault((x["largesc"], x["baseline"]), dict(
            largesc=x["largesc"], baseline=x["baseline"], better=[], worse=[], no_difference=[],
            too_few=[], higher=[], lower=[]))
        field = {BETTER: "better", WORSE: "worse", NO_DIFFERENCE: "no_difference", TOO_FEW: "too_few",
                 HIGHER: "higher", LOWER: "lower"}[x["verdict"]]
        p[field].append(f"{x['metric']}, {x['setting']}")
    return list(out.values())


# --------------------------------------------------------------------------
# report files

def _check(cond, msg):
    if not cond:
        raise ReportSchemaError(msg)


def validate_stats(st, where):
    _check(isinstance(st, dict) and all(k in st for k in STAT_KEYS),
           f"{where}: statistics need {', '.join(STAT_KEYS)}")
    n = st["n"]
    _check(isinstance(n, int) and not isinstance(n, bool) and n >= 0, f"{where}: n = {n!r}")
    for k in ("mean", "sd", "half_width", "low", "high"):
        _check(st[k] is None or (isinstance(st[k], (int, float)) and math.isfinite(st[k])),
               f"{where}: {k} = {st[k]!r} is not a number")
    _check((st["mean"] is None) == (n == 0), f"{where}: mean {st['mean']!r} with n = {n}")
    if n < 2:
        _check(st["half_width"] is None and st["low"] is None and st["high"] is None,
               f"{where}: a confidence interval with n = {n} (needs 2 utterances or more)")
    else:
        _check(None not in (st["half_width"], st["low"], st["high"]) and st["half_width"] >= 0,
               f"{where}: n = {n} but no confidence interval")
        tol = 1e-9 * max(1.0, abs(st["mean"]))
        _check(abs(st["low"] - (st["mean"] - st["half_width"])) <= tol
               and abs(st["high"] - (st["mean"] + st["half_width"])) <= tol,
               f"{where}: interval [{st['low']}, {st['high']}] is not mean +- half_width")


def validate_report(rep):
    _check(isinstance(rep, dict) and "schema_version" in rep, "report: missing 'schema_version'")
    if rep["schema_version"] != SCHEMA_VERSION:
        raise ReportSchemaError(f"report: schema_version {rep['schema_version']} != {SCHEMA_VERSION} "
                                "(read_report rebuilds a schema-1 report from its rows)")
    for k in ("config", "rows", "summary", "untrained_rows", "comparisons"):
        if k not in rep:
            raise ReportSchemaError(f"report: missing {k!r}")
    for r in rep["rows"]:
        validate_row(r)
    for s in rep["summary"]:
        where = f"summary {s.get('system')!r} {s.get('loss_rate')!r}"
        for k in SUMMARY_KEYS:
            _check(k in s, f"{where}: missing {k!r}")
        _check(set(s["metrics"]) == set(s["stats"]), f"{where}: metrics and stats name other metrics")
        for m, st in s["stats"].items():
            validate_stats(st, f"{where} {m}")
            _check(s["metrics"][m] == st["mean"], f"{where} {m}: metrics mean != stats mean")
            _check(st["n"] <= s["clips"], f"{where} {m}: n = {st['n']} > {s['clips']} utterances")
    c = rep["comparisons"]
    for k in ("possible", "note", "left_out", "results", "per_system"):
        _check(k in c, f"comparisons: missing {k!r}")
    _check(c["possible"] == bool(c["results"]), "comparisons: 'possible' disagrees with the results")
    _check(c["possible"] or c["note"], "comparisons: none, and no note saying why")
    for x in c["results"]:
        where = f"comparison {x.get('largesc')!r} vs {x.get('baseline')!r} {x.get('metric')!r}"
        for k in RESULT_KEYS:
            _check(k in x, f"{where}: missing {k!r}")
        _check(x["higher_is_better"] in (True, False, None),
               f"{where}: higher_is_better = {x['higher_is_better']!r}")
        _check(x["verdict"] in VERDICTS, f"{where}: verdict {x['verdict']!r} is not one of {VERDICTS}")
        validate_stats(dict(mean=x["mean_diff"], n=x["n"], sd=None if x["n"] < 2 else 0.0,
                            half_width=x["half_width"], low=x["low"], high=x["high"]), where)
        want = verdict(dict(n=x["n"], low=x["low"], high=x["high"]), x["higher_is_better"])
        _check(x["verdict"] == want, f"{where}: verdict {x['verdict']!r}, the interval says {want!r}")
    return rep


def build_report(rows, config, failures=()):
    """The report dict of the finished rows (validated)."""
    for r in rows:
        validate_row(r)
    rep = dict(schema_version=SCHEMA_VERSION, config=config, rows=rows, summary=summarize(rows),
               untrained_rows=sum(1 for r in rows if r["untrained"]),
               failed_points=[dict(point=k, reason=why) for k, why in failures],
               comparisons=compare(rows))
    return validate_report(rep)


def _summary_table(summ):
    ms = sorted({m for s in summ for m in s["stats"]})
    head = ["system", "trace", "loss_rate", "mean_burst", "measured_loss_rate", "untrained", "utterances", "bitrate",
            "token_bitrate", "on_air_bitrate", "latency_ms"]
    for m in ms:
        head += [f"{m}_mean", f"{m}_ci95_half_width", f"{m}_ci95_low", f"{m}_ci95_high", f"{m}_n"]
    out = []
    for s in summ:
        row = [s["system"], s.get("trace", ""), s["loss_rate"], s["mean_burst"], s.get("measured_loss_rate"),
               s["untrained"],
               s["clips"], s["bitrate"], s["token_bitrate"], s["on_air_bitrate"], s["latency_ms"]]
        for m in ms:
            st = s["stats"].get(m) or dict.fromkeys(STAT_KEYS)
            row += [st["mean"], st["half_width"], st["low"], st["high"], st["n"]]
        out.append(row)
    return head, out


def write_report(rows, config, out_dir, failures=()):
    """report.json, report.csv, summary.csv and comparisons.csv of the
    finished rows; `failures` (point key, reason) pairs of points that did
    not finish are listed in report.json. Returns the report dict. Each
    file is written whole or not at all (a full disk leaves no half a
    report): campaign.FileFault (an OSError) names the one that failed."""
    from .campaign import write_whole
    rep = build_report(rows, config, failures)
    write_whole(os.path.join(out_dir, "report.json"), json.dumps(rep, indent=1))
    keys = []
    for r in rows:
        for k in r:
            if k not in keys:
                keys.append(k)
    f = io.StringIO(newline="")
    w = csv.DictWriter(f, fieldnames=keys)
    w.writeheader()
    for r in rows:
        w.writerow(r)
    write_whole(os.path.join(out_dir, "report.csv"), f.getvalue())
    head, body = _summary_table(rep["summary"])
    f = io.StringIO(newline="")
    w = csv.writer(f)
    w.writerow(head)
    w.writerows([["" if v is None else v for v in row] for row in body])
    write_whole(os.path.join(out_dir, "summary.csv"), f.getvalue())
    f = io.StringIO(newline="")
    w = csv.DictWriter(f, fieldnames=RESULT_KEYS)
    w.writeheader()
    for x in rep["comparisons"]["results"]:
        w.writerow({k: ("" if x[k] is None else x[k]) for k in RESULT_KEYS})
    write_whole(os.path.join(out_dir, "comparisons.csv"), f.getvalue())
    return rep


def read_report(path):
    """The report of a report.json, validated. A schema-1 report (written
    before confidence intervals) is rebuilt from its rows, which have not
    changed: `upgraded_from` says so."""
    with open(path) as f:
        rep = json.load(f)
    if rep.get("schema_version") == 1 and "rows" in rep and "config" in rep:
        failures = [(x["point"], x["reason"]) for x in rep.get("failed_points", [])]
        new = build_report(rep["rows"], rep["config"], failures)
        new["upgraded_from"] = 1
        return new
    return validate_report(rep)


# --------------------------------------------------------------------------
# plots

BURST_STYLES = ("-", "--", ":", "-.")
MARKERS = ("o", "s", "^", "v", "D", "P", "X", "*")


def wer_reference_note(summ):
    """One line on where the WER reference transcripts came from, or ""."""
    n = {}
    for s in summ:
        for k, v in s.get("wer_reference", {}).items():
            n[k] = n.get(k, 0) + v
    total, whisper = sum(n.values()), n.get(REF_WHISPER, 0)
    if not whisper:
        return ""
    if whisper == total:
        return ("WER reference: Whisper's transcript of the clean input (no transcript given): "
                "the words the link changed, not recognition accuracy")
    return (f"WER reference: the transcript for {total - whisper} of {total} utterance rows, Whisper's "
            f"transcript of the clean input for {whisper} (no transcript given)")


def axis_label(m, summ=()):
    hb = higher_is_better(m)
    desc = METRICS[m].description if m in METRICS else m
    direction = {True: "higher is better", False: "LOWER is better", None: "direction unknown"}[hb]
    ref = wer_reference_note(summ) if m == "wer" else ""
    if ref:
        ref = "\nreference: " + ("Whisper on the clean input" if ref.startswith("WER reference: Whisper")
                                 else "partly Whisper on the clean input")
    return f"{m}: {desc}\n({direction}){ref}"


def _left_out(summ, m):
    """Untrained, non-trace summary entries with metric m: (entries, rows, labels)."""
    lo = [s for s in summ if s["untrained"] and not s.get("trace") and s["stats"].get(m)
          and s["stats"][m]["n"] > 0]
    return len(lo), sum(s["stats"][m]["n"] for s in lo), sorted({s["system"] for s in lo})


def _plotted(summ, m):
    return [s for s in summ if not s["untrained"] and not s.get("trace")
            and s["stats"].get(m) and s["stats"][m]["mean"] is not None]


def loss_series(rep, m):
    """What METRIC_vs_loss.png draws: {(system label, mean burst): [(loss
    rate, mean, half width or None, n)]} of trained, non-trace entries."""
    out = {}
    for s in _plotted(rep["summary"], m):      # summary order: LargeSC by budget, then baselines
        st = s["stats"][m]
        out.setdefault((s["system"], s["mean_burst"]), []).append(
            (s["loss_rate"], st["mean"], st["half_width"], st["n"]))
    keys = sorted(out, key=lambda k: ([lab for lab, _ in out].index(k[0]), k[1]))
    return {k: sorted(out[k]) for k in keys}


def bitrate_series(rep, m):
    """What METRIC_vs_bitrate.png draws, per loss setting (loss rate, mean
    burst): {"largesc": {recovery: [(bit rate, mean, half width, n)]},
    "baselines": {name: (bit rate, mean, half width, n)}}; trained, non-trace."""
    out = {}
    for s in _plotted(rep["summary"], m):
        st = s["stats"][m]
        cell = out.setdefault((s["loss_rate"], s["mean_burst"]), dict(largesc={}, baselines={}))
        p = (s["bitrate"], st["mean"], st["half_width"], st["n"])
        if s["system_name"] == "largesc":
            cell["largesc"].setdefault(s["recovery"], []).append(p)
        else:
            cell["baselines"][s["system"]] = p
    for cell in out.values():
        cell["largesc"] = {k: sorted(v) for k, v in sorted(cell["largesc"].items())}
    return dict(sorted(out.items()))


def ebn0_series(rep, m):
    """What METRIC_vs_ebn0.png draws: replayed traces whose header gives an
    Eb/N0 (largesc-phy-sweep --trace-dir), trained entries only:
    {(system label, channel, fec): [(Eb/N0 dB, mean, half width, n)]}."""
    out = {}
    for s in rep["summary"]:
        ts = s.get("trace_stats") or {}
        st = s["stats"].get(m)
        if (not s.get("trace") or s["untrained"] or not isinstance(ts.get("ebn0_db"), (int, float))
                or not st or st["mean"] is None):
            continue
        out.setdefault((s["system"], str(ts.get("channel", "?")), str(ts.get("fec", "none"))), []).append(
            (float(ts["ebn0_db"]), st["mean"], st["half_width"], st["n"]))
    return {k: sorted(v) for k, v in sorted(out.items())}


def _notes(rep, m, n_range):
    k, nrows, labels = _left_out(rep["summary"], m)
    lines = []
    if n_range:
        lo, hi = n_range
        lines.append("error bars: 95 % confidence interval of the mean over "
                     + (f"{lo}" if lo == hi else f"{lo}-{hi}") + " utterances"
                     + (" (n = 1: no bar)" if lo == 1 else ""))
    else:
        lines.append("no trained rows to draw")
    if k:
        who = ", ".join(labels) if len(labels) <= 3 else f"{', '.join(labels[:3])} and {len(labels) - 3} more"
        lines.append(f"left out: {k} UNTRAINED system/setting points ({nrows} utterance rows): {who}")
    return lines


def _colors(rep):
    import matplotlib
    names = sorted({s["system"] for s in rep["summary"]}
                   | {f"LargeSC ({s['recovery']})" for s in rep["summary"] if s["system_name"] == "largesc"})
    cmap = matplotlib.colormaps["tab10" if len(names) <= 10 else "tab20"]
    return {n: cmap(i % cmap.N) for i, n in enumerate(names)}


def _errorbar(ax, xs, pts, **kw):
    ys = [p[1] for p in pts]
    yerr = [0.0 if p[2] is None else p[2] for p in pts]
    return ax.errorbar(xs, ys, yerr=yerr, capsize=3, elinewidth=1, markersize=5, **kw)


def plot_report(rep, out_dir):
    """The figures of plots/ (see the module doc); plots of an earlier run of
    the same folder are removed first. Returns the list of files written."""
    plt = pyplot()
    plot_dir = os.path.join(out_dir, "plots")
    _clear_plots(plot_dir)
    colors = _colors(rep)
    files = []
    # a campaign of trace replays only has no loss-rate axis: no empty figures
    loss_axis = any(not s.get("trace") for s in rep["summary"])
    for m in sorted({k for s in rep["summary"] for k in s["stats"]}) if loss_axis else ():
        files.append(_plot_loss(plt, rep, m, plot_dir, colors))
        path = _plot_bitrate(plt, rep, m, plot_dir, colors)
        if path:
            files.append(path)
    files += _plot_ebn0(rep, plot_dir, colors)
    return files


def _clear_plots(plot_dir):
    """Makes plot_dir, and removes the figures an earlier run of the folder left there."""
    os.makedirs(plot_dir, exist_ok=True)
    for old in os.listdir(plot_dir):  # plots of an earlier run of this folder
        if old.endswith(("_vs_loss.png", "_vs_bitrate.png", "_vs_ebn0.png")):
            os.remove(os.path.join(plot_dir, old))


def _plot_loss(plt, rep, m, plot_dir, colors):
    """METRIC_vs_loss.png: metric m against the packet loss rate, a line per
    system and burst length. Returns its path."""
    ser = loss_series(rep, m)
    ns = [p[3] for pts in ser.values() for p in pts]
    bursts = sorted({b for _, b in ser})
    fig, ax = plt.subplots(figsize=(9, 5))
    losses = sorted({p[0] for pts in ser.values() for p in pts})
    span = 100 * (losses[-1] - losses[0]) if len(losses) > 1 else 10.0
    for i, ((lab, burst), pts) in enumerate(ser.items()):
        # keeps bars apart: all lines within 3 % of the axis span
        dodge = (i - (len(ser) - 1) / 2) * span * min(0.004, 0.03 / max(len(ser), 1))
        ls = BURST_STYLES[bursts.index(burst) % len(BURST_STYLES)]
        _errorbar(ax, [100 * p[0] + dodge for p in pts], pts, linestyle=ls,
                  marker=MARKERS[bursts.index(burst) % len(MARKERS)], color=colors[lab],
                  label=f"{lab}, " + ("i.i.d." if burst <= 1 else f"burst {burst:g}"))
    ax.set_xlabel("packet loss rate (%)  [solid: i.i.d. loss, dashed/dotted: bursts of mean length given]")
    ax.set_ylabel(axis_label(m, rep["summary"]))
    ax.grid(alpha=0.3)
    ax.set_title("\n".join([f"{m} against packet loss rate"]
                           + _notes(rep, m, (min(ns), max(ns)) if ns else None)), fontsize=9)
    if ser:
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    path = os.path.join(plot_dir, f"{m}_vs_loss.png")
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def _plot_bitrate(plt, rep, m, plot_dir, colors):
    """METRIC_vs_bitrate.png: metric m against the bit rate, a panel per loss
    setting. Returns its path, or None with one bit rate only (nothing to draw)."""
    import matplotlib.ticker
    cells = bitrate_series(rep, m)
    rates = {p[0] for c in cells.values() for pts in c["largesc"].values() for p in pts} | \
        {p[0] for c in cells.values() for p in c["baselines"].values()}
    if len(rates) < 2:
        return None            # one bit rate: nothing to draw against
    ns = [p[3] for c in cells.values() for pts in c["largesc"].values() for p in pts] + \
        [p[3] for c in cells.values() for p in c["baselines"].values()]
    k = len(cells)
    cols = min(3, k)
    rows_ = math.ceil(k / cols)
    fig, axes = plt.subplots(rows_, cols, figsize=(4.6 * cols + 2.5, 3.8 * rows_ + 0.8),
                             sharey=True, squeeze=False)
    handles = {}
    for ax, ((loss, burst), c) in zip(axes.flat, cells.items()):
        for rec, pts in c["largesc"].items():
            name = f"LargeSC ({rec})"
            h = _errorbar(ax, [p[0] for p in pts], pts, linestyle="-", marker="o",
                          color=colors[name], label=f"LargeSC over its token budgets ({rec})")
            handles.setdefault(name, h)
        for j, (name, p) in enumerate(sorted(c["baselines"].items())):
            h = _errorbar(ax, [p[0]], [p], linestyle="none", marker=MARKERS[(j + 1) % len(MARKERS)],
                          color=colors[name], label=name)
            handles.setdefault(name, h)
        ax.set_xscale("log")
        ax.set_xticks(sorted(rates))
        ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.tick_params(axis="x", labelrotation=45, labelsize=7)
        ax.set_title(setting_label(("", loss, burst)), fontsize=9)
        ax.set_xlabel("bit rate (bit/s, log): LargeSC token budget, codec payload")
        ax.grid(alpha=0.3, which="both")
    for ax in axes.flat[k:]:
        ax.set_visible(False)
    for ax in axes[:, 0]:
        ax.set_ylabel(axis_label(m, rep["summary"]))
    fig.suptitle("\n".join([f"{m} against bit rate, per loss setting"]
                           + _notes(rep, m, (min(ns), max(ns)))), fontsize=9)
    fig.legend(list(handles.values()), [h.get_label() for h in handles.values()], fontsize=7,
               loc="upper left", bbox_to_anchor=(1.0, 0.9))
    fig.tight_layout()
    path = os.path.join(plot_dir, f"{m}_vs_bitrate.png")
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def _plot_ebn0(rep, plot_dir, colors):
    """METRIC_vs_ebn0.png per metric: speech quality over traces of a
    channel simulation (largesc-phy-sweep), against the Eb/N0 each trace
    was taken at; a line per system, channel and FEC. Written when some line
    has two Eb/N0 points or more."""
    plt = pyplot()
    files = []
    for m in sorted({k for s in rep["summary"] for k in s["stats"]}):
        ser = ebn0_series(rep, m)
        if not any(len(v) >= 2 for v in ser.values()):
            continue
        channels = sorted({c for _, c, _ in ser})
        fig, ax = plt.subplots(figsize=(9, 5))
        ns = [p[3] for pts in ser.values() for p in pts]
        for (lab, chan, fec), pts in ser.items():
            ls = BURST_STYLES[channels.index(chan) % len(BURST_STYLES)]
            _errorbar(ax, [p[0] for p in pts], pts, linestyle=ls,
                      marker=MARKERS[channels.index(chan) % len(MARKERS)], color=colors.get(lab),
                      label=f"{lab}, {chan}" + ("" if fec == "none" else f", FEC {fec}"))
        n_untrained = sum(1 for s in rep["summary"] if s.get("trace") and s["untrained"]
                          and (s.get("trace_stats") or {}).get("ebn0_db") is not None)
        ax.set_xlabel("Eb/N0 of the channel simulation the trace was taken from (dB)")
        ax.set_ylabel(axis_label(m, rep["summary"]))
        ax.grid(alpha=0.3)
        notes = [f"{m} over replayed packet-loss traces, against Eb/N0 (line style: channel)",
                 "error bars: 95 % confidence interval of the mean over "
                 + (f"{min(ns)}" if min(ns) == max(ns) else f"{min(ns)}-{max(ns)}") + " utterances"]
        if n_untrained:
            notes.append(f"left out: {n_untrained} UNTRAINED system/trace points")
        ax.set_title("\n".join(notes), fontsize=9)
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
        path = os.path.join(plot_dir, f"{m}_vs_ebn0.png")
        fig.savefig(path, dpi=110, bbox_inches="tight")
        plt.close(fig)
        files.append(path)
    return files


# --------------------------------------------------------------------------
# console

def _pm(st, clips, width, digits=3):
    if not st or st["mean"] is None:
        return f"{'-':>{width}}"
    if st["n"] < 2:
        txt = f"{st['mean']:.{digits}f} (n={st['n']})"
    else:
        txt = f"{st['mean']:.{digits}f}±{st['half_width']:.{digits}f}"
        if st["n"] < clips:
            txt += "*"
    return f"{txt:>{width}}"


def _signed(x, hw, digits=3):
    if x is None:
        return "-"
    return f"{x:+.{digits}f}" + ("" if hw is None else f"±{hw:.{digits}f}")


def format_comparisons(rep):
    """The LargeSC-against-baseline summary printed after the table: per
    LargeSC configuration and baseline, the count of metric x loss settings
    where LargeSC is better / worse / not significantly different, then the
    paired differences per loss setting. Only the loss settings of
    rep["summary"] are shown."""
    c = rep["comparisons"]
    shown = {setting_key(s) for s in rep["summary"]}
    res = [x for x in c["results"] if setting_key(x) in shown]
    lines = [f"LargeSC against each baseline ({100 * c.get('level', CI_LEVEL):g} % confidence, trained rows "
             "only, paired over the same utterances; difference = LargeSC - baseline):"]
    if not c["possible"] or not res:
        lines.append("  " + (c["note"] or "no comparison in the loss settings shown"))
        return "\n".join(lines)
    if c["note"]:
        lines.append("  " + c["note"])
    pairs = {}
    for x in res:
        pairs.setdefault((x["largesc"], x["baseline"]), []).append(x)
    short = {BETTER: "better", WORSE: "WORSE", NO_DIFFERENCE: "n.s.", TOO_FEW: "n<2",
             HIGHER: "higher", LOWER: "lower"}
    for (ls, bl), xs in pairs.items():
        cnt = {v: sum(1 for x in xs if x["verdict"] == v) for v in VERDICTS}
        parts = [f"better in {cnt[BETTER]}", f"worse in {cnt[WORSE]}",
                 f"no significant difference in {cnt[NO_DIFFERENCE]}"]
        if cnt[TOO_FEW]:
            parts.append(f"too few utterances in {cnt[TOO_FEW]}")
        if cnt[HIGHER] or cnt[LOWER]:
            parts.append(f"higher/lower (metric direction unknown) in {cnt[HIGHER] + cnt[LOWER]}")
        lines.append(f"{ls} vs {bl}: " + ", ".join(parts) + f" (of {len(xs)} metric x loss settings)")
        by_setting = {}
        for x in xs:
            by_setting.setdefault(x["setting"], []).append(x)
        for st, ys in by_setting.items():
            lines.append(f"    {st:<20}" + "  ".join(
                f"{y['metric']} {_signed(y['mean_diff'], y['half_width'])} {short[y['verdict']]}" for y in ys))
    return "\n".join(lines)


def _trace_source(st):
    """', from: rayleigh channel, Eb/N0 14 dB, ...' when the trace's header said so."""
    parts = []
    if st.get("channel"):
        parts.append(f"{st['channel']} channel")
    if isinstance(st.get("doppler_hz"), (int, float)):
        parts.append(f"Doppler {st['doppler_hz']:g} Hz")
    if isinstance(st.get("k_factor_db"), (int, float)):
        parts.append(f"K {st['k_factor_db']:g} dB")
    if isinstance(st.get("ebn0_db"), (int, float)):
        parts.append(f"Eb/N0 {st['ebn0_db']:g} dB")
    if st.get("fec"):
        parts.append(f"FEC {st['fec']}")
    return f"; from {', '.join(parts)}" if parts else ""


def format_summary(rep):
    """Console table: one line per system and loss setting, each metric as
    mean ± 95 % confidence half-width over the utterances; then where
    LargeSC wins or loses against each baseline (format_comparisons)."""
    summ = rep["summary"]
    ms = sorted({k for s in summ for k in s["stats"]})
    w = 14
    head = f"{'system':<34}{'loss':>6}{'burst':>6}{'meas%':>6}{'utt':>4}{'token b/s':>10}{'air b/s':>9}{'lat ms':>7}" + \
        "".join(f"{m:>{w}}" for m in ms) + f"{'pkts sent/deliv/drop/other':>29}"
    lines = ["loss, burst: the channel setting; meas%: packets the channel dropped, in % of those sent; "
             "utt: utterances",
             "metrics: mean ± 95 % confidence half-width over the utterances (Student t); "
             + ", ".join(f"{m} {'lower' if higher_is_better(m) is False else 'higher'} is better" for m in ms),
             head]
    traces = {}
    partial = False
    for s in summ:
        if s.get("trace") and s["trace"] not in traces:
            traces[s["trace"]] = s.get("trace_stats", {})
            st = traces[s["trace"]]
            lines.append(f"trace {s['trace']}: {st.get('packets', '?')} packets (80 ms slots), loss "
                         f"{100 * st.get('loss_rate', float('nan')):.1f} %, {st.get('bursts', '?')} bursts, "
                         f"mean burst {st.get('mean_burst', float('nan')):.2f}, longest "
                         f"{st.get('longest_burst', '?')} (loss and burst columns below: the trace's)"
                         + _trace_source(st))
        name = s["system"] + (" UNTRAINED" if s["untrained"] else "")
        partial |= any(0 < x["n"] < s["clips"] and x["n"] >= 2 for x in s["stats"].values())
        meas = s.get("measured_loss_rate")
        meas = f"{100 * meas:>6.1f}" if meas is not None else f"{'-':>6}"
        lines.append(f"{name:<34}{s['loss_rate']:>6.2f}{s['mean_burst']:>6.1f}{meas}{s['clips']:>4}"
                     f"{s['token_bitrate']:>10.0f}{s['on_air_bitrate']:>9.0f}{s['latency_ms']:>7.0f}"
                     + "".join(_pm(s["stats"].get(m), s["clips"], w) for m in ms)
                     + f"{s['packets_sent']:>10}/{s['packets_delivered']}/{s['packets_dropped']}/{s['packets_lost_elsewhere']}")
    if any(x["n"] == 1 for s in summ for x in s["stats"].values()):
        lines.append("(n=1: one utterance, no confidence interval)")
    if partial:
        lines.append("(*: the metric failed on some utterances (metric_errors in report.csv); n per metric "
                     "in summary.csv)")
    ref_note = wer_reference_note(summ)
    if ref_note:
        lines.append(f"({ref_note})")
    if rep["untrained_rows"]:
        nl = sum(1 for s in summ if s.get("untrained"))
        lines.append(f"({nl} line{'s' * (nl != 1)} above ({rep['untrained_rows']} utterance runs) ran an UNTRAINED "
                     "codec or recovery model: their metrics say nothing about speech quality)")
    lines += ["", format_comparisons(rep)]
    return "\n".join(lines)
