"""A child process of `python -m lockwatch` pays for what it needs: its report at exit never
imports networkx (the cycle search is lockwatch's own), also when there is a cycle to list."""
from __future__ import annotations

import pytest
from support import PROGRAMS, lockwatch

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
