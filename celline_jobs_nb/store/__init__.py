"""Persistence: the SQLite job store, its schema migrations and the legacy jobs.json import."""

from .sqlite import Event, JobStore, JobUpdate, PollState

__all__ = ["Event", "JobStore", "JobUpdate", "PollState"]
