"""Shared fixtures. With CELLINE_JOBS_REQUIRE_SERVICES=1 (set by .ci/run), every skipped test is
reported as a failure: in CI nothing silently stops being tested."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from celline_jobs_nb.monitor import JobMonitor

REQUIRE_SERVICES = os.environ.get("CELLINE_JOBS_REQUIRE_SERVICES") == "1"


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
