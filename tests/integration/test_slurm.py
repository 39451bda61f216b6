"""The SLURM adapter against the real single-node SLURM of scripts/start-slurm.sh, through the
JobMonitor API. The node has 2 CPUs and starts about 2 jobs every few seconds: the jobs here are
few and short (the whole file takes under a minute)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from support import final, poll_until

from celline_jobs_nb.core.models import JobStatus
from celline_jobs_nb.monitor import JobMonitor

pytestmark = [pytest.mark.slurm, pytest.mark.timeout(180)]


def transitions(mon: JobMonitor, job_id: str) -> list[JobStatus]:
    return [e.to_status for e in mon.store.events(job_id)]


def squeue_name(native_id: str) -> str:
    return subprocess.run(["squeue", "-h", "-t", "all", "-j", native_id, "-o", "%j"], capture_output=True,
                          text=True, check=True, timeout=30).stdout.rstrip("\n")


def test_submit_runs_and_completes(slurm_monitor: JobMonitor) -> None:
    mon = slurm_monitor
    job_id = mon.submit_job("hello", "sleep 3; echo hello from $CELLINE_JOB_ID", {"cpus": 1, "time": "5m"},
                            scheduler="slurm")
    job = mon.get_job(job_id)
    assert job.status is JobStatus.QUEUED and job.native_id and job.native_id.isdigit()
    assert Path(job.metadata["script"]).is_file()
    calls: list[int] = []
    poll_until(mon, final(mon, job_id), calls=calls)
    job = mon.get_job(job_id)
    assert job.status is JobStatus.COMPLETED and job.exit_code == 0 and job.reason is None
    seen = transitions(mon, job_id)
    assert seen.index(JobStatus.RUNNING) < seen.index(JobStatus.COMPLETED), seen
    assert job.start_time and job.end_time and job.end_time >= job.start_time
    assert mon.logs(job_id).strip() == f"hello from {job_id}"
    assert job.metadata["slurm_state"] == "COMPLETED"
    assert max(calls) <= 2 and calls.count(2) <= 1, calls  # one squeue (+ once the accounting probe)


def test_exit_3_is_failed_with_exit_code_3(slurm_monitor: JobMonitor) -> None:
    mon = slurm_monitor
    job_id = mon.submit_job("fails", "echo about to fail; exit 3", scheduler="slurm")
    poll_until(mon, final(mon, job_id))
    job = mon.get_job(job_id)
    assert (job.status, job.exit_code, job.signal, job.reason) == (JobStatus.FAILED, 3, None, "exit code 3")
    assert "about to fail" in mon.logs(job_id)
    retry = mon.retry_job(job_id, "mem=1G")  # a linked attempt with more memory
    again = mon.get_job(retry)
    assert (again.attempt, again.retry_of, again.resources.memory) == (2, job_id, 1024**3)
    assert "#SBATCH --mem=1G" in Path(again.metadata["script"]).read_text()
    poll_until(mon, final(mon, retry))
    assert (mon.get_job(retry).status, mon.get_job(retry).exit_code) == (JobStatus.FAILED, 3)


def test_cancel_running_and_pending(slurm_monitor: JobMonitor) -> None:
    mon = slurm_monitor
    running = [mon.submit_job(f"long {i}", "sleep 120", scheduler="slurm") for i in range(2)]
    pending = mon.submit_job("waits", "sleep 120", scheduler="slurm")  # 2 CPUs: this one waits
    poll_until(mon, lambda: all(mon.get_job(j).status is JobStatus.RUNNING for j in running))
    assert mon.get_job(pending).status is JobStatus.QUEUED
    # sstat, on demand (one call for all running jobs): memory of the batch steps, once sampled
    # (the cluster of scripts/start-slurm.sh samples every second).
    deadline, usage = time.monotonic() + 10, {}
    while time.monotonic() < deadline:
        usage = mon.adapter("slurm").running_usage(mon.store.get_many(running))
        if set(usage) == set(running) and all(u.get("max_rss_bytes", 0) > 0 for u in usage.values()):
            break
        time.sleep(0.5)
    assert set(usage) == set(running) and all(u["max_rss_bytes"] > 0 for u in usage.values()), usage
    assert mon.get_job(pending).reason in ("Resources", "Priority", None)
    calls_before = mon.adapter("slurm").calls
    mon.cancel_jobs([running[0], pending], wait=0)
    assert mon.adapter("slurm").calls == calls_before + 1  # one scancel for both
    poll_until(mon, final(mon, running[0], pending))
    for job_id in (running[0], pending):
        job = mon.get_job(job_id)
        assert job.status is JobStatus.CANCELLED and job.reason == "cancelled by user", job
    assert mon.get_job(pending).start_time is None  # it never ran
    assert mon.get_job(running[1]).status is JobStatus.RUNNING  # the other one is untouched
    assert mon.cancel_job(running[1], wait=10) is True
    assert mon.get_job(running[1]).status is JobStatus.CANCELLED


def test_array_of_4_with_at_most_2_at_once(slurm_monitor: JobMonitor) -> None:
    mon = slurm_monitor
    parent = mon.submit_job("array", "sleep 2; echo task $SLURM_ARRAY_TASK_ID of $CELLINE_JOB_ID", scheduler="slurm",
                            array="1-4%2")
    running_at_once: list[int] = []

    def done() -> bool:
        children = mon.store.list(array_parent=parent)
        running_at_once.append(sum(1 for c in children if c.status is JobStatus.RUNNING))
        return mon.get_job(parent).status.final

    poll_until(mon, done, timeout=90)
    job = mon.get_job(parent)
    assert job.status is JobStatus.COMPLETED and job.metadata["array_tasks"] == {"total": 4, "completed": 4}
    children = sorted(mon.store.list(array_parent=parent), key=lambda c: c.array_index or 0)
    assert [c.job_id for c in children] == [f"{parent}_{i}" for i in range(1, 5)]
    for index, child in enumerate(children, start=1):
        assert child.status is JobStatus.COMPLETED and child.exit_code == 0
        assert child.native_id == f"{job.native_id}_{index}" and child.name == "array"
        # Read the file directly: JobStore.resolve refuses ids with "_" (see the report).
        assert Path(child.log_file or "").read_text().strip() == f"task {index} of {child.job_id}"
    assert max(running_at_once) <= 2 and max(running_at_once) >= 1
    starts = sorted(c.start_time for c in children if c.start_time)
    assert len(starts) == 4 and starts[2] >= min(c.end_time for c in children if c.end_time)  # %2 held back


def test_afterok_on_a_failed_parent_is_reported_clearly(slurm_monitor: JobMonitor) -> None:
    mon = slurm_monitor
    parent = mon.submit_job("parent", "sleep 2; exit 1", scheduler="slurm")
    child = mon.submit_job("child", "echo never", scheduler="slurm", depends_on=[parent])
    parent_native = mon.get_job(parent).native_id
    assert mon.get_job(child).metadata["native_dependencies"] == [parent_native]
    mon.refresh(force=True)
    assert mon.get_job(child).reason == "Dependency"
    poll_until(mon, final(mon, parent, child))
    assert mon.get_job(parent).status is JobStatus.FAILED
    job = mon.get_job(child)
    assert job.status is JobStatus.CANCELLED and job.start_time is None
    expected = f"DependencyNeverSatisfied: its afterok dependency on SLURM job {parent_native} can never be met"
    assert job.reason == expected


def test_a_name_with_quotes_dollar_and_angle_brackets(slurm_monitor: JobMonitor) -> None:
    mon = slurm_monitor
    name = 'a "b" $c <d>'
    job_id = mon.submit_job(name, 'printf "%s\\n" "$CELLINE_JOB_ID"', scheduler="slurm")
    job = mon.get_job(job_id)
    assert squeue_name(job.native_id or "") == name  # SLURM got the name verbatim
    poll_until(mon, final(mon, job_id))
    job = mon.get_job(job_id)
    assert job.name == name and job.status is JobStatus.COMPLETED
    assert mon.logs(job_id).strip() == job_id


RESTART_SCRIPT = textwrap.dedent("""
    import os, sys, time
    from celline_jobs_nb.monitor import JobMonitor
    mon = JobMonitor(sys.argv[1], poll_intervals={"slurm": 1})
    ok = mon.submit_job("survives", "sleep 5; echo done", scheduler="slurm")
    bad = mon.submit_job("fails later", "sleep 5; exit 2", scheduler="slurm")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        mon.refresh(force=True)
        if all(mon.get_job(j).status.value == "running" for j in (ok, bad)):
            break
        time.sleep(0.5)
    print(ok, bad, flush=True)
    os.kill(os.getpid(), 9)  # no cleanup, no goodbye: like a kernel that dies
""")


def test_monitor_killed_mid_run_is_reattached(slurm_monitor: JobMonitor, project: Path) -> None:
    proc = subprocess.run([sys.executable, "-c", RESTART_SCRIPT, str(project)], capture_output=True, text=True,
                          timeout=90, env=dict(os.environ))
    assert proc.returncode == -9, proc.stderr
    ok, bad = proc.stdout.split()
    fresh = JobMonitor(project, poll_intervals={"slurm": 1})  # a new process's view: only the store
    assert fresh.get_job(ok).status is JobStatus.RUNNING and fresh.get_job(bad).status is JobStatus.RUNNING
    jobs = fresh.wait([ok, bad], timeout=60)
    by_id = {j.job_id: j for j in jobs}
    assert by_id[ok].status is JobStatus.COMPLETED and fresh.logs(ok).strip() == "done"
    assert (by_id[bad].status, by_id[bad].exit_code) == (JobStatus.FAILED, 2)


def test_controller_outage_is_stale_then_recovers(slurm_monitor: JobMonitor, slurm_cluster) -> None:
    mon = slurm_monitor
    ok = mon.submit_job("through the outage", "sleep 6", scheduler="slurm")
    bad = mon.submit_job("fails in the outage", "sleep 6; exit 4", scheduler="slurm")
    poll_until(mon, lambda: all(mon.get_job(j).status is JobStatus.RUNNING for j in (ok, bad)))
    slurm_cluster.stop_controller()
    try:
        mon.refresh(force=True)  # squeue cannot reach slurmctld (it gives up after ~9 s)
        state = mon.poll_states()["slurm"]
        assert state.stale and "controller" in (state.error or "")
        for job_id in (ok, bad):  # a failed poll never fails a job
            assert mon.get_job(job_id).status is JobStatus.RUNNING
        deadline = time.monotonic() + 30
        while not all(mon.paths.exit_file(j).exists() for j in (ok, bad)) and time.monotonic() < deadline:
            time.sleep(0.5)  # the jobs end while nobody can ask SLURM about them
        mon.refresh()  # ... and their exit-code files say so: seen without the controller
        assert mon.get_job(ok).status is JobStatus.COMPLETED
        assert (mon.get_job(bad).status, mon.get_job(bad).exit_code) == (JobStatus.FAILED, 4)
    finally:
        slurm_cluster.start()
    poll_until(mon, final(mon, ok, bad))
    assert not mon.poll_states()["slurm"].stale
    assert mon.get_job(ok).status is JobStatus.COMPLETED
    job = mon.get_job(bad)
    assert (job.status, job.exit_code) == (JobStatus.FAILED, 4)


def test_ends_are_read_from_exit_files_between_polls_then_reconciled(slurm_monitor: JobMonitor,
                                                                      project: Path) -> None:
    mon = slurm_monitor
    ok = mon.submit_job("ends well", "sleep 2", scheduler="slurm")
    bad = mon.submit_job("ends badly", "sleep 2; exit 4", scheduler="slurm")
    poll_until(mon, lambda: all(mon.get_job(j).status is JobStatus.RUNNING for j in (ok, bad)))
    # Another watcher of the project (a second notebook) whose SLURM poll turns are all taken for
    # an hour: only the jobs' own exit-code files can tell it that they ended.
    watcher = JobMonitor(project)
    watcher.store.reset_poll_due("slurm")
    assert watcher.store.claim_poll("slurm", 3600)
    deadline = time.monotonic() + 60
    while not all(watcher.get_job(j).status.final for j in (ok, bad)):
        assert time.monotonic() < deadline, [watcher.get_job(j) for j in (ok, bad)]
        watcher.refresh()
        time.sleep(0.2)
    assert watcher.scheduler_calls.get("slurm", 0) == 0
    done, failed = watcher.get_job(ok), watcher.get_job(bad)
    assert (done.status, done.exit_code, done.reason) == (JobStatus.COMPLETED, 0, None)
    assert (failed.status, failed.exit_code, failed.reason) == (JobStatus.FAILED, 4, "exit code 4")
    assert done.start_time and done.end_time and done.end_time >= done.start_time
    assert {j.job_id for j in watcher.store.reconciling("slurm")} == {ok, bad}
    # The next polls read SLURM's own record of them (it keeps ended jobs for MinJobAge).
    poll_until(mon, lambda: not mon.store.reconciling("slurm"))
    assert mon.get_job(ok).metadata["slurm_state"] == "COMPLETED"
    assert mon.get_job(bad).metadata["slurm_state"] == "FAILED"
    assert (mon.get_job(ok).status, mon.get_job(bad).exit_code) == (JobStatus.COMPLETED, 4)
    assert [e.to_status for e in mon.store.events(ok)].count(JobStatus.COMPLETED) == 1


def test_scheduler_calls_per_poll_stay_one_for_1_and_100_jobs(slurm_monitor: JobMonitor) -> None:
    mon = slurm_monitor
    held = {"extra": ["--hold"]}  # held jobs stay put: the 2-CPU node never has to run them
    first = mon.submit_job("held 0", "true", held, scheduler="slurm")
    assert mon.get_job(first).status is JobStatus.HELD
    mon.refresh(force=True)
    assert mon.poll_states()["slurm"].last_calls == 1
    assert mon.get_job(first).reason == "JobHeldUser"
    ids = [first] + [mon.submit_job(f"held {i}", "true", held, scheduler="slurm") for i in range(1, 100)]
    adapter = mon.adapter("slurm")
    before = adapter.calls
    mon.refresh(force=True)
    assert mon.poll_states()["slurm"].last_calls == 1 and adapter.calls == before + 1
    assert all(j.status is JobStatus.HELD for j in mon.store.get_many(ids))
    before = adapter.calls
    mon.cancel_jobs(ids, wait=0)
    assert adapter.calls == before + 1  # one scancel for all 100
    calls: list[int] = []
    poll_until(mon, final(mon, *ids), calls=calls)
    assert all(j.status is JobStatus.CANCELLED for j in mon.store.get_many(ids))
    assert max(calls) <= 2, calls


def test_queue_shows_foreign_jobs_and_attach_tracks_one(slurm_monitor: JobMonitor, tmp_path: Path) -> None:
    mon = slurm_monitor
    out = tmp_path / "foreign-%j.out"
    native = subprocess.run(["sbatch", "--parsable", "-J", "not ours | really", "-o", str(out), "--wrap",
                             "sleep 3; exit 5"], capture_output=True, text=True, check=True, timeout=30).stdout.strip()
    entries = {e.native_id: e for e in mon.queue("slurm")}
    assert entries[native].name == "not ours | really" and entries[native].tracked_job_id is None
    job_id = mon.attach("slurm", native)
    assert mon.attach("slurm", native) == job_id  # attaching twice tracks it once
    job = mon.get_job(job_id)
    assert (job.scheduler, job.native_id, job.name) == ("slurm", native, "not ours | really")
    assert job.status in (JobStatus.QUEUED, JobStatus.RUNNING)
    poll_until(mon, final(mon, job_id))
    job = mon.get_job(job_id)
    # No exit-code file for a job we did not write: the exit code comes from accounting.
    assert (job.status, job.exit_code) == (JobStatus.FAILED, 5), job



def test_cancelling_a_local_job_does_not_poll_slurm(slurm_monitor: JobMonitor) -> None:
    mon = slurm_monitor
    mon.submit_job("held", "true", {"extra": ["--hold"]}, scheduler="slurm")
    local = mon.submit_job("local sleeper", "sleep 60")
    poll_until(mon, lambda: mon.get_job(local).status is JobStatus.RUNNING)
    before = mon.adapter("slurm").calls
    assert mon.cancel_job(local, wait=3)
    assert mon.get_job(local).status is JobStatus.CANCELLED
    assert mon.adapter("slurm").calls == before  # the cancel's wait polled only the local executor
