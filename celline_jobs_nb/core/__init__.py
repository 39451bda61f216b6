"""The model: statuses, jobs, resources, transitions, file names and errors. Standard library only.

The names below load on first use (PEP 562): ``core.errors`` alone does not load the models.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .errors import (
        CellineJobsError,
        InvalidInputError,
        JobNotFoundError,
        ParseError,
        ResourceError,
        SchedulerError,
        SettingsError,
        StoreError,
        SubmitError,
        TransitionError,
    )
    from .models import ACTIVE_STATUSES, FINAL_STATUSES, JobInfo, JobStatus, JobType, Progress, new_job_id, utcnow
    from .paths import ProjectPaths
    from .resources import Resources, parse_memory, parse_walltime
    from .transitions import can_transition

_WHERE = {
    **dict.fromkeys(("CellineJobsError", "InvalidInputError", "JobNotFoundError", "ParseError", "ResourceError",
                     "SchedulerError", "SettingsError", "StoreError", "SubmitError", "TransitionError"), "errors"),
    **dict.fromkeys(("ACTIVE_STATUSES", "FINAL_STATUSES", "JobInfo", "JobStatus", "JobType", "Progress",
                     "new_job_id", "utcnow"), "models"),
    "ProjectPaths": "paths", "Resources": "resources", "parse_memory": "resources", "parse_walltime": "resources",
    "can_transition": "transitions",
}
__all__ = [
    "ACTIVE_STATUSES", "FINAL_STATUSES", "CellineJobsError", "InvalidInputError", "JobInfo",
    "JobNotFoundError", "JobStatus", "JobType", "ParseError", "Progress", "ProjectPaths", "ResourceError",
    "Resources", "SchedulerError", "SettingsError", "StoreError", "SubmitError", "TransitionError",
    "can_transition", "new_job_id", "parse_memory", "parse_walltime", "utcnow",
]


def __getattr__(name: str) -> Any:
    where = _WHERE.get(name)
    if where is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib import import_module

    return getattr(import_module(f".{where}", __name__), name)
