"""Soak: 2,000 short local jobs with max_parallel=4 under one monitor. All complete; the monitor's
memory stays flat and no file descriptors leak. The measured figures are printed (-s or -rA)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import psutil

from celline_jobs_nb import JobMonitor, JobStatus

JOBS = 2000


def test_two_thousand_jobs_complete_with_flat_memory_and_no_fd_leak(project: Path):
    monitor = JobMonitor(project, max_parallel=4)
    me = psutil.Process(os.getpid())
    warmup = [monitor.submit_job(f"warm{i}", "true") for i in range(40)]
    monitor.wait(warmup, timeout=120, poll=0.2)
    rss_before, fds_before = me.memory_info().rss, me.num_fds()
    ids = [monitor.submit_job(f"soak{i}", f"echo {i}") for i in range(JOBS)]
    samples = []
    deadline = time.monotonic() + 900
    while monitor.store.count([s for s in JobStatus if s.active]) and time.monotonic() < deadline:
        monitor.refresh()
        samples.append(me.memory_info().rss)
        time.sleep(0.2)
    jobs = monitor.store.get_many(ids)
    assert sum(j.status is JobStatus.COMPLETED for j in jobs) == JOBS
    assert all(monitor.logs(j.job_id) == str(i) for i, j in enumerate(jobs[:50]))
    growth = max(samples) - rss_before
    fds_after = me.num_fds()
    print(f"\nsoak: {JOBS} jobs, monitor RSS {rss_before / 2**20:.1f} MiB -> peak "
          f"{max(samples) / 2**20:.1f} MiB (+{growth / 2**20:.1f} MiB), fds {fds_before} -> {fds_after}")
    assert growth < 30 * 2**20
    assert fds_after <= fds_before + 2
    assert len(psutil.Process().children()) <= 4  # wrappers are reaped: no zombies pile up
