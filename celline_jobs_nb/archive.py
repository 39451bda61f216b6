"""Archived and Cleanup, the end of the seed's job lifecycle: ``celline-jobs archive`` and ``clean``.

``archive`` moves the files of ended jobs (log, exit-code and progress files, batch script) into
``.celline/archive/<YYYY-MM>[-N].zip`` (by the month the job ended) and marks their rows
(``metadata.archived_at``, ``metadata.archive``); rows stay in history and every DataFrame. Each
step is safe to interrupt:

1. the archive is written to a temporary name, fsynced, then renamed (a stale temporary is removed);
2. it is read back and every member checked against the manifest's SHA-256 (written inside it);
3. only then are the rows marked, and
4. only then are the files removed (each one only if its size and mtime are still what was archived).

A rerun first finishes what an earlier run left: archives whose jobs are not marked yet are verified
and marked; marked jobs whose files are still there have them removed. Jobs that are not final are
never touched. Readers find an archived log through ``archived_log_path`` (unpacked once into
``.celline/archive/extracted/``), which ``JobMonitor.log_path`` uses: ``logs``, the dashboard, the
report and the JobAPI read archived logs like any other.

``clean`` applies ``[jobs.retention]``: it archives what is due, deletes archived logs older than
``delete_archived_logs_after_days`` (failed jobs' after ``keep_failed_logs_days``) by rewriting
their archive without them, and empties the extracted copies. ``--forget`` also drops those rows.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import stat
import threading
import zipfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .core.errors import InvalidInputError
from .core.models import JobInfo, JobStatus, utcnow
from .core.paths import ProjectPaths, current_umask
from .store.sqlite import JobUpdate

if TYPE_CHECKING:
    from .monitor import JobMonitor

MANIFEST = "manifest.json"
ARCHIVED_AT = "archived_at"
ARCHIVE = "archive"
LOG_DELETED_AT = "log_deleted_at"
FINAL = (JobStatus.COMPLETED, JobStatus.CANCELLED, JobStatus.FAILED)
CHUNK = 1024 * 1024


@dataclass
class Plan:
    """What a run did (or, with ``dry_run``, would do)."""

    jobs: list[str] = field(default_factory=list)
    files: int = 0
    bytes: int = 0
    archives: list[str] = field(default_factory=list)
    finished: int = 0  # jobs an interrupted earlier run had left half done, finished now
    kept: list[str] = field(default_factory=list)  # files left in place, with why

    def to_dict(self) -> dict[str, Any]:
        return {"jobs": len(self.jobs), "files": self.files, "bytes": self.bytes, "archives": self.archives,
                "finished_from_earlier_run": self.finished, "kept": self.kept}


def job_files(paths: ProjectPaths, job: JobInfo) -> dict[str, Path]:
    """The files of a job that archive moves (those that exist as regular files, never a symlink)."""
    candidates = {"log": _log_file(paths, job), "exit": paths.exit_file(job.job_id),
                  "progress": paths.progress_file(job.job_id), "script": paths.script_file(job.job_id)}
    found = {}
    for kind, path in candidates.items():
        try:
            if stat.S_ISREG(os.lstat(path).st_mode):
                found[kind] = path
        except OSError:
            continue
    return found


def _log_file(paths: ProjectPaths, job: JobInfo) -> Path:
    if job.log_file:
        candidate = Path(job.log_file)
        candidate = (candidate if candidate.is_absolute() else paths.root / candidate).resolve()
        if candidate.is_relative_to(paths.root) and not candidate.is_relative_to(paths.state_dir):
            return candidate
    return paths.log_file(job.job_id)


def parse_age(text: str | None, default_days: float) -> float:
    """"30d", "12h", "90" (days) -> seconds."""
    if text is None:
        return default_days * 86400
    value = str(text).strip().lower()
    units = {"d": 86400, "h": 3600, "m": 60, "w": 7 * 86400}
    unit = units.get(value[-1:]) if value else None
    number = value[:-1] if unit else value
    try:
        amount = float(number)
    except ValueError:
        amount = -1
    if not number or amount < 0 or amount != amount or amount > 1e6:
        raise InvalidInputError(f"invalid age {str(text)[:40]!r}: use e.g. 30d, 12h or 2w")
    return amount * (unit or 86400)


def parse_statuses(text: str | None) -> list[JobStatus]:
    if not text:
        return list(FINAL)
    statuses = [JobStatus.parse(s.strip()) for s in str(text).split(",") if s.strip()]
    active = [s.value for s in statuses if s not in FINAL]
    if active:
        raise InvalidInputError(f"cannot archive {active[0]} jobs: only completed, cancelled and failed jobs "
                                "are archived")
    return statuses


# ---- archive -------------------------------------------------------------------------------------

@contextmanager
def _one_at_a_time(paths: ProjectPaths) -> Iterator[None]:
    """One archive or clean per project at a time (two would archive the same jobs twice)."""
    paths.archive_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(paths.archive_dir / ".lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666 & ~current_umask())
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise InvalidInputError("another celline-jobs archive or clean is running on this project: "
                                    "wait for it to finish") from None
        yield
    finally:
        os.close(fd)


def archive(monitor: JobMonitor, *, older_than: str | None = None, statuses: str | None = None,
            dry_run: bool = False) -> Plan:
    monitor._require_write("archive")
    if dry_run:
        return _archive(monitor, older_than, statuses, dry_run)
    with _one_at_a_time(monitor.paths):
        return _archive(monitor, older_than, statuses, dry_run)


def _archive(monitor: JobMonitor, older_than: str | None, statuses: str | None, dry_run: bool) -> Plan:
    paths = monitor.paths
    plan = Plan()
    if not dry_run:
        _remove_stale_temporaries(paths)
        plan.finished = _finish_earlier_runs(monitor, plan)
    cutoff = utcnow() - timedelta(seconds=parse_age(older_than, monitor.settings.retention.archive_after_days))
    wanted = parse_statuses(statuses)
    due = [j for j in monitor.store.list(wanted, until=None)
           if j.status.final and j.end_time is not None and j.end_time <= cutoff
           and not j.metadata.get(ARCHIVED_AT) and not j.metadata.get(LOG_DELETED_AT)]
    by_month: dict[str, list[tuple[JobInfo, dict[str, Path]]]] = {}
    for job in due:
        files = job_files(paths, job)
        plan.jobs.append(job.job_id)
        plan.files += len(files)
        plan.bytes += sum(p.stat().st_size for p in files.values())
        by_month.setdefault(job.end_time.strftime("%Y-%m"), []).append((job, files))
    if dry_run or not due:
        return plan
    paths.archive_dir.mkdir(parents=True, exist_ok=True)
    for month, items in sorted(by_month.items()):
        name = _free_name(paths, month)
        manifest = _write_archive(paths, paths.archive_dir / name, items)
        _verify(paths.archive_dir / name, manifest)
        _mark(monitor, name, list(manifest["jobs"]))
        _remove_files(paths, manifest, plan)
        plan.archives.append(name)
    return plan


def _free_name(paths: ProjectPaths, month: str) -> str:
    name, n = f"{month}.zip", 1
    while (paths.archive_dir / name).exists():
        n += 1
        name = f"{month}-{n}.zip"
    return name


def _write_archive(paths: ProjectPaths, target: Path, items: list[tuple[JobInfo, dict[str, Path]]]) -> dict:
    """A zip (deflated): its central directory lets a reader open one job's log without reading the rest."""
    manifest: dict[str, Any] = {"version": 1, "created": utcnow().isoformat(), "jobs": {}}
    tmp = target.with_name(f".{target.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o666 & ~current_umask())
    try:
        with os.fdopen(fd, "wb") as raw:
            with zipfile.ZipFile(raw, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6) as zf:
                for job, files in items:
                    entry: dict[str, Any] = {}
                    for kind, path in files.items():
                        member = f"{job.job_id}/{path.name}"
                        st = os.lstat(path)
                        digest = hashlib.sha256()
                        with open(path, "rb") as handle, zf.open(member, "w", force_zip64=True) as out:
                            while chunk := handle.read(CHUNK):
                                digest.update(chunk)
                                out.write(chunk)
                        entry[kind] = {"member": member, "path": str(path.relative_to(paths.root)),
                                       "size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": digest.hexdigest()}
                    manifest["jobs"][job.job_id] = {"files": entry, "status": job.status.value,
                                                    "end_time": job.end_time.isoformat() if job.end_time else None}
                zf.writestr(MANIFEST, json.dumps(manifest, indent=1))
            raw.flush()
            os.fsync(raw.fileno())
        os.replace(tmp, target)
        _fsync_dir(target.parent)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return manifest


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def read_manifest(path: Path) -> dict[str, Any]:
    with zipfile.ZipFile(path) as zf:
        if zf.getinfo(MANIFEST).file_size > 64 * 1024 * 1024:
            raise InvalidInputError(f"{path.name}: manifest too large to be ours")
        return json.loads(zf.read(MANIFEST))


def _verify(path: Path, manifest: dict[str, Any]) -> None:
    """Read the archive back: every file of the manifest is there with its SHA-256, or an error."""
    expected = {f["member"]: f for job in manifest["jobs"].values() for f in job["files"].values()}
    try:
        with zipfile.ZipFile(path) as zf:
            names = set(zf.namelist())
            for member, entry in expected.items():
                if member not in names:
                    raise InvalidInputError(f"archive {path.name} lacks {member}: nothing was removed; delete it "
                                            "and run archive again")
                digest = hashlib.sha256()
                with zf.open(member) as handle:
                    while chunk := handle.read(CHUNK):
                        digest.update(chunk)
                if digest.hexdigest() != entry["sha256"]:
                    raise InvalidInputError(f"archive {path.name} is damaged ({member} differs): nothing was "
                                            "removed; delete it and run archive again")
    except (zipfile.BadZipFile, OSError) as exc:
        raise InvalidInputError(f"archive {path.name} cannot be read ({exc}): nothing was removed; delete it and "
                                "run archive again") from None


def _mark(monitor: JobMonitor, name: str, job_ids: Iterable[str]) -> None:
    when = utcnow().isoformat()
    monitor.store.apply([JobUpdate(j, None, {"metadata": {ARCHIVED_AT: when, ARCHIVE: name}}, "archive")
                         for j in job_ids])


def _remove_files(paths: ProjectPaths, manifest: dict[str, Any], plan: Plan) -> None:
    for files in (job["files"] for job in manifest["jobs"].values()):
        for entry in files.values():
            path = paths.root / entry["path"]
            try:
                st = os.lstat(path)
            except FileNotFoundError:
                continue
            if not stat.S_ISREG(st.st_mode) or st.st_size != entry["size"] or st.st_mtime_ns != entry["mtime_ns"]:
                plan.kept.append(f"{entry['path']}: changed since it was archived; kept")
                continue
            path.unlink()


def _remove_stale_temporaries(paths: ProjectPaths) -> None:
    if paths.archive_dir.is_dir():
        for tmp in paths.archive_dir.glob(".*.tmp"):
            tmp.unlink(missing_ok=True)


def archives(paths: ProjectPaths) -> list[Path]:
    if not paths.archive_dir.is_dir():
        return []
    return sorted(p for p in paths.archive_dir.glob("*.zip") if p.is_file())


def _finish_earlier_runs(monitor: JobMonitor, plan: Plan) -> int:
    """Archives an interrupted run left: verify and mark their jobs, then remove the files."""
    finished = 0
    for path in archives(monitor.paths):
        manifest = read_manifest(path)
        ids = list(manifest["jobs"])
        jobs = {j.job_id: j for j in monitor.store.get_many(ids)}
        unmarked = [j for j in ids if j in jobs and jobs[j].metadata.get(ARCHIVE) != path.name
                    and not jobs[j].metadata.get(ARCHIVED_AT)]
        leftovers = any((monitor.paths.root / f["path"]).exists()
                        for j in ids for f in manifest["jobs"][j]["files"].values())
        if not unmarked and not leftovers:
            continue
        _verify(path, manifest)
        if unmarked:
            _mark(monitor, path.name, unmarked)
            finished += len(unmarked)
        _remove_files(monitor.paths, manifest, plan)
    return finished


# ---- reading -------------------------------------------------------------------------------------

def archived_log_path(paths: ProjectPaths, job: JobInfo) -> Path | None:
    """Where an archived job's log can be read: unpacked once from its archive into
    ``.celline/archive/extracted/<job_id>.log``. None when the job is not archived, or its log
    is gone (deleted by ``clean``) or was never written."""
    name = job.metadata.get(ARCHIVE)
    if not name or not isinstance(name, str) or "/" in name or name.startswith("."):
        return None
    target = paths.extracted_dir / f"{job.job_id}.log"
    if target.is_file():
        return target
    source = paths.archive_dir / name
    log_name = _log_file(paths, job).name
    try:
        with _open_archives_lock:
            zf = _open_archive(source)
            member = f"{job.job_id}/{log_name}"
            if member not in zf.NameToInfo:
                return None
            paths.extracted_dir.mkdir(parents=True, exist_ok=True)
            tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
            try:
                with zf.open(member) as handle, open(tmp, "wb") as out:
                    while chunk := handle.read(CHUNK):
                        out.write(chunk)
                os.replace(tmp, target)
            finally:
                tmp.unlink(missing_ok=True)
            return target
    except (OSError, KeyError, ValueError, zipfile.BadZipFile):
        return None


_open_archives: dict[Path, tuple[tuple[int, int, int], zipfile.ZipFile]] = {}
_open_archives_lock = threading.Lock()


def _open_archive(path: Path) -> zipfile.ZipFile:
    """An open archive, kept (a few at most) while the file is the same: its directory of a thousand
    jobs is read once, not once per log."""
    st = os.stat(path)
    key = (st.st_ino, st.st_size, st.st_mtime_ns)
    cached = _open_archives.get(path)
    if cached is not None and cached[0] == key:
        return cached[1]
    if cached is not None:
        cached[1].close()
    while len(_open_archives) >= 4:
        _open_archives.pop(next(iter(_open_archives)))[1].close()
    zf = zipfile.ZipFile(path)
    _open_archives[path] = (key, zf)
    return zf


# ---- clean ---------------------------------------------------------------------------------------

def clean(monitor: JobMonitor, *, older_than: str | None = None, dry_run: bool = False,
          forget: bool = False) -> Plan:
    """Apply ``[jobs.retention]``: archive what is due, then delete archived logs past their time."""
    monitor._require_write("clean")
    if dry_run:
        return _clean(monitor, older_than, dry_run, forget)
    with _one_at_a_time(monitor.paths):
        return _clean(monitor, older_than, dry_run, forget)


def _clean(monitor: JobMonitor, older_than: str | None, dry_run: bool, forget: bool) -> Plan:
    retention = monitor.settings.retention
    plan = _archive(monitor, None, None, dry_run)
    delete_after = parse_age(older_than, retention.delete_archived_logs_after_days)
    keep_failed = max(delete_after, retention.keep_failed_logs_days * 86400)
    now = datetime.now(timezone.utc)
    deleted: list[str] = []
    removed_bytes = 0
    for path in archives(monitor.paths):
        manifest = read_manifest(path)
        jobs = {j.job_id: j for j in monitor.store.get_many(list(manifest["jobs"]))}
        expired = []
        for job_id in manifest["jobs"]:
            job = jobs.get(job_id)
            if job is None or job.end_time is None:
                continue
            limit = keep_failed if job.status is JobStatus.FAILED else delete_after
            if (now - job.end_time).total_seconds() >= limit:
                expired.append(job_id)
        if not expired:
            continue
        removed_bytes += sum(f["size"] for j in expired for f in manifest["jobs"][j]["files"].values())
        plan.files += sum(len(manifest["jobs"][j]["files"]) for j in expired)
        deleted.extend(expired)
        if not dry_run:
            _drop_from_archive(monitor, path, manifest, expired)
    plan.jobs.extend(deleted)
    plan.bytes += removed_bytes
    if not dry_run:
        _empty_extracted(monitor.paths)
        if forget:  # these, and those whose files an earlier clean deleted
            gone = set(deleted) | {j.job_id for j in monitor.store.list(list(FINAL)) if j.metadata.get(LOG_DELETED_AT)}
            monitor.store.forget(sorted(gone))
    plan.kept.append(f"{len(deleted)} archived job(s) past retention: their files "
                     f"{'would be' if dry_run else 'were'} deleted ({removed_bytes} bytes)"
                     f"{'; rows dropped' if forget and not dry_run else '; rows kept'}")
    return plan


def _drop_from_archive(monitor: JobMonitor, path: Path, manifest: dict[str, Any], expired: list[str]) -> None:
    """Rewrite ``path`` without the expired jobs' files (or delete it when none are left). Rows are
    marked first: a job marked deleted whose files are still in the archive is only wasted space,
    never a job whose log seems to be there but is not."""
    when = utcnow().isoformat()
    monitor.store.apply([JobUpdate(j, None, {"metadata": {LOG_DELETED_AT: when, ARCHIVE: None}}, "clean")
                         for j in expired])
    keep = {j: v for j, v in manifest["jobs"].items() if j not in set(expired)}
    if not keep:
        path.unlink(missing_ok=True)
        return
    new_manifest = {**manifest, "jobs": keep}
    tmp = path.with_name(f".{path.name}.tmp")
    members = {f["member"] for job in keep.values() for f in job["files"].values()}
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o666 & ~current_umask())
    try:
        with os.fdopen(fd, "wb") as raw:
            with zipfile.ZipFile(path) as src, zipfile.ZipFile(raw, "w", compression=zipfile.ZIP_DEFLATED) as out:
                for info in src.infolist():
                    if info.filename in members:
                        with src.open(info) as handle, out.open(info.filename, "w", force_zip64=True) as dest:
                            while chunk := handle.read(CHUNK):
                                dest.write(chunk)
                out.writestr(MANIFEST, json.dumps(new_manifest, indent=1))
            raw.flush()
            os.fsync(raw.fileno())
        _verify(tmp, new_manifest)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _empty_extracted(paths: ProjectPaths) -> None:
    if paths.extracted_dir.is_dir():
        for item in paths.extracted_dir.iterdir():
            if item.is_file() or item.is_symlink():
                item.unlink(missing_ok=True)


def archive_size(paths: ProjectPaths) -> int:
    """Bytes of ``.celline/archive`` (the archives and extracted copies)."""
    total = 0
    if paths.archive_dir.is_dir():
        for item in paths.archive_dir.rglob("*"):
            try:
                st = item.lstat()
            except OSError:
                continue
            if stat.S_ISREG(st.st_mode):
                total += st.st_size
    return total
