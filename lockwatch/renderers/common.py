"""Formatting and wording shared by the renderers: durations, cycle titles, labels and sentences."""
from __future__ import annotations

from ..model import PotentialDeadlock

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


def plural(n: int, word: str, many: str = "") -> str:
    return f"{n} {word if n == 1 else (many or word + 's')}"
