"""``celline-jobs``: the command line. Never imports widgets or pandas on its hot paths.

Bad input prints one line ``celline-jobs: error: ...`` naming the problem and the fix, and exits 2.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from .core.errors import CellineJobsError, InvalidInputError, ParseError, StoreError
from .core.models import JobInfo, JobStatus, to_utc, utcnow
from .core.resources import Resources
from .core.timefmt import format_duration
from .jobtable import jobs_table as _jobs_table  # the jobs table and lines: shared with watch and the demo
from .jobtable import local_time as _local
from .jobtable import print_lines as _print_lines
from .jobtable import print_table as _print_table
from .jobtable import print_warnings as _print_warnings
from .jobtable import progress_text as _progress_text
from .jobtable import stale_lines as _stale_lines
from .jobtable import status_cell as _status_cell
from .textable import Column, Styled, Table, colour_enabled, escape

if TYPE_CHECKING:
    from .monitor import JobMonitor

EXIT_USAGE = 2


class UsageError(CellineJobsError):
    """Bad command-line usage (reported like argparse's own errors)."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{message} (see `{self.prog} --help`)")


class _Unused:
    """Stands in for the parsers of the commands not asked for (``build_parser(only=...)``)."""

    def add_argument(self, *args: Any, **kwargs: Any) -> None:
        return None


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The whole parser, or (``only``) one with just that command: a command line pays for
    building its own subcommand's options, not for all twenty."""
    parser = _Parser(prog="celline-jobs", description="Submit, follow and review the jobs of a Celline project.")
    parser.add_argument("--project", "-C", default=".", metavar="DIR", help="project directory (default: .)")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser, metavar="COMMAND")

    def add(name: str, help_text: str, *, json_flag: bool = False) -> Any:
        if only is not None and name != only:
            return _Unused()
        p = sub.add_parser(name, help=help_text, description=help_text)
        if json_flag:
            p.add_argument("--json", action="store_true", help="print JSON instead of a table")
        return p

    p = add("list", "list the project's jobs", json_flag=True)
    p.add_argument("--status", "-s", action="append", metavar="S", help="only jobs in status S (repeatable)")
    p.add_argument("--type", "-t", dest="job_type", metavar="TYPE", help="only jobs of this type")
    p.add_argument("--scheduler", metavar="NAME")
    p.add_argument("--limit", "-n", type=int, metavar="N", help="only the newest N jobs")
    p.add_argument("--since", metavar="WHEN", help="every job created since, e.g. 7d, 2026-11-01")
    p.add_argument("--all", action="store_true",
                   help="every job (default: active jobs and the last 50 ended or last 24 h, whichever is more)")
    p.add_argument("--array-parent", metavar="JOB_ID", help="only the tasks of this array job")

    p = add("status", "show one job in detail, with its history", json_flag=True)
    p.add_argument("job_id")

    p = add("logs", "print the end of a job's log")
    p.add_argument("job_id")
    p.add_argument("--tail", "-n", type=int, default=50, metavar="N", help="lines to show (default 50)")
    p.add_argument("--follow", "-f", action="store_true", help="keep printing new lines until the job ends")
    p.add_argument("--raw", action="store_true",
                   help="print the log's bytes as they are (by default terminal control sequences are shown escaped)")

    p = add("cancel", "cancel jobs", json_flag=True)
    p.add_argument("job_ids", nargs="+", metavar="JOB_ID")

    p = add("retry", "submit a finished job again (optionally with other resources)", json_flag=True)
    p.add_argument("job_id")
    _add_resource_args(p)

    p = add("submit", "submit a script or a command", json_flag=True)
    p.add_argument("script", nargs="?", help="a shell script to run")
    p.add_argument("--command", "-c", dest="shell_command", metavar="CMD", help="a shell command to run")
    p.add_argument("--name", help="job name (default: the script's or command's first word)")
    p.add_argument("--type", dest="job_type", default=None,
                   help="Count, Preprocess, Prediction, Integration, Batch Correction or Custom")
    p.add_argument("--scheduler", default=None, help="local, slurm, pbs or sge (default: the project's)")
    p.add_argument("--after", action="append", default=[], metavar="JOB_ID", help="start after this job succeeds")
    p.add_argument("--after-any", action="store_true", help="with --after: start after it ends, however it ends")
    p.add_argument("--array", metavar="SPEC",
                   help="array job indexes, e.g. 1-10%%2: one task per index, with $CELLINE_JOBS_ARRAY_INDEX")
    p.add_argument("--workdir", metavar="DIR", help="working directory (default: the project)")
    _add_resource_args(p)

    p = add("queue", "jobs waiting or running now (with --scheduler: everything the scheduler shows)", json_flag=True)
    p.add_argument("--scheduler", metavar="NAME", help="show this scheduler's whole queue, ours or not")
    p.add_argument("--attach", metavar="NATIVE_ID", help="track a job submitted outside celline-jobs")

    p = add("history", "every job ever run in the project, newest first", json_flag=True)
    p.add_argument("--since", metavar="WHEN", help="e.g. 2h, 3d, 2026-11-01")
    p.add_argument("--until", metavar="WHEN")
    p.add_argument("--status", "-s", action="append", metavar="S")
    p.add_argument("--type", "-t", dest="job_type", metavar="TYPE")
    p.add_argument("--scheduler", metavar="NAME")
    p.add_argument("--events", action="store_true", help="one line per status change instead of per job")
    p.add_argument("--csv", metavar="PATH",
                   help="write the rows to a CSV file instead of printing them (- for standard output)")
    p.add_argument("--parquet", metavar="PATH",
                   help="write the rows to a Parquet file (needs pyarrow; - for standard output)")

    p = add("report", "write a self-contained HTML report (job table, timeline, summary, failed jobs' logs)")
    p.add_argument("--out", "-o", default="report.html", metavar="PATH",
                   help="default: report.html (- for standard output)")
    p.add_argument("--since", metavar="WHEN", help="only jobs created since, e.g. 7d, 2026-11-01")

    p = add("watch", "a live table until every job has ended (Ctrl-C stops watching, not the jobs)")
    p.add_argument("--interval", type=float, default=1.0, metavar="S", help="screen refresh (default 1 s)")

    p = add("progress", "report progress from inside a job script")
    p.add_argument("percent", type=float)
    p.add_argument("stage", nargs="?")
    p.add_argument("--detail", "-d", action="append", default=[], metavar="KEY=VALUE")

    p = add("demo", "create ./celline-jobs-demo and run six realistic jobs in a live table")
    p.add_argument("--dir", default="celline-jobs-demo", help="demo project directory")
    p.add_argument("--no-watch", action="store_true", help="submit and return at once")

    p = add("db", "back up the job database, or recover it from the newest intact backup")
    p.add_argument("action", choices=("backup", "recover", "check"))

    p = add("export-json", "write every job to a jobs.json file (the seed's format)")
    p.add_argument("path", nargs="?", help="default: .celline/jobs.json (- for standard output)")

    add("discover", "find the jobs celline started itself (its scripts and logs under resources/, data/, "
        "reference/) and track them", json_flag=True)

    p = add("install-celline-function", "write <project>/functions/celline_jobs.py: celline's CLI then offers "
            "these commands as `celline run custom_job -- COMMAND ...`")
    p.add_argument("--force", action="store_true", help="overwrite a file of that name celline-jobs did not write")

    p = add("archive", "move ended jobs' files (log, exit code, progress, script) into "
            ".celline/archive/<YYYY-MM>.zip; rows and logs stay readable", json_flag=True)
    p.add_argument("--older-than", metavar="AGE", help="ended at least this long ago, e.g. 30d, 12h "
                   "(default: [jobs.retention] archive_after_days, 30)")
    p.add_argument("--status", metavar="S,S", help="only these final statuses (default: completed,cancelled,failed)")
    p.add_argument("--dry-run", action="store_true", help="print what would be archived; change nothing")

    p = add("clean", "apply [jobs.retention]: archive what is due, delete archived logs past their time "
            "(failed jobs' later)", json_flag=True)
    p.add_argument("--older-than", metavar="AGE", help="delete archived files of jobs ended this long ago "
                   "(default: [jobs.retention] delete_archived_logs_after_days, 90)")
    p.add_argument("--dry-run", action="store_true", help="print what would be removed and how many bytes")
    p.add_argument("--forget", action="store_true", help="also drop those jobs' rows from the history")

    p = add("serve", "serve the job table and the JobAPI in a browser (127.0.0.1 only, behind a printed token URL)")
    p.add_argument("--port", type=int, default=None, metavar="N", help="port (default: 8765 or the next free one)")
    return parser


def command_parsers() -> dict[str, argparse.ArgumentParser]:
    """Each subcommand's parser by name, so celline's own CLI offers the same commands (``celline.Job``)."""
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return dict(sub.choices)


def _add_resource_args(p: argparse.ArgumentParser | _Unused) -> None:
    p.add_argument("--cpus", metavar="N", help="CPU cores for the job, e.g. 8")
    p.add_argument("--mem", metavar="SIZE", help="memory, e.g. 32G")
    p.add_argument("--time", metavar="LIMIT", help="time limit, e.g. 1:30:00, 2h")
    p.add_argument("--partition", "--queue", dest="partition", metavar="NAME",
                   help="SLURM partition, PBS or Grid Engine queue (cluster schedulers)")
    p.add_argument("--gpus", metavar="N", help="GPUs for the job (cluster schedulers)")
    p.add_argument("--account", metavar="NAME", help="account to charge, e.g. your lab's (cluster schedulers)")


def _resource_changes(args: argparse.Namespace) -> dict[str, Any]:
    changes = {k: getattr(args, k) for k in ("cpus", "mem", "time", "partition", "gpus", "account")}
    return {k: v for k, v in changes.items() if v is not None}


def _print_json(data: Any) -> None:
    json.dump(data, sys.stdout, indent=2, default=str)
    sys.stdout.write("\n")


def _parse_when(text: str) -> datetime:
    """"2h", "3d", "45m" ago, or an ISO date/time (local time when no zone is given)."""
    value = text.strip()
    units = {"m": 60, "h": 3600, "d": 86400, "w": 604800}
    if value[:-1].isdigit() and value[-1:].lower() in units:
        return utcnow() - timedelta(seconds=int(value[:-1]) * units[value[-1].lower()])
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidInputError(f"invalid time {text!r}: use 2h, 3d or a date like 2026-11-01") from None
    if parsed.tzinfo is None:
        parsed = parsed.astimezone()  # the user's local time
    return to_utc(parsed) or utcnow()


# -- commands ------------------------------------------------------------------------------------


def _monitor(args: argparse.Namespace) -> JobMonitor:
    from .monitor import JobMonitor

    monitor = JobMonitor(args.project)
    if monitor.read_only is not None:  # said once, on stderr: the output itself stays the same
        print(f"celline-jobs: read-only: {monitor.read_only}; showing what the project's writers recorded",
              file=sys.stderr)
    return monitor


def cmd_list(args: argparse.Namespace) -> int:
    monitor = _monitor(args)
    monitor.refresh()
    statuses = [JobStatus.parse(s) for s in args.status] if args.status else None
    if args.limit is not None and args.limit < 1:
        raise InvalidInputError(f"invalid --limit {args.limit}: use a number >= 1")
    from .core.models import JobType

    types = [JobType.parse(args.job_type)] if args.job_type else None
    from .listing import bounded_jobs, hidden_note, json_rows

    hidden = 0
    parent = monitor.store.resolve(args.array_parent) if args.array_parent else None
    jobs: Iterable[JobInfo]
    if args.all or args.since or args.limit is not None:
        # The newest N straight from the query (filters, order and LIMIT in SQL): a project of a
        # million jobs reads N rows, not every row. Printed oldest first, as without --limit.
        since = _parse_when(args.since) if args.since else None
        if args.json and args.limit is None:  # streamed: a batch of rows in memory at a time
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
    jobs = list(jobs)
    if not jobs:
        print("no jobs" + (" match" if statuses or args.job_type or args.since or parent
                           else " yet: try `celline-jobs submit`"))
        return 0
    _print_table(_jobs_table(jobs))
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
    from .core.logs import LogFollower

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
    from .discover import script_spec
    from .schedulers import adapter_class

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


def cmd_history(args: argparse.Namespace) -> int:
    monitor = _monitor(args)
    since = _parse_when(args.since) if args.since else None
    until = _parse_when(args.until) if args.until else None
    if args.csv or args.parquet:
        return _export_history(monitor, args, since, until)
    if args.events:
        events = [e for e in monitor.store.events(since=since) if until is None or e.time < until]
        if args.json:
            _print_json([{"job_id": e.job_id, "time": e.time.isoformat(),
                          "from": e.from_status.value if e.from_status else None, "to": e.to_status.value,
                          "reason": e.reason, "source": e.source} for e in events])
            return 0
        table = Table((Column("Time"), Column("Job ID"), Column("From"), Column("To"),
                       Column("Reason", flexible=True)))
        for e in events:
            table.add_row(_local(e.time), e.job_id, e.from_status.value if e.from_status else "-",
                          _status_cell(e.to_status), e.reason or "")
        if events:
            _print_table(table)
        else:
            print("no status changes in that range")
        return 0
    statuses = [JobStatus.parse(s) for s in args.status] if args.status else None
    jobs = monitor.list_jobs(statuses, job_type=args.job_type, scheduler=args.scheduler, since=since, until=until)
    jobs.reverse()
    if args.json:
        _print_json([j.to_dict() for j in jobs])
        return 0
    if jobs:
        _print_table(_jobs_table(jobs, title=f"{len(jobs)} job" + ("" if len(jobs) == 1 else "s")))
    else:
        print("no jobs in that range")
    return 0


def _export_history(monitor: JobMonitor, args: argparse.Namespace, since: datetime | None,
                    until: datetime | None) -> int:
    from .export import to_dataframe, write_csv, write_parquet

    # One row per record, like the table `history` prints (retries are rows of their own).
    frame = to_dataframe(monitor, per="event" if args.events else "attempt", since=since, until=until,
                         status=args.status, job_type=args.job_type, scheduler=args.scheduler)
    # Parquet first: when pyarrow is missing nothing is written at all.
    for path, write in ((args.parquet, write_parquet), (args.csv, write_csv)):
        if path == "-":  # standard output: the data only, no "wrote" line mixed into it
            _write_stdout(lambda tmp, write=write: write(frame, tmp))
        elif path:
            print(f"wrote {len(frame)} rows to {write(frame, path)}")
    return 0


def _write_stdout(write: Callable[[Path], object]) -> None:
    """Run a writer that wants a file path, sending the bytes to standard output."""
    import tempfile

    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "out"
        write(path)
        sys.stdout.flush()
        with path.open("rb") as handle:
            while chunk := handle.read(1024 * 1024):
                sys.stdout.buffer.write(chunk)
        sys.stdout.buffer.flush()


def cmd_report(args: argparse.Namespace) -> int:
    from .report import write_report

    monitor = _monitor(args)
    since = _parse_when(args.since) if args.since else None
    monitor.refresh()
    if args.out == "-":
        _write_stdout(lambda tmp: write_report(monitor, tmp, since=since))
        return 0
    print(f"wrote {write_report(monitor, args.out, since=since)}")
    return 0


def cmd_watch(args: argparse.Namespace) -> int:
    from .watch import watch

    monitor = _monitor(args)
    return watch(monitor, interval=args.interval)


def cmd_progress(args: argparse.Namespace) -> int:
    from .progress import progress_file_from_env, report

    details: dict[str, Any] = {}
    for item in args.detail:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise InvalidInputError(f"invalid --detail {item!r}: write KEY=VALUE")
        details[key] = value
    if progress_file_from_env() is None:
        raise InvalidInputError("not inside a celline-jobs job: CELLINE_JOB_ID and CELLINE_JOBS_PROJECT are unset")
    report(args.percent, args.stage, **details)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    return run_demo(Path(args.dir), watch_jobs=not args.no_watch)


def cmd_export_json(args: argparse.Namespace) -> int:
    from .store.legacy import export_legacy_json

    monitor = _monitor(args)
    if args.path == "-":
        _write_stdout(lambda tmp: export_legacy_json(monitor.store, tmp))
        return 0
    print(export_legacy_json(monitor.store, Path(args.path) if args.path else None))
    return 0


def cmd_db(args: argparse.Namespace) -> int:
    from .core.paths import ProjectPaths
    from .store import backup, recovery
    from .store.sqlite import JobStore

    paths = ProjectPaths.of(args.project)
    if args.action == "recover":
        done = recovery.recover(paths)
        source = f"restored {done.restored_from}" if done.restored_from else "started an empty database"
        kept = f"; the damaged database was kept as {done.damaged_kept_as}" if done.damaged_kept_as else ""
        print(f"{source}{kept}")
        print(f"rebuilt {len(done.rebuilt)} job(s) the backup did not have from their exit-code files and "
              f"batch scripts; recorded the end of {len(done.ended)} job(s) it had as active")
        return 0
    if args.action == "check":
        found = recovery.diagnose(paths.db)
        if found.state == "intact":
            print(f"{found.detail}; backups: {len(backup.list_backups(paths))}")
            return 0
        if found.damaged:
            print(f"{found.detail}: run `celline-jobs db recover` (it restores the newest intact backup and "
                  "rebuilds later jobs from their files)")
            return 1
        raise StoreError(found.detail)
    print(backup.create_backup(JobStore(paths)))
    return 0


def cmd_discover(args: argparse.Namespace) -> int:
    from .discover import discover

    monitor = _monitor(args)
    found = discover(monitor)
    monitor.refresh()  # new active runs are due at once: qstat (PBS mode) sees them now
    jobs = monitor.store.get_many(found.job_ids)
    if args.json:
        _print_json({"scripts": found.scripts, "new": found.new_ids, "jobs": [j.to_dict() for j in jobs]})
        return 0
    execution = found.execution
    mode = execution.system + (f" on {execution.pbs_server}" if execution.pbs else "")
    if execution.configured_system != execution.system:
        mode += f' (setting.toml says "{execution.configured_system}" but has no pbs_server)'
    print(f"celline runs its jobs with: {escape(mode)}")  # setting.toml's words: data
    print(f"{found.scripts} scripts, {len(jobs)} runs, {len(found.new_ids)} new")
    _print_warnings(_stale_lines(monitor))
    if jobs:
        _print_table(_jobs_table(jobs))
    return 0


def cmd_install_celline_function(args: argparse.Namespace) -> int:
    from .core.paths import ProjectPaths
    from .functionfile import install_celline_function

    if not ProjectPaths.of(args.project).celline_settings.is_file():
        raise InvalidInputError(f"no celline project {_where(args.project)} (no setting.toml): run it in the project "
                                "directory (`celline init` makes one) or pass --project DIR")
    path = install_celline_function(args.project, force=args.force)
    print(f"wrote {path}")
    print("run, from the project directory:  celline run custom_job -- list   (options go after `--`)")
    return 0


# Commands that only make sense in an existing project: in any other directory they say so and create
# nothing (no .celline/jobs.db, backups/ or logs/ in a directory that is not a project).
_READS_A_PROJECT = frozenset({"list", "status", "logs", "cancel", "retry", "queue", "history", "watch", "report",
                              "export-json", "discover", "serve",
                              "archive", "clean"})


def cmd_archive(args: argparse.Namespace) -> int:
    from .archive import archive

    plan = archive(_monitor(args), older_than=args.older_than, statuses=args.status, dry_run=args.dry_run)
    return _print_plan(args, plan, "archive" if args.dry_run else "archived")


def cmd_clean(args: argparse.Namespace) -> int:
    from .archive import clean

    plan = clean(_monitor(args), older_than=args.older_than, dry_run=args.dry_run, forget=args.forget)
    return _print_plan(args, plan, "clean" if args.dry_run else "cleaned")


def _print_plan(args: argparse.Namespace, plan: Any, verb: str) -> int:
    if args.json:
        _print_json({**plan.to_dict(), "dry_run": args.dry_run})
        return 0
    lead = f"would {verb}" if args.dry_run else verb
    where = f" into {', '.join(plan.archives)}" if plan.archives else ""
    print(f"{lead} {len(plan.jobs)} job(s): {plan.files} file(s), {plan.bytes} bytes{where}")
    if plan.finished:
        print(f"finished {plan.finished} job(s) an interrupted run had left")
    for line in plan.kept:
        print(f"  {escape(line)}")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    if args.port is not None and not 0 < args.port < 65536:
        raise InvalidInputError(f"invalid --port {args.port}: use 1 to 65535")
    try:
        from .server.app import serve
    except ImportError as exc:
        raise InvalidInputError(f"serve needs jupyter_server ({exc}): pip install jupyter_server") from None
    _monitor(args)  # the store exists (and is checked) before the first request
    return serve(Path(args.project).resolve(), args.port)


def _where(project: str) -> str:
    return "here" if Path(project).resolve() == Path.cwd().resolve() else f"in {project!r}"


def _require_project(project: str) -> None:
    from .core.paths import ProjectPaths

    paths = ProjectPaths.of(project)
    if not (paths.celline_settings.is_file() or paths.state_dir.is_dir()):
        raise InvalidInputError(f"no celline project {_where(project)} (no setting.toml or .celline/): "
                                "cd into one or pass --project DIR")


COMMANDS = {
    "list": cmd_list, "status": cmd_status, "logs": cmd_logs, "cancel": cmd_cancel, "retry": cmd_retry,
    "submit": cmd_submit, "queue": cmd_queue, "history": cmd_history, "watch": cmd_watch,
    "progress": cmd_progress, "demo": cmd_demo, "export-json": cmd_export_json, "db": cmd_db,
    "report": cmd_report, "discover": cmd_discover, "install-celline-function": cmd_install_celline_function,
    "serve": cmd_serve, "archive": cmd_archive, "clean": cmd_clean,
}


def _command_in(argv: Sequence[str]) -> str | None:
    """The subcommand ``argv`` names, read the way the parser reads it (``--project DIR``, ``-C DIR``,
    ``--project=DIR``, ``-CDIR`` and abbreviations of ``--project`` before it); None when unsure."""
    words = iter(argv)
    for word in words:
        if word in COMMANDS:
            return word
        if word == "-C" or (len(word) > 2 and "--project".startswith(word)):
            next(words, None)
        elif not (word.startswith("-C") or word.startswith("--project=")):
            return None  # --help, an unknown option or command: the whole parser answers
    return None


def _parse(argv: Sequence[str]) -> argparse.Namespace:
    command = _command_in(argv)
    if command is not None:
        try:
            return build_parser(command).parse_args(argv)
        except UsageError:
            pass  # said by the whole parser, in its words
    return build_parser().parse_args(argv)


def _exit_now(code: int) -> NoReturn:
    """End the process at once: the interpreter's teardown (freeing every module) would add ~10 ms
    to a command that took ~30. Only after the quick list, whose output is all written and whose
    database connection is closed; never when ``main`` was called with arguments (in-process)."""
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except BrokenPipeError:  # `celline-jobs list | head`
        code = 0
    os._exit(code)


def main(argv: Sequence[str] | None = None) -> int:
    entry = argv is None  # the console script or `python -m celline_jobs_nb`
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        args = _parse(argv)
        if args.command not in ("demo", "progress") and not Path(args.project).is_dir():
            raise InvalidInputError(f"project directory {args.project!r} does not exist: pass --project DIR")
        if args.command in _READS_A_PROJECT:
            _require_project(args.project)
        if args.command == "list":
            from .quicklist import run  # a project whose jobs have all ended: no monitor needed

            done = run(args)
            if done is not None:
                if entry:
                    _exit_now(done)
                return done
        return COMMANDS[args.command](args)
    except CellineJobsError as exc:
        print(f"celline-jobs: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `celline-jobs list | head`
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0

