"""Formatting and wording shared by the renderers: durations, cycle titles, labels and sentences."""
from __future__ import annotations

import copy
import dataclasses
from typing import Any, TypeVar

from ..escapes import printable
from ..model import LockStats, PotentialDeadlock, Report
from ..stacks import library_kind

T = TypeVar("T")

# Triage labels (lockwatch.model.SEVERITY) as the text report words them.
LABELS = {"deadlock": "deadlock risk", "single-thread": "single-thread inversion",
          "semaphore": "through a semaphore", "timed": "timed (stall, not hang)",
          "guarded": "guarded by a gate lock"}

# The same labels as the HTML page's badges words them, with the badge's class.
BADGES = {"deadlock": ("deadlock risk", "risk"), "single-thread": ("single-thread inversion", "risk"),
          "semaphore": ("through a semaphore", "warn"), "timed": ("timed: stall, not hang", "mild"),
          "guarded": ("guarded by a gate lock", "mild")}

# What a cycle's scope means, one sentence for each.
SCOPE_TEXT = {
    "instance": "These lock objects were taken in opposite orders. If the threads that did so run at "
                "the same time, each can hold one lock and wait forever for the next.",
    "site": "Locks created at these sites were taken in opposite orders (not necessarily the same "
            "objects: lock classes, as in lockdep). If two of them meet, they can deadlock.",
}

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
