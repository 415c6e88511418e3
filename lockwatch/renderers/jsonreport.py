"""The JSON report (format "lockwatch-report", version 1); the contract itself is lockwatch.model."""
from __future__ import annotations

from typing import Any

from ..model import Report, dumps

EXTENSION = ".json"


def render(report: Report, **options: Any) -> str:
    return dumps(report)
