"""The kernel side of the dashboard's windows: what each view shows (its query, offset, limit and
expanded rows), answered from the store (``store.window``) and brought up to date each tick by
sending only what changed in it.

The kernel keeps, per view, the ids and rows of its window (at most ``MAX_LIMIT`` rows) and nothing
else of the table: a million-job history stays in the store.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..core.models import JobInfo
from ..store.window import MAX_LIMIT, Query, Windows
from ._format import job_row

#: Views remembered per widget (each display of it, each reload): the oldest is forgotten first.
MAX_VIEWS = 16
#: Rows listed under one expanded row (array tasks, earlier attempts) at most.
MAX_CHILDREN = 2000
MAX_EXPANDED = 50


@dataclass
class ViewWindow:
    """One view's window: the query, the rows [offset, offset + limit), and the rows under the
    expanded ones, as last sent."""

    query: Query
    offset: int
    limit: int
    expanded: tuple[str, ...] = ()
    req: Any = None
    ids: list[str] = field(default_factory=list)
    seqs: list[int] = field(default_factory=list)
    rows: dict[str, dict[str, Any]] = field(default_factory=dict)
    children: dict[str, list[str]] = field(default_factory=dict)
    kids: dict[str, list[int]] = field(default_factory=dict)  # id -> [array tasks, earlier attempts]
    total: int = 0
    loaded: bool = False

    @classmethod
    def from_wire(cls, content: Mapping[str, Any]) -> ViewWindow:
        def number(key: str, default: int, high: int) -> int:
            value = content.get(key)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                return default
            return max(0, min(high, int(value)))

        raw = content.get("expanded")
        expanded = tuple(str(x)[:200] for x in raw[:MAX_EXPANDED]) if isinstance(raw, list) else ()
        req = content.get("req")
        return cls(Query.from_wire(content.get("query")), number("offset", 0, 1 << 40),
                   number("limit", 100, MAX_LIMIT), expanded,
                   req if isinstance(req, (int, str)) and not isinstance(req, bool) and len(str(req)) < 40 else None)


class Viewports:
    """Every view's window over one store."""

    def __init__(self, windows: Windows) -> None:
        self.windows = windows
        self.views: OrderedDict[str, ViewWindow] = OrderedDict()

    def open(self, view: str, window: ViewWindow) -> dict[str, Any]:
        """A view asks for a window: read it and answer with all of it."""
        self.views[view] = window
        self.views.move_to_end(view)
        while len(self.views) > MAX_VIEWS:
            self.views.popitem(last=False)
        self._read(window, {})
        return self.full(window)

    def full(self, window: ViewWindow) -> dict[str, Any]:
        """All of a window: ``ids`` (its rows in order), ``children`` (ids under each expanded row),
        ``rows`` (every row of both), ``kids`` ([array tasks, earlier attempts] each lists under it), ``total``."""
        return {"query": window.query.wire(), "offset": window.offset, "limit": window.limit,
                "ids": list(window.ids), "rows": list(window.rows.values()), "kids": dict(window.kids),
                "children": {p: list(c) for p, c in window.children.items()}, "total": window.total, "full": True}

    def tick(self, changed: Sequence[JobInfo], invalidated: bool) -> dict[str, dict[str, Any]]:
        """After a tick: each view whose window the ``changed`` jobs touch (or every view, when
        ``invalidated``: statuses changed or jobs were added) gets what changed in it."""
        by_id = {job.job_id: job for job in changed}
        parents = {job.array_parent for job in changed if job.array_parent}
        out: dict[str, dict[str, Any]] = {}
        for view, window in self.views.items():
            shown = set(window.rows)
            if not invalidated and not (shown & by_id.keys()) and not (parents & set(window.expanded)):
                continue
            diff = self._read(window, by_id)
            if diff is not None:
                out[view] = diff
        return out

    def _read(self, window: ViewWindow, changed: Mapping[str, JobInfo]) -> dict[str, Any] | None:
        """Read ``window`` again; return what differs from before (None: nothing), or fill it."""
        windows = self.windows
        before_ids, before_rows, before_children = window.ids, window.rows, window.children
        before_total, before_kids = window.total, window.kids
        window.total = windows.cached_total(window.query)
        seqs = windows.seqs(window.query, window.offset, window.limit)
        known = {s: i for s, i in zip(window.seqs, window.ids, strict=False)}
        jobs_by_seq = windows.jobs_by_seq([s for s in seqs if s not in known])
        for seq in seqs:
            if seq in known and known[seq] in changed:
                jobs_by_seq[seq] = changed[known[seq]]
        ids: list[str] = []
        rows: dict[str, dict[str, Any]] = {}
        kept_seqs: list[int] = []
        new_jobs: list[JobInfo] = []
        refs = self._refs([*jobs_by_seq.values(), *changed.values()])
        for seq in seqs:
            job = jobs_by_seq.get(seq)
            if job is not None:
                rows[job.job_id] = self._row(job, refs)
                ids.append(job.job_id)
                new_jobs.append(job)
            elif seq in known:
                ids.append(known[seq])
                rows[known[seq]] = before_rows[known[seq]]
            else:
                continue
            kept_seqs.append(seq)
        top_jobs = {j.job_id: j for j in new_jobs}
        kids = dict(before_kids)
        if new_jobs:
            counted = windows.child_counts(new_jobs)
            for job in new_jobs:
                kids.pop(job.job_id, None)
                if job.job_id in counted:
                    kids[job.job_id] = list(counted[job.job_id])
        kids = {i: n for i, n in kids.items() if i in rows}
        children: dict[str, list[str]] = {}
        for parent in window.expanded:
            if parent not in rows:
                continue
            stale = (parent in changed or parent not in before_children
                     or any(j.array_parent == parent for j in changed.values())
                     or any(c in changed for c in before_children[parent]))
            if not stale:
                children[parent] = before_children[parent]
                for child in children[parent]:
                    rows[child] = before_rows[child]
                continue
            job = top_jobs.get(parent) or changed.get(parent)
            if job is None:
                found = windows.by_ids([parent])
                job = found[0] if found else None
            if job is None:
                continue
            listed = windows.children(job, MAX_CHILDREN)
            children[parent] = [c.job_id for c in listed]
            child_refs = self._refs(listed)
            for child in listed:
                rows[child.job_id] = self._row(child, child_refs)
        window.ids, window.seqs, window.rows, window.children, window.kids = ids, kept_seqs, rows, children, kids
        if not window.loaded:
            window.loaded = True
            return None  # a new window: the caller sends all of it
        sent = [row for i, row in rows.items() if before_rows.get(i) != row]
        if (not sent and ids == before_ids and children == before_children and window.total == before_total
                and kids == before_kids):
            return None
        diff: dict[str, Any] = {"req": window.req, "offset": window.offset, "rows": sent, "total": window.total}
        if ids != before_ids:
            diff["ids"] = ids
        if children != before_children:
            diff["children"] = {p: c for p, c in children.items() if before_children.get(p) != c}
            gone = [p for p in before_children if p not in children]
            if gone:
                diff["collapsed"] = gone
        if kids != before_kids:
            diff["kids"] = kids
        return diff

    def _refs(self, jobs: Iterable[JobInfo]) -> dict[str, tuple[str, str]]:
        """Name and status of the jobs these jobs depend on (the view's "waits for Count S1")."""
        wanted = sorted({d for job in jobs for d in job.depends_on})[:500]
        return self.windows.brief(wanted) if wanted else {}

    @staticmethod
    def _row(job: JobInfo, refs: Mapping[str, tuple[str, str]]) -> dict[str, Any]:
        row = job_row(job)
        if job.depends_on:
            row["dref"] = [[d, *refs[d]] for d in job.depends_on if d in refs]
        return row

    def rows(self) -> Iterable[dict[str, Any]]:
        """Every row some view has (a row shown by two views once)."""
        seen: set[str] = set()
        for window in self.views.values():
            for job_id, row in window.rows.items():
                if job_id not in seen:
                    seen.add(job_id)
                    yield row
