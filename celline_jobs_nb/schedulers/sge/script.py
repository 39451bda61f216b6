"""Grid Engine: the batch script and the qsub command line (see the package docstring)."""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Sequence

from ...core.errors import ParseError, SubmitError
from ...core.models import JobInfo
from ...core.paths import ProjectPaths
from ...core.resources import Resources
from ...core.settings import SgeSettings
from ..batch.script import (
    array_task_exports,
    checked_dependencies,
    extra_directives,
    plain_job_name,
    render_job_script,
)
from .parse import task_range

#: Grid Engine job names: no whitespace, no ``/ : @ \\ * ?``, not starting with a digit; we keep
#: letters, digits and ``_.-`` (our store keeps the full name).
MAX_NAME = 200
_THROTTLE_RE = re.compile(r"^(.*?)%([1-9][0-9]{0,5})$")


def sge_job_name(name: str) -> str:
    return plain_job_name(name, MAX_NAME)


def sge_duration(seconds: int) -> str:
    """``h_rt`` as H:MM:SS (Grid Engine also reads plain seconds; this is what qstat shows)."""
    hours, rest = divmod(max(1, int(seconds)), 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}"


def sge_memory(total_bytes: int, slots: int, per_slot: bool) -> str:
    """A memory value in whole MiB (``512M``), divided by the slots when the resource is per slot."""
    share = total_bytes / slots if per_slot and slots > 1 else total_bytes
    return f"{max(1, math.ceil(share / 1024 ** 2))}M"


def sge_array(spec: str) -> tuple[str, int | None]:
    """Our array spec as Grid Engine's ``-t`` range (``n[-m[:s]]``, indices from 1) and ``-tc``
    (at most that many tasks at once): "1-10%2" -> ("1-10:1", 2); "1,3,5" -> ("1-5:2", None).
    Grid Engine has no lists: others are refused with the reason."""
    text = str(spec).strip()
    throttle = None
    match = _THROTTLE_RE.match(text)
    if match is not None:
        text, throttle = match.group(1), int(match.group(2))
    try:
        indices = task_range(text)
    except ParseError as exc:
        raise SubmitError(f"invalid array {spec!r} for Grid Engine ({exc}): use n-m[:step] with n >= 1") from None
    if len(indices) == 1:
        return f"{indices[0]}-{indices[0]}:1", throttle
    step = indices[1] - indices[0]
    if step < 1 or any(b - a != step for a, b in itertools.pairwise(indices)):
        raise SubmitError(f"invalid array {spec!r} for Grid Engine: its -t takes one range n-m[:step], not a list")
    return f"{indices[0]}-{indices[-1]}:{step}", throttle


def array_indices(spec: str) -> list[int]:
    """The task indices of our array spec as Grid Engine runs them ([] when it cannot)."""
    try:
        first, _, rest = sge_array(spec)[0].partition("-")
        last, _, step = rest.partition(":")
        return list(range(int(first), int(last) + 1, int(step)))
    except SubmitError:
        return []


def holds_for_dependency(job: JobInfo) -> bool:
    """Whether the job is submitted with a user hold that the adapter releases: Grid Engine's
    ``-hold_jid`` only orders jobs (the child starts when its parents end, however they end), so
    for afterok / afternotok the adapter itself releases (``qrls``) or deletes the child once it
    knows how its parents ended."""
    return bool(job.metadata.get("native_dependencies")) and (job.dependency_kind or "afterok") != "afterany"


def _dependency_problem(native_id: str) -> str | None:
    """Why Grid Engine cannot wait for this id (a job number, or "number.task"), else None."""
    number, _, task = native_id.partition(".")
    if number.isascii() and number.isdigit() and (not task or (task.isascii() and task.isdigit())):
        return None
    return f"invalid Grid Engine dependency on {native_id[:80]!r}: not a job number (use ids like 123 or 123.4)"


def sge_directives(job: JobInfo, options: SgeSettings) -> list[str]:
    """The ``#$`` lines for ``job``: name, shell, resources, queue, project, array, dependency,
    then the user's extra lines (last, so they can override ours)."""
    res: Resources = job.resources
    lines = [f"#$ -N {sge_job_name(job.name)}", "#$ -S /bin/bash"]
    if res.nodes is not None and int(res.nodes) > 1:
        raise SubmitError(f"Grid Engine runs a job on one host here (nodes={res.nodes}): ask for cpus instead, "
                          "or add your site's multi-host parallel environment as an extra directive")
    slots = int(res.cpus or 1)
    if slots > 1:
        lines.append(f"#$ -pe {options.pe} {slots}")
    requests = []
    if res.memory is not None:
        requests += [f"{name}={sge_memory(int(res.memory), slots, options.memory_per_slot)}"
                     for name in options.memory]
    if res.walltime is not None:
        requests.append(f"h_rt={sge_duration(int(res.walltime))}")
    if res.gpus:
        requests.append(f"{options.gpu}={int(res.gpus)}")
    if requests:
        lines.append(f"#$ -l {','.join(requests)}")
    if res.partition:
        lines.append(f"#$ -q {res.partition}")
    if res.account:
        lines.append(f"#$ -P {res.account}")
    array = job.metadata.get("array")
    if array:
        spec, throttle = sge_array(str(array))
        lines.append(f"#$ -t {spec}")
        if throttle is not None:
            lines.append(f"#$ -tc {throttle}")
    _kind, dependencies = checked_dependencies(job, "Grid Engine", _dependency_problem)
    if dependencies:
        numbers = [d.split(".", 1)[0] for d in dependencies]
        lines.append(f"#$ -hold_jid {','.join(dict.fromkeys(numbers))}")
        if holds_for_dependency(job):
            lines.append("#$ -h")
    lines.extend(extra_directives(res.extra, "#$"))
    return lines


def render_sge_script(job: JobInfo, paths: ProjectPaths, options: SgeSettings) -> str:
    """The batch script for ``job`` (deterministic: same job and options, same text)."""
    array_setup = array_task_exports(job, "${SGE_TASK_ID}", named=True) if job.metadata.get("array") else []
    return render_job_script("sge.sh", job, paths, sge_directives(job, options), array_setup)


def sge_path(path: str) -> str:
    """A path for ``-o``: Grid Engine reads ``[host:]path``, so a path with a colon gets an empty
    host in front (``:/data/run_12:00/x.log``, checked on 8.1.9)."""
    return f":{path}" if ":" in path else path


def qsub_command(script: str, job: JobInfo, paths: ProjectPaths) -> list[str]:
    """``qsub -terse -j y -o <log> <script>`` (argv, no shell). An array's tasks each write
    ``logs/<job id>_<index>.log`` through Grid Engine's ``$TASK_ID`` in the path."""
    if job.metadata.get("array"):
        if "$" in str(paths.logs_dir):
            raise SubmitError(f"the logs directory {str(paths.logs_dir)[:200]!r} holds a '$', which Grid Engine "
                              "expands in output paths: move the project")
        log = str(paths.logs_dir / f"{job.job_id}_$TASK_ID.log")
    else:
        log = str(paths.log_file(job.job_id))
    return ["qsub", "-terse", "-j", "y", "-o", sge_path(log), script]


def qstat_command(user: str | None) -> list[str]:
    """ONE ``qstat -xml`` for every job of the submitting user (pending, running, suspended, in
    error); Grid Engine has no per-id listing in this form, and the user's jobs are what we track."""
    return ["qstat", "-xml", "-u", user or "*"]


def qdel_command(native_ids: Sequence[str]) -> list[str]:
    return ["qdel", *native_ids]
