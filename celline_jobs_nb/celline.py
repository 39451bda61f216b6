"""Celline interop: the Celline function ``Job`` and a light ``Project``.

``project.call(Job())`` shows the live job dashboard of the project in a notebook. Celline's own
``Project.call`` discards what the function returns and returns the project, so ``Job.call``
displays the dashboard itself and keeps it in ``job.widget``; ``Job().dashboard(project)``
returns it for composing layouts. Outside a kernel it prints a plain-text summary instead. Both
first add the jobs celline started itself (``discover``), so they appear with ours.

Through celline's own CLI, ``cli(project, args)`` runs the ``celline-jobs`` commands (list,
status, logs, cancel, retry, submit, queue, history, discover) with the same parsers and code:
``celline-jobs install-celline-function`` writes the file celline discovers in
``<project>/functions/``, and celline lists it as ``custom_job``; its options follow a ``--``
(``celline run custom_job -- list --type Count``).

celline is optional (a full install is ~7 GB). When ``celline.functions._base.CellineFunction``
can be imported, ``Job`` subclasses it, so celline's registry finds it; otherwise a local base
with the same interface stands in. celline's CLI creates functions with ``cls.__new__`` without
calling ``__init__``: nothing here relies on ``__init__`` having run.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from abc import ABC, abstractmethod
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .core.errors import CellineJobsError, InvalidInputError
from .core.projects import project_path

# Re-exported where they used to live (celline.FUNCTION_FILE, celline.install_celline_function):
from .functionfile import FUNCTION_FILE as FUNCTION_FILE
from .functionfile import install_celline_function as install_celline_function

if TYPE_CHECKING:
    from .monitor import JobMonitor
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


#: The celline-jobs commands offered through celline's CLI (``celline run custom_job -- COMMAND``).
CLI_COMMANDS = ("list", "status", "logs", "cancel", "retry", "submit", "queue", "history", "discover")
DISCOVER_EVERY = 30.0  # seconds between rescans while a dashboard polls: celline may start jobs meanwhile
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

    def __init__(self, *, interval: float | None = None, show: bool = True, discover: bool = True) -> None:
        super().__init__()
        self.interval = interval
        self.show = show
        self.discover = discover
        self._widget: Dashboard | None = None

    def register(self) -> str:
        return "job"

    @property
    def widget(self) -> Dashboard | None:
        """The dashboard made by the last ``call`` or ``dashboard`` (None before, or outside a kernel)."""
        return self.__dict__.get("_widget")

    def dashboard(self, project: Any) -> Dashboard:
        """A new live dashboard of ``project`` (not displayed: put it in a layout or display it)."""
        from .widgets._shared import monitor_for
        from .widgets.composed import Dashboard

        monitor = monitor_for(project)
        self._discover(monitor)
        widget = Dashboard(project, interval=self.__dict__.get("interval"))
        self._widget = widget
        if self.__dict__.get("discover", True) and monitor.poller is not None:
            # Not a lease: the rescans stop with the poller when the last view closes.
            monitor.poller.add_listener(_Rescan(monitor))
        return widget

    def call(self, project: Any) -> Any:
        """Display the dashboard (in a kernel) or print a summary; return ``project`` (celline's contract)."""
        if in_ipython_kernel():
            widget = self.dashboard(project)
            if self.__dict__.get("show", True):
                from IPython.display import display

                display(widget)
                _no_repr_this_cell(project)
        else:
            print(self.summary(project))
        return project

    def summary(self, project: Any) -> str:
        """A plain-text summary of the project's jobs (no widget stack needed)."""
        from .monitor import JobMonitor
        from .widgets._format import job_row, text_summary

        monitor = project if isinstance(project, JobMonitor) else JobMonitor(project_path(project))
        self._discover(monitor)
        monitor.refresh()
        from .listing import bounded_jobs

        # What `celline-jobs list` shows (never the whole history), counted over every job.
        rows = [job_row(job) for job in bounded_jobs(monitor.store)[0]]
        counts = {status.value: n for status, n in monitor.store.status_counts().items()}
        return text_summary(rows, title=f"Jobs of {monitor.paths.root}", counts=counts)

    def _discover(self, monitor: JobMonitor) -> None:
        """Add the runs celline started itself (unless ``Job(discover=False)``)."""
        if self.__dict__.get("discover", True):
            from .discover import discover

            discover(monitor)

    def add_cli_args(self, parser: argparse.ArgumentParser) -> None:
        """The celline-jobs commands as sub-commands, with ``celline-jobs``'s own parsers."""
        from .cli import command_parsers

        parsers = command_parsers()
        sub = parser.add_subparsers(dest="job_command", metavar="COMMAND")
        for name in CLI_COMMANDS:
            source = parsers[name]
            # add_help=False: the parent parser brings its own -h.
            sub.add_parser(name, parents=[source], add_help=False, help=source.description,
                           description=source.description)

    def cli(self, project: Any, args: argparse.Namespace | None = None) -> Any:
        """Run one celline-jobs command (``args.job_command``), or print the summary without one.

        Errors print one line ``celline-jobs: error: ...`` on stderr and return the project:
        celline's CLI turns exceptions and SystemExit into its own messages, and runs a function
        whose ``cli`` raised a second time.
        """
        command = getattr(args, "job_command", None)
        try:
            if args is None or command is None:
                print(self.summary(project))
                return project
            from .cli import COMMANDS
            from .monitor import JobMonitor

            root = project_path(project)
            if command != "discover":  # that command scans and reports what was new itself
                self._discover(JobMonitor(root))
            args.project = str(root)
            COMMANDS[command](args)
        except CellineJobsError as exc:
            print(f"celline-jobs: error: {exc}", file=sys.stderr)
        return project

    def get_description(self) -> str:
        return ("Show the jobs of this project (a live table in a notebook, a summary in a terminal), "
                f"or run a celline-jobs command: {', '.join(CLI_COMMANDS)}. With celline's CLI the "
                "command follows `--`: celline run custom_job -- list --type Count")

    def get_usage_examples(self) -> list[str]:
        return ["celline run custom_job", "celline run custom_job -- list --type Count",
                "celline run custom_job -- logs JOB_ID --tail 100", "celline run custom_job -- discover",
                "project.call(Job())  # in a notebook"]


class _Rescan:
    """A poller listener that looks for new runs of celline's scripts every DISCOVER_EVERY seconds."""

    def __init__(self, monitor: JobMonitor) -> None:
        self.monitor = monitor
        self.last = time.monotonic()

    def __call__(self, changed: list[str]) -> None:
        if time.monotonic() - self.last >= DISCOVER_EVERY:
            from .discover import discover

            self.last = time.monotonic()
            discover(self.monitor)


def _no_repr_this_cell(obj: Any) -> None:
    """``project.call(Job())`` as the last line of a cell: celline's ``Project.call`` returns the
    project, and the cell would print ``<celline.interfaces.Project at 0x...>`` under the
    dashboard. Until this cell ends, the display formatter shows nothing for that one object
    (other objects of its type are shown as usual); then the formatter is as it was."""
    try:
        from IPython import get_ipython

        shell = get_ipython()
        formatter = shell.display_formatter.ipython_display_formatter if shell is not None else None
    except Exception:
        return
    if formatter is None or getattr(obj, "_ipython_display_", None) is not None:
        return
    cls = type(obj)
    previous = formatter.type_printers.get(cls)

    def printer(value: Any) -> None:
        if value is obj:
            return  # the dashboard above is what this call shows
        restore()
        from IPython.display import display

        display(value)

    def restore(*_args: Any) -> None:
        if formatter.type_printers.get(cls) is printer:
            if previous is None:
                formatter.type_printers.pop(cls, None)
            else:
                formatter.type_printers[cls] = previous
        try:
            shell.events.unregister("post_run_cell", restore)
        except ValueError:
            pass

    formatter.for_type(cls, printer)
    shell.events.register("post_run_cell", restore)

