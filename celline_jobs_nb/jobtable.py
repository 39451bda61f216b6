"""The jobs table and the lines every terminal front end prints: ``list``, ``status``, ``queue``,
``history``, ``discover``, ``watch``, the quick ``list`` and the demo all show jobs this way.

Below the CLI and beside it (the demo and ``watch`` import this, never the CLI). Job text is
escaped by the table (``textable``); rich loads only for the live displays.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Sequence
from datetime import datetime
from itertools import islice
from typing import TYPE_CHECKING

from .core.models import JobInfo, JobStatus
from .core.timefmt import format_duration
from .textable import Column, Styled, Table, colour_enabled, escape, output_width, paint

if TYPE_CHECKING:
    from rich.console import Console, ConsoleOptions, RenderResult

    from .monitor import JobMonitor

# ANSI SGR parameters: pending grey, queued cyan, held magenta, running bold blue, completed green,
# failed bold red, cancelled yellow, unknown bold magenta.
STATUS_STYLE = {
    "pending": "90", "queued": "36", "held": "35", "running": "1;34",
    "completed": "32", "failed": "1;31", "cancelled": "33", "unknown": "1;35",
}
WARNING_STYLE = "33"  # yellow


def local_time(dt: datetime | None) -> str:
    return dt.astimezone().strftime("%Y-%m-%d %H:%M:%S") if dt else ""


def progress_text(job: JobInfo) -> str:
    p = job.progress
    if p.percent is None:
        return p.stage or ""
    return f"{p.percent:3.0f}%" + (f" {p.stage}" if p.stage else "")


def rich_console() -> Console:
    """The rich console of the live displays (watch, demo), colouring by the same rule as `list`."""
    from rich.console import Console

    return Console(highlight=False, soft_wrap=False, no_color=not colour_enabled())


class ConsoleTable(Table):
    """A table rich draws too: watch's Live and the demo show the very lines `list` prints."""

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        from rich.text import Text

        # The live display is a screen: fit it. Colour codes become rich styles; the console
        # drops them when colour is off.
        yield Text.from_ansi("\n".join(self.render(width=options.max_width, colour=True)), no_wrap=True)


WIDE_TERMINAL = 150  # Scheduler, Submitted and Resources need this many columns on a terminal
JOB_COLUMNS = (
    # On a narrow terminal Reason and Resources are cut first, then Progress and Type, the Name last.
    Column("Job ID"), Column("Name", flexible=True, keep=2, floor=8), Column("Type", flexible=True, keep=1, floor=8),
    Column("Scheduler", min_terminal_width=WIDE_TERMINAL), Column("Status"),
    Column("Progress", flexible=True, keep=1),
    Column("Runtime"), Column("Submitted", min_terminal_width=WIDE_TERMINAL), Column("Exit"),
    Column("Resources", flexible=True, min_terminal_width=WIDE_TERMINAL), Column("Reason", flexible=True),
)


def status_cell(status: JobStatus) -> Styled:
    return Styled(status.value, STATUS_STYLE[status.value])


def jobs_table(jobs: Sequence[JobInfo], title: str | None = None,
               memo: dict[str, int] | None = None) -> ConsoleTable:
    """The one jobs table: list, queue, history, discover, watch and the demo all show this."""
    table = ConsoleTable(JOB_COLUMNS, title=title, memo=memo)
    for job in jobs:
        exit_text = "" if job.exit_code is None else str(job.exit_code)
        if job.signal:
            exit_text = f"sig {job.signal}"
        table.add_row(
            job.job_id, job.name, job.job_type.value, job.scheduler, status_cell(job.status), progress_text(job),
            format_duration(job.runtime_seconds), local_time(job.submit_time or job.created_at), exit_text,
            job.resources.summary(), job.reason or "",
        )
    return table


def print_lines(lines: Sequence[str]) -> None:
    sys.stdout.write("".join(line + "\n" for line in lines))


def print_table(table: Table) -> None:
    """Fitted to the terminal; full values, every column, when piped or redirected."""
    print_lines(table.render(width=output_width(), colour=colour_enabled()))


STREAM_BATCH = 2000  # rows of a streamed table sized and printed at a time


def print_jobs_stream(jobs: Iterable[JobInfo], batch: int = STREAM_BATCH) -> int:
    """``jobs`` as the one jobs table, printed ``batch`` rows at a time (``list --all`` of a million
    jobs holds one batch, never the whole history); returns how many rows were printed.

    The header and the first batch are laid out exactly as ``print_table`` lays out a table of those
    rows (a table of one batch prints the very same lines). Every later batch is laid out with the
    widths shown so far as a floor (``memo``): a column never narrows; it widens from the batch that
    holds a longer value, so piped output still shows every value in full (nothing is cut) and a
    terminal still fits its width (flexible columns end in "…"). The header is printed once.
    """
    width, colour = output_width(), colour_enabled()
    memo: dict[str, int] = {}
    iterator = iter(jobs)
    printed = 0
    while rows := list(islice(iterator, batch)):
        lines = jobs_table(rows, memo=memo).render(width=width, colour=colour)
        print_lines(lines if printed == 0 else lines[1:])  # the header once, above the first batch
        printed += len(rows)
    return printed


def print_warnings(lines: Sequence[str]) -> None:
    colour = colour_enabled()
    for line in lines:
        print(paint(line, WARNING_STYLE, colour))


def stale_lines(monitor: JobMonitor) -> list[str]:
    """One warning per scheduler whose data is stale; escaped, as the error text is the scheduler's."""
    lines = []
    for name, state in monitor.poll_states().items():
        if state.stale:
            when = local_time(state.last_success) or "never"
            lines.append(escape(f"warning: {name} data is stale (last good poll {when}): {state.error}"))
    return lines
