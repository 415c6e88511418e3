"""Constant-memory log-scale histogram of durations in nanoseconds (two buckets per power of two)."""
from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Sequence

# Bucket of a duration d is (d*d).bit_length(): bucket i holds 2**((i-1)/2) <= d < 2**(i/2), a
# factor of sqrt(2) wide, so a percentile read as the bucket's geometric midpoint is within 19% of
# the true value, give or take the rounding to whole ns (4 ns reads as 5). Where the exact count,
# total and maximum pin a sample down (the largest one; the smaller of two), it is read exactly.
# Finer buckets (HdrHistogram's ~1%) need a finer index on the hot path: a shift and a table
# lookup more per release (60 ns for quarter-octave buckets in Python against 36 ns). The hot path
# (proxies.py) computes the same index inline: one multiply and one bit_length, 36 ns on the
# project machine against 60 ns for quarter-octave buckets.
# 128 buckets cover every duration below 2**63 ns.
NBUCKETS = 128


def bucket_of(d: int) -> int:
    """The bucket index of a duration ``d`` (ns, >= 0)."""
    return (d * d).bit_length()


def bucket_bounds(i: int) -> tuple[int, int]:
    """The half-open range ``[low, high)`` of integer durations that fall into bucket ``i``."""
    if i == 0:
        return 0, 1
    return math.isqrt((1 << (i - 1)) - 1) + 1, math.isqrt((1 << i) - 1) + 1


def new_counts() -> list[int]:
    return [0] * NBUCKETS


def new_counters() -> list:
    """A live histogram that threads add to without a lock: ``next(counters[i])`` adds one to
    bucket i in a single C call, atomic under the GIL and in free-threaded builds. On a list,
    ``counts[i] += 1`` is a load, an add and a store; Python 3.9 may switch threads between any
    two of them, and two threads releasing locks of one site then lose one of their updates
    (measured: up to 3,300 of 120,000 holds). 8 KB per histogram, two per creation site."""
    return [itertools.count() for _ in range(NBUCKETS)]


def counter_value(counter: itertools.count) -> int:
    """How many times next() was called on a fresh itertools.count (it has no read method: its
    repr is "count(N)")."""
    return int(repr(counter)[6:-1])


def read_counters(counters: Sequence) -> list[int]:
    """The counts of a live histogram."""
    return [counter_value(c) for c in counters]


def percentile(counts: Sequence[int], q: float, max_value: int | None = None,
               total: int | None = None) -> int:
    """The q-quantile (0 < q <= 1, nearest rank) of the recorded durations; 0 when empty.

    Exact where the recorded numbers say it: the largest sample is the exact maximum (p50 of one
    6.02 s hold is 6.02 s, p99 of fewer than 100 samples is their maximum), samples whose total
    is n times the maximum all equal it, and with two samples the smaller one is
    ``total - max_value``. Otherwise the geometric midpoint of its bucket, within 19% of the true
    value (the bucket is sqrt(2) wide; the top bucket ends at the maximum, so it is narrower);
    never above the maximum."""
    n = sum(counts)
    if n == 0:
        return 0
    rank = min(n, max(1, math.ceil(q * n - 1e-9)))
    if max_value is not None and (rank == n or total == n * max_value):
        return max_value  # the largest sample; or every sample, when they all equal the maximum
    nonzero = [i for i, c in enumerate(counts) if c]
    if n == 2 and max_value is not None and total is not None:
        other = total - max_value  # the one sample that is not the maximum
        if 0 <= other <= max_value and bucket_of(other) == nonzero[0]:
            return other
    seen = 0
    for i in nonzero:
        seen += counts[i]
        if seen >= rank:
            low, high = bucket_bounds(i)
            upper = high - 1
            edge = 2 ** (i / 2)  # the bucket's real upper edge
            if max_value is not None and (i == nonzero[-1] or max_value < upper):
                upper = max(low, min(upper, max_value))  # the samples here are at most the max
                edge = min(edge, upper)
            mid = int(round(math.sqrt(2 ** ((i - 1) / 2) * edge))) if i else 0
            return max(low, min(mid, upper))
    return max_value or 0  # pragma: no cover - rank <= n always stops the loop


def to_sparse(counts: Sequence[int]) -> list[list[int]]:
    """Non-empty buckets as ``[[index, count], ...]`` (for JSON)."""
    return [[i, c] for i, c in enumerate(counts) if c]


def from_sparse(pairs: Iterable[Sequence[int]]) -> list[int]:
    counts = new_counts()
    for i, c in pairs:
        counts[int(i)] += int(c)
    return counts
