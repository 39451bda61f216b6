"""``celline-jobs watch`` (and the demo's live table): follow jobs until they end.

On a terminal a live table redrawn in place by rich (the same lines ``list`` prints, columns never
jumping narrower between frames); piped or redirected, one line per status change and nothing cut.
Either way the final table is printed once, and Ctrl-C says how to watch again.
"""

from __future__ import annotations

import shlex
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .core.errors import InvalidInputError
from .core.models import JobInfo, JobStatus, utcnow
from .jobtable import jobs_table, local_time, print_table, print_warnings, rich_console, stale_lines
from .textable import escape, output_width

if TYPE_CHECKING:
    from rich.console import Console

    from .monitor import JobMonitor


def _status_summary(jobs: Sequence[JobInfo]) -> str:
    counts: dict[str, int] = {}
    for job in jobs:
        counts[job.status.value] = counts.get(job.status.value, 0) + 1
    return "  ".join(f"{k}: {v}" for k, v in counts.items())


def watch_command(monitor: JobMonitor) -> str:
    """The command that watches this project again, from the current directory."""
    root = monitor.paths.root
    here = root == Path.cwd().resolve()
    return "celline-jobs watch" if here else f"celline-jobs --project {shlex.quote(str(root))} watch"


def watch(monitor: JobMonitor, *, interval: float = 1.0, job_ids: Sequence[str] | None = None,
          console: Console | None = None, title: str | None = None) -> int:
    """Follow jobs until every watched one is final, then print their table once. Without
    ``job_ids``: the jobs active now or at any time while watching (none active: the recent ones
    ``celline-jobs list`` shows).

    On a terminal: a live table in place (columns never jump narrower between frames). Piped or
    redirected: one line per status change, then the final table with every value in full.
    Ctrl-C stops watching (the jobs keep running) and says how to watch again."""
    if interval <= 0:
        raise InvalidInputError(f"invalid --interval {interval}: use a number of seconds > 0")

    watched: dict[str, None] = {}  # without job_ids: the jobs active at any time while watching

    def jobs_now() -> list[JobInfo]:
        if job_ids is not None:
            return monitor.store.get_many(list(job_ids))
        # Never the whole history (a project of a million jobs): the active jobs through their
        # index, or, when none is active, what `celline-jobs list` shows by default.
        watched.update(dict.fromkeys(job.job_id for job in monitor.store.active()))
        if not watched:
            from .listing import bounded_jobs

            return bounded_jobs(monitor.store)[0]
        return sorted(monitor.store.get_many(list(watched)), key=lambda job: job.created_at)

    def finish(jobs: Sequence[JobInfo]) -> None:
        print_table(jobs_table(jobs, title=title))
        print(_status_summary(jobs))
        print_warnings(stale_lines(monitor))

    try:
        if output_width() is None:
            jobs = _watch_lines(monitor, interval, jobs_now)
        else:
            jobs = _watch_live(monitor, interval, jobs_now, console or rich_console())
    except KeyboardInterrupt:
        finish(jobs_now())
        print(f"stopped watching; the jobs keep running (`{watch_command(monitor)}` to watch again)")
        return 130
    finish(jobs)
    return 0


def _watch_live(monitor: JobMonitor, interval: float, jobs_now: Callable[[], list[JobInfo]],
                console: Console) -> list[JobInfo]:
    from rich.console import Group
    from rich.live import Live
    from rich.text import Text

    memo: dict[str, int] = {}  # one set of column widths for every frame

    def render(jobs: Sequence[JobInfo]) -> Group:
        parts: list[Any] = [jobs_table(jobs, memo=memo), Text(_status_summary(jobs))]
        parts.extend(Text(line, style="yellow") for line in stale_lines(monitor))  # escaped already
        return Group(*parts)

    jobs = jobs_now()
    # transient: the last frame is replaced by the final table, printed once by watch().
    with Live(render(jobs), console=console, refresh_per_second=4, transient=True) as live:
        while not all(j.status.final for j in jobs):
            time.sleep(interval)
            monitor.refresh()
            jobs = jobs_now()
            live.update(render(jobs))
    return jobs


def _watch_lines(monitor: JobMonitor, interval: float, jobs_now: Callable[[], list[JobInfo]]) -> list[JobInfo]:
    """Piped: a line for each job that changes status (no screen to redraw, nothing cut)."""
    seen: dict[str, JobStatus] = {}
    while True:
        monitor.refresh()
        jobs = jobs_now()
        for job in jobs:
            if seen.get(job.job_id) is not job.status:
                seen[job.job_id] = job.status
                reason = f"  {job.reason}" if job.reason and job.status.final else ""
                print(escape(f"{local_time(utcnow())}  {job.job_id}  {job.name}  {job.status.value}{reason}"))
        sys.stdout.flush()
        if all(j.status.final for j in jobs):
            return jobs
        time.sleep(interval)
