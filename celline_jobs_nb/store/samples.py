"""An ended job's usage samples, out of its row.

While a local job runs, its poller keeps the last 60 ``[time, cpu %, rss bytes]`` points in
``metadata["usage"]["samples"]`` (the dashboard's sparklines): ~2 kB of JSON, most of a row, that
every listing and every history read would carry for the rest of the project's life. When the job
ends, the store moves them to ``job_samples`` (zlib of compact JSON, a few hundred bytes) in the
same transaction; reading one job (``JobStore.get``, what the detail panel shows) puts them back.
Nothing is dropped: a job read alone looks as it did before it ended.
"""

from __future__ import annotations

import json
import sqlite3
import zlib
from collections.abc import Sequence
from typing import Any

from ..core.errors import CellineJobsError
from ..core.models import FINAL_STATUSES
from .rows import _progress, encode, metadata_of

#: The most a stored blob may expand to (60 points are ~2 kB; a hand-edited row is not trusted).
MAX_TEXT = 1 << 20
_MARK = '"samples"'  # a metadata text without it has no samples: no JSON decode needed


def has_samples(metadata_text: str | None) -> bool:
    return bool(metadata_text) and _MARK in metadata_text  # type: ignore[operator]


def split(metadata: dict[str, Any]) -> tuple[dict[str, Any], list[Any] | None]:
    """(metadata without the samples, the samples) ; the dict given is not changed."""
    usage = metadata.get("usage")
    if not isinstance(usage, dict) or "samples" not in usage:
        return metadata, None
    samples = usage["samples"]
    rest = {key: value for key, value in usage.items() if key != "samples"}
    return {**metadata, "usage": rest}, samples if isinstance(samples, list) else None


def pack(samples: list[Any]) -> bytes:
    return zlib.compress(json.dumps(samples, separators=(",", ":"), default=str).encode(), 6)


def unpack(data: bytes) -> list[Any] | None:
    """The samples of a stored blob; None when it cannot be read (bounded, never raises)."""
    try:
        inflater = zlib.decompressobj()
        text = inflater.decompress(bytes(data), MAX_TEXT)
        if inflater.unconsumed_tail:
            return None
        value = json.loads(text)
    except (zlib.error, ValueError, TypeError, RecursionError):
        return None
    return value if isinstance(value, list) else None


def store(conn: sqlite3.Connection, job_id: str, samples: list[Any] | None) -> None:
    if samples:
        conn.execute("INSERT OR REPLACE INTO job_samples (job_id, data) VALUES (?, ?)", (job_id, pack(samples)))


def attach(conn: sqlite3.Connection, jobs: Sequence[Any]) -> None:
    """Put the moved samples back into ``metadata["usage"]`` of the ended jobs among ``jobs``."""
    ended = {job.job_id: job for job in jobs if job.status.final}
    if not ended:
        return
    ids = list(ended)
    for start in range(0, len(ids), 500):
        chunk = ids[start:start + 500]
        marks = ", ".join("?" for _ in chunk)
        for job_id, data in conn.execute(f"SELECT job_id, data FROM job_samples WHERE job_id IN ({marks})", chunk):
            samples = unpack(data)
            job = ended.get(job_id)
            if samples is None or job is None:
                continue
            usage = job.metadata.get("usage")
            if isinstance(usage, dict) and "samples" not in usage:
                usage["samples"] = samples


def compact_rows(conn: sqlite3.Connection, after_seq: int, batch: int) -> int | None:
    """Move the samples of ended rows with seq in (after_seq, after_seq + batch] out of their rows
    (rows written before schema 6). Returns the last seq looked at, None when past the end."""
    high = after_seq + batch
    before = conn.execute("SELECT value FROM meta WHERE key = 'samples_before'").fetchone()
    last = int(before[0]) if before else conn.execute("SELECT MAX(seq) FROM jobs").fetchone()[0]
    if last is None or after_seq >= last:
        return None
    finals = sorted(s.value for s in FINAL_STATUSES)
    marks = ", ".join("?" for _ in finals)
    rows = conn.execute(
        f"SELECT job_id, metadata FROM jobs WHERE seq > ? AND seq <= ? AND status IN ({marks}) "
        "AND instr(metadata, ?) > 0", (after_seq, high, *finals, _MARK)).fetchall()
    for job_id, text in rows:
        try:
            metadata = json.loads(text)
        except ValueError:
            continue  # unreadable: left as it is (the row's reader names the problem)
        if not isinstance(metadata, dict):
            continue
        rest, samples = split(metadata)
        if samples is None:
            continue
        store(conn, job_id, samples)
        conn.execute("UPDATE jobs SET metadata = ? WHERE job_id = ?", (encode("metadata", rest), job_id))
    return high


def pack_usage_rows(conn: sqlite3.Connection, after_seq: int, batch: int) -> int | None:
    """Store the usage records (schema 8) and the progress (schema 9) of rows with seq in
    (after_seq, after_seq + batch] written before as ``rows.encode`` writes them now (the usage
    figures as one array, a percent and stage as a pair): the same values, ~90 bytes less per job.
    Returns the last seq looked at, None when past the end."""
    high = after_seq + batch
    before = conn.execute("SELECT value FROM meta WHERE key = 'usage_before'").fetchone()
    last = int(before[0]) if before else conn.execute("SELECT MAX(seq) FROM jobs").fetchone()[0]
    if last is None or after_seq >= last:
        return None
    rows = conn.execute("SELECT job_id, metadata, progress FROM jobs WHERE seq > ? AND seq <= ? "
                        "AND (instr(metadata, ?) > 0 OR (progress LIKE '{%' AND progress != '{}'))",
                        (after_seq, min(high, last), '"max_rss_bytes"')).fetchall()
    for job_id, metadata, progress in rows:
        for column, text in (("metadata", metadata), ("progress", progress)):
            try:
                packed = encode(column, metadata_of(text) if column == "metadata" else _progress(text))
            except (ValueError, TypeError, RecursionError, CellineJobsError):
                continue  # unreadable: left as it is (the row's reader names the problem)
            if packed != text:
                conn.execute(f"UPDATE jobs SET {column} = ? WHERE job_id = ?", (packed, job_id))
    return high
