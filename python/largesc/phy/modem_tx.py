#
# Copyright 2026 gr-largesc authors.
# SPDX-License-Identifier: GPL-3.0-or-later
#
"""The packet modem's transmitter (packet_modem_tx): packet PDU -> input
gate (_packet_gate: what the modem cannot send is counted and dropped) -> CRC-32
(digital.crc32_async_bb) -> [FEC: gr-fec async_encoder, convolutional K=7
r=1/2 or repetition x3] -> scrambler (_scrambler, frame format 2) -> access
code + length header
(digital.protocol_formatter_async with digital.header_format_default) -> byte
stream with preamble/postamble or idle fill (packet_framer) -> GMSK
(digital.gmsk_mod, BT GMSK_BT, h = 0.5). See docs/phy.md."""

import numpy as np
from gnuradio import blocks, digital, gr

from ..common import params as P
from .fec import FEC_MTU, _fec_coder, _tail_byte, check_fec
from .framing import (DEFAULT_ACCESS_CODE, DEFAULT_BIT_RATE, DEFAULT_SAMP_RATE, LENGTH_TAG, MAX_FRAME_BYTES,
                      MAX_FRAME_PERIOD, MAX_PREAMBLE_BYTES, MODES, check_access_code, check_length_tag, frame_bytes,
                      max_packet_bytes, packet_framer, samples_per_symbol, scramble_bytes)
from .pdu_map import _meta_dict, _pdu_map, _u8_pdu

GMSK_BT = 0.5                   # BT 0.5 against 0.35, measured: docs/phy.md ("Chain")
BT_RANGE = (0.1, 1.0)           # the Gaussian filter's bandwidth-time product
MAX_AMPLITUDE = 1000.0


def check_amplitude(amplitude):
    return P.check_float("amplitude", amplitude, 0.0, MAX_AMPLITUDE, lo_open=True)


class _packet_gate(_pdu_map):
    """The transmitter's input: passes a packet PDU on only when the modem can
    send it: a pair whose cdr is a u8vector of 1..max_bytes bytes (car: a
    dict is kept, anything else becomes an empty dict). Everything else is
    counted and dropped: `in: not a PDU`, `in: not a u8 PDU`, `in: empty
    packet`, `in: packet over <max_bytes> bytes` (a longer one would wrap the
    16-bit length field or overflow gr-fec's encoder)."""

    def __init__(self, max_bytes):
        _pdu_map.__init__(self, "largesc_packet_gate")
        self.max_bytes = int(max_bytes)

    def map(self, meta, b):
        if len(b) == 0:
            self.reject("empty packet")
            return None
        if len(b) > self.max_bytes:
            self.reject(f"packet over {self.max_bytes} bytes", len(b))
            return None
        return _u8_pdu(_meta_dict(meta), b)


class _scrambler(_pdu_map):
    """Byte PDUs (coded packet + CRC) -> the same XORed with the frame's
    scrambling sequence (framing.scramble_bytes; frame format 2)."""

    def __init__(self):
        _pdu_map.__init__(self, "largesc_scrambler")

    def map(self, meta, b):
        if len(b) > MAX_FRAME_BYTES:
            self.reject(f"over {MAX_FRAME_BYTES} bytes", len(b))
            return None
        return _u8_pdu(meta, scramble_bytes(b))


class packet_modem_tx(gr.hier_block2):
    """Packet PDUs (message port `in`) -> GMSK complex baseband (stream out).

    samp_rate, bit_rate: samples and bits per second; samp_rate / bit_rate is
        the integer samples per symbol (2..MAX_SAMPLES_PER_SYMBOL).
    access_code: '0'/'1' string (multiple of 8 bits, <= 64).
    mode: 'stream', 'continuous' or 'burst' (see packet_framer).
    preamble, postamble: idle bytes (0x33) before / after each frame
        (0..MAX_PREAMBLE_BYTES). In 'burst' mode the receiver must re-acquire
        timing on every burst: use >= 8.
    amplitude: output scale (constant envelope), > 0 and <= MAX_AMPLITUDE.
    length_tag: burst mode only: the length tag on the output samples (set the
        same name as the UHD sink's "TSB tag name" for SOB/EOB bursts).
    bt: the GMSK filter's bandwidth-time product (BT_RANGE).
    fec: forward error correction of packet + CRC-32 (FEC_CODES): 'none',
        'cc' (convolutional K=7 rate 1/2, gr-fec cc_encoder, a zero tail byte) or
        'rep3' (repetition x3). The access code and length header stay
        uncoded; the length counts coded bytes. The receiver must use the same.
        Air cost: frame_bytes(n, fec=...).
    frame_period: stream mode only: each frame is padded with idle bytes to
        this air time (FRAME_PERIOD = 0.08 s: one packet per 80 ms slot as on
        air); 0 = frames back to back; at most MAX_FRAME_PERIOD.
    scramble: True (frame format 2, FRAME_VERSION): the coded packet + CRC
        are XORed with a PRBS restarted at every frame, so that any payload
        (all zeros included) has bit transitions for the receiver's AFC and
        timing loop; False: frame format 1, unscrambled, as gr-largesc sent
        before (for a receiver of that format). The receiver must use the same.
    Every parameter is checked by name at construction (ParameterError).

    Input: packet PDUs of 1..max_packet_bytes(fec) bytes (none 4091, cc 1495,
    rep3 1361); anything else is counted and dropped by the input gate
    (rejections(), docs/interfaces.md).
    """

    def __init__(self, samp_rate=DEFAULT_SAMP_RATE, bit_rate=DEFAULT_BIT_RATE,
                 access_code=DEFAULT_ACCESS_CODE, mode="stream", preamble=2, postamble=2,
                 amplitude=1.0, length_tag=LENGTH_TAG, bt=GMSK_BT, fec="none", frame_period=0.0, scramble=True):
        self.sps = samples_per_symbol(samp_rate, bit_rate)
        check_access_code(access_code)
        P.check_choice("mode", mode, MODES)
        preamble = P.check_int("preamble", preamble, 0, MAX_PREAMBLE_BYTES)
        postamble = P.check_int("postamble", postamble, 0, MAX_PREAMBLE_BYTES)
        amplitude = check_amplitude(amplitude)
        check_length_tag("length_tag", length_tag)
        bt = P.check_float("bt", bt, *BT_RANGE)
        check_fec(fec)
        frame_period = P.check_float("frame_period", frame_period, 0.0, MAX_FRAME_PERIOD)
        self.scramble = P.check_bool("scramble", scramble)
        if frame_period and mode != "stream":
            raise P.ParameterError(f"frame_period applies to mode 'stream' only (0 for mode {mode!r}), "
                                   f"got {frame_period!r}")
        gr.hier_block2.__init__(self, "packet_modem_tx", gr.io_signature(0, 0, 0),
                                gr.io_signature(1, 1, gr.sizeof_gr_complex))
        self.bit_rate = float(bit_rate)
        self.mode = mode
        self.fec = fec
        self.preamble = preamble
        self.postamble = postamble
        self.access_code = access_code
        self.max_packet_bytes = max_packet_bytes(fec)
        self.slot_bytes = int(round(frame_period * self.bit_rate / 8.0))
        self.message_port_register_hier_in("in")
        self.gate = _packet_gate(self.max_packet_bytes)
        self.crc = digital.crc32_async_bb(False)
        self.hdr_format = digital.header_format_default(access_code, 0)
        self.formatter = digital.protocol_formatter_async(self.hdr_format)
        self.framer = packet_framer(mode, preamble, postamble, self.bit_rate, length_tag=length_tag,
                                    slot_bytes=self.slot_bytes)
        self.mod = digital.gmsk_mod(self.sps, bt)
        self.scale = blocks.multiply_const_cc(amplitude)
        self.msg_connect(self, "in", self.gate, "in")
        self.msg_connect(self.gate, "out", self.crc, "in")
        coded = self.crc                 # the block whose output is the coded packet + CRC
        if fec != "none":
            from gnuradio import fec as grfec
            self.fec_encoder = _fec_coder(fec, encoder=True)
            self.encoder = grfec.async_encoder(self.fec_encoder, True, False, False, FEC_MTU)
            if fec == "cc":
                self.tail = _tail_byte(True)
                self.msg_connect(self.crc, "out", self.tail, "in")
                self.msg_connect(self.tail, "out", self.encoder, "in")
            else:
                self.msg_connect(self.crc, "out", self.encoder, "in")
            coded = self.encoder
        if self.scramble:
            self.scrambler = _scrambler()
            self.msg_connect(coded, "out", self.scrambler, "in")
            coded = self.scrambler
        self.msg_connect(coded, "out", self.formatter, "in")
        self.msg_connect(self.formatter, "header", self.framer, "header")
        self.msg_connect(self.formatter, "payload", self.framer, "payload")
        if mode == "burst":
            # length tag in bytes -> in samples; soft ramps over the first and
            # last byte (inside the preamble/postamble)
            self.tag_scale = blocks.tagged_stream_multiply_length(gr.sizeof_gr_complex, length_tag, 8 * self.sps)
            ramp = int(min(8, 4 * min(preamble, postamble)) * self.sps)
            taps = list(np.hanning(2 * ramp)) if ramp > 0 else [1.0]
            self.shaper = digital.burst_shaper_cc(taps, 0, 0, False, length_tag)
            self.connect(self.framer, self.mod, self.tag_scale, self.shaper, self.scale, self)
        else:
            self.connect(self.framer, self.mod, self.scale, self)

    def packets_in(self):
        """Packets taken into the modulator's byte stream so far."""
        return self.framer.frames_framed()

    def tx_latency(self):
        """Capture to send of the packets whose metadata carried a capture_time (as
        uep_packetizer's do when its frames came from mimi_encoder): dict(frames, window, p50_ms,
        p95_ms, max_ms) over the last 125 such packets (packet_framer.tx_latency)."""
        return self.framer.tx_latency()

    def frame_bytes(self, packet_bytes):
        """Bytes on air for a packet of `packet_bytes` bytes (FEC included,
        slot padding not)."""
        return frame_bytes(packet_bytes, self.access_code, self.preamble, self.postamble, self.fec)

    def bytes_out(self):
        return self.framer.bytes_out()

    def samples_out(self):
        return self.scale.nitems_written(0)

    def set_amplitude(self, amplitude):
        """New output scale (checked as the constructor's amplitude)."""
        self.scale.set_k(check_amplitude(amplitude))

    def messages_in(self):
        """Messages on `in` handled so far (passed on or rejected)."""
        return self.gate.pdus_in()

    def rejections(self):
        """{reason: count} of the messages the transmitter refused (input
        gate) plus anything its Python helper blocks dropped."""
        out = dict(self.gate.rejections())
        for blk in (getattr(self, "tail", None), getattr(self, "scrambler", None), self.framer):
            if blk is not None:
                for k, v in blk.rejections().items():
                    out[f"{blk.guard.block_name} {k}"] = out.get(f"{blk.guard.block_name} {k}", 0) + v
        return out
