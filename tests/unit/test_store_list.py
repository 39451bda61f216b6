"""JobStore.list: filters, order and limit in the query; rows whose JSON and times are decoded on
first use behave as any JobInfo; `celline-jobs list --limit N` shows the newest N."""

from __future__ import annotations

import dataclasses
import json
import pickle
import sqlite3
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from celline_jobs_nb.core.models import JobInfo, JobStatus, JobType, Progress, new_job_id, utcnow
from celline_jobs_nb.store import JobStore
from celline_jobs_nb.store import queries as store_queries


def _job(i: int, status: JobStatus, job_type: JobType = JobType.CUSTOM) -> JobInfo:
    now = utcnow()
    return JobInfo(job_id=new_job_id(), name=f"job{i}", command=f"run {i}", status=status, job_type=job_type,
                   start_time=now - timedelta(minutes=5), end_time=now if status.final else None,
                   progress=Progress(40.0, "Aligning"), depends_on=[],
                   metadata={"usage": {"cpu_seconds": float(i)}, "script": f"/s/{i}.sh"})


def test_listed_jobs_equal_what_get_reads_and_behave_as_jobinfo(project: Path):
    store = JobStore(project)
    jobs = [_job(i, JobStatus.FAILED if i % 3 == 0 else JobStatus.COMPLETED, JobType.COUNT) for i in range(12)]
    store.insert_many(jobs)
    listed = store.list([JobStatus.FAILED], job_types=[JobType.COUNT])
    assert [j.name for j in listed] == [f"job{i}" for i in range(0, 12, 3)]
    for job in listed:
        stored = store.get(job.job_id)
        assert job == stored and stored == job  # whichever side the comparison starts from
        assert job.metadata == {"usage": {"cpu_seconds": float(job.name[3:])}, "script": f"/s/{job.name[3:]}.sh"}
        assert job.progress.percent == 40.0 and job.end_time is not None and job.end_time.tzinfo is not None
    first = listed[0]
    assert repr(first).startswith("JobInfo(job_id=") and first.to_dict() == store.get(first.job_id).to_dict()
    first.metadata["seen"] = True  # a plain dict, kept once read
    assert first.metadata["seen"] is True
    first.metadata = {"other": 1}
    first.end_time = None
    assert (first.metadata, first.end_time) == ({"other": 1}, None)
    moved = dataclasses.replace(listed[1], status=JobStatus.RUNNING)
    assert moved.status is JobStatus.RUNNING and moved.metadata == listed[1].metadata
    assert pickle.loads(pickle.dumps(listed[1])) == listed[1]
    assert store.list([JobStatus.FAILED], job_types=[JobType.COUNT])[0] == store.get(first.job_id)  # not mutated


def test_unreadable_metadata_is_a_problem_of_its_own_job_when_read(project: Path):
    store = JobStore(project)
    good, bad = _job(1, JobStatus.FAILED), _job(2, JobStatus.FAILED)
    store.insert_many([good, bad])
    with sqlite3.connect(store.path) as db:
        db.execute("UPDATE jobs SET metadata = ?, reason = NULL WHERE job_id = ?", ("[1, 2]", bad.job_id))
    listed = {j.job_id: j for j in store.list([JobStatus.FAILED])}
    assert listed[good.job_id].metadata["script"] == "/s/1.sh"
    problem = listed[bad.job_id]
    assert problem.name == "job2" and problem.status is JobStatus.FAILED
    assert "stored metadata unreadable" in " ".join(problem.metadata["problems"])
    assert "stored metadata unreadable" in (problem.reason or "")


def test_newest_n_with_filters_come_from_the_query(project: Path, monkeypatch: pytest.MonkeyPatch):
    store = JobStore(project)
    # Three old failed jobs, then many completed ones: the newest rows hold no failed job, so the
    # first look (among the newest rows) finds too few and the index is asked.
    jobs = [_job(i, JobStatus.FAILED) for i in range(3)] + [_job(i, JobStatus.COMPLETED) for i in range(3, 400)]
    store.insert_many(jobs)
    monkeypatch.setattr(store_queries, "_NEWEST_WINDOW", 50)
    assert [j.name for j in store.list([JobStatus.FAILED], limit=2, newest_first=True)] == ["job2", "job1"]
    assert [j.name for j in store.list([JobStatus.COMPLETED], limit=3, newest_first=True)] == [
        "job399", "job398", "job397"]
    assert [j.name for j in store.list(limit=2)] == ["job0", "job1"]
    assert len(store.list([JobStatus.FAILED, JobStatus.COMPLETED], limit=1000, newest_first=True)) == 400
    assert store.list([JobStatus.RUNNING], limit=5, newest_first=True) == []


def _cli(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "celline_jobs_nb", "--project", str(project), *args],
                          capture_output=True, text=True, timeout=60)


def test_cli_list_limit_shows_the_newest_n_oldest_first(project: Path):
    store = JobStore(project)
    store.insert_many([_job(i, JobStatus.FAILED if i % 2 else JobStatus.COMPLETED,
                            JobType.COUNT if i % 4 == 1 else JobType.CUSTOM) for i in range(30)])
    result = _cli(project, "list", "--limit", "3", "--json")
    assert result.returncode == 0, result.stderr
    assert [j["name"] for j in json.loads(result.stdout)] == ["job27", "job28", "job29"]
    result = _cli(project, "list", "--limit", "2", "--status", "failed", "--type", "Count", "--json")
    assert [j["name"] for j in json.loads(result.stdout)] == ["job25", "job29"]
    result = _cli(project, "list", "--limit", "0")
    assert result.returncode == 2 and "invalid --limit 0" in result.stderr and "Traceback" not in result.stderr


def test_the_status_and_type_filter_is_answered_from_their_index(project: Path):
    store = JobStore(project)
    store.insert_many([_job(i, JobStatus.FAILED if i % 2 else JobStatus.COMPLETED, JobType.COUNT) for i in range(20)])
    seen: list[str] = []
    conn = store._connect()
    conn.set_trace_callback(seen.append)
    try:
        assert len(store.list([JobStatus.FAILED], job_types=[JobType.COUNT])) == 10
    finally:
        conn.set_trace_callback(None)
    query = next(sql for sql in seen if sql.startswith("SELECT") and "job_type IN" in sql)
    plan = " ".join(row[3] for row in conn.execute("EXPLAIN QUERY PLAN " + query))
    assert "USING INDEX jobs_status_type (status=? AND job_type=?)" in plan, plan
    assert "TEMP B-TREE" not in plan  # already in creation order: no sort


def test_columns_a_listing_seldom_shows_are_read_for_the_whole_batch_when_first_asked(project: Path):
    store = JobStore(project)
    jobs = [_job(i, JobStatus.COMPLETED) for i in range(5)]
    jobs[2].depends_on = [jobs[0].job_id]
    store.insert_many(jobs)
    with sqlite3.connect(store.path) as db:  # a value no version writes, in a deferred column
        db.execute("UPDATE jobs SET depends_on = ? WHERE job_id = ?", ('{"not": "a list"}', jobs[4].job_id))
    statements: list[str] = []
    listed = store.list()
    store._connect().set_trace_callback(statements.append)
    try:
        fresh = pickle.loads(pickle.dumps(listed[3]))  # before any deferred column was read
        assert [j.command for j in listed] == [f"run {i}" for i in range(5)]
        assert listed[2].depends_on == [jobs[0].job_id] and listed[1].metadata["script"] == "/s/1.sh"
    finally:
        store._connect().set_trace_callback(None)
    assert len([s for s in statements if "FROM jobs WHERE seq IN" in s]) == 1  # one read for the five jobs
    assert fresh == store.get(jobs[3].job_id) and fresh.command == "run 3"
    bad = listed[4]
    assert bad.depends_on == [] and "stored depends_on unreadable" in " ".join(bad.metadata["problems"])
    for job in listed[:4]:
        assert job == store.get(job.job_id)


def test_a_whole_number_column_holding_text_is_a_problem_of_its_own_listed_job(project: Path):
    store = JobStore(project)
    good, bad = _job(1, JobStatus.FAILED), _job(2, JobStatus.FAILED)
    store.insert_many([good, bad])
    with sqlite3.connect(store.path) as db:
        db.execute("UPDATE jobs SET exit_code = 'abc', reason = NULL WHERE job_id = ?", (bad.job_id,))
    jobs = {j.job_id: j for j in store.list([JobStatus.FAILED])}
    assert jobs[bad.job_id].exit_code is None and "stored exit_code unreadable" in (jobs[bad.job_id].reason or "")
    assert jobs[good.job_id] == store.get(good.job_id)
