"""Listing many jobs fast: rows whose JSON columns are decoded when first used.

A filtered listing (``JobStore.list``: "the failed Count jobs" of a long history) returns
thousands of jobs, most of which a caller shows by id, name, status and a time or two. Decoding
each one's ``metadata`` JSON (usage records, scheduler facts) was the biggest part of building
them, then its five times: ``StoredJob`` is a ``JobInfo`` that keeps its row and decodes
``metadata``, ``progress`` and the times on first access (then they are ordinary attributes, and
may be assigned as on any JobInfo). 3,330 jobs of 100,000: 42 ms of building -> 9 ms. Values
that cannot be read are contained exactly as ``rows.row_to_job`` contains them: the job becomes
what that careful reading makes of its row (defaults, ``metadata["problems"]``, the reason).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import fields
from typing import Any

from ..core.errors import CellineJobsError
from ..core.models import JobInfo
from .rows import (
    COLUMNS,
    PROBLEMS_META_KEY,
    STATUS_OF,
    TYPE_OF,
    _id_list,
    _progress,
    _resources,
    row_to_job,
    time_of,
)

_ROW = "_row"
_CONTAINED = (CellineJobsError, ValueError, TypeError, KeyError, OverflowError, OSError, RecursionError)
_FIELDS = tuple(f.name for f in fields(JobInfo))
_METADATA = COLUMNS.index("metadata")
_PROGRESS = COLUMNS.index("progress")


def _metadata(text: str | None) -> dict[str, Any]:
    value = json.loads(text or "{}")
    if not isinstance(value, dict):
        raise ValueError("metadata is not an object")
    return value


class _Decoded:
    """A column decoded on first read and then kept in the instance (a non-data descriptor, as
    ``functools.cached_property``: assignment simply replaces the value)."""

    def __init__(self, index: int, decode: Any) -> None:
        self.index, self.decode = index, decode

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, job: Any, owner: type | None = None) -> Any:
        if job is None:
            return self
        state = job.__dict__
        try:
            value = self.decode(state[_ROW][self.index])
        except _CONTAINED:
            careful = row_to_job(state[_ROW])  # the contained reading: defaults and the problems
            for name in _FIELDS:
                if name not in state or (name == "reason" and not state[name]):
                    state[name] = getattr(careful, name)
            if PROBLEMS_META_KEY in careful.metadata:  # also in a metadata dict assigned meanwhile
                state["metadata"][PROBLEMS_META_KEY] = careful.metadata[PROBLEMS_META_KEY]
            return state[self.name]
        state[self.name] = value
        return value


class StoredJob(JobInfo):
    """A ``JobInfo`` read from the store (see the module docstring). Equal to a JobInfo with the
    same fields."""

    metadata = _Decoded(_METADATA, _metadata)  # type: ignore[assignment]
    progress = _Decoded(_PROGRESS, _progress)  # type: ignore[assignment]
    start_time = _Decoded(COLUMNS.index("start_time"), time_of)  # type: ignore[assignment]
    end_time = _Decoded(COLUMNS.index("end_time"), time_of)  # type: ignore[assignment]
    submit_time = _Decoded(COLUMNS.index("submit_time"), time_of)  # type: ignore[assignment]
    created_at = _Decoded(COLUMNS.index("created_at"), time_of)  # type: ignore[assignment]
    updated_at = _Decoded(COLUMNS.index("updated_at"), time_of)  # type: ignore[assignment]

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, JobInfo):
            return NotImplemented
        return all(getattr(self, name) == getattr(other, name) for name in _FIELDS)

    __hash__ = None  # type: ignore[assignment]  # mutable, as JobInfo

    def __repr__(self) -> str:
        return "JobInfo" + JobInfo.__repr__(self)[len(type(self).__qualname__):]


_new = object.__new__


def rows_to_jobs(rows: Sequence[Sequence[Any]]) -> list[JobInfo]:
    """``row_to_job`` for many rows, leaving metadata and progress to be decoded on first use."""
    jobs: list[JobInfo] = []
    append = jobs.append
    for row in rows:
        try:
            (job_id, name, status, command, _start, _end, log_file, working_dir, resources, scheduler,
             native_id, job_type, _submit, exit_code, signal, reason, attempt, retry_of, depends_on,
             dependency_kind, array_parent, array_index, _progress_text, _created, _updated,
             _metadata_text) = row[:len(COLUMNS)]
            job = _new(StoredJob)
            job.__dict__ = {
                _ROW: row, "job_id": job_id, "name": name, "status": STATUS_OF[status], "command": command,
                "log_file": log_file,
                "working_dir": working_dir, "resources": _resources(resources), "scheduler": scheduler,
                "native_id": native_id, "job_type": TYPE_OF[job_type],
                "exit_code": exit_code, "signal": signal, "reason": reason, "attempt": attempt,
                "retry_of": retry_of,
                "depends_on": [] if depends_on in (None, "[]") else _id_list(json.loads(depends_on)),
                "dependency_kind": dependency_kind, "array_parent": array_parent, "array_index": array_index,
            }
        except _CONTAINED:
            append(row_to_job(row))  # the careful reading names the bad value
            continue
        append(job)
    return jobs
