"""Every file name the package reads or writes, in one place.

A project directory holds (seed paths kept):
    logs/<job_id>.log               stdout+stderr of the job
    logs/<job_id>_progress.json     what the job reported about its progress
    logs/<job_id>.exitcode          written by the job wrapper when the command ends
    .celline/jobs.db                the SQLite store (history)
    .celline/jobs.json              the seed's store, imported once on first open
    .celline/scripts/<job_id>.sh    batch scripts rendered for cluster schedulers
    .celline/backups/               copies kept before imports and recoveries
    .celline/archive/<YYYY-MM>[-N].zip   ended jobs' files, moved by `celline-jobs archive`
    .celline/archive/extracted/     archived logs unpacked for readers (removed by `celline-jobs clean`)
    .celline/jobs.toml              this package's settings (or a [jobs] table in setting.toml)
    setting.toml                    celline's own project settings
"""

from __future__ import annotations

import os
import stat
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from .errors import InvalidInputError
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
    def archive_dir(self) -> Path:
        return self.state_dir / "archive"

    @cached_property
    def extracted_dir(self) -> Path:
        return self.archive_dir / "extracted"

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


def current_umask() -> int:
    """The process umask, without changing it (``os.umask`` can only be read by setting it, which
    races with other threads creating files)."""
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as handle:
            for line in handle:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write_text(path: Path, text: str, *, create_parent: bool = True) -> None:
    """Write ``text`` so readers see the old file or the new one, never a half-written one. The file
    gets the mode any new file gets (0666 less the umask): a group-shared project stays shared.
    ``create_parent=False``: FileNotFoundError instead of recreating a directory someone deleted."""
    if create_parent:
        path.parent.mkdir(parents=True, exist_ok=True)
    _replace_atomically(path, lambda tmp: tmp.write_text(text, encoding="utf-8"), fsync=True)


def _replace_atomically(target: Path, write: Callable[[Path], object], *, fsync: bool = False) -> None:
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name[:200]}.", suffix=".tmp", dir=target.parent)
    tmp = Path(tmp_name)
    try:
        os.close(fd)
        write(tmp)
        os.chmod(tmp, 0o666 & ~current_umask())  # mkstemp makes it 0600
        if fsync:
            with open(tmp, "rb") as handle:
                os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def output_target(path: str | os.PathLike[str]) -> Path:
    """The file an output the user named (a report, an export) will replace, checked first: a
    regular file or a new name in an existing directory. A symbolic link is written through to its
    target. A device, FIFO, socket or directory, or a missing directory, is an error naming the fix:
    writing there would replace ``/dev/null`` or create directories nobody asked for."""
    given = Path(path).expanduser()
    try:
        target = given.resolve() if given.is_symlink() else given.absolute()
        mode: int | None = target.stat().st_mode
    except FileNotFoundError:
        mode = None
    except OSError as exc:  # a name too long, a permission denied on the way
        raise InvalidInputError(f"cannot write {str(given)[:200]!r}: {exc.strerror}; choose another file") from None
    if mode is not None and not stat.S_ISREG(mode):
        kind = "a directory" if stat.S_ISDIR(mode) else "a device, FIFO or socket"
        raise InvalidInputError(f"{str(given)[:200]!r} is {kind}, not a file: give a file name to write to "
                                "(or - for standard output)")
    if not target.parent.is_dir():
        raise InvalidInputError(f"cannot write {str(given)[:200]!r}: directory {str(target.parent)[:200]!r} "
                                "does not exist; create it first or choose another path")
    return target


def write_output(path: str | os.PathLike[str], write: Callable[[Path], object]) -> Path:
    """Write an output file the user named: checked (``output_target``), atomically (a temporary
    file next to it, then rename), honouring the umask. ``write`` gets the temporary path."""
    target = output_target(path)
    try:
        _replace_atomically(target, write)
    except OSError as exc:
        raise InvalidInputError(f"cannot write {str(path)[:200]!r}: {exc.strerror or exc}; "
                                "choose another file") from None
    return target


SCRIPT_MODE = 0o770  # less the umask: a lab group (umask 002) can read and rerun it, others cannot


def write_job_script(path: Path, text: str) -> None:
    """A batch script for the scheduler, for its owner and (as the umask allows) the project's group,
    never for everyone: it may hold the job's environment. Written in place, not atomically: it is
    named by its job's id and read only by the submit command, after it is closed; no fsync either,
    as that command reads it at once."""
    data = text.encode("utf-8")
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC
    try:
        fd = os.open(path, flags, SCRIPT_MODE)
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, flags, SCRIPT_MODE)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
    finally:
        os.close(fd)
