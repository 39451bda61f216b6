"""Submitting: checking a new job, recording it, and handing it to its scheduler when its
dependencies allow."""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..core.dependencies import Verdict, check_kind, dependency_verdict
from ..core.errors import InvalidInputError, SchedulerError, StoreError, SubmitError
from ..core.models import JobInfo, JobStatus, JobType, new_job_id, utcnow, validate_env
from ..core.resources import Resources
from .base import MonitorBase

if TYPE_CHECKING:
    from ..core.retry import RetryPolicy

log = logging.getLogger("celline.job")

MAX_NAME_LENGTH = 1000


class SubmitMixin(MonitorBase):
    """``submit_job``: record a job and hand it over."""

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
            from ..core.retry import RetryPolicy

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


def _check_array_spec(spec: str) -> str:
    """"1-4", "1-10%2", "1,3,5", "0-99:2" (Slurm/PBS array index syntax)."""
    text = str(spec).strip()
    if not re.fullmatch(r"\d+(-\d+(:\d+)?)?(,\d+(-\d+(:\d+)?)?)*(%\d+)?", text):
        raise InvalidInputError(f"invalid array {spec!r}: use indexes like 1-4, 1-10%2 or 1,3,5")
    return text
