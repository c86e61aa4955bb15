#
# Copyright 2026 gr-largesc authors.
# SPDX-License-Identifier: GPL-3.0-or-later
#
"""mimi_encoder: float audio stream in, one token-frame PDU per 80 ms out.

The block is glue around TokenFramer (scheduler-free, below) which in turn
wraps mimi_codec.MimiStreamingEncoder."""

import threading

import numpy as np
import pmt
from gnuradio import gr

from . import mimi_codec as C
from ..common import frame_pdu as FP
from ..common import params as P
from ..common.frame_pdu import make_eos_pdu, make_frame_pdu
from . import weights as W
from ..common.guard import Guard
from ..common.latency import CaptureClock
from ..common.pmt_util import to_int as _to_int

MAX_FRAMES_PER_CALL = 125

PORT_OUT = pmt.intern("out")
PORT_N_Q = pmt.intern("n_q")


MAX_PENDING_N_Q = 1024
MAX_AUDIO_ABS = 8.0     # input samples beyond +-8 (18 dB over full scale 1.0) are clipped to it


def sanitise_frames(audio, spf):
    """Whole frames of audio (spf samples each) -> (audio, frames changed,
    samples changed): a non-finite sample becomes 0, one beyond
    +-MAX_AUDIO_ABS is clipped to it. NaN, inf or a frame x 1e30 would
    otherwise overflow the codec's activations and poison its streaming
    state (every later token 0)."""
    a = np.asarray(audio, np.float32).reshape(-1, spf)
    ok = np.isfinite(a) & (np.abs(a) <= MAX_AUDIO_ABS)
    if ok.all():
        return audio, 0, 0
    fixed = np.where(np.isfinite(a), np.clip(a, -MAX_AUDIO_ABS, MAX_AUDIO_ABS), 0.0).astype(np.float32)
    return fixed.reshape(-1), int(np.count_nonzero(~ok.all(axis=1))), int(np.count_nonzero(~ok))


def _check_n_q(name, n_q):
    """C.check_n_q with the parameter's name; any non-integer refused."""
    try:
        return P.check_int(name, n_q, 1, C.N_CODEBOOKS)
    except P.ParameterError:
        raise P.ParameterError(f"{name} (number of codebooks) must be an integer in "
                               f"1..{C.N_CODEBOOKS}, got {n_q!r}") from None


class TokenFramer:
    """Audio at `sample_rate` in, token frames out, no scheduler.

    push(samples) -> list of (frame_index, tokens[n_q] uint16, energy_db, vad).
    Exactly one frame per 80 ms of input (sample_rate * 0.08 samples); a
    partial frame waits for the rest. Each whole frame is sanitised first
    (sanitise_frames: non-finite samples -> 0, beyond +-MAX_AUDIO_ABS clipped;
    frames_sanitised / samples_sanitised count them). Whole frames are encoded as soon as they
    are there, up to frames_per_call in one model call (never waiting to fill
    a batch, so batching adds no latency and no frame is held back at the end). The input is resampled to 24 kHz with a
    frame-locked polyphase filter (FrameResampler), so the frame count never
    depends on filter edges. set_n_q(k) applies from the next frame produced,
    or from frame index `frame` when given."""

    def __init__(self, codec, sample_rate=24000, n_q=8, frames_per_call=1,
                 vad_threshold_db=-50.0):
        self.codec = codec
        self.sample_rate = C.check_rate(sample_rate)
        self.n_q = _check_n_q("n_q", n_q)
        self.frames_per_call = P.check_int("frames_per_call", frames_per_call, 1, MAX_FRAMES_PER_CALL)
        self.vad_threshold_db = P.check_float("vad_threshold_db", vad_threshold_db, -200.0, 0.0)
        self.resampler = C.FrameResampler(self.sample_rate, C.SAMPLE_RATE)
        self.spf = self.resampler.n_in
        self._buf = np.zeros(0, dtype=np.float32)
        self._pending = []            # [(from_frame or None, n_q)] in arrival order
        self._lock = threading.Lock()
        self.next_frame = 0
        self.frames_sanitised = 0
        self.samples_sanitised = 0

    def set_n_q(self, n_q, frame=None):
        n_q = _check_n_q("n_q", n_q)
        frame = P.check_optional_int("frame", frame, 0, 2 ** 64 - 1)
        with self._lock:
            if len(self._pending) >= MAX_PENDING_N_Q:
                raise ValueError(f"more than {MAX_PENDING_N_Q} codebook changes waiting for "
                                 "their frame")
            self._pending.append((frame, n_q))

    def _n_q_for(self, idx):
        with self._lock:
            keep = []
            for f, k in self._pending:
                if f is None or f <= idx:
                    self.n_q = k
                else:
                    keep.append((f, k))
            self._pending = keep
        return self.n_q

    def buffered(self):
        """Input samples waiting for the rest of their frame."""
        return len(self._buf)

    def push(self, samples):
        x = np.asarray(samples, dtype=np.float32).reshape(-1)
        buf = np.concatenate([self._buf, x]) if len(self._buf) else x.copy()
        n_frames = len(buf) // self.spf
        out = []
        done = 0
        while done < n_frames:
            k = min(self.frames_per_call, n_frames - done)
            out += self._encode(buf[done * self.spf:(done + k) * self.spf])
            done += k
        self._buf = buf[done * self.spf:]
        return out

    def _encode(self, audio):
        audio, nf, ns = sanitise_frames(audio, self.spf)
        self.frames_sanitised += nf
        self.samples_sanitised += ns
        pcm24 = self.resampler.process(audio)
        k = len(audio) // self.spf
        n_qs = [self._n_q_for(self.next_frame + i) for i in range(k)]
        toks = self.codec.encode(pcm24, max(n_qs))          # [k, max n_q]: only what is sent is searched
        energy = C.frame_energy_db(audio.reshape(-1, self.spf))
        out = []
        for i, n_q in enumerate(n_qs):
            idx = self.next_frame
            out.append((idx, toks[i, :n_q].astype(np.uint16), float(energy[i]),
                        bool(energy[i] > self.vad_threshold_db)))
            self.next_frame += 1
        return out


def parse_n_q_msg(msg):
    """n_q control message -> (n_q, frame or None). Accepts an integer PMT, a
    dict with `n_q` (and optional `frame`), or a PDU whose car is such a dict.
    n_q must be an integer PMT in 1..32 and frame (when present) a uint64 or
    integer PMT >= 0; ValueError otherwise."""
    if pmt.is_pair(msg) and not pmt.is_dict(msg):
        msg = pmt.car(msg)
    if pmt.is_integer(msg) or pmt.is_uint64(msg):
        return _check_n_q("n_q message", _to_int(msg)), None
    if pmt.is_dict(msg) and pmt.dict_has_key(msg, FP.N_Q):
        n = _to_int(pmt.dict_ref(msg, FP.N_Q, pmt.PMT_NIL))
        if n is None:
            raise ValueError("n_q message: 'n_q' must be an integer PMT in 1..32")
        n = _check_n_q("n_q message", n)
        present, f = FP.frame_index(msg)
        if present and f is None:
            raise ValueError("n_q message: 'frame' must be an integer PMT >= 0")
        return n, f
    raise ValueError("n_q message must be an integer or a dict with 'n_q'")


class mimi_encoder(gr.sync_block):
    """Streaming Mimi encoder (see docs/mimi.md).

    Input: float audio at sample_rate (8, 11.025, 12, 16, 22.05, 24, 32, 44.1,
    48 or 96 kHz). Output, message port `out`: one token-frame PDU per 80 ms
    (car: frame, n_q, energy_db, vad, capture_time[, untrained]; cdr: u16vector of n_q
    tokens, codebook 0 first), and when the input ends an end-of-stream PDU
    (car: eos=True, frame=number of frames sent, n_q=0; cdr: empty).
    Message port `n_q`: integer, or dict {n_q[, frame]}: codebooks from the
    next frame (or from frame index `frame`).
    capture_time: when the frame's last sample was captured, on the host's
    monotonic clock, from the sample count (common/latency.py CaptureClock;
    meaningful with a real-time source: a sound card, a radio, a throttle)."""

    def __init__(self, sample_rate=16000, n_q=8, weights="hf", device="auto", threads=0,
                 frames_per_call=1, mode="exact", vad_threshold_db=-50.0, send_eos=True):
        gr.sync_block.__init__(self, name="mimi_encoder", in_sig=[np.float32], out_sig=None)
        C.check_rate(sample_rate)
        _check_n_q("n_q", n_q)
        P.check_str("weights", weights)
        device = W.resolve_device(P.check_str("device", device))  # auto -> cuda when there is a GPU
        threads = P.check_int("threads", threads, 0, 1024)
        P.check_int("frames_per_call", frames_per_call, 1, MAX_FRAMES_PER_CALL)
        P.check_choice("mode", mode, C.MODES)
        P.check_float("vad_threshold_db", vad_threshold_db, -200.0, 0.0)
        send_eos = P.check_bool("send_eos", send_eos)
        C.set_threads(threads)
        model, info = W.load_mimi(weights, device=device)
        self.codec = C.MimiStreamingEncoder(model, mode=mode, info=info)
        self.framer = TokenFramer(self.codec, sample_rate, n_q, frames_per_call, vad_threshold_db)
        # capture_time of each frame (host monotonic clock, docs/latency.md)
        self.capture = CaptureClock(sample_rate)
        self._t_cap = float("-inf")
        self.untrained = bool(info.get("untrained"))
        self.weights_info = info
        self.send_eos = bool(send_eos)
        self._eos_sent = False
        self._frames_out = 0
        self._n_q_rejected = 0
        self._n_q_in = 0
        self.guard = Guard("mimi_encoder", self.logger)
        self.message_port_register_out(PORT_OUT)
        self.message_port_register_in(PORT_N_Q)
        self.guard.install(self, "n_q", self._handle_n_q)
        if self.untrained:
            self.logger.warn("UNTRAINED random weights (%s): tokens are not speech codes"
                        % info.get("source"))

    # run-time settable codebook count
    def set_n_q(self, n_q, frame=None):
        self.framer.set_n_q(n_q, frame)

    def n_q(self):
        return self.framer.n_q

    def frames_out(self):
        return self._frames_out

    def n_q_rejected(self):
        return self._n_q_rejected

    def n_q_in(self):
        """n_q messages completely handled (accepted or rejected)."""
        return self._n_q_in

    def frames_sanitised(self):
        """Input frames that held a non-finite sample or one beyond
        +-MAX_AUDIO_ABS (sanitise_frames); counted, and logged (rate-limited)
        as `in: audio sanitised` in rejections()."""
        return self.framer.frames_sanitised

    def samples_sanitised(self):
        return self.framer.samples_sanitised

    def rejections(self):
        """{reason: count} of rejected or failed messages (see guard.py)."""
        return self.guard.counts()

    def _handle_n_q(self, msg):
        try:
            n, f = parse_n_q_msg(msg)
            self.framer.set_n_q(n, f)
        except Exception as e:  # noqa: BLE001 - rejected, counted, logged
            self._n_q_rejected += 1
            self.guard.note("n_q: message rejected", e)
        finally:
            self._n_q_in += 1

    def work(self, input_items, output_items):
        # Take at most one model call's worth of audio per work() call, so each
        # frame is published as soon as it is encoded (a large input buffer
        # would otherwise hold every frame in it back until the last one).
        f = self.framer
        # everything in the input buffer has been captured by now (the capture clock)
        self.capture.observe(self.nitems_read(0) + len(input_items[0]))
        x = input_items[0][:max(1, f.frames_per_call * f.spf - f.buffered())]
        n_bad = f.frames_sanitised
        for idx, toks, e_db, vad in f.push(x):
            # frames are captured in order: never earlier than the previous one (a source faster
            # than real time moves the clock's anchor back)
            t_cap = self._t_cap = max(self.capture.capture_time((idx + 1) * f.spf - 1), self._t_cap)
            self.message_port_pub(PORT_OUT, make_frame_pdu(idx, toks, e_db, vad, self.untrained, t_cap))
            self._frames_out += 1
        for _ in range(f.frames_sanitised - n_bad):
            self.guard.note("in: audio sanitised", f"non-finite or beyond +-{MAX_AUDIO_ABS} samples "
                            f"({f.samples_sanitised} so far) set to 0 / clipped")
        return len(x)

    def stop(self):
        # GNU Radio calls stop() when this block's input has ended (and at
        # flowgraph stop): mark the end of the token stream once.
        if self.send_eos and not self._eos_sent:
            self._eos_sent = True
            self.message_port_pub(PORT_OUT, make_eos_pdu(self.framer.next_frame))
        return True
