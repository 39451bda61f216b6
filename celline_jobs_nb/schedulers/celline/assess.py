"""From evidence to status: what is known of a celline run now, strongest evidence first.

  1. PBS mode: its PBS job, while PBS shows it queued or running (or in a state we cannot read).
  2. a ``bash <script>`` process on this machine (multithreading mode).
  3. once it has ended: the PBS exit status (read by the PBS adapter's rules); error or success
     lines in its log; celline's own "done" files (``counted/outs/...``, ``seurat.rds``...) written
     after the run started.
  Without any of these the job is ``unknown``, with a reason: "missing" never means "completed".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from ...core import reasons
from ...core.exits import exit_reason
from ...core.models import JobStatus, to_utc, utcnow
from ..pbs import PbsRecord, interpret_exit_status, is_deletion_status, limit_kill
from ..pbs import map_state as pbs_map_state
from .evidence import ScriptProcess, log_verdict
from .runs import OUTPUTS, CellineRun, file_mtime

OUTPUT_SLACK = timedelta(seconds=5)  # file times vs. the render time (coarse file systems)


@dataclass
class Assessment:
    status: JobStatus
    fields: dict[str, Any] = field(default_factory=dict)


def assess(run: CellineRun, *, process: ScriptProcess | None, pbs: PbsRecord | None, pbs_checked: bool,
           cancel_requested: bool = False, flavour: str | None = None) -> Assessment:
    """The status of a run from what is known now (see the module docstring for the order);
    ``flavour`` is the installed PBS's (its negative exit statuses differ)."""
    pbs_status, known_state = pbs_map_state(pbs.state) if pbs is not None else (None, False)
    if pbs is not None and pbs_status is not None and (pbs_status.active or not known_state):
        fields: dict[str, Any] = {"native_id": pbs.job_id, "reason": None}
        if pbs.submit:
            fields["submit_time"] = pbs.submit
        if pbs.start:
            fields["start_time"] = pbs.start
        if not known_state:
            fields["reason"] = f"PBS reports state {pbs.state!r}"
        return Assessment(pbs_status, fields)
    if process is not None and run.latest:
        return Assessment(JobStatus.RUNNING, {"start_time": to_utc(process.started), "reason": None,
                                              "metadata": {"pid": process.pid}})
    end = file_mtime(run.log) if run.log is not None else None
    fields = {"end_time": to_utc(end) if end is not None else utcnow()}
    if pbs is not None:
        fields["native_id"] = pbs.job_id
    if cancel_requested:
        return Assessment(JobStatus.CANCELLED, {**fields, "reason": reasons.CANCELLED_BY_USER})
    if pbs is not None and pbs.exit_status is not None:
        return _pbs_end(pbs, pbs.exit_status, fields, flavour)
    verdict, evidence = log_verdict(run.log)
    if verdict is JobStatus.FAILED:
        return Assessment(verdict, {**fields, "reason": evidence})
    if verdict is JobStatus.COMPLETED:
        return Assessment(verdict, {**fields, "reason": None, "metadata": {"evidence": evidence}})
    if run.latest:
        done = _newest_output(run)
        if done is not None:
            path, mtime = done
            fields["end_time"] = to_utc(max(mtime, end or 0.0))
            return Assessment(JobStatus.COMPLETED, {**fields, "reason": None,
                                                    "metadata": {"evidence": f"output: {path}"}})
    unknown: dict[str, Any] = {"reason": _no_evidence_reason(run, pbs, pbs_checked)}
    if pbs is not None:
        unknown["native_id"] = pbs.job_id
    return Assessment(JobStatus.UNKNOWN, unknown)


def _pbs_end(pbs: PbsRecord, exit_status: int, fields: dict[str, Any], flavour: str | None) -> Assessment:
    """An ended PBS job's Exit_status read by the PBS adapter's rules (``schedulers/pbs/exits.py``):
    a job that never started (no start time, no exec_host) and ended with a signal's status was
    deleted while queued (Torque reports 271 = 256 + SIGTERM); otherwise PBS's own negative codes
    per flavour, 256+N or 128+N for a signal, a limit named in PBS's comment, else the exit code."""
    if not pbs.started and is_deletion_status(exit_status):
        detail = f": {pbs.comment}" if pbs.comment else ""
        return Assessment(JobStatus.CANCELLED, {**fields, "reason": f"deleted before it started{detail}",
                                                "metadata": {reasons.KIND_META_KEY: reasons.CANCELLED}})
    meaning = interpret_exit_status(exit_status, flavour)
    if meaning.exit_code == 0:
        return Assessment(JobStatus.COMPLETED, {**fields, "exit_code": 0, "reason": None})
    kind, reason = meaning.kind, meaning.reason
    if reason is None:
        kind, reason = limit_kill(pbs.comment) or (None, None)
    if reason is None:
        reason, kind = exit_reason(meaning.exit_code, meaning.signal)
    return Assessment(JobStatus.FAILED, {**fields, "exit_code": meaning.exit_code, "signal": meaning.signal,
                                         "reason": reason or f"PBS Exit_status {exit_status}",
                                         "metadata": {reasons.KIND_META_KEY: kind or reasons.EXIT}})


def _newest_output(run: CellineRun) -> tuple[Path, float] | None:
    """celline's "done" file written after the run was submitted, if any."""
    newest: tuple[Path, float] | None = None
    earliest = (run.submitted - OUTPUT_SLACK).timestamp() if run.submitted is not None else None
    for path in run.script.outputs():
        mtime = file_mtime(path)
        if mtime is None or (earliest is not None and mtime < earliest):
            continue  # missing, or from an earlier run
        if newest is None or mtime > newest[1]:
            newest = (path, mtime)
    return newest


def _no_evidence_reason(run: CellineRun, pbs: PbsRecord | None, pbs_checked: bool) -> str:
    if pbs is not None:
        where = f"PBS shows it ended (state {pbs.state}) without an exit status"
    else:
        where = "not running here" + (", not in qstat" if pbs_checked else "")
    if run.log is not None and run.log.exists():
        return f"{where}; its log says neither success nor an error"
    if not run.latest:
        return f"{where}; no log"
    outputs = ", ".join(OUTPUTS.get(run.script.kind, ())) or "no known output"
    return f"{where}; no log (celline's multithreading mode writes none) and no new {outputs}"
