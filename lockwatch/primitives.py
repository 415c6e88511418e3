"""Instrumented Condition, Semaphore and BoundedSemaphore: subclasses of threading's own classes."""
from __future__ import annotations

import _thread
import collections
import sys
import threading
from types import CodeType
from typing import Any

from . import histogram as _histogram
from . import proxies as _proxies
from . import recorder as _rec
from . import waits as _waits
from .proxies import (
    Lock,
    RLock,
    _before,
    _failed,
    _held_list,
    _init,
    _Tracked,
    _unhold,
)
from .proxies import new_rlock as _new_rlock
from .recorder import Site
from .recorder import now as _now
from .stacks import first_outside

# pytest (and tools that follow its convention) leave this module's frames out of a failing
# test's traceback, e.g. a DeadlockError raised in a blocked acquire: the test's code is what to read.
__tracebackhide__ = True

# The originals, captured at import: lockwatch is imported before it patches anything.
OrigCondition = threading.Condition
OrigSemaphore = threading.Semaphore
OrigBoundedSemaphore = threading.BoundedSemaphore

_getframe = sys._getframe
_tls = _rec.tls
_unmutexed = _rec.waiting_without_mutex
_get_ident = _rec.get_ident
_orig_notify = OrigCondition.notify
_allocate_lock = _thread.allocate_lock  # threading.Condition.wait's waiter lock
_deque = collections.deque  # threading.Condition.__init__'s
_RLock = RLock  # a Condition's own lock, unless a confirmation run replaced RLock


class _Hold:
    """One acquisition of a semaphore: who holds it (the thread's held list; None for a signal),
    since when and where. Compared by identity: list.remove() takes exactly this one."""

    __slots__ = ("held", "t", "code", "lasti")

    def __init__(self, held: list | None, t: int, code: Any, lasti: int) -> None:
        self.held, self.t, self.code, self.lasti = held, t, code, lasti


def _internal_caller(frame: Any) -> bool:
    """Created by threading.py itself (an Event, a Thread's start-up, a Semaphore's or Barrier's
    condition): such locks stay raw and out of the graph."""
    return frame is not None and frame.f_code.co_filename == threading.__file__


class _Mirror(type):
    """Metaclass of the instrumented Condition/Semaphore classes: instances of the original class
    (made before lockwatch was on, or by threading.py itself) still pass isinstance/issubclass
    against the patched name, as they did before."""

    def __instancecheck__(cls, obj: Any) -> bool:
        orig = cls.__dict__.get("_lw_original")
        return type.__instancecheck__(cls, obj) or (orig is not None and isinstance(obj, orig))

    def __subclasscheck__(cls, sub: Any) -> bool:
        orig = cls.__dict__.get("_lw_original")
        return type.__subclasscheck__(cls, sub) or (orig is not None and issubclass(sub, orig))


class Condition(OrigCondition, metaclass=_Mirror):
    """An instrumented ``threading.Condition``: its lock records; waiting and notifying are the
    real Condition's own code, which calls the lock's _release_save/_acquire_restore."""

    _lw_original = OrigCondition
    __module__ = "threading"  # it stands in for threading.Condition (threading.__all__ checks this)
    _lock: Any  # set by threading.Condition.__init__ (not in typeshed)

    def __new__(cls, lock: Any = None) -> Any:
        if cls is Condition and _internal_caller(_getframe(1)):
            return OrigCondition(lock)
        return super().__new__(cls)

    def __init__(self, lock: Any = None) -> None:
        if lock is None:
            # Every concurrent.futures.Future makes one of these: its own lock is made the way the
            # factories make one (the compiled core's instance in one call, not RLock.__init__),
            # and threading.Condition.__init__ is written out for it (lockwatch's RLock has all
            # three of the methods it looks for; tests/test_primitives.py compares the result
            # with what threading's __init__ sets). ~11,000 instructions less per Future.
            if RLock is _RLock:
                lock = _new_rlock(_getframe(1), False, "Condition")
            else:  # a confirmation run's steered RLock (confirm.install_steering)
                lock = RLock("Condition", _getframe(1))
            self._lock = lock
            self.acquire = lock.acquire  # type: ignore[method-assign]  # as threading's __init__ does
            self.release = lock.release  # type: ignore[method-assign]
            self._release_save = lock._release_save
            self._acquire_restore = lock._acquire_restore  # type: ignore[method-assign]
            self._is_owned = lock._is_owned
            self._waiters: Any = _deque()
            return
        super().__init__(lock)
        if isinstance(lock, Lock):
            self._is_owned = lock._is_owned

    def __enter__(self) -> bool:
        # threading.Condition.__enter__ would call the lock's __enter__ from threading.py, and the
        # lock would record threading.py as the place it was taken: record the caller's frame.
        lock = self._lock
        result = lock.__enter__()
        if isinstance(lock, _Tracked) and getattr(lock, "_depth", 1) == 1:
            f = _getframe(1)
            # (mypy: the slots are Lock's and RLock's, _Tracked's own are empty)
            lock._at_code = f.f_code  # type: ignore[misc]
            lock._at_lasti = f.f_lasti  # type: ignore[misc]
        return result

    def wait(self, timeout: float | None = None) -> bool:
        # wait_for() calls this. lockwatch.waits records who waits (and for what: a Queue.get, a
        # Future.result), for real deadlocks and wait edges; it calls
        # _unmutexed(self._wait, timeout, launch).
        return _waits.condition_wait(self, self._wait, _unmutexed, timeout)

    wait.__doc__ = OrigCondition.wait.__doc__

    def _wait(self, timeout: float | None, launch: bool) -> bool:
        # threading.Condition.wait, statement for statement (the same in CPython 3.9 to 3.13:
        # tests/test_primitives.py compares them), but for one thing: with ``launch`` (the
        # thread is registered as blocked) an untimed wait first waits one slice of the
        # watchdog's interval, and starts the watchdog's thread only if it outlasts it. The
        # waiter stays in the queue all along, so no notify can be missed (a timed wait that
        # timed out and waited again could consume one and lose it: notify() wakes one waiter).
        if not self._is_owned():
            raise RuntimeError("cannot wait on un-acquired lock")
        waiter = _allocate_lock()
        waiter.acquire()
        self._waiters.append(waiter)
        saved_state = self._release_save()
        gotit = False
        try:    # restore state no matter what (e.g., KeyboardInterrupt)
            if timeout is None:
                piece = _waits._slice() if launch else None
                if piece is None:
                    waiter.acquire()
                elif not waiter.acquire(True, piece):
                    _waits._launch()
                    waiter.acquire()
                gotit = True
            else:
                if timeout > 0:
                    gotit = waiter.acquire(True, timeout)
                else:
                    gotit = waiter.acquire(False)
            return gotit
        finally:
            self._acquire_restore(saved_state)
            if not gotit:
                try:
                    self._waiters.remove(waiter)
                except ValueError:
                    pass

    # -- waits.py: who wakes this Condition (notify_all calls notify) --------------------------
    # Called once per Queue.put/get and per completed Future, so the common case is written out
    # here: the notifier holds no lock but the Condition's own (nothing for the lock-order graph),
    # and only a Queue's Conditions (waits._mark_queue set their _lockwatch_wakers) keep their
    # notifiers, one set lookup once the thread is known. Anything else: waits.condition_notified.
    _lockwatch_wakers: set[int] | None = None  # the set of a Queue's Condition (waits._mark_queue)

    def notify(self, n: int = 1) -> None:
        if _waits.active:
            held = _tls.__dict__.get("held")  # (getattr's default costs an AttributeError)
            if held and (len(held) > 1 or held[0] is not self._lock):
                _waits.condition_notified(self)
            else:
                wakers = self._lockwatch_wakers
                if wakers is not None:
                    ident = _get_ident()
                    if ident not in wakers and len(wakers) < _waits.MAX_WAKERS:
                        wakers.add(ident)
        return _orig_notify(self, n)

    notify.__doc__ = OrigCondition.notify.__doc__

    def _acquire_restore(self, x: Any) -> None:
        # wait() re-takes a plain Lock through threading.Condition._acquire_restore, i.e. from
        # threading.py: the lock would record threading.py as where it was taken, and every edge
        # out of it after a wait() had a held_stack inside threading.py. Record the frame that
        # called wait()/wait_for() instead. (An RLock brings its own _acquire_restore, which
        # Condition.__init__ installs on the instance, so this runs for plain Locks only.)
        lock = self._lock
        lock.acquire()
        if isinstance(lock, _Tracked):
            f = first_outside(_getframe(1))
            if f is not None:
                lock._at_code = f.f_code  # type: ignore[misc]  # Lock's slots, as in __enter__
                lock._at_lasti = f.f_lasti  # type: ignore[misc]


# The compiled core's __enter__, __exit__, notify and notify_all (lockwatch/_core.c, "Condition"):
# one Python call less per `with`, notify and notify_all (threading's __exit__ and notify_all are
# Python), and no Python code at all for a notify that wakes nobody; they call the methods above
# for everything else. Queue.put+get and a Future's set_result+result take a Condition two times
# each, and notify once.
_py_enter = Condition.__dict__["__enter__"]
_py_notify = Condition.__dict__["notify"]
if _proxies._core is not None:
    for _name, _method in _proxies._core.condition_methods(
            OrigCondition, Lock, RLock, _py_enter, _py_notify, _orig_notify, vars(_waits),
            _waits.MAX_WAKERS, collections.deque).items():
        setattr(Condition, _name, _method)

# ... and its __new__ and __init__ (_core.c, "Condition: creation"): every Future makes a Condition,
# whose own RLock they make without Python code for an instruction seen before (~9,000
# instructions less per Future, callgrind, 3.11); the Python ones above for anything else.
_py_new = Condition.__dict__["__new__"].__func__
_py_init = Condition.__dict__["__init__"]
if _proxies._core is not None:
    for _name, _method in _proxies._core.condition_creation(
            Condition, OrigCondition, _py_new, _py_init, globals(), threading.__file__).items():
        setattr(Condition, _name, _method)


def _take_hold(sem: Any, mine: list | None, foreign: dict[int, list]) -> _Hold | None:
    """Remove and return the hold a release ends: the releasing thread's own, else the oldest
    (called under the mutex). A release by a thread that holds none of it makes the semaphore a
    signal: every hold of it is then held by nobody (their threads' held lists are added to
    ``foreign``, to be told); a release with no hold to end at all (released before the
    acquire that takes the unit was recorded) is a credit the next acquisition uses up.
    Program code may run in the middle (see recorder.mutex): the loops work on copies."""
    holders = sem._holders
    if mine is not None:
        for hold in list(holders):
            if hold.held is mine:
                try:
                    holders.remove(hold)
                except ValueError:
                    continue
                return hold
    sem._site.signal = True  # a signal, not a lock: analysis ignores the edges out of it
    for hold in list(holders):
        if hold.held is not None:
            foreign[id(hold.held)] = hold.held
            hold.held = None
    while holders:
        try:
            return holders.pop(0)
        except IndexError:
            break
    sem._credit += 1
    return None


def _sem_block(sem: Any, timeout: float | None) -> int | None:
    """A contended acquire of a semaphore (also the compiled core's): block for a unit like
    ``acquire(True, timeout)``, registered with the watchdog when it runs, and without
    lockwatch's mutex if this thread holds it. Returns when the wait began (ns), None if it
    timed out."""
    sup = super(_SemaphoreMixin, sem).acquire
    t0 = _now()
    watch = _rec.watch
    if watch is None:
        ok = _unmutexed(sup, True, timeout)
    else:
        ok = _unmutexed(watch.blocking_acquire, sem, sup, timeout, t0)
    return t0 if ok else None


class _SemaphoreMixin:
    """Recording for a counted resource without an owner: any thread may release, so holders are
    kept per acquisition and a release ends the releasing thread's own hold if it has one, else the
    oldest. Counters are guarded by lockwatch's own mutex (there is no single holder)."""

    _lw_kind = "Semaphore"
    _lw_tracked = True

    # Set by _init(), as on a Lock (declared for type checkers), and by threading's classes.
    _site: Site
    _at_code: CodeType | None
    _at_lasti: int
    _n: int
    _ncont: int
    _nfail: int
    _hold_tot: int
    _hold_max: int
    _wait_tot: int
    _wait_max: int
    _value: int  # threading.Semaphore's count
    _initial_value: int  # threading.BoundedSemaphore's bound

    def __init__(self, value: int = 1) -> None:
        if self.__dict__.get("_lw_initing"):
            # threading.BoundedSemaphore.__init__ calls `Semaphore.__init__` through the module
            # global, which is this class while patched: give it the original's.
            OrigSemaphore.__init__(self, value)  # type: ignore[arg-type]
            return
        self._lw_initing = True
        super().__init__(value)  # type: ignore[call-arg]
        del self._lw_initing
        _init(self, None, self._lw_kind, _getframe(1))
        # [held list, acquisition time, code, lasti] per acquisition: where each holder took it
        # (the instance's _at_code/_at_lasti are only the latest acquirer's, maybe another thread)
        self._holders: list[_Hold] = []
        self._credit = 0  # releases recorded before the acquisitions that take their units
        if value > self._site.sem_value:
            self._site.sem_value = value
        if value == 0:
            # Made with no unit: every unit is released before it is taken, by design a signal
            # (queue.SimpleQueue's, a thread pool's idle semaphore), never a lock anyone holds.
            self._site.signal = True

    def acquire(self, blocking: bool = True, timeout: float | None = None) -> bool:
        if not blocking and timeout is not None:
            return super().acquire(blocking, timeout)  # type: ignore[misc]  # raises ValueError
        frame = _getframe(1)
        held = _held_list()
        if blocking and held and (timeout is None or timeout > 0):  # timeout<=0 cannot wait
            _before(self, held, timeout is not None)
        sup = super().acquire  # type: ignore[misc]
        try:
            instant = timeout is not None and timeout <= 0
        except TypeError:  # the real acquire looks at it only if it has to wait
            instant = False
        if instant:
            # Cannot block (threading's acquire waits zero seconds, once): one call, as the
            # program made it, and nothing for the watchdog to watch; not a contention. A
            # thread pool tries its idle semaphore so at every submit.
            if not sup(True, timeout):
                _failed(self)
                return False
            t = _now()
            waited = None
        elif sup(False):
            t = _now()
            waited = None
        elif not blocking:
            _failed(self)
            return False
        else:
            t0 = _sem_block(self, timeout)
            if t0 is None:
                _failed(self)
                return False
            t = _now()
            waited = t - t0
        with _rec.mutex:
            if waited is not None:
                self._ncont += 1
                self._wait_tot += waited
                if waited > self._wait_max: self._wait_max = waited  # noqa: E701  (see recorder.mutex)
                _histogram.add(self._site.wait_hist, waited)
            self._n += 1
            if self._credit:
                # Its release was recorded first (another thread's): a signal; the hold is over.
                self._credit -= 1
                self._site.signal = True
                return True
            # A signal (released by other threads than its acquirers, e.g. a thread pool's idle
            # semaphore): acquiring it is not holding a lock. Timed, but not held.
            signal = self._site.signal
            self._holders.append(_Hold(None if signal else held, t, frame.f_code, frame.f_lasti))
        if signal:
            return True
        self._at_code = frame.f_code
        self._at_lasti = frame.f_lasti
        held.append(self)
        return True

    __enter__ = acquire

    def release(self, n: int = 1) -> None:
        super().release(n)  # type: ignore[misc]  # validates n and the bound first
        t = _now()
        mine = _tls.__dict__.get("held")  # (getattr's default costs an AttributeError)
        ended = 0
        foreign: dict[int, list] = {}
        with _rec.mutex:
            if not self._holders:
                # No hold to end: what _take_hold does then, n times (a signal's release before
                # the acquisition that takes the unit, e.g. a thread pool's idle semaphore,
                # released by a worker after each task and acquired by a later submit).
                self._site.signal = True
                self._credit += n
                return
            for _ in range(n):
                hold = _take_hold(self, mine, foreign)
                if hold is None:
                    continue  # released before its acquisition was recorded: a credit
                d = t - hold.t
                self._hold_tot += d
                if d > self._hold_max: self._hold_max = d  # noqa: E701  (see recorder.mutex)
                _histogram.add(self._site.hold_hist, d)  # d < 0 if the hold it ends was timed after t
                if hold.held is not None:  # this thread's own
                    ended += 1
        for _ in range(ended):
            _unhold(mine, self)  # type: ignore[arg-type]  # own holds: mine is a list
        for held in foreign.values():  # other threads' lists: their own threads apply it
            _rec.hand_off(held, self)

    def __exit__(self, et: Any, ev: Any, tb: Any) -> None:
        self.release()

    def __repr__(self) -> str:
        # The real repr's shape (`<threading.Semaphore at 0x..: value=N>`, which CPython's
        # lock_tests match with `<\w+\.Semaphore at .*: value=3>`): "Semaphore at" must stay
        # adjacent, so what it is goes in parentheses after the address.
        cls = "BoundedSemaphore" if isinstance(self, OrigBoundedSemaphore) else "Semaphore"
        extra = f"/{self._initial_value}" if cls == "BoundedSemaphore" else ""
        return (f"<lockwatch.{cls} at {id(self):#x} ({self._describe()}):"  # type: ignore[misc]  # _Tracked's
                f" value={self._value}{extra}>")

    def __del__(self) -> None:
        try:
            _rec.fold_instance(self)
        except Exception:
            pass

    _describe = _Tracked._describe  # it reads _ann and _site, which a semaphore has too


# The compiled core's acquire, __enter__, release and __exit__ (lockwatch/_core.c, "Semaphore"):
# they record what the methods above record, and call them for arguments of other types. A thread
# pool's idle semaphore is acquired at each submit and released after each task.
_py_sem_acquire = _SemaphoreMixin.__dict__["acquire"]
_py_sem_release = _SemaphoreMixin.__dict__["release"]
if _proxies._core is not None:
    for _name, _method in _proxies._core.semaphore_methods(
            OrigSemaphore, OrigBoundedSemaphore, _py_sem_acquire, _py_sem_release, _sem_block, _Hold,
            vars(_rec), _rec.Site, OrigCondition, collections.deque).items():
        setattr(_SemaphoreMixin, _name, _method)


class Semaphore(_SemaphoreMixin, OrigSemaphore, metaclass=_Mirror):
    """An instrumented ``threading.Semaphore``."""

    _lw_original = OrigSemaphore
    __module__ = "threading"  # it stands in for threading.Semaphore (threading.__all__ checks this)


class BoundedSemaphore(_SemaphoreMixin, OrigBoundedSemaphore, metaclass=_Mirror):
    """An instrumented ``threading.BoundedSemaphore``."""

    _lw_original = OrigBoundedSemaphore
    __module__ = "threading"  # it stands in for threading.BoundedSemaphore (threading.__all__ checks this)

    _lw_kind = "BoundedSemaphore"


TRACKED_TYPES = (Lock, RLock, Semaphore, BoundedSemaphore)
