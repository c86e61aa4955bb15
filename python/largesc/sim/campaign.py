#
# Copyright 2026 gr-largesc authors.
# SPDX-License-Identifier: GPL-3.0-or-later
#
"""largesc-sim: end-to-end link simulation campaigns.

A campaign is a grid of independent sweep points (system x bit rate x loss
setting x recovery backend). Each point runs every speech clip through the
system and scores the output; points run in parallel on the local cores
(process pool) or, given a scheduler address, on a Dask distributed cluster.
Every finished point is appended to rows.jsonl at once, so an interrupted
campaign keeps what it finished and a re-run with the same output folder
skips it.

When things go wrong (docs/evaluation.md, "When a campaign goes wrong"): one
campaign per output folder at a time (campaign_lock); a point counts as done
only with a row for every utterance; an incomplete last line of rows.jsonl is
set aside, never read as a row; SIGINT and SIGTERM stop the campaign with its
pool (CampaignInterrupted); a file that cannot be written or read stops it
(CampaignStopped); pool workers die with their parent.
"""

import contextlib
import dataclasses
import datetime
import json
import os
import queue
import signal
import socket
import sys
import threading
import time
from concurrent.futures import ProcessPoolExecutor, as_completed

import numpy as np

from ..eval.speech import file_digest

LARGESC = "largesc"


@dataclasses.dataclass(frozen=True)
class Point:
    system: str          # "largesc" or a baseline name
    bitrate: float       # LargeSC token budget (bit/s); the codec's own rate for baselines
    loss_rate: float
    mean_burst: float
    recovery: str        # LargeSC recovery backend; "-" for baselines
    seed: int
    trace: str = ""      # replayed loss trace: "NAME@DIGEST" (traces.trace_identity); "" = loss model
    trace_pattern: tuple = dataclasses.field(default=(), compare=False, repr=False)
    # what the trace's header says about where it came from (trace_meta)
    trace_meta: tuple = dataclasses.field(default=(), compare=False, repr=False)

    def key(self):
        k = f"{self.system}|{self.bitrate:g}|{self.loss_rate:g}|{self.mean_burst:g}|{self.recovery}|{self.seed}"
        return k + (f"|trace={self.trace}" if self.trace else "")


# header fields of a trace (docs/traces.md) that label its results: where the
# losses came from (largesc-phy-sweep writes them; a recorded trace may too)
TRACE_META = ("channel", "ebn0_db", "fec", "doppler_hz", "k_factor_db")
_TRACE_META_NUMERIC = ("ebn0_db", "doppler_hz", "k_factor_db")


def trace_meta(header):
    """{field: value} of TRACE_META found in a trace's header (a
    traces.Trace's header dict; numbers as floats; '-' or unreadable numbers
    left out); {} for a plain 0/1 file."""
    meta = {}
    for k in TRACE_META:
        v = str(header.get(k, "")).strip()
        if v in ("", "-"):
            continue
        if k in _TRACE_META_NUMERIC:
            try:
                v = float(v)
            except ValueError:
                continue
        meta[k] = v
    return meta


def expand_trace_args(paths):
    """--trace values: a file stays, a folder becomes its *.trace files in
    name order (traces.TraceError when it has none)."""
    from ..traces import trace as T
    out = []
    for p in paths:
        if os.path.isdir(p):
            found = sorted(os.path.join(p, f) for f in os.listdir(p)
                           if f.endswith(".trace") and os.path.isfile(os.path.join(p, f)))
            if not found:
                raise T.TraceError(f"folder {p!r} has no *.trace file")
            out += found
        else:
            out.append(p)
    return out


def load_traces(paths):
    """[(name, digest, pattern tuple, stats)] of trace files (traces.TraceError
    for one that cannot be read; two files with the same name are refused).
    stats: traces.loss_stats plus "meta" (trace_meta)."""
    from ..traces import trace as T
    out, names = [], set()
    for p in paths:
        t = T.read_trace(p)
        name, digest, pattern = T.trace_identity(p, t)
        if name in names:
            raise T.TraceError(f"two traces are named {name!r}: rename one (the name labels the results)")
        names.add(name)
        out.append((name, digest, tuple(int(v) for v in pattern),
                    dict(T.loss_stats(pattern), meta=trace_meta(t.header))))
    return out


@dataclasses.dataclass
class Options:
    weights: str = "random:0"
    codec_mode: str = "exact"
    metrics: tuple = ("pesq_wb", "stoi")
    max_offset: int = 1
    feedback: bool = False
    out_dir: str = "out"
    save_audio: bool = True
    metric_rate: int = 16000
    # token_recovery parameters for the 'lm' and 'moshi' backends (model,
    # checkpoint, adapter, device; see recovery.make_recovery). 'hold' takes none.
    recovery_args: dict = dataclasses.field(default_factory=dict)
    # weight specs of neural baselines, by name (EnCodec: "random:SEED" when
    # asked for by name without weights anywhere; see sim_cli)
    baseline_weights: dict = dataclasses.field(default_factory=dict)
    # Mimi codec device of the LargeSC link: "cpu" or "cuda[:N]", already
    # resolved (resolve_device), so that rows say where they ran
    device: str = "cpu"


class DeviceError(ValueError):
    """A --device this machine does not have."""


def resolve_device(device="auto"):
    """A concrete torch device for the link's Mimi codec (weights.resolve_device:
    "auto" is "cuda" when torch sees a CUDA GPU, else "cpu"; "cuda" / "cuda:N"
    must exist here); DeviceError in one line otherwise."""
    from ..codec import weights as W
    try:
        return W.resolve_device(str(device or "auto"), "--device")
    except ValueError as e:
        raise DeviceError(str(e)) from None


def make_grid(systems, bitrates, losses, bursts, recoveries, seed, baseline_bitrates, traces=()):
    """Sweep points; the loss pattern seed depends only on the loss setting, so
    every system sees the same channel. Each trace of `traces` (load_traces)
    is one more loss setting: every system replays the same pattern."""
    pts = []
    settings = [(loss, burst, seed * 1000 + li * 10 + bi, "", (), ())
                for li, loss in enumerate(losses) for bi, burst in enumerate(bursts)]
    for name, digest, pattern, st in traces:
        settings.append((st["loss_rate"], max(st["mean_burst"], 1.0), seed, f"{name}@{digest}", pattern,
                         tuple(sorted(st.get("meta", {}).items()))))
    for loss, burst, s, tr, pat, meta in settings:
        for system in systems:
            if system == LARGESC:
                for br in bitrates:
                    for rec in recoveries:
                        pts.append(Point(LARGESC, float(br), float(loss), float(burst), rec, s, tr, pat,
                                         trace_meta=meta))
            else:
                pts.append(Point(system, float(baseline_bitrates.get(system, 0)), float(loss),
                                 float(burst), "-", s, tr, pat, trace_meta=meta))
    return pts


def _trace_row(point):
    """The trace fields of a row: name, digest and the pattern's statistics."""
    from ..traces import trace as T
    st = T.loss_stats(point.trace_pattern)
    row = dict(trace=point.trace, trace_packets=st["packets"], trace_loss_rate=st["loss_rate"],
               trace_bursts=st["bursts"], trace_mean_burst=st["mean_burst"],
               trace_longest_burst=st["longest_burst"])
    row.update({f"trace_{k}": v for k, v in point.trace_meta})
    return row


def recovery_args(backend, opts):
    """token_recovery keyword arguments of a backend: none for hold."""
    if backend in ("hold", "none"):
        return {}
    return {k: v for k, v in (opts.recovery_args or {}).items() if v not in ("", None)}


def check_recoveries(backends, opts):
    """Checks every LargeSC recovery backend of a campaign with its arguments,
    before any work starts; returns {backend: description} (see
    recovery.check_recovery). Raises recovery.RecoveryError."""
    from ..recovery import core as R
    out = {}
    for b in backends:
        if b == "none":
            out[b] = {"backend": "none", "untrained": False}
            continue
        out[b] = R.check_recovery(b, **recovery_args(b, opts))
    return out


def wer_reference(clip):
    """Where a clip's WER reference transcript comes from (corpus.REFERENCES):
    its label, else "corpus" for a clip with a text and
    "whisper-clean-input" for one without."""
    from ..eval import corpus as C
    return clip.get("wer_reference") or (C.REF_CORPUS if clip.get("text") is not None else C.REF_WHISPER)


CLIP_SEED_STEP = 7919


def channel_seed(point, clip_index):
    """Loss-pattern seed of one utterance of a sweep point: the setting's
    seed plus CLIP_SEED_STEP per utterance (its place in the campaign's clip
    list). Every system of a setting gets the same seed for the same
    utterance (paired comparisons), and each utterance of a setting its own
    loss pattern, so a campaign averages over channel draws as well as over
    speech. The first utterance keeps the setting's seed. A replayed trace is
    the same for every utterance (it is a recording, replayed from its
    start)."""
    return int(point.seed) + CLIP_SEED_STEP * int(clip_index)


def _run_largesc(point, ref, sr, loss, opts):
    """One utterance through the LargeSC link -> (decoded audio, row fields)."""
    from .link import LinkConfig, run_link
    cfg = LinkConfig(budget=point.bitrate, loss=loss, max_offset=opts.max_offset, recovery=point.recovery,
                     weights=opts.weights, codec_mode=opts.codec_mode, out_rate=sr,
                     device=opts.device,
                     feedback=opts.feedback, threads=1,
                     recovery_args=recovery_args(point.recovery, opts))
    res = run_link(ref, sr, cfg)
    c = res.counters
    return res.audio, dict(untrained=res.untrained or res.recovery_untrained,
                           codec_untrained=res.untrained, recovery_untrained=res.recovery_untrained,
                           token_bitrate=c["token_bitrate"],
                           on_air_bitrate=c["on_air_bitrate"], latency_ms=res.latency_ms,
                           packets_sent=c["packets_sent"], packets_delivered=c["packets_delivered"],
                           packets_dropped=c["packets_dropped_by_channel"],
                           packets_lost_elsewhere=c["packets_lost_elsewhere"],
                           frames_empty=c["frames_empty"], tokens_from_copies=c["tokens_from_copies"])


def _run_baseline(point, ref, sr, loss, opts):
    """One utterance through a baseline codec -> (decoded audio, row fields)."""
    from ..eval import baselines as B
    res = B.run_baseline(point.system, ref, sr, loss,
                         weights=(opts.baseline_weights or {}).get(point.system))
    # a neural baseline without its trained weights (EnCodec) runs untrained, labelled
    return res.audio, dict(untrained=bool(getattr(res, "untrained", False)), token_bitrate=float(res.payload_bps),
                           on_air_bitrate=float(res.on_air_bps), latency_ms=float(res.latency_ms),
                           packets_sent=int(res.packets), packets_delivered=int(res.packets - res.packets_lost),
                           packets_dropped=int(res.packets_lost), packets_lost_elsewhere=0)


def _score(row, ref, deg, sr, clip, opts):
    """Adds the metric scores of one utterance (and what they refer to) to its row."""
    from ..eval import metrics as M
    scores = M.evaluate(ref, deg, sr, opts.metrics, text=clip.get("text"), errors="nan")
    row["lag_ms"] = scores.get("lag_ms")  # None when the alignment failed (see metric_errors)
    row.update({f"m_{k}": (None if not np.isfinite(scores[k]) else float(scores[k]))
                for k in opts.metrics})
    if scores.get("errors"):
        row["metric_errors"] = scores["errors"]
    if "wer" in opts.metrics:
        row["wer_reference"] = wer_reference(clip)
        row["reference_text"] = clip.get("text")


# ---------------------------------------------------------------------------
# what stops a campaign (docs/evaluation.md, "When a campaign goes wrong")


class FileFault(OSError):
    """A file the campaign must read or write failed (a full disk, a file
    that cannot be read), in one line: "cannot write PATH: CAUSE". It stops
    the campaign (every other point would fail the same way), raised in a
    worker as here."""


class CampaignStopped(RuntimeError):
    """A FileFault stopped the campaign; the points not finished were
    cancelled. .reason names the file and the cause; .rows are the finished
    rows (kept in rows.jsonl), .failures the (point key, reason) pairs of
    points that failed before, .finished and .total count sweep points."""

    def __init__(self, reason, rows=(), failures=(), finished=0, total=0):
        super().__init__(reason)
        self.reason, self.rows, self.failures = reason, list(rows), list(failures)
        self.finished, self.total = finished, total


class CampaignInterrupted(KeyboardInterrupt):
    """SIGINT (Ctrl-C) or SIGTERM stopped the campaign: its pool is stopped,
    its flowgraphs stopped and waited for, every finished point kept.
    .signum, .finished and .total (sweep points)."""

    def __init__(self, signum=signal.SIGINT, finished=0, total=0):
        super().__init__(signum, finished, total)
        self.signum, self.finished, self.total = int(signum), finished, total

    @property
    def signal_name(self):
        return signal.Signals(self.signum).name


class CampaignLocked(RuntimeError):
    """Another campaign runs in the output folder."""


PART = ".part-"                     # NAME.part-PID: a file being written (renamed when whole)


def _write_cause(path, exc):
    """Why writing `path` failed, in the OS's words when it has any: an
    OSError's own, else what appending one byte to the file says now (a
    full disk, a file-size limit; the file is to be removed after); else
    the exception itself."""
    if isinstance(exc, OSError) and exc.strerror:
        return f"[Errno {exc.errno}] {exc.strerror}"
    if os.path.isfile(path):
        try:
            fd = os.open(path, os.O_WRONLY | os.O_APPEND)
            try:
                os.write(fd, b"\0")
            finally:
                os.close(fd)
        except OSError as e:
            if e.strerror:
                return f"[Errno {e.errno}] {e.strerror}"
    return _reason(exc)


def _append(path, text):
    """Appends `text` to `path` in one write and flushes it to the disk; on
    an error the file is cut back to its length before (no partial line is
    left behind) and FileFault names the file and the cause."""
    data = memoryview(text.encode())
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    except OSError as e:
        raise FileFault(f"cannot write {path}: {_write_cause(path, e)}") from None
    try:
        size = os.fstat(fd).st_size
        try:
            while data:
                data = data[os.write(fd, data):]
            os.fsync(fd)
        except OSError as e:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, size)
            raise FileFault(f"cannot write {path}: {_write_cause(path, e)}") from None
    finally:
        os.close(fd)


def write_whole(path, text):
    """Writes `path` whole or not at all (NAME.part-PID, then renamed);
    FileFault names the file and the cause."""
    tmp = f"{path}{PART}{os.getpid()}"
    try:
        with open(tmp, "w", newline="") as f:
            f.write(text)
        os.replace(tmp, path)
    except OSError as e:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise FileFault(f"cannot write {path}: {_write_cause(tmp, e)}") from None


def _save_audio(row, point, clip, deg, sr, opts):
    """Writes the decoded utterance under out_dir/audio (when save_audio) and
    names it in the row. Written to NAME.part-PID.wav, then renamed: a WAV
    under its own name is whole. FileFault when it cannot be written."""
    from ..eval import speech as S
    if not opts.save_audio:
        return
    d = os.path.join(opts.out_dir, "audio")
    name = point.key().replace("|", "_").replace("=", "-").replace("@", "-") + "_" + clip["name"] + ".wav"
    path = os.path.join(d, name)
    tmp = f"{path[:-4]}{PART}{os.getpid()}.wav"     # the format goes by the extension
    try:
        os.makedirs(d, exist_ok=True)
        S.save(tmp, deg, sr)
        os.replace(tmp, path)
    except Exception as e:      # soundfile says only "System error": ask the OS why
        cause = _write_cause(tmp, e)
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise FileFault(f"cannot write {path}: {cause}") from None
    row["audio"] = os.path.join("audio", name)


def run_point(point, clips, opts, on_utterance=None, only=None):
    """Runs one sweep point over every clip (or the clips at the indices of
    `only`: those a resumed point misses) -> list of result rows (dicts).
    `on_utterance(point_key)` is called after each clip (progress). Every
    system of a point gets the same loss setting (one LossSpec per
    utterance, seeded by the clip's place in `clips`). FileFault when a clip
    cannot be read or its audio written."""
    from ..common.loss import LossSpec
    from ..eval import speech as S
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    rows = []
    for ci, clip in enumerate(clips):
        if only is not None and ci not in only:
            continue
        try:
            ref, sr = S.load(clip["path"], opts.metric_rate), opts.metric_rate
        except (OSError, S.SpeechError) as e:   # checked before the campaign: it changed since
            why = str(e)                         # SpeechError names the file
            raise FileFault(why if clip["path"] in why else f"cannot read {clip['path']}: {why}") from None
        t0 = time.perf_counter()
        cseed = point.seed if point.trace else channel_seed(point, ci)
        loss = LossSpec.from_setting(point.loss_rate, point.mean_burst, cseed,
                                     trace=point.trace_pattern if point.trace else None)
        row = dict(point=point.key(), system=point.system, bitrate=point.bitrate,
                   loss_rate=point.loss_rate, mean_burst=point.mean_burst,
                   recovery=point.recovery, seed=point.seed, clip=clip["name"],
                   channel_seed=cseed)
        if point.trace:
            row.update(_trace_row(point))
        run = _run_largesc if point.system == LARGESC else _run_baseline
        deg, fields = run(point, ref, sr, loss, opts)
        row.update(fields)
        row["run_s"] = round(time.perf_counter() - t0, 3)
        _score(row, ref, deg, sr, clip, opts)
        _save_audio(row, point, clip, deg, sr, opts)
        rows.append(row)
        if on_utterance is not None:
            on_utterance(point.key())
    return rows


# progress of the utterances inside a running point: in this process, a
# callable set by run_campaign; in a pool worker, one that puts the point key
# on the campaign's queue (_pool_init); in a Dask worker, an event on the
# campaign's topic (args[4]) that the client subscribes to
_utterance_done = None
PROGRESS_TOPIC = "largesc-sim-progress"
PR_SET_PDEATHSIG = 1                # linux/prctl.h


def _die_with_parent(parent_pid):
    """This process ends when its parent does, kill -9 included: on Linux
    the kernel sends it SIGKILL (prctl PR_SET_PDEATHSIG); a parent already
    gone ends it now."""
    if sys.platform.startswith("linux"):
        import ctypes
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
    if os.getppid() != parent_pid:
        os._exit(1)


def _pool_init(q, parent_pid):
    """A pool worker's start: progress to the queue, gone with its parent,
    deaf to SIGINT (a terminal's Ctrl-C reaches the whole process group; the
    parent stops the workers itself). The parent started it with SIGINT
    blocked, so a Ctrl-C before this point is dropped here, not raised."""
    global _utterance_done
    _utterance_done = q.put
    _die_with_parent(parent_pid)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})


def _dask_tick(topic):
    try:
        from distributed import get_worker
        w = get_worker()
    except (ImportError, ValueError):
        return None
    return lambda key: w.log_event(topic, key)


def _run_point_job(args):
    """(point, rows) of args = (point, clips, opts[, only[, Dask topic]])."""
    point, clips, opts = args[:3]
    only = args[3] if len(args) > 3 else None
    tick = (_dask_tick(args[4]) if len(args) > 4 and args[4] else None) or _utterance_done
    import torch
    torch.set_num_threads(1)
    return point, run_point(point, clips, opts, on_utterance=tick, only=only)


class CampaignMismatch(ValueError):
    """The output folder holds rows of a campaign with other settings."""


class CampaignFileError(CampaignMismatch):
    """A file of the output folder cannot be read as what it should be
    (campaign.json, a line of rows.jsonl): the folder is refused, named."""


SET_ASIDE = "rows.jsonl.set-aside"


def _row_problem(line):
    """Why a line of rows.jsonl is not a result row (None when it is one)."""
    try:
        r = json.loads(line.decode("utf-8"))
    except UnicodeDecodeError:
        return "not text", None
    except ValueError as e:
        return f"not JSON ({e.msg})", None
    if not isinstance(r, dict) or not isinstance(r.get("point"), str) or not isinstance(r.get("clip"), str):
        return "not a row (an object with point and clip)", None
    return None, r


def load_rows(path, log=print):
    """The rows of rows.jsonl by point key ({} when there is none).

    rows.jsonl is written a point at a time, each line whole, so a crash or
    a full disk leaves at most one incomplete last line: it is appended to
    rows.jsonl.set-aside (never dropped), cut from rows.jsonl with a
    warning, and its utterances run again. Any other line that is not a row
    is a CampaignFileError naming it; a second row of the same point and
    utterance is left out, with a warning."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return {}
    except OSError as e:
        raise CampaignFileError(f"cannot read {path}: {e.strerror or e}") from None
    done, seen, dups, pos = {}, set(), 0, 0
    lines = data.split(b"\n")
    for i, line in enumerate(lines):
        start, pos = pos, pos + len(line) + 1
        if not line.strip():
            continue
        why, r = _row_problem(line)
        if why is None:
            if (r["point"], r["clip"]) in seen:
                dups += 1
                continue
            seen.add((r["point"], r["clip"]))
            done.setdefault(r["point"], []).append(r)
            if i == len(lines) - 1:     # a whole row that lost only its newline
                _append(path, "\n")
            continue
        if any(x.strip() for x in lines[i + 1:]):
            raise CampaignFileError(
                f"{path} line {i + 1} is {why}: not what a crash leaves (only a last line can be "
                "incomplete); remove that line by hand, or start over in another --out")
        aside = os.path.join(os.path.dirname(path), SET_ASIDE)
        _append(aside, data[start:].decode("utf-8", "backslashreplace").rstrip("\n") + "\n")
        try:
            os.truncate(path, start)
        except OSError as e:
            raise FileFault(f"cannot write {path}: {_write_cause(path, e)}") from None
        log(f"warning: {path} ended in an incomplete line ({len(data) - start} bytes, {why}: what a "
            f"crash or a full disk leaves); moved to {aside}, its utterances run again")
        break
    if dups:
        log(f"warning: {path} holds {dups} repeated row(s) of the same point and utterance (two "
            "campaigns at once, before the folder was locked); the first of each is used")
    return done


def campaign_fingerprint(clips, opts):
    """What a row's result depends on besides its sweep point: the clips
    (name, a digest of the audio file, transcript and where the WER reference
    comes from) and the options. A Whisper reference is not in it (it is
    made from the audio, whose digest is): it is kept in
    out_dir/wer_references.json for a resumed campaign."""
    from ..eval import corpus as C
    fp = {"clips": [], "options": {}}
    for c in clips:
        ref = wer_reference(c)
        try:
            digest = file_digest(c["path"])
        except OSError as e:
            raise FileFault(f"cannot read {c['path']}: {e.strerror or e}") from None
        fp["clips"].append([c["name"], digest,
                            None if ref == C.REF_WHISPER else c.get("text"), ref])
    for k, v in dataclasses.asdict(opts).items():
        if k not in ("out_dir", "save_audio"):
            fp["options"][k] = list(v) if isinstance(v, tuple) else v
    return json.loads(json.dumps(fp))


def _read_json(path, kind, what):
    """The JSON value of file `path` when it is a `kind` (dict or list);
    otherwise a one-line reason why not (empty, binary, not JSON, another
    type) as (None, reason). OSError when it cannot be read."""
    with open(path, "rb") as f:
        raw = f.read()
    if not raw.strip():
        return None, "it is empty"
    try:
        v = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        return None, "it is binary, not text"
    except ValueError as e:
        return None, f"it is not JSON ({e.msg}, line {e.lineno})"
    if not isinstance(v, kind):
        return None, f"it holds a JSON {type(v).__name__}, not {what}"
    return v, None


def check_same_campaign(clips, opts, resuming):
    """Writes out_dir/campaign.json on a fresh campaign (whole or not at
    all); on a resumed one (rows in rows.jsonl), CampaignMismatch unless
    clips and options are the same as when it began (a resumed campaign must
    not mix rows of different settings), also when campaign.json is missing,
    and CampaignFileError, in one line, when it cannot be read as a
    campaign record (empty, binary, another JSON type)."""
    path = os.path.join(opts.out_dir, "campaign.json")
    rows_path = os.path.join(opts.out_dir, "rows.jsonl")
    start_over = (f"Use another output folder, or delete {rows_path} to start over there")
    fp = campaign_fingerprint(clips, opts)
    if resuming:
        if not os.path.exists(path):
            raise CampaignMismatch(
                f"{opts.out_dir} holds rows (rows.jsonl) but no campaign.json: the settings they were made "
                f"with are unknown, and resuming could mix rows of different settings. {start_over}")
        try:
            old, why = _read_json(path, dict, "a campaign record (an object with clips and options)")
        except OSError as e:
            raise CampaignFileError(f"cannot read {path}: {e.strerror or e}") from None
        if old is not None and not (isinstance(old.get("clips"), list) and isinstance(old.get("options"), dict)):
            old, why = None, "it holds a JSON object without clips and options, not a campaign record"
        if why:
            raise CampaignFileError(f"{path} cannot be read: {why}; so the settings of the rows in "
                                    f"rows.jsonl are unknown. Restore it, or: {start_over}")
        if old != fp:
            diff = sorted(k for k in set(old.get("options", {})) | set(fp["options"])
                          if old.get("options", {}).get(k) != fp["options"].get(k))
            if old.get("clips") != fp["clips"]:
                diff.insert(0, "clips")
            raise CampaignMismatch(
                f"{opts.out_dir} holds a campaign with other settings (differs in: {', '.join(diff)}); "
                f"resuming would mix their rows. {start_over}")
        return fp
    write_whole(path, json.dumps(fp, indent=1))
    return fp


WER_REFERENCES = "wer_references.json"


def whisper_references(clips, opts, digests=None, log=print, progress=False):
    """Clips with their WER reference filled in: a clip without a transcript
    (wer_reference "whisper-clean-input") gets Whisper's transcript of its
    clean input utterance, made once per utterance (the Whisper setup of
    eval.metrics.transcribe: tiny.en, greedy, temperature 0) and kept in
    out_dir/wer_references.json (by name and audio digest) for a resumed
    campaign. Only when WER is among the metrics; clips are returned as
    copies with their wer_reference label set."""
    from ..eval import corpus as C
    out = [dict(c, wer_reference=wer_reference(c)) for c in clips]
    need = [c for c in out if c["wer_reference"] == C.REF_WHISPER]
    if "wer" not in opts.metrics or not need:
        return out
    from ..eval import metrics as M
    from ..eval import speech as S
    path = os.path.join(opts.out_dir, WER_REFERENCES)
    cache = {}
    if os.path.exists(path):
        try:
            cache, why = _read_json(path, dict, "an object of transcripts")
        except OSError as e:
            cache, why = None, f"cannot be read ({e.strerror or e})"
        if why:     # a cache: made again
            log(f"warning: {path} ignored ({why}); the Whisper references are made again")
        cache = {k: v for k, v in (cache or {}).items() if isinstance(v, str)}
    from tqdm import tqdm
    made = 0
    for c in tqdm(need, desc="WER references (Whisper, clean input)", unit="utt",
                  disable=not progress, file=sys.stderr):
        key = f"{c['name']}@{(digests or {}).get(c['name']) or file_digest(c['path'])}"
        if key not in cache:
            try:
                cache[key] = M.transcribe(S.load(c["path"], opts.metric_rate), opts.metric_rate)
            except M.MetricError as e:   # no Whisper here: every WER of these clips fails, said per row
                log(f"note: no Whisper reference for the {len(need)} utterance(s) without a transcript: {e}")
                return out
            made += 1
        c["text"] = cache[key]
    write_whole(path, json.dumps(cache, indent=1))
    log(f"WER reference: Whisper tiny.en's transcript of the clean input for {len(need)} of {len(out)} "
        f"utterance(s) without a transcript ({made} transcribed now; kept in {path})")
    return out


class _Progress:
    """Progress of a campaign in utterances (points x utterances), with the
    time left estimated from the mean rate so far (tqdm, smoothing 0).
    `counts` {point key: utterances to run} (a resumed point runs only those
    it misses). Utterances are counted as they finish inside a point (tick,
    from any thread) and a finished or failed point counts all of its
    utterances."""

    def __init__(self, counts, enabled, file=None, on_utterance=None):
        from tqdm import tqdm
        self.counts, self.n_points = dict(counts), len(counts)
        self.seen, self.finished, self.lock = {}, set(), threading.Lock()
        self.ticks, self.on_utterance = {}, on_utterance   # utterance reports received, by point
        self.bar = tqdm(total=sum(self.counts.values()), unit="utt", smoothing=0, disable=not enabled,
                        file=file or sys.stderr, desc="utterances (points x utterances)",
                        bar_format="{desc}: {n_fmt}/{total_fmt} {percentage:3.0f}%|{bar}| "
                                   "[{elapsed} elapsed, about {remaining} left{postfix}]")
        self.bar.set_postfix_str(f"points 0/{self.n_points}", refresh=False)

    def tick(self, key):
        with self.lock:
            self.ticks[key] = self.ticks.get(key, 0) + 1
            if self.on_utterance is not None:
                self.on_utterance(key)
            if key in self.finished or self.seen.get(key, 0) >= self.counts.get(key, 0):
                return
            self.seen[key] = self.seen.get(key, 0) + 1
            self.bar.update(1)

    def point_done(self, key):
        with self.lock:
            if key in self.finished:
                return
            self.finished.add(key)
            self.bar.update(self.counts.get(key, 0) - self.seen.get(key, 0))
            self.seen[key] = self.counts.get(key, 0)
            self.bar.set_postfix_str(f"points {len(self.finished)}/{self.n_points}, last {key}")

    def wait_for_ticks(self, keys, timeout):
        """Waits (at most `timeout` s) until every utterance of the points
        `keys` has been reported to on_utterance: Dask events may arrive
        after the result. Without on_utterance nothing waits on them (the
        bar counts a finished point whole)."""
        if self.on_utterance is None:
            return
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            with self.lock:
                if all(self.ticks.get(k, 0) >= self.counts.get(k, 0) for k in keys):
                    return
            time.sleep(0.05)

    def close(self):
        self.bar.close()


class CampaignError(RuntimeError):
    """Some sweep points failed; every finished point is kept in rows.jsonl.
    .rows holds the finished rows, .failures (point key, reason) pairs."""

    def __init__(self, rows, failures):
        self.rows, self.failures = rows, failures
        super().__init__(f"{len(failures)} sweep point(s) failed: "
                         + "; ".join(f"{k}: {why}" for k, why in failures[:3])
                         + (" ..." if len(failures) > 3 else ""))


def _reason(exc):
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:500]


class _Signals:
    """While a campaign runs in the main thread, SIGINT (Ctrl-C) and SIGTERM
    raise CampaignInterrupted there, so that its flowgraph and its pool are
    stopped (SIGTERM would end the process at once); inside hold() (a point
    being recorded) they wait until the point is written. A signal ignored
    when the campaign began (SIGINT of a background job) stays ignored;
    once the campaign stops (`stopping`), further ones are ignored."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self):
        self.old, self.held, self.pending, self.stopping = {}, 0, None, False

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for s in self.SIGNALS:
                if signal.getsignal(s) is not signal.SIG_IGN:
                    self.old[s] = signal.signal(s, self._raise)
        return self

    def __exit__(self, *exc):
        for s, handler in self.old.items():
            signal.signal(s, handler)

    def _raise(self, signum, frame):
        if self.stopping:
            return
        if self.held:
            self.pending = self.pending or signum
            return
        self.stopping = True
        raise CampaignInterrupted(signum)

    @contextlib.contextmanager
    def hold(self):
        self.held += 1
        try:
            yield
        finally:
            self.held -= 1
        if not self.held and self.pending and not self.stopping:
            self.stopping = True
            raise CampaignInterrupted(self.pending)


class _Recorder:
    """Keeps the results of a campaign as its points finish: a finished
    point's rows are appended to rows.jsonl at once (one write, flushed to
    the disk, signals held), a failed point to failures.jsonl (this run's,
    emptied at the start) and the log. A FileFault goes through: it stops
    the campaign."""

    def __init__(self, out_dir, done, clips, bar, log, signals):
        self.rows_path = os.path.join(out_dir, "rows.jsonl")
        self.fail_path = os.path.join(out_dir, "failures.jsonl")
        self.done, self.bar, self.log, self.signals = done, bar, log, signals
        self.order = {c["name"]: i for i, c in enumerate(clips)}
        self.failed = []
        if os.path.exists(self.fail_path):
            os.remove(self.fail_path)

    def record(self, point, rows):
        with self.signals.hold():
            _append(self.rows_path, "".join(json.dumps(r) + "\n" for r in rows))
            key = point.key()
            self.done[key] = sorted(self.done.get(key, []) + list(rows),
                                    key=lambda r: self.order.get(r["clip"], len(self.order)))
        self.bar.point_done(key)

    def fail(self, point, exc):
        why = _reason(exc)
        self.failed.append((point.key(), why))
        with self.signals.hold():
            _append(self.fail_path, json.dumps({"point": point.key(), "reason": why}) + "\n")
        self.log(f"point {point.key()} FAILED: {why}")
        self.bar.point_done(point.key())

    def collect(self, point, get):
        """Records what get() returns (point, rows), or the point's failure."""
        try:
            p, rows = get()
        except FileFault:
            raise
        except Exception as e:          # the point failed; the campaign goes on
            self.fail(point, e)
        else:
            self.record(p, rows)

    def finished(self, todo):
        """Keys of the points of `todo` that finished."""
        return [p.key() for p in todo if p.key() in self.done]


def _run_on_dask(scheduler, todo, args, bar, rec):
    """Runs the points on a Dask cluster. Workers report each finished
    utterance as an event on a topic of this campaign; the client counts them
    (bar.tick) as they arrive. On a stop the points not finished are
    cancelled."""
    from dask.distributed import as_completed as dask_completed
    import uuid
    client = scheduler if not isinstance(scheduler, str) else connect_scheduler(scheduler)
    topic = f"{PROGRESS_TOPIC}-{uuid.uuid4().hex[:12]}"
    client.subscribe_topic(topic, lambda event: bar.tick(event[1]))
    futs = []
    try:
        futs = client.map(_run_point_job, [a + (topic,) for a in args], pure=False)
        by_fut = dict(zip(futs, todo))
        for fut in dask_completed(futs):
            rec.collect(by_fut[fut], fut.result)
        bar.wait_for_ticks(rec.finished(todo), 5.0)
    except BaseException:
        rec.signals.stopping = True
        with contextlib.suppress(Exception):
            client.cancel(futs)
        raise
    finally:
        with contextlib.suppress(Exception):
            client.unsubscribe_topic(topic)


def _run_here(todo, args, bar, rec):
    """Runs the points one after the other in this process."""
    global _utterance_done
    _utterance_done = bar.tick
    try:
        for p, a in zip(todo, args):
            rec.collect(p, lambda a=a: _run_point_job(a))
    finally:
        _utterance_done = None


def _stop_pool(ex):
    """Ends a process pool at once: queued points cancelled, running ones
    killed with their workers (a point holds nothing to save: it is recorded
    only when it returns), the workers waited for."""
    procs = list((getattr(ex, "_processes", None) or {}).values())
    ex.shutdown(wait=False, cancel_futures=True)
    for p in procs:
        with contextlib.suppress(Exception):
            p.kill()
    for p in procs:
        with contextlib.suppress(Exception):
            p.join(10)


def _run_in_pool(todo, args, jobs, bar, rec):
    """Runs the points on `jobs` local processes. Pool workers put each
    finished utterance's point key on a queue; a thread here counts them.
    The workers start with SIGINT blocked (see _pool_init) and die with
    this process; on a stop (a signal, a FileFault) they are killed."""
    import multiprocessing as mp
    ctx = mp.get_context("spawn")
    ticks, stop = ctx.Queue(), threading.Event()

    def listen():
        while True:
            try:
                key = ticks.get(timeout=0.1)
            except queue.Empty:
                if stop.is_set():
                    return
                continue
            except (EOFError, OSError):
                return
            bar.tick(key)

    listener = threading.Thread(target=listen, daemon=True)
    listener.start()
    ex = ProcessPoolExecutor(max_workers=jobs, mp_context=ctx, initializer=_pool_init,
                             initargs=(ticks, os.getpid()))
    try:
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})  # workers start on submit
        try:
            futs = {ex.submit(_run_point_job, a): p for p, a in zip(todo, args)}
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        for fut in as_completed(futs):
            rec.collect(futs[fut], fut.result)
        bar.wait_for_ticks(rec.finished(todo), 5.0)
    except BaseException:
        rec.signals.stopping = True
        _stop_pool(ex)
        raise
    else:
        ex.shutdown(wait=True)
    finally:
        stop.set()
        listener.join()


LOCK_FILE = "campaign.lock"
_locks = {}     # realpath of an output folder -> its open lock file, while this process holds it


def _holder(text):
    """Who holds a campaign lock, from the lock file's line."""
    try:
        h = json.loads(text)
        return (f"pid {h['pid']} on {h['host']}, started {h['started']}: "
                f"{h.get('command') or 'largesc-sim'}")
    except (ValueError, TypeError, KeyError):
        return "a process that has not written its details yet"


@contextlib.contextmanager
def campaign_lock(out_dir):
    """Holds the output folder's campaign lock for the block: an flock on
    out_dir/campaign.lock, which the OS drops when the process ends (a crash
    or kill -9 included), so a crashed campaign never blocks its folder.
    CampaignLocked, naming the running campaign (pid, host, start, command:
    the lock file's line), when another process holds it. Re-entrant in one
    process (largesc-sim holds it around run_campaign)."""
    import fcntl
    key = os.path.realpath(out_dir)
    if key in _locks:
        yield
        return
    path = os.path.join(out_dir, LOCK_FILE)
    try:
        os.makedirs(out_dir, exist_ok=True)
        f = open(path, "a+b", buffering=0)    # unbuffered: a full disk fails the write, not the close
    except OSError as e:
        raise FileFault(f"cannot write {path}: {_write_cause(path, e)}") from None
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        f.seek(0)
        holder = _holder(f.read(4000).decode("utf-8", "replace"))
        f.close()
        raise CampaignLocked(f"{out_dir} is in use by another campaign ({holder}); wait for it to "
                             "end, or use another --out") from None
    except OSError as e:
        f.close()
        raise FileFault(f"cannot lock {path}: {e.strerror or e}") from None
    _locks[key] = f
    try:
        me = dict(pid=os.getpid(), host=socket.gethostname(),
                  started=datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M:%S %Z"),
                  command=" ".join([os.path.basename(sys.argv[0] or "python")] + sys.argv[1:])[:300])
        with contextlib.suppress(OSError):     # who holds it, for the message above
            f.truncate(0)
            f.write(json.dumps(me).encode() + b"\n")
        yield
    finally:
        del _locks[key]
        f.close()


def _clear_parts(out_dir):
    """Removes the NAME.part-PID files that writers killed mid-write left
    (the folder's lock is held: nobody else writes there)."""
    for d in (out_dir, os.path.join(out_dir, "audio")):
        with contextlib.suppress(OSError):
            for name in os.listdir(d):
                if PART in name:
                    with contextlib.suppress(OSError):
                        os.remove(os.path.join(d, name))


def _points_to_run(points, clips, opts, done, log, progress):
    """([(point, indices of the clips it misses, None = all)], clips with
    their WER references); fills `done` with the rows already in rows.jsonl
    by point key. A point is done only with a row for every utterance.
    CampaignMismatch for a resumed campaign with other settings."""
    rows_path = os.path.join(opts.out_dir, "rows.jsonl")
    resuming = os.path.exists(rows_path) and os.path.getsize(rows_path) > 0
    fp = check_same_campaign(clips, opts, resuming)
    done.update(load_rows(rows_path, log))
    names = [c["name"] for c in clips]
    todo = []
    for p in points:
        have = {r["clip"] for r in done.get(p.key(), ())}
        miss = tuple(i for i, n in enumerate(names) if n not in have)
        if miss:
            todo.append((p, None if len(miss) == len(names) else miss))
    partial = [only for _, only in todo if only is not None]
    if len(todo) < len(points) or partial:
        log(f"resuming: {len(points) - len(todo)} of {len(points)} points already in {rows_path}"
            + (f"; {len(partial)} more with only some of their utterances: running the "
               f"{sum(map(len, partial))} missing utterance run(s)" if partial else ""))
    if todo:
        clips = whisper_references(clips, opts, {c[0]: c[1] for c in fp["clips"]}, log,
                                   progress=bool(progress))
    return todo, clips


def _finished(points, done, clips):
    """(rows of the finished utterances, in grid and clip order; sweep
    points with a row for every utterance)."""
    names = {c["name"] for c in clips}
    rows = [r for p in points for r in done.get(p.key(), ()) if r["clip"] in names]
    complete = sum(1 for p in points if names <= {r["clip"] for r in done.get(p.key(), ())})
    return rows, complete


def run_campaign(points, clips, opts, jobs=None, scheduler=None, progress=True, log=print,
                 failures=None, on_utterance=None):
    """Runs every point not already in out_dir/rows.jsonl. Returns all rows.

    Progress (`progress`: True for stderr, a file, or False) counts
    utterances (points x utterances) as they finish inside the points, on
    local jobs and on Dask workers alike, with an estimate of the time left;
    `on_utterance(point_key)` is called for each one as well.

    A point that fails does not stop the others, and every finished point is
    written to rows.jsonl the moment it finishes, so nothing finished is lost
    and a re-run runs only what is missing (the failed points included, and
    the utterances a point misses). Failed points are written to
    out_dir/failures.jsonl (this run's) and appended to `failures` as (point
    key, reason); without a `failures` list a CampaignError is raised at the
    end instead.

    What stops it (docs/evaluation.md, "When a campaign goes wrong"):
    CampaignLocked while another campaign runs in out_dir; CampaignMismatch
    (CampaignFileError) for a folder of other settings or an unreadable
    campaign.json or rows.jsonl; CampaignStopped when a file cannot be
    written or read (the other points cancelled); CampaignInterrupted on
    SIGINT or SIGTERM. In each case the finished points stay in rows.jsonl,
    no flowgraph or pool worker is left running, and a re-run resumes."""
    done, failed = {}, []
    with campaign_lock(opts.out_dir), _Signals() as sig:
        try:
            _clear_parts(opts.out_dir)
            todo, clips = _points_to_run(points, clips, opts, done, log, progress)
            bar = _Progress({p.key(): len(only or clips) for p, only in todo}, bool(progress),
                            progress if hasattr(progress, "write") else None, on_utterance)
            try:
                rec = _Recorder(opts.out_dir, done, clips, bar, log, sig)
                failed = rec.failed
                args = [(p, clips, opts, only) for p, only in todo]
                todo = [p for p, _ in todo]
                if scheduler:
                    _run_on_dask(scheduler, todo, args, bar, rec)
                elif (jobs or 1) <= 1 or len(args) <= 1:
                    _run_here(todo, args, bar, rec)
                else:
                    _run_in_pool(todo, args, jobs, bar, rec)
            finally:
                bar.close()
        except FileFault as e:
            sig.stopping = True
            rows, complete = _finished(points, done, clips)
            raise CampaignStopped(str(e), rows, failed, complete, len(points)) from None
        except KeyboardInterrupt as e:
            sig.stopping = True
            raise CampaignInterrupted(getattr(e, "signum", signal.SIGINT),
                                      _finished(points, done, clips)[1], len(points)) from None
    rows = _finished(points, done, clips)[0]
    if failed:
        if failures is None:
            raise CampaignError(rows, failed)
        failures.extend(failed)
    return rows


class SchedulerUnreachable(RuntimeError):
    pass


def connect_scheduler(address, timeout=10.0):
    """A dask.distributed Client for `address`; SchedulerUnreachable with a
    one-line message when nothing answers there within `timeout` seconds."""
    from dask.distributed import Client
    try:
        return Client(address, timeout=timeout)
    except (OSError, TimeoutError) as e:
        raise SchedulerUnreachable(
            f"cannot reach the Dask scheduler at {address} within {timeout:g} s "
            f"({type(e).__name__}); start one there with `dask scheduler` and workers with "
            f"`dask worker {address}`, or leave out --scheduler to run on this machine") from None
