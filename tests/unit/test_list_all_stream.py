"""`celline-jobs list --all` prints its table a batch of rows at a time (bounded memory over any
history): a project of one batch prints exactly the lines of the table sized over every row; over
several batches every row and every value is there, the header once, columns never narrower."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from celline_jobs_nb.core.models import JobInfo, JobStatus, JobType, new_job_id, utcnow
from celline_jobs_nb.jobtable import jobs_table, print_jobs_stream
from celline_jobs_nb.store import JobStore


def _job(i: int, name: str, status: JobStatus) -> JobInfo:
    created = utcnow() - timedelta(days=3, minutes=-i)
    return JobInfo(job_id=new_job_id(), name=name, command=f"run {i}", status=status, job_type=JobType.COUNT,
                   created_at=created, submit_time=created, start_time=created,
                   end_time=created + timedelta(seconds=7 * i), scheduler="slurm", native_id=None, depends_on=[],
                   exit_code=1 if status is JobStatus.FAILED else 0,
                   reason="out of memory" if status is JobStatus.FAILED else None)


def _jobs(count: int) -> list[JobInfo]:
    # names that grow: a later batch holds longer values than the first one
    return [_job(i, "sample" + "x" * (i // 4) + f"-{i}", JobStatus.FAILED if i % 3 == 0 else JobStatus.COMPLETED)
            for i in range(count)]


def test_list_all_of_a_small_project_prints_the_table_sized_over_every_row(project: Path):
    store = JobStore(project)
    store.insert_many([*_jobs(30), _job(99, "ünïcode-名前\x1b[31m", JobStatus.CANCELLED)])
    expected = jobs_table(store.list()).render(width=None, colour=False)
    result = subprocess.run([sys.executable, "-m", "celline_jobs_nb", "--project", str(project), "list", "--all"],
                            capture_output=True, text=True, timeout=60, env=_plain_env())
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == expected
    assert "\\x1b[31m" in result.stdout and "\x1b" not in result.stdout  # still escaped


def test_a_streamed_table_shows_every_row_and_value_once_with_one_header(capsys: pytest.CaptureFixture[str]):
    jobs = _jobs(23)
    assert print_jobs_stream(jobs, batch=5) == 23
    lines = capsys.readouterr().out.splitlines()
    whole = jobs_table(jobs).render(width=None, colour=False)
    # piped: nothing cut, nothing left out; the same cells on every line as the table of every row
    assert [line.split() for line in lines] == [line.split() for line in whole]
    assert sum(1 for line in lines if line.startswith("Job ID")) == 1 and "…" not in "".join(lines)
    # columns never narrow: the Type column starts no further left on a later line
    starts = [line.index("Count") for line in lines[1:]]
    assert starts == sorted(starts) and starts[-1] > starts[0]


def test_list_all_with_no_matching_job_says_so(project: Path):
    JobStore(project).insert_many(_jobs(3))
    result = subprocess.run([sys.executable, "-m", "celline_jobs_nb", "--project", str(project), "list", "--all",
                             "--status", "cancelled"], capture_output=True, text=True, timeout=60, env=_plain_env())
    assert result.returncode == 0 and result.stdout == "no jobs match\n"


def _plain_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in ("FORCE_COLOR",)}
