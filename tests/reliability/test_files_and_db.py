"""Promises about files: logs that vanish, shrink, grow huge or hold garbage; a damaged database;
a full disk. None of them loses a job or crashes a reader."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from celline_jobs_nb import JobMonitor, JobStatus
from celline_jobs_nb.core.errors import StoreError
from celline_jobs_nb.core.logs import LogFollower, tail_lines


def cli(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "celline_jobs_nb", "--project", str(project), *args],
                          capture_output=True, text=True, timeout=60)


def test_log_deleted_or_truncated_while_followed(monitor: JobMonitor):
    job_id = monitor.submit_job("chatty", "for i in $(seq 1 40); do echo line $i; sleep 0.1; done")
    path = monitor.log_path(job_id)
    follower = LogFollower(path)
    seen = ""
    deadline = time.monotonic() + 20
    while "line 5" not in seen and time.monotonic() < deadline:
        seen += follower.read_new().text
        time.sleep(0.05)
    last_seen = max(int(line.split()[1]) for line in seen.splitlines() if line.startswith("line "))
    os.truncate(path, 0)  # the job appends (O_APPEND), so the file restarts from its new lines
    chunk = follower.read_new()
    assert chunk.reset
    assert all(int(line.split()[1]) > last_seen for line in chunk.text.splitlines())
    path.unlink()
    assert follower.read_new().reset
    assert monitor.wait([job_id], timeout=30)[0].status is JobStatus.COMPLETED
    assert monitor.logs(job_id) == ""  # the file is gone: empty, no error


def test_two_gigabyte_log_is_tailed_from_the_end(tmp_path: Path):
    log = tmp_path / "huge.log"
    with log.open("wb") as handle:
        handle.truncate(2 * 1024**3)  # sparse: 2 GiB without writing it
        handle.seek(0, os.SEEK_END)
        handle.write(b"".join(b"tail line %d\n" % i for i in range(1000)))
    assert tail_lines(log, 2) == ["tail line 998", "tail line 999"]
    follower = LogFollower(log)
    first = follower.read_new()
    assert first.bytes_read <= 64 * 1024 and first.text.endswith("tail line 999\n")
    with log.open("ab") as handle:
        handle.write(b"appended\n" * 1000)
    assert follower.read_new().bytes_read == 9000  # bytes read = bytes appended


def test_binary_garbage_in_a_log_is_shown_as_text(monitor: JobMonitor):
    job_id = monitor.submit_job("garbage", "head -c 4096 /dev/urandom; printf '\\0\\xff\\xfe\\x1b[31mred\\n'")
    monitor.wait([job_id], timeout=30)
    text = monitor.logs(job_id, tail=5)
    assert "red" in text and "\ufffd" in text
    result = cli(monitor.paths.root, "logs", job_id)
    assert result.returncode == 0 and "Traceback" not in result.stderr


def test_damaged_database_is_reported_and_recovered_from_backup(project: Path):
    monitor = JobMonitor(project)
    kept = monitor.submit_job("before-backup", "exit 0")
    monitor.wait([kept], timeout=30)
    assert cli(project, "db", "backup").returncode == 0
    monitor.store.close()
    db = project / ".celline" / "jobs.db"
    for side in ("jobs.db-wal", "jobs.db-shm"):
        (project / ".celline" / side).unlink(missing_ok=True)
    with db.open("r+b") as handle:  # scribble over the header and the first pages
        handle.write(os.urandom(8192))
    damaged = db.read_bytes()
    with pytest.raises(StoreError, match="corrupted"):
        JobMonitor(project)
    listed = cli(project, "list")
    assert listed.returncode == 2 and "celline-jobs db recover" in listed.stderr
    assert "Traceback" not in listed.stderr
    assert db.read_bytes() == damaged  # nothing silently reset
    assert cli(project, "db", "check").returncode == 1
    recovered = cli(project, "db", "recover")
    assert recovered.returncode == 0, recovered.stderr
    assert [j.job_id for j in JobMonitor(project).list_jobs()] == [kept]
    assert any(p.name.startswith("jobs.db.damaged-") for p in (project / ".celline" / "backups").iterdir())


@pytest.fixture
def tiny_disk(tmp_path: Path):
    mount = tmp_path / "tiny"
    mount.mkdir()
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)], capture_output=True)
    if result.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here (needs root): {result.stderr.decode().strip()}")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def test_disk_full_while_writing_state_errors_and_keeps_the_store(tiny_disk: Path):
    project = tiny_disk / "project"
    project.mkdir()
    monitor = JobMonitor(project)
    first = monitor.submit_job("fits", "exit 0")
    monitor.wait([first], timeout=30)
    filler = tiny_disk / "filler"
    with filler.open("wb") as handle:  # fill every remaining block
        try:
            while True:
                handle.write(b"\0" * 65536)
                handle.flush()
        except OSError:
            pass
    with pytest.raises(StoreError, match=r"disk|full"):
        for i in range(200):  # big commands so the database must grow
            monitor.submit_job(f"no-room-{i}", "echo " + uuid.uuid4().hex * 400)
    filler.unlink()
    monitor.store.close()
    fresh = JobMonitor(project)
    conn = sqlite3.connect(project / ".celline" / "jobs.db")
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert fresh.get_job(first).status is JobStatus.COMPLETED
    assert shutil.disk_usage(tiny_disk).free > 0
