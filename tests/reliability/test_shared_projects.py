"""Projects on shared filesystems, read by colleagues: the database mode follows the filesystem,
busy is never called damaged, recovery loses no job its files prove, a read-only user sees
everything, and a lab group's members can all write what the monitor creates."""

from __future__ import annotations

import grp
import json
import os
import pwd
import shutil
import sqlite3
import stat
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest
from support import require_service

from celline_jobs_nb import JobMonitor, JobStatus
from celline_jobs_nb.store.fsmode import filesystem_type, is_network_filesystem, journal_mode, parse_mountinfo
from celline_jobs_nb.store.sqlite import JobStore

REPO = Path(__file__).resolve().parents[2]

# One line per kind, in the kernel's mountinfo format (Linux Documentation/filesystems/proc.rst,
# "/proc/<pid>/mountinfo"), with the type names each filesystem registers and the option
# strings their clients show.
MOUNTINFO = r"""22 1 253:1 / / rw,relatime shared:1 - ext4 /dev/vda1 rw,errors=remount-ro
61 22 0:53 / /home rw,relatime shared:30 - nfs4 fs01:/export/home rw,vers=4.2,rsize=1048576,wsize=1048576,namlen=255
62 22 0:54 / /data rw,relatime shared:31 - nfs nas:/vol/data rw,vers=3,rsize=65536,wsize=65536,namlen=255,hard
63 22 0:55 / /lustre/scratch rw,relatime shared:32 - lustre 10.2.0.1@o2ib:/scratch rw,flock,lazystatfs,encrypt
64 22 0:56 / /gpfs/projects rw,relatime shared:33 - gpfs projects rw
65 22 0:57 / /mnt/beegfs rw,relatime shared:34 - beegfs beegfs_nodev rw,cfgFile=/etc/beegfs/beegfs-client.conf
66 22 0:58 / /mnt/lab\040share rw,relatime shared:35 - cifs //files/lab rw,vers=3.1.1,cache=strict,username=lab,uid=0
67 22 0:59 / /mnt/sshfs rw,nosuid,nodev,relatime shared:36 - fuse.sshfs user@host:/ rw,user_id=0,group_id=0
68 22 0:60 / /scratch/local rw,relatime shared:37 - xfs /dev/nvme0n1 rw,attr2,inode64,logbufs=8,logbsize=32k,noquota
"""


@pytest.mark.parametrize("path,fstype,network", [
    ("/home/alice/project", "nfs4", True), ("/data/p", "nfs", True), ("/lustre/scratch/u/p", "lustre", True),
    ("/gpfs/projects/p", "gpfs", True), ("/mnt/beegfs/p", "beegfs", True), ("/mnt/lab share/p", "cifs", True),
    ("/mnt/sshfs/p", "fuse.sshfs", True), ("/scratch/local/p", "xfs", False), ("/tmp/p", "ext4", False),
    ("/homeless", "ext4", False),  # a prefix of a mount point's name is not inside it
])
def test_the_filesystem_of_a_project_is_found_from_mountinfo(path: str, fstype: str, network: bool):
    mounts = parse_mountinfo(MOUNTINFO + "garbage line\n\n")
    assert filesystem_type(Path(path), mounts) == fstype
    assert is_network_filesystem(fstype) is network


def test_the_journal_follows_the_filesystem_and_can_be_overridden(project: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("CELLINE_JOBS_DATABASE_MODE", raising=False)
    assert journal_mode(project, None)[0] == "wal"  # a local disk
    assert journal_mode(project, "rollback")[0] == "rollback"
    monkeypatch.setenv("CELLINE_JOBS_DATABASE_MODE", "wal")
    assert journal_mode(project, "rollback")[0] == "wal"


@pytest.fixture
def fuse_project(tmp_path: Path):
    """A project on a real FUSE mount (bindfs): the network-filesystem path, for real."""
    require_service(shutil.which("bindfs") is not None and Path("/dev/fuse").exists(),
                    "bindfs and /dev/fuse are needed (apt-get install bindfs)")
    source, mount = tmp_path / "source", tmp_path / "mnt"
    source.mkdir()
    mount.mkdir()
    subprocess.run(["bindfs", str(source), str(mount)], check=True, timeout=30)
    try:
        (mount / ".celline").mkdir()
        yield mount
    finally:
        subprocess.run(["fusermount", "-uz", str(mount)], timeout=30, check=False)


def test_on_a_fuse_mount_the_rollback_journal_keeps_every_job_of_concurrent_writers(fuse_project: Path):
    store = JobStore(fuse_project)
    assert store.journal == "rollback"
    store.close()
    script = ("import sys; from celline_jobs_nb import JobMonitor\n"
              "m = JobMonitor(sys.argv[1])\n"
              "for i in range(40): m.submit_job(f'w{sys.argv[2]}-{i}', 'true', scheduler='local')\n"
              "m.wait(timeout=120)\n")
    writers = [subprocess.Popen([sys.executable, "-c", script, str(fuse_project), str(n)], cwd=REPO)
               for n in range(3)]
    reader = JobMonitor(fuse_project)
    while any(w.poll() is None for w in writers):
        reader.list_jobs()  # a reader at the same time
        time.sleep(0.05)
    assert [w.returncode for w in writers] == [0, 0, 0]
    jobs = JobMonitor(fuse_project).list_jobs()
    assert len(jobs) == 120 and len({j.name for j in jobs}) == 120
    assert all(j.status is JobStatus.COMPLETED for j in jobs)
    with sqlite3.connect(fuse_project / ".celline" / "jobs.db") as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def cli(project: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "celline_jobs_nb", "--project", str(project), *args],
                          capture_output=True, text=True, timeout=timeout)


def test_busy_is_not_damaged_and_recover_touches_nothing(project: Path, monkeypatch: pytest.MonkeyPatch):
    # The rollback journal (what a network filesystem gets): a writer's lock blocks readers too. In
    # WAL mode readers are never blocked, and db check answers "intact" at once.
    monkeypatch.setenv("CELLINE_JOBS_DATABASE_MODE", "rollback")
    (project / ".celline").mkdir()
    monitor = JobMonitor(project)
    job_id = monitor.submit_job("kept", "true")
    monitor.wait([job_id], timeout=30)
    locked, release = threading.Event(), threading.Event()

    def hold_lock() -> None:
        conn = sqlite3.connect(monitor.paths.db, isolation_level=None)
        conn.execute("BEGIN EXCLUSIVE")
        locked.set()
        release.wait(60)
        conn.execute("ROLLBACK")
        conn.close()

    holder = threading.Thread(target=hold_lock)
    holder.start()
    try:
        assert locked.wait(10)
        check = cli(monitor.paths.root, "db", "check")
        assert check.returncode == 2 and "busy" in check.stderr and "damaged" not in check.stdout + check.stderr
        recover = cli(monitor.paths.root, "db", "recover")
        assert recover.returncode == 2 and "busy" in recover.stderr
    finally:
        release.set()
        holder.join()
    assert [j.job_id for j in JobMonitor(monitor.paths.root).list_jobs()] == [job_id]
    assert "intact" in cli(monitor.paths.root, "db", "check").stdout


def test_a_deleted_database_is_noticed_and_rebuilt_from_backup_and_job_files(monitor: JobMonitor):
    old = monitor.submit_job("before the backup", "true")
    monitor.wait([old], timeout=30)
    cli(monitor.paths.root, "db", "backup")
    new = monitor.submit_job("after the backup", "exit 3")
    monitor.wait([new], timeout=30)
    monitor.store.close()
    for suffix in ("", "-wal", "-shm"):
        Path(str(monitor.paths.db) + suffix).unlink(missing_ok=True)
    listed = cli(monitor.paths.root, "list")
    assert listed.returncode == 2 and "db recover" in listed.stderr and not monitor.paths.db.exists()
    assert "missing" in cli(monitor.paths.root, "db", "check").stdout
    recovered = cli(monitor.paths.root, "db", "recover")
    assert recovered.returncode == 0, recovered.stderr
    assert "rebuilt 1 job" in recovered.stdout
    jobs = {j.job_id: j for j in JobMonitor(monitor.paths.root).list_jobs()}
    assert jobs[old].name == "before the backup" and jobs[old].status is JobStatus.COMPLETED
    assert jobs[new].status is JobStatus.FAILED and jobs[new].exit_code == 3


def test_recover_refuses_an_intact_database(monitor: JobMonitor):
    monitor.submit_job("x", "true")
    result = cli(monitor.paths.root, "db", "recover")
    assert result.returncode == 2 and "intact" in result.stderr


def _as_user(uid: int, gid: int, *args: str, groups: bool = False, umask: int = 0o022) -> subprocess.CompletedProcess:
    """A command as another, unprivileged user, with the machine's own Python (the test's may sit
    under /root, which other users cannot enter)."""
    identity = ["--init-groups"] if groups else ["--clear-groups"]
    return subprocess.run(["setpriv", "--reuid", str(uid), "--regid", str(gid), *identity, "sh", "-c",
                           f'umask {umask:03o}; exec "$@"', "sh", *args],
                          capture_output=True, text=True, timeout=120,
                          env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO), "HOME": "/tmp", "LANG": "C.UTF-8"})


def _system_python_can_run_the_cli() -> bool:
    return subprocess.run(["/usr/bin/python3", "-c", "import celline_jobs_nb.cli"], env={"PYTHONPATH": str(REPO)},
                          capture_output=True).returncode == 0 if Path("/usr/bin/python3").exists() else False


@pytest.fixture
def open_dir():
    """A directory other users can enter (pytest's own temporary directories are private to root)."""
    directory = Path(tempfile.mkdtemp(prefix="celline-jobs-shared-", dir="/tmp"))
    directory.chmod(0o755)
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


def test_a_read_only_colleague_sees_everything_and_changes_nothing(open_dir: Path):
    tmp_path = open_dir
    require_service(os.geteuid() == 0 and shutil.which("setpriv") is not None and _system_python_can_run_the_cli(),
                    "needs root, setpriv and /usr/bin/python3 to act as a second user")
    tmp_path.chmod(0o755)
    project = tmp_path / "owned-by-root"
    (project / ".celline").mkdir(parents=True)
    mon = JobMonitor(project)
    done = mon.submit_job("counted", "echo counted-line")
    mon.wait([done], timeout=30)
    mon.store.close()
    with sqlite3.connect(project / ".celline" / "jobs.db") as db:  # everything in the file itself
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    subprocess.run(["chmod", "-R", "a+rX,go-w", str(tmp_path)], check=True)
    before = (project / ".celline" / "jobs.db").read_bytes()
    python = ["/usr/bin/python3", "-m", "celline_jobs_nb", "--project", str(project)]
    for command in (["list"], ["status", done], ["logs", done], ["history"], ["list", "--json"]):
        result = _as_user(65534, 65534, *python, *command)
        assert result.returncode == 0, (command, result.stderr)
        assert "Traceback" not in result.stderr and "read-only" in result.stderr
        assert "readonly database" not in result.stderr
    assert "counted-line" in _as_user(65534, 65534, *python, "logs", done).stdout
    assert json.loads(_as_user(65534, 65534, *python, "list", "--json").stdout)[0]["name"] == "counted"
    for command in (["cancel", done], ["retry", done], ["submit", "--command", "true"]):
        result = _as_user(65534, 65534, *python, *command)
        assert result.returncode == 2 and "write access" in result.stderr and "Traceback" not in result.stderr, \
            (command, result.stderr)
    check = _as_user(65534, 65534, *python, "db", "check")
    assert "damaged" not in check.stdout + check.stderr
    assert (project / ".celline" / "jobs.db").read_bytes() == before


def _ensure_user(name: str, group: str) -> int:
    try:
        return pwd.getpwnam(name).pw_uid
    except KeyError:
        subprocess.run(["useradd", "--no-create-home", "--shell", "/usr/sbin/nologin", "-G", group, name], check=True)
        return pwd.getpwnam(name).pw_uid


def test_a_lab_group_shares_a_project_every_member_can_write(open_dir: Path):
    tmp_path = open_dir
    require_service(os.geteuid() == 0 and shutil.which("setpriv") is not None and shutil.which("useradd") is not None
                    and _system_python_can_run_the_cli(), "needs root, setpriv, useradd and /usr/bin/python3")
    group = "cjlab"
    try:
        gid = grp.getgrnam(group).gr_gid
    except KeyError:
        subprocess.run(["groupadd", group], check=True)
        gid = grp.getgrnam(group).gr_gid
    alice, bob = _ensure_user("cjalice", group), _ensure_user("cjbob", group)
    tmp_path.chmod(0o755)
    project = tmp_path / "lab-project"
    project.mkdir()
    os.chown(project, 0, gid)
    project.chmod(0o2775)  # setgid: everything below belongs to the group
    python = ["/usr/bin/python3", "-m", "celline_jobs_nb", "--project", str(project)]
    (project / ".celline").mkdir()
    os.chown(project / ".celline", alice, gid)
    (project / ".celline").chmod(0o2775)
    first = _as_user(alice, gid, *python, "submit", "--command", "echo from-alice", groups=True, umask=0o002)
    assert first.returncode == 0, first.stderr
    time.sleep(2)
    second = _as_user(bob, gid, *python, "submit", "--command", "echo from-bob", groups=True, umask=0o002)
    assert second.returncode == 0 and "readonly" not in second.stderr, second.stderr
    listed = _as_user(bob, gid, *python, "list", "--json", groups=True, umask=0o002)
    assert listed.returncode == 0, listed.stderr
    assert len(json.loads(listed.stdout)) == 2
    for path in (project / ".celline" / "jobs.db", *(project / "logs").glob("*")):
        mode = path.stat().st_mode
        assert mode & stat.S_IWGRP, (path, oct(mode))
