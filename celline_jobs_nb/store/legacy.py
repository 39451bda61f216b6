"""The seed's ``.celline/jobs.json``: imported once into the SQLite store, and exportable again.

The seed wrote ``{job_id: {job_id, name, status, command, start_time, end_time, log_file,
working_dir, resources}}``; lists of such records and ``{"jobs": [...]}`` are accepted too. The
file is data from disk: ids that are not safe file names get an id derived from the old one (kept
in metadata), unknown statuses become ``unknown``, a record the store could not hold is skipped
with a warning (the file is kept in ``.celline/backups/``), and nothing in it is ever run.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..core.errors import CellineJobsError, InvalidInputError, ParseError
from ..core.models import JobInfo, JobStatus, JobType, to_utc, utcnow, validate_job_id
from ..core.paths import output_target, write_output
from ..core.resources import Resources
from ..core.safeio import read_bounded
from .rows import check_job
from .sqlite import JobStore

log = logging.getLogger("celline.job")

MAX_LEGACY_BYTES = 256 * 1024 * 1024
IMPORTED_META_KEY = "legacy_json_sha256"
LEGACY_SCHEDULER = "imported"  # jobs whose processes the seed tracked; we cannot follow them
_SEED_FIELDS = ("job_id", "name", "status", "command", "start_time", "end_time", "log_file", "working_dir",
                "resources")


def parse_legacy_records(text: str) -> list[dict[str, Any]]:
    """The job records in a jobs.json text. Raises ParseError when it holds no records at all; a
    record that cannot be read (nested a million levels deep, not an object) is left out and named
    in the log, and the others are kept."""
    try:
        data = json.loads(text)
    except RecursionError:
        return _records_one_by_one(text)
    except ValueError as exc:
        raise ParseError(f"jobs.json is not valid JSON: {str(exc)[:200]}") from None
    if isinstance(data, dict) and isinstance(data.get("jobs"), (list, dict)):
        data = data["jobs"]
    if isinstance(data, dict):
        entries: list[tuple[str, Any]] = [(str(key), value) for key, value in data.items()]
    elif isinstance(data, list):
        entries = [(f"#{i}", value) for i, value in enumerate(data)]
    else:
        raise ParseError("jobs.json must hold an object or a list of jobs")
    return _records(entries, keyed=isinstance(data, dict))


def _records(entries: Sequence[tuple[str, Any]], *, keyed: bool) -> list[dict[str, Any]]:
    records = []
    for name, value in entries:
        if not isinstance(value, dict):
            log.warning("jobs.json entry %r is not a job record; skipped", name[:40])
            continue
        records.append({"job_id": name, **value} if keyed else value)
    return records


# The structural tokens of JSON text; strings are matched whole so brackets inside them do not count.
_TOKEN_RE = re.compile(r'"(?:[^"\\]|\\.)*"|[{}\[\],:]')


def _records_one_by_one(text: str) -> list[dict[str, Any]]:
    """Records of a jobs.json too deep for the JSON parser as a whole: split its top-level
    container by scanning brackets, then parse each entry on its own."""
    spans = _top_level_entries(text)
    if len(spans) == 1 and spans[0][0] == "jobs":
        spans = _top_level_entries(spans[0][1])
    entries: list[tuple[str, Any]] = []
    keyed = text.lstrip().startswith("{")
    for name, value_text in spans:
        try:
            entries.append((name, json.loads(value_text)))  # values are checked record by record later
        except (RecursionError, ValueError):
            log.warning("jobs.json entry %r cannot be read (too deep or not JSON); skipped "
                        "(the file is kept in .celline/backups/)", name[:40])
    return _records(entries, keyed=keyed)


def _top_level_entries(text: str) -> list[tuple[str, str]]:
    """(key or "#index", value text) of each entry of the outermost object or list."""
    depth, key, value_start = 0, None, None
    index, entries = 0, []
    for match in _TOKEN_RE.finditer(text):
        token = match.group()
        if token in "{[":
            depth += 1
            if depth == 1:
                value_start = match.end()
            elif depth == 2 and value_start is None:
                value_start = match.start()
        elif token in "}]":
            if depth == 1 and value_start is not None and text[value_start:match.start()].strip():
                entries.append((key if key is not None else f"#{index}", text[value_start:match.start()]))
            depth -= 1
            if depth == 0:
                break
        elif depth == 1 and token == ",":
            entries.append((key if key is not None else f"#{index}", text[value_start:match.start()]))
            index, key, value_start = index + 1, None, match.end()
        elif depth == 1 and token == ":":
            key = _string(text[value_start:match.start()])
            value_start = match.end()
    return entries


def _string(text: str) -> str:
    try:
        value = json.loads(text)
    except ValueError:
        return text.strip()[:200]
    return str(value)


def record_to_job(record: dict[str, Any]) -> JobInfo:
    """One legacy record as a JobInfo; never raises for bad values, it keeps what it can."""
    metadata: dict[str, Any] = {"imported_from": "jobs.json"}
    raw_id = str(record.get("job_id", ""))[:200]
    try:
        job_id = validate_job_id(raw_id)
    except CellineJobsError:
        # Derived from the original id, so importing a changed jobs.json again finds the same job
        # instead of adding a copy of it.
        job_id = f"legacy-{_sha256(raw_id.encode('utf-8', errors='replace'))[:20]}"
        metadata["legacy_job_id"] = raw_id
    try:
        status = JobStatus.parse(str(record.get("status", "unknown")))
    except CellineJobsError:
        status = JobStatus.UNKNOWN
    reason = None
    if status.active:
        # The seed's process bookkeeping did not survive: say so instead of pretending to follow it.
        reason = f"imported from .celline/jobs.json while {status.value}; no longer tracked"
        status = JobStatus.UNKNOWN
    try:
        resources = Resources.from_dict(record.get("resources") if isinstance(record.get("resources"), dict) else {})
    except CellineJobsError:
        resources = Resources()
        metadata["legacy_resources"] = str(record.get("resources"))[:1000]
    try:
        job_type = JobType.parse(record.get("job_type"))
    except CellineJobsError:
        job_type = JobType.CUSTOM

    def time_of(key: str) -> Any:
        try:
            return to_utc(record.get(key))
        except (CellineJobsError, OverflowError, OSError, ValueError):
            return None

    exit_code = record.get("exit_code")
    start = time_of("start_time")
    return JobInfo(
        job_id=job_id,
        name=str(record.get("name") or raw_id or job_id)[:1000],
        status=status,
        command=str(record.get("command") or "")[:100_000],
        start_time=start,
        end_time=time_of("end_time"),
        log_file=str(record["log_file"])[:4096] if record.get("log_file") else None,
        working_dir=str(record["working_dir"])[:4096] if record.get("working_dir") else None,
        resources=resources,
        scheduler=LEGACY_SCHEDULER,
        job_type=job_type,
        exit_code=exit_code if isinstance(exit_code, int) and not isinstance(exit_code, bool) else None,
        reason=reason,
        created_at=time_of("created_at") or start or utcnow(),
        metadata=metadata,
    )


def import_legacy_json(store: JobStore) -> int:
    """Import ``.celline/jobs.json`` if present and not yet imported (same content). A backup is
    kept in ``.celline/backups/``. Returns how many jobs were added; a broken file is reported in
    the log and left untouched."""
    path: Path = store.paths.legacy_json
    try:
        data = read_bounded(path, MAX_LEGACY_BYTES, what="the seed's job file")
    except ParseError as exc:
        log.warning("%s not imported: %s", path, exc)
        return 0
    if data is None:
        return 0
    digest = _sha256(data)
    if store.get_meta(IMPORTED_META_KEY) == digest:
        return 0
    try:
        records = parse_legacy_records(data.decode("utf-8", errors="replace"))
    except ParseError as exc:
        log.warning("%s not imported: %s", path, exc)
        return 0
    store.paths.backups_dir.mkdir(parents=True, exist_ok=True)
    backup = store.paths.backups_dir / f"jobs.json.{utcnow().strftime('%Y%m%dT%H%M%SZ')}.{digest[:8]}"
    backup.write_bytes(data)  # what was read, not what the path holds now (it may have been swapped)
    jobs = []
    for record in records:
        job = record_to_job(record)
        try:
            check_job(job)
        except InvalidInputError as exc:
            log.warning("jobs.json record %r skipped: %s (kept in %s)", str(record.get("job_id"))[:40], exc, backup)
            continue
        jobs.append(job)
    added = store.insert_many(jobs, source="import")
    store.set_meta(IMPORTED_META_KEY, digest)
    log.info("imported %d jobs from %s", added, path)
    return added


def export_legacy_json(store: JobStore, path: Path | None = None) -> Path:
    """Write every job in the seed's shape (plus this package's extra fields) atomically."""
    target = output_target(path or store.paths.legacy_json)
    payload = {}
    for job in store.list():
        record = job.to_dict()
        payload[job.job_id] = {**{k: record[k] for k in _SEED_FIELDS}, **record}
    text = json.dumps(payload, indent=2, default=str) + "\n"
    write_output(target, lambda tmp: tmp.write_text(text, encoding="utf-8"))
    if target == store.paths.legacy_json.resolve():
        store.set_meta(IMPORTED_META_KEY, _sha256(text.encode("utf-8")))
    return target


def _sha256(data: bytes) -> str:
    import hashlib  # loads OpenSSL: only when there is a jobs.json (every monitor imports this module)

    return hashlib.sha256(data).hexdigest()
