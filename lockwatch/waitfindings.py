"""Potential deadlocks through waits that are not cycles: thread-pool tasks waiting on futures of their own pool."""
from __future__ import annotations

from .model import EdgeRecord, LockRef, PoolWaitRecord, PotentialDeadlock, Snapshot
from .stacks import stable_path


def pool_findings(snapshot: Snapshot, fingerprint: object) -> list[PotentialDeadlock]:
    """One finding per thread pool (creation site) whose tasks waited on futures of the same
    pool: it hangs as soon as every worker does so at once (concurrent.futures documents it;
    ThreadPoolExecutor(1) hangs at the first). ``fingerprint`` is analysis.fingerprint."""
    out = []
    for pw in snapshot.pool_waits:
        out.append(_finding(pw, fingerprint))
    return out


def _finding(pw: PoolWaitRecord, fingerprint: object) -> PotentialDeadlock:
    filename, _, line = pw.site.rpartition(":")
    key = f"{pw.site}:Future"
    lock = LockRef(key=key, name=f"futures of {pw.name}", kind="Future", filename=filename, line=int(line or 0))
    edge = EdgeRecord(src=key, dst=key, thread=pw.thread, held_stack=list(pw.submit_stack),
                      acquire_stack=list(pw.stack), count=pw.count, timed=pw.timed, context=pw.context,
                      wait="result", wake="pool")
    stable = f"{pw.stable_file or stable_path(filename)}:{pw.function}:{pw.name}:pool-starvation"
    p = PotentialDeadlock("site", [lock], [edge], fingerprint([stable]))  # type: ignore[operator]
    size = f"{pw.max_workers} worker{'s' if pw.max_workers != 1 else ''}"
    depth = (f"{pw.depth} of them waited so at once" if pw.depth < pw.max_workers
             else f"all {pw.max_workers} waited so at once: it hung, or nearly")
    if pw.timed:
        p.triage = "timed"
        p.reasons = [f"timed: tasks of thread pool {pw.name} ({size}) waited with a timeout on futures "
                     f"of their own pool ({depth}): a stall of at most the timeout, not a hang"]
    else:
        p.triage = "starvation"
        p.reasons = [f"starvation: a task of thread pool {pw.name} ({size}) waited on a future of its own "
                     f"pool, {pw.count} time{'s' if pw.count != 1 else ''}; {depth}. The pool hangs as soon "
                     f"as all {pw.max_workers} workers wait so while the futures they wait for are queued "
                     "behind them"]
    if pw.stdlib:
        p.origin = "stdlib"
    return p
