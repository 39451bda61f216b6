"""Notebook widgets (anywidget): JobTable, LogTail, JobProgress and the composed ``dashboard``.

Loaded lazily so that ``celline_jobs_nb.widgets._format`` (rows, HTML and text snapshots) can be
used without importing anywidget. The browser side is js/src, bundled into static/.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .composed import Dashboard, dashboard
    from .logtail import LogTail
    from .progress import JobProgress
    from .table import JobTable

__all__ = ["Dashboard", "JobProgress", "JobTable", "LogTail", "dashboard"]

_WHERE = {
    "Dashboard": "composed", "dashboard": "composed", "JobTable": "table", "LogTail": "logtail",
    "JobProgress": "progress",
}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        from importlib import import_module

        return getattr(import_module(f".{_WHERE[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
