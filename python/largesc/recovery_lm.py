#
# Copyright 2026 gr-largesc authors.
# SPDX-License-Identifier: GPL-3.0-or-later
#
"""The `lm` / `moshi` backends' streaming model stepping (LMRecovery)."""

import numpy as np

from .recovery_config import FEED_BACK, RecoveryError


# ----------------------------------------------------------------------------
# lm

class LMRecovery:
    """Streaming LM recovery for one stream (batch 1).

    Model step s (s = 0, 1, ...) is moshi's time step: the temporal
    transformer reads the delayed token layout at position s-1 (moshi's
    initial token at s = 0 and before each stream's delay), then the depth
    transformer walks codebooks 0..dep_q-1 of position s; codebook i there
    belongs to frame s - delays[i+1]. A received token is forced (its
    prediction is skipped), a lost one is predicted. Steps whose codebooks
    are all received skip the depth transformer. Frame t is complete after
    step t + max(delays).
    """

    def __init__(self, model, text_token=-1, feed_back="erased", temperature=0.0, top_k=0,
                 seed=0):
        import torch
        if feed_back not in FEED_BACK:
            raise RecoveryError(f"feed_back must be one of {FEED_BACK}, got {feed_back!r}")
        if float(temperature) < 0 or int(top_k) < 0:
            raise RecoveryError("temperature and top_k must be >= 0")
        self.model = model.eval()
        self.delays = [int(d) for d in model.delays]
        self.max_delay = max(self.delays)
        self.dep_q, self.K, self.card = int(model.dep_q), int(model.num_codebooks), int(model.card)
        self.text_token = int(text_token)
        self.feed_back = feed_back
        self.temperature, self.top_k, self.seed = float(temperature), int(top_k), int(seed)
        self.device = next(model.parameters()).device
        init = [int(model.text_initial_token_id)] + [int(model.initial_token_id)] * model.n_q
        self._initial = np.asarray(init, dtype=np.int64)
        self._gen = torch.Generator(device="cpu")
        self._streaming = False
        self.reset()

    def reset(self):
        if self._streaming:
            self.model.reset_streaming()
        else:
            self.model.streaming_forever(1)
            self._streaming = True
        self._gen.manual_seed(self.seed)
        self._n_in = 0          # frames pushed since reset
        self._steps = 0         # model steps done
        self._inval = {}        # frame -> int64[dep_q]: what enters the model (-1 erased)
        self._recv = {}         # frame -> bool[dep_q]
        self._pred = {}         # frame -> int64[dep_q] (-1 where not predicted)

    def close(self):
        if self._streaming:
            self.model._stop_streaming()
            self._streaming = False

    @property
    def latency_frames(self):
        return self.max_delay

    def push(self, tokens, mask):
        """Adds frame t = frames pushed so far (tokens int64[n], mask bool[n]);
        returns the list of (t', predictions int64[dep_q]) completed by it."""
        t = self._n_in
        self._n_in += 1
        m = min(len(tokens), self.dep_q)
        recv = np.zeros(self.dep_q, dtype=bool)
        recv[:m] = mask[:m]
        inval = np.full(self.dep_q, -1, dtype=np.int64)
        inval[:m][recv[:m]] = tokens[:m][recv[:m]]
        self._inval[t], self._recv[t] = inval, recv
        self._pred[t] = np.full(self.dep_q, -1, dtype=np.int64)
        return self._advance(self._n_in)

    def flush(self):
        """Completes every pending frame (stepping on with erased frames),
        returns them, then resets."""
        n_real = self._n_in
        for t in range(n_real, n_real + self.max_delay):
            self._inval[t] = np.full(self.dep_q, -1, dtype=np.int64)
            self._recv[t] = np.ones(self.dep_q, dtype=bool)   # nothing to predict
            self._pred[t] = np.full(self.dep_q, -1, dtype=np.int64)
        done = self._advance(n_real + self.max_delay, n_real)
        self.reset()
        return done

    def _advance(self, n_known, n_emit=None):
        n_emit = n_known if n_emit is None else n_emit
        done = []
        while self._steps < n_known:
            s = self._steps
            self._model_step(s)
            self._steps += 1
            t = s - self.max_delay
            if 0 <= t < n_emit:
                done.append((t, self._pred[t]))
            old = s - self.max_delay - 2
            for d in (self._inval, self._recv, self._pred):
                d.pop(old, None)
        return done

    def _sample(self, logits):
        import torch
        logits = logits.float().reshape(-1)
        if self.temperature <= 0:
            return int(torch.argmax(logits))
        logits = (logits / self.temperature).cpu()
        if 0 < self.top_k < logits.numel():
            v, i = torch.topk(logits, self.top_k)
            probs = torch.softmax(v, 0)
            return int(i[torch.multinomial(probs, 1, generator=self._gen)])
        return int(torch.multinomial(torch.softmax(logits, 0), 1, generator=self._gen))

    def _value(self, c, f):
        """Token entering the model for stream c (0 text, 1..n_q audio) of frame f."""
        if f < 0:
            return int(self._initial[c])
        if c == 0:
            return self.text_token
        if c <= self.dep_q:
            return int(self._inval[f][c - 1])
        return -1   # the other speaker's streams: no input

    def _model_step(self, s):
        import torch
        D, dq = self.delays, self.dep_q
        if s == 0:
            x = self._initial
        else:
            x = np.array([self._value(c, s - 1 - D[c]) for c in range(self.K)], dtype=np.int64)
        xt = torch.from_numpy(x).view(1, self.K, 1).to(self.device)
        need = [0 <= s - D[i + 1] and not self._recv[s - D[i + 1]][i] for i in range(dq)]
        with torch.no_grad():
            h, _ = self.model.forward_text(xt)
            if not any(need):
                return
            last = max(i for i in range(dq) if need[i])
            dep = self.model.depformer
            with dep.streaming(1):
                for i in range(last + 1):
                    prev = self._value(i, s - D[i])
                    pt = torch.full((1, 1, 1), prev, dtype=torch.long, device=self.device)
                    logits = self.model.forward_depformer(i, pt, h)
                    if need[i]:
                        f = s - D[i + 1]
                        tok = self._sample(logits)
                        self._pred[f][i] = tok
                        if self.feed_back == "predicted":
                            self._inval[f][i] = tok

