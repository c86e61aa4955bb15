#
# Copyright 2026 gr-largesc authors.
# SPDX-License-Identifier: GPL-3.0-or-later
#
"""LoRA adapters, checkpoints and base weights of the lm / moshi recovery
backends (the recovery package's __init__ exports the public names)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..common.weights_spec import WeightsSpecError, parse_weights_spec
from .config import (ADAPTER_FORMAT, ADAPTER_VERSION, CHECKPOINT_FORMAT, MOSHI_FILE,
                     MOSHI_REPO, RecoveryError, build_lm, config_digest,
                     moshi_config)

if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import TypeVar

    import torch
    from moshi.models.lm import LMModel

    from ..common.weights_spec import WeightsSpec

    _Module = TypeVar("_Module", bound=torch.nn.Module)


# ----------------------------------------------------------------------------
# LoRA adapters (moshi.modules.lora)

def add_lora(model: _Module, rank: int, scaling: float = 2.0) -> _Module:
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


def lora_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()
            if ".lora_A." in k or ".lora_B." in k}


def adapter_paths(path: str | Path) -> tuple[Path, Path]:
    """(safetensors path, json path) of an adapter named by either file."""
    p = Path(path)
    if p.suffix == ".json":
        return p.with_suffix(".safetensors"), p
    if p.suffix == ".safetensors":
        return p, p.with_suffix(".json")
    return Path(str(p) + ".safetensors"), Path(str(p) + ".json")


def save_adapter(model: torch.nn.Module, path: str | Path, lm_cfg: dict[str, Any], rank: int, scaling: float,
                 extra: Mapping[str, Any] | None = None) -> tuple[Path, Path]:
    """Writes the LoRA weights to PATH.safetensors and the architecture,
    rank and recovery settings to PATH.json."""
    from safetensors.torch import save_file
    st, js = adapter_paths(path)
    st.parent.mkdir(parents=True, exist_ok=True)
    meta: dict[str, Any] = {"format": ADAPTER_FORMAT, "version": ADAPTER_VERSION, "lm_config": lm_cfg,
            "config_digest": config_digest(lm_cfg), "lora_rank": int(rank),
            "lora_scaling": float(scaling)}
    meta.update(extra or {})
    save_file(lora_state(model), str(st), metadata={"format": ADAPTER_FORMAT,
                                                   "config_digest": meta["config_digest"],
                                                   "lora_rank": str(int(rank))})
    js.write_text(json.dumps(meta, indent=1, sort_keys=True))
    return st, js


def read_adapter_meta(path: str | Path) -> dict[str, Any]:
    """The JSON meta of an adapter, without loading its tensors; RecoveryError
    if the files are missing or not an adapter's."""
    st, js = adapter_paths(path)
    if not st.exists():
        raise RecoveryError(f"adapter file {str(st)!r} does not exist (write one with "
                            "largesc-finetune; see docs/recovery.md)")
    if not js.exists():
        raise RecoveryError(f"adapter {str(st)!r} has no config file {str(js)!r} next to it")
    try:
        meta = json.loads(js.read_text())
    except Exception as e:
        raise RecoveryError(f"adapter config {str(js)!r} is not JSON: {e}") from e
    if meta.get("format") != ADAPTER_FORMAT:
        raise RecoveryError(f"{str(js)!r} is not a {ADAPTER_FORMAT} adapter config")
    return meta


def read_adapter(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """(tensors, meta) of an adapter file; RecoveryError if missing or not one."""
    st, _ = adapter_paths(path)
    meta = read_adapter_meta(path)
    try:
        from safetensors.torch import load_file
        tensors = load_file(str(st))
    except Exception as e:
        raise RecoveryError(f"cannot read adapter {str(st)!r}: {type(e).__name__}: {e}") from e
    return tensors, meta


def check_adapter(meta: Mapping[str, Any], lm_cfg: Mapping[str, Any], path: str | Path, rank: int = 0) -> None:
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


def apply_adapter(model: torch.nn.Module, lm_cfg: Mapping[str, Any], path: str | Path,
                  rank: int = 0) -> dict[str, Any]:
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

def save_checkpoint(model: torch.nn.Module, path: str | Path, lm_cfg: dict[str, Any],
                    extra: Mapping[str, Any] | None = None) -> tuple[Path, Path]:
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


def moshi_weights_file(spec: str | Path | None = "hf", offline: bool | None = None,
                       cache_dir: str | Path | None = None) -> Path:
    """Path of Moshi LM weights: 'hf' (kyutai/moshiko-pytorch-bf16), 'hf:OWNER/REPO',
    or a local file / directory holding model.safetensors. Uses the local Hugging
    Face cache first; downloads only when online (offline=None follows
    HF_HUB_OFFLINE)."""
    s = str(spec or "hf")
    if s == "hf" or s.startswith("hf:"):
        repo = MOSHI_REPO if s == "hf" else s[3:].strip("/")
        from ..codec import weights as W
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


def parse_checkpoint(checkpoint: str | Path | None) -> WeightsSpec:
    """A base checkpoint spec ('random' / 'random:SEED' or a file) as a
    WeightsSpec (common.weights_spec); RecoveryError when malformed."""
    s = str(checkpoint or "random")
    try:
        return parse_weights_spec(s)
    except WeightsSpecError:
        raise RecoveryError(f"bad checkpoint {s!r}: expected 'random:SEED'") from None


def load_base(lm_cfg: Mapping[str, Any], checkpoint: str | Path | None, device: str | torch.device = "cpu",
              dtype: torch.dtype | None = None) -> tuple[LMModel, dict[str, Any]]:
    """Base LMModel for the lm backend. checkpoint: 'random' / 'random:SEED'
    (untrained, seeded) or a .safetensors file of the full model (e.g. written
    by save_checkpoint). Returns (model, info)."""
    import torch
    s = str(checkpoint or "random")
    spec = parse_checkpoint(s)
    if spec.untrained:
        return build_lm(lm_cfg, spec.value, device, dtype), {"checkpoint": s, "untrained": True}
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
