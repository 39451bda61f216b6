"""The flow every batch scheduler shares, written once: submit, settle and cancel in
``BatchScheduler``, the poll (units, one status query, resolution chain, decide, array summary)
in ``PollFlow`` (``poll.py`` lists the hooks); the shared rules of units, exit-code files and
reconciliation in ``rules``; the job script's shared text (templates, fragments, exports, extra
directives) in ``script``."""

from __future__ import annotations

from .adapter import BatchScheduler
from .poll import PollFlow, PollUnit, RecordSource, SchedulerRecord, Verdict

__all__ = ["BatchScheduler", "PollFlow", "PollUnit", "RecordSource", "SchedulerRecord", "Verdict"]
