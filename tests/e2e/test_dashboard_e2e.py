"""The quickstart notebook in a real JupyterLab, driven in Debian's headless Chromium.

scripts/start-jupyter.sh starts JupyterLab on 127.0.0.1; tests/e2e/dashboard.e2e.mjs
(playwright-core) opens notebooks/quickstart.ipynb, runs all cells and checks the dashboard:
rows appear, a running job turns completed while no cell runs, a selected job's log shows lines
written after the selection, Cancel (confirmed in the widget) ends a job as cancelled, Retry
with mem=64G, the job named <img src=x onerror=alert(1)> renders as text and no dialog opens.
Screenshots go to test-output/.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest
from e2e_support import CHROMIUM, REPO, have_node_tools, need

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(330)]


BIG = """\
from celline_jobs_nb.core.models import JobInfo, JobStatus, utcnow
from celline_jobs_nb import JobMonitor
from celline_jobs_nb.widgets import JobTable
import os
os.makedirs(r"{root}", exist_ok=True)
monitor = JobMonitor(r"{root}")
now = utcnow()
monitor.store.insert_many([JobInfo(job_id=f"big{{i:05d}}", name=f"sample {{i}}", status=JobStatus.COMPLETED,
                                   scheduler="local", command="true", submit_time=now, start_time=now, end_time=now)
                           for i in range(10_000)])
JobTable(monitor, poll=False)
"""


def big_notebook(root: Path) -> nbformat.NotebookNode:
    """A table of 10,000 jobs, newest first: the row at position p is big{9999 - p}."""
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(BIG.format(root=root))])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nb


def test_dashboard_in_real_jupyterlab(tmp_path: Path, quickstart_project: Path, output_dir: Path) -> None:
    need(Path(CHROMIUM).exists(), f"Chromium not found at {CHROMIUM} (apt-get install -y chromium)")
    need(have_node_tools(), "node and node_modules/playwright-core are needed (npm ci)")
    need(importlib.util.find_spec("jupyterlab") is not None, "jupyterlab is not installed")

    root = tmp_path / "lab"
    root.mkdir()
    shutil.copy(REPO / "notebooks" / "quickstart.ipynb", root / "quickstart.ipynb")
    nbformat.write(big_notebook(root / "big"), root / "big.ipynb")
    env = dict(os.environ, CELLINE_JUPYTER_STATE=str(tmp_path / "jupyter-state"),
               PYTHON=os.environ.get("PYTHON", sys.executable))
    started = time.monotonic()
    start = subprocess.run(["bash", str(REPO / "scripts" / "start-jupyter.sh"), "start", str(root)], env=env,
                           capture_output=True, text=True, timeout=90)
    assert start.returncode == 0, start.stdout + start.stderr
    info = dict(line.split("=", 1) for line in start.stdout.splitlines() if "=" in line)
    try:
        driver = subprocess.run(
            ["node", str(REPO / "tests" / "e2e" / "dashboard.e2e.mjs")], cwd=REPO, capture_output=True, text=True,
            timeout=270, env=dict(os.environ, JL_URL=info["url"], JL_TOKEN=info["token"], NB_PATH="quickstart.ipynb",
                                  BIG_NB_PATH="big.ipynb",
                                  SHOT=str(output_dir / "e2e-dashboard.png"), CHROMIUM=CHROMIUM),
        )
    finally:
        subprocess.run(["bash", str(REPO / "scripts" / "start-jupyter.sh"), "stop"], env=env, capture_output=True,
                       text=True, timeout=30)
    print(driver.stdout[-6000:], driver.stderr[-3000:])
    print(f"e2e total: {time.monotonic() - started:.1f} s")
    failed = [line for line in driver.stdout.splitlines() if line.startswith("CHECK FAIL")]
    assert driver.returncode == 0 and not failed, "\n".join(failed) or driver.stdout[-3000:] + driver.stderr[-3000:]
    assert "CHECK ok cancel ends the job as cancelled" in driver.stdout
    assert (output_dir / "e2e-dashboard.png").stat().st_size > 10_000


def test_table_of_5000_jobs_in_chromium(output_dir: Path) -> None:
    """The shipped bundle with 5,000 rows: virtualised DOM, fast scroll/sort/filter, diffs, text only."""
    need(Path(CHROMIUM).exists(), f"Chromium not found at {CHROMIUM} (apt-get install -y chromium)")
    need(have_node_tools(), "node and node_modules/playwright-core are needed (npm ci)")
    driver = subprocess.run(
        ["node", str(REPO / "tests" / "e2e" / "table5000.e2e.mjs")], cwd=REPO, capture_output=True, text=True,
        timeout=120, env=dict(os.environ, SHOT=str(output_dir / "table-5000.png"), CHROMIUM=CHROMIUM),
    )
    print(driver.stdout, driver.stderr[-3000:])
    failed = [line for line in driver.stdout.splitlines() if line.startswith("CHECK FAIL")]
    assert driver.returncode == 0 and not failed, "\n".join(failed) or driver.stdout + driver.stderr[-3000:]
