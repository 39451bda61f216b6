"""The commands about the history: history (and its CSV/Parquet export), report, export-json,
watch, progress (from inside a job) and the demo."""

from __future__ import annotations

import argparse
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..core.errors import InvalidInputError
from ..core.models import JobStatus
from ..jobtable import jobs_table as _jobs_table
from ..jobtable import local_time as _local
from ..jobtable import print_table as _print_table
from ..jobtable import status_cell as _status_cell
from ..textable import Column, Table
from .common import _monitor, _parse_when, _print_json, _write_stdout

if TYPE_CHECKING:
    from ..monitor import JobMonitor


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
    from ..export import to_dataframe, write_csv, write_parquet

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


def cmd_report(args: argparse.Namespace) -> int:
    from ..report import write_report

    monitor = _monitor(args)
    since = _parse_when(args.since) if args.since else None
    monitor.refresh()
    if args.out == "-":
        _write_stdout(lambda tmp: write_report(monitor, tmp, since=since))
        return 0
    print(f"wrote {write_report(monitor, args.out, since=since)}")
    return 0


def cmd_watch(args: argparse.Namespace) -> int:
    from ..watch import watch

    monitor = _monitor(args)
    return watch(monitor, interval=args.interval)


def cmd_progress(args: argparse.Namespace) -> int:
    from ..progress import progress_file_from_env, report

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
    from ..demo import run_demo

    return run_demo(Path(args.dir), watch_jobs=not args.no_watch)


def cmd_export_json(args: argparse.Namespace) -> int:
    from ..store.legacy import export_legacy_json

    monitor = _monitor(args)
    if args.path == "-":
        _write_stdout(lambda tmp: export_legacy_json(monitor.store, tmp))
        return 0
    print(export_legacy_json(monitor.store, Path(args.path) if args.path else None))
    return 0
