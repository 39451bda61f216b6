"""The ``celline`` scheduler: the jobs celline starts itself (its own scripts, run with ``bash`` or
``qsub``), followed from what they leave on disk, their processes and PBS.

``directives`` reads a script's ``#PBS`` header; ``runs`` knows celline's layout (scripts, their
runs and job types); ``evidence`` reads logs, processes and matches PBS jobs; ``assess`` turns the
evidence into a status; ``adapter`` is ``CellineScheduler``. Finding new runs and adding them to
the store is ``celline_jobs_nb.discover``'s.
"""

from .adapter import CELLINE_SCHEDULER, CellineScheduler
from .assess import Assessment, assess
from .directives import PbsDirectives, parse_pbs_directives
from .evidence import ScriptProcess, log_verdict, match_pbs, pbs_paths, script_processes, terminate_tree
from .runs import (
    LOG_NAME_RE,
    SCRIPT_PATTERNS,
    CellineRun,
    CellineScript,
    find_scripts,
    infer_job_type,
    run_of,
)

__all__ = [
    "CELLINE_SCHEDULER",
    "LOG_NAME_RE",
    "SCRIPT_PATTERNS",
    "Assessment",
    "CellineRun",
    "CellineScheduler",
    "CellineScript",
    "PbsDirectives",
    "ScriptProcess",
    "assess",
    "find_scripts",
    "infer_job_type",
    "log_verdict",
    "match_pbs",
    "parse_pbs_directives",
    "pbs_paths",
    "run_of",
    "script_processes",
    "terminate_tree",
]
