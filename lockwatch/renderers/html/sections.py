"""The sections of the HTML report: summary, real deadlocks, graph, cycles, violations, locks, charts."""
from __future__ import annotations

from collections.abc import Sequence

from ... import histogram
from ...model import Confirmation, LockInfo, PotentialDeadlock, Report, Timing
from ...sources import parse_frame
from ...stacks import short_path
from ..common import (
    BADGES,
    KNOWN_REASON,
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
    scope_text,
)
from .layout import Graph, clip, focus_layout, full_keys, layered_layout, overview_keys, short_site
from .svg import SourceLines, chart, esc, graph_svg, source_line

# The default graph view draws the cycles and their neighbourhood, never more than this many
# locks: a graph of hundreds of locks drawn whole is a hairball (the whole one is a click away).
FOCUS_LIMIT = 160
# With no cycle, the default view shows this many of the most contended / most connected locks.
OVERVIEW_LIMIT = 30
# The "whole graph" view stops here: beyond it the browser slows down and nothing is legible.
FULL_LIMIT = 2000
FULL_EDGE_LIMIT = 6000
# Rows of the table of locks: the most waited-for (and every lock of a cycle).
TABLE_LIMIT = 2000
# Timing charts for this many locks (those that spent the most time waiting and holding).
CHART_LIMIT = 24


def graph_section(g: Graph, report: Report) -> str:
    out = ['<section id="graph-section"><h2>Lock-order graph</h2>']
    if not g.nodes:
        out.append('<p class="muted">No locks were recorded: nothing to draw.</p></section>')
        return "\n".join(out)
    legend = ('<p class="legend"><span class="key-node"></span> lock (creation site) '
              '<span class="key-edge"></span> A → B: a thread held A and waited for B '
              + ('<span class="key-edge cyc"></span> edge of a potential deadlock '
                 if report.potential_deadlocks else "")
              + '<span class="key-edge timed"></span> timed acquire (can stall, not hang)</p>')
    if report.potential_deadlocks:
        layout, keys, left_out = focus_layout(g, report, FOCUS_LIMIT)
        near = len(keys) - len({lk.key for p in report.potential_deadlocks for lk in p.locks})
        caption = (f"The locks of the {plural(len(report.potential_deadlocks), 'potential deadlock')} "
                   f"and {plural(near, 'lock')} one edge away")
        if left_out:
            caption += f" ({left_out} more one edge away not drawn)"
        caption += f"; {len(keys)} of {plural(len(g.nodes), 'lock')}. Click a lock of a cycle for its details."
    else:
        keys = overview_keys(g, report, OVERVIEW_LIMIT)
        layout = layered_layout(g, keys, max_width=1100)
        caption = (f"No cycles. The {len(keys)} most contended and most connected of "
                   f"{plural(len(g.nodes), 'lock')}, earlier-taken locks above later ones.")
    full, not_drawn = full_keys(g, FULL_LIMIT)
    whole = len(keys) < len(g.nodes)
    out.append(legend)
    if whole:
        back = ("Show the cycles and their neighbourhood" if report.potential_deadlocks
                else "Show the most contended and connected locks")
        out.append(f'<p><button type="button" id="graph-toggle" data-other="{back}">'
                   f"Show the whole graph ({plural(len(g.nodes), 'lock')}, "
                   f"{plural(len(g.edges), 'edge')})</button></p>")
    focus_svg, _ = graph_svg(g, keys, layout, "gf", True)
    out.append(f'<div id="graph-focus"><p class="caption">{esc(caption)}</p>'
               f'<div class="graph-box">{focus_svg}</div></div>')
    if whole:
        full_svg, edges_left = graph_svg(g, full, layered_layout(g, full), "gw", False, FULL_EDGE_LIMIT)
        left = []
        if not_drawn:
            left.append(f"the {plural(not_drawn, 'least connected lock')}")
        if edges_left:
            left.append(plural(edges_left, "edge") + " outside cycles")
        note = ("Whole graph, earlier-taken locks above later ones; scroll to explore."
                + (f" Left out: {' and '.join(left)}." if left else ""))
        # A template is not rendered (nor its nodes counted by the browser) until it is shown.
        out.append(f'<template id="graph-full-template"><p class="caption">{esc(note)}</p>'
                   f'<div class="graph-box scroll">{full_svg}</div></template>'
                   f'<div id="graph-full" hidden></div>')
    out.append("</section>")
    return "\n".join(out)


def _stack_html(frames: Sequence[str], lines: SourceLines, show_library: bool = True) -> str:
    if not frames:
        return '<p class="muted">(stack not recorded)</p>'
    items = []
    for f in fold_frames(list(frames), show_library):
        if isinstance(f, int):
            items.append(f'<li class="folded muted small">{esc(folded_frames_text(f))}</li>')
            continue
        parsed = parse_frame(f)
        if parsed:
            file, line, func = parsed
            src = source_line(lines, file, line)
            items.append(f'<li><span class="frame"><span class="where">{esc(short_path(file))}:{line}</span> '
                         f'in <span class="func">{esc(func)}</span></span>'
                         + (f'<code class="src">{esc(src)}</code>' if src else "") + "</li>")
        else:
            items.append(f'<li><span class="frame">{esc(f)}</span></li>')
    return '<ol class="stack">' + "".join(items) + "</ol>"


def _confirmation_html(c: Confirmation, lines: SourceLines) -> str:
    """What --confirm found: the headline, the steered schedule, the real deadlock's stacks."""
    cls = "risk" if c.status == "confirmed" else "mild"
    out = [f'<div class="edge-detail confirmation"><p><span class="badge {cls}">{esc(c.status)}</span> '
           f"<b>{esc(confirmation_headline(c))}</b></p>"]
    if c.status == "confirmed" and c.reason:
        out.append(f"<p>{esc(c.reason)}</p>")
    if c.tests:
        out.append("<p>Tests run together: " + ", ".join(f"<code>{esc(t)}</code>" for t in c.tests) + "</p>")
    if c.schedule:
        out.append("<h5>The steered schedule</h5><ol>" + "".join(f"<li>{esc(s)}</li>" for s in c.schedule) + "</ol>")
    if c.deadlock is not None:
        out.append('<h5>The real deadlock</h5><div class="stacks">')
        for t in c.deadlock.threads:
            w = t.waiting_for
            held = ", ".join(h.name or "?" for h in t.holds)
            out.append(f"<div><p>thread <code>{esc(t.name)}</code> holding {esc(held or 'nothing')} "
                       f"waited for {esc(w.name if w and w.name else '?')}</p>{_stack_html(t.stack, lines)}</div>")
        out.append("</div>")
    if c.output:
        out.append("<details><summary>Output of that run</summary><pre>"
                   + esc("\n".join(c.output)) + "</pre></details>")
    out.append("</div>")
    return "".join(out)


def _badges(p: PotentialDeadlock) -> str:
    out = [f'<span class="badge {esc(p.scope)}" title="scope">{esc(p.scope)}</span>']
    label, cls = BADGES.get(p.triage, (p.triage, "mild"))
    out.append(f'<span class="badge {cls}">{esc(label)}</span>')
    if p.origin == "stdlib":
        out.append('<span class="badge mild">standard library</span>')
    if p.suppressed is not None:
        out.append('<span class="badge mild">suppressed</span>')
    if p.known:
        out.append('<span class="badge mild">known (baseline)</span>')
    if p.occurrences > 1:
        out.append(f'<span class="badge mild">{p.occurrences} cycles through these sites</span>')
    return " " + " ".join(out)


NO_SOURCE = "<span class=muted>(source not readable here)</span>"


def _cycle_panel(n: int, p: PotentialDeadlock, lines: SourceLines, show_library: bool = False) -> str:
    soft = "" if p.fails else " soft"  # timed, guarded, suppressed, known: cannot fail a run
    out = [f'<details class="cycle{soft}" id="cycle-{n}"><summary>'
           f'<span class="num">{n}</span> <span class="title">{esc(cycle_title(p).replace(" -> ", " → "))}</span> '
           + _badges(p)
           + f' <span class="muted small">threads: {esc(", ".join(p.threads))}</span></summary>',
           f'<div class="panel"><p>{esc(scope_text(p))} '
           f'<span class="muted small">fingerprint <code>{esc(p.fingerprint)}</code></span></p>']
    reasons = list(p.reasons)
    if p.suppressed is not None:
        reasons.append(f"suppressed: {p.suppressed}")
    if p.known:
        reasons.append(KNOWN_REASON)
    if reasons:
        out.append('<ul class="reasons">' + "".join(f"<li>{esc(r)}</li>" for r in reasons) + "</ul>")
    if p.confirmation is not None:
        out.append(_confirmation_html(p.confirmation, lines))
    out += [
           '<h4>Locks in the cycle</h4><div class="scroll-x"><table class="plain"><thead><tr>'
           "<th>lock</th><th>kind</th><th>created at</th><th>source</th></tr></thead><tbody>"]
    for lk in p.locks:
        src = source_line(lines, lk.filename, lk.line)
        out.append(f'<tr><td class="name">{esc(lk.name)}</td><td>{esc(lk.kind)}</td>'
                   f'<td class="mono">{esc(short_path(lk.filename))}:{lk.line}</td>'
                   f'<td>{f"<code class=src>{esc(src)}</code>" if src else NO_SOURCE}</td></tr>')
    out.append("</tbody></table></div><h4>How each lock was taken while another was held</h4>"
               '<p class="muted small">Stacks are innermost frame last, with the source line when '
               "the file is readable here.</p>")
    for k, e in enumerate(p.edges):
        a, b = p.locks[k], p.locks[(k + 1) % len(p.locks)]
        what, first, then = edge_words(a.name, b.name, e)
        if e.wait or e.wake:  # an edge through a wait: edge_words says it all
            out.append(f'<div class="edge-detail"><p><b>{esc(a.name)} → {esc(b.name)}</b>: {esc(what)}'
                       + (f" during <code>{esc(e.context)}</code>" if e.context else "")
                       + '</p><div class="stacks">'
                       f'<div><h5>{esc(first)}</h5>{_stack_html(e.held_stack, lines)}</div>'
                       f'<div><h5>{esc(then)}</h5>{_stack_html(e.acquire_stack, lines)}</div>'
                       "</div></div>")
            continue
        facts = [plural(e.count, "time")]
        if e.timed:
            facts.append('<span class="badge timed">timed acquire: can stall, not hang</span>')
        if e.context:
            facts.append(f"during <code>{esc(e.context)}</code>")
        out.append(f'<div class="edge-detail"><p><b>{esc(a.name)} → {esc(b.name)}</b>: thread '
                   f'<code>{esc(e.thread)}</code> held {esc(a.name)} and waited for {esc(b.name)} '
                   f'({", ".join(facts)})</p><div class="stacks">'
                   f'<div><h5>{esc(a.name)} was taken at</h5>'
                   f'{_stack_html(e.held_stack, lines, show_library)}</div>'
                   f'<div><h5>then {esc(b.name)} was taken at</h5>'
                   f'{_stack_html(e.acquire_stack, lines, show_library)}</div>'
                   "</div></div>")
    out.append("</div></details>")
    return "\n".join(out)


def cycles_section(report: Report, show_library: bool = False) -> str:
    found = report.potential_deadlocks
    if not found:
        return ('<section id="cycles"><h2>Potential deadlocks</h2><p class="ok">No lock-order '
                "inversions: no lock was taken both before and after another.</p></section>")
    out = [f'<section id="cycles"><h2>Potential deadlocks <span class="count">{len(found)}</span></h2>',
           '<p class="muted">Each is a cycle of the lock-order graph: a run that never hung can still '
           'show the inversion that hangs another. Open one for its locks and stacks. '
           '<button type="button" class="linkish" id="open-all">open all</button> · '
           '<button type="button" class="linkish" id="close-all">close all</button></p>']
    out.extend(_cycle_panel(n, p, report.snapshot.source_lines, show_library) for n, p in enumerate(found, 1))
    if report.cycles_not_listed:
        out.append(f'<p class="muted">{esc(not_listed(report)[:1].upper() + not_listed(report)[1:])}.</p>')
    out.append("</section>")
    return "\n".join(out)


def violations_section(report: Report) -> str:
    lines = report.snapshot.source_lines
    found = report.violations
    if not found:
        return ""
    out = [f'<section id="violations"><h2>Declared lock order violations <span class="count">{len(found)}</span></h2>',
           '<p class="muted">Acquisitions against an order declared with <code>lockwatch.order()</code> '
           'or <code>lockwatch.order_key()</code>, at the first acquisition that broke it.</p>']
    for v in found:
        held, acq = v.held, v.acquired
        declared = v.declared
        if v.kind == "declared-order":
            what = "the declared order " + " → ".join(declared)
        else:
            what = "the order key of their site" + (f" ({declared[0]} is held, {declared[1]} is taken)"
                                                    if len(declared) >= 2 else "")
        ctx = f', during <code>{esc(v.context)}</code>' if v.context else ""
        out.append(f'<div class="card alert"><p>thread <code>{esc(v.thread)}</code> took '
                   f'{_lock_desc(acq)} while holding {_lock_desc(held)}, against {esc(what)}{ctx}</p>'
                   f'<div class="stacks"><div><h5>{esc(_name(held))} was taken at</h5>'
                   f'{_stack_html(v.held_stack, lines)}</div>'
                   f'<div><h5>then {esc(_name(acq))} was taken at</h5>'
                   f'{_stack_html(v.acquire_stack, lines)}</div></div></div>')
    out.append("</section>")
    return "\n".join(out)


def baseline_section(report: Report) -> str:
    gone = report.baseline_gone
    out = []
    if gone:
        items = "".join(f'<li><code>{esc(entry.fingerprint)}</code> {esc("; ".join(entry.locks))}</li>'
                        for entry in gone)
        out.append(f'<section id="baseline"><h2>In the baseline, no longer seen <span class="count">{len(gone)}'
                   '</span></h2><p class="muted">Fixed, or not exercised by this run: remove them from the '
                   f'baseline once fixed.</p><ul class="plain-list">{items}</ul></section>')
    unused = report.unused_suppressions
    if unused:
        items = "".join(f"<li><code>{esc(u)}</code></li>" for u in unused)
        out.append(f'<section id="unused-suppressions"><h2>Suppressions that matched nothing '
                   f'<span class="count">{len(unused)}</span></h2><p class="muted">Fixed, not exercised '
                   "by this run, or a pattern that does not match the sites as this report shows them."
                   f'</p><ul class="plain-list">{items}</ul></section>')
    return "\n".join(out)


def _name(lock: LockInfo) -> str:
    return "?" if lock.name is None else lock.name


def _lock_desc(lock: LockInfo) -> str:
    return (f'<b>{esc(_name(lock))}</b>'
            + (f' <span class="muted">({esc(lock.kind or "")}, created at '
               f'<span class="mono">{esc(short_path(lock.site))}</span>)</span>' if lock.site else ""))


def deadlocks_section(report: Report) -> str:
    lines = report.snapshot.source_lines
    if not report.deadlocks and not report.alerts:
        return ""
    out = ['<section id="real"><h2>What really happened</h2>']
    for n, d in enumerate(report.deadlocks, 1):
        threads = d.threads
        over = f" for more than {d.timeout_s:g} s" if d.timeout_s is not None else ""
        if d.waits_for_itself:
            head = f"Deadlock {n}: thread {threads[0].name!r} waited{over} for a lock it holds itself"
        else:
            head = f"Deadlock {n}: {plural(len(threads), 'thread')} waited for each other{over}"
        out.append(f'<div class="card alert deadlock" id="deadlock-{n}"><h3>{esc(head)}</h3>')
        if d.victim:
            out.append(f"<p>lockwatch.DeadlockError was raised in thread <code>{esc(d.victim)}</code> "
                       "to break the cycle.</p>")
        for t in threads:
            line = f'thread <code>{esc(t.name)}</code>'
            if t.waiting_for:
                line += f' waits for {_lock_desc(t.waiting_for)}'
            if t.waiting_s is not None:
                line += f' since {t.waiting_s:.1f} s'
            if t.blocked_by:
                line += f', blocked by thread <code>{esc(t.blocked_by)}</code>'
            holds = "".join(f'<li>holds {_lock_desc(h)}'
                            + (f' <span class="muted">taken at <span class="mono">'
                               f'{esc(short_path(h.taken_at))}</span></span>' if h.taken_at else "") + "</li>"
                            for h in t.holds)
            stack = t.stack
            out.append(f'<div class="thread"><p>{line}</p>'
                       + (f'<ul class="holds">{holds}</ul>' if holds else "")
                       + f'<details><summary>stack ({plural(len(stack), "frame")})</summary>'
                       f'{_stack_html(stack, lines)}</details></div>')
        out.append("</div>")
    if report.alerts:
        out.append(f"<h3>{plural(len(report.alerts), 'long hold/wait alert')}</h3>")
    for a in report.alerts:
        secs_text = f"{a.seconds:.1f} s"
        if a.kind == "long-hold":
            head = (f'{_lock_desc(a.lock)} was held for {secs_text} by thread '
                    f'<code>{esc(a.thread)}</code>'
                    + (f' (taken at <span class="mono">{esc(short_path(a.taken_at))}</span>)'
                       if a.taken_at else ""))
        else:
            head = (f'thread <code>{esc(a.thread)}</code> waited {secs_text} for '
                    f'{_lock_desc(a.lock)}'
                    + (f', held by thread <code>{esc(a.holder)}</code>' if a.holder else ""))
        out.append(f'<div class="card alert"><p><span class="badge">{esc(a.kind)}</span> {head}</p>'
                   f'<details><summary>stack</summary>{_stack_html(a.stack, lines)}</details>'
                   + (f'<details><summary>holder\'s stack</summary>{_stack_html(a.holder_stack, lines)}</details>'
                      if a.holder_stack else "")
                   + "</div>")
    out.append("</section>")
    return "\n".join(out)


def _num(v: float, text: str) -> str:
    return f'<td class="n" data-v="{v}">{esc(text)}</td>'


def locks_section(report: Report, g: Graph, show_library: bool = False) -> str:
    locks = report.snapshot.locks
    out = ['<section id="locks"><h2>Locks <span class="count">' + str(len(locks)) + "</span></h2>"]
    if not locks:
        out.append('<p class="muted">No instrumented lock was created.</p></section>')
        return "\n".join(out)
    out.append('<p class="muted">One row per creation site (all its instances), the program\'s own '
               'first. Click a heading to sort. Counts and maxima are exact; a percentile is the sample '
               'itself when it is the largest (p99 of fewer than 100 samples), else read from histogram '
               'buckets 1/32 of a power of two wide (within 1.6%; in reports of earlier versions of '
               'lockwatch, √2 wide: within 19%).</p>')
    order = sorted(range(len(locks)), key=lambda i: (-locks[i].wait.total_ns, -locks[i].contended,
                                                     -locks[i].acquisitions, i))
    mine = [i for i in order if not is_library(locks[i])]
    theirs = [i for i in order if is_library(locks[i])]
    if show_library:
        out.append(_lock_table(report, g, mine + theirs, "lock-table"))
    else:
        out.append(_lock_table(report, g, mine, "lock-table"))
        if theirs:
            out.append(f'<details class="library-locks"><summary>{plural(len(theirs), "lock")} of the '
                       "standard library and installed packages (folded; "
                       f"<code>{SHOW_LIBRARY}</code> lists them with the program's)</summary>"
                       + _lock_table(report, g, theirs, "library-lock-table") + "</details>")
    out.append("</section>")
    return "\n".join(out)


def _lock_table(report: Report, g: Graph, order: list[int], table_id: str) -> str:
    """A sortable table of the locks ``order`` (indexes into the snapshot's locks, in that order)."""
    lines = report.snapshot.source_lines
    locks = report.snapshot.locks
    out: list[str] = []
    cols = [("lock", "text"), ("kind", "text"), ("created at", "text"), ("instances", "num"),
            ("acquired", "num"), ("contended", "num"), ("failed", "num"),
            ("wait p50", "num"), ("wait p90", "num"), ("wait p99", "num"), ("wait max", "num"),
            ("hold p50", "num"), ("hold p90", "num"), ("hold p99", "num"), ("hold max", "num")]
    out.append(f'<div class="scroll-x"><table class="sortable data" id="{table_id}"><thead><tr>')
    for label, how in cols:
        out.append(f'<th data-sort="{how}" aria-sort="none"><button type="button">{esc(label)}</button></th>')
    out.append("</tr></thead><tbody>")
    total = len(order)
    in_cycles = [i for i in order[TABLE_LIMIT:] if g.nodes[locks[i].key].cycles]
    order = order[:max(0, TABLE_LIMIT - len(in_cycles))] + in_cycles  # every lock of a cycle has a row
    for i in order:
        s = locks[i]
        node = g.nodes.get(s.key)
        mark = (' <a class="cyc-mark" href="#cycle-' + str(node.cycles[0]) + '" title="in potential deadlock '
                + ", ".join(str(n) for n in node.cycles) + '">●</a>') if node and node.cycles else ""
        pct = f" ({100 * s.contended / s.acquisitions:.0f}%)" if s.acquisitions and s.contended else ""
        cells = [f'<td class="name" data-v="{esc(s.name)}">{esc(s.name)}{mark}'
                 + (' <span class="badge">signal</span>' if s.signal else "") + "</td>",
                 f"<td>{esc(s.kind)}</td>",
                 f'<td class="mono" data-v="{esc(s.site)}" title="{esc(source_line(lines, s.filename, s.line))}">'
                 f"{esc(short_path(s.filename))}:{s.line}</td>",
                 _num(s.instances, str(s.instances)), _num(s.acquisitions, str(s.acquisitions)),
                 _num(s.contended, f"{s.contended}{pct}"), _num(s.failed, str(s.failed))]
        for t in (s.wait, s.hold):
            for q in (0.5, 0.9, 0.99):
                v = t.percentile_ns(q)
                cells.append(_num(v, fmt_ns(v) if t.count else "–"))
            cells.append(_num(t.max_ns, fmt_ns(t.max_ns) if t.count or t.max_ns else "–"))
        out.append(f'<tr id="lock-{i}">' + "".join(cells) + "</tr>")
    out.append("</tbody></table></div>")
    if len(order) < total:
        out.append(f'<p class="muted">The {total - len(order)} locks waited for least are not '
                   "listed (the JSON report has them all).</p>")
    return "\n".join(out)


def _timing_text(t: Timing) -> str:
    if not t.count:
        return "none"
    return (f"n={t.count}, p50 {fmt_ns(t.percentile_ns(0.5))}, p99 {fmt_ns(t.percentile_ns(0.99))}, "
            f"max {fmt_ns(t.max_ns)}")


def charts_section(report: Report) -> str:
    rows = [s for s in report.snapshot.locks if any(s.hold.buckets.values()) or any(s.wait.buckets.values())]
    if not rows:
        return ""
    rows.sort(key=lambda s: (-(s.wait.total_ns + s.hold.total_ns), s.key))
    shown = rows[:CHART_LIMIT]
    # Drawn in sqrt(2)-wide buckets (histogram.as_sqrt2): 1/32 of a power of two is too thin to draw.
    nonzero = [i for s in shown for t in (s.hold, s.wait)
               for i, c in histogram.as_sqrt2(t.buckets, t.scale).items() if c]
    lo, hi = max(0, min(nonzero) - 1), max(nonzero) + 1
    # Decades inside the shared range, as tick marks.
    ticks = [10 ** k for k in range(0, 19) if lo <= histogram.sqrt2_bucket_of(10 ** k) <= hi]
    out = ['<section id="timing"><h2>Wait and hold times</h2>',
           '<p class="muted">Distribution of each lock\'s hold times (<span class="sw hold"></span> up) and '
           'wait times when contended (<span class="sw wait"></span> down), on one logarithmic time axis; '
           'each series is scaled to its own peak. '
           + (f"The {len(shown)} of {len(rows)} locks with the most time spent waiting and holding."
              if len(rows) > len(shown) else "")
           + '</p><div class="charts">']
    for s in shown:
        out.append(f'<figure class="card chart"><figcaption><b>{esc(clip(s.name, 40))}</b> '
                   f'<span class="muted small">{esc(s.kind)} · {esc(short_site(s.filename, s.line))}</span>'
                   f'<span class="small"><span class="sw hold"></span>hold {esc(_timing_text(s.hold))}</span>'
                   f'<span class="small"><span class="sw wait"></span>wait {esc(_timing_text(s.wait))}</span>'
                   f"</figcaption>{chart(s, lo, hi, ticks)}</figure>")
    out.append("</div></section>")
    return "\n".join(out)


def headline_cycles(report: Report) -> list[PotentialDeadlock]:
    """The potential deadlocks the headline counts (as the text report): the program's own, not
    suppressed. The others are listed too, labelled."""
    return [p for p in report.potential_deadlocks
            if p.origin == "user" and p.suppressed is None]


def summary(report: Report, g: Graph, show_library: bool = False) -> str:
    snap = report.snapshot
    found = headline_cycles(report)
    # The program's own sites lead (the libraries' are counted in the lock table's folded part).
    mine = snap.locks if show_library else [s for s in snap.locks if not is_library(s)]
    tiles = [(len(found), "potential deadlock", "bad" if found else "good", "#cycles"),
             (len(report.deadlocks), "real deadlock", "bad" if report.deadlocks else "", "#real"),
             (len(report.alerts), "long hold/wait", "warn" if report.alerts else "", "#real"),
             (len(mine), "lock creation site" if show_library else "program lock site", "", "#locks"),
             (sum(s.acquisitions for s in mine), "acquisition", "", "#locks"),
             (len(snap.site_edges), "lock-order edge", "", "#graph-section")]
    out = ['<div class="tiles">']
    for n, word, cls, href in tiles:
        if word in ("real deadlock", "long hold/wait") and not n:
            continue
        many = "long holds/waits" if word == "long hold/wait" else ""
        label = plural(n, word, many).split(" ", 1)[1]
        out.append(f'<a class="tile {cls}" href="{href}"><span class="big">{n:,}</span> {esc(label)}</a>')
    out.append("</div>")
    counts: dict[str, int] = {}
    for p in found:
        counts[p.triage] = counts.get(p.triage, 0) + 1
    facts = [f"{n} {BADGES.get(t, (t, ''))[0]}" for t, n in counts.items()]
    others = report.potential_deadlocks
    stdlib = sum(1 for p in others if p.origin == "stdlib" and p.suppressed is None)
    suppressed = sum(1 for p in others if p.suppressed is not None)
    known = sum(1 for p in others if p.known)
    failing = sum(1 for p in others if p.fails)
    if stdlib:
        facts.append(f"also {stdlib} in the standard library")
    if suppressed:
        facts.append(f"{suppressed} suppressed")
    if known:
        facts.append(f"{known} known from the baseline")
    violations = len(report.violations)
    if violations:
        facts.append(plural(violations, "declared lock order violation"))
    if others:
        facts.append(f"{failing} would fail a run" if failing != 1 else "1 would fail a run")
    if facts:
        out.append('<p class="triage">' + esc(" · ".join(facts)) + "</p>")
    meta = snap.meta or {}
    facts = []
    if meta.get("merged"):
        facts.append(f"merged from {esc(meta['merged'])} reports")
    if meta.get("argv"):
        argv = meta["argv"]
        facts.append("program: <code>" + esc(" ".join(map(str, argv)) if isinstance(argv, list) else argv)
                     + "</code>")
    if meta.get("python"):
        facts.append(f"Python {esc(meta['python'])}")
    if isinstance(meta.get("duration_s"), (int, float)) and 0 <= meta["duration_s"] <= 1e15:
        facts.append(f"ran {meta['duration_s']:.2f} s")
    if meta.get("pid"):
        facts.append(f"pid {esc(meta['pid'])}")
    if facts:
        out.append('<p class="muted small">' + " · ".join(facts) + "</p>")
    if snap.internal_errors:
        out.append(f'<p class="warn-text">{plural(len(snap.internal_errors), "internal error")} while recording '
                   f"(first: {esc(snap.internal_errors[0])})</p>")
    return "\n".join(out)
