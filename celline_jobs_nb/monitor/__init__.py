"""JobMonitor: the public facade (seed names kept), and the Poller that keeps the store current.

Readers (widgets, CLI, report, DataFrame) read the store. Only ``refresh`` talks to schedulers:
one batched query per scheduler per tick, at most every ``poll_interval(scheduler)`` seconds
across all processes watching the project (the store hands out poll turns). A failed poll marks
that scheduler's data stale; it never makes a job failed. Between polls, every refresh also reads
the exit-code files of running cluster jobs (no scheduler call), so an end is seen as soon as the
job's script has written its file; the next polls add what the scheduler knows of it.

The package: ``base`` (project, store, adapters), ``reads``, ``submit``, ``refresh`` (the poll,
``wait``), ``actions`` (cancel, retry, queue, attach) and ``poller``; ``JobMonitor`` is all of them."""

from __future__ import annotations

from .actions import ActionsMixin
from .base import FAST_POLL_WINDOW_SECONDS
from .poller import SETTLE_INTERVAL_SECONDS, Poller
from .reads import DISK_USAGE_META_KEY
from .refresh import RECONCILE_WINDOW_SECONDS, WAIT_LOOK_SECONDS, WAIT_REFRESH_SECONDS
from .submit import MAX_NAME_LENGTH

__all__ = ["DISK_USAGE_META_KEY", "FAST_POLL_WINDOW_SECONDS", "MAX_NAME_LENGTH", "RECONCILE_WINDOW_SECONDS",
           "SETTLE_INTERVAL_SECONDS", "WAIT_LOOK_SECONDS", "WAIT_REFRESH_SECONDS", "JobMonitor", "Poller"]


class JobMonitor(ActionsMixin):
    """Submit, track, cancel and retry the jobs of one Celline project.

    ``project_path`` is the project directory (default: the current one). ``max_parallel`` sets
    how many local jobs run at once for this project (remembered in the store, so job wrappers
    and other processes honour it too).
    """
