"""Fixtures for the tests that need real services (see e2e_support.py for the helpers)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from e2e_support import REPO, cancel_everything

HOSTILE_NAME = "<img src=x onerror=alert(1)>"


@pytest.fixture
def output_dir() -> Path:
    path = REPO / "test-output"
    path.mkdir(exist_ok=True)
    return path


@pytest.fixture
def quickstart_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A directory for the quickstart's project; the kernel finds it through the environment. It
    already holds a job named like HTML (the tests check it shows as text; the notebook users read
    keeps to realistic jobs)."""
    from celline_jobs_nb.monitor import JobMonitor

    project = tmp_path / "project"
    project.mkdir()
    JobMonitor(project).submit_job(HOSTILE_NAME, "echo 'a job name is data, not HTML'")
    monkeypatch.setenv("CELLINE_JOBS_QUICKSTART_DIR", str(project))
    monkeypatch.setenv("CELLINE_JOBS_QUICKSTART_LONG", "120")
    yield project
    cancel_everything(project)
