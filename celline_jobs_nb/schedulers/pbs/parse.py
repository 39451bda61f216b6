"""PBS: job ids; times and sizes; array specs (see the package docstring)."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from ...core.errors import ParseError
from ..batch.rules import optional, parse_ctime, parse_index_ranges
from ..batch.script import one_line
from .states import FINISHED_STATES, OPENPBS, TORQUE, TORQUE_SLURM, normalise_state

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
    if not (value.isascii() and value.isdigit() and len(value) <= 12):
        moment = parse_ctime(value)
    else:
        try:
            moment = datetime.fromtimestamp(int(value), timezone.utc)
        except (ValueError, OverflowError, OSError):
            moment = None
    if moment is None:
        raise ParseError(f"not a PBS time: {value[:80]!r}")
    return moment


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


#: Which attribute holds which time: (submit, start, end, the end of a finished job without one).
#: The Slurm wrapper abuses PBS's names: its mtime is the start and its ctime the end (for a
#: running job: the expected end); Torque's start_time/comp_time and PBS Pro's stime/obittime are
#: the real ones (ctime is the creation time there; PBS Pro before obittime: mtime).
_TIME_ATTRIBUTES = {
    TORQUE_SLURM: ("qtime", "mtime", "ctime", None),
    TORQUE: ("qtime", "start_time", "comp_time", None),
    OPENPBS: ("qtime", "stime", "obittime", "mtime"),
}
#: Flavours whose "start" of a job that never got a host is no start (Slurm gives a job cancelled
#: while pending the cancel time as its start).
_START_NEEDS_HOST = frozenset({TORQUE_SLURM})


def _record(job_id: str, attrs: Mapping[str, str], flavour: str) -> PbsRecord:
    if not job_id:
        raise ParseError("qstat record without a job id")
    parse_job_id(job_id)  # a record we could never match is an error in our own poll output
    state = normalise_state(attrs.get("job_state", ""))
    exit_text = attrs.get("exit_status", attrs.get("Exit_status", "")).strip()
    exit_status = int(exit_text) if re.fullmatch(r"-?\d{1,9}", exit_text) else None
    submit_key, start_key, end_key, finished_end_key = _TIME_ATTRIBUTES.get(flavour, _TIME_ATTRIBUTES[TORQUE])
    submit = optional(parse_pbs_time, attrs.get(submit_key)) or optional(parse_pbs_time, attrs.get("ctime"))
    start = optional(parse_pbs_time, attrs.get(start_key))
    end = optional(parse_pbs_time, attrs.get(end_key))
    if end is None and finished_end_key and state in FINISHED_STATES:
        end = optional(parse_pbs_time, attrs.get(finished_end_key))
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
        value = optional(parser, attrs.get(key))
        if value is not None:
            usage[name] = value
    cpus = attrs.get("Resource_List.ncpus", "")
    if usage and cpus.isascii() and cpus.isdigit() and 0 < int(cpus) <= 100_000:
        usage["alloc_cpus"] = int(cpus)
    exec_host = attrs.get("exec_host", "").strip() or None
    if exec_host == "--":
        exec_host = None
    if flavour in _START_NEEDS_HOST and exec_host is None:
        start = None
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


def torque_array_indices(spec: str) -> list[int]:
    """Torque ``-t``: "1-4%2", "0,10,20-25" (no step)."""
    text = str(spec).strip()
    if not _TORQUE_ARRAY_RE.match(text):
        raise ParseError(f"not a Torque array spec (-t 1-4, 1,3,5 or 1-10%2; no step): {text[:80]!r}")
    return parse_index_ranges(text)


def openpbs_array_indices(spec: str) -> list[int]:
    """PBS Pro ``-J``: one range with an optional step ("1-10:2")."""
    text = str(spec).strip()
    match = _OPENPBS_ARRAY_RE.match(text)
    if not match or int(match.group(2)) <= int(match.group(1)):
        raise ParseError(f"not a PBS Pro array spec (-J 1-10 or 1-10:2; one range): {text[:80]!r}")
    return parse_index_ranges(text.split("%", 1)[0])


_ARRAY_SYNTAX = {TORQUE: torque_array_indices, OPENPBS: openpbs_array_indices}


def array_indices(spec: str, flavour: str) -> list[int]:
    """The task indexes of an array spec in the flavour's syntax: Torque ``-t``, PBS Pro ``-J``,
    the Slurm wrapper (Slurm's own, "1-7:2%2")."""
    return _ARRAY_SYNTAX.get(flavour, parse_index_ranges)(str(spec).strip())
