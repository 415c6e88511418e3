"""Renderers: one module per format, each with ``render(report, **options) -> str`` and its EXTENSION.

Options a format does not use are ignored (``top``: rows of the text report's contention tables).
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from typing import Protocol

    from ..model import Report

    class Renderer(Protocol):
        EXTENSION: str

        def render(self, report: Report, **options: Any) -> str: ...

# Format name -> the module that renders it (imported only when asked for).
_MODULES = {"text": "text", "json": "jsonreport", "html": "html", "dot": "dot", "graphml": "graphml"}
FORMATS = tuple(_MODULES)


def get(name: str) -> Renderer:
    """The renderer of format ``name`` (one of FORMATS); ValueError for another name."""
    module = _MODULES.get(name)
    if module is None:
        raise ValueError(f"unknown report format {name!r}: expected one of {', '.join(FORMATS)}")
    renderer: Renderer = importlib.import_module(f"{__name__}.{module}")
    return renderer


def render(report: Report, name: str, **options: Any) -> str:
    """``report`` in format ``name``."""
    return get(name).render(report, **options)
