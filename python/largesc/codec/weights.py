#
# Copyright 2026 gr-largesc authors.
# SPDX-License-Identifier: GPL-3.0-or-later
#
"""Mimi weights: the one place that knows about weight files.

A weight spec is a string:

  "hf"                    the published Mimi checkpoint: file MIMI_NAME of the
                          Hugging Face repo DEFAULT_REPO (kyutai/moshiko-pytorch-bf16),
                          taken from the local Hugging Face cache, downloaded if
                          missing and the machine is online.
  "hf:OWNER/REPO"         file MIMI_NAME of another hub repo.
  "hf:OWNER/REPO/FILE"    any file of any hub repo ("hf://..." also accepted).
  "/path/to/file"         a local .safetensors file (or a torch .pt/.pth/.ckpt
                          file holding {"model": state_dict}); "file://" prefix
                          optional.
  "random" / "random:SEED"  an UNTRAINED model of the real architecture,
                          seeded (default seed 0), RVQ codebooks filled with
                          random vectors. For tests and plumbing checks only:
                          anything it outputs is noise, never speech quality.

load_mimi(spec) returns (model, info); info["untrained"] is True for random
weights (and for files written by save_mimi(..., untrained=True)).

torch is imported only where a model is built or read, so tools can take
their option help and weights rule from here without loading torch.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..common.constants import CARDINALITY, FRAME_RATE, FRAME_SIZE, N_CODEBOOKS, SAMPLE_RATE  # noqa: F401
from ..common.weights_spec import WeightsSpecError, parse_weights_spec

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    import torch
    from moshi.models.compression import MimiModel

    from ..common.weights_spec import WeightsSpec


MIMI_NAME = "tokenizer-e351c8d8-checkpoint125.safetensors"
DEFAULT_REPO = "kyutai/moshiko-pytorch-bf16"

_UNTRAINED_KEY = "largesc_untrained"
_TORCH_SUFFIXES = (".pt", ".pth", ".ckpt", ".bin")
_SAFETENSORS_SUFFIXES = (".safetensors", ".sft", ".sfts")


class WeightsError(RuntimeError):
    """A weight spec could not be resolved or its file is not a Mimi checkpoint."""


class WeightsUnavailableError(WeightsError):
    """The hub file is not cached locally and cannot be downloaded (offline)."""


def build_mimi(device: str | torch.device = "cpu") -> MimiModel:
    """The Mimi architecture (moshi 0.2.13 config), randomly initialised, all
    32 codebooks active. RVQ codebooks are zero as moshi leaves them."""
    from moshi.models import loaders
    model = loaders.get_mimi(None, device=device, num_codebooks=N_CODEBOOKS)
    model.eval()
    return model


def calibration_audio(n: int, sample_rate: int, g: torch.Generator) -> torch.Tensor:
    """n samples of seeded calibration audio for filling an untrained codec's
    codebooks: noise bursts (1.5 Hz on/off, drawn from the torch Generator
    `g`) over a rising chirp from 180 Hz."""
    import torch
    t = torch.arange(n) / sample_rate
    env = (torch.sin(2 * torch.pi * 1.5 * t) > 0).float()
    return 0.1 * torch.randn(n, generator=g) * env + 0.2 * torch.sin(2 * torch.pi * 180 * t * (1 + t / 4))


def fill_codebooks(model: MimiModel, seed: int = 0, calib_seconds: float = 4.0) -> None:
    """Fills the RVQ codebooks (left at zero by moshi's random init) and marks
    them initialised. Codebook vectors are seeded Gaussians scaled to the
    residual each level sees on seeded calibration audio (noise bursts and
    tones through this model's own encoder), so every level spreads its
    tokens over the codebook the way a trained quantizer does."""
    import torch
    g = torch.Generator().manual_seed(int(seed) + 7919)
    audio = calibration_audio(int(calib_seconds * SAMPLE_RATE) // FRAME_SIZE * FRAME_SIZE, SAMPLE_RATE, g)
    with torch.no_grad():
        emb = model.encoder(audio.view(1, 1, -1))
        (emb,) = model.encoder_transformer(emb)
        emb = model.downsample(emb)                       # [1, 512, T]
        for rvq in (model.quantizer.rvq_first, model.quantizer.rvq_rest):
            residual = rvq.input_proj(emb)[0].T              # [T, 256]
            for layer in rvq.vq.layers:
                cb = layer._codebook
                std = residual.std(dim=0, keepdim=True).clamp(min=1e-6)
                mean = residual.mean(dim=0, keepdim=True)
                vecs = mean + torch.randn(cb.embedding_sum.shape, generator=g) * std
                cb.cluster_usage.fill_(1.0)
                cb.embedding_sum.copy_(vecs)
                cb._initialized.fill_(1.0)
                cb._cached_initialized = False
                cb.register_buffer("_embedding", None, persistent=False)
                codes = torch.cdist(residual, cb.embedding).argmin(dim=-1)
                residual = residual - cb.embedding[codes]


# Untrained models of the last RANDOM_KEEP seeds, kept unused per process:
# building one (moshi's random init, then the codebook calibration) takes
# seconds, a copy a fraction of that, and a simulated link builds one for its
# encoder and one for its decoder at every point.
RANDOM_KEEP = 2
_random_kept: OrderedDict[int, tuple[MimiModel, torch.Tensor]] = OrderedDict()
_random_lock = threading.Lock()


def random_mimi(seed: int = 0, device: str | torch.device = "cpu", keep: bool = True) -> MimiModel:
    """An untrained Mimi of the real architecture: deterministic for a seed.
    Built and calibrated on the CPU, then moved: the same weights on every
    device. With `keep` the CPU model of a seed built before in this process
    is copied instead of built again: the same weights, and torch's global
    random state left as the build leaves it (seeded, then drawn from)."""
    import copy

    import torch
    seed = int(seed)
    with _random_lock:
        kept = _random_kept.get(seed) if keep else None
        if kept is None:
            torch.manual_seed(seed)
            model = build_mimi("cpu")
            fill_codebooks(model, seed)
            if keep:
                _random_kept[seed] = (copy.deepcopy(model), torch.get_rng_state())
                while len(_random_kept) > RANDOM_KEEP:
                    _random_kept.popitem(last=False)
        else:
            _random_kept.move_to_end(seed)
            model = copy.deepcopy(kept[0])
            torch.set_rng_state(kept[1])
    return model.to(device)


def resolve_device(device: str | None, param: str = "device") -> str:
    """The torch device a codec or model runs on: 'cpu', 'cuda' or 'cuda:N'
    as given, 'auto' (or '') -> 'cuda' when torch sees a GPU, else 'cpu'.
    ValueError saying what is allowed for anything else, and for a CUDA
    device this machine does not have."""
    d = "auto" if device in (None, "") else device
    if not isinstance(d, str):
        raise ValueError(f"{param} {device!r}: use auto, cpu, cuda or cuda:N")
    d = d.strip().lower()
    import torch
    if d == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if d == "cpu":
        return d
    if d == "cuda" or (d.startswith("cuda:") and d[5:].isdigit()):
        if not torch.cuda.is_available():
            raise ValueError(f"{param} {d}: torch sees no CUDA GPU on this machine; "
                             "use cpu, or auto (a GPU when there is one)")
        if ":" in d and int(d[5:]) >= torch.cuda.device_count():
            raise ValueError(f"{param} {d}: this machine has {torch.cuda.device_count()} "
                             f"CUDA GPU(s), cuda:0..cuda:{torch.cuda.device_count() - 1}")
        return d
    raise ValueError(f"{param} {device!r}: use auto, cpu, cuda or cuda:N")


def save_mimi(model: torch.nn.Module, path: str | Path, untrained: bool = False) -> None:
    """Writes the model's state dict to a safetensors file that load_mimi reads
    back (the same path a downloaded checkpoint takes)."""
    from safetensors.torch import save_file
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    save_file(state, str(path), metadata={_UNTRAINED_KEY: "1" if untrained else "0"})


def parse_spec(spec: str | Path) -> WeightsSpec:
    """The Mimi weight spec as a WeightsSpec (common.weights_spec): ("random",
    seed), ("hub", (repo, filename)) or ("file", path)."""
    try:
        return parse_weights_spec(spec, hub=(DEFAULT_REPO, MIMI_NAME))
    except WeightsSpecError as e:
        raise WeightsError(str(e)) from None


def hub_reachable(timeout: float = 3.0) -> bool:
    """True if the Hugging Face endpoint ($HF_ENDPOINT or huggingface.co)
    accepts a TCP connection within `timeout` s. Checked before a download so
    that a machine without internet fails at once instead of retrying for
    half a minute."""
    import socket
    from urllib.parse import urlparse
    url = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    try:
        socket.create_connection((url.hostname, url.port or (443 if url.scheme == "https" else 80)),
                                 timeout=timeout).close()
        return True
    except OSError:
        return False


def hub_file(repo: str, filename: str, offline: bool | None = None, cache_dir: str | Path | None = None,
             what: str = "Mimi weights", param: str = "weights") -> Path:
    """Path of a hub file in the local Hugging Face cache; downloads it when
    missing unless offline (offline=None follows HF_HUB_OFFLINE). `what` and
    `param` name the file and the block parameter that takes a local path in
    the error messages (shared by the Mimi and Moshi loaders)."""
    how = (f"To provide it: on a machine with internet run "
           f"`huggingface-cli download {repo} {filename}` and copy the Hugging Face cache "
           f"(~/.cache/huggingface/hub, or $HF_HOME) to this machine, or download "
           f"https://huggingface.co/{repo}/resolve/main/{filename} and pass its path as the "
           f"{param} {'option' if str(param).startswith('-') else 'parameter'} "
           f"({_as_option(param, '/path/to/' + os.path.basename(filename))}).")
    try:
        from huggingface_hub import hf_hub_download
    except ImportError as e:  # pragma: no cover
        raise WeightsUnavailableError(f"huggingface_hub is not installed ({e}). {how}")
    if offline is None:
        offline = os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes", "on")
    try:
        return Path(hf_hub_download(repo, filename, cache_dir=cache_dir, local_files_only=True))
    except Exception as cached_err:
        if offline:
            raise WeightsUnavailableError(
                f"{what} file '{filename}' of Hugging Face repo '{repo}' is not in the "
                f"local Hugging Face cache and the hub is offline (HF_HUB_OFFLINE). {how}") from cached_err
    if not hub_reachable():
        raise WeightsUnavailableError(
            f"{what} file '{filename}' of Hugging Face repo '{repo}' is not in the local "
            f"Hugging Face cache and the hub cannot be reached from this machine. {how}")
    try:
        return Path(hf_hub_download(repo, filename, cache_dir=cache_dir))
    except Exception as e:
        raise WeightsUnavailableError(
            f"{what} file '{filename}' of Hugging Face repo '{repo}' is not in the "
            f"local Hugging Face cache and could not be downloaded ({type(e).__name__}: "
            f"{str(e).splitlines()[0] if str(e) else ''}). {how}") from e


def read_state_dict(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Reads a weight file into (state_dict, metadata). WeightsError when the
    file is missing or unreadable."""
    path = Path(path)
    if not path.exists():
        raise WeightsError(f"Mimi weights file {str(path)!r} does not exist")
    if path.is_dir():
        cand = path / MIMI_NAME
        if cand.exists():
            path = cand
        else:
            raise WeightsError(f"{str(path)!r} is a directory without {MIMI_NAME}: name the file")
    meta: dict[str, str] = {}
    if path.suffix in _TORCH_SUFFIXES:
        import torch
        try:
            pkg = torch.load(str(path), map_location="cpu", weights_only=True)
        except Exception as e:
            raise WeightsError(f"cannot read Mimi weights file {str(path)!r} as a torch "
                               f"checkpoint: {type(e).__name__}: {e}") from e
        state = pkg.get("model", pkg) if isinstance(pkg, dict) else None
        if not isinstance(state, dict):
            raise WeightsError(f"{str(path)!r} holds no state dict (expected {{'model': ...}})")
        return state, meta
    try:
        from safetensors import safe_open
        state = {}
        with safe_open(str(path), framework="pt", device="cpu") as f:
            meta = f.metadata() or {}
            for k in f.keys():
                state[k] = f.get_tensor(k)
    except Exception as e:
        raise WeightsError(f"cannot read Mimi weights file {str(path)!r} as safetensors "
                           f"({type(e).__name__}: {e}); expected the Mimi checkpoint "
                           f"{MIMI_NAME} or a file written by largesc.weights.save_mimi") from e
    return state, meta


def load_state_into(model: torch.nn.Module, state: Mapping[str, torch.Tensor], source: str) -> None:
    """Loads a state dict strictly; WeightsError naming missing/unexpected keys
    or shape mismatches when the file is not a Mimi checkpoint."""
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    wrong = [k for k in expected if k in state and tuple(state[k].shape) != tuple(expected[k].shape)]
    # moshi renames a few old codebook keys itself; only judge what it cannot fix
    if missing or unexpected or wrong:
        try:
            model.load_state_dict(state, strict=True)
            return
        except Exception as e:
            detail = []
            if missing:
                detail.append(f"{len(missing)} missing keys (e.g. {missing[:3]})")
            if unexpected:
                detail.append(f"{len(unexpected)} unexpected keys (e.g. {unexpected[:3]})")
            if wrong:
                k = wrong[0]
                detail.append(f"{len(wrong)} tensors of the wrong shape (e.g. {k}: file "
                              f"{tuple(state[k].shape)}, Mimi {tuple(expected[k].shape)})")
            raise WeightsError(f"{source} is not a Mimi checkpoint of the moshi 0.2.13 "
                               f"architecture: " + "; ".join(detail)) from e
    model.load_state_dict(state, strict=True)


def _as_option(param, value):
    """How to write `param` = `value` in a hint: `--opt value` for a command-line
    option, param='value' for a block parameter."""
    return f"`{param} {value}`" if str(param).startswith("-") else f"{param}='{value}'"


def random_hint(param: str = "weights") -> str:
    """The sentence every 'weights unavailable' error ends with: the untrained
    random codec is the plumbing-only alternative."""
    return (f"For plumbing checks only, {_as_option(param, 'random')} builds an UNTRAINED Mimi "
            f"of the real architecture instead: it runs everything, but its tokens and audio "
            f"say nothing about speech quality.")


def resolve(spec: str | Path, offline: bool | None = None, cache_dir: str | Path | None = None,
            param: str = "weights") -> tuple[str, int | Path]:
    """Resolves a spec without building a model: ("random", seed) or ("file", Path).
    `param` names the block parameter or command-line option that took the
    spec, in error messages (WeightsUnavailableError for a hub file that is
    neither cached nor downloadable: how to get it, and `random` for plumbing)."""
    kind, value = parse_spec(spec)
    if kind == "hub":
        try:
            return "file", hub_file(value[0], value[1], offline=offline, cache_dir=cache_dir,
                                    param=param)
        except WeightsUnavailableError as e:
            raise WeightsUnavailableError(f"{e} {random_hint(param)}") from e
    if kind == "file" and not Path(value).exists():
        raise WeightsError(f"Mimi weights file {str(value)!r} does not exist (weight spec "
                           f"{spec!r}); give an existing file, 'hf' for the published "
                           f"checkpoint, or 'random[:seed]' for an untrained model")
    return kind, value


def load_mimi(spec: str | Path = "hf", device: str | None = "cpu", offline: bool | None = None,
              cache_dir: str | Path | None = None, param: str = "weights") -> tuple[MimiModel, dict[str, Any]]:
    """Builds Mimi with the weights named by `spec`. Returns (model, info) with
    info = {"spec", "source", "untrained"}; the model is in eval mode with all
    32 codebooks active and its codebook embeddings materialised. A spec that
    cannot be resolved raises (never falls back): WeightsUnavailableError for a
    hub file that is not cached and cannot be downloaded, WeightsError
    otherwise; `param` names the parameter or option in those messages."""
    device = resolve_device(device)
    kind, value = resolve(spec, offline=offline, cache_dir=cache_dir, param=param)
    if kind == "random":
        model = random_mimi(value, device)
        info = {"spec": str(spec), "source": f"random seed {value}", "untrained": True}
    else:
        state, meta = read_state_dict(value)
        model = build_mimi(device)
        load_state_into(model, state, f"weights file {str(value)!r}")
        info = {"spec": str(spec), "source": str(value),
                "untrained": meta.get(_UNTRAINED_KEY, "0") == "1"}
    info["device"] = device
    model.set_num_codebooks(N_CODEBOOKS)
    for p in model.parameters():
        p.requires_grad_(False)
    # materialise codebook embeddings now (lazy, not thread safe otherwise)
    for rvq in (model.quantizer.rvq_first, model.quantizer.rvq_rest):
        for layer in rvq.vq.layers:
            layer._codebook.register_buffer("_embedding", None, persistent=False)
            _ = layer._codebook.embedding
    return model, info


DEFAULT_TOOL_SPEC = "hf"


def untrained_warning(reason: object, fallback: str, codec: str = "Mimi", system: str = "LargeSC") -> str:
    """The loud banner printed when a tool falls back to untrained weights
    (Mimi for LargeSC; also a neural baseline codec such as EnCodec)."""
    return ("=" * 78 + f"\nWARNING: real {codec} weights are not available here:\n  "
            + str(reason).replace("\n", "\n  ")
            + f"\nRunning {system} with UNTRAINED random codec weights ({fallback}) for plumbing only."
            "\nEvery such result is marked untrained and says nothing about speech quality.\n"
            + "=" * 78)


def tool_weights(spec: str | None = None, seed: int = 0, log: Callable[[str], object] | None = None,
                 option: str = "--weights", offline: bool | None = None, cache_dir: str | Path | None = None) -> str:
    """THE rule for Mimi weights in command-line tools (docs/mimi.md, "When the
    hub is unreachable"); blocks and library calls follow it by calling
    load_mimi, which never falls back.

    spec None: the user gave no weights option. The published checkpoint
        ("hf") if it is cached or downloadable; otherwise "random:SEED", an
        UNTRAINED codec, after a loud warning through `log` (default stderr).
    spec given (any string, "hf" included): the user asked for those weights,
        so they are used or the call fails: returns `spec` if it resolves,
        else raises WeightsUnavailableError (hub file neither cached nor
        downloadable: says how to get it and names `OPTION random` as the
        plumbing-only choice) or WeightsError (bad spec, missing file).

    Returns the weight spec to pass on (to load_mimi, blocks, LinkConfig...).
    A tool declares its option with default=None, e.g.
        ap.add_argument("--weights", default=None, help=W.TOOL_WEIGHTS_HELP)
        weights = W.tool_weights(a.weights, a.seed)   # WeightsError -> ap.error(str(e))
    """
    import sys
    if spec is not None and str(spec).strip() != "":
        resolve(spec, offline=offline, cache_dir=cache_dir, param=option)
        return spec
    try:
        resolve(DEFAULT_TOOL_SPEC, offline=offline, cache_dir=cache_dir, param=option)
        return DEFAULT_TOOL_SPEC
    except WeightsError as e:
        fallback = f"random:{int(seed)}"
        (log or (lambda m: print(m, file=sys.stderr)))(untrained_warning(e, fallback))
        return fallback


TOOL_WEIGHTS_HELP = ("Mimi weights: hf (the published checkpoint, from the Hugging Face cache or "
                     "downloaded), hf:OWNER/REPO[/FILE], a file, or random[:seed] (UNTRAINED; "
                     "plumbing only). Weights named here are used or the tool stops with an "
                     "error. Default: hf if cached or downloadable, else an UNTRAINED random "
                     "codec with a loud warning")
