"""Files and records the monitor did not write: each bad one affects only its own job, with a
reason; every other job, every command and the dashboard keep working; nothing outside the
project is read or replaced."""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import subprocess
import sys
import threading
from email.message import EmailMessage
from pathlib import Path

import pytest

from celline_jobs_nb import JobMonitor, JobStatus
from celline_jobs_nb.core.errors import InvalidInputError, ParseError, ResourceError, SettingsError
from celline_jobs_nb.core.jobfiles import parse_exit_record, read_exit_file, read_progress_file
from celline_jobs_nb.core.models import JobInfo, validate_job_id
from celline_jobs_nb.core.resources import MAX_WALLTIME_SECONDS, Resources
from celline_jobs_nb.core.settings import NotifySettings
from celline_jobs_nb.notify import job_message
from celline_jobs_nb.store.legacy import import_legacy_json

DEAD_PID = 2**22 + 12345  # above pid_max's default: never a live process


def cli(project: Path, *args: str, timeout: float = 60, umask: int | None = None) -> subprocess.CompletedProcess:
    """The real command line, with a timeout: a hang is a failure, not a stuck test run."""
    return subprocess.run([sys.executable, "-m", "celline_jobs_nb", "--project", str(project), *args],
                          capture_output=True, text=True, timeout=timeout,
                          preexec_fn=(lambda: os.umask(umask)) if umask is not None else None)


def one_line_error(result: subprocess.CompletedProcess, *needles: str) -> None:
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("celline-jobs: error: "), result.stderr
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])


def orphan_running_job(mon: JobMonitor, name: str) -> str:
    """A local job recorded as running whose wrapper and command are gone (what a monitor finds
    after the job ended while nobody watched)."""
    job = JobInfo(job_id=f"orphan-{name}", name=name, status=JobStatus.RUNNING, command="true",
                  metadata={"runner_pid": DEAD_PID, "runner_started": 1.0, "pid": DEAD_PID, "pid_started": 1.0,
                            "pgid": DEAD_PID})
    mon.store.insert(job)
    return job.job_id


# -- 1. exit-code files ---------------------------------------------------------------------------

def test_a_deeply_nested_exit_file_fails_only_its_own_job(monitor: JobMonitor):
    bad = orphan_running_job(monitor, "bad")
    good = orphan_running_job(monitor, "good")
    monitor.paths.ensure()
    monitor.paths.exit_file(bad).write_text("[" * 200_000)
    monitor.paths.exit_file(good).write_text(json.dumps({"exit_code": 0, "signal": None, "end_time": 1.8e9}))
    for command in (["list"], ["status", bad], ["cancel", good]):
        result = cli(monitor.paths.root, *command)
        assert result.returncode in (0, 1) and "Traceback" not in result.stderr, (command, result.stderr)
    monitor.refresh(force=True)
    failed, done = monitor.get_job(bad), monitor.get_job(good)
    assert failed.status is JobStatus.FAILED and failed.reason.startswith("unreadable exit-code file:")
    assert "more than the 4096 allowed" in failed.reason  # refused before any parsing
    assert done.status is JobStatus.COMPLETED and done.exit_code == 0


@pytest.mark.parametrize("text", ["[" * 3000, '{"a":' * 3000, '{"exit_code": 1e300}',
                                  '{"exit_code": 9223372036854775808}', '{"exit_code": NaN}', '{"exit_code": 3.5}',
                                  '{"exit_code": 1, "signal": -4}',
                                  '{"exit_code": 1, "end_time": 1e300}'])
def test_exit_records_the_store_could_not_hold_are_parse_errors(text: str):
    with pytest.raises(ParseError):
        parse_exit_record(text)


def test_a_value_the_store_cannot_hold_is_dropped_and_named_the_rest_lands(monitor: JobMonitor):
    job_id = orphan_running_job(monitor, "huge")
    assert monitor.store.update(job_id, JobStatus.FAILED, exit_code=10**30, reason="exit 1")
    job = monitor.get_job(job_id)
    assert job.status is JobStatus.FAILED and job.exit_code is None and job.reason == "exit 1"
    assert "invalid exit_code" in job.metadata["problems"][0]


# -- 2. FIFOs, devices and symbolic links where job files belong ------------------------------------

@pytest.mark.parametrize("which", ["progress_file", "exit_file", "log_file"])
def test_a_fifo_in_place_of_a_job_file_never_hangs_a_command(monitor: JobMonitor, which: str):
    job_id = monitor.submit_job("sleeper", "sleep 60")
    _wait_running(monitor, job_id)
    path = getattr(monitor.paths, which)(job_id)
    path.unlink(missing_ok=True)
    os.mkfifo(path)
    for command in (["list"], ["status", job_id], ["history"], ["report", "--out", "-"]):
        result = cli(monitor.paths.root, *command, timeout=30)
        assert result.returncode == 0 and "Traceback" not in result.stderr, (command, result.stderr)
    logs = cli(monitor.paths.root, "logs", job_id, timeout=30)
    if which == "log_file":
        one_line_error(logs, "FIFO")
    else:
        assert logs.returncode == 0
    assert cli(monitor.paths.root, "cancel", job_id, timeout=30).returncode == 0
    job = monitor.wait([job_id], timeout=30)[0]
    assert job.status is JobStatus.CANCELLED


def _wait_running(mon: JobMonitor, job_id: str) -> None:
    import time

    deadline = time.monotonic() + 20
    while mon.get_job(job_id).status is not JobStatus.RUNNING:
        assert time.monotonic() < deadline, mon.get_job(job_id)
        mon.refresh()
        time.sleep(0.05)


def test_small_job_files_refuse_fifos_links_and_oversized_content(tmp_path: Path):
    fifo = tmp_path / "x.exitcode"
    os.mkfifo(fifo)
    with pytest.raises(ParseError, match="FIFO"):
        read_exit_file(fifo)
    secret = tmp_path / "secret.json"
    secret.write_text('{"progress": 50}')
    link = tmp_path / "x_progress.json"
    link.symlink_to(secret)
    with pytest.raises(ParseError, match="symbolic link"):
        read_progress_file(link)
    big = tmp_path / "big_progress.json"
    big.write_text('{"progress": 1, "details": {"x": "' + "a" * 400_000 + '"}}')
    with pytest.raises(ParseError, match="more than"):
        read_progress_file(big)


# -- 3. the seed's jobs.json -------------------------------------------------------------------------

def test_bad_jobs_json_records_are_skipped_and_the_good_ones_imported_once(project: Path):
    state = project / ".celline"
    state.mkdir()
    records = {
        "good1": {"name": "fine", "status": "completed", "command": "true"},
        "bigexit": {"name": "x", "status": "failed", "exit_code": 9223372036854775808},
        "hugemem": {"name": "mem", "status": "completed", "resources": {"mem": 1e999}},
        "nantime": {"name": "nan", "status": "completed", "resources": {"time": float("nan")}},
        "okid4\n": {"name": "newline id", "status": "completed"},
        "../../evil": {"name": "path id", "status": "completed"},
    }
    text = json.dumps(records)  # NaN and Infinity as Python writes them
    deep = '"deep": {"name": ' + "[" * 200_000 + "]" * 200_000 + "}"
    (state / "jobs.json").write_text(text[:-1] + ", " + deep + "}")
    mon = JobMonitor(project)
    jobs = {j.name: j for j in mon.list_jobs()}
    assert set(jobs) == {"fine", "mem", "nan", "newline id", "path id"}  # bigexit and deep skipped
    assert jobs["mem"].resources == Resources() and "legacy_resources" in jobs["mem"].metadata
    assert jobs["newline id"].job_id != "okid4\n" and jobs["newline id"].metadata["legacy_job_id"] == "okid4\n"
    assert list((state / "backups").glob("jobs.json.*"))  # the skipped records are kept there
    # The file changes (one record edited): nothing imported twice, however often it changes.
    records["good1"]["name"] = "fine"
    records["extra"] = {"name": "extra", "status": "completed"}
    (state / "jobs.json").write_text(json.dumps(records))
    assert import_legacy_json(mon.store) >= 1
    names = [j.name for j in JobMonitor(project).list_jobs()]
    assert sorted(names) == sorted(["fine", "mem", "nan", "newline id", "path id", "extra"])
    result = cli(project, "db", "check")
    assert result.returncode == 0


def test_job_ids_with_a_trailing_newline_are_invalid():
    with pytest.raises(InvalidInputError):
        validate_job_id("okid4\n")


# -- 4. celline's scripts and CLI numbers ---------------------------------------------------------

def test_absurd_numbers_in_a_celline_script_affect_only_that_run(project: Path):
    (project / "setting.toml").write_text('[project]\nname = "p"\n[execution]\nsystem = "multithreading"\n'
                                          'nthread = 1\n')
    src = project / "resources/GSE1/GSM1/src"
    src.mkdir(parents=True)
    (src / "count.sh").write_text("#!/bin/bash\n#PBS -l mem=" + "9" * 400 + "gb\n#PBS -N count\necho hi\n")
    (project / "resources/GSE1/GSM1/logs").mkdir()
    (project / "resources/GSE1/GSM1/logs/count_20261101_10:00:00.log").write_text("hi\n")
    for command in (["discover"], ["list"]):
        result = cli(project, *command)
        assert result.returncode == 0 and "Traceback" not in result.stderr, (command, result.stderr)


@pytest.mark.parametrize("option,value", [("--mem", "9" * 400), ("--time", "9" * 400 + "h"), ("--cpus", "１２")])
def test_absurd_resource_options_are_one_line_errors(project: Path, option: str, value: str):
    (project / ".celline").mkdir()
    one_line_error(cli(project, "submit", "--name", "x", option, value, "--command", "true"), "invalid")
    assert JobMonitor(project).list_jobs() == []


# -- 5. a retry's bump, and a stored value that no longer validates ----------------------------------

def test_bumps_never_pass_the_limits():
    limit = Resources.parse("time=300-00:00:00,mem=60P").scaled(memory_factor=2, walltime_factor=1.5)
    assert limit.walltime == MAX_WALLTIME_SECONDS
    Resources.parse(limit.to_dict())  # still a valid request


def test_a_stored_value_that_no_longer_validates_is_a_problem_of_its_own_job(monitor: JobMonitor):
    good = monitor.submit_job("good", "true")
    monitor.wait([good], timeout=30)
    bad = orphan_running_job(monitor, "old-row")
    monitor.store.update(bad, JobStatus.FAILED, reason=None)
    with sqlite3.connect(monitor.paths.db) as db:
        db.execute("UPDATE jobs SET resources = ?, status = ? WHERE job_id = ?",
                   ('{"time": "450-00:00:00"}', "no-such-status", bad))
    jobs = {j.job_id: j for j in monitor.list_jobs()}
    assert jobs[good].status is JobStatus.COMPLETED
    assert jobs[bad].status is JobStatus.UNKNOWN and "stored resources unreadable" in jobs[bad].reason
    for command in (["list"], ["history"], ["status", bad], ["report", "--out", "-"], ["history", "--csv", "-"]):
        result = cli(monitor.paths.root, *command)
        assert result.returncode == 0 and "Traceback" not in result.stderr, (command, result.stderr)


# -- 6. a log replaced by a link out of the project ------------------------------------------------

def test_a_log_linked_out_of_the_project_is_never_shown(monitor: JobMonitor, tmp_path: Path):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-LINE\n")
    job_id = monitor.submit_job("leaky", "echo hi; exit 3")
    monitor.wait([job_id], timeout=30)
    log = monitor.paths.log_file(job_id)
    log.unlink()
    log.symlink_to(secret)
    one_line_error(cli(monitor.paths.root, "logs", job_id), "symbolic link")
    report = cli(monitor.paths.root, "report", "--out", "-")
    assert report.returncode == 0 and "TOP-SECRET-LINE" not in report.stdout
    assert "log not shown" in report.stdout


# -- 7. output files ---------------------------------------------------------------------------------

@pytest.mark.parametrize("command", [["report", "--out"], ["export-json"], ["history", "--csv"]])
def test_outputs_never_replace_devices_fifos_or_directories(monitor: JobMonitor, tmp_path: Path,
                                                            command: list[str]):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    before = os.stat("/dev/null")
    for target, needle in (("/dev/null", "device"), (str(fifo), "FIFO"), (str(tmp_path), "directory"),
                           (str(tmp_path / "no" / "dir" / "r.html"), "does not exist"),
                           (str(tmp_path / ("x" * 300)), "cannot write")):
        one_line_error(cli(monitor.paths.root, *command, target), needle)
    after = os.stat("/dev/null")
    assert stat.S_ISCHR(after.st_mode) and after.st_rdev == before.st_rdev
    assert stat.S_ISFIFO(os.stat(fifo).st_mode) and not (tmp_path / "no").exists()


@pytest.mark.parametrize("command", [["report", "--out"], ["export-json"], ["history", "--csv"]])
def test_outputs_honour_the_umask_and_write_through_links(monitor: JobMonitor, tmp_path: Path, command: list[str]):
    target = tmp_path / "out.file"
    assert cli(monitor.paths.root, *command, str(target), umask=0o002).returncode == 0
    assert stat.S_IMODE(target.stat().st_mode) == 0o664
    link = tmp_path / "link.file"
    link.symlink_to(target)
    assert cli(monitor.paths.root, *command, str(link), umask=0o022).returncode == 0
    assert link.is_symlink() and target.is_file()
    dash = cli(monitor.paths.root, *command, "-")
    assert dash.returncode == 0 and dash.stdout and not Path(monitor.paths.root / "-").exists()


# -- 8. the job's environment -------------------------------------------------------------------------

@pytest.mark.parametrize("env", [{"A=B": "1"}, {"A": "x\0y"}, {"1A": "x"}, {"": "x"}])
def test_environments_a_shell_cannot_hold_are_refused_at_submit(monitor: JobMonitor, env: dict[str, str]):
    with pytest.raises(InvalidInputError, match="environment variable"):
        monitor.submit_job("env", "true", env=env)
    assert monitor.list_jobs() == []


# -- 9. resources --------------------------------------------------------------------------------------

@pytest.mark.parametrize("spec,needle", [("mem=1.5b", "bytes are whole"), ("time=1:30:00,walltime=5", "both set"),
                                         ("mem=4G,mem=8G", "given twice"), ("cpus=４", "invalid cpus"),
                                         ("mem=１G", "invalid memory"), ("time=１:00:00", "invalid walltime")])
def test_ambiguous_resources_are_errors(spec: str, needle: str):
    with pytest.raises(ResourceError, match=needle):
        Resources.parse(spec)


def test_bytes_mean_bytes_and_every_request_reads_back_the_same():
    assert Resources.parse("mem=512b").memory == 512
    assert Resources.parse("mem=1.5G").memory == 1536 * 1024**2
    for spec in ("mem=0.1", "mem=512b", "mem=1.5G", "mem=3.3T"):  # 0.1 MiB is not whole KiB
        request = Resources.parse(spec)
        assert Resources.parse(request.to_dict()) == request, spec


# -- 10. terminal escapes in logs ------------------------------------------------------------------------

def test_logs_show_terminal_escapes_escaped_unless_raw(monitor: JobMonitor):
    job_id = monitor.submit_job("title", r"printf 'a\033]0;pwned\007b\n\033[2Jc\tx\n'")
    monitor.wait([job_id], timeout=30)
    shown = cli(monitor.paths.root, "logs", job_id).stdout
    assert "\x1b" not in shown and "\x07" not in shown
    assert shown.splitlines() == ["a\\x1b]0;pwned\\x07b", "\\x1b[2Jc\tx"]
    raw = cli(monitor.paths.root, "logs", job_id, "--raw").stdout
    assert raw == "a\x1b]0;pwned\x07b\n\x1b[2Jc\tx\n"


# -- 11. notifications ------------------------------------------------------------------------------------

def test_a_bad_webhook_setting_does_not_echo_its_secret():
    with pytest.raises(SettingsError) as caught:
        NotifySettings.parse({"webhook": "ftp://user:hunter2@hooks.example.org/T000/B000/XXXXSECRET"})
    assert "hunter2" not in str(caught.value) and "XXXXSECRET" not in str(caught.value)


def test_a_name_with_newlines_makes_a_valid_one_line_subject():
    job = JobInfo(job_id="abc", name="Count\r\nBcc: victim@example.org\n" + "x" * 500, status=JobStatus.FAILED)
    subject = job_message(job, "/p").subject
    email = EmailMessage()
    email["Subject"] = subject  # raises for a header with a newline
    assert "\n" not in subject and "\r" not in subject and len(subject) < 200


# -- all at once -------------------------------------------------------------------------------------------

def test_a_project_holding_every_bad_file_at_once_still_works(monitor: JobMonitor, tmp_path: Path):
    good = monitor.submit_job("good one", "echo fine")
    failed = monitor.submit_job("fails", "echo oops; exit 3")
    monitor.wait([good, failed], timeout=30)
    deep, fifo_job, linked = (orphan_running_job(monitor, n) for n in ("deep", "fifo", "linked"))
    monitor.paths.exit_file(deep).write_text("[" * 200_000)
    os.mkfifo(monitor.paths.progress_file(fifo_job))
    os.mkfifo(monitor.paths.exit_file(fifo_job))
    (tmp_path / "outside.txt").write_text("OUTSIDE\n")
    monitor.paths.log_file(linked).symlink_to(tmp_path / "outside.txt")
    (monitor.paths.state_dir / "jobs.json").write_text('{"seed1": {"name": "seeded", "status": "completed",'
                                                       ' "exit_code": 1e999}, "seed2": ' + "[" * 100_000 + "}")
    done = threading.Event()
    results: dict[str, subprocess.CompletedProcess] = {}

    def run_all() -> None:
        for command in (["list"], ["status", deep], ["history"], ["report", "--out", "-"], ["logs", good]):
            results[command[0]] = cli(monitor.paths.root, *command, timeout=60)
        done.set()

    threading.Thread(target=run_all, daemon=True).start()
    assert done.wait(300), "a command hung"
    for name, result in results.items():
        assert result.returncode == 0 and "Traceback" not in result.stderr, (name, result.stderr)
    assert "OUTSIDE" not in results["report"].stdout
    monitor.refresh(force=True)  # the poll turn may have been taken by the commands above
    jobs = {j.job_id: j for j in monitor.list_jobs()}
    assert jobs[good].status is JobStatus.COMPLETED and jobs[failed].exit_code == 3
    assert jobs[deep].status is JobStatus.FAILED and "unreadable exit-code file" in jobs[deep].reason
    assert jobs[fifo_job].status is JobStatus.FAILED and "FIFO" in jobs[fifo_job].reason
    from celline_jobs_nb.widgets import JobTable

    table = JobTable(monitor.paths.root, poll=False)  # the dashboard's first snapshot reads every row
    try:
        shown = json.dumps(table.get_state(), default=str)
        assert "good one" in shown and "OUTSIDE" not in shown
    finally:
        table.close()
