"""Settings: celline's ``[execution]`` (as celline applies it) and our ``[jobs]`` table, validated
with one-line errors, in ``setting.toml`` or ``.celline/jobs.toml``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from celline_jobs_nb.core.errors import SettingsError
from celline_jobs_nb.core.paths import ProjectPaths
from celline_jobs_nb.core.settings import MULTITHREADING, PBS, CellineExecution, JobsSettings
from celline_jobs_nb.monitor import JobMonitor

# What celline 1.1.0's Project writes for a new project (Setting.as_dict through toml.dump).
CELLINE_SETTING = """[project]
name = "pbmc"
version = "0.01"

[fetch]
wait_time = 4

[R]
r_path = ""

[execution]
system = "{system}"
nthread = {nthread}
pbs_server = "{server}"

[custom_functions]
directory = "functions"
enabled = true
"""


def settings(project: Path, system: str = MULTITHREADING, nthread: int = 1, server: str = "",
             extra: str = "", jobs_toml: str | None = None) -> JobsSettings:
    (project / "setting.toml").write_text(CELLINE_SETTING.format(system=system, nthread=nthread, server=server)
                                          + extra)
    if jobs_toml is not None:
        (project / ".celline").mkdir(exist_ok=True)
        (project / ".celline" / "jobs.toml").write_text(jobs_toml)
    return JobsSettings.load(ProjectPaths.of(project))


def test_multithreading_means_local_with_nthread_slots(project: Path) -> None:
    loaded = settings(project, nthread=6)
    assert loaded.default_scheduler == "local"
    assert loaded.execution == CellineExecution(MULTITHREADING, 6, None, MULTITHREADING)
    assert JobMonitor(project).adapter("local").max_parallel == 6  # type: ignore[attr-defined]


def test_pbs_with_a_server_means_pbs(project: Path) -> None:
    loaded = settings(project, system=PBS, nthread=8, server="cluster01")
    assert loaded.default_scheduler == "pbs"
    assert loaded.execution.pbs and loaded.execution.pbs_server == "cluster01"


def test_pbs_without_a_server_runs_locally_like_celline(project: Path) -> None:
    # celline warns and runs its jobs with bash then; we follow what it really does.
    loaded = settings(project, system=PBS)
    assert loaded.default_scheduler == "local" and not loaded.execution.pbs
    assert loaded.execution.configured_system == PBS


def test_no_setting_toml_at_all(project: Path) -> None:
    loaded = JobsSettings.load(ProjectPaths.of(project))
    assert loaded.default_scheduler == "local" and loaded.execution == CellineExecution()


def test_jobs_table_and_jobs_toml_key_by_key(project: Path) -> None:
    loaded = settings(project, system=PBS, server="cluster01",
                      extra='\n[jobs]\ndefault_scheduler = "slurm"\nmax_parallel = 3\n'
                            "[jobs.poll_interval]\nslurm = 60\n",
                      jobs_toml='[jobs]\nmax_parallel = 5\n[jobs.poll_interval]\ncelline = 20\n')
    assert loaded.default_scheduler == "slurm"  # from setting.toml: jobs.toml does not set it
    assert loaded.max_parallel == 5  # jobs.toml wins
    assert loaded.poll_interval == {"celline": 20.0}  # a table is replaced whole, not merged
    # jobs.toml may also hold the keys at top level.
    assert settings(project, jobs_toml="max_parallel = 2\n").max_parallel == 2


@pytest.mark.parametrize(("execution", "jobs", "message"), [
    ('system = "pbs"', "", '[execution] system must be "multithreading" or "PBS"'),
    ('system = "slurm"', "", "not 'slurm'"),
    ("nthread = 0", "", "[execution] nthread must be a whole number >= 1, not 0"),
    ('nthread = "8"', "", "[execution] nthread must be a whole number >= 1, not '8'"),
    ('pbs_server = "two words"', "", "[execution] pbs_server must be a PBS server or queue name"),
    ("pbs_server = 3", "", "pbs_server must be"),
    ("", 'default_scheduler = "SLURM!"', "[jobs] default_scheduler must be a scheduler name"),
    ("", "default_scheduler = 3", "[jobs] default_scheduler must be"),
    ("", "max_parallel = 0", "[jobs] max_parallel must be a whole number >= 1"),
    ("", "poll_interval = { slurm = -1 }", "[jobs.poll_interval] must map scheduler names to seconds > 0"),
    ("", 'poll_interval = { "Not A Name" = 5 }', "[jobs.poll_interval] must map scheduler names"),
    ("", "discover = true", "unknown [jobs] setting 'discover'"),
])
def test_bad_settings_are_one_line_errors(project: Path, execution: str, jobs: str, message: str) -> None:
    text = (f"[execution]\n{execution}\n" if execution else "") + (f"[jobs]\n{jobs}\n" if jobs else "")
    (project / "setting.toml").write_text(text)
    with pytest.raises(SettingsError) as info:
        JobsSettings.load(ProjectPaths.of(project))
    assert message in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize(("where", "text", "message"), [
    ("setting.toml", 'jobs = "local"\n', "[jobs] in "),
    ("setting.toml", 'execution = "PBS"\n', "[execution] in setting.toml must be a table"),
    (".celline/jobs.toml", 'jobs = ["x"]\n', "[jobs] in "),
    ("setting.toml", "[execution\nsystem = 1\n", "is not valid TOML"),
])
def test_malformed_tables(project: Path, where: str, text: str, message: str) -> None:
    path = project / where
    path.parent.mkdir(exist_ok=True)
    path.write_text(text)
    with pytest.raises(SettingsError, match=message.replace("[", r"\[")):
        JobsSettings.load(ProjectPaths.of(project))


def test_the_cli_reports_a_bad_setting_in_one_line_and_exit_2(project: Path) -> None:
    (project / "setting.toml").write_text(CELLINE_SETTING.format(system="pbs", nthread=4, server="cluster01"))
    result = subprocess.run([sys.executable, "-m", "celline_jobs_nb", "--project", str(project), "list"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert result.stderr.startswith('celline-jobs: error: [execution] system must be "multithreading" or "PBS"')
