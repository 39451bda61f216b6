"""Why a job ended the way it did: structured failure kinds, and the one place their text is built.

Adapters set a *kind* (stored in the job's metadata under ``KIND_META_KEY``) next to the human
reason; retries and filters decide on the kind, never by reading the text back. The texts that
several adapters share (a cancel by the user, a dependency that can never be satisfied) are
spelled here once.
"""

from __future__ import annotations

from collections.abc import Sequence

EXIT = "exit"  # the command exited non-zero
SIGNAL = "signal"  # killed by a signal nobody explained
TIMEOUT = "timeout"  # walltime or CPU-time limit
OOM = "oom"  # memory or virtual-memory limit
LIMIT = "limit"  # another resource limit (e.g. more CPUs used than requested)
NODE_FAIL = "node_fail"  # the node, its daemon or the job's start-up failed
PREEMPTED = "preempted"  # requeued, checkpointed or preempted by the scheduler
CANCELLED = "cancelled"  # deleted by the user, an administrator or a site hook
DEPENDENCY = "dependency"  # its dependency can never be satisfied
LOST = "lost"  # the scheduler lost the job without any evidence of its end

FAILURE_KINDS = (EXIT, SIGNAL, TIMEOUT, OOM, LIMIT, NODE_FAIL, PREEMPTED, CANCELLED, DEPENDENCY, LOST)
KIND_META_KEY = "failure_kind"

CANCELLED_BY_USER = "cancelled by user"
DEPENDENCY_NEVER_SATISFIED = "DependencyNeverSatisfied"


def dependency_never_satisfied(detail: str | None = None, *, kind: str | None = None,
                               on: Sequence[str] = (), scheduler: str | None = None) -> str:
    """The one spelling of "this job's dependency can never be met":
    ``DependencyNeverSatisfied: <detail>`` when the scheduler said why, else built from the
    dependency kind and the jobs it waits on."""
    if detail:
        return f"{DEPENDENCY_NEVER_SATISFIED}: {detail}"
    what = f"its {kind or 'afterok'} dependency"
    if on:
        what += f" on {scheduler + ' job' if scheduler else 'job'} {', '.join(map(str, on))}"
    return f"{DEPENDENCY_NEVER_SATISFIED}: {what} can never be met"


def valid_kind(value: object) -> str | None:
    """A stored kind if it is one we know (metadata is read back from an untrusted store)."""
    return value if isinstance(value, str) and value in FAILURE_KINDS else None
