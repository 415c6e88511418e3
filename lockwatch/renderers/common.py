"""Formatting and wording shared by the renderers: durations, cycle titles, labels and sentences."""
from __future__ import annotations

import copy
import dataclasses
from typing import Any, TypeVar

from ..escapes import printable
from ..model import Confirmation, PotentialDeadlock

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


def confirmation_headline(c: Confirmation) -> str:
    """What --confirm found, in one sentence: "CONFIRMED: this deadlock was reproduced in run 2 of
    10" or "not reproduced in 10 steered runs: <the reason>"."""
    if c.status == "confirmed":
        of = f" of {c.of}" if c.of else ""
        return f"CONFIRMED: this deadlock was reproduced in run {c.run}{of}"
    if not c.runs:
        return f"not reproduced ({c.reason or 'no run'})"
    return f"not reproduced in {plural(c.runs, 'steered run')}: {c.reason or 'no reason recorded'}"
