"""Formatting and wording shared by the renderers: durations, cycle titles, labels and sentences."""
from __future__ import annotations

import copy
import dataclasses
from typing import Any, TypeVar

from ..escapes import printable
from ..model import Confirmation, LockStats, PotentialDeadlock, Report
from ..stacks import library_kind

T = TypeVar("T")

# Triage labels (lockwatch.model.SEVERITY) as the text report words them.
LABELS = {"deadlock": "deadlock risk", "single-thread": "single-thread inversion",
          "starvation": "thread-pool starvation",
          "semaphore": "through a semaphore", "timed": "timed (stall, not hang)",
          "guarded": "guarded by a gate lock"}

# The same labels as the HTML page's badges words them, with the badge's class.
BADGES = {"deadlock": ("deadlock risk", "risk"), "single-thread": ("single-thread inversion", "risk"),
          "starvation": ("thread-pool starvation", "risk"),
          "semaphore": ("through a semaphore", "warn"), "timed": ("timed: stall, not hang", "mild"),
          "guarded": ("guarded by a gate lock", "mild")}

# What a cycle's scope means, one sentence for each.
SCOPE_TEXT = {
    "instance": "These lock objects were taken in opposite orders. If the threads that did so run at "
                "the same time, each can hold one lock and wait forever for the next.",
    "site": "Locks created at these sites were taken in opposite orders (not necessarily the same "
            "objects: lock classes, as in lockdep). If two of them meet, they can deadlock.",
}

# The same for a cycle through a wait (a join, an Event, a Queue, a Future...), and for a thread
# pool whose tasks wait on its own futures.
WAIT_SCOPE_TEXT = ("A thread held a lock while it waited for something (a thread to end, an event, an "
                   "item, a result) that another thread did only while holding, or after taking, that "
                   "lock. If they meet, both wait forever.")
POOL_SCOPE_TEXT = ("Tasks of this thread pool waited on futures of the same pool. When every worker does "
                   "so at once, the futures they wait for stay queued behind them for ever.")


def scope_text(p: PotentialDeadlock) -> str:
    """What a potential deadlock's kind of cycle means, in one or two sentences."""
    if any(e.wake == "pool" for e in p.edges):
        return POOL_SCOPE_TEXT
    if any(e.wait or e.wake for e in p.edges):
        return WAIT_SCOPE_TEXT
    return SCOPE_TEXT["instance" if p.scope == "instance" else "site"]


def edge_words(a: str, b: str, e: Any, ctx: str = "") -> tuple[str, str, str]:
    """How an edge a -> b of a cycle reads: (what happened, the title of its held_stack, the
    title of its acquire_stack). ``e`` is a model.EdgeRecord; ``ctx`` goes in the parentheses."""
    times = plural(e.count, "time") + ctx
    if e.wake == "pool":
        return (f"a task of the pool, in thread {quoted(e.thread)}, waited on a future of the same pool "
                f"({times}{', with a timeout' if e.timed else ''})",
                "the future was submitted at", "and waited for at")
    if e.wait:
        timed = ", with a timeout (can stall, not hang)" if e.timed else ""
        return (f"thread {quoted(e.thread)} held {a} and waited for {b} ({e.wait}; {times}{timed})",
                f"{a} was taken at", f"then it waited for {b} at")
    if e.wake == "end":
        return (f"{a} took {b} before it ended", f"{b} was taken at", "then the thread ended")
    if e.wake:
        did = WAKE_PHRASES.get(e.wake, e.wake)
        return (f"thread {quoted(e.thread)} {did} {a} while holding {b} ({times})",
                f"{b} was taken at", f"then {a} was woken ({e.wake}) at")
    extra = ", timed acquire (can stall, not hang)" if e.timed else ""
    return (f"thread {quoted(e.thread)} held {a} and waited for {b} ({plural(e.count, 'time')}{extra}{ctx})",
            f"{a} was taken at", f"then {b} was taken at")


KNOWN_REASON = "known: in the CI baseline, so it does not fail a run"


# How a reader shows what is folded (the setting show_library; `lockwatch report --show-library`).
SHOW_LIBRARY = "--show-library"


def is_library(s: LockStats) -> bool:
    """A lock created by the standard library or an installed package, not by the program."""
    return s.stdlib or library_kind(s.filename) is not None


def program_first(locks: list[LockStats], show_library: bool) -> tuple[list[LockStats], int]:
    """The program's own locks, in their order; then, with ``show_library``, the libraries'.
    Also how many library locks were left out (0 with ``show_library``)."""
    mine = [s for s in locks if not is_library(s)]
    theirs = [s for s in locks if is_library(s)]
    return (mine + theirs, 0) if show_library else (mine, len(theirs))


def fold_frames(frames: list[str], show_library: bool) -> list[Any]:
    """``frames`` (innermost last) with each run of standard-library and installed-package frames
    replaced by its length (an int), as pyinstrument hides library frames; the innermost frame,
    where the lock was taken, is always kept. Unchanged with ``show_library``."""
    if show_library:
        return list(frames)
    out: list[Any] = []
    for i, f in enumerate(frames):
        if i < len(frames) - 1 and library_kind(f) is not None:
            if out and isinstance(out[-1], int):
                out[-1] += 1
            else:
                out.append(1)
        else:
            out.append(f)
    return out


def folded_frames_text(n: int) -> str:
    return f"… {plural(n, 'library frame')} folded ({SHOW_LIBRARY} shows them)"


def fmt_ns(ns: float) -> str:
    """A duration for people: 850 ns, 12.3 µs, 4.56 ms, 1.23 s."""
    if ns < 1_000:
        return f"{ns:.0f} ns"
    if ns < 1_000_000:
        return f"{ns / 1_000:.3g} µs"
    if ns < 1_000_000_000:
        return f"{ns / 1_000_000:.3g} ms"
    return f"{ns / 1_000_000_000:.3g} s"


def cycle_title(p: PotentialDeadlock) -> str:
    names = [lock.name for lock in p.locks]
    return " -> ".join(names + names[:1])


# What a thread of a real deadlock waits for, when it is not a lock (DeadlockThread.wait).
WAIT_PHRASES = {
    "join": "waits for thread {q} to finish (join)",
    "wait:Event": "waits for Event {n} to be set",
    "wait:Condition": "waits for Condition {n} to be notified",
    "wait:Barrier": "waits at Barrier {n} for the other threads to arrive",
    "get": "waits to get an item from Queue {n}, which is empty",
    "put": "waits to put an item into Queue {n}, which is full",
    "task-join": "waits for every task of Queue {n} to be done (Queue.join)",
    "result": "waits for the result of {n}",
    "exception": "waits for {n} to finish (Future.exception)",
    "wait-all": "waits for all of {n} (concurrent.futures.wait)",
    "wait-any": "waits for any of {n} (concurrent.futures.wait)",
    "as-completed": "waits for the next of {n} to complete (as_completed)",
}

# What a wait edge of the lock-order graph did at the resource's end (EdgeRecord.wait/.wake).
WAKE_PHRASES = {"set": "set", "notify": "notified", "put": "put an item into", "get": "took an item from",
                "task-done": "marked a task done in", "result": "completed", "arrive": "arrived at",
                "end": "ended"}


def wait_phrase(wait: str, kind: Any, name: Any) -> str:
    """"waits for thread 'worker' to finish (join)": a wait in words."""
    template = WAIT_PHRASES.get(f"{wait}:{kind}") or WAIT_PHRASES.get(wait) or "waits ({w}) for {k} {n}"
    return template.format(q=quoted(name), n=name, k=kind, w=wait)


def wakers_phrase(wakers: list[str]) -> str:
    if not wakers:
        return ""
    if len(wakers) == 1:
        return f", which only thread {quoted(wakers[0])} can end"
    return ", which only threads " + ", ".join(quoted(w) for w in wakers) + " can end"


def quoted(name: Any) -> str:
    """A thread's name in single quotes (repr would double the backslash of an escape)."""
    return f"'{name}'" if isinstance(name, str) else repr(name)


def plural(n: int, word: str, many: str = "") -> str:
    return f"{n} {word if n == 1 else (many or word + 's')}"


def visible(value: T) -> T:
    """``value`` (a report, a finding, any of the model's data) with every string in it made
    printable (escapes.printable): what a renderer for people shows of names, threads, paths and
    functions that the program, or whoever wrote a report, chose. Unchanged parts are shared,
    not copied."""
    out: Any = value
    if isinstance(value, str):
        out = printable(value)
    elif isinstance(value, (list, tuple)):
        items = [visible(v) for v in value]
        if any(a is not b for a, b in zip(items, value)):
            out = type(value)(items)
    elif isinstance(value, dict):
        pairs = [(visible(k), visible(v)) for k, v in value.items()]
        if any(k2 is not k or v2 is not v for (k2, v2), (k, v) in zip(pairs, value.items())):
            out = dict(pairs)
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        changed = {}
        for f in dataclasses.fields(value):
            old = getattr(value, f.name)
            new = visible(old)
            if new is not old:
                changed[f.name] = new
        if changed:
            out = copy.copy(value)
            for name, new in changed.items():
                setattr(out, name, new)
    return out


def not_listed(report: Report) -> str:
    """The sentence saying how many cycles the bounded search did not list ("" when none)."""
    n = report.cycles_not_listed
    if not n:
        return ""
    at_least = "at least " if report.cycles_not_listed_at_least else ""
    return (f"{at_least}{n:,} more cycle{'s' if n != 1 or at_least else ''} not listed: in large strongly "
            "connected groups of locks only the shortest cycles are shown, and the search is bounded")


def confirmation_headline(c: Confirmation) -> str:
    """What --confirm found, in one sentence: "CONFIRMED: this deadlock was reproduced in run 2 of
    10" or "not reproduced in 10 steered runs: <the reason>"."""
    if c.status == "confirmed":
        of = f" of {c.of}" if c.of else ""
        return f"CONFIRMED: this deadlock was reproduced in run {c.run}{of}"
    if not c.runs:
        return f"not reproduced ({c.reason or 'no run'})"
    return f"not reproduced in {plural(c.runs, 'steered run')}: {c.reason or 'no reason recorded'}"
