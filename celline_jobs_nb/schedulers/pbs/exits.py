"""What a PBS ``Exit_status`` says: PBS's own negative codes per flavour, signals, limit kills.

Negative values are set by PBS itself, not by the job. The two families disagree from -8 on:
PBS Professional / OpenPBS (``JOB_EXEC_*`` in OpenPBS ``src/include/job.h``) and Torque (Adaptive
Computing, Torque 6.1 admin guide, "Job exit status"); -11 is a rerun on one and a walltime kill
on the other. Each code carries its failure kind (``core/reasons``); the text is built here once.
Recorded samples and their sources: tests/data/pbs/real/SOURCE.md.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ...core import reasons

_START = "PBS could not start the job"
#: PBS Professional / OpenPBS: (name, kind, what happened).
OPENPBS_EXEC_CODES: dict[int, tuple[str, str, str]] = {
    -1: ("JOB_EXEC_FAIL1", reasons.NODE_FAIL, f"{_START} (before its files were set up)"),
    -2: ("JOB_EXEC_FAIL2", reasons.NODE_FAIL, f"{_START} (after its files were set up)"),
    -3: ("JOB_EXEC_RETRY", reasons.NODE_FAIL, f"{_START}; PBS retries it"),
    -4: ("JOB_EXEC_INITABT", reasons.NODE_FAIL, "the job was aborted when its node's MOM restarted"),
    -5: ("JOB_EXEC_INITRST", reasons.NODE_FAIL,
         "the job was aborted when its node's MOM restarted (checkpointed, no migration)"),
    -6: ("JOB_EXEC_INITRMG", reasons.NODE_FAIL,
         "the job was aborted when its node's MOM restarted (checkpointed, migration allowed)"),
    -7: ("JOB_EXEC_BADRESRT", reasons.NODE_FAIL, "the job could not be restarted from its checkpoint"),
    -10: ("JOB_EXEC_FAILUID", reasons.NODE_FAIL, f"{_START}: invalid user or group on the execution host"),
    -11: ("JOB_EXEC_RERUN", reasons.PREEMPTED, "the job was rerun (requeued) by PBS"),
    -12: ("JOB_EXEC_CHKP", reasons.PREEMPTED, "the job was checkpointed and killed"),
    -13: ("JOB_EXEC_FAIL_PASSWORD", reasons.NODE_FAIL, f"{_START}: bad password"),
    -14: ("JOB_EXEC_RERUN_SIS_FAIL", reasons.NODE_FAIL,
          "the job was requeued because a sister node (MOM) failed"),
    -15: ("JOB_EXEC_QUERST", reasons.PREEMPTED, "the job was requeued to restart from its checkpoint"),
    -16: ("JOB_EXEC_FAILHOOK_RERUN", reasons.NODE_FAIL, f"{_START}: a site hook rejected it (requeued)"),
    -17: ("JOB_EXEC_FAILHOOK_DELETE", reasons.CANCELLED, f"{_START}: a site hook rejected and deleted it"),
    -18: ("JOB_EXEC_HOOK_RERUN", reasons.PREEMPTED, "a site hook requeued the job"),
    -19: ("JOB_EXEC_HOOK_DELETE", reasons.CANCELLED, "a site hook deleted the job"),
    -20: ("JOB_EXEC_RERUN_MS_FAIL", reasons.NODE_FAIL,
          "the job's mother-superior node lost contact (node failure)"),
    -21: ("JOB_EXEC_FAIL_SECURITY", reasons.NODE_FAIL, f"{_START}: security check of the PBS directory failed"),
    -22: ("JOB_EXEC_HOOKERROR", reasons.NODE_FAIL, f"{_START}: a site hook failed or timed out"),
    -23: ("JOB_EXEC_FAIL_KRB5", reasons.NODE_FAIL, f"{_START}: no Kerberos credentials"),
    -24: ("JOB_EXEC_KILL_NCPUS_BURST", reasons.LIMIT, "PBS killed the job: it used more CPUs than requested (burst)"),
    -25: ("JOB_EXEC_KILL_NCPUS_SUM", reasons.LIMIT, "PBS killed the job: it used more CPUs than requested (sum)"),
    -26: ("JOB_EXEC_KILL_VMEM", reasons.OOM, "PBS killed the job: it exceeded its virtual memory limit (vmem)"),
    -27: ("JOB_EXEC_KILL_MEM", reasons.OOM, "PBS killed the job: it exceeded its memory limit (mem)"),
    -28: ("JOB_EXEC_KILL_CPUT", reasons.TIMEOUT, "PBS killed the job: it exceeded its CPU time limit (cput)"),
    -29: ("JOB_EXEC_KILL_WALLTIME", reasons.TIMEOUT, "PBS killed the job: it exceeded its walltime limit"),
    -30: ("JOB_EXEC_JOINJOB", reasons.NODE_FAIL, f"{_START}: its nodes could not be joined"),
}
#: Torque: -1..-7 as above, then its own.
TORQUE_EXEC_CODES: dict[int, tuple[str, str, str]] = {
    **{code: OPENPBS_EXEC_CODES[code] for code in range(-7, 0)},
    -8: ("JOB_EXEC_CMDFAIL", reasons.EXIT, "the job script could not be executed (exec failed)"),
    -9: ("JOB_EXEC_STDOUTFAIL", reasons.NODE_FAIL, "PBS could not create or open the job's stdout/stderr files"),
    -10: ("JOB_EXEC_OVERLIMIT_MEM", reasons.OOM, "PBS killed the job: it exceeded its memory limit"),
    -11: ("JOB_EXEC_OVERLIMIT_WT", reasons.TIMEOUT, "PBS killed the job: it exceeded its walltime limit"),
    -12: ("JOB_EXEC_OVERLIMIT_CPUT", reasons.TIMEOUT, "PBS killed the job: it exceeded its CPU time limit"),
    -13: ("JOB_EXEC_RETRY_CGROUP", reasons.NODE_FAIL, f"{_START}: its cgroups could not be created (retried)"),
    -14: ("JOB_EXEC_RETRY_PROLOGUE", reasons.NODE_FAIL, f"{_START}: the prologue failed (retried)"),
}

#: The MOM's own comment on a limit kill ("job killed: vmem 205520896000b exceeded limit ...",
#: "job killed: walltime 10 exceeded limit 1"): the resource says which limit.
_KILLED_RE = re.compile(r"\bjob killed: (\w+) .{0,120}?exceeded limit", re.IGNORECASE)
_RESOURCE_KINDS = {"walltime": reasons.TIMEOUT, "cput": reasons.TIMEOUT, "pcput": reasons.TIMEOUT,
                   "mem": reasons.OOM, "vmem": reasons.OOM, "pmem": reasons.OOM, "pvmem": reasons.OOM,
                   "ncpus": reasons.LIMIT}


@dataclass(frozen=True)
class ExitStatus:
    """What a PBS Exit_status means for us."""

    exit_code: int | None
    signal: int | None
    reason: str | None  # set for PBS's own (negative) values
    kind: str | None = None  # a failure kind (core/reasons) for PBS's own values


#: Each flavour's table of negative codes (OpenPBS's for the others).
EXEC_CODES = {"torque": TORQUE_EXEC_CODES}


def interpret_exit_status(value: int, flavour: str | None = None) -> ExitStatus:
    """0..128: the script's exit code; 129..255: the shell's 128+N for "killed by signal N";
    above 256: PBS's 256+N for "killed by signal N" (265 is SIGKILL, 271 SIGTERM: a qdel of a
    running job, or a limit); negative: PBS's own code for the flavour ("torque" or another)."""
    if value < 0:
        table = EXEC_CODES.get(flavour or "", OPENPBS_EXEC_CODES)
        known = table.get(value)
        if known is None:
            return ExitStatus(None, None, f"PBS ended the job with its own code (Exit_status {value})",
                              reasons.NODE_FAIL)
        name, kind, text = known
        return ExitStatus(None, None, f"{text} ({name}, Exit_status {value})", kind)
    if value > 256:
        return ExitStatus(None, value - 256, None)
    if 128 < value < 256:
        return ExitStatus(None, value - 128, None)
    return ExitStatus(value, None, None)


def limit_kill(comment: str | None) -> tuple[str, str] | None:
    """(kind, text) when PBS's comment says it killed the job for a resource limit."""
    match = _KILLED_RE.search(comment or "")
    if match is None:
        return None
    kind = _RESOURCE_KINDS.get(match.group(1).lower())
    return (kind, f"PBS killed the job: {match.group(0)[len('job killed: '):]}") if kind else None


def is_deletion_status(value: int | None) -> bool:
    """An Exit_status a job that never started can only have from a delete: none, or a signal."""
    return value is None or value > 128
