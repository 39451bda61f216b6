"""The PBS adapter against real commands: Debian's ``slurm-wlm-torque`` (Slurm's Torque-style
qsub/qstat/qdel Perl wrappers) on the real single-node Slurm of scripts/start-slurm.sh, through
the JobMonitor API. OpenPBS and real Torque cannot run here: their parsers are tested in
tests/unit/test_pbs_parse.py on documented output shapes.

The node has 2 CPUs (and other test files use it too): the jobs here are few and short."""

from __future__ import annotations

import functools
import shutil
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import final, require_service, require_test_pbs
from support import poll_until as poll_scheduler_until

from celline_jobs_nb.core.models import JobStatus
from celline_jobs_nb.monitor import JobMonitor
from celline_jobs_nb.schedulers.pbs import TORQUE_SLURM

poll_until = functools.partial(poll_scheduler_until, scheduler="pbs")

pytestmark = [pytest.mark.slurm, pytest.mark.timeout(240)]


@pytest.fixture(scope="session")
def pbs_wrappers(slurm_cluster: object) -> object:
    """Slurm's Torque wrappers (``bash scripts/start-pbs.sh`` unpacks them into their own prefix; the
    conftest puts it first on PATH for the PBS tests only)."""
    bin_dir = require_test_pbs()
    present = all(shutil.which(c, path=str(bin_dir)) for c in ("qsub", "qstat", "qdel"))
    present = present and b"Slurm" in (bin_dir / "qstat").read_bytes()[:8192]
    require_service(present, "Slurm's Torque wrappers (qsub/qstat/qdel of slurm-wlm-torque) are not installed: "
                             "run `scripts/start-pbs.sh` (as root)")
    return slurm_cluster


@pytest.fixture
def pbs_monitor(pbs_wrappers: object, monkeypatch: pytest.MonkeyPatch, project: Path) -> Iterator[JobMonitor]:
    monkeypatch.setenv("CELLINE_JOBS_PBS_MIN_POLL_INTERVAL", "1")  # the 30 s floor is for real clusters
    mon = JobMonitor(project, poll_intervals={"pbs": 1})
    yield mon
    mon.stop_polling()
    native = [j.native_id for j in mon.store.list(scheduler="pbs") if j.native_id and j.status.active]
    if native:  # leave no job of this project on the 2-CPU node
        subprocess.run(["qdel", *dict.fromkeys(n.split("_")[0] for n in native)], capture_output=True, timeout=60)


def qstat_full(native_id: str) -> str:
    return subprocess.run(["qstat", "-f", native_id], capture_output=True, text=True, timeout=30).stdout


def test_submit_runs_and_completes(pbs_monitor: JobMonitor) -> None:
    mon = pbs_monitor
    job_id = mon.submit_job("hello", "sleep 3; echo hello from $CELLINE_JOB_ID", {"cpus": 1, "time": "5m"},
                            scheduler="pbs")
    assert mon.adapter("pbs").flavour == TORQUE_SLURM  # recognised from the wrapper script itself
    job = mon.get_job(job_id)
    assert job.status is JobStatus.QUEUED and job.native_id and job.native_id.isdigit()
    script = Path(job.metadata["script"]).read_text()
    assert "#PBS -N hello" in script and "#PBS -l walltime=00:05:00" in script
    calls: list[int] = []
    poll_until(mon, final(mon, job_id), calls=calls)
    job = mon.get_job(job_id)
    assert (job.status, job.exit_code, job.reason) == (JobStatus.COMPLETED, 0, None)
    events = [e.to_status for e in mon.store.events(job_id)]
    assert events.index(JobStatus.RUNNING) < events.index(JobStatus.COMPLETED), events
    assert job.start_time and job.end_time and job.end_time >= job.start_time
    # -o on the qsub command line put the output where the seed wants it (the wrapper ignores #PBS -o).
    assert mon.logs(job_id).strip() == f"hello from {job_id}"
    assert Path(job.log_file or "") == mon.paths.log_file(job_id)
    assert job.metadata["pbs_state"] == "C"
    assert set(calls) == {1}, calls  # one qstat per poll, nothing else


def test_exit_3_is_failed_with_exit_code_3_from_the_exit_file(pbs_monitor: JobMonitor) -> None:
    mon = pbs_monitor
    job_id = mon.submit_job("fails", "echo about to fail; exit 3", scheduler="pbs")
    calls: list[int] = []
    poll_until(mon, final(mon, job_id), calls=calls)
    job = mon.get_job(job_id)
    assert (job.status, job.exit_code, job.signal, job.reason) == (JobStatus.FAILED, 3, None, "exit code 3")
    assert "about to fail" in mon.logs(job_id)
    # qstat cannot say it: the wrapper shows C and no exit status; the exit-code file did.
    shown = qstat_full(job.native_id or "")
    assert "job_state = C" in shown and "exit_status" not in shown.lower()
    assert mon.paths.exit_file(job_id).is_file()
    assert set(calls) == {1}, calls


def test_cancel_running_and_pending(pbs_monitor: JobMonitor) -> None:
    mon = pbs_monitor
    running = [mon.submit_job(f"long {i}", "sleep 120", scheduler="pbs") for i in range(2)]
    pending = mon.submit_job("waits", "sleep 120", scheduler="pbs")  # 2 CPUs: this one waits
    poll_until(mon, lambda: all(mon.get_job(j).status is JobStatus.RUNNING for j in running))
    assert mon.get_job(pending).status is JobStatus.QUEUED
    adapter = mon.adapter("pbs")
    before = adapter.calls
    mon.cancel_jobs([running[0], pending], wait=0)
    assert adapter.calls == before + 1  # one qdel for both
    poll_until(mon, final(mon, running[0], pending))
    for job_id in (running[0], pending):
        job = mon.get_job(job_id)
        assert job.status is JobStatus.CANCELLED and job.reason == "cancelled by user", job
    assert mon.get_job(pending).start_time is None  # it never ran
    assert mon.get_job(running[1]).status is JobStatus.RUNNING  # the other one is untouched
    assert mon.cancel_job(running[1], wait=15) is True
    assert mon.get_job(running[1]).status is JobStatus.CANCELLED


def test_afterok_runs_after_success_and_is_cancelled_after_failure(pbs_monitor: JobMonitor) -> None:
    mon = pbs_monitor
    good = mon.submit_job("good parent", "sleep 2", scheduler="pbs")
    after_good = mon.submit_job("after good", "echo ran after $CELLINE_JOB_ID", scheduler="pbs", depends_on=[good])
    bad = mon.submit_job("bad parent", "sleep 2; exit 1", scheduler="pbs")
    after_bad = mon.submit_job("after bad", "echo never", scheduler="pbs", depends_on=[bad])
    bad_native = mon.get_job(bad).native_id
    assert mon.get_job(after_bad).metadata["native_dependencies"] == [bad_native]
    assert f"#PBS -W depend=afterok:{bad_native}" in Path(mon.get_job(after_bad).metadata["script"]).read_text()
    poll_until(mon, final(mon, good, after_good, bad, after_bad), timeout=90)
    assert mon.get_job(good).status is JobStatus.COMPLETED
    ran = mon.get_job(after_good)
    assert ran.status is JobStatus.COMPLETED and ran.start_time >= mon.get_job(good).end_time
    assert mon.get_job(bad).status is JobStatus.FAILED
    job = mon.get_job(after_bad)
    # No exit-code file (it never ran): the wrapper's Slurm says why, in one scontrol call.
    assert job.status is JobStatus.CANCELLED and job.start_time is None and job.exit_code is None
    assert job.reason == f"DependencyNeverSatisfied: its afterok dependency on PBS job {bad_native} can never be met"


def test_an_odd_job_name(pbs_monitor: JobMonitor) -> None:
    mon = pbs_monitor
    name = 'a "b" $c <d> `id` ünï; rm -rf x'
    job_id = mon.submit_job(name, 'printf "%s\\n" "$CELLINE_JOB_ID"', scheduler="pbs")
    job = mon.get_job(job_id)
    assert "Job_Name = a_b_c_d_id_n_rm_-rf_x" in qstat_full(job.native_id or "")  # what PBS accepts
    poll_until(mon, final(mon, job_id))
    job = mon.get_job(job_id)
    assert job.name == name and job.status is JobStatus.COMPLETED  # ours keeps it verbatim
    assert mon.logs(job_id).strip() == job_id


def test_an_array_of_3_with_at_most_2_at_once(pbs_monitor: JobMonitor) -> None:
    mon = pbs_monitor
    parent = mon.submit_job("array", "sleep 1; echo task $CELLINE_ARRAY_TASK_INDEX of $CELLINE_JOB_ID",
                            scheduler="pbs", array="1-3%2")
    poll_until(mon, final(mon, parent), timeout=90)
    job = mon.get_job(parent)
    assert job.status is JobStatus.COMPLETED and job.metadata["array_tasks"] == {"total": 3, "completed": 3}
    children = sorted(mon.store.list(array_parent=parent), key=lambda c: c.array_index or 0)
    assert [c.job_id for c in children] == [f"{parent}_{i}" for i in (1, 2, 3)]
    for index, child in enumerate(children, start=1):
        assert child.status is JobStatus.COMPLETED and child.exit_code == 0
        assert child.native_id == f"{job.native_id}_{index}"  # Slurm's name: the wrapper shows no tasks
        assert Path(child.log_file or "").read_text().strip() == f"task {index} of {child.job_id}"


def test_celline_pbs_setting_picks_pbs_and_its_server(pbs_wrappers: object, monkeypatch: pytest.MonkeyPatch,
                                                      project: Path) -> None:
    """celline's own ``[execution] system = "PBS"`` makes "pbs" the default scheduler, and its
    ``pbs_server`` goes into ``-l nodes=1:ppn=N:<server>`` as celline writes it (the wrapper reads a
    node property as a node name, so the test node's name is used)."""
    monkeypatch.setenv("CELLINE_JOBS_PBS_MIN_POLL_INTERVAL", "1")
    node = socket.gethostname().split(".")[0]
    (project / "setting.toml").write_text(f'[execution]\nsystem = "PBS"\nnthread = 1\npbs_server = "{node}"\n')
    mon = JobMonitor(project, poll_intervals={"pbs": 1})
    job_id = mon.submit_job("celline count", "echo counted", {"cpus": 1})
    job = mon.get_job(job_id)
    assert job.scheduler == "pbs"
    assert f"#PBS -l nodes=1:ppn=1:{node}" in Path(job.metadata["script"]).read_text()
    poll_until(mon, final(mon, job_id))
    assert mon.get_job(job_id).status is JobStatus.COMPLETED and mon.logs(job_id).strip() == "counted"


def test_scheduler_calls_per_poll_stay_one_for_many_jobs(pbs_monitor: JobMonitor) -> None:
    mon = pbs_monitor
    held = {"extra": ["-h"]}  # held jobs stay put: the 2-CPU node never has to run them
    first = mon.submit_job("held 0", "true", held, scheduler="pbs")
    assert mon.get_job(first).status is JobStatus.HELD
    mon.refresh(force=True)
    assert mon.poll_states()["pbs"].last_calls == 1
    assert mon.get_job(first).status is JobStatus.HELD  # the wrapper shows "Q": what we know is kept
    ids = [first] + [mon.submit_job(f"held {i}", "true", held, scheduler="pbs") for i in range(1, 60)]
    adapter = mon.adapter("pbs")
    before = adapter.calls
    mon.refresh(force=True)
    assert mon.poll_states()["pbs"].last_calls == 1 and adapter.calls == before + 1
    assert all(j.status is JobStatus.HELD for j in mon.store.get_many(ids))
    before = adapter.calls
    mon.cancel_jobs(ids, wait=0)
    assert adapter.calls == before + 1  # one qdel for all 60
    calls: list[int] = []
    poll_until(mon, final(mon, *ids), calls=calls)
    assert all(j.status is JobStatus.CANCELLED for j in mon.store.get_many(ids))
    assert set(calls) == {1}, calls  # cancelled by us: no Slurm lookup needed
