"""The project's history as a typed pandas DataFrame, and CSV / Parquet files of it.

Three shapes, chosen with ``per``:

- ``"job"`` (default): one row per piece of work. A retry is a new record linked by ``retry_of``;
  the whole chain is one row holding its latest attempt, with ``attempts`` counting the tries.
- ``"attempt"``: one row per record in the store, retries included (what ``celline-jobs history``
  lists); ``root_id`` names the first attempt of the chain.
- ``"event"``: one row per status change (the store's event log).

pandas is imported inside the functions: the CLI and job wrappers import this package on their
hot paths and must not pay for pandas.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from .core.errors import CellineJobsError, InvalidInputError
from .core.models import JobInfo, JobStatus, JobType, to_utc
from .store.sqlite import Event, JobStore

if TYPE_CHECKING:
    import pandas as pd

    from .monitor import JobMonitor

Per = Literal["job", "attempt", "event"]
PER_VALUES: tuple[str, ...] = ("job", "attempt", "event")
STATUS_VALUES = [s.value for s in JobStatus]
TYPE_VALUES = [t.value for t in JobType]

_TIME_COLUMNS = ("created_at", "submit_time", "start_time", "end_time", "updated_at")
_STRING_COLUMNS = ("job_id", "name", "scheduler", "native_id", "retry_of", "root_id", "array_parent", "reason",
                   "partition", "progress_stage", "command", "working_dir", "log_file", "depends_on")
_INT_COLUMNS = ("attempt", "array_index", "exit_code", "signal", "cpus", "mem_bytes", "gpus", "max_rss_bytes")
_FLOAT_COLUMNS = ("progress_pct", "cpu_efficiency", "mem_efficiency")
# Column order of the job and attempt frames (the job frame adds ``attempts`` after ``attempt``).
ATTEMPT_COLUMNS = (
    "job_id", "name", "job_type", "status", "scheduler", "native_id", "attempt", "retry_of", "root_id",
    "array_parent", "array_index", *_TIME_COLUMNS, "queue_wait", "run_time", "exit_code", "signal", "reason",
    "cpus", "mem_bytes", "walltime", "partition", "gpus", "max_rss_bytes", "cpu_time", "cpu_efficiency",
    "mem_efficiency", "progress_pct", "progress_stage", "command", "working_dir", "log_file", "depends_on",
)
JOB_COLUMNS = (*ATTEMPT_COLUMNS[:7], "attempts", *ATTEMPT_COLUMNS[7:])
EVENT_COLUMNS = ("time", "job_id", "name", "job_type", "scheduler", "attempt", "from_status", "to_status",
                 "time_in_previous", "reason", "source")


class MissingDependencyError(CellineJobsError):
    """An optional package (pyarrow, matplotlib) that this feature needs is not installed."""


StatusFilter = JobStatus | str | Iterable[JobStatus | str] | None
TypeFilter = JobType | str | Iterable[JobType | str] | None
TimeBound = datetime | str | None


def to_dataframe(
    source: JobMonitor | JobStore,
    *,
    per: Per = "job",
    since: TimeBound = None,
    until: TimeBound = None,
    status: StatusFilter = None,
    job_type: TypeFilter = None,
    scheduler: str | None = None,
) -> pd.DataFrame:
    """The history of a project (a ``JobMonitor`` or ``JobStore``) as a DataFrame.

    Filters: ``status`` and ``job_type`` take one value or several; ``scheduler`` one name.
    ``since``/``until`` (datetime or ISO 8601 text; naive means UTC) bound when a job was created
    (for ``per="job"``: its first attempt) or, for ``per="event"``, when the event happened. For
    events, the status/type/scheduler filters select the jobs whose events are returned (``status``
    is the job's current status).

    Columns are typed: ``status``/``job_type`` categorical, times ``datetime64[ns, UTC]``,
    ``queue_wait`` (start - submit), ``run_time`` (end - start), ``walltime`` and ``cpu_time`` as
    Timedelta (NaT when unknown), counts and codes nullable ``Int64``, efficiencies ``Float64``
    fractions (NA when the scheduler measured nothing; CPU efficiency above 1 means the job used
    more cores than it asked for).
    """
    store = _store_of(source)
    if per not in PER_VALUES:
        raise InvalidInputError(f"invalid per={per!r}: use one of {', '.join(PER_VALUES)}")
    statuses = _statuses(status)
    types = _types(job_type)
    start, end = _bound(since, "since"), _bound(until, "until")
    if per == "event":
        return _event_frame(store, statuses, types, scheduler, start, end)
    if per == "attempt":
        jobs = store.list(statuses, scheduler=scheduler, job_types=types, since=start, until=end)
        roots = _chain_roots(store, jobs)
        return _job_frame([_attempt_row(job, roots[job.job_id]) for job in jobs], ATTEMPT_COLUMNS)
    # per == "job": chains are built from every record (a retry may fall outside the window its
    # first attempt is in), then windowed by the first attempt and filtered by the final status.
    jobs = store.list(scheduler=scheduler, job_types=types)
    roots = _chain_roots(store, jobs)
    chains: dict[str, list[JobInfo]] = {}
    for job in jobs:
        chains.setdefault(roots[job.job_id], []).append(job)
    first_created = {j.job_id: j.created_at for j in jobs}
    outside = store.get_many([root for root in chains if root not in first_created])  # filtered-out first tries
    first_created.update({j.job_id: j.created_at for j in outside})
    rows = []
    for root_id, chain in chains.items():
        created = first_created.get(root_id, chain[0].created_at)
        if (start is not None and created < start) or (end is not None and created >= end):
            continue
        latest = max(chain, key=lambda j: (j.attempt, j.created_at))
        if statuses is not None and latest.status not in statuses:
            continue
        rows.append({**_attempt_row(latest, root_id), "attempts": max(len(chain), latest.attempt)})
    return _job_frame(rows, JOB_COLUMNS)


def write_csv(frame: pd.DataFrame, path: str | os.PathLike[str]) -> Path:
    """Write ``frame`` as CSV for spreadsheets and other tools: durations become seconds
    (``run_time`` -> ``run_time_seconds``), times ISO 8601 UTC. Returns the path."""
    import pandas as pd

    out = frame.copy()
    for column in [c for c in out.columns if pd.api.types.is_timedelta64_dtype(out[c])]:
        out[column] = out[column].dt.total_seconds()
        out = out.rename(columns={column: f"{column}_seconds"})
    target = Path(path).expanduser()
    _atomic(target, lambda tmp: out.to_csv(tmp, index=False))
    return target


def write_parquet(frame: pd.DataFrame, path: str | os.PathLike[str]) -> Path:
    """Write ``frame`` as Parquet, keeping every column type (needs pyarrow). Returns the path."""
    try:
        import pyarrow  # noqa: F401  (pandas would only say "Unable to find a usable engine")
    except ImportError:
        raise MissingDependencyError(
            "Parquet export needs pyarrow: pip install pyarrow (or pip install 'celline_jobs_nb[report]'), "
            "or export CSV instead"
        ) from None
    target = Path(path).expanduser()
    _atomic(target, lambda tmp: frame.to_parquet(tmp, index=False, engine="pyarrow"))
    return target


# -- filters -------------------------------------------------------------------------------------


def _store_of(source: JobMonitor | JobStore) -> JobStore:
    store = getattr(source, "store", source)
    if not isinstance(store, JobStore):
        raise InvalidInputError(f"expected a JobMonitor or a JobStore, got {type(source).__name__}")
    return store


def _statuses(value: StatusFilter) -> list[JobStatus] | None:
    if value is None:
        return None
    items = [value] if isinstance(value, (str, JobStatus)) else list(value)
    return [JobStatus.parse(v) for v in items]


def _types(value: TypeFilter) -> list[JobType] | None:
    if value is None:
        return None
    items = [value] if isinstance(value, (str, JobType)) else list(value)
    return [JobType.parse(v) for v in items]


def _bound(value: TimeBound, name: str) -> datetime | None:
    try:
        return to_utc(value)
    except CellineJobsError:
        raise InvalidInputError(f"invalid {name}={value!r}: use a datetime or ISO 8601 text like 2026-11-01") from None


# -- rows ----------------------------------------------------------------------------------------


def _chain_roots(store: JobStore, jobs: Sequence[JobInfo]) -> dict[str, str]:
    """The first attempt's id for each job, following ``retry_of`` (ancestors outside ``jobs`` are read)."""
    parent = {j.job_id: j.retry_of for j in jobs}
    missing = {p for p in parent.values() if p and p not in parent}
    while missing:
        found = store.get_many(sorted(missing))
        parent.update({j.job_id: j.retry_of for j in found})
        parent.update({m: None for m in missing - {j.job_id for j in found}})  # deleted: the chain starts here
        missing = {p for p in parent.values() if p and p not in parent}
    roots: dict[str, str] = {}
    for job in jobs:
        current, seen = job.job_id, {job.job_id}
        while parent.get(current) and parent[current] not in seen:  # `seen` guards against corrupt loops
            current = parent[current]  # type: ignore[assignment]
            seen.add(current)
        roots[job.job_id] = current
    return roots


def _number(value: Any) -> float | None:
    """A usage figure, or None when the adapter left it out or wrote something unusable."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
        return None
    return float(value)


def _ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or not denominator or denominator <= 0:
        return None
    return numerator / denominator


def _attempt_row(job: JobInfo, root_id: str) -> dict[str, Any]:
    raw_usage = job.metadata.get("usage")
    usage: dict[str, Any] = raw_usage if isinstance(raw_usage, dict) else {}
    cpu_seconds = _number(usage.get("cpu_seconds"))
    elapsed = _number(usage.get("elapsed_seconds"))
    if elapsed is None and job.start_time and job.end_time:
        elapsed = (job.end_time - job.start_time).total_seconds()
    cpus = _number(usage.get("alloc_cpus")) or job.resources.cpus
    max_rss = _number(usage.get("max_rss_bytes"))
    requested_mem = _number(usage.get("req_mem_bytes")) or job.resources.memory
    return {
        "job_id": job.job_id, "name": job.name, "job_type": job.job_type.value, "status": job.status.value,
        "scheduler": job.scheduler, "native_id": job.native_id, "attempt": job.attempt, "retry_of": job.retry_of,
        "root_id": root_id, "array_parent": job.array_parent, "array_index": job.array_index,
        # a job recorded before submit_time existed (legacy import) was submitted when it was created
        "created_at": job.created_at, "submit_time": job.submit_time or job.created_at,
        "start_time": job.start_time, "end_time": job.end_time, "updated_at": job.updated_at,
        "exit_code": job.exit_code, "signal": job.signal, "reason": job.reason,
        "cpus": job.resources.cpus, "mem_bytes": job.resources.memory, "walltime": job.resources.walltime,
        "partition": job.resources.partition, "gpus": job.resources.gpus,
        "max_rss_bytes": None if max_rss is None else int(max_rss), "cpu_time": cpu_seconds,
        "cpu_efficiency": _ratio(cpu_seconds, None if elapsed is None or cpus is None else elapsed * cpus),
        "mem_efficiency": _ratio(max_rss, requested_mem),
        "progress_pct": job.progress.percent, "progress_stage": job.progress.stage,
        "command": job.command, "working_dir": job.working_dir, "log_file": job.log_file,
        "depends_on": ",".join(job.depends_on) or None,
    }


def _job_frame(rows: list[dict[str, Any]], columns: Sequence[str]) -> pd.DataFrame:
    import pandas as pd

    data: dict[str, Any] = {}
    for column in columns:
        if column in ("queue_wait", "run_time"):
            continue  # computed from the time columns below
        values = [row[column] for row in rows]
        if column in _TIME_COLUMNS:
            data[column] = pd.Series(values, dtype="datetime64[ns, UTC]")
        elif column in ("walltime", "cpu_time"):
            seconds = pd.Series(values, dtype="Float64").astype("float64")
            data[column] = pd.to_timedelta(seconds, unit="s").astype("timedelta64[ns]")
        else:
            data[column] = _typed(pd, column, values)
    frame = pd.DataFrame(data)
    frame["queue_wait"] = frame["start_time"] - frame["submit_time"]
    frame["run_time"] = frame["end_time"] - frame["start_time"]
    return frame[list(columns)]


def _typed(pd: Any, column: str, values: list[Any]) -> Any:
    if column in ("status", "from_status", "to_status"):
        return pd.Categorical(values, categories=STATUS_VALUES)
    if column == "job_type":
        return pd.Categorical(values, categories=TYPE_VALUES)
    if column in _INT_COLUMNS or column == "attempts":
        return pd.array(values, dtype="Int64")
    if column in _FLOAT_COLUMNS:
        return pd.array(values, dtype="Float64")
    if column in _STRING_COLUMNS or column == "source":
        return pd.array(values, dtype="string")
    raise AssertionError(f"column {column!r} has no type")  # a new column must be given one above


def _event_frame(store: JobStore, statuses: list[JobStatus] | None, types: list[JobType] | None,
                 scheduler: str | None, start: datetime | None, end: datetime | None) -> pd.DataFrame:
    import pandas as pd

    jobs = {j.job_id: j for j in store.list(statuses, scheduler=scheduler, job_types=types)}
    # Every event is read, not only those after `since`: how long a job sat in its previous
    # status needs the event before the window.
    previous: dict[str, datetime] = {}
    rows: list[tuple[Event, JobInfo, datetime | None]] = []
    for event in store.events():
        job = jobs.get(event.job_id)
        before = previous.get(event.job_id)
        previous[event.job_id] = event.time
        if job is None or (start is not None and event.time < start) or (end is not None and event.time >= end):
            continue
        rows.append((event, job, before))
    frame = pd.DataFrame({
        "time": pd.Series([e.time for e, _, _ in rows], dtype="datetime64[ns, UTC]"),
        "job_id": _typed(pd, "job_id", [e.job_id for e, _, _ in rows]),
        "name": _typed(pd, "name", [j.name for _, j, _ in rows]),
        "job_type": _typed(pd, "job_type", [j.job_type.value for _, j, _ in rows]),
        "scheduler": _typed(pd, "scheduler", [j.scheduler for _, j, _ in rows]),
        "attempt": _typed(pd, "attempt", [j.attempt for _, j, _ in rows]),
        "from_status": _typed(pd, "from_status", [e.from_status.value if e.from_status else None for e, _, _ in rows]),
        "to_status": _typed(pd, "to_status", [e.to_status.value for e, _, _ in rows]),
        "previous_time": pd.Series([b for _, _, b in rows], dtype="datetime64[ns, UTC]"),
        "reason": _typed(pd, "reason", [e.reason for e, _, _ in rows]),
        "source": _typed(pd, "source", [e.source for e, _, _ in rows]),
    })
    frame["time_in_previous"] = frame["time"] - frame.pop("previous_time")
    return frame[list(EVENT_COLUMNS)]


def _atomic(target: Path, write: Callable[[Path], object]) -> None:
    """Readers of ``target`` see the old file or the whole new one, never a half-written file."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        write(tmp)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
