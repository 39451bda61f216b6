"""Local job arrays: ``submit_job(..., array="1-3")`` on the local executor runs one task per index.

The array's own row is claimed like any local job; its wrapper (``runner.py``) hands it to
`run_array`, which adds one row per task, ``<job_id>_<index>`` (as SLURM and PBS arrays have),
and starts each task under the ordinary job wrapper, with ``$CELLINE_JOBS_ARRAY_INDEX`` set to its
index (and ``$CELLINE_JOB_ID`` to the task's id, so each task has its own log, progress and
exit-code files). At most ``%N`` tasks run at once (``1-10%2``), and never more than the project's
``max_parallel``. The array's row runs while its tasks do and ends when the last one ends:
completed when all completed, failed when any failed ("k of N array tasks failed"), else
cancelled. Cancelling the array cancels the tasks not started and stops the running ones;
cancelling one task stops only that task.
"""

from __future__ import annotations

import os
import re
import subprocess
import threading
import time
from typing import TYPE_CHECKING, Any

from ...core import reasons
from ...core.jobfiles import write_exit_file
from ...core.models import JobInfo, JobStatus, utcnow
from ...core.paths import ProjectPaths
from ...core.updates import JobUpdate
from ..base import SchedulerContext, array_outcome
from .adapter import LocalScheduler, is_same_process, max_parallel_of, process_identity, runner_argv

if TYPE_CHECKING:
    from ...store.sqlite import JobStore

ENV_ARRAY_INDEX = "CELLINE_JOBS_ARRAY_INDEX"
ENV_ARRAY_PARENT = "CELLINE_ARRAY_PARENT_JOB_ID"
MAX_LOCAL_TASKS = 10_000
_PART = re.compile(r"(\d+)(?:-(\d+)(?::(\d+))?)?")


def array_indices(spec: str) -> tuple[list[int], int | None]:
    """(task indexes, at most N at once or None) of a checked spec: "1-10%2", "1,3,5", "0-8:4"."""
    text, _, limit = str(spec).strip().partition("%")
    indices: set[int] = set()
    for part in text.split(","):
        match = _PART.fullmatch(part.strip())
        if match is None:
            raise ValueError(f"not an array spec: {spec!r}")
        start = int(match.group(1))
        end = int(match.group(2) or start)
        indices.update(range(start, end + 1, int(match.group(3) or 1)))
        if len(indices) > MAX_LOCAL_TASKS:
            raise ValueError(f"array {spec!r} has more than {MAX_LOCAL_TASKS} tasks")
    return sorted(indices), (int(limit) if limit else None)


def is_array_parent(job: JobInfo) -> bool:
    return bool(job.metadata.get("array")) and job.array_parent is None


def waiting_task(job: JobInfo) -> bool:
    """A task not started yet whose array's wrapper is alive: it will be started, never relaunched."""
    meta = job.metadata
    return job.array_parent is not None and "runner_pid" not in meta and is_same_process(
        meta.get("array_runner_pid"), meta.get("array_runner_started"))


def _task_rows(parent: JobInfo, paths: ProjectPaths, indices: list[int]) -> list[JobInfo]:
    env = dict(parent.metadata.get("env") or {})
    me = {"array_runner_pid": os.getpid(), "array_runner_started": process_identity(os.getpid())}
    rows = []
    for index in indices:
        task_id = f"{parent.job_id}_{index}"
        rows.append(JobInfo(
            job_id=task_id, name=parent.name, status=JobStatus.QUEUED, command=parent.command,
            log_file=str(paths.log_file(task_id)), working_dir=parent.working_dir, resources=parent.resources,
            scheduler=parent.scheduler, job_type=parent.job_type, submit_time=parent.submit_time,
            array_parent=parent.job_id, array_index=index, attempt=parent.attempt,
            metadata={**me, "env": {**env, ENV_ARRAY_INDEX: str(index), ENV_ARRAY_PARENT: parent.job_id}},
        ))
    return rows


def _start_task(paths: ProjectPaths, task_id: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        runner_argv(paths, task_id),
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True, close_fds=True, cwd=str(paths.root),
    )


def _summary(parent: JobInfo, tasks: list[JobInfo], *, final: bool) -> JobUpdate:
    counts: dict[str, int] = {"total": len(tasks)}
    for task in tasks:
        counts[task.status.value] = counts.get(task.status.value, 0) + 1
    fields: dict[str, Any] = {"metadata": {"array_tasks": counts}}
    if not final:
        return JobUpdate(parent.job_id, None, fields, source="runner")
    fields["end_time"] = max((t.end_time for t in tasks if t.end_time), default=utcnow())
    status, outcome = array_outcome(
        len(tasks), [t.exit_code for t in tasks if t.status is JobStatus.FAILED],
        sum(1 for t in tasks if t.status is JobStatus.CANCELLED),
        cancel_requested=bool(parent.metadata.get("cancel_requested")), unknown_code=1)
    return JobUpdate(parent.job_id, status, {**fields, **outcome}, source="runner")


def run_array(paths: ProjectPaths, store: JobStore, parent: JobInfo, terminate: threading.Event) -> int:
    """Run every task of the array ``parent`` (see the module's docstring); returns when all ended."""
    indices, at_once = array_indices(str(parent.metadata["array"]))
    limit = max(1, min(at_once or max_parallel_of(store), max_parallel_of(store)))
    store.update(parent.job_id, JobStatus.RUNNING, source="runner", start_time=utcnow(),
                 metadata={"runner_pid": os.getpid(), "runner_started": process_identity(os.getpid()),
                           "array_tasks": {"total": len(indices)}})
    store.insert_many(_task_rows(parent, paths, indices), source="array")
    task_ids = [f"{parent.job_id}_{i}" for i in indices]
    waiting = list(task_ids)
    started: dict[str, subprocess.Popen[bytes]] = {}
    stopping = False
    while True:
        tasks = store.get_many(task_ids)
        by_id = {t.job_id: t for t in tasks}
        if terminate.is_set() and not stopping:  # the array was cancelled
            stopping = True
            store.update(parent.job_id, None, source="runner", metadata={"cancel_requested": True})
            for task_id in waiting:
                store.update(task_id, JobStatus.CANCELLED, source="runner", reason=reasons.CANCELLED_BY_USER,
                             end_time=utcnow(), metadata={"cancel_requested": True})
            waiting = []
            # The running tasks are cancelled the way any local job is (marked, then their wrappers told).
            running_tasks = [by_id[t] for t in started if not by_id[t].status.final]
            store.apply(LocalScheduler(SchedulerContext(paths, store)).cancel(running_tasks))
        running = sum(1 for t in started if not by_id[t].status.final)
        while waiting and running < limit and not stopping:
            task_id = waiting.pop(0)
            if by_id[task_id].status.final:
                continue  # cancelled on its own before it started
            started[task_id] = _start_task(paths, task_id)
            running += 1
        for proc in started.values():
            proc.poll()  # reap finished wrappers
        if all(t.status.final for t in tasks) and not waiting:
            break
        store.apply([_summary(parent, tasks, final=False)])
        terminate.wait(0.2)
    parent = store.get(parent.job_id)
    update = _summary(parent, store.get_many(task_ids), final=True)
    store.apply([update])
    # The evidence a monitor started later trusts, as for any local job (after the state: the
    # reason above is the array's own, not "exit code 1").
    write_exit_file(paths.exit_file(parent.job_id), 0 if update.status is JobStatus.COMPLETED else 1, None)
    LocalScheduler(SchedulerContext(paths, store)).dispatch()
    deadline = time.monotonic() + 5
    while any(p.poll() is None for p in started.values()) and time.monotonic() < deadline:
        time.sleep(0.05)
    return 0
