"""Condition, Semaphore and BoundedSemaphore instrumented, with real threads: wait/notify, counts,
hand-offs between threads and the edges through them. Lock/RLock and patching: test_proxies.py."""
from __future__ import annotations

import threading
from typing import Any

import pytest
from support import frame, instance_edges_of, site

import lockwatch

pytestmark = [pytest.mark.timeout(120), pytest.mark.usefixtures("lockwatch_off")]

HERE = __file__


def serial_of(lock):
    """The instrumented lock behind a lock or a Condition."""
    return getattr(lock, "_serial", None) or lock._lock._serial


# --- Condition ------------------------------------------------------------------------------

COND_LOCKS = ["default", "Lock", "RLock"]


def _make_condition(which):
    if which == "default":
        return threading.Condition()  # <cond:default>
    if which == "Lock":
        return threading.Condition(threading.Lock())  # <cond:Lock>
    return threading.Condition(threading.RLock())  # <cond:RLock>


@pytest.mark.parametrize("which", COND_LOCKS)
def test_condition_wait_releases_the_lock_and_retakes_it(threads, which, line_of):
    state = []

    def waiter():
        with cond:  # <wait:enter>
            state.append("waiting")
            assert cond.wait_for(lambda: "go" in state, 60)  # <wait:wait>
            with after_wait:  # <wait:after>
                pass
        with after_exit:  # the condition's lock is no longer held
            pass

    with lockwatch.watching() as session:
        cond = _make_condition(which)  # <cond:made>
        after_wait = threading.Lock()
        after_exit = threading.Lock()
        w = threads.start(waiter, name="waiter")
        main_takes = 0
        # The main thread can take the condition's lock while the waiter is inside its
        # `with cond:` block only because wait() released it.
        for _ in range(60_000):
            with cond:
                main_takes += 1
                if "waiting" in state:
                    state.append("go")
                    cond.notify()
                    break
            threading.Event().wait(0.001)
        w.join()

    assert "go" in state
    snap = session.snapshot()
    [e] = instance_edges_of(snap, cond._lock, after_wait)
    assert e.count == 1  # the re-taken lock is on the held stack once
    assert e.thread == "waiter"
    # Re-taken by wait(): the hold starts at the wait_for() line, in the waiter's frame.
    assert e.held_stack[-1] == frame(waiter, line_of("wait:wait"))
    assert e.acquire_stack[-1] == frame(waiter, line_of("wait:after"))
    assert [x for x in snap.instance_edges if x.dst_instance == after_exit._serial] == []
    kind = "Condition" if which == "default" else which
    # _make_condition only makes and returns it: a factory, whose caller is the site.
    stats = site(snap, HERE, line_of("cond:made"), kind)
    # waiter: enter + re-take after wait; main: every `with cond:`
    assert stats.acquisitions == 2 + main_takes
    assert stats.hold.count == stats.acquisitions  # wait() ended a hold and started another
    assert session.report().potential_deadlocks == []


@pytest.mark.parametrize("which", COND_LOCKS)
def test_condition_edges_on_entry_point_at_the_with_line(threads, which, line_of):
    def work():
        with cond:  # <entry:with>
            with inner:  # <entry:inner>
                pass
        cond.acquire()  # <entry:acquire>
        with inner:
            pass
        cond.release()

    with lockwatch.watching() as session:
        cond = _make_condition(which)
        inner = threading.Lock()
        threads.run(work)

    [e] = instance_edges_of(session.snapshot(), cond._lock, inner)
    assert e.count == 2
    assert e.held_stack[-1] == frame(work, line_of("entry:with"))
    assert e.acquire_stack[-1] == frame(work, line_of("entry:inner"))


@pytest.mark.parametrize("which", COND_LOCKS)
def test_condition_notify_and_notify_all(threads, which):
    tokens = [0]
    consumed = []
    released = []

    def consumer(n):
        with cond:
            assert cond.wait_for(lambda: tokens[0] > 0, 60)
            tokens[0] -= 1
            consumed.append(n)

    def gated(n):
        with cond:
            assert cond.wait_for(lambda: released, 60)
            consumed.append(("all", n))

    with lockwatch.watching() as session:
        cond = _make_condition(which)
        workers = [threads.start(consumer, n) for n in range(3)]
        for expected in range(1, 4):
            with cond:
                tokens[0] += 1
                cond.notify()  # one at a time
            for _ in range(60_000):
                with cond:
                    if len(consumed) == expected:
                        break
                threading.Event().wait(0.001)
        for w in workers:
            w.join()
        assert sorted(consumed) == [0, 1, 2]

        workers = [threads.start(gated, n) for n in range(4)]
        with cond:
            released.append(True)
            cond.notify_all()
        for w in workers:
            w.join()

    assert sorted(c[1] for c in consumed if isinstance(c, tuple)) == [0, 1, 2, 3]
    snap = session.snapshot()
    assert snap.instance_edges == []  # nothing else was taken while holding the condition
    for s in snap.locks:
        assert s.hold.count == s.acquisitions


def test_condition_wait_timeout_retakes_the_lock(threads):
    with lockwatch.watching() as session:
        cond = threading.Condition(threading.Lock())
        with cond:
            assert cond.wait(0.001) is False
            assert cond._lock.locked()
            assert cond.wait_for(lambda: False, 0.001) is False
        assert not cond._lock.locked()
        with pytest.raises(RuntimeError):
            cond.wait(0.001)  # not held: the real Condition's error
        with pytest.raises(RuntimeError):
            cond.notify()
    [stats] = session.snapshot().locks
    assert stats.acquisitions == 3 and stats.hold.count == 3


def test_condition_on_a_reentered_rlock_restores_the_depth(threads):
    ready = []

    def waiter():
        with rlock:
            with cond:  # depth 2
                assert cond.wait_for(lambda: ready, 60)  # releases both levels
                assert rlock._is_owned()
            assert rlock._is_owned()  # depth 1 again
        assert not rlock._is_owned()
        with pytest.raises(RuntimeError):
            rlock.release()
        with after:
            pass

    with lockwatch.watching() as session:
        rlock = threading.RLock()
        cond = threading.Condition(rlock)
        after = threading.Lock()
        w = threads.start(waiter)
        for _ in range(60_000):
            with rlock:  # only possible while the waiter waits (or before it starts)
                if cond._is_owned() and w.thread.is_alive():
                    ready.append(True)
                    cond.notify()
                    break
            threading.Event().wait(0.001)
        w.join()

    snap = session.snapshot()
    assert instance_edges_of(snap, rlock, after) == []
    [stats] = [s for s in snap.locks if s.kind == "RLock"]
    assert stats.hold.count == stats.acquisitions


def test_condition_wait_while_holding_another_lock_records_the_retake_edge(threads):
    ready = []

    def waiter():
        with outer:
            with cond:
                assert cond.wait_for(lambda: ready, 60)

    with lockwatch.watching() as session:
        outer = threading.Lock()
        cond = threading.Condition(threading.Lock())
        w = threads.start(waiter)
        for _ in range(60_000):
            if outer.locked() and cond.acquire(False):  # the waiter is waiting
                ready.append(True)
                cond.notify()
                cond.release()
                break
            threading.Event().wait(0.001)
        w.join()

    [e] = instance_edges_of(session.snapshot(), outer, cond._lock)
    assert e.count == 2  # entering, and re-taking after wait()


# --- Semaphore / BoundedSemaphore -----------------------------------------------------------

@pytest.mark.parametrize("kind", ["Semaphore", "BoundedSemaphore"])
def test_semaphore_acquired_and_released_by_different_threads(threads, kind):
    taken = threading.Event()
    released = threading.Event()

    def acquirer():
        sem.acquire()
        taken.set()
        assert released.wait(60)
        with later:  # the semaphore was released by the other thread: no edge from it
            pass

    def releaser():
        assert taken.wait(60)
        sem.release()
        released.set()

    with lockwatch.watching() as session:
        sem = getattr(threading, kind)(1)
        later = threading.Lock()
        w1 = threads.start(acquirer)
        threads.start(releaser).join()
        w1.join()
        assert sem.acquire(False)  # the value really went back up
        sem.release()

    snap = session.snapshot()
    assert instance_edges_of(snap, sem, later) == []
    [stats] = [s for s in snap.locks if s.kind == kind]
    assert stats.acquisitions == 2
    assert stats.hold.count == 2


@pytest.mark.parametrize("kind", ["Semaphore", "BoundedSemaphore"])
def test_semaphore_counts_like_the_real_one(kind):
    real = getattr(threading, kind)(2)
    with lockwatch.watching() as session:
        sem = getattr(threading, kind)(2)
        assert getattr(type(sem), "_lw_tracked", False)
        for s in (real, sem):
            assert s.acquire(False) and s.acquire(blocking=False)
            assert not s.acquire(False)
            assert not s.acquire(timeout=0.001)
            s.release(2)
            assert s.acquire() and s.acquire()
            s.release()
            s.release()
        with pytest.raises(ValueError):
            threading.Semaphore(-1)
        with pytest.raises(ValueError):
            sem.acquire(False, 1)  # a timeout without blocking
        with pytest.raises(ValueError):
            sem.release(0)
    [stats] = session.snapshot().locks
    assert stats.acquisitions == 4
    assert stats.failed == 2


def test_bounded_semaphore_over_release_raises_exactly_like_the_real_one():
    def over_release(sem):
        sem.acquire()
        sem.release()
        try:
            sem.release()
        except Exception as exc:  # noqa: BLE001 - compared below
            return type(exc), str(exc)
        return None

    def over_release_n(sem):
        sem.acquire()
        try:
            sem.release(2)
        except Exception as exc:  # noqa: BLE001
            sem.release()
            return type(exc), str(exc)
        return None

    want = over_release(threading.BoundedSemaphore(1))
    want_n = over_release_n(threading.BoundedSemaphore(1))
    with lockwatch.watching() as session:
        sem = threading.BoundedSemaphore(1)
        assert getattr(type(sem), "_lw_tracked", False)
        got = over_release(sem)
        got_n = over_release_n(sem)
        # The value is unchanged by the failed releases: one acquire, then empty.
        assert sem.acquire(False) and not sem.acquire(False)
        sem.release()
    assert want is not None and want[0] is ValueError
    assert got == want
    assert got_n == want_n
    [stats] = session.snapshot().locks
    assert stats.acquisitions == 3
    assert stats.hold.count == 3


@pytest.mark.parametrize("kind", ["Semaphore", "BoundedSemaphore"])
def test_edges_through_a_semaphore(threads, kind, line_of):
    def sem_then_lock():
        with sem:  # <sem:held>
            with lock:  # <sem:lock>
                pass

    def lock_then_sem():
        with lock:
            sem.acquire()  # <sem:acquire>
            sem.release()

    with lockwatch.watching() as session:
        sem = getattr(threading, kind)(1)
        lock = threading.Lock()
        threads.run(sem_then_lock, name="sem-first")
        threads.run(lock_then_sem, name="lock-first")

    snap = session.snapshot()
    [e] = instance_edges_of(snap, sem, lock)
    assert e.held_stack[-1] == frame(sem_then_lock, line_of("sem:held"))
    assert e.acquire_stack[-1] == frame(sem_then_lock, line_of("sem:lock"))
    [r] = instance_edges_of(snap, lock, sem)
    assert r.acquire_stack[-1] == frame(lock_then_sem, line_of("sem:acquire"))
    [cycle] = session.report().potential_deadlocks
    assert cycle.scope == "instance"
    assert sorted(ref.kind for ref in cycle.locks) == sorted(["Lock", kind])


def test_semaphore_with_two_holders_records_each_threads_own_acquisition(threads, line_of):
    a_holds = threading.Event()
    b_holds = threading.Event()
    done = threading.Event()

    def holder_a():
        sem.acquire()  # <two:a>
        a_holds.set()
        assert b_holds.wait(60)  # thread B acquired it after us: the latest acquisition is B's
        with lock:  # <two:lock>
            pass
        sem.release()

    def holder_b():
        assert a_holds.wait(60)
        sem.acquire()  # <two:b>
        b_holds.set()
        assert done.wait(60)
        sem.release()

    with lockwatch.watching() as session:
        sem = threading.Semaphore(2)
        lock = threading.Lock()
        wa = threads.start(holder_a, name="A")
        wb = threads.start(holder_b, name="B")
        wa.join()
        done.set()
        wb.join()

    [e] = instance_edges_of(session.snapshot(), sem, lock)
    assert e.thread == "A"
    assert e.held_stack[-1] == frame(holder_a, line_of("two:a"))
    assert e.acquire_stack[-1] == frame(holder_a, line_of("two:lock"))


def test_condition_wait_is_threadings_own_but_for_the_first_slice():
    """lockwatch's Condition waits with threading.Condition.wait's own statements (its waiter
    stays queued throughout, so no notify is lost), except that an untimed wait, registered as
    blocked, first waits one slice and then starts the watchdog's thread. Undo that one branch
    and the two functions must be the same statement for statement on this Python."""
    import ast
    import inspect
    import textwrap

    from lockwatch.primitives import Condition

    def body(func):
        tree = ast.parse(textwrap.dedent(inspect.getsource(func)))
        fn = tree.body[0]
        stmts = fn.body
        if isinstance(stmts[0], ast.Expr) and isinstance(stmts[0].value, ast.Constant):
            stmts = stmts[1:]  # the docstring
        return fn, stmts

    _, theirs = body(Condition._lw_original.wait)  # threading.Condition.wait
    fn, ours = body(Condition._wait)
    untimed = [node for node in ast.walk(fn) if isinstance(node, ast.If)
               and ast.unparse(node.test) == "timeout is None"]
    assert len(untimed) == 1
    assert ast.unparse(untimed[0]) != "if timeout is None:\n    waiter.acquire()\n    gotit = True"
    untimed[0].body = ast.parse("waiter.acquire()\ngotit = True").body
    dump = lambda stmts: [ast.dump(s) for s in stmts]  # noqa: E731
    assert dump(ours) == dump(theirs)


# --- Condition: the written-out __init__ and the compiled core's methods --------------------------

def test_default_condition_has_what_threadings_init_sets():
    """A Condition made without a lock gets its RLock and the attributes threading.Condition's own
    __init__ would set from it (primitives writes that __init__ out for lockwatch's RLock)."""
    from lockwatch import primitives, proxies

    with lockwatch.watching():
        cond = threading.Condition()  # <cond:fast>
        lock = cond._lock
        assert type(lock) is proxies.RLock
        ref = primitives.OrigCondition.__new__(primitives.OrigCondition)
        primitives.OrigCondition.__init__(ref, lock)
    ours = {k: v for k, v in vars(cond).items() if not k.startswith("_lockwatch")}
    assert sorted(ours) == sorted(vars(ref))
    for key, value in vars(ref).items():
        if key == "_waiters":
            assert type(ours[key]) is type(value) and len(ours[key]) == 0
        else:
            assert ours[key] == value, key
    assert lock._site.kind == "Condition" and lock._site.line > 0
    with cond:
        assert cond._is_owned() and lock._depth == 1
    assert not cond._is_owned()


def test_condition_creation_is_the_same_from_both_cores_methods():
    """The compiled core's Condition.__new__/__init__ (_core.c, "Condition: creation") make what
    primitives' Python ones make: threading's own Condition for threading.py's code, the same
    attributes and a lock of the same site for the program's, and the same errors; each falls
    back to the Python one where it does not apply (a lock given, keywords)."""
    from lockwatch import primitives, proxies

    def made_by(py: bool, *args: object, **kwargs: object) -> object:
        # both on one line: the locks' sites have one location (two sites: two instructions)
        return (threading.Condition(*args, **kwargs) if not py else (c := primitives._py_new(primitives.Condition, *args, **kwargs), primitives._py_init(c, *args, **kwargs))[0])  # noqa: E501

    def shape(cond: object) -> tuple:
        lock = cond._lock  # type: ignore[attr-defined]
        attrs = {k: (type(v).__name__, getattr(v, "__func__", getattr(v, "__name__", None)))
                 for k, v in vars(cond).items()}
        return type(cond), type(lock), attrs, lock._site.location, lock._site.kind

    with lockwatch.watching():
        assert threading.Condition.__new__ is not primitives._py_new or proxies.CORE == "python"
        shapes = {py: [shape(made_by(py)) for _ in range(2)] for py in (False, True)}  # one line: one site
        given = {py: made_by(py, threading.Lock()) for py in (False, True)}
        keyword = {py: made_by(py, lock=None) for py in (False, True)}
        errors = {}
        for py in (False, True):
            for args, kwargs in (((1, 2), {}), ((), {"lock": None, "x": 1}), ((), {"x": 1})):
                with pytest.raises(TypeError) as info:
                    made_by(py, *args, **kwargs)
                errors.setdefault(py, []).append(str(info.value))
        event = threading.Event()
    assert shapes[False] == shapes[True]
    assert type(given[False]._lock) is type(given[True]._lock) is proxies.Lock  # type: ignore[attr-defined]
    assert vars(given[False]).keys() == vars(given[True]).keys()
    assert shape(keyword[False]) == shape(keyword[True])
    assert errors[False] == errors[True] and len(errors[False]) == 3
    assert type(event._cond) is primitives.OrigCondition  # type: ignore[attr-defined]


def test_a_condition_subclass_runs_the_next_new_in_its_mro():
    """primitives.Condition.__new__ calls super().__new__(cls): a subclass's other bases' __new__
    runs (the compiled __new__ leaves subclasses to the Python one)."""
    from lockwatch import proxies

    made = []

    class Mixin:
        def __new__(cls, *args: object, **kwargs: object) -> Any:
            made.append(cls)
            return super().__new__(cls)

    with lockwatch.watching():
        class Sub(threading.Condition, Mixin):  # type: ignore[misc,valid-type]
            pass

        cond = Sub()
    assert made == [Sub]
    assert type(cond._lock) is proxies.RLock


def test_condition_notify_checks_like_threadings_own():
    """notify()/notify_all() answer as threading's own: RuntimeError without the lock, nothing
    (whatever n is) when nobody waits (the compiled core's shortcut for that case)."""
    def outcomes(cond):
        out = []
        calls = (cond.notify, cond.notify_all, lambda: cond.notify(2), lambda: cond.notify(n=3),
                 lambda: cond.notify(-1), lambda: cond.notify("x"), lambda: cond.notify(1 << 70))
        for owned in (False, True):
            for call in calls:
                if owned:
                    cond.acquire()
                try:
                    out.append(repr(call()))
                except Exception as exc:
                    out.append(f"{type(exc).__name__}: {exc}")
                finally:
                    if owned:
                        cond.release()
        return out

    plain = outcomes(threading.Condition())
    with lockwatch.watching():
        from lockwatch import primitives

        cond = threading.Condition()
        assert type(cond) is primitives.Condition
        ours = outcomes(cond)
        ours_on_lock = outcomes(threading.Condition(threading.Lock()))
    assert ours == plain == ours_on_lock
    assert plain[:7] == ["RuntimeError: cannot notify on un-acquired lock"] * 7
    assert plain[7:] == ["None"] * 7


def test_condition_notify_all_calls_a_subclass_notify(threads):
    calls = []

    with lockwatch.watching():
        class Counting(threading.Condition):
            def notify(self, n=1):
                calls.append(n)
                return super().notify(n)

        cond = Counting()
        woken = []

        def waiter():
            with cond:
                cond.wait_for(lambda: woken, 60)

        w = threads.start(waiter)
        for _ in range(60_000):
            with cond:
                if cond._waiters:
                    break
            threading.Event().wait(0.001)
        with cond:
            woken.append(True)
            cond.notify_all()
        w.join()
    assert calls == [1]


def test_condition_on_a_lock_of_another_kind_enters_and_exits_it(threads):
    """A Condition on a lock that is not lockwatch's own (a raw one, a subclass of lockwatch's)
    takes it through its own __enter__/__exit__."""
    import _thread

    from lockwatch import proxies

    class Sub(proxies.RLock):
        entered = 0

        def __enter__(self):
            Sub.entered += 1
            return super().__enter__()

    with lockwatch.watching():
        for lock in (_thread.allocate_lock(), Sub("RLock")):
            cond = threading.Condition(lock)
            with cond:
                assert cond._is_owned()
                cond.notify()
            assert not cond._is_owned()
    assert Sub.entered == 1


def test_queue_notifiers_are_kept_by_the_condition(threads):
    """A Queue's Conditions keep the threads that notified them (lockwatch.waits): put and get
    in two threads, each a waker of its channel."""
    import queue

    from lockwatch import waits

    with lockwatch.watching():
        q = queue.Queue()

        def put():
            q.put(1)

        threads.run(put)
        assert q.get(timeout=60) == 1
        res = waits.known(q)
        assert res is not None and res.wakers is not None
        assert len(res.wakers["put"]) == 1 and threading.get_ident() not in res.wakers["put"]
        assert res.wakers["get"] == {threading.get_ident()}
