#
# Copyright 2026 gr-largesc authors.
# SPDX-License-Identifier: GPL-3.0-or-later
#
"""token_recovery: masked token frames in, complete token frames out. The
recovery logic is core.py (the recovery package); this file is the GNU Radio glue."""

import threading
import time

import numpy as np
import pmt
from gnuradio import gr

from ..common import frame_pdu as FP
from ..common import params as P
from .. import recovery as R
from ..common.guard import Guard

MAX_FRAME = FP.MAX_FRAME_INDEX

_K_NQ_IN = pmt.intern("n_q_in")
_K_MALFORMED = pmt.intern("recovery_malformed")
_K_UNTRAINED = pmt.intern("recovery_untrained")
_K_LATE = pmt.intern("recovery_late")
DEADLINE_RANGE_MS = (0.0, 10000.0)
# largesc_rx's deadline for a model backend behind its playout clock: one frame (a model
# may run one frame behind the clock; more and its frames are filled by hold instead)
LIVE_DEADLINE_MS = 80.0


class token_recovery(gr.basic_block):
    """Fills the tokens a lossy link lost, frame by frame.

    Ports
      in:    token-frame PDUs from uep_depacketizer: dict with `frame`, `n_q`,
             `mask` (u8vector, 1 = received); u16vector of n_q tokens.
      out:   complete token frames: every token valid, received ones
             unchanged; `n_q` may shrink (hold drops stale fine codebooks;
             `n_q_in` keeps the input width), `mask` is cut to n_q and
             `recovered` (u8vector, n_q, 1 = filled by recovery) added.
      flush: any message: plays out the frames the lm backend still holds
             (latency max(delays) frames) and starts a new stream.

    A frame whose number is not the previous + 1 starts a new stream (state
    reset, counted in restarts()); a jump of any size is one restart and
    produces exactly one output frame, so no message can create unbounded
    output. A frame without a `frame` key gets the previous + 1 (0 at the
    start). A malformed frame (not a pair/dict/u16vector, `frame` present but
    not a uint64/integer >= 0 (a double, a symbol, -1), mask not a u8vector
    of n_q values 0/1, tokens > 2047, n_q mismatch, 0 or more than 32 tokens)
    is counted, logged at WARNING (first, then every 1000th per reason) and
    passed on as an all-lost frame of the last good width
    (`recovery_malformed` True; its `frame` is its own valid index, else the
    previous + 1). An internal error while recovering a frame is caught,
    counted (frames_dropped(), rejections()) and logged; that frame is
    dropped and the block goes on.

    deadline_ms (0 = off): a live receiver's bound on how late the model may run.
    A frame whose `play_time` (when the playout clock has it due to play, host monotonic
    clock; uep_depacketizer notes it) is more than deadline_ms ago when this block
    takes it is late: the lm/moshi model is not run for it (the frames the model
    holds leave hold-filled, this one too, and the model starts a new stream with
    the next frame: recovery.TokenRecovery.push_late), so a model slower than the
    playout clock costs hold-filled frames, never a growing queue. Counted in
    frames_late() and late_restarts(); such frames carry `recovery_late` True.
    Frames without play_time (simulations) are never late. Hold is never slow:
    its late frames are only counted.

    Parameters: see recovery.make_recovery. The lm/moshi-only parameters
    (model, checkpoint, adapter, lora_rank, temperature, top_k, seed,
    feed_back) are refused with the hold backend unless they have their
    default values; device and threads are ignored by hold. threads > 0 sets
    torch's thread count (process-wide; 1 is fastest for small models on CPU).
    """

    def __init__(self, backend="hold", max_hold=R.DEFAULT_MAX_HOLD, min_codebooks=1, model="",
                 checkpoint="", adapter="", lora_rank=0, temperature=0.0, top_k=0, seed=0,
                 feed_back="auto", device="auto", threads=0, deadline_ms=0.0):
        gr.basic_block.__init__(self, name="token_recovery", in_sig=None, out_sig=None)
        threads = P.check_int("threads", threads, 0, 1024)
        self._deadline_s = P.check_float("deadline_ms", deadline_ms, *DEADLINE_RANGE_MS) / 1000.0
        self._clock = time.monotonic     # the playout clock's (uep/playout.py)
        if backend != "hold" and threads > 0:
            import torch
            torch.set_num_threads(threads)
        self._core = R.make_recovery(backend, max_hold, min_codebooks, model, checkpoint, adapter,
                                     lora_rank, temperature, top_k, seed, feed_back, device)
        self._untrained = bool(self._core.info.get("untrained", False))
        self._lock = threading.Lock()
        self._last_frame = None
        self._last_width = 1
        self._frames_in = self._frames_out = self._malformed = 0
        self._tokens_lost = self._tokens_recovered = self._codebooks_dropped = 0
        self._restarts = 0
        self._dropped = 0
        self._late = 0
        self._niced = self._core.lm is None     # hold: nothing to lower (see _lower_priority)
        self.guard = Guard("token_recovery", self.logger)
        self.message_port_register_in(pmt.intern("in"))
        self.message_port_register_in(pmt.intern("flush"))
        self.message_port_register_out(pmt.intern("out"))
        self.guard.install(self, "in", self._handle)
        self.guard.install(self, "flush", lambda _m: self.flush())

    # --- parsing ------------------------------------------------------------

    @staticmethod
    def _parse(msg):
        """(meta, tokens, mask, frame) or raises FP.MalformedFrame: the token-frame
        rules (common.frame_pdu.parse_frame) with a mask required and the
        index and n_q optional (a frame without an index follows the last one)."""
        f = FP.parse_frame(msg, require_index=False, require_n_q=False, require_mask=True)
        try:
            tokens, mask = R.check_frame(f.tokens.astype(np.int64), f.mask.astype(np.int64))
        except ValueError as e:
            raise FP.MalformedFrame(str(e), f.frame, reason="bad mask" if "mask" in str(e) else "bad tokens") from None
        return f.meta, tokens, mask, f.frame

    def _handle(self, msg):
        # frames_in() counts frames completely handled: the outputs of a frame
        # are published before it is counted in, so a caller that sees every
        # frame counted in knows nothing is still inside the block.
        try:
            self._handle_frame(msg)
        except Exception as e:  # noqa: BLE001 - counted, logged, frame dropped
            with self._lock:
                self._dropped += 1
            self.guard.note(f"in: {type(e).__name__}", e)
        finally:
            with self._lock:
                self._frames_in += 1

    def _handle_frame(self, msg):
        if self._deadline_s and not self._niced:
            self._niced = True
            self._lower_priority()
        with self._lock:
            malformed = False
            try:
                meta, tokens, mask, frame = self._parse(msg)
            except FP.MalformedFrame as e:
                malformed = True
                self._malformed += 1
                self.guard.note(f"in: {e.reason}", e)
                meta = frame = None
                try:
                    if pmt.is_pair(msg) and not pmt.is_dict(msg) and pmt.is_dict(pmt.car(msg)):
                        meta = pmt.car(msg)
                        frame = FP.frame_index(meta)[1]
                except Exception:  # noqa: BLE001
                    meta = frame = None
                if meta is None:
                    meta = pmt.make_dict()
                n = self._last_width
                tokens, mask = np.zeros(n, dtype=np.int64), np.zeros(n, dtype=bool)
                meta = pmt.dict_add(meta, _K_MALFORMED, pmt.PMT_T)
            if frame is None:
                frame = 0 if self._last_frame is None else (self._last_frame + 1) % (MAX_FRAME + 1)
                meta = pmt.dict_add(meta, FP.FRAME, pmt.from_uint64(frame))
            out = []
            if self._last_frame is not None and frame != self._last_frame + 1:
                out += self._core.flush()   # new stream: play out the old one, reset
                self._restarts += 1
            self._last_frame = frame
            if not malformed:
                self._last_width = len(tokens)
            self._tokens_lost += int((~mask).sum())
            if self._is_late(meta):
                self._late += 1
                meta = pmt.dict_add(meta, _K_LATE, pmt.PMT_T)
                out += self._core.push_late(tokens, mask, meta)
            else:
                out += self._core.push(tokens, mask, meta)
        self._publish(out)

    def _lower_priority(self):
        """A model behind a deadline runs at a lower CPU priority (this block's thread,
        nice 10; Linux): when the CPU is short the codec threads of the process come first
        and the model's late frames are filled by hold. Not the lowest (19): this thread
        also fills the late frames, and starved it held the receiver's output up
        (two-node benchmark, lm on 2 cores: p50 1.7 s at nice 10, 4-5 s at 19, 7 s at 0)."""
        import os
        try:
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)
            self.logger.info("recovery model thread at nice 10 (deadline %.0f ms)" % (self._deadline_s * 1000))
        except (AttributeError, OSError) as e:
            self.logger.warn(f"could not lower the recovery model thread's priority: {e}")

    def _is_late(self, meta):
        """True when deadline_ms is on and the frame's play_time is more than it ago."""
        if not self._deadline_s:
            return False
        t = FP.meta_time(meta, FP.PLAY_TIME)
        return t is not None and self._clock() - t > self._deadline_s

    def _publish(self, frames):
        for f in frames:
            meta = f.meta
            meta = pmt.dict_add(meta, FP.N_Q, pmt.from_long(len(f.tokens)))
            meta = pmt.dict_add(meta, _K_NQ_IN, pmt.from_long(f.n_q_in))
            meta = pmt.dict_add(meta, FP.MASK, pmt.init_u8vector(len(f.mask), f.mask.tolist()))
            meta = pmt.dict_add(meta, FP.RECOVERED,
                                pmt.init_u8vector(len(f.recovered), f.recovered.tolist()))
            if self._untrained:
                meta = pmt.dict_add(meta, _K_UNTRAINED, pmt.PMT_T)
            vec = pmt.init_u16vector(len(f.tokens), f.tokens.tolist())
            self.message_port_pub(pmt.intern("out"), pmt.cons(meta, vec))
            with self._lock:
                self._frames_out += 1
                self._tokens_recovered += int(f.recovered.sum())
                self._codebooks_dropped += f.n_q_in - len(f.tokens)

    # --- control and statistics --------------------------------------------

    def flush(self):
        """Plays out held frames (lm backend) and resets the stream state."""
        with self._lock:
            out = self._core.flush()
            self._last_frame = None
        self._publish(out)

    def reset(self):
        """Drops held frames and starts a new stream."""
        with self._lock:
            self._core.reset()
            self._last_frame = None

    def backend(self):
        return self._core.backend

    def info(self):
        return dict(self._core.info)

    def latency_frames(self):
        return self._core.latency_frames

    def frames_in(self):
        return self._frames_in

    def frames_out(self):
        return self._frames_out

    def frames_malformed(self):
        return self._malformed

    def tokens_lost(self):
        return self._tokens_lost

    def tokens_recovered(self):
        return self._tokens_recovered

    def codebooks_dropped(self):
        return self._codebooks_dropped

    def restarts(self):
        return self._restarts

    def frames_late(self):
        """Frames taken more than deadline_ms after their play_time (deadline_ms > 0)."""
        return self._late

    def late_restarts(self):
        """Model streams restarted because a frame was late (lm/moshi; see deadline_ms)."""
        return self._core.late_restarts

    def deadline_ms(self):
        return self._deadline_s * 1000.0

    def frames_dropped(self):
        """Frames dropped by an internal error (see rejections())."""
        return self._dropped

    def rejections(self):
        """{reason: count} of rejected or failed messages (see guard.py)."""
        return self.guard.counts()
