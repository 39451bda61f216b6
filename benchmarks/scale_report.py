"""Scale rows for the offline report (part of section 8, ``bench_scale``), on the cached big stores:
ours beside the report as it was before it read the history in chunks (``report_before``: one
DataFrame of the whole history, a dict per job, the table as plain column-major JSON), both
measured in this run.

- Generation: ``write_report`` in a fresh process each (wall, CPU and peak memory of the process).
- File size (target <= 10 MB).
- Opening in Chromium (``report_open.mjs``: the browser started once, the page opened three times;
  the median time from navigation to the table decoded and its first rows shown; target < 2 s),
  then a sort by name, a sort by run time and a filter on the last page.

A report of a cached store would start the project's daily backup (a detached copy of up to 1 GB)
in the middle of the timing: a placeholder backup named with today's time makes none due, and is
removed after.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from .common import Row

REPO = Path(__file__).resolve().parent.parent
OPENS = 3

_PROBE = r"""
import json, resource, sys, time
from celline_jobs_nb.monitor import JobMonitor
which, project, out = sys.argv[1:4]
if which == "before":
    from benchmarks.report_before import write_report
else:
    from celline_jobs_nb.report import write_report
monitor = JobMonitor(project)
started, cpu = time.perf_counter(), time.process_time()
write_report(monitor, out)
print(json.dumps({"s": time.perf_counter() - started, "cpu": time.process_time() - cpu,
                  "peak": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}))
"""


@contextlib.contextmanager
def _no_backup_due(project: Path) -> Iterator[None]:
    backups = project / ".celline" / "backups"
    backups.mkdir(parents=True, exist_ok=True)
    placeholder = backups / f"jobs-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}.db"
    placeholder.touch()
    try:
        yield
    finally:
        placeholder.unlink(missing_ok=True)


def _generate(which: str, project: Path, out: Path) -> dict[str, float]:
    result = subprocess.run([sys.executable, "-c", _PROBE, which, str(project), str(out)], cwd=REPO,
                            capture_output=True, text=True, timeout=3600)
    if result.returncode != 0:
        raise RuntimeError(f"report probe ({which}) failed: {result.stderr.strip()[-500:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def _open(page: Path) -> dict[str, object] | None:
    node = shutil.which("node")
    if node is None or not (REPO / "node_modules" / "playwright-core").is_dir():
        return None
    result = subprocess.run([node, str(Path(__file__).with_name("report_open.mjs")), str(page), str(OPENS)],
                            cwd=REPO, capture_output=True, text=True, timeout=1800)
    if result.returncode != 0:
        return {"failed": result.stderr.strip()[-300:]}
    return json.loads(result.stdout.strip().splitlines()[-1])


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[len(ordered) // 2]


def report_rows(project: Path, total: int) -> list[Row]:
    label = f"{total:,} jobs"
    before_name = "the report before (one DataFrame, plain JSON table)"
    made: dict[str, dict[str, float]] = {}
    sizes: dict[str, int] = {}
    opened: dict[str, dict[str, object] | None] = {}
    with tempfile.TemporaryDirectory() as tmp, _no_backup_due(project):
        for which in ("ours", "before"):
            out = Path(tmp) / f"{which}.html"
            made[which] = _generate(which, project, out)
            sizes[which] = out.stat().st_size
            opened[which] = _open(out)
            out.unlink()
    ours, before = made["ours"], made["before"]
    rows = [
        Row("8. scale", f"`celline-jobs report` generation, {label}", ours["s"], "s", before["s"], before_name,
            note=f"peak memory {ours['peak'] / 2**20:,.0f} MiB (before: {before['peak'] / 2**20:,.0f} MiB), "
                 f"CPU {ours['cpu']:.1f} s (before: {before['cpu']:.1f} s); the history read 100,000 attempts "
                 "at a time, the table packed as it goes; fresh process each"),
        Row("8. scale", f"offline report size, {label}", sizes["ours"] / 1e6, "MB", sizes["before"] / 1e6,
            before_name, target="<= 10 MB", met=sizes["ours"] <= 10e6,
            note="summary, charts and failed jobs complete (the run-time chart: at most 400 dots a type, its box "
                 "and median from every run); the table as gzip of coded column parts, base64"),
    ]
    seen, was = opened["ours"], opened["before"]
    if seen is None:
        rows.append(Row("8. scale", f"offline report opened in Chromium, {label}", 0, "ms",
                        note="not measured: node or node_modules/playwright-core missing (npm ci)"))
        return rows
    if "failed" in seen:
        rows.append(Row("8. scale", f"offline report opened in Chromium, {label}", 0, "ms", target="< 2 s",
                        met=False, note=f"the page did not open: {seen['failed']}"))
        return rows
    ms = _median([float(v) for v in seen["ms"]])  # type: ignore[union-attr]
    was_ms = None if not was or "failed" in was else _median([float(v) for v in was["ms"]])  # type: ignore[union-attr]
    after = (f"then a sort by name {seen['sortName']} ms, by run time {seen['sortRun']} ms, a filter "
             f"{seen['filter']} ms")
    if was and "failed" not in was:
        after += (f" (before: {was['sortName']}, {was['sortRun']}, {was['filter']} ms)")
    rows.append(Row("8. scale", f"offline report opened in Chromium, {label}", ms, "ms", was_ms, before_name,
                    target="< 2 s", met=ms < 2000 and not seen.get("errors"),
                    note=f"median of {OPENS} opens {seen['ms']} (navigation until the table is decoded and its "
                         f"first rows shown: {seen['count']}); {after}"
                         + (f"; errors: {seen['errors']}" if seen.get("errors") else "")))
    return rows
