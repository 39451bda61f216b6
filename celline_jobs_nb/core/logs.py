"""Reading logs without ever loading a whole file: the last lines, and following new bytes.

A log is written by the job, so it is untrusted: it is opened through ``safeio.open_regular``
(never blocks on a FIFO, never follows a symbolic link the job put in its place)."""

from __future__ import annotations

import codecs
import io
import os
from dataclasses import dataclass
from pathlib import Path

from .safeio import UnsafeFileError, open_regular, read_tail

TAIL_BLOCK = 64 * 1024


def read_tail_bytes(path: Path, max_bytes: int = TAIL_BLOCK) -> bytes:
    """The last ``max_bytes`` of a file (b"" when it does not exist or is not a regular file:
    callers use this for hints such as a tqdm line, where nothing is the safe answer)."""
    try:
        return read_tail(path, max_bytes)[0]
    except UnsafeFileError:
        return b""


def tail_lines(path: Path, lines: int = 50, max_bytes: int = 8 * 1024 * 1024) -> list[str]:
    """The last ``lines`` lines, reading backwards in blocks; never more than ``max_bytes``.
    [] when the file does not exist; ``UnsafeFileError`` when it is a FIFO, device or symlink."""
    if lines <= 0:
        return []
    fd = open_regular(path)
    if fd is None:
        return []
    with os.fdopen(fd, "rb") as handle:
        handle.seek(0, os.SEEK_END)
        end = handle.tell()
        position, chunks, newlines = end, [], 0
        while position > 0 and newlines <= lines and end - position < max_bytes:
            step = min(TAIL_BLOCK, position, max_bytes - (end - position))
            position -= step
            handle.seek(position)
            chunk = handle.read(step)
            chunks.append(chunk)
            newlines += chunk.count(b"\n")
    data = b"".join(reversed(chunks))
    text = data.decode("utf-8", errors="replace").replace("\r\n", "\n")
    result = text.split("\n")
    if result and result[-1] == "":
        result.pop()
    if position > 0 and result:
        result.pop(0)  # the first line was cut by the block boundary
    return result[-lines:]


@dataclass
class LogChunk:
    text: str
    bytes_read: int
    reset: bool  # the file was truncated or replaced: earlier text is gone
    error: str | None = None  # the file cannot be followed (a FIFO, a symbolic link...): why


FINGERPRINT_BYTES = 64


class LogFollower:
    """Reads only the bytes appended since the last call. Copes with truncation and rotation
    (a new inode, or the same inode reused: the last bytes read must still be where they were),
    invalid UTF-8 (replaced, multi-byte characters split across reads kept whole)
    and very large files (starts ``start_tail`` bytes before the end, never at byte 0 of a GB log).
    """

    def __init__(self, path: Path, start_tail: int = TAIL_BLOCK, max_read: int = 1024 * 1024) -> None:
        self.path = Path(path)
        self.start_tail = start_tail
        self.max_read = max_read
        self.offset: int | None = None
        self.inode: int | None = None
        self.total_bytes_read = 0
        self._fingerprint = b""  # the last bytes read, to notice a file replaced under the same name
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def read_new(self) -> LogChunk:
        try:
            fd = open_regular(self.path)
        except UnsafeFileError as exc:
            return LogChunk("", 0, False, str(exc))
        if fd is None:
            if self.offset is not None:  # deleted while followed: start again when it comes back
                self.offset, self.inode = None, None
                self._decoder.reset()
                return LogChunk("", 0, True)
            return LogChunk("", 0, False)
        with os.fdopen(fd, "rb") as handle:
            return self._read_from(handle, os.fstat(fd))

    def _read_from(self, handle: io.BufferedReader, stat: os.stat_result) -> LogChunk:
        reset = False
        if self.offset is None:
            self.offset = max(0, stat.st_size - self.start_tail)
            self.inode = stat.st_ino
        elif stat.st_ino != self.inode or stat.st_size < self.offset:
            reset = True
        if not reset and self.offset and stat.st_size == self.offset and self._fingerprint:
            return LogChunk("", 0, False)  # nothing new: no read at all
        try:
            if not reset and self._fingerprint:
                handle.seek(self.offset - len(self._fingerprint))
                if handle.read(len(self._fingerprint)) != self._fingerprint:
                    reset = True
            if reset:
                self.offset, self.inode, self._fingerprint = 0, stat.st_ino, b""
                self._decoder.reset()
            handle.seek(self.offset)
            data = handle.read(min(self.max_read, max(0, stat.st_size - self.offset)))
        except OSError:
            return LogChunk("", 0, reset)
        self._fingerprint = (self._fingerprint + data)[-FINGERPRINT_BYTES:]
        self.offset += len(data)
        self.total_bytes_read += len(data)
        return LogChunk(self._decoder.decode(data), len(data), reset)
