"""JobTable: the live table of a project's jobs.

Wire protocol (synced dict traits, see js/src/rows.js):

- ``snapshot`` = ``{"gen", "seq", "rows", "meta"}``: every row. Sent when the widget is created and
  again only at a compaction (below).
- ``delta`` = ``{"gen", "seq", "base", "rows", "meta"}``: every row changed after tick ``base`` (up
  to tick ``seq``), plus ``meta`` (poll time, staleness, the project's disk usage). Set once per
  poller tick: one comm message per tick, whatever the number of jobs. While ``base`` is the
  snapshot's ``seq`` the delta is cumulative, so any view rebuilds the table from the two traits.
- ``pending`` = ``{"gen", "seq", "rows"}``: every row changed since the snapshot, as of tick
  ``seq``. Only needed once ``base`` has moved past the snapshot (below); it is not sent per tick
  but put in the full state a view gets on (re)load, and sent once at the end of each cell run
  (so a notebook saved by nbclient holds the whole table).
- ``detail`` = the selected job's usage figures and its last samples (sparklines): sent for that
  one job only, in the same message as the tick's delta.

Each tick the diff's "stale" rows (in the diff but not changed in this tick) are counted:

- more than ``max(compact_min, compact_fraction * rows)``, or more than ``fold_fraction`` of the
  table changed since the snapshot: a new snapshot, sent with an empty delta in one message
  (``hold_sync``);
- else more than ``compact_min`` (large tables only): ``base`` moves to the previous tick and the
  delta carries this tick's rows only. A live view applies deltas in order; a view that lacks
  ticks up to ``base`` (a new display of a live widget) asks for them with a custom
  ``{"type": "resync"}`` message and gets ``{"type": "rows", "gen", "seq", "rows"}``.

Rows that change on every tick — the running jobs, whose CPU and memory are sampled each poll —
never force a compaction, since a new snapshot would not make the next diff any smaller.

Toasts for jobs that end while the table is shown are the view's job (js/src/notify.js): it sees
every status change in the diffs it applies.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import traitlets

from ..core.errors import CellineJobsError
from ..core.models import JobStatus
from ._format import disk_wire, html_snapshot, job_detail, job_row, text_summary
from ._shared import monitor_for
from .base import CellineWidget
from .fallback import HtmlFallback, widget_bundle_without_html
from .history import HistoryPages

log = logging.getLogger("celline.job")

DISK_REFRESH_SECONDS = 60.0
#: Ended jobs loaded when the table opens, and per "load older" request: with every active job,
#: the table holds these, never a long history (a million ended jobs stay in the store).
HISTORY_PAGE = 500


def _now_ms() -> int:
    return int(time.time() * 1000)


class JobTable(HistoryPages, CellineWidget):
    """The jobs of ``project`` (a path, a celline Project, a light Project or a JobMonitor).

    Click a row to select it (``selected``); Cancel and Retry buttons act on the selected job
    after an in-widget confirmation. ``poll=False`` makes a static table (call ``refresh_view``).
    The project's disk usage (``JobMonitor.disk_usage``) is measured in a background thread at
    most every ``disk_interval`` seconds (None: never), so a big project never slows a tick.
    """

    _kind = traitlets.Unicode("table").tag(sync=True)
    title = traitlets.Unicode("").tag(sync=True)
    snapshot = traitlets.Dict().tag(sync=True)
    delta = traitlets.Dict().tag(sync=True)
    pending = traitlets.Dict().tag(sync=True)
    selected = traitlets.Unicode("").tag(sync=True)
    detail = traitlets.Dict().tag(sync=True)

    def __init__(self, project: Any, *, poll: bool = True, interval: float | None = None,
                 title: str | None = None, compact_min: int = 100, compact_fraction: float = 0.1,
                 fold_fraction: float = 0.5, history_page: int = HISTORY_PAGE,
                 disk_interval: float | None = DISK_REFRESH_SECONDS, **kwargs: Any) -> None:
        self.monitor = monitor_for(project)
        self.history_page = max(1, int(history_page))
        self._older: dict[str, int] = {}  # ended jobs not loaded, by status
        self._cursor: int | None = None  # row number the next page of history starts below
        self.compact_min = compact_min
        self.compact_fraction = compact_fraction
        self.fold_fraction = fold_fraction
        self.disk_interval = disk_interval
        self._rows: dict[str, dict[str, Any]] = {}
        self._delta_ids: set[str] = set()  # changed after tick ``_base_seq``
        self._since_snapshot: set[str] = set()  # changed after tick ``_snap_seq``
        self._gen = 0
        self._seq = 0
        self._snap_seq = 0
        self._base_seq = 0
        self._rev = 0
        self._error: str | None = None
        self._last_ok = _now_ms()
        self._lock = threading.RLock()
        self._disk: dict[str, Any] | None = None
        self._disk_started = float("-inf")  # time.monotonic() of the last measurement started
        self._disk_thread: threading.Thread | None = None
        self._pending_detail: dict[str, Any] | None = None
        self.messages_sent = 0  # updates sent after the widget opened (for tests and benchmarks)
        #: The plain-HTML copy a saved notebook shows (see fallback.py), kept current as jobs end.
        self.fallback = HtmlFallback(lambda: (self.html_snapshot(), self.text_summary()))
        snapshot, delta = self._load()
        # The first state travels with the comm_open message: no separate update for the table.
        super().__init__(snapshot=snapshot, delta=delta,
                         title=title if title is not None else f"Jobs of {self.monitor.paths.root}", **kwargs)
        self.on_msg(self._handle_custom)
        self._hook_cell_runs()
        if poll:
            self._start_ticks(self.monitor, interval)
            self._publish(full=False)  # meta now says "live"

    # -- data ---------------------------------------------------------------------------------

    @property
    def rows(self) -> list[dict[str, Any]]:
        """The current rows, as the views have them."""
        with self._lock:
            return list(self._rows.values())

    def _load(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """Every active job and the newest ended ones (a page); ticks then read what changed."""
        store = self.monitor.store
        try:
            rev = store.revision()  # first: a job written while we read comes again in the next tick
            jobs = store.active()
            page, self._cursor = store.ended_page(None, self.history_page)
            jobs.extend(reversed(page))
            ended = {s: n for s, n in store.status_counts().items() if s.final}
            for job in page:
                ended[job.status] = ended.get(job.status, 0) - 1
            self._older = {s.value: n for s, n in ended.items() if n > 0}
            self._error = None
        except CellineJobsError as exc:
            jobs, rev, self._error = [], 0, str(exc)
        self._rows = {job.job_id: job_row(job) for job in jobs}
        self._slots = self._local_slots()
        self._rev = rev
        self._gen, self._seq = 1, 1
        self._snap_seq = self._base_seq = self._seq
        meta = self._meta()
        return ({"gen": self._gen, "seq": self._seq, "rows": list(self._rows.values()), "meta": meta},
                {"gen": self._gen, "seq": self._seq, "base": self._base_seq, "rows": [], "meta": meta})

    def refresh_view(self) -> bool:
        """Read the jobs written since the last call and send them (one update)."""
        with self._lock:
            if self._closed:
                return False
            try:
                jobs, rev = self.monitor.changes_since(self._rev)
                self._error = None
                self._last_ok = _now_ms()
            except CellineJobsError as exc:
                jobs, rev, self._error = [], self._rev, str(exc)
            changed_now: set[str] = set()
            status_changed = False
            selected = self.selected
            for job in jobs:
                row = job_row(job)
                old = self._rows.get(job.job_id)
                if old is None or old.get("status") != row.get("status"):
                    status_changed = True
                if old != row:
                    self._rows[job.job_id] = row
                    self._delta_ids.add(job.job_id)
                    self._since_snapshot.add(job.job_id)
                    changed_now.add(job.job_id)
                if selected and job.job_id == selected:
                    self._stage_detail(job_detail(job))
            self._rev = rev
            stale = len(self._delta_ids - changed_now)
            threshold = max(self.compact_min, int(len(self._rows) * self.compact_fraction))
            # Once the delta no longer repeats them, rows changed since the snapshot cost nothing per
            # tick; a new snapshot when they are a big part of the table keeps resyncs and saved state small.
            folded = self._base_seq != self._snap_seq
            full = stale > threshold or (folded and len(self._since_snapshot) > self.fold_fraction * len(self._rows))
            if not full and stale > self.compact_min:
                # Large table, many rows changed once: stop re-sending them (the views have them).
                self._base_seq = self._seq
                self._delta_ids = changed_now
            self._publish(full=full)
        if status_changed:
            self.fallback.changed()
        else:
            self.fallback.due()
        return True

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

    # -- disk usage --------------------------------------------------------------------------

    @property
    def disk(self) -> dict[str, Any] | None:
        """The last disk usage measured (the form the view gets), or None."""
        return self._disk

    def refresh_disk(self, wait: bool = False) -> None:
        """Measure the project's disk usage now (in a thread unless ``wait``); the next update
        carries it."""
        if wait:
            self._measure_disk()
            return
        thread = self._disk_thread
        if thread is not None and thread.is_alive():
            return
        self._disk_started = time.monotonic()
        self._disk_thread = threading.Thread(target=self._measure_disk, daemon=True, name="celline-jobs-disk")
        self._disk_thread.start()

    def _measure_disk(self) -> None:
        self._disk_started = time.monotonic()
        try:
            self._disk = disk_wire(self.monitor.disk_usage())
        except Exception as exc:  # disk figures are a nicety: never break the table for them
            log.debug("disk usage of %s failed: %s", self.monitor.paths.root, exc)

    def _maybe_refresh_disk(self) -> None:
        if self.disk_interval is None or self._closed:
            return
        if time.monotonic() - self._disk_started >= self.disk_interval:
            self.refresh_disk()

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
        }
        if self._disk is not None:
            meta["disk"] = self._disk
        if getattr(self, "_slots", None):
            meta["slots"] = self._slots
        if self._older:
            meta["older"] = {"total": self.older, "counts": dict(self._older), "page": self.history_page}
        return meta

    def _publish(self, full: bool) -> None:
        meta = self._meta()
        self._seq += 1
        with self.hold_sync():
            if full:
                self._gen += 1
                self._delta_ids.clear()
                self._since_snapshot.clear()
                self._snap_seq = self._base_seq = self._seq
                self.snapshot = {"gen": self._gen, "seq": self._seq, "rows": list(self._rows.values()), "meta": meta}
            self.delta = {"gen": self._gen, "seq": self._seq, "base": self._base_seq,
                          "rows": [self._rows[i] for i in self._delta_ids], "meta": meta}
            detail, self._pending_detail = self._pending_detail, None
            if detail is not None and detail.get("id") == self.selected:
                self.detail = detail
        self.messages_sent += 1

    # -- views that join late, reloads and saved notebooks ----------------------------------------

    def _pending_state(self) -> dict[str, Any]:
        """Every row changed since the snapshot (empty while the delta itself carries them)."""
        with self._lock:
            if self._base_seq == self._snap_seq:
                return {}
            return {"gen": self._gen, "seq": self._seq, "rows": [self._rows[i] for i in self._since_snapshot]}

    def get_state(self, key: Any = None, drop_defaults: bool = False) -> dict[str, Any]:
        with self._lock:
            state = super().get_state(key, drop_defaults)
            if key is None and "_rows" in self.__dict__:  # the whole state (a view (re)loads): complete it
                state["pending"] = self._pending_state()
            return state

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
        """At the end of each cell run (before the kernel goes idle, so nbclient records it): make
        the synced state complete, in one message, if the delta no longer is."""
        with self._lock:
            if self._closed:
                return
            if self.fallback.shown:
                self.refresh_view()  # what the cell changed, so the saved copy below is current
            pending = self._pending_state()
            if pending and pending != self.pending:
                self.pending = pending
        self.fallback.flush()

    def close(self) -> None:
        shell = getattr(self, "_shell", None)
        if shell is not None:
            try:
                shell.events.unregister("post_run_cell", self._after_cell)
            except ValueError:
                pass
            self._shell = None
        super().close()

    def _send_rows(self) -> None:
        """Answer a view's resync: every row changed since the snapshot, as of the current tick."""
        with self._lock:
            reply = {"type": "rows", "gen": self._gen, "seq": self._seq,
                     "rows": [self._rows[i] for i in self._since_snapshot]}
            try:
                self.send(reply)
            except Exception:  # the comm may be gone
                log.debug("could not send the rows for a resync", exc_info=True)

    # -- actions from the view ------------------------------------------------------------------

    def _handle_custom(self, _widget: Any, content: Any, _buffers: Any = None) -> None:
        if isinstance(content, dict) and content.get("type") == "resync":
            self._send_rows()
            return
        if isinstance(content, dict) and content.get("type") == "more":
            threading.Thread(target=self.load_older, daemon=True, name="celline-jobs-history").start()
            return
        if isinstance(content, dict) and content.get("type") == "sort":
            threading.Thread(target=self.top_older, args=(str(content.get("key") or "")[:40],
                                                          content.get("dir") == "desc"),
                             daemon=True, name="celline-jobs-history").start()
            return
        if isinstance(content, dict) and content.get("type") == "query":
            statuses = content.get("statuses")
            statuses = [str(s) for s in statuses[:20]] if isinstance(statuses, list) else []
            threading.Thread(target=self.search_older, args=(str(content.get("text") or ""), statuses),
                             daemon=True, name="celline-jobs-history").start()
            return
        if not isinstance(content, dict) or content.get("action") not in ("cancel", "retry", "refresh"):
            return
        # Cancelling waits for the job to end and a refresh may query a cluster: never block the kernel.
        threading.Thread(target=self._run_action, args=(dict(content),), daemon=True,
                         name=f"celline-jobs-{content.get('action')}").start()

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

    def html_snapshot(self) -> str:
        return html_snapshot(self.rows, title=self.title or "Celline jobs", disk=self._disk, older=self.older)

    def text_summary(self) -> str:
        return text_summary(self.rows, title=self.title or "Celline jobs", disk=self._disk, older=self.older)

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
