#!/usr/bin/env python3
#
# Copyright 2026 gr-largesc authors.
# SPDX-License-Identifier: GPL-3.0-or-later
#
"""QA for the Mimi codec: weights, scheduler-free streaming codec, and the
mimi_encoder / mimi_decoder blocks.

All models here are UNTRAINED (random weights of the real architecture,
seeded): the tests check plumbing, streaming equivalence and timing, never
speech quality. Eager fp32 path, 1 torch thread."""

import os
import tempfile
import time

import numpy as np
import pmt
import torch
from gnuradio import blocks, gr, gr_unittest

from gnuradio.largesc.codec import mimi_codec as C
from gnuradio.largesc.codec import weights as W
from gnuradio.largesc.codec.mimi_encoder import TokenFramer, make_frame_pdu, mimi_encoder
from gnuradio.largesc.codec.mimi_decoder import FixedRateOutput, FramePlayout, mimi_decoder, parse_frame_pdu

torch.set_num_threads(1)
SEED = "random:1"
_MODEL = {}


def model():
    """One shared untrained model (seed 1) for the codec-level tests."""
    if "m" not in _MODEL:
        _MODEL["m"] = W.load_mimi(SEED)
    return _MODEL["m"]


def test_signal(n, rate=24000, seed=0):
    """Tone sweep + noise bursts + a silent gap: varied enough that every
    codebook changes token from frame to frame."""
    rng = np.random.default_rng(seed)
    t = np.arange(n) / rate
    x = 0.25 * np.sin(2 * np.pi * (150 + 400 * t) * t)
    x += 0.05 * rng.standard_normal(n) * (np.sin(2 * np.pi * 2.3 * t) > 0)
    x[int(0.4 * n):int(0.5 * n)] = 0.0
    return x.astype(np.float32)


def frame_meta(msg):
    return pmt.to_python(pmt.car(msg))


class arrival_sink(gr.sync_block):
    """Takes floats; notes (first sample index, host monotonic time) of each call: when each
    piece of the stream arrived, as a sound card would see it."""

    def __init__(self):
        gr.sync_block.__init__(self, name="arrival_sink", in_sig=[np.float32], out_sig=None)
        self.calls = []

    def work(self, input_items, output_items):
        self.calls.append((self.nitems_read(0), time.monotonic()))
        return len(input_items[0])


class qa_weights(gr_unittest.TestCase):

    def test_spec_parsing(self):
        self.assertEqual(W.parse_spec("random"), ("random", 0))
        self.assertEqual(W.parse_spec("random:7"), ("random", 7))
        self.assertEqual(W.parse_spec("hf"), ("hub", (W.DEFAULT_REPO, W.MIMI_NAME)))
        self.assertEqual(W.parse_spec("hf:a/b"), ("hub", ("a/b", W.MIMI_NAME)))
        self.assertEqual(W.parse_spec("hf://a/b/c/d.safetensors"), ("hub", ("a/b", "c/d.safetensors")))
        self.assertEqual(W.parse_spec("/x/y.safetensors")[0], "file")
        with self.assertRaises(W.WeightsError):
            W.parse_spec("random:abc")

    def test_random_is_seeded_and_codebooks_filled(self):
        """Two builds of a seed are the same model, and so is the copy of
        the model kept from an earlier build (random_mimi's keep), torch's
        global random state included."""
        m1, info = W.load_mimi("random:3")
        m2 = W.random_mimi(3, keep=False)           # a second build
        rng_built = torch.get_rng_state()
        torch.manual_seed(99)                       # the global random state moves on
        m3 = W.random_mimi(3)                       # kept by the first: a copy
        self.assertTrue(torch.equal(torch.get_rng_state(), rng_built))
        m4 = W.random_mimi(3)                       # another copy, not the same model
        self.assertTrue(info["untrained"])
        s1, s2, s3, s4 = m1.state_dict(), m2.state_dict(), m3.state_dict(), m4.state_dict()
        for k in s1:
            self.assertTrue(torch.equal(s1[k], s2[k]), k)
            self.assertTrue(torch.equal(s1[k], s3[k]), k)
            if s1[k].numel():
                self.assertEqual(len({s[k].data_ptr() for s in (s1, s3, s4)}), 3, k)
        for layer in list(m1.quantizer.rvq_first.vq.layers) + list(m1.quantizer.rvq_rest.vq.layers):
            emb = layer._codebook.embedding
            self.assertGreater(float(emb.abs().min(dim=1).values.max()), 0.0)
            self.assertTrue(layer._codebook.initialized)

    def test_saved_file_loads_through_user_path(self):
        m, _ = model()
        x = test_signal(8 * C.FRAME_SIZE)
        ref = C.batch_encode(m, x)
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "mimi-test.safetensors")
            W.save_mimi(m, path, untrained=True)
            for spec in (path, "file://" + path):
                m2, info = W.load_mimi(spec)
                self.assertTrue(info["untrained"])
                self.assertEqual(info["source"], path)
                np.testing.assert_array_equal(C.batch_encode(m2, x), ref)
            # the block takes the same path
            enc = mimi_encoder(24000, 8, weights=path, threads=1)
            self.assertTrue(enc.untrained)

    def test_bad_weight_files(self):
        m, _ = model()
        with tempfile.TemporaryDirectory() as d:
            garbage = os.path.join(d, "garbage.safetensors")
            with open(garbage, "wb") as f:
                f.write(b"this is not a safetensors file" * 10)
            with self.assertRaisesRegex(W.WeightsError, "cannot read"):
                W.load_mimi(garbage)
            with self.assertRaisesRegex(W.WeightsError, "cannot read"):
                mimi_decoder(16000, weights=garbage, threads=1)
            # readable, wrong architecture: a different model's tensors
            from safetensors.torch import save_file
            other = os.path.join(d, "other.safetensors")
            save_file({"layer.weight": torch.zeros(3, 3)}, other)
            with self.assertRaisesRegex(W.WeightsError, "not a Mimi checkpoint"):
                W.load_mimi(other)
            # right names, wrong shapes (e.g. a different width)
            state = {k: v.clone() for k, v in m.state_dict().items()}
            k = "encoder_transformer.transformer.layers.0.linear1.weight"
            state[k] = torch.zeros(16, 16)
            wrong = os.path.join(d, "wrong.safetensors")
            save_file(state, wrong)
            with self.assertRaisesRegex(W.WeightsError, "wrong shape"):
                W.load_mimi(wrong)
            with self.assertRaisesRegex(W.WeightsError, "does not exist"):
                W.load_mimi(os.path.join(d, "missing.safetensors"))
            with self.assertRaisesRegex(W.WeightsError, "does not exist"):
                mimi_encoder(16000, 8, weights=os.path.join(d, "missing.safetensors"))

    def test_hub_offline_without_cache_names_file(self):
        with tempfile.TemporaryDirectory() as d:
            with self.assertRaises(W.WeightsUnavailableError) as cm:
                W.load_mimi("hf", offline=True, cache_dir=d)
            msg = str(cm.exception)
            self.assertIn(W.MIMI_NAME, msg)
            self.assertIn(W.DEFAULT_REPO, msg)
            self.assertIn("huggingface-cli download", msg)
            self.assertIn("weights=", msg)
            # the plumbing-only alternative is named, as the block parameter
            self.assertIn("weights='random'", msg)
            self.assertIn("UNTRAINED", msg)

    def test_tool_weights_rule(self):
        """The one rule (docs/mimi.md): weights the user named are used or the
        call fails with how to get them and `random` for plumbing; only no
        weights at all falls back to an UNTRAINED codec, loudly."""
        with tempfile.TemporaryDirectory() as d:
            kw = dict(offline=True, cache_dir=d)
            # named hf, unreachable: error naming the download and the option's random
            for spec in ("hf", "hf:someone/else"):
                logs = []
                with self.assertRaises(W.WeightsUnavailableError) as cm:
                    W.tool_weights(spec, 4, log=logs.append, **kw)
                msg = str(cm.exception)
                self.assertIn("huggingface-cli download", msg)
                self.assertIn("`--weights random`", msg)
                self.assertIn("`--weights /path/to/", msg)
                self.assertEqual(logs, [])
            with self.assertRaisesRegex(W.WeightsUnavailableError, "`--mimi-weights random`"):
                W.tool_weights("hf", option="--mimi-weights", **kw)
            # no weights given: random:SEED after one loud warning
            logs = []
            self.assertEqual(W.tool_weights(None, 4, log=logs.append, **kw), "random:4")
            self.assertEqual(len(logs), 1)
            self.assertIn("UNTRAINED random codec weights (random:4)", logs[0])
            self.assertIn("huggingface-cli download", logs[0])
            # other named specs: returned as given, or WeightsError
            logs = []
            self.assertEqual(W.tool_weights("random:2", 4, log=logs.append, **kw), "random:2")
            self.assertEqual(logs, [])
            with self.assertRaisesRegex(W.WeightsError, "does not exist"):
                W.tool_weights(os.path.join(d, "missing.safetensors"), **kw)
            # a file in the Hugging Face cache: hf is used, named or by default, no warning
            repo_dir = os.path.join(d, "models--" + W.DEFAULT_REPO.replace("/", "--"))
            rev = "0" * 40
            os.makedirs(os.path.join(repo_dir, "refs"))
            os.makedirs(os.path.join(repo_dir, "snapshots", rev))
            with open(os.path.join(repo_dir, "refs", "main"), "w") as f:
                f.write(rev)
            with open(os.path.join(repo_dir, "snapshots", rev, W.MIMI_NAME), "wb") as f:
                f.write(b"placeholder")
            logs = []
            self.assertEqual(W.tool_weights(None, 4, log=logs.append, **kw), "hf")
            self.assertEqual(W.tool_weights("hf", 4, log=logs.append, **kw), "hf")
            self.assertEqual(logs, [])

    def test_phy_sweep_follows_rule(self):
        """largesc-phy-sweep --speech with an explicit --weights hf and no hub
        stops before any work with the rule's error (no silent fallback)."""
        import subprocess
        import sys
        from pathlib import Path
        app = Path(__file__).resolve().parents[3] / "apps" / "largesc-phy-sweep"
        with tempfile.TemporaryDirectory() as d:
            env = dict(os.environ, HF_HUB_OFFLINE="1", HF_HOME=d, HF_HUB_CACHE=os.path.join(d, "hub"))
            r = subprocess.run([sys.executable, str(app), "--speech", "--weights", "hf",
                                "--ebn0", "10", "--packets", "5"],
                               capture_output=True, text=True, env=env, timeout=120)
        self.assertEqual(r.returncode, 2, r.stderr[-2000:])
        self.assertIn("`--weights random`", r.stderr)
        self.assertIn("huggingface-cli download", r.stderr)
        self.assertEqual(r.stdout, "")


class qa_codec(gr_unittest.TestCase):

    def test_streaming_encode_equals_batch(self):
        m, info = model()
        T = 30
        x = test_signal(T * C.FRAME_SIZE)
        ref = C.batch_encode(m, x)                     # [T, 32]
        self.assertEqual(ref.shape, (T, 32))
        # tokens really vary (otherwise equality would prove little)
        self.assertGreater(min(len(set(ref[:, k])) for k in range(32)), T // 3)
        for fpc in (1, 4):
            with self.subTest(frames_per_call=fpc):
                enc = C.MimiStreamingEncoder(m, info=info)
                got = np.concatenate([enc.encode(x[i * C.FRAME_SIZE:(i + fpc) * C.FRAME_SIZE])
                                      for i in range(0, T, fpc)])
                enc.close()
                np.testing.assert_array_equal(got, ref)
        # fewer codebooks = prefix of the 32 (residual quantizer)
        np.testing.assert_array_equal(C.batch_encode(m, x, n_q=8), ref[:, :8])

    def test_streaming_decode_matches_batch(self):
        m, info = model()
        T = 25
        toks = np.random.default_rng(5).integers(0, 2048, (T, 32))
        for K in (1, 8, 32):
            with self.subTest(n_q=K):
                ref = C.batch_decode(m, toks[:, :K])
                dec = C.MimiStreamingDecoder(m, info=info)
                got = np.concatenate([dec.decode(toks[i:i + 1, :K]) for i in range(T)])
                dec.close()
                self.assertEqual(len(got), T * C.FRAME_SIZE)
                self.assertEqual(len(ref), T * C.FRAME_SIZE)
                self.assertLess(float(np.abs(got - ref).max()), 1e-5)
                self.assertGreater(float(np.abs(ref).max()), 1e-3)

    def test_absent_codebooks_contribute_nothing(self):
        m, info = model()
        dec = C.MimiStreamingDecoder(m, info=info)
        toks = np.random.default_rng(6).integers(0, 2048, (3, 8))
        pres = np.ones((3, 8), dtype=bool)
        pres[:, 4:] = False
        a = dec.latent(toks, pres)
        b = dec.latent(toks[:, :4])
        self.assertTrue(torch.equal(a, b))
        # codebook 0 absent: only acoustic codebooks remain
        pres0 = np.ones((3, 8), dtype=bool)
        pres0[:, 0] = False
        c = dec.latent(toks, pres0)
        d = m.quantizer.rvq_rest.decode(torch.as_tensor(toks[:, 1:]).T[None])
        self.assertLess(float((c - d).abs().max()), 1e-6)
        dec.close()

    def _run_mode(self, mode, x, toks, fpc):
        m, info = model()
        enc = C.MimiStreamingEncoder(m, mode=mode, info=info)
        dec = C.MimiStreamingDecoder(m, mode=mode, info=info)
        T = len(toks)
        got_t = np.concatenate([enc.encode(x[i * C.FRAME_SIZE:(i + fpc) * C.FRAME_SIZE])
                                for i in range(0, T, fpc)])
        got_a = np.concatenate([dec.decode(toks[i:i + fpc]) for i in range(0, T, fpc)])
        enc.close()
        dec.close()
        return got_t, got_a, enc, dec

    def test_exact_mode_equals_eager(self):
        """The rewritten step (mode "exact": convs as matrix products,
        conv-transpose as matmul + overlap-add, own KV cache, precomputed
        codebook norms) gives eager's tokens and eager's audio within 1e-5,
        with 1 and 2 frames per call, and after reset()."""
        T = 6
        x = test_signal(T * C.FRAME_SIZE, seed=3)
        toks = np.random.default_rng(7).integers(0, 2048, (T, 8))
        ref_t, ref_a, _, _ = self._run_mode("eager", x, toks, 1)
        for fpc in (1, 2):
            with self.subTest(frames_per_call=fpc):
                got_t, got_a, enc, _dec = self._run_mode("exact", x, toks, fpc)
                np.testing.assert_array_equal(got_t, ref_t)
                self.assertLess(float(np.abs(got_a - ref_a).max()), 1e-5)
        # reset() restarts the stream: same first frames again
        m, info = model()
        enc = C.MimiStreamingEncoder(m, mode="exact", info=info)
        enc.encode(x[:2 * C.FRAME_SIZE])
        enc.reset()
        np.testing.assert_array_equal(enc.encode(x[:2 * C.FRAME_SIZE]), ref_t[:2])

    def test_encode_searches_only_n_q_codebooks(self):
        """encode(pcm, n_q) returns [T, n_q] equal to the first n_q of the
        32-codebook encode, in eager and exact mode, with n_q changing from
        call to call (the streaming state does not depend on it); n_q outside
        1..32 is refused."""
        T = 6
        x = test_signal(T * C.FRAME_SIZE, seed=9)
        m, info = model()
        ref = C.batch_encode(m, x)
        n_qs = [8, 1, 32, 2, 13, 9]
        for mode in ("eager", "exact"):
            with self.subTest(mode=mode):
                enc = C.MimiStreamingEncoder(m, mode=mode, info=info)
                for i, k in enumerate(n_qs):
                    got = enc.encode(x[i * C.FRAME_SIZE:(i + 1) * C.FRAME_SIZE], k)
                    self.assertEqual(got.shape, (1, k))
                    np.testing.assert_array_equal(got[0], ref[i, :k])
                with self.assertRaisesRegex(ValueError, "1..32"):
                    enc.encode(x[:C.FRAME_SIZE], 33)
                with self.assertRaisesRegex(ValueError, "1..32"):
                    enc.encode(x[:C.FRAME_SIZE], 0)
                enc.close()
        self.assertEqual(m.quantizer.n_q, 32)       # eager path restores the model

    def test_fast_int8_runs(self):
        """Approximate mode: right shapes and value ranges, mostly the same
        semantic tokens (agreement itself is measured by the benchmark)."""
        T = 4
        x = test_signal(T * C.FRAME_SIZE, seed=4)
        toks = np.random.default_rng(8).integers(0, 2048, (T, 8))
        got_t, got_a, _, _ = self._run_mode("fast-int8", x, toks, 1)
        self.assertEqual(got_t.shape, (T, 32))
        self.assertTrue(((got_t >= 0) & (got_t < 2048)).all())
        self.assertEqual(len(got_a), T * C.FRAME_SIZE)
        self.assertTrue(np.isfinite(got_a).all())

    def test_traced_step_equals_untraced(self):
        """exact and fast-int8 on the CPU run a traced step (mimi_fast, torch.jit.trace): the
        same tokens and the same audio, bit for bit, as the untraced step, with n_q changing
        from call to call (1..32), a reset, and a 2-frame call (a second trace); a trace that
        fails warns and leaves the untraced step, the state intact."""
        import warnings
        from gnuradio.largesc.codec import mimi_fast as MF
        T = 8
        x = test_signal(T * C.FRAME_SIZE, seed=6)
        toks = np.random.default_rng(10).integers(0, 2048, (T, 8))
        n_qs = [8, 32, 1, 5, 16, 3, 32, 8]
        m, info = model()

        def run(mode):
            enc = C.MimiStreamingEncoder(m, mode=mode, info=info)
            dec = C.MimiStreamingDecoder(m, mode=mode, info=info)
            t, a = [], []
            for i in range(T - 2):
                if i == 4:
                    enc.reset()
                    dec.reset()
                t.append(enc.encode(x[i * C.FRAME_SIZE:(i + 1) * C.FRAME_SIZE], n_qs[i])[0])
                a.append(dec.decode(toks[i:i + 1]))
            t.append(enc.encode(x[(T - 2) * C.FRAME_SIZE:], 8).ravel())   # two frames in one call
            a.append(dec.decode(toks[T - 2:]))
            return t, np.concatenate(a), enc, dec

        saved = MF._Step.trace_wanted
        refs = {}
        for mode in ("exact", "fast-int8"):
            with self.subTest(mode=mode):
                try:
                    MF._Step.trace_wanted = False
                    ref_t, ref_a, e0, _ = refs[mode] = run(mode)
                finally:
                    MF._Step.trace_wanted = saved
                self.assertFalse(e0._fast.trace)
                got_t, got_a, enc, dec = run(mode)
                self.assertTrue(enc._fast.trace and dec._fast.trace)
                self.assertEqual(sorted(enc._fast.traced), [C.FRAME_SIZE, 2 * C.FRAME_SIZE])
                self.assertEqual(sorted(dec._fast.traced), [1, 2])
                for a, b in zip(got_t, ref_t):
                    np.testing.assert_array_equal(a, b)
                np.testing.assert_array_equal(got_a, ref_a)

        def no_trace(*a, **kw):
            raise RuntimeError("tracer unavailable (test)")
        saved_trace = torch.jit.trace
        torch.jit.trace = no_trace
        try:
            with warnings.catch_warnings(record=True) as w:
                warnings.simplefilter("always")
                got_t, got_a, enc, _dec = run("exact")
        finally:
            torch.jit.trace = saved_trace
        self.assertTrue(any("tracing failed" in str(i.message) for i in w))
        self.assertFalse(enc._fast.trace)
        ref_t, ref_a, _, _ = refs["exact"]
        for a, b in zip(got_t, ref_t):
            np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(got_a, ref_a)

    def test_fast_mode_falls_back_without_compiler(self):
        """Mode "fast" where torch.compile cannot work: warns, runs the exact
        uncompiled step, same tokens as eager. (The compiled path itself is
        not exercised here: its first compile takes minutes on 2 cores.)"""
        import warnings
        T = 3
        x = test_signal(T * C.FRAME_SIZE, seed=5)
        toks = np.random.default_rng(9).integers(0, 2048, (T, 8))
        ref_t, ref_a, _, _ = self._run_mode("eager", x, toks, 1)

        def no_compile(*a, **kw):
            raise RuntimeError("compiler unavailable (test)")
        saved = torch.compile
        torch.compile = no_compile
        try:
            with warnings.catch_warnings(record=True) as w:
                warnings.simplefilter("always")
                got_t, got_a, enc, _dec = self._run_mode("fast", x, toks, 1)
        finally:
            torch.compile = saved
        self.assertTrue(any("torch.compile failed" in str(i.message) for i in w))
        self.assertFalse(enc._fast.compiled)
        np.testing.assert_array_equal(got_t, ref_t)
        self.assertLess(float(np.abs(got_a - ref_a).max()), 1e-5)

    def test_frame_resampler_exact_and_clean(self):
        for rate in C.SUPPORTED_RATES:
            for direction in ("down", "up"):
                with self.subTest(rate=rate, direction=direction):
                    a, b = (24000, rate) if direction == "down" else (rate, 24000)
                    rs = C.FrameResampler(a, b)
                    n = rs.n_in * 25
                    f = 1234.5
                    x = np.sin(2 * np.pi * f * np.arange(n) / a).astype(np.float32)
                    y = np.concatenate([rs.process(x[i:i + rs.n_in * 5]) for i in range(0, n, rs.n_in * 5)])
                    self.assertEqual(len(y), rs.n_out * 25)
                    if f < 0.4 * min(a, b):
                        ref = np.sin(2 * np.pi * f * (np.arange(len(y)) / b - rs.delay_seconds))
                        self.assertLess(float(np.abs(y[b // 50:] - ref[b // 50:]).max()), 2e-3)

    def test_framer_codebook_change_next_frame(self):
        m, info = model()
        fr = TokenFramer(C.MimiStreamingEncoder(m, info=info), 16000, n_q=8)
        x = test_signal(16000, rate=16000)
        out = fr.push(x[:1280 * 3 + 100])
        self.assertEqual([len(t) for _, t, _, _ in out], [8, 8, 8])
        fr.set_n_q(3)
        out = fr.push(x[1280 * 3 + 100:1280 * 6])
        self.assertEqual([(i, len(t)) for i, t, _, _ in out], [(3, 3), (4, 3), (5, 3)])
        fr.set_n_q(12, frame=8)
        out = fr.push(x[1280 * 6:1280 * 10])
        self.assertEqual([(i, len(t)) for i, t, _, _ in out], [(6, 3), (7, 3), (8, 12), (9, 12)])
        for bad in (0, 33, -1, 2.5, True):
            with self.assertRaises(ValueError):
                fr.set_n_q(bad)
        fr.codec.close()

    def test_playout_counts(self):
        m, info = model()
        p = FramePlayout(C.MimiStreamingDecoder(m, info=info), 8000)
        t = np.arange(8, dtype=np.uint16)
        one = np.ones(8, dtype=bool)
        a = p.frames([(10, t, one), (11, t, one), (14, t, one), (13, t, one)])
        p.codec.close()
        self.assertEqual(len(a), 5 * 640)       # 10, 11, silence 12 13, 14; 13 late
        self.assertEqual(p.stats["frames_missing"], 2)
        self.assertEqual(p.stats["frames_late"], 1)
        self.assertEqual(p.stats["frames_decoded"], 3)
        np.testing.assert_array_equal(a[2 * 640:4 * 640], 0.0)


class qa_device(gr_unittest.TestCase):
    """The device parameter (cpu / cuda / auto) and the device-aware step.
    On a machine without a GPU the CUDA cases check their errors; the CUDA
    figures and token identity on a GPU come from benchmarks/gpu_check.py."""

    def test_resolve_device(self):
        gpu = torch.cuda.is_available()
        self.assertEqual(W.resolve_device("auto"), "cuda" if gpu else "cpu")
        self.assertEqual(W.resolve_device(""), "cuda" if gpu else "cpu")
        self.assertEqual(W.resolve_device(None), "cuda" if gpu else "cpu")
        self.assertEqual(W.resolve_device("cpu"), "cpu")
        self.assertEqual(W.resolve_device(" CPU "), "cpu")
        for bad in ("gpu", "cuda:x", "cuda:", "tpu", 3, ["cpu"]):
            with self.subTest(device=bad):
                with self.assertRaisesRegex(ValueError, "use auto, cpu, cuda or cuda:N"):
                    W.resolve_device(bad)
        if not gpu:
            for d in ("cuda", "cuda:0", "cuda:3"):
                with self.subTest(device=d):
                    with self.assertRaisesRegex(ValueError, "torch sees no CUDA GPU"):
                        W.resolve_device(d)

    @gr_unittest.unittest.skipIf(torch.cuda.is_available(), "this machine has a GPU")
    def test_blocks_refuse_a_missing_gpu_at_construction(self):
        from gnuradio.largesc.hier.largesc_rx import largesc_rx
        from gnuradio.largesc.hier.largesc_tx import largesc_tx
        for make in (lambda: mimi_encoder(16000, 8, weights=SEED, device="cuda"),
                     lambda: mimi_decoder(16000, weights=SEED, device="cuda"),
                     lambda: largesc_tx(weights=SEED, device="cuda"),
                     lambda: largesc_rx(weights=SEED, device="cuda")):
            with self.assertRaisesRegex(ValueError, "device cuda: torch sees no CUDA GPU"):
                make()
        with self.assertRaisesRegex(ValueError, "device 'gpu': use auto, cpu, cuda or cuda:N"):
            mimi_encoder(16000, 8, weights=SEED, device="gpu")
        enc = mimi_encoder(16000, 8, weights=SEED, device="auto", threads=1)
        self.assertEqual(enc.weights_info["device"], "cpu")
        self.assertEqual(str(enc.codec.device), "cpu")

    def test_random_weights_same_on_every_device(self):
        # built on the CPU and moved: the seed alone fixes the weights
        a, _ = W.load_mimi("random:3", device="cpu")
        b, info = W.load_mimi("random:3", device="auto")
        self.assertEqual(info["device"], W.resolve_device("auto"))
        for (k, va), (_, vb) in zip(a.state_dict().items(), b.state_dict().items()):
            self.assertTrue(torch.equal(va, vb.cpu()), k)

    def test_graph_wrapper_path_equals_plain_step(self):
        """The path a CUDA device takes (one graphed step per frames-per-call
        value, every codebook searched, state reset in place) runs here with
        graphing disabled: same tokens and audio as the plain exact step,
        also after a reset."""
        from gnuradio.largesc.codec import mimi_fast
        m, info = model()
        T = 6
        x = test_signal(T * C.FRAME_SIZE, seed=4)
        enc = C.MimiStreamingEncoder(m, "exact", info)
        dec = C.MimiStreamingDecoder(m, "exact", info)
        ref_t = enc.encode(x, 8)
        ref_a = dec.decode(ref_t)
        enc.close(), dec.close()
        fe = mimi_fast.FastEncoder(m, "exact", cuda_graphs=True)
        fd = mimi_fast.FastDecoder(m, "exact", cuda_graphs=True)
        dl = C.MimiStreamingDecoder(m, "eager", info)   # latent() only
        for attempt in range(2):
            with self.subTest(attempt=attempt), torch.inference_mode():
                toks, audio = [], []
                for i in range(T):
                    xi = torch.from_numpy(x[i * C.FRAME_SIZE:(i + 1) * C.FRAME_SIZE]).view(1, 1, -1)
                    c = fe.step(xi, 8)
                    self.assertEqual(c.shape[1], 32)       # graphed: every codebook
                    toks.append(c[0, :8].T.clone().numpy())
                for i in range(T):
                    audio.append(fd.step(dl.latent(ref_t[i:i + 1])).reshape(-1).clone().numpy())
                np.testing.assert_array_equal(np.concatenate(toks), ref_t)
                self.assertLess(float(np.abs(np.concatenate(audio) - ref_a).max()), 1e-5)
                states = [id(t) for t in _leaves(fe.st)]
                fe.reset(), fd.reset()
                self.assertEqual([id(t) for t in _leaves(fe.st)], states)   # reset in place
        dl.close()


def _leaves(st):
    if isinstance(st, dict):
        return [t for v in st.values() for t in _leaves(v)]
    if isinstance(st, list):
        return [t for v in st for t in _leaves(v)]
    return [st]


class qa_blocks(gr_unittest.TestCase):

    def test_bad_parameters(self):
        for bad in (0, 33, -2):
            with self.subTest(n_q=bad):
                with self.assertRaisesRegex(ValueError, "codebooks"):
                    mimi_encoder(16000, bad, weights=SEED)
        for bad in (12345, 0, 16000.5, 192000):
            with self.subTest(rate=bad):
                with self.assertRaisesRegex(ValueError, "sample rate"):
                    mimi_encoder(bad, 8, weights=SEED)
                with self.assertRaisesRegex(ValueError, "sample rate"):
                    mimi_decoder(bad, weights=SEED)
        with self.assertRaisesRegex(ValueError, "mode"):
            mimi_decoder(16000, weights=SEED, mode="turbo")
        enc = mimi_encoder(16000, 8, weights=SEED, threads=1)
        with self.assertRaises(ValueError):
            enc.set_n_q(40)
        self.assertEqual(enc.n_q(), 8)

    def test_parse_frame_pdu(self):
        good = make_frame_pdu(5, [1, 2, 2047])
        kind, idx, toks, pres = parse_frame_pdu(good)
        self.assertEqual((kind, idx, list(toks), list(pres)), ("frame", 5, [1, 2, 2047], [True] * 3))

    def _run_decoder(self, msgs, rate=16000):
        dec = mimi_decoder(rate, weights=SEED, threads=1)
        snk = blocks.vector_sink_f()
        tb = gr.top_block()
        tb.connect(dec, snk)
        tb.start()
        for msg in msgs:
            dec.to_basic_block()._post(pmt.intern("in"), msg)
        t0 = time.monotonic()
        tb.wait()
        return dec, np.asarray(snk.data(), dtype=np.float32), time.monotonic() - t0

    def test_decoder_missing_and_malformed_keep_timing(self):
        toks = list(np.random.default_rng(1).integers(0, 2048, 8))
        meta_bad_n_q = pmt.dict_add(pmt.car(make_frame_pdu(6, toks)), pmt.intern("n_q"), pmt.from_long(7))
        msgs = [
            make_frame_pdu(0, toks),
            make_frame_pdu(1, toks),
            make_frame_pdu(3, toks),                          # 2 missing
            make_frame_pdu(4, toks[:7] + [2048]),             # token > 2047: malformed
            pmt.intern("garbage"),                            # not a PDU: malformed, no index
            make_frame_pdu(5, toks[:4]),                      # fewer codebooks: fine
            pmt.cons(meta_bad_n_q, pmt.cdr(make_frame_pdu(6, toks))),   # n_q mismatch
            pmt.cons(pmt.car(make_frame_pdu(7, toks)), pmt.init_u8vector(8, [1] * 8)),  # wrong type
            make_frame_pdu(9, toks),                          # 8 missing
            pmt.cons(pmt.dict_add(pmt.make_dict(), pmt.intern("eos"), pmt.PMT_T),
                     pmt.init_u16vector(0, [])),
        ]
        msgs[-1] = pmt.cons(pmt.dict_add(pmt.car(msgs[-1]), pmt.intern("frame"), pmt.from_uint64(12)),
                            pmt.cdr(msgs[-1]))                # 10, 11 missing at the end
        dec, y, _ = self._run_decoder(msgs)
        spf = 1280
        self.assertEqual(len(y), 12 * spf)
        st = dec.stats()
        self.assertEqual(st["frames_decoded"], 5)             # 0 1 3 5 9
        self.assertEqual(st["frames_malformed"], 4)
        self.assertEqual(st["frames_missing"], 4)             # 2 8 10 11
        for f in (2, 4, 6, 7, 8, 10, 11):
            np.testing.assert_array_equal(y[f * spf:(f + 1) * spf], 0.0, err_msg=f"frame {f}")
        for f in (0, 1, 3, 5, 9):
            self.assertGreater(float(np.abs(y[f * spf:(f + 1) * spf]).max()), 1e-4, f"frame {f}")

    def test_decoder_holds_audio_until_play_time(self):
        """Frames with a play_time ahead (the playout clock's decode lead) are decoded at once
        and leave when due: out_time >= play_time, counted held; a play_time more than
        MAX_HOLD_S ahead or not a finite number holds nothing; every sample still comes out."""
        import math
        toks = list(np.random.default_rng(2).integers(0, 2048, 8))
        dec = mimi_decoder(16000, weights=SEED, threads=1)
        snk = blocks.vector_sink_f()
        lat = blocks.message_debug()
        tb = gr.top_block()
        tb.connect(dec, snk)
        tb.msg_connect((dec, "latency"), (lat, "store"))
        tb.start()
        t0 = time.monotonic()
        play = {0: None, 1: t0 - 1.0, 2: t0 + 0.8, 3: t0 + 1.1,   # 3: 300 ms after 2 (a loaded CI decodes slowly)
                 4: t0 + 100.0, 5: math.nan}

        def pdu(n):
            meta = pmt.dict_add(pmt.car(make_frame_pdu(n, toks)), pmt.intern("rx_time"), pmt.from_double(t0))
            if play[n] is not None:
                meta = pmt.dict_add(meta, pmt.intern("play_time"), pmt.from_double(play[n]))
            return pmt.cons(meta, pmt.cdr(make_frame_pdu(n, toks)))

        eos = pmt.dict_add(pmt.dict_add(pmt.make_dict(), pmt.intern("eos"), pmt.PMT_T),
                           pmt.intern("frame"), pmt.from_uint64(6))
        for n in range(6):
            dec.to_basic_block()._post(pmt.intern("in"), pdu(n))
        dec.to_basic_block()._post(pmt.intern("in"), pmt.cons(eos, pmt.init_u16vector(0, [])))
        tb.wait()
        self.assertEqual(len(snk.data()), 6 * 1280)
        msgs = [pmt.to_python(pmt.car(lat.get_message(i))) for i in range(lat.num_messages())]
        self.assertEqual([m["frame"] for m in msgs], list(range(6)))
        out = {m["frame"]: m["out_time"] for m in msgs}
        for n in (2, 3):
            self.assertGreaterEqual(out[n], play[n], n)
            self.assertAlmostEqual(msgs[n]["play_time"], play[n], 9)
        self.assertLess(out[1], play[2])                # frames before the held one leave at once
        self.assertLess(out[4], play[4] - 98.0)         # 100 s ahead: not on this clock, not held
        self.assertNotIn("play_time", msgs[5])          # NaN: no play time
        self.assertEqual((dec.frames_held(), dec.hold_refused()), (2, 1))

    def test_fixed_rate_output_scripted(self):
        """FixedRateOutput on a scripted sequence (16 kHz, 1280-sample frames; the defaults:
        slip in past 10 ms, out past 30 ms, to the play time): on the line, a small move kept,
        a move 50 ms later (800 samples in), 60 ms earlier (half a frame cut, no more), a
        restart 0.6 s later (a new line); bad parameters refused."""
        r = FixedRateOutput(16000)
        t = 10.0
        self.assertIsNone(r.due(0))
        self.assertEqual(r.frame(0, t, 1280), (0, 0, t))                       # the line starts
        got = [r.frame(1280, t + 0.08, 1280), r.frame(2560, t + 0.165, 1280)]
        self.assertEqual([g[:2] for g in got], [(0, 0), (0, 0)])
        self.assertAlmostEqual(got[1][2], t + 0.16, 9)                         # 5 ms later: kept
        ins, drop, due = r.frame(3840, t + 0.29, 1280)                          # 50 ms later than due
        self.assertEqual((ins, drop), (800, 0))
        self.assertAlmostEqual(due, t + 0.29, 9)                                # at its play_time
        ins, drop, due = r.frame(5920, t + 0.36, 1280)                          # 10 ms before due: kept
        self.assertEqual((ins, drop), (0, 0))
        self.assertAlmostEqual(due, t + 0.37, 9)
        ins, drop, due = r.frame(7200, t + 0.39, 1280)                          # 60 ms before due
        self.assertEqual((ins, drop), (0, 640))                                 # 60 ms wanted, half a frame cut
        self.assertAlmostEqual(due, t + 0.45, 9)
        ins, drop, due = r.frame(7840, t + 0.47, 1280)                          # 20 ms before: kept
        self.assertEqual((ins, drop), (0, 0))
        self.assertAlmostEqual(due, t + 0.49, 9)
        self.assertEqual(r.frame(9120, t + 1.17, 1280), (0, 0, t + 1.17))      # 600 ms later: new line
        self.assertAlmostEqual(r.due(9120 + 1280), t + 1.25, 9)
        self.assertEqual(dict(r.counts), dict(slips_in=1, samples_inserted=800, slips_out=1,
                                              samples_dropped=640, resyncs=1, primes=0, samples_primed=0))
        # primed (a sound card's start buffer): 100 ms of silence before the first frame and
        # before the frame that starts a new line, ahead of the line; the rest as above
        r = FixedRateOutput(16000, prime_s=0.1)
        self.assertEqual(r.frame(0, t, 1280), (1600, 0, t))                    # out with the frame, at t
        self.assertEqual(r.last_prime, 1600)
        self.assertAlmostEqual(r.due(1600), t, 9)
        self.assertAlmostEqual(r.due(0), t - 0.1, 9)                            # the prime: due before
        self.assertEqual(r.frame(2880, t + 0.08, 1280), (0, 0, t + 0.08))       # on the line
        self.assertEqual(r.last_prime, 0)
        ins, drop, due = r.frame(4160, t + 0.21, 1280)                          # 50 ms later: a slip
        self.assertEqual((ins, drop), (800, 0))
        self.assertAlmostEqual(due, t + 0.21, 9)
        self.assertEqual(r.frame(6240, t + 0.9, 1280), (1600, 0, t + 0.9))    # new line: primed again
        self.assertAlmostEqual(r.due(6240 + 1600), t + 0.9, 9)
        self.assertEqual(dict(r.counts), dict(slips_in=1, samples_inserted=800, slips_out=0,
                                              samples_dropped=0, resyncs=1, primes=2, samples_primed=3200))
        for kw in (dict(slip_in_s=-0.1), dict(slip_to_s=0.05), dict(resync_s=0.001), dict(prime_s=-0.01),
                   dict(prime_s=0.6)):
            with self.assertRaises(ValueError, msg=kw):
                FixedRateOutput(16000, **kw)
        with self.assertRaises(ValueError):
            FixedRateOutput(0)

    def test_decoder_fixed_rate_output(self):
        """mimi_decoder(fixed_rate=True) on frames whose play times move: 800 samples go in
        before frame 3 (ramped to silence), 640 of frame 5's first samples are cut, every other
        sample is the plain decoder's; each frame leaves at or after its due time on the
        stream, and its latency message says which output sample it became."""
        toks = list(np.random.default_rng(3).integers(0, 2048, 8))
        rate, spf = 16000, 1280

        def run(fixed, play, prime_ms=0.0):
            dec = mimi_decoder(rate, weights=SEED, threads=1, fixed_rate=fixed, output_prime_ms=prime_ms)
            snk, lat, tb = blocks.vector_sink_f(), blocks.message_debug(), gr.top_block()
            dec.arrivals = arrival_sink()
            tb.connect(dec, snk)
            tb.connect(dec, dec.arrivals)
            tb.msg_connect((dec, "latency"), (lat, "store"))
            tb.start()
            play = play() if callable(play) else play   # times from now (the decoder is built)
            for n in range(len(play)):
                meta = pmt.car(make_frame_pdu(n, toks))
                if play[n] is not None:
                    meta = pmt.dict_add(meta, pmt.intern("play_time"), pmt.from_double(play[n]))
                    meta = pmt.dict_add(meta, pmt.intern("rx_time"), pmt.from_double(play[n] - 0.1))
                dec.to_basic_block()._post(pmt.intern("in"), pmt.cons(meta, pmt.cdr(make_frame_pdu(n, toks))))
            eos = pmt.dict_add(pmt.dict_add(pmt.make_dict(), pmt.intern("eos"), pmt.PMT_T),
                               pmt.intern("frame"), pmt.from_uint64(len(play)))
            dec.to_basic_block()._post(pmt.intern("in"), pmt.cons(eos, pmt.init_u16vector(0, [])))
            tb.wait()
            msgs = [pmt.to_python(pmt.car(lat.get_message(i))) for i in range(lat.num_messages())]
            return dec, np.array(snk.data(), np.float32), msgs

        _, ref, _ = run(False, [None] * 6)
        t0 = time.monotonic() + 0.3
        play = [t0, t0 + 0.08, t0 + 0.16, t0 + 0.29, t0 + 0.36, t0 + 0.39]
        dec, out, msgs = run(True, play)
        self.assertEqual(dec.rate_stats(), dict(slips_in=1, samples_inserted=800, slips_out=1,
                                                samples_dropped=640, resyncs=0, primes=0, samples_primed=0))
        self.assertEqual(len(out), 6 * spf + 800 - 640)
        self.assertEqual(dec.stream_samples(), len(out))
        self.assertEqual([m["frame"] for m in msgs], list(range(6)))
        self.assertEqual([m["out_sample"] for m in msgs], [0, 1280, 2560, 4640, 5920, 7200])
        due = [t0, t0 + 0.08, t0 + 0.16, t0 + 0.29, t0 + 0.37, t0 + 0.45]
        for n, m in enumerate(msgs):
            self.assertGreaterEqual(m["out_time"], due[n], n)
            self.assertAlmostEqual(m["due_time"], due[n], 6)
            self.assertAlmostEqual(m["play_time"], play[n], 9)
        f = int(0.002 * rate)                                   # the ramps
        np.testing.assert_array_equal(out[:3 * spf], ref[:3 * spf])
        np.testing.assert_array_equal(out[3 * spf + f:3 * spf + 800], 0.0)          # silence put in
        np.testing.assert_array_equal(out[4640 + f:7200], ref[3 * spf + f:5 * spf])  # frames 3, 4 whole
        np.testing.assert_array_equal(out[7200 + f:], ref[5 * spf + 640 + f:])      # frame 5 from its 640th
        self.assertTrue(np.all(np.abs(out[4640:4640 + f]) <= np.abs(ref[3 * spf:3 * spf + f]) + 1e-6))
        # primed for a sound card: 100 ms of silence ahead of the first frame, the frames on
        # their line after it, exactly the plain decoder's but for the first frame's fade-in
        start = []

        def times():    # frame 0 due 0.3 s after the flowgraph started: decoded well before
            start.append(time.monotonic() + 0.3)
            return [start[0] + 0.08 * n for n in range(4)]
        dec, out, msgs = run(True, times, prime_ms=100.0)
        t0 = start[0]
        self.assertEqual(dec.rate_stats(), dict(slips_in=0, samples_inserted=0, slips_out=0, samples_dropped=0,
                                                resyncs=0, primes=1, samples_primed=1600))
        self.assertEqual(len(out), 1600 + 4 * spf)
        self.assertEqual(dec.stream_samples(), len(out))
        self.assertEqual([m["out_sample"] for m in msgs], [1600 + spf * n for n in range(4)])
        for n, m in enumerate(msgs):
            self.assertGreaterEqual(m["out_time"], t0 + 0.08 * n, n)
            self.assertAlmostEqual(m["due_time"], t0 + 0.08 * n, 6)
        np.testing.assert_array_equal(out[:1600], 0.0)
        np.testing.assert_array_equal(out[1600 + f:], ref[f:4 * spf])
        # the prime left with frame 0, when it was due (not when frame 0 was decoded, 0.3 s
        # before): a card started by it plays frame 0 100 ms after its time on the line
        self.assertEqual(dec.arrivals.calls[0][0], 0)
        self.assertGreaterEqual(dec.arrivals.calls[0][1], t0)
        with self.assertRaisesRegex(ValueError, "needs fixed_rate=True"):
            mimi_decoder(rate, weights=SEED, threads=1, output_prime_ms=50.0)

    def test_codebook_change_in_flowgraph_metadata(self):
        rate = 16000
        x = test_signal(rate * 3, rate=rate)        # 37 frames
        tb = gr.top_block()
        src = blocks.vector_source_f(x.tolist())
        enc = mimi_encoder(rate, 8, weights=SEED, threads=1)
        dbg = blocks.message_debug()
        tb.connect(src, enc)
        tb.msg_connect((enc, "out"), (dbg, "store"))
        ctl = pmt.dict_add(pmt.make_dict(), pmt.intern("n_q"), pmt.from_long(4))
        ctl = pmt.dict_add(ctl, pmt.intern("frame"), pmt.from_long(10))
        enc.set_n_q(16, frame=20)
        enc.to_basic_block()._post(pmt.intern("n_q"), ctl)
        enc.to_basic_block()._post(pmt.intern("n_q"), pmt.from_long(99))   # rejected, counted
        tb.run()
        frames = [dbg.get_message(i) for i in range(dbg.num_messages())]
        frames = [f for f in frames if not frame_meta(f).get("eos")]
        self.assertEqual(len(frames), 37)
        self.assertEqual(enc.n_q_rejected(), 1)
        for i, f in enumerate(frames):
            meta = frame_meta(f)
            want = 8 if i < 10 else (4 if i < 20 else 16)
            self.assertEqual(meta["frame"], i)
            self.assertEqual(meta["n_q"], want, f"frame {i}")
            self.assertEqual(pmt.length(pmt.cdr(f)), want)
            self.assertTrue(meta["untrained"])
            self.assertIn("energy_db", meta)
            self.assertIn("vad", meta)
        # silent gap in the test signal (40-50 %) is flagged
        vads = [frame_meta(f)["vad"] for f in frames]
        self.assertFalse(vads[17])
        self.assertTrue(vads[5])
        # capture_time on every frame (host monotonic clock): never decreasing, at most 80 ms
        # apart (plus the anchor's drift allowance); this source is faster than real time, so the
        # clock's anchor moves earlier and later frames may share a time
        caps = [frame_meta(f)["capture_time"] for f in frames]
        steps = np.diff(caps)
        self.assertTrue(np.all(steps >= 0) and np.all(steps <= 0.0801), steps)
        self.assertLessEqual(caps[-1], time.monotonic())

    def test_flowgraph_exact_sample_count_30s(self):
        for rate in (16000, 48000):
            with self.subTest(rate=rate):
                n = rate * 30
                x = test_signal(n, rate=rate)
                tb = gr.top_block()
                src = blocks.vector_source_f(x.tolist())
                enc = mimi_encoder(rate, 8, weights=SEED, threads=1, frames_per_call=4)
                dec = mimi_decoder(rate, weights=SEED, threads=1, frames_per_call=4)
                cnt = blocks.message_debug()
                snk = blocks.vector_sink_f()
                tb.connect(src, enc)
                tb.msg_connect((enc, "out"), (dec, "in"))
                tb.msg_connect((enc, "out"), (cnt, "store"))
                tb.connect(dec, snk)
                tb.run()
                self.assertEqual(len(snk.data()), n)
                self.assertEqual(enc.frames_out(), 375)
                self.assertEqual(dec.frames_in(), 375)
                self.assertEqual(dec.frames_decoded(), 375)
                self.assertEqual(dec.frames_missing() + dec.frames_malformed() + dec.frames_late(), 0)
                # every frame came with its capture_time: each measured as it left
                self.assertEqual(dec.latency()["capture_to_output"]["frames"], 375)
                self.assertEqual(dec.latency()["receive_to_output"]["frames"], 0)
                tags = snk.tags()
                self.assertEqual([(t.offset, pmt.symbol_to_string(t.key)) for t in tags], [(0, "untrained")])


if __name__ == "__main__":
    import sys
    import unittest
    result = unittest.TextTestRunner(verbosity=2).run(unittest.defaultTestLoader.loadTestsFromModule(
        sys.modules[__name__]))
    sys.exit(0 if result.wasSuccessful() else 1)
