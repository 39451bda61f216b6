"""Grid Engine: the adapter, hooks of the shared batch flow only (see the package docstring)."""

from __future__ import annotations

import logging
import re
import shutil
import time
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from ...core import reasons
from ...core.dependencies import Verdict as DependencyVerdict
from ...core.dependencies import dependency_verdict
from ...core.errors import ParseError, SchedulerError
from ...core.models import JobInfo, JobStatus, utcnow
from ...core.settings import SgeSettings
from ...core.updates import JobUpdate
from ..base import SchedulerContext
from ..batch.adapter import BatchScheduler
from ..batch.poll import PollUnit, Resolver, Verdict
from ..batch.rules import current_user, error_line
from .inspect import SgeInspection
from .parse import (
    AcctRecord,
    SgeRecord,
    error_reason,
    parse_job_details,
    parse_qacct,
    parse_qstat_xml,
    parse_qsub_output,
    qdel_problems,
)
from .script import (
    array_indices,
    holds_for_dependency,
    qdel_command,
    qstat_command,
    qsub_command,
    render_sge_script,
    sge_job_name,
)
from .states import map_state, state_reason

log = logging.getLogger("celline.job")

MIN_POLL_ENV = "CELLINE_JOBS_SGE_MIN_POLL_INTERVAL"
QDEL_CHUNK = 500  # ids per qdel / qrls / qstat -j call: keeps argv bounded
#: A job that left qstat and that qacct did not know yet (the accounting file is written up to
#: flush_time, 15 s by default, after the end) is asked about again after this many seconds.
ACCT_RETRY_SECONDS = 10.0
#: Metadata keys: the reason qstat -j gave for an error state; the dependency hold was released.
ERROR_META_KEY = "sge_error"
RELEASED_META_KEY = "sge_released"
#: qacct's ``failed`` codes (sge_shepherd): 0 none, 100 "assumedly after job" (the job ran and was
#: killed or exited), 37 the qmaster enforced h_rt/h_cpu/h_vmem, 25 rescheduled, 1-36 the job
#: could not be set up or started on its host (26 output file, 27 shell, 28 working directory...).
FAILED_AFTER_JOB = 100
FAILED_LIMIT = 37
FAILED_RESCHEDULED = 25
_CATEGORY_H_RT_RE = re.compile(r"(?:^|[\s,])h_rt=([0-9]{1,9})(?:[,\s]|$)")


@dataclass
class _Unit(PollUnit):
    """A job or array task in a poll: ``record`` is qstat's entry, ``resolved`` qacct's block."""

    record: SgeRecord | None = None
    resolved: AcctRecord | None = None
    error: str | None = None  # why it is in error state (qstat -j), found this poll


class SgeScheduler(SgeInspection, BatchScheduler):
    """Son of Grid Engine / Univa / Altair Grid Engine through qsub, qstat -xml, qacct and qdel."""

    name = "sge"
    min_poll_env = MIN_POLL_ENV  # or the adapter setting sge_min_poll_interval (BatchScheduler)
    #: A job qstat no longer lists, with no exit-code file and no accounting record, becomes
    #: UNKNOWN after this long. The accounting file is written ``flush_time`` (15 s by default)
    #: after a job ends: until then the job keeps its last status.
    missing_grace = 300.0

    def __init__(self, context: SchedulerContext) -> None:
        super().__init__(context)
        options = context.settings.get("sge")
        self.options = options if isinstance(options, SgeSettings) else SgeSettings.parse(options or {})
        self._acct_asked: dict[str, float] = {}  # job id -> when qacct last had no record of it

    def available(self) -> bool:
        return all(shutil.which(c) is not None for c in ("qsub", "qstat", "qdel"))

    # -- hooks of the shared flow (batch/adapter.py) ---------------------------------------------

    submit_command = "qsub"
    held_directive = re.compile(r"^(#\$\s+)?-h\s*$")

    def render_script(self, job: JobInfo) -> str:
        return render_sge_script(job, self.context.paths, self.options)

    def submit_argv(self, job: JobInfo, script: str) -> list[str]:
        return qsub_command(script, job, self.context.paths)

    def parse_submit_output(self, stdout: str) -> tuple[str, dict[str, Any]]:
        number, tasks = parse_qsub_output(stdout)
        return number, ({"sge_tasks": tasks} if tasks else {})

    def array_indices(self, spec: str) -> list[int]:
        return array_indices(spec)

    def submit_hint(self, job: JobInfo) -> str:
        return (f"Grid Engine may have accepted the job anyway: check `qstat -u {current_user()}` for "
                f"{sge_job_name(job.name)}")

    def send_cancel(self, native_ids: Sequence[str]) -> None:
        """qdel of many ids per call; "does not exist" (it ended already) is not a problem."""
        self.run_cancels((qdel_command(native_ids[start:start + QDEL_CHUNK])
                          for start in range(0, len(native_ids), QDEL_CHUNK)), qdel_problems, "qdel")

    # -- hooks of the shared poll (batch/poll.py) ------------------------------------------------

    label = "Grid Engine"
    unit_class = _Unit
    status_chunk = 1 << 30  # the ids are not in the command: one qstat -xml lists them all

    def status_argv(self, native_ids: Sequence[str]) -> list[str]:
        return qstat_command(current_user())

    def parse_status(self, stdout: str) -> list[SgeRecord]:
        return parse_qstat_xml(stdout)

    def record_key(self, record: SgeRecord) -> Hashable:
        return (record.job_number, record.task)

    def find_record(self, unit: _Unit, by_key: Mapping[Hashable, SgeRecord]) -> SgeRecord | None:
        number, _, task = unit.native_id.partition(".")
        return by_key.get((number, int(task) if task.isdigit() else None))

    def map_state(self, state: str) -> tuple[JobStatus, bool]:
        return map_state(state)

    def record_facts(self, record: SgeRecord) -> dict[str, Any]:
        facts: dict[str, Any] = {"sge_state": record.state}
        if record.queue:
            facts["queue"] = record.queue
        return facts

    def listed_tasks(self, parent: JobInfo, records: Sequence[SgeRecord]) -> list[int]:
        number = (parent.native_id or "").partition(".")[0]
        return [r.task for r in records if r.job_number == number and r.task is not None]

    def task_native_id(self, parent_native: str, index: int) -> str:
        return f"{parent_native.partition('.')[0]}.{index}"  # qdel, qstat -j and qacct -t read "17.3"

    def needs_resolution(self, unit: _Unit) -> bool:
        """Listed in error state without a known reason (qstat -j says why), or gone from qstat
        with no exit-code file and no cancel of ours (qacct says how it ended)."""
        if unit.record is not None:
            return "E" in unit.record.state and not unit.metadata.get(ERROR_META_KEY)
        if unit.exit is not None or unit.cancel_requested:
            return False
        # qacct reads the whole accounting file (gigabytes on a busy cell): a job it did not know
        # yet is asked about again only after ACCT_RETRY_SECONDS, not at every fast poll.
        return time.monotonic() - self._acct_asked.get(unit.job_id, -ACCT_RETRY_SECONDS) >= ACCT_RETRY_SECONDS

    def resolvers(self) -> Sequence[Resolver]:
        return (self._resolve,)

    def listed_verdict(self, unit: _Unit) -> Verdict | None:
        record = unit.record
        if record is None:
            return None
        status, known = map_state(record.state)
        reason = state_reason(record.state)
        meta: dict[str, Any] = {}
        if "E" in record.state:
            error = unit.error or unit.metadata.get(ERROR_META_KEY)
            if unit.error:
                meta[ERROR_META_KEY] = unit.error
            if error:
                reason = f"Grid Engine error state (Eqw): {error}; fix it, then `qmod -cj {unit.native_id}`"
        elif unit.metadata.get(ERROR_META_KEY):
            meta[ERROR_META_KEY] = None  # the error was cleared
        if status in (JobStatus.QUEUED, JobStatus.HELD) and "E" not in record.state and unit.job is not None \
                and holds_for_dependency(unit.job) and not _held_by_user(unit.job):
            deps = ", ".join(map(str, unit.metadata.get("native_dependencies") or []))
            status, reason = JobStatus.QUEUED, f"waiting for its {unit.job.dependency_kind} dependency on job {deps}"
        if not known:
            reason = f"Grid Engine reports the state {record.state[:16]!r}"
        if status in (JobStatus.QUEUED, JobStatus.HELD) and unit.job is not None \
                and unit.job.status is JobStatus.RUNNING:
            # Seen running ("r" for a moment), then its start failed (Eqw) or it was rescheduled
            # (Rq): states only move forward, so through UNKNOWN (from which any state may
            # follow): held or queued at the next poll.
            status = JobStatus.UNKNOWN
        return Verdict(status, reason, meta=meta)

    def ended_verdict(self, unit: _Unit) -> Verdict | None:
        acct = unit.resolved
        if acct is None:
            return None
        verdict = Verdict(JobStatus.FAILED, start=acct.start, end=acct.end, ran=acct.ran,
                          meta={"sge_failed": acct.failed, "sge_exit_status": acct.exit_status})
        signal = acct.exit_status - 128 if 128 < acct.exit_status < 160 else None
        code = None if signal is not None else acct.exit_status
        verdict.exit_code, verdict.signal = code, signal
        if unit.cancel_requested:
            verdict.status, verdict.reason = JobStatus.CANCELLED, reasons.CANCELLED_BY_USER
            verdict.kind = reasons.CANCELLED
        elif acct.failed == FAILED_LIMIT:
            verdict.kind, verdict.reason = self._limit(unit, acct)
        elif acct.failed == FAILED_RESCHEDULED:
            verdict.kind, verdict.reason = reasons.PREEMPTED, "rescheduled by Grid Engine, then lost from view"
        elif acct.failed not in (0, FAILED_AFTER_JOB):
            verdict.kind = reasons.NODE_FAIL
            detail = acct.failed_text or "unknown"
            verdict.reason = f"Grid Engine could not run the job (failed {acct.failed}: {detail})"
            verdict.exit_code, verdict.signal = None, None
        elif not acct.ran:
            verdict.status, verdict.kind = JobStatus.CANCELLED, reasons.CANCELLED
            verdict.reason = "deleted before it started (qdel by someone else, or an administrator)"
        elif acct.exit_status == 0:
            verdict.status = JobStatus.COMPLETED
        return verdict

    def facts(self, unit: _Unit, verdict: Verdict) -> dict[str, Any]:
        meta = self.record_facts(unit.record) if unit.record is not None else {}
        acct = unit.resolved
        if acct is not None:
            if acct.hostname:
                meta["exec_host"] = acct.hostname[:200]
            usage = {k: v for k, v in (("maxvmem", acct.maxvmem), ("wallclock", acct.wallclock)) if v is not None}
            if usage:
                meta["usage"] = usage
        return meta

    def missing_reason(self, unit: PollUnit, minutes: float) -> str:
        return (f"Grid Engine no longer lists job {unit.native_id}, and neither an exit-code file nor qacct "
                f"knows how it ended (for {minutes:.0f} min); it may have been lost, or accounting is off")

    def after_poll(self, units: Sequence[PollUnit]) -> list[JobUpdate]:
        """Jobs held for an afterok / afternotok dependency (``-hold_jid`` only orders): released
        with ONE qrls when their parents ended as required, deleted with ONE qdel (and cancelled
        with the reason) when they never can. No command when nothing is to be done."""
        held = [u for u in units if isinstance(u, _Unit) and u.job is not None and u.record is not None
                and holds_for_dependency(u.job) and not u.metadata.get(RELEASED_META_KEY)
                and "h" in u.record.state and not _held_by_user(u.job)]
        if not held:
            return []
        now_known = {u.job_id: u.status for u in units if u.status is not None}
        release: list[_Unit] = []
        never: list[_Unit] = []
        for unit in held:
            assert unit.job is not None
            parents = {p.job_id: p.status for p in self.context.store.get_many(unit.job.depends_on)}
            statuses = [now_known.get(p) or parents.get(p) for p in unit.job.depends_on]
            verdict = dependency_verdict(unit.job.dependency_kind or "afterok", statuses)
            if verdict is DependencyVerdict.READY:
                release.append(unit)
            elif verdict is DependencyVerdict.NEVER:
                never.append(unit)
        updates: list[JobUpdate] = []
        if release and self._run_each("qrls", [u.native_id for u in release]):
            updates += [JobUpdate(u.job_id, None, {"metadata": {RELEASED_META_KEY: True}}, source="poll")
                        for u in release]
        if never:
            self._run_each("qdel", [u.native_id for u in never])
            for unit in never:
                assert unit.job is not None
                reason = reasons.dependency_never_satisfied(
                    kind=unit.job.dependency_kind, on=[str(d) for d in unit.metadata.get("native_dependencies") or []],
                    scheduler="Grid Engine")
                updates.append(JobUpdate(unit.job_id, JobStatus.CANCELLED, {
                    "reason": reason, "end_time": utcnow(), "exit_code": None, "signal": None,
                    "metadata": {reasons.KIND_META_KEY: reasons.DEPENDENCY}}, source="poll"))
        return updates

    # -- the resolution: qstat -j for error states, qacct for jobs that left qstat ----------------

    def _resolve(self, need: Sequence[_Unit]) -> bool:
        errors = [u for u in need if u.record is not None]
        gone = [u for u in need if u.record is None]
        if errors:
            self._resolve_errors(errors)
        if gone:
            self._resolve_accounting(gone)
        return True

    def _resolve_errors(self, units: Sequence[_Unit]) -> None:
        """ONE ``qstat -j <ids> -xml``: why each job is in error state."""
        numbers = list(dict.fromkeys(u.native_id.partition(".")[0] for u in units))[:QDEL_CHUNK]
        result = self.runner.run(["qstat", "-j", ",".join(numbers), "-xml"], check=False)
        try:
            details, _unknown = parse_job_details(result.stdout)
        except ParseError as exc:
            log.warning("Grid Engine: unreadable qstat -j output: %s", exc)
            return
        for unit in units:
            detail = details.get(unit.native_id.partition(".")[0])
            if detail is not None and detail.errors:
                unit.error = error_reason(detail.errors[-1])

    def _resolve_accounting(self, units: Sequence[_Unit]) -> None:
        """ONE ``qacct``: ``qacct -j <id>`` for one job, else every job of this user that ended
        since the oldest submit among them (``-E -b``). A job not in the accounting file yet
        (it is written up to flush_time after the end) stays unresolved: kept, not "unknown"."""
        numbers = {u.native_id.partition(".")[0] for u in units}
        if len(numbers) == 1:
            argv = ["qacct", "-j", next(iter(numbers))]
        else:
            submits = [u.job.submit_time for u in units if u.job is not None and u.job.submit_time is not None]
            since = (min(submits) if submits else utcnow() - timedelta(days=1)) - timedelta(minutes=5)
            argv = ["qacct", "-o", current_user(), "-E", "-b", _qacct_time(since), "-j"]
        result = self.runner.run(argv, check=False)
        if result.returncode != 0 and "not found" not in result.stderr and result.stderr.strip():
            raise SchedulerError(f"qacct exited {result.returncode}: {error_line(result.stderr, 'no output')}")
        by_key: dict[tuple[str, int | None], AcctRecord] = {}
        for record in parse_qacct(result.stdout):
            by_key[(record.job_number, record.task)] = record  # the last block of a number wins (reruns)
        now = time.monotonic()
        for unit in units:
            number, _, task = unit.native_id.partition(".")
            unit.resolved = by_key.get((number, int(task) if task.isdigit() else None))
            if unit.resolved is None:
                self._acct_asked[unit.job_id] = now
            else:
                self._acct_asked.pop(unit.job_id, None)
        if len(self._acct_asked) > 10_000:  # jobs given up long ago: keep the newest
            for job_id, _when in sorted(self._acct_asked.items(), key=lambda item: item[1])[:5_000]:
                del self._acct_asked[job_id]

    def _limit(self, unit: _Unit, acct: AcctRecord) -> tuple[str, str]:
        """Which limit the qmaster enforced (failed 37 names h_rt, h_cpu or h_vmem together): the
        run time reached the h_rt asked for (the job's own, else the one in qacct's ``category``,
        which Grid Engine writes in seconds) -> timeout; else a memory limit -> oom; else timeout."""
        res = unit.job.resources if unit.job is not None else None
        requested = _CATEGORY_H_RT_RE.search(acct.category)
        walltime = (res.walltime if res is not None else None) or (int(requested.group(1)) if requested else None)
        if walltime and acct.wallclock is not None and acct.wallclock >= walltime - 2:
            return reasons.TIMEOUT, f"killed by Grid Engine at its run-time limit (h_rt {walltime} s)"
        if (res is not None and res.memory is not None) or "h_vmem=" in acct.category:
            return reasons.OOM, "killed by Grid Engine at its memory limit (h_vmem)"
        return reasons.TIMEOUT, "killed by Grid Engine at a limit (h_rt, h_cpu or h_vmem)"

    def _run_each(self, command: str, native_ids: Sequence[str]) -> bool:
        """qrls / qdel for many ids; False (logged) when it failed for a reason other than a gone job."""
        ok = True
        for start in range(0, len(native_ids), QDEL_CHUNK):
            try:
                result = self.runner.run([command, *native_ids[start:start + QDEL_CHUNK]], check=False)
            except SchedulerError as exc:
                log.warning("Grid Engine: %s failed: %s", command, exc)
                return False
            problems = qdel_problems(result.stdout + "\n" + result.stderr) if result.returncode != 0 else []
            problems = [p for p in problems if "modified hold" not in p]
            if problems:
                log.warning("Grid Engine: %s failed: %s", command, problems[-1])
                ok = False
        return ok


def _held_by_user(job: JobInfo) -> bool:
    """The user asked for a hold (an extra ``-h`` line): that one is theirs to release."""
    return any(SgeScheduler.held_directive.match(e.strip()) for e in job.resources.extra)


def _qacct_time(moment: datetime) -> str:
    """qacct's ``-b`` time: [[CC]YY]MMDDhhmm[.SS] in local time."""
    return moment.astimezone().strftime("%Y%m%d%H%M.%S")


__all__ = ["SgeScheduler"]
