"""The SLURM adapter: sbatch, squeue, sacct, scontrol and scancel, batched and polite.

What it runs (every command has a timeout and is counted in ``self.calls``):

- ``submit``: ``sbatch --parsable .celline/scripts/<job_id>.sh``. The script is rendered from
  ``templates/slurm.sh``; it sends output to ``logs/<job_id>.log`` and writes
  ``logs/<job_id>.exitcode`` when the command ends, so the real exit code is known even after the
  job has left every SLURM table.
- ``poll``: ONE ``squeue -h -r -t all -j <ids> -o <fields>`` for all tracked jobs (``-j`` with a
  list is honoured by plain squeue; ``--json`` ignores it in 22.05, so it is not used). Job names
  are not queried (we know them, and a name may contain the field separator). Jobs that squeue no
  longer lists are resolved from their exit-code file (no command), then with at most ONE more
  call: ``sacct -P`` (slurmdbd), or ``sacct -c -P`` (jobcomp/filetxt) when accounting storage is
  disabled, or ``scontrol -o show job`` when neither works. That call also fetches the exit code of
  jobs squeue shows as failed without an exit-code file, and, with slurmdbd, the resource use of
  jobs that just ended. "Missing" never means "completed": a job nobody knows about keeps its
  status and becomes UNKNOWN (with a reason) only after ``missing_grace`` seconds.
- ``cancel``: one ``scancel id1 id2 ...``; ``queue``: ``squeue -h -u <user>``; ``attach``:
  ``scontrol -o show job <id>`` (then sacct when the controller has forgotten it).

The parse functions at the top are pure functions over command output; they raise only
``ParseError``. Unknown state strings map to ``JobStatus.UNKNOWN`` (the adapter logs them).
"""

from __future__ import annotations

import logging
import re
import shlex
import shutil
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from ..core import reasons
from ..core.errors import InvalidInputError, ParseError, SchedulerError, SubmitError
from ..core.exits import signal_name
from ..core.jobfiles import ExitRecord, read_job_progress
from ..core.models import JobInfo, JobStatus, new_job_id, utcnow
from ..core.paths import ENV_JOB_ID, ProjectPaths, write_job_script
from ..core.resources import Resources, format_memory, format_walltime
from ..core.updates import JobUpdate
from ._batch import (
    CANCEL_SENT_KEY,
    CONTROL_RE,
    DEPENDENCY_KINDS,
    BatchUnit,
    cancel_took_effect,
    collect_units,
    conclusive_exit,
    current_user,
    env_exports,
    error_line,
    exit_file_verdict,
    export_line,
    load_template,
    missing_update,
    optional,
    poll_floor_override,
    read_unit_exit,
    reconciled,
    settle_from_exit_files,
    settled_while_listed,
    summarise_array,
    task_identity,
)
from .base import PollResult, QueueEntry, SchedulerAdapter, SchedulerContext

log = logging.getLogger("celline.job")

# ------------------------------------------------------------------------------------------------
# States
# ------------------------------------------------------------------------------------------------

#: Every SLURM job state, long name (squeue %T, sacct State, scontrol JobState) and compact code
#: (squeue %t, -O StateCompact), mapped to our status. Where our model has no exact match the
#: SLURM state is kept in ``metadata["slurm_state"]`` and in the reason.
SLURM_STATES: dict[str, JobStatus] = {
    "PENDING": JobStatus.QUEUED, "PD": JobStatus.QUEUED,
    "RUNNING": JobStatus.RUNNING, "R": JobStatus.RUNNING,
    # Still cleaning up: not final until SLURM says how it ended.
    "COMPLETING": JobStatus.RUNNING, "CG": JobStatus.RUNNING,
    "COMPLETED": JobStatus.COMPLETED, "CD": JobStatus.COMPLETED,
    "FAILED": JobStatus.FAILED, "F": JobStatus.FAILED,
    "CANCELLED": JobStatus.CANCELLED, "CA": JobStatus.CANCELLED,
    "TIMEOUT": JobStatus.FAILED, "TO": JobStatus.FAILED,
    "OUT_OF_MEMORY": JobStatus.FAILED, "OOM": JobStatus.FAILED,
    "NODE_FAIL": JobStatus.FAILED, "NF": JobStatus.FAILED,
    "PREEMPTED": JobStatus.FAILED, "PR": JobStatus.FAILED,
    "BOOT_FAIL": JobStatus.FAILED, "BF": JobStatus.FAILED,
    "DEADLINE": JobStatus.FAILED, "DL": JobStatus.FAILED,
    "LAUNCH_FAILED": JobStatus.FAILED, "LF": JobStatus.FAILED,
    # Suspended/stopped jobs hold their allocation and resume later: still running for us.
    "SUSPENDED": JobStatus.RUNNING, "S": JobStatus.RUNNING,
    "STOPPED": JobStatus.RUNNING, "ST": JobStatus.RUNNING,
    "RESIZING": JobStatus.RUNNING, "RS": JobStatus.RUNNING,
    "SIGNALING": JobStatus.RUNNING, "SI": JobStatus.RUNNING,
    "STAGE_OUT": JobStatus.RUNNING, "SO": JobStatus.RUNNING,
    # Nodes are being booted for it: allocated, but the script has not started.
    "CONFIGURING": JobStatus.QUEUED, "CF": JobStatus.QUEUED,
    "POWER_UP_NODE": JobStatus.QUEUED, "PU": JobStatus.QUEUED,
    "REQUEUED": JobStatus.QUEUED, "RQ": JobStatus.QUEUED,
    "REQUEUE_FED": JobStatus.QUEUED, "RF": JobStatus.QUEUED,
    "REQUEUE_HOLD": JobStatus.HELD, "RH": JobStatus.HELD,
    # Requeued by an epilog for a particular exit value and held until an operator releases it.
    "SPECIAL_EXIT": JobStatus.HELD, "SE": JobStatus.HELD,
    "RESV_DEL_HOLD": JobStatus.HELD, "RD": JobStatus.HELD,
    # A federated job that started on a sibling cluster: it will never run here.
    "REVOKED": JobStatus.CANCELLED, "RV": JobStatus.CANCELLED,
}
_COMPACT_TO_LONG = {
    "PD": "PENDING", "R": "RUNNING", "CG": "COMPLETING", "CD": "COMPLETED", "F": "FAILED",
    "CA": "CANCELLED", "TO": "TIMEOUT", "OOM": "OUT_OF_MEMORY", "NF": "NODE_FAIL", "PR": "PREEMPTED",
    "BF": "BOOT_FAIL", "DL": "DEADLINE", "LF": "LAUNCH_FAILED", "S": "SUSPENDED", "ST": "STOPPED",
    "RS": "RESIZING", "SI": "SIGNALING", "SO": "STAGE_OUT", "CF": "CONFIGURING", "PU": "POWER_UP_NODE",
    "RQ": "REQUEUED", "RF": "REQUEUE_FED", "RH": "REQUEUE_HOLD", "SE": "SPECIAL_EXIT",
    "RD": "RESV_DEL_HOLD", "RV": "REVOKED",
}
#: Why a job in these final states ended, in words (the SLURM state stays first, for grepping).
_FINAL_STATE_REASONS = {
    "TIMEOUT": "TIMEOUT: the job reached its time limit",
    "OUT_OF_MEMORY": "OUT_OF_MEMORY: the job used more memory than it requested",
    "NODE_FAIL": "NODE_FAIL: a node of the job failed",
    "PREEMPTED": "PREEMPTED: a higher-priority job took its resources",
    "BOOT_FAIL": "BOOT_FAIL: a node failed to boot for the job",
    "DEADLINE": "DEADLINE: the job could not finish before its deadline",
    "LAUNCH_FAILED": "LAUNCH_FAILED: SLURM could not launch the job",
    "REVOKED": "REVOKED: the federated job runs on another cluster",
}
#: The failure kind (core/reasons) of each final SLURM state that explains an end by itself.
_FINAL_STATE_KINDS = {
    "TIMEOUT": reasons.TIMEOUT, "DEADLINE": reasons.TIMEOUT, "OUT_OF_MEMORY": reasons.OOM,
    "NODE_FAIL": reasons.NODE_FAIL, "BOOT_FAIL": reasons.NODE_FAIL, "LAUNCH_FAILED": reasons.NODE_FAIL,
    "PREEMPTED": reasons.PREEMPTED, "REVOKED": reasons.CANCELLED,
}
#: When the exit-code file says "killed by a signal", these accounting states say by whom.
_STATES_THAT_EXPLAIN_A_SIGNAL = frozenset(
    {"TIMEOUT", "CANCELLED", "OUT_OF_MEMORY", "NODE_FAIL", "PREEMPTED", "DEADLINE", "BOOT_FAIL"}
)


def normalise_state(text: str) -> str:
    """"CANCELLED by 0" -> "CANCELLED", "CANCELLED+" -> "CANCELLED", "cd" -> "COMPLETED"."""
    words = str(text).strip().split()
    if not words:
        return ""
    word = words[0].upper().rstrip("+*")
    return _COMPACT_TO_LONG.get(word, word)


def map_state(text: str) -> tuple[JobStatus, bool]:
    """Our status for a SLURM state string, and whether the state is known (unknown -> UNKNOWN)."""
    status = SLURM_STATES.get(normalise_state(text))
    return (status, True) if status is not None else (JobStatus.UNKNOWN, False)


def is_held_reason(reason: str | None) -> bool:
    """Pending reasons that mean "held until someone releases it" (JobHeldUser, JobHeldAdmin)."""
    return bool(reason) and str(reason).startswith("JobHeld")


# ------------------------------------------------------------------------------------------------
# Pure parse functions (text in, values out; only ParseError escapes)
# ------------------------------------------------------------------------------------------------

_NO_VALUE = frozenset({"", "N/A", "NONE", "UNKNOWN", "(NULL)", "INVALID"})
_EXIT_RE = re.compile(r"^(\d{1,9}):(\d{1,9})$")
_DURATION_RE = re.compile(r"^(?:(\d{1,6})-)?(?:(\d{1,9}):)?(\d{1,9}):(\d{1,9}(?:\.\d{1,9})?)$")
_MEMORY_RE = re.compile(r"^(\d{1,18}(?:\.\d{1,9})?)([KMGTP]?)([CN]?)$", re.IGNORECASE)
_MEMORY_UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4, "P": 1024**5}
_ARRAY_PART_RE = re.compile(r"^(\d{1,9})(?:-(\d{1,9})(?::(\d{1,9}))?)?$")
_NATIVE_ID_RE = re.compile(r"^\d{1,12}(?:_\d{1,9})?$")
MAX_ARRAY_TASKS = 100_000


def parse_exit_code(text: str) -> tuple[int | None, int | None]:
    """SLURM's "exit:signal" ("3:0" -> (3, None); "0:9" -> (None, 9): a killed job has no exit code)."""
    match = _EXIT_RE.match(str(text).strip())
    if not match:
        raise ParseError(f"not a SLURM exit code (want N:S): {str(text)[:80]!r}")
    code, sig = int(match.group(1)), int(match.group(2))
    if sig:
        return (code or None), sig
    return code, None


def parse_slurm_time(text: str) -> datetime | None:
    """A SLURM timestamp ("2026-11-28T20:39:29", the cluster's local time) as aware UTC; None for
    N/A, NONE, Unknown, None and empty."""
    value = str(text).strip()
    if value.upper() in _NO_VALUE or value == "0":
        return None
    try:
        moment = datetime.fromisoformat(value)
        if moment.tzinfo is None:
            moment = moment.astimezone()  # naive: SLURM prints the local time of this machine
        return moment.astimezone(timezone.utc)
    except (ValueError, OverflowError, OSError):
        raise ParseError(f"not a SLURM time: {value[:80]!r}") from None


def parse_duration(text: str) -> float | None:
    """Seconds from SLURM durations: "00:00:04", "1:00" (M:SS), "00:00.007" (M:SS.mmm),
    "1-02:03:04". None for empty, UNLIMITED, INVALID, N/A."""
    value = str(text).strip()
    if value.upper() in _NO_VALUE or value.upper() in ("UNLIMITED", "PARTITION_LIMIT"):
        return None
    match = _DURATION_RE.match(value)
    if not match:
        raise ParseError(f"not a SLURM duration: {value[:80]!r}")
    days, hours, minutes, seconds = match.groups()
    return int(days or 0) * 86400 + int(hours or 0) * 3600 + int(minutes) * 60 + float(seconds)


def parse_slurm_memory(text: str) -> int | None:
    """Bytes from sacct sizes: "95376K", "21694M", "4000Mc"/"4000Mn" (per CPU / per node, as in
    SLURM < 21.08). A bare number is bytes. None for empty."""
    value = str(text).strip()
    if value.upper() in _NO_VALUE:
        return None
    match = _MEMORY_RE.match(value)
    if not match:
        raise ParseError(f"not a SLURM memory size: {value[:80]!r}")
    return int(float(match.group(1)) * _MEMORY_UNITS[match.group(2).upper()])


def parse_array_spec(spec: str, limit: int = MAX_ARRAY_TASKS) -> list[int]:
    """The task indexes of an array spec: "1-4%2" -> [1, 2, 3, 4]; "1,3,5"; "0-15:4" -> [0, 4, 8, 12]."""
    text = str(spec).strip().split("%", 1)[0]
    indices: set[int] = set()
    for part in text.split(","):
        match = _ARRAY_PART_RE.match(part.strip())
        if not match:
            raise ParseError(f"not a SLURM array spec: {str(spec)[:80]!r}")
        start = int(match.group(1))
        end = int(match.group(2)) if match.group(2) else start
        step = int(match.group(3)) if match.group(3) else 1
        if end < start or step < 1:
            raise ParseError(f"empty range in array spec {str(spec)[:80]!r}")
        if len(indices) + (end - start) // step + 1 > limit:
            raise ParseError(f"array spec {str(spec)[:80]!r} has more than {limit} tasks")
        indices.update(range(start, end + 1, step))
    return sorted(indices)


def parse_sbatch_output(text: str) -> tuple[str, str | None]:
    """(job id, cluster) from ``sbatch --parsable`` ("123" or "123;cluster"); plain sbatch's
    "Submitted batch job 123" is accepted too."""
    lines = [line.strip() for line in str(text).split("\n") if line.strip()]
    for line in reversed(lines):
        match = re.fullmatch(r"(\d{1,12})(?:;(\S+))?", line)
        if match:
            return match.group(1), match.group(2)
        match = re.fullmatch(r"Submitted batch job (\d{1,12})(?: on cluster (\S+))?", line)
        if match:
            return match.group(1), match.group(2)
    raise ParseError(f"sbatch printed no job id: {str(text).strip()[:200]!r}")


@dataclass(frozen=True)
class SqueueRecord:
    """One line of our squeue format (one job, or with ``-r`` one array task)."""

    raw_id: str  # %A: SLURM's own id of this job or task
    array_job_id: str | None  # %F, for array tasks only
    array_task: str | None  # %K: "3", or "1-4%2" for an unexpanded pending array record
    display_id: str  # %i: "123", "8_3", "8_[1-4%2]"
    state: str  # %T, normalised long name
    reason: str | None  # %r, None for "None"
    start: datetime | None
    end: datetime | None
    nodes: str | None
    user: str | None = None
    name: str | None = None

    @property
    def task_index(self) -> int | None:
        if self.array_task is not None and self.array_task.isdigit():
            return int(self.array_task)
        return None

    @property
    def key(self) -> str:
        """How we name it: "123" for a job, "8_3" for an array task (what users type)."""
        index = self.task_index
        return f"{self.array_job_id}_{index}" if index is not None else self.raw_id


#: squeue fields for polls: %A raw id, %F array job id, %K array task, %i display id, %T state,
#: %r reason, %S start, %e end, %N nodes. No free text: the job name is not asked for.
SQUEUE_FIELDS = ("%A", "%F", "%K", "%i", "%T", "%r", "%S", "%e", "%N")
POLL_FORMAT = "|".join(SQUEUE_FIELDS)
#: For ``queue`` (other people's jobs): user and name appended, the name LAST so a "|" in it only
#: ends up in the name (the line is split at most len-1 times).
QUEUE_FORMAT = POLL_FORMAT + "|%u|%j"


def parse_squeue_line(line: str, *, with_user_and_name: bool = False) -> SqueueRecord:
    count = len(SQUEUE_FIELDS) + (2 if with_user_and_name else 0)
    parts = line.rstrip("\r").split("|", count - 1)
    if len(parts) != count:
        raise ParseError(f"squeue line has {len(parts)} fields, want {count}: {line[:120]!r}")
    raw, array_job, task, display, state, reason, start, end, nodes = (p.strip() for p in parts[:9])
    if not raw.isdigit() or not display:
        raise ParseError(f"squeue line without a job id: {line[:120]!r}")
    if not state:
        raise ParseError(f"squeue line without a state: {line[:120]!r}")
    array_task = None if task.upper() in _NO_VALUE else task
    if array_task is not None and not array_job.isdigit():
        raise ParseError(f"squeue array task without an array job id: {line[:120]!r}")
    return SqueueRecord(
        raw_id=raw,
        array_job_id=array_job if array_task is not None else None,
        array_task=array_task,
        display_id=display,
        state=normalise_state(state),
        reason=None if reason.upper() in _NO_VALUE else reason,
        start=parse_slurm_time(start),
        end=parse_slurm_time(end),
        nodes=_nodes(nodes),
        user=parts[9] if with_user_and_name else None,
        name=parts[10] if with_user_and_name else None,
    )


def parse_squeue(text: str, *, with_user_and_name: bool = False, strict: bool = True) -> list[SqueueRecord]:
    """Records of ``squeue -h -o POLL_FORMAT`` (or QUEUE_FORMAT). ``strict``: a malformed line is
    an error (our own poll output never has one); otherwise it is skipped (a foreign job's name
    with a newline in it must not hide the rest of the queue)."""
    records = []
    for line in str(text).split("\n"):
        if not line.strip():
            continue
        try:
            records.append(parse_squeue_line(line, with_user_and_name=with_user_and_name))
        except ParseError:
            if strict:
                raise
    return records


@dataclass(frozen=True)
class AccountingRecord:
    """What sacct (slurmdbd or jobcomp/filetxt) or scontrol knows about one job or array task."""

    job_id: str  # JobID: "123" or "8_3" (slurmdbd); the raw id with sacct -c
    raw_id: str
    state: str  # normalised long name ("" when the filetxt record was broken)
    exit_code: int | None
    signal: int | None
    start: datetime | None = None
    end: datetime | None = None
    submit: datetime | None = None
    reason: str | None = None
    derived_exit_code: int | None = None
    nodes: str | None = None  # None: never got a node (cancelled while pending)
    usage: Mapping[str, Any] = field(default_factory=dict)


#: sacct fields, in this order. No JobName: names may contain "|" (and filetxt breaks on spaces).
SACCT_FIELDS = ("JobID", "JobIDRaw", "State", "ExitCode", "DerivedExitCode", "Submit", "Start", "End",
                "Elapsed", "MaxRSS", "TotalCPU", "ReqMem", "AllocCPUS", "NodeList")
#: jobcomp/filetxt knows fewer fields (no steps, no usage); these are the ones it fills.
SACCT_C_FIELDS = ("JobID", "JobIDRaw", "State", "ExitCode", "Submit", "Start", "End", "Elapsed", "NodeList")


def parse_sacct_table(text: str) -> list[dict[str, str]]:
    """Rows of ``sacct -P`` output with its header line, as dicts. Rows whose field count does
    not match the header (a broken filetxt record) are skipped: they are not evidence."""
    lines = [line.rstrip("\r") for line in str(text).split("\n") if line.strip()]
    if not lines:
        return []
    header = lines[0].split("|")
    if "JobID" not in header:
        raise ParseError(f"sacct output has no header line: {lines[0][:120]!r}")
    rows = []
    for line in lines[1:]:
        parts = line.split("|")
        if len(parts) > len(header) and header[-1] == "JobName":
            parts = [*parts[:len(header) - 1], "|".join(parts[len(header) - 1:])]  # a "|" in the name
        if len(parts) == len(header):
            rows.append(dict(zip(header, parts, strict=True)))
    return rows


_optional = optional  # shared with the PBS adapter (_batch.optional)


def parse_sacct(text: str) -> list[AccountingRecord]:
    """One record per job or array task (steps such as "123.batch" fold into their job's usage).
    Duplicated ids (sacct -c keeps jobs of earlier controller lifetimes) are all returned."""
    rows = parse_sacct_table(text)
    steps: dict[str, list[dict[str, str]]] = {}
    jobs: list[dict[str, str]] = []
    for row in rows:
        job_id = row.get("JobID", "").strip()
        if not job_id:
            continue
        if "." in job_id:
            steps.setdefault(job_id.split(".", 1)[0], []).append(row)
        else:
            jobs.append(row)
    records = []
    for row in jobs:
        job_id = row["JobID"].strip()
        try:
            exit_code, sig = parse_exit_code(row.get("ExitCode", ""))
        except ParseError:
            exit_code, sig = None, None
        derived = _optional(parse_exit_code, row.get("DerivedExitCode"))
        records.append(AccountingRecord(
            job_id=job_id,
            raw_id=(row.get("JobIDRaw") or job_id).strip(),
            state=normalise_state(row.get("State", "")),
            exit_code=exit_code,
            signal=sig,
            start=_optional(parse_slurm_time, row.get("Start")),
            end=_optional(parse_slurm_time, row.get("End")),
            submit=_optional(parse_slurm_time, row.get("Submit")),
            reason=(row.get("Reason") or "").strip() or None,
            derived_exit_code=derived[0] if derived else None,
            nodes=_nodes(row.get("NodeList")),
            usage=_usage(row, steps.get(job_id, [])),
        ))
    return records


def _usage(row: Mapping[str, str], steps: Sequence[Mapping[str, str]]) -> dict[str, Any]:
    """Resource use of one job, in ``core.usage``'s shape (efficiency is computed from it by readers):
    MaxRSS is only set on steps, TotalCPU on the job line includes them."""
    rss = [_optional(parse_slurm_memory, r.get("MaxRSS")) for r in (row, *steps)]
    rss_known = [r for r in rss if r is not None]
    max_rss = max(rss_known) if rss_known else None
    total_cpu = _optional(parse_duration, row.get("TotalCPU"))
    if not total_cpu and steps:
        step_cpu = [_optional(parse_duration, s.get("TotalCPU")) for s in steps]
        total_cpu = sum(c for c in step_cpu if c) or total_cpu
    elapsed = _optional(parse_duration, row.get("Elapsed"))
    req_mem = _optional(parse_slurm_memory, (row.get("ReqMem") or "").rstrip("cnCN"))
    cpus_text = (row.get("AllocCPUS") or "").strip()
    alloc_cpus = int(cpus_text) if cpus_text.isdigit() and len(cpus_text) < 10 else None
    usage: dict[str, Any] = {}
    for key, value in (("max_rss_bytes", max_rss), ("cpu_seconds", total_cpu), ("elapsed_seconds", elapsed),
                       ("req_mem_bytes", req_mem), ("alloc_cpus", alloc_cpus)):
        if value is not None:
            usage[key] = value
    return usage


#: Keys whose values Slurm prints verbatim, spaces included (names, paths, free text). Every other
#: value ends at the first space, so a key this list does not know (``SchedNodeList=``,
#: ``FedOrigin=``, ``Gres=``, the per-node ``Nodes= CPU_IDs= Mem=`` lines of ``-d``) starts its
#: own pair instead of being glued onto the previous value.
SCONTROL_SPACED_KEYS = frozenset({
    "JobName", "Reason", "Command", "WorkDir", "StdErr", "StdIn", "StdOut", "Comment", "AdminComment",
    "SystemComment", "Container", "ContainerID",
})
#: Keys of ``scontrol show job`` (17.02 to 24.x). Inside a value that may contain spaces, only one of
#: these starts the next pair: ``JobName=a b=c UserId=...`` is the name "a b=c".
SCONTROL_KEYS = frozenset({
    "JobId", "ArrayJobId", "ArrayTaskId", "ArrayTaskThrottle", "HetJobId", "HetJobOffset", "HetJobIdSet",
    "JobName", "UserId", "GroupId", "MCS_label", "Priority", "Nice", "Account", "QOS", "JobState", "Reason",
    "Dependency", "Requeue", "Restarts", "BatchFlag", "Reboot", "ExitCode", "DerivedExitCode", "RunTime",
    "TimeLimit", "TimeMin", "SubmitTime", "EligibleTime", "AccrueTime", "StartTime", "EndTime", "Deadline",
    "PreemptEligibleTime", "PreemptTime", "SuspendTime", "SecsPreSuspend", "LastSchedEval", "Scheduler",
    "Partition", "AllocNode:Sid", "ReqNodeList", "ExcNodeList", "NodeList", "SchedNodeList", "BatchHost",
    "BatchFeatures", "StepMgrEnabled", "FedOrigin", "FedViableSiblings", "FedActiveSiblings", "NumNodes",
    "NumCPUs", "NumTasks", "CPUs/Task", "ReqB:S:C:T", "TRES", "ReqTRES", "AllocTRES", "Socks/Node",
    "NtasksPerN:B:S:C", "CoreSpec", "Nodes", "CPU_IDs", "Mem", "GRES", "GRES_IDX", "MinCPUsNode",
    "MinMemoryNode", "MinMemoryCPU", "MinTmpDiskNode", "Features", "ClusterFeatures", "DelayBoot", "Gres",
    "Shared", "OverSubscribe", "Contiguous", "Licenses", "Network", "Command", "WorkDir", "StdErr", "StdIn",
    "StdOut", "Power", "SICP", "Comment", "AdminComment", "SystemComment", "Reservation", "MailUser",
    "MailType", "TresPerNode", "TresPerJob", "TresPerTask", "TresPerSocket", "CpusPerTres", "MemPerTres",
    "NtasksPerTRES", "KillOInInvalidDependent", "Container", "ContainerID", "CronJob", "CrontabSpec",
    "SiblingsActive", "SiblingsViable", "ResvPorts", "SelinuxContext", "Prolog", "Epilog", "LastBusyTime",
    "Switches", "Wait-for-Switch", "BurstBuffer", "BurstBufferState", "CpuFreqMin", "CpuFreqMax",
    "CpuFreqGov", "ThreadSpec", "TresBind", "TresFreq",
})
_SCONTROL_PAIR_RE = re.compile(r"^([A-Za-z][A-Za-z0-9_:/+-]{0,63})=")
_SCONTROL_COLON_RE = re.compile(r"^([A-Za-z][A-Za-z0-9_/]{0,63}):(\S*)$")  # "NtasksPerTRES:0" (sic)
_SCONTROL_TOKEN_RE = re.compile(r"\S+")


def _scontrol_pairs(line: str, record: dict[str, str]) -> None:
    """The key=value pairs of one line into ``record`` (the first value of a key wins)."""
    key: str | None = None
    start = end = 0
    spaced = False

    def close() -> None:
        if key is not None:
            record.setdefault(key, line[start:end])

    for token in _SCONTROL_TOKEN_RE.finditer(line):
        text = token.group()
        pair = _SCONTROL_PAIR_RE.match(text)
        if pair and (not spaced or pair.group(1) in SCONTROL_KEYS):
            close()
            key, spaced = pair.group(1), pair.group(1) in SCONTROL_SPACED_KEYS
            start, end = token.start() + pair.end(), token.end()
        elif spaced:
            end = token.end()  # a name or path with spaces in it
        else:
            colon = _SCONTROL_COLON_RE.match(text)
            if colon:
                close()
                record.setdefault(colon.group(1), colon.group(2))
                key = None
            # any other stray word is not part of a value that cannot contain spaces: dropped
    close()


def parse_scontrol_jobs(text: str) -> list[dict[str, str]]:
    """Records of ``scontrol show job`` in its multi-line form or with ``-o`` (one line each).

    Pairs are read generically (``Key=value``; a value ends at the next space unless its key is
    one of ``SCONTROL_SPACED_KEYS``), so keys added by other Slurm versions or options are parsed
    as their own pairs. In the multi-line form a value never runs past the end of its line."""
    records: list[dict[str, str]] = []
    for line in str(text).split("\n"):
        stripped = line.strip()
        if not stripped:
            continue
        if stripped.startswith("JobId="):
            records.append({})
        elif not records:
            raise ParseError(f"scontrol output does not start with JobId=: {stripped[:120]!r}")
        _scontrol_pairs(stripped, records[-1])
    for record in records:
        if not record.get("JobId", "").isdigit():
            raise ParseError(f"scontrol record without a numeric JobId: {record.get('JobId', '')[:120]!r}")
    return records


def scontrol_accounting(record: Mapping[str, str]) -> AccountingRecord:
    """The facts of one scontrol record in the shape sacct gives them."""
    exit_code, sig = _optional(parse_exit_code, record.get("ExitCode")) or (None, None)
    derived = _optional(parse_exit_code, record.get("DerivedExitCode"))
    job_id = record["JobId"]
    task = record.get("ArrayTaskId", "")
    if task.isdigit() and record.get("ArrayJobId", "").isdigit():
        job_id = f"{record['ArrayJobId']}_{task}"
    reason = record.get("Reason")
    return AccountingRecord(
        job_id=job_id, raw_id=record["JobId"], state=normalise_state(record.get("JobState", "")),
        exit_code=exit_code, signal=sig,
        start=_optional(parse_slurm_time, record.get("StartTime")),
        end=_optional(parse_slurm_time, record.get("EndTime")),
        submit=_optional(parse_slurm_time, record.get("SubmitTime")),
        reason=None if reason is None or reason.upper() in _NO_VALUE else reason,
        derived_exit_code=derived[0] if derived else None,
        nodes=_nodes(record.get("NodeList")),
    )


def _nodes(text: str | None) -> str | None:
    value = (text or "").strip()
    return None if value.upper() in _NO_VALUE or value == "None assigned" else value


# ------------------------------------------------------------------------------------------------
# The batch script
# ------------------------------------------------------------------------------------------------

_CONTROL_RE = CONTROL_RE
MAX_SLURM_NAME = 200


def sbatch_quote(value: str) -> str:
    """A value for an ``#SBATCH`` line: control characters (newlines!) become spaces, so the line
    stays one bash comment; then double quotes with ``\\`` and ``"`` escaped, which is how
    sbatch reads directive arguments (checked on 22.05 with quotes, $, `, #, | and spaces)."""
    text = _CONTROL_RE.sub(" ", str(value))
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def slurm_filename(path: str) -> str:
    """A path for --output: SLURM expands %j, %a... in it, and reads "%%" as a literal "%"."""
    return str(path).replace("%", "%%")


def slurm_job_name(name: str) -> str:
    """The name SLURM gets: one line, at most MAX_SLURM_NAME characters (ours keeps the full name)."""
    text = " ".join(_CONTROL_RE.sub(" ", str(name)).split())
    return text[:MAX_SLURM_NAME] or "celline-job"


def _extra_directive(line: str) -> str | None:
    text = _CONTROL_RE.sub(" ", str(line)).strip()
    if text.upper().startswith("#SBATCH"):
        text = text[len("#SBATCH"):].strip()
    return f"#SBATCH {text}" if text else None


def sbatch_directives(job: JobInfo, paths: ProjectPaths) -> list[str]:
    """The ``#SBATCH`` lines for ``job``: name, log, working dir, resources, array, dependency,
    then the user's extra lines (last, so they can override ours)."""
    res: Resources = job.resources
    array = job.metadata.get("array")
    log_path = str(paths.logs_dir / f"{job.job_id}.log")
    if array:
        # Each task logs to logs/<job_id>_<index>.log: the file of its own child row.
        log_path = slurm_filename(str(paths.logs_dir / job.job_id)) + "_%a.log"
    else:
        log_path = slurm_filename(log_path)
    lines = [
        f"#SBATCH --job-name={sbatch_quote(slurm_job_name(job.name))}",
        f"#SBATCH --output={sbatch_quote(log_path)}",
        "#SBATCH --open-mode=append",
        f"#SBATCH --chdir={sbatch_quote(job.working_dir or str(paths.root))}",
    ]
    if res.cpus is not None:
        lines.append(f"#SBATCH --cpus-per-task={int(res.cpus)}")
    if res.memory is not None:
        lines.append(f"#SBATCH --mem={format_memory(int(res.memory))}")
    if res.walltime is not None:
        lines.append(f"#SBATCH --time={format_walltime(int(res.walltime))}")
    if res.partition:
        lines.append(f"#SBATCH --partition={sbatch_quote(res.partition)}")
    if res.account:
        lines.append(f"#SBATCH --account={sbatch_quote(res.account)}")
    if res.gpus:
        lines.append(f"#SBATCH --gpus={int(res.gpus)}")
    if res.nodes is not None:
        lines.append(f"#SBATCH --nodes={int(res.nodes)}")
    if array:
        spec = str(array).strip()
        try:
            parse_array_spec(spec)
        except ParseError as exc:
            raise SubmitError(f"invalid array {spec!r}: {exc}") from None
        lines.append(f"#SBATCH --array={spec}")
    dependencies = [str(d) for d in job.metadata.get("native_dependencies") or []]
    if dependencies:
        kind = job.dependency_kind or "afterok"
        if kind not in DEPENDENCY_KINDS or not all(_NATIVE_ID_RE.match(d) for d in dependencies):
            raise SubmitError(f"invalid SLURM dependency {kind}:{':'.join(dependencies)[:80]}")
        lines.append(f"#SBATCH --dependency={kind}:{':'.join(dependencies)}")
        # A dependency that can never be met cancels the job (DependencyNeverSatisfied) instead of
        # leaving it pending forever on clusters without kill_invalid_depend.
        lines.append("#SBATCH --kill-on-invalid-dep=yes")
    for extra in res.extra:
        directive = _extra_directive(extra)
        if directive:
            lines.append(directive)
    return lines


def render_batch_script(job: JobInfo, paths: ProjectPaths) -> str:
    """The batch script for ``job`` (deterministic: same job, same text)."""
    exports = env_exports(job, paths)  # the job's variables, then ours (shared with the PBS adapter)
    array_setup = ""
    if job.metadata.get("array"):
        array_setup = (
            "# An array task is a job of its own: <job id>_<index> names its log, progress and exit files.\n"
            f"{export_line('CELLINE_ARRAY_PARENT_JOB_ID', job.job_id)}\n"
            f'export {ENV_JOB_ID}="${{CELLINE_ARRAY_PARENT_JOB_ID}}_${{SLURM_ARRAY_TASK_ID}}"\n'
        )
    return load_template("slurm.sh").substitute(
        job_id=job.job_id,
        directives="\n".join(sbatch_directives(job, paths)),
        exports="\n".join(exports),
        array_setup=array_setup,
        command=shlex.quote(job.command.replace("\0", "")),
    )


# ------------------------------------------------------------------------------------------------
# The adapter
# ------------------------------------------------------------------------------------------------

MIN_POLL_ENV = "CELLINE_JOBS_SLURM_MIN_POLL_INTERVAL"
MISSING_GRACE_SECONDS = 300.0
ACCOUNTING_RECHECK_SECONDS = 3600.0
ACCOUNTING_META_KEY = "slurm.accounting"
USAGE_FOLLOWUP_SECONDS = 120.0
SQUEUE_CHUNK = 2000  # ids per squeue call: keeps argv bounded; 2000 tracked jobs is still one call


@dataclass
class _Unit(BatchUnit):
    """One job or array task being polled, and the evidence gathered about it this poll (the
    exit-code file, cancel mark and decision live in ``BatchUnit``, shared with PBS)."""

    record: SqueueRecord | None = None
    acct: AccountingRecord | None = None
    want_accounting: bool = False
    want_usage: bool = False

    @property
    def raw_id(self) -> str | None:
        if self.record is not None:
            return self.record.raw_id
        raw = self.metadata.get("raw_id")
        if raw:
            return str(raw)
        return self.native_id if self.native_id.isdigit() else None


class SlurmScheduler(SchedulerAdapter):
    """SLURM through its command-line tools (tested on 22.05; parsers cover newer text shapes)."""

    name = "slurm"
    settles_from_files = True
    #: The floor under the poll interval (seconds). Override per project with the adapter setting
    #: ``slurm_min_poll_interval`` or the environment variable CELLINE_JOBS_SLURM_MIN_POLL_INTERVAL.
    min_poll_interval = 30.0
    default_poll_interval = 30.0
    #: Right after a submit the monitor polls this often (see JobMonitor.poll_interval).
    fast_poll_interval = 3.0
    #: A job SLURM no longer lists, with no exit-code file and no accounting record, becomes
    #: UNKNOWN after this long (never "completed").
    missing_grace = MISSING_GRACE_SECONDS
    #: Seconds between ``sstat`` samples of running jobs' memory and CPU.
    usage_interval = 300.0

    def __init__(self, context: SchedulerContext) -> None:
        super().__init__(context)
        floor = poll_floor_override(context.settings, "slurm_min_poll_interval", MIN_POLL_ENV, "SLURM")
        if floor is not None:
            self.min_poll_interval = floor  # type: ignore[misc]  # per-instance override of the class floor
        self._last_usage_sample = -float("inf")
        self._accounting: str | None = None  # "slurmdbd", "jobcomp", "none"; None: not probed yet
        self._accounting_checked = 0.0
        self._usage_followups: dict[str, tuple[str, float]] = {}  # job id -> (native id, give up at)
        self._logged_states: set[tuple[str, str]] = set()

    def available(self) -> bool:
        return shutil.which("sbatch") is not None and shutil.which("squeue") is not None

    # -- submit ------------------------------------------------------------------------------

    def submit(self, job: JobInfo) -> JobUpdate:
        paths = self.context.paths
        if not paths.logs_dir.is_dir():  # sbatch does not create --output's directory
            paths.logs_dir.mkdir(parents=True, exist_ok=True)
        script = render_batch_script(job, paths)
        path = paths.script_file(job.job_id)
        write_job_script(path, script)
        try:
            result = self.runner.run(["sbatch", "--parsable", str(path)], check=False)
        except SchedulerError as exc:
            if "did not answer" not in str(exc):
                raise SubmitError(str(exc)) from None
            # A timed-out sbatch may still have submitted: say so rather than guess.
            raise SubmitError(f"{exc} (the controller may have accepted the job anyway: "
                              f"check `squeue -n {shlex.quote(slurm_job_name(job.name))}`)") from None
        if result.returncode != 0:
            raise SubmitError(_error_line(result.stderr or result.stdout, f"sbatch exited {result.returncode}"))
        try:
            native_id, cluster = parse_sbatch_output(result.stdout)
        except ParseError as exc:
            raise SubmitError(str(exc)) from None
        held = any(re.match(r"^(#SBATCH\s+)?(-H|--hold)\b", e.strip()) for e in job.resources.extra)
        metadata: dict[str, Any] = {"script": str(path)}
        if cluster:
            metadata["slurm_cluster"] = cluster
        if job.metadata.get("native_dependencies"):
            metadata["native_dependencies"] = list(job.metadata["native_dependencies"])
        fields: dict[str, Any] = {"native_id": native_id, "submit_time": utcnow(), "reason": None,
                                  "metadata": metadata}
        if job.metadata.get("array"):
            indices = _indices_or_empty(str(job.metadata["array"]))
            if indices:  # the parent row shows the first task's log
                fields["log_file"] = str(paths.log_file(f"{job.job_id}_{indices[0]}"))
        return JobUpdate(job.job_id, JobStatus.HELD if held else JobStatus.QUEUED, fields, source="submit")

    # -- poll --------------------------------------------------------------------------------

    def settle(self) -> list[JobUpdate]:
        return settle_from_exit_files(self.context, self.name)

    def poll(self, jobs: Sequence[JobInfo]) -> PollResult:
        """The state of ``jobs`` from ONE squeue call (+ at most one resolution call).

        Returns a ``JobUpdate`` per job whose facts are known. For an array job (a job with
        ``metadata["array"]``, e.g. "1-4%2") it returns:

        - one update per task not yet final in the store, for the child id
          ``f"{parent.job_id}_{index}"``, whose ``fields`` always hold ``array_parent`` (the parent's
          job id), ``array_index`` (int) and ``native_id`` (``"<array id>_<index>"``) besides the
          task's status fields; the monitor inserts the rows that do not exist yet;
        - one update for the parent summarising its tasks: RUNNING once any task started, final
          when all are (FAILED if any failed, else CANCELLED if any was cancelled, else COMPLETED),
          with ``metadata["array_tasks"]`` = counts per status plus ``"total"``.

        Array tasks whose parent is not among ``jobs`` are polled by their own native id.
        """
        calls_before = self.runner.calls
        units, parents = self._units(jobs)
        if not units and not parents:
            return PollResult([], 0)
        wanted = [p.native_id for p, _children in parents if p.native_id]
        wanted += [u.native_id for u in units if u.parent is None or u.parent.native_id is None]
        records = self._squeue(list(dict.fromkeys(wanted)))
        by_key: dict[str, SqueueRecord] = {}
        for record in records:
            by_key.setdefault(record.key, record)
        # Array tasks we have no row for yet become units now (the monitor inserts them).
        known_units = {u.job_id for u in units}
        for parent, children in parents:
            for index in self._task_indices(parent, records):
                child_id = f"{parent.job_id}_{index}"
                child = children.get(index)
                if child_id in known_units or (child is not None and child.status.final):
                    continue
                units.append(_Unit(child_id, f"{parent.native_id}_{index}", child, parent, index))
                known_units.add(child_id)
        mode = self._accounting_mode()
        for unit in units:
            unit.record = by_key.get(unit.native_id)
            self._observe(unit, usage_known=mode in (None, "slurmdbd"))
        followups = dict(self._usage_followups) if mode in (None, "slurmdbd") else {}
        late = self._resolve(units, mode, [native for native, _deadline in followups.values()])
        updates: list[JobUpdate] = []
        for unit in units:
            update = self._decide(unit)
            if update is not None:
                updates.append(update)
        for parent, children in parents:
            update = self._summarise(parent, children, [u for u in units if u.parent is parent])
            if update is not None:
                updates.append(update)
        updates.extend(self._follow_up_usage(units, followups, late))
        updates.extend(self._sample_running_usage(units))
        return PollResult(updates, self.runner.calls - calls_before)

    def _sample_running_usage(self, units: Sequence[_Unit]) -> list[JobUpdate]:
        """Memory and CPU of running jobs from one ``sstat``, at most every ``usage_interval``
        seconds (sstat asks every node that runs them: far rarer than the status poll)."""
        running = [u.job for u in units if u.job is not None and u.status is JobStatus.RUNNING]
        if not running or time.monotonic() - self._last_usage_sample < self.usage_interval:
            return []
        self._last_usage_sample = time.monotonic()
        try:
            sampled = self.running_usage(running)
        except SchedulerError as exc:  # usage is a nicety: a failed sstat never makes a poll stale
            log.info("sstat failed, no resource use this time: %s", exc)
            return []
        updates = []
        for job in running:
            if job.job_id in sampled:
                usage = {**(job.metadata.get("usage") or {}), **sampled[job.job_id], "sampled_at": time.time()}
                updates.append(JobUpdate(job.job_id, None, {"metadata": {"usage": usage}}, source="poll"))
        return updates

    def _follow_up_usage(self, units: Sequence[_Unit], asked: Mapping[str, tuple[str, float]],
                         late: Mapping[str, AccountingRecord]) -> list[JobUpdate]:
        """slurmdbd may learn a job's step usage (MaxRSS) only after the job has ended: jobs that
        ended without it are asked again, inside the same one sacct call, by the polls of the next
        USAGE_FOLLOWUP_SECONDS (best effort: polls only happen while some job is active)."""
        updates = []
        now = time.time()
        for job_id, (native, deadline) in asked.items():
            record = late.get(native)
            if record is not None and map_state(record.state)[0].final and record.usage:
                updates.append(JobUpdate(job_id, None, {"metadata": {"usage": dict(record.usage)}}, source="usage"))
                if "max_rss_bytes" in record.usage:
                    self._usage_followups.pop(job_id, None)
                    continue
            if now >= deadline:
                self._usage_followups.pop(job_id, None)
        if self._accounting in (None, "slurmdbd"):
            for unit in units:
                if unit.status is not None and unit.status.final and unit.want_usage \
                        and "max_rss_bytes" not in (unit.acct.usage if unit.acct is not None else {}):
                    self._usage_followups[unit.job_id] = (unit.native_id, now + USAGE_FOLLOWUP_SECONDS)
        else:
            self._usage_followups.clear()
        return updates

    def _units(self, jobs: Sequence[JobInfo]) -> tuple[list[_Unit], list[tuple[JobInfo, dict[int, JobInfo]]]]:
        return collect_units(jobs, self.context.store, _Unit)

    @staticmethod
    def _task_indices(parent: JobInfo, records: Sequence[SqueueRecord]) -> list[int]:
        indices = set(_indices_or_empty(str(parent.metadata.get("array", ""))))
        indices.update(r.task_index for r in records
                       if r.array_job_id == parent.native_id and r.task_index is not None)
        return sorted(indices)

    def _squeue(self, native_ids: Sequence[str]) -> list[SqueueRecord]:
        records: list[SqueueRecord] = []
        for start in range(0, len(native_ids), SQUEUE_CHUNK):
            chunk = native_ids[start:start + SQUEUE_CHUNK]
            result = self.runner.run(["squeue", "-h", "-r", "-t", "all", "-j", ",".join(chunk), "-o", POLL_FORMAT],
                                     check=False)
            if result.returncode != 0:
                # One id that the controller does not know is an error for squeue; it just means
                # "not listed" (several unknown ids exit 0 with no lines).
                if "invalid job id" in result.stderr.lower():
                    continue
                raise SchedulerError(f"squeue exited {result.returncode}: "
                                     f"{_error_line(result.stderr or result.stdout, 'no output')}")
            try:
                records.extend(parse_squeue(result.stdout))
            except ParseError as exc:
                raise SchedulerError(f"unexpected squeue output: {exc}") from None
        return records

    def _observe(self, unit: _Unit, usage_known: bool) -> None:
        """Read the unit's exit-code file and decide whether it needs the resolution call
        (``want_accounting``: evidence or an exit code is missing) or would like resource use
        from it (``want_usage``: it ends now and slurmdbd may be there; ``usage_known`` says so)."""
        read_unit_exit(unit, self.context.paths)
        record = unit.record
        if record is not None:
            status, known = map_state(record.state)
            if not known and (unit.job_id, record.state) not in self._logged_states:
                self._logged_states.add((unit.job_id, record.state))  # once, not at every poll
                log.warning("job %s: unknown SLURM state %r (shown as unknown)", unit.job_id, record.state)
            if status.final:
                # squeue has no exit code: ask accounting when there is no exit-code file.
                unit.want_accounting = unit.exit is None and status is JobStatus.FAILED
                unit.want_usage = usage_known
            return
        if unit.exit is not None:
            # Killed by a signal: a time limit, scancel, OOM...? Or an exit that raced a cancel:
            # did SLURM have the job as ended before the cancel came? Accounting can say.
            unit.want_accounting = not conclusive_exit(unit)
            unit.want_usage = usage_known
            return
        unit.want_accounting = True  # missing, and no file: only accounting can tell

    # -- resolution (the one extra call) -----------------------------------------------------

    def _accounting_mode(self) -> str | None:
        if self._accounting is not None and time.time() - self._accounting_checked < ACCOUNTING_RECHECK_SECONDS:
            return self._accounting
        stored = self.context.store.get_meta(ACCOUNTING_META_KEY)
        if stored:
            mode, _, when = stored.partition("@")
            try:
                checked = float(when)
            except ValueError:
                checked = 0.0
            if mode in ("slurmdbd", "jobcomp", "none") and time.time() - checked < ACCOUNTING_RECHECK_SECONDS:
                self._accounting, self._accounting_checked = mode, checked
                return mode
        return None

    def _set_accounting(self, mode: str) -> None:
        if mode != self._accounting:
            log.info("SLURM accounting: %s", mode)
        self._accounting, self._accounting_checked = mode, time.time()
        try:
            self.context.store.set_meta(ACCOUNTING_META_KEY, f"{mode}@{self._accounting_checked:.0f}")
        except Exception as exc:  # a cache only: never fail a poll over it
            log.debug("could not remember the SLURM accounting mode: %s", exc)

    def _resolve(self, units: Sequence[_Unit], mode: str | None,
                 followups: Sequence[str] = ()) -> dict[str, AccountingRecord]:
        """At most one call for every unit that needs accounting (plus, once per hour and project,
        the probe that finds out whether slurmdbd is there). ``followups``: native ids of jobs that
        already ended, whose resource use is asked for again; returns their records."""
        need = [u for u in units if u.want_accounting]
        usage = [u for u in units if u.want_usage and not u.want_accounting]
        records: list[AccountingRecord] = []
        try:
            if mode in (None, "slurmdbd") and (need or usage or followups):
                ids = list(dict.fromkeys([*(u.native_id for u in (*need, *usage)), *followups]))
                result = self.runner.run(["sacct", "-P", "-j", ",".join(ids), "-o", ",".join(SACCT_FIELDS)],
                                         check=False)
                if result.returncode == 0:
                    self._set_accounting("slurmdbd")
                    records = parse_sacct(result.stdout)
                    mode = "slurmdbd"
                elif "accounting storage is disabled" in result.stderr.lower():
                    self._set_accounting("jobcomp")
                    mode = "jobcomp" if mode is None else "probe-done"  # a probe: ask jobcomp right away once
                else:
                    log.warning("sacct failed, no accounting this poll: %s", _error_line(result.stderr, "no output"))
                    mode = "failed"
            if mode == "jobcomp" and need:
                # filetxt lists array tasks only under their raw ids; tasks never seen running have none.
                ids = list(dict.fromkeys(raw for raw in (u.raw_id for u in need) if raw))
                if ids:
                    result = self.runner.run(["sacct", "-c", "-P", "-j", ",".join(ids), "-o",
                                              ",".join(SACCT_C_FIELDS)], check=False)
                    if result.returncode == 0:
                        records = parse_sacct(result.stdout)
                    else:
                        log.warning("sacct -c failed: %s", _error_line(result.stderr, "no output"))
                        self._set_accounting("none")
            elif mode == "none" and need:
                in_queue = [u for u in need if u.record is not None and u.raw_id]
                if in_queue:
                    # scontrol knows only what squeue knows: used for the exit code of a listed job.
                    target = [in_queue[0].raw_id or ""] if len(in_queue) == 1 else []
                    result = self.runner.run(["scontrol", "-o", "show", "job", *target], check=False)
                    if result.returncode == 0:
                        records = [scontrol_accounting(r) for r in parse_scontrol_jobs(result.stdout)]
        except (SchedulerError, ParseError) as exc:
            log.warning("SLURM accounting lookup failed (no evidence this poll): %s", exc)
            return {}
        by_id: dict[str, list[AccountingRecord]] = {}
        for record in records:
            by_id.setdefault(record.job_id, []).append(record)
            if record.raw_id != record.job_id:
                by_id.setdefault(f"raw:{record.raw_id}", []).append(record)
        for unit in (*need, *usage):
            candidates = by_id.get(unit.native_id, [])
            if not candidates and unit.raw_id:
                candidates = by_id.get(unit.raw_id, []) or by_id.get(f"raw:{unit.raw_id}", [])
            unit.acct = _pick(candidates, unit)
        return {native: by_id[native][-1] for native in followups if by_id.get(native)}

    # -- deciding ----------------------------------------------------------------------------

    def _decide(self, unit: _Unit) -> JobUpdate | None:
        listed_unfinished = unit.record is not None and not map_state(unit.record.state)[0].final
        if listed_unfinished and conclusive_exit(unit):
            record = unit.record
            assert record is not None
            facts = {"slurm_state": record.state, "raw_id": record.raw_id}
            if record.nodes:
                facts["nodes"] = record.nodes
            update: JobUpdate | None = settled_while_listed(unit, record.start, facts)
        else:
            update = self._judge(unit)
        return reconciled(unit, update, scheduler_done=not listed_unfinished)

    def _judge(self, unit: _Unit) -> JobUpdate | None:
        """What this poll's evidence says of a job: squeue's record first, else its exit-code file,
        else accounting, else missing."""
        record, exit_record, acct = unit.record, unit.exit, unit.acct
        meta: dict[str, Any] = {}
        fields: dict[str, Any] = {}
        slurm_state: str | None = None
        slurm_reason: str | None = None
        status: JobStatus | None = None
        reason: str | None = None
        if record is not None:
            status, _known = map_state(record.state)
            slurm_state, slurm_reason = record.state, record.reason
            if status is JobStatus.QUEUED and is_held_reason(record.reason):
                status = JobStatus.HELD
            if status not in (JobStatus.QUEUED, JobStatus.HELD):
                meta["raw_id"] = record.raw_id  # a pending array task shows its array's id, not its own
            if record.nodes:
                meta["nodes"] = record.nodes
        elif exit_record is not None:
            # The local executor's rule (cancel requested -> cancelled, 0 -> completed, else failed).
            status, reason = exit_file_verdict(unit, exit_record)
            if acct is not None and map_state(acct.state)[0].final and (
                    cancel_took_effect(unit) is None
                    or (exit_record.signal is not None and acct.state in _STATES_THAT_EXPLAIN_A_SIGNAL)):
                status, slurm_state, reason = map_state(acct.state)[0], acct.state, None
        elif acct is not None and map_state(acct.state)[0].final:
            status, slurm_state, slurm_reason = map_state(acct.state)[0], acct.state, acct.reason
        if status is None:
            return self._missing(unit)
        if slurm_state is not None:
            meta["slurm_state"] = slurm_state
        if unit.metadata.get("missing_since") is not None:
            meta["missing_since"] = None  # found again
        # Times: SLURM's start (else the batch script's); the exit file's end (the real one: after
        # an outage SLURM records the moment it heard about the end).
        start = ((record.start if record else None) or (acct.start if acct else None)
                 or (exit_record.start_time if exit_record else None))
        # A job cancelled while pending shows the cancel time as its start: only a job that got a
        # node has really started.
        source = record if record is not None else acct
        ran = status is JobStatus.RUNNING or source is None or source.nodes is not None
        if start is not None and ran and (status is JobStatus.RUNNING or status.final):
            fields["start_time"] = start
        if status.final:
            fields["end_time"] = ((exit_record.end_time if exit_record else None) or (record.end if record else None)
                                  or (acct.end if acct else None) or utcnow())
            exit_code, sig = self._exit_status(status, exit_record, acct)
            fields["exit_code"], fields["signal"] = exit_code, sig
            if acct is not None and acct.usage and map_state(acct.state)[0].final:
                meta["usage"] = dict(acct.usage)
            if acct is not None and acct.derived_exit_code:
                meta["derived_exit_code"] = acct.derived_exit_code
            if reason is None:
                reason = self._final_reason(unit, status, slurm_state, slurm_reason, exit_code, sig)
            kind = self._final_kind(unit, status, slurm_state, slurm_reason, exit_code, sig)
            if kind is not None:
                meta[reasons.KIND_META_KEY] = kind
        elif status in (JobStatus.QUEUED, JobStatus.HELD):
            reason = slurm_reason
        elif status is JobStatus.RUNNING:
            reason = slurm_state.lower() if slurm_state in ("SUSPENDED", "STOPPED") else None
            progress = read_job_progress(self.context.paths, unit.job.job_id, unit.job.progress) \
                if unit.job is not None else None
            if progress is not None:
                fields["progress"] = progress
        else:
            reason = f"SLURM reports the unknown state {slurm_state!r}" if slurm_state else None
        fields["reason"] = reason
        if meta:
            fields["metadata"] = meta
        fields.update(task_identity(unit))
        unit.status, unit.fields = status, fields
        return JobUpdate(unit.job_id, status, fields, source="poll")

    @staticmethod
    def _exit_status(status: JobStatus, exit_record: ExitRecord | None,
                     acct: AccountingRecord | None) -> tuple[int | None, int | None]:
        if exit_record is not None:
            return exit_record.exit_code, exit_record.signal
        # A filetxt record of a job whose name has spaces loses its State but keeps its ExitCode
        # (a key of its own): good enough once squeue or the record itself says the job ended.
        if acct is not None and (map_state(acct.state)[0].final or (acct.state == "" and status.final)):
            return acct.exit_code, acct.signal
        return (0, None) if status is JobStatus.COMPLETED else (None, None)

    def _final_reason(self, unit: _Unit, status: JobStatus, slurm_state: str | None, slurm_reason: str | None,
                      exit_code: int | None, sig: int | None) -> str | None:
        if status is JobStatus.COMPLETED:
            return None
        if status is JobStatus.CANCELLED:
            if slurm_reason == "DependencyNeverSatisfied" or (slurm_reason or "").startswith("Dependency"):
                if not unit.cancel_requested:
                    deps = unit.metadata.get("native_dependencies") or []
                    return reasons.dependency_never_satisfied(
                        kind=unit.job.dependency_kind if unit.job else None, on=deps, scheduler="SLURM")
            if unit.cancel_requested:
                return reasons.CANCELLED_BY_USER
            if slurm_state == "REVOKED":
                return _FINAL_STATE_REASONS["REVOKED"]
            return "cancelled in SLURM (scancel or an administrator)"
        if slurm_state in _FINAL_STATE_REASONS:
            return _FINAL_STATE_REASONS[slurm_state]
        if sig is not None:
            return f"killed by signal {signal_name(sig)}"
        if exit_code:
            return f"exit code {exit_code}"
        return slurm_reason or "failed"

    @staticmethod
    def _final_kind(unit: _Unit, status: JobStatus, slurm_state: str | None, slurm_reason: str | None,
                    exit_code: int | None, sig: int | None) -> str | None:
        """The failure kind of a final status (None for a completed job)."""
        if status is JobStatus.COMPLETED:
            return None
        if status is JobStatus.CANCELLED:
            if (slurm_reason or "").startswith("Dependency") and not unit.cancel_requested:
                return reasons.DEPENDENCY
            return _FINAL_STATE_KINDS.get(slurm_state or "", reasons.CANCELLED)
        if slurm_state in _FINAL_STATE_KINDS:
            return _FINAL_STATE_KINDS[slurm_state]
        return reasons.SIGNAL if sig is not None else reasons.EXIT

    def _missing(self, unit: BatchUnit) -> JobUpdate | None:
        """Nobody knows the job this poll: keep it; UNKNOWN with a reason after the grace period."""
        return missing_update(unit, self.missing_grace, lambda minutes: (
            f"SLURM no longer lists job {unit.native_id}, and there is no exit-code file or accounting "
            f"record for it (for {minutes:.0f} min); it may have been purged or lost"))

    def _summarise(self, parent: JobInfo, children: Mapping[int, JobInfo], units: Sequence[_Unit]) -> JobUpdate | None:
        """The parent row of an array, from its tasks (this poll's decisions, else the stored rows)."""
        spec = _indices_or_empty(str(parent.metadata.get("array", "")))
        return summarise_array(parent, children, units, spec, self._missing)

    def cancel(self, jobs: Sequence[JobInfo]) -> list[JobUpdate]:
        """One ``scancel`` for all of them. SLURM answers asynchronously: the next poll sees
        CANCELLED; here the jobs are only marked so the final state says "cancelled by user".

        The marks, with the time the cancel is sent, are stored before ``scancel`` runs: a task
        whose exit-code file shows it ending by itself clearly before that time completed (or
        failed) on its own; one that ended around it waits for SLURM's record (``_batch``)."""
        updates: list[JobUpdate] = []
        marks: list[JobUpdate] = []
        cancelling = {j.job_id for j in jobs if j.native_id}
        ids: list[str] = []
        sent = time.time()
        for job in jobs:
            if not job.native_id:
                updates.append(JobUpdate(job.job_id, JobStatus.CANCELLED,
                                         {"reason": reasons.CANCELLED_BY_USER, "end_time": utcnow(),
                                          "metadata": {"cancel_requested": True}}, source="cancel"))
                continue
            if job.array_parent not in cancelling:  # cancelling the array cancels its tasks
                ids.append(job.native_id)
            marks.append(JobUpdate(job.job_id, None, {"metadata": {"cancel_requested": True, CANCEL_SENT_KEY: sent}},
                                   source="cancel"))
        if ids:
            self.context.store.apply(marks)
            try:
                self.runner.run(["scancel", *dict.fromkeys(ids)])
            except SchedulerError:
                self.context.store.apply([JobUpdate(m.job_id, None, {"metadata": {
                    "cancel_requested": None, CANCEL_SENT_KEY: None}}, source="cancel") for m in marks])
                raise
        return updates + marks

    def queue(self) -> list[QueueEntry]:
        """This user's jobs in SLURM now (pending and running), ours or not."""
        result = self.runner.run(["squeue", "-h", "-u", _current_user(), "-o", QUEUE_FORMAT])
        entries = []
        for record in parse_squeue(result.stdout, with_user_and_name=True, strict=False):
            if record.array_task is not None and record.task_index is None:
                native = record.array_job_id or record.raw_id  # the pending rest of an array
            else:
                native = record.key
            entries.append(QueueEntry(native, record.name or "", record.state, record.user, record.reason))
        return entries

    def attach(self, native_id: str) -> JobInfo:
        """A JobInfo for a SLURM job submitted elsewhere ("123", or "8_3" for one array task)."""
        native = str(native_id).strip()
        if not _NATIVE_ID_RE.match(native):
            raise InvalidInputError(f"invalid SLURM job id {native_id!r}: use a number like 123 or 123_4")
        result = self.runner.run(["scontrol", "-o", "show", "job", native], check=False)
        if result.returncode == 0:
            try:
                records = parse_scontrol_jobs(result.stdout)
            except ParseError as exc:
                raise SchedulerError(f"unexpected scontrol output for job {native}: {exc}") from None
            if records:
                return self._attached(native, records)
        elif "invalid job id" not in result.stderr.lower():
            raise SchedulerError(f"scontrol show job {native} failed: {_error_line(result.stderr, 'no output')}")
        # The controller forgot it: accounting may still know how it ended.
        result = self.runner.run(["sacct", "-X", "-P", "-j", native, "-o", ",".join((*SACCT_FIELDS, "JobName"))],
                                 check=False)
        if result.returncode != 0:
            result = self.runner.run(["sacct", "-c", "-P", "-j", native, "-o", ",".join(SACCT_C_FIELDS)],
                                     check=False)
        acct = [r for r in _parse_or_empty(result.stdout) if r.job_id == native or r.raw_id == native]
        if not acct:
            raise InvalidInputError(f"SLURM does not know job {native}: check the id with `squeue` or `sacct`")
        rec = acct[-1]
        status = map_state(rec.state)[0]
        rows = parse_sacct_table(result.stdout) if "JobName" in result.stdout.split("\n", 1)[0] else []
        name = next((r.get("JobName", "") for r in rows if r.get("JobID") == rec.job_id), "") or f"slurm-{native}"
        return JobInfo(
            job_id=new_job_id(), name=name, status=status if status is not JobStatus.PENDING else JobStatus.QUEUED,
            scheduler=self.name, native_id=rec.job_id, submit_time=rec.submit, start_time=rec.start,
            end_time=rec.end if status.final else None, exit_code=rec.exit_code if status.final else None,
            signal=rec.signal if status.final else None, reason=rec.reason,
            metadata={"attached": True, "slurm_state": rec.state, "usage": dict(rec.usage)},
        )

    def _attached(self, native: str, records: Sequence[Mapping[str, str]]) -> JobInfo:
        first = records[0]
        array_tasks: list[int] = []
        array_id = first.get("ArrayJobId", "")
        if "_" not in native and array_id == native:
            # The whole array: track it as a parent; its tasks become child rows on the next poll.
            for record in records:
                array_tasks.extend(_indices_or_empty(record.get("ArrayTaskId", "")))
        acct = scontrol_accounting(first)
        status = map_state(acct.state)[0]
        if status is JobStatus.QUEUED and is_held_reason(acct.reason):
            status = JobStatus.HELD
        metadata: dict[str, Any] = {"attached": True, "slurm_state": acct.state}
        native_id = native
        if array_tasks:
            metadata["array"] = ",".join(str(i) for i in sorted(set(array_tasks)))
            statuses = [map_state(r.get("JobState", ""))[0] for r in records]
            status = (JobStatus.RUNNING if any(s is JobStatus.RUNNING or s.final for s in statuses)
                      else JobStatus.QUEUED)
            if all(s.final for s in statuses):
                status = JobStatus.RUNNING  # the next poll summarises the tasks into the final state
        elif "_" not in native and acct.job_id != native:
            native_id = acct.job_id  # a raw task id: track it as "<array>_<index>", as squeue shows it
        resources: dict[str, Any] = {}
        cpus = first.get("NumCPUs", "")
        if cpus.isdigit() and int(cpus) > 0:
            resources["cpus"] = int(cpus)
        walltime = _optional(parse_duration, first.get("TimeLimit"))
        if walltime:
            resources["walltime"] = f"{int(walltime)}s"
        if first.get("Partition") and first["Partition"].upper() not in _NO_VALUE:
            resources["partition"] = first["Partition"]
        try:
            parsed_resources = Resources.from_dict(resources)
        except InvalidInputError:
            parsed_resources = Resources()
        command = first.get("Command", "")
        return JobInfo(
            job_id=new_job_id(),
            name=first.get("JobName") or f"slurm-{native}",
            status=status,
            command="" if command.upper() in _NO_VALUE else command,
            log_file=None if first.get("StdOut", "").upper() in _NO_VALUE else first.get("StdOut"),
            working_dir=None if first.get("WorkDir", "").upper() in _NO_VALUE else first.get("WorkDir"),
            resources=parsed_resources,
            scheduler=self.name,
            native_id=native_id,
            submit_time=acct.submit,
            start_time=acct.start if status is JobStatus.RUNNING or status.final else None,
            end_time=acct.end if status.final else None,
            exit_code=acct.exit_code if status.final else None,
            signal=acct.signal if status.final else None,
            reason=acct.reason if not array_tasks else None,
            metadata=metadata,
        )

    # -- resource use of running jobs (on demand; not part of a poll) -------------------------

    def running_usage(self, jobs: Sequence[JobInfo]) -> dict[str, dict[str, Any]]:
        """MaxRSS and AveCPU of running jobs from ONE ``sstat -a`` call, keyed by job id. Meant for
        a detail view, not for every poll (sstat asks every node running the jobs)."""
        native = {j.native_id: j.job_id for j in jobs if j.native_id and j.status is JobStatus.RUNNING}
        if not native:
            return {}
        result = self.runner.run(["sstat", "-a", "-P", "-j", ",".join(native), "-o", "JobID,MaxRSS,AveCPU"],
                                 check=False)
        usage: dict[str, dict[str, Any]] = {}
        try:
            rows = parse_sacct_table(result.stdout)
        except ParseError:
            return {}
        for row in rows:
            job_native = row.get("JobID", "").split(".", 1)[0]
            if job_native not in native:
                continue
            entry = usage.setdefault(native[job_native], {})
            rss = _optional(parse_slurm_memory, row.get("MaxRSS"))
            if rss is not None:
                entry["max_rss_bytes"] = max(rss, entry.get("max_rss_bytes", 0))
            cpu = _optional(parse_duration, row.get("AveCPU"))
            if cpu is not None:
                entry["cpu_seconds"] = max(cpu, entry.get("cpu_seconds", 0.0))
        return usage


# ------------------------------------------------------------------------------------------------
# Helpers
# ------------------------------------------------------------------------------------------------


def _indices_or_empty(spec: str) -> list[int]:
    try:
        return parse_array_spec(spec) if spec else []
    except ParseError:
        return []


def _parse_or_empty(text: str) -> list[AccountingRecord]:
    try:
        return parse_sacct(text)
    except ParseError:
        return []


def _pick(candidates: Sequence[AccountingRecord], unit: _Unit) -> AccountingRecord | None:
    """The record of THIS job among records with its id. Ids restart when a controller's state is
    wiped, and jobcomp/filetxt keeps the old records: take the one submitted closest to our own
    submission, within [-10 min, +6 h] (clock skew; a long-pending job is judged by its submit
    time). Without a submit time (old sacct -c layouts), the first one that started after us
    (2 min of clock skew allowed)."""
    if not candidates:
        return None
    submitted = unit.job.submit_time if unit.job is not None else None
    if submitted is None:
        return candidates[-1]
    low, high = submitted - timedelta(minutes=10), submitted + timedelta(hours=6)
    timed = [c for c in candidates if c.submit is not None]
    if timed:
        near = [c for c in timed if c.submit is not None and low <= c.submit <= high]
        return min(near, key=lambda c: abs((c.submit or submitted) - submitted)) if near else None
    # A job cannot start before it was submitted: allow only for clock skew here.
    earliest = submitted - timedelta(minutes=2)
    started = [c for c in candidates if (_record_time(c) or low) >= earliest and _record_time(c) is not None]
    if started:
        return min(started, key=lambda c: _record_time(c) or earliest)
    return candidates[-1] if len(candidates) == 1 and _record_time(candidates[0]) is None else None


def _record_time(record: AccountingRecord) -> datetime | None:
    return record.submit or record.start or record.end


_error_line = error_line  # shared helpers (_batch), under the names this module used
_current_user = current_user
