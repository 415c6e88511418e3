"""The two cores of the hot path record the same: the compiled one (lockwatch._core) and the
pure-Python one (lockwatch/proxies.py, the reference), chosen by LOCKWATCH_PURE_PYTHON.

The whole suite runs with each core (noxfile.py); these tests compare them directly, and check
the choice itself. The C core's tests skip where it was not built (no compiler at install)."""
from __future__ import annotations

import importlib.util
import os
import random
import threading
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from support import CORE_SWITCH, PROGRAMS, child_env, lockwatch, python, report_of

import lockwatch as package
from lockwatch import proxies
from lockwatch.histogram import LOG_LINEAR, add, bucket_of, new_counters, read_counters

PROGRAM = PROGRAMS / "cores" / "deterministic.py"
BUILT = importlib.util.find_spec("lockwatch._core") is not None
needs_c = pytest.mark.skipif(not BUILT, reason="lockwatch._core was not built (no C compiler at install)")
# In-process tests of the compiled core's recording: this process must run it (not LOCKWATCH_PURE_PYTHON).
runs_c = pytest.mark.skipif(proxies.CORE != "c", reason="this process runs the pure-Python core")


def env_for(core: str, tmp: Path) -> dict[str, str]:
    env = child_env(tmp)
    env.pop(CORE_SWITCH, None)
    if core == "python":
        env[CORE_SWITCH] = "1"
    return env


def _timeless(data: Any, key: str = "") -> Any:
    """A report without what differs from run to run: durations (hold and wait times; their
    histograms keep only how many they counted, and their scale, except the holds of given
    durations: their histogram, and their total and longest in units of 2**23 ns, of which each
    given duration is a multiple), process ids, start times, the core's name."""
    if isinstance(data, dict):
        if key in ("hold", "wait"):
            return {"count": data.get("count"), "histogram_scale": data.get("histogram_scale"),
                    "histogram_count": sum(n for _, n in data.get("histogram", []))}
        if data.get("name") == "h" and "hold" in data:  # the program's holds of given durations
            hold = data["hold"]
            return {**_timeless({k: v for k, v in data.items() if k != "hold"}), "hold": hold["histogram"],
                    "hold_total_max": [round(hold[k] * 1e9) >> 23 for k in ("total", "max")]}
        return {k: _timeless(v, k) for k, v in data.items() if k not in ("meta",)}
    if isinstance(data, list):
        return [_timeless(v, key) for v in data]
    if isinstance(data, str) and key in ("thread_id",):
        return data.split(":", 1)[1]
    return data


def _run(core: str, tmp_path: Path) -> dict[str, Any]:
    out = tmp_path / f"{core}.json"
    result = lockwatch("-q", "--json", str(out), str(PROGRAM), cwd=tmp_path, env=env_for(core, tmp_path / core))
    assert result.stdout == "done\n", result.stderr
    data = report_of(out)
    assert data["meta"]["core"] == core
    # threads: [name, "<pid>:<serial>"]: the serial is the same in both runs, the pid is not
    data["threads"] = [[name, ident.split(":", 1)[1]] for name, ident in data["threads"]]
    return data


@needs_c
def test_both_cores_record_the_same_report(tmp_path: Path) -> None:
    c, py = _run("c", tmp_path), _run("python", tmp_path)
    assert _timeless(c) == _timeless(py)
    # ... and it is not the same because nothing was recorded
    locks = {lock["name"]: lock for lock in py["locks"]}
    # a: 50 nested + 50 under r + arguments, out_of_order, handed_over, the Condition, main
    assert (locks["a"]["acquisitions"], locks["r"]["acquisitions"]) == (50 + 50 + 5, 50 + 2)
    assert locks["a"]["failed"] == 1
    # the semaphores: (acquisitions, contended, failed, holds ended, signal)
    sems = {name: (lk["acquisitions"], lk["contended"], lk["failed"], lk["hold"]["count"], lk["signal"])
            for name, lk in locks.items() if name in ("s2", "bs", "idle")}
    assert sems == {"s2": (3, 0, 2, 3, True), "bs": (4, 1, 1, 4, False), "idle": (1, 0, 0, 0, True)}
    [cycle] = py["potential_deadlocks"]
    assert sorted(lock["name"] for lock in cycle["locks"]) == ["a", "b"]
    counts = sorted(e["count"] for e in cycle["edges"])
    assert counts == [1, 50 + 1]  # a -> b: 50 nested + out_of_order; b -> a once
    # the holds of given durations: in the buckets histogram.bucket_of gives them
    given = [((32 + 7 * k % 32) << (24 + k % 10)) + (1 << (24 + k % 10)) // 2 for k in range(40)]
    assert locks["h"]["hold"]["histogram"] == sorted([i, n] for i, n in Counter(map(bucket_of, given)).items())
    assert {lock["hold"]["histogram_scale"] for lock in py["locks"] if lock["hold"]["count"]} == {LOG_LINEAR}


@needs_c
def test_the_c_core_counts_a_duration_in_the_bucket_histogram_bucket_of_gives() -> None:
    """The compiled hot path computes the bucket in C; the pure one inline from histogram's tables."""
    from lockwatch import _core  # type: ignore[attr-defined]

    rng = random.Random(3)
    values = list(range(-70, 70_000))
    for shift in range(58):  # the lowest and the highest duration of every bucket
        values += [v for j in range(32) for v in ((32 + j) << shift, ((33 + j) << shift) - 1)]
    values += [rng.randrange(2 ** rng.randrange(1, 64)) for _ in range(100_000)] + [2 ** 63 - 1]
    assert [_core.bucket_of(v) for v in values] == [bucket_of(v) for v in values]


@needs_c
def test_the_c_core_hold_counts_are_the_histogram_s_buckets() -> None:
    """A site's HoldCounts (the compiled core's per-bucket C counters, in rows of 32) reads as
    histogram.add's dict of counters does, at every bucket from 0 to the last."""
    from lockwatch import _core  # type: ignore[attr-defined]

    rng = random.Random(5)
    values = list(range(-3, 200)) + [2 ** 63 - 1, 2 ** 62, (2 ** 62) - 1]
    values += [rng.randrange(2 ** rng.randrange(1, 64)) for _ in range(20_000)]
    counts, hist = _core.HoldCounts(), new_counters()
    for v in values:
        counts.add(v)
        add(hist, v)
    assert counts.read() == read_counters(hist)
    assert list(counts.read()) == sorted(counts.read())
    assert _core.HoldCounts().read() == {}


@runs_c
def test_the_c_core_gates_are_the_python_expressions() -> None:
    """_core.gates (a new edge's gate candidates, recorder._record_edges) answers what the
    pure-Python expression makes, also when it gives its kept answer again: for lists of the same
    instances in other orders, with dst among them or not, with a pure-Python instance, after an
    instance was dropped and others made (maybe at its address), after a site changed."""
    import sys

    from lockwatch import _core, recorder  # type: ignore[attr-defined]

    def expected(held: list, dst: Any, n: int, src: Any = None) -> tuple:
        return tuple([(h._serial, h._site) for h in held[:n + 2] if h is not dst and h is not src][:n])

    frame = sys._getframe()
    locks = [proxies.new_lock(frame) for _ in range(6)] + [proxies.new_rlock(frame) for _ in range(4)]
    pure = proxies._new_lock_py(frame)
    rng = random.Random(11)
    other_site = recorder.Site(10_000, "x.py", 1, "f", "Lock")
    checked = 0
    for step in range(3000):
        if step % 500 == 499:  # one dropped, a new one made (maybe where it was)
            locks[rng.randrange(len(locks))] = proxies.new_lock(frame)
        if step % 700 == 699:
            locks[rng.randrange(len(locks))]._site = other_site
        pool = locks + [pure] if step % 3 == 0 else locks
        held = rng.sample(pool, rng.randrange(len(pool) + 1))
        dst = rng.choice(pool)
        for n in (4, 0, 2, 4):  # 4 twice: the kept answer
            assert _core.gates(held, dst, n) == expected(held, dst, n)
            checked += 1
        held.reverse()
        assert _core.gates(held, dst, 4) == expected(held, dst, 4)
        src = rng.choice(pool)
        assert _core.gates(held, dst, 4, src) == expected(held, dst, 4, src)
        assert _core.gates(held, dst, 4, None) == expected(held, dst, 4)
    assert checked == 12_000
    # The kept answer, then the same list after each change that must change the answer.
    held, dst = locks[:6], locks[7]
    first = _core.gates(held, dst, 4)
    assert _core.gates(held, dst, 4) is first
    held[0]._site = recorder.Site(10_001, "y.py", 2, "g", "Lock")
    assert _core.gates(held, dst, 4) == expected(held, dst, 4) != first
    held[1] = proxies.new_lock(frame)
    assert _core.gates(held, dst, 4) == expected(held, dst, 4)
    assert _core.gates(held, held[3], 4) == expected(held, held[3], 4)
    assert _core.gates(held, held[5], 4) == expected(held, held[5], 4) == expected(held, dst, 4)
    held[5] = pure
    assert _core.gates(held, dst, 4) == expected(held, dst, 4)
    assert _core.gates(held, dst, 4, held[0]) == expected(held, dst, 4, held[0]) != expected(held, dst, 4)


@runs_c
def test_the_c_core_makes_an_edge_as_its_init_does() -> None:
    """_core.new_edge (what _record_edges makes edges with under the compiled core) sets each
    field of recorder.Edge as Edge.__init__ does, count and multi included."""
    from lockwatch import _core, recorder  # type: ignore[attr-defined]

    site = recorder.Site(10_002, "z.py", 3, "h", "RLock")
    args = (1, 2, site, None, "a", None, "MainThread", ["held"], ["acq"], True, "ctx", ((3, site),), "1:1", [])
    made, reference = _core.new_edge(*args), recorder.Edge(*args)
    assert type(made) is recorder.Edge
    for name in recorder.Edge.__slots__:
        assert getattr(made, name) == getattr(reference, name), name
    assert made.count == 1 and made.multi is False and made.held_stack is args[7]
    with pytest.raises(TypeError):
        _core.new_edge(*args[:-1])


@runs_c
@pytest.mark.parametrize("in_c", [True, False])
def test_the_c_core_stores_new_edges_as_the_python_section_does(monkeypatch, in_c: bool) -> None:
    """_core.store_edges (the part of recorder._record_edges under its mutex, for the compiled
    core's instances) leaves what the Python section leaves: each edge in its destination's _in
    and its source's _out, both ends in recorder.live, the destination in edge_owners, the site
    pair's count, both edges of a 2-cycle kept, and one count more for an edge drawn again."""
    import threading as th

    from lockwatch import recorder

    if not in_c:
        monkeypatch.setattr(recorder, "store_edges", None)
    else:
        assert recorder.store_edges is not None
    calls = []
    real = recorder.store_edges
    if real is not None:
        monkeypatch.setattr(recorder, "store_edges", lambda *a: calls.append(1) or real(*a))
    with package.watching():
        st = recorder.state
        a, b, c = (th.RLock() for _ in range(3))
        version = st.edges_version
        with a:
            with b:
                with c:
                    pass
        with b:
            with a:
                pass
        with a:
            with b:
                pass
        ins = {name: sorted(lk._in or {}) for name, lk in (("a", a), ("b", b), ("c", c))}
        outs = {name: sorted(lk._out or ()) for name, lk in (("a", a), ("b", b), ("c", c))}
        sa, sb, sc = a._serial, b._serial, c._serial
        assert ins == {"a": [sb], "b": [sa], "c": sorted([sa, sb])}
        assert outs == {"a": sorted([sb, sc]), "b": sorted([sa, sc]), "c": []}
        assert all(s in recorder.live for s in (sa, sb, sc))
        assert set(st.edge_owners) >= {sa, sb, sc}
        assert st.edges_version - version == 4
        assert {k for k in st.kept_edges if set(k) <= {sa, sb}} == {(sa, sb), (sb, sa)}
        assert b._in[sa].count == 2 and a._in[sb].count == 1 and c._in[sa].count == 1
        assert a._site is b._site is c._site  # one creating call: one site pair for the four edges
        assert st.site_edges[(a._site, a._site)][1] == 4
        assert bool(calls) == in_c


def test_the_pure_python_core_when_asked(tmp_path: Path) -> None:
    result = python("-c", "import lockwatch.proxies as p; print(p.CORE, p.Lock is p.PyLock, p.RLock is p.PyRLock)",
                    cwd=tmp_path, env=env_for("python", tmp_path))
    assert result.stdout == "python True True\n", result.stderr


@needs_c
def test_the_c_core_by_default_where_built(tmp_path: Path) -> None:
    result = python("-c", "import lockwatch.proxies as p, lockwatch._core as c; "
                    "print(p.CORE, issubclass(p.Lock, c.Lock), issubclass(p.RLock, c.RLock), "
                    "sorted(p.CORE_DETAILS.items()))", cwd=tmp_path, env=env_for("c", tmp_path))
    # the real locks are used through their C handles on the CPython versions whose layout is known
    details = ("[('counters', True), ('edges_in_c', True), ('held_cache', True), ('lock_handle', True), "
               "('rlock_handle', True)]")
    assert result.stdout == f"c True True {details}\n", result.stderr
    version = lockwatch("--version", cwd=tmp_path, env=env_for("c", tmp_path))
    assert version.stdout == f"lockwatch {package.__version__} (core: c)\n"


@needs_c
def test_a_subinterpreter_leaves_the_main_interpreters_core_alone(tmp_path: Path) -> None:
    """CPython's test_threading SubinterpThreadingTests crashed the next test (a segmentation fault
    in a release): the subinterpreter's lockwatch configured the process-wide C core with its own
    objects, freed when it ended."""
    pytest.importorskip("_testcapi")
    result = lockwatch("-q", str(PROGRAMS / "cores" / "subinterpreter.py"), cwd=tmp_path,
                       env=env_for("c", tmp_path))
    assert result.returncode == 0, result.stderr
    assert result.stdout == "FINISHED\n", result.stderr


def test_this_process_runs_the_core_its_environment_asks_for() -> None:
    """What the suite runs on (noxfile.py runs it once per core)."""
    pure = os.environ.get(CORE_SWITCH, "") not in ("", "0")
    assert proxies.CORE == ("python" if pure or not BUILT else "c")
    with package.watching():
        lock, rlock = threading.Lock(), threading.RLock()
    assert type(lock) is proxies.Lock and type(rlock) is proxies.RLock
    if proxies.CORE == "c":
        from lockwatch import _core  # type: ignore[attr-defined]

        assert isinstance(lock, _core.Lock) and isinstance(rlock, _core.RLock)
    else:
        assert type(lock).__mro__[1:] == proxies.PyLock.__mro__[1:]


@needs_c
def test_c_core_instances_behave_as_the_pure_ones(tmp_path: Path) -> None:
    """Attributes, weak references, subclasses, refusals: the other modules see no difference."""
    program = """
import gc, pickle, threading, weakref, copy
import lockwatch
from lockwatch import proxies, recorder
with lockwatch.watching():
    a, r = threading.Lock(), threading.RLock()
    class Sub(proxies.Lock):
        __slots__ = ()
    s = proxies.new_lock.__globals__["_alloc_lock"](Sub)
    proxies._init(s, proxies._allocate_lock(), "Lock", __import__("sys")._getframe())
    with a:
        held = recorder.tls.held
        print("held", held == [a], a._held_in is held, a._n, a._at_lasti >= 0, a._at_code is not None)
    print("released", a._held_in == (), a._hold_tot >= 0, a.locked())
    with r:
        with r:
            print("depth", r._depth, r._is_owned())
    print("after", r._depth, r._is_owned())
    with s:
        print("sub", type(s).__name__, s._held_in is recorder.tls.held)
    ref = weakref.ref(a)
    for obj in (a, r):
        for f in (pickle.dumps, copy.copy):
            try:
                f(obj)
            except TypeError as e:
                print("refused", type(obj).__name__, f.__name__)
    serial = a._serial
    del a
    gc.collect()
    print("dead", ref() is None, serial not in recorder.live)
"""
    result = python("-c", program, cwd=tmp_path, env=env_for("c", tmp_path))
    assert result.stdout.splitlines() == [
        "held True True 1 True True", "released True True False", "depth 2 True", "after 0 False",
        "sub Sub True",
        "refused Lock dumps", "refused Lock copy", "refused RLock dumps", "refused RLock copy",
        "dead True True",
    ], result.stderr


@needs_c
def test_c_core_lock_makes_its_real_lock_object_only_when_asked(tmp_path: Path) -> None:
    """A Lock of the C core holds its PyThread lock itself (_core.c, "own handles"): no
    _thread.lock object until Python code asks for `_real`, which then has the lock's state and
    stays; a contended acquire (it blocks in that object) and a bad release behave as before."""
    program = """
import _thread, gc, threading
import lockwatch
from lockwatch import proxies
def objects(lock):
    return [type(o).__name__ for o in gc.get_referents(lock) if isinstance(o, type(_thread.allocate_lock()))]
with lockwatch.watching():
    own = proxies.CORE_DETAILS["lock_handle"]
    a, b, c = threading.Lock(), threading.Lock(), threading.Lock()
    with a:
        print("held", a.locked(), a._is_owned(), objects(a) == [] or not own)
    print("free", a.locked(), objects(a) == [] or not own)
    b.acquire()
    real = b._real
    print("made", real.locked(), objects(b) == ["lock"], b._real is real)
    b.release()
    print("released", real.locked(), b.locked())
    c.acquire()
    got = []
    t = threading.Thread(target=lambda: (c.acquire(), got.append(c._held_in is not ()), c.release()))
    t.start()
    while not objects(c) and t.is_alive():
        t.join(0.01)
    print("contended", objects(c) == ["lock"], c._real.locked())
    c.release()
    t.join(30)
    print("handed", got, c.locked())
    try:
        threading.Lock().release()
    except RuntimeError as e:
        print("raises", e)
"""
    result = python("-c", program, cwd=tmp_path, env=env_for("c", tmp_path))
    assert result.stdout.splitlines() == [
        "held True True True", "free False True", "made True True True", "released False False",
        "contended True True", "handed [True] False", "raises release unlocked lock",
    ], result.stderr


@needs_c
def test_held_list_cache_follows_threads_and_fork(tmp_path: Path) -> None:
    """The C core caches each thread's held list: a new thread (a new thread state) gets its own,
    and a forked child keeps the forking thread's, which the child then uses."""
    program = """
import os, threading
import lockwatch
from lockwatch import recorder
with lockwatch.watching():
    a, b = threading.Lock(), threading.Lock()
    lists = []
    def take():
        with a:
            lists.append(recorder.tls.held)
            lists.append(list(recorder.tls.held) == [a])
    for _ in range(3):
        t = threading.Thread(target=take); t.start(); t.join()
    print("threads", len({id(x) for x in lists[::2]}) == 3 or "reused", lists[1::2])
    with a:
        mine = recorder.tls.held
        pid = os.fork()
        if pid == 0:
            with b:
                ok = recorder.tls.held is mine and mine == [a, b]
            a.release()
            ok = ok and mine == [] and a._held_in == ()
            os._exit(0 if ok else 1)
        _, status = os.waitpid(pid, 0)
        print("child", os.waitstatus_to_exitcode(status) if hasattr(os, "waitstatus_to_exitcode") else status)
"""
    if not hasattr(os, "fork"):
        pytest.skip("no fork() here")
    result = python("-c", program, cwd=tmp_path, env=env_for("c", tmp_path))
    assert result.stdout.splitlines() == ["threads True [True, True, True]", "child 0"], result.stderr
