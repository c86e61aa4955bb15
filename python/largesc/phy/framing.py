#
# Copyright 2026 gr-largesc authors.
# SPDX-License-Identifier: GPL-3.0-or-later
#
"""Frames on air for the packet modem: the default rates, the frame layout and
its byte count (frame_bytes), and packet_framer, which turns
protocol_formatter_async's header and payload PDUs into the byte stream the
GMSK modulator takes. Frame on air (MSB first):

    preamble 0x33 x P | access code 64 bit | len16 | len16 | packet | CRC-32 | postamble 0x33 x Q

With FEC the packet and CRC are coded; in frame format 2 (FRAME_VERSION,
scramble=True) the bytes after the length header are XORed with a PRBS
(scramble_bytes), so that any payload, all zeros included, has transitions.

Rates: bit rate = samp_rate / samples_per_symbol (integer); the bit rate a
packet size needs: docs/phy.md ("Rates").
"""

import collections
import time

import numpy as np
import pmt
from gnuradio import gr
from gnuradio.digital import packet_utils

from ..common import frame_pdu as FP
from ..common import live
from ..common import params as P
from ..common.guard import Guard
from ..common.latency import LatencyStats
from ..uep import uep_plan
from .fec import CC_TAIL_BYTES, FEC_MTU, check_fec, fec_coded_bytes

DEFAULT_ACCESS_CODE = packet_utils.default_access_code  # 64 bits, 0xACDDA4E2F28C20FC
DEFAULT_BIT_RATE = 10000.0
DEFAULT_SAMP_RATE = 80000.0     # simulation: 8 samples per symbol
# Idle, preamble, postamble and slot fill: 0x33 (00110011): zero mean (the AFC
# sees no offset) with transitions the Mueller & Muller timing detector can use.
# 0x55 (alternating bits) gives that detector no error signal at all: the
# timing loop drifts through every idle gap. Measurements: docs/phy.md ("Simulation notes").
IDLE_BYTE = 0x33
SLOT_FILL_BYTE = IDLE_BYTE
LENGTH_TAG = "packet_len"
HEADER_BYTES = 4                # header_format_default: len16 twice
CRC_BYTES = 4                   # CRC-32
MODES = ("stream", "continuous", "burst")
MAX_BEHIND_S = 0.5     # continuous mode: a clock this far ahead of the bytes is re-anchored (shorter stalls are caught up)
STARTUP_BYTES = 16              # idle bytes before the first frame of a stream
FRAME_PERIOD = uep_plan.FRAME_MS / 1000.0   # one LargeSC packet per 80 ms frame on air (12.5 packets/s)
MAX_FRAME_PERIOD = 10.0         # s: the longest air slot (stream mode)
MAX_SAMP_RATE = 1e9             # S/s
MAX_SAMPLES_PER_SYMBOL = 1000
MAX_PREAMBLE_BYTES = 1024       # preamble / postamble
# The length field: header_format_default writes 16 bits, GNU Radio's
# correlate_access_code_*_ts read 12 of them, so no frame carries more than
# 4095 bytes (coded packet + CRC-32) after its header.
MAX_FRAME_BYTES = 4095
FRAME_VERSION = 2               # 2: scrambled (scramble=True); 1: unscrambled, the format before (docs/phy.md)


def samples_per_symbol(samp_rate, bit_rate):
    """Integer samples per symbol; raises ParameterError (a ValueError) naming
    the parameter: samp_rate a finite number in (0, MAX_SAMP_RATE], bit_rate
    finite and > 0, samp_rate / bit_rate an integer in 2..MAX_SAMPLES_PER_SYMBOL
    (the GMSK modulator and the timing recovery need an integer; the filters
    grow with it, so a huge ratio would take the constructor forever)."""
    samp_rate = P.check_float("samp_rate", samp_rate, 0.0, MAX_SAMP_RATE, lo_open=True)
    bit_rate = P.check_float("bit_rate", bit_rate, 0.0, MAX_SAMP_RATE, lo_open=True)
    sps = samp_rate / bit_rate
    if abs(sps - round(sps)) > 1e-9 * sps or not 2 <= round(sps) <= MAX_SAMPLES_PER_SYMBOL:
        raise P.ParameterError(f"samp_rate / bit_rate must be an integer >= 2 and <= {MAX_SAMPLES_PER_SYMBOL} "
                               f"(samples per bit), got {samp_rate:g} / {bit_rate:g} = {sps:g}")
    return int(round(sps))


def frame_bytes(packet_bytes, access_code=DEFAULT_ACCESS_CODE, preamble=2, postamble=2, fec="none"):
    """Bytes on air for one packet of `packet_bytes` bytes (with pre/postamble;
    with `fec`, the packet and its CRC-32 are coded: fec_coded_bytes)."""
    return (preamble + len(access_code) // 8 + HEADER_BYTES + fec_coded_bytes(packet_bytes + CRC_BYTES, fec)
            + postamble)


def max_packet_bytes(fec="none"):
    """The largest packet (bytes, without the CRC-32) the modem carries with
    `fec`: its coded packet + CRC fits the length field the receiver reads
    (MAX_FRAME_BYTES) and, with FEC, gr-fec's blocks (FEC_MTU bytes of packet +
    CRC [+ tail]). none 4091, cc 1495, rep3 1361 bytes."""
    check_fec(fec)
    n = MAX_FRAME_BYTES - CRC_BYTES
    while n > 0 and fec_coded_bytes(n + CRC_BYTES, fec) > MAX_FRAME_BYTES:
        n -= 1
    if fec != "none":
        n = min(n, FEC_MTU - CRC_BYTES - (CC_TAIL_BYTES if fec == "cc" else 0))
    return n


def frame_length_range(fec="none"):
    """(least, largest, step) of the length field a receiver with `fec`
    accepts: the coded bytes of a 1-byte and of a max_packet_bytes(fec)
    packet with its CRC, in steps of one coded byte (1, 2 for cc, 3 for
    rep3). Anything else is no frame this modem sent."""
    step = {"none": 1, "cc": 2, "rep3": 3}[check_fec(fec)]
    return (fec_coded_bytes(1 + CRC_BYTES, fec), fec_coded_bytes(max_packet_bytes(fec) + CRC_BYTES, fec), step)


def check_access_code(code):
    """The access code: a string of '0'/'1', a multiple of 8 bits, 8..64 bits."""
    if not (isinstance(code, str) and code and len(code) <= 64 and len(code) % 8 == 0 and not set(code) - {"0", "1"}):
        raise P.ParameterError(f"access_code must be a string of '0'/'1', a multiple of 8 bits, at most 64, "
                               f"got {code!r}")
    return code


_check_access_code = check_access_code


def check_length_tag(name, tag):
    """A stream tag name: a non-empty string without white space."""
    if not (isinstance(tag, str) and tag and not any(c.isspace() for c in tag)):
        raise P.ParameterError(f"{name} must be a non-empty string without spaces (a tag name), got {tag!r}")
    return tag


# ---------------------------------------------------------------------------
# scrambler (frame format 2)

SCRAMBLER_SEED = 0b100101010000000   # register r1..r15 at the start of every frame (DVB-S)


def _scrambler_bits(nbits):
    """The first `nbits` bits of the scrambling sequence: the PRBS of
    1 + x^14 + x^15 (DVB-S energy dispersal, EN 300 421) from SCRAMBLER_SEED:
    each bit is r14 xor r15, then shifted in at r1."""
    reg = [(SCRAMBLER_SEED >> (14 - i)) & 1 for i in range(15)]   # r1..r15
    out = np.empty(nbits, np.uint8)
    for k in range(nbits):
        b = reg[13] ^ reg[14]
        out[k] = b
        reg = [b] + reg[:14]
    return out


_SCRAMBLER_BITS = _scrambler_bits(8 * MAX_FRAME_BYTES)
SCRAMBLER_BYTES = np.packbits(_SCRAMBLER_BITS)                    # MSB first, as on air
SCRAMBLER_SIGNS = (1.0 - 2.0 * _SCRAMBLER_BITS).astype(np.float32)  # soft symbols: + = 1, flip where 1


def scramble_bytes(b):
    """The coded packet + CRC bytes as sent in frame format 2: XOR with the
    scrambling sequence, restarted at the first byte after the length header.
    Its own inverse."""
    b = np.asarray(b, np.uint8)
    if len(b) > MAX_FRAME_BYTES:
        raise ValueError(f"a frame carries at most {MAX_FRAME_BYTES} bytes after its header, got {len(b)}")
    return b ^ SCRAMBLER_BYTES[:len(b)]


def descramble_soft(x):
    """Soft symbols (one per bit, + = 1) of a scrambled frame -> those of the
    bytes before scrambling (the sign flipped where the sequence has a 1)."""
    x = np.asarray(x, np.float32)
    if len(x) > 8 * MAX_FRAME_BYTES:
        raise ValueError(f"a frame carries at most {8 * MAX_FRAME_BYTES} bits after its header, got {len(x)}")
    return x * SCRAMBLER_SIGNS[:len(x)]


BEHIND_LIMITS_S = (0.02, 0.05, 0.1, 0.2)


class packet_framer(gr.basic_block):
    """Header PDUs + payload PDUs (from protocol_formatter_async) -> byte stream.

    Each frame is preamble + header + payload + postamble. Modes:
      stream:     bytes only when packets arrive (simulations run as fast as the
                  CPU allows; the sample stream has no gaps, so the receiver's
                  timing loop stays locked).
      continuous: idle bytes (0x33) between frames; every byte, packet or
                  idle, leaves on the host clock at bit_rate (lead_s early), so
                  a fixed-rate sink (USRP in streaming mode, a sound card, a ZMQ
                  peer behind a sample clock) gets exactly its rate: a packet
                  takes the place of idle bytes and adds none; a stall over
                  MAX_BEHIND_S re-anchors the clock, not caught up (resyncs).
      burst:      like stream, with a length tag on the first byte of each frame
                  (for tagged-stream bursts to a USRP sink).
    slot_bytes (stream mode): each frame is padded to this length (its air
    slot: FRAME_PERIOD x bit_rate / 8 = one packet per 80 ms as on air, so
    that time-varying channels see real time); a longer frame is sent as it
    is. 0 = frames back to back. Padding and idle bytes are 0x33 (IDLE_BYTE),
    not 0x55: an alternating 0x55 run gives the Mueller & Muller timing
    detector no error signal at all (measured losses: docs/phy.md).
    """

    def __init__(self, mode="stream", preamble=2, postamble=2, bit_rate=DEFAULT_BIT_RATE,
                 lead_s=0.02, length_tag=LENGTH_TAG, startup=STARTUP_BYTES, slot_bytes=0):
        P.check_choice("mode", mode, MODES)
        preamble = P.check_int("preamble", preamble, 0, MAX_PREAMBLE_BYTES)
        postamble = P.check_int("postamble", postamble, 0, MAX_PREAMBLE_BYTES)
        bit_rate = P.check_float("bit_rate", bit_rate, 0.0, MAX_SAMP_RATE, lo_open=True)
        lead_s = P.check_float("lead_s", lead_s, 0.0, 10.0)
        check_length_tag("length_tag", length_tag)
        startup = P.check_int("startup", startup, 0, 1 << 20)
        slot_bytes = P.check_int("slot_bytes", slot_bytes, 0, 1 << 24)
        if slot_bytes and mode != "stream":
            raise P.ParameterError("slot_bytes (frame period) applies to mode 'stream' only")
        gr.basic_block.__init__(self, "largesc_packet_framer", in_sig=None, out_sig=[np.uint8])
        self.slot_bytes = slot_bytes
        self.last_frame_end = 0   # byte offset just after the last packet's CRC
        self.mode = mode
        self.pre = np.full(preamble, IDLE_BYTE, np.uint8)
        self.post = np.full(postamble, IDLE_BYTE, np.uint8)
        self.byte_rate = bit_rate / 8.0
        self.lead = max(4, int(lead_s * self.byte_rate))
        self.startup = startup
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
        self.clock = time.monotonic     # continuous mode's clock (a test may script it)
        self.sleep = time.sleep         # ... and its wait
        self.chunk = max(1, self.lead // 2)   # continuous: bytes per call, at least (half the lead)
        self.resyncs = 0                # continuous: times the clock was re-anchored (a stall)
        self.skipped_bytes = 0          # ... and the bytes of time skipped then
        # continuous: how late the calls came (the thread starved of CPU or of the interpreter lock)
        self.behind_max_s = 0.0
        self.behind_calls = [0] * len(BEHIND_LIMITS_S)   # calls more than BEHIND_LIMITS_S late
        # capture (the packet's capture_time, when it has one) to its first byte's send time
        self.latency = LatencyStats()
        self.guard = Guard("largesc_packet_framer")
        for port, handler in (("header", self._on_header), ("payload", self._on_payload)):
            self.message_port_register_in(pmt.intern(port))
            self.guard.install(self, port, handler)

    def _on_header(self, msg):
        self._on_msg(self.headers, msg, "header")

    def _on_payload(self, msg):
        self._on_msg(self.payloads, msg, "payload")

    def _on_msg(self, q, msg, port):
        if not pmt.is_pair(msg) or not pmt.is_u8vector(pmt.cdr(msg)):
            self.guard.note(f"{port}: not a u8 PDU")
            return
        q.append((np.asarray(pmt.u8vector_elements(pmt.cdr(msg)), np.uint8), FP.meta_time(pmt.car(msg), FP.CAPTURE_TIME)))
        while self.headers and self.payloads:   # protocol_formatter publishes header, then payload
            payload, t_cap = self.payloads.popleft()
            frame = np.concatenate([self.pre, self.headers.popleft()[0], payload, self.post])
            tail = len(self.post)
            if self.slot_bytes > len(frame):
                tail += self.slot_bytes - len(frame)
                frame = np.concatenate([frame, np.full(self.slot_bytes - len(frame), SLOT_FILL_BYTE, np.uint8)])
            self.frames.append((frame, True, tail, t_cap))

    def rejections(self):
        """{reason: count} of the messages dropped (see guard.py)."""
        return self.guard.counts()

    def idle(self, nbytes):
        """Queues nbytes idle bytes (not a packet). Not in burst mode."""
        if self.mode == "burst":
            raise ValueError("idle bytes would break the tagged bursts")
        self.frames.append((np.full(int(nbytes), IDLE_BYTE, np.uint8), False, 0, None))

    def frames_framed(self):
        """Frames (packets) taken into the byte stream so far."""
        return self.n_frames

    def bytes_out(self):
        return self.produced

    def idle_bytes(self):
        return self.n_idle

    def lateness(self):
        """Continuous mode: how late the byte clock's calls came: max_s, and the number of calls
        more than 20, 50, 100 and 200 ms after their bytes were due (a starved thread; the bytes
        then leave late, the sink's buffer covering what it can)."""
        return dict(max_s=self.behind_max_s,
                    **{f"calls_over_{int(1000 * lim)}_ms": n for lim, n in zip(BEHIND_LIMITS_S, self.behind_calls)})

    def tx_latency(self):
        """Capture to send of the packets that carried a capture_time (LatencyStats.summary():
        frames, window, p50_ms, p95_ms, max_ms over the last 125). Send time: continuous mode, when
        the packet's first byte is due on air by the byte clock; other modes, when it entered the
        byte stream."""
        return self.latency.summary()

    def _send_time(self, n):
        """When the byte at produced + n leaves (see tx_latency): by the byte clock, but never
        before now (a framer called late sends bytes whose time has passed: they leave now)."""
        now = self.clock()
        if self.mode == "continuous" and self.t0 is not None:
            return max(now, self.t0 + (self.produced + n) / self.byte_rate)
        return now

    def _until_due(self, k):
        """Seconds until k more bytes are due (0..10 ms)."""
        if self.t0 is None:
            return 0.0
        t = self.t0 + (self.produced + k - self.lead) / self.byte_rate - self.clock()
        return min(max(t, 0.0), 0.01)

    def _budget(self, room):
        """Continuous mode: how many bytes the clock allows now (packet and idle bytes alike:
        byte k leaves at t0 + k / byte_rate, lead_s early). A clock that ran more than
        MAX_BEHIND_S ahead (the flowgraph was stopped, the CPU or the sink stalled) is
        re-anchored instead of caught up: no burst, counted in resyncs."""
        now = self.clock()
        if self.t0 is None:     # the first call, or the first after a (re)start
            self.t0 = now - self.produced / self.byte_rate
        due = int((now - self.t0) * self.byte_rate + 1e-6) + self.lead - self.produced  # 1e-6: float rounding
        behind = (due - self.lead) / self.byte_rate     # seconds this call came after its bytes were due
        if behind > self.behind_max_s:
            self.behind_max_s = behind
        for i, lim in enumerate(BEHIND_LIMITS_S):
            if behind > lim:
                self.behind_calls[i] += 1
        if due > self.lead + int(MAX_BEHIND_S * self.byte_rate):
            self.resyncs += 1
            self.skipped_bytes += due - self.lead
            self.t0 = now - self.produced / self.byte_rate
            due = self.lead
        return max(0, min(room, due))

    def general_work(self, input_items, output_items):
        out = output_items[0]
        if self.mode == "continuous":
            budget = self._budget(len(out))
            if budget < min(self.chunk, len(out)):
                # Wait here for a chunk of bytes to fall due instead of returning with nothing: the
                # scheduler calls a source again only when its output is taken or a message comes,
                # so a clock that returned empty-handed would sleep until the next packet and then
                # send its bytes late, in a burst (a USRP would underrun meanwhile).
                self.sleep(self._until_due(self.chunk))
                budget = self._budget(len(out))
        else:
            budget = len(out)
        n = 0
        while n < budget:
            if self.current is None:
                if not self.frames:
                    break
                self.current, is_packet, tail, t_cap = self.frames.popleft()
                if self.produced + n == 0 and self.mode == "stream" and self.startup:
                    # first frame of the stream: the receiver's AFC and timing loops settle
                    self.current = np.concatenate([np.full(self.startup, IDLE_BYTE, np.uint8), self.current])
                self.pos = 0
                self.n_frames += is_packet
                if is_packet:
                    self.last_frame_end = self.produced + n + len(self.current) - tail
                    if t_cap is not None:
                        self.latency.add(self._send_time(n) - t_cap)
                if self.mode == "burst" and is_packet:
                    self.add_item_tag(0, self.produced + n, self.tag_key, pmt.from_long(len(self.current)))
            k = min(budget - n, len(self.current) - self.pos)
            out[n:n + k] = self.current[self.pos:self.pos + k]
            n += k
            self.pos += k
            if self.pos == len(self.current):
                self.current = None
        if self.mode == "continuous" and n < budget:   # nothing to send: idle bytes, on the clock
            out[n:budget] = IDLE_BYTE
            self.n_idle += budget - n
            n = budget
        if self.mode == "continuous" and n == 0:
            self.sleep(min(0.005, 0.5 * self.lead / self.byte_rate))
        self.produced += n
        return n

    def start(self):
        """A (re)started flowgraph: the continuous clock starts again with the first byte. A live
        transmitter (continuous mode) applies the process's live settings (common/live.py)."""
        if self.mode == "continuous":
            live.prepare(self.logger)
        self.t0 = None
        return True
