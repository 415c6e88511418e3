"""pickle and copy of threading's factories and locks behave as without lockwatch, so programs that
send them to other processes (multiprocessing's Manager, process pools, with the spawn and
forkserver start methods) still start."""
from __future__ import annotations

import multiprocessing
import shutil
import tempfile
from pathlib import Path

import pytest
from support import PROGRAMS, child_env, lockwatch, python

pytestmark = pytest.mark.timeout(300)

PICKLING = PROGRAMS / "pickling"


def test_pickle_and_copy_outcomes_are_those_of_plain_python() -> None:
    plain = python(str(PICKLING / "outcomes.py"), cwd=PICKLING)
    watched = lockwatch(str(PICKLING / "outcomes.py"), cwd=PICKLING)
    assert plain.returncode == 0, plain.stderr
    assert watched.returncode == 0, watched.stderr
    assert "unpickled" in plain.stdout  # the factories pickle by name
    assert watched.stdout.splitlines() == plain.stdout.splitlines()


def test_the_factories_pickle_to_what_the_originals_pickle_to() -> None:
    import pickle
    import threading

    import lockwatch
    from lockwatch import patching

    plain = {name: pickle.loads(pickle.dumps(getattr(threading, name))) for name in ("Lock", "RLock")}
    with lockwatch.watching():
        watched = {name: pickle.loads(pickle.dumps(getattr(threading, name))) for name in ("Lock", "RLock")}
        assert watched["RLock"] is threading.RLock  # pickled as "threading.RLock": the factory
    assert watched == plain
    assert not patching.installed()
    # and the dispatch tables are as they were
    import copy
    import copyreg

    assert patching._reduce_wrapper not in copyreg.dispatch_table.values()
    assert patching._copy_wrapper not in copy._copy_dispatch.values()  # type: ignore[attr-defined]


@pytest.mark.parametrize("method", ["spawn", "forkserver"])
def test_manager_and_process_pool_start(method: str) -> None:
    if method not in multiprocessing.get_all_start_methods():
        pytest.skip(f"no {method} start method here")
    # A short TMPDIR: forkserver puts a Unix socket there, whose path has a length limit.
    tmp = Path(tempfile.mkdtemp(prefix="lw-"))
    try:
        _run_both(method, child_env(tmp))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _run_both(method: str, env: dict[str, str]) -> None:
    program = str(PICKLING / "start_methods.py")
    plain = python(program, method, cwd=PICKLING, env=env, timeout=180)
    watched = lockwatch(program, method, cwd=PICKLING, env=env, timeout=180)
    assert plain.returncode == 0, plain.stderr
    assert watched.returncode == 0, watched.stderr[-3000:]
    assert "pool [0, 1, 4, 9]" in plain.stdout
    assert [ln for ln in watched.stdout.splitlines() if ln.startswith(("manager", "pool"))] == \
        plain.stdout.splitlines()
