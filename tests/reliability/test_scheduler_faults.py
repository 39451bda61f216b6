"""Scheduler faults: squeue hanging, failing, printing garbage or nothing, missing from PATH, and
slurmctld down for 60 s. Jobs keep their last known state marked stale, none becomes failed, the
CLI says so, and everything recovers with the right final states when the scheduler is back. A job
whose own exit-code file says it ended has that end even while SLURM cannot be asked."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from celline_jobs_nb import JobMonitor, JobStatus

pytestmark = [pytest.mark.slurm, pytest.mark.timeout(300)]

FAULTS = {
    "hangs": "sleep 30",
    "fails": "echo 'squeue: error: slurm_load_jobs: Unable to contact slurm controller' >&2; exit 1",
    "garbage": "printf '\\x00\\xff garbage |||| not a job\\n%s\\n' \"$RANDOM\"; exit 0",
    "nothing": "exit 0",
}


def _cli_list(project: Path, path: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PATH": path, "COLUMNS": "200", "CELLINE_JOBS_COMMAND_TIMEOUT": "3"}
    return subprocess.run([sys.executable, "-m", "celline_jobs_nb", "--project", str(project), "list"],
                          capture_output=True, text=True, timeout=60, env=env)


def _running_pair(monitor: JobMonitor, seconds: int) -> tuple[str, str]:
    ok = monitor.submit_job("survives", f"sleep {seconds}; echo done", scheduler="slurm")
    bad = monitor.submit_job("fails later", f"sleep {seconds}; exit 6", scheduler="slurm")
    deadline = time.monotonic() + 60
    while not all(monitor.get_job(j).status is JobStatus.RUNNING for j in (ok, bad)):
        assert time.monotonic() < deadline, [monitor.get_job(j).status for j in (ok, bad)]
        monitor.refresh(force=True)
        time.sleep(0.5)
    return ok, bad


def _running_or_really_ended(monitor: JobMonitor, ok: str, bad: str) -> bool:
    """While SLURM cannot be asked, a job is running until its own exit-code file says how it ended;
    then it has that end (never a failure made up from the failed polls)."""
    ends = {ok: (JobStatus.COMPLETED, 0), bad: (JobStatus.FAILED, 6)}
    for job in monitor.store.get_many([ok, bad]):
        if not monitor.paths.exit_file(job.job_id).exists():
            if job.status is not JobStatus.RUNNING:
                return False
        elif job.status is not JobStatus.RUNNING and (job.status, job.exit_code) != ends[job.job_id]:
            return False
    return True


def _recovers(monitor: JobMonitor, ok: str, bad: str) -> None:
    jobs = {j.job_id: j for j in monitor.wait([ok, bad], timeout=90)}
    assert jobs[ok].status is JobStatus.COMPLETED and monitor.logs(ok).strip() == "done"
    assert (jobs[bad].status, jobs[bad].exit_code) == (JobStatus.FAILED, 6)
    # The ends may have come from the exit-code files alone; the next polls reach SLURM again:
    # the stale warning goes and SLURM's own record of both jobs is read.
    deadline = time.monotonic() + 60
    while monitor.poll_states()["slurm"].stale or monitor.store.reconciling("slurm"):
        assert time.monotonic() < deadline, monitor.poll_states()["slurm"]
        monitor.refresh(force=True)
        time.sleep(0.5)


def _broken_path(fault: str, directory: Path, real_path: str) -> str:
    directory.mkdir()
    if fault == "missing":  # everything but the SLURM commands
        for tool in ("bash", "sh", "sleep", "printf", "env"):
            (directory / tool).symlink_to(shutil.which(tool))
        return str(directory)
    script = directory / "squeue"
    script.write_text(f"#!/bin/bash\n{FAULTS[fault]}\n")
    script.chmod(0o755)
    return f"{directory}:{real_path}"


def test_a_broken_squeue_makes_data_stale_never_failed(slurm_monitor: JobMonitor, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch):
    """Each fault in turn on the same running jobs; they end during the last one."""
    monitor = slurm_monitor
    ok, bad = _running_pair(monitor, 30)  # long enough to live through every fault below
    real_path = os.environ["PATH"]
    monitor.adapter("slurm").runner.timeout = 3  # a hanging squeue is cut off, not waited for
    for fault in (*FAULTS, "missing"):
        broken = _broken_path(fault, tmp_path / fault, real_path)
        monkeypatch.setenv("PATH", broken)
        monitor.refresh(force=True)
        for job in monitor.store.get_many([ok, bad]):
            assert job.status is JobStatus.RUNNING, (fault, job)
        if fault != "nothing":  # an empty squeue is not an error: missing jobs are resolved from evidence
            state = monitor.poll_states()["slurm"]
            assert state.stale and state.error, (fault, state)
            listed = _cli_list(monitor.paths.root, f"{sys.exec_prefix}/bin:{broken}")
            assert listed.returncode == 0 and "stale" in listed.stdout, (fault, listed.stdout)
        if fault != "missing":
            monkeypatch.setenv("PATH", real_path)
    deadline = time.monotonic() + 60  # the jobs end while no squeue is on PATH
    while not all(monitor.paths.exit_file(j).exists() for j in (ok, bad)) and time.monotonic() < deadline:
        monitor.refresh(force=True)
        assert _running_or_really_ended(monitor, ok, bad)
        time.sleep(1)
    monkeypatch.setenv("PATH", real_path)
    _recovers(monitor, ok, bad)


def test_slurmctld_down_for_60_seconds(slurm_monitor: JobMonitor, slurm_cluster):
    monitor = slurm_monitor
    ok, bad = _running_pair(monitor, 15)  # they end while the controller is down
    slurm_cluster.stop_controller()
    stopped = time.monotonic()
    try:
        while time.monotonic() - stopped < 60:
            monitor.refresh(force=True)
            assert monitor.poll_states()["slurm"].stale
            assert _running_or_really_ended(monitor, ok, bad)
            time.sleep(5)
    finally:
        slurm_cluster.start()
    _recovers(monitor, ok, bad)
