#!/usr/bin/env python3
#
# Copyright 2026 gr-largesc authors.
# SPDX-License-Identifier: GPL-3.0-or-later
#
"""Draws each examples/*.grc as a PNG block diagram (docs/img/<name>.png) from
the block positions and connections stored in the .grc file, without a
display. Stream connections are solid, message connections dashed.

Usage: examples/draw_flowgraphs.py [--out docs/img]
"""

import argparse
import glob
import os

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import yaml  # noqa: E402

SKIP = {"options", "variable", "parameter", "import", "variable_qtgui_range", "qtgui_time_sink_x_0"}


def draw(path, out_dir):
    with open(path) as f:
        g = yaml.safe_load(f)
    blocks = {b["name"]: b for b in g["blocks"] if b["id"] not in SKIP}
    conns = g.get("connections", [])
    fig, ax = plt.subplots(figsize=(12, 4.5))
    pos = {}
    for name, b in blocks.items():
        x, y = b.get("states", {}).get("coordinate", [0, 0])
        pos[name] = (x, -y)
        label = b["id"].split("_", 1)[1] if b["id"].startswith(("largesc_", "blocks_")) else b["id"]
        label = label.replace("_", " ")
        ax.text(x, -y, f"{label}\n[{name}]", ha="center", va="center", fontsize=8,
                bbox=dict(boxstyle="round,pad=0.4", fc="#e8f0ff" if "largesc" in b["id"] else "#f0f0f0",
                          ec="#335"))
    for src, sport, dst, dport in conns:
        if src not in pos or dst not in pos:
            continue
        msg = not (str(sport).isdigit() and str(dport).isdigit())
        (x0, y0), (x1, y1) = pos[src], pos[dst]
        ax.annotate("", xy=(x1, y1), xytext=(x0, y0),
                    arrowprops=dict(arrowstyle="->", ls="--" if msg else "-", color="#a33" if msg else "#333",
                                    shrinkA=28, shrinkB=28, connectionstyle="arc3,rad=0.15" if msg else "arc3"))
        if msg:
            ax.text((x0 + x1) / 2, (y0 + y1) / 2 + 12, f"{sport}->{dport}", fontsize=6, color="#a33", ha="center")
    xs = [p[0] for p in pos.values()] or [0]
    ys = [p[1] for p in pos.values()] or [0]
    ax.set_xlim(min(xs) - 120, max(xs) + 120)
    ax.set_ylim(min(ys) - 80, max(ys) + 80)
    ax.axis("off")
    title = g["options"]["parameters"].get("title") or os.path.basename(path)
    ax.set_title(f"{title}  ({os.path.basename(path)}; solid: stream, dashed: messages)", fontsize=10)
    fig.tight_layout()
    out = os.path.join(out_dir, os.path.splitext(os.path.basename(path))[0] + ".png")
    fig.savefig(out, dpi=90)
    plt.close(fig)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--out", default=os.path.join(here, "..", "docs", "img"))
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    for p in sorted(glob.glob(os.path.join(here, "*.grc"))):
        print(draw(p, a.out))


if __name__ == "__main__":
    main()
