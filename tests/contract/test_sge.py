"""The contract suite on the real Grid Engine cell of scripts/start-sge.sh (Son of Grid Engine
8.1.9, one host, 2 slots): the behaviours of tests/contract/test_adapters.py, imported and run
with an ``sge`` backend, then what Grid Engine does its own way: a job killed by ``h_rt`` (no
exit-code file: qacct says how it ended, after the accounting file's delay), an array of 20
tasks, ``-hold_jid`` chains (it only orders jobs: afterok is held and released or deleted by the
poll), cancel of a pending (held) job, a job in error state (Eqw) with its reason.

A missing cell skips (fails under CELLINE_JOBS_REQUIRE_SERVICES=1). Jobs are few and short."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import final, poll_until, require_test_cell
from test_adapters import (  # the shared behaviours, collected here again with the sge backend
    HOLD,
    test_a_dependency_that_fails_cancels_its_dependant,
    test_a_job_the_scheduler_does_not_know_is_kept_then_lost_never_final,
    test_an_array_of_3_runs_each_task_with_its_index_and_sums_them_up,
    test_cancel_a_job_waiting_for_its_dependency,
    test_cancel_a_pending_job,
    test_cancel_a_running_job,
    test_exit_3_is_failed_with_its_exit_code_and_kind,
    test_lost_contact_makes_the_data_stale_and_never_fails_a_job,
    test_submit_runs_and_completes_with_exit_0,
)

from celline_jobs_nb.core.models import JobStatus
from celline_jobs_nb.monitor import JobMonitor

pytestmark = [pytest.mark.sge, pytest.mark.slow, pytest.mark.timeout(240)]
SHARED = (test_submit_runs_and_completes_with_exit_0, test_exit_3_is_failed_with_its_exit_code_and_kind,
          test_cancel_a_running_job, test_cancel_a_job_waiting_for_its_dependency,
          test_a_dependency_that_fails_cancels_its_dependant,
          test_an_array_of_3_runs_each_task_with_its_index_and_sums_them_up, test_cancel_a_pending_job,
          test_lost_contact_makes_the_data_stale_and_never_fails_a_job,
          test_a_job_the_scheduler_does_not_know_is_kept_then_lost_never_final)
HOLD.setdefault("sge", "-h")  # how the shared "cancel a pending job" holds a job here: qsub -h


@pytest.fixture
def backend(project: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, JobMonitor]]:
    require_test_cell()
    monkeypatch.setenv("CELLINE_JOBS_SGE_MIN_POLL_INTERVAL", "1")  # the 30 s floor is for real clusters
    mon = JobMonitor(project, max_parallel=2, poll_intervals={"sge": 1})
    yield "sge", mon
    mon.stop_polling()
    active = [j.native_id for j in mon.store.list(scheduler="sge") if j.status.active and j.native_id]
    if active:  # leave nothing on the 2-slot cell
        subprocess.run(["qdel", *dict.fromkeys(n.split(".")[0] for n in active)], capture_output=True, timeout=60)


@pytest.fixture
def cluster(backend: tuple[str, JobMonitor]) -> tuple[str, JobMonitor]:
    """The shared cases that need a scheduler to lose contact with or to forget a job."""
    return backend


def wait_for(mon: JobMonitor, done: object, timeout: float = 120) -> None:
    poll_until(mon, done, timeout=timeout, every=0.5, scheduler="sge")  # type: ignore[arg-type]


def test_a_job_killed_by_h_rt_is_a_timeout(backend: tuple[str, JobMonitor]) -> None:
    _name, mon = backend
    job_id = mon.submit_job("slow", "echo started; sleep 120", {"cpus": 1, "time": "4s"}, scheduler="sge")
    wait_for(mon, final(mon, job_id), timeout=150)  # h_rt, then up to 15 s until qacct has the record
    job = mon.get_job(job_id)
    assert (job.status, job.metadata.get("failure_kind"), job.signal) == (JobStatus.FAILED, "timeout", 9)
    assert job.reason == "killed by Grid Engine at its run-time limit (h_rt 4 s)"
    assert job.start_time and job.end_time and job.end_time > job.start_time
    assert mon.logs(job_id).strip() == "started"
    assert job.metadata["sge_failed"] == 37


def test_an_array_of_20_tasks(backend: tuple[str, JobMonitor]) -> None:
    _name, mon = backend
    parent = mon.submit_job("twenty", 'echo "task $SGE_TASK_ID of $CELLINE_JOB_ID"', {"cpus": 1, "time": "5m"},
                            scheduler="sge", array="1-20")
    assert mon.get_job(parent).native_id.isdigit()
    wait_for(mon, final(mon, parent), timeout=200)
    tasks = {j.array_index: j for j in mon.store.list(array_parent=parent)}
    assert sorted(tasks) == list(range(1, 21))
    assert {t.status for t in tasks.values()} == {JobStatus.COMPLETED}
    assert all(mon.logs(t.job_id).strip() == f"task {i} of {parent}_{i}" for i, t in tasks.items())
    job = mon.get_job(parent)
    assert job.status is JobStatus.COMPLETED
    assert job.metadata["array_tasks"]["total"] == job.metadata["array_tasks"]["completed"] == 20


def test_afterok_on_a_parent_that_succeeds_is_released_and_runs(backend: tuple[str, JobMonitor]) -> None:
    _name, mon = backend
    first = mon.submit_job("first", "sleep 2", {"cpus": 1, "time": "5m"}, scheduler="sge")
    second = mon.submit_job("second", "echo ran", {"cpus": 1, "time": "5m"}, scheduler="sge", depends_on=[first])
    wait_for(mon, lambda: mon.get_job(first).status.final)
    assert mon.get_job(second).status is JobStatus.QUEUED  # held by us until the poll saw the parent end
    wait_for(mon, final(mon, second))
    job = mon.get_job(second)
    assert (job.status, job.exit_code) == (JobStatus.COMPLETED, 0) and mon.logs(second).strip() == "ran"
    assert job.start_time >= mon.get_job(first).end_time


def test_afterany_runs_after_a_parent_that_failed(backend: tuple[str, JobMonitor]) -> None:
    _name, mon = backend
    first = mon.submit_job("first", "sleep 1; exit 3", {"cpus": 1, "time": "5m"}, scheduler="sge")
    second = mon.submit_job("second", "echo ran anyway", {"cpus": 1, "time": "5m"}, scheduler="sge",
                            depends_on=[first], dependency_kind="afterany")
    wait_for(mon, final(mon, first, second))
    assert mon.get_job(first).status is JobStatus.FAILED
    assert mon.get_job(second).status is JobStatus.COMPLETED and mon.logs(second).strip() == "ran anyway"


def test_afternotok_on_a_parent_that_succeeds_is_cancelled(backend: tuple[str, JobMonitor]) -> None:
    _name, mon = backend
    first = mon.submit_job("first", "true", {"cpus": 1, "time": "5m"}, scheduler="sge")
    second = mon.submit_job("cleanup", "echo never", {"cpus": 1, "time": "5m"}, scheduler="sge",
                            depends_on=[first], dependency_kind="afternotok")
    wait_for(mon, final(mon, first, second))
    job = mon.get_job(second)
    assert job.status is JobStatus.CANCELLED and job.metadata["failure_kind"] == "dependency"
    assert job.reason == (f"DependencyNeverSatisfied: its afternotok dependency on Grid Engine job "
                          f"{mon.get_job(first).native_id} can never be met")
    assert job.start_time is None and "never" not in mon.logs(second)
    assert job.native_id not in subprocess.run(["qstat"], capture_output=True, text=True, timeout=30).stdout.split()


def test_cancel_a_pending_held_job(backend: tuple[str, JobMonitor]) -> None:
    _name, mon = backend
    job_id = mon.submit_job("held", "echo never", {"cpus": 1, "time": "5m", "extra": ["-h"]}, scheduler="sge")
    assert mon.get_job(job_id).status is JobStatus.HELD
    mon.refresh(force=True)
    assert mon.get_job(job_id).status is JobStatus.HELD  # hqw: a user hold stays ours to release
    mon.cancel_job(job_id, wait=0)
    wait_for(mon, final(mon, job_id))
    job = mon.get_job(job_id)
    assert (job.status, job.reason, job.start_time, job.exit_code) == (
        JobStatus.CANCELLED, "cancelled by user", None, None)


def test_a_job_in_error_state_is_held_with_the_reason(backend: tuple[str, JobMonitor]) -> None:
    _name, mon = backend
    # A working directory that does not exist: the execution host cannot start the job and Grid
    # Engine puts it in error state (Eqw) until someone clears it.
    job_id = mon.submit_job("no_dir", "echo never", {"cpus": 1, "time": "5m", "extra": ["-wd /nonexistent/dir"]},
                            scheduler="sge")
    wait_for(mon, lambda: mon.get_job(job_id).status is JobStatus.HELD, timeout=60)
    job = mon.get_job(job_id)
    assert job.status is JobStatus.HELD and job.metadata["sge_state"] == "Eqw"
    assert "/nonexistent/dir" in job.reason and "qmod -cj" in job.reason
    mon.cancel_job(job_id, wait=0)
    wait_for(mon, final(mon, job_id))
    job = mon.get_job(job_id)  # (a job shown "r" for a moment before its start failed keeps that start time)
    assert (job.status, job.reason, job.exit_code) == (JobStatus.CANCELLED, "cancelled by user", None)


__all__ = ["SHARED"]
