#
# Copyright 2026 gr-largesc authors.
# SPDX-License-Identifier: GPL-3.0-or-later
#
"""Baseline codecs, one module per codec family, on the framework of
eval/baselines.py (docs/evaluation.md): encodec (EnCodec 24 kHz, needs torch
and model weights)."""
