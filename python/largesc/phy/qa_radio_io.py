#!/usr/bin/env python3
#
# Copyright 2026 gr-largesc authors.
# SPDX-License-Identifier: GPL-3.0-or-later
#
"""radio_io: the ZMQ radio carries every sample, exactly, from a radio_sink
to a radio_source; 'uhd' without a device stops with the arguments to check;
impossible parameters are refused by name; the WAV speech ends round-trip the
samples; node_links is the documented port and frequency plan; the two-radio
and voice USRP example flowgraphs compile, and stop with a clear message when
asked for a USRP that is not there."""

import glob
import os
import socket
import subprocess
import sys
import tempfile

import numpy as np
import soundfile as sf
from gnuradio import blocks, gr, gr_unittest

from gnuradio.largesc import phy
from gnuradio.largesc.common.pacing import wait_for

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from qa_phy import EXAMPLES, grcc  # noqa: E402  (one grcc environment for the QA)

NO_DEVICE = "serial=largesc-qa-none"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class qa_radio_io(gr_unittest.TestCase):

    def test_node_links(self):
        self.assertEqual(phy.node_links("a"), dict(tx_address="tcp://127.0.0.1:5551", rx_address="tcp://127.0.0.1:5554",
                                                   tx_freq=433.6e6, rx_freq=434.2e6))
        self.assertEqual(phy.node_links("b", "10.0.0.7", 6000, 915e6, 916e6),
                         dict(tx_address="tcp://10.0.0.7:6003", rx_address="tcp://10.0.0.7:6002",
                              tx_freq=916e6, rx_freq=915e6))
        # the air's links, in the order node A -> air -> B -> air -> A
        self.assertEqual([phy.zmq_address(k) for k in phy.ZMQ_LINKS],
                         [f"tcp://127.0.0.1:{p}" for p in (5551, 5552, 5553, 5554)])
        for args, msg in ((("c",), "node must be one of 'a', 'b', got 'c'"),
                          (("a", "127.0.0.1", 80), "port_base must be an integer in 1024..65531, got 80"),
                          (("a", "tcp://x"), "host must be a host name or IP address"),
                          (("a", "127.0.0.1", 5550, 433e6, 433e6), "freq_a and freq_b must differ"),
                          (("b", "127.0.0.1", 5550, -1.0), "freq_a must be a finite number > 0")):
            with self.subTest(args=args):
                with self.assertRaises(ValueError) as cm:
                    phy.node_links(*args)
                self.assertIn(msg, str(cm.exception))

    def test_radio_samp_rate(self):
        self.assertEqual(phy.radio_samp_rate("zmq"), 80000.0)
        self.assertEqual(phy.radio_samp_rate("uhd"), 250000.0)
        self.assertEqual(phy.radio_samp_rate("uhd", 500000), 500000.0)
        with self.assertRaises(ValueError) as cm:
            phy.radio_samp_rate("uhd", -1)
        self.assertIn("samp_rate must be a finite number >= 0, got -1", str(cm.exception))

    def test_zmq_loopback_counts_every_sample(self):
        n = 50000
        rng = np.random.default_rng(3)
        x = (rng.standard_normal(n) + 1j * rng.standard_normal(n)).astype(np.complex64)
        addr = f"tcp://127.0.0.1:{free_port()}"
        rx_tb, tx_tb = gr.top_block("qa_rx"), gr.top_block("qa_tx")
        src = phy.radio_source("zmq", addr)
        got = blocks.vector_sink_c()
        rx_tb.connect(src, got)
        snk = phy.radio_sink("zmq", addr)
        tx_tb.connect(blocks.vector_source_c(x.tolist()), snk)
        rx_tb.start()
        tx_tb.start()
        try:
            wait_for(lambda: len(got.data()) >= n, 20, "samples did not arrive", progress=lambda: len(got.data()))
        finally:
            tx_tb.stop()
            tx_tb.wait()
            rx_tb.stop()
            rx_tb.wait()
        self.assertEqual(snk.samples_in(), n)
        self.assertEqual(src.samples_out(), n)
        np.testing.assert_array_equal(np.array(got.data(), np.complex64), x)

    def test_parameter_errors_name_the_parameter(self):
        cases = ((phy.radio_source, dict(radio="sdr"), "radio must be one of 'zmq', 'uhd', got 'sdr'"),
                 (phy.radio_sink, dict(samp_rate=0), "samp_rate must be a finite number > 0, got 0"),
                 (phy.radio_sink, dict(gain=-3.0), "gain must be a finite number >= 0, got -3.0"),
                 (phy.radio_source, dict(center_freq=float("nan")), "center_freq must be a finite number > 0"),
                 (phy.radio_source, dict(address="localhost:5554"), "address must be a ZeroMQ endpoint"),
                 (phy.radio_sink, dict(device_args=None), "device_args must be a string, got None"),
                 (phy.speech_source, dict(source="mic"), "source must be one of 'wav', 'card', got 'mic'"),
                 (phy.speech_source, dict(wav_file="/nonexistent/talk.wav"), "wav_file: no such file"),
                 (phy.speech_source, dict(wav_file=__file__), "wav_file: cannot read"),
                 (phy.speech_sink, dict(wav_file="/nonexistent/heard.wav"), "wav_file: cannot write"),
                 (phy.speech_sink, dict(sample_rate=16000.5), "sample_rate must be an integer in 1000..192000"))
        for make, kw, msg in cases:
            with self.subTest(block=make.__name__, **kw):
                with self.assertRaises(ValueError) as cm:
                    make(**kw)
                self.assertIn(msg, str(cm.exception))

    def test_uhd_without_device(self):
        for make in (phy.radio_source, phy.radio_sink):
            with self.subTest(block=make.__name__):
                with self.assertRaises(phy.USRPNotFound) as cm:
                    make(radio="uhd", device_args=NO_DEVICE, samp_rate=phy.USRP_SAMP_RATE)
                self.assertIn(f"check the device arguments {NO_DEVICE!r}", str(cm.exception))
                self.assertIn("uhd_find_devices", str(cm.exception))

    def test_wav_speech_round_trip(self):
        """A 16 kHz file played once comes out of the WAV sink sample for
        sample (both 16-bit PCM; GNU Radio's WAV blocks read by 1/32768 and
        write by 32767: one step of rounding); an 8 kHz file is resampled to
        twice as many samples."""
        rng = np.random.default_rng(5)
        x = np.round(rng.uniform(-0.5, 0.5, 3200) * 32767) / 32767
        with tempfile.TemporaryDirectory() as d:
            talk, heard = os.path.join(d, "talk.wav"), os.path.join(d, "heard.wav")
            sf.write(talk, x, 16000, subtype="PCM_16")
            tb = gr.top_block()
            src = phy.speech_source("wav", talk, 16000, repeat=False)
            snk = phy.speech_sink("wav", heard, 16000)
            tb.connect(src, snk)
            tb.run()
            self.assertEqual((src.samples_out(), snk.samples_in()), (3200, 3200))
            y, rate = sf.read(heard)
            self.assertEqual(rate, 16000)
            self.assertLessEqual(np.max(np.abs(np.round(y * 32767) - np.round(x * 32767))), 1)
            self.assertGreater(np.max(np.abs(x)), 0.4)
            tone = 0.5 * np.sin(2 * np.pi * 500 * np.arange(1600) / 8000)   # 500 Hz at 8 kHz
            sf.write(talk, tone, 8000, subtype="PCM_16")
            tb = gr.top_block()
            src = phy.speech_source("wav", talk, 16000, repeat=False)
            got = blocks.vector_sink_f()
            tb.connect(src, got)
            tb.run()
            y = np.array(got.data())
            # the polyphase filter keeps its history: taps per phase - 1 input samples stay inside
            history = len(src.resampler.taps()) // 2 - 1
            self.assertEqual(len(y), 2 * (1600 - history))
            spectrum = np.abs(np.fft.rfft(y[200:] * np.hanning(len(y) - 200)))
            self.assertEqual(round(np.argmax(spectrum) * 16000 / (len(y) - 200) / 50) * 50, 500)


class qa_radio_examples(gr_unittest.TestCase):
    """examples/two_radio/*.grc and the voice USRP examples compile; asked
    for a USRP that is not there they stop before building a block with the
    arguments to check."""

    @classmethod
    def setUpClass(cls):
        cls.out = tempfile.TemporaryDirectory()
        cls.grc_files = sorted(glob.glob(os.path.join(EXAMPLES, "two_radio", "*.grc"))) + [
            os.path.join(EXAMPLES, f"usrp_voice_{d}.grc") for d in ("tx", "rx")]
        cls.grcc = grcc(cls.grc_files, cls.out.name)

    @classmethod
    def tearDownClass(cls):
        cls.out.cleanup()

    def test_compile(self):
        self.assertEqual(self.grcc.returncode, 0, self.grcc.stdout + self.grcc.stderr)
        self.assertEqual(sorted(os.listdir(self.out.name)),
                         ["two_radio_air.py", "two_radio_node.py", "usrp_voice_rx.py", "usrp_voice_tx.py"])

    def test_node_defaults_are_the_plan(self):
        """The node flowgraph's parameters default to node_links' plan (GRC
        parameters take literals only, so the numbers are written twice)."""
        import yaml
        with open(os.path.join(EXAMPLES, "two_radio", "node.grc")) as f:
            g = yaml.safe_load(f)
        values = {b["name"]: b["parameters"]["value"] for b in g["blocks"] if b["id"] == "parameter"}
        self.assertEqual((float(values["freq_a"]), float(values["freq_b"]), int(values["port_base"]),
                          values["zmq_host"]), (phy.FREQ_A, phy.FREQ_B, phy.ZMQ_PORT_BASE, repr(phy.ZMQ_HOST)))
        with open(os.path.join(EXAMPLES, "two_radio", "air.grc")) as f:
            g = yaml.safe_load(f)
        values = {b["name"]: b["parameters"]["value"] for b in g["blocks"] if b["id"] == "parameter"}
        self.assertEqual((int(values["port_base"]), float(values["samp_rate"]), float(values["doppler_start"])),
                         (phy.ZMQ_PORT_BASE, phy.DEFAULT_SAMP_RATE, phy.DEFAULT_DOPPLER_HZ))

    def test_no_device(self):
        runs = {"two_radio_node": ["-r", "uhd", "-a", NO_DEVICE], "usrp_voice_tx": ["-a", NO_DEVICE],
                "usrp_voice_rx": ["-a", NO_DEVICE]}
        procs = {name: subprocess.Popen([sys.executable, os.path.join(self.out.name, name + ".py"), *args],
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                        stdin=subprocess.DEVNULL)
                 for name, args in runs.items()}
        for name, p in procs.items():
            with self.subTest(example=name):
                _, err = p.communicate(timeout=120)
                self.assertEqual(p.returncode, 2, err[-2000:])
                self.assertIn(f"check the device arguments {NO_DEVICE!r}", err)
                self.assertNotIn("Traceback", err)


if __name__ == "__main__":
    gr_unittest.run(qa_radio_io)   # runs every TestCase of the file
