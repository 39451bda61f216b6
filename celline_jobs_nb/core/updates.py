"""The one shape in which adapters, the poller and the monitor describe a change to a job."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .models import JobStatus


@dataclass
class JobUpdate:
    """A change to one job: a new status (checked against the transition rules) and/or fields.

    ``metadata`` is merged into the job's metadata, not replaced.
    """

    job_id: str
    status: JobStatus | None = None
    fields: dict[str, Any] = field(default_factory=dict)
    source: str = "poll"
