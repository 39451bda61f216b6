"""Property tests over every reader of files and records we did not write: whatever a job, a
colleague or an old tool left (binary junk, JSON nested thousands deep, numbers no column can hold,
NaN, wrong types, a FIFO, a link out of the project, an oversized file), the reader raises only
our typed errors, and refresh, listing, status and the dashboard's rows never raise or hang.
See ``EXAMPLES`` for how many examples each property gets."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from celline_jobs_nb import JobMonitor, JobStatus
from celline_jobs_nb.core.errors import CellineJobsError, InvalidInputError, ParseError, SettingsError
from celline_jobs_nb.core.jobfiles import read_exit_file, read_progress_file
from celline_jobs_nb.core.logs import LogFollower, tail_lines
from celline_jobs_nb.core.models import JobInfo
from celline_jobs_nb.core.resources import Resources
from celline_jobs_nb.core.settings import read_toml
from celline_jobs_nb.schedulers.celline import parse_pbs_directives
from celline_jobs_nb.store.legacy import parse_legacy_records, record_to_job
from celline_jobs_nb.store.rows import COLUMNS, check_job, row_to_job
from celline_jobs_nb.widgets._format import job_row

_SETTINGS = {"deadline": None, "suppress_health_check": [HealthCheck.function_scoped_fixture, HealthCheck.too_slow]}
#: 10,000 examples for the cheap readers. The four slow ones (a file, FIFO or link written and read
#: back per example; whole jobs.json files of nested records to generate) take 2,500 in the regular
#: run, to keep the suite's time; all seven at 10,000 (CELLINE_JOBS_PROPERTY_EXAMPLES=10000)
#: passed too, in 7.5 min of CPU.
EXAMPLES = settings(max_examples=int(os.environ.get("CELLINE_JOBS_PROPERTY_EXAMPLES", "10000")), **_SETTINGS)
FILE_EXAMPLES = settings(max_examples=int(os.environ.get("CELLINE_JOBS_PROPERTY_EXAMPLES", "2500")), **_SETTINGS)

extreme_numbers = st.sampled_from([0, -1, 3, 255, 256, -29, 271, 2**31, 2**53, 2**53 + 1, 2**63, -(2**63) - 1, 10**400,
                                   0.5, 1e300, -0.0, float("nan"), float("inf"), float("-inf"), True, False])
json_values = st.recursive(
    st.none() | extreme_numbers | st.text(max_size=8),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=3),
    max_leaves=8,
)
record_keys = st.sampled_from(["exit_code", "signal", "end_time", "start_time", "shell", "progress", "percent",
                               "stage", "details", "timestamp", "x"])
#: Hand-picked hostile texts: cheap to draw, and each hits one class of problem.
HOSTILE_TEXTS = [
    "", " ", "\x00", "[" * 200_000, "[" * 3000, '{"a":' * 3000, "]" * 50, "{" + " " * 300_000 + "}", "x" * 5000,
    '{"exit_code": 1e300}', '{"exit_code": 9223372036854775808}', '{"exit_code": NaN}', '{"exit_code": Infinity}',
    '{"exit_code": "3"}', '{"exit_code": [3]}', '{"exit_code": 3.5}', '{"signal": -4, "exit_code": null}',
    '{"exit_code": 0, "end_time": 1e300}', '{"exit_code": 0, "end_time": "yesterday"}', '{"progress": 1e999}',
    '{"progress": -5}', '{"progress": 50, "stage": {"a": 1}}', '{"progress": 50, "details": [1]}',
    '{"progress": 50, "timestamp": 9e99}', "\ufeff{}", "\x1b[2J\x1b]0;x\x07", '{"jobs": {"a": 5}}', "null", "true",
    "1" * 5000,
]


def _deep(depth: int, opener: str) -> str:
    return opener * depth


file_texts = st.one_of(
    st.sampled_from(HOSTILE_TEXTS),
    st.binary(max_size=64).map(lambda b: b.decode("utf-8", errors="replace")),
    st.dictionaries(record_keys, json_values, max_size=4).map(lambda d: json.dumps(d)),
    st.tuples(st.integers(1, 2500), st.sampled_from(["[", '{"a":', '[{"b":'])).map(lambda t: _deep(*t)),
)
FILE_KINDS = ("file", "fifo", "symlink_out", "directory", "missing")


def place(path: Path, kind: str, text: str, outside: Path) -> None:
    """Put ``text`` at ``path`` as a file of ``kind`` (what a hostile or careless job leaves)."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)
    if kind == "file":
        path.write_text(text, encoding="utf-8", errors="replace")
    elif kind == "fifo":
        os.mkfifo(path)
    elif kind == "symlink_out":
        outside.write_text(text, encoding="utf-8", errors="replace")
        path.symlink_to(outside)
    elif kind == "directory":
        path.mkdir()


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("untrusted")


@FILE_EXAMPLES
@given(text=file_texts, kind=st.sampled_from(FILE_KINDS))
def test_exit_and_progress_files_raise_only_parse_errors(scratch: Path, text: str, kind: str):
    for name, read in (("x.exitcode", read_exit_file), ("x_progress.json", read_progress_file)):
        path = scratch / name
        place(path, kind, text, scratch / "outside.txt")
        try:
            read(path)
        except ParseError:
            pass


@FILE_EXAMPLES
@given(text=file_texts, kind=st.sampled_from(FILE_KINDS), lines=st.integers(0, 80))
def test_log_readers_never_raise_other_errors_nor_follow_links(scratch: Path, text: str, kind: str, lines: int):
    path = scratch / "x.log"
    place(path, kind, text, scratch / "outside.txt")
    try:
        shown = tail_lines(path, lines)
    except ParseError:
        shown = []
    assert kind in ("file",) or shown == []
    chunk = LogFollower(path).read_new()
    assert (chunk.error is not None) == (kind in ("fifo", "symlink_out", "directory"))


legacy_record = st.dictionaries(
    st.sampled_from(["job_id", "name", "status", "command", "start_time", "end_time", "log_file", "working_dir",
                     "resources", "exit_code", "job_type", "created_at", "other"]),
    json_values | st.sampled_from(["completed", "running", "Count", "mem=32G", "../x", "ok\n"]), max_size=6,
)


@FILE_EXAMPLES
@given(st.dictionaries(st.text(max_size=8), legacy_record, max_size=3) | st.lists(legacy_record, max_size=3)
       | file_texts)
def test_any_jobs_json_gives_jobs_the_store_can_hold_or_a_parse_error(data):
    text = data if isinstance(data, str) else json.dumps(data)
    try:
        records = parse_legacy_records(text)
    except ParseError:
        return
    for record in records:
        job = record_to_job(record)
        try:
            check_job(job)
        except InvalidInputError:
            continue  # skipped at import, with a warning
        assert job.scheduler == "imported" and (job.status.final or job.status is JobStatus.UNKNOWN)


resource_text = st.one_of(
    st.text(max_size=40),
    st.lists(st.tuples(st.sampled_from(["mem", "time", "cpus", "walltime", "gpus", "nodes", "queue", "ppn", "x"]),
                       st.text(alphabet="0123456789.:-hmsdGMKTbBi１２٣ e+", max_size=25)), max_size=4)
    .map(lambda items: ",".join(f"{k}={v}" for k, v in items)),
)


@EXAMPLES
@given(resource_text)
def test_resource_text_raises_only_resource_errors_and_round_trips(text: str):
    try:
        parsed = Resources.parse(text)
    except CellineJobsError:
        return
    assert Resources.parse(parsed.to_dict()) == parsed  # whatever was accepted is stored and read back
    bumped = parsed.scaled(memory_factor=2.0, walltime_factor=1.5)
    assert Resources.parse(bumped.to_dict()) == bumped


@EXAMPLES
@given(st.text(max_size=300) | st.binary(max_size=300).map(lambda b: b.decode("latin-1")))
def test_settings_and_script_headers_raise_only_our_errors(scratch: Path, text: str):
    path = scratch / "setting.toml"
    path.write_text(text, encoding="utf-8", errors="replace")
    try:
        read_toml(path)
    except SettingsError:
        pass
    try:
        parse_pbs_directives("#PBS " + text.replace("\n", "\n#PBS "))
    except CellineJobsError:
        pass


stored_values = st.one_of(st.none(), st.text(max_size=8), extreme_numbers, st.sampled_from(
    ["{", "[]", "{}", "null", '{"time": "450-00:00:00"}', '{"mem": "1e999"}', '["a", 1]', '{"percent": "x"}',
     "running", "no-such-status", "Count", '{"usage": [1, 2]}', "[" * 3000]))


GOOD_ROW = ["job1", "name", "completed", "true", 1.8e9, 1.8e9 + 5, None, None, '{"cpus": 2}', "local", "123",
            "Count", 1.8e9, 0, None, None, 1, None, "[]", "afterok", None, None, '{"percent": 100.0}', 1.8e9,
            1.8e9 + 5, "{}"]


@EXAMPLES
@given(st.lists(st.tuples(st.integers(1, len(COLUMNS) - 1), stored_values), min_size=1, max_size=4))
def test_any_stored_row_reads_as_a_job_and_a_dashboard_row(changes):
    values = list(GOOD_ROW)
    for column, value in changes:  # a few columns of a good row replaced by what an old version or a hand wrote
        values[column] = value
    job = row_to_job(values)
    assert isinstance(job, JobInfo)
    json.dumps(job_row(job), default=str)  # what the dashboard sends for it


@pytest.fixture(scope="module")
def hostile_project(tmp_path_factory: pytest.TempPathFactory) -> JobMonitor:
    return JobMonitor(tmp_path_factory.mktemp("hostile-project"))


@FILE_EXAMPLES
@given(exit_text=file_texts, exit_kind=st.sampled_from(FILE_KINDS), progress_text=file_texts,
       progress_kind=st.sampled_from(FILE_KINDS))
def test_refresh_status_and_rows_never_raise_whatever_a_job_left(hostile_project: JobMonitor, exit_text: str,
                                                                exit_kind: str, progress_text: str,
                                                                progress_kind: str):
    mon = hostile_project
    mon.paths.ensure()
    with sqlite3.connect(mon.paths.db) as db:  # one orphan at a time: each example starts alike
        db.execute("DELETE FROM jobs")
    dead = 2**22 + 4321
    mon.store.insert(JobInfo(job_id="orphan", name="orphan", status=JobStatus.RUNNING, command="true",
                             metadata={"runner_pid": dead, "runner_started": 1.0, "pid": dead, "pid_started": 1.0}))
    outside = mon.paths.root.parent / "outside.txt"
    place(mon.paths.exit_file("orphan"), exit_kind, exit_text, outside)
    place(mon.paths.progress_file("orphan"), progress_kind, progress_text, outside)
    mon.refresh(force=True)
    job = mon.get_job("orphan")
    assert job.status.final  # its processes are gone: ended, with the exit file's word or a reason
    assert job.status is JobStatus.COMPLETED or job.reason
    assert [j.job_id for j in mon.list_jobs()] == ["orphan"]
    json.dumps(job_row(job), default=str)
