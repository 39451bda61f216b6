"""Daily backups: taken off the caller's path (a thread for a small database, a detached process
for a big one), one copier at a time, and a size-aware retention."""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path

import pytest

from celline_jobs_nb.core.errors import StoreError
from celline_jobs_nb.core.models import JobInfo, new_job_id
from celline_jobs_nb.core.paths import ProjectPaths
from celline_jobs_nb.store import JobStore
from celline_jobs_nb.store import backup as backups

DAY = 86400.0


def _fill(store: JobStore, megabytes: int) -> None:
    padding = "x" * 4000
    jobs = [JobInfo(job_id=new_job_id(), name=f"j{i}", command="true", metadata={"pad": padding})
            for i in range(megabytes * 256)]
    store.insert_many(jobs)


def _wait_for(predicate, timeout: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def test_a_due_backup_of_a_big_database_never_waits_for_the_copy(project: Path):
    store = JobStore(project)
    _fill(store, 6)  # above INLINE_MAX_BYTES: copied by a detached process
    assert backups._db_bytes(store.paths) > backups.INLINE_MAX_BYTES
    store.close()
    # Another process holds the database exclusively: no copy can be made until it lets go.
    holder = sqlite3.connect(store.path, isolation_level=None)
    holder.execute("PRAGMA locking_mode=EXCLUSIVE")
    holder.execute("BEGIN EXCLUSIVE")
    try:
        assert backups.backup_if_due(ProjectPaths.of(project)) is True  # returned with no copy made
        paths = ProjectPaths.of(project)
        assert backups.list_backups(paths) == []
        assert _wait_for(lambda: backups.backup_running(paths))  # the copier waits for the database
        assert backups.backup_if_due(paths) is False  # one copier at a time
        assert backups.list_backups(paths) == []
    finally:
        holder.execute("COMMIT")
        holder.close()
    assert _wait_for(lambda: len(backups.list_backups(paths)) == 1)
    copy = backups.list_backups(paths)[0]
    assert backups.is_intact(copy)
    assert sqlite3.connect(copy).execute("SELECT COUNT(*) FROM jobs").fetchone()[0] == 6 * 256
    assert not list(paths.backups_dir.glob("*.partial"))
    assert backups.backup_if_due(paths) is False  # one a day


def test_a_small_database_is_copied_by_a_thread_and_the_next_is_a_day_later(project: Path):
    store = JobStore(project)
    store.insert(JobInfo(job_id=new_job_id(), name="one", command="true"))
    paths = store.paths
    assert backups.backup_if_due(store) is True
    assert _wait_for(lambda: len(backups.list_backups(paths)) == 1)
    assert backups.backup_if_due(store) is False
    newest = backups.list_backups(paths)[0]
    assert not backups.backup_due(paths, now=time.time() + DAY - 60)
    assert backups.backup_due(paths, now=backups._stamp_of(newest) + DAY)


def _fake_backup(paths: ProjectPaths, when: float, size: int) -> Path:
    paths.backups_dir.mkdir(parents=True, exist_ok=True)
    path = paths.backups_dir / f"jobs-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime(when))}.db"
    with open(path, "wb") as handle:
        handle.truncate(size)  # sparse: sizes of a big project without the disk use
    return path


def test_retention_keeps_the_newest_two_and_one_a_week_for_four_weeks(project: Path):
    paths = ProjectPaths.of(project)
    now = time.time()
    made = [_fake_backup(paths, now - day * DAY - 600, 2**20) for day in range(40)]  # daily, newest first
    removed = backups.prune_backups(paths, now=now)
    kept = backups.list_backups(paths)
    assert kept[:2] == made[:2]
    ages = sorted(int((now - backups._stamp_of(p)) // DAY) for p in kept)
    assert ages == [0, 1, 7, 14, 21]  # the newest two, then the newest of each older week
    assert len(kept) + len(removed) == 40


def test_retention_keeps_fewer_copies_of_a_big_database(project: Path):
    paths = ProjectPaths.of(project)
    now = time.time()
    for day in range(30):
        _fake_backup(paths, now - day * DAY - 600, 900 * 2**20)  # a store of about a million jobs
    backups.prune_backups(paths, now=now)
    kept = backups.list_backups(paths)
    assert len(kept) == 2  # a third copy would pass MAX_TOTAL_BYTES
    assert sum(p.stat().st_size for p in kept) <= backups.MAX_TOTAL_BYTES


def test_db_backup_command_path_copies_now_and_applies_the_retention(project: Path):
    store = JobStore(project)
    store.insert(JobInfo(job_id=new_job_id(), name="one", command="true"))
    old = _fake_backup(store.paths, time.time() - 60 * DAY, 10)
    first = backups.create_backup(store)
    second = backups.create_backup(store)  # twice in one second: two files
    assert first != second and first.exists() and second.exists()
    assert backups.list_backups(store.paths)[:2] == [second, first]  # newest first, within one second too
    assert not old.exists()  # older than the weeks kept
    assert backups.is_intact(second)
    assert oct(second.stat().st_mode & 0o777) == oct(0o666 & ~_umask())


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def test_a_copy_of_a_damaged_database_is_discarded_and_the_good_copies_kept(project: Path):
    store = JobStore(project)
    _fill(store, 1)
    good = backups.create_backup(store)
    store._connect().execute("PRAGMA wal_checkpoint(TRUNCATE)")
    store.close()
    with open(store.path, "r+b") as handle:  # scribble over pages in the middle, header intact
        handle.seek(4096 * 20)
        handle.write(os.urandom(4096 * 4))
    with pytest.raises(StoreError, match="quick check"):
        backups.create_backup(ProjectPaths.of(project))
    assert backups.list_backups(ProjectPaths.of(project)) == [good] and backups.is_intact(good)
    assert not list(ProjectPaths.of(project).backups_dir.glob("*.partial"))
