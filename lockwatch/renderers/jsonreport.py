"""The JSON report (format "lockwatch-report", version 1), and reading one back."""
from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

from .. import histogram
from ..errors import UserError
from ..jsonfile import read_json
from ..analysis import PotentialDeadlock, Report
from ..snapshot import EdgeRecord, LockStats, Snapshot, Timing

FORMAT = "lockwatch-report"
VERSION = 1


class ReportError(UserError):
    """A file that is not a lockwatch report this version can read (one line for the user)."""


def _timing(t: Timing) -> dict[str, Any]:
    # Durations in seconds; the histogram as sparse [bucket, count] pairs so reports can merge.
    s = 1e-9
    return {
        "count": t.count, "total": t.total_ns * s, "mean": t.mean_ns * s, "max": t.max_ns * s,
        "p50": t.percentile_ns(0.5) * s, "p90": t.percentile_ns(0.9) * s,
        "p99": t.percentile_ns(0.99) * s, "histogram": histogram.to_sparse(t.buckets),
    }


def _lock(s: LockStats) -> dict[str, Any]:
    return {
        "name": s.name, "kind": s.kind, "site": s.site, "key": s.key, "function": s.function,
        "named": s.named, "signal": s.signal, "value": s.value, "stdlib": s.stdlib,
        "stable_file": s.stable_file,
        "instances": s.instances, "acquisitions": s.acquisitions,
        "contended": s.contended, "failed": s.failed, "hold": _timing(s.hold),
        "wait": _timing(s.wait),
    }


def _edge(e: EdgeRecord) -> dict[str, Any]:
    return asdict(e)


def _deadlock(p: PotentialDeadlock) -> dict[str, Any]:
    return {
        "scope": p.scope,
        "fingerprint": p.fingerprint,
        "occurrences": p.occurrences,
        "triage": p.triage,
        "reasons": p.reasons,
        "gate": p.gate,
        "origin": p.origin,
        "suppressed": p.suppressed,
        "known": p.known,
        "fails": p.fails,
        "locks": [{"name": lk.name, "kind": lk.kind, "site": lk.site, "key": lk.key,
                   "instance": lk.instance} for lk in p.locks],
        "edges": [_edge(e) for e in p.edges],
    }


def to_dict(report: Report) -> dict[str, Any]:
    snap = report.snapshot
    in_graph = _in_graph(snap)
    return {
        "format": FORMAT,
        "version": VERSION,
        "meta": snap.meta,
        "potential_deadlocks": [_deadlock(p) for p in report.potential_deadlocks],
        "deadlocks": report.deadlocks,
        "alerts": report.alerts,
        "order_violations": report.violations,
        "baseline_gone": report.baseline_gone,
        # Locks that were used (modules create many they never take in a given run).
        "locks": [_lock(s) for s in snap.locks if s.acquisitions or s.failed or s.key in in_graph],
        # The whole site-level lock-order graph, so that reports can be merged and re-analysed.
        "lock_order": [_edge(e) for e in snap.site_edges],
        "instance_edges": [_edge(e) for e in snap.instance_edges],
        "internal_errors": snap.internal_errors,
    }


def _in_graph(snap: Snapshot) -> set[str]:
    return {k for e in snap.site_edges for k in (e.src, e.dst)}


def render(report: Report) -> str:
    return json.dumps(to_dict(report), indent=2) + "\n"


def _timing_from(d: dict[str, Any]) -> Timing:
    return Timing(int(d.get("count", 0)), round(d.get("total", 0) * 1e9), round(d.get("max", 0) * 1e9),
                  histogram.from_sparse(d.get("histogram", [])))


def snapshot_from(data: Any, source: str = "report") -> Snapshot:
    """The snapshot inside a JSON report (already parsed). Raises ReportError for anything that
    is not a lockwatch report of a version this one reads."""
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ReportError(f"{source} is not a lockwatch report")
    version = data.get("version")
    if not isinstance(version, int) or version > VERSION:
        raise ReportError(f"{source} is a lockwatch report of version {version}; "
                          f"this lockwatch reads version {VERSION} and older")
    try:
        locks = []
        for d in data.get("locks", []):
            filename, _, line = d["site"].rpartition(":")
            locks.append(LockStats(
                key=d.get("key") or f"{d['site']}:{d['kind']}", name=d["name"], kind=d["kind"],
                filename=filename, line=int(line), function=d.get("function", ""),
                named=bool(d.get("named")), signal=bool(d.get("signal")),
                value=int(d.get("value", 0)), stdlib=bool(d.get("stdlib")),
                stable_file=str(d.get("stable_file", "")),
                instances=int(d.get("instances", 0)),
                acquisitions=int(d.get("acquisitions", 0)), contended=int(d.get("contended", 0)),
                failed=int(d.get("failed", 0)), hold=_timing_from(d.get("hold", {})),
                wait=_timing_from(d.get("wait", {}))))
        fields = set(EdgeRecord.__dataclass_fields__)
        site_edges = [EdgeRecord(**{k: v for k, v in e.items() if k in fields})
                      for e in data.get("lock_order", [])]
        instance_edges = [EdgeRecord(**{k: v for k, v in e.items() if k in fields})
                          for e in data.get("instance_edges", [])]
    except (KeyError, TypeError, ValueError) as exc:
        raise ReportError(f"{source} is a damaged lockwatch report ({type(exc).__name__}: {exc})")
    return Snapshot(locks=locks, site_edges=site_edges, instance_edges=instance_edges,
                    meta=dict(data.get("meta", {})), internal_errors=list(data.get("internal_errors", [])),
                    violations=list(data.get("order_violations", [])))


def load(path: str) -> tuple[Snapshot, list[dict[str, Any]]]:
    """Read a saved report: its snapshot and its recorded real deadlocks."""
    data = read_json(path, "lockwatch report", ReportError)
    return snapshot_from(data, path), list(data.get("deadlocks", []))
