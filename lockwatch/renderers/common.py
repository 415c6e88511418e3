"""Formatting shared by the renderers."""
from __future__ import annotations

from ..analysis import PotentialDeadlock


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
