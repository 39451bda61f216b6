"""A failed job's last error line, from a bounded read of the end of its log (the "why" the
dashboard shows after "failed · exit 3")."""

from __future__ import annotations

import re
from pathlib import Path

from ..core.logs import read_tail_bytes
from ..core.models import JobInfo, JobStatus

__all__ = ["ERROR_LINE_CHARS", "ERROR_TAIL_BYTES", "error_line", "last_error_line"]


def _clip(text: str | None, limit: int) -> str | None:
    if text is None:
        return None
    return text if len(text) <= limit else text[: limit - 1] + "…"


#: How much of the end of a log is read for the error line (a bounded tail read, never the file).
ERROR_TAIL_BYTES = 16 * 1024
ERROR_LINE_CHARS = 240
_ERROR_WORDS = re.compile(r"error|exception|traceback|fatal", re.IGNORECASE)
_END_WORDS = re.compile(r"halted|killed|abort", re.IGNORECASE)  # R's "Execution halted" follows the error
_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|[\x00-\x08\x0b-\x1f\x7f]")
_error_cache: dict[tuple[str, int | None], str | None] = {}
_ERROR_CACHE_MAX = 20_000


def last_error_line(text: str) -> str | None:
    """The last line of ``text`` that mentions an error (error, exception, Traceback, fatal), else
    the last that says halted/killed/abort, else its last non-empty line; ANSI escapes and control
    characters removed."""
    last_nonempty = ended = None
    for raw in reversed(text.replace("\r", "\n").split("\n")):
        line = _ANSI.sub("", raw).strip()
        if not line:
            continue
        if last_nonempty is None:
            last_nonempty = line
        if _ERROR_WORDS.search(line):
            return _clip(line, ERROR_LINE_CHARS)
        if ended is None and _END_WORDS.search(line):
            ended = line
    return _clip(ended or last_nonempty, ERROR_LINE_CHARS)


def error_line(job: JobInfo) -> str | None:
    """A failed job's last error line from the tail of its log (read once per ended job)."""
    if job.status is not JobStatus.FAILED or not job.log_file:
        return None
    key = (job.job_id, int(job.end_time.timestamp() * 1000) if job.end_time else None)
    if key in _error_cache:
        return _error_cache[key]
    data = read_tail_bytes(Path(job.log_file), ERROR_TAIL_BYTES)
    start = data.find(b"\n") + 1 if len(data) >= ERROR_TAIL_BYTES else 0  # the first line may be cut
    line = last_error_line(data[start:].decode("utf-8", errors="replace"))
    if len(_error_cache) >= _ERROR_CACHE_MAX:
        _error_cache.clear()
    _error_cache[key] = line
    return line
