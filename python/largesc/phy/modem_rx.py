#
# Copyright 2026 gr-largesc authors.
# SPDX-License-Identifier: GPL-3.0-or-later
#
"""A packet modem for LargeSC packet PDUs, built from GNU Radio's own blocks.

TX (packet_modem_tx): packet PDU -> CRC-32 (digital.crc32_async_bb) ->
[FEC: gr-fec async_encoder, convolutional K=7 r=1/2 or repetition x3] ->
access code + length header (digital.protocol_formatter_async with
digital.header_format_default) -> byte stream with preamble/postamble or idle
fill (packet_framer) -> GMSK (digital.gmsk_mod, BT 0.35, h = 0.5).

RX (packet_modem_rx): complex baseband -> channel filter (decimating low-pass)
-> FM discriminator (analog.quadrature_demod_cf) -> AFC (the discriminator's
running mean is subtracted: removes a carrier frequency offset) -> symbol
timing recovery (digital.symbol_sync_ff, Mueller & Mueller) -> slicer ->
access code correlation and length header (digital.correlate_access_code_bb_ts)
-> bytes -> PDU -> CRC-32 check (digital.crc32_async_bb, drops bad packets).
With FEC the access code is found on the soft symbols
(correlate_access_code_ff_ts) and gr-fec's async_decoder decodes them.

link_sim simulates the link with gr-channels models: AWGN, Rayleigh or Rician
flat fading with Doppler (fading_model), carrier and timing drift
(cfo_model, sro_model), all seeded (largesc-phy-sweep, docs/phy.md).

A packet that fails sync, header or CRC never leaves the receiver, which is
what uep_depacketizer expects. Frame on air (MSB first):

    preamble 0x33 x P | access code 64 bit | len16 | len16 | packet | CRC-32 | postamble 0x33 x Q

Rates: bit rate = samp_rate / samples_per_symbol (integer). At 12.5 packets/s
a 30-byte packet needs (P + 8 + 4 + 30 + 4 + Q) x 8 x 12.5 bit/s, about
5.2 kbit/s with P = Q = 2; 10 kbit/s is the default. See docs/phy.md.
"""

import collections
import math
import threading
import time

import numpy as np
import pmt
from gnuradio import analog, blocks, channels, digital, filter, gr, pdu
from gnuradio.digital import packet_utils

from ..uep import uep_plan
from ..traces.trace import HEARD_KEY    # PDU metadata: the frame's index among all frames heard

DEFAULT_ACCESS_CODE = packet_utils.default_access_code  # 64 bits, 0xACDDA4E2F28C20FC
DEFAULT_BIT_RATE = 10000.0
DEFAULT_SAMP_RATE = 80000.0     # simulation: 8 samples per symbol
USRP_SAMP_RATE = 250000.0       # USRP examples: 25 samples per symbol
GMSK_BT = 0.5                   # measured 3 dB better than 0.35 with discriminator detection
# Idle, preamble, postamble and slot fill: 0x33 (00110011): zero mean (the AFC
# sees no offset) with transitions the Mueller & Muller timing detector can use.
# 0x55 (alternating bits) gives that detector no error signal at all: the
# timing loop drifts through every idle gap. Measured with link_sim, 150
# packets x 2 seeds, packets 80 ms apart (idle between them, as in continuous
# mode on air): loss 57 % / 19 % at 11 / 13 dB Eb/N0 with 0x55 fill, 45 % /
# 9 % with 0x33; back to back and in burst mode no difference.
IDLE_BYTE = 0x33
SLOT_FILL_BYTE = IDLE_BYTE
LENGTH_TAG = "packet_len"
HEADER_BYTES = 4                # header_format_default: len16 twice
CRC_BYTES = 4                   # CRC-32
MODES = ("stream", "continuous", "burst")
STARTUP_BYTES = 16              # idle bytes before the first frame of a stream
FRAME_PERIOD = uep_plan.FRAME_MS / 1000.0   # one LargeSC packet per 80 ms frame on air (12.5 packets/s)

# simulated channels (link_sim, largesc-phy-sweep): GNU Radio's gr-channels models
CHANNELS = ("awgn", "rayleigh", "rician")
FADING_SINUSOIDS = 8            # channels.fading_model N (sum of sinusoids; "8 is a good value")
DEFAULT_DOPPLER_HZ = 10.0       # 25 km/h at 433 MHz, walking pace at 2.4 GHz
DEFAULT_K_FACTOR_DB = 6.0       # Rician K (line-of-sight / scattered power)


def samples_per_symbol(samp_rate, bit_rate):
    """Integer samples per symbol; raises ValueError if samp_rate / bit_rate is
    not an integer >= 2 (GMSK modulator and timing recovery need that)."""
    sps = samp_rate / bit_rate
    if abs(sps - round(sps)) > 1e-9 * sps or round(sps) < 2:
        raise ValueError(f"samp_rate / bit_rate must be an integer >= 2, got {samp_rate} / {bit_rate} = {sps}")
    return int(round(sps))


def frame_bytes(packet_bytes, access_code=DEFAULT_ACCESS_CODE, preamble=2, postamble=2, fec="none"):
    """Bytes on air for one packet of `packet_bytes` bytes (with pre/postamble;
    with `fec`, the packet and its CRC-32 are coded: fec_coded_bytes)."""
    return (preamble + len(access_code) // 8 + HEADER_BYTES + fec_coded_bytes(packet_bytes + CRC_BYTES, fec)
            + postamble)


# ---------------------------------------------------------------------------
# Forward error correction (gr-fec, PDU deployments async_encoder/async_decoder)

FEC_CODES = ("none", "cc", "rep3")
FEC_LABELS = {"none": "no FEC",
              "cc": "convolutional K=7 r=1/2 (109, 79), zero tail byte, soft Viterbi",
              "rep3": "repetition x3, soft"}
CC_K = 7
CC_POLYS = [109, 79]            # the K=7 rate 1/2 code of CCSDS / 802.11 (octal 155, 117)
FEC_MTU = 1500                  # bytes: the largest packet + CRC the FEC blocks take
CC_TAIL_BYTES = 1               # a zero byte after packet + CRC flushes the encoder (K - 1 = 6 bits)


def check_fec(fec):
    if fec not in FEC_CODES:
        raise ValueError(f"fec must be one of {', '.join(FEC_CODES)}, got {fec!r}")
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
    terminated code, byte-aligned on air). Not CC_TERMINATED: with packets of
    varying length, GNU Radio 3.10's terminated decoder behind async_decoder
    now and then decodes a clean frame wrongly (measured: 1 of 180 noiseless
    frames); CC_TAILBITING failed 26 of 600 short frames."""
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


SNR_KEY = "snr_db"              # PDU metadata: soft-symbol SNR of the packet (trace_recorder reads it)


def soft_snr_db(x):
    """Signal-to-noise ratio (dB) of a packet's soft symbols (the FM
    discriminator's output at the symbol instants, one per bit): mean(|x|)^2
    over the variance of |x|. A receive-quality figure per packet (it tracks
    Eb/N0 above about 6 dB, offset by the discriminator's own loss), not a
    calibrated Eb/N0; None for fewer than 16 symbols."""
    a = np.abs(np.asarray(x, np.float64))
    if a.size < 16:
        return None
    v = float(a.var())
    m = float(a.mean())
    if not v > 0:
        return 99.0
    return round(10.0 * math.log10(max(m * m / v, 1e-10)), 2)


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


class _tail_byte(_pdu_map):
    """Byte PDUs: appends CC_TAIL_BYTES zero bytes (add=True, before the
    encoder) or removes them (add=False, after the decoder)."""

    def __init__(self, add):
        _pdu_map.__init__(self, "largesc_cc_tail")
        self.add = bool(add)

    def map(self, meta, b):
        b = np.concatenate([b, np.zeros(CC_TAIL_BYTES, np.uint8)]) if self.add else b[:-CC_TAIL_BYTES]
        return _u8_pdu(meta, b) if len(b) else None


def check_channel(channel="awgn", doppler_hz=DEFAULT_DOPPLER_HZ, k_factor_db=DEFAULT_K_FACTOR_DB,
                  bit_rate=DEFAULT_BIT_RATE, freq_drift_hz=0.0, timing_drift_ppm=0.0):
    """Raises ValueError (saying what is allowed) for a simulated channel
    link_sim cannot make: channel one of CHANNELS; fading channels need
    0 < doppler_hz <= bit_rate / 10 (slower than the bits: flat, slow fading
    per bit) and -10 <= k_factor_db <= 30; drifts >= 0, timing drift < 1000 ppm."""
    if channel not in CHANNELS:
        raise ValueError(f"channel must be one of {', '.join(CHANNELS)}, got {channel!r}")
    for name, v in (("doppler_hz", doppler_hz), ("k_factor_db", k_factor_db), ("freq_drift_hz", freq_drift_hz),
                    ("timing_drift_ppm", timing_drift_ppm)):
        if not isinstance(v, (int, float)) or not math.isfinite(v):
            raise ValueError(f"{name} must be a finite number, got {v!r}")
    if channel != "awgn" and not 0 < doppler_hz <= bit_rate / 10:
        raise ValueError(f"Doppler must be > 0 and <= bit rate / 10 = {bit_rate / 10:g} Hz "
                         f"(fD x Tb <= 0.1), got {doppler_hz:g} Hz")
    if not -10.0 <= k_factor_db <= 30.0:
        raise ValueError(f"Rician K factor must be in -10..30 dB, got {k_factor_db:g} dB")
    if not 0 <= freq_drift_hz <= bit_rate / 4:
        raise ValueError(f"frequency drift must be in 0..bit rate / 4 = {bit_rate / 4:g} Hz, got {freq_drift_hz:g}")
    if not 0 <= timing_drift_ppm < 1000:
        raise ValueError(f"timing drift must be in 0..1000 ppm (exclusive), got {timing_drift_ppm:g}")


def _check_access_code(code):
    if not code or len(code) > 64 or len(code) % 8 or set(code) - {"0", "1"}:
        raise ValueError("access code: a string of '0'/'1', a multiple of 8 bits, at most 64")


class packet_framer(gr.basic_block):
    """Header PDUs + payload PDUs (from protocol_formatter_async) -> byte stream.

    Each frame is preamble + header + payload + postamble. Modes:
      stream:     bytes only when packets arrive (simulations run as fast as the
                  CPU allows; the sample stream has no gaps, so the receiver's
                  timing loop stays locked).
      continuous: idle bytes (0x33) between frames, paced by the wall clock at
                  bit_rate (a little ahead), so a real-time sink (USRP in
                  streaming mode, or a throttled simulation) never starves and
                  the receiver keeps timing through gaps.
      burst:      like stream, with a length tag on the first byte of each frame
                  (for tagged-stream bursts to a USRP sink).
    slot_bytes (stream mode): each frame is padded to this length (its air
    slot: FRAME_PERIOD x bit_rate / 8 = one packet per 80 ms as on air, so
    that time-varying channels see real time); a longer frame is sent as it
    is. 0 = frames back to back. Padding and idle bytes are 0x33 (IDLE_BYTE),
    not 0x55: an alternating 0x55 run gives the Mueller & Muller timing
    detector no error signal at all (measured: 0x55 padding lost 44 % of the
    packets at 12 dB Eb/N0, 0x33 25 %, back to back 31 %).
    """

    def __init__(self, mode="stream", preamble=2, postamble=2, bit_rate=DEFAULT_BIT_RATE,
                 lead_s=0.02, length_tag=LENGTH_TAG, startup=STARTUP_BYTES, slot_bytes=0):
        gr.basic_block.__init__(self, "largesc_packet_framer", in_sig=None, out_sig=[np.uint8])
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}")
        if slot_bytes and mode != "stream":
            raise ValueError("slot_bytes (frame period) applies to mode 'stream' only")
        self.slot_bytes = max(0, int(slot_bytes))
        self.last_frame_end = 0   # byte offset just after the last packet's CRC
        self.mode = mode
        self.pre = np.full(int(preamble), IDLE_BYTE, np.uint8)
        self.post = np.full(int(postamble), IDLE_BYTE, np.uint8)
        self.byte_rate = bit_rate / 8.0
        self.lead = max(4, int(lead_s * self.byte_rate))
        self.startup = int(startup)
        self.tag_key = pmt.intern(length_tag)
        self.headers = collections.deque()
        self.payloads = collections.deque()
        self.frames = collections.deque()
        self.current = None   # frame being written
        self.pos = 0
        self.produced = 0
        self.t0 = None
        self.n_frames = 0
        self.n_idle = 0
        for port, handler in (("header", self._on_header), ("payload", self._on_payload)):
            self.message_port_register_in(pmt.intern(port))
            self.set_msg_handler(pmt.intern(port), handler)

    def _on_header(self, msg):
        self._on_msg(self.headers, msg)

    def _on_payload(self, msg):
        self._on_msg(self.payloads, msg)

    def _on_msg(self, q, msg):
        if not pmt.is_pair(msg) or not pmt.is_u8vector(pmt.cdr(msg)):
            return
        q.append(np.asarray(pmt.u8vector_elements(pmt.cdr(msg)), np.uint8))
        while self.headers and self.payloads:   # protocol_formatter publishes header, then payload
            frame = np.concatenate([self.pre, self.headers.popleft(), self.payloads.popleft(), self.post])
            tail = len(self.post)
            if self.slot_bytes > len(frame):
                tail += self.slot_bytes - len(frame)
                frame = np.concatenate([frame, np.full(self.slot_bytes - len(frame), SLOT_FILL_BYTE, np.uint8)])
            self.frames.append((frame, True, tail))

    def idle(self, nbytes):
        """Queues nbytes idle bytes (not a packet). Not in burst mode."""
        if self.mode == "burst":
            raise ValueError("idle bytes would break the tagged bursts")
        self.frames.append((np.full(int(nbytes), IDLE_BYTE, np.uint8), False, 0))

    def frames_framed(self):
        """Frames (packets) taken into the byte stream so far."""
        return self.n_frames

    def bytes_out(self):
        return self.produced

    def idle_bytes(self):
        return self.n_idle

    def general_work(self, input_items, output_items):
        out = output_items[0]
        n = 0
        while n < len(out):
            if self.current is None:
                if not self.frames:
                    break
                self.current, is_packet, tail = self.frames.popleft()
                if self.produced + n == 0 and self.mode == "stream" and self.startup:
                    # first frame of the stream: the receiver's AFC and timing loops settle
                    self.current = np.concatenate([np.full(self.startup, IDLE_BYTE, np.uint8), self.current])
                self.pos = 0
                self.n_frames += is_packet
                if is_packet:
                    self.last_frame_end = self.produced + n + len(self.current) - tail
                if self.mode == "burst" and is_packet:
                    self.add_item_tag(0, self.produced + n, self.tag_key, pmt.from_long(len(self.current)))
            k = min(len(out) - n, len(self.current) - self.pos)
            out[n:n + k] = self.current[self.pos:self.pos + k]
            n += k
            self.pos += k
            if self.pos == len(self.current):
                self.current = None
        if self.mode == "continuous" and n < len(out):
            now = time.monotonic()
            if self.t0 is None:
                self.t0 = now
            due = int((now - self.t0) * self.byte_rate) + self.lead - (self.produced + n)
            if due < -self.lead:   # fell behind (sink stalled): do not burst to catch up
                self.t0 = now - (self.produced + n - self.lead) / self.byte_rate
            k = max(0, min(due, len(out) - n))
            out[n:n + k] = IDLE_BYTE
            n += k
            self.n_idle += k
            if n == 0:
                time.sleep(min(0.005, 0.5 * self.lead / self.byte_rate))
        self.produced += n
        return n


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


class packet_modem_tx(gr.hier_block2):
    """Packet PDUs (message port `in`) -> GMSK complex baseband (stream out).

    samp_rate, bit_rate: samples and bits per second; samp_rate / bit_rate is
        the integer samples per symbol (>= 2).
    access_code: '0'/'1' string (multiple of 8 bits, <= 64).
    mode: 'stream', 'continuous' or 'burst' (see packet_framer).
    preamble, postamble: idle bytes (0x33) before / after each frame. In 'burst'
        mode the receiver must re-acquire timing on every burst: use >= 8.
    amplitude: output scale (constant envelope).
    length_tag: burst mode only: the length tag on the output samples (set the
        same name as the UHD sink's "TSB tag name" for SOB/EOB bursts).
    fec: forward error correction of packet + CRC-32 (FEC_CODES): 'none',
        'cc' (convolutional K=7 rate 1/2, gr-fec cc_encoder, a zero tail byte) or
        'rep3' (repetition x3). The access code and length header stay
        uncoded; the length counts coded bytes. The receiver must use the same.
        Air cost: frame_bytes(n, fec=...).
    frame_period: stream mode only: each frame is padded with idle bytes to
        this air time (FRAME_PERIOD = 0.08 s: one packet per 80 ms slot as on
        air); 0 = frames back to back.
    """

    def __init__(self, samp_rate=DEFAULT_SAMP_RATE, bit_rate=DEFAULT_BIT_RATE,
                 access_code=DEFAULT_ACCESS_CODE, mode="stream", preamble=2, postamble=2,
                 amplitude=1.0, length_tag=LENGTH_TAG, bt=GMSK_BT, fec="none", frame_period=0.0):
        gr.hier_block2.__init__(self, "packet_modem_tx", gr.io_signature(0, 0, 0),
                                gr.io_signature(1, 1, gr.sizeof_gr_complex))
        _check_access_code(access_code)
        check_fec(fec)
        if not (isinstance(frame_period, (int, float)) and math.isfinite(frame_period) and frame_period >= 0):
            raise ValueError(f"frame_period must be a number of seconds >= 0, got {frame_period!r}")
        self.sps = samples_per_symbol(samp_rate, bit_rate)
        self.bit_rate = bit_rate
        self.mode = mode
        self.fec = fec
        self.preamble = int(preamble)
        self.postamble = int(postamble)
        self.access_code = access_code
        self.slot_bytes = int(round(frame_period * bit_rate / 8.0))
        self.message_port_register_hier_in("in")
        self.crc = digital.crc32_async_bb(False)
        self.hdr_format = digital.header_format_default(access_code, 0)
        self.formatter = digital.protocol_formatter_async(self.hdr_format)
        self.framer = packet_framer(mode, preamble, postamble, bit_rate, length_tag=length_tag,
                                    slot_bytes=self.slot_bytes)
        self.mod = digital.gmsk_mod(self.sps, bt)
        self.scale = blocks.multiply_const_cc(amplitude)
        self.msg_connect(self, "in", self.crc, "in")
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
            self.msg_connect(self.encoder, "out", self.formatter, "in")
        else:
            self.msg_connect(self.crc, "out", self.formatter, "in")
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

    def frame_bytes(self, packet_bytes):
        """Bytes on air for a packet of `packet_bytes` bytes (FEC included,
        slot padding not)."""
        return frame_bytes(packet_bytes, self.access_code, self.preamble, self.postamble, self.fec)

    def bytes_out(self):
        return self.framer.bytes_out()

    def samples_out(self):
        return self.scale.nitems_written(0)

    def set_amplitude(self, amplitude):
        self.scale.set_k(amplitude)


class packet_modem_rx(gr.hier_block2):
    """GMSK complex baseband (stream in) -> packet PDUs (message port `out`).

    samp_rate, bit_rate: as the transmitter.
    access_code: as the transmitter.
    threshold: bit errors allowed in the access code (of 64).
    max_freq_offset: widens the channel filter (cutoff 0.6 x bit_rate +
        max_freq_offset Hz). With 0, offsets up to about 10 % of the bit rate
        cost little; every Hz of widening costs sensitivity. The AFC removes
        whatever offset passes the filter.
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


class packet_source(gr.basic_block):
    """LargeSC test packets on message port `out`: real packets from
    largesc.packetizer_core on seeded random 11-bit tokens, one every
    `interval` seconds (0.08 = real time, 12.5 packets/s), frame numbers
    0, 1, 2, ... Plan: K primary codebooks plus r1/r2 copies of frames n-1/n-2
    (none for the first frames). After `count` packets (0 = endless) it waits
    `linger` seconds and tells the flowgraph it is done, so a flowgraph of
    message blocks can finish. sent() counts the packets posted.
    """

    def __init__(self, count=0, interval=0.08, k=8, r1=2, r2=0, crc=False, seed=1, linger=1.0):
        gr.basic_block.__init__(self, "largesc_packet_source", in_sig=None, out_sig=None)
        from gnuradio.largesc import packetizer_core
        self.count, self.interval, self.linger = int(count), float(interval), float(linger)
        self.plan = (int(k), int(r1), int(r2))
        self.core = packetizer_core(bool(crc))
        self.rng = np.random.default_rng(seed)
        self.n_sent = 0
        self.packets = []   # kept (for comparison) when count > 0
        self._stop = threading.Event()
        self._thread = None
        self.message_port_register_out(pmt.intern("out"))

    def make_packet(self, frame):
        k, r1, r2 = self.plan
        tokens = self.rng.integers(0, 2048, size=max(k, r1, r2), dtype=np.int64)
        return self.core.packetize(frame, tokens, k, r1 if frame >= 1 else 0, r2 if frame >= 2 else 0)

    def sent(self):
        return self.n_sent

    def start(self):
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return True

    def stop(self):
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        return True

    def _run(self):
        port = pmt.intern("out")
        t_next = time.monotonic()
        frame = 0
        while not self._stop.is_set() and (self.count == 0 or frame < self.count):
            b = self.make_packet(frame)
            if self.count:
                self.packets.append(b)
            self.message_port_pub(port, pmt.cons(pmt.make_dict(), pmt.init_u8vector(len(b), list(b))))
            self.n_sent += 1
            frame += 1
            t_next += self.interval
            self._stop.wait(max(0.0, t_next - time.monotonic()))
        if not self._stop.wait(self.linger):
            self._post(pmt.intern("system"), pmt.cons(pmt.intern("done"), pmt.from_long(1)))


# ---------------------------------------------------------------------------
# USRP helpers (gr-uhd): the same error message everywhere a device is opened

USRP_HELP = (
    "check the device arguments {args!r}: run `uhd_find_devices` (Debian package uhd-host) "
    "and `uhd_usrp_probe --args \"{args}\"`; name the device with e.g. type=b200, serial=..., "
    "or addr=192.168.10.2 (networked USRPs: host interface on the same subnet); "
    "USB devices need the udev rules (uhd-host) and a USB 3 port; "
    "FPGA images: `uhd_images_downloader`")


class USRPNotFound(RuntimeError):
    pass


def _usrp_error(kind, args, err):
    return USRPNotFound(f"cannot open USRP {kind} ({err}); " + USRP_HELP.format(args=args))


def _tune(dev, samp_rate, center_freq, gain, antenna):
    """Rate, frequency, gain and antenna of channel 0 of a USRP source or sink."""
    from gnuradio import uhd
    dev.set_samp_rate(samp_rate)
    dev.set_center_freq(uhd.tune_request(center_freq), 0)
    dev.set_gain(gain, 0)
    if antenna:
        dev.set_antenna(antenna, 0)
    return dev


def open_usrp_source(args="", samp_rate=USRP_SAMP_RATE, center_freq=433.92e6, gain=30.0, antenna=""):
    """uhd.usrp_source (fc32, one channel) tuned and set; raises USRPNotFound
    naming the device arguments to check when no device answers."""
    from gnuradio import uhd
    try:
        src = uhd.usrp_source(args, uhd.stream_args(cpu_format="fc32", channels=[0]))
    except RuntimeError as e:
        raise _usrp_error("source", args, e) from None
    return _tune(src, samp_rate, center_freq, gain, antenna)


def open_usrp_sink(args="", samp_rate=USRP_SAMP_RATE, center_freq=433.92e6, gain=30.0, antenna="",
                   length_tag=LENGTH_TAG):
    """uhd.usrp_sink (fc32, one channel); with length_tag set it sends each
    tagged burst with start/end of burst. Raises USRPNotFound as above."""
    from gnuradio import uhd
    try:
        snk = uhd.usrp_sink(args, uhd.stream_args(cpu_format="fc32", channels=[0]), length_tag or "")
    except RuntimeError as e:
        raise _usrp_error("sink", args, e) from None
    return _tune(snk, samp_rate, center_freq, gain, antenna)


def check_usrp(args=""):
    """Opens and closes the USRP named by `args`; on failure prints what to
    check and exits (used by the example flowgraphs before their UHD blocks)."""
    import sys
    from gnuradio import uhd
    try:
        dev = uhd.usrp_source(args, uhd.stream_args(cpu_format="fc32", channels=[0]))
        del dev
    except RuntimeError as e:
        sys.stderr.write(f"No USRP: {_usrp_error('device', args, e)}\n")
        raise SystemExit(2)


# ---------------------------------------------------------------------------
# Link simulation: packets through TX -> channels.channel_model -> RX

def noise_voltage(ebn0_db, sps):
    """channel_model noise voltage for a unit-power signal at Eb/N0 (dB):
    noise power in the full sample bandwidth = sps / (Eb/N0), one bit per symbol."""
    return math.sqrt(sps / 10 ** (ebn0_db / 10.0))


def snr_db(ebn0_db, sps):
    """SNR in the sample-rate bandwidth, and in a 2 x bit-rate bandwidth."""
    return ebn0_db - 10 * math.log10(sps), ebn0_db - 10 * math.log10(2.0)


STALE_NOISE_SAMPLES = 65536


class link_sim:
    """A running simulated link: packet_modem_tx -> [fading] -> channel_model
    -> packet_modem_rx, the received packets collected. Use send() for a batch
    of packets at one Eb/N0 and set_ebn0() between batches: the receiver keeps
    running (or a fresh link_sim per Eb/N0 point, for results that do not
    depend on the point before: largesc-phy-sweep does that).

    Channel (all GNU Radio gr-channels models, all seeded from `seed`):
      channel: 'awgn', 'rayleigh' or 'rician' (CHANNELS). Fading is flat
          (one path) and slow against the bits: channels.fading_model (sum of
          FADING_SINUSOIDS sinusoids, Doppler spectrum of a mobile), unit mean
          power, so Eb/N0 is the average over the fades; 'rician' adds a
          line-of-sight path with K = k_factor_db (line-of-sight / scattered
          power). The fading process runs in sample time: give the transmitter
          frame_period=FRAME_PERIOD (tx_kw) so that packets sit 80 ms apart as
          on air, else a Doppler in Hz means nothing in real time.
      doppler_hz: maximum Doppler shift fD (fading_model gets fD / samp_rate).
      freq_offset_hz, epsilon: fixed carrier offset and sample clock ratio
          (channels.channel_model); freq_drift_hz: the carrier offset also
          wanders, a random walk within +-freq_drift_hz (channels.cfo_model);
          timing_drift_ppm: the sample clock wanders within +-ppm
          (channels.sro_model). Both walks take about a second to cross their
          range.
      fec: the modems' FEC (FEC_CODES), both ends.
    probe_gain: record the fading power gain |h|^2 per transmitted byte, for
        packet_gains_db().
    """

    def __init__(self, samp_rate=DEFAULT_SAMP_RATE, bit_rate=DEFAULT_BIT_RATE, ebn0_db=20.0,
                 freq_offset_hz=0.0, epsilon=1.0, seed=1, tx_kw=None, channel="awgn",
                 doppler_hz=DEFAULT_DOPPLER_HZ, k_factor_db=DEFAULT_K_FACTOR_DB, freq_drift_hz=0.0,
                 timing_drift_ppm=0.0, fec="none", probe_gain=False, **rx_kw):
        check_channel(channel, doppler_hz, k_factor_db, bit_rate, freq_drift_hz, timing_drift_ppm)
        self.tb = gr.top_block("largesc_link_sim")
        self.tx = packet_modem_tx(samp_rate, bit_rate, fec=fec, **(tx_kw or {}))
        self.sps = self.tx.sps
        self.rx = packet_modem_rx(samp_rate, bit_rate, fec=fec, **rx_kw)
        self.channel = channels.channel_model(noise_voltage(ebn0_db, self.sps), freq_offset_hz / samp_rate,
                                              epsilon, [1.0], float(seed))
        chain = [self.tx]
        self.fading = None
        if channel != "awgn":
            self.fading = channels.fading_model(FADING_SINUSOIDS, doppler_hz / samp_rate, channel == "rician",
                                                10 ** (k_factor_db / 10.0), int(seed) & 0xFFFFFFFF)
            chain.append(self.fading)
        self.gain_sink = None
        if probe_gain:
            self.gain_sink = blocks.vector_sink_f()
            self.tb.connect(chain[-1], blocks.complex_to_mag_squared(),
                            blocks.integrate_ff(8 * self.sps), self.gain_sink)
        if timing_drift_ppm:
            dev = timing_drift_ppm * 1e-6 * samp_rate
            chain.append(channels.sro_model(samp_rate, dev / math.sqrt(samp_rate), dev, float(seed + 2)))
        if freq_drift_hz:
            chain.append(channels.cfo_model(samp_rate, freq_drift_hz / math.sqrt(samp_rate), freq_drift_hz,
                                            float(seed + 3)))
        self.sink = blocks.message_debug(False)
        self.crc_sink = blocks.message_debug(False)      # the rx's crc_failed reports
        self.tb.connect(*chain, self.channel, self.rx)
        self.tb.msg_connect(self.rx, "out", self.sink, "store")
        self.tb.msg_connect(self.rx, "crc_failed", self.crc_sink, "store")
        self.epsilon = epsilon
        self.timing_drift_ppm = timing_drift_ppm
        self.tb.start()

    def packet_gains_db(self, n_packets, packet_bytes):
        """Mean fading power gain (dB) over each of the first n_packets frames
        on air (0 dB without fading), from the probe (probe_gain=True); frames
        at FRAME_PERIOD slots from the start of the stream."""
        if self.gain_sink is None:
            raise RuntimeError("link_sim(probe_gain=True) records the gains")
        g = np.asarray(self.gain_sink.data(), float) / (8 * self.sps)   # mean |h|^2 per byte
        size = self.tx.frame_bytes(packet_bytes)
        slot = max(self.tx.slot_bytes, size)
        out = np.full(n_packets, np.nan)
        for k in range(n_packets):
            a = self.tx.framer.startup + k * slot
            if a + size <= len(g):
                out[k] = 10 * math.log10(max(float(np.mean(g[a:a + size])), 1e-12))
        return out

    def set_ebn0(self, ebn0_db):
        """New noise level. The channel's noise source runs ahead of the signal
        (its output buffer holds noise made at the old level), so idle bytes
        worth STALE_NOISE_SAMPLES are queued to carry that noise away."""
        self.channel.set_noise_voltage(noise_voltage(ebn0_db, self.sps))
        self.tx.framer.idle(-(-STALE_NOISE_SAMPLES // (8 * self.sps)))

    def received(self, start=0):
        return [bytes(pmt.u8vector_elements(pmt.cdr(self.sink.get_message(i))))
                for i in range(start, self.sink.num_messages())]

    def send(self, packets, timeout=60.0, pace=256):
        """Posts the packets (at most `pace` in flight), waits until the receiver
        has consumed every sample they make, returns the packets delivered
        meanwhile (bytes, in order of delivery)."""
        from ..common.pacing import post_paced, wait_for
        start = self.sink.num_messages()
        n0 = self.tx.packets_in()
        msgs = (pmt.cons(pmt.make_dict(), pmt.init_u8vector(len(b), list(b))) for b in packets)
        post_paced(self.tx.crc, "in", msgs, self.tx.packets_in, window=pace, timeout=timeout)
        wait_for(lambda: self.tx.packets_in() - n0 == len(packets), timeout, "modulator stalled")
        # every sample up to the last frame's postamble has entered the receiver
        # (channel_model resamples by 1/epsilon; counting recovered bits instead
        # would drift with timing slips at low SNR) ...
        sps = self.tx.sps
        target = (self.tx.framer.last_frame_end * 8 * sps / self.epsilon
                  * (1 - 1e-6 * self.timing_drift_ppm) - 4 * sps)
        wait_for(lambda: self.rx.samples_in() >= target, timeout, "receiver stalled")
        # ... and the receiver's stream blocks and the message chain after them
        # (to_pdu -> CRC -> sink), which is asynchronous, have gone quiet
        # (unchanged for 4 looks 50 ms apart: on a loaded machine a message
        # thread can wait longer than one look)
        last, quiet = None, 0
        while quiet < 4:
            now = (self.rx.bits_out(), self.rx.frames_detected(), self.rx.packets_out(), self.sink.num_messages())
            quiet = quiet + 1 if now == last and now[2] == now[3] else 0
            last = now
            time.sleep(0.05)
        return self.received(start)

    def close(self):
        self.tb.stop()
        self.tb.wait()
