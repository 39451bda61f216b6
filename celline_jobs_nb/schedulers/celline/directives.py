"""The ``#PBS`` header of a script celline rendered, read the way qsub reads it.

The PBS adapter writes such headers (``pbs/script.py``); this reads them back into a request:
celline's scripts carry their job name, queue, resources and log paths there.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from typing import Any

from ...core.errors import ResourceError
from ...core.resources import Resources
from ..batch.rules import optional
from ..pbs import parse_pbs_duration, parse_pbs_size

_FLAG_OPTIONS = frozenset({"-V", "-h", "-z", "-I", "-f", "-x", "-X"})  # qsub options without a value


@dataclass(frozen=True)
class PbsDirectives:
    """The ``#PBS`` header of a script: its name, queue, resources and log paths.

    ``resources`` holds values keyed like ``Resources`` fields (PBS sizes in bytes, a bare
    walltime in seconds, the rest as written); ``to_resources`` validates them, naming the
    directive when one is wrong.
    """

    name: str | None = None
    queue: str | None = None
    account: str | None = None
    error_path: str | None = None
    output_path: str | None = None
    join: str | None = None
    resources: tuple[tuple[str, str, str], ...] = ()  # (Resources key, value, directive text)

    @property
    def present(self) -> bool:
        return any((self.name, self.queue, self.account, self.error_path, self.output_path, self.join,
                    self.resources))

    @property
    def log_path(self) -> str | None:
        """Where PBS writes the job's output: ``-j eo`` joins stdout into the ``-e`` file."""
        if self.join == "oe":
            return self.output_path or self.error_path
        return self.error_path or self.output_path

    def to_resources(self, *, keep_queue: bool, source: str = "script") -> Resources:
        """A validated request. The queue becomes the partition only when ``keep_queue`` (a PBS
        queue name means nothing to SLURM or the local executor)."""
        request: dict[str, Any] = {}
        for key, value, directive in self.resources:
            try:
                Resources.from_dict({key: value})
            except ResourceError as exc:
                raise ResourceError(f"{source}: `#PBS {directive}`: {exc}") from None
            request[key] = value
        if keep_queue and self.queue:
            request["partition"] = self.queue
        if self.account:
            request["account"] = self.account
        try:
            return Resources.from_dict(request)
        except ResourceError as exc:
            raise ResourceError(f"{source}: #PBS header: {exc}") from None


def _tokens(body: str) -> list[str]:
    try:
        return shlex.split(body, comments=False)
    except ValueError:  # an unbalanced quote: still read what can be read
        return body.split()


def _pbs_size(raw: str) -> str:
    """A PBS size ("32gb", "4316kb", "512": bytes, "100w": words) in bytes, read by the PBS
    adapter's parser; anything else stays as written for ``Resources`` to judge."""
    size = optional(parse_pbs_size, raw)
    return f"{size}b" if size is not None else raw


def _pbs_seconds(raw: str) -> str:
    """A bare number of seconds (PBS's meaning; ``Resources`` reads bare numbers as minutes) in
    seconds, read by the PBS adapter's parser; H:MM:SS stays for ``Resources`` to check."""
    seconds = optional(parse_pbs_duration, raw) if raw.isascii() and raw.isdigit() else None
    return f"{int(seconds)}s" if seconds is not None else raw


def _resource_list(value: str, directive: str) -> list[tuple[str, str, str]]:
    """``-l`` items: "nodes=1:ppn=8:batch", "select=2:ncpus=8:mem=32gb", "mem=32gb,walltime=24:00:00"."""
    items: list[tuple[str, str, str]] = []
    for item in value.split(","):
        key, sep, raw = item.strip().partition("=")
        key = key.strip().lower()
        if not sep:
            continue
        if key in ("nodes", "select"):
            parts = raw.split(":")
            if parts[0].strip().isdigit():
                items.append(("nodes", parts[0].strip(), directive))
            for part in parts[1:]:  # chunk resources; a bare word is a node property (celline's server)
                sub_key, sub_sep, sub_value = part.partition("=")
                if sub_sep and sub_value:
                    items.extend(_resource_list(f"{sub_key}={sub_value}", directive))
        elif key in ("ppn", "ncpus"):
            items.append(("cpus", raw.strip(), directive))
        elif key == "mem":
            items.append(("memory", _pbs_size(raw.strip()), directive))
        elif key == "walltime":
            items.append(("walltime", _pbs_seconds(raw.strip()), directive))
        elif key in ("ngpus", "gpus"):
            items.append(("gpus", raw.strip(), directive))
    return items


def parse_pbs_directives(text: str) -> PbsDirectives:
    """The ``#PBS`` lines of a script, read like qsub reads them: up to the first command.

    Unknown options are skipped; values are unchecked (``to_resources`` validates them). Empty
    values, as celline renders them without a cluster server (``#PBS -q ``), count as unset.
    """
    found: dict[str, str] = {}
    resources: list[tuple[str, str, str]] = []
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or (stripped.startswith("#") and not stripped.startswith("#PBS")):
            continue
        if not stripped.startswith("#PBS"):
            break
        tokens = _tokens(stripped[len("#PBS"):])
        i = 0
        while i < len(tokens):
            option = tokens[i]
            if not option.startswith("-") or option in _FLAG_OPTIONS:
                i += 1
                continue
            values = []
            i += 1
            # -N may hold spaces as celline renders it ("Create Seurat"): take words up to the next option.
            while i < len(tokens) and not tokens[i].startswith("-") and (option == "-N" or not values):
                values.append(tokens[i])
                i += 1
            value = " ".join(values).strip()
            if not value:
                continue
            if option == "-l":
                resources.extend(_resource_list(value, f"-l {value}"))
            elif option in ("-N", "-q", "-A", "-e", "-o", "-j"):
                found[option] = value
    queue = found.get("-q", "").split("@", 1)[0] or None  # "queue@server"
    return PbsDirectives(
        name=found.get("-N"), queue=queue, account=found.get("-A"), error_path=found.get("-e"),
        output_path=found.get("-o"), join=found.get("-j"), resources=tuple(resources),
    )
