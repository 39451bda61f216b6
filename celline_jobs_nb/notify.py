"""Notifications when jobs end: a JSON webhook, email over SMTP, and Apprise URLs (optional).

Every message is a row of the store's outbox (``store.outbox``), written in the transaction that
recorded the ending it announces (or, for the summary sent when the last active job ends, the
ending that made the project idle). Any process with a notifier delivers the outbox: a notebook's
poller in the background; a short command (``celline-jobs list``, ``celline run custom_job``)
waits at most EXIT_WAIT_SECONDS when it exits and leaves the rest to the next monitor. Rows are
claimed with a lease, so two deliverers never send one at once, and a deliverer killed mid-send
has its rows sent by the next one: delivery is at least once, and each message carries its
delivery id (payload field ``delivery_id``, header ``X-Celline-Delivery``) for the receiver to
drop a repeat. A failing channel is retried with backoff and given up after DELIVERY_ATTEMPTS,
its (redacted) error kept in the row; it never affects a job. The notebook toast is the widget's:
it watches the same transitions in its table diffs.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .core.errors import CellineJobsError
from .core.models import JobInfo, JobStatus
from .core.settings import EmailSettings, NotifySettings, redact_url
from .store import outbox
from .store.sqlite import JobStore

log = logging.getLogger("celline.job")

DELIVERY_ATTEMPTS = 10  # then the message is given up, its last error kept in the outbox
RETRY_BASE_SECONDS = 1.0  # the wait after the first failed attempt; it doubles after each one
RETRY_MAX_SECONDS = 600.0
SEND_TIMEOUT = 10.0
#: How long a claimed message is the claimer's alone: longer than sending it on every channel.
LEASE_SECONDS = 6 * SEND_TIMEOUT
#: A process that exits (a CLI command) waits at most this long for its messages to go out.
EXIT_WAIT_SECONDS = 3.0
DELIVERY_HEADER = "X-Celline-Delivery"
PRUNE_EVERY_SECONDS = 3600.0


@dataclass
class Message:
    kind: str  # "job" or "batch"
    subject: str
    body: str
    payload: dict[str, Any]
    delivery_id: str = ""  # the same on every attempt, from every process: receivers dedupe by it
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
    import urllib.request  # here, not at the top: a command with nothing to send never loads it

    headers = {"Content-Type": "application/json"}
    if message.delivery_id:
        headers[DELIVERY_HEADER] = message.delivery_id
    request = urllib.request.Request(url, data=json.dumps(message.payload, default=str).encode(),
                                     headers=headers, method="POST")
    with urllib.request.urlopen(request, timeout=SEND_TIMEOUT) as response:
        if response.status >= 300:
            raise OSError(f"webhook answered HTTP {response.status}")


def send_email(settings: EmailSettings, message: Message) -> None:
    import smtplib
    from email.message import EmailMessage

    email = EmailMessage()
    email["Subject"] = message.subject
    email["From"] = settings.sender
    email["To"] = ", ".join(settings.to)
    if message.delivery_id:  # the same Message-ID on a repeat: mail systems drop duplicates by it
        email[DELIVERY_HEADER] = message.delivery_id
        email["Message-ID"] = f"<{message.delivery_id}@celline-jobs>"
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


_waiting: weakref.WeakSet[Notifier] = weakref.WeakSet()
_waiting_lock = threading.Lock()


def _wait_at_exit() -> None:
    """At interpreter exit: give this process's undelivered messages EXIT_WAIT_SECONDS in all."""
    deadline = time.monotonic() + EXIT_WAIT_SECONDS
    for notifier in list(_waiting):
        try:
            notifier.flush(max(0.0, deadline - time.monotonic()))
        except Exception as exc:  # a store gone with its temporary project: the next monitor sends
            log.debug("notifications not delivered at exit: %s", exc)


atexit.register(_wait_at_exit)


class Notifier:
    """Delivers the store's outbox: job endings as messages, on every configured channel."""

    def __init__(self, settings: NotifySettings, store: JobStore) -> None:
        self.settings = settings
        self.store = store
        self.project = str(store.paths.root)
        self.sent: deque[Message] = deque(maxlen=100)  # this process's latest, for a look in a notebook
        self.failed: deque[Message] = deque(maxlen=100)
        self._thread: threading.Thread | None = None
        self._wake = threading.Event()  # ends the background deliverer's wait for a retry (flush)
        self._pruned = 0.0
        # From now on the store keeps every ending for us (announce only what ends from now on).
        outbox.configure(store, settings.on, settings.batch)

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

    def notify(self) -> bool:
        """Start delivering in the background when a message is due (a cheap read otherwise);
        this process then waits at most EXIT_WAIT_SECONDS for it when it exits. True if started."""
        try:
            if not outbox.has_due(self.store):
                return False
        except CellineJobsError as exc:
            log.debug("notifications not looked at: %s", exc)
            return False
        with _waiting_lock:
            _waiting.add(self)
            if self._thread is not None and self._thread.is_alive():
                return False
            self._wake.clear()
            self._thread = threading.Thread(target=self._run, name="celline-jobs-notify", daemon=True)
            self._thread.start()
        return True

    def flush(self, timeout: float = 30.0) -> None:
        """Deliver what is due, and what falls due within ``timeout`` (retries), then return; the
        rest is left to the next monitor. Messages another live process is sending are its own."""
        deadline = time.monotonic() + timeout
        thread = self._thread
        if thread is not None:  # it finishes what it is sending, then leaves the rest to this loop
            self._wake.set()
            thread.join(max(0.0, deadline - time.monotonic()))
        while time.monotonic() < deadline:
            self.deliver(deadline)
            wait = outbox.next_due_in(self.store, outbox.process_name())
            if wait is None or time.monotonic() + wait >= deadline:
                return
            time.sleep(max(wait, 0.05))

    def _run(self) -> None:
        try:
            while True:
                self.deliver()
                wait = outbox.next_due_in(self.store, outbox.process_name())
                if wait is None or self._wake.wait(min(wait, 30.0)):
                    return
        except Exception as exc:  # the store went away or stays locked: the next refresh retries
            log.debug("notification delivery stopped: %s", exc)

    def deliver(self, deadline: float | None = None) -> int:
        """Send the messages due now, one claim at a time, until none is left (or ``deadline``,
        a ``time.monotonic()`` value, passes). Returns how many this call sent or gave up."""
        owner = outbox.process_name()
        done = 0
        while deadline is None or time.monotonic() < deadline:
            row = outbox.claim(self.store, owner, LEASE_SECONDS)
            if row is None:
                break
            self._send_row(row, owner)
            done += 1
        if done and time.monotonic() - self._pruned > PRUNE_EVERY_SECONDS:
            self._pruned = time.monotonic()
            outbox.prune(self.store)
        return done

    def message_for(self, row: outbox.OutboxRow) -> Message | None:
        """The message of an outbox row, from the jobs as the store has them now."""
        if row.kind == "batch":
            found = {j.job_id: j for j in self.store.get_many(list(row.job_ids))}
            message = batch_message([found[j] for j in row.job_ids if j in found], self.project)
        else:
            jobs = self.store.get_many([row.job_id]) if row.job_id else []
            if not jobs:
                return None
            message = job_message(jobs[0], self.project)
        message.delivery_id = row.delivery_id
        message.payload["delivery_id"] = row.delivery_id
        message.attempts = row.attempts
        return message

    def _redacted(self, text: str) -> str:
        """An error text without the secrets a transport may echo (its URL holds the token)."""
        for secret in (self.settings.webhook, *self.settings.apprise):
            if secret:
                text = text.replace(secret, redact_url(secret))
        return text[:500]

    def _send_row(self, row: outbox.OutboxRow, owner: str) -> None:
        message = self.message_for(row)
        if message is None:
            outbox.finish(self.store, row.id, owner, f"job {row.job_id} is no longer in the store", True, 0)
            return
        message.attempts += 1
        for name, send in self._senders():
            if name in row.delivered:
                continue  # an earlier attempt got it there
            try:
                send(message)
            except Exception as exc:  # any transport error: log, retry later, never raise
                error = self._redacted(str(exc))
                message.errors.append(f"{name}: {error}")
                log.warning("notification via %s failed (attempt %d): %s", name, message.attempts, error)
                continue
            outbox.mark_channel(self.store, row.id, owner, name)
        if not message.errors:
            outbox.finish(self.store, row.id, owner, None, False, 0)
            self.sent.append(message)
            return
        give_up = message.attempts >= DELIVERY_ATTEMPTS
        retry_in = min(RETRY_MAX_SECONDS, RETRY_BASE_SECONDS * 2 ** (message.attempts - 1))
        outbox.finish(self.store, row.id, owner, "; ".join(message.errors), give_up, retry_in)
        if give_up:
            self.failed.append(message)
