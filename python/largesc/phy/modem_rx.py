#
# Copyright 2026 gr-largesc authors.
# SPDX-License-Identifier: GPL-3.0-or-later
#
"""The packet modem's receiver (packet_modem_rx): complex baseband -> sample
guard (C++ sample_guard: non-finite samples zeroed, huge ones limited, counted)
-> channel filter (decimating low-pass) -> FM discriminator
(analog.quadrature_demod_cf) -> AFC (the discriminator's running mean is
subtracted: removes a carrier frequency offset) -> symbol timing recovery
(digital.symbol_sync_ff, Mueller & Mueller) -> access code correlation and
length header on hard decisions of the soft symbols, the frame's soft symbols
as one PDU (_frame_sync: the rules of digital.correlate_access_code_ff_ts, with
a bounded length field) -> bytes (_soft_bytes) -> CRC-32 check (digital.crc32_async_bb, drops bad packets;
_crc_failures reports them). With FEC gr-fec's async_decoder decodes the soft
symbols (_soft_frame) instead.

A packet that fails sync, header or CRC never leaves the receiver, which is
what uep_depacketizer expects. See docs/phy.md.
"""

import math

import numpy as np
import pmt
from gnuradio import analog, blocks, digital, filter, gr

from .. import largesc_python as _core
from ..common import params as P
from ..common.guard import Guard
from ..traces.trace import HEARD_KEY    # PDU metadata: the frame's index among all frames heard
from .fec import FEC_MTU, _fec_coder, _tail_byte, check_fec
from .framing import (CRC_BYTES, MAX_FRAME_BYTES, DEFAULT_ACCESS_CODE, DEFAULT_BIT_RATE, DEFAULT_SAMP_RATE, LENGTH_TAG,
                      check_access_code, check_length_tag, descramble_soft, frame_length_range, samples_per_symbol)
from .pdu_map import _meta_dict, _pdu_map, _u8_pdu

SNR_KEY = "snr_db"              # PDU metadata: soft-symbol SNR of the packet (trace_recorder reads it)
MAX_SAMPLE_ABS = _core.SAMPLE_GUARD_LIMIT   # input samples are limited to this magnitude (|x|^2 stays far from float32 overflow)
TIMING_LOOP_BW_RANGE = (1e-4, 0.5)
AFC_SYMBOLS_RANGE = (1.0, 1e6)


def soft_snr_db(x):
    """Signal-to-noise ratio (dB) of a packet's soft symbols (the FM
    discriminator's output at the symbol instants, one per bit): mean(|x|)^2
    over the variance of |x|. A receive-quality figure per packet, not a
    calibrated Eb/N0 (measured against Eb/N0: docs/phy.md, "Per-packet SNR");
    None for fewer than 16 symbols or any non-finite one."""
    a = np.abs(np.asarray(x, np.float64))
    if a.size < 16 or not np.all(np.isfinite(a)):
        return None
    v = float(a.var())
    m = float(a.mean())
    if not v > 0:
        return 99.0
    return round(10.0 * math.log10(max(m * m / v, 1e-10)), 2)


class _frame_sync(gr.sync_block):
    """Soft symbols (one float per bit, + = 1) in; one f32 PDU per frame out
    (message port `pdus`; car: an empty dict, cdr: the frame's soft symbols
    after the length header).

    The rules of GNU Radio's correlate_access_code_ff_ts, symbol for symbol:
    hunt for the access code on hard decisions (sign bit clear = 1) with at
    most `threshold` bits wrong; then read the 32-bit header (16-bit length
    twice, MSB first); if both copies agree, take 8 x length soft symbols as
    the frame, then hunt again (the hunting register holds the bits it had at
    the access code, as the C++ block's does). Unlike it (which reads 12 bits
    of the length and hands the frame to a tagged stream that deadlocks on
    frames of 2048 bytes or more), a length outside `lengths` = (least,
    largest, step) bytes (frame_length_range: what this modem's transmitter
    sends) is dropped, counted (`in: frame length out of range`) and the
    hunt starts again at the next symbol. Headers whose copies differ are
    noise or bit errors: counted in headers_bad(), not logged."""

    SEARCH, HEADER, PAYLOAD = range(3)

    def __init__(self, access_code, threshold, lengths):
        gr.sync_block.__init__(self, "largesc_frame_sync", in_sig=[np.float32], out_sig=None)
        self.code = np.array([1.0 if c == "1" else -1.0 for c in access_code], np.float32)
        self.nc = len(self.code)
        self.min_corr = self.nc - 2 * int(threshold)      # correlation of +-1 = nc - 2 x wrong bits
        self.lengths = lengths
        self.reg = -np.ones(self.nc - 1, np.float32)      # the hunting register's newest nc - 1 bits (0 = -1)
        self.state = self.SEARCH
        self.hdr = 0
        self.hdr_bits = 0
        self.need = 0
        self.buf = []
        self.have = 0
        self.n_frames = 0
        self.n_bad_headers = 0
        self.guard = Guard("largesc_frame_sync")
        self.port = pmt.intern("pdus")
        self.message_port_register_out(self.port)

    def work(self, input_items, output_items):
        x = input_items[0]
        n = len(x)
        i = 0
        while i < n:
            if self.state == self.SEARCH:
                i = self._search(x, i)
            elif self.state == self.HEADER:
                i = self._header(x, i)
            else:
                i = self._payload(x, i)
        return n

    def _search(self, x, i):
        """Hunts from x[i]; returns the index after the access code's last
        symbol (state HEADER) or len(x)."""
        s = np.concatenate([self.reg, np.where(np.signbit(x[i:]), -1.0, 1.0).astype(np.float32)])
        corr = np.correlate(s, self.code, "valid")       # window w ends at x[i + w]
        hits = np.flatnonzero(corr >= self.min_corr)
        if len(hits) == 0:
            self.reg = s[len(s) - (self.nc - 1):]
            return len(x)
        w = int(hits[0])
        self.reg = s[w + 1:w + self.nc]
        self.state, self.hdr, self.hdr_bits = self.HEADER, 0, 0
        return i + w + 1

    def _header(self, x, i):
        take = min(32 - self.hdr_bits, len(x) - i)
        for b in ~np.signbit(x[i:i + take]):
            self.hdr = (self.hdr << 1) | int(b)
        self.hdr_bits += take
        if self.hdr_bits == 32:
            hi, lo = self.hdr >> 16, self.hdr & 0xFFFF
            least, largest, step = self.lengths
            if hi != lo:
                self.n_bad_headers += 1
                self.state = self.SEARCH
            elif not (least <= hi <= largest and hi % step == 0):
                self.guard.note("in: frame length out of range", f"{hi} bytes; this modem sends "
                                f"{least}..{largest} in steps of {step}")
                self.state = self.SEARCH
            else:
                self.state, self.need, self.buf, self.have = self.PAYLOAD, 8 * hi, [], 0
        return i + take

    def _payload(self, x, i):
        take = min(self.need - self.have, len(x) - i)
        self.buf.append(np.array(x[i:i + take], np.float32))
        self.have += take
        if self.have == self.need:
            frame = np.concatenate(self.buf)
            self.buf = []
            self.state = self.SEARCH
            self.message_port_pub(self.port, pmt.cons(pmt.make_dict(), pmt.init_f32vector(len(frame), frame)))
            self.n_frames += 1
        return i + take

    def frames_out(self):
        return self.n_frames

    def headers_bad(self):
        """Access codes found whose two length copies differed."""
        return self.n_bad_headers

    def rejections(self):
        return self.guard.counts()


class _soft_pdu(_pdu_map):
    """Base of the blocks that take a frame's soft symbols (f32 PDU, one value
    per bit on air, + = 1) from the correlator: frame_meta numbers the frames
    they pass on."""

    VECTOR = "f32"

    def __init__(self, name, scramble=False):
        _pdu_map.__init__(self, name)
        self.heard = 0
        self.scramble = bool(scramble)

    def symbols(self, x):
        """The frame's soft symbols, descrambled in frame format 2 (scramble)."""
        return descramble_soft(x) if self.scramble else x

    def frame_meta(self, meta, x):
        """The frame's metadata plus its soft-symbol SNR (snr_db, when there
        are enough symbols) and its index among all frames the receiver heard
        (rx_frame, counted here): delivered and CRC-failed frames share one
        count, so a trace recorder knows between which delivered packets a
        CRC failure fell, however late its report arrives."""
        meta = _meta_dict(meta)
        snr = soft_snr_db(x)
        if snr is not None:
            meta = pmt.dict_add(meta, pmt.intern(SNR_KEY), pmt.from_double(snr))
        meta = pmt.dict_add(meta, pmt.intern(HEARD_KEY), pmt.from_uint64(self.heard))
        self.heard += 1
        return meta

    def frame_ok(self, x):
        """True for a frame of whole bytes (a multiple of 8 symbols, 8 ..
        8 x MAX_FRAME_BYTES) whose soft symbols are all finite; else counts
        it (`in: not whole bytes`, `in: non-finite soft symbols`: dropped)
        and returns False."""
        if len(x) == 0 or len(x) % 8 or len(x) > 8 * MAX_FRAME_BYTES:
            self.reject("not whole bytes", f"{len(x)} symbols")
            return False
        if np.all(np.isfinite(x)):
            return True
        self.reject("non-finite soft symbols", f"{int(np.count_nonzero(~np.isfinite(x)))} of {len(x)}")
        return False


class _soft_frame(_soft_pdu):
    """Soft-decision PDU -> what gr-fec's async_decoder takes: clipped to
    +-2.5 (it maps x -> 48 x + 128 into a byte), with frame_meta's metadata."""

    def __init__(self, scramble=False):
        _soft_pdu.__init__(self, "largesc_soft_frame", scramble)

    def map(self, meta, x):
        if not self.frame_ok(x):
            return None
        c = np.clip(self.symbols(x), -2.5, 2.5)
        return pmt.cons(self.frame_meta(meta, x), pmt.init_f32vector(len(c), c.tolist()))


class _soft_bytes(_soft_pdu):
    """Soft-decision PDU -> byte PDU: hard decisions (x >= 0 -> 1, as
    binary_slicer), packed MSB first, with frame_meta's metadata."""

    def __init__(self, scramble=False):
        _soft_pdu.__init__(self, "largesc_soft_bytes", scramble)

    def map(self, meta, x):
        if not self.frame_ok(x):
            return None
        return _u8_pdu(self.frame_meta(meta, x), np.packbits((self.symbols(x) >= 0).astype(np.uint8)))


class _pdu_counter(gr.basic_block):
    """Message sink that counts messages (receiver statistics; any message
    counts, nothing is read from it)."""

    def __init__(self):
        gr.basic_block.__init__(self, "largesc_pdu_counter", in_sig=None, out_sig=None)
        self.count = 0
        self.guard = Guard("largesc_pdu_counter")
        self.message_port_register_in(pmt.intern("in"))
        self.guard.install(self, "in", self._on_msg)

    def _on_msg(self, msg):
        self.count += 1

    def rejections(self):
        return self.guard.counts()


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
        meta = _meta_dict(meta)   # keeps snr_db
        meta = pmt.dict_add(meta, pmt.intern("crc_failed"), pmt.PMT_T)
        meta = pmt.dict_add(meta, pmt.intern("length"), pmt.from_long(len(b)))
        return _u8_pdu(meta, b)


class packet_modem_rx(gr.hier_block2):
    """GMSK complex baseband (stream in) -> packet PDUs (message port `out`).

    samp_rate, bit_rate: as the transmitter.
    access_code: as the transmitter.
    threshold: bit errors allowed in the access code (0 .. a quarter of its
        bits: 0..16 for 64).
    max_freq_offset: widens the channel filter (cutoff 0.6 x bit_rate +
        max_freq_offset Hz; 0 .. samp_rate / 2 - 0.85 x bit_rate, so that the
        filter stays under the Nyquist frequency); every Hz of widening costs
        sensitivity (what offset costs little without it: docs/phy.md, "USRP
        notes"). The AFC removes whatever offset passes the filter.
    timing_loop_bw: symbol timing loop bandwidth (normalised, per symbol;
        TIMING_LOOP_BW_RANGE).
    afc_symbols: time constant of the AFC in symbols (AFC_SYMBOLS_RANGE).
    length_tag: a tag name; kept for compatibility (the receiver no longer
        passes frames through a tagged stream).
    fec: as the transmitter's. With FEC the access code and header are found
        on hard decisions of the soft symbols and the coded packet is decoded
        from the soft symbols (gr-fec async_decoder: soft-decision Viterbi for
        'cc', soft combining for 'rep3').
    Every parameter is checked by name at construction (ParameterError).
    Only packets whose CRC-32 matches leave `out` (payload without CRC).
    `crc_failed` (message out, optional): one PDU per frame whose access code
    and length header were found but whose CRC-32 failed (car: crc_failed,
    length); connect it to a Trace Recorder's `crc_failed` input so that the
    trace tells these packets from ones never heard.
    Any sample value is survived: non-finite samples become 0, samples over
    MAX_SAMPLE_ABS are limited (samples_zeroed(), samples_limited()); a frame
    whose length field is outside what the transmitter sends
    (frame_length_range(fec)) is dropped and the hunt for the next access
    code starts at once (rejections()).
    """

    def __init__(self, samp_rate=DEFAULT_SAMP_RATE, bit_rate=DEFAULT_BIT_RATE,
                 access_code=DEFAULT_ACCESS_CODE, threshold=4, max_freq_offset=0.0,
                 timing_loop_bw=0.02, afc_symbols=256, length_tag=LENGTH_TAG, fec="none", scramble=True):
        sps = samples_per_symbol(samp_rate, bit_rate)
        check_access_code(access_code)
        threshold = P.check_int("threshold", threshold, 0, len(access_code) // 4)
        max_freq_offset = P.check_float("max_freq_offset", max_freq_offset, 0.0,
                                        max(0.0, samp_rate / 2 - 0.85 * bit_rate))
        timing_loop_bw = P.check_float("timing_loop_bw", timing_loop_bw, *TIMING_LOOP_BW_RANGE)
        afc_symbols = P.check_float("afc_symbols", afc_symbols, *AFC_SYMBOLS_RANGE)
        check_length_tag("length_tag", length_tag)
        check_fec(fec)
        self.scramble = P.check_bool("scramble", scramble)
        gr.hier_block2.__init__(self, "packet_modem_rx", gr.io_signature(1, 1, gr.sizeof_gr_complex),
                                gr.io_signature(0, 0, 0))
        self.fec = fec
        # decimate in the channel filter to the fewest samples per symbol >= 4
        decim = max(d for d in range(1, sps + 1) if sps % d == 0 and sps // d >= min(4, sps))
        self.sps = sps
        self.decim = decim
        sps_d = sps // decim
        self.message_port_register_hier_out("out")
        self.message_port_register_hier_out("crc_failed")
        self.crc_check = _crc_failures()
        self.sample_guard = _core.sample_guard(MAX_SAMPLE_ABS)   # C++: it sees every sample
        cutoff = 0.6 * bit_rate + max_freq_offset
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
        self.connect(self, self.sample_guard, self.chan_filter, self.fmdemod, (self.afc, 0))
        self.connect(self.fmdemod, self.afc_mean, (self.afc, 1))
        # access code and header on hard decisions of the soft symbols; the
        # slicer only counts recovered bits (bits_out)
        self.connect(self.afc, self.timing, self.slicer, blocks.null_sink(gr.sizeof_char))
        self.sync = _frame_sync(access_code, threshold, frame_length_range(fec))
        self.connect(self.timing, self.sync)
        if fec == "none":
            # the packet's bits are sliced from its soft symbols, which also
            # give its SNR (snr_db in the PDU metadata)
            self.soft = _soft_bytes(self.scramble)
            self.msg_connect(self.sync, "pdus", self.soft, "in")
            self.msg_connect(self.soft, "out", self.crc, "in")
            self.msg_connect(self.soft, "out", self.crc_check, "in")
        else:
            from gnuradio import fec as grfec
            self.soft = _soft_frame(self.scramble)
            self.fec_decoder = _fec_coder(fec, encoder=False)
            self.decoder = grfec.async_decoder(self.fec_decoder, True, False, FEC_MTU)
            self.msg_connect(self.sync, "pdus", self.soft, "in")
            self.msg_connect(self.soft, "out", self.decoder, "in")
            if fec == "cc":
                self.tail = _tail_byte(False)
                self.msg_connect(self.decoder, "out", self.tail, "in")
                self.msg_connect(self.tail, "out", self.crc, "in")
                self.msg_connect(self.tail, "out", self.crc_check, "in")
            else:
                self.msg_connect(self.decoder, "out", self.crc, "in")
                self.msg_connect(self.decoder, "out", self.crc_check, "in")
        self.msg_connect(self.sync, "pdus", self.frames_counter, "in")
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

    def samples_zeroed(self):
        """Non-finite input samples replaced by 0."""
        return self.sample_guard.samples_zeroed()

    def samples_limited(self):
        """Input samples over MAX_SAMPLE_ABS scaled down to it."""
        return self.sample_guard.samples_limited()

    def headers_bad(self):
        """Access codes found whose two length copies differed (noise)."""
        return self.sync.headers_bad()

    def rejections(self):
        """{"<block> <reason>": count} of what the receiver's guarded blocks
        sanitised or dropped (sample guard, frame sync, soft-symbol and CRC
        report blocks; see docs/interfaces.md)."""
        out = dict(self.sample_guard.rejections())      # C++: its keys name the block already
        for blk in (self.sync, self.soft, getattr(self, "tail", None), self.crc_check):
            if blk is not None:
                for k, v in blk.rejections().items():
                    key = f"{blk.guard.block_name} {k}"
                    out[key] = out.get(key, 0) + v
        return out
