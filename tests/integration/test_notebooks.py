"""notebooks/history.ipynb runs headless under nbclient, top to bottom, without errors, and shows
what it promises: typed DataFrames, the summary, charts as images and SVG, exported files. The
notebooks clean up what they start: no job left running, no throwaway project left behind."""

from __future__ import annotations

import re
import time
from pathlib import Path

import psutil
import pytest

REPO = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


def test_history_notebook_runs_and_shows_the_analytics(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    project = tmp_path / "project"
    monkeypatch.setenv("CELLINE_JOBS_HISTORY_DIR", str(project))  # the kernel inherits it
    notebook = nbformat.read(REPO / "notebooks" / "history.ipynb", as_version=4)
    assert all(not cell.get("outputs") for cell in notebook.cells if cell.cell_type == "code")  # stored clean

    # Raises CellExecutionError, naming the cell, if any cell fails.
    nbclient.NotebookClient(notebook, timeout=120, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}}).execute()

    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    stderr = "".join(o.text for o in outputs if o.output_type == "stream" and o.name == "stderr")
    assert "Traceback" not in stderr and "Warning" not in stderr, stderr
    plain = "\n".join(o.get("data", {}).get("text/plain", "") for o in outputs)
    html = "\n".join(o.get("data", {}).get("text/html", "") for o in outputs)
    stdout = "".join(o.text for o in outputs if o.output_type == "stream" and o.name == "stdout")

    assert f"project {project}: 6 jobs" in stdout  # five jobs and one retry
    assert "datetime64[ns, UTC]" in plain and "timedelta64[ns]" in plain and "category" in plain
    assert "exit code 3" in html  # the failed first attempt of the prediction, and its reason
    assert "success_rate" in html and "Prediction" in html
    assert sum("image/png" in o.get("data", {}) for o in outputs) == 2  # the figures show as images, once each
    assert sum("image/svg+xml" in o.get("data", {}) for o in outputs) == 2
    for name in ("history.csv", "history.parquet", "report.html"):
        assert str(project / name) in stdout
        assert (project / name).stat().st_size > 0
    assert "Predict cell types" in (project / "report.html").read_text(encoding="utf-8")
    assert stdout.rstrip().endswith("call clean_up() when you are done")  # the directory was given: it stays


def test_the_quickstart_leaves_no_job_and_no_directory_behind(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    monkeypatch.delenv("CELLINE_JOBS_QUICKSTART_DIR", raising=False)
    monkeypatch.setenv("CELLINE_JOBS_QUICKSTART_LONG", "120")
    monkeypatch.setenv("TMPDIR", str(tmp_path))  # where the notebook's throwaway project goes
    notebook = nbformat.read(REPO / "notebooks" / "quickstart.ipynb", as_version=4)
    source = "".join(cell.source for cell in notebook.cells)
    assert "onerror" not in source and "<img" not in source  # hostile samples live in the tests
    # execute() shuts the kernel down at the end, as closing the notebook does
    nbclient.NotebookClient(notebook, timeout=120, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}}).execute()
    stdout = "".join(o.text for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs
                     if o.output_type == "stream" and o.name == "stdout")
    project = Path(re.search(r"project: (\S+)", stdout).group(1))
    assert project.parent == tmp_path and f"(it deletes {project})" in stdout

    def leftovers() -> list[str]:
        found = []
        for proc in psutil.process_iter(["cmdline"]):
            command = " ".join(proc.info["cmdline"] or [])
            if str(project) in command:
                found.append(command)
        return found

    deadline = time.monotonic() + 30
    while (project.exists() or leftovers()) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not project.exists() and leftovers() == []
