"""The project's disk usage for the JobTable: measured in a background thread at most every
``disk_interval`` seconds (``JobMonitor.disk_usage``), so a big project never slows a tick."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from ._format import disk_wire

log = logging.getLogger("celline.job")

DISK_REFRESH_SECONDS = 60.0


class DiskUsage:
    """Mixed into JobTable, whose monitor and ``_closed`` it uses."""

    monitor: Any
    disk_interval: float | None
    _closed: bool
    _disk: dict[str, Any] | None
    _disk_started: float
    _disk_thread: threading.Thread | None

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

