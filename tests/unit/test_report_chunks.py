"""The report reads the history a chunk at a time (``iter_history``): what it shows is what one
DataFrame of the whole history gives — the table, the summary (retry chains split across chunks
included), the timeline, the run-time chart and the newest failed jobs."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from celline_jobs_nb.analytics import runtime_by_type_svg, timeline_svg
from celline_jobs_nb.core.models import JobInfo, JobStatus, JobType, new_job_id
from celline_jobs_nb.core.resources import Resources
from celline_jobs_nb.export import to_dataframe
from celline_jobs_nb.monitor import JobMonitor
from celline_jobs_nb.report import _summary_table, render_report, unpacked_rows
from celline_jobs_nb.store import JobStore

NOW = datetime(2026, 12, 4, 12, 0, tzinfo=timezone.utc)


def _history(project: Path) -> None:
    """Jobs of three types over two days: completed and failed ones with run times, retry chains
    (six failed first attempts, each retried 30 h later), a running job, resources and signals."""
    store = JobStore(project)
    jobs: list[JobInfo] = []
    start = NOW - timedelta(days=2)
    kinds = [JobType.COUNT, JobType.PREPROCESS, JobType.CUSTOM]
    for i in range(80):
        created = start + timedelta(minutes=30 * i)
        status = JobStatus.FAILED if i % 4 == 0 else JobStatus.COMPLETED
        jobs.append(JobInfo(
            job_id=new_job_id(), name=f"job {i} <b>&", command="run", status=status, job_type=kinds[i % 3],
            created_at=created, submit_time=created, start_time=created + timedelta(seconds=5 + i),
            end_time=created + timedelta(seconds=60 + 17 * i), scheduler="slurm", native_id=str(i),
            exit_code=0 if status is JobStatus.COMPLETED else 1 + i % 3, signal=9 if i % 8 == 0 else None,
            reason=None if status is JobStatus.COMPLETED else ["exit 1", "OOM", None][i % 3],
            resources=Resources(cpus=1 + i % 4, memory=(i % 3) * 2**30 or None, walltime=3600 if i % 2 else None),
            depends_on=[]))
    for i, first in enumerate([j for j in jobs if j.status is JobStatus.FAILED][:6]):
        created = first.created_at + timedelta(hours=30)  # in a later chunk than its first attempt
        jobs.append(JobInfo(
            job_id=new_job_id(), name=first.name, command="run", status=JobStatus.COMPLETED if i % 2 else
            JobStatus.FAILED, job_type=first.job_type, created_at=created, submit_time=created,
            start_time=created, end_time=created + timedelta(seconds=100), scheduler="slurm", native_id=f"r{i}",
            exit_code=0 if i % 2 else 2, attempt=2, retry_of=first.job_id, depends_on=[]))
    hour_ago = NOW - timedelta(hours=1)
    jobs.append(JobInfo(job_id=new_job_id(), name="still going", command="run", status=JobStatus.RUNNING,
                        job_type=JobType.COUNT, created_at=hour_ago, submit_time=hour_ago,
                        start_time=NOW - timedelta(minutes=50), scheduler="slurm", native_id="run", depends_on=[]))
    jobs.sort(key=lambda j: j.created_at)
    store.insert_many(jobs)
    store.close()


def _sections(text: str) -> dict[str, str]:
    block = re.search(r'id="report-data">(.*?)</script>', text, re.S)
    assert block is not None
    out = {"rows": unpacked_rows(block.group(1))}  # type: ignore[dict-item]
    for name in ("summary", "timeline", "runtime", "failed"):
        out[name] = text.split(f'<section id="{name}">', 1)[1].split("</section>", 1)[0]
    return out  # type: ignore[return-value]


@pytest.mark.parametrize("chunk", [1, 7, 40])
def test_a_report_read_in_chunks_shows_what_the_whole_history_shows(project: Path, chunk: int,
                                                                    monkeypatch: pytest.MonkeyPatch):
    _history(project)
    monitor = JobMonitor(project)
    monkeypatch.setattr("celline_jobs_nb.report.FAILED_LIMIT", 5)  # the newest 5 of 23 (two created at once)
    whole = _sections(render_report(monitor, now=NOW, chunk=10**6))
    chunked = _sections(render_report(monitor, now=NOW, chunk=chunk))
    assert chunked == whole

    frame = to_dataframe(monitor, per="attempt")
    assert len(whole["rows"]) == len(frame) == 87
    assert _summary_table(frame) in whole["summary"]  # retries counted once per chain, across chunks
    assert ">Count</td><td>28</td><td>30</td><td>2</td>" in whole["summary"]
    assert timeline_svg(frame, now=NOW) in whole["timeline"]
    assert runtime_by_type_svg(frame) in whole["runtime"]
    assert whole["failed"].count("<article") == 5 and "… and 18 older failed jobs" in whole["failed"]
    running = next(r for r in whole["rows"] if r["status"] == "running")
    assert running["run"] == 3000.0  # so far, at the report's time
    first = whole["rows"][0]
    assert first["res"] == "1 cpu" and first["exit"] == "1 (signal 9)" and first["name"] == "job 0 <b>&"


def test_the_run_time_chart_draws_a_bounded_number_of_dots_from_every_run():
    runs = {"Count": sorted(float(s) for s in range(1, 10_001))}
    svg = runtime_by_type_svg(None, runs=runs, max_dots=400)
    assert svg.count("<circle") == 400 and "(n=10000)" in svg
    everything = runtime_by_type_svg(None, runs=runs)
    assert everything.count("<circle") == 10_000
    # the box and the median come from every run either way
    assert re.findall(r"<rect[^>]*>", svg) == re.findall(r"<rect[^>]*>", everything)
    assert "median 1h 23m" in svg


def test_failed_jobs_section_comes_from_the_digest(project: Path):
    _history(project)
    text = render_report(JobMonitor(project), now=NOW, chunk=3)
    failed = text.split('<section id="failed">', 1)[1]
    assert failed.count("<article") == 23 and "older failed jobs" not in failed.split("</section>")[0]
    assert "job 0 &lt;b&gt;&amp;" in failed and "<b>&" not in failed.split("</section>")[0]


@pytest.mark.parametrize("values", [
    [None] * 5, [1, 1, 1], ["Count"] * 3 + ["Custom"] * 9, ["1m90zqfbp13mc", "1m90zqfbqdtzk", "1m90zqfbr53vx", "x", ""],
    ["ab", "abc", "ab", "a\u00e9\u2028b", "a\u00e9z", "\U0001f600x", "\U0001f600y", "\U0001f600\U0001f601a", "q",
     'a\\"\x00\x1f</script>'],
    [1, None, 2], [True, 1, 1.0], [0, False], [], ["x" * 70_000, "y"],
])
def test_table_columns_come_back_as_they_went_in(values: list[object]):
    from celline_jobs_nb.report_table import decode_column, encode_column

    back = decode_column(encode_column(values))
    assert back == values and [type(v) for v in back] == [type(v) for v in values]


def test_repeated_and_similar_texts_travel_as_a_few_strings():
    from celline_jobs_nb.report_table import encode_column

    assert encode_column(["failed", "completed"] * 50) == {"dict": ["failed", "completed"], "codes": "01" * 50}
    ids = encode_column([f"1m90zqfb{i:05d}" for i in range(100)])
    # each id after the first shares at least 10 of its 13 characters with the one before
    assert set(ids) == {"front", "len", "text"} and min(map(ord, ids["front"][1:])) - 48 >= 10
    assert len(ids["text"]) < 13 + 99 * 3
