#
# Copyright 2026 gr-largesc authors.
# SPDX-License-Identifier: GPL-3.0-or-later
#
"""Evaluation of speech links without a GNU Radio scheduler: speech loading
and demo clips (speech), baseline codecs under the same packet loss
(baselines: the framework; codecs: one module per codec family), quality
metrics and time alignment (metrics).
See docs/evaluation.md. Submodules import their heavy dependencies
(onnxruntime, faster-whisper, visqol) only when a metric is first used."""

from . import speech
from . import baselines
from . import metrics
