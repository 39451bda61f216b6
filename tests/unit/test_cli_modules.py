"""`celline-jobs` imports a command's module (cli/jobs.py, history.py, project.py) only when that command
runs, every command the parser offers runs, and the names ``celline_jobs_nb.cli`` had before it was split
into modules are still there."""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from celline_jobs_nb import cli
from celline_jobs_nb.core.models import JobInfo, JobStatus, new_job_id, utcnow
from celline_jobs_nb.core.paths import ProjectPaths
from celline_jobs_nb.store import JobStore
from celline_jobs_nb.store.backup import create_backup

COMMAND_MODULES = {"celline_jobs_nb.cli.jobs", "celline_jobs_nb.cli.history", "celline_jobs_nb.cli.project"}


def _ended_project(project: Path) -> None:
    """Three jobs that ended an hour ago and today's backup: `list` needs no monitor."""
    ended = utcnow() - timedelta(hours=1)
    store = JobStore(project)
    store.insert_many([JobInfo(job_id=new_job_id(), name=f"job{i}", command="true", status=JobStatus.COMPLETED,
                               created_at=ended, submit_time=ended, start_time=ended, end_time=ended, exit_code=0)
                       for i in range(3)])
    store.close()
    create_backup(ProjectPaths.of(project))


def _run(*argv: str) -> tuple[str, set[str]]:
    """Run one command in a fresh interpreter: its output and the package's modules it imported."""
    code = ("import sys\nfrom celline_jobs_nb.cli import main\n"
            f"code = main({list(argv)!r})\n"
            "print('MODULES', ' '.join(m for m in sys.modules if m.startswith('celline_jobs_nb')))\n"
            "sys.exit(code)\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    output, _, modules = result.stdout.rpartition("MODULES ")
    return output, set(modules.split())


def test_list_of_an_ended_project_loads_no_command_module_and_no_monitor(project: Path):
    _ended_project(project)
    output, modules = _run("--project", str(project), "list")
    assert output.count("completed") == 3
    assert not modules & (COMMAND_MODULES | {"celline_jobs_nb.monitor"}), sorted(modules)


@pytest.mark.parametrize(("argv", "module"), [
    (["list", "--all"], "celline_jobs_nb.cli.jobs"),
    (["history"], "celline_jobs_nb.cli.history"),
    (["db", "check"], "celline_jobs_nb.cli.project"),
])
def test_a_command_loads_its_own_module_only(project: Path, argv: list[str], module: str):
    _ended_project(project)
    output, modules = _run("--project", str(project), *argv)
    assert output.strip()
    assert modules & COMMAND_MODULES == {module}


def test_every_command_of_the_parser_runs_a_function():
    assert set(cli.COMMANDS) == set(cli.command_parsers())
    assert all(callable(cli.COMMANDS[name]) for name in cli.COMMANDS)
    assert "frobnicate" not in cli.COMMANDS
    with pytest.raises(KeyError):
        cli.COMMANDS["frobnicate"]


@pytest.mark.parametrize("name", ["main", "build_parser", "command_parsers", "COMMANDS", "EXIT_USAGE", "UsageError",
                                  "cmd_list", "cmd_history", "cmd_serve", "_parse", "_jobs_table", "_monitor",
                                  "_print_json", "_parse_when", "_resource_changes", "_write_stdout"])
def test_the_names_of_the_cli_module_before_the_split_are_still_there(name: str):
    assert getattr(cli, name) is not None


def test_an_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'nothing_here'"):
        cli.nothing_here  # noqa: B018
