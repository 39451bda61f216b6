"""What the server keeps per project: one JobMonitor, one Poller shared by every client, the events
batched per tick, and one watch per followed log shared by all its followers.

Clients never make the server call a scheduler: REST reads go to the store, and only the project's
poller (``JobMonitor.start_polling``) talks to schedulers, at its own polite pace. The poller thread
computes each tick's batch; the IOLoop sends it (``IOLoop.add_callback`` is the one thread-safe entry).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from tornado.ioloop import IOLoop, PeriodicCallback

from ..core.errors import CellineJobsError, InvalidInputError
from ..core.logs import LogChunk, LogFollower
from ..core.models import JobInfo
from ..monitor import JobMonitor

log = logging.getLogger("celline.job")

#: Followed logs are looked at (one stat for all followers of a log) this often.
LOG_TICK_SECONDS = 0.1
#: ...and their job's status this often, to close the streams once it is final and drained.
LOG_STATUS_SECONDS = 1.0
#: At most this much is read for one follower per tick (a follower catching up on a big log
#: continues on the next ticks; the IOLoop is never held up for long).
LOG_MAX_READ = 1024 * 1024
MAX_EVENTS_JOBS = 5000

Send = Callable[[dict[str, Any]], None]


class ProjectError(CellineJobsError):
    """A ``project`` parameter the server refuses: ``status`` is the HTTP status to answer."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def resolve_project(root_dir: str | os.PathLike[str], project: str | None) -> Path:
    """The project directory ``project`` names, relative to the server's root directory.
    Absolute paths and anything resolving outside the root (``..``, symbolic links out) are 403;
    a directory without a job store is 404."""
    if project is None or project == "":
        raise ProjectError(400, "missing ?project=: give the project's path relative to the server's root directory")
    if "\0" in project or len(project) > 4096:
        raise ProjectError(400, "invalid project path: give a path relative to the server's root directory")
    if os.path.isabs(project) or project.startswith("~"):
        raise ProjectError(403, f"project {project[:200]!r} is outside the server's root directory: "
                                "give a path relative to it")
    root = Path(root_dir).expanduser().resolve()
    path = (root / project).resolve()
    if not path.is_relative_to(root):
        raise ProjectError(403, f"project {project[:200]!r} is outside the server's root directory: "
                                "give a path relative to it")
    from ..core.paths import ProjectPaths

    if not path.is_dir() or not ProjectPaths.of(path).db.is_file():
        raise ProjectError(404, f"no celline-jobs project at {project[:200]!r}: submit a job there first "
                                "(or check the path, relative to the server's root directory)")
    return path


def job_json(job: JobInfo) -> dict[str, Any]:
    """JobInfo as the API shows it: the seed's fields and ours, ISO 8601 UTC times. A job's
    environment values stay on the server (their names are kept)."""
    data = job.to_dict()
    meta = data.get("metadata") or {}
    if isinstance(meta.get("env"), dict):
        meta["env"] = sorted(meta["env"])
    data["runtime_seconds"] = job.runtime_seconds
    data["archived_at"] = meta.get("archived_at")
    return data


def progress_json(job: JobInfo) -> dict[str, Any]:
    """The seed's getProgress shape."""
    progress = job.progress
    return {"job_id": job.job_id, "progress": progress.percent, "stage": progress.stage,
            "details": dict(progress.details),
            "timestamp": progress.updated_at.isoformat() if progress.updated_at else None}


def _now() -> str:
    return datetime.now(timezone.utc).isoformat()


class LogStream:
    """One follower of one log: reads only the bytes appended since it last looked."""

    def __init__(self, path: Path, start: int, send: Send, close: Callable[[], None]) -> None:
        # start >= 0: from that byte; start < 0: the last -start bytes (a page opening a long log)
        self.follower = LogFollower(path, start_tail=-start if start < 0 else 1 << 62, max_read=LOG_MAX_READ)
        if start > 0:
            try:
                st = os.stat(path)
            except OSError:
                st = None
            if st is not None:
                self.follower.offset = min(start, st.st_size)
                self.follower.inode = st.st_ino
        self.send = send
        self.close = close
        self.behind = True  # read at the next tick whatever the stat says
        self.error_sent = False

    def pump(self, size: int | None, inode: int | None) -> bool:
        """Read what is new (if anything); True when this follower has caught up with ``size``."""
        follower = self.follower
        if not self.behind and follower.offset is not None and follower.offset == size and follower.inode == inode:
            return True
        chunk: LogChunk = follower.read_new()
        if chunk.error:
            if not self.error_sent:
                self.error_sent = True
                self.send({"type": "error", "message": chunk.error})
            return True
        if chunk.reset:
            self.send({"type": "reset", "offset": follower.offset or 0})
        if chunk.text or chunk.bytes_read:
            self.send({"type": "log", "text": chunk.text, "offset": follower.offset,
                       "bytes_read": follower.total_bytes_read})
        self.behind = chunk.bytes_read >= LOG_MAX_READ
        return not self.behind and (size is None or follower.offset == size)


class LogWatch:
    """Every follower of one job's log: one stat per tick for all of them."""

    def __init__(self, hub: ProjectHub, job_id: str, path: Path) -> None:
        self.hub = hub
        self.job_id = job_id
        self.path = path
        self.streams: set[LogStream] = set()
        self.final = False
        self._status_due = 0.0
        self._timer = PeriodicCallback(self._tick, LOG_TICK_SECONDS * 1000)

    def add(self, stream: LogStream) -> None:
        self.streams.add(stream)
        if not self._timer.is_running():
            self._timer.start()
        IOLoop.current().add_callback(self._tick)

    def remove(self, stream: LogStream) -> None:
        self.streams.discard(stream)
        if not self.streams:
            self._timer.stop()
            self.hub.drop_watch(self)

    def _tick(self) -> None:
        loop_time = IOLoop.current().time()
        if not self.final and loop_time >= self._status_due:
            self._status_due = loop_time + LOG_STATUS_SECONDS
            try:
                self.final = self.hub.monitor.get_job(self.job_id).status.final
            except CellineJobsError as exc:
                log.debug("log watch of %s: status not read: %s", self.job_id, exc)
        try:
            st = os.stat(self.path)
            size, inode = st.st_size, st.st_ino
        except OSError:
            size = inode = None
        final = self.final
        for stream in list(self.streams):
            try:
                drained = stream.pump(size, inode)
            except Exception:  # one follower's trouble never stops the others
                log.exception("log stream of %s failed", self.job_id)
                drained = True
            if final and drained:
                stream.send({"type": "end", "offset": stream.follower.offset or 0})
                self.streams.discard(stream)
                stream.close()
        if not self.streams:
            self._timer.stop()
            self.hub.drop_watch(self)


class ProjectHub:
    """One project's monitor, its poller (started on first use, shared by every client) and the
    subscribers of its events WebSocket."""

    def __init__(self, root: Path, loop: IOLoop) -> None:
        self.root = root
        self.loop = loop
        self.monitor = JobMonitor(root)
        self.subscribers: set[Send] = set()
        self.watches: dict[str, LogWatch] = {}
        self._seen: dict[str, tuple[str, Any, Any, Any]] = {}
        self._rev = self.monitor.store.revision()
        self._tick_lock = threading.Lock()
        self.poller = self.monitor.start_polling()
        self.poller.add_listener(self._on_tick)

    # -- events -------------------------------------------------------------------------------

    def _on_tick(self, _changed: list[str]) -> None:
        """In the poller thread: what changed in the store since the last tick (whoever wrote it)."""
        if not self.subscribers:
            self._rev = self.monitor.store.revision()
            return
        with self._tick_lock:
            jobs, rev = self.monitor.changes_since(self._rev)
            self._rev = rev
            message = self.batch(jobs)
        if message is not None:
            self.loop.add_callback(self._broadcast, message)

    def batch(self, jobs: list[JobInfo]) -> dict[str, Any] | None:
        events: list[dict[str, Any]] = []
        for job in jobs[:MAX_EVENTS_JOBS]:
            p = job.progress
            key = (job.status.value, p.percent, p.stage, p.updated_at)
            before = self._seen.get(job.job_id)
            self._seen[job.job_id] = key
            if before is None or before[0] != key[0]:
                events.append({"kind": "status", "job_id": job.job_id, "status": job.status.value,
                               "previous_status": before[0] if before else None, "reason": job.reason})
            if before is None or before[1:] != key[1:]:
                if p.percent is not None or p.stage is not None:
                    events.append({"kind": "progress", **progress_json(job)})
        if not jobs:
            return None
        return {"type": "changes", "timestamp": _now(), "events": events,
                "jobs": [job_json(j) for j in jobs[:MAX_EVENTS_JOBS]], "truncated": len(jobs) > MAX_EVENTS_JOBS}

    def _broadcast(self, message: dict[str, Any]) -> None:
        for send in list(self.subscribers):
            try:
                send(message)
            except Exception:
                log.debug("events subscriber gone", exc_info=True)
                self.subscribers.discard(send)

    def subscribe(self, send: Send) -> None:
        if not self.subscribers:
            self._rev = self.monitor.store.revision()
        self.subscribers.add(send)

    def unsubscribe(self, send: Send) -> None:
        self.subscribers.discard(send)

    # -- logs ---------------------------------------------------------------------------------

    def follow(self, job_id: str, path: Path, stream: LogStream) -> LogWatch:
        watch = self.watches.get(job_id)
        if watch is None:
            watch = self.watches[job_id] = LogWatch(self, job_id, path)
        watch.add(stream)
        return watch

    def drop_watch(self, watch: LogWatch) -> None:
        if self.watches.get(watch.job_id) is watch and not watch.streams:
            del self.watches[watch.job_id]

    def close(self) -> None:
        self.poller.remove_listener(self._on_tick)
        self.monitor.stop_polling()


_hubs: dict[Path, ProjectHub] = {}
_hubs_lock = threading.Lock()


def hub_for(root: Path) -> ProjectHub:
    """The one hub of a project in this server (created on first use, on the IOLoop's thread)."""
    with _hubs_lock:
        hub = _hubs.get(root)
        if hub is None:
            try:
                hub = _hubs[root] = ProjectHub(root, IOLoop.current())
            except InvalidInputError as exc:
                raise ProjectError(404, str(exc)) from None
        return hub


def close_all() -> None:
    with _hubs_lock:
        hubs = list(_hubs.values())
        _hubs.clear()
    for hub in hubs:
        hub.close()
