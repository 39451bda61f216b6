"""``write_report``: the project's history as ONE self-contained HTML file, readable offline.

Inline CSS, inline JS, inline SVG charts; nothing is fetched (a Content-Security-Policy forbids
it, so a stray URL in job text cannot leak either). Job text is data: the server-rendered parts go
through ``html.escape``, the job table is compressed JSON in base64 in a ``<script
type="application/octet-stream">`` block (``report_table``: about 1 MB per 100,000 jobs) that the
page's script (``report_page``) decodes and renders with ``textContent`` only.

The history is read a chunk at a time (``JobMonitor.iter_history``): a project of a million jobs
is never one DataFrame, nor a million Python objects. The summary, the charts and the failed jobs
are complete; the run-time chart draws at most ``MAX_DOTS`` dots per type (its box and median use
every run).
"""

from __future__ import annotations

import base64
import hashlib
import html
import os
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .analytics import STATUS_COLOURS, TIMELINE_LIMIT, format_duration, runtime_by_type_svg, summary, timeline_svg
from .core.errors import CellineJobsError
from .core.models import JobStatus, utcnow
from .core.paths import output_target, write_output
from .report_page import CSS, SCRIPT
from .report_table import TABLE_COLUMNS, TablePacker, unpacked_rows

if TYPE_CHECKING:
    import pandas as pd

    from .monitor import JobMonitor

__all__ = ["render_report", "unpacked_rows", "write_report"]

LOG_LINES = 30
FAILED_LIMIT = 50  # failed jobs shown with their log (newest first); the table lists every job
CHUNK = 100_000  # attempts read at once
MAX_DOTS = 400  # dots per job type in the run-time chart


def write_report(monitor: JobMonitor, path: str | os.PathLike[str], *, since: datetime | None = None,
                 log_lines: int = LOG_LINES, now: datetime | None = None, chunk: int = CHUNK) -> Path:
    """Write the report of ``monitor``'s project (jobs created since ``since``) to ``path``,
    reading ``chunk`` attempts of the history at a time."""
    output_target(path)  # a bad target is reported before the work, not after
    html = render_report(monitor, since=since, log_lines=log_lines, now=now, chunk=chunk)
    return write_output(path, lambda tmp: tmp.write_text(html, encoding="utf-8"))


def render_report(monitor: JobMonitor, *, since: datetime | None = None, log_lines: int = LOG_LINES,
                  now: datetime | None = None, chunk: int = CHUNK) -> str:
    """The report as HTML text (see ``write_report``)."""
    now = now or utcnow()
    digest = _Digest(now)
    for frame in monitor.iter_history(chunk=chunk, since=since):
        digest.add(frame)
    project = monitor.paths.root
    counts = digest.status_counts
    count_text = ", ".join(f"{counts[s.value]} {s.value}" for s in JobStatus if counts.get(s.value, 0))
    script_hash = base64.b64encode(hashlib.sha256(SCRIPT.encode()).digest()).decode()
    # 'none' for everything but the inline style and this exact script: no fetches, and injected
    # markup could not run handlers even if escaping ever failed.
    csp = f"default-src 'none'; style-src 'unsafe-inline'; img-src data:; script-src 'sha256-{script_hash}'"
    title = f"Celline jobs: {project.name}"
    parts = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f'<meta http-equiv="Content-Security-Policy" content="{csp}">',
        f"<title>{_esc(title)}</title>",
        f"<style>{_css()}</style>",
        "</head><body>",
        f"<header><h1>{_esc(title)}</h1>",
        f'<p class="meta">{_esc(project)} · generated {_local(now)} · {digest.rows} jobs'
        f"{': ' + _esc(count_text) if count_text else ''}</p>",
        '<nav><a href="#summary">Summary</a> <a href="#timeline">Timeline</a> <a href="#runtime">Run time</a> '
        '<a href="#jobs">All jobs</a> <a href="#failed">Failed jobs</a></nav></header>',
        '<section id="summary"><h2>Summary by type</h2>', _summary_table(digest.summary_frame()), "</section>",
        f'<section id="timeline"><h2>Timeline</h2><div class="chart">'
        f"{timeline_svg(digest.timeline_frame(), now=now, total=digest.rows)}</div></section>",
        f'<section id="runtime"><h2>Run time by type</h2><div class="chart">'
        f"{runtime_by_type_svg(None, runs=digest.runs(), max_dots=MAX_DOTS)}</div></section>",
        '<section id="jobs"><h2>All jobs</h2>',
        '<p><input id="job-filter" type="search" placeholder="Filter by name, id, type, status or reason" '
        'aria-label="Filter jobs"> <span id="job-count"></span></p>',
        '<div class="scroll"><table id="jobs-table"><thead><tr>',
        *(f'<th data-key="{key}" aria-sort="none"><button type="button">{_esc(label)}</button></th>'
          for key, label in TABLE_COLUMNS),
        "</tr></thead><tbody></tbody></table></div>",
        '<p><button id="job-more" type="button" hidden></button></p>',
        "<noscript><p>The job table needs JavaScript; the other sections do not.</p></noscript></section>",
        '<section id="failed"><h2>Failed jobs</h2>', _failed_jobs(monitor, digest, log_lines), "</section>",
        f'<script type="application/octet-stream" id="report-data">{digest.table.finish()}</script>',
        f"<script>{SCRIPT}</script>",
        "</body></html>",
    ]
    return "\n".join(parts) + "\n"


#: The columns the summary reads (``analytics.summary``); job and chain ids become 64-bit hashes
#: and reasons are kept for failed attempts only, so a million attempts hold no string per row.
_SUMMARY_COLUMNS = ("job_type", "status", "attempt", "created_at", "run_time", "queue_wait", "cpu_efficiency",
                    "mem_efficiency", "exit_code", "signal")
_TIMELINE_COLUMNS = ("job_id", "name", "status", "submit_time", "start_time", "end_time")
_FAILED_COLUMNS = ("job_id", "name", "job_type", "attempt", "exit_code", "end_time", "reason", "created_at")


class _Digest:
    """What the report needs of the whole history, gathered one chunk at a time: the packed table,
    the summary's columns, the newest attempts for the timeline, completed run times per type, the
    newest failed attempts and the counts."""

    def __init__(self, now: datetime) -> None:
        self.table = TablePacker(now)
        self.rows = 0
        self.status_counts: dict[str, int] = {}
        self.failed = 0
        self._summary: list[pd.DataFrame] = []
        self._timeline: list[pd.DataFrame] = []
        self._failed: list[pd.DataFrame] = []
        self._runs: dict[str, list[Any]] = {}
        self._types: list[str] = []

    def add(self, frame: pd.DataFrame) -> None:
        import pandas as pd

        self.table.add(frame)
        self.rows += len(frame)
        for status, n in frame["status"].value_counts().items():
            self.status_counts[str(status)] = self.status_counts.get(str(status), 0) + int(n)
        if not self._types:
            self._types = [str(t) for t in frame["job_type"].cat.categories]
        failed = frame["status"] == "failed"
        slim = frame[list(_SUMMARY_COLUMNS)].copy()
        slim["reason"] = frame["reason"].where(failed).astype("category")
        slim["root_id"] = pd.util.hash_pandas_object(frame["root_id"], index=False).to_numpy()
        slim["job_id"] = slim["root_id"]
        self._summary.append(slim)
        self._timeline.append(frame.sort_values("submit_time", kind="stable").tail(TIMELINE_LIMIT)
                              [list(_TIMELINE_COLUMNS)])
        self.failed += int(failed.sum())
        self._failed.append(frame[failed].sort_values("created_at", ascending=False, kind="stable").head(FAILED_LIMIT)
                            [list(_FAILED_COLUMNS)])
        done = frame[(frame["status"] == "completed") & frame["run_time"].notna()]
        for job_type, group in done.groupby("job_type", observed=True):
            self._runs.setdefault(str(job_type), []).append(group["run_time"].dt.total_seconds().to_numpy())

    @staticmethod
    def _joined(frames: list[pd.DataFrame]) -> pd.DataFrame:
        import pandas as pd

        kept = [f for f in frames if not f.empty] or frames[:1]
        return pd.concat(kept, ignore_index=True) if len(kept) > 1 else kept[0].reset_index(drop=True)

    def summary_frame(self) -> pd.DataFrame:
        frame = self._joined(self._summary)
        if "reason" in frame and frame["reason"].dtype != "string":
            frame["reason"] = frame["reason"].astype("string")
        return frame

    def timeline_frame(self) -> pd.DataFrame:
        return self._joined(self._timeline).sort_values("submit_time", kind="stable").tail(TIMELINE_LIMIT)

    def failed_frame(self) -> pd.DataFrame:
        return self._joined(self._failed).sort_values("created_at", ascending=False, kind="stable").head(FAILED_LIMIT)

    def runs(self) -> dict[str, Any]:
        import numpy as np

        return {t: np.sort(np.concatenate(self._runs[t])) for t in self._types if t in self._runs}


# -- pieces --------------------------------------------------------------------------------------


def _esc(text: object) -> str:
    return html.escape(str(text), quote=True)


def _missing(value: Any) -> bool:
    import pandas as pd

    return bool(pd.isna(value))


def _local(value: datetime) -> str:
    return value.astimezone().strftime("%Y-%m-%d %H:%M:%S %Z")


def _percent(value: Any) -> str:
    return "–" if _missing(value) else f"{float(value) * 100:.0f}%"


def _duration(value: Any) -> str:
    return "–" if _missing(value) else format_duration(value.total_seconds())


def _summary_table(frame: pd.DataFrame) -> str:
    if frame.empty:
        return "<p>No jobs yet.</p>"
    table = summary(frame)
    head = ("Type", "Jobs", "Attempts", "Retries", "Completed", "Failed", "Success", "Run time median",
            "Run time p90", "Wait median", "Wait p90", "CPU efficiency", "Memory efficiency", "Top failures")
    rows = []
    for job_type, r in table.iterrows():
        cells = (job_type, r["jobs"], r["attempts"], r["retries"], r["completed"], r["failed"],
                 _percent(r["success_rate"]), _duration(r["run_time_median"]), _duration(r["run_time_p90"]),
                 _duration(r["queue_wait_median"]), _duration(r["queue_wait_p90"]), _percent(r["cpu_efficiency"]),
                 _percent(r["mem_efficiency"]), r["top_failures"])
        rows.append("<tr>" + "".join(f"<td>{_esc(c)}</td>" for c in cells) + "</tr>")
    return ('<div class="scroll"><table class="summary"><thead><tr>'
            + "".join(f"<th>{_esc(h)}</th>" for h in head) + "</tr></thead><tbody>" + "".join(rows)
            + "</tbody></table></div>")


def _failed_jobs(monitor: JobMonitor, digest: _Digest, log_lines: int) -> str:
    failed = digest.failed_frame()
    if failed.empty:
        return "<p>No job failed.</p>"
    out = []
    for row in failed.itertuples():
        facts = [row.job_id, row.job_type, f"attempt {row.attempt}"]
        if not _missing(row.exit_code):
            facts.append(f"exit code {row.exit_code}")
        if not _missing(row.end_time):
            facts.append(f"ended {_local(row.end_time.to_pydatetime())}")
        try:
            log_text = monitor.logs(row.job_id, tail=log_lines)
        except CellineJobsError as exc:  # a FIFO or a link out of the project where its log belongs
            log_text = f"(log not shown: {exc})"
        out.append(
            f'<article class="failed" data-job-id="{_esc(row.job_id)}"><h3>{_esc(row.name)}</h3>'
            f'<p class="meta">{_esc(" · ".join(str(f) for f in facts))}</p>'
            + ("" if _missing(row.reason) else f'<p class="reason">{_esc(row.reason)}</p>')
            + f"<p class=\"meta\">Last {log_lines} lines of {_esc(monitor.log_path(row.job_id))}:</p>"
            + f"<pre>{_esc(log_text) if log_text else '(the log is empty or missing)'}</pre></article>"
        )
    if digest.failed > FAILED_LIMIT:
        out.append(f"<p>… and {digest.failed - FAILED_LIMIT} older failed jobs (see the table above).</p>")
    return "\n".join(out)


def _css() -> str:
    rules = (f".st-{status}{{color:{colour};font-weight:600}}" for status, colour in STATUS_COLOURS.items())
    return CSS + "".join(rules)
