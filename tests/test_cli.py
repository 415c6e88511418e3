"""Tests for the command line (`python -m lockwatch` and the `lockwatch` script), in real subprocesses."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any, Optional

import pytest
from support import (
    FRAME,
    KINDS,
    PROGRAMS,
    PROJECT_ROOT,
    assert_follows_contract,
    default_sigint,
    line_of,
    lockwatch,
    python,
    report_of,
    write,
)
from support import child_env as env

from lockwatch.errors import UserError

pytestmark = pytest.mark.timeout(120)

PACKAGE_DIR = PROJECT_ROOT / "lockwatch"
CLI = PROGRAMS / "cli"
PROBES = PROGRAMS / "probes"
CONSOLE_SCRIPT = Path(sys.executable).parent / ("lockwatch.exe" if os.name == "nt" else "lockwatch")

EXIT_POTENTIAL_DEADLOCK = 86
REPORT_HEADER = "lockwatch: "  # first line of the text report, after a rule


def report_part(stderr: str) -> str:
    """The text report: from its first rule to the end."""
    assert REPORT_HEADER in stderr, stderr
    return stderr[stderr.index("=" * 20):]


def assert_one_error_line(result: subprocess.CompletedProcess[str], prog: str = "python -m lockwatch") -> str:
    assert result.returncode == 2, result
    assert result.stderr.count("\n") == 1 and result.stderr.endswith("\n"), result.stderr
    assert result.stderr.startswith(f"{prog}: error: "), result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""
    return result.stderr


# -- the program runs as under python ------------------------------------------------------------


@pytest.mark.parametrize("argv", [
    ["cli_probe.py", "a", "b"],
    ["cli_probe.py"],
    ["cli_probe.py", "--json", "x.json", "-q", "--fail-on-cycle", "-m", "os"],  # the program's own
    ["-m", "cli_probe_pkg.mod", "a", "b"],
    ["-m", "cli_probe", "--top", "3", "-q"],  # after -m MODULE, as after the script
    ["-m", "cli_probe", "--", "x"],
    ["-mcli_probe", "--json", "y.json"],
])
def test_program_sees_what_python_gives_it(argv: list[str]) -> None:
    expected = python(*argv, cwd=PROBES)
    actual = lockwatch("-q", *argv, cwd=PROBES)
    assert expected.returncode == 0, expected.stderr
    assert (actual.returncode, actual.stderr) == (0, "")
    assert actual.stdout == expected.stdout
    assert "name __main__" in actual.stdout
    assert "main is this module True" in actual.stdout


def test_options_before_the_module_are_lockwatchs_and_after_it_the_programs(tmp_path: Path) -> None:
    ours = tmp_path / "ours.json"
    expected = python("-m", "cli_probe", "--json", "theirs.json", "--top", "3", "-m", "x", cwd=PROBES)
    actual = lockwatch("--top", "2", "--json", str(ours), "-qm", "cli_probe",
                       "--json", "theirs.json", "--top", "3", "-m", "x", cwd=PROBES)
    assert (actual.returncode, actual.stderr) == (0, "")
    assert actual.stdout == expected.stdout
    assert report_of(ours)["format"] == "lockwatch-report"
    assert not (PROBES / "theirs.json").exists()


def test_script_probe_values() -> None:
    out = lockwatch("-q", "cli_probe.py", "a", "b", cwd=PROBES).stdout.splitlines()
    assert out[:4] == ["argv ['cli_probe.py', 'a', 'b']", f"path0 {PROBES}", "name __main__",
                       f"file {PROBES / 'cli_probe.py'}"]


def test_module_probe_values() -> None:
    out = lockwatch("-q", "-m", "cli_probe_pkg.mod", "x", cwd=PROBES).stdout.splitlines()
    mod = PROBES / "cli_probe_pkg" / "mod.py"
    assert out[:6] == [f"argv {[str(mod), 'x']!r}", f"path0 {PROBES}", "name __main__", f"file {mod}",
                       "spec cli_probe_pkg.mod", "package 'cli_probe_pkg'"]


# -- exit status, tracebacks, and the report whatever the ending ------------------------------------


@pytest.mark.parametrize("body, status, stderr", [
    ("print('hi')", 0, ""),
    ("import sys; sys.exit(3)", 3, ""),
    ("import sys; sys.exit()", 0, ""),
    ("import sys; sys.exit('fatal: msg')", 1, "fatal: msg\n"),
])
def test_exit_status_passes_through(tmp_path: Path, body: str, status: int, stderr: str) -> None:
    write(tmp_path / "prog.py", body)
    expected = python("prog.py", cwd=tmp_path)
    assert (expected.returncode, expected.stderr) == (status, stderr)
    actual = lockwatch("prog.py", cwd=tmp_path)
    assert actual.returncode == status
    assert actual.stdout == expected.stdout
    assert actual.stderr.startswith(stderr)  # the program's message first, then the report
    assert REPORT_HEADER in actual.stderr[len(stderr):]
    quiet = lockwatch("-q", "prog.py", cwd=tmp_path)
    assert (quiet.returncode, quiet.stderr) == (status, stderr)


CRASH = """\
import threading

guard = threading.Lock()

def inner():
    with guard:
        raise ValueError("boom")

def outer():
    inner()

print("before")
outer()
"""


def test_uncaught_exception_shows_the_programs_traceback_only(tmp_path: Path) -> None:
    write(tmp_path / "crash.py", CRASH)
    expected = python("crash.py", cwd=tmp_path)
    actual = lockwatch("crash.py", cwd=tmp_path)
    assert actual.returncode == expected.returncode == 1
    assert actual.stdout == "before\n"
    # Exactly python's traceback, then the report.
    assert actual.stderr.startswith(expected.stderr)
    assert actual.stderr[len(expected.stderr):].lstrip("=\n").startswith(REPORT_HEADER)
    assert "ValueError: boom" in expected.stderr and ", in inner" in expected.stderr
    assert str(PACKAGE_DIR) not in actual.stderr[:len(expected.stderr)]
    assert not re.search(r'File ".*lockwatch[/\\][^"]*\.py"', actual.stderr)
    # the lock the program took is reported (with its creation line)
    assert re.search(r"^  guard +Lock +crash\.py:\d+ +1 ", actual.stderr, re.M)


def test_uncaught_exception_in_a_module(tmp_path: Path) -> None:
    write(tmp_path / "crash.py", CRASH)
    actual = lockwatch("-m", "crash", cwd=tmp_path)
    assert actual.returncode == 1
    assert actual.stderr.startswith("Traceback (most recent call last):\n")
    assert f'File "{tmp_path / "crash.py"}", line 13, in <module>' in actual.stderr
    assert "runpy" not in actual.stderr and not re.search(r'File ".*lockwatch[/\\]', actual.stderr)
    assert REPORT_HEADER in actual.stderr


@pytest.mark.parametrize("how, status, message", [
    ("ok", 0, None),
    ("status3", 3, None),
    ("message", 1, "inversion: giving up\n"),
    ("raise", 1, "RuntimeError: inversion failed\n"),
    ("interrupt", 130, "KeyboardInterrupt\n"),
])
def test_report_is_printed_however_the_program_ends(tmp_path: Path, how: str, status: int,
                                                    message: Optional[str]) -> None:
    out = tmp_path / "report.json"
    result = lockwatch("--json", str(out), "inversion.py", how, cwd=CLI)
    assert result.returncode == status, result.stderr
    assert result.stdout.startswith("program ran\n")
    program_part, report = result.stderr.split("=" * 78, 1)
    if message:
        assert program_part.endswith(message)
    else:
        assert program_part == ""
    assert "lockwatch: 1 potential deadlock" in report
    data = report_of(out)
    assert len(data["potential_deadlocks"]) == 1


def test_ctrl_c_still_prints_the_report(tmp_path: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-m", "lockwatch", "inversion.py", "sleep"], cwd=CLI,
                            env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=default_sigint)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline() == "program ran\n"
        assert proc.stdout.readline() == "ready\n"
        proc.send_signal(signal.SIGINT)
        _out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130
    assert "KeyboardInterrupt" in err and "in <module>" in err
    assert err.index("KeyboardInterrupt") < err.index("lockwatch: 1 potential deadlock")


def test_atexit_handlers_run_once_while_recording(tmp_path: Path) -> None:
    write(tmp_path / "prog.py", """
        import atexit, sys, threading

        first = threading.Lock()
        second = threading.Lock()
        with first:
            with second:
                pass

        def goodbye():
            print("atexit ran")
            sys.stderr.write("atexit on stderr\\n")
            with second:  # the other order, only at exit
                with first:
                    pass

        atexit.register(goodbye)
        print("main done")
        """)
    result = lockwatch("prog.py", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "main done\natexit ran\n"
    assert result.stderr.count("atexit on stderr") == 1
    assert result.stderr.index("atexit on stderr") < result.stderr.index(REPORT_HEADER)
    assert "lockwatch: 1 potential deadlock" in result.stderr
    assert "in goodbye" in report_part(result.stderr)


def test_the_report_waits_for_the_programs_threads(tmp_path: Path) -> None:
    write(tmp_path / "prog.py", """
        import threading, time

        a = threading.Lock()
        b = threading.Lock()

        def late():
            time.sleep(0.3)
            with a:
                with b:
                    pass
            with b:
                with a:
                    pass
            print("late done", flush=True)

        threading.Thread(target=late).start()  # never joined: python waits for it at exit
        """)
    result = lockwatch("prog.py", cwd=tmp_path)
    assert result.returncode == 0
    assert result.stdout == "late done\n"
    assert "lockwatch: 1 potential deadlock" in result.stderr


# -- what is instrumented ---------------------------------------------------------------------------


def test_module_level_lock_of_an_imported_module_and_from_import(tmp_path: Path) -> None:
    out = tmp_path / "report.json"
    result = lockwatch("-q", "--json", str(out), "inversion.py", cwd=CLI)
    assert result.returncode == 0, result.stderr
    data = report_of(out)
    assert_follows_contract(data)
    helper_site = f"{CLI / 'lockhelper.py'}:{line_of(CLI / 'lockhelper.py', 'LOCK = threading.Lock()')}"
    mine_site = f"{CLI / 'inversion.py'}:{line_of(CLI / 'inversion.py', 'mine = Lock()')}"
    (finding,) = data["potential_deadlocks"]
    assert finding["scope"] == "instance"
    assert {lk["site"] for lk in finding["locks"]} == {helper_site, mine_site}
    assert {lk["name"] for lk in finding["locks"]} == {"LOCK", "mine"}
    assert sorted(e["thread"] for e in finding["edges"]) == ["backward", "forward"]
    for e in finding["edges"]:
        assert e["held_stack"] and e["acquire_stack"]
        for frame in e["held_stack"] + e["acquire_stack"]:
            assert frame.startswith(f"{CLI / 'inversion.py'}:"), frame


def test_locks_of_a_package_imported_by_dash_m_are_instrumented(tmp_path: Path) -> None:
    out = tmp_path / "report.json"
    result = lockwatch("-q", "--json", str(out), "-m", "lwpkg.inverted", cwd=CLI)
    assert (result.returncode, result.stdout) == (0, "module ran\n"), result.stderr
    data = report_of(out)
    (finding,) = data["potential_deadlocks"]
    init = CLI / "lwpkg" / "__init__.py"
    assert f"{init}:{line_of(init, 'PKG_LOCK = threading.Lock()')}" in {lk["site"] for lk in finding["locks"]}


# -- --json and the report contract -------------------------------------------------------------------


def all_frames(data: Any) -> list[str]:
    """Every frame of every stack of every potential deadlock."""
    return [f for p in data["potential_deadlocks"] for e in p["edges"]
            for f in e["held_stack"] + e["acquire_stack"]]


def test_json_report_follows_the_contract(tmp_path: Path) -> None:
    out = tmp_path / "report.json"
    result = lockwatch("--json", str(out), "all_kinds.py", cwd=CLI)
    assert result.returncode == 0, result.stderr
    data = report_of(out)
    assert_follows_contract(data)
    script = CLI / "all_kinds.py"
    # the program's own locks (the standard library's, e.g. logging's, may be listed too)
    mine = [lk for lk in data["locks"] if not lk["stdlib"]]
    sites = {lk["kind"]: lk["site"] for lk in mine}
    assert sites == {
        "Lock": f"{script}:{line_of(script, 'lock = threading.Lock()')}",
        "RLock": f"{script}:{line_of(script, 'rlock = threading.RLock()')}",
        "Condition": f"{script}:{line_of(script, 'cond = threading.Condition()')}",
        "Semaphore": f"{script}:{line_of(script, 'sem = threading.Semaphore(2)')}",
        "BoundedSemaphore": f"{script}:{line_of(script, 'bsem = threading.BoundedSemaphore(1)')}",
    }
    assert all(lk["acquisitions"] == 2 for lk in mine)
    assert {lk["kind"] for p in data["potential_deadlocks"] for lk in p["locks"]} == KINDS
    two = [p for p in data["potential_deadlocks"] if len(p["locks"]) == 2]
    assert any({lk["kind"] for lk in p["locks"]} == {"Lock", "BoundedSemaphore"} for p in two)
    frames = all_frames(data)
    assert any(FRAME.match(f).group("function") == "nested" for f in frames)
    assert any(FRAME.match(f).group("function") == "inverted" for f in frames)
    assert not any(f.startswith(str(PACKAGE_DIR)) for f in frames)
    assert REPORT_HEADER in result.stderr  # --json adds to the text report, does not replace it


def test_stacks_never_show_threading_internals(tmp_path: Path) -> None:
    out = tmp_path / "report.json"
    lockwatch("-q", "--json", str(out), "all_kinds.py", cwd=CLI)
    data = report_of(out)
    assert {FRAME.match(f).group("file") for f in all_frames(data)} == {str(CLI / "all_kinds.py")}


def test_json_of_a_clean_program(tmp_path: Path) -> None:
    out = tmp_path / "report.json"
    result = lockwatch("-q", "--json", str(out), "clean.py", cwd=CLI)
    assert (result.returncode, result.stderr, result.stdout) == (0, "", "clean ran\n")
    data = report_of(out)
    assert_follows_contract(data)
    assert data["potential_deadlocks"] == [] and data["deadlocks"] == []
    assert sorted((lk["name"], lk["kind"], lk["acquisitions"]) for lk in data["locks"] if not lk["stdlib"]) == [
        ("first", "Lock", 400), ("second", "RLock", 400)]


# -- --fail-on-cycle ----------------------------------------------------------------------------------


@pytest.mark.parametrize("argv, status", [
    (["inversion.py"], EXIT_POTENTIAL_DEADLOCK),
    (["-q", "inversion.py"], EXIT_POTENTIAL_DEADLOCK),
    (["clean.py"], 0),
    (["inversion.py", "status3"], 3),  # the program's own failure wins
    (["inversion.py", "raise"], 1),
    (["inversion.py", "message"], 1),
    (["clean.py", "4"], 4),
])
def test_fail_on_cycle(argv: list[str], status: int) -> None:
    result = lockwatch("--fail-on-cycle", *argv, cwd=CLI)
    assert result.returncode == status, result.stderr
    # the report (its first line follows a rule), unless -q; a status of 86 says why, last
    assert (f"{'=' * 78}\n{REPORT_HEADER}" in result.stderr) == ("-q" not in argv)
    closing = result.stderr.splitlines()[-1].startswith(f"lockwatch: exit status {EXIT_POTENTIAL_DEADLOCK} ")
    assert closing == (status == EXIT_POTENTIAL_DEADLOCK), result.stderr


def test_without_fail_on_cycle_an_inversion_exits_0() -> None:
    assert lockwatch("-q", "inversion.py", cwd=CLI).returncode == 0


# -- bad input ----------------------------------------------------------------------------------------


@pytest.fixture
def marker_program(tmp_path: Path) -> Path:
    """A program that leaves a file behind when it runs."""
    write(tmp_path / "prog.py", f"open({str(tmp_path / 'ran')!r}, 'w').close()\nprint('ran')\n")
    return tmp_path


@pytest.mark.parametrize("argv, says", [
    (["missing.py"], "No file to run: 'missing.py'"),
    (["-m", "no_such_module_xyz"], "No module named no_such_module_xyz"),
    (["--bogus", "prog.py"], "--bogus"),
    (["--json", "no/such/dir/report.json", "prog.py"], "does not exist"),
    (["--json", ".", "prog.py"], "directory"),
    (["--top", "bad", "prog.py"], "--top"),
    (["--top", "-1", "prog.py"], "--top"),
    (["--json"], "--json"),
    ([], "nothing to run"),
])
def test_bad_input_is_one_line_and_exit_2(marker_program: Path, argv: list[str], says: str) -> None:
    result = lockwatch(*argv, cwd=marker_program)
    message = assert_one_error_line(result)
    assert says in message
    assert not (marker_program / "ran").exists()  # the program did not start
    assert REPORT_HEADER + "no potential" not in result.stderr


def test_json_into_a_directory_does_not_run_the_program(marker_program: Path) -> None:
    (marker_program / "out").mkdir()
    result = lockwatch("--json", str(marker_program / "out"), "prog.py", cwd=marker_program)
    assert "directory" in assert_one_error_line(result)
    assert not (marker_program / "ran").exists()
    assert list((marker_program / "out").iterdir()) == []


def test_json_to_a_fresh_file(marker_program: Path) -> None:
    result = lockwatch("-q", "--json", "r.json", "prog.py", cwd=marker_program)
    assert (result.returncode, result.stdout, result.stderr) == (0, "ran\n", "")
    assert report_of(marker_program / "r.json")["format"] == "lockwatch-report"
    assert [p.name for p in marker_program.iterdir() if p.name.endswith(".tmp")] == []


# -- the plain form, parsed without click -------------------------------------------------------------

PLAIN = [["x.py"], ["x.py", "--json", "y.json", "-q"], ["-q", "x.py", "a"], ["--quiet", "x.py"],
         ["-q", "-q", "x.py"], ["-m", "pkg.mod", "--top", "3"], ["-q", "-m", "mod"], ["-m", "-q", "mod", "-m"],
         ["report.py"], ["-q", "report"]]
NOT_PLAIN = [[], ["-q"], ["-m"], ["-qm", "mod"], ["-mmod"], ["--top", "3", "x.py"], ["--", "x.py"], ["-"],
             ["-q", "--json=r.json", "x.py"], ["--fail-on-cycle", "x.py"], ["-h"], ["--version"]]


@pytest.mark.parametrize("argv", PLAIN)
def test_the_plain_form_means_what_click_makes_of_it(argv: list[str]) -> None:
    from lockwatch.cli.program import parse_plain
    from lockwatch.cli.run import command

    params = command.make_context("lockwatch", list(argv)).params
    assert parse_plain(argv) == (params.pop("as_module"), bool(params.pop("quiet")), list(params.pop("args")))
    assert set(params.values()) == {None}  # every other option: not given


@pytest.mark.parametrize("argv", NOT_PLAIN)
def test_other_forms_go_to_click(argv: list[str]) -> None:
    from lockwatch.cli.program import parse_plain

    assert parse_plain(argv) is None


@pytest.mark.parametrize("error, status, says", [
    (KeyboardInterrupt(), 130, "\n"),
    (EOFError(), 130, "\n"),
    (UserError("no such thing"), 2, "lockwatch: error: no such thing\n"),
    (PermissionError(13, "Permission denied", "out.json"), 2,
     "lockwatch: error: cannot write out.json: Permission denied\n"),
])
def test_what_a_run_raises_ends_alike_on_both_paths(monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str],
                                                   error: BaseException, status: int, says: str) -> None:
    import lockwatch.cli.program
    import lockwatch.cli.run
    from lockwatch.cli import main

    def run(*args: Any, **kwargs: Any) -> int:
        raise error

    monkeypatch.setattr(lockwatch.cli.program, "run", run)
    monkeypatch.setattr(lockwatch.cli.run, "run", run)
    for argv in (["-q", "x.py"], ["--top", "3", "x.py"]):  # plain, then through click
        assert main(argv) == status, argv
        out = capsys.readouterr()
        assert (out.out, out.err) == ("", says), argv


# -- help and version -----------------------------------------------------------------------------------


@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_help_shows_usage_and_examples(tmp_path: Path, flag: str) -> None:
    result = lockwatch(flag, cwd=tmp_path)
    assert (result.returncode, result.stderr) == (0, "")
    out = result.stdout
    assert out.startswith("Usage: python -m lockwatch [OPTIONS]")
    assert "script.py [ARGS]" in out and "-m module [ARGS]" in out
    assert "Examples:" in out
    examples = out[out.index("Examples:"):].splitlines()[1:4]
    assert all(line.strip().startswith("python -m lockwatch ") for line in examples)
    for option in ("--json PATH", "--fail-on-cycle", "-q, --quiet", "--top", "--version", "-h, --help"):
        assert option in out
    assert str(EXIT_POTENTIAL_DEADLOCK) in out


def test_help_after_the_script_belongs_to_the_program(tmp_path: Path) -> None:
    write(tmp_path / "prog.py", "import sys; print(sys.argv[1:])")
    result = lockwatch("-q", "prog.py", "--help", cwd=tmp_path)
    assert (result.returncode, result.stdout) == (0, "['--help']\n")


def test_version(tmp_path: Path) -> None:
    import lockwatch as package
    from lockwatch.proxies import CORE  # this process has the environment the command gets

    result = lockwatch("--version", cwd=tmp_path)
    assert (result.returncode, result.stdout) == (0, f"lockwatch {package.__version__} (core: {CORE})\n")
    if os.environ.get("LOCKWATCH_PURE_PYTHON", "") not in ("", "0"):
        assert CORE == "python"


# -- the console script -------------------------------------------------------------------------------


@pytest.fixture
def console_script() -> Path:
    if not CONSOLE_SCRIPT.exists():
        pytest.skip(f"no lockwatch console script next to {sys.executable}")
    return CONSOLE_SCRIPT


def test_console_script_runs_a_script_like_python(console_script: Path) -> None:
    for argv in (["cli_probe.py", "a", "b"], ["-m", "cli_probe_pkg.mod", "c"]):
        expected = python(*argv, cwd=PROBES)
        actual = python("-q", *argv, cwd=PROBES, interpreter=[str(console_script)])
        assert (actual.returncode, actual.stderr) == (0, "")
        assert actual.stdout == expected.stdout


def test_console_script_reports_and_fails_on_cycle(console_script: Path, tmp_path: Path) -> None:
    out = tmp_path / "report.json"
    result = python("--fail-on-cycle", "--json", str(out), "inversion.py", cwd=CLI, interpreter=[str(console_script)])
    assert result.returncode == EXIT_POTENTIAL_DEADLOCK
    assert "lockwatch: 1 potential deadlock" in result.stderr
    assert len(report_of(out)["potential_deadlocks"]) == 1


def test_console_script_bad_input(console_script: Path, tmp_path: Path) -> None:
    result = python("missing.py", cwd=tmp_path, interpreter=[str(console_script)])
    assert "No file to run" in assert_one_error_line(result, prog="lockwatch")
    help_out = python("--help", cwd=tmp_path, interpreter=[str(console_script)])
    assert help_out.returncode == 0 and help_out.stdout.startswith("Usage: lockwatch ")


def test_logging_imported_by_lockwatch_leaves_no_trace_in_the_report(tmp_path: Path) -> None:
    """lockwatch's own imports bring in logging; its exit-time flush must not put logging's locks
    in the report of a program that never used logging. A program that configures logging gets
    that flush recorded, as its own."""
    write(tmp_path / "plain.py", """
        import threading
        only = threading.Lock()
        with only:
            pass
    """)
    write(tmp_path / "logs.py", """
        import logging
        import threading
        logging.basicConfig(level=logging.INFO)
        only = threading.Lock()
        with only:
            logging.info("inside")
    """)
    for name in ("plain", "logs"):
        result = lockwatch("--json", f"{name}.json", f"{name}.py", cwd=tmp_path)
        assert result.returncode == 0, result.stderr
    plain = report_of(tmp_path / "plain.json")
    assert [lock["name"] for lock in plain["locks"]] == ["only"]
    assert plain["lock_order"] == []
    logs = report_of(tmp_path / "logs.json")
    logging_locks = [lock for lock in logs["locks"] if "logging" in lock["site"]]
    assert logging_locks and all(lock["acquisitions"] > 0 for lock in logging_locks)
