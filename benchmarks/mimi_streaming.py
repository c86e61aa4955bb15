#!/usr/bin/env python3
#
# Copyright 2026 gr-largesc authors.
# SPDX-License-Identifier: GPL-3.0-or-later
#
"""Mimi streaming speed on this machine: one JSON line per figure.

ms per 80 ms frame for encode and decode at 1, 2 and 4 frames per call, 1 and
2 torch threads, for our codec modes and the upstream moshi 0.2.13 eager
streaming reference (model.streaming + model.encode/decode) measured in the
same run; cold start (import + model build) and first-frame times; token
agreement and decoded-audio error of each mode against the exact fp32 path.

Weights: random (UNTRAINED, seeded) unless --weights names real ones. Speed
does not depend on the weight values; agreement figures from random weights
understate approximation error (random init scales transformer outputs by
0.01) and say nothing about speech quality.

  .venv/bin/python3 benchmarks/mimi_streaming.py [--frames 30] [--modes eager,exact,fast-int8] [--weights random:1]
Mode "fast" compiles with torch.compile (minutes on 2 cores when the inductor
cache is cold; the cache is on disk, ~/.cache/gr-largesc/inductor); add it to
--modes to measure it. Its first_encode_s / first_decode_s are the cold or
warm compile times (run twice to see both; "compiled" says whether the
compiled step ran or it fell back to "exact").

Timing: each setting runs --frames frames after 3 warm-up calls; ms per frame
is reported as the median and the best (min) call, divided by frames per call.
Run when the machine is otherwise idle; the "load" field is the 1-minute load
average when the setting started (2 cores: above ~1 the figures are inflated).
"""

import argparse
import json
import os
import sys
import time

T_START = time.perf_counter()

import numpy as np  # noqa: E402
import torch  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
try:
    from gnuradio.largesc.codec import mimi_codec as C
    from gnuradio.largesc.codec import weights as W
except ImportError:  # source tree
    sys.path.insert(0, os.path.join(HERE, "..", "python"))
    from largesc import mimi_codec as C, weights as W  # noqa: E402

T_IMPORT = time.perf_counter() - T_START


def emit(**kw):
    kw.setdefault("load", round(os.getloadavg()[0], 2))
    print(json.dumps(kw), flush=True)


def ms(ts, fpc):
    return round(1000 * float(np.median(ts)) / fpc, 2), round(1000 * float(np.min(ts)) / fpc, 2)


def signal(n_frames, seed=0):
    n = n_frames * C.FRAME_SIZE
    t = np.arange(n) / C.SAMPLE_RATE
    rng = np.random.default_rng(seed)
    x = 0.25 * np.sin(2 * np.pi * (150 + 300 * t) * t) + 0.05 * rng.standard_normal(n)
    return x.astype(np.float32)


def timed(fn, chunks, warmup=3):
    """Runs fn on each chunk; returns (outputs, per-call seconds after warmup)."""
    outs, ts = [], []
    for i, c in enumerate(chunks):
        t = time.perf_counter()
        outs.append(fn(c))
        if i >= warmup:
            ts.append(time.perf_counter() - t)
    return outs, ts


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--frames", type=int, default=30, help="timed frames per setting (+ warm-up)")
    ap.add_argument("--modes", default="eager,exact,fast-int8")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--fpc", default="1,2,4")
    ap.add_argument("--weights", default="random:1")
    ap.add_argument("--n_q", type=int, default=8,
                    help="codebooks encoded and decoded, by upstream and by ours alike (1..32)")
    args = ap.parse_args()
    threads = [int(x) for x in args.threads.split(",")]
    fpcs = [int(x) for x in args.fpc.split(",")]
    modes = args.modes.split(",")

    torch.set_num_threads(max(threads))
    t = time.perf_counter()
    model, info = W.load_mimi(args.weights)
    t_load = time.perf_counter() - t
    untrained = bool(info["untrained"])
    common = dict(weights=args.weights, untrained=untrained, cpus=os.cpu_count(),
                  torch=torch.__version__)
    emit(figure="cold_start", import_s=round(T_IMPORT, 3), model_load_s=round(t_load, 3), **common)

    if args.frames < 1 or min(fpcs) < 1:
        ap.error("--frames and every --fpc must be >= 1")
    # a first call and 3 warm-up calls of the largest frames per call, then at
    # least one timed call
    n_frames = max(args.frames, max(fpcs)) + 4 * max(fpcs)
    x = signal(n_frames)
    ref_tokens = C.batch_encode(model, x)                     # exact reference, [T, 32]
    ref_audio = C.batch_decode(model, ref_tokens[:, :args.n_q])

    for nth in threads:
        torch.set_num_threads(nth)
        # upstream moshi eager streaming, one model call per chunk
        for fpc in fpcs:
            chunks = [x[i * C.FRAME_SIZE:(i + fpc) * C.FRAME_SIZE] for i in range(0, n_frames - fpc + 1, fpc)]
            model.set_num_codebooks(args.n_q)
            with torch.inference_mode(), model.streaming(1):
                _, te = timed(lambda c: model.encode(torch.from_numpy(c).view(1, 1, -1)), chunks)
            codes = torch.as_tensor(ref_tokens[:, :args.n_q]).T[None]
            cchunks = [codes[:, :, i:i + fpc] for i in range(0, n_frames - fpc + 1, fpc)]
            with torch.inference_mode(), model.streaming(1):
                _, td = timed(lambda c: model.decode(c), cchunks)
            model.set_num_codebooks(C.N_CODEBOOKS)
            (em, eb), (dm, db) = ms(te, fpc), ms(td, fpc)
            emit(figure="ms_per_frame", impl="upstream_moshi_eager", threads=nth, frames_per_call=fpc, n_q=args.n_q,
                 encode_ms=em, decode_ms=dm, encode_ms_best=eb, decode_ms_best=db, **common)
        for mode in modes:
            for fpc in fpcs:
                t = time.perf_counter()
                enc = C.MimiStreamingEncoder(model, mode=mode, info=info)
                dec = C.MimiStreamingDecoder(model, mode=mode, info=info)
                t_setup = time.perf_counter() - t
                chunks = [x[i * C.FRAME_SIZE:(i + fpc) * C.FRAME_SIZE] for i in range(0, n_frames - fpc + 1, fpc)]
                t = time.perf_counter()
                first_tok = enc.encode(chunks[0], args.n_q)
                t_first_enc = time.perf_counter() - t
                toks, te = timed(lambda c: enc.encode(c, args.n_q), chunks[1:])
                toks = np.concatenate([first_tok] + toks)
                tchunks = [ref_tokens[i:i + fpc, :args.n_q] for i in range(0, n_frames - fpc + 1, fpc)]
                t = time.perf_counter()
                first_pcm = dec.decode(tchunks[0])
                t_first_dec = time.perf_counter() - t
                pcm, td = timed(dec.decode, tchunks[1:])
                pcm = np.concatenate([first_pcm] + pcm)
                enc.close()
                dec.close()
                n = len(toks)
                agree_k = float((toks == ref_tokens[:n, :args.n_q]).mean())
                err = float(np.abs(pcm - ref_audio[:len(pcm)]).max())
                (em, eb), (dm, db) = ms(te, fpc), ms(td, fpc)
                extra = {}
                if enc._fast is not None:
                    extra["compiled"] = bool(enc._fast.compiled and dec._fast.compiled)
                emit(figure="ms_per_frame", impl=f"largesc_{mode}", threads=nth, frames_per_call=fpc,
                     encode_ms=em, decode_ms=dm, encode_ms_best=eb, decode_ms_best=db, **extra,
                     setup_s=round(t_setup, 3), first_encode_s=round(t_first_enc, 3),
                     first_decode_s=round(t_first_dec, 3),
                     n_q=args.n_q, token_agreement=round(agree_k, 5),
                     audio_max_abs_err=err, audio_ref_peak=float(np.abs(ref_audio).max()), **common)


if __name__ == "__main__":
    main()
