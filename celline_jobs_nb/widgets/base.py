"""The base of the three widgets: the shipped bundle, ticks from the shared poller, and closing."""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

import anywidget
import traitlets

from ..monitor import JobMonitor
from ._shared import IntervalThread, TickLease, subscribe

log = logging.getLogger("celline.job")

STATIC = Path(__file__).parent / "static"


class CellineWidget(anywidget.AnyWidget):
    """An anywidget whose view lives in ``static/widget.js`` (one bundle; ``_kind`` picks the view).

    Subclasses implement ``refresh_view()``: read what changed and push it in one update. It runs
    after every poll of the project's shared poller (a background thread), so cells keep running.
    """

    _esm = STATIC / "widget.js"
    _css = STATIC / "widget.css"
    _kind = traitlets.Unicode("").tag(sync=True)

    # Plain attributes (not traits); class defaults so subclasses may use them before __init__ ends.
    _lease: TickLease | None = None
    _ticker: IntervalThread | None = None
    _closed: bool = False

    def __init__(self, **kwargs: Any) -> None:
        if "_lock" not in self.__dict__:
            self._lock = threading.RLock()
        super().__init__(**kwargs)

    # -- ticks -------------------------------------------------------------------------------

    def _start_ticks(self, monitor: JobMonitor | None, interval: float | None = None) -> None:
        """Follow ``monitor``'s poller, or tick on our own thread every ``interval`` s without one."""
        if self._closed or self._lease is not None or self._ticker is not None:
            return
        if monitor is not None:
            self._lease = subscribe(monitor, self._on_tick, interval)
        else:
            self._ticker = IntervalThread(interval or 1.0, lambda: self._on_tick([]),
                                          name=f"celline-jobs-{self._kind}-ticker")
            self._ticker.start()

    def _stop_ticks(self) -> None:
        lease, ticker = self._lease, self._ticker
        self._lease, self._ticker = None, None
        if lease is not None:
            lease.release()
        if ticker is not None:
            ticker.stop()

    @property
    def polling(self) -> bool:
        """Whether this widget is receiving ticks (a poller or its own ticker)."""
        return (self._lease is not None and not self._lease.released) or self._ticker is not None

    @property
    def poll_interval(self) -> float | None:
        if self._lease is not None:
            return self._lease.interval
        if self._ticker is not None:
            return self._ticker.interval
        return None

    def _on_tick(self, _changed: list[str]) -> None:
        if self._closed:
            return
        try:
            self.refresh_view()
        except Exception:  # a failing view must never stop the shared poller
            log.exception("%s: refresh failed", type(self).__name__)

    def refresh_view(self) -> bool:
        """Push what changed since the last call; True when something was sent."""
        raise NotImplementedError

    # -- life cycle --------------------------------------------------------------------------

    @traitlets.observe("comm")
    def _watch_comm_close(self, change: dict[str, Any]) -> None:
        comm = change.get("new")
        on_close = getattr(comm, "on_close", None)
        if callable(on_close):
            on_close(self._comm_closed)  # the front-end closed the model

    def _comm_closed(self, _msg: Any = None) -> None:
        self._closed = True
        self._stop_ticks()

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        """Stop following the poller (it stops when no widget uses it) and close the comm."""
        self._closed = True
        self._stop_ticks()
        super().close()
