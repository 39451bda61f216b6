"""Grid Engine: states (see the package docstring).

A Grid Engine state is a string of letters, each a flag (``man qstat``): ``d`` deletion,
``E`` error, ``h`` hold, ``r`` running, ``R`` restarted, ``s`` suspended, ``S`` suspended by its
queue, ``T`` suspended by a threshold, ``t`` transferring, ``q`` queued, ``w`` waiting. Seen
combinations include ``qw``, ``hqw``, ``hRwq``, ``r``, ``t``, ``Rr``, ``Rt``, ``s``, ``ts``,
``S``, ``tS``, ``T``, ``tT``, ``dr``, ``dt``, ``ds``, ``dS``, ``dT``, ``Eqw``, ``Ehqw`` and
``EhRqw``. The map is total: every string of known letters has a status, decided by the
strongest flag; any other text is UNKNOWN (never an exception), shown with the state as it came.
"""

from __future__ import annotations

import re

from ...core.models import JobStatus

#: What each flag means, for reasons and the docs.
FLAGS: dict[str, str] = {
    "d": "being deleted",
    "E": "in error state",
    "h": "on hold",
    "r": "running",
    "R": "restarted",
    "s": "suspended",
    "S": "suspended by its queue",
    "T": "suspended by a load threshold",
    "t": "being transferred to its host",
    "q": "queued",
    "w": "waiting",
}
_STATE_RE = re.compile(r"^[dEhrRsStTqw]{1,8}$")

#: Examples of every family, as qstat prints them (documentation and the exhaustive unit test).
KNOWN_STATES: dict[str, JobStatus] = {
    "qw": JobStatus.QUEUED, "hqw": JobStatus.HELD, "hRwq": JobStatus.HELD, "hRqw": JobStatus.HELD,
    "Rq": JobStatus.QUEUED, "Rqw": JobStatus.QUEUED,
    "r": JobStatus.RUNNING, "Rr": JobStatus.RUNNING,
    # dispatched, not started: the start can still fail (then Eqw, held), so not running yet
    "t": JobStatus.QUEUED, "Rt": JobStatus.QUEUED, "dt": JobStatus.QUEUED, "dRt": JobStatus.QUEUED,
    "s": JobStatus.RUNNING, "ts": JobStatus.RUNNING, "S": JobStatus.RUNNING, "tS": JobStatus.RUNNING,
    "T": JobStatus.RUNNING, "tT": JobStatus.RUNNING, "Rs": JobStatus.RUNNING, "Rts": JobStatus.RUNNING,
    "RS": JobStatus.RUNNING, "RtS": JobStatus.RUNNING, "RT": JobStatus.RUNNING, "RtT": JobStatus.RUNNING,
    "hr": JobStatus.RUNNING,  # a hold placed on a running job only matters if it is rescheduled
    "dr": JobStatus.RUNNING, "dRr": JobStatus.RUNNING,
    "ds": JobStatus.RUNNING, "dS": JobStatus.RUNNING, "dT": JobStatus.RUNNING, "dRs": JobStatus.RUNNING,
    "dRS": JobStatus.RUNNING, "dRT": JobStatus.RUNNING,
    "dqw": JobStatus.QUEUED, "dhqw": JobStatus.HELD,
    "Eqw": JobStatus.HELD, "Ehqw": JobStatus.HELD, "EhRqw": JobStatus.HELD, "Eq": JobStatus.HELD,
}


def map_state(state: str) -> tuple[JobStatus, bool]:
    """Our status for a Grid Engine state string, and whether it is known.

    Running flags (r, s, S, T) win: the job holds its slots (``d`` only says a qdel is under
    way; the end is seen when it leaves qstat). Then ``E`` (the job cannot start until someone
    clears the error: HELD, the reason comes from ``qstat -j``), ``h`` (HELD), ``q``/``w``/``t``
    (QUEUED: ``t`` is a job dispatched to its host but not started; its start may still fail and
    put it in error state, and a job shown running could not go back to held). Unknown letters,
    empty or oversized text: UNKNOWN."""
    text = str(state).strip()
    if not _STATE_RE.match(text):
        return JobStatus.UNKNOWN, False
    letters = set(text)
    if letters & set("rsST"):
        return JobStatus.RUNNING, True
    if letters & set("Eh"):
        return JobStatus.HELD, True
    if letters & set("qwt"):
        return JobStatus.QUEUED, True
    return JobStatus.UNKNOWN, False  # only d / R: no status we can name


def state_reason(state: str) -> str | None:
    """A short text for states whose status alone says too little (suspended, deleting, error,
    hold); None for plain queued/running ones."""
    text = str(state).strip()
    if not _STATE_RE.match(text):
        return f"Grid Engine reports the state {text[:20]!r}"
    if "E" in text:
        return "Grid Engine put the job in error state (Eqw)"
    if "d" in text:
        return "being deleted"
    for flag in "sST":
        if flag in text:
            return FLAGS[flag]
    if "h" in text and "r" not in text:
        return "on hold"
    if "t" in text and "r" not in text:
        return FLAGS["t"]
    if "R" in text and set(text) & set("qw"):
        return "restarted: queued again"
    return None
