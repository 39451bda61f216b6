"""``celline-jobs``: the command line. Never imports widgets or pandas on its hot paths.

Bad input prints one line ``celline-jobs: error: ...`` naming the problem and the fix, and exits 2.

This module parses the command line and runs one command; the commands live in ``jobs`` (list,
status, logs, cancel, retry, submit, queue), ``history`` (history, report, export-json, watch,
progress, demo) and ``project`` (db, discover, install-celline-function, archive, clean, serve), and
a command's module is imported only when that command runs. ``parser`` builds the arguments,
``common`` holds what the commands share.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence

from ..core.errors import CellineJobsError, InvalidInputError

TYPE_CHECKING = False  # typing, argparse, pathlib and the parser load only off the quick `list` path
if TYPE_CHECKING:
    import argparse
    from typing import Any, NoReturn

    from .parser import UsageError, build_parser, command_parsers

__all__ = ["COMMANDS", "EXIT_USAGE", "UsageError", "build_parser", "command_parsers", "main"]

#: Each command's module and function: the module is imported when the command runs.
_HOMES: dict[str, tuple[str, str]] = {
    "list": ("jobs", "cmd_list"), "status": ("jobs", "cmd_status"), "logs": ("jobs", "cmd_logs"),
    "cancel": ("jobs", "cmd_cancel"), "retry": ("jobs", "cmd_retry"), "submit": ("jobs", "cmd_submit"),
    "queue": ("jobs", "cmd_queue"), "history": ("history", "cmd_history"), "watch": ("history", "cmd_watch"),
    "progress": ("history", "cmd_progress"), "demo": ("history", "cmd_demo"),
    "export-json": ("history", "cmd_export_json"), "report": ("history", "cmd_report"),
    "db": ("project", "cmd_db"), "discover": ("project", "cmd_discover"),
    "install-celline-function": ("project", "cmd_install_celline_function"), "serve": ("project", "cmd_serve"),
    "archive": ("project", "cmd_archive"), "clean": ("project", "cmd_clean"),
}


class _Commands(Mapping[str, Callable[..., int]]):
    """Command name -> function, importing the command's module on first use."""

    def __getitem__(self, name: str) -> Callable[[argparse.Namespace], int]:
        module, function = _HOMES[name]
        return getattr(importlib.import_module(f"{__name__}.{module}"), function)  # type: ignore[no-any-return]

    def __contains__(self, name: object) -> bool:  # Mapping's own would import the module
        return name in _HOMES

    def __iter__(self) -> Iterator[str]:
        return iter(_HOMES)

    def __len__(self) -> int:
        return len(_HOMES)


COMMANDS: Mapping[str, Callable[[argparse.Namespace], int]] = _Commands()

#: Names this module held before the commands moved into modules of their own (still importable from here).
_MOVED: dict[str, str] = {
    **{function: module for module, function in _HOMES.values()},
    "_log_text": "jobs", "_export_history": "history", "_print_plan": "project",
    "UsageError": "parser", "build_parser": "parser", "command_parsers": "parser",
    "_require_project": "common", "_print_json": "common", "_parse_when": "common", "_monitor": "common",
    "_write_stdout": "common",
    "_where": "common", "_add_resource_args": "parser", "_resource_changes": "parser",
    "_Parser": "parser", "_Unused": "parser",
    **dict.fromkeys(("_jobs_table", "_local", "_print_lines", "_print_table", "_print_warnings",
                     "_progress_text", "_stale_lines", "_status_cell"), "jobs"),
}


def __getattr__(name: str) -> Any:
    module = _MOVED.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)


EXIT_USAGE = 2


# Commands that only make sense in an existing project: in any other directory they say so and create
# nothing (no .celline/jobs.db, backups/ or logs/ in a directory that is not a project).
_READS_A_PROJECT = frozenset({"list", "status", "logs", "cancel", "retry", "queue", "history", "watch", "report",
                              "export-json", "discover", "serve",
                              "archive", "clean"})


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


def _quick_list_args(argv: Sequence[str]) -> Any:
    """The arguments of a plain ``[--project DIR | -C DIR] list [--json] [--limit N]``, read without
    argparse (the quick list's whole budget is a few milliseconds); None for anything else, which
    the parser reads."""
    from types import SimpleNamespace

    words = list(argv)
    project = "."
    if words[:1] in (["--project"], ["-C"]) and len(words) >= 2 and not words[1].startswith("-"):
        project, words = words[1], words[2:]
    elif words and words[0].startswith("--project=") and len(words[0]) > len("--project="):
        project, words = words[0][len("--project="):], words[1:]
    if words[:1] != ["list"] or not project:
        return None
    json_flag, limit = False, None
    rest = iter(words[1:])
    for word in rest:
        if word == "--json" and not json_flag:
            json_flag = True
            continue
        if word.startswith("--limit=") and limit is None:
            value: str | None = word[len("--limit="):]
        elif word == "--limit" and limit is None:
            value = next(rest, None)
        else:
            return None
        if value is None or not value.isascii() or not value.isdigit():
            return None
        limit = int(value)
    return SimpleNamespace(project=project, command="list", json=json_flag, limit=limit, all=False)


def _parse(argv: Sequence[str]) -> argparse.Namespace:
    from .parser import UsageError, build_parser

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
        quick = _quick_list_args(argv)
        if quick is not None and os.path.isdir(quick.project):
            from ..quicklist import run  # a project whose jobs have all ended: no monitor, no parser

            done = run(quick)
            if done is not None:
                if entry:
                    _exit_now(done)
                return done
        args = _parse(argv)
        if args.command not in ("demo", "progress") and not os.path.isdir(args.project or "."):
            raise InvalidInputError(f"project directory {args.project!r} does not exist: pass --project DIR")
        if args.command in _READS_A_PROJECT:
            from .common import _require_project

            _require_project(args.project)
        if args.command == "list" and quick is None:
            from ..quicklist import run  # a project whose jobs have all ended: no monitor needed

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
