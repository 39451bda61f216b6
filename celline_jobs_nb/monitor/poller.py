"""The background thread that calls ``JobMonitor.refresh`` and tells listeners what changed."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from ..core.errors import InvalidInputError

if TYPE_CHECKING:
    from . import JobMonitor

log = logging.getLogger("celline.job")

#: While cluster jobs run, the background poller looks at their exit-code files this often
#: (cheap: a stat per job); scheduler polls keep their own, slower pace.
SETTLE_INTERVAL_SECONDS = 1.0


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
