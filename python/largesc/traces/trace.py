#
# Copyright 2026 gr-largesc authors.
# SPDX-License-Identifier: GPL-3.0-or-later
#
"""Packet-loss traces: the file format, a receive-side recorder block and the
helpers that replay a trace (docs/traces.md).

Format (text, UTF-8), one line per expected packet after `#` header lines:

    # largesc-trace 1
    # source: phy_sim (SIMULATED: AWGN, Eb/N0 12 dB)
    # date: 2026-05-01T12:00:00Z
    # bit_rate: 10000
    # frame_rate: 12.5
    # columns: fate # frame status arrival_s snr_db
    0 # 0 ok 0.012000 -
    1 # 1 lost - -

`fate` is 0 (delivered) or 1 (lost); everything after the `#` on a packet
line is detail: the frame index (unwrapped from the 8-bit sequence number),
the status (`ok`, `lost`, `crc` = lost, with a CRC-failed frame heard in its
slot: see trace_recorder), the
arrival time in seconds since the first packet arrived and an SNR or level
estimate in dB (`-` where unknown). Because the C++ trace reader
(largesc.loss_model.read_trace_file, the erasure channel's trace mode) takes
0/1 characters and skips `#` comments, it reads a trace file as it is: the
same file drives erasure_channel(model="trace"), largesc-sim --trace and the
Python reader here. A plain 0/1 file (no detail) is a valid trace too.
"""

import bisect
import collections
import dataclasses
import datetime
import hashlib
import math
import os
import threading
import time

import numpy as np

from .. import largesc_python as _core
from ..common.constants import FRAME_RATE

FORMAT_LINE = "largesc-trace 1"
COLUMNS = "fate # frame status arrival_s snr_db"
STATUSES = ("ok", "lost", "crc")
SNR_KEYS = ("snr_db", "snr", "level_db", "rssi_db")
HEARD_KEY = "rx_frame"   # PDU metadata: the frame's index among all frames heard (packet_modem_rx sets it)


class TraceError(ValueError):
    """A trace file that cannot be read or is not a trace."""


@dataclasses.dataclass
class Trace:
    fates: np.ndarray                  # uint8, 1 = lost, one per expected packet
    status: list = None                # per packet: ok / lost / crc
    arrival_s: np.ndarray = None       # float, NaN where lost or unknown
    snr_db: np.ndarray = None          # float, NaN where unknown
    header: dict = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        self.fates = np.asarray(self.fates, np.uint8)
        n = len(self.fates)
        if self.status is None:
            self.status = ["lost" if f else "ok" for f in self.fates]
        if self.arrival_s is None:
            self.arrival_s = np.full(n, np.nan)
        if self.snr_db is None:
            self.snr_db = np.full(n, np.nan)
        self.arrival_s = np.asarray(self.arrival_s, float)
        self.snr_db = np.asarray(self.snr_db, float)

    def __len__(self):
        return len(self.fates)

    def stats(self):
        return loss_stats(self.fates)


def format_trace(trace):
    """The trace as text (the format above)."""
    hdr = dict(trace.header)
    lines = [f"# {FORMAT_LINE}"]
    hdr.setdefault("date", datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"))
    s = loss_stats(trace.fates) if len(trace) else None
    if s is not None:
        hdr["packets"] = str(s["packets"])
        hdr["lost"] = f"{s['lost']} ({100 * s['loss_rate']:.2f} %), {s['bursts']} bursts, " \
                      f"mean {s['mean_burst']:.2f}, longest {s['longest_burst']}"
    for k, v in hdr.items():
        if k in ("columns",):
            continue
        lines.append(f"# {k}: {str(v).replace(chr(10), ' ')}")
    lines.append(f"# columns: {COLUMNS}")
    for i, f in enumerate(trace.fates):
        snr = trace.snr_db[i]
        arr = trace.arrival_s[i]
        lines.append(f"{int(f)} # {i} {trace.status[i]} "
                     f"{'-' if not np.isfinite(arr) else f'{arr:.6f}'} "
                     f"{'-' if not np.isfinite(snr) else f'{snr:.2f}'}")
    return "\n".join(lines) + "\n"


def write_trace(path, trace):
    """Writes `trace` to `path` (atomically: a temporary file `<path>.tmp<PID>`,
    then rename). On any failure the temporary file is removed and the error
    raised; one left by a killed writer is removed by remove_stale_temp_files."""
    text = format_trace(trace)
    tmp = f"{path}.tmp{os.getpid()}"
    try:
        with open(tmp, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.remove(tmp)
        except OSError:
            pass
        raise


def remove_stale_temp_files(path):
    """Removes `<path>.tmp<PID>` files whose writer process no longer runs
    (a flush killed half-way, e.g. by SIGKILL or a full disk). Returns the
    number removed."""
    import glob
    n = 0
    for tmp in glob.glob(glob.escape(path) + ".tmp*"):
        pid = tmp[len(path) + 4:]
        if not pid.isdigit():
            continue
        try:
            os.kill(int(pid), 0)
            continue                    # its writer still runs
        except ProcessLookupError:
            pass
        except (PermissionError, OverflowError):
            continue
        try:
            os.remove(tmp)
            n += 1
        except OSError:
            pass
    return n


def parse_trace(text, name="<trace>"):
    """A Trace from the text of a trace file (or a plain 0/1 file)."""
    header, fates, status, arrival, snr = {}, [], [], [], []
    for lineno, line in enumerate(text.splitlines(), 1):
        body, sep, comment = line.partition("#")
        body = body.strip()
        if not body:
            if not fates and sep:
                k, colon, v = comment.strip().partition(":")
                if colon and k.strip() and " " not in k.strip():
                    header[k.strip()] = v.strip()
            continue
        vals = body.replace(",", " ").split()
        if any(v not in ("0", "1") and set(v) - {"0", "1"} for v in vals):
            raise TraceError(f"{name} line {lineno}: a packet line starts with 0 or 1 "
                             f"(0 = delivered, 1 = lost), got {body!r}")
        entries = [c for v in vals for c in v]
        detail = comment.split() if sep else []
        if len(entries) == 1 and len(detail) >= 2:
            st = detail[1]
            if st not in STATUSES:
                raise TraceError(f"{name} line {lineno}: unknown status {st!r}; known: {', '.join(STATUSES)}")
            if (st == "ok") != (entries[0] == "0"):
                raise TraceError(f"{name} line {lineno}: fate {entries[0]} contradicts status {st!r}")
            fates.append(int(entries[0]))
            status.append(st)
            arrival.append(_float(detail[2] if len(detail) > 2 else "-", name, lineno))
            snr.append(_float(detail[3] if len(detail) > 3 else "-", name, lineno))
        else:
            for c in entries:
                fates.append(int(c))
                status.append("lost" if c == "1" else "ok")
                arrival.append(np.nan)
                snr.append(np.nan)
    if not fates:
        raise TraceError(f"{name} holds no packets (no 0/1 entries)")
    header.pop(FORMAT_LINE.split()[0], None)
    return Trace(np.array(fates, np.uint8), status, np.array(arrival), np.array(snr), header)


def _float(s, name, lineno):
    if s == "-":
        return np.nan
    try:
        return float(s)
    except ValueError:
        raise TraceError(f"{name} line {lineno}: expected a number or '-', got {s!r}") from None


def read_trace(path):
    """The Trace in file `path`; TraceError, in one line, if it is missing,
    binary (not UTF-8 text, or NUL bytes), JSON or malformed."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as e:
        raise TraceError(f"cannot read trace file {path!r}: {e.strerror or e}") from None
    except UnicodeDecodeError:
        raise TraceError(f"trace file {path!r} is binary (not UTF-8 text), not a trace") from None
    if "\0" in text:
        raise TraceError(f"trace file {path!r} is binary (it holds NUL bytes), not a trace")
    if text.lstrip()[:1] in ("{", "["):
        raise TraceError(f"trace file {path!r} holds JSON, not a trace (text lines of 0 = delivered, "
                         "1 = lost: docs/traces.md)")
    return parse_trace(text, path)


def to_loss_pattern(src):
    """The 0/1 loss pattern (numpy uint8, 1 = lost) of a trace file path or a
    Trace: exactly what the erasure channel's trace mode reads from the file."""
    t = src if isinstance(src, Trace) else read_trace(src)
    return t.fates.copy()


def write_loss_pattern(path, pattern):
    """A plain 0/1 file (25 entries per line) for tools that want no detail."""
    p = np.asarray(pattern, np.uint8)
    with open(path, "w") as f:
        for i in range(0, len(p), 25):
            f.write(" ".join(str(int(v)) for v in p[i:i + 25]) + "\n")


def loss_stats(pattern):
    """{packets, lost, loss_rate, bursts, mean_burst, longest_burst} of a 0/1
    pattern (largesc.measure_bursts)."""
    p = np.ascontiguousarray(np.asarray(pattern, np.uint8))
    s = _core.measure_bursts(p)
    return dict(packets=int(s.n_packets), lost=int(s.n_lost), loss_rate=float(s.loss_rate),
                bursts=int(s.n_bursts), mean_burst=float(s.mean_burst) if s.n_bursts else 0.0,
                longest_burst=int(s.longest_burst))


def pattern_digest(pattern):
    """12 hex digits identifying a loss pattern (what a replay depends on)."""
    p = np.asarray(pattern, np.uint8)
    return hashlib.sha256("".join("1" if v else "0" for v in p).encode()).hexdigest()[:12]


def trace_identity(path, trace=None):
    """(name, digest, pattern) of a trace file: name = file name without
    extension, digest = pattern_digest of its loss pattern (from `trace`, the
    file already read, when given)."""
    pattern = to_loss_pattern(path if trace is None else trace)
    name = os.path.splitext(os.path.basename(path))[0]
    return name, pattern_digest(pattern), pattern


# ---------------------------------------------------------------------------
# sequence-number unwrapping


class SeqUnwrapper:
    """8-bit sequence numbers -> frame indices 0, 1, 2, ...

    The first packet's frame index is its seq (the test sequence starts at
    frame 0: start the receiver before the transmitter). Afterwards a seq
    maps to the frame index nearest the expected one: with `interval` > 0
    (seconds per packet on air) and arrival times, the expected index is
    last + elapsed / interval, so outages longer than 256 packets unwrap
    right; without, a jump of 0..127 is forward and 128..255 backward (a late
    or repeated packet)."""

    def __init__(self, interval=0.0):
        self.interval = float(interval)
        self.last = None
        self.last_t = None

    def frame(self, seq, t=None):
        """The frame index of `seq` (arrival time `t` in seconds, or None);
        negative for a late packet from before the first one."""
        seq = int(seq) & 0xFF
        if self.last is None:
            f = seq
        else:
            adv = 0.0
            if self.interval > 0 and t is not None and self.last_t is not None:
                adv = max(0.0, (t - self.last_t) / self.interval)
            d = (seq - self.last) % 256
            target = self.last + adv
            cands = [self.last + d - 256] + [self.last + d + 256 * k for k in range(int(adv // 256) + 2)]
            f = min(cands, key=lambda c: (abs(c - target), c))
        if self.last is None or f > self.last:
            self.last, self.last_t = f, t
        return f


# ---------------------------------------------------------------------------
# recorder block


ALIGN_MAX = 200000   # reports x lost packets in one gap above which the matching goes by time alone


def _align(a, b):
    """Monotone matching of the shorter sequence into the longer: each value
    of `a` (len(a) <= len(b)) gets an index into `b`, increasing, so that the
    sum of |a[i] - b[j]| is least. Returns the list of indices."""
    m, n = len(a), len(b)
    inf = float("inf")
    cost = [[inf] * (n + 1) for _ in range(m + 1)]
    cost[0] = [0.0] * (n + 1)
    for i in range(1, m + 1):
        for j in range(i, n + 1):
            cost[i][j] = min(cost[i][j - 1], cost[i - 1][j - 1] + abs(a[i - 1] - b[j - 1]))
    out, j = [], n
    for i in range(m, 0, -1):
        while cost[i][j] == cost[i][j - 1] and j > i:
            j -= 1
        out.append(j - 1)
        j -= 1
    return out[::-1]


def place_crc_failures(status, got, crc_times, interval, placed=None, crc_heard=None):
    """Marks lost packets as "crc" in `status` (list, one per packet) from
    the CRC-failed frames the receiver reported. Returns the number of
    reports that fit no lost packet; `placed` (a dict, optional) receives
    {packet: index of its report in crc_times}.

    `got`: delivered packets, frame -> (arrival_s, snr, heard); `crc_times`:
    the reports' arrival times; `crc_heard` (optional, one per report): the
    frame's index among all frames heard (the modem's rx_frame metadata;
    None where unknown), which delivered packets carry as `heard`.

    With heard indices, the order decides: a report heard between the
    delivered packets a and b belongs to a lost packet between a and b,
    however late it arrived. Within that gap, reports and lost packets are
    matched in order, as near in time as possible (all of them when their
    numbers agree); before the first and after the last delivered packet
    only within one packet interval of the expected time.
    Without heard indices, each report goes by time to the lost packet whose
    expected arrival is nearest, within half a packet interval.
    Expected times: interpolated between delivered packets, `interval`
    seconds per packet before the first and after the last (without an
    interval: the median spacing of delivered packets)."""
    if not crc_times:
        return 0
    fs = sorted(f for f in got if 0 <= f < len(status))
    if not fs:
        return len(crc_times)
    ts = [got[f][0] for f in fs]
    step = _packet_step(fs, ts, interval)
    if not step > 0:
        return len(crc_times)
    lost = [f for f, s in enumerate(status) if s == "lost"]
    exp = _expected_times(lost, fs, ts, step)
    heard_of = list(crc_heard) if crc_heard is not None else []
    heard_of += [None] * (len(crc_times) - len(heard_of))
    anchors = sorted((_heard_index(got[f][2]), f) for f in fs if len(got[f]) > 2 and _heard_index(got[f][2]) is not None)
    if anchors:
        unplaced, by_time = _place_by_order(status, anchors, crc_times, heard_of, exp, step, placed)
    else:
        unplaced, by_time = 0, list(range(len(crc_times)))
    return unplaced + _place_by_time(status, lost, by_time, crc_times, exp, step, placed)


def _heard_index(x):
    """x when it is a frame index heard (an int >= 0, not a bool), else None."""
    return x if isinstance(x, int) and not isinstance(x, bool) and x >= 0 else None


def _packet_step(fs, ts, interval):
    """Seconds per packet: `interval`, or where it is <= 0 the median spacing
    of the delivered packets fs (arrival times ts)."""
    step = float(interval)
    if step <= 0 and len(fs) > 1:
        step = float(np.median(np.diff(ts) / np.diff(fs)))
    return step


def _expected_times(frames, fs, ts, step):
    """{frame: expected arrival} of `frames`: interpolated between the
    delivered packets fs (arrival times ts), `step` seconds per packet before
    the first and after the last."""
    def expected(f):
        if f <= fs[0]:
            return ts[0] - (fs[0] - f) * step
        if f >= fs[-1]:
            return ts[-1] + (f - fs[-1]) * step
        return float(np.interp(f, fs, ts))

    return {f: expected(f) for f in frames}


def _gaps_of_reports(anchors, heard_of, n):
    """Sorts the n reports by their heard index into the gaps between the
    delivered packets (anchors: sorted (heard, frame)). Returns ({gap k: [(heard,
    report)]}, reports without a heard index, reports naming a delivered frame)."""
    ah = [h for h, _ in anchors]
    gaps, by_time, delivered = {}, [], 0
    for i in range(n):
        h = _heard_index(heard_of[i])
        if h is None:
            by_time.append(i)
            continue
        k = bisect.bisect_left(ah, h)
        if k < len(ah) and ah[k] == h:      # a delivered frame's own index: not a failure
            delivered += 1
            continue
        gaps.setdefault(k, []).append((h, i))
    return gaps, by_time, delivered


def _place_by_order(status, anchors, crc_times, heard_of, exp, step, placed):
    """The reports with a heard index, each placed on a lost packet in its gap
    between delivered packets (see place_crc_failures). Returns (reports that
    fit no lost packet, reports left to place by time)."""
    gaps, by_time, unplaced = _gaps_of_reports(anchors, heard_of, len(crc_times))
    for k, evs in sorted(gaps.items()):
        lo = anchors[k - 1][1] if k > 0 else -1
        hi = anchors[k][1] if k < len(anchors) else len(status)
        cand = [f for f in range(lo + 1, hi) if status[f] == "lost"]
        evs = [i for _, i in sorted(evs)]
        if len(evs) * len(cand) > ALIGN_MAX:    # a long outage full of failures: by time
            by_time += evs
            continue
        if len(evs) <= len(cand):
            pairs = list(zip(evs, (cand[j] for j in _align([crc_times[i] for i in evs],
                                                           [exp[f] for f in cand]))))
        else:
            pairs = list(zip((evs[j] for j in _align([exp[f] for f in cand],
                                                     [crc_times[i] for i in evs])), cand))
        interior = 0 < k < len(anchors)
        unplaced += len(evs)
        for i, f in pairs:
            if interior or abs(exp[f] - crc_times[i]) <= step + 1e-9:
                status[f] = "crc"
                unplaced -= 1
                if placed is not None:
                    placed[f] = i
    return unplaced, by_time


def _place_by_time(status, lost, by_time, crc_times, exp, step, placed):
    """The reports by_time, in time order, each on the lost packet still free
    whose expected arrival is nearest, within half a packet interval.
    Returns the number of reports that fit none."""
    unplaced = 0
    free = np.array([f for f in lost if status[f] == "lost"], np.int64)      # ascending
    ex = np.array([exp[f] for f in free], float)
    alive = np.ones(len(free), bool)
    for i in sorted(by_time, key=lambda i: crc_times[i]):
        if not alive.any():
            unplaced += 1
            continue
        d = np.where(alive, np.abs(ex - crc_times[i]), np.inf)
        j = int(np.argmin(d))             # the first of equal distances: the lowest frame
        if d[j] <= 0.5 * step + 1e-9:
            f = int(free[j])
            status[f] = "crc"
            alive[j] = False
            if placed is not None:
                placed[f] = i
        else:
            unplaced += 1
    return unplaced


MAX_TRACE_PACKETS = 10_000_000  # packets in one trace (9.3 days at 12.5 packets/s)
MAX_CRC_REPORTS = 10_000        # CRC-failure reports kept (more are counted and dropped)
SENT_DUP_WINDOW = 1024          # `sent` packets remembered for spotting duplicates
MAX_SNR_DB = 1000.0             # |snr| beyond this is no estimate: written as unknown


def check_trace_path(path):
    """path ("" = record nothing) when a trace file can be written there: not
    a directory, in an existing writable directory, itself writable if it
    exists. ParameterError naming `path` otherwise (at construction, not at
    the first flush)."""
    from ..common.params import ParameterError
    if not path:
        return path
    d = os.path.dirname(os.path.abspath(path))
    why = None
    if os.path.isdir(path):
        why = "is a directory"
    elif not os.path.isdir(d):
        why = f"its directory {d!r} does not exist"
    elif not os.access(d, os.W_OK | os.X_OK):
        why = f"its directory {d!r} is not writable"
    elif os.path.exists(path) and not os.access(path, os.W_OK):
        why = "the file is not writable"
    if why:
        raise ParameterError(f"path must be a writable trace file path (or '' for none), got {path!r}: {why}")
    return path


try:
    from gnuradio import gr as _gr
    _BASE = _gr.basic_block
except ImportError:  # pragma: no cover - the module needs GNU Radio anyway
    _BASE = object


class trace_recorder(_BASE):
    """Records the fate of every expected packet into a trace file.

    Ports (messages):
      in:   packet PDUs that reached the receiver (after the modem's CRC);
            the LargeSC header's seq byte (byte 0) gives the frame index.
            An SNR / level estimate is taken from the PDU metadata keys
            snr_db, snr, level_db or rssi_db if the chain provides one.
      sent: (optional) packet PDUs sent (simulation): the number sent fixes
            the packets lost after the last delivered one.
      crc_failed: (optional) one message per frame the modem heard whose
            CRC failed (packet_modem_rx's `crc_failed`). Its seq cannot be
            trusted; the modem's heard-frame index (rx_frame metadata, on
            delivered packets too) says between which delivered packets it
            fell, and time picks the lost packet within that gap
            (place_crc_failures); that packet's status becomes "crc" (still
            lost). Without the index: by time alone, on the lost packet whose
            expected arrival is nearest, within half an interval. Reports
            that fit no lost packet are counted in the header.

    path: trace file ("" = record nothing); written on stop() and every
        `flush_interval` seconds (0 = only on stop). expected: packets sent
        when known without the `sent` port (0 = unknown: the trace ends with
        the last delivered packet). interval: seconds per packet on air, for
        unwrapping the 8-bit seq across long outages (0 = by seq only).
    Handlers never raise: a malformed message is counted (counts(),
    rejections()) and logged, and the block goes on. Rules: `in` and `sent`
    take a u8 PDU holding a LargeSC packet whose length matches its header
    (a header-only packet would still move the frame count); frame indices
    stay below MAX_TRACE_PACKETS; a packet repeated on `sent` (within the last
    SENT_DUP_WINDOW) is a duplicate, counted, not a packet sent; at most
    MAX_CRC_REPORTS `crc_failed` reports are kept; an SNR beyond
    +-MAX_SNR_DB is written as unknown. Flushes run on their own thread
    (started by start()), never inside a message handler; a failed flush
    leaves no temporary file, and temporary files of writers that were
    killed are removed at construction.
    """

    def __init__(self, path="", expected=0, interval=0.08, bit_rate=0.0, source="",
                 flush_interval=5.0):
        from ..common import params as P
        from ..common.guard import Guard
        self.path = check_trace_path(P.check_str("path", path))
        self.expected = P.check_int("expected", expected, 0, MAX_TRACE_PACKETS)
        self.interval = P.check_float("interval", interval, 0.0, 3600.0)
        self.bit_rate = P.check_float("bit_rate", bit_rate, 0.0, 1e9)
        self.source = P.check_str("source", source)
        self.flush_interval = P.check_float("flush_interval", flush_interval, 0.0, 86400.0)
        if _BASE is not object:
            _gr.basic_block.__init__(self, "largesc_trace_recorder", in_sig=None, out_sig=None)
        import pmt
        self._pmt = pmt
        self._lock = threading.Lock()
        self.guard = Guard("trace_recorder")
        self._unwrap = SeqUnwrapper(self.interval)
        self._sent_unwrap = SeqUnwrapper(0.0)
        self._got = {}          # frame -> (arrival_s, snr_db, heard-frame index or None)
        self._sent = 0
        self._sent_max = -1
        self._crc = []          # CRC-failed frames: (arrival_s, snr_db, heard-frame index or None)
        self._dups = 0
        self._sent_recent = collections.OrderedDict()   # the last SENT_DUP_WINDOW sent frames
        self._sent_dups = 0
        self._t0 = None
        self._flusher = None
        self._stop_flush = threading.Event()
        self._write_lock = threading.Lock()
        if self.path:
            remove_stale_temp_files(self.path)
        self.message_port_register_in(pmt.intern("in"))
        self.message_port_register_in(pmt.intern("sent"))
        self.message_port_register_in(pmt.intern("crc_failed"))
        self.guard.install(self, "in", self.handle_in)
        self.guard.install(self, "sent", self.handle_sent)
        self.guard.install(self, "crc_failed", self.handle_crc_failed)

    # -- message handlers (guarded)
    def _packet(self, msg, port):
        pmt = self._pmt
        if not (pmt.is_pair(msg) and pmt.is_u8vector(pmt.cdr(msg))):
            self.guard.note(f"{port}: not a packet PDU")
            return None, None
        data = pmt.u8vector_elements(pmt.cdr(msg))
        h = _core.parse_header(bytes(data))
        if h is None:
            self.guard.note(f"{port}: not a LargeSC packet")
            return None, None
        if len(data) != _core.packet_size(h):
            self.guard.note(f"{port}: packet length does not match its header",
                            f"{len(data)} bytes, the header says {_core.packet_size(h)}")
            return None, None
        return data, pmt.car(msg)

    def handle_in(self, msg):
        data, meta = self._packet(msg, "in")
        if data is None:
            return
        now = time.monotonic()
        snr = self._snr(meta)
        heard = self._heard(meta)
        why = None
        with self._lock:
            if self._t0 is None:
                self._t0 = now
            t = now - self._t0
            f = self._unwrap.frame(data[0], t)
            if f < 0:
                why = "in: late packet from before the first one"
            elif f >= MAX_TRACE_PACKETS:
                why = f"in: frame index beyond {MAX_TRACE_PACKETS}"
            elif f in self._got:
                self._dups += 1
            else:
                self._got[f] = (t, snr, heard)
        if why:
            self.guard.note(why)

    def handle_crc_failed(self, msg):
        """A frame heard with a failed CRC (any PDU or dict: its time counts,
        and its SNR estimate when the metadata has one); at most
        MAX_CRC_REPORTS are kept."""
        pmt = self._pmt
        if not (pmt.is_pair(msg) or pmt.is_dict(msg)):
            self.guard.note("crc_failed: not a PDU or dict")
            return
        now = time.monotonic()
        meta = pmt.car(msg) if pmt.is_pair(msg) else msg
        snr = self._snr(meta)
        heard = self._heard(meta)
        with self._lock:
            full = len(self._crc) >= MAX_CRC_REPORTS
            if not full:
                if self._t0 is None:
                    self._t0 = now
                self._crc.append((now - self._t0, snr, heard))
        if full:
            self.guard.note(f"crc_failed: more than {MAX_CRC_REPORTS} reports")

    def handle_sent(self, msg):
        data, _ = self._packet(msg, "sent")
        if data is None:
            return
        with self._lock:
            f = self._sent_unwrap.frame(data[0])
            dup = f in self._sent_recent
            if dup:
                self._sent_dups += 1
            else:
                self._sent += 1
                self._sent_max = max(self._sent_max, min(f, MAX_TRACE_PACKETS - 1))
                self._sent_recent[f] = True
                if len(self._sent_recent) > SENT_DUP_WINDOW:
                    self._sent_recent.popitem(last=False)
        if dup:
            self.guard.note("sent: duplicate")

    def _snr(self, meta):
        pmt = self._pmt
        if meta is None or not pmt.is_dict(meta):
            return np.nan
        for k in SNR_KEYS:
            v = pmt.dict_ref(meta, pmt.intern(k), pmt.PMT_NIL)
            if pmt.is_number(v) and not pmt.is_complex(v):
                x = float(pmt.to_double(v))
                if math.isfinite(x) and abs(x) <= MAX_SNR_DB:
                    return x
                self.guard.note(f"{k}: beyond +-{MAX_SNR_DB:g} dB, written as unknown", x)
                return np.nan
        return np.nan

    def _heard(self, meta):
        """The frame's index among all frames heard (HEARD_KEY), or None
        (place_crc_failures ignores anything but an integer >= 0)."""
        pmt = self._pmt
        if meta is None or not pmt.is_dict(meta):
            return None
        from ..common.pmt_util import to_int
        return to_int(pmt.dict_ref(meta, pmt.intern(HEARD_KEY), pmt.PMT_NIL))

    # -- results
    def trace(self):
        """The Trace recorded so far."""
        with self._lock:
            got = dict(self._got)
            n = min(MAX_TRACE_PACKETS, max([self.expected, self._sent, self._sent_max + 1] + [f + 1 for f in got]))
            crc = list(self._crc)
        fates = np.ones(n, np.uint8)
        arr = np.full(n, np.nan)
        snr = np.full(n, np.nan)
        for f, (t, s, _) in got.items():
            if f < n:
                fates[f], arr[f], snr[f] = 0, t, s
        crc_times = [t for t, _, _ in crc]
        status = ["lost" if x else "ok" for x in fates]
        placed = {}
        unplaced = place_crc_failures(status, got, crc_times, self.interval, placed, [h for _, _, h in crc])
        for f, i in placed.items():          # a CRC-failed packet keeps its SNR (the signal was there)
            snr[f] = crc[i][1]
        hdr = {"source": self.source or "trace_recorder"}
        if self.bit_rate:
            hdr["bit_rate"] = f"{self.bit_rate:g}"
        hdr["frame_rate"] = f"{FRAME_RATE:g}"  # one LargeSC packet per 80 ms frame: what a replay assumes
        if self.interval:
            hdr["packet_interval_s"] = f"{self.interval:g}"
        if self._dups:
            hdr["duplicates"] = str(self._dups)
        if self._sent_dups:
            hdr["sent_duplicates"] = str(self._sent_dups)
        if crc_times:
            hdr["crc_failed"] = f"{len(crc_times)} frames heard with a failed CRC, " \
                                f"{len(crc_times) - unplaced} placed (status crc), {unplaced} not placed"
        if self.guard.total():
            hdr["rejected_messages"] = str(self.guard.total())
        return Trace(fates, status, arr, snr, hdr)

    def delivered(self):
        with self._lock:
            return len(self._got)

    def sent(self):
        return self._sent

    def counts(self):
        """{reason: n} of the messages rejected so far."""
        return self.guard.counts()

    def rejections(self):
        """{reason: n} of the messages rejected so far (as every block)."""
        return self.guard.counts()

    def sent_duplicates(self):
        return self._sent_dups

    def flush(self):
        """Writes the trace file now (nothing if path is empty or nothing
        arrived). Never raises: a failed write is counted and logged, and
        leaves no temporary file."""
        if not self.path:
            return False
        with self._write_lock:
            try:
                t = self.trace()
                if len(t) == 0:
                    return False
                write_trace(self.path, t)
                return True
            except Exception as e:  # noqa: BLE001 - a recorder must not stop the flowgraph
                self.guard.note(f"write: {type(e).__name__}", e)
                return False

    def _flush_loop(self):
        while not self._stop_flush.wait(self.flush_interval):
            self.flush()

    def start(self):
        """Starts the flushing thread (every flush_interval s; none for 0)."""
        self._stop_flush.clear()
        if self.path and self.flush_interval > 0:
            self._flusher = threading.Thread(target=self._flush_loop, name="trace_recorder flush", daemon=True)
            self._flusher.start()
        return True

    def stop(self):
        self._stop_flush.set()
        if self._flusher is not None:
            self._flusher.join()
            self._flusher = None
        self.flush()
        return True
