"""The usage record's five figures are stored as one array (schema 8, ~70 bytes less per job) and a
progress of percent and stage as a pair (schema 9); every reader returns what was written, in rows
packed and in rows written before (a store of schema 7 migrates on open and its rows are packed
lazily, by the daily copier's pass)."""

from __future__ import annotations

import json
import sqlite3
from datetime import timedelta
from pathlib import Path

from celline_jobs_nb import export
from celline_jobs_nb.core.models import JobInfo, JobStatus, JobType, Progress, new_job_id, utcnow
from celline_jobs_nb.core.paths import ProjectPaths
from celline_jobs_nb.store.schema import SCHEMA_VERSION
from celline_jobs_nb.store.sqlite import JobStore
from celline_jobs_nb.store.window import SORTS

SAMPLES = [[1.8e9 + 2 * k, 95.5, (1 + k) * 2**20] for k in range(60)]


def _usage(i: int) -> dict[str, object]:
    return {"cpu_seconds": 3600.0 + i, "elapsed_seconds": 1200.5, "alloc_cpus": 4, "max_rss_bytes": (i + 1) * 2**28,
            "req_mem_bytes": 32 * 2**30}


def _jobs() -> list[JobInfo]:
    created = utcnow() - timedelta(days=2)
    jobs = []
    for i in range(40):
        usage: dict[str, object] = _usage(i)
        if i % 5 == 0:
            usage["max_rss_bytes"] = None  # a figure the adapter could not read
        if i % 7 == 0:
            usage = {"cpu_seconds": 1.0, "max_rss_bytes": 5}  # not all five: stored as it is
        if i % 4 == 1:
            usage = {**usage, "cpu_percent": 99.5, "rss_bytes": 2**20, "samples": [list(s) for s in SAMPLES]}
        progress = [Progress(100.0, "done"), Progress(40.0, None), Progress(None, "Aligning"), Progress(),
                    Progress(12.5, "x", {"reads": 5})][i % 5]
        status = JobStatus.RUNNING if i == 39 else (JobStatus.FAILED if i % 3 == 0 else JobStatus.COMPLETED)
        jobs.append(JobInfo(job_id=new_job_id(), name=f"job{i}", command=f"run {i}", status=status,
                            job_type=JobType.COUNT if i % 2 else JobType.CUSTOM,
                            created_at=created + timedelta(minutes=i), submit_time=created + timedelta(minutes=i),
                            start_time=created + timedelta(minutes=i),
                            end_time=None if i == 39 else created + timedelta(minutes=i + 20),
                            progress=progress, metadata={"usage": usage, "note": i} if i % 9 else {"note": i}))
    return jobs


def _everything(store: JobStore) -> dict[str, object]:
    """What every reader of the store returns."""
    ids = [job.job_id for job in store.list()]
    frame = export.to_dataframe(store, per="attempt")
    peak, progress = SORTS["peak"][0], SORTS["progress"][0]
    return {
        "get": [store.get(job_id) for job_id in ids],
        "get_many": store.get_many(ids),
        "list": store.list(),
        "list_metadata": [job.metadata for job in store.list()],
        "iter_list": [(job, job.metadata) for job in store.iter_list(batch=7)],
        "history": frame.to_dict(orient="list"),
        "peak_sort": store._read(f"SELECT job_id, {peak} FROM jobs ORDER BY {peak}, seq", ()),
        "progress_sort": store._read(f"SELECT job_id, {progress} FROM jobs ORDER BY {progress}, seq", ()),
    }


def _stored(store: JobStore) -> list[str]:
    return [r[0] for r in store._read("SELECT metadata FROM jobs ORDER BY seq", ())]


def _progress_texts(store: JobStore) -> list[str]:
    return [r[0] for r in store._read("SELECT progress FROM jobs ORDER BY seq", ())]


def test_usage_records_are_stored_packed_and_read_back_as_written(project: Path):
    store = JobStore(project)
    jobs = _jobs()
    store.insert_many(jobs)
    for job, text in zip(jobs, _stored(store), strict=True):
        usage = job.metadata.get("usage", {})
        packed = all(key in usage for key in ("cpu_seconds", "elapsed_seconds", "alloc_cpus", "max_rss_bytes",
                                              "req_mem_bytes"))
        assert ('"u5":[' in text) is packed and ("max_rss_bytes" in text) is (not packed and "usage" in job.metadata)
        read = store.get(job.job_id)
        assert read.metadata == job.metadata and read.progress == job.progress
        assert read.to_dict() == {**job.to_dict(), "updated_at": read.to_dict()["updated_at"]}
    assert _progress_texts(store)[:5] == ['[100.0,"done"]', '[40.0,null]', '[null,"Aligning"]', '{}',
                                          '{"percent":12.5,"stage":"x","details":{"reads":5}}']
    # an update merging into a packed record (the poller's next figures) keeps the other figures
    running = jobs[-1]
    assert store.update(running.job_id, JobStatus.COMPLETED, metadata={"note": "done"})
    assert store.get(running.job_id).metadata["usage"] == running.metadata["usage"]


def test_a_schema_7_store_migrates_on_open_and_reads_the_same_before_and_after_packing(project: Path):
    store = JobStore(project)
    store.insert_many(_jobs())
    conn = store._connect()
    # the rows as schema 7 wrote them: the usage record's keys in every row
    for seq, text in conn.execute("SELECT seq, metadata FROM jobs").fetchall():
        value = json.loads(text)
        usage = value.get("usage")
        if isinstance(usage, dict) and "u5" in usage:
            value["usage"] = {**dict(zip(("cpu_seconds", "elapsed_seconds", "alloc_cpus", "max_rss_bytes",
                                          "req_mem_bytes"), usage.pop("u5"), strict=True)), **usage}
        conn.execute("UPDATE jobs SET metadata = ? WHERE seq = ?", (json.dumps(value, separators=(",", ":")), seq))
    for seq, text in conn.execute("SELECT seq, progress FROM jobs").fetchall():
        pair = json.loads(text)
        if isinstance(pair, list):
            old_form = {key: v for key, v in zip(("percent", "stage"), pair, strict=True) if v is not None}
            conn.execute("UPDATE jobs SET progress = ? WHERE seq = ?", (json.dumps(old_form, separators=(",", ":")),
                                                                         seq))
    conn.execute("DELETE FROM meta WHERE key IN ('usage_before', 'usage_packed')")
    conn.execute("PRAGMA user_version = 7")
    store.close()
    raw = JobStoreRaw(project)
    before, progress_before = _stored(raw), _progress_texts(raw)  # type: ignore[arg-type]
    assert not any('"u5"' in text for text in before) and not any(t.startswith("[") for t in progress_before)

    store = JobStore(project)  # migrates: nothing is rewritten on open
    assert store._read("PRAGMA user_version", ())[0][0] == SCHEMA_VERSION == 9
    assert _stored(store) == before and _progress_texts(store) == progress_before
    old = _everything(store)
    assert store.compact_samples(batch=9, budget=60.0)  # the daily copier's pass, a batch at a time
    after = _stored(store)
    full = sum('"elapsed_seconds"' in text for text in before)
    assert full == 30 and sum('"u5":[' in text for text in after) == full
    assert not any('"elapsed_seconds"' in text for text in after)
    assert sum(map(len, after)) < sum(map(len, before)) - full * 60
    assert sum(t.startswith("[") for t in _progress_texts(store)) == 24  # the 8 '{}' and 8 with details stay
    new = _everything(store)
    for reader in old:
        assert new[reader] == old[reader], reader
    assert store.compact_samples()  # done: nothing left to pack


class JobStoreRaw:
    """The stored texts read with plain sqlite3 (no migration)."""

    def __init__(self, project: Path) -> None:
        self.conn = sqlite3.connect(ProjectPaths.of(project).db)

    def _read(self, sql: str, params: tuple[object, ...]) -> list[tuple[object, ...]]:
        return self.conn.execute(sql, params).fetchall()
