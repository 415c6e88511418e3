"""Log-linear histogram of durations in nanoseconds (32 buckets per power of two), filled lock-free."""
from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Mapping, Sequence

# The scale (HdrHistogram's, with 5 sub-bucket bits): a duration d below 64 ns is its own bucket
# (index d); above, d has b = d.bit_length() > 6 bits and falls into bucket
# ((b - 6) << 5) + (d >> (b - 6)): its power of two split into 32 equal buckets, each 1/32 to 1/63
# of its lowest value wide. A percentile read as its bucket's middle is within 1/64 (1.6%) of the
# true value. Every duration below 2**63 ns has an index below NBUCKETS.
LOG_LINEAR = "log-linear-32"  # the scale's name in a report (Timing.to_dict's "histogram_scale")
SUB_BITS = 5
NBUCKETS = ((63 - SUB_BITS - 1) << SUB_BITS) + (1 << (SUB_BITS + 1))  # 1888
# Reports written before this scale have no "histogram_scale": their bucket i held
# 2**((i-1)/2) <= d < 2**(i/2) (index (d*d).bit_length(), buckets sqrt(2) wide: within 19%).
SQRT2 = "sqrt2"
SQRT2_NBUCKETS = 128
SCALES = (LOG_LINEAR, SQRT2)


def bucket_of(d: int) -> int:
    """The bucket index of a duration ``d`` (ns, >= 0; a negative one counts as 0)."""
    if d < 1 << (SUB_BITS + 1):
        return d if d > 0 else 0
    b = d.bit_length()
    return ((b - SUB_BITS - 1) << SUB_BITS) + (d >> (b - SUB_BITS - 1))


def bucket_bounds(i: int) -> tuple[int, int]:
    """The half-open range ``[low, high)`` of integer durations that fall into bucket ``i``."""
    if i < 1 << (SUB_BITS + 1):
        return i, i + 1
    shift = (i >> SUB_BITS) - 1
    low = ((1 << SUB_BITS) + (i & ((1 << SUB_BITS) - 1))) << shift
    return low, low + (1 << shift)


# The pure-Python hot path (proxies.py) computes bucket_of inline, in two ways by size:
#   SMALL[d] if d < NSMALL else BASE[b] + (d >> SHIFT[b])   (b = d.bit_length())
# then next() on the bucket's counter. Below 4096 ns (most holds of an uncontended lock) a table
# lookup, and every index there is below 257, an int CPython caches: 92-110 ns for the whole
# count, against 105-131 ns for the sqrt(2) index ((d * d).bit_length()) into a list (timeit,
# CPython 3.11, three runs each at 300 and 3,000 ns). Above, the arithmetic and a new int for the
# index: 217-332 ns against 102-161 ns, on a hold of 4 us or more. The table: 32 KB per process.
NSMALL = 4096
# bucket_of(d) for every d below NSMALL, built bucket by bucket rather than d by d (0.3 against 1.9
# ms, timeit, 3.11, loaded machine; made in every process that switches on): 0-63 are their own
# buckets, then each bit length b has 32 buckets of 2 ** (b - SUB_BITS - 1) durations each.
SMALL: tuple[int, ...] = tuple(range(1 << (SUB_BITS + 1))) + tuple(itertools.chain.from_iterable(
    itertools.repeat(((b - SUB_BITS - 1) << SUB_BITS) + k, 1 << (b - SUB_BITS - 1))
    for b in range(SUB_BITS + 2, NSMALL.bit_length()) for k in range(1 << SUB_BITS, 1 << (SUB_BITS + 1))))
SHIFT: tuple[int, ...] = tuple(max(0, b - SUB_BITS - 1) for b in range(64))
BASE: tuple[int, ...] = tuple(max(0, b - SUB_BITS - 1) << SUB_BITS for b in range(64))


def new_counters() -> dict[int, itertools.count[int]]:
    """A live histogram that threads add to without a lock: bucket index -> itertools.count,
    made at its bucket's first duration (``add``). ``next(counters[i])`` adds one to bucket i in a
    single C call, atomic under the GIL and in free-threaded builds; so is
    ``counters.setdefault(i, count())``, which makes every thread that races to fill a new bucket
    count on the same counter. On a list of ints, ``counts[i] += 1`` is a load, an add and a
    store; Python 3.9 may switch threads between any two of them, and two threads releasing locks
    of one site then lose one of their updates (measured: up to 3,300 of 120,000 holds). Empty,
    64 bytes; 100 to 140 bytes more per bucket in use (the counter, the dict's entry, and above
    bucket 256 its key: tracemalloc, 200 sites, ~50 and ~670 buckets each)."""
    return {}


def add(counters: dict[int, itertools.count[int]], d: int) -> None:
    """Count one duration ``d`` (ns) in a live histogram (what the hot path does inline)."""
    i = bucket_of(d)
    try:
        next(counters[i])
    except KeyError:  # the bucket's first duration
        next(counters.setdefault(i, itertools.count()))


def counter_value(counter: itertools.count[int]) -> int:
    """How many times next() was called on a fresh itertools.count (it has no read method: its
    repr is "count(N)")."""
    return int(repr(counter)[6:-1])


def read_counters(counters: dict[int, itertools.count[int]]) -> dict[int, int]:
    """The counts of a live histogram, bucket index -> count. ``counters.copy()`` is one C call:
    another thread adding a bucket meanwhile cannot break the iteration."""
    return {i: n for i, c in sorted(counters.copy().items()) if (n := counter_value(c))}


# -- reading: percentiles of either scale ----------------------------------------------------------


def sqrt2_bucket_of(d: int) -> int:
    """The bucket index of ``d`` in the sqrt(2) scale of older reports."""
    return (d * d).bit_length()


def sqrt2_bucket_bounds(i: int) -> tuple[int, int]:
    if i == 0:
        return 0, 1
    return math.isqrt((1 << (i - 1)) - 1) + 1, math.isqrt((1 << i) - 1) + 1


def nbuckets(scale: str) -> int:
    return NBUCKETS if scale == LOG_LINEAR else SQRT2_NBUCKETS


def bounds(i: int, scale: str = LOG_LINEAR) -> tuple[int, int]:
    return bucket_bounds(i) if scale == LOG_LINEAR else sqrt2_bucket_bounds(i)


def percentile(counts: Mapping[int, int], q: float, max_value: int | None = None,
               total: int | None = None, scale: str = LOG_LINEAR) -> int:
    """The q-quantile (0 < q <= 1, nearest rank) of the recorded durations; 0 when empty.
    ``counts``: bucket index -> count, of the scale named ``scale``.

    Exact where the recorded numbers say it: the largest sample is the exact maximum (p50 of one
    6.02 s hold is 6.02 s, p99 of fewer than 100 samples is their maximum), samples whose total
    is n times the maximum all equal it, and with two samples the smaller one is
    ``total - max_value``. Otherwise the middle of its bucket, within 1/64 (1.6%) of the true
    value (the sqrt(2) scale of older reports: its geometric midpoint, within 19%); the top
    bucket ends at the maximum, so a percentile is never above it."""
    nonzero = sorted(i for i, c in counts.items() if c)
    n = sum(counts[i] for i in nonzero)
    if n == 0:
        return 0
    rank = min(n, max(1, math.ceil(q * n - 1e-9)))
    if max_value is not None and (rank == n or total == n * max_value):
        return max_value  # the largest sample; or every sample, when they all equal the maximum
    of = bucket_of if scale == LOG_LINEAR else sqrt2_bucket_of
    if n == 2 and max_value is not None and total is not None:
        other = total - max_value  # the one sample that is not the maximum
        if 0 <= other <= max_value and of(other) == nonzero[0]:
            return other
    seen = 0
    for i in nonzero:
        seen += counts[i]
        if seen >= rank:
            low, high = bounds(i, scale)
            upper = high - 1
            clamped = False
            if max_value is not None and (i == nonzero[-1] or max_value < upper):
                upper = max(low, min(upper, max_value))  # the samples here are at most the max
                clamped = True
            if scale == LOG_LINEAR:
                return (low + upper + 1) // 2
            edge = 2 ** (i / 2)  # the sqrt(2) bucket's real upper edge
            if clamped:
                edge = min(edge, upper)
            mid = int(round(math.sqrt(2 ** ((i - 1) / 2) * edge))) if i else 0
            return max(low, min(mid, upper))
    return max_value or 0  # pragma: no cover - rank <= n always stops the loop


def to_sqrt2(counts: Mapping[int, int]) -> dict[int, int]:
    """Log-linear counts in the sqrt(2) scale, for merging with an older report: each bucket
    counts in the sqrt(2) bucket of its middle (a log-linear bucket may straddle two of them)."""
    out: dict[int, int] = {}
    for i, c in counts.items():
        low, high = bucket_bounds(i)
        k = sqrt2_bucket_of((low + high - 1) // 2)
        out[k] = out.get(k, 0) + c
    return out


def as_sqrt2(counts: Mapping[int, int], scale: str) -> dict[int, int]:
    """Counts of either scale in the sqrt(2) one (the HTML charts draw those: a log-linear
    bucket is too thin to draw)."""
    return dict(counts) if scale == SQRT2 else to_sqrt2(counts)


def to_sparse(counts: Mapping[int, int]) -> list[list[int]]:
    """Non-empty buckets as ``[[index, count], ...]`` in index order (for JSON)."""
    return [[i, counts[i]] for i in sorted(counts) if counts[i]]


def from_sparse(pairs: Iterable[Sequence[int]]) -> dict[int, int]:
    """Counts from ``[[index, count], ...]`` (a bucket may repeat: its counts add up)."""
    counts: dict[int, int] = {}
    for i, c in pairs:
        if c:
            counts[int(i)] = counts.get(int(i), 0) + int(c)
    return counts


def merged(a: Mapping[int, int], b: Mapping[int, int]) -> dict[int, int]:
    out = dict(a)
    for i, c in b.items():
        out[i] = out.get(i, 0) + c
    return out
