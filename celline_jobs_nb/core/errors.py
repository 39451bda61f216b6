"""Typed errors. Every message is one line that names the problem and, where there is one, the fix."""

from __future__ import annotations


class CellineJobsError(Exception):
    """Base of every error this package raises on purpose (the CLI prints these without a traceback)."""


class InvalidInputError(CellineJobsError, ValueError):
    """Something the user passed is malformed (a resource string, a status filter, a job id)."""


class ResourceError(InvalidInputError):
    """A resource request (memory, walltime, cpus...) cannot be parsed or is out of range."""


class JobNotFoundError(CellineJobsError, KeyError):
    """No job with that id (or id prefix) exists in the project."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else "job not found"


class TransitionError(CellineJobsError):
    """A status change that would move a job backwards (e.g. completed -> running)."""


class StoreError(CellineJobsError):
    """The job database cannot be opened, read or written."""


class ParseError(CellineJobsError, ValueError):
    """Scheduler or file output that does not have the expected shape."""


class SchedulerError(CellineJobsError):
    """A scheduler command failed, timed out or is missing."""


class SubmitError(SchedulerError):
    """A job could not be handed to its scheduler."""


class SettingsError(InvalidInputError):
    """A project setting (setting.toml, .celline/jobs.toml) is invalid."""
