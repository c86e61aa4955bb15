#
# Copyright 2026 gr-largesc authors.
# SPDX-License-Identifier: GPL-3.0-or-later
#
"""Shared by every package, each fact defined once: the frame constants
(constants), the token-frame PDU (frame_pdu), the weight spec (weights_spec),
the loss setting (loss), named parameter checks (params), the message-handler
guard (guard), paced posting into message ports (pacing) and PMT readers
(pmt_util). Imports nothing from the other packages; loss.py reaches the C++
core (largesc_python) lazily, to build loss models and channels."""
