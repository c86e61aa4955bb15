#!/usr/bin/env python3
#
# Copyright 2026 gr-largesc authors.
# SPDX-License-Identifier: GPL-3.0-or-later
#
"""Mutation check: does the QA suite catch realistic single-line bugs?

Copies the repository (the working tree's files that git knows or would add)
into a scratch folder, builds it there once (same cmake flags as setup.sh,
against the project venv), then for each mutant of tools/mutants.txt: applies
it to the scratch copy, rebuilds (a C++ mutant recompiles one file; a Python
mutant only refreshes the test module copy), runs the mutant's QA file(s) with
a timeout, and puts the line back. The QA imports the scratch build
(PYTHONPATH = the build's test_modules, as ctest does), never the module
installed in .venv, and /work/main itself is never modified.

    tools/mutation_check.py --list
    tools/mutation_check.py                      # every mutant
    tools/mutation_check.py --only crc16_init_zero --only align_sign_negative_lag

Prints a caught / not caught table and a summary. Exit status: 0 when every
mutant is caught, 1 when one survives, 2 when the check itself could not run
(a mutant no longer applies, the unmutated build or QA fails, ...).
See docs/testing.md.
"""

import argparse
import os
import shutil
import signal
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MUTANTS = os.path.join(ROOT, "tools", "mutants.txt")
QA_DIR = os.path.join("python", "largesc")


class CheckError(RuntimeError):
    """The mutation check cannot give a meaningful answer."""


# --------------------------------------------------------------------------
# the mutant list


class Mutant:
    def __init__(self, name, file, find, replace, tests, why, lineno):
        self.name, self.file, self.find, self.replace = name, file, find, replace
        self.tests, self.why, self.lineno = tests, why, lineno

    @property
    def is_cxx(self):
        return not self.file.endswith(".py")

    def locate(self, text):
        """Index of the one line of text containing self.find; CheckError otherwise."""
        hits = [i for i, ln in enumerate(text.split("\n")) if self.find in ln]
        if len(hits) != 1:
            raise CheckError(f"mutant {self.name}: {self.find!r} is on {len(hits)} lines of "
                             f"{self.file} (must be exactly 1); update tools/mutants.txt")
        return hits[0]

    def apply(self, text):
        lines = text.split("\n")
        i = self.locate(text)
        if lines[i].count(self.find) != 1:
            raise CheckError(f"mutant {self.name}: {self.find!r} occurs more than once on "
                             f"line {i + 1} of {self.file}")
        lines[i] = lines[i].replace(self.find, self.replace)
        return "\n".join(lines), i + 1


def parse_tests(spec):
    """'qa_a.py; qa_b.py:Cls,Cls2.test_x' -> [('qa_a.py', []), ('qa_b.py', ['Cls', ...])]"""
    runs = []
    for item in spec.split(";"):
        item = item.strip()
        if not item:
            continue
        f, _, sel = item.partition(":")
        runs.append((f.strip(), [s.strip() for s in sel.split(",") if s.strip()]))
    return runs


def load_mutants(path=MUTANTS):
    mutants, cur, names = [], None, set()
    keys = ("file", "find", "replace", "tests", "why")

    def close():
        if cur is None:
            return
        missing = [k for k in keys if k not in cur]
        if missing:
            raise CheckError(f"{path}:{cur['lineno']}: mutant {cur['name']} lacks {', '.join(missing)}")
        mutants.append(Mutant(cur["name"], cur["file"], cur["find"], cur["replace"],
                              parse_tests(cur["tests"]), cur["why"], cur["lineno"]))

    with open(path) as f:
        for n, raw in enumerate(f, 1):
            line = raw.rstrip("\n")
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            if line.startswith("[") and line.rstrip().endswith("]"):
                close()
                name = line.strip()[1:-1]
                if name in names:
                    raise CheckError(f"{path}:{n}: duplicate mutant name {name}")
                names.add(name)
                cur = {"name": name, "lineno": n}
                continue
            key, sep, value = line.partition(": ")
            if cur is None or not sep or key not in keys:
                raise CheckError(f"{path}:{n}: expected '[name]' or 'key: value' with key in "
                                 f"{', '.join(keys)}, got {line!r}")
            cur[key] = value   # literal: leading spaces of find/replace count
    close()
    return mutants


# --------------------------------------------------------------------------
# scratch copy, build, QA runs


def repo_files():
    out = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                         cwd=ROOT, check=True, capture_output=True).stdout
    return [p for p in out.decode().split("\0") if p and os.path.isfile(os.path.join(ROOT, p))]


def sync_tree(src):
    """Makes src a copy of the working tree's files, rewriting only files that
    differ (keeps the scratch build incremental) and removing files the
    repository no longer has. Returns the number of files changed."""
    changed = 0
    files = repo_files()
    keep = set(files)
    for dirpath, _, names in os.walk(src):
        for name in names:
            path = os.path.join(dirpath, name)
            if os.path.relpath(path, src) not in keep:
                os.remove(path)
                changed += 1
    for rel in files:
        a, b = os.path.join(ROOT, rel), os.path.join(src, rel)
        with open(a, "rb") as f:
            data = f.read()
        try:
            with open(b, "rb") as f:
                same = f.read() == data
        except OSError:
            same = False
        if not same:
            os.makedirs(os.path.dirname(b), exist_ok=True)
            shutil.copy2(a, b)
            changed += 1
    return changed


def run_logged(cmd, log, cwd=None, env=None, timeout=None):
    """Runs cmd with output to the file log; returns (rc, seconds, timed_out)."""
    t0 = time.monotonic()
    with open(log, "w") as out:
        p = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT,
                             start_new_session=True)
        try:
            rc = p.wait(timeout=timeout)
            timed_out = False
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)   # the QA and anything it started
            rc = p.wait()
            timed_out = True
    return rc, time.monotonic() - t0, timed_out


class Scratch:
    def __init__(self, root, venv, jobs):
        self.root = os.path.abspath(root)
        self.src = os.path.join(self.root, "src")
        self.build = os.path.join(self.root, "build")
        self.logs = os.path.join(self.root, "logs")
        self.venv = venv
        self.jobs = jobs
        self.python = os.path.join(venv, "bin", "python3")
        os.makedirs(self.logs, exist_ok=True)

    def prepare(self):
        n = sync_tree(self.src)
        print(f"scratch copy {self.src}: {n} files updated", flush=True)
        if not os.path.isfile(os.path.join(self.build, "CMakeCache.txt")):
            # the flags of setup.sh, installing (if ever) into the scratch folder
            cmd = ["cmake", "-S", self.src, "-B", self.build, "-DCMAKE_BUILD_TYPE=Release",
                   f"-DCMAKE_INSTALL_PREFIX={os.path.join(self.root, 'prefix')}",
                   f"-DPYTHON_EXECUTABLE={self.python}",
                   f"-DCMAKE_INSTALL_RPATH={os.path.join(self.venv, 'lib', 'x86_64-linux-gnu')}",
                   "-DENABLE_DOXYGEN=OFF"]
            rc, _, _ = run_logged(cmd, os.path.join(self.logs, "configure.log"))
            if rc:
                raise CheckError(f"configuring the scratch copy failed: see {self.logs}/configure.log")
        if not self.compile("initial"):
            raise CheckError(f"building the unmutated scratch copy failed: see {self.logs}/build-initial.log")
        self.check_imports_scratch()

    def compile(self, tag):
        rc, _secs, _ = run_logged(["cmake", "--build", self.build, f"-j{self.jobs}"],
                                 os.path.join(self.logs, f"build-{tag}.log"))
        return rc == 0

    def env(self):
        e = dict(os.environ)
        e["PYTHONPATH"] = os.pathsep.join(
            [os.path.join(self.build, "test_modules")] + ([e["PYTHONPATH"]] if e.get("PYTHONPATH") else []))
        e["LD_LIBRARY_PATH"] = os.pathsep.join(
            [os.path.join(self.build, "lib")] + ([e["LD_LIBRARY_PATH"]] if e.get("LD_LIBRARY_PATH") else []))
        e["PYTHONDONTWRITEBYTECODE"] = "1"
        return e

    def check_imports_scratch(self):
        """The QA must import the scratch build's Python package and C++ library,
        or every mutant would 'survive'."""
        probe = ("from gnuradio import largesc\n"
                 "lib = [l.split()[-1] for l in open('/proc/self/maps') if 'libgnuradio-largesc' in l]\n"
                 "print(largesc.__file__); print(lib[0] if lib else 'none')\n")
        p = subprocess.run([self.python, "-c", probe], env=self.env(), capture_output=True, text=True,
                           cwd=os.path.join(self.build, QA_DIR))
        got = p.stdout.split()
        if p.returncode or len(got) != 2 or not all(g.startswith(self.build) for g in got):
            raise CheckError(f"the scratch QA does not import the scratch build: {p.stdout.strip()} "
                             f"{p.stderr.strip()[-500:]}")

    def run_qa(self, qa_file, selectors, timeout, tag):
        script = os.path.join(self.src, QA_DIR, qa_file)
        if not os.path.isfile(script):
            raise CheckError(f"no QA file {qa_file} in {QA_DIR}")
        log = os.path.join(self.logs, f"{tag}-{os.path.basename(qa_file)[:-3]}.log")
        rc, secs, timed_out = run_logged([self.python, "-B", script, "-f"] + selectors, log,
                                         cwd=os.path.join(self.build, QA_DIR), env=self.env(),
                                         timeout=timeout)
        return rc, secs, timed_out, log


def first_failure(log):
    """'Class.test_x (subtest)' of the first FAIL/ERROR line in a unittest log."""
    try:
        with open(log, errors="replace") as f:
            for line in f:
                if line.startswith(("FAIL: ", "ERROR: ")):
                    text = line.split(": ", 1)[1].strip()
                    # 'test_x (__main__.Class.test_x) (k=v)' -> 'Class.test_x (k=v)'
                    name, _, rest = text.partition(" (")
                    qual, _, sub = rest.partition(")")
                    if qual.startswith("__main__."):
                        qual = qual[len("__main__."):]
                        if not qual.endswith("." + name):
                            qual += "." + name
                        return (qual + sub).strip()
                    return text
    except OSError:
        pass
    return ""


def run_label(qa_file, selectors):
    return qa_file + (":" + ",".join(selectors) if selectors else "")


# --------------------------------------------------------------------------


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--list", action="store_true", help="list the mutants and exit")
    ap.add_argument("--only", action="append", metavar="NAME",
                    help="run only this mutant (repeat, or separate names with commas)")
    ap.add_argument("--scratch", default=os.path.join(os.environ.get("TMPDIR", "/tmp"), "largesc-mutation"),
                    help="scratch folder for the copy, build and logs (kept between runs; default %(default)s)")
    ap.add_argument("--venv", default=os.path.join(ROOT, ".venv"), help="project venv (default %(default)s)")
    ap.add_argument("--timeout", type=float, default=600.0,
                    help="seconds per QA run; a timeout counts as caught (default %(default)s)")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="build jobs (default %(default)s)")
    ap.add_argument("--no-baseline", action="store_true",
                    help="skip running the QA on the unmutated copy first (only when it is known to pass)")
    ap.add_argument("--mutants", default=MUTANTS, help="mutant list (default tools/mutants.txt)")
    args = ap.parse_args(argv)

    try:
        mutants = load_mutants(args.mutants)
        if args.only:
            want = [n for o in args.only for n in o.split(",") if n]
            unknown = [n for n in want if n not in {m.name for m in mutants}]
            if unknown:
                raise CheckError(f"unknown mutant(s): {', '.join(unknown)} (see --list)")
            mutants = [m for m in mutants if m.name in want]
        # every selected mutant must apply to the current sources
        for m in mutants:
            with open(os.path.join(ROOT, m.file)) as f:
                m.source_line = m.locate(f.read()) + 1
        if args.list:
            for m in mutants:
                tests = "; ".join(run_label(f, s) for f, s in m.tests)
                print(f"{m.name}\n    {m.file}:{m.source_line}  {m.find!r} -> {m.replace!r}\n"
                      f"    tests: {tests}\n    {m.why}")
            return 0
        if not os.path.isfile(os.path.join(args.venv, "bin", "python3")):
            raise CheckError(f"no venv at {args.venv}: run ./setup.sh first")
        return check(mutants, args)
    except CheckError as e:
        print(f"mutation check: {e}", file=sys.stderr)
        return 2


def check(mutants, args):
    t_start = time.monotonic()
    sc = Scratch(args.scratch, os.path.abspath(args.venv), args.jobs)
    sc.prepare()
    if not args.no_baseline:
        runs = []
        for m in mutants:
            for r in m.tests:
                if r not in runs:
                    runs.append(r)
        for qa_file, sel in runs:
            rc, secs, timed_out, log = sc.run_qa(qa_file, sel, args.timeout, "baseline")
            print(f"baseline {run_label(qa_file, sel)}: {'passes' if rc == 0 else 'FAILS'} ({secs:.0f} s)",
                  flush=True)
            if rc:
                raise CheckError(f"the QA fails without any mutant ({first_failure(log) or 'timeout' if timed_out else log}); "
                                 f"fix that first: see {log}")

    results = []
    for m in mutants:
        path = os.path.join(sc.src, m.file)
        with open(path) as f:
            original = f.read()
        mutated, line = m.apply(original)
        t0 = time.monotonic()
        status, detail = "", ""
        try:
            with open(path, "w") as f:
                f.write(mutated)
            if not sc.compile(m.name):
                status, detail = "BUILD FAILED", f"see {sc.logs}/build-{m.name}.log"
            else:
                status, detail = "not caught", ""
                for qa_file, sel in m.tests:
                    rc, secs, timed_out, log = sc.run_qa(qa_file, sel, args.timeout, m.name)
                    if timed_out:
                        status, detail = "caught", f"{run_label(qa_file, sel)} timed out after {secs:.0f} s"
                        break
                    if rc:
                        status, detail = "caught", first_failure(log) or f"{qa_file} exit {rc}"
                        break
        finally:
            with open(path, "w") as f:
                f.write(original)
        secs = time.monotonic() - t0
        results.append((m, line, status, detail, secs))
        print(f"{m.name}: {status.upper() if status != 'caught' else status} ({secs:.0f} s) {detail}", flush=True)
    # leave the scratch build matching the sources
    sc.compile("restore")

    print()
    print("| mutant | where | QA run | result | first failing test |")
    print("|---|---|---|---|---|")
    for m, line, status, detail, secs in results:
        tests = "; ".join(run_label(f, s) for f, s in m.tests)
        print(f"| {m.name} | {m.file}:{line} | {tests} | {status} | {detail} |")
    caught = sum(r[2] == "caught" for r in results)
    survived = [r[0].name for r in results if r[2] == "not caught"]
    broken = [r[0].name for r in results if r[2] not in ("caught", "not caught")]
    print(f"\n{caught} of {len(results)} mutants caught, {len(survived)} not caught"
          + (f" ({', '.join(survived)})" if survived else "")
          + (f", {len(broken)} did not build ({', '.join(broken)})" if broken else "")
          + f"; {time.monotonic() - t_start:.0f} s")
    if broken:
        return 2
    return 1 if survived else 0


if __name__ == "__main__":
    sys.exit(main())
