#!/usr/bin/env python3
#
# Copyright 2026 gr-largesc authors.
# SPDX-License-Identifier: GPL-3.0-or-later
#
"""ONNX Runtime as a Mimi encoder backend: measured, not adopted.

Exports the `exact` streaming encoder step (mimi_fast._EncNet: SEANet convs,
transformer with ring KV cache, downsample, RVQ search of --n_q codebooks)
to ONNX with its streaming state as explicit inputs and outputs, runs it one
frame per call in ONNX Runtime's CPU provider (all graph optimisations,
--threads intra-op threads, spinning off), and compares it with the `exact`
step in the same process: ms per frame (median and best after 3 warm-up
calls) and token agreement frame by frame. Prints JSON lines.

ONNX Runtime is not a dependency of the module; to run this:
  .venv/bin/pip install onnxruntime onnx
  .venv/bin/python3 benchmarks/mimi_onnx.py [--frames 40] [--n_q 8] [--threads 2]
Random weights (UNTRAINED): speed and agreement only.
"""

import argparse
import importlib.util
import json
import os
import sys
import tempfile
import time
import warnings

import numpy as np
import torch


def emit(**kw):
    kw.setdefault("load", round(os.getloadavg()[0], 2))
    print(json.dumps(kw), flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=40)
    ap.add_argument("--n_q", type=int, default=8)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--weights", default="random:1")
    a = ap.parse_args()
    missing = [m for m in ("onnx", "onnxruntime") if importlib.util.find_spec(m) is None]
    if missing:      # (torch.onnx.export needs onnx; the session needs onnxruntime)
        emit(figure="mimi_onnx", skipped=f"{', '.join(missing)} not installed: "
             f".venv/bin/pip install onnxruntime onnx")
        return 0
    import onnxruntime as ort
    from gnuradio.largesc.codec import mimi_codec as C
    from gnuradio.largesc.codec import mimi_fast as F
    from gnuradio.largesc.codec import weights as W
    from torch.utils import _pytree as pytree

    torch.set_num_threads(a.threads)
    model, info = W.load_mimi(a.weights)
    n = a.frames + 3
    t = np.arange(n * C.FRAME_SIZE) / C.SAMPLE_RATE
    x = (0.25 * np.sin(2 * np.pi * (150 + 300 * t) * t)
         + 0.05 * np.random.default_rng(0).standard_normal(len(t))).astype(np.float32)
    frames = x.reshape(n, C.FRAME_SIZE)

    # the exact step, measured first (nothing else loaded yet)
    enc = C.MimiStreamingEncoder(model, mode="exact", info=info)
    ref, te = [], []
    for f in frames:
        t0 = time.perf_counter()
        ref.append(enc.encode(f, a.n_q))
        te.append(time.perf_counter() - t0)
    ref = np.concatenate(ref)

    # the same step with plain weights (no oneDNN packing), state in -> state out
    net = F.build_net(F._EncNet, model, packed=False)
    flat, spec = pytree.tree_flatten(net.state())
    n_q = a.n_q

    class Functional(torch.nn.Module):
        def __init__(self, net):
            super().__init__()
            self.net = net

        def forward(self, pcm, *state):
            st = pytree.tree_unflatten([s.clone() for s in state], spec)
            codes = self.net(pcm, st, n_q)
            return (codes,) + tuple(pytree.tree_flatten(st)[0])

    path = os.path.join(tempfile.mkdtemp(prefix="largesc-onnx-"), "mimi_encoder_step.onnx")
    t0 = time.perf_counter()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(Functional(net), (torch.from_numpy(frames[0]).view(1, 1, -1), *flat), path,
                          opset_version=17, dynamo=False,
                          input_names=["pcm"] + [f"state{i}" for i in range(len(flat))],
                          output_names=["codes"] + [f"state_out{i}" for i in range(len(flat))])
    t_export = time.perf_counter() - t0
    so = ort.SessionOptions()
    so.intra_op_num_threads = a.threads
    so.inter_op_num_threads = 1
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    t0 = time.perf_counter()
    sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    t_session = time.perf_counter() - t0
    names = [i.name for i in sess.get_inputs()]
    state = [s.numpy() for s in flat]
    got, to = [], []
    for f in frames:
        feed = {names[0]: f.reshape(1, 1, -1)}
        feed.update(zip(names[1:], state))
        t0 = time.perf_counter()
        out = sess.run(None, feed)
        to.append(time.perf_counter() - t0)
        got.append(out[0][0].T)
        state = out[1:]
    got = np.concatenate(got)

    def ms(ts):
        return round(1000 * float(np.median(ts[3:])), 2), round(1000 * float(np.min(ts[3:])), 2)

    common = dict(threads=a.threads, n_q=a.n_q, frames=a.frames, weights=a.weights,
                  untrained=bool(info.get("untrained")), torch=torch.__version__)
    em, eb = ms(te)
    om, ob = ms(to)
    emit(figure="mimi_encode_ms_per_frame", impl="largesc_exact", median=em, best=eb, **common)
    emit(figure="mimi_encode_ms_per_frame", impl="onnxruntime_cpu", median=om, best=ob,
         onnxruntime=ort.__version__, export_s=round(t_export, 2), session_s=round(t_session, 2),
         token_agreement_vs_exact=round(float((got == ref).mean()), 5), **common)
    return 0


if __name__ == "__main__":
    sys.exit(main())
