"""The CI baseline (`lockwatch baseline`, `--baseline`, `--lockwatch-baseline`) and the stable
fingerprints it rests on. Real programs in subprocesses, in throw-away project directories."""
from __future__ import annotations

import glob
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from support import child_env as env
from support import lockwatch, report_of

pytestmark = pytest.mark.timeout(900)  # up to four lockwatch runs a test, on a busy machine

PROJECT_ROOT = Path(__file__).resolve().parents[1]
PROGRAMS = Path(__file__).resolve().parent / "programs" / "precision"
EXIT_POTENTIAL_DEADLOCK = 86
STOCK = frozenset({"inventory_lock", "orders_lock"})  # the inversion of warehouse v1
MONEY = frozenset({"billing_lock", "ledger_lock"})  # the one v2 adds


def by_locks(report: dict[str, Any]) -> dict[frozenset, dict[str, Any]]:
    return {frozenset(lk["name"] for lk in p["locks"]): p for p in report["potential_deadlocks"]}


def assert_one_error_line(result: subprocess.CompletedProcess[str], prog: str, *says: str) -> None:
    assert result.returncode == 2, (result.returncode, result.stderr)
    assert result.stderr.endswith("\n") and result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith(f"{prog}: error: "), result.stderr
    for s in says:
        assert s in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    proj = tmp_path / "warehouse"
    proj.mkdir()
    return proj


def install(project: Path, version: int) -> None:
    """The program evolves in place: app.py is warehouse v1, v2 or v3."""
    shutil.copy(PROGRAMS / f"warehouse_v{version}.py", project / "app.py")


def record_baseline(project: Path) -> str:
    """Run v1, save its report, write the baseline; the fingerprint of v1's inversion."""
    install(project, 1)
    first = lockwatch("-q", "--json", "r1.json", "--fail-on-cycle", "app.py", cwd=project)
    assert first.returncode == EXIT_POTENTIAL_DEADLOCK, first.stderr
    [p] = report_of(project / "r1.json")["potential_deadlocks"]
    assert frozenset(lk["name"] for lk in p["locks"]) == STOCK
    made = lockwatch("baseline", "r1.json", "-o", "base.json", cwd=project)
    assert made.returncode == 0, made.stderr
    assert made.stderr == "lockwatch: wrote a baseline of 1 potential deadlock(s) to base.json\n"
    base = report_of(project / "base.json")
    assert (base["format"], base["version"]) == ("lockwatch-baseline", 1)
    assert [c["fingerprint"] for c in base["cycles"]] == [p["fingerprint"]]
    assert base["cycles"][0]["locks"] == ["inventory_lock (Lock) app.py:5", "orders_lock (Lock) app.py:6"]
    return p["fingerprint"]


# -- the flow: record, then only new cycles fail ---------------------------------------------------


def test_known_cycle_does_not_fail(project: Path) -> None:
    fp = record_baseline(project)
    again = lockwatch("--json", "r.json", "--baseline", "base.json", "--fail-on-cycle", "app.py", cwd=project)
    assert again.returncode == 0, again.stderr
    assert again.stdout == "stock {'widget': 4}\n"
    [p] = report_of(project / "r.json")["potential_deadlocks"]
    assert (p["fingerprint"], p["known"], p["fails"], p["triage"]) == (fp, True, False, "deadlock")
    assert "also: 1 known from the baseline" in again.stderr
    assert f"fingerprint: {fp}   (known: in the baseline)" in again.stderr
    assert report_of(project / "r.json")["baseline_gone"] == []


def test_new_cycle_fails_and_only_it(project: Path) -> None:
    fp = record_baseline(project)
    install(project, 2)
    result = lockwatch("--json", "r2.json", "--baseline", "base.json", "--fail-on-cycle", "app.py", cwd=project)
    assert result.returncode == EXIT_POTENTIAL_DEADLOCK, result.stderr
    found = by_locks(report_of(project / "r2.json"))
    assert set(found) == {STOCK, MONEY}
    assert (found[STOCK]["fingerprint"], found[STOCK]["known"], found[STOCK]["fails"]) == (fp, True, False)
    assert (found[MONEY]["known"], found[MONEY]["fails"]) == (False, True)
    assert found[MONEY]["fingerprint"] != fp
    # the failing one is listed first, the known one is marked
    assert result.stderr.index("billing_lock") < result.stderr.index("(known: in the baseline)")


def test_fixed_cycle_is_reported_as_no_longer_seen(project: Path) -> None:
    fp = record_baseline(project)
    install(project, 3)
    result = lockwatch("--json", "r3.json", "--baseline", "base.json", "--fail-on-cycle", "app.py", cwd=project)
    assert result.returncode == 0, result.stderr
    report = report_of(project / "r3.json")
    assert report["potential_deadlocks"] == []
    assert [g["fingerprint"] for g in report["baseline_gone"]] == [fp]
    assert "1 cycle in the baseline no longer seen" in result.stderr
    assert f"  {fp}  inventory_lock (Lock) app.py:5; orders_lock (Lock) app.py:6" in result.stderr


def test_baseline_named_in_pyproject(project: Path) -> None:
    fp = record_baseline(project)
    (project / "ci").mkdir()
    shutil.move(str(project / "base.json"), project / "ci" / "base.json")
    (project / "pyproject.toml").write_text('[tool.lockwatch]\nbaseline = "ci/base.json"\n')
    result = lockwatch("--json", "r.json", "--fail-on-cycle", "app.py", cwd=project)
    assert result.returncode == 0, result.stderr
    [p] = report_of(project / "r.json")["potential_deadlocks"]
    assert (p["fingerprint"], p["known"]) == (fp, True)
    # Named but not written yet: everything is new, not an error.
    (project / "ci" / "base.json").unlink()
    result = lockwatch("-q", "--fail-on-cycle", "app.py", cwd=project)
    assert result.returncode == EXIT_POTENTIAL_DEADLOCK
    # -q: no report, only the closing line that says why the status is 86
    assert result.stderr.startswith(f"lockwatch: exit status {EXIT_POTENTIAL_DEADLOCK} (--fail-on-cycle)")
    assert result.stderr.count("\n") == 1, result.stderr


def test_baseline_written_from_another_directory_matches(project: Path) -> None:
    """`lockwatch baseline` need not run where the program ran (fingerprints hold paths relative
    to the project)."""
    fp = record_baseline(project)
    made = lockwatch("baseline", str(project / "r1.json"), "-o", str(project / "elsewhere.json"),
                     cwd=project.parent)
    assert made.returncode == 0, made.stderr
    assert [c["fingerprint"] for c in report_of(project / "elsewhere.json")["cycles"]] == [fp]
    result = lockwatch("-q", "--baseline", "elsewhere.json", "--fail-on-cycle", "app.py", cwd=project)
    assert (result.returncode, result.stderr) == (0, "")


def test_baseline_holds_only_what_would_fail(project: Path) -> None:
    """Two saved reports merged: warehouse v2 (two failing cycles) and a guarded program (a
    cycle that does not fail): the baseline lists the two, sorted by fingerprint."""
    install(project, 2)
    shutil.copy(PROGRAMS / "guarded.py", project / "guarded.py")
    assert lockwatch("-q", "--json", "a.json", "app.py", cwd=project).returncode == 0
    assert lockwatch("-q", "--json", "b.json", "guarded.py", cwd=project).returncode == 0
    [guarded] = report_of(project / "b.json")["potential_deadlocks"]
    assert guarded["triage"] == "guarded"
    made = lockwatch("baseline", "a.json", "b.json", "-o", "-", cwd=project)
    assert made.returncode == 0, made.stderr
    cycles = json.loads(made.stdout)["cycles"]
    expected = sorted(p["fingerprint"] for p in report_of(project / "a.json")["potential_deadlocks"])
    assert [c["fingerprint"] for c in cycles] == expected and len(expected) == 2
    assert guarded["fingerprint"] not in made.stdout


# -- bad baselines -------------------------------------------------------------------------------

BAD_BASELINES = {
    "not JSON": ("{oops", "is not a lockwatch baseline (not JSON)"),
    "a report, not a baseline": (json.dumps({"format": "lockwatch-report", "version": 1}),
                                 "is not a lockwatch baseline"),
    "version 99": (json.dumps({"format": "lockwatch-baseline", "version": 99, "cycles": []}),
                   "version 99"),
}


@pytest.mark.parametrize("case", sorted(BAD_BASELINES))
def test_bad_baseline_is_one_line_and_the_program_does_not_run(tmp_path: Path, case: str) -> None:
    content, says = BAD_BASELINES[case]
    (tmp_path / "base.json").write_text(content)
    (tmp_path / "prog.py").write_text("import pathlib\npathlib.Path('ran.txt').write_text('ran')\nprint('ran')\n")
    result = lockwatch("--baseline", "base.json", "--fail-on-cycle", "prog.py", cwd=tmp_path)
    assert_one_error_line(result, "python -m lockwatch", "base.json", says)
    assert not (tmp_path / "ran.txt").exists()


def test_missing_baseline_given_on_the_command_line(tmp_path: Path) -> None:
    (tmp_path / "prog.py").write_text("print('ran')\n")
    result = lockwatch("--baseline", "nope.json", "prog.py", cwd=tmp_path)
    assert_one_error_line(result, "python -m lockwatch", "nope.json")


@pytest.mark.parametrize("content", ["{oops", json.dumps({"format": "lockwatch-baseline", "version": 1})])
def test_baseline_command_rejects_what_is_not_a_report(tmp_path: Path, content: str) -> None:
    (tmp_path / "r.json").write_text(content)
    result = lockwatch("baseline", "r.json", "-o", "base.json", cwd=tmp_path)
    assert_one_error_line(result, "python -m lockwatch baseline", "r.json")
    assert not (tmp_path / "base.json").exists()


# -- through pytest ---------------------------------------------------------------------------------

SHOP = """
    import threading

    _cart_lock = threading.Lock()
    _stock_lock = threading.Lock()
    _audit_lock = threading.Lock()


    def checkout():
        with _cart_lock:
            with _stock_lock:  # cart -> stock
                return "checked out"


    def restock():
        with _stock_lock:
            with _cart_lock:  # stock -> cart
                return "restocked"


    def audit_then_cart():
        with _audit_lock:
            with _cart_lock:  # audit -> cart
                return "audited"


    def cart_then_audit():
        with _cart_lock:
            with _audit_lock:  # cart -> audit
                return "logged"
"""


@pytest.fixture
def shop(shop_project: Any) -> pytest.Pytester:
    return shop_project(SHOP)


def test_pytest_baseline_flow(shop: pytest.Pytester) -> None:
    first = shop.runpytest_subprocess("--lockwatch", "--lockwatch-json", "r1.json", timeout=120)
    assert first.ret == 1
    first.assert_outcomes(passed=1, failed=1)
    [known] = report_of(shop.path / "r1.json")["potential_deadlocks"]
    made = lockwatch("baseline", "r1.json", "-o", "base.json", cwd=shop.path)
    assert made.returncode == 0, made.stderr

    again = shop.runpytest_subprocess("--lockwatch", "--lockwatch-baseline", "base.json",
                                      "--lockwatch-json", "r2.json", timeout=120)
    assert again.ret == 0, again.stdout.str()
    again.assert_outcomes(passed=2)
    again.stdout.fnmatch_lines(["*also: 1 known from the baseline*"])
    [p] = report_of(shop.path / "r2.json")["potential_deadlocks"]
    assert (p["fingerprint"], p["known"], p["fails"]) == (known["fingerprint"], True, False)

    shop.makepyfile(test_audit="""
        from shop import audit_then_cart, cart_then_audit

        def test_audit():
            assert audit_then_cart() == "audited"
            assert cart_then_audit() == "logged"
    """)
    shop.makeini("[pytest]\nlockwatch = true\nlockwatch_baseline = base.json\n")
    new = shop.runpytest_subprocess("--lockwatch-json", "r3.json", timeout=120)
    assert new.ret == 1, new.stdout.str()
    new.assert_outcomes(passed=2, failed=1)
    new.stdout.fnmatch_lines(["*FAILED test_audit.py::test_audit*"])
    found = by_locks(report_of(shop.path / "r3.json"))
    assert found[frozenset({"_cart_lock", "_stock_lock"})]["fails"] is False
    assert found[frozenset({"_cart_lock", "_audit_lock"})]["fails"] is True


def test_pytest_bad_baseline_is_a_usage_error(shop: pytest.Pytester) -> None:
    (shop.path / "base.json").write_text("[1, 2]")
    result = shop.runpytest_subprocess("--lockwatch", "--lockwatch-baseline", "base.json", timeout=120)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*lockwatch: base.json is not a lockwatch baseline*"])
    assert "passed" not in result.stdout.str()


# -- stable fingerprints -----------------------------------------------------------------------------

FP_PROJECT = PROGRAMS / "fp_project"


def fingerprint_in(project: Path, python: str = sys.executable,
                   names: frozenset = frozenset({"Ledger.entries_lock", "Ledger.totals_lock"})
                   ) -> tuple[str, list[str]]:
    """Run fp_project/run.py from ``project`` (its own directory): the cycle's fingerprint and
    its lock sites."""
    out = project / "r.json"
    result = lockwatch("-q", "--json", str(out), "run.py", cwd=project, interpreter=[python])
    assert (result.returncode, result.stdout, result.stderr) == (0, "total 12\n", "")
    [p] = report_of(out)["potential_deadlocks"]
    assert {lk["name"] for lk in p["locks"]} == names
    return p["fingerprint"], [lk["site"] for lk in p["locks"]]


def copy_project(dest: Path) -> Path:
    shutil.copytree(FP_PROJECT, dest, ignore=shutil.ignore_patterns("__pycache__", "*.json"))
    return dest


def test_fingerprint_is_the_same_from_two_copies_of_the_project(tmp_path: Path) -> None:
    a = copy_project(tmp_path / "a" / "ledger-app")
    b = copy_project(tmp_path / "b" / "somewhere" / "else" / "checkout")
    fp_a, sites_a = fingerprint_in(a)
    fp_b, sites_b = fingerprint_in(b)
    assert fp_a == fp_b
    assert sites_a != sites_b  # the absolute paths did differ


def test_fingerprint_survives_shifted_lines_but_not_a_renamed_lock(tmp_path: Path) -> None:
    a = copy_project(tmp_path / "a")
    fp, sites = fingerprint_in(a)
    accounts = a / "ledger" / "accounts.py"
    src = accounts.read_text()
    shifted = src.replace("import threading\n", "import threading\n\n\n# Ledger of postings.\n\n", 1)
    shifted = shifted.replace("        self.entries_lock", "\n\n        self.entries_lock", 1)
    accounts.write_text(shifted)
    fp2, sites2 = fingerprint_in(a)
    assert fp2 == fp
    assert sites2 != sites  # the creation lines did move
    accounts.write_text(shifted.replace("totals_lock", "sums_lock"))
    fp3, _ = fingerprint_in(a, names=frozenset({"Ledger.entries_lock", "Ledger.sums_lock"}))
    assert fp3 != fp  # the fingerprint does depend on what the locks are


def _other_interpreters() -> list[str]:
    """Other Python versions that can run lockwatch from this checkout (wrapt, networkx and click
    importable): the /tmp/fp312 venv, /tmp venvs, pyenv's versions, pythonX.Y on PATH."""
    candidates = ["/tmp/fp312/bin/python", *sorted(glob.glob("/tmp/venv-3.*/bin/python"))]
    root = os.environ.get("PYENV_ROOT") or os.path.expanduser("~/.pyenv")
    candidates += sorted(glob.glob(os.path.join(root, "versions", "3.*", "bin", "python")))
    candidates += [p for minor in range(9, 14) if (p := shutil.which(f"python3.{minor}"))]
    probe = ("import sys, wrapt, networkx, click\n"
             "if sys.version_info < (3, 11): import tomli\n"
             "print('%d.%d' % sys.version_info[:2])")
    mine = "{}.{}".format(*sys.version_info[:2])
    found, versions = [], set()
    for exe in candidates:
        if not os.path.exists(exe):
            continue
        try:
            r = subprocess.run([exe, "-c", probe], env=env(), capture_output=True, text=True, timeout=60)
        except (OSError, subprocess.SubprocessError):
            continue
        version = r.stdout.strip()
        if r.returncode == 0 and version != mine and version not in versions:
            versions.add(version)
            found.append(exe)
    return found


def test_fingerprint_is_the_same_under_another_python(tmp_path: Path) -> None:
    others = _other_interpreters()
    if not others:
        pytest.skip("no other Python version with wrapt, networkx and click installed")
    project = copy_project(tmp_path / "p")
    fp, _ = fingerprint_in(project)
    for exe in others[:2]:
        assert fingerprint_in(project, exe)[0] == fp, exe
