#
# Copyright 2026 gr-largesc authors.
# SPDX-License-Identifier: GPL-3.0-or-later
#
"""The loss setting, defined once: LossSpec says which packets are lost
(model, parameters, seed; a baseline's alignment), for the LargeSC link's
erasure channel (LossSpec.erasure_channel, sim/link.py) and the baselines
(LossSpec.frame_losses, eval/baselines.py) alike, and largesc-sim builds one
per sweep point and utterance (LossSpec.from_setting, sim/campaign.py).

The losses themselves come from the module's seeded C++ loss models
(``largesc.loss_model``, docs/channel_models.md), imported when first used.
"""

import dataclasses
from typing import Optional, Sequence, Tuple

import numpy as np

from .constants import FRAME_MS

SLOT_MS = FRAME_MS      # LargeSC packet period (one Mimi token frame): 80 ms
ALIGNMENTS = ("slot", "frame")
LOSS_MODELS = ("bernoulli", "gilbert_elliott", "trace")


def _core():
    """The C++ core (loss_model, erasure_channel, measure_bursts)."""
    from .. import largesc_python
    return largesc_python


@dataclasses.dataclass(frozen=True)
class LossSpec:
    """Which packets are lost: model, parameters, seed and alignment.

    ``model`` "bernoulli" uses ``loss_rate`` only; "gilbert_elliott" builds
    the Gilbert channel from ``loss_rate`` and ``mean_burst`` (in packets),
    exactly as ``largesc.loss_model.gilbert_elliott_mean`` (docs/channel_models.md).
    ``alignment`` matters to the baselines only (eval/baselines.py).
    """
    loss_rate: float = 0.0
    model: str = "bernoulli"
    mean_burst: float = 1.0
    seed: int = 0
    alignment: str = "slot"
    trace: tuple = ()   # model "trace": 0/1 per 80 ms slot (1 = lost), repeated

    def __post_init__(self):
        if self.model not in LOSS_MODELS:
            raise ValueError(f"unknown loss model {self.model!r}; known: {', '.join(LOSS_MODELS)}")
        if self.alignment not in ALIGNMENTS:
            raise ValueError(f"unknown alignment {self.alignment!r}; known: {', '.join(ALIGNMENTS)}")
        if not 0.0 <= self.loss_rate < 1.0 and self.model != "trace":
            raise ValueError(f"loss_rate must be in [0, 1), got {self.loss_rate}")
        if self.model == "trace" and (not len(self.trace) or any(v not in (0, 1) for v in self.trace)):
            raise ValueError("loss model 'trace' needs trace: a non-empty tuple of 0/1 (1 = lost)")

    @classmethod
    def from_setting(cls, loss_rate: float, mean_burst: float, seed: int = 0,
                     trace: Optional[Sequence[int]] = None) -> "LossSpec":
        """The loss setting of a largesc-sim sweep point: the replayed `trace`
        when one is given (None: none), else Bernoulli for a mean burst up to
        1 packet and Gilbert-Elliott (mean burst at least 1) above."""
        if trace is not None:
            return cls(model="trace", trace=tuple(int(v) for v in trace), seed=seed)
        model = "bernoulli" if mean_burst <= 1.0 else "gilbert_elliott"
        return cls(loss_rate=loss_rate, model=model, mean_burst=max(mean_burst, 1.0), seed=seed)

    def loss_model(self):
        """A fresh, seeded ``largesc.loss_model``."""
        core = _core()
        if self.model == "trace":
            return core.loss_model.trace([int(v) for v in self.trace], True)
        if self.model == "bernoulli":
            return core.loss_model.bernoulli(self.loss_rate, self.seed)
        return core.loss_model.gilbert_elliott_mean(self.loss_rate, self.mean_burst, self.seed)

    def erasure_channel(self, stats_interval: int = 0):
        """A ``largesc.erasure_channel`` block that drops exactly the packets
        ``pattern`` marks lost (the same C++ model, parameters and seed; a
        trace passed as a pattern, repeated)."""
        kw = dict(model=self.model, seed=self.seed, stats_interval=stats_interval)
        if self.model == "trace":
            kw.update(trace=[int(v) for v in self.trace], trace_repeat=True)
        else:
            kw["loss_rate"] = self.loss_rate
        if self.model == "gilbert_elliott":
            kw["mean_burst"] = self.mean_burst
        return _core().erasure_channel(**kw)

    def nominal(self) -> Tuple[float, float]:
        """(loss rate, mean burst in packets) of the setting: its parameters,
        or for a trace the pattern's own statistics (largesc.measure_bursts;
        mean burst 0 without a loss). The link's controller starts from these."""
        if self.model != "trace":
            return self.loss_rate, self.mean_burst
        m = self.loss_model()
        return m.mean_loss_rate, m.mean_burst_length

    def pattern(self, n: int) -> np.ndarray:
        """``n`` loss decisions (bool, True = lost) from a fresh model."""
        if n <= 0:
            return np.zeros(0, bool)
        return self.loss_model().pattern(int(n)).astype(bool)

    def frame_losses(self, n_frames: int, frame_ms: float, offset_ms: float = 0.0) -> np.ndarray:
        """Loss flag per codec frame (eval/baselines.py's docstring has the
        details). Alignment "slot": a frame is lost when the 80 ms slot of its
        midpoint is lost (one decision per slot); "frame": one decision per
        frame. A trace is 80 ms slots in time, so it always takes the slot
        rule (the one place this rule lives). ``offset_ms`` shifts the frames'
        midpoints (``frame_slots``)."""
        if self.alignment == "frame" and self.model != "trace":
            return self.pattern(n_frames)
        slots = frame_slots(n_frames, frame_ms, offset_ms=offset_ms)
        n_slots = int(slots[-1]) + 1 if n_frames else 0
        return self.pattern(n_slots)[slots]


def frame_slots(n_frames: int, frame_ms: float, slot_ms: float = SLOT_MS, offset_ms: float = 0.0) -> np.ndarray:
    """Index of the 80 ms slot that carries each codec frame: the slot of its
    midpoint, at (i + 0.5) * frame_ms + offset_ms in input time. ``offset_ms``
    is 0 except where a codec's packet i is centred elsewhere (AAC: the MDCT
    window of packet i is centred at i * frame_ms, offset -frame_ms / 2)."""
    mid = (np.arange(n_frames) + 0.5) * frame_ms + offset_ms
    if n_frames and mid[0] < 0:
        raise ValueError(f"offset_ms {offset_ms} puts frame 0's midpoint before time 0")
    return np.floor(mid / slot_ms).astype(np.int64)
