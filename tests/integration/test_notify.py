"""Notifications against real servers on 127.0.0.1: an HTTP webhook receiver and an SMTP server."""

from __future__ import annotations

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest

from celline_jobs_nb import JobMonitor, JobStatus
from celline_jobs_nb.core.errors import SettingsError


class _Receiver(BaseHTTPRequestHandler):
    received: ClassVar[list[dict]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append(json.loads(body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def webhook():
    _Receiver.received = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook", _Receiver.received
    server.shutdown()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def smtp_server():
    from aiosmtpd.controller import Controller
    from aiosmtpd.handlers import Message

    messages: list = []

    class Collect(Message):
        def handle_message(self, message) -> None:
            messages.append(message)

    controller = Controller(Collect(), hostname="127.0.0.1", port=_free_port())
    controller.start()
    yield controller.port, messages
    controller.stop()


def _settings(project: Path, text: str) -> None:
    (project / ".celline").mkdir(exist_ok=True)
    (project / ".celline" / "jobs.toml").write_text(text)


def test_webhook_and_email_when_jobs_end(project: Path, webhook, smtp_server):
    url, posts = webhook
    port, mails = smtp_server
    _settings(project, f"""
[jobs.notify]
on = ["failed", "completed"]
webhook = "{url}"
email = {{ host = "127.0.0.1", port = {port}, from = "jobs@lab.example", to = ["me@lab.example"] }}
""")
    monitor = JobMonitor(project)
    ok = monitor.submit_job("count", "exit 0", job_type="Count")
    bad = monitor.submit_job("<b>predict</b>", "exit 3", job_type="Prediction")
    monitor.wait([ok, bad], timeout=30)
    monitor.refresh(force=True)
    monitor.notifier.flush()
    per_job = {p["job"]["job_id"]: p for p in posts if p["event"] == "job_finished"}
    assert set(per_job) == {ok, bad}
    assert per_job[bad]["job"]["status"] == "failed" and per_job[bad]["job"]["exit_code"] == 3
    batch = [p for p in posts if p["event"] == "batch_finished"]
    assert len(batch) == 1 and batch[0]["counts"] == {"completed": 1, "failed": 1}
    subjects = sorted(m["Subject"] for m in mails)
    assert "[celline-jobs] <b>predict</b> failed (exit code 3)" in subjects
    assert any(s.startswith("[celline-jobs] all jobs ended") for s in subjects)
    # Another process refreshing the same project announces nothing twice.
    other = JobMonitor(project)
    other.refresh(force=True)
    other.notifier.flush()
    assert len(posts) == 3


def test_a_failing_notifier_is_retried_and_never_touches_the_job(project: Path, monkeypatch):
    monkeypatch.setattr("celline_jobs_nb.notify.DELIVERY_ATTEMPTS", 2)
    _settings(project, f'[jobs.notify]\nwebhook = "http://127.0.0.1:{_free_port()}/nobody-listens"\n')
    monitor = JobMonitor(project)
    job_id = monitor.submit_job("x", "exit 1")
    monitor.wait([job_id], timeout=30)
    monitor.refresh(force=True)
    monitor.notifier.flush()
    assert [m.attempts for m in monitor.notifier.failed] == [2, 2]  # the job message and the batch summary
    assert "Connection refused" in monitor.notifier.failed[0].errors[0]
    assert monitor.get_job(job_id).status is JobStatus.FAILED and monitor.get_job(job_id).exit_code == 1


def test_first_open_does_not_announce_the_past(project: Path, webhook):
    url, posts = webhook
    monitor = JobMonitor(project)
    monitor.wait([monitor.submit_job("old", "exit 1")], timeout=30)
    _settings(project, f'[jobs.notify]\nwebhook = "{url}"\n')
    later = JobMonitor(project)
    later.refresh(force=True)
    later.notifier.flush()
    assert posts == []


@pytest.mark.parametrize(("text", "message"), [
    ('[jobs.notify]\nwebhook = "ftp://x"\n', "must be an http(s) URL"),
    ('[jobs.notify]\non = ["exploded"]\n', "on must list statuses"),
    ('[jobs.notify]\nemail = { host = "h" }\n', "needs host"),
    ('[jobs.notify]\nsms = "123"\n', "unknown [jobs.notify] setting 'sms'"),
    ('[jobs]\ncolour = "red"\n', "unknown [jobs] setting 'colour'"),
    ('[jobs\n', "is not valid TOML"),
])
def test_bad_settings_are_named(project: Path, text: str, message: str):
    _settings(project, text)
    with pytest.raises(SettingsError) as error:
        JobMonitor(project)
    assert message in str(error.value)


def test_the_batch_summary_counts_every_ending_of_the_batch(project: Path):
    """Endings recorded at different times (one job fails while another still runs) still make
    one summary of the whole batch when the last job ends."""
    from celline_jobs_nb.core.models import JobInfo
    from celline_jobs_nb.core.settings import NotifySettings
    from celline_jobs_nb.notify import Notifier
    from celline_jobs_nb.store import JobStore, outbox

    store = JobStore(project)
    notifier = Notifier(NotifySettings(on=("failed", "completed"), webhook="http://127.0.0.1:9/unused"), store)
    first, second = (JobInfo(job_id=f"job{i}", name=f"job {i}", status=JobStatus.RUNNING) for i in (1, 2))
    store.insert_many([first, second])
    store.update("job1", JobStatus.FAILED, exit_code=3, reason="exit code 3")
    assert [r.kind for r in outbox.rows(store)] == ["job"]  # job2 still runs: no summary yet
    store.update("job2", JobStatus.COMPLETED, exit_code=0)
    rows = outbox.rows(store)
    assert [r.kind for r in rows] == ["job", "job", "batch"]
    summary = notifier.message_for(rows[2])
    assert summary is not None and summary.payload["counts"] == {"failed": 1, "completed": 1}
    store.update("job2", JobStatus.COMPLETED, exit_code=0)  # nothing new: nothing more to say
    assert len(outbox.rows(store)) == 3
    third = JobInfo(job_id="job3", name="job 3", status=JobStatus.RUNNING)  # a new batch starts afresh
    store.insert(third)
    store.update("job3", JobStatus.COMPLETED, exit_code=0)
    last = notifier.message_for(outbox.rows(store)[-1])
    assert last is not None and last.payload["counts"] == {"completed": 1}
