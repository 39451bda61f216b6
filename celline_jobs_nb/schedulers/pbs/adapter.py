"""PBS: the adapter; helpers (see the package docstring)."""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ...core import reasons
from ...core.errors import InvalidInputError
from ...core.exits import signal_name
from ...core.models import JobInfo, JobStatus
from .. import create
from ..base import SchedulerContext
from ..batch.adapter import BatchScheduler
from ..batch.poll import PollUnit, RecordSource, Resolver, SchedulerRecord, Verdict
from ..batch.rules import (
    BatchUnit,
    current_user,
    optional,
)
from .exits import is_deletion_status, limit_kill
from .flavours import flavour_of
from .inspect import FLAVOUR_ENV, PbsInspection
from .parse import PbsRecord, parse_job_id, parse_qsub_output
from .script import pbs_job_name, render_pbs_script
from .states import _STATE_REASONS, FINISHED_STATES, FLAVOURS

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


def _qdel_problems(output: str) -> list[str]:
    lines = [line.strip() for line in output.split("\n") if line.strip()]
    return [line for line in lines if not _BENIGN_QDEL_RE.search(line)]


@dataclass
class _Unit(PollUnit):
    """One job or array task being polled: ``record`` is qstat's, ``resolved`` Slurm's (wrapper
    flavour only)."""

    record: PbsRecord | None = None
    parent_record: PbsRecord | None = None  # the Slurm wrapper shows only the array's own record
    resolved: SchedulerRecord | None = None


class PbsScheduler(PbsInspection, BatchScheduler):
    """Torque / OpenPBS / PBS Pro, and Slurm's Torque wrappers, through qsub, qstat and qdel."""

    name = "pbs"
    min_poll_env = MIN_POLL_ENV  # or the adapter setting pbs_min_poll_interval (BatchScheduler)
    #: A job qstat no longer lists, with no exit-code file and no exit status, becomes UNKNOWN
    #: after this long (never "completed").
    missing_grace = MISSING_GRACE_SECONDS

    def __init__(self, context: SchedulerContext) -> None:
        super().__init__(context)
        forced = context.settings.get("pbs_flavour") or os.environ.get(FLAVOUR_ENV)
        if forced is not None and forced not in FLAVOURS:
            raise InvalidInputError(f"invalid PBS flavour {forced!r}: use one of {', '.join(FLAVOURS)}")
        self._flavour: str | None = forced
        self._version: str | None = None
        self._underneath: RecordSource | None = None

    def available(self) -> bool:
        return shutil.which("qsub") is not None and shutil.which("qstat") is not None

    # -- hooks of the shared flow (batch/adapter.py) ---------------------------------------------

    submit_command = "qsub"
    held_directive = re.compile(r"^(#PBS\s+)?-h\s*$")

    def render_script(self, job: JobInfo) -> str:
        return render_pbs_script(job, self.context.paths, self.flavour, self._pbs_server())

    def submit_argv(self, job: JobInfo, script: str) -> list[str]:
        return self.strategy.qsub_argv(script, str(self.context.paths.log_file(job.job_id)))

    def parse_submit_output(self, stdout: str) -> tuple[str, dict[str, Any]]:
        return parse_qsub_output(stdout), {"pbs_flavour": self.flavour}

    def array_indices(self, spec: str) -> list[int]:
        return optional(self.strategy.array_indices, spec) or []

    def submit_hint(self, job: JobInfo) -> str:
        return (f"the server may have accepted the job anyway: check `qstat -u {current_user()}` for "
                f"{pbs_job_name(job.name, self.flavour)}")

    def send_cancel(self, native_ids: Sequence[str]) -> None:
        """The flavour's cancel commands (qdel in chunks; the wrappers' array tasks through
        scancel). Complaints about jobs that had already ended are not errors."""
        self.run_cancels(self.strategy.cancel_argvs(native_ids, QSTAT_CHUNK), _qdel_problems, "qdel")

    # -- hooks of the shared poll (batch/poll.py) ------------------------------------------------

    label = "PBS"
    unit_class = _Unit
    status_chunk = QSTAT_CHUNK

    def status_argv(self, native_ids: Sequence[str]) -> list[str]:
        return self.strategy.qstat_argv(native_ids)

    def parse_status(self, stdout: str) -> list[PbsRecord]:
        return self.strategy.parse_qstat(stdout)

    def unknown_ids_only(self, result: subprocess.CompletedProcess[str]) -> bool:
        # 153 (PBSE_UNKJOBID & 255) is "an id you asked for is unknown": the wrapper then prints
        # nothing, Torque and PBS Pro still print the ids they know. Anything else (cannot
        # connect, Slurm not answering) makes this poll stale.
        return result.returncode == 153 and (not result.stderr.strip() or all(
            _UNKNOWN_JOB_RE.search(line) for line in result.stderr.strip().split("\n")))

    def record_key(self, record: PbsRecord) -> Hashable:
        return record.ident.key

    def find_record(self, unit: _Unit, by_key: Mapping[Hashable, PbsRecord]) -> PbsRecord | None:
        ident = optional(parse_job_id, unit.native_id)
        record = None
        if ident is not None:
            record = by_key.get(ident.key)
            if record is None and ident.index is None and not ident.array:
                record = by_key.get((ident.seq, None, True))  # an attached array's own record
        if unit.parent is not None and not self.strategy.shows_tasks:
            parent_ident = optional(parse_job_id, unit.parent.native_id or "")
            unit.parent_record = by_key.get(parent_ident.key) if parent_ident is not None else None
            record = None  # the wrapper never shows tasks: "1501_3" matched nothing real
        return record

    def map_state(self, state: str) -> tuple[JobStatus, bool]:
        return self.strategy.map_state(state)

    def record_finished(self, record: PbsRecord) -> bool:
        return record.state in FINISHED_STATES

    def record_facts(self, record: PbsRecord) -> dict[str, Any]:
        facts = {"pbs_state": record.state}
        if record.exec_host:
            facts["exec_host"] = record.exec_host
        return facts

    def listed_tasks(self, parent: JobInfo, records: Sequence[PbsRecord]) -> list[int]:
        ident = optional(parse_job_id, parent.native_id or "")
        if ident is None:
            return []
        return [r.ident.index for r in records if r.ident.seq == ident.seq and r.ident.index is not None]

    def task_native_id(self, parent_native: str, index: int) -> str:
        return self.strategy.task_native_id(parent_native, index)

    def needs_resolution(self, unit: _Unit) -> bool:
        """Only with a scheduler underneath (the wrappers): a job finished or gone with no evidence
        of how it ended."""
        record = unit.record
        finished = record is None or record.state in FINISHED_STATES
        if unit.parent_record is not None and unit.parent_record.state not in FINISHED_STATES:
            finished = False  # the rest of the array is still queued or running
        return (self.strategy.underneath is not None and finished and unit.exit is None
                and not unit.cancel_requested and (record is None or record.exit_status is None))

    def resolvers(self) -> Sequence[Resolver]:
        return (self._resolve_underneath,) if self.strategy.underneath is not None else ()

    def listed_verdict(self, unit: _Unit) -> Verdict | None:
        record = unit.record
        if record is None or record.state in FINISHED_STATES:
            return None
        status, _known = self.strategy.map_state(record.state)
        if status is JobStatus.QUEUED and not self.strategy.shows_held and unit.job is not None \
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
        return Verdict(status, reason)

    def explain_exit(self, unit: _Unit, verdict: Verdict) -> Verdict:
        """A negative exit status says why PBS ended a job the exit-code file shows killed."""
        record = unit.record
        if record is not None and record.exit_status is not None and record.exit_status < 0 \
                and verdict.status is JobStatus.FAILED:
            meaning = self.strategy.interpret(record.exit_status)
            verdict.reason, verdict.kind = meaning.reason, meaning.kind
        return verdict

    def ended_verdict(self, unit: _Unit) -> Verdict | None:
        record, acct = unit.record, unit.resolved
        if record is not None and self.strategy.keeps_exit_status and not record.started \
                and is_deletion_status(record.exit_status):
            # Finished without ever starting (no start time, no exec_host), with no exit status or
            # a signal's: deleted while queued (qdel, an administrator, or PBS itself when the
            # dependency failed; Torque then reports 271 = 256 + SIGTERM). Weighed before the status.
            if unit.cancel_requested:
                return Verdict(JobStatus.CANCELLED, reasons.CANCELLED_BY_USER, reasons.CANCELLED)
            if record.comment and _DEPENDENCY_COMMENT_RE.search(record.comment):
                return Verdict(JobStatus.CANCELLED, reasons.dependency_never_satisfied(record.comment),
                               reasons.DEPENDENCY)
            detail = f": {record.comment}" if record.comment else ""
            return Verdict(JobStatus.CANCELLED, f"deleted before it started{detail}", reasons.CANCELLED)
        if record is not None and record.exit_status is not None:
            meaning = self.strategy.interpret(record.exit_status)
            verdict = Verdict(JobStatus.FAILED, meaning.reason, meaning.kind, meaning.exit_code, meaning.signal)
            if unit.cancel_requested:
                verdict.status, verdict.reason, verdict.kind = \
                    JobStatus.CANCELLED, reasons.CANCELLED_BY_USER, reasons.CANCELLED
            elif meaning.exit_code == 0:
                verdict.status, verdict.reason = JobStatus.COMPLETED, None
            elif meaning.reason is None:  # a limit named in the comment, else the exit's own kind
                verdict.kind, verdict.reason = limit_kill(record.comment) or (None, None)
            return verdict
        if acct is not None:
            return self._underneath_verdict(unit, acct)
        return None

    def cancel_mark_ends(self, unit: _Unit) -> bool:
        return unit.record is not None or unit.parent_record is None or unit.parent_record.state in FINISHED_STATES

    def unlisted_verdict(self, unit: _Unit) -> Verdict | None:
        if unit.parent_record is not None and unit.parent_record.state not in FINISHED_STATES:
            # A task of an array on the Slurm wrapper, which shows no tasks: its log appears when
            # it starts (the task script opens it first thing), its exit-code file when it ends.
            running = self.context.paths.log_file(unit.job_id).exists()
            return Verdict(JobStatus.RUNNING if running else JobStatus.QUEUED)
        return None

    def facts(self, unit: _Unit, verdict: Verdict) -> dict[str, Any]:
        record = unit.record
        if record is None:
            return {}
        meta = self.record_facts(record)
        if record.usage:
            meta["usage"] = dict(record.usage)
        return meta

    def missing_reason(self, unit: BatchUnit, minutes: float) -> str:
        record = unit.record if isinstance(unit, _Unit) else None
        if record is not None and record.state in FINISHED_STATES:
            what = f"PBS says job {unit.native_id} finished ({record.state}) but gives no exit status"
        else:
            what = f"PBS no longer lists job {unit.native_id}"
        return (f"{what}, and there is no exit-code file for it (for {minutes:.0f} min); it may have been "
                "purged, lost, or killed before it could write one")

    # -- the scheduler underneath (the wrappers' Slurm) ----------------------------------------

    def _resolve_underneath(self, need: Sequence[_Unit]) -> bool:
        """ONE question to the scheduler underneath, through its adapter from the registry (for
        Slurm: ``scontrol -o show job``, of one id or of every job): how jobs without an exit-code
        file ended (cancelled while pending, DependencyNeverSatisfied, killed...) and the state of
        each array task."""
        underneath = self._underneath
        if underneath is None:
            adapter = create(self.strategy.underneath or "", self.context)
            if not isinstance(adapter, RecordSource):
                log.warning("the %s adapter cannot describe jobs: no evidence under the PBS wrapper",
                            self.strategy.underneath)
                return True
            underneath = self._underneath = adapter
        underneath.runner = self.runner  # its command counts as this poll's
        records = underneath.job_records([_slurm_job_of(u) for u in need])
        for unit in need:
            unit.resolved = records.get(unit.native_id)
        return True

    def _underneath_verdict(self, unit: _Unit, record: SchedulerRecord) -> Verdict | None:
        start = record.start if record.nodes is not None else None
        if record.status.final:
            return Verdict(record.status, self._slurm_reason(unit, record.status, record), exit_code=record.exit_code,
                           signal=record.signal, start=start, end=record.end)
        if record.status is JobStatus.RUNNING and unit.parent is not None:
            return Verdict(JobStatus.RUNNING, start=start)
        if record.status is not JobStatus.UNKNOWN and unit.parent is not None:
            return Verdict(record.status, record.reason, start=start)
        return None

    def _slurm_reason(self, unit: _Unit, status: JobStatus, acct: SchedulerRecord) -> str | None:
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


# ------------------------------------------------------------------------------------------------
# Helpers
# ------------------------------------------------------------------------------------------------


def _task_native_id(parent_native: str, index: int, flavour: str) -> str:
    """A task's id: PBS's "123[4].server" (from "123[].server"), or Slurm's "1501_4" under the
    wrapper (``PbsFlavour.task_native_id``)."""
    return flavour_of(flavour).task_native_id(parent_native, index)


def _slurm_job_of(unit: _Unit) -> str:
    """The Slurm job id to show for a unit under the wrapper (an array task: its array's id)."""
    if unit.parent is not None and unit.parent.native_id:
        return unit.parent.native_id
    return unit.native_id
