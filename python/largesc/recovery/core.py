#
# Copyright 2026 gr-largesc authors.
# SPDX-License-Identifier: GPL-3.0-or-later
#
"""Token recovery: fills the tokens a lossy link lost (scheduler-free core).

The GNU Radio block (token_recovery.py) and the finetuning tool
(finetune.py) are glue around this file. Full description: docs/recovery.md.

A token frame here is `tokens` (ints 0..2047, one per codebook, codebook 0
first, n = n_q of the frame, 1..32) and `mask` (same length, 1 = received,
0 = lost). TokenRecovery.push(tokens, mask) returns the frames it completed,
each a RecoveredFrame whose tokens are all valid; received tokens are never
changed.

Backends
  hold   classical concealment, exactly:
         per codebook c the state is last[c] (the last token received on
         codebook c, none before the first) and run[c] (frames in a row, up to
         and including this one, in which codebook c was not received; a frame
         too narrow to carry c counts as not received). For a frame of n
         tokens with mask m:
           fresh(c)  = m[c] or (last[c] exists and run[c] <= max_hold)
           n_keep    = n if every c < n is fresh, else the first c that is not
           n_out     = max(n_keep, min(min_codebooks, n), 1 + highest received c)
           token[c]  = received token if m[c], else last[c], else 0   (c < n_out)
         Codebooks n_out..n-1 are dropped: the frame leaves with n_q = n_out
         (fewer codebooks decode smoother than stale ones). max_hold < 0 holds
         forever. Latency: none.
  lm     a model of moshi's LMModel architecture (any size, built from a
         config dict) with an optional LoRA adapter. Every received token is
         teacher-forced; a lost token of codebook c < dep_q is predicted by the
         depth transformer, codebook by codebook, greedy or sampled
         (temperature, top-k, seeded). Codebooks >= dep_q fall back to `hold`
         (with min_codebooks raised to dep_q). How a lost token enters the
         model afterwards is `feed_back`: 'erased' (moshi's zero token, an
         all-zero embedding; what finetune.py trains with) or 'predicted' (the
         recovered token, as in generation). Latency: max(delays) frames
         (0 for the presets here, 1 for Moshi).
  moshi  the published Moshi 7B (Hugging Face hub or a local file) + an
         optional adapter; needs a CUDA GPU.

Per-stream state is explicit: reset() starts a new stream, flush() plays out
the frames the lm backend still holds and then resets.

Modules of the recovery package (its __init__ exports the public names):
  config    constants, presets, config checks, random model builds
  lora      LoRA adapters, checkpoints, base weights
  hold      the hold rule (HoldState)
  lm        LM stepping (LMRecovery, the masked on-device step)
  core      the stream core (this file: TokenRecovery, check_recovery, make_recovery)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from .config import (BACKENDS, CARD, DEFAULT_MAX_HOLD, FEED_BACK, MAX_CODEBOOKS, MOSHI_FILE, MOSHI_REPO,
                     PRESETS, RecoveryError, count_parameters, lm_config, moshi_config)
from .lora import (adapter_paths, apply_adapter, check_adapter, load_base, moshi_weights_file,
                   parse_checkpoint, read_adapter_meta)
from .hold import HoldState
from ..codec.weights import resolve_device   # auto -> cuda when torch sees a GPU (checked by check_recovery)
from .lm import LMRecovery

if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path

    import numpy.typing as npt

    from .lm import EagerLMRecovery


# ----------------------------------------------------------------------------
# seeded loss masks of the recovery benchmarks and tests (pure numpy: they
# also run where the C++ loss models are not, e.g. benchmarks/gpu_check.py)

LOSS_PATTERNS = ("none", "iid20", "ge20", "all")


def loss_pattern(kind: str, T: int, n: int, rng: np.random.Generator) -> npt.NDArray[np.uint8]:
    """uint8[T, n] mask (1 = received) for T frames of n codebooks: 'none'
    lost, 'iid20' every token lost i.i.d. with probability 0.2, 'ge20' whole
    frames lost in Gilbert-Elliott bursts (20 % on average, mean burst 3),
    'all' lost. rng: a numpy Generator."""
    if kind == "none":
        return np.ones((T, n), np.uint8)
    if kind == "all":
        return np.zeros((T, n), np.uint8)
    if kind == "iid20":
        return (rng.random((T, n)) >= 0.2).astype(np.uint8)
    if kind == "ge20":
        m, bad = np.ones((T, n), np.uint8), False
        p_gb, p_bg = 0.2 / (0.8 * 3), 1 / 3
        for t in range(T):
            bad = (rng.random() >= p_bg) if bad else (rng.random() < p_gb)
            m[t] = 0 if bad else 1
        return m
    raise ValueError(f"loss pattern must be one of {', '.join(LOSS_PATTERNS)}, got {kind!r}")


# ----------------------------------------------------------------------------
# the recovery core used by the block and the tools

@dataclass
class RecoveredFrame:
    index: int             # frame count since reset (0-based)
    tokens: npt.NDArray[np.uint16]     # uint16[n_q]: every token valid
    mask: npt.NDArray[np.uint8]        # uint8[n_q]: 1 = received (input mask, cut to n_q)
    recovered: npt.NDArray[np.uint8]   # uint8[n_q]: 1 = filled by recovery (= 1 - mask)
    n_q_in: int            # width of the input frame (n_q < n_q_in: codebooks dropped)
    meta: object = None    # passed through untouched


def check_frame(tokens: npt.ArrayLike, mask: npt.ArrayLike) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.bool_]]:
    """Validates one masked token frame; returns (int64[n], bool[n]) or raises
    ValueError saying what is wrong."""
    t = np.asarray(tokens)
    m = np.asarray(mask)
    if t.ndim != 1 or not 1 <= len(t) <= MAX_CODEBOOKS:
        raise ValueError(f"a token frame has 1..{MAX_CODEBOOKS} tokens, got shape {t.shape}")
    if m.shape != t.shape:
        raise ValueError(f"mask length {m.size} does not match the {len(t)} tokens")
    if not np.issubdtype(t.dtype, np.integer) or t.min() < 0 or t.max() >= CARD:
        raise ValueError(f"tokens must be integers in 0..{CARD - 1}")
    if not (np.issubdtype(m.dtype, np.integer) or m.dtype == bool) or not np.isin(m, (0, 1)).all():
        raise ValueError("mask values must be 0 (lost) or 1 (received)")
    return t.astype(np.int64), m.astype(bool)


class TokenRecovery:
    """One stream of token recovery. See the module docstring for the rules.

    backend 'hold': TokenRecovery('hold', max_hold, min_codebooks).
    backend 'lm' / 'moshi': give `lm` (an LMRecovery) or use make_recovery().
    """

    backend: str
    hold: HoldState
    lm: EagerLMRecovery | None
    info: dict[str, Any]
    _pending: dict[int, tuple[npt.NDArray[np.int64], npt.NDArray[np.bool_], int, int, object]]

    def __init__(self, backend: str = "hold", max_hold: int = DEFAULT_MAX_HOLD, min_codebooks: int = 1,
                 lm: EagerLMRecovery | None = None, info: Mapping[str, Any] | None = None) -> None:
        if backend not in BACKENDS:
            raise RecoveryError(f"unknown recovery backend {backend!r}: use one of {', '.join(BACKENDS)}")
        if backend != "hold" and lm is None:
            raise RecoveryError(f"backend {backend!r} needs a model (use recovery.make_recovery)")
        self.backend = backend
        self.hold = HoldState(max_hold, min_codebooks)
        self.lm = lm if backend != "hold" else None
        self.info = dict(info or {})
        self._pending = {}
        self._n = 0
        self._lm_base = 0       # frame count at which the model's stream began (push_late restarts it)
        self._lm_used = False   # a frame went into the model since it began
        self.late_restarts = 0  # model streams restarted by push_late

    @property
    def latency_frames(self) -> int:
        return self.lm.latency_frames if self.lm else 0

    def reset(self) -> None:
        self.hold.reset()
        if self.lm:
            self.lm.reset()
        self._pending.clear()
        self._n = 0
        self._lm_base = 0
        self._lm_used = False

    def push(self, tokens: npt.ArrayLike, mask: npt.ArrayLike, meta: object = None) -> list[RecoveredFrame]:
        """Adds one masked frame; returns the RecoveredFrames completed (in
        order; for hold always exactly this one). ValueError for bad input."""
        tok, m = check_frame(tokens, mask)
        t = self._n
        self._n += 1
        if self.lm is None:
            out, n_out = self.hold.process(tok, m)
            return [self._frame(t, out, m, n_out, len(tok), meta)]
        out, n_out = self._hold_under_lm(tok, m)
        self._pending[t] = (out, m, n_out, len(tok), meta)
        self._lm_used = True
        return self._complete(self.lm.push(tok, m))

    def _hold_under_lm(self, tok, m):
        """Hold's fill of a frame with the lm backend: the model's codebooks are never dropped
        (min_codebooks raised to dep_q); the model then overwrites its lost ones."""
        mc = max(self.hold.min_codebooks, min(len(tok), self.lm.dep_q))
        return self.hold.process(tok, m, min_codebooks=mc)

    def warm_up(self) -> None:
        """Runs the model once on an all-lost frame, then starts a new stream: its first
        step (moshi's modules set up torch.compile's machinery: 3-5 s on a CPU) happens
        here, not on a live link's first frame, where it held every frame after it up
        for as long. Hold: nothing."""
        if self.lm is not None:
            n = self.lm.dep_q
            self.push(np.zeros(n, np.int64), np.zeros(n, np.uint8))
            self.reset()

    def push_late(self, tokens: npt.ArrayLike, mask: npt.ArrayLike, meta: object = None) -> list[RecoveredFrame]:
        """A frame that came past its deadline (a live receiver whose model fell
        behind the playout clock): the model is not run for it. The frames the
        model still holds leave as hold filled them, then this one, filled by
        hold; the model starts a new stream with the next frame pushed (its
        context is lost: counted in late_restarts when it had frames). A model
        that cannot keep up thus costs hold-filled frames, never a queue.
        Backend hold: the same as push. ValueError for bad input."""
        if self.lm is None:
            return self.push(tokens, mask, meta)
        tok, m = check_frame(tokens, mask)
        done = [self._frame(t, *self._pending.pop(t)) for t in sorted(self._pending)]
        t = self._n
        self._n += 1
        out, n_out = self._hold_under_lm(tok, m)
        done.append(self._frame(t, out, m, n_out, len(tok), meta))
        if self._lm_used:
            self.lm.reset()
            self.late_restarts += 1
        self._lm_base = self._n
        self._lm_used = False
        return done

    def flush(self) -> list[RecoveredFrame]:
        """End of stream: returns the frames still held (lm), then resets."""
        done = self._complete(self.lm.flush()) if self.lm else []
        self.reset()
        return done

    def _complete(self, preds):
        res = []
        for t, pred in preds:
            out, m, n_out, n_in, meta = self._pending.pop(t + self._lm_base)
            k = min(n_out, len(pred))
            lost = ~m[:k]
            out = out.copy()
            out[:k][lost] = pred[:k][lost]
            res.append(self._frame(t + self._lm_base, out, m, n_out, n_in, meta))
        return res

    @staticmethod
    def _frame(t, out, m, n_out, n_in, meta):
        mask = m[:n_out].astype(np.uint8)
        return RecoveredFrame(t, out[:n_out].astype(np.uint16), mask, (1 - mask).astype(np.uint8),
                              int(n_in), meta)

    def recover_sequence(self, tokens: npt.ArrayLike,
                         mask: npt.ArrayLike) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.uint8]]:
        """Whole-stream convenience: tokens [T, n], mask [T, n] -> (out [T, n]
        int64 with -1 where hold dropped a codebook, recovered [T, n] uint8).
        Resets before and after."""
        tokens, mask = np.asarray(tokens), np.asarray(mask)
        self.reset()
        T, n = tokens.shape
        out = np.full((T, n), -1, dtype=np.int64)
        rec = np.zeros((T, n), dtype=np.uint8)
        frames = []
        for i in range(T):
            frames += self.push(tokens[i], mask[i])
        frames += self.flush()
        for f in frames:
            out[f.index, :len(f.tokens)] = f.tokens
            rec[f.index, :len(f.tokens)] = f.recovered
        return out, rec


def check_recovery(backend: str = "hold", model: dict[str, Any] | str | Path | None = "",
                   checkpoint: str | Path = "", adapter: str | Path = "", lora_rank: int = 0,
                   device: str | None = "auto", temperature: float = 0.0, top_k: int = 0,
                   offline: bool | None = None) -> dict[str, Any]:
    """Checks recovery parameters without building the model (cheap: reads
    configs and adapter metadata, looks for files and a GPU), so a campaign can
    refuse a configuration before any work starts. Returns a dict describing
    what would run: backend, model (preset or file), checkpoint, adapter,
    untrained (True when neither a trained base nor a trained adapter is
    used). Raises RecoveryError with a message that says what is allowed."""
    if backend not in BACKENDS:
        raise RecoveryError(f"unknown recovery backend {backend!r}: use one of {', '.join(BACKENDS)}")
    desc = {"backend": backend, "untrained": False}
    if backend == "hold":
        if model or checkpoint or adapter or lora_rank:
            raise RecoveryError("backend 'hold' takes no model, checkpoint, adapter or LoRA rank "
                                "(they are for 'lm' and 'moshi')")
        return desc
    for name, v in (("temperature", temperature), ("top_k", top_k)):
        try:
            fv = float(v)
        except (TypeError, ValueError):
            raise RecoveryError(f"{name} must be a number >= 0, got {v!r}") from None
        if not (fv >= 0.0 and fv < float("inf")):
            raise RecoveryError(f"{name} must be a finite number >= 0, got {v!r}")
    if device not in ("auto", "", None, "cpu", "cuda") and not str(device).startswith("cuda:"):
        raise RecoveryError(f"device must be auto, cpu, cuda or cuda:N, got {device!r}")
    try:
        import torch
        import moshi.models.lm  # noqa: F401 - the lm backends need it: checked here
    except ImportError as e:
        raise RecoveryError(f"backend {backend!r} needs torch and moshi ({e})") from e
    if str(device).startswith("cuda") and not torch.cuda.is_available():
        raise RecoveryError(f"device {device!r} asked for, but torch sees no CUDA GPU here; "
                            "use device 'cpu' or 'auto'")
    ameta = None
    if adapter:
        ameta = read_adapter_meta(adapter)
        desc.update(adapter=str(adapter), adapter_trained=bool(ameta.get("trained", False)))
    elif lora_rank:
        raise RecoveryError(f"lora_rank {lora_rank} given but no adapter file")
    if backend == "moshi":
        if not torch.cuda.is_available() and device in ("auto", "", None, "cuda"):
            raise RecoveryError(
                "backend 'moshi' runs the Moshi 7B language model and needs a CUDA GPU with "
                "about 24 GB of memory (bf16) plus the Moshi weights (Hugging Face repo "
                f"{MOSHI_REPO}, cached or downloaded, or a local {MOSHI_FILE}); this machine "
                "has no GPU. Use backend 'hold', or 'lm' with a small model.")
        if model not in ("", None, "moshi7b"):
            raise RecoveryError(f"backend 'moshi' always runs the moshi7b config; model {model!r} "
                                "is for backend 'lm'")
        if ameta is not None:
            check_adapter(ameta, moshi_config(), adapter, lora_rank)
        desc.update(model="moshi7b", checkpoint=str(moshi_weights_file(checkpoint or "hf",
                                                                       offline=offline)))
        return desc
    if model in ("", None):
        if ameta is None:
            raise RecoveryError("backend 'lm' needs a model config (preset "
                                f"{', '.join(list(PRESETS) + ['moshi7b'])} or a .json file) or an "
                                "adapter whose config names it")
        cfg = lm_config(ameta["lm_config"])
        desc["model"] = "from adapter"
    else:
        cfg = lm_config(model)
        desc["model"] = str(model)
    if ameta is not None:
        check_adapter(ameta, cfg, adapter, lora_rank)
    base = str(checkpoint or (ameta or {}).get("base", "random:0"))
    base_trained = not parse_checkpoint(base).untrained
    if base_trained:
        st, _js = adapter_paths(base)
        if not st.exists():
            raise RecoveryError(f"model checkpoint {str(st)!r} does not exist (give a .safetensors "
                                "file written by largesc-finetune --mode full, or 'random:SEED')")
    desc.update(checkpoint=base, untrained=not base_trained and not desc.get("adapter_trained", False))
    return desc


def make_recovery(backend: str = "hold", max_hold: int = DEFAULT_MAX_HOLD, min_codebooks: int = 1,
                  model: dict[str, Any] | str | Path | None = "", checkpoint: str | Path = "",
                  adapter: str | Path = "", lora_rank: int = 0, temperature: float = 0.0, top_k: int = 0,
                  seed: int = 0, feed_back: str = "auto", device: str | None = "auto",
                  text_token: int | None = None, offline: bool | None = None) -> TokenRecovery:
    """Builds a TokenRecovery from block-style parameters (see token_recovery).

    lm: model = config (preset, dict or JSON; '' = the adapter's), checkpoint =
        base weights ('' = the adapter's recorded base, else 'random:0'),
        adapter = LoRA adapter file ('' = none), lora_rank = required rank (0 = any).
    moshi: checkpoint = 'hf' (default) / 'hf:OWNER/REPO' / local file; needs CUDA.
    Raises RecoveryError with a clear message for anything unusable (the
    cheap checks are check_recovery's, made before anything is built)."""
    if backend not in BACKENDS:
        raise RecoveryError(f"unknown recovery backend {backend!r}: use one of {', '.join(BACKENDS)}")
    if backend == "hold":
        def is_default(v, d):
            if isinstance(v, bool) or isinstance(d, str) != isinstance(v, str):
                return False
            return isinstance(v, (str, int, float, np.integer, np.floating)) and v == d

        lm_only = [f"{n}={v!r}" for n, v, d in (("temperature", temperature, 0.0), ("top_k", top_k, 0),
                                                 ("seed", seed, 0), ("feed_back", feed_back, "auto"))
                   if not is_default(v, d)]
        if lm_only:
            raise RecoveryError(f"backend 'hold' takes no {', '.join(lm_only)} (temperature, top_k, "
                                "seed and feed_back are for 'lm' and 'moshi'; leave them at 0.0, 0, "
                                "0 and 'auto')")
    elif feed_back not in FEED_BACK + ("auto",):
        raise RecoveryError(f"feed_back must be 'auto' or one of {FEED_BACK}, got {feed_back!r}")
    else:
        from ..common.params import ParameterError, check_int
        try:
            check_int("top_k", top_k, 0, CARD)
            check_int("seed", seed, 0, 2 ** 63 - 1)
        except ParameterError as e:
            raise RecoveryError(str(e)) from None
    desc = check_recovery(backend, model, checkpoint, adapter, lora_rank, device, temperature,
                          top_k, offline)
    if backend == "hold":
        return TokenRecovery("hold", max_hold, min_codebooks)
    import torch
    info: dict[str, Any] = {"backend": backend}
    if backend == "moshi":
        from moshi.models import loaders
        path = desc["checkpoint"]
        lm_model = loaders.get_moshi_lm(str(path), device=resolve_device(device), dtype=torch.bfloat16)
        cfg = moshi_config()
        info.update(checkpoint=str(path), untrained=False)
        default_text = cfg.get("existing_text_padding_id", 3)
        default_fb = "predicted"
    else:
        ameta = read_adapter_meta(adapter) if adapter else None
        cfg = lm_config(model if model not in ("", None) else ameta["lm_config"])
        lm_model, binfo = load_base(cfg, desc["checkpoint"], resolve_device(device))
        info.update(binfo)
        default_text, default_fb = -1, "erased"
    if adapter:
        ameta = apply_adapter(lm_model, cfg, adapter, lora_rank)
        info.update(adapter=str(adapter), untrained=info.get("untrained", False)
                    and not ameta.get("trained", False))
        default_text = ameta.get("text_token", default_text)
        default_fb = ameta.get("feed_back", default_fb)
    fb = default_fb if feed_back == "auto" else feed_back
    lm = LMRecovery(lm_model, text_token=default_text if text_token is None else text_token,
                    feed_back=fb, temperature=temperature, top_k=top_k, seed=seed)
    info.update(parameters=count_parameters(lm_model), feed_back=fb,
                latency_frames=lm.latency_frames)
    rec = TokenRecovery(backend, max_hold, min_codebooks, lm=lm, info=info)
    rec.warm_up()
    return rec
