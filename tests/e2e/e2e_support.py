"""Helpers for the tests that need real services (JupyterLab, Chromium, a kernel)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
REQUIRE = os.environ.get("CELLINE_JOBS_REQUIRE_SERVICES") == "1"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")


def need(ok: bool, reason: str) -> None:
    """Skip when a service is missing; with CELLINE_JOBS_REQUIRE_SERVICES=1, fail instead."""
    if ok:
        return
    if REQUIRE:
        pytest.fail(f"{reason} (CELLINE_JOBS_REQUIRE_SERVICES=1 forbids skipping)")
    pytest.skip(reason)


def cancel_everything(project: Path) -> None:
    """Never leave the notebook's jobs running after a test."""
    if not (project / ".celline" / "jobs.db").exists():
        return
    from celline_jobs_nb.monitor import JobMonitor

    monitor = JobMonitor(project)
    for job in monitor.store.active():
        try:
            monitor.cancel_job(job.job_id, wait=0)
        except Exception:
            pass


def have_node_tools() -> bool:
    return shutil.which("node") is not None and (REPO / "node_modules" / "playwright-core").is_dir()
