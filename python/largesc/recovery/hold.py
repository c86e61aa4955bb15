#
# Copyright 2026 gr-largesc authors.
# SPDX-License-Identifier: GPL-3.0-or-later
#
"""The `hold` backend (classical concealment; rule in core.py's docstring)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .config import DEFAULT_MAX_HOLD, MAX_CODEBOOKS, MAX_HOLD_LIMIT

if TYPE_CHECKING:
    import numpy.typing as npt


# ----------------------------------------------------------------------------
# hold

class HoldState:
    """The `hold` rule of the module docstring, one stream."""

    max_hold: int
    min_codebooks: int
    last: npt.NDArray[np.int64]
    run: npt.NDArray[np.int64]

    def __init__(self, max_hold: int = DEFAULT_MAX_HOLD, min_codebooks: int = 1) -> None:
        from ..common.params import check_int
        # max_hold -1: hold forever
        self.max_hold = check_int("max_hold", max_hold, -1, MAX_HOLD_LIMIT)
        self.min_codebooks = check_int("min_codebooks", min_codebooks, 1, MAX_CODEBOOKS)
        self.reset()

    def reset(self) -> None:
        self.last = np.full(MAX_CODEBOOKS, -1, dtype=np.int64)   # -1: none received yet
        self.run = np.zeros(MAX_CODEBOOKS, dtype=np.int64)

    def process(self, tokens: npt.NDArray[np.int64], mask: npt.NDArray[np.bool_],
                min_codebooks: int | None = None) -> tuple[npt.NDArray[np.int64], int]:
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
