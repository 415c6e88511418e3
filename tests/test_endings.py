"""Clear endings: the line that says why the status is 86 or 87 (also with -q), and a damaged
baseline refused with one line from every entry point."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from support import child_env, lockwatch, python, write

from lockwatch.settings import EXIT_DEADLOCK, EXIT_POTENTIAL_DEADLOCK, EXIT_USAGE

pytestmark = pytest.mark.timeout(900)  # several pytest runs in subprocesses, on a busy machine

INVERSION = """
    import threading
    a, b = threading.Lock(), threading.Lock()
    with a:
        with b:
            pass
    with b:
        with a:
            pass
    print("RAN")
"""

# Two threads really deadlock; a barrier makes sure both hold their first lock first.
HANG = """
    import threading
    a, b = threading.Lock(), threading.Lock()
    ready = threading.Barrier(2)
    def take(first, second):
        with first:
            ready.wait(120)
            with second:
                pass
    threading.Thread(target=take, args=(a, b), daemon=True).start()
    take(b, a)
"""


@pytest.mark.parametrize("quiet", [[], ["-q"]], ids=["report", "quiet"])
def test_status_86_ends_with_the_line_that_says_why(tmp_path: Path, quiet: list[str]) -> None:
    prog = write(tmp_path / "prog.py", INVERSION)
    proc = lockwatch(*quiet, "--fail-on-cycle", str(prog), cwd=tmp_path)
    assert proc.returncode == EXIT_POTENTIAL_DEADLOCK
    assert proc.stdout == "RAN\n"
    last = proc.stderr.splitlines()[-1]
    assert last == (f"lockwatch: exit status {EXIT_POTENTIAL_DEADLOCK} (--fail-on-cycle): the program "
                    "succeeded, but lockwatch found 1 potential deadlock that can hang (a -> b -> a)")
    if quiet:
        assert proc.stderr == last + "\n"


def test_no_closing_line_without_fail_on_cycle(tmp_path: Path) -> None:
    prog = write(tmp_path / "prog.py", INVERSION)
    proc = lockwatch("-q", str(prog), cwd=tmp_path)
    assert (proc.returncode, proc.stderr) == (0, "")


@pytest.mark.parametrize("quiet", [[], ["-q"]], ids=["report", "quiet"])
def test_status_87_ends_with_the_line_that_says_why(tmp_path: Path, quiet: list[str]) -> None:
    prog = write(tmp_path / "hang.py", HANG)
    proc = lockwatch(*quiet, "--deadlock-timeout", "0.5", str(prog), cwd=tmp_path)
    assert proc.returncode == EXIT_DEADLOCK
    assert "lockwatch: DEADLOCK DETECTED" in proc.stderr
    assert proc.stderr.splitlines()[-1] == (
        f"lockwatch: exit status {EXIT_DEADLOCK}: threads really deadlocked (--on-deadlock exit); "
        "lockwatch ended the process instead of leaving it hanging")


# -- a damaged baseline: one line naming the file and the field, from every entry point --------------

DAMAGED = {
    "cycles is not a list": {"cycles": "nope"},
    "it has no cycles list": {},
    "cycles[0] is not an object": {"cycles": [1]},
    "cycles[1].fingerprint is missing": {"cycles": [{"fingerprint": "abc"}, {"locks": []}]},
    "cycles[0].locks is not a list": {"cycles": [{"fingerprint": "abc", "locks": "a"}]},
}


def _baseline(folder: Path, body: dict) -> Path:
    return write(folder / "base.json", json.dumps({"format": "lockwatch-baseline", "version": 1, **body}))


def _one_line(text: str, problem: str) -> str:
    lines = [line for line in text.splitlines() if "damaged lockwatch baseline" in line]
    assert len(lines) == 1, text
    assert lines[0].endswith(f"base.json is a damaged lockwatch baseline ({problem})"), lines[0]
    assert "Traceback" not in text, text
    return lines[0]


@pytest.mark.parametrize("problem", sorted(DAMAGED))
def test_damaged_baseline_cli(tmp_path: Path, problem: str) -> None:
    base = _baseline(tmp_path, DAMAGED[problem])
    prog = write(tmp_path / "prog.py", INVERSION)
    proc = lockwatch("--baseline", str(base), str(prog), cwd=tmp_path)
    assert proc.returncode == EXIT_USAGE and proc.stdout == "", proc  # refused before the program ran
    _one_line(proc.stderr, problem)


def test_damaged_baseline_from_every_other_entry_point(tmp_path: Path, pytester: pytest.Pytester) -> None:
    problem = "cycles is not a list"
    base = _baseline(tmp_path, DAMAGED[problem])
    prog = write(tmp_path / "prog.py", INVERSION)
    # [tool.lockwatch] baseline = ..., read by the CLI
    write(tmp_path / "pyproject.toml", f"[tool.lockwatch]\nbaseline = {str(base)!r}\n")
    proc = lockwatch(str(prog), cwd=tmp_path)
    assert proc.returncode == EXIT_USAGE and proc.stdout == "", proc
    _one_line(proc.stderr, problem)
    (tmp_path / "pyproject.toml").unlink()
    # enable(baseline=...): the API raises the error, whose text is the one line
    api = write(tmp_path / "api.py", f"""
        import lockwatch
        try:
            lockwatch.enable(baseline={str(base)!r}, report_at_exit=False)
        except lockwatch.errors.UserError as exc:
            print("ERROR", exc)
    """)
    proc = python(str(api), cwd=tmp_path)
    assert proc.returncode == 0, proc
    _one_line(proc.stdout, problem)
    # LOCKWATCH_BASELINE: one warning line, and the program runs unwatched
    proc = python(str(prog), cwd=tmp_path, env=child_env(LOCKWATCH="1", LOCKWATCH_BASELINE=str(base)))
    assert proc.stdout == "RAN\n", proc
    _one_line(proc.stderr, problem)
    # pytest --lockwatch-baseline: a usage error
    pytester.makepyfile(test_ok="def test_ok():\n    pass\n")
    result = pytester.runpytest_subprocess("--lockwatch", "--lockwatch-baseline", str(base), timeout=300)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    _one_line(result.stderr.str(), problem)


def test_pytest_on_deadlock_exit_says_why(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_hang=HANG.replace("take(b, a)\n", "def test_hang():\n        take(b, a)\n"))
    result = pytester.runpytest_subprocess("--lockwatch", "--lockwatch-on-deadlock", "exit",
                                           "--lockwatch-deadlock-timeout", "0.5", timeout=300)
    assert result.ret == EXIT_DEADLOCK
    assert result.stderr.lines[-1].startswith(f"lockwatch: exit status {EXIT_DEADLOCK}: threads really deadlocked")
