#!/usr/bin/env python3
#
# Copyright 2026 gr-largesc authors.
# SPDX-License-Identifier: GPL-3.0-or-later
#
"""QA for the continuous transmitter's clock (phy/framing.py, packet_framer
mode 'continuous'; docs/latency.md): on a scripted clock, the bytes out over a
number of 80 ms slots are exactly the bit rate's, packets included (a packet
takes the place of idle bytes); a stall or a stop/start re-anchors the clock
instead of bursting to catch up."""

import numpy as np
import pmt
from gnuradio import gr_unittest

from gnuradio.largesc.phy import framing as F

BIT_RATE = 10000
BYTES_PER_SLOT = 100   # 80 ms at 10 kbit/s = 1250 bytes/s


def u8(b):
    return pmt.cons(pmt.make_dict(), pmt.init_u8vector(len(b), list(b)))


class clock:
    def __init__(self):
        self.t = 1000.0

    def __call__(self):
        return self.t


class qa_tx_clock(gr_unittest.TestCase):

    def setUp(self):
        self.fr = F.packet_framer("continuous", preamble=2, postamble=2, bit_rate=BIT_RATE)
        self.clk = clock()
        self.fr.clock = self.clk
        self.slept = []
        self.fr.sleep = self.slept.append   # the scripted clock does not move while the framer waits
        self.lead = self.fr.lead

    def run_at(self, t, room=100000):
        """Calls the framer at clock time t with `room` bytes of output space; returns the bytes."""
        self.clk.t = 1000.0 + t
        out = np.zeros(room, np.uint8)
        n = self.fr.general_work([], [out])
        return out[:n]

    def test_bytes_follow_the_clock_exactly(self):
        got = [self.run_at(0.0)]
        self.assertEqual(len(got[0]), self.lead)                  # lead_s ahead of the clock
        self.fr._on_header(u8(b"\xaa" * 6))                        # a 6 + 10 + 4 byte frame queued
        self.fr._on_payload(u8(bytes(range(10))))
        for slot in range(1, 51):                                  # 50 slots = 4 s, in 10 ms steps
            for step in range(8):
                got.append(self.run_at(slot * 0.08 - 0.07 + step * 0.01))
        total = sum(len(g) for g in got)
        self.assertEqual(total, 50 * BYTES_PER_SLOT + self.lead)  # exactly the rate: no excess
        stream = np.concatenate(got)
        frame = np.concatenate([[F.IDLE_BYTE] * 2, [0xAA] * 6, list(range(10)), [F.IDLE_BYTE] * 2])
        self.assertEqual(bytes(stream[self.lead:self.lead + len(frame)]), bytes(frame.astype(np.uint8)))
        self.assertEqual(self.fr.n_idle, total - len(frame))
        self.assertEqual(self.fr.frames_framed(), 1)
        self.assertEqual(self.fr.resyncs, 0)

    def test_a_full_sink_gets_what_it_has_room_for(self):
        self.run_at(0.0)
        self.assertEqual(len(self.run_at(0.08, room=30)), 30)      # the sink takes 30 bytes
        self.assertEqual(len(self.run_at(0.081, room=1000)), BYTES_PER_SLOT - 30 + 1)  # the rest, on time

    def test_a_stall_is_not_caught_up(self):
        self.run_at(0.0)
        self.run_at(0.08)
        out = self.run_at(2.08)                                    # 2 s without a call (stopped, stalled)
        self.assertEqual(len(out), self.lead)                      # re-anchored: no 2 s burst
        self.assertEqual(self.fr.resyncs, 1)
        self.assertEqual(self.fr.skipped_bytes, 2 * 1250 - self.lead)  # 2 s less the lead it sends now
        self.assertEqual(len(self.run_at(2.16)), BYTES_PER_SLOT)  # then the rate again
        self.fr.start()                                            # a flowgraph restart: a new clock
        self.assertEqual(len(self.run_at(10.0)), self.lead)
        self.assertEqual(self.fr.resyncs, 1)

    def test_waits_for_a_chunk_instead_of_returning_empty(self):
        """A call that comes before a chunk (half the lead) is due waits for it, on the framer's
        own clock, and returns it: a source that returned nothing would not be called again until
        the next packet (then its bytes would leave late, in a burst)."""
        def sleep(s):                      # the clock moves while the framer waits
            self.slept.append(s)
            self.clk.t += s
        self.fr.sleep = sleep
        self.run_at(0.0)                                           # lead bytes out, t0 = 1000.0
        self.slept.clear()
        out = self.run_at(0.001)                                   # 1 byte due: less than a chunk
        self.assertEqual(len(out), self.fr.chunk)
        self.assertEqual(len(self.slept), 1)
        self.assertAlmostEqual(self.slept[0], self.fr.chunk / 1250.0 - 0.001, places=9)
        self.assertEqual(self.fr.lateness()["calls_over_20_ms"], 0)
        self.run_at(0.3)                                           # a call 0.3 s late: counted
        self.assertEqual(self.fr.lateness()["calls_over_200_ms"], 1)

    def test_capture_to_send_per_packet(self):
        """A packet's capture_time (its metadata, through the formatter) to the time its first
        byte is due on air by the byte clock: t0 + byte offset / byte rate, exactly."""
        def timed(b, t_cap):
            meta = pmt.dict_add(pmt.make_dict(), pmt.intern("capture_time"), pmt.from_double(t_cap))
            return pmt.cons(meta, pmt.init_u8vector(len(b), list(b)))
        self.run_at(0.0)                                           # t0 = 1000.0, lead bytes out
        self.fr._on_header(timed(b"\xaa" * 6, 999.95))
        self.fr._on_payload(timed(bytes(10), 999.95))
        self.run_at(0.01)                                          # its first byte is byte `lead`
        self.fr._on_header(u8(b"\xaa" * 6))                        # no capture time: not measured
        self.fr._on_payload(u8(bytes(10)))
        self.run_at(0.02)
        lat = self.fr.tx_latency()
        self.assertEqual((lat["frames"], lat["window"]), (1, 1))
        self.assertAlmostEqual(lat["max_ms"], 1000 * (1000.0 + self.lead / 1250.0 - 999.95), places=6)


if __name__ == "__main__":
    gr_unittest.main()
