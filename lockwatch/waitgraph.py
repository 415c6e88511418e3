"""Real deadlocks through waits: the wait-for graph of blocked threads and who can wake each one."""
from __future__ import annotations

# A thread blocked on a lock can be woken by one thread, the holder. A thread blocked in join()
# by the thread it joins. A thread blocked on an Event, a Condition, a Queue or a Barrier by any
# of the threads that woke it before (set it, notified it, put to it, arrived at it: recorded as
# they happen, lockwatch.waits), or, if none is known, by any other thread. A thread blocked on a
# Future by the thread running it, or, while it is queued in a thread pool that has all its
# workers, by one of those workers (a pool whose every worker waits on work queued behind them
# starves); futures.wait(ALL_COMPLETED) needs all its futures, as_completed() and FIRST_COMPLETED
# any one.
#
# That is the OR (and sometimes AND) model of deadlock (Chandy, Misra and Haas): a set of threads
# is deadlocked when none of them can be woken by a thread outside the set. Found as the greatest
# such set: start from every thread blocked longer than the timeout, and drop, until nothing
# changes, each one that some thread outside can wake. A thread the watchdog does not see blocked
# (running, sleeping, reading a socket, in a timed wait) can always wake: no false alarm from a
# thread doing something lockwatch does not see.
import signal
import sys
import threading
from dataclasses import dataclass, field
from typing import Any, Optional

from . import recorder as _rec
from . import stacks, waits

ANY = None  # "any other thread may wake it" as a group of wakers

_DONE_STATES = ("CANCELLED", "CANCELLED_AND_NOTIFIED", "FINISHED")


@dataclass
class Node:
    """A blocked thread: what it waits for, and the groups of threads that can wake it."""

    ident: int
    kind: str  # the kind of what it waits for (a lock kind, or Thread, Event, ...)
    op: str  # "acquire" for a lock, else the wait (join, wait, get, result, ...)
    obj: Any
    t0: int
    groups: list[Optional[set[int]]]  # each a set of idents, or ANY
    need_all: bool = False  # futures.wait(ALL_COMPLETED): woken only when every group can wake it
    held: Optional[list] = None
    pool: Any = None  # a thread pool whose queued work this thread waits for
    notes: list[str] = field(default_factory=list)


def _user_signal_handler() -> bool:
    """A Python signal handler of the program's (not lockwatch's) can run in the main thread
    while it is blocked, and set an Event or put to a Queue: then nothing waiting for "any
    other thread" is a deadlock."""
    for name in ("SIGTERM", "SIGINT", "SIGHUP", "SIGUSR1", "SIGUSR2", "SIGALRM", "SIGCHLD"):
        sig = getattr(signal, name, None)
        if sig is None:
            continue
        try:
            handler = signal.getsignal(sig)
        except (ValueError, OSError):
            continue
        if callable(handler) and handler is not signal.default_int_handler:
            if not str(getattr(handler, "__module__", "") or "").startswith("lockwatch"):
                return True
    return False


def _recorded(obj: Any, ops: tuple[str, ...], waiter: int) -> Optional[set[int]]:
    """The threads that woke ``obj`` before (by ``ops``), other than the waiter (which cannot
    wake itself while it waits); if none, any other thread."""
    res = waits.known(obj)
    if res is None or res.wakers is None:
        return ANY
    out: set[int] = set()
    for op in ops:
        mine = res.wakers.get(op, set())
        if len(mine) >= waits.MAX_WAKERS:
            return ANY  # too many to tell
        out |= mine
    out.discard(waiter)
    return out or ANY


def _queue_marked(q: Any) -> bool:
    """Whether every put/get/task_done of ``q`` is recorded (it was made while lockwatch was on:
    waits._mark_queue marked its Conditions); otherwise only some are, and any thread may wake it."""
    cond = getattr(q, "not_empty", None)
    return isinstance(getattr(cond, "__dict__", None), dict) and "_lockwatch_wakers" in cond.__dict__


def _runner(fut: Any, frames: dict[int, Any]) -> Optional[int]:
    """The thread running ``fut`` in a thread pool (its _WorkItem.run frame), if any."""
    mod = sys.modules.get("concurrent.futures.thread")
    item = getattr(mod, "_WorkItem", None)
    run = getattr(getattr(item, "run", None), "__code__", None)
    if run is None:
        return None
    for ident, frame in frames.items():
        f = frame
        while f is not None:
            if f.f_code is run:
                if getattr(f.f_locals.get("self"), "future", None) is fut:
                    return ident
                break
            f = f.f_back
    return None


def _future_wakers(fut: Any, frames: dict[int, Any]) -> tuple[Optional[set[int]], Any, bool]:
    """(wakers, pool, done) of a Future."""
    state = getattr(fut, "_state", None)
    if state in _DONE_STATES:
        return ANY, None, True
    if state == "RUNNING":
        runner = _runner(fut, frames)
        return ({runner} if runner is not None else ANY), None, False
    tag = getattr(fut, "_lockwatch_submit", None)
    pool = tag[0]() if tag is not None else None
    if state == "PENDING" and pool is not None:
        workers = [t.ident for t in list(getattr(pool, "_threads", ())) if t.ident is not None]
        if workers and len(workers) >= getattr(pool, "_max_workers", 0) and not getattr(pool, "_shutdown", False):
            return set(workers), pool, False
    return ANY, None, False


def _node(ident: int, b: waits.Blocked, frames: dict[int, Any]) -> Optional[Node]:
    """The node of a thread blocked in a wait, or None if the wait is about to end."""
    obj = b.obj
    kind, op = b.kind, b.op
    node = Node(ident, kind, op, obj, b.t0, [], held=b.held)
    if kind == "Thread":
        if not obj.is_alive() or obj.ident is None:
            return None
        node.groups = [{obj.ident}]
    elif kind == "Event":
        if obj.is_set():
            return None
        node.groups = [_recorded(obj, ("set",), ident)]
    elif kind == "Condition":
        # Notifiers of a plain Condition are not all recorded (only those holding another
        # lock, for the lock-order graph: notify is too frequent): any other thread may.
        node.groups = [ANY]
    elif kind == "Barrier":
        if obj.broken:
            return None
        node.groups = [_recorded(obj, ("arrive",), ident)]
    elif kind == "Queue":
        try:
            size = obj._qsize()
        except Exception:
            return None
        marked = _queue_marked(obj)
        if op == "get":
            if size > 0:
                return None
            node.groups = [_recorded(obj, ("put",), ident) if marked else ANY]
        elif op == "put":
            if obj.maxsize <= 0 or size < obj.maxsize:
                return None
            node.groups = [_recorded(obj, ("get",), ident) if marked else ANY]
        else:  # task-join
            if not obj.unfinished_tasks:
                return None
            node.groups = [_recorded(obj, ("task-done",), ident) if marked else ANY]
    elif kind == "Future":
        wakers, pool, done = _future_wakers(obj, frames)
        if done:
            return None
        node.groups, node.pool = [wakers], pool
    elif kind == "Futures":
        pending = []
        for fut in list(obj):
            wakers, pool, done = _future_wakers(fut, frames)
            if done:
                if op != "wait-all":
                    return None  # one is done: it wakes now
                continue
            pending.append(wakers)
            node.pool = node.pool or pool
        if not pending:
            return None
        node.groups, node.need_all = pending, op == "wait-all"
    else:
        return None
    return node


def _lock_node(ident: int, lock: Any, t0: int, by_list: dict[int, int]) -> Optional[Node]:
    from .watchdog import _holder_list

    held = _holder_list(lock)
    holder = by_list.get(id(held)) if held is not None else None
    if holder is None:
        return None
    # A lock its waiter holds itself can be released by any other thread (a hand-off).
    return Node(ident, lock._site.kind, "acquire", lock, t0, [ANY if holder == ident else {holder}],
                held=_rec.threads.get(ident))


def find(now: int, limit: int, lock_waits: dict[int, tuple], by_list: dict[int, int],
         me: Optional[int]) -> list[list[Node]]:
    """The deadlocked groups of threads (each blocked longer than ``limit`` ns) that wait for at
    least one thing that is not a lock (lock-only cycles are the watchdog's own)."""
    if not any(now - b.t0 >= limit for b in list(waits.blocked.values())):
        return []  # no wait is old enough (the common case: looked at before anything else)
    frames = stacks.other_threads_frames()  # without the caller's own (the watchdog's: me)
    everyone = {i for i in frames if i != me}
    nodes: dict[int, Node] = {}
    for ident, (lock, t0, timed) in lock_waits.items():
        if timed or now - t0 < limit:
            continue
        node = _lock_node(ident, lock, t0, by_list)
        if node is not None:
            nodes[ident] = node
    for ident, b in list(waits.blocked.items()):
        if now - b.t0 < limit or ident in nodes or ident not in everyone:
            continue
        node = _node(ident, b, frames)
        if node is not None:
            nodes[ident] = node
    if not any(n.op != "acquire" for n in nodes.values()):
        return []
    handler = _user_signal_handler()
    stuck = set(nodes)

    def group_stuck(ident: int, group: Optional[set[int]]) -> bool:
        if group is ANY:
            return not handler and (everyone - {ident}) <= stuck
        return bool(group) and group <= stuck

    changed = True
    while changed:
        changed = False
        for ident in list(stuck):
            node = nodes[ident]
            verdicts = [group_stuck(ident, g) for g in node.groups]
            if not (any(verdicts) if node.need_all else all(verdicts)):
                stuck.discard(ident)
                changed = True
    # Groups: threads joined by "can wake" edges.
    parent = {i: i for i in stuck}

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for ident in stuck:
        for g in nodes[ident].groups:
            for w in (stuck - {ident}) if g is ANY else (g & stuck):
                parent[root(w)] = root(ident)
    comps: dict[int, list[Node]] = {}
    for ident in sorted(stuck, key=lambda i: nodes[i].t0):
        comps.setdefault(root(ident), []).append(nodes[ident])
    return [c for c in comps.values() if any(n.op != "acquire" for n in c)]


def wakers_of(node: Node, stuck: set[int]) -> list[int]:
    """The threads of the deadlock that could wake ``node`` (ANY: all the others)."""
    out: list[int] = []
    for g in node.groups:
        for w in sorted((stuck - {node.ident}) if g is ANY else (g & stuck)):
            if w not in out:
                out.append(w)
    return out


def describe(node: Node) -> tuple[str, str, Optional[str]]:
    """(name, kind, site) of what ``node`` waits for."""
    obj = node.obj
    if node.op == "acquire":
        site = obj._site
        return (_rec.lock_name(obj) or site.display_name(), site.kind, site.location)
    if node.kind == "Futures":
        n = len(list(obj))
        return (f"{n} futures" if n != 1 else "1 future", "Future", None)
    res = waits.known(obj)
    if node.kind == "Future":
        tag = getattr(obj, "_lockwatch_submit", None)
        name = f"future of {waits.task_name(tag)}()" if tag is not None else "a future"
        site = None
        if tag is not None and tag[2] is not None:
            code = tag[2]
            site = f"{code.co_filename}:{stacks.line_of(code, tag[3])}"
        elif res is not None:
            site = res.site
        return (name, "Future", site)
    if node.kind == "Thread":
        return (obj.name, "Thread", res.site if res is not None else None)
    if res is None:
        return (f"{node.kind}@?", node.kind, None)
    return (res.display_name(), node.kind, res.site)


def pool_starving(pool: Any, stuck: set[int]) -> Optional[dict[str, Any]]:
    """A thread pool every worker of which is deadlocked while work waits in its queue."""
    if pool is None:
        return None
    workers = [t.ident for t in list(getattr(pool, "_threads", ())) if t.ident is not None]
    try:
        queued = pool._work_queue.qsize()
    except Exception:
        queued = 0
    if not workers or not set(workers) <= stuck or not queued:
        return None
    res = waits.known(pool)
    return {"workers": len(workers), "max_workers": getattr(pool, "_max_workers", len(workers)),
            "queued": queued, "site": res.site if res is not None else None,
            "name": res.display_name() if res is not None else "ThreadPoolExecutor"}


def thread_names() -> dict[int, str]:
    active: dict[int, threading.Thread] = threading._active  # type: ignore[attr-defined]
    return {ident: t.name for ident, t in list(active.items())}
