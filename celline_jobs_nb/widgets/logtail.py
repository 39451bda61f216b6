"""LogTail: follows one log file (a job's, or any path), sending only the lines that are new.

It reads with ``core.logs.LogFollower``: only bytes appended since the last read, starting near
the end of a large file, coping with truncation, rotation and invalid UTF-8. The kernel keeps at
most ``max_lines`` lines. Wire protocol (see js/src/logbuffer.js): ``snapshot`` = ``{"gen",
"lines"}`` and ``tail`` = ``{"gen", "seq", "lines", "partial", "info"}`` with every line appended
since the snapshot; the snapshot is replaced (one message with both) when the tail reaches half
the buffer, when the job changes, and when the file is truncated or replaced.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import deque
from pathlib import Path
from typing import Any

import traitlets

from ..core.errors import CellineJobsError
from ..core.logs import LogFollower
from ..monitor import JobMonitor
from ._shared import monitor_for
from .base import CellineWidget

log = logging.getLogger("celline.job")

MAX_LINE_CHARS = 4000
START_TAIL_BYTES = 256 * 1024
MAX_READS_PER_TICK = 8
SKIP_AHEAD_BYTES = 32 * 1024 * 1024
_MISSING_NOTICES = ("waiting for the log file", "no log:")


def clean_line(line: str) -> str:
    """What a terminal would show for one line: text after the last carriage return, no NULs,
    at most MAX_LINE_CHARS characters. ANSI colour codes are kept (the view renders them)."""
    line = line.rstrip("\r")
    if "\r" in line:
        parts = [p for p in line.split("\r") if p]
        line = parts[-1] if parts else ""
    line = line.replace("\x00", "")
    if len(line) > MAX_LINE_CHARS:
        line = line[:MAX_LINE_CHARS] + " …[line cut]"
    return line


class LogTail(CellineWidget):
    """Follow ``job_id``'s log in ``project``, or the file ``path``.

    ``follow=False`` pauses reading (nothing is sent while paused; the lines written meanwhile
    come when following resumes). Set ``job_id`` to switch jobs.
    """

    _kind = traitlets.Unicode("logtail").tag(sync=True)
    job_id = traitlets.Unicode("").tag(sync=True)
    path = traitlets.Unicode("").tag(sync=True)
    title = traitlets.Unicode("").tag(sync=True)
    follow = traitlets.Bool(True).tag(sync=True)
    max_lines = traitlets.Int(2000).tag(sync=True)
    snapshot = traitlets.Dict().tag(sync=True)
    tail = traitlets.Dict().tag(sync=True)

    def __init__(self, project: Any = None, job_id: str = "", *, path: str | os.PathLike[str] | None = None,
                 max_lines: int = 2000, poll: bool = True, interval: float | None = None,
                 start_bytes: int = START_TAIL_BYTES, **kwargs: Any) -> None:
        self.monitor: JobMonitor | None = monitor_for(project) if project is not None else None
        self.start_bytes = start_bytes
        self._lock = threading.RLock()
        self._follower: LogFollower | None = None
        self._lines: deque[str] = deque(maxlen=max(10, int(max_lines)))
        self._tail_lines: list[str] = []
        self._pending = ""
        self._gen = 0
        self._seq = 0
        self._notice: str | None = None
        self._file_path: Path | None = None
        self._drop_first = False
        self.messages_sent = 0
        super().__init__(max_lines=max(10, int(max_lines)), **kwargs)
        if path is not None and not job_id:
            self.path = str(path)
        elif job_id:
            self.job_id = str(job_id)
        else:
            self._open(None, "")
        if poll:
            self._start_ticks(self.monitor, interval if interval is not None or self.monitor else 1.0)

    # -- which file ----------------------------------------------------------------------------

    @traitlets.observe("job_id")
    def _job_changed(self, change: dict[str, Any]) -> None:
        job_id = change["new"]
        if not job_id:
            self._open(None, "")
            return
        if self.monitor is None:
            self._open(None, "", notice="this LogTail has no project: give it a path instead of a job id")
            return
        try:
            job = self.monitor.get_job(job_id)
            path = self.monitor.log_path(job.job_id)
        except CellineJobsError as exc:
            self._open(None, f"Log of {job_id}", notice=str(exc))
            return
        self._open(path, f"Log of {job.name} ({job.job_id})")

    @traitlets.observe("path")
    def _path_changed(self, change: dict[str, Any]) -> None:
        if change["new"] and not self.job_id:
            self._open(Path(change["new"]).expanduser(), f"Log {change['new']}")

    @traitlets.observe("follow")
    def _follow_changed(self, change: dict[str, Any]) -> None:
        if change["new"]:
            self.refresh_view()

    def _open(self, path: Path | None, title: str, notice: str | None = None) -> None:
        with self._lock:
            self._file_path = path
            self._follower = LogFollower(path, start_tail=self.start_bytes) if path is not None else None
            self._drop_first = False
            if path is not None:
                try:
                    self._drop_first = path.stat().st_size > self.start_bytes  # we start mid-line
                except OSError:
                    pass
            self._lines.clear()
            self._tail_lines = []
            self._pending = ""
            self._notice = notice
            self._read(publish=False)
            with self.hold_sync():
                self.title = title
                self._publish(full=True)

    # -- reading -------------------------------------------------------------------------------

    def _split(self, text: str) -> list[str]:
        data = self._pending + text
        parts = data.split("\n")
        self._pending = parts.pop()
        if self._drop_first and parts:
            parts.pop(0)
            self._drop_first = False
        lines = [clean_line(p) for p in parts]
        if len(self._pending) > MAX_LINE_CHARS * 4:  # a huge line without newline: show it cut
            lines.append(clean_line(self._pending))
            self._pending = ""
        return lines

    def _read(self, publish: bool = True) -> bool:
        follower = self._follower
        if follower is None:
            return False
        new_lines: list[str] = []
        reset = False
        pending_before, notice_before = self._pending, self._notice
        path = self._file_path
        if path is not None and follower.offset is not None:
            try:
                behind = path.stat().st_size - follower.offset
            except OSError:
                behind = 0
            if behind > SKIP_AHEAD_BYTES:  # far behind (a log growing by GBs): jump to the end
                follower = self._follower = LogFollower(path, start_tail=self.start_bytes)
                self._drop_first, self._pending = True, ""
                self._notice = f"skipped {behind // (1024 * 1024)} MB of log output to keep up"
        for _ in range(MAX_READS_PER_TICK):
            chunk = follower.read_new()
            if chunk.error:  # a FIFO or a link out of the project where the log belongs
                self._notice = chunk.error
                break
            if chunk.reset:
                reset = True
                new_lines, self._pending, self._drop_first = [], "", False
                self._lines.clear()
                self._notice = "the log file was truncated or replaced: showing it from its start"
            if chunk.text:
                new_lines.extend(self._split(chunk.text))
            if chunk.bytes_read < follower.max_read:
                break
        if not follower.path.exists() and follower.offset is None:
            if self._notice is None or self._notice.startswith(_MISSING_NOTICES):
                self._notice = self._missing_notice()
        elif self._notice and self._notice.startswith(_MISSING_NOTICES):
            self._notice = None
        self._lines.extend(new_lines)
        if reset:
            self._tail_lines = []
            if publish:
                self._publish(full=True)
            return True
        self._tail_lines.extend(new_lines)
        if not publish:
            return bool(new_lines)
        if new_lines or self._pending != pending_before or self._notice != notice_before:
            self._publish(full=len(self._tail_lines) > self.max_lines // 2)
            return True
        return False

    def _missing_notice(self) -> str:
        if self.monitor is not None and self.job_id:
            try:
                status = self.monitor.get_job_status(self.job_id)
            except CellineJobsError:
                status = None
            if status is not None and status.final:
                return f"no log: the job ended ({status.value}) without writing one"
        return "waiting for the log file: the job has not written to it yet"

    def refresh_view(self) -> bool:
        """Read what was appended since the last call and send it (nothing while paused)."""
        with self._lock:
            if self._closed or not self.follow:
                return False
            return self._read()

    @property
    def lines(self) -> list[str]:
        """The buffered lines (at most ``max_lines``), oldest first."""
        with self._lock:
            return list(self._lines)

    # -- sending -------------------------------------------------------------------------------

    def _info(self) -> dict[str, Any]:
        follower = self._follower
        return {
            "bytes_read": follower.total_bytes_read if follower else 0,
            "notice": self._notice,
            "exists": bool(self._file_path and self._file_path.exists()),
        }

    def _publish(self, full: bool) -> None:
        self._seq += 1
        with self.hold_sync():
            if full:
                self._gen += 1
                self._tail_lines = []
                self.snapshot = {"gen": self._gen, "lines": list(self._lines)}
            self.tail = {"gen": self._gen, "seq": self._seq, "lines": list(self._tail_lines),
                         "partial": clean_line(self._pending), "info": self._info()}
        self.messages_sent += 1
