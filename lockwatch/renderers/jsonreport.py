"""The JSON report (format "lockwatch-report", version 2); the contract itself is lockwatch.model."""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ..model import Report, dumps, iter_dumps

EXTENSION = ".json"


def render(report: Report, **options: Any) -> str:
    return dumps(report)


def render_chunks(report: Report, **options: Any) -> Iterator[str]:
    """The report in pieces, for writing a large one without making it one string."""
    return iter_dumps(report)
