"""Helpers shared by the scheduler tests (SLURM and PBS adapters follow one shape, so do their tests)."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable, Sequence

import pytest

from celline_jobs_nb.core.errors import SchedulerError
from celline_jobs_nb.monitor import JobMonitor
from celline_jobs_nb.schedulers.base import CommandRunner


class Replay(CommandRunner):
    """Answers commands with recorded or canned outputs: (argv prefix, stdout, stderr, exit status)."""

    def __init__(self, answers: Sequence[tuple[Sequence[str], str, str, int]]) -> None:
        super().__init__()
        self.answers = list(answers)
        self.commands: list[list[str]] = []

    def run(self, args, *, input_text=None, timeout=None, check=True):
        self.calls += 1
        self.commands.append(list(args))
        for prefix, out, err, code in self.answers:
            if list(args[:len(prefix)]) == list(prefix):
                if check and code:
                    raise SchedulerError(f"`{' '.join(args[:2])}` exited {code}: {err.strip()}")
                return subprocess.CompletedProcess(list(args), code, out, err)
        raise AssertionError(f"unexpected command {args}")


def require_service(available: bool, reason: str) -> None:
    """Skip when a service is missing; fail instead when CELLINE_JOBS_REQUIRE_SERVICES=1."""
    if available:
        return
    if os.environ.get("CELLINE_JOBS_REQUIRE_SERVICES") == "1":
        pytest.fail(f"{reason} (CELLINE_JOBS_REQUIRE_SERVICES=1: this must not be skipped)", pytrace=False)
    pytest.skip(reason)


def poll_until(mon: JobMonitor, done: Callable[[], bool], timeout: float = 60, every: float = 0.5,
               calls: list[int] | None = None, *, scheduler: str = "slurm") -> None:
    """Force a poll every ``every`` s until ``done()``; records each poll's scheduler calls."""
    deadline = time.monotonic() + timeout
    while True:
        mon.refresh(force=True)
        if calls is not None:
            calls.append(mon.poll_states()[scheduler].last_calls)
        if done():
            return
        if time.monotonic() > deadline:
            jobs = [(j.job_id, j.name, j.status.value, j.reason) for j in mon.list_jobs()]
            raise AssertionError(f"timed out after {timeout} s: {jobs}")
        time.sleep(every)


def final(mon: JobMonitor, *job_ids: str) -> Callable[[], bool]:
    return lambda: all(mon.get_job(j).status.final for j in job_ids)
