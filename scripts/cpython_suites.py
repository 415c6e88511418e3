"""Compare the failing tests of CPython's threading-related suites with and without lockwatch.

Usage (through scripts/cpython_suites.sh, which passes its arguments on):

    python scripts/cpython_suites.py PYTHON [--modes serial,j0] [--suites a,b] [--timeout S]
                                             [--confirm K]

PYTHON is the interpreter under test (lockwatch must be installed in it); this driver needs only
the standard library of Python 3.9+ and runs each suite with PYTHON's own `python -m test`
(regrtest): once as `PYTHON -m test ...` and once as `PYTHON -m lockwatch -q -m test ...`
(lockwatch's defaults otherwise, the watchdog on; its child processes -- regrtest's -j workers,
multiprocessing's spawn and forkserver children -- are watched through LOCKWATCH=1), serially
(one regrtest per test file, in-process) and with -j0 (one regrtest for every suite, in parallel
workers: the load under which lockwatch's races showed). Every run has --fail-env-changed (a thread
or anything else left behind fails the test file, with and without lockwatch), --timeout (per test
file: regrtest dumps the stacks and stops it) and an outer timeout after which the whole process
tree is killed (-j workers run in sessions of their own), so nothing hangs. Serially a hang loses
only its own test file; with -j0 regrtest kills the hung worker and goes on.

Suites: test_threading, test_thread, test_queue, test_logging, test_concurrent_futures (all of it:
thread and process pools; from 3.12 a package whose submodules are run as separate test files),
test_multiprocessing_spawn and test_multiprocessing_forkserver. Of the two multiprocessing suites
only a subset runs (MULTIPROCESSING_SUBSET below), because the whole suites start hundreds of
processes (minutes each on two shared cores, more under lockwatch, whose every spawned child pays
its start-up), while the subset takes 30-80 s per start method without lockwatch: the lock,
condition, semaphore, event, queue and pool classes with processes, threads and a manager, the
manager restart, the manager's containers and TestSyncManagerTypes -- the tests that pickle and
proxy locks across processes and run them under a Manager (where spawn and forkserver broke).
Barrier, listener, connection, heap and shared-memory tests are left out: they exercise
multiprocessing's own primitives, not threading's locks.

What a failing test is: a test case reported FAIL or ERROR (from regrtest's --junit-xml, and from
the FAIL:/ERROR: lines of its verbose output (-v), which also carry the sub-test and setUpClass
failures the XML leaves out), or a whole test file that failed without a failing test case
(crash, timeout, environment changed, an unfinished run). The sets are compared per suite and
mode; what fails only under lockwatch is re-run alone K times without lockwatch (--confirm,
default 2): if it fails there too it is flaky, reported but not counted (test cases are also
re-run K times under lockwatch, to show how often they fail there). A failure that is one of
CPython's own deadlocks listed in KNOWN_DEADLOCKS (the test, and the very deadlock ended by
lockwatch's watchdog in that run, on a Python without the fix) is reported as known and not
counted either: those hang without lockwatch too, too rarely for K re-runs to show it. Exit
status: 1 when a test fails under lockwatch that passes without it, 2 when the check itself
cannot run, 0 otherwise.

What is skipped is always printed: a suite missing from the interpreter's test package (some
builds ship without test_concurrent_futures or the multiprocessing suites), a test file skipped
by regrtest (a start method the platform lacks), a test file with no test in the subset, and the
test cases skipped inside each suite with their reasons (resources such as network or cpu are
not enabled: regrtest's default).

Every run's output (log, JUnit XML, and under lockwatch its JSON report) and, for each test
failing only under lockwatch, its traceback are kept in a temporary folder printed at the start
and the end. A real deadlock that lockwatch's watchdog ended (instead of a hang) is listed at the
end with the threads and what each waited for, and the report that has its stacks.

Run it in the foreground or background alike: a background job starts with SIGINT ignored, and
test_threading's interrupt_main tests need Python's SIGINT handler, so each regrtest process gets
SIGINT's default disposition back before it starts.
"""
from __future__ import annotations

import argparse
import collections
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET

WHOLE_SUITES = ["test_threading", "test_thread", "test_queue", "test_logging",
                "test_concurrent_futures"]
MULTIPROCESSING_SUITES = ["test_multiprocessing_spawn", "test_multiprocessing_forkserver"]
MULTIPROCESSING_SUBSET = ["TestLock", "TestCondition", "TestSemaphore", "TestEvent", "TestPool",
                          "TestQueue", "TestManagerRestart", "TestContainers"]
MULTIPROCESSING_CLASSES = ["TestSyncManagerTypes"]
MODES = ["serial", "j0"]
VARIANTS = ["plain", "lockwatch"]


class KnownDeadlock:
    """A deadlock of CPython's own in the suites: it happens without lockwatch too, rarely, and
    more often under it (every thread runs slower, so a narrow window is met more often), where the
    watchdog ends it instead of the hang. Not counted as new on a Python without the fix."""

    def __init__(self, issue: str, test: str, suite: str, waits: str,
                 fixed_in: tuple[tuple[int, int, int], ...]) -> None:
        self.issue, self.test, self.suite, self.waits, self.fixed_in = issue, test, suite, waits, fixed_in

    def affects(self, version: tuple[int, ...]) -> bool:
        """Whether this Python lacks the fix: older than the fixed release of its own minor
        version, or than the first minor version that was fixed."""
        for fixed in self.fixed_in:
            if version[:2] == fixed[:2]:
                return version[:3] < fixed
        return version[:2] < min(self.fixed_in)[:2]

    def explains(self, entry: str, outcome: Outcome, version: tuple[int, ...]) -> bool:
        """Whether a failing entry of a lockwatch run is this deadlock: the right suite and test
        (the entry, or the test its file was running), and the watchdog ended this very deadlock."""
        running = entry + "\n" + outcome.tracebacks.get(entry, "")
        return (self.affects(version) and entry.startswith(self.suite) and self.test in running
                and any(self.waits in line for line in outcome.deadlocks))

    def describe(self) -> str:
        fixed = " and ".join(".".join(map(str, v)) for v in self.fixed_in)
        return f"{self.issue} (a deadlock of CPython's own, fixed in {fixed})"


KNOWN_DEADLOCKS = [
    # The executor's manager thread holds ProcessPoolExecutor._shutdown_lock while it joins the
    # call queue's feeder thread, which takes that lock to report a task it could not pickle
    # (https://github.com/python/cpython/issues/125451). Fixed in 3.12.8 and 3.13.1, not in 3.9-3.11.
    # On 3.13.0 here, the test run alone 150 times without lockwatch hung 5 times (regrtest's
    # timeout), and 14 of 60 times under lockwatch, whose watchdog reported the deadlock each time.
    KnownDeadlock("gh-125451", "test_shutdown_deadlock_pickle", "test_concurrent_futures",
                  "QueueFeederThread waits for ProcessPoolExecutor._shutdown_lock",
                  ((3, 12, 8), (3, 13, 1))),
]


FAIL_LINE = re.compile(r"^(FAIL|ERROR): (\S+) \((\S+?)\)(.*)$")
SUMMARY_HEADER = re.compile(r"^(?:All )?\d+ (?:tests?|test files?) (.*):$")
FINISHED = re.compile(r"^(== )?Tests? result: |^Result: ")


def match_patterns(suites: list[str]) -> list[str]:
    """regrtest --matchfile patterns: the whole of each plain suite, the subset of the others."""
    patterns = []
    for suite in suites:
        if suite in MULTIPROCESSING_SUITES:
            patterns += [f"test.{suite}.*{cls}.*" for cls in MULTIPROCESSING_SUBSET]
            patterns += [f"test.{suite}.*{cls}.*" for cls in MULTIPROCESSING_CLASSES]
        else:
            patterns.append(f"test.{suite}.*")
    return patterns


class Interpreter:
    """The Python under test, asked through subprocesses."""

    def __init__(self, python: str, env: dict[str, str], workdir: str) -> None:
        self.python = python
        self.env = env
        self.workdir = workdir

    def output(self, *args: str, timeout: float = 300) -> tuple[int, str]:
        proc = subprocess.run([self.python, *args], check=False, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, env=self.env,
                              cwd=self.workdir, timeout=timeout, preexec_fn=default_sigint)
        return proc.returncode, proc.stdout


def default_sigint() -> None:
    # An ignored SIGINT is inherited through exec; the default handler is not, Python's is reinstalled.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def new_session_default_sigint() -> None:
    default_sigint()
    os.setsid()


def find_test_files(py: Interpreter, suites: list[str]) -> tuple[dict[str, list[str]], list[str]]:
    """Each present suite's test files (a package's test_* submodules), and what is missing."""
    probe = (
        "import importlib.util, pkgutil, sys\n"
        "for name in sys.argv[1:]:\n"
        "    try:\n"
        "        spec = importlib.util.find_spec('test.' + name)\n"
        "    except ImportError:\n"
        "        spec = None\n"
        "    if spec is None:\n"
        "        print(name, 'MISSING')\n"
        "    elif spec.submodule_search_locations:\n"
        "        subs = sorted(m.name for m in pkgutil.iter_modules(spec.submodule_search_locations)"
        " if m.name.startswith('test_'))\n"
        "        print(name, 'PACKAGE', *subs)\n"
        "    else:\n"
        "        print(name, 'MODULE')\n")
    status, out = py.output("-c", probe, *suites)
    if status != 0:
        raise SystemExit(f"cpython_suites: cannot look into {py.python}'s test package:\n{out}")
    files: dict[str, list[str]] = {}
    missing = []
    for line in out.splitlines():
        name, kind, *subs = line.split()
        if kind == "MISSING":
            missing.append(name)
        elif kind == "PACKAGE":
            files[name] = [f"{name}.{sub}" for sub in subs]
        else:
            files[name] = [name]
    return files, missing


def list_cases(py: Interpreter, matchfile: str, test_files: list[str]) -> tuple[dict[str, int], str]:
    """How many test cases the match patterns select in each test file."""
    _status, out = py.output("-m", "test", "--list-cases", "--matchfile", matchfile, *test_files,
                            timeout=600)
    counts = {f: 0 for f in test_files}
    for line in out.splitlines():
        f = file_of(line.strip(), test_files)
        if f is not None:
            counts[f] += 1
    return counts, out


def file_of(test_id: str, test_files: list[str]) -> str | None:
    """The test file a test id belongs to (the longest match: a package's submodule wins)."""
    best = None
    for f in test_files:
        if f"test.{f}." in test_id + "." and (best is None or len(f) > len(best)):
            best = f
    return best


class Outcome:
    """What one regrtest run reported: failing entries, file statuses, skipped test cases."""

    def __init__(self) -> None:
        self.failing: dict[str, str] = {}              # entry -> one-line description
        self.tracebacks: dict[str, str] = {}           # entry -> traceback text
        self.skipped_files: dict[str, str] = {}        # test file -> reason
        self.skipped_cases: dict[str, collections.Counter] = collections.defaultdict(
            collections.Counter)                        # test file -> reason -> count
        self.cases_run: dict[str, int] = collections.Counter()
        self.finished = False
        self.status: int | None = None
        self.seconds = 0.0
        self.note = ""
        self.deadlocks: list[str] = []                 # real deadlocks lockwatch's watchdog ended


def parse_xml(path: str, test_files: list[str], outcome: Outcome) -> None:
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError):
        return
    for case in root.iter("testcase"):
        name = case.get("name")
        if not name:
            continue
        f = file_of(name, test_files)
        if f is None:
            continue
        outcome.cases_run[f] += 1
        for kind in ("failure", "error"):
            element = case.find(kind)
            if element is not None:
                outcome.failing[name] = f"{kind}: {(element.get('type') or '').strip()}"
                text = element.text or element.get("message") or ""
                for stream in ("system-out", "system-err"):  # threads' tracebacks land here
                    captured = (case.findtext(stream) or "").strip()
                    if captured:
                        text += f"\n--- {stream} (last 80 lines) ---\n" + "\n".join(
                            captured.splitlines()[-80:])
                outcome.tracebacks[name] = text
        skipped = case.find("skipped")
        if skipped is not None:
            reason = (skipped.text or "").strip().splitlines()[:1]
            outcome.skipped_cases[f][reason[0] if reason else "?"] += 1


def fail_line_id(name: str, where: str) -> str:
    """The test id of a unittest FAIL:/ERROR: header (3.9: "name (module.Class)", 3.11+:
    "name (module.Class.name)", also "setUpClass (module.Class)")."""
    return where if where.endswith("." + name) else f"{where}.{name}"


def parse_log(text: str, test_files: list[str], outcome: Outcome) -> None:
    lines = text.splitlines()
    blocks: dict[str, list[str]] = {}
    header = None
    for i, line in enumerate(lines):
        m = FAIL_LINE.match(line)
        if m:
            test_id = fail_line_id(m.group(2), m.group(3))
            if file_of(test_id, test_files) is not None:
                extra = m.group(4).strip()
                outcome.failing.setdefault(test_id, m.group(1).lower() + (f" {extra}" if extra else ""))
                if test_id not in outcome.tracebacks:
                    outcome.tracebacks[test_id] = traceback_after(lines, i)
            continue
        if FINISHED.match(line):
            outcome.finished = True
        m = SUMMARY_HEADER.match(line)
        if m:
            header = m.group(1)
            blocks.setdefault(header, [])
            continue
        if header is not None:
            if line.startswith("    "):
                blocks[header] += line.split()
                continue
            header = None
    failing_files = collections.Counter(file_of(t, test_files) for t in outcome.failing)
    for header, names in blocks.items():
        for f in names:
            if f not in test_files:
                continue
            if "environment" in header:
                outcome.failing[f"{f} [env changed]"] = "file altered the execution environment"
            elif "failed" in header and not failing_files[f]:
                status = (file_status(lines, f) or "file failed").split(" -- running")[0]
                outcome.failing[f"{f} [file]"] = status
            elif "skipped" in header or "no tests" in header or "resource denied" in header:
                outcome.skipped_files[f] = file_status(lines, f) or header
    if not outcome.finished:
        hung = hung_test(lines)
        for f in test_files:
            outcome.failing.setdefault(f"{f} [unfinished]", "regrtest did not finish: "
                                       + (outcome.note or hung or "no result"))
    for entry in outcome.failing:
        if entry.endswith("]") and entry not in outcome.tracebacks:
            outcome.tracebacks[entry] = file_excerpt(lines, entry.split(" [")[0])
            hung = hung_test(outcome.tracebacks[entry].splitlines())
            if hung and hung not in outcome.failing[entry]:
                outcome.failing[entry] += f"; {hung}"


def file_status(lines: list[str], test_file: str) -> str | None:
    """regrtest's own one-line status of a test file ("crashed (Exit code 87)", "skipped -- ...")."""
    pattern = re.compile(re.escape(test_file) + r" ((?:failed|crashed|timed out|skipped|"
                         r"resource denied|run no tests|ran no tests|uncaught).*)$")
    for line in lines:
        m = pattern.search(line)
        if m:
            return m.group(1).strip()
    return None


PROGRESS = re.compile(r"^(\d+:\d\d:\d\d )?(load avg: [\d.]+ )?\[ *\d+/\d+")
CALL_TEST = re.compile(r'^  File "(.*?)", line (\d+) in (\w+)$')


def file_excerpt(lines: list[str], test_file: str) -> str:
    """What regrtest printed for one test file: from its progress line to the next one (a
    timeout's stack dump included), its last 200 lines."""
    start = None
    for i, line in enumerate(lines):
        if PROGRESS.match(line) and re.search(r"\] " + re.escape(test_file) + r"(\s|$)", line):
            start = i
    if start is None:
        return "\n".join(lines[-200:])
    out = [lines[start]]
    for line in lines[start + 1:]:
        if PROGRESS.match(line) and " running: " not in line:
            break
        out.append(line)
    return "\n".join(out[-200:])


def hung_test(lines: list[str]) -> str | None:
    """The test method a regrtest timeout's stack dump shows running, as "timed out in NAME
    (file:line)" (the frame just above unittest's _callTestMethod in the dump)."""
    if not any("Timeout (" in line for line in lines):  # verbose: after "test_x (...) ... "
        return None
    for i, line in enumerate(lines):
        if line.endswith(" in _callTestMethod") and i > 0:
            m = CALL_TEST.match(lines[i - 1])
            if m:
                return f"timed out in {m.group(3)} ({os.path.basename(m.group(1))}:{m.group(2)})"
    return "timed out"


def traceback_after(lines: list[str], i: int) -> str:
    """The block unittest prints under a FAIL:/ERROR: header, up to the next separator."""
    out: list[str] = []
    for line in lines[i + 2:]:
        if line.startswith("=" * 20) or (line.startswith("-" * 20) and out):
            break
        out.append(line)
    return "\n".join(out).strip()


def run(py: Interpreter, variant: str, args: list[str], log: str, outer_timeout: float) -> tuple[
        int | None, float, str]:
    """One regrtest process group, killed whole after outer_timeout seconds. Under lockwatch the
    JSON report (its child processes' merged in) is kept beside the log (``-q`` prints none)."""
    cmd = [py.python]
    if variant == "lockwatch":
        cmd += ["-m", "lockwatch", "-q", "--json", report_path(log)]
    cmd += ["-m", "test", *args]
    start = time.monotonic()
    note = ""
    with open(log, "w") as out:
        out.write("$ " + " ".join(cmd) + "\n")
        out.flush()
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=py.env,
                                cwd=py.workdir,  # single-threaded driver: preexec_fn is safe
                                preexec_fn=new_session_default_sigint)  # noqa: PLW1509
        try:
            status: int | None = proc.wait(timeout=outer_timeout)
        except subprocess.TimeoutExpired:
            status = None
            note = f"killed by the outer timeout after {outer_timeout:.0f} s"
        finally:
            kill_tree(proc.pid)  # the workers and children left behind
            proc.wait()
    return status, time.monotonic() - start, note


def report_path(log: str) -> str:
    return log[:-len(".log")] + ".lockwatch.json"


def real_deadlocks(path: str) -> list[str]:
    """One line per real deadlock in a lockwatch JSON report: its threads and what each waited for."""
    try:
        with open(path) as f:
            report = json.load(f)
        found = report.get("deadlocks") or []
    except (OSError, ValueError, AttributeError):
        return []
    lines = []
    for deadlock in found if isinstance(found, list) else []:
        threads = deadlock.get("threads") if isinstance(deadlock, dict) else None
        parts = []
        for t in threads if isinstance(threads, list) else []:
            if isinstance(t, dict):
                waiting = t.get("waiting_for")
                if isinstance(waiting, dict):
                    waiting = waiting.get("name")
                parts.append(f"{t.get('name')!s} waits for {waiting!s}")
        lines.append("; ".join(parts) + f" (report: {path})")
    return lines


def kill_tree(pid: int) -> None:
    """SIGKILL a process, its process group and every descendant (regrtest's -j workers run in
    sessions of their own, so one killpg does not reach them)."""
    children: dict[int, list[int]] = collections.defaultdict(list)
    for entry in os.listdir("/proc") if os.path.isdir("/proc") else []:
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            children[int(fields[1])].append(int(entry))
        except (OSError, ValueError, IndexError):
            continue
    todo, tree = [pid], []
    while todo:
        p = todo.pop()
        tree.append(p)
        todo += children.get(p, [])
    for target in [-pid] + tree:
        try:
            os.kill(target, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def regrtest_args(matchfile: str, xml: str, timeout: float, mode: str) -> list[str]:
    # -v: from 3.12 regrtest prints the FAIL:/ERROR: blocks only in verbose mode, and the JUnit XML
    # has neither sub-tests nor setUpClass errors, nor anything of a run killed by a timeout.
    args = ["-v", "--fail-env-changed", "--timeout", str(int(timeout)), "--junit-xml", xml,
            "--matchfile", matchfile]
    if mode == "j0":
        args.append("-j0")
    return args


def run_and_parse(py: Interpreter, variant: str, args: list[str], test_files: list[str],
                  stem: str, outer_timeout: float) -> Outcome:
    log, xml = stem + ".log", stem + ".xml"
    status, seconds, note = run(py, variant, args, log, outer_timeout)
    outcome = Outcome()
    outcome.status, outcome.seconds, outcome.note = status, seconds, note
    parse_xml(xml, test_files, outcome)
    if variant == "lockwatch":
        outcome.deadlocks = real_deadlocks(report_path(log))
    with open(log, errors="replace") as f:
        parse_log(f.read(), test_files, outcome)
    if outcome.finished and status not in (None, 0) and not outcome.failing:
        outcome.failing["[exit status]"] = f"regrtest exited {status} with no failing test"
    return outcome


FIXTURES = (".setUpClass", ".tearDownClass", ".setUpModule", ".tearDownModule")


def scope(entry: str) -> str:
    """What an entry covers: a test id, a class or module for a fixture, a file for the rest."""
    if entry.endswith("]"):
        return entry.split(" [")[0]
    for fixture in FIXTURES:
        if entry.endswith(fixture):
            return entry[:-len(fixture)]
    return entry


def entry_fails(entry: str, failing: dict[str, str]) -> bool:
    """Whether a re-run's failing entries include this one (or anything inside its scope)."""
    where = scope(entry)
    return any(f == entry or scope(f) == where or f.startswith(where + ".")
               or (entry.endswith("]") and f"test.{where}." in f + ".") for f in failing)


def confirm(py: Interpreter, variant: str, entries: list[str], test_files: list[str],
            matchfile: str, stem: str, times: int, timeout: float, deadlocks: list[str]) -> int:
    """How many of `times` standalone serial runs of these entries fail (any of them); the real
    deadlocks lockwatch ended in them are added to ``deadlocks``."""
    files = sorted({f for f in (file_of(e, test_files) or scope(e) for e in entries)
                    if f in test_files})
    failures = 0
    for n in range(times):
        args = ["-v", "--fail-env-changed", "--timeout", str(int(timeout))]
        if any(e.endswith("]") for e in entries):
            args += ["--matchfile", matchfile]  # whole files: the same selection as before
        else:
            for entry in entries:
                where = scope(entry)
                args += ["-m", where if where == entry else where + ".*"]
        outcome = run_and_parse(py, variant, args + files, files, f"{stem}.{n + 1}",
                                timeout * len(files) + 120)
        deadlocks += outcome.deadlocks
        if any(entry_fails(e, outcome.failing) for e in entries):
            failures += 1
    return failures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("python", nargs="?", default="python3")
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument("--suites", default=",".join(WHOLE_SUITES + MULTIPROCESSING_SUITES))
    parser.add_argument("--timeout", type=float, default=600,
                        help="regrtest's --timeout per test file, seconds (default 600)")
    parser.add_argument("--confirm", type=int, default=2,
                        help="standalone re-runs without lockwatch of a test failing only under it")
    ns = parser.parse_args()
    modes = [m for m in ns.modes.split(",") if m]
    wanted = [s for s in ns.suites.split(",") if s]
    if set(modes) - set(MODES):
        parser.error(f"--modes: {', '.join(MODES)}")

    workdir = tempfile.mkdtemp(prefix="cpython_suites.")
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOCKWATCH")}
    py = Interpreter(ns.python, env, workdir)
    began = time.monotonic()
    print(f"cpython_suites: output of every run in {workdir}", flush=True)

    status, out = py.output("-c", "import sys, lockwatch; print(sys.version.split()[0], "
                                  "lockwatch.__version__, lockwatch.__file__)")
    if status != 0:
        print(f"cpython_suites: lockwatch is not importable by {ns.python}:\n{out}")
        return 2
    print(f"python {out.strip()}")
    version = tuple(int(part) for part in re.findall(r"\d+", out.split()[0])[:3])
    if not preflight(py):
        return 2

    files, missing = find_test_files(py, wanted)
    skipped_notes = [f"{s}: SKIPPED, not in this interpreter's test package" for s in missing]
    matchfile = os.path.join(workdir, "match.txt")
    with open(matchfile, "w") as handle:
        handle.write("\n".join(match_patterns(list(files))) + "\n")
    all_files = [f for s in files for f in files[s]]
    counts, listing = list_cases(py, matchfile, all_files)
    with open(os.path.join(workdir, "cases.txt"), "w") as handle:
        handle.write(listing)
    for suite in list(files):
        kept = []
        for f in files[suite]:
            if counts[f]:
                kept.append(f)
            elif suite in MULTIPROCESSING_SUITES:
                skipped_notes.append(f"{f}: SKIPPED, no test case in the chosen subset")
            else:
                kept.append(f)  # regrtest says why (skipped at import, say)
        files[suite] = kept
        if not kept:
            del files[suite]
    all_files = [f for s in files for f in files[s]]
    for suite, fs in files.items():
        print(f"{suite}: {sum(counts[f] for f in fs)} test cases in {len(fs)} file(s)"
              + (" (the multiprocessing subset)" if suite in MULTIPROCESSING_SUITES else ""))
    for note in skipped_notes:
        print(note)
    sys.stdout.flush()

    outcomes: dict[tuple[str, str, str], Outcome] = {}  # (suite, mode, variant)
    for mode in modes:
        for variant in VARIANTS:
            t0 = time.monotonic()
            if mode == "serial":
                for suite, fs in files.items():
                    parts = []
                    for f in fs:  # one regrtest per file: a hang loses only that file
                        stem = os.path.join(workdir, f"{f}.{mode}.{variant}")
                        parts.append(run_and_parse(
                            py, variant, regrtest_args(matchfile, stem + ".xml", ns.timeout, mode)
                            + [f], [f], stem, ns.timeout + 300))
                    outcomes[suite, mode, variant] = merge(parts)
                    report_progress(suite, mode, variant, outcomes[suite, mode, variant])
            else:
                stem = os.path.join(workdir, f"all.{mode}.{variant}")
                whole = run_and_parse(py, variant,
                                      regrtest_args(matchfile, stem + ".xml", ns.timeout, mode)
                                      + all_files, all_files, stem, ns.timeout * 2 + 600)
                for suite, fs in files.items():
                    outcomes[suite, mode, variant] = restrict(whole, fs)
                report_progress("all suites", mode, variant, whole)
            print(f"  {mode} {variant}: {time.monotonic() - t0:.0f} s", flush=True)

    new_total = 0
    rows = []
    details = []
    deadlocks: list[str] = []  # real deadlocks lockwatch's watchdog ended, in any run
    for outcome in outcomes.values():
        deadlocks += [d for d in outcome.deadlocks if d not in deadlocks]
    for suite, fs in files.items():
        for mode in modes:
            plain = outcomes[suite, mode, "plain"]
            watched = outcomes[suite, mode, "lockwatch"]
            new = sorted(set(watched.failing) - set(plain.failing))
            confirmed: list[str] = []
            if new:
                stem = os.path.join(workdir, f"confirm.{suite}.{mode}")
                again_plain = confirm(py, "plain", new, fs, matchfile, stem + ".plain",
                                      ns.confirm, ns.timeout, deadlocks) if ns.confirm else 0
                verdict = f"re-run alone {ns.confirm}x: failed {again_plain}x without lockwatch"
                if ns.confirm and not any(e.endswith("]") for e in new):
                    # cheap for test cases; a whole file that hung would cost the timeout again
                    again_watched = confirm(py, "lockwatch", new, fs, matchfile,
                                            stem + ".lockwatch", ns.confirm, ns.timeout,
                                            deadlocks)
                    verdict += f", {again_watched}x with it"
                if again_plain:
                    details.append(f"{suite} {mode}: FLAKY (fails without lockwatch too), not "
                                   f"counted: {', '.join(new)}; {verdict}")
                else:
                    for entry in new:
                        bug = next((k for k in KNOWN_DEADLOCKS if k.explains(entry, watched, version)), None)
                        if bug is None:
                            confirmed.append(entry)
                        else:
                            details.append(f"{suite} {mode}: KNOWN DEADLOCK {bug.describe()}, ended by "
                                           f"lockwatch's watchdog, not counted: {entry}; {verdict}")
                if confirmed:
                    details.append(f"{suite} {mode}: NEW UNDER LOCKWATCH: {verdict}")
                    # Grouped by how they end: one cause often fails a whole class.
                    groups: dict[str, list[str]] = collections.defaultdict(list)
                    for entry in confirmed:
                        save_traceback(workdir, suite, mode, entry, watched)
                        ending = last_lines(watched.tracebacks.get(entry, ""), 1)
                        groups[watched.failing[entry] + (f" | {ending[0]}" if ending else "")].append(entry)
                    for cause, entries in groups.items():
                        details.append(f"    {len(entries)} x {cause[:200]}")
                        for entry in entries:
                            details.append(f"        {entry}")
                        details.append(f"      traceback of the first: "
                                       f"{traceback_path(workdir, mode, entries[0])}")
                        for line in last_lines(watched.tracebacks.get(entries[0], ""), 4):
                            details.append(f"        | {line[:200]}")
            new_total += len(confirmed)
            rows.append((suite, mode, plain, watched, new, confirmed))
            for variant, o in (("without", plain), ("with", watched)):
                if o.failing:
                    names = sorted(o.failing)
                    details.append(f"{suite} {mode} failing {variant} lockwatch: "
                                   + ", ".join(names[:12])
                                   + (f" and {len(names) - 12} more" if len(names) > 12 else ""))

    print()
    print(f"{'suite':34} {'mode':6} {'cases':>5} {'failing without':>15} {'failing with':>12} "
          f"{'new under lockwatch':>19}")
    for suite, mode, plain, watched, new, confirmed in rows:
        flaky = len(new) - len(confirmed)
        print(f"{suite:34} {mode:6} {sum(counts[f] for f in files[suite]):5} {len(plain.failing):15} "
              f"{len(watched.failing):12} {len(confirmed):19}"
              + (f"  (+{flaky} flaky or known)" if flaky else ""))
    print()
    for line in details:
        print(line)
    if deadlocks:  # the program's own deadlocks: a test that hung under lockwatch says which
        print(f"\nlockwatch's watchdog ended {len(deadlocks)} real deadlock(s) (a program's own, "
              "reported instead of hanging):")
        for line in deadlocks:
            print(f"    {line}")
    print_skips(files, modes, outcomes, skipped_notes)
    print(f"\ntotal {time.monotonic() - began:.0f} s; output of every run in {workdir}")
    if new_total:
        print(f"cpython_suites: {new_total} test(s) fail under lockwatch that pass without it")
        return 1
    return 0


def preflight(py: Interpreter) -> bool:
    """lockwatch must really be on in the program and in the processes it starts."""
    script = os.path.join(py.workdir, "preflight.py")
    with open(script, "w") as f:
        f.write("import subprocess, sys, threading\n"
                "print('program:', type(threading.Lock()).__module__)\n"
                "sys.stdout.flush()\n"
                "subprocess.run([sys.executable, '-c', 'import threading; "
                "print(\"child:\", type(threading.Lock()).__module__)'])\n")
    status, out = py.output("-m", "lockwatch", "-q", script)
    kinds = dict(line.split(": ", 1) for line in out.splitlines() if ": " in line)
    watched = {k: v for k, v in kinds.items() if k in ("program", "child") and v != "_thread"}
    ok = status == 0 and len(watched) == 2
    print(f"lockwatch on in the program and its child processes: {'yes' if ok else 'NO'} "
          f"({', '.join(f'{k}: {v}' for k, v in kinds.items())})")
    if not ok:
        print(out)
    return ok


def merge(parts: list[Outcome]) -> Outcome:
    """One suite's outcome from the runs of its test files."""
    whole = Outcome()
    whole.finished = all(p.finished for p in parts)
    whole.seconds = sum(p.seconds for p in parts)
    statuses = [p.status for p in parts]
    whole.status = None if None in statuses else max(s for s in statuses if s is not None)
    whole.note = "; ".join(p.note for p in parts if p.note)
    for p in parts:
        whole.failing.update(p.failing)
        whole.tracebacks.update(p.tracebacks)
        whole.skipped_files.update(p.skipped_files)
        whole.skipped_cases.update(p.skipped_cases)
        whole.cases_run.update(p.cases_run)
        whole.deadlocks += p.deadlocks
    return whole


def restrict(whole: Outcome, test_files: list[str]) -> Outcome:
    """The part of a run over every suite that concerns one suite's test files."""
    part = Outcome()
    part.finished, part.status, part.seconds, part.note = (whole.finished, whole.status,
                                                           whole.seconds, whole.note)
    part.deadlocks = whole.deadlocks  # one report for the whole -j0 run: not split by suite
    for entry, text in whole.failing.items():
        name = entry.split(" [")[0]
        if name in test_files or file_of(entry, test_files) is not None:
            part.failing[entry] = text
            if entry in whole.tracebacks:
                part.tracebacks[entry] = whole.tracebacks[entry]
        elif entry == "[exit status]":
            part.failing[entry] = text
    for f in test_files:
        if f in whole.skipped_files:
            part.skipped_files[f] = whole.skipped_files[f]
        if f in whole.skipped_cases:
            part.skipped_cases[f] = whole.skipped_cases[f]
        part.cases_run[f] = whole.cases_run[f]
    return part


def report_progress(what: str, mode: str, variant: str, outcome: Outcome) -> None:
    print(f"  {what} {mode} {variant}: status {outcome.status}, {len(outcome.failing)} failing, "
          f"{outcome.seconds:.0f} s" + (f", {outcome.note}" if outcome.note else ""), flush=True)


def traceback_path(workdir: str, mode: str, entry: str) -> str:
    return os.path.join(workdir, f"NEW.{mode}.{re.sub(r'[^A-Za-z0-9_.-]+', '_', entry)}.txt")


def save_traceback(workdir: str, suite: str, mode: str, entry: str, outcome: Outcome) -> str:
    path = traceback_path(workdir, mode, entry)
    with open(path, "w") as f:
        f.write(f"{entry} ({suite}, {mode}): {outcome.failing[entry]}\n\n")
        f.write(outcome.tracebacks.get(entry, "(no traceback: see the run's log)") + "\n")
    return path


def last_lines(text: str, n: int) -> list[str]:
    return [line for line in text.strip().splitlines() if line.strip()][-n:]


def print_skips(files: dict[str, list[str]], modes: list[str],
                outcomes: dict[tuple[str, str, str], Outcome], notes: list[str]) -> None:
    print("\nskipped:")
    printed = bool(notes)
    for note in notes:
        print(f"  {note}")
    for suite, fs in files.items():
        reasons: set[str] = set()
        cases: collections.Counter = collections.Counter()
        for mode in modes:
            o = outcomes[suite, mode, "plain"]
            for f in fs:
                if f in o.skipped_files:
                    reasons.add(f"{f}: {o.skipped_files[f]}")
            if mode == modes[0]:
                for f in fs:
                    cases.update(o.skipped_cases.get(f, {}))
        for reason in sorted(reasons):
            print(f"  {reason}")
        printed = printed or bool(reasons) or bool(cases)
        if cases:
            print(f"  {suite}: {sum(cases.values())} test cases skipped by the suite itself "
                  f"(without lockwatch, {modes[0]}):")
            for reason, n in cases.most_common(8):
                print(f"    {n:4}  {reason[:110]}")
            if len(cases) > 8:
                print(f"    ...  {len(cases) - 8} other reasons (see the JUnit XML)")
    if not printed:
        print("  nothing")


if __name__ == "__main__":
    sys.exit(main())
