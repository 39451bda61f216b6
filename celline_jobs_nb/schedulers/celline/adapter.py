"""``CellineScheduler`` (registry name ``celline``): the jobs celline runs itself.

Polled from processes, qstat and files; never submitted here. Its jobs are added to the store by
``celline_jobs_nb.discover``; this adapter keeps them current. PBS commands (one qstat of every
job per poll, qdel) go through the PBS adapter, which knows the installed flavour's commands and
output.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from ...core.errors import SubmitError
from ...core.models import JobInfo, JobStatus, utcnow
from ...core.settings import CellineExecution, read_toml
from ...core.updates import JobUpdate
from ..base import PollResult, SchedulerAdapter, SchedulerContext
from ..pbs import PbsRecord, PbsScheduler
from .assess import assess
from .evidence import match_pbs, script_processes, terminate_tree
from .runs import run_of

CELLINE_SCHEDULER = "celline"


class CellineScheduler(SchedulerAdapter):
    """The jobs celline runs itself: polled from processes, qstat and files; never submitted here."""

    name = CELLINE_SCHEDULER
    foreign_runs = True
    min_poll_interval = 5.0
    default_poll_interval = 15.0

    def __init__(self, context: SchedulerContext) -> None:
        super().__init__(context)
        self.execution = CellineExecution.parse(read_toml(context.paths.celline_settings).get("execution"))
        self._pbs_adapter: PbsScheduler | None = None

    @property
    def pbs(self) -> PbsScheduler:
        """The PBS adapter, running its commands through this adapter's runner (so they count
        here); it detects the flavour once and remembers it in the store."""
        if self._pbs_adapter is None:
            self._pbs_adapter = PbsScheduler(self.context)
            self._pbs_adapter.runner = self.runner
        return self._pbs_adapter

    def submit(self, job: JobInfo) -> JobUpdate:
        raise SubmitError("jobs of the `celline` scheduler are the ones celline starts itself: run the script "
                          "with `celline-jobs submit SCRIPT --scheduler local|slurm|pbs`, or `celline-jobs retry`")

    def poll(self, jobs: Sequence[JobInfo]) -> PollResult:
        root = self.context.paths.root
        runs = {job.job_id: run for job in jobs if (run := run_of(job, root)) is not None}
        processes = script_processes() if any(run.latest for run in runs.values()) else {}
        records: list[PbsRecord] = []
        if self.execution.pbs and runs:
            records = self.pbs.every_job()
        by_key = {run.key: run for run in runs.values()}
        known = {runs[j.job_id].key: j.native_id for j in jobs if j.job_id in runs and j.native_id}
        matches = match_pbs(by_key, records, known) if records else {}
        result = PollResult()
        for job in jobs:
            run = runs.get(job.job_id)
            if run is None:
                continue
            record, how = matches.get(run.key, (None, None))
            assessment = assess(run, process=processes.get(os.path.realpath(run.script.path)), pbs=record,
                                pbs_checked=self.execution.pbs,
                                cancel_requested=bool(job.metadata.get("cancel_requested")),
                                flavour=self.pbs.flavour if record is not None else None)
            fields = dict(assessment.fields)
            if how is not None and how != "id":  # keep how it was first matched
                fields["metadata"] = {**fields.get("metadata", {}), "pbs_matched_by": how}
            if assessment.status.final and job.start_time is None and "start_time" not in fields:
                fields["start_time"] = run.submitted
            result.updates.append(JobUpdate(job.job_id, assessment.status, fields))
        return result

    def cancel(self, jobs: Sequence[JobInfo]) -> list[JobUpdate]:
        """``qdel`` the PBS ones (through the PBS adapter: complaints about jobs that already
        ended are no error, any other raises SchedulerError), SIGTERM the local ``bash <script>``
        process trees; a job with nothing to stop is cancelled at once. The next poll records the end."""
        updates: list[JobUpdate] = []
        native = [job.native_id for job in jobs if job.native_id]
        if native:
            self.pbs.send_cancel(native)
        processes = script_processes() if any(not job.native_id for job in jobs) else {}
        for job in jobs:
            run = run_of(job, self.context.paths.root)
            process = processes.get(os.path.realpath(run.script.path)) if run is not None and run.latest else None
            if job.native_id or process is not None:
                if process is not None:
                    terminate_tree(process)
                updates.append(JobUpdate(job.job_id, None, {"metadata": {"cancel_requested": True}}, "cancel"))
            else:
                updates.append(JobUpdate(job.job_id, JobStatus.CANCELLED, {
                    "reason": "cancelled by user (nothing of it was running)", "end_time": utcnow(),
                    "metadata": {"cancel_requested": True}}, "cancel"))
        return updates
