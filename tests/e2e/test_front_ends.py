"""The dashboard beyond JupyterLab, in real Chromium: Jupyter Notebook 7 and Voila (served by the
same Jupyter server as the JupyterLab tests, scripts/start-jupyter.sh) and marimo through
``mo.ui.anywidget`` (``marimo run`` on 127.0.0.1). tests/e2e/front_ends.e2e.mjs drives each one:
the table renders, a job turns completed while nothing runs, the failed job says its exit code
and error line, no plain-HTML copy shows next to the live view. VS Code is expected to work
(anywidget supports it) but is not tested here."""

from __future__ import annotations

import importlib.util
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest
from e2e_support import CHROMIUM, REPO, cancel_everything, have_node_tools, need

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(240)]

JOBS = '''\
monitor = JobMonitor(r"{root}", max_parallel=2)
slow = monitor.submit_job("Slow count", "sleep 12; echo counted")
predict = monitor.submit_job("Predict cell types", 'sleep 1; echo "Error in readRDS(file): cannot open ref.rds" >&2; '
                             'echo "Execution halted" >&2; exit 3')
quick = monitor.submit_job("Quick QC", "echo ok")
'''


def notebook(root: Path) -> nbformat.NotebookNode:
    cells = ["from celline_jobs_nb import Job, JobMonitor, Project\n" + JOBS.format(root=root),
             f'Project(r"{root}").call(Job())']
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nb


MARIMO_APP = '''\
import marimo

app = marimo.App()


@app.cell
def _():
    import marimo as mo
    from celline_jobs_nb import JobMonitor
    from celline_jobs_nb.widgets import JobTable
    return JobMonitor, JobTable, mo


@app.cell
def _(JobMonitor, JobTable, mo):
{jobs}
    table = mo.ui.anywidget(JobTable(monitor))
    table
    return


if __name__ == "__main__":
    app.run()
'''


def drive(front: str, url: str, output_dir: Path) -> None:
    driver = subprocess.run(["node", str(REPO / "tests" / "e2e" / "front_ends.e2e.mjs")], cwd=REPO,
                            capture_output=True, text=True, timeout=180,
                            env=dict(os.environ, FRONT=front, URL=url, CHROMIUM=CHROMIUM,
                                     SHOT=str(output_dir / f"front-{front}.png")))
    print(driver.stdout, driver.stderr[-3000:])
    failed = [line for line in driver.stdout.splitlines() if line.startswith("CHECK FAIL")]
    assert driver.returncode == 0 and not failed, "\n".join(failed) or driver.stdout + driver.stderr[-3000:]


@pytest.fixture
def jupyter_server(tmp_path: Path) -> Iterator[tuple[dict[str, str], Path]]:
    need(Path(CHROMIUM).exists(), f"Chromium not found at {CHROMIUM} (apt-get install -y chromium)")
    need(have_node_tools(), "node and node_modules/playwright-core are needed (npm ci)")
    root = tmp_path / "served"
    root.mkdir()
    env = dict(os.environ, CELLINE_JUPYTER_STATE=str(tmp_path / "jupyter-state"), PYTHON=sys.executable)
    start = subprocess.run(["bash", str(REPO / "scripts" / "start-jupyter.sh"), "start", str(root)], env=env,
                           capture_output=True, text=True, timeout=90)
    assert start.returncode == 0, start.stdout + start.stderr
    info = dict(line.split("=", 1) for line in start.stdout.splitlines() if "=" in line)
    try:
        yield info, root
    finally:
        subprocess.run(["bash", str(REPO / "scripts" / "start-jupyter.sh"), "stop"], env=env, capture_output=True,
                       text=True, timeout=30)


@pytest.mark.parametrize("front", ["notebook7", "voila"])
def test_dashboard_in_notebook7_and_voila(front: str, jupyter_server: tuple[dict[str, str], Path], tmp_path: Path,
                                          output_dir: Path) -> None:
    module = "notebook" if front == "notebook7" else "voila"
    need(importlib.util.find_spec(module) is not None, f"{module} is not installed (pip install -e '.[dev]')")
    info, served = jupyter_server
    project = tmp_path / "project"
    project.mkdir()
    nbformat.write(notebook(project), served / "front.ipynb")
    path = "notebooks/front.ipynb" if front == "notebook7" else "voila/render/front.ipynb"
    try:
        drive(front, f"{info['url']}/{path}?token={info['token']}", output_dir)
    finally:
        cancel_everything(project)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_dashboard_in_marimo(tmp_path: Path, output_dir: Path) -> None:
    need(Path(CHROMIUM).exists(), f"Chromium not found at {CHROMIUM} (apt-get install -y chromium)")
    need(have_node_tools(), "node and node_modules/playwright-core are needed (npm ci)")
    need(importlib.util.find_spec("marimo") is not None and shutil.which("marimo") is not None,
         "marimo is not installed (pip install -e '.[dev]')")
    project = tmp_path / "project"
    project.mkdir()
    jobs = "\n".join("    " + line if line else "" for line in JOBS.format(root=project).splitlines())
    app = tmp_path / "dashboard_app.py"
    app.write_text(MARIMO_APP.format(jobs=jobs))
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "marimo", "run", str(app), "--headless", "--host", "127.0.0.1",
                               "--port", str(port), "--no-token"], cwd=tmp_path, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, start_new_session=True)
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(url, timeout=2).read()
                break
            except OSError:
                assert server.poll() is None, server.stdout.read() if server.stdout else "marimo exited"
                assert time.monotonic() < deadline, "marimo did not answer within 60 s"
                time.sleep(0.5)
        drive("marimo", url, output_dir)
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
        cancel_everything(project)
