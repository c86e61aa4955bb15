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
