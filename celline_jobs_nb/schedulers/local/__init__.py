"""The local executor (registry name ``local``): jobs run on this machine under detached wrappers.

``adapter`` holds ``LocalScheduler`` and the process checks it shares with the wrapper; ``runner``
is that wrapper (``python -m celline_jobs_nb.schedulers.local.runner PROJECT JOB_ID``); ``array``
runs a local job array under its parent's wrapper. Only the adapter is imported here: the
wrapper runs as ``__main__`` and must not be imported twice.
"""

from .adapter import (
    CANCEL_GRACE_SECONDS,
    LAUNCH_TIMEOUT_SECONDS,
    RUN_CLAIM_META_KEY,
    RUNNER_MODULE,
    LocalScheduler,
    default_max_parallel,
    final_update_from_exit,
    is_same_process,
    job_group_alive,
    max_parallel_of,
    process_groups,
    process_identity,
    runner_argv,
    runner_of,
    sample_processes,
    signal_name,
)

__all__ = [
    "CANCEL_GRACE_SECONDS",
    "LAUNCH_TIMEOUT_SECONDS",
    "RUNNER_MODULE",
    "RUN_CLAIM_META_KEY",
    "LocalScheduler",
    "default_max_parallel",
    "final_update_from_exit",
    "is_same_process",
    "job_group_alive",
    "max_parallel_of",
    "process_groups",
    "process_identity",
    "runner_argv",
    "runner_of",
    "sample_processes",
    "signal_name",
]
