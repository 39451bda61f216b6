"""JobProgress: percent bar, stage, details and ETA of one job, a set of jobs, or the running ones."""

from __future__ import annotations

import threading
import time
from typing import Any

import traitlets

from ..core.errors import CellineJobsError
from ..core.models import JobInfo, JobStatus
from ._format import epoch_ms
from ._shared import monitor_for
from .base import CellineWidget

MAX_DETAIL_CHARS = 200


def progress_item(job: JobInfo) -> dict[str, Any]:
    progress = job.progress
    details = {str(k)[:60]: str(v)[:MAX_DETAIL_CHARS] for k, v in list(progress.details.items())[:12]
               if k != "source"}
    item: dict[str, Any] = {
        "id": job.job_id, "name": job.name[:500], "status": job.status.value,
        "pct": None if progress.percent is None else round(float(progress.percent), 1),
        "stage": progress.stage, "details": details,
        "start": epoch_ms(job.start_time), "end": epoch_ms(job.end_time), "pupd": epoch_ms(progress.updated_at),
    }
    return {k: v for k, v in item.items() if v is not None}


class JobProgress(CellineWidget):
    """Progress of ``job_ids`` in ``project``; with no ids, of the running jobs (at most ``limit``)."""

    _kind = traitlets.Unicode("progress").tag(sync=True)
    title = traitlets.Unicode("").tag(sync=True)
    job_ids = traitlets.List(traitlets.Unicode()).tag(sync=True)
    progress = traitlets.Dict().tag(sync=True)

    def __init__(self, project: Any, job_ids: list[str] | None = None, *, poll: bool = True,
                 interval: float | None = None, limit: int = 20, empty_text: str | None = None,
                 **kwargs: Any) -> None:
        self.monitor = monitor_for(project)
        self.limit = limit
        self.empty_text = empty_text
        self._lock = threading.RLock()
        self._items: list[dict[str, Any]] | None = None
        self.messages_sent = 0
        super().__init__(**kwargs)
        self.job_ids = [str(j) for j in job_ids or []]
        self.refresh_view()
        if poll:
            self._start_ticks(self.monitor, interval)

    @traitlets.observe("job_ids")
    def _ids_changed(self, _change: dict[str, Any]) -> None:
        self.refresh_view()

    def _jobs(self) -> list[JobInfo]:
        if self.job_ids:
            found = {j.job_id: j for j in self.monitor.store.get_many(list(self.job_ids))}
            return [found[i] for i in self.job_ids if i in found]
        return self.monitor.list_jobs(JobStatus.RUNNING)[: self.limit]

    def refresh_view(self) -> bool:
        with self._lock:
            if self._closed:
                return False
            try:
                items = [progress_item(j) for j in self._jobs()]
            except CellineJobsError:
                return False
            if items == self._items:
                return False
            self._items = items
            if self.job_ids:
                empty = self.empty_text or "The job is not in the store."
                title = "Progress" if len(items) != 1 else f"Progress of {items[0].get('name', items[0]['id'])}"
            else:
                empty = self.empty_text or "No job is running."
                title = "Running jobs"
            with self.hold_sync():
                self.title = title
                self.progress = {"now": int(time.time() * 1000), "items": items, "empty": empty}
            self.messages_sent += 1
            return True
