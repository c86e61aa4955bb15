#
# Copyright 2026 gr-largesc authors.
# SPDX-License-Identifier: GPL-3.0-or-later
#
"""The token-frame PDU, defined once: its metadata keys, one parser and the
builders (docs/interfaces.md, "Token-frame PDU").

A token frame travels as a PMT pair: car = dict, cdr = u16vector of n_q tokens
(codebook 0 first, values 0..2047). Keys:

  frame       uint64 (or integer >= 0): the frame index, one per 80 ms
  n_q         integer: number of tokens (codebooks), 1..32
  mask        u8vector[n_q], 1 = received (receive side)
  recovered   u8vector[n_q], 1 = filled by token recovery
  vad         bool: voice activity (mimi_encoder)
  energy_db   double: frame energy (mimi_encoder)
  untrained   bool: the codec had random (UNTRAINED) weights
  eos         bool: end of stream; `frame` is then the next index
  uep_k, uep_copies   the UEP plan (adaptive_controller)
  capture_time  double: host monotonic time (s) at which the frame's last
              sample was captured (mimi_encoder; docs/latency.md)
  rx_time     double: host monotonic time (s) at which the first packet
              bringing any of the frame's tokens arrived (uep_depacketizer,
              live links only)

parse_frame() checks a message against this format with the requirements a
block states (index, n_q, mask) and returns a TokenFrame or an EndOfStream;
anything else raises MalformedFrame with a stable short `reason` (the blocks'
counter key) and a message saying what is wrong.
"""

import dataclasses
import math
from typing import Optional

import numpy as np
import pmt

from .constants import CARDINALITY, N_CODEBOOKS
from .pmt_util import to_int

FRAME = pmt.intern("frame")
N_Q = pmt.intern("n_q")
MASK = pmt.intern("mask")
RECOVERED = pmt.intern("recovered")
VAD = pmt.intern("vad")
ENERGY_DB = pmt.intern("energy_db")
UNTRAINED = pmt.intern("untrained")
EOS = pmt.intern("eos")
UEP_K = pmt.intern("uep_k")
UEP_COPIES = pmt.intern("uep_copies")
CAPTURE_TIME = pmt.intern("capture_time")
RX_TIME = pmt.intern("rx_time")
PLAY_TIME = pmt.intern("play_time")   # when the playout clock let the frame go (uep_depacketizer)

MAX_FRAME_INDEX = 2 ** 64 - 1
MAX_TOKEN = CARDINALITY - 1


class MalformedFrame(ValueError):
    """why: the message; reason: a stable short name (counter key); frame:
    the index when it was readable."""

    def __init__(self, why, frame=None, reason="malformed frame"):
        super().__init__(why)
        self.frame = frame
        self.reason = reason


@dataclasses.dataclass
class TokenFrame:
    meta: object                       # the PMT dict, as received
    frame: Optional[int]               # None only where the caller allows a missing index
    tokens: np.ndarray                 # uint16 [n_q]
    mask: Optional[np.ndarray] = None  # uint8 [n_q], None when absent
    recovered: Optional[np.ndarray] = None
    vad: Optional[bool] = None

    def present(self):
        """bool [n_q]: tokens received or recovered (all True without a mask)."""
        if self.mask is None:
            return np.ones(len(self.tokens), dtype=bool)
        p = self.mask != 0
        if self.recovered is not None:
            p |= self.recovered != 0
        return p


@dataclasses.dataclass
class EndOfStream:
    frame: Optional[int]               # the next frame index, None when absent


def frame_index(meta):
    """(present, idx): idx is the frame index of a uint64 or integer PMT in
    0..2^64-1, None when the key is missing or not such a number."""
    fv = pmt.dict_ref(meta, FRAME, pmt.PMT_NIL)
    if pmt.is_null(fv) and not pmt.dict_has_key(meta, FRAME):
        return False, None
    f = to_int(fv)
    return True, (f if f is not None and 0 <= f <= MAX_FRAME_INDEX else None)


def _flags(meta, key, n, idx, name):
    """u8 [n] of 0/1 values under `key`, None when absent; MalformedFrame otherwise."""
    v = pmt.dict_ref(meta, key, pmt.PMT_NIL)
    if v == pmt.PMT_NIL:
        return None
    if not pmt.is_u8vector(v) or pmt.length(v) != n:
        raise MalformedFrame(f"{name} is not a u8vector of length n_q", idx, reason="bad mask")
    a = np.asarray(pmt.u8vector_elements(v), dtype=np.uint8)
    if not np.all(a <= 1):
        raise MalformedFrame(f"{name} values must be 0 or 1", idx, reason="bad mask")
    return a


def _parse(msg, require_index, require_n_q, require_mask, allow_eos):
    if not pmt.is_pair(msg) or pmt.is_dict(msg):
        raise MalformedFrame("not a PDU (pair of dict and vector)", reason="not a PDU")
    meta, data = pmt.car(msg), pmt.cdr(msg)
    if not pmt.is_dict(meta):
        raise MalformedFrame("PDU metadata is not a dict", reason="not a PDU")
    present_key, idx = frame_index(meta)
    if allow_eos:
        eos = pmt.dict_ref(meta, EOS, pmt.PMT_F)
        if pmt.is_bool(eos) and pmt.to_bool(eos):
            if present_key and idx is None:
                raise MalformedFrame("end-of-stream PDU with a 'frame' that is not an index >= 0",
                                     reason="bad frame index")
            return EndOfStream(idx)
    if idx is None and (present_key or require_index):
        raise MalformedFrame("no valid 'frame' index (uint64 or integer >= 0)", reason="bad frame index")
    if not pmt.is_u16vector(data):
        raise MalformedFrame("tokens are not a u16vector", idx, reason="bad tokens")
    n = pmt.length(data)
    if not 1 <= n <= N_CODEBOOKS:
        raise MalformedFrame(f"{n} tokens (must be 1..{N_CODEBOOKS})", idx, reason="bad tokens")
    toks = np.asarray(pmt.u16vector_elements(data), dtype=np.uint16)
    nq = pmt.dict_ref(meta, N_Q, pmt.PMT_NIL)
    if (nq != pmt.PMT_NIL or require_n_q) and to_int(nq) != n:
        raise MalformedFrame(f"n_q does not match the {n} tokens", idx, reason="bad n_q")
    if int(toks.max()) > MAX_TOKEN:
        raise MalformedFrame(f"token value {int(toks.max())} > {MAX_TOKEN}", idx, reason="bad tokens")
    mask = _flags(meta, MASK, n, idx, "mask")
    if mask is None and require_mask:
        raise MalformedFrame("no u8vector mask", idx, reason="bad mask")
    recovered = None if mask is None else _flags(meta, RECOVERED, n, idx, "recovered")
    vad = pmt.dict_ref(meta, VAD, pmt.PMT_NIL)
    if pmt.is_null(vad):
        vad = None
    elif pmt.is_bool(vad):
        vad = pmt.to_bool(vad)
    else:
        raise MalformedFrame("'vad' is not a bool", idx, reason="bad vad")
    return TokenFrame(meta, idx, toks, mask, recovered, vad)


def parse_frame(msg, require_index=True, require_n_q=True, require_mask=False, allow_eos=False):
    """A token-frame PDU -> TokenFrame (or EndOfStream when allow_eos and the
    PDU says `eos`). MalformedFrame for anything else: not a pair of dict and
    u16vector, `frame` not a uint64/integer >= 0 (or missing where required),
    0 or more than 32 tokens, `n_q` not equal to the token count (or missing
    where required), a token > 2047, `mask` or `recovered` not a u8vector of
    n_q values 0/1 (or no mask where required), `vad` not a bool. A dict that
    PMT cannot read (a bare pair posing as one) is 'not a PDU'."""
    try:
        return _parse(msg, require_index, require_n_q, require_mask, allow_eos)
    except MalformedFrame:
        raise
    except Exception as e:  # noqa: BLE001 - pmt throws on a pair that poses as a dict
        raise MalformedFrame(f"unreadable ({type(e).__name__}: {e})", reason="not a PDU") from None


def make_frame_pdu(idx, tokens, energy_db=None, vad=None, untrained=False, capture_time=None):
    """The PDU of token frame `idx` as mimi_encoder sends it."""
    meta = pmt.make_dict()
    meta = pmt.dict_add(meta, FRAME, pmt.from_uint64(int(idx)))
    meta = pmt.dict_add(meta, N_Q, pmt.from_long(len(tokens)))
    if energy_db is not None:
        meta = pmt.dict_add(meta, ENERGY_DB, pmt.from_double(float(energy_db)))
    if vad is not None:
        meta = pmt.dict_add(meta, VAD, pmt.from_bool(bool(vad)))
    if untrained:
        meta = pmt.dict_add(meta, UNTRAINED, pmt.PMT_T)
    if capture_time is not None:
        meta = pmt.dict_add(meta, CAPTURE_TIME, pmt.from_double(float(capture_time)))
    return pmt.cons(meta, pmt.init_u16vector(len(tokens), [int(t) for t in tokens]))


def meta_time(meta, key):
    """The finite double under `key` (CAPTURE_TIME, RX_TIME, PLAY_TIME) of a PDU's
    metadata dict, None when absent or not a finite real."""
    if not pmt.is_dict(meta):
        return None
    v = pmt.dict_ref(meta, key, pmt.PMT_NIL)
    if not pmt.is_real(v):
        return None
    t = pmt.to_double(v)
    return t if math.isfinite(t) else None


def make_eos_pdu(next_frame):
    """The end-of-stream PDU: `eos`, `frame` = the next index, no tokens."""
    meta = pmt.dict_add(pmt.make_dict(), EOS, pmt.PMT_T)
    meta = pmt.dict_add(meta, FRAME, pmt.from_uint64(int(next_frame)))
    meta = pmt.dict_add(meta, N_Q, pmt.from_long(0))
    return pmt.cons(meta, pmt.init_u16vector(0, []))
