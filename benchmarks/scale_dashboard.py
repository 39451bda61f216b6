"""Scale rows for the dashboard and the default listing (part of section 8, ``bench_scale``).

- ``JobTable`` on a copy of a cached big store (the window indexes are built in the copy, never in
  the shared cache): the one-time build of the indexes, then construct CPU, the state a view
  receives (the synced traits without the constant JS/CSS bundle), kernel RSS growth, and the
  kernel's answer to the view's window requests: a sort change, a filter change (text that matches
  nothing, a rare and a common word, a status chip) and a scroll to any position. Baseline, in the
  same run on the same copy: the design before the windowed table (every active job plus pages of
  500 ended ones in the kernel and the browser; sort and filter over the rows not loaded asked of
  the store with LIKE and unindexed sorts), its code taken from git (``BASELINE_COMMIT``). Each
  design is measured in a fresh process so one's memory never counts for the other.
- ``celline-jobs list`` with no option (bounded: active jobs and the recent ended ones) beside
  ``list --all`` on the same store, each timed as users run it.
"""

from __future__ import annotations

import ast
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from .common import Row

#: The last commit with the paged (not windowed) dashboard: the baseline's widget code.
BASELINE_COMMIT = "c2fde29"
#: The last commit whose store/queries.py has the reads the paged design used (removed since).
PAGED_READS_COMMIT = "ad1714e"
ROOT = Path(__file__).resolve().parents[1]

_BASELINE_PROBE = r"""
import json, sys, time, psutil
from celline_jobs_nb.monitor import JobMonitor
from celline_jobs_nb.widgets import JobTable
project = sys.argv[1]
monitor = JobMonitor(project)
monitor.store.revision()
proc = psutil.Process()
rss0 = proc.memory_info().rss
cpu0 = time.process_time()
table = JobTable(monitor, poll=False, disk_interval=None)
cpu = time.process_time() - cpu0
rss = proc.memory_info().rss - rss0
state = table.get_state()
size = len(json.dumps({k: v for k, v in state.items() if k not in ("_esm", "_css")}, default=str))
def timed(f):
    t0 = time.perf_counter(); f(); return time.perf_counter() - t0
out = {"cpu": cpu, "rss": rss, "bytes": size,
       "chip": timed(lambda: table.search_older("", ["failed"])),
       "miss": timed(lambda: table.search_older("no-job-has-this-text")),
       "sort": timed(lambda: table.top_older("end", True)),
       "more": timed(table.load_older)}
print(json.dumps(out))
"""

_PROBE = r"""
import json, statistics, sys, time, psutil
from celline_jobs_nb.monitor import JobMonitor
from celline_jobs_nb.widgets import JobTable
project = sys.argv[1]
monitor = JobMonitor(project)
monitor.store.revision()
proc = psutil.Process()
rss0 = proc.memory_info().rss
cpu0 = time.process_time()
table = JobTable(monitor, poll=False, disk_interval=None)
cpu = time.process_time() - cpu0
state = table.get_state()
size = len(json.dumps({k: v for k, v in state.items() if k not in ("_esm", "_css")}, default=str))
req = [0]
def ask(offset=0, limit=80, **query):
    req[0] += 1
    t0 = time.perf_counter()
    reply = table.open_window("bench", {"req": req[0], "query": query, "offset": offset, "limit": limit})
    return time.perf_counter() - t0, reply
def worst(cases):
    return max(cases.items(), key=lambda kv: kv[1])
sorts = {}
for key, direction in (("end", "desc"), ("start", "desc"), ("name", "asc"), ("runtime", "desc"), ("status", "asc"),
                       ("submit", "asc")):
    sorts[key] = ask(sort=key, dir=direction)[0]
unindexed = {key: ask(sort=key)[0] for key in ("type", "id")}
filters = {"text that matches nothing": ask(text="no-job-has-this-text")[0],
           "a rare word": ask(text="job1234")[0],
           "a common word": ask(text="count")[0],
           "a part of words": ask(text="ob123")[0],
           "a 1-character word (the newest 20,000 jobs)": ask(text="7")[0],
           "a word and a 1-character one": ask(text="count 7")[0],
           "query syntax typed (literal)": ask(text='"count" OR NEAR(a b) *')[0],
           "status chip failed": ask(statuses=["failed"])[0],
           "common word, sorted by name": ask(text="count", sort="name", dir="asc")[0]}
total = ask()[1]["total"]
scroll = {}
for key in ("submit", "end", "name", "status"):
    for fraction in (0.25, 0.5, 0.75, 1.0):
        offset = max(0, int(total * fraction) - 80)
        scroll[f"{key} at {fraction:.0%}"] = ask(offset=offset, sort=key, dir="asc" if key == "name" else "desc")[0]
rss = proc.memory_info().rss - rss0
print(json.dumps({"cpu": cpu, "rss": rss, "bytes": size, "sorts": sorts, "unindexed": unindexed,
                  "filters": filters, "scroll": scroll, "total": total}))
"""


def _run(script: str, project: Path, env: dict[str, str] | None = None, timeout: float = 1800.0) -> dict:
    # cwd: the package found first is the one on PYTHONPATH (the baseline's), not the checkout's
    result = subprocess.run([sys.executable, "-c", script, str(project)], capture_output=True, text=True,
                            timeout=timeout, env=env, cwd=project.parent)
    if result.returncode != 0:
        raise RuntimeError(f"dashboard probe failed: {result.stderr.strip()[-800:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def _baseline_code(tmp: Path) -> Path | None:
    """This package with the paged dashboard's widget modules of BASELINE_COMMIT in place of the
    windowed ones (the store is today's: it reads today's schema), in ``tmp``; None: no git here."""
    git = shutil.which("git")
    if git is None:
        return None
    shutil.copytree(ROOT / "celline_jobs_nb", tmp / "celline_jobs_nb", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("table.py", "history.py", "_format.py"):
        old = subprocess.run([git, "-C", str(ROOT), "show", f"{BASELINE_COMMIT}:celline_jobs_nb/widgets/{name}"],
                             capture_output=True, timeout=60)
        if old.returncode != 0:
            return None
        (tmp / "celline_jobs_nb" / "widgets" / name).write_bytes(old.stdout)
    old = subprocess.run([git, "-C", str(ROOT), "show", f"{PAGED_READS_COMMIT}:celline_jobs_nb/store/queries.py"],
                         capture_output=True, text=True, timeout=60)
    if old.returncode != 0:
        return None
    queries = tmp / "celline_jobs_nb" / "store" / "queries.py"
    queries.write_text(queries.read_text() + _paged_reads(old.stdout))
    return tmp


def _paged_reads(source: str) -> str:
    """The store reads only the paged dashboard used (``ended_page``, ``search_ended``, ``ended_top``
    and its ``SORT_SQL``), taken from its ``store/queries.py`` and added to today's ``QueriesMixin``."""
    tree = ast.parse(source)
    lines = source.splitlines()
    mixin = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "QueriesMixin")
    names = ("ended_page", "search_ended", "ended_top", "SORT_SQL")
    parts = []
    for node in mixin.body:
        name = getattr(node, "name", None) or getattr(getattr(node, "target", None), "id", None)
        if name in names:
            parts.append("\n".join(lines[node.lineno - 1:node.end_lineno]))
    return ("\n\n# The paged dashboard's reads, from " + PAGED_READS_COMMIT + "\n"
            "from typing import ClassVar  # noqa: E402\n"
            "from ..core.models import ACTIVE_STATUSES  # noqa: E402\n\n\n"
            "class _Paged:\n" + "\n\n".join(parts) + "\n\n\n"
            f"for _name in {names!r}:\n    setattr(QueriesMixin, _name, _Paged.__dict__[_name])\n")


def _build(project: Path) -> float:
    """The one-time build of the window indexes in ``project`` (seconds), as the first open does."""
    script = ("import sys, time\nfrom celline_jobs_nb.store.sqlite import JobStore\n"
              "from celline_jobs_nb.store.window import WindowIndex\n"
              "t0 = time.perf_counter(); WindowIndex(JobStore(sys.argv[1])).ensure(background=False)\n"
              "print('{\"s\": %f}' % (time.perf_counter() - t0))")
    return float(_run(script, project)["s"])


def dashboard_rows(project: Path, total: int, baseline: bool = True) -> list[Row]:
    """The windowed table beside the paged design before it (``baseline=False`` skips the latter)."""
    with tempfile.TemporaryDirectory(prefix="cj-bench-dashboard-") as tmp:
        copy = Path(tmp) / "project"
        shutil.copytree(project, copy, ignore=shutil.ignore_patterns("backups"))
        size0 = (copy / ".celline" / "jobs.db").stat().st_size
        old = None
        if baseline:
            code = _baseline_code(Path(tmp) / "baseline")
            if code is not None:
                env = dict(os.environ, PYTHONPATH=str(code))
                old = _run(_BASELINE_PROBE, copy, env=env)
        build = _build(copy)
        grown = (copy / ".celline" / "jobs.db").stat().st_size - size0
        ours = _run(_PROBE, copy)
    name = "paged table (before)"
    label = f"{total:,} jobs"
    sort_key, sort_s = max(ours["sorts"].items(), key=lambda kv: kv[1])
    filter_key, filter_s = max(ours["filters"].items(), key=lambda kv: kv[1])
    scroll_key, scroll_s = max(ours["scroll"].items(), key=lambda kv: kv[1])

    def base(key: str, scale: float = 1.0) -> float | None:
        return None if old is None else old[key] * scale

    def listing(values: dict[str, float]) -> str:
        return ", ".join(f"{k} {v * 1000:.0f} ms" for k, v in values.items())

    return [
        Row("8. scale", f"dashboard construct CPU, {label}", ours["cpu"], "s", base("cpu"), name,
            target="< 0.5 s", met=ours["cpu"] < 0.5,
            note=f"the first window ({ours['total']:,} top-level rows) and the chip counts; once per database "
                 f"before that, the window indexes: {build:.1f} s, +{grown / 2**20:.0f} MiB on disk"),
        Row("8. scale", f"dashboard initial state, {label}", ours["bytes"] / 1000, "kB", base("bytes", 1e-3), name,
            target="< 200 kB", met=ours["bytes"] < 200_000, note="synced traits without the JS/CSS bundle"),
        Row("8. scale", f"dashboard kernel RSS growth, {label}", ours["rss"] / 2**20, "MiB", base("rss", 2**-20),
            name, target="< 50 MiB", met=ours["rss"] < 50 * 2**20,
            note="after construct and every window request below"),
        Row("8. scale", f"dashboard sort change answered, {label}", sort_s * 1000, "ms", base("sort", 1000),
            f"{name}: first page of the history by end time", target="< 150 ms", met=sort_s < 0.15,
            note=f"slowest of the indexed sorts ({sort_key}): {listing(ours['sorts'])}; unindexed: "
                 f"{listing(ours['unindexed'])}"),
        Row("8. scale", f"dashboard filter change answered, {label}", filter_s * 1000, "ms", base("miss", 1000),
            f"{name}: a text that matches nothing", target="< 150 ms", met=filter_s < 0.15,
            note=f"slowest: {filter_key}; {listing(ours['filters'])}"),
        Row("8. scale", f"dashboard scroll to any position, {label}", scroll_s * 1000, "ms", None, None,
            target="< 100 ms", met=scroll_s < 0.1,
            note=f"slowest: {scroll_key}; median {statistics.median(ours['scroll'].values()) * 1000:.0f} ms over "
                 f"{len(ours['scroll'])} positions (the paged design could not scroll past what it had loaded"
                 + (f"; its 'Load 500 older' took {old['more'] * 1000:.0f} ms)" if old else ")")),
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
