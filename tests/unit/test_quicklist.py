"""`celline-jobs list` of a project whose jobs have all ended is answered without the monitor
(celline_jobs_nb/quicklist.py): it prints exactly what the full path prints, and it declines whenever
the full path would do more than read (then the full path answers)."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from celline_jobs_nb import cli, quicklist
from celline_jobs_nb.core.models import JobInfo, JobStatus, JobType, Progress, new_job_id, utcnow
from celline_jobs_nb.core.paths import ProjectPaths
from celline_jobs_nb.core.resources import Resources
from celline_jobs_nb.store import JobStore, outbox
from celline_jobs_nb.store.backup import create_backup

HOSTILE = "evil\x1b]0;owned\x07\x1b[2J name\nsecond line"


def _job(i: int, status: JobStatus, age: timedelta, **extra: object) -> JobInfo:
    created = utcnow() - age
    fields: dict[str, object] = dict(
        job_id=new_job_id(), name=f"job{i}", command=f"run {i}", status=status, job_type=JobType.COUNT,
        created_at=created, submit_time=created, start_time=created, scheduler="slurm", native_id=str(i),
        end_time=(created + timedelta(seconds=90 + i)) if status.final else None, depends_on=[],
        exit_code=(0 if status is JobStatus.COMPLETED else 3) if status.final else None)
    fields.update(extra)
    return JobInfo(**fields)  # type: ignore[arg-type]


def _ended_project(project: Path) -> ProjectPaths:
    """200 jobs ended three days ago, 60 ended in the last day (varied cells), a backup made today."""
    store = JobStore(project)
    old = [_job(i, JobStatus.FAILED if i % 3 == 0 else JobStatus.COMPLETED, timedelta(days=3, minutes=-i))
           for i in range(200)]
    recent = [_job(300 + i, [JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED][i % 3],
                   timedelta(hours=20, minutes=-i),
                   resources=Resources(cpus=4, memory=32 * 2**30, walltime=5400) if i % 2 else Resources(),
                   progress=Progress(percent=42.0, stage="align") if i % 5 == 0 else Progress(),
                   signal=9 if i % 7 == 0 else None, reason="exit 3: out of memory" if i % 3 == 1 else None)
              for i in range(60)]
    recent.append(_job(999, JobStatus.FAILED, timedelta(hours=1), name=HOSTILE, reason=HOSTILE))
    store.insert_many(old + recent)
    store.close()
    paths = ProjectPaths.of(project)
    create_backup(paths)
    return paths


def _both(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int | None, str, str, str, str]:
    """(quick exit code or None, its stdout, its stderr, the full path's stdout and stderr)."""
    args = cli._parse(argv)
    code = quicklist.run(args)
    quick = capsys.readouterr()
    assert cli.COMMANDS["list"](cli._parse(argv)) == 0
    full = capsys.readouterr()
    return code, quick.out, quick.err, full.out, full.err


@pytest.mark.parametrize("options", [[], ["--limit", "7"], ["--json"], ["--limit", "3", "--json"], ["-n", "500"]])
def test_an_ended_project_is_listed_without_the_monitor_exactly_as_with_it(
        project: Path, options: list[str], capsys: pytest.CaptureFixture[str]):
    _ended_project(project)
    code, out, err, full_out, full_err = _both(["--project", str(project), "list", *options], capsys)
    assert code == 0
    assert out == full_out and err == full_err
    if "--json" not in options:
        assert "job999" not in out and "\x1b" not in out and "evil\\x1b" in out  # escaped, as always
    if not options:  # the last 24 h hold 61 ended jobs: all of them, and the footer
        assert "200 older ended jobs not shown" in out


def test_an_empty_project_says_so_the_same_way(project: Path, capsys: pytest.CaptureFixture[str]):
    JobStore(project).close()
    create_backup(ProjectPaths.of(project))
    code, out, _err, full_out, _ = _both(["--project", str(project), "list"], capsys)
    assert code == 0 and out == full_out == "no jobs yet: try `celline-jobs submit`\n"


def _decline_cases() -> list[str]:
    return ["active job", "retry to decide", "reconcile mark", "outbox", "stale scheduler", "jobs.json",
            "backup due", "max_parallel setting", "bad setting", "filter option", "--all", "schema"]


@pytest.mark.parametrize("case", _decline_cases())
def test_it_declines_whenever_the_full_path_would_do_more_than_read(
        project: Path, case: str, capsys: pytest.CaptureFixture[str]):
    paths = _ended_project(project)
    argv = ["--project", str(project), "list"]
    store = JobStore(project)
    if case == "active job":
        store.insert_many([_job(1, JobStatus.HELD, timedelta(days=30))])
    elif case == "retry to decide":
        store.insert_many([_job(2, JobStatus.FAILED, timedelta(hours=1), metadata={"retry_policy": {"max": 2}})])
    elif case == "reconcile mark":
        store.insert_many([_job(3, JobStatus.COMPLETED, timedelta(hours=1), metadata={"reconcile": 1})])
    elif case == "outbox":
        store.set_meta(quicklist._OUTBOX_META_KEY, "{}")
    elif case == "stale scheduler":
        store._connect().execute("INSERT INTO poll_state (scheduler, error) VALUES ('slurm', 'squeue timed out')")
    elif case == "jobs.json":
        paths.legacy_json.write_text("[]")
    elif case == "backup due":
        for copy in paths.backups_dir.glob("jobs-*.db"):
            copy.unlink()
    elif case == "max_parallel setting":
        paths.celline_settings.write_text("[jobs]\nmax_parallel = 2\n")
    elif case == "bad setting":
        paths.celline_settings.write_text('[execution]\nsystem = "pbs"\n')
    elif case == "filter option":
        argv += ["--status", "failed"]
    elif case == "--all":
        argv += ["--all"]
    elif case == "schema":
        store._connect().execute("PRAGMA user_version = 99")
    store.close()
    assert quicklist.run(cli._parse(argv)) is None
    assert capsys.readouterr().out == ""  # nothing printed: the full path answers alone


def test_the_outbox_key_is_the_stores():
    assert quicklist._OUTBOX_META_KEY == outbox.OUTBOX_META_KEY


def test_a_celline_setting_file_without_jobs_settings_is_read_and_listed(
        project: Path, capsys: pytest.CaptureFixture[str]):
    paths = _ended_project(project)
    paths.celline_settings.write_text('[project]\nname = "p"\n[execution]\nsystem = "multithreading"\nnthread = 4\n'
                                      'pbs_server = ""\n')
    code, out, _err, full_out, _ = _both(["--project", str(project), "list"], capsys)
    assert code == 0 and out == full_out


def test_a_bad_setting_still_stops_the_command_in_one_line(project: Path):
    paths = _ended_project(project)
    paths.celline_settings.write_text('[execution]\nsystem = "pbs"\n')
    result = subprocess.run([sys.executable, "-m", "celline_jobs_nb", "--project", str(project), "list"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and result.stderr.startswith("celline-jobs: error: [execution] system must be")


def test_listing_an_ended_project_loads_neither_the_monitor_nor_logging(project: Path):
    """What the command imports (not how long it takes): the store, settings, schedulers and
    logging stay unloaded when every job has ended."""
    _ended_project(project)
    env = {k: v for k, v in os.environ.items() if k != quicklist.ENV_NO_QUICK}
    result = subprocess.run([sys.executable, "-X", "importtime", "-m", "celline_jobs_nb", "--project", str(project),
                             "list", "--json"], capture_output=True, text=True, timeout=60, env=env)
    assert result.returncode == 0 and len(json.loads(result.stdout)) == 61
    imported = {line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines()
                if line.startswith("import time")}
    unwanted = {"celline_jobs_nb.monitor", "celline_jobs_nb.store.sqlite", "celline_jobs_nb.core.settings",
                "celline_jobs_nb.schedulers", "logging", "subprocess", "tomllib"}
    assert "celline_jobs_nb.quicklist" in imported and not unwanted & imported


def test_the_database_is_only_read(project: Path, capsys: pytest.CaptureFixture[str]):
    paths = _ended_project(project)
    conn = sqlite3.connect(paths.db)
    before = conn.execute("SELECT value FROM meta WHERE key = 'rev'").fetchone()[0]
    assert quicklist.run(cli._parse(["--project", str(project), "list"])) == 0
    assert conn.execute("SELECT value FROM meta WHERE key = 'rev'").fetchone()[0] == before
    conn.close()


@pytest.mark.parametrize("form", [["--project", "{p}", "list"], ["-C", "{p}", "list", "--limit", "7"],
                                  ["--project={p}", "list", "--json", "--limit=3"], ["-C", "{p}", "list", "--json"]])
def test_a_plain_list_command_line_is_read_as_the_parser_reads_it(
        project: Path, form: list[str], capsys: pytest.CaptureFixture[str]):
    _ended_project(project)
    argv = [word.format(p=project) for word in form]
    quick = cli._quick_list_args(argv)
    assert quick is not None
    assert quicklist.run(quick) == 0
    by_hand = capsys.readouterr()
    assert quicklist.run(cli._parse(argv)) == 0
    assert capsys.readouterr() == by_hand


@pytest.mark.parametrize("argv", [["list", "-n", "5"], ["list", "--limit", "-1"], ["list", "--limit", "x"],
                                  ["list", "--json", "--json"], ["list", "--all"], ["--proj", ".", "list"],
                                  ["status"], ["list", "--limit"], ["--project", "", "list"], ["-C"]])
def test_any_other_command_line_is_left_to_the_parser(argv: list[str]):
    assert cli._quick_list_args(argv) is None


def test_the_quick_list_loads_no_argument_parser(project: Path):
    _ended_project(project)
    env = {k: v for k, v in os.environ.items() if k != quicklist.ENV_NO_QUICK}
    result = subprocess.run([sys.executable, "-X", "importtime", "-m", "celline_jobs_nb", "--project", str(project),
                             "list"], capture_output=True, text=True, timeout=60, env=env)
    assert result.returncode == 0 and "200 older ended jobs not shown" in result.stdout
    imported = {line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines()
                if line.startswith("import time")}
    assert "celline_jobs_nb.quicklist" in imported
    assert not {"argparse", "celline_jobs_nb.cli.parser", "celline_jobs_nb.cli.common"} & imported
