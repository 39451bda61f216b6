"""The history as DataFrames: typed columns, retry chains, filters, events, CSV and Parquet files."""

from __future__ import annotations

import csv
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pandas as pd
import pytest

from celline_jobs_nb.cli import main
from celline_jobs_nb.core.errors import InvalidInputError
from celline_jobs_nb.core.models import JobInfo, JobStatus, JobType, new_job_id
from celline_jobs_nb.core.resources import Resources
from celline_jobs_nb.export import MissingDependencyError, to_dataframe, write_csv, write_parquet
from celline_jobs_nb.store import JobStore

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=timezone.utc)
G = 1024**3


def add(store: JobStore, name: str, status: JobStatus, *, at: float = 0, wait: float | None = 60,
        run: float | None = 600, **kw) -> JobInfo:
    """A job submitted ``at`` minutes after T0 that waited ``wait`` s and ran ``run`` s (None: not yet)."""
    submit = T0 + timedelta(minutes=at)
    start = None if wait is None else submit + timedelta(seconds=wait)
    end = None if start is None or run is None else start + timedelta(seconds=run)
    job = JobInfo(job_id=kw.pop("job_id", new_job_id()), name=name, status=status, command="true",
                  created_at=submit, submit_time=submit, start_time=start, end_time=end, **kw)
    return store.insert(job)


@pytest.fixture
def store(project: Path) -> JobStore:
    return JobStore(project)


def test_one_typed_row_per_job(store: JobStore):
    done = add(store, "Count S1", JobStatus.COMPLETED, job_type=JobType.COUNT, exit_code=0,
               resources=Resources.parse("cpus=4,mem=32G,time=1:30:00,partition=long"))
    running = add(store, "Integrate", JobStatus.RUNNING, at=5, run=None, job_type=JobType.INTEGRATION)
    frame = to_dataframe(store)

    assert list(frame["job_id"]) == [done.job_id, running.job_id]
    assert isinstance(frame["status"].dtype, pd.CategoricalDtype)
    assert list(frame["status"].cat.categories) == [s.value for s in JobStatus]
    assert list(frame["job_type"].cat.categories) == [t.value for t in JobType]
    assert list(frame["status"]) == ["completed", "running"]
    assert list(frame["job_type"]) == ["Count", "Integration"]
    for column in ("created_at", "submit_time", "start_time", "end_time", "updated_at"):
        assert frame[column].dtype == "datetime64[ns, UTC]", column
    for column in ("queue_wait", "run_time", "walltime", "cpu_time"):
        assert frame[column].dtype == "timedelta64[ns]", column
    for column in ("exit_code", "cpus", "mem_bytes", "attempt", "attempts"):
        assert frame[column].dtype == "Int64", column
    first = frame.iloc[0]
    assert first["submit_time"] == pd.Timestamp(T0)
    assert first["queue_wait"] == pd.Timedelta(seconds=60)
    assert first["run_time"] == pd.Timedelta(minutes=10)
    assert (first["cpus"], first["mem_bytes"], first["partition"]) == (4, 32 * G, "long")
    assert first["walltime"] == pd.Timedelta(hours=1, minutes=30)
    assert first["exit_code"] == 0
    second = frame.iloc[1]
    assert pd.isna(second["exit_code"]) and pd.isna(second["run_time"]) and pd.isna(second["end_time"])
    assert pd.isna(second["cpus"]) and pd.isna(second["walltime"])


def test_efficiency_from_measured_usage(store: JobStore):
    usage = {"cpu_seconds": 3600, "elapsed_seconds": 1800, "alloc_cpus": 4, "max_rss_bytes": 8 * G,
             "req_mem_bytes": 32 * G}
    add(store, "measured", JobStatus.COMPLETED, metadata={"usage": usage})
    # no elapsed/alloc/requested memory measured: the run time and the request stand in
    add(store, "partly", JobStatus.COMPLETED, run=100, resources=Resources.parse("cpus=2,mem=4G"),
        metadata={"usage": {"cpu_seconds": 150.0, "max_rss_bytes": 3 * G}})
    add(store, "unmeasured", JobStatus.COMPLETED, resources=Resources.parse("cpus=2,mem=4G"))
    add(store, "garbage", JobStatus.COMPLETED, metadata={"usage": {"cpu_seconds": "lots", "max_rss_bytes": True}})
    frame = to_dataframe(store).set_index("name")

    assert frame.loc["measured", "cpu_efficiency"] == pytest.approx(0.5)
    assert frame.loc["measured", "mem_efficiency"] == pytest.approx(0.25)
    assert frame.loc["measured", "max_rss_bytes"] == 8 * G
    assert frame.loc["measured", "cpu_time"] == pd.Timedelta(hours=1)
    assert frame.loc["partly", "cpu_efficiency"] == pytest.approx(0.75)
    assert frame.loc["partly", "mem_efficiency"] == pytest.approx(0.75)
    for name in ("unmeasured", "garbage"):
        assert pd.isna(frame.loc[name, "cpu_efficiency"]) and pd.isna(frame.loc[name, "mem_efficiency"])
        assert pd.isna(frame.loc[name, "max_rss_bytes"]) and pd.isna(frame.loc[name, "cpu_time"])
    assert frame["cpu_efficiency"].dtype == "Float64"


def test_a_retry_chain_is_one_job_and_several_attempts(store: JobStore):
    first = add(store, "Predict", JobStatus.FAILED, exit_code=3, reason="exit code 3")
    second = add(store, "Predict", JobStatus.FAILED, at=20, exit_code=3, reason="exit code 3", attempt=2,
                 retry_of=first.job_id)
    third = add(store, "Predict", JobStatus.COMPLETED, at=40, exit_code=0, attempt=3, retry_of=second.job_id)
    other = add(store, "Count", JobStatus.COMPLETED, at=1)

    jobs = to_dataframe(store)
    assert list(jobs["job_id"]) == [third.job_id, other.job_id]
    assert list(jobs["attempts"]) == [3, 1]
    assert list(jobs["root_id"]) == [first.job_id, other.job_id]
    assert list(jobs["status"]) == ["completed", "completed"]
    assert to_dataframe(store, status="failed").empty  # the work eventually succeeded

    attempts = to_dataframe(store, per="attempt")
    assert list(attempts["job_id"]) == [first.job_id, second.job_id, third.job_id, other.job_id]
    assert list(attempts["root_id"]) == [first.job_id] * 3 + [other.job_id]
    assert list(to_dataframe(store, per="attempt", status="failed")["job_id"]) == [first.job_id, second.job_id]
    # a window holding only the retries still names the chain's first attempt
    late = to_dataframe(store, per="attempt", since=T0 + timedelta(minutes=30))
    assert list(late["root_id"]) == [first.job_id]
    # per job the window applies to the first attempt: the chain started before it
    assert list(to_dataframe(store, since=T0 + timedelta(minutes=30))["job_id"]) == []


def test_filters(store: JobStore):
    count = add(store, "count", JobStatus.COMPLETED, job_type=JobType.COUNT)
    prep = add(store, "prep", JobStatus.FAILED, at=60, job_type=JobType.PREPROCESS)
    slurm = add(store, "slurm", JobStatus.COMPLETED, at=120, job_type=JobType.COUNT, scheduler="slurm")

    def ids(**filters) -> list[str]:
        return list(to_dataframe(store, **filters)["job_id"])

    assert ids(job_type="count") == [count.job_id, slurm.job_id]
    assert ids(job_type=["Count", JobType.PREPROCESS]) == [count.job_id, prep.job_id, slurm.job_id]
    assert ids(status=JobStatus.FAILED) == [prep.job_id]
    assert ids(status=["failed", "completed"], scheduler="local") == [count.job_id, prep.job_id]
    assert ids(since=T0 + timedelta(minutes=30), until=T0 + timedelta(minutes=90)) == [prep.job_id]
    assert ids(since="2026-11-02T10:00:00+00:00") == [prep.job_id, slurm.job_id]
    assert ids(until="2026-11-02 10:00") == [count.job_id]  # naive text means UTC
    with pytest.raises(InvalidInputError, match="unknown status 'done'"):
        to_dataframe(store, status="done")
    with pytest.raises(InvalidInputError, match="invalid since='yesterday'"):
        to_dataframe(store, since="yesterday")
    with pytest.raises(InvalidInputError, match="invalid per='run': use one of job, attempt, event"):
        to_dataframe(store, per="run")  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="expected a JobMonitor or a JobStore, got str"):
        to_dataframe("project")  # type: ignore[arg-type]


def test_one_row_per_status_change(store: JobStore):
    job = add(store, "Count", JobStatus.PENDING, wait=None, job_type=JobType.COUNT)
    add(store, "other", JobStatus.PENDING, wait=None, job_type=JobType.CUSTOM)
    store.update(job.job_id, JobStatus.QUEUED, source="dispatch")
    store.update(job.job_id, JobStatus.RUNNING, source="poll")
    store.update(job.job_id, JobStatus.FAILED, source="poll", reason="exit code 3")
    events = store.events(job.job_id)

    frame = to_dataframe(store, per="event", job_type="Count")
    assert list(frame["to_status"]) == ["pending", "queued", "running", "failed"]
    assert [None if pd.isna(s) else s for s in frame["from_status"]] == [None, "pending", "queued", "running"]
    assert isinstance(frame["to_status"].dtype, pd.CategoricalDtype)
    assert frame["time"].dtype == "datetime64[ns, UTC]"
    assert list(frame["source"]) == ["submit", "dispatch", "poll", "poll"]
    assert frame["reason"].iloc[-1] == "exit code 3"
    assert (frame["name"] == "Count").all() and (frame["job_type"] == "Count").all()
    # time_in_previous: how long the job sat in from_status, even for the first event in a window
    windowed = to_dataframe(store, per="event", job_type="Count", since=events[2].time)
    assert list(windowed["to_status"]) == ["running", "failed"]
    assert windowed["time_in_previous"].iloc[0] == pd.Timestamp(events[2].time) - pd.Timestamp(events[1].time)
    assert frame["time_in_previous"].dtype == "timedelta64[ns]" and pd.isna(frame["time_in_previous"].iloc[0])
    # status filters select jobs by their current status
    assert set(to_dataframe(store, per="event", status="pending")["name"]) == {"other"}


def test_an_empty_project_gives_typed_empty_frames(store: JobStore):
    for per in ("job", "attempt", "event"):
        frame = to_dataframe(store, per=per)
        assert frame.empty, per
    assert to_dataframe(store)["start_time"].dtype == "datetime64[ns, UTC]"
    assert to_dataframe(store)["run_time"].dtype == "timedelta64[ns]"
    assert to_dataframe(store, per="event")["time_in_previous"].dtype == "timedelta64[ns]"


HOSTILE = 'Count "S1", lane 2\n<script>alert(1)</script>'


def test_csv_keeps_text_exact_and_writes_durations_in_seconds(store: JobStore, tmp_path: Path):
    add(store, HOSTILE, JobStatus.COMPLETED, exit_code=0, resources=Resources.parse("time=2h"))
    add(store, "running", JobStatus.RUNNING, at=1, run=None)
    path = write_csv(to_dataframe(store), tmp_path / "jobs.csv")
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["name"] for r in rows] == [HOSTILE, "running"]
    assert (rows[0]["run_time_seconds"], rows[0]["queue_wait_seconds"], rows[0]["walltime_seconds"]) == \
        ("600.0", "60.0", "7200.0")
    assert rows[1]["run_time_seconds"] == "" and rows[1]["exit_code"] == ""
    assert rows[0]["start_time"].startswith("2026-11-02 09:01:00") and rows[0]["start_time"].endswith("+00:00")
    assert "run_time" not in rows[0]
    assert not list(path.parent.glob(".*.tmp"))  # written atomically, nothing left behind


def test_parquet_keeps_every_column_type(store: JobStore, tmp_path: Path):
    pytest.importorskip("pyarrow")
    add(store, HOSTILE, JobStatus.FAILED, exit_code=3, metadata={"usage": {"cpu_seconds": 60, "alloc_cpus": 1}})
    add(store, "pending", JobStatus.PENDING, at=1, wait=None)
    for per in ("job", "attempt", "event"):
        frame = to_dataframe(store, per=per)
        back = pd.read_parquet(write_parquet(frame, tmp_path / f"{per}.parquet"))
        pd.testing.assert_frame_equal(back, frame, check_categorical=True)


def test_parquet_without_pyarrow_says_what_to_install(store: JobStore, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # what an environment without pyarrow looks like
    with pytest.raises(MissingDependencyError, match="Parquet export needs pyarrow: pip install pyarrow"):
        write_parquet(to_dataframe(store), tmp_path / "out" / "jobs.parquet")
    assert not (tmp_path / "out").exists()


def test_history_exports_from_the_command_line(store: JobStore, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                               monkeypatch: pytest.MonkeyPatch):
    pytest.importorskip("pyarrow")
    first = add(store, "Predict", JobStatus.FAILED, exit_code=3, job_type=JobType.PREDICTION)
    add(store, "Predict", JobStatus.COMPLETED, at=5, attempt=2, retry_of=first.job_id, job_type=JobType.PREDICTION)
    add(store, "Count", JobStatus.COMPLETED, at=6, job_type=JobType.COUNT)
    project = str(store.paths.root)
    csv_path, parquet_path = tmp_path / "h.csv", tmp_path / "h.parquet"

    code = main(["--project", project, "history", "--type", "Prediction", "--csv", str(csv_path),
                 "--parquet", str(parquet_path)])
    assert code == 0
    assert capsys.readouterr().out.splitlines() == [f"wrote 2 rows to {parquet_path}", f"wrote 2 rows to {csv_path}"]
    assert list(pd.read_parquet(parquet_path)["attempt"]) == [1, 2]  # every attempt, like the history table
    with csv_path.open(newline="") as handle:
        assert [r["status"] for r in csv.DictReader(handle)] == ["failed", "completed"]

    assert main(["--project", project, "history", "--events", "--csv", str(csv_path)]) == 0
    assert capsys.readouterr().out == f"wrote 3 rows to {csv_path}\n"

    monkeypatch.setitem(sys.modules, "pyarrow", None)
    other_csv = tmp_path / "other.csv"
    code = main(["--project", project, "history", "--csv", str(other_csv), "--parquet", str(tmp_path / "x.pq")])
    captured = capsys.readouterr()
    assert code == 2 and captured.err.startswith("celline-jobs: error: Parquet export needs pyarrow")
    assert not other_csv.exists()  # nothing half-done


def test_importing_the_modules_loads_neither_pandas_nor_matplotlib():
    code = ("import sys\nimport celline_jobs_nb.export, celline_jobs_nb.analytics, celline_jobs_nb.report\n"
            "heavy = sorted(m for m in ('pandas', 'matplotlib', 'numpy', 'pyarrow') if m in sys.modules)\n"
            "assert not heavy, heavy\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


def test_a_hand_edited_number_column_is_unknown_in_its_row_not_an_error(store: JobStore):
    import sqlite3

    jobs = [JobInfo(job_id=new_job_id(), name=f"j{i}", status=JobStatus.COMPLETED, exit_code=0,
                    start_time=datetime(2026, 11, 1, tzinfo=timezone.utc)) for i in range(3)]
    store.insert_many(jobs)
    with sqlite3.connect(store.path) as db:
        db.execute("UPDATE jobs SET exit_code = 'abc', start_time = 'x', attempt = 'two' WHERE job_id = ?",
                   (jobs[1].job_id,))
    for per in ("attempt", "job"):
        frame = to_dataframe(store, per=per).set_index("job_id")
        assert pd.isna(frame.loc[jobs[1].job_id, "exit_code"]) and pd.isna(frame.loc[jobs[1].job_id, "start_time"])
        assert frame.loc[jobs[1].job_id, "attempt"] == 1
        assert frame.loc[jobs[0].job_id, "exit_code"] == 0 and frame.loc[jobs[2].job_id, "start_time"].year == 2026
