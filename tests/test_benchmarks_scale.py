"""The scale section's assembly: one contributor's crash becomes a MISSED row naming it, and the
other rows still come out (asserts on behaviour, never on timings)."""

from __future__ import annotations

from benchmarks.bench_scale import _part
from benchmarks.common import Row


def test_a_crashing_contributor_becomes_a_missed_row_and_the_rest_comes_out():
    def crashes(project: str, total: int) -> list[Row]:
        raise ImportError("cannot import name 'HISTORY_PAGE'")

    def works(project: str, total: int) -> list[Row]:
        return [Row("8. scale", f"fine, {total:,} jobs", 1.0, "s")]

    rows = _part("dashboard", 10_000, crashes, "p", 10_000) + _part("report", 10_000, works, "p", 10_000)
    assert [r.metric for r in rows] == ["dashboard rows, 10,000 jobs", "fine, 10,000 jobs"]
    assert rows[0].met is False and "ImportError: cannot import name 'HISTORY_PAGE'" in rows[0].note
