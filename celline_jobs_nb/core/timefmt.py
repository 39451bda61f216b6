"""How durations read everywhere (CLI, widget fallback, report): "45s", "3m 05s", "1h 02m", "2d 03h"."""

from __future__ import annotations


def format_duration(seconds: float | None, *, tenths_below: float = 0.0) -> str:
    """The two largest units. Durations under ``tenths_below`` seconds keep one decimal ("0.4s"),
    for summaries of quick jobs; None is ""."""
    if seconds is None:
        return ""
    if seconds < tenths_below:
        return f"{max(0.0, seconds):.1f}s"
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
