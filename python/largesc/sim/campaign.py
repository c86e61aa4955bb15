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
"""

import dataclasses
import json
import os
import queue
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


def _save_audio(row, point, clip, deg, sr, opts):
    """Writes the decoded utterance under out_dir/audio (when save_audio) and names it in the row."""
    from ..eval import speech as S
    if not opts.save_audio:
        return
    d = os.path.join(opts.out_dir, "audio")
    os.makedirs(d, exist_ok=True)
    name = point.key().replace("|", "_").replace("=", "-").replace("@", "-") + "_" + clip["name"] + ".wav"
    S.save(os.path.join(d, name), deg, sr)
    row["audio"] = os.path.join("audio", name)


def run_point(point, clips, opts, on_utterance=None):
    """Runs one sweep point over every clip -> list of result rows (dicts).
    `on_utterance(point_key)` is called after each clip (progress). Every
    system of a point gets the same loss setting (one LossSpec per utterance)."""
    from ..common.loss import LossSpec
    from ..eval import speech as S
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    rows = []
    for ci, clip in enumerate(clips):
        ref, sr = S.load(clip["path"], opts.metric_rate), opts.metric_rate
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
# campaign's topic (args[3]) that the client subscribes to
_utterance_done = None
PROGRESS_TOPIC = "largesc-sim-progress"


def _pool_init(q):
    global _utterance_done
    _utterance_done = q.put


def _dask_tick(topic):
    try:
        from distributed import get_worker
        w = get_worker()
    except (ImportError, ValueError):
        return None
    return lambda key: w.log_event(topic, key)


def _run_point_job(args):
    point, clips, opts = args[:3]
    tick = (_dask_tick(args[3]) if len(args) > 3 and args[3] else None) or _utterance_done
    import torch
    torch.set_num_threads(1)
    return point, run_point(point, clips, opts, on_utterance=tick)


def load_done(path):
    done = {}
    if os.path.exists(path):
        with open(path) as f:
            for line in f:
                line = line.strip()
                if line:
                    r = json.loads(line)
                    done.setdefault(r["point"], []).append(r)
    return done


class CampaignMismatch(ValueError):
    """The output folder holds rows of a campaign with other settings."""


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
        fp["clips"].append([c["name"], file_digest(c["path"]),
                            None if ref == C.REF_WHISPER else c.get("text"), ref])
    for k, v in dataclasses.asdict(opts).items():
        if k not in ("out_dir", "save_audio"):
            fp["options"][k] = list(v) if isinstance(v, tuple) else v
    return json.loads(json.dumps(fp))


def check_same_campaign(clips, opts, resuming):
    """Writes out_dir/campaign.json on a fresh campaign; on a resumed one,
    CampaignMismatch unless clips and options are the same as when it began
    (a resumed campaign must not mix rows of different settings)."""
    path = os.path.join(opts.out_dir, "campaign.json")
    fp = campaign_fingerprint(clips, opts)
    if resuming and os.path.exists(path):
        with open(path) as f:
            old = json.load(f)
        if old != fp:
            diff = sorted(k for k in set(old.get("options", {})) | set(fp["options"])
                          if old.get("options", {}).get(k) != fp["options"].get(k))
            if old.get("clips") != fp["clips"]:
                diff.insert(0, "clips")
            raise CampaignMismatch(
                f"{opts.out_dir} holds a campaign with other settings (differs in: {', '.join(diff)}); "
                "resuming would mix their rows. Use another output folder, or delete "
                f"{os.path.join(opts.out_dir, 'rows.jsonl')} to start over there")
        return fp
    with open(path, "w") as f:
        json.dump(fp, f, indent=1)
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
        with open(path) as f:
            cache = json.load(f)
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
    with open(path, "w") as f:
        json.dump(cache, f, indent=1)
    log(f"WER reference: Whisper tiny.en's transcript of the clean input for {len(need)} of {len(out)} "
        f"utterance(s) without a transcript ({made} transcribed now; kept in {path})")
    return out


class _Progress:
    """Progress of a campaign in utterances (points x utterances), with the
    time left estimated from the mean rate so far (tqdm, smoothing 0).
    Utterances are counted as they finish inside a point (tick, from any
    thread) and a finished or failed point counts all of its utterances."""

    def __init__(self, keys, n_utt, enabled, file=None, on_utterance=None):
        from tqdm import tqdm
        self.n_utt, self.n_points = n_utt, len(keys)
        self.seen, self.finished, self.lock = {}, set(), threading.Lock()
        self.ticks, self.on_utterance = {}, on_utterance   # utterance reports received, by point
        self.bar = tqdm(total=len(keys) * n_utt, unit="utt", smoothing=0, disable=not enabled,
                        file=file or sys.stderr, desc="utterances (points x utterances)",
                        bar_format="{desc}: {n_fmt}/{total_fmt} {percentage:3.0f}%|{bar}| "
                                   "[{elapsed} elapsed, about {remaining} left{postfix}]")
        self.bar.set_postfix_str(f"points 0/{self.n_points}", refresh=False)

    def tick(self, key):
        with self.lock:
            self.ticks[key] = self.ticks.get(key, 0) + 1
            if self.on_utterance is not None:
                self.on_utterance(key)
            if key in self.finished or self.seen.get(key, 0) >= self.n_utt:
                return
            self.seen[key] = self.seen.get(key, 0) + 1
            self.bar.update(1)

    def point_done(self, key):
        with self.lock:
            if key in self.finished:
                return
            self.finished.add(key)
            self.bar.update(self.n_utt - self.seen.get(key, 0))
            self.seen[key] = self.n_utt
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
                if all(self.ticks.get(k, 0) >= self.n_utt for k in keys):
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


class _Recorder:
    """Keeps the results of a campaign as its points finish: a finished
    point's rows are appended to rows.jsonl at once, a failed point to
    failures.jsonl (this run's, emptied at the start) and the log."""

    def __init__(self, rows_path, fail_path, done, bar, log):
        self.rows_path, self.fail_path, self.done, self.bar, self.log = rows_path, fail_path, done, bar, log
        self.failed = []
        if os.path.exists(fail_path):
            os.remove(fail_path)

    def record(self, point, rows):
        with open(self.rows_path, "a") as f:
            for r in rows:
                f.write(json.dumps(r) + "\n")
        self.done[point.key()] = rows
        self.bar.point_done(point.key())

    def fail(self, point, exc):
        why = _reason(exc)
        self.failed.append((point.key(), why))
        with open(self.fail_path, "a") as f:
            f.write(json.dumps({"point": point.key(), "reason": why}) + "\n")
        self.log(f"point {point.key()} FAILED: {why}")
        self.bar.point_done(point.key())

    def collect(self, point, get):
        """Records what get() returns (point, rows), or the point's failure."""
        try:
            p, rows = get()
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
    (bar.tick) as they arrive."""
    from dask.distributed import as_completed as dask_completed
    import uuid
    client = scheduler if not isinstance(scheduler, str) else connect_scheduler(scheduler)
    topic = f"{PROGRESS_TOPIC}-{uuid.uuid4().hex[:12]}"
    client.subscribe_topic(topic, lambda event: bar.tick(event[1]))
    try:
        futs = client.map(_run_point_job, [a + (topic,) for a in args], pure=False)
        by_fut = dict(zip(futs, todo))
        for fut in dask_completed(futs):
            rec.collect(by_fut[fut], fut.result)
        bar.wait_for_ticks(rec.finished(todo), 5.0)
    finally:
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


def _run_in_pool(todo, args, jobs, bar, rec):
    """Runs the points on `jobs` local processes. Pool workers put each
    finished utterance's point key on a queue; a thread here counts them."""
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
    try:
        with ProcessPoolExecutor(max_workers=jobs, mp_context=ctx, initializer=_pool_init,
                                 initargs=(ticks,)) as ex:
            futs = {ex.submit(_run_point_job, a): p for p, a in zip(todo, args)}
            for fut in as_completed(futs):
                rec.collect(futs[fut], fut.result)
            bar.wait_for_ticks(rec.finished(todo), 5.0)
    finally:
        stop.set()
        listener.join()


def _points_to_run(points, clips, opts, rows_path, log, progress):
    """(points not yet in rows.jsonl, clips with their WER references, rows
    already there by point key); CampaignMismatch for a resumed campaign with
    other settings."""
    fp = check_same_campaign(clips, opts, os.path.exists(rows_path))
    done = load_done(rows_path)
    todo = [p for p in points if p.key() not in done]
    if len(todo) < len(points):
        log(f"resuming: {len(points) - len(todo)} of {len(points)} points already in {rows_path}")
    if todo:
        clips = whisper_references(clips, opts, {c[0]: c[1] for c in fp["clips"]}, log,
                                   progress=bool(progress))
    return todo, clips, done


def run_campaign(points, clips, opts, jobs=None, scheduler=None, progress=True, log=print,
                 failures=None, on_utterance=None):
    """Runs every point not already in out_dir/rows.jsonl. Returns all rows.

    Progress (`progress`: True for stderr, a file, or False) counts
    utterances (points x utterances) as they finish inside the points, on
    local jobs and on Dask workers alike, with an estimate of the time left;
    `on_utterance(point_key)` is called for each one as well.

    A point that fails does not stop the others, and every finished point is
    written to rows.jsonl the moment it finishes, so nothing finished is lost
    and a re-run runs only what is missing (the failed points included).
    Failed points are written to out_dir/failures.jsonl (this run's) and
    appended to `failures` as (point key, reason); without a `failures` list
    a CampaignError is raised at the end instead."""
    os.makedirs(opts.out_dir, exist_ok=True)
    rows_path = os.path.join(opts.out_dir, "rows.jsonl")
    todo, clips, done = _points_to_run(points, clips, opts, rows_path, log, progress)
    bar = _Progress([p.key() for p in todo], len(clips), bool(progress),
                    progress if hasattr(progress, "write") else None, on_utterance)
    args = [(p, clips, opts) for p in todo]
    rec = _Recorder(rows_path, os.path.join(opts.out_dir, "failures.jsonl"), done, bar, log)
    if scheduler:
        _run_on_dask(scheduler, todo, args, bar, rec)
    elif (jobs or 1) <= 1 or len(args) <= 1:
        _run_here(todo, args, bar, rec)
    else:
        _run_in_pool(todo, args, jobs, bar, rec)
    bar.close()
    rows = [r for p in points for r in done.get(p.key(), [])]
    if rec.failed:
        if failures is None:
            raise CampaignError(rows, rec.failed)
        failures.extend(rec.failed)
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
