"""Writing report files: checked before a run starts, written so that no reader sees half of one."""
from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, Optional

from .errors import UserError

if TYPE_CHECKING:
    from .model import Report

# Flags of the temporary file: created here and now (O_EXCL: never an existing file, and never
# through a symlink planted at its name), not a controlling terminal, not inherited by children.
_CREATE = (os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
           | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_BINARY", 0))
_TRIES = 100


class ReportWriteError(UserError):
    """A report file that could not be written: one line naming the path and the reason."""

    def __init__(self, path: str, reason: str, errno: Optional[int] = None) -> None:
        super().__init__(f"cannot write the report to {path}: {reason}")
        self.path = path
        self.reason = reason
        self.errno = errno


def private_folder(prefix: str) -> str:
    """A new folder, readable by this user only, of an unpredictable name beginning with
    ``prefix`` in the temporary folder, as tempfile.mkdtemp() makes it: `python -m lockwatch`
    needs one for its children's reports, and importing tempfile (shutil, random, bz2, lzma)
    cost about 5% of an empty program's start-up under it (callgrind, 3.11). The candidates are
    tempfile's on POSIX: $TMPDIR, $TEMP, $TMP, /tmp, /var/tmp, /usr/tmp, the current folder;
    elsewhere, or when none of them takes a folder, tempfile.mkdtemp() itself decides."""
    if os.name == "posix":
        candidates = [os.environ.get(name) for name in ("TMPDIR", "TEMP", "TMP")]
        for base in [*(c for c in candidates if c), "/tmp", "/var/tmp", "/usr/tmp", os.getcwd()]:
            for _ in range(_TRIES):
                path = os.path.join(os.path.abspath(base), prefix + os.urandom(6).hex())
                try:
                    os.mkdir(path, 0o700)
                except FileExistsError:
                    continue
                except OSError:
                    break  # not a folder we can write in: the next candidate
                return path
    import tempfile

    return tempfile.mkdtemp(prefix=prefix)


def remove_folder(path: str) -> None:
    """Remove ``path`` and what is in it, ignoring errors (shutil.rmtree(ignore_errors=True)
    without importing shutil for the flat folder of files it always is here)."""
    try:
        with os.scandir(path) as entries:
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    import shutil

                    shutil.rmtree(entry.path, ignore_errors=True)
                else:
                    try:
                        os.unlink(entry.path)
                    except OSError:
                        pass
        os.rmdir(path)
    except OSError:
        pass


def write_atomic(path: str, content: str) -> None:
    """Write ``content`` to ``path`` so that a reader sees the old file or the whole new one.

    A regular file (or a new one) is written to a temporary file of an unpredictable name in the
    same folder, created with O_EXCL (so nobody can plant a symlink there for us to follow), then
    renamed over ``path``; on any failure (a full disk, a folder removed meanwhile) the temporary
    file is removed and ``path`` is left as it was. A ``path`` that exists and is not a regular
    file (/dev/stdout, /dev/null, a FIFO) is written into, never replaced. The new file's mode is
    the old one's, or 0666 less the umask as open() would make it (mkstemp's 0600 would not be).
    Raises ReportWriteError (one line)."""
    write_atomic_chunks(path, (content,))


def write_atomic_chunks(path: str, chunks: Iterable[str]) -> None:
    """``write_atomic`` of the concatenation of ``chunks``, written as they come (a report of
    a million edges is never one string in memory). An exception from ``chunks`` leaves ``path``
    as it was, as a failed write does, and propagates."""
    data = _encoded(chunks)
    try:
        try:
            st: Optional[os.stat_result] = os.stat(path)
        except FileNotFoundError:
            st = None
        if st is not None and not stat.S_ISREG(st.st_mode):
            if stat.S_ISDIR(st.st_mode):
                raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), path)
            _write_into(path, data)
            return
        _replace(path, data, None if st is None else stat.S_IMODE(st.st_mode))
    except OSError as exc:
        raise ReportWriteError(path, exc.strerror or str(exc), exc.errno) from None


_BUFFER = 1 << 20  # bytes gathered before each write


def _encoded(chunks: Iterable[str]) -> Iterable[bytes]:
    buf: list[str] = []
    size = 0
    for chunk in chunks:
        buf.append(chunk)
        size += len(chunk)
        if size >= _BUFFER:
            yield "".join(buf).encode("utf-8", "backslashreplace")
            buf, size = [], 0
    if buf:
        yield "".join(buf).encode("utf-8", "backslashreplace")


def _write_into(path: str, data: Iterable[bytes]) -> None:
    """Write into an existing file that is not a regular one (a device, a pipe)."""
    fd = os.open(path, os.O_WRONLY | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0))
    try:
        _write_all(fd, data)
    finally:
        os.close(fd)


def _replace(path: str, data: Iterable[bytes], mode: Optional[int]) -> None:
    folder = os.path.dirname(os.path.abspath(path))
    base = os.path.basename(path)
    for _ in range(_TRIES):
        tmp = os.path.join(folder, f".{base}.{os.urandom(8).hex()}.tmp")
        try:
            fd = os.open(tmp, _CREATE, 0o666)  # the umask applies, as for open(path, "w")
            break
        except FileExistsError:
            continue
    else:
        raise FileExistsError(errno.EEXIST, "no unused temporary file name", folder)
    try:
        try:
            if mode is not None and hasattr(os, "fchmod"):
                os.fchmod(fd, mode)
            _write_all(fd, data)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _write_all(fd: int, data: Iterable[bytes]) -> None:
    for block in data:
        view = memoryview(block)
        while view:
            written = os.write(fd, view)
            view = view[written:]


def check_writable(path: str) -> Optional[str]:
    """Why ``path`` cannot take a report, or None: checked before the program starts."""
    path = os.path.abspath(path)
    if os.path.isdir(path):
        return f"{path} is a directory"
    if os.path.exists(path) and not os.path.isfile(path):  # a device or a pipe: written into
        return None if os.access(path, os.W_OK) else f"{path} is not writable"
    parent = os.path.dirname(path)
    if not os.path.isdir(parent):
        return f"directory {parent} does not exist"
    if not os.access(parent, os.W_OK) or (os.path.exists(path) and not os.access(path, os.W_OK)):
        return f"{path} is not writable"
    return None


def write_report_file(report: Report, fmt: str, path: str, **options: Any) -> None:
    """Render ``report`` as ``fmt`` (a renderers.FORMATS name, with the renderer's ``options``)
    and write it to ``path``, atomically. Raises ReportWriteError."""
    from . import renderers

    renderer = renderers.get(fmt)
    chunks = getattr(renderer, "render_chunks", None)  # a format that can stream does
    if chunks is not None:
        write_atomic_chunks(path, chunks(report, **options))
    else:
        write_atomic(path, renderer.render(report, **options))


def write_report_files(report: Report, paths: dict[str, str],
                       ignore: Callable[[ReportWriteError], bool] = lambda exc: False,
                       **options: Any) -> None:
    """Each format's file, by format name, with the source lines the report shows embedded first
    (read by the recording process, never by a reader of the report): all that can be written
    are; then the first ReportWriteError that ``ignore`` does not excuse, if any."""
    if not paths:
        return
    from . import sources

    sources.embed(report)
    failed: Optional[ReportWriteError] = None
    for fmt, path in paths.items():
        try:
            write_report_file(report, fmt, path, **options)
        except ReportWriteError as exc:
            if not ignore(exc):
                failed = failed or exc
    if failed is not None:
        raise failed
