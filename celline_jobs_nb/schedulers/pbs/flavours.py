"""The PBS flavours as small strategies: what OpenPBS / PBS Pro, Torque and Slurm's Torque
wrappers do differently. The adapter, the script and the inspection ask their flavour object
(``flavour_of(name)``) what to run and what its output can say; nothing else compares names.

Each says: its qstat command and parser, its array syntax and directive, its resource lines, its
qsub command line, the id of an array task, its state letters and negative exit-status table, and
what its qstat can tell (``keeps_exit_status``: finished jobs keep their exit status, so a job
that finished without starting was deleted; ``shows_tasks``: array tasks have records;
``shows_held``: held jobs are shown as held). ``underneath``: the registry name of the scheduler
that really runs the jobs (the wrappers: "slurm"), asked through its adapter when qstat cannot say
how a job ended.
"""

from __future__ import annotations

import shlex
import socket
from collections.abc import Sequence
from typing import ClassVar

from ...core.models import JobStatus
from ...core.resources import Resources
from .exits import ExitStatus, interpret_exit_status
from .parse import (
    _WRAPPER_TASK_RE,
    PbsRecord,
    array_indices,
    parse_qstat_full,
    parse_qstat_json,
    parse_qstat_xml,
    pbs_memory,
)
from .states import OPENPBS, TORQUE, TORQUE_SLURM, map_state


class PbsFlavour:
    """Torque's ways, which the other flavours change where they differ."""

    name: ClassVar[str] = TORQUE
    #: Job names: Torque (POSIX) allows 15 characters, PBS Pro 236; Slurm is generous.
    max_name: ClassVar[int] = 15
    array_flag: ClassVar[str] = "-t"
    keeps_exit_status: ClassVar[bool] = True
    shows_tasks: ClassVar[bool] = True
    shows_held: ClassVar[bool] = True
    underneath: ClassVar[str | None] = None

    def qstat_argv(self, native_ids: Sequence[str]) -> list[str]:
        return ["qstat", "-x", "-t", *native_ids]

    def parse_qstat(self, text: str) -> list[PbsRecord]:
        return parse_qstat_xml(text)

    def array_indices(self, spec: str) -> list[int]:
        return array_indices(spec, self.name)

    def map_state(self, text: str) -> tuple[JobStatus, bool]:
        return map_state(text, self.name)

    def interpret(self, exit_status: int) -> ExitStatus:
        return interpret_exit_status(exit_status, self.name)

    def resource_lines(self, res: Resources, pbs_server: str | None) -> list[str]:
        """``nodes=N:ppn=C[:gpus=G][:server]`` and ``mem=``; celline's ``pbs_server`` goes into
        the nodes spec (as celline does)."""
        lines = []
        if res.cpus is not None or res.gpus or res.nodes is not None or pbs_server:
            spec = f"nodes={int(res.nodes) if res.nodes is not None else 1}:ppn={int(res.cpus or 1)}"
            if res.gpus:
                spec += f":gpus={int(res.gpus)}"
            if pbs_server:
                spec += f":{pbs_server}"
            lines.append(f"#PBS -l {spec}")
        if res.memory is not None:
            lines.append(f"#PBS -l mem={pbs_memory(int(res.memory))}")
        return lines

    def qsub_argv(self, script: str, log_path: str) -> list[str]:
        """``qsub -j oe -o <log> <script>``. Real PBS reads "host:path" in -o, so a path with a
        colon gets this host in front."""
        if ":" in log_path:
            log_path = f"{socket.gethostname()}:{log_path}"
        return ["qsub", "-j", "oe", "-o", log_path, script]

    def task_native_id(self, parent_native: str, index: int) -> str:
        """PBS's "123[4].server" (from "123[].server")."""
        if "[]" in parent_native:
            return parent_native.replace("[]", f"[{index}]", 1)
        seq, dot, server = parent_native.partition(".")
        return f"{seq}[{index}]{dot}{server}"

    def attached_id(self, record: PbsRecord, asked: str) -> str:
        """The native id to track for a job attached by the id ``asked`` (qstat's own id)."""
        return record.job_id

    def cancel_argvs(self, native_ids: Sequence[str], chunk: int) -> list[list[str]]:
        """The cancel commands: qdel in chunks."""
        return [["qdel", *native_ids[start:start + chunk]] for start in range(0, len(native_ids), chunk)]


class OpenPbs(PbsFlavour):
    """OpenPBS / PBS Pro: ``qstat -f -F json -x -t`` (``Exit_status``, F/X for finished jobs and
    subjobs), ``-J`` arrays with a step, ``select=`` chunks."""

    name = OPENPBS
    max_name = 236
    array_flag = "-J"

    def qstat_argv(self, native_ids: Sequence[str]) -> list[str]:
        return ["qstat", "-f", "-F", "json", "-x", "-t", *native_ids]

    def parse_qstat(self, text: str) -> list[PbsRecord]:
        return parse_qstat_json(text)

    def resource_lines(self, res: Resources, pbs_server: str | None) -> list[str]:
        """One ``select=`` chunk; PBS Pro has no nodes spec, so ``pbs_server`` is not used."""
        if res.cpus is None and res.memory is None and not res.gpus and res.nodes is None:
            return []
        chunk = f"select={int(res.nodes) if res.nodes is not None else 1}:ncpus={int(res.cpus or 1)}"
        if res.memory is not None:
            chunk += f":mem={pbs_memory(int(res.memory))}"
        if res.gpus:
            chunk += f":ngpus={int(res.gpus)}"
        return [f"#PBS -l {chunk}"]


class TorqueSlurm(PbsFlavour):
    """Debian's ``slurm-wlm-torque`` Perl wrappers on Slurm: ``qstat -f`` without exit status and
    without array tasks, every finished job ``C``, held jobs shown as ``Q``; ``qsub`` pastes its
    arguments into a ``/bin/sh`` command line for sbatch; Slurm underneath says how jobs ended."""

    name = TORQUE_SLURM
    max_name = 200
    keeps_exit_status = False
    shows_tasks = False
    shows_held = False
    underneath = "slurm"

    def qstat_argv(self, native_ids: Sequence[str]) -> list[str]:
        return ["qstat", "-f", *native_ids]

    def parse_qstat(self, text: str) -> list[PbsRecord]:
        return parse_qstat_full(text, self.name)

    def qsub_argv(self, script: str, log_path: str) -> list[str]:
        """Both paths shell-quoted for the wrapper's ``/bin/sh`` (and "%" doubled: sbatch expands
        %j in -o)."""
        return ["qsub", "-j", "oe", "-o", shlex.quote(log_path.replace("%", "%%")), shlex.quote(script)]

    def task_native_id(self, parent_native: str, index: int) -> str:
        """Slurm's "1501_4": the wrapper has no task ids of its own; scontrol and scancel read Slurm's."""
        return f"{parent_native}_{index}"

    def attached_id(self, record: PbsRecord, asked: str) -> str:
        """The id asked for: the one scontrol and scancel read."""
        return asked

    def cancel_argvs(self, native_ids: Sequence[str], chunk: int) -> list[list[str]]:
        """Array tasks ("1501_3") through scancel: the wrapper's qdel reads "1501_3" as 1501 and
        would kill the whole array."""
        tasks = [n for n in native_ids if _WRAPPER_TASK_RE.match(n)]
        argvs = super().cancel_argvs([n for n in native_ids if not _WRAPPER_TASK_RE.match(n)], chunk)
        return [*argvs, ["scancel", *tasks]] if tasks else argvs


STRATEGIES: dict[str, PbsFlavour] = {f.name: f for f in (TorqueSlurm(), PbsFlavour(), OpenPbs())}


def flavour_of(name: str | None) -> PbsFlavour:
    """The strategy of a flavour name ("openpbs", "torque", "torque-slurm"; unknown: Torque's)."""
    return STRATEGIES.get(name or "", STRATEGIES[TORQUE])
