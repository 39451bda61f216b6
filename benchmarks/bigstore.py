"""Big job stores (100,000 and 1,000,000 jobs) for the scale rows, built once and cached.

Building 1,000,000 jobs takes minutes on 2 CPUs, so a store is built with ``bench_store``'s
generator into ``$CELLINE_JOBS_BENCH_CACHE`` (default ``/tmp/celline-jobs-bench``) and reused by
later runs; a ``complete`` marker says the build finished (a half-built store is rebuilt). The
rows that use a cached store only read it, or write beside it (backups) and clean up after.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

from celline_jobs_nb.store.sqlite import JobStore

CACHE = Path(os.environ.get("CELLINE_JOBS_BENCH_CACHE", "/tmp/celline-jobs-bench"))
_VERSION = "2"  # bump when the generator or the row format changes what a cached store holds


def cached_store(total: int) -> Path:
    """The project directory of a store of ``total`` generated jobs, built if not cached yet."""
    project = CACHE / f"store-{total}"
    marker = project / f"complete-v{_VERSION}"
    if marker.exists():
        return project
    from .bench_store import _jobs

    shutil.rmtree(project, ignore_errors=True)
    project.mkdir(parents=True)
    store = JobStore(project)
    started = time.perf_counter()
    for chunk in range(0, total, 10_000):
        store.insert_many(_jobs(min(10_000, total - chunk), prefix=f"c{chunk}-"))
    # A long history, as a big project has: no job still active (the generator makes one in ten
    # running, which a CLI command would then try to track as local processes).
    conn = store._connect()
    conn.execute("UPDATE jobs SET status = 'completed' WHERE status = 'running'")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    store.close()
    marker.write_text(f"built in {time.perf_counter() - started:.0f} s\n")
    return project


def clear_backups(project: Path) -> None:
    """Remove what a benchmark left in the cached project's backups folder."""
    shutil.rmtree(project / ".celline" / "backups", ignore_errors=True)
