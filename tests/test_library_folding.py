"""The program's own code first: the standard library's and installed packages' locks and stack
frames are folded (and counted) in the text and HTML reports unless show_library; paths read
`<stdlib>/...`; the JSON report keeps everything. A real thread pool in a subprocess, and
hand-built reports."""
from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from support import PROGRAMS, lock_stats, lockwatch, report_of

from lockwatch import stacks
from lockwatch.model import Report, Snapshot
from lockwatch.renderers import html, text
from lockwatch.renderers.common import fold_frames

pytestmark = pytest.mark.timeout(180)

POOL = PROGRAMS / "pool_logging.py"


def run(tmp: Path, *options: str) -> tuple[str, str, dict[str, Any]]:
    result = lockwatch("--json", str(tmp / "r.json"), "--html", str(tmp / "r.html"), *options, str(POOL), cwd=tmp)
    assert result.returncode == 0, result.stderr
    assert result.stdout.endswith("paid 780\n")
    return result.stderr, (tmp / "r.html").read_text(), report_of(tmp / "r.json")


def table_rows(report_text: str) -> list[str]:
    """The rows of the text report's contention tables."""
    rows, inside = [], False
    for line in report_text.splitlines():
        if line.startswith(("Most contended", "Longest-held")):
            inside = True
        elif not line.strip():
            inside = False
        elif inside and not line.lstrip().startswith("lock "):
            rows.append(line)
    return rows


def test_library_locks_are_folded_by_default(tmp_path: Path) -> None:
    stderr, page, report = run(tmp_path)
    library = [lk for lk in report["locks"] if lk["stdlib"]]
    assert library, "the pool and logging took standard-library locks"
    assert any(lk["name"] == "Bank._lock" for lk in report["locks"])  # JSON keeps everything
    rows = table_rows(stderr)
    assert rows and all("Bank._lock" in row for row in rows), rows
    assert "1 lock creation site of the program in use" in stderr
    assert f"(and {len(library)} sites of the standard library and installed packages, folded: " \
           "--show-library shows them)" in stderr
    assert "<stdlib>/" not in stderr and str(Path(threading.__file__).parent) not in stderr
    assert 'class="library-locks"' in page and "--show-library" in page


def test_show_library_lists_everything_the_program_s_own_first(tmp_path: Path) -> None:
    stderr, page, report = run(tmp_path, "--show-library")
    rows = table_rows(stderr)
    assert "Bank._lock" in rows[0]
    assert any("logging/__init__.py" in row for row in rows), rows  # (the column is clipped)
    assert "folded" not in stderr
    assert 'class="library-locks"' not in page
    assert str(Path(threading.__file__).parent) + "/" not in stderr  # shown as <stdlib>/...


# -- hand-built -----------------------------------------------------------------------------------

STDLIB = str(Path(threading.__file__).parent)


def test_frames_fold_in_runs_and_keep_the_innermost() -> None:
    frames = [f"{STDLIB}/threading.py:1 in run", f"{STDLIB}/concurrent/futures/thread.py:2 in _worker",
              "/proj/app.py:3 in work", f"{STDLIB}/logging/__init__.py:4 in emit",
              f"{STDLIB}/logging/__init__.py:5 in acquire"]
    assert fold_frames(frames, False) == [2, "/proj/app.py:3 in work", 1, frames[-1]]
    assert fold_frames(frames, True) == frames


def test_paths_of_installed_code_are_named_by_where_they_are_installed() -> None:
    assert stacks.short_path(f"{STDLIB}/queue.py:10 in get") == "<stdlib>/queue.py:10 in get"
    # a report recorded on another machine
    assert stacks.short_path("/opt/py/lib/python3.12/site-packages/apscheduler/base.py") == \
        "<site-packages>/apscheduler/base.py"
    assert stacks.library_kind("/home/dev/lib/project/app.py") is None


def test_a_report_of_only_library_locks_says_so() -> None:
    lib = lock_stats("_shutdown_lock", "Lock", f"{STDLIB}/concurrent/futures/thread.py", 10,
                     acquisitions=5, stdlib=True)
    mine = lock_stats("cache", "Lock", "/proj/app.py", 3, acquisitions=2)
    rendered = text.render(Report(Snapshot(locks=[lib, mine])))
    assert "1 lock creation site of the program in use" in rendered
    assert "(and 1 site of the standard library and installed packages, folded" in rendered
    shown = text.render(Report(Snapshot(locks=[lib, mine])), show_library=True)
    assert "2 lock creation sites in use" in shown
    page = html.render(Report(Snapshot(locks=[lib, mine])))
    section = page[page.index('<section id="locks"'):]
    assert section.index("cache") < section.index('class="library-locks"') < section.index("_shutdown_lock")


def test_report_command_folds_and_shows_library(tmp_path: Path) -> None:
    _stderr, _page, _report = run(tmp_path)
    folded = lockwatch("report", str(tmp_path / "r.json"), cwd=tmp_path)
    assert folded.returncode == 0, folded.stderr
    assert "folded: --show-library shows them" in folded.stdout
    shown = lockwatch("report", "--show-library", str(tmp_path / "r.json"), cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert "folded" not in shown.stdout and "logging/__init__.py" in shown.stdout


def test_pytest_plugin_folds_unless_asked(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for k in list(os.environ):
        if k.startswith("LOCKWATCH") and k != "LOCKWATCH_PURE_PYTHON":  # the core stays
            monkeypatch.delenv(k)
    pytester.makepyfile(test_pool="""
        import concurrent.futures
        import threading

        class Bank:
            def __init__(self):
                self._lock = threading.Lock()

            def pay(self, n):
                with self._lock:
                    return n

        def test_pool():
            bank = Bank()
            with concurrent.futures.ThreadPoolExecutor(2) as pool:
                assert sum(pool.map(bank.pay, range(20))) == 190
    """)
    folded = pytester.runpytest_subprocess("--lockwatch", "-p", "no:randomly", timeout=120)
    folded.assert_outcomes(passed=1)
    summary = folded.stdout.str().split("== lockwatch ==", 1)[1]
    assert "of the program in use" in summary and "folded: --show-library shows them" in summary
    shown = pytester.runpytest_subprocess("--lockwatch", "--lockwatch-show-library", "-p", "no:randomly",
                                          timeout=120)
    shown.assert_outcomes(passed=1)
    summary = shown.stdout.str().split("== lockwatch ==", 1)[1]
    assert "folded" not in summary and "Bank._lock" in summary
