#
# Copyright 2026 gr-largesc authors.
# SPDX-License-Identifier: GPL-3.0-or-later
#
"""The Mimi neural codec: the scheduler-free streaming core (mimi_codec), the
fast per-frame steps (mimi_fast), Mimi weight loading (weights) and the
mimi_encoder / mimi_decoder blocks."""
