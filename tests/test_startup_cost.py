"""Start-up pays for what it needs. A child process of `python -m lockwatch` never imports networkx
for its report (the cycle search is lockwatch's own), also when there is a cycle to list; a process
with LOCKWATCH=1 that never imports threading stays off and imports next to nothing of lockwatch.
Costs in time are measured by benchmarks/startup.py, never asserted: these tests check what is
imported."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from support import PROGRAMS, child_env, lockwatch, python

pytestmark = pytest.mark.timeout(300)

CHILDREN = PROGRAMS / "children"


def child_says(take: str) -> str:
    result = lockwatch(str(CHILDREN / "spawn_probe.py"), take, cwd=CHILDREN)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


@pytest.mark.parametrize("take", ["none", "acyclic"])
def test_a_child_without_a_cycle_does_not_import_networkx(take: str) -> None:
    assert child_says(take) == "lockwatch True networkx False"


def test_a_child_with_a_cycle_lists_it_without_networkx() -> None:
    result = lockwatch(str(CHILDREN / "spawn_probe.py"), "cycle", cwd=CHILDREN)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "lockwatch True networkx False"
    assert "lockwatch: 1 potential deadlock" in result.stderr, result.stderr


# Prints the modules imported by its end, but those built into the interpreter (atexit: nothing
# to load); never imports threading.
MODULES_PROBE = ("import sys; print(' '.join(sorted(m for m in sys.modules "
                 "if m not in sys.builtin_module_names)))")


def modules_at_end(tmp_path: Path, **env: str) -> set[str]:
    result = python("-c", MODULES_PROBE, cwd=tmp_path, env=child_env(**env))
    assert result.returncode == 0, result.stderr
    return set(result.stdout.split())


def test_lockwatch_1_without_threading_imports_only_the_switch(tmp_path: Path) -> None:
    plain = modules_at_end(tmp_path)
    switched = modules_at_end(tmp_path, LOCKWATCH="1")
    assert "threading" not in switched
    # Not settings (dataclasses, inspect), not typing: what the start-up hook needs to wait for
    # threading is the switch's own value.
    assert switched - plain == {"lockwatch", "lockwatch._startup", "lockwatch.defaults", "lockwatch.errors"}


# `python -m lockwatch ARGS`, then the modules imported by the end (the CLI writes its report before
# main() returns). Not `-X importtime`: it misses modules imported by importlib.import_module.
CLI_PROBE = """
import runpy, sys
sys.argv = ["lockwatch", *{args!r}]
try:
    runpy.run_module("lockwatch", run_name="__main__", alter_sys=True)
finally:
    sys.__stdout__.write("MODULES " + " ".join(sorted(sys.modules)) + "\\n")
"""


def imported_by(args: list[str], cwd: Path) -> set[str]:
    result = python("-c", CLI_PROBE.format(args=args), cwd=cwd)
    assert result.returncode == 0, result.stderr
    [line] = [line for line in result.stdout.splitlines() if line.startswith("MODULES ")]
    return set(line.split()[1:])


def test_a_quiet_run_imports_no_text_renderer(tmp_path: Path) -> None:
    (tmp_path / "empty.py").write_text("")
    imported = imported_by(["-q", "empty.py"], tmp_path)
    assert "lockwatch.patching" in imported and "wrapt" in imported  # it did switch on
    assert "lockwatch.renderers.text" not in imported and "networkx" not in imported


def test_the_plain_form_imports_no_click(tmp_path: Path) -> None:
    (tmp_path / "empty.py").write_text("")
    assert "click" not in imported_by(["-q", "-m", "empty"], tmp_path)
    assert "click" in imported_by(["--top", "3", "empty.py"], tmp_path)  # an option: click parses


def test_the_text_report_of_an_empty_run_imports_no_networkx(tmp_path: Path) -> None:
    (tmp_path / "empty.py").write_text("")
    imported = imported_by(["empty.py"], tmp_path)
    assert {"lockwatch.model", "lockwatch.analysis", "lockwatch.renderers.text"} <= imported
    assert "networkx" not in imported


FORKS = """
import os, sys
pid = os.fork()
if pid == 0:  # the child: what it has imported of lockwatch's JSON side, before its own report
    print(" ".join(m for m in ("lockwatch.analysis", "lockwatch.snapshot", "lockwatch.renderers.jsonreport")
                   if m in sys.modules))
    sys.exit(0)
os.waitpid(pid, 0)
"""


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="needs os.fork")
def test_a_forked_child_finds_its_json_side_imported_by_the_parent(tmp_path: Path) -> None:
    """A forked child of `python -m lockwatch` writes a JSON report (merged by the parent). It must
    not import what that takes after the fork (an import lock another thread of the parent held
    stays held in the child): the parent imported it when its session started, also with -q."""
    (tmp_path / "forks.py").write_text(FORKS)
    result = lockwatch("-q", "forks.py", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["lockwatch.analysis", "lockwatch.snapshot", "lockwatch.renderers.jsonreport"]
    assert "Traceback" not in result.stderr and "Exception ignored" not in result.stderr


UNUSED_SITES = """
import json, threading, lockwatch
from lockwatch import recorder

session = lockwatch.enable(report_at_exit=False)
unused = [threading.Lock() for _ in range(3)]  # made, never taken
used = threading.Lock()
with used:
    pass
named = []
display_name = recorder.Site.display_name
recorder.Site.display_name = lambda site: named.append(site.line) or display_name(site)
snap = session.snapshot()
print(json.dumps([sorted(set(named)), [lock.line for lock in snap.locks if not lock.stdlib]]))
"""


def test_a_snapshot_names_only_the_locks_it_reports(tmp_path: Path) -> None:
    """A site's name parses its source line: the sites of locks never taken, which a snapshot
    leaves out, are left out before that (and before their paths and histograms)."""
    result = python("-c", UNUSED_SITES, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    used = UNUSED_SITES.splitlines().index("used = threading.Lock()") + 1
    assert json.loads(result.stdout) == [[used], [used]]  # named, reported: the used lock only
