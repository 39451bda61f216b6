"""Fixtures for the tests that need real services (see e2e_support.py for the helpers)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from e2e_support import REPO, cancel_everything


@pytest.fixture
def output_dir() -> Path:
    path = REPO / "test-output"
    path.mkdir(exist_ok=True)
    return path


@pytest.fixture
def quickstart_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A directory for the quickstart's project; the kernel finds it through the environment."""
    project = tmp_path / "project"
    monkeypatch.setenv("CELLINE_JOBS_QUICKSTART_DIR", str(project))
    monkeypatch.setenv("CELLINE_JOBS_QUICKSTART_LONG", "120")
    yield project
    cancel_everything(project)
