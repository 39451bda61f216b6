"""3. In-kernel refresh of the dashboard with 10,000 jobs, 1% of them changed per tick.

The real ``JobTable`` widget, without a kernel: its comm's ``send`` is replaced by one that packs
each message as ipykernel does (``jupyter_client.session.json_packer``) and counts the bytes, so the
CPU time of a tick (``refresh_view()``: read what changed from the store, re-read the windows the
changes touch, build the changed rows, pack the message) and what would reach the browser are both
measured. Two views are open: the default one (the newest 100 rows) and one on the status chip of
the changing jobs (100 rows), so every changed row is in a view. Baseline: the naive design that
re-sends the whole table every tick (all rows built from the store and packed).

Two kinds of change, both 1% per tick:
- the same running jobs change every tick (progress, CPU, memory): a dashboard's steady state;
- a different 1% each tick (queued jobs of a big array start running): the chips' counts and the
  windows' order change every tick.
"""

from __future__ import annotations

import json
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from celline_jobs_nb.core.models import JobInfo, JobStatus, JobType, new_job_id, utcnow
from celline_jobs_nb.core.resources import Resources
from celline_jobs_nb.monitor import JobMonitor
from celline_jobs_nb.store.sqlite import JobUpdate

from .common import Row

BENCH = "3. refresh"
STEADY, MOVING = "the same running jobs", "a different 1% each tick"


def _packer() -> Callable[[Any], bytes]:
    """How ipykernel serialises a comm message (its fallback here: the same json.dumps options)."""
    try:
        from jupyter_client.session import json_packer

        return json_packer
    except ImportError:
        return lambda obj: json.dumps(obj, ensure_ascii=False, allow_nan=False).encode("utf8")


def _jobs(total: int) -> tuple[list[JobInfo], list[str], list[str]]:
    """A project of ``total`` jobs: 1% running (with usage and progress), 36% queued (a big array
    waiting), the rest finished. Returns (jobs, running ids, queued ids)."""
    now = utcnow()
    resources = [Resources.parse(r) for r in ("cpus=4,mem=32G,time=4:00:00", "cpus=1,mem=4G", "cpus=8,mem=64G")]
    jobs, running, queued = [], [], []
    for i in range(total):
        if i % 100 == 0:
            status = JobStatus.RUNNING
        elif i % 100 < 37:
            status = JobStatus.QUEUED
        else:
            status = JobStatus.FAILED if i % 50 == 1 else JobStatus.COMPLETED
        final, started = status.final, status is not JobStatus.QUEUED
        code = (1 if status is JobStatus.FAILED else 0) if final else None
        job = JobInfo(job_id=new_job_id(), name=f"Count SRR{2584863 + i}", command=f"bash scripts/count.sh {i}",
                      status=status, scheduler="slurm", native_id=str(10_000 + i), job_type=list(JobType)[i % 6],
                      resources=resources[i % 3], submit_time=now, start_time=now if started else None,
                      end_time=now if final else None, exit_code=code,
                      reason="exit code 1" if status is JobStatus.FAILED else None,
                      progress={"percent": 100.0 if final else 0.0, "stage": "done" if final else "Aligning"},
                      metadata={"usage": _usage(i, 0)} if started else {})
        jobs.append(job)
        (running if status is JobStatus.RUNNING else queued if status is JobStatus.QUEUED else []).append(job.job_id)
    return jobs, running, queued


def _usage(i: int, tick: int) -> dict[str, Any]:
    return {"cpu_seconds": 100.0 * (tick + 1), "elapsed_seconds": 60.0 * (tick + 1),
            "cpu_percent": 50 + (i + tick) % 50, "rss_bytes": (1 + (i + tick) % 7) * 2**30,
            "max_rss_bytes": 8 * 2**30, "alloc_cpus": 4, "req_mem_bytes": 32 * 2**30}


class _Capture:
    """Stands in for the comm's ``send``: packs each message as the kernel would and counts bytes."""

    def __init__(self, widget: Any) -> None:
        self.pack = _packer()
        self.bytes = 0
        self.messages = 0
        widget.comm.send = self.send

    def send(self, data: Any = None, metadata: Any = None, buffers: Any = None) -> None:
        self.bytes += len(self.pack({"data": data, "metadata": metadata or {}}))
        self.messages += 1


def _ticks(monitor: JobMonitor, table: Any, capture: _Capture, changes: Callable[[int], list[JobUpdate]],
           ticks: int) -> tuple[list[float], list[int], int]:
    """Per tick: apply the tick's changes to the store (not timed), then one ``refresh_view()``.
    Also returns how many rows the ticks carried to the views."""
    cpu, sent = [], []
    carried = 0
    for tick in range(ticks):
        monitor.store.apply(changes(tick))
        before = capture.bytes
        start = time.thread_time()
        table.refresh_view()
        cpu.append(time.thread_time() - start)
        sent.append(capture.bytes - before)
        carried += sum(len(d.get("rows", [])) for d in table.last_tick.get("views", {}).values())
    return cpu, sent, carried


def run(quick: bool) -> list[Row]:
    from celline_jobs_nb.widgets.table import JobTable

    total, ticks = (2_000, 10) if quick else (10_000, 30)
    changed = total // 100
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="cj-bench-refresh-") as tmp:
        monitor = JobMonitor(Path(tmp))
        jobs, running, queued = _jobs(total)
        monitor.store.insert_many(jobs)
        pack = _packer()
        # The naive design: every tick, every row built from the store and sent.
        naive_cpu = []
        for _ in range(3):
            start = time.thread_time()
            everything = [_row(job) for job in monitor.store.list()]
            full = len(pack({"data": {"method": "update", "state": {"rows": everything}, "buffer_paths": []},
                             "metadata": {}}))
            naive_cpu.append(time.thread_time() - start)
        naive = statistics.median(naive_cpu)

        def steady(tick: int) -> list[JobUpdate]:
            return [JobUpdate(job_id, None, {"progress": {"percent": float(tick + 1), "stage": "Aligning"},
                                             "metadata": {"usage": _usage(i, tick + 1)}}, "poll")
                    for i, job_id in enumerate(running)]

        def moving(tick: int) -> list[JobUpdate]:
            start = utcnow()
            return [JobUpdate(job_id, JobStatus.RUNNING, {"start_time": start}, "poll")
                    for job_id in queued[tick * changed:(tick + 1) * changed]]

        for label, changes, chip in ((STEADY, steady, "running"), (MOVING, moving, "running")):
            table = JobTable(monitor, poll=False, disk_interval=None)
            table.open_window("newest", {"req": 1, "query": {}, "offset": 0, "limit": 100})
            table.open_window("chip", {"req": 1, "query": {"statuses": [chip]}, "offset": 0, "limit": 100})
            capture = _Capture(table)
            cpu, sent, carried = _ticks(monitor, table, capture, changes, ticks)
            table.close()
            tick_ms = statistics.median(cpu) * 1000
            mean_bytes = statistics.mean(sent)
            rows.append(Row(BENCH, f"CPU per tick, {total:,} jobs, 1% changed ({label})", tick_ms, "ms",
                            naive * 1000, "re-send the whole table", target="< 20 ms", met=tick_ms < 20,
                            note=f"median of {ticks} ticks; max {max(cpu) * 1000:.1f} ms"))
            rows.append(Row(BENCH, f"bytes to the front end per tick ({label})", mean_bytes, "B", full,
                            "re-send the whole table", target="<= 5% of the table",
                            met=mean_bytes <= 0.05 * full,
                            note=f"mean of {ticks} ticks, {capture.messages} messages, {carried / ticks:.0f} rows a "
                                 f"tick to two views of 100 rows; largest tick {max(sent):,} B"))
    return rows


def _row(job: JobInfo) -> dict[str, Any]:
    from celline_jobs_nb.widgets._format import job_row

    return job_row(job)
