"""The state every part of ``JobMonitor`` shares: the project, its store and settings, and the scheduler
adapters (created on first use; capability flags, poll intervals)."""

from __future__ import annotations

import os
import threading
import time
from typing import TYPE_CHECKING

from ..core.errors import InvalidInputError, StoreError
from ..core.paths import ProjectPaths
from ..core.settings import MAX_PARALLEL_META_KEY, JobsSettings
from ..store import outbox
from ..store.backup import backup_if_due
from ..store.legacy import LEGACY_SCHEDULER, import_legacy_json
from ..store.sqlite import JobStore

if TYPE_CHECKING:
    from ..notify import Notifier
    from ..schedulers.base import SchedulerAdapter, SchedulerContext
    from .poller import Poller

FAST_POLL_WINDOW_SECONDS = 60.0  # after a submit, cluster adapters poll at their fast interval this long


class MonitorBase:
    """The project, its store and settings, and its scheduler adapters."""

    def __init__(self, project_path: str | os.PathLike[str] = ".", *, max_parallel: int | None = None,
                 poll_intervals: dict[str, float] | None = None) -> None:
        self.paths = ProjectPaths.of(project_path)
        if not self.paths.root.is_dir():
            raise InvalidInputError(f"project directory {self.paths.root} does not exist: create it or pass another")
        self.settings = JobsSettings.load(self.paths)
        self.store = JobStore(self.paths, database_mode=self.settings.database_mode)
        #: Why this process can only read the project (None: it may write). A colleague without
        #: write access still lists, shows, reports and watches; nothing is imported, backed up,
        #: polled or announced from here.
        self.read_only = self.store.read_only
        if self.read_only is None:
            import_legacy_json(self.store)
            backup_if_due(self.store)
        self._context: SchedulerContext | None = None
        self._adapters: dict[str, SchedulerAdapter] = {}
        self._adapters_lock = threading.Lock()
        self._poll_intervals = {**self.settings.poll_interval, **(poll_intervals or {})}
        self._last_submit: dict[str, float] = {}
        self._ended_rev = self.store.revision()  # ends recorded by other processes are looked at after this
        self._local_ran, self._ended_look = False, float("-inf")
        self._poller: Poller | None = None
        self.notifier: Notifier | None = None
        if self.settings.notify.enabled and self.read_only is None:
            from ..notify import Notifier  # smtplib and urllib load only for projects that notify

            self.notifier = Notifier(self.settings.notify, self.store)
        elif self.read_only is None:
            outbox.unconfigure(self.store)  # no notifier: no outbox rows (one read when none were kept)
        limit = max_parallel if max_parallel is not None else self.settings.max_parallel
        if limit is not None:
            if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
                raise InvalidInputError(f"invalid max_parallel {max_parallel!r}: use a whole number >= 1")
            if self.store.get_meta(MAX_PARALLEL_META_KEY) != str(limit) and self.read_only is None:
                self.store.set_meta(MAX_PARALLEL_META_KEY, str(limit))

    def _require_write(self, action: str) -> None:
        if self.read_only is not None:
            raise StoreError(f"read-only: {self.read_only}; {action} needs write access to the project "
                             "(ask its owner, or work on a copy)")

    def adapter(self, name: str) -> SchedulerAdapter:
        with self._adapters_lock:
            if name not in self._adapters:
                from ..schedulers import SchedulerContext, create

                if self._context is None:
                    self._context = SchedulerContext(self.paths, self.store,
                                                     {"pbs_server": self.settings.execution.pbs_server,
                                                      "sge": self.settings.sge})
                self._adapters[name] = create(name, self._context)
            return self._adapters[name]

    def _capable(self, name: str, flag: str) -> bool:
        """Whether the named scheduler's adapter has a capability flag (schedulers/base.py);
        False for the legacy import and for names no adapter answers to."""
        if name == LEGACY_SCHEDULER:
            return False
        try:
            return bool(getattr(self.adapter(name), flag, False))
        except InvalidInputError:
            return False

    def poll_interval(self, scheduler: str) -> float:
        """Seconds between polls: the user's choice or the adapter's default, never below its floor;
        cluster adapters poll faster for a minute after a submit."""
        adapter = self.adapter(scheduler)
        chosen = max(adapter.min_poll_interval, self._poll_intervals.get(scheduler, adapter.default_poll_interval))
        recent = time.monotonic() - self._last_submit.get(scheduler, -1e9) < FAST_POLL_WINDOW_SECONDS
        if recent and adapter.fast_poll_interval is not None:
            chosen = min(chosen, adapter.fast_poll_interval)  # the one exception to the floor
        return chosen

    @property
    def scheduler_calls(self) -> dict[str, int]:
        """Scheduler commands run by this monitor, per scheduler (a politeness metric)."""
        return {name: adapter.calls for name, adapter in self._adapters.items()}
