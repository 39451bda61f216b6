"""PBS: the batch script and the qsub command line (see the package docstring)."""

from __future__ import annotations

import re
import shlex
import socket
from collections.abc import Sequence

from ...core.errors import ParseError, SubmitError
from ...core.models import JobInfo
from ...core.paths import ENV_JOB_ID, ProjectPaths
from ...core.resources import Resources
from ..batch.rules import (
    DEPENDENCY_KINDS,
    env_exports,
    export_line,
    load_template,
    one_line,
)
from .parse import (
    PbsRecord,
    array_indices,
    parse_job_id,
    parse_qstat_full,
    parse_qstat_json,
    parse_qstat_xml,
    pbs_memory,
    pbs_walltime,
)
from .states import OPENPBS, TORQUE, TORQUE_SLURM

# ------------------------------------------------------------------------------------------------
# The batch script and the qsub command line
# ------------------------------------------------------------------------------------------------

#: PBS job names: Torque (POSIX) allows 15 characters, PBS Pro 236; Slurm is generous.
MAX_NAME = {TORQUE: 15, OPENPBS: 236, TORQUE_SLURM: 200}
_NAME_BAD_RE = re.compile(r"[^A-Za-z0-9_.-]+")


def pbs_job_name(name: str, flavour: str = TORQUE_SLURM) -> str:
    """The name PBS gets: letters, digits, ``_.-`` only, starting with a letter, cut to the
    flavour's limit. PBS refuses other names (and the Slurm wrapper's sbatch stops at quotes);
    our store keeps the full name."""
    text = _NAME_BAD_RE.sub("_", str(name)).strip("_.-")
    if not text or not text[0].isalpha():
        text = "j" + text
    return text[:MAX_NAME.get(flavour, 15)]


def _extra_directive(line: str) -> str | None:
    text = one_line(line).strip()
    if text.upper().startswith("#PBS"):
        text = text[len("#PBS"):].strip()
    return f"#PBS {text}" if text else None


def pbs_directives(job: JobInfo, paths: ProjectPaths, flavour: str, pbs_server: str | None = None) -> list[str]:
    """The ``#PBS`` lines for ``job``: name, resources, queue, account, array, dependency, then the
    user's extra lines (last, so they can override ours). ``pbs_server``: celline's
    ``[execution] pbs_server``, appended to the nodes spec as celline does
    (``-l nodes=1:ppn=N:<server>``); PBS Pro has no nodes spec, so it is not used there."""
    res: Resources = job.resources
    lines = [f"#PBS -N {pbs_job_name(job.name, flavour)}", "#PBS -S /bin/bash"]
    nodes = int(res.nodes) if res.nodes is not None else 1
    if flavour == OPENPBS:
        if res.cpus is not None or res.memory is not None or res.gpus or res.nodes is not None:
            chunk = f"select={nodes}:ncpus={int(res.cpus or 1)}"
            if res.memory is not None:
                chunk += f":mem={pbs_memory(int(res.memory))}"
            if res.gpus:
                chunk += f":ngpus={int(res.gpus)}"
            lines.append(f"#PBS -l {chunk}")
    else:
        if res.cpus is not None or res.gpus or res.nodes is not None or pbs_server:
            spec = f"nodes={nodes}:ppn={int(res.cpus or 1)}"
            if res.gpus:
                spec += f":gpus={int(res.gpus)}"
            if pbs_server:
                spec += f":{pbs_server}"
            lines.append(f"#PBS -l {spec}")
        if res.memory is not None:
            lines.append(f"#PBS -l mem={pbs_memory(int(res.memory))}")
    if res.walltime is not None:
        lines.append(f"#PBS -l walltime={pbs_walltime(int(res.walltime))}")
    if res.partition:
        lines.append(f"#PBS -q {res.partition}")
    if res.account:
        lines.append(f"#PBS -A {res.account}")
    array = job.metadata.get("array")
    if array:
        spec = str(array).strip()
        try:
            array_indices(spec, flavour)
        except ParseError as exc:
            raise SubmitError(f"invalid array {spec!r}: {exc}") from None
        lines.append(f"#PBS {'-J' if flavour == OPENPBS else '-t'} {spec}")
    dependencies = [str(d) for d in job.metadata.get("native_dependencies") or []]
    if dependencies:
        kind = job.dependency_kind or "afterok"
        if kind not in DEPENDENCY_KINDS:
            raise SubmitError(f"invalid PBS dependency kind {kind!r}: use {', '.join(DEPENDENCY_KINDS)}")
        for dep in dependencies:
            try:
                ident = parse_job_id(dep)
            except ParseError:
                raise SubmitError(f"invalid PBS dependency on {dep[:80]!r}: not a PBS job id") from None
            if ident.index is not None and flavour == TORQUE_SLURM:
                raise SubmitError(f"the Slurm PBS wrapper cannot depend on one array task ({dep})")
        lines.append(f"#PBS -W depend={kind}:{':'.join(dependencies)}")
    for extra in res.extra:
        directive = _extra_directive(extra)
        if directive:
            lines.append(directive)
    return lines


def _task_index_expr() -> str:
    # Torque sets PBS_ARRAYID, PBS Pro PBS_ARRAY_INDEX, the Slurm wrapper SLURM_ARRAY_TASK_ID.
    return "${PBS_ARRAYID:-${PBS_ARRAY_INDEX:-${SLURM_ARRAY_TASK_ID:-}}}"


def render_pbs_script(job: JobInfo, paths: ProjectPaths, flavour: str = TORQUE_SLURM,
                      pbs_server: str | None = None) -> str:
    """The batch script for ``job`` (deterministic: same job and flavour, same text)."""
    exports = env_exports(job, paths)
    array_setup = ""
    if job.metadata.get("array"):
        array_setup = (
            "# An array task is a job of its own: <job id>_<index> names its log, progress and exit files.\n"
            "# Each task writes its own log from here (no PBS flavour has a portable per-task -o).\n"
            f"{export_line('CELLINE_ARRAY_PARENT_JOB_ID', job.job_id)}\n"
            f'export CELLINE_ARRAY_TASK_INDEX="{_task_index_expr()}"\n'
            f'export {ENV_JOB_ID}="${{CELLINE_ARRAY_PARENT_JOB_ID}}_${{CELLINE_ARRAY_TASK_INDEX}}"\n'
            'export CELLINE_JOBS_ARRAY_INDEX="${CELLINE_ARRAY_TASK_INDEX}"  # as every scheduler names it\n'
            'exec >>"${CELLINE_JOBS_LOGS}/${CELLINE_JOB_ID}.log" 2>&1\n'
        )
    return load_template("pbs.sh").substitute(
        job_id=job.job_id,
        directives="\n".join(pbs_directives(job, paths, flavour, pbs_server)),
        exports="\n".join(exports),
        array_setup=array_setup,
        workdir=shlex.quote(job.working_dir or str(paths.root)),
        command=shlex.quote(job.command.replace("\0", "")),
    )


def qsub_command(script: str, log_path: str, flavour: str) -> list[str]:
    """``qsub -j oe -o <log> <script>``. The Slurm wrapper pastes its arguments into a ``/bin/sh``
    command line for sbatch, so for it both paths are shell-quoted (and "%" doubled: sbatch expands
    %j in -o). Real PBS reads "host:path" in -o, so a path with a colon gets this host in front."""
    if flavour == TORQUE_SLURM:
        return ["qsub", "-j", "oe", "-o", shlex.quote(log_path.replace("%", "%%")), shlex.quote(script)]
    if ":" in log_path:
        log_path = f"{socket.gethostname()}:{log_path}"
    return ["qsub", "-j", "oe", "-o", log_path, script]


def qstat_command(native_ids: Sequence[str], flavour: str) -> list[str]:
    if flavour == OPENPBS:
        return ["qstat", "-f", "-F", "json", "-x", "-t", *native_ids]
    if flavour == TORQUE:
        return ["qstat", "-x", "-t", *native_ids]
    return ["qstat", "-f", *native_ids]


def parse_qstat(text: str, flavour: str) -> list[PbsRecord]:
    """The records of ``qstat_command``'s output for ``flavour``."""
    if flavour == OPENPBS:
        return parse_qstat_json(text)
    if flavour == TORQUE:
        return parse_qstat_xml(text)
    return parse_qstat_full(text, flavour)


