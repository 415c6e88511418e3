"""The text report, in the spirit of lockdep's "possible circular locking dependency"."""
from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping, Sequence
from typing import Any, Optional

from ..model import SEVERITY, Confirmation, LockStats, PotentialDeadlock, Report, Violation
from ..settings import DEFAULT_TOP
from ..stacks import short_path
from .common import (
    LABELS,
    SHOW_LIBRARY,
    confirmation_headline,
    cycle_title,
    edge_words,
    fmt_ns,
    fold_frames,
    folded_frames_text,
    is_library,
    not_listed,
    plural,
    program_first,
    quoted,
    scope_text,
    visible,
)
from .incidents import render_alert, render_deadlock

EXTENSION = ".txt"
RULE = "=" * 78


def _summary(report: Report) -> list[str]:
    found = report.potential_deadlocks
    mine = [p for p in found if p.origin == "user" and p.suppressed is None]
    out = []
    if mine:
        counts: dict[str, int] = {}
        for p in mine:
            counts[p.triage] = counts.get(p.triage, 0) + 1
        parts = [f"{n} {LABELS[t]}" for t, n in sorted(counts.items(), key=lambda kv: SEVERITY.index(kv[0]))]
        out.append(f"lockwatch: {plural(len(mine), 'potential deadlock')} "
                   f"(lock-order inversion{'s' if len(mine) > 1 else ''}): {', '.join(parts)}")
    else:
        out.append("lockwatch: no potential deadlocks found")
    also = []
    stdlib = [p for p in found if p.origin == "stdlib" and p.suppressed is None]
    if stdlib:
        also.append(f"{len(stdlib)} in the standard library")
    suppressed = [p for p in found if p.suppressed is not None]
    if suppressed:
        also.append(f"{len(suppressed)} suppressed")
    known = [p for p in found if p.known]
    if known:
        also.append(f"{len(known)} known from the baseline")
    if report.violations:
        also.append(f"{plural(len(report.violations), 'declared lock order violation')}")
    if also:
        out.append("  also: " + ", ".join(also))
    return out


def render(report: Report, top: int = DEFAULT_TOP, show_library: bool = False, width: Optional[int] = None,
           **options: Any) -> str:
    """The text report. The program's own locks lead; the standard library's and installed
    packages' locks and stack frames are folded (counted) unless ``show_library``. ``width``: the
    terminal's, for the contention tables (see fit() for the rest); None writes them in fixed columns."""
    report = visible(report)  # names, threads, paths: control characters shown as escapes
    snap = report.snapshot
    found = report.potential_deadlocks
    out: list[str] = [RULE]
    out.extend(_summary(report))
    used = [s for s in snap.locks if s.acquisitions or s.failed]  # not modules' idle locks
    mine, folded = program_first(used, show_library)
    library = {s.key for s in snap.locks if is_library(s)}
    edges = [e for e in snap.site_edges if show_library or not (e.src in library and e.dst in library)]
    whose = "" if show_library else " of the program"
    out.append(f"  {plural(len(mine), 'lock creation site')}{whose} in use, "
               f"{plural(sum(s.instances for s in mine), 'lock')}, "
               f"{plural(sum(s.acquisitions for s in mine), 'acquisition')}, "
               f"{plural(len(edges), 'lock-order edge')} between sites")
    if folded:
        out.append(f"  (and {plural(folded, 'site')} of the standard library and installed packages, "
                   f"folded: {SHOW_LIBRARY} shows them)")
    out.append(RULE)
    if report.deadlocks:
        out.append(f"{plural(len(report.deadlocks), 'real deadlock')} happened during the run:")
        out.extend(render_deadlock(d).rstrip("\n") for d in report.deadlocks)
    if report.alerts:
        out.append(f"{plural(len(report.alerts), 'long hold/wait alert')}:")
        out.extend(render_alert(a).rstrip("\n") for a in report.alerts)
        out.append("")
    for v in report.violations:
        out.extend(_violation(v))
    shown = [p for p in found if p.suppressed is None and p.origin == "user"]
    for i, p in enumerate(shown, 1):
        out.extend(_deadlock(i, len(shown), p, show_library))
    stdlib = [p for p in found if p.suppressed is None and p.origin == "stdlib"]
    if stdlib:
        out.append("Potential deadlocks inside the standard library (every lock created by Python's "
                   "own modules; they do not fail a run; suppress them by fingerprint):")
        for i, p in enumerate(stdlib, 1):
            out.extend(_deadlock(i, len(stdlib), p, show_library))
    if report.cycles_not_listed:
        out.append(f"({not_listed(report)})")
        out.append("")
    suppressed = [p for p in found if p.suppressed is not None]
    if suppressed:
        out.append(f"Suppressed ({len(suppressed)}):")
        for p in suppressed:
            out.append(f"  {p.fingerprint}  {cycle_title(p)}  ({p.suppressed})")
        out.append("")
    if report.unused_suppressions:
        out.append(f"{plural(len(report.unused_suppressions), 'suppression')} matched no potential deadlock "
                   "(fixed, not exercised by this run, or a pattern that does not match the sites "
                   "as this report shows them):")
        out.extend(f"  {u}" for u in report.unused_suppressions)
        out.append("")
    if report.baseline_gone:
        out.append(f"{plural(len(report.baseline_gone), 'cycle')} in the baseline no longer seen "
                   "(fixed, or not exercised by this run; remove from the baseline once fixed):")
        for entry in report.baseline_gone:
            out.append(f"  {entry.fingerprint}  " + "; ".join(entry.locks))
        out.append("")
    out.extend(_contention(report, top, show_library, width))
    if snap.internal_errors:
        out.append(f"lockwatch: {plural(len(snap.internal_errors), 'internal error')} while "
                   f"recording (first: {snap.internal_errors[0]})")
    return "\n".join(out).rstrip() + "\n"


def render_violations(violations: Sequence[Violation]) -> str:
    """Just the declared-order violations (for a failing test's message)."""
    violations = visible(violations)
    return "".join("\n".join(_violation(v)) + "\n" for v in violations)


def _violation(v: Violation) -> list[str]:
    held, acq = v.held, v.acquired
    what = ("the declared order " + " -> ".join(v.declared) if v.kind == "declared-order"
            else f"the order key of their site ({_nth(v.declared, 0)} is held, {_nth(v.declared, 1)} is taken)")
    ctx = f", during {v.context}" if v.context else ""
    out = [f"Lock order violation: thread {quoted(v.thread)} took {acq.name} while holding "
           f"{held.name}, against {what}{ctx}",
           f"    {held.name} ({held.kind}, created at {short_path(held.site or '?')}) was taken at:"]
    out.extend(_stack(v.held_stack))
    out.append(f"    then {acq.name} ({acq.kind}, created at {short_path(acq.site or '?')}) was taken at:")
    out.extend(_stack(v.acquire_stack))
    out.extend(["", RULE])
    return out


def _nth(items: Sequence[str], i: int) -> str:
    return items[i] if i < len(items) else "?"


def render_cycles(found: Sequence[PotentialDeadlock], show_library: bool = False) -> str:
    """Just the potential deadlocks (for a failing test's message)."""
    found = visible(found)
    out: list[str] = []
    for i, p in enumerate(found, 1):
        out.extend(_deadlock(i, len(found), p, show_library))
    return "\n".join(out).rstrip("=\n") + "\n"


def _deadlock(i: int, n: int, p: PotentialDeadlock, show_library: bool = False) -> list[str]:
    known = "   (known: in the baseline)" if p.known else ""
    out = [f"Potential deadlock {i} of {n}: {cycle_title(p)}   [{LABELS[p.triage]}]",
           f"  scope: {p.scope}   fingerprint: {p.fingerprint}"
           + (f"   ({p.occurrences} cycles through these sites)" if p.occurrences > 1 else "") + known,
           "  " + scope_text(p)]
    out.extend(f"  {reason}" for reason in p.reasons)
    if p.confirmation is not None:
        out.extend(_confirmation(p.confirmation))
    out.extend(["", "  Locks in the cycle:"])
    width = max(len(lock.name) for lock in p.locks)
    for lock in p.locks:
        out.append(f"    {lock.name:<{width}}  {lock.kind:<16} created at "
                   f"{short_path(lock.filename)}:{lock.line}")
    out.append("")
    for k, e in enumerate(p.edges):
        a, b = p.locks[k], p.locks[(k + 1) % len(p.locks)]
        ctx = f", during {e.context}" if e.context else ""
        what, first, then = edge_words(a.name, b.name, e, ctx)
        out.append(f"  {a.name} -> {b.name}: {what}")
        out.append(f"    {first}:")
        out.extend(_stack(e.held_stack, show_library))
        out.append(f"    {then}:")
        out.extend(_stack(e.acquire_stack, show_library))
        out.append("")
    out.append(RULE)
    return out


def _confirmation(c: Confirmation) -> list[str]:
    out = ["", "  " + confirmation_headline(c)]
    if c.status == "confirmed" and c.reason:
        out.append(f"    {c.reason}")
    if c.tests:
        out.append("    tests run together: " + ", ".join(c.tests))
    if c.schedule:
        out.append("    the steered schedule:")
        out.extend(f"      {step}" for step in c.schedule)
    if c.deadlock is not None:
        out.append("    the real deadlock:")
        for t in c.deadlock.threads:
            w = t.waiting_for
            held = ", ".join(h.name or "?" for h in t.holds)
            out.append(f"      thread {quoted(t.name)} holding {held or 'nothing'} waited for "
                       f"{w.name if w else '?'}" + (f", held by {quoted(t.blocked_by)}" if t.blocked_by else ""))
            out.extend(f"    {line}" for line in _stack(t.stack))
    if c.output:
        out.append("    output of that run:")
        out.extend(f"      | {line}" for line in c.output)
    return out


def _stack(frames: list[str], show_library: bool = True) -> list[str]:
    if not frames:
        return ["      (stack not recorded)"]
    return [f"      {folded_frames_text(f) if isinstance(f, int) else short_path(f)}"
            for f in fold_frames(frames, show_library)]


def _contention(report: Report, top: int, show_library: bool = False, width: Optional[int] = None) -> list[str]:
    out: list[str] = []
    everything = report.most_contended(len(report.snapshot.locks))
    contended, folded_c = program_first(everything, show_library)
    contended = contended[:top]
    everything = report.longest_held(len(report.snapshot.locks))
    held, folded_h = program_first(everything, show_library)
    held = held[:top]
    if contended:
        out.append("Most contended locks (waited for while another thread held them):")
        out.extend(_table(("lock", "kind", "created at", "acquired", "contended", "wait p50", "wait p99", "wait max"),
                          [(s.name, s.kind, _site(s), str(s.acquisitions),
                            f"{s.contended} ({100 * s.contended / max(1, s.acquisitions):.0f}%)",
                            fmt_ns(s.wait.percentile_ns(0.5)), fmt_ns(s.wait.percentile_ns(0.99)),
                            fmt_ns(s.wait.max_ns)) for s in contended], width))
        out.append("")
    if held:
        out.append("Longest-held locks:")
        out.extend(_table(("lock", "kind", "created at", "acquired", "hold mean", "hold p50", "hold p99", "hold max"),
                          [(s.name, s.kind, _site(s), str(s.acquisitions), fmt_ns(s.hold.mean_ns),
                            fmt_ns(s.hold.percentile_ns(0.5)), fmt_ns(s.hold.percentile_ns(0.99)),
                            fmt_ns(s.hold.max_ns)) for s in held], width))
        out.append("")
    if folded_c or folded_h:
        out.append(f"({plural(max(folded_c, folded_h), 'lock')} of the standard library and installed "
                   f"packages folded from these tables: {SHOW_LIBRARY} shows them)")
        out.append("")
    return out


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], width: Optional[int]) -> list[str]:
    """A contention table in fixed columns; on a terminal narrower than that (``width``), each lock
    as two lines: "lock (kind), created at site" whole, then its numbers, in columns when they fit
    and as "label value" pairs wrapped to the width when not."""
    lines = [_row(*header)] + [_row(*row) for row in rows]
    if width is None or all(len(line) <= width for line in lines):
        return lines
    width = max(width, MIN_WIDTH)
    out: list[str] = []
    indent = "      "
    columns = indent + " ".join(f"{c:<{w}}" for c, w in zip(header[3:], _WIDTHS[3:])).rstrip()
    in_columns = len(columns) <= width
    if in_columns:
        out.extend(_what(header[0], header[1], header[2], width))
        out.append(columns)
    for row in rows:
        out.extend(_what(row[0], row[1], row[2], width))
        if in_columns:
            out.append(indent + " ".join(f"{c:<{w}}" for c, w in zip(row[3:], _WIDTHS[3:])).rstrip())
        else:  # "label value" pairs, never split inside one (no-break spaces while wrapping)
            pairs = ", ".join(f"{label} {value}".replace(" ", "\xa0") for label, value in zip(header[3:], row[3:]))
            out.extend(line.replace("\xa0", " ") for line in
                       wrap(pairs, width, indent, indent))
    return out


def _what(name: str, kind: str, site: str, width: int) -> list[str]:
    """"  name (kind), site" in ``width`` columns; else the site on a line of its own, losing its
    start when it must ("…/mod.py:12"). A name is never cut (the terminal wraps one wider than it)."""
    line = f"  {name} ({kind}), {site}"
    if len(line) <= width:
        return [line]
    room = width - 4
    return [f"  {name} ({kind}),", "    " + (site if len(site) <= room else "…" + site[len(site) - room + 1:])]


def _site(s: LockStats) -> str:
    return f"{short_path(s.filename)}:{s.line}"


_WIDTHS = (20, 16, 28, 9, 12, 9, 9, 9)  # the contention tables' columns: lock, kind, site, numbers


def _row(*cells: str) -> str:
    parts = []
    for cell, w in zip(cells, _WIDTHS):
        cell = cell if len(cell) <= w else "…" + cell[-(w - 1):]
        parts.append(f"{cell:<{w}}")
    return "  " + " ".join(parts).rstrip()


_BOLD, _RED, _YELLOW, _DIM, _RESET = "\x1b[1m", "\x1b[31m", "\x1b[33m", "\x1b[2m", "\x1b[0m"


def colorize(text: str) -> str:
    """The text report with ANSI colours for a terminal: findings red, headings bold, stacks dim."""
    out = []
    for line in text.splitlines(keepends=True):
        body = line.rstrip("\n")
        end = line[len(body):]
        if body.startswith(("Potential deadlock ", "Lock order violation")) or "DEADLOCK DETECTED" in body:
            body = f"{_BOLD}{_RED}{body}{_RESET}"
        elif body.startswith("lockwatch: no potential deadlocks"):
            body = f"{_BOLD}{body}{_RESET}"
        elif body.startswith("lockwatch:"):
            body = f"{_BOLD}{_RED}{body}{_RESET}" if "potential deadlock" in body else f"{_BOLD}{body}{_RESET}"
        elif body.startswith(("Most contended", "Longest-held", "Suppressed", "Potential deadlocks inside")):
            body = f"{_BOLD}{body}{_RESET}"
        elif body.startswith("  ") and " -> " in body and "waited for" in body:
            body = f"{_YELLOW}{body}{_RESET}"
        elif body.startswith("      "):
            body = f"{_DIM}{body}{_RESET}"
        out.append(body + end)
    return "".join(out)


def use_color(stream: object, setting: Optional[bool] = None,
              environ: Optional[Mapping[str, str]] = None) -> bool:
    """Colour for the text report on ``stream``: ``setting`` when given (--color / --no-color,
    LOCKWATCH_COLOR); else never with NO_COLOR (https://no-color.org), always with FORCE_COLOR
    (https://force-color.org), each when set to a non-empty value, as pytest reads them; else
    only on a terminal."""
    if setting is not None:
        return setting
    env = os.environ if environ is None else environ
    if env.get("NO_COLOR"):
        return False
    if env.get("FORCE_COLOR"):
        return True
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty and isatty())
    except (OSError, ValueError):
        return False


MIN_WIDTH = 40
_FRAME = re.compile(r"^(?P<indent> +)(?P<path>\S.*?)(?P<tail>:\d+ in .*)$")


def terminal_width(stream: object) -> Optional[int]:
    """The width to fit the report to: the terminal's (or $COLUMNS) when ``stream`` is a
    terminal; None (no fitting: files and pipes keep whole lines for tools) otherwise."""
    isatty = getattr(stream, "isatty", None)
    try:
        if not (isatty and isatty()):
            return None
    except (OSError, ValueError):
        return None
    return _columns()


def _columns() -> int:
    """shutil.get_terminal_size().columns, without shutil (bz2, lzma, zlib), which the text
    renderer, imported by every session that writes a text report, would import only for this."""
    try:
        columns = int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        columns = 0
    if columns > 0:
        return columns
    stdout = sys.__stdout__
    if stdout is None:
        return 80
    try:
        return os.get_terminal_size(stdout.fileno()).columns or 80
    except (AttributeError, ValueError, OSError):
        return 80


def wrap(text: str, width: int, indent: str, subsequent_indent: str) -> list[str]:
    """textwrap.wrap(text, width, initial_indent=indent, subsequent_indent=subsequent_indent,
    break_long_words=False, break_on_hyphens=False) for ``text`` of words between single spaces,
    which is all this renderer wraps: each line as many words as fit, a word wider than a line
    alone on its own. Without textwrap, whose import (its regular expressions compiled) every
    session that writes a text report would pay at start."""
    lines: list[str] = []
    line = ""
    for word in text.split(" "):
        if not word:
            continue
        if not line:
            line = (subsequent_indent if lines else indent) + word
        elif len(line) + 1 + len(word) <= width:
            line += " " + word
        else:
            lines.append(line)
            line = subsequent_indent + word
    if line:
        lines.append(line)
    return lines


def fit(text: str, width: Optional[int]) -> str:
    """The text report fitted to ``width`` columns: sentences wrapped at spaces (continued two
    columns further in), a stack frame's path shortened from the left ("…/pkg/mod.py:12 in f":
    the file, line and function stay whole). The contention tables are laid out for the width
    by render(width=...) and left as they are here."""
    if width is None:
        return text
    width = max(width, MIN_WIDTH)
    out: list[str] = []
    in_table = False  # the rows of a contention table, after its title (which is wrapped as a sentence)
    for line in text.splitlines():
        rows, in_table = in_table and bool(line.strip()), (
            line.startswith(("Most contended locks", "Longest-held locks")) or (in_table and bool(line.strip())))
        if len(line) <= width or rows:
            out.append(line)
            continue
        if set(line) == {"="}:  # a rule
            out.append("=" * width)
            continue
        frame = _FRAME.match(line)
        if frame and " " not in frame.group("path"):
            indent, path, tail = frame.group("indent", "path", "tail")
            room = width - len(indent) - len(tail) - 1
            name = path.rsplit("/", 1)[-1]
            if room >= len(name):
                out.append(f"{indent}…{path[len(path) - room:]}{tail}")
            else:
                out.append(line)  # no room even for the file's name: the terminal wraps it
            continue
        indent = line[:len(line) - len(line.lstrip(" "))]
        room = width - len(indent) - 2
        # a path longer than a line loses its start: "…/pkg/mod.py:12" stays readable
        words = [w if len(w) <= room or "/" not in w else "…" + w[len(w) - room + 1:]
                 for w in line.split()]
        out.extend(wrap(" ".join(words), width, indent, indent + "  ") or [line])
    return "\n".join(out) + ("\n" if text.endswith("\n") else "")

