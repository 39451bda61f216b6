"""Scale rows for the store, the listing and the history (part of section 8, ``bench_scale``), on
the cached big stores (``bigstore``), each measured in a fresh process where memory matters.

- Store size: bytes per job on disk (the database file after a checkpoint; where they go, from
  SQLite's ``dbstat``). Baseline, built in the same run with the same generator: the row format
  before schema 6 (usage samples inside the row, JSON with spaces, the whole progress record, the
  native-id and array-parent indexes over every row).
- ``list --status failed --type Count``: the query part (``listing.bounded_jobs``) beside the query
  the command ran before the bounded listing (every failed Count job).
- ``list --all --json`` and ``list --all`` (the table): rows streamed from the store; peak memory
  beside each other, and the table's beside the same command over 10,000 jobs.
- ``history()`` (per job) time and peak memory beside the same read in one piece (no chunks), and
  ``iter_history(chunk=100_000)`` per job and per attempt.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .common import Row

SMALL = 10_000  # the `list --all` memory baseline: the smallest cached store
BASELINE_MAX = 100_000  # the old-format store is built at most this big (bytes per job do not depend on it)


def _db_bytes(project: Path) -> tuple[int, dict[str, int]]:
    db = project / ".celline" / "jobs.db"
    conn = sqlite3.connect(db)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        parts = dict(conn.execute("SELECT name, SUM(pgsize) FROM dbstat GROUP BY name").fetchall())
    finally:
        conn.close()
    size = db.stat().st_size + sum(p.stat().st_size for p in db.parent.glob("jobs.db-wal"))
    return size, parts


def _old_format_store(project: Path, total: int) -> None:
    """``total`` generated jobs as schema 5 stored them (bench_store's generator, same values)."""
    from celline_jobs_nb.core.models import Progress
    from celline_jobs_nb.store.rows import COLUMNS, encode
    from celline_jobs_nb.store.schema import MIGRATIONS

    from .bench_store import _jobs

    (project / ".celline").mkdir(parents=True)
    conn = sqlite3.connect(project / ".celline" / "jobs.db", isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    for number, migration in enumerate(MIGRATIONS[:5]):
        conn.executescript(migration)
        conn.execute(f"PRAGMA user_version = {number + 1}")
    marks = ", ".join("?" for _ in COLUMNS)
    now = time.time()
    for chunk in range(0, total, 10_000):
        rows, events = [], []
        for job in _jobs(min(10_000, total - chunk), prefix=f"c{chunk}-"):
            if job.status.value == "running":
                job.status = type(job.status)("completed")  # as bigstore: a history, nothing active
            values = []
            for column in COLUMNS:
                value = getattr(job, column)
                if column == "progress":
                    value = json.dumps(Progress.from_dict(value).to_dict(), default=str)  # every key, spaces
                elif column in ("metadata", "depends_on"):
                    value = json.dumps(value, default=str)
                elif column == "resources":
                    value = json.dumps(value.to_dict())
                else:
                    value = encode(column, now if column == "updated_at" else value)
                values.append(value)
            rows.append((*values, 1))
            events.append((job.job_id, now, job.status.value))
        conn.execute("BEGIN")
        conn.executemany(f"INSERT INTO jobs ({', '.join(COLUMNS)}, rev) VALUES ({marks}, ?)", rows)
        conn.executemany("INSERT INTO events (job_id, time, from_status, to_status, reason, source) "
                         "VALUES (?, ?, NULL, ?, NULL, 'submit')", events)
        conn.execute("COMMIT")
    conn.close()


def _parts_note(parts: dict[str, int], total: int) -> str:
    groups = {"rows": ["jobs"], "samples": ["job_samples"], "events": ["events", "events_job"]}
    shown = {name: sum(parts.get(t, 0) for t in tables) for name, tables in groups.items()}
    grouped = {t for tables in groups.values() for t in tables}
    shown["indexes"] = sum(size for name, size in parts.items() if name not in grouped and not name.startswith("jw"))
    # the dashboard's sort indexes and text index (store/window.py), once a dashboard opened the store
    shown["dashboard indexes"] = sum(size for name, size in parts.items() if name.startswith("jw"))
    return ", ".join(f"{name} {size / total:.0f}" for name, size in shown.items() if size)


def size_rows(project: Path, total: int) -> list[Row]:
    from celline_jobs_nb.store.sqlite import JobStore

    ours, parts = _db_bytes(project)
    with tempfile.TemporaryDirectory() as tmp:
        sample = min(total, BASELINE_MAX)
        _old_format_store(Path(tmp), sample)
        old, old_parts = _db_bytes(Path(tmp))
        # That store opened by this version: the migration on open, then the lazy move of its
        # ended jobs' samples (done by the daily copier, off every command's path).
        started, cpu = time.perf_counter(), time.process_time()
        store = JobStore(Path(tmp))
        migrate, migrate_cpu = time.perf_counter() - started, time.process_time() - cpu
        started = time.perf_counter()
        store.compact_samples(budget=3600.0)
        compact = time.perf_counter() - started
        store.close()
    return [Row("8. scale", f"store bytes per ended job, {total:,} jobs", ours / total, "B", old / sample,
                "the row format before schema 6" + (f" ({sample:,} jobs)" if sample != total else ""),
                target="<= 300 B", met=ours / total <= 300,
                note=f"jobs.db {ours / 2**20:,.0f} MiB; B/job: {_parts_note(parts, total)} (before: "
                     f"{_parts_note(old_parts, sample)}); one job in ten keeps 60 usage samples; an old store of "
                     f"{sample:,} jobs migrates on open in {migrate:.2f} s ({migrate_cpu:.2f} s CPU), its samples "
                     f"move out and its usage records are packed in {compact:.1f} s in the daily copier")]


_LIST_PROBE = r"""
import json, sys, time
from celline_jobs_nb.core.models import JobStatus, JobType
from celline_jobs_nb.listing import bounded_jobs
from celline_jobs_nb.store.sqlite import JobStore
store = JobStore(sys.argv[1])
store.revision()
def best(f, n=5):
    times = []
    for _ in range(n):
        t0 = time.process_time(); w0 = time.perf_counter(); out = f()
        times.append((time.perf_counter() - w0, time.process_time() - t0))
    return min(times), out
(ours_s, ours_cpu), (shown, hidden) = best(lambda: bounded_jobs(store, [JobStatus.FAILED], job_types=[JobType.COUNT]))
(old_s, old_cpu), everything = best(lambda: store.list([JobStatus.FAILED], job_types=[JobType.COUNT]), 2)
print(json.dumps({"s": ours_s, "cpu": ours_cpu, "rows": len(shown), "hidden": hidden, "old_s": old_s,
                  "old_cpu": old_cpu, "old_rows": len(everything)}))
"""


def _probe(script: str, *args: str, env: dict[str, str] | None = None) -> dict[str, float]:
    result = subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True, timeout=3600,
                            env=env)
    if result.returncode != 0:
        raise RuntimeError(f"probe failed: {result.stderr.strip()[-800:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def list_rows(project: Path, total: int, timed: object) -> list[Row]:
    """The filtered listing's query, and `list --all --json` streamed (``timed(command)``: (s, rss))."""
    seen = _probe(_LIST_PROBE, str(project))
    rows = [Row("8. scale", f"`list --status failed --type Count`, query part, {total:,} jobs", seen["s"] * 1000,
                "ms", seen["old_s"] * 1000, "every failed Count job (the query before the bounded list)",
                target="< 200 ms", met=seen["s"] < 0.2,
                note=f"best of 5, {seen['cpu'] * 1000:.0f} ms CPU; {seen['rows']:,.0f} jobs shown, footer: "
                     f"{seen['hidden']:,.0f} more; before: {seen['old_rows']:,.0f} jobs, {seen['old_cpu']:.2f} s CPU")]
    if total <= 100_000:  # a million rows of output is a minute either way
        head = [sys.executable, "-m", "celline_jobs_nb", "--project", str(project), "list", "--all"]
        streamed, streamed_rss = timed([*head, "--json"])  # type: ignore[operator]
        table, table_rss = timed(head)  # type: ignore[operator]
        small_rss = table_rss
        if total != SMALL:  # the same command over the smallest cached store, in the same run
            from .bigstore import cached_store, clear_backups

            small = cached_store(SMALL)
            _, small_rss = timed([sys.executable, "-m", "celline_jobs_nb", "--project", str(small), "list",
                                  "--all"])  # type: ignore[operator]
            clear_backups(small)
        rows.append(Row("8. scale", f"`list --all --json` peak memory, {total:,} jobs", streamed_rss / 2**20, "MiB",
                        table_rss / 2**20, "`list --all` (the table, streamed too)", target="flat (streamed)",
                        met=streamed_rss < 1.5 * table_rss,
                        note=f"{streamed:.1f} s, rows streamed from the store in batches of 2,000 "
                             f"(the table: {table:.1f} s); with interpreter start-up"))
        rows.append(Row("8. scale", f"`list --all` (table) peak memory, {total:,} jobs", table_rss / 2**20, "MiB",
                        small_rss / 2**20, f"the same, {SMALL:,} jobs", target="flat (<= 1.5x)",
                        met=table_rss <= 1.5 * small_rss,
                        note=f"{table:.1f} s; printed 2,000 rows at a time, columns widen (never narrow) from a "
                             "batch with a longer value; what grows with the store is SQLite's page cache (at most "
                             "16 MiB); before: every row held to size the columns (367 MiB at 100,000)"))
    return rows


_HISTORY_PROBE = r"""
import json, resource, sys, time
import pandas  # imported before the clock starts: its import is not the history's cost
from celline_jobs_nb import export
from celline_jobs_nb.monitor import JobMonitor
monitor = JobMonitor(sys.argv[1])
how = sys.argv[2]
started, cpu = time.perf_counter(), time.process_time()
if how.startswith("chunks-"):
    rows = sum(len(frame) for frame in monitor.iter_history(chunk=100_000, per=how[len("chunks-"):]))
else:
    if how == "one-read":
        export.CHUNKED_ABOVE = 1 << 62  # the history read in one piece, as before
    rows = len(monitor.history())
print(json.dumps({"s": time.perf_counter() - started, "cpu": time.process_time() - cpu, "rows": rows,
                  "peak": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}))
"""


def history_rows(project: Path, total: int) -> list[Row]:
    """``history()`` per job beside the same read in one piece, and ``iter_history`` per job and per
    attempt: time and peak memory, each in a fresh process."""
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    seen = {how: _probe(_HISTORY_PROBE, str(project), how, env=env)
            for how in ("history", "one-read", "chunks-job", "chunks-attempt")}
    ours, whole = seen["history"], seen["one-read"]
    rows = [Row("8. scale", f"history() per job, {total:,} jobs", ours["s"], "s", whole["s"],
                "the same read in one piece (no chunks)", target="< 8 s" if total >= 1_000_000 else "< 1 s",
                met=ours["s"] < (8 if total >= 1_000_000 else 1),
                note=f"{ours['cpu']:.1f} s CPU; peak {ours['peak'] / 2**20:,.0f} MiB (one piece: "
                     f"{whole['peak'] / 2**20:,.0f} MiB, {whole['cpu']:.1f} s CPU)"),
            Row("8. scale", f"history() peak memory, {total:,} jobs", ours["peak"] / 2**20, "MiB",
                whole["peak"] / 2**20, "the same read in one piece", target="< 2 GiB", met=ours["peak"] < 2 * 2**30)]
    for per in ("job", "attempt"):
        chunks = seen[f"chunks-{per}"]
        rows.append(Row("8. scale", f"iter_history(chunk=100_000, per='{per}'), {total:,} jobs", chunks["s"], "s",
                        ours["s"], "history() per job", target="< 2 GiB peak", met=chunks["peak"] < 2 * 2**30,
                        note=f"{chunks['rows']:,.0f} rows, {chunks['cpu']:.1f} s CPU, peak "
                             f"{chunks['peak'] / 2**20:,.0f} MiB"))
    return rows
