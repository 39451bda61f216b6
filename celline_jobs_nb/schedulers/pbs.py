"""The PBS adapter: Torque, OpenPBS / PBS Professional, and Slurm's Torque wrappers.

Three flavours share ``qsub``/``qstat``/``qdel`` but not their output; the adapter detects which
one is installed once (cached in the store for a day) and keeps to what that flavour can say:

- ``torque-slurm``: Debian's ``slurm-wlm-torque`` Perl wrappers on top of Slurm (tested here
  against a real Slurm). ``qsub`` prints only the id and builds an ``sbatch`` command line that it
  runs through ``/bin/sh`` (so our ``-o`` path and script path are shell-quoted for it); ``qstat -f``
  has no exit status, shows every finished job as ``C`` and shows no array tasks; ``qdel`` sends
  SIGKILL through the Slurm API. The exit-code file the job script writes is therefore the
  evidence; a job that is ``C`` without one (never started, killed, its dependency failed) is
  resolved with ONE ``scontrol -o show job`` call -- only this flavour may use Slurm's tools, since
  only here is Slurm known to be underneath.
- ``torque``: real Torque (``qstat -x -t``, XML with ``exit_status``; ``C`` = completed, kept for
  ``keep_completed`` seconds). Parsers tested on shapes from the Torque documentation and source.
- ``openpbs``: OpenPBS / PBS Pro (``qstat -f -F json -x -t``, with ``Exit_status`` and ``F``/``X``
  for finished jobs and subjobs). Parsers tested on shapes from the OpenPBS documentation.

What it runs (every command has a timeout and is counted in ``self.calls``):

- ``submit``: ``qsub -j oe -o logs/<job_id>.log .celline/scripts/<job_id>.sh``. The script, rendered
  from ``templates/pbs.sh``, carries the ``#PBS`` directives (name, resources, queue, array,
  dependency) and writes ``logs/<job_id>.exitcode``. ``-o``/``-e`` must be on the command line:
  the Slurm wrapper overrides ``#PBS -o/-e`` with its own. On real PBS the log file arrives when
  the job ends (PBS stages output); array tasks write their own ``logs/<job_id>_<i>.log`` from the
  script (no flavour has one portable per-task ``-o`` pattern).
- ``poll``: ONE ``qstat`` for all tracked jobs (chunked beyond ``QSTAT_CHUNK`` ids), plus, on the
  Slurm wrapper only and only when needed, one ``scontrol``. "Missing" never means "completed": a
  job nobody knows about keeps its status and becomes UNKNOWN after ``missing_grace`` seconds.
- ``cancel``: one ``qdel id1 id2 ...``.

The parse functions at the top are pure functions over command output; they raise only
``ParseError``.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shlex
import shutil
import socket
import time
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from ..core import reasons
from ..core.errors import InvalidInputError, ParseError, SchedulerError, SettingsError, SubmitError
from ..core.exits import signal_name
from ..core.jobfiles import read_job_progress
from ..core.models import JobInfo, JobStatus, new_job_id, utcnow
from ..core.paths import ENV_JOB_ID, ProjectPaths, write_job_script
from ..core.resources import Resources
from ..core.settings import read_toml
from ..core.updates import JobUpdate
from ._batch import (
    DEPENDENCY_KINDS,
    BatchUnit,
    collect_units,
    conclusive_exit,
    current_user,
    env_exports,
    error_line,
    exit_file_verdict,
    export_line,
    load_template,
    missing_update,
    one_line,
    poll_floor_override,
    read_unit_exit,
    reconciled,
    settle_from_exit_files,
    settled_while_listed,
    summarise_array,
    task_identity,
)
from .base import PollResult, QueueEntry, SchedulerAdapter, SchedulerContext
from .pbs_exits import interpret_exit_status, is_deletion_status, limit_kill
from .slurm import AccountingRecord, parse_array_spec, parse_scontrol_jobs, scontrol_accounting
from .slurm import map_state as slurm_map_state

log = logging.getLogger("celline.job")

TORQUE_SLURM, TORQUE, OPENPBS = "torque-slurm", "torque", "openpbs"
FLAVOURS = (TORQUE_SLURM, TORQUE, OPENPBS)

# ------------------------------------------------------------------------------------------------
# States
# ------------------------------------------------------------------------------------------------

#: PBS job_state letters (Torque, OpenPBS/PBS Pro; the Slurm wrapper uses Q, R, S, C and U).
#: C, F and X mean "finished": how it ended (completed, failed, cancelled) is decided by the
#: evidence (exit-code file, Exit_status, a cancel request), so they map to COMPLETED only as a
#: placeholder that ``FINISHED_STATES`` flags.
PBS_STATES: dict[str, JobStatus] = {
    "Q": JobStatus.QUEUED,  # queued (the Slurm wrapper: also held and waiting for a dependency)
    "W": JobStatus.QUEUED,  # waiting for its start time (qsub -a) or for stage-in
    "T": JobStatus.QUEUED,  # in transit to another queue or server
    "H": JobStatus.HELD,
    "R": JobStatus.RUNNING,
    "E": JobStatus.RUNNING,  # exiting: the script ended, PBS is cleaning up (not final yet)
    "S": JobStatus.RUNNING,  # suspended: keeps its node, resumes later
    "U": JobStatus.RUNNING,  # PBS Pro: suspended because its workstation became busy
    "B": JobStatus.RUNNING,  # PBS Pro: an array that has begun (summarised from its subjobs)
    "C": JobStatus.COMPLETED,  # Torque: completed (any way); Slurm wrapper: every finished state
    "F": JobStatus.COMPLETED,  # PBS Pro: finished (qstat -x)
    "X": JobStatus.COMPLETED,  # PBS Pro: subjob finished or expired
    "M": JobStatus.UNKNOWN,  # PBS Pro: moved to another server: it may still run there, unseen here
}
FINISHED_STATES = frozenset({"C", "F", "X"})
_STATE_REASONS = {
    "W": "waiting for its start time (W)",
    "T": "in transit to another queue or server (T)",
    "S": "suspended",
    "U": "suspended: its workstation is busy (U)",
}


def normalise_state(text: str) -> str:
    """The state letter as PBS prints it ("R"; " r " is read as "R")."""
    return str(text).strip()[:1].upper()


def map_state(text: str, flavour: str | None = None) -> tuple[JobStatus, bool]:
    """Our status for a PBS state letter, and whether it is known. The Slurm wrapper's "U" means
    "unknown" (not PBS Pro's "suspended"), so it maps to UNKNOWN there."""
    letter = normalise_state(text)
    if flavour == TORQUE_SLURM and letter == "U":
        return JobStatus.UNKNOWN, False
    status = PBS_STATES.get(letter) if len(str(text).strip()) == 1 else None
    return (status, True) if status is not None else (JobStatus.UNKNOWN, False)


# ------------------------------------------------------------------------------------------------
# Job ids
# ------------------------------------------------------------------------------------------------

_JOB_ID_RE = re.compile(r"^(\d{1,12})(?:\[(\d{0,9})\])?(?:\.([A-Za-z0-9][A-Za-z0-9._-]{0,252}))?$")
_WRAPPER_TASK_RE = re.compile(r"^(\d{1,12})_(\d{1,9})$")  # "1501_3": Slurm's name for an array task


@dataclass(frozen=True)
class PbsJobId:
    """A PBS job id: "123", "123.server", "123[].server" (an array), "123[4].server" (a subjob)."""

    seq: str
    index: int | None = None
    array: bool = False  # "123[]": the array itself
    server: str | None = None

    @property
    def key(self) -> tuple[str, int | None, bool]:
        """What identifies it on one server (qsub and qstat may spell the server differently)."""
        return self.seq, self.index, self.array


def parse_job_id(text: str) -> PbsJobId:
    value = str(text).strip()
    match = _JOB_ID_RE.match(value)
    if match:
        seq, index, server = match.groups()
        return PbsJobId(seq, int(index) if index else None, index == "", server)
    match = _WRAPPER_TASK_RE.match(value)
    if match:
        return PbsJobId(match.group(1), int(match.group(2)))
    raise ParseError(f"not a PBS job id: {value[:80]!r}")


def parse_qsub_output(text: str) -> str:
    """The job id qsub printed ("123.server", "123[].server" or, from the Slurm wrapper, "123")."""
    lines = [line.strip() for line in str(text).split("\n") if line.strip()]
    for line in reversed(lines):
        try:
            parse_job_id(line)
        except ParseError:
            continue
        if "_" not in line:
            return line
    raise ParseError(f"qsub printed no job id: {str(text).strip()[:200]!r}")


# ------------------------------------------------------------------------------------------------
# Times and sizes
# ------------------------------------------------------------------------------------------------

_MONTHS = {m: i for i, m in enumerate(("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct",
                                       "Nov", "Dec"), start=1)}
_CTIME_RE = re.compile(r"^(?:[A-Z][a-z]{2}\s+)?([A-Z][a-z]{2})\s+(\d{1,2})\s+(\d{1,2}):(\d{2}):(\d{2})\s+(\d{4})$")


def parse_pbs_time(text: str | int | float | None) -> datetime | None:
    """PBS times as aware UTC: ctime strings ("Sat Nov 28 20:42:21 2026", this machine's local
    time, as ``qstat -f`` prints them) or epoch seconds (Torque's XML). None for empty."""
    if text is None:
        return None
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        value = str(int(text))
    else:
        value = " ".join(str(text).split())
    if not value or value in ("0", "--"):
        return None
    try:
        if value.isascii() and value.isdigit() and len(value) <= 12:
            return datetime.fromtimestamp(int(value), timezone.utc)
        match = _CTIME_RE.match(value)
        if not match or match.group(1) not in _MONTHS:
            raise ParseError(f"not a PBS time: {value[:80]!r}")
        month, day, hour, minute, second, year = match.groups()
        moment = datetime(int(year), _MONTHS[month], int(day), int(hour), int(minute), int(second))
        return moment.astimezone().astimezone(timezone.utc)  # naive: the local time of this machine
    except (ValueError, OverflowError, OSError):
        raise ParseError(f"not a PBS time: {value[:80]!r}") from None


_DURATION_RE = re.compile(r"^(\d{1,9}):(\d{1,2}):(\d{1,2})$")
_SIZE_RE = re.compile(r"^(\d{1,18})([kmgtp]?)([bw]?)$", re.IGNORECASE)
_SIZE_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4, "p": 1024**5}


def parse_pbs_duration(text: str) -> float | None:
    """Seconds from "HH:MM:SS" (hours may exceed 99) or plain seconds; None for empty."""
    value = str(text).strip()
    if not value:
        return None
    if value.isascii() and value.isdigit() and len(value) < 12:
        return float(value)
    match = _DURATION_RE.match(value)
    if not match:
        raise ParseError(f"not a PBS duration: {value[:80]!r}")
    hours, minutes, seconds = (int(g) for g in match.groups())
    return float(hours * 3600 + minutes * 60 + seconds)


def parse_pbs_size(text: str) -> int | None:
    """Bytes from PBS sizes: "4316kb", "2gb", "100mb", "512" (bytes); words ("w") are 8 bytes."""
    value = str(text).strip()
    if not value:
        return None
    match = _SIZE_RE.match(value)
    if not match:
        raise ParseError(f"not a PBS size: {value[:80]!r}")
    size = int(match.group(1)) * _SIZE_UNITS[match.group(2).lower()]
    return size * 8 if match.group(3).lower() == "w" else size


def pbs_memory(size: int) -> str:
    """A request PBS and the Slurm wrapper both read: "32gb", "1536mb", "100kb"."""
    for unit, factor in (("tb", 1024**4), ("gb", 1024**3), ("mb", 1024**2), ("kb", 1024)):
        if size % factor == 0:
            return f"{size // factor}{unit}"
    return f"{-(-size // 1024)}kb"


def pbs_walltime(seconds: int) -> str:
    """HH:MM:SS, hours past 24 kept as hours (PBS has no day field)."""
    hours, rest = divmod(int(seconds), 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}"


def _optional(parser: Any, text: Any) -> Any:
    if text is None:
        return None
    try:
        return parser(text)
    except ParseError:
        return None


# ------------------------------------------------------------------------------------------------
# qstat records
# ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PbsRecord:
    """One job, array or subjob as qstat shows it, with flavour differences already removed."""

    job_id: str  # as qstat prints it
    state: str  # one upper-case letter ("" when qstat gave none)
    name: str | None = None
    owner: str | None = None  # the user part of Job_Owner
    queue: str | None = None
    exit_status: int | None = None
    submit: datetime | None = None
    start: datetime | None = None
    end: datetime | None = None
    exec_host: str | None = None
    comment: str | None = None
    usage: Mapping[str, Any] = field(default_factory=dict)
    attributes: Mapping[str, str] = field(default_factory=dict)  # every attribute, "Resource_List.walltime"

    @property
    def ident(self) -> PbsJobId:
        return parse_job_id(self.job_id)

    @property
    def started(self) -> bool:
        return self.start is not None or self.exec_host is not None


#: Which attribute holds which time. The Slurm wrapper abuses PBS's names: its mtime is the start
#: and its ctime the end (for a running job: the expected end); Torque's start_time/comp_time and
#: PBS Pro's stime/obittime are the real ones (ctime is the creation time there).
_TIME_ATTRIBUTES = {
    TORQUE_SLURM: ("qtime", "mtime", "ctime"),
    TORQUE: ("qtime", "start_time", "comp_time"),
    OPENPBS: ("qtime", "stime", "obittime"),
}


def _record(job_id: str, attrs: Mapping[str, str], flavour: str) -> PbsRecord:
    if not job_id:
        raise ParseError("qstat record without a job id")
    parse_job_id(job_id)  # a record we could never match is an error in our own poll output
    state = normalise_state(attrs.get("job_state", ""))
    exit_text = attrs.get("exit_status", attrs.get("Exit_status", "")).strip()
    exit_status = int(exit_text) if re.fullmatch(r"-?\d{1,9}", exit_text) else None
    submit_key, start_key, end_key = _TIME_ATTRIBUTES.get(flavour, _TIME_ATTRIBUTES[TORQUE])
    submit = _optional(parse_pbs_time, attrs.get(submit_key)) or _optional(parse_pbs_time, attrs.get("ctime"))
    start = _optional(parse_pbs_time, attrs.get(start_key))
    end = _optional(parse_pbs_time, attrs.get(end_key))
    if end is None and flavour == OPENPBS and state in FINISHED_STATES:
        end = _optional(parse_pbs_time, attrs.get("mtime"))  # PBS Pro before obittime existed
    if state not in FINISHED_STATES:
        end = None  # a running job's "end" is only an estimate (the wrapper's ctime)
    owner = attrs.get("Job_Owner", "").split("@", 1)[0].strip() or None
    # Resource use in the one shape every scheduler writes (core/usage.py), so the DataFrame's
    # efficiency columns work for PBS jobs too. The Slurm wrapper reports none of it.
    usage: dict[str, Any] = {}
    for key, name, parser in (("resources_used.walltime", "elapsed_seconds", parse_pbs_duration),
                              ("resources_used.cput", "cpu_seconds", parse_pbs_duration),
                              ("resources_used.mem", "max_rss_bytes", parse_pbs_size),
                              ("Resource_List.mem", "req_mem_bytes", parse_pbs_size)):
        value = _optional(parser, attrs.get(key))
        if value is not None:
            usage[name] = value
    cpus = attrs.get("Resource_List.ncpus", "")
    if usage and cpus.isascii() and cpus.isdigit() and 0 < int(cpus) <= 100_000:
        usage["alloc_cpus"] = int(cpus)
    exec_host = attrs.get("exec_host", "").strip() or None
    if exec_host == "--":
        exec_host = None
    if flavour == TORQUE_SLURM and exec_host is None:
        start = None  # Slurm gives a job cancelled while pending the cancel time as its "start"
    comment = one_line(attrs.get("comment", "")).strip() or None
    return PbsRecord(
        job_id=job_id, state=state, name=attrs.get("Job_Name"), owner=owner, queue=attrs.get("queue"),
        exit_status=exit_status, submit=submit, start=start, end=end,
        exec_host=exec_host, comment=comment, usage=usage, attributes=dict(attrs),
    )


_JOB_HEADER_RE = re.compile(r"^Job Id:\s*(\S+)\s*$")
_ATTRIBUTE_RE = re.compile(r"^([A-Za-z_][\w.]*) = ?(.*)$")


def parse_qstat_full(text: str, flavour: str = TORQUE_SLURM) -> list[PbsRecord]:
    """Records of ``qstat -f`` text (the Slurm wrapper, Torque, PBS Pro without ``-F``).

    A record starts at "Job Id: <id>". Attribute lines are "<indent>name = value"; Torque and
    PBS Pro wrap long values onto continuation lines that start with a TAB while their attribute
    lines start with four spaces (the wrapper indents attributes with a TAB and never wraps), so
    the first attribute line of a record sets the indentation and other lines continue the value."""
    records: list[PbsRecord] = []
    job_id: str | None = None
    attrs: dict[str, str] = {}
    indent: str | None = None
    last: str | None = None
    for raw in str(text).split("\n"):
        line = raw.rstrip("\r")
        if not line.strip():
            continue
        header = _JOB_HEADER_RE.match(line)
        if header:
            if job_id is not None:
                records.append(_record(job_id, attrs, flavour))
            job_id, attrs, indent, last = header.group(1), {}, None, None
            continue
        if job_id is None:
            raise ParseError(f"qstat -f output does not start with 'Job Id:': {line[:120]!r}")
        stripped = line.lstrip(" \t")
        lead = line[:len(line) - len(stripped)]
        match = _ATTRIBUTE_RE.match(stripped)
        if match and lead and (indent is None or lead == indent):
            indent = lead
            last = match.group(1)
            attrs[last] = match.group(2).strip()
        elif last is not None:
            # A wrapped value (Torque, PBS Pro), or the rest of a value with a newline in it (a
            # foreign Slurm job's name under the wrapper): it belongs to the previous attribute.
            attrs[last] += stripped.strip() if lead else "\n" + stripped.strip()
        else:
            raise ParseError(f"unexpected line in qstat -f output: {line[:120]!r}")
    if job_id is not None:
        records.append(_record(job_id, attrs, flavour))
    return records


def _flatten(prefix: str, value: Any, out: dict[str, str]) -> None:
    if isinstance(value, dict):
        for key, inner in value.items():
            _flatten(f"{prefix}.{key}" if prefix else str(key), inner, out)
    elif isinstance(value, list):
        out[prefix] = ",".join(str(v) for v in value)
    elif isinstance(value, bool):
        out[prefix] = "True" if value else "False"
    elif value is not None:
        out[prefix] = str(value)


def parse_qstat_json(text: str) -> list[PbsRecord]:
    """Records of OpenPBS/PBS Pro ``qstat -f -F json`` (jobs are keys under "Jobs"; nested
    ``Resource_List``/``resources_used``/``Variable_List`` objects; Exit_status a number). With no
    jobs the document has only its header. ``strict=False``: PBS Pro has printed raw control
    characters from job environments inside strings, which are not valid JSON otherwise."""
    value = str(text).strip()
    if not value:
        return []
    try:
        data = json.loads(value, strict=False)
    except (ValueError, RecursionError) as exc:
        raise ParseError(f"qstat -F json output is not JSON: {str(exc)[:120]}") from None
    if not isinstance(data, dict):
        raise ParseError("qstat -F json output is not a JSON object")
    jobs = data.get("Jobs", {})
    if not isinstance(jobs, dict):
        raise ParseError("qstat -F json: 'Jobs' is not an object")
    records = []
    for job_id, attributes in jobs.items():
        if not isinstance(attributes, dict):
            raise ParseError(f"qstat -F json: job {str(job_id)[:60]!r} is not an object")
        flat: dict[str, str] = {}
        _flatten("", attributes, flat)
        records.append(_record(str(job_id), flat, OPENPBS))
    return records


_XML_DOC_RE = re.compile(r"<Data>.*?</Data>|<Data\s*/>", re.DOTALL)


def parse_qstat_xml(text: str) -> list[PbsRecord]:
    """Records of Torque's ``qstat -x`` (``<Data><Job><Job_Id>..</Job_Id>..</Job></Data>``; times
    in epoch seconds; nested ``<Resource_List><walltime>``). With several job ids Torque prints one
    XML document per id, so every ``<Data>`` element is read."""
    value = str(text).strip()
    if not value:
        return []
    documents = _XML_DOC_RE.findall(value)
    if not documents:
        raise ParseError(f"qstat -x output has no <Data> element: {value[:120]!r}")
    records = []
    for document in documents:
        try:
            root = ET.fromstring(document)
        except ET.ParseError as exc:
            raise ParseError(f"qstat -x output is not XML: {exc}") from None
        for job in root.findall("Job"):
            flat: dict[str, str] = {}
            for element in job:
                if len(element):
                    for inner in element:
                        flat[f"{element.tag}.{inner.tag}"] = (inner.text or "").strip()
                else:
                    flat[element.tag] = (element.text or "").strip()
            records.append(_record(flat.pop("Job_Id", ""), flat, TORQUE))
    return records


def parse_qstat_version(text: str) -> tuple[str | None, str | None]:
    """(flavour, version) from ``qstat --version``: OpenPBS/PBS Pro "pbs_version = 20.0.1",
    Torque "Version: 6.1.3"; the Slurm wrapper rejects the option ("Unknown option: version")."""
    value = str(text)
    match = re.search(r"pbs_version\s*=\s*(\S+)", value)
    if match:
        return OPENPBS, match.group(1)
    if "Unknown option: version" in value:
        return TORQUE_SLURM, None
    match = re.search(r"(?im)^\s*version:\s*(\S+)", value)
    if match:
        return TORQUE, match.group(1)
    return None, None


# ------------------------------------------------------------------------------------------------
# Array specs
# ------------------------------------------------------------------------------------------------

_TORQUE_ARRAY_RE = re.compile(r"^\d{1,9}(?:-\d{1,9})?(?:,\d{1,9}(?:-\d{1,9})?)*(?:%\d{1,9})?$")
_OPENPBS_ARRAY_RE = re.compile(r"^(\d{1,9})-(\d{1,9})(?::(\d{1,9}))?(?:%\d{1,9})?$")


def array_indices(spec: str, flavour: str) -> list[int]:
    """The task indexes of an array spec in the flavour's syntax: Torque ``-t`` ("1-4%2",
    "0,10,20-25"), PBS Pro ``-J`` (one range with an optional step: "1-10:2"), the Slurm wrapper
    (Slurm's own, "1-7:2%2")."""
    text = str(spec).strip()
    if flavour == TORQUE:
        if not _TORQUE_ARRAY_RE.match(text):
            raise ParseError(f"not a Torque array spec (-t 1-4, 1,3,5 or 1-10%2; no step): {text[:80]!r}")
        return parse_array_spec(text)
    if flavour == OPENPBS:
        match = _OPENPBS_ARRAY_RE.match(text)
        if not match or int(match.group(2)) <= int(match.group(1)):
            raise ParseError(f"not a PBS Pro array spec (-J 1-10 or 1-10:2; one range): {text[:80]!r}")
        return parse_array_spec(text.split("%", 1)[0])
    return parse_array_spec(text)


# ------------------------------------------------------------------------------------------------
# The batch script and the qsub command line
# ------------------------------------------------------------------------------------------------

#: PBS job names: Torque (POSIX) allows 15 characters, PBS Pro 236; Slurm is generous.
MAX_NAME = {TORQUE: 15, OPENPBS: 236, TORQUE_SLURM: 200}
_NAME_BAD_RE = re.compile(r"[^A-Za-z0-9_.-]+")


def pbs_job_name(name: str, flavour: str = TORQUE_SLURM) -> str:
    """The name PBS gets: letters, digits, ``_.-`` only, starting with a letter, cut to the
    flavour's limit. PBS refuses other names (and the Slurm wrapper's sbatch stops at quotes);
    our store keeps the full name."""
    text = _NAME_BAD_RE.sub("_", str(name)).strip("_.-")
    if not text or not text[0].isalpha():
        text = "j" + text
    return text[:MAX_NAME.get(flavour, 15)]


def _extra_directive(line: str) -> str | None:
    text = one_line(line).strip()
    if text.upper().startswith("#PBS"):
        text = text[len("#PBS"):].strip()
    return f"#PBS {text}" if text else None


def pbs_directives(job: JobInfo, paths: ProjectPaths, flavour: str, pbs_server: str | None = None) -> list[str]:
    """The ``#PBS`` lines for ``job``: name, resources, queue, account, array, dependency, then the
    user's extra lines (last, so they can override ours). ``pbs_server``: celline's
    ``[execution] pbs_server``, appended to the nodes spec as celline does
    (``-l nodes=1:ppn=N:<server>``); PBS Pro has no nodes spec, so it is not used there."""
    res: Resources = job.resources
    lines = [f"#PBS -N {pbs_job_name(job.name, flavour)}", "#PBS -S /bin/bash"]
    nodes = int(res.nodes) if res.nodes is not None else 1
    if flavour == OPENPBS:
        if res.cpus is not None or res.memory is not None or res.gpus or res.nodes is not None:
            chunk = f"select={nodes}:ncpus={int(res.cpus or 1)}"
            if res.memory is not None:
                chunk += f":mem={pbs_memory(int(res.memory))}"
            if res.gpus:
                chunk += f":ngpus={int(res.gpus)}"
            lines.append(f"#PBS -l {chunk}")
    else:
        if res.cpus is not None or res.gpus or res.nodes is not None or pbs_server:
            spec = f"nodes={nodes}:ppn={int(res.cpus or 1)}"
            if res.gpus:
                spec += f":gpus={int(res.gpus)}"
            if pbs_server:
                spec += f":{pbs_server}"
            lines.append(f"#PBS -l {spec}")
        if res.memory is not None:
            lines.append(f"#PBS -l mem={pbs_memory(int(res.memory))}")
    if res.walltime is not None:
        lines.append(f"#PBS -l walltime={pbs_walltime(int(res.walltime))}")
    if res.partition:
        lines.append(f"#PBS -q {res.partition}")
    if res.account:
        lines.append(f"#PBS -A {res.account}")
    array = job.metadata.get("array")
    if array:
        spec = str(array).strip()
        try:
            array_indices(spec, flavour)
        except ParseError as exc:
            raise SubmitError(f"invalid array {spec!r}: {exc}") from None
        lines.append(f"#PBS {'-J' if flavour == OPENPBS else '-t'} {spec}")
    dependencies = [str(d) for d in job.metadata.get("native_dependencies") or []]
    if dependencies:
        kind = job.dependency_kind or "afterok"
        if kind not in DEPENDENCY_KINDS:
            raise SubmitError(f"invalid PBS dependency kind {kind!r}: use {', '.join(DEPENDENCY_KINDS)}")
        for dep in dependencies:
            try:
                ident = parse_job_id(dep)
            except ParseError:
                raise SubmitError(f"invalid PBS dependency on {dep[:80]!r}: not a PBS job id") from None
            if ident.index is not None and flavour == TORQUE_SLURM:
                raise SubmitError(f"the Slurm PBS wrapper cannot depend on one array task ({dep})")
        lines.append(f"#PBS -W depend={kind}:{':'.join(dependencies)}")
    for extra in res.extra:
        directive = _extra_directive(extra)
        if directive:
            lines.append(directive)
    return lines


def _task_index_expr() -> str:
    # Torque sets PBS_ARRAYID, PBS Pro PBS_ARRAY_INDEX, the Slurm wrapper SLURM_ARRAY_TASK_ID.
    return "${PBS_ARRAYID:-${PBS_ARRAY_INDEX:-${SLURM_ARRAY_TASK_ID:-}}}"


def render_pbs_script(job: JobInfo, paths: ProjectPaths, flavour: str = TORQUE_SLURM,
                      pbs_server: str | None = None) -> str:
    """The batch script for ``job`` (deterministic: same job and flavour, same text)."""
    exports = env_exports(job, paths)
    array_setup = ""
    if job.metadata.get("array"):
        array_setup = (
            "# An array task is a job of its own: <job id>_<index> names its log, progress and exit files.\n"
            "# Each task writes its own log from here (no PBS flavour has a portable per-task -o).\n"
            f"{export_line('CELLINE_ARRAY_PARENT_JOB_ID', job.job_id)}\n"
            f'export CELLINE_ARRAY_TASK_INDEX="{_task_index_expr()}"\n'
            f'export {ENV_JOB_ID}="${{CELLINE_ARRAY_PARENT_JOB_ID}}_${{CELLINE_ARRAY_TASK_INDEX}}"\n'
            'exec >>"${CELLINE_JOBS_LOGS}/${CELLINE_JOB_ID}.log" 2>&1\n'
        )
    return load_template("pbs.sh").substitute(
        job_id=job.job_id,
        directives="\n".join(pbs_directives(job, paths, flavour, pbs_server)),
        exports="\n".join(exports),
        array_setup=array_setup,
        workdir=shlex.quote(job.working_dir or str(paths.root)),
        command=shlex.quote(job.command.replace("\0", "")),
    )


def qsub_command(script: str, log_path: str, flavour: str) -> list[str]:
    """``qsub -j oe -o <log> <script>``. The Slurm wrapper pastes its arguments into a ``/bin/sh``
    command line for sbatch, so for it both paths are shell-quoted (and "%" doubled: sbatch expands
    %j in -o). Real PBS reads "host:path" in -o, so a path with a colon gets this host in front."""
    if flavour == TORQUE_SLURM:
        return ["qsub", "-j", "oe", "-o", shlex.quote(log_path.replace("%", "%%")), shlex.quote(script)]
    if ":" in log_path:
        log_path = f"{socket.gethostname()}:{log_path}"
    return ["qsub", "-j", "oe", "-o", log_path, script]


def qstat_command(native_ids: Sequence[str], flavour: str) -> list[str]:
    if flavour == OPENPBS:
        return ["qstat", "-f", "-F", "json", "-x", "-t", *native_ids]
    if flavour == TORQUE:
        return ["qstat", "-x", "-t", *native_ids]
    return ["qstat", "-f", *native_ids]


def parse_qstat(text: str, flavour: str) -> list[PbsRecord]:
    """The records of ``qstat_command``'s output for ``flavour``."""
    if flavour == OPENPBS:
        return parse_qstat_json(text)
    if flavour == TORQUE:
        return parse_qstat_xml(text)
    return parse_qstat_full(text, flavour)


# ------------------------------------------------------------------------------------------------
# The adapter
# ------------------------------------------------------------------------------------------------

MIN_POLL_ENV = "CELLINE_JOBS_PBS_MIN_POLL_INTERVAL"
FLAVOUR_ENV = "CELLINE_JOBS_PBS_FLAVOUR"
FLAVOUR_META_KEY = "pbs.flavour"
FLAVOUR_RECHECK_SECONDS = 86400.0
MISSING_GRACE_SECONDS = 300.0
QSTAT_CHUNK = 500  # ids per qstat/qdel call: keeps argv bounded (PBS ids can be 30+ characters)
#: qdel messages that only say "that job has already ended" (Torque, PBS Pro).
_BENIGN_QDEL_RE = re.compile(r"unknown job id|request invalid for state of job|job has finished|already",
                             re.IGNORECASE)
_UNKNOWN_JOB_RE = re.compile(r"unknown job id", re.IGNORECASE)
_DEPENDENCY_COMMENT_RE = re.compile(r"dependency", re.IGNORECASE)


@dataclass
class _Unit(BatchUnit):
    """One job or array task being polled, and the evidence gathered about it this poll."""

    record: PbsRecord | None = None
    parent_record: PbsRecord | None = None  # the Slurm wrapper shows only the array's own record
    acct: AccountingRecord | None = None  # Slurm's answer (wrapper flavour only)
    want_resolution: bool = False


class PbsScheduler(SchedulerAdapter):
    """Torque / OpenPBS / PBS Pro, and Slurm's Torque wrappers, through qsub, qstat and qdel."""

    name = "pbs"
    settles_from_files = True
    #: The floor under the poll interval (seconds). Override per project with the adapter setting
    #: ``pbs_min_poll_interval`` or the environment variable CELLINE_JOBS_PBS_MIN_POLL_INTERVAL.
    min_poll_interval = 30.0
    default_poll_interval = 30.0
    fast_poll_interval = 3.0
    #: A job qstat no longer lists, with no exit-code file and no exit status, becomes UNKNOWN
    #: after this long (never "completed").
    missing_grace = MISSING_GRACE_SECONDS

    def __init__(self, context: SchedulerContext) -> None:
        super().__init__(context)
        floor = poll_floor_override(context.settings, "pbs_min_poll_interval", MIN_POLL_ENV, "PBS")
        if floor is not None:
            self.min_poll_interval = floor  # type: ignore[misc]  # per-instance override of the class floor
        forced = context.settings.get("pbs_flavour") or os.environ.get(FLAVOUR_ENV)
        if forced is not None and forced not in FLAVOURS:
            raise InvalidInputError(f"invalid PBS flavour {forced!r}: use one of {', '.join(FLAVOURS)}")
        self._flavour: str | None = forced
        self._version: str | None = None
        self._logged_states: set[tuple[str, str]] = set()

    def available(self) -> bool:
        return shutil.which("qsub") is not None and shutil.which("qstat") is not None

    # -- flavour -----------------------------------------------------------------------------

    @property
    def flavour(self) -> str:
        """Which PBS this is; detected once (a file read, else one ``qstat --version``) and
        remembered in the store for a day, so other processes of the project do not ask again."""
        if self._flavour is None:
            self._flavour, self._version = self._detect_flavour()
        return self._flavour

    @property
    def version(self) -> str | None:
        _ = self.flavour
        return self._version

    def _detect_flavour(self) -> tuple[str, str | None]:
        stored = self.context.store.get_meta(FLAVOUR_META_KEY)
        if stored:
            value, _, when = stored.rpartition("@")
            flavour, _, version = value.partition("|")
            try:
                fresh = time.time() - float(when) < FLAVOUR_RECHECK_SECONDS
            except ValueError:
                fresh = False
            if fresh and flavour in FLAVOURS:
                return flavour, version or None
        flavour, version = _sniff_wrapper(), None
        if flavour is None:
            result = self.runner.run(["qstat", "--version"], check=False)
            flavour, version = parse_qstat_version(result.stdout + "\n" + result.stderr)
            if flavour is None:
                # Torque 2.x and other old servers have no --version: their qstat -f text is the
                # oldest common shape, so treat them as Torque and say so once.
                log.warning("could not tell which PBS this is from `qstat --version`; assuming Torque "
                            "(set %s=openpbs|torque|torque-slurm to choose)", FLAVOUR_ENV)
                flavour = TORQUE
        log.info("PBS flavour: %s%s", flavour, f" {version}" if version else "")
        try:
            self.context.store.set_meta(FLAVOUR_META_KEY, f"{flavour}|{version or ''}@{time.time():.0f}")
        except Exception as exc:  # a cache only: never fail a poll over it
            log.debug("could not remember the PBS flavour: %s", exc)
        return flavour, version

    def _pbs_server(self) -> str | None:
        """celline's ``[execution] pbs_server`` (read from setting.toml; the adapter setting
        ``pbs_server`` wins). Only a name without spaces or shell characters is used."""
        server = self.context.settings.get("pbs_server")
        if server is None:
            try:
                execution = read_toml(self.context.paths.celline_settings).get("execution", {})
            except SettingsError:
                execution = {}
            server = execution.get("pbs_server") if isinstance(execution, dict) else None
        text = str(server or "").strip()
        if not text:
            return None
        if not re.fullmatch(r"[A-Za-z0-9_.=+-]{1,128}", text):
            raise SubmitError(f"invalid pbs_server {text[:60]!r} in setting.toml: use letters, digits and _.=+-")
        return text

    # -- submit ------------------------------------------------------------------------------

    def submit(self, job: JobInfo) -> JobUpdate:
        paths = self.context.paths
        if not paths.logs_dir.is_dir():  # neither PBS nor sbatch creates it
            paths.logs_dir.mkdir(parents=True, exist_ok=True)
        flavour = self.flavour
        script = render_pbs_script(job, paths, flavour, self._pbs_server())
        path = paths.script_file(job.job_id)
        write_job_script(path, script)
        command = qsub_command(str(path), str(paths.log_file(job.job_id)), flavour)
        try:
            result = self.runner.run(command, check=False)
        except SchedulerError as exc:
            if "did not answer" not in str(exc):
                raise SubmitError(str(exc)) from None
            raise SubmitError(f"{exc} (the server may have accepted the job anyway: check `qstat -u "
                              f"{current_user()}` for {pbs_job_name(job.name, flavour)})") from None
        if result.returncode != 0:
            # The Slurm wrapper prints sbatch's complaint on stdout, between quotes.
            raise SubmitError(error_line(result.stderr + "\n" + result.stdout, f"qsub exited {result.returncode}"))
        try:
            native_id = parse_qsub_output(result.stdout)
        except ParseError as exc:
            raise SubmitError(str(exc)) from None
        held = any(re.match(r"^(#PBS\s+)?-h\s*$", e.strip()) for e in job.resources.extra)
        metadata: dict[str, Any] = {"script": str(path), "pbs_flavour": flavour}
        if job.metadata.get("native_dependencies"):
            metadata["native_dependencies"] = list(job.metadata["native_dependencies"])
        fields: dict[str, Any] = {"native_id": native_id, "submit_time": utcnow(), "reason": None,
                                  "metadata": metadata}
        if job.metadata.get("array"):
            indices = _optional(lambda s: array_indices(s, flavour), str(job.metadata["array"])) or []
            if indices:  # the parent row shows the first task's log
                fields["log_file"] = str(paths.log_file(f"{job.job_id}_{indices[0]}"))
        return JobUpdate(job.job_id, JobStatus.HELD if held else JobStatus.QUEUED, fields, source="submit")

    # -- poll --------------------------------------------------------------------------------

    def settle(self) -> list[JobUpdate]:
        return settle_from_exit_files(self.context, self.name)

    def poll(self, jobs: Sequence[JobInfo]) -> PollResult:
        """The state of ``jobs`` from ONE qstat call (+ on the Slurm wrapper, at most one scontrol).

        Arrays (a job with ``metadata["array"]``) are summarised from their tasks, which come back
        as updates for ``f"{parent.job_id}_{index}"`` with ``array_parent``, ``array_index`` and
        ``native_id`` in their fields (the monitor inserts the rows), as the SLURM adapter does."""
        calls_before = self.runner.calls
        units, parents = collect_units(jobs, self.context.store, _Unit)
        if not units and not parents:
            return PollResult([], 0)
        flavour = self.flavour
        wanted = [p.native_id for p, _children in parents if p.native_id]
        wanted += [u.native_id for u in units if u.parent is None or u.parent.native_id is None]
        records = self._qstat(list(dict.fromkeys(wanted)), flavour)
        by_key: dict[tuple[str, int | None, bool], PbsRecord] = {}
        for record in records:
            by_key.setdefault(record.ident.key, record)
        known_units = {u.job_id for u in units}
        for parent, children in parents:
            parent_ident = _optional(parse_job_id, parent.native_id or "")
            indices = set(_optional(lambda s: array_indices(s, flavour), str(parent.metadata.get("array", ""))) or [])
            if parent_ident is not None:
                indices.update(r.ident.index for r in records if r.ident.seq == parent_ident.seq
                               and r.ident.index is not None)
            for index in sorted(i for i in indices if i is not None):
                child_id = f"{parent.job_id}_{index}"
                child = children.get(index)
                if child_id in known_units or (child is not None and child.status.final):
                    continue
                units.append(_Unit(child_id, _task_native_id(parent.native_id or "", index, flavour), child,
                                   parent, index))
                known_units.add(child_id)
        for unit in units:
            self._observe(unit, by_key, flavour)
        self._resolve([u for u in units if u.want_resolution])
        updates: list[JobUpdate] = []
        for unit in units:
            update = self._decide(unit, flavour)
            if update is not None:
                updates.append(update)
        for parent, children in parents:
            spec = _optional(lambda s: array_indices(s, flavour), str(parent.metadata.get("array", ""))) or []
            update = summarise_array(parent, children, [u for u in units if u.parent is parent], spec, self._missing)
            if update is not None:
                updates.append(update)
        return PollResult(updates, self.runner.calls - calls_before)

    def _qstat(self, native_ids: Sequence[str], flavour: str) -> list[PbsRecord]:
        records: list[PbsRecord] = []
        for start in range(0, len(native_ids), QSTAT_CHUNK):
            chunk = native_ids[start:start + QSTAT_CHUNK]
            result = self.runner.run(qstat_command(chunk, flavour), check=False)
            if result.returncode != 0:
                # 153 (PBSE_UNKJOBID & 255) is "an id you asked for is unknown": the wrapper then
                # prints nothing, Torque and PBS Pro still print the ids they know. Anything else
                # (cannot connect, Slurm not answering) makes this poll stale.
                unknown_only = result.returncode == 153 and (
                    not result.stderr.strip() or all(_UNKNOWN_JOB_RE.search(line)
                                                     for line in result.stderr.strip().split("\n")))
                if not unknown_only:
                    raise SchedulerError(f"qstat exited {result.returncode}: "
                                         f"{error_line(result.stderr or result.stdout, 'no output')}")
            try:
                records.extend(parse_qstat(result.stdout, flavour))
            except ParseError as exc:
                raise SchedulerError(f"unexpected qstat output: {exc}") from None
        return records

    def _observe(self, unit: _Unit, by_key: Mapping[tuple[str, int | None, bool], PbsRecord], flavour: str) -> None:
        """Find the unit's record and exit-code file; decide whether the wrapper's Slurm must be
        asked (``want_resolution``: finished or gone, with no evidence of how it ended)."""
        ident = _optional(parse_job_id, unit.native_id)
        if ident is not None:
            unit.record = by_key.get(ident.key)
            if unit.record is None and ident.index is None and not ident.array:
                unit.record = by_key.get((ident.seq, None, True))  # an attached array's own record
        if unit.parent is not None and flavour == TORQUE_SLURM:
            parent_ident = _optional(parse_job_id, unit.parent.native_id or "")
            unit.parent_record = by_key.get(parent_ident.key) if parent_ident is not None else None
            unit.record = None  # the wrapper never shows tasks: "1501_3" matched nothing real
        read_unit_exit(unit, self.context.paths)
        record = unit.record
        if record is not None:
            _status, known = map_state(record.state, flavour)
            if not known and (unit.job_id, record.state) not in self._logged_states:
                self._logged_states.add((unit.job_id, record.state))  # once, not at every poll
                log.warning("job %s: unknown PBS state %r (shown as unknown)", unit.job_id, record.state)
        finished = record is None or record.state in FINISHED_STATES
        if unit.parent_record is not None and unit.parent_record.state not in FINISHED_STATES:
            finished = False  # the rest of the array is still queued or running
        unit.want_resolution = (flavour == TORQUE_SLURM and finished and unit.exit is None
                                and not unit.cancel_requested
                                and (record is None or record.exit_status is None))

    def _resolve(self, need: Sequence[_Unit]) -> None:
        """The Slurm wrapper's fallback: ONE ``scontrol -o show job`` (one id, or every job when
        several are needed) says how jobs without an exit-code file ended (cancelled while
        pending, DependencyNeverSatisfied, killed...) and the state of each array task."""
        if not need:
            return
        ids = list(dict.fromkeys(_slurm_job_of(u) for u in need))
        try:
            result = self.runner.run(["scontrol", "-o", "show", "job", *(ids if len(ids) == 1 else [])], check=False)
            records = [scontrol_accounting(r) for r in parse_scontrol_jobs(result.stdout)] \
                if result.returncode == 0 else []
        except (SchedulerError, ParseError) as exc:
            log.warning("Slurm lookup under the PBS wrapper failed (no evidence this poll): %s", exc)
            return
        by_id = {r.job_id: r for r in records}
        for unit in need:
            unit.acct = by_id.get(unit.native_id)

    # -- deciding ----------------------------------------------------------------------------

    def _decide(self, unit: _Unit, flavour: str) -> JobUpdate | None:
        listed_unfinished = unit.record is not None and unit.record.state not in FINISHED_STATES
        if listed_unfinished and conclusive_exit(unit):
            record = unit.record
            assert record is not None
            facts = {"pbs_state": record.state}
            if record.exec_host:
                facts["exec_host"] = record.exec_host
            update: JobUpdate | None = settled_while_listed(unit, record.start, facts)
        else:
            update = self._judge(unit, flavour)
        return reconciled(unit, update, scheduler_done=not listed_unfinished)

    def _judge(self, unit: _Unit, flavour: str) -> JobUpdate | None:
        """What this poll's evidence says of a job: qstat's record of a job not yet finished, else
        its exit-code file, else the exit status PBS kept, else Slurm's (wrapper flavour)."""
        record, exit_record, acct = unit.record, unit.exit, unit.acct
        fields: dict[str, Any] = {}
        meta: dict[str, Any] = {}
        status: JobStatus | None = None
        reason: str | None = None
        kind: str | None = None
        exit_code: int | None = None
        sig: int | None = None
        if record is not None:
            meta["pbs_state"] = record.state
            if record.exec_host:
                meta["exec_host"] = record.exec_host
            if record.usage:
                meta["usage"] = dict(record.usage)
        if record is not None and record.state not in FINISHED_STATES:
            status, _known = map_state(record.state, flavour)
            if status is JobStatus.QUEUED and flavour == TORQUE_SLURM and unit.job is not None \
                    and unit.job.status is JobStatus.HELD:
                status = JobStatus.HELD  # the wrapper shows held jobs as Q: keep what we know
            if record.state == "M":  # moved away: it may still run on the other server
                reason = (f"moved to another PBS server ({record.queue or 'unknown queue'}); it may still run "
                          "there, but this server no longer reports on it")
            elif status is JobStatus.UNKNOWN:
                reason = f"PBS reports the state {record.state!r}"
            else:
                reason = _STATE_REASONS.get(record.state) or (record.comment if status in (
                    JobStatus.QUEUED, JobStatus.HELD) else None)
        elif exit_record is not None:
            status, reason = exit_file_verdict(unit, exit_record)
            exit_code, sig = exit_record.exit_code, exit_record.signal
            if record is not None and record.exit_status is not None and record.exit_status < 0 \
                    and status is JobStatus.FAILED:
                meaning = interpret_exit_status(record.exit_status, flavour)  # PBS says why
                reason, kind = meaning.reason, meaning.kind
        elif record is not None and flavour != TORQUE_SLURM and not record.started \
                and is_deletion_status(record.exit_status):
            # Finished without ever starting (no start time, no exec_host), with no exit status or
            # a signal's: deleted while queued (qdel, an administrator, or PBS itself when the
            # dependency failed; Torque then reports 271 = 256 + SIGTERM). Weighed before the status.
            status, kind = JobStatus.CANCELLED, reasons.CANCELLED
            if unit.cancel_requested:
                reason = reasons.CANCELLED_BY_USER
            elif record.comment and _DEPENDENCY_COMMENT_RE.search(record.comment):
                reason, kind = reasons.dependency_never_satisfied(record.comment), reasons.DEPENDENCY
            else:
                reason = f"deleted before it started{': ' + record.comment if record.comment else ''}"
        elif record is not None and record.exit_status is not None:
            meaning = interpret_exit_status(record.exit_status, flavour)
            exit_code, sig = meaning.exit_code, meaning.signal
            if unit.cancel_requested:
                status, reason, kind = JobStatus.CANCELLED, reasons.CANCELLED_BY_USER, reasons.CANCELLED
            elif meaning.exit_code == 0:
                status = JobStatus.COMPLETED
            else:
                status, kind = JobStatus.FAILED, meaning.kind
                reason = meaning.reason
                killed = limit_kill(record.comment) if meaning.reason is None else None
                if killed is not None:
                    kind, reason = killed
                elif reason is None:
                    kind = reasons.SIGNAL if sig is not None else reasons.EXIT
                    reason = f"killed by signal {signal_name(sig)}" if sig is not None else f"exit code {exit_code}"
        elif unit.cancel_requested and (record is not None or unit.parent_record is None
                                        or unit.parent_record.state in FINISHED_STATES):
            status, reason, kind = JobStatus.CANCELLED, reasons.CANCELLED_BY_USER, reasons.CANCELLED
        elif acct is not None:
            slurm_status = slurm_map_state(acct.state)[0]
            if slurm_status.final:
                status, exit_code, sig = slurm_status, acct.exit_code, acct.signal
                reason = self._slurm_reason(unit, slurm_status, acct)
            elif slurm_status is JobStatus.RUNNING and unit.parent is not None:
                status = JobStatus.RUNNING
            elif slurm_status is not JobStatus.UNKNOWN and unit.parent is not None:
                status, reason = slurm_status, acct.reason
            if acct.start is not None and acct.nodes is not None and status is not None:
                fields["start_time"] = acct.start
        elif unit.parent_record is not None and unit.parent_record.state not in FINISHED_STATES:
            # A task of an array on the Slurm wrapper, which shows no tasks: its log appears when
            # it starts (the task script opens it first thing), its exit-code file when it ends.
            status = JobStatus.RUNNING if self.context.paths.log_file(unit.job_id).exists() else JobStatus.QUEUED
        if status is None:
            return self._missing(unit, record)
        if unit.metadata.get("missing_since") is not None:
            meta["missing_since"] = None  # found again
        start = (record.start if record is not None else None) or (exit_record.start_time if exit_record else None)
        if start is not None and (status is JobStatus.RUNNING or status.final):
            fields["start_time"] = start
        elif status is JobStatus.RUNNING and "start_time" not in fields and unit.job is not None \
                and unit.job.start_time is None:
            fields["start_time"] = utcnow()  # first seen running (the wrapper's tasks have no times)
        if status.final:
            fields["end_time"] = ((exit_record.end_time if exit_record else None) or (record.end if record else None)
                                  or (acct.end if acct else None) or utcnow())
            if status is JobStatus.COMPLETED and exit_code is None and sig is None:
                exit_code = 0
            ran = "start_time" in fields or (unit.job is not None and unit.job.start_time is not None)
            if status is JobStatus.CANCELLED and not ran and exit_record is None:
                exit_code, sig = None, None  # Slurm's "0:0" for a job that never ran is no exit code
            fields["exit_code"], fields["signal"] = exit_code, sig
            if kind is not None and status is not JobStatus.COMPLETED:
                meta[reasons.KIND_META_KEY] = kind
        elif status is JobStatus.RUNNING and unit.job is not None:
            progress = read_job_progress(self.context.paths, unit.job.job_id, unit.job.progress)
            if progress is not None:
                fields["progress"] = progress
        fields["reason"] = reason
        if meta:
            fields["metadata"] = meta
        fields.update(task_identity(unit))
        unit.status, unit.fields = status, fields
        return JobUpdate(unit.job_id, status, fields, source="poll")

    def _slurm_reason(self, unit: _Unit, status: JobStatus, acct: AccountingRecord) -> str | None:
        if status is JobStatus.COMPLETED:
            return None
        if status is JobStatus.CANCELLED:
            if (acct.reason or "").startswith("Dependency"):
                deps = unit.metadata.get("native_dependencies") or []
                return reasons.dependency_never_satisfied(
                    kind=unit.job.dependency_kind if unit.job else None, on=deps, scheduler="PBS")
            return "cancelled in PBS/Slurm (qdel, scancel or an administrator)"
        if acct.state in ("TIMEOUT", "OUT_OF_MEMORY", "NODE_FAIL", "PREEMPTED", "BOOT_FAIL", "DEADLINE"):
            return f"{acct.state} (reported by Slurm under the PBS wrapper)"
        if acct.signal is not None:
            return f"killed by signal {signal_name(acct.signal)}"
        return f"exit code {acct.exit_code}" if acct.exit_code else "failed"

    def _missing(self, unit: BatchUnit, record: PbsRecord | None = None) -> JobUpdate | None:
        """No evidence this poll: keep the job; UNKNOWN with a reason after the grace period."""
        if record is not None and record.state in FINISHED_STATES:
            what = f"PBS says job {unit.native_id} finished ({record.state}) but gives no exit status"
        else:
            what = f"PBS no longer lists job {unit.native_id}"
        return missing_update(unit, self.missing_grace, lambda minutes: (
            f"{what}, and there is no exit-code file for it (for {minutes:.0f} min); it may have been "
            "purged, lost, or killed before it could write one"))

    # -- cancel, queue, attach ----------------------------------------------------------------

    def cancel(self, jobs: Sequence[JobInfo]) -> list[JobUpdate]:
        """One ``qdel`` for all of them (PBS answers asynchronously: the next poll sees them end;
        here they are only marked so the final state says "cancelled by user"). qdel's complaints
        about jobs that had already ended are not errors."""
        updates: list[JobUpdate] = []
        cancelling = {j.job_id for j in jobs if j.native_id}
        ids: list[str] = []
        wrapper_tasks: list[str] = []
        for job in jobs:
            if not job.native_id:
                updates.append(JobUpdate(job.job_id, JobStatus.CANCELLED,
                                         {"reason": reasons.CANCELLED_BY_USER, "end_time": utcnow(),
                                          "metadata": {"cancel_requested": True}}, source="cancel"))
                continue
            if job.array_parent not in cancelling:  # cancelling the array cancels its tasks
                if _WRAPPER_TASK_RE.match(job.native_id):
                    # The wrapper's qdel reads "1501_3" as 1501 and would kill the whole array.
                    wrapper_tasks.append(job.native_id)
                else:
                    ids.append(job.native_id)
            updates.append(JobUpdate(job.job_id, None, {"metadata": {"cancel_requested": True}}, source="cancel"))
        problems: list[str] = []
        unique = list(dict.fromkeys(ids))
        for start in range(0, len(unique), QSTAT_CHUNK):
            result = self.runner.run(["qdel", *unique[start:start + QSTAT_CHUNK]], check=False)
            if result.returncode != 0:
                lines = [line.strip() for line in (result.stdout + "\n" + result.stderr).split("\n") if line.strip()]
                problems.extend(line for line in lines if not _BENIGN_QDEL_RE.search(line))
        if wrapper_tasks:
            result = self.runner.run(["scancel", *dict.fromkeys(wrapper_tasks)], check=False)
            if result.returncode != 0 and result.stderr.strip():
                problems.append(error_line(result.stderr, "scancel failed"))
        if problems:
            raise SchedulerError(f"qdel failed: {problems[-1][:300]}")
        return updates

    def queue(self) -> list[QueueEntry]:
        """This user's jobs in PBS now (not finished), ours or not: one qstat of every job."""
        flavour = self.flavour
        result = self.runner.run(qstat_command([], flavour), check=False)
        if result.returncode not in (0, 153):
            raise SchedulerError(f"qstat exited {result.returncode}: {error_line(result.stderr, 'no output')}")
        try:
            records = parse_qstat(result.stdout, flavour)
        except ParseError as exc:
            raise SchedulerError(f"unexpected qstat output: {exc}") from None
        user = current_user()
        return [QueueEntry(r.job_id, r.name or "", r.state, r.owner, r.comment) for r in records
                if r.owner == user and r.state not in FINISHED_STATES]

    def attach(self, native_id: str) -> JobInfo:
        """A JobInfo for a PBS job submitted elsewhere ("123", "123.server", "123[].server")."""
        native = str(native_id).strip()
        try:
            ident = parse_job_id(native)
        except ParseError:
            raise InvalidInputError(f"invalid PBS job id {native_id!r}: use an id like 123 or 123.server") from None
        if ident.index is not None and self.flavour == TORQUE_SLURM:
            raise InvalidInputError("the Slurm PBS wrapper cannot show one array task: attach the array's id")
        records = [r for r in self._qstat([native], self.flavour) if r.ident.key == ident.key
                   or (ident.index is None and r.ident.seq == ident.seq and r.ident.index is None)]
        if not records:
            raise InvalidInputError(f"PBS does not know job {native}: check the id with `qstat`")
        record = records[0]
        status, _known = map_state(record.state, self.flavour)
        if record.state in FINISHED_STATES or status is JobStatus.UNKNOWN:
            # How it ended is decided by the next poll (exit status, or Slurm under the wrapper).
            status = JobStatus.RUNNING if record.started else JobStatus.QUEUED
        metadata: dict[str, Any] = {"attached": True, "pbs_state": record.state, "pbs_flavour": self.flavour}
        resources: dict[str, Any] = {}
        walltime = _optional(parse_pbs_duration, record.attributes.get("Resource_List.walltime"))
        if walltime and walltime < 366 * 86400:  # the wrapper prints junk for "no limit"
            resources["walltime"] = f"{int(walltime)}s"
        cpus = record.attributes.get("Resource_List.ncpus", "")
        if cpus.isascii() and cpus.isdigit() and 0 < int(cpus) <= 100_000:
            resources["cpus"] = int(cpus)
        if record.queue and re.fullmatch(r"[A-Za-z0-9_.:+,-]{1,128}", record.queue):
            resources["partition"] = record.queue
        try:
            parsed = Resources.from_dict(resources)
        except InvalidInputError:
            parsed = Resources()
        return JobInfo(
            job_id=new_job_id(), name=record.name or f"pbs-{native}", status=status, scheduler=self.name,
            native_id=record.job_id if self.flavour != TORQUE_SLURM else native, resources=parsed,
            submit_time=record.submit, start_time=record.start if status is JobStatus.RUNNING else None,
            reason=record.comment, metadata=metadata,
        )


# ------------------------------------------------------------------------------------------------
# Helpers
# ------------------------------------------------------------------------------------------------


def _task_native_id(parent_native: str, index: int, flavour: str) -> str:
    """A task's id: PBS's "123[4].server" (from "123[].server"), or Slurm's "1501_4" under the
    wrapper (which has no task ids of its own; scontrol and scancel understand Slurm's)."""
    if flavour == TORQUE_SLURM:
        return f"{parent_native}_{index}"
    if "[]" in parent_native:
        return parent_native.replace("[]", f"[{index}]", 1)
    seq, dot, server = parent_native.partition(".")
    return f"{seq}[{index}]{dot}{server}"


def _slurm_job_of(unit: _Unit) -> str:
    """The Slurm job id to show for a unit under the wrapper (an array task: its array's id)."""
    if unit.parent is not None and unit.parent.native_id:
        return unit.parent.native_id
    return unit.native_id


def _sniff_wrapper() -> str | None:
    """Slurm's wrappers are Perl scripts that load the Slurm API: recognisable by reading the
    ``qstat`` on PATH, without running anything."""
    path = shutil.which("qstat")
    if path is None:
        return None
    try:
        with open(path, "rb") as handle:
            head = handle.read(8192)
    except OSError:
        return None
    if head.startswith(b"#!") and b"perl" in head.split(b"\n", 1)[0] and b"Slurm" in head:
        return TORQUE_SLURM
    return None
