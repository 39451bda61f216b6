"""Slurm: pure parse functions (see the package docstring)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from ...core.errors import ParseError
from ..batch.rules import MAX_ARRAY_TASKS, optional, parse_index_ranges
from .states import normalise_state

# ------------------------------------------------------------------------------------------------
# Pure parse functions (text in, values out; only ParseError escapes)
# ------------------------------------------------------------------------------------------------

_NO_VALUE = frozenset({"", "N/A", "NONE", "UNKNOWN", "(NULL)", "INVALID"})
_EXIT_RE = re.compile(r"^(\d{1,9}):(\d{1,9})$")
_DURATION_RE = re.compile(r"^(?:(\d{1,6})-)?(?:(\d{1,9}):)?(\d{1,9}):(\d{1,9}(?:\.\d{1,9})?)$")
_MEMORY_RE = re.compile(r"^(\d{1,18}(?:\.\d{1,9})?)([KMGTP]?)([CN]?)$", re.IGNORECASE)
_MEMORY_UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4, "P": 1024**5}
_NATIVE_ID_RE = re.compile(r"^\d{1,12}(?:_\d{1,9})?$")


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
    return parse_index_ranges(spec, limit, "SLURM")


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


def _pick(candidates: Sequence[AccountingRecord], submitted: datetime | None) -> AccountingRecord | None:
    """The record of THIS job among records with its id. Ids restart when a controller's state is
    wiped, and jobcomp/filetxt keeps the old records: take the one submitted closest to our own
    submission, within [-10 min, +6 h] (clock skew; a long-pending job is judged by its submit
    time). Without a submit time (old sacct -c layouts), the first one that started after us
    (2 min of clock skew allowed)."""
    if not candidates:
        return None
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
