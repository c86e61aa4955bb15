#
# Copyright 2026 gr-largesc authors.
# SPDX-License-Identifier: GPL-3.0-or-later
#
"""Hierarchical blocks for the common chains (largesc_tx, largesc_rx) and the
live link view (link_monitor, audio_out)."""
