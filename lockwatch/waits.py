"""Waits other than for locks: who waits for a Thread, Event, Condition, Barrier, Queue or Future; who wakes it."""
from __future__ import annotations

# What this records, and why it is cheap (waits block; the paths that do not block stay short):
#
# - blocked[ident]: a thread in an *untimed* wait right now (join, Event.wait, Condition.wait,
#   Barrier.wait, Queue.get/put/join, Future.result/exception, futures.wait/as_completed): what it
#   waits for, since when. The watchdog (waitgraph.find) reads it with the lock waits to find
#   real deadlocks; a timed wait is never a deadlock and is not registered.
# - per resource, the threads that woke it (set an Event, notified a Condition, put to a Queue,
#   finished a Future), "recorded as they happen": those are who can end a wait on it.
# - wait edges for the lock-order graph: "held lock L while waiting for R" (at every wait call,
#   also one that did not block: an Event set already, a thread finished already) and "R's waker
#   held L while waking R" (set, notify, put, a Future's result) or "thread T took L before it
#   ended". A cycle through them is a potential deadlock on a run that never hung.
# - pool waits: a task of a ThreadPoolExecutor that waited on a Future of its own pool, with the
#   pool's size and how many of its workers did so at once (potential starvation).
#
# How: threading's and queue's classes stay what they are. Thread.join/__init__, Event.wait/set/
# __init__, Barrier.wait/__init__, Queue.__init__ and ThreadPoolExecutor.submit are wrapped at the
# class level (the attribute in the class's __dict__ replaced by a function calling the original,
# put back on uninstall; see _method for why not wrapt's FunctionWrapper): instances, subclasses
# (which call the base methods through super()), isinstance(), pickling and copying are untouched,
# since no class is replaced and no instance gets an attribute (resources are kept here, by id()
# with a weak reference). Replacing the classes instead would break isinstance() against the
# originals, pickles naming them, and subclasses made before lockwatch was on.
# Condition.wait/notify are lockwatch's own Condition's (primitives.py), and the Condition waits of
# queue.Queue and concurrent.futures.Future go through them: what a Condition is for (a Queue's, a
# Future's) is told once from the calling frame's code, and kept on the Condition (two attributes
# of lockwatch's own Condition: _lockwatch_owner, _lockwatch_wakers).
# A Future made by ThreadPoolExecutor.submit is the one exception: it gets one attribute
# (_lockwatch_submit: its pool, its function and where it was submitted), set in submit.
import dataclasses
import functools
import os
import sys
import threading
import weakref
from typing import Any, Callable, Optional

from . import recorder as _rec
from . import stacks

_getframe = sys._getframe
_tls = _rec.tls
_now = _rec.now
get_ident = _rec.get_ident

MAX_WAKERS = 64  # recorded wakers per resource; more: anyone may wake it (treated as unknown)
MAX_WAIT_EDGES = 10_000
MAX_POOL_WAITS = 1_000

active = False  # recording (set by install, cleared by uninstall)


class Resource:
    """Something threads wait for that is not a lock, and who woke it so far."""

    __slots__ = ("kind", "serial", "filename", "_line", "_code", "_lasti", "function", "name", "wakers", "ref",
                 "thread_name", "held_list", "__weakref__")

    def __init__(self, kind: str, obj: Any, frame: Any, name: Optional[str] = None) -> None:
        self.kind = kind
        self.serial = _rec.next_serial()
        self._line: Optional[int]
        if frame is not None:
            code = frame.f_code
            self.filename, self.function = code.co_filename, code.co_name
            # The line is found when first asked for (reports): frame.f_lineno scans the code's
            # line table, ~15,000 instructions per Thread made in a long function.
            self._code, self._lasti, self._line = code, frame.f_lasti, None
        else:
            self.filename, self.function = "<unknown>", "<module>"
            self._code, self._lasti, self._line = None, -1, 0
        self.name = name
        # op ("set", "notify", "put", "get", "task-done", "result", "arrive") -> threads that did
        # it; None: too many to tell (anyone may wake it)
        self.wakers: Optional[dict[str, set[int]]] = {}
        self.thread_name: Optional[str] = None  # a Thread's own name (kind "Thread")
        self.held_list: Optional[list] = None  # a Thread's held list, once it has taken a lock
        try:
            self.ref: Any = weakref.ref(obj, _dropper(id(obj)))
        except TypeError:
            self.ref = None

    @property
    def line(self) -> int:
        line = self._line
        if line is None:
            line = self._line = stacks.line_of(self._code, self._lasti)
            self._code = None
        return line

    @line.setter
    def line(self, value: int) -> None:
        self._line, self._code = value, None

    @property
    def key(self) -> str:
        return f"{self.filename}:{self.line}:{self.kind}"

    @property
    def site(self) -> str:
        return f"{self.filename}:{self.line}"

    def display_name(self) -> str:
        if self.kind == "Thread" and self.thread_name:
            return f"thread {self.thread_name!r}"
        if self.name:
            return self.name
        derived = stacks.derived_name(self.filename, self.line) if self.line else None
        return derived or f"{self.kind}@{stacks.short_path(self.filename)}:{self.line}"


resources: dict[int, Resource] = {}  # id(obj) -> its Resource, while obj lives


def _dropper(key: int) -> Callable[[Any], None]:
    def drop(_ref: Any) -> None:
        try:
            res = resources.get(key)
            if res is not None and res.ref is _ref:
                del resources[key]
        except Exception:  # interpreter shutdown
            pass
    return drop


def resource(obj: Any, kind: str, frame: Any = None, name: Optional[str] = None) -> Resource:
    """The Resource of ``obj`` (made now if it has none: then ``frame`` is where it is first seen)."""
    res = resources.get(id(obj))
    if res is not None and res.ref is not None and res.ref() is obj:
        return res
    res = Resource(kind, obj, stacks.first_outside(frame) if frame is not None else None, name)
    resources[id(obj)] = res
    return res


def _condition(cond: Any, frame: Any) -> Resource:
    """A Condition's Resource: created where the Condition was, when it made its own lock (the
    lock's site then is the Condition's), else where it is first waited for or notified."""
    res = known(cond)
    if res is not None:
        return res
    site = getattr(getattr(cond, "_lock", None), "_site", None)
    res = resource(cond, "Condition", None if site is not None and site.kind == "Condition" else frame)
    if site is not None and site.kind == "Condition":
        res.filename, res.line, res.function = site.filename, site.line, site.function
    return res


def known(obj: Any) -> Optional[Resource]:
    res = resources.get(id(obj))
    if res is not None and res.ref is not None and res.ref() is obj:
        return res
    return None


# -- waiting ---------------------------------------------------------------------------------

class Blocked:
    """A thread in an untimed wait: ``kind`` of what it waits for ("Thread", "Event", "Condition",
    "Barrier", "Queue", "Future", "Futures"), ``op`` (join, wait, get, put, task-join, result,
    exception, wait-any, wait-all), the object(s), since when."""

    __slots__ = ("kind", "op", "obj", "t0", "held")

    def __init__(self, kind: str, op: str, obj: Any, t0: int, held: Optional[list]) -> None:
        self.kind, self.op, self.obj, self.t0, self.held = kind, op, obj, t0, held


blocked: dict[int, Blocked] = {}


def _begin(kind: str, op: str, obj: Any, timed: bool) -> Optional[int]:
    """Register this thread as blocked (untimed waits only). The caller starts the watchdog's
    thread (_launch) if its wait outlasts a first slice; most waits are short."""
    if timed:
        return None
    ident = get_ident()
    blocked[ident] = Blocked(kind, op, obj, _now(), _tls.__dict__.get("held"))
    return ident


def _launch() -> None:
    watch = _rec.watch
    if watch is not None:
        try:
            watch._launch()
        except Exception:
            pass


def _slice() -> Optional[float]:
    """How long an untimed wait waits before it starts the watchdog's thread (None: no watchdog)."""
    watch = _rec.watch
    return watch.interval if watch is not None else None


def _end(ident: Optional[int]) -> None:
    if ident is not None:
        blocked.pop(ident, None)
        if not blocked:
            watch = _rec.watch
            if watch is not None and watch._ident is not None and not _rec.waiting:
                try:
                    watch.retire()  # the last wait ended: the watchdog's thread ends now
                except Exception:
                    pass


_pending = _rec.pending  # hand-offs to their holders' threads, by id() of the held list (one dict, never rebound)
_reconcile = _rec._reconcile


def _held_now(exclude: Any = None) -> list:
    """The instrumented locks this thread holds (a copy), without ``exclude`` (a Condition's
    own lock, released while it waits).

    Read without lockwatch's mutex: a wait or a set runs while the program holds its own locks,
    and must never block on lockwatch's bookkeeping (another thread may hold the mutex for a
    long time: a snapshot, a finalizer, program code in a hook). The list is this thread's own,
    which only this thread changes; releases other threads handed to it and not yet applied are
    subtracted from the copy as recorder.holding() does (each lock's own record says who holds
    it; the pending list is copied in one C call, as its appends are). They stay pending: the
    owner applies them at its next nested acquisition (proxies._before)."""
    held = _tls.__dict__.get("held")
    if not held or (len(held) == 1 and held[0] is exclude):
        return []
    out = list(held)
    if _pending:
        handed = _pending.get(id(held))
        if handed:
            for lock in list(handed):
                _reconcile(out, lock, held)
    return [h for h in out if h is not exclude and not getattr(h._site, "signal", False)]


# -- wait edges (potential deadlocks through waits) --------------------------------------------

class WaitEdge:
    """An edge of the lock-order graph with a wait at one end: ``lock -> res`` (held the lock while
    waiting for the resource: ``op`` is the wait) or ``res -> lock`` (woke the resource, ``op`` is
    the waking: set, notify, put, result, end, while holding the lock, or took it before ending)."""

    __slots__ = ("src", "dst", "src_kind", "op", "thread", "thread_id", "held_stack", "acquire_stack",
                 "count", "timed", "multi", "context", "lock_site", "lock_serial", "lock_name", "res",
                 "held_ref")

    def __init__(self, to_resource: bool, lock: Any, res: Resource, op: str, timed: bool,
                 held_stack: list[str], acquire_stack: list[str]) -> None:
        self.src_kind = "lock" if to_resource else "resource"
        self.op = op
        self.res = res
        self.lock_site = lock._site
        self.lock_serial = lock._serial
        self.lock_name = _rec.lock_name(lock)
        self.thread = _rec.thread_name()
        self.thread_id = _rec.thread_id()
        self.held_stack, self.acquire_stack = held_stack, acquire_stack
        self.count = 1
        self.timed = timed
        self.multi = False
        self.context = _rec.context
        self.held_ref = _tls.__dict__.get("held")  # the thread's held list: which Thread took it


wait_edges: dict[tuple[str, int, int], WaitEdge] = {}  # (direction, lock serial, res serial)


def _record(to_resource: bool, locks: list, res: Resource, op: str, timed: bool, frame: Any) -> None:
    if not _rec.recording:
        return
    direction = "w" if to_resource else "k"
    me = _rec.thread_id()
    for lock in locks:
        key = (direction, lock._serial, res.serial)
        e = wait_edges.get(key)
        if e is not None:
            e.count += 1
            if e.thread_id != me:
                e.multi = True
            if e.timed and not timed:
                e.timed = False
            continue
        if len(wait_edges) >= MAX_WAIT_EDGES:
            return
        if lock._site.epoch != _rec.state.epoch:
            continue  # made in an earlier session: not this session's graph
        where = stacks.first_outside(frame)
        held_stack = stacks.capture_taken_at(lock._at_code, lock._at_lasti, where)
        wait_edges.setdefault(key, WaitEdge(to_resource, lock, res, op, timed, held_stack, stacks.capture(where)))


def _safely(fn: Callable[..., None], *args: Any) -> None:
    """Bookkeeping that must never raise into the program."""
    if getattr(_tls, "busy", False):
        return
    _tls.busy = True
    try:
        fn(*args)
    except Exception as exc:
        _rec.state.internal_errors.append(f"waits: {type(exc).__name__}: {exc}")
    finally:
        _tls.busy = False


def _waited(res: Resource, op: str, timed: bool, frame: Any, exclude: Any = None) -> None:
    locks = _held_now(exclude)
    if locks:
        _record(True, locks, res, op, timed, frame)


def _woke(res: Resource, op: str, frame: Any, exclude: Any = None) -> None:
    wakers = res.wakers
    if wakers is not None:
        ident = get_ident()
        mine = wakers.get(op)
        if mine is None:
            mine = wakers.setdefault(op, set())
        if ident not in mine:
            if len(mine) >= MAX_WAKERS:
                res.wakers = None
            else:
                mine.add(ident)
    if _holds_other(exclude):
        _safely(_record_held, False, res, op, False, frame, exclude)


def _record_held(to_resource: bool, res: Resource, op: str, timed: bool, frame: Any, exclude: Any) -> None:
    locks = _held_now(exclude)
    if locks:
        _record(to_resource, locks, res, op, timed, frame)


# -- pools ---------------------------------------------------------------------------------------

class PoolWait:
    """A task of a thread pool waited on a Future of its own pool."""

    __slots__ = ("pool_site", "pool_function", "max_workers", "depth", "count", "thread", "stack",
                 "submit_stack", "timed", "context")

    def __init__(self, pool_site: tuple[str, int, str], max_workers: int, depth: int, thread: str,
                 stack: list[str], submit_stack: list[str], timed: bool) -> None:
        self.pool_site = pool_site
        self.max_workers = max_workers
        self.depth = depth
        self.count = 1
        self.thread = thread
        self.stack = stack
        self.submit_stack = submit_stack
        self.timed = timed
        self.context = _rec.context


pool_waits: dict[tuple[str, int, str], PoolWait] = {}  # by the pool's creation site
_pool_depth: dict[int, int] = {}  # id(pool) -> workers waiting on its own futures now
_pool_sites: dict[int, tuple[Any, tuple[str, int, str]]] = {}  # id(pool) -> (weakref, site)


def _pool_of_worker() -> Any:
    """The ThreadPoolExecutor whose worker this thread is, or None (its _worker frame says;
    found once per thread)."""
    ref: Any = getattr(_tls, "lockwatch_pool", False)
    if ref is not False:
        return ref() if ref is not None else None
    pool = _find_pool()
    _tls.lockwatch_pool = weakref.ref(pool) if pool is not None else None
    return pool


def _find_pool() -> Any:
    f: Any = _getframe(3)
    worker = _worker_code()
    while f is not None:
        if f.f_code is worker:
            ref = f.f_locals.get("executor_reference")
            return ref() if ref is not None else None
        f = f.f_back
    return None


_worker_code_cache: list = []


def _worker_code() -> Any:
    if not _worker_code_cache:
        mod = sys.modules.get("concurrent.futures.thread")
        code = getattr(getattr(mod, "_worker", None), "__code__", None)
        if code is None:
            return None  # not imported yet (see _AfterImport): no thread is a pool's worker
        _worker_code_cache.append(code)
    return _worker_code_cache[0]


def _future_wait(fut: Any, timed: bool, frame: Any) -> Optional[Any]:
    """A Future's result() or exception() is about to wait: a task of the Future's own pool?
    Returns the pool if so (its depth is counted until _future_done)."""
    tag = getattr(fut, "_lockwatch_submit", None)
    if tag is None:
        return None
    pool = tag[0]()
    if pool is None or _pool_of_worker() is not pool:
        return None
    key = id(pool)
    depth = _pool_depth.get(key, 0) + 1
    _pool_depth[key] = depth
    site = _pool_sites.get(key)
    psite = site[1] if site is not None and site[0]() is pool else ("<unknown>", 0, "<module>")
    have = pool_waits.get(psite)
    size = getattr(pool, "_max_workers", 0)
    if have is not None:
        have.count += 1
        have.depth = max(have.depth, depth)
        have.max_workers = max(have.max_workers, size)
        have.timed = have.timed and timed
    elif len(pool_waits) < MAX_POOL_WAITS and _rec.recording:
        where = stacks.first_outside(frame)
        pool_waits[psite] = PoolWait(psite, size, depth, _rec.thread_name(), stacks.capture(where),
                                     submitted_at(tag), timed)
    return pool


def _future_done(pool: Any) -> None:
    key = id(pool)
    depth = _pool_depth.get(key, 1) - 1
    if depth > 0:
        _pool_depth[key] = depth
    else:
        _pool_depth.pop(key, None)


# -- the hooks -------------------------------------------------------------------------------------

def _codes() -> dict[Any, tuple[str, str]]:
    """Code objects of the standard library's waiting and waking methods: what a Condition's wait
    or notify is for, told from its caller's code (a subclass calling super() has the same)."""
    out: dict[Any, tuple[str, str]] = {}
    queue = sys.modules.get("queue")  # else added when imported (_AfterImport)
    for name, op in (("get", "get"), ("put", "put"), ("join", "task-join"), ("task_done", "task-done")):
        fn = getattr(getattr(queue, "Queue", None), name, None)
        if fn is not None:
            out[fn.__code__] = ("Queue", op)
    _base = sys.modules.get("concurrent.futures._base")  # else added when imported (_AfterImport)
    if _base is None:
        return out
    for name, op in (("result", "result"), ("exception", "exception"), ("set_result", "result"),
                     ("set_exception", "result"), ("cancel", "result"),
                     ("set_running_or_notify_cancel", "result")):
        fn = getattr(getattr(_base, "Future", None), name, None)  # (None while _base is half-imported)
        if fn is not None:
            out[fn.__code__] = ("Future", op)
    for fn, op in ((getattr(_base, "wait", None), "wait"), (getattr(_base, "as_completed", None), "as-completed")):
        if fn is not None:
            out[fn.__code__] = ("Futures", op)
    return out


# By id() of the code object (the functions are the standard library's: they live as long as the
# process), the code kept to compare: a code object's own hash is computed from its name,
# constants and names at every lookup (about a microsecond: once per notify, set and wait).
_by_code: dict[int, tuple[Any, str, str]] = {}


def _what(code: Any) -> Optional[tuple[str, str]]:
    """(kind, op) of a standard-library waiting or waking function's code, else None."""
    hit = _by_code.get(id(code))
    return (hit[1], hit[2]) if hit is not None and hit[0] is code else None


FUTURE = "Future"  # a Condition's owner mark: the Condition of a concurrent.futures.Future


def _owner_of(cond: Any, frame: Any) -> Any:
    """What a Condition belongs to, found once per Condition (from the code calling its wait or
    notify) and kept on it: the Queue's Resource, FUTURE, or the Condition's own Resource. Kept
    on lockwatch's Condition itself (a plain attribute): a dict by id() would need a finalizer
    per Condition, and a Future makes one Condition each (weakref.finalize cost ~4 us a Future)."""
    owner = cond.__dict__.get("_lockwatch_owner")
    if owner is not None:
        return owner
    what = _what(frame.f_code) if frame is not None else None
    if what is not None and what[0] == "Queue":
        obj = frame.f_locals.get("self")
        owner = resource(obj, "Queue", frame) if obj is not None else _condition(cond, frame)
    elif what is not None and what[0] == "Future":
        owner = FUTURE
    else:
        owner = _condition(cond, frame)
    cond._lockwatch_owner = owner
    return owner


def condition_wait(cond: Any, wait: Callable[..., bool], unmutexed: Callable[..., Any], timeout: Any) -> bool:
    """lockwatch's Condition.wait (primitives.Condition): ``unmutexed(wait, timeout, launch)``,
    recorded."""
    if not active:
        return unmutexed(wait, timeout, False)
    ident = None
    pool = None
    try:
        frame = _getframe(2)
        owner = _owner_of(cond, frame)
        timed = timeout is not None
        if owner is FUTURE:
            obj = frame.f_locals.get("self")  # Future.result/exception: it blocks anyway
            what = _what(frame.f_code)
            kind, op = "Future", what[1] if what is not None else "result"
            pool = _future_wait(obj, timed, frame)
            if _holds_other(cond._lock):
                _safely(_waited, resource(obj, "Future", frame), op, timed, frame, cond._lock)
        else:
            kind = owner.kind
            if kind == "Queue":
                obj = owner.ref() if owner.ref is not None else None
                what = _what(frame.f_code)
                op = what[1] if what is not None and what[0] == "Queue" else "get"
            else:
                obj, op = cond, "wait"
            if _holds_other(cond._lock):
                _safely(_waited, owner, op, timed, frame, cond._lock)
        if obj is not None:
            ident = _begin(kind, op, obj, timed)
    except Exception as exc:
        _rec.state.internal_errors.append(f"waits: {type(exc).__name__}: {exc}")
    try:
        # Registered as blocked: an untimed wait's first slice ends, if it outlasts it, by
        # starting the watchdog's thread (primitives.Condition._wait).
        return unmutexed(wait, timeout, ident is not None)
    finally:
        _end(ident)
        if pool is not None:
            _future_done(pool)


def _holds_other(exclude: Any) -> bool:
    """Whether this thread holds an instrumented lock other than ``exclude`` (cheap)."""
    held: Any = _tls.__dict__.get("held")
    return bool(held) and not (len(held) == 1 and held[0] is exclude)


def condition_notified(cond: Any) -> None:
    """lockwatch's Condition.notify (and notify_all, which calls it) by a thread holding another
    lock than the Condition's: the wake edges "held L while waking". (The common case, no other
    lock held, is written out in primitives.Condition.notify: it only keeps a Queue's notifiers.
    A plain Condition's or a Future's waiters count any other thread as a possible waker.)"""
    try:
        frame: Any = _getframe(2)
        while frame is not None and stacks.is_threading(frame.f_code.co_filename):
            frame = frame.f_back  # notify_all() calls notify()
        owner = _owner_of(cond, frame)
        if owner is FUTURE:
            obj = frame.f_locals.get("self")
            if obj is not None:
                # not through _safely: _woke records through it, and a nested _safely does nothing
                _woke(resource(obj, "Future", frame), "result", frame, cond._lock)
            return
        op = "notify"
        if owner.kind == "Queue":
            what = _what(frame.f_code)
            op = what[1] if what is not None else "put"
        _woke(owner, op, frame, cond._lock)
    except Exception as exc:
        _rec.state.internal_errors.append(f"waits: {type(exc).__name__}: {exc}")


def _mark_queue(queue: Any, res: Resource) -> None:
    """A Queue made while recording: its three Conditions keep the sets of their notifiers (put
    wakes not_empty's waiters, get not_full's, task_done all_tasks_done's)."""
    if res.wakers is not None:
        for attr, op in (("not_empty", "put"), ("not_full", "get"), ("all_tasks_done", "task-done")):
            cond = getattr(queue, attr, None)
            if cond is not None and hasattr(cond, "__dict__"):
                cond._lockwatch_wakers = res.wakers.setdefault(op, set())
                cond._lockwatch_owner = res


def _name_thread(thread: Any, res: Resource) -> None:
    res.thread_name = thread.name


def _failed(exc: Exception) -> None:
    _rec.state.internal_errors.append(f"waits: {type(exc).__name__}: {exc}")


_THREADING_FILE = threading.__file__  # threading.py's own calls (a Thread's start-up Event) are not the program's

# -- the wrappers ----------------------------------------------------------------------------------
# One factory per shape of method, each making the plain function that stands in for a method in
# its class (install, _TARGETS): made (__init__), a wait, a wake, join, Thread._bootstrap_inner,
# ThreadPoolExecutor.submit. The recording is written out in each function (no hook call in
# between: these run once per put, per set, per task), and what differs between the methods of
# one shape is the factory's arguments.


def _initializer(original: Callable[..., Any], kind: str,
                 mark: Optional[Callable[[Any, Resource], None]] = None) -> Callable[..., Any]:
    """__init__ of a Thread, Event, Barrier, Queue or ThreadPoolExecutor: its Resource, made
    where the program made the object; ``mark(obj, res)`` then (a Thread's name, a Queue's
    Conditions)."""
    def __init__(self: Any, /, *args: Any, **kwargs: Any) -> Any:
        result = original(self, *args, **kwargs)
        if active:
            try:
                frame = _getframe(1)
                if frame.f_code.co_filename != _THREADING_FILE:
                    res = resource(self, kind, frame)
                    if mark is not None:
                        mark(self, res)
            except Exception as exc:
                _failed(exc)
        return result
    return __init__


def _waiter(original: Callable[..., Any], kind: str, default_timeout: Optional[str] = None,
            done: Optional[str] = None, arrive: bool = False, futures: bool = False) -> Callable[..., Any]:
    """A wait method whose first argument is its timeout (Event.wait, Barrier.wait): the wait
    edges from the locks held, and, untimed, the thread registered as blocked unless ``done``
    (the name of a method: the wait returns at once). ``default_timeout``: the attribute holding
    the object's own timeout (a Barrier's). ``arrive``: calling it wakes the others too (a
    Barrier's parties: a waker, not a wake edge). ``futures``: concurrent.futures.wait and
    as_completed wait on an Event for many Futures (registered as waiting for those)."""
    def wait(self: Any, /, *args: Any, **kwargs: Any) -> Any:
        if not active:
            return original(self, *args, **kwargs)
        ident = None
        try:
            frame = _getframe(1)
            code = frame.f_code
            if code.co_filename != _THREADING_FILE:
                timeout = args[0] if args else kwargs.get("timeout")
                if timeout is None and default_timeout is not None:
                    timeout = getattr(self, default_timeout, None)
                timed = timeout is not None
                what = _what(code) if futures else None
                if what is not None and what[0] == "Futures":
                    ident = _futures_wait(what[1], frame, timed)
                else:
                    res = resource(self, kind, frame)
                    if _tls.__dict__.get("held"):
                        _safely(_waited, res, "wait", timed, frame)
                    if arrive:
                        # Arriving is what wakes the others: an arrival is a waker of the barrier
                        # (for real deadlocks). Not a wait edge: a party holding its own lock at
                        # the barrier is what barriers are for, and every arrival both waits and
                        # wakes, so "arrived holding L" closed a cycle with its own "waited
                        # holding L" on every such use.
                        wakers = res.wakers
                        if wakers is not None:
                            mine = wakers.setdefault("arrive", set())
                            if len(mine) < MAX_WAKERS:
                                mine.add(get_ident())
                    if not timed and (done is None or not getattr(self, done)()):
                        ident = _begin(kind, "wait", self, False)
        except Exception as exc:
            _failed(exc)
        if ident is None:
            return original(self, *args, **kwargs)
        try:
            if not arrive:
                # An Event's wait is level-triggered (it returns once the flag is set, whoever
                # set it when): a first slice that times out changes nothing. Most waits end
                # within it; a longer one starts the watchdog's thread.
                piece = _slice()
                if piece is not None and original(self, piece):
                    return True
            _launch()  # a Barrier's wait cannot be taken in slices (each call is an arrival)
            return original(self, *args, **kwargs)
        finally:
            _end(ident)
    return wait


def _futures_wait(op: str, frame: Any, timed: bool) -> Optional[int]:
    """concurrent.futures.wait / as_completed, about to wait on their one Event for many Futures."""
    loc = frame.f_locals
    if op == "wait":
        fs = list(loc.get("not_done") or loc.get("fs") or ())
        mode = "wait-all" if loc.get("return_when") == "ALL_COMPLETED" else "wait-any"
    else:
        fs, mode = list(loc.get("pending") or ()), "as-completed"
    return _begin("Futures", mode, fs, timed)


def _waker(original: Callable[..., Any], kind: str, op: str) -> Callable[..., Any]:
    """A waking method (Event.set): the thread is a waker of the object; holding a lock, the
    wake edges from it."""
    def wake(self: Any, /, *args: Any, **kwargs: Any) -> Any:
        if active:
            try:
                frame = _getframe(1)
                code = frame.f_code
                if code.co_filename != _THREADING_FILE:
                    what = _what(code)
                    if what is None or what[0] != "Futures":
                        _woke(resource(self, kind, frame), op, frame)
            except Exception as exc:
                _failed(exc)
        return original(self, *args, **kwargs)
    return wake


def _joiner(original: Callable[..., Any]) -> Callable[..., Any]:
    """Thread.join: the wait edges from the locks held (also when the thread has ended), and an
    untimed join of a live thread in slices (_sliced_join)."""
    def join(self: Any, /, *args: Any, **kwargs: Any) -> Any:
        if not active:
            return original(self, *args, **kwargs)
        ident = None
        try:
            frame = _getframe(1)
            if frame.f_code.co_filename != _THREADING_FILE and self is not threading.current_thread():
                timed = (args[0] if args else kwargs.get("timeout")) is not None
                res = resource(self, "Thread", frame)
                res.thread_name = self.name
                if _tls.__dict__.get("held"):
                    _safely(_waited, res, "join", timed, frame)
                    if res.held_list is not None:
                        _safely(_released_by, res)
                if not timed and self.is_alive():
                    ident = _begin("Thread", "join", self, False)
        except Exception as exc:
            _failed(exc)
        if ident is None:
            return original(self, *args, **kwargs)
        try:
            return _sliced_join(original, self, ident)
        finally:
            _end(ident)
    return join


def _sliced_join(wrapped: Any, thread: Any, ident: int) -> None:
    """An untimed join, in slices so that the watchdog can break a deadlock by raising here
    (policy "raise"): joining is level-triggered (the thread has ended), so a join in slices
    returns when the one join would, and a slice that times out changes nothing."""
    watch = _rec.watch
    if watch is None:
        return wrapped(thread)
    # Most joins are short: the watchdog's thread starts only for one that outlasts a slice.
    wrapped(thread, watch.interval)
    if not thread.is_alive():
        return None
    _launch()
    while True:
        exc = _rec.victims.pop(ident, None)
        if exc is not None:
            raise exc
        wrapped(thread, watch.interval)
        if not thread.is_alive():
            return None


def _starter(original: Callable[..., Any]) -> Callable[..., Any]:
    """Thread._bootstrap_inner: the thread's held list, so that the locks it takes in order
    (its lock-order edges) tell which locks it took before it ended."""
    def _bootstrap_inner(self: Any) -> Any:
        if active:
            try:
                res = known(self)
                if res is not None:
                    held = _tls.__dict__.get("held")
                    # the new thread's held list, made now as at its first lock (not through
                    # proxies._held_list, whose AttributeError costs more than the rest here)
                    res.held_list = held if held is not None else _rec.thread_start()
            except Exception:
                pass
        return original(self)
    return _bootstrap_inner


def _submitter(original: Callable[..., Any]) -> Callable[..., Any]:
    """ThreadPoolExecutor.submit, once per task: tags the Future with (its pool, its function,
    where it was submitted: code and offset, formatted only if ever reported)."""
    def submit(self: Any, /, *args: Any, **kwargs: Any) -> Any:
        fut = original(self, *args, **kwargs)
        if active:
            try:
                have = _pool_sites.get(id(self))
                if have is None or have[0]() is not self:
                    have = _pool_site(self)
                f = _getframe(1)
                fut._lockwatch_submit = (have[0], args[0] if args else kwargs.get("fn"), f.f_code, f.f_lasti)
            except Exception as exc:
                _failed(exc)
        return fut
    return submit


def _pool_site(pool: Any) -> tuple[Any, tuple[str, int, str]]:
    made = resource(pool, "Pool", None)  # made by its __init__ (_initializer), with its site
    have = _pool_sites[id(pool)] = (weakref.ref(pool), (made.filename, made.line, made.function))
    return have


def submitted_at(tag: Any) -> list[str]:
    code = tag[2]
    if code is None:
        return []
    return [stacks.format_frame(code.co_filename, stacks.line_of(code, tag[3]), code.co_name)]


def task_name(tag: Any) -> str:
    fn = tag[1]
    return str(getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None) or "task")


# -- install ---------------------------------------------------------------------------------------

_wrapped: list[tuple[Any, str, Any]] = []  # (class, attribute, original) to restore


def _targets() -> list[tuple[Any, str, Callable[..., Callable[..., Any]], dict[str, Any]]]:
    """(class, method, factory, the factory's arguments) of every method replaced."""
    out: list[tuple[Any, str, Callable[..., Callable[..., Any]], dict[str, Any]]] = [
        (threading.Thread, "__init__", _initializer, {"kind": "Thread", "mark": _name_thread}),
        (threading.Thread, "join", _joiner, {}),
        (threading.Thread, "_bootstrap_inner", _starter, {}),
        (threading.Event, "__init__", _initializer, {"kind": "Event"}),
        (threading.Event, "wait", _waiter, {"kind": "Event", "done": "is_set", "futures": True}),
        (threading.Event, "set", _waker, {"kind": "Event", "op": "set"}),
        (threading.Barrier, "__init__", _initializer, {"kind": "Barrier"}),
        (threading.Barrier, "wait", _waiter, {"kind": "Barrier", "default_timeout": "_timeout", "arrive": True}),
    ]
    # Either module may be half-imported here: concurrent.futures.thread imports queue, and
    # _imported("queue") runs inside that import. A class not made yet is wrapped when its
    # module's import completes (_imported).
    queue_cls = getattr(sys.modules.get("queue"), "Queue", None)
    if queue_cls is not None:
        out.append((queue_cls, "__init__", _initializer, {"kind": "Queue", "mark": _mark_queue}))
    pool_cls = getattr(sys.modules.get("concurrent.futures.thread"), "ThreadPoolExecutor", None)
    if pool_cls is not None:
        out.append((pool_cls, "__init__", _initializer, {"kind": "Pool"}))
        out.append((pool_cls, "submit", _submitter, {}))
    return out


def _method(original: Callable[..., Any], factory: Callable[..., Callable[..., Any]],
            options: dict[str, Any]) -> Callable[..., Any]:
    """The function standing in for ``original`` in its class. A plain function, not a
    wrapt.FunctionWrapper: bound on every attribute access, wrapt's wrapper cost about 4 times a
    plain function's call on a method (ThreadPoolExecutor.submit is called once per task; see
    benchmarks/waits.py); and the recording is written out in it, not a hook it calls."""
    method = factory(original, **options)
    functools.update_wrapper(method, original)
    method._lockwatch_wrapper = True  # type: ignore[attr-defined]
    return method


def install() -> None:
    """Wrap the waiting and waking methods at the class level (idempotent)."""
    global active
    reset()
    if _wrapped:
        active = True
        return
    _by_code.update({id(code): (code, *what) for code, what in _codes().items()})
    _wrap(_targets())
    active = True
    _AfterImport.watch()


def _wrap(targets: list[tuple[Any, str, Callable[..., Callable[..., Any]], dict[str, Any]]]) -> None:
    for cls, name, factory, options in targets:
        original = cls.__dict__.get(name)
        if original is None or getattr(original, "_lockwatch_wrapper", False):
            continue
        setattr(cls, name, _method(original, factory, options))
        _wrapped.append((cls, name, original))


def _imported(name: str) -> None:
    """queue, concurrent.futures._base or .thread has just been imported, after install(): what
    install() does with them when they are there already."""
    if name in ("queue", "concurrent.futures._base"):  # the codes of their waiting methods
        _by_code.update({id(code): (code, *what) for code, what in _codes().items()})
    if name in ("queue", "concurrent.futures.thread") and _wrapped:  # installed (uninstall() empties it)
        _wrap([t for t in _targets() if t[0].__module__ == name])  # Queue's, ThreadPoolExecutor's


class _AfterImport:
    """Calls _imported() when the program imports queue, concurrent.futures._base or .thread:
    install() does not import them (concurrent.futures, with logging, 24 M instructions of a
    watched process's start-up on 3.11, queue 2.4 M; most programs never use a thread pool). A
    finder first on sys.meta_path that finds nothing itself: for those names it asks the finders
    after it and runs the module's own loader, then _imported(). The loader stays the module's
    (`__loader__`, `__spec__`); only its exec_module is wrapped, for that one call. It leaves
    sys.meta_path once all were seen."""

    NAMES = ("queue", "concurrent.futures._base", "concurrent.futures.thread")
    _finder: Optional[_AfterImport] = None

    @classmethod
    def watch(cls) -> None:
        if cls._finder is None and any(name not in sys.modules for name in cls.NAMES):
            cls._finder = cls()
            sys.meta_path.insert(0, cls._finder)

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> Any:
        if name not in self.NAMES:
            return None
        for finder in sys.meta_path:
            find = getattr(finder, "find_spec", None) if finder is not self else None
            spec = find(name, path, target) if find is not None else None
            if spec is not None:
                break
        else:
            return None
        loader = spec.loader
        exec_module = getattr(loader, "exec_module", None)
        if exec_module is None or not hasattr(loader, "__dict__") or "exec_module" in vars(loader):
            return spec  # nothing this can wrap for one call without changing the loader

        def exec_then_record(module: Any) -> None:
            try:
                exec_module(module)
            finally:
                del loader.exec_module
            try:
                _imported(name)
            except Exception as exc:  # never in the program's import
                _failed(exc)
            if all(n in sys.modules for n in self.NAMES):
                self.stop()

        loader.exec_module = exec_then_record
        return spec

    def stop(self) -> None:
        try:
            sys.meta_path.remove(self)
        except ValueError:
            pass
        if _AfterImport._finder is self:
            _AfterImport._finder = None


def uninstall() -> None:
    global active
    active = False
    while _wrapped:
        cls, name, original = _wrapped.pop()
        setattr(cls, name, original)


def reset() -> None:
    """Forget what was recorded (a new session; a forked child, whose other threads are gone)."""
    wait_edges.clear()
    _channel_serials.clear()
    pool_waits.clear()
    _pool_depth.clear()
    blocked.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=reset)


# -- into the snapshot -----------------------------------------------------------------------------

def add_to_snapshot(snap: Any) -> None:
    """Add the wait edges (and the resources at their ends) and the pool waits to ``snap``, a
    model.Snapshot just taken from the recorder (snapshot.take)."""
    from .model import EdgeRecord, LockStats, PoolWaitRecord
    from .snapshot import is_stdlib, site_key

    edges = list(wait_edges.values()) + _thread_ends()
    if not edges and not pool_waits:
        return
    stats = {s.key: s for s in snap.locks}
    seen_res: dict[str, set[int]] = {}

    def res_key(res: Resource) -> str:
        key = res.key
        if key not in stats:
            stats[key] = LockStats(key=key, name=res.display_name() if res.kind != "Thread" else _site_name(res),
                                   kind=res.kind, filename=res.filename, line=res.line, function=res.function,
                                   stdlib=is_stdlib(res.filename), stable_file=stacks.stable_path(res.filename))
            snap.locks.append(stats[key])
        mine = seen_res.setdefault(key, set())
        if res.serial not in mine:
            mine.add(res.serial)
            stats[key].instances = len(mine)
        return key

    site_edges: dict[tuple[str, str], EdgeRecord] = {}
    for e in edges:
        rkey = res_key(e.res)
        lkey = site_key(e.lock_site)
        rname = e.res.display_name()
        rserial = e.res.serial
        channel = _queue_channel(e) if e.res.kind == "Queue" else None
        if channel:  # a Queue's free slots or unfinished tasks: a node of its own (see _queue_channel)
            rkey = _channel_node(stats, snap, rkey, channel)
            rname = f"{rname} ({channel})"
            rserial = _channel_serials.setdefault((e.res.serial, channel), _rec.next_serial())
        sn: Optional[str]
        dn: Optional[str]
        if e.src_kind == "lock":
            src, dst, si, di, sn, dn = lkey, rkey, e.lock_serial, rserial, e.lock_name, rname
        else:
            src, dst, si, di, sn, dn = rkey, lkey, rserial, e.lock_serial, rname, e.lock_name
        rec = EdgeRecord(src=src, dst=dst, thread=e.thread, held_stack=list(e.held_stack),
                         acquire_stack=list(e.acquire_stack), count=e.count, timed=e.timed, context=e.context,
                         src_instance=si, dst_instance=di, src_name=sn, dst_name=dn, thread_id=e.thread_id,
                         multi=e.multi, wait=e.op if e.src_kind == "lock" else None,
                         wake=e.op if e.src_kind != "lock" else None)
        snap.instance_edges.append(rec)
        have = site_edges.get((src, dst))
        if have is None:
            site_edges[(src, dst)] = EdgeRecord(**{**rec.__dict__, "src_instance": None, "dst_instance": None})
        else:
            have.count += rec.count
            have.timed = have.timed and rec.timed
            have.multi = have.multi or rec.multi or have.thread_id != rec.thread_id
    snap.site_edges.extend(site_edges.values())
    for pw in list(pool_waits.values()):
        filename, line, function = pw.pool_site
        snap.pool_waits.append(PoolWaitRecord(
            site=f"{filename}:{line}", name=stacks.derived_name(filename, line) or "ThreadPoolExecutor",
            function=function, stable_file=stacks.stable_path(filename), max_workers=pw.max_workers,
            depth=pw.depth, count=pw.count, thread=pw.thread, stack=list(pw.stack),
            submit_stack=list(pw.submit_stack), timed=pw.timed, context=pw.context,
            stdlib=is_stdlib(filename)))


# What a wait on a Queue waits for, and which wakes can end it: get() waits for an item (put
# ends it), put() on a full queue for a free slot (get ends it), join() for the unfinished tasks
# (task_done ends it). Items are the Queue's own node; the other two are nodes of their own, so
# that "put while holding L" and "join while holding L" (the same thread submitting work and then
# waiting for it under one lock) make no cycle: a put never ends a join.
_QUEUE_CHANNELS = {("w", "put"): "free slots", ("k", "get"): "free slots",
                   ("w", "task-join"): "unfinished tasks", ("k", "task-done"): "unfinished tasks"}
_channel_serials: dict[tuple[int, str], int] = {}  # (the Queue's serial, channel) -> its node's serial


def _queue_channel(e: WaitEdge) -> Optional[str]:
    return _QUEUE_CHANNELS.get(("w" if e.src_kind == "lock" else "k", e.op))


def _channel_node(stats: dict[str, Any], snap: Any, key: str, channel: str) -> str:
    """The key of a Queue's ``channel`` node (a LockStats like the Queue's own, named for it)."""
    ckey = f"{key}:{channel.replace(' ', '-')}"
    if ckey not in stats:
        base = stats[key]
        stats[ckey] = dataclasses.replace(base, key=ckey, name=f"{base.name} ({channel})")
        snap.locks.append(stats[ckey])
    return ckey


def _site_name(res: Resource) -> str:
    """A Thread's site name: the variable it was assigned to, else Thread@file:line."""
    derived = stacks.derived_name(res.filename, res.line) if res.line else None
    return derived or f"Thread@{stacks.short_path(res.filename)}:{res.line}"


def _end_edge(res: Resource, site: Any, serial: int, name: Optional[str], thread: str, thread_id: str,
              stack: list[str], context: Optional[str], held_ref: Optional[list]) -> WaitEdge:
    """The wake edge "thread ``res`` took the lock (``site``, ``serial``) before it ended"."""
    e = WaitEdge.__new__(WaitEdge)
    e.src_kind, e.op, e.res = "resource", "end", res
    e.lock_site, e.lock_serial, e.lock_name = site, serial, name
    e.thread, e.thread_id = thread, thread_id
    e.held_stack, e.acquire_stack = stack, []
    e.count, e.timed, e.multi, e.context, e.held_ref = 1, False, False, context, held_ref
    return e


def _released_by(res: Resource) -> None:
    """A join while holding locks: those of them that the joined thread released last (a lock
    remembers the held list of the thread that released it last, ``_last``) were taken by that
    thread, which may have needed them before it could end: "T took L before it ended". This
    finds the plain `with L:` of a worker that took L alone (no lock-order edge shows it), as
    long as no other thread released L in between; where the thread took it is not recorded."""
    if not _rec.recording:
        return
    mine = res.held_list
    for lock in _held_now():
        if getattr(lock, "_last", None) is not mine:
            continue
        key = ("k", lock._serial, res.serial)
        if key in wait_edges or len(wait_edges) >= MAX_WAIT_EDGES or lock._site.epoch != _rec.state.epoch:
            continue
        wait_edges[key] = _end_edge(res, lock._site, lock._serial, _rec.lock_name(lock), res.thread_name or "?",
                                    f"{os.getpid()}:thread-{res.serial}",  # not the joiner's: another thread
                                    [], _rec.context, mine)


def _thread_ends() -> list[WaitEdge]:
    """"Thread T took L before it ended", for the threads joined while a lock was held: the locks
    T took as its lock-order edges and its wait edges show (both ends of an edge were taken)."""
    joined = {e.res.serial: e.res for e in list(wait_edges.values())
              if e.src_kind == "lock" and e.res.kind == "Thread" and e.res.held_list is not None}
    if not joined:
        return []
    by_list = {id(res.held_list): res for res in joined.values()}
    out: list[WaitEdge] = []
    seen: set[tuple[int, int]] = set()

    def took(res: Resource, serial: int, site: Any, name: Optional[str], thread: str, thread_id: str,
             stack: list[str]) -> None:
        if (res.serial, serial) in seen:
            return
        seen.add((res.serial, serial))
        out.append(_end_edge(res, site, serial, name, thread, thread_id, list(stack), None, None))

    with _rec.mutex:
        owners = _rec.edge_owners(_rec.state)
        lock_edges = [e for owner in owners for e in list((owner._in or {}).values())]
        lock_edges += list(dict(_rec.state.kept_edges).values())
    for le in lock_edges:
        res = by_list.get(id(le.held_ref)) if le.held_ref is not None else None
        if res is not None and le.held_ref is res.held_list:
            took(res, le.src_serial, le.src_site, le.src_name, le.thread, le.thread_id, le.held_stack)
            took(res, le.dst_serial, le.dst_site, le.dst_name, le.thread, le.thread_id, le.acquire_stack)
    for we in list(wait_edges.values()):
        res = by_list.get(id(we.held_ref)) if we.held_ref is not None else None
        if res is not None and we.held_ref is res.held_list:
            took(res, we.lock_serial, we.lock_site, we.lock_name, we.thread, we.thread_id, we.held_stack)
    return out
