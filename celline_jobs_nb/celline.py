"""Celline interop: the Celline function ``Job`` and a light ``Project``.

``project.call(Job())`` shows the live job dashboard of the project in a notebook. Celline's own
``Project.call`` discards what the function returns and returns the project, so ``Job.call``
displays the dashboard itself and keeps it in ``job.widget``; ``Job().dashboard(project)``
returns it for composing layouts. Outside a kernel (a terminal, ``celline run job``) it prints a
plain-text summary instead.

celline is optional (a full install is ~7 GB). When ``celline.functions._base.CellineFunction``
can be imported, ``Job`` subclasses it, so celline's registry finds it; otherwise a local base
with the same interface stands in. celline's CLI creates functions with ``cls.__new__`` without
calling ``__init__``: nothing here relies on ``__init__`` having run.
"""

from __future__ import annotations

import argparse
import os
import sys
from abc import ABC, abstractmethod
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .core.errors import InvalidInputError

if TYPE_CHECKING:
    from .widgets.composed import Dashboard

try:  # celline 1.1.0: light module (argparse, abc, typing only)
    from celline.functions._base import CellineFunction as _FunctionBase

    HAVE_CELLINE = True
except Exception:  # celline missing or broken: the same interface, locally
    HAVE_CELLINE = False

    class _FunctionBase(ABC):  # type: ignore[no-redef]
        """Stand-in for ``celline.functions._base.CellineFunction`` (same methods and defaults)."""

        def __init__(self, **kwargs: Any) -> None:
            super().__init__()

        def register(self) -> str:
            return self.__class__.__name__.lower()

        @abstractmethod
        def call(self, project: Any) -> Any:
            """Run the function on ``project``."""

        def cli(self, project: Any, args: argparse.Namespace | None = None) -> Any:
            return self.call(project)

        def add_cli_args(self, parser: argparse.ArgumentParser) -> None:
            return None

        def get_description(self) -> str:
            return self.__doc__ or f"{self.__class__.__name__} function"

        def get_usage_examples(self) -> list[str]:
            return []


_PATH_ATTRIBUTES = ("PROJ_PATH", "project_path", "path", "root")


def project_path(project: Any) -> Path:
    """The directory of ``project``: a path, a celline ``Project`` (``PROJ_PATH``), this module's
    ``Project``, a ``JobMonitor`` or anything with a ``path``/``root`` attribute."""
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


def in_ipython_kernel() -> bool:
    """True inside a Jupyter kernel (where a widget can be displayed), False in a terminal."""
    if "IPython" not in sys.modules:
        return False
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover
        return False
    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


class Project:
    """A Celline project directory, enough for ``Project(path).call(Job())`` without celline.

    Same ``call`` contract as ``celline.interfaces.Project``: runs ``func.call(self)`` and returns
    the project (whatever the function returned). It reads and writes nothing itself.
    """

    def __init__(self, project_dir: str | os.PathLike[str] = ".", proj_name: str = "") -> None:
        path = Path(project_dir).expanduser().resolve()
        if not path.is_dir():
            raise InvalidInputError(f"project directory {path} does not exist: create it or pass another")
        self.PROJ_PATH = str(path)
        self.PROJ_NAME = proj_name or path.name

    @property
    def path(self) -> Path:
        return Path(self.PROJ_PATH)

    def call(self, func: Any, wait_for_complete: bool = True) -> Project:
        func.call(self)
        return self

    def __repr__(self) -> str:
        return f"Project({self.PROJ_PATH!r})"

    def __fspath__(self) -> str:
        return self.PROJ_PATH


class Job(_FunctionBase):
    """Show the jobs of a Celline project: a live table (refreshing by itself) with each job's log,
    progress, Cancel and Retry. In a terminal, print a summary of the jobs."""

    def __init__(self, *, interval: float | None = None, show: bool = True) -> None:
        super().__init__()
        self.interval = interval
        self.show = show
        self._widget: Dashboard | None = None

    def register(self) -> str:
        return "job"

    @property
    def widget(self) -> Dashboard | None:
        """The dashboard made by the last ``call`` or ``dashboard`` (None before, or outside a kernel)."""
        return self.__dict__.get("_widget")

    def dashboard(self, project: Any) -> Dashboard:
        """A new live dashboard of ``project`` (not displayed: put it in a layout or display it)."""
        from .widgets.composed import Dashboard

        widget = Dashboard(project, interval=self.__dict__.get("interval"))
        self._widget = widget
        return widget

    def call(self, project: Any) -> Any:
        """Display the dashboard (in a kernel) or print a summary; return ``project`` (celline's contract)."""
        if in_ipython_kernel():
            widget = self.dashboard(project)
            if self.__dict__.get("show", True):
                from IPython.display import display

                display(widget)
        else:
            print(self.summary(project))
        return project

    def summary(self, project: Any) -> str:
        """A plain-text summary of the project's jobs (no widget stack needed)."""
        from .monitor import JobMonitor
        from .widgets._format import job_row, text_summary

        monitor = project if isinstance(project, JobMonitor) else JobMonitor(project_path(project))
        rows = [job_row(job) for job in monitor.list_jobs()]
        return text_summary(rows, title=f"Jobs of {monitor.paths.root}")

    def cli(self, project: Any, args: argparse.Namespace | None = None) -> Any:
        print(self.summary(project))
        return project

    def get_description(self) -> str:
        return "Show the jobs of this project (live table in a notebook, a summary in a terminal)."

    def get_usage_examples(self) -> list[str]:
        return ["celline run job", "project.call(Job())  # in a notebook"]
