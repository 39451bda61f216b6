"""The SLURM batch script: a recorded rendering (diffed), quoting, and running it with plain bash.

Set CELLINE_JOBS_UPDATE_GOLDEN=1 to rewrite tests/data/slurm/script-*.sh after an intended change
(then read the diff before committing it).
"""

from __future__ import annotations

import difflib
import json
import os
import re
import subprocess
from pathlib import Path

import pytest

from celline_jobs_nb.core.errors import SubmitError
from celline_jobs_nb.core.jobfiles import read_exit_file
from celline_jobs_nb.core.models import JobInfo
from celline_jobs_nb.core.paths import ENV_JOB_ID, ENV_PROGRESS_FILE, ENV_PROJECT, ProjectPaths
from celline_jobs_nb.core.resources import Resources
from celline_jobs_nb.schedulers.slurm import (
    render_batch_script,
    sbatch_directives,
    sbatch_quote,
    slurm_filename,
    slurm_job_name,
)

DATA = Path(__file__).resolve().parents[1] / "data" / "slurm"
NASTY = 'a "b" $c <d> `id` \\ # \'q\' | & ; $(touch PWNED)\nsecond line'


def plain_job(root: str) -> JobInfo:
    return JobInfo(
        job_id="1m8abcdefgh12",
        name=NASTY,
        command='echo "name=$CELLINE_JOB_ID"; printf "%s\\n" \'single quotes\' "$GREETING"; exit 3',
        working_dir=f"{root}/work dir",
        resources=Resources.parse({"cpus": 4, "mem": "32G", "time": "1-12:00:00", "partition": "long.q",
                                   "account": "lab-1", "gpus": 1, "nodes": 1,
                                   "extra": ["--qos=high", "#SBATCH --constraint=avx2"]}),
        scheduler="slurm",
        dependency_kind="afterok",
        metadata={"env": {"GREETING": "hello $USER `id`\nline 2", "EMPTY": ""},
                  "native_dependencies": ["123", "124"]},
    )


def array_job(root: str) -> JobInfo:
    return JobInfo(job_id="1m8abcdefgh34", name="count sample", scheduler="slurm", working_dir=root,
                   command="celline run count --sample $SLURM_ARRAY_TASK_ID", metadata={"array": "1-4%2"})


ROOT = "/home/user/my project 100%"
PATHS = ProjectPaths(Path(ROOT))


@pytest.mark.parametrize(("name", "make"), [("script-plain.sh", plain_job), ("script-array.sh", array_job)])
def test_rendered_script_matches_the_recorded_one(name, make):
    rendered = render_batch_script(make(ROOT), PATHS)
    golden = DATA / name
    if os.environ.get("CELLINE_JOBS_UPDATE_GOLDEN") == "1":
        golden.write_text(rendered, encoding="utf-8")
    expected = golden.read_text(encoding="utf-8")
    diff = "".join(difflib.unified_diff(expected.splitlines(True), rendered.splitlines(True), str(golden), "rendered"))
    assert rendered == expected, f"the rendered script changed:\n{diff}"


def test_rendering_is_deterministic():
    assert render_batch_script(plain_job(ROOT), PATHS) == render_batch_script(plain_job(ROOT), PATHS)


def test_every_directive_is_one_comment_line_before_any_command():
    script = render_batch_script(plain_job(ROOT), PATHS)
    lines = script.split("\n")
    first_command = next(i for i, line in enumerate(lines) if line and not line.startswith("#"))
    directives = [i for i, line in enumerate(lines) if line.startswith("#SBATCH")]
    assert directives and max(directives) < first_command  # sbatch stops reading at the first command
    name_line = next(line for line in lines if line.startswith("#SBATCH --job-name="))
    assert name_line == '#SBATCH --job-name="a \\"b\\" $c <d> `id` \\\\ # \'q\' | & ; $(touch PWNED) second line"'
    assert "#SBATCH --dependency=afterok:123:124" in lines and "#SBATCH --kill-on-invalid-dep=yes" in lines
    assert '#SBATCH --output="/home/user/my project 100%%/logs/1m8abcdefgh12.log"' in lines
    assert lines.index("#SBATCH --qos=high") > lines.index("#SBATCH --nodes=1")  # extras last: they can override


def test_directives_survive_unvalidated_rows():
    """Resources validates partition/account/extra; rows written by older versions are not, so the
    adapter sanitises again: a newline in an extra line never starts a line of its own."""
    job = plain_job(ROOT)
    resources = job.resources
    object.__setattr__(resources, "extra", ("--constraint=avx2\necho pwned", "#SBATCH --qos=x\r\n#SBATCH --wrap=y"))
    object.__setattr__(resources, "partition", 'long "queue"\nrm -rf /')
    lines = sbatch_directives(job, PATHS)
    assert "#SBATCH --constraint=avx2 echo pwned" in lines
    assert "#SBATCH --qos=x  #SBATCH --wrap=y" in lines
    assert '#SBATCH --partition="long \\"queue\\" rm -rf /"' in lines
    assert all("\n" not in line and "\r" not in line for line in lines)


def test_directive_quoting_helpers():
    assert sbatch_quote('x"y\\z') == '"x\\"y\\\\z"'
    assert sbatch_quote("a\nb\r\tc\x00") == '"a b  c "'
    assert slurm_filename("/a%b/%j") == "/a%%b/%%j"
    assert slurm_job_name("  one\n two  ") == "one two" and slurm_job_name("\n") == "celline-job"
    assert len(slurm_job_name("x" * 5000)) == 200


def test_array_logs_and_ids_per_task():
    lines = sbatch_directives(array_job(ROOT), PATHS)
    assert "#SBATCH --array=1-4%2" in lines
    assert '#SBATCH --output="/home/user/my project 100%%/logs/1m8abcdefgh34_%a.log"' in lines


def test_invalid_inputs_are_refused_before_sbatch():
    job = plain_job(ROOT)
    job.metadata["env"] = {"BAD NAME": "x"}
    with pytest.raises(SubmitError, match="environment variable"):
        render_batch_script(job, PATHS)
    job = plain_job(ROOT)
    job.metadata["native_dependencies"] = ["123; rm -rf /"]
    with pytest.raises(SubmitError, match=r"dependency on '123; rm -rf /': not a SLURM job id \(123 or 123_4\)"):
        render_batch_script(job, PATHS)
    job = plain_job(ROOT)
    job.metadata["native_dependencies"] = ["123"]
    job.dependency_kind = "before"
    with pytest.raises(SubmitError, match="dependency kind 'before': use afterok, afterany, afternotok"):
        render_batch_script(job, PATHS)
    job = array_job(ROOT)
    job.metadata["array"] = "1-4; echo"
    with pytest.raises(SubmitError, match="array"):
        render_batch_script(job, PATHS)


def test_bash_accepts_the_scripts(tmp_path):
    for make in (plain_job, array_job):
        path = tmp_path / "s.sh"
        path.write_text(render_batch_script(make(ROOT), PATHS), encoding="utf-8")
        subprocess.run(["bash", "-n", str(path)], check=True)


def run_script(tmp_path: Path, job: JobInfo, extra_env: dict[str, str] | None = None) -> tuple[Path, ProjectPaths]:
    """Run a rendered script with plain bash, as slurmd would (the #SBATCH lines are comments)."""
    root = tmp_path / "proj $x 'q'"
    paths = ProjectPaths(root).ensure()
    job.working_dir = str(root)
    script = paths.script_file(job.job_id)
    script.parent.mkdir(parents=True, exist_ok=True)
    script.write_text(render_batch_script(job, paths), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "CELLINE_"))}
    env.update(extra_env or {})
    log = paths.log_file(job.job_id) if not job.metadata.get("array") else paths.logs_dir / "array.log"
    with log.open("wb") as out:
        subprocess.run(["bash", str(script)], cwd=root, env=env, stdout=out, stderr=subprocess.STDOUT, timeout=30)
    return log, paths


def test_running_the_script_keeps_every_value_intact(tmp_path):
    job = plain_job("unused")
    log, paths = run_script(tmp_path, job)
    text = log.read_text()
    assert text == f"name={job.job_id}\nsingle quotes\nhello $USER `id`\nline 2\n"
    record = read_exit_file(paths.exit_file(job.job_id))
    assert record is not None and (record.exit_code, record.signal) == (3, None)
    assert not list(tmp_path.rglob("PWNED"))  # nothing in the name was executed
    assert not list(paths.logs_dir.glob("*.tmp*"))  # written atomically, no leftovers


def test_a_killed_command_is_recorded_as_a_signal(tmp_path):
    job = JobInfo(job_id="1m8killed0001", name="k", command="kill -9 $$", scheduler="slurm")
    _log, paths = run_script(tmp_path, job)
    raw = json.loads(paths.exit_file(job.job_id).read_text())
    assert raw["shell"] is True and raw["exit_code"] == 137
    record = read_exit_file(paths.exit_file(job.job_id))
    assert record is not None and (record.exit_code, record.signal) == (None, 9)


def test_an_array_task_uses_its_own_files(tmp_path):
    job = array_job("unused")
    job.command = 'echo "$CELLINE_JOB_ID $CELLINE_JOBS_PROGRESS_FILE"'
    log, paths = run_script(tmp_path, job, {"SLURM_ARRAY_TASK_ID": "3"})
    child = f"{job.job_id}_3"
    assert log.read_text() == f"{child} {paths.progress_file(child)}\n"
    record = read_exit_file(paths.exit_file(child))
    assert record is not None and record.exit_code == 0


def test_template_names_match_the_package_environment():
    """The template spells the progress-file variable literally: it must be the one progress.py reads."""
    script = render_batch_script(array_job(ROOT), PATHS)
    assert re.search(rf"^export {ENV_PROGRESS_FILE}=", script, re.M)
    assert re.search(rf"^export {ENV_PROJECT}=", script, re.M)
    assert re.search(rf"^export {ENV_JOB_ID}=", script, re.M)
