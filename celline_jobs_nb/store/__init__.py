"""Persistence: the SQLite job store, its schema migrations and the legacy jobs.json import.

The names below load on first use (PEP 562): importing a light submodule (``store.schema``,
``store.rows``) does not load the whole store.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .sqlite import Event, JobStore, JobUpdate, PollState

__all__ = ["Event", "JobStore", "JobUpdate", "PollState"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from . import sqlite

        return getattr(sqlite, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
