"""Automatic retries: which failures are worth another attempt, when, and with what resources."""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, fields, replace
from typing import Any

from .errors import InvalidInputError
from .models import JobInfo, JobStatus
from .reasons import KIND_META_KEY, valid_kind
from .resources import Resources, parse_memory, parse_walltime

#: The kinds a failed job can have (core/reasons; "cancelled" and "dependency" are not failures).
FAILURE_KINDS = ("exit", "timeout", "oom", "node_fail", "signal", "lost", "preempted", "limit")
# Fallback for rows written before adapters stored a kind: scheduler words in the reason text.
_KIND_PATTERNS = (
    ("timeout", re.compile(r"TIMEOUT|TimeLimit|time limit|walltime exceeded", re.IGNORECASE)),
    ("oom", re.compile(r"OUT_OF_MEMORY|\bOOM\b|out of memory|oom-kill|memory limit", re.IGNORECASE)),
    ("node_fail", re.compile(r"NODE_FAIL|node fail|BOOT_FAIL|NodeDown|PREEMPTED", re.IGNORECASE)),
    ("lost", re.compile(r"^lost\b", re.IGNORECASE)),
)


def failure_kind(job: JobInfo) -> str | None:
    """How a failed job failed (None if not failed): the kind its adapter stored, else read from the
    reason text of older rows: timeout, oom, node_fail, lost, signal or exit."""
    if job.status is not JobStatus.FAILED:
        return None
    stored = valid_kind((job.metadata or {}).get(KIND_META_KEY))
    if stored in FAILURE_KINDS:
        return stored  # set by the adapter that saw the end: no reading back of text
    reason = job.reason or ""
    for kind, pattern in _KIND_PATTERNS:
        if pattern.search(reason):
            return kind
    if job.signal is not None:
        return "oom" if job.signal == 9 and "memory" in reason.lower() else "signal"
    return "exit"


@dataclass(frozen=True)
class RetryPolicy:
    """``max_retries`` more attempts after the first, ``backoff`` seconds before the first retry,
    multiplied by ``backoff_factor`` each time (capped at ``max_backoff``), with +-``jitter``
    so a batch of failures does not come back at the same second. After an out-of-memory failure
    memory is multiplied by ``memory_factor``, after a timeout walltime by ``walltime_factor``,
    both capped."""

    max_retries: int = 0
    backoff: float = 30.0
    backoff_factor: float = 2.0
    max_backoff: float = 3600.0
    jitter: float = 0.25
    retry_on: tuple[str, ...] = ("exit", "timeout", "oom", "node_fail", "lost")
    exit_codes: tuple[int, ...] | None = None  # None: any non-zero exit code
    memory_factor: float = 2.0
    walltime_factor: float = 1.5
    max_memory: int | None = None
    max_walltime: int | None = None

    def __post_init__(self) -> None:
        retries = self.max_retries
        if not isinstance(retries, int) or isinstance(retries, bool) or not 0 <= retries <= 100:
            raise InvalidInputError(f"invalid max_retries {self.max_retries!r}: use a whole number from 0 to 100")
        if self.backoff < 0 or self.backoff_factor < 1 or not 0 <= self.jitter < 1:
            raise InvalidInputError("invalid retry backoff: backoff >= 0, backoff_factor >= 1, 0 <= jitter < 1")
        unknown = set(self.retry_on) - set(FAILURE_KINDS)
        if unknown:
            raise InvalidInputError(
                f"unknown failure kind {sorted(unknown)[0]!r} in retry_on: use {', '.join(FAILURE_KINDS)}")
        if self.memory_factor < 1 or self.walltime_factor < 1:
            raise InvalidInputError("memory_factor and walltime_factor must be >= 1")

    @classmethod
    def parse(cls, value: RetryPolicy | dict[str, Any] | int | None) -> RetryPolicy | None:
        """From a policy, a dict (settings/metadata form) or a plain number of retries."""
        if value is None or isinstance(value, RetryPolicy):
            return value
        if isinstance(value, int) and not isinstance(value, bool):
            return cls(max_retries=value)
        if not isinstance(value, dict):
            raise InvalidInputError(f"invalid retry policy {value!r}: give a number of retries or a table")
        data = dict(value)
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise InvalidInputError(f"unknown retry setting {sorted(unknown)[0]!r}: use {', '.join(sorted(known))}")
        if "retry_on" in data:
            data["retry_on"] = tuple(data["retry_on"])
        if data.get("exit_codes") is not None:
            data["exit_codes"] = tuple(int(c) for c in data["exit_codes"])
        # Numbers are bytes and seconds (the stored form); text is parsed like user input ("64G", "2h").
        if isinstance(data.get("max_memory"), str):
            data["max_memory"] = parse_memory(data["max_memory"])
        if isinstance(data.get("max_walltime"), str):
            data["max_walltime"] = parse_walltime(data["max_walltime"])
        return cls(**data)

    def to_dict(self) -> dict[str, Any]:
        return {
            "max_retries": self.max_retries, "backoff": self.backoff, "backoff_factor": self.backoff_factor,
            "max_backoff": self.max_backoff, "jitter": self.jitter, "retry_on": list(self.retry_on),
            "exit_codes": list(self.exit_codes) if self.exit_codes is not None else None,
            "memory_factor": self.memory_factor, "walltime_factor": self.walltime_factor,
            "max_memory": self.max_memory, "max_walltime": self.max_walltime,
        }

    def should_retry(self, job: JobInfo) -> bool:
        """Whether this failed attempt gets another one (attempts count from 1)."""
        kind = failure_kind(job)
        if kind is None or job.attempt > self.max_retries or kind not in self.retry_on:
            return False
        if kind == "exit" and self.exit_codes is not None:
            return job.exit_code in self.exit_codes
        return True

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        """Seconds to wait before attempt ``attempt + 1``."""
        base = min(self.max_backoff, self.backoff * self.backoff_factor ** max(0, attempt - 1))
        spread = (rng or random).uniform(-self.jitter, self.jitter)
        return max(0.0, base * (1 + spread))

    def next_resources(self, job: JobInfo) -> Resources:
        kind = failure_kind(job)
        if kind == "oom":
            return job.resources.scaled(memory_factor=self.memory_factor, max_memory=self.max_memory)
        if kind == "timeout":
            return job.resources.scaled(walltime_factor=self.walltime_factor, max_walltime=self.max_walltime)
        return replace(job.resources)
