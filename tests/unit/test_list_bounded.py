"""`celline-jobs list` is bounded by default (active jobs, then the last 50 ended or the last 24 h,
whichever is more) with a footer saying what it left out; every filter combination it can run is
answered through an index (EXPLAIN QUERY PLAN)."""

from __future__ import annotations

import itertools
import json
import re
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

from celline_jobs_nb.core.models import JobInfo, JobStatus, JobType, new_job_id, utcnow
from celline_jobs_nb.listing import bounded_jobs
from celline_jobs_nb.store import JobStore


def _job(i: int, status: JobStatus, age: timedelta, job_type: JobType = JobType.CUSTOM) -> JobInfo:
    created = utcnow() - age
    return JobInfo(job_id=new_job_id(), name=f"job{i}", command=f"run {i}", status=status, job_type=job_type,
                   created_at=created, submit_time=created, scheduler="slurm", native_id=None,
                   end_time=created if status.final else None, depends_on=[])


def _cli(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "celline_jobs_nb", "--project", str(project), *args],
                          capture_output=True, text=True, timeout=60)


def _names(text: str) -> set[str]:
    return set(re.findall(r"\bjob\d+\b", text))


def test_default_list_shows_active_jobs_and_the_last_50_ended_with_a_footer(project: Path):
    store = JobStore(project)
    old = [_job(i, JobStatus.FAILED if i % 3 == 0 else JobStatus.COMPLETED, timedelta(days=3, minutes=-i),
                JobType.COUNT if i % 2 else JobType.CUSTOM) for i in range(200)]
    held = [_job(1000 + i, JobStatus.HELD, timedelta(days=30)) for i in range(3)]
    store.insert_many(held + old)

    result = _cli(project, "list")
    assert result.returncode == 0, result.stderr
    shown = _names(result.stdout)
    # the three held jobs (a month old), then the 50 newest ended ones
    assert shown == {"job1000", "job1001", "job1002"} | {f"job{i}" for i in range(150, 200)}
    assert "150 older ended jobs not shown" in result.stdout and "--all" in result.stdout

    everything = _cli(project, "list", "--all", "--json")
    assert len(json.loads(everything.stdout)) == 203 and "not shown" not in everything.stderr

    bounded = _cli(project, "list", "--json")
    assert len(json.loads(bounded.stdout)) == 53 and "150 older ended jobs not shown" in bounded.stderr

    failed_count = _cli(project, "list", "--status", "failed", "--type", "Count", "--json")
    rows = json.loads(failed_count.stdout)
    assert rows and all(r["status"] == "failed" and r["job_type"] == "Count" for r in rows)
    assert len(rows) == 33 and "not shown" not in failed_count.stderr  # all 33 fit in the last 50

    assert _cli(project, "list", "--since", "4d", "--json").stdout.count('"job_id"') == 200


def test_the_last_24_hours_are_shown_whole_when_they_hold_more_than_50(project: Path):
    store = JobStore(project)
    store.insert_many([_job(i, JobStatus.COMPLETED, timedelta(hours=30)) for i in range(10)]
                      + [_job(100 + i, JobStatus.COMPLETED, timedelta(hours=20, minutes=-i)) for i in range(80)])
    jobs, hidden = bounded_jobs(store)
    assert {j.name for j in jobs} == {f"job{100 + i}" for i in range(80)} and hidden == 10
    assert [j.name for j in jobs] == [f"job{100 + i}" for i in range(80)]  # oldest first
    capped, hidden = bounded_jobs(store, most=60)  # a busy day: at most `most` of them
    assert [j.name for j in capped] == [f"job{100 + i}" for i in range(20, 80)] and hidden == 30


def test_every_filter_combination_of_the_listing_reads_through_an_index(project: Path):
    store = JobStore(project)
    store.insert_many([_job(i, JobStatus.COMPLETED, timedelta(days=i % 5)) for i in range(50)])
    parent = store.list()[0].job_id
    conn = store._connect()
    statements: list[str] = []
    conn.set_trace_callback(statements.append)
    try:
        choices = [[None, [JobStatus.FAILED], [JobStatus.RUNNING, JobStatus.QUEUED]],
                   [None, [JobType.COUNT]], [None, "slurm"], [None, parent]]
        for statuses, types, scheduler, array_parent in itertools.product(*choices):
            common = {"job_types": types, "scheduler": scheduler, "array_parent": array_parent}
            bounded_jobs(store, statuses, **common)
            store.list(statuses, **common, limit=20, newest_first=True)
            store.list(statuses, **common, since=utcnow() - timedelta(days=2))
            list(store.iter_list(statuses, **common, since=utcnow() - timedelta(days=2)))
            if statuses or types or scheduler or array_parent:
                list(store.iter_list(statuses, **common))
            if array_parent is None:  # the history's bulk reads: a window, and a window with later retries
                since, until = utcnow() - timedelta(days=3), utcnow() - timedelta(days=1)
                store.select("job_id", statuses, job_types=types, scheduler=scheduler, since=since, until=until)
                store.select("job_id", statuses, job_types=types, scheduler=scheduler, since=since, until=until,
                             retries_after=until)
    finally:
        conn.set_trace_callback(None)
    reads = [s for s in statements if s.lstrip().upper().startswith("SELECT") and "FROM jobs" in s]
    assert len(reads) > 150
    for sql in reads:
        plan = " | ".join(str(row[3]) for row in conn.execute("EXPLAIN QUERY PLAN " + sql))
        if "COUNT(*)" in sql and " WHERE " not in sql:
            assert "COVERING INDEX" in plan, (sql, plan)  # counting every job reads the smallest index
            continue
        if " WHERE " not in sql and re.search(r"ORDER BY seq DESC LIMIT \d+$", sql.strip()):
            continue  # the newest N of all jobs: N rows read backwards by rowid
        scans = [step for step in plan.split(" | ") if step.startswith("SCAN jobs")
                 and "INDEX" not in step]
        assert not scans, (sql, plan)


def test_list_all_json_streams_rows_and_filters_array_tasks(project: Path):
    store = JobStore(project)
    parent = _job(0, JobStatus.COMPLETED, timedelta(days=2))
    tasks = [_job(10 + i, JobStatus.FAILED if i % 2 else JobStatus.COMPLETED, timedelta(days=2)) for i in range(6)]
    for i, task in enumerate(tasks):
        task.array_parent, task.array_index = parent.job_id, i
    others = [_job(100 + i, JobStatus.FAILED, timedelta(days=1)) for i in range(3005)]
    store.insert_many([parent, *tasks, *others])

    # the rows of `list --all --json` come from the store in batches, oldest first
    streamed = store.iter_list(batch=1000)
    assert next(streamed).name == "job0"
    assert sum(1 for _ in streamed) == 3011
    result = _cli(project, "list", "--all", "--json")
    rows = json.loads(result.stdout)
    assert len(rows) == 3012 and rows[0]["name"] == "job0" and rows[-1]["name"] == "job3104"

    only = json.loads(_cli(project, "list", "--all", "--json", "--array-parent", parent.job_id[:9]).stdout)
    assert [r["array_index"] for r in only] == [0, 1, 2, 3, 4, 5]
    failed = json.loads(_cli(project, "list", "--status", "failed", "--array-parent", parent.job_id, "--json").stdout)
    assert [r["array_index"] for r in failed] == [1, 3, 5]
    text = _cli(project, "list", "--array-parent", parent.job_id)
    assert _names(text.stdout) == {f"job{10 + i}" for i in range(6)}
    missing = _cli(project, "list", "--array-parent", "nosuchjob")
    assert missing.returncode == 2 and "no job" in missing.stderr and "Traceback" not in missing.stderr


def test_watch_follows_active_jobs_not_the_whole_history(project: Path):
    store = JobStore(project)
    store.insert_many([_job(i, JobStatus.COMPLETED, timedelta(days=3, minutes=-i)) for i in range(200)])
    result = _cli(project, "watch", "--interval", "0.05")
    assert result.returncode == 0, result.stderr
    # nothing active: what `list` shows by default (the 50 newest), not the 200 of the history
    assert _names(result.stdout) == {f"job{i}" for i in range(150, 200)}


def test_the_plain_text_summary_reads_the_recent_jobs_and_counts_them_all(project: Path):
    from celline_jobs_nb import celline as interop
    from celline_jobs_nb.monitor import JobMonitor

    JobStore(project).insert_many([_job(i, JobStatus.FAILED if i % 4 == 0 else JobStatus.COMPLETED,
                                        timedelta(days=3, minutes=-i)) for i in range(300)])
    job = interop.Job.__new__(interop.Job)
    job.__dict__["discover"] = False
    text = job.summary(JobMonitor(project))
    assert "50 newest jobs of 300 (225 completed, 75 failed)" in text.splitlines()[0]
    assert "job299" in text and "job0 " not in text and "… and 280 more" in text
