"""10. Scheduler calls per poll on the real Grid Engine cell with 10, 100 and 1,000 tracked jobs.

Ours: ``JobMonitor.refresh()`` makes ONE ``qstat -xml -u <user>`` for every tracked job (+1
``qacct`` for jobs that left qstat without an exit-code file, +1 ``qstat -j`` for jobs newly in
error state). Baseline: the per-job design, one ``qstat -j <id>`` per tracked job or task (what
a monitor that asks about each job does). Calls are counted by a wrapper directory first on PATH
(benchmarks/cluster.py's ``CountingPath`` with Grid Engine's commands), and by ``adapter.calls``.

The tracked jobs cost the 2-slot cell nothing: they are submitted held (``-h``): 10 and 100 single
jobs, and the 1,000 as one held array of 1,000 tasks (tracked as 1,000 task rows). Wall times are
measured in a second pass without the wrapper.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from celline_jobs_nb.core.models import JobInfo, JobStatus, new_job_id, utcnow
from celline_jobs_nb.monitor import JobMonitor

from .bench_polling import _environment
from .cluster import TESTS, CountingPath
from .common import Row, require_service

BENCH = "10. Grid Engine calls per poll"
SGE_COMMANDS = ("qsub", "qstat", "qacct", "qdel", "qrls", "qmod")
HOLD = {"extra": ["-h"]}
POLLS = 3
NO_CELL = "no Grid Engine cell of scripts/start-sge.sh: run `bash scripts/start-sge.sh` (as root)"


def cell_ready() -> bool:
    """The cell scripts/start-sge.sh started and marked (the tests' guard: nothing is submitted to a
    Grid Engine we did not start)."""
    if str(TESTS) not in sys.path:
        sys.path.append(str(TESTS))
    from support import check_test_cell

    return check_test_cell()[0] is not None


def _poll(monitor: JobMonitor) -> float:
    start = time.perf_counter()
    monitor.refresh(force=True)
    elapsed = time.perf_counter() - start
    state = monitor.poll_states().get("sge")
    if state is not None and state.stale:
        raise RuntimeError(f"Grid Engine poll failed: {state.error}")
    return elapsed


def _counted(monitor: JobMonitor, counter: CountingPath, tag: str) -> tuple[float, float]:
    counted, own = [], []
    for _ in range(POLLS):
        before, before_own = len(counter.calls(tag)), monitor.scheduler_calls.get("sge", 0)
        _poll(monitor)
        counted.append(len(counter.calls(tag)) - before)
        own.append(monitor.scheduler_calls.get("sge", 0) - before_own)
    return statistics.median(counted), statistics.median(own)


def _per_job(native_ids: list[str], env: dict[str, str] | None) -> float:
    """The per-job design's poll: one ``qstat -j`` per tracked job or task. Its wall time."""
    start = time.perf_counter()
    for native in native_ids:
        subprocess.run(["qstat", "-j", native.split(".")[0], "-xml"], capture_output=True, env=env, timeout=60)
    return time.perf_counter() - start


def _measure(count: int, counter: CountingPath, project: Path) -> list[Row]:
    project.mkdir(parents=True)
    name = f"cj-bench-sge-{os.getpid()}-{count}"  # one name for all: `qdel <name>` cleans up whatever happens
    tag = f"sge-{count}"
    os.environ["CELLINE_JOBS_SGE_MIN_POLL_INTERVAL"] = "1"
    try:
        with _environment(counter.env(tag)):
            monitor = JobMonitor(project)
            if count >= 1000:
                monitor.submit_job(name, "true", HOLD, scheduler="sge", array=f"1-{count}")
            else:
                for _ in range(count):
                    monitor.submit_job(name, "true", HOLD, scheduler="sge")
            _poll(monitor)  # the first poll turns array tasks into rows
            native_ids = [j.native_id for j in monitor.store.active("sge") if j.native_id
                          and not j.metadata.get("array")]
            ours_calls, own_calls = _counted(monitor, counter, tag)
        per_tag = f"sge-per-job-{count}"
        _per_job(native_ids, counter.env(per_tag))
        per_job_calls = len(counter.calls(per_tag))
        ours_wall = statistics.median(_poll(monitor) for _ in range(POLLS))
        per_job_wall = _per_job(native_ids, None)
    finally:
        subprocess.run(["qdel", name], capture_output=True, timeout=120)
    how = "one held array of 1,000 tasks" if count >= 1000 else f"{count} held jobs"
    tracked = len(native_ids)
    return [
        Row(BENCH, f"scheduler calls per poll, {tracked:,} tracked jobs ({how})", ours_calls, "calls",
            per_job_calls, "per-job `qstat -j`", target="1", met=ours_calls == 1 and tracked == count,
            note=f"counted by the PATH wrapper; adapter.calls says {own_calls:g}"),
        Row(BENCH, f"poll wall time, {tracked:,} tracked jobs", ours_wall * 1000, "ms", per_job_wall * 1000,
            "per-job `qstat -j`", note="whole monitor.refresh() incl. the store"),
    ]


def _left_the_queue(counter: CountingPath, project: Path) -> list[Row]:
    """One tracked job qstat no longer lists, with no exit-code file: qstat + one qacct, then qstat
    alone until 10 s have passed (until qacct has its record or the job is given up as unknown)."""
    project.mkdir(parents=True)
    tag = "sge-left"
    with _environment(counter.env(tag)):
        monitor = JobMonitor(project)
        monitor.store.insert(JobInfo(job_id=new_job_id(), name="cj-bench-gone", command="true", scheduler="sge",
                                     status=JobStatus.RUNNING, native_id="987654321",
                                     submit_time=utcnow() - timedelta(minutes=1)))
        counts = []
        for _ in range(2):
            before = len(counter.calls(tag))
            _poll(monitor)
            counts.append(len(counter.calls(tag)) - before)
    commands = sorted({c.command for c in counter.calls(tag)})
    return [Row(BENCH, "calls per poll with one tracked job that left qstat without an exit-code file",
                counts[0], "calls", target="2", met=counts[0] == 2 and counts[1] == 1,
                note=f"polls: {', '.join(map(str, counts))} (qacct again only after 10 s); "
                     f"commands: {', '.join(commands)}")]


def run(quick: bool) -> list[Row]:
    if not require_service(cell_ready(), NO_CELL):
        return [Row(BENCH, "scheduler calls per poll", 0, "calls", met=False, note="skipped: no Grid Engine cell")]
    sizes = (10, 100) if quick else (10, 100, 1000)
    rows: list[Row] = []
    saved = os.environ.get("CELLINE_JOBS_SGE_MIN_POLL_INTERVAL")
    try:
        with CountingPath(SGE_COMMANDS) as counter, tempfile.TemporaryDirectory(prefix="cj-bench-sge-") as tmp:
            for count in sizes:
                rows.extend(_measure(count, counter, Path(tmp) / f"p{count}"))
            rows.extend(_left_the_queue(counter, Path(tmp) / "left"))
    finally:
        if saved is None:
            os.environ.pop("CELLINE_JOBS_SGE_MIN_POLL_INTERVAL", None)
        else:
            os.environ["CELLINE_JOBS_SGE_MIN_POLL_INTERVAL"] = saved
    return rows
