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
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed

import numpy as np

LARGESC = "largesc"
SLOT_BITRATE = 137.5


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

    def key(self):
        k = f"{self.system}|{self.bitrate:g}|{self.loss_rate:g}|{self.mean_burst:g}|{self.recovery}|{self.seed}"
        return k + (f"|trace={self.trace}" if self.trace else "")


def load_traces(paths):
    """[(name, digest, pattern tuple, stats)] of trace files (traces.TraceError
    for one that cannot be read; two files with the same name are refused)."""
    from . import traces as T
    out, names = [], set()
    for p in paths:
        name, digest, pattern = T.trace_identity(p)
        if name in names:
            raise T.TraceError(f"two traces are named {name!r}: rename one (the name labels the results)")
        names.add(name)
        out.append((name, digest, tuple(int(v) for v in pattern), T.loss_stats(pattern)))
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


def make_grid(systems, bitrates, losses, bursts, recoveries, seed, baseline_bitrates, traces=()):
    """Sweep points; the loss pattern seed depends only on the loss setting, so
    every system sees the same channel. Each trace of `traces` (load_traces)
    is one more loss setting: every system replays the same pattern."""
    pts = []
    settings = [(loss, burst, seed * 1000 + li * 10 + bi, "", ())
                for li, loss in enumerate(losses) for bi, burst in enumerate(bursts)]
    for name, digest, pattern, st in traces:
        settings.append((st["loss_rate"], max(st["mean_burst"], 1.0), seed, f"{name}@{digest}", pattern))
    for loss, burst, s, tr, pat in settings:
        for system in systems:
            if system == LARGESC:
                for br in bitrates:
                    for rec in recoveries:
                        pts.append(Point(LARGESC, float(br), float(loss), float(burst), rec, s, tr, pat))
            else:
                pts.append(Point(system, float(baseline_bitrates.get(system, 0)), float(loss),
                                 float(burst), "-", s, tr, pat))
    return pts


def _trace_row(point):
    """The trace fields of a row: name, digest and the pattern's statistics."""
    from . import traces as T
    st = T.loss_stats(point.trace_pattern)
    return dict(trace=point.trace, trace_packets=st["packets"], trace_loss_rate=st["loss_rate"],
                trace_bursts=st["bursts"], trace_mean_burst=st["mean_burst"],
                trace_longest_burst=st["longest_burst"])


def check_bitrate(br):
    if not 550 * 0.99 <= br <= 2060 * 1.01 + 1e-9:
        raise ValueError(f"bit rate {br:g} bit/s is outside LargeSC's 550..2060 bit/s "
                         f"(4..15 token slots of {SLOT_BITRATE} bit/s)")


def recovery_args(backend, opts):
    """token_recovery keyword arguments of a backend: none for hold."""
    if backend in ("hold", "none"):
        return {}
    return {k: v for k, v in (opts.recovery_args or {}).items() if v not in ("", None)}


def check_recoveries(backends, opts):
    """Checks every LargeSC recovery backend of a campaign with its arguments,
    before any work starts; returns {backend: description} (see
    recovery.check_recovery). Raises recovery.RecoveryError."""
    from . import recovery as R
    out = {}
    for b in backends:
        if b == "none":
            out[b] = {"backend": "none", "untrained": False}
            continue
        out[b] = R.check_recovery(b, **recovery_args(b, opts))
    return out


def run_point(point, clips, opts):
    """Runs one sweep point over every clip -> list of result rows (dicts)."""
    from .eval import metrics as M
    from .eval import speech as S
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    rows = []
    for clip in clips:
        ref, sr = S.load(clip["path"], opts.metric_rate), opts.metric_rate
        t0 = time.perf_counter()
        row = dict(point=point.key(), system=point.system, bitrate=point.bitrate,
                   loss_rate=point.loss_rate, mean_burst=point.mean_burst,
                   recovery=point.recovery, seed=point.seed, clip=clip["name"])
        if point.trace:
            row.update(_trace_row(point))
        if point.system == LARGESC:
            from .link import LinkConfig, run_link
            cfg = LinkConfig(budget=point.bitrate, loss_rate=point.loss_rate,
                             mean_burst=max(point.mean_burst, 1.0),
                             loss_model=("trace" if point.trace else
                                         "bernoulli" if point.mean_burst <= 1.0 else "gilbert_elliott"),
                             trace=tuple(point.trace_pattern),
                             seed=point.seed, max_offset=opts.max_offset, recovery=point.recovery,
                             weights=opts.weights, codec_mode=opts.codec_mode, out_rate=sr,
                             feedback=opts.feedback, threads=1,
                             recovery_args=recovery_args(point.recovery, opts))
            res = run_link(ref, sr, cfg)
            deg = res.audio
            c = res.counters
            row.update(untrained=res.untrained or res.recovery_untrained,
                       codec_untrained=res.untrained, recovery_untrained=res.recovery_untrained,
                       token_bitrate=c["token_bitrate"],
                       on_air_bitrate=c["on_air_bitrate"], latency_ms=res.latency_ms,
                       packets_sent=c["packets_sent"], packets_delivered=c["packets_delivered"],
                       packets_dropped=c["packets_dropped_by_channel"],
                       packets_lost_elsewhere=c["packets_lost_elsewhere"],
                       frames_empty=c["frames_empty"], tokens_from_copies=c["tokens_from_copies"])
        else:
            from .eval import baselines as B
            if point.trace:
                loss = B.LossSpec(model="trace", trace=tuple(point.trace_pattern), seed=point.seed)
            else:
                loss = B.LossSpec(loss_rate=point.loss_rate, seed=point.seed,
                                  model="bernoulli" if point.mean_burst <= 1.0 else "gilbert_elliott",
                                  mean_burst=max(point.mean_burst, 1.0))
            res = B.run_baseline(point.system, ref, sr, loss)
            deg = res.audio
            # a neural baseline without its trained weights (EnCodec) runs untrained, labelled
            row.update(untrained=bool(getattr(res, "untrained", False)), token_bitrate=float(res.payload_bps),
                       on_air_bitrate=float(res.on_air_bps), latency_ms=float(res.latency_ms),
                       packets_sent=int(res.packets), packets_delivered=int(res.packets - res.packets_lost),
                       packets_dropped=int(res.packets_lost), packets_lost_elsewhere=0)
        row["run_s"] = round(time.perf_counter() - t0, 3)
        scores = M.evaluate(ref, deg, sr, opts.metrics, text=clip.get("text"), errors="nan")
        row["lag_ms"] = scores.get("lag_ms")  # None when the alignment failed (see metric_errors)
        row.update({f"m_{k}": (None if not np.isfinite(scores[k]) else float(scores[k]))
                    for k in opts.metrics})
        if scores.get("errors"):
            row["metric_errors"] = scores["errors"]
        if opts.save_audio:
            d = os.path.join(opts.out_dir, "audio")
            os.makedirs(d, exist_ok=True)
            name = point.key().replace("|", "_").replace("=", "-").replace("@", "-") + "_" + clip["name"] + ".wav"
            S.save(os.path.join(d, name), deg, sr)
            row["audio"] = os.path.join("audio", name)
        rows.append(row)
    return rows


def _run_point_job(args):
    point, clips, opts = args
    import torch
    torch.set_num_threads(1)
    return point, run_point(point, clips, opts)


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
    (name and a digest of the audio file) and the options."""
    import hashlib
    fp = {"clips": [], "options": {}}
    for c in clips:
        with open(c["path"], "rb") as f:
            digest = hashlib.sha256(f.read()).hexdigest()[:16]
        fp["clips"].append([c["name"], digest, c.get("text")])
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
        return
    with open(path, "w") as f:
        json.dump(fp, f, indent=1)


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


def run_campaign(points, clips, opts, jobs=None, scheduler=None, progress=True, log=print,
                 failures=None):
    """Runs every point not already in out_dir/rows.jsonl. Returns all rows.

    A point that fails does not stop the others, and every finished point is
    written to rows.jsonl the moment it finishes, so nothing finished is lost
    and a re-run runs only what is missing (the failed points included).
    Failed points are written to out_dir/failures.jsonl (this run's) and
    appended to `failures` as (point key, reason); without a `failures` list
    a CampaignError is raised at the end instead."""
    os.makedirs(opts.out_dir, exist_ok=True)
    rows_path = os.path.join(opts.out_dir, "rows.jsonl")
    fail_path = os.path.join(opts.out_dir, "failures.jsonl")
    check_same_campaign(clips, opts, os.path.exists(rows_path))
    done = load_done(rows_path)
    todo = [p for p in points if p.key() not in done]
    if len(todo) < len(points):
        log(f"resuming: {len(points) - len(todo)} of {len(points)} points already in {rows_path}")
    from tqdm import tqdm
    bar = tqdm(total=len(todo), desc="sweep points", unit="pt", disable=not progress, file=sys.stderr)
    args = [(p, clips, opts) for p in todo]
    failed = []
    if os.path.exists(fail_path):
        os.remove(fail_path)

    def record(point, rows):
        with open(rows_path, "a") as f:
            for r in rows:
                f.write(json.dumps(r) + "\n")
        done[point.key()] = rows
        bar.update(1)
        bar.set_postfix_str(point.key())

    def fail(point, exc):
        why = _reason(exc)
        failed.append((point.key(), why))
        with open(fail_path, "a") as f:
            f.write(json.dumps({"point": point.key(), "reason": why}) + "\n")
        log(f"point {point.key()} FAILED: {why}")
        bar.update(1)

    def collect(point, get):
        try:
            p, rows = get()
        except Exception as e:          # the point failed; the campaign goes on
            fail(point, e)
        else:
            record(p, rows)

    if scheduler:
        from dask.distributed import as_completed as dask_completed
        client = scheduler if not isinstance(scheduler, str) else connect_scheduler(scheduler)
        futs = client.map(_run_point_job, args, pure=False)
        by_fut = dict(zip(futs, todo))
        for fut in dask_completed(futs):
            collect(by_fut[fut], fut.result)
    elif (jobs or 1) <= 1 or len(args) <= 1:
        for p, a in zip(todo, args):
            collect(p, lambda a=a: _run_point_job(a))
    else:
        import multiprocessing as mp
        with ProcessPoolExecutor(max_workers=jobs, mp_context=mp.get_context("spawn")) as ex:
            futs = {ex.submit(_run_point_job, a): p for p, a in zip(todo, args)}
            for fut in as_completed(futs):
                collect(futs[fut], fut.result)
    bar.close()
    rows = [r for p in points for r in done.get(p.key(), [])]
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
