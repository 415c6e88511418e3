"""Helpers shared by the test modules (imported by name: pytest puts this folder on sys.path)."""
from __future__ import annotations

import importlib.util
import json
import os
import re
import signal
import subprocess
import sys
import textwrap
from collections.abc import Sequence
from pathlib import Path
from types import FunctionType, ModuleType
from typing import Any, Optional, Union

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[1]
TESTS = Path(__file__).resolve().parent
PROGRAMS = TESTS / "programs"  # programs the tests run (in subprocesses, or imported)
FIXTURES = TESTS / "fixtures"  # data: saved reports and sample projects
# lockwatch's own code: a traceback that shows none of it names no file in here (the checkout's
# folder may itself be called lockwatch, so the word alone proves nothing)
PACKAGE_DIR = os.path.dirname(os.path.realpath(importlib.util.find_spec("lockwatch").origin or "")) + os.sep
CORE_SWITCH = "LOCKWATCH_PURE_PYTHON"  # =1: the pure-Python core (kept in children's environments)
TIMEOUT = 300  # seconds for one child process: one still running then is hung, and the test fails
#             (generous: at a load of 30 on two cores a 2-second run took over 120 s)


# -- child processes ------------------------------------------------------------------------------

def child_env(tmp: Optional[Path] = None, **extra: str) -> dict[str, str]:
    """The environment for a child Python: this one without LOCKWATCH* settings (the child runs
    lockwatch only as the test says), with this checkout importable, no .pyc files written, and
    ``extra``. ``tmp`` (created) becomes TMPDIR, where `python -m lockwatch` makes its children's
    folder. LOCKWATCH_PURE_PYTHON stays: it chooses the core the whole suite runs on (noxfile.py)."""
    e = {k: v for k, v in os.environ.items() if not k.startswith("LOCKWATCH") or k == CORE_SWITCH}
    e.pop("PYTHONSAFEPATH", None)
    e.update(PYTHONPATH=str(PROJECT_ROOT), PYTHONDONTWRITEBYTECODE="1")
    if tmp is not None:
        tmp.mkdir(parents=True, exist_ok=True)
        e["TMPDIR"] = str(tmp)
    e.update(extra)
    return e


def default_sigint() -> None:
    """A ``preexec_fn``: SIGINT in the child as in a terminal. A shell starts background jobs with
    SIGINT ignored, and Python then installs no KeyboardInterrupt handler (nor does lockwatch)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def python(*argv: str, cwd: Path, env: Optional[dict[str, str]] = None,
           interpreter: Optional[Sequence[str]] = None,
           timeout: float = TIMEOUT) -> subprocess.CompletedProcess[str]:
    """`python ARGV...` in a subprocess (``interpreter`` instead of this Python, ``env`` instead of
    child_env()); a run still going after ``timeout`` seconds is a hang and fails the test."""
    cmd = [*(interpreter or [sys.executable]), *argv]
    try:
        return subprocess.run(cmd, cwd=cwd, env=child_env() if env is None else env,
                              capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"{cmd} did not end within {timeout}s (a hang): stderr={exc.stderr!r}")


def lockwatch(*argv: str, cwd: Path, env: Optional[dict[str, str]] = None,
              interpreter: Optional[Sequence[str]] = None,
              timeout: float = TIMEOUT) -> subprocess.CompletedProcess[str]:
    """`python -m lockwatch ARGV...` in a subprocess, as python() runs it."""
    return python("-m", "lockwatch", *argv, cwd=cwd, env=env, interpreter=interpreter, timeout=timeout)


def write(path: Path, text: str) -> Path:
    """Write ``text`` (dedented) to ``path``, making its folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def report_of(path: Path) -> dict[str, Any]:
    """The JSON report written at ``path``."""
    return json.loads(path.read_text())


# -- sample projects ------------------------------------------------------------------------------

# shop.py of the sample pytest projects (as pytester's makepyfile takes it: indented): checkout()
# takes cart then stock, restock() stock then cart.
SHOP = """
    import threading

    _cart_lock = threading.Lock()
    _stock_lock = threading.Lock()


    def checkout():
        with _cart_lock:
            with _stock_lock:  # cart -> stock
                return "checked out"


    def restock():
        with _stock_lock:
            with _cart_lock:  # stock -> cart
                return "restocked"
"""
SHOP_PY = textwrap.dedent(SHOP).lstrip("\n")  # the file pytester writes


# -- the JSON report contract ---------------------------------------------------------------------

KINDS = {"Lock", "RLock", "Condition", "Semaphore", "BoundedSemaphore"}
FRAME = re.compile(r"^(?P<file>.+):(?P<line>\d+) in (?P<function>\S.*)$")  # a stack entry
SITE = re.compile(r"^.+:\d+$")  # where a lock was created


def assert_frames(stack: Any) -> None:
    """``stack`` is a list of entries "<file>:<line> in <function>"."""
    assert isinstance(stack, list)
    for entry in stack:
        assert isinstance(entry, str) and FRAME.match(entry), entry


def assert_follows_contract(data: Any) -> None:
    """DESIGN.md, "Report contract (JSON)": the keys it names keep their meaning in version 2."""
    assert data["format"] == "lockwatch-report"
    assert data["version"] == 2
    for p in data["potential_deadlocks"]:
        assert p["scope"] in ("instance", "site")
        assert len(p["locks"]) >= 2 and len(p["edges"]) == len(p["locks"])
        for lk in p["locks"]:
            assert isinstance(lk["name"], str) and lk["name"]
            assert lk["kind"] in KINDS
            assert isinstance(lk["site"], str) and SITE.match(lk["site"]), lk["site"]
        for e in p["edges"]:
            assert isinstance(e["thread"], str) and e["thread"]
            assert_frames(e["held_stack"])
            assert_frames(e["acquire_stack"])
    assert isinstance(data["deadlocks"], list)
    for d in data["deadlocks"]:
        for t in d["threads"]:
            assert isinstance(t["name"], str)
            assert_frames(t["stack"])
    for lk in data["locks"]:
        assert isinstance(lk["name"], str) and lk["name"]
        assert lk["kind"] in KINDS
        assert isinstance(lk["site"], str) and SITE.match(lk["site"]), lk["site"]
        assert isinstance(lk["acquisitions"], int) and isinstance(lk["contended"], int)
        assert isinstance(lk["hold"], dict) and isinstance(lk["wait"], dict)


# -- line numbers from the source -----------------------------------------------------------------

def line_in(text: str, needle: str, where: object = "the text") -> int:
    """The number of the only line of ``text`` that contains ``needle``: expected line numbers
    come from the source, never hard-coded."""
    found = [n for n, line in enumerate(text.splitlines(), 1) if needle in line]
    assert len(found) == 1, f"{needle!r} is on lines {found} of {where}, expected exactly one"
    return found[0]


def line_of(path: Union[Path, str], needle: str) -> int:
    """The number of the only line of the file ``path`` that contains ``needle``."""
    return line_in(Path(path).read_text(encoding="utf-8"), needle, path)


def marker_line(path: Union[Path, str], tag: str) -> int:
    """The line of ``path`` that carries the comment ``# <tag>`` (exactly one)."""
    return line_of(path, f"# <{tag}>")


def frame(fn: FunctionType, line: int) -> str:
    """A stack entry as lockwatch writes it for ``line`` of ``fn``: "<file>:<line> in <function>"."""
    return f"{fn.__code__.co_filename}:{line} in {fn.__code__.co_name}"


def frame_of(path: Union[Path, str], needle: str, function: str) -> str:
    """The stack entry for the only line of ``path`` that contains ``needle``, in ``function``."""
    return f"{path}:{line_of(path, needle)} in {function}"


# -- what the recorder recorded ------------------------------------------------------------------

def site(snap: Any, filename: str, line: int, kind: Optional[str] = None) -> Any:
    """The LockStats of ``snap`` for the creation site at ``line`` of ``filename`` (of ``kind``)."""
    found = [s for s in snap.locks if s.filename == filename and s.line == line
             and (kind is None or s.kind == kind)]
    assert len(found) == 1, [(s.filename, s.line, s.kind) for s in snap.locks]
    return found[0]


def instance_edges_of(snap: Any, lock_a: Any, lock_b: Any) -> list[Any]:
    """The instance-scope edges of ``snap`` from the lock ``lock_a`` to the lock ``lock_b``."""
    return [e for e in snap.instance_edges
            if e.src_instance == lock_a._serial and e.dst_instance == lock_b._serial]


# -- the report fixture ---------------------------------------------------------------------------

def load_report_fixture() -> ModuleType:
    """tests/fixtures/report_shop/fixture.py, shared by the HTML, DOT and report command tests
    (loaded once)."""
    name = "lockwatch_report_fixture"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, FIXTURES / "report_shop" / "fixture.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


# -- hand-built report data --------------------------------------------------------------------------


def timing(values: list[int]) -> Any:
    """A model.Timing of these durations (ns), histogram included."""
    from lockwatch import histogram
    from lockwatch.model import Timing

    t = Timing(count=len(values), total_ns=sum(values), max_ns=max(values, default=0))
    for v in values:
        i = histogram.bucket_of(v)
        t.buckets[i] = t.buckets.get(i, 0) + 1
    return t


def lock_stats(name: str, kind: str, filename: str, line: int, **counters: Any) -> Any:
    """A model.LockStats for a lock created at filename:line."""
    from lockwatch.model import LockStats

    return LockStats(key=f"{filename}:{line}:{kind}", name=name, kind=kind, filename=filename,
                     line=line, function="__init__", **counters)


def edge_record(src: Any, dst: Any, thread: str, held: list[str], acquire: list[str],
                si: Any = None, di: Any = None, **kw: Any) -> Any:
    """A model.EdgeRecord from ``src`` to ``dst`` (LockStats), instances ``si``/``di``."""
    from lockwatch.model import EdgeRecord

    return EdgeRecord(src=src.key, dst=dst.key, thread=thread, held_stack=held, acquire_stack=acquire,
                      src_instance=si, dst_instance=di, **kw)


def lock_edges(edges: list[Any]) -> list[Any]:
    """The lock-order edges among ``edges``: not the wait edges (a lock held while waiting for an
    Event, a Thread, ...; an Event set while a lock was held)."""
    return [e for e in edges if e.wait is None and e.wake is None]
