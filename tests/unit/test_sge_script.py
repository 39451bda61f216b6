"""The Grid Engine batch script, qsub command line and [jobs.sge] settings: directives for cpus
(parallel environment), memory per slot, run time, queue, project, arrays and dependencies;
what Grid Engine cannot take is refused before qsub runs."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from celline_jobs_nb.core.errors import SettingsError, SubmitError
from celline_jobs_nb.core.models import JobInfo, JobStatus
from celline_jobs_nb.core.paths import ProjectPaths
from celline_jobs_nb.core.resources import Resources
from celline_jobs_nb.core.settings import JobsSettings, SgeSettings
from celline_jobs_nb.schedulers.sge import qsub_command, render_sge_script, sge_array, sge_directives, sge_job_name


def job(**fields: object) -> JobInfo:
    values: dict = {"job_id": "j1", "name": "count GSM1", "status": JobStatus.PENDING, "command": "echo hi",
                    "scheduler": "sge"}
    values.update(fields)
    return JobInfo(**values)


def directives(res: Resources, options: SgeSettings = SgeSettings(), **fields: object) -> list[str]:
    return sge_directives(job(resources=res, **fields), options)


def test_cpus_memory_and_run_time() -> None:
    assert directives(Resources(cpus=4, memory=8 * 1024 ** 3, walltime=5400)) == [
        "#$ -N count_GSM1", "#$ -S /bin/bash", "#$ -pe smp 4", "#$ -l h_vmem=2048M,h_rt=1:30:00"]
    site = SgeSettings(pe="threads", memory=("h_vmem", "mem_free"), memory_per_slot=False)
    assert directives(Resources(cpus=2, memory=3 * 1024 ** 3), site)[2:] == [
        "#$ -pe threads 2", "#$ -l h_vmem=3072M,mem_free=3072M"]
    assert directives(Resources(memory=10**9), SgeSettings(memory=()))[2:] == []  # memory left out
    assert directives(Resources(cpus=1, gpus=1, partition="long.q", account="lab_x"))[2:] == [
        "#$ -l gpu=1", "#$ -q long.q", "#$ -P lab_x"]


def test_arrays() -> None:
    assert sge_array("1-10%2") == ("1-10:1", 2) and sge_array("1,3,5") == ("1-5:2", None)
    assert sge_array("7") == ("7-7:1", None) and sge_array("2-20:3") == ("2-20:3", None)
    for bad in ("0-3", "1,2,4", "a-b"):
        with pytest.raises(SubmitError):
            sge_array(bad)
    lines = directives(Resources(), metadata={"array": "1-20%4"})
    assert lines[2:] == ["#$ -t 1-20:1", "#$ -tc 4"]


def test_dependencies_hold_for_afterok_only() -> None:
    afterok = directives(Resources(), metadata={"native_dependencies": ["12", "13.2"]}, dependency_kind="afterok",
                         depends_on=["a", "b"])
    assert afterok[2:] == ["#$ -hold_jid 12,13", "#$ -h"]  # -hold_jid only orders: we release it
    afterany = directives(Resources(), metadata={"native_dependencies": ["12"]}, dependency_kind="afterany",
                          depends_on=["a"])
    assert afterany[2:] == ["#$ -hold_jid 12"]  # exactly Grid Engine's own meaning
    with pytest.raises(SubmitError, match="not a job number"):
        directives(Resources(), metadata={"native_dependencies": ["x;rm"]}, depends_on=["a"])
    with pytest.raises(SubmitError, match="invalid Grid Engine dependency kind 'after'"):
        directives(Resources(), metadata={"native_dependencies": ["12"]}, depends_on=["a"], dependency_kind="after")


def test_names_and_refusals() -> None:
    assert sge_job_name('q"uo<b>te') == "q_uo_b_te" and sge_job_name("123") == "j123"
    assert sge_job_name("a" * 500) == "a" * 200
    with pytest.raises(SubmitError, match="one host"):
        directives(Resources(nodes=2))
    extra = directives(Resources(extra=("-l scratch=10G", "#$ -m e\trm -rf /")))
    assert extra[2:] == ["#$ -l scratch=10G", "#$ -m e rm -rf /"]  # one comment line each


def test_qsub_command_line(tmp_path: Path) -> None:
    paths = ProjectPaths.of(tmp_path / "run_12:00")
    assert qsub_command("/s.sh", job(), paths) == [
        "qsub", "-terse", "-j", "y", "-o", f":{paths.log_file('j1')}", "/s.sh"]  # [host:]path: empty host
    argv = qsub_command("/s.sh", job(metadata={"array": "1-3"}), ProjectPaths.of(tmp_path))
    assert argv[5] == str(ProjectPaths.of(tmp_path).logs_dir / "j1_$TASK_ID.log")


def test_the_script_is_valid_bash_and_quotes_job_text(tmp_path: Path) -> None:
    paths = ProjectPaths.of(tmp_path)
    text = render_sge_script(job(command="echo \"$HOME\" 'x'; exit 3", metadata={"array": "1-2"}), paths,
                             SgeSettings())
    assert subprocess.run(["bash", "-n"], input=text, text=True).returncode == 0
    lines = text.splitlines()
    first_command = next(i for i, line in enumerate(lines) if line and not line.startswith("#"))
    assert all(i < first_command for i, line in enumerate(lines) if line.startswith("#$"))
    assert "/bin/bash -c 'echo \"$HOME\" '\"'\"'x'\"'\"'; exit 3'" in text
    assert 'export CELLINE_ARRAY_TASK_INDEX="${SGE_TASK_ID}"' in text


def test_settings_table(tmp_path: Path) -> None:
    assert SgeSettings.parse({"pe": "mpi", "memory": "mem_free"}) == SgeSettings("mpi", ("mem_free",))
    for bad, message in (({"pe": "a b"}, "pe must be"), ({"memory": [1]}, "memory must be"),
                         ({"memory_per_slot": "yes"}, "true or false"), ({"queue": "x"}, "unknown")):
        with pytest.raises(SettingsError, match=message):
            SgeSettings.parse(bad)
    root = tmp_path / "p"
    (root / ".celline").mkdir(parents=True)
    (root / ".celline" / "jobs.toml").write_text('[jobs]\ndefault_scheduler = "sge"\n[jobs.sge]\npe = "threads"\n')
    settings = JobsSettings.load(ProjectPaths.of(root))
    assert (settings.default_scheduler, settings.sge.pe) == ("sge", "threads")
