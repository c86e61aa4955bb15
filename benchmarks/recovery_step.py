#!/usr/bin/env python3
#
# Copyright 2026 gr-largesc authors.
# SPDX-License-Identifier: GPL-3.0-or-later
#
"""Milliseconds per token-recovery step on CPU (one 80 ms frame in, one out),
for the hold backend and the lm backend with the tiny and the ~100 M-parameter
(small100m) configs, randomly initialised (timing only). One JSON line per
figure. A step with no loss runs only the temporal transformer; a lost frame
also runs the depth transformer for all dep_q codebooks.

  .venv/bin/python3 benchmarks/recovery_step.py [--threads 1] [--frames 40]
"""

import argparse
import json
import time

import numpy as np
import torch

from gnuradio.largesc import recovery as R


def bench(rec, frames, loss, rng, n_q=8):
    tok = rng.integers(0, 2048, (frames, n_q))
    lost = rng.random(frames) < loss
    mask = np.repeat((~lost)[:, None], n_q, axis=1).astype(np.uint8)
    rec.reset()
    for t in range(min(5, frames)):           # warm-up
        rec.push(tok[t], mask[t])
    rec.reset()
    t0 = time.perf_counter()
    for t in range(frames):
        rec.push(tok[t], mask[t])
    dt = time.perf_counter() - t0
    rec.flush()
    return 1e3 * dt / frames


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--frames", type=int, default=40)
    ap.add_argument("--configs", default="tiny,small100m")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    rng = np.random.default_rng(0)
    hold = R.TokenRecovery("hold")
    print(json.dumps({"figure": "recovery_step_ms", "backend": "hold", "device": "cpu",
                      "loss": 0.2, "ms": round(bench(hold, 2000, 0.2, rng), 4)}), flush=True)
    for name in a.configs.split(","):
        cfg = R.lm_config(name)
        model = R.build_lm(cfg, 0)
        n_params = R.count_parameters(model)
        rec = R.TokenRecovery("lm", lm=R.LMRecovery(model))
        for loss in (0.0, 1.0, 0.2):
            ms = bench(rec, a.frames, loss, rng)
            print(json.dumps({"figure": "recovery_step_ms", "backend": "lm", "config": name,
                              "parameters": n_params, "device": "cpu", "threads": a.threads,
                              "loss": loss, "ms": round(ms, 2),
                              "note": "0.0: temporal step only; 1.0: every frame lost "
                                      "(temporal + 8 depth steps); random weights"}),
                  flush=True)
        rec.lm.close()
        del rec, model


if __name__ == "__main__":
    main()
