"""PBS: states (see the package docstring)."""

from __future__ import annotations

from ...core.models import JobStatus

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


#: Letters a flavour reads differently: the Slurm wrapper's "U" means "unknown" (not PBS Pro's
#: "suspended because its workstation is busy").
FLAVOUR_STATES: dict[str, dict[str, JobStatus]] = {TORQUE_SLURM: {"U": JobStatus.UNKNOWN}}


def normalise_state(text: str) -> str:
    """The state letter as PBS prints it ("R"; " r " is read as "R")."""
    return str(text).strip()[:1].upper()


def map_state(text: str, flavour: str | None = None) -> tuple[JobStatus, bool]:
    """Our status for a PBS state letter, and whether it is known (``FLAVOUR_STATES``: a letter a
    flavour reads as "unknown" is not known)."""
    letter = normalise_state(text)
    if FLAVOUR_STATES.get(flavour or "", {}).get(letter) is JobStatus.UNKNOWN:
        return JobStatus.UNKNOWN, False
    status = PBS_STATES.get(letter) if len(str(text).strip()) == 1 else None
    return (status, True) if status is not None else (JobStatus.UNKNOWN, False)


