"""The Celline function ``Job`` and the light ``Project``, without a kernel."""

from __future__ import annotations

import argparse
import types
from pathlib import Path
from typing import Any

import pytest

from celline_jobs_nb import celline as interop
from celline_jobs_nb.core.errors import InvalidInputError
from celline_jobs_nb.core.models import JobInfo, JobStatus, utcnow
from celline_jobs_nb.monitor import JobMonitor
from celline_jobs_nb.widgets import Dashboard


@pytest.fixture
def displayed(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Pretend to be inside a kernel and capture what gets displayed."""
    shown: list[Any] = []
    monkeypatch.setattr(interop, "in_ipython_kernel", lambda: True)
    import IPython.display

    monkeypatch.setattr(IPython.display, "display", lambda *objs, **_kw: shown.extend(objs))
    return shown


def test_register_and_interface() -> None:
    job = interop.Job()
    assert job.register() == "job"
    assert "jobs" in job.get_description()
    assert job.get_usage_examples()
    job.add_cli_args(argparse.ArgumentParser())
    assert job.widget is None


def test_subclasses_celline_function_when_celline_is_installed() -> None:
    pytest.importorskip("celline.functions._base", reason="celline not installed (optional)")
    from celline.functions._base import CellineFunction

    assert issubclass(interop.Job, CellineFunction) and interop.HAVE_CELLINE


def test_call_in_a_kernel_displays_the_dashboard_and_returns_the_project(project: Path,
                                                                          displayed: list[Any]) -> None:
    light = interop.Project(project)
    job = interop.Job()
    assert light.call(job) is light
    assert len(displayed) == 1 and isinstance(displayed[0], Dashboard)
    assert job.widget is displayed[0] and job.widget.polling
    job.widget.close()


@pytest.mark.parametrize("kind", ["path", "str", "light", "celline-like", "monitor"])
def test_call_accepts_every_kind_of_project(project: Path, displayed: list[Any], kind: str) -> None:
    monitor = JobMonitor(project)
    monitor.store.insert(JobInfo(job_id="k1", name="Count", status=JobStatus.COMPLETED, submit_time=utcnow()))
    given: Any = {
        "path": project, "str": str(project), "light": interop.Project(project),
        "celline-like": types.SimpleNamespace(PROJ_PATH=str(project)), "monitor": monitor,
    }[kind]
    job = interop.Job()
    assert job.call(given) is given
    board = job.widget
    assert isinstance(board, Dashboard) and board.monitor.paths.root == project.resolve()
    assert [r["id"] for r in board.table.rows] == ["k1"]
    board.close()


def test_works_without_init_like_cellines_cli(project: Path, displayed: list[Any]) -> None:
    job = interop.Job.__new__(interop.Job)  # celline's CLI never calls __init__
    assert job.register() == "job" and job.widget is None
    board = job.dashboard(project)
    assert job.widget is board and not displayed
    assert job.call(project) == project and len(displayed) == 1
    board.close()
    job.widget.close()


def test_outside_a_kernel_prints_a_summary(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    monitor = JobMonitor(project)
    monitor.store.insert(JobInfo(job_id="k1", name="<b>Count</b>", status=JobStatus.FAILED, submit_time=utcnow()))
    job = interop.Job.__new__(interop.Job)
    assert interop.in_ipython_kernel() is False
    assert job.call(project) is project
    out = capsys.readouterr().out
    assert "1 job (1 failed)" in out and "<b>Count</b>" in out
    assert job.widget is None
    assert job.cli(project, None) is project


def test_project_path_and_light_project(tmp_path: Path, project: Path) -> None:
    assert interop.project_path(str(project)) == project.resolve()
    assert interop.project_path(types.SimpleNamespace(PROJ_PATH=str(project))) == project.resolve()
    assert interop.project_path(types.SimpleNamespace(path=project)) == project.resolve()
    with pytest.raises(InvalidInputError, match="cannot tell the project directory"):
        interop.project_path(object())
    with pytest.raises(InvalidInputError, match="does not exist"):
        interop.Project(tmp_path / "missing")
    light = interop.Project(project)
    assert light.PROJ_PATH == str(project.resolve()) and light.path == project.resolve()
    calls: list[Any] = []
    fn = types.SimpleNamespace(call=lambda p: calls.append(p) or "ignored")
    assert light.call(fn) is light and calls == [light]
    assert repr(light) == f"Project({str(project.resolve())!r})"


def test_lazy_export_from_the_package() -> None:
    import celline_jobs_nb

    assert celline_jobs_nb.Job is interop.Job and celline_jobs_nb.Project is interop.Project


def test_real_celline_project(project: Path, displayed: list[Any]) -> None:
    interfaces = pytest.importorskip("celline.interfaces", reason="celline not installed (optional)")
    real = interfaces.Project(str(project))
    job = interop.Job()
    assert real.call(job) is real  # celline discards what call returns; we displayed the dashboard
    assert len(displayed) == 1 and job.widget is displayed[0]
    assert job.widget.monitor.paths.root == project.resolve()
    job.widget.close()
