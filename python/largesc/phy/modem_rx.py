#
# Copyright 2026 gr-largesc authors.
# SPDX-License-Identifier: GPL-3.0-or-later
#
"""The packet modem's receiver (packet_modem_rx): complex baseband -> channel
filter (decimating low-pass) -> FM discriminator (analog.quadrature_demod_cf)
-> AFC (the discriminator's running mean is subtracted: removes a carrier
frequency offset) -> symbol timing recovery (digital.symbol_sync_ff, Mueller &
Mueller) -> access code correlation and length header on hard decisions of the
soft symbols (digital.correlate_access_code_ff_ts) -> soft-symbol PDU -> bytes
(_soft_bytes) -> CRC-32 check (digital.crc32_async_bb, drops bad packets;
_crc_failures reports them). With FEC gr-fec's async_decoder decodes the soft
symbols (_soft_frame) instead.

A packet that fails sync, header or CRC never leaves the receiver, which is
what uep_depacketizer expects. See docs/phy.md.
"""

import math

import numpy as np
import pmt
from gnuradio import analog, blocks, digital, filter, gr, pdu

from ..traces.trace import HEARD_KEY    # PDU metadata: the frame's index among all frames heard
from .fec import FEC_MTU, _fec_coder, _tail_byte, check_fec
from .framing import (CRC_BYTES, DEFAULT_ACCESS_CODE, DEFAULT_BIT_RATE, DEFAULT_SAMP_RATE, LENGTH_TAG,
                      _check_access_code, samples_per_symbol)
from .pdu_map import _pdu_map, _u8_pdu

SNR_KEY = "snr_db"              # PDU metadata: soft-symbol SNR of the packet (trace_recorder reads it)


def soft_snr_db(x):
    """Signal-to-noise ratio (dB) of a packet's soft symbols (the FM
    discriminator's output at the symbol instants, one per bit): mean(|x|)^2
    over the variance of |x|. A receive-quality figure per packet, not a
    calibrated Eb/N0 (measured against Eb/N0: docs/phy.md, "Per-packet SNR");
    None for fewer than 16 symbols."""
    a = np.abs(np.asarray(x, np.float64))
    if a.size < 16:
        return None
    v = float(a.var())
    m = float(a.mean())
    if not v > 0:
        return 99.0
    return round(10.0 * math.log10(max(m * m / v, 1e-10)), 2)


class _soft_pdu(_pdu_map):
    """Base of the blocks that take a frame's soft symbols (f32 PDU, one value
    per bit on air, + = 1) from the correlator: frame_meta numbers the frames
    they pass on."""

    VECTOR = "f32"

    def __init__(self, name):
        _pdu_map.__init__(self, name)
        self.heard = 0

    def frame_meta(self, meta, x):
        """The frame's metadata plus its soft-symbol SNR (snr_db, when there
        are enough symbols) and its index among all frames the receiver heard
        (rx_frame, counted here): delivered and CRC-failed frames share one
        count, so a trace recorder knows between which delivered packets a
        CRC failure fell, however late its report arrives."""
        meta = meta if pmt.is_dict(meta) else pmt.make_dict()
        snr = soft_snr_db(x)
        if snr is not None:
            meta = pmt.dict_add(meta, pmt.intern(SNR_KEY), pmt.from_double(snr))
        meta = pmt.dict_add(meta, pmt.intern(HEARD_KEY), pmt.from_uint64(self.heard))
        self.heard += 1
        return meta


class _soft_frame(_soft_pdu):
    """Soft-decision PDU -> what gr-fec's async_decoder takes: clipped to
    +-2.5 (it maps x -> 48 x + 128 into a byte), with frame_meta's metadata."""

    def __init__(self):
        _soft_pdu.__init__(self, "largesc_soft_frame")

    def map(self, meta, x):
        c = np.clip(x, -2.5, 2.5)
        return pmt.cons(self.frame_meta(meta, x), pmt.init_f32vector(len(c), c.tolist()))


class _soft_bytes(_soft_pdu):
    """Soft-decision PDU -> byte PDU: hard decisions (x >= 0 -> 1, as
    binary_slicer), packed MSB first, with frame_meta's metadata. A trailing
    partial byte is dropped (a frame of less than a byte is not passed on)."""

    def __init__(self):
        _soft_pdu.__init__(self, "largesc_soft_bytes")

    def map(self, meta, x):
        n = len(x) // 8 * 8
        if n == 0:
            return None
        return _u8_pdu(self.frame_meta(meta, x), np.packbits((x[:n] >= 0).astype(np.uint8)))


class _pdu_counter(gr.basic_block):
    """Message sink that counts PDUs (receiver statistics)."""

    def __init__(self):
        gr.basic_block.__init__(self, "largesc_pdu_counter", in_sig=None, out_sig=None)
        self.count = 0
        self.message_port_register_in(pmt.intern("in"))
        self.set_msg_handler(pmt.intern("in"), self._on_msg)

    def _on_msg(self, msg):
        self.count += 1


class _crc_failures(_pdu_map):
    """Frames whose CRC-32 does not match, which crc32_async_bb drops unseen:
    one PDU on `out` per such frame (car: the frame's metadata (snr_db) plus
    crc_failed=True and length = received bytes with the CRC; cdr: the
    received bytes, not to be trusted), so that a trace recorder can mark
    the packet CRC-failed instead of lost. The CRC is GNU Radio's (zlib
    CRC-32 of the payload, appended little-endian)."""

    def __init__(self):
        _pdu_map.__init__(self, "largesc_crc_failures")
        self.count = 0

    @staticmethod
    def crc_ok(b):
        import zlib
        b = bytes(b)
        return len(b) > CRC_BYTES and zlib.crc32(b[:-CRC_BYTES]).to_bytes(CRC_BYTES, "little") == b[-CRC_BYTES:]

    def map(self, meta, b):
        if self.crc_ok(b):
            return None
        self.count += 1
        meta = meta if pmt.is_dict(meta) else pmt.make_dict()   # keeps snr_db
        meta = pmt.dict_add(meta, pmt.intern("crc_failed"), pmt.PMT_T)
        meta = pmt.dict_add(meta, pmt.intern("length"), pmt.from_long(len(b)))
        return _u8_pdu(meta, b)


class packet_modem_rx(gr.hier_block2):
    """GMSK complex baseband (stream in) -> packet PDUs (message port `out`).

    samp_rate, bit_rate: as the transmitter.
    access_code: as the transmitter.
    threshold: bit errors allowed in the access code (of 64).
    max_freq_offset: widens the channel filter (cutoff 0.6 x bit_rate +
        max_freq_offset Hz); every Hz of widening costs sensitivity (what
        offset costs little without it: docs/phy.md, "USRP notes"). The AFC
        removes whatever offset passes the filter.
    timing_loop_bw: symbol timing loop bandwidth (normalised, per symbol).
    afc_symbols: time constant of the AFC in symbols.
    fec: as the transmitter's. With FEC the access code and header are found
        on hard decisions of the soft symbols (correlate_access_code_ff_ts) and
        the coded packet is decoded from the soft symbols (gr-fec async_decoder:
        soft-decision Viterbi for 'cc', soft combining for 'rep3').
    Only packets whose CRC-32 matches leave `out` (payload without CRC).
    `crc_failed` (message out, optional): one PDU per frame whose access code
    and length header were found but whose CRC-32 failed (car: crc_failed,
    length); connect it to a Trace Recorder's `crc_failed` input so that the
    trace tells these packets from ones never heard.
    """

    def __init__(self, samp_rate=DEFAULT_SAMP_RATE, bit_rate=DEFAULT_BIT_RATE,
                 access_code=DEFAULT_ACCESS_CODE, threshold=4, max_freq_offset=0.0,
                 timing_loop_bw=0.02, afc_symbols=256, length_tag=LENGTH_TAG, fec="none"):
        gr.hier_block2.__init__(self, "packet_modem_rx", gr.io_signature(1, 1, gr.sizeof_gr_complex),
                                gr.io_signature(0, 0, 0))
        _check_access_code(access_code)
        check_fec(fec)
        self.fec = fec
        sps = samples_per_symbol(samp_rate, bit_rate)
        # decimate in the channel filter to the fewest samples per symbol >= 4
        decim = max(d for d in range(1, sps + 1) if sps % d == 0 and sps // d >= min(4, sps))
        self.sps = sps
        self.decim = decim
        sps_d = sps // decim
        self.message_port_register_hier_out("out")
        self.message_port_register_hier_out("crc_failed")
        self.crc_check = _crc_failures()
        cutoff = 0.6 * bit_rate + abs(max_freq_offset)
        taps = filter.firdes.low_pass(1.0, samp_rate, cutoff, 0.5 * bit_rate, filter.window.WIN_HAMMING)
        self.chan_filter = filter.fir_filter_ccf(decim, taps)
        self.fmdemod = analog.quadrature_demod_cf(sps_d / (math.pi / 2))
        self.afc_mean = filter.single_pole_iir_filter_ff(1.0 / (afc_symbols * sps_d))
        self.afc = blocks.sub_ff()
        self.timing = digital.symbol_sync_ff(digital.TED_MUELLER_AND_MULLER, sps_d, timing_loop_bw, 1.0,
                                             1.0, 0.005 * sps_d, 1, digital.constellation_bpsk().base(),
                                             digital.IR_MMSE_8TAP, 128, [])
        self.slicer = digital.binary_slicer_fb()
        self.crc = digital.crc32_async_bb(True)
        self.frames_counter = _pdu_counter()
        self.packets_counter = _pdu_counter()
        self.connect(self, self.chan_filter, self.fmdemod, (self.afc, 0))
        self.connect(self.fmdemod, self.afc_mean, (self.afc, 1))
        if fec == "none":
            # access code and header on hard decisions of the soft symbols, as
            # with FEC; the packet's bits are sliced from its soft symbols,
            # which also give its SNR (snr_db in the PDU metadata)
            self.connect(self.afc, self.timing, self.slicer, blocks.null_sink(gr.sizeof_char))
            self.correlator = digital.correlate_access_code_ff_ts(access_code, threshold, length_tag)
            self.to_pdu = pdu.tagged_stream_to_pdu(gr.types.float_t, length_tag)
            self.soft = _soft_bytes()
            self.connect(self.timing, self.correlator, self.to_pdu)
            self.msg_connect(self.to_pdu, "pdus", self.soft, "in")
            self.msg_connect(self.soft, "out", self.crc, "in")
            self.msg_connect(self.soft, "out", self.crc_check, "in")
        else:
            from gnuradio import fec as grfec
            # the slicer still counts recovered bits (bits_out); the soft path decodes
            self.connect(self.afc, self.timing, self.slicer, blocks.null_sink(gr.sizeof_char))
            self.correlator = digital.correlate_access_code_ff_ts(access_code, threshold, length_tag)
            self.to_pdu = pdu.tagged_stream_to_pdu(gr.types.float_t, length_tag)
            self.soft = _soft_frame()
            self.fec_decoder = _fec_coder(fec, encoder=False)
            self.decoder = grfec.async_decoder(self.fec_decoder, True, False, FEC_MTU)
            self.connect(self.timing, self.correlator, self.to_pdu)
            self.msg_connect(self.to_pdu, "pdus", self.soft, "in")
            self.msg_connect(self.soft, "out", self.decoder, "in")
            if fec == "cc":
                self.tail = _tail_byte(False)
                self.msg_connect(self.decoder, "out", self.tail, "in")
                self.msg_connect(self.tail, "out", self.crc, "in")
                self.msg_connect(self.tail, "out", self.crc_check, "in")
            else:
                self.msg_connect(self.decoder, "out", self.crc, "in")
                self.msg_connect(self.decoder, "out", self.crc_check, "in")
        self.msg_connect(self.to_pdu, "pdus", self.frames_counter, "in")
        self.msg_connect(self.crc, "out", self.packets_counter, "in")
        self.msg_connect(self.crc, "out", self, "out")
        self.msg_connect(self.crc_check, "out", self, "crc_failed")

    def frames_detected(self):
        """Frames whose access code and length header were found."""
        return self.frames_counter.count

    def packets_out(self):
        """Packets that passed the CRC and left `out`."""
        return self.packets_counter.count

    def crc_failures(self):
        return self.frames_detected() - self.packets_out()

    def crc_failed_out(self):
        """CRC-failed frames reported on `crc_failed`."""
        return self.crc_check.count

    def samples_in(self):
        return self.chan_filter.nitems_read(0)

    def bits_out(self):
        """Bits out of the slicer (one per recovered symbol)."""
        return self.slicer.nitems_written(0)
