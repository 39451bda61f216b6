"""The adapter protocol every scheduler implements, and the one way adapters run commands.

An adapter is small: command builders, pure parse functions over the command's text output, and
a state map from the scheduler's states to ``JobStatus``. It never writes the store itself: it
returns ``JobUpdate``s and the monitor applies them (through the one transition check).

Politeness rules every adapter follows:
- ``poll`` makes ONE batched status query for all the jobs it is given (plus, at most, one more
  to resolve jobs that just left the queue); ``settle`` makes none;
- every command has a timeout; a failure raises ``SchedulerError``, which the monitor records
  as "stale" and never turns into a failed job;
- ``min_poll_interval`` is a floor the monitor never goes below.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import threading
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from ..core import reasons
from ..core.errors import SchedulerError
from ..core.models import JobInfo, JobStatus
from ..core.paths import ProjectPaths
from ..core.updates import JobUpdate

if TYPE_CHECKING:
    from ..store.sqlite import JobStore

log = logging.getLogger("celline.job")

DEFAULT_COMMAND_TIMEOUT = 30.0
COMMAND_TIMEOUT_ENV = "CELLINE_JOBS_COMMAND_TIMEOUT"  # seconds; for clusters whose controller is slow


def command_timeout() -> float:
    value = os.environ.get(COMMAND_TIMEOUT_ENV, "")
    try:
        return float(value) if float(value) > 0 else DEFAULT_COMMAND_TIMEOUT
    except ValueError:
        return DEFAULT_COMMAND_TIMEOUT


@dataclass
class SchedulerContext:
    """What an adapter may use: the project's files, the store (read-only by convention, except for
    the local executor's slot claims) and its settings table."""

    paths: ProjectPaths
    store: JobStore
    settings: Mapping[str, Any] = field(default_factory=dict)


@dataclass
class PollResult:
    updates: list[JobUpdate] = field(default_factory=list)
    calls: int = 0  # scheduler commands this poll ran


@dataclass(frozen=True)
class QueueEntry:
    """A job in the scheduler's queue that we may not have submitted (``celline-jobs queue``)."""

    native_id: str
    name: str
    state: str
    user: str | None = None
    reason: str | None = None
    tracked_job_id: str | None = None


def array_outcome(total: int, failed_codes: Sequence[int | None], cancelled: int, *, cancel_requested: bool,
                  unknown_code: int | None = None) -> tuple[JobStatus, dict[str, Any]]:
    """How an array ends once all ``total`` of its tasks have (every scheduler, the local executor
    too): failed when any task failed (``failed_codes``: theirs; the first non-zero one is the
    array's, else ``unknown_code``), else cancelled when any was (by the user when the array's
    cancel was asked for), else completed. Returns the status and the fields it sets."""
    if failed_codes:
        return JobStatus.FAILED, {"exit_code": next((code for code in failed_codes if code), unknown_code),
                                  "reason": f"{len(failed_codes)} of {total} array tasks failed"}
    if cancelled:
        by_user = f" ({reasons.CANCELLED_BY_USER})" if cancel_requested else ""
        return JobStatus.CANCELLED, {"reason": f"{cancelled} of {total} array tasks cancelled{by_user}"}
    return JobStatus.COMPLETED, {"exit_code": 0, "reason": None}


_found: dict[tuple[str, str | None], str] = {}


def _which(program: str, path: str | None) -> str | None:
    """shutil.which, remembered per PATH value once found (it scans every PATH directory per call);
    a missing program is looked for again next time, so installing it needs no restart."""
    key = (program, path)
    if key not in _found:
        found = shutil.which(program, path=path)
        if found is None:
            return None
        _found[key] = found
    return _found[key]


class CommandRunner:
    """Runs scheduler commands with a timeout and counts them (a metric benchmarks and the widget read)."""

    def __init__(self, timeout: float | None = None, env: Mapping[str, str] | None = None) -> None:
        self.timeout = timeout if timeout is not None else command_timeout()
        self.env = dict(env) if env is not None else None
        self.calls = 0
        self._lock = threading.Lock()

    def run(self, args: Sequence[str], *, input_text: str | None = None, timeout: float | None = None,
            check: bool = True) -> subprocess.CompletedProcess[str]:
        program = args[0]
        if _which(program, (self.env or os.environ).get("PATH")) is None:
            raise SchedulerError(f"`{program}` is not on PATH: is the scheduler's client installed here?")
        with self._lock:
            self.calls += 1
        try:
            result = subprocess.run(
                list(args), input=input_text, capture_output=True, text=True, errors="replace",
                timeout=timeout or self.timeout, env=self.env,
                stdin=None if input_text is not None else subprocess.DEVNULL,
            )
        except subprocess.TimeoutExpired:
            raise SchedulerError(f"`{program}` did not answer within {timeout or self.timeout:.0f} s") from None
        except OSError as exc:
            raise SchedulerError(f"`{program}` could not be run: {exc}") from None
        if check and result.returncode != 0:
            detail = (result.stderr or result.stdout).strip().splitlines()
            raise SchedulerError(
                f"`{' '.join(args[:2])}` exited {result.returncode}: {detail[-1] if detail else 'no output'}"
            )
        return result


class SchedulerAdapter(ABC):
    """One scheduler. Instances are made per monitor by the registry with a SchedulerContext."""

    name: ClassVar[str]
    #: The monitor never polls this scheduler more often than this (seconds).
    min_poll_interval: ClassVar[float] = 1.0
    #: The interval the monitor uses when the user does not choose one.
    default_poll_interval: ClassVar[float] = 2.0
    #: Faster polls right after a submit, backing off to the default (cluster adapters).
    fast_poll_interval: ClassVar[float | None] = None
    # Capability flags: what the monitor may expect of this adapter (instead of checking names).
    #: Holds its own pending jobs and starts them when a slot frees (``dispatch``): the monitor
    #: polls its PENDING jobs too and calls ``dispatch`` after submits and ends (local executor).
    queues_itself: ClassVar[bool] = False
    #: Its jobs' ends are written into the store by another process (the local runner): the
    #: monitor reads their final progress while such jobs run or just ran.
    records_own_ends: ClassVar[bool] = False
    #: ``settle`` reads exit-code files between polls, with no scheduler call (batch schedulers):
    #: the poller wakes at least every SETTLE_INTERVAL_SECONDS for them.
    settles_from_files: ClassVar[bool] = False
    #: Reports runs another tool started (celline's own scripts): a retry runs the job's script
    #: again on a scheduler of ours instead of resubmitting through this adapter.
    foreign_runs: ClassVar[bool] = False

    def __init__(self, context: SchedulerContext) -> None:
        self.context = context
        self.runner = CommandRunner()

    @property
    def calls(self) -> int:
        return self.runner.calls

    @abstractmethod
    def submit(self, job: JobInfo) -> JobUpdate:
        """Hand one stored pending job to the scheduler; the update says its new status and native id.
        Raises SubmitError when the scheduler refuses it."""

    @abstractmethod
    def poll(self, jobs: Sequence[JobInfo]) -> PollResult:
        """The current state of ``jobs`` (all active, all of this scheduler) in one batched query."""

    def settle(self) -> list[JobUpdate]:
        """Final updates for this scheduler's submitted active jobs whose end is already certain
        from the files they leave, WITHOUT any scheduler command (the monitor asks at every
        refresh, between polls). Cluster adapters read exit-code files; the local executor's
        wrapper records its job's end itself, so by default there is nothing to read."""
        return []

    @abstractmethod
    def cancel(self, jobs: Sequence[JobInfo]) -> list[JobUpdate]:
        """Cancel ``jobs`` (one command for all of them where the scheduler allows)."""

    def dispatch(self) -> list[JobUpdate]:
        """Start jobs that were waiting for a slot or a dependency; most schedulers queue natively."""
        return []

    def queue(self) -> list[QueueEntry]:
        """Every job the scheduler shows for this user, ours or not."""
        return []

    def attach(self, native_id: str) -> JobInfo:
        """A JobInfo for a job submitted outside this package, to be tracked like our own."""
        raise SchedulerError(f"the {self.name} scheduler cannot attach existing jobs")

    def available(self) -> bool:
        """Whether the scheduler's commands exist on this machine."""
        return True
