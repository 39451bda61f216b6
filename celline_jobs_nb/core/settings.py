"""Project settings: celline's ``setting.toml`` and this package's ``[jobs]`` table.

Our settings live in a ``[jobs]`` table of ``setting.toml`` or in ``.celline/jobs.toml`` (the
latter wins key by key). Known keys:

    default_scheduler = "local"          # or "slurm", "pbs"
    max_parallel = 4                     # local slots (default: [execution] nthread, else CPUs)
    [jobs.poll_interval]                 # seconds, per scheduler; never below the adapter's floor
    local = 2
    slurm = 30
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import SettingsError
from .paths import ProjectPaths

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

_KNOWN_KEYS = {"default_scheduler", "max_parallel", "poll_interval"}


def read_toml(path: Path) -> dict[str, Any]:
    """The parsed file, {} when it does not exist, or a one-line error naming the file and line."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise SettingsError(f"cannot read {path}: {exc}") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"{path} is not valid TOML ({exc}): fix or remove that line") from None


def celline_nthread(paths: ProjectPaths) -> int | None:
    """celline's ``[execution] nthread`` when the project runs in multithreading mode."""
    try:
        execution = read_toml(paths.celline_settings).get("execution", {})
    except SettingsError:
        return None
    value = execution.get("nthread") if isinstance(execution, dict) else None
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


@dataclass(frozen=True)
class JobsSettings:
    default_scheduler: str = "local"
    max_parallel: int | None = None
    poll_interval: dict[str, float] = field(default_factory=dict)
    celline_execution: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def load(cls, paths: ProjectPaths) -> JobsSettings:
        celline = read_toml(paths.celline_settings)
        table = dict(celline.get("jobs", {}) or {})
        own = read_toml(paths.jobs_settings)
        table.update(own.get("jobs", own))
        unknown = set(table) - _KNOWN_KEYS
        if unknown:
            raise SettingsError(
                f"unknown [jobs] setting {sorted(unknown)[0]!r}: known keys are {', '.join(sorted(_KNOWN_KEYS))}"
            )
        execution = celline.get("execution", {}) if isinstance(celline.get("execution"), dict) else {}
        default_scheduler = table.get("default_scheduler")
        if default_scheduler is None:
            system = str(execution.get("system", "")).lower()
            default_scheduler = "pbs" if system == "pbs" else "local"
        if not isinstance(default_scheduler, str):
            raise SettingsError(f"[jobs] default_scheduler must be a name like \"local\", not {default_scheduler!r}")
        max_parallel = table.get("max_parallel")
        if max_parallel is not None and (not isinstance(max_parallel, int) or isinstance(max_parallel, bool)
                                         or max_parallel < 1):
            raise SettingsError(f"[jobs] max_parallel must be a whole number >= 1, not {max_parallel!r}")
        intervals = table.get("poll_interval", {})
        if not isinstance(intervals, dict) or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0 for v in intervals.values()
        ):
            raise SettingsError("[jobs.poll_interval] must map scheduler names to seconds > 0, e.g. slurm = 30")
        return cls(default_scheduler, max_parallel, {str(k): float(v) for k, v in intervals.items()}, execution)
