"""The CLI as a user runs it: real subprocesses, exit codes, one-line errors, no tracebacks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from celline_jobs_nb import JobMonitor, JobStatus


def run(project: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "celline_jobs_nb", "--project", str(project), *args],
                          capture_output=True, text=True, timeout=120, env={**os.environ, **(env or {})})


@pytest.mark.parametrize(("args", "message"), [
    (["status", "nosuchjob"], "no job 'nosuchjob'"),
    (["logs", "nosuchjob"], "no job 'nosuchjob'"),
    (["cancel", "../etc"], "no job '../etc'"),
    (["list", "--status", "done"], "unknown status 'done': use one of pending"),
    (["history", "--since", "yesterdayish"], "invalid time 'yesterdayish'"),
    (["submit", "--command", "true", "--mem", "lots"], "invalid memory 'lots'"),
    (["submit", "--command", "true", "--time", "1:99:00"], "invalid walltime"),
    (["submit", "--command", "true", "--cpus", "0"], "invalid cpus"),
    (["submit", "--command", "true", "--type", "Sequencing"], "unknown job type 'Sequencing'"),
    (["submit", "--command", "true", "--scheduler", "lsf"], "unknown scheduler 'lsf'"),
    (["submit", "--command", "true", "--after", "nosuchjob"], "no job 'nosuchjob'"),
    (["submit", "missing.sh"], "script 'missing.sh' does not exist"),
    (["submit"], "give either a SCRIPT or --command"),
    (["submit", "--command", "true", "--array", "1-x"], "invalid array '1-x'"),
    (["frobnicate"], "invalid choice: 'frobnicate'"),
    (["logs", "x", "--tail", "many"], "invalid int value: 'many'"),
    (["progress", "40"], "not inside a celline-jobs job"),
    (["progress", "400"], "not inside a celline-jobs job"),
])
def test_bad_input_is_one_line_exit_2_and_runs_nothing(project: Path, args: list[str], message: str):
    result = run(project, *args, env={"CELLINE_JOB_ID": "", "CELLINE_JOBS_PROJECT": ""})
    assert result.returncode == 2, result
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("celline-jobs: error: ")
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert JobMonitor(project).list_jobs() == []  # nothing was submitted


def test_missing_project_directory(tmp_path: Path):
    result = run(tmp_path / "nope", "list")
    assert result.returncode == 2 and "does not exist" in result.stderr


def test_submit_list_status_logs_history(project: Path):
    script = project / "hello.sh"
    script.write_text('echo "hello from $CELLINE_JOB_ID"\nexit 3\n')
    submitted = run(project, "submit", str(script), "--type", "count", "--mem", "1G", "--json")
    assert submitted.returncode == 0, submitted.stderr
    job = json.loads(submitted.stdout)
    assert job["name"] == "hello" and job["job_type"] == "Count" and job["resources"] == {"mem": "1G"}
    JobMonitor(project).wait([job["job_id"]], timeout=30)
    listed = json.loads(run(project, "list", "--json").stdout)
    assert [(j["job_id"], j["status"], j["exit_code"]) for j in listed] == [(job["job_id"], "failed", 3)]
    assert json.loads(run(project, "list", "--status", "completed", "--json").stdout) == []
    status = run(project, "status", job["job_id"][:10])
    assert "failed" in status.stdout and "exit code 3" in status.stdout
    assert run(project, "logs", job["job_id"]).stdout == f"hello from {job['job_id']}\n"
    history = json.loads(run(project, "history", "--since", "1h", "--json").stdout)
    assert [h["job_id"] for h in history] == [job["job_id"]]
    events = json.loads(run(project, "history", "--events", "--json").stdout)
    assert [e["to"] for e in events] == ["pending", "queued", "running", "failed"]
    retried = run(project, "retry", job["job_id"], "--mem", "2G", "--json")
    assert json.loads(retried.stdout)["retry_of"] == job["job_id"]


def test_logs_follow_stops_when_the_job_ends(project: Path):
    monitor = JobMonitor(project)
    job_id = monitor.submit_job("ticker", "for i in 1 2 3 4; do echo tick $i; sleep 0.5; done")
    result = run(project, "logs", "-f", job_id)
    assert result.returncode == 0
    assert result.stdout.split() == ["tick", "1", "tick", "2", "tick", "3", "tick", "4"]
    assert monitor.get_job(job_id).status is JobStatus.COMPLETED


def test_cancel_and_queue(project: Path):
    monitor = JobMonitor(project, max_parallel=1)
    running = monitor.submit_job("long", "sleep 60")
    waiting = monitor.submit_job("later", "sleep 60")
    queue = json.loads(run(project, "queue", "--json").stdout)
    assert {j["job_id"] for j in queue} == {running, waiting}
    result = run(project, "cancel", running, waiting)
    assert result.returncode == 0, result.stderr
    assert f"{running}: cancelled" in result.stdout and f"{waiting}: cancelled" in result.stdout
    assert "already cancelled" in run(project, "cancel", running).stdout


def test_progress_command_inside_a_job(project: Path):
    monitor = JobMonitor(project)
    job_id = monitor.submit_job("p", f"{sys.executable} -m celline_jobs_nb progress 55 Counting -d sample=S1")
    monitor.wait([job_id], timeout=30)
    data = json.loads((project / "logs" / f"{job_id}_progress.json").read_text())
    assert (data["progress"], data["stage"], data["details"]) == (55, "Counting", {"sample": "S1"})
    assert set(data) == {"progress", "stage", "details", "timestamp"}


def test_hot_paths_load_neither_pandas_nor_widgets(project: Path):
    code = (
        "import sys\n"
        "import celline_jobs_nb.core, celline_jobs_nb.store, celline_jobs_nb.monitor\n"
        "from celline_jobs_nb.cli import main\n"
        f"assert main(['--project', {str(project)!r}, 'list']) == 0\n"
        f"assert main(['--project', {str(project)!r}, 'list', '--json']) == 0\n"
        "heavy = sorted(m for m in ('pandas', 'anywidget', 'ipywidgets', 'numpy') if m in sys.modules)\n"
        "assert not heavy, heavy\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_python_dash_m_is_the_same_command(project: Path):
    via_module = run(project, "--help")
    via_script = subprocess.run(["celline-jobs", "--help"], capture_output=True, text=True)
    assert via_module.returncode == via_script.returncode == 0
    assert via_module.stdout.replace("__main__.py", "celline-jobs") == via_script.stdout


def test_demo_runs_six_jobs_and_one_fails(tmp_path: Path):
    result = subprocess.run([sys.executable, "-m", "celline_jobs_nb", "demo", "--dir", str(tmp_path / "demo")],
                            capture_output=True, text=True, timeout=90, env={**os.environ, "COLUMNS": "200"})
    assert result.returncode == 0, result.stderr
    jobs = JobMonitor(tmp_path / "demo").list_jobs()
    assert len(jobs) == 6
    assert {j.job_type.value for j in jobs} == {"Count", "Preprocess", "Prediction", "Integration",
                                                 "Batch Correction", "Custom"}
    failed = [j for j in jobs if j.status is JobStatus.FAILED]
    assert [(j.job_type.value, j.exit_code) for j in failed] == [("Prediction", 3)]
    assert all(j.status is JobStatus.COMPLETED for j in jobs if j not in failed)
    integration = next(j for j in jobs if j.job_type.value == "Integration")
    assert integration.depends_on  # waits for preprocessing
    assert all(j.progress.percent == 100 for j in jobs if j.status is JobStatus.COMPLETED)
    assert "Project(" in result.stdout and "call(Job())" in result.stdout
