"""Durable notifications, against a real HTTP receiver on 127.0.0.1 and real `celline-jobs` processes.

Each ending is kept in the store's outbox with the ending itself; short commands deliver before
they exit, a killed deliverer's messages are sent by the next process, and two deliverers at once
send each message once. Receivers dedupe by the delivery id (at-least-once delivery).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from celline_jobs_nb import JobMonitor
from celline_jobs_nb.store import JobStore


class Receiver:
    """What the webhook got: (delivery id header, payload) per request, in arrival order."""

    def __init__(self) -> None:
        self.requests: list[tuple[str | None, dict[str, Any]]] = []
        self.lock = threading.Lock()
        self.hold = False  # the next request is read, then left unanswered until release
        self.holding = threading.Event()
        self.released = threading.Event()
        self.delay = 0.0  # seconds before each answer
        self.fail_first = 0  # answer this many requests with HTTP 500

    def ids(self) -> list[str | None]:
        with self.lock:
            return [delivery for delivery, _ in self.requests]

    def failed_jobs(self) -> set[str]:
        with self.lock:
            return {p["job"]["job_id"] for _, p in self.requests if p.get("event") == "job_finished"}


def _handler(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            payload = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            delivery = self.headers.get("X-Celline-Delivery")
            with receiver.lock:
                receiver.requests.append((delivery, payload))
                hold, receiver.hold = receiver.hold, False
                fail = receiver.fail_first > 0
                receiver.fail_first -= 1 if fail else 0
            if hold:
                receiver.holding.set()
                receiver.released.wait(60)
            time.sleep(receiver.delay)
            try:
                self.send_response(500 if fail else 204)
                self.end_headers()
            except OSError:
                pass  # the sender was killed meanwhile

        def log_message(self, *args: object) -> None:
            pass

    return Handler


@pytest.fixture
def webhook():
    receiver = Receiver()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(receiver))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook", receiver
    receiver.released.set()
    server.shutdown()


def _settings(project: Path, url: str, extra: str = "") -> None:
    (project / ".celline").mkdir(exist_ok=True)
    (project / ".celline" / "jobs.toml").write_text(f'[jobs.notify]\non = ["failed"]\nwebhook = "{url}"\n{extra}')


def _command(project: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "celline_jobs_nb", "--project", str(project), *args]


def cli(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(_command(project, *args), capture_output=True, text=True, timeout=120)


def _ended(project: Path, job_ids: list[str], timeout: float = 60) -> None:
    """Wait until the jobs' runners have recorded their ends (read from the store; no monitor here
    refreshes, so nothing in this process delivers a notification)."""
    store = JobStore(project)
    deadline = time.monotonic() + timeout
    while not all(j.status.final for j in store.get_many(job_ids)):
        assert time.monotonic() < deadline, "jobs did not end"
        time.sleep(0.05)
    store.close()


def _submitter(project: Path) -> JobMonitor:
    """A monitor that submits (and never refreshes: it never sees an ending itself)."""
    return JobMonitor(project, max_parallel=8)


def test_failures_seen_only_by_short_commands_reach_the_webhook(project: Path, webhook):
    url, receiver = webhook
    _settings(project, url)
    submitter = _submitter(project)
    failed = []
    for n in range(5):
        job_id = submitter.submit_job(f"fails {n}", f"exit {n + 1}")
        _ended(project, [job_id])
        result = cli(project, "list")  # the only process that ever sees this ending
        assert result.returncode == 0, result.stderr
        failed.append(job_id)
        assert receiver.failed_jobs() == set(failed), f"after the command exited, failure {n + 1} is not announced"
    ids = receiver.ids()
    assert None not in ids, "every message carries its delivery id"
    assert len(ids) == 10 and set(Counter(ids).values()) == {1}  # 5 failures and 5 summaries, each once
    payload_ids = {p["delivery_id"] for _, p in receiver.requests}
    assert payload_ids == set(ids)


def test_a_deliverer_killed_mid_send_has_its_messages_sent_by_the_next_process(project: Path, webhook):
    url, receiver = webhook
    _settings(project, url)
    submitter = _submitter(project)
    jobs = [submitter.submit_job(f"fails {n}", "exit 1") for n in range(3)]
    _ended(project, jobs)
    receiver.hold = True
    first = subprocess.Popen(_command(project, "list"), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert receiver.holding.wait(60), "the first command sent nothing"
        os.kill(first.pid, signal.SIGKILL)  # while the webhook holds its request
    finally:
        first.wait(30)
    assert first.returncode == -signal.SIGKILL
    receiver.released.set()
    held = receiver.ids()[0]
    result = cli(project, "list")
    assert result.returncode == 0, result.stderr
    assert receiver.failed_jobs() == set(jobs)
    counts = Counter(receiver.ids())
    assert None not in counts and len(counts) == 4  # 3 failures and the summary
    assert counts[held] == 2, "the message in flight when its sender died is sent again, with its delivery id"
    assert all(n == 1 for delivery, n in counts.items() if delivery != held)


def test_two_processes_delivering_at_once_send_each_message_once(project: Path, webhook):
    url, receiver = webhook
    _settings(project, url)
    receiver.delay = 0.2  # each answer takes a while: both deliverers are busy at the same time
    submitter = _submitter(project)
    jobs = [submitter.submit_job(f"fails {n}", "exit 1") for n in range(8)]
    _ended(project, jobs)
    both = [subprocess.Popen(_command(project, "list"), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            for _ in range(2)]
    for process in both:
        _, err = process.communicate(timeout=120)
        assert process.returncode == 0, err
    cli(project, "list")  # whatever the two left in their few seconds
    counts = Counter(receiver.ids())
    assert None not in counts and len(counts) == 9  # 8 failures and the summary
    assert set(counts.values()) == {1}, "a message was sent twice"
    assert receiver.failed_jobs() == set(jobs)


def test_a_channel_that_delivered_is_not_sent_again_when_another_is_retried(project: Path, webhook):
    from aiosmtpd.controller import Controller
    from aiosmtpd.handlers import Message as Collect

    mails: list[Any] = []

    class Handler(Collect):
        def handle_message(self, message: Any) -> None:
            mails.append(message)

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(Handler(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        url, receiver = webhook
        receiver.fail_first = 1  # the webhook's first answer is HTTP 500
        _settings(project, url, f'email = {{ host = "127.0.0.1", port = {port}, from = "j@lab.example", '
                                '"to" = ["me@lab.example"] }\nbatch = false\n')
        monitor = JobMonitor(project)
        job_id = monitor.submit_job("fails", "exit 1")
        _ended(project, [job_id])
        monitor.refresh()
        assert monitor.notifier is not None
        monitor.notifier.flush(30)
    finally:
        controller.stop()
    ids = receiver.ids()
    assert len(ids) == 2 and ids[0] is not None and ids[0] == ids[1]  # a 500, then the retry
    assert len(mails) == 1 and mails[0]["X-Celline-Delivery"] == ids[0]


def test_a_failure_seen_only_by_celline_run_custom_job_reaches_the_webhook(project: Path, webhook):
    import importlib.util

    from support import require_service

    require_service(importlib.util.find_spec("celline") is not None,
                    "celline is not installed: pip install --no-deps celline==1.1.0 toml polars rich")
    from celline.interfaces import Project

    from celline_jobs_nb.celline import install_celline_function

    Project(str(project), "pbmc")
    install_celline_function(project)
    url, receiver = webhook
    _settings(project, url)
    job_id = _submitter(project).submit_job("fails", "exit 4")
    _ended(project, [job_id])
    ran = subprocess.run([sys.executable, "-m", "celline", "run", "custom_job"], cwd=project, capture_output=True,
                         text=True, timeout=120, env={**os.environ, "COLUMNS": "200"})
    assert ran.returncode == 0, ran.stderr
    assert receiver.failed_jobs() == {job_id}, ran.stdout + ran.stderr
