"""No double runs, with real processes: a command that outlives its killed wrapper is followed to
its end (never "lost" and retried while any process of its group runs), a submit that fails on a
full disk leaves no job that runs later, and a cancel stops a stopped (SIGSTOP) job for good."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import psutil
import pytest

from celline_jobs_nb import JobMonitor, JobStatus
from celline_jobs_nb.core.errors import StoreError
from celline_jobs_nb.core.jobfiles import write_exit_file

T = TypeVar("T")
RETRY_AT_ONCE = {"max_retries": 2, "backoff": 0, "jitter": 0}


def _wait_for(predicate: Callable[[], T], timeout: float = 30.0) -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"condition not met within {timeout} s")


def _group(pgid: int) -> list[int]:
    """Live (not zombie) processes of a process group."""
    members = []
    for proc in psutil.process_iter(["status"]):
        try:
            if os.getpgid(proc.pid) == pgid and proc.info["status"] != psutil.STATUS_ZOMBIE:
                members.append(proc.pid)
        except (ProcessLookupError, PermissionError):
            continue
    return members


def _started(monitor: JobMonitor, job_id: str, marker: Path) -> dict[str, object]:
    """The job's metadata once its command runs and its wrapper has recorded the process group."""
    _wait_for(lambda: marker.exists() and "pgid" in monitor.get_job(job_id).metadata)
    return monitor.get_job(job_id).metadata


def _refreshed_final(monitor: JobMonitor, job_id: str, timeout: float = 30.0) -> None:
    def final() -> bool:
        monitor.refresh(force=True)
        return monitor.get_job(job_id).status.final
    _wait_for(final, timeout)


@pytest.fixture
def gate(project: Path) -> Iterator[Path]:
    """A file the test's commands wait for; made at teardown too, so a failed test leaves nothing running."""
    path = project / "gate"
    yield path
    path.touch()


def test_a_command_outliving_its_killed_wrapper_ends_completed_and_runs_once(monitor: JobMonitor, project: Path,
                                                                             gate: Path):
    """Issue 15 case 4: SIGKILL of the wrapper while the command runs on and then succeeds."""
    runs = project / "runs.txt"
    job_id = monitor.submit_job("outlives", f"echo run >> {runs}; while [ ! -e {gate} ]; do sleep 0.05; done",
                                retry=RETRY_AT_ONCE)
    meta = _started(monitor, job_id, runs)
    os.kill(int(meta["runner_pid"]), signal.SIGKILL)
    for _ in range(3):  # the wrapper is gone, the command is not: re-attached, still running
        monitor.refresh(force=True)
        assert monitor.get_job(job_id).status is JobStatus.RUNNING
    gate.touch()
    _refreshed_final(monitor, job_id)
    job = monitor.get_job(job_id)
    assert (job.status, job.exit_code, job.reason) == (JobStatus.COMPLETED, 0, None)
    monitor.refresh(force=True)  # a retry would be decided (backoff 0) and started here
    assert [j.job_id for j in monitor.list_jobs()] == [job_id]
    assert runs.read_text().split() == ["run"]


def test_lost_only_once_the_whole_group_is_gone_and_only_then_retried(monitor: JobMonitor, project: Path,
                                                                      gate: Path):
    """Wrapper and the group's first process SIGKILLed, a background member runs on: not lost, not
    retried until that member ends too; then "lost" (no exit code anywhere) and retried once."""
    runs = project / "runs.txt"
    member = f"sh -c 'while [ ! -e {gate} ]; do sleep 0.05; done' & wait"
    job_id = monitor.submit_job("survivor", f"echo run >> {runs}; {member}", retry={**RETRY_AT_ONCE, "max_retries": 1})
    meta = _started(monitor, job_id, runs)
    pgid = int(meta["pgid"])
    os.kill(int(meta["runner_pid"]), signal.SIGKILL)
    os.kill(int(meta["pid"]), signal.SIGKILL)
    _wait_for(lambda: not psutil.pid_exists(int(meta["pid"])) or
              psutil.Process(int(meta["pid"])).status() == psutil.STATUS_ZOMBIE)
    assert _group(pgid), "a member of the job's process group runs on"
    for _ in range(3):
        monitor.refresh(force=True)
        assert monitor.get_job(job_id).status is JobStatus.RUNNING
        assert len(monitor.list_jobs()) == 1  # no retry while anything of the group runs
    gate.touch()
    _refreshed_final(monitor, job_id)
    job = monitor.get_job(job_id)
    assert job.status is JobStatus.FAILED and job.reason.startswith("lost:")
    assert not _group(pgid)
    monitor.refresh(force=True)
    retry = _wait_for(lambda: [j for j in monitor.list_jobs() if j.retry_of == job_id])[0]
    monitor.wait([retry.job_id], timeout=30)
    assert monitor.get_job(retry.job_id).start_time >= job.end_time  # after the proof, never alongside
    assert runs.read_text().split() == ["run", "run"]


def test_a_wrapper_killed_before_recording_the_group_still_has_its_command_followed(monitor: JobMonitor,
                                                                                     project: Path, gate: Path):
    """The wrapper dies between starting the command and recording its pids (the store then holds
    only the wrapper's run claim): the command is found by the wrapper's session and followed."""
    runs = project / "runs.txt"
    job_id = monitor.submit_job("unrecorded", f"echo run >> {runs}; while [ ! -e {gate} ]; do sleep 0.05; done",
                                retry=RETRY_AT_ONCE)
    meta = _started(monitor, job_id, runs)
    os.kill(int(meta["runner_pid"]), signal.SIGKILL)
    # What a wrapper killed before its first record leaves: the claim, none of the command's pids.
    monitor.store.update(job_id, None, source="test", metadata={k: None for k in (
        "pid", "pid_started", "pgid", "runner_pid", "runner_started")})
    for _ in range(3):
        monitor.refresh(force=True)
        assert monitor.get_job(job_id).status is JobStatus.RUNNING
    gate.touch()
    _refreshed_final(monitor, job_id)
    assert (monitor.get_job(job_id).status, monitor.get_job(job_id).exit_code) == (JobStatus.COMPLETED, 0)
    monitor.refresh(force=True)
    assert [j.job_id for j in monitor.list_jobs()] == [job_id]
    assert runs.read_text().split() == ["run"]


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    mount = tmp_path / "tiny"
    mount.mkdir()
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)], capture_output=True)
    if result.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here (needs root): {result.stderr.decode().strip()}")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_submit_refused_on_a_full_disk_leaves_no_job_that_runs_later(tiny_disk: Path, tmp_path: Path):
    """Issue 15 case 5: every submit either returns an id (that job runs once) or raises, and then
    nothing of it ever runs, also after space frees."""
    project = tiny_disk / "project"
    project.mkdir()
    ran = tmp_path / "ran"  # outside the full disk, so each run leaves its mark
    ran.mkdir()
    monitor = JobMonitor(project, max_parallel=1)
    monitor.wait([monitor.submit_job("fits", "exit 0")], timeout=30)
    filler = _fill(tiny_disk)
    size = filler.stat().st_size
    accepted: dict[str, str] = {}
    refused: list[str] = []
    for i in range(120):  # a page more room each time: submits fail at every point of their writes
        size -= 4096
        os.truncate(filler, size)
        name = f"n{i}"
        try:
            accepted[name] = monitor.submit_job(name, f"touch {ran}/{name} #" + uuid.uuid4().hex * 100)
        except StoreError:
            refused.append(name)
    assert refused, "the disk never filled up"
    filler.unlink()
    monitor.store.close()
    fresh = JobMonitor(project, max_parallel=4)
    active = [j.job_id for j in fresh.store.active()]
    fresh.wait(active, timeout=120)
    fresh.refresh(force=True)
    names = {j.name: j for j in fresh.list_jobs()}
    for name in refused:
        job = names.get(name)
        assert job is None or (job.status.final and job.start_time is None), (name, job)
        assert not (ran / name).exists(), f"{name}'s submit raised, yet it ran"
    assert all(j.status.final for j in fresh.store.get_many(list(accepted.values())))
    assert {p.name for p in ran.iterdir()} <= set(accepted)


def _fill(disk: Path) -> Path:
    """Fill every free block of ``disk``; returns the filler file (delete it to free the space)."""
    filler = disk / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT)
    try:
        while True:
            os.write(fd, b"\0" * 4096)
    except OSError:
        pass
    finally:
        os.close(fd)
    return filler


def test_a_job_ending_while_the_disk_is_full_keeps_its_end_and_is_not_rerun(tiny_disk: Path, tmp_path: Path):
    """A full disk when the command ends: no exit-code file can be written yet. The wrapper keeps
    its end until there is room, so the job is completed, not "lost" and retried (run twice)."""
    project = tiny_disk / "project"
    project.mkdir()
    runs, gate = tmp_path / "runs.txt", tmp_path / "gate"
    monitor = JobMonitor(project, max_parallel=1)
    try:
        job_id = monitor.submit_job("ends-on-full-disk",
                                    f"echo run >> {runs}; while [ ! -e {gate} ]; do sleep 0.05; done",
                                    retry=RETRY_AT_ONCE)
        _started(monitor, job_id, runs)
        filler = _fill(tiny_disk)
        gate.touch()
        _wait_for(lambda: not _group(int(monitor.get_job(job_id).metadata["pgid"])))  # the command ended
        with contextlib.suppress(StoreError):  # a poll on a full disk may fail to record anything
            monitor.refresh(force=True)
        assert monitor.get_job(job_id).status is JobStatus.RUNNING  # its end is not known yet: not lost
        filler.unlink()
        _refreshed_final(monitor, job_id)
        job = monitor.get_job(job_id)
        assert (job.status, job.exit_code) == (JobStatus.COMPLETED, 0)
        monitor.refresh(force=True)
        assert [j.job_id for j in monitor.list_jobs()] == [job_id]
        assert runs.read_text().split() == ["run"]
    finally:
        gate.touch()


@pytest.mark.parametrize("stopped", ["wrapper", "command", "both", "none, a member ignores SIGTERM"])
def test_cancel_of_a_stopped_job_reports_cancelled_only_when_its_group_is_gone(monitor: JobMonitor, project: Path,
                                                                                stopped: str):
    """Issue 15 case 6: SIGSTOP on the wrapper and/or the command's group, then cancel. Also a job
    whose background process ignores SIGTERM: cancelled only once that one is gone too."""
    ticks = project / "ticks"
    stubborn = "sh -c 'trap \"\" TERM; while true; do sleep 0.05; done' & " if stopped.startswith("none") else ""
    job_id = monitor.submit_job("stopped", f"trap 'echo got TERM >> {ticks}; exit 143' TERM; "
                                           f"{stubborn}while true; do echo t >> {ticks}; sleep 0.05; done")
    meta = _started(monitor, job_id, ticks)
    pgid = int(meta["pgid"])
    if stopped in ("wrapper", "both"):
        os.kill(int(meta["runner_pid"]), signal.SIGSTOP)
    if stopped in ("command", "both"):
        os.killpg(pgid, signal.SIGSTOP)
    assert monitor.cancel_job(job_id, wait=30)
    job = monitor.get_job(job_id)
    assert (job.status, job.reason) == (JobStatus.CANCELLED, "cancelled by user")
    assert not _group(pgid)
    assert "got TERM" in ticks.read_text()  # continued, so it ended on SIGTERM, not by the SIGKILL after the grace


def test_a_cancelled_job_never_kills_a_program_that_got_its_group_id(monitor: JobMonitor, project: Path):
    """A job recorded without its group's start time (a record of an earlier version) whose process
    group id now belongs to another program (pids are reused; a daemon leads its own group): the
    cancel's SIGKILL goes nowhere, the program runs on. Each new job records that start time, even
    for a command that has already exited when its wrapper records it."""
    quick = monitor.submit_job("quick", "true")
    monitor.wait([quick], timeout=30)
    assert isinstance(monitor.get_job(quick).metadata.get("pid_started"), float)

    marker = project / "started.txt"
    job_id = monitor.submit_job("long", f"touch {marker}; sleep 60")
    meta = _started(monitor, job_id, marker)
    own_group = int(meta["pgid"])
    other = subprocess.Popen(["sleep", "60"], start_new_session=True)  # leads its own group
    try:
        monitor.store.update(job_id, None, source="test", metadata={
            "pgid": other.pid, "pid": other.pid, "pid_started": None, "runner_pid": 2 ** 22 + 1,
            "cancel_requested": True, "cancel_sent_at": 0.0})
        os.killpg(own_group, signal.SIGKILL)
        os.kill(int(meta["runner_pid"]), signal.SIGKILL)
        write_exit_file(monitor.paths.exit_file(job_id), None, signal.SIGKILL)
        for _ in range(3):
            monitor.refresh(force=True)
        assert other.poll() is None, "a program that is not the job's was signalled"
    finally:
        other.kill()
        other.wait()


def test_jobs_cancelled_with_the_one_holding_the_slot_never_run(project: Path):
    """Cancelling waiting jobs together with the running job that holds the only slot: the running
    job's wrapper, which starts the next waiting job once its command ends, finds them cancelled
    already — none of them runs."""
    monitor = JobMonitor(project, max_parallel=1)
    started = project / "blocker-started"
    blocker = monitor.submit_job("blocker", f"touch {started}; sleep 300")
    waiting = [monitor.submit_job(f"w{i}", f"touch {project}/ran-{i}") for i in range(2000)]
    _wait_for(started.exists)
    monitor.cancel_jobs([*waiting, blocker], wait=15)
    monitor.refresh(force=True)
    assert sorted(p.name for p in project.glob("ran-*")) == []
    assert monitor.store.count([JobStatus.CANCELLED]) == 2001
