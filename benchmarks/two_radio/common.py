"""Shared helpers for the three processes (node A, air, node B)."""

import json
import os
import signal
import threading
import time
import numpy as np
import pmt
from gnuradio import gr
from gnuradio.largesc.uep import playout

SAMP_RATE = 80000
BIT_RATE = 10000
AUDIO_RATE = 16000
FRAME = 1280  # samples per 80 ms frame at 16 kHz
AUDIO_PERIOD = 320  # 20 ms: the period in which a sound card delivers audio
BUDGET = 1100  # bit/s per direction
WEIGHTS = "random:0"  # UNTRAINED Mimi: the audio is not speech, says nothing about quality
CODEC_MODE = os.environ.get("CODEC_MODE", "exact")  # Mimi's step (docs/mimi.md): exact, fast-int8, ...
CODEC_THREADS = int(os.environ.get("CODEC_THREADS", "1"))  # torch threads of each node's Mimi (largesc_tx/rx threads)
# the receivers' recovery: hold, or lm (the tiny Moshi-architecture LM, UNTRAINED, on the CPU)
RECOVERY = os.environ.get("RECOVERY", "hold")
RECOVERY_ARGS = dict(model="tiny", device="cpu") if RECOVERY == "lm" else None
# who talks: "A,B" (default, full duplex) or "A" (B only listens and sends its loss reports; the
# machine then carries one encoder and one decoder, what each node's own machine would)
TALKERS = tuple(r.strip() for r in os.environ.get("TALKERS", "A,B").split(",") if r.strip())
if not TALKERS or not set(TALKERS) <= {"A", "B"}:
    raise SystemExit(f"TALKERS must be A,B or A or B, got {os.environ.get('TALKERS')!r}")
# the talkers start talking this long after their node's flowgraph started: a radio that is on
# before the call (0 = from the start: the first 4-5 frames then wait 0.1-0.6 s for the freshly
# started processes, and the playout clock anchors on them; docs/latency.md)
TALK_AFTER_S = float(os.environ.get("TALK_AFTER", "2"))
JITTER_MS = float(os.environ.get("JITTER_MS", playout.DEFAULT_TARGET_MS))  # largesc_rx's playout clock; 0 = off
DECODE_LEAD_MS = float(os.environ.get("DECODE_LEAD_MS", playout.DEFAULT_LEAD_MS))  # largesc_rx's decode lead
FIXED_RATE = os.environ.get("FIXED_RATE", "1") != "0"      # largesc_rx's fixed_rate_output
PRIME_MS = float(os.environ.get("PRIME_MS", "0")) if FIXED_RATE else 0.0  # largesc_rx's output_prime_ms
# TCP ports on 127.0.0.1: TWO_RADIO_PORT and the next three (the GRC examples use 5551..5554)
_BASE = int(os.environ.get("TWO_RADIO_PORT", "5651"))
PORTS = dict(a_to_air=_BASE, air_to_b=_BASE + 1, b_to_air=_BASE + 2, air_to_a=_BASE + 3)


def addr(name):
    return "tcp://127.0.0.1:%d" % PORTS[name]


def to_py(x):
    try:
        return pmt.to_python(x)
    except Exception:
        return str(x)


class msg_logger(gr.basic_block):
    """Records (time.time(), car-as-python, first byte of cdr, cdr length) of each PDU;
    keep_car: True (the whole car dict), False (none) or a tuple of the keys to keep."""

    def __init__(self, keep_car=True):
        gr.basic_block.__init__(self, name="msg_logger", in_sig=None, out_sig=None)
        self.message_port_register_in(pmt.intern("in"))
        self.set_msg_handler(pmt.intern("in"), self._h)
        self.keep_car = keep_car
        self.log = []

    def _h(self, msg):
        t = time.time()
        car = cdr = None
        if pmt.is_pair(msg):
            car, cdr = pmt.car(msg), pmt.cdr(msg)
        else:
            car = msg
        b0 = None
        n = 0
        if cdr is not None and pmt.is_u8vector(cdr):
            v = pmt.u8vector_elements(cdr)
            n = len(v)
            b0 = v[0] if n else None
        c = None
        if self.keep_car and car is not None and pmt.is_dict(car):
            if self.keep_car is True:
                c = to_py(car)
            else:  # only these keys
                c = {k: to_py(pmt.dict_ref(car, pmt.intern(k), pmt.PMT_NIL)) for k in self.keep_car}
        self.log.append((t, c, b0, n))


class frame_clock(gr.sync_block):
    """Float passthrough/sink; records time.time() when each 1280-sample frame boundary passes.
    mark='end': time at which the last sample of frame i passed (capture complete at A).
    mark='start': time at which the first sample of frame i passed (playout start at B)."""

    def __init__(self, mark="end", sink=False):
        gr.sync_block.__init__(
            self, name="frame_clock", in_sig=[np.float32], out_sig=None if sink else [np.float32]
        )
        self.mark = mark
        self.sink = sink
        self.n = 0
        self.times = []
        self.calls = []     # (first sample, time) of each work call: the time of any sample

    def work(self, ins, outs):
        x = ins[0]
        k = len(x)
        t = time.time()
        n0, n1 = self.n, self.n + k
        if k:
            self.calls.append((n0, t))
        if self.mark == "end":
            # frames i with (i+1)*FRAME in (n0, n1]
            i_lo = n0 // FRAME
            i_hi = n1 // FRAME
            for _ in range(i_lo, i_hi):
                self.times.append(t)
        else:
            i_lo = (n0 + FRAME - 1) // FRAME
            i_hi = (n1 + FRAME - 1) // FRAME
            for _ in range(i_lo, i_hi):
                self.times.append(t)
        self.n = n1
        if not self.sink:
            outs[0][:k] = x
        return k


def run_until_stopped(tb, stopfile, poll=None, poll_every=1.0, mutefile=None, on_mute=None, settle=None):
    """Starts tb, polls a stop file (or SIGINT/SIGTERM), calls poll() every poll_every s;
    calls on_mute() once when mutefile appears (stop talking, keep listening) and settle()
    after the stop file, before stopping the flowgraph (to let its queues empty)."""
    stop = threading.Event()
    for s in (signal.SIGINT, signal.SIGTERM):
        signal.signal(s, lambda *a: stop.set())
    t_start = time.time()
    tb.start()
    rf = os.environ.get("READY_FILE")
    if rf:
        open(rf, "w").write(str(time.time()))
    nxt = time.time()
    while not stop.is_set() and not os.path.exists(stopfile):
        if on_mute and mutefile and os.path.exists(mutefile):
            on_mute()
            on_mute = None
        if poll and time.time() >= nxt:
            poll()
            nxt += poll_every
        time.sleep(0.05)
    t_stop = time.time()
    if settle:
        settle()
    tb.stop()
    # zmq sources have a 100 ms timeout, wait() returns; guard anyway
    th = threading.Thread(target=tb.wait, daemon=True)
    th.start()
    th.join(5.0)
    return t_start, t_stop, not th.is_alive()


def write_json(path, obj):
    with open(path + ".tmp", "w") as f:
        json.dump(obj, f, indent=1, default=lambda o: o.item() if hasattr(o, "item") else str(o))
    os.replace(path + ".tmp", path)


class valve(gr.basic_block):
    """Message pass-through that can be closed: logs (time, first byte, length) of each
    PDU it passes; once closed it passes nothing (counted in `held_back`). The benchmark
    closes it to stop talking cleanly: what passed is exactly what was sent."""

    def __init__(self):
        gr.basic_block.__init__(self, name="valve", in_sig=None, out_sig=None)
        self.message_port_register_in(pmt.intern("in"))
        self.message_port_register_out(pmt.intern("out"))
        self.set_msg_handler(pmt.intern("in"), self._h)
        self.open = True
        self.log = []
        self.meta = []      # (frame, capture_time) of each PDU passed, from its metadata (None if absent)
        self.held_back = 0

    def _h(self, msg):
        if not self.open:
            self.held_back += 1
            return
        v = pmt.u8vector_elements(pmt.cdr(msg)) if pmt.is_pair(msg) and pmt.is_u8vector(pmt.cdr(msg)) else []
        self.log.append((time.time(), v[0] if len(v) else None, len(v)))
        car = pmt.car(msg) if pmt.is_pair(msg) else pmt.PMT_NIL
        self.meta.append(tuple(to_py(pmt.dict_ref(car, pmt.intern(k), pmt.PMT_NIL)) if pmt.is_dict(car) else None
                               for k in ("frame", "capture_time")))
        self.message_port_pub(pmt.intern("out"), msg)
