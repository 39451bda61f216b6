"""The evidence of a celline run besides its script: its log, a ``bash <script>`` process on this
machine, and the PBS job that is it (matched from ONE qstat of every job, run by the PBS adapter).
"""

from __future__ import annotations

import os
import re
import signal
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import psutil

from ...core.logs import read_tail_bytes
from ...core.models import JobStatus
from ...core.paths import ENV_JOB_ID
from ..pbs import PbsRecord
from .runs import CellineRun

LOG_TAIL_BYTES = 64 * 1024

_LOG_FAILURE = re.compile(
    r"^\[ERROR\]|^ERROR\b|^Error( in |:)|^\[error\]|Execution halted|Traceback \(most recent call last\)"
    r"|\[CHECK\] .+: Could not resolve|=>> PBS: job killed|^Killed\b|oom-kill|DUE TO TIME LIMIT",
    re.MULTILINE,
)
_LOG_SUCCESS = re.compile(r"Pipestance completed successfully|^\[SUCCESS\]|completed successfully|built successfully",
                          re.MULTILINE)


def log_verdict(path: Path | None) -> tuple[JobStatus | None, str | None]:
    """What the end of a run's log says: FAILED with the error line, COMPLETED with the success
    line, or (None, None). The later of the two wins (a script may report an error and recover)."""
    if path is None:
        return None, None
    text = read_tail_bytes(path, LOG_TAIL_BYTES).decode("utf-8", errors="replace")
    failures = list(_LOG_FAILURE.finditer(text))
    successes = list(_LOG_SUCCESS.finditer(text))
    last_failure = failures[-1].start() if failures else -1
    last_success = successes[-1].start() if successes else -1
    if last_failure < 0 and last_success < 0:
        return None, None
    start = text.rfind("\n", 0, max(last_failure, last_success)) + 1  # the whole line, not the match
    line = text[start:].split("\n", 1)[0].strip()[:300]
    if last_failure > last_success:
        return JobStatus.FAILED, f"log: {line}"
    return JobStatus.COMPLETED, f"log: {line}"


@dataclass(frozen=True)
class ScriptProcess:
    pid: int
    started: float


_SHELLS = frozenset({"bash", "sh", "zsh", "dash", "ksh"})


def _script_argument(args: Sequence[str]) -> str | None:
    for arg in args:
        if arg == "-c":
            return None  # an inline command, not a script file
        if arg.startswith("-"):
            continue
        return arg if arg.endswith(".sh") else None
    return None


def script_processes() -> dict[str, ScriptProcess]:
    """``bash <script>`` processes on this machine, by the script's real path (ONE process scan).

    Processes our own job wrappers run (``CELLINE_JOB_ID`` in their environment) are left out:
    they are jobs of another scheduler, even when they run a celline script.
    """
    found: dict[str, tuple[ScriptProcess, psutil.Process]] = {}
    for proc in psutil.process_iter(["pid", "cmdline", "create_time"]):
        cmdline = proc.info.get("cmdline") or []
        if len(cmdline) < 2 or os.path.basename(cmdline[0]) not in _SHELLS:
            continue
        script = _script_argument(cmdline[1:])
        if script is None:
            continue
        try:
            if not os.path.isabs(script):
                script = os.path.join(proc.cwd(), script)
        except psutil.Error:
            continue
        key = os.path.realpath(script)
        candidate = ScriptProcess(proc.info["pid"], float(proc.info.get("create_time") or 0.0))
        # bash forks subshells with the same command line: the oldest process is the script itself.
        if key not in found or candidate.started < found[key][0].started:
            found[key] = (candidate, proc)
    result: dict[str, ScriptProcess] = {}
    for key, (info, proc) in found.items():
        try:
            if ENV_JOB_ID in proc.environ():
                continue
        except psutil.Error:
            pass  # another user's process: not ours either way, and celline's own are this user's
        result[key] = info
    return result


def _strip_host(path: str | None) -> str | None:
    """"host:/abs/path" -> "/abs/path" (celline's log names contain colons too, so only a prefix
    before the first "/" is a host)."""
    if not path:
        return None
    host, sep, rest = path.partition(":")
    return rest if sep and "/" not in host and rest.startswith("/") else path


def pbs_paths(record: PbsRecord) -> set[str]:
    """The log paths qstat shows for a job, without their "host:" prefix."""
    paths = (_strip_host(record.attributes.get(k)) for k in ("Error_Path", "Output_Path"))
    return {p for p in paths if p}


def _numeric(native_id: str) -> str:
    """"123.server" -> "123" (celline itself keeps only the number: ``(\\d+)\\.``)."""
    return native_id.split(".", 1)[0]


def match_pbs(runs: Mapping[str, CellineRun], records: Sequence[PbsRecord],
              known: Mapping[str, str] | None = None) -> dict[str, tuple[PbsRecord, str]]:
    """Which PBS job is which run: ``{run key: (record, how)}``.

    ``known`` maps run keys to PBS ids matched before (kept while qstat still lists them). Then
    the log path, then a ``#PBS -N`` name that exactly one latest run and one path-less record share.
    """
    matched: dict[str, tuple[PbsRecord, str]] = {}
    by_id = {_numeric(r.job_id): r for r in records}
    for key, native in (known or {}).items():
        if key in runs and _numeric(native) in by_id:
            matched[key] = (by_id[_numeric(native)], "id")
    used = {id(record) for record, _ in matched.values()}
    by_path: dict[str, PbsRecord] = {}
    for record in records:
        for path in pbs_paths(record):
            by_path[os.path.normpath(path)] = record
    for key, run in runs.items():
        if key in matched or run.log is None:
            continue
        record = by_path.get(os.path.normpath(str(run.log)))
        if record is not None and id(record) not in used:
            matched[key] = (record, "log path")
            used.add(id(record))
    by_name: dict[str, list[PbsRecord]] = {}
    for record in records:
        if id(record) not in used and not pbs_paths(record):
            by_name.setdefault(record.name or "", []).append(record)
    candidates: dict[str, list[str]] = {}
    for key, run in runs.items():
        if key not in matched and run.latest and run.script.directives.name:
            candidates.setdefault(run.script.directives.name, []).append(key)
    for name, keys in candidates.items():
        records_named = by_name.get(name, [])
        if len(keys) == 1 and len(records_named) == 1:
            record, run = records_named[0], runs[keys[0]]
            too_early = (record.submit is not None and run.submitted is not None
                         and record.submit < run.submitted - timedelta(minutes=2))
            if not too_early:  # a job queued before the script was rendered cannot run it
                matched[keys[0]] = (record, "#PBS -N")
    return matched


def terminate_tree(process: ScriptProcess) -> None:
    """SIGTERM the script's shell and everything it started. Not its process group: celline's
    Popen leaves the script in celline's own group, which would stop celline too."""
    try:
        root = psutil.Process(process.pid)
        if abs(root.create_time() - process.started) > 1.0:
            return  # the pid was reused
        members = [*root.children(recursive=True), root]
    except psutil.Error:
        return
    for member in members:
        try:
            member.send_signal(signal.SIGTERM)
        except psutil.Error:
            continue
