"""The direction of imports: the report side (model, analysis, renderers, `lockwatch report`) never
imports the runtime (patching, proxies, recorder, watchdog, control, the runner) nor wrapt. Each check runs in a
fresh interpreter, which then lists the modules it ended with."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from support import child_env
from support import load_report_fixture as load_fixture

from lockwatch.model import save

RUNTIME = ["lockwatch.patching", "lockwatch.proxies", "lockwatch.recorder", "lockwatch.watchdog",
           "lockwatch.control", "lockwatch.primitives", "lockwatch.runner", "lockwatch.waits",
           "lockwatch.waitgraph", "wrapt"]

# Runs CODE, then prints which of RUNTIME are imported, as JSON, at exit (also after SystemExit).
PROBE = """
import atexit, json, sys
RUNTIME = {runtime!r}
atexit.register(lambda: print("IMPORTED " + json.dumps(sorted(m for m in RUNTIME if m in sys.modules))))
{code}
"""


def imported_after(code: str, cwd: Path) -> list[str]:
    proc = subprocess.run([sys.executable, "-c", PROBE.format(runtime=RUNTIME, code=code)], cwd=cwd,
                          env=child_env(), capture_output=True, text=True, timeout=120)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("IMPORTED ")]
    assert len(lines) == 1, (proc.stdout, proc.stderr)
    return list(json.loads(lines[0][len("IMPORTED "):]))


@pytest.fixture(scope="module")
def saved_report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("imports") / "r.json"
    save(str(path), load_fixture().shop_report())
    return path


def test_the_probe_sees_a_runtime_import(tmp_path: Path) -> None:
    assert imported_after("import lockwatch.recorder", tmp_path) == ["lockwatch.recorder"]


def test_renderers_import_no_runtime(tmp_path: Path) -> None:
    code = ("import lockwatch.model, lockwatch.analysis, lockwatch.renderers\n"
            "for name in lockwatch.renderers.FORMATS: lockwatch.renderers.get(name)\n"
            "import lockwatch.renderers.html, lockwatch.renderers.text, lockwatch.renderers.dot\n"
            "import lockwatch.renderers.jsonreport, lockwatch.renderers.graphml\n")
    assert imported_after(code, tmp_path) == []


@pytest.mark.parametrize("fmt", ["html", "text", "json", "dot", "graphml"])
def test_report_command_imports_no_runtime(fmt: str, saved_report: Path, tmp_path: Path) -> None:
    out = tmp_path / f"out.{fmt}"
    code = ("import sys\nfrom lockwatch.cli import main\n"
            f"sys.exit(main(['report', {str(saved_report)!r}, '--format', {fmt!r}, '-o', {str(out)!r}]))\n")
    assert imported_after(code, tmp_path) == []
    assert out.stat().st_size > 0


def test_baseline_command_imports_no_runtime(saved_report: Path, tmp_path: Path) -> None:
    code = ("import sys\nfrom lockwatch.cli import main\n"
            f"sys.exit(main(['baseline', {str(saved_report)!r}, '-o', '-']))\n")
    assert imported_after(code, tmp_path) == []


def test_python_m_lockwatch_report_imports_no_runtime(saved_report: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.html"
    code = ("import runpy, sys\n"
            f"sys.argv = ['lockwatch', 'report', {str(saved_report)!r}, '--format', 'html', '-o', {str(out)!r}]\n"
            "runpy.run_module('lockwatch', run_name='__main__', alter_sys=True)\n")
    assert imported_after(code, tmp_path) == []
    assert out.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")

