#!/usr/bin/env python3
#
# Copyright 2026 gr-largesc authors.
# SPDX-License-Identifier: GPL-3.0-or-later
#
"""QA for link.run_link's drain logic: the "all stages drained" condition is
exact (never true while a packet is still inside a block), it holds up when
many links run at once on a loaded machine, a stalled run fails loudly with
the counters of every stage instead of waiting, and packet accounting
catches packets lost outside the channel."""

import multiprocessing as mp
import threading
import time
import types

import numpy as np
import pmt
from gnuradio import blocks, gr, gr_unittest

from gnuradio import largesc
from gnuradio.largesc.common.loss import LossSpec
from gnuradio.largesc.sim import link
from gnuradio.largesc.uep.adaptive_controller import adaptive_controller
from gnuradio.largesc.codec.mimi_encoder import make_frame_pdu
from gnuradio.largesc.common.pacing import PacingTimeout, wait_for


def _burn(stop):
    """CPU load: a busy loop until stop is set."""
    x = 0
    while not stop.is_set():
        for _ in range(10000):
            x += 1


def _drain_once(n, trace, rng):
    """Frames 0..n-1 through controller -> packetizer -> trace channel ->
    depacketizer. Returns the counters seen at the moment
    link.packet_path_drained() first held, and the counters once the flowgraph
    is stopped. An exact condition makes the two equal."""
    tb = gr.top_block()
    ctrl = adaptive_controller(budget=1100, loss_rate=0.2, mean_burst=1.0, max_offset=1)
    pkz = largesc.uep_packetizer(False)
    chan = largesc.erasure_channel(model="trace", trace=list(trace), trace_repeat=True, stats_interval=0)
    dpk = largesc.uep_depacketizer(1, 8, 125, 0, False)
    sink = blocks.message_debug()
    tb.msg_connect((ctrl, "out"), (pkz, "in"))
    tb.msg_connect((pkz, "out"), (chan, "in"))
    tb.msg_connect((chan, "out"), (dpk, "in"))
    tb.msg_connect((dpk, "out"), (sink, "store"))
    tb.start()
    bb = ctrl.to_basic_block()
    for i in range(n):
        toks = rng.integers(0, 2048, 8)
        bb._post(pmt.intern("in"), make_frame_pdu(i, toks, -20.0, True))
    wait_for(lambda: link.packet_path_drained(n, ctrl, pkz, chan, dpk), 30, "drain condition never held")
    seen = (pkz.packets_out(), chan.packets_in(), chan.packets_passed(), chan.packets_dropped(),
            dpk.packets_in())
    time.sleep(0.02)  # a packet still in flight would land by now
    tb.stop()
    tb.wait()
    final = (pkz.packets_out(), chan.packets_in(), chan.packets_passed(), chan.packets_dropped(),
             dpk.packets_in())
    return seen, final


def _channel_kept(chan, n):
    """Indices of n PDUs posted into chan that it lets through."""
    tb = gr.top_block()
    sink = blocks.message_debug()
    tb.msg_connect((chan, "out"), (sink, "store"))
    tb.start()
    try:
        for i in range(n):
            meta = pmt.dict_add(pmt.make_dict(), pmt.intern("seq"), pmt.from_long(i))
            chan.to_basic_block()._post(pmt.intern("in"), pmt.cons(meta, pmt.init_u8vector(1, [i % 256])))
        wait_for(lambda: chan.packets_in() == n and sink.num_messages() == chan.packets_passed(), 30,
                 "channel did not handle every PDU")
    finally:
        tb.stop()
        tb.wait()
    return [pmt.to_long(pmt.dict_ref(pmt.car(sink.get_message(i)), pmt.intern("seq"), pmt.PMT_NIL))
            for i in range(sink.num_messages())]


def _run_links(q, repeats, seed):
    """Child process: `repeats` short links over a trace; reports frames or the error."""
    try:
        import torch
        torch.set_num_threads(1)
        rng = np.random.default_rng(seed)
        x = (0.1 * rng.standard_normal(int(0.4 * 16000))).astype(np.float32)
        out = []
        for _ in range(repeats):
            t = time.monotonic()
            res = link.run_link(x, 16000, link.LinkConfig(loss=LossSpec(model="trace", trace=(0, 1, 1, 0, 0)),
                                                          weights="random:1", recovery="hold",
                                                          threads=1), stall_timeout=30)
            out.append((res.frames, res.counters["packets_dropped_by_channel"], len(res.audio),
                        time.monotonic() - t))
        q.put(("ok", out))
    except Exception as e:  # reported to the parent, which fails the test
        q.put(("error", f"{type(e).__name__}: {e}"))


class qa_link(gr_unittest.TestCase):

    def test_signal_as_start_returns_stops_the_flowgraph(self):
        """A signal handled the moment tb.start() returns (SIGTERM of a campaign just as its
        flowgraph's threads appear) raises in _run_graph before it waits: the flowgraph is
        still stopped and waited for (a top block destroyed with its threads running can hang
        the process), and the exception goes on."""
        tb = gr.top_block()
        tb.connect(blocks.null_source(gr.sizeof_float), blocks.throttle(gr.sizeof_float, 16000),
                   blocks.null_sink(gr.sizeof_float))
        calls = []

        def start():
            tb.start()
            calls.append("start")
            raise KeyboardInterrupt     # what the signal handler raises there

        def stop():
            calls.append("stop")
            tb.stop()

        def wait():
            calls.append("wait")
            tb.wait()

        g = types.SimpleNamespace(tb=types.SimpleNamespace(start=start, stop=stop, wait=wait))
        with self.assertRaises(KeyboardInterrupt):
            link._run_graph(g, 16000, 16000, 1.0)
        self.assertEqual(calls, ["start", "stop", "wait"])

    def test_drain_condition_is_exact_under_load(self):
        """Hundreds of short packet paths, the last packets lost or not, on a
        machine kept busy: whenever the drain condition holds, nothing is
        left in flight (the counters never move afterwards), and every packet
        is accounted for."""
        stop = threading.Event()
        burners = [threading.Thread(target=_burn, args=(stop,), daemon=True) for _ in range(2)]
        for b in burners:
            b.start()
        rng = np.random.default_rng(5)
        try:
            for it in range(150):
                n = 3 + it % 7
                trace = (0, 1, 1, 0, 0) if it % 2 else (0, 0, 1)
                seen, final = _drain_once(n, trace, rng)
                self.assertEqual(seen, final, f"iteration {it}: drained reported with packets in flight")
                sent, chan_in, passed, dropped, dpk_in = final
                self.assertEqual(sent, n)
                self.assertEqual(chan_in, n)
                self.assertEqual(passed + dropped, n)
                self.assertEqual(dropped, sum(trace[i % len(trace)] for i in range(n)))
                self.assertEqual(dpk_in, passed)
        finally:
            stop.set()

    def test_counters_count_a_message_in_after_its_output(self):
        """The C++ blocks count a message in only when it is completely
        handled: a packet counted in by the channel is already in the next
        block's queue, so in == passed + dropped + rejected at every read."""
        tb = gr.top_block()
        pkz = largesc.uep_packetizer(False)
        chan = largesc.erasure_channel(model="bernoulli", loss_rate=0.5, seed=3, stats_interval=0)
        dpk = largesc.uep_depacketizer(0, 8, 125, 0, False)
        tb.msg_connect((pkz, "out"), (chan, "in"))
        tb.msg_connect((chan, "out"), (dpk, "in"))
        tb.start()
        bb = pkz.to_basic_block()
        n = 3000
        for i in range(n):
            bb._post(pmt.intern("in"), make_frame_pdu(i, [i % 2048] * 4))
        bad = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            # read order matters: the "in" counters first, the outcomes after
            p_in = pkz.frames_in()
            p_out, p_rej = pkz.packets_out(), pkz.frames_rejected()
            c_in = chan.packets_in()
            c_sum = chan.packets_passed() + chan.packets_dropped() + chan.packets_rejected()
            if p_out + p_rej < p_in or c_sum < c_in:
                bad.append((p_in, p_out, p_rej, c_in, c_sum))
            if c_in == n:
                break
        # the depacketizer may still be working through its queue
        wait_for(lambda: dpk.packets_in() == chan.packets_passed(), 30, "depacketizer did not drain")
        tb.stop()
        tb.wait()
        self.assertEqual(bad, [])
        self.assertEqual(chan.packets_in(), n)
        self.assertEqual(dpk.packets_in(), chan.packets_passed())

    def test_links_in_parallel_never_hang(self):
        """The link that hung 5 times in 80 (trace 0,1,1,0,0, two processes at
        once): 2 processes x 4 runs beside a CPU burner, each run bounded by a
        30 s stall limit and the whole test by a hard deadline."""
        ctx = mp.get_context("spawn")
        q = ctx.Queue()
        procs = [ctx.Process(target=_run_links, args=(q, 4, s)) for s in range(2)]
        stop = ctx.Event()
        burner = ctx.Process(target=_burn, args=(stop,))
        burner.start()
        for p in procs:
            p.start()
        results = []
        try:
            deadline = time.monotonic() + 400
            while len(results) < len(procs) and time.monotonic() < deadline:
                try:
                    results.append(q.get(timeout=1))
                except Exception:
                    pass
        finally:
            stop.set()
            for p in procs + [burner]:
                p.join(5)
                if p.is_alive():
                    p.kill()
        self.assertEqual(len(results), 2, f"links still running at the deadline: {results}")
        for kind, out in results:
            self.assertEqual(kind, "ok", out)
            for frames, dropped, samples, secs in out:
                self.assertEqual(frames, 5)
                self.assertEqual(dropped, 2)          # trace 0,1,1,0,0
                self.assertEqual(samples, 5 * 1280)

    def test_stall_fails_fast_with_counters(self):
        """A stage that never finishes makes wait_for fail after the stall
        limit, naming the last counters, instead of waiting for ever; a slow
        but moving counter is waited for past the limit."""
        t0 = time.monotonic()
        with self.assertRaisesRegex(PacingTimeout, r"stuck \(no progress for 0.5 s at \(\('a', 7\),\)\)"):
            wait_for(lambda: False, 0.5, "stuck", progress=lambda: (("a", 7),))
        self.assertLess(time.monotonic() - t0, 30)   # a hang guard, not a speed check
        start = time.monotonic()
        # moves every 0.4 s, needs 2.5 s in all, stall limit 1.5 s: must succeed
        wait_for(lambda: time.monotonic() - start > 2.5, 1.5, "slow",
                 progress=lambda: int((time.monotonic() - start) / 0.4))
        self.assertGreater(time.monotonic() - start, 2.5)

    def test_packets_lost_elsewhere(self):
        # healthy: everything the channel passed reached the depacketizer
        self.assertEqual(link.packets_lost_elsewhere(10, 7, 3, 7), 0)
        # two packets vanished between channel and depacketizer (queue overflow)
        self.assertEqual(link.packets_lost_elsewhere(10, 7, 3, 5), 2)
        # one vanished between packetizer and channel
        self.assertEqual(link.packets_lost_elsewhere(10, 6, 3, 6), 1)
        # both
        self.assertEqual(link.packets_lost_elsewhere(10, 6, 3, 4), 3)

    def test_latency_includes_recovery_frames(self):
        cfg = link.LinkConfig(max_offset=1)
        self.assertEqual(link.algorithmic_latency_ms(cfg, 16000), 160.0)
        self.assertEqual(link.algorithmic_latency_ms(cfg, 16000, recovery_frames=1), 240.0)
        self.assertEqual(link.algorithmic_latency_ms(link.LinkConfig(max_offset=2), 16000), 240.0)


class qa_link_loss(gr_unittest.TestCase):
    """The link's loss setting is one LossSpec (common/loss.py): its channel
    drops exactly the packets the same LossSpec's pattern marks lost (what
    the baselines get), for every model, a trace passed as a pattern."""

    def test_channel_drops_what_the_pattern_says(self):
        n = 600
        for spec in (LossSpec(0.3, "bernoulli", seed=7), LossSpec(0.2, "gilbert_elliott", 3.0, seed=8),
                     LossSpec(model="trace", trace=(0, 0, 1, 1, 1, 0, 1))):
            with self.subTest(model=spec.model):
                lost = spec.pattern(n)
                self.assertTrue(0.1 * n < lost.sum() < 0.6 * n)   # the test means something
                self.assertEqual(_channel_kept(spec.erasure_channel(), n), [i for i in range(n) if not lost[i]])

    def test_setting_of_a_sweep_point(self):
        """LossSpec.from_setting, the one place largesc-sim turns (loss rate,
        mean burst, seed, trace) into a model for the link and the baselines."""
        self.assertEqual(LossSpec.from_setting(0.1, 1.0, 5), LossSpec(0.1, "bernoulli", 1.0, seed=5))
        self.assertEqual(LossSpec.from_setting(0.1, 0.5, 5), LossSpec(0.1, "bernoulli", 1.0, seed=5))
        self.assertEqual(LossSpec.from_setting(0.2, 3.0, 6), LossSpec(0.2, "gilbert_elliott", 3.0, seed=6))
        self.assertEqual(LossSpec.from_setting(0.4, 2.0, 7, trace=[0, 1, 1]),
                         LossSpec(model="trace", trace=(0, 1, 1), seed=7))
        with self.assertRaisesRegex(ValueError, "needs trace"):
            LossSpec.from_setting(0.1, 1.0, 0, trace=())

    def test_controller_starts_from_the_nominal_loss(self):
        """The parameters of a model; a trace's own loss rate and mean burst
        (largesc-sim's trace statistics, traces.loss_stats)."""
        from gnuradio.largesc.traces import trace as T
        self.assertEqual(LossSpec(0.2, "gilbert_elliott", 3.0).nominal(), (0.2, 3.0))
        trace = (0, 1, 1, 0, 0, 1, 0, 0)
        st = T.loss_stats(trace)
        self.assertEqual(LossSpec(model="trace", trace=trace).nominal(), (st["loss_rate"], st["mean_burst"]))
        self.assertEqual(LossSpec(model="trace", trace=(0, 0)).nominal(), (0.0, 0.0))

    def test_config_takes_a_lossspec(self):
        self.assertEqual(link.LinkConfig().loss, LossSpec(0.1, "gilbert_elliott", 1.0, seed=0))
        with self.assertRaisesRegex(TypeError, "loss must be a LossSpec"):
            link.LinkConfig(loss=0.1).check()


if __name__ == "__main__":
    gr_unittest.run(qa_link)
