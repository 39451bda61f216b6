"""Fixtures for the real single-node SLURM of scripts/start-slurm.sh.

Tests that need it use ``slurm_cluster`` (or ``slurm_monitor``). They run only against the cluster
scripts/start-slurm.sh started and marked (tests/support.py checks the mark); without it, or when the
node does not answer, they skip, except with CELLINE_JOBS_REQUIRE_SERVICES=1 (CI), where they FAIL:
in CI nothing may silently stop being tested. Stopping the controller first checks that its pid is
the one the script started.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from support import START_SLURM, require_own_daemon, require_service, require_test_cluster

from celline_jobs_nb.core.models import JobStatus
from celline_jobs_nb.monitor import JobMonitor


@dataclass(frozen=True)
class SlurmCluster:
    """The running test cluster, and the script that starts and stops its parts."""

    script: Path

    def run_script(self, *args: str, timeout: float = 120) -> None:
        subprocess.run(["bash", str(self.script), *args], check=True, timeout=timeout,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def stop_controller(self) -> None:
        require_own_daemon("slurmctld")  # never a slurmctld this project's script did not start
        self.run_script("stop-ctld")

    def start(self) -> None:
        self.run_script()

    def answers(self) -> bool:
        return _cluster_answers()


def _cluster_answers() -> bool:
    if shutil.which("sinfo") is None or shutil.which("sbatch") is None:
        return False
    try:
        result = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return False
    states = result.stdout.split()
    return result.returncode == 0 and any(s.rstrip("*~#") in ("idle", "mixed", "allocated", "completing")
                                          for s in states)


@pytest.fixture(scope="session")
def slurm_cluster() -> SlurmCluster:
    require_test_cluster()  # the marked test cluster, or skip: never a cluster we did not start
    require_service(_cluster_answers(),
                    "the test cluster's node does not take jobs: run `bash scripts/start-slurm.sh` (as root)")
    return SlurmCluster(START_SLURM)


@pytest.fixture
def slurm_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests poll every second (the 30 s floor is for real clusters, not a private test node)."""
    monkeypatch.setenv("CELLINE_JOBS_SLURM_MIN_POLL_INTERVAL", "1")


@pytest.fixture
def slurm_monitor(slurm_cluster: SlurmCluster, slurm_env: None, project: Path) -> Iterator[JobMonitor]:
    mon = JobMonitor(project, poll_intervals={"slurm": 1})
    yield mon
    mon.stop_polling()
    cancel_everything(project)


def cancel_everything(project: Path) -> None:
    """Leave no job of this project on the 2-CPU test node (the next test needs the CPUs)."""
    mon = JobMonitor(project)
    native = [j.native_id for j in mon.store.list(scheduler="slurm")
              if j.native_id and j.status is not JobStatus.COMPLETED]
    if native and shutil.which("scancel"):
        subprocess.run(["scancel", *dict.fromkeys(native)], capture_output=True, timeout=60)
