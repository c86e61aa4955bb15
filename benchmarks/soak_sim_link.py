#!/usr/bin/env python3
#
# Copyright 2026 gr-largesc authors.
# SPDX-License-Identifier: GPL-3.0-or-later
#
"""Soak test: minutes of speech through the sim_link example flowgraph
(examples/sim_link_nogui.grc compiled with grcc: LargeSC TX -> erasure channel
-> LargeSC RX, feedback loop closed) with packet loss.

Prints JSON lines: progress every 30 s (frames, resident memory), then the
result: output sample count against the exact expectation (0.08 s per frame
up to the last frame the receiver heard of, from the channel's own seeded
loss pattern), resident memory growth after warm-up (target < 50 MB), errors.

Usage: benchmarks/soak_sim_link.py [--minutes 10] [--loss 0.1] [--weights random:0]
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def rss_mb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--loss", type=float, default=0.1)
    ap.add_argument("--burst", type=float, default=2.0)
    ap.add_argument("--weights", default="random:0")
    a = ap.parse_args()

    from gnuradio import largesc
    from gnuradio.largesc.eval import speech as S

    work = tempfile.mkdtemp(prefix="largesc-soak-")
    grcc = os.path.join(sys.prefix, "bin", "grcc")
    subprocess.run([grcc, os.path.join(ROOT, "examples", "sim_link_nogui.grc"), "-o", work],
                   check=True, capture_output=True)
    sys.path.insert(0, work)
    import sim_link_nogui as fgmod

    sr = 16000
    clips = [c.audio(sr) for c in S.demo_clips()]
    n_frames = int(a.minutes * 60 / 0.08)
    need = n_frames * 1280
    speech = np.concatenate(clips)
    speech = np.tile(speech, need // len(speech) + 1)[:need]
    inp = os.path.join(work, "in.wav")
    out = os.path.join(work, "out.wav")
    S.save(inp, speech, sr)

    fg = fgmod.sim_link_nogui(input_file=inp, output_file=out, max_frames=n_frames, weights=a.weights)
    fg.set_loss_rate(a.loss)
    fg.set_mean_burst(a.burst)
    stop = threading.Event()
    samples = []

    def monitor():
        t0 = time.time()
        while not stop.wait(30):
            r = rss_mb()
            samples.append((time.time() - t0, r))
            print(json.dumps({"progress_s": round(time.time() - t0), "frames_out": fg.rx.decoder.frames_in(),
                              "of": n_frames, "rss_mb": round(r, 1)}), flush=True)

    th = threading.Thread(target=monitor, daemon=True)
    t0 = time.time()
    rss0 = rss_mb()
    th.start()
    errors = None
    try:
        fg.start()
        fg.wait()
    except Exception as e:  # noqa: BLE001
        errors = repr(e)
    stop.set()
    wall = time.time() - t0
    got = len(S.load(out, sr, check=False))
    lost = largesc.loss_model.gilbert_elliott_mean(fg.loss_rate, fg.mean_burst, 1).pattern(n_frames)
    last_heard = int(np.max(np.nonzero(lost == 0)[0])) if (lost == 0).any() else -1
    expected = (last_heard + 1) * 1280
    warm = [r for t, r in samples if t >= 60] or [r for _, r in samples] or [rss0]
    growth = (max(warm) - warm[0]) if warm else float("nan")
    print(json.dumps({"figure": "soak_sim_link", "minutes": a.minutes, "frames": n_frames,
                      "loss_rate": fg.loss_rate, "mean_burst": fg.mean_burst, "weights": a.weights,
                      "samples_out": got, "samples_expected": expected, "exact": got == expected,
                      "rss_start_mb": round(rss0, 1), "rss_growth_after_warmup_mb": round(growth, 1),
                      "target_growth_mb": 50, "wall_s": round(wall, 1), "errors": errors}))
    return 0 if got == expected and errors is None else 1


if __name__ == "__main__":
    sys.exit(main())
