"""What the command modules share: the monitor they read through, JSON and file output,
times given on the command line, the check that a directory is a project."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..core.errors import InvalidInputError
from ..core.models import to_utc, utcnow

if TYPE_CHECKING:
    from ..monitor import JobMonitor


def _print_json(data: Any) -> None:
    import json  # only for --json: not on the table's path

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


def _monitor(args: argparse.Namespace) -> JobMonitor:
    from ..monitor import JobMonitor

    monitor = JobMonitor(args.project)
    if monitor.read_only is not None:  # said once, on stderr: the output itself stays the same
        print(f"celline-jobs: read-only: {monitor.read_only}; showing what the project's writers recorded",
              file=sys.stderr)
    return monitor


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


def _where(project: str) -> str:
    return "here" if Path(project).resolve() == Path.cwd().resolve() else f"in {project!r}"


def _require_project(project: str) -> None:
    from ..core.paths import ProjectPaths

    paths = ProjectPaths.of(project)
    if not (paths.celline_settings.is_file() or paths.state_dir.is_dir()):
        raise InvalidInputError(f"no celline project {_where(project)} (no setting.toml or .celline/): "
                                "cd into one or pass --project DIR")
