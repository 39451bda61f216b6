"""``PollFlow``: the poll of every batch scheduler, written once; a scheduler fills hooks.

One poll, for all the active jobs of a scheduler:

1. **units**: one per job, and one per array task (an array's parent row is summarised from its
   tasks, never asked about itself); tasks seen for the first time become units too (the monitor
   inserts their rows);
2. **status query**: ONE command for many ids (``status_argv``, in chunks of ``status_chunk``
   ids). A command that fails or times out raises ``SchedulerError``: the poll is stale, no job
   changes. ``unknown_ids_only`` says when a non-zero exit only means "some ids are unknown";
3. **observe**: each unit gets its record (``record_key``/``find_record``; a finished record
   submitted clearly before our job, ``record_submitted``, is another job's under a reused id and
   is dropped, here and from the resolution) and its exit-code file;
   an unknown state is logged once per job; ``needs_resolution`` says whether the unit needs the
   resolution chain;
4. **resolution chain**: ``resolvers()`` is an ordered list tried in turn for the units that
   need it, until one answers (returns True); each fills ``unit.resolved`` for the units it knows.
   A resolver that fails is logged and the poll goes on without that evidence (never stale);
5. **decide**, the same order for every scheduler, so a fix reaches all of them:
   a job still listed unfinished whose exit-code file is conclusive has ended (its record adds
   facts later, ``rules.reconciled``); otherwise ``listed_verdict`` (the scheduler's listing
   decides alone), else the **exit-code file** (``rules.exit_file_verdict``: a cancel that took
   effect means cancelled, 0 completed, else failed; the "cancel sent at" race rule) refined by
   ``explain_exit`` (the scheduler's record may say what sent a signal), else ``ended_verdict``
   (the scheduler's own record of the end: an exit status, an accounting record), else the
   **cancel mark** (a job we cancelled that the scheduler no longer lists: cancelled by user,
   where ``cancel_mark_ends``), else ``unlisted_verdict``, else **missing**: kept, marked
   ``missing_since``, UNKNOWN with ``missing_reason`` and the failure kind "lost" after
   ``missing_grace`` seconds (never "completed"). A ``Verdict`` then gets the shared rules for
   times (the exit-code file's end wins), exit code (a job that never ran has none), failure
   kind, progress;
6. **array parents** summarised from their tasks (``rules.summarise_array``);
7. ``after_poll``: extra updates (SLURM samples resource use there).

Hooks (a scheduler's whole poll is these, plus its state map; the abstract ones are
``status_argv``, ``parse_status``, ``map_state`` and ``array_indices``, every other has a default):

- ``unit_class``, ``status_chunk``, ``status_argv(ids)``, ``parse_status(stdout)`` (raises
  ``ParseError``), ``unknown_ids_only(result)``;
- ``record_key(record)``, ``find_record(unit, by_key)``, ``record_state(record)``,
  ``map_state(state)`` -> (JobStatus, known), ``record_finished(record)``, ``record_start`` /
  ``record_end(record)``, ``record_submitted(record)``, ``record_facts(record)``;
- ``array_indices(spec)``, ``listed_tasks(parent, records)``, ``task_native_id(parent_native, index)``;
- ``needs_resolution(unit)``, ``resolution_wanted(need)``, ``resolvers()``;
- ``listed_verdict(unit)``, ``explain_exit(unit, verdict)``, ``ended_verdict(unit)``,
  ``cancel_mark_ends(unit)``, ``unlisted_verdict(unit)``, ``facts(unit, verdict)``,
  ``missing_reason(unit, minutes)``; ``after_poll(units)``.

For example SLURM: ``squeue -j <ids>``; resolvers sacct (slurmdbd), ``sacct -c`` (jobcomp),
scontrol. PBS: its flavour's qstat; under the Slurm wrappers one resolver asks the SLURM adapter
through the registry (``RecordSource.job_records``, answered in neutral ``SchedulerRecord``s:
adapters never import each other). Grid Engine: ``qstat -xml`` for many jobs; ``qacct -j`` as the
resolver, which may not know a job yet (the accounting file is written late: the unit stays
missing, asked again next poll, until the grace period).
"""

from __future__ import annotations

import logging
from abc import abstractmethod
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, runtime_checkable

from ...core import reasons
from ...core.errors import ParseError, SchedulerError
from ...core.exits import exit_reason
from ...core.jobfiles import read_job_progress
from ...core.models import JobInfo, JobStatus, utcnow
from ...core.updates import JobUpdate
from ..base import PollResult
from .rules import (
    BatchUnit,
    collect_units,
    conclusive_exit,
    error_line,
    exit_file_verdict,
    missing_update,
    read_unit_exit,
    reconciled,
    settled_while_listed,
    summarise_array,
    task_identity,
)

if TYPE_CHECKING:
    import subprocess

    from ..base import CommandRunner, SchedulerContext

log = logging.getLogger("celline.job")

#: A scheduler's record submitted this long before our job is another job's (a reused id).
STALE_RECORD_SLACK = timedelta(minutes=10)
#: A resolver: asks about the units that need it; True when it answered (the chain stops), False
#: when it is not available here (the next one is tried). It sets ``unit.resolved``.
Resolver = Callable[[Sequence["PollUnit"]], bool]


@dataclass
class PollUnit(BatchUnit):
    """A unit of a poll with the evidence this poll gathered: the status query's record, the
    resolution chain's record, and whether the chain is needed."""

    record: Any = None
    resolved: Any = None
    want_resolution: bool = False


@dataclass
class Verdict:
    """What the evidence says of a unit before the shared rules add times, exit code and kind.

    ``start``/``end``: what the resolution adds (the listing's come first; the exit-code file's
    start is the last fallback, its end wins);
    ``ran``: False when the scheduler's record shows the job never got a node (its "start" is then
    the cancel time); ``exit_code``/``signal``: the scheduler's, used without an exit-code file."""

    status: JobStatus
    reason: str | None = None
    kind: str | None = None
    exit_code: int | None = None
    signal: int | None = None
    start: datetime | None = None
    end: datetime | None = None
    ran: bool = True
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SchedulerRecord:
    """A scheduler's record of a job in our terms: what one adapter may ask another through the
    registry (the PBS wrappers' flavour asks the Slurm underneath how a job ended)."""

    job_id: str
    status: JobStatus
    state: str
    exit_code: int | None = None
    signal: int | None = None
    start: datetime | None = None
    end: datetime | None = None
    nodes: str | None = None  # None: never got a node
    reason: str | None = None
    submit: datetime | None = None


@runtime_checkable
class RecordSource(Protocol):
    """An adapter that can say what its scheduler holds of some jobs, in one command."""

    runner: CommandRunner

    def job_records(self, native_ids: Sequence[str]) -> dict[str, SchedulerRecord]: ...


class PollFlow:
    """The poll written once (see the module docstring for the hooks)."""

    context: SchedulerContext
    runner: CommandRunner
    name: ClassVar[str]
    #: A job no command knows, with no exit-code file, becomes UNKNOWN after this long.
    missing_grace: float = 300.0
    unit_class: ClassVar[type[PollUnit]] = PollUnit
    #: Ids per status command: keeps argv bounded.
    status_chunk: ClassVar[int] = 500
    #: The scheduler's name in messages ("SLURM", "PBS").
    label: ClassVar[str] = "the scheduler"
    _logged_states: set[tuple[str, str]]

    # -- hooks: the status query -----------------------------------------------------------------

    @abstractmethod
    def status_argv(self, native_ids: Sequence[str]) -> list[str]:
        """The status command for these ids (one command for many)."""

    @abstractmethod
    def parse_status(self, stdout: str) -> list[Any]:
        """The records in the status command's output; ParseError when it cannot be read."""

    def unknown_ids_only(self, result: subprocess.CompletedProcess[str]) -> bool:
        """Whether a non-zero exit only says that some ids are unknown (they are just not listed)."""
        return False

    def record_key(self, record: Any) -> Hashable:
        return record.job_id

    def find_record(self, unit: PollUnit, by_key: Mapping[Hashable, Any]) -> Any:
        return by_key.get(unit.native_id)

    def record_state(self, record: Any) -> str:
        return str(record.state)

    @abstractmethod
    def map_state(self, state: str) -> tuple[JobStatus, bool]:
        """Our status for a scheduler state, and whether the state is known (else UNKNOWN)."""

    def record_finished(self, record: Any) -> bool:
        return self.map_state(self.record_state(record))[0].final

    def record_start(self, record: Any) -> datetime | None:
        return getattr(record, "start", None)

    def record_end(self, record: Any) -> datetime | None:
        return getattr(record, "end", None)

    def record_submitted(self, record: Any) -> datetime | None:
        """When the job of a record (the listing's or the resolution's) was submitted, if it says."""
        return getattr(record, "submit", None)

    def record_facts(self, record: Any) -> dict[str, Any]:
        """What a listing adds to a job settled by its exit-code file (state name, nodes)."""
        return {}

    # -- hooks: arrays ---------------------------------------------------------------------------

    @abstractmethod
    def array_indices(self, spec: str) -> list[int]:
        """The task indices of an array spec ([] when it cannot be read)."""

    def listed_tasks(self, parent: JobInfo, records: Sequence[Any]) -> Iterable[int]:
        """Task indices of ``parent`` the status records show."""
        return ()

    def task_native_id(self, parent_native: str, index: int) -> str:
        return f"{parent_native}_{index}"

    # -- hooks: resolution -----------------------------------------------------------------------

    def needs_resolution(self, unit: PollUnit) -> bool:
        """Whether the unit needs the resolution chain (it left the queue with no evidence...)."""
        return False

    def resolution_wanted(self, need: Sequence[PollUnit]) -> bool:
        """Whether to run the chain this poll (default: when some unit needs it)."""
        return bool(need)

    def resolvers(self) -> Sequence[Resolver]:
        """The resolution chain, in order (empty: the status query is all there is)."""
        return ()

    # -- hooks: deciding -------------------------------------------------------------------------

    def listed_verdict(self, unit: PollUnit) -> Verdict | None:
        """What the scheduler's listing alone says (default: a record not finished, by the state map)."""
        if unit.record is None or self.record_finished(unit.record):
            return None
        return Verdict(self.map_state(self.record_state(unit.record))[0])

    def explain_exit(self, unit: PollUnit, verdict: Verdict) -> Verdict:
        """The exit-code file's verdict, refined by what the scheduler recorded (what sent a signal)."""
        return verdict

    def ended_verdict(self, unit: PollUnit) -> Verdict | None:
        """How the scheduler's own record says the job ended (no exit-code file)."""
        return None

    def cancel_mark_ends(self, unit: PollUnit) -> bool:
        """Whether a job we cancelled, with no other evidence, is cancelled by the user now."""
        return True

    def unlisted_verdict(self, unit: PollUnit) -> Verdict | None:
        """The last word before "missing" (default: none)."""
        return None

    def facts(self, unit: PollUnit, verdict: Verdict) -> dict[str, Any]:
        """Metadata the scheduler's records add to any verdict (state name, nodes, usage)."""
        return {}

    def missing_reason(self, unit: PollUnit, minutes: float) -> str:
        return (f"{self.label} no longer lists job {unit.native_id}, and there is no exit-code file for it "
                f"(for {minutes:.0f} min); it may have been purged or lost")

    def after_poll(self, units: Sequence[PollUnit]) -> list[JobUpdate]:
        return []

    # -- the flow --------------------------------------------------------------------------------

    def poll(self, jobs: Sequence[JobInfo]) -> PollResult:
        """The state of ``jobs`` from ONE status query (+ at most the resolution chain).

        Returns a ``JobUpdate`` per job whose facts are known. For an array job (a job with
        ``metadata["array"]``, e.g. "1-4%2"): one update per task not yet final in the store, for
        the child id ``f"{parent.job_id}_{index}"``, whose ``fields`` hold ``array_parent``,
        ``array_index`` and ``native_id`` (the monitor inserts the rows that do not exist yet),
        and one update for the parent summarising its tasks (``rules.summarise_array``). Array
        tasks whose parent is not among ``jobs`` are polled by their own native id."""
        calls_before = self.runner.calls
        units, parents = collect_units(jobs, self.context.store, self.unit_class)
        if not units and not parents:
            return PollResult([], 0)
        wanted = [p.native_id for p, _children in parents if p.native_id]
        wanted += [u.native_id for u in units if u.parent is None or u.parent.native_id is None]
        records = self.query_status(list(dict.fromkeys(wanted)))
        by_key: dict[Hashable, Any] = {}
        for record in records:
            by_key.setdefault(self.record_key(record), record)
        known = {u.job_id for u in units}
        for parent, children in parents:
            indices = set(self.array_indices(str(parent.metadata.get("array", ""))))
            indices.update(self.listed_tasks(parent, records))
            for index in sorted(indices):
                child_id = f"{parent.job_id}_{index}"
                child = children.get(index)
                if child_id in known or (child is not None and child.status.final):
                    continue
                units.append(self.unit_class(child_id, self.task_native_id(parent.native_id or "", index),
                                             child, parent, index))
                known.add(child_id)
        for unit in units:
            self._observe(unit, by_key)
        self._resolve([u for u in units if u.want_resolution])
        updates = [u for u in (self._decide(unit) for unit in units) if u is not None]
        for parent, children in parents:
            spec = self.array_indices(str(parent.metadata.get("array", "")))
            update = summarise_array(parent, children, [u for u in units if u.parent is parent], spec,
                                     lambda u: self._missing(self.unit_class(u.job_id, u.native_id, u.job)))
            if update is not None:
                updates.append(update)
        updates.extend(self.after_poll(units))
        return PollResult(updates, self.runner.calls - calls_before)

    def query_status(self, native_ids: Sequence[str]) -> list[Any]:
        """The status records of ``native_ids``: one command per ``status_chunk`` ids. Raises
        ``SchedulerError`` (the poll is stale) when a command fails or prints what cannot be read."""
        records: list[Any] = []
        for start in range(0, len(native_ids), self.status_chunk):
            records.extend(self.run_status(self.status_argv(native_ids[start:start + self.status_chunk])))
        return records

    def run_status(self, argv: list[str]) -> list[Any]:
        """The records one status command prints (``parse_status``); ``SchedulerError`` when it
        fails (beyond ``unknown_ids_only``) or prints what cannot be read."""
        result = self.runner.run(argv, check=False)
        if result.returncode != 0 and not self.unknown_ids_only(result):
            raise SchedulerError(f"{argv[0]} exited {result.returncode}: "
                                 f"{error_line(result.stderr or result.stdout, 'no output')}")
        try:
            return self.parse_status(result.stdout)
        except ParseError as exc:
            raise SchedulerError(f"unexpected {argv[0]} output: {exc}") from None

    def _older_than_job(self, unit: PollUnit, record: Any) -> bool:
        """Whether ``record`` is of another job that had this id before (ids restart when a
        server's state is wiped; records of finished jobs outlive that): submitted clearly before
        our job was (``STALE_RECORD_SLACK`` of clock skew allowed)."""
        submitted = self.record_submitted(record)
        ours = unit.job.submit_time if unit.job is not None else None
        if submitted is None or ours is None or submitted >= ours - STALE_RECORD_SLACK:
            return False
        log.info("job %s: a record of %s for id %s submitted at %s is another job's (ours: %s)",
                 unit.job_id, self.label, unit.native_id, submitted, ours)
        return True

    def _observe(self, unit: PollUnit, by_key: Mapping[Hashable, Any]) -> None:
        unit.record = self.find_record(unit, by_key)
        if unit.record is not None and self.record_finished(unit.record) and self._older_than_job(unit, unit.record):
            unit.record = None  # a finished job of a server's earlier life (a listed live one is ours)
        read_unit_exit(unit, self.context.paths)
        if unit.record is not None:
            state = self.record_state(unit.record)
            if not self.map_state(state)[1] and (unit.job_id, state) not in self._logged_states:
                self._logged_states.add((unit.job_id, state))  # once, not at every poll
                log.warning("job %s: unknown %s state %r (shown as unknown)", unit.job_id, self.label, state)
        unit.want_resolution = self.needs_resolution(unit)

    def _resolve(self, need: Sequence[PollUnit]) -> None:
        if not self.resolution_wanted(need):
            return
        for resolver in self.resolvers():
            try:
                if resolver(need):
                    break
            except (SchedulerError, ParseError) as exc:
                log.warning("%s lookup failed (no evidence this poll): %s", self.label, exc)
                break
        for unit in need:
            if unit.resolved is not None and self._older_than_job(unit, unit.resolved):
                unit.resolved = None

    def _decide(self, unit: PollUnit) -> JobUpdate | None:
        listed_unfinished = unit.record is not None and not self.record_finished(unit.record)
        if listed_unfinished and conclusive_exit(unit):
            update: JobUpdate | None = settled_while_listed(unit, self.record_start(unit.record),
                                                            self.record_facts(unit.record))
        else:
            update = self._judge(unit)
        return reconciled(unit, update, scheduler_done=not listed_unfinished)

    def _judge(self, unit: PollUnit) -> JobUpdate | None:
        verdict = self.listed_verdict(unit)
        if verdict is None and unit.exit is not None:
            status, reason = exit_file_verdict(unit, unit.exit)
            verdict = self.explain_exit(unit, Verdict(status, reason, start=unit.exit.start_time))
        if verdict is None:
            verdict = self.ended_verdict(unit)
        if verdict is None and unit.cancel_requested and self.cancel_mark_ends(unit):
            verdict = Verdict(JobStatus.CANCELLED, reasons.CANCELLED_BY_USER, reasons.CANCELLED)
        if verdict is None:
            verdict = self.unlisted_verdict(unit)
        if verdict is None:
            return self._missing(unit)
        return self._complete(unit, verdict)

    def _complete(self, unit: PollUnit, verdict: Verdict) -> JobUpdate:
        """A verdict as an update: the rules every scheduler shares for times, codes and kinds."""
        status, exit_record = verdict.status, unit.exit
        meta = {**verdict.meta, **self.facts(unit, verdict)}
        fields: dict[str, Any] = {}
        if unit.metadata.get("missing_since") is not None:
            meta["missing_since"] = None  # found again
        record = unit.record
        start = ((self.record_start(record) if record is not None else None) or verdict.start
                 or (exit_record.start_time if exit_record is not None else None))
        if start is not None and verdict.ran and (status is JobStatus.RUNNING or status.final):
            fields["start_time"] = start
        elif status is JobStatus.RUNNING and unit.job is not None and unit.job.start_time is None:
            fields["start_time"] = utcnow()  # first seen running (a record without a start time)
        if status.final:
            fields["end_time"] = ((exit_record.end_time if exit_record is not None else None)
                                  or (self.record_end(record) if record is not None else None)
                                  or verdict.end or utcnow())
            if exit_record is not None:
                exit_code, sig = exit_record.exit_code, exit_record.signal
            else:
                exit_code, sig = verdict.exit_code, verdict.signal
            if status is JobStatus.COMPLETED and exit_code is None and sig is None:
                exit_code = 0
            ran = "start_time" in fields or (unit.job is not None and unit.job.start_time is not None)
            if status is JobStatus.CANCELLED and not ran and exit_record is None:
                exit_code, sig = None, None  # "0:0" for a job that never ran is no exit code
            fields["exit_code"], fields["signal"] = exit_code, sig
            kind = verdict.kind
            if kind is None and status is JobStatus.FAILED:
                kind = exit_reason(exit_code, sig)[1] or reasons.EXIT
            elif kind is None and status is JobStatus.CANCELLED:
                kind = reasons.CANCELLED
            if kind is not None and status is not JobStatus.COMPLETED:
                meta[reasons.KIND_META_KEY] = kind
            reason = verdict.reason
            if reason is None and status is JobStatus.FAILED:
                reason = exit_reason(exit_code, sig)[0] or "failed"
        else:
            reason = verdict.reason
            if status is JobStatus.RUNNING and unit.job is not None:
                progress = read_job_progress(self.context.paths, unit.job.job_id, unit.job.progress)
                if progress is not None:
                    fields["progress"] = progress
        fields["reason"] = reason
        if unit.metadata.get(reasons.KIND_META_KEY) == reasons.LOST and reasons.KIND_META_KEY not in meta:
            meta[reasons.KIND_META_KEY] = None  # found again: not lost after all
        if meta:
            fields["metadata"] = meta
        fields.update(task_identity(unit))
        unit.status, unit.fields = status, fields
        return JobUpdate(unit.job_id, status, fields, source="poll")

    def _missing(self, unit: PollUnit) -> JobUpdate | None:
        """No evidence this poll: keep the job; UNKNOWN with a reason after the grace period."""
        return missing_update(unit, self.missing_grace, lambda minutes: self.missing_reason(unit, minutes))

