"""The ended jobs a JobTable has not loaded: counted by status (for the chips and the saved copy),
read a page at a time ("Load older"), or searched in the store when the view filters (so a filter
covers the whole history while the table holds only active jobs and recent pages)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from ..core.errors import CellineJobsError
from ..core.models import JobStatus
from ._format import job_row


class HistoryPages:
    """Mixed into JobTable, whose rows, lock, publishing and fallback it uses."""

    monitor: Any
    fallback: Any
    history_page: int
    _older: dict[str, int]
    _cursor: int | None
    _rows: dict[str, dict[str, Any]]
    _delta_ids: set[str]
    _since_snapshot: set[str]
    _lock: threading.RLock
    _closed: bool
    _error: str | None

    def _publish(self, full: bool) -> None:  # JobTable's
        raise NotImplementedError

    @property
    def older(self) -> int:
        """How many ended jobs of the project the table has not loaded (``load_older`` loads more)."""
        return sum(self._older.values())

    def load_older(self) -> int:
        """Load the next page of ended jobs (older than those loaded) and send them; how many."""
        with self._lock:
            if self._closed or not self._older:
                return 0
            try:
                page, cursor = self.monitor.store.ended_page(self._cursor, self.history_page)
            except CellineJobsError as exc:
                self._error = str(exc)
                return 0
            self._cursor = cursor
            self._add_older(page)
            if not page:
                self._older.clear()
            self._publish(full=False)
        self.fallback.changed()
        return len(page)

    def search_older(self, text: str = "", statuses: list[str] | None = None) -> int:
        """Load the newest ended jobs not loaded yet whose id, name, type or reason holds ``text``
        (and whose status is one of ``statuses``): the view's filter, asked of the store, so it
        covers the whole history. At most ``history_page`` rows; how many were new."""
        wanted = [JobStatus(s) for s in (statuses or []) if s in JobStatus._value2member_map_]
        text = str(text or "").strip()[:200]
        with self._lock:
            if self._closed or not self._older or (not text and not wanted):
                return 0
            cursor = self._cursor
        # Outside the lock: a text that matches nothing reads every older row (3 s at 1,000,000).
        return self._load_older(lambda: self.monitor.store.search_ended(text, wanted or None, cursor,
                                                                         self.history_page))

    def top_older(self, key: str, descending: bool) -> int:
        """Load the first page of the ended jobs not loaded yet in the order of the view's sort
        ``key``, so the top of the sorted table is right over the whole history; how many were new."""
        with self._lock:
            if self._closed or not self._older:
                return 0
            cursor = self._cursor
        # Outside the lock: a sort on a column without an index reads every older row.
        return self._load_older(lambda: self.monitor.store.ended_top(str(key), bool(descending), cursor,
                                                                      self.history_page))

    def _load_older(self, read: Callable[[], list[Any]]) -> int:
        """Run a store read of older jobs (without the table's lock) and add what it found."""
        try:
            found = read()
        except CellineJobsError as exc:
            self._error = str(exc)
            return 0
        with self._lock:
            if self._closed:
                return 0
            added = self._add_older(found)
            if added:
                self._publish(full=False)
        if added:
            self.fallback.changed()
        return added

    def _add_older(self, jobs: list[Any]) -> int:
        """Rows for ended jobs read from the history; each new one is no longer counted as older."""
        added = 0
        for job in jobs:
            if job.job_id in self._rows:
                continue
            added += 1
            n = self._older.get(job.status.value, 0) - 1
            if n > 0:
                self._older[job.status.value] = n
            else:
                self._older.pop(job.status.value, None)
            self._rows[job.job_id] = job_row(job)
            self._delta_ids.add(job.job_id)
            self._since_snapshot.add(job.job_id)
        return added

