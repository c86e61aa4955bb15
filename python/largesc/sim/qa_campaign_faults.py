#!/usr/bin/env python3
#
# Copyright 2026 gr-largesc authors.
# SPDX-License-Identifier: GPL-3.0-or-later
#
"""QA for what a largesc-sim campaign promises when things go wrong (issue
24; docs/evaluation.md, "When a campaign goes wrong"), with real processes,
signals and file-size limits: one campaign per output folder, a point done
only with a row for every utterance, an incomplete last line of rows.jsonl
set aside, Ctrl-C / SIGTERM / kill -9 (no traceback, no hang, no worker left
behind), a full disk (RLIMIT_FSIZE: the kernel's EFBIG, SIGXFSZ ignored as
Python does), unreadable campaign.json and --trace files. Resuming after a
fault gives the same values as an uninterrupted run.

Kept cheap: Codec2 points on two 1 s clips for the resume cases (in this
process), one untrained LargeSC point (random:1, 1 s) where a running
flowgraph or a busy pool worker is the case. The waits below only detect
hangs; their bounds are far above what the cases need."""

import contextlib
import io
import json
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time

from gnuradio import gr_unittest

from gnuradio.largesc.eval import speech as S
from gnuradio.largesc.sim import campaign as sim
from gnuradio.largesc.sim.cli import main as cli_main

CLI = "import sys; from gnuradio.largesc.sim.cli import main; sys.exit(main())"
HANG_S = 120        # a command that has not ended by then hangs
GONE_S = 10         # workers must be gone this long after their parent at the latest


def run_cli(*args):
    """largesc-sim in this process: (exit status, stderr)."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            rc = cli_main(list(args))
        except SystemExit as e:
            rc = e.code
    return rc, err.getvalue()


def said(err):
    """The lines largesc-sim says about how it ended (its own lines, less
    the one announcing the campaign)."""
    return [line for line in err.splitlines()
            if line.startswith("largesc-sim: ") and " sweep points x " not in line]


def small_demo(out, *extra):
    """One demo utterance (7 s, whole: a LargeSC point runs long enough to
    be caught running), an untrained LargeSC point and Codec2 700C."""
    return ["--demo", "--clips", "1", "--max-seconds", "0", "--weights", "random:1", "--loss", "0",
            "--baselines", "codec2_700c", "--metrics", "stoi", "--no-progress", "--out", out, *extra]


def start_cli(args, d):
    """largesc-sim as its own process (a new session, as a terminal's job:
    its process group gets a Ctrl-C); output into files, since orphaned
    workers would hold pipes open. Returns (Popen, stderr path)."""
    err = os.path.join(d, "stderr.txt")
    with open(err, "w") as e, open(os.path.join(d, "stdout.txt"), "w") as o:
        p = subprocess.Popen([sys.executable, "-c", CLI, *args], stdout=o, stderr=e, start_new_session=True)
    return p, err


def read(path):
    with open(path, errors="replace") as f:
        return f.read()


def descendants(pid):
    """Every process below `pid` (from /proc)."""
    kids = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            kids.setdefault(ppid, []).append(int(d))
    out, todo = [], [pid]
    while todo:
        for k in kids.get(todo.pop(), ()):
            out.append(k)
            todo.append(k)
    return out


def alive(pids):
    """Those of `pids` still running (a zombie has ended)."""
    out = []
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                if f.read().rsplit(")", 1)[1].split()[0] != "Z":
                    out.append(pid)
        except OSError:
            pass
    return out


def flowgraph_running(pid):
    """True while process `pid` runs a LargeSC link flowgraph: GNU Radio
    names each block's thread after the block (paced_audio_source here)."""
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return False
    for t in tasks:
        with contextlib.suppress(OSError):
            if read(f"/proc/{pid}/task/{t}/comm").startswith("paced_audio"):
                return True
    return False


def wait_until(cond, p, what, timeout=HANG_S):
    end = time.monotonic() + timeout
    while not cond():
        if p is not None and p.poll() is not None:
            return False
        if time.monotonic() > end:
            raise AssertionError(f"{what}: not within {timeout} s")
        time.sleep(0.1)
    return True


def has_row(out):
    path = os.path.join(out, "rows.jsonl")
    return os.path.exists(path) and os.path.getsize(path) > 0


def lines(path):
    with open(path) as f:
        return f.read().splitlines(keepends=True)


def values(rows):
    """Rows without their run time: what must not change when resuming."""
    return [{k: v for k, v in r.items() if k != "run_s"} for r in rows]


@contextlib.contextmanager
def file_size_limit(nbytes):
    """Files of this process cannot grow past `nbytes` (a full disk as the
    kernel gives it: EFBIG; Python ignores SIGXFSZ)."""
    assert signal.getsignal(signal.SIGXFSZ) == signal.SIG_IGN
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (nbytes, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))


class qa_campaign_faults(gr_unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        """The uninterrupted campaign every resume is compared with: two
        Codec2 modes x two loss rates (4 points) over two 1 s utterances."""
        cls.tmp = tempfile.TemporaryDirectory()
        x = S.load(S.demo_clips(1)[0].path, 16000)
        cls.clips = []
        for i in range(2):
            path = os.path.join(cls.tmp.name, f"u{i}.wav")
            S.save(path, x[i * 16000:(i + 1) * 16000], 16000)
            cls.clips.append(dict(name=f"u{i}", path=path, text=None))
        cls.pts = sim.make_grid(["codec2_700c", "codec2_1200"], [], [0.0, 0.2], [1.0], [], 3,
                                {"codec2_700c": 700, "codec2_1200": 1200})
        cls.ref_dir = os.path.join(cls.tmp.name, "ref")
        cls.ref = sim.run_campaign(cls.pts, cls.clips, cls.opts(cls.ref_dir), jobs=1, progress=False,
                                   log=lambda s: None)
        assert len(cls.ref) == 8

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    @staticmethod
    def opts(out, audio=False):
        return sim.Options(metrics=("stoi",), out_dir=out, save_audio=audio)

    def folder(self, name, rows=None, campaign=True):
        """A copy of the reference folder: campaign.json, and rows.jsonl as
        given (text), or the reference's."""
        d = os.path.join(self.tmp.name, name)
        os.makedirs(d)
        if campaign:
            shutil.copy(os.path.join(self.ref_dir, "campaign.json"), d)
        if rows is None:
            shutil.copy(os.path.join(self.ref_dir, "rows.jsonl"), d)
        else:
            with open(os.path.join(d, "rows.jsonl"), "w") as f:
                f.write(rows)
        return d

    def resume(self, d, logs=None, ran=None, **kw):
        """run_campaign on folder d; (point key, utterance indices or None) of
        each point run are appended to `ran`."""
        orig = sim._run_point_job

        def spy(a):
            ran.append((a[0].key(), a[3] if len(a) > 3 else None))
            return orig(a)
        sim._run_point_job = spy if ran is not None else orig
        try:
            return sim.run_campaign(self.pts, self.clips, self.opts(d, **kw), jobs=1, progress=False,
                                    log=(logs.append if logs is not None else lambda s: None))
        finally:
            sim._run_point_job = orig

    # ---- item 2: a point is done only with every utterance; half a line

    def test_point_missing_an_utterance_runs_it(self):
        """A point with a row for only one of its two utterances is not done:
        the resume runs that utterance alone, and the rows equal the
        uninterrupted run's."""
        ref = lines(os.path.join(self.ref_dir, "rows.jsonl"))
        d = self.folder("partial_point", "".join(ref[:5]))   # point 3 has u0 only, point 4 nothing
        logs, ran = [], []
        rows = self.resume(d, logs, ran)
        self.assertEqual(ran, [(self.pts[2].key(), (1,)), (self.pts[3].key(), None)])
        self.assertIn("resuming: 2 of 4 points already in", logs[0])
        self.assertIn("1 more with only some of their utterances: running the 1 missing", logs[0])
        self.assertEqual(values(rows), values(self.ref))
        with open(os.path.join(d, "rows.jsonl")) as f:
            self.assertEqual(values(json.loads(x) for x in f), values(self.ref))

    def test_incomplete_last_line_set_aside_then_resumed(self):
        """Half a JSON line at the end of rows.jsonl (what a crash or a full
        disk leaves) is set aside in rows.jsonl.set-aside with a warning,
        never read as a row nor dropped unsaid; its utterance runs again."""
        ref = lines(os.path.join(self.ref_dir, "rows.jsonl"))
        half = ref[5][:len(ref[5]) // 2]
        d = self.folder("half_line", "".join(ref[:5]) + half)
        logs, ran = [], []
        rows = self.resume(d, logs, ran)
        aside = os.path.join(d, sim.SET_ASIDE)
        self.assertEqual(read(aside), half + "\n")
        warn = [s for s in logs if s.startswith("warning:")]
        self.assertEqual(len(warn), 1)
        self.assertIn(f"ended in an incomplete line ({len(half)} bytes", warn[0])
        self.assertIn(aside, warn[0])
        self.assertEqual(ran, [(self.pts[2].key(), (1,)), (self.pts[3].key(), None)])
        self.assertEqual(values(rows), values(self.ref))
        with open(os.path.join(d, "rows.jsonl")) as f:
            self.assertEqual(values(json.loads(x) for x in f), values(self.ref))

    def test_bad_line_before_the_end_refused(self):
        """A line that is not a row before the last is no crash's doing: the
        folder is refused in one line naming the line; nothing is changed."""
        ref = lines(os.path.join(self.ref_dir, "rows.jsonl"))
        text = "".join(ref[:2]) + "[1, 2]\n" + "".join(ref[2:])
        d = self.folder("bad_line", text)
        with self.assertRaisesRegex(sim.CampaignFileError, r"rows.jsonl line 3 is not a row"):
            self.resume(d)
        self.assertEqual(read(os.path.join(d, "rows.jsonl")), text)

    # ---- item 4: a full disk (file-size limit)

    def test_disk_full_writing_rows(self):
        """rows.jsonl cannot grow past two points: the campaign stops at the
        third with the file and the cause, the fourth is cancelled, no
        partial line is left, and the resume gives the uninterrupted values."""
        ref = lines(os.path.join(self.ref_dir, "rows.jsonl"))
        two = sum(len(x.encode()) for x in ref[:4])
        d = self.folder("disk_full_rows", "")
        os.remove(os.path.join(d, "rows.jsonl"))
        os.remove(os.path.join(d, "campaign.json"))
        ran = []
        with file_size_limit(two + len(ref[4].encode()) // 2):
            with self.assertRaises(sim.CampaignStopped) as cm:
                self.resume(d, ran=ran)
        e = cm.exception
        self.assertEqual(e.reason, f"cannot write {os.path.join(d, 'rows.jsonl')}: [Errno 27] File too large")
        self.assertEqual((e.finished, e.total), (2, 4))
        self.assertEqual([k for k, _ in ran], [p.key() for p in self.pts[:3]])   # the 4th cancelled
        self.assertEqual(values(e.rows), values(self.ref[:4]))
        text = read(os.path.join(d, "rows.jsonl"))     # whole points only, no partial line
        self.assertTrue(text.endswith("\n"))
        self.assertEqual(values(json.loads(x) for x in text.splitlines()), values(self.ref[:4]))
        ran = []
        self.assertEqual(values(self.resume(d, ran=ran)), values(self.ref))
        self.assertEqual([k for k, _ in ran], [p.key() for p in self.pts[2:]])

    def test_disk_full_writing_audio(self):
        """A WAV that cannot be written stops the campaign naming it and the
        cause (not soundfile's "System error"), leaves no partial or empty
        WAV, and cancels the other points instead of failing each one."""
        d = os.path.join(self.tmp.name, "disk_full_audio")
        ran = []
        with file_size_limit(20000):           # campaign.json fits, a 1 s WAV (32 kB) does not
            with self.assertRaises(sim.CampaignStopped) as cm:
                self.resume(d, ran=ran, audio=True)
        wav = os.path.join(d, "audio", self.pts[0].key().replace("|", "_") + "_u0.wav")
        self.assertEqual(cm.exception.reason, f"cannot write {wav}: [Errno 27] File too large")
        self.assertEqual(len(ran), 1)
        self.assertEqual(os.listdir(os.path.join(d, "audio")), [])
        self.assertFalse(os.path.exists(os.path.join(d, "failures.jsonl")))

    def test_unreadable_speech_file_stops(self):
        """A speech file that went away after the checks stops the campaign
        naming it, instead of failing every point the same way."""
        d = os.path.join(self.tmp.name, "unreadable")
        os.makedirs(d)
        clips = [dict(c, path=shutil.copy(c["path"], d)) for c in self.clips]
        ran = []
        orig = sim._run_point_job

        def first_removes_it(a):
            if not ran:
                os.remove(clips[1]["path"])
            ran.append(a[0].key())
            return orig(a)
        sim._run_point_job = first_removes_it
        try:
            with self.assertRaises(sim.CampaignStopped) as cm:
                sim.run_campaign(self.pts, clips, self.opts(os.path.join(d, "o")), jobs=1, progress=False,
                                 log=lambda s: None)
        finally:
            sim._run_point_job = orig
        self.assertEqual(cm.exception.reason, f"{clips[1]['path']}: no such file")
        self.assertEqual(ran, [self.pts[0].key()])
        self.assertEqual((cm.exception.finished, cm.exception.rows), (0, []))

    def test_disk_full_at_start_is_one_line(self):
        """largesc-sim whose campaign.json cannot be written: one line naming
        it and the cause, exit status 1, no traceback, no half file."""
        d = os.path.join(self.tmp.name, "disk_full_cli")
        with file_size_limit(100):
            rc, err = run_cli(*small_demo(d, "--jobs", "1"))
        self.assertEqual(rc, 1, err[-2000:])
        self.assertNotIn("Traceback", err)
        self.assertEqual(said(err), [
            f"largesc-sim: stopped: cannot write {os.path.join(d, 'campaign.json')}: [Errno 27] File too "
            f"large; 0 of 2 sweep points finished and kept in {d}/rows.jsonl, the others cancelled; make "
            "room (or mend the file) and run the same command again to resume"])
        self.assertEqual(sorted(f for f in os.listdir(d) if f != "campaign.lock"), [])

    # ---- items 1, 5: files that are not what they should be

    def test_campaign_json_not_a_record_is_one_line(self):
        """campaign.json empty, binary or another JSON type, beside rows:
        refused in one line naming it (exit 2), rows.jsonl untouched."""
        row = json.dumps(self.ref[0]) + "\n"
        for content, why in ((b"", "it is empty"), (b"\x89PNG\r\n\x1a\n\x00\xff\xfe", "it is binary"),
                             (b"[1, 2]", "it holds a JSON list"),
                             (b'{"clips": 1}', "it holds a JSON object without clips and options")):
            with self.subTest(content=content):
                d = self.folder(f"cj{len(content)}", row, campaign=False)
                with open(os.path.join(d, "campaign.json"), "wb") as f:
                    f.write(content)
                rc, err = run_cli(*small_demo(d, "--jobs", "1"))
                self.assertEqual(rc, 2, err[-2000:])
                self.assertNotIn("Traceback", err)
                self.assertEqual(len(said(err)), 1, err[-2000:])
                self.assertIn(f"error: {os.path.join(d, 'campaign.json')} cannot be read: {why}", said(err)[0])
                self.assertEqual(read(os.path.join(d, "rows.jsonl")), row)

    def test_rows_without_campaign_json_refused(self):
        """Rows with no campaign.json: their settings are unknown, so the run
        is refused in one line (not resumed under a new campaign.json)."""
        d = self.folder("no_cj", json.dumps(self.ref[0]) + "\n", campaign=False)
        rc, err = run_cli(*small_demo(d, "--jobs", "1"))
        self.assertEqual(rc, 2, err[-2000:])
        self.assertEqual(said(err), [f"largesc-sim: error: {d} holds rows (rows.jsonl) but no campaign.json: "
                                     "the settings they were made with are unknown, and resuming could mix "
                                     "rows of different settings. Use another output folder, or delete "
                                     f"{d}/rows.jsonl to start over there"])
        self.assertFalse(os.path.exists(os.path.join(d, "campaign.json")))

    def test_trace_file_not_a_trace_is_one_line(self):
        """--trace files that are empty, binary or JSON: one line naming the
        file (exit 2), no traceback."""
        d = os.path.join(self.tmp.name, "traces")
        os.makedirs(d)
        for name, content, why in (("empty", b"", "holds no packets"),
                                   ("binary", b"\x1f\x8b\x08\x00\xff\xfe\x00\x01", "is binary"),
                                   ("nul", b"0 1\x00\x00", "is binary"),
                                   ("list", b"[0, 1, 0]", "holds JSON, not a trace"),
                                   ("object", b'{"fates": [0, 1]}', "holds JSON, not a trace")):
            with self.subTest(name=name):
                path = os.path.join(d, name + ".trace")
                with open(path, "wb") as f:
                    f.write(content)
                rc, err = run_cli(*small_demo(os.path.join(d, "o"), "--trace", path))
                self.assertEqual(rc, 2, err[-2000:])
                self.assertNotIn("Traceback", err)
                self.assertEqual(len(said(err)), 1, err[-2000:])
                self.assertIn("error: --trace: ", said(err)[0])
                self.assertIn(path, said(err)[0])
                self.assertIn(why, said(err)[0])

    # ---- items 1, 3: real processes and signals

    def test_ctrl_c_stops_the_pool_and_a_second_campaign_is_refused(self):
        """While a campaign runs on two local jobs the same command into the
        same folder is refused in one line naming it. Then Ctrl-C (SIGINT
        to its process group, as a terminal sends it) stops it: one line
        saying what finished and how to resume, exit 130, no traceback,
        every worker gone; the finished point is kept whole."""
        d = os.path.join(self.tmp.name, "ctrl_c")
        os.makedirs(d)
        out = os.path.join(d, "o")
        p, err_path = start_cli(small_demo(out, "--jobs", "2"), d)
        try:
            self.assertTrue(wait_until(lambda: has_row(out), p, "first point"), read(err_path)[-3000:])
            kids = descendants(p.pid)
            self.assertGreaterEqual(len(kids), 2)      # two workers (and the resource tracker)
            # the same command meanwhile: refused, naming the running one
            rows_before = read(os.path.join(out, "rows.jsonl"))
            rc, err = run_cli(*small_demo(out, "--jobs", "2"))
            self.assertEqual(rc, 2, err[-2000:])
            self.assertEqual(len(said(err)), 1, err[-2000:])
            self.assertRegex(said(err)[0], rf"^largesc-sim: error: {re.escape(out)} is in use by another campaign "
                                           rf"\(pid {p.pid} on .*, started .*--demo.*\); wait for it to end, "
                                           "or use another --out$")
            self.assertEqual(read(os.path.join(out, "rows.jsonl")), rows_before)
            os.killpg(p.pid, signal.SIGINT)
            p.wait(HANG_S)
        finally:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
        err = read(err_path)
        self.assertEqual(p.returncode, 130, err[-3000:])
        self.assertNotIn("Traceback", err)
        self.assertNotIn("KeyboardInterrupt", err)
        self.assertEqual(said(err), [f"largesc-sim: interrupted by SIGINT: 1 of 2 sweep points finished and kept "
                                     f"in {out}/rows.jsonl; run the same command again to resume"])
        wait_until(lambda: not alive(kids), None, "workers after the campaign ended", GONE_S)
        (row,) = [json.loads(x) for x in lines(os.path.join(out, "rows.jsonl"))]
        # the kept point has the values of an uninterrupted run of it
        from gnuradio.largesc.eval import corpus as C
        (point,) = sim.make_grid(["codec2_700c"], [], [0.0], [1.0], [], 1, {"codec2_700c": 700})
        want = sim.run_point(point, [C.demo_utterances()[0].clip()], self.opts(os.path.join(d, "x")))
        self.assertEqual(values([{k: v for k, v in row.items() if k != "audio"}]), values(want))

    def test_sigterm_stops_a_running_flowgraph(self):
        """SIGTERM while the LargeSC flowgraph runs in the campaign's own
        process (--jobs 1): the flowgraph is stopped and waited for, one
        line, exit 143, no traceback, no hang."""
        d = os.path.join(self.tmp.name, "sigterm")
        os.makedirs(d)
        out = os.path.join(d, "o")
        p, err_path = start_cli(small_demo(out, "--jobs", "1"), d)
        try:
            self.assertTrue(wait_until(lambda: flowgraph_running(p.pid), p, "LargeSC flowgraph"),
                            read(err_path)[-3000:])
            p.send_signal(signal.SIGTERM)
            p.wait(HANG_S)
        finally:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
        err = read(err_path)
        self.assertEqual(p.returncode, 143, err[-3000:])
        self.assertNotIn("Traceback", err)
        self.assertEqual(said(err), [f"largesc-sim: interrupted by SIGTERM: 0 of 2 sweep points finished and kept "
                                     f"in {out}/rows.jsonl; run the same command again to resume"])
        self.assertFalse(has_row(out))

    def test_kill9_of_the_campaign_takes_its_workers(self):
        """kill -9 of largesc-sim: its pool workers (and the resource
        tracker) end with it instead of living on as orphans; the folder's
        lock goes with the process, rows.jsonl holds whole lines only."""
        d = os.path.join(self.tmp.name, "kill9")
        os.makedirs(d)
        out = os.path.join(d, "o")
        p, err_path = start_cli(small_demo(out, "--jobs", "2"), d)
        try:
            self.assertTrue(wait_until(lambda: has_row(out), p, "first point"), read(err_path)[-3000:])
            kids = descendants(p.pid)
            self.assertGreaterEqual(len(kids), 2)
            p.kill()
            p.wait(HANG_S)
            wait_until(lambda: not alive(kids), None, f"workers {alive(kids)} after kill -9 of their parent",
                       GONE_S)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(p.pid, signal.SIGKILL)
            p.wait()
        for x in lines(os.path.join(out, "rows.jsonl")):
            self.assertTrue(x.endswith("\n"))
            self.assertEqual(json.loads(x)["system"], "codec2_700c")
        with sim.campaign_lock(out):     # free again
            pass


if __name__ == "__main__":
    gr_unittest.run(qa_campaign_faults)
