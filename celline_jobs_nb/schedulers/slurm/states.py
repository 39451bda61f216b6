"""Slurm: states (see the package docstring)."""

from __future__ import annotations

from ...core import reasons
from ...core.models import JobStatus

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


