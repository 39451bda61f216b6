"""Slurm: the adapter; helpers (see the package docstring)."""

from __future__ import annotations

import logging
import re
import shlex
import shutil
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ...core import reasons
from ...core.errors import ParseError, SchedulerError
from ...core.exits import signal_name
from ...core.jobfiles import ExitRecord, read_job_progress
from ...core.models import JobInfo, JobStatus, utcnow
from ...core.updates import JobUpdate
from ..base import PollResult, SchedulerContext
from ..batch.adapter import BatchScheduler
from ..batch.rules import (
    BatchUnit,
    cancel_took_effect,
    collect_units,
    conclusive_exit,
    current_user,
    error_line,
    exit_file_verdict,
    missing_update,
    poll_floor_override,
    read_unit_exit,
    reconciled,
    settled_while_listed,
    summarise_array,
    task_identity,
)
from .inspect import SlurmInspection
from .parse import (
    POLL_FORMAT,
    SACCT_C_FIELDS,
    SACCT_FIELDS,
    AccountingRecord,
    SqueueRecord,
    _indices_or_empty,
    _pick,
    parse_sacct,
    parse_sbatch_output,
    parse_scontrol_jobs,
    parse_squeue,
    scontrol_accounting,
)
from .script import render_batch_script, slurm_job_name
from .states import _FINAL_STATE_KINDS, _FINAL_STATE_REASONS, _STATES_THAT_EXPLAIN_A_SIGNAL, is_held_reason, map_state

log = logging.getLogger("celline.job")

# ------------------------------------------------------------------------------------------------
# The adapter
# ------------------------------------------------------------------------------------------------

MIN_POLL_ENV = "CELLINE_JOBS_SLURM_MIN_POLL_INTERVAL"
MISSING_GRACE_SECONDS = 300.0
ACCOUNTING_RECHECK_SECONDS = 3600.0
ACCOUNTING_META_KEY = "slurm.accounting"
SQUEUE_CHUNK = 2000  # ids per squeue call: keeps argv bounded; 2000 tracked jobs is still one call


@dataclass
class _Unit(BatchUnit):
    """One job or array task being polled, and the evidence gathered about it this poll (the
    exit-code file, cancel mark and decision live in ``BatchUnit``, shared with PBS)."""

    record: SqueueRecord | None = None
    acct: AccountingRecord | None = None
    want_accounting: bool = False
    want_usage: bool = False

    @property
    def raw_id(self) -> str | None:
        if self.record is not None:
            return self.record.raw_id
        raw = self.metadata.get("raw_id")
        if raw:
            return str(raw)
        return self.native_id if self.native_id.isdigit() else None


class SlurmScheduler(SlurmInspection, BatchScheduler):
    """SLURM through its command-line tools (tested on 22.05; parsers cover newer text shapes)."""

    name = "slurm"
    #: The floor under the poll interval (seconds). Override per project with the adapter setting
    #: ``slurm_min_poll_interval`` or the environment variable CELLINE_JOBS_SLURM_MIN_POLL_INTERVAL.
    min_poll_interval = 30.0
    default_poll_interval = 30.0
    #: Right after a submit the monitor polls this often (see JobMonitor.poll_interval).
    fast_poll_interval = 3.0
    #: A job SLURM no longer lists, with no exit-code file and no accounting record, becomes
    #: UNKNOWN after this long (never "completed").
    missing_grace = MISSING_GRACE_SECONDS
    #: Seconds between ``sstat`` samples of running jobs' memory and CPU.
    usage_interval = 300.0

    def __init__(self, context: SchedulerContext) -> None:
        super().__init__(context)
        floor = poll_floor_override(context.settings, "slurm_min_poll_interval", MIN_POLL_ENV, "SLURM")
        if floor is not None:
            self.min_poll_interval = floor  # type: ignore[misc]  # per-instance override of the class floor
        self._last_usage_sample = -float("inf")
        self._accounting: str | None = None  # "slurmdbd", "jobcomp", "none"; None: not probed yet
        self._accounting_checked = 0.0
        self._usage_followups: dict[str, tuple[str, float]] = {}  # job id -> (native id, give up at)
        self._logged_states: set[tuple[str, str]] = set()

    def available(self) -> bool:
        return shutil.which("sbatch") is not None and shutil.which("squeue") is not None

    # -- hooks of the shared flow (batch/adapter.py) ---------------------------------------------

    submit_command = "sbatch"
    held_directive = re.compile(r"^(#SBATCH\s+)?(-H|--hold)\b")

    def render_script(self, job: JobInfo) -> str:
        return render_batch_script(job, self.context.paths)

    def submit_argv(self, job: JobInfo, script: str) -> list[str]:
        return ["sbatch", "--parsable", script]

    def parse_submit_output(self, stdout: str) -> tuple[str, dict[str, Any]]:
        native_id, cluster = parse_sbatch_output(stdout)
        return native_id, ({"slurm_cluster": cluster} if cluster else {})

    def array_indices(self, spec: str) -> list[int]:
        return _indices_or_empty(spec)

    def submit_hint(self, job: JobInfo) -> str:
        name = shlex.quote(slurm_job_name(job.name))
        return f"the controller may have accepted the job anyway: check `squeue -n {name}`"

    def send_cancel(self, native_ids: Sequence[str]) -> None:
        self.runner.run(["scancel", *native_ids])

    def poll(self, jobs: Sequence[JobInfo]) -> PollResult:
        """The state of ``jobs`` from ONE squeue call (+ at most one resolution call).

        Returns a ``JobUpdate`` per job whose facts are known. For an array job (a job with
        ``metadata["array"]``, e.g. "1-4%2") it returns:

        - one update per task not yet final in the store, for the child id
          ``f"{parent.job_id}_{index}"``, whose ``fields`` always hold ``array_parent`` (the parent's
          job id), ``array_index`` (int) and ``native_id`` (``"<array id>_<index>"``) besides the
          task's status fields; the monitor inserts the rows that do not exist yet;
        - one update for the parent summarising its tasks: RUNNING once any task started, final
          when all are (FAILED if any failed, else CANCELLED if any was cancelled, else COMPLETED),
          with ``metadata["array_tasks"]`` = counts per status plus ``"total"``.

        Array tasks whose parent is not among ``jobs`` are polled by their own native id.
        """
        calls_before = self.runner.calls
        units, parents = self._units(jobs)
        if not units and not parents:
            return PollResult([], 0)
        wanted = [p.native_id for p, _children in parents if p.native_id]
        wanted += [u.native_id for u in units if u.parent is None or u.parent.native_id is None]
        records = self._squeue(list(dict.fromkeys(wanted)))
        by_key: dict[str, SqueueRecord] = {}
        for record in records:
            by_key.setdefault(record.key, record)
        # Array tasks we have no row for yet become units now (the monitor inserts them).
        known_units = {u.job_id for u in units}
        for parent, children in parents:
            for index in self._task_indices(parent, records):
                child_id = f"{parent.job_id}_{index}"
                child = children.get(index)
                if child_id in known_units or (child is not None and child.status.final):
                    continue
                units.append(_Unit(child_id, f"{parent.native_id}_{index}", child, parent, index))
                known_units.add(child_id)
        mode = self._accounting_mode()
        for unit in units:
            unit.record = by_key.get(unit.native_id)
            self._observe(unit, usage_known=mode in (None, "slurmdbd"))
        followups = dict(self._usage_followups) if mode in (None, "slurmdbd") else {}
        late = self._resolve(units, mode, [native for native, _deadline in followups.values()])
        updates: list[JobUpdate] = []
        for unit in units:
            update = self._decide(unit)
            if update is not None:
                updates.append(update)
        for parent, children in parents:
            update = self._summarise(parent, children, [u for u in units if u.parent is parent])
            if update is not None:
                updates.append(update)
        updates.extend(self._follow_up_usage(units, followups, late))
        updates.extend(self._sample_running_usage(units))
        return PollResult(updates, self.runner.calls - calls_before)

    def _units(self, jobs: Sequence[JobInfo]) -> tuple[list[_Unit], list[tuple[JobInfo, dict[int, JobInfo]]]]:
        return collect_units(jobs, self.context.store, _Unit)

    @staticmethod
    def _task_indices(parent: JobInfo, records: Sequence[SqueueRecord]) -> list[int]:
        indices = set(_indices_or_empty(str(parent.metadata.get("array", ""))))
        indices.update(r.task_index for r in records
                       if r.array_job_id == parent.native_id and r.task_index is not None)
        return sorted(indices)

    def _squeue(self, native_ids: Sequence[str]) -> list[SqueueRecord]:
        records: list[SqueueRecord] = []
        for start in range(0, len(native_ids), SQUEUE_CHUNK):
            chunk = native_ids[start:start + SQUEUE_CHUNK]
            result = self.runner.run(["squeue", "-h", "-r", "-t", "all", "-j", ",".join(chunk), "-o", POLL_FORMAT],
                                     check=False)
            if result.returncode != 0:
                # One id that the controller does not know is an error for squeue; it just means
                # "not listed" (several unknown ids exit 0 with no lines).
                if "invalid job id" in result.stderr.lower():
                    continue
                raise SchedulerError(f"squeue exited {result.returncode}: "
                                     f"{_error_line(result.stderr or result.stdout, 'no output')}")
            try:
                records.extend(parse_squeue(result.stdout))
            except ParseError as exc:
                raise SchedulerError(f"unexpected squeue output: {exc}") from None
        return records

    def _observe(self, unit: _Unit, usage_known: bool) -> None:
        """Read the unit's exit-code file and decide whether it needs the resolution call
        (``want_accounting``: evidence or an exit code is missing) or would like resource use
        from it (``want_usage``: it ends now and slurmdbd may be there; ``usage_known`` says so)."""
        read_unit_exit(unit, self.context.paths)
        record = unit.record
        if record is not None:
            status, known = map_state(record.state)
            if not known and (unit.job_id, record.state) not in self._logged_states:
                self._logged_states.add((unit.job_id, record.state))  # once, not at every poll
                log.warning("job %s: unknown SLURM state %r (shown as unknown)", unit.job_id, record.state)
            if status.final:
                # squeue has no exit code: ask accounting when there is no exit-code file.
                unit.want_accounting = unit.exit is None and status is JobStatus.FAILED
                unit.want_usage = usage_known
            return
        if unit.exit is not None:
            # Killed by a signal: a time limit, scancel, OOM...? Or an exit that raced a cancel:
            # did SLURM have the job as ended before the cancel came? Accounting can say.
            unit.want_accounting = not conclusive_exit(unit)
            unit.want_usage = usage_known
            return
        unit.want_accounting = True  # missing, and no file: only accounting can tell

    # -- resolution (the one extra call) -----------------------------------------------------

    def _accounting_mode(self) -> str | None:
        if self._accounting is not None and time.time() - self._accounting_checked < ACCOUNTING_RECHECK_SECONDS:
            return self._accounting
        stored = self.context.store.get_meta(ACCOUNTING_META_KEY)
        if stored:
            mode, _, when = stored.partition("@")
            try:
                checked = float(when)
            except ValueError:
                checked = 0.0
            if mode in ("slurmdbd", "jobcomp", "none") and time.time() - checked < ACCOUNTING_RECHECK_SECONDS:
                self._accounting, self._accounting_checked = mode, checked
                return mode
        return None

    def _set_accounting(self, mode: str) -> None:
        if mode != self._accounting:
            log.info("SLURM accounting: %s", mode)
        self._accounting, self._accounting_checked = mode, time.time()
        try:
            self.context.store.set_meta(ACCOUNTING_META_KEY, f"{mode}@{self._accounting_checked:.0f}")
        except Exception as exc:  # a cache only: never fail a poll over it
            log.debug("could not remember the SLURM accounting mode: %s", exc)

    def _resolve(self, units: Sequence[_Unit], mode: str | None,
                 followups: Sequence[str] = ()) -> dict[str, AccountingRecord]:
        """At most one call for every unit that needs accounting (plus, once per hour and project,
        the probe that finds out whether slurmdbd is there). ``followups``: native ids of jobs that
        already ended, whose resource use is asked for again; returns their records."""
        need = [u for u in units if u.want_accounting]
        usage = [u for u in units if u.want_usage and not u.want_accounting]
        records: list[AccountingRecord] = []
        try:
            if mode in (None, "slurmdbd") and (need or usage or followups):
                ids = list(dict.fromkeys([*(u.native_id for u in (*need, *usage)), *followups]))
                result = self.runner.run(["sacct", "-P", "-j", ",".join(ids), "-o", ",".join(SACCT_FIELDS)],
                                         check=False)
                if result.returncode == 0:
                    self._set_accounting("slurmdbd")
                    records = parse_sacct(result.stdout)
                    mode = "slurmdbd"
                elif "accounting storage is disabled" in result.stderr.lower():
                    self._set_accounting("jobcomp")
                    mode = "jobcomp" if mode is None else "probe-done"  # a probe: ask jobcomp right away once
                else:
                    log.warning("sacct failed, no accounting this poll: %s", _error_line(result.stderr, "no output"))
                    mode = "failed"
            if mode == "jobcomp" and need:
                # filetxt lists array tasks only under their raw ids; tasks never seen running have none.
                ids = list(dict.fromkeys(raw for raw in (u.raw_id for u in need) if raw))
                if ids:
                    result = self.runner.run(["sacct", "-c", "-P", "-j", ",".join(ids), "-o",
                                              ",".join(SACCT_C_FIELDS)], check=False)
                    if result.returncode == 0:
                        records = parse_sacct(result.stdout)
                    else:
                        log.warning("sacct -c failed: %s", _error_line(result.stderr, "no output"))
                        self._set_accounting("none")
            elif mode == "none" and need:
                in_queue = [u for u in need if u.record is not None and u.raw_id]
                if in_queue:
                    # scontrol knows only what squeue knows: used for the exit code of a listed job.
                    target = [in_queue[0].raw_id or ""] if len(in_queue) == 1 else []
                    result = self.runner.run(["scontrol", "-o", "show", "job", *target], check=False)
                    if result.returncode == 0:
                        records = [scontrol_accounting(r) for r in parse_scontrol_jobs(result.stdout)]
        except (SchedulerError, ParseError) as exc:
            log.warning("SLURM accounting lookup failed (no evidence this poll): %s", exc)
            return {}
        by_id: dict[str, list[AccountingRecord]] = {}
        for record in records:
            by_id.setdefault(record.job_id, []).append(record)
            if record.raw_id != record.job_id:
                by_id.setdefault(f"raw:{record.raw_id}", []).append(record)
        for unit in (*need, *usage):
            candidates = by_id.get(unit.native_id, [])
            if not candidates and unit.raw_id:
                candidates = by_id.get(unit.raw_id, []) or by_id.get(f"raw:{unit.raw_id}", [])
            unit.acct = _pick(candidates, unit.job.submit_time if unit.job is not None else None)
        return {native: by_id[native][-1] for native in followups if by_id.get(native)}

    # -- deciding ----------------------------------------------------------------------------

    def _decide(self, unit: _Unit) -> JobUpdate | None:
        listed_unfinished = unit.record is not None and not map_state(unit.record.state)[0].final
        if listed_unfinished and conclusive_exit(unit):
            record = unit.record
            assert record is not None
            facts = {"slurm_state": record.state, "raw_id": record.raw_id}
            if record.nodes:
                facts["nodes"] = record.nodes
            update: JobUpdate | None = settled_while_listed(unit, record.start, facts)
        else:
            update = self._judge(unit)
        return reconciled(unit, update, scheduler_done=not listed_unfinished)

    def _judge(self, unit: _Unit) -> JobUpdate | None:
        """What this poll's evidence says of a job: squeue's record first, else its exit-code file,
        else accounting, else missing."""
        record, exit_record, acct = unit.record, unit.exit, unit.acct
        meta: dict[str, Any] = {}
        fields: dict[str, Any] = {}
        slurm_state: str | None = None
        slurm_reason: str | None = None
        status: JobStatus | None = None
        reason: str | None = None
        if record is not None:
            status, _known = map_state(record.state)
            slurm_state, slurm_reason = record.state, record.reason
            if status is JobStatus.QUEUED and is_held_reason(record.reason):
                status = JobStatus.HELD
            if status not in (JobStatus.QUEUED, JobStatus.HELD):
                meta["raw_id"] = record.raw_id  # a pending array task shows its array's id, not its own
            if record.nodes:
                meta["nodes"] = record.nodes
        elif exit_record is not None:
            # The local executor's rule (cancel requested -> cancelled, 0 -> completed, else failed).
            status, reason = exit_file_verdict(unit, exit_record)
            if acct is not None and map_state(acct.state)[0].final and (
                    cancel_took_effect(unit) is None
                    or (exit_record.signal is not None and acct.state in _STATES_THAT_EXPLAIN_A_SIGNAL)):
                status, slurm_state, reason = map_state(acct.state)[0], acct.state, None
        elif acct is not None and map_state(acct.state)[0].final:
            status, slurm_state, slurm_reason = map_state(acct.state)[0], acct.state, acct.reason
        if status is None:
            return self._missing(unit)
        if slurm_state is not None:
            meta["slurm_state"] = slurm_state
        if unit.metadata.get("missing_since") is not None:
            meta["missing_since"] = None  # found again
        # Times: SLURM's start (else the batch script's); the exit file's end (the real one: after
        # an outage SLURM records the moment it heard about the end).
        start = ((record.start if record else None) or (acct.start if acct else None)
                 or (exit_record.start_time if exit_record else None))
        # A job cancelled while pending shows the cancel time as its start: only a job that got a
        # node has really started.
        source = record if record is not None else acct
        ran = status is JobStatus.RUNNING or source is None or source.nodes is not None
        if start is not None and ran and (status is JobStatus.RUNNING or status.final):
            fields["start_time"] = start
        if status.final:
            fields["end_time"] = ((exit_record.end_time if exit_record else None) or (record.end if record else None)
                                  or (acct.end if acct else None) or utcnow())
            exit_code, sig = self._exit_status(status, exit_record, acct)
            fields["exit_code"], fields["signal"] = exit_code, sig
            if acct is not None and acct.usage and map_state(acct.state)[0].final:
                meta["usage"] = dict(acct.usage)
            if acct is not None and acct.derived_exit_code:
                meta["derived_exit_code"] = acct.derived_exit_code
            if reason is None:
                reason = self._final_reason(unit, status, slurm_state, slurm_reason, exit_code, sig)
            kind = self._final_kind(unit, status, slurm_state, slurm_reason, exit_code, sig)
            if kind is not None:
                meta[reasons.KIND_META_KEY] = kind
        elif status in (JobStatus.QUEUED, JobStatus.HELD):
            reason = slurm_reason
        elif status is JobStatus.RUNNING:
            reason = slurm_state.lower() if slurm_state in ("SUSPENDED", "STOPPED") else None
            progress = read_job_progress(self.context.paths, unit.job.job_id, unit.job.progress) \
                if unit.job is not None else None
            if progress is not None:
                fields["progress"] = progress
        else:
            reason = f"SLURM reports the unknown state {slurm_state!r}" if slurm_state else None
        fields["reason"] = reason
        if meta:
            fields["metadata"] = meta
        fields.update(task_identity(unit))
        unit.status, unit.fields = status, fields
        return JobUpdate(unit.job_id, status, fields, source="poll")

    @staticmethod
    def _exit_status(status: JobStatus, exit_record: ExitRecord | None,
                     acct: AccountingRecord | None) -> tuple[int | None, int | None]:
        if exit_record is not None:
            return exit_record.exit_code, exit_record.signal
        # A filetxt record of a job whose name has spaces loses its State but keeps its ExitCode
        # (a key of its own): good enough once squeue or the record itself says the job ended.
        if acct is not None and (map_state(acct.state)[0].final or (acct.state == "" and status.final)):
            return acct.exit_code, acct.signal
        return (0, None) if status is JobStatus.COMPLETED else (None, None)

    def _final_reason(self, unit: _Unit, status: JobStatus, slurm_state: str | None, slurm_reason: str | None,
                      exit_code: int | None, sig: int | None) -> str | None:
        if status is JobStatus.COMPLETED:
            return None
        if status is JobStatus.CANCELLED:
            if slurm_reason == "DependencyNeverSatisfied" or (slurm_reason or "").startswith("Dependency"):
                if not unit.cancel_requested:
                    deps = unit.metadata.get("native_dependencies") or []
                    return reasons.dependency_never_satisfied(
                        kind=unit.job.dependency_kind if unit.job else None, on=deps, scheduler="SLURM")
            if unit.cancel_requested:
                return reasons.CANCELLED_BY_USER
            if slurm_state == "REVOKED":
                return _FINAL_STATE_REASONS["REVOKED"]
            return "cancelled in SLURM (scancel or an administrator)"
        if slurm_state in _FINAL_STATE_REASONS:
            return _FINAL_STATE_REASONS[slurm_state]
        if sig is not None:
            return f"killed by signal {signal_name(sig)}"
        if exit_code:
            return f"exit code {exit_code}"
        return slurm_reason or "failed"

    @staticmethod
    def _final_kind(unit: _Unit, status: JobStatus, slurm_state: str | None, slurm_reason: str | None,
                    exit_code: int | None, sig: int | None) -> str | None:
        """The failure kind of a final status (None for a completed job)."""
        if status is JobStatus.COMPLETED:
            return None
        if status is JobStatus.CANCELLED:
            if (slurm_reason or "").startswith("Dependency") and not unit.cancel_requested:
                return reasons.DEPENDENCY
            return _FINAL_STATE_KINDS.get(slurm_state or "", reasons.CANCELLED)
        if slurm_state in _FINAL_STATE_KINDS:
            return _FINAL_STATE_KINDS[slurm_state]
        return reasons.SIGNAL if sig is not None else reasons.EXIT

    def _missing(self, unit: BatchUnit) -> JobUpdate | None:
        """Nobody knows the job this poll: keep it; UNKNOWN with a reason after the grace period."""
        return missing_update(unit, self.missing_grace, lambda minutes: (
            f"SLURM no longer lists job {unit.native_id}, and there is no exit-code file or accounting "
            f"record for it (for {minutes:.0f} min); it may have been purged or lost"))

    def _summarise(self, parent: JobInfo, children: Mapping[int, JobInfo], units: Sequence[_Unit]) -> JobUpdate | None:
        """The parent row of an array, from its tasks (this poll's decisions, else the stored rows)."""
        spec = _indices_or_empty(str(parent.metadata.get("array", "")))
        return summarise_array(parent, children, units, spec, self._missing)


# ------------------------------------------------------------------------------------------------
# Helpers
# ------------------------------------------------------------------------------------------------






_error_line = error_line  # shared helpers (_batch), under the names this module used
_current_user = current_user

