#!/usr/bin/env python3
#
# Copyright 2026 gr-largesc authors.
# SPDX-License-Identifier: GPL-3.0-or-later
#
"""QA for two radios, one conversation (issue 22): runs benchmarks/two_radio.py for
20 s (node A, the air, node B as three processes over ZeroMQ on loopback; speech both
ways, loss reports back over each modem) and checks that every count adds up exactly.
The figures themselves (loss, latency, CPU) depend on the machine and are not judged
here: the benchmark prints them. Untrained codec: nothing is said about speech quality."""

import json
import os
import shutil
import subprocess
import sys
import tempfile

from gnuradio import gr_unittest

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.realpath(__file__)), "..", ".."))
BENCH = os.path.join(ROOT, "benchmarks", "two_radio.py")


class qa_two_radio(gr_unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        run = tempfile.mkdtemp(prefix="largesc-two-radio-qa-")
        env = dict(os.environ, DURATION="20", EBN0="13", DRAIN="3", TWO_RADIO_RUN=run,
                   TWO_RADIO_PORT=str(20000 + os.getpid() % 20000))
        p = subprocess.run([sys.executable, BENCH], env=env, capture_output=True, text=True, timeout=400)
        cls.rc, cls.stderr = p.returncode, p.stderr
        cls.out = json.loads(p.stdout) if p.stdout.strip() else None
        cls.raw = {}
        for r in ("A", "B", "air"):
            if os.path.exists(os.path.join(run, r + ".json")):
                with open(os.path.join(run, r + ".json")) as f:
                    cls.raw[r] = json.load(f)
        shutil.rmtree(run, ignore_errors=True)

    def test_runs_and_every_check_holds(self):
        self.assertIsNotNone(self.out, self.stderr[-2000:])
        self.assertEqual(self.out["checks_failed"], [])
        self.assertEqual(self.rc, 0)
        for d in ("A->B", "B->A"):
            self.assertGreaterEqual(len(self.out[d]["checks"]), 15)

    def test_machine_cpu_adds_up(self):
        """The machine's CPU over the talk: the benchmark's processes (two codecs each) use
        some of it, everything else is the rest, and nothing exceeds the cores."""
        m = self.out["machine_cpu"]
        self.assertEqual(m["cores"], os.cpu_count())
        self.assertGreater(m["seconds"], 15.0)
        self.assertGreater(m["benchmark_cores"], 0.2)
        self.assertLessEqual(m["busy_cores"], m["cores"] + 0.05)
        self.assertLessEqual(m["benchmark_cores"], m["busy_cores"] + 0.05)   # a part of the machine's use
        self.assertGreaterEqual(m["other_cores"], 0.0)
        self.assertGreaterEqual(m["steal_cores"], 0.0)
        self.assertGreaterEqual(m["major_faults"], 0)
        # per minute: the same figures over consecutive parts of the talk that add up to it
        self.assertGreaterEqual(len(m["per_minute"]), 1)
        self.assertAlmostEqual(sum(x["seconds"] for x in m["per_minute"]), m["seconds"], delta=0.2)
        self.assertEqual(sum(x["major_faults"] for x in m["per_minute"]), m["major_faults"])

    def test_speech_crosses_both_ways(self):
        for d in ("A->B", "B->A"):
            x = self.out[d]
            self.assertGreater(x["packets_sent"], 50, d)
            self.assertGreater(x["packets_delivered"], x["packets_sent"] // 2, d)
            self.assertEqual(x["packets_sent"], x["packets_delivered"] + x["packets_lost"])
            self.assertGreater(x["frames_decoded"], 50, d)
            self.assertEqual(x["frames_decoded"], x["frames_played_out"])
            self.assertEqual(x["feedback"]["controller_state_talking"], "feedback", d)  # the loop closed over the air

    def test_counts_add_up_from_the_raw_logs(self):
        """The same equalities recomputed here from each process's own JSON."""
        for talker, listener in (("A", "B"), ("B", "A")):
            T, L = self.raw[talker], self.raw[listener]
            srt, rxc = L["listen"]["sorter"], L["listen"]["rx_counters"]
            self.assertEqual(len(T["sent_packets"]), T["talk"]["voice_sent"])
            self.assertEqual(T["talk"]["modem_tx"]["packets_in"],
                             T["talk"]["voice_sent"] + T["talk"]["report_packets_sent"])
            self.assertEqual(L["listen"]["modem_rx"]["packets_out"], srt["packets_in"])
            self.assertEqual(srt["packets_in"], srt["voice_out"] + srt["feedback_out"] + srt["rejected"])
            self.assertEqual(rxc["packets_in"], srt["voice_out"])
            self.assertEqual(len(L["voice_packets"]), srt["voice_out"])
            # every report the listener sent is delivered to the talker or lost, none twice
            seqs = [r["feedback_seq"] for r in T["feedback_received"]]
            self.assertEqual(len(seqs), len(set(seqs)))
            self.assertTrue(all(0 <= s < L["talk"]["reports_sent"] for s in seqs))
            self.assertEqual(T["listen"]["sorter"]["feedback_out"], len(seqs))
            self.assertEqual(T["talk"]["controller"]["feedback_in"], len(seqs))
            dec, slips = rxc["decoder"], rxc["playout"]     # the fixed-rate output's slips
            self.assertEqual(L["listen"]["audio_samples_out"],
                             dec["samples_out"] + slips["samples_inserted"] - slips["samples_dropped"])
            self.assertEqual(dec["frames_in"], rxc["frames_out"])

    def test_latency_fields_present_and_in_order(self):
        """Issue 23: recomputed from the raw logs: every voice packet sent carries its frame's
        capture_time, never decreasing; the listener's latency messages, one per frame that brought
        tokens, have increasing frames, out_time never decreasing, and out_time after the frame's
        capture and after its first packet's arrival (one monotonic clock on this machine)."""
        for talker, listener in (("A", "B"), ("B", "A")):
            T, L = self.raw[talker], self.raw[listener]
            caps = {f: c for f, c in T["sent_meta"]}
            self.assertEqual(len(T["sent_meta"]), T["talk"]["voice_sent"])
            self.assertTrue(all(c is not None for c in caps.values()))
            order = [c for _f, c in T["sent_meta"]]
            # never decreasing (a throttle that catches up after a stall delivers frames at once)
            self.assertTrue(all(b >= a for a, b in zip(order, order[1:])), talker)
            msgs = L["latency_msgs"]
            rxc = L["listen"]["rx_counters"]
            self.assertEqual(len(msgs), rxc["frames_out"] - rxc["frames_empty"])
            frames = [m["frame"] for m in msgs]
            self.assertEqual(frames, sorted(set(frames)))
            outs = [m["out_time"] for m in msgs]
            self.assertEqual(outs, sorted(outs))
            # one output stream: each frame's first sample further on than the one before's, by
            # 80 ms of samples per frame less the fixed-rate output's cuts (at most half a frame each)
            at = [m["out_sample"] for m in msgs]
            self.assertTrue(all(b - a >= (g - f) * 640 for (f, a), (g, b) in
                                zip(zip(frames, at), zip(frames[1:], at[1:]))), listener)
            # a due time on the fixed-rate stream exactly for the frames the playout clock timed (the
            # first frames of a call can leave before the clock runs: neither)
            self.assertTrue(all((m["due_time"] is None) == (m["play_time"] is None) for m in msgs))
            for m in msgs:
                self.assertGreater(m["out_time"], m["rx_time"])
                self.assertAlmostEqual(m["receive_to_output_ms"], 1000 * (m["out_time"] - m["rx_time"]), places=6)
                if m["frame"] in caps:
                    self.assertGreater(m["out_time"], caps[m["frame"]])
            self.assertLessEqual(msgs[-1]["late_packets"], rxc["late"])  # late packets may come after the last frame

    def test_every_process_stopped_cleanly(self):
        self.assertEqual(sorted(self.raw), ["A", "B", "air"])
        for r, x in self.raw.items():
            self.assertTrue(x["clean_stop"], r)


if __name__ == "__main__":
    gr_unittest.main()
