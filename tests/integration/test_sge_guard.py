"""The Grid Engine tests and scripts/start-sge.sh act only on the cell the script started and
marked: a cell of a real cluster (its qmaster another host) is refused before anything is
changed, and the tests' check (tests/support.py) names what is wrong with a state file that is
missing, untrusted, stale, or about another qstat."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import support

REPO = Path(__file__).resolve().parents[2]


def test_start_sge_refuses_a_cell_whose_qmaster_is_another_host(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("start-sge.sh runs as root")
    common = tmp_path / "sge" / "default" / "common"
    common.mkdir(parents=True)
    (common / "act_qmaster").write_text("qmaster.cluster.example.org\n")
    state = tmp_path / "state"
    result = subprocess.run(["bash", str(REPO / "scripts" / "start-sge.sh")], capture_output=True, text=True,
                            timeout=120, env={**os.environ, "SGE_ROOT": str(tmp_path / "sge"), "SGE_CELL": "default",
                                              "CELLINE_JOBS_TEST_CLUSTER_DIR": str(state)})
    assert result.returncode == 1
    assert "names qmaster 'qmaster.cluster.example.org', not this host" in result.stderr
    assert sorted(p.name for p in common.iterdir()) == ["act_qmaster"]  # no mark, no alias, nothing changed
    assert (common / "act_qmaster").read_text() == "qmaster.cluster.example.org\n" and not state.exists()


def write_state(directory: Path, **values: object) -> Path:
    directory.mkdir(mode=0o755, exist_ok=True)
    fields = {"mark": support.MARK, "sge_root": "/var/lib/gridengine", "sge_cell": "default", "host": "h",
              "qmaster_pid": os.getpid(), "execd_pid": os.getpid(), "qstat": "/nowhere/qstat", **values}
    path = directory / "sge.state"
    path.write_text("".join(f"{k}={v}\n" for k, v in fields.items()))
    path.chmod(0o644)
    return path


def test_the_tests_use_only_a_marked_live_cell(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    state = tmp_path / "state"
    monkeypatch.setenv("CELLINE_JOBS_TEST_CLUSTER_DIR", str(state))
    assert "no Grid Engine cell of scripts/start-sge.sh here" in support.check_test_cell()[1]
    path = write_state(state)
    found, reason = support.check_test_cell()  # this process is no sge_qmaster
    assert found is None and f"the sge_qmaster scripts/start-sge.sh started (pid {os.getpid()}) is not" in reason
    path.write_text(path.read_text().replace(support.MARK, "someone else's"))
    assert "does not carry the mark" in support.check_test_cell()[1]
    path.chmod(0o666)  # writable by anyone: not trusted at all
    assert "writable by others" in support.check_test_cell()[1]


def test_the_tests_leave_a_cell_reached_through_another_qstat_alone(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """A live cell, but the qstat on PATH is not the one start-sge.sh checked (another Grid Engine)."""
    real_state = support.state_dir() / "sge.state"
    if not real_state.exists():
        pytest.skip("needs the cell of scripts/start-sge.sh for live daemon pids")
    values = support._read_state(real_state)
    state = tmp_path / "state"
    write_state(state, **{k: values[k] for k in ("qmaster_pid", "execd_pid", "host")})
    monkeypatch.setenv("CELLINE_JOBS_TEST_CLUSTER_DIR", str(state))
    found, reason = support.check_test_cell()
    assert found is None and "is not the one scripts/start-sge.sh checked: not touching it" in reason
