"""The real celline 1.1.0 (installed with ``pip install --no-deps celline==1.1.0 toml polars rich``):
its classes, its CLI discovering our function file, its own runner starting a job we then follow,
and ``Project(dir).call(Job())`` in a real kernel.

celline's CLI works with that install, so it runs here as a subprocess (``python -m celline``),
exactly as a user types ``celline ...``. The job it runs is its real ``count.sh`` template,
rendered by its ``TemplateManager`` with its log naming, started by its ``ThreadObservable``; only
``cellranger`` is a stand-in on PATH (a shell script that writes celline's "counted" output).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from celline_jobs_nb.celline import FUNCTION_FILE, Job, install_celline_function
from celline_jobs_nb.core.models import JobStatus, JobType
from celline_jobs_nb.discover import CELLINE_SCHEDULER, discover
from celline_jobs_nb.monitor import JobMonitor

pytestmark = pytest.mark.timeout(300)

HAVE_CELLINE = importlib.util.find_spec("celline") is not None
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


@pytest.fixture
def real_celline() -> None:
    # With CELLINE_JOBS_REQUIRE_SERVICES=1 (CI) tests/conftest.py turns this skip into a failure.
    if not HAVE_CELLINE:
        pytest.skip("celline is not installed: pip install --no-deps celline==1.1.0 toml polars rich")


def celline(project: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``celline ARGS`` run in the project directory (its CLI finds custom functions in the cwd)."""
    return subprocess.run([sys.executable, "-m", "celline", *args], cwd=project, capture_output=True, text=True,
                          timeout=120, env={**os.environ, "COLUMNS": "200", **(env or {})})


def json_in(stdout: str) -> Any:
    """celline prints its own lines around ours ("Executing job..."): take the JSON document."""
    start = min(i for i in (stdout.find("["), stdout.find("{")) if i >= 0)
    end = max(stdout.rfind("]"), stdout.rfind("}")) + 1
    return json.loads(stdout[start:end])


@pytest.fixture
def celline_project(real_celline: None, project: Path) -> Path:
    """A project created by celline's own Project (setting.toml written by celline), with one
    discovered failed Count run for the filters to find."""
    from celline.interfaces import Project

    Project(str(project), "pbmc")
    render_count(project, "GSM001", nthread=1)
    return project


def render_count(project: Path, sample: str, *, nthread: int) -> Path:
    """celline's count.sh for ``sample``, rendered the way celline's Count function renders it."""
    from typing import NamedTuple

    from celline.config import Config
    from celline.template import TemplateManager
    from celline.utils.path import Path as CellinePath

    class JobContainer(NamedTuple):  # the fields of celline.functions.count.Count.JobContainer
        nthread: str
        cluster_server: str
        jobname: str
        logpath: str
        sample_id: str
        dist_dir: str
        fq_path: str
        transcriptome: str

    Config.PROJ_ROOT = str(project)
    path = CellinePath("GSE100", sample)
    path.prepare()
    target = Path(path.resources_sample_src) / "count.sh"
    TemplateManager.replace_from_file(
        file_name="count.sh",
        structure=JobContainer(nthread=str(nthread), cluster_server="", jobname="Count",
                               logpath=path.resources_log_file("count"), sample_id=sample,
                               dist_dir=path.resources_sample, fq_path=path.resources_sample_raw_fastqs,
                               transcriptome="/ref/refdata-gex-GRCh38-2020-A"),
        replaced_path=str(target),
    )
    return target


def test_job_is_a_real_celline_function(real_celline: None) -> None:
    from celline.functions._base import CellineFunction

    from celline_jobs_nb import celline as interop

    assert interop.HAVE_CELLINE and issubclass(Job, CellineFunction)
    job = Job.__new__(Job)  # celline's CLI never calls __init__
    assert isinstance(job, CellineFunction) and job.register() == "job"
    assert "celline run custom_job -- list" in job.get_description()
    assert any("--" in example for example in job.get_usage_examples())
    parser = argparse.ArgumentParser(prog="celline run job")
    job.add_cli_args(parser)
    args = parser.parse_args(["history", "--type", "Count", "--since", "3d", "--json"])
    assert (args.job_command, args.job_type, args.since, args.json) == ("history", "Count", "3d", True)
    assert "discover" in parser.format_help() and "retry" in parser.format_help()


def test_cli_on_a_new_instance_with_cellines_invoker(celline_project: Path, capsys: pytest.CaptureFixture[str]):
    from celline.cli.enhanced_invoker import EnhancedFunctionInvoker
    from celline.interfaces import Project

    project = Project(str(celline_project))
    invoker = EnhancedFunctionInvoker(Job)  # the class celline's `run` uses: cls.__new__, then cli()
    assert invoker.invoke(project, ["list", "--type", "Count", "--json"]) is project
    listed = json_in(capsys.readouterr().out)
    assert [(j["name"], j["scheduler"], j["job_type"]) for j in listed] == [("Count GSM001", CELLINE_SCHEDULER,
                                                                             "Count")]
    # No arguments at all (celline passes an empty Namespace): the summary.
    assert invoker.invoke(project, []) is project
    assert "Count GSM001" in capsys.readouterr().out
    # A bad id: one line on stderr, the project back, no exception (celline would run cli twice).
    assert invoker.invoke(project, ["status", "nosuchjob"]) is project
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("celline-jobs: error: no job 'nosuchjob'")


def test_cellines_cli_lists_and_runs_the_installed_function(celline_project: Path) -> None:
    path = install_celline_function(celline_project)
    assert path == celline_project / "functions" / FUNCTION_FILE
    listed = celline(celline_project, "list")
    assert listed.returncode == 0, listed.stderr
    assert "custom_job" in listed.stdout and "CellineJobs" in listed.stdout

    ran = celline(celline_project, "run", "custom_job", "--", "list", "--type", "Count", "--json")
    assert [j["name"] for j in json_in(ran.stdout)] == ["Count GSM001"], ran.stdout + ran.stderr
    assert json_in(celline(celline_project, "run", "custom_job", "--", "list", "--type", "Prediction",
                           "--json").stdout) == []
    bad = celline(celline_project, "run", "custom_job", "--", "cancel", "nosuchjob")
    assert "celline-jobs: error: no job 'nosuchjob'" in bad.stderr and "Traceback" not in bad.stderr
    # Without `--` celline's own parser takes the options and never passes them on.
    without = celline(celline_project, "run", "custom_job", "list", "--json")
    assert without.returncode != 0 or "unrecognized arguments" in without.stderr


def test_install_is_idempotent_and_keeps_a_foreign_file(celline_project: Path) -> None:
    first = install_celline_function(celline_project)
    assert install_celline_function(celline_project) == first  # ours: rewritten
    first.write_text("# my own function\n")
    result = subprocess.run([sys.executable, "-m", "celline_jobs_nb", "--project", str(celline_project),
                             "install-celline-function"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "was not written by celline-jobs: move it or pass --force" in result.stderr
    assert first.read_text() == "# my own function\n"
    (celline_project / "setting.toml").write_text(
        (celline_project / "setting.toml").read_text().replace("enabled = true", "enabled = false"))
    result = subprocess.run([sys.executable, "-m", "celline_jobs_nb", "--project", str(celline_project),
                             "install-celline-function", "--force"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "[custom_functions] enabled = false" in result.stderr


def test_a_job_cellines_own_runner_starts_is_followed_to_the_end(celline_project: Path, tmp_path: Path) -> None:
    """celline's multithreading mode runs `bash count.sh` itself: we see it running, then done."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "cellranger"  # stands in for Cell Ranger: celline's script and runner are real
    fake.write_text(textwrap.dedent("""\
        #!/bin/bash
        # cellranger count --id=counted ...: takes a while, then writes the filtered matrix
        sleep 4
        mkdir -p counted/outs && echo h5 > counted/outs/filtered_feature_bc_matrix.h5
        echo "Pipestance completed successfully!"
    """))
    fake.chmod(0o755)
    script = render_count(celline_project, "GSM002", nthread=1)
    runner = textwrap.dedent(f"""
        from celline.interfaces import Project
        from celline.middleware import ThreadObservable
        Project({str(celline_project)!r})
        ThreadObservable.call_shell([{str(script)!r}]).watch()
    """)
    # celline's script sources ~/.bashrc: a home of its own keeps this machine's shell set-up (a
    # pyenv rehash waiting on another process's lock, say) out of the run.
    home = tmp_path / "home"
    home.mkdir()
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "SHELL": "/bin/bash",
           "HOME": str(home)}
    proc = subprocess.Popen([sys.executable, "-c", runner], cwd=celline_project, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        monitor = JobMonitor(celline_project, poll_intervals={CELLINE_SCHEDULER: 5})
        deadline = time.monotonic() + 30
        job = None
        while time.monotonic() < deadline:
            discover(monitor)  # adds the run once; the poller (refresh) follows it from then on
            monitor.refresh(force=True)
            job = next((j for j in monitor.list_jobs() if j.name == "Count GSM002"), None)
            if job is not None and job.status is JobStatus.RUNNING:
                break
            time.sleep(0.2)
        assert job is not None and job.status is JobStatus.RUNNING, job
        assert job.job_type is JobType.COUNT and job.metadata["discovered"]["mode"] == "multithreading"
        assert job.log_file and Path(job.log_file).name.startswith("count_")  # celline's name; never written
        assert proc.wait(60) == 0
        (done,) = monitor.wait([job.job_id], timeout=30, poll=0.5)
        assert done.status is JobStatus.COMPLETED
        assert done.metadata["evidence"].endswith("counted/outs/filtered_feature_bc_matrix.h5")
        assert done.start_time is not None and done.end_time is not None and done.runtime_seconds >= 3
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def test_celline_config_rewrites_setting_toml_without_our_jobs_table(celline_project: Path) -> None:
    """Why the README points to .celline/jobs.toml: celline's Setting.flush (what `celline config`
    calls) writes only its own tables."""
    setting = celline_project / "setting.toml"
    setting.write_text(setting.read_text() + '\n[jobs]\ndefault_scheduler = "slurm"\n')
    assert JobMonitor(celline_project).settings.default_scheduler == "slurm"
    subprocess.run([sys.executable, "-c", "from celline.interfaces import Project; from celline.config import "
                    "Setting; Project('.'); Setting.nthread = 2; Setting.flush()"],
                   cwd=celline_project, check=True, timeout=60, capture_output=True)
    assert "[jobs]" not in setting.read_text()
    settings = JobMonitor(celline_project).settings
    assert settings.default_scheduler == "local" and settings.execution.nthread == 2


def test_project_call_in_a_real_kernel_shows_the_dashboard(celline_project: Path, tmp_path: Path) -> None:
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(textwrap.dedent(f"""
        from celline.interfaces import Project
        from celline_jobs_nb import Job

        project = Project({str(celline_project)!r})
        job = Job()
        result = project.call(job)
        rows = job.widget.table.rows
        print(result is project, type(result).__module__, [(r["name"], r["type"]) for r in rows])
        job.widget.close()
    """))])
    nbclient.NotebookClient(notebook, timeout=120, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = notebook.cells[0].outputs
    assert not [o for o in outputs if o.output_type == "error"], outputs
    views = [o for o in outputs if "data" in o and WIDGET_VIEW in o["data"]]
    assert len(views) == 1  # displayed by Job.call: celline's Project.call discards the return value
    stdout = "".join(o.text for o in outputs if o.output_type == "stream" and o.name == "stdout")
    # celline prints its execution mode first ("--: Use default multi threading").
    assert stdout.strip().splitlines()[-1] == "True celline.interfaces [('Count GSM001', 'Count')]"


def test_a_celline_script_runs_on_slurm_with_its_pbs_header_translated(slurm_cluster: Any, slurm_env: None,
                                                                      project: Path) -> None:
    """`celline-jobs submit` of a script rendered for PBS, on the real single-node SLURM: the #PBS
    resources become our #SBATCH lines (the PBS queue is dropped: no such partition here)."""
    sample = project / "resources/GSE100/GSM001"
    script = sample / "src/count.sh"
    script.parent.mkdir(parents=True)
    script.write_text(textwrap.dedent(f"""\
        #!/bin/bash
        #PBS -S /bin/bash
        #PBS -l nodes=1:ppn=1:cluster01
        #PBS -l mem=64mb,walltime=00:05:00
        #PBS -q cluster01
        #PBS -N Count
        #PBS -j eo
        #PBS -m ae
        #PBS -e {sample}/logs/count_20261128_10:00:00.log

        echo "counting GSM001 with $SLURM_CPUS_PER_TASK cpu in job $SLURM_JOB_ID"
    """))
    result = subprocess.run([sys.executable, "-m", "celline_jobs_nb", "--project", str(project), "submit",
                             str(script), "--scheduler", "slurm", "--json"], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    job = json.loads(result.stdout)
    assert (job["name"], job["job_type"], job["scheduler"]) == ("Count GSM001", "Count", "slurm")
    assert job["resources"] == {"cpus": 1, "mem": "64M", "time": "00:05:00", "nodes": 1}
    shown = subprocess.run(["scontrol", "-o", "show", "job", job["native_id"]], capture_output=True, text=True,
                           timeout=30).stdout
    assert "JobName=Count GSM001" in shown and "TimeLimit=00:05:00" in shown and "NumCPUs=1" in shown
    assert "Partition=cluster01" not in shown
    monitor = JobMonitor(project, poll_intervals={"slurm": 1})
    (done,) = monitor.wait([job["job_id"]], timeout=120, poll=1)
    assert done.status is JobStatus.COMPLETED, done.reason
    assert f"counting GSM001 with 1 cpu in job {job['native_id']}" in monitor.logs(done.job_id)
