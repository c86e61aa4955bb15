#
# Copyright 2026 gr-largesc authors.
# SPDX-License-Identifier: GPL-3.0-or-later
#
"""Baseline speech codecs under the same packet loss as the LargeSC link:
the framework every codec runs on.

Each baseline: encode -> per-frame loss decided by the module's own seeded
loss models (``largesc.loss_model``, the C++ core that also drives the
``erasure_channel`` block) -> decode with the codec's native concealment.
Everything runs without a GNU Radio scheduler.

The codecs live in eval/codecs/, one module per codec family (codec2, lpcnet,
opus, aac, encodec); codecs/__init__.py lists the systems and holds the
registry ``get_baseline`` looks names up in, each module imported on first
use (docs/evaluation.md has the numbers). This module imports none of them.

Loss alignment (``LossSpec.alignment``):

- ``"slot"`` (default): every system sends one radio packet per 80 ms slot
  (the LargeSC packet period) carrying the codec frames of that slot, and the
  loss pattern is ``model.pattern(n_slots)``: the very same array, for the
  same model, parameters and seed, that the LargeSC link gets. A codec frame
  is lost when the slot holding its midpoint is lost (40 ms frames: 2 per
  slot, 20 ms: 4, 30 ms: frames straddling a boundary go with their midpoint).
  Every system loses the same stretches of speech.
- ``"frame"``: every codec frame travels in its own packet at the codec's own
  packet rate, and the pattern is ``model.pattern(n_frames)`` from a model
  with the same parameters and seed: one loss decision per codec packet. A
  Gilbert-Elliott mean burst of B packets then lasts B codec frames (shorter
  in time for shorter frames).

Trace replay (``model="trace"``, a recorded loss pattern: docs/traces.md):
a trace is a sequence of 80 ms LargeSC air slots in time, so the rule is the
same in both alignments: a baseline packet (or codec frame) is lost when the
80 ms slot its midpoint falls in is lost (``frame_slots``); the trace repeats
when the speech is longer than it, as in the LargeSC link's erasure channel.
"""

import ctypes
import ctypes.util
import dataclasses
import importlib

import numpy as np

from .. import largesc_python as _core
from ..common.loss import SLOT_MS, LossSpec, frame_slots
from . import codecs as _codecs
from .speech import resample

HEADER_BYTES = _core.HEADER_BYTES   # per radio packet, as LargeSC's packet format v1 (3 bytes)
FADE_MS = 100.0         # repeat-with-fade concealment: gain 1 -> 0 over this


def loss_fade(lost, n, rate, fade_ms=FADE_MS):
    """Per-sample gain (float64) of the repeat-with-fade concealment for
    frames of n samples at `rate`: 1 on received frames, 0 on frames lost
    before any arrived, and over a run of lost frames a linear fade from 1
    to 0 in fade_ms, restarting at 1 after every received frame."""
    lost = np.asarray(lost, bool)
    gain = np.ones(len(lost) * n)
    fade_len = rate * fade_ms / 1000
    seen, run = False, 0
    for i, gone in enumerate(lost):
        if not gone:
            seen, run = True, 0
            continue
        gain[i * n:(i + 1) * n] = (np.clip(1.0 - (run + np.arange(n)) / fade_len, 0, 1)
                                   if seen else 0.0)
        run += n
    return gain


class BaselineUnavailable(RuntimeError):
    """The codec library this baseline needs is not installed."""


def packet_bytes(frame_bits, frame_ms, alignment, header_bytes=HEADER_BYTES, offset_ms=0.0):
    """On-air bytes of each radio packet: a header plus the codec frames it
    carries, bit-packed without gaps (``frame_bits`` = bits of each frame)."""
    frame_bits = np.asarray(frame_bits, np.int64)
    if alignment == "frame":
        return header_bytes + (frame_bits + 7) // 8
    slots = frame_slots(len(frame_bits), frame_ms, offset_ms=offset_ms)
    bits = np.bincount(slots, weights=frame_bits, minlength=int(slots[-1]) + 1 if len(slots) else 0)
    return header_bytes + (bits.astype(np.int64) + 7) // 8


# --------------------------------------------------------------------------
# results


@dataclasses.dataclass
class BaselineResult:
    """Output of one baseline run. ``audio`` is float32 mono at ``sr``, the
    same length as the input (codec delay not removed: evaluate with
    ``metrics.evaluate``, which aligns once)."""
    system: str
    audio: np.ndarray
    sr: int
    loss: LossSpec
    frame_lost: np.ndarray          # bool per codec frame
    frames: int
    frames_lost: int
    packets: int
    packets_lost: int
    payload_bps: float              # codec payload (the "token payload" column)
    on_air_bps: float               # payload + packet headers + byte padding
    latency_ms: float               # algorithmic, mic to speaker, see docs
    latency_breakdown: dict
    notes: list
    # True when a neural codec ran without its trained weights (EnCodec with
    # weights "random"): plumbing only, never speech quality; largesc's report
    # keeps such rows out of every comparison and plot
    untrained: bool = False

    def row(self):
        """Report fields without the audio (JSON friendly)."""
        d = {k: getattr(self, k) for k in (
            "system", "sr", "frames", "frames_lost", "packets", "packets_lost",
            "payload_bps", "on_air_bps", "latency_ms", "untrained")}
        d["loss"] = dataclasses.asdict(self.loss)
        d["latency_breakdown"] = dict(self.latency_breakdown)
        d["notes"] = list(self.notes)
        return d


# --------------------------------------------------------------------------
# shared by the codec modules (eval/codecs/): C libraries, packet sizes


def load_lib(names, what, install):
    """The first of the shared libraries ``names`` (file names or
    ``find_library`` names) that loads, or BaselineUnavailable naming the
    Debian package ``install``."""
    for n in names:
        path = ctypes.util.find_library(n) if "." not in n else n
        if path:
            try:
                return ctypes.CDLL(path)
            except OSError:
                continue
    raise BaselineUnavailable(f"{what} library not found ({', '.join(names)}); install the "
                              f"Debian package {install}")


class CHandle:
    """Owns a C handle (``.handle``) and frees it with ``fn`` when it goes
    away: a decoder closure keeps one (``dec._keep = CHandle(destroy, handle)``)."""
    def __init__(self, fn, handle):
        self.fn, self.handle = fn, handle

    def __del__(self):
        try:
            self.fn(self.handle)
        except Exception:
            pass


class PacketSizedFrames:
    """For codecs whose packets vary in size (Opus, AAC): each frame's bits
    are its own packet's."""

    def _frame_bits(self, frames):
        return np.array([8 * len(f) for f in frames], np.int64)


# --------------------------------------------------------------------------
# baselines


class Baseline:
    """Base class: subclasses set the class attributes and implement
    ``_encode(pcm16) -> list of frames`` and ``_decode_frame(frame)``."""
    name = ""
    codec_rate = 8000       # Hz the codec runs at
    frame_ms = 20.0
    frame_bits = 0          # nominal bits per frame
    codec_delay_ms = 0.0    # measured offline delay of the decoded output
    frame_offset_ms = 0.0   # packet i's centre is (i + 0.5) * frame_ms + this (frame_slots)
    description = ""

    @property
    def frame_samples(self):
        return int(round(self.codec_rate * self.frame_ms / 1000))

    @property
    def payload_bps(self):
        return self.frame_bits * 1000.0 / self.frame_ms

    def check_available(self):
        """Raise BaselineUnavailable if the codec cannot run here."""

    # -- to implement
    def _encode(self, pcm16):
        raise NotImplementedError

    def _decoder(self):
        """A fresh decoder: callable(frame or None for concealment) -> int16 pcm."""
        raise NotImplementedError

    # -- shared
    def _to_pcm16(self, audio, sr):
        x = resample(np.asarray(audio, np.float32), sr, self.codec_rate)
        n = self.frame_samples
        pad = (-len(x)) % n
        x = np.concatenate([x, np.zeros(pad, np.float32)])
        return np.round(np.clip(x, -1, 32767 / 32768) * 32768).astype(np.int16)

    def _decode(self, frames, lost):
        """Repeat-with-fade concealment (Codec2, LPCNet, AAC): a lost frame is
        decoded from the last received frame's bits (keeps the decoder state
        smooth), and the output of a loss run fades linearly from 1 to 0 over
        FADE_MS; a loss before any frame arrived gives silence (loss_fade)."""
        dec = self._decoder()
        n = self.frame_samples
        gain = loss_fade(lost, n, self.codec_rate)
        out = np.zeros(len(frames) * n, np.float32)
        last = None
        for i, fr in enumerate(frames):
            if not lost[i]:
                last = fr
                out[i * n:(i + 1) * n] = dec(fr)
            elif last is not None:
                out[i * n:(i + 1) * n] = dec(last) * gain[i * n:(i + 1) * n]
        return out / 32768.0

    def latency(self, alignment):
        """Algorithmic latency, microphone to speaker, in ms, with breakdown."""
        b = {"frame_ms": self.frame_ms, "codec_delay_ms": self.codec_delay_ms}
        if alignment == "slot":
            b["packetization_ms"] = max(0.0, SLOT_MS - self.frame_ms)
        return sum(b.values()), b

    def run(self, audio, sr, loss=None, header_bytes=HEADER_BYTES):
        """Encode ``audio`` (float, any rate ``sr``), lose frames per ``loss``
        (LossSpec; None = no loss), decode with concealment, and return a
        BaselineResult with audio at ``sr``, the same length as the input."""
        self.check_available()
        loss = loss if loss is not None else LossSpec()
        audio = np.asarray(audio, np.float32)
        self._repeatable = self._reset_random()
        pcm = self._to_pcm16(audio, sr)
        frames = self._encode(pcm)
        off = self.frame_offset_ms
        lost = loss.frame_losses(len(frames), self.frame_ms, offset_ms=off)
        y = self._decode(frames, lost)
        y = resample(y, self.codec_rate, sr)[:len(audio)]
        if len(y) < len(audio):
            y = np.concatenate([y, np.zeros(len(audio) - len(y), np.float32)])
        fbits = self._frame_bits(frames)
        pbytes = packet_bytes(fbits, self.frame_ms, loss.alignment, header_bytes, offset_ms=off)
        if loss.alignment == "frame":
            packets, packets_lost = len(frames), int(lost.sum())
            period_ms = self.frame_ms
        else:
            slots = frame_slots(len(frames), self.frame_ms, offset_ms=off)
            packets = int(slots[-1]) + 1 if len(frames) else 0
            packets_lost = int(loss.pattern(packets).sum())
            period_ms = SLOT_MS
        # steady-state rates: the last packet may be part-filled, leave it out
        full = pbytes[:-1] if len(pbytes) > 1 else pbytes
        on_air_bps = float(np.mean(full) * 8 * 1000.0 / period_ms)
        self._peak_on_air_bps = float(np.max(pbytes) * 8 * 1000.0 / period_ms)
        lat, breakdown = self.latency(loss.alignment)
        return BaselineResult(
            system=self.name, audio=y.astype(np.float32), sr=int(sr), loss=loss,
            frame_lost=lost, frames=len(frames), frames_lost=int(lost.sum()),
            packets=packets, packets_lost=packets_lost,
            payload_bps=float(np.sum(fbits) / (len(frames) * self.frame_ms / 1000.0)),
            on_air_bps=on_air_bps,
            latency_ms=float(lat), latency_breakdown=breakdown, notes=list(self._notes()),
            untrained=bool(getattr(self, "untrained", False)))

    def _frame_bits(self, frames):
        return np.full(len(frames), self.frame_bits, np.int64)

    def _reset_random(self):
        """Reset codec-internal random state; False if that is impossible."""
        return True

    def _notes(self):
        if not getattr(self, "_repeatable", True):
            return ["libcodec2 random state could not be reset: output varies from run to run"]
        return []


# --------------------------------------------------------------------------
# the registry: codecs/__init__.py's table, each module imported on first use


BASELINES = tuple(_codecs.REGISTRY)
# EnCodec is unavailable (skipped, with the reason) until its weights are
# found: a default campaign never grows an untrained EnCodec row by itself
DEFAULT_BASELINES = ("codec2_700c", "codec2_1200", "codec2_3200", "opus_6k", "lpcnet_1733", "aac_10k",
                     "encodec_1.5k", "encodec_3k")


def get_baseline(name, weights=None):
    """A baseline by name; ValueError listing the known names otherwise.
    `weights`: a weight spec for a neural baseline (EnCodec: a file or
    'random[:seed]'; see codecs.encodec.resolve_weights); None = its default
    lookup. ValueError for a codec that takes no weights."""
    if name not in _codecs.REGISTRY:
        raise ValueError(f"unknown codec {name!r}; known: {', '.join(BASELINES)}")
    b = _create(name)
    if weights is not None:
        if not hasattr(b, "weights"):
            raise ValueError(f"codec {name!r} takes no weights")
        b.weights = weights
    return b


def _create(name):
    """A fresh instance of the registered codec ``name``, importing its
    module (eval/codecs/) when first asked for."""
    module, cls, args, kwargs = _codecs.REGISTRY[name]
    mod = importlib.import_module(f"{_codecs.__name__}.{module}")
    return getattr(mod, cls)(*args, **kwargs)


def available_baselines(names=None):
    """{name: (available, reason)} for the baselines `names` (default: every
    one) on this machine. Checking a neural codec reads its weights file."""
    res = {}
    for name in (BASELINES if names is None else names):
        b = get_baseline(name)
        try:
            b.check_available()
            res[name] = (True, "")
        except BaselineUnavailable as e:
            res[name] = (False, str(e))
    return res


def run_baseline(name, audio, sr, loss=None, header_bytes=HEADER_BYTES, weights=None):
    """Shortcut: ``get_baseline(name, weights).run(audio, sr, loss)``."""
    return get_baseline(name, weights).run(audio, sr, loss, header_bytes)
