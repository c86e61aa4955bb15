#
# Copyright 2026 gr-largesc authors.
# SPDX-License-Identifier: GPL-3.0-or-later
#
"""Frames on air for the packet modem: the default rates, the frame layout and
its byte count (frame_bytes), and packet_framer, which turns
protocol_formatter_async's header and payload PDUs into the byte stream the
GMSK modulator takes. Frame on air (MSB first):

    preamble 0x33 x P | access code 64 bit | len16 | len16 | packet | CRC-32 | postamble 0x33 x Q

Rates: bit rate = samp_rate / samples_per_symbol (integer); the bit rate a
packet size needs: docs/phy.md ("Rates").
"""

import collections
import time

import numpy as np
import pmt
from gnuradio import gr
from gnuradio.digital import packet_utils

from ..uep import uep_plan
from .fec import fec_coded_bytes

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


def _check_access_code(code):
    if not code or len(code) > 64 or len(code) % 8 or set(code) - {"0", "1"}:
        raise ValueError("access code: a string of '0'/'1', a multiple of 8 bits, at most 64")


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
        self.clock = time.monotonic     # continuous mode's clock (a test may script it)
        self.resyncs = 0                # continuous: times the clock was re-anchored (a stall)
        self.skipped_bytes = 0          # ... and the bytes of time skipped then
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

    def _budget(self, room):
        """Continuous mode: how many bytes the clock allows now (packet and idle bytes alike:
        byte k leaves at t0 + k / byte_rate, lead_s early). A clock that ran more than
        MAX_BEHIND_S ahead (the flowgraph was stopped, the CPU or the sink stalled) is
        re-anchored instead of caught up: no burst, counted in resyncs."""
        now = self.clock()
        if self.t0 is None:     # the first call, or the first after a (re)start
            self.t0 = now - self.produced / self.byte_rate
        due = int((now - self.t0) * self.byte_rate + 1e-6) + self.lead - self.produced  # 1e-6: float rounding
        if due > self.lead + int(MAX_BEHIND_S * self.byte_rate):
            self.resyncs += 1
            self.skipped_bytes += due - self.lead
            self.t0 = now - self.produced / self.byte_rate
            due = self.lead
        return max(0, min(room, due))

    def general_work(self, input_items, output_items):
        out = output_items[0]
        budget = self._budget(len(out)) if self.mode == "continuous" else len(out)
        n = 0
        while n < budget:
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
            time.sleep(min(0.005, 0.5 * self.lead / self.byte_rate))
        self.produced += n
        return n

    def start(self):
        """A (re)started flowgraph: the continuous clock starts again with the first byte."""
        self.t0 = None
        return True
