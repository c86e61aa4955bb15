#!/usr/bin/env python3
#
# Copyright 2026 gr-largesc authors.
# SPDX-License-Identifier: GPL-3.0-or-later
#
"""One GPU check for issue 11, items 1-4, printing JSON lines (one per figure,
moshi's own figure beside ours where there is one). Random weights: timing
only, never quality.

  1 recovery_step   LMRecovery (masked step, CUDA graphs on CUDA) per frame at
                    token loss 0, 20 % i.i.d., 20 % Gilbert-Elliott frames
                    (burst 3), 100 %: median / p99 ms, plus whether its greedy
                    tokens equal EagerLMRecovery's (the old path) on the same
                    frames; lmgen_step: moshi's LMGen.step on the same model
                    (all codebooks generated, and depth tokens given).
  2 mimi            moshi's Mimi, streaming, one frame per call, encode / decode
                    ms, beside this module's codec classes ("exact": CUDA
                    graphs on CUDA; "eager": upstream modules) on the same
                    device, weights and audio, with 8 and 32 codebooks; each
                    says whether its tokens equal moshi's frame for frame.
  3 rx_chain        encoder -> Gilbert-Elliott frame loss 20 %, burst 3 ->
                    recovery -> decoder (this module's exact-mode Mimi), paced at 12.5 frames/s: per-frame
                    processing p50/p99/max, frames late, mic-to-speaker latency
                    (algorithmic + p99 processing). The packetizer /
                    depacketizer cores are C++ bound into gnuradio's runtime,
                    which the GPU machine lacks: they are left out (their CPU
                    cost is microseconds: benchmarks/packet_path.py); synthetic
                    audio (no speech corpus there).
  4 lora_finetune   LoRA (rank 16) on the model, 20 AdamW steps on synthetic
                    tokens, adapter saved, re-applied to the base (resume),
                    peak GPU memory, steps/s.

  python3 benchmarks/gpu_check.py                 # moshi7b, bf16, CUDA (< 6 min on an H200)
  python3 benchmarks/gpu_check.py --write-speech build/gpu_speech.wav   # build machine: LibriVox
                                                  # demo speech for item 3 (--speech FILE)
  python3 benchmarks/gpu_check.py --tiny --cpu    # tiny configs, random weights, CPU (the QA test)

Without a CUDA GPU (and without --cpu) it prints {"skipped": "no CUDA GPU"}
and exits 0.

Imports: the scheduler-free cores are loaded from python/largesc through a
stub package (no gnuradio needed). moshi: `import moshi` if it is installed;
otherwise the moshi package directory given by $LARGESC_MOSHI_DIR or found at
.venv/lib/python3*/site-packages/moshi (moshi is pure Python) is put on the
path alone (a temporary directory holding a link to it), never the venv's
other packages. On the GPU machine (torch, numpy 2, no gnuradio, no moshi)
carry the moshi package, e.g. with the device tool:
  run(command="python3 benchmarks/gpu_check.py --speech build/gpu_speech.wav",
      carry=[".venv/lib/python3.11/site-packages/moshi", "build/gpu_speech.wav"], timeout_s=480)
(or pip install the moshi 0.2.13 wheel --no-deps --target DIR and set
PYTHONPATH=DIR, see ../shared/notes/gpu-device.md).
"""

import argparse
import glob
import json
import os
import sys
import tempfile
import time
import types
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
FRAME_S = 0.08


def emit(**kw):
    print(json.dumps(kw), flush=True)


def find_moshi():
    try:
        import moshi  # noqa: F401
        return "installed"
    except ImportError:
        pass
    cands = [os.environ.get("LARGESC_MOSHI_DIR", "")]
    cands += sorted(glob.glob(str(ROOT / ".venv" / "lib" / "python3*" / "site-packages" / "moshi")))
    for c in cands:
        if c and (Path(c) / "__init__.py").exists():
            d = tempfile.mkdtemp(prefix="gpu_check_moshi_")
            os.symlink(os.path.abspath(c), os.path.join(d, "moshi"))
            sys.path.insert(0, d)
            import moshi  # noqa: F401
            return c
    raise SystemExit("moshi not found: install it, set LARGESC_MOSHI_DIR, or carry "
                     ".venv/lib/python3.11/site-packages/moshi")


def load_cores():
    """python/largesc's scheduler-free modules as package 'largesc_cores'
    (the package __init__, which needs gnuradio, is never run)."""
    pkg = types.ModuleType("largesc_cores")
    pkg.__path__ = [str(ROOT / "python" / "largesc")]
    sys.modules["largesc_cores"] = pkg
    import importlib
    return types.SimpleNamespace(**{m: importlib.import_module("largesc_cores." + path)
                                    for m, path in (("recovery", "recovery"), ("mimi_codec", "codec.mimi_codec"),
                                                    ("weights", "codec.weights"), ("finetune", "recovery.finetune"))})


def write_speech(path):
    """Writes the Debian LibriVox demo clips (real speech, 16 kHz), joined, as
    a 16-bit PCM WAV that the GPU machine (no speech corpus, no soundfile)
    can read with the standard library: the input of item 3's chain."""
    from gnuradio.largesc.eval import speech as S    # the installed module (build machine)
    x, _ = S.demo_speech(16000)
    import wave
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes((np.clip(x, -1, 1) * 32767).astype("<i2").tobytes())
    return len(x) / 16000


def read_speech(path, seconds, M):
    """A 16-bit PCM mono WAV at any supported rate -> float32 at 24 kHz,
    looped to `seconds`, through the codec's own frame resampler."""
    import wave
    with wave.open(str(path), "rb") as w:
        if w.getnchannels() != 1 or w.getsampwidth() != 2:
            raise SystemExit(f"--speech {path}: need a mono 16-bit PCM WAV")
        rate = w.getframerate()
        x = np.frombuffer(w.readframes(w.getnframes()), "<i2").astype(np.float32) / 32768
    n_in = int(round(rate * FRAME_S))
    T = int(round(seconds / FRAME_S))
    reps = -(-T * n_in // len(x))
    x = np.tile(x, reps)[:T * n_in]
    return M.FrameResampler(rate, 24000).process(x), len(x) / rate


def stats(ms):
    ms = np.asarray(ms)
    return dict(ms_median=round(float(np.median(ms)), 3), ms_p99=round(float(np.percentile(ms, 99)), 3),
                ms_max=round(float(ms.max()), 3))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tiny", action="store_true", help="tiny configs (small100m layout, tiny sizes)")
    ap.add_argument("--cpu", action="store_true", help="run on the CPU (with --tiny: the QA test)")
    ap.add_argument("--frames", type=int, default=0, help="timed frames per loss pattern")
    ap.add_argument("--chain-seconds", type=float, default=0, help="rx chain audio length")
    ap.add_argument("--speech", default="", help="item 3 input: mono 16-bit PCM WAV of speech, looped "
                    "to --chain-seconds (default: a synthetic tone; see --write-speech)")
    ap.add_argument("--write-speech", default="", metavar="WAV",
                    help="write the LibriVox demo speech to WAV (on the build machine) and exit")
    a = ap.parse_args()
    if a.write_speech:
        emit(what="speech_written", file=a.write_speech, seconds=round(write_speech(a.write_speech), 2))
        return 0
    import torch
    if not a.cpu and not torch.cuda.is_available():
        emit(skipped="no CUDA GPU")
        return 0
    t_start = time.perf_counter()
    moshi_at = find_moshi()
    C = load_cores()
    R = C.recovery
    dev = torch.device("cpu" if a.cpu else "cuda")
    dtype = torch.float32 if a.cpu else torch.bfloat16
    frames = a.frames or (12 if a.tiny else 100)
    chain_s = a.chain_seconds or (2.0 if a.tiny else 60.0)
    if a.cpu:
        torch.set_num_threads(1)

    def sync():
        if dev.type == "cuda":
            torch.cuda.synchronize()

    if a.tiny:
        cfg = R.lm_config(dict(R.PRESETS["small100m"], dim=64, num_heads=4, num_layers=2,
                               hidden_scale=4, context=64, depformer_dim=64,
                               depformer_dim_feedforward=256, depformer_num_heads=4))
        name = "tiny(small100m layout)"
    else:
        cfg, name = R.lm_config("moshi7b"), "moshi7b"
    emit(what="setup", device=torch.cuda.get_device_name(0) if dev.type == "cuda" else "cpu",
         torch=torch.__version__, numpy=np.__version__, moshi=moshi_at, config=name,
         dtype=str(dtype).replace("torch.", ""))
    t0 = time.perf_counter()
    model = R.build_lm(cfg, 0, device=dev, dtype=dtype)
    sync()
    emit(what="build", parameters=R.count_parameters(model), s=round(time.perf_counter() - t0, 2))
    dq = int(cfg["dep_q"])
    rng = np.random.default_rng(0)

    # 1 -- recovery step beside LMGen.step
    for kind in ("none", "iid20", "ge20", "all"):
        n_cmp = 8 if a.tiny else 16
        tok = rng.integers(0, 2048, (frames + 5, dq))
        m = R.loss_pattern(kind, frames + 5, dq, rng)
        lm = R.LMRecovery(model, text_token=3, feed_back="predicted")
        rec = R.TokenRecovery("lm", lm=lm)
        for t in range(5):                      # warm-up (graph capture)
            rec.push(tok[t], m[t])
        rec.reset()
        times = []
        for t in range(frames):
            sync()
            t1 = time.perf_counter()
            rec.push(tok[t], m[t])
            sync()
            times.append(1e3 * (time.perf_counter() - t1))
        rec.flush()
        new, _ = rec.recover_sequence(tok[:n_cmp], m[:n_cmp])
        lm.close()
        ref = R.TokenRecovery("lm", lm=R.EagerLMRecovery(model, text_token=3, feed_back="predicted"))
        old, _ = ref.recover_sequence(tok[:n_cmp], m[:n_cmp])
        ref.lm.close()
        emit(what="recovery_step", loss=kind, frames=frames, cuda_graphs=lm.cuda_graphs,
             equal_to_eager=bool(np.array_equal(new, old)), compared_frames=n_cmp,
             target="H200 moshi7b bf16: median <= 11 ms, p99 <= 14 ms", **stats(times))

    from moshi.models.lm import LMGen
    gen = LMGen(model, use_sampling=False)
    need = int(model.num_codebooks) - dq - 1
    with gen.streaming(1):
        for replace in (False, True):
            times = []
            for t in range(frames + 5):
                inp = torch.randint(0, 2048, (1, need, 1), device=dev)
                rep = torch.randint(0, 2048, (1, dq, 1), device=dev) if replace else None
                sync()
                t1 = time.perf_counter()
                gen.step(inp, rep)
                sync()
                if t >= 5:
                    times.append(1e3 * (time.perf_counter() - t1))
            emit(what="lmgen_step", depth_tokens_given=replace, frames=frames,
                 note="moshi's LMGen.step (CUDA graphs on CUDA), same model, greedy", **stats(times))
    del gen
    sync()

    # 2 -- Mimi: moshi's own streaming beside this module's codec classes on
    # the same device, weights and audio (tokens compared frame by frame)
    M = C.mimi_codec
    mimi, info = C.weights.load_mimi("random", device=str(dev))
    n_mimi = 10 if a.tiny else 100
    tt = np.arange((n_mimi + 3) * 1920) / 24000
    xm = (0.2 * np.sin(2 * np.pi * (150 + 300 * tt) * tt)
          + 0.03 * np.random.default_rng(1).standard_normal(len(tt))).astype(np.float32)
    ref_tok = {}
    for nq in (8, 32):
        mimi.set_num_codebooks(nq)
        te, td, toks = [], [], []
        with torch.inference_mode(), mimi.streaming(1):
            for t in range(n_mimi + 3):
                pcm = torch.from_numpy(xm[t * 1920:(t + 1) * 1920]).to(dev).view(1, 1, -1)
                sync()
                t1 = time.perf_counter()
                codes = mimi.encode(pcm)
                sync()
                t2 = time.perf_counter()
                mimi.decode(codes)
                sync()
                toks.append(codes[0, :, 0].cpu().numpy())
                if t >= 3:
                    te.append(1e3 * (t2 - t1))
                    td.append(1e3 * (time.perf_counter() - t2))
        ref_tok[nq] = np.stack(toks)
        emit(what="mimi", impl="moshi streaming (eager)", n_q=nq, encode=stats(te), decode=stats(td))
    mimi.set_num_codebooks(32)
    for mode in ("exact", "eager"):
        for nq in (8, 32):
            try:
                enc, dec = M.MimiStreamingEncoder(mimi, mode, info), M.MimiStreamingDecoder(mimi, mode, info)
                te, td, toks = [], [], []
                for t in range(n_mimi + 3):
                    sync()
                    t1 = time.perf_counter()
                    tk = enc.encode(xm[t * 1920:(t + 1) * 1920], nq)
                    sync()
                    t2 = time.perf_counter()
                    dec.decode(tk)
                    sync()
                    toks.append(tk[0])
                    if t >= 3:
                        te.append(1e3 * (t2 - t1))
                        td.append(1e3 * (time.perf_counter() - t2))
                graphs = bool(enc._fast is not None and enc._fast.cuda_graphs)
                enc.close()
                dec.close()
                same = np.stack(toks) == ref_tok[nq]
                emit(what="mimi", impl=f"largesc {mode}", n_q=nq, device=str(dev), cuda_graphs=graphs,
                     tokens_equal_moshi=bool(same.all()), token_match=round(float(same.mean()), 5),
                     target="H200, one frame per call: encode <= 3 ms, decode <= 2 ms",
                     encode=stats(te), decode=stats(td))
            except Exception as e:
                emit(what="mimi", impl=f"largesc {mode}", n_q=nq, error=f"{type(e).__name__}: {e}"[:300])

    # 3 -- receive chain, paced at 12.5 frames/s, through this module's codec
    T = int(round(chain_s / FRAME_S))
    sr = 24000
    if a.speech:
        audio, _ = read_speech(a.speech, chain_s, M)
        source = f"speech {os.path.basename(a.speech)}, looped"
    else:
        tt = np.arange(T * 1920) / sr
        audio = (0.2 * np.sin(2 * np.pi * 220 * tt) * (1 + 0.5 * np.sin(2 * np.pi * 3 * tt))
                 + 0.02 * np.random.default_rng(2).standard_normal(len(tt))).astype(np.float32)
        source = "synthetic tone"
    m = R.loss_pattern("ge20", T, 8, np.random.default_rng(3))
    lm = R.LMRecovery(model, text_token=3, feed_back="predicted")
    rec = R.TokenRecovery("lm", lm=lm)
    proc, late, chain_err = [], 0, None
    try:
        enc, dec = M.MimiStreamingEncoder(mimi, "exact", info), M.MimiStreamingDecoder(mimi, "exact", info)
        t_next = time.perf_counter()
        for t in range(T):
            t_next += FRAME_S
            t1 = time.perf_counter()
            tok = enc.encode(audio[t * 1920:(t + 1) * 1920], 8)[0]
            for f in rec.push(tok, m[t]):
                dec.decode(np.asarray(f.tokens, dtype=np.int64)[None])
            sync()
            dt = time.perf_counter() - t1
            proc.append(1e3 * dt)
            if time.perf_counter() > t_next + 1e-3:
                late += 1
            wait = t_next - time.perf_counter()
            if wait > 0:
                time.sleep(wait)
        for f in rec.flush():
            dec.decode(np.asarray(f.tokens, dtype=np.int64)[None])
        enc.close()
        dec.close()
    except Exception as e:
        chain_err = f"{type(e).__name__}: {e}"[:300]
    lm.close()
    if chain_err:
        emit(what="rx_chain", error=chain_err)
    else:
        s = stats(proc)
        alg = 1e3 * FRAME_S * (1 + lm.latency_frames)      # one frame of audio + recovery delay
        emit(what="rx_chain", seconds=chain_s, frames=T, loss="ge20 frames, burst 3",
             frames_late=late, latency_ms=round(alg + s["ms_p99"], 1), algorithmic_ms=alg, audio=source,
             packet_cores="left out (C++ cores need gnuradio's runtime)",
             codec="largesc Mimi exact mode (random weights)", goal="no frame late, latency <= 300 ms",
             **{"processing_" + k: v for k, v in s.items()})
    del mimi

    # 4 -- LoRA finetune, 20 steps, resume
    F = C.finetune
    steps, B, L = 20, (2 if a.tiny else 8), (16 if a.tiny else 64)
    R.add_lora(model, 16)
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-3)
    seqs = F.synthetic_tokens(B, L, dq, seed=0)
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    sync()
    t1 = time.perf_counter()
    mrng = np.random.default_rng(4)
    losses = []
    for step in range(steps):
        toks = np.stack([np.asarray(s)[:L, :dq] for s in seqs]).astype(np.int64)
        mask = (mrng.random(toks.shape) >= 0.2).astype(np.uint8)
        codes = F.model_input(toks, mask, cfg, -1).to(dev)
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=dev.type == "cuda"):
            logits = model(codes).logits                            # [B, dq, T, card]
        target = torch.from_numpy(toks).permute(0, 2, 1).to(dev)
        valid = torch.isfinite(logits[..., 0])
        ce = torch.nn.functional.cross_entropy(torch.nan_to_num(logits).float().reshape(-1, 2048),
                                               target.reshape(-1), reduction="none").view_as(target)
        loss = (ce * valid).sum() / valid.sum().clamp_min(1)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    sync()
    train_s = time.perf_counter() - t1
    peak = torch.cuda.max_memory_allocated() / 2**30 if dev.type == "cuda" else None
    model.eval()
    d = tempfile.mkdtemp(prefix="gpu_check_lora_")
    ad = os.path.join(d, "adapter.safetensors")
    R.save_adapter(model, ad, cfg, 16, 2.0)
    base = R.build_lm(cfg, 0, device=dev, dtype=dtype)
    resumed = True
    try:
        R.apply_adapter(base, cfg, ad, 16)
    except Exception as e:
        resumed = f"{type(e).__name__}: {e}"[:200]
    emit(what="lora_finetune", steps=steps, batch=B, seq_len=L, rank=16,
         steps_per_s=round(steps / train_s, 2), loss_first=round(losses[0], 3),
         loss_last=round(losses[-1], 3), peak_gpu_gib=None if peak is None else round(peak, 1),
         adapter_reapplied=resumed)
    emit(what="done", total_s=round(time.perf_counter() - t_start, 1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
