"""Many writers, a poller and readers at once: no job lost or duplicated, no 'database is locked'."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path

from celline_jobs_nb import JobMonitor, JobStatus


def test_eight_processes_submit_250_jobs_each_while_a_poller_and_reader_run(project: Path):
    gate = JobMonitor(project, max_parallel=1)
    blocker = gate.submit_job("blocker", "sleep 300")  # holds the only slot: the 2,000 stay pending
    script = textwrap.dedent(f"""
        import sys
        from celline_jobs_nb import JobMonitor
        m = JobMonitor({str(project)!r})
        for i in range(250):
            m.submit_job(f"w{{sys.argv[1]}}-{{i}}", "true")
    """)
    procs = [subprocess.Popen([sys.executable, "-c", script, str(w)], stderr=subprocess.PIPE, text=True)
             for w in range(8)]
    poller = gate.start_polling(interval=0.2)
    reader_errors: list[Exception] = []
    while any(p.poll() is None for p in procs):
        try:
            gate.list_jobs()
            gate.changes_since(0)
        except Exception as exc:  # readers must never see "database is locked"
            reader_errors.append(exc)
        time.sleep(0.02)
    poller.stop()
    for p in procs:
        stderr = p.stderr.read()
        assert p.returncode == 0 and "locked" not in stderr, stderr
    assert reader_errors == [] and poller.last_error is None and poller.ticks > 0
    names = [j.name for j in gate.list_jobs() if j.job_id != blocker]
    assert len(names) == 2000 and len(set(names)) == 2000
    pending = [j.job_id for j in gate.list_jobs("pending")]
    assert len(pending) == 2000
    gate.cancel_jobs([*pending, blocker], wait=10)
    assert gate.store.count([JobStatus.CANCELLED]) == 2001


def test_two_watchers_of_one_project_see_the_same_states(project: Path):
    first, second = JobMonitor(project, max_parallel=4), JobMonitor(project)
    ids = [first.submit_job(f"j{i}", f"sleep 0.{i}; exit {i % 2}") for i in range(6)]
    poll_a, poll_b = first.start_polling(0.2), second.start_polling(0.2)
    try:
        first.wait(ids, timeout=30)
        second.wait(ids, timeout=30)
    finally:
        poll_a.stop()
        poll_b.stop()
    as_first = [(j.job_id, j.status, j.exit_code) for j in first.store.get_many(ids)]
    as_second = [(j.job_id, j.status, j.exit_code) for j in second.store.get_many(ids)]
    assert as_first == as_second
    assert [s for _, s, _ in as_first].count(JobStatus.FAILED) == 3
