#
# Copyright 2026 gr-largesc authors.
# SPDX-License-Identifier: GPL-3.0-or-later
#
"""mimi_decoder: token-frame PDUs in, float audio out, sample count locked to
frame count. Glue around FramePlayout (scheduler-free, below) which wraps
mimi_codec.MimiStreamingDecoder."""

import collections
import threading
import time

import numpy as np
import pmt
from gnuradio import gr

from . import mimi_codec as C
from ..common import frame_pdu as FP
from ..common import params as P
from ..common.frame_pdu import MAX_FRAME_INDEX, MalformedFrame
from . import weights as W
from ..common.guard import Guard
from ..common.latency import K_CAP_MS, K_DUE_TIME, K_OUT_SAMPLE, K_OUT_TIME, K_RX_MS, LatencyStats

PORT_IN = pmt.intern("in")
PORT_LATENCY = pmt.intern("latency")
MAX_TIMED_FRAMES = 4096         # frames waiting for output whose times are kept
# a frame's audio is held until its play_time (the playout clock's early release) at most
# this long; a play_time further ahead is not on this host's clock: not held, counted
MAX_HOLD_S = 1.0                # the playout clock's decode lead is at most 0.5 s
# fixed-rate output (FixedRateOutput, docs/latency.md "Fixed-rate output"): the stream may be
# this much ahead of a frame's play_time before it slips later (samples inserted) ...
SLIP_IN_S = 0.010
# ... and this much behind before it slips earlier (samples dropped, at most half a frame each)
SLIP_OUT_S = 0.030
# after a slip the frame is due this long after its play_time (0: at it; docs/latency.md,
# "Fixed-rate output": 10/30/0 put the line 4-6 ms after the play times on the p50 of a
# 10-minute run, 10/40/10 put it 11-15 ms after, with a third fewer slips)
SLIP_TO_S = 0.0
# a frame due this much later than the stream (the clock restarted after a silence): a new stream
RESYNC_S = 0.5
FADE_S = 0.002                  # the ramp at each slip's edges
# output_prime_ms: silence that starts each new stream (a sound card started by it keeps that
# much in its buffer and rides out the host's late frames), at most this much
MAX_PRIME_S = 0.5
PORT_SYSTEM = pmt.intern("system")
K_DONE = pmt.intern("done")
# posted by the end-of-stream timer to wake work(); ignored as input
K_WAKE = pmt.intern("largesc_mimi_decoder_wake")

# default bound of a forward frame-index jump that is filled with silence
# (50 frames = 4 s); see FramePlayout
DEFAULT_MAX_GAP = 50
MAX_GAP_LIMIT = 12500           # 1000 s
MAX_FRAMES_PER_CALL = 125       # 10 s of frames in one model call
MAX_DONE_GRACE_S = 3600.0


def parse_frame_pdu(msg):
    """Token-frame PDU -> ("frame", idx, tokens uint16[n_q], present bool[n_q])
    or ("eos", idx or None); common.frame_pdu.MalformedFrame (with .frame
    when the index was readable, .reason a stable name) for anything else
    (the rules: common.frame_pdu.parse_frame; index and n_q required)."""
    f = FP.parse_frame(msg, allow_eos=True)
    if isinstance(f, FP.EndOfStream):
        return ("eos", f.frame)
    return ("frame", f.frame, f.tokens, f.present())


class FramePlayout:
    """Token frames (by index) in, audio out, no scheduler.

    Each frame index from the first one received (or from start_frame, when
    given) yields exactly out_rate * 0.08 samples: decoded audio for a valid
    frame, silence for a missing or malformed one.

    Frame-index rule (n = the next index expected, G = max_gap):
      idx == n             decoded;
      n < idx <= n + G     the frames n..idx-1 become silence (missing), then
                           idx is decoded;
      n - G <= idx < n     late (or duplicate): counted and dropped;
      otherwise            a jump: a new stream starts at idx (no silence,
                           counted in `restarts`), idx is decoded.
    A malformed frame with a readable index fills its slot with silence when
    n <= idx <= n + G, and is only counted otherwise (it never restarts the
    stream). An end-of-stream index more than G frames ahead is refused
    (`eos_refused`): no single message can create more than G + 1 frames of
    output."""

    def __init__(self, codec, sample_rate=16000, frames_per_call=1, start_frame=None,
                 max_gap=DEFAULT_MAX_GAP):
        self.codec = codec
        self.sample_rate = C.check_rate(sample_rate)
        self.frames_per_call = P.check_int("frames_per_call", frames_per_call, 1, MAX_FRAMES_PER_CALL)
        self.max_gap = P.check_int("max_gap", max_gap, 0, MAX_GAP_LIMIT)
        self.resampler = C.FrameResampler(C.SAMPLE_RATE, self.sample_rate)
        self.spf = self.resampler.n_out
        self.next_frame = P.check_optional_int("start_frame", start_frame, 0, MAX_FRAME_INDEX)
        self.stats = collections.Counter(frames_in=0, frames_decoded=0, frames_missing=0,
                                         frames_malformed=0, frames_late=0, samples_out=0,
                                         restarts=0, eos_refused=0)
        self.frames_jumped_logged = 0
        # (output sample offset of its first sample, index) of each decoded frame, for the
        # latency measurement (mimi_decoder.work takes them as the samples leave)
        self.marks = collections.deque(maxlen=MAX_TIMED_FRAMES)

    def _silence(self, n):
        self.resampler.reset()
        self.stats["samples_out"] += n * self.spf
        return np.zeros(n * self.spf, dtype=np.float32)

    def classify(self, idx):
        """'next', 'gap' (fillable), 'late' or 'jump' for frame index idx."""
        n = self.next_frame
        if n is None or idx == n:
            return "next"
        if n < idx <= n + self.max_gap:
            return "gap"
        if n - self.max_gap <= idx < n:
            return "late"
        return "jump"

    def fill_to(self, idx):
        """Silence for every index from next_frame up to idx (exclusive);
        nothing when idx is behind or more than max_gap ahead."""
        if self.next_frame is None or idx is None or self.classify(idx) != "gap":
            return np.zeros(0, dtype=np.float32)
        n = idx - self.next_frame
        self.stats["frames_missing"] += n
        self.next_frame = idx
        return self._silence(n)

    def eos_ok(self, idx):
        """Whether an end-of-stream PDU with index idx is accepted."""
        return idx is None or self.next_frame is None or idx <= self.next_frame + self.max_gap

    def malformed(self, idx):
        """A malformed frame: its slot (if its index is known and within the
        gap bound) becomes silence."""
        self.stats["frames_malformed"] += 1
        if idx is None or self.next_frame is None or self.classify(idx) not in ("next", "gap"):
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
                base = self.stats["samples_out"]
                self.marks.extend((base + i * self.spf, idx) for i, (idx, _, _) in enumerate(run))
                self.stats["frames_decoded"] += len(run)
                self.stats["samples_out"] += len(run) * self.spf
                run.clear()

        for idx, toks, present in items:
            self.stats["frames_in"] += 1
            kind = self.classify(idx)
            if kind == "late":
                self.stats["frames_late"] += 1
                continue
            if kind == "gap":
                flush()
                out.append(self.fill_to(idx))
            elif kind == "jump":
                flush()
                self.stats["restarts"] += 1
                self.resampler.reset()
            run.append((idx, toks, present))
            self.next_frame = idx + 1
            if len(run) >= self.frames_per_call:
                flush()
        flush()
        return np.concatenate(out) if out else np.zeros(0, dtype=np.float32)


class FixedRateOutput:
    """The decoder's output as one fixed-rate stream, as a sound card plays it (no scheduler,
    no clock: the caller gives the times).

    Output sample `pos` is due at t0 + (pos - w0) / rate. Each frame that comes with a
    play_time (the playout clock's time for it) is placed on that line by
    frame(pos, play_time, frame_len), pos being the output sample its first sample
    would take:
      play_time more than SLIP_IN_S after its due time (the clock's schedule moved later:
        a busy path): `insert` samples go out before the frame, which is then due
        SLIP_TO_S after its play_time (the stream never waits for a frame: no underrun);
      play_time more than SLIP_OUT_S before its due time (the schedule moved earlier):
        `drop` samples of the frame's start are cut (at most half the frame) to bring
        it SLIP_TO_S after its play_time;
      otherwise the frame is due where the stream puts it.
    The first frame, and one due more than RESYNC_S later than the stream (the clock
    restarted after a silence), start the line at its play_time (`resyncs`); with
    prime_s > 0, prime_s of silence goes in before such a frame (`primes`,
    `samples_primed`, `last_prime` the samples of the last call's), to leave with it
    when it is due (the caller waits for that): a sound card started by the stream then
    plays everything prime_s after the line, so a frame that comes up to prime_s late
    does not underrun it.
    frame() returns (insert, drop, due time of the frame's first output sample)."""

    def __init__(self, rate, slip_in_s=SLIP_IN_S, slip_out_s=SLIP_OUT_S, slip_to_s=SLIP_TO_S,
                 resync_s=RESYNC_S, prime_s=0.0):
        if not rate > 0:
            raise ValueError(f"rate must be > 0, got {rate!r}")
        self.rate = float(rate)
        self.slip_in_s = P.check_float("slip_in_s", slip_in_s, 0.0, 1.0)
        self.slip_out_s = P.check_float("slip_out_s", slip_out_s, 0.0, 1.0)
        self.slip_to_s = P.check_float("slip_to_s", slip_to_s, 0.0, self.slip_out_s)
        self.resync_s = P.check_float("resync_s", resync_s, self.slip_in_s, 60.0)
        self.prime = int(round(P.check_float("prime_s", prime_s, 0.0, MAX_PRIME_S) * self.rate))
        self.t0 = None
        self.w0 = 0
        self.last_prime = 0
        self.counts = collections.Counter(slips_in=0, samples_inserted=0, slips_out=0,
                                          samples_dropped=0, resyncs=0, primes=0, samples_primed=0)

    def due(self, pos):
        """When output sample pos is due (None before the first frame)."""
        return None if self.t0 is None else self.t0 + (pos - self.w0) / self.rate

    def frame(self, pos, play_time, frame_len):
        """(insert, drop, due) for the frame whose first sample would be output sample pos."""
        d = None if self.t0 is None else play_time - self.due(pos)
        self.last_prime = 0
        if d is None or d > self.resync_s:
            if d is not None:
                self.counts["resyncs"] += 1
            k = self.last_prime = self.prime     # on the line before the frame, out with it
            if k:
                self.counts["primes"] += 1
                self.counts["samples_primed"] += k
            self.t0, self.w0 = play_time, pos + k
            return k, 0, play_time
        if d > self.slip_in_s:
            k = int(round((d + self.slip_to_s) * self.rate))
            self.counts["slips_in"] += 1
            self.counts["samples_inserted"] += k
            return k, 0, self.due(pos + k)
        if -d > self.slip_out_s:
            k = min(int(round((-d - self.slip_to_s) * self.rate)), frame_len // 2)
            if k > 0:
                self.counts["slips_out"] += 1
                self.counts["samples_dropped"] += k
            return 0, max(k, 0), self.due(pos)
        return 0, 0, self.due(pos)


class mimi_decoder(gr.sync_block):
    """Streaming Mimi decoder (see docs/mimi.md).

    Message port `in`: token-frame PDUs. Output: float audio at sample_rate,
    exactly sample_rate * 0.08 samples per frame index from the first frame
    received (or from start_frame: a transmitter's first frame is 0, so with
    start_frame=0 the output stays aligned with the input even when the first
    packets are lost); missing and malformed frames become silence and are
    counted.
    Frame-index jumps follow FramePlayout's rule: a gap of up to max_gap
    frames is filled with silence, a larger jump (either way) starts a new
    stream without silence (`restarts`), frames up to max_gap behind are late.
    The block ends its stream after an end-of-stream PDU (car eos=True,
    frame = number of frames; missing trailing frames are filled first; an
    index more than max_gap ahead is refused and counted, the stream goes
    on), or, when no such PDU comes, `done_grace_s` seconds after every
    upstream message block has finished.
    Every rejected message is counted per reason (rejections()) and logged
    at WARNING level (first, then every 1000th per reason).
    Message port `latency` (out): for each frame that came with an rx_time
    (uep_depacketizer on a live link) or a capture_time (mimi_encoder), when
    its first sample leaves this block, a PDU whose car is a dict: frame,
    out_time, rx_time and receive_to_output_ms, capture_time and
    capture_to_output_ms, play_time (as known); latency() sums them up
    (docs/latency.md).
    A frame that comes with a `play_time` (uep_depacketizer's playout clock on
    a live link) still ahead of the host's monotonic clock is decoded at once
    and its audio held until then (the clock lets complete frames go early so
    that the decoding is done when the frame is due: docs/latency.md, "Decode
    lead"); frames_held() counts them, hold_refused() the play times more
    than 1 s ahead (not on this clock: not held).
    fixed_rate=True (largesc_rx on a live clock): the frames with a play_time leave
    as one stream at the output rate on the host's clock, as a sound card takes it
    (FixedRateOutput): each frame is due where the stream puts it; when the playout
    clock's schedule has moved more than SLIP_IN_S later or SLIP_OUT_S earlier than
    the stream, the stream slips (samples inserted before the frame, or up to half
    of its first samples cut, 2 ms ramps at the edges) instead of stalling or
    piling up. The sample count then differs from frames x 0.08 s by the slips
    (rate_stats()); each latency message carries out_sample, the output sample the
    frame's first sample became, and due_time, when the stream had it due.
    output_prime_ms (with fixed_rate, 0..500, default 0): that much silence goes into the
    stream when it starts (and starts again after a silence) and leaves with the first
    frame when that frame is due, so that a sound card started by the stream plays it all
    that much after the line and rides out a frame up to that late (docs/latency.md,
    "Sound card prime")."""

    def __init__(self, sample_rate=16000, weights="hf", device="auto", threads=0,
                 frames_per_call=1, mode="exact", done_grace_s=1.0, start_frame=None,
                 max_gap=DEFAULT_MAX_GAP, fixed_rate=False, output_prime_ms=0.0):
        gr.sync_block.__init__(self, name="mimi_decoder", in_sig=None, out_sig=[np.float32])
        C.check_rate(sample_rate)
        P.check_str("weights", weights)
        device = W.resolve_device(P.check_str("device", device))  # auto -> cuda when there is a GPU
        threads = P.check_int("threads", threads, 0, 1024)
        P.check_int("frames_per_call", frames_per_call, 1, MAX_FRAMES_PER_CALL)
        P.check_choice("mode", mode, C.MODES)
        self.done_grace_s = P.check_float("done_grace_s", done_grace_s, 0.0, MAX_DONE_GRACE_S)
        P.check_optional_int("start_frame", start_frame, 0, MAX_FRAME_INDEX)
        P.check_int("max_gap", max_gap, 0, MAX_GAP_LIMIT)
        fixed_rate = P.check_bool("fixed_rate", fixed_rate)
        prime = P.check_float("output_prime_ms", output_prime_ms, 0.0, 1000.0 * MAX_PRIME_S)
        if prime and not fixed_rate:
            raise P.ParameterError(f"output_prime_ms={output_prime_ms!r} needs fixed_rate=True (the prime goes "
                                   f"out ahead of the fixed-rate stream's line); use 0 without it")
        C.set_threads(threads)
        model, info = W.load_mimi(weights, device=device)
        self.codec = C.MimiStreamingDecoder(model, mode=mode, info=info)
        self.playout = FramePlayout(self.codec, sample_rate, frames_per_call, start_frame, max_gap)
        self.untrained = bool(info.get("untrained"))
        self.weights_info = info
        self.guard = Guard("mimi_decoder", self.logger)
        self._queue = collections.deque()
        self._pending = np.zeros(0, dtype=np.float32)
        self._ending = False
        self._timer = None
        self._tagged = False
        self._lock = threading.Lock()
        self._times = collections.OrderedDict()   # frame -> (rx_time, capture_time) until it leaves
        self.receive_latency = LatencyStats()
        self.capture_latency = LatencyStats()
        self.latency_extra = None       # callable -> {name: int} added to each latency message
        self.holds = collections.Counter(frames_held=0, hold_refused=0)
        self.rate_out = FixedRateOutput(self.playout.sample_rate, prime_s=prime / 1000.0) if fixed_rate else None
        self._shift = 0                 # output sample index - FramePlayout offset (the slips)
        self._placed = None             # (frame, due time) of the frame fixed_rate placed last
        self._last = 0.0                # the last sample out (the slips' ramps start there)
        self.message_port_register_in(PORT_IN)
        self.message_port_register_out(PORT_LATENCY)
        self.guard.install(self, "in", self._handle_in)
        self.guard.install(self, "system", self._handle_system)
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

    def restarts(self):
        return self.playout.stats["restarts"]

    def stats(self):
        return dict(self.playout.stats)

    def frames_held(self):
        """Frames whose audio waited for their play_time (decoded before it was due)."""
        return self.holds["frames_held"]

    def hold_refused(self):
        """Frames whose play_time was more than MAX_HOLD_S ahead: not held."""
        return self.holds["hold_refused"]

    def latency(self):
        """Per-frame latency over the last 125 timed frames (LatencyStats.summary() each):
        receive_to_output, from the frame's rx_time (its first packet's arrival, stamped by
        packet_sorter on a live link) to the moment its first sample left this block;
        capture_to_output, from its capture_time (frames straight from mimi_encoder on the
        same machine) to the same moment."""
        with self._lock:
            return dict(receive_to_output=self.receive_latency.summary(),
                        capture_to_output=self.capture_latency.summary())

    def rejections(self):
        """{reason: count} of rejected or failed messages (see guard.py)."""
        return self.guard.counts()

    def queued(self):
        """Messages received but not yet turned into audio."""
        with self._lock:
            return len(self._queue)

    def _handle_in(self, msg):
        if pmt.eq(msg, K_WAKE):
            return              # wake-up posted by the end-of-stream timer
        try:
            item = parse_frame_pdu(msg)
        except MalformedFrame as e:
            item = ("bad", e.frame, str(e), e.reason)
        times = None
        if item[0] == "frame":
            meta = pmt.car(msg)
            times = (FP.meta_time(meta, FP.RX_TIME), FP.meta_time(meta, FP.CAPTURE_TIME),
                     FP.meta_time(meta, FP.PLAY_TIME))
        with self._lock:
            self._queue.append(item)
            if times and times != (None, None, None):
                self._times[item[1]] = times
                while len(self._times) > MAX_TIMED_FRAMES:
                    self._times.popitem(last=False)

    def _handle_system(self, msg):
        # ("done" . n): every upstream message block has finished
        if pmt.is_pair(msg) and pmt.eqv(pmt.car(msg), K_DONE):
            def wake():
                with self._lock:
                    self._queue.append(("eos", None))
                self.to_basic_block()._post(PORT_IN, K_WAKE)   # wakes work()
            self._timer = threading.Timer(self.done_grace_s, wake)
            self._timer.daemon = True
            self._timer.start()

    def _item_audio(self, item):
        """Audio of one queued non-frame item (malformed or end of stream)."""
        if item[0] == "bad":
            self.guard.note(f"in: {item[3]}", item[2])
            return self.playout.malformed(item[1])
        idx = item[1]                   # eos
        if not self.playout.eos_ok(idx):
            self.playout.stats["eos_refused"] += 1
            self.guard.note("in: end-of-stream index out of range",
                            f"eos frame {idx} is more than {self.playout.max_gap} frames "
                            f"after the next frame {self.playout.next_frame}")
            return np.zeros(0, dtype=np.float32)
        a = self.playout.fill_to(idx)
        self._ending = True
        return a

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
            try:
                if batch:
                    a = self.playout.frames(batch)
                else:
                    a = self._item_audio(item)
            except Exception as e:  # noqa: BLE001 - never end the stream on one bad item
                self.guard.note(f"decode: {type(e).__name__}", e)
                parts = [self.playout.malformed(it[0]) for it in batch]  # their slots: silence
                a = np.concatenate(parts) if parts else np.zeros(0, dtype=np.float32)
            while self.playout.frames_jumped_logged < self.playout.stats["restarts"]:
                self.playout.frames_jumped_logged += 1
                self.guard.note("in: frame index jump (new stream)",
                                f"more than {self.playout.max_gap} frames from the next "
                                f"expected; the stream restarts at {self.playout.next_frame - 1}")
            pieces.append(a)
            have += len(a)
        self._pending = np.concatenate(pieces) if len(pieces) > 1 else pieces[0]

    def work(self, input_items, output_items):
        out = output_items[0]
        self._drain(len(out))
        n = min(len(out), len(self._pending))
        if n:
            n = self._until_play_time(self.nitems_written(0), n)
            if not self._tagged and self.untrained:
                self.add_item_tag(0, self.nitems_written(0), pmt.intern("untrained"), pmt.PMT_T)
                self._tagged = True
            out[:n] = self._pending[:n]
            self._last = float(self._pending[n - 1])
            self._pending = self._pending[n:]
            self._frames_left(self.nitems_written(0) + n)
            return n
        if self._ending:
            return -1       # WORK_DONE: everything up to the end marker was played
        # Nothing queued: return 0. The scheduler sleeps until the next message
        # arrives (posting wakes this block's thread), so this does not spin.
        return 0

    def _until_play_time(self, written, n):
        """How many of the n pending samples (the first is output sample `written`) may leave
        now: up to the first frame whose play_time is still ahead (with fixed_rate: up to the
        first frame with a play_time not yet placed); when that frame is the first pending
        sample, waits for its time here (at most MAX_HOLD_S). With fixed_rate the frame is
        first placed on the output stream (FixedRateOutput): samples inserted before it leave
        first, or its first samples are cut."""
        marks = self.playout.marks
        for i, (off, idx) in enumerate(marks):
            pos = off + self._shift
            if pos >= written + n:
                break
            if pos < written:
                continue
            with self._lock:
                times = self._times.get(idx)
            pt = times[2] if times else None
            if pt is None:
                continue
            if self.rate_out is not None:
                if pos > written:
                    return pos - written        # the samples before it leave now
                if self._placed is None or self._placed[0] != idx:
                    ins, drop, due = self.rate_out.frame(pos, pt, self.playout.spf)
                    self._placed = (idx, due)
                    with self._lock:
                        if idx in self._times:      # its latency message says when it was due
                            self._times[idx] = self._times[idx][:3] + (due,)
                    if ins:
                        self._shift += ins      # this frame and the ones after it move later
                        self._pending = np.concatenate([self._fill(ins), self._fade_in(self._pending, 0.0)])
                        if self.rate_out.last_prime:    # a new stream's prime leaves with its frame, when
                            now = time.monotonic()          # that is due: a card it starts lags the line
                            if now < due <= now + MAX_HOLD_S:
                                time.sleep(due - now)
                        return min(ins, n)
                    if drop:
                        self._shift -= drop     # the frames after it move earlier
                        marks[i] = (off + drop, idx)
                        self._pending = self._fade_in(self._pending[drop:], self._last)
                        n = min(n, len(self._pending))
                pt = self._placed[1]
            wait = pt - time.monotonic()
            if wait <= 0.0:
                continue
            if pos > written:
                return pos - written            # the samples before it leave now
            if wait > MAX_HOLD_S:
                self.holds["hold_refused"] += 1
                continue
            time.sleep(wait)
            self.holds["frames_held"] += 1
        return n

    def _fill(self, k):
        """k samples put in by a slip: the last sample out ramped to zero, then silence."""
        a = np.zeros(k, dtype=np.float32)
        m = min(k, max(1, int(FADE_S * self.playout.sample_rate)))
        a[:m] = self._last * np.linspace(1.0, 0.0, m, endpoint=False, dtype=np.float32)
        return a

    def _fade_in(self, x, start):
        """x with its first FADE_S ramped from `start` (the sample before it) to x itself."""
        m = min(len(x), max(1, int(FADE_S * self.playout.sample_rate)))
        if m == 0:
            return x
        x = x.copy()
        w = np.linspace(0.0, 1.0, m, endpoint=False, dtype=np.float32)
        x[:m] = start * (1.0 - w) + x[:m] * w
        return x

    def rate_stats(self):
        """Fixed-rate output (fixed_rate=True): slips_in, samples_inserted, slips_out,
        samples_dropped, resyncs, primes, samples_primed; {} without it."""
        return dict(self.rate_out.counts) if self.rate_out is not None else {}

    def stream_samples(self):
        """Samples of the output stream so far, made or put out: the frames' samples
        (stats()['samples_out']) plus the fixed-rate output's primes and slips' inserted
        samples less the dropped ones."""
        c = self.rate_out.counts if self.rate_out is not None else {}
        return (self.playout.stats["samples_out"] + c.get("samples_primed", 0) + c.get("samples_inserted", 0)
                - c.get("samples_dropped", 0))

    def _frames_left(self, written):
        """Latency of each timed frame whose first sample is now out (before sample `written`):
        counted, and published on `latency` (frame, out_time, rx_time and receive_to_output_ms,
        capture_time and capture_to_output_ms as known, plus latency_extra()'s fields)."""
        marks = self.playout.marks
        if not marks or marks[0][0] + self._shift >= written:
            return
        now = time.monotonic()
        while marks and marks[0][0] + self._shift < written:
            off, idx = marks.popleft()
            with self._lock:        # one critical section per frame: its times out, the stats in
                times = self._times.pop(idx, None)
                if times is None:
                    continue
                rx, cap, play = times[:3]
                due = times[3] if len(times) > 3 else None
                if rx is None and cap is None:
                    continue                # a lost frame (its play_time only): nothing to measure
                if rx is not None:
                    self.receive_latency.add(now - rx)
                if cap is not None:
                    self.capture_latency.add(now - cap)
            d = pmt.dict_add(pmt.make_dict(), FP.FRAME, pmt.from_uint64(int(idx)))
            d = pmt.dict_add(d, K_OUT_TIME, pmt.from_double(now))
            d = pmt.dict_add(d, K_OUT_SAMPLE, pmt.from_uint64(int(off + self._shift)))
            if rx is not None:
                d = pmt.dict_add(d, FP.RX_TIME, pmt.from_double(rx))
                d = pmt.dict_add(d, K_RX_MS, pmt.from_double(1000.0 * (now - rx)))
            if cap is not None:
                d = pmt.dict_add(d, FP.CAPTURE_TIME, pmt.from_double(cap))
                d = pmt.dict_add(d, K_CAP_MS, pmt.from_double(1000.0 * (now - cap)))
            if play is not None:
                d = pmt.dict_add(d, FP.PLAY_TIME, pmt.from_double(play))
            if due is not None:
                d = pmt.dict_add(d, K_DUE_TIME, pmt.from_double(due))
            if self.latency_extra is not None:
                for k, v in self.latency_extra().items():
                    d = pmt.dict_add(d, pmt.intern(k), pmt.from_long(int(v)))
            self.message_port_pub(PORT_LATENCY, pmt.cons(d, pmt.PMT_NIL))

    def stop(self):
        if self._timer is not None:
            self._timer.cancel()
        return True
