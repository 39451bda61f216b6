"""Archived and Cleanup on a project of 1,000 ended jobs: every log still readable, nothing active
touched, an interrupted run (killed at any point) finished by the next, retention applied."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import zipfile
from datetime import timedelta
from pathlib import Path

import pytest

from celline_jobs_nb.core.models import JobInfo, JobStatus, utcnow
from celline_jobs_nb.core.paths import ProjectPaths
from celline_jobs_nb.monitor import JobMonitor

pytestmark = pytest.mark.slow
STATUSES = (JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED)


def _project(root: Path, n: int = 1000, days_ago: float = 40) -> tuple[JobMonitor, dict[str, bytes]]:
    """``n`` ended jobs with their files (log, exit code, progress), ended ``days_ago`` days ago."""
    monitor = JobMonitor(root)
    paths = ProjectPaths.of(root).ensure()
    ended = utcnow() - timedelta(days=days_ago)
    jobs, logs = [], {}
    for i in range(n):
        job_id = f"old{i:05d}"
        status = STATUSES[i % 3]
        jobs.append(JobInfo(job_id=job_id, name=f"job {i}", status=status, command=f"echo {i}",
                            start_time=ended - timedelta(minutes=5), end_time=ended, submit_time=ended,
                            log_file=str(paths.log_file(job_id)), working_dir=str(root),
                            exit_code=0 if status is JobStatus.COMPLETED else 1))
        logs[job_id] = (f"log of job {i}\n" + "x" * (i % 200) + "\nü ends\n").encode()
        paths.log_file(job_id).write_bytes(logs[job_id])
        paths.exit_file(job_id).write_text(json.dumps({"exit_code": 0, "signal": None, "end_time": 0}) + "\n")
        if i % 2:
            paths.progress_file(job_id).write_text(json.dumps({"percent": 100, "stage": "done"}))
    monitor.store.insert_many(jobs, source="test")
    return monitor, logs


def _cli(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "celline_jobs_nb", "--project", str(root), *args],
                          capture_output=True, text=True, timeout=300)


def _running(monitor: JobMonitor) -> tuple[str, Path]:
    job = monitor.submit_job("still running", "echo started; sleep 120")
    path = monitor.log_path(job)
    deadline = time.monotonic() + 20
    while not (path.exists() and path.stat().st_size) and time.monotonic() < deadline:
        time.sleep(0.05)
    return job, path


def _every_log_readable(monitor: JobMonitor, logs: dict[str, bytes]) -> None:
    for job_id, data in logs.items():
        assert monitor.log_path(job_id).read_bytes() == data, job_id
    last = sorted(logs)[-1]
    assert monitor.logs(last, tail=1) == logs[last].decode().splitlines()[-1]


def test_archive_round_trip_of_a_thousand_ended_jobs(tmp_path: Path) -> None:
    monitor, logs = _project(tmp_path)
    active, active_log = _running(monitor)
    try:
        dry = _cli(tmp_path, "archive", "--dry-run", "--json")
        assert dry.returncode == 0, dry.stderr
        assert json.loads(dry.stdout)["jobs"] == 1000
        assert all(monitor.paths.log_file(j).exists() for j in logs)  # the dry run changed nothing
        assert not monitor.paths.archive_dir.exists()

        result = _cli(tmp_path, "archive")
        assert result.returncode == 0, result.stderr
        assert "archived 1000 job(s)" in result.stdout
        paths = monitor.paths
        assert not any(paths.log_file(j).exists() or paths.exit_file(j).exists() or paths.progress_file(j).exists()
                       for j in logs)
        archives = sorted(p.name for p in paths.archive_dir.glob("*.zip"))
        month = (utcnow() - timedelta(days=40)).strftime("%Y-%m")
        assert archives == [f"{month}.zip"]
        # rows stay, marked with the time and the archive
        jobs = {j.job_id: j for j in monitor.list_jobs()}
        assert len(jobs) == 1001
        assert all(jobs[j].metadata["archived_at"] and jobs[j].metadata["archive"] == archives[0] for j in logs)
        # nothing active was touched
        assert "archived_at" not in jobs[active].metadata and active_log.exists()
        assert len(monitor.history()) == 1001  # and in the DataFrame
        assert monitor.get_job(active).status.active
        # every log readable, through the CLI too
        _every_log_readable(monitor, logs)
        shown = _cli(tmp_path, "logs", "old00007")
        assert shown.returncode == 0 and shown.stdout == logs["old00007"].decode()
        assert monitor.disk_usage(max_age=0)["folders"][".celline/archive"] > 0
        # a second run has nothing to do
        again = _cli(tmp_path, "archive")
        assert again.returncode == 0 and "archived 0 job(s)" in again.stdout
    finally:
        monitor.cancel_job(active, wait=5)


def test_archive_refuses_active_statuses_and_bad_ages(tmp_path: Path) -> None:
    _project(tmp_path, n=3)
    for args, words in ((["--status", "running"], "only completed"), (["--older-than", "soon"], "invalid age")):
        result = _cli(tmp_path, "archive", *args)
        assert result.returncode == 2 and words in result.stderr and "Traceback" not in result.stderr


def test_an_interrupted_archive_is_finished_by_the_next_run(tmp_path: Path) -> None:
    monitor, logs = _project(tmp_path)
    kills = 0
    # Kill points from just after start-up to well past it: on a quiet machine the work itself
    # lasts about a second, under load several; each killed run leaves the next one more to finish.
    for delay in (0.3, 0.45, 0.6, 0.75, 0.9, 1.1, 1.4, 1.8, 2.2, 2.6, 3.0):
        proc = subprocess.Popen([sys.executable, "-m", "celline_jobs_nb", "--project", str(tmp_path), "archive"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(delay)
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.wait()
        # at every point: each job's log is either in place or in an archive that holds it whole
        for job_id, data in logs.items():
            path = monitor.paths.log_file(job_id)
            if not path.exists():
                assert monitor.log_path(job_id).read_bytes() == data
    assert kills >= 2, "archive ran too fast to be interrupted: raise the delays' resolution"
    final = _cli(tmp_path, "archive")
    assert final.returncode == 0, final.stderr
    assert not list(monitor.paths.archive_dir.glob(".*.tmp"))
    assert not any(monitor.paths.log_file(j).exists() for j in logs)
    assert all(j.metadata.get("archive") for j in monitor.list_jobs())
    _every_log_readable(monitor, logs)
    # every archived job is in exactly one archive
    seen: dict[str, str] = {}
    for archive in monitor.paths.archive_dir.glob("*.zip"):
        with zipfile.ZipFile(archive) as zf:
            manifest = json.loads(zf.read("manifest.json"))
        for job_id in manifest["jobs"]:
            assert job_id not in seen, f"{job_id} in {seen.get(job_id)} and {archive.name}"
            seen[job_id] = archive.name
    assert set(seen) == set(logs)


def test_clean_applies_the_retention_policy(tmp_path: Path) -> None:
    monitor, logs = _project(tmp_path, n=30, days_ago=100)
    (tmp_path / ".celline" / "jobs.toml").write_text(
        "[jobs.retention]\narchive_after_days = 30\ndelete_archived_logs_after_days = 90\n"
        "keep_failed_logs_days = 200\n")
    dry = _cli(tmp_path, "clean", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "would clean 30 job(s)" in dry.stdout and "bytes" in dry.stdout
    assert all(monitor.paths.log_file(j).exists() for j in logs)
    result = _cli(tmp_path, "clean")
    assert result.returncode == 0, result.stderr
    monitor = JobMonitor(tmp_path)
    jobs = {j.job_id: j for j in monitor.list_jobs()}
    assert len(jobs) == 30  # rows are kept unless --forget
    for job_id, data in logs.items():
        if jobs[job_id].status is JobStatus.FAILED:  # kept longer: still readable from the archive
            assert monitor.log_path(job_id).read_bytes() == data
        else:
            assert jobs[job_id].metadata.get("log_deleted_at")
            assert not monitor.log_path(job_id).exists()
    forget = _cli(tmp_path, "clean", "--older-than", "0d", "--forget")
    assert forget.returncode == 0, forget.stderr
    left = JobMonitor(tmp_path).list_jobs()
    assert {j.status for j in left} == {JobStatus.FAILED} and len(left) == 10


def test_retention_settings_are_checked(tmp_path: Path) -> None:
    _project(tmp_path, n=1)
    settings = tmp_path / ".celline" / "jobs.toml"
    for text, words in (("[jobs.retention]\narchive_after = 3\n", "unknown [jobs.retention] setting"),
                        ("[jobs.retention]\narchive_after_days = -1\n", "archive_after_days"),
                        ("[jobs.retention]\ndelete_archived_logs_after_days = 90\nkeep_failed_logs_days = 10\n",
                         "keep_failed_logs_days")):
        settings.write_text(text)
        result = _cli(tmp_path, "archive", "--dry-run")
        assert result.returncode == 2 and words in result.stderr, result.stderr
    os.unlink(settings)


def test_one_archive_at_a_time(tmp_path: Path) -> None:
    import fcntl

    _, logs = _project(tmp_path, n=5)
    lock = tmp_path / ".celline" / "archive" / ".lock"
    lock.parent.mkdir(parents=True)
    with open(lock, "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # as a running archive holds it
        result = _cli(tmp_path, "archive")
        assert result.returncode == 2 and "another celline-jobs archive or clean is running" in result.stderr
        assert all((tmp_path / "logs" / f"{j}.log").exists() for j in logs)
    assert _cli(tmp_path, "archive").returncode == 0
    assert not any((tmp_path / "logs" / f"{j}.log").exists() for j in logs)
