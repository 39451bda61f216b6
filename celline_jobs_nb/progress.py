"""What job code calls to report progress; the monitor shows it in the table and widgets.

From Python inside a job::

    from celline_jobs_nb import progress
    progress.report(40, "Aligning reads", sample="SRR123")

From a shell script: ``celline-jobs progress 40 "Aligning reads"``.

Both write ``logs/<job_id>_progress.json`` atomically, found through the environment the job
runs in (CELLINE_JOBS_PROGRESS_FILE, or CELLINE_JOB_ID + CELLINE_JOBS_PROJECT). Outside a job
they do nothing and return None, so the same code runs interactively. Without either, the
monitor reads tqdm-style "NN%|" lines at the end of the log.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from .core.jobfiles import format_progress
from .core.paths import ENV_JOB_ID, ENV_PROGRESS_FILE, ENV_PROJECT, ProjectPaths, atomic_write_text


def progress_file_from_env(environ: dict[str, str] | None = None) -> Path | None:
    env = os.environ if environ is None else environ
    if env.get(ENV_PROGRESS_FILE):
        return Path(env[ENV_PROGRESS_FILE])
    if env.get(ENV_JOB_ID) and env.get(ENV_PROJECT):
        return ProjectPaths.of(env[ENV_PROJECT]).progress_file(env[ENV_JOB_ID])
    return None


def report(percent: float, stage: str | None = None, **details: Any) -> Path | None:
    """Record that the current job is ``percent`` (0-100) done, in ``stage``, with ``details``.
    Returns the file written, or None when not running inside a job."""
    text = format_progress(percent, stage, details)  # validates even outside a job
    path = progress_file_from_env()
    if path is None:
        return None
    atomic_write_text(path, text)
    return path
