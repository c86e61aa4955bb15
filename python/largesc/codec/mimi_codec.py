#
# Copyright 2026 gr-largesc authors.
# SPDX-License-Identifier: GPL-3.0-or-later
#
"""Scheduler-free streaming Mimi codec: the logic the mimi_encoder and
mimi_decoder blocks wrap, usable directly from simulations and benchmarks.

Shapes: audio is float32 mono at 24 kHz, one frame = FRAME_SIZE = 1920
samples (80 ms). Tokens are int64 arrays [T, K]: T frames, codebook k in
column k (0 = semantic, 1.. acoustic).

MimiStreamingEncoder.encode(pcm, n_q=32) pcm [T*1920] -> tokens [T, n_q]
MimiStreamingDecoder.decode(tokens, present=None) tokens [T, K] (K <= 32),
                                     present [T, K] bool (False = codebook
                                     absent, contributes nothing) -> pcm [T*1920]
FrameResampler                       24 kHz <-> other rates with an exact,
                                     fixed number of samples per frame.

mode selects the implementation of the streaming step:
  "eager"  upstream moshi modules, fp32, uncompiled: the reference path.
  "exact"  mimi_fast.py's rewrite of the step (every conv/linear one matrix
           product on pre-arranged weights, no compile), fp32: same tokens as
           "eager", audio within float rounding (~1e-7).
  "fast"   "exact" under torch.compile (on-disk inductor cache; falls back to
           "exact" where compiling fails). Same tokens.
  "fast-int8"  "exact" with int8 dynamic quantisation of the transformer's
           linears. Approximate (tokens differ). CPU only.

Device: the codec runs where its model is (weights.load_mimi(device=...):
cpu, cuda, cuda:N, or auto = cuda when torch sees a GPU). Audio and tokens
cross to the device once per call and come back as numpy arrays. On CUDA the
"exact" step runs as a CUDA graph per frames-per-call value (mimi_fast;
LARGESC_MIMI_CUDA_GRAPH=0 turns graphs off).
"""

from __future__ import annotations

import math
import time
from contextlib import ExitStack
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from . import weights as W

if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path

    import numpy.typing as npt
    from moshi.models.compression import MimiModel

    from .mimi_fast import FastDecoder, FastEncoder

SAMPLE_RATE = W.SAMPLE_RATE
FRAME_RATE = W.FRAME_RATE
FRAME_SIZE = W.FRAME_SIZE
N_CODEBOOKS = W.N_CODEBOOKS
CARDINALITY = W.CARDINALITY
FRAME_SECONDS = 0.08
SUPPORTED_RATES = (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000, 96000)
MODES = ("eager", "exact", "fast", "fast-int8")
SILENCE_DB = -120.0


def check_rate(rate: float) -> int:
    """Returns rate as int; ValueError for a rate outside SUPPORTED_RATES."""
    try:
        r = int(rate)
    except (TypeError, ValueError):
        raise ValueError(f"sample rate {rate!r} is not a number")
    if r != rate or r not in SUPPORTED_RATES:
        raise ValueError(f"unsupported sample rate {rate!r} Hz: use one of "
                         f"{', '.join(str(x) for x in SUPPORTED_RATES)} (80 ms must be a whole "
                         f"number of samples)")
    return r


def check_n_q(n_q: int) -> int:
    if isinstance(n_q, bool) or int(n_q) != n_q or not 1 <= int(n_q) <= N_CODEBOOKS:
        raise ValueError(f"number of codebooks must be an integer in 1..{N_CODEBOOKS}, got {n_q!r}")
    return int(n_q)


def samples_per_frame(rate: float) -> int:
    return int(round(check_rate(rate) * FRAME_SECONDS))


def set_threads(threads: int | None) -> None:
    """Sets torch's intra-op thread count (process-wide); 0 or None keeps it."""
    if threads:
        if int(threads) < 1:
            raise ValueError(f"threads must be >= 1 (or 0 = leave as is), got {threads!r}")
        torch.set_num_threads(int(threads))


def frame_energy_db(frames: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """RMS level per frame in dBFS (1.0 full scale); SILENCE_DB for digital silence.
    frames: [T, N] float."""
    ms = np.mean(np.asarray(frames, dtype=np.float64) ** 2, axis=-1)
    with np.errstate(divide="ignore"):
        db = 10.0 * np.log10(ms)
    return np.maximum(db, SILENCE_DB)


class FrameResampler:
    """Streaming rational resampler with a fixed number of output samples per
    input frame: in_frame samples at in_rate -> out_frame samples at out_rate,
    exactly, every call (no drift, no edge loss). Kaiser-windowed sinc,
    `half_taps` input samples each side, group delay half_taps input samples
    (plus the decimation filter's own), DC gain 1. Identity when rates match."""

    in_rate: int
    out_rate: int
    n_in: int
    n_out: int
    identity: bool
    half: int
    idx: npt.NDArray[np.int64]
    h: npt.NDArray[np.float32]
    hist: npt.NDArray[np.float32]

    def __init__(self, in_rate: int, out_rate: int, frame_seconds: float = FRAME_SECONDS, half_taps: int = 16,
                 beta: float = 8.0) -> None:
        self.in_rate, self.out_rate = int(in_rate), int(out_rate)
        self.n_in = int(round(in_rate * frame_seconds))
        self.n_out = int(round(out_rate * frame_seconds))
        self.identity = self.in_rate == self.out_rate
        if self.identity:
            return
        ratio = self.out_rate / self.in_rate
        # filter support in input samples: widen it when decimating
        fc = 0.5 * min(1.0, ratio) * 0.92          # cycles per input sample
        half = int(math.ceil(half_taps / min(1.0, ratio)))
        self.half = half
        t = np.arange(self.n_out) * (self.in_rate / self.out_rate)   # output times, input units
        base = np.floor(t).astype(np.int64)
        offs = np.arange(-half + 1, half + 1)
        idx = base[:, None] + offs[None, :]                          # [n_out, 2*half]
        d = t[:, None] - idx
        win = np.i0(beta * np.sqrt(np.clip(1.0 - (d / (half + 1)) ** 2, 0.0, 1.0))) / np.i0(beta)
        h = 2 * fc * np.sinc(2 * fc * d) * win
        h /= h.sum(axis=1, keepdims=True)
        # causal: output n of this frame uses inputs up to base+half -> shift by `half`
        self.idx = (idx + half).astype(np.int64)        # into buffer [history(2*half) + frame]
        self.h = h.astype(np.float32)
        self.hist = np.zeros(2 * half, dtype=np.float32)

    @property
    def delay_seconds(self) -> float:
        return 0.0 if self.identity else self.half / self.in_rate

    def reset(self) -> None:
        if not self.identity:
            self.hist[:] = 0

    def process(self, x: npt.ArrayLike) -> npt.NDArray[np.float32]:
        """x: [k * n_in] float32 -> [k * n_out] float32."""
        x = np.asarray(x, dtype=np.float32)
        if len(x) % self.n_in:
            raise ValueError(f"input length {len(x)} is not a multiple of {self.n_in}")
        if self.identity:
            return x.copy()
        out = np.empty(len(x) // self.n_in * self.n_out, dtype=np.float32)
        for f in range(len(x) // self.n_in):
            buf = np.concatenate([self.hist, x[f * self.n_in:(f + 1) * self.n_in]])
            out[f * self.n_out:(f + 1) * self.n_out] = np.einsum("ij,ij->i", buf[self.idx], self.h)
            self.hist = buf[-len(self.hist):].copy()
        return out


def _streaming_stack(modules, what):
    """Puts `modules` in streaming mode (batch 1). One streaming encoder and one
    streaming decoder can share a model; two encoders (or two decoders) cannot."""
    if any(m.is_streaming for m in modules):
        raise RuntimeError(f"this Mimi model already drives another streaming {what}: "
                           f"close() it first or load a second model")
    stack = ExitStack()
    for m in modules:
        stack.enter_context(m.streaming(1))
    return stack


class _StreamingCodec:
    """What the streaming encoder and decoder share: the mode (eager = upstream
    moshi in streaming mode; the other modes run mimi_fast's step), the
    weights info, reset and close."""
    _fast_class: str | None = None

    model: MimiModel
    mode: str
    device: torch.device
    info: dict[str, Any]
    frames: int
    _stack: ExitStack | None
    _fast: FastEncoder | FastDecoder | None

    def __init__(self, model: MimiModel, mode: str = "eager", info: Mapping[str, Any] | None = None) -> None:
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}: use one of {MODES}")
        self.model = model
        self.mode = mode
        self.device = next(model.parameters()).device
        self.info = dict(info or {})
        self.frames = 0
        self._stack = None
        self._fast = None
        if mode != "eager":
            from . import mimi_fast
            self._fast = getattr(mimi_fast, self._fast_class)(model, mode)
        self.reset()

    @property
    def untrained(self) -> bool:
        return bool(self.info.get("untrained", False))

    def reset(self) -> None:
        self.frames = 0
        if self._fast is not None:
            self._fast.reset()
            return
        self.close()
        self._stack = _streaming_stack(*self._stack_modules())

    def close(self) -> None:
        """Leaves streaming mode (the model can then serve another codec)."""
        if getattr(self, "_stack", None) is not None:
            self._stack.close()
            self._stack = None

    def __del__(self) -> None:
        self.close()


class MimiStreamingEncoder(_StreamingCodec):
    """Streaming Mimi encoder: whole 80 ms frames of 24 kHz audio in, the
    first n_q codebooks' tokens out (RVQ is residual: the first K of 32 equal a
    K-codebook encode). State persists across calls until reset()."""

    _fast_class = "FastEncoder"

    def _stack_modules(self):
        m = self.model
        return [m.encoder, m.encoder_transformer, m.downsample.conv], "encoder"

    def encode(self, pcm: npt.ArrayLike, n_q: int = N_CODEBOOKS) -> npt.NDArray[np.int64]:
        """pcm: float32 [T * 1920] at 24 kHz (T >= 1) -> int64 tokens [T, n_q].

        Only the first n_q codebooks are searched (RVQ is residual: they equal
        the first n_q of a 32-codebook encode, token for token); the streaming
        state does not depend on n_q, so it may change from call to call."""
        n_q = check_n_q(n_q)
        pcm = np.ascontiguousarray(pcm, dtype=np.float32).reshape(-1)
        if len(pcm) == 0 or len(pcm) % FRAME_SIZE:
            raise ValueError(f"encode needs a positive multiple of {FRAME_SIZE} samples, got {len(pcm)}")
        x = torch.from_numpy(pcm).view(1, 1, -1).to(self.device)
        with torch.inference_mode():
            if self._fast is not None:
                codes = self._fast.step(x, n_q)[:, :n_q]
            else:
                m = self.model
                emb = m.encoder(x)
                (emb,) = m.encoder_transformer(emb)
                emb = m.downsample(emb)
                m.quantizer.set_num_codebooks(n_q)
                try:
                    codes = m.quantizer.encode(emb)      # [1, n_q, T]
                finally:
                    m.quantizer.set_num_codebooks(N_CODEBOOKS)
        self.frames += codes.shape[-1]
        return codes[0].T.cpu().numpy().astype(np.int64)


class MimiStreamingDecoder(_StreamingCodec):
    """Streaming Mimi decoder: token frames in, 24 kHz audio out (1920 samples
    per frame). A frame may carry any number of codebooks (0..32) and any
    subset of them may be marked absent: absent codebooks contribute nothing
    to the latent (the residual sum simply stops short)."""

    _fast_class = "FastDecoder"

    def __init__(self, model: MimiModel, mode: str = "eager", info: Mapping[str, Any] | None = None) -> None:
        q = model.quantizer
        self._tables = [q.rvq_first.vq.layers[0]._codebook.embedding] + \
                       [l._codebook.embedding for l in q.rvq_rest.vq.layers]
        super().__init__(model, mode, info)

    def _stack_modules(self):
        m = self.model
        return [m.upsample.convtr, m.decoder_transformer, m.decoder], "decoder"

    def latent(self, tokens: npt.ArrayLike, present: npt.ArrayLike | None = None) -> torch.Tensor:
        """tokens [T, K] ints, present [T, K] bool or None -> latent [1, 512, T]
        at 12.5 Hz, exactly the sum moshi's quantizer.decode forms."""
        tok = np.asarray(tokens, dtype=np.int64)
        if tok.ndim != 2 or tok.shape[1] > N_CODEBOOKS:
            raise ValueError(f"tokens must be [T, K<=32], got shape {tuple(tok.shape)}")
        if tok.size and (int(tok.min()) < 0 or int(tok.max()) >= CARDINALITY):
            raise ValueError(f"token values must be in 0..{CARDINALITY - 1}")
        T, K = tok.shape
        dev = self.device
        tok = torch.from_numpy(tok).to(dev)         # checked on the host, one copy to the device
        pres = None if present is None else torch.as_tensor(np.asarray(present, dtype=bool)).to(dev)
        q = self.model.quantizer
        first = torch.zeros(T, self._tables[0].shape[1], device=dev)
        rest = torch.zeros(T, self._tables[0].shape[1], device=dev)
        for k in range(K):
            e = self._tables[k][tok[:, k]]
            if pres is not None:
                e = e * pres[:, k:k + 1].to(e.dtype)
            if k == 0:
                first = first + e
            else:
                rest = rest + e
        first = first.T[None]
        rest = rest.T[None]
        return q.rvq_first.output_proj(first) + q.rvq_rest.output_proj(rest)

    def decode(self, tokens: npt.ArrayLike, present: npt.ArrayLike | None = None) -> npt.NDArray[np.float32]:
        """tokens [T, K] (T >= 1) -> float32 [T * 1920] at 24 kHz."""
        with torch.inference_mode():
            lat = self.latent(tokens, present)
            if self._fast is not None:
                out = self._fast.step(lat)
            else:
                m = self.model
                emb = m.upsample(lat)
                (emb,) = m.decoder_transformer(emb)
                out = m.decoder(emb)
        self.frames += lat.shape[-1]
        return out.reshape(-1).cpu().numpy().astype(np.float32, copy=False)


class _NotStreaming:
    """Takes model's sub-modules out of streaming mode for a batch call and
    puts their streaming state back afterwards."""

    def __init__(self, model):
        self.mods = [model.encoder, model.encoder_transformer, model.downsample.conv,
                     model.upsample.convtr, model.decoder_transformer, model.decoder]

    def __enter__(self):
        self.saved = []
        for m in self.mods:
            if m.is_streaming:
                self.saved.append((m, m.get_streaming_state()))
                m._stop_streaming()

    def __exit__(self, *a):
        for m, st in self.saved:
            m.set_streaming_state(st)


def batch_encode(model: MimiModel, pcm: npt.ArrayLike, n_q: int = N_CODEBOOKS) -> npt.NDArray[np.int64]:
    """Non-streaming reference encode (moshi's own path): tokens [T, n_q]."""
    dev = next(model.parameters()).device
    x = torch.from_numpy(np.ascontiguousarray(pcm, dtype=np.float32)).view(1, 1, -1).to(dev)
    with torch.inference_mode(), _NotStreaming(model):
        model.set_num_codebooks(n_q)
        try:
            codes = model.encode(x)
        finally:
            model.set_num_codebooks(N_CODEBOOKS)
    return codes[0].T.cpu().numpy().astype(np.int64)


def batch_decode(model: MimiModel, tokens: npt.ArrayLike) -> npt.NDArray[np.float32]:
    """Non-streaming reference decode (moshi's own path): tokens [T, K] -> pcm."""
    dev = next(model.parameters()).device
    codes = torch.as_tensor(np.asarray(tokens, dtype=np.int64)).T[None].to(dev)
    with torch.inference_mode(), _NotStreaming(model):
        out = model.decode(codes)
    return out.reshape(-1).cpu().numpy().astype(np.float32)


def load_codec(weights: str | Path = "random", mode: str = "eager", threads: int | None = 0,
               offline: bool | None = None, device: str | None = "cpu") -> tuple[MimiStreamingEncoder, MimiStreamingDecoder]:
    """(encoder, decoder) sharing one model. Encoder and decoder drive disjoint
    sub-modules (plus the read-only quantizer tables), so sharing is safe."""
    set_threads(threads)
    model, info = W.load_mimi(weights, offline=offline, device=device)
    return MimiStreamingEncoder(model, mode, info), MimiStreamingDecoder(model, mode, info)


class Timer:
    t: float

    def __init__(self) -> None:
        self.t = time.perf_counter()

    def __call__(self) -> float:
        return time.perf_counter() - self.t
