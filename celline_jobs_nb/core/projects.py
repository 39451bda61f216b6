"""The directory a project is given as: a path, a celline ``Project`` (``PROJ_PATH``), this package's
light ``Project``, a ``JobMonitor`` or anything with a ``path``/``root`` attribute (duck-typed:
celline itself is never imported). The widgets, the Celline function and the CLI all ask here."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from .errors import InvalidInputError

_PATH_ATTRIBUTES = ("PROJ_PATH", "project_path", "path", "root")


def project_path(project: Any) -> Path:
    """The directory of ``project``: a path, a celline ``Project`` (``PROJ_PATH``),
    ``celline_jobs_nb.Project``, a ``JobMonitor`` or anything with a ``path``/``root`` attribute."""
    if isinstance(project, (str, os.PathLike)):
        raw: Any = project
    else:
        paths = getattr(project, "paths", None)  # a JobMonitor
        raw = getattr(paths, "root", None)
        for name in _PATH_ATTRIBUTES:
            if raw is not None:
                break
            value = getattr(project, name, None)
            if isinstance(value, (str, os.PathLike)) and str(value):
                raw = value
    if raw is None or str(raw) == "":
        raise InvalidInputError(
            f"cannot tell the project directory of {type(project).__name__}: pass a path, a celline Project "
            "(with PROJ_PATH) or celline_jobs_nb.Project(path)"
        )
    return Path(raw).expanduser().resolve()
