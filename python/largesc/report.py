#
# Copyright 2026 gr-largesc authors.
# SPDX-License-Identifier: GPL-3.0-or-later
#
"""Campaign reports: report.json (schema below, validated on write and read),
report.csv (one row per system, setting and clip) and plots of quality
against loss rate. Rows produced with untrained (random) codec weights are
marked `untrained` and kept out of every quality comparison and plot."""

import csv
import json
import os

import numpy as np

SCHEMA_VERSION = 1

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
                "trace_longest_burst")


class ReportSchemaError(ValueError):
    pass


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
        if k.startswith("m_") and v is not None and not isinstance(v, (int, float)):
            raise ReportSchemaError(f"row {r['point']!r}: metric {k} = {v!r} is not a number")


def validate_report(rep):
    for k in ("schema_version", "config", "rows", "summary", "untrained_rows"):
        if k not in rep:
            raise ReportSchemaError(f"report: missing {k!r}")
    if rep["schema_version"] != SCHEMA_VERSION:
        raise ReportSchemaError(f"report: schema_version {rep['schema_version']} != {SCHEMA_VERSION}")
    for r in rep["rows"]:
        validate_row(r)
    return rep


def metric_names(rows):
    return sorted({k[2:] for r in rows for k in r if k.startswith("m_")})


def label(r):
    if r["system"] == "largesc":
        return f"LargeSC {r['bitrate']:g} bit/s ({r['recovery']})"
    return r["system"]


def summarize(rows):
    """Mean of each metric per (system label, loss, burst) over clips."""
    groups = {}
    for r in rows:
        groups.setdefault((r.get("trace", ""), label(r), r["loss_rate"], r["mean_burst"], r["untrained"]),
                          []).append(r)
    out = []
    for (trace, lab, loss, burst, untrained), rs in sorted(groups.items()):
        s = dict(system=lab, loss_rate=loss, mean_burst=burst, untrained=untrained, clips=len(rs),
                 token_bitrate=rs[0]["token_bitrate"], on_air_bitrate=float(np.mean([x["on_air_bitrate"] for x in rs])),
                 latency_ms=rs[0]["latency_ms"],
                 packets_sent=sum(x["packets_sent"] for x in rs),
                 packets_delivered=sum(x["packets_delivered"] for x in rs),
                 packets_dropped=sum(x["packets_dropped"] for x in rs),
                 packets_lost_elsewhere=sum(x["packets_lost_elsewhere"] for x in rs))
        if trace:
            s["trace"] = trace
            s["trace_stats"] = {k[6:]: rs[0][k] for k in TRACE_FIELDS if k in rs[0]}
        s["metrics"] = {}
        for m in metric_names(rs):
            vals = [x["m_" + m] for x in rs if x.get("m_" + m) is not None]
            s["metrics"][m] = float(np.mean(vals)) if vals else None
        out.append(s)
    return out


def write_report(rows, config, out_dir, failures=()):
    """report.json and report.csv of the finished rows; `failures` (point key,
    reason) pairs of points that did not finish are listed in report.json."""
    for r in rows:
        validate_row(r)
    rep = dict(schema_version=SCHEMA_VERSION, config=config, rows=rows, summary=summarize(rows),
               untrained_rows=sum(1 for r in rows if r["untrained"]),
               failed_points=[dict(point=k, reason=why) for k, why in failures])
    validate_report(rep)
    with open(os.path.join(out_dir, "report.json"), "w") as f:
        json.dump(rep, f, indent=1)
    keys = []
    for r in rows:
        for k in r:
            if k not in keys:
                keys.append(k)
    with open(os.path.join(out_dir, "report.csv"), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=keys)
        w.writeheader()
        for r in rows:
            w.writerow(r)
    return rep


def read_report(path):
    with open(path) as f:
        return validate_report(json.load(f))


def plot_report(rep, out_dir):
    """One PNG per metric: quality against loss rate, a line per system, solid
    for i.i.d. loss and dashed for bursts. Untrained rows are left out and the
    figure says so. Returns the list of files written."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    summ = rep["summary"]
    files = []
    plot_dir = os.path.join(out_dir, "plots")
    os.makedirs(plot_dir, exist_ok=True)
    for old in os.listdir(plot_dir):  # plots of an earlier run of this folder
        if old.endswith("_vs_loss.png"):
            os.remove(os.path.join(plot_dir, old))
    n_untrained = sum(1 for s in summ if s["untrained"])
    for m in sorted({k for s in summ for k in s["metrics"]}):
        fig, ax = plt.subplots(figsize=(7, 4.5))
        trained = [s for s in summ if not s["untrained"] and s["metrics"].get(m) is not None
                   and not s.get("trace")]  # trace replays: in the summary table
        for lab in sorted({s["system"] for s in trained}):
            for burst, style in zip(sorted({s["mean_burst"] for s in trained}), ("-o", "--s", ":^", "-.v")):
                pts = sorted((s["loss_rate"], s["metrics"][m]) for s in trained
                             if s["system"] == lab and s["mean_burst"] == burst)
                if pts:
                    ax.plot([100 * p[0] for p in pts], [p[1] for p in pts], style,
                            label=f"{lab}, burst {burst:g}")
        ax.set_xlabel("packet loss rate (%)")
        ax.set_ylabel(m)
        ax.grid(alpha=0.3)
        title = f"{m} against packet loss"
        if n_untrained:
            title += f"\n({n_untrained} LargeSC rows with an UNTRAINED codec or recovery model left out)"
        ax.set_title(title, fontsize=10)
        if trained:
            ax.legend(fontsize=7)
        fig.tight_layout()
        path = os.path.join(out_dir, "plots", f"{m}_vs_loss.png")
        fig.savefig(path, dpi=110)
        plt.close(fig)
        files.append(path)
    return files


def format_summary(rep):
    """Console table: one line per system and loss setting (clip means)."""
    summ = rep["summary"]
    ms = sorted({k for s in summ for k in s["metrics"]})
    head = f"{'system':<34}{'loss':>6}{'burst':>6}{'token b/s':>10}{'air b/s':>9}{'lat ms':>7}" + \
        "".join(f"{m:>9}" for m in ms) + f"{'pkts sent/deliv/drop/other':>29}"
    lines = [head]
    traces = {}
    for s in summ:
        if s.get("trace") and s["trace"] not in traces:
            traces[s["trace"]] = s.get("trace_stats", {})
            st = traces[s["trace"]]
            lines.append(f"trace {s['trace']}: {st.get('packets', '?')} packets (80 ms slots), loss "
                         f"{100 * st.get('loss_rate', float('nan')):.1f} %, {st.get('bursts', '?')} bursts, "
                         f"mean burst {st.get('mean_burst', float('nan')):.2f}, longest "
                         f"{st.get('longest_burst', '?')} (loss and burst columns below: the trace's)")
        name = s["system"] + (" UNTRAINED" if s["untrained"] else "")
        lines.append(f"{name:<34}{s['loss_rate']:>6.2f}{s['mean_burst']:>6.1f}{s['token_bitrate']:>10.0f}"
                     f"{s['on_air_bitrate']:>9.0f}{s['latency_ms']:>7.0f}"
                     + "".join(f"{s['metrics'][m]:>9.3f}" if s["metrics"].get(m) is not None else f"{'-':>9}"
                               for m in ms)
                     + f"{s['packets_sent']:>10}/{s['packets_delivered']}/{s['packets_dropped']}/{s['packets_lost_elsewhere']}")
    if rep["untrained_rows"]:
        lines.append(f"({rep['untrained_rows']} rows ran an UNTRAINED codec or recovery model: their "
                     "metrics say nothing about speech quality)")
    return "\n".join(lines)
