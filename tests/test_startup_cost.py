"""A child process of `python -m lockwatch` pays for what it needs: its report at exit imports
networkx only when its lock-order graph has a cycle to list."""
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


def test_a_child_with_a_cycle_does() -> None:
    # The probe sees networkx when the report needed it: the test above can fail.
    assert child_says("cycle") == "lockwatch True networkx True"
