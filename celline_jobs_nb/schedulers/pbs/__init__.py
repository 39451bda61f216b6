"""The PBS adapter: Torque, OpenPBS / PBS Professional, and Slurm's Torque wrappers.

Three flavours share ``qsub``/``qstat``/``qdel`` but not their output; the adapter detects which
one is installed once (cached in the store for a day) and keeps to what that flavour can say
(``flavours.py``: one small strategy object per flavour, asked instead of comparing names):

- ``torque-slurm``: Debian's ``slurm-wlm-torque`` Perl wrappers on top of Slurm (tested here
  against a real Slurm). ``qsub`` prints only the id and builds an ``sbatch`` command line that it
  runs through ``/bin/sh`` (so our ``-o`` path and script path are shell-quoted for it); ``qstat -f``
  has no exit status, shows every finished job as ``C`` and shows no array tasks; ``qdel`` sends
  SIGKILL through the Slurm API. The exit-code file the job script writes is therefore the
  evidence; a job that is ``C`` without one (never started, killed, its dependency failed) is
  resolved with ONE ``scontrol -o show job`` call, asked of the SLURM adapter through the registry
  (``SlurmScheduler.job_records``; pbs/ imports nothing of slurm/) -- only this flavour does, since
  only here is Slurm known to be underneath.
- ``torque``: real Torque (``qstat -x -t``, XML with ``exit_status``; ``C`` = completed, kept for
  ``keep_completed`` seconds). Parsers tested on shapes from the Torque documentation and source.
- ``openpbs``: OpenPBS / PBS Pro (``qstat -f -F json -x -t``, with ``Exit_status`` and ``F``/``X``
  for finished jobs and subjobs). Parsers tested on shapes from the OpenPBS documentation.

What it runs (every command has a timeout and is counted in ``self.calls``):

- ``submit``: ``qsub -j oe -o logs/<job_id>.log .celline/scripts/<job_id>.sh``. The script, rendered
  from ``templates/pbs.sh``, carries the ``#PBS`` directives (name, resources, queue, array,
  dependency) and writes ``logs/<job_id>.exitcode``. ``-o``/``-e`` must be on the command line:
  the Slurm wrapper overrides ``#PBS -o/-e`` with its own. On real PBS the log file arrives when
  the job ends (PBS stages output); array tasks write their own ``logs/<job_id>_<i>.log`` from the
  script (no flavour has one portable per-task ``-o`` pattern).
- ``poll``: ONE ``qstat`` for all tracked jobs (chunked beyond ``QSTAT_CHUNK`` ids), plus, on the
  Slurm wrapper only and only when needed, one ``scontrol``. "Missing" never means "completed": a
  job nobody knows about keeps its status and becomes UNKNOWN after ``missing_grace`` seconds.
- ``cancel``: one ``qdel id1 id2 ...``.

The parse functions at the top are pure functions over command output; they raise only
``ParseError``.
"""

from __future__ import annotations

from .adapter import (
    _BENIGN_QDEL_RE,
    _DEPENDENCY_COMMENT_RE,
    _UNKNOWN_JOB_RE,
    MIN_POLL_ENV,
    MISSING_GRACE_SECONDS,
    QSTAT_CHUNK,
    PbsScheduler,
    _slurm_job_of,
    _task_native_id,
    _Unit,
)
from .exits import (
    OPENPBS_EXEC_CODES,
    TORQUE_EXEC_CODES,
    ExitStatus,
    interpret_exit_status,
    is_deletion_status,
    limit_kill,
)
from .flavours import STRATEGIES, OpenPbs, PbsFlavour, TorqueSlurm, flavour_of
from .inspect import FLAVOUR_ENV, FLAVOUR_META_KEY, FLAVOUR_RECHECK_SECONDS, _sniff_wrapper
from .parse import (
    _ATTRIBUTE_RE,
    _DURATION_RE,
    _JOB_HEADER_RE,
    _JOB_ID_RE,
    _OPENPBS_ARRAY_RE,
    _SIZE_RE,
    _SIZE_UNITS,
    _TIME_ATTRIBUTES,
    _TORQUE_ARRAY_RE,
    _WRAPPER_TASK_RE,
    _XML_DOC_RE,
    PbsJobId,
    PbsRecord,
    _flatten,
    _record,
    array_indices,
    parse_job_id,
    parse_pbs_duration,
    parse_pbs_size,
    parse_pbs_time,
    parse_qstat_full,
    parse_qstat_json,
    parse_qstat_version,
    parse_qstat_xml,
    parse_qsub_output,
    pbs_memory,
    pbs_walltime,
)
from .script import (
    MAX_NAME,
    _task_index_expr,
    parse_qstat,
    pbs_directives,
    pbs_job_name,
    qstat_command,
    qsub_command,
    render_pbs_script,
)
from .states import (
    _STATE_REASONS,
    FINISHED_STATES,
    FLAVOURS,
    OPENPBS,
    PBS_STATES,
    TORQUE,
    TORQUE_SLURM,
    map_state,
    normalise_state,
)

__all__ = [
    "FINISHED_STATES",
    "FLAVOURS",
    "FLAVOUR_ENV",
    "FLAVOUR_META_KEY",
    "FLAVOUR_RECHECK_SECONDS",
    "MAX_NAME",
    "MIN_POLL_ENV",
    "MISSING_GRACE_SECONDS",
    "OPENPBS",
    "OPENPBS_EXEC_CODES",
    "PBS_STATES",
    "QSTAT_CHUNK",
    "STRATEGIES",
    "TORQUE",
    "TORQUE_EXEC_CODES",
    "TORQUE_SLURM",
    "_ATTRIBUTE_RE",
    "_BENIGN_QDEL_RE",
    "_DEPENDENCY_COMMENT_RE",
    "_DURATION_RE",
    "_JOB_HEADER_RE",
    "_JOB_ID_RE",
    "_OPENPBS_ARRAY_RE",
    "_SIZE_RE",
    "_SIZE_UNITS",
    "_STATE_REASONS",
    "_TIME_ATTRIBUTES",
    "_TORQUE_ARRAY_RE",
    "_UNKNOWN_JOB_RE",
    "_WRAPPER_TASK_RE",
    "_XML_DOC_RE",
    "ExitStatus",
    "OpenPbs",
    "PbsFlavour",
    "PbsJobId",
    "PbsRecord",
    "PbsScheduler",
    "TorqueSlurm",
    "_Unit",
    "_flatten",
    "_record",
    "_slurm_job_of",
    "_sniff_wrapper",
    "_task_index_expr",
    "_task_native_id",
    "array_indices",
    "flavour_of",
    "interpret_exit_status",
    "is_deletion_status",
    "limit_kill",
    "map_state",
    "normalise_state",
    "parse_job_id",
    "parse_pbs_duration",
    "parse_pbs_size",
    "parse_pbs_time",
    "parse_qstat",
    "parse_qstat_full",
    "parse_qstat_json",
    "parse_qstat_version",
    "parse_qstat_xml",
    "parse_qsub_output",
    "pbs_directives",
    "pbs_job_name",
    "pbs_memory",
    "pbs_walltime",
    "qstat_command",
    "qsub_command",
    "render_pbs_script",
]
