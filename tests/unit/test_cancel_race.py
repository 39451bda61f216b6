"""A cancel that races a cluster job's own end, decided from the exit-code file and the time the
cancel was sent (between polls, with no scheduler call): ended clearly before the cancel -> its own
exit status; killed by a signal at the cancel -> cancelled; exited by itself around the cancel ->
left for the scheduler's own record. The real-SLURM side is tests/integration/test_slurm_cancel_race.py."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from celline_jobs_nb.core.models import JobInfo, JobStatus
from celline_jobs_nb.core.paths import ProjectPaths
from celline_jobs_nb.schedulers.base import SchedulerContext
from celline_jobs_nb.schedulers.batch.rules import CANCEL_RACE_SECONDS, CANCEL_SENT_KEY, settle_from_exit_files
from celline_jobs_nb.store import JobStore


@pytest.fixture
def ctx(tmp_path: Path) -> SchedulerContext:
    paths = ProjectPaths.of(tmp_path)
    return SchedulerContext(paths, JobStore(paths), {})


def _running(ctx: SchedulerContext, job_id: str, **metadata: object) -> None:
    ctx.store.insert(JobInfo(job_id=job_id, name=job_id, status=JobStatus.RUNNING, command="sleep 1",
                             scheduler="slurm", native_id=job_id.removeprefix("j"), metadata=dict(metadata)))


def _exit_file(ctx: SchedulerContext, job_id: str, code: int, end: float) -> None:
    """What the batch script writes: $? of the command (143 = SIGTERM), whole seconds."""
    ctx.paths.logs_dir.mkdir(exist_ok=True)
    ctx.paths.exit_file(job_id).write_text(json.dumps(
        {"exit_code": code, "signal": None, "start_time": int(end) - 5, "end_time": int(end), "shell": True}))


def _settled(ctx: SchedulerContext) -> dict[str, JobStatus | None]:
    return {u.job_id: u.status for u in settle_from_exit_files(ctx, "slurm")}


def test_an_end_clearly_before_the_cancel_keeps_its_own_exit_status(ctx: SchedulerContext):
    sent = time.time()
    early = sent - 1.0 - CANCEL_RACE_SECONDS - 1.5
    _running(ctx, "j1", cancel_requested=True, **{CANCEL_SENT_KEY: sent})
    _running(ctx, "j2", cancel_requested=True, **{CANCEL_SENT_KEY: sent})
    _exit_file(ctx, "j1", 0, early)
    _exit_file(ctx, "j2", 3, early)
    assert _settled(ctx) == {"j1": JobStatus.COMPLETED, "j2": JobStatus.FAILED}


def test_a_kill_at_the_cancel_is_cancelled_and_an_exit_around_it_waits_for_the_scheduler(ctx: SchedulerContext):
    sent = time.time()
    _running(ctx, "j1", cancel_requested=True, **{CANCEL_SENT_KEY: sent})
    _running(ctx, "j2", cancel_requested=True, **{CANCEL_SENT_KEY: sent})
    _running(ctx, "j3", cancel_requested=True, **{CANCEL_SENT_KEY: sent})
    _exit_file(ctx, "j1", 143, sent + 0.2)  # SIGTERM from the cancel
    _exit_file(ctx, "j2", 0, sent)  # ended by itself, but just as the cancel went out
    _exit_file(ctx, "j3", 0, sent - 1.0)
    assert _settled(ctx) == {"j1": JobStatus.CANCELLED}


def test_the_cancel_time_of_the_array_counts_for_its_tasks(ctx: SchedulerContext):
    sent = time.time()
    ctx.store.insert(JobInfo(job_id="j9", name="array", status=JobStatus.RUNNING, command="true",
                             scheduler="slurm", native_id="9",
                             metadata={"array": "0-1", "cancel_requested": True, CANCEL_SENT_KEY: sent}))
    for index in (0, 1):
        ctx.store.insert(JobInfo(job_id=f"j9_{index}", name="array", status=JobStatus.RUNNING, command="true",
                                 scheduler="slurm", native_id=f"9_{index}", array_parent="j9", array_index=index))
    _exit_file(ctx, "j9_0", 0, sent - 10)
    _exit_file(ctx, "j9_1", 143, sent + 1)
    assert _settled(ctx) == {"j9_0": JobStatus.COMPLETED, "j9_1": JobStatus.CANCELLED}


def test_a_cancel_recorded_without_its_time_keeps_the_old_rule(ctx: SchedulerContext):
    _running(ctx, "j1", cancel_requested=True)  # PBS, or a cancel from an older version
    _exit_file(ctx, "j1", 0, time.time() - 60)
    assert _settled(ctx) == {"j1": JobStatus.CANCELLED}
