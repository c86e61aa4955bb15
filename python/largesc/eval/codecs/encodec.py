#
# Copyright 2026 gr-largesc authors.
# SPDX-License-Identifier: GPL-3.0-or-later
#
"""EnCodec 24 kHz (the SoundStream-class neural codec the LargeSC paper
compares against) as a baseline under the same packet loss as every other
baseline (eval/baselines.py).

Model: Meta's ``encodec`` package 0.1.1 (MIT code), ``EncodecModel.
encodec_model_24khz``: causal SEANet encoder/decoder, 320-sample hop at
24 kHz = 75 frames/s, residual VQ of 10-bit codebooks. 1.5 kbit/s uses the
first 2 codebooks (20 bits per frame), 3 kbit/s the first 4 (40 bits).

Weights (``weights=`` or the environment variable LARGESC_ENCODEC_WEIGHTS,
same words):

  unset               the published checkpoint ``encodec_24khz-d7cc33bc.th``
                      from the torch hub cache (``$TORCH_HOME/hub/checkpoints``,
                      default ~/.cache/torch/hub/checkpoints), where
                      ``EncodecModel.encodec_model_24khz()`` downloads it.
                      Nothing is downloaded here: without the file the
                      baseline is unavailable (BaselineUnavailable says how to
                      provide it), so default campaigns skip it.
  /path/to/file.th    a state-dict file of the 24 kHz model (the published
                      one under any name; when named like the published file
                      its SHA-256 prefix is checked).
  random / random:N   an UNTRAINED model of the real architecture, seeded
                      (default 0), codebooks filled from its own encoder's
                      output: for plumbing checks only; results carry
                      ``untrained=True`` and a note, and largesc's report
                      keeps them out of every comparison and plot.

The weights (CC-BY-NC 4.0) are not part of this project.

The ``encodec`` package imports torchaudio at module level (utils.py: only
for file I/O and resampling, which this module does not use); torchaudio is
not installed (it must match the venv's torch build), so when it is missing
a placeholder module stands in during the import only and is removed again.
"""

import importlib.util
import os
import re
import sys
import types

import numpy as np

from ...codec import weights as W
from ...common.weights_spec import RANDOM, WeightsSpecError, parse_weights_spec
from ..baselines import HEADER_BYTES, Baseline, BaselineUnavailable, loss_fade
from ..speech import file_digest

WEIGHTS_ENV = "LARGESC_ENCODEC_WEIGHTS"
CHECKPOINT = "encodec_24khz-d7cc33bc.th"       # the name encodec 0.1.1 downloads
SAMPLE_RATE = 24000
HOP = 320                      # samples per EnCodec frame at 24 kHz (13.33 ms)
BITS_PER_CODEBOOK = 10
BANDWIDTHS = (1.5, 3.0, 6.0, 12.0, 24.0)       # kbit/s the 24 kHz model offers
_UNTRAINED_KEY = W._UNTRAINED_KEY              # marker a save_encodec(untrained=True) file carries
_MODELS = {}


class EncodecWeightsMissing(BaselineUnavailable):
    """No EnCodec weights anywhere (no hub cache file, no LARGESC_ENCODEC_WEIGHTS):
    a tool may fall back to an UNTRAINED model when the user asked for the
    baseline by name (the rule of weights.tool_weights)."""


class EncodecWeightsError(BaselineUnavailable):
    """A weights file that cannot be read or is not the EnCodec 24 kHz model."""


def _import_encodec():
    """``encodec.model.EncodecModel``, or BaselineUnavailable saying how to
    install the package."""
    if "encodec.model" in sys.modules:
        return sys.modules["encodec.model"].EncodecModel
    try:
        import torch  # noqa: F401
    except ImportError as e:
        raise BaselineUnavailable(f"EnCodec needs torch ({e})") from None
    if importlib.util.find_spec("encodec") is None:
        raise BaselineUnavailable("EnCodec needs the Python package encodec 0.1.1: pip install "
                                  "--no-deps encodec==0.1.1 (requirements-nodeps.txt; ./setup.sh "
                                  "does this)")
    stub = None
    if importlib.util.find_spec("torchaudio") is None:
        stub = types.ModuleType("torchaudio")

        def _missing(name):
            raise ImportError(f"torchaudio.{name}: torchaudio is not installed (encodec's file "
                              "I/O and resampling are not used by gr-largesc)")
        stub.__getattr__ = _missing
        sys.modules["torchaudio"] = stub
    try:
        from encodec.model import EncodecModel
    finally:
        if stub is not None and sys.modules.get("torchaudio") is stub:
            del sys.modules["torchaudio"]
    return EncodecModel


def _architecture(EncodecModel):
    """``encodec_model_24khz(pretrained=False)`` without torch's
    FutureWarning about the weight_norm the package uses."""
    import warnings
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*weight_norm.*", category=FutureWarning)
        return EncodecModel.encodec_model_24khz(pretrained=False)


def hub_checkpoint_path():
    """Where torch.hub keeps the published checkpoint (torch.hub.get_dir()
    rule without importing torch: $TORCH_HOME, else $XDG_CACHE_HOME/torch,
    else ~/.cache/torch; then hub/checkpoints)."""
    home = os.getenv("TORCH_HOME") or os.path.join(os.getenv("XDG_CACHE_HOME", "~/.cache"), "torch")
    return os.path.join(os.path.expanduser(home), "hub", "checkpoints", CHECKPOINT)


def resolve_weights(spec=None):
    """("random", seed) or ("file", path) for a weight spec (None: the
    environment variable, else the hub cache). BaselineUnavailable when no
    weights are there, with what to do."""
    source = "argument"
    if spec is None:
        spec = os.environ.get(WEIGHTS_ENV) or None
        source = WEIGHTS_ENV
    if spec is None:
        path = hub_checkpoint_path()
        if os.path.isfile(path):
            return ("file", path)
        raise EncodecWeightsMissing(
            f"no EnCodec weights: {path} does not exist and {WEIGHTS_ENV} is not set. Copy the "
            f"published {CHECKPOINT} there (or set {WEIGHTS_ENV}=/path/to/{CHECKPOINT}); "
            f"{WEIGHTS_ENV}=random runs an UNTRAINED model (plumbing only, never speech quality)")
    spec = str(spec)
    try:
        ws = parse_weights_spec(spec)
    except WeightsSpecError as e:
        raise EncodecWeightsError(f"EnCodec weights ({source}): {e}") from None
    if ws.kind == RANDOM:
        return (RANDOM, ws.value)
    path = str(ws.value)
    if not os.path.isfile(path):
        raise EncodecWeightsError(f"EnCodec weights {spec!r} ({source}): no such file; give the "
                                  f"path of {CHECKPOINT}, or 'random[:seed]' for an UNTRAINED model")
    return ("file", os.path.abspath(path))


def build_untrained(seed=0):
    """The 24 kHz architecture with seeded random weights; its RVQ
    codebooks (zero in a fresh model) filled level by level with vectors
    drawn from the residual its own encoder leaves on seeded calibration
    audio (noise bursts and a chirp), so that every level spreads its codes
    over the codebook. Leaves torch's global random state as it was."""
    import torch
    EncodecModel = _import_encodec()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        model = _architecture(EncodecModel)
        g = torch.Generator().manual_seed(int(seed) + 7919)
        audio = W.calibration_audio(2 * SAMPLE_RATE, SAMPLE_RATE, g)
        with torch.no_grad():
            emb = model.encoder(audio.view(1, 1, -1))                 # [1, D, T]
            residual = emb[0].T.contiguous()                          # [T, D]
            for layer in model.quantizer.vq.layers:
                cb = layer._codebook
                pick = torch.randint(0, residual.shape[0], (cb.embed.shape[0],), generator=g)
                vec = residual[pick] + 0.1 * residual.std() * torch.randn(cb.embed.shape, generator=g)
                cb.embed.copy_(vec)
                cb.embed_avg.copy_(vec)
                cb.inited.fill_(1.0)
                residual = residual - cb.decode(cb.encode(residual))
    model.eval()
    return model


def save_encodec(model, path, untrained=False):
    """Write ``model``'s state dict as a torch file (the published
    checkpoint's format); ``untrained=True`` adds a marker so that
    load_encodec labels it untrained."""
    import torch
    sd = dict(model.state_dict())
    if untrained:
        sd[_UNTRAINED_KEY] = torch.ones(1)
    torch.save(sd, path)


def load_encodec(spec=None):
    """(model, info) for a weight spec (see the module docstring); info =
    {"spec", "source", "untrained"}. Models are cached per process (per file
    path, size and modification time, or per seed)."""
    kind, value = resolve_weights(spec)
    if kind == "random":
        key = ("random", value)
    else:
        st = os.stat(value)
        key = ("file", value, st.st_size, st.st_mtime_ns)
    if key in _MODELS:
        return _MODELS[key]
    if kind == "random":
        res = (build_untrained(value), {"spec": f"random:{value}", "source": f"random seed {value}",
                                         "untrained": True})
    else:
        res = _load_file(value)
    _MODELS[key] = res
    return res


def _load_file(path):
    import torch
    EncodecModel = _import_encodec()
    m = re.fullmatch(r"encodec_24khz-([0-9a-f]{8})\.th", os.path.basename(path))
    if m and file_digest(path, 8) != m.group(1):
        raise EncodecWeightsError(f"{path}: SHA-256 does not start with {m.group(1)} as its name "
                                  "says: a damaged or different file")
    try:
        sd = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise EncodecWeightsError(f"{path}: not a readable torch state-dict file ({type(e).__name__}: "
                                  f"{str(e).splitlines()[0] if str(e) else ''})") from None
    if not isinstance(sd, dict) or not all(isinstance(v, torch.Tensor) for v in sd.values()):
        raise EncodecWeightsError(f"{path}: holds {type(sd).__name__}, not a state dict of tensors "
                                  f"(the published {CHECKPOINT} is one)")
    sd = dict(sd)
    untrained = bool(sd.pop(_UNTRAINED_KEY, torch.zeros(1)).reshape(-1)[0] != 0)
    model = _architecture(EncodecModel)
    try:
        model.load_state_dict(sd, strict=True)
    except RuntimeError as e:
        lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
        raise EncodecWeightsError(f"{path}: not an EnCodec 24 kHz model: "
                                  + " ".join(lines[1:3])[:400]) from None
    model.eval()
    return model, {"spec": path, "source": path, "untrained": untrained}


def conceal_codes(codes, lost):
    """Receiver-side concealment in the code domain: a lost frame takes the
    codes of the last received frame; frames lost before any arrived get
    codes 0 (their output is muted by the caller).

    ``codes`` [K, T] int, ``lost`` [T] bool -> (codes [K, T], run [T]:
    0 for a received frame, n for the n-th frame of a loss run, -1 for a
    frame lost before any arrived)."""
    codes = np.asarray(codes)
    out = codes.copy()
    run = np.zeros(codes.shape[1], np.int64)        # frames since the run began (0: received)
    last = None
    for t in range(codes.shape[1]):
        if not lost[t]:
            last = t
            continue
        run[t] = run[t - 1] + 1 if t and lost[t - 1] else 1
        out[:, t] = codes[:, last] if last is not None else 0
        if last is None:
            run[t] = -1                             # nothing received yet: silence
    return out, run


class EnCodec(Baseline):
    """EnCodec 24 kHz at 1.5 or 3 kbit/s (see the module docstring).

    Frames: one EnCodec frame = 320 samples at 24 kHz = 13.33 ms, K = 2 (1.5
    kbit/s) or 4 (3 kbit/s) codes of 10 bits. Slot alignment: exactly 6
    frames per 80 ms slot (frame midpoints at (i + 0.5) * 13.33 ms), 120 or
    240 bits per radio packet. Frame alignment: each frame in its own packet
    (75 packets/s).

    A lost frame: the codes of the last received frame are decoded in its
    place (the code-domain counterpart of LargeSC's hold recovery), and the
    output of a loss run fades linearly to silence over 100 ms (FADE_MS),
    as the Codec2 and LPCNet baselines do. Encoder and decoder are causal
    with no lookahead, so encoding the whole utterance at once gives the
    same codes and output as frame-by-frame streaming (tested)."""
    codec_rate = SAMPLE_RATE
    frame_ms = HOP * 1000.0 / SAMPLE_RATE
    codec_delay_ms = 0.0        # causal encoder/decoder, no lookahead

    def __init__(self, bandwidth=1.5, weights=None, name=None):
        bandwidth = float(bandwidth)
        if bandwidth not in (1.5, 3.0):
            raise ValueError(f"EnCodec baseline bandwidth must be 1.5 or 3 kbit/s (the paper's "
                             f"low rates), got {bandwidth:g}")
        self.bandwidth = bandwidth
        self.n_codebooks = int(round(bandwidth * 1000 / (BITS_PER_CODEBOOK * SAMPLE_RATE / HOP)))
        self.frame_bits = self.n_codebooks * BITS_PER_CODEBOOK
        self.weights = weights
        self.name = name or f"encodec_{bandwidth:g}k"
        self.description = f"EnCodec 24 kHz, {bandwidth:g} kbit/s ({self.n_codebooks} x 10-bit codes per 13.3 ms)"
        self.untrained = False
        self.weights_info = None

    def check_available(self):
        """Package importable and weights found; a weights file is also
        loaded (once per process) so that a bad one fails here, before any
        work. Random weights are built on first use."""
        _import_encodec()
        if resolve_weights(self.weights)[0] == "file":
            load_encodec(self.weights)

    def model(self):
        model, info = load_encodec(self.weights)
        self.untrained = bool(info["untrained"])
        self.weights_info = info
        return model

    def encode_codes(self, pcm24):
        """Codes [K, T] (int64) of float audio at 24 kHz."""
        import torch
        model = self.model()
        x = torch.from_numpy(np.asarray(pcm24, np.float32)).view(1, 1, -1)
        with torch.no_grad():
            emb = model.encoder(x)
            codes = model.quantizer.encode(emb, model.frame_rate, self.bandwidth)   # [K, 1, T]
        return codes[:, 0].numpy().astype(np.int64)

    def decode_codes(self, codes):
        """Float audio at 24 kHz from codes [K, T]."""
        import torch
        model = self.model()
        with torch.no_grad():
            emb = model.quantizer.decode(torch.from_numpy(np.asarray(codes, np.int64))[:, None])
            y = model.decoder(emb)
        return y[0, 0].numpy().astype(np.float32)

    def _encode(self, pcm16):
        codes = self.encode_codes(pcm16.astype(np.float32) / 32768.0)
        if codes.shape != (self.n_codebooks, len(pcm16) // HOP):
            raise RuntimeError(f"EnCodec gave codes of shape {codes.shape} for {len(pcm16)} samples")
        return [tuple(int(c) for c in codes[:, t]) for t in range(codes.shape[1])]

    def _decode(self, frames, lost):
        codes = np.array(frames, np.int64).T.reshape(self.n_codebooks, len(frames))
        codes, _ = conceal_codes(codes, lost)
        y = self.decode_codes(codes)[:len(frames) * HOP]
        return y * loss_fade(lost, HOP, SAMPLE_RATE).astype(np.float32)

    def run(self, audio, sr, loss=None, header_bytes=HEADER_BYTES):
        self.model()        # resolve and load the weights first (errors before any work)
        return super().run(audio, sr, loss, header_bytes)

    def _notes(self):
        info = self.weights_info or {}
        notes = [f"EnCodec weights: {info.get('source', '?')}"]
        if self.untrained:
            notes.append("UNTRAINED EnCodec (random weights): plumbing only, says nothing about "
                         "speech quality; kept out of comparisons")
        return notes + super()._notes()
