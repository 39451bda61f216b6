"""``celline-jobs db check`` and ``db recover``: what is wrong with the job database, and a
recovery that acts only on proven damage and loses no job the project's files prove happened.

Busy (another process holds the lock), read-only and permission errors are what they are, never
"damaged". ``recover`` restores the newest intact backup (or starts empty when there is none and
the database is missing), then replays what the project's own files show happened after it: every
``logs/<id>.exitcode`` and ``.celline/scripts/<id>.sh`` of a job the backup does not know becomes
a row again, and a job the backup saw running gets the end its exit-code file records.
"""

from __future__ import annotations

import re
import shutil
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from ..core.errors import CellineJobsError, StoreError
from ..core.jobfiles import read_exit_file
from ..core.models import JobInfo, JobStatus, validate_job_id
from ..core.paths import ProjectPaths
from ..core.safeio import read_head
from .backup import is_intact, list_backups
from .sqlite import JobStore, create_shared


@dataclass(frozen=True)
class Diagnosis:
    state: str  # "intact", "missing", "busy", "unreadable" (permissions) or "damaged"
    detail: str

    @property
    def damaged(self) -> bool:
        return self.state in ("damaged", "missing")


def diagnose(path: Path, *, busy_timeout: float = 2.0) -> Diagnosis:
    if not path.exists():
        return Diagnosis("missing", f"the job database {path} is missing")
    try:
        with path.open("rb") as handle:
            header = handle.read(16)
    except OSError as exc:
        return Diagnosis("unreadable", f"cannot read {path}: {exc.strerror}; check its permissions")
    if header and header != b"SQLite format 3\x00":
        return Diagnosis("damaged", f"{path} is not an SQLite database")
    try:
        conn = sqlite3.connect(f"{path.absolute().as_uri()}?mode=ro", uri=True, timeout=busy_timeout)
    except sqlite3.Error as exc:
        return Diagnosis("unreadable", f"cannot open {path}: {exc}")
    try:
        result = conn.execute("PRAGMA integrity_check").fetchone()[0]
    except sqlite3.OperationalError as exc:
        text = str(exc)
        if "locked" in text or "busy" in text:
            return Diagnosis("busy", "busy: another process holds the database's lock; try again in a moment")
        if "unable to open" in text or "readonly" in text or "permission" in text.lower():
            return Diagnosis("unreadable", f"cannot read {path}: {text}; check the permissions of it and its "
                                           "directory (a read-only user needs the -wal and -shm files to exist)")
        return Diagnosis("damaged", f"{path}: {text}")
    except sqlite3.DatabaseError as exc:
        return Diagnosis("damaged", f"{path}: {exc}")
    finally:
        conn.close()
    if result != "ok":
        return Diagnosis("damaged", f"{path} fails SQLite's integrity check: {result}")
    return Diagnosis("intact", f"{path} is intact")


@dataclass(frozen=True)
class Recovery:
    restored_from: Path | None  # the backup put in place (None: started empty)
    damaged_kept_as: Path | None
    rebuilt: list[str]  # ids of jobs the backup did not have, rebuilt from their files
    ended: list[str]  # ids the backup had as active whose exit-code files record their end


def recover(paths: ProjectPaths) -> Recovery:
    """Replace a damaged or missing database (see the module docstring). Refuses otherwise."""
    found = diagnose(paths.db)
    if not found.damaged:
        if found.state == "intact":
            raise StoreError(f"{paths.db} is intact: nothing to recover (`celline-jobs db backup` makes a copy)")
        raise StoreError(f"{found.detail}; nothing was changed")
    good = next((b for b in list_backups(paths) if is_intact(b)), None)
    if good is None and found.state == "damaged":
        raise StoreError(f"no intact backup in {paths.backups_dir}: the damaged {paths.db} was left as it is")
    aside = None
    if paths.db.exists():
        aside = paths.backups_dir / f"jobs.db.damaged-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}"
        paths.backups_dir.mkdir(parents=True, exist_ok=True)
        paths.db.replace(aside)
    for suffix in ("-wal", "-shm"):  # WAL files belong to the damaged database, not to the backup
        side = paths.db.with_name(paths.db.name + suffix)
        if side.exists():
            side.replace((aside or paths.backups_dir / "jobs.db.lost").with_name(
                (aside or paths.backups_dir / "jobs.db.lost").name + suffix))
    if good is not None:
        shutil.copy2(good, paths.db)
    if not paths.db.exists():  # no backup: start empty (an existing file is migrated, not refused)
        paths.ensure()
        create_shared(paths.db)
    store = JobStore(paths)
    rebuilt, ended = _replay_job_files(store)
    return Recovery(good, aside, rebuilt, ended)


_NAME_RE = re.compile(r"^#(?:SBATCH\s+(?:--job-name[= ]|-J\s*)|PBS\s+-N\s+|\$\s+-N\s+)(\S.*)$", re.MULTILINE)


def _replay_job_files(store: JobStore) -> tuple[list[str], list[str]]:
    paths = store.paths
    ids: set[str] = set()
    for directory, suffix in ((paths.logs_dir, ".exitcode"), (paths.scripts_dir, ".sh")):
        try:
            names = [p.name for p in directory.iterdir() if p.name.endswith(suffix)]
        except OSError:
            continue
        for name in names:
            try:
                ids.add(validate_job_id(name[: -len(suffix)]))
            except CellineJobsError:
                continue
    known = {job.job_id: job for job in store.get_many(sorted(ids))}
    rebuilt, ended = [], []
    for job_id in sorted(ids):
        try:
            record = read_exit_file(paths.exit_file(job_id))
        except CellineJobsError:
            record = None
        if record is not None:
            status = JobStatus.COMPLETED if record.exit_code == 0 and record.signal is None else JobStatus.FAILED
        else:
            status = JobStatus.UNKNOWN
        job = known.get(job_id)
        if job is None:
            store.insert(JobInfo(
                job_id=job_id, name=_script_name(paths.script_file(job_id)) or job_id, status=status,
                command="(rebuilt by `celline-jobs db recover` from the job's files)",
                start_time=record.start_time if record else None, end_time=record.end_time if record else None,
                log_file=str(paths.log_file(job_id)),
                exit_code=record.exit_code if record else None, signal=record.signal if record else None,
                reason="rebuilt by db recover: " + ("from its exit-code file" if record else
                                                  "its batch script exists, its state is unknown"),
                scheduler="imported", metadata={"recovered": True},
            ), source="recover")
            rebuilt.append(job_id)
        elif job.status.active and record is not None:
            store.update(job_id, status, source="recover", exit_code=record.exit_code, signal=record.signal,
                         end_time=record.end_time, reason="end recorded from its exit-code file by db recover")
            ended.append(job_id)
    return rebuilt, ended


def _script_name(path: Path) -> str | None:
    try:
        head = read_head(path, 16 * 1024)
    except CellineJobsError:
        return None
    if not head:
        return None
    match = _NAME_RE.search(head.decode("utf-8", errors="replace"))
    return match.group(1).strip().strip("'\"")[:200] if match else None
