"""An ended job's usage samples leave its row (schema 6) and come back when the job is read alone;
stores written before migrate without losing them."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

from celline_jobs_nb.core.models import JobInfo, JobStatus, new_job_id
from celline_jobs_nb.core.paths import ProjectPaths
from celline_jobs_nb.store.schema import MIGRATIONS, SCHEMA_VERSION
from celline_jobs_nb.store.sqlite import JobStore

SAMPLES = [[1.8e9 + 2 * k, 95.5, (1 + k) * 2**20] for k in range(60)]


def _usage() -> dict[str, object]:
    return {"cpu_seconds": 12.5, "max_rss_bytes": 60 * 2**20, "samples": [list(s) for s in SAMPLES]}


def _row_metadata(store: JobStore, job_id: str) -> str:
    return store._connect().execute("SELECT metadata FROM jobs WHERE job_id = ?", (job_id,)).fetchone()[0]


def test_a_job_that_ends_keeps_its_samples_out_of_its_row(project: Path):
    store = JobStore(project)
    job = JobInfo(job_id=new_job_id(), name="count", status=JobStatus.RUNNING, metadata={"usage": _usage()})
    store.insert(job)
    assert "samples" in _row_metadata(store, job.job_id)  # running: the poller appends to them
    assert store.update(job.job_id, JobStatus.COMPLETED, exit_code=0)
    assert "samples" not in _row_metadata(store, job.job_id)
    listed = store.list([JobStatus.COMPLETED])[0]
    assert "samples" not in listed.metadata["usage"] and listed.metadata["usage"]["cpu_seconds"] == 12.5
    alone = store.get(job.job_id)  # what the detail panel reads: the sparkline is still there
    assert alone.metadata["usage"]["samples"] == SAMPLES
    assert store.get_many([job.job_id])[0].metadata["usage"]["samples"] == SAMPLES
    # inserted already ended (an import, a recovery): the same
    ended = JobInfo(job_id=new_job_id(), name="old", status=JobStatus.FAILED, metadata={"usage": _usage()})
    store.insert_many([ended])
    assert "samples" not in _row_metadata(store, ended.job_id)
    assert store.get(ended.job_id).metadata["usage"]["samples"] == SAMPLES
    assert store.forget([ended.job_id, job.job_id]) == 2
    assert store._connect().execute("SELECT COUNT(*) FROM job_samples").fetchone()[0] == 0


def test_a_store_of_schema_5_migrates_and_its_samples_move_lazily(project: Path):
    paths = ProjectPaths.of(project)
    paths.ensure()
    conn = sqlite3.connect(paths.db)
    for number, migration in enumerate(MIGRATIONS[:5]):
        conn.executescript(migration)
        conn.execute(f"PRAGMA user_version = {number + 1}")
    ids = [new_job_id() for _ in range(30)]
    now = time.time()
    for i, job_id in enumerate(ids):
        status = "running" if i == 0 else "completed"
        metadata = json.dumps({"usage": _usage(), "note": i})  # the old format: spaces, samples inline
        conn.execute("INSERT INTO jobs (job_id, name, status, command, scheduler, job_type, created_at, updated_at, "
                     "metadata, rev) VALUES (?, ?, ?, 'run', 'local', 'Count', ?, ?, ?, 1)",
                     (job_id, f"job{i}", status, now + i, now + i, metadata))
    conn.commit()
    conn.close()

    store = JobStore(project)
    assert store._connect().execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    before = [store.get(job_id) for job_id in ids]
    assert all(job.metadata["usage"]["samples"] == SAMPLES for job in before)
    assert store.compact_samples(batch=7) is True  # in steps of 7 rows
    assert "samples" in _row_metadata(store, ids[0])  # still running: untouched
    assert all("samples" not in _row_metadata(store, job_id) for job_id in ids[1:])
    after = [store.get(job_id) for job_id in ids]
    assert [j.metadata for j in after] == [j.metadata for j in before]  # nothing lost
    assert store.compact_samples() is True  # done once, then a no-op
    plan = " ".join(r[3] for r in store._connect().execute(
        "EXPLAIN QUERY PLAN SELECT job_id FROM jobs WHERE scheduler = ? AND native_id = ?", ("local", "1")))
    assert "jobs_native" in plan
