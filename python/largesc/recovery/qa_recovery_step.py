#!/usr/bin/env python3
#
# Copyright 2026 gr-largesc authors.
# SPDX-License-Identifier: GPL-3.0-or-later
#
"""The masked recovery step (recovery.lm.LMRecovery): greedy predictions
equal the eager reference (EagerLMRecovery) token for token, on the tiny
preset and on a tiny model with small100m's layout (16 streams, 8 predicted,
acoustic delay 1), for both feed_back modes, at token loss 0, 20 % i.i.d.,
Gilbert-Elliott frame bursts (mean 3) and 100 %, with the depth step cut
after the last lost codebook (CPU default) and over all dep_q codebooks
(the CUDA graph's shape); sampling stays seeded. Also benchmarks/gpu_check.py
--tiny --cpu runs and prints its JSON lines. CPU only, random weights."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
from gnuradio import gr_unittest

from gnuradio.largesc import recovery as R

import torch

torch.set_num_threads(1)

ROOT = Path(__file__).resolve().parents[3]

# tiny sizes with small100m's stream layout
LAYOUT100M = dict(R.PRESETS["small100m"], dim=64, num_heads=4, num_layers=2, hidden_scale=4,
                  context=64, depformer_dim=64, depformer_dim_feedforward=256,
                  depformer_num_heads=4)


class qa_recovery_step(gr_unittest.TestCase):

    def _compare(self, cfg, seed):
        model = R.build_lm(R.lm_config(cfg), seed)
        rng = np.random.default_rng(seed)
        for fb in R.FEED_BACK:
            for kind in R.LOSS_PATTERNS:
                T = 24
                tok = rng.integers(0, 2048, (T, 8))
                m = R.loss_pattern(kind, T, 8, rng)
                m[5, 6:] = 0               # a narrow-looking frame: high codebooks lost
                if kind == "none":
                    m[:] = 1
                ref = R.TokenRecovery("lm", lm=R.EagerLMRecovery(model, feed_back=fb))
                want, _ = ref.recover_sequence(tok, m)
                ref.lm.close()
                for full in (False, True):
                    with self.subTest(feed_back=fb, loss=kind, full_depth=full):
                        lm = R.LMRecovery(model, feed_back=fb)
                        lm.full_depth = full
                        rec = R.TokenRecovery("lm", lm=lm)
                        got, _ = rec.recover_sequence(tok, m)
                        got2, _ = rec.recover_sequence(tok, m)     # after reset: same again
                        lm.close()
                        np.testing.assert_array_equal(got, want)
                        np.testing.assert_array_equal(got2, want)
                        self.assertTrue((got[m == 1] == tok[m == 1]).all())

    def test_greedy_equals_eager_tiny(self):
        self._compare("tiny", 5)

    def test_greedy_equals_eager_small100m_layout(self):
        self._compare(LAYOUT100M, 6)

    def test_narrow_frames_and_latency(self):
        model = R.build_lm(R.lm_config(LAYOUT100M), 2)
        rng = np.random.default_rng(1)
        outs = []
        for cls in (R.EagerLMRecovery, R.LMRecovery):
            rec = R.TokenRecovery("lm", lm=cls(model, feed_back="predicted"))
            self.assertEqual(rec.latency_frames, 1)
            frames = []
            for t in range(20):
                n = int(rng.integers(1, 12))
                frames += rec.push(rng.integers(0, 2048, n), (rng.random(n) > 0.4).astype(np.uint8))
            frames += rec.flush()
            rec.lm.close()
            self.assertEqual([f.index for f in frames], list(range(20)))
            outs.append([f.tokens.tolist() for f in frames])
            rng = np.random.default_rng(1)
        self.assertEqual(outs[0], outs[1])

    def test_sampling_seeded(self):
        model = R.build_lm(R.lm_config("tiny"), 7)
        rng = np.random.default_rng(3)
        tok, m = rng.integers(0, 2048, (16, 8)), (rng.random((16, 8)) > 0.5).astype(np.uint8)
        lm = R.LMRecovery(model, temperature=1.0, top_k=50, seed=4)
        a = R.TokenRecovery("lm", lm=lm)
        o1, _ = a.recover_sequence(tok, m)
        o2, _ = a.recover_sequence(tok, m)
        lm.seed = 5
        o3, _ = a.recover_sequence(tok, m)
        lm.close()
        np.testing.assert_array_equal(o1, o2)
        self.assertFalse((o1 == o3).all())
        self.assertTrue((o1[m == 1] == tok[m == 1]).all())

    def test_gpu_check_tiny_cpu(self):
        import tempfile
        wav = os.path.join(tempfile.mkdtemp(prefix="qa_gpu_check_"), "speech.wav")
        script = str(ROOT / "benchmarks" / "gpu_check.py")
        w = subprocess.run([sys.executable, "-B", script, "--write-speech", wav],
                           capture_output=True, text=True, timeout=120)
        self.assertEqual(w.returncode, 0, w.stderr[-3000:])
        self.assertGreater(json.loads(w.stdout.splitlines()[-1])["seconds"], 20.0)
        p = subprocess.run([sys.executable, "-B", script, "--tiny", "--cpu", "--speech", wav],
                           capture_output=True, text=True, timeout=240)
        self.assertEqual(p.returncode, 0, p.stderr[-3000:])
        rows = [json.loads(x) for x in p.stdout.splitlines() if x.startswith("{")]
        what = {r.get("what") for r in rows}
        for w in ("recovery_step", "lmgen_step", "mimi", "rx_chain", "lora_finetune", "done"):
            self.assertIn(w, what, p.stdout[-3000:])
        for r in rows:
            self.assertNotIn("error", r)
            if r.get("what") == "recovery_step":
                self.assertTrue(r["equal_to_eager"], r)
        # item 2: this module's Mimi (exact and eager, 8 and 32 codebooks) on
        # the same device as moshi's streaming Mimi, tokens equal frame by frame
        ours = [r for r in rows if r.get("what") == "mimi" and r["impl"].startswith("largesc")]
        self.assertEqual(sorted((r["impl"], r["n_q"]) for r in ours),
                         [("largesc eager", 8), ("largesc eager", 32),
                          ("largesc exact", 8), ("largesc exact", 32)])
        for r in ours:
            self.assertTrue(r["tokens_equal_moshi"], r)
        chain = [r for r in rows if r.get("what") == "rx_chain"][0]
        self.assertEqual(chain["frames"], 25)
        self.assertEqual(chain["audio"], "speech speech.wav, looped")


if __name__ == "__main__":
    gr_unittest.run(qa_recovery_step)
