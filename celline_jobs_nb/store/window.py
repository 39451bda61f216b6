"""The dashboard's window queries: the rows in view of a sorted, filtered job table, read from the
store a window at a time (offset/limit), with the counts the status chips show.

The table lists *top-level* jobs: not an array task (those are listed under their parent) and not
an earlier attempt of a retried job (listed under the latest one). Every query runs on indexes this
module creates itself, once per database (``WindowIndex.ensure``): partial indexes over the
top-level rows for the indexed sort keys (``SORTS``), one over status for the chips, and an FTS5
trigram index of id, name, type and reason (plus status tags and a tag on the rows listed under
another, so a filtered count never reads a row), kept in sync by triggers. On a store that does
not have them yet (a big one builds them in a background thread, a read-only one never can) the
same queries run unindexed: the answers are the same, only slower. An index whose definition is
not this module's (an older version's) counts as missing: dropped and built again the same way.

Free text: each word typed matches any part of the id, name, type or reason, case-insensitively
("2584863" and "unt SRR" find "Count SRR2584863"; every word must match). Words of 3 characters or
more are looked up in the trigram index; shorter ones (which a trigram index cannot answer) are
LIKE conditions on the rows the rest of the query selects, the whole history when they are alone.
Typed text is always literal: quotes, ``*``, ``NEAR(`` or ``%`` match themselves.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..core.errors import CellineJobsError
from ..core.models import JobInfo, JobStatus
from .rows import COLUMNS
from .stored_job import rows_to_jobs
from .window_text import FTS_NAMES, FTS_SQL, STALE, TRIGRAM, fill_text_index, match_expression

log = logging.getLogger("celline.job")

#: Not an earlier attempt of a retried job. (CASE: a row with malformed metadata is never an error.)
LATEST = "(CASE WHEN json_valid(metadata) THEN json_extract(metadata, '$.retried_by') END) IS NULL"
#: A row the table lists at the top level.
TOP = f"array_parent IS NULL AND {LATEST}"
STATUS_ORDER = [s.value for s in JobStatus]

#: Sort keys of the view (js/src/rows.js COLUMNS) -> (SQL expression, partial index or None).
#: Keys without an index sort correctly but read every row; "submit" is the row order itself;
#: "status" runs through the status index one status at a time (``Windows._by_status``).
SORTS: dict[str, tuple[str, str | None]] = {
    "submit": ("seq", "jw_top"),
    "end": ("end_time", "jw_end"),
    "start": ("start_time", "jw_start"),
    "name": ("name COLLATE NOCASE", "jw_name_nocase"),
    "runtime": ("(end_time - start_time)", "jw_runtime"),
    "id": ("job_id", None),
    "type": ("job_type", None),
    "scheduler": ("scheduler", None),
    "attempt": ("attempt", None),
    "exit": ("exit_code", None),
    "reason": ("reason", None),
    "native": ("native_id", None),
    "status": ("CASE status " + " ".join(f"WHEN '{s}' THEN {i}" for i, s in enumerate(STATUS_ORDER))
               + f" ELSE {len(STATUS_ORDER)} END", None),
    "progress": ("(CASE WHEN json_valid(progress) THEN COALESCE(json_extract(progress, '$.percent'), "
                 "json_extract(progress, '$[0]')) END)", None),  # {"percent":..} or [percent, stage]
    "peak": ("(CASE WHEN json_valid(metadata) THEN COALESCE(json_extract(metadata, '$.usage.u5[3]'), "
             "json_extract(metadata, '$.usage.max_rss_bytes')) END)", None),  # packed (rows.pack_usage) or not
    "cpu": ("(CASE WHEN json_valid(metadata) THEN json_extract(metadata, '$.usage.cpu_percent') END)", None),
    "rss": ("(CASE WHEN json_valid(metadata) THEN json_extract(metadata, '$.usage.rss_bytes') END)", None),
}

#: "Has a value", written as a range where the index can answer it as one (an expression index
#: scans every entry for IS NOT NULL).
PRESENT = {"end": "end_time > -1e300", "start": "start_time > -1e300", "runtime": "(end_time - start_time) > -1e300",
           "name": "name COLLATE NOCASE >= ''"}

_INDEXES = {
    "jw_top": f"CREATE INDEX IF NOT EXISTS jw_top ON jobs (seq) WHERE {TOP}",
    "jw_status": f"CREATE INDEX IF NOT EXISTS jw_status ON jobs (status, array_parent) WHERE {LATEST}",
    **{index: f"CREATE INDEX IF NOT EXISTS {index} ON jobs ({expr}) WHERE {TOP}"
       for expr, index in SORTS.values() if index and index != "jw_top"},
}


#: A text of only words under TRIGRAM characters searches the newest ``SHORT_SCAN`` rows.
SHORT_SCAN = 20_000
#: Stores with more rows than this build the indexes in a background thread (the table opens at once).
BUILD_INLINE_ROWS = 20_000
_SELECT = "SELECT " + ", ".join(COLUMNS) + " FROM jobs"
MAX_LIMIT = 1000
MAX_WORDS = 8


@dataclass(frozen=True)
class Query:
    """What the view shows: sort key and direction, status chips (empty: all), free text."""

    sort: str = "submit"
    descending: bool = True
    statuses: tuple[str, ...] = ()
    text: str = ""

    @classmethod
    def from_wire(cls, data: Any) -> Query:
        """A query from the view's message, every value checked (unknown ones fall back)."""
        data = data if isinstance(data, Mapping) else {}
        sort = str(data.get("sort") or "submit")[:40]
        raw = data.get("statuses")
        statuses = sorted({str(s) for s in raw[:20] if str(s) in STATUS_ORDER}) if isinstance(raw, list) else []
        return cls(sort if sort in SORTS else "submit", data.get("dir", "desc") != "asc", tuple(statuses),
                   " ".join(str(data.get("text") or "").split())[:200])

    def wire(self) -> dict[str, Any]:
        return {"sort": self.sort, "dir": "desc" if self.descending else "asc", "statuses": list(self.statuses),
                "text": self.text}

    def words(self) -> list[str]:
        """The text as words (each matched as a substring, literally)."""
        return self.text.lower().split()[:MAX_WORDS]


class WindowIndex:
    """Which of this module's indexes a store has; ``ensure`` creates the missing ones."""

    def __init__(self, store: Any) -> None:
        self.store = store
        self.present: set[str] = set()
        self.building = False
        self.error: str | None = None
        self._lock = threading.Lock()
        self._look()

    def _look(self) -> None:
        """The indexes present; a text index or trigger not as this module defines it is not."""
        try:
            rows = self.store._read("SELECT name, sql FROM sqlite_master WHERE name LIKE 'jw_%'")
        except CellineJobsError:
            rows = []
        self.present = {name for name, sql in rows if name not in FTS_SQL or sql == FTS_SQL[name]}

    @property
    def fts(self) -> bool:
        return set(FTS_NAMES) <= self.present

    def has(self, index: str | None) -> bool:
        return index is not None and index in self.present

    @property
    def complete(self) -> bool:
        return self.fts and set(_INDEXES) <= self.present

    def ensure(self, background: bool | None = None) -> threading.Thread | None:
        """Create what is missing (never on a read-only store). ``background`` None: in a thread
        when the store is big. Returns the thread, if one was started."""
        if self.complete or self.store.read_only is not None:
            return None
        if background is None:
            try:
                background = int(self.store._read("SELECT COALESCE(MAX(seq), 0) FROM jobs")[0][0]) > BUILD_INLINE_ROWS
            except CellineJobsError:
                return None
        if not background:
            self.build()
            return None
        thread = threading.Thread(target=self.build, daemon=True, name="celline-jobs-window-index")
        thread.start()
        return thread

    def build(self) -> None:
        """One transaction per index, so writers (the poller, job wrappers) wait seconds, not the whole build."""
        with self._lock:
            self.building = True
            try:
                for name, sql in _INDEXES.items():
                    if name not in self.present:
                        self.store._retrying(lambda c, sql=sql: c.execute(sql))
                        self.present.add(name)
                if not self.fts:
                    def drop(conn: Any) -> None:
                        # An older version's index, or one left without its triggers (the jobs
                        # table rebuilt, so maybe stale), or defined otherwise: dropped first.
                        kinds = dict(conn.execute("SELECT name, type FROM sqlite_master WHERE name IN "
                                                  f"({', '.join('?' for _ in STALE + FTS_NAMES)})",
                                                  [*STALE, *FTS_NAMES]).fetchall())
                        for name in (*STALE, *FTS_NAMES[1:], FTS_NAMES[0]):
                            if name in kinds:
                                conn.execute(f"DROP {'TRIGGER' if kinds[name] == 'trigger' else 'TABLE'} {name}")

                    self.store._retrying(drop)
                    fill_text_index(self.store._retrying)
                    self._look()
            except CellineJobsError as exc:
                self.error = str(exc)
                log.warning("the dashboard's indexes of %s could not be built: %s", self.store.path, exc)
            finally:
                self.building = False


class Windows:
    """The window queries over one store."""

    def __init__(self, store: Any, index: WindowIndex | None = None) -> None:
        self.store = store
        self.index = index if index is not None else WindowIndex(store)
        self._cache: dict[Any, Any] = {}

    # -- counts -------------------------------------------------------------------------------

    def counts(self) -> dict[str, int]:
        """Jobs by status, as the chips count them: every job but earlier attempts (array tasks count)."""
        return self.cached_counts()[0]

    def _status_counts(self) -> tuple[dict[str, int], dict[str, int]]:
        """Chips: every latest attempt by status (one pass over the status index); top-level rows:
        those minus the array tasks (read through the array-parent index: only task rows)."""
        hint = " INDEXED BY jw_status" if self.index.has("jw_status") else ""
        chips = {str(s): int(n) for s, n in self.store._read(f"SELECT status, COUNT(*) FROM jobs{hint} WHERE "
                                                              f"{LATEST} GROUP BY status")}
        top = dict(chips)
        for status, n in self.store._read(f"SELECT status, COUNT(*) FROM jobs INDEXED BY jobs_array_parent WHERE "
                                          f"array_parent IS NOT NULL AND {LATEST} GROUP BY status"):
            top[str(status)] = top.get(str(status), 0) - int(n)
        return ({s: chips[s] for s in STATUS_ORDER if chips.get(s)},
                {s: top[s] for s in STATUS_ORDER if top.get(s, 0) > 0})

    def _fts_only(self, query: Query) -> bool:
        """The text index alone answers ``query``'s text and chips (every word long enough)."""
        words = query.words()
        return bool(words) and self.index.fts and all(len(w) >= TRIGRAM for w in words)

    def _short_only(self, query: Query) -> bool:
        words = query.words()
        return bool(words) and all(len(w) < TRIGRAM for w in words)

    def _newest_seq(self) -> int:
        return self._cached("newest", lambda: int(self.store._read("SELECT COALESCE(MAX(seq), 0) FROM jobs")[0][0]))

    def notice(self, query: Query) -> str | None:
        """What the view says when ``query`` does not search the whole history."""
        if self._short_only(query) and self._newest_seq() > SHORT_SCAN:
            return (f"words under {TRIGRAM} characters search the newest {SHORT_SCAN:,} jobs: type {TRIGRAM} or "
                    "more to search the whole history")
        return None

    def total(self, query: Query) -> int:
        """How many top-level rows match ``query``."""
        if self._fts_only(query):
            return int(self.store._read("SELECT COUNT(*) FROM jw_text WHERE jw_text MATCH ?",
                                        [self._match(query)])[0][0])
        if not query.words():
            top = self.cached_counts()[1]
            return sum(n for s, n in top.items() if not query.statuses or s in query.statuses)
        where, params = self._where(query, bare=True)
        return int(self.store._read(f"SELECT COUNT(*) FROM jobs WHERE {where}", params)[0][0])

    # -- the rows of a window -------------------------------------------------------------------

    def seqs(self, query: Query, offset: int, limit: int) -> list[int]:
        """Row numbers of the top-level rows [offset, offset + limit) of ``query``'s order. The
        order is rows with a value for the sort key (in the chosen direction, then by row number),
        then rows without one (newest first), as the view sorts; a position past the middle of
        either part is read from that part's far end, so no window walks more than half of it."""
        offset, limit = max(0, int(offset)), max(0, min(MAX_LIMIT, int(limit)))
        total = self.cached_total(query)
        end = min(total, offset + limit)
        if offset >= end:
            return []
        expr, _index = SORTS[query.sort]
        if expr == "seq":
            return self._segment(query, "", query.descending, offset, end, total)
        if query.sort == "status" and not query.words() and self.index.has("jw_status"):
            return self._by_status(query, offset, end)
        present = PRESENT.get(query.sort, f"{expr} IS NOT NULL")
        if ("valued", query) not in self._cache and offset < 4 * (end - offset):
            # Near the top: the rows with a value, read forward, without counting them first.
            where, params = self._where(query, like=total >= 5000)  # many match: test the rows walked
            _expr, index = SORTS[query.sort]
            direction = "DESC" if query.descending else "ASC"
            found = [r[0] for r in self.store._read(
                f"SELECT seq FROM jobs{self._hint(query, index, total)} WHERE {where} AND {present} ORDER BY {expr} "
                f"{direction}, seq {direction} LIMIT ? OFFSET ?", [*params, end - offset, offset])]
            if len(found) == end - offset:
                return found
        valued = self._cached(("valued", query), lambda: self._valued(query, expr, present, total))
        out: list[int] = []
        if offset < valued:
            out += self._segment(query, present, query.descending, offset, min(end, valued), valued)
        if end > valued:
            out += self._segment(query, f"{expr} IS NULL", True, max(0, offset - valued), end - valued, total - valued,
                                 by_seq=True)
        return out

    def _by_status(self, query: Query, offset: int, end: int) -> list[int]:
        """Sorted by status: one run per status in rank order, each read from the status index
        (whose top-level rows by status are counted already)."""
        top = self.cached_counts()[1]
        order = [s for s in STATUS_ORDER if top.get(s) and (not query.statuses or s in query.statuses)]
        direction = "DESC" if query.descending else "ASC"
        out: list[int] = []
        first = 0
        for status in reversed(order) if query.descending else order:
            size = top[status]
            start, stop = max(offset, first) - first, min(end, first + size) - first
            if start < stop:
                backwards = start > size - stop
                skip = size - stop if backwards else start
                rows = self.store._read(
                    f"SELECT seq FROM jobs INDEXED BY jw_status WHERE {LATEST} AND status = ? AND array_parent IS NULL "
                    f"ORDER BY seq {('ASC' if direction == 'DESC' else 'DESC') if backwards else direction} "
                    "LIMIT ? OFFSET ?", [status, stop - start, skip])
                found = [r[0] for r in rows]
                out += found[::-1] if backwards else found
            first += size
        return out

    def _segment(self, query: Query, condition: str, descending: bool, start: int, stop: int, size: int,
                 by_seq: bool = False) -> list[int]:
        """Rows [start, stop) of the rows matching ``condition``, ``size`` of them."""
        expr, index = SORTS[query.sort]
        keys = ["seq"] if by_seq or expr == "seq" else [expr, "seq"]
        backwards = start > size - stop
        desc = descending != backwards
        order = ", ".join(f"{k} {'DESC' if desc else 'ASC'}" for k in keys)
        skip, count = (size - stop if backwards else start), stop - start
        if expr == "seq" and self._fts_only(query):
            rows = self.store._read(f"SELECT rowid FROM jw_text WHERE jw_text MATCH ? ORDER BY rowid "
                                    f"{'DESC' if desc else 'ASC'} LIMIT ? OFFSET ?", [self._match(query), count, skip])
        else:
            where, params = self._where(query, like=size >= 5000)
            if condition:
                where += f" AND {condition}"
            rows = self.store._read(f"SELECT seq FROM jobs{self._hint(query, index, size)} WHERE {where} "
                                    f"ORDER BY {order} LIMIT ? OFFSET ?", [*params, count, skip])
        found = [r[0] for r in rows]
        return found[::-1] if backwards else found

    def _valued(self, query: Query, expr: str, present: str, total: int) -> int:
        """How many of the ``total`` rows have a value for the sort key: the smaller part is counted
        (rows without a value, capped at half, else those with one), so at most half are read."""
        if not self._count(query, present, 1, total):
            return 0  # no row has a value (a history without end times, sorted by end)
        half = total // 2 + 1
        missing = self._count(query, f"{expr} IS NULL", half, total)
        return total - missing if missing < half else self._count(query, present, total, total)

    def _count(self, query: Query, condition: str, cap: int, size: int) -> int:
        """Rows of ``query`` (``size`` of them) that meet ``condition``, counted up to ``cap``."""
        where, params = self._where(query, like=size >= 5000)
        _expr, index = SORTS[query.sort]
        return int(self.store._read(f"SELECT COUNT(*) FROM (SELECT 1 FROM jobs{self._hint(query, index, size)} "
                                    f"WHERE {where} AND {condition} LIMIT ?)", [*params, int(cap)])[0][0])

    # -- cached figures: valid until ``invalidate`` (the table calls it when rows changed) ----------

    def invalidate(self) -> None:
        self._cache.clear()

    def adjust(self, moves: list[tuple[str | None, str | None, bool]]) -> None:
        """Rows moved between statuses (``(old, new, top-level)``; None: added or gone): the chip
        counts follow without a recount; every other cached figure is dropped."""
        counts = self._cache.get("counts")
        self._cache.clear()
        if counts is None:
            return
        chips, top = dict(counts[0]), dict(counts[1])
        for old, new, is_top in moves:
            for table, wanted in ((chips, True), (top, is_top)):
                if not wanted:
                    continue
                if old is not None:
                    table[old] = table.get(old, 0) - 1
                if new is not None:
                    table[new] = table.get(new, 0) + 1
        if any(n < 0 for n in (*chips.values(), *top.values())):
            return  # not what the store holds: counted again when next asked
        self._cache["counts"] = ({s: chips[s] for s in STATUS_ORDER if chips.get(s)},
                                 {s: top[s] for s in STATUS_ORDER if top.get(s)})

    def _cached(self, key: Any, compute: Any) -> Any:
        if key not in self._cache:
            if len(self._cache) > 64:
                self._cache.clear()
            self._cache[key] = compute()
        return self._cache[key]

    def cached_counts(self) -> tuple[dict[str, int], dict[str, int]]:
        """(chip counts, top-level rows by status), from one pass over the status index."""
        return self._cached("counts", self._status_counts)

    def cached_total(self, query: Query) -> int:
        return self._cached(("total", query), lambda: self.total(query))

    def jobs(self, seqs: Sequence[int]) -> list[JobInfo]:
        """The jobs of these row numbers, in that order (rows gone meanwhile are left out)."""
        if not seqs:
            return []
        by_seq = self.jobs_by_seq(seqs)
        return [by_seq[s] for s in seqs if s in by_seq]

    def jobs_by_seq(self, seqs: Sequence[int]) -> dict[int, JobInfo]:
        """The jobs of these row numbers that still exist, by row number."""
        if not seqs:
            return {}
        marks = ", ".join("?" for _ in seqs)
        rows = self.store._read(f"SELECT seq, {', '.join(COLUMNS)} FROM jobs WHERE seq IN ({marks})", list(seqs))
        return dict(zip((r[0] for r in rows), rows_to_jobs([r[1:] for r in rows]), strict=True))

    def by_ids(self, ids: Sequence[str]) -> list[JobInfo]:
        if not ids:
            return []
        marks = ", ".join("?" for _ in ids)
        return rows_to_jobs(self.store._read(f"{_SELECT} WHERE job_id IN ({marks})", list(ids)))

    def brief(self, ids: Sequence[str]) -> dict[str, tuple[str, str]]:
        """Name and status of these jobs, by id."""
        marks = ", ".join("?" for _ in ids)
        return {str(i): (str(n), str(s)) for i, n, s in
                self.store._read(f"SELECT job_id, name, status FROM jobs WHERE job_id IN ({marks})", list(ids))}

    def window(self, query: Query, offset: int, limit: int) -> list[JobInfo]:
        return self.jobs(self.seqs(query, offset, limit))

    # -- what is listed under a row ---------------------------------------------------------------

    def child_counts(self, jobs: Sequence[JobInfo]) -> dict[str, tuple[int, int]]:
        """(array tasks, earlier attempts) each of ``jobs`` lists under it, for those with any."""
        ids = [j.job_id for j in jobs]
        tasks: dict[str, int] = {}
        if ids:
            marks = ", ".join("?" for _ in ids)
            for parent, n in self.store._read(f"SELECT array_parent, COUNT(*) FROM jobs WHERE array_parent IN "
                                              f"({marks}) GROUP BY array_parent", ids):
                tasks[str(parent)] = int(n)
        out = {job_id: (n, 0) for job_id, n in tasks.items()}
        for job in jobs:
            if job.retry_of:
                out[job.job_id] = (tasks.get(job.job_id, 0), max(1, job.attempt - 1))
        return out

    def children(self, job: JobInfo, limit: int = 2000) -> list[JobInfo]:
        """Array tasks of ``job`` (by index), then its earlier attempts (newest first)."""
        rows = self.store._read(f"{_SELECT} WHERE array_parent = ? ORDER BY array_index, seq LIMIT ?",
                                [job.job_id, int(limit)])
        out = rows_to_jobs(rows)
        previous, seen = job.retry_of, {job.job_id}
        while previous and previous not in seen and len(seen) < 100:
            seen.add(previous)
            found = rows_to_jobs(self.store._read(f"{_SELECT} WHERE job_id = ?", [previous]))
            if not found:
                break
            out.append(found[0])
            previous = found[0].retry_of
        return out

    # -- SQL pieces -------------------------------------------------------------------------------

    def _hint(self, query: Query, index: str | None, size: int) -> str:
        if query.words() and size < 5000:
            return ""  # few matches: read them and sort them
        if query.sort == "submit" and len(query.statuses) == 1 and self.index.has("jw_status"):
            return " INDEXED BY jw_status"
        return f" INDEXED BY {index}" if self.index.has(index) else ""

    def _where(self, query: Query, like: bool = False, bare: bool = False) -> tuple[str, list[Any]]:
        """The conditions of ``query``; ``like``: every word as LIKE (the rows are read anyway);
        ``bare``: without the conditions the text index's match holds already (no index to use)."""
        words = query.words()
        indexed = [w for w in words if len(w) >= TRIGRAM] if self.index.fts and not like else []
        where, params = ([] if indexed and bare else [TOP]), []
        if query.statuses and not (indexed and bare):
            where.append(f"status IN ({', '.join('?' for _ in query.statuses)})")
            params.extend(query.statuses)
        if self._short_only(query) and self._newest_seq() > SHORT_SCAN:
            where.append("seq > ?")
            params.append(self._newest_seq() - SHORT_SCAN)
        if indexed:
            where.append("seq IN (SELECT rowid FROM jw_text WHERE jw_text MATCH ?)")
            params.append(self._match(query))
        for word in words:
            if word in indexed:
                continue
            pattern = "%" + word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            where.append("(" + " OR ".join(f"{c} LIKE ? ESCAPE '\\'" for c in ("job_id", "name", "job_type",
                                                                                 "reason")) + ")")
            params.extend([pattern] * 4)
        return " AND ".join(where), params

    @staticmethod
    def _match(query: Query) -> str:
        return match_expression(query.words(), query.statuses)
