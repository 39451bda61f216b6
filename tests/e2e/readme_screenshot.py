"""Retake docs/dashboard.png: the demo project (celline_jobs_nb.demo) in real JupyterLab.

    python tests/e2e/readme_screenshot.py [PROJECT_DIR]   (default /srv/celline/pbmc-atlas, removed after)

Not a test: run it by hand after changing how the dashboard looks."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat

REPO = Path(__file__).resolve().parents[2]
CELLS = [
    "import os\nfrom pathlib import Path\n\nfrom celline_jobs_nb import Job, JobMonitor, Project\n"
    "from celline_jobs_nb.demo import create_demo_project, submit_demo_jobs\n\n"
    'project = create_demo_project(Path(os.environ["CJ_SHOT_PROJECT"]))\n'
    "monitor = JobMonitor(project, max_parallel=3)\nsubmit_demo_jobs(monitor);",
    "Project(project).call(Job())",
]


def main() -> int:
    project = Path(sys.argv[1] if len(sys.argv) > 1 else "/srv/celline/pbmc-atlas")
    fresh = not project.exists()
    work = Path(tempfile.mkdtemp(prefix="celline-shot-"))
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in CELLS])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, work / "dashboard.ipynb")
    env = dict(os.environ, CELLINE_JUPYTER_STATE=str(work / "state"), PYTHON=sys.executable,
               CJ_SHOT_PROJECT=str(project))
    script = str(REPO / "scripts" / "start-jupyter.sh")
    start = subprocess.run(["bash", script, "start", str(work)], env=env, capture_output=True, text=True, timeout=90)
    if start.returncode:
        print(start.stdout, start.stderr)
        return 1
    info = dict(line.split("=", 1) for line in start.stdout.splitlines() if "=" in line)
    try:
        return subprocess.run(["node", str(REPO / "tests" / "e2e" / "readme_screenshot.mjs")], cwd=REPO, timeout=180,
                              env=dict(env, JL_URL=info["url"], JL_TOKEN=info["token"],
                                       SHOT=str(REPO / "docs" / "dashboard.png"))).returncode
    finally:
        subprocess.run(["bash", script, "stop"], env=env, capture_output=True, text=True, timeout=30)
        from celline_jobs_nb.monitor import JobMonitor

        monitor = JobMonitor(project)
        monitor.cancel_jobs([job.job_id for job in monitor.store.active()], wait=10)  # ended before the files go
        if fresh:
            for _ in range(5):  # a cancelled job's runner may still write its exit file for a moment
                shutil.rmtree(project, ignore_errors=True)
                time.sleep(1)
            shutil.rmtree(project, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
