#
# Copyright 2026 gr-largesc authors.
# SPDX-License-Identifier: GPL-3.0-or-later
#
"""Shared by every package: named parameter checks (params), the message-handler
guard (guard), paced posting into message ports (pacing) and PMT readers
(pmt_util). Imports nothing else from gnuradio.largesc."""
