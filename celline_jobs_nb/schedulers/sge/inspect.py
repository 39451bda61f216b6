"""Grid Engine: the queue (``celline-jobs queue --scheduler sge``) and attaching a job."""

from __future__ import annotations

import itertools
import re
from typing import TYPE_CHECKING, Any

from ...core.errors import InvalidInputError
from ...core.models import JobInfo, JobStatus, new_job_id
from ..base import QueueEntry
from ..batch.rules import current_user, listed_resources
from .parse import SgeRecord
from .script import qstat_command
from .states import map_state, state_reason

_NATIVE_RE = re.compile(r"^([1-9][0-9]{0,11})(?:\.([1-9][0-9]{0,8}))?$")
_QUEUE_RE = re.compile(r"^[A-Za-z0-9_.+-]{1,128}$")


class SgeInspection:
    """This user's jobs as Grid Engine lists them, and attaching one to track it."""

    name: str

    if TYPE_CHECKING:
        def run_status(self, argv: list[str]) -> list[SgeRecord]: ...  # the poll's (batch/poll.py)

    def listing(self) -> list[SgeRecord]:
        """ONE ``qstat -xml -u <user>``, the poll's own status query: every pending, running,
        suspended or held job of this user."""
        return self.run_status(qstat_command(current_user()))

    def queue(self) -> list[QueueEntry]:
        """This user's jobs in Grid Engine now, ours or not (one entry per array task)."""
        return [QueueEntry(r.job_number if r.task is None else f"{r.job_number}.{r.task}", r.name, r.state,
                           r.owner, state_reason(r.state)) for r in self.listing()]

    def attach(self, native_id: str) -> JobInfo:
        """A JobInfo for a Grid Engine job submitted elsewhere ("123", or one task "123.4"); an
        array job is attached whole, its tasks tracked like ours."""
        native = str(native_id).strip()
        match = _NATIVE_RE.match(native)
        if match is None:
            raise InvalidInputError(f"invalid Grid Engine job id {native_id!r}: use a job number like 123 or 123.4")
        number, task = match.group(1), int(match.group(2)) if match.group(2) else None
        records = [r for r in self.listing() if r.job_number == number and (task is None or r.task == task)]
        if not records:
            raise InvalidInputError(f"Grid Engine lists no job {native} of {current_user()}: check it with `qstat`")
        record = records[0]
        metadata: dict[str, Any] = {"attached": True, "sge_state": record.state}
        tasks = sorted({r.task for r in records if r.task is not None})
        if task is None and tasks:
            step = tasks[1] - tasks[0] if len(tasks) > 1 else 1
            if any(b - a != step for a, b in itertools.pairwise(tasks)):
                raise InvalidInputError(f"Grid Engine job {number} is an array whose listed tasks are not one range: "
                                        f"attach its tasks one by one ({number}.{tasks[0]} ...)")
            metadata["array"] = f"{tasks[0]}-{tasks[-1]}:{step}"
        status, known = map_state(record.state)
        if not known:
            status = JobStatus.QUEUED
        resources: dict[str, Any] = {}
        if record.slots and 0 < record.slots <= 100_000:
            resources["cpus"] = record.slots
        queue = (record.queue or "").partition("@")[0]
        if queue and _QUEUE_RE.match(queue):
            resources["partition"] = queue
        return JobInfo(
            job_id=new_job_id(), name=record.name or f"sge-{native}", status=status, scheduler=self.name,
            native_id=native, resources=listed_resources(resources), submit_time=record.submit,
            start_time=record.start if status is JobStatus.RUNNING else None, reason=state_reason(record.state),
            metadata=metadata,
        )
