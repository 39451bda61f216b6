"""What the history says: a summary per job type, the top failure reasons, and two charts.

Every function takes a ``JobMonitor``, a ``JobStore`` or a DataFrame from ``to_dataframe`` (one row
per attempt; the charts also take ``per="job"`` frames). The charts come twice: as matplotlib
figures for notebooks (``plot_*``, matplotlib imported inside) and as standalone SVG text
(``*_svg``) for the offline report, which must render with neither matplotlib nor a network.
"""

from __future__ import annotations

import html
import math
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from .core.errors import InvalidInputError
from .core.models import FINAL_STATUSES, JobStatus, utcnow
from .core.timefmt import format_duration as _format_duration
from .export import MissingDependencyError, to_dataframe

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from .monitor import JobMonitor
    from .store.sqlite import JobStore

    Source = JobMonitor | JobStore | pd.DataFrame

# The widget's palette, so a status has one colour everywhere.
STATUS_COLOURS = {
    "pending": "#6b7280", "queued": "#2563eb", "held": "#b45309", "running": "#0891b2",
    "completed": "#15803d", "failed": "#b91c1c", "cancelled": "#7c3aed", "unknown": "#a16207",
}
WAIT_COLOUR = "#cbd5e1"  # the part of a bar before the job started (queued, held, waiting for a parent)
TIMELINE_LIMIT = 200  # more rows than this make an unreadable chart; the newest are shown
LABEL_CHARS = 38
_FINAL_VALUES = frozenset(s.value for s in FINAL_STATUSES)

SUMMARY_COLUMNS = ("jobs", "attempts", "retries", "completed", "failed", "success_rate", "run_time_median",
                   "run_time_p90", "queue_wait_median", "queue_wait_p90", "cpu_efficiency", "mem_efficiency",
                   "top_failures")


# -- tables --------------------------------------------------------------------------------------


def summary(source: Source, **filters: Any) -> pd.DataFrame:
    """One row per job type present, in ``JobType`` order:

    - ``jobs``: pieces of work (a retry chain counts once); ``attempts``; ``retries`` = attempts - jobs
    - ``completed`` / ``failed``: jobs whose latest attempt ended so
    - ``success_rate``: completed / jobs that have ended (NA while none has)
    - ``run_time_median`` / ``_p90``: over completed attempts (failed ones stop early and would skew it)
    - ``queue_wait_median`` / ``_p90``: submit to start, over attempts that started
    - ``cpu_efficiency`` / ``mem_efficiency``: medians over attempts with measured usage (NA otherwise)
    - ``top_failures``: the three most frequent failure reasons, e.g. "exit code 3 (2); OOM (1)"

    ``filters`` go to ``to_dataframe`` when ``source`` is a monitor or store.
    """
    import pandas as pd

    frame = _attempts(source, filters, allow_jobs=False)
    by_type = frame.groupby("job_type", observed=True)
    latest = frame.sort_values(["attempt", "created_at"]).groupby("root_id").tail(1)
    outcomes = pd.DataFrame({
        "job_type": latest["job_type"],
        "ended": latest["status"].isin(_FINAL_VALUES).astype(int),
        "completed": (latest["status"] == "completed").astype(int),
        "failed": (latest["status"] == "failed").astype(int),
    }).groupby("job_type", observed=True).sum()
    ended, completed, failed = outcomes["ended"], outcomes["completed"], outcomes["failed"]
    runs = frame[frame["status"] == "completed"].groupby("job_type", observed=True)["run_time"]
    waits = by_type["queue_wait"]
    reasons = failure_reasons(frame)
    top = {
        job_type: "; ".join(f"{r.reason} ({r.count})" for r in group.head(3).itertuples())
        for job_type, group in reasons.groupby("job_type", observed=True)
    }
    jobs = by_type["root_id"].nunique()
    attempts = by_type.size()
    result = pd.DataFrame({
        "jobs": jobs,
        "attempts": attempts,
        "retries": attempts - jobs,
        "completed": completed,
        "failed": failed,
        "success_rate": (completed / ended.where(ended > 0)).astype("Float64"),
        "run_time_median": runs.median(),
        "run_time_p90": runs.quantile(0.9),
        "queue_wait_median": waits.median(),
        "queue_wait_p90": waits.quantile(0.9),
        "cpu_efficiency": by_type["cpu_efficiency"].median(),
        "mem_efficiency": by_type["mem_efficiency"].median(),
    }, index=jobs.index)
    for column in ("jobs", "attempts", "retries", "completed", "failed"):
        result[column] = result[column].fillna(0).astype("Int64")
    result["top_failures"] = pd.array([top.get(t, "") for t in result.index], dtype="string")
    result.index.name = "job_type"
    return result[list(SUMMARY_COLUMNS)]


def failure_reasons(source: Source, **filters: Any) -> pd.DataFrame:
    """Failed attempts grouped by type and reason, most frequent first, with the newest job of each
    (``last_job_id``: read its log with ``celline-jobs logs ID``). A missing reason is described by
    the exit code or signal."""
    import pandas as pd

    frame = _attempts(source, filters, allow_jobs=False)
    failed = frame[frame["status"] == "failed"].sort_values("created_at")
    labels = [_failure_label(r.reason, r.exit_code, r.signal) for r in failed.itertuples()]
    failed = failed.assign(reason=pd.array(labels, dtype="string"))
    grouped = failed.groupby(["job_type", "reason"], observed=True, sort=False)
    result = pd.DataFrame({"count": grouped.size(), "last_job_id": grouped["job_id"].last()}).reset_index()
    result["count"] = result["count"].astype("Int64")
    return result.sort_values(["count", "job_type"], ascending=[False, True], kind="stable").reset_index(drop=True)


def _failure_label(reason: Any, exit_code: Any, signal: Any) -> str:
    import pandas as pd

    if not pd.isna(reason) and str(reason).strip():
        return str(reason).strip()
    if not pd.isna(signal):
        return f"signal {signal}"
    if not pd.isna(exit_code):
        return f"exit code {exit_code}"
    return "no reason recorded"


def _attempts(source: Source, filters: dict[str, Any], *, allow_jobs: bool) -> pd.DataFrame:
    import pandas as pd

    if not isinstance(source, pd.DataFrame):
        return to_dataframe(source, per="attempt", **filters)
    if filters:
        raise InvalidInputError("filters apply to a monitor or store; filter the DataFrame itself instead")
    if "to_status" in source.columns or ("attempts" in source.columns and not allow_jobs):
        raise InvalidInputError("this needs one row per attempt: pass to_dataframe(monitor, per='attempt')")
    return source


# -- chart data (shared by matplotlib and SVG) ----------------------------------------------------


@dataclass(frozen=True)
class Bar:
    """One row of the timeline: waiting from ``submit`` to ``start`` (None: never started), then
    running until ``end`` (``now`` for a job still running)."""

    job_id: str
    name: str
    status: str
    submit: datetime
    start: datetime | None
    end: datetime

    @property
    def tooltip(self) -> str:
        waited = (self.start or self.end) - self.submit
        lines = [self.name, f"{self.job_id} · {self.status}", f"waited {format_duration(waited.total_seconds())}"]
        if self.start is not None:
            lines[-1] += f" · ran {format_duration((self.end - self.start).total_seconds())}"
        return "\n".join(lines)


def timeline_bars(source: Source, *, limit: int = TIMELINE_LIMIT, now: datetime | None = None,
                  **filters: Any) -> tuple[list[Bar], int]:
    """The newest ``limit`` attempts as timeline bars (oldest first), and how many there were."""
    frame = _attempts(source, filters, allow_jobs=True)
    now = now or utcnow()
    frame = frame.sort_values("submit_time", kind="stable")
    bars = []
    for row in frame.tail(limit).itertuples():
        submit = row.submit_time.to_pydatetime()
        start = None if _missing(row.start_time) else row.start_time.to_pydatetime()
        if not _missing(row.end_time):
            end = row.end_time.to_pydatetime()
        elif row.status in _FINAL_VALUES:
            end = start or submit  # ended without an end time (old records): a zero-length bar
        else:
            end = now
        bars.append(Bar(str(row.job_id), str(row.name), str(row.status), submit, start, max(end, submit)))
    return bars, len(frame)


def runtimes_by_type(source: Source, **filters: Any) -> dict[str, list[float]]:
    """Run seconds of completed attempts, per job type present (``JobType`` order)."""
    frame = _attempts(source, filters, allow_jobs=True)
    done = frame[(frame["status"] == "completed") & frame["run_time"].notna()]
    return {
        str(job_type): sorted(group["run_time"].dt.total_seconds().tolist())
        for job_type, group in done.groupby("job_type", observed=True)
    }


def _missing(value: Any) -> bool:
    import pandas as pd

    return bool(pd.isna(value))


def format_duration(seconds: float) -> str:
    """Durations in summaries: quick jobs keep a decimal ("0.4s")."""
    return _format_duration(seconds, tenths_below=10)

def _unit(max_seconds: float) -> tuple[str, float]:
    """A unit that keeps axis numbers small: seconds, minutes or hours."""
    if max_seconds < 180:
        return "s", 1.0
    if max_seconds < 3 * 3600:
        return "min", 60.0
    return "h", 3600.0


_TIME_STEPS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400,
               172800, 604800, 1209600, 2592000, 7776000, 31536000)


def _time_ticks(t0: float, t1: float, most: int = 8) -> list[float]:
    step = next((s for s in _TIME_STEPS if (t1 - t0) / s <= most), _TIME_STEPS[-1])
    first = math.ceil(t0 / step) * step
    return [first + i * step for i in range(int((t1 - first) // step) + 1)]


def _value_ticks(top: float, most: int = 6) -> list[float]:
    raw = top / most if top > 0 else 1.0
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    return [i * step for i in range(int(top // step) + 2)]


def _local_tz() -> Any:
    return datetime.now().astimezone().tzinfo  # the viewer's zone: times are shown in local time


# -- matplotlib ----------------------------------------------------------------------------------


def plot_timeline(source: Source, *, ax: Axes | None = None, limit: int = TIMELINE_LIMIT,
                  now: datetime | None = None, **filters: Any) -> Figure:
    """A Gantt chart: one bar per attempt, grey while waiting, then coloured by its status."""
    bars, total = timeline_bars(source, limit=limit, now=now, **filters)
    figure, axes = _axes(ax, width=10, height=max(2.5, 0.28 * len(bars) + 1.4))
    from matplotlib import dates as mdates
    from matplotlib.patches import Patch

    for y, bar in enumerate(bars):
        start = bar.start or bar.end
        axes.barh(y, mdates.date2num(start) - mdates.date2num(bar.submit), left=mdates.date2num(bar.submit),
                  height=0.6, color=WAIT_COLOUR)
        if bar.start is not None:
            axes.barh(y, mdates.date2num(bar.end) - mdates.date2num(bar.start), left=mdates.date2num(bar.start),
                      height=0.6, color=STATUS_COLOURS.get(bar.status, "#374151"))
    axes.set_yticks(range(len(bars)), [_label(b.name) for b in bars], fontsize=8)
    axes.set_ylim(len(bars) - 0.5, -0.5)  # oldest at the top, like a log
    locator = mdates.AutoDateLocator(tz=_local_tz())
    axes.xaxis.set_major_locator(locator)
    axes.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator, tz=_local_tz()))
    axes.tick_params(axis="x", labelsize=8)
    statuses = [s.value for s in JobStatus if any(b.status == s.value for b in bars)]
    handles = [Patch(color=WAIT_COLOUR, label="waiting")]
    handles += [Patch(color=STATUS_COLOURS[s], label=s) for s in statuses]
    axes.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8, frameon=False)
    title = "Jobs over time" + (f" (newest {len(bars)} of {total})" if total > len(bars) else "")
    axes.set_title(title)
    if not bars:
        axes.text(0.5, 0.5, "no jobs yet", ha="center", va="center", transform=axes.transAxes)
    return figure


def plot_runtime_by_type(source: Source, *, ax: Axes | None = None, **filters: Any) -> Figure:
    """Run time of completed attempts per job type: a box per type with every run as a dot."""
    runs = runtimes_by_type(source, **filters)
    figure, axes = _axes(ax, width=8, height=max(2.0, 0.6 * len(runs) + 1.2))
    unit, divisor = _unit(max((max(v) for v in runs.values()), default=0.0))
    colour = STATUS_COLOURS["completed"]
    for y, seconds in enumerate(runs.values()):
        # Drawn by hand like the SVG (matplotlib's boxplot changed its orientation argument in 3.10).
        q1, median, q3 = (_quantile(seconds, q) / divisor for q in (0.25, 0.5, 0.75))
        axes.hlines(y, seconds[0] / divisor, seconds[-1] / divisor, color="#9ca3af", zorder=1)
        axes.barh(y, max(q3 - q1, 1e-9), left=q1, height=0.5, color="#dcfce7", edgecolor=colour, zorder=2)
        axes.vlines(median, y - 0.25, y + 0.25, color="#14532d", linewidth=2, zorder=3)
        axes.scatter([s / divisor for s in seconds], [y] * len(seconds), s=14, alpha=0.6, color=colour, zorder=4)
    axes.set_yticks(range(len(runs)), list(runs))
    axes.set_ylim(len(runs) - 0.5, -0.5)
    axes.set_xlim(0, max((max(v) for v in runs.values()), default=1.0) / divisor * 1.05)
    axes.set_xlabel(f"run time ({unit})")
    axes.set_title("Run time of completed jobs by type")
    if not runs:
        axes.text(0.5, 0.5, "no completed jobs yet", ha="center", va="center", transform=axes.transAxes)
    return figure


def _axes(ax: Axes | None, *, width: float, height: float) -> tuple[Figure, Axes]:
    if ax is not None:
        return ax.figure, ax  # type: ignore[return-value]
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise MissingDependencyError(
            "plots need matplotlib: pip install matplotlib (timeline_svg() and runtime_by_type_svg() need nothing)"
        ) from None
    # A Figure, not pyplot: no global figure list to leak into, and no second copy drawn by the
    # notebook's inline backend at the end of the cell.
    figure = Figure(figsize=(width, height), layout="constrained")
    _show_figures_in_notebook(figure)
    return figure, figure.add_subplot()


def _show_figures_in_notebook(figure: Figure) -> None:
    """A Figure made without pyplot displays as text ("<Figure size ...>") in a kernel where
    pyplot has not run yet. Register the PNG formatter then, unless the user chose one."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    formatters = getattr(getattr(shell, "display_formatter", None), "formatters", None)
    if not formatters:
        return
    for mime in ("image/png", "image/svg+xml", "application/pdf", "image/jpeg"):
        try:
            formatters[mime].lookup(figure)
            return
        except KeyError:
            continue
    try:
        from matplotlib_inline.backend_inline import set_matplotlib_formats
    except ImportError:
        return
    set_matplotlib_formats("png")


def _label(name: str) -> str:
    name = " ".join(name.split())
    return name if len(name) <= LABEL_CHARS else name[: LABEL_CHARS - 1] + "…"


# -- SVG -----------------------------------------------------------------------------------------
# Text in these charts comes from jobs: every piece goes through _esc (attributes and text alike).


def _esc(text: object) -> str:
    return html.escape(str(text), quote=True)


def _svg_text(x: float, y: float, text: str, *, anchor: str = "start", size: int = 11, fill: str = "#374151",
              extra: str = "") -> str:
    return (f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}" fill="{fill}"{extra}>'
            f"{_esc(text)}</text>")


def _svg_open(width: int, height: float, label: str) -> str:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height:.0f}" '
            f'viewBox="0 0 {width} {height:.0f}" role="img" aria-label="{_esc(label)}" '
            f'font-family="system-ui, -apple-system, Segoe UI, sans-serif">')


def timeline_svg(source: Source, *, limit: int = TIMELINE_LIMIT, now: datetime | None = None, width: int = 960,
                 total: int | None = None, **filters: Any) -> str:
    """The timeline as standalone SVG text (hover a bar for its name, id, wait and run time).
    ``total``: how many attempts there are when ``source`` holds only the newest (a long report)."""
    bars, counted = timeline_bars(source, limit=limit, now=now, **filters)
    total = counted if total is None else total
    label_width, right, top, row = 280, 110, 46, 18
    height = top + max(1, len(bars)) * row + 30
    out = [_svg_open(width, height, "Timeline of jobs coloured by status")]
    title = "Jobs over time" + (f" (newest {len(bars)} of {total})" if total > len(bars) else "")
    out.append(_svg_text(4, 16, title, size=14, fill="#111827", extra=' font-weight="600"'))
    if not bars:
        out.append(_svg_text(label_width, top + 14, "no jobs yet"))
        out.append("</svg>")
        return "\n".join(out)
    t0 = min(b.submit for b in bars).timestamp()
    t1 = max(b.end for b in bars).timestamp()
    t1 = max(t1, t0 + 1.0)
    plot_width = width - label_width - right

    def x(when: datetime | float) -> float:
        seconds = when.timestamp() if isinstance(when, datetime) else when
        return label_width + (seconds - t0) / (t1 - t0) * plot_width

    ticks = _time_ticks(t0, t1)
    span = t1 - t0
    pattern = "%H:%M:%S" if span < 600 else "%H:%M" if span < 2 * 86400 else "%m-%d %H:%M" if span < 60 * 86400 \
        else "%Y-%m-%d"

    bottom = top + len(bars) * row
    for tick in ticks:
        tx = x(tick)
        out.append(f'<line x1="{tx:.1f}" y1="{top - 4}" x2="{tx:.1f}" y2="{bottom}" stroke="#e5e7eb"/>')
        text = datetime.fromtimestamp(tick, timezone.utc).astimezone(_local_tz()).strftime(pattern)
        out.append(_svg_text(tx, bottom + 16, text, anchor="middle", size=10, fill="#6b7280"))
    for i, bar in enumerate(bars):
        y = top + i * row
        out.append(_svg_text(label_width - 8, y + 13, _label(bar.name), anchor="end",
                             extra=f' data-job-id="{_esc(bar.job_id)}"'))
        start = bar.start or bar.end
        parts = [f"<g><title>{_esc(bar.tooltip)}</title>"]
        parts.append(f'<rect x="{x(bar.submit):.1f}" y="{y + 3}" width="{max(1.0, x(start) - x(bar.submit)):.1f}" '
                     f'height="12" fill="{WAIT_COLOUR}"/>')
        if bar.start is not None:
            colour = STATUS_COLOURS.get(bar.status, "#374151")
            parts.append(f'<rect x="{x(bar.start):.1f}" y="{y + 3}" width="{max(1.5, x(bar.end) - x(bar.start)):.1f}" '
                         f'height="12" fill="{colour}" data-status="{_esc(bar.status)}"/>')
        parts.append("</g>")
        out.append("".join(parts))
    statuses = ["waiting", *(s.value for s in JobStatus if any(b.status == s.value for b in bars))]
    for i, status in enumerate(statuses):
        ly = top + i * 16
        colour = WAIT_COLOUR if status == "waiting" else STATUS_COLOURS[status]
        out.append(f'<rect x="{width - right + 14}" y="{ly}" width="10" height="10" fill="{colour}"/>')
        out.append(_svg_text(width - right + 28, ly + 9, status, size=10))
    out.append("</svg>")
    return "\n".join(out)


def runtime_by_type_svg(source: Source | None, *, width: int = 960, runs: Mapping[str, Sequence[float]] | None = None,
                        max_dots: int | None = None, **filters: Any) -> str:
    """Run time of completed attempts per job type as standalone SVG: the box spans the middle
    half of the runs, the dark line is the median, each dot one run. ``runs``: the sorted run
    seconds per type, when the caller has them (``runtimes_by_type``); ``max_dots``: at most this
    many dots per type, spread evenly over the sorted runs (the box and median use every run)."""
    runs = runtimes_by_type(source, **filters) if runs is None else runs
    label_width, right, top, row = 150, 170, 34, 36
    height = top + max(1, len(runs)) * row + 34
    out = [_svg_open(width, height, "Run time of completed jobs by type")]
    out.append(_svg_text(4, 16, "Run time of completed jobs by type", size=14, fill="#111827",
                         extra=' font-weight="600"'))
    if not runs:
        out.append(_svg_text(label_width, top + 14, "no completed jobs yet"))
        out.append("</svg>")
        return "\n".join(out)
    longest = max(max(v) for v in runs.values())
    unit, divisor = _unit(longest)
    ticks = _value_ticks(longest / divisor)
    scale_top = ticks[-1] if ticks[-1] > 0 else 1.0
    plot_width = width - label_width - right

    def x(seconds: float) -> float:
        return label_width + seconds / divisor / scale_top * plot_width

    bottom = top + len(runs) * row
    for tick in ticks:
        tx = label_width + tick / scale_top * plot_width
        out.append(f'<line x1="{tx:.1f}" y1="{top - 4}" x2="{tx:.1f}" y2="{bottom}" stroke="#e5e7eb"/>')
        out.append(_svg_text(tx, bottom + 16, f"{tick:g}", anchor="middle", size=10, fill="#6b7280"))
    out.append(_svg_text(label_width + plot_width / 2, bottom + 30, f"run time ({unit})", anchor="middle", size=10,
                         fill="#6b7280"))
    for i, (job_type, seconds) in enumerate(runs.items()):
        mid = top + i * row + row / 2
        q1, median, q3 = (_quantile(seconds, q) for q in (0.25, 0.5, 0.75))
        out.append(_svg_text(label_width - 8, mid + 4, job_type, anchor="end"))
        out.append(f'<line x1="{x(seconds[0]):.1f}" y1="{mid:.1f}" x2="{x(seconds[-1]):.1f}" y2="{mid:.1f}" '
                   f'stroke="#9ca3af"/>')
        out.append(f'<rect x="{x(q1):.1f}" y="{mid - 9:.1f}" width="{max(1.0, x(q3) - x(q1)):.1f}" height="18" '
                   f'fill="#dcfce7" stroke="{STATUS_COLOURS["completed"]}"/>')
        out.append(f'<line x1="{x(median):.1f}" y1="{mid - 9:.1f}" x2="{x(median):.1f}" y2="{mid + 9:.1f}" '
                   f'stroke="#14532d" stroke-width="2"/>')
        n = len(seconds)
        dots = seconds if max_dots is None or n <= max_dots else \
            [seconds[round(i * (n - 1) / (max_dots - 1))] for i in range(max_dots)]
        for value in dots:
            out.append(f'<circle cx="{x(value):.1f}" cy="{mid:.1f}" r="2.5" fill="{STATUS_COLOURS["completed"]}" '
                       f'fill-opacity="0.6"><title>{_esc(format_duration(value))}</title></circle>')
        out.append(_svg_text(width - right + 10, mid + 4,
                             f"median {format_duration(median)} (n={len(seconds)})", size=10))
    out.append("</svg>")
    return "\n".join(out)


def _quantile(sorted_values: list[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default), on a sorted list."""
    position = (len(sorted_values) - 1) * q
    low, high = math.floor(position), math.ceil(position)
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (position - low)

