"""The project's history as a typed pandas DataFrame, and CSV / Parquet files of it.

Three shapes, chosen with ``per``:

- ``"job"`` (default): one row per piece of work. A retry is a new record linked by ``retry_of``;
  the whole chain is one row holding its latest attempt, with ``attempts`` counting the tries.
- ``"attempt"``: one row per record in the store, retries included (what ``celline-jobs history``
  lists); ``root_id`` names the first attempt of the chain.
- ``"event"``: one row per status change (the store's event log).

pandas is imported inside the functions: the CLI and job wrappers import this package on their
hot paths and must not pay for pandas.

The job and attempt frames are built column by column straight from SQLite, not from ``JobInfo``
objects: at 100,000 jobs, building the objects and ``json.loads`` of every metadata document (which
holds a running job's usage samples) took seconds, while SQLite's ``json_extract`` pulls the few
usage and progress figures out in C. Only the rare row whose JSON SQLite cannot read (Python writes
NaN, which is not JSON) is decoded in Python, with the same rules.
"""

from __future__ import annotations

import itertools
import json
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from .core.errors import CellineJobsError, InvalidInputError
from .core.models import JobInfo, JobStatus, JobType, to_utc
from .core.paths import write_output
from .history_columns import USAGE_KEYS, Columns, paused_gc, read_columns
from .store.rows import stored_resources, stored_status
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
    if store.count_matching(None, scheduler=scheduler, job_types=types, since=start, until=end) > CHUNKED_ABOVE:
        # A long history is read a chunk at a time (as ``chunks.iter_history`` does): only one
        # chunk's rows are ever Python objects, and the frames are joined at the end.
        import pandas as pd

        frames = list(chunk_frames(store, CHUNK, per, statuses, types, scheduler, start, end))
        return pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    return frame_of(store, per, statuses, types, scheduler, start, end)


#: ``to_dataframe`` of more matching jobs than this reads them in chunks of ``CHUNK``.
CHUNKED_ABOVE = 250_000
CHUNK = 100_000


def chunk_frames(store: JobStore, chunk: int, per: Per, statuses: list[JobStatus] | None,
                 types: list[JobType] | None, scheduler: str | None, start: datetime | None,
                 end: datetime | None) -> Iterator[pd.DataFrame]:
    """``frame_of`` for consecutive runs of about ``chunk`` jobs, oldest first, cut at creation
    times read from their index (``JobStore.created_bounds``)."""
    bounds = store.created_bounds(chunk, start, end)
    edges = [start, *(datetime.fromtimestamp(b, timezone.utc) for b in bounds), end]
    for low, high in itertools.pairwise(edges):
        yield frame_of(store, per, statuses, types, scheduler, low, high)


def frame_of(store: JobStore, per: Per, statuses: list[JobStatus] | None, types: list[JobType] | None,
             scheduler: str | None, start: datetime | None, end: datetime | None) -> pd.DataFrame:
    """``to_dataframe`` of one read (per job or per attempt), whatever its size."""
    with paused_gc():
        if per == "attempt":
            columns = read_columns(store, statuses, scheduler, types, start, end)
            return _job_frame(columns, _chain_roots(store, columns["job_id"], columns["retry_of"]), None, None,
                              ATTEMPT_COLUMNS)
        # per == "job": chains are built from the records created in the window and the retries
        # created after it (a retry may fall outside the window its first attempt is in), then
        # windowed by the first attempt and filtered by the final status.
        columns = read_columns(store, None, scheduler, types, start, end, retries_after=end)
        roots = _chain_roots(store, columns["job_id"], columns["retry_of"])
        picked, attempts = _latest_of_chains(store, columns, roots, statuses, start, end)
        return _job_frame(columns, roots, picked, attempts, JOB_COLUMNS)


def write_csv(frame: pd.DataFrame, path: str | os.PathLike[str]) -> Path:
    """Write ``frame`` as CSV for spreadsheets and other tools: durations become seconds
    (``run_time`` -> ``run_time_seconds``), times ISO 8601 UTC. Returns the path."""
    import pandas as pd

    out = frame.copy()
    for column in [c for c in out.columns if pd.api.types.is_timedelta64_dtype(out[c])]:
        out[column] = out[column].dt.total_seconds()
        out = out.rename(columns={column: f"{column}_seconds"})
    return write_output(path, lambda tmp: out.to_csv(tmp, index=False))


def write_parquet(frame: pd.DataFrame, path: str | os.PathLike[str]) -> Path:
    """Write ``frame`` as Parquet, keeping every column type (needs pyarrow). Returns the path."""
    try:
        import pyarrow  # noqa: F401  (pandas would only say "Unable to find a usable engine")
    except ImportError:
        raise MissingDependencyError(
            "Parquet export needs pyarrow: pip install pyarrow (or pip install 'celline_jobs_nb[report]'), "
            "or export CSV instead"
        ) from None
    return write_output(path, lambda tmp: frame.to_parquet(tmp, index=False, engine="pyarrow"))


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


def _chain_roots(store: JobStore, job_ids: Sequence[str], retry_of: Sequence[str | None]) -> list[str]:
    """The first attempt's id for each job, following ``retry_of`` (ancestors outside ``jobs`` are read)."""
    if not any(retry_of):
        return list(job_ids)  # no retries at all: every job is its own chain
    parent = dict(zip(job_ids, retry_of, strict=True))
    missing = {p for p in retry_of if p and p not in parent}
    while missing:
        found = store.get_many(sorted(missing))
        parent.update({j.job_id: j.retry_of for j in found})
        parent.update({m: None for m in missing - {j.job_id for j in found}})  # deleted: the chain starts here
        missing = {p for p in parent.values() if p and p not in parent}
    roots: list[str] = []
    for job_id, first_parent in zip(job_ids, retry_of, strict=True):
        if not first_parent:  # most jobs are no retry: nothing to walk
            roots.append(job_id)
            continue
        current, seen = job_id, {job_id}
        while parent.get(current) and parent[current] not in seen:  # `seen` guards against corrupt loops
            current = parent[current]  # type: ignore[assignment]
            seen.add(current)
        roots.append(current)
    return roots


def _latest_of_chains(store: JobStore, columns: Columns, roots: Sequence[str], statuses: list[JobStatus] | None,
                      start: datetime | None, end: datetime | None) -> tuple[Any, Any]:
    """(rows, attempts) of the job frame: for each retry chain, in the order chains first appear,
    its latest attempt (highest attempt, then newest; the first such row on a tie) and the number of
    tries, keeping chains whose first attempt was created in [start, end) and whose latest attempt
    has one of ``statuses``. Array code: one Python step per chain would cost ~0.3 s at 100,000."""
    import numpy as np
    import pandas as pd

    created = np.asarray(columns["created_at"], dtype="float64")
    attempt = np.asarray(columns["attempt"], dtype="int64")
    if not any(columns["retry_of"]):
        # No retries (``_chain_roots`` returned the ids themselves): each row is a chain of one.
        latest, sizes, began = np.arange(len(roots)), np.ones(len(roots), dtype="int64"), created
    else:
        codes, chain_roots = pd.factorize(np.asarray(roots, dtype=object))  # chains by first appearance
        order = np.lexsort((np.arange(len(codes)), -created, -attempt, codes))  # per chain: the latest first
        latest = order[np.r_[0, np.flatnonzero(np.diff(codes[order])) + 1]]
        sizes = np.bincount(codes, minlength=len(chain_roots))
        # When each chain began: its root's own creation (the root may be outside the filters),
        # else that of its first row in store order.
        row_of = {job_id: i for i, job_id in enumerate(columns["job_id"])}
        outside = {j.job_id: j.created_at.timestamp()
                   for j in store.get_many([r for r in chain_roots if r not in row_of])}  # filtered-out first tries
        first_row = np.full(len(chain_roots), len(codes), dtype="int64")
        np.minimum.at(first_row, codes, np.arange(len(codes)))
        began = np.array([created[row_of[root]] if root in row_of else outside.get(root, created[first_row[c]])
                          for c, root in enumerate(chain_roots)], dtype="float64")
    keep = np.ones(len(latest), dtype=bool)
    if start is not None:
        keep &= began >= start.timestamp()
    if end is not None:
        keep &= began < end.timestamp()
    if statuses is not None:
        wanted = {s.value for s in statuses}
        keep &= np.array([columns["status"][row] in wanted for row in latest], dtype=bool)
    return latest[keep], np.maximum(sizes, attempt[latest])[keep]


def _floats(np: Any, values: Sequence[Any]) -> Any:
    """A float64 array with NaN for None (numbers from SQLite are ints, floats or None)."""
    if _all_none(values):  # a column no job has filled: numpy would look at each None
        return np.full(len(values), np.nan)
    return np.array(values, dtype="float64")


def _all_none(values: Sequence[Any]) -> bool:
    return isinstance(values, (list, tuple)) and values.count(None) == len(values)


def _times(pd: Any, np: Any, seconds: Any) -> Any:
    """Epoch seconds (NaN: unknown) as datetime64[ns, UTC], rounded to the microsecond as
    ``datetime.fromtimestamp`` rounds the stored value."""
    return pd.Series(pd.to_datetime(np.round(seconds * 1e6), unit="us", utc=True)).astype("datetime64[ns, UTC]")


def _ints(pd: Any, np: Any, values: Sequence[Any]) -> Any:
    """An "Int64" array from ints and None, through numpy (``pd.array(list)`` checks each value in
    Python). Every integer column here (codes, counts, bytes) is far below 2**53, exact in a float."""
    numbers = _floats(np, values)
    missing = np.isnan(numbers)
    return pd.arrays.IntegerArray(np.where(missing, 0, numbers).astype("int64"), missing)


def _seconds(pd: Any, seconds: Any) -> Any:
    return pd.Series(pd.to_timedelta(seconds, unit="s")).astype("timedelta64[ns]")


def _text(pd: Any, values: Sequence[Any]) -> Any:
    """A "string" array. With pandas' Arrow-backed strings, built by pyarrow from the list in one
    step (pandas' own path checks each value in Python: ~10 ms per 100,000)."""
    if pd.StringDtype().storage == "pyarrow":
        try:
            import pyarrow as pa
        except ImportError:
            return pd.array(values, dtype="string")
        try:
            if _all_none(values):
                return pd.array(pa.nulls(len(values), pa.large_string()), dtype="string")
            return pd.array(pa.array(values, type=pa.large_string(), from_pandas=True), dtype="string")
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            pass  # a value that is not text (a hand-edited database): pandas' path converts it
    return pd.array(values, dtype="string")


def _categorical(pd: Any, np: Any, values: Sequence[str], categories: list[str], parse: Callable[[str], Any]) -> Any:
    """A categorical from stored values through codes: the few distinct values are parsed once
    (``pd.Categorical(values)`` would hash 100,000 strings against the categories in Python)."""
    codes, distinct = pd.factorize(np.asarray(values, dtype=object))
    index = {category: i for i, category in enumerate(categories)}
    mapping = np.array([index[parse(value).value] for value in distinct], dtype="int8")
    return pd.Categorical.from_codes(mapping[codes] if len(codes) else codes.astype("int8"), categories=categories)


def _job_frame(columns: Columns, roots: Sequence[str], picked: Any | None, attempts: Any | None,
               names: Sequence[str]) -> pd.DataFrame:
    """The frame of the rows ``picked`` (indexes into ``columns``; None: all) with the columns ``names``."""
    import numpy as np
    import pandas as pd

    # Resources: few distinct request texts per project, so each is parsed once, and each figure
    # is an array of the distinct requests' values taken by code.
    codes, texts = pd.factorize(np.asarray(columns["resources"], dtype=object), use_na_sentinel=False)
    distinct = [stored_resources(text) for text in texts]

    def each(values: list[Any], dtype: str = "float64") -> Any:
        return np.array(values, dtype=dtype)[codes] if len(codes) else np.array([], dtype=dtype)
    created = _floats(np, columns["created_at"])
    submit = _floats(np, columns["submit_time"])
    submit = np.where(np.isnan(submit), created, submit)  # recorded before submit_time existed (legacy)
    start, end = _floats(np, columns["start_time"]), _floats(np, columns["end_time"])
    usage = {key: columns[key] for key in USAGE_KEYS}
    # The per-row rules: measured figures first, the request where they are missing (or zero); a
    # ratio only with a known numerator and a positive denominator.
    elapsed = np.where(np.isnan(usage["elapsed_seconds"]), (np.round(end * 1e6) - np.round(start * 1e6)) / 1e6,
                       usage["elapsed_seconds"])
    alloc, requested = usage["alloc_cpus"], usage["req_mem_bytes"]
    request_cpus = each([np.nan if r.cpus is None else r.cpus for r in distinct])
    request_mem = each([np.nan if r.memory is None else r.memory for r in distinct])
    cpus = np.where(np.isnan(alloc) | (alloc == 0), request_cpus, alloc)
    requested = np.where(np.isnan(requested) | (requested == 0), request_mem, requested)
    cpu_seconds, max_rss = usage["cpu_seconds"], usage["max_rss_bytes"]
    with np.errstate(invalid="ignore", divide="ignore"):
        denominator = elapsed * cpus
        cpu_eff = np.where(~np.isnan(cpu_seconds) & (denominator > 0), cpu_seconds / denominator, np.nan)
        mem_eff = np.where(~np.isnan(max_rss) & (requested > 0), max_rss / requested, np.nan)
    data: dict[str, Any] = {name: _text(pd, columns[name]) for name in
                            ("job_id", "name", "scheduler", "native_id", "retry_of", "array_parent", "reason",
                             "command", "working_dir", "log_file")}
    data.update({name: _ints(pd, np, columns[name]) for name in ("attempt", "array_index", "exit_code", "signal")})
    data["job_type"] = _categorical(pd, np, columns["job_type"], TYPE_VALUES, JobType.parse)
    data["status"] = _categorical(pd, np, columns["status"], STATUS_VALUES, stored_status)
    data["root_id"] = _text(pd, roots)
    depends_on = columns["depends_on"]
    data["depends_on"] = _text(pd, depends_on if _all_none(depends_on) else
                               [None if text is None else ",".join(json.loads(text)) or None for text in depends_on])
    data["cpus"] = _ints(pd, np, request_cpus)
    data["mem_bytes"] = _ints(pd, np, request_mem)
    data["gpus"] = _ints(pd, np, each([np.nan if r.gpus is None else r.gpus for r in distinct]))
    data["partition"] = _text(pd, list(each([r.partition for r in distinct], "object")))
    data["walltime"] = _seconds(pd, each([np.nan if r.walltime is None else r.walltime for r in distinct]))
    data["progress_pct"] = pd.array(columns["progress_pct"], dtype="Float64")
    data["progress_stage"] = _text(pd, columns["progress_stage"])
    data["max_rss_bytes"] = pd.array(np.trunc(max_rss), dtype="Int64")
    data["cpu_time"] = _seconds(pd, cpu_seconds)
    data["cpu_efficiency"] = pd.array(cpu_eff, dtype="Float64")
    data["mem_efficiency"] = pd.array(mem_eff, dtype="Float64")
    for name, seconds in (("created_at", created), ("submit_time", submit), ("start_time", start),
                          ("end_time", end), ("updated_at", _floats(np, columns["updated_at"]))):
        data[name] = _times(pd, np, seconds)
    data["queue_wait"] = data["start_time"] - data["submit_time"]
    data["run_time"] = data["end_time"] - data["start_time"]
    frame = pd.DataFrame({name: data[name] for name in names if name != "attempts"})
    if picked is not None and not (len(picked) == len(frame) and np.array_equal(picked, np.arange(len(frame)))):
        frame = frame.take(picked).reset_index(drop=True)
    if attempts is not None:
        frame.insert(list(names).index("attempts"), "attempts", pd.array(attempts, dtype="Int64"))
    return frame


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
