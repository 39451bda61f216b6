"""The job model: statuses, types, progress and the JobInfo record (seed names and values kept)."""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime, timezone
from enum import Enum
from typing import Any

from .errors import InvalidInputError
from .resources import Resources


class JobStatus(str, Enum):
    """Where a job is in its life. The first five values are the seed's and never change.

    ``order`` says how far along a status is: a job only ever moves to a higher order
    (see ``core.transitions``). ``final`` statuses never change again.
    """

    PENDING = "pending"  # known to us, not yet accepted by a scheduler (waits for a slot or a parent)
    QUEUED = "queued"  # accepted by the scheduler, waiting to start
    HELD = "held"  # accepted, but held (user/admin hold) until released
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    UNKNOWN = "unknown"  # the scheduler reports a state we do not know, or lost the job without evidence

    @property
    def order(self) -> int:
        return _ORDER[self]

    @property
    def final(self) -> bool:
        return self in FINAL_STATUSES

    @property
    def active(self) -> bool:
        return not self.final

    @classmethod
    def parse(cls, value: str | JobStatus) -> JobStatus:
        """The status named by ``value`` (case-insensitive), or a clear error listing the valid names."""
        if isinstance(value, JobStatus):
            return value
        try:
            return cls(str(value).strip().lower())
        except ValueError:
            valid = ", ".join(s.value for s in cls)
            raise InvalidInputError(f"unknown status {value!r}: use one of {valid}") from None


_ORDER: dict[JobStatus, int] = {
    JobStatus.PENDING: 0,
    JobStatus.QUEUED: 1,
    JobStatus.HELD: 1,
    JobStatus.UNKNOWN: 1,
    JobStatus.RUNNING: 2,
    JobStatus.COMPLETED: 3,
    JobStatus.FAILED: 3,
    JobStatus.CANCELLED: 3,
}
FINAL_STATUSES = frozenset({JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED})
ACTIVE_STATUSES = frozenset(s for s in JobStatus if s not in FINAL_STATUSES)


class JobType(str, Enum):
    """Celline's kinds of work; the seed's job types are first-class (filter, colour, analytics)."""

    COUNT = "Count"
    PREPROCESS = "Preprocess"
    PREDICTION = "Prediction"
    INTEGRATION = "Integration"
    BATCH_CORRECTION = "Batch Correction"
    CUSTOM = "Custom"

    @classmethod
    def parse(cls, value: str | JobType | None) -> JobType:
        if value is None or value == "":
            return cls.CUSTOM
        if isinstance(value, JobType):
            return value
        key = re.sub(r"[\s_-]+", "", str(value)).lower()
        for member in cls:
            if key in (member.name.replace("_", "").lower(), member.value.replace(" ", "").lower()):
                return member
        if key in ("customscript", "customscripts", "script"):
            return cls.CUSTOM
        valid = ", ".join(repr(m.value) for m in cls)
        raise InvalidInputError(f"unknown job type {value!r}: use one of {valid}")


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def to_utc(value: datetime | str | float | int | None) -> datetime | None:
    """A timezone-aware UTC datetime from an ISO string, epoch seconds or a datetime (naive = UTC)."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        dt = value
    elif isinstance(value, (int, float)):
        dt = datetime.fromtimestamp(float(value), timezone.utc)
    else:
        text = str(value).strip()
        if text.endswith("Z"):
            text = text[:-1] + "+00:00"
        try:
            dt = datetime.fromisoformat(text)
        except ValueError:
            try:
                dt = datetime.fromtimestamp(float(text), timezone.utc)
            except ValueError:
                raise InvalidInputError(f"not a time: {value!r} (use ISO 8601 or epoch seconds)") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.astimezone(timezone.utc)


# Job ids: Crockford base32 of the creation time in ms (sortable), then random characters
# (unique across processes). Lower-case letters and digits only: safe as a file name.
_B32 = "0123456789abcdefghjkmnpqrstvwxyz"
_JOB_ID_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$", re.IGNORECASE)
_id_lock = threading.Lock()
_last_id_ms = 0


def _b32(number: int, width: int) -> str:
    chars = []
    for _ in range(width):
        number, rem = divmod(number, 32)
        chars.append(_B32[rem])
    return "".join(reversed(chars))


def new_job_id() -> str:
    """A 13-character id: 9 characters of millisecond time (sortable by creation) + 4 random."""
    global _last_id_ms
    with _id_lock:
        ms = max(int(time.time() * 1000), _last_id_ms + 1)  # strictly increasing within a process
        _last_id_ms = ms
    return _b32(ms, 9) + _b32(int.from_bytes(os.urandom(3), "big") & 0xFFFFF, 4)


#: A name a POSIX shell can assign (``export NAME=...``), the only kind a job's environment may hold.
ENV_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}", re.ASCII)
MAX_ENV_VALUE = 128 * 1024


def validate_env(env: Mapping[str, Any]) -> dict[str, str]:
    """A job's extra environment, checked at submit: a name like ``A=B`` or a NUL byte would make
    the job's wrapper die before the command runs, with nothing in its log to say why."""
    checked = {}
    for key, value in env.items():
        name, text = str(key), str(value)
        if not ENV_NAME_RE.fullmatch(name):
            raise InvalidInputError(f"invalid environment variable name {name[:60]!r}: use letters, digits and _, "
                                    "not starting with a digit")
        if "\0" in text or len(text) > MAX_ENV_VALUE:
            raise InvalidInputError(f"invalid value for environment variable {name}: no NUL bytes, "
                                    f"at most {MAX_ENV_VALUE} characters")
        checked[name] = text
    return checked


def validate_job_id(job_id: str) -> str:
    """``job_id`` if it is safe as a file name (no path parts, no ``..``), else a clear error."""
    text = str(job_id)
    if not _JOB_ID_RE.fullmatch(text) or ".." in text:  # fullmatch: "$" would let "id\n" through
        raise InvalidInputError(
            f"invalid job id {job_id!r}: ids are letters, digits, '_', '-' and '.', at most 64 characters"
        )
    return text


@dataclass
class Progress:
    """What a job said about how far it is (``logs/<job_id>_progress.json`` or a tqdm line)."""

    percent: float | None = None
    stage: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    updated_at: datetime | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "percent": self.percent,
            "stage": self.stage,
            "details": dict(self.details),
            "updated_at": self.updated_at.isoformat() if self.updated_at else None,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> Progress:
        if not data or not isinstance(data, dict):
            return cls()
        percent = data.get("percent", data.get("progress"))
        details = data.get("details")
        return cls(
            percent=float(percent) if isinstance(percent, (int, float)) and not isinstance(percent, bool) else None,
            stage=str(data["stage"]) if data.get("stage") is not None else None,
            details=dict(details) if isinstance(details, dict) else {},
            updated_at=to_utc(data.get("updated_at") or data.get("timestamp")),
        )


_TIME_FIELDS = ("start_time", "end_time", "submit_time", "created_at")


@dataclass
class JobInfo:
    """One job. The first nine fields are the seed's; the rest is what a real monitor needs."""

    job_id: str
    name: str
    status: JobStatus = JobStatus.PENDING
    command: str = ""
    start_time: datetime | None = None
    end_time: datetime | None = None
    log_file: str | None = None
    working_dir: str | None = None
    resources: Resources = field(default_factory=Resources)
    scheduler: str = "local"
    native_id: str | None = None  # the scheduler's own id (pid for local, SLURM job id, ...)
    job_type: JobType = JobType.CUSTOM
    submit_time: datetime | None = None
    exit_code: int | None = None
    signal: int | None = None
    reason: str | None = None  # pending reason, or why it failed / was cancelled
    attempt: int = 1
    retry_of: str | None = None
    depends_on: list[str] = field(default_factory=list)
    dependency_kind: str = "afterok"
    array_parent: str | None = None
    array_index: int | None = None
    progress: Progress = field(default_factory=Progress)
    created_at: datetime = field(default_factory=utcnow)
    updated_at: datetime | None = None
    metadata: dict[str, Any] = field(default_factory=dict)  # adapter-owned facts (pid start time, script)

    @property
    def is_final(self) -> bool:
        return self.status.final

    @property
    def runtime_seconds(self) -> float | None:
        """Seconds between start and end (or now, while running)."""
        if self.start_time is None:
            return None
        end = self.end_time or (utcnow() if self.status is JobStatus.RUNNING else None)
        return None if end is None else max(0.0, (end - self.start_time).total_seconds())

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict: enums as values, times as ISO 8601 UTC."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, Enum):
                value = value.value
            elif isinstance(value, datetime):
                value = value.isoformat()
            elif isinstance(value, (Resources, Progress)):
                value = value.to_dict()
            elif isinstance(value, (list, dict)):
                value = asdict_safe(value)
            out[f.name] = value
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> JobInfo:
        known = {f.name for f in fields(cls)}
        kwargs: dict[str, Any] = {k: v for k, v in data.items() if k in known}
        kwargs["job_id"] = validate_job_id(kwargs["job_id"])
        kwargs["status"] = JobStatus.parse(kwargs.get("status", "pending"))
        kwargs["job_type"] = JobType.parse(kwargs.get("job_type"))
        kwargs["resources"] = Resources.from_dict(kwargs.get("resources"))
        kwargs["progress"] = Progress.from_dict(kwargs.get("progress"))
        for name in (*_TIME_FIELDS, "updated_at"):
            if name in kwargs:
                kwargs[name] = to_utc(kwargs[name])
        if kwargs.get("created_at") is None:
            kwargs.pop("created_at", None)
        kwargs["depends_on"] = [str(d) for d in kwargs.get("depends_on") or []]
        kwargs["metadata"] = dict(kwargs.get("metadata") or {})
        return cls(**kwargs)


def asdict_safe(value: Any) -> Any:
    """Containers copied so callers cannot mutate a record through its dict form."""
    if isinstance(value, dict):
        return {str(k): asdict_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [asdict_safe(v) for v in value]
    if hasattr(value, "__dataclass_fields__"):
        return asdict(value)
    return value
