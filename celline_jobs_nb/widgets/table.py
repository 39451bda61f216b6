"""JobTable: the live table of a project's jobs, windowed: the kernel sends each view only the rows
it shows.

Protocol (js/src/table.js, js/src/window.js):

- ``window`` (synced dict trait): the first window of the default view — newest first, no filter,
  the first ``initial_rows`` rows — with the chip counts and ``meta``. It travels with the comm's
  open message, so a view draws at once, and is brought up to date at the end of each cell run, so
  a saved notebook holds the current top of the table. Never re-sent per tick.
- A view asks for the rows it shows with a custom message ``{"type": "window", "view", "req",
  "query": {"sort", "dir", "statuses", "text"}, "offset", "limit", "expanded": [ids]}`` (on first
  render, on scroll, sort, filter, chip, expand) and gets ``{"type": "win", "view", "req", ...}``:
  the window's ``ids`` in order, their ``rows``, the rows under expanded ones (``children``), how
  many rows each lists under it (``kids``), the query's ``total`` and the chip ``counts``. Sorting,
  filtering, status chips and grouping are store queries (``store.window``).
- Each poller tick sends one custom message ``{"type": "tick", "seq", "meta", "counts", "ended",
  "views": {view: diff}}``: for each view whose window the tick's changes touch, only the rows that
  changed in it (and its new order, if it moved); ``ended`` lists the jobs that ended in the tick
  (for the notices); ``sel`` the selected job's row when it changed.
- ``detail`` = the selected job's usage figures and its last samples (sparklines), for that one job.

The kernel keeps, per view, its window's rows (at most ``MAX_LIMIT``), the statuses of the active
jobs, and cached counts; a million-job history stays in the store.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from typing import Any

import traitlets

from ..core.errors import CellineJobsError
from ..core.models import JobInfo, JobStatus
from ..store.window import Query, Windows
from ._format import html_snapshot, job_detail, job_row, text_summary
from ._shared import monitor_for
from .base import CellineWidget
from .disk import DISK_REFRESH_SECONDS, DiskUsage
from .fallback import HtmlFallback, widget_bundle_without_html
from .viewport import Viewports, ViewWindow

log = logging.getLogger("celline.job")

#: Rows of the first window (the synced state a view draws before it asks for its own).
INITIAL_ROWS = 60
#: Rows of the plain-HTML copy a saved notebook shows (the newest; the counts cover every job).
FALLBACK_ROWS = 200
MAX_ENDED_PER_TICK = 50


def _now_ms() -> int:
    return int(time.time() * 1000)


class JobTable(DiskUsage, CellineWidget):
    """The jobs of ``project`` (a path, a celline Project, a light Project or a JobMonitor).

    Click a row to select it (``selected``); Cancel and Retry buttons act on the selected job
    after an in-widget confirmation. ``poll=False`` makes a static table (call ``refresh_view``).
    The project's disk usage (``JobMonitor.disk_usage``) is measured in a background thread at
    most every ``disk_interval`` seconds (None: never), so a big project never slows a tick.
    """

    _kind = traitlets.Unicode("table").tag(sync=True)
    title = traitlets.Unicode("").tag(sync=True)
    window = traitlets.Dict().tag(sync=True)
    selected = traitlets.Unicode("").tag(sync=True)
    detail = traitlets.Dict().tag(sync=True)

    def __init__(self, project: Any, *, poll: bool = True, interval: float | None = None,
                 title: str | None = None, initial_rows: int = INITIAL_ROWS,
                 disk_interval: float | None = DISK_REFRESH_SECONDS, **kwargs: Any) -> None:
        self.monitor = monitor_for(project)
        self.disk_interval = disk_interval
        self.initial_rows = max(1, int(initial_rows))
        self._seq = 0
        self._rev = 0
        self._error: str | None = None
        self._last_ok = _now_ms()
        self._opened_ms = time.time() * 1000  # jobs created after this are new to the table
        self._lock = threading.RLock()
        self._disk: dict[str, Any] | None = None
        self._disk_started = float("-inf")  # time.monotonic() of the last measurement started
        self._disk_thread: threading.Thread | None = None
        self._pending_detail: dict[str, Any] | None = None
        self._active: dict[str, tuple[str, str]] = {}  # active jobs: id -> (status, scheduler)
        self._reported: deque[str] = deque(maxlen=500)  # jobs whose end was announced
        self._counted: set[str] = set()  # jobs that were new and ended in one tick: counted once
        self.messages_sent = 0  # updates sent after the widget opened (for tests and benchmarks)
        self.last_tick: dict[str, Any] = {}  # the last tick's message (for tests and benchmarks)
        self._requests: dict[str, dict[str, Any]] = {}  # window requests not answered yet, by view
        self._worker: threading.Thread | None = None
        self.windows = Windows(self.monitor.store)
        self.index_thread = self.windows.index.ensure()  # the window indexes: built once per database
        self.views = Viewports(self.windows)
        self._default = ViewWindow(Query(), 0, self.initial_rows)
        #: The plain-HTML copy a saved notebook shows (see fallback.py), kept current as jobs end.
        self.fallback = HtmlFallback(lambda: (self.html_snapshot(), self.text_summary()))
        window = self._load()
        # The first state travels with the comm_open message: no separate update for the table.
        super().__init__(window=window,
                         title=title if title is not None else f"Jobs of {self.monitor.paths.root}", **kwargs)
        self.on_msg(self._handle_custom)
        self._hook_cell_runs()
        if poll:
            self._start_ticks(self.monitor, interval)
            self._send_tick([], {}, [])  # meta now says "live"

    # -- data ---------------------------------------------------------------------------------

    @property
    def rows(self) -> list[dict[str, Any]]:
        """The rows the views have (each view's window; the first window before any view asked)."""
        with self._lock:
            rows = {r["id"]: r for r in self._default.rows.values()}
            rows.update((r["id"], r) for r in self.views.rows())
            return list(rows.values())

    @property
    def counts(self) -> dict[str, int]:
        """Jobs by status, as the chips count them (earlier attempts of a retried job left out)."""
        return self.windows.counts()

    def _load(self) -> dict[str, Any]:
        """The active jobs' statuses (to see them change) and the default first window."""
        store = self.monitor.store
        try:
            self._rev = store.revision()  # first: a job written while we read comes again in the next tick
            self._active = {j.job_id: (j.status.value, j.scheduler) for j in store.active()}
            self._error = None
        except CellineJobsError as exc:
            self._error = str(exc)
        self._slots = self._local_slots()
        return self._default_state()

    def _default_state(self) -> dict[str, Any]:
        window = self._default
        try:
            window.ids, window.rows, window.seqs, window.loaded = [], {}, [], False
            self.views._read(window, {})
            state = self.views.full(window)
            state["counts"] = self.windows.counts()
        except CellineJobsError as exc:
            self._error = str(exc)
            state = {"query": window.query.wire(), "offset": 0, "ids": [], "rows": [], "kids": {}, "children": {},
                     "total": 0, "counts": {}, "full": True}
        self._seq += 1
        state["seq"] = self._seq
        state["meta"] = self._meta()
        return state

    def open_window(self, view: str, content: dict[str, Any]) -> dict[str, Any]:
        """Answer a view's request for its window (also used by tests)."""
        window = ViewWindow.from_wire(content)
        with self._lock:
            try:
                reply = self.views.open(str(view)[:64], window)
                reply["counts"] = self.windows.counts()
                reply["notice"] = self.windows.notice(window.query) or ""
            except CellineJobsError as exc:
                self._error = str(exc)
                reply = {"ids": [], "rows": [], "kids": {}, "children": {}, "total": 0, "counts": {}, "full": True,
                         "error": str(exc)}
        reply.update(type="win", view=str(view)[:64], req=content.get("req"), seq=self._seq)
        return reply

    def refresh_view(self) -> bool:
        """Read the jobs written since the last call and send what changed in each view (one message)."""
        with self._lock:
            if self._closed:
                return False
            try:
                jobs, rev = self.monitor.changes_since(self._rev)
                self._error = None
                self._last_ok = _now_ms()
            except CellineJobsError as exc:
                jobs, rev, self._error = [], self._rev, str(exc)
            self._rev = rev
            moves, recount, ended = self._statuses(jobs)
            moved = recount or bool(moves)
            if recount:
                self.windows.invalidate()
            elif moves:
                self.windows.adjust(moves)
            selected = self.selected
            for job in jobs:
                if selected and job.job_id == selected:
                    self._stage_detail(job_detail(job))
            try:
                diffs = self.views.tick(jobs, moved) if jobs else {}
                if jobs:
                    self._default_diff(jobs, moved)
            except CellineJobsError as exc:
                self._error, diffs = str(exc), {}
            self._send_tick(jobs, diffs, ended)
        if moved:
            self.fallback.changed()
        else:
            self.fallback.due()
        return True

    def _default_diff(self, jobs: list[JobInfo], moved: bool) -> None:
        """Keep the first window current in the kernel (sent at the end of a cell run, not per tick)."""
        shown = {j.job_id for j in jobs} & set(self._default.rows)
        if moved or shown:
            self.views._read(self._default, {j.job_id: j for j in jobs})

    def _statuses(self, jobs: list[JobInfo]) -> tuple[list[tuple[str | None, str | None, bool]], bool,
                                                       list[dict[str, Any]]]:
        """What the tick did to the counts: rows moved between statuses or added (``(old, new,
        top-level)``), whether only a recount can tell (a job became an earlier attempt), and the
        rows of the jobs that ended in it."""
        moves: list[tuple[str | None, str | None, bool]] = []
        recount = False
        ended: list[dict[str, Any]] = []
        for job in jobs:
            before = self._active.get(job.job_id)
            status = job.status.value
            top = job.array_parent is None
            if before is not None and before[0] != status:
                moves.append((before[0], status, top))
            elif before is None and job.job_id not in self._counted and (
                    not job.status.final or self._created_since_open(job)):
                moves.append((None, status, top))  # a new job (an ended one written again changes no count)
                if job.status.final:
                    self._counted.add(job.job_id)
            if job.status.final:
                self._active.pop(job.job_id, None)
                recent = job.end_time is not None and job.end_time.timestamp() * 1000 >= self._opened_ms - 1000
                if (before is not None or recent) and job.job_id not in self._reported \
                        and len(ended) < MAX_ENDED_PER_TICK:
                    self._reported.append(job.job_id)
                    ended.append(job_row(job))
            else:
                self._active[job.job_id] = (status, job.scheduler)
            if job.metadata.get("retried_by"):
                recount = True  # an earlier attempt now (or again): it leaves the counts
        if len(self._counted) > 100_000:
            self._counted.clear()
            recount = True
        return moves, recount, ended

    def _created_since_open(self, job: JobInfo) -> bool:
        created = job.created_at or job.submit_time
        return created is None or created.timestamp() * 1000 > self._opened_ms

    def _send_tick(self, jobs: list[JobInfo], diffs: dict[str, Any], ended: list[dict[str, Any]]) -> None:
        self._seq += 1
        message: dict[str, Any] = {"type": "tick", "seq": self._seq, "meta": self._meta(), "views": diffs}
        if jobs or diffs:
            message["counts"] = self.windows.counts()
        if ended:
            message["ended"] = ended
        selected = self.selected
        for job in jobs:
            if selected and job.job_id == selected:
                message["sel"] = job_row(job)
        detail, self._pending_detail = self._pending_detail, None
        with self.hold_sync():
            if detail is not None and detail.get("id") == self.selected:
                self.detail = detail
            self._post(message)
        self.last_tick = message
        self.messages_sent += 1

    def _post(self, message: dict[str, Any]) -> None:
        try:
            self.send(message)
        except Exception:  # the comm may be gone (widget closed meanwhile)
            log.debug("could not send a message to the views", exc_info=True)

    # -- the selected job's detail (usage samples for the sparklines) ---------------------------

    def _stage_detail(self, detail: dict[str, Any]) -> None:
        """Send ``detail`` with the next update, if it differs from what the views have."""
        if detail != self.detail:
            self._pending_detail = detail

    def _load_detail(self, job_id: str) -> dict[str, Any]:
        if not job_id:
            return {}
        try:
            return job_detail(self.monitor.get_job(job_id))
        except CellineJobsError:
            return {"id": job_id, "missing": True}

    @traitlets.observe("selected")
    def _selected_changed(self, change: dict[str, Any]) -> None:
        detail = self._load_detail(str(change["new"] or ""))
        with self._lock:
            self._pending_detail = None
            if detail != self.detail:
                self.detail = detail

    def _local_slots(self) -> int | None:
        """How many local jobs may run at once (the view says "no free slot (n/m)")."""
        try:
            return int(self.monitor.adapter("local").max_parallel)  # type: ignore[attr-defined]
        except Exception:  # only shown as a hint
            return None

    def _meta(self) -> dict[str, Any]:
        stale: list[dict[str, Any]] = []
        try:
            active = set(self.monitor.store.active_schedulers())
            for name, state in sorted(self.monitor.poll_states().items()):
                if state.stale and name in active:
                    stale.append({
                        "scheduler": name, "error": state.error,
                        "last_success": int(state.last_success.timestamp() * 1000) if state.last_success else None,
                    })
        except CellineJobsError as exc:
            self._error = self._error or str(exc)
        poller = self._lease.poller if self._lease is not None else None
        error = self._error or (poller.last_error if poller is not None else None)
        self._maybe_refresh_disk()
        meta: dict[str, Any] = {
            "now": _now_ms(), "updated": self._last_ok, "interval": self.poll_interval, "live": self.polling,
            "stale": stale, "error": error,
            "running_local": sum(1 for status, scheduler in self._active.values()
                                 if status in ("running", "queued") and scheduler == "local"),
        }
        if self.windows.index.building:
            meta["indexing"] = True
        if self._disk is not None:
            meta["disk"] = self._disk
        if getattr(self, "_slots", None):
            meta["slots"] = self._slots
        return meta

    # -- views that join late, reloads and saved notebooks ----------------------------------------

    def _hook_cell_runs(self) -> None:
        try:
            from IPython import get_ipython

            shell = get_ipython()
        except ImportError:
            shell = None
        self._shell = shell
        if shell is not None and hasattr(shell, "events"):
            shell.events.register("post_run_cell", self._after_cell)

    def _after_cell(self, *_args: Any) -> None:
        """At the end of each cell run (before the kernel goes idle, so nbclient records it): bring
        the synced first window up to date, in one message, if it changed."""
        with self._lock:
            if self._closed:
                return
            if self.fallback.shown:
                self.refresh_view()  # what the cell changed, so the saved copy below is current
            self.sync_window()
        self.fallback.flush()

    def sync_window(self) -> bool:
        """Set ``window`` to the current first window of the default view, if it changed."""
        with self._lock:
            state = self._default_state()
            old = {k: v for k, v in self.window.items() if k not in ("seq", "meta")}
            if {k: v for k, v in state.items() if k not in ("seq", "meta")} == old:
                return False
            self.window = state
            return True

    def close(self) -> None:
        shell = getattr(self, "_shell", None)
        if shell is not None:
            try:
                shell.events.unregister("post_run_cell", self._after_cell)
            except ValueError:
                pass
            self._shell = None
        super().close()

    # -- actions from the view ------------------------------------------------------------------

    def _handle_custom(self, _widget: Any, content: Any, _buffers: Any = None) -> None:
        if isinstance(content, dict) and content.get("type") == "window":
            # Store reads off the kernel's thread; a view scrolling fast gets only its latest window.
            with self._lock:
                self._requests[str(content.get("view") or "")[:64]] = dict(content)
                if self._worker is None or not self._worker.is_alive():
                    self._worker = threading.Thread(target=self._answer_windows, daemon=True,
                                                    name="celline-jobs-window")
                    self._worker.start()
            return
        if not isinstance(content, dict) or content.get("action") not in ("cancel", "retry", "refresh"):
            return
        # Cancelling waits for the job to end and a refresh may query a cluster: never block the kernel.
        threading.Thread(target=self._run_action, args=(dict(content),), daemon=True,
                         name=f"celline-jobs-{content.get('action')}").start()

    def _answer_windows(self) -> None:
        while True:
            with self._lock:
                if not self._requests or self._closed:
                    self._worker = None
                    return
                view, content = self._requests.popitem()
                # Sent under the lock: a tick's diff of this window always comes after it.
                self._post(self.open_window(view, content))

    def _run_action(self, content: dict[str, Any]) -> None:
        reply = self.handle_action(content)
        try:
            self.send(reply)
        except Exception:  # the comm may be gone (widget closed meanwhile)
            log.debug("could not send the action reply", exc_info=True)

    def handle_action(self, content: dict[str, Any]) -> dict[str, Any]:
        """Run one action message from the view and return the reply (also used by tests)."""
        action = str(content.get("action"))
        job_id = str(content.get("job_id") or "")
        reply: dict[str, Any] = {"type": "reply", "req": content.get("req"), "action": action, "job_id": job_id}
        try:
            if action == "cancel":
                reply.update(self.cancel(job_id))
            elif action == "retry":
                reply.update(self.retry(job_id, str(content.get("resources") or "").strip() or None))
            elif action == "refresh":
                self.monitor.refresh(force=True)
                reply.update(ok=True, message="refreshed")
            else:
                reply.update(ok=False, message=f"unknown action {action!r}")
        except CellineJobsError as exc:
            reply.update(ok=False, message=str(exc))
        except Exception as exc:
            log.exception("widget action %s on %s failed", action, job_id)
            reply.update(ok=False, message=f"{action} failed: {type(exc).__name__}: {exc}")
        self.refresh_view()
        return reply

    def cancel(self, job_id: str) -> dict[str, Any]:
        """Cancel a job; the result as the view shows it: {"ok", "message"}."""
        job = self.monitor.get_job(job_id)
        if job.status.final:
            return {"ok": False, "message": f"{job.job_id} had already ended ({job.status.value}): nothing to cancel"}
        self.monitor.cancel_job(job.job_id)
        status = self.monitor.get_job_status(job.job_id)
        if status is JobStatus.CANCELLED:
            return {"ok": True, "message": f"Cancelled {job.job_id}", "status": status.value}
        if status.final:
            return {"ok": True, "message": f"{job.job_id} ended as {status.value} before the cancel took effect",
                    "status": status.value}
        return {"ok": True, "message": f"Cancel requested for {job.job_id}; it is still {status.value}",
                "status": status.value}

    def retry(self, job_id: str, resources: str | None = None) -> dict[str, Any]:
        """Submit a finished job again (``resources`` like "mem=64G" change the request)."""
        new_id = self.monitor.retry_job(job_id, resources)
        new = self.monitor.get_job(new_id)
        summary = new.resources.summary()
        detail = f" with {summary}" if resources and summary else ""
        return {"ok": True, "message": f"Retried {job_id} as {new_id}{detail}", "new_job_id": new_id}

    def select(self, job_id: str | None) -> None:
        self.selected = job_id or ""

    # -- static representations ---------------------------------------------------------------

    def _newest_rows(self) -> list[dict[str, Any]]:
        try:
            return [job_row(j) for j in self.windows.window(Query(), 0, FALLBACK_ROWS)]
        except CellineJobsError:
            return list(self._default.rows.values())

    def html_snapshot(self) -> str:
        """The saved notebook's copy: the newest FALLBACK_ROWS top-level jobs, counts over all."""
        return html_snapshot(self._newest_rows(), title=self.title or "Celline jobs", disk=self._disk,
                             counts=self._safe_counts())

    def text_summary(self) -> str:
        return text_summary(list(self._default.rows.values()), title=self.title or "Celline jobs", disk=self._disk,
                            counts=self._safe_counts())

    def _safe_counts(self) -> dict[str, int] | None:
        try:
            return self.windows.counts()
        except CellineJobsError:
            return None

    def _repr_mimebundle_(self, **kwargs: Any) -> tuple[dict[str, Any], dict[str, Any]] | None:
        bundle = super()._repr_mimebundle_(**kwargs)
        if bundle is None:
            return None
        data, metadata = bundle
        return widget_bundle_without_html(dict(data), self.text_summary()), metadata

    def _ipython_display_(self) -> None:
        """The widget, then the plain-HTML copy of the table that saved notebooks show."""
        show_with_fallback(self, self)


def show_with_fallback(widget: Any, table: JobTable) -> None:
    from IPython.display import display

    bundle = widget._repr_mimebundle_()
    if bundle is None:
        return
    data, metadata = bundle
    display(data, metadata=metadata, raw=True)
    table.fallback.show()
