"""JobTable, JobProgress and Dashboard without a kernel: state, diffs, messages, actions, poller."""

from __future__ import annotations

import html
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from celline_jobs_nb.core.models import JobInfo, JobStatus, Progress, utcnow
from celline_jobs_nb.core.resources import Resources
from celline_jobs_nb.monitor import JobMonitor
from celline_jobs_nb.widgets import Dashboard, JobProgress, JobTable, _shared, dashboard
from celline_jobs_nb.widgets._format import eta_seconds, format_duration, html_snapshot, job_row, text_summary

XSS = "<img src=x onerror=alert(1)>"


def make_jobs(n: int, status: JobStatus = JobStatus.COMPLETED, scheduler: str = "local",
              start: int = 0) -> list[JobInfo]:
    now = utcnow()
    return [
        JobInfo(job_id=f"job{i:05d}", name=f"job {i}", status=status, scheduler=scheduler, command=f"echo {i}",
                submit_time=now, start_time=now if status is not JobStatus.PENDING else None,
                end_time=now if status.final else None, exit_code=0 if status is JobStatus.COMPLETED else None)
        for i in range(start, start + n)
    ]


class Recorder:
    """Stands in for ``widget._send``: every comm message the widget would send."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []
        self.lock = threading.Lock()

    def __call__(self, msg: dict[str, Any], buffers: Any = None) -> None:
        with self.lock:
            self.messages.append(msg)

    def updates(self) -> list[dict[str, Any]]:
        return [m["state"] for m in self.messages if m.get("method") == "update"]

    def customs(self) -> list[dict[str, Any]]:
        return [m["content"] for m in self.messages if m.get("method") == "custom"]


def record(widget: Any, monkeypatch: pytest.MonkeyPatch) -> Recorder:
    recorder = Recorder()
    monkeypatch.setattr(widget, "_send", recorder)
    return recorder


# -- rows and static snapshots ----------------------------------------------------------------


def test_job_row_is_compact_and_json_ready() -> None:
    job = JobInfo(job_id="abc123", name="Count S1", status=JobStatus.RUNNING, command="echo hi",
                  resources=Resources.parse("cpus=4,mem=32G,time=1:00:00"), start_time=utcnow(),
                  depends_on=["p1"], progress=Progress(percent=42.345, stage="Aligning"))
    row = job_row(job)
    assert row["id"] == "abc123" and row["status"] == "running" and row["type"] == "Custom"
    assert row["res"] == "4 cpu · 32G · 01:00:00"
    assert row["pct"] == 42.3 and row["stage"] == "Aligning"
    assert isinstance(row["start"], int) and row["deps"] == ["p1"] and row["dkind"] == "afterok"
    assert "end" not in row and "exit" not in row and "reason" not in row  # None fields left out
    long = job_row(JobInfo(job_id="x1", name="n" * 5000, command="c" * 5000))
    assert len(long["name"]) <= 2000 and len(long["cmd"]) <= 300


def test_html_snapshot_escapes_every_job_string() -> None:
    job = JobInfo(job_id="x1", name=XSS, status=JobStatus.FAILED, reason="<script>alert(2)</script>",
                  command="echo '<b>'")
    text = html_snapshot([job_row(job)], title="Jobs of <b>proj</b>")
    assert "<img" not in text and "<script" not in text and "<b>proj" not in text
    assert html.escape(XSS) in text
    assert "&lt;script&gt;alert(2)&lt;/script&gt;" in text
    assert 'data-status="failed"' in text


def test_html_snapshot_and_text_summary_are_bounded() -> None:
    rows = [job_row(j) for j in make_jobs(500)]
    text = html_snapshot(rows, limit=50)
    assert text.count("<tr data-status") == 50
    assert "450 older jobs" in text
    summary = text_summary(rows, limit=5)
    assert summary.splitlines()[0].startswith("Celline jobs: 500 jobs (500 completed)")
    assert summary.count("\n") == 6


def test_eta_and_duration_helpers() -> None:
    assert eta_seconds(25, 0, 100_000, 100_000) == 300
    assert eta_seconds(25, 0, 100_000, 110_000) == 290
    assert eta_seconds(None, 0, 1, 1) is None and eta_seconds(100, 0, 5, 5) is None
    assert format_duration(185) == "3m 05s" and format_duration(3720) == "1h 02m"


# -- JobTable: state and diffs --------------------------------------------------------------


def window_of(table: JobTable, view: str = "v1", **content: Any) -> dict[str, Any]:
    """A view's request for its window, answered (what js/src/window.js asks)."""
    return table.open_window(view, {"type": "window", "view": view, "req": 1, "query": {}, "offset": 0,
                                    "limit": 50, **content})


def test_table_sends_the_first_window_once_then_one_message_per_tick(monitor: JobMonitor,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monitor.store.insert_many(make_jobs(1000, JobStatus.PENDING, scheduler="imported"))
    table = JobTable(monitor, poll=False, initial_rows=40)
    assert len(table.window["rows"]) == 40 and table.window["total"] == 1000
    window_of(table, limit=50)  # the view shows the newest 50: job00999 .. job00950
    sent = record(table, monkeypatch)

    # A tick with nothing new: one small message (meta only), no rows.
    table.refresh_view()
    assert len(sent.messages) == 1 and not sent.updates()
    assert sent.customs()[0]["type"] == "tick" and sent.customs()[0]["views"] == {}

    # 50 jobs change, 10 of them in view: exactly one message, carrying only those 10 rows.
    for i in range(940, 990):
        monitor.store.update(f"job{i:05d}", JobStatus.QUEUED, source="test")
    table.refresh_view()
    assert len(sent.messages) == 2
    tick = sent.customs()[1]
    assert {r["id"] for r in tick["views"]["v1"]["rows"]} == {f"job{i:05d}" for i in range(950, 990)}
    assert all(r["status"] == "queued" for r in tick["views"]["v1"]["rows"])
    assert tick["counts"] == {"pending": 950, "queued": 50}
    table.close()


def test_new_jobs_appear_and_rows_only_change_when_shown_fields_change(monitor: JobMonitor,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    table = JobTable(monitor, poll=False)
    assert table.window["rows"] == []
    window_of(table)
    sent = record(table, monkeypatch)
    monitor.store.insert_many(make_jobs(3))
    table.refresh_view()
    assert len(sent.customs()[-1]["views"]["v1"]["rows"]) == 3
    # A write that changes nothing the table shows (metadata) is not a row change.
    monitor.store.update("job00000", None, source="test", metadata={"pid": 1})
    table.refresh_view()
    assert sent.customs()[-1]["views"] == {}
    assert {r["id"]: r for r in table.rows}["job00000"]["status"] == "completed"
    table.close()


def test_stale_poll_is_reported_with_its_error(monitor: JobMonitor) -> None:
    monitor.store.insert_many(make_jobs(1, JobStatus.QUEUED, scheduler="slurm"))
    monitor.store.record_poll("slurm", False, "`squeue` did not answer within 30 s", 1)
    monitor.store.record_poll("pbs", False, "qstat missing", 1)  # no active pbs job: not shown
    table = JobTable(monitor, poll=False)
    table.refresh_view()
    stale = table.last_tick["meta"]["stale"]
    assert [s["scheduler"] for s in stale] == ["slurm"]
    assert "did not answer" in stale[0]["error"]
    assert table.last_tick["meta"]["live"] is False and table.last_tick["meta"]["error"] is None
    monitor.store.record_poll("slurm", True, None, 1)
    table.refresh_view()
    assert table.last_tick["meta"]["stale"] == []
    table.close()


def test_display_adds_an_escaped_html_copy_of_the_table(monitor: JobMonitor) -> None:
    from IPython.core.interactiveshell import InteractiveShell
    from IPython.utils.capture import capture_output

    InteractiveShell.instance()
    monitor.store.insert(JobInfo(job_id="x1", name=XSS, status=JobStatus.COMPLETED, submit_time=utcnow()))
    table = JobTable(monitor, poll=False)
    data, _meta = table._repr_mimebundle_()
    assert data["application/vnd.jupyter.widget-view+json"]["model_id"] == table.model_id
    assert "text/html" not in data  # nbconvert drops it when the widget state is saved: a second output holds it
    assert "1 job (1 completed)" in data["text/plain"]
    with capture_output() as captured:
        table._ipython_display_()
    widget_out, copy = captured.outputs
    assert "application/vnd.jupyter.widget-view+json" in widget_out.data
    assert html.escape(XSS) in copy.data["text/html"] and "<img" not in copy.data["text/html"]
    assert 'class="celline-jobs-fallback"' in copy.data["text/html"]
    # Displayed twice: the same model, nothing else changes.
    again, _ = table._repr_mimebundle_()
    assert again["application/vnd.jupyter.widget-view+json"] == data["application/vnd.jupyter.widget-view+json"]
    table.close()


def test_the_html_copy_is_updated_in_place_as_jobs_end(monitor: JobMonitor) -> None:
    """Seen on main: the text/html a saved notebook held was the snapshot taken when the cell ran
    ("6 running · 0s") however long after the jobs ended the notebook was saved."""
    from IPython.core.interactiveshell import InteractiveShell
    from IPython.utils.capture import capture_output

    InteractiveShell.instance()
    monitor.store.insert(JobInfo(job_id="r1", name="Count S1", status=JobStatus.RUNNING, submit_time=utcnow(),
                                 start_time=utcnow()))
    table = JobTable(monitor, poll=False)
    table.fallback.min_interval = 3600.0
    with capture_output() as captured:
        table._ipython_display_()
        assert 'data-status="running"' in captured.outputs[1].data["text/html"]
        table.refresh_view()  # nothing changed: nothing sent
        monitor.store.update("r1", JobStatus.COMPLETED, source="test", end_time=utcnow(), exit_code=0)
        table.refresh_view()  # a job ended, but an update went out less than min_interval ago: held back
        assert len(captured.outputs) == 2 and table.fallback.dirty
        table._after_cell()  # the end of a cell run sends what was held back
    assert len(captured.outputs) == 3
    update = captured.outputs[2]
    assert update.update and update.transient == {"display_id": table.fallback.display_id}
    saved = update.data["text/html"]
    assert 'data-status="completed"' in saved and 'data-status="running"' not in saved
    table.fallback.min_interval = 0.0
    with capture_output() as captured:
        monitor.store.update("r1", None, source="test", reason="checked")
        table.refresh_view()  # a change that no status shows: no update
        monitor.store.insert(JobInfo(job_id="f1", name="Predict", status=JobStatus.FAILED, submit_time=utcnow()))
        table.refresh_view()  # a new job: at once, when the throttle allows
    assert len(captured.outputs) == 1 and "Predict" in captured.outputs[0].data["text/html"]
    table.close()


# -- JobTable: actions (custom messages) ------------------------------------------------------


def test_action_messages_are_answered_with_results_and_errors(monitor: JobMonitor) -> None:
    monitor.store.insert_many(make_jobs(1, JobStatus.COMPLETED))
    failed = JobInfo(job_id="failed1", name="Predict", status=JobStatus.FAILED, command="exit 3",
                     resources=Resources.parse("mem=8G"), submit_time=utcnow(), end_time=utcnow())
    monitor.store.insert(failed)
    table = JobTable(monitor, poll=False)

    reply = table.handle_action({"action": "cancel", "job_id": "job00000", "req": "r1"})
    assert reply["type"] == "reply" and reply["req"] == "r1" and reply["ok"] is False
    assert "already ended" in reply["message"]

    reply = table.handle_action({"action": "cancel", "job_id": "nope", "req": "r2"})
    assert reply["ok"] is False and "nope" in reply["message"]

    reply = table.handle_action({"action": "retry", "job_id": "failed1", "req": "r3", "resources": "mem=lots"})
    assert reply["ok"] is False and "memory" in reply["message"]

    reply = table.handle_action({"action": "retry", "job_id": "failed1", "req": "r4", "resources": "mem=64G"})
    assert reply["ok"] is True and "64G" in reply["message"]
    new = monitor.get_job(reply["new_job_id"])
    assert new.retry_of == "failed1" and new.attempt == 2 and new.resources.summary() == "64G"
    assert reply["new_job_id"] in {r["id"] for r in table.rows}  # the diff was pushed right away
    monitor.cancel_job(new.job_id, wait=2)

    reply = table.handle_action({"action": "explode", "req": "r5"})
    assert reply["ok"] is False
    table.close()


def test_custom_message_runs_in_a_thread_and_replies_over_the_comm(monitor: JobMonitor,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    job_id = monitor.submit_job("sleeper", "sleep 30")
    deadline = time.monotonic() + 10
    while monitor.get_job_status(job_id) is not JobStatus.RUNNING and time.monotonic() < deadline:
        monitor.refresh(force=True)
        time.sleep(0.1)
    table = JobTable(monitor, poll=False)
    sent = record(table, monkeypatch)
    table._handle_custom(table, {"action": "cancel", "job_id": job_id, "req": "view-1"}, [])
    deadline = time.monotonic() + 15
    while not [m for m in sent.customs() if m.get("type") == "reply"] and time.monotonic() < deadline:
        time.sleep(0.05)
    replies = [m for m in sent.customs() if m.get("type") == "reply"]
    assert replies and replies[0]["req"] == "view-1" and replies[0]["ok"] is True, replies
    assert monitor.get_job_status(job_id) is JobStatus.CANCELLED
    assert {r["id"]: r for r in table.rows}[job_id]["status"] == "cancelled"
    # Messages that are not actions are ignored.
    table._handle_custom(table, "hello", [])
    table._handle_custom(table, {"action": "rm -rf"}, [])
    table.close()


# -- the poller --------------------------------------------------------------------------------


def test_poller_starts_with_the_first_widget_and_stops_with_the_last(monitor: JobMonitor) -> None:
    monitor.store.insert_many(make_jobs(2))
    first = JobTable(monitor, interval=0.1)
    poller = first._lease.poller
    assert first.polling and poller is not None and poller.is_alive()
    second = JobTable(monitor, interval=0.1)
    assert second._lease.poller is poller and _shared.active_leases(monitor) == 2
    first._repr_mimebundle_()
    first._repr_mimebundle_()  # displayed twice: nothing changes
    ticks = poller.ticks
    deadline = time.monotonic() + 5
    while poller.ticks < ticks + 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert poller.ticks >= ticks + 3
    assert second.last_tick["meta"]["live"] is True
    first.close()
    assert not first.polling and poller.is_alive()  # the second widget still needs it
    second.close()
    assert not poller.is_alive() and _shared.active_leases(monitor) == 0
    assert getattr(monitor, "_poller", None) is None


def test_ticks_update_the_table_while_the_main_thread_does_other_work(monitor: JobMonitor) -> None:
    table = JobTable(monitor, interval=0.1)
    monitor.store.insert_many(make_jobs(3))
    deadline = time.monotonic() + 5
    while len(table.rows) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(table.rows) == 3
    table.close()


def test_a_poller_started_by_the_user_is_left_running(monitor: JobMonitor) -> None:
    poller = monitor.start_polling(0.1)
    table = JobTable(monitor)
    assert table._lease.poller is poller
    table.close()
    assert poller.is_alive()
    monitor.stop_polling()


def test_front_end_closing_the_comm_stops_the_ticks(monitor: JobMonitor) -> None:
    table = JobTable(monitor, interval=0.1)
    poller = table._lease.poller
    table._comm_closed({"content": {}})
    assert table.closed and not table.polling and not poller.is_alive()
    assert table.refresh_view() is False
    table.close()


def test_shutdown_stops_every_poller_the_widgets_started(monitor: JobMonitor) -> None:
    table = JobTable(monitor, interval=0.1)
    poller = table._lease.poller
    _shared.shutdown()
    assert not poller.is_alive()
    table.close()  # releasing after shutdown is harmless


def test_a_failing_listener_never_stops_the_poller(monitor: JobMonitor, monkeypatch: pytest.MonkeyPatch) -> None:
    table = JobTable(monitor, interval=0.05)
    calls: list[int] = []

    def boom() -> bool:
        calls.append(1)
        raise RuntimeError("view bug")

    monkeypatch.setattr(table, "refresh_view", boom)
    poller = table._lease.poller
    deadline = time.monotonic() + 5
    while len(calls) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(calls) >= 3 and poller.is_alive()
    table.close()


# -- JobProgress and Dashboard -----------------------------------------------------------------


def test_job_progress_for_one_job_and_for_running_jobs(monitor: JobMonitor) -> None:
    start = utcnow()
    job = JobInfo(job_id="p1", name="Count", status=JobStatus.RUNNING, scheduler="imported", start_time=start,
                  progress=Progress(percent=40, stage="Aligning", details={"sample": "S1", "source": "log"},
                                    updated_at=start))
    monitor.store.insert(job)
    running = JobProgress(monitor, poll=False)
    assert running.title == "Running jobs"
    assert [i["id"] for i in running.progress["items"]] == ["p1"]
    item = running.progress["items"][0]
    assert item["pct"] == 40 and item["stage"] == "Aligning" and item["details"] == {"sample": "S1"}
    one = JobProgress(monitor, ["p1"], poll=False)
    assert one.title == "Progress of Count"
    assert one.refresh_view() is False  # nothing changed: nothing sent
    monitor.store.update("p1", None, source="test", progress=Progress(percent=80, stage="Counting"))
    assert one.refresh_view() is True and one.progress["items"][0]["pct"] == 80
    running.close()
    one.close()


def test_dashboard_links_selection_to_log_and_progress(monitor: JobMonitor, project: Path) -> None:
    job = JobInfo(job_id="d1", name=XSS, status=JobStatus.COMPLETED, submit_time=utcnow())
    monitor.store.insert(job)
    log = monitor.paths.log_file("d1")
    log.write_text("hello\nworld\n")
    board = dashboard(monitor, poll=False)
    assert isinstance(board, Dashboard)
    assert board.progress.layout.display == "none" and board.logtail.job_id == ""
    board.select("d1")
    assert board.table.selected == "d1" and board.logtail.job_id == "d1"
    assert board.logtail.lines == ["hello", "world"] and board.logtail.title == f"Log of {XSS} (d1)"
    assert board.progress.job_ids == ["d1"] and board.progress.layout.display is None
    data, _ = board._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in data and html.escape(XSS) in board.table.html_snapshot()
    board.select(None)
    assert board.logtail.job_id == "" and board.progress.layout.display == "none"
    board.close()
    assert board.table.closed and board.logtail.closed and board.progress.closed


def test_dashboard_shares_one_poller_and_stops_it_on_close(project: Path) -> None:
    board = dashboard(project, interval=0.1)
    monitor = board.monitor
    assert _shared.active_leases(monitor) == 3
    poller = board.table._lease.poller
    assert board.logtail._lease.poller is poller and board.progress._lease.poller is poller
    assert board.polling
    board.close()
    assert not poller.is_alive() and _shared.active_leases(monitor) == 0


def test_five_thousand_jobs_stay_cheap_on_the_wire(monitor: JobMonitor, monkeypatch: pytest.MonkeyPatch) -> None:
    import json

    monitor.store.insert_many(make_jobs(5000, JobStatus.QUEUED, scheduler="imported"))
    table = JobTable(monitor, poll=False)
    first = len(json.dumps(table.window))
    assert first < 60 * 400, f"{first} bytes for the first window"
    window_of(table, limit=100)
    sent = record(table, monkeypatch)
    for i in range(4950, 5000, 5):
        monitor.store.update(f"job{i:05d}", JobStatus.RUNNING, source="test", start_time=utcnow())
    table.refresh_view()
    assert len(sent.messages) == 1
    tick = len(json.dumps(sent.customs()[0]))
    assert len(sent.customs()[0]["views"]["v1"]["rows"]) == 10
    assert tick < 10_000, f"a 10-row tick took {tick} bytes"
    table.close()


def test_interpreter_exit_stops_the_poller(project: Path) -> None:
    import subprocess
    import sys

    code = f"""
import atexit, threading, time
state = {{}}
def check():
    poller = state["poller"]
    print("poller alive after shutdown:", poller.is_alive(), flush=True)
atexit.register(check)  # registered first, so it runs after the widgets' own exit hook
from celline_jobs_nb.widgets import JobTable
table = JobTable({str(project)!r}, interval=0.05)
state["poller"] = table._lease.poller
time.sleep(0.3)
print("ticks:", state["poller"].ticks, flush=True)
"""
    started = time.monotonic()
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "poller alive after shutdown: False" in result.stdout, result.stdout + result.stderr
    assert time.monotonic() - started < 20


def test_selecting_a_job_sends_one_log_update(monitor: JobMonitor, monkeypatch: pytest.MonkeyPatch) -> None:
    monitor.store.insert(JobInfo(job_id="s1", name="Count", status=JobStatus.COMPLETED, submit_time=utcnow()))
    monitor.paths.log_file("s1").write_text("a\nb\n")
    board = dashboard(monitor, poll=False)
    sent = record(board.logtail, monkeypatch)
    board.select("s1")
    assert len(sent.messages) == 1
    assert set(sent.updates()[0]) == {"job_id", "title", "snapshot", "tail"}
    board.close()
