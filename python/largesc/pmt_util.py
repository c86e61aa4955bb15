#
# Copyright 2026 gr-largesc authors.
# SPDX-License-Identifier: GPL-3.0-or-later
#
"""Small PMT readers shared by the Python blocks: numbers from metadata
dicts, whatever integer or real PMT type the sender used."""

import pmt


def to_int(v):
    """int of an integer or uint64 PMT; None for anything else."""
    if pmt.is_uint64(v):
        return int(pmt.to_uint64(v))
    if pmt.is_integer(v):
        return int(pmt.to_long(v))
    return None


def to_float(v):
    """float of a real, integer or uint64 PMT; None for anything else."""
    if pmt.is_real(v):
        return float(pmt.to_double(v))
    i = to_int(v)
    return None if i is None else float(i)
