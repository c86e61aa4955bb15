#
# Copyright 2026 gr-largesc authors.
# SPDX-License-Identifier: GPL-3.0-or-later
#
"""largesc-finetune: trains a LoRA adapter (or a whole small model) that
recovers lost Mimi tokens, for the `lm` / `moshi` backends of token_recovery.

Pipeline (docs/recovery.md):
  speech files / folder --Mimi (cached .npy per file)--> token sequences [T, n_q]
  --> training windows with simulated loss masks: i.i.d. packet loss,
      Gilbert-Elliott bursts, and UEP token masks (largesc.simulate_uep with
      the controller's steady-state plan)
  --> LoRA training (moshi.modules.lora): received tokens in, lost ones
      erased (moshi's zero token); cross-entropy on every token, lost ones
      weighted 1, received ones --received-weight
  --> resumable checkpoints (train_state.pt), tqdm bar, loss curve (loss.png),
      held-out token accuracy per codebook against `hold` (eval.json)
  --> adapter.safetensors + adapter.json (architecture, rank, base weights,
      recovery settings), loadable by token_recovery(backend='lm', adapter=...).
"""

import argparse
import hashlib
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from .. import recovery as R
from ..codec import weights as W
from ..common.constants import FRAME_RATE

AUDIO_SUFFIXES = (".wav", ".flac", ".mp3", ".ogg", ".opus", ".m4a", ".raw")
MASK_KINDS = ("iid", "ge", "uep", "token")


# ----------------------------------------------------------------------------
# token sources

def synthetic_tokens(n_seq, n_frames, n_codebooks=8, seed=0, states=32,
                     steps=(0.2, 0.7, 0.1), link=0.8):
    """Token sequences with real temporal and inter-codebook structure
    (no speech needed), [n_seq, n_frames, n_codebooks] int64.

    A cyclic Markov chain drives codebook 0: state s0[t+1] = s0[t] + j
    (mod `states`), j = 0, 1, 2 with probabilities `steps`. Codebook c >= 1
    follows codebook c-1 of the same frame: s_c = s_{c-1} + o_c (mod states)
    with probability `link`, else a uniformly random state. Each codebook maps
    its states to its own random set of token ids 0..2047. Repeating the last
    token (hold) is right for codebook 0 with probability 0.2 only; a model
    that learnt the chain predicts it with up to 0.7."""
    rng = np.random.default_rng(seed)
    ids = np.stack([rng.choice(R.CARD, states, replace=False) for _ in range(n_codebooks)])
    offs = rng.integers(0, states, n_codebooks)
    s = np.zeros((n_seq, n_frames, n_codebooks), dtype=np.int64)
    jumps = rng.choice(len(steps), size=(n_seq, n_frames), p=np.asarray(steps) / sum(steps))
    s[:, 0, 0] = rng.integers(0, states, n_seq)
    for t in range(1, n_frames):
        s[:, t, 0] = (s[:, t - 1, 0] + jumps[:, t]) % states
    for c in range(1, n_codebooks):
        follow = rng.random((n_seq, n_frames)) < link
        s[:, :, c] = np.where(follow, (s[:, :, c - 1] + offs[c]) % states,
                              rng.integers(0, states, (n_seq, n_frames)))
    return np.stack([ids[c][s[:, :, c]] for c in range(n_codebooks)], axis=-1)


def list_audio(inputs):
    files = []
    for i in inputs:
        p = Path(i)
        if p.is_dir():
            files += sorted(f for f in p.rglob("*") if f.suffix.lower() in AUDIO_SUFFIXES)
        elif p.exists():
            files.append(p)
        else:
            raise FileNotFoundError(f"speech input {str(p)!r} does not exist")
    if not files:
        raise FileNotFoundError(f"no audio files ({', '.join(AUDIO_SUFFIXES)}) in {list(inputs)}")
    return files


def audio_tokens(inputs, cache_dir, n_q=8, mimi_weights="hf", log=print, device="cpu"):
    """Mimi tokens of every speech file, [T_i, n_q] each. Each file's tokens
    are cached in cache_dir as <sha256(file, weights, n_q)>.npy, so a second
    run (or a resumed one) does not run Mimi again."""
    files = list_audio(inputs)
    cache = Path(cache_dir)
    cache.mkdir(parents=True, exist_ok=True)
    codec, out = None, []
    for f in files:
        h = hashlib.sha256(f.read_bytes())
        h.update(f"|{mimi_weights}|{n_q}".encode())
        cf = cache / f"{h.hexdigest()[:24]}.npy"
        if cf.exists():
            out.append(np.load(cf))
            continue
        if codec is None:
            codec, info = W.load_mimi(mimi_weights, param="--mimi-weights", device=device)
            if info.get("untrained"):
                log("note: Mimi weights are UNTRAINED (random): tokens carry no speech meaning")
        import sphn
        from ..codec import mimi_codec
        pcm, _ = sphn.read(str(f), sample_rate=R_SAMPLE_RATE)
        pcm = np.asarray(pcm, dtype=np.float32).reshape(np.shape(pcm)[0], -1).mean(axis=0)
        toks = mimi_codec.batch_encode(codec, pcm, n_q)
        np.save(cf, toks)
        out.append(toks)
        log(f"tokens: {f} -> {toks.shape[0]} frames (cached {cf.name})")
    return out


R_SAMPLE_RATE = 24000


def load_token_file(path):
    a = np.load(path)
    if a.ndim == 2:
        return [a.astype(np.int64)]
    if a.ndim == 3:
        return [x.astype(np.int64) for x in a]
    raise ValueError(f"{path}: expected tokens [T, n_q] or [N, T, n_q], got shape {a.shape}")


# ----------------------------------------------------------------------------
# loss masks

class MaskMaker:
    """Loss masks [T, n_cb] (1 = received) for training and evaluation.

    iid   whole frames lost i.i.d. with probability p (packet loss, no UEP)
    ge    whole frames lost in Gilbert-Elliott bursts (mean rate p, mean burst B)
    uep   the token mask the UEP transport leaves: the controller's steady-state
          plan for S = n_cb + 3 slots (D = 1) under that GE channel, through
          largesc.simulate_uep
    token every token lost i.i.d. with probability p
    """

    def __init__(self, kinds=("iid", "ge", "uep"), p_range=(0.05, 0.4), burst_range=(1.5, 4.0)):
        for k in kinds:
            if k not in MASK_KINDS:
                raise ValueError(f"unknown mask kind {k!r}: use {MASK_KINDS}")
        self.kinds, self.p_range, self.burst_range = tuple(kinds), p_range, burst_range
        self._plans = {}

    def make(self, rng, T, n_cb, kind=None, p=None, burst=None):
        from gnuradio import largesc
        kind = kind or self.kinds[rng.integers(len(self.kinds))]
        p = float(rng.uniform(*self.p_range)) if p is None else float(p)
        burst = float(rng.uniform(*self.burst_range)) if burst is None else float(burst)
        burst = max(burst, 1.0 / (1.0 - p) + 1e-6)
        seed = int(rng.integers(1, 2 ** 31))
        if kind == "token":
            return (rng.random((T, n_cb)) >= p).astype(np.uint8)
        if kind == "iid":
            lost = largesc.loss_model.bernoulli(p, seed).pattern(T)
        else:
            lost = largesc.loss_model.gilbert_elliott_mean(p, burst, seed).pattern(T)
        if kind in ("iid", "ge"):
            return np.repeat((1 - lost.astype(np.uint8))[:, None], n_cb, axis=1)
        plan = self._plan(n_cb, round(p, 2), round(burst, 1))
        k = np.full(T, plan.k, dtype=np.int32)
        copies = np.tile(np.asarray(plan.copies, dtype=np.int32), (T, 1))
        return largesc.simulate_uep(k, copies, lost.astype(np.uint8), n_cb).astype(np.uint8)

    def _plan(self, n_cb, p, burst):
        key = (n_cb, p, burst)
        if key not in self._plans:
            from ..uep import uep_plan as U
            model = U.LossModel.gilbert_elliott(p, max(burst, 1.0 / (1.0 - p) + 1e-6))
            self._plans[key] = U.greedy_plan(n_cb + 3, model, 1, U.default_weights(), n_q=n_cb)
        return self._plans[key]


# ----------------------------------------------------------------------------
# training

def model_input(tokens, mask, lm_cfg, text_token=-1):
    """Training input codes [B, 1 + n_q, T] (received tokens, -1 where lost or
    not modelled) from tokens / mask [B, T, dep_q]."""
    import torch
    B, T, dq = tokens.shape
    codes = torch.full((B, 1 + int(lm_cfg["n_q"]), T), -1, dtype=torch.long)
    codes[:, 0] = int(text_token)
    codes[:, 1:1 + dq] = torch.from_numpy(np.where(mask > 0, tokens, -1)).permute(0, 2, 1)
    return codes


def batch_loss(model, tokens, mask, lm_cfg, received_weight=0.5, text_token=-1):
    """Mean weighted cross-entropy of a batch, and the CE on lost tokens alone."""
    import torch
    dev = next(model.parameters()).device                   # inputs and targets go where the model is
    codes = model_input(tokens, mask, lm_cfg, text_token).to(dev)
    out = model(codes)
    logits = out.logits                                     # [B, dep_q, T, card]
    target = torch.from_numpy(tokens).permute(0, 2, 1).to(dev)      # [B, dep_q, T]
    valid = torch.isfinite(logits[..., 0])
    lost = torch.from_numpy(mask == 0).permute(0, 2, 1).to(dev)
    w = torch.where(lost, 1.0, float(received_weight)) * valid
    ce = torch.nn.functional.cross_entropy(
        torch.nan_to_num(logits).reshape(-1, logits.shape[-1]).float(), target.reshape(-1),
        reduction="none").view_as(target)
    loss = (ce * w).sum() / w.sum().clamp_min(1)
    wl = (lost & valid).float()
    ce_lost = (ce * wl).sum() / wl.sum().clamp_min(1)
    return loss, float(ce_lost.detach())


class DataError(ValueError):
    """Too little (or unusable) token data to train and evaluate: the message
    says how much is needed, in frames and seconds."""


MIN_EVAL_WINDOW = 16       # shortest held-out evaluation window, frames (1.28 s)


def _secs(frames):
    return f"{frames / FRAME_RATE:.1f} s"


def split_sequences(seqs, held_out=0.1, window=64, train_len=32, min_window=MIN_EVAL_WINDOW):
    """Splits token sequences into (train, held-out, eval window) so that the
    held-out part always holds at least one full evaluation window and the
    training part at least one sequence of `train_len` frames.

    1. Whole sequences, from the last one back: round(held_out * N) of them
       (at least one), skipping those shorter than `window`, as long as the
       held-out part stays at most half of all frames and training keeps a
       sequence of train_len frames.
    2. Otherwise (a single sequence, or too few long ones): a tail of whole
       windows cut from the longest sequence, about `held_out` of all frames
       and at least one window. When that sequence is too short for a
       `window`-frame tail, the window shrinks to what fits (never below
       min_window frames); the returned window says which was used.

    Raises DataError, saying how many frames (and seconds of speech) are
    needed, when neither fits."""
    lens = [len(s) for s in seqs]
    total = sum(lens)
    if not seqs or max(lens) < train_len:
        raise DataError(
            f"too little data: the longest token sequence has {max(lens, default=0)} frames "
            f"({_secs(max(lens, default=0))}), training windows need --seq-len {train_len} frames "
            f"and the held-out evaluation at least {min_window} more: give at least "
            f"{train_len + min_window} frames ({_secs(train_len + min_window)} of speech) in one "
            f"sequence; {train_len + window} frames ({_secs(train_len + window)}) for full "
            f"{window}-frame evaluation windows")
    # 1. whole sequences
    want = max(1, int(round(len(seqs) * held_out)))
    held = []
    for i in reversed(range(len(seqs))):
        if len(held) >= want:
            break
        if lens[i] < window or sum(lens[j] for j in held) + lens[i] > 0.5 * total:
            continue
        if not any(lens[j] >= train_len for j in range(len(seqs)) if j != i and j not in held):
            continue
        held.append(i)
    if held:
        keep = sorted(held)
        return ([s for j, s in enumerate(seqs) if j not in held], [seqs[j] for j in keep], window)
    # 2. a tail of the longest sequence (the last of equally long ones)
    i = max(range(len(seqs)), key=lambda j: (lens[j], j))
    others_train = any(lens[j] >= train_len for j in range(len(seqs)) if j != i)
    room = lens[i] - (0 if others_train else train_len)
    w = min(window, room)
    if w < min_window:
        raise DataError(
            f"too little data to train and hold some out for evaluation: {len(seqs)} token "
            f"sequence(s) of {', '.join(map(str, lens))} frames ({_secs(total)} in all). "
            f"Training windows need --seq-len {train_len} frames and the held-out evaluation "
            f"at least {min_window} frames: give at least {train_len + min_window} frames "
            f"({_secs(train_len + min_window)} of speech) in one sequence, or a second sequence "
            f"of {min_window}+ frames; full {window}-frame evaluation windows need "
            f"{train_len + window} frames ({_secs(train_len + window)})")
    n_win = max(1, min(int(held_out * total) // w, room // w))
    cut = lens[i] - n_win * w
    train = [s for j, s in enumerate(seqs) if j != i]
    if cut > 0:
        train.insert(i, seqs[i][:cut])
    return train, [seqs[i][cut:]], w


def sample_batch(rng, seqs, batch, T, dq, masks):
    toks = np.empty((batch, T, dq), dtype=np.int64)
    msk = np.empty((batch, T, dq), dtype=np.uint8)
    lens = np.array([len(s) for s in seqs])
    ok = np.flatnonzero(lens >= T)
    if len(ok) == 0:
        raise ValueError(f"no token sequence has {T} frames: lower --seq-len")
    for b in range(batch):
        s = seqs[ok[rng.integers(len(ok))]]
        o = rng.integers(0, len(s) - T + 1)
        toks[b] = s[o:o + T, :dq]
        msk[b] = masks.make(rng, T, dq)
    return toks, msk


def batch_predict(model, tokens, mask, lm_cfg, text_token=-1):
    """Greedy predictions [B, T, dep_q] of one teacher-forced pass with lost
    tokens erased. Equals what LMRecovery streams with feed_back='erased' and
    temperature 0 (qa_token_recovery checks this), at a fraction of the cost."""
    import torch
    with torch.no_grad():
        logits = model(model_input(tokens, mask, lm_cfg, text_token)).logits
    return logits.argmax(-1).permute(0, 2, 1).numpy()


def evaluate(recovery, seqs, masks, rng_seed=1234, kind="iid", p=0.2, burst=2.0,
             max_frames=2000, window=64, max_hold=R.DEFAULT_MAX_HOLD, fast=None, lm_cfg=None):
    """Held-out token accuracy on lost tokens, per codebook, of `recovery`
    (a TokenRecovery with an lm backend) and of `hold`, under one loss
    setting. A codebook that hold dropped counts as wrong. fast (default: when
    the recovery is greedy with erased feed-back) uses batch_predict instead
    of streaming frame by frame; lm_cfg is needed then. Returns a dict."""
    rng = np.random.default_rng(rng_seed)
    hold = R.TokenRecovery("hold", max_hold)
    lm = recovery.lm
    dq = lm.dep_q
    if fast is None:
        fast = lm_cfg is not None and lm.feed_back == "erased" and lm.temperature <= 0 \
            and lm.max_delay == 0
    toks, msks = [], []
    for s in seqs:
        for o in range(0, len(s) - window + 1, window):
            if len(toks) * window >= max_frames:
                break
            toks.append(s[o:o + window, :dq])
            msks.append(masks.make(rng, window, dq, kind=kind, p=p, burst=burst))
    if not toks:
        raise DataError(f"no held-out sequence has a full evaluation window of {window} frames "
                        f"({_secs(window)}); held-out lengths {[len(s) for s in seqs]}")
    toks, msks = np.stack(toks), np.stack(msks)
    lost = msks == 0
    outs = {"hold": np.stack([hold.recover_sequence(t, m)[0] for t, m in zip(toks, msks)])}
    if fast:
        lm.close()   # out of streaming mode for the batch pass; the next reset() restarts it
        pred = batch_predict(lm.model, toks, msks, lm_cfg, lm.text_token)
        outs["lm"] = np.where(lost, pred, toks)
    else:
        outs["lm"] = np.stack([recovery.recover_sequence(t, m)[0] for t, m in zip(toks, msks)])
    acc, tot = {}, {}
    for k, o in outs.items():
        assert (o[~lost] == toks[~lost]).all(), "a received token was changed"
        hit = ((o == toks) & lost).sum(axis=(0, 1))
        acc[k] = (hit / np.maximum(lost.sum(axis=(0, 1)), 1)).tolist()
        tot[k] = float(hit.sum() / max(lost.sum(), 1))
    return {"loss": {"kind": kind, "p": p, "burst": burst}, "frames": int(toks.shape[0] * window),
            "window": int(window),
            "lost_tokens": lost.sum(axis=(0, 1)).tolist(), "accuracy_per_codebook": acc,
            "accuracy": tot, "path": "batch" if fast else "streaming"}


def plot_loss(history, path):
    from ..common.plotting import pyplot
    plt = pyplot()
    if not history:
        return
    steps = [h[0] for h in history]
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot(steps, [h[1] for h in history], lw=0.6, alpha=0.5, label="weighted CE")
    ax.plot(steps, [h[2] for h in history], lw=0.6, alpha=0.5, label="CE on lost tokens")
    k = max(1, len(history) // 30)
    if len(history) > k:
        sm = np.convolve([h[2] for h in history], np.ones(k) / k, mode="valid")
        ax.plot(steps[k - 1:], sm, lw=1.5, label=f"lost, mean of {k}")
    ax.set_xlabel("step")
    ax.set_ylabel("cross-entropy (nats)")
    ax.set_title("token recovery finetuning")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


DEFAULTS = dict(model="tiny", base="random:0", mode="lora", rank=16, scaling=2.0, steps=300,
                batch=16, seq_len=32, lr=3e-3, received_weight=0.5, seed=0,
                mask_kinds=["iid", "ge", "uep"], p_min=0.05, p_max=0.4, ckpt_every=100,
                eval_kind="iid", eval_p=0.2, eval_frames=1024, eval_window=64, threads=0,
                held_out=0.1,
                text_token=-1, device="cpu")


def check_settings(args):
    """ParameterError (a ValueError naming the setting and what is allowed)
    for any impossible training setting."""
    from ..common import params as P
    for k, lo, hi in (("rank", 1, 1024), ("steps", 1, 10_000_000), ("batch", 1, 4096),
                      ("seq_len", 2, 100_000), ("ckpt_every", 1, 10_000_000),
                      ("eval_frames", 1, 10_000_000), ("eval_window", 16, 100_000),
                      ("threads", 0, 1024), ("seed", 0, 2**63 - 1)):
        P.check_int(k, args[k], lo, hi)
    P.check_float("lr", args["lr"], 0.0, 10.0, lo_open=True)
    P.check_float("scaling", args["scaling"], 0.0, 1000.0, lo_open=True)
    for k in ("received_weight", "p_min", "p_max", "eval_p", "held_out"):
        P.check_float(k, args[k], 0.0, 1.0)
    if args["p_min"] > args["p_max"]:
        raise P.ParameterError(f"p_min ({args['p_min']}) must be <= p_max ({args['p_max']})")
    kinds = list(args["mask_kinds"])
    bad = [m for m in kinds if m not in MASK_KINDS]
    if not kinds or bad:
        raise P.ParameterError(f"mask_kinds must be a non-empty list of {', '.join(MASK_KINDS)}, "
                               f"got {','.join(map(str, kinds)) or 'nothing'}")
    P.check_choice("eval_kind", args["eval_kind"], MASK_KINDS)
    P.check_choice("mode", args["mode"], ("lora", "full"))


def train(seqs, out_dir, resume=True, log=print, progress=True, **kw):
    """Trains on token sequences (list of [T, n_q] int arrays). Settings: see
    DEFAULTS / the CLI. Returns a dict with the adapter path and evaluation."""
    import torch
    args = _settings(kw)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    cfg = R.lm_config(args["model"])
    dq = int(cfg["dep_q"])
    train_seqs, eval_seqs, eval_window = _split_data(seqs, dq, args, log)
    masks = MaskMaker(args["mask_kinds"], (args["p_min"], args["p_max"]))

    model, binfo, params, opt = _build_model(cfg, args)
    rng = np.random.default_rng(args["seed"])
    torch.manual_seed(args["seed"])
    step, history = 0, []
    state = _TrainState(out / "train_state.pt", args)
    if resume and state.path.exists():
        step, history = state.load(model, opt, rng, log)

    step, speed = _train_steps(model, opt, params, rng, state, step, history, train_seqs, masks, cfg, dq,
                               progress, log)
    path_st, path_js = _save_trained(model, binfo, cfg, args, step, history, out)
    ev = _evaluate_trained(model, cfg, args, eval_seqs, masks, eval_window, out, path_js, log)
    return {"adapter": str(path_st), "config": str(path_js), "eval": ev, "model": model, "speed": speed,
            "history": history, "plot": str(out / "loss.png"), "held_out": eval_seqs}


def _settings(kw):
    """DEFAULTS updated with the training settings kw, checked; applies the
    torch ones (threads, subnormal flushing). Returns the settings dict."""
    import torch
    args = dict(DEFAULTS)
    unknown = set(kw) - set(args)
    if unknown:
        raise TypeError(f"unknown training settings {sorted(unknown)}")
    args.update(kw)
    check_settings(args)
    if args["threads"]:
        torch.set_num_threads(int(args["threads"]))
    # Flush subnormal floats to zero: CPU arithmetic on them is many times
    # slower (a reported run dropped from ~4 steps/s to 2-9 s/step after
    # step ~195; resumed with flushing it ran at 4 steps/s again).
    torch.set_flush_denormal(True)
    return args


def _split_data(seqs, dq, args, log):
    """The token sequences checked ([T, n_q >= dq], tokens 0..2047) and split
    into training and held-out ones. Returns (train, held out, eval window)."""
    seqs = [np.asarray(s, dtype=np.int64) for s in seqs]
    if any(s.ndim != 2 or s.shape[1] < dq for s in seqs):
        raise ValueError(f"token sequences must be [T, n_q] with n_q >= dep_q = {dq}")
    if any(s.min() < 0 or s.max() >= R.CARD for s in seqs):
        raise ValueError("tokens must be in 0..2047")
    train_seqs, eval_seqs, eval_window = split_sequences(
        seqs, args["held_out"], int(args["eval_window"]), int(args["seq_len"]))
    if eval_window < int(args["eval_window"]):
        log(f"note: too little data for {args['eval_window']}-frame evaluation windows: "
            f"evaluating on {eval_window}-frame windows ({_secs(eval_window)}) instead")
    return train_seqs, eval_seqs, eval_window


def _build_model(cfg, args):
    """The base model with what trains (LoRA layers, or every weight) and
    its optimizer. Returns (model, base info, trained parameters, optimizer)."""
    import torch
    model, binfo = R.load_base(cfg, args["base"], args["device"])
    if args["mode"] == "lora":
        R.add_lora(model, args["rank"], args["scaling"])
    elif args["mode"] == "full":
        for p in model.parameters():
            p.requires_grad_(True)
    else:
        raise ValueError("mode must be 'lora' or 'full'")
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=args["lr"], weight_decay=0.0)
    return model, binfo, params, opt


class _TrainState:
    """The resumable training state (train_state.pt): trained weights,
    optimizer, step, loss history and random states, tied to the settings."""

    def __init__(self, path, args):
        self.path = path
        self.args = args
        self.digest = hashlib.sha256(json.dumps({k: args[k] for k in sorted(args) if k not in
                                                 ("steps", "ckpt_every", "threads", "eval_frames",
                                                  "eval_window")},
                                                sort_keys=True).encode()).hexdigest()[:16]

    def load(self, model, opt, rng, log):
        """Restores the saved state into model, opt and the random states.
        Returns (step, history)."""
        import torch
        st = torch.load(self.path, map_location="cpu", weights_only=False)
        if st.get("digest") != self.digest:
            raise ValueError(f"{self.path} was written with other settings; use a fresh "
                             f"--out directory or --no-resume")
        model.load_state_dict(st["trainable"], strict=False)
        opt.load_state_dict(st["optimizer"])
        step, history = st["step"], st["history"]
        rng.bit_generator.state = st["np_rng"]
        torch.set_rng_state(st["torch_rng"])
        log(f"resumed from {self.path} at step {step}")
        return step, history

    def save(self, model, opt, rng, step, history):
        """Writes the state (through a .tmp file, replaced at once)."""
        import torch
        trainable = {k: v for k, v in model.state_dict().items()
                     if k in {n for n, p in model.named_parameters() if p.requires_grad}}
        tmp = self.path.with_suffix(".tmp")
        torch.save({"digest": self.digest, "trainable": trainable, "optimizer": opt.state_dict(),
                    "step": step, "history": history, "np_rng": rng.bit_generator.state,
                    "torch_rng": torch.get_rng_state(), "settings": self.args}, tmp)
        os.replace(tmp, self.path)


def _train_steps(model, opt, params, rng, state, step, history, train_seqs, masks, cfg, dq, progress, log):
    """Trains from `step` to the settings' steps (appending to history, saving
    the state every ckpt_every steps and at the end). Returns (step, speed)."""
    import torch
    args = state.args
    model.train()
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=args["steps"], initial=step, desc="finetune", unit="step",
                   file=sys.stderr, dynamic_ncols=True)
    warm = max(1, args["steps"] // 20)
    cuda = str(args["device"]).startswith("cuda")
    if cuda:
        torch.cuda.reset_peak_memory_stats(args["device"])
    step0, t_train = step, time.perf_counter()
    while step < args["steps"]:
        toks, msk = sample_batch(rng, train_seqs, args["batch"], args["seq_len"], dq, masks)
        for g in opt.param_groups:
            g["lr"] = args["lr"] * min(1.0, (step + 1) / warm)
        loss, ce_lost = batch_loss(model, toks, msk, cfg, args["received_weight"], args["text_token"])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        step += 1
        history.append((step, float(loss.detach()), ce_lost))
        if bar:
            bar.update(1)
            bar.set_postfix(loss=f"{history[-1][1]:.3f}", lost=f"{ce_lost:.3f}")
        if step % args["ckpt_every"] == 0 or step == args["steps"]:
            state.save(model, opt, rng, step, history)
    if bar:
        bar.close()
    if cuda:
        torch.cuda.synchronize(args["device"])
    speed = train_speed(step - step0, time.perf_counter() - t_train, args["device"])
    if step > step0:
        log(format_speed(speed))
    return step, speed


def _save_trained(model, binfo, cfg, args, step, history, out):
    """Freezes the model, writes the loss curve (loss.png, loss.json) and the
    adapter (LoRA) or whole model (full). Returns (.safetensors, .json) paths."""
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    plot_loss(history, out / "loss.png")
    (out / "loss.json").write_text(json.dumps(history))

    extra = {"base": args["base"], "text_token": args["text_token"], "feed_back": "erased",
             "trained": True, "base_untrained": bool(binfo.get("untrained")),
             "training": {k: args[k] for k in args}, "steps_done": step}
    if args["mode"] == "lora":
        return R.save_adapter(model, out / "adapter", cfg, args["rank"], args["scaling"], extra)
    return R.save_checkpoint(model, out / "model", cfg, extra)


def _evaluate_trained(model, cfg, args, eval_seqs, masks, eval_window, out, path_js, log):
    """Evaluates the trained model on the held-out sequences against hold;
    writes eval.json and adds the result to the adapter's .json. Returns it."""
    lm = R.LMRecovery(model, text_token=args["text_token"], feed_back="erased")
    rec = R.TokenRecovery("lm", lm=lm)
    ev = evaluate(rec, eval_seqs, masks, kind=args["eval_kind"], p=args["eval_p"],
                  max_frames=args["eval_frames"], window=eval_window, lm_cfg=cfg)
    lm.close()
    (out / "eval.json").write_text(json.dumps(ev, indent=1))
    js = json.loads(path_js.read_text())
    js["eval"] = ev
    path_js.write_text(json.dumps(js, indent=1, sort_keys=True))
    log(format_eval(ev))
    return ev


def train_speed(steps, seconds, device):
    """Steps run in this call, their wall time, steps/s, and the peak memory:
    GPU memory allocated by torch on a CUDA device, else the process's peak
    resident memory."""
    import resource
    import torch
    d = {"steps": int(steps), "seconds": round(float(seconds), 2),
         "steps_per_s": round(steps / seconds, 3) if steps and seconds > 0 else None,
         "device": str(device)}
    if str(device).startswith("cuda"):
        d["peak_gpu_gib"] = round(torch.cuda.max_memory_allocated(device) / 2**30, 2)
    else:
        d["peak_rss_gib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2)
    return d


def format_speed(sp):
    mem = (f"peak GPU memory {sp['peak_gpu_gib']:.2f} GiB" if "peak_gpu_gib" in sp
           else f"peak resident memory {sp['peak_rss_gib']:.2f} GiB")
    return (f"trained {sp['steps']} steps in {sp['seconds']:.1f} s on {sp['device']}: "
            f"{sp['steps_per_s']} steps/s, {mem}")


def format_eval(ev):
    acc = ev["accuracy_per_codebook"]
    lines = [f"held-out token accuracy on lost tokens ({ev['loss']['kind']} loss "
             f"p={ev['loss']['p']}, {ev['frames']} frames in windows of {ev['window']})",
             "codebook " + " ".join(f"{c:6d}" for c in range(len(acc["lm"]))) + "    all"]
    for k in ("lm", "hold"):
        lines.append(f"{k:8s} " + " ".join(f"{a:6.3f}" for a in acc[k]) +
                     f" {ev['accuracy'][k]:6.3f}")
    return "\n".join(lines)


# ----------------------------------------------------------------------------
# CLI

def main(argv=None):
    ap = argparse.ArgumentParser(
        prog="largesc-finetune",
        description="Train a LoRA adapter that recovers lost Mimi tokens (token_recovery "
                    "backend 'lm'/'moshi'). See docs/recovery.md.")
    src = ap.add_argument_group("data (one of)")
    src.add_argument("speech", nargs="*", help="speech files or folders (encoded with Mimi, cached)")
    src.add_argument("--tokens", action="append", default=[],
                     help="token file .npy, [T, n_q] or [N, T, n_q] (repeatable)")
    src.add_argument("--synthetic", type=int, default=0, metavar="N",
                     help="N synthetic sequences of 256 frames (Markov token process, see docs)")
    ap.add_argument("--cache", default=None, help="token cache folder (default OUT/token_cache)")
    ap.add_argument("--mimi-weights", default="hf",
                    help="Mimi weights for speech inputs: 'hf' (default: the published checkpoint, "
                         "from the Hugging Face cache or downloaded; an error if neither works), "
                         "a file, or 'random' (an UNTRAINED Mimi: tokens without speech meaning, "
                         "for plumbing checks only)")
    ap.add_argument("--out", required=True, help="output folder (adapter, checkpoints, plot)")
    ap.add_argument("--model", default=DEFAULTS["model"],
                    help="model config: tiny, small100m, moshi7b, or a JSON file")
    ap.add_argument("--base", default=None,
                    help="base weights: random:SEED, a .safetensors checkpoint (default "
                         "random:0; for moshi7b the hub file)")
    ap.add_argument("--mode", choices=("lora", "full"), default="lora")
    for k in ("rank", "steps", "batch", "seq_len", "seed", "ckpt_every", "eval_frames", "threads"):
        ap.add_argument("--" + k.replace("_", "-"), type=int, default=DEFAULTS[k])
    ap.add_argument("--eval-window", type=int, default=DEFAULTS["eval_window"],
                    help=f"held-out evaluation window, frames (default {DEFAULTS['eval_window']}; "
                         f"shrinks to what the held-out data allows, at least {MIN_EVAL_WINDOW})")
    for k in ("scaling", "lr", "received_weight", "p_min", "p_max", "eval_p"):
        ap.add_argument("--" + k.replace("_", "-"), type=float, default=DEFAULTS[k])
    ap.add_argument("--mask-kinds", default=",".join(DEFAULTS["mask_kinds"]),
                    help=f"comma list of {', '.join(MASK_KINDS)}")
    ap.add_argument("--eval-kind", default="iid", choices=MASK_KINDS)
    ap.add_argument("--device", default="auto",
                    help="where Mimi and the model run: auto (a CUDA GPU when torch sees one, "
                         "else the CPU), cpu, cuda, cuda:N (default auto)")
    ap.add_argument("--no-resume", action="store_true", help="start over even if OUT has a checkpoint")
    ap.add_argument("--no-progress", action="store_true")
    a = ap.parse_args(argv)
    try:
        return _run(ap, a)
    except (DataError, W.WeightsError, R.RecoveryError, ValueError) as e:
        ap.exit(2, f"{ap.prog}: error: {e}\n")


def _run(ap, a):
    # checks that need no data first: a GPU run on a machine without one
    # should say so before encoding speech or looking for weights
    settings = dict(DEFAULTS)
    settings.update({k: getattr(a, k) for k in DEFAULTS if hasattr(a, k)})
    settings["mask_kinds"] = [m.strip() for m in a.mask_kinds.split(",") if m.strip()]
    check_settings(settings)
    if a.synthetic < 0:
        ap.error(f"--synthetic must be >= 0 sequences, got {a.synthetic}")
    R.lm_config(a.model)
    try:
        a.device = W.resolve_device(a.device, "--device")
    except ValueError as e:
        if "torch sees no CUDA GPU" in str(e):
            ap.error(f"--device {a.device}: torch sees no CUDA GPU on this machine; use --device cpu "
                     "(small models: tiny, small100m) or run on a machine with a GPU "
                     "(moshi7b needs about 40 GB for training)")
        ap.error(str(e))
    seqs = []
    for f in a.tokens:
        seqs += load_token_file(f)
    if a.synthetic:
        cfg = R.lm_config(a.model)
        seqs += list(synthetic_tokens(a.synthetic, 256, int(cfg["dep_q"]), a.seed))
    if a.speech:
        cfg = R.lm_config(a.model)
        seqs += audio_tokens(a.speech, a.cache or Path(a.out) / "token_cache",
                             int(cfg["dep_q"]), a.mimi_weights, device=a.device)
    if not seqs:
        ap.error("no data: give speech files/folders, --tokens or --synthetic")
    base = a.base
    if base is None:
        if a.model == "moshi7b":
            base = str(R.moshi_weights_file("hf"))
        else:
            base = "random:0"
    res = train(seqs, a.out, resume=not a.no_resume, progress=not a.no_progress,
                model=a.model, base=base, mode=a.mode, rank=a.rank, scaling=a.scaling,
                steps=a.steps, batch=a.batch, seq_len=a.seq_len, lr=a.lr,
                received_weight=a.received_weight, seed=a.seed,
                mask_kinds=a.mask_kinds.split(","), p_min=a.p_min, p_max=a.p_max,
                ckpt_every=a.ckpt_every, eval_kind=a.eval_kind, eval_p=a.eval_p,
                eval_frames=a.eval_frames, eval_window=a.eval_window, threads=a.threads,
                device=a.device)
    print(json.dumps({"adapter": res["adapter"], "config": res["config"], "plot": res["plot"],
                      "accuracy": res["eval"]["accuracy"], "speed": res["speed"]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
