#
# Copyright 2026 gr-largesc authors.
# SPDX-License-Identifier: GPL-3.0-or-later
#
"""In-band UEP planning: the adaptive controller's math, free of the scheduler.

A *plan* for the packet of frame n is the number of primary codebooks K of
frame n plus, for offsets d = 1..D, the number r_d of leading codebooks of
frame n-d that ride again in packet n (see docs/interfaces.md and
docs/uep_controller.md). Everything here is plain Python/numpy: the
`adaptive_controller` block wraps it, the QA tests and benchmarks call it
directly.

Packet format limits (docs/interfaces.md): K in 1..32, r_d in 0..15, D <= 2.
Packet bytes = 3 (header) + ceil(11 * (K + sum r_d) / 8) (+ 2 with CRC-16).

Objective (steady state): with the same plan in every packet, codebook c of a
frame is carried by the packets at offsets O_c = {0 if c < K} u {d : r_d > c}
from the frame's own packet, and the expected delivered importance is

    J(plan) = sum_c w_c * P(at least one packet at offsets O_c arrives).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from .. import largesc_python as _core
from ..common import params as P
from ..common.constants import FRAME_MS, FRAME_RATE, MAX_MEAN_BURST, N_CODEBOOKS  # noqa: F401
from ..largesc_python import loss_model as _core_loss_model

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Mapping, Sequence

    import numpy.typing as npt

# token frames as the packet format carries them
TOKEN_BITS = _core.TOKEN_BITS  # 11: 2048-entry codebooks
SLOT_BITRATE = TOKEN_BITS * FRAME_RATE  # 137.5 bit/s per token slot per frame

# packet format limits, from the C++ packet core (uep_packetizer)
HEADER_BYTES = _core.HEADER_BYTES
CRC_BYTES = _core.CRC_BYTES
MAX_K = N_CODEBOOKS
MAX_COPIES = _core.MAX_COPIES
MAX_OFFSET = _core.MAX_COPY_OFFSET

# The paper quotes 2.06 kbit/s for 15 tokens/frame, which is 2062.5 bit/s
# exactly: its budgets are rounded. A budget within 1 % below a whole number of
# slots counts as that number of slots.
BUDGET_TOLERANCE = 0.01

# Default per-codebook importance (docs/uep_controller.md): the semantic
# codebook 0 carries the linguistic content (a wrong token there is a wrong
# phoneme), acoustic codebook k >= 1 refines the residual left by k-1, whose
# energy falls roughly geometrically in a residual VQ.
W_SEMANTIC = 1.0
W_FIRST_ACOUSTIC = 0.5
W_ACOUSTIC_DECAY = 0.75
# codebooks a frame without voice activity needs (background / silence)
SILENCE_CODEBOOKS = 2

_EPS = 1e-12


def slots_for_budget(budget_bps: float) -> int:
    """Token slots per frame S = floor(B * 1.01 / 137.5) for a token-payload
    budget B in bit/s: 550 -> 4, 1100 -> 8, 2060 -> 15. Raises ValueError for a
    budget that buys no slot."""
    try:
        b = float(budget_bps)
    except (TypeError, ValueError):
        raise ValueError(f"budget must be a number of bit/s, got {budget_bps!r}") from None
    if not math.isfinite(b):
        raise ValueError(f"budget must be finite, got {budget_bps!r}")
    s = int(math.floor(b * (1.0 + BUDGET_TOLERANCE) / SLOT_BITRATE + 1e-9))
    if s < 1:
        raise ValueError(f"budget {b:g} bit/s buys no token slot: it must be at least "
                         f"{SLOT_BITRATE / (1 + BUDGET_TOLERANCE):.1f} bit/s "
                         f"(one 11-bit token per 80 ms frame)")
    return s


def default_weights(n_codebooks: int = N_CODEBOOKS) -> npt.NDArray[np.float64]:
    """w_0 = 1 (semantic), w_k = 0.5 * 0.75**(k-1) for k >= 1 (acoustic)."""
    k = np.arange(n_codebooks, dtype=float)
    w = W_FIRST_ACOUSTIC * W_ACOUSTIC_DECAY ** np.maximum(k - 1, 0)
    w[0] = W_SEMANTIC
    return w


def check_weights(weights: str | Iterable[float] | None, n_codebooks: int = N_CODEBOOKS) -> npt.NDArray[np.float64]:
    """Returns the weights as a float array of length n_codebooks (a shorter
    list is padded with zeros). They must be finite, >= 0, non-increasing and
    w_0 > 0."""
    if weights is None or (isinstance(weights, str) and weights == "default"):
        return default_weights(n_codebooks)
    if isinstance(weights, str):
        raise ValueError(f"weights must be 'default' or a list of numbers, got {weights!r}")
    try:
        w = np.asarray(list(weights), dtype=float)
    except (TypeError, ValueError):
        raise ValueError(f"weights must be 'default' or a list of numbers, got {weights!r}") from None
    if w.ndim != 1 or not 1 <= len(w) <= n_codebooks:
        raise ValueError(f"weights must be a list of 1..{n_codebooks} numbers, got {len(w)}")
    if not np.all(np.isfinite(w)) or np.any(w < 0) or w[0] <= 0:
        raise ValueError("weights must be finite and >= 0, with weights[0] > 0")
    if np.any(np.diff(w) > 0):
        raise ValueError("weights must be non-increasing with the codebook index "
                         "(codebook k is never more important than codebook k-1)")
    return np.concatenate([w, np.zeros(n_codebooks - len(w))])


def silence_weights(weights: npt.ArrayLike, n_silence: int = SILENCE_CODEBOOKS) -> npt.NDArray[np.float64]:
    """Weights for a frame without voice activity: the first n_silence
    codebooks keep their weight, the others count for nothing."""
    w = np.array(weights, dtype=float)
    w[n_silence:] = 0.0
    return w


# ----------------------------------------------------------------------------
# plans and rates


@dataclass(frozen=True)
class Plan:
    """K primary codebooks of frame n; copies[d-1] = r_d leading codebooks of
    frame n-d repeated in packet n."""
    k: int
    copies: tuple[int, ...] = ()

    @property
    def max_offset(self) -> int:
        return len(self.copies)

    @property
    def slots(self) -> int:
        return self.k + sum(self.copies)

    def offsets(self, c: int) -> tuple[int, ...]:
        """Steady-state offsets of the packets that carry codebook c."""
        o = [0] if c < self.k else []
        return tuple(o + [d + 1 for d, r in enumerate(self.copies) if r > c])

    def check(self, max_slots: int | None = None) -> Plan:
        """Raises ValueError unless the plan fits the packet format (and
        max_slots)."""
        if not 1 <= self.k <= MAX_K:
            raise ValueError(f"K must be in 1..{MAX_K}, got {self.k}")
        if len(self.copies) > MAX_OFFSET:
            raise ValueError(f"at most {MAX_OFFSET} copy offsets, got {len(self.copies)}")
        for r in self.copies:
            if not 0 <= r <= MAX_COPIES:
                raise ValueError(f"r_d must be in 0..{MAX_COPIES}, got {r}")
        if max_slots is not None and self.slots > max_slots:
            raise ValueError(f"plan uses {self.slots} slots, budget is {max_slots}")
        return self

    def __str__(self) -> str:
        return f"K={self.k} r={list(self.copies)}"


def packet_bytes(plan: Plan, crc: bool = False) -> int:
    """On-air bytes of one packet: header + 11-bit tokens (+ CRC-16), as the
    C++ packet core builds it."""
    copies = list(plan.copies) + [0] * (MAX_OFFSET - len(plan.copies))
    return _core.packet_size(_core.packet_header(k=plan.k, r1=copies[0], r2=copies[1], crc=crc))


def token_bitrate(plan: Plan) -> float:
    """Token payload bit rate (the paper's figure): 11 bit x slots x 12.5/s."""
    return SLOT_BITRATE * plan.slots


def on_air_bitrate(plan: Plan, crc: bool = False) -> float:
    """Bit rate on air, header (and CRC) included: 8 x packet bytes x 12.5/s."""
    return 8 * packet_bytes(plan, crc) * FRAME_RATE


def playout_latency_ms(max_offset: int) -> float:
    """Playout delay the receiver adds to wait for copies at offsets up to D."""
    if not 0 <= int(max_offset) <= MAX_OFFSET:
        raise ValueError(f"max offset D must be in 0..{MAX_OFFSET}, got {max_offset}")
    return int(max_offset) * FRAME_MS


def fixed_plan(slots: int, max_offset: int = 0, n_q: int = N_CODEBOOKS) -> Plan:
    """The baseline: K = min(S, n_q, 32) primary codebooks, no copies."""
    return Plan(max(1, min(int(slots), int(n_q), MAX_K)), (0,) * int(max_offset))


def all_plans(slots: int, max_offset: int, n_q: int = N_CODEBOOKS, copies_within_k: bool = True) -> Iterator[Plan]:
    """Every valid plan using at most `slots` slots (r_d <= K when
    copies_within_k)."""
    kmax = min(slots, n_q, MAX_K)
    for k in range(1, kmax + 1):
        rcap = min(MAX_COPIES, k if copies_within_k else MAX_COPIES)
        for r in itertools.product(range(rcap + 1), repeat=max_offset):
            if k + sum(r) <= slots:
                yield Plan(k, tuple(r))


# ----------------------------------------------------------------------------
# loss models


class LossModel:
    """Packet loss as a two-state Gilbert-Elliott chain (i.i.d. is the special
    case of a single effective state). Same conventions as largesc.loss_model
    (docs/channel_models.md): the first state is drawn from the stationary
    distribution; for each packet the loss is decided in the current state,
    then the chain moves."""

    p_gb: float
    p_bg: float
    loss_good: float
    loss_bad: float
    name: str
    _cache: dict[tuple[int, ...], float]

    def __init__(self, p_gb: float, p_bg: float, loss_good: float, loss_bad: float,
                 name: str = "gilbert_elliott_raw") -> None:
        for nm, v in (("p_gb", p_gb), ("p_bg", p_bg), ("loss_good", loss_good), ("loss_bad", loss_bad)):
            if not (isinstance(v, (int, float, np.floating)) and 0.0 <= v <= 1.0):
                raise ValueError(f"{nm} must be a probability in [0, 1], got {v!r}")
        if p_gb + p_bg <= 0:
            raise ValueError("p_gb and p_bg cannot both be 0 (no stationary distribution)")
        self.p_gb, self.p_bg = float(p_gb), float(p_bg)
        self.loss_good, self.loss_bad = float(loss_good), float(loss_bad)
        self.name = name
        self._cache = {}

    @classmethod
    def iid(cls, p: float) -> LossModel:
        """Bernoulli: every packet lost independently with probability p."""
        if not (isinstance(p, (int, float, np.floating)) and 0.0 <= p <= 1.0):
            raise ValueError(f"loss rate must be a probability in [0, 1], got {p!r}")
        return cls(0.5, 0.5, float(p), float(p), name="bernoulli")

    @classmethod
    def gilbert_elliott(cls, loss_rate: float, mean_burst: float) -> LossModel:
        """Simple Gilbert channel from mean loss rate L and mean burst B:
        p_bg = 1/B, p_gb = L / (B (1 - L)), every packet in Bad lost. The
        conversion and its checks are the C++ core's (largesc.loss_model), so
        the planner and the channel simulator always agree."""
        m = _core_loss_model.gilbert_elliott_mean(float(loss_rate), float(mean_burst))
        return cls(m.p_gb, m.p_bg, m.loss_good, m.loss_bad, name="gilbert_elliott")

    @property
    def pi_bad(self) -> float:
        return self.p_gb / (self.p_gb + self.p_bg)

    @property
    def loss_rate(self) -> float:
        return (1 - self.pi_bad) * self.loss_good + self.pi_bad * self.loss_bad

    @property
    def is_iid(self) -> bool:
        """True when losses are independent (equal loss in both states or a
        memoryless chain)."""
        return (abs(self.loss_good - self.loss_bad) < _EPS
                or abs(self.p_gb + self.p_bg - 1.0) < _EPS)

    @property
    def mean_burst(self) -> float:
        """Mean run of consecutive losses: P(loss) / P(received, then lost)."""
        lr = self.loss_rate
        p_rl = self.prob_pattern({0: False, 1: True})
        return lr / p_rl if p_rl > 0 else (math.inf if lr > 0 else 1.0)

    def prob_pattern(self, fates: Mapping[int, bool]) -> float:
        """P(packets at the given offsets have the given fates), fates a dict
        offset -> lost (bool); other packets unconstrained. Exact forward
        computation over the two-state chain."""
        alpha = np.array([1.0 - self.pi_bad, self.pi_bad])
        lose = np.array([self.loss_good, self.loss_bad])
        T = np.array([[1.0 - self.p_gb, self.p_gb], [self.p_bg, 1.0 - self.p_bg]])
        m = max(fates) if fates else 0
        for t in range(m + 1):
            if t in fates:
                alpha = alpha * (lose if fates[t] else 1.0 - lose)
            if t < m:
                alpha = alpha @ T
        return float(alpha.sum())

    def prob_all_lost(self, offsets: Iterable[int]) -> float:
        """P(every packet at these offsets is lost)."""
        key = tuple(sorted(set(int(o) for o in offsets)))
        if key not in self._cache:
            if not key:
                self._cache[key] = 1.0
            else:
                base = key[0]
                self._cache[key] = self.prob_pattern({o - base: True for o in key})
        return self._cache[key]

    def arrival_probability(self, offsets: Iterable[int]) -> float:
        """P(at least one packet at these offsets arrives); 0 for no packet."""
        return 1.0 - self.prob_all_lost(offsets)

    def __repr__(self) -> str:
        if self.name == "bernoulli":
            return f"LossModel.iid({self.loss_good:g})"
        return (f"LossModel(p_gb={self.p_gb:.4g}, p_bg={self.p_bg:.4g}, loss_good={self.loss_good:g}, "
                f"loss_bad={self.loss_bad:g}; L={self.loss_rate:.4g}, B={self.mean_burst:.3g})")


def arrival_probability(model: LossModel, offsets: Iterable[int]) -> float:
    """P(a token carried by the packets at these offsets arrives)."""
    return model.arrival_probability(offsets)


def codebook_arrival_probabilities(plan: Plan, model: LossModel,
                                   n_codebooks: int = N_CODEBOOKS) -> npt.NDArray[np.float64]:
    """Steady-state P(token of codebook c of a frame arrives), c = 0..n-1."""
    return np.array([model.arrival_probability(plan.offsets(c)) for c in range(n_codebooks)])


def expected_importance(plan: Plan, model: LossModel, weights: npt.ArrayLike) -> float:
    """J(plan) = sum_c w_c P(codebook c arrives), the steady-state objective."""
    w = np.asarray(weights, dtype=float)
    return float(np.dot(w, codebook_arrival_probabilities(plan, model, len(w))))


# ----------------------------------------------------------------------------
# allocation


def _better(a, b):
    """Plan order for ties: higher value, then fewer slots, then larger K, then
    copies at smaller offsets."""
    (va, pa), (vb, pb) = a, b
    if va > vb + 1e-12 * max(1.0, abs(vb)):
        return True
    if va < vb - 1e-12 * max(1.0, abs(vb)):
        return False
    return (-pa.slots, pa.k, pa.copies) > (-pb.slots, pb.k, pb.copies)


def _check_args(slots, max_offset, n_q):
    if int(slots) < 1:
        raise ValueError(f"slots must be >= 1, got {slots}")
    if not 0 <= int(max_offset) <= MAX_OFFSET:
        raise ValueError(f"max offset D must be in 0..{MAX_OFFSET}, got {max_offset}")
    if not 1 <= int(n_q):
        raise ValueError(f"n_q must be >= 1, got {n_q}")


def brute_force_plan(slots: int, model: LossModel, max_offset: int, weights: npt.ArrayLike,
                     n_q: int = N_CODEBOOKS) -> Plan:
    """Exhaustive search over every plan with r_d <= K, K + sum r_d <= S."""
    _check_args(slots, max_offset, n_q)
    w = np.asarray(weights, dtype=float)
    best = None
    for p in all_plans(slots, max_offset, n_q):
        cand = (expected_importance(p, model, w), p)
        if best is None or _better(cand, best):
            best = cand
    return best[1]


def greedy_plan(slots: int, model: LossModel, max_offset: int, weights: npt.ArrayLike,
                n_q: int = N_CODEBOOKS) -> Plan:
    """Greedy allocation by marginal gain: start from K = 1, no copies; one
    slot at a time, take the move (K+1, or r_d+1 for a codebook already sent
    as primary) that raises J the most; stop when the budget is spent or no
    move gains. Exact for i.i.d. loss (docs/uep_controller.md)."""
    _check_args(slots, max_offset, n_q)
    w = np.asarray(weights, dtype=float)
    kmax = min(int(slots), int(n_q), MAX_K)
    # P(arrive) for each set of offsets: at most 2^(D+1) distinct sets
    q = {}

    def arrive(offs):
        if offs not in q:
            q[offs] = model.arrival_probability(offs)
        return q[offs]

    k, r = 1, [0] * max_offset
    used = 1
    while used < slots:
        moves = []
        if k < kmax:
            moves.append((w[k] * arrive((0,)), 0))
        for d in range(max_offset):
            c = r[d]
            if c < min(k, MAX_COPIES):
                before = (0,) + tuple(e + 1 for e in range(max_offset) if r[e] > c)
                after = tuple(sorted(before + (d + 1,)))
                moves.append((w[c] * (arrive(after) - arrive(before)), d + 1))
        if not moves:
            break
        # highest gain; ties: K first, then smaller offsets
        gain, move = max(moves, key=lambda m: (m[0], -m[1]))
        if gain <= _EPS:
            break
        if move == 0:
            k += 1
        else:
            r[move - 1] += 1
        used += 1
    return Plan(k, tuple(r))


def plan_for_frame(slots: int, model: LossModel, max_offset: int, weights_now: npt.ArrayLike,
                   history: Sequence[Sequence[Any] | None], n_q: int = N_CODEBOOKS,
                   future: Iterable[int] | None = None) -> Plan:
    """Plan for one packet when neighbouring frames differ (content adaptation).

    weights_now: weights of frame n (its primary codebooks).
    history[d-1] for d = 1..D: None if frame n-d does not exist (stream start,
    gap), else (k_prev, weights_prev, carried_prev): the primary codebooks K of
    frame n-d, its weights, and carried_prev[c] = tuple of offsets (1..d-1) at
    which packets since then carried codebook c as a copy.

    Each slot is credited with the importance its token gains in the frame it
    belongs to, given what already carries it: a primary token of frame n
    w_c P(packet n arrives); a copy of codebook c of frame n-d
    w_c [P(some packet in H u {d} arrives) - P(some packet in H arrives)], H
    the packets that carried it so far. Exhaustive search over K and r_d <=
    min(15, K_{n-d}) (at most 32 x 16 x 16 candidates, prefix sums).
    """
    _check_args(slots, max_offset, n_q)
    w0 = np.asarray(weights_now, dtype=float)
    kmax = min(int(slots), int(n_q), MAX_K)
    fut = tuple(future) if future is not None else (0,) * max_offset

    def later(c, d, k_frame):
        # offsets > d at which the packets after this one will carry codebook c
        return tuple(e + 1 for e in range(d, max_offset) if c < min(fut[e], k_frame))

    pg = []
    for c in range(kmax):
        F = later(c, 0, MAX_K)
        pg.append(w0[c] * (model.arrival_probability((0,) + F) - model.arrival_probability(F)))
    prim = np.concatenate([[0.0], np.cumsum(pg)])  # prim[K]
    copy_sums = []
    for d in range(1, max_offset + 1):
        h = history[d - 1] if d - 1 < len(history) else None
        if h is None:
            copy_sums.append(np.zeros(1))
            continue
        k_prev, w_prev, carried = h
        rmax = min(MAX_COPIES, int(k_prev), int(slots) - 1)
        gains = []
        for c in range(max(rmax, 0)):
            H = (((0,) if c < k_prev else ()) + tuple(carried[c] if c < len(carried) else ())
                 + later(c, d, k_prev))
            gains.append(w_prev[c] * (model.arrival_probability(H + (d,)) - model.arrival_probability(H)))
        copy_sums.append(np.concatenate([[0.0], np.cumsum(gains)]))
    # value of every (K, r_1, .., r_D) at once
    grids = np.meshgrid(np.arange(kmax + 1), *[np.arange(len(cs)) for cs in copy_sums], indexing="ij")
    value = prim[grids[0]] + sum(cs[g] for cs, g in zip(copy_sums, grids[1:]))
    used = sum(grids)
    ok = (grids[0] >= 1) & (used <= slots)
    value = np.where(ok, value, -np.inf)
    vmax = value.max()
    ties = np.argwhere(value >= vmax - 1e-12 * max(1.0, abs(vmax)))
    # ties: fewer slots, then larger K, then copies at smaller offsets
    idx = max(ties.tolist(), key=lambda i: (-sum(i), i[0], tuple(i[1:])))
    return Plan(int(idx[0]), tuple(int(x) for x in idx[1:]))


# ----------------------------------------------------------------------------
# the controller's state across frames (wrapped by the adaptive_controller block)

MODES = ("adaptive", "fixed")

# the largest plan a packet can carry: K = 32 primaries plus D = 2 copies of 15
MAX_SLOTS = MAX_K + MAX_OFFSET * MAX_COPIES
# the largest budget the controller takes (more slots than MAX_SLOTS are unusable)
MAX_BUDGET = MAX_SLOTS * SLOT_BITRATE


# LargeSC's own range (the paper's budgets, 4..15 token slots), which campaigns keep to
LARGESC_BUDGETS = (550.0, 2060.0)


def check_budget(budget: float, largesc_range: bool = False) -> float:
    """float(budget) for a finite token-payload budget that buys 1..MAX_SLOTS
    slots (largesc_range: inside LARGESC_BUDGETS, within the 1 % tolerance);
    ValueError naming `budget` and the range otherwise. The one budget check
    of the controller, LinkConfig and largesc-sim."""
    if isinstance(budget, (bool, np.bool_, str, bytes)):
        raise ValueError(f"budget must be a number of bit/s, got {budget!r}")
    if largesc_range:
        lo, hi = LARGESC_BUDGETS
        try:
            b = float(budget)
        except (TypeError, ValueError):
            raise ValueError(f"budget must be a number of bit/s, got {budget!r}") from None
        if not lo * (1 - BUDGET_TOLERANCE) <= b <= hi * (1 + BUDGET_TOLERANCE) + 1e-9:
            raise ValueError(f"budget {b:g} bit/s is outside LargeSC's {lo:g}..{hi:g} bit/s "
                             f"({slots_for_budget(lo)}..{slots_for_budget(hi)} token slots "
                             f"of {SLOT_BITRATE:g} bit/s)")
    slots_for_budget(budget)        # type, finite, at least one slot
    b = float(budget)
    if b > MAX_BUDGET:
        raise ValueError(f"budget must be a number of bit/s in {SLOT_BITRATE / (1 + BUDGET_TOLERANCE):.1f}"
                         f"..{MAX_BUDGET:g} (1..{MAX_SLOTS} token slots), got {budget!r}")
    return b


def check_loss_parameters(loss_rate: float, mean_burst: float) -> LossModel:
    """Loss model from (loss rate, mean burst) as the controller's parameters
    take it; ValueError naming the parameter and the allowed range otherwise."""
    def num(name, v):
        if isinstance(v, bool):
            raise ValueError(f"{name} must be a number, got {v!r}")
        try:
            return float(v)
        except (TypeError, ValueError):
            raise ValueError(f"{name} must be a number, got {v!r}") from None
    L, B = num("loss_rate", loss_rate), num("mean_burst", mean_burst)
    if not 0.0 <= L < 1.0:
        raise ValueError(f"loss_rate: loss rate must be in [0, 1), got {L}")
    if not 1.0 <= B <= MAX_MEAN_BURST:
        raise ValueError(f"mean_burst: mean burst must be >= 1 packet and <= {MAX_MEAN_BURST:g} "
                         f"(finite), got {B}")
    return LossModel.gilbert_elliott(L, B)


# ----------------------------------------------------------------------------
# loss reports and their ageing (docs/uep_controller.md, "Loss estimate" and
# "Feedback ageing")

# a reported loss rate is capped here: a Gilbert channel cannot express L = 1
MAX_FEEDBACK_LOSS = 0.95
# A report older than this, in seconds of stream time (80 ms per frame the
# controller plans), is stale: 4.5 report intervals of the depacketizer's
# default feedback_interval (25 frames = 2 s). 0 = reports never age.
FEEDBACK_TIMEOUT = 9.0
MAX_FEEDBACK_TIMEOUT = 3600.0
# the loss assumed while reports are stale (each the worse of this and the parameter)
FALLBACK_LOSS_RATE = 0.3
FALLBACK_MEAN_BURST = 3.0


def clamp_loss(loss_rate: float, mean_burst: float) -> tuple[float, float]:
    """(L, B) moved to the nearest pair a Gilbert channel can express:
    L <= MAX_FEEDBACK_LOSS, max(1, L/(1-L)) <= B <= MAX_MEAN_BURST."""
    L = min(float(loss_rate), MAX_FEEDBACK_LOSS)
    return L, min(max(float(mean_burst), 1.0, L / (1.0 - L)), MAX_MEAN_BURST)


def fallback_loss(loss_rate: float, mean_burst: float) -> tuple[float, float]:
    """(L, B) planned for while the reports are stale, given the parameters
    (L, B): the worse of each and (FALLBACK_LOSS_RATE, FALLBACK_MEAN_BURST)."""
    return clamp_loss(max(float(loss_rate), FALLBACK_LOSS_RATE), max(float(mean_burst), FALLBACK_MEAN_BURST))


def fallback_model(model: LossModel) -> LossModel:
    """Gilbert-Elliott model of fallback_loss for the parameters' model."""
    return LossModel.gilbert_elliott(*fallback_loss(model.loss_rate, model.mean_burst))


def check_feedback_timeout(feedback_timeout: float) -> float:
    """float(feedback_timeout) in seconds, 0..MAX_FEEDBACK_TIMEOUT (0 = never
    age); ParameterError (a ValueError) naming it and the range otherwise."""
    return P.check_float("feedback_timeout", feedback_timeout, 0.0, MAX_FEEDBACK_TIMEOUT)


class UepController:
    """Chooses the plan of each packet, frame after frame.

    adaptive: the steady-state optimum P* for speech frames (greedy_plan) is
    the reference; each packet's plan is the best response
    (plan_for_frame) given what earlier packets really carried and assuming
    later packets follow P*. With every frame alike this is exactly P* after
    the first D frames. With content adaptation a frame without voice
    activity (vad False) weighs only its first `silence_codebooks` codebooks,
    so its packet sends fewer primaries and spends the slots on copies of the
    speech frames before it.
    fixed: K = min(S, n_q), no copies.

    Loss model: `model` (the parameters, also set_model) until report()
    brings a measured one. Ageing: time is stream time, FRAME_MS per frame
    index planned (a restart counts one frame); from the first frame planned
    feedback_timeout seconds or more after the last report (0 = never), the
    plans use fallback_model(parameters) until the next report.
    feedback_state says which ("parameters", "feedback", "stale"),
    stale_count how many times it fell back.
    """

    max_offset: int
    mode: str
    content_adaptation: bool
    silence_codebooks: int
    weights: npt.NDArray[np.float64]
    budget: float
    slots: int
    model: LossModel
    feedback_timeout: float
    feedback_state: str
    stale_count: int
    _params: LossModel
    _fallback: LossModel
    _report_age: int | None
    _speech_plan: Plan | None
    _history: dict[int, list[Any]]
    _last_frame: int | None

    def __init__(self, budget: float, model: LossModel, max_offset: int = 1,
                 weights: str | Iterable[float] | None = "default", mode: str = "adaptive",
                 content_adaptation: bool = True, silence_codebooks: int = SILENCE_CODEBOOKS,
                 feedback_timeout: float = FEEDBACK_TIMEOUT) -> None:
        if isinstance(max_offset, bool) or not isinstance(max_offset, (int, np.integer)) \
                or not 0 <= max_offset <= MAX_OFFSET:
            raise ValueError(f"max offset D must be an integer in 0..{MAX_OFFSET}, got {max_offset!r}")
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        if isinstance(silence_codebooks, bool) or not isinstance(silence_codebooks, (int, np.integer)) \
                or not 1 <= silence_codebooks <= MAX_K:
            raise ValueError(f"silence codebooks must be an integer in 1..{MAX_K}, got {silence_codebooks!r}")
        if not isinstance(model, LossModel):
            raise ValueError("model must be a uep_plan.LossModel")
        self.max_offset = int(max_offset)
        self.mode = mode
        self.content_adaptation = bool(content_adaptation)
        self.silence_codebooks = int(silence_codebooks)
        self.weights = check_weights(weights)
        self._silence = silence_weights(self.weights, self.silence_codebooks)
        self.budget = check_budget(budget)
        self.slots = slots_for_budget(budget)
        self.feedback_timeout = check_feedback_timeout(feedback_timeout)
        self.stale_count = 0
        self.set_model(model)
        self._history = {}  # frame -> [K, weights, carried offsets per codebook]
        self._last_frame = None

    def set_budget(self, budget: float) -> None:
        b = check_budget(budget)
        s = slots_for_budget(budget)
        self.budget, self.slots, self._speech_plan = b, s, None

    def set_model(self, model: LossModel) -> None:
        """New parameters: planned for until the next report (an earlier
        report is forgotten, so nothing ages until the next one)."""
        self._params, self._fallback = model, fallback_model(model)
        self._use(model, "parameters")
        self._report_age = None

    def report(self, model: LossModel) -> None:
        """A valid loss report: planned for from the next frame on; its age
        starts at 0."""
        self._use(model, "feedback")
        self._report_age = 0

    @property
    def report_age(self) -> float | None:
        """Seconds of stream time since the last report (None: none since the
        parameters were set)."""
        return None if self._report_age is None else self._report_age * FRAME_MS / 1000.0

    def _use(self, model: LossModel, state: str) -> None:
        """Plans from now on are for `model`; feedback_state becomes `state`."""
        self.model, self.feedback_state, self._speech_plan = model, state, None

    def _age_feedback(self, frame: int) -> None:
        """Advances the report's age to `frame` (its index step, 1 on a
        restart) and falls back once it reaches feedback_timeout."""
        if self._report_age is None:
            return
        step = frame - self._last_frame if self._last_frame is not None and frame > self._last_frame else 1
        self._report_age += step
        if (self.feedback_state == "feedback" and self.feedback_timeout > 0
                and self.report_age >= self.feedback_timeout - 1e-9):
            self._use(self._fallback, "stale")
            self.stale_count += 1

    def set_content_adaptation(self, on: bool) -> None:
        self.content_adaptation = bool(on)

    def speech_plan(self) -> Plan:
        """P*: the steady-state plan for speech frames at the current budget
        and loss model (32 codebooks available)."""
        if self._speech_plan is None:
            if self.mode == "fixed":
                self._speech_plan = fixed_plan(self.slots, self.max_offset)
            else:
                self._speech_plan = greedy_plan(self.slots, self.model, self.max_offset, self.weights)
        return self._speech_plan

    def reset(self) -> None:
        self._history.clear()
        self._last_frame = None

    def plan(self, frame: int, n_q: int, vad: bool | None = None) -> Plan:
        """Plan for the packet of frame `frame` (n_q tokens; vad False = no
        voice activity, None = unknown, treated as speech)."""
        frame, n_q = int(frame), int(n_q)
        if not 1 <= n_q <= MAX_K:
            raise ValueError(f"n_q must be in 1..{MAX_K}, got {n_q}")
        self._age_feedback(frame)
        if self._last_frame is not None and frame <= self._last_frame:
            self.reset()  # transmitter restart or replay: the earlier frames are gone
        self._last_frame = frame
        if self.mode == "fixed":
            p = fixed_plan(self.slots, self.max_offset, n_q)
        else:
            w = self._silence if (self.content_adaptation and vad is False) else self.weights
            hist = [self._history.get(frame - d) for d in range(1, self.max_offset + 1)]
            p = plan_for_frame(self.slots, self.model, self.max_offset, w, hist, n_q,
                               future=self.speech_plan().copies)
        for d, r in enumerate(p.copies, start=1):
            h = self._history.get(frame - d)
            if h is None:
                continue
            for c in range(min(r, len(h[2]))):
                h[2][c] = h[2][c] + (d,)
        self._history[frame] = [p.k, self._silence if (self.content_adaptation and vad is False)
                                else self.weights, [()] * MAX_K]
        for f in [f for f in self._history if f < frame - self.max_offset]:
            del self._history[f]
        return p.check(self.slots)


def sequence_arrival_probabilities(plans: Sequence[Plan], model: LossModel,
                                   n_codebooks: int = N_CODEBOOKS) -> npt.NDArray[np.float64]:
    """Exact P(token c of frame f arrives) for a sequence of per-packet plans
    (plans[f] = plan of packet f): 1 - P(every packet carrying it is lost),
    carriers as in simulate_uep. Returns an [N, n_codebooks] array."""
    n = len(plans)
    out = np.zeros((n, n_codebooks))
    for f, p in enumerate(plans):
        for c in range(n_codebooks):
            offs = [0] if c < p.k else []
            for d in range(1, MAX_OFFSET + 1):
                if f + d < n and d <= plans[f + d].max_offset and plans[f + d].copies[d - 1] > c:
                    offs.append(d)
            out[f, c] = model.arrival_probability(offs) if offs else 0.0
    return out
