"""Keeping the store current: ``refresh`` (settle from files, poll each scheduler in its turn, record
ends' final progress, automatic retries, notifications), ``wait`` and the background poller."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from ..core import reasons
from ..core.dependencies import Verdict, dependency_verdict
from ..core.errors import CellineJobsError, InvalidInputError, SchedulerError, SubmitError
from ..core.models import JobInfo, JobStatus, utcnow
from ..store.legacy import LEGACY_SCHEDULER
from ..store.sqlite import JobUpdate
from .poller import Poller
from .submit import SubmitMixin

if TYPE_CHECKING:
    from ..schedulers.base import SchedulerAdapter

log = logging.getLogger("celline.job")

#: A job settled from its exit-code file is reconciled with its scheduler's record by the polls of
#: this long; after that (the scheduler purged it, or kept failing) it is left as it is.
RECONCILE_WINDOW_SECONDS = 3600.0

#: ``wait()`` looks for exit-code files this often, and refreshes at least every WAIT_REFRESH_SECONDS
#: (and at once when one appears).
WAIT_LOOK_SECONDS = 0.05

WAIT_REFRESH_SECONDS = 0.5


class RefreshMixin(SubmitMixin):
    """The polling side of ``JobMonitor``: the only part that asks schedulers."""

    def refresh(self, force: bool = False, *, only: Iterable[str] | None = None) -> list[str]:
        """Poll every scheduler that has active jobs (if its turn has come, or ``force``) and
        record what changed; ``only`` limits it to those schedulers. Returns the ids of changed jobs."""
        changed: list[str] = []
        if self.read_only is not None:
            return changed  # the project's writers poll; this process reads what they recorded
        wanted = None if only is None else set(only)
        names = self.store.schedulers_to_poll()
        for name in names:
            if name == LEGACY_SCHEDULER or (wanted is not None and name not in wanted):
                continue
            try:
                adapter = self.adapter(name)
            except InvalidInputError:
                log.warning("jobs of unknown scheduler %r are not polled", name)
                continue
            changed.extend(self._settle(adapter))
            if not force and not self.store.claim_poll(name, self.poll_interval(name)):
                continue
            changed.extend(self._poll(name, adapter))
        changed.extend(self._settle_recorded_ends(any(self._capable(n, "records_own_ends") for n in names)))
        changed.extend(self._schedule_retries())
        if self.notifier is not None:
            self.notifier.notify()
        return changed

    def _schedule_retries(self) -> list[str]:
        """Failed attempts whose policy allows another: submit the next attempt after its backoff,
        with more memory after an OOM and more time after a timeout. Each failure is decided once,
        by whichever process sees it first."""
        undecided = self.store.failed_awaiting_retry()
        if not undecided:
            return []
        from ..core.retry import RetryPolicy, failure_kind

        created = []
        for job in undecided:
            if not self.store.claim_flag(job.job_id, "retry_checked"):
                continue
            policy = RetryPolicy.parse(job.metadata["retry_policy"])
            if policy is None or not policy.should_retry(job):
                continue
            delay = policy.delay(job.attempt)
            meta = {k: v for k, v in job.metadata.items() if k in ("script", "retry_policy")}
            meta["not_before"] = time.time() + delay
            meta["retry_reason"] = f"attempt {job.attempt} {failure_kind(job)}: {job.reason or ''}".strip()
            new_id = self.submit_job(
                job.name, job.command, policy.next_resources(job), scheduler=job.scheduler, job_type=job.job_type,
                working_dir=job.working_dir, array=job.metadata.get("array"), env=job.metadata.get("env"),
                metadata=meta, retry_of=job,
            )
            self.store.update(job.job_id, None, source="retry", metadata={"retried_by": new_id})
            log.info("job %s failed (%s); attempt %d is %s, starting in %.0f s",
                     job.job_id, failure_kind(job), job.attempt + 1, new_id, delay)
            created.append(new_id)
        return created

    def _settle(self, adapter: SchedulerAdapter) -> list[str]:
        """Jobs whose end their own files already tell (no scheduler call): recorded now."""
        updates = adapter.settle()
        return self.store.apply(self._final_progress(updates)) if updates else []

    def _settle_recorded_ends(self, local_active: bool = True) -> list[str]:
        """Ends written by another process (a local job's runner records its own end): read the
        job's final progress once, as ``_final_progress`` does for the ends recorded here. Only
        while local jobs run or just ran (cluster ends are recorded here, with their progress)."""
        last_submit = max((t for n, t in self._last_submit.items() if self._capable(n, "records_own_ends")),
                          default=float("-inf"))
        look = local_active or self._local_ran or last_submit > self._ended_look
        self._local_ran, self._ended_look = local_active, time.monotonic()
        try:
            if not look:
                self._ended_rev = self.store.revision()
                return []
            if self.store.revision() == self._ended_rev:
                return []
            jobs, self._ended_rev = self.store.changed_since(self._ended_rev)
            recent = time.time() - 3600
            ended = [JobUpdate(j.job_id, j.status, {}, "progress") for j in jobs
                     if j.status.final and j.end_time is not None and j.end_time.timestamp() > recent]
            if not ended:
                return []
            updates = [JobUpdate(u.job_id, None, u.fields, "progress")
                       for u in self._final_progress(ended, settled=True) if u.fields.get("progress")]
            return self.store.apply(updates) if updates else []
        except CellineJobsError as exc:  # read-only store, busy database: only a nicety
            log.debug("final progress of ended jobs not recorded: %s", exc)
            return []

    def _final_progress(self, updates: list[JobUpdate], settled: bool = False) -> list[JobUpdate]:
        """Jobs that end in ``updates``: read their progress file (or the tqdm line at the end of
        their log) once more, so the final row keeps the last progress they reported — often
        written just before exiting, after the last poll looked. The one place this happens."""
        ending = [u for u in updates if u.status is not None and u.status.final and "progress" not in u.fields]
        if not ending:
            return updates
        from ..core.jobfiles import read_job_progress

        for job in self.store.get_many([u.job_id for u in ending]):
            if job.status.final is not settled:
                continue
            try:
                progress = read_job_progress(self.paths, job.job_id, job.progress)
            except Exception as exc:  # a job's own file: never let it stop recording the end
                log.debug("job %s: final progress not read: %s", job.job_id, exc)
                continue
            if progress is not None:
                for update in ending:
                    if update.job_id == job.job_id:
                        update.fields["progress"] = progress
        return updates

    def _reconciling(self, name: str) -> list[JobInfo]:
        """Ended jobs of ``name`` whose scheduler record the poll should still read; marks older
        than the reconcile window are dropped instead."""
        from ..core.jobfiles import RECONCILE_META_KEY

        cutoff = time.time() - RECONCILE_WINDOW_SECONDS
        fresh, expired = [], []
        for job in self.store.reconciling(name):
            (fresh if float(job.metadata.get(RECONCILE_META_KEY) or 0) >= cutoff else expired).append(job)
        if expired:
            self.store.apply([JobUpdate(j.job_id, None, {"metadata": {RECONCILE_META_KEY: None}}, "reconcile")
                              for j in expired])
        return fresh

    def _poll(self, name: str, adapter: SchedulerAdapter) -> list[str]:
        calls_before = adapter.calls
        try:
            self._submit_waiting(name, adapter)
            jobs = [j for j in self.store.active(name) if j.status is not JobStatus.PENDING or adapter.queues_itself]
            jobs += self._reconciling(name)
            result = adapter.poll(jobs) if jobs else None
            updates = list(result.updates) if result else []
            updates.extend(adapter.dispatch())
        except SchedulerError as exc:
            log.warning("polling %s failed (data is stale): %s", name, exc)
            self.store.record_poll(name, False, str(exc), adapter.calls - calls_before)
            return []
        self._insert_new_children(updates)
        changed = self.store.apply(self._final_progress(updates))
        self.store.record_poll(name, True, None, adapter.calls - calls_before)
        return changed

    def _insert_new_children(self, updates: list[JobUpdate]) -> None:
        """Array tasks first seen in a poll become rows of their own (``<parent>_<index>``)."""
        children = [u for u in updates if u.fields.get("array_parent")]
        if not children:
            return
        known = {j.job_id for j in self.store.get_many([u.job_id for u in children])}
        parents = {j.job_id: j for j in self.store.get_many(list({u.fields["array_parent"] for u in children}))}
        new_jobs = []
        for update in children:
            parent = parents.get(update.fields["array_parent"])
            if update.job_id in known or parent is None:
                continue
            new_jobs.append(JobInfo(
                job_id=update.job_id, name=parent.name, status=JobStatus.PENDING, command=parent.command,
                log_file=str(self.paths.log_file(update.job_id)), working_dir=parent.working_dir,
                resources=parent.resources, scheduler=parent.scheduler, job_type=parent.job_type,
                submit_time=parent.submit_time, array_parent=parent.job_id,
                array_index=update.fields.get("array_index"), attempt=parent.attempt,
            ))
        self.store.insert_many(new_jobs, source="array")

    def _submit_waiting(self, name: str, adapter: SchedulerAdapter) -> None:
        """Cluster jobs left pending for a parent on another scheduler: submit or cancel them now."""
        if adapter.queues_itself:
            return
        for job in self.store.list([JobStatus.PENDING], scheduler=name):
            if job.native_id or float(job.metadata.get("not_before") or 0) > time.time():
                continue
            parents = self.store.get_many(job.depends_on)
            statuses = {p.job_id: p.status for p in parents}
            verdict = dependency_verdict(job.dependency_kind, (statuses.get(p) for p in job.depends_on))
            if verdict is Verdict.NEVER:
                self.store.update(job.job_id, JobStatus.CANCELLED, source="dependency", end_time=utcnow(),
                                  reason=reasons.dependency_never_satisfied(
                                      f"{job.dependency_kind} on {', '.join(job.depends_on)}"))
            elif verdict is Verdict.READY:
                try:
                    self.store.apply([adapter.submit(job)])
                except SubmitError as exc:
                    self.store.update(job.job_id, JobStatus.FAILED, source="submit", end_time=utcnow(),
                                      reason=f"submit failed: {exc}")

    def wait(self, job_ids: Iterable[str] | None = None, timeout: float | None = None,
             poll: float = WAIT_LOOK_SECONDS) -> list[JobInfo]:
        """Block until the jobs (default: every active job now) are final. Raises TimeoutError.

        Between refreshes (every WAIT_REFRESH_SECONDS) it looks for the jobs' exit-code files every
        ``poll`` seconds (a stat each; less often for many jobs) and refreshes at once when one
        appears: an end is seen within about ``poll`` s of the job's script writing its file. The
        scheduler itself is asked only when its poll turn comes."""
        ids = [self.store.resolve(j) for j in job_ids] if job_ids is not None else \
            [j.job_id for j in self.store.active()]
        deadline = None if timeout is None else time.monotonic() + timeout
        # Exit-code files, and when one first triggered a refresh: a local command's own shell writes
        # its file just before the wrapper records the end, so a file triggers refreshes for 0.3 s.
        seen: dict[Path, float] = {}
        while True:
            self.refresh()
            jobs = self.store.get_many(ids)
            if all(j.status.final for j in jobs):
                if self._settle_recorded_ends():  # an end recorded since this refresh looked
                    jobs = self.store.get_many(ids)
                return jobs
            exit_files = [self.paths.exit_file(j.job_id) for j in jobs if j.status.active]
            # A stat costs ~1.5 us: at most ~1% of a core goes to looking, however many jobs.
            pause = max(poll, len(exit_files) * 150e-6)
            refresh_at = time.monotonic() + WAIT_REFRESH_SECONDS
            while time.monotonic() < refresh_at:
                if deadline is not None and time.monotonic() >= deadline:
                    active = sum(1 for j in self.store.get_many(ids) if j.status.active)
                    raise TimeoutError(f"{active} of {len(ids)} jobs still active after {timeout} s")
                time.sleep(pause)
                now = time.monotonic()
                appeared = [path for path in exit_files if now - seen.get(path, now) < 0.3 and path.exists()]
                if appeared:
                    seen.update((path, seen.get(path, now)) for path in appeared)
                    break

    @property
    def poller(self) -> Poller | None:
        """The background poller, while it runs."""
        return self._poller if self._poller is not None and self._poller.is_alive() else None

    def start_polling(self, interval: float | None = None) -> Poller:
        """Refresh in a background thread (idempotent: one poller per monitor)."""
        if self._poller is None or not self._poller.is_alive():
            self._poller = Poller(self, interval)
            self._poller.start()
        return self._poller

    def stop_polling(self) -> None:
        if self._poller is not None:
            self._poller.stop()
            self._poller = None
