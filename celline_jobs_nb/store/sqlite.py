"""The job store: SQLite in WAL mode at ``<project>/.celline/jobs.db``.

Several processes (notebook kernels, the CLI, job wrappers) read and write it at once. Every
write is one ``BEGIN IMMEDIATE`` transaction that is retried when the database is busy, so none is
lost and "database is locked" never reaches the user. Every status change goes through
``core.transitions.can_transition`` here and is recorded in ``events`` (the history).
Each write also bumps a global revision so readers can ask for "what changed since rev N".
"""

from __future__ import annotations

import json
import logging
import os
import random
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from ..core import reasons
from ..core.dependencies import Verdict, dependency_verdict
from ..core.errors import InvalidInputError, JobNotFoundError, StoreError
from ..core.models import (
    ACTIVE_STATUSES,
    JobInfo,
    JobStatus,
    to_utc,
    utcnow,
    validate_job_id,
)
from ..core.paths import ProjectPaths
from ..core.safeio import warn_once
from ..core.transitions import can_transition
from ..core.updates import JobUpdate  # re-exported: importers of store.sqlite.JobUpdate keep working
from . import samples as _samples
from .fsmode import journal_mode, read_only_reason
from .outbox import record_ending
from .queries import _LIST_SELECT, QueriesMixin  # noqa: F401  (_LIST_SELECT: importers of it keep working)
from .rows import COLUMNS, PROBLEMS_META_KEY, encode, metadata_of, row_to_job
from .schema import MIGRATIONS, SCHEMA_VERSION

T = TypeVar("T")
log = logging.getLogger("celline.job")

_COLUMNS = COLUMNS
# Fields an update may set (job_id, created_at and the scheduler are fixed at insert).
UPDATABLE = frozenset(_COLUMNS) - {"job_id", "created_at", "updated_at", "status", "scheduler"}
_SELECT = "SELECT " + ", ".join(_COLUMNS) + ", rev FROM jobs"
BUSY_RETRIES = 60


@dataclass(frozen=True)
class PollState:
    scheduler: str
    last_attempt: datetime | None
    last_success: datetime | None
    error: str | None
    calls_total: int
    last_calls: int

    @property
    def stale(self) -> bool:
        return self.error is not None


@dataclass(frozen=True)
class Event:
    job_id: str
    time: datetime
    from_status: JobStatus | None
    to_status: JobStatus
    reason: str | None
    source: str


def _files(directory: Path, pattern: str) -> Iterator[Path]:
    try:
        yield from directory.glob(pattern)
    except OSError:
        return


def create_shared(path: Path) -> None:
    """Create the database file with the mode every new file gets (0666 less the umask): SQLite
    would make it 0644, and its -wal/-shm files copy the database's mode, so a lab group sharing
    the project (umask 002) could not write it."""
    try:
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_CLOEXEC, 0o666))
    except FileExistsError:
        pass


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


#: Every this many write transactions, a process checkpoints the WAL on a thread of its own. SQLite
#: would otherwise do it inside a commit once the WAL holds 1,000 pages, and the checkpoint's fsync
#: (5-15 ms here, every ~45 submits) stalled that caller. Its own automatic checkpoint stays, at
#: AUTOCHECKPOINT_PAGES, for processes too short-lived to reach this count (job wrappers, the CLI).
CHECKPOINT_EVERY_COMMITS = 50
AUTOCHECKPOINT_PAGES = 4000


class _Checkpointer:
    """PASSIVE WAL checkpoints of one database on a background thread (they never block readers or
    writers); one per database file and process."""

    _of: ClassVar[dict[str, _Checkpointer]] = {}
    _of_lock = threading.Lock()

    def __init__(self, path: str) -> None:
        self._path = path
        self._wanted = threading.Event()
        self._thread: threading.Thread | None = None

    @classmethod
    def request(cls, path: str) -> None:
        with cls._of_lock:
            checkpointer = cls._of.setdefault(path, cls(path))
            if checkpointer._thread is None or not checkpointer._thread.is_alive():  # none yet, or forked
                checkpointer._thread = threading.Thread(target=checkpointer._run, daemon=True,
                                                        name="celline-jobs-checkpoint")
                checkpointer._thread.start()
        checkpointer._wanted.set()

    def _run(self) -> None:
        conn = sqlite3.connect(self._path, timeout=5.0, isolation_level=None, check_same_thread=False)
        while True:
            self._wanted.wait()
            self._wanted.clear()
            try:
                conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
            except sqlite3.Error as exc:  # the next commit's or request's checkpoint catches up
                log.debug("background checkpoint of %s failed: %s", self._path, exc)


class JobStore(QueriesMixin):
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

    # -- connections and transactions -------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is not None and getattr(self._local, "pid", None) == os.getpid():
            return conn
        try:
            if self.read_only is not None:
                conn = self._connect_read_only()
            else:
                conn = sqlite3.connect(self.path, timeout=5.0, isolation_level=None, check_same_thread=False)
                self._set_journal(conn)
            # 16 MiB of page cache (SQLite's default is 2 MiB): a long-lived reader (a notebook's
            # dashboard) listing thousands of jobs of a big store finds their pages in memory.
            conn.execute("PRAGMA cache_size=-16384")
            conn.execute("PRAGMA foreign_keys=ON")
        except sqlite3.DatabaseError as exc:
            raise self._store_error(exc) from None
        self._local.conn, self._local.pid = conn, os.getpid()
        return conn

    def _set_journal(self, conn: sqlite3.Connection) -> None:
        if self.journal == "rollback":
            # A database another host may open: the rollback journal, normal locking (fsmode docs).
            mode = conn.execute("PRAGMA journal_mode=DELETE").fetchone()[0]
            if mode != "delete":
                log.warning("job database %s stays in %s mode (another process has it open)", self.path, mode)
            conn.execute("PRAGMA locking_mode=NORMAL")
            conn.execute("PRAGMA synchronous=FULL")
            return
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute(f"PRAGMA wal_autocheckpoint={AUTOCHECKPOINT_PAGES}")

    def _connect_read_only(self) -> sqlite3.Connection:
        """``mode=ro``; when even that fails (a WAL database whose -shm this user cannot create),
        ``immutable=1``: SQLite then reads the file as it is, without locks (a snapshot)."""
        uri = self.path.absolute().as_uri()
        if not self._immutable:
            conn = sqlite3.connect(f"{uri}?mode=ro", uri=True, timeout=5.0, isolation_level=None,
                                   check_same_thread=False)
            try:
                conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
                return conn
            except sqlite3.OperationalError:
                conn.close()
                self._immutable = True
        return sqlite3.connect(f"{uri}?immutable=1", uri=True, isolation_level=None, check_same_thread=False)

    def _check_schema_readable(self) -> None:
        try:
            version = self._connect().execute("PRAGMA user_version").fetchone()[0]
        except sqlite3.DatabaseError as exc:
            raise self._store_error(exc) from None
        if version != SCHEMA_VERSION:
            raise StoreError(f"{self.path} has schema {version}, this version reads {SCHEMA_VERSION}, and you may "
                             f"not write it ({self.read_only}): ask the project's owner to run any celline-jobs "
                             "command")

    def _refuse_a_lost_database(self) -> None:
        """A project with job files but no database lost it: creating an empty one would hide
        every job. Say so, and how ``db recover`` rebuilds it."""
        if self.path.exists():
            return
        evidence = [p for p in (self.paths.backups_dir, self.paths.scripts_dir) if any(_files(p, "*"))]
        if any(_files(self.paths.logs_dir, "*.exitcode")):
            evidence.append(self.paths.logs_dir)
        if evidence:
            raise StoreError(f"the job database {self.path} is missing although {evidence[0]} holds this project's "
                             "jobs: run `celline-jobs db recover` to rebuild it from the backups and job files")

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    def _store_error(self, exc: BaseException) -> StoreError:
        text = str(exc)
        if "not a database" in text or "malformed" in text:
            return StoreError(
                f"the job database {self.path} is corrupted ({text}): "
                f"run `celline-jobs db recover` to restore the newest backup from {self.paths.backups_dir}"
            )
        if "disk" in text and ("full" in text or "I/O" in text):
            return StoreError(f"cannot write the job database {self.path}: {text}; free disk space and retry")
        return StoreError(f"job database {self.path}: {text}")

    def _retrying(self, action: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``action`` in BEGIN IMMEDIATE ... COMMIT, retrying while another process holds the lock."""
        if self.read_only is not None:
            raise StoreError(f"read-only: {self.read_only}; submit, cancel and retry need write access to "
                             "the project (ask its owner, or use a copy)")
        conn = self._connect()
        for attempt in range(BUSY_RETRIES):
            try:
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:
                if "locked" in str(exc) or "busy" in str(exc):
                    time.sleep(min(0.5, 0.01 * 2 ** min(attempt, 6)) * random.uniform(0.5, 1.5))
                    continue
                raise self._store_error(exc) from None
            except sqlite3.DatabaseError as exc:
                raise self._store_error(exc) from None
            try:
                result = action(conn)
                conn.execute("COMMIT")
            except BaseException as exc:
                try:
                    conn.execute("ROLLBACK")
                except sqlite3.Error:
                    pass
                if isinstance(exc, sqlite3.OperationalError) and ("locked" in str(exc) or "busy" in str(exc)):
                    time.sleep(min(0.5, 0.01 * 2 ** min(attempt, 6)) * random.uniform(0.5, 1.5))
                    continue
                if isinstance(exc, sqlite3.DatabaseError):
                    raise self._store_error(exc) from None
                raise
            self._commits += 1
            if self._commits % CHECKPOINT_EVERY_COMMITS == 0:
                _Checkpointer.request(str(self.path))
            return result
        raise StoreError(f"the job database {self.path} stayed locked by another process; try again")

    def _read(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        conn = self._connect()
        for attempt in range(BUSY_RETRIES):
            try:
                return conn.execute(sql, params).fetchall()
            except sqlite3.OperationalError as exc:
                if "locked" in str(exc) or "busy" in str(exc):
                    time.sleep(0.01 * (attempt + 1))
                    continue
                raise self._store_error(exc) from None
            except sqlite3.DatabaseError as exc:
                raise self._store_error(exc) from None
        raise StoreError(f"the job database {self.path} stayed locked by another process; try again")

    def _migrate(self) -> None:
        conn = self._connect()
        try:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
        except sqlite3.DatabaseError as exc:
            raise self._store_error(exc) from None
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"{self.path} was written by a newer celline_jobs_nb (schema {version} > {SCHEMA_VERSION}): upgrade"
            )
        if version == SCHEMA_VERSION:
            return

        def migrate(c: sqlite3.Connection) -> None:
            current = c.execute("PRAGMA user_version").fetchone()[0]  # another process may have migrated
            for number in range(current, SCHEMA_VERSION):
                for statement in MIGRATIONS[number].split(";"):
                    if statement.strip():
                        c.execute(statement)
                c.execute(f"PRAGMA user_version = {number + 1}")

        self._retrying(migrate)

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

    # -- poller bookkeeping ------------------------------------------------------------------

    def claim_poll(self, scheduler: str, interval: float) -> bool:
        """True when this caller should poll ``scheduler`` now. Processes watching the same project
        share one poll per interval instead of each querying the scheduler."""
        now = time.time()
        due = self._read("SELECT next_due FROM poll_state WHERE scheduler = ?", (scheduler,))
        if due and due[0][0] > now:
            return False  # the common answer, without taking the write lock

        def action(conn: sqlite3.Connection) -> bool:
            conn.execute("INSERT OR IGNORE INTO poll_state (scheduler) VALUES (?)", (scheduler,))
            cursor = conn.execute(
                "UPDATE poll_state SET next_due = ?, last_attempt = ? WHERE scheduler = ? AND next_due <= ?",
                (now + interval, now, scheduler, now),
            )
            return cursor.rowcount == 1

        return self._retrying(action)

    def reset_poll_due(self, scheduler: str) -> None:
        """Make the next poll of ``scheduler`` due now (after a submit or a cancel)."""
        self._retrying(lambda c: c.execute("UPDATE poll_state SET next_due = 0 WHERE scheduler = ?", (scheduler,)))

    def record_poll(self, scheduler: str, ok: bool, error: str | None, calls: int) -> None:
        now = time.time()

        def action(conn: sqlite3.Connection) -> None:
            conn.execute("INSERT OR IGNORE INTO poll_state (scheduler) VALUES (?)", (scheduler,))
            if ok:
                conn.execute(
                    "UPDATE poll_state SET last_success = ?, error = NULL, calls_total = calls_total + ?, "
                    "last_calls = ? WHERE scheduler = ?", (now, calls, calls, scheduler))
            else:
                conn.execute(
                    "UPDATE poll_state SET error = ?, calls_total = calls_total + ?, last_calls = ? "
                    "WHERE scheduler = ?", (error or "poll failed", calls, calls, scheduler))

        self._retrying(action)

    def poll_states(self) -> dict[str, PollState]:
        rows = self._read(
            "SELECT scheduler, last_attempt, last_success, error, calls_total, last_calls FROM poll_state"
        )
        return {
            r[0]: PollState(r[0], to_utc(r[1]) if r[1] else None, to_utc(r[2]) if r[2] else None, r[3], r[4], r[5])
            for r in rows
        }

    # -- meta --------------------------------------------------------------------------------

    def get_meta(self, key: str, default: str | None = None) -> str | None:
        rows = self._read("SELECT value FROM meta WHERE key = ?", (key,))
        return rows[0][0] if rows else default

    def compare_and_set_meta(self, key: str, expected: str | None, value: str) -> bool:
        """Set ``key`` to ``value`` only if it still holds ``expected`` (None: absent). True if set."""

        def action(conn: sqlite3.Connection) -> bool:
            row = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
            if (row[0] if row else None) != expected:
                return False
            conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))
            return True

        return self._retrying(action)

    def set_meta(self, key: str, value: str) -> None:
        self._retrying(lambda c: c.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value)))

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
