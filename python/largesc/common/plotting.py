#
# Copyright 2026 gr-largesc authors.
# SPDX-License-Identifier: GPL-3.0-or-later
#
"""matplotlib for the figures every tool writes (campaign reports, training
curves, PHY sweeps): files only, no display."""

from __future__ import annotations

from typing import Any


def pyplot() -> Any:
    """matplotlib.pyplot on the Agg backend (files only), without the
    "Unable to import Axes3D" warning that Debian's system matplotlib next to
    the venv's sets off (no figure here is 3-D)."""
    import warnings
    import matplotlib
    matplotlib.use("Agg")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Unable to import Axes3D")
        import matplotlib.pyplot as plt
    return plt
