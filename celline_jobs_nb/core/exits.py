"""Exit-record rules shared by every adapter: how a signal is named and which final status an
exit-code file implies (no process inspection here, so cluster adapters need no psutil)."""

from __future__ import annotations

import signal

from . import reasons
from .jobfiles import ExitRecord
from .models import JobInfo, JobStatus, utcnow
from .updates import JobUpdate


def signal_name(number: int) -> str:
    """SIGKILL for 9: how reasons name signals."""
    try:
        return signal.Signals(number).name
    except ValueError:
        return str(number)


def exit_reason(exit_code: int | None, sig: int | None) -> tuple[str | None, str | None]:
    """(reason, failure kind) of an exit: None for a clean exit 0."""
    if sig is not None:
        return f"killed by signal {signal_name(sig)}", reasons.SIGNAL
    if exit_code:
        return f"exit code {exit_code}", reasons.EXIT
    return None, None


def final_update_from_exit(job: JobInfo, record: ExitRecord) -> JobUpdate:
    """The final status a job's exit-code file implies."""
    fields: dict[str, object] = {
        "exit_code": record.exit_code,
        "signal": record.signal,
        "end_time": record.end_time or utcnow(),
    }
    kind: str | None
    if job.metadata.get("cancel_requested"):
        status, reason, kind = JobStatus.CANCELLED, reasons.CANCELLED_BY_USER, reasons.CANCELLED
    elif record.exit_code == 0 and record.signal is None:
        status, reason, kind = JobStatus.COMPLETED, None, None
    else:
        status = JobStatus.FAILED
        reason, kind = exit_reason(record.exit_code, record.signal)
        if reason is None:
            reason, kind = f"exit code {record.exit_code}", reasons.EXIT
    fields["reason"] = reason
    if kind is not None:
        fields["metadata"] = {reasons.KIND_META_KEY: kind}
    return JobUpdate(job.job_id, status, fields, source="exit-file")
