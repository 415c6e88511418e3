"""The text of what really happened: real deadlocks and long hold/wait alerts (watchdog and reports)."""
from __future__ import annotations

from ..model import Alert, Deadlock, DeadlockThread
from ..settings import EXIT_DEADLOCK
from ..stacks import short_path
from .common import quoted, visible, wait_phrase, wakers_phrase


def _waits(t: DeadlockThread) -> str:
    """What a thread waits for, in words, without "thread 'name'"."""
    w = t.waiting_for
    if t.wait is not None:
        return wait_phrase(t.wait, w.kind if w else None, w.name if w else None)
    what = f"waits for {w.name if w else None}"
    if t.blocked_by == t.name:
        return what + ", which it holds itself"
    return what + f" held by {quoted(t.blocked_by)}"


def summarize(deadlock: Deadlock) -> str:
    """One line: who waits for what held (or to be done) by whom, around the cycle."""
    deadlock = visible(deadlock)
    parts = []
    for t in deadlock.threads:
        part = f"thread {quoted(t.name)} {_waits(t)}"
        if t.wait is not None and t.holds:
            part += " while holding " + ", ".join(h.name or "?" for h in t.holds)
        parts.append(part)
    return "deadlock detected by lockwatch: " + "; ".join(parts)


def render_deadlock(deadlock: Deadlock) -> str:
    """PostgreSQL-style: who waits for what, blocked by whom, holding what, where. Only the
    report contract's keys (threads: name, stack) are required: saved reports may come from
    elsewhere."""
    deadlock = visible(deadlock)
    threads = deadlock.threads
    timeout = deadlock.timeout_s
    over = f" more than {timeout:g} s" if timeout is not None else ""
    if deadlock.waits_for_itself:
        head = (f"thread {quoted(threads[0].name)} has waited{over} for a lock it holds itself,"
                " and no other thread can release it")
    elif deadlock.through_waits and len(threads) == 1:
        head = f"thread {quoted(threads[0].name)} has waited{over} for something no other thread can do"
    else:
        head = f"{len(threads)} threads have waited{over} for each other"
    lines = ["=" * 78, f"lockwatch: DEADLOCK DETECTED: {head}"]
    starved = deadlock.starvation
    if starved is not None:
        where = f", created at {short_path(starved.site)}" if starved.site else ""
        lines.append(f"  thread pool {starved.name}{where} is starved: all {starved.workers} of its "
                     f"{starved.max_workers} workers wait on work queued behind them "
                     f"({starved.queued} queued)")
    for t in threads:
        w = t.waiting_for
        line = f"  thread {quoted(t.name)}"
        if t.wait is not None:
            line += " " + _waits(t)
            if w and w.site:
                line += f" ({w.kind} created at {short_path(w.site)})"
            if t.waiting_s is not None:
                line += f" since {t.waiting_s:.1f} s"
            if starved is not None and t.name in t.wakers:
                line += (", queued behind the work of the pool's workers "
                         + ", ".join(quoted(w) for w in t.wakers) + ", which all wait")
            else:
                line += wakers_phrase(t.wakers)
        else:
            if w:
                line += f" waits for {w.name} ({w.kind}, created at {short_path(w.site or '?')})"
            if t.waiting_s is not None:
                line += f" since {t.waiting_s:.1f} s"
            if t.blocked_by:
                line += f", blocked by thread {quoted(t.blocked_by)}"
        lines.append(line)
        for h in t.holds:
            where = f", taken at {short_path(h.taken_at)}" if h.taken_at else ""
            lines.append(f"    holds {h.name} ({h.kind}, created at {short_path(h.site or '?')}{where})")
        lines.append("    stack:")
        if t.stack:
            lines.extend(f"      {short_path(f)}" for f in t.stack)
        else:
            lines.append("      (unknown)")
    if deadlock.policy == "raise" and deadlock.victim:
        lines.append(f"  lockwatch.DeadlockError is raised in thread {quoted(deadlock.victim)} to break the cycle")
    elif deadlock.policy == "raise":
        lines.append("  no thread of it waits where lockwatch can raise (a lock or a join): the threads keep waiting")
    elif deadlock.policy == "exit":
        lines.append(f"  the process ends now with status {EXIT_DEADLOCK}")
    elif deadlock.policy == "report":
        lines.append("  the threads keep waiting (policy: report)")
    lines.append("=" * 78)
    return "\n".join(lines) + "\n"


def render_alert(alert: Alert) -> str:
    alert = visible(alert)
    lock = alert.lock
    what = f"{lock.name} ({lock.kind}, created at {short_path(lock.site or '?')})"
    if alert.kind == "long-hold":
        head = (f"lockwatch: {what} has been held for {alert.seconds:.1f} s by thread "
                f"{quoted(alert.thread)} (still held; taken at {short_path(alert.taken_at or '?')})")
    else:
        head = (f"lockwatch: thread {quoted(alert.thread)} has waited {alert.seconds:.1f} s for {what}"
                + (f", held by thread {quoted(alert.holder)}" if alert.holder else ""))
    lines = [head, "  stack:"] + [f"    {short_path(f)}" for f in alert.stack]
    if alert.holder_stack:
        lines += ["  holder's stack:"] + [f"    {short_path(f)}" for f in alert.holder_stack]
    return "\n".join(lines) + "\n"
