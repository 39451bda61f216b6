"""One behaviour suite over every adapter, through the JobMonitor API: the local executor (real
processes), SLURM (the real single-node cluster of scripts/start-slurm.sh) and PBS (Slurm's
Torque-style wrappers on it, scripts/start-pbs.sh). OpenPBS and real Torque cannot run here: their
decisions on recorded real outputs are tests/unit/test_pbs_real_outputs.py, and the same
behaviours on documented outputs are at the end of this file.

Each behaviour is written once and runs against every backend; a missing service skips (fails
under CELLINE_JOBS_REQUIRE_SERVICES=1), like every cluster test.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from support import Replay, final, pbs_path, poll_until, require_test_cluster, require_test_pbs

from celline_jobs_nb.core.models import JobInfo, JobStatus, utcnow
from celline_jobs_nb.core.paths import ProjectPaths
from celline_jobs_nb.monitor import JobMonitor
from celline_jobs_nb.schedulers.base import CommandRunner, SchedulerContext
from celline_jobs_nb.schedulers.pbs import OPENPBS, TORQUE, PbsScheduler
from celline_jobs_nb.store.sqlite import JobStore

pytestmark = pytest.mark.timeout(240)
BACKENDS = ["local", pytest.param("slurm", marks=pytest.mark.slurm), pytest.param("pbs", marks=pytest.mark.slurm)]
CANCEL = {"slurm": "scancel", "pbs": "qdel"}


CLUSTERS = BACKENDS[1:]


def _monitor(name: str, project: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, JobMonitor]]:
    if name == "pbs":
        require_test_pbs()
        monkeypatch.setenv("PATH", pbs_path())  # the wrappers' own prefix first (/usr/bin/qsub may be SGE's)
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


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, project: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[
        tuple[str, JobMonitor]]:
    yield from _monitor(request.param, project, monkeypatch)


@pytest.fixture(params=CLUSTERS)
def cluster(request: pytest.FixtureRequest, project: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[
        tuple[str, JobMonitor]]:
    """The backends that ask a scheduler (the local executor has none to lose or to forget a job)."""
    yield from _monitor(request.param, project, monkeypatch)


@pytest.fixture(params=CLUSTERS[1:])
def wrappers(request: pytest.FixtureRequest, project: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[
        tuple[str, JobMonitor]]:
    """The PBS wrappers: their qstat and the Slurm underneath show when a finished job was submitted."""
    yield from _monitor(request.param, project, monkeypatch)


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

def _poll(tmp_path: Path, flavour: str, native_id: str, output: str, submitted: object = None,
          **extra: object) -> JobInfo:
    paths = ProjectPaths.of(tmp_path)
    store = JobStore(paths)
    adapter = PbsScheduler(SchedulerContext(paths, store, {"pbs_flavour": flavour}))
    adapter.runner = Replay([(["qstat"], output, "", 0)])
    job = JobInfo(job_id="j1", name="j", status=JobStatus.RUNNING, command="true", scheduler="pbs",
                  native_id=native_id, submit_time=submitted, metadata=dict(extra))  # type: ignore[arg-type]
    store.insert(job)
    store.apply(adapter.poll([job]).updates)
    return store.get("j1")


def _openpbs(job_id: str, **attrs: object) -> str:
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
    assert job.metadata.get("failure_kind") == "lost"


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


# -- a scheduler that stops answering, forgets a job, or shows another job's record ---------------

#: Stand-ins for the scheduler's commands when it cannot be reached (a fault, not a scheduler: they
#: take the real commands' place on PATH for a few polls).
FAULTS = {
    "refused": ("echo \"$(basename \"$0\"): cannot connect to server (Connection refused)\" >&2; exit 1",
                "cannot connect to server"),
    "timeout": ("exec sleep 30", "did not answer within 1 s"),
}


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_lost_contact_makes_the_data_stale_and_never_fails_a_job(cluster: tuple[str, JobMonitor], tmp_path: Path,
                                                                fault: str) -> None:
    name, mon = cluster
    job_id = mon.submit_job("long", "sleep 300", {"cpus": 1, "time": "10m"}, scheduler=name)
    wait_for(name, mon, lambda: mon.get_job(job_id).status is JobStatus.RUNNING)
    broken = tmp_path / "broken-bin"
    broken.mkdir()
    script, says = FAULTS[fault]
    for command in ("squeue", "sacct", "scontrol", "qstat"):
        (broken / command).write_text(f"#!/bin/sh\n{script}\n")
        (broken / command).chmod(0o755)
    adapter = mon.adapter(name)
    real = adapter.runner
    adapter.runner = CommandRunner(timeout=1, env={**os.environ, "PATH": f"{broken}:{os.environ['PATH']}"})
    try:
        for _ in range(3):
            mon.refresh(force=True)
            job, state = mon.get_job(job_id), mon.poll_states()[name]
            assert (job.status, job.reason, job.exit_code) == (JobStatus.RUNNING, None, None)
            assert state.stale and says in (state.error or "")
    finally:
        adapter.runner = real
    mon.refresh(force=True)  # contact is back: the data is fresh again and the job still runs
    assert not mon.poll_states()[name].stale and mon.get_job(job_id).status is JobStatus.RUNNING


def test_a_job_the_scheduler_does_not_know_is_kept_then_lost_never_final(cluster: tuple[str, JobMonitor]) -> None:
    name, mon = cluster
    mon.store.insert(JobInfo(job_id="ghost", name="ghost", status=JobStatus.RUNNING, command="true",
                             scheduler=name, native_id="987654", submit_time=utcnow()))
    mon.adapter(name).missing_grace = 0.0  # type: ignore[misc]  # the grace is minutes on real clusters
    mon.refresh(force=True)
    job = mon.get_job("ghost")
    assert job.status is JobStatus.RUNNING and job.metadata.get("missing_since")  # one miss proves nothing
    mon.refresh(force=True)
    job = mon.get_job("ghost")
    assert job.status is JobStatus.UNKNOWN and not job.status.final
    assert "no longer lists job 987654" in (job.reason or "") and job.exit_code is None
    assert job.metadata.get("failure_kind") == "lost"


def test_a_finished_record_older_than_the_job_is_another_jobs(wrappers: tuple[str, JobMonitor]) -> None:
    """Ids restart when a server's state is wiped, and records of finished jobs outlive that: a
    record submitted before our job was is not our job's end (on the PBS wrappers both qstat's
    record and Slurm's underneath; squeue shows no submit time: SLURM's accounting case is a
    recorded one below, OpenPBS's and Torque's too)."""
    name, mon = wrappers
    done = mon.submit_job("done", "true", {"cpus": 1, "time": "5m"}, scheduler=name)
    wait_for(name, mon, final(mon, done))
    old = mon.get_job(done)
    assert old.status is JobStatus.COMPLETED and old.submit_time is not None
    mon.store.insert(JobInfo(job_id="reused", name="reused", status=JobStatus.RUNNING, command="true",
                             scheduler=name, native_id=old.native_id, submit_time=old.submit_time + timedelta(hours=1)))
    mon.refresh(force=True)
    job = mon.get_job("reused")
    assert job.status is JobStatus.RUNNING and job.metadata.get("missing_since") and job.exit_code is None


HOLD = {"slurm": "--hold", "pbs": "-h"}


def test_cancel_a_pending_job(backend: tuple[str, JobMonitor]) -> None:
    """Pending: held on a cluster, waiting for a free slot on the local executor (2 slots)."""
    name, mon = backend
    resources: dict[str, object] = {"cpus": 1, "time": "5m"}
    if name == "local":
        for index in range(2):
            mon.submit_job(f"busy{index}", "sleep 300", resources, scheduler=name)
    else:
        resources["extra"] = [HOLD[name]]
    job_id = mon.submit_job("pending", "echo never", resources, scheduler=name)
    mon.refresh(force=True)
    assert mon.get_job(job_id).status in (JobStatus.PENDING, JobStatus.QUEUED, JobStatus.HELD)
    mon.cancel_job(job_id, wait=0)
    wait_for(name, mon, final(mon, job_id))
    job = mon.get_job(job_id)
    assert (job.status, job.reason, job.exit_code, job.start_time) == (
        JobStatus.CANCELLED, "cancelled by user", None, None)
    assert "never" not in mon.logs(job_id)


def datetime_of(text: str) -> datetime:
    """A naive timestamp as SLURM and qstat's ctime strings mean it: this machine's local time."""
    return datetime.fromisoformat(text).astimezone().astimezone(timezone.utc)


def _recorded_monitor(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, scheduler: str, flavour: str | None,
                      answers: list[tuple[list[str], str, str, int]], job: JobInfo) -> JobMonitor:
    if flavour is not None:
        monkeypatch.setenv("CELLINE_JOBS_PBS_FLAVOUR", flavour)
    tmp_path.mkdir(parents=True, exist_ok=True)
    mon = JobMonitor(tmp_path)
    mon.store.insert(job)
    mon.adapter(scheduler).runner = Replay(answers)
    return mon


#: What OpenPBS and Torque print when the server is down (pbs_connect's errno 111, and Torque's
#: "cannot connect to server"), with their exit status.
DOWN = {
    OPENPBS: (["qstat"], "", "Connection refused\nqstat: cannot connect to server pbs (errno=111)\n", 2),
    TORQUE: (["qstat"], "", "Communication failure.\nqstat: cannot connect to server torque (errno=111) "
                            "Connection refused\n", 1),
}


@pytest.mark.parametrize("flavour", [OPENPBS, TORQUE])
def test_lost_contact_on_openpbs_and_torque_outputs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                    flavour: str) -> None:
    job = JobInfo(job_id="j1", name="j", status=JobStatus.RUNNING, command="true", scheduler="pbs",
                  native_id="1.pbs", submit_time=utcnow())
    mon = _recorded_monitor(tmp_path, monkeypatch, "pbs", flavour, [DOWN[flavour]], job)
    mon.refresh(force=True)
    state = mon.poll_states()["pbs"]
    assert mon.get_job("j1").status is JobStatus.RUNNING and mon.get_job("j1").reason is None
    assert state.stale and "cannot connect to server" in (state.error or "")


@pytest.mark.parametrize("flavour", [OPENPBS, TORQUE])
def test_a_finished_record_older_than_the_job_on_openpbs_and_torque_outputs(tmp_path: Path,
                                                                           flavour: str) -> None:
    if flavour == OPENPBS:
        output = _openpbs("1.pbs", job_state="F", Exit_status=0, qtime="Mon Mar 13 07:59:00 2023",
                          stime="Mon Mar 13 08:00:00 2023", exec_host="n/0")
        queued = datetime_of("2023-03-13T07:59:00")
    else:
        output = ("<Data><Job><Job_Id>1.pbs</Job_Id><job_state>C</job_state><exit_status>0</exit_status>"
                  "<qtime>1678694340</qtime><start_time>1678694400</start_time><exec_host>n/0</exec_host></Job></Data>")
        queued = datetime.fromtimestamp(1678694340, timezone.utc)
    job = _poll(tmp_path, flavour, "1.pbs", output, submitted=utcnow())  # ours: submitted now, not in 2023
    assert job.status is JobStatus.RUNNING and job.metadata.get("missing_since") and job.exit_code is None
    then = _poll(tmp_path / "then", flavour, "1.pbs", output, submitted=queued)
    assert (then.status, then.exit_code) == (JobStatus.COMPLETED, 0)  # the same record, when it is ours


def test_an_accounting_record_older_than_the_job_on_recorded_slurm_outputs(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """The test cluster's own jobcomp record of job 25 (completed 2026-11-28): a job 25 submitted a
    day later is not that one."""
    recorded = (Path(__file__).resolve().parents[1] / "data" / "slurm" / "recorded" / "sacct-c-final.txt").read_text()
    answers = [(["squeue"], "", "", 0), (["sacct", "-P"], "", "sacct: error: accounting storage is disabled\n", 1),
               (["sacct", "-c"], recorded, "", 0)]
    for when, expected in ((datetime_of("2026-11-29T21:45:48"), JobStatus.RUNNING),
                           (datetime_of("2026-11-28T21:45:48"), JobStatus.COMPLETED)):
        job = JobInfo(job_id="j25", name="j", status=JobStatus.RUNNING, command="true", scheduler="slurm",
                      native_id="25", submit_time=when)
        mon = _recorded_monitor(tmp_path / expected.value, monkeypatch, "slurm", None, answers, job)
        mon.refresh(force=True)
        assert mon.get_job("j25").status is expected


@pytest.mark.parametrize("flavour", [OPENPBS, TORQUE])
def test_a_lost_job_found_again_is_no_longer_lost(tmp_path: Path, flavour: str) -> None:
    paths = ProjectPaths.of(tmp_path)
    store = JobStore(paths)
    adapter = PbsScheduler(SchedulerContext(paths, store, {"pbs_flavour": flavour}))
    store.insert(JobInfo(job_id="j1", name="j", status=JobStatus.RUNNING, command="true", scheduler="pbs",
                         native_id="1.pbs", metadata={"missing_since": 1.0}))
    empty = '{"Jobs": {}}' if flavour == OPENPBS else ""
    running = (_openpbs("1.pbs", job_state="R", stime="Mon Mar 13 08:00:00 2023", exec_host="n/0")
               if flavour == OPENPBS else "<Data><Job><Job_Id>1.pbs</Job_Id><job_state>R</job_state>"
                                          "<start_time>1678694400</start_time><exec_host>n/0</exec_host></Job></Data>")
    for output in (empty, running):
        adapter.runner = Replay([(["qstat"], output, "", 0)])
        store.apply(adapter.poll([store.get("j1")]).updates)
        if output == empty:
            assert store.get("j1").metadata.get("failure_kind") == "lost"
    job = store.get("j1")
    assert job.status is JobStatus.RUNNING and job.reason is None
    assert job.metadata.get("failure_kind") is None and job.metadata.get("missing_since") is None
