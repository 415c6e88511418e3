"""Tests for lockwatch.histogram: log-linear buckets, percentiles within 1/64 (the issue asks for
2%) of the true quantile, the sqrt(2) scale of older reports, and the live counters."""
from __future__ import annotations

import itertools
import json
import math
import random
from fractions import Fraction

import pytest
from support import FIXTURES

from lockwatch import histogram, model
from lockwatch.histogram import (
    LOG_LINEAR,
    NBUCKETS,
    SQRT2,
    add,
    bucket_bounds,
    bucket_of,
    from_sparse,
    new_counters,
    percentile,
    read_counters,
    to_sparse,
)
from lockwatch.snapshot import Timing

# Documented in histogram.py: a bucket of the log-linear scale is at most 1/32 of its lowest value
# wide, so its middle is within 1/64 of every value in it (below 64 ns, a bucket is one value).
BOUND = Fraction(1, 64)
TARGET = 0.02  # the issue's: HdrHistogram-style precision, 1-2%


def close(got: int, exact: int) -> bool:
    return abs(got - exact) <= BOUND * exact


def sample_values() -> list[int]:
    rng = random.Random(20240611)
    values = set(range(0, 300))
    for k in range(6, 63):  # both edges of every power of two and of every bucket in a few of them
        step = 1 << (k - 5)
        for low in ([2 ** k + j * step for j in range(32)] if k in (6, 7, 12, 33, 62) else [2 ** k]):
            values.update(v for v in (low - 1, low, low + 1) if 0 <= v < 2 ** 63)
    values.update(rng.randrange(10 ** 12 + 1) for _ in range(5_000))
    values.update(int(10 ** rng.uniform(0, 18)) for _ in range(5_000))
    values.update((10 ** 12, 2 ** 63 - 1))
    return sorted(values)


def counts_of(values: list[int]) -> dict[int, int]:
    counts: dict[int, int] = {}
    for v in values:
        counts[bucket_of(v)] = counts.get(bucket_of(v), 0) + 1
    return counts


def exact_quantile(sorted_values: list[int], q: float) -> int:
    """The smallest value with at least q of the values at or below it."""
    rank = max(1, math.ceil(q * len(sorted_values)))
    return sorted_values[rank - 1]


# -- buckets -------------------------------------------------------------------------------------


def test_bucket_bounds_contain_their_values() -> None:
    for v in sample_values():
        i = bucket_of(v)
        low, high = bucket_bounds(i)
        assert low <= v < high, (v, i, low, high)


def test_buckets_tile_the_integers_below_2_63() -> None:
    # Each bucket starts where the previous one ends: no value falls between two buckets.
    assert bucket_bounds(0) == (0, 1)
    for i in range(1, NBUCKETS):
        low, high = bucket_bounds(i)
        assert low == bucket_bounds(i - 1)[1] and high > low
        assert bucket_of(low) == i and bucket_of(high - 1) == i
    assert bucket_bounds(NBUCKETS - 1)[1] == 2 ** 63


def test_below_64_ns_every_value_is_its_own_bucket() -> None:
    assert [bucket_of(d) for d in range(64)] == list(range(64))
    assert all(bucket_bounds(i) == (i, i + 1) for i in range(64))


def test_bucket_width_is_at_most_a_32nd_of_its_lowest_value() -> None:
    for i in range(64, NBUCKETS):
        low, high = bucket_bounds(i)
        assert 32 * (high - low) <= low
        assert (i - 64) % 32 != 0 or (low & (low - 1)) == 0  # every 32nd bucket starts a power of two


def test_bucket_index_grows_with_the_value() -> None:
    indices = [bucket_of(v) for v in sample_values()]
    assert indices == sorted(indices)


def test_every_duration_below_2_63_ns_has_an_index_below_nbuckets() -> None:
    assert NBUCKETS == 1888
    assert bucket_of(2 ** 63 - 1) == NBUCKETS - 1
    assert all(0 <= bucket_of(v) < NBUCKETS for v in sample_values())


def test_a_negative_duration_counts_as_zero() -> None:
    # A release by another thread can begin before the hold it ends was timed (proxies._release_slow).
    assert bucket_of(-1) == bucket_of(-(10 ** 9)) == bucket_of(0) == 0


def test_the_hot_paths_tables_give_bucket_of() -> None:
    """proxies.py computes bucket_of inline: SMALL[d] below NSMALL, BASE[b] + (d >> SHIFT[b]) above."""
    assert len(histogram.SMALL) == histogram.NSMALL
    assert all(histogram.SMALL[d] == bucket_of(d) for d in range(histogram.NSMALL))
    assert all(i <= 256 for i in histogram.SMALL)  # ints CPython caches: the table path allocates none
    for d in sample_values():
        b = d.bit_length()
        assert histogram.BASE[b] + (d >> histogram.SHIFT[b]) == bucket_of(d), d


# -- percentiles ------------------------------------------------------------------------------------


def distributions() -> dict[str, list[int]]:
    rng = random.Random(99)
    return {
        "constant": [123_456] * 1000,
        "uniform": [rng.randrange(1, 10 ** 6) for _ in range(20_000)],
        "exponential": [int(rng.expovariate(1 / 50_000)) + 1 for _ in range(20_000)],
        "lognormal": [int(rng.lognormvariate(10, 3)) + 1 for _ in range(20_000)],
        "log-uniform, 1 ns to 100 s": [int(10 ** rng.uniform(0, 11)) for _ in range(20_000)],
        "bimodal": [rng.randrange(100, 200) for _ in range(9_000)]
        + [rng.randrange(10 ** 9, 2 * 10 ** 9) for _ in range(1_000)],
        "small integers": [rng.randrange(0, 40) for _ in range(5_000)],
        "seconds": [rng.randrange(10 ** 9, 10 ** 11) for _ in range(5_000)],
        "around 6.02 s": [rng.randrange(6_000_000_000, 6_040_000_000) for _ in range(2_000)],
    }


@pytest.mark.parametrize("name", sorted(distributions()))
@pytest.mark.parametrize("q", [0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.999, 1.0])
def test_percentile_is_within_a_64th_of_the_true_quantile(name: str, q: float) -> None:
    values = sorted(distributions()[name])
    counts = counts_of(values)
    exact = exact_quantile(values, q)
    got = percentile(counts, q, max(values))
    assert close(got, exact) and abs(got - exact) <= TARGET * exact, (name, q, got, exact)
    assert got <= max(values)
    # Without the exact maximum it is still within the bound.
    got = percentile(counts, q)
    assert close(got, exact), (name, q, got, exact)


def test_many_holds_of_about_6_s_do_not_read_as_5_11_s() -> None:
    """The issue: buckets sqrt(2) wide read a p50 over many holds of ~6.02 s as 5.11 s."""
    rng = random.Random(6)
    values = [6_020_000_000 + rng.randrange(-5_000_000, 5_000_000) for _ in range(1_000)]
    t = Timing(len(values), sum(values), max(values), counts_of(values))
    for q in (0.5, 0.9):
        assert abs(t.percentile_ns(q) - exact_quantile(sorted(values), q)) <= TARGET * 6.02e9
    # what the sqrt(2) scale of then reads: its bucket's geometric midpoint (without the maximum)
    old = {histogram.sqrt2_bucket_of(v): len(values) for v in values}
    assert len(old) == 1 and round(percentile(old, 0.5, scale=SQRT2) / 1e7) == 511


def test_percentile_of_a_single_value_for_many_magnitudes() -> None:
    for v in sample_values():
        counts = counts_of([v])
        got = percentile(counts, 0.5)
        assert close(got, v), (v, got)
        assert percentile(counts, 0.99, v) <= v


def test_percentile_separates_fast_from_slow() -> None:
    values = [1_000] * 90 + [1_000_000] * 10
    counts = counts_of(values)
    assert bucket_bounds(bucket_of(1_000)) == (992, 1_008)
    assert percentile(counts, 0.5) == percentile(counts, 0.9) == 1_000  # its bucket's middle
    assert bucket_bounds(bucket_of(1_000_000)) == (999_424, 1_015_808)
    assert percentile(counts, 0.91) == 1_007_616


def test_percentile_of_nothing_is_zero() -> None:
    assert percentile({}, 0.5) == 0
    assert percentile({}, 0.99, 0) == 0
    assert percentile({5: 0}, 0.5) == 0
    assert Timing().percentile_ns(0.5) == 0
    assert Timing().mean_ns == 0.0


# -- percentiles of few samples, and the bound under random data -------------------------------------


def timing_of(values: list[int]) -> Timing:
    return Timing(len(values), sum(values), max(values), counts_of(values))


def test_a_single_hold_reads_as_itself() -> None:
    t = timing_of([6_020_000_000])
    assert t.percentile_ns(0.5) == t.percentile_ns(0.99) == 6_020_000_000
    assert t.to_dict()["p50"] == t.to_dict()["max"] == pytest.approx(6.02)


def test_two_samples_are_both_exact() -> None:
    for a, b in [(3_000, 4_100_000), (1_000, 1_001), (77, 77), (0, 5), (6_020_000_000, 6_030_000_000)]:
        t = timing_of([a, b])
        assert t.percentile_ns(0.5) == min(a, b), (a, b)
        assert t.percentile_ns(0.99) == max(a, b), (a, b)


def test_p99_of_fewer_than_100_samples_is_their_maximum() -> None:
    rng = random.Random(5)
    for n in (3, 10, 57, 99):  # ceil(0.99 n) = n below 100
        values = [rng.randrange(1, 10 ** 9) for _ in range(n)]
        assert timing_of(values).percentile_ns(0.99) == max(values)


@pytest.mark.parametrize("seed", range(40))
def test_random_samples_percentiles_within_the_bound_and_never_above_the_max(seed: int) -> None:
    rng = random.Random(seed)
    n = rng.choice([1, 2, 3, 5, 10, 50, 200, 5_000])
    scale = 10 ** rng.uniform(0, 11)  # 1 ns to 100 s
    values = sorted(max(0, int(rng.lognormvariate(0, rng.uniform(0.01, 3)) * scale)) for _ in range(n))
    t = timing_of(values)
    last = 0
    for q in (0.01, 0.25, 0.5, 0.9, 0.99, 0.999, 1.0):
        exact = exact_quantile(values, q)
        got = t.percentile_ns(q)
        assert got <= max(values), (q, got, values[-3:])
        assert close(got, exact), (n, q, got, exact)
        if n <= 2 or exact == max(values) and values.count(exact) == 1 and q * n > n - 1:
            assert got == exact, (n, q, got, exact)  # the samples themselves
        assert got >= last  # percentiles grow with q
        last = got


def test_samples_that_all_equal_the_maximum_read_exactly() -> None:
    t = timing_of([400_000] * 600)
    assert t.percentile_ns(0.01) == t.percentile_ns(0.5) == 400_000


# -- the sqrt(2) scale of older reports -----------------------------------------------------------


def test_an_older_reports_percentiles_read_back_as_it_wrote_them() -> None:
    """A version 2 report of the lockwatch before the log-linear scale (the golden report of then):
    no histogram_scale, so its buckets are sqrt(2) wide, and each percentile computed from them is
    the one that lockwatch wrote next to them."""
    path = FIXTURES / "report_sqrt2" / "report.json"
    raw = json.loads(path.read_text(encoding="utf-8"))
    saved = model.load(str(path))
    checked = 0
    for data, st in zip(raw["locks"], saved.snapshot.locks):
        for kind in ("hold", "wait"):
            assert "histogram_scale" not in data[kind]
            t = getattr(st, kind)
            assert t.scale == SQRT2 and t.buckets == {i: c for i, c in data[kind]["histogram"]}
            for q, key in ((0.5, "p50"), (0.9, "p90"), (0.99, "p99")):
                assert t.percentile_ns(q) * 1e-9 == pytest.approx(data[kind][key], rel=1e-12, abs=1e-15)
                checked += 1
            # written again, it says which scale it is in (nothing counted: nothing to say)
            assert t.to_dict()["histogram_scale"] == SQRT2 if t.count else t.to_dict() == {"count": 0}
    assert checked == 60


def test_sqrt2_percentile_is_the_bucket_geometric_midpoint() -> None:
    # 2,000 ns: sqrt(2) bucket 22, [1449, 2049): read as 1,722 ns (the old golden report's p50).
    assert histogram.sqrt2_bucket_of(2_000) == 22
    assert percentile({22: 900, 32: 100}, 0.5, 50_000, 6_800_000, SQRT2) == 1_722
    assert percentile({22: 900, 32: 100}, 0.99, 50_000, 6_800_000, SQRT2) == 48_136


def test_merging_an_older_timing_puts_both_in_the_sqrt2_scale() -> None:
    new = timing_of([2_000] * 10 + [3_000_000] * 5)
    old = Timing(3, 3 * 2_000, 2_000, {histogram.sqrt2_bucket_of(2_000): 3}, SQRT2)
    for a, b in ((new, old), (old, new)):
        merged = Timing(**a.__dict__)
        merged.merge(b)
        assert merged.scale == SQRT2
        assert merged.count == 18 and merged.max_ns == 3_000_000
        assert merged.buckets == {histogram.sqrt2_bucket_of(2_000): 13, histogram.sqrt2_bucket_of(3_000_000): 5}
    same = timing_of([2_000])
    same.merge(timing_of([2_000, 7]))
    assert same.scale == LOG_LINEAR and same.buckets == {bucket_of(2_000): 2, 7: 1}


def test_to_sqrt2_counts_a_bucket_in_the_sqrt2_bucket_of_its_middle() -> None:
    for i in range(NBUCKETS):
        low, high = bucket_bounds(i)
        assert histogram.to_sqrt2({i: 3}) == {histogram.sqrt2_bucket_of((low + high - 1) // 2): 3}


# -- sparse form ------------------------------------------------------------------------------------


def test_sparse_round_trip() -> None:
    counts = counts_of(sample_values())
    sparse = to_sparse(counts)
    assert all(c > 0 for _i, c in sparse)
    assert [i for i, _c in sparse] == sorted(counts)
    assert from_sparse(sparse) == counts
    assert from_sparse(json.loads(json.dumps(sparse))) == counts  # as stored in a JSON report


def test_sparse_of_empty_counts() -> None:
    assert to_sparse({}) == []
    assert from_sparse([]) == {}


def test_from_sparse_adds_repeated_buckets() -> None:
    # Merging two reports can concatenate their pairs.
    a, b = counts_of([5, 5, 900]), counts_of([5, 10 ** 9])
    merged = from_sparse(to_sparse(a) + to_sparse(b))
    assert merged == {5: 3, bucket_of(900): 1, bucket_of(10 ** 9): 1}
    assert close(histogram.percentile(merged, 1.0), 10 ** 9)
    assert histogram.percentile(merged, 0.5) == 5


# -- the live histogram ---------------------------------------------------------------------------


def test_live_counters_are_made_at_a_buckets_first_duration() -> None:
    hist = new_counters()
    assert hist == {}
    for d in (5, 5, 1_000, 6_020_000_000, -3):
        add(hist, d)
    assert sorted(hist) == [0, 5, bucket_of(1_000), bucket_of(6_020_000_000)]
    assert all(type(c) is itertools.count for c in hist.values())
    assert read_counters(hist) == {0: 1, 5: 2, bucket_of(1_000): 1, bucket_of(6_020_000_000): 1}


def test_a_sites_memory_grows_with_the_buckets_in_use_not_the_durations() -> None:
    rng = random.Random(7)
    hist = new_counters()
    for _ in range(200_000):
        add(hist, rng.randrange(10 ** 6, 2 * 10 ** 6))  # one power of two and a bit: 33 buckets at most
    assert len(hist) <= 33
    counts = read_counters(hist)
    assert sum(counts.values()) == 200_000
    t = Timing(200_000, 0, 2 * 10 ** 6, counts)
    t.merge(Timing(3, 30, 20, counts_of([10, 10, 10])))
    assert len(t.buckets) <= 34 and t.count == 200_003
