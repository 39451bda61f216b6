"""Helpers shared by the scheduler tests (SLURM and PBS adapters follow one shape, so do their tests)."""

from __future__ import annotations

import functools
import os
import shutil
import stat
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from celline_jobs_nb.core.errors import SchedulerError
from celline_jobs_nb.monitor import JobMonitor
from celline_jobs_nb.schedulers.base import CommandRunner


class Replay(CommandRunner):
    """Answers commands with recorded or canned outputs: (argv prefix, stdout, stderr, exit status)."""

    def __init__(self, answers: Sequence[tuple[Sequence[str], str, str, int]]) -> None:
        super().__init__()
        self.answers = list(answers)
        self.commands: list[list[str]] = []

    def run(self, args, *, input_text=None, timeout=None, check=True):
        self.calls += 1
        self.commands.append(list(args))
        for prefix, out, err, code in self.answers:
            if list(args[:len(prefix)]) == list(prefix):
                if check and code:
                    raise SchedulerError(f"`{' '.join(args[:2])}` exited {code}: {err.strip()}")
                return subprocess.CompletedProcess(list(args), code, out, err)
        raise AssertionError(f"unexpected command {args}")


def require_service(available: bool, reason: str) -> None:
    """Skip when a service is missing; fail instead when CELLINE_JOBS_REQUIRE_SERVICES=1."""
    if available:
        return
    if os.environ.get("CELLINE_JOBS_REQUIRE_SERVICES") == "1":
        pytest.fail(f"{reason} (CELLINE_JOBS_REQUIRE_SERVICES=1: this must not be skipped)", pytrace=False)
    pytest.skip(reason)


# ---- the test cluster's mark -------------------------------------------------------------------
# scripts/start-slurm.sh names its cluster and writes a state file with the pids of the daemons it
# started; scripts/start-pbs.sh adds the wrappers it checked. The SLURM and PBS tests run only when
# that mark is there, alive, and the commands on PATH talk to that very cluster: on a real
# cluster's login node (or beside a SLURM someone else runs) they skip, and submit or stop nothing.

REPO = Path(__file__).resolve().parents[1]
START_SLURM = REPO / "scripts" / "start-slurm.sh"
MARK = "celline_jobs_nb test cluster"


def state_dir() -> Path:
    return Path(os.environ.get("CELLINE_JOBS_TEST_CLUSTER_DIR") or "/tmp/celline-jobs-test-cluster")


@dataclass(frozen=True)
class TestCluster:
    """What scripts/start-slurm.sh recorded about the cluster it started."""

    __test__ = False  # not a test class for pytest

    cluster: str
    slurm_conf: str
    slurmctld_pid: int
    slurmd_pid: int


def _read_state(path: Path) -> dict[str, str]:
    """The key=value lines of a state file only root or this user can have written."""
    for checked in (path.parent, path):
        st = checked.lstat()
        if st.st_uid not in (0, os.getuid()) or st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
            raise ValueError(f"{checked} is writable by others or owned by uid {st.st_uid}: not trusted")
    if not stat.S_ISREG(path.lstat().st_mode):
        raise ValueError(f"{path} is not a regular file")
    with path.open(encoding="utf-8", errors="replace") as fh:
        text = fh.read(8192)
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line and not line.startswith("#"))


def _daemon_alive(pid: int, name: str) -> bool:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip() == name and Path(f"/proc/{pid}/stat").read_text(
        ).split(") ", 1)[1][:1] not in ("Z", "X")
    except (OSError, IndexError):
        return False


def _listening_pids(port: int) -> set[int] | None:
    """Pids holding a TCP socket listening on ``port``; None when /proc does not tell (not root)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            f = line.split()
            if len(f) > 9 and f[3] == "0A" and int(f[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(f"socket:[{f[9]}]")
    pids: set[int] = set()
    unreadable = False
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            links = {os.readlink(fd) for fd in (proc / "fd").iterdir()}
        except OSError:
            unreadable = True
            continue
        if links & inodes:
            pids.add(int(proc.name))
    return None if unreadable and not pids else pids


def _config(timeout: float = 20) -> dict[str, str]:
    out = subprocess.run(["scontrol", "show", "config"], capture_output=True, text=True, timeout=timeout).stdout
    conf: dict[str, str] = {}
    for line in out[:200_000].splitlines():
        key, sep, value = line.partition("=")
        if sep:
            conf.setdefault(key.strip(), value.strip())
    return conf


def check_test_cluster() -> tuple[TestCluster | None, str]:
    """The marked test cluster the SLURM commands on PATH talk to, or None and why not."""
    path = state_dir() / "slurm.state"
    start = "start it with `bash scripts/start-slurm.sh` (as root, on a machine of its own)"
    if not path.exists():
        return None, (f"no test cluster of scripts/start-slurm.sh here ({path} missing): the SLURM/PBS tests "
                      f"run only against the cluster that script starts and marks; {start}")
    try:
        state = _read_state(path)
        if state.get("mark") != MARK:
            raise ValueError(f"{path} does not carry the mark {MARK!r}")
        found = TestCluster(state["cluster"], state["slurm_conf"], int(state["slurmctld_pid"]),
                            int(state["slurmd_pid"]))
    except (OSError, ValueError, KeyError) as exc:
        return None, f"the test cluster's state file is not usable ({exc}); {start}"
    for pid, name in ((found.slurmctld_pid, "slurmctld"), (found.slurmd_pid, "slurmd")):
        if not _daemon_alive(pid, name):
            return None, f"the {name} scripts/start-slurm.sh started (pid {pid}) is not running; {start}"
    missing = [c for c in ("sinfo", "sbatch", "squeue", "scancel", "scontrol") if shutil.which(c) is None]
    if missing:
        return None, f"{', '.join(missing)} not on PATH; {start}"
    try:
        conf = _config()
    except (OSError, subprocess.TimeoutExpired) as exc:
        return None, f"`scontrol show config` failed ({exc}); {start}"
    seen = (conf.get("ClusterName"), conf.get("SLURM_CONF"), conf.get("SlurmctldHost[0]", ""))
    if seen[:2] != (found.cluster, found.slurm_conf) or not seen[2].endswith("(127.0.0.1)"):
        return None, (f"the SLURM commands on PATH ({shutil.which('scontrol')}) talk to cluster {seen[0]!r} "
                      f"(config {seen[1]!r}, controller {seen[2]!r}), not the test cluster {found.cluster!r} on "
                      f"127.0.0.1 that scripts/start-slurm.sh marked: not touching it")
    port = conf.get("SlurmctldPort", "6817")
    owners = _listening_pids(int(port)) if port.isdigit() else set()
    if owners is not None and found.slurmctld_pid not in owners:
        return None, (f"port {port} is not served by the slurmctld scripts/start-slurm.sh started "
                      f"(pid {found.slurmctld_pid}): not touching it")
    return found, ""


@functools.lru_cache(maxsize=1)
def _checked_once() -> tuple[TestCluster | None, str]:
    return check_test_cluster()


def require_test_cluster() -> TestCluster:
    """The marked test cluster (checked once per session), or skip (fail under CELLINE_JOBS_REQUIRE_SERVICES=1)."""
    found, reason = _checked_once()
    require_service(found is not None, reason)
    assert found is not None
    return found


def pbs_bin() -> Path | None:
    """The directory scripts/start-pbs.sh unpacked Slurm's Torque wrappers into (its state file's
    ``bin``), or None. Only the PBS tests put it first on PATH: /usr/bin/qsub may be Grid Engine's."""
    try:
        value = _read_state(state_dir() / "pbs.state").get("bin", "")
    except (OSError, ValueError):
        return None
    return Path(value) if value.startswith("/") else None


def pbs_path(path: str | None = None) -> str:
    """PATH with the marked wrappers' directory first (unchanged when there is none)."""
    path = os.environ.get("PATH", "") if path is None else path
    found = pbs_bin()
    return f"{found}{os.pathsep}{path}" if found else path


def require_test_pbs() -> Path:
    """Slurm's Torque wrappers that scripts/start-pbs.sh unpacked and checked, on the marked cluster:
    their directory (to put first on PATH)."""
    require_test_cluster()
    path = state_dir() / "pbs.state"
    try:
        state = _read_state(path)
    except (OSError, ValueError) as exc:
        require_service(False, f"no PBS wrappers marked by scripts/start-pbs.sh ({exc}): run "
                               "`bash scripts/start-pbs.sh` (as root)")
        raise AssertionError("unreachable") from exc
    found = pbs_bin()
    require_service(found is not None and found.is_dir(), f"{path} names no wrapper directory (bin=): run "
                                                          "`bash scripts/start-pbs.sh` (as root)")
    assert found is not None
    for command in ("qsub", "qstat", "qdel"):
        there = found / command
        require_service(there.exists() and state.get(command) == os.path.realpath(there),
                        f"the {command} in {found} is not the wrapper scripts/start-pbs.sh checked "
                        f"({state.get(command)}): not touching it; run `bash scripts/start-pbs.sh`")
    return found


@dataclass(frozen=True)
class TestCell:
    """What scripts/start-sge.sh recorded about the Grid Engine cell it configured and started."""

    __test__ = False

    sge_root: str
    sge_cell: str
    host: str
    qmaster_pid: int
    execd_pid: int
    version: str


def check_test_cell() -> tuple[TestCell | None, str]:
    """The marked Grid Engine cell the ``qstat`` on PATH talks to, or None and why not."""
    path = state_dir() / "sge.state"
    start = "start it with `bash scripts/start-sge.sh` (as root, on a machine of its own)"
    if not path.exists():
        return None, (f"no Grid Engine cell of scripts/start-sge.sh here ({path} missing): the SGE tests run "
                      f"only against the cell that script starts and marks; {start}")
    try:
        state = _read_state(path)
        if state.get("mark") != MARK:
            raise ValueError(f"{path} does not carry the mark {MARK!r}")
        found = TestCell(state["sge_root"], state["sge_cell"], state["host"], int(state["qmaster_pid"]),
                         int(state["execd_pid"]), state.get("version", "unknown"))
    except (OSError, ValueError, KeyError) as exc:
        return None, f"the Grid Engine cell's state file is not usable ({exc}); {start}"
    for pid, name in ((found.qmaster_pid, "sge_qmaster"), (found.execd_pid, "sge_execd")):
        if not _daemon_alive(pid, name):
            return None, f"the {name} scripts/start-sge.sh started (pid {pid}) is not running; {start}"
    missing = [c for c in ("qsub", "qstat", "qacct", "qdel") if shutil.which(c) is None]
    if missing:
        return None, f"{', '.join(missing)} not on PATH; {start}"
    qstat = os.path.realpath(shutil.which("qstat") or "")
    if qstat != state.get("qstat"):
        return None, f"the qstat on PATH ({qstat}) is not the one scripts/start-sge.sh checked: not touching it"
    for var, want in (("SGE_ROOT", found.sge_root), ("SGE_CELL", found.sge_cell)):
        if os.environ.get(var, want) != want:
            return None, f"{var}={os.environ[var]} names another cell than the test cell ({want}): not touching it"
    try:
        master = (Path(found.sge_root) / found.sge_cell / "common" / "act_qmaster").read_text()[:300].strip()
    except OSError as exc:
        return None, f"the test cell's act_qmaster is unreadable ({exc}); {start}"
    if master != found.host:
        return None, f"the test cell's qmaster is now {master!r}, not {found.host!r}: not touching it"
    owners = _listening_pids(int(state.get("qmaster_port", "6444")))
    if owners is not None and found.qmaster_pid not in owners:
        return None, "port 6444 is not served by the sge_qmaster scripts/start-sge.sh started: not touching it"
    return found, ""


@functools.lru_cache(maxsize=1)
def _cell_checked_once() -> tuple[TestCell | None, str]:
    return check_test_cell()


def require_test_cell() -> TestCell:
    """The marked Grid Engine cell (checked once per session), or skip (fail under CELLINE_JOBS_REQUIRE_SERVICES=1)."""
    found, reason = _cell_checked_once()
    require_service(found is not None, reason)
    assert found is not None
    return found


def require_own_daemon(name: str) -> int:
    """Before a test stops or reconfigures ``name``: the pid that runs it is the one start-slurm.sh started."""
    cluster, reason = check_test_cluster()  # fresh: the daemon may have been restarted since the session began
    if cluster is None:
        pytest.fail(f"refusing to stop {name}: {reason}", pytrace=False)
    pid = cluster.slurmctld_pid if name == "slurmctld" else cluster.slurmd_pid
    try:
        running = int(Path(f"/run/slurm/{name}.pid").read_text().strip())
    except (OSError, ValueError):
        running = -1
    if running != pid or not _daemon_alive(pid, name):
        pytest.fail(f"refusing to stop {name}: pid {running} is not the one scripts/start-slurm.sh started "
                    f"({pid})", pytrace=False)
    return pid


def poll_until(mon: JobMonitor, done: Callable[[], bool], timeout: float = 60, every: float = 0.5,
               calls: list[int] | None = None, *, scheduler: str = "slurm") -> None:
    """Force a poll every ``every`` s until ``done()``; records each poll's scheduler calls."""
    deadline = time.monotonic() + timeout
    while True:
        mon.refresh(force=True)
        if calls is not None:
            calls.append(mon.poll_states()[scheduler].last_calls)
        if done():
            return
        if time.monotonic() > deadline:
            jobs = [(j.job_id, j.name, j.status.value, j.reason) for j in mon.list_jobs()]
            raise AssertionError(f"timed out after {timeout} s: {jobs}")
        time.sleep(every)


def final(mon: JobMonitor, *job_ids: str) -> Callable[[], bool]:
    return lambda: all(mon.get_job(j).status.final for j in job_ids)
