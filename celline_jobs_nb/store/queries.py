"""The store's listing reads: filters, order and limit in the query, the bulk reads of the history.
A mixin of ``JobStore`` (``store.sqlite``), which supplies the
connection (``_read``, ``_connect``, ``_store_error``)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ..core.errors import StoreError
from ..core.models import JobInfo, JobStatus, JobType
from .rows import COLUMNS
from .stored_job import EAGER_SELECT, rows_to_jobs, rows_to_jobs_deferred

_LIST_SELECT = "SELECT " + ", ".join(COLUMNS) + " FROM jobs"  # rev: one column less per row
#: ``list(..., limit=N, newest_first=True)`` with filters first looks among this many newest rows.
_NEWEST_WINDOW = 10_000


class QueriesMixin:
    """``JobStore``'s listing reads."""

    if TYPE_CHECKING:
        def _read(self, sql: str, params: Sequence[Any] = ()) -> list[Any]: ...

        def _connect(self) -> sqlite3.Connection: ...

        def _store_error(self, exc: BaseException) -> StoreError: ...

    @staticmethod
    def _filters(statuses: Iterable[JobStatus] | None, scheduler: str | None, job_types: Iterable[JobType] | None,
                 since: datetime | None, until: datetime | None, array_parent: str | None) -> tuple[str, list[Any]]:
        """The WHERE clause (with its parameters) of every filtered read."""
        where: list[str] = []
        params: list[Any] = []
        if statuses is not None:
            values = [JobStatus.parse(s).value for s in statuses]
            where.append(f"status IN ({', '.join('?' for _ in values)})")
            params.extend(values)
        if scheduler is not None:
            where.append("scheduler = ?")
            params.append(scheduler)
        if job_types is not None:
            types = [JobType.parse(t).value for t in job_types]
            where.append(f"job_type IN ({', '.join('?' for _ in types)})")
            params.extend(types)
        if since is not None:
            where.append("created_at >= ?")
            params.append(since.timestamp())
        if until is not None:
            where.append("created_at < ?")
            params.append(until.timestamp())
        if array_parent is not None:
            where.append("array_parent = ?")
            params.append(array_parent)
        return (" WHERE " + " AND ".join(where) if where else ""), params

    def list(
        self,
        statuses: Iterable[JobStatus] | None = None,
        *,
        scheduler: str | None = None,
        job_types: Iterable[JobType] | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        array_parent: str | None = None,
        limit: int | None = None,
        newest_first: bool = False,
    ) -> list[JobInfo]:
        """Jobs matching every filter given, oldest first (``newest_first``: newest first), at most
        ``limit``. Filters, order and limit are all in the query; metadata and progress are decoded
        when a caller first reads them (``stored_job``)."""
        where, params = self._filters(statuses, scheduler, job_types, since, until, array_parent)
        order = " ORDER BY seq DESC" if newest_first else " ORDER BY seq"
        # "Created since" alone: without the hint the planner walks every row in seq order
        # (it avoids a sort) instead of reading the few recent ones through their index.
        only_since = since is not None and statuses is None and scheduler is None and job_types is None
        hint = " INDEXED BY jobs_created" if only_since and array_parent is None else ""
        if limit is not None:
            params.append(int(limit))
            if newest_first and where:
                # "The newest N with status S": through an index the planner would sort every job
                # of status S (0.7 s at 1,000,000 jobs); the newest rows, read backwards by rowid,
                # usually hold the N. Only when they do not is the index asked.
                window = max(_NEWEST_WINDOW, 100 * int(limit))
                recent = self._read(f"{EAGER_SELECT} NOT INDEXED{where} AND seq > "
                                    f"(SELECT COALESCE(MAX(seq), 0) FROM jobs) - ?{order} LIMIT ?",
                                    [*params[:-1], window, params[-1]])
                if len(recent) == int(limit):
                    return rows_to_jobs_deferred(recent, self._read)
            return rows_to_jobs_deferred(self._read(f"{EAGER_SELECT}{hint}{where}{order} LIMIT ?", params), self._read)
        # The columns a listing seldom shows are read when first asked for, for the whole batch.
        return rows_to_jobs_deferred(self._read(EAGER_SELECT + hint + where + order, params), self._read)

    def iter_list(self, statuses: Iterable[JobStatus] | None = None, *, scheduler: str | None = None,
                  job_types: Iterable[JobType] | None = None, since: datetime | None = None,
                  until: datetime | None = None, array_parent: str | None = None,
                  batch: int = 2000) -> Iterator[JobInfo]:
        """``list``'s jobs (oldest first) a batch at a time: ``list --all --json`` of a million jobs
        holds ``batch`` rows in memory, never the whole history."""
        where, params = self._filters(statuses, scheduler, job_types, since, until, array_parent)
        only_since = since is not None and statuses is None and scheduler is None and job_types is None
        hint = " INDEXED BY jobs_created" if only_since and array_parent is None else ""
        try:
            cursor = self._connect().execute(f"{_LIST_SELECT}{hint}{where} ORDER BY seq", params)
            while rows := cursor.fetchmany(batch):
                yield from rows_to_jobs(rows)
        except sqlite3.DatabaseError as exc:
            raise self._store_error(exc) from None

    def select(self, columns_sql: str, statuses: Iterable[JobStatus] | None = None, *, scheduler: str | None = None,
               job_types: Iterable[JobType] | None = None, since: datetime | None = None,
               until: datetime | None = None, retries_after: datetime | None = None) -> list[tuple[Any, ...]]:
        """Raw rows of ``SELECT <columns_sql> FROM jobs`` with ``list``'s filters, in creation order:
        for bulk readers (the DataFrame export) that would pay too much for a JobInfo per row.
        ``retries_after``: also the retries (``retry_of`` set) created from then on, through their
        own index (the later attempts of the jobs created in [since, until))."""
        where, params = self._bulk_where(statuses, scheduler, job_types, since, until, retries_after)
        return self._read(f"SELECT {columns_sql} FROM jobs{where} ORDER BY seq", params)

    def _bulk_where(self, statuses: Iterable[JobStatus] | None, scheduler: str | None,
                    job_types: Iterable[JobType] | None, since: datetime | None, until: datetime | None,
                    retries_after: datetime | None) -> tuple[str, list[Any]]:
        """``select``'s WHERE: the matching row numbers found through an index, then those rows by
        row number (in order: no sort of whole rows)."""
        if retries_after is None:
            where, params = self._filters(statuses, scheduler, job_types, since, until, None)
            return (f" WHERE seq IN (SELECT seq FROM jobs{where})" if where else ""), params
        base, params = self._filters(statuses, scheduler, job_types, None, None, None)
        window, window_params = self._filters(None, None, None, since, until, None)
        # Two index ranges, the row numbers of both, then those rows in order (an OR of the two
        # ranges is read by the planner as a scan of every row).
        rows = (f" seq IN (SELECT seq FROM jobs INDEXED BY jobs_created{window} UNION ALL SELECT seq FROM jobs "
                "INDEXED BY jobs_retries WHERE retry_of IS NOT NULL AND created_at >= ?)")
        return (f"{base} AND{rows}" if base else f" WHERE{rows}"), [*params, *window_params, retries_after.timestamp()]

    def count_matching(self, statuses: Iterable[JobStatus] | None = None, *, scheduler: str | None = None,
                       job_types: Iterable[JobType] | None = None, since: datetime | None = None,
                       until: datetime | None = None, array_parent: str | None = None) -> int:
        """How many jobs match ``list``'s filters (counted in an index, no row read)."""
        where, params = self._filters(statuses, scheduler, job_types, since, until, array_parent)
        return int(self._read(f"SELECT COUNT(*) FROM jobs{where}", params)[0][0])

    def created_bounds(self, chunk: int, since: datetime | None = None,
                       until: datetime | None = None) -> list[float]:
        """Creation times (epoch seconds) that cut the jobs created in [since, until) into runs of
        about ``chunk`` jobs, each read from the creation-time index: ``history`` in chunks."""
        start = since.timestamp() if since is not None else float("-inf")
        high = until.timestamp() if until is not None else float("inf")
        bounds: list[float] = []
        while True:
            row = self._read("SELECT created_at FROM jobs INDEXED BY jobs_created WHERE created_at >= ? "
                             "AND created_at < ? ORDER BY created_at LIMIT 1 OFFSET ?", (start, high, int(chunk)))
            if not row:
                return bounds
            bound = float(row[0][0])
            if bound <= start:  # more than ``chunk`` jobs created at the same instant: one run holds them
                row = self._read("SELECT MIN(created_at) FROM jobs WHERE created_at > ? AND created_at < ?",
                                 (start, high))
                if row[0][0] is None:
                    return bounds
                bound = float(row[0][0])
            bounds.append(bound)
            start = bound

    def native_ids(self, scheduler: str, native_ids: Iterable[str]) -> dict[str, str]:
        """Our job id of each of ``native_ids`` we track on ``scheduler`` (through the native-id
        index: a scheduler's queue is matched without reading the project's history)."""
        wanted = sorted({str(n) for n in native_ids})
        found: dict[str, str] = {}
        for start in range(0, len(wanted), 500):
            chunk = wanted[start:start + 500]
            marks = ", ".join("?" for _ in chunk)
            found.update((native, job_id) for native, job_id in self._read(
                f"SELECT native_id, job_id FROM jobs WHERE scheduler = ? AND native_id IN ({marks}) ORDER BY seq",
                [scheduler, *chunk]))
        return found
