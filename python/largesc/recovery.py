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
"""

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

CARD = 2048                 # tokens per codebook (11 bits)
MAX_CODEBOOKS = 32
MAX_HOLD_LIMIT = 12500      # frames (1000 s); -1 = hold forever
DEFAULT_MAX_HOLD = 3        # frames (240 ms) a codebook is held before it is dropped
BACKENDS = ("hold", "lm", "moshi")
FEED_BACK = ("erased", "predicted")
MOSHI_REPO = "kyutai/moshiko-pytorch-bf16"
MOSHI_FILE = "model.safetensors"
ADAPTER_FORMAT = "largesc-lora"
ADAPTER_VERSION = 1
CHECKPOINT_FORMAT = "largesc-lm"

# ----------------------------------------------------------------------------
# model configs (moshi LMModel keyword arguments; plain dicts, JSON-able)

_COMMON = dict(
    card=CARD, causal=True, layer_scale=None, max_period=10000, gating="silu",
    norm="rms_norm_f32", positional_embedding="rope", depformer_layer_scale=None,
    depformer_multi_linear=True, depformer_max_period=10000, depformer_gating="silu",
    depformer_pos_emb="none", depformer_weights_per_step=True, existing_text_padding_id=3,
)

PRESETS = {
    # 3.9 M parameters (most in the 2 x 8 x 2049 embeddings and 8 x 2048 output
    # heads); 200 training steps take about 30 s on one CPU core.
    "tiny": dict(_COMMON, dim=64, text_card=8, n_q=8, dep_q=8, num_heads=4, num_layers=2,
                 hidden_scale=4, context=64, depformer_dim=64, depformer_dim_feedforward=256,
                 depformer_num_heads=4, depformer_num_layers=2, depformer_context=8,
                 delays=[0] * 9),
    # ~100 M parameters, Moshi's layout (16 audio streams, 8 predicted,
    # acoustic delay 1) scaled down; no text vocabulary.
    "small100m": dict(_COMMON, dim=640, text_card=8, n_q=16, dep_q=8, num_heads=10,
                      num_layers=10, hidden_scale=4.125, context=3000, depformer_dim=256,
                      depformer_dim_feedforward=int(4.125 * 256), depformer_num_heads=8,
                      depformer_num_layers=2, depformer_context=8,
                      delays=[0, 0] + [1] * 7 + [0] + [1] * 7),
}


class RecoveryError(RuntimeError):
    """Bad recovery configuration: unknown backend, unusable model, adapter
    that does not fit, missing weights."""


def moshi_config():
    """Moshi 7B's LMModel config (moshi 0.2.13 loaders._lm_kwargs)."""
    from moshi.models import loaders
    return json.loads(json.dumps(loaders._lm_kwargs))


def lm_config(spec):
    """Resolves a model config: a dict, a preset name ('tiny', 'small100m',
    'moshi7b'), or a JSON file holding the dict (or an adapter / checkpoint
    JSON with an "lm_config" entry). Returns a checked copy."""
    if isinstance(spec, dict):
        cfg = dict(spec)
    elif isinstance(spec, (str, Path)) and str(spec) in PRESETS:
        cfg = dict(PRESETS[str(spec)])
    elif isinstance(spec, (str, Path)) and str(spec) == "moshi7b":
        cfg = moshi_config()
    elif isinstance(spec, (str, Path)) and str(spec).endswith(".json"):
        p = Path(spec)
        if not p.exists():
            raise RecoveryError(f"model config file {str(p)!r} does not exist")
        d = json.loads(p.read_text())
        cfg = dict(d.get("lm_config", d))
    else:
        raise RecoveryError(f"model config {spec!r}: give a dict, a preset "
                            f"({', '.join(list(PRESETS) + ['moshi7b'])}) or a .json file")
    check_lm_config(cfg)
    return json.loads(json.dumps(cfg))


def check_lm_config(cfg):
    for k in ("n_q", "dep_q", "card", "delays", "dim", "context"):
        if k not in cfg:
            raise RecoveryError(f"model config lacks {k!r}")
    if int(cfg["card"]) != CARD:
        raise RecoveryError(f"model config card {cfg['card']} != {CARD}: Mimi tokens are 11 bits")
    if not 1 <= int(cfg["dep_q"]) <= int(cfg["n_q"]):
        raise RecoveryError("model config needs 1 <= dep_q <= n_q")
    if len(cfg["delays"]) != int(cfg["n_q"]) + 1:
        raise RecoveryError(f"model config needs n_q + 1 = {int(cfg['n_q']) + 1} delays "
                            f"(text + audio streams), got {len(cfg['delays'])}")
    if cfg["context"] is None:
        raise RecoveryError("model config needs a finite 'context' (streaming KV cache size)")


def config_digest(cfg):
    """Short digest of a config: adapters remember the architecture they fit."""
    return hashlib.sha256(json.dumps(cfg, sort_keys=True).encode()).hexdigest()[:16]


def build_lm(cfg, seed=0, device="cpu", dtype=None):
    """A randomly initialised LMModel of config `cfg` (deterministic for a seed)."""
    import torch
    from moshi.models.lm import LMModel
    torch.manual_seed(int(seed))
    kw = dict(cfg)
    model = LMModel(device=device, dtype=dtype, **kw)
    model.eval()
    return model


def count_parameters(model):
    return sum(p.numel() for p in model.parameters())


# ----------------------------------------------------------------------------
# LoRA adapters (moshi.modules.lora)

def add_lora(model, rank, scaling=2.0):
    """Wraps every nn.Linear of `model` in moshi's LoRALinear (rank, scaling).
    B starts at zero (standard LoRA init), so the wrapped model computes
    exactly what the base model did. Only LoRA weights stay trainable."""
    import torch
    from moshi.modules.lora import LoRALinear, replace_all_linear_with_lora
    if int(rank) < 1:
        raise RecoveryError(f"LoRA rank must be >= 1, got {rank}")
    replace_all_linear_with_lora(model, int(rank), float(scaling))
    for name, p in model.named_parameters():
        p.requires_grad_("lora_" in name)
    for m in model.modules():
        if isinstance(m, LoRALinear):
            with torch.no_grad():
                torch.nn.init.kaiming_uniform_(m.lora_A.weight, a=5 ** 0.5)
                m.lora_B.weight.zero_()
    return model


def lora_state(model):
    return {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()
            if ".lora_A." in k or ".lora_B." in k}


def adapter_paths(path):
    """(safetensors path, json path) of an adapter named by either file."""
    p = Path(path)
    if p.suffix == ".json":
        return p.with_suffix(".safetensors"), p
    if p.suffix == ".safetensors":
        return p, p.with_suffix(".json")
    return Path(str(p) + ".safetensors"), Path(str(p) + ".json")


def save_adapter(model, path, lm_cfg, rank, scaling, extra=None):
    """Writes the LoRA weights to PATH.safetensors and the architecture,
    rank and recovery settings to PATH.json."""
    from safetensors.torch import save_file
    st, js = adapter_paths(path)
    st.parent.mkdir(parents=True, exist_ok=True)
    meta = {"format": ADAPTER_FORMAT, "version": ADAPTER_VERSION, "lm_config": lm_cfg,
            "config_digest": config_digest(lm_cfg), "lora_rank": int(rank),
            "lora_scaling": float(scaling)}
    meta.update(extra or {})
    save_file(lora_state(model), str(st), metadata={"format": ADAPTER_FORMAT,
                                                   "config_digest": meta["config_digest"],
                                                   "lora_rank": str(int(rank))})
    js.write_text(json.dumps(meta, indent=1, sort_keys=True))
    return st, js


def read_adapter(path):
    """(tensors, meta) of an adapter file; RecoveryError if missing or not one."""
    st, js = adapter_paths(path)
    if not st.exists():
        raise RecoveryError(f"adapter file {str(st)!r} does not exist")
    if not js.exists():
        raise RecoveryError(f"adapter {str(st)!r} has no config file {str(js)!r} next to it")
    try:
        meta = json.loads(js.read_text())
    except Exception as e:
        raise RecoveryError(f"adapter config {str(js)!r} is not JSON: {e}") from e
    if meta.get("format") != ADAPTER_FORMAT:
        raise RecoveryError(f"{str(js)!r} is not a {ADAPTER_FORMAT} adapter config")
    try:
        from safetensors.torch import load_file
        tensors = load_file(str(st))
    except Exception as e:
        raise RecoveryError(f"cannot read adapter {str(st)!r}: {type(e).__name__}: {e}") from e
    return tensors, meta


def check_adapter(meta, lm_cfg, path, rank=0):
    """RecoveryError unless the adapter (its JSON meta) was made for model
    config lm_cfg and, when rank > 0, has that LoRA rank."""
    acfg = meta.get("lm_config")
    if acfg is None or config_digest(acfg) != config_digest(lm_cfg):
        diff = sorted(k for k in set(lm_cfg) | set(acfg or {})
                      if (acfg or {}).get(k) != lm_cfg.get(k))
        raise RecoveryError(
            f"adapter {str(path)!r} was trained for another model architecture "
            f"(differs in {', '.join(diff[:6]) or 'config'}); use the model config it was "
            f"made for (stored in its .json) or train one for this model")
    arank = int(meta.get("lora_rank", -1))
    if rank and int(rank) != arank:
        raise RecoveryError(f"adapter {str(path)!r} has LoRA rank {arank}, the block was "
                            f"configured for rank {int(rank)}")


def apply_adapter(model, lm_cfg, path, rank=0):
    """Adds LoRA layers to `model` (config lm_cfg) and loads the adapter at
    `path` into them. Refuses, with a message that says why, an adapter made
    for another architecture, or of another rank than `rank` (0 = any)."""
    tensors, meta = read_adapter(path)
    check_adapter(meta, lm_cfg, path, rank)
    arank = int(meta["lora_rank"])
    add_lora(model, arank, meta.get("lora_scaling", 2.0))
    expected = lora_state(model)
    wrong = [k for k in expected if k not in tensors or
             tuple(tensors[k].shape) != tuple(expected[k].shape)]
    extra = [k for k in tensors if k not in expected]
    if wrong or extra:
        raise RecoveryError(f"adapter {str(path)!r} does not fit this model with rank {arank}: "
                            f"{len(wrong)} missing or mis-shaped tensors (e.g. {wrong[:2]}), "
                            f"{len(extra)} unexpected (e.g. {extra[:2]})")
    dtype = next(model.parameters()).dtype
    device = next(model.parameters()).device
    model.load_state_dict({k: v.to(device=device, dtype=dtype) for k, v in tensors.items()},
                          strict=False)
    for p in model.parameters():
        p.requires_grad_(False)
    model.eval()
    return meta


# ----------------------------------------------------------------------------
# base weights

def save_checkpoint(model, path, lm_cfg, extra=None):
    """Full LMModel weights (PATH.safetensors) + config (PATH.json)."""
    from safetensors.torch import save_file
    st, js = adapter_paths(path)
    st.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(st), metadata={"format": CHECKPOINT_FORMAT})
    meta = {"format": CHECKPOINT_FORMAT, "lm_config": lm_cfg, "config_digest": config_digest(lm_cfg)}
    meta.update(extra or {})
    js.write_text(json.dumps(meta, indent=1, sort_keys=True))
    return st, js


def moshi_weights_file(spec="hf", offline=None, cache_dir=None):
    """Path of Moshi LM weights: 'hf' (kyutai/moshiko-pytorch-bf16), 'hf:OWNER/REPO',
    or a local file / directory holding model.safetensors. Uses the local Hugging
    Face cache first; downloads only when online (offline=None follows
    HF_HUB_OFFLINE)."""
    s = str(spec or "hf")
    if s == "hf" or s.startswith("hf:"):
        repo = MOSHI_REPO if s == "hf" else s[3:].strip("/")
        from . import weights as W
        try:
            return W.hub_file(repo, MOSHI_FILE, offline=offline, cache_dir=cache_dir,
                              what="Moshi weights", param="checkpoint")
        except W.WeightsUnavailableError as e:
            raise RecoveryError(str(e)) from e
    p = Path(os.path.expanduser(s))
    if p.is_dir():
        p = p / MOSHI_FILE
    if not p.exists():
        raise RecoveryError(f"Moshi weights file {str(p)!r} does not exist; pass 'hf' for "
                            f"{MOSHI_REPO} (cached or downloaded) or an existing file")
    return p


def load_base(lm_cfg, checkpoint, device="cpu", dtype=None):
    """Base LMModel for the lm backend. checkpoint: 'random' / 'random:SEED'
    (untrained, seeded) or a .safetensors file of the full model (e.g. written
    by save_checkpoint). Returns (model, info)."""
    import torch
    s = str(checkpoint or "random")
    if s == "random" or s.startswith("random:"):
        try:
            seed = int(s.split(":", 1)[1]) if ":" in s else 0
        except ValueError:
            raise RecoveryError(f"bad checkpoint {s!r}: expected 'random:SEED'")
        return build_lm(lm_cfg, seed, device, dtype), {"checkpoint": s, "untrained": True}
    st, js = adapter_paths(s)
    if not st.exists():
        raise RecoveryError(f"model checkpoint {str(st)!r} does not exist (give a .safetensors "
                            f"file written by largesc-finetune --mode full, or 'random:SEED')")
    if js.exists():
        meta = json.loads(js.read_text())
        if "lm_config" in meta and config_digest(meta["lm_config"]) != config_digest(lm_cfg):
            raise RecoveryError(f"checkpoint {str(st)!r} is for another model config than the one given")
    if not js.exists() and config_digest(lm_cfg) == config_digest(moshi_config()):
        from moshi.models import loaders   # the published Moshi checkpoint layout
        model = loaders.get_moshi_lm(str(st), device=device, dtype=dtype or torch.bfloat16)
        return model.eval(), {"checkpoint": str(st), "untrained": False}
    from safetensors.torch import load_file
    model = build_lm(lm_cfg, 0, device, dtype)
    state = load_file(str(st))
    try:
        model.load_state_dict(state, strict=True)
    except Exception as e:
        raise RecoveryError(f"checkpoint {str(st)!r} does not fit the model config: "
                            f"{str(e).splitlines()[0]}") from e
    model.eval()
    return model, {"checkpoint": str(st), "untrained": False}


# ----------------------------------------------------------------------------
# hold

class HoldState:
    """The `hold` rule of the module docstring, one stream."""

    def __init__(self, max_hold=DEFAULT_MAX_HOLD, min_codebooks=1):
        from .params import check_int
        # max_hold -1: hold forever
        self.max_hold = check_int("max_hold", max_hold, -1, MAX_HOLD_LIMIT)
        self.min_codebooks = check_int("min_codebooks", min_codebooks, 1, MAX_CODEBOOKS)
        self.reset()

    def reset(self):
        self.last = np.full(MAX_CODEBOOKS, -1, dtype=np.int64)   # -1: none received yet
        self.run = np.zeros(MAX_CODEBOOKS, dtype=np.int64)

    def process(self, tokens, mask, min_codebooks=None):
        """tokens int64[n], mask bool[n] -> (out int64[n_out], n_out)."""
        n = len(tokens)
        got = np.zeros(MAX_CODEBOOKS, dtype=bool)
        got[:n] = mask
        self.last[:n][mask] = tokens[mask]
        self.run = np.where(got, 0, self.run + 1)
        if self.max_hold < 0:
            fresh = got | (self.last >= 0)
        else:
            fresh = got | ((self.last >= 0) & (self.run <= self.max_hold))
        stale = np.flatnonzero(~fresh[:n])
        n_keep = n if len(stale) == 0 else int(stale[0])
        rec = np.flatnonzero(mask)
        mc = self.min_codebooks if min_codebooks is None else int(min_codebooks)
        n_out = max(n_keep, min(mc, n), int(rec[-1]) + 1 if len(rec) else 0)
        out = np.where(mask[:n_out], tokens[:n_out], np.maximum(self.last[:n_out], 0))
        return out, n_out


# ----------------------------------------------------------------------------
# lm

class LMRecovery:
    """Streaming LM recovery for one stream (batch 1).

    Model step s (s = 0, 1, ...) is moshi's time step: the temporal
    transformer reads the delayed token layout at position s-1 (moshi's
    initial token at s = 0 and before each stream's delay), then the depth
    transformer walks codebooks 0..dep_q-1 of position s; codebook i there
    belongs to frame s - delays[i+1]. A received token is forced (its
    prediction is skipped), a lost one is predicted. Steps whose codebooks
    are all received skip the depth transformer. Frame t is complete after
    step t + max(delays).
    """

    def __init__(self, model, text_token=-1, feed_back="erased", temperature=0.0, top_k=0,
                 seed=0):
        import torch
        if feed_back not in FEED_BACK:
            raise RecoveryError(f"feed_back must be one of {FEED_BACK}, got {feed_back!r}")
        if float(temperature) < 0 or int(top_k) < 0:
            raise RecoveryError("temperature and top_k must be >= 0")
        self.model = model.eval()
        self.delays = [int(d) for d in model.delays]
        self.max_delay = max(self.delays)
        self.dep_q, self.K, self.card = int(model.dep_q), int(model.num_codebooks), int(model.card)
        self.text_token = int(text_token)
        self.feed_back = feed_back
        self.temperature, self.top_k, self.seed = float(temperature), int(top_k), int(seed)
        self.device = next(model.parameters()).device
        init = [int(model.text_initial_token_id)] + [int(model.initial_token_id)] * model.n_q
        self._initial = np.asarray(init, dtype=np.int64)
        self._gen = torch.Generator(device="cpu")
        self._streaming = False
        self.reset()

    def reset(self):
        if self._streaming:
            self.model.reset_streaming()
        else:
            self.model.streaming_forever(1)
            self._streaming = True
        self._gen.manual_seed(self.seed)
        self._n_in = 0          # frames pushed since reset
        self._steps = 0         # model steps done
        self._inval = {}        # frame -> int64[dep_q]: what enters the model (-1 erased)
        self._recv = {}         # frame -> bool[dep_q]
        self._pred = {}         # frame -> int64[dep_q] (-1 where not predicted)

    def close(self):
        if self._streaming:
            self.model._stop_streaming()
            self._streaming = False

    @property
    def latency_frames(self):
        return self.max_delay

    def push(self, tokens, mask):
        """Adds frame t = frames pushed so far (tokens int64[n], mask bool[n]);
        returns the list of (t', predictions int64[dep_q]) completed by it."""
        t = self._n_in
        self._n_in += 1
        m = min(len(tokens), self.dep_q)
        recv = np.zeros(self.dep_q, dtype=bool)
        recv[:m] = mask[:m]
        inval = np.full(self.dep_q, -1, dtype=np.int64)
        inval[:m][recv[:m]] = tokens[:m][recv[:m]]
        self._inval[t], self._recv[t] = inval, recv
        self._pred[t] = np.full(self.dep_q, -1, dtype=np.int64)
        return self._advance(self._n_in)

    def flush(self):
        """Completes every pending frame (stepping on with erased frames),
        returns them, then resets."""
        n_real = self._n_in
        for t in range(n_real, n_real + self.max_delay):
            self._inval[t] = np.full(self.dep_q, -1, dtype=np.int64)
            self._recv[t] = np.ones(self.dep_q, dtype=bool)   # nothing to predict
            self._pred[t] = np.full(self.dep_q, -1, dtype=np.int64)
        done = self._advance(n_real + self.max_delay, n_real)
        self.reset()
        return done

    def _advance(self, n_known, n_emit=None):
        n_emit = n_known if n_emit is None else n_emit
        done = []
        while self._steps < n_known:
            s = self._steps
            self._model_step(s)
            self._steps += 1
            t = s - self.max_delay
            if 0 <= t < n_emit:
                done.append((t, self._pred[t]))
            old = s - self.max_delay - 2
            for d in (self._inval, self._recv, self._pred):
                d.pop(old, None)
        return done

    def _sample(self, logits):
        import torch
        logits = logits.float().reshape(-1)
        if self.temperature <= 0:
            return int(torch.argmax(logits))
        logits = (logits / self.temperature).cpu()
        if 0 < self.top_k < logits.numel():
            v, i = torch.topk(logits, self.top_k)
            probs = torch.softmax(v, 0)
            return int(i[torch.multinomial(probs, 1, generator=self._gen)])
        return int(torch.multinomial(torch.softmax(logits, 0), 1, generator=self._gen))

    def _value(self, c, f):
        """Token entering the model for stream c (0 text, 1..n_q audio) of frame f."""
        if f < 0:
            return int(self._initial[c])
        if c == 0:
            return self.text_token
        if c <= self.dep_q:
            return int(self._inval[f][c - 1])
        return -1   # the other speaker's streams: no input

    def _model_step(self, s):
        import torch
        D, dq = self.delays, self.dep_q
        if s == 0:
            x = self._initial
        else:
            x = np.array([self._value(c, s - 1 - D[c]) for c in range(self.K)], dtype=np.int64)
        xt = torch.from_numpy(x).view(1, self.K, 1).to(self.device)
        need = [0 <= s - D[i + 1] and not self._recv[s - D[i + 1]][i] for i in range(dq)]
        with torch.no_grad():
            h, _ = self.model.forward_text(xt)
            if not any(need):
                return
            last = max(i for i in range(dq) if need[i])
            dep = self.model.depformer
            with dep.streaming(1):
                for i in range(last + 1):
                    prev = self._value(i, s - D[i])
                    pt = torch.full((1, 1, 1), prev, dtype=torch.long, device=self.device)
                    logits = self.model.forward_depformer(i, pt, h)
                    if need[i]:
                        f = s - D[i + 1]
                        tok = self._sample(logits)
                        self._pred[f][i] = tok
                        if self.feed_back == "predicted":
                            self._inval[f][i] = tok


# ----------------------------------------------------------------------------
# the recovery core used by the block and the tools

@dataclass
class RecoveredFrame:
    index: int             # frame count since reset (0-based)
    tokens: np.ndarray     # uint16[n_q]: every token valid
    mask: np.ndarray       # uint8[n_q]: 1 = received (input mask, cut to n_q)
    recovered: np.ndarray  # uint8[n_q]: 1 = filled by recovery (= 1 - mask)
    n_q_in: int            # width of the input frame (n_q < n_q_in: codebooks dropped)
    meta: object = None    # passed through untouched


def check_frame(tokens, mask):
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

    def __init__(self, backend="hold", max_hold=DEFAULT_MAX_HOLD, min_codebooks=1, lm=None,
                 info=None):
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

    @property
    def latency_frames(self):
        return self.lm.latency_frames if self.lm else 0

    def reset(self):
        self.hold.reset()
        if self.lm:
            self.lm.reset()
        self._pending.clear()
        self._n = 0

    def push(self, tokens, mask, meta=None):
        """Adds one masked frame; returns the RecoveredFrames completed (in
        order; for hold always exactly this one). ValueError for bad input."""
        tok, m = check_frame(tokens, mask)
        t = self._n
        self._n += 1
        if self.lm is None:
            out, n_out = self.hold.process(tok, m)
            return [self._frame(t, out, m, n_out, len(tok), meta)]
        mc = max(self.hold.min_codebooks, min(len(tok), self.lm.dep_q))
        out, n_out = self.hold.process(tok, m, min_codebooks=mc)
        self._pending[t] = (out, m, n_out, len(tok), meta)
        return self._complete(self.lm.push(tok, m))

    def flush(self):
        """End of stream: returns the frames still held (lm), then resets."""
        done = self._complete(self.lm.flush()) if self.lm else []
        self.reset()
        return done

    def _complete(self, preds):
        res = []
        for t, pred in preds:
            out, m, n_out, n_in, meta = self._pending.pop(t)
            k = min(n_out, len(pred))
            lost = ~m[:k]
            out = out.copy()
            out[:k][lost] = pred[:k][lost]
            res.append(self._frame(t, out, m, n_out, n_in, meta))
        return res

    @staticmethod
    def _frame(t, out, m, n_out, n_in, meta):
        mask = m[:n_out].astype(np.uint8)
        return RecoveredFrame(t, out[:n_out].astype(np.uint16), mask, (1 - mask).astype(np.uint8),
                              int(n_in), meta)

    def recover_sequence(self, tokens, mask):
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


def _pick_device(device):
    import torch
    if device in (None, "", "auto"):
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def check_recovery(backend="hold", model="", checkpoint="", adapter="", lora_rank=0,
                   device="auto", temperature=0.0, top_k=0, offline=None):
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
        import moshi.models.lm  # noqa: F401
    except ImportError as e:
        raise RecoveryError(f"backend {backend!r} needs torch and moshi ({e})") from e
    if str(device).startswith("cuda") and not torch.cuda.is_available():
        raise RecoveryError(f"device {device!r} asked for, but torch sees no CUDA GPU here; "
                            "use device 'cpu' or 'auto'")
    ameta = None
    if adapter:
        st, js = adapter_paths(adapter)
        if not st.exists():
            raise RecoveryError(f"adapter file {str(st)!r} does not exist (write one with "
                                "largesc-finetune; see docs/recovery.md)")
        if not js.exists():
            raise RecoveryError(f"adapter {str(st)!r} has no config file {str(js)!r} next to it")
        try:
            ameta = json.loads(js.read_text())
        except Exception as e:
            raise RecoveryError(f"adapter config {str(js)!r} is not JSON: {e}") from e
        if ameta.get("format") != ADAPTER_FORMAT:
            raise RecoveryError(f"{str(js)!r} is not a {ADAPTER_FORMAT} adapter config")
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
    if base == "random" or base.startswith("random:"):
        if ":" in base:
            try:
                int(base.split(":", 1)[1])
            except ValueError:
                raise RecoveryError(f"bad checkpoint {base!r}: expected 'random:SEED'") from None
        base_trained = False
    else:
        st, js = adapter_paths(base)
        if not st.exists():
            raise RecoveryError(f"model checkpoint {str(st)!r} does not exist (give a .safetensors "
                                "file written by largesc-finetune --mode full, or 'random:SEED')")
        base_trained = True
    desc.update(checkpoint=base, untrained=not base_trained and not desc.get("adapter_trained", False))
    return desc


def make_recovery(backend="hold", max_hold=DEFAULT_MAX_HOLD, min_codebooks=1, model="",
                  checkpoint="", adapter="", lora_rank=0, temperature=0.0, top_k=0, seed=0,
                  feed_back="auto", device="auto", text_token=None, offline=None):
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
        from .params import ParameterError, check_int
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
    info = {"backend": backend}
    if backend == "moshi":
        from moshi.models import loaders
        path = desc["checkpoint"]
        dev = _pick_device(device)
        lm_model = loaders.get_moshi_lm(str(path), device=dev, dtype=torch.bfloat16)
        cfg = moshi_config()
        info.update(checkpoint=str(path), untrained=False)
        default_text = cfg.get("existing_text_padding_id", 3)
        default_fb = "predicted"
    else:
        ameta = read_adapter(adapter)[1] if adapter else None
        cfg = lm_config(model if model not in ("", None) else ameta["lm_config"])
        lm_model, binfo = load_base(cfg, desc["checkpoint"], _pick_device(device))
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
    return TokenRecovery(backend, max_hold, min_codebooks, lm=lm, info=info)
