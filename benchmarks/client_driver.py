"""One client's run for ``bench_clients`` (2.), in a process of its own so each client's threads,
imports and scheduler commands are its own: ``python -m benchmarks.client_driver CLIENT JOBS DIR NAME``.

CLIENT is ``ours``, ``submitit`` or ``psij`` (JOBS jobs), or ``ours-array`` (one array of JOBS
tasks). Every job runs the same command: write the time it ended to ``DIR/ends/<i>.end``. The
client submits them with its defaults, then waits the way its documentation says until it reports
every job done. Prints one JSON object: submit start/end, when the client noticed, and what it saw.
The parent counts the client's scheduler commands (it runs this with the counting PATH).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

WAIT_LIMIT = 1800.0  # seconds: a client that never notices is reported, not waited for forever


def _command(folder: Path, index: int) -> str:
    return f"date +%s.%N > {folder / 'ends' / f'{index}.end'}"


def run_ours(count: int, folder: Path, name: str) -> dict[str, Any]:
    from celline_jobs_nb.monitor import WAIT_LOOK_SECONDS, JobMonitor

    project = folder / "project"
    project.mkdir()
    monitor = JobMonitor(project)  # the defaults a notebook gets: fast polls after a submit, then 30 s
    adapter = monitor.adapter("slurm")  # set up before the clock, like psij's executor and submitit's
    start = time.time()
    ids = [monitor.submit_job(name, _command(folder, i), scheduler="slurm") for i in range(count)]
    submitted = time.time()
    jobs = monitor.wait(ids, timeout=WAIT_LIMIT)
    noticed = time.time()
    bad = [f"{j.job_id}:{j.status.value}" for j in jobs if j.status.value != "completed" or j.exit_code != 0]
    settled = max(adapter.min_poll_interval, adapter.default_poll_interval)
    return {"submit_start": start, "submit_end": submitted, "noticed": noticed, "bad": bad,
            "poll_interval": f"exit-code files every {WAIT_LOOK_SECONDS:g} s; squeue "
                             f"{adapter.fast_poll_interval:g} s for a minute after a submit, then {settled:g} s"}


def run_submitit(count: int, folder: Path, name: str) -> dict[str, Any]:
    import submitit
    from submitit.helpers import CommandFunction

    executor = submitit.SlurmExecutor(folder=folder / "submitit" / "%j")
    executor.update_parameters(job_name=name, time=30)
    start = time.time()
    jobs = [executor.submit(CommandFunction(["bash", "-c", _command(folder, i)])) for i in range(count)]
    submitted = time.time()
    deadline = time.monotonic() + WAIT_LIMIT
    while not all(job.done() for job in jobs):  # what Job.wait() does, for all of them
        if time.monotonic() > deadline:
            raise TimeoutError("submitit never reported every job done")
        time.sleep(1)
    noticed = time.time()
    bad = []
    for job in jobs:
        try:
            job.result()
        except Exception as exc:  # a failed job: reported, not fatal for the benchmark
            bad.append(f"{job.job_id}:{type(exc).__name__}")
    return {"submit_start": start, "submit_end": submitted, "noticed": noticed, "bad": bad,
            "poll_interval": "result file every 1 s; sacct at 2, 4, 8 ... s, then every 60 s"}


def run_psij(count: int, folder: Path, name: str) -> dict[str, Any]:
    from psij import Job, JobExecutor, JobSpec, JobState
    from psij.executors.batch.slurm import SlurmExecutorConfig

    config = SlurmExecutorConfig(work_directory=folder / "psij")  # default polling: every 30 s
    executor = JobExecutor.get_instance("slurm", config=config)
    start = time.time()
    jobs = []
    for i in range(count):
        job = Job(JobSpec(executable="/bin/bash", arguments=["-c", _command(folder, i)], name=name))
        executor.submit(job)
        jobs.append(job)
    submitted = time.time()
    for job in jobs:
        job.wait()
    noticed = time.time()
    bad = [f"{j.native_id}:{j.status.state}" for j in jobs if j.status.state != JobState.COMPLETED]
    return {"submit_start": start, "submit_end": submitted, "noticed": noticed, "bad": bad,
            "poll_interval": f"{config.queue_polling_interval} s"}


def run_ours_array(count: int, folder: Path, name: str) -> dict[str, Any]:
    """One array of ``count`` tasks. Small arrays run to the end; a big one (which would keep the
    2-CPU node busy for ~25 minutes) runs until a few tasks completed, then is cancelled: every row
    must still end in the state SLURM gives its task."""
    import subprocess

    from celline_jobs_nb.core.models import JobStatus
    from celline_jobs_nb.monitor import JobMonitor
    from celline_jobs_nb.schedulers.slurm import map_state

    project = folder / "project"
    project.mkdir()
    monitor = JobMonitor(project)
    start = time.time()
    parent_id = monitor.submit_job(name, "date +%s.%N > " + str(folder / "ends" / "task_${SLURM_ARRAY_TASK_ID}.end"),
                                   scheduler="slurm", array=f"1-{count}")
    submitted = time.time()
    native = monitor.get_job(parent_id).native_id
    monitor.refresh(force=True)
    first_rows = len(monitor.store.list(array_parent=parent_id))
    cancelled = False
    deadline = time.monotonic() + WAIT_LIMIT
    while monitor.get_job(parent_id).status.active:
        if time.monotonic() > deadline:
            raise TimeoutError("the array never ended")
        done = monitor.store.count([JobStatus.COMPLETED])
        if count > 50 and not cancelled and done >= 4:
            monitor.cancel_job(parent_id, wait=0)  # one scancel for the whole array
            cancelled = True
        time.sleep(1)
        monitor.refresh()
    noticed = time.time()
    children = monitor.store.list(array_parent=parent_id)
    listing = subprocess.run(["squeue", "-h", "-r", "-t", "all", "-j", str(native), "-o", "%i|%T"],
                             capture_output=True, text=True, timeout=60).stdout.split()
    slurm = dict(line.split("|", 1) for line in listing if "|" in line)
    wrong = [f"{c.native_id}: ours {c.status.value}, SLURM {slurm.get(c.native_id or '', 'missing')}"
             for c in children if map_state(slurm.get(c.native_id or "", ""))[0] is not c.status]
    wrong += [f"{c.native_id}: exit {c.exit_code}" for c in children
              if c.status is JobStatus.COMPLETED and c.exit_code != 0]
    parent = monitor.get_job(parent_id)
    counts = (parent.metadata.get("array_tasks") or {})
    return {"submit_start": start, "submit_end": submitted, "noticed": noticed, "bad": wrong,
            "rows": len(children), "rows_after_first_poll": first_rows, "slurm_tasks": len(slurm),
            "parent_status": parent.status.value, "task_counts": counts, "cancelled": cancelled,
            "completed": sum(1 for c in children if c.status is JobStatus.COMPLETED)}


CLIENTS = {"ours": run_ours, "submitit": run_submitit, "psij": run_psij, "ours-array": run_ours_array}


def main(argv: list[str]) -> int:
    client, count, folder, name = argv[0], int(argv[1]), Path(argv[2]), argv[3]
    (folder / "ends").mkdir(parents=True, exist_ok=True)
    result = CLIENTS[client](count, folder, name)
    print(json.dumps({"client": client, **result}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
