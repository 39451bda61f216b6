"""What `celline-jobs list` shows by default: every active job plus the most recent ended ones
(the last ``RECENT`` or those created in the last ``RECENT_HOURS`` hours, whichever is more), and how
many it leaves out. Like ``squeue``/``sacct``, a project with a million jobs in its history answers
in a few indexed reads, never by reading the whole history."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from .core.models import ACTIVE_STATUSES, FINAL_STATUSES, JobInfo, JobStatus, JobType, utcnow

if TYPE_CHECKING:
    from .store.sqlite import JobStore

RECENT = 50
RECENT_HOURS = 24
#: At most this many ended jobs even when the last 24 h hold more (a 96-sample x 1,000-task array
#: is 96,000 rows in an afternoon): the footer says how to see the rest.
RECENT_MAX = 1000


def bounded_jobs(store: JobStore, statuses: Sequence[JobStatus] | None = None, *,
                 job_types: Iterable[JobType] | None = None, scheduler: str | None = None,
                 array_parent: str | None = None, recent: int = RECENT, hours: float = RECENT_HOURS,
                 most: int = RECENT_MAX, now: datetime | None = None) -> tuple[list[JobInfo], int]:
    """The jobs the default listing shows (oldest first) and how many matching jobs it leaves out."""
    wanted = set(statuses) if statuses else set(JobStatus)
    active = sorted(wanted & ACTIVE_STATUSES, key=lambda s: s.value)
    ended = sorted(wanted & FINAL_STATUSES, key=lambda s: s.value)
    types = list(job_types) if job_types is not None else None
    shown: list[JobInfo] = []
    if active:
        shown.extend(store.list(active, job_types=types, scheduler=scheduler, array_parent=array_parent))
    if ended:
        cutoff = (now or utcnow()) - timedelta(hours=hours)
        latest = store.list(ended, job_types=types, scheduler=scheduler, array_parent=array_parent, since=cutoff,
                            limit=most, newest_first=True)
        if len(latest) < recent:
            latest = store.list(ended, job_types=types, scheduler=scheduler, array_parent=array_parent, limit=recent,
                                newest_first=True)
        shown.extend(latest)
    shown.sort(key=lambda j: j.created_at)
    total = store.count_matching(list(statuses) if statuses else None, scheduler=scheduler, job_types=types,
                                 array_parent=array_parent)
    return shown, max(0, total - len(shown))


def hidden_note(hidden: int, recent: int = RECENT, hours: float = RECENT_HOURS) -> str:
    """The footer under a bounded listing."""
    return (f"… {hidden:,} older ended job{'s' if hidden != 1 else ''} not shown (this list: active jobs, then "
            f"the last {recent} ended or those of the last {hours:g} h, whichever is more, at most {RECENT_MAX:,}). "
            "See them with --all, --since 7d or --limit N.")


def json_rows(rows: Iterable[dict[str, Any]]) -> Iterable[str]:
    """A JSON array written row by row (a long listing never builds one big string)."""
    import json

    yield "["
    first = True
    for row in rows:
        yield ("\n  " if first else ",\n  ") + json.dumps(row, default=str)
        first = False
    yield "\n]\n" if not first else "]\n"
