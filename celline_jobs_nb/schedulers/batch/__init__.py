"""The flow every batch scheduler shares, written once: submit, settle and cancel in
``BatchScheduler`` (its subclasses fill hooks), the shared rules of units, exit-code files and
reconciliation in ``rules``."""

from __future__ import annotations

from .adapter import BatchScheduler

__all__ = ["BatchScheduler"]
