#
# Copyright 2026 gr-largesc authors.
# SPDX-License-Identifier: GPL-3.0-or-later
#
"""Live figures of a LargeSC link for a GUI, from the messages the link's
blocks already publish.

link_monitor: message inputs `sent` (packet PDUs as they leave the
transmitter), `received` (packet PDUs that reach the receiver) and `feedback`
(the receiver's loss reports). Every `update_every` sent packets it publishes
on `figures` a PDU whose f32 vector holds, in this order (FIGURES):

  0 loss_window      fraction of the last `window` sent packets never received
                     (the newest IN_FLIGHT packets are not judged yet)
  1 packets_sent
  2 packets_delivered  sent packets received (each once: a second copy counts in
                     packets_duplicate(), a packet never sent in packets_unknown())
  3 packets_lost     sent packets never received (excluding those in flight)
  4 token_bps        token payload bit/s of the last `window` packets
                     (11 bits x (K + r1 + r2) x frame rate)
  5 air_bps          on-air bit/s of the last `window` packets (whole packet)
  6 K, 7 r1, 8 r2    the plan of the newest packet, read from its header
  9 feedback_loss    the receiver's last reported loss rate (0 before any)
 10 feedback_burst   the receiver's last reported mean burst (0 before any)

The car of that PDU is a dict with the same names, so it serves a
`message_debug` or a script as well as GNU Radio's `pdu_to_tagged_stream`
-> `deinterleave` -> `qtgui_number_sink` chain. `summary` carries the same
figures as one line of text (a PMT symbol) for a QT GUI Message Edit Box.

Feedback ageing (FEEDBACK_FIGURES, in the car dict and figures() only, so
the vector keeps its 11 figures): the monitor applies the controller's rule
(uep_plan, docs/uep_controller.md "Feedback ageing") to the reports it sees,
on its own clock of 1/frame_rate per sent packet: `feedback_timeout` seconds
(0 = never) after the last report with window > 0, feedback_state() turns
"stale" and the summary says so, until the next report.

  feedback_age       seconds since the last report (-1 before any)
  feedback_stale     1 while the last report is older than feedback_timeout

Latency (LATENCY_FIGURES, in the car dict and figures() only): the `latency`
input takes largesc_rx's (or mimi_decoder's) latency messages, one per frame
as its first sample leaves the decoder: p50, p95 and max of
receive_to_output_ms over the last 125 frames (NaN before any), and
late_packets, the packets that came after their frame had been played out
(the receiver's count, as of its newest message). docs/latency.md.

audio_out: an audio sink that falls back to a null sink (with one warning)
when the machine has no sound card, so a flowgraph with speech output also
runs headless or in a container.
"""

import collections
import threading

import numpy as np
import pmt
from gnuradio import blocks, gr

from .. import largesc_python as _core
from ..common import params as P
from ..common.constants import FRAME_RATE
from ..common.guard import Guard
from ..common.latency import K_LATE, K_RX_MS, LatencyStats
from ..common.pmt_util import parse_feedback, to_float, to_int
from ..uep import uep_plan

FIGURES = ("loss_window", "packets_sent", "packets_delivered", "packets_lost", "token_bps", "air_bps",
           "K", "r1", "r2", "feedback_loss", "feedback_burst")
FEEDBACK_FIGURES = ("feedback_age", "feedback_stale")
LATENCY_FIGURES = ("latency_p50_ms", "latency_p95_ms", "latency_max_ms", "late_packets")
MAX_LATENCY_MS = 60000.0   # a receive-to-output latency beyond this is refused as junk
IN_FLIGHT = 2
EARLY_WAIT = 16     # sent packets a `received` packet may come before its `sent` copy


def parse_header(data):
    """(seq, K, r1, r2, crc) of a LargeSC packet's 3-byte header, read by the
    C++ packet core (largesc.parse_header, docs/packet_format.md); None when
    it is not one."""
    h = _core.parse_header(bytes(data))
    return None if h is None else (h.seq, h.k, h.r1, h.r2, h.crc)


def _packet_bytes(msg):
    """the u8 payload of a packet PDU as a numpy array, or None."""
    if not pmt.is_pair(msg):
        return None
    v = pmt.cdr(msg)
    if not pmt.is_u8vector(v):
        return None
    return np.asarray(pmt.u8vector_elements(v), dtype=np.uint8)


class link_monitor(gr.basic_block):
    """Windowed link figures (see the module docstring)."""

    def __init__(self, window=50, update_every=6, frame_rate=FRAME_RATE,
                 feedback_timeout=uep_plan.FEEDBACK_TIMEOUT):
        gr.basic_block.__init__(self, name="largesc_link_monitor", in_sig=None, out_sig=None)
        # window: packets (sequence numbers wrap at 256)
        self.window = P.check_int("window", window, IN_FLIGHT + 1, 200)
        self.update_every = P.check_int("update_every", update_every, 1, 1000000)
        self.frame_rate = P.check_float("frame_rate", frame_rate, 0.0, 1000.0, lo_open=True)
        self.feedback_timeout = uep_plan.check_feedback_timeout(feedback_timeout)
        # seq -> received flag for the last `window` sent packets, oldest first
        self._recent = collections.OrderedDict()
        self._early = collections.OrderedDict()  # seq -> packets sent when it was received before its `sent` copy
        self._sizes = collections.deque(maxlen=self.window)  # (tokens, bytes) per sent packet
        self._sent = 0
        self._delivered = 0
        self._duplicates = 0
        self._unknown = 0
        self._lost_old = 0  # lost packets that left the window
        self._plan = (0, 0, 0)
        self._fb = (0.0, 0.0)
        self._fb_age = None  # sent packets since the last report with window > 0
        self._fb_state = "parameters"  # as the controller's feedback_state
        self._fb_stale = 0
        self._latency = LatencyStats()
        self._late = 0
        self._rejected = 0
        self._updates = 0
        self._log = gr.logger("largesc_link_monitor")
        self.guard = Guard("link_monitor", self._log)
        self._handled = 0
        # figures() may be called from another thread (a GRC Function Probe)
        self._lock = threading.RLock()
        for port in ("sent", "received", "feedback", "latency"):
            self.message_port_register_in(pmt.intern(port))
        # GNU Radio's Python gateway looks handlers up by method name
        self.guard.install(self, "sent", self.handle_sent)
        self.guard.install(self, "received", self.handle_received)
        self.guard.install(self, "feedback", self.handle_feedback)
        self.guard.install(self, "latency", self.handle_latency)
        self.message_port_register_out(pmt.intern("figures"))
        self.message_port_register_out(pmt.intern("summary"))

    # a handler must never raise: that would end the block's message thread
    def _guarded(self, fn, msg, port):
        with self._lock:
            self._guarded_locked(fn, msg, port)

    def _guarded_locked(self, fn, msg, port):
        try:
            why = fn(msg)
            if isinstance(why, tuple):          # (reason, detail): a packet refused as a delivery
                self._rejected += 1
                self.guard.note(f"{port}: {why[0]}", why[1])
            elif why is not True:
                self._rejected += 1
                self.guard.note(f"{port}: rejected", why or "not a LargeSC packet PDU")
        except Exception as e:  # noqa: BLE001 - count, log, go on
            self._rejected += 1
            self.guard.note(f"{port}: {type(e).__name__}", e)
        finally:
            self._handled += 1

    def handle_sent(self, msg):
        self._guarded(self._on_sent, msg, "sent")

    def handle_received(self, msg):
        self._guarded(self._on_received, msg, "received")

    def handle_feedback(self, msg):
        self._guarded(self._on_feedback, msg, "feedback")

    def handle_latency(self, msg):
        self._guarded(self._on_latency, msg, "latency")

    def _on_latency(self, msg):
        meta = msg if pmt.is_dict(msg) else (pmt.car(msg) if pmt.is_pair(msg) else msg)  # a dict is a pair too
        if not pmt.is_dict(meta):
            return ("not a latency message", "expected a dict (or a PDU with a dict car)")
        ms = to_float(pmt.dict_ref(meta, K_RX_MS, pmt.PMT_NIL))
        if ms is not None and not (0.0 <= ms <= MAX_LATENCY_MS):
            return ("latency out of range", f"receive_to_output_ms {ms!r} outside 0..{MAX_LATENCY_MS:g}")
        late = to_int(pmt.dict_ref(meta, K_LATE, pmt.PMT_NIL))
        if ms is None and late is None:
            return ("not a latency message", "neither receive_to_output_ms nor late_packets")
        if ms is not None:
            self._latency.add(ms / 1000.0)
        if late is not None and late >= 0:
            self._late = late
        return True

    def _on_sent(self, msg):
        data = _packet_bytes(msg)
        hdr = None if data is None else parse_header(data)
        if hdr is None:
            return False
        seq, k, r1, r2, _ = hdr
        self._sent += 1
        if seq in self._recent:  # the same seq 256 packets ago (window <= 200: never in practice)
            self._retire(seq)
        while len(self._recent) >= self.window:
            self._retire(next(iter(self._recent)))
        got = self._early.pop(seq, None) is not None
        self._delivered += got
        self._recent[seq] = got
        self._expire_early()
        self._sizes.append((k + r1 + r2, len(data)))
        self._plan = (k, r1, r2)
        self._age_feedback()
        if self._sent % self.update_every == 0:
            self.publish()
        return True

    def _retire(self, seq):
        if not self._recent.pop(seq):
            self._lost_old += 1

    def _on_received(self, msg):
        """A received packet is delivered when it matches a sent packet in
        the window not received yet; a second copy is a duplicate; one whose
        `sent` copy has not come is held for EARLY_WAIT sent packets, then
        counted unknown (never sent)."""
        data = _packet_bytes(msg)
        hdr = None if data is None else parse_header(data)
        if hdr is None:
            return False
        seq = hdr[0]
        if self._recent.get(seq) or seq in self._early:
            self._duplicates += 1
            return ("duplicate", f"seq {seq}")
        if seq in self._recent:
            self._recent[seq] = True
            self._delivered += 1
        else:
            self._early[seq] = self._sent
            while len(self._early) > EARLY_WAIT:
                self._forget_early(next(iter(self._early)))
        return True

    def _expire_early(self):
        for seq in [q for q, at in self._early.items() if self._sent - at >= EARLY_WAIT]:
            self._forget_early(seq)

    def _forget_early(self, seq):
        """A received packet whose `sent` copy never came: unknown."""
        del self._early[seq]
        self._unknown += 1
        self._rejected += 1
        self.guard.note("received: unknown packet", f"seq {seq}: never sent")

    def _on_feedback(self, msg):
        # the controller's rules (pmt_util.parse_feedback): the view never
        # shows a report the controller refused
        parsed = parse_feedback(msg)
        if isinstance(parsed, str):
            return "feedback: " + parsed
        self._fb = parsed[:2]
        if parsed[2] > 0:  # window 0: nothing measured, the controller keeps its model and its age
            self._fb_age, self._fb_state = 0, "feedback"
        return True

    def _age_feedback(self):
        """One packet period more since the last report; stale from feedback_timeout on."""
        if self._fb_age is None:
            return
        self._fb_age += 1
        if (self._fb_state == "feedback" and self.feedback_timeout > 0
                and self._fb_age / self.frame_rate >= self.feedback_timeout - 1e-9):
            self._fb_state = "stale"
            self._fb_stale += 1

    def figures(self):
        """dict of the current figures, named as in FIGURES. Thread-safe: a GRC
        Function Probe may poll it (examples/sim_link.grc does, 4 times a second)."""
        with self._lock:
            return self._figures()

    def _figures(self):
        flags = list(self._recent.values())
        judged = flags[:-IN_FLIGHT] if len(flags) > IN_FLIGHT else []
        lost_window = sum(1 for f in judged if not f)
        tokens = sum(t for t, _ in self._sizes)
        nbytes = sum(b for _, b in self._sizes)
        n = max(len(self._sizes), 1)
        return dict(loss_window=lost_window / len(judged) if judged else 0.0,
                    packets_sent=float(self._sent), packets_delivered=float(self._delivered),
                    packets_lost=float(self._lost_old + lost_window),
                    token_bps=tokens * _core.TOKEN_BITS * self.frame_rate / n, air_bps=nbytes * 8 * self.frame_rate / n,
                    K=float(self._plan[0]), r1=float(self._plan[1]), r2=float(self._plan[2]),
                    feedback_loss=self._fb[0], feedback_burst=self._fb[1],
                    feedback_age=-1.0 if self._fb_age is None else self._fb_age / self.frame_rate,
                    feedback_stale=float(self._fb_state == "stale"),
                    **self._latency_figures())

    def _latency_figures(self):
        lat = self._latency.summary()
        return dict(latency_p50_ms=lat["p50_ms"], latency_p95_ms=lat["p95_ms"], latency_max_ms=lat["max_ms"],
                    late_packets=float(self._late))

    def summary(self, f=None):
        f = f or self.figures()
        return (f"loss {100 * f['loss_window']:.1f} % (last {self.window} packets) | sent {f['packets_sent']:.0f}"
                f" delivered {f['packets_delivered']:.0f} lost {f['packets_lost']:.0f} | plan K {f['K']:.0f}"
                f" r1 {f['r1']:.0f} r2 {f['r2']:.0f} | {f['token_bps']:.0f} bit/s tokens, {f['air_bps']:.0f}"
                f" bit/s on air | feedback loss {f['feedback_loss']:.3f} burst {f['feedback_burst']:.2f}"
                + (f" (stale: no report for {f['feedback_age']:.1f} s)" if f["feedback_stale"] else "")
                + (f" | latency p50 {f['latency_p50_ms']:.0f} ms p95 {f['latency_p95_ms']:.0f} ms,"
                   f" {f['late_packets']:.0f} late" if f["latency_p50_ms"] == f["latency_p50_ms"] else ""))

    def publish(self):
        f = self.figures()
        meta = pmt.make_dict()
        for name in FIGURES + FEEDBACK_FIGURES + LATENCY_FIGURES:
            meta = pmt.dict_add(meta, pmt.intern(name), pmt.from_double(f[name]))
        vec = pmt.init_f32vector(len(FIGURES), [float(f[name]) for name in FIGURES])
        self.message_port_pub(pmt.intern("figures"), pmt.cons(meta, vec))
        self.message_port_pub(pmt.intern("summary"), pmt.intern(self.summary(f)))
        self._updates += 1

    def messages_rejected(self):
        """Messages refused: malformed, plus received packets that were
        duplicates or unknown (see packets_duplicate, packets_unknown)."""
        return self._rejected

    def packets_duplicate(self):
        """Received packets that were a second copy (not delivered twice)."""
        with self._lock:
            return self._duplicates

    def packets_unknown(self):
        """Received packets whose sequence number was never sent (within
        EARLY_WAIT sent packets): not counted as delivered."""
        with self._lock:
            return self._unknown

    def messages_handled(self):
        """Messages completely handled on any port (accepted or rejected)."""
        return self._handled

    def rejections(self):
        """{reason: count} of rejected or failed messages (see guard.py)."""
        return self.guard.counts()

    def updates(self):
        return self._updates

    def feedback_state(self):
        """'parameters' (no report seen yet), 'feedback' or 'stale' (the last
        report is feedback_timeout or more old), as the controller's."""
        with self._lock:
            return self._fb_state

    def feedback_stale(self):
        """Times the reports went stale."""
        with self._lock:
            return self._fb_stale


class audio_out(gr.hier_block2):
    """Audio sink (gr-audio) that becomes a null sink, with one warning, when
    no sound card can be opened."""

    def __init__(self, sample_rate=16000, device="", ok_to_block=True):
        sample_rate = P.check_int("sample_rate", sample_rate, 1000, 384000)
        P.check_str("device", device)
        ok_to_block = P.check_bool("ok_to_block", ok_to_block)
        gr.hier_block2.__init__(self, "largesc_audio_out", gr.io_signature(1, 1, gr.sizeof_float),
                                gr.io_signature(0, 0, 0))
        self.has_audio = False
        try:
            from gnuradio import audio
            self.sink = audio.sink(int(sample_rate), str(device), bool(ok_to_block))
            self.has_audio = True
        except Exception as e:  # noqa: BLE001 - no sound card is a normal case here
            gr.logger("largesc_audio_out").warn(f"largesc audio_out: no audio device {device or 'default'!r} ({e}); "
                                                "audio is discarded")
            self.sink = blocks.null_sink(gr.sizeof_float)
        self.connect(self, self.sink)
