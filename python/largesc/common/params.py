#
# Copyright 2026 gr-largesc authors.
# SPDX-License-Identifier: GPL-3.0-or-later
#
"""Construction-time parameter checks shared by the Python blocks.

Every check names the parameter and the allowed values in its message and
raises ParameterError (a ValueError). Booleans are booleans (True/False, or
the integers 0/1); integers may not be booleans or non-integral floats;
reals must be finite unless a check says otherwise."""

from __future__ import annotations

import math
import numbers
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from collections.abc import Iterable
    from typing import TypeVar

    _T = TypeVar("_T")


class ParameterError(ValueError):
    pass


def _range_text(lo: float | None, hi: float | None) -> str:
    if lo is not None and hi is not None:
        return f"{lo}..{hi}"
    if lo is not None:
        return f">= {lo}"
    if hi is not None:
        return f"<= {hi}"
    return "any value"


def check_int(name: str, v: object, lo: int | None = None, hi: int | None = None) -> int:
    """int(v) for an integer (or an integral finite float) in lo..hi."""
    allowed = f"{name} must be an integer in {_range_text(lo, hi)}, got {v!r}"
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, numbers.Real):
        raise ParameterError(allowed)
    if isinstance(v, numbers.Integral):
        i = int(v)
    else:
        f = float(v)
        if not math.isfinite(f) or not f.is_integer():
            raise ParameterError(allowed)
        i = int(f)
    if (lo is not None and i < lo) or (hi is not None and i > hi):
        raise ParameterError(allowed)
    return i


def check_optional_int(name: str, v: object, lo: int | None = None, hi: int | None = None) -> int | None:
    """None, or check_int."""
    if v is None:
        return None
    try:
        return check_int(name, v, lo, hi)
    except ParameterError:
        raise ParameterError(f"{name} must be None or an integer in {_range_text(lo, hi)}, "
                             f"got {v!r}") from None


def check_float(name: str, v: object, lo: float | None = None, hi: float | None = None, lo_open: bool = False,
                hi_open: bool = False) -> float:
    """float(v) for a finite real number in [lo, hi] (open ends on request)."""
    lo_t = "" if lo is None else ("> " if lo_open else ">= ") + f"{lo:g}"
    hi_t = "" if hi is None else ("< " if hi_open else "<= ") + f"{hi:g}"
    rng = " and ".join(t for t in (lo_t, hi_t) if t)
    allowed = f"{name} must be a finite number{' ' + rng if rng else ''}, got {v!r}"
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, numbers.Real):
        raise ParameterError(allowed)
    try:
        f = float(v)
    except (TypeError, ValueError, OverflowError):
        raise ParameterError(allowed) from None
    if not math.isfinite(f):
        raise ParameterError(allowed)
    if lo is not None and (f < lo or (lo_open and f == lo)):
        raise ParameterError(allowed)
    if hi is not None and (f > hi or (hi_open and f == hi)):
        raise ParameterError(allowed)
    return f


def check_bool(name: str, v: object) -> bool:
    """bool(v) for True/False (Python or numpy) or the integers 0/1."""
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    if isinstance(v, numbers.Integral) and int(v) in (0, 1):
        return bool(v)
    raise ParameterError(f"{name} must be a boolean (True or False), got {v!r}")


def check_choice(name: str, v: _T, choices: Iterable[object]) -> _T:
    """v if it is one of choices (compared with ==, types must match: 'True' is not True)."""
    for c in choices:
        if type(v) is type(c) and v == c:
            return v
    raise ParameterError(f"{name} must be one of {', '.join(repr(c) for c in choices)}, got {v!r}")


def check_str(name: str, v: object) -> str:
    if not isinstance(v, str):
        raise ParameterError(f"{name} must be a string, got {v!r}")
    return v
