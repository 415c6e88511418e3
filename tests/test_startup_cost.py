"""Start-up pays for what it needs. A child process of `python -m lockwatch` never imports networkx
for its report (the cycle search is lockwatch's own), also when there is a cycle to list; a process
with LOCKWATCH=1 that never imports threading stays off and imports next to nothing of lockwatch.
Costs in time are measured by benchmarks/startup.py, never asserted: these tests check what is
imported."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from support import PROGRAMS, PROJECT_ROOT, child_env, lockwatch, python, write

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
    assert not {"networkx", "textwrap", "shutil"} & imported  # the renderer wraps and measures itself


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


# What wrapt 2 imports only for its asyncio and entry-point features (patching._import_wrapt).
DEFERRED_BY_WRAPT = ("asyncio", "importlib.metadata")

SWITCHED_ON_PROBE = """
import sys, threading
import lockwatch
print(lockwatch.current_session() is not None, "wrapt" in sys.modules,
      *[name in sys.modules for name in {names!r}])
"""


def test_a_child_switching_on_does_not_import_what_wrapt_imports_for_asyncio(tmp_path: Path) -> None:
    """Every child process of a watched program that imports threading switches on: it pays for
    importing wrapt, not for asyncio and importlib.metadata, which wrapt uses only in features
    lockwatch never calls (~190 M instructions of wrapt's ~290 M, benchmarks/startup.py), nor for
    importlib.resources (pathlib, zipfile), which importlib.abc imports, nor for tempfile and
    shutil, which only the CLI's own process uses (its children's folder), nor for
    concurrent.futures and logging (ThreadPoolExecutor is wrapped when the program imports it)."""
    names = (*DEFERRED_BY_WRAPT, "importlib.resources", "tempfile", "shutil", "concurrent.futures", "logging",
             "sysconfig", "traceback", "signal", "queue")
    result = python("-c", SWITCHED_ON_PROBE.format(names=names), cwd=tmp_path,
                    env=child_env(LOCKWATCH="1", LOCKWATCH_TEXT="0"))
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", "True"] + ["False"] * len(names)


def test_the_cli_imports_nothing_heavy_it_does_not_use(tmp_path: Path) -> None:
    """Nor does the CLI, nor zipfile for a script that is not a zip file, nor hashlib (OpenSSL)
    for the report's fingerprints, nor tempfile and shutil for its children's folder, nor
    traceback for a program that raises nothing, nor sysconfig for the standard library's folders."""
    (tmp_path / "empty.py").write_text("")
    imported = imported_by(["-q", "empty.py"], tmp_path)
    assert "wrapt" in imported and "lockwatch.analysis" in imported
    assert not {*DEFERRED_BY_WRAPT, "importlib.resources", "zipfile", "hashlib", "concurrent.futures", "tempfile",
                "shutil", "traceback", "sysconfig", "signal", "queue"} & imported


POOL_IMPORTED_LATER = """
import sys, threading
import lockwatch
from lockwatch import waits
lockwatch.enable(report_at_exit=False)
print("concurrent.futures" in sys.modules, [type(f).__name__ for f in sys.meta_path].count("_AfterImport"))
print("queue" in sys.modules)
import queue
print(waits._what(queue.Queue.get.__code__), getattr(queue.Queue.__init__, "_lockwatch_wrapper", False))
from concurrent.futures import Future
print(waits._what(Future.result.__code__), [type(f).__name__ for f in sys.meta_path].count("_AfterImport"))
from concurrent.futures import ThreadPoolExecutor
import concurrent.futures.thread as cft
loader = cft.__loader__
print(getattr(ThreadPoolExecutor.submit, "_lockwatch_wrapper", False), loader is cft.__spec__.loader,
      "exec_module" in vars(loader), [type(f).__name__ for f in sys.meta_path].count("_AfterImport"))
lockwatch.disable()
print(getattr(ThreadPoolExecutor.submit, "_lockwatch_wrapper", False))
"""


def test_concurrent_futures_imported_after_switching_on_is_wrapped_then(tmp_path: Path) -> None:
    """What switching on does to queue and concurrent.futures (their waiting methods known, Queue
    and ThreadPoolExecutor wrapped) happens when the program imports them; the module keeps its
    own loader, and the finder that watched for them leaves sys.meta_path; switching off unwraps
    them as before."""
    result = python("-c", POOL_IMPORTED_LATER, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["False 1", "False", "('Queue', 'get') True", "('Future', 'result') 1",
                                          "True True False 0", "False"]


POOL_FIRST = """
import sys
import lockwatch
from lockwatch import recorder, waits
lockwatch.enable(report_at_exit=False)
from concurrent.futures import ThreadPoolExecutor  # queue is first imported inside this import
import queue
print(getattr(queue.Queue.__init__, "_lockwatch_wrapper", False), waits._what(queue.Queue.put.__code__),
      getattr(ThreadPoolExecutor.submit, "_lockwatch_wrapper", False), recorder.state.internal_errors)
"""


def test_a_pool_imported_first_wraps_queue_inside_its_import(tmp_path: Path) -> None:
    """concurrent.futures.thread imports queue before it makes ThreadPoolExecutor: queue's
    import completing inside it wraps Queue, and ThreadPoolExecutor when its own completes."""
    result = python("-c", POOL_FIRST, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\n")[0] == "True ('Queue', 'put') True []"


WRAPT_FEATURES = """
import sys, threading
import lockwatch, wrapt

@wrapt.synchronized
async def answer():
    return 42

import asyncio
print(asyncio.run(answer()), wrapt.synchronization.asyncio is sys.modules["asyncio"])
print(list(wrapt.discover_post_import_hooks("lockwatch-tests-no-such-group") or []),
      "importlib.metadata" in sys.modules, wrapt.importer.importlib is sys.modules["importlib"])
print(lockwatch.current_session() is not None, isinstance(threading.Lock, wrapt.FunctionWrapper))
"""


def test_wrapt_imports_them_when_it_first_uses_them(tmp_path: Path) -> None:
    """A program using wrapt's features that need them finds them working, and wrapt using the
    modules the program imported (one asyncio, not a copy)."""
    result = python("-c", WRAPT_FEATURES, cwd=tmp_path, env=child_env(LOCKWATCH="1", LOCKWATCH_TEXT="0"))
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["42 True", "[] True True", "True True"]


ANOTHER_THREAD = """
import sys, threading
import lockwatch
stop = threading.Event()
other = threading.Thread(target=stop.wait)
other.start()
lockwatch.enable(report_at_exit=False)
stop.set()
other.join()
print(*[name in sys.modules for name in {names!r}])
"""


def test_with_another_thread_running_wrapt_is_imported_whole(tmp_path: Path) -> None:
    """While wrapt is imported, empty modules stand in for those it defers: another thread's
    import would find one. With another thread running, enable() imports wrapt the plain way."""
    result = python("-c", ANOTHER_THREAD.format(names=DEFERRED_BY_WRAPT), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", "True"]


STAND_IN_PROBE = """
import sys, threading
from lockwatch import patching
wrapt = patching._import_wrapt()
used = wrapt.helper
print(type(used.aio).__name__, type(used.metadata).__name__, "asyncio" in sys.modules,
      "importlib.metadata" in sys.modules)
print(used.aio.sleep is sys.modules["asyncio"].sleep, used.aio is sys.modules["asyncio"],
      used.metadata.version is sys.modules["importlib.metadata"].version,
      used.metadata is sys.modules["importlib.metadata"])
"""


def test_any_module_bound_to_a_stand_in_gets_the_real_module_when_it_uses_it(tmp_path: Path) -> None:
    """Whatever module imported while wrapt is imported binds a stand-in (another wrapt's
    layout, `import asyncio as aio`, `from importlib import metadata`), its first use imports the
    real module and binds it there: no module keeps an empty stand-in."""
    write(tmp_path / "fake" / "wrapt" / "__init__.py", "from . import helper\n")
    write(tmp_path / "fake" / "wrapt" / "helper.py", "import asyncio as aio\nfrom importlib import metadata\n")
    env = child_env(PYTHONPATH=f"{tmp_path / 'fake'}{os.pathsep}{PROJECT_ROOT}")
    result = python("-c", STAND_IN_PROBE, cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["_ImportedOnFirstUse _ImportedOnFirstUse False False", "True True True True"]
