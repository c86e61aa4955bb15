#!/usr/bin/env python3
#
# Copyright 2026 gr-largesc authors.
# SPDX-License-Identifier: GPL-3.0-or-later
#
"""QA for largesc_rx's one gap rule (docs/interfaces.md, "Gaps"): with arrival
times (rx_time, as packet_sorter stamps them), a channel outage and a
transmitter restart of the same length give the same audio out, as long as
the time that passed (without times, the seq-only rules: qa_uep.qa_gaps_by_time).
Untrained codec (random weights): the audio is compared sample for sample,
never judged as speech."""

import time

import numpy as np
import pmt
from gnuradio import blocks, gr, gr_unittest

from gnuradio import largesc
from gnuradio.largesc.common.pacing import post_paced, wait_for
from gnuradio.largesc.codec.mimi_decoder import RESYNC_S, SLIP_IN_S

SEED = "random:1"
SPF = 1280          # samples per 80 ms frame at 16 kHz
T = 0.08            # seconds per frame
BEFORE, GAP, AFTER = 20, 38, 10     # frames heard, frames of silence (3.04 s), frames heard


def voice_pdus(first_frame, n, first_seq, t0=100.0, no_copy=()):
    """Voice packet PDUs (K 8, one copy; none in the packets of the frames in no_copy) of
    frames first_frame.., numbered from first_seq, with rx_time = t0 + the frame's time on
    air; the tokens depend on the frame only."""
    tx = largesc.packetizer_core(False)
    out = []
    for i in range(n):
        f = first_frame + i
        tok = np.random.default_rng(f).integers(0, 2048, 8).tolist()
        b = tx.packetize(first_seq + i, tok, 8, 1 if i and f not in no_copy else 0, 0)
        meta = pmt.dict_add(pmt.make_dict(), pmt.intern("rx_time"), pmt.from_double(t0 + f * T))
        out.append(pmt.cons(meta, pmt.init_u8vector(len(b), list(b))))
    return out


class qa_largesc_rx_gaps(gr_unittest.TestCase):

    def receive(self, msgs, latency=None):
        """Audio and counters of a largesc_rx (hold recovery, no playout clock: the packets'
        times are scripted, not this host's) fed msgs, then flushed; `latency`: a message_debug
        for its latency port."""
        tb = gr.top_block()
        rx = largesc.largesc_rx(sample_rate=16000, weights=SEED, threads=1, start_frame=0,
                                feedback_interval=0, device="cpu", jitter_buffer_ms=0)
        sink = blocks.vector_sink_f()
        tb.connect(rx, sink)
        if latency is not None:
            tb.msg_connect(rx, "latency", latency, "store")
        tb.start()
        try:
            dep = rx.depacketizer
            post_paced(dep, "in", msgs, dep.packets_in)
            wait_for(lambda: dep.packets_in() == len(msgs), 60, "packets into the RX")
            rx.flush()
            wait_for(lambda: rx.decoder.stats()["frames_in"] == dep.frames_out(), 120, "frames decoded")
            wait_for(lambda: len(sink.data()) >= dep.frames_out() * SPF, 120, "decoded audio")
        finally:
            tb.stop()
            tb.wait()
        self.rx = rx
        return np.asarray(sink.data(), np.float32), rx.counters()

    def test_outage_and_restart_give_the_same_audio(self):
        before = voice_pdus(0, BEFORE, 0)
        outage, c_out = self.receive(before + voice_pdus(BEFORE + GAP, AFTER, BEFORE + GAP))
        restart, c_rst = self.receive(before + voice_pdus(BEFORE + GAP, AFTER, 0))
        n = BEFORE + GAP + AFTER
        self.assertEqual(len(outage), n * SPF)              # as long as the time that passed
        self.assertGreater(float(np.abs(outage[-AFTER * SPF:]).max()), 1e-4)
        np.testing.assert_array_equal(restart, outage)      # one rule for both gaps
        self.assertEqual((c_out["restarts"], c_rst["restarts"]), (0, 1))
        for c in (c_out, c_rst):
            self.assertEqual((c["frames_out"], c["frames_primary"], c["packets_accepted"], c["late"]),
                             (n, BEFORE + AFTER, BEFORE + AFTER, 0))
            self.assertEqual(c["decoder"]["frames_decoded"], n)

    def test_latency_messages(self):
        """One latency message per frame that brought tokens, as its first sample leaves: frames
        increasing, out_time non-decreasing, rx_time as stamped, receive_to_output_ms =
        out_time - rx_time; none for the lost frames."""
        t0 = time.monotonic() - 10.0          # the packets arrived (scripted) in the last 10 s
        heard = list(range(0, 12)) + list(range(15, 20))       # frames 12..14 lost
        msgs = [m for f in heard for m in voice_pdus(f, 1, f, t0)]
        dbg = blocks.message_debug()
        audio, c = self.receive(msgs, latency=dbg)
        self.assertEqual((c["frames_out"], c["late"]), (20, 0))
        self.assertEqual(len(audio), 20 * SPF)
        wait_for(lambda: dbg.num_messages() == len(heard), 10, "latency messages")
        got = [pmt.to_python(pmt.car(dbg.get_message(i))) for i in range(dbg.num_messages())]
        self.assertEqual([d["frame"] for d in got], heard)
        outs = [d["out_time"] for d in got]
        self.assertEqual(outs, sorted(outs))
        self.assertLessEqual(outs[-1], time.monotonic())
        for d in got:
            self.assertAlmostEqual(d["rx_time"], t0 + d["frame"] * T, places=9)
            self.assertAlmostEqual(d["receive_to_output_ms"], 1000 * (d["out_time"] - d["rx_time"]), places=6)
            self.assertGreater(d["receive_to_output_ms"], 0.0)
            self.assertEqual(d["late_packets"], 0)
            self.assertNotIn("capture_time", d)
        lat = self.rx.latency()
        self.assertEqual((lat["receive_to_output"]["frames"], lat["capture_to_output"]["frames"]), (len(heard), 0))
        ms = sorted(d["receive_to_output_ms"] for d in got)
        self.assertAlmostEqual(lat["receive_to_output"]["max_ms"], ms[-1], places=6)
        self.assertAlmostEqual(lat["receive_to_output"]["p50_ms"], ms[len(ms) // 2], places=6)  # rank ceil(17/2) = 9
        self.assertEqual(lat["late_packets"], 0)

    def test_live_clock_decode_lead(self):
        """A live receiver (playout clock on, default jitter buffer and decode lead) fed packets
        paced at 80 ms and stamped with this host's clock, frame 5's never (nor its copy): every frame with
        tokens leaves when due (out_time >= play_time, play_time 80 ms apart), the complete ones
        let go early (frames_early) and held in the decoder, the lost one played at its time;
        frames out = frames in, whole frames of audio after a 100 ms sound card prime."""
        tb = gr.top_block()
        rx = largesc.largesc_rx(sample_rate=16000, weights=SEED, threads=1, feedback_interval=0, device="cpu",
                                output_prime_ms=100.0)
        sink = blocks.vector_sink_f()
        lat = blocks.message_debug()
        tb.connect(rx, sink)
        tb.msg_connect(rx, "latency", lat, "store")
        tb.start()
        n = 12
        try:
            t0 = time.monotonic()
            for i, pdu in enumerate(voice_pdus(0, n, 0, t0=t0, no_copy=(6,))):
                time.sleep(max(0.0, t0 + i * T - time.monotonic()))
                if i != 5:
                    rx.clock.to_basic_block()._post(pmt.intern("in"), pdu)
            dep = rx.depacketizer
            wait_for(lambda: dep.frames_out() == n, 10, "frames played out by the clock")
            wait_for(lambda: lat.num_messages() == n - 1, 10, "latency messages")

            def samples():      # every frame's samples, the fixed-rate output's slips included
                p = rx.decoder.rate_stats()
                return n * SPF + p["samples_primed"] + p["samples_inserted"] - p["samples_dropped"]
            wait_for(lambda: len(sink.data()) >= samples(), 10, "the last frame's samples at the sink")
        finally:
            tb.stop()
            tb.wait()
        got = [pmt.to_python(pmt.car(lat.get_message(i))) for i in range(lat.num_messages())]
        self.assertEqual([d["frame"] for d in got], [f for f in range(n) if f != 5])
        for d in got:   # the fixed-rate stream may put a frame up to SLIP_IN_S before its play_time
            self.assertGreaterEqual(d["out_time"], d["play_time"] - SLIP_IN_S, d["frame"])
        outs = [d["out_sample"] for d in got]   # the output sample each became: one stream
        self.assertEqual(outs[0], 1600)                 # after the prime's 100 ms
        for a, b in zip(outs, outs[1:]):
            self.assertTrue(SPF // 2 <= b - a <= 2 * SPF + RESYNC_S * 16000, (a, b))
        plays = {d["frame"]: d["play_time"] for d in got}
        for f in range(1, n):
            if f in plays and f - 1 in plays:
                self.assertAlmostEqual(plays[f] - plays[f - 1], T, delta=0.02)   # the anchor may move
        c = rx.counters()
        self.assertEqual((c["frames_out"], c["frames_primary"], c["late"]), (n, n - 1, 0))
        self.assertEqual(c["playout"]["lead_ms"], 80.0)
        self.assertGreaterEqual(c["playout"]["frames_early"], 1)
        self.assertLessEqual(c["playout"]["frames_early"], n - 1)      # never the lost one
        self.assertEqual(c["playout"]["hold_refused"], 0)
        p = c["playout"]
        self.assertEqual(len(sink.data()), n * SPF + p["samples_primed"] + p["samples_inserted"] - p["samples_dropped"])
        self.assertEqual((p["resyncs"], p["primes"], p["samples_primed"]), (0, 1, 1600))
        np.testing.assert_array_equal(np.array(sink.data()[:1600]), 0.0)

    def test_recovery_deadline(self):
        """With the playout clock on, a model backend gets token_recovery's live deadline
        unless recovery_args sets one; without the clock, or with hold, none."""
        from gnuradio.largesc.recovery.token_recovery import LIVE_DEADLINE_MS
        lm = dict(model="tiny", device="cpu")

        def deadline(**kw):
            rx = largesc.largesc_rx(sample_rate=16000, weights=SEED, threads=1, device="cpu", **kw)
            return rx.recovery.deadline_ms(), rx.counters()["recovery"]["deadline_ms"]

        self.assertEqual(LIVE_DEADLINE_MS, 80.0)
        self.assertEqual(deadline(recovery="lm", recovery_args=lm), (80.0, 80.0))
        self.assertEqual(deadline(recovery="lm", recovery_args=dict(lm, deadline_ms=200)), (200.0, 200.0))
        self.assertEqual(deadline(recovery="lm", recovery_args=lm, jitter_buffer_ms=0), (0.0, 0.0))
        self.assertEqual(deadline(recovery="hold"), (0.0, 0.0))


if __name__ == "__main__":
    gr_unittest.main()
