"""Regenerate the README's sample outputs from the program itself (or, with --check, say which are stale).

    python scripts/readme_samples.py          # rewrite README.md's generated samples
    python scripts/readme_samples.py --check  # exit 1, with a diff, if one is out of date

A generated sample is a fenced block right after a line ``<!-- sample: NAME -->``; NAME is one of
SAMPLES below. Only what does not change from run to run is compared: timings (the contention
tables' columns) are cut, and instance serial numbers may differ between Python versions.
tests/test_readme.py runs the check.
"""
from __future__ import annotations

import difflib
import os
import re
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
MARK = re.compile(r"^<!-- sample: (?P<name>[\w-]+) -->\n```\n(?P<body>.*?)```\n", re.M | re.S)

# The README's pytest example: a shop whose checkout and restock take two locks in opposite orders.
SHOP = """\
import threading

_cart_lock = threading.Lock()
_stock_lock = threading.Lock()


def checkout():
    with _cart_lock:
        with _stock_lock:
            return "checked out"


def restock():
    with _stock_lock:
        with _cart_lock:
            return "restocked"
"""
TEST_CART = "from shop import checkout\n\n\ndef test_checkout():\n    assert checkout() == \"checked out\"\n"
TEST_STOCK = "from shop import restock\n\n\ndef test_restock():\n    assert restock() == \"restocked\"\n"


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LOCKWATCH", "PYTEST_", "COLUMNS"))}
    env.update(NO_COLOR="1", PYTHONHASHSEED="0")
    env.pop("FORCE_COLOR", None)
    return env


def _run(argv: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, *argv], cwd=cwd, env=_env(), capture_output=True, text=True,
                          timeout=300)


def _until_tables(lines: list[str]) -> list[str]:
    """Everything before the contention tables, then the first table's heading and header row."""
    for i, line in enumerate(lines):
        if line.startswith(("Most contended locks", "Longest-held locks")):
            return lines[:i + 2] + ["  ..."]
    return lines


def cli_abba() -> str:
    """`python -m lockwatch examples/abba_inversion.py`: the program's output, then the report."""
    proc = _run(["-m", "lockwatch", "examples/abba_inversion.py"], ROOT)
    lines = ["$ python -m lockwatch examples/abba_inversion.py", *proc.stdout.splitlines(),
             *_until_tables(proc.stderr.splitlines())]
    return "\n".join(lines) + "\n"


def pytest_shop() -> str:
    """The failing test of `pytest --lockwatch` on the shop: its heading, the cycle and one edge."""
    with tempfile.TemporaryDirectory() as tmp:
        project = Path(tmp)
        (project / "tests").mkdir()
        for name, text in (("shop.py", SHOP), ("test_cart.py", TEST_CART), ("test_stock.py", TEST_STOCK)):
            (project / "tests" / name).write_text(text, encoding="utf-8")
        (project / "pytest.ini").write_text("[pytest]\npythonpath = tests\n", encoding="utf-8")
        proc = _run(["-m", "pytest", "--lockwatch", "-p", "no:cacheprovider", "-p", "no:randomly",
                     "-p", "no:xdist", "tests"], project)
    lines = proc.stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if re.match(r"^_+ test_restock _+$", line))
    failure = lines[start:]
    out = failure[:2] + [""]  # the test's heading and lockwatch's line about it
    out.append(next(line for line in failure if line.startswith("Potential deadlock 1 of 1")))
    out.append("  ...")
    first = next(i for i, line in enumerate(failure) if line.startswith("  _cart_lock -> _stock_lock:"))
    end = failure.index("", first)
    out.extend(failure[first:end])
    out.append("")
    out.append(next(line for line in failure if line.startswith("  _stock_lock -> _cart_lock:")))
    out.append("    ...")
    return "\n".join(out) + "\n"


SAMPLES: dict[str, Callable[[], str]] = {"cli-abba": cli_abba, "pytest-shop": pytest_shop}


def comparable(text: str) -> str:
    """What must match: instance serials are the order of creation, which differs by Python."""
    return re.sub(r"\(instance #\d+\)", "(instance #N)", text)


def main(argv: list[str]) -> int:
    check = "--check" in argv
    readme = README.read_text(encoding="utf-8")
    found = {m.group("name") for m in MARK.finditer(readme)}
    missing = sorted(set(SAMPLES) - found)
    unknown = sorted(found - set(SAMPLES))
    if missing or unknown:
        print(f"README.md: samples missing {missing}, unknown {unknown}", file=sys.stderr)
        return 1
    fresh = {name: make() for name, make in SAMPLES.items()}
    stale = []

    def replace(m: re.Match[str]) -> str:
        name, body = m.group("name"), m.group("body")
        if comparable(body) != comparable(fresh[name]):
            stale.append(name)
            diff = difflib.unified_diff(body.splitlines(), fresh[name].splitlines(), "README.md", "program",
                                        lineterm="")
            print(f"sample {name} is out of date:\n" + textwrap.indent("\n".join(diff), "  "), file=sys.stderr)
            return f"<!-- sample: {name} -->\n```\n{fresh[name]}```\n"
        return m.group(0)

    updated = MARK.sub(replace, readme)
    if check:
        if stale:
            print("run `python scripts/readme_samples.py` to regenerate them", file=sys.stderr)
        return 1 if stale else 0
    if updated != readme:
        README.write_text(updated, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
