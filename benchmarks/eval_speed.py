#!/usr/bin/env python3
#
# Copyright 2026 gr-largesc authors.
# SPDX-License-Identifier: GPL-3.0-or-later
#
"""Speed of the evaluation pieces: seconds of wall time per minute of speech
for each baseline codec (encode + loss + decode) and each metric. Prints one
JSON line per figure.

Speech: the five demo clips (Debian pocketsphinx-testdata, 26 s in all),
concatenated. Each figure is the best of --repeat runs after one warm-up
run (model loading, numba/JIT compilation and library loading are not
counted; the warm-up time is printed as "first_call_s").

Usage: benchmarks/eval_speed.py [--repeat 2] [--loss 0.1] [--only NAME ...]
"""

import argparse
import json
import os
import time


from gnuradio.largesc.eval import baselines as B
from gnuradio.largesc.eval import metrics as M
from gnuradio.largesc.eval import speech as S

SR = 16000


def timed(fn, repeat):
    t0 = time.perf_counter()
    out = fn()
    first = time.perf_counter() - t0
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return out, first, best


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--loss", type=float, default=0.1, help="Bernoulli loss rate for the codec runs")
    ap.add_argument("--only", nargs="*", help="systems or metrics to run (default all)")
    args = ap.parse_args()

    x, text = S.demo_speech(SR)
    minutes = len(x) / SR / 60.0
    common = {"speech_s": round(len(x) / SR, 2), "threads": os.cpu_count(),
              "repeat": args.repeat}
    spec = B.LossSpec(args.loss, seed=1)
    deg = None
    for name in B.BASELINES:
        if args.only and name not in args.only:
            continue
        b = B.get_baseline(name)
        try:
            b.check_available()
        except B.BaselineUnavailable as e:
            print(json.dumps({"figure": "baseline_s_per_min", "system": name,
                              "available": False, "reason": str(e)}), flush=True)
            continue
        r, first, best = timed(lambda: b.run(x, SR, spec), args.repeat)
        if name == "opus_6k":
            deg = r.audio
        print(json.dumps({"figure": "baseline_s_per_min", "system": name,
                          "value": round(best / minutes, 3), "unit": "s per min of speech",
                          "first_call_s": round(first, 3), "loss_rate": args.loss,
                          "payload_bps": round(r.payload_bps, 1),
                          "on_air_bps": round(r.on_air_bps, 1),
                          "latency_ms": r.latency_ms, **common}), flush=True)
    if not args.only or "largesc" in args.only:
        # the LargeSC link flowgraph (encoder, controller, packetizer, channel,
        # depacketizer, hold recovery, decoder), untrained codec: speed only
        from gnuradio.largesc.sim.link import LinkConfig, run_link
        for mode in ("exact", "eager"):
            cfg = LinkConfig(budget=1100, loss=spec,
                             weights="random:0", codec_mode=mode, recovery="hold", threads=1)
            t0 = time.perf_counter()
            res = run_link(x, SR, cfg)
            wall = time.perf_counter() - t0
            print(json.dumps({"figure": "system_s_per_min", "system": "largesc_1100_hold",
                              "codec_mode": mode, "value": round(wall / minutes, 3),
                              "unit": "s per min of speech (incl. model load)",
                              "loss_rate": args.loss, "on_air_bps": round(res.counters["on_air_bitrate"], 1),
                              "latency_ms": res.latency_ms, "untrained": res.untrained, **common}), flush=True)
    if deg is None:
        deg = B.get_baseline("opus_6k").run(x, SR, spec).audio
    a = M.align(x, deg, SR)
    _, first, best = timed(lambda: M.align(x, deg, SR), args.repeat)
    print(json.dumps({"figure": "metric_s_per_min", "metric": "align",
                      "value": round(best / minutes, 3), "unit": "s per min of speech",
                      "first_call_s": round(first, 3), **common}), flush=True)
    for name in M.METRICS:
        if args.only and name not in args.only:
            continue
        v, first, best = timed(lambda: M.compute(name, a.ref, a.deg, SR, text=text), args.repeat)
        print(json.dumps({"figure": "metric_s_per_min", "metric": name,
                          "value": round(best / minutes, 3), "unit": "s per min of speech",
                          "first_call_s": round(first, 3), "score_opus_6k": round(v, 3),
                          **common}), flush=True)


if __name__ == "__main__":
    main()
