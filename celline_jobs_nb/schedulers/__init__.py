"""Scheduler adapters, registered by name in one registry.

Built-in adapters are imported lazily (the CLI only loads the ones a project uses). Third-party
adapters register through the ``celline_jobs_nb.schedulers`` entry-point group, each entry point
naming a ``SchedulerAdapter`` subclass, or at run time with ``register``.
"""

from __future__ import annotations

import importlib
import importlib.util

from ..core.errors import InvalidInputError
from .base import SchedulerAdapter, SchedulerContext

ENTRY_POINT_GROUP = "celline_jobs_nb.schedulers"
_BUILTIN: dict[str, str] = {
    "local": "celline_jobs_nb.schedulers.local:LocalScheduler",
    "slurm": "celline_jobs_nb.schedulers.slurm:SlurmScheduler",
    "pbs": "celline_jobs_nb.schedulers.pbs:PbsScheduler",
    "sge": "celline_jobs_nb.schedulers.sge:SgeScheduler",
    # The jobs celline starts itself (found by celline_jobs_nb.discover, never submitted there).
    "celline": "celline_jobs_nb.schedulers.celline:CellineScheduler",
}
_registered: dict[str, type[SchedulerAdapter]] = {}


def register(name: str, adapter: type[SchedulerAdapter]) -> None:
    _registered[name] = adapter


def _load(target: str) -> type[SchedulerAdapter]:
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)


def _entry_point_targets() -> dict[str, str]:
    from importlib.metadata import entry_points  # costs ~10 ms: only when a name is not built in

    return {ep.name: ep.value for ep in entry_points(group=ENTRY_POINT_GROUP)}


def names() -> list[str]:
    """Every scheduler name that can be used (built-in ones whose module exists, plugins, registered)."""
    found = {n for n, t in _BUILTIN.items() if importlib.util.find_spec(t.partition(":")[0]) is not None}
    return sorted(found | set(_registered) | set(_entry_point_targets()))


def adapter_class(name: str) -> type[SchedulerAdapter]:
    if name in _registered:
        return _registered[name]
    target = _BUILTIN.get(name) or _entry_point_targets().get(name)
    if target is None or (name in _BUILTIN and importlib.util.find_spec(target.partition(":")[0]) is None):
        raise InvalidInputError(f"unknown scheduler {name!r}: use one of {', '.join(names())}")
    adapter = _load(target)
    _registered[name] = adapter
    return adapter


def create(name: str, context: SchedulerContext) -> SchedulerAdapter:
    return adapter_class(name)(context)


__all__ = ["SchedulerAdapter", "SchedulerContext", "adapter_class", "create", "names", "register"]
