"""--confirm: re-run the program with a steered schedule that forces a potential deadlock to happen.

DeadlockFuzzer (Joshi, Park, Sen, Naik, PLDI 2009) for lockwatch: each confirmation run is a fresh
``python`` process running the program with the same argv, cwd and environment. In it, a thread
about to take the lock that closes one edge of the cycle (matched by the creation sites of the
lock it holds and of the lock it wants, and by the place of the acquisition) is held back, for at
most a short pause, until every edge of the cycle has such a thread and their locks form the
cycle; then they are let go together, each blocks on the next one's lock, and the watchdog sees a
real deadlock on exactly that cycle, records it and ends the run.

Normal runs pay nothing for this: the steering lives in subclasses of the instrumented Lock and
RLock that only a confirmation run makes (its lock factories are pointed at them), and every
pause is bounded, so a cycle that cannot happen costs seconds, never a hang.
"""
from __future__ import annotations

import _thread
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Callable, Optional, Union

from .model import MAX_OUTPUT, Confirmation, Deadlock, PotentialDeadlock, Report, ReportError
from .stacks import short_path

# The watchdog's deadlock timeout in a confirmation run: the steered threads are blocked on each
# other, a cycle of waiting threads, which never resolves itself; half a second rules out a
# transient view.
DEADLOCK_TIMEOUT = 0.5
# A steered run that has not ended after this long (plus twice the program's own first run) is
# stopped: the program may wait for something the steering delayed past its own timeouts.
RUN_TIMEOUT = 30.0
# Pauses that ran out before the steering gives up for the rest of a run (a path taken in a loop
# would otherwise be delayed a pause at every pass).
MAX_TIMED_OUT_PAUSES = 8
_FRAME = re.compile(r"(.*):([0-9]+) in \S*\Z")


# -- the parent: which cycles, the runs, what they showed -------------------------------------------

@dataclass
class EdgeSpec:
    """Edge k of a cycle: a thread holding a lock of site ``src`` takes one of site ``dst`` at
    ``acq_file``:``acq_line`` (empty when the stack was not recorded: then any place matches)."""

    src: str
    dst: str
    src_name: str
    dst_name: str
    acq_file: str
    acq_line: int
    thread: str

    @property
    def where(self) -> str:
        return f"{self.acq_file}:{self.acq_line}" if self.acq_file else "?"


def edge_specs(p: PotentialDeadlock) -> list[EdgeSpec]:
    out = []
    n = len(p.locks)
    for k, e in enumerate(p.edges):
        m = _FRAME.match(e.acquire_stack[-1]) if e.acquire_stack else None
        out.append(EdgeSpec(e.src, e.dst, p.locks[k].name, p.locks[(k + 1) % n].name,
                            m.group(1) if m else "", int(m.group(2)) if m else 0, e.thread))
    return out


def not_attempted(p: PotentialDeadlock, apart: bool = False) -> Optional[str]:
    """Why a steered run cannot make this cycle hang, known without running anything; None if it
    can. ``apart``: its edges will run in threads of their own (tests run together), so a
    single-thread cycle can hang too."""
    if p.suppressed is not None:
        return f"not attempted: suppressed ({p.suppressed})"
    if p.triage == "guarded":
        return (f"not attempted: the gate lock {p.gate} was held around every edge, so it keeps the "
                "threads apart: they cannot deadlock on this cycle while that discipline holds")
    if p.triage == "single-thread" and not apart:
        return (f"not attempted: every edge was taken by the one thread {p.edges[0].thread!r}, and a "
                "thread cannot deadlock with itself on this cycle; it deadlocks when two threads run "
                "these paths at the same time")
    if p.triage == "timed":
        return ("not attempted: the cycle closes only through a timed acquire, which gives up: "
                "a stall, not a hang")
    if p.triage == "semaphore":
        return ("not attempted: the cycle runs through a semaphore with several permits; the "
                "steering holds back Lock and RLock acquisitions only")
    if p.origin == "stdlib":
        return "not attempted: every lock of the cycle was created by the standard library"
    if any(lk.kind not in ("Lock", "RLock") for lk in p.locks):
        return ("not attempted: the cycle runs through a Condition or semaphore; the steering "
                "holds back Lock and RLock acquisitions only")
    return None


@dataclass
class RunResult:
    """One steered run, as its process reported it (``data``: None if it reported nothing)."""

    number: int
    data: Optional[dict[str, Any]]
    status: Optional[int]  # None: stopped after the run timeout
    output: str


def confirm_report(report: Report, command_for: Callable[[PotentialDeadlock], Union[list[str], str]], *,
                   env: Mapping[str, str], cwd: str, runs: int, pause: float, first_run_s: float = 0.0,
                   meaning: Optional[str] = None) -> None:
    """Set ``confirmation`` on every potential deadlock of ``report``: re-run the command line
    that ``command_for`` gives for it (the plan file's path goes last) up to ``runs`` times,
    steered towards that cycle. ``command_for`` gives instead the reason it is not attempted
    (not_attempted(), or the caller's own)."""
    interrupted = False
    for p in report.potential_deadlocks:
        command = command_for(p)
        if interrupted or isinstance(command, str):
            reason = "not attempted: confirming was interrupted" if interrupted else str(command)
            p.confirmation = Confirmation("not-reproduced", 0, of=runs, reason=reason)
            continue
        try:
            p.confirmation = confirm_cycle(p, command, env=env, cwd=cwd, runs=runs, pause=pause,
                                           timeout=RUN_TIMEOUT + 2 * first_run_s)
        except KeyboardInterrupt:  # Ctrl-C: the report of the program's own run is still written
            interrupted = True
            p.confirmation = Confirmation("not-reproduced", 0, of=runs,
                                          reason="not attempted: confirming was interrupted")
            continue
        if meaning and p.confirmation.status == "confirmed":
            p.confirmation.reason = meaning


def confirm_cycle(p: PotentialDeadlock, command: Sequence[str], *, env: Mapping[str, str], cwd: str,
                  runs: int, pause: float, timeout: float) -> Confirmation:
    specs = edge_specs(p)
    results: list[RunResult] = []
    with tempfile.TemporaryDirectory(prefix="lockwatch-confirm-") as tmp:
        plan_path = os.path.join(tmp, "plan.json")
        result_path = os.path.join(tmp, "result.json")
        plan = {"edges": [s.__dict__ for s in specs], "pause": pause, "result": result_path,
                "deadlock_timeout": DEADLOCK_TIMEOUT, "timeout": timeout}
        with open(plan_path, "w") as f:
            json.dump(plan, f)
        for number in range(1, runs + 1):
            if os.path.exists(result_path):
                os.unlink(result_path)
            run = _run_once(number, [*command, plan_path], env, cwd, timeout, result_path)
            results.append(run)
            deadlock = _deadlock_of(run)
            if deadlock is not None and _on_cycle(deadlock, p):
                return Confirmation("confirmed", number, of=runs, run=number,
                                    schedule=list(run.data.get("schedule", [])) if run.data else [],
                                    deadlock=deadlock, output=run.output.splitlines()[-MAX_OUTPUT:])
    return Confirmation("not-reproduced", runs, of=runs, reason=why_not(p, specs, results, pause, timeout))


def _run_once(number: int, argv: list[str], env: Mapping[str, str], cwd: str, timeout: float,
              result_path: str) -> RunResult:
    with tempfile.TemporaryFile() as out:
        # Ctrl-C while Popen runs (it waits for the child's exec) would leave the run going with
        # nobody to stop it: SIGINT is held off until the child is known, then acted on.
        held: list[int] = []
        previous = _hold_sigint(held)
        proc: Optional[subprocess.Popen[bytes]] = None
        try:
            try:
                proc = subprocess.Popen(argv, cwd=cwd, env=dict(env), stdin=subprocess.DEVNULL, stdout=out,
                                        stderr=subprocess.STDOUT, start_new_session=True)
            finally:
                if previous is not None:
                    signal.signal(signal.SIGINT, previous)
            if held:
                raise KeyboardInterrupt
            status: Optional[int] = proc.wait(timeout)
        except subprocess.TimeoutExpired:
            status = None
            assert proc is not None
            _kill_group(proc)
        except BaseException:  # Ctrl-C: leave no process behind
            if proc is not None:
                _kill_group(proc)
            raise
        out.seek(0)
        output = out.read().decode("utf-8", "replace")
    data = None
    try:
        with open(result_path) as f:
            data = json.load(f)
    except (OSError, ValueError):
        pass
    return RunResult(number, data if isinstance(data, dict) else None, status, output)


def _hold_sigint(held: list[int]) -> Any:
    """Make SIGINT append to ``held`` instead of raising; return the handler to put back (None:
    nothing changed: not the main thread, SIGINT ignored, or a handler not set from Python)."""
    try:
        previous = signal.getsignal(signal.SIGINT)
        if previous is None or previous is signal.SIG_IGN:
            return None
        signal.signal(signal.SIGINT, lambda signum, frame: held.append(signum))
    except ValueError:  # not the main thread
        return None
    return previous


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (OSError, AttributeError):
        proc.kill()
    proc.wait()


def _deadlock_of(run: RunResult) -> Optional[Deadlock]:
    raw = run.data.get("deadlock") if run.data else None
    if raw is None:
        return None
    try:
        return Deadlock.from_dict(raw, "deadlock", f"confirmation run {run.number}")
    except ReportError:
        return None


def _on_cycle(deadlock: Deadlock, p: PotentialDeadlock) -> bool:
    """Is this real deadlock the cycle's: as many threads, waiting for locks of its sites?"""
    want = sorted(lk.site for lk in p.locks)
    got = sorted((t.waiting_for.site or "") if t.waiting_for else "" for t in deadlock.threads)
    return len(deadlock.threads) == len(p.locks) and got == want


def why_not(p: PotentialDeadlock, specs: list[EdgeSpec], results: list[RunResult], pause: float,
            timeout: float) -> str:
    """The reason found for a cycle that no steered run reproduced."""
    n = len(results)
    tail = []
    for r in results:
        if r.status is None:
            tail.append(f"run {r.number} did not end within {timeout:g} s and was stopped")
        elif r.data is None:
            tail.append(f"run {r.number} ended with status {r.status} without reporting")
        elif r.data.get("deadlock") is not None:
            tail.append(f"run {r.number} deadlocked on another cycle")
    reached = {k for r in results if r.data for ps in r.data.get("pauses", []) for k in ps["edges"]}
    missing = [k for k in range(len(specs)) if k not in reached]
    if missing:
        paths = "; ".join(f"taking {specs[k].dst_name} at {specs[k].where} while holding {specs[k].src_name}"
                          for k in missing)
        reason = f"in {n} steered run(s) no thread reached {paths}: that code path did not run again"
    elif any(_paused_together(r) for r in results):
        reason = (f"threads were held back at the cycle's acquisitions at the same time, but not on "
                  f"the same lock objects (the cycle is between creation sites, scope {p.scope}): "
                  "those objects never met")
    else:
        apart = next((s for s in (_lifetimes_apart(r) for r in results) if s), None)
        if apart:
            reason = (f"in this program the orders never overlap: {apart} (each thread was held back "
                      f"up to {pause:g} s, in {n} run(s)); the finding stays a risk for code that "
                      "runs these paths concurrently")
        else:
            reason = (f"threads reached the cycle's acquisitions, but never at the same time "
                      f"(each was held back up to {pause:g} s, in {n} run(s))")
    return reason + "".join(f"; {t}" for t in tail)


def _paused_together(r: RunResult) -> bool:
    """Were two threads held back at once, at different edges of the cycle?"""
    pauses = r.data.get("pauses", []) if r.data else []
    for i, a in enumerate(pauses):
        for b in pauses[i + 1:]:
            if (a["life"] != b["life"] and a["start"] < b["end"] and b["start"] < a["end"]
                    and len(set(a["edges"]) | set(b["edges"])) > 1):
                return True
    return False


def _lifetimes_apart(r: RunResult) -> Optional[str]:
    """"thread 'X' ended before thread 'Y' started", for two threads held back at different
    edges of the cycle whose lives did not overlap."""
    if not r.data:
        return None
    lives = r.data.get("lives", [])
    pauses = r.data.get("pauses", [])
    for a in pauses:
        for b in pauses:
            if a["life"] == b["life"] or len(set(a["edges"]) | set(b["edges"])) < 2:
                continue
            la, lb = lives[a["life"]], lives[b["life"]]
            if la[2] is not None and la[2] <= lb[1]:
                return f"thread {la[0]!r} ended before thread {lb[0]!r} started"
    return None


def program_command(target: str, args: Sequence[str], as_module: bool) -> list[str]:
    """The command line of a confirmation run of ``target`` (the plan file's path goes last)."""
    return [sys.executable, "-c", "from lockwatch.confirm import child_main; child_main()",
            json.dumps({"target": target, "args": list(args), "as_module": as_module})]


# -- the child: steering ----------------------------------------------------------------------------

class _Waiter:
    __slots__ = ("name", "life", "matches", "wanted", "gate", "start")

    def __init__(self, name: str, life: int, matches: list[tuple[int, Any]], wanted: Any) -> None:
        self.name, self.life, self.matches, self.wanted = name, life, matches, wanted
        self.gate = _thread.allocate_lock()
        self.gate.acquire()
        self.start = time.monotonic()


class Steer:
    """The steered schedule of one confirmation run, for one cycle (a plan's edges)."""

    def __init__(self, plan: dict[str, Any]) -> None:
        self.edges = [EdgeSpec(**e) for e in plan["edges"]]
        self.pause = float(plan["pause"])
        self.by_dst: dict[str, list[int]] = {}
        for k, e in enumerate(self.edges):
            self.by_dst.setdefault(e.dst, []).append(k)
        self.mutex = _thread.allocate_lock()
        self.paused: list[_Waiter] = []
        self.pauses: list[dict[str, Any]] = []  # every pause, as plain data for the parent
        self.schedule: list[str] = []
        self.lives: list[list[Any]] = [[threading.main_thread().name, time.monotonic(), None]]
        self.local = _thread._local()
        self.timed_out = 0
        self.done = False  # released a cycle: no more pauses

    def life(self) -> int:
        return getattr(self.local, "life", 0)

    def thread_started(self, name: str) -> None:
        with self.mutex:
            self.local.life = len(self.lives)
            self.lives.append([name, time.monotonic(), None])

    def thread_ended(self) -> None:
        self.lives[self.life()][2] = time.monotonic()

    def before(self, lock: Any, frame: Any) -> None:
        """``lock`` is about to be taken, blocking and untimed, by the code in ``frame``: hold this
        thread back if it closes an edge of the cycle."""
        if self.done:
            return
        cands = self.by_dst.get(lock._site.key)
        if not cands:
            return
        from . import recorder, stacks

        held = getattr(recorder.tls, "held", None)
        if not held or lock._held_in is held:
            return
        f = stacks.first_outside(frame)
        where = (f.f_code.co_filename, f.f_lineno) if f is not None else ("", 0)
        matches = []
        for k in cands:
            e = self.edges[k]
            if e.acq_file and (e.acq_file, e.acq_line) != where:
                continue
            src = next((h for h in reversed(held) if h is not lock and h._site.key == e.src), None)
            if src is not None:
                matches.append((k, src))
        if matches:
            self._hold_back(matches, lock)

    def _hold_back(self, matches: list[tuple[int, Any]], lock: Any) -> None:
        me = _Waiter(threading.current_thread().name, self.life(), matches, lock)
        with self.mutex:
            if self.done or self.timed_out >= MAX_TIMED_OUT_PAUSES:
                return
            self.paused.append(me)
            chain = self._cycle()
            if chain is not None:
                self.done = True
                self._release(chain)
        woke = me.gate.acquire(True, self.pause)
        end = time.monotonic()
        with self.mutex:
            if me in self.paused:
                self.paused.remove(me)
            if not woke:
                self.timed_out += 1
            self.pauses.append({"thread": me.name, "life": me.life, "edges": sorted({k for k, _ in matches}),
                                "start": me.start, "end": end, "outcome": "released" if woke else "timeout"})

    def _cycle(self) -> Optional[list[tuple[_Waiter, Any]]]:
        """Waiting threads t0..tn-1, ti at edge i, each wanting the lock the next one holds."""
        n = len(self.edges)

        def extend(chain: list[tuple[_Waiter, Any]]) -> Optional[list[tuple[_Waiter, Any]]]:
            k = len(chain)
            if k == n:
                return chain if chain[-1][0].wanted is chain[0][1] else None
            for w in self.paused:
                if any(w is c[0] for c in chain):
                    continue
                for kk, src in w.matches:
                    if kk == k and (k == 0 or chain[-1][0].wanted is src):
                        found = extend([*chain, (w, src)])
                        if found is not None:
                            return found
            return None

        return extend([])

    def _release(self, chain: list[tuple[_Waiter, Any]]) -> None:
        now = time.monotonic()
        for k, (w, _src) in enumerate(chain):
            e = self.edges[k]
            where = f"{short_path(e.acq_file)}:{e.acq_line}" if e.acq_file else "?"
            self.schedule.append(f"thread {w.name!r} took {e.src_name} and was held back "
                                 f"{now - w.start:.2f} s before taking {e.dst_name} at {where}")
        self.schedule.append(f"released together: each of the {len(chain)} threads then blocked on "
                             "the next one's lock")
        for w, _src in chain:
            w.gate.release()


_steer: Optional[Steer] = None


def _steered_classes() -> tuple[type[Any], type[Any]]:
    from . import proxies

    class SteeredLock(proxies.Lock):
        """A Lock of a confirmation run: the steering looks at every blocking acquisition."""

        __slots__ = ()

        def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
            f = sys._getframe(1)
            if blocking is True and timeout == -1 and _steer is not None:
                _steer.before(self, f)
            ok = proxies.Lock.acquire(self, blocking, timeout)
            if ok:  # where the program took it, not this method
                self._at_code, self._at_lasti = f.f_code, f.f_lasti
            return ok

        def __enter__(self) -> bool:
            f = sys._getframe(1)
            if _steer is not None:
                _steer.before(self, f)
            proxies.Lock.__enter__(self)
            self._at_code, self._at_lasti = f.f_code, f.f_lasti
            return True

    class SteeredRLock(proxies.RLock):
        """An RLock of a confirmation run."""

        __slots__ = ()

        def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
            f = sys._getframe(1)
            if blocking is True and timeout == -1 and _steer is not None:
                _steer.before(self, f)
            fresh = not self._held_in
            ok = proxies.RLock.acquire(self, blocking, timeout)
            if ok and fresh:
                self._at_code, self._at_lasti = f.f_code, f.f_lasti
            return ok

        def __enter__(self) -> bool:
            f = sys._getframe(1)
            if _steer is not None:
                _steer.before(self, f)
            fresh = not self._held_in
            proxies.RLock.__enter__(self)
            if fresh:
                self._at_code, self._at_lasti = f.f_code, f.f_lasti
            return True

    return SteeredLock, SteeredRLock


def install_steering(steer: Steer) -> None:
    """Make this process's lock factories return steered locks (a confirmation run only), and
    note when each thread starts and ends."""
    global _steer
    from . import patching, primitives, proxies

    lock_cls, rlock_cls = _steered_classes()
    allocate, real_rlock, init = proxies._allocate_lock, proxies._real_rlock, proxies._init

    def new_lock(frame: Any, outside: bool = False) -> Any:
        lock = lock_cls._lw_alloc(lock_cls)  # object.__new__, or the compiled core's
        init(lock, allocate(), "Lock", frame, outside)
        return lock

    def new_rlock(frame: Any, outside: bool = False, kind: str = "RLock") -> Any:
        lock = rlock_cls._lw_alloc(rlock_cls)
        init(lock, real_rlock(), kind, frame, outside)
        lock._depth = 0
        return lock

    patching._new_lock = new_lock
    patching._new_rlock = new_rlock
    patching.make_instances_of(lock_cls, rlock_cls)  # the compiled core's factories (_core.c)
    primitives.RLock = rlock_cls  # type: ignore[misc]  # a Condition's own lock
    bootstrap = threading.Thread._bootstrap_inner  # type: ignore[attr-defined]

    def bootstrap_inner(thread: threading.Thread) -> None:
        steer.thread_started(thread.name)
        try:
            bootstrap(thread)
        finally:
            steer.thread_ended()

    threading.Thread._bootstrap_inner = bootstrap_inner  # type: ignore[attr-defined]
    _steer = steer


def child_main() -> None:
    """A confirmation run: ``python -c ... PROGRAM PLAN`` (see program_command)."""
    program = json.loads(sys.argv[1])
    with open(sys.argv[2]) as f:
        plan = json.load(f)
    steer = Steer(plan)
    session = start_session(steer, plan)
    from .runner import NoSource, ProgramRunner

    runner = ProgramRunner(program["target"], program["args"], program["as_module"])
    try:
        runner.prepare()
    except NoSource as exc:
        sys.stderr.write(f"lockwatch: {exc}\n")
        sys.exit(2)
    status = runner.run()
    steer.lives[0][2] = time.monotonic()
    write_result(steer, plan, session)
    sys.exit(status)


def start_session(steer: Steer, plan: dict[str, Any]) -> Any:
    """Steering installed, and a session whose watchdog records a real deadlock and ends the run."""
    import lockwatch

    from .control import Session
    from .settings import Settings

    lockwatch._take_over()
    _end_after(float(plan["timeout"]) + 10)
    install_steering(steer)
    # text=True: under "exit" the deadlock's text is left to the report, which finish replaces
    # (the run's output is the program's own).
    session = Session(Settings(text=True, deadlock_timeout=float(plan["deadlock_timeout"]), on_deadlock="exit"))
    session.finish = lambda: write_result(steer, plan, session)  # then the watchdog ends the process
    session.start()
    return session


def _end_after(seconds: float) -> None:
    """End this run after ``seconds`` whatever happens: its parent stops it after its timeout,
    but a parent that died (SIGKILL, SIGTERM) cannot, and a steered run never outlives it for long.
    A bare _thread thread, as the watchdog's: not in threading.enumerate(), never waited for."""

    def end() -> None:
        time.sleep(seconds)
        os._exit(124)  # as timeout(1) says a command ran out of time

    _thread.start_new_thread(end, ())


def write_result(steer: Steer, plan: dict[str, Any], session: Any) -> None:
    with steer.mutex:
        data = {"deadlock": session.deadlocks[0] if session.deadlocks else None,
                "pauses": list(steer.pauses), "schedule": list(steer.schedule), "lives": steer.lives}
    tmp = plan["result"] + ".tmp"
    with open(tmp, "w") as f:
        json.dump(data, f)
    os.replace(tmp, plan["result"])
