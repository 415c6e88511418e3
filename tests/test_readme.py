"""The README says what the program does: its samples are the program's output, its install
instructions work from a checkout."""
from __future__ import annotations

import re
import subprocess
import sys

import pytest
from support import PROJECT_ROOT, TIMEOUT

pytestmark = pytest.mark.timeout(1500)

README = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")


def test_samples_are_the_programs_output() -> None:
    proc = subprocess.run([sys.executable, "scripts/readme_samples.py", "--check"], cwd=PROJECT_ROOT,
                          capture_output=True, text=True, timeout=TIMEOUT * 4)
    assert proc.returncode == 0, proc.stderr


def test_samples_are_marked_and_checked() -> None:
    assert set(re.findall(r"^<!-- sample: ([\w-]+) -->$", README, re.M)) == {"cli-abba", "pytest-shop"}


def test_no_install_from_a_release_that_does_not_exist() -> None:
    # pylockwatch is not on PyPI: every install command installs the checkout
    for line in README.splitlines():
        if "pip install" in line:
            assert re.search(r"pip install (-e )?(\.|\"\.\[\w+\]\"|/path/to/the/checkout)(\s|$)", line), line
