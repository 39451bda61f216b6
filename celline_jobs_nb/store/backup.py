"""Backups of the job database and recovery from a corrupted one.

Creating (``create_backup``, ``backup_if_due``, ``prune_backups``): a monitor asks at most once a
day for a consistent copy into ``.celline/backups/jobs-<UTC time>.db``, made with SQLite's online
backup API and never on the caller's path: a small database is copied by a thread of the calling
process, a big one (above ``INLINE_MAX_BYTES``) by a detached low-priority process, so even a
short CLI command that happens to be the first of the day returns at once and the copy still
completes after it. One lock file (``flock``, released by the kernel if the copier dies) lets one
copier run at a time. A copy that fails SQLite's quick check is discarded (it would otherwise push
the good copies out). Retention is size-aware: the newest two copies, plus the newest of each of
the last ``WEEKS`` weeks while all copies together stay under ``MAX_TOTAL_BYTES`` (a project of a
million jobs, ~1 GB a copy, keeps two).

``is_intact`` checks a copy; ``store.recovery`` diagnoses and recovers the live database.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import sqlite3
import sys
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

from ..core.errors import StoreError
from ..core.lazylog import get_logger
from ..core.paths import ProjectPaths, current_umask

log = get_logger()

BACKUP_INTERVAL_SECONDS = 86400.0
#: Always kept: the newest this many copies.
KEEP_NEWEST = 2
#: Besides them, the newest copy of each of the last WEEKS weeks ...
WEEKS = 4
#: ... while every copy together stays under this many bytes (so big stores keep fewer copies).
MAX_TOTAL_BYTES = 2 * 1024**3
#: Databases up to this size are copied by a thread of the calling process (~10 ms of copying,
#: done long before any command exits; a copy cut short by an exit is retried by the next
#: command); bigger ones by a detached process.
INLINE_MAX_BYTES = 4 * 1024**2
#: A backup is skipped (and logged) when the volume would keep less free space than this many
#: times the database's size after it.
FREE_SPACE_FACTOR = 2.0
_PATTERN = "jobs-*.db"
_LOCK_NAME = ".backup.lock"
_STAMP = "%Y%m%dT%H%M%SZ"


def list_backups(paths: ProjectPaths) -> list[Path]:
    """Backups, newest first (by the time in their names, then by when they were written)."""
    if not paths.backups_dir.is_dir():
        return []
    return sorted(paths.backups_dir.glob(_PATTERN), key=lambda p: (_stamp_of(p), _mtime_ns(p), p.name), reverse=True)


def _mtime_ns(path: Path) -> int:
    try:
        return path.stat().st_mtime_ns
    except OSError:
        return 0


# -- creating ------------------------------------------------------------------------------------


def _stamp_of(path: Path) -> float:
    """When a backup was taken: from its name (jobs-20261204T101500Z.db), else its mtime."""
    # _STAMP read by hand: datetime.strptime would cost every command its regexes (~1 ms).
    text = path.stem[len("jobs-"):len("jobs-") + 16]
    try:
        digits = text[:8] + text[9:15]
        if len(text) != 16 or text[8] != "T" or text[15] != "Z" or not (digits.isascii() and digits.isdigit()):
            raise ValueError(text)
        return datetime(int(text[:4]), int(text[4:6]), int(text[6:8]), int(text[9:11]), int(text[11:13]),
                        int(text[13:15]), tzinfo=timezone.utc).timestamp()
    except ValueError:
        try:
            return path.stat().st_mtime
        except OSError:
            return 0.0


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _db_bytes(paths: ProjectPaths) -> int:
    """The database's size, with what its write-ahead log holds that is not checkpointed yet."""
    return _size(paths.db) + _size(paths.db.with_name(paths.db.name + "-wal"))


def prune_backups(paths: ProjectPaths, now: float | None = None) -> list[Path]:
    """Apply the retention (module docstring); returns the copies removed."""
    backups = list_backups(paths)  # newest first
    now = time.time() if now is None else now
    keep = backups[:KEEP_NEWEST]
    total = sum(_size(b) for b in keep)
    weeks_seen: set[int] = {int((now - _stamp_of(b)) // (7 * 86400)) for b in keep}
    for backup in backups[KEEP_NEWEST:]:
        week = int((now - _stamp_of(backup)) // (7 * 86400))
        size = _size(backup)
        if week < WEEKS and week not in weeks_seen and total + size <= MAX_TOTAL_BYTES:
            keep.append(backup)
            weeks_seen.add(week)
            total += size
    removed = [b for b in backups if b not in keep]
    for old in removed:
        old.unlink(missing_ok=True)
    return removed


@contextlib.contextmanager
def _backup_lock(paths: ProjectPaths, wait: bool) -> Iterator[bool]:
    """Hold the copier lock; yields False (without waiting) when another copier holds it."""
    paths.backups_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(paths.backups_dir / _LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)  # releases the lock


def backup_running(paths: ProjectPaths) -> bool:
    """Whether a copier (of any process) is making a backup of this project now."""
    if not paths.backups_dir.is_dir():
        return False
    with _backup_lock(paths, wait=False) as free:
        return not free


def _copy(paths: ProjectPaths) -> Path:
    """The copy itself (the caller holds the lock): online backup into a .partial file, flushed
    to disk, renamed into place; then the retention."""
    stamp = time.strftime(_STAMP, time.gmtime())
    target = paths.backups_dir / f"jobs-{stamp}.db"
    counter = 1
    while target.exists():  # two backups in one second (`db backup` twice)
        target = paths.backups_dir / f"jobs-{stamp}-{counter}.db"
        counter += 1
    partial = target.with_suffix(".partial")
    partial.unlink(missing_ok=True)
    source = sqlite3.connect(paths.db, timeout=30.0)
    try:
        destination = sqlite3.connect(partial)
        try:
            # One step: a copy taken in several steps restarts whenever another process writes
            # between them, which a busy project's poller does every second. One step reads one
            # consistent snapshot; in WAL mode writers go on meanwhile.
            source.backup(destination)
        finally:
            destination.close()
    except sqlite3.Error as exc:
        partial.unlink(missing_ok=True)
        raise StoreError(f"backup of {paths.db} failed: {exc}") from None
    finally:
        source.close()
    if not _passes_quick_check(partial):
        # A copy of a damaged database must not push the good copies out through the retention.
        partial.unlink(missing_ok=True)
        raise StoreError(f"{paths.db} fails SQLite's quick check: no backup made, the older ones are kept; "
                         "run `celline-jobs db check`")
    with open(partial, "rb") as handle:
        os.fsync(handle.fileno())
    os.chmod(partial, 0o666 & ~current_umask())
    partial.replace(target)
    for stale in paths.backups_dir.glob("*.partial"):  # left by a copier that was killed
        stale.unlink(missing_ok=True)
    prune_backups(paths)
    return target


def _passes_quick_check(path: Path) -> bool:
    try:
        conn = sqlite3.connect(path)
        try:
            return conn.execute("PRAGMA quick_check").fetchone()[0] == "ok"
        finally:
            conn.close()
    except sqlite3.DatabaseError:
        return False


def create_backup(store_or_paths: object) -> Path:
    """A backup now, in this thread (``celline-jobs db backup``); waits for a running copier."""
    paths = _paths_of(store_or_paths)
    with _backup_lock(paths, wait=True):
        return _copy(paths)


def backup_due(paths: ProjectPaths, now: float | None = None) -> bool:
    """Whether the newest backup is older than a day (or there is none). A glob and a stat."""
    backups = list_backups(paths)
    now = time.time() if now is None else now
    return not backups or now - _stamp_of(backups[0]) >= BACKUP_INTERVAL_SECONDS


def _backup_when_due(paths: ProjectPaths) -> Path | None:
    """The copier's whole job: take the lock, check again that a backup is due (another copier
    may have just made one), check the free space, copy."""
    with _backup_lock(paths, wait=False) as locked:
        if not locked or not backup_due(paths) or not paths.db.exists():
            return None
        size = _db_bytes(paths)
        free = shutil.disk_usage(paths.backups_dir).free
        if free - size < FREE_SPACE_FACTOR * size:
            log.warning("no backup of %s: %d MiB free, the copy needs %d MiB; free some space",
                        paths.db, free // 2**20, size // 2**20)
            return None
        return _copy(paths)


def backup_if_due(store_or_paths: object) -> bool:
    """Start a backup in the background when one is due; True when one was started. Costs the
    caller a glob and a stat (and, once a day, starting a thread or a process): never the copy."""
    paths = _paths_of(store_or_paths)
    try:
        if not backup_due(paths):
            return False
        if backup_running(paths):
            return False
        if _db_bytes(paths) <= INLINE_MAX_BYTES:
            threading.Thread(target=_background_copy, args=(paths,), daemon=True,
                             name="celline-jobs-backup").start()
        else:
            import subprocess  # here: a command with no backup due never loads it

            copier = subprocess.Popen(  # detached: outlives a short CLI command
                [sys.executable, "-m", "celline_jobs_nb.store.backup", str(paths.root)],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                start_new_session=True, close_fds=True, cwd=str(paths.root))
            with contextlib.suppress(OSError):  # low priority from its first instruction (its start-up too)
                os.setpriority(os.PRIO_PROCESS, copier.pid, min(19, os.getpriority(os.PRIO_PROCESS, 0) + 10))
        return True
    except OSError as exc:  # a read-only project, a full disk: the commands go on without
        log.debug("no backup of %s: %s", paths.db, exc)
        return False


def _background_copy(paths: ProjectPaths) -> None:
    try:
        _backup_when_due(paths)
    except (StoreError, OSError) as exc:
        log.warning("backup of %s failed: %s", paths.db, exc)


def _compact_samples(paths: ProjectPaths) -> None:
    """Rows written before schema 6 lose their inline usage samples here, off every command's path
    (``JobStore.compact_samples``; the detached, low-priority copier runs once a day)."""
    from .sqlite import JobStore

    store = JobStore(paths)
    try:
        store.compact_samples(budget=600.0)
    finally:
        store.close()


def _paths_of(store_or_paths: object) -> ProjectPaths:
    if isinstance(store_or_paths, ProjectPaths):
        return store_or_paths
    paths = getattr(store_or_paths, "paths", None)
    if isinstance(paths, ProjectPaths):
        return paths
    raise TypeError(f"expected a JobStore or ProjectPaths, got {type(store_or_paths).__name__}")


def main(argv: list[str] | None = None) -> int:
    """``python -m celline_jobs_nb.store.backup PROJECT``: the detached copier."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m celline_jobs_nb.store.backup PROJECT", file=sys.stderr)
        return 2
    try:
        paths = ProjectPaths.of(args[0])
        _backup_when_due(paths)
        _compact_samples(paths)
    except (StoreError, OSError) as exc:
        print(f"celline-jobs backup: {exc}", file=sys.stderr)
        return 1
    return 0


# -- recovering ----------------------------------------------------------------------------------


def is_intact(path: Path) -> bool:
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            return conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        finally:
            conn.close()
    except sqlite3.DatabaseError:
        return False


if __name__ == "__main__":
    sys.exit(main())
