"""The ``celline-jobs`` argument parser: every command's options, and the resource options
that ``submit`` and ``retry`` share."""

from __future__ import annotations

import argparse
from typing import Any

from ..core.errors import CellineJobsError


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
