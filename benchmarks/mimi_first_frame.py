#!/usr/bin/env python3
#
# Copyright 2026 gr-largesc authors.
# SPDX-License-Identifier: GPL-3.0-or-later
#
"""Start-up time of a Mimi flowgraph: how long until the first decoded audio.

Runs, in this (fresh) process, the flowgraph
    vector_source (3 s of a chirp at --rate) -> mimi_encoder -> mimi_decoder -> timing sink
and prints one JSON line with the time from process start to imports done,
to both blocks built (weights loaded, codec step built), and from tb.start()
to the first decoded sample reaching the sink (for mode "fast" this includes
torch.compile: cold or warm cache, see docs/mimi.md), plus the total from
process start. Run it once per mode in a new process:

  .venv/bin/python3 benchmarks/mimi_first_frame.py [--mode exact] [--weights random:1] [--threads 2]

Target (issue 3): flowgraph start to first decoded frame <= 10 s when a
compile cache exists. Random weights are UNTRAINED (speed only); with a real
checkpoint pass --weights /path/to/model.safetensors or hf.
"""

import time

T0 = time.perf_counter()

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import threading  # noqa: E402

import numpy as np  # noqa: E402
from gnuradio import blocks, gr  # noqa: E402

from gnuradio import largesc  # noqa: E402

T_IMPORT = time.perf_counter() - T0


class first_sample_sink(gr.sync_block):
    """Notes the time its first sample arrives and counts samples."""

    def __init__(self):
        gr.sync_block.__init__(self, "first_sample_sink", in_sig=[np.float32], out_sig=None)
        self.t_first = None
        self.n = 0
        self.got = threading.Event()

    def work(self, input_items, output_items):
        if self.t_first is None and len(input_items[0]):
            self.t_first = time.perf_counter()
            self.got.set()
        self.n += len(input_items[0])
        return len(input_items[0])


def compiled(block, mode):
    """Mode fast: did the compiled step run (or did it fall back to exact)?
    None for the uncompiled modes."""
    return bool(block.codec._fast.compiled) if mode == "fast" else None


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mode", default="exact", choices=["eager", "exact", "fast", "fast-int8"])
    ap.add_argument("--weights", default="random:1")
    ap.add_argument("--rate", type=int, default=16000)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--timeout", type=float, default=900.0)
    a = ap.parse_args()

    seconds = 3.0
    t = np.arange(int(seconds * a.rate)) / a.rate
    audio = (0.25 * np.sin(2 * np.pi * (150 + 300 * t) * t)).astype(np.float32)

    t1 = time.perf_counter()
    tb = gr.top_block()
    src = blocks.vector_source_f(audio.tolist(), False)
    enc = largesc.mimi_encoder(a.rate, 8, a.weights, "cpu", a.threads, 1, a.mode)
    dec = largesc.mimi_decoder(a.rate, a.weights, "cpu", a.threads, 1, a.mode)
    snk = first_sample_sink()
    tb.connect(src, enc)
    tb.msg_connect((enc, "out"), (dec, "in"))
    tb.connect(dec, snk)
    t_build = time.perf_counter() - t1

    t2 = time.perf_counter()
    tb.start()
    ok = snk.got.wait(a.timeout)
    t_first = (snk.t_first - t2) if ok else None
    tb.wait()
    t_all = time.perf_counter() - t2
    spf = int(round(a.rate * 0.08))
    expected = (len(audio) // spf) * spf     # whole frames only
    print(json.dumps({
        "figure": "mimi_first_frame", "mode": a.mode, "weights": a.weights,
        "untrained": a.weights.startswith("random"), "threads": a.threads, "rate": a.rate,
        "import_s": round(T_IMPORT, 3), "build_blocks_s": round(t_build, 3),
        "start_to_first_decoded_s": None if t_first is None else round(t_first, 3),
        "process_start_to_first_decoded_s": None if t_first is None else round(snk.t_first - T0, 3),
        "compiled": {"encoder": compiled(enc, a.mode), "decoder": compiled(dec, a.mode)},
        "run_3s_audio_s": round(t_all, 3), "samples_out": snk.n, "samples_expected": expected,
        "target_start_to_first_s": 10, "load": round(os.getloadavg()[0], 2)}), flush=True)
    if snk.n != expected:
        raise SystemExit(f"sample count {snk.n} != {expected}")


if __name__ == "__main__":
    main()
