#!/usr/bin/env python3
#
# Copyright 2026 gr-largesc authors.
# SPDX-License-Identifier: GPL-3.0-or-later
#
"""The GMSK packet modem (packet_modem_tx / packet_modem_rx) carries real
LargeSC packets bit-exact at high SNR, loses some and delivers none corrupted at
low SNR and keeps working afterwards; the example flowgraphs compile with grcc,
phy_sim runs headless, and the USRP examples stop with a clear message when no
device answers. Fading channels (gr-channels fading_model) are reproducible
from the seed and lose more than AWGN; largesc-phy-sweep writes traces that
traces.py and the erasure channel read; FEC (gr-fec) round-trips exactly and
lowers loss; burst mode with silence between bursts (burst_slots, the sweep's
--tx-mode) puts every sample where it belongs and counts every packet. Noise is seeded; no timing assertions; margins are from
measurements quoted at each test."""

import glob
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import pmt
from gnuradio import blocks, gr, gr_unittest

from gnuradio import largesc
from gnuradio.largesc import phy
from gnuradio.largesc.traces import trace as T
from gnuradio.largesc.common.pacing import wait_for

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..")
EXAMPLES = os.path.join(ROOT, "examples")
SWEEP = os.path.join(ROOT, "apps", "largesc-phy-sweep")


def slotted_link(sent, ebn0_db, seed, channel="awgn", fec="none", probe_gain=False):
    """Packets one per 80 ms slot through a fresh simulated link (as the sweep
    runs a point); returns (0/1 fates in sent order, link_sim)."""
    sim = phy.link_sim(ebn0_db=ebn0_db, freq_offset_hz=500.0, epsilon=1.0001, seed=seed, channel=channel,
                       fec=fec, probe_gain=probe_gain, tx_kw=dict(frame_period=phy.FRAME_PERIOD))
    try:
        got = set(sim.send(sent))
    finally:
        sim.close()
    return np.array([0 if p in got else 1 for p in sent], np.uint8), sim


def heard_indices(msgs):
    """The rx_frame metadata of PDUs (packet_modem_rx's heard-frame index)."""
    return [int(pmt.to_uint64(pmt.dict_ref(pmt.car(m), pmt.intern("rx_frame"), pmt.PMT_NIL))) for m in msgs]


def make_packets(n, seed, k=8, r1=2, r2=0):
    core = largesc.packetizer_core(False)
    rng = np.random.default_rng(seed)
    return [core.packetize(f, rng.integers(0, 2048, size=max(k, r1, r2), dtype=np.int64), k,
                           r1 if f else 0, r2 if f > 1 else 0) for f in range(n)]


def grc_env():
    env = dict(os.environ)
    paths = [os.path.join(ROOT, "grc"), os.path.join(gr.prefix(), "share", "gnuradio", "grc", "blocks")]
    venv_blocks = os.path.join(sys.prefix, "share", "gnuradio", "grc", "blocks")
    if os.path.isdir(venv_blocks):
        paths.append(venv_blocks)
    env["GRC_BLOCKS_PATH"] = os.pathsep.join(paths)
    return env


def sweep_refuses(args):
    """largesc-phy-sweep's main with these arguments, run in this process (a
    refusal exits before any work, so no need for a process of its own):
    (exit status, stderr)."""
    import contextlib
    import io
    import runpy
    if "main" not in _SWEEP:
        _SWEEP.update(runpy.run_path(SWEEP, run_name="largesc_phy_sweep"))
    err, argv = io.StringIO(), sys.argv
    sys.argv = [SWEEP, *args]
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            rc = _SWEEP["main"]()
    except SystemExit as e:
        rc = e.code
    finally:
        sys.argv = argv
    return rc, err.getvalue()


_SWEEP = {}


def grcc(grc_files, out_dir):
    return subprocess.run([sys.executable, "/usr/bin/grcc", *grc_files, "-o", out_dir], env=grc_env(),
                          capture_output=True, text=True, timeout=300)


class qa_phy(gr_unittest.TestCase):

    def test_001_high_snr_bit_exact_in_order(self):
        sent = make_packets(300, seed=1)
        sim = phy.link_sim(ebn0_db=20.0, freq_offset_hz=500.0, epsilon=1.0001, seed=11)
        try:
            got = sim.send(sent)
        finally:
            sim.close()
        self.assertEqual(len(got), len(sent))
        self.assertEqual(got, sent)  # bit-exact, in order, count exact
        self.assertEqual(sim.rx.crc_failures(), 0)

    def test_001b_snr_in_metadata_and_crc_failures_reported(self):
        """Every delivered packet carries the soft-symbol SNR of its bits
        (snr_db, what a trace records), higher at a higher Eb/N0; every frame
        dropped by the CRC is reported on crc_failed with its SNR."""
        self.assertIsNone(phy.soft_snr_db(np.ones(15)))
        self.assertEqual(phy.soft_snr_db(np.ones(64)), 99.0)
        x = np.tile([1.0, -1.0, 3.0, -3.0], 16)            # |x|: mean 2, variance 1 -> 6.02 dB
        self.assertEqual(phy.soft_snr_db(x), 6.02)
        means = {}
        for ebn0 in (11.0, 20.0):
            sim = phy.link_sim(ebn0_db=ebn0, freq_offset_hz=500.0, epsilon=1.0001, seed=13)
            bad = sim.crc_sink
            try:
                sent = make_packets(150, seed=4)
                got = sim.send(sent)
                msgs = [sim.sink.get_message(i) for i in range(sim.sink.num_messages())]
                fails = [bad.get_message(i) for i in range(bad.num_messages())]
            finally:
                sim.close()
            self.assertEqual(len(msgs), len(got))
            snrs = [pmt.to_double(pmt.dict_ref(pmt.car(m), pmt.intern("snr_db"), pmt.PMT_NIL)) for m in msgs]
            means[ebn0] = float(np.mean(snrs))
            self.assertEqual(len(fails), sim.rx.crc_failures())
            self.assertEqual(len(fails), sim.rx.crc_failed_out())
            for f in fails:
                self.assertTrue(pmt.to_bool(pmt.dict_ref(pmt.car(f), pmt.intern("crc_failed"), pmt.PMT_F)))
                self.assertTrue(pmt.is_real(pmt.dict_ref(pmt.car(f), pmt.intern("snr_db"), pmt.PMT_NIL)))
            if ebn0 == 11.0:
                self.assertGreater(len(fails), 5)
            else:
                self.assertEqual((len(fails), len(got)), (0, len(sent)))
            # delivered and CRC-failed frames share one heard-frame count (rx_frame)
            self.assertEqual(sorted(heard_indices(msgs + fails)), list(range(sim.rx.frames_detected())))
        self.assertGreater(means[20.0], means[11.0] + 3.0, means)

    def test_001c_heard_frame_index_survives_fec(self):
        """With FEC the heard-frame index (rx_frame) and SNR ride through
        gr-fec's decoder: delivered and CRC-failed frames count 0, 1, 2, ..."""
        for fec, ebn0 in (("cc", 6.5), ("rep3", 9.0)):   # both delivered and CRC-failed frames (measured: 6 and 5 of 60 for cc)
            sim = phy.link_sim(ebn0_db=ebn0, freq_offset_hz=500.0, epsilon=1.0001, seed=13, fec=fec)
            try:
                got = sim.send(make_packets(60, seed=4))
                msgs = [sim.sink.get_message(i) for i in range(sim.sink.num_messages())]
                fails = [sim.crc_sink.get_message(i) for i in range(sim.crc_sink.num_messages())]
            finally:
                sim.close()
            self.assertEqual(len(msgs), len(got))
            self.assertGreater(len(fails), 0, fec)
            self.assertGreater(len(msgs), 0, fec)
            self.assertEqual(sorted(heard_indices(msgs + fails)), list(range(sim.rx.frames_detected())), fec)
            for m in msgs + fails:
                self.assertTrue(pmt.is_real(pmt.dict_ref(pmt.car(m), pmt.intern("snr_db"), pmt.PMT_NIL)))

    def test_002_low_snr_loses_never_corrupts_then_recovers(self):
        sim = phy.link_sim(ebn0_db=9.0, freq_offset_hz=500.0, epsilon=1.0001, seed=12)
        try:
            bad = make_packets(300, seed=2)
            got_bad = sim.send(bad)
            sim.set_ebn0(20.0)
            good = make_packets(200, seed=3)
            got_good = sim.send(good)
        finally:
            sim.close()
        index = {p: i for i, p in enumerate(bad)}
        self.assertGreater(len(bad) - len(got_bad), 0, "9 dB should lose packets")
        self.assertTrue(all(g in index for g in got_bad), "a corrupted packet got through")
        order = [index[g] for g in got_bad]
        self.assertEqual(order, sorted(set(order)))
        self.assertGreater(sim.rx.crc_failures(), 0)   # the CRC did the dropping
        self.assertEqual(got_good, good)               # receiver kept working

    def test_003_burst_mode_length_tags(self):
        sent = make_packets(5, seed=4)
        tb = gr.top_block()
        tx = phy.packet_modem_tx(mode="burst", preamble=8)
        snk = blocks.vector_sink_c()
        tb.connect(tx, snk)
        tb.start()
        for b in sent:
            tx.crc.to_basic_block()._post(pmt.intern("in"), pmt.cons(pmt.make_dict(), pmt.init_u8vector(len(b), list(b))))
        total = sum(phy.frame_bytes(len(b), preamble=8) for b in sent) * 8 * tx.sps
        wait_for(lambda: len(snk.data()) >= total, 30, "bursts not produced")
        tb.stop()
        tb.wait()
        tags = [t for t in snk.tags() if pmt.symbol_to_string(t.key) == phy.LENGTH_TAG]
        self.assertEqual(len(tags), len(sent))
        offset = 0
        for t, b in zip(tags, sent):
            n = phy.frame_bytes(len(b), preamble=8) * 8 * tx.sps
            self.assertEqual((t.offset, pmt.to_long(t.value)), (offset, n))
            offset += n

    def test_004_burst_mode_link(self):
        sent = make_packets(100, seed=5)
        sim = phy.link_sim(ebn0_db=20.0, freq_offset_hz=300.0, epsilon=1.0001, seed=13,
                           tx_kw=dict(mode="burst", preamble=8))
        try:
            got = sim.send(sent)
        finally:
            sim.close()
        self.assertEqual(got, sent)

    def test_005_continuous_mode_fills_gaps(self):
        # real-time idle fill: packets posted with gaps still arrive, and the
        # output between them is idle, not missing
        tb = gr.top_block()
        tx = phy.packet_modem_tx(mode="continuous")
        rx = phy.packet_modem_rx()
        snk = blocks.message_debug(False)
        tb.connect(tx, rx)
        tb.msg_connect(rx, "out", snk, "store")
        sent = make_packets(3, seed=6)
        tb.start()
        for b in sent:
            wait_for(lambda: tx.framer.idle_bytes() > 100 * (1 + sent.index(b)), 30, "no idle fill")
            tx.crc.to_basic_block()._post(pmt.intern("in"), pmt.cons(pmt.make_dict(), pmt.init_u8vector(len(b), list(b))))
        wait_for(lambda: snk.num_messages() == len(sent), 30, "packets not received")
        tb.stop()
        tb.wait()
        got = [bytes(pmt.u8vector_elements(pmt.cdr(snk.get_message(i)))) for i in range(snk.num_messages())]
        self.assertEqual(got, sent)

    @classmethod
    def setUpClass(cls):
        # one grcc run for every example (GRC's block library loads once)
        cls.out = tempfile.TemporaryDirectory()
        cls.grc_files = sorted(glob.glob(os.path.join(EXAMPLES, "*.grc")))
        cls.grcc = grcc(cls.grc_files, cls.out.name)

    @classmethod
    def tearDownClass(cls):
        cls.out.cleanup()

    def test_006_examples_compile(self):
        names = {os.path.basename(f) for f in self.grc_files}
        self.assertTrue({"phy_sim.grc", "usrp_tx.grc", "usrp_rx.grc"} <= names)
        self.assertEqual(self.grcc.returncode, 0, self.grcc.stdout + self.grcc.stderr)
        for f in self.grc_files:
            with self.subTest(grc=os.path.basename(f)):
                self.assertIn(f"Generating: {self.out.name}", self.grcc.stdout + self.grcc.stderr)
                gen = [ln for ln in (self.grcc.stdout + self.grcc.stderr).splitlines()
                       if ln.startswith(">>> Loading:") and ln.endswith(os.path.basename(f))]
                self.assertTrue(gen, f"grcc did not load {f}")

    def generated(self, name):
        path = os.path.join(self.out.name, name + ".py")
        if not os.path.exists(path):
            self.fail(f"grcc did not generate {name}.py: " + self.grcc.stdout + self.grcc.stderr)
        return path

    def test_007_phy_sim_headless(self):
        r = subprocess.run([sys.executable, self.generated("phy_sim"), "-n", "60", "-e", "20"],
                           capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
        self.assertEqual(r.returncode, 0, r.stderr[-2000:])
        summary = json.loads([ln for ln in r.stdout.splitlines() if ln.startswith("{")][-1])
        self.assertEqual(summary["packets_sent"], 60)
        self.assertEqual(summary["packets_delivered"], 60)
        self.assertEqual(summary["delivered_exact"], 60)
        self.assertEqual(summary["depacketizer_packets_in"], 60)

    def test_007b_sim_link_headless(self):
        """The sim_link example (LargeSC TX -> erasure channel -> LargeSC RX,
        feedback closed, untrained codec) runs headless to the end and writes
        0.08 s of audio per frame up to the last frame the receiver heard of."""
        import soundfile as sf
        frames = 25
        out = os.path.join(self.out.name, "sim_link_out.wav")
        r = subprocess.run([sys.executable, self.generated("sim_link_nogui"), "--max-frames", str(frames),
                            "--output-file", out, "--weights", "random:0"],
                           capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
        self.assertEqual(r.returncode, 0, r.stderr[-2000:])
        # the example's channel: Gilbert-Elliott, loss 0.1, mean burst 2, seed 1
        lost = largesc.loss_model.gilbert_elliott_mean(0.1, 2.0, 1).pattern(frames)
        last_heard = int(np.nonzero(lost == 0)[0].max())
        info = sf.info(out)
        self.assertEqual(info.samplerate, 16000)
        self.assertEqual(info.frames, (last_heard + 1) * 1280)

    def test_008_usrp_examples_no_device(self):
        procs = {name: subprocess.Popen([sys.executable, self.generated(name), "-a", "serial=largesc-qa-none"],
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                        stdin=subprocess.DEVNULL)
                 for name in ("usrp_tx", "usrp_rx")}
        for name, p in procs.items():
            with self.subTest(example=name):
                _, err = p.communicate(timeout=120)
                self.assertNotEqual(p.returncode, 0)
                self.assertIn("check the device arguments 'serial=largesc-qa-none'", err)

    def test_008b_phy_sweep_checks_arguments(self):
        """largesc-phy-sweep refuses impossible settings before any work, by name."""
        for args, msg in ((["--packets", "0"], "--packets must be an integer in 1..1000000, got 0"),
                          (["--ebn0", "20:6:1"], "a range needs start <= stop and step > 0"),
                          (["--ebn0", "abc"], "--ebn0 'abc': give"),
                          (["--ebn0", "500"], "in -20..60 dB"),
                          (["--k", "40"], "--k must be an integer in 1..32, got 40"),
                          (["--samp-rate", "0"], "--samp-rate must be a finite number > 0"),
                          (["--samp-rate", "15000"], "must be an integer >= 2"),
                          (["--speech", "--budget", "100"], "--budget: budget 100 bit/s is outside LargeSC's 550..2060")):
            with self.subTest(args=args):
                rc, err = sweep_refuses(args)
                self.assertEqual(rc, 2, err[-500:])
                self.assertIn(msg, err)
                self.assertNotIn("Traceback", err)

    def test_009_open_usrp_source_message(self):
        with self.assertRaises(phy.USRPNotFound) as cm:
            phy.open_usrp_source("serial=largesc-qa-none")
        self.assertIn("uhd_find_devices", str(cm.exception))

    def test_010_rates(self):
        self.assertEqual(phy.samples_per_symbol(80000, 10000), 8)
        with self.assertRaises(ValueError):
            phy.samples_per_symbol(80000, 9600)
        self.assertEqual(phy.frame_bytes(17), 2 + 8 + 4 + 17 + 4 + 2)
        self.assertAlmostEqual(phy.noise_voltage(10 * np.log10(8), 8), 1.0)


class qa_sample_guard(gr_unittest.TestCase):
    """The receiver's first block (C++ sample_guard): exact outputs and counts."""

    def test_exact_outputs_and_counts(self):
        inf, nan = float("inf"), float("nan")
        lim = 1e15
        x = np.array([1 + 2j, complex(inf, 0), complex(0, nan), complex(-inf, inf), 3e15 + 4e15j,
                      complex(0.6e15, 0.6e15), complex(-2e38, 0), 0.9e15 + 0j, -1e-30 + 1e-30j], np.complex64)
        # NaN/inf -> 0; magnitude 5e15 and 2e38 -> 1e15, phase kept; under the limit (even with a
        # part over limit/2) untouched
        want = np.array([1 + 2j, 0, 0, 0, 0.6e15 + 0.8e15j, complex(0.6e15, 0.6e15),
                         -1e15 + 0j, 0.9e15 + 0j, -1e-30 + 1e-30j], np.complex64)
        tb = gr.top_block()
        g = largesc.largesc_python.sample_guard(lim)
        snk = blocks.vector_sink_c()
        tb.connect(blocks.vector_source_c(x.tolist()), g, snk)
        tb.run()
        got = np.array(snk.data(), np.complex64)
        np.testing.assert_allclose(got, want, rtol=1e-6)
        self.assertEqual((g.samples_zeroed(), g.samples_limited()), (3, 2))
        self.assertEqual(sum(g.rejections().values()), 2)      # one work call changed samples, two ways
        for bad in (0, -1.0, float("nan"), 1e39, "1e15", True):
            with self.assertRaisesRegex(ValueError, "sample_guard: limit must be a magnitude > 0"):
                largesc.largesc_python.sample_guard(bad)


class qa_phy_scrambler(gr_unittest.TestCase):
    """Frame format 2: the coded packet + CRC are scrambled (docs/phy.md,
    "Scrambler"), so payloads without transitions cross a noiseless link;
    scramble=False is format 1 (no interop between the two)."""

    def test_sequence_and_round_trip(self):
        # the DVB-S energy-dispersal PRBS (1 + x^14 + x^15, initial 100101010000000): its first bytes
        self.assertEqual(bytes(phy.SCRAMBLER_BYTES[:8]).hex(), "03f6083430b8a393")
        self.assertEqual(len(phy.SCRAMBLER_BYTES), phy.MAX_FRAME_BYTES)
        b = np.arange(300, dtype=np.uint8)
        self.assertEqual(bytes(phy.scramble_bytes(phy.scramble_bytes(b))), bytes(b))
        soft = np.where(np.unpackbits(phy.scramble_bytes(b)) == 1, 0.8, -0.8).astype(np.float32)
        self.assertEqual(bytes(np.packbits(phy.descramble_soft(soft) >= 0)), bytes(b))

    def test_payloads_without_transitions_cross(self):
        """All-zero and all-one packets of 40 and 100 bytes (lost, with the
        packet after them, without the scrambler) and the packets around them
        arrive exactly, with and without FEC."""
        rng = np.random.default_rng(8)
        sent = []
        for n in (40, 100):
            for fill in (0x00, 0xFF, 0x55, 0x33):
                sent += [bytes([fill] * n), bytes(rng.integers(0, 256, 17, dtype=np.uint8))]
        for fec in phy.FEC_CODES:
            with self.subTest(fec=fec):
                sim = phy.link_sim(ebn0_db=40.0, seed=5, fec=fec)
                try:
                    got = sim.send(sent)
                finally:
                    sim.close()
                self.assertEqual(got, sent)

    def test_format_is_a_parameter(self):
        sent = make_packets(20, seed=9)
        for tx_s, rx_s in ((False, False), (True, False), (False, True)):
            with self.subTest(tx=tx_s, rx=rx_s):
                sim = phy.link_sim(ebn0_db=40.0, seed=5, tx_kw=dict(scramble=tx_s), scramble=rx_s)
                try:
                    got = sim.send(sent)
                    heard = sim.rx.frames_detected()
                finally:
                    sim.close()
                self.assertEqual(heard, len(sent))
                self.assertEqual(got, sent if tx_s == rx_s else [])


class qa_phy_fading(gr_unittest.TestCase):
    """Fading channels, traces from the sweep."""

    def test_sweep_checks_channel_arguments(self):
        """The new options are refused before any work, by name, with what is allowed."""
        for args, msg in ((["--channel", "foo"], "--channel 'foo': give a comma list of awgn, rayleigh, rician"),
                          (["--channel", "awgn,awgn"], "each once"),
                          (["--fec", "ldpc"], "--fec 'ldpc': give a comma list of none, cc, rep3"),
                          (["--doppler", "10"], "--doppler applies to the fading channels (rayleigh, rician)"),
                          (["--channel", "rayleigh", "--doppler", "5000"],
                           "--doppler: the Doppler must be > 0 and at most a tenth of the bit rate (1000 Hz"),
                          (["--channel", "rician", "--fd", "0"], "--fd: the Doppler must be > 0"),
                          (["--channel", "rayleigh", "--doppler", "5", "--fd", "0.001"], "give the Doppler once"),
                          (["--channel", "rayleigh", "--k-factor", "6"], "--k-factor applies to the rician channel only"),
                          (["--channel", "rician", "--k-factor", "40"], "--k-factor must be in -10..30 dB, got 40"),
                          (["--timing-drift", "-1"], "--timing-drift must be >= 0 and < 1000 ppm, got -1"),
                          (["--freq-drift", "nan"], "--freq-drift must be a finite number"),
                          (["--bit-rate", "4000", "--fec", "none,rep3"],
                           "a frame of 79 bytes (rep3) takes 158.0 ms on air, more than the 80 ms between packets")):
            with self.subTest(args=args):
                rc, err = sweep_refuses(args)
                self.assertEqual(rc, 2, err[-500:])
                self.assertIn(msg, err)
                self.assertNotIn("Traceback", err)
                self.assertNotIn("rate plan", err)   # refused before any work

    def test_fading_point_reproducible_from_seed(self):
        """Same seed: the same fates and fades, packet for packet; another seed: others."""
        sent = make_packets(150, seed=21)
        a, sa = slotted_link(sent, 16.0, seed=1, channel="rayleigh", probe_gain=True)
        b, sb = slotted_link(sent, 16.0, seed=1, channel="rayleigh", probe_gain=True)
        c, sc = slotted_link(sent, 16.0, seed=2, channel="rayleigh", probe_gain=True)
        ga, gb, gc = (s.packet_gains_db(len(sent), len(sent[-1])) for s in (sa, sb, sc))
        np.testing.assert_array_equal(a, b)
        np.testing.assert_allclose(ga, gb, rtol=1e-6)   # volk's kernels round by buffer alignment
        self.assertGreater(a.sum(), 0)
        self.assertFalse(np.array_equal(a, c))
        self.assertFalse(np.allclose(ga, gc))
        # the fading has unit mean power (Eb/N0 is the average over the fades)
        # and really fades: 150 packets x 80 ms = 12 s at 10 Hz Doppler
        self.assertTrue(np.all(np.isfinite(ga)))
        self.assertLess(abs(10 * np.log10(np.mean(10 ** (ga / 10)))), 2.0)
        self.assertLess(ga.min(), -10.0)

    def test_drifts_tracked_at_high_snr(self):
        """Carrier drift +-300 Hz (cfo_model) and sample clock drift +-300 ppm
        (sro_model) on top of the fixed offsets: the receiver's AFC and timing
        loop follow, every packet arrives bit-exact; impossible drifts are refused."""
        sent = make_packets(150, seed=23)
        sim = phy.link_sim(ebn0_db=25.0, freq_offset_hz=500.0, epsilon=1.0001, seed=3, freq_drift_hz=300.0,
                           timing_drift_ppm=300.0, tx_kw=dict(frame_period=phy.FRAME_PERIOD))
        try:
            got = sim.send(sent)
        finally:
            sim.close()
        self.assertEqual(got, sent)
        for kw, msg in ((dict(timing_drift_ppm=1000.0), "timing drift must be in 0..1000 ppm"),
                        (dict(freq_drift_hz=-1.0), "frequency drift must be in 0..bit rate / 4"),
                        (dict(channel="rayleigh", doppler_hz=0.0), "Doppler must be > 0"),
                        (dict(channel="nakagami"), "channel must be one of awgn, rayleigh, rician")):
            with self.subTest(**kw), self.assertRaisesRegex(ValueError, msg):
                phy.link_sim(**kw)

    def test_rayleigh_loses_more_than_awgn(self):
        """At 20 dB Eb/N0 AWGN loses nothing while Rayleigh fading (10 Hz
        Doppler) is in a deep fade part of the time. Measured over 300
        packets, seeds 1-4: AWGN 0, Rayleigh 56-65 (19-22 %); the margins are
        half that."""
        sent = make_packets(300, seed=22)
        awgn, _ = slotted_link(sent, 20.0, seed=1)
        ray, _ = slotted_link(sent, 20.0, seed=1, channel="rayleigh")
        self.assertLessEqual(int(awgn.sum()), 1)
        self.assertGreaterEqual(int(ray.sum()), 30)

    def test_sweep_trace_reads_back_and_replays(self):
        """largesc-phy-sweep --trace-dir: each point's fates as a trace that
        traces.py reads (header names channel, Eb/N0, SIMULATED) and the
        erasure channel replays packet for packet; rate columns include the
        FEC exactly."""
        with tempfile.TemporaryDirectory() as d:
            out = os.path.join(d, "rows.jsonl")
            p = subprocess.run([sys.executable, SWEEP, "--channel", "rayleigh", "--fec", "none,cc", "--ebn0", "16",
                                "--packets", "60", "--trace-dir", os.path.join(d, "tr"), "--out", out],
                               capture_output=True, text=True, timeout=300)
            self.assertEqual(p.returncode, 0, p.stderr[-2000:])
            rows = [json.loads(x) for x in open(out)]
            self.assertEqual([(r["channel"], r["fec"], r["ebn0_db"]) for r in rows],
                             [("rayleigh", "none", 16.0), ("rayleigh", "cc", 16.0)])
            for r, coded in zip(rows, (21, 44)):
                self.assertEqual((r["packet_bytes"], r["coded_bytes"]), (17, coded))
                self.assertEqual(r["bytes_on_air"], phy.frame_bytes(17, fec=r["fec"]))
                self.assertEqual(r["on_air_bps_at_12_5"], r["bytes_on_air"] * 8 * 12.5)
                path = os.path.join(d, "tr", "phy_rayleigh_10hz%s_16db.trace" % ("" if r["fec"] == "none" else "_cc"))
                self.assertEqual(r["trace"], path)
                t = T.read_trace(path)
                self.assertEqual(len(t), 60)
                self.assertEqual(int(t.fates.sum()), r["lost"])
                self.assertEqual(t.stats()["bursts"], r["bursts"])
                self.assertIn("SIMULATED", t.header["source"])
                self.assertIn("Rayleigh fading, Doppler 10 Hz", t.header["source"])
                self.assertEqual((t.header["channel"], t.header["ebn0_db"], t.header["fec"]),
                                 ("rayleigh", "16", r["fec"]))
                self.assertTrue(np.all(np.isfinite(t.snr_db)))      # per-packet Eb/N0 with the fade
                self.assertEqual(np.isfinite(t.arrival_s).tolist(), (t.fates == 0).tolist())
                # the erasure channel's trace mode drops exactly the trace's packets
                self.assertEqual(erasure_replay(path, 60), [i for i in range(60) if t.fates[i] == 0])
            self.assertIn("rate plan", p.stderr)
            self.assertRegex(p.stderr, r"\n  none +21 +37 +29\.6 ms +3700 +37 %\n  cc +44 +60 +48\.0 ms +6000 +60 %")


class qa_phy_fec(gr_unittest.TestCase):
    """Forward error correction in the packet modem (gr-fec async encoder/decoder)."""

    def test_round_trip_exact_without_noise(self):
        """Every length from 1 byte up, LargeSC packets included, comes back
        bit-exact through TX (CRC, FEC encoder) -> modem -> RX (soft decoder, CRC)."""
        rng = np.random.default_rng(31)
        sent = [bytes(rng.integers(0, 256, n, dtype=np.uint8)) for n in range(1, 41)] + make_packets(20, seed=32)
        for fec in ("cc", "rep3"):
            with self.subTest(fec=fec):
                sim = phy.link_sim(ebn0_db=60.0, freq_offset_hz=500.0, epsilon=1.0001, seed=33, fec=fec)
                try:
                    got = sim.send(sent)
                finally:
                    sim.close()
                self.assertEqual(got, sent)
                self.assertEqual(sim.rx.crc_failures(), 0)

    def test_fec_lowers_loss(self):
        """At 11 dB Eb/N0 (AWGN, per bit on air) the convolutional code loses far
        fewer packets. Measured over 300 packets, seeds 1-4: no FEC 133-144
        lost, cc 8-22 (what it still loses are mostly missed access codes and
        headers, which stay uncoded)."""
        sent = make_packets(300, seed=34)
        none, _ = slotted_link(sent, 11.0, seed=1)
        cc, sim = slotted_link(sent, 11.0, seed=1, fec="cc")
        self.assertGreaterEqual(int(none.sum()), 90)
        self.assertLessEqual(int(cc.sum()), 60)
        self.assertEqual(sim.rx.packets_out(), 300 - int(cc.sum()))

    def test_rate_tables_count_the_fec(self):
        """frame_bytes / fec_coded_bytes are the bytes the transmitter puts on air."""
        self.assertEqual([phy.fec_coded_bytes(21, f) for f in phy.FEC_CODES], [21, 44, 63])
        self.assertEqual([phy.frame_bytes(17, fec=f) for f in phy.FEC_CODES], [37, 60, 79])
        self.assertEqual(phy.frame_bytes(30, preamble=8, fec="cc"), 8 + 8 + 4 + 2 * (34 + 1) + 2)
        with self.assertRaisesRegex(ValueError, "fec must be one of none, cc, rep3"):
            phy.frame_bytes(17, fec="ldpc")
        with self.assertRaisesRegex(ValueError, "fec must be one of none, cc, rep3"):
            phy.packet_modem_rx(fec="turbo")
        sent = make_packets(4, seed=35)   # 9, 15, 17, 17 bytes
        for fec in phy.FEC_CODES:
            for period in (0.0, phy.FRAME_PERIOD):
                with self.subTest(fec=fec, frame_period=period):
                    tb = gr.top_block()
                    tx = phy.packet_modem_tx(fec=fec, frame_period=period)
                    snk = blocks.vector_sink_c()
                    tb.connect(tx, snk)
                    tb.start()
                    for b in sent:
                        tx.crc.to_basic_block()._post(pmt.intern("in"),
                                                      pmt.cons(pmt.make_dict(), pmt.init_u8vector(len(b), list(b))))
                    wait_for(lambda: tx.packets_in() == len(sent), 30, "frames not taken")
                    tb.stop()
                    tb.wait()
                    per = [tx.frame_bytes(len(b)) for b in sent]
                    self.assertEqual(per, [phy.frame_bytes(len(b), fec=fec) for b in sent])
                    if period:
                        per = [max(p, 100) for p in per]   # 80 ms at 10 kbit/s = 100 bytes per slot
                    self.assertEqual(tx.bytes_out(), phy.STARTUP_BYTES + sum(per))


class qa_phy_burst(gr_unittest.TestCase):
    """Burst mode with silence between bursts (link_sim burst_period, largesc-phy-sweep --tx-mode)."""

    def test_burst_slots_places_each_burst_in_its_slot(self):
        """burst_slots: a slot of silence first, each burst at the start of its slot, zeros to
        the slot's end, a burst longer than its slot whole; untagged input and a bad length tag
        are dropped and counted; the last slot's zeros come out after the input has ended."""
        tag = pmt.intern(phy.LENGTH_TAG)

        def t(offset, n):
            return gr.tag_utils.python_to_tag((offset, tag, pmt.from_long(n), pmt.intern("qa")))

        x = np.arange(1, 26).astype(np.complex64)     # 2 untagged, A 5, B 3, 1 bad tag, C 12, D 2
        tags = [t(2, 5), t(7, 3), t(10, 0), t(11, 12), t(23, 2)]
        tb = gr.top_block()
        slots = phy.burst_slots(8, lead=8)
        snk = blocks.vector_sink_c()
        tb.connect(blocks.vector_source_c(x.tolist(), False, 1, tags), slots, snk)
        tb.run()
        z = [0j] * 8
        want = z + list(x[2:7]) + z[:3] + list(x[7:10]) + z[:5] + list(x[11:23]) + list(x[23:25]) + z[:6]
        self.assertEqual(list(snk.data()), want)
        self.assertEqual((slots.burst_starts, slots.zeros, slots.last_burst_end),
                         ([8, 16, 24, 36], 8 + 3 + 5 + 6, 38))
        self.assertEqual((slots.untagged_samples, slots.bad_tags), (3, 1))
        with self.assertRaisesRegex(ValueError, "slot_samples"):
            phy.burst_slots(0)
        with self.assertRaisesRegex(ValueError, "burst_period applies to tx_kw mode 'burst' only"):
            phy.link_sim(burst_period=phy.FRAME_PERIOD)

    def test_link_hears_silence_between_bursts(self):
        """link_sim(burst_period=...): the receiver takes in the bursts and the silence
        between them, sample for sample (one slot of silence before the first burst)."""
        sent = make_packets(10, seed=41)
        sim = phy.link_sim(ebn0_db=60.0, freq_offset_hz=0.0, seed=4, burst_period=phy.FRAME_PERIOD,
                           tx_kw=dict(mode="burst", preamble=8))
        try:
            got = sim.send(sent)
        finally:
            sim.close()
        self.assertEqual(got, sent)
        slot = int(round(phy.FRAME_PERIOD * phy.DEFAULT_SAMP_RATE))            # 6400
        burst = [phy.frame_bytes(len(b), preamble=8) * 8 * sim.sps for b in sent]
        self.assertEqual(sim.slots.burst_starts, [slot * (k + 1) for k in range(10)])
        self.assertEqual(sim.slots.zeros, 11 * slot - sum(burst))
        self.assertEqual(sim.slots.produced, 11 * slot)
        self.assertGreaterEqual(sim.rx.samples_in(), sim.slots.last_burst_end - 4 * sim.sps)

    def test_sweep_runs_both_modes_side_by_side(self):
        """--tx-mode continuous,burst: per point one row per mode over the same packets and seed,
        every packet counted (sent = delivered + lost), the burst rows with their silence
        (samples of zeros between bursts) and their own traces; bad --tx-mode refused by name."""
        n = 12
        with tempfile.TemporaryDirectory() as d:
            out = os.path.join(d, "rows.jsonl")
            p = subprocess.run([sys.executable, SWEEP, "--tx-mode", "continuous,burst", "--ebn0", "14",
                                "--packets", str(n), "--trace-dir", os.path.join(d, "tr"), "--out", out],
                               capture_output=True, text=True, timeout=300)
            self.assertEqual(p.returncode, 0, p.stderr[-2000:])
            with open(out) as f:
                rows = [json.loads(x) for x in f]
            self.assertEqual([(r["ebn0_db"], r["tx_mode"]) for r in rows], [(14.0, "continuous"), (14.0, "burst")])
            self.assertRegex(p.stderr, r"\n  none +continuous +21 +37 +29\.6 ms +3700 +37 %"
                                       r"\n  none +burst +21 +43 +34\.4 ms +4300 +43 %")
            sent = make_packets(n, seed=1000)   # the sweep's packets
            burst = sum(phy.frame_bytes(len(b), preamble=8) * 64 for b in sent)
            for r in rows:
                self.assertEqual(r["packets_sent"], n)
                self.assertEqual(r["delivered_exact"] + r["lost"], n)
                self.assertEqual(r["delivered_corrupted"], 0)
                self.assertEqual(r["bytes_on_air"], 43 if r["tx_mode"] == "burst" else 37)
                name = "phy_awgn%s_%gdb.trace" % ("_burst" if r["tx_mode"] == "burst" else "", r["ebn0_db"])
                self.assertEqual(r["trace"], os.path.join(d, "tr", name))
                self.assertEqual(int(T.read_trace(r["trace"]).fates.sum()), r["lost"])
                if r["tx_mode"] == "burst":
                    self.assertEqual((r["bursts_on_air"], r["preamble_bytes"]), (n, 8))
                    self.assertEqual(r["burst_silence_samples"], (n + 1) * 6400 - burst)
                else:
                    self.assertNotIn("burst_silence_samples", r)
        for args, msg in ((["--tx-mode", "burst,burst"], "--tx-mode 'burst,burst': give a comma list of "
                           "continuous, burst, each once"),
                          (["--burst-preamble", "0"], "--burst-preamble must be an integer in 1..64 bytes, got 0")):
            with self.subTest(args=args):
                p = subprocess.run([sys.executable, SWEEP, *args], capture_output=True, text=True, timeout=120)
                self.assertEqual(p.returncode, 2, p.stderr[-500:])
                self.assertIn(msg, p.stderr)
                self.assertNotIn("rate plan", p.stderr)


def erasure_replay(path, n):
    """Indices of n PDUs that erasure_channel(model='trace', trace_file=path) lets through."""
    tb = gr.top_block()
    chan = largesc.erasure_channel("trace", trace_file=path, trace_repeat=False)
    snk = blocks.message_debug(False)
    tb.msg_connect(chan, "out", snk, "store")
    tb.start()
    for i in range(n):
        chan._post(pmt.intern("in"), pmt.cons(pmt.make_dict(), pmt.init_u8vector(1, [i])))
    wait_for(lambda: chan.packets_in() == n, 30, "erasure channel stalled")
    wait_for(lambda: snk.num_messages() == chan.packets_passed(), 30, "sink stalled")
    tb.stop()
    tb.wait()
    return [pmt.u8vector_elements(pmt.cdr(snk.get_message(i)))[0] for i in range(snk.num_messages())]


if __name__ == "__main__":
    gr_unittest.run(qa_phy)
