"""Hostile names, commands and files: nothing runs that was not asked for, nothing is written
outside the project, and every string comes back as the same characters."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from celline_jobs_nb import JobMonitor, JobStatus
from celline_jobs_nb.core.errors import InvalidInputError

HOSTILE_NAMES = [
    'a "b" $c <d>', "$(touch PWNED)", "`touch PWNED`", "x; touch PWNED", "new\nline", "tab\tand\rreturn",
    "\x1b[31mred\x1b[0m", "<img src=x onerror=alert(1)>", "</script><script>alert(1)</script>",
    "../../../etc/passwd", "名前 🧬", "x" * 1000,
]


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_job_names_are_data(monitor: JobMonitor, name: str):
    job_id = monitor.submit_job(name, "echo ran")
    job = monitor.wait([job_id], timeout=30)[0]
    assert job.name == name and job.status is JobStatus.COMPLETED
    assert monitor.logs(job_id) == "ran"
    assert not list(monitor.paths.root.rglob("PWNED")) and not Path("PWNED").exists()
    listed = subprocess.run([sys.executable, "-m", "celline_jobs_nb", "--project", str(monitor.paths.root),
                             "list", "--json"], capture_output=True, text=True)
    assert [j["name"] for j in json.loads(listed.stdout)] == [name]
    # The tables show it escaped: one line per job, nothing that moves the cursor or recolours.
    shown = name.replace("\n", "\\n").replace("\t", "\\t").replace("\r", "\\r").replace("\x1b", "\\x1b")
    env = {**os.environ, "FORCE_COLOR": "", "NO_COLOR": ""}
    for command in ("list", "history"):
        table = subprocess.run([sys.executable, "-m", "celline_jobs_nb", "--project", str(monitor.paths.root),
                                command], capture_output=True, text=True, env=env).stdout
        *_, header, row = table.splitlines()  # history has a title line
        assert header.startswith("Job ID         Name") and row.startswith(f"{job_id}  {shown}  Custom  ")
        assert not any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in table.replace("\n", ""))
    status = subprocess.run([sys.executable, "-m", "celline_jobs_nb", "--project", str(monitor.paths.root),
                             "status", job_id], capture_output=True, text=True, env=env).stdout
    assert f"Name         {shown}" in status.splitlines()


def test_commands_run_exactly_as_given(monitor: JobMonitor):
    tricky = "printf '%s\\n' \"$HOME\" '$HOME' \"a'b\" 'c\"d'"
    job_id = monitor.submit_job("quoting", tricky)
    monitor.wait([job_id], timeout=30)
    assert monitor.logs(job_id).splitlines() == [os.environ["HOME"], "$HOME", "a'b", 'c"d']


@pytest.mark.parametrize(("name", "command", "message"), [
    ("nul\0name", "true", "invalid job name"), ("", "true", "invalid job name"),
    ("x" * 1001, "true", "invalid job name"),
    ("ok", "", "invalid command"), ("ok", "echo \0", "invalid command"),
])
def test_unusable_input_is_refused_before_anything_runs(monitor: JobMonitor, name: str, command: str, message: str):
    with pytest.raises(InvalidInputError, match=message):
        monitor.submit_job(name, command)
    assert monitor.list_jobs() == []


@pytest.mark.parametrize("job_id", ["../x", "..", "a/b", "/etc/passwd", "%", "x%"])
def test_path_like_job_ids_are_never_found_or_used_as_paths(monitor: JobMonitor, job_id: str):
    with pytest.raises(Exception) as error:
        monitor.logs(job_id)
    assert "no job" in str(error.value)


def test_a_malicious_jobs_json_runs_nothing_and_reads_nothing_outside(project: Path):
    outside = project.parent / "secret.txt"
    outside.write_text("top secret")
    legacy = project / ".celline" / "jobs.json"
    legacy.parent.mkdir()
    legacy.write_text(json.dumps({
        "../../escape": {"name": "evil", "status": "pending", "command": "touch PWNED",
                         "log_file": str(outside), "working_dir": "/"},
        "ok1": {"name": "reader", "status": "completed", "command": "true", "log_file": "../secret.txt"},
    }))
    monitor = JobMonitor(project)
    monitor.refresh(force=True)
    jobs = {j.name: j for j in monitor.list_jobs()}
    assert jobs["evil"].status is JobStatus.UNKNOWN  # imported, never run
    for job in jobs.values():
        assert monitor.logs(job.job_id) == ""  # log paths outside the project are not served
        assert monitor.log_path(job.job_id).is_relative_to(project)
    assert not list(project.rglob("PWNED"))
    assert {p.name for p in project.parent.iterdir()} == {"project", "secret.txt"}  # nothing written outside
