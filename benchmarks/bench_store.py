"""5. The store at 100,000 jobs: insert throughput, a filtered list_jobs, to_dataframe(), and
inserts with 8 concurrent writers. Baseline: the seed's design, a jobs.json rewritten per change.

The jobs look like a real history: a resource request each, progress, and the usage record the
pollers write (CPU time, peak memory; one job in ten ran locally and keeps its 60-sample history
for the sparklines, which leave the row when the job ends), so to_dataframe() reads what it would
read in a real project."""

from __future__ import annotations

import dataclasses
import json
import multiprocessing
import tempfile
import time
from pathlib import Path

from celline_jobs_nb.core.models import JobInfo, JobStatus, JobType, new_job_id
from celline_jobs_nb.core.resources import Resources
from celline_jobs_nb.store.sqlite import JobStore

from .common import Row, timed

_TYPES = list(JobType)
_FIELDS = [f.name for f in dataclasses.fields(JobInfo)]
_STATUSES = [JobStatus.COMPLETED] * 8 + [JobStatus.FAILED, JobStatus.RUNNING]


_RESOURCES = [Resources.parse(r) for r in ("cpus=4,mem=32G,time=4:00:00", "cpus=1,mem=4G", "cpus=8,mem=64G")]


def _usage(i: int) -> dict[str, object]:
    usage: dict[str, object] = {"cpu_seconds": 3600.0 + i % 997, "elapsed_seconds": 1200.0 + i % 389,
                                "alloc_cpus": 4, "max_rss_bytes": (1 + i % 31) * 2**28, "req_mem_bytes": 32 * 2**30}
    if i % 10 == 0:  # a local job: the poller's sample history stays in its record
        usage["samples"] = [[1.8e9 + 2 * k, 95.5, (1 + k % 31) * 2**28] for k in range(60)]
    return usage


def _jobs(n: int, prefix: str = "") -> list[JobInfo]:
    jobs = []
    for i in range(n):
        status = _STATUSES[i % len(_STATUSES)]
        jobs.append(JobInfo(job_id=new_job_id(), name=f"{prefix}job{i}", command=f"bash run{i}.sh", status=status,
                            job_type=_TYPES[i % len(_TYPES)], resources=_RESOURCES[i % len(_RESOURCES)],
                            progress={"percent": 100.0 if status.final else 40.0, "stage": "Aligning"},
                            metadata={"usage": _usage(i)}))
    return jobs


def _writer(args: tuple[str, int, int]) -> None:
    root, worker, count = args
    store = JobStore(root)
    for job in _jobs(count, prefix=f"w{worker}-"):
        store.insert(job)


def run(quick: bool) -> list[Row]:
    total = 10_000 if quick else 100_000
    rows: list[Row] = []
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "p").mkdir()
        store = JobStore(Path(tmp) / "p")
        jobs = _jobs(total)
        start = time.perf_counter()
        for chunk in range(0, total, 1000):
            store.insert_many(jobs[chunk:chunk + 1000])
        bulk = total / (time.perf_counter() - start)
        single = _jobs(2000, prefix="s")
        start = time.perf_counter()
        for job in single:
            store.insert(job)
        one_by_one = len(single) / (time.perf_counter() - start)
        # The seed's design: the whole jobs.json rewritten on every submit (measured at this size).
        legacy = Path(tmp) / "jobs.json"
        records = {j.job_id: j.to_dict() for j in jobs}
        start = time.perf_counter()
        for _ in range(3):
            legacy.write_text(json.dumps(records))
        seed_rate = 1 / ((time.perf_counter() - start) / 3)
        rows.append(Row("5. store", f"insert, one transaction per job ({total:,} in store)", one_by_one, "jobs/s",
                        seed_rate, "jobs.json rewrite per job", note=f"bulk insert_many: {bulk:,.0f} jobs/s"))
        def failed_counts() -> list[JobInfo]:
            return store.list([JobStatus.FAILED], job_types=[JobType.COUNT])

        cold_store = JobStore(Path(tmp) / "p")  # a new connection: an empty page cache
        start = time.perf_counter()
        listed = cold_store.list([JobStatus.FAILED], job_types=[JobType.COUNT])
        cold = time.perf_counter() - start
        start_cpu = time.process_time()
        query = timed(failed_counts, 7)
        query_cpu = (time.process_time() - start_cpu) / 7

        def read_everything() -> None:
            for job in failed_counts():
                for name in _FIELDS:
                    getattr(job, name)

        everything = timed(read_everything, 3)
        # Before: every column of every listed row handed to Python with the row.
        from celline_jobs_nb.store.sqlite import _LIST_SELECT
        from celline_jobs_nb.store.stored_job import rows_to_jobs

        whole_rows = timed(lambda: rows_to_jobs(store._read(
            f"{_LIST_SELECT} WHERE status IN (?) AND job_type IN (?) ORDER BY seq", ["failed", "Count"])), 7)
        plan = "; ".join(r[3] for r in store._read(
            "EXPLAIN QUERY PLAN SELECT job_id FROM jobs WHERE status IN (?) AND job_type IN (?) ORDER BY seq",
            ["failed", "Count"]))
        rows.append(Row("5. store", f"list_jobs(status=failed, type=Count) of {total:,}", query * 1000, "ms",
                        whole_rows * 1000, "every column read with each row (before)",
                        target="< 50 ms with 20% margin (< 40 ms)", met=query < 0.04,
                        note=f"median of 7 ({query_cpu * 1000:.0f} ms CPU), {len(listed):,} jobs; first call on a new "
                             f"connection {cold * 1000:.0f} ms; "
                             f"with every field of every job read: {everything * 1000:.0f} ms; "
                             f"plan: {plan}"))
        import pandas as pd

        from celline_jobs_nb.export import to_dataframe

        frame_time = timed(lambda: to_dataframe(store), 3)
        start_cpu = time.process_time()
        attempt_time = timed(lambda: to_dataframe(store, per="attempt"), 3)
        attempt_cpu = (time.process_time() - start_cpu) / 3
        # The naive design: a frame of every JobInfo's dict (untyped, and no derived columns).
        naive = timed(lambda: pd.DataFrame([job.to_dict() for job in store.list()]), 1)
        rows.append(Row("5. store", f"to_dataframe() of {total:,} jobs", frame_time, "s", naive,
                        "DataFrame of JobInfo dicts", target="< 1 s", met=frame_time < 1.0,
                        note=f"median of 3; per='attempt': {attempt_time:.2f} s ({attempt_cpu:.2f} s CPU)"))
        root = str(Path(tmp) / "concurrent")
        Path(root).mkdir()
        JobStore(root)
        per_writer = 250 if quick else 1000
        start = time.perf_counter()
        with multiprocessing.get_context("spawn").Pool(8) as pool:
            pool.map(_writer, [(root, w, per_writer) for w in range(8)])
        elapsed = time.perf_counter() - start
        count = JobStore(root).count()
        rows.append(Row("5. store", "8 concurrent writers, one transaction per job", 8 * per_writer / elapsed,
                        "jobs/s", target="none lost", met=count == 8 * per_writer,
                        note=f"{count} of {8 * per_writer} rows"))
    return rows
