"""Scale rows for the dashboard and the default listing (part of section 8, ``bench_scale``).

- ``JobTable`` on a cached big store: construct CPU, the state a view receives (the synced traits
  without the constant JS/CSS bundle), kernel RSS growth, and one "Load older" page. Ours: every
  active job plus the newest ``HISTORY_PAGE`` ended ones. Baseline, in the same run: today's
  full-table design (every job loaded: ``history_page`` as large as the store). Each design is
  measured in a fresh process so one's memory never counts for the other.
- ``celline-jobs list`` with no option (bounded: active jobs and the recent ended ones) beside
  ``list --all`` on the same store, each timed as users run it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from .common import Row

_PROBE = r"""
import json, sys, time, psutil
from celline_jobs_nb.monitor import JobMonitor
from celline_jobs_nb.widgets import JobTable
project, page = sys.argv[1], int(sys.argv[2])
monitor = JobMonitor(project)
monitor.store.revision()
proc = psutil.Process()
rss0 = proc.memory_info().rss
cpu0 = time.process_time()
table = JobTable(monitor, poll=False, disk_interval=None, history_page=page)
cpu = time.process_time() - cpu0
rss = proc.memory_info().rss - rss0
state = table.get_state()
size = len(json.dumps({k: v for k, v in state.items() if k not in ("_esm", "_css")}, default=str))
rows, older = len(table.rows), table.older
t0 = time.perf_counter()
loaded = table.load_older()
more = time.perf_counter() - t0
t0 = time.perf_counter()
table.search_older("", ["failed"])
chip = time.perf_counter() - t0
t0 = time.perf_counter()
table.search_older("no-job-has-this-text")
miss = time.perf_counter() - t0
t0 = time.perf_counter()
table.top_older("runtime", True)
sort = time.perf_counter() - t0
print(json.dumps({"chip_s": chip, "miss_s": miss, "sort_s": sort,
                  "cpu": cpu, "rss": rss, "bytes": size, "rows": rows, "older": older,
                  "more_s": more, "more_rows": loaded}))
"""


def _probe(project: Path, page: int, timeout: float = 900.0) -> dict[str, float]:
    result = subprocess.run([sys.executable, "-c", _PROBE, str(project), str(page)], capture_output=True,
                            text=True, timeout=timeout)
    if result.returncode != 0:
        raise RuntimeError(f"dashboard probe failed: {result.stderr.strip()[-500:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def dashboard_rows(project: Path, total: int, baseline: bool = True) -> list[Row]:
    """The windowed table beside the full-table design (``baseline=False`` skips the latter)."""
    from celline_jobs_nb.widgets.table import HISTORY_PAGE

    ours = _probe(project, HISTORY_PAGE)
    full = _probe(project, total + 1) if baseline else None
    name = "full table (today's design)"
    label = f"{total:,} jobs"

    def base(key: str, scale: float = 1.0) -> float | None:
        return None if full is None else full[key] * scale

    return [
        Row("8. scale", f"dashboard construct CPU, {label}", ours["cpu"], "s", base("cpu"), name,
            target="< 0.5 s", met=ours["cpu"] < 0.5,
            note=f"{ours['rows']:,} rows loaded (active + newest {HISTORY_PAGE} ended), "
                 f"{ours['older']:,} counted only"),
        Row("8. scale", f"dashboard initial state, {label}", ours["bytes"] / 1000, "kB", base("bytes", 1e-3), name,
            target="< 200 kB", met=ours["bytes"] < 200_000, note="synced traits without the JS/CSS bundle"),
        Row("8. scale", f"dashboard kernel RSS growth, {label}", ours["rss"] / 2**20, "MiB", base("rss", 2**-20),
            name, target="< 50 MiB", met=ours["rss"] < 50 * 2**20),
        Row("8. scale", f"dashboard 'Load older' page, {label}", ours["more_s"] * 1000, "ms", target="< 100 ms",
            met=ours["more_s"] < 0.1,
            note=f"{ours['more_rows']} rows read by rowid and sent as one diff; sort and filter run in the "
                 "browser over the loaded rows, and are asked of the store for the rest (row below)"),
        Row("8. scale", f"dashboard filter over the history not loaded, {label}", ours["chip_s"] * 1000, "ms",
            target="< 150 ms", met=max(ours["chip_s"], ours["miss_s"]) < 0.15,
            note=f"a status chip (newest page of failed jobs): {ours['chip_s'] * 1000:.0f} ms; a text that "
                 f"matches nothing (LIKE over every older row; FTS would bound it): {ours['miss_s'] * 1000:.0f} ms"),
        Row("8. scale", f"dashboard sort change over the whole history, {label}", ours["sort_s"] * 1000, "ms",
            target="< 150 ms", met=ours["sort_s"] < 0.15,
            note="sort by run time: the loaded rows re-sort in the browser at once; the first page of the "
                 "whole history in that order comes from the store (no index on the sort column: every row read)"),
    ]


def list_rows(project: Path, total: int, timed: object) -> list[Row]:
    """Default (bounded) `celline-jobs list` beside `list --all`; ``timed(command)`` gives (s, rss)."""
    head = [sys.executable, "-m", "celline_jobs_nb", "--project", str(project), "list"]
    bounded, bounded_rss = timed(head)  # type: ignore[operator]
    filtered, _ = timed([*head, "--status", "failed", "--type", "Count"])  # type: ignore[operator]
    everything, all_rss = timed([*head, "--all"]) if total <= 100_000 else (None, 0)  # type: ignore[operator]
    return [Row("8. scale", f"`celline-jobs list` (bounded default), {total:,} jobs", bounded * 1000, "ms",
                None if everything is None else everything * 1000, "`list --all` (every job, as before)",
                target="--status failed --type Count < 200 ms", met=filtered < 0.2,
                note=f"`--status failed --type Count`: {filtered * 1000:.0f} ms; peak {bounded_rss / 2**20:.0f} MiB"
                     + (f" (--all: {all_rss / 2**20:.0f} MiB)" if everything is not None else "")
                     + "; with interpreter start-up")]


_HISTORY_PROBE = r"""
import json, resource, sys, time
from celline_jobs_nb.monitor import JobMonitor
monitor = JobMonitor(sys.argv[1])
started = time.perf_counter()
if sys.argv[2] == "chunks":
    rows = sum(len(frame) for frame in monitor.iter_history(chunk=100_000))
else:
    rows = len(monitor.history(per="attempt"))
print(json.dumps({"s": time.perf_counter() - started, "rows": rows,
                  "peak": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}))
"""


def history_rows(project: Path, total: int) -> list[Row]:
    """``iter_history(chunk=100_000)`` beside one ``history(per="attempt")``: time and peak memory,
    each in a fresh process."""
    seen = {}
    for how in ("chunks", "whole"):
        result = subprocess.run([sys.executable, "-c", _HISTORY_PROBE, str(project), how], capture_output=True,
                                text=True, timeout=1800)
        if result.returncode != 0:
            raise RuntimeError(f"history probe failed: {result.stderr.strip()[-500:]}")
        seen[how] = json.loads(result.stdout.strip().splitlines()[-1])
    ours, whole = seen["chunks"], seen["whole"]
    return [Row("8. scale", f"history peak memory, {total:,} jobs (iter_history, chunks of 100,000)",
                ours["peak"] / 2**20, "MiB", whole["peak"] / 2**20, "history() in one DataFrame",
                target="< 2 GiB", met=ours["peak"] < 2 * 2**30,
                note=f"{ours['rows']:,} rows in {ours['s']:.1f} s (one DataFrame: {whole['s']:.1f} s)")]
