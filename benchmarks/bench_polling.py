"""1. Scheduler calls per poll on the real SLURM with 10, 100 and 1,000 tracked jobs.

Ours: ``JobMonitor.refresh()`` makes ONE batched ``squeue -j id,id,...`` for every tracked job
(+1 accounting call for jobs that just left the queue without an exit-code file). Baseline: the
per-job design, one ``squeue -j <id>`` per tracked job. Calls are counted by the wrapper directory
first on PATH (benchmarks/cluster.py), not by our own counter; ``adapter.calls`` is checked too.

The tracked jobs cost the 2-CPU node nothing: they are submitted held (``sbatch --hold``): 10 and
100 single jobs, and the 1,000 as one held array of 1,000 tasks (tracked as 1,000 task rows). Wall
times are measured in a second pass without the wrapper (its bash start-up would add ~2 ms per
call, N times to the baseline and once to ours). Held jobs never run, so calls made from inside
job scripts are counted in 2. (``bench_clients``), where the jobs run.
"""

from __future__ import annotations

import contextlib
import os
import statistics
import subprocess
import tempfile
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

from celline_jobs_nb.core.models import JobInfo, JobStatus, new_job_id, utcnow
from celline_jobs_nb.monitor import JobMonitor
from celline_jobs_nb.schedulers.slurm import POLL_FORMAT

from .cluster import (
    NO_CLUSTER,
    CountingPath,
    cluster_ready,
    cpu_between,
    scancel,
    slurm_answers,
    slurmctld_cpu,
    wait_until,
)
from .common import Row, require_service

BENCH = "1. calls per poll"
HOLD = {"extra": ["--hold"]}
POLLS = 3


@contextlib.contextmanager
def _environment(env: dict[str, str]) -> Iterator[None]:
    """Run in-process code (the monitor's subprocesses) with ``env``; restore it afterwards."""
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def _poll(monitor: JobMonitor) -> tuple[float, bool]:
    """One forced poll: (wall seconds, whether it had to be repeated). A poll that fails (other
    developers' tests stop slurmctld now and then) is repeated once the controller answers again."""
    for attempt in range(3):
        start = time.perf_counter()
        monitor.refresh(force=True)
        elapsed = time.perf_counter() - start
        state = monitor.poll_states().get("slurm")
        if state is None or not state.stale:
            return elapsed, attempt > 0
        wait_until(slurm_answers, 90, step=2)
    raise RuntimeError(f"SLURM polls keep failing: {state.error if state else 'no poll state'}")


def _counted_polls(monitor: JobMonitor, counter: CountingPath, tag: str) -> tuple[float, float]:
    """(wrapper-counted, adapter-counted) calls of the median poll among polls that went through at once."""
    counted, own = [], []
    for _ in range(POLLS * 3):
        before, before_own = counter.count(tag), monitor.scheduler_calls.get("slurm", 0)
        _elapsed, repeated = _poll(monitor)
        if not repeated:
            counted.append(counter.count(tag) - before)
            own.append(monitor.scheduler_calls.get("slurm", 0) - before_own)
        if len(counted) == POLLS:
            break
    if not counted:
        raise RuntimeError("no SLURM poll went through at the first try")
    return statistics.median(counted), statistics.median(own)


def _tracked_native_ids(monitor: JobMonitor) -> list[str]:
    """The ids a per-job design would ask about: every tracked single job or array task."""
    jobs = [j for j in monitor.store.active("slurm") if j.native_id and not j.metadata.get("array")]
    return [j.native_id for j in jobs if j.native_id]


def _per_job(native_ids: list[str], env: dict[str, str] | None) -> float:
    """The per-job design's poll: one squeue per job. Returns its wall time."""
    start = time.perf_counter()
    for native in native_ids:
        subprocess.run(["squeue", "-h", "-t", "all", "-j", native, "-o", "%i %T"], capture_output=True,
                       env=env, timeout=60)
    return time.perf_counter() - start


def _measure(count: int, counter: CountingPath, project: Path) -> list[Row]:
    project.mkdir(parents=True)
    name = f"cj-bench-held-{os.getpid()}-{count}"  # one name for all: `scancel --name` cleans up whatever happens
    tag = f"ours-{count}"
    try:
        with _environment(counter.env(tag)):
            monitor = JobMonitor(project)
            if count >= 1000:  # one held array: one sbatch, 1,000 task rows after the first poll
                monitor.submit_job(name, "true", HOLD, scheduler="slurm", array=f"1-{count}")
            else:
                for _ in range(count):
                    monitor.submit_job(name, "true", HOLD, scheduler="slurm")
            _poll(monitor)  # the first poll turns array tasks into rows
            native_ids = _tracked_native_ids(monitor)
            ours_calls, own_calls = _counted_polls(monitor, counter, tag)
        per_tag = f"per-job-{count}"
        _per_job(native_ids, counter.env(per_tag))
        per_job_calls = counter.count(per_tag)
        # Timing pass, plain PATH: the median poll of ours, one full round of the per-job design.
        cpu0 = slurmctld_cpu()
        ours_wall = statistics.median(_poll(monitor)[0] for _ in range(POLLS))
        cpu1 = slurmctld_cpu()
        per_job_wall = _per_job(native_ids, None)
        cpu2 = slurmctld_cpu()
        batched = statistics.median(
            _timed_run(["squeue", "-h", "-r", "-t", "all", "-j", ",".join(native_ids), "-o", POLL_FORMAT])
            for _ in range(POLLS))
    finally:
        scancel(name=name)
    ours_ctld, per_job_ctld = cpu_between(cpu0, cpu1), cpu_between(cpu1, cpu2)
    # slurmctld's CPU, in 10 ms clock ticks and shared with other users' requests: telling from 100 jobs on.
    ctld = ""
    if count >= 100:
        ctld = (f"; slurmctld CPU: ours {ours_ctld * 1000:.0f} ms in {POLLS} polls, per-job "
                f"{per_job_ctld * 1000:.0f} ms in one round" if ours_ctld is not None and per_job_ctld is not None
                else "; slurmctld restarted meanwhile: no CPU figure")
    how = "one held array of 1,000 tasks" if count >= 1000 else f"{count} held jobs"
    tracked = len(native_ids)
    return [
        Row(BENCH, f"scheduler calls per poll, {tracked:,} tracked jobs ({how})", ours_calls, "calls",
            per_job_calls, "per-job `squeue -j`", target="1", met=ours_calls == 1 and tracked == count,
            note=f"counted by the PATH wrapper; adapter.calls says {own_calls:g}"),
        Row(BENCH, f"poll wall time, {tracked:,} tracked jobs", ours_wall * 1000, "ms", per_job_wall * 1000,
            "per-job `squeue -j`",
            note=f"whole monitor.refresh() incl. the store; the batched squeue alone: {batched * 1000:.0f} ms{ctld}"),
    ]


def _timed_run(args: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(args, capture_output=True, timeout=60)
    return time.perf_counter() - start


def _forgotten_native_id() -> str:
    """A job id SLURM no longer lists (the smallest one not in ``squeue -t all``: purged)."""
    listed = subprocess.run(["squeue", "-h", "-t", "all", "-o", "%A"], capture_output=True, text=True,
                            timeout=60).stdout.split()
    known = {int(x) for x in listed if x.isdigit()}
    candidate = 1
    while candidate in known:
        candidate += 1
    return str(candidate)


def _left_the_queue(counter: CountingPath, project: Path) -> list[Row]:
    """A poll where one tracked job has left the queue without an exit-code file: squeue + one
    accounting call (the first poll of a process also probes which accounting works, once an hour)."""
    project.mkdir(parents=True)
    tag = "ours-left"
    with _environment(counter.env(tag)):
        monitor = JobMonitor(project)
        # Submitted a minute ago: an old accounting record under the same (reused) id is not taken for it.
        monitor.store.insert(JobInfo(job_id=new_job_id(), name="cj-bench-gone", command="true", scheduler="slurm",
                                     status=JobStatus.RUNNING, native_id=_forgotten_native_id(),
                                     submit_time=utcnow() - timedelta(minutes=1)))
        counts = []
        for _ in range(3):
            before = counter.count(tag)
            _poll(monitor)
            counts.append(counter.count(tag) - before)  # a repeated poll shows as more calls: never fewer
    commands = sorted({c.command + (" -c" if " -c " in f" {c.args} " else "") for c in counter.calls(tag)})
    return [Row(BENCH, "calls per poll with one tracked job that just left the queue", counts[-1], "calls",
                target="2", met=counts[-1] == 2,
                note=f"polls: {', '.join(map(str, counts))} (the first probes accounting once); "
                     f"commands: {', '.join(commands)}")]


def run(quick: bool) -> list[Row]:
    if not require_service(cluster_ready(), NO_CLUSTER):
        return [Row(BENCH, "scheduler calls per poll", 0, "calls", met=False, note="skipped: no SLURM cluster")]
    sizes = (10, 100) if quick else (10, 100, 1000)
    rows: list[Row] = []
    with CountingPath() as counter, tempfile.TemporaryDirectory(prefix="cj-bench-poll-") as tmp:
        for count in sizes:
            rows.extend(_measure(count, counter, Path(tmp) / f"p{count}"))
        rows.extend(_left_the_queue(counter, Path(tmp) / "left"))
    return rows
