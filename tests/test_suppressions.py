"""Suppressions: by fingerprint or creation-site pattern, from [tool.lockwatch] in pyproject.toml
or a `--suppressions FILE`; bad settings stop the run before the program starts; the pytest
plugin honours them too. Real programs in subprocesses."""
from __future__ import annotations

import json
import shutil
import subprocess
import textwrap
from pathlib import Path
from typing import Any

import pytest
from support import SHOP, line_of, lockwatch

pytestmark = pytest.mark.timeout(180)

PROJECT_ROOT = Path(__file__).resolve().parents[1]
PROGRAMS = Path(__file__).resolve().parent / "programs" / "precision"
EXIT_POTENTIAL_DEADLOCK = 86
REASON = "reporter runs only after the writer has finished (startup ordering)"


def write(path: Path, content: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(content).lstrip("\n"))
    return path


def run_json(project: Path, *argv: str) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    out = project / "report.json"
    if out.exists():
        out.unlink()
    result = lockwatch("--json", str(out), *argv, cwd=project)
    assert "Traceback" not in result.stderr, result.stderr
    return result, json.loads(out.read_text())


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A project with one program, app.py, that has one cache/stats inversion."""
    proj = tmp_path / "proj"
    proj.mkdir()
    shutil.copy(PROGRAMS / "deadlock_abba.py", proj / "app.py")
    return proj


def fingerprints(report: dict[str, Any]) -> list[str]:
    return [p["fingerprint"] for p in report["potential_deadlocks"]]


def unsuppressed_fingerprint(project: Path, program: str = "app.py") -> str:
    result, report = run_json(project, "--fail-on-cycle", program)
    assert result.returncode == EXIT_POTENTIAL_DEADLOCK, result.stderr
    [fp] = fingerprints(report)
    return fp


def assert_suppressed(result: subprocess.CompletedProcess[str], report: dict[str, Any],
                      reason: str = REASON) -> None:
    assert result.returncode == 0, result.stderr
    [p] = report["potential_deadlocks"]  # still in the report, marked
    assert p["suppressed"] == reason
    assert p["fails"] is False
    assert {lk["name"] for lk in p["locks"]} == {"cache_lock", "stats_lock"}
    assert "lockwatch: no potential deadlocks found" in result.stderr
    assert "also: 1 suppressed" in result.stderr
    assert f"Suppressed (1):\n  {p['fingerprint']}  " in result.stderr
    assert f"({reason})" in result.stderr
    assert "Potential deadlock 1 of 1" not in result.stderr


# -- by fingerprint, in pyproject.toml ------------------------------------------------------------


def test_fingerprint_in_pyproject_suppresses_the_cycle(project: Path) -> None:
    fp = unsuppressed_fingerprint(project)
    write(project / "pyproject.toml", f"""
        [project]
        name = "app"

        [tool.lockwatch]
        suppress = [
            {{fingerprint = "{fp}", reason = "{REASON}"}},
        ]
    """)
    result, report = run_json(project, "--fail-on-cycle", "app.py")
    assert_suppressed(result, report)
    assert result.stdout == "report {'writes': 1, 'size': 1}\n"


def test_another_fingerprint_suppresses_nothing(project: Path) -> None:
    fp = unsuppressed_fingerprint(project)
    other = "0" * 12 if fp != "0" * 12 else "1" * 12
    write(project / "pyproject.toml", f"""
        [tool.lockwatch]
        suppress = [{{fingerprint = "{other}", reason = "{REASON}"}}]
    """)
    result, report = run_json(project, "--fail-on-cycle", "app.py")
    assert result.returncode == EXIT_POTENTIAL_DEADLOCK
    [p] = report["potential_deadlocks"]
    assert (p["suppressed"], p["fails"]) == (None, True)
    assert "suppressed" not in result.stderr


# -- by creation-site pattern ------------------------------------------------------------------


def test_site_pattern_suppresses_cycles_whose_locks_all_match(tmp_path: Path) -> None:
    proj = tmp_path / "proj"
    (proj / "legacy").mkdir(parents=True)
    shutil.copy(PROGRAMS / "deadlock_abba.py", proj / "legacy" / "abba.py")
    write(proj / "pyproject.toml", f"""
        [tool.lockwatch]
        suppress = [{{site = "*/legacy/*", reason = "{REASON}"}}]
    """)
    result, report = run_json(proj, "--fail-on-cycle", "legacy/abba.py")
    assert_suppressed(result, report)


def test_site_pattern_as_the_report_shows_the_site(project: Path) -> None:
    """The text report shows sites relative to the working directory ("app.py:7"): a pattern
    copied from it matches, though the recorded site is an absolute path."""
    app = project / "app.py"
    shown = [f"app.py:{line_of(app, f'{name} = threading.Lock()')}" for name in ("cache_lock", "stats_lock")]
    result = lockwatch("app.py", cwd=project)
    assert all(f"created at {site}" in result.stderr for site in shown), result.stderr
    write(project / "pyproject.toml", f"""
        [tool.lockwatch]
        suppress = [{{site = {json.dumps(shown)}, reason = "{REASON}"}}]
    """)
    result, report = run_json(project, "--fail-on-cycle", "app.py")
    assert_suppressed(result, report)
    assert report["unused_suppressions"] == []


def test_a_suppression_that_matched_nothing_is_listed(project: Path) -> None:
    write(project / "pyproject.toml", f"""
        [tool.lockwatch]
        suppress = [{{site = "*/vendor/*", reason = "vendored code"}},
                    {{site = "*/app.py:*", reason = "{REASON}"}}]
    """)
    result, report = run_json(project, "--fail-on-cycle", "app.py")
    assert result.returncode == 0, result.stderr
    [unused] = report["unused_suppressions"]
    assert "suppress entry 1" in unused and "*/vendor/*" in unused and "vendored code" in unused
    assert "1 suppression matched no potential deadlock" in result.stderr
    assert "suppress entry 2" not in result.stderr


@pytest.mark.parametrize("which, suppressed", [
    (("cache_lock", "stats_lock"), True),
    (("cache_lock",), False),  # every lock of the cycle must match one of the patterns
])
def test_site_pattern_list(project: Path, which: tuple[str, ...], suppressed: bool) -> None:
    app = project / "app.py"
    patterns = [f"*/app.py:{line_of(app, f'{name} = threading.Lock()')}" for name in which]
    write(project / "pyproject.toml", f"""
        [tool.lockwatch]
        suppress = [{{site = {json.dumps(patterns)}, reason = "{REASON}"}}]
    """)
    result, report = run_json(project, "--fail-on-cycle", "app.py")
    if suppressed:
        assert_suppressed(result, report)
    else:
        assert result.returncode == EXIT_POTENTIAL_DEADLOCK, result.stderr
        [p] = report["potential_deadlocks"]
        assert (p["suppressed"], p["fails"]) == (None, True)


# -- a suppressions file -------------------------------------------------------------------------


@pytest.mark.parametrize("form", ["top-level", "tool-table"])
def test_suppressions_file(project: Path, form: str) -> None:
    fp = unsuppressed_fingerprint(project)
    entry = f'{{fingerprint = "{fp}", reason = "{REASON}"}}'
    body = f"suppress = [{entry}]\n" if form == "top-level" else f"[tool.lockwatch]\nsuppress = [{entry}]\n"
    write(project / "ci" / "lockwatch-suppressions.toml", body)
    result, report = run_json(project, "--suppressions", "ci/lockwatch-suppressions.toml",
                              "--fail-on-cycle", "app.py")
    assert_suppressed(result, report)


def test_file_and_pyproject_suppressions_add_up(tmp_path: Path) -> None:
    """warehouse v2 has two inversions: pyproject.toml suppresses one, the file the other."""
    proj = tmp_path / "proj"
    proj.mkdir()
    shutil.copy(PROGRAMS / "warehouse_v2.py", proj / "app.py")
    result, report = run_json(proj, "--fail-on-cycle", "app.py")
    assert result.returncode == EXIT_POTENTIAL_DEADLOCK
    by_locks = {frozenset(lk["name"] for lk in p["locks"]): p["fingerprint"] for p in report["potential_deadlocks"]}
    stock = by_locks[frozenset({"inventory_lock", "orders_lock"})]
    money = by_locks[frozenset({"billing_lock", "ledger_lock"})]
    write(proj / "pyproject.toml", f"""
        [tool.lockwatch]
        suppress = [{{fingerprint = "{stock}", reason = "stock: fixed in #12"}}]
    """)
    result, report = run_json(proj, "--fail-on-cycle", "app.py")
    assert result.returncode == EXIT_POTENTIAL_DEADLOCK  # the other one still fails
    assert {p["fingerprint"]: p["suppressed"] for p in report["potential_deadlocks"]} == {
        stock: "stock: fixed in #12", money: None}
    assert "also: 1 suppressed" in result.stderr
    write(proj / "money.toml", f"""
        suppress = [{{fingerprint = "{money}", reason = "money: refunds are single-threaded"}}]
    """)
    result, report = run_json(proj, "--suppressions", "money.toml", "--fail-on-cycle", "app.py")
    assert result.returncode == 0, result.stderr
    assert {p["fingerprint"]: p["suppressed"] for p in report["potential_deadlocks"]} == {
        stock: "stock: fixed in #12", money: "money: refunds are single-threaded"}
    assert "also: 2 suppressed" in result.stderr


# -- bad settings: exit 2, one line naming the file, the program does not run ---------------------

MARKER_PROGRAM = """
    import pathlib
    import threading

    pathlib.Path("ran.txt").write_text("the program ran")
    a = threading.Lock()
    print("program output")
"""

BAD = {
    "unknown top-level key": ('supress = [{fingerprint = "abc", reason = "r"}]\n',
                              "unknown lockwatch setting(s) supress"),
    "unknown entry key": ('suppress = [{fingerprnt = "abc", reason = "r"}]\n', "unknown key(s) fingerprnt"),
    "entry without reason": ('suppress = [{fingerprint = "abc"}]\n', "needs a reason"),
    "blank reason": ('suppress = [{fingerprint = "abc", reason = "  "}]\n', "needs a reason"),
    "fingerprint and site": ('suppress = [{fingerprint = "abc", site = "*/x/*", reason = "r"}]\n',
                             "needs exactly one of fingerprint or site"),
    "neither fingerprint nor site": ('suppress = [{reason = "r"}]\n', "needs exactly one of fingerprint or site"),
    "entry not a table": ('suppress = ["abc"]\n', "suppress entry 1 must be a table"),
    "bad TOML": ('suppress = [{fingerprint = "abc", reason = "r"}\n', "is not valid TOML"),
    "not a fingerprint": ('suppress = [{fingerprint = "abc", reason = "r"}]\n',
                          "fingerprint must be the 12 hexadecimal digits"),
    "suppress not a list": ('suppress = {fingerprint = "0123456789ab", reason = "r"}\n',
                            "suppress must be a list of tables"),
    "site not a pattern": ('suppress = [{site = 5, reason = "r"}]\n', "site must be a pattern"),
}


def assert_stopped_before_the_program(result: subprocess.CompletedProcess[str], project: Path,
                                      names: str, says: str) -> None:
    assert result.returncode == 2, (result.returncode, result.stderr)
    assert result.stderr.endswith("\n") and result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith("python -m lockwatch: error: "), result.stderr
    assert names in result.stderr and says in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""
    assert not (project / "ran.txt").exists()


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_suppressions_file(tmp_path: Path, case: str) -> None:
    body, says = BAD[case]
    write(tmp_path / "prog.py", MARKER_PROGRAM)
    write(tmp_path / "sup.toml", body)
    result = lockwatch("--suppressions", "sup.toml", "prog.py", cwd=tmp_path)
    assert_stopped_before_the_program(result, tmp_path, "sup.toml", says)


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_tool_lockwatch_in_pyproject(tmp_path: Path, case: str) -> None:
    body, says = BAD[case]
    write(tmp_path / "prog.py", MARKER_PROGRAM)
    write(tmp_path / "pyproject.toml", "[tool.lockwatch]\n" + body)
    result = lockwatch("prog.py", cwd=tmp_path)
    assert_stopped_before_the_program(result, tmp_path, str(tmp_path / "pyproject.toml"), says)


@pytest.mark.parametrize("body, says", [
    ("tool = 5\n", "tool must be a table"),
    ("[tool.other]\nx = 1\n", "has no [tool.lockwatch] table"),
])
def test_suppressions_file_without_a_lockwatch_table(tmp_path: Path, body: str, says: str) -> None:
    write(tmp_path / "prog.py", MARKER_PROGRAM)
    write(tmp_path / "sup.toml", body)
    result = lockwatch("--suppressions", "sup.toml", "prog.py", cwd=tmp_path)
    assert_stopped_before_the_program(result, tmp_path, "sup.toml", says)


def test_pyproject_whose_tool_is_not_a_table(tmp_path: Path) -> None:
    write(tmp_path / "prog.py", MARKER_PROGRAM)
    write(tmp_path / "pyproject.toml", "tool = 5\n")
    result = lockwatch("prog.py", cwd=tmp_path)
    assert_stopped_before_the_program(result, tmp_path, "pyproject.toml", "tool must be a table")


def test_missing_suppressions_file(tmp_path: Path) -> None:
    write(tmp_path / "prog.py", MARKER_PROGRAM)
    result = lockwatch("--suppressions", "nope.toml", "prog.py", cwd=tmp_path)
    assert_stopped_before_the_program(result, tmp_path, "nope.toml", "cannot read")


def test_a_good_file_runs_the_program(tmp_path: Path) -> None:
    """The marker program does run when the settings are fine (the checks above can fail)."""
    write(tmp_path / "prog.py", MARKER_PROGRAM)
    write(tmp_path / "sup.toml", 'suppress = [{site = "*/vendor/*", reason = "vendored"}]\n')
    result = lockwatch("--suppressions", "sup.toml", "prog.py", cwd=tmp_path)
    assert (result.returncode, result.stdout) == (0, "program output\n")
    assert (tmp_path / "ran.txt").exists()


# -- the pytest plugin ------------------------------------------------------------------------------



@pytest.fixture
def shop(shop_project: Any) -> pytest.Pytester:
    return shop_project(SHOP)


def shop_fingerprint(shop: pytest.Pytester) -> str:
    result = shop.runpytest_subprocess("--lockwatch", "--lockwatch-json", "r.json", timeout=120)
    assert result.ret == 1, result.stdout.str()
    result.assert_outcomes(passed=1, failed=1)
    [p] = json.loads((shop.path / "r.json").read_text())["potential_deadlocks"]
    assert p["fails"] is True
    return p["fingerprint"]


def test_pytest_plugin_honours_pyproject_suppression(shop: pytest.Pytester) -> None:
    fp = shop_fingerprint(shop)
    shop.makepyprojecttoml(f"""
        [tool.lockwatch]
        suppress = [{{fingerprint = "{fp}", reason = "restock runs at night only"}}]
    """)
    result = shop.runpytest_subprocess("--lockwatch", "--lockwatch-json", "r2.json", timeout=120)
    assert result.ret == 0, result.stdout.str()
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*also: 1 suppressed*", f"*{fp}*restock runs at night only*"])
    [p] = json.loads((shop.path / "r2.json").read_text())["potential_deadlocks"]
    assert (p["suppressed"], p["fails"]) == ("restock runs at night only", False)


def test_pytest_plugin_suppressions_file(shop: pytest.Pytester) -> None:
    fp = shop_fingerprint(shop)
    (shop.path / "sup.toml").write_text(f'suppress = [{{fingerprint = "{fp}", reason = "known"}}]\n')
    result = shop.runpytest_subprocess("--lockwatch", "--lockwatch-suppressions", "sup.toml", timeout=120)
    assert result.ret == 0, result.stdout.str()
    result.assert_outcomes(passed=2)
    shop.makeini("[pytest]\nlockwatch = true\nlockwatch_suppressions = sup.toml\n")
    result = shop.runpytest_subprocess(timeout=120)
    assert result.ret == 0, result.stdout.str()
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*also: 1 suppressed*"])


def test_pytest_plugin_bad_suppressions_is_a_usage_error(shop: pytest.Pytester) -> None:
    (shop.path / "sup.toml").write_text('suppress = [{fingerprint = "abc"}]\n')
    result = shop.runpytest_subprocess("--lockwatch", "--lockwatch-suppressions", "sup.toml", timeout=120)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*lockwatch: sup.toml: suppress entry 1 needs a reason*"])
    assert "Traceback" not in result.stderr.str()
    assert "passed" not in result.stdout.str()  # no test ran
