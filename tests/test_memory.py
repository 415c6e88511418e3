"""Bounded memory: edges die with their instances, so a long-lived lock taken around many
short-lived ones keeps nothing per dead one (compared round against round, never with time)."""
from __future__ import annotations

import gc
import threading
import tracemalloc

import pytest

import lockwatch
from lockwatch import recorder
from lockwatch.snapshot import site_key

pytestmark = pytest.mark.timeout(120)

ROUNDS, REQUESTS = 5, 2_000


def _requests(log_lock: threading.Lock, inner: bool) -> None:
    """Per-request locks, each taken with the long-lived "logging" lock: inside it (request ->
    log edges, kept in the log lock) or around it (log -> request edges, listed by the log lock)."""
    for _ in range(REQUESTS):
        request = threading.Lock()
        if inner:
            with request:
                with log_lock:
                    pass
        else:
            with log_lock:
                with request:
                    pass


@pytest.mark.parametrize("inner", [True, False], ids=["lock-around-logging", "logging-around-lock"])
def test_long_lived_lock_keeps_nothing_per_dead_short_lived_lock(inner):
    with lockwatch.watching() as session:
        log_lock = threading.Lock()
        sizes, traced = [], []
        tracemalloc.start()
        try:
            for _ in range(ROUNDS):
                _requests(log_lock, inner)
                gc.collect()
                sizes.append((len(log_lock._in or {}), len(getattr(log_lock, "_out", None) or ()),
                              len(getattr(recorder, "live", ()))))
                traced.append(tracemalloc.get_traced_memory()[0])
        finally:
            tracemalloc.stop()
        snap = session.snapshot()
    # The site pair's edge stays (one per site pair, with its stacks): the finding is not lost.
    assert len(snap.site_edges) == 1
    # Instance edges, the registry of live locks: what the last round left, not what all did.
    assert sizes[1] == sizes[4], sizes
    assert max(sizes[4][:2]) <= 1, sizes
    # Round 2 against round 5: one edge per request was ~200 bytes a request (400 KB a round).
    assert traced[4] - traced[1] < 100_000, traced


def test_dead_instance_edges_still_count_in_their_site_edge(threads):
    """The first pair of a site pair was taken under a gate lock; a later pair, by another thread,
    without it. The later request lock is dropped: its edge goes, but the site edge must still
    say that the gate was not always held and that two threads took it."""

    def request(gate):
        r = threading.Lock()
        if gate is not None:
            with gate:
                with r:
                    with log_lock:
                        pass
        else:
            with r:
                with log_lock:
                    pass
        return r

    with lockwatch.watching() as session:
        log_lock, gate = threading.Lock(), threading.Lock()
        keep = [request(gate)]  # the first pair stays alive: the site edge is its edge
        threads.run(lambda: request(None) and None)  # dropped at once
        gc.collect()
        snap = session.snapshot()
    src, dst = site_key(keep[0]._site), site_key(log_lock._site)
    [edge] = [e for e in snap.site_edges if (e.src, e.dst) == (src, dst)]
    assert edge.gates == []
    assert edge.multi
    assert keep
