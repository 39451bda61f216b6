"""What the widgets of one kernel share: one JobMonitor per project and one Poller per monitor.

Every widget that wants ticks holds a ``TickLease``. The first lease on a monitor starts its
poller; releasing the last one stops it — unless the poller was already running before (someone
called ``monitor.start_polling()`` themselves), then it is left alone. Displaying a widget twice
adds views, not leases, so it changes nothing here. At interpreter exit (kernel shutdown) every
poller this module started is stopped. No anywidget import here.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..monitor import JobMonitor, Poller

log = logging.getLogger("celline.job")

Listener = Callable[[list[str]], None]

_lock = threading.RLock()
_monitors: dict[Path, JobMonitor] = {}


def monitor_for(project: Any) -> JobMonitor:
    """The shared JobMonitor of ``project`` (a JobMonitor, a path, a celline or light Project)."""
    if isinstance(project, JobMonitor):
        return project
    from ..core.projects import project_path

    path = project_path(project)
    with _lock:
        monitor = _monitors.get(path)
        if monitor is None:
            monitor = JobMonitor(path)
            _monitors[path] = monitor
        return monitor


class TickLease:
    """A subscription to a monitor's poller ticks; ``release()`` is idempotent."""

    def __init__(self, hub: _PollerHub, listener: Listener) -> None:
        self._hub = hub
        self.listener = listener
        self.released = False

    @property
    def poller(self) -> Poller | None:
        return self._hub.poller

    @property
    def interval(self) -> float:
        return self._hub.interval()

    def release(self) -> None:
        if not self.released:
            self.released = True
            self._hub.release(self)


class _PollerHub:
    def __init__(self, monitor: JobMonitor) -> None:
        self.monitor = monitor
        self.poller: Poller | None = None
        self.leases: list[TickLease] = []
        self.owned = False

    def interval(self) -> float:
        poller = self.poller
        if poller is not None and poller.interval is not None:
            return float(poller.interval)
        try:
            names = self.monitor.store.active_schedulers()
            return min((self.monitor.poll_interval(n) for n in names), default=2.0)
        except Exception:  # an interval is only shown to the user; never fail for it
            return 2.0

    def acquire(self, listener: Listener, interval: float | None) -> TickLease:
        with _lock:
            existing = _running_poller(self.monitor)
            if existing is None:
                self.poller = self.monitor.start_polling(interval)
                self.owned = True
                for other in self.leases:  # the old poller was stopped behind our back
                    self.poller.add_listener(other.listener)
            else:
                if self.poller is not existing:
                    self.owned = False  # started by someone else: never stop it for them
                self.poller = existing
            lease = TickLease(self, listener)
            self.leases.append(lease)
            self.poller.add_listener(listener)
            return lease

    def release(self, lease: TickLease) -> None:
        stop = False
        with _lock:
            if lease in self.leases:
                self.leases.remove(lease)
            poller = self.poller
            if poller is not None:
                poller.remove_listener(lease.listener)
            if not self.leases and self.owned and poller is not None:
                self.poller = None
                self.owned = False
                stop = True
        if stop:
            # Outside the lock: stop() joins the thread, which may be finishing a listener call.
            if _running_poller(self.monitor) is poller:
                self.monitor.stop_polling()
            else:
                poller.stop()


_hubs: dict[int, _PollerHub] = {}


def _running_poller(monitor: JobMonitor) -> Poller | None:
    poller = monitor.poller
    if poller is not None and not poller.stopped:
        return poller
    return None


def subscribe(monitor: JobMonitor, listener: Listener, interval: float | None = None) -> TickLease:
    """Call ``listener(changed_ids)`` after every poll of ``monitor`` until the lease is released."""
    with _lock:
        hub = _hubs.get(id(monitor))
        if hub is None or hub.monitor is not monitor:
            hub = _PollerHub(monitor)
            _hubs[id(monitor)] = hub
        return hub.acquire(listener, interval)


def active_leases(monitor: JobMonitor) -> int:
    with _lock:
        hub = _hubs.get(id(monitor))
        return len(hub.leases) if hub is not None and hub.monitor is monitor else 0


class IntervalThread(threading.Thread):
    """Ticks for a widget without a monitor (a LogTail on a plain file)."""

    def __init__(self, interval: float, callback: Callable[[], None], name: str = "celline-jobs-ticker") -> None:
        super().__init__(name=name, daemon=True)
        self.interval = max(0.2, float(interval))
        self.callback = callback
        self._stop_event = threading.Event()
        _threads.add(self)

    def run(self) -> None:
        while not self._stop_event.wait(self.interval):
            try:
                self.callback()
            except Exception:
                log.exception("widget ticker failed")

    def stop(self, timeout: float = 2.0) -> None:
        self._stop_event.set()
        _threads.discard(self)
        if self.is_alive() and threading.current_thread() is not self:
            self.join(timeout)


_threads: set[IntervalThread] = set()


def shutdown() -> None:
    """Stop every poller and ticker this module started (the kernel is exiting)."""
    with _lock:
        hubs = list(_hubs.values())
        threads = list(_threads)
    for hub in hubs:
        for lease in list(hub.leases):
            lease.released = True
        with _lock:
            hub.leases.clear()
            poller, owned = hub.poller, hub.owned
            hub.poller, hub.owned = None, False
        if poller is not None and owned:
            poller.stop(timeout=2.0)
    for thread in threads:
        thread.stop(timeout=1.0)


if os.environ.get("CELLINE_JOBS_NO_ATEXIT") != "1":
    atexit.register(shutdown)
