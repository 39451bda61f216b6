"""A long history stays in the store: the table loads every active job plus the newest page of ended
ones, counts the rest for the chips and the saved copy, and loads older pages when the view asks."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest

from celline_jobs_nb.core.models import JobInfo, JobStatus, utcnow
from celline_jobs_nb.monitor import JobMonitor
from celline_jobs_nb.widgets import JobTable


def make_jobs(n: int, status: JobStatus, scheduler: str = "local", start: int = 0) -> list[JobInfo]:
    now = utcnow()
    return [JobInfo(job_id=f"job{i:05d}", name=f"job {i}", status=status, scheduler=scheduler, command=f"echo {i}",
                    submit_time=now, start_time=now, end_time=now if status.final else None)
            for i in range(start, start + n)]


def record(widget: Any, monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Every comm update the widget sends (its ``_send`` recorded)."""
    sent: list[dict[str, Any]] = []
    monkeypatch.setattr(widget, "_send", lambda msg, buffers=None: sent.append(msg))
    return sent


def replay(snapshot: dict[str, Any], delta: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """What js/src/rows.js RowStore does: the snapshot, then the cumulative diff of its generation."""
    rows = {r["id"]: r for r in snapshot["rows"]}
    if delta.get("gen") == snapshot["gen"]:
        rows.update({r["id"]: r for r in delta["rows"]})
    return rows


def _store(monitor: JobMonitor) -> None:
    monitor.store.insert_many(make_jobs(20, JobStatus.FAILED) + make_jobs(25, JobStatus.COMPLETED, start=20)
                              + make_jobs(2, JobStatus.HELD, scheduler="slurm", start=45))


def test_the_table_loads_active_jobs_and_the_newest_ended_page(monitor: JobMonitor):
    _store(monitor)
    table = JobTable(monitor, poll=False, history_page=10, disk_interval=None)
    ids = {r["id"] for r in table.rows}
    # both held jobs (active), then the ten newest ended ones
    assert ids == {"job00045", "job00046"} | {f"job{i:05d}" for i in range(35, 45)}
    meta = table.snapshot["meta"]
    assert meta["older"] == {"total": 35, "counts": {"failed": 20, "completed": 15}, "page": 10}
    assert table.older == 35
    assert "12 recent jobs of 47" in table.text_summary() and "… and 27 more" in table.text_summary()  # 20 lines shown
    assert "12 recent jobs of 47" in table.html_snapshot() and "35 older jobs" in table.html_snapshot()
    state = table.get_state()
    sent = {r["id"] for key in ("snapshot", "delta", "pending") for r in state[key].get("rows", [])}
    assert sent == ids  # the 35 older rows are not in the state a view gets
    assert "job00001" not in json.dumps({k: v for k, v in state.items() if k != "_esm"})


def test_older_pages_load_on_request_and_reach_the_views_as_a_diff(monitor: JobMonitor,
                                                                  monkeypatch: pytest.MonkeyPatch):
    _store(monitor)
    table = JobTable(monitor, poll=False, history_page=15, disk_interval=None)
    recorder = record(table, monkeypatch)
    assert table.load_older() == 15
    assert table.older == 15 and table.delta["meta"]["older"]["counts"] == {"failed": 15}
    assert len([m for m in recorder if m.get("method") == "update"]) == 1  # one message for the page
    view = replay(table.snapshot, table.delta)
    assert {f"job{i:05d}" for i in range(15, 45)} <= set(view)
    assert table.load_older() == 15 and table.older == 0 and "older" not in table.delta["meta"]
    assert table.load_older() == 0
    assert {r["id"] for r in table.rows} == {f"job{i:05d}" for i in range(47)}
    assert "recent jobs of" not in table.text_summary() and "47 jobs" in table.text_summary()


def test_a_view_asks_for_more_with_a_custom_message_and_new_jobs_still_arrive(monitor: JobMonitor):
    _store(monitor)
    table = JobTable(monitor, poll=False, history_page=10, disk_interval=None)
    table._handle_custom(table, {"type": "more"})
    for thread in [t for t in threading.enumerate() if t.name == "celline-jobs-history"]:
        thread.join(10)
    assert table.older == 25
    monitor.store.insert_many(make_jobs(1, JobStatus.COMPLETED, start=100))
    table.refresh_view()
    assert "job00100" in {r["id"] for r in table.rows} and table.older == 25


def test_the_views_filter_is_asked_of_the_store_over_the_history_not_loaded(monitor: JobMonitor):
    _store(monitor)  # job00000..19 failed, job00020..44 completed, two held
    for i in (3, 7):
        monitor.store.update(f"job{i:05d}", None, source="test", reason="OutOfMemory: 100% of 4G")
    table = JobTable(monitor, poll=False, history_page=10, disk_interval=None)
    assert table.older == 35
    assert table.search_older("outofmemory") == 2  # case-insensitive, from id, name, type or reason
    assert {"job00003", "job00007"} <= {r["id"] for r in table.rows} and table.older == 33
    assert table.search_older("outofmemory") == 0  # already loaded
    assert table.search_older("", ["failed"]) == 10  # a status chip: the newest 10 failed not loaded
    assert table.older == 23 and table.delta["meta"]["older"]["counts"] == {"failed": 8, "completed": 15}
    assert table.search_older("100%_", None) == 0  # % and _ are text, not wildcards
    assert table.search_older("", ["running"]) == 0  # active jobs are all loaded already
    assert table.load_older() == 10  # the next page skips what the searches loaded
    assert table.older == 13


def test_a_sort_loads_the_top_of_the_whole_history(monitor: JobMonitor):
    _store(monitor)
    monitor.store.update("job00002", None, source="test", exit_code=137)  # an old job, far from the newest page
    table = JobTable(monitor, poll=False, history_page=10, disk_interval=None)
    assert "job00002" not in {r["id"] for r in table.rows}
    assert table.top_older("exit", True) == 10
    assert "job00002" in {r["id"] for r in table.rows} and table.older == 25
    assert table.top_older("cpu", True) == 0  # no store order for it: the loaded rows only
