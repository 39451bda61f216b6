"""The job store: SQLite in WAL mode at ``<project>/.celline/jobs.db``.

Several processes (notebook kernels, the CLI, job wrappers) read and write it at once. Every
write is one ``BEGIN IMMEDIATE`` transaction that is retried when the database is busy, so none is
lost and "database is locked" never reaches the user. Every status change goes through
``core.transitions.can_transition`` here and is recorded in ``events`` (the history).
Each write also bumps a global revision so readers can ask for "what changed since rev N".
The connection and transactions are in ``store.connection``, the writes in ``store.writes``, the
poller bookkeeping and meta keys in ``store.pollbook``, the listing reads in ``store.queries``:
mixins of ``JobStore``, which keeps the other reads.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ..core.errors import JobNotFoundError, StoreError
from ..core.models import ACTIVE_STATUSES, JobInfo, JobStatus, to_utc, utcnow
from ..core.paths import ProjectPaths
from ..core.updates import JobUpdate  # noqa: F401  (re-exported: importers of store.sqlite.JobUpdate keep working)
from . import samples as _samples
from .connection import (  # the checkpoint constants: importers of them keep working
    AUTOCHECKPOINT_PAGES,  # noqa: F401
    BUSY_RETRIES,
    CHECKPOINT_EVERY_COMMITS,  # noqa: F401
    ConnectionMixin,
    create_shared,
)
from .fsmode import journal_mode, read_only_reason
from .pollbook import PollbookMixin, PollState  # noqa: F401  (PollState: importers of it keep working)
from .queries import _LIST_SELECT, QueriesMixin  # noqa: F401  (_LIST_SELECT: importers of it keep working)
from .rows import row_to_job
from .writes import _SELECT, UPDATABLE, WritesMixin  # noqa: F401  (UPDATABLE: importers of it keep working)

log = logging.getLogger("celline.job")


@dataclass(frozen=True)
class Event:
    job_id: str
    time: datetime
    from_status: JobStatus | None
    to_status: JobStatus
    reason: str | None
    source: str


class JobStore(WritesMixin, PollbookMixin, QueriesMixin, ConnectionMixin):
    """All reads and writes of a project's jobs. Safe to share between threads and processes."""

    def __init__(self, project: str | os.PathLike[str] | ProjectPaths, *, database_mode: str | None = None) -> None:
        self.paths = project if isinstance(project, ProjectPaths) else ProjectPaths.of(project)
        self.path = self.paths.db
        self._local = threading.local()
        self._commits = 0
        #: Why this process may only read the database (None: it may write). See ``store.fsmode``.
        self.read_only: str | None = read_only_reason(self.path)
        self._immutable = False
        if self.read_only is not None:
            if not self.path.exists():
                raise StoreError(f"no job database at {self.path} ({self.read_only}): nothing to show yet")
            self.journal, self.journal_reason = "read-only", self.read_only
            self._check_schema_readable()
            return
        self._refuse_a_lost_database()
        self.paths.ensure()
        self.journal, self.journal_reason = journal_mode(self.paths.state_dir, database_mode)
        create_shared(self.path)
        self._migrate()

    # -- helpers used inside transactions ----------------------------------------------------

    @staticmethod
    def _lazy_rev(conn: sqlite3.Connection) -> Callable[[], int]:
        """A revision allocated on first use, so a transaction that changes nothing does not bump it."""
        allocated: list[int] = []

        def get() -> int:
            if not allocated:
                allocated.append(JobStore._next_rev(conn))
            return allocated[0]

        return get

    @staticmethod
    def _next_rev(conn: sqlite3.Connection) -> int:
        row = conn.execute("UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'rev' RETURNING value")
        return int(row.fetchone()[0])

    # -- reads -------------------------------------------------------------------------------

    def get(self, job_id: str) -> JobInfo:
        rows = self._read(f"{_SELECT} WHERE job_id = ?", (str(job_id),))
        if not rows:
            raise JobNotFoundError(f"no job {job_id!r} in {self.paths.root}: see `celline-jobs list`")
        job = row_to_job(rows[0])
        self._attach_samples([job])
        return job

    def _attach_samples(self, jobs: Sequence[JobInfo]) -> None:
        """An ended job read on its own shows its usage samples again (``store.samples``)."""
        try:
            _samples.attach(self._connect(), jobs)
        except sqlite3.OperationalError as exc:
            log.debug("usage samples not read: %s", exc)  # busy: the job without its sparkline

    def compact_samples(self, batch: int = 5000, budget: float = 0.05) -> bool:
        """Move the usage samples of ended rows written before schema 6 out of their rows, then
        pack the usage records of rows written before schema 8 (``rows.pack_usage``), for about
        ``budget`` seconds, from where the last call stopped. True when none is left."""
        if self.read_only is not None:
            return False
        deadline = time.monotonic() + budget
        passes = (("samples_compacted", _samples.compact_rows), ("usage_packed", _samples.pack_usage_rows))
        for key, compact in passes:
            while True:
                if time.monotonic() >= deadline:
                    return False

                def step(conn: sqlite3.Connection, key: str = key, compact: Any = compact) -> bool:
                    done = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
                    if done and done[0] == "all":
                        return True
                    after = compact(conn, int(done[0]) if done else 0, batch)
                    conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
                                 (key, "all" if after is None else str(after)))
                    return after is None
                if self._retrying(step):
                    break
        return True

    def get_many(self, job_ids: Sequence[str]) -> list[JobInfo]:
        out: list[JobInfo] = []
        for start in range(0, len(job_ids), 500):
            chunk = tuple(job_ids[start:start + 500])
            marks = ", ".join("?" for _ in chunk)
            out.extend(row_to_job(r) for r in self._read(f"{_SELECT} WHERE job_id IN ({marks})", chunk))
        self._attach_samples(out)
        return out

    def resolve(self, job_id_or_prefix: str) -> str:
        """The full id for an id or a unique prefix of one (like git), or a clear error."""
        text = str(job_id_or_prefix).strip()
        if not text or any(ch in text for ch in "/\\") or ".." in text:
            raise JobNotFoundError(f"no job {job_id_or_prefix!r}: job ids are letters and digits")
        rows = self._read("SELECT job_id FROM jobs WHERE job_id = ?", (text,))
        if rows:
            return rows[0][0]
        pattern = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        rows = self._read("SELECT job_id FROM jobs WHERE job_id LIKE ? ESCAPE '\\' LIMIT 3", (pattern,))
        if not rows:
            raise JobNotFoundError(f"no job {text!r} in {self.paths.root}: see `celline-jobs list`")
        if len(rows) > 1:
            raise JobNotFoundError(f"job id prefix {text!r} is ambiguous: type more characters")
        return rows[0][0]

    def active(self, scheduler: str | None = None) -> list[JobInfo]:
        return self.list(ACTIVE_STATUSES, scheduler=scheduler)

    def submitted_active_ids(self, scheduler: str) -> list[str]:
        """Ids of the active jobs of ``scheduler`` that it has been given (they have a native id)."""
        marks = ", ".join("?" for _ in ACTIVE_STATUSES)
        rows = self._read(f"SELECT job_id FROM jobs WHERE scheduler = ? AND status IN ({marks}) "
                          "AND native_id IS NOT NULL ORDER BY seq", [scheduler, *(s.value for s in ACTIVE_STATUSES)])
        return [r[0] for r in rows]

    def reconciling(self, scheduler: str) -> list[JobInfo]:
        """Jobs of ``scheduler`` settled from their exit-code files whose scheduler record is still
        to be read (``core.jobfiles.RECONCILE_META_KEY``)."""
        rows = self._read(f"{_SELECT} INDEXED BY jobs_reconcile WHERE scheduler = ? "
                          "AND json_extract(metadata, '$.reconcile') IS NOT NULL ORDER BY seq", (scheduler,))
        return [row_to_job(r) for r in rows]

    def schedulers_to_poll(self) -> list[str]:
        """Schedulers with active jobs, or with ended jobs still to be reconciled."""
        marks = ", ".join("?" for _ in ACTIVE_STATUSES)
        rows = self._read(
            f"SELECT DISTINCT scheduler FROM jobs WHERE status IN ({marks}) UNION "
            "SELECT DISTINCT scheduler FROM jobs INDEXED BY jobs_reconcile "
            "WHERE json_extract(metadata, '$.reconcile') IS NOT NULL", [s.value for s in ACTIVE_STATUSES])
        return sorted(r[0] for r in rows)

    def active_schedulers(self) -> list[str]:
        marks = ", ".join("?" for _ in ACTIVE_STATUSES)
        rows = self._read(
            f"SELECT DISTINCT scheduler FROM jobs WHERE status IN ({marks})", [s.value for s in ACTIVE_STATUSES]
        )
        return sorted(r[0] for r in rows)

    def revision(self) -> int:
        return int(self._read("SELECT value FROM meta WHERE key = 'rev'")[0][0])

    def changed_since(self, rev: int) -> tuple[list[JobInfo], int]:
        """Jobs written after revision ``rev``, and the current revision (read consistently)."""
        conn = self._connect()
        for attempt in range(BUSY_RETRIES):
            try:
                conn.execute("BEGIN")
                try:
                    current = int(conn.execute("SELECT value FROM meta WHERE key = 'rev'").fetchone()[0])
                    rows = conn.execute(f"{_SELECT} WHERE rev > ? ORDER BY seq", (rev,)).fetchall()
                finally:
                    conn.execute("COMMIT")
                return [row_to_job(r) for r in rows], current
            except sqlite3.OperationalError as exc:
                if "locked" in str(exc) or "busy" in str(exc):
                    time.sleep(0.01 * (attempt + 1))
                    continue
                raise self._store_error(exc) from None
        raise StoreError(f"the job database {self.path} stayed locked by another process; try again")

    def count(self, statuses: Iterable[JobStatus] | None = None) -> int:
        if statuses is None:
            return int(self._read("SELECT COUNT(*) FROM jobs")[0][0])
        values = [JobStatus.parse(s).value for s in statuses]
        return int(self._read(f"SELECT COUNT(*) FROM jobs WHERE status IN ({', '.join('?' for _ in values)})",
                              values)[0][0])

    def status_counts(self) -> dict[JobStatus, int]:
        return {JobStatus(s): n for s, n in self._read("SELECT status, COUNT(*) FROM jobs GROUP BY status")}

    def events(self, job_id: str | None = None, since: datetime | None = None) -> list[Event]:
        where, params = [], []
        if job_id is not None:
            where.append("job_id = ?")
            params.append(job_id)
        if since is not None:
            where.append("time >= ?")
            params.append(since.timestamp())
        sql = "SELECT job_id, time, from_status, to_status, reason, source FROM events"
        sql += (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY id"
        return [
            Event(r[0], to_utc(r[1]) or utcnow(), JobStatus(r[2]) if r[2] else None, JobStatus(r[3]), r[4], r[5])
            for r in self._read(sql, params)
        ]

    def last_event_id(self) -> int:
        return int(self._read("SELECT COALESCE(MAX(id), 0) FROM events")[0][0])

    def final_events_after(self, event_id: int, upto: int) -> list[tuple[int, Event]]:
        """Events in (event_id, upto] that ended a job, with their ids."""
        rows = self._read(
            "SELECT id, job_id, time, from_status, to_status, reason, source FROM events "
            "WHERE id > ? AND id <= ? AND to_status IN ('completed', 'failed', 'cancelled') ORDER BY id",
            (event_id, upto),
        )
        return [(r[0], Event(r[1], to_utc(r[2]) or utcnow(), JobStatus(r[3]) if r[3] else None, JobStatus(r[4]),
                             r[5], r[6])) for r in rows]

    def find_native(self, scheduler: str, native_id: str) -> JobInfo | None:
        rows = self._read(f"{_SELECT} WHERE scheduler = ? AND native_id = ?", (scheduler, native_id))
        return row_to_job(rows[0]) if rows else None

    def backup(self, destination: os.PathLike[str] | str) -> None:
        """A consistent copy of the database (SQLite's online backup), safe while others write."""
        target = sqlite3.connect(destination)
        try:
            self._connect().backup(target)
        finally:
            target.close()
