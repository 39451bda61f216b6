"""Slurm: the batch script (see the package docstring)."""

from __future__ import annotations

from ...core.models import JobInfo
from ...core.paths import ProjectPaths
from ...core.resources import Resources, format_memory, format_walltime
from ..batch.script import (
    ARRAY_TASK_COMMENT,
    CONTROL_RE,
    array_task_exports,
    checked_array,
    checked_dependencies,
    extra_directives,
    render_job_script,
)
from .parse import _NATIVE_ID_RE, parse_array_spec

# ------------------------------------------------------------------------------------------------
# The batch script
# ------------------------------------------------------------------------------------------------

_CONTROL_RE = CONTROL_RE
MAX_SLURM_NAME = 200


def sbatch_quote(value: str) -> str:
    """A value for an ``#SBATCH`` line: control characters (newlines!) become spaces, so the line
    stays one bash comment; then double quotes with ``\\`` and ``"`` escaped, which is how
    sbatch reads directive arguments (checked on 22.05 with quotes, $, `, #, | and spaces)."""
    text = _CONTROL_RE.sub(" ", str(value))
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def slurm_filename(path: str) -> str:
    """A path for --output: SLURM expands %j, %a... in it, and reads "%%" as a literal "%"."""
    return str(path).replace("%", "%%")


def slurm_job_name(name: str) -> str:
    """The name SLURM gets: one line, at most MAX_SLURM_NAME characters (ours keeps the full name)."""
    text = " ".join(_CONTROL_RE.sub(" ", str(name)).split())
    return text[:MAX_SLURM_NAME] or "celline-job"


def sbatch_directives(job: JobInfo, paths: ProjectPaths) -> list[str]:
    """The ``#SBATCH`` lines for ``job``: name, log, working dir, resources, array, dependency,
    then the user's extra lines (last, so they can override ours)."""
    res: Resources = job.resources
    array = job.metadata.get("array")
    log_path = str(paths.logs_dir / f"{job.job_id}.log")
    if array:
        # Each task logs to logs/<job_id>_<index>.log: the file of its own child row.
        log_path = slurm_filename(str(paths.logs_dir / job.job_id)) + "_%a.log"
    else:
        log_path = slurm_filename(log_path)
    lines = [
        f"#SBATCH --job-name={sbatch_quote(slurm_job_name(job.name))}",
        f"#SBATCH --output={sbatch_quote(log_path)}",
        "#SBATCH --open-mode=append",
        f"#SBATCH --chdir={sbatch_quote(job.working_dir or str(paths.root))}",
    ]
    if res.cpus is not None:
        lines.append(f"#SBATCH --cpus-per-task={int(res.cpus)}")
    if res.memory is not None:
        lines.append(f"#SBATCH --mem={format_memory(int(res.memory))}")
    if res.walltime is not None:
        lines.append(f"#SBATCH --time={format_walltime(int(res.walltime))}")
    if res.partition:
        lines.append(f"#SBATCH --partition={sbatch_quote(res.partition)}")
    if res.account:
        lines.append(f"#SBATCH --account={sbatch_quote(res.account)}")
    if res.gpus:
        lines.append(f"#SBATCH --gpus={int(res.gpus)}")
    if res.nodes is not None:
        lines.append(f"#SBATCH --nodes={int(res.nodes)}")
    spec = checked_array(job, parse_array_spec)
    if spec is not None:
        lines.append(f"#SBATCH --array={spec}")
    kind, dependencies = checked_dependencies(job, "SLURM", lambda d: None if _NATIVE_ID_RE.match(d) else (
        f"invalid SLURM dependency on {d[:80]!r}: not a SLURM job id (123 or 123_4)"))
    if dependencies:
        lines.append(f"#SBATCH --dependency={kind}:{':'.join(dependencies)}")
        # A dependency that can never be met cancels the job (DependencyNeverSatisfied) instead of
        # leaving it pending forever on clusters without kill_invalid_depend.
        lines.append("#SBATCH --kill-on-invalid-dep=yes")
    lines.extend(extra_directives(res.extra, "#SBATCH"))
    return lines


def render_batch_script(job: JobInfo, paths: ProjectPaths) -> str:
    """The batch script for ``job`` (deterministic: same job, same text)."""
    array_setup = []
    if job.metadata.get("array"):
        array_setup = [ARRAY_TASK_COMMENT, *array_task_exports(job, "${SLURM_ARRAY_TASK_ID}", named=False)]
    return render_job_script("slurm.sh", job, paths, sbatch_directives(job, paths), array_setup)


