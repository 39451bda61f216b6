"""Notifications when jobs end: a JSON webhook, email over SMTP, and Apprise URLs (optional).

Which job endings have been announced is one cursor in the store (the last status event looked
at), advanced with compare-and-set: whichever process refreshes first sends each message, once,
and a project opened for the first time does not announce its whole past. The cursor also holds
where the current batch began (the first ending announced while other jobs still ran), so the one
summary sent when the last active job ends covers every ending of the batch, however many
refreshes announced them. Sending happens on a
background thread with retries and backoff; a failing notifier is logged and never affects a job.
The notebook toast is the widget's: it watches the same transitions in its table diffs.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import smtplib
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

from .core.models import JobInfo, JobStatus
from .core.settings import EmailSettings, NotifySettings, redact_url
from .store.sqlite import JobStore

log = logging.getLogger("celline.job")

CURSOR_KEY = "notify.cursor"
DELIVERY_ATTEMPTS = 5
SEND_TIMEOUT = 10.0


@dataclass
class Message:
    kind: str  # "job" or "batch"
    subject: str
    body: str
    payload: dict[str, Any]
    attempts: int = 0
    errors: list[str] = field(default_factory=list)


MAX_SUBJECT_NAME = 120


def one_line(text: str) -> str:
    """Job text folded for a subject line: a newline in a name would make the mail header invalid
    (and every delivery of it fail); control characters become spaces, long names are cut."""
    folded = " ".join("".join(c if c.isprintable() else " " for c in text).split())
    return folded if len(folded) <= MAX_SUBJECT_NAME else folded[:MAX_SUBJECT_NAME - 1] + "…"


def job_message(job: JobInfo, project: str) -> Message:
    outcome = job.status.value + (f" (exit code {job.exit_code})" if job.exit_code not in (None, 0) else "")
    subject = f"[celline-jobs] {one_line(job.name)} {outcome}"
    lines = [f"Job {job.job_id} '{job.name}' ({job.job_type.value}, {job.scheduler}) {outcome}."]
    if job.reason:
        lines.append(f"Reason: {job.reason}")
    if job.runtime_seconds is not None:
        lines.append(f"Runtime: {job.runtime_seconds:.0f} s")
    lines.append(f"Project: {project}")
    return Message("job", subject, "\n".join(lines), {"event": "job_finished", "project": project,
                                                        "job": job.to_dict()})


def batch_message(jobs: list[JobInfo], project: str) -> Message:
    counts: dict[str, int] = {}
    for job in jobs:
        counts[job.status.value] = counts.get(job.status.value, 0) + 1
    summary = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
    lines = [f"All jobs of {project} have ended: {summary}."]
    lines += [f"- {j.job_id} {j.name}: {j.status.value}" + (f" ({j.reason})" if j.reason else "")
              for j in jobs if j.status is not JobStatus.COMPLETED]
    return Message("batch", f"[celline-jobs] all jobs ended: {summary}", "\n".join(lines),
                   {"event": "batch_finished", "project": project, "counts": counts,
                    "jobs": [{"job_id": j.job_id, "name": j.name, "status": j.status.value} for j in jobs]})


def send_webhook(url: str, message: Message) -> None:
    request = urllib.request.Request(url, data=json.dumps(message.payload, default=str).encode(),
                                     headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(request, timeout=SEND_TIMEOUT) as response:
        if response.status >= 300:
            raise OSError(f"webhook answered HTTP {response.status}")


def send_email(settings: EmailSettings, message: Message) -> None:
    email = EmailMessage()
    email["Subject"] = message.subject
    email["From"] = settings.sender
    email["To"] = ", ".join(settings.to)
    email.set_content(message.body)
    with smtplib.SMTP(settings.host, settings.port, timeout=SEND_TIMEOUT) as smtp:
        if settings.starttls:
            smtp.starttls()
        if settings.user:
            smtp.login(settings.user, os.environ.get(settings.password_env or "", ""))
        smtp.send_message(email)


def send_apprise(urls: tuple[str, ...], message: Message) -> None:
    try:
        import apprise
    except ImportError:
        raise OSError("Apprise URLs are set but apprise is not installed: pip install apprise") from None
    notifier = apprise.Apprise()
    for url in urls:
        notifier.add(url)
    if not notifier.notify(title=message.subject, body=message.body):
        raise OSError("apprise could not deliver the message")


class Notifier:
    """Turns job endings into messages and sends them in the background."""

    def __init__(self, settings: NotifySettings, store: JobStore) -> None:
        self.settings = settings
        self.store = store
        self.project = str(store.paths.root)
        self.sent: list[Message] = []
        self.failed: list[Message] = []
        self._queue: queue.Queue[Message] = queue.Queue()
        self._thread: threading.Thread | None = None
        if store.get_meta(CURSOR_KEY) is None:  # announce only what ends from now on
            store.compare_and_set_meta(CURSOR_KEY, None, str(store.last_event_id()))

    def _senders(self) -> list[tuple[str, Callable[[Message], None]]]:
        senders: list[tuple[str, Callable[[Message], None]]] = []
        if self.settings.webhook:
            senders.append(("webhook", lambda m: send_webhook(self.settings.webhook or "", m)))
        if self.settings.email:
            email = self.settings.email
            senders.append(("email", lambda m: send_email(email, m)))
        if self.settings.apprise:
            senders.append(("apprise", lambda m: send_apprise(self.settings.apprise, m)))
        return senders

    def collect(self) -> list[Message]:
        """Messages for the job endings no process has announced yet (claimed with compare-and-set)."""
        claimed = self.store.get_meta(CURSOR_KEY) or "0"
        cursor_text, _, batch_text = claimed.partition(":")  # "<cursor>[:<where the batch began>]"
        cursor = int(cursor_text)
        upto = self.store.last_event_id()
        if upto <= cursor:
            return []
        # A rescan of celline's old runs records their endings too: those are history, not news.
        events = [(i, e) for i, e in self.store.final_events_after(cursor, upto) if e.source != "discover"]
        batch_from = int(batch_text) if batch_text else (cursor if events else None)
        idle = self.store.count([s for s in JobStatus if s.active]) == 0
        advanced = str(upto) if idle or batch_from is None else f"{upto}:{batch_from}"
        if not self.store.compare_and_set_meta(CURSOR_KEY, claimed, advanced) or not events:
            return []
        jobs = {j.job_id: j for j in self.store.get_many(sorted({e.job_id for _, e in events}))}
        messages = [job_message(jobs[e.job_id], self.project) for _, e in events
                    if e.to_status.value in self.settings.on and e.job_id in jobs]
        if self.settings.batch and idle and batch_from is not None:
            ended = {e.job_id for _, e in self.store.final_events_after(batch_from, upto) if e.source != "discover"}
            messages.append(batch_message(self.store.get_many(sorted(ended)), self.project))
        return messages

    def notify(self) -> int:
        """Collect and queue messages for sending; returns how many were queued."""
        messages = self.collect()
        for message in messages:
            self._queue.put(message)
        if messages and (self._thread is None or not self._thread.is_alive()):
            self._thread = threading.Thread(target=self._deliver_all, name="celline-jobs-notify", daemon=True)
            self._thread.start()
        return len(messages)

    def flush(self, timeout: float = 30.0) -> None:
        """Wait until every queued message was sent or given up (tests, CLI exit)."""
        deadline = time.monotonic() + timeout
        while self._thread is not None and self._thread.is_alive() and time.monotonic() < deadline:
            self._thread.join(0.05)

    def _deliver_all(self) -> None:
        while True:
            try:
                message = self._queue.get(timeout=0.5)
            except queue.Empty:
                return
            self._deliver(message)

    def _redacted(self, text: str) -> str:
        """An error text without the secrets a transport may echo (its URL holds the token)."""
        for secret in (self.settings.webhook, *self.settings.apprise):
            if secret:
                text = text.replace(secret, redact_url(secret))
        return text[:500]

    def _deliver(self, message: Message) -> None:
        pending = self._senders()
        delay = 1.0
        while pending and message.attempts < DELIVERY_ATTEMPTS:
            message.attempts += 1
            still_failing = []
            for name, send in pending:
                try:
                    send(message)
                except Exception as exc:  # any transport error: log, retry later, never raise
                    error = self._redacted(str(exc))
                    message.errors.append(f"{name}: {error}")
                    log.warning("notification via %s failed (attempt %d): %s", name, message.attempts, error)
                    still_failing.append((name, send))
            pending = still_failing
            if pending and message.attempts < DELIVERY_ATTEMPTS:
                time.sleep(delay)
                delay *= 2
        (self.failed if pending else self.sent).append(message)
