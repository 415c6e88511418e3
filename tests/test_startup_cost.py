"""Start-up pays for what it needs. A child process of `python -m lockwatch` never imports networkx
for its report (the cycle search is lockwatch's own), also when there is a cycle to list; a process
with LOCKWATCH=1 that never imports threading stays off and imports next to nothing of lockwatch.
Costs in time are measured by benchmarks/startup.py, never asserted: these tests check what is
imported."""
from __future__ import annotations

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
