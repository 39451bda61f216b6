"""What a newcomer meets first: the demo and watch in a pipe, Ctrl-C, running the demo twice, commands
in a directory that is not a project, empty logs, headers and help texts. Real subprocesses."""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from celline_jobs_nb import JobMonitor
from celline_jobs_nb.cli import _jobs_table
from celline_jobs_nb.textable import Column, Table

ENVIRONMENT = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR", "COLUMNS")}
NO_PROJECT = "celline-jobs: error: no celline project here (no setting.toml or .celline/): cd into one or pass " \
             "--project DIR\n"


def cli(*args: str, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "celline_jobs_nb", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env=ENVIRONMENT)


@pytest.mark.parametrize("args", [["list"], ["watch"], ["status", "abc"], ["logs", "abc"], ["history"],
                                  ["queue"], ["report"], ["cancel", "abc"], ["export-json"]])
def test_outside_a_project_commands_say_so_and_create_nothing(tmp_path: Path, args: list[str]):
    result = cli(*args, cwd=tmp_path)
    assert (result.returncode, result.stdout, result.stderr) == (2, "", NO_PROJECT)
    assert list(tmp_path.iterdir()) == []  # no .celline/jobs.db, backups/ or logs/


def test_install_celline_function_needs_a_celline_project(tmp_path: Path):
    result = cli("install-celline-function", cwd=tmp_path)
    assert result.returncode == 2 and "no celline project here (no setting.toml)" in result.stderr
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "setting.toml").write_text('[project]\nname = "p"\n')
    result = cli("install-celline-function", cwd=tmp_path)
    assert result.returncode == 0 and (tmp_path / "functions" / "celline_jobs.py").is_file()


def test_submit_help_describes_every_resource_option(tmp_path: Path):
    text = cli("submit", "--help", cwd=tmp_path).stdout
    options = text.split("options:", 1)[1]
    for option, words in (("--cpus N", "CPU cores"), ("--partition NAME", "SLURM partition, PBS or Grid Engine queue"),
                          ("--gpus N", "GPUs"), ("--account NAME", "account to charge"), ("--mem SIZE", "memory")):
        block = options.split(option, 1)[1].split("\n  --", 1)[0]
        assert words in " ".join(block.split()), (option, block)


def test_an_empty_log_says_so_and_events_have_a_header(tmp_path: Path):
    monitor = JobMonitor(tmp_path)
    job_id = monitor.submit_job("quiet", "true")
    monitor.wait([job_id], timeout=60)
    logs = cli("logs", job_id, cwd=tmp_path)
    assert (logs.returncode, logs.stdout, logs.stderr) == (0, "", "(empty log)\n")  # a pipe gets the log only
    header, *rows = cli("history", "--events", cwd=tmp_path).stdout.splitlines()
    assert re.split(r"  +", header) == ["Time", "Job ID", "From", "To", "Reason"]
    assert [re.split(r"  +", row)[2:4] for row in rows] == [["-", "pending"], ["pending", "queued"],
                                                            ["queued", "running"], ["running", "completed"]]


def test_on_80_columns_the_name_is_cut_last(tmp_path: Path):
    monitor = JobMonitor(tmp_path)
    ids = [monitor.submit_job("Batch correction of all samples (Harmony)", "exit 3", job_type="Batch Correction"),
           monitor.submit_job("Count SRR2584863 (cellranger count)", "true", job_type="Count")]
    monitor.wait(ids, timeout=60)
    header, *rows = _jobs_table(monitor.store.get_many(ids)).render(width=80, colour=False)
    assert all(len(line) <= 80 for line in [header, *rows])
    cells = re.split(r"  +", rows[0])
    # Reason, Progress and Type gave way down to their floors before the name lost a character more
    assert cells[1] == "Batch corr…" and cells[2] == "Batch C…" and cells[-1] == "exit …", rows[0]


def test_a_live_table_keeps_its_column_widths_between_frames():
    memo: dict[str, int] = {}
    columns = (Column("Name", flexible=True, keep=2), Column("Progress", flexible=True))
    first = Table(columns, memo=memo)
    first.add_row("Count SRR2584863", "10% Reading FASTQ")
    second = Table(columns, memo=memo)
    second.add_row("Count SRR2584863", "20%")
    widths = [line.index("Progress") for line in (first.render(width=60, colour=False)[0],
                                                 second.render(width=60, colour=False)[0])]
    assert widths[0] == widths[1]


def test_watch_in_a_pipe_prints_changes_then_the_whole_table_once(tmp_path: Path):
    monitor = JobMonitor(tmp_path)
    long_name = "Count GSM001 " + "x" * 150
    ids = [monitor.submit_job(long_name, "sleep 1"), monitor.submit_job("fails", "sleep 1; exit 3")]
    result = cli("watch", "--interval", "0.2", cwd=tmp_path)
    lines = result.stdout.splitlines()
    assert result.returncode == 0, result.stderr
    headers = [n for n, line in enumerate(lines) if line.startswith("Job ID  ")]
    assert len(headers) == 1  # the final table, once
    assert any(line.endswith(f"{ids[1]}  fails  failed  exit code 3") for line in lines[:headers[0]])
    table = lines[headers[0]:]
    assert any(long_name in line for line in table) and "…" not in result.stdout  # nothing cut to 80 columns
    assert table[-1] == "completed: 1  failed: 1"


@pytest.mark.slow
def test_demo_in_a_pipe_ctrl_c_and_twice(tmp_path: Path):
    """Ctrl-C names the project to watch; a second demo while the first runs watches it instead of
    adding six more; a demo after that says the earlier jobs are kept."""
    demo = tmp_path / "celline-jobs-demo"
    first = subprocess.Popen([sys.executable, "-m", "celline_jobs_nb", "demo", "--dir", str(demo)], cwd=tmp_path,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENVIRONMENT)
    try:
        assert first.stdout is not None
        assert first.stdout.readline().startswith(f"Demo project: {demo}  (6 jobs submitted")
        first.stdout.readline()  # the first status line: watching has begun
        first.send_signal(signal.SIGINT)
        out, _err = first.communicate(timeout=60)
    finally:
        if first.poll() is None:
            first.kill()
    assert first.returncode == 130
    assert f"(`celline-jobs --project {shlex.quote(str(demo))} watch` to watch again)" in out

    second = cli("demo", "--dir", str(demo), "--no-watch", cwd=tmp_path)
    assert "the demo is already running" in second.stdout
    monitor = JobMonitor(demo)
    assert len(monitor.list_jobs()) == 6
    for job in monitor.list_jobs():
        monitor.cancel_job(job.job_id, wait=0)
    monitor.wait([j.job_id for j in monitor.list_jobs()], timeout=60)

    third = cli("demo", "--dir", str(demo), "--no-watch", cwd=tmp_path)
    assert "keeps the 6 jobs of earlier demo runs" in third.stdout and len(monitor.list_jobs()) == 12
    for job in monitor.list_jobs():
        if job.status.active:
            monitor.cancel_job(job.job_id, wait=0)


@pytest.mark.slow
def test_the_demo_in_a_file_is_not_cut_and_shows_the_final_table_once(tmp_path: Path):
    result = cli("demo", "--dir", str(tmp_path / "demo"), cwd=tmp_path, timeout=120)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines.count("Final state") == 1
    header = lines[lines.index("Final state") + 1]
    assert re.split(r"  +", header) == ["Job ID", "Name", "Type", "Scheduler", "Status", "Progress", "Runtime",
                                        "Submitted", "Exit", "Resources", "Reason"]
    assert "Predict cell types (scPred)" in result.stdout and "…" not in result.stdout
    assert f"    Project({str(tmp_path / 'demo')!r}).call(Job())" in lines


def test_logs_follow_prints_the_last_lines_then_what_comes_once(tmp_path: Path):
    monitor = JobMonitor(tmp_path)
    go = tmp_path / "go"
    job_id = monitor.submit_job("waits", f"echo one; echo two; while [ ! -e {go} ]; do sleep 0.05; done; echo three")
    log = monitor.log_path(job_id)
    deadline = time.monotonic() + 60
    while "two" not in (log.read_text() if log.exists() else ""):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    follow = subprocess.Popen([sys.executable, "-m", "celline_jobs_nb", "logs", "-f", "--tail", "1", job_id],
                              cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENVIRONMENT)
    assert follow.stdout is not None
    assert follow.stdout.readline() == "two\n"  # the last line there is, once
    go.touch()
    out, err = follow.communicate(timeout=60)
    assert (follow.returncode, out, err) == (0, "three\n", "")
