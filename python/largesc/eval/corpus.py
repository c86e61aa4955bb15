#
# Copyright 2026 gr-largesc authors.
# SPDX-License-Identifier: GPL-3.0-or-later
#
"""Speech corpora for evaluation campaigns: which utterances a campaign runs
and the transcript each one is scored against.

Sources (see docs/corpora.md):

- a LibriSpeech tree: ``SPEAKER/CHAPTER/UTTID.flac`` with one
  ``SPEAKER-CHAPTER.trans.txt`` per chapter, lines ``UTTID TEXT``;
- a Common Voice release folder: ``clips/*.mp3`` next to ``.tsv`` files with
  (at least) the columns ``path`` and ``sentence`` (test.tsv, dev.tsv,
  validated.tsv, ...);
- your own files, with a transcripts file (``--transcripts``, lines
  ``PATH<TAB>TEXT``) or without one;
- the LibriVox demo clips (speech.demo_clips).

Selection takes whole utterances (``select``): an utterance with a transcript
is never cut, so its transcript stays valid. Where no transcript exists the
WER reference is Whisper's transcript of the clean input (labelled
``whisper-clean-input`` in every row).

Everything here is plain Python; errors are ``CorpusError`` (a ValueError)
naming the file, the line and what is allowed.
"""

import csv
import dataclasses
import os
import random

LIBRISPEECH = "librispeech"
COMMONVOICE = "commonvoice"

# where a row's WER reference transcript came from (row field wer_reference)
REF_CORPUS = "corpus"                  # the corpus's own transcript (LibriSpeech, Common Voice, demo)
REF_TRANSCRIPTS = "transcripts-file"   # --transcripts FILE.tsv
REF_WHISPER = "whisper-clean-input"    # Whisper's transcript of the clean input utterance
REFERENCES = (REF_CORPUS, REF_TRANSCRIPTS, REF_WHISPER)

# Common Voice splits tried in this order when none is named: the held-out
# test set first (what the paper's figures use), then the other full sets
CV_DEFAULT_SPLITS = ("test", "dev", "validated", "train")

LAYOUTS_HELP = ("LibriSpeech (SPEAKER/CHAPTER/UTTID.flac with SPEAKER-CHAPTER.trans.txt, lines "
                "'UTTID TEXT') or Common Voice (clips/*.mp3 next to a .tsv with columns 'path' and "
                "'sentence', such as test.tsv)")


class CorpusError(ValueError):
    """A corpus, transcripts file or selection that cannot be used."""


@dataclasses.dataclass(frozen=True)
class Utterance:
    """One utterance: a whole audio file and its transcript (None: none exists)."""
    name: str                  # unique in a campaign: UTTID, Common Voice clip stem, file stem
    path: str
    text: object = None        # transcript, or None
    reference: str = REF_WHISPER   # where the WER reference comes from (REFERENCES)
    duration: object = None    # seconds, when the corpus lists it (Common Voice clip_durations.tsv)
    #                            or select() has read it from the file

    def duration_s(self):
        """Length in seconds (from the corpus's list, else the file's header)."""
        if self.duration is not None:
            return float(self.duration)
        import soundfile as sf
        try:
            return float(sf.info(self.path).duration)
        except Exception as e:
            raise CorpusError(f"{self.path}: cannot read as audio ({e})") from None

    def clip(self):
        """The clip dict a campaign runs (sim.run_campaign)."""
        return dict(name=self.name, path=self.path, text=self.text, wer_reference=self.reference)


# --------------------------------------------------------------------------
# layouts


def _trans_files(root):
    """Every *.trans.txt under root, sorted."""
    out = []
    for d, dirs, files in os.walk(root):
        dirs.sort()
        out += [os.path.join(d, f) for f in sorted(files) if f.endswith(".trans.txt")]
    return out


def _tsv_files(root):
    return sorted(f for f in os.listdir(root) if f.endswith(".tsv") and os.path.isfile(os.path.join(root, f)))


def detect_layout(root):
    """LIBRISPEECH or COMMONVOICE; CorpusError naming both layouts otherwise."""
    if not os.path.isdir(root):
        raise CorpusError(f"--corpus {root}: no such folder")
    if os.path.isdir(os.path.join(root, "clips")) and _tsv_files(root):
        return COMMONVOICE
    for d, dirs, files in os.walk(root):
        if any(f.endswith(".trans.txt") for f in files):
            return LIBRISPEECH
    seen = sorted(os.listdir(root))[:6]
    raise CorpusError(f"--corpus {root}: not a corpus layout largesc-sim reads; expected {LAYOUTS_HELP}. "
                      f"Found: {', '.join(seen) if seen else 'an empty folder'}")


def read_librispeech(root, split=""):
    """Utterances of a LibriSpeech tree (the whole tree under root, or its
    subfolder `split`, e.g. test-clean), sorted by UTTID. A transcript line
    whose audio file is missing is an error; audio with no transcript line is
    not used."""
    base = os.path.join(root, split) if split else root
    if split and not os.path.isdir(base):
        subs = sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d)))
        raise CorpusError(f"--corpus-split {split}: no folder {base}; folders there: {', '.join(subs) or 'none'}")
    utts, seen = [], {}
    for tf in _trans_files(base):
        d = os.path.dirname(tf)
        with open(tf, encoding="utf-8") as f:
            for i, line in enumerate(f, 1):
                if not line.strip():
                    continue
                parts = line.strip().split(None, 1)
                if len(parts) < 2:
                    raise CorpusError(f"{tf} line {i}: expected 'UTTID TEXT' (LibriSpeech transcript), "
                                      f"got {line.strip()!r}")
                uid, text = parts
                if "/" in uid or os.sep in uid or uid in (".", ".."):
                    raise CorpusError(f"{tf} line {i}: {uid!r} is not an utterance id (SPEAKER-CHAPTER-NNNN)")
                audio = next((os.path.join(d, uid + ext) for ext in (".flac", ".wav")
                              if os.path.isfile(os.path.join(d, uid + ext))), None)
                if audio is None:
                    raise CorpusError(f"{tf} line {i}: utterance {uid} has no audio file "
                                      f"({os.path.join(d, uid + '.flac')} is missing)")
                if uid in seen:
                    raise CorpusError(f"{tf} line {i}: utterance {uid} is listed twice (also in {seen[uid]})")
                seen[uid] = tf
                utts.append(Utterance(uid, audio, " ".join(text.split()), REF_CORPUS))
    if not utts:
        raise CorpusError(f"--corpus {base}: no LibriSpeech transcript (*.trans.txt) with utterances")
    return sorted(utts, key=lambda u: u.name)


def _read_tsv(path):
    """(header, rows with their line numbers) of a tab-separated file without quoting."""
    with open(path, encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    numbered = [(i, r) for i, r in enumerate(rows, 1) if any(c.strip() for c in r)]
    if not numbered:
        return [], []
    return [c.strip() for c in numbered[0][1]], numbered[1:]


def cv_split_file(root, split=""):
    """The Common Voice .tsv a campaign reads: SPLIT.tsv when named, else the
    first of test, dev, validated, train that exists, else the only .tsv with
    columns path and sentence."""
    tsvs = _tsv_files(root)
    if split:
        name = split if split.endswith(".tsv") else split + ".tsv"
        if name not in tsvs:
            raise CorpusError(f"--corpus-split {split}: no {os.path.join(root, name)}; "
                              f"splits there: {', '.join(t[:-4] for t in tsvs)}")
        return os.path.join(root, name)
    for s in CV_DEFAULT_SPLITS:
        if s + ".tsv" in tsvs:
            return os.path.join(root, s + ".tsv")
    usable = [t for t in tsvs if {"path", "sentence"} <= set(_read_tsv(os.path.join(root, t))[0])]
    if len(usable) == 1:
        return os.path.join(root, usable[0])
    if not usable:
        raise CorpusError(f"--corpus {root}: no .tsv there has the columns 'path' and 'sentence' "
                          f"(Common Voice layout); found {', '.join(tsvs)}")
    raise CorpusError(f"--corpus {root}: several splits ({', '.join(t[:-4] for t in usable)}) and none "
                      f"of {', '.join(CV_DEFAULT_SPLITS)}: name one with --corpus-split")


def _cv_durations(root):
    """{clip file name: seconds} from clip_durations.tsv (Common Voice >= 12), or {}."""
    p = os.path.join(root, "clip_durations.tsv")
    if not os.path.isfile(p):
        return {}
    try:
        head, rows = _read_tsv(p)
        ci, di = head.index("clip"), head.index("duration[ms]")
        return {r[ci]: float(r[di]) / 1000.0 for _, r in rows if len(r) > max(ci, di)}
    except (ValueError, IndexError):
        return {}   # an unexpected clip_durations.tsv: read the durations from the files


def read_commonvoice(root, split=""):
    """Utterances of a Common Voice folder (cv_split_file), sorted by clip name."""
    tsv = cv_split_file(root, split)
    head, rows = _read_tsv(tsv)
    missing = [c for c in ("path", "sentence") if c not in head]
    if missing:
        raise CorpusError(f"{tsv}: no column {' or '.join(repr(c) for c in missing)} in the header line "
                          f"(Common Voice .tsv: tab-separated, a header with 'path' and 'sentence'); "
                          f"header is {head}")
    pi, si = head.index("path"), head.index("sentence")
    durations = _cv_durations(root)
    utts, seen = [], {}
    for i, r in rows:
        if len(r) <= max(pi, si):
            raise CorpusError(f"{tsv} line {i}: {len(r)} tab-separated fields, the header has {len(head)}")
        rel, text = r[pi].strip(), " ".join(r[si].split())
        if not rel:
            raise CorpusError(f"{tsv} line {i}: empty 'path'")
        if not text:
            raise CorpusError(f"{tsv} line {i}: clip {rel} has an empty 'sentence'")
        audio = os.path.join(root, "clips", rel)
        if not os.path.isfile(audio):
            raise CorpusError(f"{tsv} line {i}: clip {audio} is missing")
        name = os.path.splitext(os.path.basename(rel))[0]
        if name in seen:
            raise CorpusError(f"{tsv} line {i}: clip {rel} is listed twice (first on line {seen[name]})")
        seen[name] = i
        utts.append(Utterance(name, audio, text, REF_CORPUS, durations.get(os.path.basename(rel))))
    if not utts:
        raise CorpusError(f"{tsv}: no clips listed")
    return sorted(utts, key=lambda u: u.name)


def read_corpus(root, split=""):
    """(layout, the split file or folder read, utterances) of a corpus folder."""
    layout = detect_layout(root)
    if layout == LIBRISPEECH:
        return layout, os.path.join(root, split) if split else root, read_librispeech(root, split)
    return layout, cv_split_file(root, split), read_commonvoice(root, split)


# --------------------------------------------------------------------------
# your own files


def read_transcripts(path):
    """{key: text} of a transcripts file: one line per file, ``PATH<TAB>TEXT``
    (PATH as given on the command line, relative to the transcripts file's
    folder, absolute, or a bare file name); '#' lines and blank lines are
    skipped; a first line 'path<TAB>text' (or sentence) is a header."""
    if not os.path.isfile(path):
        raise CorpusError(f"--transcripts {path}: no such file")
    out = {}
    with open(path, encoding="utf-8") as f:
        for i, line in enumerate(f, 1):
            line = line.rstrip("\r\n")
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            if "\t" not in line:
                raise CorpusError(f"--transcripts {path} line {i}: expected 'PATH<TAB>TEXT' "
                                  f"(a tab between the file and its transcript), got {line[:80]!r}")
            key, text = line.split("\t", 1)
            key, text = key.strip(), " ".join(text.split())
            if not out and key.lower() == "path" and text.lower() in ("text", "sentence", "transcript"):
                continue
            if not key:
                raise CorpusError(f"--transcripts {path} line {i}: empty file name")
            if not text:
                raise CorpusError(f"--transcripts {path} line {i}: {key} has an empty transcript")
            if key in out:
                raise CorpusError(f"--transcripts {path} line {i}: {key} is listed twice")
            out[key] = text
    if not out:
        raise CorpusError(f"--transcripts {path}: no 'PATH<TAB>TEXT' line")
    return out


def file_utterances(paths, transcripts=None):
    """Utterances of your own files, in the order given. With a transcripts
    file every file must have a line there (CorpusError listing those
    without: a mix of transcript and Whisper references in one campaign is
    better asked for explicitly, by leaving --transcripts out); a line is
    matched by its path (relative to the transcripts file) or, for a bare
    file name, by the file's name."""
    table, base = {}, ""
    if transcripts:
        table, base = read_transcripts(transcripts), os.path.dirname(os.path.abspath(transcripts))
    by_path = {os.path.realpath(os.path.join(base, k)): t for k, t in table.items()}
    by_name = {k: t for k, t in table.items() if os.sep not in k and "/" not in k}
    utts, names, lacking = [], {}, []
    for p in paths:
        if not os.path.isfile(p):
            raise CorpusError(f"{p}: no such file")
        name = os.path.splitext(os.path.basename(p))[0]
        if name in names:
            raise CorpusError(f"two input files are named {name!r} ({names[name]} and {p}): the name labels "
                              "rows and output audio; rename one")
        names[name] = p
        if transcripts:
            text = by_path.get(os.path.realpath(p), by_name.get(os.path.basename(p)))
            if text is None:
                lacking.append(p)
            utts.append(Utterance(name, p, text, REF_TRANSCRIPTS))
        else:
            utts.append(Utterance(name, p, None, REF_WHISPER))
    if lacking:
        raise CorpusError(f"--transcripts {transcripts}: no line for {len(lacking)} input file(s): "
                          + ", ".join(lacking[:5]) + (" ..." if len(lacking) > 5 else "")
                          + " (a line is 'PATH<TAB>TEXT', PATH as given or the bare file name; leave "
                          "--transcripts out to score every file against Whisper's transcript of its clean input)")
    return utts


def demo_utterances():
    """The five LibriVox demo clips (speech.demo_clips) as utterances, by name."""
    from .speech import demo_clips
    return [Utterance(c.name, c.path, c.text, REF_CORPUS) for c in demo_clips()]


# --------------------------------------------------------------------------
# selection


@dataclasses.dataclass
class Selection:
    utterances: list          # chosen, sorted by name
    passed_over: int = 0      # longer than max_seconds, left out
    pool: int = 0             # utterances the source offered
    total_s: float = 0.0
    cut: bool = False         # the fallback of cut_or_select: cut to max_seconds

    def describe(self):
        s = f"{len(self.utterances)} of {self.pool} utterances, {self.total_s:.1f} s in all"
        if self.passed_over:
            s += f"; {self.passed_over} longer than --max-seconds passed over"
        return s


def select(utts, count=None, max_seconds=0.0, total_seconds=0.0, seed=1, sample=None):
    """Whole utterances of `utts`, never cut.

    Utterances longer than `max_seconds` (0: no limit) are passed over. With
    `sample` (default: when `count` or `total_seconds` is given) the order is
    a shuffle seeded by `seed`, otherwise by name; utterances are taken in
    that order until `count` are chosen or the next one would take the total
    over `total_seconds` (0: no limit). The result is sorted by name. The
    seeded shuffle makes the choice a uniform sample of the utterances that
    fit, the same for the same seed and corpus."""
    if count is not None and count < 1:
        raise CorpusError(f"--utterances must be >= 1, got {count}")
    if not max_seconds >= 0 or not total_seconds >= 0:
        raise CorpusError("duration limits must be >= 0 seconds (0 = no limit)")
    order = sorted(utts, key=lambda u: u.name)
    if sample is None:
        sample = bool(count) or bool(total_seconds)
    if sample:
        random.Random(seed).shuffle(order)
    chosen, over, total = [], 0, 0.0
    for u in order:
        if count and len(chosen) >= count:
            break
        d = u.duration_s()
        if max_seconds and d > max_seconds:
            over += 1
            continue
        if total_seconds and total + d > total_seconds:
            break
        chosen.append(u if u.duration is not None else dataclasses.replace(u, duration=d))  # read once
        total += d
    return Selection(sorted(chosen, key=lambda u: u.name), over, len(utts), total)


def cut_to(utt, seconds, out_dir, sr=16000):
    """A copy of `utt` cut to its first `seconds` (a 16 kHz WAV in
    out_dir/clips/NAME.wav) with no transcript: the WER reference of a cut
    utterance is Whisper's transcript of the clean cut input."""
    from . import speech as S
    x = S.load(utt.path, sr)
    path = os.path.join(out_dir, "clips", utt.name + ".wav")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    S.save(path, x[:int(seconds * sr)], sr)
    return Utterance(utt.name, path, None, REF_WHISPER, min(seconds, len(x) / sr))


def check_names(utts):
    """Names label rows and output files: they must be unique."""
    seen = {}
    for u in utts:
        if u.name in seen:
            raise CorpusError(f"two utterances are named {u.name!r} ({seen[u.name]} and {u.path}): "
                              "the name labels rows and output audio")
        seen[u.name] = u.path
    return utts


def choose(utts, count=None, max_seconds=0.0, total_seconds=0.0, seed=1, sample=None,
           cut="never", out_dir=None):
    """The utterances a campaign runs: ``select`` plus what to do with
    utterances longer than `max_seconds`, by source (docs/corpora.md):

    - cut="never" (a corpus, files with transcripts): whole utterances only;
      when none fits, CorpusError saying how long the shortest is;
    - cut="longer" (your files without transcripts: there is no transcript to
      invalidate): a longer file is cut to `max_seconds` (cut_to);
    - cut="fallback" (the demo): whole clips; only when no clip fits are the
      first ones cut (cut_to: WER against Whisper's transcript of the cut),
      Selection.cut says so.
    Cut copies go to out_dir/clips/."""
    if cut not in ("never", "longer", "fallback"):
        raise ValueError(f"cut must be never, longer or fallback, got {cut!r}")
    check_names(utts)
    if cut == "longer":
        sel = select(utts, count, 0.0, total_seconds, seed, sample)
        if max_seconds:
            sel.utterances = [cut_to(u, max_seconds, out_dir) if u.duration_s() > max_seconds else u
                              for u in sel.utterances]
            sel.total_s = sum(u.duration_s() for u in sel.utterances)
    else:
        sel = select(utts, count, max_seconds, total_seconds, seed, sample)
        if not sel.utterances and cut == "fallback" and max_seconds:
            first = select(utts, count, 0.0, 0.0, seed, sample).utterances
            sel = Selection([cut_to(u, max_seconds, out_dir) for u in first], 0, len(utts), 0.0, True)
            sel.total_s = sum(u.duration_s() for u in sel.utterances)
    if not sel.utterances:
        shortest = min(u.duration_s() for u in utts)
        if max_seconds and shortest > max_seconds:
            raise CorpusError(f"no utterance is {max_seconds:g} s or shorter (the shortest of {len(utts)} is "
                              f"{shortest:.2f} s); utterances are used whole so that their transcripts "
                              "stay valid: raise --max-seconds (0 = no limit)")
        raise CorpusError(f"no utterance fits --total-seconds {total_seconds:g} (the first one in the "
                          "seeded order is longer): raise it, or use --utterances")
    return sel
