"""Backups of the job database and recovery from a corrupted one.

A monitor takes a consistent copy (SQLite's online backup) at most once a day into
``.celline/backups/jobs-<UTC time>.db`` and keeps the newest ``KEEP``. ``recover`` never deletes
anything: the damaged file is moved aside and the newest backup that passes SQLite's integrity
check is put in its place.
"""

from __future__ import annotations

import shutil
import sqlite3
import time
from pathlib import Path

from ..core.errors import StoreError
from ..core.paths import ProjectPaths
from .sqlite import JobStore

KEEP = 7
BACKUP_INTERVAL_SECONDS = 86400.0
_PATTERN = "jobs-*.db"


def list_backups(paths: ProjectPaths) -> list[Path]:
    """Backups, newest first."""
    if not paths.backups_dir.is_dir():
        return []
    return sorted(paths.backups_dir.glob(_PATTERN), reverse=True)


def create_backup(store: JobStore) -> Path:
    store.paths.backups_dir.mkdir(parents=True, exist_ok=True)
    target = store.paths.backups_dir / f"jobs-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}.db"
    partial = target.with_suffix(".partial")
    store.backup(partial)
    partial.replace(target)
    for old in list_backups(store.paths)[KEEP:]:
        old.unlink(missing_ok=True)
    return target


def backup_if_due(store: JobStore) -> Path | None:
    """A new backup when the newest is older than a day (or there is none)."""
    backups = list_backups(store.paths)
    if backups and time.time() - backups[0].stat().st_mtime < BACKUP_INTERVAL_SECONDS:
        return None
    return create_backup(store)


def is_intact(path: Path) -> bool:
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            return conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        finally:
            conn.close()
    except sqlite3.DatabaseError:
        return False


def recover(paths: ProjectPaths) -> tuple[Path, Path]:
    """Move the damaged database aside and restore the newest intact backup.
    Returns (restored backup, where the damaged file went)."""
    good = next((b for b in list_backups(paths) if is_intact(b)), None)
    if good is None:
        raise StoreError(f"no intact backup in {paths.backups_dir}: the damaged {paths.db} was left as it is")
    aside = paths.backups_dir / f"jobs.db.damaged-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}"
    if paths.db.exists():
        paths.db.replace(aside)
    for suffix in ("-wal", "-shm"):  # WAL files belong to the damaged database, not to the backup
        side = paths.db.with_name(paths.db.name + suffix)
        if side.exists():
            side.replace(aside.with_name(aside.name + suffix))
    shutil.copy2(good, paths.db)
    return good, aside
