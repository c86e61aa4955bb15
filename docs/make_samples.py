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
  docs/phy.md    the packet loss (and mean loss burst) against Eb/N0 per channel
                 and FEC, from docs/phy_sweep.jsonl
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
    from gnuradio.largesc.sim import report as R
    rep = R.read_report(os.path.join(report_dir, "report.json"))
    summ = [x for x in rep["summary"] if abs(x["loss_rate"] - loss) < 1e-9]
    rows = [r for r in rep["rows"] if abs(r["loss_rate"] - loss) < 1e-9]
    text = R.format_summary(dict(rep, summary=summ, untrained_rows=sum(r["untrained"] for r in rows)))
    return "```\n" + text + "\n```\n"


PHY_CHANNELS = {"awgn": "AWGN", "rayleigh": "Rayleigh", "rician": "Rician"}


def phy_sample(jsonl):
    """Packet loss rate (mean loss burst in packets) against Eb/N0, one column
    per channel and FEC, and the facts every point shares."""
    with open(jsonl) as f:
        pts = [json.loads(l) for l in f if l.strip()]
    n = pts[0]["packets_sent"]
    cols = []
    for p in pts:
        c = (p.get("channel", "awgn"), p.get("fec", "none"))
        if c not in cols:
            cols.append(c)
    ebs = sorted({p["ebn0_db"] for p in pts})
    cell = {(p.get("channel", "awgn"), p.get("fec", "none"), p["ebn0_db"]): p for p in pts}

    def head(c):
        ch, fec = c
        p = next(q for q in pts if (q.get("channel", "awgn"), q.get("fec", "none")) == c)
        name = PHY_CHANNELS[ch] + (f" K {p['k_factor_db']:g} dB" if ch == "rician" else "")
        return name + ("" if fec == "none" else f" + FEC {fec}") + f" ({p['bytes_on_air']} B)"

    def text(p):
        if p is None:
            return "-"
        if not p["lost"]:
            return "0"
        mb = p.get("mean_burst", 0)
        return f"{p['packet_loss_rate']:.3f} ({mb:.1f})" if mb < 10 else f"{p['packet_loss_rate']:.3f} ({mb:.0f})"

    rows = [[f"{e:g}"] + [text(cell.get((ch, fec, e))) for ch, fec in cols] for e in ebs]
    merged = []   # consecutive Eb/N0 with identical outcomes share a row (e.g. 26-30)
    for r in rows:
        if merged and merged[-1][1:] == r[1:]:
            merged[-1] = [f"{merged[-1][0].split('-')[0]}-{r[0]}"] + r[1:]
        else:
            merged.append(r)
    out = ["| Eb/N0 dB | " + " | ".join(head(c) for c in cols) + " |", "|---" * (len(cols) + 1) + "|"]
    out += ["| " + " | ".join(r) + " |" for r in merged]
    p0 = pts[0]
    fading = [p for p in pts if p.get("channel", "awgn") != "awgn"]
    corrupted = sum(p["delivered_corrupted"] for p in pts)
    out += ["", f"{n} packets per point ({p0['packet_bytes']}-byte LargeSC packets, plan "
                f"K {p0['plan'][0]} + r1 {p0['plan'][1]} + r2 {p0['plan'][2]}), "
                f"{p0['bit_rate'] / 1000:g} kbit/s, {p0['freq_offset_hz']:g} Hz carrier offset, "
                f"{p0['clock_ppm']:g} ppm clock offset"
                + (f", Doppler {fading[0]['doppler_hz']:g} Hz" if fading else "") + f", seed {p0['seed']}. "
            f"Cells: packet loss rate (mean loss burst, packets); column heads: bytes on air per packet. "
            f"Delivered but corrupted: {corrupted} of {sum(p['delivered'] for p in pts)} delivered packets."]
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
