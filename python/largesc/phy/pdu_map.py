#
# Copyright 2026 gr-largesc authors.
# SPDX-License-Identifier: GPL-3.0-or-later
#
"""Message blocks on PDUs shared by the modem's TX and RX chains: _pdu_map
(a PDU in, what map() makes of it out, under the handler guard) and _u8_pdu
(a byte PDU)."""

import numpy as np
import pmt
from gnuradio import gr

from ..common.guard import Guard


class _pdu_map(gr.basic_block):
    """Message block: each PDU on `in` whose vector is of the subclass's
    type (VECTOR: "u8" or "f32") goes through map(meta, data) (data a numpy
    array); what it returns (a PDU, or None for nothing) leaves `out`.

    Anything else is counted and dropped (common/guard.py): `in: not a PDU`
    (not a pair), `in: not a u8 PDU` / `in: not an f32 PDU` (a pair with
    another cdr), `in: <ExceptionType>` (map failed); map() itself may drop
    a PDU with reject(reason). Counters: pdus_in() (handled: published or
    dropped), pdus_out(), rejections()."""

    VECTOR = "u8"

    def __init__(self, name):
        gr.basic_block.__init__(self, name, in_sig=None, out_sig=None)
        self.guard = Guard(name)
        self.n_in = 0
        self.n_out = 0
        self.message_port_register_in(pmt.intern("in"))
        self.message_port_register_out(pmt.intern("out"))
        self.guard.install(self, "in", self._on_msg)

    def _on_msg(self, msg):
        try:
            self._map_msg(msg)
        finally:
            self.n_in += 1

    def _map_msg(self, msg):
        u8 = self.VECTOR == "u8"
        if not pmt.is_pair(msg) or pmt.is_dict(msg):
            self.reject("not a PDU")
            return
        if not (pmt.is_u8vector if u8 else pmt.is_f32vector)(pmt.cdr(msg)):
            self.reject("not a u8 PDU" if u8 else "not an f32 PDU")
            return
        data = (np.asarray(pmt.u8vector_elements(pmt.cdr(msg)), np.uint8) if u8
                else np.asarray(pmt.f32vector_elements(pmt.cdr(msg)), np.float32))
        out = self.map(pmt.car(msg), data)
        if out is not None:
            self.message_port_pub(pmt.intern("out"), out)
            self.n_out += 1

    def reject(self, reason, detail=""):
        """Counts (and rate-limited logs) one dropped PDU under `in: reason`."""
        self.guard.note(f"in: {reason}", detail)

    def map(self, meta, data):
        raise NotImplementedError

    def pdus_in(self):
        """PDUs handled so far (published, dropped or rejected)."""
        return self.n_in

    def pdus_out(self):
        return self.n_out

    def rejections(self):
        """{reason: count} of the messages dropped (see guard.py)."""
        return self.guard.counts()


def _u8_pdu(meta, data):
    data = np.asarray(data, np.uint8).tolist()
    return pmt.cons(meta, pmt.init_u8vector(len(data), data))


def _meta_dict(meta):
    """A PDU's car as a dict: itself when it is one, else an empty dict."""
    return meta if pmt.is_dict(meta) else pmt.make_dict()
