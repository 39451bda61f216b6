"""JobMonitor: the public facade (seed names kept), and the Poller that keeps the store current.

Readers (widgets, CLI, report, DataFrame) read the store. Only ``refresh`` talks to schedulers:
one batched query per scheduler per tick, at most every ``poll_interval(scheduler)`` seconds
across all processes watching the project (the store hands out poll turns). A failed poll marks
that scheduler's data stale; it never makes a job failed. Between polls, every refresh also reads
the exit-code files of running cluster jobs (no scheduler call), so an end is seen as soon as the
job's script has written its file; the next polls add what the scheduler knows of it.
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .core import reasons
from .core.dependencies import Verdict, check_kind, dependency_verdict
from .core.errors import CellineJobsError, InvalidInputError, SchedulerError, StoreError, SubmitError
from .core.models import JobInfo, JobStatus, JobType, new_job_id, utcnow, validate_env
from .core.paths import ProjectPaths
from .core.resources import Resources
from .core.settings import MAX_PARALLEL_META_KEY, JobsSettings
from .store import outbox
from .store.backup import backup_if_due
from .store.legacy import LEGACY_SCHEDULER, import_legacy_json
from .store.sqlite import JobStore, JobUpdate, PollState

# The scheduler adapters (and subprocess, shutil...), retry policies and the exit-file and log
# readers load when first used: a CLI `list` of a project with nothing to poll needs none of them.
if TYPE_CHECKING:
    import pandas as pd

    from .core.retry import RetryPolicy
    from .notify import Notifier
    from .schedulers.base import QueueEntry, SchedulerAdapter, SchedulerContext

log = logging.getLogger("celline.job")

DISK_USAGE_META_KEY = "disk_usage"
FAST_POLL_WINDOW_SECONDS = 60.0  # after a submit, cluster adapters poll at their fast interval this long
#: A job settled from its exit-code file is reconciled with its scheduler's record by the polls of
#: this long; after that (the scheduler purged it, or kept failing) it is left as it is.
RECONCILE_WINDOW_SECONDS = 3600.0
#: ``wait()`` looks for exit-code files this often, and refreshes at least every WAIT_REFRESH_SECONDS
#: (and at once when one appears).
WAIT_LOOK_SECONDS = 0.05
WAIT_REFRESH_SECONDS = 0.5
#: While cluster jobs run, the background poller looks at their exit-code files this often
#: (cheap: a stat per job); scheduler polls keep their own, slower pace.
SETTLE_INTERVAL_SECONDS = 1.0
MAX_NAME_LENGTH = 1000


class JobMonitor:
    """Submit, track, cancel and retry the jobs of one Celline project.

    ``project_path`` is the project directory (default: the current one). ``max_parallel`` sets
    how many local jobs run at once for this project (remembered in the store, so job wrappers
    and other processes honour it too).
    """

    def __init__(self, project_path: str | os.PathLike[str] = ".", *, max_parallel: int | None = None,
                 poll_intervals: dict[str, float] | None = None) -> None:
        self.paths = ProjectPaths.of(project_path)
        if not self.paths.root.is_dir():
            raise InvalidInputError(f"project directory {self.paths.root} does not exist: create it or pass another")
        self.settings = JobsSettings.load(self.paths)
        self.store = JobStore(self.paths, database_mode=self.settings.database_mode)
        #: Why this process can only read the project (None: it may write). A colleague without
        #: write access still lists, shows, reports and watches; nothing is imported, backed up,
        #: polled or announced from here.
        self.read_only = self.store.read_only
        if self.read_only is None:
            import_legacy_json(self.store)
            backup_if_due(self.store)
        self._context: SchedulerContext | None = None
        self._adapters: dict[str, SchedulerAdapter] = {}
        self._adapters_lock = threading.Lock()
        self._poll_intervals = {**self.settings.poll_interval, **(poll_intervals or {})}
        self._last_submit: dict[str, float] = {}
        self._ended_rev = self.store.revision()  # ends recorded by other processes are looked at after this
        self._local_ran, self._ended_look = False, float("-inf")
        self._poller: Poller | None = None
        self.notifier: Notifier | None = None
        if self.settings.notify.enabled and self.read_only is None:
            from .notify import Notifier  # smtplib and urllib load only for projects that notify

            self.notifier = Notifier(self.settings.notify, self.store)
        elif self.read_only is None:
            outbox.unconfigure(self.store)  # no notifier: no outbox rows (one read when none were kept)
        limit = max_parallel if max_parallel is not None else self.settings.max_parallel
        if limit is not None:
            if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
                raise InvalidInputError(f"invalid max_parallel {max_parallel!r}: use a whole number >= 1")
            if self.store.get_meta(MAX_PARALLEL_META_KEY) != str(limit) and self.read_only is None:
                self.store.set_meta(MAX_PARALLEL_META_KEY, str(limit))

    def _require_write(self, action: str) -> None:
        if self.read_only is not None:
            raise StoreError(f"read-only: {self.read_only}; {action} needs write access to the project "
                             "(ask its owner, or work on a copy)")

    # -- adapters ----------------------------------------------------------------------------

    def adapter(self, name: str) -> SchedulerAdapter:
        with self._adapters_lock:
            if name not in self._adapters:
                from .schedulers import SchedulerContext, create

                if self._context is None:
                    self._context = SchedulerContext(self.paths, self.store,
                                                     {"pbs_server": self.settings.execution.pbs_server,
                                                      "sge": self.settings.sge})
                self._adapters[name] = create(name, self._context)
            return self._adapters[name]

    def _capable(self, name: str, flag: str) -> bool:
        """Whether the named scheduler's adapter has a capability flag (schedulers/base.py);
        False for the legacy import and for names no adapter answers to."""
        if name == LEGACY_SCHEDULER:
            return False
        try:
            return bool(getattr(self.adapter(name), flag, False))
        except InvalidInputError:
            return False

    def poll_interval(self, scheduler: str) -> float:
        """Seconds between polls: the user's choice or the adapter's default, never below its floor;
        cluster adapters poll faster for a minute after a submit."""
        adapter = self.adapter(scheduler)
        chosen = max(adapter.min_poll_interval, self._poll_intervals.get(scheduler, adapter.default_poll_interval))
        recent = time.monotonic() - self._last_submit.get(scheduler, -1e9) < FAST_POLL_WINDOW_SECONDS
        if recent and adapter.fast_poll_interval is not None:
            chosen = min(chosen, adapter.fast_poll_interval)  # the one exception to the floor
        return chosen

    @property
    def scheduler_calls(self) -> dict[str, int]:
        """Scheduler commands run by this monitor, per scheduler (a politeness metric)."""
        return {name: adapter.calls for name, adapter in self._adapters.items()}

    # -- submit ------------------------------------------------------------------------------

    def submit_job(
        self,
        name: str,
        command: str,
        resources: Resources | dict[str, Any] | str | None = None,
        *,
        scheduler: str | None = None,
        job_type: JobType | str | None = None,
        working_dir: str | os.PathLike[str] | None = None,
        depends_on: Iterable[str] | None = None,
        dependency_kind: str = "afterok",
        array: str | None = None,
        env: dict[str, str] | None = None,
        metadata: dict[str, Any] | None = None,
        retry: RetryPolicy | dict[str, Any] | int | None = None,
        retry_of: JobInfo | None = None,
    ) -> str:
        """Record a job and hand it to its scheduler. Returns the new job id.

        ``retry`` makes failed attempts come back automatically: a number of retries, or a
        ``RetryPolicy`` (backoff with jitter, which failures, resource bumps on OOM/timeout).
        """
        self._require_write("submit")
        if retry is not None:
            from .core.retry import RetryPolicy

            policy = RetryPolicy.parse(retry)
            if policy is not None and policy.max_retries > 0:
                metadata = {**(metadata or {}), "retry_policy": policy.to_dict()}
        job = self._new_job(name, command, resources, scheduler=scheduler, job_type=job_type,
                            working_dir=working_dir, depends_on=depends_on, dependency_kind=dependency_kind,
                            array=array, env=env, metadata=metadata, retry_of=retry_of)
        self.store.insert(job)
        self._hand_over(job)
        return job.job_id

    def _new_job(self, name: str, command: str, resources: Resources | dict[str, Any] | str | None, *,
                 scheduler: str | None, job_type: JobType | str | None,
                 working_dir: str | os.PathLike[str] | None, depends_on: Iterable[str] | None,
                 dependency_kind: str, array: str | None, env: dict[str, str] | None,
                 metadata: dict[str, Any] | None, retry_of: JobInfo | None) -> JobInfo:
        name = str(name)
        if not name.strip() or "\0" in name or len(name) > MAX_NAME_LENGTH:
            raise InvalidInputError(f"invalid job name {name[:60]!r}: give 1 to {MAX_NAME_LENGTH} characters, no NUL")
        command = str(command)
        if not command.strip() or "\0" in command:
            raise InvalidInputError("invalid command: give a non-empty shell command without NUL bytes")
        scheduler_name = scheduler or self.settings.default_scheduler
        self.adapter(scheduler_name)  # unknown scheduler -> clear error before anything is stored
        parents = [self.store.resolve(p) for p in (depends_on or [])]
        check_kind(dependency_kind)
        workdir = Path(working_dir).expanduser().resolve() if working_dir else self.paths.root
        if not workdir.is_dir():
            raise InvalidInputError(f"working directory {workdir} does not exist: create it or pass another")
        meta = dict(metadata or {})
        if env:
            meta["env"] = validate_env(env)
        if array:
            meta["array"] = _check_array_spec(array)
        job_id = new_job_id()
        return JobInfo(
            job_id=job_id,
            name=name,
            status=JobStatus.PENDING,
            command=command,
            log_file=str(self.paths.log_file(job_id)),
            working_dir=str(workdir),
            resources=Resources.parse(resources),
            scheduler=scheduler_name,
            job_type=JobType.parse(job_type),
            submit_time=utcnow(),
            attempt=(retry_of.attempt + 1) if retry_of else 1,
            retry_of=retry_of.job_id if retry_of else None,
            depends_on=parents,
            dependency_kind=dependency_kind,
            metadata=meta,
        )

    def _hand_over(self, job: JobInfo) -> None:
        """Submit a stored pending job now if its dependencies allow, else leave it pending."""
        adapter = self.adapter(job.scheduler)
        self._last_submit[job.scheduler] = time.monotonic()
        if adapter.queues_itself:
            try:
                self.store.apply([adapter.submit(job), *adapter.dispatch()])
            except StoreError as exc:
                # The job is recorded (the insert committed): it starts once the store takes writes
                # again (a wrapper claims it in the store before running anything). Raising here
                # would invite a second submit of a job that will run anyway.
                log.warning("job %s is recorded but not started yet: %s", job.job_id, exc)
            return
        if float(job.metadata.get("not_before") or 0) > time.time():
            return  # an automatic retry in its backoff: refresh() submits it when the time comes
        if job.depends_on:
            parents = self.store.get_many(job.depends_on)
            same_native = all(p.scheduler == job.scheduler and p.native_id for p in parents)
            if same_native and len(parents) == len(job.depends_on):
                job.metadata["native_dependencies"] = [p.native_id for p in parents]
            else:
                verdict = dependency_verdict(job.dependency_kind, (p.status for p in parents))
                if verdict is not Verdict.READY:
                    return  # refresh() submits it when its parents allow (or cancels it)
        try:
            update = adapter.submit(job)
        except SchedulerError as exc:
            self.store.update(job.job_id, JobStatus.FAILED, source="submit", reason=f"submit failed: {exc}",
                              end_time=utcnow())
            raise SubmitError(f"{job.scheduler} refused job {job.job_id}: {exc}") from None
        self.store.apply([update], poll_due=job.scheduler)

    # -- reads -------------------------------------------------------------------------------

    def get_job(self, job_id: str) -> JobInfo:
        return self.store.get(self.store.resolve(job_id))

    def get_job_status(self, job_id: str) -> JobStatus:
        return self.get_job(job_id).status

    def list_jobs(self, status_filter: JobStatus | str | Iterable[JobStatus | str] | None = None, *,
                  job_type: JobType | str | None = None, scheduler: str | None = None,
                  since: datetime | None = None, until: datetime | None = None,
                  limit: int | None = None) -> list[JobInfo]:
        statuses = None
        if status_filter is not None:
            items = [status_filter] if isinstance(status_filter, (str, JobStatus)) else list(status_filter)
            statuses = [JobStatus.parse(s) for s in items]
        types = [JobType.parse(job_type)] if job_type is not None else None
        return self.store.list(statuses, scheduler=scheduler, job_types=types, since=since, until=until,
                               limit=limit)

    def changes_since(self, rev: int) -> tuple[list[JobInfo], int]:
        """Jobs written after store revision ``rev`` (0: all), and the current revision."""
        return self.store.changed_since(rev)

    def history(self, **filters: Any) -> pd.DataFrame:
        """The project's history as a typed pandas DataFrame (see ``export.to_dataframe`` for
        ``per``, ``since``, ``until``, ``status``, ``job_type`` and ``scheduler``)."""
        from .export import to_dataframe

        return to_dataframe(self, **filters)

    to_dataframe = history

    def iter_history(self, chunk: int = 100_000, **filters: Any) -> Iterator[pd.DataFrame]:
        """The history in DataFrames of about ``chunk`` attempts each (``chunks.iter_history``)."""
        from .chunks import iter_history

        return iter_history(self, chunk=chunk, **filters)

    def poll_states(self) -> dict[str, PollState]:
        return self.store.poll_states()

    def disk_usage(self, max_age: float = 60.0) -> dict[str, Any]:
        """Sizes of data/, resources/, results/... and the volume's free space. Walking a big
        project is slow, so a measurement younger than ``max_age`` seconds (by any process) is reused."""
        cached = self.store.get_meta(DISK_USAGE_META_KEY)
        if cached:
            data = json.loads(cached)
            if time.time() - float(data.get("measured_at", 0)) < max_age:
                return data
        from .core.disk import project_disk_usage, tree_size

        data = project_disk_usage(self.paths.root)
        if self.paths.archive_dir.is_dir():  # what `celline-jobs archive` moved there
            data["folders"][".celline/archive"] = tree_size(self.paths.archive_dir)
        self.store.set_meta(DISK_USAGE_META_KEY, json.dumps(data))
        return data

    def log_path(self, job_id: str) -> Path:
        """The job's log file. Only files inside the project are served (a record's log_file is data).
        An archived job's log is unpacked from its archive (``archive.archived_log_path``)."""
        job = self.get_job(job_id)
        if job.metadata.get("archive"):
            from .archive import archived_log_path

            extracted = archived_log_path(self.paths, job)
            if extracted is not None:
                return extracted
        if job.log_file:
            candidate = Path(job.log_file)
            candidate = (candidate if candidate.is_absolute() else self.paths.root / candidate).resolve()
            if candidate.is_relative_to(self.paths.root):
                return candidate
        return self.paths.log_file(job.job_id)

    def logs(self, job_id: str, tail: int = 100) -> str:
        """The last ``tail`` lines of the job's log (never reads the whole file)."""
        from .core.logs import tail_lines

        return "\n".join(tail_lines(self.log_path(job_id), tail))

    # -- actions -----------------------------------------------------------------------------

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
            from .discover import resubmit

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
        from .schedulers.base import QueueEntry

        entries = self.adapter(scheduler).queue()
        tracked = {j.native_id: j.job_id for j in self.store.list(scheduler=scheduler) if j.native_id}
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

    # -- polling -----------------------------------------------------------------------------

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
        from .core.retry import RetryPolicy, failure_kind

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
        from .core.jobfiles import read_job_progress

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
        from .core.jobfiles import RECONCILE_META_KEY

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


class Poller(threading.Thread):
    """Calls ``monitor.refresh()`` every ``interval`` seconds (default: the smallest poll interval
    of the schedulers in use) and tells listeners which jobs changed. Errors never stop it."""

    def __init__(self, monitor: JobMonitor, interval: float | None = None) -> None:
        super().__init__(name=f"celline-jobs-poller-{monitor.paths.root.name}", daemon=True)
        self.monitor = monitor
        self.interval = interval
        self._stop_event = threading.Event()
        self._listeners: list[Callable[[list[str]], None]] = []
        self._lock = threading.Lock()
        self.ticks = 0
        self.last_error: str | None = None

    def add_listener(self, listener: Callable[[list[str]], None]) -> None:
        with self._lock:
            self._listeners.append(listener)

    def remove_listener(self, listener: Callable[[list[str]], None]) -> None:
        with self._lock:
            if listener in self._listeners:
                self._listeners.remove(listener)

    def stop(self, timeout: float = 5.0) -> None:
        self._stop_event.set()
        if self.is_alive() and threading.current_thread() is not self:
            self.join(timeout)

    @property
    def stopped(self) -> bool:
        return self._stop_event.is_set()

    def _tick_interval(self) -> float:
        if self.interval is not None:
            return self.interval
        names = self.monitor.store.active_schedulers()
        intervals = []
        for name in names:
            try:
                intervals.append(self.monitor.poll_interval(name))
            except InvalidInputError:
                continue
            if self.monitor._capable(name, "settles_from_files"):
                intervals.append(SETTLE_INTERVAL_SECONDS)  # exit-code files: read between polls
        return min(intervals, default=2.0)

    def run(self) -> None:
        while not self._stop_event.is_set():
            changed: list[str] = []
            try:
                changed = self.monitor.refresh()
                self.last_error = None
            except Exception as exc:  # a poller that dies silently would freeze every view
                self.last_error = str(exc)
                log.exception("job poller tick failed")
            self.ticks += 1
            with self._lock:
                listeners = list(self._listeners)
            for listener in listeners:
                try:
                    listener(changed)
                except Exception:
                    log.exception("job poller listener failed")
            self._stop_event.wait(self._tick_interval())


def _check_array_spec(spec: str) -> str:
    """"1-4", "1-10%2", "1,3,5", "0-99:2" (Slurm/PBS array index syntax)."""
    text = str(spec).strip()
    if not re.fullmatch(r"\d+(-\d+(:\d+)?)?(,\d+(-\d+(:\d+)?)?)*(%\d+)?", text):
        raise InvalidInputError(f"invalid array {spec!r}: use indexes like 1-4, 1-10%2 or 1,3,5")
    return text
