"""PBS: the batch script and the qsub command line (see the package docstring)."""

from __future__ import annotations

from collections.abc import Sequence

from ...core.models import JobInfo
from ...core.paths import ProjectPaths
from ...core.resources import Resources
from ..batch.rules import optional
from ..batch.script import (
    ARRAY_TASK_COMMENT,
    array_task_exports,
    checked_array,
    checked_dependencies,
    extra_directives,
    plain_job_name,
    render_job_script,
)
from .flavours import STRATEGIES, PbsFlavour, flavour_of
from .parse import PbsRecord, parse_job_id, pbs_walltime
from .states import TORQUE_SLURM

# ------------------------------------------------------------------------------------------------
# The batch script and the qsub command line
# ------------------------------------------------------------------------------------------------

#: PBS job names: Torque (POSIX) allows 15 characters, PBS Pro 236; Slurm is generous.
MAX_NAME = {name: strategy.max_name for name, strategy in STRATEGIES.items()}


def pbs_job_name(name: str, flavour: str = TORQUE_SLURM) -> str:
    """The name PBS gets: letters, digits, ``_.-`` only, starting with a letter, cut to the
    flavour's limit. PBS refuses other names (and the Slurm wrapper's sbatch stops at quotes);
    our store keeps the full name."""
    return plain_job_name(name, flavour_of(flavour).max_name)


def pbs_directives(job: JobInfo, paths: ProjectPaths, flavour: str, pbs_server: str | None = None) -> list[str]:
    """The ``#PBS`` lines for ``job``: name, resources, queue, account, array, dependency, then the
    user's extra lines (last, so they can override ours). ``pbs_server``: celline's
    ``[execution] pbs_server``, appended to the nodes spec as celline does
    (``-l nodes=1:ppn=N:<server>``); PBS Pro has no nodes spec, so it is not used there."""
    res: Resources = job.resources
    strategy = flavour_of(flavour)
    lines = [f"#PBS -N {pbs_job_name(job.name, flavour)}", "#PBS -S /bin/bash"]
    lines.extend(strategy.resource_lines(res, pbs_server))
    if res.walltime is not None:
        lines.append(f"#PBS -l walltime={pbs_walltime(int(res.walltime))}")
    if res.partition:
        lines.append(f"#PBS -q {res.partition}")
    if res.account:
        lines.append(f"#PBS -A {res.account}")
    spec = checked_array(job, strategy.array_indices)
    if spec is not None:
        lines.append(f"#PBS {strategy.array_flag} {spec}")
    kind, dependencies = checked_dependencies(job, "PBS", lambda d: _dependency_problem(d, strategy))
    if dependencies:
        lines.append(f"#PBS -W depend={kind}:{':'.join(dependencies)}")
    lines.extend(extra_directives(res.extra, "#PBS"))
    return lines


def _dependency_problem(dep: str, strategy: PbsFlavour) -> str | None:
    ident = optional(parse_job_id, dep)
    if ident is None:
        return f"invalid PBS dependency on {dep[:80]!r}: not a PBS job id"
    if ident.index is not None and not strategy.shows_tasks:
        return f"the Slurm PBS wrapper cannot depend on one array task ({dep})"
    return None


def _task_index_expr() -> str:
    # Torque sets PBS_ARRAYID, PBS Pro PBS_ARRAY_INDEX, the Slurm wrapper SLURM_ARRAY_TASK_ID.
    return "${PBS_ARRAYID:-${PBS_ARRAY_INDEX:-${SLURM_ARRAY_TASK_ID:-}}}"


def render_pbs_script(job: JobInfo, paths: ProjectPaths, flavour: str = TORQUE_SLURM,
                      pbs_server: str | None = None) -> str:
    """The batch script for ``job`` (deterministic: same job and flavour, same text)."""
    array_setup = []
    if job.metadata.get("array"):
        array_setup = [ARRAY_TASK_COMMENT,
                       "# Each task writes its own log from here (no PBS flavour has a portable per-task -o).",
                       *array_task_exports(job, _task_index_expr(), named=True),
                       'exec >>"${CELLINE_JOBS_LOGS}/${CELLINE_JOB_ID}.log" 2>&1']
    return render_job_script("pbs.sh", job, paths, pbs_directives(job, paths, flavour, pbs_server), array_setup)


def qsub_command(script: str, log_path: str, flavour: str) -> list[str]:
    """``qsub -j oe -o <log> <script>`` as the flavour needs it (``PbsFlavour.qsub_argv``)."""
    return flavour_of(flavour).qsub_argv(script, log_path)


def qstat_command(native_ids: Sequence[str], flavour: str) -> list[str]:
    return flavour_of(flavour).qstat_argv(native_ids)


def parse_qstat(text: str, flavour: str) -> list[PbsRecord]:
    """The records of ``qstat_command``'s output for ``flavour``."""
    return flavour_of(flavour).parse_qstat(text)
