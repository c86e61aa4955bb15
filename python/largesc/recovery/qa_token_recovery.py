#!/usr/bin/env python3
#
# Copyright 2026 gr-largesc authors.
# SPDX-License-Identifier: GPL-3.0-or-later
#
"""token_recovery: the hold rule exactly, received tokens untouched, the lm
backend (streaming == teacher-forced batch pass, delays, sampling seed),
a tiny model trained by finetune on structured token sequences beating hold,
adapter round trip and refusal, bad input, the block in a flowgraph, the CLI.

Token data: finetune.synthetic_tokens, a cyclic Markov chain on codebook 0
(steps 0/1/2 with probability 0.2/0.7/0.1) and codebook c following codebook
c-1 of the same frame with probability 0.8 (16 states per codebook mapped
to random token ids). No speech or weights needed."""

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pmt
from gnuradio import blocks, gr, gr_unittest

from gnuradio import largesc
from gnuradio.largesc.recovery import finetune as F
from gnuradio.largesc import recovery as R
from gnuradio.largesc.common.pacing import post_paced, wait_for

import torch

torch.set_num_threads(1)   # small models: one thread is fastest (and the CPU is shared)

TMP = tempfile.mkdtemp(prefix="qa_token_recovery_")
APPS = Path(__file__).resolve().parents[3] / "apps"

_TRAINED = {}


def trained():
    """Trains once: a tiny model (full training, finetune mode 'full') on
    synthetic tokens, then a LoRA adapter on top of it (mode 'lora')."""
    if not _TRAINED:
        seqs = list(F.synthetic_tokens(24, 128, 8, seed=0, states=16))
        full = F.train(seqs, os.path.join(TMP, "full"), progress=False, log=lambda *_: None,
                       mode="full", steps=200, lr=5e-3, batch=8, seq_len=16, eval_frames=640,
                       ckpt_every=60, threads=1)
        lora = F.train(seqs, os.path.join(TMP, "lora"), progress=False, log=lambda *_: None,
                       mode="lora", base=full["adapter"], rank=4, steps=6, lr=1e-3, batch=4,
                       seq_len=16, eval_frames=128, ckpt_every=3, threads=1)
        _TRAINED.update(full=full, lora=lora, seqs=seqs)
    return _TRAINED


def finetune_cli(*args):
    """largesc-finetune with these arguments, run in this process (its main,
    as apps/largesc-finetune calls it; test_cli_speech_offline_and_random runs
    the script itself): (exit status, stdout, stderr)."""
    import contextlib
    import io
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            rc = F.main([str(a) for a in args])
        except SystemExit as e:
            rc = e.code
    return rc, out.getvalue(), err.getvalue()


def frame_pdu(frame, tokens, mask):
    meta = pmt.make_dict()
    meta = pmt.dict_add(meta, pmt.intern("frame"), pmt.from_uint64(frame))
    meta = pmt.dict_add(meta, pmt.intern("n_q"), pmt.from_long(len(tokens)))
    meta = pmt.dict_add(meta, pmt.intern("mask"), pmt.init_u8vector(len(mask), [int(x) for x in mask]))
    return pmt.cons(meta, pmt.init_u16vector(len(tokens), [int(x) for x in tokens]))


def run_block(blk, pdus):
    """Posts PDUs (paced) into a running flowgraph; returns the output PDUs."""
    tb = gr.top_block()
    dbg = blocks.message_debug()
    tb.msg_connect(blk, "out", dbg, "store")
    tb.start()
    try:
        post_paced(blk, "in", pdus, blk.frames_in, window=256)
        wait_for(lambda: dbg.num_messages() >= len(pdus) - blk.latency_frames()
                 and blk.frames_in() == len(pdus), 60)
        blk.flush()
        wait_for(lambda: dbg.num_messages() >= len(pdus), 60)
    finally:
        tb.stop()
        tb.wait()
    return [dbg.get_message(i) for i in range(dbg.num_messages())]


def unpack(msg):
    meta = pmt.car(msg)
    toks = np.array(pmt.u16vector_elements(pmt.cdr(msg)), dtype=np.int64)
    get = lambda k: pmt.dict_ref(meta, pmt.intern(k), pmt.PMT_NIL)
    return (toks, np.array(pmt.u8vector_elements(get("mask"))),
            np.array(pmt.u8vector_elements(get("recovered"))), meta, get)


class qa_token_recovery(gr_unittest.TestCase):

    # --- hold ---------------------------------------------------------------

    def test_hold_exact(self):
        """The hold rule of recovery/core.py, frame by frame (max_hold 2)."""
        r = R.TokenRecovery("hold", max_hold=2, min_codebooks=1)
        X = 9  # value of a lost token in the input: must never appear
        steps = [
            # tokens, mask -> expected tokens (n_q_out = len), recovered
            ([10, 20, 30, 40], [1, 1, 1, 1], [10, 20, 30, 40], [0, 0, 0, 0]),
            ([11, X, 31, X], [1, 0, 1, 0], [11, 20, 31, 40], [0, 1, 0, 1]),      # run 1
            ([X, X, X, X], [0, 0, 0, 0], [11, 20, 31, 40], [1, 1, 1, 1]),         # run 2 (cb1,3), 1
            ([12, X, 32, X], [1, 0, 1, 0], [12, 20, 32], [0, 1, 0]),             # cb1, cb3 stale: cb3 dropped,
                                                                                  # cb1 kept (cb2 arrived)
            ([13, X, 33, 43], [1, 0, 1, 1], [13, 20, 33, 43], [0, 1, 0, 0]),      # received cb3 keeps width
            ([14, 24], [1, 1], [14, 24], [0, 0]),                                 # narrower frame
            ([X, X, X], [0, 0, 0], [14, 24, 33], [1, 1, 1]),                     # cb2 run 2 (narrow frame counted)
            ([X, X, X], [0, 0, 0], [14, 24], [1, 1]),                            # cb2 run 3: dropped
        ]
        for i, (tok, m, exp, rec) in enumerate(steps):
            with self.subTest(frame=i):
                (f,) = r.push(tok, m)
                self.assertEqual(f.tokens.tolist(), exp)
                self.assertEqual(f.recovered.tolist(), rec)
                self.assertEqual(f.mask.tolist(), m[:len(exp)])
                self.assertEqual(f.n_q_in, len(tok))
        # never-received codebook: 0 while below min_codebooks, otherwise dropped
        r = R.TokenRecovery("hold", max_hold=-1, min_codebooks=2)
        (f,) = r.push([X, X, X], [0, 0, 0])
        self.assertEqual(f.tokens.tolist(), [0, 0])
        (f,) = r.push([5, X, 7], [1, 0, 1])
        self.assertEqual(f.tokens.tolist(), [5, 0, 7])
        (f,) = r.push([X, X, X], [0, 0, 0])        # max_hold -1: cb0 held forever, cb1 never came
        self.assertEqual(f.tokens.tolist(), [5, 0])
        # max_hold 0: a lost codebook is dropped at once (down to min_codebooks)
        r = R.TokenRecovery("hold", max_hold=0)
        r.push([1, 2, 3], [1, 1, 1])
        (f,) = r.push([X, X, 3], [1, 0, 1])
        self.assertEqual(f.tokens.tolist(), [X, 2, 3])
        (f,) = r.push([1, X, X], [1, 0, 0])
        self.assertEqual(f.tokens.tolist(), [1])

    def test_received_pass_through(self):
        rng = np.random.default_rng(1)
        cfg = R.lm_config("tiny")
        lm = R.TokenRecovery("lm", lm=R.LMRecovery(R.build_lm(cfg, 3), temperature=1.0, top_k=50))
        hold = R.TokenRecovery("hold", max_hold=1)
        for name, r in (("hold", hold), ("lm", lm)):
            for trial in range(3 if name == "lm" else 30):
                T, n = 24, int(rng.integers(1, 33))
                tok = rng.integers(0, 2048, (T, n))
                m = (rng.random((T, n)) > rng.uniform(0, 1)).astype(np.uint8)
                r.reset()
                frames = []
                for t in range(T):
                    frames += r.push(tok[t], m[t])
                frames += r.flush()
                self.assertEqual([f.index for f in frames], list(range(T)))
                for f in frames:
                    k = len(f.tokens)
                    got = m[f.index, :k] == 1
                    self.assertTrue((f.tokens[got] == tok[f.index, :k][got]).all(), name)
                    self.assertTrue((f.recovered == 1 - m[f.index, :k]).all())
                    self.assertGreaterEqual(k, 1 + np.flatnonzero(m[f.index]).max(initial=-1))
                    if name == "lm":
                        self.assertGreaterEqual(k, min(n, 8))

    # --- lm backend ---------------------------------------------------------

    def test_streaming_equals_batch(self):
        """Streaming recovery (erased, greedy) predicts exactly what one
        teacher-forced pass of the model predicts; with moshi-style delays
        the frames come out max(delays) frames late, all of them, in order."""
        rng = np.random.default_rng(2)
        tok = rng.integers(0, 2048, (2, 40, 8))
        m = (rng.random((2, 40, 8)) > 0.3).astype(np.uint8)
        for delays in ([0] * 9, [0, 0] + [1] * 7):
            with self.subTest(delays=delays):
                cfg = dict(R.lm_config("tiny"), delays=delays)
                model = R.build_lm(cfg, 5)
                rec = R.TokenRecovery("lm", lm=R.LMRecovery(model))
                self.assertEqual(rec.latency_frames, max(delays))
                outs = []
                for b in range(2):
                    first = rec.push(tok[b, 0], m[b, 0])
                    self.assertEqual(len(first), 1 - max(delays))
                    outs.append(rec.recover_sequence(tok[b], m[b])[0])
                rec.lm.close()
                pred = F.batch_predict(model, tok, m, cfg)
                lost = m == 0
                if max(delays):   # the batch pass leaves the last frame's delayed codebooks undefined
                    lost[:, -1, 1:] = False
                self.assertTrue((np.stack(outs)[lost] == pred[lost]).all())

    def test_push_late_exact(self):
        """push_late (a frame past its deadline): the frames the model holds and this one
        leave exactly as hold fills them, in order, and the model's next frames are those
        of a fresh stream; a second late frame in a row restarts nothing more."""
        rng = np.random.default_rng(4)
        tok = rng.integers(0, 2048, (24, 8))
        m = (rng.random((24, 8)) > 0.3).astype(np.uint8)
        cfg = dict(R.lm_config("tiny"), delays=[0, 0] + [1] * 7)      # the model holds one frame
        model = R.build_lm(cfg, 5)
        rec = R.TokenRecovery("lm", lm=R.LMRecovery(model))
        hold = R.TokenRecovery("hold", min_codebooks=8)                 # the hold the lm backend uses
        hold_out = [hold.push(tok[t], m[t])[0] for t in range(24)]
        out = []
        for t in range(10):
            out += rec.push(tok[t], m[t])
        self.assertEqual([f.index for f in out], list(range(9)))       # frame 9 still held
        late = rec.push_late(tok[10], m[10])
        self.assertEqual([f.index for f in late], [9, 10])
        for f in late:
            self.assertEqual(f.tokens.tolist(), hold_out[f.index].tokens.tolist())
            self.assertEqual(f.recovered.tolist(), (1 - m[f.index]).tolist())
        self.assertEqual(rec.late_restarts, 1)
        after = []
        for t in range(11, 20):
            after += rec.push(tok[t], m[t])
        after += rec.push_late(tok[20], m[20])          # frame 19 held: hold-filled, then 20
        after += rec.push_late(tok[21], m[21])          # the model had no frame: no restart
        self.assertEqual(rec.late_restarts, 2)
        self.assertEqual([f.index for f in after], list(range(11, 22)))
        rec.lm.close()
        fresh = R.TokenRecovery("lm", lm=R.LMRecovery(model))           # a new stream from frame 11
        ref = []
        for t in range(11, 19):
            ref += fresh.push(tok[t], m[t])
        fresh.lm.close()
        for f, r in zip(after[:8], ref):
            self.assertEqual(f.tokens.tolist(), r.tokens.tolist(), f.index)
        for f in after[8:]:
            self.assertEqual(f.tokens.tolist(), hold_out[f.index].tokens.tolist(), f.index)
        self.assertFalse(all(f.tokens.tolist() == hold_out[f.index].tokens.tolist() for f in after[:8]))
        # hold: push_late is push
        h = R.TokenRecovery("hold", min_codebooks=8)
        self.assertEqual([f.tokens.tolist() for t in range(3) for f in h.push_late(tok[t], m[t])],
                         [hold_out[t].tokens.tolist() for t in range(3)])
        self.assertEqual(h.late_restarts, 0)

    def test_block_deadline(self):
        """token_recovery deadline_ms: frames whose play_time is older than it are late:
        counted, marked, filled by hold, the model restarted; frames without play_time or
        in time are not; nothing is lost or reordered. deadline_ms out of range: refused."""
        import time
        rng = np.random.default_rng(6)
        tok = rng.integers(0, 2048, (40, 8))
        m = (rng.random((40, 8)) > 0.3).astype(np.uint8)
        late = {12, 13, 30}
        far = time.monotonic() + 3600.0                 # in time however slow the machine
        pdus = []
        for t in range(40):
            pdu = frame_pdu(t, tok[t], m[t])
            if t >= 5:                                  # frames 0..4 have no play_time
                meta = pmt.dict_add(pmt.car(pdu), pmt.intern("play_time"),
                                    pmt.from_double(1.0 if t in late else far))
                pdu = pmt.cons(meta, pmt.cdr(pdu))
            pdus.append(pdu)
        blk = largesc.token_recovery("lm", model="tiny", deadline_ms=50)
        outs = run_block(blk, pdus)
        self.assertEqual(len(outs), 40)
        self.assertEqual([pmt.to_uint64(unpack(o)[4]("frame")) for o in outs], list(range(40)))
        self.assertEqual(blk.frames_late(), 3)
        self.assertEqual(blk.late_restarts(), 2)        # 13 comes after 12 restarted the model
        self.assertEqual([t for t, o in enumerate(outs) if pmt.equal(unpack(o)[4]("recovery_late"), pmt.PMT_T)],
                         sorted(late))
        hold = R.TokenRecovery("hold", min_codebooks=8)
        for t, o in enumerate(outs):
            h = hold.push(tok[t], m[t])[0]
            if t in late:
                self.assertEqual(unpack(o)[0].tolist(), h.tokens.tolist(), t)
            self.assertTrue((unpack(o)[0][m[t] == 1] == tok[t][m[t] == 1]).all())
        self.assertEqual(largesc.token_recovery("hold", deadline_ms=80).deadline_ms(), 80.0)
        for bad in (-1, 10001, float("nan"), "80"):
            with self.assertRaisesRegex(Exception, "deadline_ms"):
                largesc.token_recovery("hold", deadline_ms=bad)

    def test_sampling_seed(self):
        cfg = R.lm_config("tiny")
        model = R.build_lm(cfg, 7)
        rng = np.random.default_rng(3)
        tok, m = rng.integers(0, 2048, (20, 8)), (rng.random((20, 8)) > 0.5).astype(np.uint8)
        a = R.TokenRecovery("lm", lm=R.LMRecovery(model, temperature=1.0, top_k=100, seed=4))
        o1, _ = a.recover_sequence(tok, m)
        o2, _ = a.recover_sequence(tok, m)
        a.lm.seed = 5
        o3, _ = a.recover_sequence(tok, m)
        np.testing.assert_array_equal(o1, o2)
        self.assertFalse((o1 == o3).all())

    # --- training, adapters -------------------------------------------------

    def test_lm_beats_hold(self):
        """A tiny model trained by finetune beats hold on held-out token
        accuracy under 20 % i.i.d. packet loss, through the streaming path
        the block uses as well as in finetune's own evaluation."""
        tr = trained()
        ev = tr["full"]["eval"]
        self.assertEqual(ev["loss"], {"kind": "iid", "p": 0.2, "burst": 2.0})
        self.assertGreater(ev["accuracy"]["lm"], ev["accuracy"]["hold"] + 0.03, ev)
        self.assertGreater(ev["accuracy_per_codebook"]["lm"][0],
                           ev["accuracy_per_codebook"]["hold"][0] + 0.05, ev)
        # the same through the GNU Radio block (streaming, frame by frame)
        blk = largesc.token_recovery("lm", checkpoint=tr["full"]["adapter"], model="tiny")
        held = tr["full"]["held_out"][0][:96]
        m = F.MaskMaker().make(np.random.default_rng(9), len(held), 8, kind="iid", p=0.2)
        outs = run_block(blk, [frame_pdu(t, held[t], m[t]) for t in range(len(held))])
        self.assertEqual(len(outs), len(held))
        got = np.stack([unpack(o)[0] for o in outs])
        hold, _ = R.TokenRecovery("hold").recover_sequence(held, m)
        lost = m == 0
        acc_lm = ((got == held) & lost).sum() / lost.sum()
        acc_hold = ((hold == held) & lost).sum() / lost.sum()
        self.assertGreater(acc_lm, acc_hold, (acc_lm, acc_hold))
        self.assertTrue((got[~lost] == held[~lost]).all())

    def test_finetune_outputs_and_resume(self):
        tr = trained()
        out = Path(TMP) / "lora"
        for f in ("adapter.safetensors", "adapter.json", "loss.png", "eval.json", "train_state.pt"):
            self.assertTrue((out / f).exists(), f)
        meta = json.loads((out / "adapter.json").read_text())
        self.assertEqual(meta["lora_rank"], 4)
        self.assertEqual(meta["lm_config"], R.lm_config("tiny"))
        self.assertEqual(meta["steps_done"], 6)
        # resume: a longer run continues from the saved step
        logs = []
        res = F.train(tr["seqs"], out, progress=False, log=logs.append, mode="lora",
                      base=tr["full"]["adapter"], rank=4, steps=8, lr=1e-3, batch=4, seq_len=16,
                      eval_frames=64, ckpt_every=3, threads=1)
        self.assertTrue(any("resumed" in str(line) and "step 6" in str(line) for line in logs), logs)
        self.assertEqual(len(res["history"]), 8)

    def test_adapter_round_trip(self):
        """The adapter saved by finetune, loaded by the block, gives exactly
        the outputs of the model finetune trained (same input, same seed)."""
        tr = trained()
        lora = tr["lora"]
        held = tr["full"]["held_out"][0][:40]
        m = F.MaskMaker().make(np.random.default_rng(11), len(held), 8, kind="token", p=0.3)
        pdus = [frame_pdu(100 + t, held[t], m[t]) for t in range(len(held))]
        for temp, top_k in ((0.0, 0), (0.9, 40)):
            with self.subTest(temperature=temp):
                ref = R.TokenRecovery("lm", lm=R.LMRecovery(lora["model"], temperature=temp,
                                                             top_k=top_k, seed=3))
                expect, _ = ref.recover_sequence(held, m)
                ref.lm.close()
                blk = largesc.token_recovery("lm", adapter=lora["adapter"], temperature=temp,
                                             top_k=top_k, seed=3, lora_rank=4)
                self.assertEqual(blk.info()["adapter"], lora["adapter"])
                got = np.stack([unpack(o)[0] for o in run_block(blk, pdus)])
                np.testing.assert_array_equal(got, expect)

    def test_adapter_refused(self):
        tr = trained()
        ad = tr["lora"]["adapter"]
        other = dict(R.lm_config("tiny"), num_layers=3)
        with self.assertRaisesRegex(R.RecoveryError, "another model architecture.*num_layers"):
            largesc.token_recovery("lm", model=other, adapter=ad)
        with self.assertRaisesRegex(R.RecoveryError, "rank 4.*rank 8"):
            largesc.token_recovery("lm", adapter=ad, lora_rank=8)
        # tensors that do not fit (edited file) are refused too
        import shutil
        from safetensors.torch import load_file, save_file
        bad = Path(TMP) / "bad" / "adapter.safetensors"
        bad.parent.mkdir(exist_ok=True)
        shutil.copy(Path(ad).with_suffix(".json"), bad.with_suffix(".json"))
        t = load_file(ad)
        k = sorted(t)[0]
        t[k] = torch.zeros(t[k].shape[0] + 1, *t[k].shape[1:])
        save_file(t, str(bad))
        with self.assertRaisesRegex(R.RecoveryError, "does not fit this model"):
            largesc.token_recovery("lm", adapter=str(bad))

    # --- bad input ----------------------------------------------------------

    def test_bad_construction(self):
        with self.assertRaisesRegex(R.RecoveryError, "unknown recovery backend 'magic'"):
            largesc.token_recovery("magic")
        with self.assertRaisesRegex(R.RecoveryError, "does not exist"):
            largesc.token_recovery("lm", model="tiny", checkpoint="/nonexistent/model.safetensors")
        with self.assertRaisesRegex(R.RecoveryError, "adapter file .* does not exist"):
            largesc.token_recovery("lm", model="tiny", adapter="/nonexistent/a.safetensors")
        with self.assertRaisesRegex(R.RecoveryError, "needs a model config"):
            largesc.token_recovery("lm")
        if not torch.cuda.is_available():
            with self.assertRaisesRegex(R.RecoveryError, "needs a CUDA GPU.*weights"):
                largesc.token_recovery("moshi")
        old = os.environ.get("HF_HUB_OFFLINE")
        os.environ["HF_HUB_OFFLINE"] = "1"
        try:
            with self.assertRaisesRegex(R.RecoveryError, "not in the local Hugging Face cache.*huggingface-cli"):
                R.moshi_weights_file("hf:nobody/no-such-moshi")
        finally:
            if old is None:
                os.environ.pop("HF_HUB_OFFLINE")
            else:
                os.environ["HF_HUB_OFFLINE"] = old
        with self.assertRaisesRegex(ValueError, "mask length 3 does not match the 4 tokens"):
            R.TokenRecovery("hold").push([1, 2, 3, 4], [1, 1, 1])
        with self.assertRaisesRegex(ValueError, "0..2047"):
            R.TokenRecovery("hold").push([1, 2048], [1, 1])
        with self.assertRaises(ValueError):
            R.TokenRecovery("hold").push([1, 2], [1, 2])

    def test_block_hold_and_malformed(self):
        """hold in a flowgraph equals the core; malformed frames are counted
        and passed on as all-lost frames of the last good width; a frame
        number that does not follow starts a new stream."""
        blk = largesc.token_recovery("hold", max_hold=3)
        good = [frame_pdu(t, [t, t + 1, t + 2, t + 3], [1, 1, 1, 1] if t % 3 else [1, 0, 1, 0])
                for t in range(300)]
        meta = pmt.dict_add(pmt.make_dict(), pmt.intern("mask"), pmt.init_u8vector(3, [1, 1, 1]))
        bad = [pmt.cons(meta, pmt.init_u16vector(4, [1, 2, 3, 4])),           # mask length
               pmt.intern("junk"),                                            # not a PDU
               pmt.cons(pmt.make_dict(), pmt.init_u8vector(2, [1, 2])),       # wrong vector
               frame_pdu(103, [4000, 1], [1, 1])]                             # token > 2047
        restart = [frame_pdu(t, [7, 7, 7, 7], [1, 0, 0, 1]) for t in range(3)]
        pdus = good[:100] + bad + [frame_pdu(t + 4, [t, t + 1, t + 2, t + 3],
                                             [1, 1, 1, 1] if t % 3 else [1, 0, 1, 0])
                                   for t in range(100, 300)] + restart
        outs = run_block(blk, pdus)
        self.assertEqual(len(outs), len(pdus))
        self.assertEqual(blk.frames_malformed(), 4)
        self.assertEqual(blk.frames_in(), blk.frames_out())
        self.assertEqual(blk.restarts(), 1)
        # reference: the core on the same frames (malformed = all lost, width 4)
        ref = R.TokenRecovery("hold", max_hold=3)
        exp = []
        for t in range(300):
            if t == 100:
                exp += [ref.push([0] * 4, [0] * 4)[0] for _ in range(4)]
            exp += ref.push([t, t + 1, t + 2, t + 3], [1, 1, 1, 1] if t % 3 else [1, 0, 1, 0])
        ref.reset()
        exp += [ref.push([7] * 4, [1, 0, 0, 1])[0] for _ in range(3)]
        self.assertEqual(exp[0].tokens.tolist(), [0, 0, 2])   # cb1 never received, cb3 dropped
        self.assertEqual(exp[3].tokens.tolist(), [3, 3, 5, 5])
        self.assertEqual(exp[-1].tokens.tolist(), [7, 0, 0, 7])
        for i, (o, e) in enumerate(zip(outs, exp)):
            toks, mask, rec, meta, get = unpack(o)
            self.assertEqual(toks.tolist(), e.tokens.tolist(), i)
            self.assertEqual(rec.tolist(), e.recovered.tolist(), i)
            self.assertEqual(mask.tolist(), e.mask.tolist(), i)
            self.assertEqual(pmt.to_long(get("n_q")), len(e.tokens))
            self.assertEqual(pmt.to_long(get("n_q_in")), 4)
            self.assertEqual(pmt.equal(get("recovery_malformed"), pmt.PMT_T), 100 <= i < 104)
        self.assertEqual(pmt.to_uint64(pmt.dict_ref(pmt.car(outs[101]), pmt.intern("frame"),
                                                    pmt.PMT_NIL)), 101)
        self.assertEqual(blk.tokens_recovered(), sum(int(e.recovered.sum()) for e in exp))

    # --- held-out split, short data ---------------------------------------------

    def test_finetune_settings_checked(self):
        good = dict(F.DEFAULTS)
        F.check_settings(good)
        for k, v, msg in (("steps", 0, "steps must be an integer in 1.."), ("rank", 2.5, "rank must be an integer"),
                          ("lr", float("nan"), "lr must be a finite number > 0"),
                          ("p_min", 0.9, r"p_min \(0.9\) must be <= p_max"),
                          ("mask_kinds", ["iid", "x"], "mask_kinds must be a non-empty list"),
                          ("eval_window", 8, "eval_window must be an integer in 16..")):
            with self.subTest(k=k):
                with self.assertRaisesRegex(ValueError, msg):
                    F.check_settings(dict(good, **{k: v}))
        with self.assertRaisesRegex(ValueError, "batch must be an integer in 1.."):
            F.train([np.zeros((100, 8), np.int64)], os.path.join(TMP, "never"), progress=False, batch=0)
        self.assertFalse(os.path.exists(os.path.join(TMP, "never", "eval.json")))

    def test_split_full_windows(self):
        """Held-out data always holds full evaluation windows; frames are
        neither lost nor duplicated; too little data is a clear error."""
        seqs = [np.full((n, 8), i, dtype=np.int64) for i, n in enumerate((80, 70, 42))]
        # the last clip (42 frames) is shorter than the window: the one before is held out
        tr, ho, w = F.split_sequences(seqs, 0.1, 64, 32)
        self.assertEqual((w, [len(s) for s in tr], [len(s) for s in ho]), (64, [80, 42], [70]))
        self.assertEqual(int(ho[0][0, 0]), 1)
        # one 89-frame sequence (seq-len 32): the window shrinks to the 57 frames that fit
        one = [np.arange(89 * 8).reshape(89, 8)]
        tr, ho, w = F.split_sequences(one, 0.1, 64, 32)
        self.assertEqual((w, [len(s) for s in tr], [len(s) for s in ho]), (57, [32], [57]))
        self.assertTrue((np.concatenate(tr + ho) == one[0]).all())
        # one long sequence: whole 64-frame windows from its tail, about held_out of it
        tr, ho, w = F.split_sequences([np.zeros((1000, 8), np.int64)], 0.1, 64, 32)
        self.assertEqual((w, [len(s) for s in tr], [len(s) for s in ho]), (64, [936], [64]))
        tr, ho, w = F.split_sequences([np.zeros((1000, 8), np.int64)], 0.2, 64, 32)
        self.assertEqual((w, [len(s) for s in tr], [len(s) for s in ho]), (64, [808], [192]))
        # many sequences: round(10 %) of them, from the end (as before)
        many = [np.zeros((128, 8), np.int64) for _ in range(24)]
        tr, ho, w = F.split_sequences(many, 0.1, 64, 16)
        self.assertEqual((len(tr), len(ho), w), (22, 2, 64))
        # two clips, the long one would be more than half: a tail of it instead
        tr, ho, w = F.split_sequences([seqs[0], seqs[2]], 0.1, 64, 32)
        self.assertEqual((w, [len(s) for s in tr], [len(s) for s in ho]), (64, [16, 42], [64]))
        # too little: the message says how much is needed, in frames and seconds
        for lens, need in (((40,), "48 frames (3.8 s"), ((20, 20), "48 frames (3.8 s")):
            with self.assertRaises(F.DataError) as cm:
                F.split_sequences([np.zeros((n, 8), np.int64) for n in lens], 0.1, 64, 32)
            self.assertIn(need, str(cm.exception))
            self.assertIn("96 frames (7.7 s)", str(cm.exception))

    def test_finetune_short_held_out(self):
        """Training on data whose last clip is shorter than the evaluation
        window finishes, writes eval.json with full windows, and flushes
        subnormal floats (CPU speed)."""
        seqs = list(F.synthetic_tokens(3, 80, 8, seed=3))
        seqs[-1] = seqs[-1][:42]
        out = Path(TMP) / "short"
        res = F.train(seqs, out, progress=False, log=lambda *_: None, mode="lora", rank=2,
                      steps=2, batch=2, seq_len=16, eval_frames=256, ckpt_every=2, threads=1)
        ev = json.loads((out / "eval.json").read_text())
        self.assertEqual((ev["window"], ev["frames"]), (64, 64))
        self.assertEqual([len(s) for s in res["held_out"]], [80])
        self.assertEqual(json.loads((out / "adapter.json").read_text())["eval"]["window"], 64)
        self.assertEqual(torch.tensor([1e-39], dtype=torch.float32).item(), 0.0)

    def test_cli_one_short_sequence(self):
        """--tokens with one 89-frame sequence (default --seq-len 32): the
        evaluation window shrinks to 57 frames, eval.json is written; 40
        frames is a clear error before training, in frames and seconds."""
        base = ["--steps", "2", "--batch", "2", "--rank", "2", "--threads", "1", "--no-progress"]
        toks = F.synthetic_tokens(1, 89, 8, seed=2)[0]
        np.save(os.path.join(TMP, "one.npy"), toks)
        out = os.path.join(TMP, "one")
        rc, so, se = finetune_cli(*base, "--tokens", os.path.join(TMP, "one.npy"), "--out", out)
        self.assertEqual(rc, 0, se[-2000:])
        ev = json.loads(Path(out, "eval.json").read_text())
        self.assertEqual((ev["window"], ev["frames"]), (57, 57))
        self.assertIn("57-frame windows", so + se)
        np.save(os.path.join(TMP, "tiny.npy"), toks[:40])
        out2 = os.path.join(TMP, "tiny")
        rc, so, se = finetune_cli(*base, "--tokens", os.path.join(TMP, "tiny.npy"), "--out", out2)
        self.assertEqual(rc, 2, se[-2000:])
        self.assertIn("too little data", se)
        self.assertIn("48 frames (3.8 s", se)
        self.assertNotIn("Traceback", se)
        self.assertFalse(Path(out2, "train_state.pt").exists())

    def test_cli_speech_offline_and_random(self):
        """Speech files: offline with no --mimi-weights the tool stops before
        training with the hub error naming `--mimi-weights random`; with
        --mimi-weights random (UNTRAINED codec, plumbing only) a folder whose
        last clip (42 frames) is shorter than the window trains and writes
        eval.json."""
        import wave
        speech = Path(TMP) / "speech"
        speech.mkdir(exist_ok=True)
        rng = np.random.default_rng(0)
        for name, frames in (("a.wav", 80), ("b.wav", 42)):
            n = frames * 1920
            x = 0.1 * rng.standard_normal(n) + 0.2 * np.sin(2 * np.pi * 200 * np.arange(n) / 24000)
            with wave.open(str(speech / name), "wb") as w:
                w.setnchannels(1)
                w.setsampwidth(2)
                w.setframerate(24000)
                w.writeframes((np.clip(x, -1, 1) * 32767).astype("<i2").tobytes())
        hf = os.path.join(TMP, "hf_home")
        env = dict(os.environ, OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1", HF_HOME=hf,
                   HF_HUB_CACHE=os.path.join(hf, "hub"))
        base = [sys.executable, str(APPS / "largesc-finetune"), str(speech), "--steps", "2",
                "--batch", "2", "--seq-len", "16", "--rank", "2", "--threads", "1", "--no-progress"]
        out = os.path.join(TMP, "speech_hf")
        p = subprocess.run(base + ["--out", out], capture_output=True, text=True, env=env,
                           timeout=300)
        self.assertEqual(p.returncode, 2, p.stderr[-2000:])
        self.assertIn("`--mimi-weights random`", p.stderr)
        self.assertIn("huggingface-cli download", p.stderr)
        self.assertIn("UNTRAINED", p.stderr)
        self.assertNotIn("Traceback", p.stderr)
        self.assertFalse(Path(out, "train_state.pt").exists())
        out = os.path.join(TMP, "speech_random")
        p = subprocess.run(base + ["--out", out, "--mimi-weights", "random"], capture_output=True,
                           text=True, env=env, timeout=300)
        self.assertEqual(p.returncode, 0, p.stderr[-2000:])
        self.assertIn("UNTRAINED", p.stdout + p.stderr)
        ev = json.loads(Path(out, "eval.json").read_text())
        self.assertEqual((ev["window"], ev["frames"]), (64, 64))

    # --- CLI ------------------------------------------------------------------

    def test_cli(self):
        toks = F.synthetic_tokens(3, 64, 8, seed=1)
        np.save(os.path.join(TMP, "toks.npy"), toks)
        out = os.path.join(TMP, "cli")
        rc, so, se = finetune_cli("--tokens", os.path.join(TMP, "toks.npy"), "--out", out, "--steps", "2",
                                  "--batch", "2", "--seq-len", "16", "--eval-frames", "64",
                                  "--rank", "2", "--threads", "1", "--no-progress")
        self.assertEqual(rc, 0, se[-2000:])
        res = json.loads(so.strip().splitlines()[-1])
        self.assertTrue(Path(res["adapter"]).exists())
        self.assertIn("hold", res["accuracy"])
        sp = res["speed"]                        # issue 11 item 4: steps/s and peak memory
        self.assertEqual((sp["steps"], sp["device"]), (2, "cuda" if torch.cuda.is_available() else "cpu"))
        self.assertGreater(sp["steps_per_s"], 0)
        self.assertGreater(sp.get("peak_gpu_gib", sp.get("peak_rss_gib", 0)), 0)
        self.assertIn("trained 2 steps in", so + se)
        for bad in ("gpu", "cuda:x"):
            rc, _, se = finetune_cli("--synthetic", "2", "--out", out + "-bad", "--device", bad)
            self.assertEqual(rc, 2)
            self.assertIn(f"--device '{bad}': use auto, cpu, cuda or cuda:N", se)
        rc, _, se = finetune_cli("--out", out)
        self.assertNotEqual(rc, 0)
        self.assertIn("no data", se)


if __name__ == "__main__":
    gr_unittest.run(qa_token_recovery)
