#
# Copyright 2026 gr-largesc authors.
# SPDX-License-Identifier: GPL-3.0-or-later
#
"""Message blocks on PDUs shared by the modem's TX and RX chains: _pdu_map
(a PDU in, what map() makes of it out) and _u8_pdu (a byte PDU)."""

import numpy as np
import pmt
from gnuradio import gr


class _pdu_map(gr.basic_block):
    """Message block: each PDU on `in` whose vector is of the subclass's
    type (VECTOR: "u8" or "f32") goes through map(meta, data) (data a numpy
    array); what it returns (a PDU, or None for nothing) leaves `out`.
    Anything else is dropped."""

    VECTOR = "u8"

    def __init__(self, name):
        gr.basic_block.__init__(self, name, in_sig=None, out_sig=None)
        self.message_port_register_in(pmt.intern("in"))
        self.message_port_register_out(pmt.intern("out"))
        self.set_msg_handler(pmt.intern("in"), self._on_msg)

    def _on_msg(self, msg):
        u8 = self.VECTOR == "u8"
        if not pmt.is_pair(msg) or not (pmt.is_u8vector if u8 else pmt.is_f32vector)(pmt.cdr(msg)):
            return
        data = (np.asarray(pmt.u8vector_elements(pmt.cdr(msg)), np.uint8) if u8
                else np.asarray(pmt.f32vector_elements(pmt.cdr(msg)), np.float32))
        out = self.map(pmt.car(msg), data)
        if out is not None:
            self.message_port_pub(pmt.intern("out"), out)

    def map(self, meta, data):
        raise NotImplementedError


def _u8_pdu(meta, data):
    data = np.asarray(data, np.uint8).tolist()
    return pmt.cons(meta, pmt.init_u8vector(len(data), data))
