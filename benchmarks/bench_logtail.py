"""4. Log tail: the last 64 KiB of a 2 GiB log, then following 10 MB of appended lines.
Baseline: reading the file line by line into a bounded deque (what a naive tail does)."""

from __future__ import annotations

import collections
import os
import tempfile
import time
import tracemalloc
from pathlib import Path

from celline_jobs_nb.core.logs import LogFollower, tail_lines

from .common import Row, timed

LINE = b"2026-11-28 21:00:00 INFO cellranger count: processed 1,000,000 reads of sample SRR2584863\n"


def run(quick: bool) -> list[Row]:
    size = (256 if quick else 2048) * 1024**2
    appended_total = (2 if quick else 10) * 1024**2
    rows: list[Row] = []
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "big.log"
        with log.open("wb") as handle:  # real bytes, not a sparse file: the page cache sees a real log
            block = LINE * (1024 * 1024 // len(LINE))
            written = 0
            while written < size:
                handle.write(block)
                written += len(block)
        ours = timed(lambda: LogFollower(log).read_new(), 9)
        rows.append(Row("4. log tail", f"open + last 64 KiB of a {written / 2**30:.2f} GiB log", ours * 1000, "ms",
                        target="< 5 ms", met=ours < 0.005))
        baseline_size = 64 * 1024**2
        small = Path(tmp) / "small.log"
        with log.open("rb") as src, small.open("wb") as dst:
            dst.write(src.read(baseline_size))
        naive = timed(lambda: collections.deque(small.open("rb"), maxlen=500), 3) * (written / baseline_size)
        last_lines = timed(lambda: tail_lines(log, 500), 5)
        rows.append(Row("4. log tail", "last 500 lines", last_lines * 1000, "ms", naive * 1000,
                        "deque over every line (scaled from 64 MiB)"))
        follower = LogFollower(log)
        follower.read_new()
        start_read = follower.total_bytes_read
        tracemalloc.start()
        appended = 0
        peak_first = None
        with log.open("ab") as handle:
            while appended < appended_total:
                handle.write(LINE * 100)
                handle.flush()
                appended += len(LINE) * 100
                follower.read_new()
                if peak_first is None:
                    peak_first = tracemalloc.get_traced_memory()[1]
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        read = follower.total_bytes_read - start_read
        rows.append(Row("4. log tail", f"follow {appended / 2**20:.0f} MiB of appends: bytes read / appended",
                        read / appended, "x", target="= 1", met=read == appended))
        rows.append(Row("4. log tail", "follower peak Python memory while following", peak / 1024, "KiB",
                        target="flat", met=peak <= (peak_first or peak) * 2 + 64 * 1024,
                        note=f"after the first append: {(peak_first or 0) / 1024:.0f} KiB"))
        os.unlink(log)
    time.sleep(0)
    return rows
