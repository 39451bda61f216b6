"""The SLURM adapter: sbatch, squeue, sacct, scontrol and scancel, batched and polite.

What it runs (every command has a timeout and is counted in ``self.calls``):

- ``submit``: ``sbatch --parsable .celline/scripts/<job_id>.sh``. The script is rendered from
  ``templates/slurm.sh``; it sends output to ``logs/<job_id>.log`` and writes
  ``logs/<job_id>.exitcode`` when the command ends, so the real exit code is known even after the
  job has left every SLURM table.
- ``poll``: ONE ``squeue -h -r -t all -j <ids> -o <fields>`` for all tracked jobs (``-j`` with a
  list is honoured by plain squeue; ``--json`` ignores it in 22.05, so it is not used). Job names
  are not queried (we know them, and a name may contain the field separator). Jobs that squeue no
  longer lists are resolved from their exit-code file (no command), then with at most ONE more
  call: ``sacct -P`` (slurmdbd), or ``sacct -c -P`` (jobcomp/filetxt) when accounting storage is
  disabled, or ``scontrol -o show job`` when neither works. That call also fetches the exit code of
  jobs squeue shows as failed without an exit-code file, and, with slurmdbd, the resource use of
  jobs that just ended. "Missing" never means "completed": a job nobody knows about keeps its
  status and becomes UNKNOWN (with a reason) only after ``missing_grace`` seconds.
- ``cancel``: one ``scancel id1 id2 ...``; ``queue``: ``squeue -h -u <user>``; ``attach``:
  ``scontrol -o show job <id>`` (then sacct when the controller has forgotten it).

The parse functions at the top are pure functions over command output; they raise only
``ParseError``. Unknown state strings map to ``JobStatus.UNKNOWN`` (the adapter logs them).
"""

from __future__ import annotations

from .adapter import (
    ACCOUNTING_META_KEY,
    ACCOUNTING_RECHECK_SECONDS,
    MIN_POLL_ENV,
    MISSING_GRACE_SECONDS,
    SQUEUE_CHUNK,
    SlurmScheduler,
    _current_user,
    _error_line,
    _Unit,
)
from .inspect import USAGE_FOLLOWUP_SECONDS
from .parse import (
    _DURATION_RE,
    _EXIT_RE,
    _MEMORY_RE,
    _MEMORY_UNITS,
    _NATIVE_ID_RE,
    _NO_VALUE,
    _SCONTROL_COLON_RE,
    _SCONTROL_PAIR_RE,
    _SCONTROL_TOKEN_RE,
    MAX_ARRAY_TASKS,
    POLL_FORMAT,
    QUEUE_FORMAT,
    SACCT_C_FIELDS,
    SACCT_FIELDS,
    SCONTROL_KEYS,
    SCONTROL_SPACED_KEYS,
    SQUEUE_FIELDS,
    AccountingRecord,
    SqueueRecord,
    _indices_or_empty,
    _nodes,
    _optional,
    _parse_or_empty,
    _pick,
    _record_time,
    _scontrol_pairs,
    _usage,
    parse_array_spec,
    parse_duration,
    parse_exit_code,
    parse_sacct,
    parse_sacct_table,
    parse_sbatch_output,
    parse_scontrol_jobs,
    parse_slurm_memory,
    parse_slurm_time,
    parse_squeue,
    parse_squeue_line,
    scontrol_accounting,
)
from .script import (
    _CONTROL_RE,
    MAX_SLURM_NAME,
    render_batch_script,
    sbatch_directives,
    sbatch_quote,
    slurm_filename,
    slurm_job_name,
)
from .states import (
    _COMPACT_TO_LONG,
    _FINAL_STATE_KINDS,
    _FINAL_STATE_REASONS,
    _STATES_THAT_EXPLAIN_A_SIGNAL,
    SLURM_STATES,
    is_held_reason,
    map_state,
    normalise_state,
)

__all__ = [
    "ACCOUNTING_META_KEY",
    "ACCOUNTING_RECHECK_SECONDS",
    "MAX_ARRAY_TASKS",
    "MAX_SLURM_NAME",
    "MIN_POLL_ENV",
    "MISSING_GRACE_SECONDS",
    "POLL_FORMAT",
    "QUEUE_FORMAT",
    "SACCT_C_FIELDS",
    "SACCT_FIELDS",
    "SCONTROL_KEYS",
    "SCONTROL_SPACED_KEYS",
    "SLURM_STATES",
    "SQUEUE_CHUNK",
    "SQUEUE_FIELDS",
    "USAGE_FOLLOWUP_SECONDS",
    "_COMPACT_TO_LONG",
    "_CONTROL_RE",
    "_DURATION_RE",
    "_EXIT_RE",
    "_FINAL_STATE_KINDS",
    "_FINAL_STATE_REASONS",
    "_MEMORY_RE",
    "_MEMORY_UNITS",
    "_NATIVE_ID_RE",
    "_NO_VALUE",
    "_SCONTROL_COLON_RE",
    "_SCONTROL_PAIR_RE",
    "_SCONTROL_TOKEN_RE",
    "_STATES_THAT_EXPLAIN_A_SIGNAL",
    "AccountingRecord",
    "SlurmScheduler",
    "SqueueRecord",
    "_Unit",
    "_current_user",
    "_error_line",
    "_indices_or_empty",
    "_nodes",
    "_optional",
    "_parse_or_empty",
    "_pick",
    "_record_time",
    "_scontrol_pairs",
    "_usage",
    "is_held_reason",
    "map_state",
    "normalise_state",
    "parse_array_spec",
    "parse_duration",
    "parse_exit_code",
    "parse_sacct",
    "parse_sacct_table",
    "parse_sbatch_output",
    "parse_scontrol_jobs",
    "parse_slurm_memory",
    "parse_slurm_time",
    "parse_squeue",
    "parse_squeue_line",
    "render_batch_script",
    "sbatch_directives",
    "sbatch_quote",
    "scontrol_accounting",
    "slurm_filename",
    "slurm_job_name",
]
