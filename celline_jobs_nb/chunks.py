"""``iter_history``: a long history as DataFrames of about ``chunk`` attempts each, so a project of
millions of jobs is read with bounded memory. Each chunk is ``to_dataframe(per=...)`` of a run of
creation times (cut by ``JobStore.created_bounds`` from the creation-time index)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from .core.errors import InvalidInputError

if TYPE_CHECKING:
    import pandas as pd


def iter_history(source: Any, *, chunk: int = 100_000, per: str = "attempt", since: Any = None, until: Any = None,
                 **filters: Any) -> Iterator[pd.DataFrame]:
    """DataFrames of ``to_dataframe(source, per=per, ...)`` for consecutive runs of about ``chunk``
    jobs, oldest first; together they hold exactly the rows of one ``to_dataframe`` call. With
    ``per="job"`` a chunk holds the jobs whose first attempt was created in its run, each with its
    latest attempt however much later that came (read through the retries' own index)."""
    from .export import _bound, _statuses, _store_of, _types, chunk_frames

    if per not in ("attempt", "job"):
        raise InvalidInputError(f"iter_history(per={per!r}): use per='attempt' or per='job' "
                                "(per='event' is one history(per='event') call)")
    if not isinstance(chunk, int) or chunk < 1:
        raise InvalidInputError(f"invalid chunk={chunk!r}: use a whole number >= 1")
    unknown = set(filters) - {"status", "job_type", "scheduler"}
    if unknown:
        raise InvalidInputError(f"iter_history: unknown filter {sorted(unknown)[0]!r}: use status, job_type, "
                                "scheduler, since or until")
    store = _store_of(source)
    start, end = _bound(since, "since"), _bound(until, "until")
    statuses, types = _statuses(filters.get("status")), _types(filters.get("job_type"))
    yield from chunk_frames(store, chunk, per, statuses, types, filters.get("scheduler"), start, end)  # type: ignore[arg-type]
