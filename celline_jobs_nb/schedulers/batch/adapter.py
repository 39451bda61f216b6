"""``BatchScheduler``: submit / poll / settle / cancel written once for every batch scheduler.

A scheduler supplies hooks: ``render_script`` (its job script), ``submit_argv`` (the submit
command line), ``parse_submit_output`` (the native id and what else it printed),
``held_directive`` (the extra resource line that submits held), ``array_indices`` (its array
syntax), ``submit_hint`` (where to look when the submit timed out) and ``send_cancel`` (its
cancel command(s), raising ``SchedulerError`` with the first real problem). ``poll`` is
``PollFlow``'s (``poll.py``, whose docstring lists its hooks).
"""

from __future__ import annotations

import re
import time
from abc import abstractmethod
from collections.abc import Callable, Iterable, Sequence
from typing import Any, ClassVar

from ...core import reasons
from ...core.errors import ParseError, SchedulerError, SubmitError
from ...core.models import JobInfo, JobStatus, utcnow
from ...core.paths import write_job_script
from ...core.updates import JobUpdate
from ..base import SchedulerAdapter, SchedulerContext
from .poll import PollFlow
from .rules import CANCEL_SENT_KEY, error_line, poll_floor_override, settle_from_exit_files


class BatchScheduler(PollFlow, SchedulerAdapter):
    """A scheduler driven by submit/status/cancel commands and the job script's exit-code file."""

    settles_from_files = True
    #: Polled politely: never more often than ``min_poll_interval`` seconds (a project moves the
    #: floor with the adapter setting ``<name>_min_poll_interval`` or the environment variable
    #: named by ``min_poll_env``), every ``default_poll_interval`` seconds unless the user chooses,
    #: every ``fast_poll_interval`` seconds for a while after a submit (JobMonitor.poll_interval).
    min_poll_interval = 30.0
    default_poll_interval = 30.0
    fast_poll_interval = 3.0
    min_poll_env: ClassVar[str] = ""
    #: Its command names, for messages ("sbatch", "qsub").
    submit_command: ClassVar[str] = "submit"
    #: An extra resource line that submits the job held (``-H``/``--hold``, ``-h``).
    held_directive: ClassVar[re.Pattern[str]] = re.compile(r"(?!)")

    def __init__(self, context: SchedulerContext) -> None:
        super().__init__(context)
        self._logged_states = set()
        floor = poll_floor_override(context.settings, f"{self.name}_min_poll_interval", self.min_poll_env, self.label)
        if floor is not None:
            self.min_poll_interval = floor  # type: ignore[misc]  # per-instance override of the class floor

    # -- hooks -----------------------------------------------------------------------------------

    @abstractmethod
    def render_script(self, job: JobInfo) -> str:
        """The job script (the shared fragment included by the scheduler's template)."""

    @abstractmethod
    def submit_argv(self, job: JobInfo, script: str) -> list[str]:
        """The submit command line for the written script."""

    @abstractmethod
    def parse_submit_output(self, stdout: str) -> tuple[str, dict[str, Any]]:
        """(native id, extra metadata) from what the submit command printed; ParseError if none."""

    @abstractmethod
    def submit_hint(self, job: JobInfo) -> str:
        """Where to look when the submit command timed out (it may have been accepted)."""

    @abstractmethod
    def send_cancel(self, native_ids: Sequence[str]) -> None:
        """Run the cancel command(s) for these ids; SchedulerError with the first real problem
        (complaints about jobs that had already ended are not problems)."""

    # -- helpers for the hooks -------------------------------------------------------------------

    def run_cancels(self, argvs: Iterable[list[str]], problems: Callable[[str], list[str]], what: str) -> None:
        """Run each cancel command (``what`` names them in the error); ``SchedulerError`` with the
        last real problem, ``problems`` picking those lines of a failed command's output that are
        not "already ended"."""
        found: list[str] = []
        for argv in argvs:
            result = self.runner.run(argv, check=False)
            if result.returncode != 0:
                found.extend(problems(result.stdout + "\n" + result.stderr))
        if found:
            raise SchedulerError(f"{what} failed: {found[-1][:300]}")

    # -- the flow --------------------------------------------------------------------------------

    def submit(self, job: JobInfo) -> JobUpdate:
        paths = self.context.paths
        if not paths.logs_dir.is_dir():  # no batch system creates the log directory
            paths.logs_dir.mkdir(parents=True, exist_ok=True)
        script = self.render_script(job)
        path = paths.script_file(job.job_id)
        write_job_script(path, script)
        try:
            result = self.runner.run(self.submit_argv(job, str(path)), check=False)
        except SchedulerError as exc:
            if "did not answer" not in str(exc):
                raise SubmitError(str(exc)) from None
            raise SubmitError(f"{exc} ({self.submit_hint(job)})") from None
        if result.returncode != 0:
            raise SubmitError(error_line(result.stderr + "\n" + result.stdout,
                                         f"{self.submit_command} exited {result.returncode}"))
        try:
            native_id, extra = self.parse_submit_output(result.stdout)
        except ParseError as exc:
            raise SubmitError(str(exc)) from None
        held = any(self.held_directive.match(e.strip()) for e in job.resources.extra)
        metadata: dict[str, Any] = {"script": str(path), **extra}
        if job.metadata.get("native_dependencies"):
            metadata["native_dependencies"] = list(job.metadata["native_dependencies"])
        fields: dict[str, Any] = {"native_id": native_id, "submit_time": utcnow(), "reason": None,
                                  "metadata": metadata}
        if job.metadata.get("array"):
            indices = self.array_indices(str(job.metadata["array"]))
            if indices:  # the parent row shows the first task's log
                fields["log_file"] = str(paths.log_file(f"{job.job_id}_{indices[0]}"))
        return JobUpdate(job.job_id, JobStatus.HELD if held else JobStatus.QUEUED, fields, source="submit")

    def settle(self) -> list[JobUpdate]:
        return settle_from_exit_files(self.context, self.name)

    def cancel(self, jobs: Sequence[JobInfo]) -> list[JobUpdate]:
        """One cancel command for all of them. The scheduler answers asynchronously: the next poll
        sees the end; here the jobs are only marked so the final state says "cancelled by user".

        The marks, with the time the cancel is sent, are stored before the command runs (a task
        whose exit-code file shows it ending by itself clearly before that time ended on its own,
        see ``rules``); they are taken back if the command fails."""
        updates: list[JobUpdate] = []
        marks: list[JobUpdate] = []
        cancelling = {j.job_id for j in jobs if j.native_id}
        ids: list[str] = []
        sent = time.time()
        for job in jobs:
            if not job.native_id:
                updates.append(JobUpdate(job.job_id, JobStatus.CANCELLED,
                                         {"reason": reasons.CANCELLED_BY_USER, "end_time": utcnow(),
                                          "metadata": {"cancel_requested": True}}, source="cancel"))
                continue
            if job.array_parent not in cancelling:  # cancelling the array cancels its tasks
                ids.append(job.native_id)
            marks.append(JobUpdate(job.job_id, None, {"metadata": {"cancel_requested": True, CANCEL_SENT_KEY: sent}},
                                   source="cancel"))
        if ids:
            self.context.store.apply(marks)
            try:
                self.send_cancel(list(dict.fromkeys(ids)))
            except SchedulerError:
                self.context.store.apply([JobUpdate(m.job_id, None, {"metadata": {
                    "cancel_requested": None, CANCEL_SENT_KEY: None}}, source="cancel") for m in marks])
                raise
        return updates + marks
