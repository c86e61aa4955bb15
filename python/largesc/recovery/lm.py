#
# Copyright 2026 gr-largesc authors.
# SPDX-License-Identifier: GPL-3.0-or-later
#
"""The `lm` / `moshi` backends' streaming model stepping: LMRecovery (the
masked on-device step, CUDA graphs on CUDA) and EagerLMRecovery (the first
implementation, kept as its reference)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .config import FEED_BACK, RecoveryError

if TYPE_CHECKING:
    import numpy.typing as npt
    import torch
    from moshi.models.lm import LMModel


# ----------------------------------------------------------------------------
# lm

class EagerLMRecovery:
    """Streaming LM recovery for one stream (batch 1), the first (eager)
    implementation: host-side bookkeeping, one host read per predicted
    codebook. Kept as the reference LMRecovery is compared with
    (qa_recovery_step.py, benchmarks/gpu_check.py); sampling (temperature > 0)
    draws from a CPU generator, so its samples differ from LMRecovery's.

    Model step s (s = 0, 1, ...) is moshi's time step: the temporal
    transformer reads the delayed token layout at position s-1 (moshi's
    initial token at s = 0 and before each stream's delay), then the depth
    transformer walks codebooks 0..dep_q-1 of position s; codebook i there
    belongs to frame s - delays[i+1]. A received token is forced (its
    prediction is skipped), a lost one is predicted. Steps whose codebooks
    are all received skip the depth transformer. Frame t is complete after
    step t + max(delays).
    """

    model: LMModel
    delays: list[int]
    max_delay: int
    dep_q: int
    K: int
    card: int
    text_token: int
    feed_back: str
    temperature: float
    top_k: int
    seed: int
    device: torch.device
    _initial: npt.NDArray[np.int64]
    _gen: torch.Generator
    _streaming: bool
    _n_in: int
    _steps: int
    _inval: dict[int, npt.NDArray[np.int64]]
    _recv: dict[int, npt.NDArray[np.bool_]]
    _pred: dict[int, npt.NDArray[np.int64]]

    def __init__(self, model: LMModel, text_token: int = -1, feed_back: str = "erased", temperature: float = 0.0,
                 top_k: int = 0, seed: int = 0) -> None:
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

    def reset(self) -> None:
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

    def close(self) -> None:
        if self._streaming:
            self.model._stop_streaming()
            self._streaming = False

    @property
    def latency_frames(self) -> int:
        return self.max_delay

    def push(self, tokens: npt.NDArray[np.int64],
             mask: npt.NDArray[np.bool_]) -> list[tuple[int, npt.NDArray[np.int64]]]:
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

    def flush(self) -> list[tuple[int, npt.NDArray[np.int64]]]:
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
        """Runs the model up to step n_known; returns (frame, predictions) of
        the frames whose every codebook has now been through the model (up to
        n_emit). The subclass changes only what a prediction is read from
        (_prediction) and which per-frame records it keeps (_forget)."""
        n_emit = n_known if n_emit is None else n_emit
        done = []
        while self._steps < n_known:
            s = self._steps
            self._model_step(s)
            self._steps += 1
            t = s - self.max_delay
            if 0 <= t < n_emit:
                done.append((t, self._prediction(t)))
            self._forget(s - self.max_delay - 2)
        return done

    def _prediction(self, t):
        return self._pred[t]

    def _forget(self, old):
        for d in (self._inval, self._recv, self._pred):
            d.pop(old, None)

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


# ----------------------------------------------------------------------------
# the masked step: tokens stay on the model's device

class LMRecovery(EagerLMRecovery):
    """Streaming LM recovery for one stream (batch 1), the masked step.

    Same model steps and the same predictions as EagerLMRecovery (greedy:
    token for token; qa_recovery_step.py checks it), computed without host
    reads inside a step:

      * per frame the row of what enters the model (text token, received
        tokens, -1 where lost) and the received mask go to the model's device
        once (one int64 tensor), into ring buffers of max(delays) + 2 frames;
      * the temporal input is one gather from that ring (index tables built
        once), the temporal step is moshi's forward_text;
      * the depth step walks codebooks 0..dep_q-1 and chooses, on the device,
        torch.where(received, given token, argmax / sample) - the sample is
        Gumbel-max with top-k, noise from the stream's seeded generator on the
        model's device, so nothing leaves the device;
      * predictions are scattered into their frames' ring rows (and, for
        feed_back 'predicted', into what enters the model); a frame's
        predictions are read to the host once, when it completes, and only
        if something of it was lost.

    On CUDA the temporal step and the depth step run as CUDA graphs
    (moshi.utils.compile.CUDAGraphed, as in moshi's LMGen; the depth graph
    always runs all dep_q codebooks); elsewhere the same code runs eagerly
    and the depth step stops after the last codebook to predict. Which
    codebooks are lost is known on the host (it sent the mask), so a step
    whose codebooks all arrived skips the depth transformer without a read.
    `cuda_graphs=False` turns the graphs off (None: on for CUDA).
    """

    cuda_graphs: bool
    full_depth: bool
    _lost: dict[int, bool]

    def __init__(self, model: LMModel, text_token: int = -1, feed_back: str = "erased", temperature: float = 0.0,
                 top_k: int = 0, seed: int = 0, cuda_graphs: bool | None = None) -> None:
        import torch
        self.device = next(model.parameters()).device
        on_cuda = self.device.type == "cuda"
        self.cuda_graphs = on_cuda if cuda_graphs is None else bool(cuda_graphs) and on_cuda
        self.full_depth = self.cuda_graphs   # depth step over all dep_q codebooks (graph shape)
        D = [int(d) for d in model.delays]
        K, dq = int(model.num_codebooks), int(model.dep_q)
        CT = max(D) + 2        # frames alive at a step: s-1-max(delays) .. s
        self._CT = CT
        r = np.arange(CT)[:, None]
        Da = np.asarray(D[1:dq + 1])[None, :]
        dev = self.device

        def t(a):
            return torch.as_tensor(np.ascontiguousarray(a), dtype=torch.long, device=dev)
        # flat ring indices per step residue s % CT
        self._tin = t(((r - 1 - np.asarray(D)[None, :]) % CT) * K + np.arange(K)[None, :])
        self._prev0 = t(((r[:, 0] - D[0]) % CT) * K)                       # text stream, depth input 0
        self._gidx = t(((r - Da) % CT) * K + np.arange(1, dq + 1)[None, :])  # codebook i of its frame
        self._pidx = t(((r - Da) % CT) * dq + np.arange(dq)[None, :])
        self._vals = torch.empty((CT, K), dtype=torch.long, device=dev)
        self._recvd = torch.empty((CT, dq), dtype=torch.bool, device=dev)
        self._predd = torch.empty((CT, dq), dtype=torch.long, device=dev)
        self._nonoise = torch.zeros((dq, 1), dtype=torch.float32, device=dev)
        from moshi.utils.compile import CUDAGraphed
        self._main = CUDAGraphed(model.forward_text, disable=not self.cuda_graphs)
        self._depth_fn = CUDAGraphed(self._depth, disable=not self.cuda_graphs)
        super().__init__(model, text_token, feed_back, temperature, top_k, seed)
        self._gen = torch.Generator(device=dev)
        self._gen.manual_seed(self.seed)

    def reset(self) -> None:
        super().reset()
        if hasattr(self, "_vals"):
            self._vals.copy_(self._vals.new_tensor(self._initial).expand_as(self._vals))
            self._recvd.fill_(True)      # frames before the stream: nothing to predict
            self._predd.fill_(-1)
        self._lost = {}                  # frame -> something of it to predict (host side)

    def push(self, tokens: npt.NDArray[np.int64],
             mask: npt.NDArray[np.bool_]) -> list[tuple[int, npt.NDArray[np.int64]]]:
        t = self._n_in
        self._n_in += 1
        m = min(len(tokens), self.dep_q)
        recv = np.zeros(self.dep_q, dtype=bool)
        recv[:m] = mask[:m]
        row = np.full(self.K + self.dep_q, -1, dtype=np.int64)
        row[0] = self.text_token
        row[1:1 + m][recv[:m]] = tokens[:m][recv[:m]]
        row[self.K:] = recv
        self._put(t, row, recv)
        return self._advance(self._n_in)

    def flush(self) -> list[tuple[int, npt.NDArray[np.int64]]]:
        n_real = self._n_in
        done = []
        for t in range(n_real, n_real + self.max_delay):
            row = np.full(self.K + self.dep_q, -1, dtype=np.int64)
            row[0] = self.text_token
            row[self.K:] = 1                       # nothing to predict
            self._put(t, row, np.ones(self.dep_q, dtype=bool))
            done += self._advance(t + 1, n_real)
        self.reset()
        return done

    def _put(self, t, row, recv):
        """Frame t's row and mask to the device: one transfer."""
        import torch
        x = torch.from_numpy(row).to(self.device, non_blocking=True)
        slot = t % self._CT
        self._vals[slot].copy_(x[:self.K])
        self._recvd[slot].copy_(x[self.K:] != 0)
        self._predd[slot].fill_(-1)
        self._recv[t] = recv
        self._lost[t] = not bool(recv.all())

    def _prediction(self, t):
        if self._lost.get(t):
            return self._predd[t % self._CT].cpu().numpy().copy()   # the one host read
        return np.full(self.dep_q, -1, dtype=np.int64)

    def _forget(self, old):
        for d in (self._recv, self._lost):
            d.pop(old, None)

    def _choose(self, logits, noise):
        """Token from one codebook's logits, on the device: argmax, or a
        Gumbel-max sample at `temperature` among the top_k."""
        import torch
        x = logits.float().reshape(-1)
        if self.temperature <= 0:
            return torch.argmax(x)
        x = x / self.temperature
        if 0 < self.top_k < x.numel():
            kth = torch.topk(x, self.top_k).values[-1]
            x = x.masked_fill(x < kth, float("-inf"))
        return torch.argmax(x - torch.log(-torch.log(noise)))

    def _depth(self, h, prev0, given, need, noise, n):
        """Depth transformer over codebooks 0..n-1: received tokens forced,
        lost ones chosen; returns int64[dep_q] (-1 where nothing was chosen)."""
        import torch
        dep = self.model.depformer
        out = torch.full((self.dep_q,), -1, dtype=torch.long, device=h.device)
        prev = prev0
        fb = self.feed_back == "predicted"
        outs = []
        with dep.streaming(1):
            for i in range(n):
                logits = self.model.forward_depformer(i, prev.view(1, 1, 1), h)
                tok = self._choose(logits, noise[i])
                outs.append(torch.where(need[i], tok, -1))
                prev = torch.where(need[i], tok, given[i]) if fb else given[i]
        out[:n] = torch.stack(outs)
        return out

    def _model_step(self, s):
        import torch
        dq, D = self.dep_q, self.delays
        r = s % self._CT
        vals = self._vals.view(-1)
        with torch.no_grad():
            h, _ = self._main(vals[self._tin[r]].view(1, self.K, 1))
            need = [0 <= s - D[i + 1] and not self._recv[s - D[i + 1]][i] for i in range(dq)]
            if not any(need):
                return
            n = dq if self.full_depth else 1 + max(i for i in range(dq) if need[i])
            if self.temperature > 0:
                noise = torch.rand((dq, self.card), generator=self._gen, device=self.device)
                noise.clamp_(1e-12, 1.0 - 1e-7)
            else:
                noise = self._nonoise
            given = vals[self._gidx[r]]
            needd = ~self._recvd.view(-1)[self._pidx[r]]
            out = self._depth_fn(h, vals[self._prev0[r]].view(1), given, needd, noise, n)
            self._predd.view(-1)[self._pidx[r][:n]] = out[:n]
            if self.feed_back == "predicted":
                vals[self._gidx[r][:n]] = torch.where(needd[:n], out[:n], given[:n])
