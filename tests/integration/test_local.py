"""The local executor with real processes: submit, complete, fail, cancel, slots, crashes, concurrency."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest

from celline_jobs_nb import JobMonitor, JobStatus


def _wait_for(predicate, timeout: float = 30.0, interval: float = 0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout} s")


def test_fifty_jobs_complete_with_exit_codes_logs_and_progress(project: Path):
    monitor = JobMonitor(project, max_parallel=8)
    ids = {}
    for i in range(50):
        code = i % 5 if i % 10 == 3 else 0
        command = (f'echo "job {i} says hi"; '
                   f'{sys.executable} -c "from celline_jobs_nb import progress; progress.report({i}, \'stage {i}\')"; '
                   f"exit {code}")
        ids[monitor.submit_job(f"job-{i}", command)] = (i, code)
    jobs = monitor.wait(list(ids), timeout=180)
    assert len(jobs) == 50
    for job in jobs:
        i, code = ids[job.job_id]
        assert job.exit_code == code
        assert job.status is (JobStatus.COMPLETED if code == 0 else JobStatus.FAILED)
        if code:
            assert job.reason == f"exit code {code}"
        assert monitor.logs(job.job_id) == f"job {i} says hi"
        assert (project / "logs" / f"{job.job_id}.log").is_file()
        progress_file = project / "logs" / f"{job.job_id}_progress.json"
        assert progress_file.is_file() and f'"stage {i}"' in progress_file.read_text()
        assert job.start_time <= job.end_time
    events = monitor.store.events(jobs[0].job_id)
    assert [e.to_status for e in events][-1] is JobStatus.COMPLETED


def test_progress_reaches_the_store_while_running(monitor: JobMonitor):
    job_id = monitor.submit_job("p", f'{sys.executable} -m celline_jobs_nb progress 40 "Aligning reads"; sleep 30')
    def progressed():
        monitor.refresh(force=True)
        return monitor.get_job(job_id).progress.percent == 40
    _wait_for(progressed)
    assert monitor.get_job(job_id).progress.stage == "Aligning reads"


def test_cancel_running_and_pending_jobs(project: Path):
    monitor = JobMonitor(project, max_parallel=1)
    marker = project / "pending-ran"
    running = monitor.submit_job("sleeper", "trap 'echo got TERM; exit 143' TERM; echo started; sleep 60 & wait")
    pending = monitor.submit_job("waiting", f"touch {marker}")
    _wait_for(lambda: monitor.get_job(running).status is JobStatus.RUNNING)
    assert monitor.get_job(pending).status is JobStatus.PENDING
    assert monitor.cancel_job(pending)
    assert monitor.get_job(pending).status is JobStatus.CANCELLED
    pid = monitor.get_job(running).metadata["pid"]
    _wait_for(lambda: "started" in monitor.logs(running))
    assert monitor.cancel_job(running, wait=10)
    job = monitor.get_job(running)
    assert job.status is JobStatus.CANCELLED and job.reason == "cancelled by user"
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    assert "got TERM" in monitor.logs(running)
    time.sleep(1)
    assert not marker.exists()  # the cancelled pending job never ran
    assert monitor.cancel_job(running) is False  # already final


def test_cancel_escalates_to_sigkill(project: Path, monkeypatch: pytest.MonkeyPatch):
    monitor = JobMonitor(project)
    job_id = monitor.submit_job("stubborn", "trap '' TERM; echo ready; sleep 300")
    _wait_for(lambda: "ready" in monitor.logs(job_id))
    start = time.monotonic()
    monitor.cancel_job(job_id, wait=0)
    _wait_for(lambda: monitor.get_job(job_id).status.final, timeout=30)
    assert monitor.get_job(job_id).status is JobStatus.CANCELLED
    assert time.monotonic() - start >= 5  # the grace period passed before SIGKILL


def test_max_parallel_is_honoured(project: Path):
    monitor = JobMonitor(project, max_parallel=2)
    ids = [monitor.submit_job(f"s{i}", "sleep 1") for i in range(6)]
    peak = 0
    while True:
        jobs = monitor.store.get_many(ids)
        peak = max(peak, sum(1 for j in jobs if j.status in (JobStatus.QUEUED, JobStatus.RUNNING)))
        if all(j.status.final for j in jobs):
            break
        time.sleep(0.05)
    assert peak == 2
    assert all(j.status is JobStatus.COMPLETED for j in monitor.store.get_many(ids))


def test_pending_jobs_start_with_no_monitor_running(project: Path):
    """The wrapper of a finishing job starts the next one: no notebook or CLI needs to be open."""
    script = textwrap.dedent(f"""
        from celline_jobs_nb import JobMonitor
        m = JobMonitor({str(project)!r}, max_parallel=1)
        print(",".join(m.submit_job(f"n{{i}}", "sleep 0.5") for i in range(3)))
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    ids = out.stdout.strip().split(",")
    from celline_jobs_nb.store import JobStore

    store = JobStore(project)  # a reader only: it never starts or polls anything
    _wait_for(lambda: all(j.status is JobStatus.COMPLETED for j in store.get_many(ids)), timeout=30)


def test_jobs_survive_the_death_of_the_process_that_started_them(project: Path):
    """SIGKILL the submitting process; a new monitor re-attaches and records real final states."""
    script = textwrap.dedent(f"""
        import sys, time
        from celline_jobs_nb import JobMonitor
        m = JobMonitor({str(project)!r}, max_parallel=6)
        ids = [m.submit_job("quick-ok", "exit 0"), m.submit_job("quick-fail", "exit 7"),
               m.submit_job("slow-ok", "sleep 3; exit 0"), m.submit_job("slow-fail", "sleep 3; exit 5"),
               m.submit_job("queued-later", "sleep 1; exit 2", depends_on=[]),]
        print(",".join(ids), flush=True)
        time.sleep(600)
    """)
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    ids = child.stdout.readline().strip().split(",")
    time.sleep(0.5)
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    monitor = JobMonitor(project)
    jobs = {j.name: j for j in monitor.wait(ids, timeout=60)}
    assert {n: (j.status.value, j.exit_code) for n, j in jobs.items()} == {
        "quick-ok": ("completed", 0), "quick-fail": ("failed", 7), "slow-ok": ("completed", 0),
        "slow-fail": ("failed", 5), "queued-later": ("failed", 2)}


def test_a_job_whose_processes_vanish_is_reported_lost_not_completed(monitor: JobMonitor):
    job_id = monitor.submit_job("victim", "echo up; sleep 300")
    # The command may print before its wrapper has recorded the pids: wait for both.
    _wait_for(lambda: "up" in monitor.logs(job_id) and "pgid" in monitor.get_job(job_id).metadata)
    meta = monitor.get_job(job_id).metadata
    os.kill(meta["runner_pid"], signal.SIGKILL)  # the wrapper dies first, so no exit file is written
    os.killpg(meta["pgid"], signal.SIGKILL)
    def ended():
        monitor.refresh(force=True)
        return monitor.get_job(job_id).status.final
    _wait_for(ended)
    job = monitor.get_job(job_id)
    assert job.status is JobStatus.FAILED and job.reason.startswith("lost:") and job.exit_code is None


def test_dependencies_wait_and_never_satisfied_is_reported(monitor: JobMonitor):
    parent_ok = monitor.submit_job("parent-ok", "sleep 1")
    parent_bad = monitor.submit_job("parent-bad", "sleep 1; exit 4")
    child_ok = monitor.submit_job("child-ok", "echo child", depends_on=[parent_ok])
    child_bad = monitor.submit_job("child-bad", "echo never", depends_on=[parent_bad])
    assert monitor.get_job(child_ok).status is JobStatus.PENDING
    jobs = {j.job_id: j for j in monitor.wait([parent_ok, parent_bad, child_ok, child_bad], timeout=60)}
    assert jobs[child_ok].status is JobStatus.COMPLETED
    assert jobs[child_ok].start_time >= jobs[parent_ok].end_time
    assert jobs[child_bad].status is JobStatus.CANCELLED
    assert "DependencyNeverSatisfied" in jobs[child_bad].reason and parent_bad in jobs[child_bad].reason
    assert monitor.logs(child_bad) == ""


def test_retry_links_attempts_and_changes_resources(monitor: JobMonitor):
    first = monitor.submit_job("flaky", "exit 1", "mem=1G")
    monitor.wait([first], timeout=30)
    second = monitor.retry_job(first, "mem=2G")
    job = monitor.get_job(second)
    assert (job.retry_of, job.attempt, job.resources.memory) == (first, 2, 2 * 1024**3)
    assert job.command == "exit 1" and job.name == "flaky"


def test_resource_use_of_the_process_tree_is_sampled_and_totalled(monitor: JobMonitor):
    # 2.5 s of CPU time, not of wall time: on a busy machine the job still uses what it is asked to
    burn = ("import time; block = bytearray(120 * 1024 * 1024); t = time.process_time()\n"
            "while time.process_time() - t < 2.5: pass\n")
    job_id = monitor.submit_job("hungry", f"{sys.executable} -c '{burn}'", "cpus=1,mem=1G")
    def sampled_big():
        monitor.refresh(force=True)
        usage = monitor.get_job(job_id).metadata.get("usage", {})
        return usage.get("rss_bytes", 0) > 100 * 1024**2  # the python grandchild of bash is counted
    _wait_for(sampled_big, timeout=20)
    assert monitor.get_job(job_id).metadata["usage"]["samples"]
    job = monitor.wait([job_id], timeout=30)[0]
    usage = job.metadata["usage"]
    assert job.status is JobStatus.COMPLETED
    assert usage["cpu_seconds"] >= 2.0
    assert usage["max_rss_bytes"] > 100 * 1024**2
    assert (usage["alloc_cpus"], usage["req_mem_bytes"]) == (1, 1024**3)


def test_automatic_retry_after_backoff_links_attempts(monitor: JobMonitor, project: Path):
    marker = project / "second-time"
    command = f"if [ -f {marker} ]; then echo ok; else touch {marker}; exit 1; fi"
    first = monitor.submit_job("flaky", command, retry={"max_retries": 2, "backoff": 1, "jitter": 0})
    def retried_and_done():
        monitor.refresh(force=True)
        jobs = monitor.list_jobs()
        return len(jobs) == 2 and all(j.status.final for j in jobs) and jobs
    jobs = _wait_for(retried_and_done, timeout=30)
    one, two = jobs
    assert (one.job_id, one.status, one.metadata["retried_by"]) == (first, JobStatus.FAILED, two.job_id)
    assert (two.retry_of, two.attempt, two.status) == (first, 2, JobStatus.COMPLETED)
    assert two.start_time.timestamp() >= one.end_time.timestamp() + 0.9  # the backoff was respected
    monitor.refresh(force=True)
    assert len(monitor.list_jobs()) == 2  # a success is not retried, and a failure is retried once


def test_a_job_cancelled_while_its_wrapper_starts_stays_cancelled(monitor: JobMonitor):
    for attempt in range(5):  # the cancel lands at different points of the wrapper's start
        job_id = monitor.submit_job(f"quick cancel {attempt}", "sleep 60")
        assert monitor.cancel_job(job_id, wait=10)
        job = monitor.wait([job_id], timeout=30)[0]
        assert job.status is JobStatus.CANCELLED, (job.status, job.reason, job.metadata)
    time.sleep(11)  # past the relaunch timeout: nothing is launched again
    monitor.refresh(force=True)
    assert all(j.status is JobStatus.CANCELLED for j in monitor.list_jobs())
