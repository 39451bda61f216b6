"""What the dashboard says about *why*: a failed job's last error line, a manual retry linked both
ways (one logical job), the progress a job wrote just before it ended, the local slot limit.
Real local jobs (real processes), no mocks."""

from __future__ import annotations

from celline_jobs_nb.core.models import JobStatus
from celline_jobs_nb.monitor import JobMonitor
from celline_jobs_nb.widgets import JobTable
from celline_jobs_nb.widgets._format import job_row
from celline_jobs_nb.widgets.errorline import last_error_line

R_FAILURE = (
    'echo "loading reference"; '
    'echo "Error in readRDS(file): cannot open compressed file \'ref.rds\', probable reason \'No such file\'" >&2; '
    'echo "Execution halted" >&2; exit 3'
)


def test_last_error_line_prefers_the_error_then_halted_then_the_last_line() -> None:
    assert last_error_line("a\nError in readRDS(x): no file\nExecution halted\n\n") == "Error in readRDS(x): no file"
    assert last_error_line("Traceback (most recent call last):\n  File 'x'\nValueError: bad\n") == "ValueError: bad"
    assert last_error_line("step 1\nKilled\n") == "Killed"
    assert last_error_line("step 1\nstep 2\n\n") == "step 2"
    assert last_error_line("\x1b[31mERROR\x1b[0m: disk quota exceeded\n") == "ERROR: disk quota exceeded"
    assert last_error_line("") is None
    assert len(last_error_line("error " + "x" * 5000) or "") <= 240


def test_a_failed_job_row_carries_its_last_error_line(monitor: JobMonitor) -> None:
    job_id = monitor.submit_job("Predict cell types", R_FAILURE)
    monitor.wait([job_id], timeout=30)
    job = monitor.get_job(job_id)
    assert job.status is JobStatus.FAILED and job.exit_code == 3
    row = job_row(job)
    assert row["err"].startswith("Error in readRDS(file): cannot open compressed file")
    ok = monitor.submit_job("fine", "echo Error-free; exit 0")
    monitor.wait([ok], timeout=30)
    assert "err" not in job_row(monitor.get_job(ok))  # only failed jobs


def test_a_manual_retry_links_both_attempts(monitor: JobMonitor) -> None:
    """Seen on main: the failed row had no "retried_by" after Retry in the widget (only automatic
    retries set it), so it was not linked to its retry and counted as a job of its own."""
    first = monitor.submit_job("Predict cell types", "exit 3")
    monitor.wait([first], timeout=30)
    table = JobTable(monitor, poll=False)
    try:
        reply = table.retry(first, "mem=4G")
        second = reply["new_job_id"]
        table.refresh_view()
        # The retry is the job's row; the failed attempt is listed under it, linked both ways.
        reply = table.open_window("v1", {"query": {}, "offset": 0, "limit": 10, "req": 1, "expanded": [second]})
        rows = {r["id"]: r for r in reply["rows"]}
        assert reply["ids"] == [second] and reply["children"] == {second: [first]}
        assert rows[first]["rby"] == second
        assert rows[second]["retry_of"] == first and rows[second]["attempt"] == 2
        # A retry of the retry: the chain continues from the latest attempt.
        monitor.wait([second], timeout=30)
        third = monitor.retry_job(second)
        assert monitor.get_job(second).metadata["retried_by"] == third
    finally:
        table.close()


def test_the_progress_written_just_before_the_end_is_kept(monitor: JobMonitor) -> None:
    """Seen on main: a job that wrote 98 % ("step 89") and exited before a poll looked was recorded
    as completed with its older progress (or none): the end was written without reading it."""
    by_file = monitor.submit_job(
        "file", 'printf \'{"progress": 98, "stage": "step 89"}\' > "$CELLINE_JOBS_PROGRESS_FILE"; exit 0')
    by_log = monitor.submit_job("tqdm", 'printf "Counting: 16%%|##   | 16/100\\n"; exit 0')
    monitor.wait([by_file, by_log], timeout=30)
    file_job, log_job = monitor.get_job(by_file), monitor.get_job(by_log)
    assert file_job.status is JobStatus.COMPLETED and log_job.status is JobStatus.COMPLETED
    assert (file_job.progress.percent, file_job.progress.stage) == (98.0, "step 89")
    assert log_job.progress.percent == 16.0 and log_job.progress.stage == "Counting"
    row = job_row(file_job)
    assert row["pct"] == 98.0 and row["stage"] == "step 89"


def test_the_view_learns_the_local_slot_limit(project) -> None:  # type: ignore[no-untyped-def]
    mon = JobMonitor(project, max_parallel=2)
    table = JobTable(mon, poll=False)
    try:
        assert table.window["meta"]["slots"] == 2
    finally:
        table.close()
