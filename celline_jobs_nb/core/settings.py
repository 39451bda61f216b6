"""Project settings: celline's ``setting.toml`` and this package's ``[jobs]`` table.

Our settings live in a ``[jobs]`` table of ``setting.toml`` or in ``.celline/jobs.toml`` (the
latter wins key by key; prefer it: ``celline config`` rewrites setting.toml with celline's own
tables only, dropping ``[jobs]``). Known keys:

    default_scheduler = "local"          # or "slurm", "pbs", "sge" (default: "pbs" when celline runs on PBS)
    max_parallel = 4                     # local slots (default: [execution] nthread, else CPUs)
    [jobs.poll_interval]                 # seconds, per scheduler; never below the adapter's floor
    local = 2
    slurm = 30
    [jobs.notify]                        # see NotifySettings
    [jobs.retention]                     # see RetentionSettings (celline-jobs archive / clean)
    [jobs.sge]                           # see SgeSettings: pe = "smp", memory = "h_vmem", ...

celline's own ``[execution]`` table (``system = "multithreading" | "PBS"``, ``nthread``,
``pbs_server``) is read and checked too: it decides the default scheduler and how the jobs
celline starts itself are found (``celline_jobs_nb.discover``).
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ParseError, SettingsError
from .paths import ProjectPaths
from .safeio import read_bounded

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

MAX_SETTINGS_BYTES = 1024 * 1024  # celline's setting.toml is a few hundred bytes
MAX_PARALLEL_META_KEY = "local.max_parallel"  # where the store remembers a monitor's max_parallel
_KNOWN_KEYS = {"default_scheduler", "max_parallel", "poll_interval", "notify", "database_mode", "retention", "sge"}
_SGE_KEYS = {"pe", "memory", "memory_per_slot", "gpu"}
_SGE_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,63}$")
DATABASE_MODES = ("auto", "wal", "rollback")
_NOTIFY_KEYS = {"on", "batch", "webhook", "email", "apprise"}
_EMAIL_KEYS = {"host", "port", "from", "to", "starttls", "user", "password_env"}
NOTIFY_STATUSES = ("completed", "failed", "cancelled")
MULTITHREADING, PBS = "multithreading", "PBS"  # celline's spellings; it compares them exactly
_SCHEDULER_NAME_RE = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")


@dataclass(frozen=True)
class CellineExecution:
    """celline's ``[execution]`` table, as celline itself applies it.

    celline runs its jobs with ``qsub`` only when ``system`` is exactly "PBS" AND ``pbs_server``
    is set; with "PBS" and no server it warns and runs them with ``bash`` (multithreading).
    ``system`` here is that effective mode, ``configured_system`` what the file says.
    """

    system: str = MULTITHREADING
    nthread: int | None = None
    pbs_server: str | None = None
    configured_system: str = MULTITHREADING

    @property
    def pbs(self) -> bool:
        return self.system == PBS

    @classmethod
    def parse(cls, table: Any) -> CellineExecution:
        if table is None:
            return cls()
        if not isinstance(table, dict):
            raise SettingsError('[execution] in setting.toml must be a table, e.g. system = "multithreading"')
        system = table.get("system", MULTITHREADING)
        if system not in (MULTITHREADING, PBS):
            raise SettingsError(f'[execution] system must be "{MULTITHREADING}" or "{PBS}" (celline\'s spelling, '
                                f"as `celline config --system` writes it), not {system!r}")
        nthread = table.get("nthread")
        if nthread is not None and (not isinstance(nthread, int) or isinstance(nthread, bool) or nthread < 1):
            raise SettingsError(f"[execution] nthread must be a whole number >= 1, not {nthread!r}")
        server = table.get("pbs_server", "")
        if not isinstance(server, str) or any(ch.isspace() for ch in server.strip()):
            raise SettingsError(f"[execution] pbs_server must be a PBS server or queue name without spaces, "
                                f"not {server!r}")
        server = server.strip() or None
        effective = PBS if system == PBS and server is not None else MULTITHREADING
        return cls(effective, nthread, server, system)


@dataclass(frozen=True)
class EmailSettings:
    host: str
    port: int
    sender: str
    to: tuple[str, ...]
    starttls: bool = False
    user: str | None = None
    password_env: str | None = None  # the password is read from this environment variable, never stored


@dataclass(frozen=True)
class NotifySettings:
    """Where to say that jobs ended. ``on``: which final statuses send a message per job;
    ``batch``: one summary when the last active job of the project ends."""

    on: tuple[str, ...] = ("failed",)
    batch: bool = True
    webhook: str | None = None
    email: EmailSettings | None = None
    apprise: tuple[str, ...] = ()

    @property
    def enabled(self) -> bool:
        return bool(self.webhook or self.email or self.apprise)

    @classmethod
    def parse(cls, table: Any) -> NotifySettings:
        _check_table(table, "[jobs.notify]", _NOTIFY_KEYS, 'e.g. webhook = "https://..."')
        on = table.get("on", ["failed"])
        if not isinstance(on, list) or not set(on) <= set(NOTIFY_STATUSES):
            raise SettingsError(f"[jobs.notify] on must list statuses from {', '.join(NOTIFY_STATUSES)}")
        webhook = table.get("webhook")
        if webhook is not None and (not isinstance(webhook, str) or not webhook.startswith(("http://", "https://"))):
            raise SettingsError(f"[jobs.notify] webhook must be an http(s) URL, not {redact_url(webhook)!r}")
        apprise = table.get("apprise", [])
        if isinstance(apprise, str):
            apprise = [apprise]
        if not isinstance(apprise, list) or not all(isinstance(a, str) for a in apprise):
            raise SettingsError("[jobs.notify] apprise must be a list of Apprise URLs")
        batch = table.get("batch", True)
        if not isinstance(batch, bool):
            raise SettingsError("[jobs.notify] batch must be true or false")
        email = _parse_email(table["email"]) if "email" in table else None
        return cls(tuple(on), batch, webhook, email, tuple(apprise))


_RETENTION_KEYS = {"archive_after_days", "delete_archived_logs_after_days", "keep_failed_logs_days"}


@dataclass(frozen=True)
class RetentionSettings:
    """What ``celline-jobs archive`` and ``clean`` do by default: archive the files of jobs ended
    ``archive_after_days`` ago; delete archived logs ``delete_archived_logs_after_days`` after the
    job ended, failed jobs' only after ``keep_failed_logs_days``. Rows are never dropped by default."""

    archive_after_days: float = 30.0
    delete_archived_logs_after_days: float = 90.0
    keep_failed_logs_days: float = 365.0

    @classmethod
    def parse(cls, table: Any) -> RetentionSettings:
        _check_table(table, "[jobs.retention]", _RETENTION_KEYS, "e.g. archive_after_days = 30")
        values = {}
        for key in sorted(_RETENTION_KEYS):
            value = table.get(key, getattr(cls, key))
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0 <= value <= 100_000:
                raise SettingsError(f"[jobs.retention] {key} must be a number of days from 0 to 100000, "
                                    f"not {str(value)[:40]!r}")
            values[key] = float(value)
        if values["keep_failed_logs_days"] < values["delete_archived_logs_after_days"]:
            raise SettingsError("[jobs.retention] keep_failed_logs_days must be >= delete_archived_logs_after_days "
                                "(failed jobs' logs are kept longer, never shorter)")
        return cls(**values)


@dataclass(frozen=True)
class SgeSettings:
    """Grid Engine site choices (``[jobs.sge]``): the parallel environment for ``cpus`` > 1
    (``pe``), the memory resources to request (``memory``: "h_vmem", "mem_free", "h_rss",
    "virtual_free"... or a list of them; [] leaves memory out), whether they count per slot
    (``memory_per_slot``, Grid Engine's rule for h_vmem and most consumables: the job's memory is
    divided by its slots) and the GPU resource name (``gpu``)."""

    pe: str = "smp"
    memory: tuple[str, ...] = ("h_vmem",)
    memory_per_slot: bool = True
    gpu: str = "gpu"

    @classmethod
    def parse(cls, table: Any) -> SgeSettings:
        _check_table(table, "[jobs.sge]", _SGE_KEYS, 'e.g. pe = "smp"')
        pe, gpu = table.get("pe", cls.pe), table.get("gpu", cls.gpu)
        memory = table.get("memory", list(cls.memory))
        memory = [memory] if isinstance(memory, str) else memory
        per_slot = table.get("memory_per_slot", cls.memory_per_slot)
        for key, value in (("pe", pe), ("gpu", gpu)):
            if not isinstance(value, str) or not _SGE_NAME_RE.match(value):
                raise SettingsError(f'[jobs.sge] {key} must be a Grid Engine name like "smp", not {str(value)[:40]!r}')
        if not isinstance(memory, list) or not all(isinstance(m, str) and _SGE_NAME_RE.match(m) for m in memory):
            raise SettingsError('[jobs.sge] memory must be resource names, e.g. "h_vmem" or ["h_vmem", "mem_free"] '
                                "([] leaves memory out)")
        if not isinstance(per_slot, bool):
            raise SettingsError(f"[jobs.sge] memory_per_slot must be true or false, not {str(per_slot)[:40]!r}")
        return cls(pe, tuple(memory), per_slot, gpu)


def _check_table(table: Any, name: str, keys: set[str], example: str) -> None:
    """A settings table is a TOML table of known keys, or one line naming the key and the fix."""
    if not isinstance(table, dict):
        raise SettingsError(f"{name} must be a table, {example}")
    unknown = set(table) - keys
    if unknown:
        raise SettingsError(f"unknown {name} setting {sorted(unknown)[0]!r}: use {', '.join(sorted(keys))}")


def _parse_email(table: Any) -> EmailSettings:
    _check_table(table, "[jobs.notify.email]", _EMAIL_KEYS, "with host, from and to")
    to = table.get("to")
    to = [to] if isinstance(to, str) else to
    if not isinstance(table.get("host"), str) or not isinstance(table.get("from"), str) or not to \
            or not all(isinstance(t, str) and "@" in t for t in to):
        raise SettingsError('[jobs.notify.email] needs host = "smtp.example.org", from = "..." and to = ["you@..."]')
    port = table.get("port", 25)
    if not isinstance(port, int) or isinstance(port, bool) or not 0 < port < 65536:
        raise SettingsError(f"[jobs.notify.email] port must be a number from 1 to 65535, not {port!r}")
    return EmailSettings(table["host"], port, table["from"], tuple(to), bool(table.get("starttls", False)),
                         table.get("user"), table.get("password_env"))


def redact_url(url: object) -> str:
    """A URL as it may appear in an error or a log: its scheme and host only. Webhook and Apprise
    URLs carry their secret in the user part, the path or the query (Slack's token is the path)."""
    text = str(url)
    scheme, sep, rest = text.partition("://")
    if not sep:
        return "<redacted>" if text else ""
    host = rest.split("/", 1)[0].split("?", 1)[0].rsplit("@", 1)[-1]
    return f"{scheme[:20]}://{host[:100]}/<redacted>"


def read_toml(path: Path) -> dict[str, Any]:
    """The parsed file, {} when it does not exist, or a one-line error naming the file and line."""
    try:
        data = read_bounded(path, MAX_SETTINGS_BYTES, what="settings file")
    except ParseError as exc:
        raise SettingsError(f"cannot read {path}: {exc}; replace it with a regular file") from None
    if data is None:
        return {}
    try:
        return tomllib.loads(data.decode("utf-8", errors="replace"))
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"{path} is not valid TOML ({exc}): fix or remove that line") from None
    except RecursionError:
        raise SettingsError(f"{path} is nested too deeply to be read: fix or remove it") from None


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
    notify: NotifySettings = field(default_factory=NotifySettings)
    execution: CellineExecution = field(default_factory=CellineExecution)
    database_mode: str = "auto"  # the job database's journal: auto (by filesystem), wal or rollback
    retention: RetentionSettings = field(default_factory=RetentionSettings)
    sge: SgeSettings = field(default_factory=SgeSettings)

    @classmethod
    def load(cls, paths: ProjectPaths) -> JobsSettings:
        celline = read_toml(paths.celline_settings)
        table = celline.get("jobs", {})
        if not isinstance(table, dict):
            raise SettingsError(f"[jobs] in {paths.celline_settings} must be a table, e.g. [jobs] max_parallel = 4")
        table = dict(table)
        own = read_toml(paths.jobs_settings)
        own_table = own.get("jobs", own)
        if not isinstance(own_table, dict):
            raise SettingsError(f"[jobs] in {paths.jobs_settings} must be a table, e.g. [jobs] max_parallel = 4")
        table.update(own_table)
        unknown = set(table) - _KNOWN_KEYS
        if unknown:
            raise SettingsError(
                f"unknown [jobs] setting {sorted(unknown)[0]!r}: known keys are {', '.join(sorted(_KNOWN_KEYS))}"
            )
        execution = CellineExecution.parse(celline.get("execution"))
        default_scheduler = table.get("default_scheduler")
        if default_scheduler is None:
            default_scheduler = "pbs" if execution.pbs else "local"
        if not isinstance(default_scheduler, str) or not _SCHEDULER_NAME_RE.match(default_scheduler):
            raise SettingsError(f"[jobs] default_scheduler must be a scheduler name like \"local\", \"slurm\" "
                                f"or \"pbs\", not {default_scheduler!r}")
        max_parallel = table.get("max_parallel")
        if max_parallel is not None and (not isinstance(max_parallel, int) or isinstance(max_parallel, bool)
                                         or max_parallel < 1):
            raise SettingsError(f"[jobs] max_parallel must be a whole number >= 1, not {max_parallel!r}")
        intervals = table.get("poll_interval", {})
        if not isinstance(intervals, dict) or not all(
            _SCHEDULER_NAME_RE.match(str(k)) and isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0
            for k, v in intervals.items()
        ):
            raise SettingsError("[jobs.poll_interval] must map scheduler names to seconds > 0, e.g. slurm = 30")
        notify = NotifySettings.parse(table["notify"]) if "notify" in table else NotifySettings()
        database_mode = table.get("database_mode", "auto")
        if database_mode not in DATABASE_MODES:
            raise SettingsError(f"[jobs] database_mode must be one of {', '.join(DATABASE_MODES)}, "
                                f"not {str(database_mode)[:40]!r}")
        retention = RetentionSettings.parse(table["retention"]) if "retention" in table else RetentionSettings()
        sge = SgeSettings.parse(table["sge"]) if "sge" in table else SgeSettings()
        return cls(default_scheduler, max_parallel, {str(k): float(v) for k, v in intervals.items()}, notify,
                   execution, database_mode, retention, sge)
