"""Source lines shown in reports: embedded by the recording process, never read because a report names a file."""
from __future__ import annotations

import linecache
import os
import re
import stat
from collections.abc import Iterable
from typing import Callable, Optional

from .model import Report

MAX_FILE_BYTES = 1 << 20  # a larger "source file" is not read (nor is anything but a regular file)
MAX_LINE_CHARS = 240  # a line is cut there
MAX_LINES = 4000  # lines embedded in one report, the most useful first
SOURCE_SUFFIXES = (".py", ".pyw")  # what `lockwatch report` reads from the project, if anything

# A stack frame as lockwatch records it: "<file>:<line> in <function>".
FRAME_RE = re.compile(r"^(?P<file>.*):(?P<line>[0-9]{1,9}) in (?P<func>.*)$", re.DOTALL)

Reader = Callable[[str], Optional[list[str]]]


def parse_frame(frame: str) -> Optional[tuple[str, int, str]]:
    """(file, line, function) of a recorded frame, or None for anything else."""
    m = FRAME_RE.match(frame)
    return (m.group("file"), int(m.group("line")), m.group("func")) if m else None


def line_of(report: Report, filename: str, line: int) -> str:
    """The source line ``filename``:``line`` as the report holds it ("" when it does not)."""
    return report.snapshot.source_lines.get(filename, {}).get(line, "")


def wanted(report: Report) -> list[tuple[str, int]]:
    """The places whose source line the reports show, the most useful first: the stacks of the
    findings, the creation sites of the locks, then the stacks of every other edge (a merge of
    reports can make them part of a cycle)."""
    out: dict[tuple[str, int], None] = {}

    def frames(stacks: Iterable[list[str]]) -> None:
        for stack in stacks:
            for f in stack:
                parsed = parse_frame(f)
                if parsed is not None:
                    out.setdefault(parsed[:2])

    snap = report.snapshot
    frames(s for p in report.potential_deadlocks for e in p.edges for s in (e.held_stack, e.acquire_stack))
    frames(s for v in snap.violations for s in (v.held_stack, v.acquire_stack))
    frames(t.stack for d in report.deadlocks for t in d.threads)
    frames(s for a in report.alerts for s in (a.stack, a.holder_stack))
    for p in report.potential_deadlocks:
        for lk in p.locks:
            out.setdefault((lk.filename, lk.line))
    for s in snap.locks:
        out.setdefault((s.filename, s.line))
    frames(s for e in snap.site_edges for s in (e.held_stack, e.acquire_stack))
    frames(s for e in snap.instance_edges for s in (e.held_stack, e.acquire_stack))
    return [(f, n) for f, n in out if n > 0 and f and not f.startswith("<")]


def _fill(report: Report, read: Reader) -> None:
    have = report.snapshot.source_lines
    count = sum(len(v) for v in have.values())
    cache: dict[str, Optional[list[str]]] = {}
    for filename, line in wanted(report):
        if count >= MAX_LINES:
            break
        if line in have.get(filename, {}):
            continue
        if filename not in cache:
            cache[filename] = read(filename)
        lines = cache[filename]
        if lines is None or line > len(lines):
            continue
        text = lines[line - 1].expandtabs(4).strip()[:MAX_LINE_CHARS]
        if text:
            have.setdefault(filename, {})[line] = text
            count += 1


def embed(report: Report) -> None:
    """Add the source lines the report shows, read by the recording process from the program's
    own files: the lines Python already read (linecache), else the file itself if it is a
    regular file of at most MAX_FILE_BYTES."""
    _fill(report, _program_lines)


def from_project(report: Report, root: Optional[str] = None) -> None:
    """Add the source lines a report lacks (one written before lines were embedded) from Python
    files under ``root`` (the working directory): regular files ending in .py or .pyw, of at most
    MAX_FILE_BYTES, whose real path is inside ``root``. Nothing else is opened, whatever the
    report names (/etc/passwd, /proc/self/environ, /dev/zero, a FIFO, a symlink out)."""
    base = os.path.realpath(root or os.getcwd())
    _fill(report, lambda filename: _project_lines(filename, base))


def _program_lines(filename: str) -> Optional[list[str]]:
    entry = linecache.cache.get(filename)
    if entry is not None and len(entry) == 4:  # (size, mtime, lines, fullname); 1-tuples are lazy
        return list(entry[2])
    try:
        real = os.path.realpath(filename)
    except (OSError, ValueError):
        return None
    return read_lines(real)


def _project_lines(filename: str, base: str) -> Optional[list[str]]:
    if not filename.endswith(SOURCE_SUFFIXES):
        return None
    try:
        real = os.path.realpath(os.path.join(base, filename))
        if os.path.commonpath([real, base]) != base or real == base:
            return None
    except (OSError, ValueError):  # a NUL byte, a lone surrogate: no file has that name
        return None
    return read_lines(real)


def read_lines(path: str) -> Optional[list[str]]:
    """The lines of ``path`` if it is a regular file of at most MAX_FILE_BYTES, else None. Opened
    without blocking (a FIFO never hangs the reader) nor following a final symlink, and checked
    on the open file, so it cannot be swapped for another kind of file in between."""
    flags = (os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOFOLLOW", 0)
             | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0))
    try:
        fd = os.open(path, flags)
    except (OSError, ValueError):
        return None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_size > MAX_FILE_BYTES:
            return None
        chunks, size = [], 0
        while size <= MAX_FILE_BYTES:
            chunk = os.read(fd, MAX_FILE_BYTES + 1 - size)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        if size > MAX_FILE_BYTES:  # it grew meanwhile
            return None
    except OSError:
        return None
    finally:
        os.close(fd)
    text = b"".join(chunks).decode("utf-8", "replace")
    return text.replace("\r\n", "\n").replace("\r", "\n").split("\n")  # Python's line ends only
