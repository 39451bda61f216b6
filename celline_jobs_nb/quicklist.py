"""`celline-jobs list` without the monitor: the common case answered by reading the store alone.

``JobMonitor`` and the whole store (settings, schedulers, notifications, logging, backups) cost a
short command about twice the interpreter's own start-up in imports. A project whose every job has
ended needs none of it to be listed: there is nothing to poll, settle, retry or announce. This
module reads the very rows ``JobStore.list`` reads (the store's columns and row decoding, the
listing's bounds and footer, the CLI's table) with one connection and a few indexed queries.

It answers only when the full path would do nothing but read; otherwise ``run`` returns None and
the CLI goes the usual way. It declines when: an option other than ``--limit`` or ``--json`` is
given; a settings file asks for anything (notifications, max_parallel, a journal
mode) or is broken (the full path reports it); the database is missing, not writable (the read-only
note), on a network filesystem, of another schema version, or due for its daily backup; the seed's
jobs.json is there to import; a job is active, awaits a retry decision or a reconciliation; a
notification outbox is configured; a scheduler's data is stale (the warning). The test
(tests/unit/test_quicklist.py) prints both ways over the same projects and compares.
"""

from __future__ import annotations

import os
import sqlite3
import stat
import sys
import time
from typing import TYPE_CHECKING, Any

from .core.errors import CellineJobsError
from .core.models import ACTIVE_STATUSES
from .core.paths import ProjectPaths

if TYPE_CHECKING:
    import argparse

    from .core.models import JobInfo

#: Set to skip this path (tests, or to rule it out when something looks wrong).
ENV_NO_QUICK = "CELLINE_JOBS_NO_QUICK"
#: The options answered here; any other list option (filters, --all) takes the full path.
_KNOWN = frozenset({"project", "command", "limit", "json"})
_OUTBOX_META_KEY = "notify.outbox"  # store.outbox.OUTBOX_META_KEY (a test checks they agree)


def run(args: argparse.Namespace) -> int | None:
    """Print what ``cmd_list`` prints and return its exit code, or None when the monitor is needed."""
    if os.environ.get(ENV_NO_QUICK) or any(value not in (None, False, [], "") for key, value in vars(args).items()
                                           if key not in _KNOWN):
        return None
    if getattr(args, "array_parent", None) or (args.all and args.json):
        return None  # a filter, or every row as JSON: streamed by the full path (store.iter_list)
    if args.limit is not None and args.limit < 1:
        return None  # the full path says what is wrong
    paths = ProjectPaths.of(args.project)
    conn = _connect_if_idle(paths)
    if conn is None:
        return None
    try:
        jobs, hidden = _read(conn, args)
    except sqlite3.Error:
        return None
    finally:
        conn.close()
    from .jobtable import jobs_table, print_table
    from .listing import hidden_note, json_rows

    if args.json:
        sys.stdout.writelines(json_rows(j.to_dict() for j in jobs))
        if hidden:
            print(hidden_note(hidden), file=sys.stderr)
        return 0
    if not jobs:
        print("no jobs yet: try `celline-jobs submit`")
        return 0
    print_table(jobs_table(jobs))
    if hidden:
        print(hidden_note(hidden))
    return 0


def _regular(path: os.PathLike[str] | str) -> bool:
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except OSError:
        return False


def _settings_ask_nothing(paths: ProjectPaths) -> bool:
    if os.environ.get("CELLINE_JOBS_DATABASE_MODE"):
        return False
    if not (os.path.lexists(paths.celline_settings) or os.path.lexists(paths.jobs_settings)):
        return True
    from .core.settings import JobsSettings

    try:
        settings = JobsSettings.load(paths)
    except CellineJobsError:
        return False  # the full path reports it
    return not settings.notify.enabled and settings.max_parallel is None and settings.database_mode == "auto"


def _connect_if_idle(paths: ProjectPaths) -> sqlite3.Connection | None:
    """A connection when listing is all there is to do (see the module's docstring), else None."""
    db, state = paths.db, paths.state_dir
    if not _regular(db) or not paths.logs_dir.is_dir() or os.path.lexists(paths.legacy_json):
        return None
    if not (os.access(db, os.W_OK) and os.access(state, os.W_OK | os.X_OK)):
        return None  # read-only: the full path says so
    if not _settings_ask_nothing(paths):
        return None
    from .store import backup
    from .store.fsmode import detect_filesystem, is_network_filesystem

    # fsmode.journal_mode with no override (declined above): WAL unless on a network filesystem.
    if is_network_filesystem(detect_filesystem(state)) or backup.backup_due(paths):
        return None
    from .store.schema import SCHEMA_VERSION

    try:
        conn = sqlite3.connect(db, timeout=5.0, isolation_level=None)
    except sqlite3.Error:
        return None
    try:
        if conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION and _idle(conn):
            return conn
    except sqlite3.Error:
        pass
    conn.close()
    return None


def _idle(conn: sqlite3.Connection) -> bool:
    """Nothing for a monitor to do: no active job, no retry to decide, no record to reconcile, no
    outbox, no stale scheduler (the queries of ``JobStore.schedulers_to_poll``,
    ``failed_awaiting_retry``, ``outbox.unconfigure`` and ``poll_states``)."""
    active = [s.value for s in ACTIVE_STATUSES]
    marks = ", ".join("?" for _ in active)
    busy = conn.execute(
        f"SELECT EXISTS (SELECT 1 FROM jobs WHERE status IN ({marks})) "
        "OR EXISTS (SELECT 1 FROM jobs INDEXED BY jobs_reconcile WHERE json_extract(metadata, '$.reconcile') "
        "IS NOT NULL) "
        "OR EXISTS (SELECT 1 FROM jobs INDEXED BY jobs_retry_undecided WHERE status = 'failed' AND "
        "json_extract(metadata, '$.retry_policy') IS NOT NULL AND json_extract(metadata, '$.retry_checked') IS NULL) "
        "OR EXISTS (SELECT 1 FROM meta WHERE key = ?) "
        "OR EXISTS (SELECT 1 FROM poll_state WHERE error IS NOT NULL)", [*active, _OUTBOX_META_KEY]).fetchone()[0]
    return not busy


def _read(conn: sqlite3.Connection, args: argparse.Namespace) -> tuple[list[JobInfo], int]:
    """The rows ``cmd_list`` shows (every job has ended here) and how many it leaves out."""
    from .listing import RECENT, RECENT_HOURS, RECENT_MAX
    from .store.rows import COLUMNS
    from .store.stored_job import rows_to_jobs

    select = "SELECT " + ", ".join(COLUMNS) + " FROM jobs"

    def rows(sql: str, params: list[Any]) -> list[JobInfo]:
        return rows_to_jobs(conn.execute(select + sql, params).fetchall())

    if args.limit is not None:
        jobs = rows(" ORDER BY seq DESC LIMIT ?", [args.limit])
        jobs.reverse()
        return jobs, 0
    # listing.bounded_jobs when no job is active: the ended ones of the last RECENT_HOURS (at most
    # RECENT_MAX), or the last RECENT when those are fewer.
    cutoff = time.time() - RECENT_HOURS * 3600
    jobs = rows(" INDEXED BY jobs_created WHERE created_at >= ? ORDER BY seq DESC LIMIT ?", [cutoff, RECENT_MAX])
    if len(jobs) < RECENT:
        jobs = rows(" ORDER BY seq DESC LIMIT ?", [RECENT])
    jobs.sort(key=lambda j: j.created_at)
    total = conn.execute("SELECT COUNT(*) FROM jobs").fetchone()[0]
    return jobs, max(0, total - len(jobs))
