"""The offline report as it was before it read the history in chunks (commit 5997ae2): one
DataFrame of the whole history, one dict per job, the table as column-major JSON. Kept, unchanged
but for absolute imports, as the baseline of the report rows in ``scale_report`` (run in the same
run as ours). Not used by the package.

Its own description:

Inline CSS, inline JS, inline SVG charts; nothing is fetched (a Content-Security-Policy forbids
it, so a stray URL in job text cannot leak either). Job text is data: the server-rendered parts go
through ``html.escape``, the job table is compressed JSON in base64 in a ``<script
type="application/octet-stream">`` block (``packed_rows``: about 1 MB per 100,000 jobs) that the
page's script decodes and renders with ``textContent`` only.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import html
import json
import os
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from celline_jobs_nb.analytics import STATUS_COLOURS, format_duration, runtime_by_type_svg, summary, timeline_svg
from celline_jobs_nb.core.errors import CellineJobsError
from celline_jobs_nb.core.models import JobStatus, utcnow
from celline_jobs_nb.core.paths import output_target, write_output
from celline_jobs_nb.core.resources import format_memory, format_walltime
from celline_jobs_nb.export import to_dataframe

if TYPE_CHECKING:
    import pandas as pd

    from celline_jobs_nb.monitor import JobMonitor

LOG_LINES = 30
FAILED_LIMIT = 50  # failed jobs shown with their log (newest first); the table lists every job


def write_report(monitor: JobMonitor, path: str | os.PathLike[str], *, since: datetime | None = None,
                 log_lines: int = LOG_LINES, now: datetime | None = None) -> Path:
    """Write the report of ``monitor``'s project (jobs created since ``since``) to ``path``."""
    output_target(path)  # a bad target is reported before the work, not after
    html = render_report(monitor, since=since, log_lines=log_lines, now=now)
    return write_output(path, lambda tmp: tmp.write_text(html, encoding="utf-8"))


def render_report(monitor: JobMonitor, *, since: datetime | None = None, log_lines: int = LOG_LINES,
                  now: datetime | None = None) -> str:
    """The report as HTML text (see ``write_report``)."""
    now = now or utcnow()
    frame = to_dataframe(monitor, per="attempt", since=since)
    project = monitor.paths.root
    counts = frame["status"].value_counts()
    count_text = ", ".join(f"{counts[s.value]} {s.value}" for s in JobStatus if counts.get(s.value, 0))
    rows = [_table_row(row, now) for row in frame.itertuples()]
    script_hash = base64.b64encode(hashlib.sha256(_SCRIPT.encode()).digest()).decode()
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
        f'<p class="meta">{_esc(project)} · generated {_local(now)} · {len(frame)} jobs'
        f"{': ' + _esc(count_text) if count_text else ''}</p>",
        '<nav><a href="#summary">Summary</a> <a href="#timeline">Timeline</a> <a href="#runtime">Run time</a> '
        '<a href="#jobs">All jobs</a> <a href="#failed">Failed jobs</a></nav></header>',
        '<section id="summary"><h2>Summary by type</h2>', _summary_table(frame), "</section>",
        f'<section id="timeline"><h2>Timeline</h2><div class="chart">{timeline_svg(frame, now=now)}</div></section>',
        f'<section id="runtime"><h2>Run time by type</h2><div class="chart">{runtime_by_type_svg(frame)}</div>'
        "</section>",
        '<section id="jobs"><h2>All jobs</h2>',
        '<p><input id="job-filter" type="search" placeholder="Filter by name, id, type, status or reason" '
        'aria-label="Filter jobs"> <span id="job-count"></span></p>',
        '<div class="scroll"><table id="jobs-table"><thead><tr>',
        *(f'<th data-key="{key}" aria-sort="none"><button type="button">{_esc(label)}</button></th>'
          for key, label in _TABLE_COLUMNS),
        "</tr></thead><tbody></tbody></table></div>",
        "<noscript><p>The job table needs JavaScript; the other sections do not.</p></noscript></section>",
        '<section id="failed"><h2>Failed jobs</h2>', _failed_jobs(monitor, frame, log_lines), "</section>",
        f'<script type="application/octet-stream" id="report-data">{packed_rows(rows)}</script>',
        f"<script>{_SCRIPT}</script>",
        "</body></html>",
    ]
    return "\n".join(parts) + "\n"


def packed_rows(rows: list[dict[str, Any]]) -> str:
    """The job table for the page: column-major JSON (times in whole seconds, each time column
    coded as the difference to its previous value, durations to 0.1 s), gzip, base64. A
    1,000,000-job table fits a 10 MB file this way (about 1 MB per 100,000 jobs); the page decodes
    it with DecompressionStream (nothing fetched, so the CSP allows it). Base64 text cannot close
    the script element or carry markup."""
    keys = [key for key, _label in _TABLE_COLUMNS]
    columns: dict[str, list[Any]] = {key: [row.get(key) for row in rows] for key in keys}
    for key in _TIME_KEYS:
        last = 0
        coded: list[int | None] = []
        for value in columns[key]:
            if value is None:
                coded.append(None)
                continue
            seconds = round(value / 1000)
            coded.append(seconds - last)
            last = seconds
        columns[key] = coded
    for key in ("wait", "run"):
        columns[key] = [None if v is None else round(v, 1) for v in columns[key]]
    text = json.dumps({"n": len(rows), "columns": columns, "delta": list(_TIME_KEYS)}, ensure_ascii=False,
                      separators=(",", ":"), allow_nan=False)
    return base64.b64encode(gzip.compress(text.encode("utf-8"), compresslevel=9, mtime=0)).decode("ascii")


_TIME_KEYS = ("submit", "start", "end")


def unpacked_rows(block: str) -> list[dict[str, Any]]:
    """``packed_rows`` read back (what the page's script does): for tests and tools."""
    packed = json.loads(gzip.decompress(base64.b64decode(block)).decode("utf-8"))
    columns = packed["columns"]
    for key in packed["delta"]:
        total = 0
        decoded: list[int | None] = []
        for value in columns[key]:
            if value is None:
                decoded.append(None)
            else:
                total += value
                decoded.append(total * 1000)
        columns[key] = decoded
    return [{key: values[i] for key, values in columns.items()} for i in range(packed["n"])]


# -- pieces --------------------------------------------------------------------------------------

_TABLE_COLUMNS = (
    ("id", "Job ID"), ("name", "Name"), ("type", "Type"), ("status", "Status"), ("attempt", "Attempt"),
    ("submit", "Submitted"), ("start", "Started"), ("end", "Ended"), ("wait", "Waited"), ("run", "Run time"),
    ("exit", "Exit"), ("res", "Resources"), ("reason", "Reason"),
)


def _esc(text: object) -> str:
    return html.escape(str(text), quote=True)


def _missing(value: Any) -> bool:
    import pandas as pd

    return bool(pd.isna(value))


def _ms(value: Any) -> int | None:
    return None if _missing(value) else int(value.timestamp() * 1000)


def _local(value: datetime) -> str:
    return value.astimezone().strftime("%Y-%m-%d %H:%M:%S %Z")


def _table_row(row: Any, now: datetime) -> dict[str, Any]:
    run = None if _missing(row.run_time) else row.run_time.total_seconds()
    if run is None and row.status == "running" and not _missing(row.start_time):
        run = (now - row.start_time.to_pydatetime()).total_seconds()  # so far
    resources = []
    if not _missing(row.cpus):
        resources.append(f"{row.cpus} cpu")
    if not _missing(row.mem_bytes):
        resources.append(format_memory(int(row.mem_bytes)))
    if not _missing(row.walltime):
        resources.append(format_walltime(int(row.walltime.total_seconds())))
    exit_text = "" if _missing(row.exit_code) else str(row.exit_code)
    if not _missing(row.signal):
        exit_text = f"{exit_text} (signal {row.signal})".strip()
    return {
        "id": row.job_id, "name": row.name, "type": row.job_type, "status": row.status,
        "attempt": int(row.attempt), "submit": _ms(row.submit_time), "start": _ms(row.start_time),
        "end": _ms(row.end_time), "wait": None if _missing(row.queue_wait) else row.queue_wait.total_seconds(),
        "run": run, "exit": exit_text, "res": " · ".join(resources),
        "reason": "" if _missing(row.reason) else row.reason,
    }


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


def _failed_jobs(monitor: JobMonitor, frame: pd.DataFrame, log_lines: int) -> str:
    failed = frame[frame["status"] == "failed"].sort_values("created_at", ascending=False)
    if failed.empty:
        return "<p>No job failed.</p>"
    out = []
    for row in failed.head(FAILED_LIMIT).itertuples():
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
    if len(failed) > FAILED_LIMIT:
        out.append(f"<p>… and {len(failed) - FAILED_LIMIT} older failed jobs (see the table above).</p>")
    return "\n".join(out)


def _css() -> str:
    rules = (f".st-{status}{{color:{colour};font-weight:600}}" for status, colour in STATUS_COLOURS.items())
    return _CSS + "".join(rules)


_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:0 auto;max-width:1400px;padding:16px 24px;
color:#111827;background:#fff;font-size:14px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #e5e7eb;padding-bottom:4px}
h3{font-size:15px;margin:0 0 4px}.meta{color:#6b7280;margin:2px 0}nav a{margin-right:12px;color:#2563eb}
table{border-collapse:collapse;font-size:13px}th,td{border-bottom:1px solid #e5e7eb;padding:4px 8px;text-align:left;
vertical-align:top}th{background:#f9fafb;position:sticky;top:0}th button{all:unset;cursor:pointer;font-weight:600}
th[aria-sort=ascending] button::after{content:" \\25B2"}th[aria-sort=descending] button::after{content:" \\25BC"}
td{max-width:420px;overflow-wrap:break-word}#jobs-table td{white-space:nowrap}#jobs-table td.wrap{white-space:normal;
min-width:160px}.scroll{overflow-x:auto}.chart{overflow-x:auto}
#job-filter{width:360px;padding:4px 6px}.failed{border:1px solid #fecaca;border-radius:6px;padding:10px 12px;
margin:10px 0;background:#fffafa}.reason{color:#b91c1c;margin:4px 0}
pre{background:#111827;color:#e5e7eb;padding:8px 10px;border-radius:4px;overflow-x:auto;font-size:12px;
white-space:pre-wrap;overflow-wrap:anywhere;max-height:420px}
"""

# The table: rendered from the JSON block with textContent only; click a header to sort by it
# (again to reverse); missing values stay last either way. Times show in the reader's local time.
_SCRIPT = """
"use strict";
(() => {
  const data = { jobs: [] };
  const table = document.getElementById("jobs-table");
  const tbody = table.tBodies[0];
  const headers = Array.from(table.tHead.rows[0].cells);
  const filter = document.getElementById("job-filter");
  const counter = document.getElementById("job-count");
  const pad = (n) => String(n).padStart(2, "0");
  const time = (ms) => {
    if (ms == null) return "";
    const d = new Date(ms);
    return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
      `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  };
  const duration = (s) => {
    if (s == null) return "";
    if (s < 10) return `${Math.max(0, s).toFixed(1)}s`;
    const t = Math.floor(s), d = Math.floor(t / 86400), h = Math.floor(t % 86400 / 3600);
    const m = Math.floor(t % 3600 / 60), sec = t % 60;
    if (d) return `${d}d ${pad(h)}h`;
    if (h) return `${h}h ${pad(m)}m`;
    if (m) return `${m}m ${pad(sec)}s`;
    return `${sec}s`;
  };
  const wrapped = new Set(["name", "res", "reason"]);
  const numeric = new Set(["attempt", "submit", "start", "end", "wait", "run"]);
  const format = {submit: time, start: time, end: time, wait: duration, run: duration};
  const collator = new Intl.Collator(undefined, {numeric: true, sensitivity: "base"});
  let sortKey = "submit", direction = -1;
  const SHOWN = 2000; // rows in the page at once: a 1,000,000-job table stays quick to sort and filter

  const compare = (a, b) => {
    const x = a[sortKey], y = b[sortKey];
    const xMissing = x == null || x === "", yMissing = y == null || y === "";
    if (xMissing || yMissing) return xMissing === yMissing ? 0 : (xMissing ? 1 : -1);
    const order = numeric.has(sortKey) ? x - y : collator.compare(String(x), String(y));
    return order * direction;
  };

  const render = () => {
    const query = filter.value.trim().toLowerCase();
    const rows = data.jobs.filter((r) => !query ||
      [r.id, r.name, r.type, r.status, r.reason].some((v) => String(v ?? "").toLowerCase().includes(query)));
    rows.sort(compare);
    const body = document.createDocumentFragment();
    for (const row of rows.length > SHOWN ? rows.slice(0, SHOWN) : rows) {
      const tr = document.createElement("tr");
      tr.dataset.status = row.status;
      for (const th of headers) {
        const key = th.dataset.key;
        const td = document.createElement("td");
        const value = row[key];
        td.textContent = format[key] ? format[key](value) : String(value ?? "");
        if (key === "status") td.className = "st-" + row.status;
        if (wrapped.has(key)) td.className = "wrap";
        tr.appendChild(td);
      }
      body.appendChild(tr);
    }
    tbody.replaceChildren(body);
    counter.textContent = `${rows.length} of ${data.jobs.length} jobs` +
      (rows.length > SHOWN ? ` (the first ${SHOWN} shown: filter or sort to see others)` : "");
    for (const th of headers) {
      th.setAttribute("aria-sort", th.dataset.key !== sortKey ? "none" : (direction > 0 ? "ascending" : "descending"));
    }
  };

  for (const th of headers) {
    th.querySelector("button").addEventListener("click", () => {
      direction = th.dataset.key === sortKey ? -direction : 1;
      sortKey = th.dataset.key;
      render();
    });
  }
  filter.addEventListener("input", render);

  // The table's data: base64 of gzip of column-major JSON (see packed_rows in report.py).
  const unpack = async () => {
    const text = document.getElementById("report-data").textContent.trim();
    const binary = atob(text);
    const bytes = new Uint8Array(binary.length);
    for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
    const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("gzip"));
    const packed = JSON.parse(await new Response(stream).text());
    const columns = packed.columns;
    for (const key of packed.delta) {
      let total = 0;
      columns[key] = columns[key].map((v) => (v == null ? null : (total += v) * 1000));
    }
    const keys = Object.keys(columns);
    const rows = new Array(packed.n);
    for (let i = 0; i < packed.n; i++) {
      const row = {};
      for (const key of keys) row[key] = columns[key][i];
      rows[i] = row;
    }
    return rows;
  };
  counter.textContent = "reading the job table…";
  unpack().then((rows) => {
    data.jobs = rows;
    render();
    document.body.dataset.tableReady = "1";
  }, (error) => {
    counter.textContent = `the job table could not be read: ${error}`;
    document.body.dataset.tableReady = "error";
  });
})();
"""
