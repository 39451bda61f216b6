"""What the widgets send and show, without importing anywidget: table rows, the static HTML
snapshot (for nbconvert/GitHub, where the widget JS does not run) and a plain-text summary.

Rows are compact JSON-ready dicts (None fields left out, times as epoch milliseconds) so that a
table of thousands of jobs stays small on the wire. Resource use travels as a few rounded numbers
per row (current CPU % and RSS only while running); the sample history for sparklines only in
``job_detail`` — for the selected job. Every job-provided string that reaches HTML here goes
through ``html.escape``; the browser side renders rows with ``textContent`` only.
"""

from __future__ import annotations

import html
import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

from ..core.models import JobInfo, JobStatus
from ..core.timefmt import format_duration
from ..core.usage import efficiency
from .errorline import error_line

MAX_COMMAND_CHARS = 300
MAX_TEXT_CHARS = 2000
HTML_SNAPSHOT_LIMIT = 200

STATUS_ORDER = [s.value for s in JobStatus]
#: Colour hints (the same thresholds as js/src/usage.js): a job close to its memory request, or
#: one that used little of the CPUs it asked for.
MEM_EFF_HIGH = 90
CPU_EFF_LOW = 25
#: CPU efficiency of a running job is shown once it has run this long (earlier it is noise).
CPU_EFF_MIN_SECONDS = 30
#: Folders shown first in the disk usage line (the rest follow in the monitor's order).
DISK_FOLDERS_FIRST = ("data", "resources", "results")
DISK_LOW_FRACTION = 0.10
WAITING_STATUSES = frozenset({JobStatus.PENDING, JobStatus.QUEUED, JobStatus.HELD})

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
        "maxatt": max_attempts(job),
        "retry_of": job.retry_of,
        "rby": _clip(_text(job.metadata.get("retried_by")), 100),
        "nb": retry_not_before_ms(job),
        "rreason": _clip(_text(job.metadata.get("retry_reason")), 300),
        "cmd": _clip(job.command, MAX_COMMAND_CHARS),
        "err": error_line(job),
        **usage_fields(job),
    }
    return {k: v for k, v in row.items() if v is not None}


# -- resource use, attempts ---------------------------------------------------------------------


def _text(value: Any) -> str | None:
    return None if value is None or value == "" else str(value)


def _num(value: Any) -> float | None:
    """A finite number from job metadata (data written by other processes), else None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def quantize(value: float | None, digits: int = 3) -> int | None:
    """``value`` rounded to ``digits`` significant digits, as an int (bytes shown as "1.23G" need no
    more, and a row whose RSS moved by a few kB is not a changed row)."""
    if value is None or value < 0:
        return None
    number = round(value)
    if number == 0:
        return 0
    scale = 10 ** max(0, math.floor(math.log10(number)) + 1 - digits)
    return int(round(number / scale) * scale)


def _usage(job: JobInfo) -> dict[str, Any]:
    usage = job.metadata.get("usage")
    return usage if isinstance(usage, dict) else {}


def usage_efficiency(job: JobInfo) -> tuple[float | None, float | None]:
    """(CPU, memory) efficiency as fractions of the request; the request comes from the usage
    record (what the scheduler allocated) or else from the job's resources. CPU efficiency of a
    running job is None until it has run CPU_EFF_MIN_SECONDS (before that it is noise)."""
    usage = _usage(job)
    if not usage:
        return None, None
    clean: dict[str, float | None] = {
        key: _num(usage.get(key)) for key in ("cpu_seconds", "elapsed_seconds", "max_rss_bytes")
    }
    clean["alloc_cpus"] = _num(usage.get("alloc_cpus")) or _num(job.resources.cpus)
    clean["req_mem_bytes"] = _num(usage.get("req_mem_bytes")) or _num(job.resources.memory)
    if not clean["elapsed_seconds"] and job.start_time and job.end_time:
        clean["elapsed_seconds"] = (job.end_time - job.start_time).total_seconds()
    cpu_eff, mem_eff = efficiency(clean)
    if not job.status.final and (clean["elapsed_seconds"] or 0.0) < CPU_EFF_MIN_SECONDS:
        cpu_eff = None
    return cpu_eff, mem_eff


def _percent(fraction: float | None) -> int | None:
    return None if fraction is None else round(fraction * 100)


def usage_fields(job: JobInfo) -> dict[str, Any]:
    """The few numbers of a row: ``cpu`` (current %) and ``rss`` (current bytes) while running,
    ``peak`` (bytes), ``ceff`` and ``meff`` (efficiency vs the request, whole percent)."""
    usage = _usage(job)
    if not usage:
        return {}
    fields: dict[str, Any] = {}
    if job.status is JobStatus.RUNNING:
        cpu = _num(usage.get("cpu_percent"))
        fields["cpu"] = None if cpu is None else round(max(0.0, cpu))
        fields["rss"] = quantize(_num(usage.get("rss_bytes")))
    peak = _num(usage.get("max_rss_bytes"))
    fields["peak"] = quantize(peak) if peak else None
    cpu_eff, mem_eff = usage_efficiency(job)
    fields["ceff"] = _percent(cpu_eff)
    fields["meff"] = _percent(mem_eff)
    return {k: v for k, v in fields.items() if v is not None}


def max_attempts(job: JobInfo) -> int | None:
    """max_retries + 1 when the job carries an automatic retry policy, else None."""
    policy = job.metadata.get("retry_policy")
    if not isinstance(policy, dict):
        return None
    retries = policy.get("max_retries")
    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 1:
        return None
    return retries + 1


def retry_not_before_ms(job: JobInfo) -> int | None:
    """When an automatic retry waiting in its backoff may start (epoch ms); None once it started."""
    if job.status not in WAITING_STATUSES or job.start_time is not None:
        return None
    not_before = _num(job.metadata.get("not_before"))
    return None if not not_before else int(not_before * 1000)


def job_detail(job: JobInfo) -> dict[str, Any]:
    """What the selected job's panel shows besides its row: every usage figure and the last
    samples ``[[epoch s, cpu %, rss bytes], ...]`` for the sparklines. Sent for one job only."""
    usage = _usage(job)
    detail: dict[str, Any] = {"id": job.job_id, "status": job.status.value}
    for key in ("cpu_seconds", "elapsed_seconds", "read_bytes", "write_bytes", "alloc_cpus", "req_mem_bytes",
                "max_rss_bytes"):
        value = _num(usage.get(key))
        if value is not None:
            detail[key] = round(value, 1) if key.endswith("seconds") else int(value)
    if "alloc_cpus" not in detail and job.resources.cpus:
        detail["alloc_cpus"] = job.resources.cpus
    if "req_mem_bytes" not in detail and job.resources.memory:
        detail["req_mem_bytes"] = job.resources.memory
    if job.status is JobStatus.RUNNING:
        for key in ("cpu_percent", "rss_bytes"):
            value = _num(usage.get(key))
            if value is not None:
                detail[key] = round(value, 1) if key == "cpu_percent" else int(value)
    sampled = _num(usage.get("sampled_at"))
    if sampled is not None:
        detail["sampled_at"] = int(sampled * 1000)
    samples = []
    raw = usage.get("samples")
    for point in raw if isinstance(raw, list) else []:
        if isinstance(point, (list, tuple)) and len(point) >= 3:
            t, cpu, rss = (_num(v) for v in point[:3])
            if t is not None:
                samples.append([round(t, 1), None if cpu is None else round(cpu, 1),
                                None if rss is None else int(rss)])
    if samples:
        detail["samples"] = samples[-60:]
    cpu_eff, mem_eff = usage_efficiency(job)
    if cpu_eff is not None:
        detail["cpu_eff"] = round(cpu_eff, 3)
    if mem_eff is not None:
        detail["mem_eff"] = round(mem_eff, 3)
    for key, value in (("attempt", job.attempt), ("maxatt", max_attempts(job)), ("retry_of", job.retry_of),
                       ("retried_by", _text(job.metadata.get("retried_by"))),
                       ("retry_reason", _clip(_text(job.metadata.get("retry_reason")), 500)),
                       ("not_before", retry_not_before_ms(job))):
        if value is not None:
            detail[key] = value
    return detail


def disk_wire(disk: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """``JobMonitor.disk_usage()`` as the view gets it: ``{"folders": [[name, bytes], ...],
    "free", "total", "at"}`` with data/, resources/, results/ first. None when unknown."""
    if not isinstance(disk, Mapping):
        return None
    folders_in = disk.get("folders")
    folders: dict[str, int] = {}
    if isinstance(folders_in, Mapping):
        for name, size in folders_in.items():
            value = _num(size)
            if value is not None:
                folders[str(name)[:80]] = int(value)
    ordered = [name for name in DISK_FOLDERS_FIRST if name in folders]
    ordered += [name for name in folders if name not in ordered]
    free, total, at = (_num(disk.get(k)) for k in ("free_bytes", "total_bytes", "measured_at"))
    if free is None and not folders:
        return None
    out: dict[str, Any] = {"folders": [[name, folders[name]] for name in ordered]}
    if free is not None:
        out["free"] = int(free)
    if total:
        out["total"] = int(total)
    if at is not None:
        out["at"] = int(at * 1000)
    return out


def disk_low(disk: Mapping[str, Any] | None) -> bool:
    """Whether less than 10 % of the volume is free (``disk`` in the wire form)."""
    if not disk or not disk.get("total") or disk.get("free") is None:
        return False
    return bool(disk["free"] / disk["total"] < DISK_LOW_FRACTION)


def disk_text(disk: Mapping[str, Any] | None) -> str:
    """"data 1.2G · resources 300M · results 4G · free 120G of 500G (24%)" (wire form in)."""
    if not disk:
        return ""
    parts = [f"{name} {format_bytes(size)}" for name, size in disk.get("folders") or []]
    free, total = disk.get("free"), disk.get("total")
    if free is not None:
        text = f"free {format_bytes(free)}"
        if total:
            text += f" of {format_bytes(total)} ({free / total * 100:.0f}%)"
        parts.append(text)
    return " · ".join(parts)


def format_bytes(value: float | None) -> str:
    """"512B", "12K", "1.5M", "350M", "1.2G" (powers of 1024, like "mem=32G"); the same forms as
    js/src/usage.js formatBytes."""
    if value is None:
        return ""
    number = max(0.0, float(value))
    units = ("B", "K", "M", "G", "T", "P")
    unit = 0
    while number >= 1023.5 and unit < len(units) - 1:  # never "1024K"
        number /= 1024
        unit += 1
    if unit == 0:
        return f"{int(number)}B"
    if number < 9.95:
        text = f"{number:.1f}".removesuffix(".0")
    else:
        text = f"{number:.0f}"
    return f"{text}{units[unit]}"


def attempt_text(row: Mapping[str, Any]) -> str:
    """"2/4" with a retry policy (at most 4 attempts), "2" for a later attempt without one."""
    attempt = row.get("attempt") or 1
    if row.get("maxatt"):
        return f"{attempt}/{row['maxatt']}"
    return str(attempt) if attempt > 1 else ""


def efficiency_text(row: Mapping[str, Any]) -> str:
    parts = []
    if row.get("ceff") is not None:
        parts.append(f"CPU {row['ceff']}%")
    if row.get("meff") is not None:
        parts.append(f"mem {row['meff']}%")
    return " · ".join(parts)


def usage_now_text(row: Mapping[str, Any]) -> str:
    parts = []
    if row.get("cpu") is not None:
        parts.append(f"{row['cpu']}% CPU")
    if row.get("rss") is not None:
        parts.append(format_bytes(row["rss"]))
    return " · ".join(parts)


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


_HTML_COLUMNS = ("Job ID", "Name", "Type", "Scheduler", "Status", "Attempt", "Progress", "Runtime",
                 "CPU / memory now", "Peak memory", "Efficiency", "Submitted", "Started", "Ended", "Exit code",
                 "Resources", "Reason")


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
    if not reason and row.get("nb") is not None:
        reason = f"automatic retry, not before {format_local_time(row['nb'])}"
        if row.get("rreason"):
            reason += f" ({row['rreason']})"
    if not reason and row.get("deps") and row.get("status") == "pending":
        reason = f"waits for {', '.join(row['deps'])} ({row.get('dkind', 'afterok')})"
    if row.get("err") and row["err"] not in reason:
        reason = f"{reason} · {row['err']}".lstrip(" ·")
    if row.get("rby"):
        reason = f"{reason}; retried as {row['rby']}".lstrip("; ")
    peak = format_bytes(row["peak"]) if row.get("peak") is not None else ""
    return [
        row["id"], row.get("name", ""), row.get("type", ""), row.get("scheduler", ""), row.get("status", ""),
        attempt_text(row), progress, format_duration(runtime_seconds(row, now_ms)), usage_now_text(row), peak,
        efficiency_text(row), format_local_time(row.get("submit")), format_local_time(row.get("start")),
        format_local_time(row.get("end")), exit_text, row.get("res", ""), reason,
    ]


def _efficiency_html(row: Mapping[str, Any]) -> str:
    """The efficiency cell with the same colour hints as the widget (numbers only: nothing to escape,
    escaped anyway)."""
    parts = []
    if row.get("ceff") is not None:
        low = row["ceff"] < CPU_EFF_LOW
        text = html.escape(f"CPU {row['ceff']}%")
        parts.append(f'<span style="color:#b45309" title="used little of the requested CPUs">{text}</span>'
                     if low else text)
    if row.get("meff") is not None:
        high = row["meff"] > MEM_EFF_HIGH
        text = html.escape(f"mem {row['meff']}%")
        parts.append(f'<span style="color:#b91c1c;font-weight:600" title="close to the memory request">{text}</span>'
                     if high else text)
    return " · ".join(parts)


def _disk_html(disk: Mapping[str, Any] | None) -> str:
    text = disk_text(disk)
    if not text:
        return ""
    if disk_low(disk):
        return f'<p style="color:#b91c1c;font-weight:600">⚠ Disk: {html.escape(text)} — less than 10% free</p>'
    return f"<p>Disk: {html.escape(text)}</p>"


def _summary(rows: Sequence[dict[str, Any]], counts: Mapping[str, int] | None) -> tuple[str, int]:
    """"3 running, 5 completed" and the number of jobs: from ``counts`` (every job of the project,
    by status) when given, else from ``rows``."""
    given = {s: int(counts[s]) for s in STATUS_ORDER if counts and counts.get(s)} if counts else None
    by_status = given if given is not None else status_counts(rows)
    summary = ", ".join(f"{n:,} {s}" for s, n in by_status.items()) or "no jobs yet"
    return summary, (sum(by_status.values()) if given is not None else len(rows))


def html_snapshot(rows: Sequence[dict[str, Any]], *, title: str = "Celline jobs", limit: int = HTML_SNAPSHOT_LIMIT,
                  now_ms: int | None = None, disk: Mapping[str, Any] | None = None,
                  counts: Mapping[str, int] | None = None) -> str:
    """A static HTML table of the jobs (newest first, at most ``limit``), every string escaped;
    ``disk`` (``disk_wire`` form) adds the project's disk usage line; ``counts``: every job of the
    project by status, when ``rows`` are only the newest (the summary and the line under the table
    count them all)."""
    now = now_ms if now_ms is not None else int(datetime.now(timezone.utc).timestamp() * 1000)
    summary, total = _summary(rows, counts)
    older = max(0, total - len(rows))
    out = [
        '<div class="celline-jobs-snapshot">',
        f"<p><strong>{html.escape(title)}</strong> — {_jobs_count(len(rows), older)}"
        f" ({html.escape(summary)}); snapshot taken {html.escape(format_local_time(now))}</p>",
        *([_disk_html(disk)] if disk_text(disk) else []),
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
            elif column == "Efficiency":
                text = _efficiency_html(row)
            rendered.append(f"<td>{text}</td>")
        out.append(f'<tr data-status="{status}">' + "".join(rendered) + "</tr>")
    out.append("</tbody></table>")
    if len(rows) + older > len(shown):
        out.append(f"<p>… and {len(rows) + older - len(shown):,} older jobs "
                   "(open the notebook with a kernel, or run <code>celline-jobs list --all</code>, to see all).</p>")
    out.append("</div>")
    return "\n".join(out)


def text_summary(rows: Sequence[dict[str, Any]], *, title: str = "Celline jobs", limit: int = 20,
                 now_ms: int | None = None, disk: Mapping[str, Any] | None = None,
                 counts: Mapping[str, int] | None = None) -> str:
    """A few lines of plain text: counts, the disk usage line, then the newest jobs."""
    now = now_ms if now_ms is not None else int(datetime.now(timezone.utc).timestamp() * 1000)
    summary, total = _summary(rows, counts)
    older = max(0, total - len(rows))
    lines = [f"{title}: {_jobs_count(len(rows), older)} ({summary})"]
    if disk_text(disk):
        lines.append(f"  disk: {disk_text(disk)}{' (LOW: less than 10% free)' if disk_low(disk) else ''}")
    for row in _newest_first(rows)[:limit]:
        runtime = format_duration(runtime_seconds(row, now))
        name = str(row.get("name", "")).replace("\n", " ")
        lines.append(f"  {row['id']}  {row.get('status', ''):<9}  {runtime:>8}  {name}")
    if len(rows) + older > limit:
        lines.append(f"  … and {len(rows) + older - limit:,} more")
    return "\n".join(lines)


def _jobs_count(loaded: int, older: int) -> str:
    """"3 jobs", or with ``older`` jobs not among the rows: "200 newest jobs of 1,000,000"."""
    if not older:
        return f"{loaded} job{'s' if loaded != 1 else ''}"
    return f"{loaded:,} newest jobs of {loaded + older:,}"
