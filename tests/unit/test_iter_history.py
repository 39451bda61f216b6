"""``JobMonitor.iter_history``: the history in DataFrames of about ``chunk`` attempts each; together
they are exactly what one ``history(per="attempt")`` call returns."""

from __future__ import annotations

from datetime import timedelta

import pandas as pd
import pytest

from celline_jobs_nb.core.errors import InvalidInputError
from celline_jobs_nb.core.models import JobInfo, JobStatus, JobType, utcnow
from celline_jobs_nb.monitor import JobMonitor


def _jobs(n: int, *, same_instant: bool = False, offset: int = 0) -> list[JobInfo]:
    base = utcnow() - timedelta(days=2)
    return [JobInfo(job_id=f"j{offset + i:05d}", name=f"job {offset + i}", command="true",
                    status=JobStatus.FAILED if i % 4 == 0 else JobStatus.COMPLETED,
                    job_type=JobType.COUNT if i % 2 else JobType.CUSTOM, scheduler="slurm",
                    created_at=base if same_instant else base + timedelta(seconds=offset + i),
                    end_time=base + timedelta(hours=1)) for i in range(n)]


def test_chunks_together_are_the_whole_history_in_order(monitor: JobMonitor):
    monitor.store.insert_many(_jobs(250))
    chunks = list(monitor.iter_history(chunk=100))
    assert [len(c) for c in chunks] == [100, 100, 50]
    whole = monitor.history(per="attempt")
    pd.testing.assert_frame_equal(pd.concat(chunks, ignore_index=True), whole.reset_index(drop=True))
    failed_count = list(monitor.iter_history(chunk=40, status="failed", job_type="Count"))
    assert sum(len(c) for c in failed_count) == len(monitor.history(per="attempt", status="failed", job_type="Count"))
    since = monitor.store.get("j00200").created_at
    assert sum(len(c) for c in monitor.iter_history(chunk=30, since=since)) == 50


def test_jobs_created_at_one_instant_stay_in_one_chunk(monitor: JobMonitor):
    monitor.store.insert_many(_jobs(120, same_instant=True) + _jobs(10, offset=500))
    sizes = [len(c) for c in monitor.iter_history(chunk=50)]
    assert sum(sizes) == 130 and 120 in sizes


def test_bad_chunk_or_per_is_a_one_line_error(monitor: JobMonitor):
    with pytest.raises(InvalidInputError, match="chunk=0"):
        next(monitor.iter_history(chunk=0))
    with pytest.raises(InvalidInputError, match="per='attempt' or per='job'"):
        next(monitor.iter_history(per="event"))


def test_chunks_per_job_hold_each_chain_once_with_its_latest_attempt(monitor: JobMonitor):
    jobs = _jobs(150)
    base = jobs[0].created_at
    # retries of early jobs created much later (in the last chunk's run and after it), and a chain
    # of three attempts across chunks
    retries = [JobInfo(job_id=f"r{i:05d}", name=f"job {i}", command="true", status=JobStatus.COMPLETED,
                       scheduler="slurm", attempt=2, retry_of=f"j{i:05d}", created_at=base + timedelta(seconds=140 + i))
               for i in (0, 4, 8)]
    third = JobInfo(job_id="r90000", name="job 0", command="true", status=JobStatus.FAILED, scheduler="slurm",
                    attempt=3, retry_of="r00000", created_at=base + timedelta(seconds=900))
    monitor.store.insert_many(jobs + retries + [third])
    whole = monitor.history(per="job")
    assert len(whole) == 150
    chunks = list(monitor.iter_history(chunk=40, per="job"))
    assert len(chunks) >= 4
    together = pd.concat(chunks, ignore_index=True)
    pd.testing.assert_frame_equal(together.sort_values("root_id", ignore_index=True),
                                  whole.sort_values("root_id", ignore_index=True))
    first = together.set_index("root_id").loc["j00000"]
    assert first["job_id"] == "r90000" and first["attempts"] == 3 and first["status"] == "failed"
    failed = list(monitor.iter_history(chunk=40, per="job", status="failed"))
    assert sum(len(c) for c in failed) == len(monitor.history(per="job", status="failed"))


def test_a_long_history_is_read_in_chunks_and_is_the_same_frame(monitor: JobMonitor, monkeypatch: pytest.MonkeyPatch):
    from celline_jobs_nb import export

    jobs = _jobs(130)
    retry = JobInfo(job_id="r00003", name="job 3", command="true", status=JobStatus.COMPLETED, scheduler="slurm",
                    attempt=2, retry_of="j00003", created_at=jobs[-1].created_at + timedelta(seconds=5))
    monitor.store.insert_many([*jobs, retry])
    whole = {per: monitor.history(per=per) for per in ("job", "attempt")}
    failed = monitor.history(per="job", status="failed", job_type="Count")
    # the size above which a history is read a chunk at a time, made small
    monkeypatch.setattr(export, "CHUNKED_ABOVE", 50)
    monkeypatch.setattr(export, "CHUNK", 30)
    for per, frame in whole.items():
        pd.testing.assert_frame_equal(monitor.history(per=per), frame)
    pd.testing.assert_frame_equal(monitor.history(per="job", status="failed", job_type="Count"), failed)
    assert whole["job"].set_index("root_id").loc["j00003", "attempts"] == 2
