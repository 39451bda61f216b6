"""PBS: the adapter; helpers (see the package docstring)."""

from __future__ import annotations

import logging
import os
import re
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ...core import reasons
from ...core.errors import InvalidInputError, ParseError, SchedulerError
from ...core.exits import exit_reason, signal_name
from ...core.jobfiles import read_job_progress
from ...core.models import JobInfo, JobStatus, utcnow
from ...core.updates import JobUpdate
from ..base import PollResult, SchedulerContext
from ..batch.adapter import BatchScheduler
from ..batch.rules import (
    BatchUnit,
    collect_units,
    conclusive_exit,
    current_user,
    error_line,
    exit_file_verdict,
    missing_update,
    optional,
    poll_floor_override,
    read_unit_exit,
    reconciled,
    settled_while_listed,
    summarise_array,
    task_identity,
)
from ..slurm import AccountingRecord, parse_scontrol_jobs, scontrol_accounting
from ..slurm import map_state as slurm_map_state
from .exits import interpret_exit_status, is_deletion_status, limit_kill
from .inspect import FLAVOUR_ENV, PbsInspection
from .parse import (
    _WRAPPER_TASK_RE,
    PbsRecord,
    array_indices,
    parse_job_id,
    parse_qsub_output,
)
from .script import parse_qstat, pbs_job_name, qstat_command, qsub_command, render_pbs_script
from .states import _STATE_REASONS, FINISHED_STATES, FLAVOURS, TORQUE_SLURM, map_state

log = logging.getLogger("celline.job")


# ------------------------------------------------------------------------------------------------
# The adapter
# ------------------------------------------------------------------------------------------------

MIN_POLL_ENV = "CELLINE_JOBS_PBS_MIN_POLL_INTERVAL"
MISSING_GRACE_SECONDS = 300.0
QSTAT_CHUNK = 500  # ids per qstat/qdel call: keeps argv bounded (PBS ids can be 30+ characters)
#: qdel messages that only say "that job has already ended" (Torque, PBS Pro).
_BENIGN_QDEL_RE = re.compile(r"unknown job id|request invalid for state of job|job has finished|already",
                             re.IGNORECASE)
_UNKNOWN_JOB_RE = re.compile(r"unknown job id", re.IGNORECASE)
_DEPENDENCY_COMMENT_RE = re.compile(r"dependency", re.IGNORECASE)


@dataclass
class _Unit(BatchUnit):
    """One job or array task being polled, and the evidence gathered about it this poll."""

    record: PbsRecord | None = None
    parent_record: PbsRecord | None = None  # the Slurm wrapper shows only the array's own record
    acct: AccountingRecord | None = None  # Slurm's answer (wrapper flavour only)
    want_resolution: bool = False


class PbsScheduler(PbsInspection, BatchScheduler):
    """Torque / OpenPBS / PBS Pro, and Slurm's Torque wrappers, through qsub, qstat and qdel."""

    name = "pbs"
    #: The floor under the poll interval (seconds). Override per project with the adapter setting
    #: ``pbs_min_poll_interval`` or the environment variable CELLINE_JOBS_PBS_MIN_POLL_INTERVAL.
    min_poll_interval = 30.0
    default_poll_interval = 30.0
    fast_poll_interval = 3.0
    #: A job qstat no longer lists, with no exit-code file and no exit status, becomes UNKNOWN
    #: after this long (never "completed").
    missing_grace = MISSING_GRACE_SECONDS

    def __init__(self, context: SchedulerContext) -> None:
        super().__init__(context)
        floor = poll_floor_override(context.settings, "pbs_min_poll_interval", MIN_POLL_ENV, "PBS")
        if floor is not None:
            self.min_poll_interval = floor  # type: ignore[misc]  # per-instance override of the class floor
        forced = context.settings.get("pbs_flavour") or os.environ.get(FLAVOUR_ENV)
        if forced is not None and forced not in FLAVOURS:
            raise InvalidInputError(f"invalid PBS flavour {forced!r}: use one of {', '.join(FLAVOURS)}")
        self._flavour: str | None = forced
        self._version: str | None = None
        self._logged_states: set[tuple[str, str]] = set()

    def available(self) -> bool:
        return shutil.which("qsub") is not None and shutil.which("qstat") is not None

    # -- hooks of the shared flow (batch/adapter.py) ---------------------------------------------

    submit_command = "qsub"
    held_directive = re.compile(r"^(#PBS\s+)?-h\s*$")

    def render_script(self, job: JobInfo) -> str:
        return render_pbs_script(job, self.context.paths, self.flavour, self._pbs_server())

    def submit_argv(self, job: JobInfo, script: str) -> list[str]:
        return qsub_command(script, str(self.context.paths.log_file(job.job_id)), self.flavour)

    def parse_submit_output(self, stdout: str) -> tuple[str, dict[str, Any]]:
        return parse_qsub_output(stdout), {"pbs_flavour": self.flavour}

    def array_indices(self, spec: str) -> list[int]:
        flavour = self.flavour
        return optional(lambda s: array_indices(s, flavour), spec) or []

    def submit_hint(self, job: JobInfo) -> str:
        return (f"the server may have accepted the job anyway: check `qstat -u {current_user()}` for "
                f"{pbs_job_name(job.name, self.flavour)}")

    def send_cancel(self, native_ids: Sequence[str]) -> None:
        """qdel in chunks; array tasks of the Slurm wrapper ("1501_3") through scancel, since the
        wrapper's qdel reads "1501_3" as 1501 and would kill the whole array. qdel's complaints
        about jobs that had already ended are not errors."""
        wrapper_tasks = [n for n in native_ids if _WRAPPER_TASK_RE.match(n)]
        ids = [n for n in native_ids if not _WRAPPER_TASK_RE.match(n)]
        problems: list[str] = []
        for start in range(0, len(ids), QSTAT_CHUNK):
            result = self.runner.run(["qdel", *ids[start:start + QSTAT_CHUNK]], check=False)
            if result.returncode != 0:
                lines = [line.strip() for line in (result.stdout + "\n" + result.stderr).split("\n") if line.strip()]
                problems.extend(line for line in lines if not _BENIGN_QDEL_RE.search(line))
        if wrapper_tasks:
            result = self.runner.run(["scancel", *wrapper_tasks], check=False)
            if result.returncode != 0 and result.stderr.strip():
                problems.append(error_line(result.stderr, "scancel failed"))
        if problems:
            raise SchedulerError(f"qdel failed: {problems[-1][:300]}")

    # -- poll --------------------------------------------------------------------------------

    def poll(self, jobs: Sequence[JobInfo]) -> PollResult:
        """The state of ``jobs`` from ONE qstat call (+ on the Slurm wrapper, at most one scontrol).

        Arrays (a job with ``metadata["array"]``) are summarised from their tasks, which come back
        as updates for ``f"{parent.job_id}_{index}"`` with ``array_parent``, ``array_index`` and
        ``native_id`` in their fields (the monitor inserts the rows), as the SLURM adapter does."""
        calls_before = self.runner.calls
        units, parents = collect_units(jobs, self.context.store, _Unit)
        if not units and not parents:
            return PollResult([], 0)
        flavour = self.flavour
        wanted = [p.native_id for p, _children in parents if p.native_id]
        wanted += [u.native_id for u in units if u.parent is None or u.parent.native_id is None]
        records = self._qstat(list(dict.fromkeys(wanted)), flavour)
        by_key: dict[tuple[str, int | None, bool], PbsRecord] = {}
        for record in records:
            by_key.setdefault(record.ident.key, record)
        known_units = {u.job_id for u in units}
        for parent, children in parents:
            parent_ident = optional(parse_job_id, parent.native_id or "")
            indices = set(optional(lambda s: array_indices(s, flavour), str(parent.metadata.get("array", ""))) or [])
            if parent_ident is not None:
                indices.update(r.ident.index for r in records if r.ident.seq == parent_ident.seq
                               and r.ident.index is not None)
            for index in sorted(i for i in indices if i is not None):
                child_id = f"{parent.job_id}_{index}"
                child = children.get(index)
                if child_id in known_units or (child is not None and child.status.final):
                    continue
                units.append(_Unit(child_id, _task_native_id(parent.native_id or "", index, flavour), child,
                                   parent, index))
                known_units.add(child_id)
        for unit in units:
            self._observe(unit, by_key, flavour)
        self._resolve([u for u in units if u.want_resolution])
        updates: list[JobUpdate] = []
        for unit in units:
            update = self._decide(unit, flavour)
            if update is not None:
                updates.append(update)
        for parent, children in parents:
            spec = optional(lambda s: array_indices(s, flavour), str(parent.metadata.get("array", ""))) or []
            update = summarise_array(parent, children, [u for u in units if u.parent is parent], spec, self._missing)
            if update is not None:
                updates.append(update)
        return PollResult(updates, self.runner.calls - calls_before)

    def _qstat(self, native_ids: Sequence[str], flavour: str) -> list[PbsRecord]:
        records: list[PbsRecord] = []
        for start in range(0, len(native_ids), QSTAT_CHUNK):
            chunk = native_ids[start:start + QSTAT_CHUNK]
            result = self.runner.run(qstat_command(chunk, flavour), check=False)
            if result.returncode != 0:
                # 153 (PBSE_UNKJOBID & 255) is "an id you asked for is unknown": the wrapper then
                # prints nothing, Torque and PBS Pro still print the ids they know. Anything else
                # (cannot connect, Slurm not answering) makes this poll stale.
                unknown_only = result.returncode == 153 and (
                    not result.stderr.strip() or all(_UNKNOWN_JOB_RE.search(line)
                                                     for line in result.stderr.strip().split("\n")))
                if not unknown_only:
                    raise SchedulerError(f"qstat exited {result.returncode}: "
                                         f"{error_line(result.stderr or result.stdout, 'no output')}")
            try:
                records.extend(parse_qstat(result.stdout, flavour))
            except ParseError as exc:
                raise SchedulerError(f"unexpected qstat output: {exc}") from None
        return records

    def _observe(self, unit: _Unit, by_key: Mapping[tuple[str, int | None, bool], PbsRecord], flavour: str) -> None:
        """Find the unit's record and exit-code file; decide whether the wrapper's Slurm must be
        asked (``want_resolution``: finished or gone, with no evidence of how it ended)."""
        ident = optional(parse_job_id, unit.native_id)
        if ident is not None:
            unit.record = by_key.get(ident.key)
            if unit.record is None and ident.index is None and not ident.array:
                unit.record = by_key.get((ident.seq, None, True))  # an attached array's own record
        if unit.parent is not None and flavour == TORQUE_SLURM:
            parent_ident = optional(parse_job_id, unit.parent.native_id or "")
            unit.parent_record = by_key.get(parent_ident.key) if parent_ident is not None else None
            unit.record = None  # the wrapper never shows tasks: "1501_3" matched nothing real
        read_unit_exit(unit, self.context.paths)
        record = unit.record
        if record is not None:
            _status, known = map_state(record.state, flavour)
            if not known and (unit.job_id, record.state) not in self._logged_states:
                self._logged_states.add((unit.job_id, record.state))  # once, not at every poll
                log.warning("job %s: unknown PBS state %r (shown as unknown)", unit.job_id, record.state)
        finished = record is None or record.state in FINISHED_STATES
        if unit.parent_record is not None and unit.parent_record.state not in FINISHED_STATES:
            finished = False  # the rest of the array is still queued or running
        unit.want_resolution = (flavour == TORQUE_SLURM and finished and unit.exit is None
                                and not unit.cancel_requested
                                and (record is None or record.exit_status is None))

    def _resolve(self, need: Sequence[_Unit]) -> None:
        """The Slurm wrapper's fallback: ONE ``scontrol -o show job`` (one id, or every job when
        several are needed) says how jobs without an exit-code file ended (cancelled while
        pending, DependencyNeverSatisfied, killed...) and the state of each array task."""
        if not need:
            return
        ids = list(dict.fromkeys(_slurm_job_of(u) for u in need))
        try:
            result = self.runner.run(["scontrol", "-o", "show", "job", *(ids if len(ids) == 1 else [])], check=False)
            records = [scontrol_accounting(r) for r in parse_scontrol_jobs(result.stdout)] \
                if result.returncode == 0 else []
        except (SchedulerError, ParseError) as exc:
            log.warning("Slurm lookup under the PBS wrapper failed (no evidence this poll): %s", exc)
            return
        by_id = {r.job_id: r for r in records}
        for unit in need:
            unit.acct = by_id.get(unit.native_id)

    # -- deciding ----------------------------------------------------------------------------

    def _decide(self, unit: _Unit, flavour: str) -> JobUpdate | None:
        listed_unfinished = unit.record is not None and unit.record.state not in FINISHED_STATES
        if listed_unfinished and conclusive_exit(unit):
            record = unit.record
            assert record is not None
            facts = {"pbs_state": record.state}
            if record.exec_host:
                facts["exec_host"] = record.exec_host
            update: JobUpdate | None = settled_while_listed(unit, record.start, facts)
        else:
            update = self._judge(unit, flavour)
        return reconciled(unit, update, scheduler_done=not listed_unfinished)

    def _judge(self, unit: _Unit, flavour: str) -> JobUpdate | None:
        """What this poll's evidence says of a job: qstat's record of a job not yet finished, else
        its exit-code file, else the exit status PBS kept, else Slurm's (wrapper flavour)."""
        record, exit_record, acct = unit.record, unit.exit, unit.acct
        fields: dict[str, Any] = {}
        meta: dict[str, Any] = {}
        status: JobStatus | None = None
        reason: str | None = None
        kind: str | None = None
        exit_code: int | None = None
        sig: int | None = None
        if record is not None:
            meta["pbs_state"] = record.state
            if record.exec_host:
                meta["exec_host"] = record.exec_host
            if record.usage:
                meta["usage"] = dict(record.usage)
        if record is not None and record.state not in FINISHED_STATES:
            status, _known = map_state(record.state, flavour)
            if status is JobStatus.QUEUED and flavour == TORQUE_SLURM and unit.job is not None \
                    and unit.job.status is JobStatus.HELD:
                status = JobStatus.HELD  # the wrapper shows held jobs as Q: keep what we know
            if record.state == "M":  # moved away: it may still run on the other server
                reason = (f"moved to another PBS server ({record.queue or 'unknown queue'}); it may still run "
                          "there, but this server no longer reports on it")
            elif status is JobStatus.UNKNOWN:
                reason = f"PBS reports the state {record.state!r}"
            else:
                reason = _STATE_REASONS.get(record.state) or (record.comment if status in (
                    JobStatus.QUEUED, JobStatus.HELD) else None)
        elif exit_record is not None:
            status, reason = exit_file_verdict(unit, exit_record)
            exit_code, sig = exit_record.exit_code, exit_record.signal
            if record is not None and record.exit_status is not None and record.exit_status < 0 \
                    and status is JobStatus.FAILED:
                meaning = interpret_exit_status(record.exit_status, flavour)  # PBS says why
                reason, kind = meaning.reason, meaning.kind
        elif record is not None and flavour != TORQUE_SLURM and not record.started \
                and is_deletion_status(record.exit_status):
            # Finished without ever starting (no start time, no exec_host), with no exit status or
            # a signal's: deleted while queued (qdel, an administrator, or PBS itself when the
            # dependency failed; Torque then reports 271 = 256 + SIGTERM). Weighed before the status.
            status, kind = JobStatus.CANCELLED, reasons.CANCELLED
            if unit.cancel_requested:
                reason = reasons.CANCELLED_BY_USER
            elif record.comment and _DEPENDENCY_COMMENT_RE.search(record.comment):
                reason, kind = reasons.dependency_never_satisfied(record.comment), reasons.DEPENDENCY
            else:
                reason = f"deleted before it started{': ' + record.comment if record.comment else ''}"
        elif record is not None and record.exit_status is not None:
            meaning = interpret_exit_status(record.exit_status, flavour)
            exit_code, sig = meaning.exit_code, meaning.signal
            if unit.cancel_requested:
                status, reason, kind = JobStatus.CANCELLED, reasons.CANCELLED_BY_USER, reasons.CANCELLED
            elif meaning.exit_code == 0:
                status = JobStatus.COMPLETED
            else:
                status, kind = JobStatus.FAILED, meaning.kind
                reason = meaning.reason
                killed = limit_kill(record.comment) if meaning.reason is None else None
                if killed is not None:
                    kind, reason = killed
                elif reason is None:
                    kind = reasons.SIGNAL if sig is not None else reasons.EXIT
                    reason = f"killed by signal {signal_name(sig)}" if sig is not None else f"exit code {exit_code}"
        elif unit.cancel_requested and (record is not None or unit.parent_record is None
                                        or unit.parent_record.state in FINISHED_STATES):
            status, reason, kind = JobStatus.CANCELLED, reasons.CANCELLED_BY_USER, reasons.CANCELLED
        elif acct is not None:
            slurm_status = slurm_map_state(acct.state)[0]
            if slurm_status.final:
                status, exit_code, sig = slurm_status, acct.exit_code, acct.signal
                reason = self._slurm_reason(unit, slurm_status, acct)
            elif slurm_status is JobStatus.RUNNING and unit.parent is not None:
                status = JobStatus.RUNNING
            elif slurm_status is not JobStatus.UNKNOWN and unit.parent is not None:
                status, reason = slurm_status, acct.reason
            if acct.start is not None and acct.nodes is not None and status is not None:
                fields["start_time"] = acct.start
        elif unit.parent_record is not None and unit.parent_record.state not in FINISHED_STATES:
            # A task of an array on the Slurm wrapper, which shows no tasks: its log appears when
            # it starts (the task script opens it first thing), its exit-code file when it ends.
            status = JobStatus.RUNNING if self.context.paths.log_file(unit.job_id).exists() else JobStatus.QUEUED
        if status is None:
            return self._missing(unit, record)
        if unit.metadata.get("missing_since") is not None:
            meta["missing_since"] = None  # found again
        start = (record.start if record is not None else None) or (exit_record.start_time if exit_record else None)
        if start is not None and (status is JobStatus.RUNNING or status.final):
            fields["start_time"] = start
        elif status is JobStatus.RUNNING and "start_time" not in fields and unit.job is not None \
                and unit.job.start_time is None:
            fields["start_time"] = utcnow()  # first seen running (the wrapper's tasks have no times)
        if status.final:
            fields["end_time"] = ((exit_record.end_time if exit_record else None) or (record.end if record else None)
                                  or (acct.end if acct else None) or utcnow())
            if status is JobStatus.COMPLETED and exit_code is None and sig is None:
                exit_code = 0
            ran = "start_time" in fields or (unit.job is not None and unit.job.start_time is not None)
            if status is JobStatus.CANCELLED and not ran and exit_record is None:
                exit_code, sig = None, None  # Slurm's "0:0" for a job that never ran is no exit code
            fields["exit_code"], fields["signal"] = exit_code, sig
            if kind is None and status is JobStatus.FAILED:
                kind = exit_reason(exit_code, sig)[1] or reasons.EXIT
            elif kind is None and status is JobStatus.CANCELLED:
                kind = reasons.CANCELLED
            if kind is not None and status is not JobStatus.COMPLETED:
                meta[reasons.KIND_META_KEY] = kind
        elif status is JobStatus.RUNNING and unit.job is not None:
            progress = read_job_progress(self.context.paths, unit.job.job_id, unit.job.progress)
            if progress is not None:
                fields["progress"] = progress
        fields["reason"] = reason
        if meta:
            fields["metadata"] = meta
        fields.update(task_identity(unit))
        unit.status, unit.fields = status, fields
        return JobUpdate(unit.job_id, status, fields, source="poll")

    def _slurm_reason(self, unit: _Unit, status: JobStatus, acct: AccountingRecord) -> str | None:
        if status is JobStatus.COMPLETED:
            return None
        if status is JobStatus.CANCELLED:
            if (acct.reason or "").startswith("Dependency"):
                deps = unit.metadata.get("native_dependencies") or []
                return reasons.dependency_never_satisfied(
                    kind=unit.job.dependency_kind if unit.job else None, on=deps, scheduler="PBS")
            return "cancelled in PBS/Slurm (qdel, scancel or an administrator)"
        if acct.state in ("TIMEOUT", "OUT_OF_MEMORY", "NODE_FAIL", "PREEMPTED", "BOOT_FAIL", "DEADLINE"):
            return f"{acct.state} (reported by Slurm under the PBS wrapper)"
        if acct.signal is not None:
            return f"killed by signal {signal_name(acct.signal)}"
        return f"exit code {acct.exit_code}" if acct.exit_code else "failed"

    def _missing(self, unit: BatchUnit, record: PbsRecord | None = None) -> JobUpdate | None:
        """No evidence this poll: keep the job; UNKNOWN with a reason after the grace period."""
        if record is not None and record.state in FINISHED_STATES:
            what = f"PBS says job {unit.native_id} finished ({record.state}) but gives no exit status"
        else:
            what = f"PBS no longer lists job {unit.native_id}"
        return missing_update(unit, self.missing_grace, lambda minutes: (
            f"{what}, and there is no exit-code file for it (for {minutes:.0f} min); it may have been "
            "purged, lost, or killed before it could write one"))


# ------------------------------------------------------------------------------------------------
# Helpers
# ------------------------------------------------------------------------------------------------


def _task_native_id(parent_native: str, index: int, flavour: str) -> str:
    """A task's id: PBS's "123[4].server" (from "123[].server"), or Slurm's "1501_4" under the
    wrapper (which has no task ids of its own; scontrol and scancel understand Slurm's)."""
    if flavour == TORQUE_SLURM:
        return f"{parent_native}_{index}"
    if "[]" in parent_native:
        return parent_native.replace("[]", f"[{index}]", 1)
    seq, dot, server = parent_native.partition(".")
    return f"{seq}[{index}]{dot}{server}"


def _slurm_job_of(unit: _Unit) -> str:
    """The Slurm job id to show for a unit under the wrapper (an array task: its array's id)."""
    if unit.parent is not None and unit.parent.native_id:
        return unit.parent.native_id
    return unit.native_id
