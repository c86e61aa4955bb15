#!/usr/bin/env python3
#
# Copyright 2026 gr-largesc authors.
# SPDX-License-Identifier: GPL-3.0-or-later
#
"""Regenerates the sample outputs shown in the docs from what the commands
print, so they are never pasted by hand:

  README.md      the demo report's table at 10 % loss, and the STOI plot
                 (docs/img/demo_stoi_vs_loss.png), from a largesc-sim --demo
                 output folder (./setup.sh writes largesc-sim-demo/)
  docs/phy.md    the packet-loss-against-Eb/N0 table, from docs/phy_sweep.jsonl
                 (written by the largesc-phy-sweep command quoted there)

Each sample sits between `<!-- sample:NAME -->` and `<!-- /sample:NAME -->`.

  .venv/bin/python3 docs/make_samples.py                 # both, from existing outputs
  .venv/bin/python3 docs/make_samples.py --run-demo      # run largesc-sim --demo first
  .venv/bin/python3 docs/make_samples.py --check phy     # exit 1 if docs/phy.md is stale
"""

import argparse
import json
import os
import re
import shutil
import subprocess
import sys

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.realpath(__file__)), ".."))


def replace_sample(text, name, body):
    pat = re.compile(rf"(<!-- sample:{name} -->\n)(.*?)(<!-- /sample:{name} -->)", re.S)
    if not pat.search(text):
        raise SystemExit(f"no <!-- sample:{name} --> ... <!-- /sample:{name} --> markers")
    return pat.sub(lambda m: m.group(1) + body + m.group(3), text, count=1)


def demo_sample(report_dir, loss=0.1):
    sys.path.insert(0, ROOT)
    from gnuradio.largesc import report as R
    rep = R.read_report(os.path.join(report_dir, "report.json"))
    summ = [x for x in rep["summary"] if abs(x["loss_rate"] - loss) < 1e-9]
    rows = [r for r in rep["rows"] if abs(r["loss_rate"] - loss) < 1e-9]
    text = R.format_summary(dict(rep, summary=summ, untrained_rows=sum(r["untrained"] for r in rows)))
    return "```\n" + text + "\n```\n"


def phy_sample(jsonl):
    with open(jsonl) as f:
        pts = [json.loads(l) for l in f if l.strip()]
    n = pts[0]["packets_sent"]
    rows = []
    for p in pts:
        rows.append((f"{p['ebn0_db']:g}", p["delivered_exact"], p["delivered_corrupted"],
                     p["frames_detected"], p["crc_failed"], f"{p['packet_loss_rate']:.3f}"))
    # consecutive points with identical outcomes share a row (e.g. 18-20)
    merged = []
    for r in rows:
        if merged and merged[-1][1:] == r[1:]:
            first = merged[-1][0].split("-")[0]
            merged[-1] = (f"{first}-{r[0]}",) + r[1:]
        else:
            merged.append(r)
    out = [f"| Eb/N0 dB | delivered (bit-exact) of {n} | corrupted delivered | frames detected "
           "| CRC failed | packet loss |", "|---|---|---|---|---|---|"]
    out += ["| " + " | ".join(str(x) for x in r) + " |" for r in merged]
    return "\n".join(out) + "\n"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("targets", nargs="*", default=["demo", "phy"], help="demo, phy (default both)")
    ap.add_argument("--demo-dir", default=os.path.join(ROOT, "largesc-sim-demo"),
                    help="largesc-sim --demo output folder (default largesc-sim-demo)")
    ap.add_argument("--run-demo", action="store_true", help="run largesc-sim --demo into --demo-dir first")
    ap.add_argument("--phy-jsonl", default=os.path.join(ROOT, "docs", "phy_sweep.jsonl"))
    ap.add_argument("--check", action="store_true", help="write nothing; exit 1 if a sample is stale")
    a = ap.parse_args(argv)
    stale = []
    for t in a.targets:
        if t == "demo":
            if a.run_demo:   # a fresh run, not a resumed one
                for old in ("rows.jsonl", "failures.jsonl"):
                    if os.path.exists(os.path.join(a.demo_dir, old)):
                        os.remove(os.path.join(a.demo_dir, old))
                subprocess.run([os.path.join(ROOT, ".venv", "bin", "largesc-sim"), "--demo",
                                "--out", a.demo_dir, "--no-progress"], check=True)
            path, body = os.path.join(ROOT, "README.md"), demo_sample(a.demo_dir)
            plot = os.path.join(a.demo_dir, "plots", "stoi_vs_loss.png")
            if not a.check and os.path.exists(plot):
                shutil.copyfile(plot, os.path.join(ROOT, "docs", "img", "demo_stoi_vs_loss.png"))
        elif t == "phy":
            path, body = os.path.join(ROOT, "docs", "phy.md"), phy_sample(a.phy_jsonl)
        else:
            ap.error(f"unknown target {t!r}: demo or phy")
        with open(path) as f:
            text = f.read()
        new = replace_sample(text, t, body)
        if new != text:
            stale.append(os.path.relpath(path, ROOT))
            if not a.check:
                with open(path, "w") as f:
                    f.write(new)
    if a.check and stale:
        print("stale samples in: " + ", ".join(stale), file=sys.stderr)
        return 1
    print(("stale: " if a.check else "updated: ") + (", ".join(stale) or "nothing"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
