"""celline_jobs_nb: the job monitor for Celline projects (notebook dashboard, CLI, history).

``JobMonitor`` is the API; ``Job`` is the Celline function that shows the live dashboard
(``project.call(Job())``). Every name here loads on first use (PEP 562): the CLI, job wrappers
(started thousands of times) and ``python -c "import celline_jobs_nb.X"`` pay only for what they use,
and widgets and pandas load only when used.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing itself costs a command ~4 ms of start-up
if TYPE_CHECKING:
    from typing import Any

    from .celline import Job, Project
    from .core.errors import CellineJobsError
    from .core.models import JobInfo, JobStatus, JobType, Progress
    from .core.resources import Resources
    from .monitor import JobMonitor, Poller

__version__ = "0.1.0"
__all__ = ["CellineJobsError", "Job", "JobInfo", "JobMonitor", "JobStatus", "JobType", "Poller", "Progress",
           "Project", "Resources", "__version__"]

# Where each public name lives; Job/Project bring the widget stack (anywidget), which the CLI never needs.
_WHERE = {
    "CellineJobsError": "core.errors", "JobInfo": "core.models", "JobStatus": "core.models",
    "JobType": "core.models", "Progress": "core.models", "Resources": "core.resources",
    "JobMonitor": "monitor", "Poller": "monitor", "Job": "celline", "Project": "celline",
}


def __getattr__(name: str) -> Any:
    where = _WHERE.get(name)
    if where is None:
        raise AttributeError(f"module 'celline_jobs_nb' has no attribute {name!r}")
    from importlib import import_module

    value = getattr(import_module(f".{where}", __name__), name)
    globals()[name] = value  # the next lookup is a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
