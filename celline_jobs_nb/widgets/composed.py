"""The notebook dashboard: JobTable on top; below it the selected job's progress and log."""

from __future__ import annotations

from typing import Any

import ipywidgets

from ._shared import monitor_for
from .fallback import widget_bundle_without_html
from .logtail import LogTail
from .progress import JobProgress
from .table import JobTable, show_with_fallback


class Dashboard(ipywidgets.VBox):
    """``table`` (JobTable), ``progress`` (JobProgress of the selected job) and ``logtail`` (LogTail of
    the selected job), sharing one monitor and one poller. ``close()`` closes all three."""

    def __init__(self, project: Any, *, poll: bool = True, interval: float | None = None,
                 max_log_lines: int = 2000, **kwargs: Any) -> None:
        self.monitor = monitor_for(project)
        self.table = JobTable(self.monitor, poll=poll, interval=interval)
        self.progress = JobProgress(self.monitor, job_ids=None, poll=poll, interval=interval,
                                    layout=ipywidgets.Layout(display="none"))
        self.logtail = LogTail(self.monitor, poll=poll, interval=interval, max_lines=max_log_lines)
        super().__init__(children=[self.table, self.progress, self.logtail], **kwargs)
        self.add_class("celline-jobs-dashboard")
        self.table.observe(self._selection_changed, names="selected")

    def _selection_changed(self, change: dict[str, Any]) -> None:
        job_id = change["new"] or ""
        with self.logtail.hold_sync():  # job id, title and the new log: one message
            self.logtail.job_id = job_id
        if job_id:
            with self.progress.hold_sync():
                self.progress.job_ids = [job_id]
            self.progress.layout.display = None
        else:
            self.progress.layout.display = "none"

    def select(self, job_id: str | None) -> None:
        self.table.select(job_id)

    @property
    def polling(self) -> bool:
        return self.table.polling

    def close(self) -> None:
        for name in ("table", "progress", "logtail"):
            child = self.__dict__.get(name)
            if child is not None:
                child.close()
        super().close()

    def _repr_mimebundle_(self, **kwargs: Any) -> tuple[dict[str, Any], dict[str, Any]] | None:
        bundle = super()._repr_mimebundle_(**kwargs)
        if bundle is None:
            return None
        data, metadata = bundle if isinstance(bundle, tuple) else (bundle, {})
        return widget_bundle_without_html(dict(data), self.table.text_summary()), metadata

    def _ipython_display_(self) -> None:
        """The dashboard, then the plain-HTML copy of its table that saved notebooks show."""
        show_with_fallback(self, self.table)


def dashboard(project: Any, *, poll: bool = True, interval: float | None = None) -> Dashboard:
    """The live dashboard of ``project`` (a path, a celline Project, a light Project or a JobMonitor)."""
    return Dashboard(project, poll=poll, interval=interval)
