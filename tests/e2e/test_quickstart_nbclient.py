"""notebooks/quickstart.ipynb runs headless under nbclient with the widget state saved, and the
saved notebook shows the jobs without the widget JS (the text/html fallback), escaped."""

from __future__ import annotations

import importlib.util
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from e2e_support import REPO, need

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
XSS = "<img src=x onerror=alert(1)>"


class ElementCounter(HTMLParser):
    """Counts real elements (outside <script>) by tag, and <img> with an onerror attribute."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: dict[str, int] = {}
        self.img_onerror = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags[tag] = self.tags.get(tag, 0) + 1
        if tag == "img" and any(name == "onerror" for name, _ in attrs):
            self.img_onerror += 1


def run_quickstart(tmp_path: Path) -> Any:
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(REPO / "notebooks" / "quickstart.ipynb", as_version=4)
    assert all(not cell.get("outputs") for cell in nb.cells if cell.cell_type == "code")  # stored clean
    client = NotebookClient(nb, timeout=120, kernel_name="python3", store_widget_state=True,
                            resources={"metadata": {"path": str(tmp_path)}})
    client.execute()
    return nb


def test_quickstart_runs_under_nbclient_with_widget_state(tmp_path: Path, quickstart_project: Path) -> None:
    need(importlib.util.find_spec("nbclient") is not None and importlib.util.find_spec("ipykernel") is not None,
         "nbclient and ipykernel are needed")
    import nbformat
    from nbconvert import HTMLExporter

    nb = run_quickstart(tmp_path)
    state = nb.metadata["widgets"][WIDGET_STATE]["state"]
    tables = [m["state"] for m in state.values() if m["state"].get("_kind") == "table"]
    assert len(tables) == 1
    table = tables[0]
    rows = {r["id"]: r for r in table["window"]["rows"]}  # the first window, as of the end of the last cell
    assert len(rows) == 5 and table["window"]["total"] == 5 and XSS in {r["name"] for r in rows.values()}
    assert {m["state"].get("_kind") for m in state.values()} >= {"table", "logtail", "progress"}

    every = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in every if o.output_type == "error"]
    stderr = "".join(o.text for o in every if o.output_type == "stream" and o.name == "stderr")
    assert "Traceback" not in stderr and "Error" not in stderr, stderr
    outputs = [o for o in every if "data" in o]
    dashboard = [o for o in outputs if WIDGET_VIEW in o["data"]]
    assert len(dashboard) == 1
    # The plain-HTML copy of the table is the output right after the widget's (see widgets/fallback.py).
    fallback = outputs[outputs.index(dashboard[0]) + 1]["data"]["text/html"]
    assert "celline-jobs-fallback" in fallback
    assert "&lt;img src=x onerror=alert(1)&gt;" in fallback and "<img" not in fallback
    assert dashboard[0]["data"][WIDGET_VIEW]["model_id"] in state
    saved = tmp_path / "quickstart.executed.ipynb"
    nbformat.write(nb, saved)

    # nbconvert with the widget state saved (the widget view needs a CDN) and without it (GitHub):
    # either way the page holds the table of the jobs as HTML, where the job name is text.
    body, _ = HTMLExporter().from_notebook_node(nb)
    assert "celline-jobs-table" in body
    del nb.metadata["widgets"]
    body, _ = HTMLExporter().from_notebook_node(nb)
    assert "celline-jobs-table" in body and "&lt;img src=x onerror=alert(1)&gt;" in body
    counter = ElementCounter()
    counter.feed(body)
    assert counter.img_onerror == 0
    assert counter.tags.get("table", 0) >= 1
