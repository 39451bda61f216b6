"""The history's rows read as columns, for ``export``'s DataFrames.

One query reads the plain columns of every matching row, the five usage figures pulled out of the
metadata document by SQLite's ``json_extract`` (in C: ``json.loads`` of every document cost ~0.5 s
per 100,000), and the progress text as stored. Progress texts repeat (a finished job's is
'{"percent":100.0,"stage":...}'), so each distinct one is decoded once, by the same rule as a
``JobInfo`` read (``store.rows``). Only the rare row whose metadata SQLite cannot read (Python
writes NaN, which is not JSON) is decoded in Python, with the same rules.

pandas and numpy are imported inside the functions (``export`` is imported on no hot path, but
this module may be).
"""

from __future__ import annotations

import contextlib
import gc
import json
import re
import warnings
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

from .core.errors import CellineJobsError
from .core.models import JobStatus, JobType, Progress
from .store.rows import PACKED_USAGE, USAGE_KEYS, _progress
from .store.sqlite import JobStore

_USAGE_PATHS = ", ".join(f"'$.usage.{key}'" for key in USAGE_KEYS)
_PLAIN_COLUMNS = ("job_id", "name", "job_type", "status", "scheduler", "native_id", "attempt", "retry_of",
                  "array_parent", "array_index", "created_at", "submit_time", "start_time", "end_time", "updated_at",
                  "exit_code", "signal", "reason", "resources", "command", "working_dir", "log_file")
_SELECTED = (*_PLAIN_COLUMNS, "depends_on", "usage", "progress")
Columns = dict[str, Any]  # column name -> sequence or numpy array, one value per row in store order
_CONTAINED = (CellineJobsError, ValueError, TypeError, KeyError, AttributeError, OverflowError, RecursionError)


def columns_sql() -> str:
    """The query's columns: the metadata document (which can hold a running job's usage samples,
    kilobytes) parsed once by one json_extract of the five usage paths, giving a small JSON array
    typed in Python by the per-row rule (``number``). JSON that SQLite cannot read is not looked
    into here: its array is NULL."""
    return (f"{', '.join(_PLAIN_COLUMNS)}, NULLIF(depends_on, '[]'), "
            f"CASE WHEN json_valid(metadata) THEN COALESCE(json_extract(metadata, '$.usage.{PACKED_USAGE}'), "
            f"json_extract(metadata, {_USAGE_PATHS})) END, progress")


def read_columns(store: JobStore, statuses: list[JobStatus] | None, scheduler: str | None,
                 types: list[JobType] | None, since: datetime | None, until: datetime | None,
                 retries_after: datetime | None = None) -> Columns:
    """The jobs matching the filters (what ``JobStore.list`` makes of them), as columns
    (``retries_after``: see ``JobStore.select``)."""
    import numpy as np
    import pandas as pd

    with paused_gc():  # 100,000s of row tuples: collections would walk them all, again and again
        return _columns(store, store.select(columns_sql(), statuses, scheduler=scheduler, job_types=types,
                                            since=since, until=until, retries_after=retries_after), np, pd)


@contextlib.contextmanager
def paused_gc() -> Iterator[None]:
    """No cyclic garbage collection inside (building many small objects that are no garbage)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _columns(store: JobStore, rows: list[tuple[Any, ...]], np: Any, pd: Any) -> Columns:
    by_column = list(zip(*rows, strict=True)) if rows else [() for _ in _SELECTED]  # rows -> columns
    del rows
    columns: Columns = dict(zip(_SELECTED, by_column, strict=True))
    for name in _NUMBER_COLUMNS:
        columns[name] = _numbers(np, columns[name])
    # A stored attempt that is no number reads as the first, as a job read from the store has it.
    columns["attempt"] = np.where(np.isnan(columns["attempt"]), 1.0, columns["attempt"])
    # Usage arrays differ from job to job: parsed all at once (NULL: the row is read in Python).
    texts = columns.pop("usage")
    unread = [i for i, text in enumerate(texts) if text is None] if None in texts else []
    usage = _usage_matrix(np, [_NO_USAGE if text is None else text for text in texts] if unread else list(texts))
    # Progress texts repeat ("100 %, done"): each distinct one is decoded once.
    progress_codes, progress_texts = pd.factorize(np.asarray(columns.pop("progress"), dtype=object),
                                                  use_na_sentinel=True)
    found = [_progress_figures(text) for text in progress_texts] + [_progress_figures(None)]  # -1: NULL
    columns["progress_pct"] = np.array([f[0] for f in found], dtype="float64")[progress_codes]
    columns["progress_stage"] = np.array([f[1] for f in found], dtype=object)[progress_codes]
    for index in unread:
        usage[index] = _usage_in_python(store, columns["job_id"][index])
    columns.update((key, usage[:, i]) for i, key in enumerate(USAGE_KEYS))
    return columns


_NUMBER_COLUMNS = ("attempt", "array_index", "exit_code", "signal", "created_at", "submit_time", "start_time",
                   "end_time", "updated_at")


def _numbers(np: Any, values: Sequence[Any]) -> Any:
    """A float array of a number column, NaN for none; a value that is no number (a hand-edited
    row) is none too, as a job read from the store has it, instead of an error for the whole frame."""
    if isinstance(values, (list, tuple)) and values.count(None) == len(values):
        return np.full(len(values), np.nan)
    try:
        return np.array(values, dtype="float64")
    except (ValueError, TypeError, OverflowError):
        return np.array([v if isinstance(v, (int, float)) and not isinstance(v, bool) else np.nan for v in values],
                        dtype="float64")


_NO_USAGE = "[" + ",".join("null" for _ in USAGE_KEYS) + "]"
_PLAIN_NUMBERS = re.compile(r"\[(?:-?\d[\d.eE+-]*|null)(?:,(?:-?\d[\d.eE+-]*|null))*\]")


def _usage_matrix(np: Any, texts: list[str]) -> Any:
    """The usage figures of each array text as a (texts, 5) float array, NaN where unknown. Arrays
    of plain numbers and nulls (what the pollers write) are parsed by numpy in one go, since one
    ``json.loads`` per job costs ~0.5 s at 100,000; anything else (true, text, nested values) goes
    through ``json.loads`` and ``number``."""
    matrix = _plain_numbers(np, texts)
    if matrix is not None:
        return matrix
    out = np.full((len(texts), len(USAGE_KEYS)), np.nan)
    plain = [i for i, text in enumerate(texts) if _PLAIN_NUMBERS.fullmatch(text)]
    matrix = _plain_numbers(np, [texts[i] for i in plain]) if plain else None
    if matrix is not None:
        out[plain] = matrix
    done = set(plain) if matrix is not None else set()
    for i, text in enumerate(texts):
        if i not in done:
            out[i] = _usage_figures(json.loads(text))
    return out


def _plain_numbers(np: Any, texts: list[str]) -> Any | None:
    """The arrays ``texts`` as one float matrix, when they hold only numbers and nulls (else None)."""
    width = len(USAGE_KEYS)
    if not texts:
        return np.zeros((0, width))
    joined = ",".join(texts)
    if any(mark in joined for mark in ('"', "{", "t", "f", "a")):  # text, objects, true, false, nan
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # numpy only warns about text it cannot read
        try:  # parsed in C, with no Python object per number
            cells = np.fromstring(joined.replace("[", "").replace("]", "").replace("null", "nan"), dtype="float64",
                                  sep=",")
        except (DeprecationWarning, ValueError):
            return None
    if len(cells) != width * len(texts):
        return None  # nested arrays, or arrays of another length
    return cells.reshape(len(texts), width)


def number(value: Any) -> float | None:
    """A usage figure, or None when the adapter left it out or wrote something unusable."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
        return None
    return float(value)


def _usage_figures(values: list[Any]) -> tuple[float, ...]:
    """The five usage figures, NaN where ``number`` says unknown."""
    return tuple(float("nan") if (figure := number(v)) is None else figure for v in values)


def _progress_figures(text: str | None) -> tuple[float, str | None]:
    """(percent, stage) of a stored progress text as a job read from the store has them (NaN: no
    percent); an unreadable text is no progress, as ``store.rows`` reads it."""
    try:
        progress = _progress(text)
    except _CONTAINED:
        progress = Progress()
    return (float("nan") if progress.percent is None else progress.percent), progress.stage


def _usage_in_python(store: JobStore, job_id: str) -> tuple[float, ...]:
    """Usage figures of one row the SQL path could not read, by the Python rules."""
    job = store.get(job_id)
    raw_usage = job.metadata.get("usage")
    usage: dict[str, Any] = raw_usage if isinstance(raw_usage, dict) else {}
    return _usage_figures([usage.get(key) for key in USAGE_KEYS])
