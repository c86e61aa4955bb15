#
# Copyright 2026 gr-largesc authors.
# SPDX-License-Identifier: GPL-3.0-or-later
#
"""mimi_decoder: token-frame PDUs in, float audio out, sample count locked to
frame count. Glue around FramePlayout (scheduler-free, below) which wraps
mimi_codec.MimiStreamingDecoder."""

import collections
import threading

import numpy as np
import pmt
from gnuradio import gr

from . import mimi_codec as C
from . import weights as W

PORT_IN = pmt.intern("in")
PORT_SYSTEM = pmt.intern("system")
K_FRAME = pmt.intern("frame")
K_N_Q = pmt.intern("n_q")
K_MASK = pmt.intern("mask")
K_RECOVERED = pmt.intern("recovered")
K_EOS = pmt.intern("eos")
K_DONE = pmt.intern("done")


class MalformedFrame(ValueError):
    def __init__(self, why, frame=None):
        super().__init__(why)
        self.frame = frame


def parse_frame_pdu(msg):
    """Token-frame PDU -> ("frame", idx, tokens uint16[n_q], present bool[n_q])
    or ("eos", idx). MalformedFrame (with .frame when the index was readable)
    for anything else."""
    if not pmt.is_pair(msg) or pmt.is_dict(msg):
        raise MalformedFrame("not a PDU (pair of dict and vector)")
    meta, data = pmt.car(msg), pmt.cdr(msg)
    if not pmt.is_dict(meta):
        raise MalformedFrame("PDU metadata is not a dict")
    idx = None
    fv = pmt.dict_ref(meta, K_FRAME, pmt.PMT_NIL)
    if pmt.is_uint64(fv):
        idx = pmt.to_uint64(fv)
    elif pmt.is_integer(fv) and pmt.to_long(fv) >= 0:
        idx = pmt.to_long(fv)
    if pmt.to_python(pmt.dict_ref(meta, K_EOS, pmt.PMT_F)) is True:
        return ("eos", idx)
    if idx is None:
        raise MalformedFrame("no valid 'frame' index")
    if not pmt.is_u16vector(data):
        raise MalformedFrame("tokens are not a u16vector", idx)
    toks = np.asarray(pmt.u16vector_elements(data), dtype=np.uint16)
    n = len(toks)
    if not 1 <= n <= C.N_CODEBOOKS:
        raise MalformedFrame(f"{n} tokens (must be 1..{C.N_CODEBOOKS})", idx)
    nq = pmt.dict_ref(meta, K_N_Q, pmt.PMT_NIL)
    if not pmt.is_integer(nq) or pmt.to_long(nq) != n:
        raise MalformedFrame(f"n_q does not match the {n} tokens", idx)
    if int(toks.max()) >= C.CARDINALITY:
        raise MalformedFrame(f"token value {int(toks.max())} > {C.CARDINALITY - 1}", idx)
    present = np.ones(n, dtype=bool)
    mask = pmt.dict_ref(meta, K_MASK, pmt.PMT_NIL)
    if mask != pmt.PMT_NIL:
        if not pmt.is_u8vector(mask) or pmt.length(mask) != n:
            raise MalformedFrame("mask is not a u8vector of length n_q", idx)
        present = np.asarray(pmt.u8vector_elements(mask), dtype=np.uint8) != 0
        rec = pmt.dict_ref(meta, K_RECOVERED, pmt.PMT_NIL)
        if pmt.is_u8vector(rec) and pmt.length(rec) == n:
            present |= np.asarray(pmt.u8vector_elements(rec), dtype=np.uint8) != 0
    return ("frame", idx, toks, present)


class FramePlayout:
    """Token frames (by index) in, audio out, no scheduler.

    Each frame index from the first one received (or from start_frame, when
    given) yields exactly out_rate * 0.08 samples: decoded audio for a valid
    frame, silence for a missing or malformed one. Frames older than the next
    expected index (late or duplicate) are counted and dropped."""

    def __init__(self, codec, sample_rate=16000, frames_per_call=1, start_frame=None):
        self.codec = codec
        self.sample_rate = C.check_rate(sample_rate)
        if int(frames_per_call) < 1:
            raise ValueError(f"frames per call must be >= 1, got {frames_per_call!r}")
        self.frames_per_call = int(frames_per_call)
        self.resampler = C.FrameResampler(C.SAMPLE_RATE, self.sample_rate)
        self.spf = self.resampler.n_out
        self.next_frame = None if start_frame is None else int(start_frame)
        self.stats = collections.Counter(frames_in=0, frames_decoded=0, frames_missing=0,
                                         frames_malformed=0, frames_late=0, samples_out=0)

    def _silence(self, n):
        self.resampler.reset()
        self.stats["samples_out"] += n * self.spf
        return np.zeros(n * self.spf, dtype=np.float32)

    def fill_to(self, idx):
        """Silence for every index from next_frame up to idx (exclusive)."""
        if self.next_frame is None or idx is None or idx <= self.next_frame:
            return np.zeros(0, dtype=np.float32)
        n = idx - self.next_frame
        self.stats["frames_missing"] += n
        self.next_frame = idx
        return self._silence(n)

    def malformed(self, idx):
        """A malformed frame: its slot (if its index is known) becomes silence."""
        self.stats["frames_malformed"] += 1
        if idx is None or self.next_frame is None or idx < self.next_frame:
            return np.zeros(0, dtype=np.float32)
        out = self.fill_to(idx)
        self.next_frame = idx + 1
        return np.concatenate([out, self._silence(1)])

    def frames(self, items):
        """items: list of (idx, tokens, present) in arrival order -> audio."""
        out = []
        run = []

        def flush():
            if run:
                K = max(len(t) for _, t, _ in run)
                tok = np.zeros((len(run), K), dtype=np.int64)
                pres = np.zeros((len(run), K), dtype=bool)
                for i, (_, t, p) in enumerate(run):
                    tok[i, :len(t)] = t
                    pres[i, :len(t)] = p
                pcm = self.codec.decode(tok, pres)
                out.append(self.resampler.process(pcm))
                self.stats["frames_decoded"] += len(run)
                self.stats["samples_out"] += len(run) * self.spf
                run.clear()

        for idx, toks, present in items:
            self.stats["frames_in"] += 1
            if self.next_frame is None:
                self.next_frame = idx
            if idx < self.next_frame:
                self.stats["frames_late"] += 1
                continue
            if idx > self.next_frame:
                flush()
                out.append(self.fill_to(idx))
            run.append((idx, toks, present))
            self.next_frame = idx + 1
            if len(run) >= self.frames_per_call:
                flush()
        flush()
        return np.concatenate(out) if out else np.zeros(0, dtype=np.float32)


class mimi_decoder(gr.sync_block):
    """Streaming Mimi decoder (see docs/mimi.md).

    Message port `in`: token-frame PDUs. Output: float audio at sample_rate,
    exactly sample_rate * 0.08 samples per frame index from the first frame
    received (or from start_frame: a transmitter's first frame is 0, so with
    start_frame=0 the output stays aligned with the input even when the first
    packets are lost); missing and malformed frames become silence and are
    counted.
    The block ends its stream after an end-of-stream PDU (car eos=True,
    frame = number of frames; missing trailing frames are filled first), or,
    when no such PDU comes, `done_grace_s` seconds after every upstream
    message block has finished."""

    def __init__(self, sample_rate=16000, weights="hf", device="cpu", threads=0,
                 frames_per_call=1, mode="exact", done_grace_s=1.0, start_frame=None):
        gr.sync_block.__init__(self, name="mimi_decoder", in_sig=None, out_sig=[np.float32])
        C.check_rate(sample_rate)
        C.set_threads(threads)
        model, info = W.load_mimi(weights, device=device)
        self.codec = C.MimiStreamingDecoder(model, mode=mode, info=info)
        self.playout = FramePlayout(self.codec, sample_rate, frames_per_call, start_frame)
        self.untrained = bool(info.get("untrained"))
        self.weights_info = info
        self.done_grace_s = float(done_grace_s)
        self._queue = collections.deque()
        self._pending = np.zeros(0, dtype=np.float32)
        self._ending = False
        self._timer = None
        self._tagged = False
        self._lock = threading.Lock()
        self.message_port_register_in(PORT_IN)
        self.set_msg_handler(PORT_IN, self._handle_in)
        self.set_msg_handler(PORT_SYSTEM, self._handle_system)
        if self.untrained:
            self.logger.warn("UNTRAINED random weights (%s): output is not speech"
                        % info.get("source"))

    # counters
    def frames_in(self):
        return self.playout.stats["frames_in"]

    def frames_decoded(self):
        return self.playout.stats["frames_decoded"]

    def frames_missing(self):
        return self.playout.stats["frames_missing"]

    def frames_malformed(self):
        return self.playout.stats["frames_malformed"]

    def frames_late(self):
        return self.playout.stats["frames_late"]

    def stats(self):
        return dict(self.playout.stats)

    def _handle_in(self, msg):
        if pmt.eq(msg, pmt.PMT_NIL):
            return              # wake-up posted by the end-of-stream timer
        try:
            item = parse_frame_pdu(msg)
        except MalformedFrame as e:
            item = ("bad", e.frame, str(e))
        with self._lock:
            self._queue.append(item)

    def _handle_system(self, msg):
        # ("done" . n): every upstream message block has finished
        if pmt.is_pair(msg) and pmt.eqv(pmt.car(msg), K_DONE):
            def wake():
                with self._lock:
                    self._queue.append(("eos", None))
                self.to_basic_block()._post(PORT_IN, pmt.PMT_NIL)   # wakes work()
            self._timer = threading.Timer(self.done_grace_s, wake)
            self._timer.daemon = True
            self._timer.start()

    def _drain(self, want):
        """Turns queued items into audio until `want` samples are pending."""
        pieces = [self._pending]
        have = len(self._pending)
        while have < want:
            with self._lock:
                if not self._queue:
                    break
                batch = []
                while self._queue and len(batch) < self.playout.frames_per_call and \
                        self._queue[0][0] == "frame":
                    batch.append(self._queue.popleft()[1:])
                item = None if batch else self._queue.popleft()
            if batch:
                a = self.playout.frames(batch)
            elif item[0] == "bad":
                self.logger.debug(f"malformed token frame dropped: {item[2]}")
                a = self.playout.malformed(item[1])
            else:                       # eos
                a = self.playout.fill_to(item[1])
                self._ending = True
            pieces.append(a)
            have += len(a)
        self._pending = np.concatenate(pieces) if len(pieces) > 1 else pieces[0]

    def work(self, input_items, output_items):
        out = output_items[0]
        self._drain(len(out))
        n = min(len(out), len(self._pending))
        if n:
            if not self._tagged and self.untrained:
                self.add_item_tag(0, self.nitems_written(0), pmt.intern("untrained"), pmt.PMT_T)
                self._tagged = True
            out[:n] = self._pending[:n]
            self._pending = self._pending[n:]
            return n
        if self._ending:
            return -1       # WORK_DONE: everything up to the end marker was played
        # Nothing queued: return 0. The scheduler sleeps until the next message
        # arrives (posting wakes this block's thread), so this does not spin.
        return 0

    def stop(self):
        if self._timer is not None:
            self._timer.cancel()
        return True
