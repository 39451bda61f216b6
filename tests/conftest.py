"""Shared fixtures. With CELLINE_JOBS_REQUIRE_SERVICES=1 (set by .ci/run), every skipped test is
reported as a failure: in CI nothing silently stops being tested.

Every test that uses SLURM (marked ``slurm``, or using a SLURM/PBS fixture, which marks it) runs only
against the test cluster scripts/start-slurm.sh started and marked; the PBS ones also need the
wrappers scripts/start-pbs.sh recorded (tests/support.py). The check runs before any fixture, so a
test on a foreign cluster never reaches sbatch, scancel or the start script."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import pbs_path, require_test_cell, require_test_cluster, require_test_pbs

from celline_jobs_nb.monitor import JobMonitor

REQUIRE_SERVICES = os.environ.get("CELLINE_JOBS_REQUIRE_SERVICES") == "1"


SLURM_FIXTURES = frozenset({"slurm_cluster", "slurm_monitor", "pbs_wrappers", "pbs_monitor"})
PBS_FIXTURES = frozenset({"pbs_wrappers", "pbs_monitor"})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:  # `-m slurm` selects (and `-m "not slurm"` leaves out) every test that needs the cluster
        if SLURM_FIXTURES & set(getattr(item, "fixturenames", ())) and not item.get_closest_marker("slurm"):
            item.add_marker(pytest.mark.slurm)
        # The quick part (`-m "not slow"`) leaves out the cluster and browser tests: they wait for
        # real daemons and a real Chromium.
        if (item.get_closest_marker("slurm") or item.get_closest_marker("sge") or item.get_closest_marker("e2e")) \
                and not item.get_closest_marker("slow"):
            item.add_marker(pytest.mark.slow)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("slurm"):
        require_test_cluster()
    if item.get_closest_marker("sge"):
        require_test_cell()
    if _uses_pbs(item):
        require_test_pbs()


def _uses_pbs(item: pytest.Item) -> bool:
    callspec = getattr(item, "callspec", None)
    return bool(PBS_FIXTURES & set(getattr(item, "fixturenames", ()))) or (
        callspec is not None and callspec.params.get("backend") == "pbs")  # tests/contract's backends


@pytest.fixture(autouse=True)
def _pbs_wrappers_first_on_path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """PBS tests only: the Torque wrappers scripts/start-pbs.sh unpacked into their own prefix come
    first on PATH (/usr/bin/qsub may be Grid Engine's; slurm-wlm-torque conflicts with it)."""
    if _uses_pbs(request.node):
        monkeypatch.setenv("PATH", pbs_path())


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    if REQUIRE_SERVICES and report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.longrepr = f"skipped, but CELLINE_JOBS_REQUIRE_SERVICES=1 forbids skips: {reason}"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    root.mkdir()
    return root


@pytest.fixture
def monitor(project: Path) -> Iterator[JobMonitor]:
    mon = JobMonitor(project, max_parallel=4)
    yield mon
    mon.stop_polling()
    for job in mon.store.active():  # never leave processes behind
        if job.scheduler == "local":
            mon.cancel_job(job.job_id, wait=0)
