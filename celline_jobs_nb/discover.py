"""The jobs celline starts itself: find them, follow them, and run their scripts on any scheduler.

celline (1.1.0) renders a shell script per sample and step, then runs it with ``bash`` (its
"multithreading" mode: output only to an in-memory callback, no log file) or with ``qsub`` (its
"PBS" mode: output to the ``#PBS -e`` log, named ``<prefix>_%Y%m%d_%H:%M:%S.log``). It keeps no
history. This module turns what it leaves on disk into jobs of the project's store:

    resources/<project>/<sample>/src/{download,count,starsolo}.sh   logs in ../logs/
    data/<project>/<sample>/src/create_seurat.sh                    logs in ../logs/
    data/<project>/<sample>/run_scpred.sh                           no log
    reference/<species>/<suffix>/build.sh                           build.log next to it

Every log file of a script is one run (history); the script as rendered now is the latest run,
even before its log exists. A run becomes a job with a stable id derived from the script and its
log, so rescanning never duplicates anything, and its scheduler is ``celline``: the
``CellineScheduler`` below is the adapter the poller uses to keep those jobs current.

How a run's status is known, strongest evidence first:
  1. PBS mode: ``qstat -f`` (ONE call per poll), matched by its log path (``Error_Path``; real
     Torque and OpenPBS print it) or else by ``#PBS -N`` when exactly one latest run and one
     path-less qstat job carry that name (Slurm's Torque wrappers print no paths; celline gives
     every sample's job the same name, so a shared name is never guessed).
  2. a ``bash <script>`` process on this machine (multithreading mode).
  3. once it has ended: the PBS exit status; error or success lines in its log; celline's own
     "done" files (``counted/outs/...``, ``seurat.rds``...) written after the run started.
  Without any of these the job is ``unknown``, with a reason: "missing" never means "completed".

``discover`` only ADDS runs it has not seen (idempotent); the poller alone updates them.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shlex
import signal
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psutil

from .core import reasons
from .core.errors import InvalidInputError, ParseError, ResourceError, SchedulerError, SubmitError
from .core.logs import read_tail_bytes
from .core.models import JobInfo, JobStatus, JobType, to_utc, utcnow
from .core.paths import ENV_JOB_ID
from .core.resources import Resources
from .core.safeio import read_head
from .core.settings import CellineExecution, read_toml
from .schedulers.base import CommandRunner, PollResult, SchedulerAdapter, SchedulerContext
from .schedulers.pbs import PbsRecord, PbsScheduler, parse_qstat_full
from .schedulers.pbs import map_state as pbs_map_state
from .store.sqlite import JobUpdate

if TYPE_CHECKING:
    from .monitor import JobMonitor

log = logging.getLogger("celline.job")

CELLINE_SCHEDULER = "celline"
#: Where celline writes the scripts it runs (relative to the project), per celline 1.1.0.
SCRIPT_PATTERNS = ("resources/*/*/src/*.sh", "data/*/*/src/*.sh", "data/*/*/run_scpred.sh", "reference/*/*/build.sh")
LOG_NAME_RE = re.compile(r"^(?P<prefix>.+)_(?P<stamp>\d{8}_\d{2}:\d{2}:\d{2})\.log$")
LOG_STAMP_FORMAT = "%Y%m%d_%H:%M:%S"
MAX_SCRIPT_BYTES = 1024 * 1024  # celline's scripts are a few KB; anything huge is not one of them
LOG_TAIL_BYTES = 64 * 1024
OUTPUT_SLACK = timedelta(seconds=5)  # file times vs. the render time (coarse file systems)

# ------------------------------------------------------------------------------------------------
# #PBS directives
# ------------------------------------------------------------------------------------------------

_FLAG_OPTIONS = frozenset({"-V", "-h", "-z", "-I", "-f", "-x", "-X"})  # qsub options without a value


@dataclass(frozen=True)
class PbsDirectives:
    """The ``#PBS`` header of a script: its name, queue, resources and log paths.

    ``resources`` holds raw values keyed like ``Resources`` fields; ``to_resources`` validates
    them, naming the directive when one is wrong.
    """

    name: str | None = None
    queue: str | None = None
    account: str | None = None
    error_path: str | None = None
    output_path: str | None = None
    join: str | None = None
    resources: tuple[tuple[str, str, str], ...] = ()  # (Resources key, value, directive text)

    @property
    def present(self) -> bool:
        return any((self.name, self.queue, self.account, self.error_path, self.output_path, self.join,
                    self.resources))

    @property
    def log_path(self) -> str | None:
        """Where PBS writes the job's output: ``-j eo`` joins stdout into the ``-e`` file."""
        if self.join == "oe":
            return self.output_path or self.error_path
        return self.error_path or self.output_path

    def to_resources(self, *, keep_queue: bool, source: str = "script") -> Resources:
        """A validated request. The queue becomes the partition only when ``keep_queue`` (a PBS
        queue name means nothing to SLURM or the local executor)."""
        request: dict[str, Any] = {}
        for key, value, directive in self.resources:
            try:
                Resources.from_dict({key: value})
            except ResourceError as exc:
                raise ResourceError(f"{source}: `#PBS {directive}`: {exc}") from None
            request[key] = value
        if keep_queue and self.queue:
            request["partition"] = self.queue
        if self.account:
            request["account"] = self.account
        try:
            return Resources.from_dict(request)
        except ResourceError as exc:
            raise ResourceError(f"{source}: #PBS header: {exc}") from None


def _tokens(body: str) -> list[str]:
    try:
        return shlex.split(body, comments=False)
    except ValueError:  # an unbalanced quote: still read what can be read
        return body.split()


def _resource_list(value: str, directive: str) -> list[tuple[str, str, str]]:
    """``-l`` items: "nodes=1:ppn=8:batch", "select=2:ncpus=8:mem=32gb", "mem=32gb,walltime=24:00:00"."""
    items: list[tuple[str, str, str]] = []
    for item in value.split(","):
        key, sep, raw = item.strip().partition("=")
        key = key.strip().lower()
        if not sep:
            continue
        if key in ("nodes", "select"):
            parts = raw.split(":")
            if parts[0].strip().isdigit():
                items.append(("nodes", parts[0].strip(), directive))
            for part in parts[1:]:  # chunk resources; a bare word is a node property (celline's server)
                sub_key, sub_sep, sub_value = part.partition("=")
                if sub_sep and sub_value:
                    items.extend(_resource_list(f"{sub_key}={sub_value}", directive))
        elif key in ("ppn", "ncpus"):
            items.append(("cpus", raw.strip(), directive))
        elif key == "mem":
            items.append(("memory", raw.strip(), directive))
        elif key == "walltime":
            items.append(("walltime", raw.strip(), directive))
        elif key in ("ngpus", "gpus"):
            items.append(("gpus", raw.strip(), directive))
    return items


def parse_pbs_directives(text: str) -> PbsDirectives:
    """The ``#PBS`` lines of a script, read like qsub reads them: up to the first command.

    Unknown options are skipped; values are kept raw (``to_resources`` validates them). Empty
    values, as celline renders them without a cluster server (``#PBS -q ``), count as unset.
    """
    found: dict[str, str] = {}
    resources: list[tuple[str, str, str]] = []
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or (stripped.startswith("#") and not stripped.startswith("#PBS")):
            continue
        if not stripped.startswith("#PBS"):
            break
        tokens = _tokens(stripped[len("#PBS"):])
        i = 0
        while i < len(tokens):
            option = tokens[i]
            if not option.startswith("-") or option in _FLAG_OPTIONS:
                i += 1
                continue
            values = []
            i += 1
            # -N may hold spaces as celline renders it ("Create Seurat"): take words up to the next option.
            while i < len(tokens) and not tokens[i].startswith("-") and (option == "-N" or not values):
                values.append(tokens[i])
                i += 1
            value = " ".join(values).strip()
            if not value:
                continue
            if option == "-l":
                resources.extend(_resource_list(value, f"-l {value}"))
            elif option in ("-N", "-q", "-A", "-e", "-o", "-j"):
                found[option] = value
    queue = found.get("-q", "").split("@", 1)[0] or None  # "queue@server"
    return PbsDirectives(
        name=found.get("-N"), queue=queue, account=found.get("-A"), error_path=found.get("-e"),
        output_path=found.get("-o"), join=found.get("-j"), resources=tuple(resources),
    )


# ------------------------------------------------------------------------------------------------
# Job types
# ------------------------------------------------------------------------------------------------

#: celline's script names and ``#PBS -N`` job names (lower-case, no spaces) -> type.
_KNOWN_NAMES: dict[str, JobType] = {
    "download": JobType.COUNT, "count": JobType.COUNT, "starsolo": JobType.COUNT,
    "create_seurat": JobType.PREPROCESS, "createseurat": JobType.PREPROCESS, "preprocess": JobType.PREPROCESS,
    "run_scpred": JobType.PREDICTION, "predict_celltype": JobType.PREDICTION, "build": JobType.PREDICTION,
    "build_reference": JobType.PREDICTION, "build_reference_scpred": JobType.PREDICTION,
    "buildcelltypemodel": JobType.PREDICTION, "buildreferencescpred": JobType.PREDICTION,
    "integrate": JobType.INTEGRATION, "pure_merge": JobType.INTEGRATION,
    "batch_cor": JobType.BATCH_CORRECTION, "batchcorrection": JobType.BATCH_CORRECTION,
}
#: Words in other script or job names. Harmony and scVI are celline's integration methods
#: (``integration/<method>/``); MNN/ComBat-style corrections are its batch correction.
_NAME_WORDS: tuple[tuple[re.Pattern[str], JobType], ...] = (
    (re.compile(r"batch|mnn|combat|removebatch"), JobType.BATCH_CORRECTION),
    (re.compile(r"integrat|harmony|scvi|merge"), JobType.INTEGRATION),
    (re.compile(r"scpred|celltype|predict"), JobType.PREDICTION),
    (re.compile(r"seurat|preprocess|scrublet|doublet"), JobType.PREPROCESS),
    (re.compile(r"cellranger|starsolo|count|download|fastq"), JobType.COUNT),
)
#: What the script runs (celline's R hooks and tools), for scripts with other names.
_CONTENT_WORDS: tuple[tuple[re.Pattern[str], JobType], ...] = (
    (re.compile(r"mnncorrect\.R|batch_cor"), JobType.BATCH_CORRECTION),
    (re.compile(r"(integrate|pure_merge)\.R|harmony|scvi", re.IGNORECASE), JobType.INTEGRATION),
    (re.compile(r"(run_scpred|build_reference)\.R"), JobType.PREDICTION),
    (re.compile(r"(create_seurat|FilterGenes)\.R|scrublet"), JobType.PREPROCESS),
    (re.compile(r"cellranger\s+(count|bamtofastq)|\bSTAR\s+--|fastq-dump"), JobType.COUNT),
)


def infer_job_type(script_name: str, pbs_name: str | None = None, text: str = "") -> JobType:
    """The type of a celline script: by its file name, its ``#PBS -N`` name, then what it runs."""
    stem = Path(script_name).stem.lower()
    name = re.sub(r"[\s_-]+", "", (pbs_name or "").lower())
    for key in (stem, name):
        if key in _KNOWN_NAMES:
            return _KNOWN_NAMES[key]
    for pattern, job_type in _NAME_WORDS:
        if pattern.search(stem) or (name and pattern.search(name)):
            return job_type
    for pattern, job_type in _CONTENT_WORDS:
        if pattern.search(text):
            return job_type
    return JobType.CUSTOM


# ------------------------------------------------------------------------------------------------
# Scripts and runs
# ------------------------------------------------------------------------------------------------

#: celline's own "done" files for each script (relative to the script's sample directory; what
#: its functions check before running a step again).
_OUTPUTS: dict[str, tuple[str, ...]] = {
    "download": ("raw/fastqs/*/*_R1_001.fastq.gz",),
    "count": ("counted/outs/filtered_feature_bc_matrix.h5",),
    "starsolo": ("counted/outs",),
    "create_seurat": ("seurat.rds",),
    "preprocess": ("qc_matrix.tsv",),
    "run_scpred": ("celltype_predicted.tsv",),
    "build": ("reference.pred",),
}


def _read_script(path: Path) -> str:
    """The head of a script celline (or anyone with write access to the project) left: a FIFO,
    a device or a link out of the project reads as empty, never blocks."""
    try:
        data = read_head(path, MAX_SCRIPT_BYTES)
    except ParseError:
        return ""
    return "" if data is None else data.decode("utf-8", errors="replace")


def _mtime(path: Path) -> float | None:
    try:
        return path.stat().st_mtime
    except OSError:
        return None


def _local_stamp(text: str) -> datetime | None:
    """celline's log-name time (local, naive) as UTC."""
    try:
        return to_utc(datetime.strptime(text, LOG_STAMP_FORMAT).astimezone())
    except ValueError:
        return None


@dataclass(frozen=True)
class CellineScript:
    """One script celline rendered: what it is, for which sample, and where its runs log."""

    path: Path
    root: Path
    text: str = field(repr=False)
    directives: PbsDirectives

    @classmethod
    def read(cls, path: Path, root: Path) -> CellineScript:
        text = _read_script(path)
        return cls(path, root, text, parse_pbs_directives(text))

    @property
    def kind(self) -> str:
        return self.path.stem

    @property
    def sample_dir(self) -> Path:
        """The sample (or reference) directory: ``src/`` scripts live one level below it."""
        return self.path.parent.parent if self.path.parent.name == "src" else self.path.parent

    @property
    def sample(self) -> str:
        """"<project_id>/<sample_id>" (or "<species>/<suffix>" for a reference build)."""
        try:
            parts = self.sample_dir.relative_to(self.root).parts
        except ValueError:
            return self.sample_dir.name
        return "/".join(parts[1:3]) if len(parts) >= 3 else "/".join(parts)

    @property
    def job_type(self) -> JobType:
        return infer_job_type(self.path.name, self.directives.name, self.text)

    @property
    def label(self) -> str:
        """The job name: celline's ``#PBS -N`` name (or the script's) and the sample, e.g. "Count GSM3745812"."""
        what = self.directives.name or self.kind
        # A sample id is unique on its own; a reference is "<species>/<suffix>".
        who = self.sample if self.sample_dir.parent.parent == self.root / "reference" else self.sample_dir.name
        return f"{what} {who}".strip()

    @property
    def current_log(self) -> Path | None:
        """The log the script as rendered now writes to (it need not exist yet)."""
        raw = self.directives.log_path
        if not raw:
            return None
        path = Path(raw).expanduser()
        return path if path.is_absolute() else self.sample_dir / path

    @property
    def log_prefix(self) -> str:
        current = self.current_log
        match = LOG_NAME_RE.match(current.name) if current else None
        return match.group("prefix") if match else self.kind

    def outputs(self) -> list[Path]:
        found: list[Path] = []
        for pattern in _OUTPUTS.get(self.kind, ()):
            found.extend(self.sample_dir.glob(pattern))
        return found

    def runs(self) -> list[CellineRun]:
        """Every run this script has had that left a trace, oldest first; the last is the latest."""
        current = self.current_log
        runs: list[CellineRun] = []
        log_dir = current.parent if current else self.sample_dir / "logs"
        try:
            names = sorted(p.name for p in log_dir.iterdir()) if log_dir.is_dir() else []
        except OSError:
            names = []
        for name in names:
            match = LOG_NAME_RE.match(name)
            if match and match.group("prefix") == self.log_prefix and (current is None or name != current.name):
                runs.append(CellineRun(self, log_dir / name, _local_stamp(match.group("stamp")), latest=False))
        runs.append(CellineRun(self, current, self.render_time(), latest=True))
        return runs

    def render_time(self) -> datetime | None:
        """When celline rendered the script as it is now: the time in its log name, else its mtime."""
        current = self.current_log
        match = LOG_NAME_RE.match(current.name) if current else None
        if match:
            return _local_stamp(match.group("stamp"))
        mtime = _mtime(self.path)
        return to_utc(mtime) if mtime is not None else None


@dataclass(frozen=True)
class CellineRun:
    """One run of a script: its log (may not exist yet) and when it was submitted."""

    script: CellineScript
    log: Path | None
    submitted: datetime | None
    latest: bool

    @property
    def key(self) -> str:
        """What identifies the run across scans. A timestamped log names one run; a script without
        one is a new run each time celline renders it again (its mtime changes)."""
        if self.log is not None and LOG_NAME_RE.match(self.log.name):
            return f"{self.script.path}|{self.log}"
        stamp = int(self.submitted.timestamp()) if self.submitted else 0
        return f"{self.script.path}|{self.log or ''}|{stamp}"

    @property
    def job_id(self) -> str:
        """Stable for the same run, so every scan (in any process) agrees on it."""
        return "c" + hashlib.sha256(self.key.encode("utf-8", "surrogateescape")).hexdigest()[:12]


def find_scripts(root: Path) -> list[CellineScript]:
    """Every script celline rendered in the project (see SCRIPT_PATTERNS)."""
    found: dict[Path, CellineScript] = {}
    for pattern in SCRIPT_PATTERNS:
        for path in sorted(root.glob(pattern)):
            if path.is_file() and path not in found:
                found[path] = CellineScript.read(path, root)
    return list(found.values())


# ------------------------------------------------------------------------------------------------
# Evidence: logs, processes, qstat
# ------------------------------------------------------------------------------------------------

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


QSTAT_NOT_FOUND = 153  # Slurm's Torque wrappers: "nothing found", printed as no output at all


def query_pbs(runner: CommandRunner, flavour: str) -> list[PbsRecord]:
    """Every job PBS shows, from ONE ``qstat -f``.

    Parsed by the PBS adapter's own ``qstat -f`` parser; nothing else here runs PBS commands
    (``qdel`` in ``CellineScheduler.cancel`` aside).
    """
    result = runner.run(["qstat", "-f"], check=False)
    if result.returncode != 0:
        if result.returncode == QSTAT_NOT_FOUND and not result.stdout.strip():
            return []
        detail = (result.stderr or result.stdout).strip().splitlines()
        raise SchedulerError(f"`qstat -f` exited {result.returncode}: {detail[-1] if detail else 'no output'}")
    try:
        return parse_qstat_full(result.stdout, flavour)
    except ParseError as exc:
        raise SchedulerError(f"unexpected `qstat -f` output: {exc}") from None


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


# ------------------------------------------------------------------------------------------------
# From evidence to status
# ------------------------------------------------------------------------------------------------


@dataclass
class Assessment:
    status: JobStatus
    fields: dict[str, Any] = field(default_factory=dict)


def assess(run: CellineRun, *, process: ScriptProcess | None, pbs: PbsRecord | None, pbs_checked: bool,
           cancel_requested: bool = False) -> Assessment:
    """The status of a run from what is known now (see the module docstring for the order)."""
    pbs_status, known_state = pbs_map_state(pbs.state) if pbs is not None else (None, False)
    if pbs is not None and pbs_status is not None and (pbs_status.active or not known_state):
        fields: dict[str, Any] = {"native_id": pbs.job_id, "reason": None}
        if pbs.submit:
            fields["submit_time"] = pbs.submit
        if pbs.start:
            fields["start_time"] = pbs.start
        if not known_state:
            fields["reason"] = f"PBS reports state {pbs.state!r}"
        return Assessment(pbs_status, fields)
    if process is not None and run.latest:
        return Assessment(JobStatus.RUNNING, {"start_time": to_utc(process.started), "reason": None,
                                              "metadata": {"pid": process.pid}})
    end = _mtime(run.log) if run.log is not None else None
    fields = {"end_time": to_utc(end) if end is not None else utcnow()}
    if pbs is not None:
        fields["native_id"] = pbs.job_id
    if cancel_requested:
        return Assessment(JobStatus.CANCELLED, {**fields, "reason": reasons.CANCELLED_BY_USER})
    if pbs is not None and pbs.exit_status is not None:
        if pbs.exit_status == 0:
            return Assessment(JobStatus.COMPLETED, {**fields, "exit_code": 0, "reason": None})
        return Assessment(JobStatus.FAILED, {**fields, "exit_code": pbs.exit_status,
                                             "reason": f"PBS exit status {pbs.exit_status}"})
    verdict, evidence = log_verdict(run.log)
    if verdict is JobStatus.FAILED:
        return Assessment(verdict, {**fields, "reason": evidence})
    if verdict is JobStatus.COMPLETED:
        return Assessment(verdict, {**fields, "reason": None, "metadata": {"evidence": evidence}})
    if run.latest:
        done = _newest_output(run)
        if done is not None:
            path, mtime = done
            fields["end_time"] = to_utc(max(mtime, end or 0.0))
            return Assessment(JobStatus.COMPLETED, {**fields, "reason": None,
                                                    "metadata": {"evidence": f"output: {path}"}})
    unknown: dict[str, Any] = {"reason": _no_evidence_reason(run, pbs, pbs_checked)}
    if pbs is not None:
        unknown["native_id"] = pbs.job_id
    return Assessment(JobStatus.UNKNOWN, unknown)


def _newest_output(run: CellineRun) -> tuple[Path, float] | None:
    """celline's "done" file written after the run was submitted, if any."""
    newest: tuple[Path, float] | None = None
    earliest = (run.submitted - OUTPUT_SLACK).timestamp() if run.submitted is not None else None
    for path in run.script.outputs():
        mtime = _mtime(path)
        if mtime is None or (earliest is not None and mtime < earliest):
            continue  # missing, or from an earlier run
        if newest is None or mtime > newest[1]:
            newest = (path, mtime)
    return newest


def _no_evidence_reason(run: CellineRun, pbs: PbsRecord | None, pbs_checked: bool) -> str:
    if pbs is not None:
        where = f"PBS shows it ended (state {pbs.state}) without an exit status"
    else:
        where = "not running here" + (", not in qstat" if pbs_checked else "")
    if run.log is not None and run.log.exists():
        return f"{where}; its log says neither success nor an error"
    if not run.latest:
        return f"{where}; no log"
    outputs = ", ".join(_OUTPUTS.get(run.script.kind, ())) or "no known output"
    return f"{where}; no log (celline's multithreading mode writes none) and no new {outputs}"


def new_job(run: CellineRun, assessment: Assessment, execution: CellineExecution) -> JobInfo:
    """The store record of a run first seen."""
    script = run.script
    try:
        resources = script.directives.to_resources(keep_queue=execution.pbs, source=str(script.path))
    except ResourceError as exc:
        log.warning("%s", exc)
        resources = Resources()
    fields = assessment.fields
    status = assessment.status
    start = fields.get("start_time")
    if start is None and status.final:
        start = run.submitted  # celline records no start time; the render time is the closest we have
    metadata = {
        "attached": True,
        "discovered": {"script": str(script.path), "log": str(run.log) if run.log else None,
                       "submitted": run.submitted.isoformat() if run.submitted else None, "key": run.key,
                       "sample": script.sample, "mode": execution.system},
        **fields.get("metadata", {}),
    }
    return JobInfo(
        job_id=run.job_id, name=script.label, status=status, command=f"bash {shlex.quote(str(script.path))}",
        start_time=start, end_time=fields.get("end_time") if status.final else None,
        log_file=str(run.log) if run.log else None, working_dir=str(script.root), resources=resources,
        scheduler=CELLINE_SCHEDULER, native_id=fields.get("native_id"), job_type=script.job_type,
        submit_time=fields.get("submit_time", run.submitted), exit_code=fields.get("exit_code"),
        reason=fields.get("reason"), metadata=metadata,
    )


# ------------------------------------------------------------------------------------------------
# Discovery (adds new runs) and the adapter (keeps them current)
# ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Discovery:
    """What one scan found: every run's job id, and which of them are new."""

    scripts: int
    job_ids: list[str]
    new_ids: list[str]
    execution: CellineExecution


def discover(monitor: JobMonitor) -> Discovery:
    """Scan the project for the jobs celline started and add the runs not seen before.

    Idempotent: run ids come from the script and log paths, and known runs are left to the
    poller (``CellineScheduler``). qstat is never called here; new active runs get polled at once.
    """
    root = monitor.paths.root
    execution = monitor.settings.execution
    scripts = find_scripts(root)
    runs = [run for script in scripts for run in script.runs()]
    known = {job.job_id for job in monitor.store.get_many([run.job_id for run in runs])}
    fresh = [run for run in runs if run.job_id not in known]
    processes = script_processes() if any(run.latest for run in fresh) else {}
    jobs = []
    for run in fresh:
        process = processes.get(os.path.realpath(run.script.path))
        assessment = assess(run, process=process, pbs=None, pbs_checked=False)
        if execution.pbs and process is None and not assessment.status.final:
            assessment = Assessment(JobStatus.UNKNOWN, {"reason": "not checked with qstat yet"})
        jobs.append(new_job(run, assessment, execution))
    monitor.store.insert_many(jobs, source="discover")
    if any(job.status.active for job in jobs):
        monitor.store.reset_poll_due(CELLINE_SCHEDULER)
    return Discovery(len(scripts), [run.job_id for run in runs], [job.job_id for job in jobs], execution)


def run_of(job: JobInfo, root: Path) -> CellineRun | None:
    """The run a discovered job stands for, re-read from disk (the script may have been rendered
    again since: then this run is no longer the latest)."""
    info = job.metadata.get("discovered")
    if not isinstance(info, dict) or not info.get("script"):
        return None
    script = CellineScript.read(Path(info["script"]), root)
    run = CellineRun(script, Path(info["log"]) if info.get("log") else None, to_utc(info.get("submitted")),
                     latest=False)
    if script.text and script.runs()[-1].key == run.key:
        return CellineRun(run.script, run.log, run.submitted, latest=True)
    return run


class CellineScheduler(SchedulerAdapter):
    """The jobs celline runs itself: polled from processes, qstat and files; never submitted here."""

    name = CELLINE_SCHEDULER
    foreign_runs = True
    min_poll_interval = 5.0
    default_poll_interval = 15.0

    def __init__(self, context: SchedulerContext) -> None:
        super().__init__(context)
        self.execution = CellineExecution.parse(read_toml(context.paths.celline_settings).get("execution"))
        self._pbs: PbsScheduler | None = None

    def _pbs_flavour(self) -> str:
        """Which PBS answers (the PBS adapter detects it once and remembers it in the store)."""
        if self._pbs is None:
            self._pbs = PbsScheduler(self.context)
        return self._pbs.flavour

    def submit(self, job: JobInfo) -> JobUpdate:
        raise SubmitError("jobs of the `celline` scheduler are the ones celline starts itself: run the script "
                          "with `celline-jobs submit SCRIPT --scheduler local|slurm|pbs`, or `celline-jobs retry`")

    def poll(self, jobs: Sequence[JobInfo]) -> PollResult:
        root = self.context.paths.root
        runs = {job.job_id: run for job in jobs if (run := run_of(job, root)) is not None}
        processes = script_processes() if any(run.latest for run in runs.values()) else {}
        records: list[PbsRecord] = []
        if self.execution.pbs and runs:
            records = query_pbs(self.runner, self._pbs_flavour())
        by_key = {run.key: run for run in runs.values()}
        known = {runs[j.job_id].key: j.native_id for j in jobs if j.job_id in runs and j.native_id}
        matches = match_pbs(by_key, records, known) if records else {}
        result = PollResult()
        for job in jobs:
            run = runs.get(job.job_id)
            if run is None:
                continue
            record, how = matches.get(run.key, (None, None))
            assessment = assess(run, process=processes.get(os.path.realpath(run.script.path)), pbs=record,
                                pbs_checked=self.execution.pbs,
                                cancel_requested=bool(job.metadata.get("cancel_requested")))
            fields = dict(assessment.fields)
            if how is not None and how != "id":  # keep how it was first matched
                fields["metadata"] = {**fields.get("metadata", {}), "pbs_matched_by": how}
            if assessment.status.final and job.start_time is None and "start_time" not in fields:
                fields["start_time"] = run.submitted
            result.updates.append(JobUpdate(job.job_id, assessment.status, fields))
        return result

    def cancel(self, jobs: Sequence[JobInfo]) -> list[JobUpdate]:
        """``qdel`` the PBS ones (one call), SIGTERM the local ``bash <script>`` process trees; a
        job with nothing to stop is cancelled at once. The next poll records the end."""
        updates: list[JobUpdate] = []
        native = [job.native_id for job in jobs if job.native_id]
        if native:
            result = self.runner.run(["qdel", *native], check=False)
            if result.returncode != 0:
                log.info("qdel %s exited %d (jobs that already ended say so): %s", " ".join(native),
                         result.returncode, (result.stderr or result.stdout).strip()[:200])
        processes = script_processes() if any(not job.native_id for job in jobs) else {}
        for job in jobs:
            run = run_of(job, self.context.paths.root)
            process = processes.get(os.path.realpath(run.script.path)) if run is not None and run.latest else None
            if job.native_id or process is not None:
                if process is not None:
                    _terminate_tree(process)
                updates.append(JobUpdate(job.job_id, None, {"metadata": {"cancel_requested": True}}, "cancel"))
            else:
                updates.append(JobUpdate(job.job_id, JobStatus.CANCELLED, {
                    "reason": "cancelled by user (nothing of it was running)", "end_time": utcnow(),
                    "metadata": {"cancel_requested": True}}, "cancel"))
        return updates


def _terminate_tree(process: ScriptProcess) -> None:
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


# ------------------------------------------------------------------------------------------------
# Running celline's scripts on any scheduler
# ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ScriptSpec:
    """How to submit a script: its name, type and resources, from its ``#PBS`` header when it has one."""

    name: str
    job_type: JobType | None
    resources: Resources


def script_spec(path: Path, root: Path, scheduler: str) -> ScriptSpec:
    """For ``celline-jobs submit SCRIPT``: a celline script (a ``#PBS`` header, or one of the
    places celline writes scripts) keeps its ``-N`` name with the sample, its type and its
    resources; on SLURM those resources become ``#SBATCH`` lines of our own batch script, and the
    script's ``#PBS`` lines are plain comments to bash. Other scripts get their file name."""
    script = CellineScript.read(path, root)
    in_celline_dir = any(path.match(pattern) for pattern in SCRIPT_PATTERNS)
    if not script.directives.present and not in_celline_dir:
        return ScriptSpec(path.stem, None, Resources())
    resources = script.directives.to_resources(keep_queue=scheduler == "pbs", source=str(path))
    name = script.label if in_celline_dir else (script.directives.name or path.stem)
    return ScriptSpec(name, script.job_type, resources)


def resubmit(monitor: JobMonitor, job_id: str, resources: Resources | dict[str, Any] | str | None = None,
             scheduler: str | None = None) -> str:
    """Run a discovered job's script again, as a new attempt linked to it, on ``scheduler``
    (default: the project's). celline's run stays as it was; the new one logs to logs/<id>.log."""
    old = monitor.get_job(job_id)
    info = old.metadata.get("discovered") or {}
    if old.scheduler != CELLINE_SCHEDULER or not info.get("script"):
        raise InvalidInputError(f"job {old.job_id} was not started by celline: use `celline-jobs retry`")
    if old.status.active:
        raise InvalidInputError(f"job {old.job_id} is still {old.status.value}: cancel it before retrying")
    path = Path(info["script"])
    if not path.is_file():
        raise InvalidInputError(f"the script of job {old.job_id} is gone ({path}): celline has to render it again")
    target = scheduler or monitor.settings.default_scheduler
    spec = script_spec(path, monitor.paths.root, target)
    request = spec.resources
    if resources:
        changes = resources.to_dict() if isinstance(resources, Resources) else (
            resources if isinstance(resources, dict) else Resources.parse(resources).to_dict())
        request = request.merged(**changes)
    return monitor.submit_job(old.name, f"bash {shlex.quote(str(path))}", request, scheduler=target,
                              job_type=old.job_type, working_dir=old.working_dir,
                              metadata={"script": str(path)}, retry_of=old)

