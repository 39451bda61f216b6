"""The notifications outbox: job endings to announce, kept in the store until they are delivered.

A row is written in the very transaction that records a job's final status (``record_ending``,
called by the store for every final event), so an ending is never "seen" without its message
being kept: whichever process records it (a notebook, a CLI command, a local job's runner), any
process that delivers notifications sends it later, even if the one that saw it exited at once.

Only a project with a notifier configured gets rows: a monitor with ``[jobs.notify]`` writes its
``on`` list and ``batch`` flag to the meta key ``OUTBOX_META_KEY`` (``configure``); without that key
``record_ending`` writes nothing (one primary-key read per ending). Endings recorded by discovery
(source "discover", celline's old runs) are history, not news, and endings before the notifier was
configured are never announced.

Delivery (``notify.Notifier``) claims one row at a time with a lease: ``claimed_by`` names the
process (host and pid), ``claimed_until`` ends the lease. A row whose lease ran out, or whose
claimer is a process of this host that no longer exists (killed mid-send), is claimed again by the
next deliverer: delivery is at least once, and every message carries the row's ``delivery_id`` so a
receiver can drop a repeat. Each channel (webhook, email, apprise) is marked delivered on its own;
a failing one is retried with backoff and given up after a number of attempts, its error kept.
Delivered and given-up rows are deleted after ``KEEP_SECONDS``.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..core.models import ACTIVE_STATUSES, FINAL_STATUSES

if TYPE_CHECKING:
    from .sqlite import JobStore

OUTBOX_META_KEY = "notify.outbox"  # {"on": [...], "batch": bool}; absent: no notifier, no rows
BATCH_META_KEY = "notify.batch_after"  # the last event a batch summary covered
LEGACY_CURSOR_KEY = "notify.cursor"  # the announced-events cursor of versions before the outbox
FINAL = tuple(sorted(s.value for s in FINAL_STATUSES))
ACTIVE = tuple(sorted(s.value for s in ACTIVE_STATUSES))
KEEP_SECONDS = 7 * 24 * 3600.0
PENDING, SENT, FAILED = "pending", "sent", "failed"


@dataclass(frozen=True)
class OutboxRow:
    id: int
    delivery_id: str
    kind: str  # "job" or "batch"
    job_id: str | None
    status: str | None
    job_ids: tuple[str, ...]  # a batch summary: the jobs that ended in the batch
    state: str
    delivered: tuple[str, ...]  # channels that have it
    attempts: int
    next_try: float
    claimed_by: str | None
    claimed_until: float | None
    error: str | None


_ROW = ("SELECT id, delivery_id, kind, job_id, status, detail, state, delivered, attempts, next_try, "
        "claimed_by, claimed_until, error FROM outbox")


def _row(r: tuple[Any, ...]) -> OutboxRow:
    detail, delivered = _json(r[5], {}), _json(r[7], [])
    jobs = detail.get("jobs") if isinstance(detail, dict) else None
    return OutboxRow(r[0], r[1], r[2], r[3], r[4], tuple(str(j) for j in jobs) if isinstance(jobs, list) else (),
                     r[6], tuple(str(c) for c in delivered) if isinstance(delivered, list) else (),
                     r[8], r[9], r[10], r[11], r[12])


def _json(text: str | None, default: Any) -> Any:
    try:
        return json.loads(text or "null") if text else default
    except ValueError:
        return default


def _config(conn: sqlite3.Connection) -> dict[str, Any] | None:
    row = conn.execute("SELECT value FROM meta WHERE key = ?", (OUTBOX_META_KEY,)).fetchone()
    if row is None:
        return None
    config = _json(row[0], None)
    return config if isinstance(config, dict) else None


def _insert(conn: sqlite3.Connection, kind: str, job_id: str | None, status: str | None, event_id: int,
            detail: dict[str, Any]) -> None:
    conn.execute(
        "INSERT INTO outbox (delivery_id, kind, job_id, status, event_id, detail, created_at) "
        "VALUES (lower(hex(randomblob(16))), ?, ?, ?, ?, ?, ?)",
        (kind, job_id, status, event_id, json.dumps(detail), time.time()))


def record_ending(conn: sqlite3.Connection, event_id: int, job_id: str, status: str, source: str) -> None:
    """Inside the transaction that recorded event ``event_id`` (job ``job_id`` ended ``status``):
    keep its message, and the batch summary when it was the last active job."""
    if source == "discover":
        return
    config = _config(conn)
    if config is None:
        return
    if status in (config.get("on") or ()):
        _insert(conn, "job", job_id, status, event_id, {})
    if config.get("batch", True):
        _batch_if_idle(conn, event_id)


def _batch_if_idle(conn: sqlite3.Connection, event_id: int) -> None:
    """The summary of every ending since the last summary, when no job is active any more."""
    marks = ", ".join("?" for _ in ACTIVE)
    if conn.execute(f"SELECT 1 FROM jobs WHERE status IN ({marks}) LIMIT 1", ACTIVE).fetchone():
        return
    after = conn.execute("SELECT value FROM meta WHERE key = ?", (BATCH_META_KEY,)).fetchone()
    start = int(after[0]) if after and str(after[0]).isdigit() else event_id - 1
    finals = ", ".join("?" for _ in FINAL)
    ended = [r[0] for r in conn.execute(
        f"SELECT job_id FROM events WHERE id > ? AND id <= ? AND to_status IN ({finals}) AND source != 'discover' "
        "GROUP BY job_id ORDER BY MIN(id)", (start, event_id, *FINAL))]
    if ended:
        _insert(conn, "batch", None, None, event_id, {"jobs": ended})
    conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (BATCH_META_KEY, str(event_id)))


def configure(store: JobStore, on: tuple[str, ...], batch: bool) -> None:
    """Make the store keep endings for a notifier with these settings, from now on. A project that
    used the cursor of earlier versions keeps its unannounced endings: they go to the outbox."""
    wanted = json.dumps({"on": sorted(on), "batch": bool(batch)}, sort_keys=True)
    if store.get_meta(OUTBOX_META_KEY) == wanted:
        return

    def action(conn: sqlite3.Connection) -> None:
        had = _config(conn) is not None
        conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (OUTBOX_META_KEY, wanted))
        if had:
            return
        last = int(conn.execute("SELECT COALESCE(MAX(id), 0) FROM events").fetchone()[0])
        legacy = conn.execute("SELECT value FROM meta WHERE key = ?", (LEGACY_CURSOR_KEY,)).fetchone()
        cursor_text, _, batch_text = (legacy[0] if legacy else "").partition(":")
        start = int(cursor_text) if cursor_text.isdigit() else last
        conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
                     (BATCH_META_KEY, batch_text if batch_text.isdigit() else str(start)))
        finals = ", ".join("?" for _ in FINAL)
        backlog = conn.execute(f"SELECT id, job_id, to_status FROM events WHERE id > ? AND to_status IN ({finals}) "
                               "AND source != 'discover' ORDER BY id", (start, *FINAL)).fetchall()
        for event_id, job_id, status in backlog:
            if status in on:
                _insert(conn, "job", job_id, status, event_id, {})
        if backlog and batch:
            _batch_if_idle(conn, backlog[-1][0])
        conn.execute("DELETE FROM meta WHERE key = ?", (LEGACY_CURSOR_KEY,))

    store._retrying(action)


def unconfigure(store: JobStore) -> None:
    """No notifier any more: stop keeping endings and drop what was never sent (a monitor without
    ``[jobs.notify]`` calls this; one read when there is nothing to undo)."""
    if store.get_meta(OUTBOX_META_KEY) is None:
        return

    def action(conn: sqlite3.Connection) -> None:
        conn.execute("DELETE FROM meta WHERE key IN (?, ?)", (OUTBOX_META_KEY, BATCH_META_KEY))
        conn.execute("DELETE FROM outbox")

    store._retrying(action)


def process_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _claimer_gone(claimed_by: str | None, host: str) -> bool:
    """True when ``claimed_by`` is a process of this host that no longer runs (killed mid-send)."""
    name, _, pid = (claimed_by or "").rpartition(":")
    if name != host or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except OSError:  # it exists (another user's): its lease holds
        return False
    return False


def claim(store: JobStore, owner: str, lease: float) -> OutboxRow | None:
    """The next row due for delivery, claimed by ``owner`` for ``lease`` seconds; None if none."""
    now = time.time()
    if not has_due(store, now):
        return None
    host = owner.rpartition(":")[0]

    def action(conn: sqlite3.Connection) -> OutboxRow | None:
        rows = conn.execute(f"{_ROW} WHERE state = 'pending' AND next_try <= ? ORDER BY id",
                            (now,)).fetchall()
        for r in rows:
            row = _row(r)
            free = row.claimed_by is None or (row.claimed_until or 0) < now or (
                row.claimed_by != owner and _claimer_gone(row.claimed_by, host))
            if free:
                conn.execute("UPDATE outbox SET claimed_by = ?, claimed_until = ? WHERE id = ?",
                             (owner, now + lease, row.id))
                return row
        return None

    return store._retrying(action)


def has_due(store: JobStore, now: float | None = None) -> bool:
    """Whether any row waits for delivery now (a cheap read through the partial index)."""
    when = time.time() if now is None else now
    return bool(store._read("SELECT 1 FROM outbox WHERE state = 'pending' AND next_try <= ? LIMIT 1", (when,)))


def next_due_in(store: JobStore, owner: str) -> float | None:
    """Seconds until the next pending row that ``owner`` could claim is due; None when none waits
    (rows others are delivering do not count)."""
    now = time.time()
    host = owner.rpartition(":")[0]
    rows = store._read("SELECT next_try, claimed_by, claimed_until FROM outbox WHERE state = 'pending' "
                       "ORDER BY next_try")
    for next_try, claimed_by, claimed_until in rows:
        if claimed_by is None or (claimed_until or 0) < now or _claimer_gone(claimed_by, host):
            return max(0.0, next_try - now)
    return None


def mark_channel(store: JobStore, row_id: int, owner: str, channel: str) -> None:
    """``channel`` has delivered row ``row_id``: a later attempt does not send it there again."""
    store._retrying(lambda c: c.execute(
        "UPDATE outbox SET delivered = json_insert(delivered, '$[#]', ?) WHERE id = ? AND claimed_by = ? "
        "AND NOT EXISTS (SELECT 1 FROM json_each(delivered) WHERE value = ?)", (channel, row_id, owner, channel)))


def finish(store: JobStore, row_id: int, owner: str, error: str | None, give_up: bool, retry_in: float) -> None:
    """End ``owner``'s claim: sent (``error`` None), retried in ``retry_in`` seconds, or given up."""
    now = time.time()
    if error is None:
        sql, params = "state = ?, done_at = ?, error = NULL", [SENT, now]
    elif give_up:
        sql, params = "state = ?, done_at = ?, error = ?, attempts = attempts + 1", [FAILED, now, error]
    else:
        sql, params = "next_try = ?, error = ?, attempts = attempts + 1", [now + retry_in, error]
    store._retrying(lambda c: c.execute(
        f"UPDATE outbox SET {sql}, claimed_by = NULL, claimed_until = NULL WHERE id = ? AND claimed_by = ?",
        (*params, row_id, owner)))


def release(store: JobStore, row_id: int, owner: str) -> None:
    """Give a claimed row back untouched (this process stops before sending it)."""
    store._retrying(lambda c: c.execute(
        "UPDATE outbox SET claimed_by = NULL, claimed_until = NULL WHERE id = ? AND claimed_by = ?", (row_id, owner)))


def prune(store: JobStore, keep_seconds: float = KEEP_SECONDS) -> int:
    """Delete delivered and given-up rows older than ``keep_seconds``; returns how many."""
    return int(store._retrying(lambda c: c.execute(
        "DELETE FROM outbox WHERE state != ? AND done_at < ?", (PENDING, time.time() - keep_seconds)).rowcount))


def rows(store: JobStore, state: str | None = None) -> list[OutboxRow]:
    """The outbox, oldest first (``state``: only pending, sent or failed rows)."""
    if state is None:
        return [_row(r) for r in store._read(f"{_ROW} ORDER BY id")]
    return [_row(r) for r in store._read(f"{_ROW} WHERE state = ? ORDER BY id", (state,))]
