"""Grid Engine everywhere else, on the real cell of scripts/start-sge.sh: the CLI with
``default_scheduler = "sge"``, ``queue --scheduler sge`` (ours and a job submitted outside),
``--attach``, and an automatic retry after an ``h_rt`` kill asking for more run time.

Few, short jobs: the cell has 2 slots."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import final, poll_until

from celline_jobs_nb.core.models import JobStatus
from celline_jobs_nb.monitor import JobMonitor

pytestmark = [pytest.mark.sge, pytest.mark.slow, pytest.mark.timeout(240)]
ENV = {**os.environ, "CELLINE_JOBS_SGE_MIN_POLL_INTERVAL": "1"}


def cli(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "celline_jobs_nb", "--project", str(project), *args],
                          capture_output=True, text=True, timeout=120, env=ENV)


@pytest.fixture
def sge_project(project: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    (project / ".celline").mkdir()
    settings = '[jobs]\ndefault_scheduler = "sge"\n[jobs.poll_interval]\nsge = 1\n'
    (project / ".celline" / "jobs.toml").write_text(settings)
    monkeypatch.setenv("CELLINE_JOBS_SGE_MIN_POLL_INTERVAL", "1")
    yield project
    mon = JobMonitor(project)
    native = [j.native_id for j in mon.store.list(scheduler="sge") if j.status.active and j.native_id]
    if native:  # leave nothing on the 2-slot cell
        subprocess.run(["qdel", *dict.fromkeys(n.split(".")[0] for n in native)], capture_output=True, timeout=60)


def test_the_cli_submits_to_grid_engine_and_shows_its_queue(sge_project: Path) -> None:
    submitted = cli(sge_project, "submit", "-c", "sleep 60", "--name", "from cli", "--time", "5m")
    assert submitted.returncode == 0, submitted.stderr
    job_id = submitted.stdout.strip()
    outside = subprocess.run(["qsub", "-terse", "-h", "-b", "y", "-N", "outside", "-o", "/dev/null", "-j", "y",
                              "true"], capture_output=True, text=True, timeout=30, cwd="/tmp")
    native = outside.stdout.strip()
    try:
        queue = cli(sge_project, "queue", "--scheduler", "sge", "--json")
        assert queue.returncode == 0, queue.stderr
        entries = {e["native_id"]: e for e in json.loads(queue.stdout)}
        ours = next(e for e in entries.values() if e["tracked_job_id"] == job_id)
        assert ours["name"] == "from_cli"  # Grid Engine's name; ours keeps the space
        assert (entries[native]["name"], entries[native]["state"], entries[native]["tracked_job_id"]) == (
            "outside", "hqw", None)
        attached = cli(sge_project, "queue", "--scheduler", "sge", "--attach", native)
        assert attached.returncode == 0, attached.stderr
        mon = JobMonitor(sge_project)
        job = mon.get_job(attached.stdout.strip())
        assert (job.scheduler, job.native_id, job.status, job.name) == ("sge", native, JobStatus.HELD, "outside")
        cancelled = cli(sge_project, "cancel", job.job_id, job_id)
        assert cancelled.returncode == 0, cancelled.stderr
        poll_until(mon, final(mon, job.job_id, job_id), timeout=60, scheduler="sge")
        assert {mon.get_job(j).status for j in (job.job_id, job_id)} == {JobStatus.CANCELLED}
        assert native not in subprocess.run(["qstat"], capture_output=True, text=True, timeout=30).stdout
    finally:
        subprocess.run(["qdel", native], capture_output=True, timeout=30)


def test_a_timeout_is_retried_with_more_run_time(sge_project: Path) -> None:
    mon = JobMonitor(sge_project)
    first = mon.submit_job("slow", "sleep 60", {"cpus": 1, "time": "4s"},
                           retry={"max_retries": 1, "backoff": 0, "jitter": 0, "retry_on": ["timeout"]})
    poll_until(mon, lambda: len(mon.list_jobs()) == 2, timeout=150, scheduler="sge")
    job = mon.get_job(first)
    assert (job.status, job.metadata["failure_kind"]) == (JobStatus.FAILED, "timeout")
    retry = next(j for j in mon.list_jobs() if j.job_id != first)
    assert (retry.attempt, retry.resources.walltime) == (2, 6)
    script = Path(retry.metadata["script"]).read_text()
    assert "#$ -l h_rt=0:00:06" in script
    mon.cancel_job(retry.job_id, wait=0)
    poll_until(mon, final(mon, retry.job_id), timeout=60, scheduler="sge")
