"""The text report on a terminal: colour when asked or on a terminal (NO_COLOR, FORCE_COLOR,
--color/--no-color), and lines fitted to the terminal's width."""
from __future__ import annotations

import os
import random
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Optional

import pytest
from support import TIMEOUT, child_env, write

from lockwatch import analysis, histogram
from lockwatch.model import LockStats, Snapshot, Timing
from lockwatch.renderers import text

pytestmark = pytest.mark.timeout(300)

ANSI = re.compile(r"\x1b\[[0-9;]*m")


class _Stream:
    def __init__(self, tty: bool) -> None:
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty


@pytest.mark.parametrize(("setting", "environ", "tty", "expected"), [
    (None, {}, True, True),
    (None, {}, False, False),
    (None, {"NO_COLOR": "1"}, True, False),
    (None, {"NO_COLOR": ""}, True, True),  # set but empty: not set (no-color.org)
    (None, {"FORCE_COLOR": "1"}, False, True),
    (None, {"FORCE_COLOR": "1", "NO_COLOR": "1"}, False, False),  # as pytest reads them
    (True, {"NO_COLOR": "1"}, False, True),  # --color wins over the environment
    (False, {"FORCE_COLOR": "1"}, True, False),  # --no-color too
])
def test_use_color(setting: bool, environ: dict[str, str], tty: bool, expected: bool) -> None:
    assert text.use_color(_Stream(tty), setting, environ) is expected


LONG = "/very/long/path/" + "deeply/nested/" * 6 + "module.py"
REPORT = f"""\
==============================================================================
Potential deadlock 1 of 1: a -> b -> a   [deadlock risk]
  These lock objects were taken in opposite orders. If the threads that did so run at the same time, \
each can hold one lock and wait forever for the next.

  a -> b: thread 'worker' held a and waited for b (1 time, during tests/test_shop.py::test_checkout)
    a was taken at:
      {LONG}:12 in checkout
      short.py:3 in f
Longest-held locks:
  lock                 kind             created at                   acquired  hold mean    hold p50  hold p99  hold max
  a                    Lock             …amples/abba_inversion.py:12 3         83.5 µs      6.89 µs   220 µs    239 µs

after the table
"""


def test_fit_wraps_sentences_and_shortens_paths_from_the_left() -> None:
    fitted = text.fit(REPORT, 60)
    lines = fitted.splitlines()
    table = slice(lines.index("Longest-held locks:"), lines.index("Longest-held locks:") + 3)
    for line in lines[:table.start] + lines[table.stop:]:
        assert len(line) <= 60, line
    for line in lines[table]:
        assert line in REPORT.splitlines()  # table rows are kept whole
    # every word is still there, in order
    assert " ".join(fitted.split()).replace("…", "") != ""
    prose = "These lock objects were taken in opposite orders."
    assert prose in " ".join(line.strip() for line in lines)
    # a wrapped line continues two columns further in
    at = next(i for i, line in enumerate(lines) if line.startswith("  a -> b: thread 'worker'"))
    assert lines[at + 1].startswith("    ") and not lines[at + 1].startswith("     ")
    # the frame keeps its file, line and function, and loses the start of its path
    [frame] = [line for line in lines if line.endswith(":12 in checkout")]
    assert frame.startswith("      …") and frame.endswith("nested/module.py:12 in checkout") and len(frame) == 60
    assert "      short.py:3 in f" in lines


def test_wrap_is_textwraps_for_words_between_single_spaces() -> None:
    """The renderer's wrap() against textwrap.wrap (no long words broken, no hyphens), over
    random words (some wider than the line, some with no-break spaces, never only those: the
    renderer's words are split at whitespace or are "label value" pairs), widths and indents."""
    rng = random.Random(16)
    for _ in range(3000):
        words = [rng.choice("ab-/…") + "".join(rng.choice("ab-/…\xa0.:") for _ in range(rng.choice([0, 1, 4, 8, 29])))
                 for _ in range(rng.randrange(0, 14))]
        content = " ".join(words)
        width = rng.randrange(1, 50)
        indent, subsequent = " " * rng.randrange(0, 8), " " * rng.randrange(0, 10)
        expected = textwrap.wrap(content, width, initial_indent=indent, subsequent_indent=subsequent,
                                 break_long_words=False, break_on_hyphens=False)
        assert text.wrap(content, width, indent, subsequent) == expected, (content, width, indent, subsequent)


@pytest.mark.parametrize("columns, expected", [("123", 123), ("0", None), ("x", None), (None, None)])
def test_the_terminal_width_is_shutils(monkeypatch: pytest.MonkeyPatch, columns: Optional[str],
                                       expected: Optional[int]) -> None:
    if columns is None:
        monkeypatch.delenv("COLUMNS", raising=False)
    else:
        monkeypatch.setenv("COLUMNS", columns)
    assert text.terminal_width(_Stream(True)) == shutil.get_terminal_size().columns
    if expected is not None:
        assert text.terminal_width(_Stream(True)) == expected


def test_fit_leaves_files_and_pipes_alone() -> None:
    assert text.fit(REPORT, None) == REPORT
    assert text.terminal_width(_Stream(False)) is None


PROGRAM = """
    import threading
    a, b = threading.Lock(), threading.Lock()
    def one():
        with a:
            with b:
                pass
    def two():
        with b:
            with a:
                pass
    for f in (one, two):
        t = threading.Thread(target=f); t.start(); t.join()
"""


@pytest.mark.skipif(sys.platform == "win32", reason="a pseudo-terminal")
@pytest.mark.parametrize("flag", ["", "--no-color"])
def test_on_a_terminal_the_report_fits_and_has_colour(tmp_path: Path, flag: str) -> None:
    import pty

    deep = tmp_path.joinpath(*(["a_rather_long_folder_name"] * 4))
    prog = write(deep / "prog.py", PROGRAM)
    main, child = pty.openpty()
    env = child_env(COLUMNS="70")
    env.pop("NO_COLOR", None)
    env.pop("FORCE_COLOR", None)
    argv = [sys.executable, "-m", "lockwatch", *([flag] if flag else []), str(prog)]
    proc = subprocess.Popen(argv, cwd=tmp_path, env=env, stdin=subprocess.DEVNULL, stdout=child, stderr=child)
    os.close(child)
    chunks = []
    while True:
        try:
            data = os.read(main, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(main)
    assert proc.wait(timeout=TIMEOUT) == 0
    out = b"".join(chunks).decode("utf-8").replace("\r\n", "\n")
    assert "Potential deadlock 1 of 1" in out
    assert bool(ANSI.search(out)) is (flag == "")
    lines = ANSI.sub("", out).splitlines()
    for line in lines:
        assert len(line) <= 70, line
    assert any(line.endswith("prog.py:5 in one") and "…" in line for line in lines), out


def _contended_report() -> analysis.Report:
    stats = []
    for i, name in enumerate(["Account._lock", "SharedStateRegistry._registry_lock_with_a_long_name"]):
        timing = Timing(count=800, total_ns=800 * 400_000, max_ns=3_430_000,
                        buckets={histogram.bucket_of(400_000): 800})
        stats.append(LockStats(key=f"/srv/project/app/ledger.py:{i + 4}:Lock", name=name, kind="RLock" if i else "Lock",
                               filename="/srv/project/app/ledger.py", line=i + 4, function="f", instances=3,
                               acquisitions=800, contended=414, hold=timing, wait=timing))
    return analysis.build_report([Snapshot(locks=stats, site_edges=[], instance_edges=[], meta={})])


def test_contention_tables_are_fixed_columns_off_a_terminal() -> None:
    out = text.render(_contended_report())
    header = next(line for line in out.splitlines() if line.lstrip().startswith("lock "))
    assert "kind" in header and "wait p99" in header and len(header) > 100
    assert "…" in out  # the long name cut to its column


@pytest.mark.parametrize("width", [100, 80, 60, 44])
def test_contention_tables_fit_a_narrow_terminal_with_whole_names(width: int) -> None:
    out = text.fit(text.render(_contended_report(), width=width), width)
    lines = out.splitlines()
    long_name = "  SharedStateRegistry._registry_lock_with_a_long_name (RLock),"
    # a name is never cut: only a line that is just a name wider than the terminal may be wider
    assert all(len(line) <= width or line == long_name for line in lines), [line for line in lines if len(line) > width]
    tables = out[out.index("Most contended"):]
    # each lock's name and kind whole on its own line, then its numbers
    assert long_name in tables
    assert "  Account._lock (Lock)," in tables
    assert tables.count("414 (52%)") == 2  # both locks' contention, in the contended table
    assert "3.43 ms" in tables
    if width >= 60:  # the numbers still in columns, under a header line
        assert "      acquired  contended    wait p50" in tables
    else:  # label-value pairs, never split inside one
        assert "contended 414 (52%)" in tables.replace("\n      ", " ")
        assert not any(line.rstrip().endswith(("wait", "hold")) for line in lines)
