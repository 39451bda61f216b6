"""The CLI as a user runs it: real subprocesses, exit codes, one-line errors, no tracebacks."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from celline_jobs_nb import JobMonitor, JobStatus
from celline_jobs_nb.textable import cell_width, escape

SGR = re.compile(r"\x1b\[[0-9;]*m")
ALL_JOB_COLUMNS = ["Job ID", "Name", "Type", "Scheduler", "Status", "Progress", "Runtime", "Submitted", "Exit",
                   "Resources", "Reason"]
# Whether the output has colour is up to each test, never to the environment the tests run in.
ENVIRONMENT = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR")}


def run(project: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "celline_jobs_nb", "--project", str(project), *args],
                          capture_output=True, text=True, timeout=120, env={**ENVIRONMENT, **(env or {})})


def run_on_terminal(project: Path, *args: str, columns: int, env: dict[str, str] | None = None) -> str:
    """What the command shows on a real terminal (a pseudo-terminal) ``columns`` wide."""
    leader, follower = os.openpty()
    process = subprocess.Popen([sys.executable, "-m", "celline_jobs_nb", "--project", str(project), *args],
                               stdout=follower, stderr=follower,
                               env={**ENVIRONMENT, "COLUMNS": str(columns), **(env or {})})
    os.close(follower)
    output = b""
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # EIO: the command ended and closed the terminal
            break
        if not chunk:
            break
        output += chunk
    os.close(leader)
    assert process.wait(timeout=120) == 0, output
    return output.decode().replace("\r\n", "\n")  # the terminal's own line endings


def header_columns(line: str) -> list[str]:
    return re.split(r"  +", line.strip())


def finished_jobs(project: Path) -> tuple[JobMonitor, list[str]]:
    monitor = JobMonitor(project)
    ids = [monitor.submit_job("Count GSM001 " + "x" * 150, "true", {"mem": "1G"}, job_type="Count"),
           monitor.submit_job("名前 🧬 データ", "exit 3")]
    monitor.wait(ids, timeout=60)
    return monitor, ids


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
    (project / ".celline").mkdir()  # a project (elsewhere the CLI says there is none)
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
    details = status.stdout.splitlines()
    assert details[:3] == [f"Job ID       {job['job_id']}", "Name         hello", "Status       failed"]
    assert "Exit code    3" in details and "Resources    1G" in details
    assert re.fullmatch(r"  \S+ \S+  running -> failed +exit code 3", details[-1]), details[-1]
    plain_history = run(project, "history").stdout.splitlines()
    assert plain_history[0] == "1 job" and header_columns(plain_history[1]) == ALL_JOB_COLUMNS
    assert re.match(rf"{job['job_id']}  hello  Count  local +failed ", plain_history[2]), plain_history[2]
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
    rows = run(project, "queue").stdout.splitlines()
    assert header_columns(rows[0]) == ALL_JOB_COLUMNS
    assert sorted(row.split()[0] for row in rows[1:]) == sorted([running, waiting])
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


def test_hot_paths_load_neither_pandas_nor_widgets_nor_rich(project: Path):
    (project / ".celline").mkdir()
    code = (
        "import sys\n"
        "import celline_jobs_nb.core, celline_jobs_nb.store, celline_jobs_nb.monitor\n"
        "from celline_jobs_nb.cli import main\n"
        f"assert main(['--project', {str(project)!r}, 'list']) == 0\n"
        f"assert main(['--project', {str(project)!r}, 'list', '--json']) == 0\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('pandas', 'anywidget', 'ipywidgets', "
        "'numpy', 'rich'))\n"
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


def test_list_in_a_pipe_shows_every_column_and_every_value(project: Path):
    _, (long_id, failed_id) = finished_jobs(project)
    listed = run(project, "list", env={"COLUMNS": "40"})  # no terminal to fit
    header, *rows = listed.stdout.splitlines()
    assert header_columns(header) == ALL_JOB_COLUMNS and len(rows) == 2
    assert re.match(rf"{long_id}  Count GSM001 x{{150}}  Count  +local  +completed ", rows[0]), rows[0]
    assert rows[0].endswith("  0     1G") and "…" not in listed.stdout and "\x1b" not in listed.stdout
    assert rows[1].startswith(f"{failed_id}  名前 🧬 データ") and rows[1].endswith("exit code 3")
    status_column = cell_width(header[:header.index("Status")])
    assert [cell_width(row[:row.index(s)]) for row, s in zip(rows, ("completed", "failed"), strict=True)] == \
        [status_column] * 2  # aligned in terminal cells, the wide characters counted twice
    assert run(project, "list", env={"FORCE_COLOR": "1"}).stdout.count("\x1b[1;31mfailed\x1b[0m") == 1


@pytest.mark.parametrize("columns", [80, 120])
def test_list_on_a_terminal_fits_it_and_colours_the_status(project: Path, columns: int):
    _, (long_id, failed_id) = finished_jobs(project)
    shown = run_on_terminal(project, "list", columns=columns)
    header, *rows = shown.splitlines()
    assert header_columns(header) == [c for c in ALL_JOB_COLUMNS if c not in ("Scheduler", "Submitted", "Resources")]
    assert all(cell_width(SGR.sub("", line)) <= columns for line in shown.splitlines())
    assert rows[0].startswith(f"{long_id}  Count GS") and "…  Count   \x1b[32mcompleted\x1b[0m" in rows[0]
    assert rows[1].startswith(f"{failed_id}  名前 🧬") and "\x1b[1;31mfailed\x1b[0m" in rows[1]
    wide = run_on_terminal(project, "list", columns=300).splitlines()  # the whole table fits in 280
    assert header_columns(wide[0]) == ALL_JOB_COLUMNS and f"Count GSM001 {'x' * 150}  Count" in wide[1]
    assert "\x1b" not in run_on_terminal(project, "list", columns=columns, env={"NO_COLOR": "1"})


def test_stale_warnings_are_yellow_on_a_terminal_only(slurm_monitor: JobMonitor, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch):
    monitor = slurm_monitor
    monitor.submit_job("held", "true", {"extra": ["--hold"]}, scheduler="slurm")
    broken = tmp_path / "bin"
    broken.mkdir()
    (broken / "squeue").write_text("#!/bin/sh\nprintf 'squeue: error: \\033[2Jno controller\\n' >&2\nexit 1\n")
    (broken / "squeue").chmod(0o755)
    path = f"{broken}:{os.environ['PATH']}"
    monkeypatch.setenv("PATH", path)
    monitor.refresh(force=True)
    assert monitor.poll_states()["slurm"].stale
    piped = run(monitor.paths.root, "list", env={"PATH": path}).stdout
    warning = next(line for line in piped.splitlines() if line.startswith("warning: slurm data is stale"))
    assert warning.endswith("squeue: error: \\x1b[2Jno controller") and "\x1b" not in piped
    shown = run_on_terminal(monitor.paths.root, "list", columns=100, env={"PATH": path})
    assert f"\x1b[33m{warning}\x1b[0m\n" in shown
    assert "\x1b[33m" not in run_on_terminal(monitor.paths.root, "list", columns=100,
                                            env={"PATH": path, "NO_COLOR": "1"})


def test_watch_shows_the_table_list_prints(project: Path):
    from rich.console import Console

    from celline_jobs_nb.cli import _jobs_table

    monitor, ids = finished_jobs(project)
    jobs = monitor.store.get_many(ids)
    for width in (80, 200):
        screen = io.StringIO()
        Console(file=screen, width=width, no_color=True, highlight=False).print(_jobs_table(jobs))
        assert screen.getvalue().splitlines() == _jobs_table(jobs).render(width=width, colour=False)
    wide = _jobs_table(jobs).render(width=200, colour=False)
    assert header_columns(wide[0]) == ALL_JOB_COLUMNS
    live = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", run_on_terminal(project, "watch", columns=200))  # colour, cursor
    assert "\n".join(wide) in live


def test_the_schedulers_own_queue_is_data_too(project: Path, slurm_cluster: object, tmp_path: Path):
    name = "foreign \x1b[31mred\x1b]0;title\x07"
    (project / ".celline").mkdir()  # a project (elsewhere the CLI says there is none)
    native = subprocess.run(["sbatch", "--parsable", "--hold", "-J", name, "-o", str(tmp_path / "%j.out"), "--wrap",
                             "true"], capture_output=True, text=True, check=True, timeout=30).stdout.strip()
    try:
        queue = run(project, "queue", "--scheduler", "slurm")
    finally:
        subprocess.run(["scancel", native], timeout=30, check=True)
    header, *rows = queue.stdout.splitlines()
    assert header_columns(header) == ["Native ID", "Name", "State", "User", "Reason", "Tracked as"]
    ours = [row for row in rows if row.startswith(f"{native} ")]
    assert len(ours) == 1 and re.search(rf"  {re.escape(escape(name))} +PENDING  ", ours[0]), ours
    assert "\x1b" not in queue.stdout
    assert ours[0].endswith("not tracked")
