"""Grid Engine: pure parsers over the text of qsub, qstat -xml, qstat -j -xml, qacct and qdel.

Every output is untrusted: sizes are bounded, numbers and states are checked, a record that does
not read is dropped (a whole output that does not read raises ``ParseError``). Facts from
Son of Grid Engine 8.1.9 (recorded in tests/data/sge/, see SOURCE.md there):

- ``qsub -terse`` prints the job number (``11``), for an array ``17.1-3:1``;
- ``qstat -xml``: running entries under ``queue_info`` (``JAT_start_time``), pending ones under a
  second ``job_info`` (``JB_submission_time``); times are the qmaster's local time without a zone;
  a pending array is one entry with ``<tasks>2-4:1</tasks>`` (or ``2,3``), a running task its own
  entry with ``<tasks>1</tasks>``;
- job names are escaped with ``%lt;`` for ``<`` (a bug: ``&lt;`` elsewhere), undone here;
- ``qstat -j <ids> -xml``: ``detailed_job_info/djob_info/element`` per job, with error messages
  (``QIM_message``: why a job is in error state), predecessors, epoch times; unknown ids come as
  ``<unknown_jobs>`` with exit 0;
- ``qacct -j``: one block per job or array task, separated by ``=====`` lines; ``start_time`` is
  ``-/-`` for a job that never started; ``failed`` is a code and a text (``37  : qmaster enforced
  h_rt, h_cpu, or h_vmem limit``); an unknown job is ``error: job id N not found`` on stderr.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from datetime import datetime, timezone

from ...core.errors import ParseError
from ..batch.rules import MAX_ARRAY_TASKS, parse_ctime, parse_index_ranges

MAX_OUTPUT_CHARS = 200_000_000  # ~400,000 listed jobs; anything bigger is not a qstat we can trust
MAX_TASKS = MAX_ARRAY_TASKS  # tasks one pending array entry may expand to (SGE's max_aj_tasks default: 75,000)
MAX_TEXT = 500  # characters kept of a name, a message, a category
_JOB_NUMBER_RE = re.compile(r"^[1-9][0-9]{0,11}$")
_TERSE_RE = re.compile(r"^([1-9][0-9]{0,11})(?:\.([0-9]+-[0-9]+:[0-9]+|[0-9]+))?$")
_PLAIN_RE = re.compile(r"^Your job(?:-array)? ([1-9][0-9]{0,11})(?:\.(\S+))? \(.*\) has been submitted$")
_SIZE_RE = re.compile(r"^([0-9]+(?:\.[0-9]+)?)([KMGTP]?)B?$")
_SECONDS_RE = re.compile(r"^([0-9]+(?:\.[0-9]+)?)s?$")
_FAILED_RE = re.compile(r"^([0-9]{1,4})\s*(?::\s*(.*))?$")
_EXIT_RE = re.compile(r"^(-?[0-9]{1,6})\b")
_SEPARATOR_RE = re.compile(r"^={10,}\s*$", re.MULTILINE)


@dataclass(frozen=True)
class SgeRecord:
    """One entry of ``qstat -xml``: a job, or one task of an array (``task``)."""

    job_number: str
    task: int | None
    name: str
    owner: str
    state: str
    start: datetime | None = None
    submit: datetime | None = None
    queue: str | None = None
    slots: int | None = None


@dataclass
class SgeDetail:
    """What ``qstat -j <ids> -xml`` adds for one job: why it is in error state, what it waits on."""

    job_number: str
    name: str = ""
    errors: list[str] = field(default_factory=list)
    predecessors: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class AcctRecord:
    """One ``qacct -j`` block: a job's (or an array task's) end as the accounting file has it."""

    job_number: str
    task: int | None
    name: str
    owner: str
    failed: int
    failed_text: str
    exit_status: int
    start: datetime | None
    end: datetime | None
    wallclock: float | None = None
    maxvmem: int | None = None
    category: str = ""
    hostname: str | None = None

    @property
    def ran(self) -> bool:
        return self.start is not None


def _bounded(text: str, what: str) -> str:
    if len(text) > MAX_OUTPUT_CHARS:
        raise ParseError(f"{what} output is {len(text)} characters long: more than this monitor reads")
    return text


def sge_unescape(text: str) -> str:
    """Undo qstat's escaping bug: ``<`` comes out as ``%lt;`` (the rest as proper XML entities)."""
    return text.replace("%lt;", "<")


def parse_xml(text: str, what: str) -> ET.Element:
    """A qstat XML document; no DTD or entity declarations (they are never in qstat's output)."""
    text = _bounded(text, what)
    if "<!DOCTYPE" in text or "<!ENTITY" in text:
        raise ParseError(f"{what} output declares a DTD or entities: refused")
    try:
        return ET.fromstring(text.strip())
    except ET.ParseError as exc:
        raise ParseError(f"{what} output is not XML ({exc})") from None


def parse_local_iso(text: str | None) -> datetime | None:
    """qstat -xml times: ISO without a zone, the qmaster's local time (read as this machine's)."""
    if not text:
        return None
    try:
        value = datetime.fromisoformat(text.strip()[:32])
        if value.tzinfo is None:
            value = value.astimezone()  # naive: local time
        return value.astimezone(timezone.utc)
    except (ValueError, OverflowError, OSError):  # not a time, or out of range (year 1 in UTC-x)
        return None


def parse_epoch(text: str | None) -> datetime | None:
    """qstat -j times: seconds since the epoch (0: not set)."""
    if not text or not text.strip().isdigit() or len(text.strip()) > 12:
        return None
    seconds = int(text.strip())
    try:
        return datetime.fromtimestamp(seconds, timezone.utc) if seconds > 0 else None
    except (ValueError, OverflowError, OSError):
        return None


def parse_size(text: str | None) -> int | None:
    """qacct sizes (``4.957MB``, ``0.000B``, ``1.2G``), 1024-based as SGE prints them, in bytes."""
    match = _SIZE_RE.match((text or "").strip())
    if match is None:
        return None
    power = " KMGTP".index(match.group(2) or " ")
    return int(float(match.group(1)) * 1024 ** power)


def task_range(spec: str) -> list[int]:
    """Task indices of a qstat ``<tasks>`` value or a ``-t`` spec: ``1-4:1``, ``2,3``, ``5``,
    ``1-9:2`` (the shared range-list rule; Grid Engine's indices start at 1, and it has no ``%``).
    ParseError when it does not read or would expand past ``MAX_TASKS``."""
    text = str(spec).strip()
    if "%" in text:
        raise ParseError(f"not a Grid Engine task range: {text[:40]!r}")
    indices = parse_index_ranges(text, MAX_TASKS, "Grid Engine")
    if indices and indices[0] < 1:
        raise ParseError(f"Grid Engine task indices start at 1: {text[:40]!r}")
    return indices


def parse_qsub_output(stdout: str) -> tuple[str, str | None]:
    """(job number, array spec or None) from ``qsub -terse`` (or plain qsub's sentence)."""
    lines = [line.strip() for line in stdout[:10_000].splitlines() if line.strip()]
    for line in reversed(lines):  # warnings may come first; the id is the last line
        match = _TERSE_RE.match(line) or _PLAIN_RE.match(line)
        if match is not None:
            return match.group(1), match.group(2)
    shown = lines[-1][:120] if lines else "nothing"
    raise ParseError(f"qsub printed no job number (it printed {shown!r})")


def _text(element: ET.Element, tag: str) -> str:
    found = element.find(tag)
    return (found.text or "").strip() if found is not None else ""


def parse_qstat_xml(text: str) -> list[SgeRecord]:
    """The entries of ``qstat -xml`` (``-u`` any), one record per job or array task. A pending
    array entry (``<tasks>2-4:1</tasks>``) becomes one record per task; an entry with a bad job
    number or an unreadable task range is dropped."""
    root = parse_xml(text, "qstat -xml")
    if root.tag != "job_info":
        raise ParseError(f"qstat -xml output starts with <{root.tag[:40]}>, not <job_info>")
    records: list[SgeRecord] = []
    for entry in root.iter("job_list"):
        number = _text(entry, "JB_job_number")
        if not _JOB_NUMBER_RE.match(number):
            continue
        slots = _text(entry, "slots")
        common = dict(job_number=number, name=sge_unescape(_text(entry, "JB_name"))[:MAX_TEXT],
                      owner=_text(entry, "JB_owner")[:64], state=_text(entry, "state")[:16],
                      start=parse_local_iso(_text(entry, "JAT_start_time")),
                      submit=parse_local_iso(_text(entry, "JB_submission_time")),
                      queue=_text(entry, "queue_name")[:200] or None,
                      slots=int(slots) if slots.isdigit() and len(slots) < 8 else None)
        tasks = _text(entry, "tasks")
        if not tasks:
            records.append(SgeRecord(task=None, **common))  # type: ignore[arg-type]
            continue
        try:
            indices = task_range(tasks)
        except ParseError:
            continue
        records.extend(SgeRecord(task=index, **common) for index in indices)  # type: ignore[arg-type]
    return records


def parse_job_details(text: str) -> tuple[dict[str, SgeDetail], list[str]]:
    """``qstat -j <ids> -xml``: details by job number, and the ids qstat says do not exist.
    Some versions print the unknown-jobs answer with an empty tag (``<unknown_jobs><>``, not
    well-formed XML): that one answer is read with a pattern."""
    try:
        root = parse_xml(text, "qstat -j -xml")
    except ParseError:
        head = text.lstrip()[:300]
        if len(text) < 100_000 and ("<unknown_jobs" in head or "<unknown_jobs" in text[:300]):
            return {}, [m[:40] for m in re.findall(r"<ST_name>([^<]{1,40})</ST_name>", text)]
        raise
    unknown = [(e.text or "").strip()[:40] for e in root.iter("ST_name")] if root.tag == "unknown_jobs" else []
    details: dict[str, SgeDetail] = {}
    if root.tag == "unknown_jobs":
        return details, unknown
    if root.tag != "detailed_job_info":
        raise ParseError(f"qstat -j -xml output starts with <{root.tag[:40]}>, not <detailed_job_info>")
    for unknown_list in root.iter("unknown_jobs"):
        unknown.extend((e.text or "").strip()[:40] for e in unknown_list.iter("ST_name"))
    # SGE 8.1.9 wraps each job in djob_info/element; Univa and older versions put the job's fields
    # straight into djob_info (one per job).
    jobs = [e for info in root.iter("djob_info") for e in (info.findall("element") or [info])]
    for element in jobs:
        number = _text(element, "JB_job_number")
        if not _JOB_NUMBER_RE.match(number) or number in details:
            continue
        name = _text(element, "JB_job_name") or _text(element, "JB_name")
        detail = SgeDetail(number, sge_unescape(name)[:MAX_TEXT])
        for message in element.iter("QIM_message"):
            line = " ".join((message.text or "").split())[:MAX_TEXT]
            if line and line not in detail.errors:
                detail.errors.append(line)
        preds = element.find("JB_jid_predecessor_list")
        for pred in (preds.iter("JRE_job_number") if preds is not None else ()):
            value = (pred.text or "").strip()
            if _JOB_NUMBER_RE.match(value) and value not in detail.predecessors:
                detail.predecessors.append(value)
        details[number] = detail
    return details, unknown


def error_reason(message: str) -> str:
    """The useful part of an error message (``12/04/2026 16:55:39 [0:11185]: error: can't open
    output file ...`` -> ``can't open output file ...``)."""
    text = re.sub(r"^[0-9/]+ [0-9:]+ \[[0-9:]+\]: ", "", message.strip())
    text = re.sub(r"^error: ", "", text)
    return text[:MAX_TEXT]


def parse_qacct(text: str) -> list[AcctRecord]:
    """The blocks of ``qacct -j`` output (one per job or array task; empty for none)."""
    text = _bounded(text, "qacct")
    records: list[AcctRecord] = []
    for block in _SEPARATOR_RE.split(text):
        fields: dict[str, str] = {}
        for line in block.splitlines():
            key, _, value = line.partition(" ")
            if key and key.isidentifier() and key not in fields:
                fields[key] = value.strip()[:MAX_TEXT]
        record = _acct_record(fields)
        if record is not None:
            records.append(record)
    return records


def _acct_record(fields: dict[str, str]) -> AcctRecord | None:
    number = fields.get("jobnumber", "")
    failed = _FAILED_RE.match(fields.get("failed", ""))
    status = _EXIT_RE.match(fields.get("exit_status", ""))
    task = fields.get("taskid", "undefined")
    if not _JOB_NUMBER_RE.match(number) or failed is None or status is None:
        return None
    if task != "undefined" and not (task.isdigit() and len(task) < 10):
        return None
    wall = _SECONDS_RE.match(fields.get("ru_wallclock", ""))
    return AcctRecord(
        job_number=number, task=int(task) if task != "undefined" else None,
        name=sge_unescape(fields.get("jobname", "")), owner=fields.get("owner", "")[:64],
        failed=int(failed.group(1)), failed_text=(failed.group(2) or "").strip(),
        exit_status=int(status.group(1)), start=parse_ctime(fields.get("start_time")),
        end=parse_ctime(fields.get("end_time")), wallclock=float(wall.group(1)) if wall else None,
        maxvmem=parse_size(fields.get("maxvmem")), category=fields.get("category", ""),
        hostname=fields.get("hostname") or None)


#: qdel lines that say the job is gone already (not a problem when cancelling).
_QDEL_GONE_RE = re.compile(r'job "?[0-9.]+"? does not exist|has already been deleted|already in deletion',
                           re.IGNORECASE)
_QDEL_OK_RE = re.compile(r"has (registered the job|deleted job|deleted job-array task)", re.IGNORECASE)


def qdel_problems(output: str) -> list[str]:
    """The lines of qdel's output that are real problems (not "deleted", not "does not exist")."""
    problems = []
    for line in output[:100_000].splitlines():
        line = line.strip()
        if line and not _QDEL_OK_RE.search(line) and not _QDEL_GONE_RE.search(line):
            problems.append(line[:300])
    return problems
