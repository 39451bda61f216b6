"""Schema versions. Each migration moves the database from version N-1 to N; ``PRAGMA user_version``
holds the version. Never edit a released migration: add the next one."""

from __future__ import annotations

MIGRATIONS: list[str] = [
    # 1: jobs, their status history (events), poller state, key/value meta
    """
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    INSERT INTO meta (key, value) VALUES ('rev', '0');
    CREATE TABLE jobs (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        job_id TEXT NOT NULL UNIQUE,
        name TEXT NOT NULL,
        status TEXT NOT NULL,
        command TEXT NOT NULL,
        start_time REAL,
        end_time REAL,
        log_file TEXT,
        working_dir TEXT,
        resources TEXT NOT NULL DEFAULT '{}',
        scheduler TEXT NOT NULL,
        native_id TEXT,
        job_type TEXT NOT NULL,
        submit_time REAL,
        exit_code INTEGER,
        signal INTEGER,
        reason TEXT,
        attempt INTEGER NOT NULL DEFAULT 1,
        retry_of TEXT,
        depends_on TEXT NOT NULL DEFAULT '[]',
        dependency_kind TEXT NOT NULL DEFAULT 'afterok',
        array_parent TEXT,
        array_index INTEGER,
        progress TEXT NOT NULL DEFAULT '{}',
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL,
        metadata TEXT NOT NULL DEFAULT '{}',
        rev INTEGER NOT NULL
    );
    CREATE INDEX jobs_status ON jobs (status);
    CREATE INDEX jobs_scheduler_status ON jobs (scheduler, status);
    CREATE INDEX jobs_created ON jobs (created_at);
    CREATE INDEX jobs_rev ON jobs (rev);
    CREATE INDEX jobs_native ON jobs (scheduler, native_id);
    CREATE INDEX jobs_array_parent ON jobs (array_parent);
    CREATE TABLE events (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        job_id TEXT NOT NULL,
        time REAL NOT NULL,
        from_status TEXT,
        to_status TEXT NOT NULL,
        reason TEXT,
        source TEXT NOT NULL
    );
    CREATE INDEX events_job ON events (job_id, id);
    CREATE TABLE poll_state (
        scheduler TEXT PRIMARY KEY,
        next_due REAL NOT NULL DEFAULT 0,
        last_attempt REAL,
        last_success REAL,
        error TEXT,
        calls_total INTEGER NOT NULL DEFAULT 0,
        last_calls INTEGER NOT NULL DEFAULT 0
    );
    """,
    # 2: "failed Count jobs" and the like are the common filtered reads of a long history; and the
    # failed jobs whose retry is undecided, which every poll tick asks for (without this index
    # that reads every failed row's metadata: 16 ms per tick at 100,000 jobs)
    """
    CREATE INDEX jobs_status_type ON jobs (status, job_type);
    CREATE INDEX jobs_retry_undecided ON jobs (seq) WHERE status = 'failed'
        AND json_extract(metadata, '$.retry_policy') IS NOT NULL
        AND json_extract(metadata, '$.retry_checked') IS NULL;
    """,
    # 3: cluster jobs settled from their exit-code files whose scheduler record is still to be read
    # (every refresh asks: the partial index holds exactly those rows); and jobs_status goes, as
    # (status, job_type) serves every status-only read too and each index costs every write
    """
    CREATE INDEX jobs_reconcile ON jobs (scheduler) WHERE json_extract(metadata, '$.reconcile') IS NOT NULL;
    DROP INDEX jobs_status;
    """,
    # 4: the notifications outbox (store/outbox.py): one row per message, written with the ending it
    # announces, claimed with a lease by the process delivering it, marked per channel
    """
    CREATE TABLE outbox (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        delivery_id TEXT NOT NULL UNIQUE,
        kind TEXT NOT NULL,
        job_id TEXT,
        status TEXT,
        event_id INTEGER NOT NULL,
        detail TEXT NOT NULL DEFAULT '{}',
        created_at REAL NOT NULL,
        state TEXT NOT NULL DEFAULT 'pending',
        delivered TEXT NOT NULL DEFAULT '[]',
        attempts INTEGER NOT NULL DEFAULT 0,
        next_try REAL NOT NULL DEFAULT 0,
        claimed_by TEXT,
        claimed_until REAL,
        error TEXT,
        done_at REAL
    );
    CREATE INDEX outbox_pending ON outbox (next_try) WHERE state = 'pending';
    CREATE INDEX outbox_done ON outbox (done_at) WHERE state != 'pending';
    """,
    # 5: a listing filtered by type alone (`celline-jobs list --type Count`, the dashboard's type
    # filter) reads its rows through an index, as every other filter combination does
    """
    CREATE INDEX jobs_type ON jobs (job_type);
    """,
    # 6: an ended job's usage samples (up to 60 [time, cpu %, rss] points of a local job, ~2 kB of
    # JSON) leave its row for this table, compressed (store/samples.py): every listing and history
    # read of the row no longer carries them. Rows written before move lazily (``compact_samples``).
    # The native-id and array-parent indexes hold only the rows that have one.
    """
    CREATE TABLE job_samples (job_id TEXT PRIMARY KEY, data BLOB NOT NULL) WITHOUT ROWID;
    DROP INDEX jobs_native;
    CREATE INDEX jobs_native ON jobs (scheduler, native_id) WHERE native_id IS NOT NULL;
    DROP INDEX jobs_array_parent;
    CREATE INDEX jobs_array_parent ON jobs (array_parent) WHERE array_parent IS NOT NULL;
    INSERT OR REPLACE INTO meta (key, value) SELECT 'samples_before', COALESCE(MAX(seq), 0) FROM jobs;
    """,
    # 7: the retries, by creation time: the history per job in chunks (``iter_history``) reads a
    # chunk's jobs and the later retries of their chains, not every later row
    """
    CREATE INDEX jobs_retries ON jobs (created_at) WHERE retry_of IS NOT NULL;
    """,
    # 8: the usage record's five figures stored as one array (store/rows.py ``pack_usage``): ~70
    # bytes less per job. Rows written before are packed lazily (``compact_samples``, in the daily
    # copier); readers read both forms.
    """
    INSERT OR REPLACE INTO meta (key, value) SELECT 'usage_before', COALESCE(MAX(seq), 0) FROM jobs;
    """,
    # 9: a progress of percent and stage alone (every finished job's) stored as a pair,
    # '[100.0,"done"]' (store/rows.py ``encode``): ~18 bytes less per job. The same lazy pass as 8
    # runs again over the rows written before.
    """
    INSERT OR REPLACE INTO meta (key, value) SELECT 'usage_before', COALESCE(MAX(seq), 0) FROM jobs;
    DELETE FROM meta WHERE key = 'usage_packed';
    """,
]

SCHEMA_VERSION = len(MIGRATIONS)
