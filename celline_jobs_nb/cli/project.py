"""The commands about the project: db, discover, install-celline-function, archive, clean, serve."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ..core.errors import InvalidInputError, StoreError
from ..jobtable import jobs_table as _jobs_table
from ..jobtable import print_table as _print_table
from ..jobtable import print_warnings as _print_warnings
from ..jobtable import stale_lines as _stale_lines
from ..textable import escape
from .common import _monitor, _print_json, _where


def cmd_db(args: argparse.Namespace) -> int:
    from ..core.paths import ProjectPaths
    from ..store import backup, recovery
    from ..store.sqlite import JobStore

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
    from ..discover import discover

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
    from ..core.paths import ProjectPaths
    from ..functionfile import install_celline_function

    if not ProjectPaths.of(args.project).celline_settings.is_file():
        raise InvalidInputError(f"no celline project {_where(args.project)} (no setting.toml): run it in the project "
                                "directory (`celline init` makes one) or pass --project DIR")
    path = install_celline_function(args.project, force=args.force)
    print(f"wrote {path}")
    print("run, from the project directory:  celline run custom_job -- list   (options go after `--`)")
    return 0


def cmd_archive(args: argparse.Namespace) -> int:
    from ..archive import archive

    plan = archive(_monitor(args), older_than=args.older_than, statuses=args.status, dry_run=args.dry_run)
    return _print_plan(args, plan, "archive" if args.dry_run else "archived")


def cmd_clean(args: argparse.Namespace) -> int:
    from ..archive import clean

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
        from ..server.app import serve
    except ImportError as exc:
        raise InvalidInputError(f"serve needs jupyter_server ({exc}): pip install jupyter_server") from None
    _monitor(args)  # the store exists (and is checked) before the first request
    return serve(Path(args.project).resolve(), args.port)
