"""A report is untrusted input: `lockwatch report` reads no file because a report names it, every
malformed report is one line and status 2, and names cannot reach a terminal or a page as markup
or control characters."""
from __future__ import annotations

import builtins
import copy
import io
import json
import linecache
import os
import sys
from pathlib import Path
from typing import Any, Callable

import pytest
from support import FIXTURES, PROJECT_ROOT, child_env, load_report_fixture, lockwatch, write

from lockwatch import cli, renderers
from lockwatch.escapes import printable

pytestmark = pytest.mark.timeout(300)

GOLDEN = json.loads((FIXTURES / "report_golden" / "report.json").read_text(encoding="utf-8"))
V1 = json.loads((FIXTURES / "report_v1" / "report.json").read_text(encoding="utf-8"))  # still read
GATED = next(i for i, row in enumerate(GOLDEN["lock_order"]) if len(row) >= 13)  # an edge with a gate
SECRET = "lockwatch-test-secret-4f1c9"  # in the child's environment: /proc/self/environ holds it
FORMATS = ("text", "html", "dot", "graphml")


def report_naming(paths: list[str]) -> dict[str, Any]:
    """A report whose locks were 'created' in ``paths`` and taken in a cycle, with stacks there."""
    locks, edges = [], []
    for i, p in enumerate(paths):
        locks.append({"name": f"lock{i}", "kind": "Lock", "site": f"{p}:1", "key": f"k{i}", "acquisitions": 1})
    for i, p in enumerate(paths):
        nxt = paths[(i + 1) % len(paths)]
        edges.append({"src": f"k{i}", "dst": f"k{(i + 1) % len(paths)}", "thread": f"t{i}",
                      "held_stack": [f"{p}:1 in f", f"{p}:2 in g"], "acquire_stack": [f"{nxt}:1 in h"]})
    edges.append({"src": "k1", "dst": "k0", "thread": "back", "held_stack": [f"{paths[1]}:1 in f"],
                  "acquire_stack": [f"{paths[0]}:1 in g"]})
    return {"format": "lockwatch-report", "version": 1, "locks": locks, "lock_order": edges}


# -- nothing is read because a report names it ------------------------------------------------------


@pytest.mark.skipif(sys.platform != "linux", reason="/proc, /dev/zero and FIFOs as on Linux")
def test_a_crafted_report_reads_no_file_outside_the_project(tmp_path: Path) -> None:
    project = tmp_path / "project"
    write(project / "app.py", "import threading\nmine = threading.Lock()  # the project own line\n")
    outside = write(tmp_path / "elsewhere" / "settings.py", f"TOKEN = '{SECRET}-outside'\n")
    (project / "link.py").symlink_to(outside)  # a symlink out of the project
    (project / "passwd.py").symlink_to("/etc/passwd")
    fifo = project / "pipe.py"
    os.mkfifo(fifo)  # opening it for reading would wait for a writer for ever
    named = ["/etc/passwd", "/proc/self/environ", "/dev/zero", str(fifo), str(outside),
             str(project / "link.py"), "passwd.py", str(project / "app.py")]
    (project / "crafted.json").write_text(json.dumps(report_naming(named)))
    passwd = Path("/etc/passwd").read_text().splitlines()[0]
    for fmt in ("html", "json", "text"):
        proc = lockwatch("report", "crafted.json", "--format", fmt, cwd=project, timeout=60,
                         env=child_env(LOCKWATCH_TEST_SECRET=SECRET))
        assert proc.returncode == 0, proc.stderr
        assert SECRET not in proc.stdout and passwd not in proc.stdout, fmt
        assert "root:" not in proc.stdout, fmt
        if fmt in ("html", "json"):
            assert "mine = threading.Lock()  # the project own line" in proc.stdout, fmt
    assert fifo.exists() and outside.read_text() == f"TOKEN = '{SECRET}-outside'\n"


def test_the_recording_process_embeds_the_lines_and_they_are_shown_without_the_files(tmp_path: Path) -> None:
    run = tmp_path / "run"
    prog = write(run / "prog.py", """
        import threading
        first_lock = threading.Lock()
        second_lock = threading.Lock()
        with first_lock:
            with second_lock:  # nested here
                pass
        with second_lock:
            with first_lock:  # and the other way round here
                pass
    """)
    proc = lockwatch("-q", "--json", "r.json", "prog.py", cwd=run, env=child_env(tmp_path / "tmp"))
    assert proc.returncode == 0, proc.stderr
    data = json.loads((run / "r.json").read_text())
    lines = data["source_lines"][str(prog)]
    assert "with second_lock:  # nested here" in lines.values()
    assert "first_lock = threading.Lock()" in lines.values()
    prog.unlink()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    proc = lockwatch("report", str(run / "r.json"), "-f", "html", cwd=elsewhere)
    assert proc.returncode == 0, proc.stderr
    assert "with first_lock:  # and the other way round here" in proc.stdout
    assert "first_lock = threading.Lock()" in proc.stdout


def test_renderers_open_no_file(monkeypatch: pytest.MonkeyPatch) -> None:
    report = load_report_fixture().shop_report()
    opened: list[Any] = []

    def refuse(name: str, real: Callable[..., Any]) -> Callable[..., Any]:
        def fake(*args: Any, **kwargs: Any) -> Any:
            opened.append((name, args[:1]))
            return real(*args, **kwargs)
        return fake

    from lockwatch import sources

    for fmt in renderers.FORMATS:
        renderers.render(report, fmt)  # once before: what a renderer imports is read then
    for where, name in ((builtins, "open"), (io, "open"), (linecache, "getline"), (linecache, "getlines"),
                        (linecache, "updatecache"), (sources, "read_lines")):
        monkeypatch.setattr(where, name, refuse(name, getattr(where, name)))
    outputs = {fmt: renderers.render(report, fmt) for fmt in renderers.FORMATS}
    monkeypatch.undo()
    assert opened == [], opened
    assert "self._cart_lock = threading.Lock()" in outputs["html"]  # from the report itself


# -- malformed reports: one line, status 2 -----------------------------------------------------------


def damaged(edit: Callable[[dict[str, Any]], Any], base: Any = GOLDEN) -> bytes:
    data = copy.deepcopy(base)
    edit(data)
    return json.dumps(data).encode()


def damaged_json(edit: Callable[[dict[str, Any]], Any], base: Any = GOLDEN) -> Any:
    data = copy.deepcopy(base)
    edit(data)
    return data


def setting(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def edit(data: dict[str, Any]) -> None:
        *parents, last = [int(p) if p.isdigit() else p for p in path.split(".")]
        target: Any = data
        for p in parents:
            target = target[p]
        target[last] = value
    return edit


def dropping(path: str) -> Callable[[dict[str, Any]], None]:
    def edit(data: dict[str, Any]) -> None:
        *parents, last = [int(p) if p.isdigit() else p for p in path.split(".")]
        target: Any = data
        for p in parents:
            target = target[p]
        del target[last]
    return edit


NAN, INF = float("nan"), float("inf")
HUGE = 10**400
MALFORMED: dict[str, bytes] = {
    # not a report at all
    "empty file": b"",
    "a NUL byte": b"\x00",
    "not UTF-8": b"\xff\xfe{\"format\": \"lockwatch-report\"}",
    "a number at the top": b"42",
    "a string at the top": b'"lockwatch-report"',
    "a list at the top": b"[]",
    "null": b"null",
    "truncated": json.dumps(GOLDEN).encode()[:5000],
    "nested 100000 deep": b"[" * 100_000 + b"]" * 100_000,
    "meta nested 200 deep": damaged(setting("meta", json.loads("[" * 200 + "]" * 200))),
    "another format": damaged(setting("format", "lockwatch-baseline")),
    # the version
    "no version": damaged(dropping("version")),
    "version a string with escapes": damaged(setting("version", "\x1b]0;pwned\x07")),
    "version huge": damaged(setting("version", HUGE)),
    "version true": damaged(setting("version", True)),
    "version 0": damaged(setting("version", 0)),
    "version 3": damaged(setting("version", 3)),
    "version 1 with version 2 edges": damaged(setting("version", 1)),
    # sections of the wrong type
    "locks an object": damaged(setting("locks", {})),
    "lock_order a string": damaged(setting("lock_order", "edges")),
    "deadlocks an object": damaged(setting("deadlocks", {"a": 1})),
    "alerts a number": damaged(setting("alerts", 3)),
    "meta a list": damaged(setting("meta", [1, 2])),
    "internal_errors a list of lists": damaged(setting("internal_errors", [[[]]])),
    "source_lines a list": damaged(setting("source_lines", ["x"])),
    "source_lines bad line number": damaged(setting("source_lines", {"a.py": {"x": "y"}})),
    "source_lines a number as text": damaged(setting("source_lines", {"a.py": {"3": 4}})),
    # a lock
    "lock not an object": damaged(setting("locks.0", "lock")),
    "lock without a name": damaged(dropping("locks.0.name")),
    "lock without a site": damaged(dropping("locks.0.site")),
    "site without a line": damaged(setting("locks.0.site", "cart.py")),
    "site with 5000 digits": damaged(setting("locks.0.site", "cart.py:" + "9" * 5000)),
    "site with a superscript digit": damaged(setting("locks.0.site", "cart.py:\u00b2")),
    "acquisitions a string": damaged(setting("locks.0.acquisitions", "1000")),
    "acquisitions negative": damaged(setting("locks.0.acquisitions", -1)),
    "contended 10**400": damaged(setting("locks.1.contended", HUGE)),
    "hold total NaN": damaged(setting("locks.0.hold.total", NAN)),
    "hold max Infinity": damaged(setting("locks.1.hold.max", INF)),
    "wait total -1e300": damaged(setting("locks.1.wait.total", -1e300)),
    "histogram bucket -1": damaged(setting("locks.0.hold.histogram", [[-1, 3]])),
    "histogram bucket 10**6": damaged(setting("locks.0.hold.histogram", [[10**6, 3]])),
    "histogram count 10**400": damaged(setting("locks.0.hold.histogram", [[3, HUGE]])),
    "histogram pair of three": damaged(setting("locks.0.hold.histogram", [[1, 2, 3]])),
    "histogram bucket 1888": damaged(setting("locks.0.hold.histogram", [[1888, 3]])),
    "sqrt2 histogram bucket 128": damaged(setting("locks.0.hold.histogram_scale", "sqrt2"),
                                          damaged_json(setting("locks.0.hold.histogram", [[128, 3]]))),
    "histogram bucket 128 of a report without a scale": damaged(setting("locks.0.wait.histogram", [[128, 3]]), V1),
    "histogram scale unknown": damaged(setting("locks.0.hold.histogram_scale", "log-linear-64")),
    "histogram scale with escapes": damaged(setting("locks.0.wait.histogram_scale", "\x1b]0;pwned\x07")),
    "histogram scale a number": damaged(setting("locks.1.hold.histogram_scale", 32)),
    "named a string": damaged(setting("locks.0.named", "yes")),
    # an edge of a version 1 report
    "edge without src": damaged(dropping("lock_order.0.src"), V1),
    "held_stack missing": damaged(dropping("lock_order.0.held_stack"), V1),
    "acquire_stack of numbers": damaged(setting("lock_order.0.acquire_stack", [1, 2]), V1),
    "count NaN": damaged(setting("lock_order.0.count", NAN), V1),
    "src_instance negative": damaged(setting("instance_edges.0.src_instance", -5), V1),
    "gate_instances of strings": damaged(setting("lock_order.0.gate_instances", ["a"]), V1),
    "timed a number": damaged(setting("lock_order.0.timed", 1), V1),
    # an edge of a version 2 report, and the tables it refers to
    "edge_fields missing": damaged(dropping("edge_fields")),
    "edge_fields without src": damaged(setting("edge_fields", ["dst", "thread", "held_stack", "acquire_stack"])),
    "edge_fields twice src": damaged(setting("edge_fields", ["src", "src", "dst", "thread", "held_stack",
                                                             "acquire_stack"])),
    "edge row an object": damaged(setting("lock_order.0", {"src": 0})),
    "edge row too short": damaged(setting("lock_order.0", [0, 1, 0, 0])),
    "edge row too long": damaged(setting("lock_order.0", [0, 1, 0, 0, 1] + [None] * 20)),
    "src index past sites": damaged(setting("lock_order.0.0", 10**6)),
    "dst index negative": damaged(setting("lock_order.0.1", -1)),
    "thread index a string": damaged(setting("lock_order.0.2", "worker-1")),
    "held_stack index past stacks": damaged(setting("lock_order.0.3", 10**6)),
    "acquire_stack index true": damaged(setting("instance_edges.0.4", True)),
    "acquire_stack index 2**63": damaged(setting("instance_edges.0.4", 2**63)),
    "edge src_instance negative": damaged(setting("instance_edges.0.5", -5)),
    "edge count a float": damaged(setting("lock_order.0.7", 1.5)),
    "edge timed a number": damaged(setting("lock_order.0.8", 1)),
    "edge context a number": damaged(setting("lock_order.0.10", 7)),
    "edge gates past sites": damaged(setting(f"lock_order.{GATED}.11", [10**6])),
    "edge gates without gate_instances": damaged(setting(f"lock_order.{GATED}.12", [])),
    "stack frame index past frames": damaged(setting("stacks.0.0", 10**6)),
    "stack frame index a string": damaged(setting("stacks.0.0", "main.py:1 in f")),
    "stack not a list": damaged(setting("stacks.0", 3)),
    "frames of numbers": damaged(setting("frames.0", 3)),
    "sites of lists": damaged(setting("sites.0", [])),
    "thread not a pair": damaged(setting("threads.0", ["worker-1"])),
    "threads an object": damaged(setting("threads", {"0": ["a", "b"]})),
    # the watchdog's findings
    "deadlock thread without a name": damaged(dropping("deadlocks.0.threads.0.name")),
    "deadlock stack a string": damaged(setting("deadlocks.0.threads.0.stack", "frames")),
    "waiting_s NaN": damaged(setting("deadlocks.0.threads.0.waiting_s", NAN)),
    "detected_at 1e400": damaged(setting("deadlocks.0.detected_at", HUGE)),
    "alert seconds a string": damaged(setting("alerts.0.seconds", "3.5")),
    "alert without thread": damaged(dropping("alerts.0.thread")),
    "violation without held": damaged(dropping("order_violations.0.held")),
    "violation declared a string": damaged(setting("order_violations.0.declared", "a,b")),
}


def test_there_are_at_least_49_malformed_reports() -> None:
    assert len(MALFORMED) >= 49


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_a_malformed_report_is_one_line_and_status_2(case: str, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "report.json"
    path.write_bytes(MALFORMED[case])
    for fmt in FORMATS:
        status = cli.main(["report", str(path), "--format", fmt], prog_name="lockwatch")
        out, err = capsys.readouterr()
        assert status == 2, (fmt, err)
        assert out == ""
        assert err.startswith("lockwatch report: error: ") and err.count("\n") == 1, (fmt, err)
        assert "\x1b" not in err and "Traceback" not in err


# -- names cannot act on a terminal or a page -------------------------------------------------------

NASTY = "\x1b]0;pwned\x07\x1b[2K\r\u202egnp.exe\b\u2066\u200f\ud800"
SHOWN = "\\x1b]0;pwned\\x07\\x1b[2K\\r\\u202egnp.exe\\x08\\u2066\\u200f\\ud800"
BAD = set("\x1b\x07\r\b\u202e\u2066\u200f\ud800")


def nasty_report() -> dict[str, Any]:
    data = copy.deepcopy(GOLDEN)
    for lk in data["locks"]:
        lk["name"] = NASTY + lk["name"]
    for t in data["threads"]:
        t[0] = NASTY
    data["frames"].append(f"/x/{NASTY}.py:3 in f{NASTY}")
    for stack in data["stacks"]:
        stack.insert(0, len(data["frames"]) - 1)
    for d in data["deadlocks"]:
        for t in d["threads"]:
            t["name"] = NASTY
    for a in data["alerts"]:
        a["thread"] = NASTY
    return data


@pytest.mark.parametrize("fmt", FORMATS)
def test_control_characters_and_bidi_overrides_are_shown_as_escapes(fmt: str, tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "nasty.json"
    path.write_text(json.dumps(nasty_report()))
    status = cli.main(["report", str(path), "--format", fmt], prog_name="lockwatch")
    out, err = capsys.readouterr()
    assert (status, err) == (0, "")
    assert not BAD & set(out), sorted(BAD & set(out))
    shown = SHOWN.replace("\\", "\\\\") if fmt == "dot" else SHOWN  # DOT doubles every backslash
    assert shown in out
    if fmt == "text":
        assert any(ln.startswith("Potential deadlock 1 of ") for ln in out.splitlines())


def test_printable() -> None:
    assert printable("plain text: Zoë, 北京, émigré ✓") == "plain text: Zoë, 北京, émigré ✓"
    assert printable(NASTY) == SHOWN
    assert printable(SHOWN) == SHOWN  # idempotent
    assert printable("a\tb\nc\u2028d\U000e0001") == "a\\tb\\nc\\u2028d\\U000e0001"


def test_no_string_of_a_report_reaches_the_page_as_markup(tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    mark = "<i>injected</i>"

    def prefix(value: Any, key: str = "") -> Any:
        if isinstance(value, str):
            return value if key in ("format", "edge_fields", "histogram_scale") else mark + value
        if isinstance(value, list):
            return [prefix(v, key) for v in value]
        if isinstance(value, dict):
            return {k: (v if k == "source_lines" else prefix(v, k)) for k, v in value.items()}
        return value

    data = prefix(GOLDEN)
    data["meta"]["merged"] = mark
    data["source_lines"] = {f: {n: mark + t for n, t in lines.items()} for f, lines in GOLDEN["source_lines"].items()}
    path = tmp_path / "marked.json"
    path.write_text(json.dumps(data))
    status = cli.main(["report", str(path), "--format", "html"], prog_name="lockwatch")
    out, err = capsys.readouterr()
    assert (status, err) == (0, "")
    assert "&lt;i&gt;injected&lt;/i&gt;" in out
    assert mark not in out


def test_reports_written_by_lockwatch_stay_readable() -> None:
    """The bounds of the validation are far from anything a run records."""
    from lockwatch.model import loads

    text = (FIXTURES / "report_golden" / "report.json").read_text(encoding="utf-8")
    saved = loads(text.replace("$FIXTURE", str(PROJECT_ROOT)))
    assert saved.snapshot.locks and saved.snapshot.source_lines


def test_randomly_damaged_reports_never_end_in_a_traceback(tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    """Seeded: any value of the golden report replaced by a value of another shape, or removed."""
    import random

    rng = random.Random(12)
    values = [None, True, -1, 0, 2**63, HUGE, NAN, INF, -1e308, "", "x:1", "\x1b[2J", "9" * 5000,
              [], [[]], {}, {"a": [1]}, [1, "a", None]]

    def places(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        out = [path] if path else []
        items = (value.items() if isinstance(value, dict)
                 else enumerate(value[:2]) if isinstance(value, list) else [])
        for k, v in items:
            out.extend(places(v, (*path, k)))
        return out

    every = [p for p in places(GOLDEN) if p[0] != "source_lines" or len(p) < 3]
    path = tmp_path / "report.json"
    for n, where in enumerate(rng.sample(every, 150)):
        data = copy.deepcopy(GOLDEN)
        target: Any = data
        for k in where[:-1]:
            target = target[k]
        if isinstance(target, dict) and rng.random() < 0.3:
            del target[where[-1]]
        else:
            target[where[-1]] = rng.choice(values)
        path.write_text(json.dumps(data))
        fmt = FORMATS[n % len(FORMATS)]
        status = cli.main(["report", str(path), "--format", fmt], prog_name="lockwatch")
        out, err = capsys.readouterr()
        assert status in (0, 2), (where, fmt, err)
        if status == 2:
            assert err.startswith("lockwatch report: error: ") and err.count("\n") == 1, (where, err)
        else:
            assert err == "" and out, (where, fmt)
