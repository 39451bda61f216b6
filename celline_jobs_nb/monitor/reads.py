"""Reading the project: jobs, history (DataFrames), poll states, disk usage and logs. Never calls a
scheduler."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..core.models import JobInfo, JobStatus, JobType
from ..store.sqlite import PollState
from .base import MonitorBase

if TYPE_CHECKING:
    import pandas as pd


DISK_USAGE_META_KEY = "disk_usage"


class ReadsMixin(MonitorBase):
    """The read side of ``JobMonitor``: the store and the project's files."""

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
        from ..export import to_dataframe

        return to_dataframe(self, **filters)

    to_dataframe = history

    def iter_history(self, chunk: int = 100_000, **filters: Any) -> Iterator[pd.DataFrame]:
        """The history in DataFrames of about ``chunk`` attempts each (``chunks.iter_history``)."""
        from ..chunks import iter_history

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
        from ..core.disk import project_disk_usage, tree_size

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
            from ..archive import archived_log_path

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
        from ..core.logs import tail_lines

        return "\n".join(tail_lines(self.log_path(job_id), tail))
