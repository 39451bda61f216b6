"""Acting on jobs: cancel, retry, the scheduler's queue and attaching a job submitted elsewhere."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ..core import reasons
from ..core.errors import InvalidInputError
from ..core.models import JobInfo, JobStatus, utcnow
from ..core.resources import Resources
from ..store.legacy import LEGACY_SCHEDULER
from ..store.sqlite import JobUpdate
from .reads import ReadsMixin
from .refresh import RefreshMixin

if TYPE_CHECKING:
    from ..schedulers.base import QueueEntry


class ActionsMixin(RefreshMixin, ReadsMixin):
    """Cancel, retry, queue and attach."""

    def cancel_job(self, job_id: str, *, wait: float = 3.0) -> bool:
        """Cancel one job. False when it had already ended. Waits up to ``wait`` s for the end."""
        return self.cancel_jobs([job_id], wait=wait)[self.store.resolve(job_id)]

    def cancel_jobs(self, job_ids: Sequence[str], *, wait: float = 3.0) -> dict[str, bool]:
        self._require_write("cancel")
        jobs = [self.get_job(j) for j in job_ids]
        result = {job.job_id: job.status.active for job in jobs}
        by_scheduler: dict[str, list[JobInfo]] = {}
        for job in jobs:
            if job.status.active:
                by_scheduler.setdefault(job.scheduler, []).append(job)
        for name, group in by_scheduler.items():
            if name == LEGACY_SCHEDULER:
                self.store.apply([JobUpdate(j.job_id, JobStatus.CANCELLED, {"reason": reasons.CANCELLED_BY_USER,
                                                                            "end_time": utcnow()}, "cancel")
                                  for j in group])
                continue
            adapter = self.adapter(name)
            self.store.apply(self._final_progress(adapter.cancel(group)))
            self.store.reset_poll_due(name)
        deadline = time.monotonic() + wait
        pending = [j.job_id for group in by_scheduler.values() for j in group]
        # Local ends are seen in a file read; cluster ones cost a scheduler call per look.
        step = max([0.1] + [self.adapter(n).fast_poll_interval or 0.1 for n in by_scheduler
                            if n != LEGACY_SCHEDULER and not self.adapter(n).queues_itself])
        while pending and time.monotonic() < deadline:
            self.refresh(force=True, only=by_scheduler)  # other schedulers keep their own pace
            pending = [j.job_id for j in self.store.get_many(pending) if j.status.active]
            if pending:
                time.sleep(min(step, max(0.0, deadline - time.monotonic())))
        for name in by_scheduler:
            if self._capable(name, "queues_itself"):
                self.store.apply(self.adapter(name).dispatch())  # freed slots
        return result

    def retry_job(self, job_id: str, resources: Resources | dict[str, Any] | str | None = None) -> str:
        """Submit a finished job again as a new attempt linked to it. ``resources`` (e.g. "mem=64G")
        are applied over the old request."""
        self._require_write("retry")
        old = self.get_job(job_id)
        if old.status.active:
            raise InvalidInputError(f"job {old.job_id} is still {old.status.value}: cancel it before retrying")
        if self._capable(old.scheduler, "foreign_runs"):
            # Started by celline itself (discover.py's scheduler): run its script again on ours.
            from ..discover import resubmit

            new_id = resubmit(self, old.job_id, resources)
        else:
            new_id = self._retry_here(old, resources)
        # Both links, as for automatic retries: the old attempt knows its successor.
        self.store.update(old.job_id, None, source="retry", metadata={"retried_by": new_id})
        return new_id

    def _retry_here(self, old: JobInfo, resources: Resources | dict[str, Any] | str | None) -> str:
        request = old.resources
        if resources:
            if isinstance(resources, Resources):
                request = resources
            else:
                changes = resources if isinstance(resources, dict) else Resources.parse(resources).to_dict()
                request = old.resources.merged(**changes)
        meta = {k: v for k, v in old.metadata.items() if k in ("env", "array", "script", "retry_policy")}
        return self.submit_job(old.name, old.command, request, scheduler=old.scheduler, job_type=old.job_type,
                               working_dir=old.working_dir, depends_on=None, array=meta.pop("array", None),
                               env=meta.pop("env", None), metadata=meta, retry_of=old)

    def queue(self, scheduler: str) -> list[QueueEntry]:
        """What the scheduler shows now, ours or not (tracked ones name their job id)."""
        from ..schedulers.base import QueueEntry

        entries = self.adapter(scheduler).queue()
        tracked = self.store.native_ids(scheduler, (e.native_id for e in entries))
        return [QueueEntry(e.native_id, e.name, e.state, e.user, e.reason, tracked.get(e.native_id))
                for e in entries]

    def attach(self, scheduler: str, native_id: str) -> str:
        """Track a job submitted outside this package, by its scheduler id."""
        existing = self.store.find_native(scheduler, str(native_id))
        if existing is not None:
            return existing.job_id
        job = self.adapter(scheduler).attach(str(native_id))
        self.store.insert(job, source="attach")
        return job.job_id
