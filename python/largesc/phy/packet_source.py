#
# Copyright 2026 gr-largesc authors.
# SPDX-License-Identifier: GPL-3.0-or-later
#
"""The test packet source (packet_source): real LargeSC packets on seeded
random tokens, paced like a speech link, for the modem examples and QA."""

import threading
import time

import numpy as np
import pmt
from gnuradio import gr


MAX_COUNT = 2 ** 32             # packets (10.9 years at 12.5 packets/s)
MAX_INTERVAL = 3600.0           # s between packets
MIN_INTERVAL = 1e-4             # s: 10000 packets/s at most (0 would flood the message queues)
MAX_LINGER = 3600.0             # s
MAX_KEPT = 100000               # packets kept for comparison (count > 0): the first MAX_KEPT


class packet_source(gr.basic_block):
    """LargeSC test packets on message port `out`: real packets from
    largesc.packetizer_core on seeded random 11-bit tokens, one every
    `interval` seconds (0.08 = real time, 12.5 packets/s), frame numbers
    0, 1, 2, ... Plan: K primary codebooks plus r1/r2 copies of frames n-1/n-2
    (none for the first frames). After `count` packets (0 = endless) it waits
    `linger` seconds and tells the flowgraph it is done, so a flowgraph of
    message blocks can finish. sent() counts the packets posted.

    Parameters, checked by name at construction: count integer in
    0..MAX_COUNT; interval in MIN_INTERVAL..MAX_INTERVAL s; k in 1..32, r1 and
    r2 in 0..15 (uep_plan.MAX_K, MAX_COPIES); crc a boolean; seed an integer
    >= 0; linger in 0..MAX_LINGER s. If making or posting a packet fails, the
    failure is counted (rejections(): `run: <ExceptionType>`) and the source
    ends as after its last packet (it still tells the flowgraph it is done).
    """

    def __init__(self, count=0, interval=0.08, k=8, r1=2, r2=0, crc=False, seed=1, linger=1.0):
        from gnuradio.largesc import packetizer_core

        from ..common import params as P
        from ..common.guard import Guard
        from ..uep.uep_plan import MAX_COPIES, MAX_K
        self.count = P.check_int("count", count, 0, MAX_COUNT)
        self.interval = P.check_float("interval", interval, MIN_INTERVAL, MAX_INTERVAL)
        self.plan = (P.check_int("k", k, 1, MAX_K), P.check_int("r1", r1, 0, MAX_COPIES),
                     P.check_int("r2", r2, 0, MAX_COPIES))
        crc = P.check_bool("crc", crc)
        seed = P.check_int("seed", seed, 0, 2 ** 63 - 1)
        self.linger = P.check_float("linger", linger, 0.0, MAX_LINGER)
        gr.basic_block.__init__(self, "largesc_packet_source", in_sig=None, out_sig=None)
        self.core = packetizer_core(crc)
        self.rng = np.random.default_rng(seed)
        self.guard = Guard("largesc_packet_source")
        self.n_sent = 0
        self.packets = []   # the first MAX_KEPT packets, kept (for comparison) when count > 0
        self._stop = threading.Event()
        self._thread = None
        self.message_port_register_out(pmt.intern("out"))

    def make_packet(self, frame):
        k, r1, r2 = self.plan
        tokens = self.rng.integers(0, 2048, size=max(k, r1, r2), dtype=np.int64)
        return self.core.packetize(frame, tokens, k, r1 if frame >= 1 else 0, r2 if frame >= 2 else 0)

    def sent(self):
        return self.n_sent

    def rejections(self):
        """{reason: count} of failures of the sending thread (see guard.py)."""
        return self.guard.counts()

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
        try:
            self._send_all()
        except Exception as e:  # noqa: BLE001 - counted; the flowgraph must still end
            self.guard.note(f"run: {type(e).__name__}", e)
        if not self._stop.wait(self.linger):
            self._post(pmt.intern("system"), pmt.cons(pmt.intern("done"), pmt.from_long(1)))

    def _send_all(self):
        port = pmt.intern("out")
        t_next = time.monotonic()
        frame = 0
        while not self._stop.is_set() and (self.count == 0 or frame < self.count):
            b = self.make_packet(frame)
            if self.count and len(self.packets) < MAX_KEPT:
                self.packets.append(b)
            self.message_port_pub(port, pmt.cons(pmt.make_dict(), pmt.init_u8vector(len(b), list(b))))
            self.n_sent += 1
            frame += 1
            t_next += self.interval
            self._stop.wait(max(0.0, t_next - time.monotonic()))
