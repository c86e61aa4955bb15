#!/usr/bin/env python3
#
# Copyright 2026 gr-largesc authors.
# SPDX-License-Identifier: GPL-3.0-or-later
#
"""Times one token-recovery step of a randomly initialised Moshi-7B-sized
LMModel (moshi 0.2.13 config, bf16) on a CUDA GPU: the temporal step alone
(every token received) and the temporal step plus all 8 depth steps (a lost
frame). Target (system brief): <= 40 ms per step. Timing only: quality needs
the real weights. Without a GPU it prints one JSON line saying it skipped.

  .venv/bin/python3 benchmarks/recovery_gpu.py [--frames 50] [--config moshi7b]
"""

import argparse
import json
import time

import numpy as np
import torch

from gnuradio.largesc import recovery as R


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--frames", type=int, default=50)
    ap.add_argument("--config", default="moshi7b")
    a = ap.parse_args()
    if not torch.cuda.is_available():
        print(json.dumps({"figure": "recovery_gpu_step_ms", "skipped": True,
                          "reason": "no CUDA GPU on this machine; run on a machine with one "
                                    "(about 16 GB for the random bf16 7B model)"}))
        return
    cfg = R.lm_config(a.config)
    t0 = time.perf_counter()
    with torch.device("cuda"):
        torch.manual_seed(0)
        from moshi.models.lm import LMModel
        model = LMModel(device="cuda", dtype=torch.bfloat16, **cfg).eval()
    build_s = time.perf_counter() - t0
    n_params = R.count_parameters(model)
    rec = R.TokenRecovery("lm", lm=R.LMRecovery(model, text_token=3, feed_back="predicted"))
    rng = np.random.default_rng(0)
    tok = rng.integers(0, 2048, (a.frames, 8))
    for loss in (0.0, 1.0):
        mask = np.full((a.frames, 8), 0 if loss else 1, dtype=np.uint8)
        rec.reset()
        for t in range(5):
            rec.push(tok[t], mask[t])
        torch.cuda.synchronize()
        rec.reset()
        times = []
        for t in range(a.frames):
            t1 = time.perf_counter()
            rec.push(tok[t], mask[t])
            torch.cuda.synchronize()
            times.append(time.perf_counter() - t1)
        rec.flush()
        print(json.dumps({"figure": "recovery_gpu_step_ms", "config": a.config,
                          "parameters": n_params, "dtype": "bfloat16",
                          "device": torch.cuda.get_device_name(0), "loss": loss,
                          "ms_median": round(1e3 * float(np.median(times)), 2),
                          "ms_p90": round(1e3 * float(np.percentile(times, 90)), 2),
                          "build_s": round(build_s, 1), "eager": True,
                          "note": "random weights; 0.0 = temporal step only, 1.0 = temporal + "
                                  "8 depth steps"}), flush=True)


if __name__ == "__main__":
    main()
