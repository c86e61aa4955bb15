#
# Copyright 2026 gr-largesc authors.
# SPDX-License-Identifier: GPL-3.0-or-later
#
"""One LargeSC link as a GNU Radio flowgraph built from the module's blocks:

  audio -> mimi_encoder -> adaptive_controller -> uep_packetizer
        -> erasure_channel -> uep_depacketizer -> token_recovery -> mimi_decoder -> audio

Message ports have no backpressure (past max_messages a port drops messages
with only a log line), so the audio source is paced: it hands the encoder a
new frame of audio only while fewer than `window` frames are between the
encoder and the decoder. After the run every packet is accounted for:
sent = delivered + dropped by the channel, and packets lost anywhere else
make the run fail (LinkAccountingError).
"""

import threading
import time
from dataclasses import dataclass, field

import numpy as np
import pmt
from gnuradio import blocks, gr

from ..common.loss import LossSpec
from ..common.pacing import wait_for
from ..uep import uep_plan

MIMI_RATE = 24000
FRAME_SAMPLES_24K = 1920
FRAME_S = 0.08


class LinkAccountingError(RuntimeError):
    """Packets or frames went missing outside the channel (a message queue)."""


class paced_audio_source(gr.sync_block):
    """Float source that plays `audio` in chunks of `chunk` samples, and only
    while in_flight() < window (frames between encoder and decoder). Ends
    its stream (WORK_DONE) after the last sample."""

    def __init__(self, audio, chunk, in_flight, window=64):
        gr.sync_block.__init__(self, name="paced_audio_source", in_sig=None, out_sig=[np.float32])
        self._audio = np.ascontiguousarray(audio, dtype=np.float32)
        self._chunk = int(chunk)
        self._in_flight = in_flight
        self._window = int(window)
        self._pos = 0
        self.done = threading.Event()

    def position(self):
        return self._pos

    def work(self, input_items, output_items):
        if self._pos >= len(self._audio):
            self.done.set()
            return -1
        if self._in_flight() >= self._window:
            time.sleep(0.002)  # the decoder is behind: wait, do not overrun its queue
            return 0
        out = output_items[0]
        n = min(len(out), self._chunk, len(self._audio) - self._pos)
        out[:n] = self._audio[self._pos:self._pos + n]
        self._pos += n
        return n


@dataclass
class LinkConfig:
    budget: float = 1100.0          # token payload bit/s (550..2060)
    # the channel's losses (common/loss.py): model, parameters, seed or trace;
    # the controller starts from its nominal loss rate and burst
    loss: LossSpec = LossSpec(loss_rate=0.1, model="gilbert_elliott")
    max_offset: int = 1             # D: copies up to D frames later = playout delay
    mode: str = "adaptive"          # controller: adaptive | fixed
    recovery: str = "hold"          # token_recovery backend, or "none"
    recovery_args: dict = field(default_factory=dict)
    weights: str = "random:0"       # Mimi weight spec (see weights.py)
    codec_mode: str = "exact"
    device: str = "cpu"             # Mimi encoder/decoder device: cpu, cuda, auto
    out_rate: int = 16000
    crc: bool = False
    feedback: bool = False          # close the loop: depacketizer feedback -> controller
    window: int = 32                # frames in flight between encoder and decoder
    threads: int = 0

    def check(self):
        uep_plan.check_budget(self.budget)
        if self.max_offset not in (0, 1, 2):
            raise ValueError(f"max_offset (D) must be 0, 1 or 2, got {self.max_offset}")
        if not isinstance(self.loss, LossSpec):
            raise TypeError(f"loss must be a LossSpec (gnuradio.largesc.common.loss), got {self.loss!r}")


@dataclass
class LinkResult:
    audio: np.ndarray
    rate: int
    frames: int
    untrained: bool                 # the Mimi codec runs random weights
    counters: dict
    latency_ms: float
    seconds: float
    recovery_untrained: bool = False  # the recovery model is untrained (lm on random weights)


def algorithmic_latency_ms(cfg, in_rate, recovery_frames=0):
    """Mic-to-speaker algorithmic latency: one 80 ms frame of audio buffering at
    the encoder, D frames of playout delay at the depacketizer, the frames the
    recovery model holds back for its codebook delays (0 for hold), and the
    decoder's frame (Mimi's streaming decoder emits a frame per token frame: no
    look-ahead beyond the frame). Processing time is not included."""
    return FRAME_S * 1000 * (1 + cfg.max_offset + recovery_frames)


def packets_lost_elsewhere(sent, delivered, dropped, depacketizer_in):
    """Packets lost outside the channel: between packetizer and channel
    (sent - delivered - dropped) plus between channel and depacketizer
    (delivered - depacketizer_in). 0 in a healthy run."""
    return (sent - delivered - dropped) + (delivered - depacketizer_in)


def packet_path_drained(n, ctrl, pkz, chan, dpk):
    """True once all n encoded frames have gone through controller, packetizer
    and channel into the depacketizer, with no message inside any block or
    queue. Exact because each block counts a message in only after its outputs
    are published (the C++ blocks' frames_in/packets_in, the controller's
    frames_out + frames_rejected), and the stages are checked from the source
    on: once the encoder has finished, a stage found drained stays drained."""
    return (ctrl.frames_out() + ctrl.frames_rejected() == n
            and pkz.frames_in() == ctrl.frames_out()
            and chan.packets_in() == pkz.packets_out()
            and dpk.packets_in() == chan.packets_passed())


def stage_counters(ctrl, pkz, chan, dpk, rec=None, dec=None):
    """Counters along the link, for progress checks and stall messages."""
    return (("ctrl_out", ctrl.frames_out()), ("pkz_in", pkz.frames_in()), ("pkz_out", pkz.packets_out()),
            ("chan_in", chan.packets_in()), ("chan_passed", chan.packets_passed()),
            ("dpk_in", dpk.packets_in()), ("dpk_out", dpk.frames_out()),
            ("rec_in", rec.frames_in() if rec is not None else -1),
            ("rec_out", rec.frames_out() if rec is not None else -1),
            ("dec_in", dec.frames_in() if dec is not None else -1))


@dataclass
class _LinkGraph:
    """The link's flowgraph and the blocks run_link watches."""
    tb: gr.top_block
    src: paced_audio_source
    tx: object                      # largesc_tx
    chan: object                    # erasure_channel
    rx: object                      # largesc_rx
    sink: object                    # vector_sink_f

    def __post_init__(self):
        self.enc, self.ctrl, self.pkz = self.tx.encoder, self.tx.controller, self.tx.packetizer
        self.dpk, self.rec, self.dec = self.rx.depacketizer, self.rx.recovery, self.rx.decoder

    def progress(self):
        """Every counter along the link (the stall check of each wait)."""
        return (self.src.position(), self.enc.nitems_read(0), self.enc.frames_out()) + stage_counters(
            self.ctrl, self.pkz, self.chan, self.dpk, self.rec, self.dec)


def _build_link(audio, in_rate, cfg):
    """The flowgraph: paced audio -> largesc_tx -> erasure channel (cfg.loss)
    -> largesc_rx -> sink; the controller starts from cfg.loss's nominal loss."""
    from ..hier.largesc_rx import largesc_rx
    from ..hier.largesc_tx import largesc_tx

    tb = gr.top_block("largesc_link")
    loss_rate, mean_burst = cfg.loss.nominal()
    loss0 = min(loss_rate, 0.9)
    tx = largesc_tx(sample_rate=int(in_rate), budget=cfg.budget, loss_rate=loss0,
                    mean_burst=max(mean_burst, 1.0 / (1.0 - loss0)), max_offset=cfg.max_offset,
                    mode=cfg.mode, weights=cfg.weights, crc=cfg.crc, threads=cfg.threads,
                    codec_mode=cfg.codec_mode, device=cfg.device)
    rx = largesc_rx(sample_rate=cfg.out_rate, delay=cfg.max_offset, recovery=cfg.recovery,
                    weights=cfg.weights, require_crc=cfg.crc,
                    feedback_interval=25 if cfg.feedback else 0, threads=cfg.threads,
                    codec_mode=cfg.codec_mode, recovery_args=cfg.recovery_args, start_frame=0,
                    device=cfg.device, jitter_buffer_ms=0)   # a simulation has no playout clock
    chan = cfg.loss.erasure_channel(stats_interval=0)
    enc, dec = tx.encoder, rx.decoder
    chunk = max(1, int(round(FRAME_S * in_rate)))
    src = paced_audio_source(audio, chunk, lambda: enc.frames_out() - dec.frames_in(), cfg.window)
    sink = blocks.vector_sink_f()

    tb.connect(src, tx)
    tb.connect(rx, sink)
    tb.msg_connect((tx, "out"), (chan, "in"))
    tb.msg_connect((chan, "out"), (rx, "in"))
    if cfg.feedback:
        tb.msg_connect((rx, "feedback"), (tx, "feedback"))
    return _LinkGraph(tb=tb, src=src, tx=tx, chan=chan, rx=rx, sink=sink)


def _wait_played_out(g, n_audio, out_rate, stall_timeout):
    """Waits, stage by stage from the source on, until every frame is decoded
    and played out (PacingTimeout on a stall). Returns (frames encoded,
    samples expected at the sink)."""
    from ..common.frame_pdu import make_eos_pdu

    enc, ctrl, pkz, chan, dpk, rec, dec = g.enc, g.ctrl, g.pkz, g.chan, g.dpk, g.rec, g.dec
    moving = g.progress
    wait_for(g.src.done.is_set, stall_timeout, "audio source did not finish", progress=moving)
    wait_for(lambda: enc.nitems_read(0) >= n_audio, stall_timeout,
             "encoder did not consume the audio", progress=moving)
    n = enc.frames_out()
    drained = lambda: packet_path_drained(n, ctrl, pkz, chan, dpk)
    wait_for(drained, stall_timeout, "packets stuck between blocks", progress=moving)
    dpk.flush()
    n_rx = dpk.frames_out()
    if rec is not None:
        # every frame handled (its outputs published), then the frames the
        # lm backend holds for its delays are played out
        wait_for(lambda: rec.frames_in() == n_rx, stall_timeout, "recovery did not take every frame",
                 progress=moving)
        rec.flush()
        # a frame the recovery model failed on is dropped and counted
        # (rec.frames_dropped()); the decoder plays silence in its slot
        wait_for(lambda: rec.frames_out() + rec.frames_dropped() == n_rx, stall_timeout,
                 "recovery did not finish",
                 progress=moving)
    dec.to_basic_block()._post(pmt.intern("in"), make_eos_pdu(n))
    want = n * int(round(FRAME_S * out_rate))
    sink = g.sink
    wait_for(lambda: len(sink.data()) >= want, stall_timeout, "decoder did not play out every frame",
             progress=lambda: (len(sink.data()),) + moving())
    return n, want


def _run_graph(g, n_audio, out_rate, stall_timeout):
    """Runs the flowgraph until every frame is played out. On any exception
    (a PacingTimeout, a KeyboardInterrupt or the SIGTERM of a campaign) the
    flowgraph is stopped and waited for before it goes on: a top block
    destroyed while its threads run can hang the process. That includes an
    exception out of start() itself: a signal handled while a Python block's
    start() runs raises there, after other blocks' threads have started.
    Returns (frames encoded, samples expected, audio out)."""
    try:
        g.tb.start()
        n, want = _wait_played_out(g, n_audio, out_rate, stall_timeout)
    except BaseException:
        g.tb.stop()
        g.tb.wait()
        raise
    g.tb.wait()
    return n, want, np.array(g.sink.data(), dtype=np.float32)


def _link_counters(g, n, out, want):
    """The counters of a finished run, packets_lost_elsewhere included."""
    ctrl, pkz, chan, dpk, rec, dec = g.ctrl, g.pkz, g.chan, g.dpk, g.rec, g.dec
    c = dpk.counters()
    counters = dict(
        frames_encoded=n, frames_planned=ctrl.frames_out(), frames_rejected=ctrl.frames_rejected() + pkz.frames_rejected(),
        packets_sent=pkz.packets_out(), packets_dropped_by_channel=chan.packets_dropped(),
        packets_delivered=chan.packets_passed(), packets_accepted=c["packets_accepted"],
        packets_malformed=c["malformed"], packets_late=c["late"], packets_duplicate=c["duplicates"],
        frames_out=c["frames_out"], frames_primary=c["frames_primary"], frames_empty=c["frames_empty"],
        tokens_from_copies=c["tokens_from_copies"], bytes_sent=pkz.bytes_out(),
        decoder=dec.stats(), recovery=(rec.stats() if rec is not None and hasattr(rec, "stats") else None),
        samples_out=len(out), samples_expected=want)
    counters["packets_lost_elsewhere"] = packets_lost_elsewhere(
        counters["packets_sent"], counters["packets_delivered"], counters["packets_dropped_by_channel"],
        dpk.packets_in())
    return counters


def _check_accounting(counters, n, out, want):
    """LinkAccountingError unless every packet and frame is accounted for."""
    if counters["packets_lost_elsewhere"] or counters["frames_planned"] != n or len(out) != want:
        raise LinkAccountingError(f"link lost data outside the channel: {counters}")


def _link_result(g, cfg, in_rate, n, out, counters, t_start):
    """The LinkResult of a checked run: bit rates added to the counters."""
    rec = g.rec
    secs = n * FRAME_S
    counters["token_bitrate"] = uep_plan.SLOT_BITRATE * uep_plan.slots_for_budget(cfg.budget)
    counters["on_air_bitrate"] = 8 * g.pkz.bytes_out() / secs if secs else 0.0
    return LinkResult(audio=out, rate=cfg.out_rate, frames=n, untrained=bool(g.enc.untrained),
                      counters=counters, latency_ms=algorithmic_latency_ms(
                          cfg, in_rate, rec.latency_frames() if rec is not None else 0),
                      seconds=time.perf_counter() - t_start,
                      recovery_untrained=bool(rec is not None and rec.info().get("untrained", False)))


def run_link(audio, in_rate, cfg=None, stall_timeout=60.0):
    """Runs `audio` (float, in_rate Hz) through the link; returns LinkResult.

    Never waits forever: every wait fails with PacingTimeout, naming the
    counters of every stage, after `stall_timeout` seconds in which no
    counter along the link moved (a slow machine only makes the run longer)."""
    cfg = cfg or LinkConfig()
    cfg.check()
    t_start = time.perf_counter()
    g = _build_link(audio, in_rate, cfg)
    n, want, out = _run_graph(g, len(audio), cfg.out_rate, stall_timeout)
    counters = _link_counters(g, n, out, want)
    _check_accounting(counters, n, out, want)
    return _link_result(g, cfg, in_rate, n, out, counters, t_start)
