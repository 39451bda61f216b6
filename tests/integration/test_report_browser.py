"""The offline report in real headless Chromium with the network off: the table renders, sorts and
filters, job text stays text, nothing is fetched and no script error or alert happens. Driven by
node's playwright-core (``npm ci``), like the other browser tests: no Python browser package."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from support import REPO, require_service
from test_report import XSS, _data, report_file, report_project

__all__ = ["report_file", "report_project"]  # the report of real local jobs, from test_report.py

CHROMIUM = os.environ.get("CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def chunked_report_file(report_project: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same report read one attempt at a time: four parts in the page's data, decoded and
    joined by the page (as a project of 400,000 jobs is, in parts of 100,000)."""
    from celline_jobs_nb.monitor import JobMonitor
    from celline_jobs_nb.report import write_report

    return write_report(JobMonitor(report_project), tmp_path_factory.mktemp("chunked") / "report.html", chunk=1)


@pytest.mark.parametrize("which", ["report_file", "chunked_report_file"])
def test_the_table_renders_and_sorts_in_chromium_without_network(which: str, request: pytest.FixtureRequest):
    report_file: Path = request.getfixturevalue(which)
    require_service(shutil.which("node") is not None and (REPO / "node_modules" / "playwright-core").is_dir(),
                    "node and node_modules/playwright-core are needed: install node and run `npm ci`")
    require_service(os.path.exists(CHROMIUM), f"no Chromium at {CHROMIUM}: apt-get install chromium")
    driver = subprocess.run(["node", str(Path(__file__).with_name("report_offline.e2e.mjs")), str(report_file)],
                            cwd=REPO, capture_output=True, text=True, timeout=120, env={**os.environ,
                                                                                       "CHROMIUM": CHROMIUM})
    assert driver.returncode == 0, driver.stderr[-3000:]
    seen = json.loads(driver.stdout.strip().split("\n")[-1])  # not splitlines: names hold U+2028
    data = _data(report_file.read_text(encoding="utf-8"))
    names = [job["name"] for job in data["jobs"]]

    assert (seen["rows"], seen["count"], seen["submitSort"]) == (4, "4 of 4 jobs", "descending")  # newest first
    assert seen["nameAscending"] == {"sort": "ascending", "names": sorted(names, key=str.casefold)}
    assert seen["nameDescending"] == {"sort": "descending", "names": sorted(names, key=str.casefold, reverse=True)}
    assert seen["imgs"] == 0 and seen["scripts"] == 2  # the job named like an <img> is text
    by_run = sorted(data["jobs"], key=lambda job: job["run"])
    assert seen["byRun"] == {"ids": [job["id"] for job in by_run], "submitSort": "none"}
    assert seen["failedRows"] == 1 and XSS in seen["failedText"]
    assert seen["filteredCount"] == "1 of 4 jobs"
    assert (seen["timelineRects"], seen["failedLogs"]) == (4, 1)
    assert seen["requests"] == [report_file.as_uri()]
    assert seen["problems"] == []  # no alert ran, no CSP violation, no script error
