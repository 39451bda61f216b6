"""The model: statuses, jobs, resources, transitions, file names and errors. Standard library only."""

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

__all__ = [
    "ACTIVE_STATUSES", "FINAL_STATUSES", "CellineJobsError", "InvalidInputError", "JobInfo",
    "JobNotFoundError", "JobStatus", "JobType", "ParseError", "Progress", "ProjectPaths", "ResourceError",
    "Resources", "SchedulerError", "SettingsError", "StoreError", "SubmitError", "TransitionError",
    "can_transition", "new_job_id", "parse_memory", "parse_walltime", "utcnow",
]
