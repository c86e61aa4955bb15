#!/usr/bin/env python3
#
# Copyright 2026 gr-largesc authors.
# SPDX-License-Identifier: GPL-3.0-or-later
#
"""QA for the playout clock (uep/playout.py, docs/latency.md): a scripted
arrival sequence (on time, late, early, an outage, a transmitter restart) on a
scripted clock, checked frame by frame: which frames leave, when, and with
their packet or lost."""

import pmt
from gnuradio import blocks, gr, gr_unittest

from gnuradio import largesc
from gnuradio.largesc.common.pacing import post_paced, wait_for
from gnuradio.largesc.uep import playout as PO

T = 0.08
TARGET_MS = 160.0


def packet(frame, seq=None):
    """A K 1 voice packet of `frame` (seq = frame mod 256 unless given), token = frame mod 2048."""
    tx = largesc.packetizer_core(False)
    return tx.packetize(frame % 256 if seq is None else seq, [frame % 2048], 1, 0, 0)


class clock:
    """A scripted monotonic clock."""

    def __init__(self, t=0.0):
        self.t = t

    def __call__(self):
        return self.t


class qa_playout(gr_unittest.TestCase):

    def test_due_frame(self):
        self.assertIsNone(PO.due_frame(100.0, float("nan"), 0.16))
        self.assertIsNone(PO.due_frame(100.1, 100.0, 0.16))       # before frame 0's time
        self.assertEqual(PO.due_frame(100.16, 100.0, 0.16), 0)
        self.assertEqual(PO.due_frame(100.16 + 5 * T, 100.0, 0.16), 5)
        self.assertEqual(PO.due_frame(100.16 + 5 * T - 1e-3, 100.0, 0.16), 4)

    def script(self, arrivals, until, lead_ms=0.0):
        """Runs a core with the clock on: arrivals = [(time, packet bytes)], the clock ticks
        every 10 ms up to `until`. Returns ({frame: (tick time it left, token or None,
        play_time)}, core, clock)."""
        core = largesc.depacketizer_core(delay=1)
        clk = clock()
        pc = PO.playout_clock(core, TARGET_MS, clock=clk, quantile=0.0,   # anchored on the least delayed
                              lead_ms=lead_ms)
        out, arrivals = {}, sorted(arrivals, key=lambda a: a[0])
        t, i = 100.0, 0
        while t <= until:
            while i < len(arrivals) and arrivals[i][0] <= t:
                core.push(arrivals[i][1], arrivals[i][0])
                i += 1
            clk.t = t
            pc.tick()
            for f in core.pop():
                out[f["frame"]] = (round(t, 2), f["tokens"][0] if f["primary"] else None, f.get("play_time"))
                # each frame carries its playout time (token_recovery's deadline, the decoder's
                # hold): without a lead the clock lets it go at the first tick at or after it
                if not lead_ms:
                    self.assertTrue(-1e-9 <= t - f["play_time"] < 0.0101, (f["frame"], t, f["play_time"]))
            t = round(t + 0.01, 2)
        return out, core, pc

    def test_scripted_arrivals(self):
        arr = [(100.0 + n * T + 0.02, packet(n)) for n in range(10)]   # 20 ms of air delay
        arr[3] = (100.0 + 3 * T + 0.03, packet(3))   # 10 ms more jitter: still on time
        arr[5] = (100.0 + 5 * T + 0.40, packet(5))   # 400 ms late: after its playout time
        arr += [(100.0 + 12 * T + 0.02 - 0.05, packet(12))]   # frame 12 comes early (ref moves)
        arr += [(100.0 + 13 * T + 0.02, packet(13))]
        # an outage: frames 14..39 never come; then frames 40..44
        arr += [(100.0 + n * T + 0.02, packet(n)) for n in range(40, 45)]
        # the transmitter restarts at frame 60's time with seq 0
        arr += [(100.0 + (60 + i) * T + 0.02, packet(60 + i, seq=i)) for i in range(6)]
        until = 100.0 + 70 * T + 0.3
        out, core, _ = self.script(arr, until)
        ref = 100.0 + 12 * T + 0.02 - 0.05 - 12 * T       # the least delayed arrival: frame 12's
        self.assertAlmostEqual(core.arrival_ref(), ref, 9)
        last = PO.due_frame(until, ref, TARGET_MS / 1000.0)
        self.assertEqual(last, 72)
        frames = sorted(out)
        self.assertEqual(frames, list(range(0, last + 1)))  # one frame per index, none skipped, none twice
        for n in frames:
            tok = out[n][1]
            # the restart is confirmed by its 4th packet (frame 63's): frames 60 and 61 were
            # due before that, so the clock played them lost and their packets count late
            got = n in range(10) and n != 5 or n in (12, 13) or n in range(40, 45) or n in range(62, 66)
            self.assertEqual(tok, n % 2048 if got else None, n)
        # after the clock started (frame 12 set ref), frame n leaves at ref + n T + 160 ms, to the tick
        for n in range(14, last + 1):
            want = ref + n * T + TARGET_MS / 1000.0
            self.assertTrue(want <= out[n][0] < want + 0.0101, (n, out[n][0], want))
            self.assertAlmostEqual(out[n][2], want, 9)          # and carries that time
        c = core.counters()
        self.assertEqual(c["late"], 3)              # frame 5's packet, and 60's and 61's
        self.assertEqual(c["restarts"], 1)
        self.assertEqual(c["packets_accepted"], 10 - 1 + 2 + 5 + 4)
        self.assertEqual(c["packets_in"], c["packets_accepted"] + c["late"] + c["held"])

    def test_decode_lead(self):
        """lead_ms 120 (more than a frame, so that a frame waits for the lost one before it):
        a complete frame leaves at the first tick at which its packet is in, the frame before
        has left and its playout time is at most 120 ms away; a frame without its packet waits
        for its playout time; every frame carries its playout time. Frame 6 never comes,
        frame 9 comes 20 ms before its playout time, frame 12 30 ms after it (late)."""
        ref, target = 100.02, TARGET_MS / 1000.0
        arr = [(100.0 + n * T + 0.02, packet(n)) for n in range(16) if n not in (6, 9, 12)]
        arr += [(PO.play_time(9, ref, target) - 0.02, packet(9)),
                (PO.play_time(12, ref, target) + 0.03, packet(12))]
        out, core, pc = self.script(arr, 101.40, lead_ms=120.0)
        self.assertAlmostEqual(core.arrival_ref(), ref, 9)
        left = {n: round(100.06 + n * T, 2) for n in range(16)}       # playout time - 120 ms
        left.update({6: 100.66, 7: 100.66,          # 6 lost: at its time; 7 waited for it
                     9: 100.88, 10: 100.88,         # 9 when it came; 10 waited for it
                     12: 101.14, 13: 101.14})       # 12 lost at its time (its packet late); 13 after it
        self.assertEqual(sorted(out), list(range(16)))
        for n in range(16):
            self.assertEqual(out[n][:2], (left[n], None if n in (6, 12) else n), n)
            self.assertAlmostEqual(out[n][2], PO.play_time(n, ref, target), 9)
        self.assertEqual(pc.early, 14)              # all but the two lost
        c = core.counters()
        self.assertEqual((c["late"], c["frames_out"], c["frames_primary"]), (1, 16, 14))

    def test_play_arrived(self):
        """depacketizer_core.play_arrived(last, t): frames from the next while each has its own
        packet, up to last; play times t - 80 ms per frame before last; -1 when none."""
        core = largesc.depacketizer_core(delay=1)
        self.assertEqual(core.play_arrived(5, 1.0), -1)              # nothing before the first packet
        core.set_clocked(True)                      # timed packets wait for the clock
        for n in (0, 1, 2, 4):
            core.push(packet(n), 10.0 + n * T)
        self.assertEqual(core.next_frame(), 0)
        self.assertEqual(core.play_arrived(1, 20.0), 1)               # 0 and 1, not 2 (past last)
        self.assertEqual(core.play_arrived(9, 20.0), 2)               # 2; 3 has not come
        got = core.pop()
        self.assertEqual([f["frame"] for f in got], [0, 1, 2])
        for f, want in zip(got, (20.0 - T, 20.0, 20.0 - 7 * T)):
            self.assertAlmostEqual(f["play_time"], want, 9)
        self.assertEqual((core.play_arrived(9, 20.0), core.next_frame()), (-1, 3))
        core.play_until(3, 30.0)                                      # 3 leaves lost
        self.assertEqual(core.play_arrived(4), 4)                     # then 4; no time: none noted
        got = core.pop()
        self.assertEqual([(f["frame"], f["primary"]) for f in got], [(3, False), (4, True)])
        self.assertNotIn("play_time", got[1])

    def test_transmitter_stall_is_late_not_a_restart(self):
        """The transmitter stalls 1.2 s, then sends its backlog at once: the frames whose time
        passed were played lost and their packets count late; the numbering goes on (no
        restart, every later frame under its own index)."""
        arr = [(100.0 + n * T + 0.02, packet(n)) for n in range(10)]
        burst = 100.0 + 25 * T + 0.02                      # frames 10..25 (captured by then) arrive now
        arr += [(burst + 0.001 * i, packet(n)) for i, n in enumerate(range(10, 26))]
        arr += [(100.0 + n * T + 0.02, packet(n)) for n in range(26, 40)]
        out, core, _ = self.script(arr, 100.0 + 40 * T + 0.3)
        ref = 100.02
        due_at_burst = PO.due_frame(burst, ref, TARGET_MS / 1000.0)   # frames played before the burst
        self.assertEqual(due_at_burst, 23)
        for n in range(10, 40):
            self.assertEqual(out[n][1], None if n <= due_at_burst else n, n)
        c = core.counters()
        self.assertEqual((c["restarts"], c["late"], c["packets_accepted"]), (0, 14, 40 - 14))

    def test_anchor_follows_a_growing_delay(self):
        """With the 0.9 quantile, packets 300 ms later than before (a busier path) are late
        only until a tenth of the window has seen the new delay; then the clock follows."""
        core = largesc.depacketizer_core(delay=1)   # window 125 packets
        pc = PO.playout_clock(core, TARGET_MS, clock=clock())
        for n in range(125):
            core.push(packet(n), 100.0 + n * T + 0.02)
        self.assertAlmostEqual(core.arrival_ref(0.9), 100.02, 9)
        for n in range(125, 140):
            core.push(packet(n), 100.0 + n * T + 0.32)
        self.assertAlmostEqual(core.arrival_ref(0.9), 100.32, 9)   # 15 of 125 moved the quantile
        self.assertAlmostEqual(core.arrival_ref(0.0), 100.02, 9)
        self.assertEqual((pc.quantile, pc.window), (0.9, PO.ANCHOR_WINDOW))
        self.assertTrue(core.arrival_ref(1.5) != core.arrival_ref(1.5))   # NaN outside 0..1
        # the newest `last` only: 15 late of the newest 20 -> even the 0.0 quantile is late
        self.assertAlmostEqual(core.arrival_ref(0.0, 15), 100.32, 9)
        self.assertAlmostEqual(core.arrival_ref(0.0, 16), 100.02, 9)
        self.assertAlmostEqual(core.arrival_ref(0.9, 500), 100.32, 9)     # more than there are: all

    def test_start_up_delays_leave_the_anchor_with_its_window(self):
        """Packets 300 ms late at start (a codec warming up), then on time: after ANCHOR_WINDOW
        packets on time the clock's anchor no longer sees the start-up."""
        core = largesc.depacketizer_core(delay=1)
        pc = PO.playout_clock(core, TARGET_MS, clock=clock())
        for n in range(10):
            core.push(packet(n), 100.0 + n * T + 0.30)
        for n in range(10, 10 + PO.ANCHOR_WINDOW):
            core.push(packet(n), 100.0 + n * T + 0.02)
        self.assertAlmostEqual(core.arrival_ref(pc.quantile, pc.window), 100.02, 9)
        self.assertAlmostEqual(core.arrival_ref(pc.quantile), 100.30, 9)    # the whole window still would

    def test_no_times_no_clock(self):
        """Packets without rx_time never start the clock, and neither do times that are not
        on the clock's time base (60 s old or in the future): frames leave as packets arrive."""
        for times in ([None] * 5, [100.0 + n * T for n in range(5)], [1e6 + 5 + n * T for n in range(5)]):
            core = largesc.depacketizer_core(delay=1)
            pc = PO.playout_clock(core, TARGET_MS, clock=clock(1e6))
            for n, t in enumerate(times):
                core.push(packet(n), t)
                self.assertIsNone(pc.tick())
            self.assertFalse(core.clocked())
            self.assertEqual([f["frame"] for f in core.pop()], [0, 1, 2, 3])

    def test_block_runs_its_clock(self):
        """In a flowgraph the pass-through forwards every message and its thread plays the
        frames out at their time (host clock): timed packets for frames 0..4, then 10 s of
        nothing would be 125 frames; here 0.6 s after the last packet, frames up to about 9."""
        import time
        dpk = largesc.uep_depacketizer(1, 8, 125, 0, False)
        pc = PO.playout_clock(dpk, TARGET_MS)
        sink = blocks.message_debug()
        tb = gr.top_block()
        tb.msg_connect((pc, "out"), (dpk, "in"))
        tb.msg_connect((dpk, "out"), (sink, "store"))
        now = time.monotonic()
        msgs = []
        for n in range(5):
            meta = pmt.dict_add(pmt.make_dict(), pmt.intern("rx_time"), pmt.from_double(now + n * T))
            b = packet(n)
            msgs.append(pmt.cons(meta, pmt.init_u8vector(len(b), list(b))))
        msgs.append(pmt.intern("not a packet"))
        tb.start()
        try:
            post_paced(pc, "in", msgs, dpk.packets_in)
            wait_for(lambda: dpk.packets_in() == len(msgs), 20, "packets")
            wait_for(lambda: sink.num_messages() >= 10, 20, "the clock played nothing")
        finally:
            tb.stop()
            tb.wait()
        got = [pmt.to_python(pmt.dict_ref(pmt.car(sink.get_message(i)), pmt.intern("primary"), pmt.PMT_F))
               for i in range(10)]
        self.assertEqual(got, [True] * 5 + [False] * 5)
        self.assertEqual(dpk.counters()["not_pdu"], 1)
        # each frame the clock let go carries its time then: never before its playout time
        # (ref + n x 80 ms + target; ref = now here), never decreasing. Frames 5..9 (lost)
        # only the clock can play out; frames 0..4 may have left with their packets before
        # the clock's first tick (then without play_time)
        play = [pmt.to_python(pmt.dict_ref(pmt.car(sink.get_message(i)), pmt.intern("play_time"), pmt.PMT_NIL))
                for i in range(10)]
        self.assertTrue(all(isinstance(p, float) for p in play[5:]), play)
        timed = [(n, p) for n, p in enumerate(play) if p is not None]
        for n, p in timed:
            self.assertGreaterEqual(p, now + n * T + TARGET_MS / 1000.0 - 1e-9)
        self.assertEqual([p for _n, p in timed], sorted(p for _n, p in timed))

    def test_block_play_until_notes_play_time(self):
        """uep_depacketizer.play_until(n, t) notes t as frame n's play_time, 80 ms less per
        frame before it; play_arrived plays the frames whose packet came; without t, none."""
        dpk = largesc.uep_depacketizer(1, 8, 125, 0, False)
        sink = blocks.message_debug()
        tb = gr.top_block()
        tb.msg_connect((dpk, "out"), (sink, "store"))
        dpk.set_clocked(True)
        tb.start()
        try:
            for n in range(3):
                meta = pmt.dict_add(pmt.make_dict(), pmt.intern("rx_time"), pmt.from_double(50.0 + n * T))
                b = packet(n)
                dpk.to_basic_block()._post(pmt.intern("in"), pmt.cons(meta, pmt.init_u8vector(len(b), list(b))))
            wait_for(lambda: dpk.packets_in() == 3, 20, "packets")
            dpk.play_until(1, 51.25)
            self.assertEqual(dpk.next_frame(), 2)
            self.assertEqual(dpk.play_arrived(5), 2)
            wait_for(lambda: sink.num_messages() == 3, 20, "frames")
        finally:
            tb.stop()
            tb.wait()
        play = [pmt.to_python(pmt.dict_ref(pmt.car(sink.get_message(i)), pmt.intern("play_time"), pmt.PMT_NIL))
                for i in range(3)]
        self.assertAlmostEqual(play[0], 51.25 - T, 9)     # each frame before n: 80 ms earlier
        self.assertEqual(play[1:], [51.25, None])

    def test_parameters(self):
        core = largesc.depacketizer_core()
        for bad in (0, 5, 2001, float("nan"), "160"):
            with self.assertRaisesRegex(ValueError, "target_ms"):
                PO.playout_clock(core, bad)
        for bad in (-0.1, 1.1, float("nan")):
            with self.assertRaisesRegex(ValueError, "quantile"):
                PO.playout_clock(core, 160, quantile=bad)
        for bad in (-1, 501, float("nan")):
            with self.assertRaisesRegex(ValueError, "lead_ms"):
                PO.playout_clock(core, 160, lead_ms=bad)
            with self.assertRaisesRegex(ValueError, "decode_lead_ms"):
                largesc.largesc_rx(weights="random:1", decode_lead_ms=bad)
        with self.assertRaisesRegex(ValueError, "jitter_buffer_ms must be 0 .no playout clock. or 10..2000"):
            largesc.largesc_rx(weights="random:1", jitter_buffer_ms=5)
        for bad in (-1, 501, float("nan")):
            with self.assertRaisesRegex(ValueError, "output_prime_ms"):
                largesc.largesc_rx(weights="random:1", output_prime_ms=bad)
        for kw in (dict(jitter_buffer_ms=0), dict(fixed_rate_output=False)):   # the prime needs the fixed rate
            with self.assertRaisesRegex(ValueError, "output_prime_ms=100.0 needs the fixed-rate output"):
                largesc.largesc_rx(weights="random:1", output_prime_ms=100.0, **kw)


if __name__ == "__main__":
    gr_unittest.main()
