#
# Copyright 2026 gr-largesc authors.
# SPDX-License-Identifier: GPL-3.0-or-later
#
"""largesc-sim: speech over a simulated lossy packet link, LargeSC against the
codecs radio people deploy (Codec2, Opus, LPCNet, AAC; EnCodec when its
weights are present), with quality metrics,
a JSON/CSV report and plots.

Examples:
  largesc-sim --demo                                   # real LibriVox speech, small sweep
  largesc-sim talk.wav --loss 0,0.05,0.1,0.2,0.3 --burst 1,3 \\
      --budget 550,1100,2060 --recovery hold --out campaign1
  largesc-sim --demo --scheduler tcp://10.0.0.5:8786   # run the points on a Dask cluster
  largesc-sim --demo --trace docs/traces/phy_awgn_12db.trace   # replay a recorded loss trace
  largesc-sim --corpus LibriSpeech/test-clean --utterances 200 --max-seconds 15   # a corpus
  largesc-sim a.wav b.wav --transcripts texts.tsv        # your files with their transcripts

Each sweep point runs as an independent job (local processes by default).
Finished points are kept in OUT/rows.jsonl: re-running the same command
resumes an interrupted campaign. One campaign per output folder at a time.
Exit status: 0 done; 1 some points failed, or a file could not be written
or read (the rest cancelled); 2 refused (arguments, a folder in use or of
other settings); 128 + N stopped by signal N (130 Ctrl-C, 143 SIGTERM).
See docs/evaluation.md, "When a campaign goes wrong".
"""

import argparse
import contextlib
import dataclasses
import os
import signal
import sys
import threading
import time

from ..codec import weights as W
from ..eval import corpus as C
from ..uep import uep_plan


def floats(s):
    try:
        return [float(x) for x in s.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {s!r}")


def _weights_missing(B, name):
    """The reason, when baseline `name` is unavailable only because no
    weights exist anywhere (a neural codec with no weights named, none
    cached); None otherwise (not installed, a named file missing or bad)."""
    try:
        B.get_baseline(name).check_available()
    except B.BaselineUnavailable as e:
        from ..eval.codecs.encodec import EncodecWeightsMissing
        return str(e) if isinstance(e, EncodecWeightsMissing) else None
    return None


def words(s):
    return [x.strip() for x in s.split(",") if x.strip()]


def select_utterances(a, C):
    """(corpus.Selection, words naming the source) of the parsed arguments
    (docs/corpora.md: whole utterances; what is cut and when)."""
    limits = dict(max_seconds=a.max_seconds, total_seconds=a.total_seconds, seed=a.seed, out_dir=a.out)
    if a.corpus:
        layout, read, utts = C.read_corpus(a.corpus, a.corpus_split)
        name = "LibriSpeech" if layout == C.LIBRISPEECH else "Common Voice"
        return C.choose(utts, a.utterances, cut="never", **limits), f"{name} corpus {read}"
    if a.demo:
        utts = C.demo_utterances()
        if a.utterances:
            return C.choose(utts, a.utterances, cut="fallback", **limits), "demo clips (sampled)"
        if a.clips > len(utts):
            print(f"note: --clips {a.clips}, but the demo has {len(utts)} clips: using all of them",
                  file=sys.stderr)
        return C.choose(utts, a.clips, sample=False, cut="fallback", **limits), "demo clips"
    utts = C.file_utterances(a.inputs, a.transcripts)
    if a.transcripts:
        return C.choose(utts, a.utterances, cut="never", **limits), f"files with transcripts {a.transcripts}"
    return C.choose(utts, a.utterances, cut="longer", **limits), "files without transcripts"


def wer_reference_counts(clips, metrics):
    """{wer_reference label: utterances} when WER is measured, else {}."""
    import collections
    from . import campaign as sim
    return dict(collections.Counter(sim.wer_reference(c) for c in clips)) if "wer" in metrics else {}


REFERENCE_WORDS = {C.REF_CORPUS: "the corpus transcript", C.REF_TRANSCRIPTS: "the --transcripts file",
                   C.REF_WHISPER: "Whisper tiny.en's transcript of the clean input"}


def wer_reference_note(counts):
    """One console line saying what every WER was measured against, from
    wer_reference_counts."""
    if not counts:
        return ""
    parts = [f"{REFERENCE_WORDS.get(k, k)} ({k}) for {n} utterance(s)" for k, n in sorted(counts.items())]
    s = "WER reference: " + "; ".join(parts) + " (row field wer_reference)."
    if C.REF_WHISPER in counts:
        s += (" Against Whisper's own reading of the clean speech, WER measures what the link changes, "
              "not the recogniser's absolute accuracy.")
    return s


def _build_parser():
    """The argparse parser of largesc-sim (its --help is the module doc)."""
    ap = argparse.ArgumentParser(prog="largesc-sim", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("inputs", nargs="*", help="speech files (any rate; wav, flac, mp3, ogg...)")
    ap.add_argument("--demo", action="store_true", help="use real recorded speech shipped by Debian "
                    "(pocketsphinx-testdata, LibriVox clips with transcripts)")
    ap.add_argument("--corpus", default=None, metavar="DIR",
                    help="a speech corpus with transcripts: LibriSpeech (SPEAKER/CHAPTER/*.flac with "
                    "*.trans.txt) or Common Voice (clips/*.mp3 with test.tsv etc.); see docs/corpora.md")
    ap.add_argument("--corpus-split", default="", metavar="NAME",
                    help="Common Voice: the .tsv to read (default test, else dev, validated, train); "
                    "LibriSpeech: a subfolder such as test-clean (default the whole tree)")
    ap.add_argument("--transcripts", default=None, metavar="FILE.tsv",
                    help="transcripts of your speech files: lines PATH<TAB>TEXT (PATH as given, or the "
                    "bare file name); every file needs one. Without: WER against Whisper's transcript "
                    "of the clean input")
    ap.add_argument("--utterances", type=int, default=None, metavar="N",
                    help="sample N whole utterances (seeded by --seed) of the corpus, files or demo "
                    "(default: every one that fits the limits)")
    ap.add_argument("--clips", type=int, default=2, help="demo: the first N clips that fit --max-seconds, "
                    "1..5 (default 2)")
    ap.add_argument("--max-seconds", type=float, default=6.0,
                    help="longest utterance to use (default 6 s; 0 = no limit). Utterances with a "
                    "transcript (corpus, --transcripts, demo) are used whole and longer ones left out; "
                    "files without transcripts are cut to it; see docs/corpora.md")
    ap.add_argument("--total-seconds", type=float, default=0.0,
                    help="stop adding utterances (in the seeded order) before the total would exceed "
                    "this (default 0 = no limit)")
    ap.add_argument("--loss", type=floats, default=None,
                    help="packet loss rates (default 0,0.1,0.3; none when --trace is given)")
    ap.add_argument("--trace", action="append", default=[], metavar="FILE|DIR",
                    help="replay a packet-loss trace (docs/traces.md): one sweep point per file, "
                    "every system sees the same losses in time; repeatable; a folder stands for "
                    "every *.trace in it (largesc-phy-sweep --trace-dir)")
    ap.add_argument("--burst", type=floats, default=[1.0], help="mean burst lengths in packets; 1 = i.i.d. (default 1)")
    ap.add_argument("--budget", "--bitrate", dest="budget", type=floats, default=[1100.0],
                    help="LargeSC token budgets in bit/s, 550..2060 (default 1100); --bitrate is the old name")
    ap.add_argument("--recovery", type=words, default=["hold"],
                    help="LargeSC recovery backends, comma-separated: hold (classical repetition), "
                    "lm (speech LM + LoRA: needs --lm-model or --lm-adapter), moshi (Moshi 7B, CUDA GPU "
                    "and weights), none (default hold)")
    ap.add_argument("--lm-model", default="", help="recovery LM config for 'lm': tiny, small100m, "
                    "moshi7b or a .json file (default: the one --lm-adapter was trained for)")
    ap.add_argument("--lm-checkpoint", default="", help="base LM weights: a .safetensors file "
                    "(largesc-finetune --mode full), random:SEED (untrained), or for 'moshi' hf / "
                    "hf:OWNER/REPO / a local model.safetensors (default: the adapter's base, else "
                    "random:0 for lm, hf for moshi)")
    ap.add_argument("--lm-adapter", default="", help="LoRA adapter written by largesc-finetune "
                    "(PATH.safetensors with PATH.json)")
    ap.add_argument("--recovery-device", default="auto", help="device of the recovery LM: auto, cpu, "
                    "cuda (default auto: cuda when there is one)")
    ap.add_argument("--baselines", type=words, default=None,
                    help="baseline systems, comma-separated: codec2_700c, codec2_1200, codec2_3200, "
                    "opus_6k, opus_24k_fec, lpcnet_1733, aac_10k, aac_16k, aac_24k, encodec_1.5k, "
                    "encodec_3k (default: the default set, each one that can run here; EnCodec "
                    "needs its weights, or runs UNTRAINED when named: docs/evaluation.md); "
                    "'none' for none")
    ap.add_argument("--metrics", type=words, default=None, help="metrics (default: every one available)")
    ap.add_argument("--weights", default=None, help=W.TOOL_WEIGHTS_HELP)
    ap.add_argument("--codec-mode", default="exact", choices=["exact", "eager", "fast", "fast-int8"],
                    help="Mimi streaming path (default exact: upstream tokens, faster kernels; see docs/mimi.md)")
    ap.add_argument("--max-offset", type=int, default=1, help="UEP copy offset D = playout delay in frames (0..2)")
    ap.add_argument("--feedback", action="store_true", help="close the loss feedback loop (ideal return channel)")
    ap.add_argument("--device", default="auto", help="device of the link's Mimi codec: auto, cpu, cuda "
                    "or cuda:N (default auto: cuda when torch sees a GPU); checked before any work")
    ap.add_argument("--seed", type=int, default=1,
                    help="seed of the loss patterns (each utterance its own, the same for every "
                    "system), of --utterances sampling and of untrained models (default 1)")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="parallel local jobs (default: cores)")
    ap.add_argument("--scheduler", default=None, help="Dask scheduler address (tcp://host:8786): run points there")
    ap.add_argument("--scheduler-timeout", type=float, default=10.0, metavar="S",
                    help="seconds to wait for the Dask scheduler to answer (default 10; 0.1..600)")
    ap.add_argument("--out", default="largesc-sim-out", help="output folder (default largesc-sim-out)")
    ap.add_argument("--no-audio", action="store_true", help="do not write output audio")
    ap.add_argument("--no-progress", action="store_true")
    return ap


@dataclasses.dataclass
class _Setup:
    """What the checks of the arguments found or built, before any long work."""
    device: str
    traces: list
    metrics: list
    baselines: list
    baseline_weights: dict
    clips: list
    source: str
    rec_args: dict
    client: object
    weights: object


def _check_source_args(ap, a):
    """The speech source: exactly one, and the options that go with it."""
    sources = [n for n, on in (("speech files", a.inputs), ("--demo", a.demo), ("--corpus", a.corpus)) if on]
    if not sources:
        ap.error("give speech files, --corpus DIR or --demo")
    if len(sources) > 1:
        ap.error(f"give one source of speech: {' or '.join(sources)}")
    if a.transcripts and not a.inputs:
        ap.error("--transcripts is for your own speech files (a corpus and the demo have their own)")
    if a.corpus_split and not a.corpus:
        ap.error("--corpus-split is for --corpus")
    if a.utterances is not None and a.utterances < 1:
        ap.error(f"--utterances must be >= 1, got {a.utterances}")
    if not a.total_seconds >= 0 or a.total_seconds == float("inf"):
        ap.error(f"--total-seconds must be a finite number >= 0 (0 = no limit), got {a.total_seconds}")


def _check_link_args(ap, a):
    """The codec device, token budgets, traces and sweep ranges; expands
    a.trace and fills in the default a.loss. Returns (device, traces)."""
    from . import campaign as sim
    from ..traces import trace as TR
    try:
        device = sim.resolve_device(a.device)
    except sim.DeviceError as e:
        ap.error(str(e))
    for br in a.budget:
        try:
            uep_plan.check_budget(br, largesc_range=True)
        except ValueError as e:
            ap.error(str(e))
    try:
        a.trace = sim.expand_trace_args(a.trace)
    except TR.TraceError as e:
        ap.error(f"--trace: {e}")
    if a.loss is None:
        a.loss = [] if a.trace else [0.0, 0.1, 0.3]
    try:
        traces = sim.load_traces(a.trace)
    except TR.TraceError as e:
        ap.error(f"--trace: {e}")
    for p in a.loss:
        if not 0.0 <= p < 1.0:
            ap.error(f"loss rate {p} must be in [0, 1)")
    for b in a.burst:
        if b < 1.0:
            ap.error(f"mean burst {b} must be >= 1 packet")
    if a.jobs < 1:
        ap.error(f"--jobs must be >= 1, got {a.jobs}")
    if a.max_offset not in (0, 1, 2):
        ap.error(f"--max-offset (UEP copy offset D = playout delay in frames) must be 0, 1 or 2, "
                 f"got {a.max_offset}")
    if a.clips < 1:
        ap.error(f"--clips must be >= 1, got {a.clips}")
    if not a.max_seconds >= 0 or a.max_seconds == float("inf"):
        ap.error(f"--max-seconds must be a finite number >= 0 (0 = no limit), got {a.max_seconds}")
    return device, traces


def _check_metrics(ap, a):
    """The metrics asked for (default: every one available), checked."""
    from ..eval import metrics as M
    metrics = a.metrics or list(M.DEFAULT_METRICS)
    try:
        M.check_metrics(metrics)
    except ValueError as e:
        ap.error(str(e))
    return metrics


def _choose_baselines(ap, a):
    """(baselines, baseline_weights): the default set that can run here, or
    those named, each checked; a neural codec named without weights anywhere
    runs UNTRAINED (random:SEED), with a warning."""
    from ..eval import baselines as B
    baseline_weights = {}
    if a.baselines == ["none"]:
        baselines = []
    elif a.baselines is None:
        avail = B.available_baselines(B.DEFAULT_BASELINES)
        baselines = [b for b in B.DEFAULT_BASELINES if avail[b][0]]
        for b in B.DEFAULT_BASELINES:
            if not avail[b][0]:
                print(f"note: baseline {b} skipped: {avail[b][1]}", file=sys.stderr)
    else:
        baselines = a.baselines
        for b in baselines:
            if b not in B.BASELINES:
                ap.error(f"unknown codec {b!r}; known: {', '.join(B.BASELINES)}")
            avail = B.available_baselines([b])     # only those asked for (EnCodec's reads its weights)
            if not avail[b][0]:
                missing = _weights_missing(B, b)
                if not missing:
                    ap.error(f"codec {b!r} cannot run here: {avail[b][1]}")
                # asked for by name, and no weights anywhere: the one weights
                # rule (docs/mimi.md) - an UNTRAINED model, loudly, labelled
                baseline_weights[b] = f"random:{a.seed}"
                print(W.untrained_warning(missing, f"random:{a.seed}", codec="EnCodec",
                                          system=f"baseline {b}"), file=sys.stderr)
    return baselines, baseline_weights


def _check_out_dir(ap, a):
    """The output folder: made when missing, and writable."""
    try:
        os.makedirs(a.out, exist_ok=True)
        probe = os.path.join(a.out, ".write-test")
        open(probe, "w").close()
        os.remove(probe)
    except OSError as e:
        ap.error(f"output folder {a.out!r} cannot be written: {e}")


def _load_speech(ap, a):
    """The utterances to run, each one read once as a check; prints what
    was chosen. Returns (clips, words naming the source)."""
    from ..eval import speech as S
    try:
        sel, source = select_utterances(a, C)
    except FileNotFoundError as e:
        ap.error(str(e))
    except C.CorpusError as e:
        ap.error(str(e))
    for u in sel.utterances:
        try:
            S.load(u.path, 16000)
        except S.SpeechError as e:
            ap.error(str(e))
    # absolute paths: Dask workers (and pool processes) may run elsewhere in the file system
    clips = [dict(u.clip(), path=os.path.abspath(u.path)) for u in sel.utterances]
    print(f"speech: {source}: {sel.describe()}", file=sys.stderr)
    if sel.cut:
        print(f"note: no demo clip is {a.max_seconds:g} s or shorter: the first {len(clips)} cut to "
              f"{a.max_seconds:g} s, so their transcripts no longer match; WER reference: Whisper's "
              "transcript of the clean cut input", file=sys.stderr)
    return clips, source


def _check_recovery(ap, a):
    """The recovery backends and their LM options, each backend loaded once
    as a check; prints the models used. Returns the recovery arguments."""
    from . import campaign as sim
    from ..recovery import core as RC
    rec_args = dict(model=a.lm_model, checkpoint=a.lm_checkpoint, adapter=a.lm_adapter,
                    device=a.recovery_device)
    probe_opts = sim.Options(recovery_args=rec_args)
    for r in a.recovery:
        if r not in RC.BACKENDS + ("none",):
            ap.error(f"unknown recovery backend {r!r}; use {', '.join(RC.BACKENDS + ('none',))}")
    if any((a.lm_model, a.lm_checkpoint, a.lm_adapter)) and not set(a.recovery) & {"lm", "moshi"}:
        ap.error("--lm-model, --lm-checkpoint and --lm-adapter are for --recovery lm or moshi")
    try:
        recs = sim.check_recoveries(a.recovery, probe_opts)
    except RC.RecoveryError as e:
        ap.error(f"--recovery: {e}")
    for r, desc in recs.items():
        if r not in ("hold", "none"):
            print(f"recovery {r}: model {desc.get('model')}, base {desc.get('checkpoint')}"
                  + (f", adapter {desc['adapter']}" if desc.get("adapter") else "")
                  + ("  [UNTRAINED: plumbing only]" if desc.get("untrained") else ""), file=sys.stderr)
    return rec_args


def _connect(ap, a):
    """(Dask client or None, codec weights): the --scheduler and --weights checks."""
    from . import campaign as sim
    client = None
    if not (0.1 <= a.scheduler_timeout <= 600):
        ap.error(f"--scheduler-timeout must be 0.1..600 seconds, got {a.scheduler_timeout:g}")
    if a.scheduler:
        try:
            client = sim.connect_scheduler(a.scheduler, a.scheduler_timeout)
        except sim.SchedulerUnreachable as e:
            ap.error(str(e))
    try:
        weights = W.tool_weights(a.weights, a.seed)
    except W.WeightsError as e:
        ap.error(str(e))
    return client, weights


def _validate(ap, a, held):
    """Every check of the arguments, before any long work (ap.error on the
    first that fails); builds what the campaign needs from them. Once the
    output folder is checked its campaign lock is taken (held by the
    ExitStack `held`), before anything is written there (cut clips)."""
    from . import campaign as sim
    _check_source_args(ap, a)
    device, traces = _check_link_args(ap, a)
    metrics = _check_metrics(ap, a)
    baselines, baseline_weights = _choose_baselines(ap, a)
    _check_out_dir(ap, a)
    held.enter_context(sim.campaign_lock(a.out))
    clips, source = _load_speech(ap, a)
    rec_args = _check_recovery(ap, a)
    client, weights = _connect(ap, a)
    return _Setup(device=device, traces=traces, metrics=metrics, baselines=baselines,
                  baseline_weights=baseline_weights, clips=clips, source=source, rec_args=rec_args,
                  client=client, weights=weights)


def _campaign_options(a, su):
    """(sim.Options, sweep points) of the checked arguments."""
    from . import campaign as sim
    from ..eval import baselines as B
    opts = sim.Options(weights=su.weights, codec_mode=a.codec_mode, metrics=tuple(su.metrics),
                       max_offset=a.max_offset, feedback=a.feedback, out_dir=a.out,
                       save_audio=not a.no_audio, recovery_args=su.rec_args, device=su.device,
                       baseline_weights=su.baseline_weights)
    points = sim.make_grid(["largesc"] + su.baselines, a.budget, a.loss, a.burst, a.recovery, a.seed,
                           {b: B.get_baseline(b).payload_bps for b in su.baselines}, su.traces)
    return opts, points


def _say(text):
    print(f"largesc-sim: {text}", file=sys.stderr)


def _run(a, su, opts, points):
    """Runs the campaign (local jobs or the Dask cluster, which is closed
    after). Returns (rows, failures, CampaignStopped or None)."""
    from . import campaign as sim
    print(f"largesc-sim: {len(points)} sweep points x {len(su.clips)} utterances = "
          f"{len(points) * len(su.clips)} runs, metrics {', '.join(su.metrics)}, codec on {su.device}, "
          f"{'Dask at ' + a.scheduler if a.scheduler else str(a.jobs) + ' local jobs'} -> {a.out}/",
          file=sys.stderr)
    failures = []
    try:
        rows = sim.run_campaign(points, su.clips, opts, jobs=a.jobs, scheduler=su.client,
                                progress=not a.no_progress, log=lambda s: print(s, file=sys.stderr),
                                failures=failures)
    except sim.CampaignStopped as e:
        _say(f"stopped: {e.reason}; {e.finished} of {e.total} sweep points finished and kept in "
             f"{a.out}/rows.jsonl, the others cancelled; make room (or mend the file) and run the same "
             "command again to resume")
        return e.rows, e.failures, e
    finally:
        if su.client is not None:
            with contextlib.suppress(Exception):
                su.client.close()
    return rows, failures, None


def _write_report(a, rows, config, failures):
    """Writes the report files and plots where space allows: the report
    dict and the plots written; a file that cannot be written is said in
    one line (a report file is whole or absent; a half-written plot is
    removed)."""
    from . import report as R
    rep, plots = None, []
    try:
        rep = R.write_report(rows, config, a.out, failures)
        plots = R.plot_report(rep, a.out)
    except OSError as e:
        if e.filename and not isinstance(e, FileNotFoundError):
            with contextlib.suppress(OSError):
                os.remove(e.filename)
        where = f"cannot write {e.filename}: {e.strerror}" if e.filename else str(e)
        _say(f"report not written in full: {where}")
        return rep or R.build_report(rows, config, failures), None
    return rep, plots


def _report(a, su, points, rows, failures, t0, stopped=None):
    """Writes report.json/csv and the plots, prints the summary and the
    failed points. Returns the exit status (1 when a point failed or the
    campaign stopped)."""
    from . import report as R
    wer_refs = wer_reference_counts(su.clips, su.metrics)
    config = dict(vars(a), weights=su.weights, device=su.device, clips=[c["name"] for c in su.clips],
                  speech_source=su.source, wer_references=wer_refs,
                  points=len(points),
                  traces=[dict(name=n, digest=d, file=f, **st)
                          for (n, d, _, st), f in zip(su.traces, a.trace)])
    if stopped and not rows:
        return 1
    rep, plots = _write_report(a, rows, config, failures)
    if plots is not None:
        print(f"done in {time.time() - t0:.0f} s: {a.out}/report.json, report.csv, summary.csv, "
              f"comparisons.csv, "
              f"{len(plots)} plots in {a.out}/plots/", file=sys.stderr)
    print(R.format_summary(rep))
    note = wer_reference_note(wer_refs)
    if note:
        print(note)
    if failures:
        print(f"\n{len(failures)} of {len(points)} sweep points FAILED (finished points are kept in "
              f"{a.out}/rows.jsonl; re-run the same command to retry only these; reasons also in "
              f"{a.out}/failures.jsonl):", file=sys.stderr)
        for key, why in failures:
            print(f"  {key}: {why}", file=sys.stderr)
    return 1 if failures or stopped else 0


def _sigterm(signum, frame):
    from . import campaign as sim
    raise sim.CampaignInterrupted(signum)


def main(argv=None):
    """largesc-sim: parse and check the arguments, run the campaign, report.
    What goes wrong ends in one line and an exit status (module doc)."""
    from . import campaign as sim
    ap = _build_parser()
    a = ap.parse_args(argv)
    # SIGTERM ends in one line as Ctrl-C does (run_campaign stops its pool and flowgraphs on both)
    old = (signal.signal(signal.SIGTERM, _sigterm) if threading.current_thread() is threading.main_thread()
           else None)
    started = False
    try:
        with contextlib.ExitStack() as held:
            su = _validate(ap, a, held)
            opts, points = _campaign_options(a, su)
            t0 = time.time()
            started = True
            rows, failures, stopped = _run(a, su, opts, points)
            return _report(a, su, points, rows, failures, t0, stopped)
    except sim.CampaignLocked as e:
        _say(f"error: {e}")
        return 2
    except sim.CampaignMismatch as e:       # CampaignFileError too
        _say(f"error: {e}")
        return 2
    except KeyboardInterrupt as e:           # CampaignInterrupted: SIGINT or SIGTERM
        signum = getattr(e, "signum", signal.SIGINT)
        name = signal.Signals(signum).name
        if isinstance(e, sim.CampaignInterrupted) and e.total:
            _say(f"interrupted by {name}: {e.finished} of {e.total} sweep points finished and kept in "
                 f"{a.out}/rows.jsonl; run the same command again to resume")
        elif started:
            _say(f"interrupted by {name}; the finished points are kept in {a.out}/rows.jsonl; run the "
                 "same command again to resume")
        else:
            _say(f"interrupted by {name} before the campaign started; nothing ran")
        return 128 + signum
    except sim.FileFault as e:
        _say(f"stopped: {e}; run the same command again to resume")
        return 1
    finally:
        if old is not None:
            signal.signal(signal.SIGTERM, old)


if __name__ == "__main__":
    sys.exit(main())
