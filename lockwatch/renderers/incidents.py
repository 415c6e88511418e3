"""The text of what really happened: real deadlocks and long hold/wait alerts (watchdog and reports)."""
from __future__ import annotations

from ..model import Alert, Deadlock
from ..settings import EXIT_DEADLOCK
from ..stacks import short_path
from .common import quoted, visible


def summarize(deadlock: Deadlock) -> str:
    """One line: who waits for what held by whom, around the cycle."""
    deadlock = visible(deadlock)
    parts = [f"thread {quoted(t.name)} waits for {t.waiting_for.name if t.waiting_for else None}"
             + (", which it holds itself" if t.blocked_by == t.name else f" held by {quoted(t.blocked_by)}")
             for t in deadlock.threads]
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
    else:
        head = f"{len(threads)} threads have waited{over} for each other"
    lines = ["=" * 78, f"lockwatch: DEADLOCK DETECTED: {head}"]
    for t in threads:
        w = t.waiting_for
        line = f"  thread {quoted(t.name)}"
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
