"""The commands about jobs: list, status, logs, cancel, retry, submit, queue."""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ..core.errors import InvalidInputError, ParseError
from ..core.models import JobInfo, JobStatus
from ..core.resources import Resources
from ..core.timefmt import format_duration
from ..jobtable import jobs_table as _jobs_table
from ..jobtable import local_time as _local
from ..jobtable import print_jobs_stream as _print_jobs_stream
from ..jobtable import print_lines as _print_lines
from ..jobtable import print_table as _print_table
from ..jobtable import print_warnings as _print_warnings
from ..jobtable import progress_text as _progress_text
from ..jobtable import stale_lines as _stale_lines
from ..jobtable import status_cell as _status_cell
from ..textable import Column, Styled, Table, colour_enabled, escape
from .common import _monitor, _parse_when, _print_json
from .parser import _resource_changes


def cmd_list(args: argparse.Namespace) -> int:
    monitor = _monitor(args)
    monitor.refresh()
    statuses = [JobStatus.parse(s) for s in args.status] if args.status else None
    if args.limit is not None and args.limit < 1:
        raise InvalidInputError(f"invalid --limit {args.limit}: use a number >= 1")
    from ..core.models import JobType

    types = [JobType.parse(args.job_type)] if args.job_type else None
    from ..listing import bounded_jobs, hidden_note, json_rows

    hidden = 0
    parent = monitor.store.resolve(args.array_parent) if args.array_parent else None
    jobs: Iterable[JobInfo]
    if args.all or args.since or args.limit is not None:
        # The newest N straight from the query (filters, order and LIMIT in SQL): a project of a
        # million jobs reads N rows, not every row. Printed oldest first, as without --limit.
        since = _parse_when(args.since) if args.since else None
        if args.limit is None:  # streamed (JSON or table): a batch of rows in memory at a time
            jobs = monitor.store.iter_list(statuses, job_types=types, scheduler=args.scheduler, since=since,
                                           array_parent=parent)
        else:
            jobs = monitor.store.list(statuses, job_types=types, scheduler=args.scheduler, since=since,
                                      array_parent=parent, limit=args.limit, newest_first=args.limit is not None)
            if args.limit is not None:
                jobs.reverse()
    else:  # active jobs and the recent ended ones, in a few indexed reads (listing.py)
        jobs, hidden = bounded_jobs(monitor.store, statuses, job_types=types, scheduler=args.scheduler,
                                    array_parent=parent)
    if args.json:
        sys.stdout.writelines(json_rows(j.to_dict() for j in jobs))
        if hidden:
            print(hidden_note(hidden), file=sys.stderr)
        return 0
    _print_warnings(_stale_lines(monitor))
    if isinstance(jobs, list):  # the bounded listing, or --limit: sized over all its rows
        if jobs:
            _print_table(_jobs_table(jobs))
        shown = len(jobs)
    else:  # --all / --since: printed a batch at a time as the store yields them
        shown = _print_jobs_stream(jobs)
    if not shown:
        print("no jobs" + (" match" if statuses or args.job_type or args.since or parent
                           else " yet: try `celline-jobs submit`"))
        return 0
    if hidden:
        print(hidden_note(hidden))
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    monitor = _monitor(args)
    monitor.refresh()
    job = monitor.get_job(args.job_id)
    events = monitor.store.events(job.job_id)
    if args.json:
        _print_json({**job.to_dict(), "events": [
            {"time": e.time.isoformat(), "from": e.from_status.value if e.from_status else None,
             "to": e.to_status.value, "reason": e.reason, "source": e.source} for e in events]})
        return 0
    rows: list[tuple[str, str | Styled]] = [
        ("Job ID", job.job_id), ("Name", job.name), ("Status", _status_cell(job.status)), ("Type", job.job_type.value),
        ("Scheduler", job.scheduler + (f" (id {job.native_id})" if job.native_id else "")),
        ("Command", job.command), ("Working dir", job.working_dir or ""), ("Log", str(monitor.log_path(job.job_id))),
        ("Resources", job.resources.summary() or "scheduler defaults"), ("Submitted", _local(job.submit_time)),
        ("Started", _local(job.start_time)), ("Ended", _local(job.end_time)),
        ("Runtime", format_duration(job.runtime_seconds)), ("Progress", _progress_text(job)),
        ("Exit code", "" if job.exit_code is None else str(job.exit_code)),
        ("Signal", "" if job.signal is None else str(job.signal)), ("Reason", job.reason or ""),
        ("Attempt", str(job.attempt) + (f" (retry of {job.retry_of})" if job.retry_of else "")),
        ("Depends on", ", ".join(job.depends_on)),
    ]
    details = Table((Column("Label"), Column("Value")), show_header=False)
    for label, value in rows:
        if value:  # a Styled status is never empty
            details.add_row(label, value)
    # Never cut: the whole command and path are the point of this view.
    _print_lines(details.render(width=None, colour=colour_enabled()))
    print()
    for event in events:
        change = f"{event.from_status.value if event.from_status else '-'} -> {event.to_status.value}"
        print(f"  {_local(event.time)}  {change:<22} {escape(event.reason or '')}".rstrip())
    return 0


def cmd_logs(args: argparse.Namespace) -> int:
    monitor = _monitor(args)
    job = monitor.get_job(args.job_id)
    if args.tail < 0:
        raise InvalidInputError(f"invalid --tail {args.tail}: use a number >= 0")
    show = _log_text if not args.raw else str
    if not args.follow:
        text = monitor.logs(job.job_id, tail=args.tail)
        if text:
            sys.stdout.write(show(text) + "\n")
        else:  # said on stderr: `logs ID > file` stays the log itself
            print("(empty log)", file=sys.stderr)
        return 0
    from ..core.logs import LogFollower

    # The last lines come from the follower's own first read, so a line written meanwhile is
    # printed once: neither lost between two reads nor printed twice.
    follower = LogFollower(monitor.log_path(job.job_id))
    first = follower.read_new()
    if first.error:
        raise ParseError(f"cannot follow the log of {job.job_id}: {first.error}")
    complete, newline, partial = first.text.rpartition("\n")
    last = complete.split("\n")[-args.tail:] if newline and args.tail else []
    text = "".join(line + "\n" for line in last) + (partial if args.tail else "")
    if text:
        sys.stdout.write(show(text))
        sys.stdout.flush()
    else:
        print("(empty log so far; following)", file=sys.stderr)
    while True:
        chunk = follower.read_new()
        if chunk.error:
            raise ParseError(f"cannot follow the log of {job.job_id}: {chunk.error}")
        if chunk.reset:
            sys.stdout.write("[log was truncated or replaced]\n")
        if chunk.text:
            sys.stdout.write(show(chunk.text))
            sys.stdout.flush()
        monitor.refresh()
        if monitor.get_job(job.job_id).status.final and not chunk.text:
            final = follower.read_new()  # the last lines written just before the end
            sys.stdout.write(show(final.text))
            return 0
        time.sleep(0.25)


def _log_text(text: str) -> str:
    """Log text with everything that could act on the terminal (title changes, clearing the
    screen, cursor moves) shown escaped, as in the tables; lines and tabs stay as they are."""
    return "\n".join("\t".join(escape(part) for part in line.split("\t")) for line in text.split("\n"))


def cmd_cancel(args: argparse.Namespace) -> int:
    monitor = _monitor(args)
    ids = [monitor.store.resolve(j) for j in args.job_ids]
    results = monitor.cancel_jobs(ids)
    jobs = {j.job_id: j for j in monitor.store.get_many(ids)}
    if args.json:
        _print_json([{"job_id": i, "cancelled": results[i], "status": jobs[i].status.value} for i in ids])
        return 0
    for job_id in ids:
        job = jobs[job_id]
        if results[job_id]:
            print(f"{job_id}: {job.status.value}" + ("" if job.status.final else " (cancel sent)"))
        else:
            print(f"{job_id}: already {job.status.value}, nothing to cancel")
    return 0


def cmd_retry(args: argparse.Namespace) -> int:
    monitor = _monitor(args)
    new_id = monitor.retry_job(args.job_id, _resource_changes(args) or None)
    if args.json:
        _print_json(monitor.get_job(new_id).to_dict())
    else:
        print(new_id)
    return 0


def cmd_submit(args: argparse.Namespace) -> int:
    from ..discover import script_spec
    from ..schedulers import adapter_class

    if bool(args.script) == bool(args.shell_command):
        raise InvalidInputError("give either a SCRIPT or --command CMD (not both, not neither)")
    if args.scheduler and adapter_class(args.scheduler).foreign_runs:  # an unknown name: its own error
        raise InvalidInputError(f"the {args.scheduler} scheduler only follows jobs celline starts itself: "
                                "use --scheduler local, slurm or pbs")
    script = Path(args.script).expanduser().resolve() if args.script else None
    if script is not None and not script.is_file():
        raise InvalidInputError(f"script {args.script!r} does not exist: check the path")
    monitor = _monitor(args)
    job_type = args.job_type
    resources = Resources()
    if script is not None:
        command = f"bash {shlex.quote(str(script))}"
        # A celline script brings its #PBS name, type and resources; options given here win.
        spec = script_spec(script, monitor.paths.root, args.scheduler or monitor.settings.default_scheduler)
        name = args.name or spec.name
        job_type = job_type or spec.job_type
        resources = spec.resources
        metadata: dict[str, Any] = {"script": str(script)}
    else:
        command = args.shell_command
        name = args.name or (command.split() or ["job"])[0]
        metadata = {}
    resources = resources.merged(**_resource_changes(args))
    job_id = monitor.submit_job(
        name, command, resources, scheduler=args.scheduler, job_type=job_type, working_dir=args.workdir,
        depends_on=args.after, dependency_kind="afterany" if args.after_any else "afterok", array=args.array,
        metadata=metadata,
    )
    if args.json:
        _print_json(monitor.get_job(job_id).to_dict())
    else:
        print(job_id)
    return 0


def cmd_queue(args: argparse.Namespace) -> int:
    monitor = _monitor(args)
    if args.attach:
        if not args.scheduler:
            raise InvalidInputError("--attach needs --scheduler, e.g. --scheduler slurm --attach 1234")
        print(monitor.attach(args.scheduler, args.attach))
        return 0
    if args.scheduler:
        entries = monitor.queue(args.scheduler)
        if args.json:
            _print_json([e.__dict__ for e in entries])
            return 0
        # Everyone's jobs, as the scheduler reports them: every cell is escaped like our own.
        table = Table((Column("Native ID"), Column("Name", flexible=True), Column("State"), Column("User"),
                       Column("Reason", flexible=True), Column("Tracked as")))
        for e in entries:
            table.add_row(*(x or "" for x in (e.native_id, e.name, e.state, e.user, e.reason,
                                              e.tracked_job_id or "not tracked")))
        _print_table(table)
        return 0
    monitor.refresh()
    jobs = monitor.list_jobs([s for s in JobStatus if s.active])
    if args.json:
        _print_json([j.to_dict() for j in jobs])
        return 0
    _print_warnings(_stale_lines(monitor))
    if jobs:
        _print_table(_jobs_table(jobs))
    else:
        print("nothing is waiting or running")
    return 0
