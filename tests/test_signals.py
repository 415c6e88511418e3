"""However a watched program ends -- SIGTERM, its own SIGTERM handler, SIGINT, an exception,
os._exit -- the report is written when it can be and the exit status is the program's own, both
under `python -m lockwatch prog.py` (CLI) and under `LOCKWATCH=1 python prog.py` (the start-up
hook). Real processes, real signals. The program: tests/programs/processes/signals_prog.py.
"""
from __future__ import annotations

import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Optional

import pytest
from support import PACKAGE_DIR, PROGRAMS, child_env, default_sigint, report_of

pytestmark = [pytest.mark.timeout(300),
              pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="POSIX signals")]

PROCESSES = PROGRAMS / "processes"
PROGRAM = PROCESSES / "signals_prog.py"
TIMEOUT = 120  # seconds: a process that outlives this is hung, and the test fails
REPORT = "lockwatch: 1 potential deadlock"
MODES = ["cli", "hook"]


def command(mode: str, json_path: Path, *args: str) -> tuple[list[str], dict[str, str]]:
    """The argv and the extra environment that run signals_prog.py ARGS under lockwatch."""
    if mode == "cli":
        return [sys.executable, "-m", "lockwatch", "--json", str(json_path), str(PROGRAM), *args], {}
    return [sys.executable, str(PROGRAM), *args], {"LOCKWATCH": "1", "LOCKWATCH_JSON": str(json_path)}


class Program:
    """signals_prog.py running; stdout is read line by line until a marker, then the rest."""

    def __init__(self, argv: list[str], env: dict[str, str], stdin: bool = False) -> None:
        self.proc = subprocess.Popen(argv, env=env, cwd=PROCESSES, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, bufsize=0,
                                     stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
                                     preexec_fn=default_sigint)
        self.lines: list[str] = []

    def wait_for(self, marker: str) -> None:
        """Read stdout until the line ``marker``; fail if the program ends or hangs first."""
        assert self.proc.stdout is not None
        deadline = time.monotonic() + TIMEOUT
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([self.proc.stdout], [], [], remaining)[0]:
                self.kill()
                pytest.fail(f"no {marker!r} line within {TIMEOUT}s: {self.lines}")
            line = self.proc.stdout.readline().decode()  # unbuffered: reads no further than the line
            if not line:
                out, err = self.finish()
                pytest.fail(f"ended before {marker!r}: {self.lines} {out!r} {err!r}")
            self.lines.append(line.rstrip("\n"))
            if self.lines[-1] == marker:
                return

    def finish(self, stdin: Optional[bytes] = None) -> tuple[str, str]:
        try:
            out, err = self.proc.communicate(stdin, timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            self.kill()
            pytest.fail(f"still running {TIMEOUT}s after it should have ended: {self.lines}")
        self.lines.extend(out.decode().splitlines())
        return out.decode(), err.decode()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.communicate()


def run_to_end(mode: str, tmp_path: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], Path]:
    out = tmp_path / "report.json"
    argv, extra = command(mode, out, *args)
    try:
        result = subprocess.run(argv, env=child_env(tmp_path / "tmp", **extra), cwd=PROCESSES,
                                capture_output=True, text=True, timeout=TIMEOUT)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"{argv} still running after {TIMEOUT}s: {exc.stderr!r}")
    return result, out


def assert_no_children_folder(tmp_path: Path) -> None:
    tmp = tmp_path / "tmp"
    assert [p.name for p in tmp.iterdir() if p.name.startswith("lockwatch-children-")] == []


def assert_json_report(path: Path) -> None:
    data = report_of(path)
    assert len(data["potential_deadlocks"]) == 1
    assert data["internal_errors"] == []


# -- SIGTERM ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("doing", ["sleep", "blocked", "busy"])
def test_sigterm_writes_the_report_and_the_process_still_dies_of_it(tmp_path: Path, mode: str,
                                                                   doing: str) -> None:
    """SIGTERM while the program sleeps, waits for a lock another thread holds, or locks and
    unlocks in a tight loop (the handler then runs in the middle of lockwatch's own code)."""
    out = tmp_path / "report.json"
    argv, extra = command(mode, out, doing)
    prog = Program(argv, child_env(tmp_path / "tmp", **extra))
    prog.wait_for("ready")
    assert prog.lines[0] == "handler: lockwatch.control._install_sigterm.<locals>.on_sigterm"
    prog.proc.send_signal(signal.SIGTERM)
    _out, err = prog.finish()
    assert prog.proc.returncode == -signal.SIGTERM, err
    assert "not interrupted" not in prog.lines
    assert err.count(REPORT) == 1, err
    assert "Traceback" not in err
    assert_json_report(out)
    assert_no_children_folder(tmp_path)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("when", ["own-early", "own-late"])
def test_the_programs_own_sigterm_handler_is_kept(tmp_path: Path, mode: str, when: str) -> None:
    """A handler set before lockwatch switches on (before threading is imported, or before the
    CLI runs the program... the CLI's is set first, then replaced) or after: the program's runs,
    not lockwatch's; the program then exits as it chose and the report is written at exit."""
    out = tmp_path / "report.json"
    argv, extra = command(mode, out, when)
    prog = Program(argv, child_env(tmp_path / "tmp", **extra))
    prog.wait_for("ready")
    assert prog.lines[0] == "handler: own"
    prog.proc.send_signal(signal.SIGTERM)
    _out, err = prog.finish()
    assert prog.proc.returncode == 7, err
    assert "own handler ran" in prog.lines
    assert err.count(REPORT) == 1, err
    assert_json_report(out)
    assert_no_children_folder(tmp_path)


@pytest.mark.parametrize("mode", MODES)
def test_an_ignored_sigterm_stays_ignored(tmp_path: Path, mode: str) -> None:
    out = tmp_path / "report.json"
    argv, extra = command(mode, out, "ignore")
    prog = Program(argv, child_env(tmp_path / "tmp", **extra), stdin=True)
    prog.wait_for("ready")
    assert prog.lines[0] == "handler: SIG_IGN"
    prog.proc.send_signal(signal.SIGTERM)  # discarded by the kernel: nothing to wait for
    _out, err = prog.finish(b"go\n")
    assert prog.proc.returncode == 0, err
    assert "still running after SIGTERM: go" in prog.lines
    assert err.count(REPORT) == 1, err  # the normal report at exit
    assert_json_report(out)


# -- SIGINT, exceptions, os._exit -----------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_sigint_reports_and_exits_as_python_does(tmp_path: Path, mode: str) -> None:
    """Ctrl-C: the KeyboardInterrupt traceback, then the report. `python -m lockwatch` exits 130
    (documented); under the hook the status is python's own: killed by SIGINT, as without
    lockwatch (writing the report must not turn it into a plain exit 1)."""
    out = tmp_path / "report.json"
    argv, extra = command(mode, out, "sleep")
    prog = Program(argv, child_env(tmp_path / "tmp", **extra))
    prog.wait_for("ready")
    prog.proc.send_signal(signal.SIGINT)
    _out, err = prog.finish()
    assert prog.proc.returncode == (130 if mode == "cli" else -signal.SIGINT), err
    assert "KeyboardInterrupt" in err and err.count(REPORT) == 1, err
    assert err.index("KeyboardInterrupt") < err.index(REPORT)
    assert_json_report(out)
    assert_no_children_folder(tmp_path)


def test_sigint_without_lockwatch_kills_python_with_sigint(tmp_path: Path) -> None:
    """The reference for the hook's exit status above: the same program without lockwatch."""
    prog = Program([sys.executable, str(PROGRAM), "sleep"], child_env(tmp_path / "tmp"))
    prog.wait_for("ready")
    assert prog.lines[0] == "handler: SIG_DFL"
    prog.proc.send_signal(signal.SIGINT)
    _out, err = prog.finish()
    assert prog.proc.returncode == -signal.SIGINT
    assert "lockwatch:" not in err and PACKAGE_DIR not in err


@pytest.mark.parametrize("mode", MODES)
def test_an_exception_reports_and_exits_1(tmp_path: Path, mode: str) -> None:
    result, out = run_to_end(mode, tmp_path, "raise")
    assert result.returncode == 1, result.stderr
    err = result.stderr
    assert "RuntimeError: the program failed" in err and err.count(REPORT) == 1, err
    assert err.index("RuntimeError: the program failed") < err.index(REPORT)
    assert_json_report(out)
    assert_no_children_folder(tmp_path)


@pytest.mark.parametrize("mode", MODES)
def test_os_exit_in_the_program_passes_its_status_through_without_a_report(tmp_path: Path,
                                                                          mode: str) -> None:
    """Documented limit: os._exit() ends the process at once, without exit handlers, so no
    report is written (the CLI's own code after the program never runs either)."""
    result, out = run_to_end(mode, tmp_path, "exit", "5")
    assert result.returncode == 5, result.stderr
    assert result.stdout.startswith("handler: ")
    assert "lockwatch:" not in result.stderr and PACKAGE_DIR not in result.stderr
    assert not out.exists()


# -- SIGTERM in children right after fork ---------------------------------------------------------


@pytest.mark.parametrize("method", ["fork", "forkserver"])
@pytest.mark.parametrize("mode", MODES)
def test_a_child_terminated_right_after_start_dies_of_sigterm(tmp_path: Path, mode: str, method: str) -> None:
    """Pool.terminate() can signal a worker it has just started. A child inherits lockwatch's
    SIGTERM handler; CPython drops a signal that reaches a child before its interpreter has reset
    the signal state after fork(), so without care 5-22 % of these children outlived SIGTERM
    (CPython's forkserver Pool tests then hung in terminate()). Unwatched, every child dies of it."""
    if method not in __import__("multiprocessing").get_all_start_methods():
        pytest.skip(f"no {method} start method here")
    n = 60
    argv, extra = command(mode, tmp_path / "report.json")
    argv = [a if a != str(PROGRAM) else str(PROCESSES / "terminate_at_once.py") for a in argv]
    # A short TMPDIR: the forkserver's Unix socket path must stay under ~100 characters.
    short = Path(tempfile.mkdtemp(prefix="lw-"))
    try:
        proc = subprocess.run([*argv, method, str(n)], env=child_env(short, **extra), cwd=PROCESSES,
                              capture_output=True, text=True, timeout=TIMEOUT)
    finally:
        shutil.rmtree(short, ignore_errors=True)
    assert proc.returncode == 0, proc.stderr
    assert f"survived 0 of {n}; exit codes {{-{int(signal.SIGTERM)}: {n}}}" in proc.stdout, proc.stdout + proc.stderr


@pytest.mark.parametrize("method", ["fork", "forkserver"])
def test_pool_terminate_right_after_start_never_hangs(tmp_path: Path, method: str) -> None:
    """Pool.terminate() right after the Pool started: its workers are on their way to block on the
    task queue (a semaphore, a pipe). A Python-level SIGTERM handler in a worker runs only when
    its main thread next runs Python code, so a SIGTERM that came just before the block was never
    acted on and terminate() hung (with lockwatch's handler in the workers: about one Pool in
    30-40 on 3.13). Children keep SIGTERM's default action, as without lockwatch."""
    if method not in __import__("multiprocessing").get_all_start_methods():
        pytest.skip(f"no {method} start method here")
    n = 80
    short = Path(tempfile.mkdtemp(prefix="lw-"))  # the forkserver's socket path must stay short
    try:
        proc = subprocess.run([sys.executable, "-m", "lockwatch", "-q", "--json", str(tmp_path / "report.json"),
                               str(PROCESSES / "pool_terminate.py"), method, str(n)],
                              env=child_env(short), cwd=PROCESSES, capture_output=True, text=True, timeout=600)
    finally:
        shutil.rmtree(short, ignore_errors=True)
    assert proc.returncode == 0, proc.stderr
    assert f"terminate() hung 0 of {n}" in proc.stdout, proc.stdout + proc.stderr
