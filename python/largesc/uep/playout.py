#
# Copyright 2026 gr-largesc authors.
# SPDX-License-Identifier: GPL-3.0-or-later
#
"""The receiver's playout clock (jitter buffer): token frames leave the
depacketizer at a fixed rate, frame n at ref + n x 80 ms + target delay on the
host's monotonic clock, where ref + n x 80 ms is the time by which 90 % of the
recent packets arrived (the depacketizer learns it from the packets' rx_time,
which packet_sorter stamps; late packets count too, so the clock follows a
delay that grows). A frame whose packet has not come by then leaves lost
(the recovery backend fills it); a packet that comes later is counted late and
dropped. A frame whose own packet has come may leave up to `lead_ms` before its
playout time (the decode lead: the decoder works on it while the frame before
plays, and mimi_decoder holds its audio until the frame's play_time); a frame
still waiting for its packet or a copy waits until its playout time. Packets
without rx_time (a simulation faster than real time) never start the clock:
frames then leave as packets arrive. See docs/latency.md."""

import math
import threading
import time

import pmt
from gnuradio import gr

from ..common import constants as C
from ..common import live
from ..common import params as P

FRAME_S = C.FRAME_MS / 1000.0
DEFAULT_TARGET_MS = 80.0    # docs/latency.md: the arrival spread past the anchor (measured) and one frame for copies
# docs/latency.md, "Decode lead": a complete frame may leave this much before its playout time,
# so that recovery and the decoder are done by then (Mimi's step: 18-30 ms on a busy 2-core host,
# more when both nodes' codecs want the CPU at once); one frame: from the anchor on
DEFAULT_LEAD_MS = 80.0
MAX_LEAD_MS = 500.0
MAX_SILENCE_S = 60.0        # the clock stops this long after the last packet (as gaps by time)
# the anchor: frame n arrives by ref + n x 80 ms on 90 % of the recent packets, so a
# transmitter or path whose delay wanders (a busy host) moves the clock with it
ANCHOR_QUANTILE = 0.9
# ... over the newest ANCHOR_WINDOW packets (4 s): long enough for a stable quantile, short
# enough that the late packets of a start-up (the codec's first calls) or of a stall leave
# the anchor within seconds (with 125 packets the start-up held latency up 100-200 ms for 10 s)
ANCHOR_WINDOW = 50


def play_time(n: int, ref: float, target_s: float) -> float:
    """When frame n is due to play: ref + n x 80 ms + target_s."""
    return ref + n * FRAME_S + target_s


def due_frame(now: float, ref: float, target_s: float) -> int | None:
    """The last frame whose playout time ref + n x 80 ms + target_s is at or before now
    (None before frame 0's, or when ref is not a number)."""
    if not math.isfinite(ref):
        return None
    n = math.floor((now - ref - target_s) / FRAME_S + 1e-9)
    return n if n >= 0 else None


class playout_clock(gr.basic_block):
    """Message pass-through (packets -> depacketizer) that runs the playout clock
    of `depacketizer` (a uep_depacketizer, or anything with arrival_ref() and
    play_until()) while the flowgraph runs: every `period` seconds it plays out
    the frames whose time has come. target_ms: the jitter buffer's target delay
    (10..2000 ms) after the anchor: the time by which frames arrive on `quantile`
    of the recent packets (0.9; 0 = the least delayed packet), the newest `window` of them.
    lead_ms (0..500): a frame whose own packet has come leaves up to this much before
    its playout time (`early` counts them); 0 = every frame leaves at its time. Each
    frame carries its playout time (`play_time`) either way."""

    def __init__(self, depacketizer, target_ms=DEFAULT_TARGET_MS, period=0.005, clock=time.monotonic,
                 quantile=ANCHOR_QUANTILE, window=ANCHOR_WINDOW, lead_ms=DEFAULT_LEAD_MS):
        gr.basic_block.__init__(self, name="playout_clock", in_sig=None, out_sig=None)
        self.target_s = P.check_float("target_ms", target_ms, 10.0, 2000.0) / 1000.0
        self.lead_s = P.check_float("lead_ms", lead_ms, 0.0, MAX_LEAD_MS) / 1000.0
        self.period = P.check_float("period", period, 0.001, 0.1)
        self.quantile = P.check_float("quantile", quantile, 0.0, 1.0)
        self.window = P.check_int("window", window, 1, 100000)
        self.dpk = depacketizer
        self.clock = clock
        self.last = -1              # last frame the clock played out
        self.ticks = 0
        self.early = 0              # frames played out before their playout time (lead_ms)
        self.off_clock = False      # logged once: rx_time is not on this clock
        self.clocked = None         # what the depacketizer was last told (set_clocked)
        self._stop = threading.Event()
        self._thread = None
        self.message_port_register_in(pmt.intern("in"))
        self.message_port_register_out(pmt.intern("out"))
        self.set_msg_handler(pmt.intern("in"), self._forward)

    def _forward(self, msg):
        """Passes every message on unchanged (the depacketizer judges it)."""
        self.message_port_pub(pmt.intern("out"), msg)

    def tick(self, now=None):
        """Plays out the frames due at `now` (default: the clock); returns the last one due or None.
        The clock runs only while the newest packet's rx_time is on this clock: not in the
        future, at most MAX_SILENCE_S ago (else a flood of lost frames would leave at once)."""
        now = self.clock() if now is None else now
        newest = self.dpk.newest_rx_time()
        on_clock = math.isfinite(newest) and newest - 1.0 <= now <= newest + MAX_SILENCE_S
        if on_clock != self.clocked:    # timed packets wait for the clock only while it runs
            self.dpk.set_clocked(on_clock)
            self.clocked = on_clock
        if not on_clock:
            if math.isfinite(newest) and not self.off_clock:
                self.off_clock = True
                self.logger.warn(f"playout clock idle: packet times (rx_time {newest:.3f}) are not on this "
                                 f"host's monotonic clock ({now:.3f}); frames leave as packets arrive")
            self.ticks += 1
            return None
        ref = self.dpk.arrival_ref(self.quantile, self.window)
        due = due_frame(now, ref, self.target_s)
        if due is not None and due > self.last:
            self.dpk.play_until(due, play_time(due, ref, self.target_s))   # each with its play_time
            self.last = due
        if self.lead_s > 0.0:       # complete frames whose time is less than lead_s away
            ahead = due_frame(now + self.lead_s, ref, self.target_s)
            if ahead is not None and ahead > self.last:
                first = self.dpk.next_frame()
                got = self.dpk.play_arrived(ahead, play_time(ahead, ref, self.target_s))
                if got >= first:
                    self.early += got - first + 1
                    self.last = max(self.last, got)
        self.ticks += 1
        return due

    def _run(self):
        while not self._stop.wait(self.period):
            try:
                self.tick()
            except Exception as e:  # never let the clock die silently
                self.logger.error(f"playout clock: {e}")

    def start(self):
        live.prepare(self.logger)       # a live receiver: the process's live settings (common/live.py)
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="largesc-playout", daemon=True)
        self._thread.start()
        return True

    def stop(self):
        self._stop.set()
        if self._thread is not None:
            self._thread.join(2.0)
        return True
