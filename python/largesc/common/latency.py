#
# Copyright 2026 gr-largesc authors.
# SPDX-License-Identifier: GPL-3.0-or-later
#
"""Latency on a live link, measured per frame (docs/latency.md, "Measured on
every frame"). Every time is the host's monotonic clock (time.monotonic(),
seconds; the same clock packet_sorter stamps rx_time with), so on one machine
a transmitter's capture time and a receiver's output time can be subtracted.

CaptureClock  when a frame's last sample was captured, from the sample count
              (mimi_encoder puts it in each frame as `capture_time`).
LatencyStats  a rolling window of per-frame latencies: p50, p95, max.
"""

import collections
import math
import time

import numpy as np
import pmt

# the keys of a latency message (mimi_decoder / largesc_rx `latency` port, link_monitor input)
K_OUT_TIME = pmt.intern("out_time")
K_OUT_SAMPLE = pmt.intern("out_sample")     # the output sample the frame's first sample became
K_DUE_TIME = pmt.intern("due_time")         # when the fixed-rate output stream had that sample due
K_RX_MS = pmt.intern("receive_to_output_ms")
K_CAP_MS = pmt.intern("capture_to_output_ms")
LATE_PACKETS = "late_packets"
K_LATE = pmt.intern(LATE_PACKETS)

# How fast the capture anchor may move later (seconds per second): a sound
# card or radio clock slower than the host's by up to this much is followed.
ANCHOR_DRIFT = 1e-4
DEFAULT_WINDOW = 125        # frames: 10 s


class CaptureClock:
    """Capture time of sample k of a fixed-rate stream on the host clock.

    Each observe(n_available) says: at this moment, n_available samples of
    the stream (counted from its first) have been captured. So sample k was
    captured by t_now - (n_available - 1 - k) / rate; the anchor is the
    tightest such bound seen (the smallest t_now - n_available / rate), let
    rise by at most ANCHOR_DRIFT per second so that a source clock slower than
    the host's is followed. A block that falls behind its source still sees
    the newest sample in its input buffer, so the anchor does not move with
    the block's backlog: the backlog counts as latency, as it should.
    capture_time(k) = anchor + (k + 1) / rate: the moment sample k was in.
    Without a real-time source (a file or vector source running as fast as
    the CPU allows) the times are meaningless, but still increasing."""

    def __init__(self, rate, clock=time.monotonic):
        if not rate > 0:
            raise ValueError(f"rate must be > 0, got {rate!r}")
        self.rate = float(rate)
        self.clock = clock
        self.anchor = None
        self._t_last = None

    def observe(self, n_available):
        t = self.clock()
        a = t - n_available / self.rate
        if self.anchor is None:
            self.anchor = a
        else:
            self.anchor = min(self.anchor + ANCHOR_DRIFT * max(0.0, t - self._t_last), a)
        self._t_last = t
        return t

    def capture_time(self, k):
        """When sample k (0 = the stream's first) had been captured; None before any observe()."""
        return None if self.anchor is None else self.anchor + (k + 1) / self.rate


class LatencyStats:
    """The last `window` latencies (seconds): count, p50, p95, max (ms).
    Non-finite values are refused (counted in `rejected`)."""

    def __init__(self, window=DEFAULT_WINDOW):
        self.values = collections.deque(maxlen=int(window))
        self.count = 0
        self.rejected = 0

    def add(self, seconds):
        if seconds is None or not math.isfinite(seconds):
            self.rejected += 1
            return
        self.values.append(float(seconds))
        self.count += 1

    def summary(self):
        """dict(frames=all added, window=in the window, p50_ms, p95_ms, max_ms);
        the three figures are NaN while the window is empty. Percentiles are
        nearest-rank (a figure is always one of the measured values)."""
        v = np.sort(np.asarray(self.values, dtype=float))
        out = dict(frames=self.count, window=len(v))
        if len(v):
            out.update(p50_ms=1000.0 * v[_rank(len(v), 0.50)], p95_ms=1000.0 * v[_rank(len(v), 0.95)],
                       max_ms=1000.0 * v[-1])
        else:
            out.update(p50_ms=math.nan, p95_ms=math.nan, max_ms=math.nan)
        return out


def _rank(n, q):
    """Index of the q-quantile of n sorted values, nearest rank."""
    return min(n - 1, max(0, int(math.ceil(q * n)) - 1))
