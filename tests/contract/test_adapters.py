"""One behaviour suite over every adapter, through the JobMonitor API: the local executor (real
processes), SLURM (the real single-node cluster of scripts/start-slurm.sh) and PBS (Slurm's
Torque-style wrappers on it, scripts/start-pbs.sh). OpenPBS and real Torque cannot run here: their
decisions on recorded real outputs are tests/unit/test_pbs_real_outputs.py, and the same
behaviours on documented outputs are at the end of this file.

Each behaviour is written once and runs against every backend; a missing service skips (fails
under CELLINE_JOBS_REQUIRE_SERVICES=1), like every cluster test.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import Replay, final, poll_until, require_test_cluster, require_test_pbs

from celline_jobs_nb.core.models import JobInfo, JobStatus
from celline_jobs_nb.core.paths import ProjectPaths
from celline_jobs_nb.monitor import JobMonitor
from celline_jobs_nb.schedulers.base import SchedulerContext
from celline_jobs_nb.schedulers.pbs import OPENPBS, TORQUE, PbsScheduler
from celline_jobs_nb.store.sqlite import JobStore

pytestmark = pytest.mark.timeout(240)
BACKENDS = ["local", pytest.param("slurm", marks=pytest.mark.slurm), pytest.param("pbs", marks=pytest.mark.slurm)]
CANCEL = {"slurm": "scancel", "pbs": "qdel"}


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, project: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[
        tuple[str, JobMonitor]]:
    name = request.param
    if name == "pbs":
        require_test_pbs()
    elif name == "slurm":
        require_test_cluster()
    monkeypatch.setenv("CELLINE_JOBS_SLURM_MIN_POLL_INTERVAL", "1")  # the floors are for real clusters
    monkeypatch.setenv("CELLINE_JOBS_PBS_MIN_POLL_INTERVAL", "1")
    mon = JobMonitor(project, max_parallel=2, poll_intervals={"slurm": 1, "pbs": 1})
    yield name, mon
    mon.stop_polling()
    active = [j for j in mon.store.list(scheduler=name) if j.status.active]
    if name == "local":
        for job in active:
            mon.cancel_job(job.job_id, wait=0)
    elif [j.native_id for j in active if j.native_id]:  # leave nothing on the 2-CPU node
        ids = dict.fromkeys(str(j.native_id).split("_")[0] for j in active if j.native_id)
        subprocess.run([CANCEL[name], *ids], capture_output=True, timeout=60)


def wait_for(name: str, mon: JobMonitor, done: object, timeout: float = 120) -> None:
    poll_until(mon, done, timeout=timeout, every=0.5, scheduler=name)  # type: ignore[arg-type]


def test_submit_runs_and_completes_with_exit_0(backend: tuple[str, JobMonitor]) -> None:
    name, mon = backend
    job_id = mon.submit_job("ok", "echo hello from $CELLINE_JOB_ID", {"cpus": 1, "time": "5m"}, scheduler=name)
    assert mon.get_job(job_id).status in (JobStatus.PENDING, JobStatus.QUEUED, JobStatus.RUNNING)
    wait_for(name, mon, final(mon, job_id))
    job = mon.get_job(job_id)
    assert (job.status, job.exit_code, job.reason) == (JobStatus.COMPLETED, 0, None)
    assert job.start_time and job.end_time and job.end_time >= job.start_time
    assert mon.logs(job_id).strip().endswith(f"hello from {job_id}")


def test_exit_3_is_failed_with_its_exit_code_and_kind(backend: tuple[str, JobMonitor]) -> None:
    name, mon = backend
    job_id = mon.submit_job("fails", "exit 3", {"cpus": 1, "time": "5m"}, scheduler=name)
    wait_for(name, mon, final(mon, job_id))
    job = mon.get_job(job_id)
    assert (job.status, job.exit_code, job.reason) == (JobStatus.FAILED, 3, "exit code 3")
    assert job.metadata.get("failure_kind") == "exit"


def test_cancel_a_running_job(backend: tuple[str, JobMonitor]) -> None:
    name, mon = backend
    job_id = mon.submit_job("long", "echo started; sleep 300", {"cpus": 1, "time": "10m"}, scheduler=name)
    wait_for(name, mon, lambda: mon.get_job(job_id).status is JobStatus.RUNNING)
    mon.cancel_job(job_id, wait=0)
    wait_for(name, mon, final(mon, job_id))
    job = mon.get_job(job_id)
    assert (job.status, job.reason) == (JobStatus.CANCELLED, "cancelled by user")


def test_cancel_a_job_waiting_for_its_dependency(backend: tuple[str, JobMonitor]) -> None:
    name, mon = backend
    first = mon.submit_job("first", "sleep 300", {"cpus": 1, "time": "10m"}, scheduler=name)
    second = mon.submit_job("second", "echo never", {"cpus": 1, "time": "5m"}, scheduler=name, depends_on=[first])
    assert mon.get_job(second).status.active and mon.get_job(second).status is not JobStatus.RUNNING
    mon.cancel_job(second, wait=0)
    wait_for(name, mon, final(mon, second))
    job = mon.get_job(second)
    assert (job.status, job.reason, job.exit_code) == (JobStatus.CANCELLED, "cancelled by user", None)
    assert job.start_time is None
    mon.cancel_job(first, wait=0)


def test_a_dependency_that_fails_cancels_its_dependant(backend: tuple[str, JobMonitor]) -> None:
    name, mon = backend
    first = mon.submit_job("first", "exit 3", {"cpus": 1, "time": "5m"}, scheduler=name)
    second = mon.submit_job("second", "echo never", {"cpus": 1, "time": "5m"}, scheduler=name, depends_on=[first])
    wait_for(name, mon, final(mon, first, second), timeout=180)
    job = mon.get_job(second)
    assert job.status is JobStatus.CANCELLED and job.reason.startswith("DependencyNeverSatisfied: ")
    assert job.start_time is None


# -- recorded / documented outputs: the same behaviours where the scheduler cannot run here ----------

def _poll(tmp_path: Path, flavour: str, native_id: str, output: str, **extra: object) -> JobInfo:
    paths = ProjectPaths.of(tmp_path)
    store = JobStore(paths)
    adapter = PbsScheduler(SchedulerContext(paths, store, {"pbs_flavour": flavour}))
    adapter.runner = Replay([(["qstat"], output, "", 0)])
    job = JobInfo(job_id="j1", name="j", status=JobStatus.RUNNING, command="true", scheduler="pbs",
                  native_id=native_id, metadata=dict(extra))
    store.insert(job)
    store.apply(adapter.poll([job]).updates)
    return store.get("j1")


def _openpbs(job_id: str, **attrs: object) -> str:
    import json
    return json.dumps({"Jobs": {job_id: attrs}})


@pytest.mark.parametrize(("flavour", "output", "expected"), [
    (OPENPBS, _openpbs("1.pbs", job_state="F", Exit_status=0, stime="Mon Mar 13 08:00:00 2023", exec_host="n/0"),
     (JobStatus.COMPLETED, 0, None)),
    (OPENPBS, _openpbs("1.pbs", job_state="F", Exit_status=3, stime="Mon Mar 13 08:00:00 2023", exec_host="n/0"),
     (JobStatus.FAILED, 3, "exit code 3")),
    (TORQUE, "<Data><Job><Job_Id>1.t</Job_Id><job_state>C</job_state><exit_status>0</exit_status>"
             "<start_time>1678694400</start_time><exec_host>n/0</exec_host></Job></Data>",
     (JobStatus.COMPLETED, 0, None)),
    (TORQUE, "<Data><Job><Job_Id>1.t</Job_Id><job_state>C</job_state><exit_status>3</exit_status>"
             "<start_time>1678694400</start_time><exec_host>n/0</exec_host></Job></Data>",
     (JobStatus.FAILED, 3, "exit code 3")),
])
def test_exit_codes_0_and_3_on_openpbs_and_torque_outputs(tmp_path: Path, flavour: str, output: str,
                                                           expected: tuple[JobStatus, int, str | None]) -> None:
    native = "1.pbs" if flavour == OPENPBS else "1.t"
    job = _poll(tmp_path, flavour, native, output)
    assert (job.status, job.exit_code, job.reason) == expected


@pytest.mark.parametrize("flavour", [OPENPBS, TORQUE])
def test_a_job_no_server_knows_is_kept_then_unknown_never_completed(tmp_path: Path, flavour: str) -> None:
    empty = '{"Jobs": {}}' if flavour == OPENPBS else ""  # what each prints for ids it does not know
    job = _poll(tmp_path, flavour, "77.pbs", empty, missing_since=1.0)  # missing since 1970: past the grace
    assert job.status is JobStatus.UNKNOWN and "no longer lists job 77.pbs" in (job.reason or "")


def test_an_array_of_3_runs_each_task_with_its_index_and_sums_them_up(backend: tuple[str, JobMonitor]) -> None:
    name, mon = backend
    command = 'echo "task $CELLINE_JOBS_ARRAY_INDEX"; [ "$CELLINE_JOBS_ARRAY_INDEX" != 2 ] || exit 5'
    parent = mon.submit_job("array", command, {"cpus": 1, "time": "5m"}, scheduler=name, array="1-3%2")
    wait_for(name, mon, final(mon, parent), timeout=180)
    tasks = {j.array_index: j for j in mon.store.list(array_parent=parent)}
    assert sorted(tasks) == [1, 2, 3]
    assert [tasks[i].status for i in (1, 2, 3)] == [JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.COMPLETED]
    assert tasks[2].exit_code == 5
    for index, task in tasks.items():
        assert task.job_id == f"{parent}_{index}" and mon.logs(task.job_id).strip() == f"task {index}"
    job = mon.get_job(parent)
    assert (job.status, job.reason) == (JobStatus.FAILED, "1 of 3 array tasks failed")
    assert job.metadata["array_tasks"] == {"total": 3, "completed": 2, "failed": 1}
