"""Helpers shared by the test modules (imported by name: pytest puts this folder on sys.path)."""
from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
from pathlib import Path
from types import ModuleType

PROJECT_ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).resolve().parent / "fixtures"


def child_env() -> dict[str, str]:
    """The environment for a child Python: this one without LOCKWATCH* settings (the child runs
    lockwatch only as the test says), with this checkout importable and no .pyc files written."""
    e = {k: v for k, v in os.environ.items() if not k.startswith("LOCKWATCH")}
    e.pop("PYTHONSAFEPATH", None)
    e.update(PYTHONPATH=str(PROJECT_ROOT), PYTHONDONTWRITEBYTECODE="1")
    return e


def default_sigint() -> None:
    """A ``preexec_fn``: SIGINT in the child as in a terminal. A shell starts background jobs with
    SIGINT ignored, and Python then installs no KeyboardInterrupt handler (nor does lockwatch)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def lockwatch(*argv: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """`python -m lockwatch ARGV...` in a subprocess."""
    return subprocess.run([sys.executable, "-m", "lockwatch", *argv], cwd=cwd, env=child_env(),
                          capture_output=True, text=True, timeout=120)


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
