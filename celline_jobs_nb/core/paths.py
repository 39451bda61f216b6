"""Every file name the package reads or writes, in one place.

A project directory holds (seed paths kept):
    logs/<job_id>.log               stdout+stderr of the job
    logs/<job_id>_progress.json     what the job reported about its progress
    logs/<job_id>.exitcode          written by the job wrapper when the command ends
    .celline/jobs.db                the SQLite store (history)
    .celline/jobs.json              the seed's store, imported once on first open
    .celline/scripts/<job_id>.sh    batch scripts rendered for cluster schedulers
    .celline/backups/               copies kept before imports and recoveries
    .celline/jobs.toml              this package's settings (or a [jobs] table in setting.toml)
    setting.toml                    celline's own project settings
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from .models import validate_job_id

ENV_JOB_ID = "CELLINE_JOB_ID"
ENV_PROJECT = "CELLINE_JOBS_PROJECT"
ENV_PROGRESS_FILE = "CELLINE_JOBS_PROGRESS_FILE"


@dataclass(frozen=True)
class ProjectPaths:
    # The directories are cached: every submit and poll asks for them several times per job.
    root: Path

    @classmethod
    def of(cls, project: str | os.PathLike[str]) -> ProjectPaths:
        return cls(Path(project).expanduser().resolve())

    @cached_property
    def state_dir(self) -> Path:
        return self.root / ".celline"

    @cached_property
    def db(self) -> Path:
        return self.state_dir / "jobs.db"

    @cached_property
    def legacy_json(self) -> Path:
        return self.state_dir / "jobs.json"

    @cached_property
    def backups_dir(self) -> Path:
        return self.state_dir / "backups"

    @cached_property
    def scripts_dir(self) -> Path:
        return self.state_dir / "scripts"

    @cached_property
    def jobs_settings(self) -> Path:
        return self.state_dir / "jobs.toml"

    @cached_property
    def celline_settings(self) -> Path:
        return self.root / "setting.toml"

    @cached_property
    def logs_dir(self) -> Path:
        return self.root / "logs"

    def log_file(self, job_id: str) -> Path:
        return self.logs_dir / f"{validate_job_id(job_id)}.log"

    def progress_file(self, job_id: str) -> Path:
        return self.logs_dir / f"{validate_job_id(job_id)}_progress.json"

    def exit_file(self, job_id: str) -> Path:
        return self.logs_dir / f"{validate_job_id(job_id)}.exitcode"

    def script_file(self, job_id: str, suffix: str = ".sh") -> Path:
        return self.scripts_dir / f"{validate_job_id(job_id)}{suffix}"

    def ensure(self) -> ProjectPaths:
        for directory in (self.state_dir, self.logs_dir):
            directory.mkdir(parents=True, exist_ok=True)
        return self


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` so readers see the old file or the new one, never a half-written one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def write_job_script(path: Path, text: str) -> None:
    """A batch script for the scheduler, readable by its owner only (it may hold the job's
    environment). Written in place, not atomically: it is named by its job's id and read only by
    the submit command, after it is closed; no fsync either, as that command reads it at once."""
    data = text.encode("utf-8")
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC
    try:
        fd = os.open(path, flags, 0o700)
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, flags, 0o700)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
    finally:
        os.close(fd)
