"""Reading and writing the small files a job leaves behind: exit code and progress.

Both are written atomically (write + rename) by whoever produces them (the local wrapper, the
batch-script templates, ``progress.report``) and parsed here. Parse functions take text and
raise only ``ParseError``.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from .errors import InvalidInputError, ParseError
from .logs import read_tail_bytes
from .models import Progress, to_utc, utcnow
from .paths import ProjectPaths, atomic_write_text
from .safeio import loads_checked, read_bounded

MAX_EXIT_FILE = 4096  # an exit record is one short JSON line
MAX_PROGRESS_FILE = 256 * 1024  # progress with its details; anything larger is not a progress report
#: The values an exit record may hold: a shell's $? (0-255; PBS adds 256+signal and negative codes
#: for jobs it could not run) and a signal number.
EXIT_CODE_RANGE = (-1024, 1024)
SIGNAL_RANGE = (1, 255)
#: Metadata key of a cluster job whose end was read from its exit-code file before its scheduler
#: had it as ended (the value: when, epoch seconds). The next polls still read the scheduler's own
#: record of it (start, nodes, resource use) and then clear the key.
RECONCILE_META_KEY = "reconcile"


@dataclass(frozen=True)
class ExitRecord:
    exit_code: int | None
    signal: int | None
    end_time: datetime | None
    start_time: datetime | None = None  # batch scripts record when the command started


def format_exit_record(exit_code: int | None, signal: int | None, end_time: datetime | None = None) -> str:
    end = (end_time or utcnow()).timestamp()
    return json.dumps({"exit_code": exit_code, "signal": signal, "end_time": end}) + "\n"


def parse_exit_record(text: str) -> ExitRecord:
    """``{"exit_code": 3, "signal": null, "end_time": 1764355200}`` (times may be ISO); batch
    scripts add ``"start_time"``."""
    data = loads_checked(text, what="exit-code file")
    if not isinstance(data, dict):
        raise ParseError("exit-code file must hold a JSON object")
    exit_code = _optional_int(data.get("exit_code"), "exit_code", EXIT_CODE_RANGE)
    signal = _optional_int(data.get("signal"), "signal", SIGNAL_RANGE)
    if exit_code is None and signal is None:
        raise ParseError("exit-code file has neither exit_code nor signal")
    end_time = _optional_time(data, "end_time")
    start_time = _optional_time(data, "start_time")
    if exit_code is not None and exit_code > 128 and signal is None and data.get("shell"):
        # A shell's $? of 128+N means the command died of signal N.
        signal, exit_code = exit_code - 128, None
    return ExitRecord(exit_code, signal, end_time, start_time)


def _optional_time(data: dict[str, Any], name: str) -> datetime | None:
    try:
        return to_utc(data.get(name))
    except (InvalidInputError, OverflowError, OSError, ValueError):
        raise ParseError(f"exit-code file has a bad {name} {data.get(name)!r}") from None


def _optional_int(value: Any, name: str, bounds: tuple[int, int]) -> int | None:
    if value is None:
        return None
    if (isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value)
            or value != int(value)):
        raise ParseError(f"exit-code file has a bad {name} {str(value)[:40]!r}: expected a whole number")
    low, high = bounds
    if not low <= value <= high:
        raise ParseError(f"exit-code file has an out-of-range {name} {str(value)[:40]}: expected {low} to {high}")
    return int(value)


def _read_small(path: Path, max_bytes: int, what: str) -> str | None:
    """A small job file's text, or None when it is missing or empty (not written yet). A FIFO, a
    device, a symbolic link or an oversized file is a ``ParseError`` (``UnsafeFileError``)."""
    data = read_bounded(path, max_bytes, what=what)
    return data.decode("utf-8", errors="replace") if data and data.strip() else None


def read_exit_file(path: Path) -> ExitRecord | None:
    """The record, or None while the job has not ended (file missing, empty or half-written)."""
    text = _read_small(path, MAX_EXIT_FILE, "exit-code file")
    return None if text is None else parse_exit_record(text)


def write_exit_file(path: Path, exit_code: int | None, signal: int | None) -> None:
    """Never recreates ``logs/``: a job ending after its project was deleted leaves nothing behind."""
    atomic_write_text(path, format_exit_record(exit_code, signal), create_parent=False)


def format_progress(percent: float, stage: str | None, details: dict[str, Any]) -> str:
    """The seed's progress-file shape: progress, stage, details, timestamp."""
    if isinstance(percent, bool) or not isinstance(percent, (int, float)) or not math.isfinite(percent):
        raise InvalidInputError(f"invalid progress {percent!r}: use a number from 0 to 100")
    if not 0 <= percent <= 100:
        raise InvalidInputError(f"invalid progress {percent!r}: use a number from 0 to 100")
    payload = {"progress": percent, "stage": stage, "details": details, "timestamp": utcnow().isoformat()}
    try:
        return json.dumps(payload, default=str) + "\n"
    except ValueError as exc:  # circular details
        raise InvalidInputError(f"progress details cannot be written as JSON: {exc}") from None


def parse_progress(text: str) -> Progress:
    data = loads_checked(text, what="progress file")
    if not isinstance(data, dict):
        raise ParseError("progress file must hold a JSON object")
    percent = data.get("progress", data.get("percent"))
    if percent is not None and (isinstance(percent, bool) or not isinstance(percent, (int, float))
                                or not math.isfinite(percent)):
        raise ParseError(f"progress file has a bad progress value {percent!r}")
    details = data.get("details") or {}
    if not isinstance(details, dict):
        raise ParseError("progress file 'details' must be an object")
    stage = data.get("stage")
    if stage is not None and not isinstance(stage, (str, int, float)):
        raise ParseError("progress file 'stage' must be text")
    try:
        updated = to_utc(data.get("timestamp"))
    except (InvalidInputError, OverflowError, OSError, ValueError):
        updated = None
    return Progress(
        percent=None if percent is None else max(0.0, min(100.0, float(percent))),
        stage=None if stage is None else str(stage)[:500],
        details=details,
        updated_at=updated,
    )


def read_progress_file(path: Path) -> Progress | None:
    text = _read_small(path, MAX_PROGRESS_FILE, "progress file")
    return None if text is None else parse_progress(text)


def read_job_progress(paths: ProjectPaths, job_id: str, current: Progress) -> Progress | None:
    """A running job's progress file, else a tqdm line at the end of its log; None when neither
    says anything new compared with ``current`` (so a poll writes nothing)."""
    try:
        progress = read_progress_file(paths.progress_file(job_id))
    except ParseError:
        progress = None
    if progress is None:
        tail = read_tail_bytes(paths.log_file(job_id), 4096).decode("utf-8", errors="replace")
        progress = parse_tqdm_progress(tail)
        if progress is not None and (progress.percent, progress.stage) == (current.percent, current.stage):
            return None
    return None if progress is None or progress == current else progress


# tqdm writes "desc:  45%|████▌     | 45/100 [00:01<00:01, 30.00it/s]", redrawing with \r.
_TQDM_RE = re.compile(r"(?:^|[\r\n])([^\r\n|]*?)\s*(\d{1,3}(?:\.\d+)?)%\|")


def parse_tqdm_progress(log_tail: str) -> Progress | None:
    """The last tqdm-style "NN%|" progress in the tail of a log, or None."""
    matches = list(_TQDM_RE.finditer(log_tail))
    if not matches:
        return None
    last = matches[-1]
    percent = float(last.group(2))
    if percent > 100:
        return None
    stage = last.group(1).strip().rstrip(":").strip() or None
    return Progress(percent=percent, stage=stage, details={"source": "log"}, updated_at=utcnow())
