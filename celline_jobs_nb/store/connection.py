"""The job store's connections and transactions: connecting (journal mode by the filesystem,
read-only when that is all this process may do), the schema check and migrations, the retried
``BEGIN IMMEDIATE`` transaction and reads, and the background WAL checkpointer. A mixin of
``JobStore`` (``store.sqlite``), which sets the attributes it uses."""

from __future__ import annotations

import logging
import os
import random
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from ..core.errors import StoreError
from ..core.paths import ProjectPaths
from .schema import MIGRATIONS, SCHEMA_VERSION

T = TypeVar("T")
log = logging.getLogger("celline.job")

BUSY_RETRIES = 60


def _files(directory: Path, pattern: str) -> Iterator[Path]:
    try:
        yield from directory.glob(pattern)
    except OSError:
        return


def create_shared(path: Path) -> None:
    """Create the database file with the mode every new file gets (0666 less the umask): SQLite
    would make it 0644, and its -wal/-shm files copy the database's mode, so a lab group sharing
    the project (umask 002) could not write it."""
    try:
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_CLOEXEC, 0o666))
    except FileExistsError:
        pass


#: Every this many write transactions, a process checkpoints the WAL on a thread of its own. SQLite
#: would otherwise do it inside a commit once the WAL holds 1,000 pages, and the checkpoint's fsync
#: (5-15 ms here, every ~45 submits) stalled that caller. Its own automatic checkpoint stays, at
#: AUTOCHECKPOINT_PAGES, for processes too short-lived to reach this count (job wrappers, the CLI).
CHECKPOINT_EVERY_COMMITS = 50
AUTOCHECKPOINT_PAGES = 4000


class _Checkpointer:
    """PASSIVE WAL checkpoints of one database on a background thread (they never block readers or
    writers); one per database file and process."""

    _of: ClassVar[dict[str, _Checkpointer]] = {}
    _of_lock = threading.Lock()

    def __init__(self, path: str) -> None:
        self._path = path
        self._wanted = threading.Event()
        self._thread: threading.Thread | None = None

    @classmethod
    def request(cls, path: str) -> None:
        with cls._of_lock:
            checkpointer = cls._of.setdefault(path, cls(path))
            if checkpointer._thread is None or not checkpointer._thread.is_alive():  # none yet, or forked
                checkpointer._thread = threading.Thread(target=checkpointer._run, daemon=True,
                                                        name="celline-jobs-checkpoint")
                checkpointer._thread.start()
        checkpointer._wanted.set()

    def _run(self) -> None:
        conn = sqlite3.connect(self._path, timeout=5.0, isolation_level=None, check_same_thread=False)
        while True:
            self._wanted.wait()
            self._wanted.clear()
            try:
                conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
            except sqlite3.Error as exc:  # the next commit's or request's checkpoint catches up
                log.debug("background checkpoint of %s failed: %s", self._path, exc)


class ConnectionMixin:
    """``JobStore``'s connections and transactions."""

    if TYPE_CHECKING:
        paths: ProjectPaths
        path: Path
        read_only: str | None
        journal: str
        _local: threading.local
        _commits: int
        _immutable: bool

    # -- connections and transactions -------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is not None and getattr(self._local, "pid", None) == os.getpid():
            return conn
        try:
            if self.read_only is not None:
                conn = self._connect_read_only()
            else:
                conn = sqlite3.connect(self.path, timeout=5.0, isolation_level=None, check_same_thread=False)
                self._set_journal(conn)
            # 16 MiB of page cache (SQLite's default is 2 MiB): a long-lived reader (a notebook's
            # dashboard) listing thousands of jobs of a big store finds their pages in memory.
            conn.execute("PRAGMA cache_size=-16384")
            conn.execute("PRAGMA foreign_keys=ON")
        except sqlite3.DatabaseError as exc:
            raise self._store_error(exc) from None
        self._local.conn, self._local.pid = conn, os.getpid()
        return conn

    def _set_journal(self, conn: sqlite3.Connection) -> None:
        if self.journal == "rollback":
            # A database another host may open: the rollback journal, normal locking (fsmode docs).
            mode = conn.execute("PRAGMA journal_mode=DELETE").fetchone()[0]
            if mode != "delete":
                log.warning("job database %s stays in %s mode (another process has it open)", self.path, mode)
            conn.execute("PRAGMA locking_mode=NORMAL")
            conn.execute("PRAGMA synchronous=FULL")
            return
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute(f"PRAGMA wal_autocheckpoint={AUTOCHECKPOINT_PAGES}")

    def _connect_read_only(self) -> sqlite3.Connection:
        """``mode=ro``; when even that fails (a WAL database whose -shm this user cannot create),
        ``immutable=1``: SQLite then reads the file as it is, without locks (a snapshot)."""
        uri = self.path.absolute().as_uri()
        if not self._immutable:
            conn = sqlite3.connect(f"{uri}?mode=ro", uri=True, timeout=5.0, isolation_level=None,
                                   check_same_thread=False)
            try:
                conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
                return conn
            except sqlite3.OperationalError:
                conn.close()
                self._immutable = True
        return sqlite3.connect(f"{uri}?immutable=1", uri=True, isolation_level=None, check_same_thread=False)

    def _check_schema_readable(self) -> None:
        try:
            version = self._connect().execute("PRAGMA user_version").fetchone()[0]
        except sqlite3.DatabaseError as exc:
            raise self._store_error(exc) from None
        if version != SCHEMA_VERSION:
            raise StoreError(f"{self.path} has schema {version}, this version reads {SCHEMA_VERSION}, and you may "
                             f"not write it ({self.read_only}): ask the project's owner to run any celline-jobs "
                             "command")

    def _refuse_a_lost_database(self) -> None:
        """A project with job files but no database lost it: creating an empty one would hide
        every job. Say so, and how ``db recover`` rebuilds it."""
        if self.path.exists():
            return
        evidence = [p for p in (self.paths.backups_dir, self.paths.scripts_dir) if any(_files(p, "*"))]
        if any(_files(self.paths.logs_dir, "*.exitcode")):
            evidence.append(self.paths.logs_dir)
        if evidence:
            raise StoreError(f"the job database {self.path} is missing although {evidence[0]} holds this project's "
                             "jobs: run `celline-jobs db recover` to rebuild it from the backups and job files")

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    def _store_error(self, exc: BaseException) -> StoreError:
        text = str(exc)
        if "not a database" in text or "malformed" in text:
            return StoreError(
                f"the job database {self.path} is corrupted ({text}): "
                f"run `celline-jobs db recover` to restore the newest backup from {self.paths.backups_dir}"
            )
        if "disk" in text and ("full" in text or "I/O" in text):
            return StoreError(f"cannot write the job database {self.path}: {text}; free disk space and retry")
        return StoreError(f"job database {self.path}: {text}")

    def _retrying(self, action: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``action`` in BEGIN IMMEDIATE ... COMMIT, retrying while another process holds the lock."""
        if self.read_only is not None:
            raise StoreError(f"read-only: {self.read_only}; submit, cancel and retry need write access to "
                             "the project (ask its owner, or use a copy)")
        conn = self._connect()
        for attempt in range(BUSY_RETRIES):
            try:
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:
                if "locked" in str(exc) or "busy" in str(exc):
                    time.sleep(min(0.5, 0.01 * 2 ** min(attempt, 6)) * random.uniform(0.5, 1.5))
                    continue
                raise self._store_error(exc) from None
            except sqlite3.DatabaseError as exc:
                raise self._store_error(exc) from None
            try:
                result = action(conn)
                conn.execute("COMMIT")
            except BaseException as exc:
                try:
                    conn.execute("ROLLBACK")
                except sqlite3.Error:
                    pass
                if isinstance(exc, sqlite3.OperationalError) and ("locked" in str(exc) or "busy" in str(exc)):
                    time.sleep(min(0.5, 0.01 * 2 ** min(attempt, 6)) * random.uniform(0.5, 1.5))
                    continue
                if isinstance(exc, sqlite3.DatabaseError):
                    raise self._store_error(exc) from None
                raise
            self._commits += 1
            if self._commits % CHECKPOINT_EVERY_COMMITS == 0:
                _Checkpointer.request(str(self.path))
            return result
        raise StoreError(f"the job database {self.path} stayed locked by another process; try again")

    def _read(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        conn = self._connect()
        for attempt in range(BUSY_RETRIES):
            try:
                return conn.execute(sql, params).fetchall()
            except sqlite3.OperationalError as exc:
                if "locked" in str(exc) or "busy" in str(exc):
                    time.sleep(0.01 * (attempt + 1))
                    continue
                raise self._store_error(exc) from None
            except sqlite3.DatabaseError as exc:
                raise self._store_error(exc) from None
        raise StoreError(f"the job database {self.path} stayed locked by another process; try again")

    def _migrate(self) -> None:
        conn = self._connect()
        try:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
        except sqlite3.DatabaseError as exc:
            raise self._store_error(exc) from None
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"{self.path} was written by a newer celline_jobs_nb (schema {version} > {SCHEMA_VERSION}): upgrade"
            )
        if version == SCHEMA_VERSION:
            return

        def migrate(c: sqlite3.Connection) -> None:
            current = c.execute("PRAGMA user_version").fetchone()[0]  # another process may have migrated
            for number in range(current, SCHEMA_VERSION):
                for statement in MIGRATIONS[number].split(";"):
                    if statement.strip():
                        c.execute(statement)
                c.execute(f"PRAGMA user_version = {number + 1}")

        self._retrying(migrate)
