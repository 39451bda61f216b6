"""The job store's poller bookkeeping (whose turn it is to poll a scheduler, how the last poll
went) and its meta keys. A mixin of ``JobStore`` (``store.sqlite``), which supplies the
transactions (``_retrying``, ``_read``)."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

from ..core.models import to_utc

T = TypeVar("T")


@dataclass(frozen=True)
class PollState:
    scheduler: str
    last_attempt: datetime | None
    last_success: datetime | None
    error: str | None
    calls_total: int
    last_calls: int

    @property
    def stale(self) -> bool:
        return self.error is not None


class PollbookMixin:
    """``JobStore``'s poller bookkeeping and meta keys."""

    if TYPE_CHECKING:
        def _retrying(self, action: Callable[[sqlite3.Connection], T]) -> T: ...

        def _read(self, sql: str, params: Sequence[Any] = ()) -> list[Any]: ...

    # -- poller bookkeeping ------------------------------------------------------------------

    def claim_poll(self, scheduler: str, interval: float) -> bool:
        """True when this caller should poll ``scheduler`` now. Processes watching the same project
        share one poll per interval instead of each querying the scheduler."""
        now = time.time()
        due = self._read("SELECT next_due FROM poll_state WHERE scheduler = ?", (scheduler,))
        if due and due[0][0] > now:
            return False  # the common answer, without taking the write lock

        def action(conn: sqlite3.Connection) -> bool:
            conn.execute("INSERT OR IGNORE INTO poll_state (scheduler) VALUES (?)", (scheduler,))
            cursor = conn.execute(
                "UPDATE poll_state SET next_due = ?, last_attempt = ? WHERE scheduler = ? AND next_due <= ?",
                (now + interval, now, scheduler, now),
            )
            return cursor.rowcount == 1

        return self._retrying(action)

    def reset_poll_due(self, scheduler: str) -> None:
        """Make the next poll of ``scheduler`` due now (after a submit or a cancel)."""
        self._retrying(lambda c: c.execute("UPDATE poll_state SET next_due = 0 WHERE scheduler = ?", (scheduler,)))

    def record_poll(self, scheduler: str, ok: bool, error: str | None, calls: int) -> None:
        now = time.time()

        def action(conn: sqlite3.Connection) -> None:
            conn.execute("INSERT OR IGNORE INTO poll_state (scheduler) VALUES (?)", (scheduler,))
            if ok:
                conn.execute(
                    "UPDATE poll_state SET last_success = ?, error = NULL, calls_total = calls_total + ?, "
                    "last_calls = ? WHERE scheduler = ?", (now, calls, calls, scheduler))
            else:
                conn.execute(
                    "UPDATE poll_state SET error = ?, calls_total = calls_total + ?, last_calls = ? "
                    "WHERE scheduler = ?", (error or "poll failed", calls, calls, scheduler))

        self._retrying(action)

    def poll_states(self) -> dict[str, PollState]:
        rows = self._read(
            "SELECT scheduler, last_attempt, last_success, error, calls_total, last_calls FROM poll_state"
        )
        return {
            r[0]: PollState(r[0], to_utc(r[1]) if r[1] else None, to_utc(r[2]) if r[2] else None, r[3], r[4], r[5])
            for r in rows
        }

    # -- meta --------------------------------------------------------------------------------

    def get_meta(self, key: str, default: str | None = None) -> str | None:
        rows = self._read("SELECT value FROM meta WHERE key = ?", (key,))
        return rows[0][0] if rows else default

    def compare_and_set_meta(self, key: str, expected: str | None, value: str) -> bool:
        """Set ``key`` to ``value`` only if it still holds ``expected`` (None: absent). True if set."""

        def action(conn: sqlite3.Connection) -> bool:
            row = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
            if (row[0] if row else None) != expected:
                return False
            conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))
            return True

        return self._retrying(action)

    def set_meta(self, key: str, value: str) -> None:
        self._retrying(lambda c: c.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value)))
