#
# Copyright 2026 gr-largesc authors.
# SPDX-License-Identifier: GPL-3.0-or-later
#
"""Recovery model configs: constants, presets, config checks, random LMModel
builds (the recovery package's __init__ exports the public names)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Mapping

    import torch
    from moshi.models.lm import LMModel

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

PRESETS: dict[str, dict[str, Any]] = {
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


def moshi_config() -> dict[str, Any]:
    """Moshi 7B's LMModel config (moshi 0.2.13 loaders._lm_kwargs)."""
    from moshi.models import loaders
    return json.loads(json.dumps(loaders._lm_kwargs))


def lm_config(spec: dict[str, Any] | str | Path) -> dict[str, Any]:
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


def check_lm_config(cfg: Mapping[str, Any]) -> None:
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


def config_digest(cfg: Mapping[str, Any]) -> str:
    """Short digest of a config: adapters remember the architecture they fit."""
    return hashlib.sha256(json.dumps(cfg, sort_keys=True).encode()).hexdigest()[:16]


def build_lm(cfg: Mapping[str, Any], seed: int = 0, device: str | torch.device = "cpu",
             dtype: torch.dtype | None = None) -> LMModel:
    """A randomly initialised LMModel of config `cfg` (deterministic for a seed)."""
    import torch
    from moshi.models.lm import LMModel
    torch.manual_seed(int(seed))
    kw = dict(cfg)
    model = LMModel(device=device, dtype=dtype, **kw)
    model.eval()
    return model


def count_parameters(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
