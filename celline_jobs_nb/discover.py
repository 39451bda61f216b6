"""Finding the jobs celline starts itself, and running celline's scripts on any scheduler.

celline (1.1.0) renders a shell script per sample and step and runs it with ``bash`` or ``qsub``;
it keeps no history. ``discover`` scans the project for those scripts and their runs
(``schedulers/celline/runs.py`` knows where celline puts them) and adds each run not seen before
as a job of the ``celline`` scheduler, with its status from the evidence at hand
(``schedulers/celline/assess.py``); from then on the poller alone updates them, through
``CellineScheduler``. No scheduler command runs here: qstat waits for the poller.

``script_spec`` and ``resubmit`` run celline's scripts on our schedulers (``celline-jobs submit
SCRIPT``, a retry of a discovered job), keeping the ``#PBS`` header's name, type and resources.

The names of ``schedulers.celline`` that used to live here are still importable from here.
"""

from __future__ import annotations

import logging
import os
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .core.errors import InvalidInputError, ResourceError
from .core.models import JobInfo, JobStatus, JobType
from .core.resources import Resources
from .core.settings import CellineExecution
from .schedulers.celline import (
    CELLINE_SCHEDULER,
    LOG_NAME_RE,
    SCRIPT_PATTERNS,
    Assessment,
    CellineRun,
    CellineScheduler,
    CellineScript,
    PbsDirectives,
    ScriptProcess,
    assess,
    find_scripts,
    infer_job_type,
    log_verdict,
    match_pbs,
    parse_pbs_directives,
    pbs_paths,
    run_of,
    script_processes,
)

if TYPE_CHECKING:
    from .monitor import JobMonitor

log = logging.getLogger("celline.job")

__all__ = [
    "CELLINE_SCHEDULER",
    "LOG_NAME_RE",
    "SCRIPT_PATTERNS",
    "Assessment",
    "CellineRun",
    "CellineScheduler",
    "CellineScript",
    "Discovery",
    "PbsDirectives",
    "ScriptProcess",
    "ScriptSpec",
    "assess",
    "discover",
    "find_scripts",
    "infer_job_type",
    "log_verdict",
    "match_pbs",
    "new_job",
    "parse_pbs_directives",
    "pbs_paths",
    "resubmit",
    "run_of",
    "script_processes",
    "script_spec",
]


def new_job(run: CellineRun, assessment: Assessment, execution: CellineExecution) -> JobInfo:
    """The store record of a run first seen."""
    script = run.script
    try:
        resources = script.directives.to_resources(keep_queue=execution.pbs, source=str(script.path))
    except ResourceError as exc:
        log.warning("%s", exc)
        resources = Resources()
    fields = assessment.fields
    status = assessment.status
    start = fields.get("start_time")
    if start is None and status.final:
        start = run.submitted  # celline records no start time; the render time is the closest we have
    metadata = {
        "attached": True,
        "discovered": {"script": str(script.path), "log": str(run.log) if run.log else None,
                       "submitted": run.submitted.isoformat() if run.submitted else None, "key": run.key,
                       "sample": script.sample, "mode": execution.system},
        **fields.get("metadata", {}),
    }
    return JobInfo(
        job_id=run.job_id, name=script.label, status=status, command=f"bash {shlex.quote(str(script.path))}",
        start_time=start, end_time=fields.get("end_time") if status.final else None,
        log_file=str(run.log) if run.log else None, working_dir=str(script.root), resources=resources,
        scheduler=CELLINE_SCHEDULER, native_id=fields.get("native_id"), job_type=script.job_type,
        submit_time=fields.get("submit_time", run.submitted), exit_code=fields.get("exit_code"),
        reason=fields.get("reason"), metadata=metadata,
    )


@dataclass(frozen=True)
class Discovery:
    """What one scan found: every run's job id, and which of them are new."""

    scripts: int
    job_ids: list[str]
    new_ids: list[str]
    execution: CellineExecution


def discover(monitor: JobMonitor) -> Discovery:
    """Scan the project for the jobs celline started and add the runs not seen before.

    Idempotent: run ids come from the script and log paths, and known runs are left to the
    poller (``CellineScheduler``). qstat is never called here; new active runs get polled at once.
    """
    root = monitor.paths.root
    execution = monitor.settings.execution
    scripts = find_scripts(root)
    runs = [run for script in scripts for run in script.runs()]
    known = {job.job_id for job in monitor.store.get_many([run.job_id for run in runs])}
    fresh = [run for run in runs if run.job_id not in known]
    processes = script_processes() if any(run.latest for run in fresh) else {}
    jobs = []
    for run in fresh:
        process = processes.get(os.path.realpath(run.script.path))
        assessment = assess(run, process=process, pbs=None, pbs_checked=False)
        if execution.pbs and process is None and not assessment.status.final:
            assessment = Assessment(JobStatus.UNKNOWN, {"reason": "not checked with qstat yet"})
        jobs.append(new_job(run, assessment, execution))
    monitor.store.insert_many(jobs, source="discover")
    if any(job.status.active for job in jobs):
        monitor.store.reset_poll_due(CELLINE_SCHEDULER)
    return Discovery(len(scripts), [run.job_id for run in runs], [job.job_id for job in jobs], execution)


# ------------------------------------------------------------------------------------------------
# Running celline's scripts on any scheduler
# ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ScriptSpec:
    """How to submit a script: its name, type and resources, from its ``#PBS`` header when it has one."""

    name: str
    job_type: JobType | None
    resources: Resources


def script_spec(path: Path, root: Path, scheduler: str) -> ScriptSpec:
    """For ``celline-jobs submit SCRIPT``: a celline script (a ``#PBS`` header, or one of the
    places celline writes scripts) keeps its ``-N`` name with the sample, its type and its
    resources; on SLURM those resources become ``#SBATCH`` lines of our own batch script, and the
    script's ``#PBS`` lines are plain comments to bash. Other scripts get their file name."""
    script = CellineScript.read(path, root)
    in_celline_dir = any(path.match(pattern) for pattern in SCRIPT_PATTERNS)
    if not script.directives.present and not in_celline_dir:
        return ScriptSpec(path.stem, None, Resources())
    resources = script.directives.to_resources(keep_queue=scheduler == "pbs", source=str(path))
    name = script.label if in_celline_dir else (script.directives.name or path.stem)
    return ScriptSpec(name, script.job_type, resources)


def resubmit(monitor: JobMonitor, job_id: str, resources: Resources | dict[str, Any] | str | None = None,
             scheduler: str | None = None) -> str:
    """Run a discovered job's script again, as a new attempt linked to it, on ``scheduler``
    (default: the project's). celline's run stays as it was; the new one logs to logs/<id>.log."""
    old = monitor.get_job(job_id)
    info = old.metadata.get("discovered") or {}
    if old.scheduler != CELLINE_SCHEDULER or not info.get("script"):
        raise InvalidInputError(f"job {old.job_id} was not started by celline: use `celline-jobs retry`")
    if old.status.active:
        raise InvalidInputError(f"job {old.job_id} is still {old.status.value}: cancel it before retrying")
    path = Path(info["script"])
    if not path.is_file():
        raise InvalidInputError(f"the script of job {old.job_id} is gone ({path}): celline has to render it again")
    target = scheduler or monitor.settings.default_scheduler
    spec = script_spec(path, monitor.paths.root, target)
    request = spec.resources
    if resources:
        changes = resources.to_dict() if isinstance(resources, Resources) else (
            resources if isinstance(resources, dict) else Resources.parse(resources).to_dict())
        request = request.merged(**changes)
    return monitor.submit_job(old.name, f"bash {shlex.quote(str(path))}", request, scheduler=target,
                              job_type=old.job_type, working_dir=old.working_dir,
                              metadata={"script": str(path)}, retry_of=old)
