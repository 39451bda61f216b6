"""Job rows in SQLite and back: values checked on the way in, one bad value contained on the way out.

The store accepts only values it can read back (an exit code SQLite's INTEGER holds, a finite time,
JSON of bounded depth); a value that still cannot be read (written by an older version, or by hand)
becomes a visible problem of its own job (``metadata["problems"]`` and its reason), never an error
that stops a listing of every other job.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any

from ..core.errors import CellineJobsError, InvalidInputError
from ..core.lazylog import get_logger
from ..core.models import JobInfo, JobStatus, JobType, Progress, to_utc
from ..core.resources import Resources
from ..core.safeio import warn_once

log = get_logger()

COLUMNS = (
    "job_id", "name", "status", "command", "start_time", "end_time", "log_file", "working_dir",
    "resources", "scheduler", "native_id", "job_type", "submit_time", "exit_code", "signal", "reason",
    "attempt", "retry_of", "depends_on", "dependency_kind", "array_parent", "array_index", "progress",
    "created_at", "updated_at", "metadata",
)
TIME_COLUMNS = frozenset({"start_time", "end_time", "submit_time", "created_at", "updated_at"})
JSON_COLUMNS = frozenset({"resources", "depends_on", "progress", "metadata"})
#: The whole numbers a row may hold, and why: an exit code as shells, Torque (256+signal) and PBS
#: (negative codes) report it; a signal number; attempts and array indexes as the schedulers allow.
INT_RANGES = {
    "exit_code": (-(2**31), 2**31 - 1),
    "signal": (0, 255),
    "attempt": (1, 1_000_000),
    "array_index": (0, 100_000_000),
}
PROBLEMS_META_KEY = "problems"
#: The usage record every job ends with (the history's columns): stored as one array under
#: ``PACKED_USAGE`` in ``metadata["usage"]`` (schema 8), ~70 bytes less per job than its keys. Readers
#: see the record as written (``unpack_usage``); SQL reads the array (``'$.usage.u5'``) or, in rows
#: written before, the keys.
USAGE_KEYS = ("cpu_seconds", "elapsed_seconds", "alloc_cpus", "max_rss_bytes", "req_mem_bytes")
PACKED_USAGE = "u5"
_PACKED_MARK = '"u5"'
_EPOCH_RANGE = (0.0, 253402300799.0)  # 1970 .. 9999-12-31, what datetime can show


def encode(column: str, value: Any) -> Any:
    """The SQLite value of one column; ``InvalidInputError`` for a value the store could not read back."""
    if value is None:
        return None
    if column in TIME_COLUMNS:
        try:
            dt = to_utc(value)
        except (OverflowError, OSError, ValueError) as exc:
            raise InvalidInputError(f"invalid {column} {str(value)[:40]!r}: {exc}") from None
        stamp = dt.timestamp() if dt else None
        if stamp is not None and not _EPOCH_RANGE[0] <= stamp <= _EPOCH_RANGE[1]:
            raise InvalidInputError(f"invalid {column} {dt}: before 1970 or after 9999")
        return stamp
    if column in INT_RANGES:
        low, high = INT_RANGES[column]
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise InvalidInputError(f"invalid {column} {str(value)[:40]}: use a whole number from {low} to {high}")
        return value
    try:
        if column == "resources":
            return _compact(Resources.parse(value).to_dict())
        if column == "progress":
            progress = value if isinstance(value, Progress) else Progress.from_dict(value)
            # Only what is set; percent and stage alone (every finished job's) as a pair: '[100.0,"done"]'
            # (schema 9; ``_progress_parts`` reads both forms).
            shown = {key: item for key, item in progress.to_dict().items() if item not in (None, {})}
            if shown and shown.keys() <= {"percent", "stage"}:
                return _compact([shown.get("percent"), shown.get("stage")])
            return _compact(shown)
        if column == "metadata":
            return _compact(pack_usage(value))
        if column in JSON_COLUMNS:
            return _compact(value)
    except RecursionError:
        raise InvalidInputError(f"invalid {column}: nested too deeply") from None
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"invalid {column}: {str(exc)[:200]}") from None
    if column in ("status", "job_type") and hasattr(value, "value"):
        return value.value
    return value


def _compact(value: Any) -> str:
    """JSON without the spaces ``json.dumps`` puts after separators (a few bytes of every row)."""
    return json.dumps(value, default=str, separators=(",", ":"))


def pack_usage(metadata: Any) -> Any:
    """``metadata`` (not changed) with its usage record's five figures as one array, when it has
    all five and nothing already under the array's key; otherwise ``metadata`` itself."""
    usage = metadata.get("usage") if isinstance(metadata, dict) else None
    if not isinstance(usage, dict) or PACKED_USAGE in usage or not all(key in usage for key in USAGE_KEYS):
        return metadata
    rest = {key: value for key, value in usage.items() if key not in USAGE_KEYS}
    return {**metadata, "usage": {PACKED_USAGE: [usage[key] for key in USAGE_KEYS], **rest}}


def unpack_usage(metadata: dict[str, Any]) -> dict[str, Any]:
    """``metadata`` (changed in place) with a packed usage record as its keys again."""
    usage = metadata.get("usage")
    if isinstance(usage, dict) and PACKED_USAGE in usage:
        packed = usage[PACKED_USAGE]
        if isinstance(packed, list) and len(packed) == len(USAGE_KEYS) and not any(k in usage for k in USAGE_KEYS):
            rest = {key: value for key, value in usage.items() if key != PACKED_USAGE}
            metadata["usage"] = {**dict(zip(USAGE_KEYS, packed, strict=True)), **rest}
    return metadata


def metadata_of(raw: Any) -> dict[str, Any]:
    """The stored metadata document as written (a packed usage record unpacked); ``ValueError``
    when it is not a JSON object."""
    value = json.loads(raw or "{}")
    if not isinstance(value, dict):
        raise ValueError("metadata is not an object")
    return unpack_usage(value) if isinstance(raw, str) and _PACKED_MARK in raw else value


def check_job(job: JobInfo) -> None:
    """Raise ``InvalidInputError`` naming the first value of ``job`` the store could not hold."""
    for column in COLUMNS:
        encode(column, getattr(job, column))


@functools.lru_cache(maxsize=4096)
def _resources(text: str | None) -> Resources:
    """Resources from their stored JSON. Requests repeat across jobs and Resources is immutable, so
    each distinct text is parsed once (parsing "32G" and "1:30:00" dominated reading thousands of rows)."""
    return Resources.from_dict(json.loads(text or "{}"))


def stored_resources(text: str | None) -> Resources:
    """A stored request, or no request when it no longer validates (``row_to_job`` names the problem)."""
    try:
        return _resources(text)
    except (CellineJobsError, ValueError, TypeError, RecursionError):
        return Resources()


def stored_status(text: str) -> JobStatus:
    """A stored status, or ``unknown`` for a value no version of this package writes."""
    return STATUS_OF.get(text, JobStatus.UNKNOWN)


@functools.lru_cache(maxsize=4096)
def _progress_parts(text: str | None) -> Progress:
    value = json.loads(text or "{}")
    if isinstance(value, list) and len(value) == 2:  # [percent, stage] (``encode``)
        value = {key: item for key, item in zip(("percent", "stage"), value, strict=True) if item is not None}
    return Progress.from_dict(value)


def _progress(text: str | None) -> Progress:
    """Progress from its stored JSON; finished jobs share a few texts ("100 %, done"), so parsing is
    cached and each job gets its own copy (Progress holds a mutable details dict)."""
    cached = _progress_parts(text)
    return Progress(cached.percent, cached.stage, dict(cached.details), cached.updated_at)


STATUS_OF = {s.value: s for s in JobStatus}
TYPE_OF = {t.value: t for t in JobType}  # stored in canonical form


def time_of(value: float | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value, timezone.utc)


def row_to_job(row: Sequence[Any]) -> JobInfo:
    """A stored row as a JobInfo. Never raises for the row's values: one that cannot be read is
    replaced by its default and named in the job's problems."""
    try:
        return _fast_row_to_job(row)
    except (CellineJobsError, ValueError, TypeError, KeyError, AttributeError, OverflowError, OSError,
            RecursionError):
        return _careful_row_to_job(row)


def _fast_row_to_job(row: Sequence[Any]) -> JobInfo:
    # Positional, in COLUMNS' order: listing thousands of jobs spends most of its time here.
    (job_id, name, status, command, start_time, end_time, log_file, working_dir, resources, scheduler, native_id,
     job_type, submit_time, exit_code, signal, reason, attempt, retry_of, depends_on, dependency_kind,
     array_parent, array_index, progress, created_at, updated_at, metadata) = row[:len(COLUMNS)]
    for whole in (exit_code, signal, array_index):
        if whole is not None and type(whole) is not int:
            raise ValueError("a whole-number column holds something else")  # the careful reading names it
    if type(attempt) is not int:
        raise ValueError("attempt is not a whole number")
    return JobInfo(
        job_id=job_id,
        name=name,
        status=STATUS_OF[status],
        command=command,
        start_time=time_of(start_time),
        end_time=time_of(end_time),
        log_file=log_file,
        working_dir=working_dir,
        resources=_resources(resources),
        scheduler=scheduler,
        native_id=native_id,
        job_type=TYPE_OF[job_type],
        submit_time=time_of(submit_time),
        exit_code=exit_code,
        signal=signal,
        reason=reason,
        attempt=attempt,
        retry_of=retry_of,
        depends_on=[] if depends_on in (None, "[]") else _id_list(json.loads(depends_on)),
        dependency_kind=dependency_kind,
        array_parent=array_parent,
        array_index=array_index,
        progress=_progress(progress),
        created_at=time_of(created_at),
        updated_at=time_of(updated_at),
        metadata=metadata_of(metadata),
    )


def _id_list(value: Any) -> list[str]:
    if not isinstance(value, list):
        raise ValueError("depends_on is not a list")
    return [str(v) for v in value]


def _careful_row_to_job(row: Sequence[Any]) -> JobInfo:
    values = dict(zip(COLUMNS, row[:len(COLUMNS)], strict=True))
    problems: list[str] = []

    def read(column: str, convert: Any, default: Any) -> Any:
        raw = values[column]
        try:
            return convert(raw)
        except (CellineJobsError, ValueError, TypeError, KeyError, AttributeError, OverflowError, OSError,
            RecursionError) as exc:
            problems.append(f"stored {column} unreadable ({str(exc)[:120]})")
            return default

    def whole(column: str) -> Any:
        def convert(raw: Any) -> int | None:
            if raw is None:
                return None
            low, high = INT_RANGES[column]
            if isinstance(raw, bool) or not isinstance(raw, int) or not low <= raw <= high:
                raise ValueError(f"{str(raw)[:40]} is out of range")
            return raw
        return read(column, convert, None)

    def finite_time(raw: Any) -> datetime | None:
        if raw is None:
            return None
        if not isinstance(raw, (int, float)) or not math.isfinite(raw):
            raise ValueError(f"{str(raw)[:40]} is not a time")
        return time_of(raw)

    def text(column: str) -> str | None:
        raw = values[column]
        return None if raw is None else str(raw)

    metadata = read("metadata", metadata_of, {})
    job = JobInfo(
        job_id=str(values["job_id"]),
        name=text("name") or "",
        status=read("status", lambda raw: STATUS_OF[raw], JobStatus.UNKNOWN),
        command=text("command") or "",
        start_time=read("start_time", finite_time, None),
        end_time=read("end_time", finite_time, None),
        log_file=text("log_file"),
        working_dir=text("working_dir"),
        resources=read("resources", _resources, Resources()),
        scheduler=text("scheduler") or "local",
        native_id=text("native_id"),
        job_type=read("job_type", lambda raw: TYPE_OF[raw], JobType.CUSTOM),
        submit_time=read("submit_time", finite_time, None),
        exit_code=whole("exit_code"),
        signal=whole("signal"),
        reason=text("reason"),
        attempt=whole("attempt") or 1,
        retry_of=text("retry_of"),
        depends_on=read("depends_on", lambda raw: [] if raw is None else _id_list(json.loads(raw)), []),
        dependency_kind=text("dependency_kind") or "afterok",
        array_parent=text("array_parent"),
        array_index=whole("array_index"),
        progress=read("progress", _progress, Progress()),
        created_at=read("created_at", finite_time, None) or datetime.fromtimestamp(0, timezone.utc),
        updated_at=read("updated_at", finite_time, None),
        metadata=metadata,
    )
    if problems:
        job.metadata[PROBLEMS_META_KEY] = problems
        if not job.reason:
            job.reason = "; ".join(problems)[:500]
        warn_once(log, job.job_id, "; ".join(problems))
    return job
