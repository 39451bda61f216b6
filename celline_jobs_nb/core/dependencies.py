"""Whether a job's dependencies allow it to start, given its parents' statuses."""

from __future__ import annotations

from collections.abc import Iterable
from enum import Enum

from .errors import InvalidInputError
from .models import JobStatus

DEPENDENCY_KINDS = ("afterok", "afterany", "afternotok")


class Verdict(str, Enum):
    READY = "ready"
    WAIT = "wait"
    NEVER = "never"  # a parent ended in a way that can never satisfy the dependency


def check_kind(kind: str) -> str:
    if kind not in DEPENDENCY_KINDS:
        raise InvalidInputError(f"unknown dependency kind {kind!r}: use one of {', '.join(DEPENDENCY_KINDS)}")
    return kind


def dependency_verdict(kind: str, parents: Iterable[JobStatus | None]) -> Verdict:
    """``None`` stands for a parent that is not in the store (deleted): it can never be satisfied."""
    verdict = Verdict.READY
    for status in parents:
        if status is None:
            return Verdict.NEVER
        if not status.final:
            verdict = Verdict.WAIT
            continue
        ok = status is JobStatus.COMPLETED
        if (kind == "afterok" and not ok) or (kind == "afternotok" and ok):
            return Verdict.NEVER
    return verdict
