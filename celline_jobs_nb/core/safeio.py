"""Reading files we did not write: bounded, non-blocking, regular files only, checked JSON.

Jobs, colleagues and old tools write files the monitor reads (exit-code and progress files, logs,
the seed's jobs.json, settings, celline's scripts). Any of them may be a FIFO (an open would block
forever), a device, a symbolic link out of the project, gigabytes long, or JSON nested a million
levels deep with numbers SQLite cannot hold. Every reader goes through here, so one bad file is a
``ParseError`` for its own job and never a hang or a crash of the poller.
"""

from __future__ import annotations

import errno
import json
import math
import os
import stat
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import ParseError

if TYPE_CHECKING:
    import logging

#: The largest integer any value read from a project file may hold (SQLite's INTEGER is 64-bit).
MAX_SAFE_INT = 2**53
#: JSON nesting deeper than this is not a file we or the seed wrote.
MAX_JSON_DEPTH = 32


class UnsafeFileError(ParseError):
    """A project file that is not a regular file, is a symbolic link, or is larger than allowed."""


_OPEN_FLAGS = os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC | getattr(os, "O_NOCTTY", 0)


def open_regular(path: Path) -> int | None:
    """A read-only descriptor of ``path``, or None when it does not exist.

    Never blocks (O_NONBLOCK: a FIFO opens at once and is then refused), never follows a symbolic
    link in the last component (a job cannot point its log at ``/etc/shadow``), and refuses
    anything but a regular file. Directories the project owner linked (``logs -> /scratch/...``)
    are followed: only the file itself is checked."""
    try:
        fd = os.open(path, _OPEN_FLAGS)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise UnsafeFileError(f"{path.name} is a symbolic link; not read") from None
        if exc.errno in (errno.EACCES, errno.EPERM):
            raise UnsafeFileError(f"{path.name} is not readable: permission denied") from None
        if exc.errno == errno.EISDIR:
            raise UnsafeFileError(f"{path.name} is a directory, not a file") from None
        raise UnsafeFileError(f"{path.name} cannot be opened: {exc.strerror}") from None
    try:
        mode = os.fstat(fd).st_mode
    except OSError as exc:
        os.close(fd)
        raise UnsafeFileError(f"{path.name} cannot be read: {exc.strerror}") from None
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise UnsafeFileError(f"{path.name} is {_kind_of(mode)}, not a regular file; not read")
    return fd


def _kind_of(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def read_bounded(path: Path, max_bytes: int, *, what: str = "file") -> bytes | None:
    """The whole content of a small project file, or None when it does not exist.

    A file larger than ``max_bytes`` is refused, not cut: half a JSON document is not the document."""
    fd = open_regular(path)
    if fd is None:
        return None
    try:
        size = os.fstat(fd).st_size
        if size > max_bytes:
            raise UnsafeFileError(f"{what} {path.name} is {size} bytes, more than the {max_bytes} allowed")
        chunks, remaining = [], max_bytes + 1
        while remaining > 0:
            chunk = os.read(fd, min(remaining, 1024 * 1024))
            if not chunk:
                break
            chunks.append(chunk)
            remaining -= len(chunk)
    except OSError as exc:
        raise UnsafeFileError(f"{what} {path.name} cannot be read: {exc.strerror}") from None
    finally:
        os.close(fd)
    data = b"".join(chunks)
    if len(data) > max_bytes:  # it grew while we read it
        raise UnsafeFileError(f"{what} {path.name} is more than the {max_bytes} bytes allowed")
    return data


def read_head(path: Path, max_bytes: int) -> bytes | None:
    """At most the first ``max_bytes`` of a regular file (a script's header); None when missing."""
    fd = open_regular(path)
    if fd is None:
        return None
    try:
        return os.pread(fd, max_bytes, 0)
    except OSError as exc:
        raise UnsafeFileError(f"{path.name} cannot be read: {exc.strerror}") from None
    finally:
        os.close(fd)


def read_tail(path: Path, max_bytes: int) -> tuple[bytes, int]:
    """The last ``max_bytes`` of a regular file and its size; (b"", 0) when it does not exist."""
    fd = open_regular(path)
    if fd is None:
        return b"", 0
    try:
        size = os.fstat(fd).st_size
        start = max(0, size - max_bytes)
        return os.pread(fd, max_bytes, start), size
    except OSError as exc:
        raise UnsafeFileError(f"{path.name} cannot be read: {exc.strerror}") from None
    finally:
        os.close(fd)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows here")


def _checked_int(text: str) -> int:
    if len(text.lstrip("-")) > 16:
        raise ValueError(f"number {text[:24]}... is too large")
    value = int(text)
    if abs(value) > MAX_SAFE_INT:
        raise ValueError(f"number {value} is too large")
    return value


def _checked_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value) or abs(value) > MAX_SAFE_INT:
        raise ValueError(f"number {text[:24]} is out of range")
    return value


def loads_checked(text: str | bytes, *, what: str, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """JSON from an untrusted file: no NaN or Infinity, no number beyond +-2**53, no nesting
    deeper than ``max_depth``. Raises only ``ParseError``."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    try:
        data = json.loads(text, parse_constant=_reject_constant, parse_int=_checked_int,
                          parse_float=_checked_float)
    except RecursionError:
        raise ParseError(f"{what} is nested too deeply to be read") from None
    except ValueError as exc:
        raise ParseError(f"{what} is not valid JSON: {str(exc)[:200]}") from None
    if _depth_exceeds(data, max_depth):
        raise ParseError(f"{what} is nested more than {max_depth} levels deep")
    return data


def _depth_exceeds(data: Any, limit: int) -> bool:
    """Without recursion: the value came from a file and may be arbitrarily deep."""
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict):
            if depth > limit:
                return True
            stack.extend((v, depth + 1) for v in value.values())
        elif isinstance(value, list):
            if depth > limit:
                return True
            stack.extend((v, depth + 1) for v in value)
    return False


def read_json_file(path: Path, max_bytes: int, *, what: str) -> Any | None:
    """A small JSON file's value; None when the file is missing or empty (not written yet)."""
    data = read_bounded(path, max_bytes, what=what)
    if data is None or not data.strip():
        return None
    return loads_checked(data, what=what)


_warned: set[tuple[str, str]] = set()
_MAX_WARNED = 10_000


def warn_once(logger: logging.Logger, job_id: str, message: str) -> None:
    """Log a bad file's warning once per job and message, not on every poll (each second)."""
    key = (job_id, message)
    if key in _warned:
        return
    if len(_warned) >= _MAX_WARNED:
        _warned.clear()
    _warned.add(key)
    logger.warning("job %s: %s", job_id, message)
