"""The seed's ``.celline/jobs.json``: imported once into the SQLite store, and exportable again.

The seed wrote ``{job_id: {job_id, name, status, command, start_time, end_time, log_file,
working_dir, resources}}``; lists of such records and ``{"jobs": [...]}`` are accepted too. The
file is data from disk: ids that are not safe file names get a new id (the old one is kept in
metadata), unknown statuses become ``unknown``, and nothing in it is ever run.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path
from typing import Any

from ..core.errors import CellineJobsError, ParseError
from ..core.models import JobInfo, JobStatus, JobType, new_job_id, to_utc, utcnow, validate_job_id
from ..core.paths import atomic_write_text
from ..core.resources import Resources
from .sqlite import JobStore

log = logging.getLogger("celline.job")

MAX_LEGACY_BYTES = 256 * 1024 * 1024
IMPORTED_META_KEY = "legacy_json_sha256"
LEGACY_SCHEDULER = "imported"  # jobs whose processes the seed tracked; we cannot follow them
_SEED_FIELDS = ("job_id", "name", "status", "command", "start_time", "end_time", "log_file", "working_dir",
                "resources")


def parse_legacy_records(text: str) -> list[dict[str, Any]]:
    """The job records in a jobs.json text. Raises ParseError for anything else."""
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ParseError(f"jobs.json is not valid JSON: {exc}") from None
    if isinstance(data, dict) and isinstance(data.get("jobs"), (list, dict)):
        data = data["jobs"]
    if isinstance(data, dict):
        records = []
        for key, value in data.items():
            if not isinstance(value, dict):
                raise ParseError(f"jobs.json entry {str(key)[:40]!r} is not an object")
            records.append({"job_id": key, **value})
        return records
    if isinstance(data, list):
        if not all(isinstance(item, dict) for item in data):
            raise ParseError("jobs.json list must hold objects")
        return list(data)
    raise ParseError("jobs.json must hold an object or a list of jobs")


def record_to_job(record: dict[str, Any]) -> JobInfo:
    """One legacy record as a JobInfo; never raises for bad values, it keeps what it can."""
    metadata: dict[str, Any] = {"imported_from": "jobs.json"}
    raw_id = str(record.get("job_id", ""))[:200]
    try:
        job_id = validate_job_id(raw_id)
    except CellineJobsError:
        job_id = new_job_id()
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
        if not path.is_file():
            return 0
        if path.stat().st_size > MAX_LEGACY_BYTES:
            log.warning("%s is larger than %d bytes; not imported", path, MAX_LEGACY_BYTES)
            return 0
        data = path.read_bytes()
    except OSError as exc:
        log.warning("cannot read %s: %s", path, exc)
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
    shutil.copy2(path, store.paths.backups_dir / f"jobs.json.{utcnow().strftime('%Y%m%dT%H%M%SZ')}.{digest[:8]}")
    added = store.insert_many((record_to_job(r) for r in records), source="import")
    store.set_meta(IMPORTED_META_KEY, digest)
    log.info("imported %d jobs from %s", added, path)
    return added


def export_legacy_json(store: JobStore, path: Path | None = None) -> Path:
    """Write every job in the seed's shape (plus this package's extra fields) atomically."""
    target = path or store.paths.legacy_json
    payload = {}
    for job in store.list():
        record = job.to_dict()
        payload[job.job_id] = {**{k: record[k] for k in _SEED_FIELDS}, **record}
    atomic_write_text(Path(target), json.dumps(payload, indent=2, default=str) + "\n")
    if Path(target).resolve() == store.paths.legacy_json.resolve():
        store.set_meta(IMPORTED_META_KEY, _sha256(Path(target).read_bytes()))
    return Path(target)


def _sha256(data: bytes) -> str:
    import hashlib  # loads OpenSSL: only when there is a jobs.json (every monitor imports this module)

    return hashlib.sha256(data).hexdigest()
