"""Slurm: the queue, attaching to a job started outside, and running jobs' resource use (sstat)"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ...core.errors import InvalidInputError, ParseError, SchedulerError
from ...core.models import JobInfo, JobStatus, new_job_id
from ...core.updates import JobUpdate
from ..base import QueueEntry
from ..batch.poll import SchedulerRecord
from ..batch.rules import current_user, error_line, listed_resources
from .parse import (
    _NATIVE_ID_RE,
    _NO_VALUE,
    QUEUE_FORMAT,
    SACCT_C_FIELDS,
    SACCT_FIELDS,
    AccountingRecord,
    _indices_or_empty,
    _optional,
    _parse_or_empty,
    parse_duration,
    parse_sacct_table,
    parse_scontrol_jobs,
    parse_slurm_memory,
    parse_squeue,
    scontrol_accounting,
)
from .states import is_held_reason, map_state

if TYPE_CHECKING:
    from .adapter import _Unit

log = logging.getLogger("celline.job")
USAGE_FOLLOWUP_SECONDS = 120.0


class SlurmInspection:
    """Slurm: the queue, attaching to a job started outside, and running jobs' resource use (sstat)"""

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
                        and "max_rss_bytes" not in (unit.resolved.usage if unit.resolved is not None else {}):
                    self._usage_followups[unit.job_id] = (unit.native_id, now + USAGE_FOLLOWUP_SECONDS)
        else:
            self._usage_followups.clear()
        return updates

    def queue(self) -> list[QueueEntry]:
        """This user's jobs in SLURM now (pending and running), ours or not."""
        result = self.runner.run(["squeue", "-h", "-u", current_user(), "-o", QUEUE_FORMAT])
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
            raise SchedulerError(f"scontrol show job {native} failed: {error_line(result.stderr, 'no output')}")
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
        command = first.get("Command", "")
        return JobInfo(
            job_id=new_job_id(),
            name=first.get("JobName") or f"slurm-{native}",
            status=status,
            command="" if command.upper() in _NO_VALUE else command,
            log_file=None if first.get("StdOut", "").upper() in _NO_VALUE else first.get("StdOut"),
            working_dir=None if first.get("WorkDir", "").upper() in _NO_VALUE else first.get("WorkDir"),
            resources=listed_resources(resources),
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

    def job_records(self, native_ids: Sequence[str]) -> dict[str, SchedulerRecord]:
        """What the controller holds of these jobs (any state), from ONE ``scontrol -o show job``:
        of the one job, or of every job when several are asked (scontrol takes one id). {} when
        scontrol fails; ParseError when its output cannot be read. For other adapters (the PBS
        wrappers' flavour), through the registry."""
        ids = list(dict.fromkeys(native_ids))
        result = self.runner.run(["scontrol", "-o", "show", "job", *(ids if len(ids) == 1 else [])], check=False)
        if result.returncode != 0:
            return {}
        records = {}
        for acct in (scontrol_accounting(r) for r in parse_scontrol_jobs(result.stdout)):
            records[acct.job_id] = SchedulerRecord(acct.job_id, map_state(acct.state)[0], acct.state, acct.exit_code,
                                                   acct.signal, acct.start, acct.end, acct.nodes, acct.reason,
                                                   acct.submit)
        return records

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
