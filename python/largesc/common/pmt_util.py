#
# Copyright 2026 gr-largesc authors.
# SPDX-License-Identifier: GPL-3.0-or-later
#
"""Small PMT readers shared by the Python blocks: numbers from metadata
dicts, whatever integer or real PMT type the sender used, and the loss
feedback report (uep_depacketizer's `feedback` port, or the feedback packet
a modem delivers) that the adaptive controller and the link monitor both read.
The packet form is decoded by the C++ core (largesc_python), imported lazily."""

from __future__ import annotations

import math

import pmt

from .constants import MAX_MEAN_BURST


def to_int(v: pmt.pmt_base) -> int | None:
    """int of an integer or uint64 PMT; None for anything else."""
    if pmt.is_uint64(v):
        return int(pmt.to_uint64(v))
    if pmt.is_integer(v):
        return int(pmt.to_long(v))
    return None


def to_float(v: pmt.pmt_base) -> float | None:
    """float of a real, integer or uint64 PMT; None for anything else."""
    if pmt.is_real(v):
        return float(pmt.to_double(v))
    i = to_int(v)
    return None if i is None else float(i)


_K_LOSS = pmt.intern("loss_rate")
_K_BURST = pmt.intern("mean_burst")
_K_WINDOW = pmt.intern("window")
FEEDBACK_SEQ_KEY = pmt.intern("feedback_seq")  # report number of a feedback packet
# a packet's arrival time in seconds on the receiver's clock (PDU metadata); the
# depacketizer fills gaps by it (docs/packet_format.md, "Gaps by time")
RX_TIME_KEY = pmt.intern("rx_time")


def make_feedback_pdu(loss_rate: float, mean_burst: float, window: int, seq: int | None = None) -> pmt.pmt_base:
    """The loss feedback report in the dict form parse_feedback reads (as the
    depacketizer's `feedback` port sends it): car loss_rate, mean_burst,
    window (and feedback_seq when given), cdr an empty u8vector."""
    meta = pmt.make_dict()
    meta = pmt.dict_add(meta, _K_LOSS, pmt.from_double(loss_rate))
    meta = pmt.dict_add(meta, _K_BURST, pmt.from_double(mean_burst))
    meta = pmt.dict_add(meta, _K_WINDOW, pmt.from_long(window))
    if seq is not None:
        meta = pmt.dict_add(meta, FEEDBACK_SEQ_KEY, pmt.from_long(seq))
    return pmt.cons(meta, pmt.make_u8vector(0, 0))


def _core():
    """The C++ core (parse_feedback_packet), loaded on first use."""
    from .. import largesc_python
    return largesc_python


def _packet_bytes(msg: pmt.pmt_base) -> bytes | None:
    """The cdr bytes of a PDU that carries a packet (a non-empty u8vector cdr,
    the car not a dict with loss_rate), or None for anything else."""
    if not pmt.is_pair(msg) or not pmt.is_u8vector(pmt.cdr(msg)):
        return None
    car = pmt.car(msg)
    if pmt.is_dict(car) and pmt.dict_has_key(car, _K_LOSS):
        return None                     # the depacketizer's dict form
    data = bytes(pmt.u8vector_elements(pmt.cdr(msg)))
    return data or None


def _parse_packet_form(data: bytes) -> tuple[float, float, int] | str:
    """A feedback packet (docs/packet_format.md, "Feedback packets") ->
    (loss_rate, mean_burst, window), or why it is refused."""
    status, report = _core().parse_feedback_packet(data)
    if status != "ok":
        return f"feedback packet: {status}"
    return report["loss_rate"], report["mean_burst"], report["window"]


def parse_feedback(msg: pmt.pmt_base) -> tuple[float, float, int] | str:
    """A loss feedback report -> (loss_rate, mean_burst, window), or a string
    saying why it is refused. Accepted: a dict, or a PDU whose car is a dict,
    with loss_rate in [0, 1], mean_burst in [0, constants.MAX_MEAN_BURST]
    (0 = no burst measured yet) and an optional integer window >= 0 (packets
    the figures cover; 0 = nothing measured yet; default 1). Also accepted:
    a feedback packet PDU as a modem delivers it (cdr = the packet's bytes,
    car anything but a dict with loss_rate), decoded by the C++ core (a
    refused packet: "feedback packet: <reason>")."""
    data = _packet_bytes(msg)
    if data is not None:
        return _parse_packet_form(data)
    if pmt.is_dict(msg):
        meta = msg                      # a bare dict
    elif pmt.is_pair(msg) and pmt.is_dict(pmt.car(msg)):
        meta = pmt.car(msg)             # a PDU
    else:
        return "not a dict or a PDU with a dict"
    loss = to_float(pmt.dict_ref(meta, _K_LOSS, pmt.PMT_NIL))
    burst = to_float(pmt.dict_ref(meta, _K_BURST, pmt.PMT_NIL))
    window = to_int(pmt.dict_ref(meta, _K_WINDOW, pmt.from_long(1)))
    if loss is None or not math.isfinite(loss) or not 0.0 <= loss <= 1.0:
        return "loss_rate must be a finite number in [0, 1]"
    if burst is None or not math.isfinite(burst) or not 0.0 <= burst <= MAX_MEAN_BURST:
        return f"mean_burst must be a finite number in [0, {MAX_MEAN_BURST:g}]"
    if window is None or window < 0:
        return "window must be an integer >= 0"
    return loss, burst, window
