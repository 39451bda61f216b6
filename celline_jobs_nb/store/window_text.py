"""The dashboard's text index: an FTS5 trigram index of each job's id, name, type and reason,
with tags for its status and for the rows listed under another, kept by triggers on the jobs
table; the MATCH expressions over it, with typed text always literal. ``store.window`` uses it."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from ..core.models import JobStatus

STATUS_ORDER = [s.value for s in JobStatus]

#: The tags column's tokens: one trigram of private-use characters each (no text has them), so a
#: tag is one rare term of the trigram index. A status's tag, and the tag of a row listed under
#: another (an array task, an earlier attempt), cheap to exclude.
_TAG_CODES = {s: (0xE000, 0xE001, 0xE010 + i) for i, s in enumerate(STATUS_ORDER)}
_SUB_CODES = (0xE000, 0xE002, 0xE002)


def _tag(codes: tuple[int, ...]) -> str:
    return "".join(chr(c) for c in codes)


def _tags(row: str) -> str:
    """The FTS ``tags`` value of a row (``NEW``/``OLD``/``jobs``): its status's tag, plus the tag of
    a row listed under another."""
    status = " ".join(f"WHEN '{s}' THEN char({', '.join(map(str, c))})" for s, c in _TAG_CODES.items())
    sub = f"' ' || char({', '.join(map(str, _SUB_CODES))})"
    return (f"(CASE {row}.status {status} ELSE '' END) || CASE WHEN {row}.array_parent IS NULL AND (CASE WHEN "
            f"json_valid({row}.metadata) THEN json_extract({row}.metadata, '$.retried_by') END) IS NULL THEN '' "
            f"ELSE {sub} END")


_FTS_COLUMNS = "job_id, name, job_type, reason, tags"
_TEXT_COLUMNS = "{job_id name job_type reason}"
FTS_NAMES = ("jw_text", "jw_text_ai", "jw_text_ad", "jw_text_au")
#: What older versions created, or an interrupted fill left: dropped when the current index is built.
STALE = ("jw_fts_ai", "jw_fts_ad", "jw_fts_au", "jw_fts", "jw_text_fill")
FTS = [
    f"CREATE VIRTUAL TABLE IF NOT EXISTS jw_text USING fts5({_FTS_COLUMNS}, content='', tokenize='trigram')",
    f"CREATE TRIGGER IF NOT EXISTS jw_text_ai AFTER INSERT ON jobs BEGIN INSERT INTO jw_text(rowid, {_FTS_COLUMNS}) "
    f"VALUES (NEW.seq, NEW.job_id, NEW.name, NEW.job_type, NEW.reason, {_tags('NEW')}); END",
    f"CREATE TRIGGER IF NOT EXISTS jw_text_ad AFTER DELETE ON jobs BEGIN INSERT INTO jw_text(jw_text, rowid, "
    f"{_FTS_COLUMNS}) VALUES ('delete', OLD.seq, OLD.job_id, OLD.name, OLD.job_type, OLD.reason, {_tags('OLD')}); END",
    f"CREATE TRIGGER IF NOT EXISTS jw_text_au AFTER UPDATE OF job_id, name, job_type, reason, status, array_parent, "
    f"metadata ON jobs WHEN OLD.job_id IS NOT NEW.job_id OR OLD.name IS NOT NEW.name OR OLD.job_type IS NOT "
    f"NEW.job_type OR OLD.reason IS NOT NEW.reason OR ({_tags('OLD')}) IS NOT ({_tags('NEW')}) BEGIN "
    f"INSERT INTO jw_text(jw_text, rowid, {_FTS_COLUMNS}) VALUES ('delete', OLD.seq, OLD.job_id, OLD.name, "
    f"OLD.job_type, OLD.reason, {_tags('OLD')}); INSERT INTO jw_text(rowid, {_FTS_COLUMNS}) VALUES (NEW.seq, "
    f"NEW.job_id, NEW.name, NEW.job_type, NEW.reason, {_tags('NEW')}); END",
]
#: The definitions as SQLite keeps them (without IF NOT EXISTS): one that differs is rebuilt.
FTS_SQL = {name: sql.replace(" IF NOT EXISTS", "", 1) for name, sql in zip(FTS_NAMES, FTS, strict=True)}
FTS_FILL = (f"INSERT INTO jw_text(rowid, {_FTS_COLUMNS}) SELECT seq, job_id, name, job_type, reason, "
             f"{_tags('jobs')} FROM jobs")
#: Rows indexed per transaction by ``fill_text_index`` (writers wait for one chunk, not the whole fill).
FILL_CHUNK = 20_000


def fill_text_index(retrying: Callable[[Callable[[Any], Any]], Any]) -> None:
    """Create the text index and its triggers, and fill it ``FILL_CHUNK`` rows (by row number) per
    transaction of ``retrying``. Meanwhile the update and delete triggers act only on rows filled
    already (``jw_text_fill`` holds how far) or added since; the last transaction puts the final
    triggers in place. An interrupted fill leaves triggers unlike ``FTS_SQL``: rebuilt next time."""

    def start(conn: Any) -> int:
        top = int(conn.execute("SELECT COALESCE(MAX(seq), 0) FROM jobs").fetchone()[0])
        conn.execute("CREATE TABLE jw_text_fill (hi INTEGER NOT NULL)")
        conn.execute("INSERT INTO jw_text_fill VALUES (0)")
        guard = f"(OLD.seq <= (SELECT hi FROM jw_text_fill) OR OLD.seq > {top})"
        conn.execute(FTS[0])
        conn.execute(FTS[1])
        conn.execute(FTS[2].replace(" ON jobs BEGIN ", f" ON jobs WHEN {guard} BEGIN ", 1))
        update = FTS[3].replace(" ON jobs WHEN ", f" ON jobs WHEN {guard} AND (", 1)
        conn.execute(update.replace(" BEGIN ", ") BEGIN ", 1))
        return top

    top, done = int(retrying(start)), 0
    while done < top:
        stop = min(top, done + FILL_CHUNK)

        def chunk(conn: Any, low: int = done, high: int = stop) -> None:
            conn.execute(f"{FTS_FILL} WHERE seq > ? AND seq <= ?", [low, high])
            conn.execute("UPDATE jw_text_fill SET hi = ?", [high])

        retrying(chunk)
        done = stop

    def finish(conn: Any) -> None:
        for name, sql in zip(FTS_NAMES[2:], FTS[2:], strict=True):
            conn.execute(f"DROP TRIGGER {name}")
            conn.execute(sql)
        conn.execute("DROP TABLE jw_text_fill")

    retrying(finish)


#: Words shorter than this are not in a trigram index: LIKE conditions instead. A text of only
#: such words searches the newest ``SHORT_SCAN`` rows (a scan of every row takes seconds at 1M).
TRIGRAM = 3


def match_expression(words: Sequence[str], statuses: Sequence[str]) -> str:
    """The FTS5 expression: every word of 3 characters or more as a quoted phrase (literal text:
    a substring) in the text columns, the chosen statuses, top-level rows."""
    parts = [f"{_TEXT_COLUMNS} : {_quote(w)}" for w in words if len(w) >= TRIGRAM]
    if statuses:
        parts.append("(" + " OR ".join(f"tags : {_quote(_tag(_TAG_CODES[s]))}" for s in statuses) + ")")
    return "(" + " AND ".join(parts) + f") NOT (tags : {_quote(_tag(_SUB_CODES))})"


def _quote(text: str) -> str:
    """``text`` as an FTS5 string: every character literal (a quote doubled)."""
    return '"' + text.replace('"', '""') + '"'
