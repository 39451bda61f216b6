"""The one place that decides whether a job may move from one status to another.

States move forward only (by ``JobStatus.order``); final states never change. A late or stale
poll can therefore never turn a completed job back into running. Two exceptions keep real
schedulers representable: queued <-> held (hold and release) and anything active <-> unknown
(the scheduler lost track of the job, then found it again).
"""

from __future__ import annotations

from .models import JobStatus

_SIDEWAYS = {
    (JobStatus.QUEUED, JobStatus.HELD),
    (JobStatus.HELD, JobStatus.QUEUED),
}


def can_transition(old: JobStatus, new: JobStatus) -> bool:
    if old is new:
        return True
    if old.final:
        return False
    if new is JobStatus.UNKNOWN:
        return True
    if old is JobStatus.UNKNOWN:
        return new is not JobStatus.PENDING  # found again: whatever the scheduler now says
    if (old, new) in _SIDEWAYS:
        return True
    return new.order > old.order
