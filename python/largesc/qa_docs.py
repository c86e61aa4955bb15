#!/usr/bin/env python3
#
# Copyright 2026 gr-largesc authors.
# SPDX-License-Identifier: GPL-3.0-or-later
#
"""QA for the documentation: every command in README.md, examples/README.md
and docs/*.md runs as written, in a shortened form (one short clip, fewer
sweep points and steps), in a scratch folder, in the order the document gives
them (a later command may use an earlier one's output, as a reader's would).

A command that needs what this machine does not have (a GPU, a radio, real
weights) must fail with the message the document quotes next to it. A
command that no rule below knows makes the test fail: a new documented
command comes with its check, so docs and code cannot drift apart.

Commands are the lines of fenced code blocks that start with a program
(`./`, `.venv/bin/`, `largesc-...`), joined over trailing backslashes, and
inline code spans `.venv/bin/TOOL ARGS` with arguments.

One test per document. The documents are run by two ctest entries so that
`ctest -j2` can run them side by side: qa_docs_guides.py runs those named in
GUIDES, this file every other one (a new document lands here by default).
GRC (the `gui` commands) starts first and runs in the background while the
document's other commands go on: it only has to come up and stay up, and
writes nothing a later command reads.
"""

import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
import unittest

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.realpath(__file__)), "..", ".."))
VENV_BIN = os.path.join(ROOT, ".venv", "bin")
DOC_FILES = ["README.md", "examples/README.md"] + sorted(
    os.path.join("docs", f) for f in os.listdir(os.path.join(ROOT, "docs")) if f.endswith(".md"))
PROGRAM = re.compile(r"^(\./[\w.-]+|\.venv/bin/[\w.-]+|largesc-[\w-]+)(\s|$)")
# the documents qa_docs_guides.py runs (about half of the commands' time)
GUIDES = ["docs/corpora.md", "docs/phy.md", "docs/recovery.md", "docs/traces.md"]


def doc_commands(text):
    """Commands of a markdown text, in order."""
    cmds = []
    in_block = False
    pending = ""
    for line in text.splitlines():
        if line.strip().startswith("```"):
            in_block = not in_block
            pending = ""
            continue
        if in_block:
            line = pending + line.strip() if pending else line.strip()
            if line.endswith("\\"):
                pending = line[:-1].rstrip() + " "
                continue
            pending = ""
            line = strip_comment(line)
            if PROGRAM.match(line):
                cmds.append(line)
        else:
            for span in re.findall(r"`([^`]+)`", line):
                span = span.strip()
                if span.startswith(".venv/bin/") and " " in span:
                    cmds.append(span)
    return cmds


def strip_comment(line):
    """Drops a trailing shell comment (a # after whitespace, outside quotes)."""
    try:
        lex = shlex.shlex(line, posix=True, punctuation_chars=False)
        lex.whitespace_split = True
        lex.commenters = "#"
        list(lex)
    except ValueError:
        return line.strip()
    out, quote = [], None
    for i, ch in enumerate(line):
        if quote:
            if ch == quote:
                quote = None
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (i == 0 or line[i - 1].isspace()):
            break
        out.append(ch)
    return "".join(out).strip()


def opt(cmd, name, value):
    """Replaces option `name`'s value in cmd, or appends the option."""
    pat = re.compile(rf"(\s{re.escape(name)})(\s+|=)(\S+)")
    if pat.search(cmd):
        return pat.sub(lambda m: f"{m.group(1)}{m.group(2)}{value}", cmd, count=1)
    return f"{cmd} {name} {value}"


def sim_short(cmd):
    """largesc-sim on one short clip, one loss point, STOI only."""
    for name, value in (("--clips", "1"), ("--max-seconds", "1.5"), ("--metrics", "stoi"),
                        ("--loss", "0.2"), ("--burst", "1"), ("--budget", "1100"),
                        ("--jobs", "1"), ("--baselines", "codec2_700c")):
        cmd = opt(cmd, name, value)
    if "--weights" not in cmd:
        cmd += " --weights random:1"
    if "--scheduler" in cmd:                 # an unreachable scheduler: give up after 1 s, not 10
        cmd += " --scheduler-timeout 1"
    return cmd + " --no-progress"


def sim_trace_short(cmd):
    """largesc-sim replaying a trace: as sim_short without loss points; the
    repository's docs/traces/ files resolve to the checkout."""
    for name, value in (("--clips", "1"), ("--max-seconds", "1.5"), ("--metrics", "stoi"),
                        ("--budget", "1100"), ("--jobs", "1"), ("--baselines", "codec2_700c")):
        cmd = opt(cmd, name, value)
    if "--weights" not in cmd:
        cmd += " --weights random:1"
    if "--scheduler" in cmd:                 # an unreachable scheduler: give up after 1 s, not 10
        cmd += " --scheduler-timeout 1"
    return cmd + " --no-progress"


def sim_corpus_short(cmd):
    """largesc-sim on a corpus (prepare() writes a small LibriSpeech tree and
    Common Voice folder) or on files with a transcripts file: two
    utterances, one loss point, STOI only."""
    if "--corpus " in cmd:
        cmd = opt(cmd, "--utterances", "2")
    for name, value in (("--metrics", "stoi"), ("--loss", "0.2"), ("--burst", "1"), ("--budget", "1100"),
                        ("--jobs", "1"), ("--baselines", "codec2_700c")):
        cmd = opt(cmd, name, value)
    if "--weights" not in cmd:
        cmd += " --weights random:1"
    if "--scheduler" in cmd:                 # an unreachable scheduler: give up after 1 s, not 10
        cmd += " --scheduler-timeout 1"
    return cmd + " --no-progress"


def finetune_short(cmd):
    cmd = opt(cmd, "--steps", "4")
    cmd = opt(cmd, "--ckpt-every", "2")
    cmd = cmd.replace("SPEECH_DIR_OR_FILES...", "speech").replace("SPEECH_DIR", "speech")
    return cmd + " --no-progress"


# (pattern on the command as documented, kind, detail)
#   run:  detail = function(cmd) -> shortened command; must exit 0
#   fail: detail = (function or None, regex): must exit non-zero with output
#         matching regex, and the document must quote the message
#   skip: detail = why this command is not run here (and what checks it)
RULES = [
    (r"^\./setup\.sh", "skip", "CI runs it on a fresh clone (.ci/run) before these tests"),
    (r"^\./run_tests\.sh", "skip", "this test is part of it (.ci/run runs it)"),
    (r"gnuradio-companion", "gui", None),
    (r"largesc-sim .*--scheduler tcp://", "fail",
     (sim_short, r"cannot reach the Dask scheduler at tcp://")),
    (r"largesc-sim .*--trace ", "run", sim_trace_short),
    (r"largesc-sim --corpus speech ", "fail", (None, r"not a corpus layout largesc-sim reads")),
    (r"largesc-sim .*(--corpus|--transcripts) ", "run", sim_corpus_short),
    (r"largesc-sim ", "run", sim_short),
    (r"largesc-finetune .*--model moshi7b --device cuda", "fail",
     (finetune_short, r"--device cuda: torch sees no CUDA GPU on this machine")),
    (r"largesc-finetune SPEECH_DIR_OR_FILES\.\.\. --out runs/me$", "fail",
     (finetune_short, r"--mimi-weights random")),
    (r"largesc-finetune .*--tokens toks\.npy", "run", finetune_short),
    (r"largesc-finetune ", "run", finetune_short),
    (r"largesc-phy-sweep ", "run",
     lambda c: opt(opt(c, "--ebn0", "12:14:2"), "--packets", "40")),
    (r"grcc examples/sim_link_nogui\.grc -o /tmp/fg && .*sim_link_nogui\.py$", "run",
     lambda c: c + " --max-frames 12"),
    (r"sim_link_nogui\.py .*--weights hf", "fail",
     (lambda c: opt(c, "--max-frames", "12"), r"not in the local Hugging Face cache")),
    (r"grcc examples/phy_sim\.grc -o /tmp/phy_sim", "run", lambda c: c),
    (r"/tmp/phy_sim/phy_sim\.py", "run", lambda c: opt(c, "-n", "20")),
    (r"grcc examples/usrp_(rx|tx)\.grc -o /tmp/usrp_(rx|tx)$", "run", lambda c: c),
    (r"/tmp/usrp_(rx|tx)/usrp_(rx|tx)\.py", "skip",
     "needs USRPs (docs/traces.md); qa_phy checks the no-device message, qa_traces the recorder"),
    (r"grcc examples/two_radio/air\.grc examples/two_radio/node\.grc -o /tmp/two_radio$", "run", lambda c: c),
    (r"/tmp/two_radio/two_radio_node\.py .*-r uhd", "fail", (None, r"check the device arguments 'type=b200'")),
    (r"/tmp/two_radio/two_radio_(air|node)\.py", "skip",
     "air and nodes run until stopped, as three processes; qa_radio_io checks the ZMQ radio and the "
     "flowgraphs, benchmarks/two_radio runs the link"),
    (r"grcc examples/usrp_voice_(rx|tx)\.grc -o /tmp/usrp_voice_(rx|tx)$", "run", lambda c: c),
    (r"/tmp/usrp_voice_(rx|tx)/usrp_voice_(rx|tx)\.py", "fail", (None, r"check the device arguments 'type=b200'")),
    (r"grcc flowgraph\.grc -o outdir", "run",
     lambda c: c.replace("flowgraph.grc", "examples/sim_link_nogui.grc")),
    (r"python3 -c \"from gnuradio import largesc\"", "run", lambda c: c),
    # one setting of each loop (1 thread, 1 frame per call): the same code as the
    # documented grid of 2 threads x 3 frames-per-call
    (r"benchmarks/mimi_streaming\.py", "run",
     lambda c: opt(opt(opt(opt(c, "--frames", "3"), "--modes", "exact"), "--threads", "1"), "--fpc", "1")),
    (r"benchmarks/mimi_traced\.py", "run", lambda c: opt(opt(c, "--frames", "2"), "--modes", "fast-int8")),
    # the tiny config only: small100m is the same code at ~100 M parameters
    # (qa_recovery_step checks its layout at tiny sizes)
    (r"benchmarks/recovery_step\.py", "run",
     lambda c: opt(opt(c, "--frames", "3"), "--configs", "tiny")),
    (r"benchmarks/soak_sim_link\.py", "run", lambda c: opt(c, "--minutes", "0.05")),
    (r"benchmarks/tx_clock\.py", "run", lambda c: opt(c, "--minutes", "0.05")),
    (r"benchmarks/two_radio\.py", "skip",
     "three processes in real time for a minute: qa_two_radio runs it for 20 s and checks every count"),
    (r"benchmarks/packet_path\.py", "run",
     lambda c: opt(opt(c, "--frames", "2000"), "--repeat", "1")),
    (r"python/largesc/(\w+/)?qa_\w+\.py", "run",   # one test stands for the file (this runs inside ctest)
     lambda c: re.sub(r"python/largesc/(\w+/)?qa_\w+\.py.*",
                      "python/largesc/qa_uep.py qa_uep_core.test_copy_offset_2", c)),
    (r"tools/mutation_check\.py --list", "run", lambda c: c),
    (r"tools/mutation_check\.py", "skip",
     "a scratch build (about 3 min) and 6-7 min of QA runs: by hand after large changes "
     "(docs/testing.md); --list checks that the script and its mutants load"),
    (r"docs/make_samples\.py", "skip", "rewrites the docs; test_samples_are_current checks them"),
]


def rule_for(cmd):
    for pat, kind, detail in RULES:
        if re.search(pat, cmd):
            return kind, detail
    return None, None


def localise(cmd, work):
    """Runs the repository's programs and files from `work`: .venv/bin,
    examples/ and benchmarks/ resolve to the checkout, /tmp/ to work/tmp/."""
    # /tmp/ first: the checkout itself may live under /tmp
    cmd = re.sub(r"(?<![\w/.])/tmp/", lambda m: os.path.join(work, "tmp") + "/", cmd)
    cmd = re.sub(r"(?<![\w/.])\.venv/bin/", lambda m: VENV_BIN + "/", cmd)
    cmd = re.sub(r"(?<![\w/.])largesc-", lambda m: VENV_BIN + "/largesc-", cmd)
    cmd = re.sub(r"(?<![\w/.])(examples|benchmarks|tools|python|docs/traces)/",
                 lambda m: ROOT + "/" + m.group(1) + "/", cmd)
    return cmd


def prepare(work):
    """What the documents' commands read: talk.wav (2 s of LibriVox speech),
    speech/ (a folder with it), toks.npy (a token sequence), and for
    docs/corpora.md a LibriSpeech tree (LibriSpeech/test-clean), a Common
    Voice folder (cv-corpus-17.0/en) and texts.tsv (transcripts of talk.wav
    and speech/clip0.wav), written as qa_corpus writes them."""
    import numpy as np
    sys.path.insert(0, ROOT)
    from gnuradio.largesc.eval import speech as S
    x = S.load(S.demo_clips(1)[0].path, 16000)[:32000]
    S.save(os.path.join(work, "talk.wav"), x, 16000)
    os.makedirs(os.path.join(work, "speech"), exist_ok=True)
    for i in range(3):  # three files: training and held-out data
        S.save(os.path.join(work, "speech", f"clip{i}.wav"), x, 16000)
    rng = np.random.default_rng(0)
    np.save(os.path.join(work, "toks.npy"), rng.integers(0, 2048, (200, 8)).astype(np.int64))
    for d in ("tmp", "docs/img", "runs"):
        os.makedirs(os.path.join(work, d), exist_ok=True)
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "eval"))
    import qa_corpus
    qa_corpus.write_librispeech(os.path.join(work, "LibriSpeech"))
    qa_corpus.write_commonvoice(os.path.join(work, "cv-corpus-17.0", "en"))
    with open(os.path.join(work, "texts.tsv"), "w") as f:
        f.write("talk.wav\tand mister john dashwood\n"
                "speech/clip0.wav\tand mister john dashwood\n")


def run(cmd, cwd, timeout=600):
    # LARGESC_MIMI_TRACE=0: the commands' short runs build many codecs and code a few frames
    # with each; untraced saves the trace's 0.6 s per codec and gives the same output bit for
    # bit (python/largesc/CMakeLists.txt, largesc_add_qa_untraced)
    env = dict(os.environ, OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1", MPLBACKEND="Agg", LARGESC_MIMI_TRACE="0")
    p = subprocess.run(["bash", "-c", cmd], cwd=cwd, env=env, capture_output=True, text=True,
                       timeout=timeout)
    return p.returncode, p.stdout + p.stderr


class qa_docs(unittest.TestCase):

    def test_every_documented_command_has_a_rule(self):
        unknown = []
        runnable = 0
        for f in DOC_FILES:
            with open(os.path.join(ROOT, f)) as fh:
                for c in doc_commands(fh.read()):
                    kind = rule_for(c)[0]
                    if kind is None:
                        unknown.append(f"{f}: {c}")
                    runnable += kind not in (None, "skip")
        self.assertEqual(unknown, [], "documented commands without a check in qa_docs.RULES")
        # the documents' tests (doc_tests) run these: extraction found them
        self.assertGreater(runnable, 10)
        self.assertEqual([f for f in GUIDES if f not in DOC_FILES], [])

    def test_samples_are_current(self):
        """docs/phy.md's table is what docs/make_samples.py makes of the sweep
        output it quotes (the README's demo sample is regenerated the same
        way: docs/make_samples.py --run-demo demo)."""
        rc, out = run(f"{sys.executable} {ROOT}/docs/make_samples.py --check phy", ROOT)
        self.assertEqual(rc, 0, out)

    def test_extraction(self):
        text = ("x `.venv/bin/largesc-sim --demo` and `.venv/bin/grcc` alone\n"
                "```sh\n./setup.sh   # set up\n.venv/bin/largesc-sim a.wav --loss 0.1 \\\n"
                "    --out o  # c\necho no\n```\n```\nsystem  loss\n```\n")
        self.assertEqual(doc_commands(text), [".venv/bin/largesc-sim --demo", "./setup.sh",
                                              ".venv/bin/largesc-sim a.wav --loss 0.1 --out o"])
        self.assertEqual(opt("x --loss 0,0.1 --out o", "--loss", "0.2"), "x --loss 0.2 --out o")
        self.assertEqual(opt("x --out o", "--steps", "4"), "x --out o --steps 4")
        # a checkout under /tmp keeps its own paths; only the documents' /tmp/ moves
        cmd = localise(".venv/bin/grcc examples/a.grc -o /tmp/fg && .venv/bin/python3 /tmp/fg/a.py", "/W")
        self.assertEqual(localise("x --trace docs/traces/t.trace", "/W"), f"x --trace {ROOT}/docs/traces/t.trace")
        self.assertEqual(cmd, f"{VENV_BIN}/grcc {ROOT}/examples/a.grc -o /W/tmp/fg && "
                              f"{VENV_BIN}/python3 /W/tmp/fg/a.py")


def run_gui(c, work):
    """Runs a GRC command as documented: it must come up and stay up (killed
    after 25 s). Returns a failure message or None. GRC 3.10 (GTK) now and
    then dies by a signal at start-up on a loaded machine (upstream,
    gnuradio#5978; once here in many CI runs): one more start then, as a user
    would, and both must not crash."""
    full = f"timeout 25 xvfb-run -a {localise(c, work)}"
    rc, out = run(full, work)
    if rc > 128 and "Traceback" not in out:      # 128 + signal number
        print(f"note: {c} died at start-up (rc {rc}); starting it once more", file=sys.stderr)
        rc, out = run(full, work)
    if rc != 124 or "Traceback" in out or "Error" in out:
        return f"{c}\n  -> rc {rc}: {out[-1500:]}"
    return None


def run_document(f):
    """Runs the commands of document f in a scratch folder, in order (GRC
    first, in the background). Returns the failures."""
    with open(os.path.join(ROOT, f)) as fh:
        text = fh.read()
    cmds = doc_commands(text)
    failures = []

    def gui(c, work):
        try:
            why = run_gui(c, work)
        except Exception as e:      # noqa: BLE001 - a failure of this command, reported below
            why = f"{c}\n  -> {type(e).__name__}: {e}"
        if why:
            failures.append(why)

    with tempfile.TemporaryDirectory() as work:
        prepare(work)
        guis = [threading.Thread(target=gui, args=(c, work)) for c in cmds
                if rule_for(c)[0] == "gui" and shutil.which("xvfb-run") is not None]
        for t in guis:          # first: they stay up for 25 s while the rest runs
            t.start()
        for c in cmds:
            kind, detail = rule_for(c)
            if kind in (None, "skip", "gui"):
                continue
            if kind == "run":
                full = localise(detail(c), work)
                rc, out = run(full, work)
                if rc != 0:
                    failures.append(f"{c}\n  ran: {full}\n  -> rc {rc}: {out[-1500:]}")
            else:
                shorten, msg = detail
                full = localise(shorten(c) if shorten else c, work)
                rc, out = run(full, work)
                if rc == 0 or not re.search(msg, out):
                    failures.append(f"{c}\n  expected failure matching {msg!r}, "
                                    f"got rc {rc}: {out[-1500:]}")
                elif not re.search(msg, " ".join(text.split())):
                    failures.append(f"{c}\n  fails as expected, but the document does "
                                    f"not quote the message ({msg!r})")
        for t in guis:
            t.join()
    return [f"{f}: {x}" for x in failures]


def doc_tests(files):
    """A TestCase mixin with one test_commands_<document> per document of
    `files` that shows commands: they run (see run_document)."""
    def shows_commands(f):
        with open(os.path.join(ROOT, f)) as fh:
            return bool(doc_commands(fh.read()))

    def make(f):
        def test(self):
            failures = run_document(f)
            self.assertEqual(failures, [], "\n\n".join(failures))
        test.__doc__ = f"the commands of {f} run as documented"
        return test
    return type("doc_tests", (), {"test_commands_" + re.sub(r"\W", "_", f[:-3]): make(f)
                                  for f in files if shows_commands(f)})


class qa_docs_run(doc_tests([f for f in DOC_FILES if f not in GUIDES]), unittest.TestCase):
    pass


if __name__ == "__main__":
    unittest.main()
