"""The PBS batch script and qsub command line: recorded renderings (diffed), directives, quoting,
and running the script with plain bash (as pbs_mom or slurmd would: #PBS lines are comments).

Set CELLINE_JOBS_UPDATE_GOLDEN=1 to rewrite tests/data/pbs/script-*.sh after an intended change
(then read the diff before committing it).
"""

from __future__ import annotations

import difflib
import os
import re
import shlex
import socket
import subprocess
from pathlib import Path

import pytest

from celline_jobs_nb.core.errors import SubmitError
from celline_jobs_nb.core.jobfiles import read_exit_file
from celline_jobs_nb.core.models import JobInfo
from celline_jobs_nb.core.paths import ENV_JOB_ID, ENV_PROGRESS_FILE, ENV_PROJECT, ProjectPaths
from celline_jobs_nb.core.resources import Resources
from celline_jobs_nb.schedulers.pbs import (
    OPENPBS,
    TORQUE,
    TORQUE_SLURM,
    pbs_directives,
    pbs_job_name,
    pbs_memory,
    pbs_walltime,
    qstat_command,
    qsub_command,
    render_pbs_script,
)

DATA = Path(__file__).resolve().parents[1] / "data" / "pbs"
NASTY = 'a "b" $c <d> `id` \\ # \'q\' | & ; $(touch PWNED)\nsecond line'
ROOT = "/home/user/my project 100%"
PATHS = ProjectPaths(Path(ROOT))


def plain_job(root: str) -> JobInfo:
    return JobInfo(
        job_id="1m8abcdefgh12",
        name=NASTY,
        command='echo "name=$CELLINE_JOB_ID"; printf "%s\\n" \'single quotes\' "$GREETING"; pwd; exit 3',
        working_dir=f"{root}/work dir",
        resources=Resources.parse({"cpus": 4, "mem": "32G", "time": "1-12:00:00", "queue": "long.q",
                                   "account": "lab-1", "gpus": 1, "nodes": 1,
                                   "extra": ["-m ae", "#PBS -M me@lab.org"]}),
        scheduler="pbs",
        dependency_kind="afterok",
        metadata={"env": {"GREETING": "hello $USER `id`\nline 2", "EMPTY": ""},
                  "native_dependencies": ["123", "124"]},
    )


def array_job(root: str) -> JobInfo:
    return JobInfo(job_id="1m8abcdefgh34", name="count sample", scheduler="pbs", working_dir=root,
                   command="celline run count --sample $CELLINE_ARRAY_TASK_INDEX", metadata={"array": "1-4"},
                   resources=Resources.parse({"cpus": 2, "mem": "1536M"}))


GOLDEN = [("script-torque-slurm-plain.sh", plain_job, TORQUE_SLURM, "node7"),
          ("script-openpbs-array.sh", array_job, OPENPBS, None),
          ("script-torque-plain.sh", plain_job, TORQUE, "bigmem")]


@pytest.mark.parametrize(("name", "make", "flavour", "server"), GOLDEN)
def test_rendered_script_matches_the_recorded_one(name, make, flavour, server):
    rendered = render_pbs_script(make(ROOT), PATHS, flavour, server)
    golden = DATA / name
    if os.environ.get("CELLINE_JOBS_UPDATE_GOLDEN") == "1":
        golden.write_text(rendered, encoding="utf-8")
    expected = golden.read_text(encoding="utf-8")
    diff = "".join(difflib.unified_diff(expected.splitlines(True), rendered.splitlines(True), str(golden), "rendered"))
    assert rendered == expected, f"the rendered script changed:\n{diff}"


def test_rendering_is_deterministic():
    assert render_pbs_script(plain_job(ROOT), PATHS) == render_pbs_script(plain_job(ROOT), PATHS)


@pytest.mark.parametrize("flavour", [TORQUE_SLURM, TORQUE, OPENPBS])
def test_every_directive_is_one_comment_line_before_any_command(flavour):
    lines = render_pbs_script(plain_job(ROOT), PATHS, flavour).split("\n")
    first_command = next(i for i, line in enumerate(lines) if line and not line.startswith("#"))
    directives = [i for i, line in enumerate(lines) if line.startswith("#PBS")]
    assert directives and max(directives) < first_command  # qsub stops reading at the first command
    for line in (lines[i] for i in directives):
        assert not re.search(r"[\"'`$;&|<>\\]", line.replace("#PBS -M me@lab.org", "")), line  # nothing to quote


def test_directives_per_flavour():
    job = plain_job(ROOT)
    wrapper = pbs_directives(job, PATHS, TORQUE_SLURM, "node7")
    assert wrapper[:2] == ["#PBS -N a_b_c_d_id_q_touch_PWNED_second_line", "#PBS -S /bin/bash"]
    assert "#PBS -l nodes=1:ppn=4:gpus=1:node7" in wrapper  # celline's "-l nodes=1:ppn=N:<server>"
    assert "#PBS -l mem=32gb" in wrapper and "#PBS -l walltime=36:00:00" in wrapper
    assert "#PBS -q long.q" in wrapper and "#PBS -A lab-1" in wrapper
    assert "#PBS -W depend=afterok:123:124" in wrapper
    assert wrapper[-2:] == ["#PBS -m ae", "#PBS -M me@lab.org"]  # extras last: they can override
    torque = pbs_directives(job, PATHS, TORQUE)
    assert torque[0] == "#PBS -N a_b_c_d_id_q_to"  # Torque: 15 characters
    openpbs = pbs_directives(job, PATHS, OPENPBS, "ignored")
    assert "#PBS -l select=1:ncpus=4:mem=32gb:ngpus=1" in openpbs
    assert not any("nodes=" in line or "ignored" in line for line in openpbs)
    arr = array_job(ROOT)
    assert "#PBS -t 1-4" in pbs_directives(arr, PATHS, TORQUE_SLURM)
    assert "#PBS -t 1-4" in pbs_directives(arr, PATHS, TORQUE)
    assert "#PBS -J 1-4" in pbs_directives(arr, PATHS, OPENPBS)


def test_names_sizes_and_times():
    assert pbs_job_name("Count SRR2584863") == "Count_SRR2584863"
    assert pbs_job_name("123 go") == "j123_go" and pbs_job_name("\n") == "j"
    assert pbs_job_name("ü" * 300, OPENPBS) == "j"
    assert len(pbs_job_name("x" * 5000, OPENPBS)) == 236 and len(pbs_job_name("x" * 5000, TORQUE)) == 15
    assert pbs_memory(32 * 1024**3) == "32gb" and pbs_memory(1536 * 1024**2) == "1536mb"
    assert pbs_memory(1000) == "1kb" and pbs_memory(2 * 1024**4) == "2tb"
    assert pbs_walltime(90) == "00:01:30" and pbs_walltime(3 * 86400 + 5) == "72:00:05"


def test_array_specs_are_checked_in_the_flavours_syntax():
    job = array_job(ROOT)
    for flavour, spec in ((TORQUE, "1-4:2"), (OPENPBS, "1,3,5"), (OPENPBS, "4-1"), (TORQUE_SLURM, "1-4; echo")):
        job.metadata["array"] = spec
        with pytest.raises(SubmitError, match="array"):
            render_pbs_script(job, PATHS, flavour)
    for flavour, spec in ((TORQUE, "0,10,20-25%2"), (OPENPBS, "1-10:2%3"), (TORQUE_SLURM, "1-7:2%2")):
        job.metadata["array"] = spec
        assert f" {spec}" in render_pbs_script(job, PATHS, flavour)


def test_invalid_inputs_are_refused_before_qsub():
    job = plain_job(ROOT)
    job.metadata["env"] = {"BAD NAME": "x"}
    with pytest.raises(SubmitError, match="environment variable"):
        render_pbs_script(job, PATHS)
    job = plain_job(ROOT)
    job.metadata["native_dependencies"] = ["123; rm -rf /"]
    with pytest.raises(SubmitError, match="dependency"):
        render_pbs_script(job, PATHS)
    job = plain_job(ROOT)
    job.dependency_kind = "before"
    with pytest.raises(SubmitError, match="dependency kind"):
        render_pbs_script(job, PATHS)
    job = plain_job(ROOT)
    job.metadata["native_dependencies"] = ["1501_3"]
    with pytest.raises(SubmitError, match="array task"):
        render_pbs_script(job, PATHS, TORQUE_SLURM)


def test_directives_survive_unvalidated_rows():
    """Rows written by older versions are not validated: a newline in an extra line never starts a
    line of its own."""
    job = plain_job(ROOT)
    object.__setattr__(job.resources, "extra", ("-m ae\necho pwned", "#PBS -V\r\n#PBS -W x=y"))
    lines = pbs_directives(job, PATHS, TORQUE)
    assert "#PBS -m ae echo pwned" in lines and "#PBS -V  #PBS -W x=y" in lines


def test_qsub_command_lines():
    log, script = "/p/my proj 100%/logs/j.log", "/p/my proj 100%/.celline/scripts/j.sh"
    # The wrapper pastes its arguments into an sbatch command line for /bin/sh: quoted for it, and
    # "%" doubled (sbatch expands %j in -o).
    wrapper = qsub_command(script, log, TORQUE_SLURM)
    assert wrapper == ["qsub", "-j", "oe", "-o", "'/p/my proj 100%%/logs/j.log'",
                       "'/p/my proj 100%/.celline/scripts/j.sh'"]
    assert shlex.split(" ".join(wrapper[4:])) == ["/p/my proj 100%%/logs/j.log", script]
    assert qsub_command(script, log, OPENPBS) == ["qsub", "-j", "oe", "-o", log, script]  # argv, no shell
    colon = qsub_command("/s.sh", "/data/run_12:00/logs/j.log", TORQUE)  # PBS reads -o as [host:]path
    assert colon[4] == f"{socket.gethostname()}:/data/run_12:00/logs/j.log"
    assert qstat_command(["1", "2"], TORQUE_SLURM) == ["qstat", "-f", "1", "2"]
    assert qstat_command(["1.s"], OPENPBS) == ["qstat", "-f", "-F", "json", "-x", "-t", "1.s"]
    assert qstat_command(["1.s"], TORQUE) == ["qstat", "-x", "-t", "1.s"]


def test_bash_accepts_the_scripts(tmp_path):
    for _name, make, flavour, server in GOLDEN:
        path = tmp_path / "s.sh"
        path.write_text(render_pbs_script(make(ROOT), PATHS, flavour, server), encoding="utf-8")
        subprocess.run(["bash", "-n", str(path)], check=True)


def run_script(tmp_path: Path, job: JobInfo, extra_env: dict[str, str] | None = None,
               workdir: str | None = None) -> tuple[str, ProjectPaths]:
    """Run a rendered script with plain bash from another directory (PBS starts jobs in $HOME)."""
    root = tmp_path / "proj $x 'q'"
    paths = ProjectPaths(root).ensure()
    (root / "work dir").mkdir(exist_ok=True)
    job.working_dir = workdir or str(root / "work dir")
    script = paths.script_file(job.job_id)
    script.parent.mkdir(parents=True, exist_ok=True)
    script.write_text(render_pbs_script(job, paths), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "CELLINE_", "PBS_"))}
    env.update(extra_env or {})
    result = subprocess.run(["bash", str(script)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=30)
    return result.stdout + result.stderr, paths


def test_running_the_script_keeps_every_value_intact(tmp_path):
    job = plain_job("unused")
    out, paths = run_script(tmp_path, job)
    assert out == f"name={job.job_id}\nsingle quotes\nhello $USER `id`\nline 2\n{job.working_dir}\n"
    record = read_exit_file(paths.exit_file(job.job_id))
    assert record is not None and (record.exit_code, record.signal) == (3, None)
    assert not list(tmp_path.rglob("PWNED"))  # nothing in the name was executed
    assert not list(paths.logs_dir.glob("*.tmp*"))  # written atomically, no leftovers


def test_a_missing_working_directory_is_an_exit_code_not_a_silent_run_elsewhere(tmp_path):
    job = JobInfo(job_id="1m8nodir00001", name="n", command="touch ran-here", scheduler="pbs")
    out, paths = run_script(tmp_path, job, workdir=str(tmp_path / "gone"))
    assert "cannot enter the working directory" in out and not list(tmp_path.rglob("ran-here"))
    record = read_exit_file(paths.exit_file(job.job_id))
    assert record is not None and record.exit_code == 1


@pytest.mark.parametrize("variable", ["PBS_ARRAYID", "PBS_ARRAY_INDEX", "SLURM_ARRAY_TASK_ID"])
def test_an_array_task_uses_its_own_files_and_log(tmp_path, variable):
    job = array_job("unused")
    job.command = 'echo "$CELLINE_JOB_ID $CELLINE_JOBS_PROGRESS_FILE"'
    out, paths = run_script(tmp_path, job, {variable: "3"})
    child = f"{job.job_id}_3"
    assert out == ""  # the task writes its own log, logs/<job id>_<index>.log
    assert paths.log_file(child).read_text() == f"{child} {paths.progress_file(child)}\n"
    record = read_exit_file(paths.exit_file(child))
    assert record is not None and record.exit_code == 0


def test_template_names_match_the_package_environment():
    script = render_pbs_script(array_job(ROOT), PATHS)
    assert re.search(rf"^export {ENV_PROGRESS_FILE}=", script, re.M)
    assert re.search(rf"^export {ENV_PROJECT}=", script, re.M)
    assert re.search(rf"^export {ENV_JOB_ID}=", script, re.M)
