#!/usr/bin/env python3
#
# Copyright 2026 gr-largesc authors.
# SPDX-License-Identifier: GPL-3.0-or-later
#
"""link_monitor: windowed loss, counts, rates and plan from real packets
(C++ packetizer core via packet_source's header layout), feedback values,
garbage never kills the handler; audio_out falls back without a sound card."""

import time

import numpy as np
import pmt
from gnuradio import blocks, gr, gr_unittest

from gnuradio.largesc.hier.link_monitor import (FEEDBACK_FIGURES, FIGURES, LATENCY_FIGURES, audio_out, link_monitor,
                                               parse_header)


def packet(seq, k=8, r1=2, r2=0):
    n = 3 + (11 * (k + r1 + r2) + 7) // 8
    data = [seq & 0xFF, 0x40 | (k - 1), (r1 << 4) | r2] + [0] * (n - 3)
    return pmt.cons(pmt.make_dict(), pmt.init_u8vector(n, data))


class qa_link_monitor(gr_unittest.TestCase):

    def test_001_header(self):
        # docs/packet_format.md test vector: seq 255, K 4, r 2/1, CRC
        data = bytes.fromhex("ff632100200801804 00a018038cee9".replace(" ", ""))
        self.assertEqual(parse_header(data), (255, 4, 2, 1, True))
        self.assertIsNone(parse_header(b"\x01\x00\x00"))  # version 0
        self.assertIsNone(parse_header(b"\x01"))

    def test_002_windowed_figures_direct(self):
        m = link_monitor(window=20, update_every=1000)
        lost = set(range(0, 100, 5))  # every 5th packet lost: 20 %
        for i in range(100):
            m.handle_sent(packet(i))
            if i not in lost:
                m.handle_received(packet(i))
        f = m.figures()
        self.assertEqual(f["packets_sent"], 100)
        self.assertEqual(f["packets_delivered"], 80)
        self.assertEqual(f["packets_lost"], 20)
        self.assertAlmostEqual(f["loss_window"], 0.2, delta=0.06)
        self.assertEqual((f["K"], f["r1"], f["r2"]), (8, 2, 0))
        self.assertAlmostEqual(f["token_bps"], 10 * 11 * 12.5)
        self.assertAlmostEqual(f["air_bps"], (3 + 14) * 8 * 12.5)
        # the window forgets: 40 clean packets later the windowed loss is 0
        for i in range(100, 140):
            m.handle_sent(packet(i, k=4, r1=0))
            m.handle_received(packet(i, k=4, r1=0))
        f = m.figures()
        self.assertEqual(f["loss_window"], 0.0)
        self.assertEqual(f["packets_lost"], 20)
        self.assertEqual((f["K"], f["r1"]), (4, 0))
        self.assertAlmostEqual(f["token_bps"], 550.0)

    def test_003_received_before_sent(self):
        m = link_monitor(window=10)
        for i in range(30):
            m.handle_received(packet(i))
            m.handle_sent(packet(i))
        f = m.figures()
        self.assertEqual(f["packets_lost"], 0)
        self.assertEqual(f["loss_window"], 0.0)

    def test_004_garbage_and_feedback(self):
        m = link_monitor()
        for bad in (pmt.PMT_NIL, pmt.intern("x"), pmt.cons(pmt.make_dict(), pmt.init_u8vector(1, [1])),
                    pmt.cons(pmt.make_dict(), pmt.init_f32vector(3, [1, 2, 3]))):
            m.handle_sent(bad)
            m.handle_received(bad)
            m.handle_feedback(bad)
        self.assertEqual(m.messages_rejected(), 12)
        fb = pmt.dict_add(pmt.dict_add(pmt.make_dict(), pmt.intern("loss_rate"), pmt.from_double(0.125)),
                          pmt.intern("mean_burst"), pmt.from_double(2.5))
        m.handle_feedback(pmt.cons(fb, pmt.PMT_NIL))
        f = m.figures()
        self.assertEqual((f["feedback_loss"], f["feedback_burst"]), (0.125, 2.5))
        # the controller's rules (pmt_util.parse_feedback): a report it refuses
        # (no burst, NaN burst, burst out of range, negative window) is refused
        # here too and the view keeps the last good one
        from gnuradio.largesc.uep.adaptive_controller import adaptive_controller
        ctrl = adaptive_controller(budget=1100)
        refused = [pmt.dict_add(pmt.make_dict(), pmt.intern("loss_rate"), pmt.from_double(0.5))]
        for k, v in (("mean_burst", pmt.from_double(float("nan"))), ("mean_burst", pmt.from_double(2e3)),
                     ("window", pmt.from_long(-1))):
            d = pmt.dict_add(refused[0], pmt.intern(k), v)
            if k == "window":
                d = pmt.dict_add(d, pmt.intern("mean_burst"), pmt.from_double(2.0))
            refused.append(d)
        for d in refused:
            before = m.messages_rejected()
            m.handle_feedback(d)
            self.assertEqual(m.messages_rejected(), before + 1)
            self.assertIsInstance(ctrl._parse_feedback(d), str)
        f = m.figures()
        self.assertEqual((f["feedback_loss"], f["feedback_burst"]), (0.125, 2.5))
        good = pmt.dict_add(pmt.dict_add(pmt.make_dict(), pmt.intern("loss_rate"), pmt.from_long(0)),
                            pmt.intern("mean_burst"), pmt.from_uint64(3))
        m.handle_feedback(good)
        self.assertEqual(ctrl._parse_feedback(good), (0.0, 3.0, 1))
        f = m.figures()
        self.assertEqual((f["feedback_loss"], f["feedback_burst"]), (0.0, 3.0))

    def test_004b_feedback_ageing(self):
        """the controller's ageing rule on the monitor's own clock (one packet
        period per sent packet): stale at exactly feedback_timeout after the
        last report with window > 0, shown in figures and summary"""
        m = link_monitor(update_every=1000, frame_rate=12.5, feedback_timeout=0.4)  # 5 packets
        self.assertEqual((m.feedback_timeout, m.feedback_state(), m.feedback_stale()), (0.4, "parameters", 0))

        def report(loss, window=50):
            return pmt.dict_add(pmt.dict_add(pmt.dict_add(pmt.make_dict(), pmt.intern("loss_rate"),
                                                          pmt.from_double(loss)),
                                             pmt.intern("mean_burst"), pmt.from_double(2.0)),
                                pmt.intern("window"), pmt.from_long(window))
        states = []
        for i in range(20):
            if i in (2, 14):
                m.handle_feedback(report(0.125))
            if i == 5:
                m.handle_feedback(report(0.0, window=0))  # nothing measured: no refresh
                m.handle_feedback(report(float("nan")))   # refused: no refresh
            m.handle_sent(packet(i))
            states.append(m.feedback_state())
        self.assertEqual(states, ["parameters"] * 2 + ["feedback"] * 4 + ["stale"] * 8 + ["feedback"] * 4
                         + ["stale"] * 2)
        self.assertEqual(m.feedback_stale(), 2)
        f = m.figures()
        self.assertEqual((f["feedback_stale"], f["feedback_age"]), (1.0, 6 / 12.5))
        self.assertIn("(stale: no report for 0.5 s)", m.summary())
        m.handle_feedback(report(0.25))
        f = m.figures()
        self.assertEqual((f["feedback_stale"], f["feedback_age"], f["feedback_loss"]), (0.0, 0.0, 0.25))
        self.assertNotIn("stale", m.summary())
        # 0 = reports never age; before any report the age is -1
        m = link_monitor(feedback_timeout=0)
        self.assertEqual(m.figures()["feedback_age"], -1.0)
        m.handle_feedback(report(0.125))
        for i in range(1000):
            m.handle_sent(packet(i))
        self.assertEqual((m.feedback_state(), m.figures()["feedback_stale"]), ("feedback", 0.0))
        with self.assertRaisesRegex(ValueError, r"feedback_timeout must be a finite number >= 0 and <= 3600"):
            link_monitor(feedback_timeout=-1)

    def test_004c_latency(self):
        """The `latency` input (largesc_rx's messages): p50/p95/max of receive_to_output_ms over
        the last 125 frames, late_packets as of the newest message; junk refused and counted."""
        m = link_monitor(window=10)
        f = m.figures()
        self.assertEqual(f["late_packets"], 0.0)
        self.assertNotEqual(f["latency_p50_ms"], f["latency_p50_ms"])      # NaN: nothing measured yet
        self.assertNotIn("latency", m.summary())

        def msg(ms=None, late=None, pdu=True):
            d = pmt.make_dict()
            if ms is not None:
                d = pmt.dict_add(d, pmt.intern("receive_to_output_ms"), pmt.from_double(ms))
            if late is not None:
                d = pmt.dict_add(d, pmt.intern("late_packets"), pmt.from_long(late))
            return pmt.cons(d, pmt.PMT_NIL) if pdu else d

        for i in range(200):        # 200 frames, 1..200 ms: the window holds 76..200
            m.handle_latency(msg(1.0 + i, late=i // 50, pdu=bool(i % 2)))
        for junk in (pmt.intern("x"), msg(), msg(-5.0), msg(float("nan")), msg(1e9), pmt.cons(pmt.PMT_NIL, pmt.PMT_NIL)):
            m.handle_latency(junk)
        f = m.figures()
        self.assertEqual((f["latency_p50_ms"], f["latency_p95_ms"], f["latency_max_ms"]), (138.0, 194.0, 200.0))
        self.assertEqual(f["late_packets"], 3.0)
        self.assertEqual(m.messages_rejected(), 6)
        self.assertIn("latency p50 138 ms p95 194 ms, 3 late", m.summary())
        m.handle_latency(msg(late=7))        # late count alone
        self.assertEqual(m.figures()["late_packets"], 7.0)
        self.assertEqual(m.messages_handled(), 207)

    def test_005_in_flowgraph(self):
        """packets through a real erasure channel: the published figures
        agree with the channel's own counters; garbage on the ports is
        counted and the block keeps working."""
        from gnuradio import largesc
        n = 120
        tb = gr.top_block()
        chan = largesc.erasure_channel("bernoulli", 0.25, 1.0, 3)
        mon = link_monitor(window=50, update_every=6)
        dbg = blocks.message_debug()
        src = blocks.message_strobe(pmt.PMT_NIL, 1000)  # only to have a source; messages posted below
        tb.msg_connect(chan, "out", mon, "received")
        tb.msg_connect(mon, "figures", dbg, "store")
        tb.msg_connect(src, "strobe", dbg, "print")
        tb.start()
        try:
            mon._post(pmt.intern("sent"), pmt.intern("garbage"))
            for i in range(n):
                p = packet(i)
                mon._post(pmt.intern("sent"), p)
                time.sleep(0.002)  # the channel's packet after the monitor's copy, as on a link
                chan.to_basic_block()._post(pmt.intern("in"), p)
                time.sleep(0.002)
            deadline = time.time() + 10
            while dbg.num_messages() < n // 6 and time.time() < deadline:
                time.sleep(0.05)
            time.sleep(0.2)
        finally:
            tb.stop()
            tb.wait()
        self.assertEqual(dbg.num_messages(), n // 6)
        last = dbg.get_message(dbg.num_messages() - 1)
        vals = np.array(pmt.f32vector_elements(pmt.cdr(last)))
        self.assertEqual(len(vals), len(FIGURES))
        fig = dict(zip(FIGURES, vals))
        self.assertEqual(pmt.length(pmt.dict_keys(pmt.car(last))), len(FIGURES + FEEDBACK_FIGURES + LATENCY_FIGURES))
        for name in FIGURES + FEEDBACK_FIGURES + LATENCY_FIGURES:
            self.assertTrue(pmt.dict_has_key(pmt.car(last), pmt.intern(name)), name)
        dropped = chan.packets_dropped()
        self.assertEqual(fig["packets_sent"], n)
        self.assertEqual(fig["packets_delivered"], n - dropped)
        # the newest IN_FLIGHT packets are not judged yet
        self.assertLessEqual(abs(fig["packets_lost"] - dropped), 2)
        self.assertGreater(fig["loss_window"], 0.05)
        self.assertLess(fig["loss_window"], 0.5)
        self.assertEqual(mon.messages_rejected(), 1)

    def test_006_audio_out_falls_back(self):
        tb = gr.top_block()
        src = blocks.vector_source_f([0.0] * 1600)
        a = audio_out(16000, "largesc-qa-no-such-device")
        tb.connect(src, a)
        tb.run()  # ends with the source either way
        self.assertFalse(a.has_audio)


if __name__ == "__main__":
    gr_unittest.run(qa_link_monitor)
