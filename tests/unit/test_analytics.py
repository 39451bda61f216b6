"""Analytics over a designed history: the numbers per type, failure reasons, and the charts
(matplotlib figures and the SVG the offline report embeds)."""

from __future__ import annotations

import sys
import xml.etree.ElementTree as ET
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pandas as pd
import pytest

from celline_jobs_nb.analytics import (
    STATUS_COLOURS,
    WAIT_COLOUR,
    failure_reasons,
    plot_runtime_by_type,
    plot_timeline,
    runtime_by_type_svg,
    summary,
    timeline_bars,
    timeline_svg,
)
from celline_jobs_nb.core.errors import InvalidInputError
from celline_jobs_nb.core.models import JobInfo, JobStatus, JobType, new_job_id
from celline_jobs_nb.core.resources import Resources
from celline_jobs_nb.export import MissingDependencyError, to_dataframe
from celline_jobs_nb.store import JobStore

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=timezone.utc)
G = 1024**3
NOW = T0 + timedelta(hours=2)
XSS = "<img src=x onerror=alert(1)>"
SCRIPT_END = "</script><script>alert(2)</script>"
SVG = "{http://www.w3.org/2000/svg}"


def add(store: JobStore, name: str, status: JobStatus, *, at: float = 0, wait: float | None = 60,
        run: float | None = 600, **kw) -> JobInfo:
    """A job submitted ``at`` minutes after T0 that waited ``wait`` s and ran ``run`` s (None: not yet)."""
    submit = T0 + timedelta(minutes=at)
    start = None if wait is None else submit + timedelta(seconds=wait)
    end = None if start is None or run is None else start + timedelta(seconds=run)
    job = JobInfo(job_id=new_job_id(), name=name, status=status, command="true", created_at=submit,
                  submit_time=submit, start_time=start, end_time=end, **kw)
    return store.insert(job)


@pytest.fixture
def store(project: Path) -> JobStore:
    """Count: 3 jobs, 4 attempts (one retried after running out of memory), 2 completed, 1 failed.
    Preprocess: 1 running. Custom: 1 cancelled while waiting."""
    s = JobStore(project)
    count = {"job_type": JobType.COUNT, "resources": Resources.parse("cpus=4,mem=32G")}
    add(s, "Count S1", JobStatus.COMPLETED, wait=60, run=600, exit_code=0, **count,
        metadata={"usage": {"cpu_seconds": 1200, "max_rss_bytes": 16 * G}})
    oom = add(s, "Count S2", JobStatus.FAILED, at=1, wait=120, run=300, exit_code=137, reason="OUT_OF_MEMORY",
              **count, metadata={"usage": {"cpu_seconds": 600, "max_rss_bytes": 32 * G}})
    add(s, "Count S2", JobStatus.COMPLETED, at=10, wait=30, run=1200, exit_code=0, attempt=2, retry_of=oom.job_id,
        **count, metadata={"usage": {"cpu_seconds": 2400, "max_rss_bytes": 48 * G, "req_mem_bytes": 64 * G}})
    add(s, XSS, JobStatus.FAILED, at=12, wait=10, run=5, exit_code=3, reason="exit code 3", **count)
    add(s, SCRIPT_END, JobStatus.RUNNING, at=30, wait=20, run=None, job_type=JobType.PREPROCESS)
    add(s, "Plot markers", JobStatus.CANCELLED, at=40, wait=None, job_type=JobType.CUSTOM, reason="cancelled by user")
    return s


def test_summary_per_type(store: JobStore):
    table = summary(store)
    assert list(table.index) == ["Count", "Preprocess", "Custom"]  # JobType order, only types present
    count = table.loc["Count"]
    assert (count["jobs"], count["attempts"], count["retries"], count["completed"], count["failed"]) == (3, 4, 1, 2, 1)
    assert count["success_rate"] == pytest.approx(2 / 3)
    # run time over the two completed attempts: 600 s and 1200 s
    assert count["run_time_median"] == pd.Timedelta(seconds=900)
    assert count["run_time_p90"] == pd.Timedelta(seconds=1140)
    # waits of all four attempts: 60, 120, 30, 10 s
    assert count["queue_wait_median"] == pd.Timedelta(seconds=45)
    # cpu: 1200/(600*4)=0.5, 600/(300*4)=0.5, 2400/(1200*4)=0.5; memory: 0.5, 1.0, 0.75 (own request)
    assert count["cpu_efficiency"] == pytest.approx(0.5)
    assert count["mem_efficiency"] == pytest.approx(0.75)
    assert count["top_failures"] == "OUT_OF_MEMORY (1); exit code 3 (1)"
    running = table.loc["Preprocess"]
    assert (running["jobs"], running["completed"], running["failed"]) == (1, 0, 0)
    assert pd.isna(running["success_rate"]) and pd.isna(running["run_time_median"])
    assert pd.isna(running["cpu_efficiency"]) and running["top_failures"] == ""
    cancelled = table.loc["Custom"]
    assert cancelled["success_rate"] == 0 and pd.isna(cancelled["queue_wait_median"])
    assert table["jobs"].dtype == "Int64" and table["success_rate"].dtype == "Float64"


def test_summary_takes_a_frame_or_filters(store: JobStore):
    attempts = to_dataframe(store, per="attempt")
    pd.testing.assert_frame_equal(summary(attempts), summary(store))
    assert list(summary(store, job_type="Count").index) == ["Count"]
    with pytest.raises(InvalidInputError, match="per='attempt'"):
        summary(to_dataframe(store))  # one row per job hides the retries
    with pytest.raises(InvalidInputError, match="per='attempt'"):
        failure_reasons(to_dataframe(store, per="event"))
    with pytest.raises(InvalidInputError, match="filter the DataFrame itself"):
        summary(attempts, status="failed")
    assert summary(to_dataframe(store, per="attempt", job_type="Integration")).empty


def test_failure_reasons_fall_back_to_exit_code_and_signal(store: JobStore):
    add(store, "a", JobStatus.FAILED, at=50, exit_code=137, job_type=JobType.INTEGRATION)
    add(store, "b", JobStatus.FAILED, at=51, exit_code=None, signal=9, job_type=JobType.INTEGRATION)
    add(store, "c", JobStatus.FAILED, at=52, exit_code=None, job_type=JobType.INTEGRATION)
    newest = add(store, "d", JobStatus.FAILED, at=53, exit_code=137, reason="  ", job_type=JobType.INTEGRATION)
    table = failure_reasons(store)
    assert table.to_dict("records")[0] == {"job_type": "Integration", "reason": "exit code 137", "count": 2,
                                           "last_job_id": newest.job_id}
    rows = {(r["job_type"], r["reason"]): r["count"] for r in table.to_dict("records")}
    assert rows == {("Integration", "exit code 137"): 2, ("Integration", "signal 9"): 1,
                    ("Integration", "no reason recorded"): 1, ("Count", "OUT_OF_MEMORY"): 1,
                    ("Count", "exit code 3"): 1}


def test_timeline_bars(store: JobStore):
    bars, total = timeline_bars(store, now=NOW)
    assert total == 6 and [b.name for b in bars][:2] == ["Count S1", "Count S2"]
    running = next(b for b in bars if b.status == "running")
    assert running.end == NOW  # a running job's bar reaches the report's time
    cancelled = next(b for b in bars if b.status == "cancelled")
    assert cancelled.start is None
    assert "waited 1m 00s · ran 10m 00s" in bars[0].tooltip
    newest, total = timeline_bars(store, limit=2, now=NOW)
    assert [b.name for b in newest] == [SCRIPT_END, "Plot markers"] and total == 6


def _svg(text: str) -> ET.Element:
    return ET.fromstring(text)  # proves the SVG is well-formed XML: no job text broke out of it


def test_timeline_svg_shows_each_job_coloured_by_status_with_text_escaped(store: JobStore):
    text = timeline_svg(store, now=NOW)
    root = _svg(text)
    labels = [t.text for t in root.iter(f"{SVG}text") if t.get("data-job-id")]
    assert labels == ["Count S1", "Count S2", "Count S2", XSS, SCRIPT_END, "Plot markers"]
    assert XSS not in text and SCRIPT_END not in text and "&lt;img src=x" in text
    run_colours = [r.get("fill") for r in root.iter(f"{SVG}rect") if r.get("data-status")]
    assert run_colours == [STATUS_COLOURS[s] for s in ("completed", "failed", "completed", "failed", "running")]
    tooltips = [t.text for t in root.iter(f"{SVG}title")]
    assert len(tooltips) == 6 and tooltips[3].startswith(XSS + "\n")
    legend = [t.text for t in root.iter(f"{SVG}text")][-5:]
    assert legend == ["waiting", "running", "completed", "failed", "cancelled"]
    assert any(r.get("fill") == WAIT_COLOUR for r in root.iter(f"{SVG}rect"))


def test_runtime_svg_shows_completed_runs_per_type(store: JobStore):
    root = _svg(runtime_by_type_svg(store))
    texts = [t.text for t in root.iter(f"{SVG}text")]
    assert "Count" in texts and "Preprocess" not in texts  # nothing completed there yet
    assert "median 15m 00s (n=2)" in texts and "run time (min)" in texts
    assert len([c for c in root.iter(f"{SVG}circle")]) == 2


def test_charts_of_an_empty_project_say_so(project: Path):
    empty = JobStore(project)
    assert "no jobs yet" in timeline_svg(empty) and "no completed jobs yet" in runtime_by_type_svg(empty)
    _svg(timeline_svg(empty))
    assert summary(empty).empty and failure_reasons(empty).empty


def test_matplotlib_timeline_and_runtime(store: JobStore):
    pytest.importorskip("matplotlib")
    from matplotlib.colors import to_hex

    figure = plot_timeline(store, now=NOW)
    axes = figure.axes[0]
    assert [t.get_text() for t in axes.get_yticklabels()] == [
        "Count S1", "Count S2", "Count S2", XSS, SCRIPT_END, "Plot markers"]
    colours = {to_hex(p.get_facecolor()) for p in axes.patches}
    assert {STATUS_COLOURS["failed"], STATUS_COLOURS["running"], STATUS_COLOURS["completed"], WAIT_COLOUR} <= colours
    assert [t.get_text() for t in axes.get_legend().get_texts()] == ["waiting", "running", "completed", "failed",
                                                                     "cancelled"]

    from matplotlib.figure import Figure

    own = Figure()
    ax = own.add_subplot()
    assert plot_runtime_by_type(store, ax=ax) is own  # draws into the caller's axes
    assert [t.get_text() for t in ax.get_yticklabels()] == ["Count"]
    assert ax.get_xlabel() == "run time (min)"


def test_plots_without_matplotlib_point_to_the_svg(store: JobStore, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    with pytest.raises(MissingDependencyError, match="plots need matplotlib: pip install matplotlib"):
        plot_timeline(store)
