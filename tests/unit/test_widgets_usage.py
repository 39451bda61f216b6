"""JobTable: resource use, attempts and retry countdowns, the selected job's detail, disk usage,
and that all of it keeps the per-tick diffs small."""

from __future__ import annotations

import html
import json
import sys
import threading
import time
from datetime import timedelta
from typing import Any

import pytest

from celline_jobs_nb.core.models import JobInfo, JobStatus, utcnow
from celline_jobs_nb.core.resources import Resources
from celline_jobs_nb.monitor import JobMonitor
from celline_jobs_nb.widgets import JobTable
from celline_jobs_nb.widgets._format import (
    disk_low,
    disk_text,
    disk_wire,
    format_bytes,
    html_snapshot,
    job_detail,
    job_row,
    quantize,
    text_summary,
)

XSS = "<img src=x onerror=alert(1)>"
G = 1024**3


def usage(now: float, *, cpu_seconds: float = 120.0, elapsed: float = 100.0, cpu_percent: float = 187.34,
          rss: int = 1_234_567_890, peak: int = 3_987_654_321, cpus: int | None = 2,
          req_mem: int | None = 4 * G, samples: int = 60) -> dict[str, Any]:
    record: dict[str, Any] = {
        "cpu_seconds": cpu_seconds, "elapsed_seconds": elapsed, "cpu_percent": cpu_percent, "rss_bytes": rss,
        "max_rss_bytes": peak, "read_bytes": 1_000_000, "write_bytes": 2_000_000, "sampled_at": now,
        "samples": [[round(now - 60 + i, 3), 100.0 + i, 1_000_000 * (i + 1)] for i in range(samples)],
    }
    if cpus is not None:
        record["alloc_cpus"] = cpus
    if req_mem is not None:
        record["req_mem_bytes"] = req_mem
    return record


def running_job(job_id: str = "r1", **kwargs: Any) -> JobInfo:
    now = time.time()
    return JobInfo(job_id=job_id, name="Count", status=JobStatus.RUNNING, command="cellranger count",
                   resources=Resources.parse("cpus=2,mem=4G"), submit_time=utcnow(),
                   start_time=utcnow() - timedelta(seconds=100), metadata={"usage": usage(now, **kwargs)})


class Recorder:
    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []
        self.lock = threading.Lock()

    def __call__(self, msg: dict[str, Any], buffers: Any = None) -> None:
        with self.lock:
            self.messages.append(msg)

    def customs(self) -> list[dict[str, Any]]:
        return [m["content"] for m in self.messages if m.get("method") == "custom"]

    def updates(self) -> list[dict[str, Any]]:
        return [m["state"] for m in self.messages if m.get("method") == "update"]


def record(widget: Any, monkeypatch: pytest.MonkeyPatch) -> Recorder:
    recorder = Recorder()
    monkeypatch.setattr(widget, "_send", recorder)
    return recorder


# -- rows ---------------------------------------------------------------------------------------


def test_a_running_job_row_carries_current_use_peak_and_efficiency_but_no_samples() -> None:
    row = job_row(running_job())
    assert row["cpu"] == 187 and row["rss"] == 1_230_000_000 and row["peak"] == 3_990_000_000
    assert row["ceff"] == 60  # 120 CPU s / (100 s x 2 CPUs)
    assert row["meff"] == 93  # 3.99 GB peak / 4 GiB
    assert "samples" not in json.dumps(row) and len(json.dumps(row)) < 400


def test_a_finished_job_shows_peak_and_efficiency_not_current_use() -> None:
    job = running_job(cpu_percent=0.0, rss=0)
    job.status, job.end_time = JobStatus.COMPLETED, utcnow()
    row = job_row(job)
    assert "cpu" not in row and "rss" not in row
    assert row["peak"] == 3_990_000_000 and row["ceff"] == 60 and row["meff"] == 93


def test_efficiency_falls_back_to_the_request_and_waits_for_a_fair_cpu_figure() -> None:
    # No alloc/request in the usage record: the job's own resources are used (cpus=2, mem=4G).
    row = job_row(running_job(cpus=None, req_mem=None))
    assert row["ceff"] == 60 and row["meff"] == 93
    # A running job 10 s old: CPU efficiency is noise, not shown yet; memory efficiency is.
    young_job = running_job(elapsed=10.0, cpu_seconds=1.0)
    young = job_row(young_job)
    assert "ceff" not in young and young["meff"] == 93
    assert "cpu_eff" not in job_detail(young_job)  # the panel follows the same rule
    # No request at all: no efficiency, the numbers still show.
    bare = running_job(cpus=None, req_mem=None)
    bare.resources = Resources()
    row = job_row(bare)
    assert "meff" not in row and row["cpu"] == 187


def test_garbage_usage_metadata_never_breaks_a_row() -> None:
    job = running_job()
    job.metadata["usage"] = {"cpu_percent": "lots", "rss_bytes": float("nan"), "max_rss_bytes": True,
                             "cpu_seconds": None, "elapsed_seconds": "x", "samples": [["a", 1], "junk", [1, 2, 3]]}
    row = job_row(job)
    assert not {"cpu", "rss", "peak", "ceff", "meff"} & set(row)
    detail = job_detail(job)
    assert detail["samples"] == [[1.0, 2.0, 3]]
    job.metadata["usage"] = "not a dict"
    assert "peak" not in job_row(job) and job_detail(job)["id"] == "r1"


def test_attempts_and_a_retry_waiting_in_its_backoff() -> None:
    not_before = time.time() + 12
    retry = JobInfo(job_id="r2", name=XSS, status=JobStatus.PENDING, attempt=2, retry_of="r1",
                    metadata={"retry_policy": {"max_retries": 3}, "not_before": not_before,
                              "retry_reason": "attempt 1 oom: <b>Killed</b>"})
    row = job_row(retry)
    assert row["attempt"] == 2 and row["maxatt"] == 4 and row["retry_of"] == "r1"
    assert row["nb"] == int(not_before * 1000) and row["rreason"] == "attempt 1 oom: <b>Killed</b>"
    # Once it runs, the countdown goes.
    retry.status, retry.start_time = JobStatus.RUNNING, utcnow()
    assert "nb" not in job_row(retry)
    # The failed first attempt says what replaced it; without a policy, attempt 1 says nothing.
    first = JobInfo(job_id="r1", name="n", status=JobStatus.FAILED, metadata={"retried_by": "r2",
                                                                             "retry_policy": {"max_retries": 3}})
    assert job_row(first)["rby"] == "r2" and job_row(first)["maxatt"] == 4 and "attempt" not in job_row(first)
    plain = job_row(JobInfo(job_id="p", name="n"))
    assert not {"maxatt", "nb", "rby", "rreason", "attempt"} & set(plain)
    manual = job_row(JobInfo(job_id="m", name="n", attempt=3, retry_of="p"))
    assert manual["attempt"] == 3 and "maxatt" not in manual


def test_the_detail_of_one_job_has_every_figure_and_the_samples() -> None:
    detail = job_detail(running_job())
    assert detail["id"] == "r1" and len(detail["samples"]) == 60
    assert detail["samples"][0][1] == 100.0 and detail["samples"][-1][2] == 60_000_000
    assert detail["cpu_percent"] == 187.3 and detail["rss_bytes"] == 1_234_567_890
    assert detail["cpu_eff"] == 0.6 and detail["mem_eff"] == pytest.approx(0.928, abs=0.001)
    assert detail["read_bytes"] == 1_000_000 and detail["alloc_cpus"] == 2
    assert len(json.dumps(detail)) < 4000


def test_bytes_are_shown_like_resource_requests() -> None:
    assert [format_bytes(v) for v in (0, 512, 1024, 1536, 1023.6 * 1024, 350 * 1024**2, 1.2 * G, 4 * G)] == \
        ["0B", "512B", "1K", "1.5K", "1M", "350M", "1.2G", "4G"]
    assert quantize(1_234_567) == 1_230_000 and quantize(0) == 0 and quantize(999) == 999 and quantize(None) is None


# -- static fallback --------------------------------------------------------------------------


def test_html_and_text_snapshots_show_usage_attempts_and_disk_escaped() -> None:
    job = running_job()
    job.name = XSS
    job.attempt, job.metadata["retry_policy"] = 2, {"max_retries": 2}
    waiting = JobInfo(job_id="w1", name="w", status=JobStatus.PENDING, submit_time=utcnow(), attempt=2,
                      metadata={"not_before": time.time() + 30, "retry_reason": "<script>alert(3)</script>"})
    disk = disk_wire({"folders": {"logs": 10, "results": 5 * G, "data": G, "<b>x</b>": 1},
                      "free_bytes": 5 * G, "total_bytes": 100 * G, "measured_at": time.time()})
    assert disk is not None and [name for name, _ in disk["folders"]][:2] == ["data", "results"]
    text = html_snapshot([job_row(job), job_row(waiting)], disk=disk)
    assert "<img" not in text and "<script" not in text and "<b>x" not in text
    assert html.escape(XSS) in text and "&lt;script&gt;alert(3)&lt;/script&gt;" in text
    for header in ("Attempt", "CPU / memory now", "Peak memory", "Efficiency"):
        assert f"<th>{header}</th>" in text
    assert "<td>2/3</td>" in text and "187% CPU · 1.1G" in text and "<td>3.7G</td>" in text
    assert "mem 93%" in text and "#b91c1c" in text  # memory efficiency over 90 %: flagged
    assert "automatic retry, not before" in text
    assert "⚠ Disk: data 1G · results 5G" in text and "free 5G of 100G (5%)" in text
    assert disk_low(disk) and "free 5G of 100G (5%)" in disk_text(disk)
    summary = text_summary([job_row(job)], disk=disk)
    assert "disk: data 1G" in summary and "LOW" in summary
    roomy = disk_wire({"folders": {}, "free_bytes": 50 * G, "total_bytes": 100 * G})
    assert not disk_low(roomy) and "⚠" not in html_snapshot([], disk=roomy)
    assert disk_wire(None) is None and disk_wire({"folders": "x"}) is None


# -- the widget: detail, disk, diff sizes -------------------------------------------------------


def test_the_selected_jobs_samples_travel_alone_with_the_tick(monitor: JobMonitor,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monitor.store.insert_many([running_job("r1"), running_job("r2")])
    table = JobTable(monitor, poll=False, disk_interval=None)
    assert table.detail == {}
    assert all("samples" not in r for r in table.window["rows"])
    table.open_window("v1", {"query": {}, "offset": 0, "limit": 50, "req": 1})
    sent = record(table, monkeypatch)
    table.set_state({"selected": "r1"})  # what a click in the view does
    assert table.detail["id"] == "r1" and len(table.detail["samples"]) == 60
    assert len(sent.updates()) == 1 and set(sent.updates()[0]) == {"detail"}  # (plus ipywidgets' echo)
    # A tick where both jobs' usage changed: ONE message with the diff and r1's new detail.
    for job_id in ("r1", "r2"):
        monitor.store.update(job_id, None, source="test", metadata={"usage": usage(time.time(), cpu_percent=50.0)})
    table.refresh_view()
    assert len(sent.updates()) == 2 and len(sent.customs()) == 1
    update, tick = sent.updates()[1], sent.customs()[0]
    assert set(update) == {"detail"} and update["detail"]["id"] == "r1"
    assert {r["id"] for r in tick["views"]["v1"]["rows"]} == {"r1", "r2"}
    assert all(r["cpu"] == 50 for r in tick["views"]["v1"]["rows"])
    assert tick["sel"]["id"] == "r1"
    assert "samples" not in json.dumps(tick)
    # Only r2 changes: its samples are not sent, r1's detail is not re-sent.
    monitor.store.update("r2", None, source="test", metadata={"usage": usage(time.time(), cpu_percent=20.0)})
    table.refresh_view()
    assert len(sent.updates()) == 2 and len(sent.customs()) == 2
    table.selected = ""
    assert table.detail == {}
    table.selected = "nope"
    assert table.detail == {"id": "nope", "missing": True}
    table.close()


def test_disk_usage_is_measured_off_the_tick_and_shown_in_meta_and_html(monitor: JobMonitor) -> None:
    (monitor.paths.root / "data").mkdir()
    (monitor.paths.root / "data" / "reads.fastq").write_bytes(b"x" * 5000)
    (monitor.paths.root / "results").mkdir()
    table = JobTable(monitor, poll=False)  # starts a background measurement
    deadline = time.monotonic() + 10
    while table.disk is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert table.disk is not None
    table.refresh_view()
    disk = table.last_tick["meta"]["disk"]
    assert disk["folders"][0] == ["data", 5000] and ["results", 0] in disk["folders"]
    assert disk["free"] > 0 and disk["total"] >= disk["free"]
    assert "Disk: data 4.9K · results 0B" in table.html_snapshot()
    assert "disk: data 4.9K" in table.text_summary()
    # The next tick within the interval does not measure again.
    started = table._disk_started
    table.refresh_view()
    assert table._disk_started == started
    table.close()


def test_a_failing_disk_measurement_never_breaks_the_table(monitor: JobMonitor,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*_args: Any, **_kwargs: Any) -> dict[str, Any]:
        raise OSError("volume gone")

    monkeypatch.setattr(monitor, "disk_usage", boom)
    table = JobTable(monitor, poll=False, disk_interval=None)
    table.refresh_disk(wait=True)
    assert table.disk is None and table.refresh_view() and "disk" not in table.last_tick["meta"]
    table.close()


def _many_jobs(n: int, running: int) -> list[JobInfo]:
    now = utcnow()
    jobs = []
    for i in range(n):
        status = JobStatus.RUNNING if i < running else JobStatus.COMPLETED
        job = JobInfo(job_id=f"job{i:05d}", name=f"Count sample S{i}", status=status, scheduler="imported",
                      command=f"cellranger count --id=S{i} --fastqs=data/S{i}", job_type="Count",
                      resources=Resources.parse("cpus=8,mem=32G,time=4:00:00"), submit_time=now, start_time=now,
                      end_time=None if status is JobStatus.RUNNING else now,
                      exit_code=None if status is JobStatus.RUNNING else 0,
                      metadata={"usage": usage(time.time(), cpus=8, req_mem=32 * G,
                                               cpu_percent=0.0 if i >= running else 700.0)})
        jobs.append(job)
    return jobs


def test_ten_thousand_rows_one_percent_changing_per_tick_stay_small_on_the_wire(
        monitor: JobMonitor, monkeypatch: pytest.MonkeyPatch) -> None:
    """100 running jobs of 10,000 get a new usage sample on every tick (what the poller does): each
    tick's message carries the changed rows a view shows, far under 5% of the whole table."""
    monitor.store.insert_many(_many_jobs(10_000, running=100))
    table = JobTable(monitor, poll=False, disk_interval=None)
    whole = len(json.dumps([job_row(job) for job in monitor.store.list()]))
    # Two views: one on the running jobs (the oldest rows), one on the newest (none running).
    table.open_window("old", {"query": {"dir": "asc"}, "offset": 0, "limit": 60, "req": 1})
    table.open_window("new", {"query": {}, "offset": 0, "limit": 60, "req": 1})
    sent = record(table, monkeypatch)
    table.selected = "job00007"  # the detail of one running job rides along
    sizes = []
    for tick in range(15):
        for i in range(100):
            monitor.store.update(f"job{i:05d}", None, source="test", metadata={
                "usage": usage(time.time(), cpu_percent=600.0 + tick * 7 + i, rss=(2 + tick) * G + i * 10_000_000,
                               cpus=8, req_mem=32 * G, cpu_seconds=120.0 + tick)})
        before = len(sent.customs())
        table.refresh_view()
        assert len(sent.customs()) == before + 1, "one message per tick"
        message = sent.customs()[-1]
        assert set(message["views"]) == {"old"} and len(message["views"]["old"]["rows"]) == 60
        sizes.append(len(json.dumps(message)))
    worst = max(sizes)
    assert worst <= 0.05 * whole, f"{worst} bytes per tick vs {whole} for the whole table"
    table.close()


def test_a_real_local_job_shows_cpu_and_memory_while_running(monitor: JobMonitor) -> None:
    """A real process: the poller samples it (psutil), the row gets CPU % and RSS, the detail samples."""
    code = "x = bytearray(60_000_000)\nimport time\nend = time.time() + 30\nwhile time.time() < end: pass"
    job_id = monitor.submit_job("burner", f"{sys.executable} -c '{code}'", "cpus=1,mem=1G")
    try:
        table = JobTable(monitor, poll=False, disk_interval=None)
        table.selected = job_id
        deadline = time.monotonic() + 20
        row: dict[str, Any] = {}
        while time.monotonic() < deadline:
            monitor.refresh(force=True)
            table.refresh_view()
            row = next((r for r in table.rows if r["id"] == job_id), {})
            if row.get("rss", 0) > 50_000_000 and row.get("cpu", 0) > 20 and len(table.detail.get("samples", [])) >= 2:
                break
            time.sleep(0.3)
        assert row.get("status") == "running" and row.get("rss", 0) > 50_000_000 and row.get("cpu", 0) > 20, row
        assert row.get("peak", 0) >= row["rss"] and "meff" in row
        assert table.detail["id"] == job_id and len(table.detail["samples"]) >= 2
        table.close()
    finally:
        monitor.cancel_job(job_id, wait=5)
