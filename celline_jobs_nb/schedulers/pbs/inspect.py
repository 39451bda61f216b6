"""PBS: which flavour is installed (detected once, remembered a day), the queue, attaching to a job started outside"""

from __future__ import annotations

import logging
import re
import shutil
import time
from typing import Any

from ...core.errors import InvalidInputError, ParseError, SchedulerError, SettingsError, SubmitError
from ...core.models import JobInfo, JobStatus, new_job_id
from ...core.settings import read_toml
from ..base import QueueEntry
from ..batch.rules import (
    current_user,
    error_line,
    listed_resources,
    optional,
    recalled,
    remember,
)
from .flavours import PbsFlavour, flavour_of
from .parse import (
    PbsRecord,
    parse_job_id,
    parse_pbs_duration,
    parse_qstat_version,
)
from .states import FINISHED_STATES, FLAVOURS, TORQUE, TORQUE_SLURM

log = logging.getLogger("celline.job")

FLAVOUR_ENV = "CELLINE_JOBS_PBS_FLAVOUR"
FLAVOUR_META_KEY = "pbs.flavour"
FLAVOUR_RECHECK_SECONDS = 86400.0


def _sniff_wrapper() -> str | None:
    """Slurm's wrappers are Perl scripts that load the Slurm API: recognisable by reading the
    ``qstat`` on PATH, without running anything."""
    path = shutil.which("qstat")
    if path is None:
        return None
    try:
        with open(path, "rb") as handle:
            head = handle.read(8192)
    except OSError:
        return None
    if head.startswith(b"#!") and b"perl" in head.split(b"\n", 1)[0] and b"Slurm" in head:
        return TORQUE_SLURM
    return None


class PbsInspection:
    """Which PBS flavour is installed (detected once, remembered a day), the queue, attaching a job."""

    @property
    def flavour(self) -> str:
        """Which PBS this is; detected once (a file read, else one ``qstat --version``) and
        remembered in the store for a day, so other processes of the project do not ask again."""
        if self._flavour is None:
            self._flavour, self._version = self._detect_flavour()
        return self._flavour

    @property
    def strategy(self) -> PbsFlavour:
        """What this flavour does differently (``flavours.py``)."""
        return flavour_of(self.flavour)

    @property
    def version(self) -> str | None:
        _ = self.flavour
        return self._version

    def _detect_flavour(self) -> tuple[str, str | None]:
        stored = recalled(self.context.store, FLAVOUR_META_KEY, FLAVOUR_RECHECK_SECONDS)
        if stored is not None:
            flavour, _, version = stored[0].partition("|")
            if flavour in FLAVOURS:
                return flavour, version or None
        flavour, version = _sniff_wrapper(), None
        if flavour is None:
            result = self.runner.run(["qstat", "--version"], check=False)
            flavour, version = parse_qstat_version(result.stdout + "\n" + result.stderr)
            if flavour is None:
                # Torque 2.x and other old servers have no --version: their qstat -f text is the
                # oldest common shape, so treat them as Torque and say so once.
                log.warning("could not tell which PBS this is from `qstat --version`; assuming Torque "
                            "(set %s=openpbs|torque|torque-slurm to choose)", FLAVOUR_ENV)
                flavour = TORQUE
        log.info("PBS flavour: %s%s", flavour, f" {version}" if version else "")
        remember(self.context.store, FLAVOUR_META_KEY, f"{flavour}|{version or ''}", time.time(), "the PBS flavour")
        return flavour, version

    def _pbs_server(self) -> str | None:
        """celline's ``[execution] pbs_server`` (read from setting.toml; the adapter setting
        ``pbs_server`` wins). Only a name without spaces or shell characters is used."""
        server = self.context.settings.get("pbs_server")
        if server is None:
            try:
                execution = read_toml(self.context.paths.celline_settings).get("execution", {})
            except SettingsError:
                execution = {}
            server = execution.get("pbs_server") if isinstance(execution, dict) else None
        text = str(server or "").strip()
        if not text:
            return None
        if not re.fullmatch(r"[A-Za-z0-9_.=+-]{1,128}", text):
            raise SubmitError(f"invalid pbs_server {text[:60]!r} in setting.toml: use letters, digits and _.=+-")
        return text

    def every_job(self) -> list[PbsRecord]:
        """Every job PBS shows now, anyone's, from ONE qstat (no ids; 153 from the Slurm wrapper
        is "nothing found"). Also what the ``celline`` adapter matches celline's own runs against."""
        result = self.runner.run(self.strategy.qstat_argv([]), check=False)
        if result.returncode not in (0, 153):
            raise SchedulerError(f"qstat exited {result.returncode}: "
                                 f"{error_line(result.stderr or result.stdout, 'no output')}")
        try:
            return self.strategy.parse_qstat(result.stdout)
        except ParseError as exc:
            raise SchedulerError(f"unexpected qstat output: {exc}") from None

    def queue(self) -> list[QueueEntry]:
        """This user's jobs in PBS now (not finished), ours or not: one qstat of every job."""
        user = current_user()
        return [QueueEntry(r.job_id, r.name or "", r.state, r.owner, r.comment) for r in self.every_job()
                if r.owner == user and r.state not in FINISHED_STATES]

    def attach(self, native_id: str) -> JobInfo:
        """A JobInfo for a PBS job submitted elsewhere ("123", "123.server", "123[].server")."""
        native = str(native_id).strip()
        try:
            ident = parse_job_id(native)
        except ParseError:
            raise InvalidInputError(f"invalid PBS job id {native_id!r}: use an id like 123 or 123.server") from None
        if ident.index is not None and not self.strategy.shows_tasks:
            raise InvalidInputError("the Slurm PBS wrapper cannot show one array task: attach the array's id")
        records = [r for r in self.query_status([native]) if r.ident.key == ident.key
                   or (ident.index is None and r.ident.seq == ident.seq and r.ident.index is None)]
        if not records:
            raise InvalidInputError(f"PBS does not know job {native}: check the id with `qstat`")
        record = records[0]
        status, _known = self.strategy.map_state(record.state)
        if record.state in FINISHED_STATES or status is JobStatus.UNKNOWN:
            # How it ended is decided by the next poll (exit status, or Slurm under the wrapper).
            status = JobStatus.RUNNING if record.started else JobStatus.QUEUED
        metadata: dict[str, Any] = {"attached": True, "pbs_state": record.state, "pbs_flavour": self.flavour}
        resources: dict[str, Any] = {}
        walltime = optional(parse_pbs_duration, record.attributes.get("Resource_List.walltime"))
        if walltime and walltime < 366 * 86400:  # the wrapper prints junk for "no limit"
            resources["walltime"] = f"{int(walltime)}s"
        cpus = record.attributes.get("Resource_List.ncpus", "")
        if cpus.isascii() and cpus.isdigit() and 0 < int(cpus) <= 100_000:
            resources["cpus"] = int(cpus)
        if record.queue and re.fullmatch(r"[A-Za-z0-9_.:+,-]{1,128}", record.queue):
            resources["partition"] = record.queue
        return JobInfo(
            job_id=new_job_id(), name=record.name or f"pbs-{native}", status=status, scheduler=self.name,
            native_id=self.strategy.attached_id(record, native), resources=listed_resources(resources),
            submit_time=record.submit, start_time=record.start if status is JobStatus.RUNNING else None,
            reason=record.comment, metadata=metadata,
        )
