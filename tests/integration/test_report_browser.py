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


def test_a_long_table_shows_a_page_at_a_time_across_parts(tmp_path: Path):
    """1,100 jobs read 300 at a time (four parts): the newest 500 first, "Show more" twice, a sort
    by name and a filter over every part; names beyond U+FFFF survive the shared-prefix coding."""
    require_service(shutil.which("node") is not None and (REPO / "node_modules" / "playwright-core").is_dir(),
                    "node and node_modules/playwright-core are needed: install node and run `npm ci`")
    require_service(os.path.exists(CHROMIUM), f"no Chromium at {CHROMIUM}: apt-get install chromium")
    from datetime import timedelta

    from celline_jobs_nb.core.models import JobInfo, JobStatus, new_job_id, utcnow
    from celline_jobs_nb.monitor import JobMonitor
    from celline_jobs_nb.report import write_report
    from celline_jobs_nb.store import JobStore

    project = tmp_path / "project"
    project.mkdir()
    start = utcnow() - timedelta(days=3)
    jobs = [JobInfo(job_id=new_job_id(), name=f"sample {i:04d}" + ("\U0001f600" if i % 100 == 7 else ""),
                    command="true", status=JobStatus.COMPLETED, created_at=start + timedelta(minutes=i),
                    submit_time=start + timedelta(minutes=i), scheduler="local", depends_on=[]) for i in range(1100)]
    JobStore(project).insert_many(jobs)
    report = write_report(JobMonitor(project), tmp_path / "long.html", chunk=300)
    driver = subprocess.run(["node", str(Path(__file__).with_name("report_pages.e2e.mjs")), str(report)], cwd=REPO,
                            capture_output=True, text=True, timeout=120, env={**os.environ, "CHROMIUM": CHROMIUM})
    assert driver.returncode == 0, driver.stderr[-3000:]
    seen = json.loads(driver.stdout.strip().split("\n")[-1])
    newest = [job.job_id for job in reversed(jobs)]
    assert seen["first"]["rows"] == 500 and seen["first"]["ids"] == newest[:500]
    assert seen["first"]["count"].startswith("1100 of 1100 jobs (the first 500 shown")
    assert seen["first"]["more"] == "Show 500 more"
    assert seen["second"]["rows"] == 1000 and seen["second"]["more"] == "Show 100 more"
    assert seen["third"] == {"rows": 1100, "hidden": True}
    assert seen["byName"]["rows"] == 500 and seen["byName"]["names"] == sorted(j.name for j in jobs)[:500]
    smiling = sorted(j.name for j in jobs if "\U0001f600" in j.name)
    assert seen["filtered"] == {"count": "11 of 1100 jobs", "names": smiling, "hidden": True}
    assert seen["problems"] == []
