"""Slurm: the adapter; helpers (see the package docstring)."""

from __future__ import annotations

import logging
import re
import shlex
import shutil
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ...core import reasons
from ...core.exits import signal_name
from ...core.models import JobInfo, JobStatus
from ...core.updates import JobUpdate
from ..base import SchedulerContext
from ..batch.adapter import BatchScheduler
from ..batch.poll import PollUnit, Resolver, Verdict
from ..batch.rules import (
    BatchUnit,
    cancel_took_effect,
    conclusive_exit,
    current_user,
    error_line,
    recalled,
    remember,
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
class _Unit(PollUnit):
    """One job or array task being polled: ``record`` is squeue's, ``resolved`` accounting's (the
    exit-code file, cancel mark and decision live in ``PollUnit``, shared with PBS)."""

    record: SqueueRecord | None = None
    resolved: AccountingRecord | None = None
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
    min_poll_env = MIN_POLL_ENV  # or the adapter setting slurm_min_poll_interval (BatchScheduler)
    #: A job SLURM no longer lists, with no exit-code file and no accounting record, becomes
    #: UNKNOWN after this long (never "completed").
    missing_grace = MISSING_GRACE_SECONDS
    #: Seconds between ``sstat`` samples of running jobs' memory and CPU.
    usage_interval = 300.0

    def __init__(self, context: SchedulerContext) -> None:
        super().__init__(context)
        self._last_usage_sample = -float("inf")
        self._accounting: str | None = None  # "slurmdbd", "jobcomp", "none"; None: not probed yet
        self._accounting_checked = 0.0
        self._usage_followups: dict[str, tuple[str, float]] = {}  # job id -> (native id, give up at)
        self._asked_usage: dict[str, tuple[str, float]] = {}  # the follow-ups this poll asked about
        self._late_usage: dict[str, AccountingRecord] = {}  # and what accounting said of them

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

    # -- hooks of the shared poll (batch/poll.py) ------------------------------------------------

    label = "SLURM"
    unit_class = _Unit
    status_chunk = SQUEUE_CHUNK

    def status_argv(self, native_ids: Sequence[str]) -> list[str]:
        return ["squeue", "-h", "-r", "-t", "all", "-j", ",".join(native_ids), "-o", POLL_FORMAT]

    def parse_status(self, stdout: str) -> list[SqueueRecord]:
        return parse_squeue(stdout)

    def unknown_ids_only(self, result: subprocess.CompletedProcess[str]) -> bool:
        # One id that the controller does not know is an error for squeue; it just means "not
        # listed" (several unknown ids exit 0 with no lines).
        return "invalid job id" in result.stderr.lower()

    def record_key(self, record: SqueueRecord) -> str:
        return record.key

    def map_state(self, state: str) -> tuple[JobStatus, bool]:
        return map_state(state)

    def record_facts(self, record: SqueueRecord) -> dict[str, Any]:
        facts = {"slurm_state": record.state, "raw_id": record.raw_id}
        if record.nodes:
            facts["nodes"] = record.nodes
        return facts

    def listed_tasks(self, parent: JobInfo, records: Sequence[SqueueRecord]) -> list[int]:
        return [r.task_index for r in records if r.array_job_id == parent.native_id and r.task_index is not None]

    def needs_resolution(self, unit: _Unit) -> bool:
        """Accounting is asked when evidence or an exit code is missing (``want_accounting``), or
        for resource use (``want_usage``: the job ends now and slurmdbd may be there)."""
        usage_known = self._accounting_mode() in (None, "slurmdbd")
        record = unit.record
        if record is not None:
            status = map_state(record.state)[0]
            if status.final:
                # squeue has no exit code: ask accounting when there is no exit-code file.
                unit.want_accounting = unit.exit is None and status is JobStatus.FAILED
                unit.want_usage = usage_known
        elif unit.exit is not None:
            # Killed by a signal: a time limit, scancel, OOM...? Or an exit that raced a cancel:
            # did SLURM have the job as ended before the cancel came? Accounting can say.
            unit.want_accounting = not conclusive_exit(unit)
            unit.want_usage = usage_known
        else:
            unit.want_accounting = True  # missing, and no file: only accounting can tell
        return unit.want_accounting or unit.want_usage

    def resolution_wanted(self, need: Sequence[_Unit]) -> bool:
        return bool(need) or (bool(self._usage_followups) and self._accounting_mode() in (None, "slurmdbd"))

    def resolvers(self) -> Sequence[Resolver]:
        """sacct (slurmdbd; also the resource use of jobs that just ended), else ``sacct -c``
        (jobcomp/filetxt, when accounting storage is disabled), else scontrol (only what the
        controller still holds). Which one works is probed once an hour per project."""
        return (self._resolve_sacct, self._resolve_jobcomp, self._resolve_scontrol)

    def listed_verdict(self, unit: _Unit) -> Verdict | None:
        """squeue's record decides alone, even a final one (squeue keeps ended jobs a few minutes)."""
        record = unit.record
        if record is None:
            return None
        status = map_state(record.state)[0]
        if status is JobStatus.QUEUED and is_held_reason(record.reason):
            status = JobStatus.HELD
        verdict = self._verdict(unit, status, record.state, record.reason,
                                ran=status is JobStatus.RUNNING or record.nodes is not None)
        if status not in (JobStatus.QUEUED, JobStatus.HELD):
            verdict.meta["raw_id"] = record.raw_id  # a pending array task shows its array's id, not its own
        if record.nodes:
            verdict.meta["nodes"] = record.nodes
        return verdict

    def explain_exit(self, unit: _Unit, verdict: Verdict) -> Verdict:
        """Accounting's final state replaces the exit-code file's verdict when it explains a signal
        (TIMEOUT, OUT_OF_MEMORY...) or says which came first of an exit and a cancel."""
        acct, exit_record = unit.resolved, unit.exit
        assert exit_record is not None
        if acct is not None and map_state(acct.state)[0].final and (
                cancel_took_effect(unit) is None
                or (exit_record.signal is not None and acct.state in _STATES_THAT_EXPLAIN_A_SIGNAL)):
            return self._verdict(unit, map_state(acct.state)[0], acct.state, None, ran=acct.nodes is not None)
        verdict.start, verdict.end = (acct.start, acct.end) if acct is not None else (None, None)
        verdict.ran = acct is None or acct.nodes is not None
        return verdict

    def ended_verdict(self, unit: _Unit) -> Verdict | None:
        acct = unit.resolved
        if acct is None or not map_state(acct.state)[0].final:
            return None
        return self._verdict(unit, map_state(acct.state)[0], acct.state, acct.reason, ran=acct.nodes is not None)

    def facts(self, unit: _Unit, verdict: Verdict) -> dict[str, Any]:
        acct = unit.resolved
        meta: dict[str, Any] = {}
        if verdict.status.final and acct is not None:
            if acct.usage and map_state(acct.state)[0].final:
                meta["usage"] = dict(acct.usage)
            if acct.derived_exit_code:
                meta["derived_exit_code"] = acct.derived_exit_code
        return meta

    def missing_reason(self, unit: BatchUnit, minutes: float) -> str:
        return (f"SLURM no longer lists job {unit.native_id}, and there is no exit-code file or accounting "
                f"record for it (for {minutes:.0f} min); it may have been purged or lost")

    def after_poll(self, units: Sequence[_Unit]) -> list[JobUpdate]:
        asked, late = self._asked_usage, self._late_usage
        self._asked_usage, self._late_usage = {}, {}
        return [*self._follow_up_usage(units, asked, late), *self._sample_running_usage(units)]

    # -- resolution (the one extra call) -----------------------------------------------------

    def _accounting_mode(self) -> str | None:
        if self._accounting is not None and time.time() - self._accounting_checked < ACCOUNTING_RECHECK_SECONDS:
            return self._accounting
        stored = recalled(self.context.store, ACCOUNTING_META_KEY, ACCOUNTING_RECHECK_SECONDS)
        if stored is not None and stored[0] in ("slurmdbd", "jobcomp", "none"):
            self._accounting, self._accounting_checked = stored
            return stored[0]
        return None

    def _set_accounting(self, mode: str) -> None:
        if mode != self._accounting:
            log.info("SLURM accounting: %s", mode)
        self._accounting, self._accounting_checked = mode, time.time()
        remember(self.context.store, ACCOUNTING_META_KEY, mode, self._accounting_checked, "the SLURM accounting mode")

    def _resolve_sacct(self, units: Sequence[_Unit]) -> bool:
        """slurmdbd: one ``sacct -P`` for every unit that needs accounting or resource use, and for
        the jobs whose resource use is asked for again (``_usage_followups``)."""
        if self._accounting_mode() not in (None, "slurmdbd"):
            return False
        self._asked_usage = dict(self._usage_followups)
        followups = [native for native, _deadline in self._asked_usage.values()]
        ids = list(dict.fromkeys([*(u.native_id for u in units), *followups]))
        result = self.runner.run(["sacct", "-P", "-j", ",".join(ids), "-o", ",".join(SACCT_FIELDS)], check=False)
        if result.returncode == 0:
            self._set_accounting("slurmdbd")
            by_id = self._match(units, parse_sacct(result.stdout))
            self._late_usage = {native: by_id[native][-1] for native in followups if by_id.get(native)}
            return True
        if "accounting storage is disabled" in result.stderr.lower():
            self._set_accounting("jobcomp")
            return False  # ask jobcomp right away
        log.warning("sacct failed, no accounting this poll: %s", error_line(result.stderr, "no output"))
        return True

    def _resolve_jobcomp(self, units: Sequence[_Unit]) -> bool:
        """jobcomp/filetxt (``sacct -c``): lists array tasks only under their raw ids; tasks never
        seen running have none."""
        if self._accounting_mode() != "jobcomp":
            return False
        ids = list(dict.fromkeys(raw for raw in (u.raw_id for u in units if u.want_accounting) if raw))
        if ids:
            result = self.runner.run(["sacct", "-c", "-P", "-j", ",".join(ids), "-o", ",".join(SACCT_C_FIELDS)],
                                     check=False)
            if result.returncode == 0:
                self._match(units, parse_sacct(result.stdout))
            else:
                log.warning("sacct -c failed: %s", error_line(result.stderr, "no output"))
                self._set_accounting("none")
        return True

    def _resolve_scontrol(self, units: Sequence[_Unit]) -> bool:
        """No accounting: scontrol knows only what squeue knows (the exit code of a listed job)."""
        in_queue = [u for u in units if u.want_accounting and u.record is not None and u.raw_id]
        if in_queue:
            target = [in_queue[0].raw_id or ""] if len(in_queue) == 1 else []
            result = self.runner.run(["scontrol", "-o", "show", "job", *target], check=False)
            if result.returncode == 0:
                self._match(units, [scontrol_accounting(r) for r in parse_scontrol_jobs(result.stdout)])
        return True

    @staticmethod
    def _match(units: Sequence[_Unit], records: Sequence[AccountingRecord]) -> dict[str, list[AccountingRecord]]:
        """Each unit's record (by id, else raw id; the one submitted nearest to ours: ids restart)."""
        by_id: dict[str, list[AccountingRecord]] = {}
        for record in records:
            by_id.setdefault(record.job_id, []).append(record)
            if record.raw_id != record.job_id:
                by_id.setdefault(f"raw:{record.raw_id}", []).append(record)
        for unit in units:
            candidates = by_id.get(unit.native_id, [])
            if not candidates and unit.raw_id:
                candidates = by_id.get(unit.raw_id, []) or by_id.get(f"raw:{unit.raw_id}", [])
            unit.resolved = _pick(candidates, unit.job.submit_time if unit.job is not None else None)
        return by_id

    # -- deciding ----------------------------------------------------------------------------

    def _verdict(self, unit: _Unit, status: JobStatus, slurm_state: str, slurm_reason: str | None, *,
                 ran: bool) -> Verdict:
        """A verdict from a SLURM state (squeue's or accounting's) and its reason."""
        acct = unit.resolved
        verdict = Verdict(status, start=acct.start if acct is not None else None,
                          end=acct.end if acct is not None else None, ran=ran, meta={"slurm_state": slurm_state})
        if status.final:
            verdict.exit_code, verdict.signal = self._exit_status(status, acct)
            code, sig = (unit.exit.exit_code, unit.exit.signal) if unit.exit is not None else \
                (verdict.exit_code, verdict.signal)
            verdict.reason = self._final_reason(unit, status, slurm_state, slurm_reason, code, sig)
            verdict.kind = self._final_kind(unit, status, slurm_state, slurm_reason, sig)
        elif status in (JobStatus.QUEUED, JobStatus.HELD):
            verdict.reason = slurm_reason
        elif status is JobStatus.RUNNING:
            verdict.reason = slurm_state.lower() if slurm_state in ("SUSPENDED", "STOPPED") else None
        else:
            verdict.reason = f"SLURM reports the unknown state {slurm_state!r}" if slurm_state else None
        return verdict

    @staticmethod
    def _exit_status(status: JobStatus, acct: AccountingRecord | None) -> tuple[int | None, int | None]:
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
                    sig: int | None) -> str | None:
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


_error_line = error_line  # shared helpers (_batch), under the names this module used
_current_user = current_user

