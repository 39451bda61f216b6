"""``celline-jobs install-celline-function``: the file celline's CLI discovers in a project's custom
functions folder, so celline lists celline-jobs as ``custom_job`` (``celline run custom_job -- list``).
The function it names is ``celline.Job``; writing the file needs none of it (the CLI imports this).
"""

from __future__ import annotations

import os
from pathlib import Path

from .core.errors import InvalidInputError
from .core.paths import atomic_write_text
from .core.settings import read_toml

FUNCTION_FILE = "celline_jobs.py"  # its stem becomes a module name in celline's process: keep it unique
_FUNCTION_MARKER = "# Written by `celline-jobs install-celline-function`"
_FUNCTION_SOURCE = _FUNCTION_MARKER + '''; rerun it to update this file.
"""celline-jobs as a celline function: celline lists it as `custom_job`.

Run from the project directory; options go after `--`:
    celline run custom_job                          # a summary of the project's jobs
    celline run custom_job -- list --type Count
    celline run custom_job -- logs JOB_ID --tail 100
    celline run custom_job -- --help
"""

from celline_jobs_nb.celline import Job


class CellineJobs(Job):
    """Submit, follow and review this project's jobs (celline-jobs)."""
'''


def install_celline_function(project: str | os.PathLike[str], *, force: bool = False) -> Path:
    """Write the file celline's CLI discovers (``<project>/<[custom_functions] directory>/celline_jobs.py``).

    A file of that name that this command did not write is kept unless ``force``.
    """
    root = Path(project).expanduser().resolve()
    if not root.is_dir():
        raise InvalidInputError(f"project directory {root} does not exist: pass --project DIR")
    custom = read_toml(root / "setting.toml").get("custom_functions", {})
    custom = custom if isinstance(custom, dict) else {}
    if custom.get("enabled", True) is False:
        raise InvalidInputError("setting.toml has [custom_functions] enabled = false: celline would not load the "
                                "function; set it to true first")
    directory = custom.get("directory", "functions")
    if not isinstance(directory, str) or not directory.strip() or Path(directory).is_absolute() or ".." in directory:
        raise InvalidInputError(f"[custom_functions] directory must be a folder inside the project, not {directory!r}")
    path = root / directory / FUNCTION_FILE
    if path.exists() and not force:
        try:
            ours = path.read_text(encoding="utf-8").startswith(_FUNCTION_MARKER)
        except (OSError, UnicodeDecodeError):
            ours = False
        if not ours:
            raise InvalidInputError(f"{path} exists and was not written by celline-jobs: move it or pass --force")
    atomic_write_text(path, _FUNCTION_SOURCE)
    return path
