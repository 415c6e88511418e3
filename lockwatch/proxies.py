"""Instrumented Lock and RLock, and the recording they share with the other primitives: the hot path."""
from __future__ import annotations

import _thread
import importlib
import itertools
import os
import sys
import threading
from types import CodeType
from typing import Any, overload

from . import histogram as _histogram
from . import recorder as _rec
from . import stacks as _stacks
from .recorder import now as _now
from .stacks import first_outside

# pytest (and tools that follow its convention) leave this module's frames out of a failing
# test's traceback, e.g. a DeadlockError raised in a blocked acquire: the test's code is what to read.
__tracebackhide__ = True

# The originals, captured at import: lockwatch is imported before it patches anything.
_allocate_lock = _thread.allocate_lock
_real_rlock = threading.RLock
_TIMEOUT_MAX = threading.TIMEOUT_MAX

_getframe = sys._getframe
_tls = _rec.tls
_new_edges = _rec.new_edges
_thread_start = _rec.thread_start
_unmutexed = _rec.waiting_without_mutex
_site_for = _rec.site_for
_next_serial = _rec.next_serial
_pending = _rec.pending  # releases handed to their holders' threads, by id() of the held list
_drain = _rec.drain
_live = _rec.live
_weakref = _rec.weakref_ref
# histogram.bucket_of, written out inline on the hot path (its cost is measured in histogram.py):
#     _SMALL[d] if d < _NSMALL else _BASE[(b := d.bit_length())] + (d >> _SHIFT[b])
# and a KeyError for a bucket's first duration, which _count() makes (histogram.add). Every d
# there is an end minus a start taken by the same thread from one monotonic clock: never negative.
_SMALL, _NSMALL, _BASE, _SHIFT = _histogram.SMALL, _histogram.NSMALL, _histogram.BASE, _histogram.SHIFT
_count = _histogram.add

# Plain __slots__ classes with the recording written out in each method: a wrapt ObjectProxy costs
# ~3x more per acquisition (DESIGN.md, measured costs), and delegating __enter__/__exit__ to
# acquire/release costs one more Python call each. So the hot methods are written out twice.
_SLOTS = (
    "_real", "_serial", "_site", "_in", "_out", "_held_in", "_t", "_at_code", "_at_lasti",
    "_n", "_ncont", "_nfail", "_hold_tot", "_hold_max", "_wait_tot", "_wait_max", "_hh", "_ann", "_last",
    "__weakref__",
)


def _before(lock: Any, held: list, timed: bool) -> None:
    """A thread holding ``held`` (its own list) is about to block on ``lock``: count or record
    each edge, after applying the releases other threads handed to it (the nested path only:
    with nothing held there is nothing stale to draw an edge from)."""
    if _pending and id(held) in _pending:
        _drain(held)
    ins = lock._in
    fresh = None
    for h in (held if len(held) <= _SAME_SITE_SOURCES else _sources(lock, held)):
        if h is lock:
            continue
        if ins is not None:
            e = ins.get(h._serial)
            if e is not None:
                # Two holders of one semaphore may count its pair at once: on 3.9 (a thread
                # switch inside +=) and free-threaded builds one of the two counts can be lost.
                e.count += 1
                if e.held_ref is not held:
                    e.multi = True  # another thread (held lists are per thread)
                if e.timed and not timed:
                    e.timed = False
                if e.gates:
                    _recheck_gates(e, held)
                continue
        # New edges are recorded together after the loop: what they share (the blocking frame,
        # the thread, the stacks' cache entry) is looked up once (as_completed() over n futures
        # makes ~8 new edges per acquisition).
        if fresh is None:
            fresh = [h]
        else:
            fresh.append(h)
    if fresh is not None:
        h = None  # new_edges() counts references to tell a dropped lock: not this loop's
        _new_edges(fresh, lock, held, timed)


_SAME_SITE_SOURCES = _rec.SAME_SITE_SOURCES


def _sources(lock: Any, held: list) -> list:
    """The held locks that get an edge into ``lock`` when a thread holds many: all of them while
    it holds at most SAME_SITE_SOURCES locks made where ``lock`` was made (a nest that deep is
    recorded exactly: every pair); beyond that, of those only the latest, as lockdep does for
    every lock. as_completed() over n futures holds all n of their locks: without a bound it
    records n^2/2 edges (3,000 futures: 4.5 million, minutes and gigabytes); with the latest 8
    it recorded 8n, and new edges were most of its cost under lockwatch. An older one still
    reaches ``lock`` through the chain of later ones, each recorded when it was taken, so a
    cycle through it is still a cycle, a longer one."""
    site = lock._site
    same = 0
    latest = None
    i = len(held)
    while i:  # back past SAME_SITE_SOURCES locks of its site (in as_completed(): 9 steps)
        i -= 1
        h = held[i]
        if h._site is site:
            if latest is None:
                latest = h
            same += 1
            if same > _SAME_SITE_SOURCES:
                # the locks of other sites, then the latest of its own (a list comprehension:
                # 4x faster than itertools.compress over operator.attrgetter at 100 held locks)
                others = [h for h in held if h._site is not site]
                others.append(latest)
                return others
    return held


def _recheck_gates(e: Any, held: list) -> None:
    """A gate lock counts only if it was held every time the edge was taken (triage: guarded)."""
    keep = tuple(g for g in e.gates if _holds(held, g[0]))
    if len(keep) != len(e.gates):
        e.gates = keep


def _holds(held: list, serial: int) -> bool:
    """Gates were the outermost locks held, so a search from the bottom finds one still held at
    once; one not held is searched for once and dropped (a set of all held serials per call made
    wait() over 3,000 futures spend a second here)."""
    for h in held:
        if h._serial == serial:
            return True
    return False


@overload
def _wait(lock: Any, real: Any) -> int: ...
@overload
def _wait(lock: Any, real: Any, timeout: float) -> int | None: ...


def _wait(lock: Any, real: Any, timeout: float = -1) -> int | None:
    """The contended path: block on the real lock, then count the wait (while holding the lock,
    so the counters stay exact). Returns the acquisition time, or None on timeout."""
    t0 = _now()
    watch = _rec.watch
    if watch is None:
        ok = _unmutexed(real.acquire, True, timeout)
    else:  # registered as waiting, and woken now and then to break a deadlock if chosen
        ok = _unmutexed(watch.blocking_acquire, lock, real.acquire, None if timeout == -1 else timeout,
                        t0, _in_restore(_getframe(1)))
    t = _now()
    if not ok:
        _failed(lock)
        return None
    d = t - t0
    lock._ncont += 1
    lock._wait_tot += d
    if d > lock._wait_max:
        lock._wait_max = d
    hist = lock._site.wait_hist
    try:
        next(hist[_SMALL[d] if d < _NSMALL else _BASE[(b := d.bit_length())] + (d >> _SHIFT[b])])
    except KeyError:
        _count(hist, d)
    return t


def _in_restore(frame: Any) -> bool:
    """Is this acquire a Condition's wait() re-taking a plain Lock (Condition._acquire_restore
    calls lock.acquire())? The watchdog must not raise DeadlockError there (contended path only)."""
    for _ in range(3):  # the acquire method, _acquire_slow, then their caller
        if frame is None:
            return False
        if frame.f_code.co_name == "_acquire_restore":
            return True
        frame = frame.f_back
    return False


def _failed(lock: Any) -> None:
    # Not holding the lock here, so its own mutual exclusion does not protect the counter.
    with _rec.mutex:
        lock._nfail += 1


def _unhold(held: list, lock: Any) -> None:
    """Remove ``lock`` from the calling thread's own held list when it is not on top (an
    out-of-order release): its latest entry, by identity (older ones are stale holds whose
    releases were handed over and are not applied yet). Absent (after fork, after
    _at_fork_reinit) is fine. Another thread's list is never changed here: see _rec.hand_off."""
    for i in range(len(held) - 1, -1, -1):
        if held[i] is lock:
            del held[i]
            return


def _own_list() -> Any:
    return getattr(_tls, "held", None)


def _held_list() -> list:
    try:
        return _tls.held
    except AttributeError:
        return _thread_start()


def _init(lock: Any, real: Any, kind: str, frame: Any, outside: bool = False) -> None:
    """Set up a new instance made by the code running in ``frame`` (``outside``: known to be the
    program's frame, not lockwatch's or threading's)."""
    site = _site_for(frame if outside else first_outside(frame), kind)
    lock._real = real
    lock._serial = _next_serial()
    lock._in = None
    lock._out = None
    lock._held_in = ()  # falsy: not held
    lock._t = 0
    lock._at_code = None
    lock._at_lasti = -1
    lock._n = lock._ncont = lock._nfail = 0
    lock._hold_tot = lock._hold_max = lock._wait_tot = lock._wait_max = 0
    lock._hh = site.hold_hist  # the site's dict, one attribute load less per release
    lock._ann = None  # lockwatch.name() / order_key() annotations
    lock._last = None  # the held list of the thread that released it last
    lock._site = site
    next(site.made)  # one more instance made here (atomic: no lock needed)
    # Last: what fork and snapshots visit (no heap walk); an instance registered is complete.
    _live[lock._serial] = _weakref(lock)


def _valid_timeout(timeout: Any) -> bool:
    return isinstance(timeout, (int, float)) and 0 <= timeout <= _TIMEOUT_MAX


class _Tracked:
    __slots__ = ()
    _lw_tracked = True  # an instrument (recorder.live registers each instance)
    # Makes a blank instance: object.__new__, or the C base type's __new__ (the compiled core's
    # types refuse object.__new__).
    _lw_alloc: Any = object.__new__

    # The instance state, in the subclasses' __slots__ and set by _init() (declared for type checkers).
    _real: Any  # the C lock: _thread.lock, or _thread.RLock whose private methods typeshed lacks
    _serial: int
    _site: _rec.Site
    _in: dict[int, _rec.Edge] | None  # edges into this lock, by source serial
    _out: set[int] | None  # serials of the locks with an edge from this one (edges die with either end)
    _held_in: list[Any] | tuple[()]  # the holder's held list; () (falsy) when not held
    _t: int  # when the current hold began
    _at_code: CodeType | None  # where the current hold was taken
    _at_lasti: int
    _n: int
    _ncont: int
    _nfail: int
    _hold_tot: int
    _hold_max: int
    _wait_tot: int
    _wait_max: int
    _hh: dict[int, itertools.count[int]]  # the site's hold histogram
    _ann: dict[str, Any] | None
    _last: list[Any] | None  # the held list of the thread that released it last

    def __del__(self) -> None:
        try:
            _rec.fold_instance(self)
        except Exception:  # interpreter shutdown: modules may already be torn down
            pass

    def _describe(self) -> str:
        name = _rec.lock_name(self) or self._site.display_name()
        return f"{name!r} created at {self._site.location}"

    def __reduce_ex__(self, protocol: Any) -> Any:
        # The real lock cannot be copied or pickled (TypeError: cannot pickle '_thread.lock'
        # object). Without this, copy.copy() of a __slots__ class succeeded and made a second
        # proxy sharing the real lock, the serial and the held state. Raise the real error.
        return self._real.__reduce_ex__(protocol)


class Lock(_Tracked):
    """An instrumented ``threading.Lock``."""

    __slots__ = _SLOTS

    def __new__(cls, *args: Any, **kwargs: Any) -> Lock:
        # As the real type: before 3.13 `type(threading.Lock())()` raises TypeError; from 3.13
        # on threading.Lock is the class itself and can be called. lockwatch makes its own
        # instances with new_lock().
        if not _LOCK_IS_A_CLASS:
            raise TypeError(f"cannot create '{cls.__module__}.{cls.__qualname__}' instances")
        if args or kwargs:
            raise TypeError("lock() takes no arguments")
        lock = cls._lw_alloc(cls)
        _init(lock, _allocate_lock(), "Lock", _getframe(1))
        return lock

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass  # set up by __new__ or new_lock()

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        if blocking is not True or timeout != -1:
            return _acquire_slow(self, blocking, timeout, _getframe(1))
        try:
            held = _tls.held
        except AttributeError:
            held = _thread_start()
        if held:
            _before(self, held, False)
        real = self._real
        if real.acquire(False):
            t = _now()
        else:
            t = _wait(self, real)
        f = _getframe(1)
        self._at_code = f.f_code
        self._at_lasti = f.f_lasti
        self._t = t
        self._n += 1
        self._held_in = held
        held.append(self)
        return True

    def __enter__(self) -> bool:
        # acquire() without its arguments: `with` is the commonest use and pays no argument check.
        try:
            held = _tls.held
        except AttributeError:
            held = _thread_start()
        if held:
            _before(self, held, False)
        real = self._real
        if real.acquire(False):
            t = _now()
        else:
            t = _wait(self, real)
        f = _getframe(1)
        self._at_code = f.f_code
        self._at_lasti = f.f_lasti
        self._t = t
        self._n += 1
        self._held_in = held
        held.append(self)
        return True

    def release(self) -> None:
        t = _now()
        held = self._held_in
        if not held or held[-1] is not self:
            return _release_slow(self, t)
        # Only the holder pops its own list: another thread's check-then-pop could pop a lock the
        # holder took meanwhile (held lists are changed by their own thread only). ~25 ns.
        try:
            if held is not _tls.held:
                return _release_slow(self, t)
        except AttributeError:
            return _release_slow(self, t)
        held.pop()
        self._held_in = ()  # exact: a stale entry of this lock is told from a hold by it
        self._last = held  # who released it last (a join while holding it asks: waits.py)
        d = t - self._t
        self._hold_tot += d  # counters change before the real release: the lock guards them
        if d > self._hold_max:
            self._hold_max = d
        self._real.release()
        # The histogram is shared by a site's instances: one next() on a counter adds to it
        # without a lock (histogram.new_counters). Counts and totals above: the lock guards them.
        try:
            next(self._hh[_SMALL[d] if d < _NSMALL else _BASE[(b := d.bit_length())] + (d >> _SHIFT[b])])
        except KeyError:
            _count(self._hh, d)

    def __exit__(self, et: Any, ev: Any, tb: Any) -> None:
        # release(), written out again: one Python call less on every `with`.
        t = _now()
        held = self._held_in
        if not held or held[-1] is not self:
            return _release_slow(self, t)
        try:
            if held is not _tls.held:
                return _release_slow(self, t)
        except AttributeError:
            return _release_slow(self, t)
        held.pop()
        self._held_in = ()
        self._last = held
        d = t - self._t
        self._hold_tot += d
        if d > self._hold_max:
            self._hold_max = d
        self._real.release()
        try:
            next(self._hh[_SMALL[d] if d < _NSMALL else _BASE[(b := d.bit_length())] + (d >> _SHIFT[b])])
        except KeyError:
            _count(self._hh, d)

    def locked(self) -> bool:
        return self._real.locked()

    # The real lock's deprecated aliases: same behaviour, recorded.
    acquire_lock = acquire
    release_lock = release
    locked_lock = locked

    def _is_owned(self) -> bool:
        # threading.Condition's fallback for a plain Lock would try-acquire and release it, which
        # would count phantom acquisitions; "held by someone" is what that fallback computes.
        return self._real.locked()

    def _at_fork_reinit(self) -> None:
        self._real._at_fork_reinit()
        held, self._held_in = self._held_in, ()
        if held:
            _unhold(held, self)

    def __repr__(self) -> str:
        state = "locked" if self._real.locked() else "unlocked"
        return (f"<{state} lockwatch.Lock object {self._describe()} wrapping {self._real!r}"
                f" at {id(self):#x}>")


_LOCK_IS_A_CLASS = isinstance(threading.Lock, type)  # Python 3.13+


def _new_lock_py(frame: Any, outside: bool = False) -> Lock:
    """An instrumented Lock created by the code running in ``frame``."""
    lock = _alloc_lock(Lock)
    _init(lock, _allocate_lock(), "Lock", frame, outside)
    return lock


def _new_rlock_py(frame: Any, outside: bool = False, kind: str = "RLock") -> RLock:
    """An instrumented RLock created by the code running in ``frame`` (as RLock(kind, frame),
    without the __init__ call)."""
    lock = _alloc_rlock(RLock)
    _init(lock, _real_rlock(), kind, frame, outside)
    lock._depth = 0
    return lock


def _release_slow(lock: Any, t: int) -> None:
    """A release that is not the releasing thread's innermost hold: out of order, by another
    thread (a Lock may be handed off), or of a lock that is not held at all."""
    held = lock._held_in
    if not lock._real.locked():
        return lock._real.release()  # not held: the real lock raises, as it would
    d = t - lock._t
    lock._hold_tot += d
    if d > lock._hold_max:
        lock._hold_max = d
    lock._held_in = ()
    if held:
        lock._last = held
        if held is _own_list():
            _unhold(held, lock)
        else:
            # Handed to the holder before the real release: whatever the holder does after the
            # lock is free (take it again, take another) finds the release pending.
            _rec.hand_off(held, lock)
    lock._real.release()
    _count(lock._hh, d)  # not inline: another thread's release may start before the hold it ends (d < 0)


def _acquire_slow(lock: Any, blocking: Any, timeout: Any, frame: Any) -> bool:
    """acquire() with arguments. A trylock adds no edge: it cannot wait, so it cannot deadlock
    (lockdep, TSan and Abseil agree). A timed acquire adds an edge marked as timed."""
    real = lock._real
    held = _held_list()
    t: int | None  # None: timed out
    if not blocking:
        if not real.acquire(blocking, timeout):  # the real lock validates the arguments
            _failed(lock)
            return False
        t = _now()
    else:
        timed = timeout != -1
        if timed and not _valid_timeout(timeout):
            # An invalid timeout raises exactly as the real lock does.
            if not real.acquire(blocking, timeout):
                return False
            t = _now()
        else:
            if held and timeout != 0:  # timeout=0 cannot wait: a trylock, no edge
                _before(lock, held, timed)
            if real.acquire(False):
                t = _now()
            else:
                t = _wait(lock, real, timeout)
                if t is None:
                    return False
    _took(lock, held, t, frame)
    return True


def _took(lock: Any, held: list, t: int, frame: Any) -> None:
    lock._at_code = frame.f_code
    lock._at_lasti = frame.f_lasti
    lock._t = t
    lock._n += 1
    lock._held_in = held
    held.append(lock)


class RLock(_Tracked):
    """An instrumented ``threading.RLock``: re-entry adds no edge and no new hold; the hold ends at
    the outermost release. The owner is the thread whose held list ``_held_in`` is (held lists
    are per thread), which saves a get_ident() call per acquisition."""

    __slots__ = _SLOTS[:-1] + ("_depth", "__weakref__")
    _depth: int  # re-entry depth of the current hold
    # gevent's monkey.patch_all() gives every existing instance of type(threading.RLock()) with an
    # owner the current greenlet's id, and fails on a type without `_owner` (vars() of a
    # __slots__ object). The real lock inside keeps the owner: None says there is none to fix.
    _owner = None

    def __init__(self, kind: str = "RLock", _frame: Any = None) -> None:
        _init(self, _real_rlock(), kind, _frame or _getframe(1))
        self._depth = 0

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        try:
            held = _tls.held
        except AttributeError:
            held = _thread_start()
        if self._held_in is held:  # re-entry by the owner
            ok = self._real.acquire(blocking, timeout)
            if ok:
                self._depth += 1
            return ok
        if blocking is not True or timeout != -1:
            ok = _acquire_slow(self, blocking, timeout, _getframe(1))
            if ok:
                self._depth = 1
            return ok
        if held:
            _before(self, held, False)
        real = self._real
        if real.acquire(False):
            t = _now()
        else:
            t = _wait(self, real)
        f = _getframe(1)
        self._at_code = f.f_code
        self._at_lasti = f.f_lasti
        self._depth = 1
        self._t = t
        self._n += 1
        self._held_in = held
        held.append(self)
        return True

    def __enter__(self) -> bool:
        try:
            held = _tls.held
        except AttributeError:
            held = _thread_start()
        if self._held_in is held:
            self._real.acquire()
            self._depth += 1
            return True
        if held:
            _before(self, held, False)
        real = self._real
        if real.acquire(False):
            t = _now()
        else:
            t = _wait(self, real)
        f = _getframe(1)
        self._at_code = f.f_code
        self._at_lasti = f.f_lasti
        self._depth = 1
        self._t = t
        self._n += 1
        self._held_in = held
        held.append(self)
        return True

    def release(self) -> None:
        held = self._held_in
        if held is not getattr(_tls, "held", None):
            return self._real.release()  # not the owner: raises "cannot release un-acquired lock"
        if self._depth > 1:
            self._depth -= 1
            return self._real.release()
        self._end_hold(held, self._real.release)

    def __exit__(self, et: Any, ev: Any, tb: Any) -> None:
        # release(), written out again for the outermost exit: one Python call less per `with`.
        held = self._held_in
        try:
            mine = _tls.held
        except AttributeError:
            mine = None
        if held is not mine:
            return self._real.release()
        if self._depth > 1:
            self._depth -= 1
            return self._real.release()
        t = _now()
        if held[-1] is self:
            held.pop()
        else:
            _unhold(held, self)
        d = t - self._t
        self._hold_tot += d
        if d > self._hold_max:
            self._hold_max = d
        self._held_in = ()
        self._last = held
        self._depth = 0
        self._real.release()
        try:
            next(self._hh[_SMALL[d] if d < _NSMALL else _BASE[(b := d.bit_length())] + (d >> _SHIFT[b])])
        except KeyError:
            _count(self._hh, d)

    def _end_hold(self, held: list, release: Any) -> Any:
        t = _now()
        _unhold(held, self)
        d = t - self._t
        self._hold_tot += d
        if d > self._hold_max:
            self._hold_max = d
        self._held_in = ()
        self._last = held
        self._depth = 0
        result = release()
        try:
            next(self._hh[_SMALL[d] if d < _NSMALL else _BASE[(b := d.bit_length())] + (d >> _SHIFT[b])])
        except KeyError:
            _count(self._hh, d)
        return result

    # Condition.wait() calls these directly: the hold ends at _release_save and a new one starts
    # at _acquire_restore, with the re-entry depth carried across.
    def _release_save(self) -> Any:
        held = self._held_in
        if held is not getattr(_tls, "held", None):
            return self._real._release_save()  # raises "cannot release un-acquired lock"
        depth = self._depth
        return (self._end_hold(held, self._real._release_save), depth)

    def _acquire_restore(self, saved: Any) -> None:
        state, depth = saved
        held = _held_list()
        if held:
            _before(self, held, False)
        contended = bool(self._held_in)
        t0 = _now()
        watch = _rec.watch
        if watch is None or not contended:
            _unmutexed(self._real._acquire_restore, state)
        else:
            # Take it as a plain blocking acquire (interruptible by the watchdog), then restore
            # the saved recursion depth: the same end state as _acquire_restore.
            real = self._real
            _unmutexed(watch.blocking_acquire, self, real.acquire, None, t0, True)
            for _ in range(state[0] - 1 if isinstance(state, tuple) else 0):
                real.acquire()
        t = _now()
        if contended:
            d = t - t0
            self._ncont += 1
            self._wait_tot += d
            if d > self._wait_max:
                self._wait_max = d
            _count(self._site.wait_hist, d)  # a Condition's wait re-taking a contended RLock: not the hot path
        _took(self, held, t, first_outside(_getframe(1)) or _getframe(1))
        self._depth = depth

    def _is_owned(self) -> bool:
        return self._real._is_owned()

    def _recursion_count(self) -> int:
        return self._real._recursion_count()

    def _at_fork_reinit(self) -> None:
        self._real._at_fork_reinit()
        held, self._held_in = self._held_in, ()
        self._depth = 0
        if held:
            _unhold(held, self)

    def __repr__(self) -> str:
        state = "locked" if self._held_in else "unlocked"
        return (f"<{state} lockwatch.RLock object {self._describe()} wrapping {self._real!r}"
                f" at {id(self):#x}>")


# -- The cores ------------------------------------------------------------------------------------
#
# The classes above are the pure-Python core: the reference, and the fallback. The compiled core
# (lockwatch/_core.c, built by `pip install` where a C compiler exists) provides base types whose
# acquire(), __enter__, release() and __exit__ record exactly what the methods above record, in
# C for the common case and by calling the functions above for the rest; the classes below add
# the other methods, the very functions of the pure classes. This is the one place that decides
# which core runs: `Lock` and `RLock` name the chosen classes, which new_lock()/new_rlock(),
# patching, primitives and confirm use. LOCKWATCH_PURE_PYTHON=1 (any value but "" or "0")
# forces the pure-Python core.

PyLock = Lock
PyRLock = RLock
CORE = "python"  # which core runs: "c" or "python" (lockwatch --version, the report's meta)
CORE_DETAILS: dict[str, Any] = {}  # what the compiled core uses (configure()'s answer)


_CORE_API = 14  # the lockwatch._core this file works with (its API constant)


def _load_core() -> Any:
    if os.environ.get("LOCKWATCH_PURE_PYTHON", "") not in ("", "0"):
        return None
    try:
        core = importlib.import_module("lockwatch._core")
    except ImportError:
        return None
    if getattr(core, "API", None) != _CORE_API:  # built from another version (a stale in-place build)
        CORE_DETAILS["stale"] = f"lockwatch._core API {getattr(core, 'API', None)}, not {_CORE_API}: rebuild it"
        return None
    return core


def _compiled(base: Any, pure: type, names: tuple[str, ...], extra: dict[str, Any]) -> Any:
    """The instrumented class of the compiled core: ``base``'s hot methods, ``pure``'s others."""
    body: dict[str, Any] = {"__slots__": (), "__module__": __name__, "__qualname__": pure.__qualname__,
                            "__doc__": pure.__doc__, "_lw_alloc": base.__new__}
    for name in names:
        body[name] = pure.__dict__[name]
    body.update(extra)
    return type(pure.__name__, (base, _Tracked), body)


def _configure(core: Any) -> Any:
    """The compiled core set up with this module's functions; None where it declines (in a
    subinterpreter: its state is process-wide), saying why in CORE_DETAILS."""
    try:
        details = core.configure(
            tls=_tls, thread_start=_thread_start, before=_before, new_edges=_new_edges, wait=_wait,
            release_slow=_release_slow,
            py_lock_acquire=PyLock.acquire, py_rlock_acquire=PyRLock.acquire,
            py_rlock_release=PyRLock.release, pending=_pending, fold_instance=_rec.fold_instance,
            count=_count,
            edge_type=_rec.Edge,
            same_site_sources=_SAME_SITE_SOURCES, lock_sample=_allocate_lock(), rlock_sample=_real_rlock(),
            allocate_lock=_allocate_lock, real_rlock=_real_rlock, serials=_rec.serials, site_type=_rec.Site,
            count_sample=itertools.count(41))
    except ImportError as exc:
        CORE_DETAILS["unavailable"] = str(exc)
        return None
    CORE_DETAILS.update(details)
    return core


_core = _load_core()
if _core is not None:
    _core = _configure(_core)
if _core is not None:
    Lock = _compiled(  # type: ignore[misc]
        _core.Lock, PyLock, ("__new__", "__init__", "_at_fork_reinit", "__repr__"),
        {"acquire_lock": _core.Lock.acquire, "release_lock": _core.Lock.release, "locked_lock": _core.Lock.locked})
    RLock = _compiled(  # type: ignore[misc]
        _core.RLock, PyRLock, ("__init__", "_end_hold", "_release_save", "_acquire_restore", "_is_owned",
                               "_recursion_count", "_at_fork_reinit", "__repr__"),
        {"_owner": None})
    CORE = "c"

_alloc_lock = Lock._lw_alloc
_alloc_rlock = RLock._lw_alloc


def _new_lock_c(frame: Any, outside: bool = False) -> Any:
    """new_lock() of the compiled core: _init() with the instance's fields set in one C call, which
    also registers it (the compiled core's registry of live instances, not recorder.live). Its real
    lock is its own (None: see _core.c, "own handles")."""
    site = _site_for(frame if outside else first_outside(frame), "Lock")
    lock = _core_new(Lock, None, _next_serial(), site)
    next(site.made)
    return lock


def _new_rlock_c(frame: Any, outside: bool = False, kind: str = "RLock") -> Any:
    site = _site_for(frame if outside else first_outside(frame), kind)
    lock = _core_new(RLock, _real_rlock(), _next_serial(), site)
    next(site.made)
    return lock


_core_new: Any = _core.new if _core is not None else None
if _core is not None:
    _rec.reset_hooks.append(_core.clear_site_cache)  # its cache of sites by creating instruction
    _rec.compiled_live = _core.live_instances  # its registry of live instances
    _rec.gates_of = _core.gates  # a new edge's gates, its last answer kept
    # the key of a new edge's stacks (the Python loop cost ~2 us per future in as_completed)
    _core.set_chain_stops(_stacks._stop_cache, _stacks._is_stop, _stacks.CHAIN_DEPTH)
    _rec.chain_key = _core.chain_key
    if CORE_DETAILS.get("edges_in_c"):
        _rec.new_edge = _core.new_edge  # an Edge without its Python __init__
        _rec.store_edges = _core.store_edges  # new edges into their registries, under the mutex


def compiled_factories(lock_fallback: Any, rlock_fallback: Any, site_verdict: Any,
                       lock_cls: Any = None, rlock_cls: Any = None) -> tuple[Any, Any, Any, Any] | None:
    """The compiled core's factory wrappers (lockwatch/_core.c, "creation"): wrapt's wrapper of
    threading.Lock and of threading.RLock, and a __call__ for an RLock and a Lock factory class; each makes
    an instrumented lock (of Lock and RLock, or of the subclasses given) without Python code for
    an instruction seen before, and leaves the other calls to the fallbacks (patching's Python
    wrappers). None when the pure-Python core runs."""
    if _core is None:
        return None
    _core.set_fallbacks(lock_cls or Lock, rlock_cls or RLock, lock_fallback, rlock_fallback, site_verdict)
    return _core.lock_factory, _core.rlock_factory, _core.rlock_call, _core.lock_call
# What patching's factories (and benchmarks) call: an instrumented Lock / RLock made by ``frame``.
new_lock = _new_lock_c if _core is not None else _new_lock_py
new_rlock = _new_rlock_c if _core is not None else _new_rlock_py
