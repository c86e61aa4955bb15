#!/usr/bin/env python3
#
# Copyright 2026 gr-largesc authors.
# SPDX-License-Identifier: GPL-3.0-or-later
#
"""Adaptive UEP plan versus fixed plans of the same on-air rate.

For budgets 550 / 1100 / 2060 bit/s of token payload, Gilbert-Elliott loss
5/10/20/30 % with mean burst 1 and 3 packets, and max offset D (default 2):
the expected importance-weighted delivery J = sum_c w_c P(codebook c arrives)
(steady state, default weights, exact analytic values, docs/uep_controller.md)
of
  - the adaptive plan (greedy_plan for this channel),
  - the fixed baseline K = S, no copies,
  - the best fixed plan: the one plan of the same packet size that has the
    highest mean J over the 8 channels, chosen in advance,
  - every plan of the same packet size (on-air rate): how many the adaptive
    plan strictly beats here, and the best of the others.
Prints one JSON line per (budget, channel) and writes the markdown table
(default docs/uep_plan_table.md).

Usage: benchmarks/uep_plan_table.py [--max-offset 2] [--out docs/uep_plan_table.md]
"""

import argparse
import json
import os

from gnuradio.largesc.uep import uep_plan as up

BUDGETS = (550, 1100, 2060)
LOSSES = (0.05, 0.10, 0.20, 0.30)
BURSTS = (1.0, 3.0)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--max-offset", type=int, default=2)
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "docs",
                                                  "uep_plan_table.md"))
    a = ap.parse_args()
    D = a.max_offset
    w = up.default_weights()
    channels = [(L, B) for L in LOSSES for B in BURSTS]
    rows = []
    all_beaten = True
    for budget in BUDGETS:
        S = up.slots_for_budget(budget)
        base = up.fixed_plan(S, D)
        nbytes = up.packet_bytes(base)
        same_rate = [p for p in up.all_plans(S, D) if up.packet_bytes(p) == nbytes]
        models = {ch: up.LossModel.gilbert_elliott(*ch) for ch in channels}
        values = {ch: {p: up.expected_importance(p, models[ch], w) for p in same_rate} for ch in channels}
        best_fixed = max(same_rate, key=lambda p: (sum(values[ch][p] for ch in channels), p.k))
        for ch in channels:
            m = models[ch]
            ad = up.greedy_plan(S, m, D, w)
            assert up.packet_bytes(ad) == nbytes, (ad, nbytes)
            v = values[ch]
            va = up.expected_importance(ad, m, w)
            others = [p for p in same_rate if p != ad]
            beaten = sum(1 for p in others if v[p] < va - 1e-12)
            best_other = max(others, key=lambda p: v[p])
            all_beaten &= beaten == len(others)
            row = {
                "figure": "uep_plan", "budget_bps": budget, "slots": S, "max_offset": D,
                "latency_ms": up.playout_latency_ms(D), "loss_rate": ch[0], "mean_burst": ch[1],
                "token_bps": up.token_bitrate(ad), "on_air_bps": up.on_air_bitrate(ad),
                "on_air_crc_bps": up.on_air_bitrate(ad, crc=True),
                "adaptive_plan": [ad.k, *ad.copies], "adaptive": round(va, 5),
                "fixed_no_copies": round(v[base], 5), "gain_vs_no_copies_pct": round(100 * (va / v[base] - 1), 2),
                "best_fixed_plan": [best_fixed.k, *best_fixed.copies], "best_fixed": round(v[best_fixed], 5),
                "best_other_plan": [best_other.k, *best_other.copies], "best_other": round(v[best_other], 5),
                "same_rate_plans": len(same_rate), "beaten": beaten,
                "max_importance": round(float(w.sum()), 5),
            }
            print(json.dumps(row))
            rows.append(row)
    lines = [
        f"Expected importance-weighted delivery J (default weights; the sum over all 32 codebooks is "
        f"{rows[0]['max_importance']:.3f}), steady state, Gilbert-Elliott loss, D = {D} "
        f"(+{up.playout_latency_ms(D):.0f} ms playout). Plans are written K / r_1 / r_2. "
        "\"best fixed\" is the one plan of the same packet size with the highest mean J over the 8 channels; "
        "\"beats\" counts the plans of the same on-air rate the adaptive plan strictly beats on this channel. "
        "Produced by `benchmarks/uep_plan_table.py`.",
        "",
        "| budget (token / on air bit/s) | loss | burst | adaptive plan | J adaptive | J fixed K=S | gain | "
        "best fixed plan | J best fixed | best other plan | J best other | beats |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        fmt = lambda p: " / ".join(str(x) for x in p)
        lines.append(
            f"| {r['budget_bps']} ({r['token_bps']:g} / {r['on_air_bps']:g}) | {100 * r['loss_rate']:.0f} % | "
            f"{r['mean_burst']:g} | {fmt(r['adaptive_plan'])} | {r['adaptive']:.4f} | {r['fixed_no_copies']:.4f} | "
            f"{r['gain_vs_no_copies_pct']:+.1f} % | {fmt(r['best_fixed_plan'])} | {r['best_fixed']:.4f} | "
            f"{fmt(r['best_other_plan'])} | {r['best_other']:.4f} | {r['beaten']} / {r['same_rate_plans'] - 1} |")
    with open(a.out, "w") as f:
        f.write("\n".join(lines) + "\n")
    print(json.dumps({"figure": "uep_plan_summary", "max_offset": D, "rows": len(rows),
                      "adaptive_beats_every_other_plan_everywhere": all_beaten, "table": os.path.relpath(a.out)}))


if __name__ == "__main__":
    main()
