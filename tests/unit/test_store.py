from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from celline_jobs_nb.core.errors import JobNotFoundError, StoreError
from celline_jobs_nb.core.models import JobInfo, JobStatus, new_job_id
from celline_jobs_nb.store import JobStore, JobUpdate
from celline_jobs_nb.store.legacy import export_legacy_json, import_legacy_json
from celline_jobs_nb.store.schema import SCHEMA_VERSION


def _job(**kw) -> JobInfo:
    return JobInfo(job_id=kw.pop("job_id", new_job_id()), name=kw.pop("name", "j"), command="true", **kw)


def test_database_lives_in_dot_celline_with_wal_and_schema_version(project: Path):
    store = JobStore(project)
    assert store.path == project / ".celline" / "jobs.db"
    conn = sqlite3.connect(store.path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


def test_status_moves_forward_only_and_every_change_is_an_event(project: Path):
    store = JobStore(project)
    job = store.insert(_job())
    assert store.update(job.job_id, JobStatus.RUNNING, start_time=job.created_at)
    assert store.update(job.job_id, JobStatus.COMPLETED, exit_code=0)
    assert not store.update(job.job_id, JobStatus.RUNNING)  # a late poll
    assert store.get(job.job_id).status is JobStatus.COMPLETED
    assert [(e.from_status, e.to_status) for e in store.events(job.job_id)] == [
        (None, JobStatus.PENDING), (JobStatus.PENDING, JobStatus.RUNNING), (JobStatus.RUNNING, JobStatus.COMPLETED)]


def test_metadata_is_merged_and_revision_tracks_changes(project: Path):
    store = JobStore(project)
    job = store.insert(_job(metadata={"a": 1}))
    rev = store.revision()
    store.apply([JobUpdate(job.job_id, None, {"metadata": {"b": 2}})])
    changed, new_rev = store.changed_since(rev)
    assert [j.job_id for j in changed] == [job.job_id] and new_rev > rev
    assert changed[0].metadata == {"a": 1, "b": 2}
    assert store.changed_since(new_rev)[0] == []
    assert not store.update(job.job_id, None, metadata={"b": 2})  # nothing changed: no new revision
    assert store.revision() == new_rev


def test_resolve_accepts_unique_prefixes(project: Path):
    store = JobStore(project)
    a = store.insert(_job(job_id="abc123"))
    store.insert(_job(job_id="abd456"))
    assert store.resolve("abc") == a.job_id
    with pytest.raises(JobNotFoundError, match="ambiguous"):
        store.resolve("ab")
    with pytest.raises(JobNotFoundError, match="no job"):
        store.resolve("zzz")
    with pytest.raises(JobNotFoundError):
        store.resolve("%")


def test_claim_pending_respects_limit_and_dependencies(project: Path):
    store = JobStore(project)
    parent = store.insert(_job())
    child = store.insert(_job(depends_on=[parent.job_id]))
    other = store.insert(_job())
    claimed, cancelled = store.claim_pending("local", 1)
    assert [j.job_id for j in claimed] == [parent.job_id] and cancelled == []
    claimed, _ = store.claim_pending("local", 1)
    assert claimed == []  # the slot is taken
    store.update(parent.job_id, JobStatus.FAILED, exit_code=1)
    claimed, cancelled = store.claim_pending("local", 2)
    assert [j.job_id for j in claimed] == [other.job_id]
    assert [j.job_id for j in cancelled] == [child.job_id]
    assert "DependencyNeverSatisfied" in store.get(child.job_id).reason
    assert parent.job_id in store.get(child.job_id).reason


def test_poll_turns_are_shared_between_processes(project: Path):
    a, b = JobStore(project), JobStore(project)
    assert a.claim_poll("slurm", 30)
    assert not b.claim_poll("slurm", 30)
    b.reset_poll_due("slurm")
    assert b.claim_poll("slurm", 30)
    a.record_poll("slurm", False, "squeue timed out", 1)
    state = b.poll_states()["slurm"]
    assert state.stale and state.error == "squeue timed out"


def test_corrupted_database_gives_a_clear_error_and_is_not_reset(project: Path):
    db = project / ".celline" / "jobs.db"
    db.parent.mkdir()
    db.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError, match=r"corrupted.*celline-jobs db recover"):
        JobStore(project)
    assert db.read_bytes().startswith(b"this is not sqlite")


def test_legacy_json_is_imported_once_with_a_backup(project: Path):
    legacy = project / ".celline" / "jobs.json"
    legacy.parent.mkdir()
    legacy.write_text(json.dumps({
        "job1": {"job_id": "job1", "name": "count", "status": "completed", "command": "bash count.sh",
                 "start_time": "2024-01-02T03:04:05", "end_time": "2024-01-02T04:04:05", "log_file": "logs/job1.log",
                 "working_dir": "/data", "resources": {"cpus": 4, "memory": "32G"}},
        "job2": {"job_id": "job2", "name": "pre", "status": "running", "command": "bash pre.sh"},
        "../../evil": {"name": "<img src=x onerror=alert(1)>", "status": "weird", "command": "rm -rf /",
                       "resources": {"mem": "lots"}},
    }))
    store = JobStore(project)
    assert import_legacy_json(store) == 3
    assert import_legacy_json(store) == 0  # same content: not again
    jobs = {j.name: j for j in store.list()}
    assert jobs["count"].status is JobStatus.COMPLETED and jobs["count"].resources.cpus == 4
    assert jobs["count"].start_time.tzinfo is not None
    assert jobs["pre"].status is JobStatus.UNKNOWN and "no longer tracked" in jobs["pre"].reason
    evil = jobs["<img src=x onerror=alert(1)>"]
    assert "/" not in evil.job_id and evil.metadata["legacy_job_id"] == "../../evil"
    assert evil.status is JobStatus.UNKNOWN
    assert list((project / ".celline" / "backups").iterdir())
    out = export_legacy_json(store, project / "out.json")
    exported = json.loads(out.read_text())
    assert exported["job1"]["resources"] == {"cpus": 4, "mem": "32G"}


@pytest.mark.parametrize("content", ["not json", "[1, 2]", '"text"', '{"a": 5}'])
def test_broken_legacy_json_is_left_alone(project: Path, content: str):
    legacy = project / ".celline" / "jobs.json"
    legacy.parent.mkdir()
    legacy.write_text(content)
    store = JobStore(project)
    assert import_legacy_json(store) == 0
    assert legacy.read_text() == content


def test_disk_usage_of_project_folders(project: Path):
    from celline_jobs_nb import JobMonitor

    (project / "data" / "s1").mkdir(parents=True)
    (project / "data" / "s1" / "matrix.h5").write_bytes(b"x" * 5000)
    (project / "resources").mkdir()
    (project / "resources" / "ref.fa").write_bytes(b"y" * 300)
    (project / "data" / "link").symlink_to("/usr")  # links are not followed
    usage = JobMonitor(project).disk_usage()
    assert usage["folders"]["data"] == 5000 and usage["folders"]["resources"] == 300
    assert usage["free_bytes"] > 0 and usage["total_bytes"] >= usage["free_bytes"]


def test_a_version_1_database_is_migrated_in_place(project: Path):
    from celline_jobs_nb.store.schema import MIGRATIONS

    db = project / ".celline" / "jobs.db"
    db.parent.mkdir()
    conn = sqlite3.connect(db)
    conn.executescript(MIGRATIONS[0])
    conn.execute("PRAGMA user_version = 1")
    conn.execute("INSERT INTO jobs (job_id, name, status, command, scheduler, job_type, created_at, updated_at, rev) "
                 "VALUES ('old1', 'kept', 'completed', 'true', 'local', 'Count', 1, 1, 1)")
    conn.commit()
    conn.close()
    store = JobStore(project)
    assert store.get("old1").name == "kept"
    indexes = {r[1] for r in sqlite3.connect(db).execute("PRAGMA index_list(jobs)")}
    assert {"jobs_status_type", "jobs_reconcile"} <= indexes and "jobs_status" not in indexes
    assert sqlite3.connect(db).execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert [j.job_id for j in store.list([JobStatus.COMPLETED])] == ["old1"]  # (status, type) serves it


def test_the_wal_is_checkpointed_in_the_background(project: Path):
    """A checkpoint's fsync stalled the commit that triggered it (SQLite's own automatic checkpoint,
    every 1,000 WAL pages): writes are copied into the database file by a thread of the store's."""
    import threading
    import time

    from celline_jobs_nb.store.sqlite import AUTOCHECKPOINT_PAGES, CHECKPOINT_EVERY_COMMITS

    store = JobStore(project)
    db = store.path
    before = db.stat().st_size
    jobs = [JobInfo(job_id=new_job_id(), name=f"j{i}", command="true") for i in range(CHECKPOINT_EVERY_COMMITS * 2)]
    for job in jobs:  # one commit each, far fewer WAL pages than SQLite's own threshold
        store.insert(job)
    wal_pages = (db.with_name(db.name + "-wal").stat().st_size) // 4096
    assert wal_pages < AUTOCHECKPOINT_PAGES
    deadline = time.monotonic() + 10
    while db.stat().st_size == before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert db.stat().st_size > before  # the jobs reached the database file itself
    assert [t.name for t in threading.enumerate()].count("celline-jobs-checkpoint") >= 1
    assert len(store.list()) == len(jobs)
