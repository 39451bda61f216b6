"""The test suite never touches a cluster it did not start.

With SLURM and PBS commands on PATH that belong to somebody else (scripts that log every call and
answer like a healthy production cluster), every test that uses SLURM or PBS skips with the reason:
nothing is submitted, cancelled or stopped, and the start script's stop-ctld refuses a slurmctld
whose pid its state file does not name. The suite runs in a subprocess, as a user would run it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import support
from support import REPO, START_SLURM, state_dir

FOREIGN = {
    "sinfo": 'echo "idle"',
    "squeue": "true",
    "sbatch": 'echo "4242"',
    "scancel": "true",
    "sacct": "true",
    "sstat": "true",
    "srun": "true",
    "scontrol": ('[ "$1 $2" = "show config" ] && printf "%s\\n" "ClusterName = production" '
                 '"SLURM_CONF = /etc/slurm/slurm.conf" "SlurmctldHost[0] = login1(10.0.0.1)" '
                 '"SlurmctldPort = 6817"; true'),
    "qsub": 'echo "4242.login1"',
    "qstat": "# Slurm's Torque wrapper (so it claims)\ntrue",
    "qdel": "true",
}
#: what a test may ask a cluster it is not sure of: reading its configuration
READ_ONLY = ("scontrol show config",)


def foreign_cluster(tmp_path: Path) -> tuple[Path, Path]:
    bin_dir, log = tmp_path / "foreign-bin", tmp_path / "calls.log"
    bin_dir.mkdir()
    for name, body in FOREIGN.items():
        script = bin_dir / name
        script.write_text(f'#!/bin/sh\necho "{name} $*" >> "{log}"\n{body}\n')
        script.chmod(0o755)
    return bin_dir, log


def run_cluster_tests(bin_dir: Path, state: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "CELLINE_JOBS_REQUIRE_SERVICES" and not k.startswith("PYTEST")}
    env.update(PATH=f"{bin_dir}{os.pathsep}{env.get('PATH', '')}", CELLINE_JOBS_TEST_CLUSTER_DIR=str(state))
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-m", "slurm", "-q", "-rs", "-p", "no:cacheprovider", "--timeout=120",
         "tests/integration", "tests/reliability", "tests/test_benchmarks_quick.py"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=600)


def slurmctld_pid() -> str | None:
    try:
        return Path("/run/slurm/slurmctld.pid").read_text().strip()
    except OSError:
        return None


@pytest.mark.parametrize("mark", ["no mark (a login node)", "this machine's mark"])
def test_with_a_foreign_cluster_on_path_the_suite_submits_and_stops_nothing(tmp_path: Path, mark: str):
    bin_dir, log = foreign_cluster(tmp_path)
    state = tmp_path / "no-mark" if mark.startswith("no mark") else state_dir()
    ctld_before = slurmctld_pid()
    result = run_cluster_tests(bin_dir, state)
    summary = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else result.stderr
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert " skipped" in summary and "passed" not in summary and "failed" not in summary, summary
    skips = [line for line in result.stdout.splitlines() if line.startswith("SKIPPED")]
    assert skips and all("scripts/start-slurm.sh" in line for line in skips), skips[:5]
    calls = log.read_text().splitlines() if log.exists() else []
    assert [c for c in calls if not c.startswith(READ_ONLY)] == []  # no sbatch, scancel, qsub, qdel, srun...
    assert slurmctld_pid() == ctld_before  # and no daemon was stopped or restarted


def test_stop_ctld_refuses_a_controller_the_state_file_does_not_name(tmp_path: Path):
    if os.geteuid() != 0 or slurmctld_pid() is None:
        pytest.skip("needs root and a running slurmctld to refuse to stop")
    pid = slurmctld_pid()
    elsewhere = tmp_path / "state"
    elsewhere.mkdir()
    for content in (None, f"mark=celline_jobs_nb test cluster\nslurmctld_pid={int(pid or 0) + 100000}\n"):
        if content is not None:
            (elsewhere / "slurm.state").write_text(content)
        result = subprocess.run(["bash", str(START_SLURM), "stop-ctld"], capture_output=True, text=True, timeout=60,
                                env={**os.environ, "CELLINE_JOBS_TEST_CLUSTER_DIR": str(elsewhere)})
        assert result.returncode == 1 and "refusing" in result.stderr
        assert slurmctld_pid() == pid


def test_a_forged_mark_naming_other_processes_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A state file whose pids are not slurmctld/slurmd (here: this test's own process) is no mark,
    and a test that wants to stop slurmctld is failed before it stops anything."""
    state = tmp_path / "state"
    state.mkdir(mode=0o755)
    (state / "slurm.state").write_text(f"mark=celline_jobs_nb test cluster\ncluster=celline_jobs_test\n"
                                       f"slurm_conf=/etc/slurm/slurm.conf\nslurmctld_pid={os.getpid()}\n"
                                       f"slurmd_pid={os.getpid()}\n")
    monkeypatch.setenv("CELLINE_JOBS_TEST_CLUSTER_DIR", str(state))
    found, reason = support.check_test_cluster()
    assert found is None and f"(pid {os.getpid()}) is not running" in reason
    ctld = slurmctld_pid()
    with pytest.raises(pytest.fail.Exception, match="refusing to stop slurmctld"):
        support.require_own_daemon("slurmctld")
    assert slurmctld_pid() == ctld
    (state / "slurm.state").chmod(0o666)  # writable by anyone: not trusted at all
    assert "writable by others" in support.check_test_cluster()[1]


def test_start_pbs_leaves_a_real_pbs_alone(tmp_path: Path):
    """A qstat on PATH that is not Slurm's Torque wrapper (a real PBS or Torque): start-pbs.sh stops
    with the reason, before installing, starting or recording anything."""
    if os.geteuid() != 0:
        pytest.skip("start-pbs.sh runs as root")
    bin_dir = tmp_path / "pbs-bin"
    bin_dir.mkdir()
    for name in ("qsub", "qstat", "qdel"):
        (bin_dir / name).write_text(f"#!/bin/sh\necho \"{name} $*\" >> {tmp_path}/calls.log\n")
        (bin_dir / name).chmod(0o755)
    state = tmp_path / "state"
    result = subprocess.run(["bash", str(REPO / "scripts" / "start-pbs.sh")], capture_output=True, text=True,
                            timeout=120, env={**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}",
                                              "CELLINE_JOBS_TEST_CLUSTER_DIR": str(state)})
    assert result.returncode == 1 and "this machine has its own PBS" in result.stderr
    assert "[start-slurm]" not in result.stderr and not state.exists() and not (tmp_path / "calls.log").exists()
