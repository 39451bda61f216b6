"""What the batch-scheduler adapters (SLURM, PBS, Grid Engine) share: the rules, not the commands.

Each cluster adapter has its own command builders, parsers and state map. What must not differ
between them lives here, so a fix reaches every scheduler (the job script's shared text is in
``script.py``):

- how a job that left the scheduler's view is judged: its exit-code file first (the local
  executor's rule: a cancel that took effect means cancelled, 0 means completed, else failed; a
  command that ended by itself before the cancel was sent keeps its own exit status); with no
  evidence at all it is kept as it is, marked ``missing_since``, and becomes UNKNOWN with a
  reason only after a grace period ("missing" never means "completed");
- when an exit-code file settles a job without asking the scheduler at all (``settle``: a plain
  exit status, or a kill by a cancel; an exit that raced a cancel waits for the scheduler's own
  record, which alone knows which came first), and how the scheduler's later record of a job
  settled that way is merged in (``reconciled``);
- how an array's parent row is summarised from its task rows.
"""

from __future__ import annotations

import logging
import os
import pwd
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from ...core import reasons
from ...core.errors import InvalidInputError, ParseError
from ...core.exits import final_update_from_exit
from ...core.jobfiles import RECONCILE_META_KEY, ExitRecord, read_exit_file
from ...core.models import JobInfo, JobStatus, utcnow
from ...core.paths import ProjectPaths
from ...core.resources import Resources
from ...core.safeio import warn_once
from ...core.updates import JobUpdate
from ..base import SchedulerContext, array_outcome

if TYPE_CHECKING:
    from ...store.sqlite import JobStore

log = logging.getLogger("celline.job")


# ------------------------------------------------------------------------------------------------
# Settings
# ------------------------------------------------------------------------------------------------


def poll_floor_override(settings: Mapping[str, Any], key: str, env_var: str, label: str) -> float | None:
    """A poll-interval floor chosen by the project (adapter setting ``key``) or the environment,
    validated; None when neither sets one."""
    floor = settings.get(key) or os.environ.get(env_var)
    if floor is None:
        return None
    try:
        value = float(floor)
    except (TypeError, ValueError):
        raise InvalidInputError(f"invalid {label} min poll interval {floor!r}: use seconds, e.g. 30") from None
    if value <= 0:
        raise InvalidInputError(f"invalid {label} min poll interval {floor!r}: must be more than 0")
    return value


# ------------------------------------------------------------------------------------------------
# Small helpers
# ------------------------------------------------------------------------------------------------


def recalled(store: JobStore, key: str, max_age: float) -> tuple[str, float] | None:
    """(value, when) of what ``remember`` stored under ``key`` (what an adapter found out about its
    scheduler, shared by every process of the project), while younger than ``max_age`` seconds;
    None when never stored, unreadable or too old."""
    stored = store.get_meta(key)
    if not stored:
        return None
    value, _, when = stored.rpartition("@")
    try:
        checked = float(when)
    except ValueError:
        return None
    return (value, checked) if time.time() - checked < max_age else None


def remember(store: JobStore, key: str, value: str, when: float, what: str) -> None:
    """Store ``value`` found out at ``when`` (epoch seconds) under ``key`` for ``recalled``; a cache
    only, so a store that cannot take it is logged (``what`` names it), never a failed poll."""
    try:
        store.set_meta(key, f"{value}@{when:.0f}")
    except Exception as exc:  # a cache only: never fail a poll over it
        log.debug("could not remember %s: %s", what, exc)


def optional(parser: Callable[[str], Any], text: str | None) -> Any:
    """A field that is only nice to have: unparseable means unknown, not an error."""
    if text is None:
        return None
    try:
        return parser(text)
    except ParseError:
        return None


def listed_resources(values: Mapping[str, Any]) -> Resources:
    """The resources a scheduler lists for a job we attach (cpus, walltime, partition...), or none
    when ``Resources`` refuses them: only nice to have, never a reason to refuse the attach."""
    try:
        return Resources.from_dict(dict(values))
    except InvalidInputError:
        return Resources()


_MONTHS = {m: i for i, m in enumerate(("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct",
                                       "Nov", "Dec"), start=1)}
_CTIME_RE = re.compile(
    r"^(?:[A-Z][a-z]{2}\s+)?([A-Z][a-z]{2})\s+([0-9]{1,2})\s+([0-9]{1,2}):([0-9]{2}):([0-9]{2})\s+([0-9]{4})$")


def parse_ctime(text: str | None) -> datetime | None:
    """A ctime-style time as PBS's ``qstat -f`` and Grid Engine's ``qacct`` print them
    (``Fri Dec  4 16:54:17 2026``, the weekday optional, this machine's local time) as aware UTC;
    None when it is not one (``-/-``: never) or out of range."""
    match = _CTIME_RE.match((text or "").strip())
    if match is None or match.group(1) not in _MONTHS:
        return None
    month, day, hour, minute, second, year = match.groups()
    try:
        value = datetime(int(year), _MONTHS[month], int(day), int(hour), int(minute), int(second))
        return value.astimezone().astimezone(timezone.utc)  # naive: the local time of this machine
    except (ValueError, OverflowError, OSError):  # no such day, or out of range (year 1 in UTC-x)
        return None


#: The most tasks an array spec may expand to (a bound on what a typo like "1-1000000000" costs).
MAX_ARRAY_TASKS = 100_000
_RANGE_RE = re.compile(r"^(\d{1,9})(?:-(\d{1,9})(?::(\d{1,9}))?)?$")


def parse_index_ranges(spec: str, limit: int = MAX_ARRAY_TASKS, label: str = "SLURM") -> list[int]:
    """The task indexes of a range-list array spec (Slurm's syntax, which the PBS flavours' and
    Grid Engine's are subsets of): "1-4%2" -> [1, 2, 3, 4]; "1,3,5"; "0-15:4" -> [0, 4, 8, 12].
    ``label`` names the syntax in the error."""
    text = str(spec).strip().split("%", 1)[0]
    indices: set[int] = set()
    for part in text.split(","):
        match = _RANGE_RE.match(part.strip())
        if not match:
            raise ParseError(f"not a {label} array spec: {str(spec)[:80]!r}")
        start = int(match.group(1))
        end = int(match.group(2)) if match.group(2) else start
        step = int(match.group(3)) if match.group(3) else 1
        if end < start or step < 1:
            raise ParseError(f"empty range in array spec {str(spec)[:80]!r}")
        if len(indices) + (end - start) // step + 1 > limit:
            raise ParseError(f"array spec {str(spec)[:80]!r} has more than {limit} tasks")
        indices.update(range(start, end + 1, step))
    return sorted(indices)


def error_line(text: str | None, default: str) -> str:
    """The most useful line of a command's error output (the last "error:" line, else the last)."""
    lines = [line.strip() for line in (text or "").strip().split("\n") if line.strip()]
    errors = [line for line in lines if "error" in line.lower()]
    return (errors or lines or [default])[-1][:500]


def current_user() -> str:
    try:
        return pwd.getpwuid(os.getuid()).pw_name
    except KeyError:
        return os.environ.get("USER", str(os.getuid()))


# ------------------------------------------------------------------------------------------------
# Poll units and the rules for jobs without a scheduler record
# ------------------------------------------------------------------------------------------------


@dataclass
class BatchUnit:
    """One job or array task being polled, and what this poll decided about it."""

    job_id: str
    native_id: str
    job: JobInfo | None  # the stored row (None: an array task we have not inserted yet)
    parent: JobInfo | None = None
    index: int | None = None
    exit: ExitRecord | None = None
    status: JobStatus | None = None
    fields: dict[str, Any] = field(default_factory=dict)

    @property
    def metadata(self) -> Mapping[str, Any]:
        return self.job.metadata if self.job is not None else {}

    @property
    def cancel_requested(self) -> bool:
        parent_meta = self.parent.metadata if self.parent is not None else {}
        return bool(self.metadata.get("cancel_requested") or parent_meta.get("cancel_requested"))

    @property
    def cancel_sent(self) -> float | None:
        """When the cancel of this job or of its array was sent (epoch seconds); None without a
        cancel, or for a cancel recorded without its time."""
        parent_meta = self.parent.metadata if self.parent is not None else {}
        sent = [v for v in (self.metadata.get(CANCEL_SENT_KEY), parent_meta.get(CANCEL_SENT_KEY))
                if isinstance(v, (int, float)) and not isinstance(v, bool)]
        return min(sent) if sent else None


def read_unit_exit(unit: BatchUnit, paths: ProjectPaths) -> None:
    """Load the unit's exit-code file; an unreadable one is logged once and treated as absent
    (the scheduler's own record then says how the job ended)."""
    try:
        unit.exit = read_exit_file(paths.exit_file(unit.job_id))
    except ParseError as exc:
        warn_once(log, unit.job_id, f"unreadable exit-code file: {exc}")
        unit.exit = None


#: Metadata key: when the cancel was sent (epoch seconds), stored before the scheduler is asked.
CANCEL_SENT_KEY = "cancel_sent"
#: Exit-code files hold whole seconds of the compute node's clock. A command that ended at least
#: this long before the cancel was sent ended by itself: the scheduler had the job as ended before
#: the cancel reached it.
CANCEL_RACE_SECONDS = 2.0


def cancel_took_effect(unit: BatchUnit) -> bool | None:
    """Whether the unit's exit-code file shows the cancel ending it. False: no cancel, or the
    command ended clearly before the cancel was sent (its own exit status counts). True: killed by
    a signal at or after the cancel (or a cancel recorded without its time: the old rule). None:
    the command exited by itself just before or after the cancel was sent; whether the scheduler
    had the job as ended before the cancel reached it only its own record can tell."""
    record = unit.exit
    if not unit.cancel_requested or record is None:
        return False
    sent = unit.cancel_sent
    if sent is None:
        return True
    end = record.end_time.timestamp() if record.end_time is not None else None
    if end is not None and end + 1.0 + CANCEL_RACE_SECONDS <= sent:
        return False
    return True if record.signal is not None else None


def _final_update(unit: BatchUnit, record: ExitRecord) -> JobUpdate:
    """The local executor's rule (cancel requested -> cancelled, 0 -> completed, else failed); a
    stand-in row carries the cancel mark when the cancel ended the job (``cancel_took_effect``;
    a job that ended by itself gets its own exit status)."""
    stand_in = JobInfo(job_id=unit.job_id, name="", metadata={"cancel_requested": cancel_took_effect(unit) is True})
    return final_update_from_exit(stand_in, record)


def exit_file_verdict(unit: BatchUnit, record: ExitRecord) -> tuple[JobStatus, str | None]:
    """The status and reason the exit-code file ``record`` implies (``_final_update``'s rule)."""
    base = _final_update(unit, record)
    assert base.status is not None
    return base.status, base.fields.get("reason")


def task_identity(unit: BatchUnit) -> dict[str, Any]:
    """The fields that make an array task's update insert (or find) its own row."""
    if unit.parent is None:
        return {}
    return {"array_parent": unit.parent.job_id, "array_index": unit.index, "native_id": unit.native_id}


def conclusive_exit(unit: BatchUnit) -> bool:
    """Whether the unit's exit-code file alone says how the job ended: a plain exit status, or a
    kill by the cancel (``cancel_took_effect``). A signal nobody asked for needs the scheduler to
    say what sent it (the time limit, the memory limit, a preemption, an administrator); so does a
    plain exit status that raced a cancel."""
    if unit.exit is None:
        return False
    effect = cancel_took_effect(unit)
    return effect is True or (effect is False and unit.exit.signal is None)


def exit_settlement(unit: BatchUnit) -> JobUpdate:
    """The final update a conclusive exit-code file implies, marked for reconciling: the scheduler
    has not said yet that the job ended, and its record adds the start, nodes and resource use."""
    record = unit.exit
    assert record is not None
    update = _final_update(unit, record)
    update.fields["metadata"] = {**(update.fields.get("metadata") or {}),  # the failure kind stays
                                 RECONCILE_META_KEY: unit.metadata.get(RECONCILE_META_KEY) or time.time()}
    if record.start_time is not None and (unit.job is None or unit.job.start_time is None):
        update.fields["start_time"] = record.start_time
    return update


def settled_while_listed(unit: BatchUnit, start: datetime | None, facts: Mapping[str, Any]) -> JobUpdate:
    """The command has ended and its exit-code file says how, while the scheduler still lists the
    job (completing, exiting: the epilogue, the I/O flush): it has ended for the user now. ``start``
    and ``facts`` (its state name, nodes) are what the scheduler's listing adds."""
    update = exit_settlement(unit)
    update.fields["metadata"].update(facts)
    if start is not None:
        update.fields["start_time"] = start
    update.fields.update(task_identity(unit))
    unit.status, unit.fields = update.status, update.fields
    return update


def settle_from_exit_files(context: SchedulerContext, scheduler: str) -> list[JobUpdate]:
    """Final updates for the submitted active jobs of ``scheduler`` whose exit-code files are
    conclusive, without any scheduler call: one stat per job, and a read of the files that exist.
    A job's end is then seen as soon as its batch script has written the file, not at the next poll."""
    paths, store = context.paths, context.store
    ended = [job_id for job_id in store.submitted_active_ids(scheduler) if paths.exit_file(job_id).exists()]
    if not ended:
        return []
    jobs = store.get_many(ended)
    parents = {p.job_id: p for p in store.get_many(list({j.array_parent for j in jobs if j.array_parent}))}
    updates = []
    for job in jobs:
        if not job.status.active or not job.native_id:
            continue
        unit = BatchUnit(job.job_id, job.native_id, job, parents.get(job.array_parent or ""), job.array_index)
        read_unit_exit(unit, paths)
        if conclusive_exit(unit):
            updates.append(exit_settlement(unit))
    return updates


def reconciled(unit: BatchUnit, update: JobUpdate | None, scheduler_done: bool) -> JobUpdate | None:
    """``update`` as it may be applied to the unit's job. A job the store already has as ended (an
    exit-code file settled it) keeps its status, exit status, end time and reason: the poll adds
    only what the scheduler knows besides them (its start, nodes, resource use, its own state
    name), once the scheduler has the job as ended too (``scheduler_done``); then the reconcile
    mark is cleared. While the scheduler still lists it as running or completing, nothing."""
    job = unit.job
    if job is None or not job.status.final:
        return update
    if update is None or not scheduler_done:
        return None
    fields: dict[str, Any] = {k: v for k, v in update.fields.items() if k == "start_time"}
    meta = {k: v for k, v in (update.fields.get("metadata") or {}).items() if k != "missing_since"}
    if RECONCILE_META_KEY in job.metadata:
        meta[RECONCILE_META_KEY] = None
    if meta:
        fields["metadata"] = meta
    return JobUpdate(unit.job_id, None, fields, source="reconcile") if fields else None


def missing_update(unit: BatchUnit, grace: float, explain: Callable[[float], str]) -> JobUpdate | None:
    """Nobody knows the job this poll: keep it; UNKNOWN with ``explain(minutes)`` as the reason
    and the failure kind "lost" after ``grace`` seconds (not final: found again, it goes on). The
    first miss only records ``missing_since``."""
    if unit.job is None:
        return None  # an array task we never saw: nothing to keep
    now = time.time()
    since = unit.metadata.get("missing_since")
    if not isinstance(since, (int, float)):
        return JobUpdate(unit.job_id, None, {"metadata": {"missing_since": now}}, source="poll")
    if now - since < grace or unit.job.status is JobStatus.UNKNOWN:
        return None
    return JobUpdate(unit.job_id, JobStatus.UNKNOWN, {"reason": explain((now - since) / 60),
                                                      "metadata": {reasons.KIND_META_KEY: reasons.LOST}},
                     source="poll")


def collect_units(jobs: Sequence[JobInfo], store: JobStore, make_unit: Callable[..., BatchUnit]
                  ) -> tuple[list[Any], list[tuple[JobInfo, dict[int, JobInfo]]]]:
    """Units for every submitted job, and the array parents (with their stored task rows), which
    are summarised from their tasks instead of being units themselves."""
    parents: list[tuple[JobInfo, dict[int, JobInfo]]] = []
    parent_ids: set[str] = set()
    for job in jobs:
        if job.native_id and job.metadata.get("array") and job.array_parent is None:
            children = {c.array_index: c for c in store.list(array_parent=job.job_id) if c.array_index is not None}
            parents.append((job, children))
            parent_ids.add(job.job_id)
    units = []
    for job in jobs:
        if not job.native_id or job.job_id in parent_ids:
            continue  # not submitted yet (nothing to ask), or summarised from its tasks
        if job.array_parent in parent_ids:
            parent = next(p for p, _c in parents if p.job_id == job.array_parent)
            units.append(make_unit(job.job_id, job.native_id, job, parent, job.array_index))
        else:
            units.append(make_unit(job.job_id, job.native_id, job))
    return units, parents


def task_time(child: JobInfo | None, unit: BatchUnit | None, name: str) -> datetime | None:
    if unit is not None and unit.fields.get(name) is not None:
        return unit.fields[name]
    return getattr(child, name) if child is not None else None


def task_value(child: JobInfo | None, unit: BatchUnit | None, name: str) -> Any:
    if unit is not None and name in unit.fields:
        return unit.fields[name]
    return getattr(child, name) if child is not None else None


def summarise_array(parent: JobInfo, children: Mapping[int, JobInfo], units: Sequence[BatchUnit],
                    spec_indices: Sequence[int], missing: Callable[[BatchUnit], JobUpdate | None]
                    ) -> JobUpdate | None:
    """The parent row of an array, from its tasks (this poll's decisions, else the stored rows):
    RUNNING once any task started, final when all are (FAILED if any failed, else CANCELLED if
    any was cancelled, else COMPLETED), with ``metadata["array_tasks"]`` = counts per status plus
    ``"total"``. ``spec_indices``: the indexes the array was submitted with."""
    by_index = {u.index: u for u in units if u.index is not None}
    indices = sorted(set(spec_indices) | set(by_index) | set(children))
    states: list[tuple[JobStatus, JobInfo | None, BatchUnit | None]] = []
    for index in indices:
        unit = by_index.get(index)
        child = children.get(index)
        status = (unit.status if unit is not None else None) or (child.status if child is not None else None)
        if status is not None and status is not JobStatus.PENDING:
            states.append((status, child, unit))
    if not states:
        return missing(BatchUnit(parent.job_id, parent.native_id or "", parent))
    counts: dict[str, int] = {}
    for status, _child, _unit in states:
        counts[status.value] = counts.get(status.value, 0) + 1
    total = len(indices)
    meta: dict[str, Any] = {"array_tasks": {"total": total, **counts}}
    if parent.metadata.get("missing_since") is not None:
        meta["missing_since"] = None
    fields: dict[str, Any] = {"metadata": meta}
    starts = [t for t in (task_time(c, u, "start_time") for _s, c, u in states) if t is not None]
    if starts:
        fields["start_time"] = min(starts)
    statuses = [s for s, _c, _u in states]
    if len(states) == total and all(s.final for s in statuses):
        ends = [t for t in (task_time(c, u, "end_time") for _s, c, u in states) if t is not None]
        fields["end_time"] = max(ends) if ends else utcnow()
        status, outcome = array_outcome(
            total, [task_value(c, u, "exit_code") for s, c, u in states if s is JobStatus.FAILED],
            sum(1 for s in statuses if s is JobStatus.CANCELLED),
            cancel_requested=bool(parent.metadata.get("cancel_requested")))
        fields.update(outcome)
    elif any(s is JobStatus.RUNNING or s.final for s in statuses):
        status, fields["reason"] = JobStatus.RUNNING, None
    elif all(s is JobStatus.HELD for s in statuses):
        status = JobStatus.HELD
    elif any(s in (JobStatus.QUEUED, JobStatus.HELD) for s in statuses):
        status = JobStatus.QUEUED
        fields["reason"] = next((u.fields.get("reason") for _s, _c, u in states
                                 if u is not None and u.fields.get("reason")), None)
    else:
        return JobUpdate(parent.job_id, None, fields, source="poll")
    return JobUpdate(parent.job_id, status, fields, source="poll")
