"""Writing report files: checked before a run starts, written so that no reader sees half of one."""
from __future__ import annotations

import os
from typing import TYPE_CHECKING, Optional

if TYPE_CHECKING:
    from .model import Report


def write_atomic(path: str, content: str) -> None:
    """Write via a temporary file and rename, so a reader never sees half a report."""
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(content)
    os.replace(tmp, path)


def check_writable(path: str) -> Optional[str]:
    """Why ``path`` cannot take a report, or None: checked before the program starts."""
    path = os.path.abspath(path)
    if os.path.isdir(path):
        return f"{path} is a directory"
    parent = os.path.dirname(path)
    if not os.path.isdir(parent):
        return f"directory {parent} does not exist"
    if not os.access(parent, os.W_OK) or (os.path.exists(path) and not os.access(path, os.W_OK)):
        return f"{path} is not writable"
    return None


def write_report_file(report: Report, fmt: str, path: str) -> None:
    """Render ``report`` as ``fmt`` (a renderers.FORMATS name) and write it to ``path``, atomically."""
    from . import renderers

    write_atomic(path, renderers.render(report, fmt))


def write_report_files(report: Report, paths: dict[str, str]) -> None:
    """Each format's file, by format name."""
    for fmt, path in paths.items():
        write_report_file(report, fmt, path)
