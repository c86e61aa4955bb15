#
# Copyright 2026 gr-largesc authors.
# SPDX-License-Identifier: GPL-3.0-or-later
#
"""Packet-loss traces: the file format, the trace_recorder block and the
helpers that replay a trace (trace)."""
