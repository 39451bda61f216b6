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
import threading
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
    metadata_of,
    row_to_job,
    time_of,
)

_ROW = "_row"
_BATCH = "_batch"
#: Columns a listing seldom shows, read for a whole batch of listed jobs when one of them is first
#: asked for (``list`` of 3,330 jobs hands Python 18 columns per row instead of 26).
DEFERRED = ("command", "working_dir", "log_file", "depends_on", "dependency_kind", "retry_of", "updated_at",
            "metadata")
EAGER = tuple(c for c in COLUMNS if c not in DEFERRED)
_CONTAINED = (CellineJobsError, ValueError, TypeError, KeyError, OverflowError, OSError, RecursionError)
_FIELDS = tuple(f.name for f in fields(JobInfo))
_METADATA = COLUMNS.index("metadata")
_PROGRESS = COLUMNS.index("progress")


def _metadata(text: str | None) -> dict[str, Any]:
    return metadata_of(text)


class _Decoded:
    """A column decoded on first read and then kept in the instance (a non-data descriptor, as
    ``functools.cached_property``: assignment simply replaces the value). In a job read without
    the deferred columns (``rows_to_jobs_deferred``), reading one of them first reads them for the
    whole batch."""

    def __init__(self, index: int, decode: Any) -> None:
        self.index, self.decode = index, decode
        column = COLUMNS[index]
        self.eager = None if column in DEFERRED else 1 + EAGER.index(column)  # its place in a partial row

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, job: Any, owner: type | None = None) -> Any:
        if job is None:
            return self
        state = job.__dict__
        row = state[_ROW]
        partial = type(row) is _Partial
        if partial and self.eager is None:
            _load(state)
            row, partial = state[_ROW], False
        try:
            value = self.decode(row[self.eager if partial else self.index])
        except _CONTAINED:
            _load(state)  # the careful reading needs every column
            careful = row_to_job(state[_ROW])  # the contained reading: defaults and the problems
            for name in _FIELDS:
                if name not in state or (name == "reason" and not state[name]):
                    state[name] = getattr(careful, name)
            if PROBLEMS_META_KEY in careful.metadata:  # also in a metadata dict assigned meanwhile
                state["metadata"][PROBLEMS_META_KEY] = careful.metadata[PROBLEMS_META_KEY]
            return state[self.name]
        state[self.name] = value
        return value


class _Partial(tuple):  # type: ignore[type-arg]
    """A listed row without its deferred columns (``EAGER_SELECT``'s: seq, then the eager ones)."""

    __slots__ = ()


def _load(state: dict[str, Any]) -> None:
    """Every column of this job's row (its batch's deferred ones read now, if not yet)."""
    batch = state.get(_BATCH)
    if batch is not None:
        batch.load()  # sets the whole row before it drops the batch: a reader sees one or the other


def _whole(value: Any) -> bool:
    return value is None or type(value) is int


def _same(value: Any) -> Any:
    return value


def _depends_on(text: str | None) -> list[str]:
    return [] if text in (None, "[]") else _id_list(json.loads(text))  # type: ignore[arg-type]


class StoredJob(JobInfo):
    """A ``JobInfo`` read from the store (see the module docstring). Equal to a JobInfo with the
    same fields."""

    metadata = _Decoded(_METADATA, _metadata)  # type: ignore[assignment]
    command = _Decoded(COLUMNS.index("command"), _same)  # type: ignore[assignment]
    working_dir = _Decoded(COLUMNS.index("working_dir"), _same)  # type: ignore[assignment]
    log_file = _Decoded(COLUMNS.index("log_file"), _same)  # type: ignore[assignment]
    retry_of = _Decoded(COLUMNS.index("retry_of"), _same)  # type: ignore[assignment]
    dependency_kind = _Decoded(COLUMNS.index("dependency_kind"), _same)  # type: ignore[assignment]
    depends_on = _Decoded(COLUMNS.index("depends_on"), _depends_on)  # type: ignore[assignment]
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

    def __getstate__(self) -> dict[str, Any]:  # a pickled or copied job carries its whole row, not its batch
        _load(self.__dict__)
        return {key: value for key, value in self.__dict__.items() if key != _BATCH}

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
            if not (_whole(exit_code) and _whole(signal) and _whole(array_index) and type(attempt) is int):
                raise ValueError("a whole-number column holds something else")  # the careful reading names it
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


_DEFERRED_INDEXES = tuple(COLUMNS.index(c) for c in DEFERRED)
_EAGER_INDEXES = tuple(COLUMNS.index(c) for c in EAGER)
#: What a deferred column holds for a row gone before the batch read it (``forget``): the defaults.
_GONE = {"depends_on": "[]", "dependency_kind": "afterok", "metadata": "{}", "command": ""}


class _Batch:
    """The listed jobs of one read whose deferred columns are still to be read (all at once)."""

    def __init__(self, read: Any, jobs: dict[int, StoredJob]) -> None:
        self.read, self.jobs, self.lock = read, jobs, threading.Lock()

    def load(self) -> None:
        with self.lock:
            if not self.jobs:
                return
            jobs, self.jobs = self.jobs, {}
            found: dict[int, tuple[Any, ...]] = {}
            seqs = list(jobs)
            for start in range(0, len(seqs), 500):
                chunk = seqs[start:start + 500]
                marks = ", ".join("?" for _ in chunk)
                for seq, *values in self.read(f"SELECT seq, {', '.join(DEFERRED)} FROM jobs WHERE seq IN ({marks})",
                                              chunk):
                    found[seq] = tuple(values)
            for seq, job in jobs.items():
                state = job.__dict__
                partial = state[_ROW]
                deferred = found.get(seq) or tuple(_GONE.get(c) for c in DEFERRED)
                full: list[Any] = [None] * len(COLUMNS)
                for index, value in zip(_EAGER_INDEXES, partial[1:], strict=True):
                    full[index] = value
                for index, value in zip(_DEFERRED_INDEXES, deferred, strict=True):
                    full[index] = value
                state[_ROW] = tuple(full)
                state.pop(_BATCH, None)


EAGER_SELECT = "SELECT seq, " + ", ".join(EAGER) + " FROM jobs"


def rows_to_jobs_deferred(rows: Sequence[Sequence[Any]], read: Any) -> list[JobInfo]:
    """Jobs from rows of ``EAGER_SELECT`` (seq, then the eager columns): the deferred columns are
    read, for every job of this batch in one query through ``read(sql, params)``, when one of them
    is first asked for."""
    jobs: list[JobInfo] = []
    batch = _Batch(read, {})
    append = jobs.append
    for row in rows:
        try:
            (seq, job_id, name, status, _start, _end, resources, scheduler, native_id, job_type, _submit, exit_code,
             signal, reason, attempt, array_parent, array_index, _progress_text, _created) = row
            if not (_whole(exit_code) and _whole(signal) and _whole(array_index) and type(attempt) is int):
                raise ValueError("a whole-number column holds something else")  # the careful reading names it
            job = _new(StoredJob)
            job.__dict__ = {
                _ROW: _Partial(row), _BATCH: batch, "job_id": job_id, "name": name, "status": STATUS_OF[status],
                "resources": _resources(resources), "scheduler": scheduler, "native_id": native_id,
                "job_type": TYPE_OF[job_type], "exit_code": exit_code, "signal": signal, "reason": reason,
                "attempt": attempt, "array_parent": array_parent, "array_index": array_index,
            }
        except _CONTAINED:
            job = _new(StoredJob)  # a bad value: read it whole, carefully, with the batch
            job.__dict__ = {_ROW: _Partial(row), _BATCH: batch}
            batch.jobs[row[0]] = job
            batch.load()
            append(row_to_job(job.__dict__[_ROW]))
            continue
        batch.jobs[seq] = job
        append(job)
    return jobs
