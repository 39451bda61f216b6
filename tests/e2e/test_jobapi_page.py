"""The standalone page and the JS JobAPI client in real Chromium against a real jupyter server."""

from __future__ import annotations

import json
import subprocess
import time
from datetime import timedelta
from pathlib import Path

import pytest
from conftest import HOSTILE_NAME
from e2e_support import REPO, cancel_everything, have_node_tools, need
from jobapi_server import start_server

from celline_jobs_nb.archive import archive
from celline_jobs_nb.core.models import JobInfo, JobStatus, utcnow
from celline_jobs_nb.monitor import JobMonitor

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def test_the_page_and_the_js_client_in_chromium(tmp_path: Path, output_dir: Path) -> None:
    need(have_node_tools(), "node and node_modules/playwright-core are needed (npm ci)")
    need(Path("/usr/bin/chromium").exists(), "Chromium is needed at /usr/bin/chromium")
    root = tmp_path / "root"
    project = root / "proj"
    project.mkdir(parents=True)
    monitor = JobMonitor(project)
    done = monitor.submit_job("done", "echo hello")
    hostile = monitor.submit_job(HOSTILE_NAME, "true")
    monitor.wait([done, hostile], timeout=60)
    old = utcnow() - timedelta(days=60)
    monitor.store.insert(JobInfo(job_id="oldjob01", name="old one", status=JobStatus.COMPLETED, command="true",
                                 start_time=old, end_time=old, submit_time=old))
    monitor.paths.log_file("oldjob01").write_text("archived text\n")
    assert archive(monitor).jobs == ["oldjob01"]
    running = monitor.submit_job("long", "sleep 120")
    deadline = time.monotonic() + 20
    while monitor.get_job(running).status is not JobStatus.RUNNING and time.monotonic() < deadline:
        time.sleep(0.1)
    server = start_server(root, tmp_path / "jupyter")
    try:
        url = f"{server.url}/celline-jobs/?project=proj&token={server.token}"
        driver = subprocess.run(["node", str(REPO / "tests" / "e2e" / "jobapi_page.e2e.mjs"), url, running, done],
                                cwd=REPO, capture_output=True, text=True, timeout=180,
                                env={**__import__("os").environ, "SHOT": str(output_dir / "jobapi_page.png")})
        assert driver.returncode == 0, driver.stderr
        seen = json.loads(driver.stdout.strip().splitlines()[-1])
    finally:
        server.stop()
        cancel_everything(project)
    assert seen["errors"] == []
    names = {r["name"] for r in seen["rows"]}
    assert {"done", HOSTILE_NAME, "long"} <= names and "old one" not in names  # archived: hidden
    assert seen["injected"] == 0  # the HTML-like name is text
    assert seen["chip"] == "Show archived (1)" and seen["archivedShown"] == 1
    client = seen["client"]
    assert client["list"] == 4 and set(client["listCompleted"]) == {"completed"} and client["get"] == "completed"
    assert client["progress"] == ["details", "job_id", "progress", "stage", "timestamp"]
    assert client["logs"] == {"text": "hello\n", "last": "end"}
    assert client["missing"] == ["JobAPIError", 404]
    assert client["cancel"] is True and client["retried"] == running
    assert seen["afterCancel"] == "cancelled"
    assert "hello" in seen["logLines"]
    assert JobMonitor(project).get_job(running).status is JobStatus.CANCELLED
