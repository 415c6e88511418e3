"""The watchdog: finds threads deadlocked right now (a cycle of waiting threads) and long holds/waits."""
from __future__ import annotations

import _thread
import os
import sys
import threading
import time
from typing import Any, Callable, Optional

from . import recorder as _rec
from . import stacks
from .errors import DeadlockError
from .model import Alert, Deadlock, DeadlockThread, HeldLock, LockInfo, PoolStarvation
from .renderers.incidents import render_alert, render_deadlock, summarize
from .settings import EXIT_DEADLOCK, POLICIES

# The C module that signal.py wraps: importing signal.py builds its enums of every signal and
# handler (3.3 M instructions, callgrind 3.11) in every process that switches on, and lockwatch
# needs none of them (their values are the same ints).
signal: Any = __import__("_signal")

# pytest (and tools that follow its convention) leave this module's frames out of a failing
# test's traceback, e.g. a DeadlockError raised in a blocked acquire: the test's code is what to read.
__tracebackhide__ = True

__all__ = ["EXIT_DEADLOCK", "POLICIES", "Watchdog", "exit_now"]


def _lock_info(lock: Any) -> LockInfo:
    site = lock._site
    return LockInfo(name=_rec.lock_name(lock) or site.display_name(), kind=site.kind, site=site.location)


def _held_lock(lock: Any) -> HeldLock:
    info = _lock_info(lock)
    return HeldLock(name=info.name, kind=info.kind, site=info.site, taken_at=_taken_at(lock))


def _taken_at(lock: Any) -> Optional[str]:
    code = getattr(lock, "_at_code", None)
    if code is None:
        return None
    return stacks.format_frame(code.co_filename, stacks.line_of(code, lock._at_lasti), code.co_name)


def _holder_list(lock: Any) -> Optional[list]:
    """The held list of the thread holding ``lock`` now, or None. A semaphore has no owner: it
    has one only while every unit taken is taken by one thread (a Semaphore(1) used as a mutex),
    and never when it is a signal (released by threads that did not acquire it)."""
    held = getattr(lock, "_held_in", None)
    if held:
        return held
    holders = getattr(lock, "_holders", None)  # a semaphore: one _Hold per acquisition
    if holders and not lock._site.signal and getattr(lock, "_value", 1) == 0:
        lists = {id(h.held): h.held for h in list(holders)}
        if len(lists) == 1:
            return next(iter(lists.values()))
    return None


def _block_signals() -> Optional[set[Any]]:
    """Block every signal in this thread; the previous mask, or None where signals have no masks."""
    if not hasattr(signal, "pthread_sigmask"):
        return None
    return signal.pthread_sigmask(signal.SIG_BLOCK, signal.valid_signals())


def _restore_signals(previous: Optional[set[Any]]) -> None:
    if previous is not None:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _thread_names() -> dict[int, str]:
    # threading._active (ident -> Thread): enumerate() without its lock, which this may not take.
    active: dict[int, threading.Thread] = threading._active  # type: ignore[attr-defined]
    return {ident: t.name for ident, t in list(active.items())}


class Watchdog:
    """Polls the recorder's view of who waits for which lock and who holds it. Costs nothing on
    the uncontended path: only blocked acquisitions register as waiting (see ``blocking_acquire``)."""

    def __init__(self, deadlock_timeout: float, policy: str,
                 on_deadlock: Callable[[dict[str, Any], str], None],
                 on_alert: Callable[[dict[str, Any], str], None],
                 warn_hold: Optional[float] = None, warn_wait: Optional[float] = None) -> None:
        if policy not in POLICIES:
            raise ValueError(f"on_deadlock must be one of {', '.join(POLICIES)}, not {policy!r}")
        self.timeout = float(deadlock_timeout or 0)
        self.policy = policy
        self.on_deadlock = on_deadlock
        self.on_alert = on_alert
        self.warn_hold = warn_hold
        self.warn_wait = warn_wait
        shortest = min(x for x in (self.timeout or None, warn_hold, warn_wait, 4.0) if x)
        # Poll (and slice blocked waits) a few times per shortest threshold: detection comes
        # within ~1/4 of the timeout after it, and a blocked thread wakes ~4 times per timeout.
        self.interval = max(0.02, min(1.0, shortest / 4))
        self.reported: set[frozenset] = set()
        self.wait_reported: set[tuple[int, int, int]] = set()  # (thread, id(what), since) of waits
        self.in_lock_cycles: set[tuple[int, int]] = set()  # (thread, since) of reported lock cycles
        self.alerted: set[tuple[Any, ...]] = set()  # (kind, serial or thread, start) already reported
        # Threads blocked re-taking a Condition's lock in wait(): never the victim if the cycle
        # has another thread (see _deadlock).
        self.restoring: set[int] = set()
        self._bell = _thread.allocate_lock()  # held; released to wake the watchdog's thread
        self._bell.acquire()
        self._stopping = False
        self._ident: Optional[int] = None  # the watchdog thread's, once started
        self.native_id: Optional[int] = None  # its kernel thread id (for /proc), once running
        self._done = _thread.allocate_lock()  # held while the watchdog thread runs
        # Released once the running watchdog thread is gone for good (see _run): what a thread
        # whose wait ended waits on in retire().
        self._gone: Any = None
        self._armed = False
        self._starting = _thread.allocate_lock()

    # -- the blocked side (called from proxies on the contended path) --------------------------
    def blocking_acquire(self, lock: Any, acquire: Callable[..., bool], timeout: Optional[float],
                         t0: int, restoring: bool = False) -> bool:
        """Block on ``acquire`` like ``acquire(True, timeout)``, registered as waiting for ``lock``,
        and in slices so that this thread can be chosen to break a deadlock. ``timeout``: None
        waits for ever (a Lock's -1 is passed as None; a Semaphore's -1 is a timeout already
        over). ``restoring``: a Condition's wait() re-taking its lock."""
        ident = _thread.get_ident()
        timed = timeout is not None
        _rec.waiting[ident] = (lock, t0, timed)  # free-threading: dict updates rely on the GIL
        if restoring:
            self.restoring.add(ident)
        try:
            # Most waits are short: the watchdog's thread starts only for a wait that outlasts
            # one polling interval (started after registering: see _run's ending).
            if timeout is not None:  # cannot wait for ever: never a deadlock, maybe a long wait
                if timeout <= self.interval:
                    return acquire(True, timeout)
                if acquire(True, self.interval):
                    return True
                self._launch()
                return acquire(True, max(0.0, timeout - (_rec.now() - t0) / 1e9))
            if acquire(True, self.interval):
                return True
            self._launch()
            while True:
                exc = _rec.victims.pop(ident, None)
                if exc is not None:
                    raise exc
                if acquire(True, self.interval):
                    return True
        finally:
            _rec.waiting.pop(ident, None)
            if restoring:
                self.restoring.discard(ident)
            if not _rec.waiting and self._ident is not None:
                self.retire()

    # -- the watching side ---------------------------------------------------------------------
    def start(self) -> None:
        """Arm the watchdog. Its thread runs while some thread has waited for a lock longer than
        one polling interval, and ends as soon as no thread waits; with long-hold alerts (they
        need no waiter) it runs from now on. A program that is not waiting for a lock right now
        is not made multi-threaded: os.fork() warns about threads from Python 3.12 on, and test
        suites (CPython's own) check that a test leaves no thread behind."""
        self._armed = True
        if self.warn_hold:
            self._launch()

    def _launch(self) -> None:
        """Start the watchdog's thread (a wait outlasted its first slice) unless it runs. Returns
        once the thread runs: a wait that ends right after can then wait for its end (retire)."""
        # A bare _thread thread, not a threading.Thread: the program's threading.settrace /
        # setprofile hooks (a coverage tool, a debugger, its own) never run in it, it is not in
        # threading.enumerate(), and the interpreter never waits for it at exit (like a daemon).
        if self._ident is not None:
            return  # running (the check is repeated under the lock: it may be ending)
        with self._starting:
            if self._ident is not None or not self._armed:
                return
            # The thread starts with every signal blocked (it inherits the mask of the thread that
            # starts it, restored right after): the kernel hands a process-directed signal to any
            # thread that does not block it, and one taken by this thread would not interrupt the
            # main thread's sleep or wait, so a SIGTERM or Ctrl-C could go unanswered until then.
            ready = _thread.allocate_lock()
            ready.acquire()
            blocked = _block_signals()
            try:
                self._ident = _thread.start_new_thread(self._run, (ready,))
            except RuntimeError:  # at interpreter shutdown no thread can start: waits stay plain
                return
            finally:
                _restore_signals(blocked)
            ready.acquire(True, 5)

    def stop(self) -> None:
        self._armed = False
        with self._starting:
            pass  # a thread being started now has its ident in self._ident after this
        self._stopping = True
        self._ring()
        if self._ident is not None and self._ident != _thread.get_ident():
            if self._done.acquire(True, 5):  # the watchdog thread has ended
                self._done.release()

    def retire(self) -> None:
        """Called by a thread whose wait just ended: if no thread waits any more, the watchdog's
        thread ends now, and this thread returns to the program once it is gone (at most
        RETIRE_WAIT later). A test suite counting threads right after its test
        (CPython 3.9 and 3.10's threading_cleanup(), with no grace period) then finds none left
        that the program did not start; and the next wait that outlasts a slice starts it again
        (one thread start per such wait)."""
        ident = self._ident
        gone = self._gone
        if (ident is None or gone is None or self.warn_hold or self._stopping
                or ident == _thread.get_ident() or _anyone_waiting() or _rec.mutex._is_owned()):
            return
        self._ring()
        deadline = time.monotonic() + RETIRE_WAIT
        # In small steps: a wait that began meanwhile keeps the thread running (it then stays).
        while not gone.acquire(True, 0.005):
            if (self._ident is not None and _anyone_waiting()) or time.monotonic() > deadline:
                return
        gone.release()

    def _ring(self) -> None:
        """Wake the watchdog's thread now (to end, or to look whether it may)."""
        try:
            self._bell.release()
        except RuntimeError:
            pass  # rung already

    def _run(self, ready: Any) -> None:
        self.native_id = threading.get_native_id()
        # _set_sentinel() (CPython up to 3.12) gives a lock released when this thread's state is
        # deleted, after the interpreter stopped counting it in _thread._count(); elsewhere the
        # end of _run is as close as there is.
        sentinel = getattr(_thread, "_set_sentinel", None)
        gone = sentinel() if sentinel is not None else _thread.allocate_lock()
        gone.acquire()
        self._gone = gone
        try:
            with self._done:
                ready.release()
                while True:
                    self._bell.acquire(True, self.interval)  # a ring, or the next look
                    if self._stopping:
                        return
                    if not self.warn_hold and not _anyone_waiting():
                        with self._starting:
                            # Cleared before the last look: a thread registering as waiting after
                            # that look sees None in _launch and starts a new watchdog thread.
                            # free-threading: relies on the GIL's ordering of these two accesses.
                            me, self._ident = self._ident, None
                            if not _anyone_waiting():
                                return
                            self._ident = me
                    try:
                        self.check()
                    except Exception as exc:  # the watchdog must never take the program down
                        _rec.state.internal_errors.append(f"watchdog: {type(exc).__name__}: {exc}")
        finally:
            if sentinel is None:
                gone.release()

    def check(self, now: Optional[int] = None) -> list[dict[str, Any]]:
        """One look: report new deadlocks and alerts. Returns the deadlocks found this time."""
        now = now if now is not None else _rec.now()
        waiting = dict(_rec.waiting)
        by_list = {id(held): ident for ident, held in list(_rec.threads.items())}
        names = _thread_names()
        found = []
        if self.timeout > 0:
            limit = int(self.timeout * 1e9)
            blocked_by: dict[int, int] = {}
            waits_for_itself = []
            for ident, (lock, t0, timed) in waiting.items():
                if timed or now - t0 < limit:
                    continue
                held = _holder_list(lock)
                holder = by_list.get(id(held)) if held is not None else None
                if holder == ident:
                    waits_for_itself.append(ident)
                elif holder is not None:
                    blocked_by[ident] = holder
            if waits_for_itself and self._nobody_else_can_release(waiting, names, limit, now):
                for ident in waits_for_itself:
                    blocked_by[ident] = ident  # a cycle of one: a Lock taken again by its holder
            for cycle in _cycles(blocked_by):
                key = frozenset((i, waiting[i][0]._serial) for i in cycle)
                if key in self.reported:
                    continue  # report once, not in a loop
                self.reported.add(key)
                self.in_lock_cycles.update((i, waiting[i][1]) for i in cycle)
                found.append(self._deadlock(cycle, waiting, blocked_by, names, now))
            found.extend(self._wait_deadlocks(waiting, by_list, names, now, limit))
        self._alerts(waiting, by_list, names, now)
        return found

    @staticmethod
    def _nobody_else_can_release(waiting: dict, names: dict, limit: int, now: int) -> bool:
        """A thread waiting for a lock it holds itself waits for another thread to release it (a
        Lock may be released by any thread: a hand-off). It is a deadlock only when no other
        thread can: every other thread of the program is itself stuck in an untimed wait for a
        lock, for longer than the timeout."""
        for ident in names:
            entry = waiting.get(ident)
            if entry is None or entry[2] or now - entry[1] < limit:
                return False
        return True

    def _deadlock(self, cycle: list[int], waiting: dict, blocked_by: dict, names: dict, now: int) -> dict:
        frames = stacks.other_threads_frames()
        threads = []
        for ident in cycle:
            lock, t0, _timed = waiting[ident]
            held = _rec.threads.get(ident, [])
            threads.append(DeadlockThread(
                name=names.get(ident, f"thread-{ident}"), ident=ident,
                waiting_for=_lock_info(lock), waiting_s=round((now - t0) / 1e9, 3),
                blocked_by=names.get(blocked_by[ident], f"thread-{blocked_by[ident]}"),
                holds=[_held_lock(h) for h in _rec.holding(held)],
                stack=stacks.capture(frames.get(ident), limit=32),
            ))
        victim = None
        if self.policy == "raise":
            main = threading.main_thread().ident
            # Not a thread re-taking a Condition's lock in wait() if the cycle has another: the
            # error would leave wait() without the lock, and the `with cond:` around it would then
            # fail ("cannot release un-acquired lock") or release a plain Lock from under its holder.
            pool = [i for i in cycle if i not in self.restoring] or cycle
            # The main thread if it can be chosen (its error is the most visible: a pytest test
            # fails with it), else the thread that started waiting last.
            victim = main if main in pool else max(pool, key=lambda i: waiting[i][1])
        deadlock = Deadlock(threads=threads, timeout_s=self.timeout, policy=self.policy,
                            victim=names.get(victim) if victim is not None else None,
                            detected_at=time.time())
        data = deadlock.to_dict()  # plain data for the session and DeadlockError.report
        text = render_deadlock(deadlock)
        # The session learns of it before the victim can raise: a test that fails because of
        # the DeadlockError finds the deadlock recorded.
        self.on_deadlock(data, text)
        if victim is not None:
            _rec.victims[victim] = DeadlockError(summarize(deadlock), data)
        return data

    def _wait_deadlocks(self, waiting: dict, by_list: dict, names: dict, now: int, limit: int) -> list[dict]:
        """Deadlocks through joins, Events, Conditions, Barriers, Queues and Futures (waitgraph)."""
        waits = sys.modules.get("lockwatch.waits")
        if waits is None or not waits.blocked:
            return []
        from . import waitgraph

        found = []
        for comp in waitgraph.find(now, limit, waiting, by_list, self._ident):
            pairs = {(n.ident, id(n.obj), n.t0) for n in comp}
            if pairs & self.wait_reported:
                continue  # reported already (a thread that blocked later joined it: the same one)
            if any((n.ident, n.t0) in self.in_lock_cycles for n in comp if n.op == "acquire"):
                # Threads joining (or waiting on) threads of a lock cycle reported already: that
                # cycle is the deadlock, and these waits are its consequence.
                self.wait_reported |= pairs
                continue
            self.wait_reported |= pairs
            found.append(self._wait_deadlock(comp, names, now))
        return found

    def _wait_deadlock(self, comp: list, names: dict, now: int) -> dict:
        from . import waitgraph

        frames = stacks.other_threads_frames()
        stuck = {n.ident for n in comp}
        threads = []
        starvation = None
        for n in comp:
            name, kind, site = waitgraph.describe(n)
            wakers = waitgraph.wakers_of(n, stuck)
            held = n.held if n.held is not None else _rec.threads.get(n.ident, [])
            threads.append(DeadlockThread(
                name=names.get(n.ident, f"thread-{n.ident}"), ident=n.ident,
                waiting_for=LockInfo(name=name, kind=kind, site=site),
                waiting_s=round((now - n.t0) / 1e9, 3),
                blocked_by=(names.get(wakers[0], f"thread-{wakers[0]}")
                            if len(wakers) == 1 and wakers[0] != n.ident else None),
                holds=[_held_lock(h) for h in _rec.holding(held)] if held else [],
                stack=stacks.capture(frames.get(n.ident), limit=32),
                wait=None if n.op == "acquire" else n.op,
                wakers=[names.get(w, f"thread-{w}") for w in wakers] if n.op != "acquire" else [],
            ))
            if starvation is None and n.pool is not None:
                info = waitgraph.pool_starving(n.pool, stuck)
                if info is not None:
                    starvation = PoolStarvation(**info)
        victim = None
        if self.policy == "raise":
            # Only a thread blocked where lockwatch wakes it now and then can get the error: a
            # lock's waiter (not one re-taking a Condition's lock) or a join. The main thread if
            # it can be chosen, else the one that started waiting last; none: it is reported only.
            pool = [n for n in comp if (n.op == "acquire" and n.ident not in self.restoring) or n.op == "join"]
            main = threading.main_thread().ident
            chosen = next((n for n in pool if n.ident == main), None)
            if chosen is None and pool:
                chosen = max(pool, key=lambda n: n.t0)
            victim = chosen.ident if chosen is not None else None
        deadlock = Deadlock(threads=threads, timeout_s=self.timeout, policy=self.policy,
                            victim=names.get(victim) if victim is not None else None,
                            detected_at=time.time(), starvation=starvation)
        data = deadlock.to_dict()
        text = render_deadlock(deadlock)
        if victim is not None:
            _rec.victims[victim] = DeadlockError(summarize(deadlock), data)
        self.on_deadlock(data, text)
        return data

    def _alerts(self, waiting: dict, by_list: dict, names: dict, now: int) -> None:
        frames = None
        if self.warn_wait:
            limit = int(self.warn_wait * 1e9)
            for ident, (lock, t0, _timed) in waiting.items():
                key = ("wait", ident, lock._serial, t0)
                if now - t0 < limit or key in self.alerted:
                    continue
                self.alerted.add(key)
                frames = frames or stacks.other_threads_frames()
                held = _holder_list(lock)
                holder = by_list.get(id(held)) if held is not None else None
                alert = Alert(kind="long-wait", lock=_lock_info(lock), seconds=round((now - t0) / 1e9, 3),
                              thread=names.get(ident, f"thread-{ident}"),
                              stack=stacks.capture(frames.get(ident), limit=32),
                              holder=names.get(holder) if holder is not None else None,
                              holder_stack=stacks.capture(frames.get(holder), limit=32) if holder else [])
                self.on_alert(alert.to_dict(), render_alert(alert))
        if self.warn_hold:
            limit = int(self.warn_hold * 1e9)
            for ident, held in list(_rec.threads.items()):
                for lock in _rec.holding(held):  # a copy: never index another thread's list
                    t = getattr(lock, "_t", None)
                    if not t or getattr(lock, "_held_in", None) is not held or now - t < limit:
                        continue
                    key = ("hold", lock._serial, t, None)
                    if key in self.alerted:
                        continue
                    self.alerted.add(key)
                    frames = frames or stacks.other_threads_frames()
                    alert = Alert(kind="long-hold", lock=_lock_info(lock), seconds=round((now - t) / 1e9, 3),
                                  thread=names.get(ident, f"thread-{ident}"), taken_at=_taken_at(lock),
                                  stack=stacks.capture(frames.get(ident), limit=32))
                    self.on_alert(alert.to_dict(), render_alert(alert))


RETIRE_WAIT = 2.0  # seconds a thread whose wait ended waits at most for the watchdog's thread to end


def _anyone_waiting() -> bool:
    """A thread waits for a lock, or is in an untimed join/Event/Queue/Future wait (waits)."""
    if _rec.waiting:
        return True
    waits = sys.modules.get("lockwatch.waits")
    return bool(waits is not None and waits.blocked)


def _cycles(blocked_by: dict[int, int]) -> list[list[int]]:
    """Cycles of the wait-for graph (each waiting thread waits for exactly one holder)."""
    out: list[list[int]] = []
    done: set[int] = set()
    for start in blocked_by:
        path: list[int] = []
        pos: dict[int, int] = {}
        node = start
        while node in blocked_by and node not in done and node not in pos:
            pos[node] = len(path)
            path.append(node)
            node = blocked_by[node]
        if node in pos:
            out.append(path[pos[node]:])
        done.update(path)
    return out


def exit_now(status: int = EXIT_DEADLOCK) -> None:
    """End a deadlocked process: normal exit would wait for the deadlocked threads forever."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:
            pass
    os._exit(status)
