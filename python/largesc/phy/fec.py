#
# Copyright 2026 gr-largesc authors.
# SPDX-License-Identifier: GPL-3.0-or-later
#
"""Forward error correction for the packet modem (gr-fec, PDU deployments
async_encoder / async_decoder): the codes (FEC_CODES), their cost on air
(fec_coded_bytes), the FECAPI coder objects and the convolutional code's
zero tail byte (_tail_byte). See docs/phy.md ("Forward error correction")."""

import numpy as np

from ..common.params import ParameterError
from .pdu_map import _pdu_map, _u8_pdu

FEC_CODES = ("none", "cc", "rep3")
FEC_LABELS = {"none": "no FEC",
              "cc": "convolutional K=7 r=1/2 (109, 79), zero tail byte, soft Viterbi",
              "rep3": "repetition x3, soft"}
CC_K = 7
CC_POLYS = [109, 79]            # the K=7 rate 1/2 code of CCSDS / 802.11 (octal 155, 117)
FEC_MTU = 1500                  # bytes: the largest packet + CRC the FEC blocks take
CC_TAIL_BYTES = 1               # a zero byte after packet + CRC flushes the encoder (K - 1 = 6 bits)


def check_fec(fec):
    """fec if it is one of FEC_CODES; ParameterError (a ValueError) naming
    `fec` otherwise."""
    if not (isinstance(fec, str) and fec in FEC_CODES):
        raise ParameterError(f"fec must be one of {', '.join(FEC_CODES)}, got {fec!r}")
    return fec


def fec_coded_bytes(nbytes, fec="none"):
    """Bytes on air for `nbytes` bytes (packet + CRC-32) after the FEC:
    none: n; cc: 2 (n + 1) (rate 1/2 over the bytes and a zero tail byte);
    rep3: 3n."""
    check_fec(fec)
    n = int(nbytes)
    return {"none": n, "cc": 2 * (n + CC_TAIL_BYTES), "rep3": 3 * n}[fec]


def _fec_coder(fec, encoder):
    """The FECAPI encoder (encoder=True) or decoder object for a code (frame
    size = FEC_MTU bytes; the async blocks set each packet's own size). Each
    modem builds only its own side.

    The convolutional code runs in gr-fec's CC_TRUNCATED mode over packet +
    CRC + one zero byte: the zero byte drives the encoder back to state 0 (a
    terminated code, byte-aligned on air). Not CC_TERMINATED nor
    CC_TAILBITING: measured failures in docs/phy.md ("Forward error correction")."""
    from gnuradio import fec as grfec
    bits = FEC_MTU * 8
    if fec == "cc":
        if encoder:
            return grfec.cc_encoder_make(bits, CC_K, 2, CC_POLYS, 0, grfec.CC_TRUNCATED, False)
        return grfec.cc_decoder.make(bits, CC_K, 2, CC_POLYS, 0, -1, grfec.CC_TRUNCATED, False)
    if fec == "rep3":
        if encoder:
            return grfec.repetition_encoder_make(bits, 3)
        return grfec.repetition_decoder.make(bits, 3, 0.5)
    raise ValueError(f"no FEC object for {fec!r}")


class _tail_byte(_pdu_map):
    """Byte PDUs: appends CC_TAIL_BYTES zero bytes (add=True, before the
    encoder) or removes them (add=False, after the decoder)."""

    def __init__(self, add):
        _pdu_map.__init__(self, "largesc_cc_tail")
        self.add = bool(add)

    def map(self, meta, b):
        b = np.concatenate([b, np.zeros(CC_TAIL_BYTES, np.uint8)]) if self.add else b[:-CC_TAIL_BYTES]
        return _u8_pdu(meta, b) if len(b) else None
