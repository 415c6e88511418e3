"""Tests for lockwatch.renderers.html: the self-contained page, against the shop fixture report, an
empty one and a huge one, and in a real headless Chromium."""
from __future__ import annotations

import html as htmllib
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import textwrap
import zlib
from html.parser import HTMLParser
from pathlib import Path
from typing import Optional

import pytest
from support import child_env
from support import load_report_fixture as load_fixture

from lockwatch import histogram
from lockwatch.analysis import Report, analyze
from lockwatch.renderers import html
from lockwatch.stacks import short_path

FIXTURES = Path(__file__).resolve().parent / "fixtures"


fx = load_fixture()


@pytest.fixture(scope="module")
def report() -> Report:
    return fx.shop_report()


@pytest.fixture(scope="module")
def page(report: Report) -> str:
    return html.render(report)


# -- helpers ----------------------------------------------------------------------------------------

VOID = {"meta", "br", "hr", "img", "input", "link", "col", "source", "wbr", "area", "base", "embed", "track"}


class Structure(HTMLParser):
    """Checks that every element is closed in order (the page is hand-written markup), and
    collects what the tests look at."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.ids: list[str] = []
        self.tags: list[tuple[str, dict[str, Optional[str]]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, Optional[str]]]) -> None:
        d = dict(attrs)
        self.tags.append((tag, d))
        if d.get("id"):
            self.ids.append(str(d["id"]))
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, Optional[str]]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1:]}")
            return
        self.stack.pop()


def structure(text: str) -> Structure:
    parser = Structure()
    parser.feed(text)
    parser.close()
    return parser


def svg(page: str, ident: str) -> str:
    m = re.search(rf'<svg id="{ident}".*?</svg>', page, re.S)
    assert m, f"no <svg id={ident!r}>"
    return m.group(0)


def node_names(fragment: str) -> list[str]:
    """The lock names drawn as nodes in an SVG fragment (unescaped)."""
    return [htmllib.unescape(n) for n in re.findall(r'<text class="name"[^>]*>(.*?)</text>', fragment)]


def panel(page: str, n: int) -> str:
    m = re.search(rf'<details class="cycle[^"]*" id="cycle-{n}".*?</details>', page, re.S)
    assert m, f"no panel for potential deadlock {n}"
    return m.group(0)


def esc(text: str) -> str:
    return htmllib.escape(text, quote=True)


# -- the shop fixture ---------------------------------------------------------------------------------


def test_fixture_has_what_the_tests_rely_on(report: Report) -> None:
    shapes = [(p.scope, sorted(lk.name for lk in p.locks)) for p in report.potential_deadlocks]
    assert ("instance", ["_cart_lock", "stock_lock"]) in shapes
    assert ("site", ["ledger_cond", "stock_lock"]) in shapes
    assert ("instance", ["account_lock (instance 1)", "account_lock (instance 2)"]) in shapes  # one site: a self-loop
    assert ("instance", sorted([fx.NASTY, "audit_lock", "report_lock"])) in shapes
    assert len(report.deadlocks) == 2 and len(report.alerts) == 2


def test_page_is_one_well_formed_self_contained_file(page: str) -> None:
    s = structure(page)
    assert not s.errors, s.errors[:5]
    assert s.stack == [], f"unclosed: {s.stack}"
    assert len(s.ids) == len(set(s.ids)), "duplicate ids"
    assert page.startswith("<!DOCTYPE html>")
    # Nothing is fetched: no external scripts, styles, images, fonts or frames.
    for tag, attrs in s.tags:
        assert not ({"src", "srcset"} & set(attrs)), (tag, attrs)
        assert tag not in ("link", "iframe", "img", "object", "embed"), tag
        if tag == "a":
            assert str(attrs.get("href", "")).startswith("#"), attrs
    assert "http://" not in page and "https://" not in page and "//cdn" not in page
    assert "@import" not in page and "url(http" not in page
    assert "default-src 'none'" in page  # and the browser is told to refuse any fetch
    assert page.count("<style>") == 1 and page.count("<script>") == 1


def test_every_lock_of_every_cycle_is_drawn_and_its_edges_are_red(report: Report, page: str) -> None:
    focus = svg(page, "gf")
    drawn = node_names(focus)
    site_names = {s.key: s.name for s in report.snapshot.locks}
    for p in report.potential_deadlocks:
        for lk in p.locks:
            assert site_names[lk.key] in drawn
    cyc_nodes = re.findall(r'<g class="node cyc"', focus)
    assert len(cyc_nodes) == 7  # cart, stock, ledger, account, mail, audit, report
    # Cycle edges: cart<->stock, stock<->ledger, mail->audit->report->mail, account's self-loop.
    red = re.findall(r'<path class="edge cyc[^"]*"', focus)
    assert len(red) == 8
    assert len(re.findall(r'<path class="edge cyc timed"', focus)) == 1  # stock -> ledger_cond
    assert focus.count('marker-end="url(#gf-arrow-cyc)"') == 8
    # The one lock one edge away from a cycle is drawn, not in red; the far ones are not drawn.
    assert "_gate" in drawn and "cache_lock" not in drawn and "log_lock" not in drawn
    assert len(re.findall(r'<path class="edge"', focus)) == 1  # _gate -> _cart_lock
    # Clicking a lock of a cycle opens its panel.
    assert re.search(r'<a href="#cycle-\d+"><g class="node cyc"', focus)


def test_the_whole_graph_is_one_click_away(page: str) -> None:
    assert 'id="graph-toggle"' in page and "Show the whole graph (10 locks, 10 edges)" in page
    template = re.search(r'<template id="graph-full-template">(.*?)</template>', page, re.S)
    assert template
    whole = svg(template.group(1), "gw")
    assert sorted(node_names(whole)) == sorted(s.name for s in fx.shop_snapshot().locks)
    assert len(re.findall(r'<path class="edge', whole)) == 10


def test_cycle_panels_show_locks_sources_threads_and_both_stacks(report: Report, page: str) -> None:
    assert page.count('<details class="cycle') == len(report.potential_deadlocks) == 4
    for n, p in enumerate(report.potential_deadlocks, 1):
        body = panel(page, n)
        assert "<summary>" in body and " open" not in body.split(">", 1)[0]  # closed by default
        assert p.fingerprint in body
        for lk in p.locks:
            assert esc(lk.name) in body
            assert f"{esc(short_path(lk.filename))}:{lk.line}" in body
            source = Path(lk.filename).read_text().splitlines()[lk.line - 1].strip()
            assert f"<code class=src>{esc(source)}</code>" in body  # read with linecache
        for e in p.edges:
            assert f"<code>{esc(e.thread)}</code>" in body
            if e.context:
                assert esc(e.context) in body
            for frame in e.held_stack + e.acquire_stack:
                file, line, func = re.match(r"^(.*):(\d+) in (.*)$", frame).groups()
                assert f"{esc(short_path(file))}:{line}</span> in <span class=\"func\">{esc(func)}" in body
    cart = panel(page, next(n for n, p in enumerate(report.potential_deadlocks, 1)
                            if {lk.name for lk in p.locks} == {"_cart_lock", "stock_lock"}))
    # The held lock's stack comes before the waited-for lock's, innermost frame last.
    assert cart.index("_cart_lock was taken at") < cart.index("then stock_lock was taken at")
    assert "17 times" in cart and "tests/test_cart.py::test_checkout" in cart
    assert "<code class=\"src\">self._reserve(stock)</code>" in cart  # a stack frame's source line
    assert "/srv/shop/main.py:40" in cart  # a file that is not readable here: the frame, no source


def test_triage_suppression_and_timed_edges_are_labelled(report: Report, page: str) -> None:
    labels = {n: p for n, p in enumerate(report.potential_deadlocks, 1)}
    for n, p in labels.items():
        body = panel(page, n)
        for reason in p.reasons:
            assert esc(reason) in body
        if p.suppressed:
            assert "suppressed" in body and esc(fx.SUPPRESSED) in body
            assert 'class="cycle soft"' in body
        if p.triage == "timed":
            assert "timed acquire: can stall, not hang" in body and 'class="cycle soft"' in body
    # The headline counts the program's own unsuppressed cycles, as the text report does.
    assert "<h1>lockwatch: 2 real deadlocks happened, and 3 potential deadlocks found</h1>" in page
    assert "1 suppressed" in page


def test_names_are_escaped_everywhere(page: str) -> None:
    assert "<queue>" not in page and '"outbox"' not in page
    assert esc(fx.NASTY) in page  # mail &lt;queue&gt; &amp; &quot;outbox&quot;
    assert "t-&lt;1&gt;" in page and "t-<1>" not in page  # a thread name in a real deadlock


def test_lock_table_has_every_lock_and_sortable_columns(report: Report, page: str) -> None:
    table = re.search(r'<table class="sortable data" id="lock-table">.*?</table>', page, re.S)
    assert table
    rows = re.findall(r'<tr id="lock-(\d+)">(.*?)</tr>', table.group(0), re.S)
    assert sorted(int(i) for i, _ in rows) == list(range(len(report.snapshot.locks)))
    heads = re.findall(r'<th data-sort="(num|text)" aria-sort="none"><button type="button">(.*?)</button>',
                       table.group(0))
    assert [h for _, h in heads] == ["lock", "kind", "created at", "instances", "acquired", "contended", "failed",
                                     "wait p50", "wait p90", "wait p99", "wait max",
                                     "hold p50", "hold p90", "hold p99", "hold max"]
    cart = next(body for i, body in rows if report.snapshot.locks[int(i)].name == "_cart_lock")
    cells = re.findall(r"<td[^>]*>(.*?)</td>", cart, re.S)
    assert cells[5] == "40 (4%)"
    assert cells[10] == "3 ms"  # wait max
    assert f'data-v="{3_000_000}"' in cart  # sorting uses the exact number, not the text
    # Most waited-for first.
    assert report.snapshot.locks[int(rows[0][0])].name == "_cart_lock"
    assert "function(" in page and "aria-sort" in page  # the sorting script


def test_timing_charts_draw_each_bucket(report: Report, page: str) -> None:
    charts = re.findall(r'<figure class="card chart">.*?</figure>', page, re.S)
    timed = [s for s in report.snapshot.locks if s.hold.buckets or s.wait.buckets]
    assert len(charts) == len(timed) == 10
    cart = next(c for c in charts if "<b>_cart_lock</b>" in c)
    s = report.snapshot.lock(next(x.key for x in timed if x.name == "_cart_lock"))
    assert s is not None
    # drawn in sqrt(2)-wide buckets: the log-linear ones (1/32 of a power of two) are too thin
    assert len(re.findall(r'<rect class="hold"', cart)) == len(histogram.as_sqrt2(s.hold.buckets, s.hold.scale)) == 2
    assert len(re.findall(r'<rect class="wait"', cart)) == len(histogram.as_sqrt2(s.wait.buckets, s.wait.scale)) == 2
    low, high = histogram.sqrt2_bucket_bounds(histogram.sqrt2_bucket_of(3_000_000))
    assert f"wait {html.fmt_ns(low)}–{html.fmt_ns(high)}: 10</title>" in cart


def test_real_deadlocks_and_alerts_are_shown(page: str) -> None:
    real = page[page.index('<section id="real">'):page.index('<section id="graph-section">')]
    assert "Deadlock 1: 2 threads waited for each other for more than 5 s" in real
    assert "thread <code>worker-1</code> waits for <b>stock_lock</b>" in real
    assert "blocked by thread <code>restocker</code>" in real
    assert "DeadlockError was raised in thread <code>worker-1</code>" in real
    assert "Deadlock 2: 2 threads waited for each other</h3>" in real  # only the contract's keys
    assert "/srv/x.py:3</span> in <span class=\"func\">f</span>" in real
    assert "long-hold" in real and "was held for 2.5 s by thread <code>poster</code>" in real
    assert "thread <code>worker-9</code> waited 1.5 s for" in real and "holder's stack" in real


def test_empty_report() -> None:
    page = html.render(fx.empty_report())
    s = structure(page)
    assert not s.errors and s.stack == []
    assert "<h1>lockwatch: No potential deadlocks found</h1>" in page
    assert "No locks were recorded" in page
    assert "<svg" not in page and 'id="lock-table"' not in page and 'id="real"' not in page


def test_no_cycles_shows_the_most_contended_and_connected_locks() -> None:
    snap = fx.huge_snapshot(sites=300, edges=900, cycles=0)
    rep = analyze(snap)
    assert rep.potential_deadlocks == []
    page = html.render(rep)
    focus = svg(page, "gf")
    drawn = node_names(focus)
    assert len(drawn) == html.OVERVIEW_LIMIT
    most = max(snap.locks, key=lambda s: (s.wait.total_ns, s.contended))
    assert most.name in drawn
    assert 'class="edge cyc' not in focus
    assert "Show the most contended and connected locks" in page  # the way back from the whole graph


def test_huge_report_draws_the_cycles_and_a_bounded_neighbourhood() -> None:
    rep = analyze(fx.huge_snapshot())
    assert len(rep.potential_deadlocks) == 30
    page = html.render(rep)
    s = structure(page)
    assert not s.errors and s.stack == []
    focus = svg(page, "gf")
    drawn = node_names(focus)
    assert len(drawn) <= html.FOCUS_LIMIT < 1_000
    cycle_locks = {lk.name for p in rep.potential_deadlocks for lk in p.locks}
    assert len(cycle_locks) == 60 and cycle_locks <= set(drawn)
    assert len(drawn) > len(cycle_locks)  # and some neighbourhood
    assert len(re.findall(r'<path class="edge cyc', focus)) == 60
    assert "not drawn" in page  # says that neighbours were left out
    whole = svg(re.search(r"<template.*?</template>", page, re.S).group(0), "gw")
    assert len(node_names(whole)) == 1_000
    assert page.count('<details class="cycle') == 30
    assert len(re.findall(r'<tr id="lock-', page)) == 1_000
    assert len(re.findall(r'<figure class="card chart">', page)) == html.CHART_LIMIT


def test_cli_writes_the_html_report(tmp_path: Path) -> None:
    """`python -m lockwatch --html PATH` (Session.write_reports) renders through this module."""
    script = FIXTURES / "report_merge" / "abba.py"
    out = tmp_path / "report.html"
    env = child_env()
    proc = subprocess.run([sys.executable, "-m", "lockwatch", "-q", "--html", str(out), str(script)],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    page = out.read_text(encoding="utf-8")
    assert {"lock_a", "lock_b"} <= set(node_names(svg(page, "gf")))
    assert "<code class=src>lock_a = threading.Lock()</code>" in page


# -- in a real browser ----------------------------------------------------------------------------------


def chromium_binary() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        found = shutil.which(name)
        if found:
            return found
    if os.path.exists("/usr/bin/chromium"):
        return "/usr/bin/chromium"
    pytest.skip("headless Chromium not found (Debian: apt-get install chromium; .ci/run installs it)")


def chromium(exe: str, profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-extensions",
         "--hide-scrollbars", "--mute-audio", f"--user-data-dir={profile}", *args],
        capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc


def png_pixels(data: bytes) -> tuple[int, int, int, list[bytes]]:
    """Decode an 8-bit RGB/RGBA non-interlaced PNG (what Chromium writes): width, height, bytes
    per pixel, rows."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat = 8, b""
    while pos < len(data):
        (n,) = struct.unpack(">I", data[pos:pos + 4])
        kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + n]
        pos += 12 + n
        if kind == b"IHDR":
            width, height, depth, ctype, _c, _f, interlace = struct.unpack(">IIBBBBB", body)
            assert depth == 8 and ctype in (2, 6) and interlace == 0
        elif kind == b"IDAT":
            idat += body
    bpp = 3 if ctype == 2 else 4
    raw = zlib.decompress(idat)
    stride = width * bpp
    lo, hi = int.from_bytes(b"\x7f" * stride, "big"), int.from_bytes(b"\x80" * stride, "big")
    prev, rows = bytes(stride), []
    for y in range(height):
        f, line = raw[y * (stride + 1)], raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)]
        if f == 2:  # Up, the common case: bytewise addition without carries, on one big integer
            a, b = int.from_bytes(line, "big"), int.from_bytes(prev, "big")
            line = (((a & lo) + (b & lo)) ^ ((a ^ b) & hi)).to_bytes(stride, "big")
        elif f:
            cur = bytearray(line)
            for x in range(stride):
                left = cur[x - bpp] if x >= bpp else 0
                up = prev[x]
                if f == 1:
                    cur[x] = (cur[x] + left) & 255
                elif f == 3:
                    cur[x] = (cur[x] + ((left + up) >> 1)) & 255
                else:
                    ul = prev[x - bpp] if x >= bpp else 0
                    p = left + up - ul
                    pa, pb, pc = abs(p - left), abs(p - up), abs(p - ul)
                    cur[x] = (cur[x] + (left if pa <= pb and pa <= pc else up if pb <= pc else ul)) & 255
            line = bytes(cur)
        rows.append(line)
        prev = line
    return width, height, bpp, rows


def red_pixels(png: Path) -> int:
    """Pixels close to the cycle red (#c6372c)."""
    _w, _h, bpp, rows = png_pixels(png.read_bytes())
    return sum(1 for row in rows for i in range(0, len(row), bpp)
               if row[i] > 160 and row[i + 1] < 100 and row[i + 2] < 90)


# Run in the page after its own script (every cycle panel opened, so that all of it is laid out):
# each element that sticks out of the page, or whose content is wider than its box (text spilling
# into the next column, or columns hidden behind a horizontal scrollbar), with what it is.
MEASURE = """<script>
(function () {
  document.querySelectorAll('details').forEach(function (d) { d.open = true; });
  var page = document.documentElement.clientWidth, bad = [];
  function describe(el) {
    var s = el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') +
            (el.className && el.className.baseVal === undefined ? '.' + el.className.split(' ').join('.') : '');
    return s + ' "' + (el.textContent || '').trim().slice(0, 50) + '"';
  }
  document.body.querySelectorAll('*').forEach(function (el) {
    if (el.closest('svg') && el.tagName.toLowerCase() !== 'svg') return;  // inside a drawing
    if (el.closest('[hidden]') || el.tagName.toLowerCase() === 'script') return;
    var style = getComputedStyle(el), box = el.getBoundingClientRect();
    if (style.display === 'none' || (box.width === 0 && box.height === 0)) return;
    if (box.right > page + 1 || box.left < -1)
      bad.push(describe(el) + ' sticks out of the page: ' + Math.round(box.left) + '..' +
               Math.round(box.right) + ' of ' + page);
    if (style.display !== 'inline' && el.scrollWidth > el.clientWidth + 1)
      bad.push(describe(el) + ' has content wider than its box: ' + el.scrollWidth + ' > ' + el.clientWidth);
  });
  document.body.setAttribute('data-overflow', JSON.stringify(bad));
})();
</script></body>"""

LONG_PATHS = """
    import threading

    class InventoryReservationLedgerForWarehouseShipments:
        def __init__(self):
            self.inventory_reservation_lock_for_the_warehouse = threading.Lock()
            self.shipment_schedule_lock_for_outgoing_deliveries = threading.RLock()

        def reserve_items_for_an_outgoing_shipment_with_a_long_name(self):
            with self.inventory_reservation_lock_for_the_warehouse:
                with self.shipment_schedule_lock_for_outgoing_deliveries:
                    pass

        def reschedule_every_delivery_after_a_warehouse_inventory_change(self):
            with self.shipment_schedule_lock_for_outgoing_deliveries:
                with self.inventory_reservation_lock_for_the_warehouse:
                    pass

    ledger = InventoryReservationLedgerForWarehouseShipments()
    for work in (ledger.reserve_items_for_an_outgoing_shipment_with_a_long_name,
                 ledger.reschedule_every_delivery_after_a_warehouse_inventory_change):
        worker = threading.Thread(target=work, name="worker-thread-with-a-rather-long-descriptive-name")
        worker.start()
        worker.join()
"""


def long_paths_page(tmp_path: Path) -> Path:
    """The HTML report of a real run of a program deep in folders with long names, run from
    elsewhere so that every path in it is absolute and long."""
    deep = tmp_path.joinpath("company-monorepo-checkout", "services", "warehouse-inventory-service",
                             "src", "warehouse_inventory_service", "domain", "reservations_and_shipments")
    deep.mkdir(parents=True)
    prog = deep / "inventory_reservation_ledger_for_warehouse_shipments.py"
    prog.write_text(textwrap.dedent(LONG_PATHS), encoding="utf-8")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    page = tmp_path / "long-paths.html"
    proc = subprocess.run([sys.executable, "-m", "lockwatch", "-q", "--html", str(page), str(prog)],
                          cwd=elsewhere, env=child_env(), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    text = page.read_text(encoding="utf-8")
    assert str(deep) in text  # the long paths are there to be laid out
    return page


def overflowing(exe: str, tmp_path: Path, page: Path, width: int) -> list[str]:
    """What sticks out, or is wider than its box, in ``page`` at ``width`` CSS pixels."""
    measured = tmp_path / f"measured-{width}-{page.name}"
    measured.write_text(page.read_text(encoding="utf-8").replace("</body>", MEASURE), encoding="utf-8")
    dom = chromium(exe, tmp_path / "profile", f"--window-size={width},1000", "--dump-dom",
                   measured.as_uri()).stdout
    found = re.search(r'<body[^>]*\sdata-overflow="([^"]*)"', dom)
    assert found, "the measuring script did not run"
    return list(json.loads(htmllib.unescape(found.group(1))))


@pytest.mark.timeout(900)  # a dozen browser starts on a busy machine
def test_html_in_chromium(tmp_path: Path) -> None:
    exe = chromium_binary()
    rep = fx.shop_report()
    page_path = tmp_path / "report.html"
    page_path.write_text(html.render(rep), encoding="utf-8")
    url = page_path.as_uri()
    n_cart = next(n for n, p in enumerate(rep.potential_deadlocks, 1)
                  if {lk.name for lk in p.locks} == {"_cart_lock", "stock_lock"})

    # The DOM after the page's script ran: a #cycle-N fragment opens that panel, only that one.
    dom = chromium(exe, tmp_path / "profile", "--dump-dom", f"{url}#cycle-{n_cart}").stdout
    assert 'data-ready="yes"' in dom, "the page's script did not run"
    opened = re.findall(r'<details class="cycle[^"]*" id="cycle-(\d+)"[^>]*\sopen', dom)
    assert opened == [str(n_cart)]
    body = panel(dom, n_cart)
    cycle = rep.potential_deadlocks[n_cart - 1]
    for e in cycle.edges:
        for frame in e.held_stack + e.acquire_stack:
            file, line, func = re.match(r"^(.*):(\d+) in (.*)$", frame).groups()
            assert f"{short_path(file)}:{line}" in body
    focus = svg(dom, "gf")
    for lk in cycle.locks:
        assert lk.name in node_names(focus)

    # #whole-graph shows the whole graph in place of the neighbourhood of the cycles.
    dom = chromium(exe, tmp_path / "profile", "--dump-dom", f"{url}#whole-graph").stdout
    whole = re.search(r'<div id="graph-full">(.*?)</div>\s*</section>', dom, re.S)
    assert whole, "the whole graph was not shown"
    assert sorted(node_names(whole.group(1))) == sorted(s.name for s in rep.snapshot.locks)
    assert re.search(r'<div id="graph-focus" hidden', dom)

    # Clicking a heading sorts the table: numbers largest first, then, clicked again, smallest first.
    # (The test adds the clicks to a copy of the page; the page itself has no test hooks.)
    def acquired_after(clicks: int) -> list[int]:
        clicker = tmp_path / f"sorted-{clicks}.html"
        script = ("<script>var b = document.querySelectorAll('#lock-table th button')[4];"
                  + "b.click();" * clicks + "</script></body>")
        clicker.write_text(page_path.read_text().replace("</body>", script), encoding="utf-8")
        dumped = chromium(exe, tmp_path / "profile", "--dump-dom", clicker.as_uri()).stdout
        table = re.search(r'<table class="sortable data" id="lock-table">.*?</table>', dumped, re.S).group(0)
        assert re.search(r'aria-sort="(de|a)scending"><button type="button">acquired<', table)
        return [int(re.findall(r'<td class="n" data-v="(\d+)">', row)[1])
                for row in re.findall(r"<tr id=\"lock-\d+\">(.*?)</tr>", table, re.S)]

    counts = sorted(s.acquisitions for s in rep.snapshot.locks)
    assert acquired_after(1) == counts[::-1]
    assert acquired_after(2) == counts

    # The picture: saved for people, and the graph is really drawn (red cycle edges and boxes).
    shot = tmp_path / "report.png"
    chromium(exe, tmp_path / "profile", "--window-size=1280,2000", f"--screenshot={shot}", url)
    width, height, _bpp, _rows = png_pixels(shot.read_bytes())
    assert (width, height) == (1280, 2000)
    style = re.search(r"<style>.*?</style>", page_path.read_text(), re.S).group(0)
    alone = tmp_path / "graph.html"
    alone.write_text(f"<!DOCTYPE html><html><head><meta charset='utf-8'>{style}</head><body>"
                     f"{svg(page_path.read_text(), 'gf')}</body></html>", encoding="utf-8")
    graph_shot = tmp_path / "graph.png"
    chromium(exe, tmp_path / "profile", "--window-size=1200,900", f"--screenshot={graph_shot}", alone.as_uri())
    assert red_pixels(graph_shot) > 2_000

    # The layout, measured: at 1280 and 1400 pixels wide nothing sticks out of the page or spills
    # out of its box (stack columns side by side, the lock table's every column), also with long
    # paths and names.
    long_page = long_paths_page(tmp_path)
    for width in (1280, 1400):
        for page in (page_path, long_page):
            assert overflowing(exe, tmp_path, page, width) == [], (page.name, width)
