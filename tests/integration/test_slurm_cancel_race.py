"""Cancelling an array while its tasks are ending, on the real single-node SLURM: every task row
ends in the state SLURM itself gives the task (`scontrol show job`). A task that ended by itself
before the cancel reached SLURM is COMPLETED there, and must be completed here too, even when the
cancel was sent before our monitor had read its exit-code file.

Each round: a poll sees the array's first task running (so every task has a row), then nothing
reads the exit-code files while the first task ends and the second one runs; the array is
cancelled the moment the second task's exit-code file appears (its command has just ended: SLURM
may or may not have recorded that end when the cancel comes). Repeated for several rounds. Small:
one task at a time (%1), 1 CPU of the 2-CPU node, a few seconds a task."""

from __future__ import annotations

import re
import subprocess
import time
from pathlib import Path

import pytest
from support import poll_until

from celline_jobs_nb.core.models import JobStatus
from celline_jobs_nb.monitor import JobMonitor
from celline_jobs_nb.schedulers.batch.rules import CANCEL_RACE_SECONDS

pytestmark = [pytest.mark.slurm, pytest.mark.timeout(600)]

ROUNDS = 4
TASKS = 6
TASK_SECONDS = 3.5
SLURM_STATE = {"COMPLETED": JobStatus.COMPLETED, "CANCELLED": JobStatus.CANCELLED, "FAILED": JobStatus.FAILED}
UNFINISHED = ("PENDING", "RUNNING", "COMPLETING", "CONFIGURING", "SUSPENDED", "REQUEUED", "RESIZING")


def _task_ids(text: str) -> list[int]:
    """ArrayTaskId of one scontrol record: "3", or "5-11%2", "5,7-9" for the tasks still pending."""
    ids: list[int] = []
    for part in text.split("%")[0].split(","):
        low, _, high = part.partition("-")
        ids.extend(range(int(low), int(high or low) + 1))
    return ids


def slurm_task_states(array_id: str) -> dict[int, str]:
    """Each task's state as SLURM's controller records it."""
    out = subprocess.run(["scontrol", "-o", "show", "job", array_id], capture_output=True, text=True,
                         check=True, timeout=30).stdout
    states: dict[int, str] = {}
    for line in out.splitlines():
        task = re.search(r"\bArrayTaskId=(\S+)", line)
        state = re.search(r"\bJobState=(\S+)", line)
        if task and state:
            for index in _task_ids(task.group(1)):
                states[index] = state.group(1)
    return states


def _exit_files(logs: Path, parent: str) -> set[Path]:
    return set(logs.glob(f"{parent}_*.exitcode")) if logs.is_dir() else set()


def _cancel_as_a_task_ends(mon: JobMonitor, parent: str) -> float:
    """Let the first task end unread, wait for the second task's exit-code file, then cancel the
    array at once (and return when the cancel was sent). Nothing refreshes meanwhile: both tasks
    are still running in the store."""
    deadline = time.monotonic() + 120
    while len(_exit_files(mon.paths.logs_dir, parent)) < 2:
        assert time.monotonic() < deadline, "the array's tasks did not run"
        time.sleep(0.005)
    sent = time.time()
    mon.cancel_jobs([parent], wait=0)
    return sent


def test_an_array_cancelled_while_tasks_end_matches_slurm_task_by_task(slurm_monitor: JobMonitor) -> None:
    mon = slurm_monitor
    raced = ended_before_unread = 0
    for round_ in range(ROUNDS):
        parent = mon.submit_job(f"race {round_}", f"sleep {TASK_SECONDS}", {"cpus": 1, "time": "5m"},
                                scheduler="slurm", array=f"0-{TASKS - 1}%1")
        array_id = mon.get_job(parent).native_id or ""
        poll_until(mon, lambda p=parent: mon.store.list(array_parent=p, statuses=[JobStatus.RUNNING]) != [],
                   timeout=120, every=0.2)
        assert len(mon.store.list(array_parent=parent)) == TASKS  # every task has its row
        sent = _cancel_as_a_task_ends(mon, parent)
        # How the tasks that had ended stood against the cancel, before any poll read them.
        for path in _exit_files(mon.paths.logs_dir, parent):
            if sent - path.stat().st_mtime < 1.0 + CANCEL_RACE_SECONDS:
                raced += 1
            else:
                ended_before_unread += 1
        poll_until(mon, lambda p=parent: mon.get_job(p).status.final, timeout=120)
        deadline = time.monotonic() + 60
        states = slurm_task_states(array_id)
        while any(s in UNFINISHED for s in states.values()) or len(states) < TASKS:
            assert time.monotonic() < deadline, states
            time.sleep(0.5)
            states = slurm_task_states(array_id)
        rows = {c.array_index: c for c in mon.store.list(array_parent=parent)}
        assert sorted(rows) == list(range(TASKS)), sorted(rows)
        mismatched = {i: (rows[i].status.value, states[i]) for i in range(TASKS)
                      if rows[i].status is not SLURM_STATE.get(states[i])}
        assert not mismatched, f"round {round_}: rows that differ from SLURM (ours, SLURM's): {mismatched}"
        for row in rows.values():
            if row.status is JobStatus.COMPLETED:
                assert row.exit_code == 0 and row.reason is None, row
            if row.status is JobStatus.CANCELLED:
                assert row.reason == "cancelled by user", row
        job = mon.get_job(parent)
        counts = job.metadata["array_tasks"]
        assert counts["total"] == TASKS and counts.get("cancelled", 0) > 0  # the tasks still pending
        print(f"round {round_}: SLURM {sorted(states.items())}")
        assert job.status is JobStatus.CANCELLED
    # The rounds did exercise the race: tasks that ended around the cancel, and tasks that had
    # ended before it while the store still had them running.
    assert raced > 0 and ended_before_unread > 0, (raced, ended_before_unread)
