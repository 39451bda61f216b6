"""How the job database is opened: by the filesystem it lives on and what this user may do there.

SQLite's own documentation (https://www.sqlite.org/wal.html, "Disadvantages"; and
https://www.sqlite.org/useovernet.html) says WAL needs every process on one host, sharing memory
through the ``-shm`` file, which network filesystems do not provide: a project on NFS, Lustre,
GPFS, BeeGFS or SMB, watched from a notebook on one node and a terminal on another, could corrupt
its database in WAL mode. There the store uses the rollback journal (``journal_mode=DELETE``,
``locking_mode=NORMAL``), which SQLite supports over network filesystems whose POSIX locks work.
On local disks it keeps WAL (readers never wait for a writer). ``[jobs] database_mode`` or
``CELLINE_JOBS_DATABASE_MODE`` (``auto``, ``wal``, ``rollback``) overrides the choice.

A user who may read but not write the project (a colleague, a PI) opens the database read-only.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

ENV_DATABASE_MODE = "CELLINE_JOBS_DATABASE_MODE"
#: Filesystem types whose processes may sit on different hosts (``fuse``: any FUSE filesystem,
#: sshfs, bindfs, s3fs...: one cannot tell a local one from a remote one, so the safe mode).
NETWORK_FILESYSTEMS = frozenset({
    "nfs", "nfs4", "lustre", "gpfs", "beegfs", "cifs", "smb3", "smbfs", "ceph", "glusterfs", "9p", "afs",
    "ocfs2", "gfs2", "pvfs2", "orangefs", "panfs", "wekafs", "fhgfs", "coda", "auristorfs", "fuse", "fuseblk",
})


@dataclass(frozen=True)
class Mount:
    mount_point: str
    fstype: str


def _unescape(field: str) -> str:
    """mountinfo writes space, tab, newline and backslash in paths as octal escapes (\\040)."""
    out, i = [], 0
    while i < len(field):
        digits = field[i + 1:i + 4]
        if field[i] == "\\" and len(digits) == 3 and digits.isdigit():
            out.append(chr(int(field[i + 1:i + 4], 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


def parse_mountinfo(text: str) -> list[Mount]:
    """The mounts of a ``/proc/self/mountinfo`` text (proc(5)): field 5 is the mount point, and
    the filesystem type is the first field after the ``-`` separator. Malformed lines are skipped."""
    mounts = []
    for line in text.splitlines():
        fields = line.split(" ")
        try:
            separator = fields.index("-", 6)
            mounts.append(Mount(_unescape(fields[4]), fields[separator + 1]))
        except (ValueError, IndexError):
            continue
    return mounts


def filesystem_type(path: Path, mounts: list[Mount]) -> str | None:
    """The type of the filesystem holding ``path``: its longest mount point prefix (the last
    mounted wins when one is mounted over another)."""
    target = str(path)
    best: Mount | None = None
    for mount in mounts:
        point = mount.mount_point.rstrip("/") or "/"
        if target == point or target.startswith(point if point == "/" else point + "/"):
            if best is None or len(point) >= len(best.mount_point.rstrip("/") or "/"):
                best = mount
    return best.fstype if best else None


def is_network_filesystem(fstype: str | None) -> bool:
    if fstype is None:
        return False
    return fstype in NETWORK_FILESYSTEMS or fstype.startswith("fuse.")


def detect_filesystem(path: Path) -> str | None:
    try:
        with open("/proc/self/mountinfo", encoding="utf-8", errors="replace") as handle:
            mounts = parse_mountinfo(handle.read(4 * 1024 * 1024))
    except OSError:
        return None
    return filesystem_type(path.resolve(), mounts)


def journal_mode(path: Path, setting: str | None) -> tuple[str, str]:
    """("wal" or "rollback", why): the override if one is set, else by the filesystem of ``path``."""
    from ..core.settings import DATABASE_MODES  # here: a reader that only asks the filesystem skips settings

    override = os.environ.get(ENV_DATABASE_MODE) or setting or "auto"
    if override not in DATABASE_MODES:
        override = "auto"
    if override != "auto":
        return override, f"{override} (set by {ENV_DATABASE_MODE if os.environ.get(ENV_DATABASE_MODE) else 'setting'})"
    fstype = detect_filesystem(path)
    if is_network_filesystem(fstype):
        return "rollback", f"rollback journal: {path} is on {fstype}, where SQLite's WAL is not safe"
    return "wal", f"wal ({fstype or 'local'} filesystem)"


def read_only_reason(db: Path) -> str | None:
    """Why this user can only read the database (None: they may write it). SQLite needs to write
    the database file and create its journal files next to it."""
    state_dir = db.parent
    if db.exists():
        if not os.access(db, os.W_OK):
            return f"no write permission on {db}"
        if not os.access(state_dir, os.W_OK | os.X_OK):
            return f"no write permission on {state_dir}"
        return None
    existing = state_dir
    while not existing.exists() and existing.parent != existing:  # it will be created below the first that exists
        existing = existing.parent
    if not os.access(existing, os.W_OK | os.X_OK):
        return f"no write permission on {existing}"
    return None
