"""Honest saved notebooks, end to end: a notebook that shows the dashboard with
``Project(...).call(Job())`` is run by ``jupyter execute`` (widget state saved), exported by
``jupyter nbconvert --to html`` and opened in headless Chromium with the network refused.

Seen on main: the dashboard cell also printed ``<celline.interfaces.Project at 0x...>``; the
exported page showed no table at all offline (nbconvert shows the widget view when its state is
saved, and that view needs scripts from a CDN); and the HTML the notebook held was the snapshot
taken when the cell ran ("running"), not the table as the jobs ended.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from e2e_support import CHROMIUM, REPO, cancel_everything, have_node_tools, need

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(240)]

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"

SETUP = '''\
import os
from pathlib import Path
from celline_jobs_nb import Job, JobMonitor, Project

root = Path(os.environ["CJ_SAVED_PROJECT"])
root.mkdir(parents=True, exist_ok=True)
monitor = JobMonitor(root, max_parallel=2)
count = monitor.submit_job("Count sample S1",
    'for i in 1 2 3; do printf "Counting: %d%%|\\\\n" $(( i * 33 )); sleep 1; done')
predict = monitor.submit_job("Predict cell types", 'sleep 1; echo "loading reference"; '
    'echo "Error in readRDS(file): cannot open ref.rds" >&2; echo "Execution halted" >&2; exit 3')
odd = monitor.submit_job("<img src=x onerror=alert(1)>", "sleep 2; echo a name is data")
'''
CALL = "Project(root).call(Job())"  # exactly as the README writes it
CELLINE_CALL = '''\
from celline.interfaces import Project as CellineProject
CellineProject(str(root)).call(Job())'''
WAIT = 'ended = monitor.wait(timeout=60)\nprint(len(ended), "jobs ended")'


def test_saved_notebook_shows_the_final_table_offline(tmp_path: Path, output_dir: Path) -> None:
    need(importlib.util.find_spec("nbclient") is not None and importlib.util.find_spec("nbconvert") is not None,
         "nbclient and nbconvert are needed")
    need(Path(CHROMIUM).exists(), f"Chromium not found at {CHROMIUM} (apt-get install -y chromium)")
    need(have_node_tools(), "node and node_modules/playwright-core are needed (npm ci)")
    have_celline = importlib.util.find_spec("celline") is not None
    cells = [SETUP, CALL] + ([CELLINE_CALL] if have_celline else []) + [WAIT]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    source = tmp_path / "report.ipynb"
    nbformat.write(nb, source)
    project = tmp_path / "project"
    env = dict(os.environ, CJ_SAVED_PROJECT=str(project))
    jupyter = [sys.executable, "-m", "jupyter"]
    try:
        run = subprocess.run([*jupyter, "execute", "--output", "executed", str(source)], env=env, cwd=tmp_path,
                             capture_output=True, text=True, timeout=150)
    finally:
        cancel_everything(project)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-3000:]
    executed = nbformat.read(tmp_path / "executed.ipynb", as_version=4)
    assert "widgets" in executed.metadata  # the widget state is saved (what hid the table before)

    call_outputs = executed.cells[1].outputs
    plain = "\n".join(o.get("data", {}).get("text/plain", "") for o in call_outputs)
    assert not [o for o in call_outputs if o.output_type == "execute_result"], plain
    assert "Project(" not in plain and "<celline" not in plain
    assert [WIDGET_VIEW in o.get("data", {}) for o in call_outputs] == [True, False]
    copy = call_outputs[1]["data"]["text/html"]
    # Updated as the jobs ended: no job is shown running or pending in the saved copy.
    assert 'data-status="running"' not in copy and 'data-status="pending"' not in copy, copy[:600]
    assert copy.count('data-status="completed"') == 2 and copy.count('data-status="failed"') == 1
    assert "Error in readRDS(file): cannot open ref.rds" in copy
    if have_celline:  # celline's own Project: no stray repr either
        celline_plain = "\n".join(o.get("data", {}).get("text/plain", "") for o in executed.cells[2].outputs)
        assert "<celline" not in celline_plain and not [o for o in executed.cells[2].outputs
                                                         if o.output_type == "execute_result"]

    convert = subprocess.run([*jupyter, "nbconvert", "--to", "html", str(tmp_path / "executed.ipynb")],
                             cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert convert.returncode == 0, convert.stderr[-3000:]
    page = tmp_path / "executed.html"
    driver = subprocess.run(["node", str(REPO / "tests" / "e2e" / "offline_html.e2e.mjs"), str(page)], cwd=REPO,
                            capture_output=True, text=True, timeout=90,
                            env=dict(os.environ, CHROMIUM=CHROMIUM,
                                     SHOT=str(output_dir / "saved-notebook-offline.png")))
    assert driver.returncode == 0, driver.stderr[-3000:]
    seen = json.loads(driver.stdout.strip().splitlines()[-1])
    print(json.dumps(seen)[:2000])
    assert seen["tables"] >= 1, seen
    statuses = sorted(r["status"] for r in seen["rows"][:3])
    assert statuses == ["completed", "completed", "failed"], seen
    assert any("<img src=x onerror=alert(1)>" in r["cells"] for r in seen["rows"])  # text, not markup
    assert seen["imgs"] == 0
    assert any("Error in readRDS" in " ".join(r["cells"]) for r in seen["rows"] if r["status"] == "failed")
