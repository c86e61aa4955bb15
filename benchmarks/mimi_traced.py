#!/usr/bin/env python3
#
# Copyright 2026 gr-largesc authors.
# SPDX-License-Identifier: GPL-3.0-or-later
#
"""Mimi's step traced against untraced (docs/mimi.md, "The traced step"): one JSON line per
mode and setting with the median ms per frame of encode (8 codebooks) and decode, alone and
with a second Python thread busy BUSY of the time (default 0.2; 0.5 ms switch interval, as
common/live.py sets it in a live node): what the flowgraph's other Python blocks do to a step
that gives the interpreter lock back around each torch call. Also checks that both give the
same tokens and audio. Weights: random (UNTRAINED); speed does not depend on them.

    .venv/bin/python3 benchmarks/mimi_traced.py [--frames 40] [--modes exact,fast-int8] [--busy 0.2]
"""

import argparse
import json
import os
import sys
import threading
import time

import numpy as np
import torch

from gnuradio.largesc.codec import mimi_codec as C
from gnuradio.largesc.codec import mimi_fast as MF


def busy_thread(duty, stop):
    """A Python thread that holds the interpreter duty of the time in 0.2 ms bursts."""
    work, rest = 0.0002, 0.0002 * (1.0 - duty) / duty

    def run():
        while not stop.is_set():
            t = time.perf_counter()
            while time.perf_counter() - t < work:
                pass
            time.sleep(rest)
    th = threading.Thread(target=run, daemon=True)
    th.start()
    return th


def measure(mode, traced, frames, busy, x, toks):
    saved = MF._Step.trace_wanted
    MF._Step.trace_wanted = traced
    try:
        enc, dec = C.load_codec("random:0", mode=mode, threads=1)
    finally:
        MF._Step.trace_wanted = saved
    out = {}
    for load in (0.0, busy):
        stop = threading.Event()
        th = busy_thread(load, stop) if load else None
        te, td, tokens, audio = [], [], [], []
        for i in range(frames + 3):
            f = x[(i % 50) * C.FRAME_SIZE:(i % 50 + 1) * C.FRAME_SIZE]
            t = time.perf_counter()
            tokens.append(enc.encode(f, 8))
            te.append(time.perf_counter() - t)
            t = time.perf_counter()
            audio.append(dec.decode(toks[i % len(toks)][None]))
            td.append(time.perf_counter() - t)
        stop.set()
        if th:
            th.join()
        key = "alone" if not load else f"busy{load:g}"
        out[key] = dict(encode_ms=round(1e3 * float(np.median(te[3:])), 2), decode_ms=round(1e3 * float(np.median(td[3:])), 2))
        if not load:
            out["_tokens"], out["_audio"] = np.concatenate(tokens), np.concatenate(audio)
    out["traced"] = bool(enc._fast.trace)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--frames", type=int, default=40)
    ap.add_argument("--modes", default="exact,fast-int8")
    ap.add_argument("--busy", type=float, default=0.2, help="share of time the second thread is busy (0..0.9)")
    a = ap.parse_args()
    if not 0.0 < a.busy <= 0.9:
        sys.exit("--busy must be in (0, 0.9]")
    torch.set_num_threads(1)
    sys.setswitchinterval(0.0005)
    x = (np.random.default_rng(0).standard_normal(50 * C.FRAME_SIZE) * 0.1).astype(np.float32)
    toks = np.random.default_rng(1).integers(0, 2048, (50, 8))
    for mode in a.modes.split(","):
        r = {t: measure(mode, t, a.frames, a.busy, x, toks) for t in (False, True)}
        same = (np.array_equal(r[False]["_tokens"], r[True]["_tokens"])
                and np.array_equal(r[False]["_audio"], r[True]["_audio"]))
        for t in (False, True):
            row = {k: v for k, v in r[t].items() if not k.startswith("_")}
            print(json.dumps(dict(mode=mode, step="traced" if t else "untraced", **row, same_output=same,
                                  load=round(os.getloadavg()[0], 2))), flush=True)


if __name__ == "__main__":
    main()
