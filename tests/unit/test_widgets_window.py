"""The windowed dashboard over a real store: a view asks for the rows it shows (offset/limit over
the sort, status chips, free text and grouping) and gets only those, plus the chip counts; each tick
sends a view only what changed in its window. A ``View`` here does what js/src/window.js does."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest

from celline_jobs_nb.core.models import JobInfo, JobStatus, utcnow
from celline_jobs_nb.monitor import JobMonitor
from celline_jobs_nb.store.window import TOP, Query, WindowIndex, Windows
from celline_jobs_nb.widgets import JobTable


def make_jobs(n: int, status: JobStatus, start: int = 0, name: str = "job", **extra: Any) -> list[JobInfo]:
    now = utcnow()
    return [JobInfo(job_id=f"job{i:05d}", name=f"{name} {i}", status=status, scheduler="local", command=f"echo {i}",
                    submit_time=now, start_time=now if status is not JobStatus.PENDING else None,
                    end_time=now if status.final else None, **extra)
            for i in range(start, start + n)]


class View:
    """A view of the table, as js/src/window.js keeps it."""

    def __init__(self, table: JobTable, name: str = "v1") -> None:
        self.table, self.name, self.req = table, name, 0
        self.ids: list[str] = []
        self.rows: dict[str, dict[str, Any]] = {}
        self.children: dict[str, list[str]] = {}
        self.total = 0
        self.counts: dict[str, int] = {}
        self.offset = 0

    def ask(self, offset: int = 0, limit: int = 50, expanded: list[str] | None = None, **query: Any) -> dict[str, Any]:
        self.req += 1
        reply = self.table.open_window(self.name, {"type": "window", "view": self.name, "req": self.req,
                                                   "query": query, "offset": offset, "limit": limit,
                                                   "expanded": expanded or []})
        json.dumps(reply)  # what goes over the comm is plain JSON
        assert reply["type"] == "win" and reply["req"] == self.req and reply["view"] == self.name
        self.offset, self.ids, self.total, self.counts = reply["offset"], reply["ids"], reply["total"], reply["counts"]
        self.rows = {r["id"]: r for r in reply["rows"]}
        self.children = reply["children"]
        return reply

    def apply(self, tick: dict[str, Any]) -> dict[str, Any] | None:
        if "counts" in tick:
            self.counts = tick["counts"]
        diff = tick["views"].get(self.name)
        if diff is None or diff["req"] != self.req or diff["offset"] != self.offset:
            return None
        self.rows.update({r["id"]: r for r in diff["rows"]})
        self.ids = diff.get("ids", self.ids)
        self.children.update(diff.get("children", {}))
        for parent in diff.get("collapsed", []):
            self.children.pop(parent, None)
        self.total = diff["total"]
        return diff

    def shown(self) -> list[str]:
        return [self.rows[i]["id"] for i in self.ids]


@pytest.fixture
def ticks(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    sent: list[dict[str, Any]] = []
    monkeypatch.setattr(JobTable, "_post", lambda self, message: sent.append(json.loads(json.dumps(message))))
    return sent


def _big(monitor: JobMonitor) -> None:
    monitor.store.insert_many(make_jobs(300, JobStatus.COMPLETED) + make_jobs(100, JobStatus.FAILED, start=300,
                                                                                name="Count SRR")
                              + make_jobs(5, JobStatus.RUNNING, start=400, name="Align SRR"))


def test_the_kernel_sends_only_the_rows_in_view_and_counts_for_the_chips(monitor: JobMonitor, ticks):
    _big(monitor)
    table = JobTable(monitor, poll=False, disk_interval=None, initial_rows=20)
    first = table.window
    assert len(first["rows"]) == 20 and first["total"] == 405
    assert first["counts"] == {"running": 5, "completed": 300, "failed": 100}
    assert [r["id"] for r in first["rows"]] == [f"job{i:05d}" for i in range(404, 384, -1)]  # newest first
    assert len(json.dumps(table.get_state()["window"])) < 20_000

    view = View(table)
    view.ask(offset=200, limit=30)
    assert view.shown() == [f"job{i:05d}" for i in range(204, 174, -1)] and view.total == 405
    # Chips and text are store queries; the total is what matches.
    view.ask(statuses=["failed"], limit=10)
    assert view.total == 100 and all(view.rows[i]["status"] == "failed" for i in view.ids)
    view.ask(text="srr", limit=500)
    assert view.total == 105 and set(view.ids) == {f"job{i:05d}" for i in range(300, 405)}
    view.ask(text="unt srr 39", limit=500)  # every word, each anywhere in the id, name, type or reason
    assert set(view.ids) == {"job00339", *(f"job{i:05d}" for i in range(390, 400))}
    view.ask(text="nothing-has-this")
    assert view.total == 0 and view.ids == []
    # Sorted by name ascending over the whole table, and the last position is right too.
    view.ask(sort="name", dir="asc", limit=3)
    assert [view.rows[i]["name"] for i in view.ids] == ["Align SRR 400", "Align SRR 401", "Align SRR 402"]
    view.ask(sort="name", dir="asc", offset=403, limit=10)
    assert [view.rows[i]["name"] for i in view.ids] == ["job 98", "job 99"]
    table.close()


def test_scrolling_anywhere_matches_the_order_of_the_whole_table(monitor: JobMonitor, ticks):
    """Any window of any sort equals the same slice of the whole table sorted in Python."""
    _big(monitor)
    ended = monitor.store.list()
    table = JobTable(monitor, poll=False, disk_interval=None)
    view = View(table)
    for sort, desc, key in (("end", True, lambda j: (j.end_time is None, -(j.end_time or utcnow()).timestamp())),
                            ("name", False, lambda j: (j.name,))):
        order = sorted(reversed(ended), key=key)  # ties: newest first when descending
        ids = [j.job_id for j in order] if sort == "name" else None
        for offset in (0, 150, 390):
            view.ask(sort=sort, dir="desc" if desc else "asc", offset=offset, limit=20)
            if ids is not None:
                assert view.ids == ids[offset:offset + 20]
            else:
                assert len(view.ids) == min(20, 405 - offset)
                assert [view.rows[i]["status"] for i in view.ids if view.rows[i]["status"] == "running"] == \
                    ["running"] * sum(1 for i in view.ids if view.rows[i].get("end") is None)
    table.close()


def test_a_tick_sends_a_view_only_the_changed_rows_in_its_window(monitor: JobMonitor, ticks):
    _big(monitor)
    table = JobTable(monitor, poll=False, disk_interval=None)
    view = View(table)
    view.ask(offset=0, limit=10)  # job00404 .. job00395: the five running jobs are in it
    ticks.clear()
    # Nothing changed: one small message, no rows.
    table.refresh_view()
    assert len(ticks) == 1 and ticks[0]["type"] == "tick" and ticks[0]["views"] == {}
    # A running job in view changes progress: just that row.
    monitor.store.update("job00402", None, source="test", progress={"percent": 40.0, "stage": "Aligning"})
    # A job outside the window changes: nothing for this view.
    monitor.store.update("job00010", None, source="test", metadata={"pid": 4})
    table.refresh_view()
    diff = view.apply(ticks[-1])
    assert diff is not None and [r["id"] for r in diff["rows"]] == ["job00402"] and "ids" not in diff
    assert view.rows["job00402"]["pct"] == 40.0
    # A running job ends: its row, the new counts, and a notice of the ending.
    monitor.store.update("job00403", JobStatus.FAILED, source="test", exit_code=3, end_time=utcnow())
    table.refresh_view()
    tick = ticks[-1]
    view.apply(tick)
    assert tick["counts"] == {"running": 4, "completed": 300, "failed": 101}
    assert [r["id"] for r in tick["ended"]] == ["job00403"] and view.rows["job00403"]["status"] == "failed"
    # A new job comes in at the top of the newest-first order: the window moves by one.
    monitor.store.insert_many(make_jobs(1, JobStatus.PENDING, start=405))
    table.refresh_view()
    diff = view.apply(ticks[-1])
    assert diff is not None and view.ids[0] == "job00405" and len(view.ids) == 10 and view.total == 406
    assert [r["id"] for r in diff["rows"]] == ["job00405"]  # the rows the view already has are not re-sent
    # A window the view no longer shows (it asked for another) gets no diff meant for the old one.
    view.ask(offset=100, limit=10)
    monitor.store.update("job00405", JobStatus.RUNNING, source="test", start_time=utcnow())
    table.refresh_view()
    assert view.apply(ticks[-1]) is None or all(r["id"] != "job00405" for r in ticks[-1]["views"]["v1"]["rows"])
    table.close()


def test_array_tasks_and_earlier_attempts_are_listed_under_their_job(monitor: JobMonitor, ticks):
    now = utcnow()
    parent = JobInfo(job_id="arr", name="Count array", status=JobStatus.RUNNING, scheduler="local", command="x",
                     submit_time=now)
    tasks = [JobInfo(job_id=f"arr_{i}", name="Count array", status=JobStatus.COMPLETED if i < 2 else JobStatus.QUEUED,
                     scheduler="local", command="x", array_parent="arr", array_index=i, submit_time=now)
             for i in range(4)]
    monitor.store.insert_many([parent, *tasks, *make_jobs(3, JobStatus.COMPLETED)])
    old = JobInfo(job_id="try1", name="Integrate", status=JobStatus.FAILED, scheduler="local", command="x",
                  submit_time=now, end_time=now, metadata={"retried_by": "try2"})
    new = JobInfo(job_id="try2", name="Integrate", status=JobStatus.RUNNING, scheduler="local", command="x",
                  submit_time=now, retry_of="try1", attempt=2)
    monitor.store.insert_many([old, new])
    table = JobTable(monitor, poll=False, disk_interval=None)
    view = View(table)
    reply = view.ask(limit=50)
    # Top level: the array's parent and the latest attempt, never a task or an earlier attempt.
    assert set(view.ids) == {"arr", "try2", "job00000", "job00001", "job00002"}
    assert reply["kids"] == {"arr": [4, 0], "try2": [0, 1]}
    # The chips count jobs: tasks count, the earlier attempt does not.
    assert view.counts == {"queued": 2, "running": 2, "completed": 5}
    reply = view.ask(limit=50, expanded=["arr", "try2"])
    assert view.children == {"arr": ["arr_0", "arr_1", "arr_2", "arr_3"], "try2": ["try1"]}
    assert view.rows["try1"]["status"] == "failed"
    # A task changes: the expanded group's rows come in the tick.
    monitor.store.update("arr_2", JobStatus.RUNNING, source="test", start_time=utcnow())
    table.refresh_view()
    diff = view.apply(ticks[-1])
    assert diff is not None and {r["id"] for r in diff["rows"]} == {"arr_2"}
    assert view.rows["arr_2"]["status"] == "running"
    table.close()


def test_the_text_index_follows_inserts_and_updates(monitor: JobMonitor, ticks):
    _big(monitor)
    table = JobTable(monitor, poll=False, disk_interval=None)
    assert table.windows.index.fts and table.windows.index.complete
    view = View(table)
    view.ask(text="readrds")
    assert view.total == 0
    monitor.store.update("job00301", None, source="test", reason="Error in readRDS(file)")
    monitor.store.insert_many(make_jobs(1, JobStatus.FAILED, start=500, name="readRDS check"))
    table.refresh_view()
    view.ask(text="readrds")
    assert set(view.ids) == {"job00301", "job00500"}
    # A job retried (now an earlier attempt) leaves the top level and the chips.
    monitor.store.update("job00301", None, source="test", metadata={"retried_by": "job00500"})
    table.refresh_view()
    view.ask(text="readrds")
    assert view.ids == ["job00500"] and view.counts["failed"] == 100
    table.close()


def test_without_the_indexes_the_same_answers_come_from_plain_queries(monitor: JobMonitor):
    """A store the window indexes were never built in (a read-only one) answers the same, slower."""
    _big(monitor)
    monitor.store.update("job00301", None, source="test", reason="Error in readRDS(file)")
    bare = Windows(monitor.store, WindowIndex.__new__(WindowIndex))
    bare.index.present, bare.index.building, bare.index.store = set(), False, monitor.store
    indexed_index = WindowIndex(monitor.store)
    indexed_index.ensure(background=False)
    indexed = Windows(monitor.store, indexed_index)
    for query in (Query(), Query(sort="name", descending=False), Query(statuses=("failed",)), Query(text="readrds"),
                  Query(sort="end", text="srr"), Query(sort="status"), Query(sort="status", descending=False),
                  Query(sort="status", statuses=("failed", "running"))):
        for offset in (0, 97, 380):
            assert bare.seqs(query, offset, 40) == indexed.seqs(query, offset, 40), (query, offset)
        assert bare.total(query) == indexed.total(query)
    assert bare.counts() == indexed.counts()
    # The indexed plan really uses the indexes (the unindexed one would read every row).
    plan = monitor.store._read(f"EXPLAIN QUERY PLAN SELECT seq FROM jobs INDEXED BY jw_name_nocase WHERE {TOP} "
                               "AND name COLLATE NOCASE IS NOT NULL ORDER BY name COLLATE NOCASE, seq LIMIT 10")
    assert "jw_name_nocase" in str(plan) and "TEMP B-TREE" not in str(plan)


def test_the_saved_copy_is_bounded_and_counts_every_job(monitor: JobMonitor):
    monitor.store.insert_many(make_jobs(450, JobStatus.COMPLETED))
    table = JobTable(monitor, poll=False, disk_interval=None)
    page = table.html_snapshot()
    assert page.count("<tr data-status=") == 200
    assert "200 newest jobs of 450" in page and "450 completed" in page and "250 older jobs" in page
    assert "60 newest jobs of 450" in table.text_summary()
    table.close()


def test_window_requests_are_answered_off_the_kernel_thread_newest_first(monitor: JobMonitor, ticks):
    _big(monitor)
    table = JobTable(monitor, poll=False, disk_interval=None)
    for req in range(1, 4):
        table._handle_custom(table, {"type": "window", "view": "v9", "req": req, "query": {}, "offset": req * 10,
                                     "limit": 5})
    worker = table._worker
    if worker is not None:
        worker.join(5)
    replies = [m for m in ticks if m.get("type") == "win"]
    assert replies and replies[-1]["req"] == 3 and replies[-1]["offset"] == 30
    assert threading.current_thread().name == "MainThread"
    table.close()


def test_a_text_index_left_without_its_triggers_is_filled_again(monitor: JobMonitor):
    """The jobs table rebuilt (its triggers gone) while rows changed: the next open refills the index."""
    import sqlite3

    _big(monitor)
    WindowIndex(monitor.store).ensure(background=False)
    conn = sqlite3.connect(monitor.store.path)
    conn.execute("DROP TRIGGER jw_text_au")
    conn.execute("UPDATE jobs SET name = 'renamed batch' WHERE job_id = 'job00305'")  # was Count SRR 305
    conn.commit()
    conn.close()
    index = WindowIndex(monitor.store)
    assert not index.fts
    index.ensure(background=False)
    windows = Windows(monitor.store, index)
    assert index.fts and windows.total(Query(text="renamed")) == 1 and windows.total(Query(text="count")) == 99


def test_chip_counts_follow_ticks_without_a_recount_and_match_one(monitor: JobMonitor, ticks):
    """Jobs that start, end, arrive (some already ended) or change in place: the counts the ticks
    carry, kept up to date in the kernel, are what a fresh count of the store says."""
    _big(monitor)
    table = JobTable(monitor, poll=False, disk_interval=None)
    View(table).ask()
    recounts = []
    original = table.windows._status_counts
    table.windows._status_counts = lambda: recounts.append(1) or original()  # type: ignore[method-assign]
    monitor.store.update("job00400", JobStatus.COMPLETED, source="test", end_time=utcnow())
    monitor.store.insert_many(make_jobs(3, JobStatus.QUEUED, start=600) + make_jobs(2, JobStatus.FAILED, start=700))
    table.refresh_view()
    monitor.store.update("job00600", JobStatus.RUNNING, source="test", start_time=utcnow())
    monitor.store.update("job00700", None, source="test", reason="written again")  # ended, new: counted once
    monitor.store.update("job00010", None, source="test", metadata={"pid": 3})  # ended long ago: no change
    table.refresh_view()
    assert recounts == []  # the counts followed the ticks
    assert ticks[-1]["counts"] == Windows(monitor.store).counts() == {
        "queued": 2, "running": 5, "completed": 301, "failed": 102}
    table.close()
