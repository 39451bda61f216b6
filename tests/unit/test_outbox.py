"""The notifications outbox on a real SQLite store: what gets a row, claims and leases, cleanup."""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path

import pytest

from celline_jobs_nb import JobMonitor
from celline_jobs_nb.core.models import JobInfo, JobStatus
from celline_jobs_nb.core.settings import NotifySettings
from celline_jobs_nb.notify import Notifier
from celline_jobs_nb.store import JobStore, outbox

UNUSED = "http://127.0.0.1:9/unused"


def _end(store: JobStore, job_id: str, status: JobStatus = JobStatus.FAILED, source: str = "poll") -> None:
    store.insert(JobInfo(job_id=job_id, name=job_id, status=JobStatus.RUNNING))
    store.update(job_id, status, source=source, exit_code=1)


def _notifying(store: JobStore, **settings: object) -> Notifier:
    return Notifier(NotifySettings(webhook=UNUSED, **settings), store)  # type: ignore[arg-type]


def test_without_a_notifier_no_row_is_written(project: Path):
    monitor = JobMonitor(project)
    job_id = monitor.submit_job("fails", "exit 1")
    monitor.wait([job_id], timeout=30)
    assert monitor.get_job(job_id).status is JobStatus.FAILED
    assert outbox.rows(monitor.store) == []
    assert monitor.store.get_meta(outbox.OUTBOX_META_KEY) is None


def test_removing_the_notifier_drops_the_outbox_and_stops_it(project: Path):
    store = JobStore(project)
    _notifying(store)
    _end(store, "a")
    assert [r.job_id for r in outbox.rows(store) if r.kind == "job"] == ["a"]
    JobMonitor(project)  # no [jobs.notify] any more
    assert outbox.rows(store) == []
    _end(store, "b")
    assert outbox.rows(store) == []


def test_only_the_configured_statuses_and_not_discovered_endings(project: Path):
    store = JobStore(project)
    _notifying(store, on=("failed",), batch=False)
    _end(store, "ok", JobStatus.COMPLETED)
    _end(store, "old", JobStatus.FAILED, source="discover")  # celline's old run: history, not news
    _end(store, "bad", JobStatus.FAILED)
    assert [(r.kind, r.job_id, r.status) for r in outbox.rows(store)] == [("job", "bad", "failed")]
    store.insert_many([JobInfo(job_id="found", name="found", status=JobStatus.FAILED)], source="discover")
    assert len(outbox.rows(store)) == 1


def test_a_lease_of_another_host_holds_until_it_expires(project: Path):
    store = JobStore(project)
    _notifying(store, batch=False)
    _end(store, "a")
    me = outbox.process_name()
    assert outbox.claim(store, "other-host.example:1", 60.0) is not None
    assert outbox.claim(store, me, 60.0) is None  # theirs while the lease runs
    row = outbox.rows(store)[0]
    outbox.release(store, row.id, "other-host.example:1")
    assert outbox.claim(store, "other-host.example:1", -1.0) is not None  # a lease already over
    claimed = outbox.claim(store, me, 60.0)
    assert claimed is not None and claimed.delivery_id == row.delivery_id
    assert outbox.rows(store)[0].claimed_by == me


def test_a_claim_of_a_process_of_this_host_that_died_is_taken_at_once(project: Path):
    store = JobStore(project)
    _notifying(store, batch=False)
    _end(store, "a")
    gone = subprocess.Popen(["true"])
    gone.wait()
    assert outbox.claim(store, f"{socket.gethostname()}:{gone.pid}", 60.0) is not None
    assert outbox.claim(store, outbox.process_name(), 60.0) is not None


def test_given_up_messages_keep_their_error_and_old_rows_are_deleted(project: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr("celline_jobs_nb.notify.DELIVERY_ATTEMPTS", 1)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    store = JobStore(project)
    notifier = Notifier(NotifySettings(webhook=f"http://127.0.0.1:{port}/T000/SECRET", batch=False), store)
    _end(store, "a")
    assert notifier.deliver() == 1
    failed = outbox.rows(store, outbox.FAILED)
    assert len(failed) == 1 and failed[0].attempts == 1
    assert "Connection refused" in (failed[0].error or "") and "SECRET" not in (failed[0].error or "")
    _end(store, "b")  # still pending: never deleted by the cleanup
    assert outbox.prune(store, keep_seconds=3600) == 0
    assert outbox.prune(store, keep_seconds=-1) == 1
    assert [r.job_id for r in outbox.rows(store)] == ["b"]


def test_endings_left_by_the_cursor_of_earlier_versions_are_kept(project: Path):
    store = JobStore(project)
    _end(store, "announced")
    store.set_meta(outbox.LEGACY_CURSOR_KEY, str(store.last_event_id()))
    _end(store, "unannounced")
    _notifying(store, batch=False)
    assert [r.job_id for r in outbox.rows(store)] == ["unannounced"]
    assert store.get_meta(outbox.LEGACY_CURSOR_KEY) is None
