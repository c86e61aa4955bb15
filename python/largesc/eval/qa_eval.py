#!/usr/bin/env python3
#
# Copyright 2026 gr-largesc authors.
# SPDX-License-Identifier: GPL-3.0-or-later
#
"""QA for the evaluation package (gnuradio.largesc.eval): speech loading,
time alignment, metrics, and the baseline codecs under seeded packet loss.

Real recorded speech from Debian's pocketsphinx-testdata (LibriVox). Short
clips (3 to 7 s) keep the whole file near two minutes on two cores. No timing
assertions."""

import os
import subprocess
import sys
import tempfile
import unittest

import numpy as np
from gnuradio import gr_unittest

from gnuradio import largesc
from gnuradio.largesc.eval import baselines as B
from gnuradio.largesc.eval import metrics as M
from gnuradio.largesc.eval import speech as S
from gnuradio.largesc.eval.codecs.codec2 import Codec2
from gnuradio.largesc.eval.codecs.lpcnet import lpcnet_available
from gnuradio.largesc.eval.codecs.opus import Opus

SR = 16000
_CACHE = {}
# the default baselines that run here without model weights (EnCodec needs
# its weights; qa_baselines tests it)
CODECS = tuple(n for n in B.DEFAULT_BASELINES if not n.startswith("encodec"))


def clip(i):
    """Demo clip i (0..4) at 16 kHz, cached."""
    key = ("clip", i)
    if key not in _CACHE:
        c = S.demo_clips()[i]
        _CACHE[key] = (c.audio(SR), c.text)
    return _CACHE[key]


def run(name, loss_rate=0.0, burst=1.0, seed=1, alignment="slot", i=2):
    key = (name, loss_rate, burst, seed, alignment, i)
    if key not in _CACHE:
        x, _ = clip(i)
        model = "bernoulli" if burst == 1.0 else "gilbert_elliott"
        _CACHE[key] = B.get_baseline(name).run(
            x, SR, B.LossSpec(loss_rate, model, burst, seed, alignment))
    return _CACHE[key]


def chop(x, frac, seg_ms, seed):
    """Zero a fraction of fixed segments (a crude packet loss)."""
    y = x.copy()
    n = int(SR * seg_ms / 1000)
    rng = np.random.default_rng(seed)
    for k in np.flatnonzero(rng.random(len(x) // n) < frac):
        y[k * n:(k + 1) * n] = 0
    return y


def add_noise(x, snr_db, seed):
    rng = np.random.default_rng(seed)
    p = np.mean(x.astype(np.float64) ** 2) / 10 ** (snr_db / 10)
    return (x + rng.normal(0, np.sqrt(p), len(x))).astype(np.float32)


class qa_speech(gr_unittest.TestCase):

    def test_demo_clips_have_speech_and_text(self):
        clips = S.demo_clips()
        self.assertEqual(len(clips), 5)
        for c in clips:
            self.assertTrue(c.text and "<s>" not in c.text and "(" not in c.text, c.text)
            self.assertGreater(c.duration_s, 2.5)
        self.assertTrue(clips[0].text.startswith("and mister john dashwood"))
        self.assertEqual(len(S.demo_clips(2)), 2)

    def test_load_resamples_any_rate_and_channels(self):
        x, _ = clip(1)
        x24 = S.load(S.demo_clips()[1].path, 24000)
        self.assertEqual(x24.dtype, np.float32)
        self.assertAlmostEqual(len(x24) / 24000, len(x) / SR, delta=1e-3)
        with tempfile.TemporaryDirectory() as d:
            # 44.1 kHz stereo FLAC, channel 2 silent: mono = mean of channels
            up = S.resample(x, SR, 44100)
            import soundfile as sf
            p = os.path.join(d, "s.flac")
            sf.write(p, np.stack([up, np.zeros_like(up)], 1), 44100)
            y = S.load(p, SR)
            n = min(len(y), len(x))
            err = np.max(np.abs(y[200:n - 200] - 0.5 * x[200:n - 200]))
            self.assertLess(err, 2e-3)   # resampled round trip + 16-bit FLAC

    def test_bad_audio_errors(self):
        with tempfile.TemporaryDirectory() as d:
            with self.assertRaisesRegex(S.SpeechError, "no such file"):
                S.load(os.path.join(d, "missing.wav"))
            junk = os.path.join(d, "junk.wav")
            with open(junk, "wb") as f:
                f.write(b"this is not audio" * 10)
            with self.assertRaisesRegex(S.SpeechError, "cannot read"):
                S.load(junk)
            quiet = os.path.join(d, "quiet.wav")
            S.save(quiet, np.zeros(SR, np.float32), SR)
            with self.assertRaisesRegex(S.SpeechError, "silent"):
                S.load(quiet)
            short = os.path.join(d, "short.wav")
            S.save(short, 0.1 * np.ones(100, np.float32), SR)
            with self.assertRaisesRegex(S.SpeechError, "too short"):
                S.load(short)
        with self.assertRaisesRegex(S.SpeechError, "NaN"):
            S.check_speech(np.full(SR, np.nan, np.float32), SR)

    def test_missing_demo_dir_says_how_to_install(self):
        old = os.environ.get(S.DEMO_DIR_ENV)
        os.environ[S.DEMO_DIR_ENV] = "/nonexistent/largesc"
        try:
            with self.assertRaisesRegex(FileNotFoundError, "pocketsphinx-testdata"):
                S.demo_clips()
        finally:
            if old is None:
                del os.environ[S.DEMO_DIR_ENV]
            else:
                os.environ[S.DEMO_DIR_ENV] = old


class qa_alignment(gr_unittest.TestCase):

    def test_recovers_known_delay(self):
        """At every lag, late (lag > 0) and early (lag < 0): the lag, and the
        aligned samples themselves, cut from the inputs at positions worked out
        here (deg[n + lag] pairs with ref[n])."""
        x, _ = clip(1)
        for lag in (0, 1, 37, 1234, 4000, -1, -37, -500, -2000):
            with self.subTest(lag=lag):
                if lag >= 0:
                    d = np.concatenate([np.zeros(lag, np.float32), x])
                else:
                    d = x[-lag:]
                d = add_noise(0.7 * d, 20, seed=lag & 0xFFFF)
                a = M.align(x, d, SR)
                self.assertEqual(a.lag, lag)
                n = len(x) - max(0, -lag)   # the common part
                self.assertEqual((len(a.ref), len(a.deg)), (n, n))
                np.testing.assert_array_equal(a.ref, x[max(0, -lag):][:n])
                np.testing.assert_array_equal(a.deg, d[max(0, lag):][:n])
                # and they line up: what is left after removing the signal is the 20 dB noise
                res = a.deg / 0.7 - a.ref
                snr = 10 * np.log10(np.sum(a.ref.astype(np.float64) ** 2) / np.sum(res.astype(np.float64) ** 2))
                self.assertGreater(snr, 18.0)

    def test_phase_incoherent_vocoder_output(self):
        # Codec2 resynthesises phase: the envelope stage must carry the lag
        x, _ = clip(1)
        r = B.get_baseline("codec2_3200").run(x, SR)
        d = np.concatenate([np.zeros(800, np.float32), r.audio])   # +50 ms more
        a = M.align(x, d, SR)
        self.assertAlmostEqual(a.lag_ms, 50 + Codec2.DELAY_MS["3200"], delta=8)

    def test_delay_outside_bound_is_an_error(self):
        x, _ = clip(1)
        d = np.concatenate([np.zeros(int(0.5 * SR), np.float32), x])
        with self.assertRaisesRegex(M.AlignmentError, "bound"):
            M.align(x, d, SR, max_lag_s=0.3)
        self.assertEqual(M.align(x, d, SR, max_lag_s=0.7).lag, SR // 2)


class qa_metrics(gr_unittest.TestCase):

    def test_rank_clean_mild_heavy_on_real_speech(self):
        x, text = clip(0)
        mild = add_noise(chop(x, 0.05, 40, seed=1), 25, seed=2)
        heavy = add_noise(chop(x, 0.35, 40, seed=3), 3, seed=4)
        d = np.concatenate([np.zeros(160, np.float32), heavy])  # heavy is also late
        res = {name: M.evaluate(x, sig, SR, text=text)
               for name, sig in (("clean", x), ("mild", mild), ("heavy", d))}
        self.assertAlmostEqual(res["heavy"]["lag_ms"], 10.0, delta=0.1)
        for m in M.METRICS:
            with self.subTest(metric=m):
                c, mi, h = (res[k][m] for k in ("clean", "mild", "heavy"))
                if M.METRICS[m].higher_is_better:
                    self.assertGreater(c, mi, res)
                    self.assertGreater(mi, h, res)
                else:
                    self.assertLessEqual(c, mi, res)
                    self.assertLess(mi, h, res)
        self.assertLess(res["clean"]["wer"], 0.25)

    def test_plcmos_is_seeded_and_leaves_global_rng(self):
        x, _ = clip(1)
        y = chop(x, 0.2, 40, seed=5)
        np.random.seed(123)
        expect = np.random.random(3)
        np.random.seed(123)
        a = M.plcmos(x, y, SR)
        after = np.random.random(3)
        b = M.plcmos(x, y, SR)
        self.assertEqual(a, b)
        np.testing.assert_array_equal(after, expect)
        self.assertNotEqual(M.plcmos(x, y, SR, seed=7), a)

    def test_registry_and_bad_input(self):
        x, _ = clip(1)
        self.assertEqual(set(M.METRICS), {"plcmos", "dnsmos", "visqol", "pesq_wb", "stoi", "wer"})
        with self.assertRaisesRegex(ValueError, "unknown metric 'mos'.*pesq_wb"):
            M.get_metric("mos")
        with self.assertRaisesRegex(ValueError, "unknown metric"):
            M.evaluate(x, x, SR, metrics=("stoi", "mos"))
        with self.assertRaisesRegex(S.SpeechError, "silent"):
            M.evaluate(np.zeros(SR, np.float32), x[:SR], SR, metrics=("stoi",))
        out = M.evaluate(x, np.zeros_like(x) + 1e-9, SR, metrics=("pesq_wb",), errors="nan",
                         align_signals=False)
        self.assertTrue(np.isnan(out["pesq_wb"]) or out["pesq_wb"] < 1.5)
        self.assertEqual(M.normalize_text("Mr. John Dash-wood, isn't it?"),
                         "mister john dash wood isn't it")


class qa_baselines(gr_unittest.TestCase):

    def test_same_seed_same_loss_pattern_for_every_system(self):
        spec = B.LossSpec(0.2, "gilbert_elliott", 3.0, seed=42)
        ref_model = largesc.loss_model.gilbert_elliott_mean(0.2, 3.0, 42)
        x, _ = clip(4)
        slots = None
        for name in ("codec2_700c", "codec2_3200", "opus_6k"):
            r = B.get_baseline(name).run(x, SR, spec)
            s = B.frame_slots(r.frames, B.get_baseline(name).frame_ms)
            per_slot = np.zeros(s[-1] + 1, bool)
            per_slot[s] = r.frame_lost            # every frame of a slot shares its fate
            np.testing.assert_array_equal(per_slot[s], r.frame_lost)
            if slots is None:
                slots = per_slot
                np.testing.assert_array_equal(slots, ref_model.pattern(len(slots)).astype(bool))
                self.assertGreater(slots.sum(), 0)
            np.testing.assert_array_equal(per_slot, slots[:len(per_slot)], name)
            self.assertEqual(r.packets_lost, int(per_slot.sum()))
        # frame alignment: one decision per codec packet from the same model + seed
        f = B.LossSpec(0.2, "gilbert_elliott", 3.0, seed=42, alignment="frame").frame_losses(300, 20)
        np.testing.assert_array_equal(
            f, largesc.loss_model.gilbert_elliott_mean(0.2, 3.0, 42).pattern(300).astype(bool))
        # LPCNet's 30 ms frames go with the slot holding their midpoint
        np.testing.assert_array_equal(B.frame_slots(6, 30.0), [0, 0, 0, 1, 1, 2])

    def test_repeatable(self):
        # libcodec2's static random generators are reset per run (Codec2
        # phase, LPCNet sampling): same input and seed -> same audio
        x, _ = clip(4)
        x = x[:2 * SR]
        spec = B.LossSpec(0.3, seed=9)
        for name in ("codec2_1200", "codec2_700c", "lpcnet_1733", "opus_6k"):
            with self.subTest(system=name):
                a = B.get_baseline(name).run(x, SR, spec)
                B.get_baseline("codec2_3200").run(x[:SR], SR)     # disturb the state
                b = B.get_baseline(name).run(x, SR, spec)
                np.testing.assert_array_equal(a.audio, b.audio)
                self.assertEqual(a.notes, b.notes)
                self.assertNotIn("varies", " ".join(a.notes))
        c = B.get_baseline("codec2_1200").run(x, SR, B.LossSpec(0.3, seed=10))
        self.assertFalse(np.array_equal(a.frame_lost, c.frame_lost))

    def test_quality_class_at_zero_loss(self):
        x, _ = clip(2)
        pesq = {n: M.evaluate(x, run(n).audio, SR, metrics=("pesq_wb",))["pesq_wb"]
                for n in CODECS}
        stoi = {n: M.evaluate(x, run(n).audio, SR, metrics=("stoi",))["stoi"]
                for n in CODECS}
        self.assertGreater(pesq["opus_6k"], pesq["codec2_700c"] + 0.4, pesq)
        self.assertGreater(pesq["codec2_3200"], pesq["codec2_700c"], pesq)
        self.assertGreater(pesq["opus_6k"], 1.8, pesq)
        for n, v in stoi.items():
            self.assertGreater(v, 0.7, (n, stoi))
        for n in CODECS:
            self.assertAlmostEqual(M.align(x, run(n).audio, SR).lag_ms,
                                   B.get_baseline(n).codec_delay_ms, delta=8, msg=n)

    def test_degrades_as_loss_grows(self):
        x, _ = clip(2)
        for n in CODECS:
            with self.subTest(system=n):
                q = [M.evaluate(x, run(n, p, 2.0).audio, SR, metrics=("stoi", "pesq_wb"))
                     for p in (0.0, 0.3)]
                self.assertGreater(run(n, 0.3, 2.0).frames_lost, 0)
                self.assertLess(q[1]["stoi"], q[0]["stoi"] - 0.03, q)
                self.assertLess(q[1]["pesq_wb"], q[0]["pesq_wb"], q)

    def test_bitrates_and_latency(self):
        r = run("codec2_700c")
        self.assertEqual(r.payload_bps, 700)
        self.assertEqual(r.on_air_bps, 1000)         # (3 + 7 bytes) per 80 ms
        self.assertEqual(run("codec2_700c", alignment="frame").on_air_bps, 1400)  # 7 B / 40 ms
        self.assertEqual(run("codec2_3200").on_air_bps, 3500)  # (3 + 32) B / 80 ms
        self.assertAlmostEqual(run("lpcnet_1733").payload_bps, 1733.3, delta=0.1)
        self.assertEqual(run("opus_6k").payload_bps, 6000)      # hard CBR
        self.assertEqual(r.latency_ms, 40 + 27 + 40)
        self.assertEqual(r.latency_breakdown,
                         {"frame_ms": 40, "codec_delay_ms": 27, "packetization_ms": 40})

    def test_packet_facts_are_the_links(self):
        # one definition: the header from the C++ packet core, the slot from the frame constants
        self.assertEqual(B.HEADER_BYTES, largesc.HEADER_BYTES)
        self.assertEqual(B.HEADER_BYTES, 3)
        self.assertEqual(B.SLOT_MS, 80.0)

    def test_registry(self):
        # every registered name builds its codec; importing the framework imports no codec module
        for name in B.BASELINES:
            self.assertEqual(B.get_baseline(name).name, name)
        code = ("import sys; from gnuradio.largesc.eval import baselines; "
                "print([m for m in sys.modules if '.eval.codecs.' in m])")
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
        self.assertEqual(out.stdout.strip(), "[]", out.stderr)

    def test_codec2_bits_equal_gr_vocoder(self):
        from gnuradio import blocks, gr, vocoder
        x, _ = clip(1)
        for mode, const in (("700C", vocoder.codec2.MODE_700C), ("3200", vocoder.codec2.MODE_3200)):
            with self.subTest(mode=mode):
                b = Codec2(mode)
                pcm = b._to_pcm16(x[:SR], SR)
                ours = np.unpackbits(np.frombuffer(b"".join(b._encode(pcm)), np.uint8)
                                     .reshape(-1, (b.frame_bits + 7) // 8), axis=1)[:, :b.frame_bits]
                tb = gr.top_block()
                src = blocks.vector_source_s(pcm.tolist())
                enc = vocoder.codec2_encode_sp(const)
                snk = blocks.vector_sink_b(b.frame_bits)
                tb.connect(src, enc, snk)
                tb.run()
                theirs = np.array(snk.data(), np.uint8).reshape(-1, b.frame_bits)
                np.testing.assert_array_equal(ours, theirs)

    def test_opus_fec(self):
        x, _ = clip(2)
        spec = B.LossSpec(0.2, seed=3, alignment="frame")
        self.assertIn("FEC requested but the encoder coded none", " ".join(run("opus_6k", 0.2).notes))
        opus = Opus(24000, fec=True)
        fec = opus.run(x, SR, spec)
        self.assertTrue(opus.fec_active)
        plc = Opus(24000, fec=False).run(x, SR, spec)
        np.testing.assert_array_equal(fec.frame_lost, plc.frame_lost)
        pf = M.evaluate(x, fec.audio, SR, metrics=("pesq_wb",))["pesq_wb"]
        pp = M.evaluate(x, plc.audio, SR, metrics=("pesq_wb",))["pesq_wb"]
        self.assertGreater(pf, pp + 0.1)
        self.assertEqual(fec.latency_breakdown["fec_wait_ms"], 20)

    def test_lpcnet_available_on_debian12(self):
        ok, why = lpcnet_available()
        self.assertTrue(ok, why)
        self.assertEqual({n for n, (ok, _) in B.available_baselines().items() if ok}
                         - {"encodec_1.5k", "encodec_3k"},      # available with weights only
                         set(B.BASELINES) - {"encodec_1.5k", "encodec_3k"})

    def test_bad_input(self):
        with self.assertRaisesRegex(ValueError, "unknown codec 'amr'.*codec2_700c"):
            B.get_baseline("amr")
        with self.assertRaisesRegex(ValueError, "loss_rate"):
            B.LossSpec(1.5)
        with self.assertRaisesRegex(ValueError, "alignment"):
            B.LossSpec(0.1, alignment="bytes")
        with self.assertRaisesRegex(ValueError, "loss model"):
            B.LossSpec(0.1, model="gauss")
        with self.assertRaisesRegex(ValueError, "mode"):
            Codec2("2020")


if __name__ == "__main__":
    unittest.main()
