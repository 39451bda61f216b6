"""What the widgets send and show, without importing anywidget: table rows, the static HTML
snapshot (for nbconvert/GitHub, where the widget JS does not run) and a plain-text summary.

Rows are compact JSON-ready dicts (None fields left out, times as epoch milliseconds) so that a
table of thousands of jobs stays small on the wire. Every job-provided string that reaches HTML
here goes through ``html.escape``; the browser side renders rows with ``textContent`` only.
"""

from __future__ import annotations

import html
from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import datetime, timezone
from typing import Any

from ..core.models import JobInfo, JobStatus

MAX_COMMAND_CHARS = 300
MAX_TEXT_CHARS = 2000
HTML_SNAPSHOT_LIMIT = 200

STATUS_ORDER = [s.value for s in JobStatus]
STATUS_COLOURS = {
    "pending": "#6b7280", "queued": "#2563eb", "held": "#b45309", "running": "#0891b2",
    "completed": "#15803d", "failed": "#b91c1c", "cancelled": "#7c3aed", "unknown": "#a16207",
}


def epoch_ms(value: datetime | None) -> int | None:
    return None if value is None else int(value.timestamp() * 1000)


def _clip(text: str | None, limit: int = MAX_TEXT_CHARS) -> str | None:
    if text is None:
        return None
    text = str(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def job_row(job: JobInfo) -> dict[str, Any]:
    """The table row of one job. Only fields the view shows; None values are left out."""
    progress = job.progress
    row: dict[str, Any] = {
        "id": job.job_id,
        "name": _clip(job.name),
        "type": job.job_type.value,
        "scheduler": job.scheduler,
        "native": job.native_id,
        "status": job.status.value,
        "pct": None if progress.percent is None else round(float(progress.percent), 1),
        "stage": _clip(progress.stage, 200),
        "pupd": epoch_ms(progress.updated_at),
        "submit": epoch_ms(job.submit_time or job.created_at),
        "start": epoch_ms(job.start_time),
        "end": epoch_ms(job.end_time),
        "exit": job.exit_code,
        "sig": job.signal,
        "res": job.resources.summary() or None,
        "reason": _clip(job.reason, 500),
        "deps": list(job.depends_on) or None,
        "dkind": job.dependency_kind if job.depends_on else None,
        "parent": job.array_parent,
        "idx": job.array_index,
        "attempt": job.attempt if job.attempt != 1 else None,
        "retry_of": job.retry_of,
        "cmd": _clip(job.command, MAX_COMMAND_CHARS),
    }
    return {k: v for k, v in row.items() if v is not None}


def eta_seconds(percent: float | None, start_ms: int | None, updated_ms: int | None,
                now_ms: int | None = None) -> float | None:
    """Seconds left, extrapolated linearly from the time it took to reach ``percent``."""
    if percent is None or start_ms is None or percent <= 0 or percent >= 100:
        return None
    reference = updated_ms if updated_ms is not None else now_ms
    if reference is None or reference <= start_ms:
        return None
    elapsed = (reference - start_ms) / 1000.0
    remaining = elapsed * (100.0 - percent) / percent
    if now_ms is not None and updated_ms is not None:
        remaining -= max(0.0, (now_ms - updated_ms) / 1000.0)
    return max(0.0, remaining)


def format_duration(seconds: float | None) -> str:
    """"45s", "3m 05s", "1h 02m", "2d 03h"."""
    if seconds is None:
        return ""
    total = max(0, int(seconds))
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours:02d}h"
    if hours:
        return f"{hours}h {minutes:02d}m"
    if minutes:
        return f"{minutes}m {secs:02d}s"
    return f"{secs}s"


def format_local_time(ms: int | None) -> str:
    if ms is None:
        return ""
    return datetime.fromtimestamp(ms / 1000, timezone.utc).astimezone().strftime("%Y-%m-%d %H:%M:%S")


def runtime_seconds(row: dict[str, Any], now_ms: int) -> float | None:
    start = row.get("start")
    if start is None:
        return None
    end = row.get("end")
    if end is None:
        if row.get("status") != "running":
            return None
        end = now_ms
    return max(0.0, (end - start) / 1000.0)


def status_counts(rows: Iterable[dict[str, Any]]) -> dict[str, int]:
    counts = Counter(r.get("status", "unknown") for r in rows)
    return {s: counts[s] for s in STATUS_ORDER if counts.get(s)}


def _newest_first(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(rows, key=lambda r: (r.get("submit") or 0, r["id"]), reverse=True)


_HTML_COLUMNS = ("Job ID", "Name", "Type", "Scheduler", "Status", "Progress", "Runtime", "Submitted",
                 "Started", "Ended", "Exit code", "Resources", "Reason")


def _cells(row: dict[str, Any], now_ms: int) -> list[str]:
    progress = ""
    if row.get("pct") is not None:
        progress = f"{row['pct']:g}%"
    if row.get("stage"):
        progress = f"{progress} {row['stage']}".strip()
    exit_text = "" if row.get("exit") is None else str(row["exit"])
    if row.get("sig") is not None:
        exit_text = (exit_text + f" (signal {row['sig']})").strip()
    reason = row.get("reason") or ""
    if not reason and row.get("deps") and row.get("status") == "pending":
        reason = f"waits for {', '.join(row['deps'])} ({row.get('dkind', 'afterok')})"
    return [
        row["id"], row.get("name", ""), row.get("type", ""), row.get("scheduler", ""), row.get("status", ""),
        progress, format_duration(runtime_seconds(row, now_ms)), format_local_time(row.get("submit")),
        format_local_time(row.get("start")), format_local_time(row.get("end")), exit_text, row.get("res", ""),
        reason,
    ]


def html_snapshot(rows: Sequence[dict[str, Any]], *, title: str = "Celline jobs", limit: int = HTML_SNAPSHOT_LIMIT,
                  now_ms: int | None = None) -> str:
    """A static HTML table of the jobs (newest first, at most ``limit``), every string escaped."""
    now = now_ms if now_ms is not None else int(datetime.now(timezone.utc).timestamp() * 1000)
    counts = status_counts(rows)
    summary = ", ".join(f"{n} {s}" for s, n in counts.items()) or "no jobs yet"
    out = [
        '<div class="celline-jobs-snapshot">',
        f"<p><strong>{html.escape(title)}</strong> — {len(rows)} job{'s' if len(rows) != 1 else ''}"
        f" ({html.escape(summary)}); snapshot taken {html.escape(format_local_time(now))}</p>",
        '<table class="celline-jobs-table" border="1" style="border-collapse:collapse;font-size:12px">',
        "<thead><tr>" + "".join(f"<th>{html.escape(c)}</th>" for c in _HTML_COLUMNS) + "</tr></thead>",
        "<tbody>",
    ]
    shown = _newest_first(rows)[:limit]
    for row in shown:
        cells = _cells(row, now)
        status = html.escape(str(row.get("status", "")))
        colour = STATUS_COLOURS.get(row.get("status", ""), "#374151")
        rendered = []
        for column, value in zip(_HTML_COLUMNS, cells, strict=True):
            text = html.escape(str(value))
            if column == "Status":
                text = f'<span style="color:{colour};font-weight:600">{status}</span>'
            rendered.append(f"<td>{text}</td>")
        out.append(f'<tr data-status="{status}">' + "".join(rendered) + "</tr>")
    out.append("</tbody></table>")
    if len(rows) > len(shown):
        out.append(f"<p>… and {len(rows) - len(shown)} older jobs (open the notebook with a kernel to see all).</p>")
    out.append("</div>")
    return "\n".join(out)


def text_summary(rows: Sequence[dict[str, Any]], *, title: str = "Celline jobs", limit: int = 20,
                 now_ms: int | None = None) -> str:
    """A few lines of plain text: counts, then the newest jobs."""
    now = now_ms if now_ms is not None else int(datetime.now(timezone.utc).timestamp() * 1000)
    counts = status_counts(rows)
    summary = ", ".join(f"{n} {s}" for s, n in counts.items()) or "no jobs yet"
    lines = [f"{title}: {len(rows)} job{'s' if len(rows) != 1 else ''} ({summary})"]
    for row in _newest_first(rows)[:limit]:
        runtime = format_duration(runtime_seconds(row, now))
        name = str(row.get("name", "")).replace("\n", " ")
        lines.append(f"  {row['id']}  {row.get('status', ''):<9}  {runtime:>8}  {name}")
    if len(rows) > limit:
        lines.append(f"  … and {len(rows) - limit} more")
    return "\n".join(lines)
