"""The job store's writes: inserts, updates (every status change checked by
``core.transitions.can_transition`` and recorded in ``events``), claiming pending jobs and flags,
forgetting ended jobs. A mixin of ``JobStore`` (``store.sqlite``), which supplies the transactions
(``_retrying``, ``_read``) and the revisions (``_lazy_rev``, ``_next_rev``)."""

from __future__ import annotations

import json
import logging
import sqlite3
import time
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from ..core import reasons
from ..core.dependencies import Verdict, dependency_verdict
from ..core.errors import InvalidInputError
from ..core.models import JobInfo, JobStatus, utcnow, validate_job_id
from ..core.safeio import warn_once
from ..core.transitions import can_transition
from ..core.updates import JobUpdate
from . import samples as _samples
from .outbox import record_ending
from .rows import COLUMNS, PROBLEMS_META_KEY, encode, metadata_of, row_to_job

T = TypeVar("T")
log = logging.getLogger("celline.job")

_COLUMNS = COLUMNS
# Fields an update may set (job_id, created_at and the scheduler are fixed at insert).
UPDATABLE = frozenset(_COLUMNS) - {"job_id", "created_at", "updated_at", "status", "scheduler"}
_SELECT = "SELECT " + ", ".join(_COLUMNS) + ", rev FROM jobs"


def _stored_metadata(text: str | None) -> dict[str, Any]:
    try:
        return metadata_of(text)
    except ValueError:
        return {}


def _never_satisfied_reason(job: JobInfo, parents: dict[str, JobStatus]) -> str:
    """E.g. "DependencyNeverSatisfied: afterok on 1m8j0xztza85y (failed)"."""
    blocking = [p for p in job.depends_on if parents.get(p) is not JobStatus.COMPLETED]
    states = ", ".join(f"{p} ({parents[p].value if p in parents else 'missing'})" for p in blocking)
    return reasons.dependency_never_satisfied(f"{job.dependency_kind} on {states}")


class WritesMixin:
    """``JobStore``'s writes."""

    if TYPE_CHECKING:
        def _retrying(self, action: Callable[[sqlite3.Connection], T]) -> T: ...

        def _read(self, sql: str, params: Sequence[Any] = ()) -> list[Any]: ...

        @staticmethod
        def _lazy_rev(conn: sqlite3.Connection) -> Callable[[], int]: ...

        @staticmethod
        def _next_rev(conn: sqlite3.Connection) -> int: ...

    # -- helpers used inside transactions ----------------------------------------------------

    @staticmethod
    def _event(conn: sqlite3.Connection, job_id: str, old: JobStatus | None, new: JobStatus,
               reason: str | None, source: str) -> None:
        cursor = conn.execute(
            "INSERT INTO events (job_id, time, from_status, to_status, reason, source) VALUES (?, ?, ?, ?, ?, ?)",
            (job_id, time.time(), old.value if old else None, new.value, reason, source),
        )
        if new.final:  # its notification, if a notifier is configured, in this same transaction
            record_ending(conn, int(cursor.lastrowid or 0), job_id, new.value, source)

    @staticmethod
    def _insert_row(conn: sqlite3.Connection, job: JobInfo, rev: int) -> None:
        values = []
        moved = None
        for column in _COLUMNS:
            value = getattr(job, column)
            if column == "updated_at":
                value = utcnow()
            elif column == "metadata" and job.status.final:  # an ended job's samples: store/samples.py
                value, moved = _samples.split(value)
            values.append(encode(column, value))
        placeholders = ", ".join("?" for _ in _COLUMNS)
        conn.execute(
            f"INSERT INTO jobs ({', '.join(_COLUMNS)}, rev) VALUES ({placeholders}, ?)", (*values, rev)
        )
        _samples.store(conn, job.job_id, moved)

    def _apply(self, conn: sqlite3.Connection, update: JobUpdate, rev: Callable[[], int]) -> bool:
        for key in update.fields:
            if key not in UPDATABLE:
                raise InvalidInputError(f"cannot update job field {key!r}")
        read = ("status", "reason", "metadata", *(k for k in update.fields if k not in ("reason", "metadata")))
        row = conn.execute(f"SELECT {', '.join(read)} FROM jobs WHERE job_id = ?", (update.job_id,)).fetchone()
        if row is None:
            return False
        current = dict(zip(read, row, strict=True))
        old = JobStatus(current["status"])
        new = update.status or old
        if not can_transition(old, new):
            return False
        changes: dict[str, Any] = {}
        rejected: list[str] = []
        for key, value in update.fields.items():
            if key == "metadata":
                merged = _stored_metadata(current["metadata"])
                merged.update(value or {})
                value = merged
            try:
                encoded = encode(key, value)
            except InvalidInputError as exc:
                # One value the store could not read back (an exit code of 1e300 from a job's own
                # file): the rest of the update, and every other job's, still lands.
                rejected.append(str(exc))
                continue
            if encoded != current[key]:
                changes[key] = encoded
        if rejected:
            warn_once(log, update.job_id, f"values not stored: {'; '.join(rejected)}")
            merged = _stored_metadata(changes.get("metadata", current.get("metadata")))
            merged[PROBLEMS_META_KEY] = rejected[:5]
            changes["metadata"] = encode("metadata", merged)
        if new is not old:
            changes["status"] = new.value
        if new.final and _samples.has_samples(changes.get("metadata", current["metadata"])):
            rest, moved = _samples.split(_stored_metadata(changes.get("metadata", current["metadata"])))
            _samples.store(conn, update.job_id, moved)
            changes["metadata"] = encode("metadata", rest)
        if not changes:
            return False
        changes["updated_at"] = time.time()
        changes["rev"] = rev()
        assignments = ", ".join(f"{key} = ?" for key in changes)
        conn.execute(f"UPDATE jobs SET {assignments} WHERE job_id = ?", (*changes.values(), update.job_id))
        if new is not old:
            self._event(conn, update.job_id, old, new, update.fields.get("reason", current["reason"]), update.source)
        return True

    # -- writes ------------------------------------------------------------------------------

    def insert(self, job: JobInfo, source: str = "submit") -> JobInfo:
        validate_job_id(job.job_id)

        def action(conn: sqlite3.Connection) -> None:
            rev = self._next_rev(conn)
            try:
                self._insert_row(conn, job, rev)
            except sqlite3.IntegrityError:
                raise InvalidInputError(f"a job with id {job.job_id!r} already exists") from None
            self._event(conn, job.job_id, None, job.status, job.reason, source)

        self._retrying(action)
        return job

    def insert_many(self, jobs: Iterable[JobInfo], source: str = "submit") -> int:
        """Insert jobs in one transaction; ids already present are skipped. Returns how many were new."""
        jobs = list(jobs)

        def action(conn: sqlite3.Connection) -> int:
            rev = self._lazy_rev(conn)
            added = 0
            for job in jobs:
                validate_job_id(job.job_id)
                if conn.execute("SELECT 1 FROM jobs WHERE job_id = ?", (job.job_id,)).fetchone():
                    continue
                self._insert_row(conn, job, rev())
                self._event(conn, job.job_id, None, job.status, job.reason, source)
                added += 1
            return added

        return self._retrying(action)

    def update(self, job_id: str, status: JobStatus | None = None, source: str = "monitor", **fields: Any) -> bool:
        """Apply one change. Returns False when the job is missing, the transition is backwards,
        or nothing actually changed."""
        return bool(self.apply([JobUpdate(job_id, status, fields, source)]))

    def apply(self, updates: Sequence[JobUpdate], *, poll_due: str | None = None) -> list[str]:
        """Apply many changes in one transaction; returns the ids that changed. ``poll_due``: also
        make that scheduler's next poll due now, in the same transaction (after a submit)."""
        if not updates and poll_due is None:
            return []

        def action(conn: sqlite3.Connection) -> list[str]:
            rev = self._lazy_rev(conn)
            changed = [u.job_id for u in updates if self._apply(conn, u, rev)]
            if poll_due is not None:
                conn.execute("UPDATE poll_state SET next_due = 0 WHERE scheduler = ?", (poll_due,))
            return changed

        return self._retrying(action)

    def claim_pending(self, scheduler: str, max_active: int | None) -> tuple[list[JobInfo], list[JobInfo]]:
        """Atomically pick the pending jobs of ``scheduler`` that may start now.

        At most ``max_active`` jobs of this scheduler are queued or running at once (None: no
        limit). A job starts only when its dependencies allow; one whose dependency can never be
        met is cancelled with the reason. Claimed jobs move to ``queued``. Returns
        (claimed, cancelled).
        """

        def action(conn: sqlite3.Connection) -> tuple[list[JobInfo], list[JobInfo]]:
            busy = conn.execute(
                "SELECT COUNT(*) FROM jobs WHERE scheduler = ? AND status IN ('queued', 'running', 'held')",
                (scheduler,),
            ).fetchone()[0]
            free = None if max_active is None else max(0, max_active - busy)
            rows = conn.execute(
                f"{_SELECT} WHERE scheduler = ? AND status = 'pending' ORDER BY seq", (scheduler,)
            ).fetchall()
            rev = self._lazy_rev(conn)
            claimed: list[JobInfo] = []
            cancelled: list[JobInfo] = []
            now = time.time()
            for row in rows:
                if free is not None and len(claimed) >= free:
                    break
                job = row_to_job(row)
                if float(job.metadata.get("not_before") or 0) > now:
                    continue  # an automatic retry still in its backoff
                if job.depends_on:
                    parents = self._statuses(conn, job.depends_on)
                    verdict = dependency_verdict(job.dependency_kind, (parents.get(p) for p in job.depends_on))
                    if verdict is Verdict.WAIT:
                        continue
                    if verdict is Verdict.NEVER:
                        reason = _never_satisfied_reason(job, parents)
                        self._apply(conn, JobUpdate(job.job_id, JobStatus.CANCELLED,
                                                    {"reason": reason, "end_time": utcnow()}, "dependency"), rev)
                        job.status, job.reason = JobStatus.CANCELLED, reason
                        cancelled.append(job)
                        continue
                self._apply(conn, JobUpdate(job.job_id, JobStatus.QUEUED, {"reason": None}, "dispatch"), rev)
                job.status, job.reason = JobStatus.QUEUED, None
                claimed.append(job)
            return claimed, cancelled

        return self._retrying(action)

    @staticmethod
    def _statuses(conn: sqlite3.Connection, job_ids: Sequence[str]) -> dict[str, JobStatus]:
        marks = ", ".join("?" for _ in job_ids)
        rows = conn.execute(f"SELECT job_id, status FROM jobs WHERE job_id IN ({marks})", tuple(job_ids))
        return {job_id: JobStatus(status) for job_id, status in rows}

    def claim_flag(self, job_id: str, key: str, value: Any = True) -> bool:
        """Set ``metadata[key]`` if it is not set yet; True for the one caller that set it (so an
        action such as an automatic retry happens once, whichever process sees the job first)."""
        path = "$." + key

        def action(conn: sqlite3.Connection) -> bool:
            cursor = conn.execute(
                "UPDATE jobs SET metadata = json_set(metadata, ?, json(?)) "
                "WHERE job_id = ? AND json_extract(metadata, ?) IS NULL",
                (path, json.dumps(value), job_id, path),
            )
            return cursor.rowcount == 1

        return self._retrying(action)

    def failed_awaiting_retry(self) -> list[JobInfo]:
        """Failed jobs with a retry policy whose retry has not been decided yet."""
        # The partial index holds exactly these rows; the planner would otherwise pick a status
        # index and read the metadata of every failed job, on every poll tick.
        rows = self._read(
            f"{_SELECT} INDEXED BY jobs_retry_undecided WHERE status = 'failed' "
            "AND json_extract(metadata, '$.retry_policy') IS NOT NULL "
            "AND json_extract(metadata, '$.retry_checked') IS NULL ORDER BY seq"
        )
        return [row_to_job(r) for r in rows]

    def forget(self, job_ids: Sequence[str]) -> int:
        """Drop ended jobs' rows and their status history (``celline-jobs clean --forget``); active
        jobs are never dropped. Returns how many rows went."""
        finals = [s.value for s in JobStatus if s.final]

        def action(conn: sqlite3.Connection) -> int:
            dropped = 0
            for start in range(0, len(job_ids), 500):
                chunk = tuple(job_ids[start:start + 500])
                marks = ", ".join("?" for _ in chunk)
                status_marks = ", ".join("?" for _ in finals)
                dropped += conn.execute(f"DELETE FROM jobs WHERE job_id IN ({marks}) AND status IN ({status_marks})",
                                        (*chunk, *finals)).rowcount
                conn.execute(f"DELETE FROM job_samples WHERE job_id IN ({marks}) AND job_id NOT IN (SELECT job_id "
                             "FROM jobs)", chunk)
                conn.execute(f"DELETE FROM events WHERE job_id IN ({marks}) AND job_id NOT IN (SELECT job_id FROM "
                             "jobs)", chunk)
            return dropped

        return self._retrying(action)
