"""celline_jobs_nb: the job monitor for Celline projects (notebook dashboard, CLI, history).

``JobMonitor`` is the API; ``Job`` is the Celline function that shows the live dashboard
(``project.call(Job())``). Widgets and pandas load only when used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .core.errors import CellineJobsError
from .core.models import JobInfo, JobStatus, JobType, Progress
from .core.resources import Resources

if TYPE_CHECKING:
    from .celline import Job, Project
    from .monitor import JobMonitor, Poller

__version__ = "0.1.0"
__all__ = ["CellineJobsError", "Job", "JobInfo", "JobMonitor", "JobStatus", "JobType", "Poller", "Progress",
           "Project", "Resources", "__version__"]


def __getattr__(name: str) -> Any:
    # Imported on first use: job wrappers start (thousands of times) without the monitor's imports,
    # and Job/Project bring the widget stack (anywidget), which the CLI never needs.
    if name in ("JobMonitor", "Poller"):
        from . import monitor

        return getattr(monitor, name)
    if name in ("Job", "Project"):
        from . import celline

        return getattr(celline, name)
    raise AttributeError(f"module 'celline_jobs_nb' has no attribute {name!r}")
