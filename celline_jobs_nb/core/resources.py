"""One validated resource request: cpus, memory, walltime, partition/queue, gpus, account, extra."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field, replace
from typing import Any

from .errors import ResourceError

_MEM_UNITS = {"": 1024**2, "b": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4, "p": 1024**5}
# ASCII digits only: "\d" alone also matches full-width and other scripts' digits, which no
# scheduler accepts. Numbers are at most 18 digits: anything longer is a typo, not a request.
_MEM_RE = re.compile(r"^\s*(\d{1,18}(?:\.\d{1,9})?)\s*([kmgtp]?)(i?b)?\s*$", re.IGNORECASE | re.ASCII)
_DURATION_PART_RE = re.compile(r"(\d{1,18}(?:\.\d{1,9})?)\s*(d|h|m|s)", re.IGNORECASE | re.ASCII)
_DIGITS_RE = re.compile(r"\d{1,18}", re.ASCII)

_KEY_ALIASES = {
    "cpus": "cpus", "cpu": "cpus", "ncpus": "cpus", "ppn": "cpus", "threads": "cpus", "nthread": "cpus",
    "cpus_per_task": "cpus", "mem": "memory", "memory": "memory", "time": "walltime", "walltime": "walltime",
    "time_limit": "walltime", "partition": "partition", "queue": "partition", "gpus": "gpus", "gpu": "gpus",
    "account": "account", "nodes": "nodes", "extra": "extra",
}
MAX_MEMORY_BYTES = 1024**5 * 64  # 64 PiB: beyond any real node, so a typo like 32000000G is caught
MAX_WALLTIME_SECONDS = 366 * 86400


def parse_memory(value: str | int | float) -> int:
    """Bytes from "32G", "32gb", "512MiB", "1.5T" or a bare number of MiB (Slurm's default unit)."""
    if isinstance(value, bool):
        raise ResourceError(f"invalid memory {value!r}: use a size like 32G or 512M")
    if isinstance(value, (int, float)):
        if not math.isfinite(value):
            raise ResourceError(f"invalid memory {value!r}: use a size like 32G or 512M")
        number, unit = float(value), ""
    else:
        text = str(value)
        m = _MEM_RE.match(text)
        if not m:
            raise ResourceError(f"invalid memory {text[:40]!r}: use a size like 32G, 32gb or 512M")
        number, unit = float(m.group(1)), m.group(2).lower()
        if not unit and m.group(3):  # "512b": bytes, which are whole
            if "." in m.group(1):
                raise ResourceError(f"invalid memory {text[:40]!r}: bytes are whole numbers; write e.g. 1536M")
            unit = "b"
    if number * _MEM_UNITS[unit] > MAX_MEMORY_BYTES:
        raise ResourceError(f"invalid memory {str(value)[:40]!r}: must be more than 0 and at most 64P")
    size = int(number * _MEM_UNITS[unit])
    if size <= 0 or size > MAX_MEMORY_BYTES:
        raise ResourceError(f"invalid memory {value!r}: must be more than 0 and at most 64P")
    return size


def format_memory(size: int) -> str:
    """The shortest exact form scheduler flags accept: 32G, 1536M, 100K."""
    for unit, factor in (("T", 1024**4), ("G", 1024**3), ("M", 1024**2), ("K", 1024)):
        if size % factor == 0:
            return f"{size // factor}{unit}"
    return f"{-(-size // 1024)}K"


def parse_walltime(value: str | int | float) -> int:
    """Seconds from "1:30:00", "90:00", "2-00:00:00", "1-12", "2h", "1h30m", "45m" or bare minutes."""
    if isinstance(value, bool):
        raise ResourceError(f"invalid walltime {value!r}: use H:MM:SS, D-HH:MM:SS or 2h30m")
    if isinstance(value, (int, float)):
        if not math.isfinite(value) or not 0 < value <= MAX_WALLTIME_SECONDS / 60:
            raise ResourceError(f"invalid walltime {value!r}: must be more than 0 and at most 366 days")
        seconds = int(float(value) * 60)
    else:
        seconds = _parse_walltime_text(str(value).strip())
    if seconds <= 0 or seconds > MAX_WALLTIME_SECONDS:
        raise ResourceError(f"invalid walltime {str(value)[:40]!r}: must be more than 0 and at most 366 days")
    return seconds


def _parse_walltime_text(text: str) -> int:
    error = ResourceError(f"invalid walltime {text[:40]!r}: use H:MM:SS, D-HH:MM:SS, 2h30m or minutes")
    if not text or not text.isascii():
        raise error
    if _DIGITS_RE.fullmatch(text):
        return int(text) * 60  # Slurm and Torque read a bare number as minutes
    if _DURATION_PART_RE.match(text):
        total, consumed = 0.0, 0
        for m in _DURATION_PART_RE.finditer(text):
            if text[consumed:m.start()].strip():
                raise error
            total += float(m.group(1)) * {"d": 86400, "h": 3600, "m": 60, "s": 1}[m.group(2).lower()]
            consumed = m.end()
        if text[consumed:].strip():
            raise error
        return int(total)
    days = 0
    m = re.fullmatch(r"(\d{1,18})-(.+)", text, re.ASCII)
    if m:
        days, text = int(m.group(1)), m.group(2)
        parts = text.split(":")
        if not all(_DIGITS_RE.fullmatch(p) for p in parts) or len(parts) > 3:
            raise error
        hms = [int(p) for p in parts] + [0] * (3 - len(parts))  # D-HH, D-HH:MM, D-HH:MM:SS
    else:
        parts = text.split(":")
        if not all(_DIGITS_RE.fullmatch(p) for p in parts) or not 2 <= len(parts) <= 3:
            raise error
        numbers = [int(p) for p in parts]
        if any(n >= 60 for n in numbers[1:]):  # the leading field may exceed 59 (90:00 is 90 minutes)
            raise error
        if len(numbers) == 2:
            return numbers[0] * 60 + numbers[1]
        hms = numbers
    h, mi, s = hms
    if mi >= 60 or s >= 60:
        raise error
    return days * 86400 + h * 3600 + mi * 60 + s


def format_walltime(seconds: int) -> str:
    """H:MM:SS, or D-HH:MM:SS past a day (the form Slurm prints and accepts)."""
    days, rest = divmod(int(seconds), 86400)
    h, rest = divmod(rest, 3600)
    m, s = divmod(rest, 60)
    return f"{days}-{h:02d}:{m:02d}:{s:02d}" if days else f"{h:02d}:{m:02d}:{s:02d}"


def _positive_int(name: str, value: Any, *, allow_zero: bool = False) -> int:
    text = str(value).strip()
    if isinstance(value, bool) or not _DIGITS_RE.fullmatch(text):
        number = None  # int() would take "１２" (full-width) and "1_0"; schedulers take neither
    else:
        number = int(text)
    if number is None or number < (0 if allow_zero else 1) or number > 100_000:
        low = 0 if allow_zero else 1
        raise ResourceError(f"invalid {name} {value!r}: use a whole number from {low} to 100000")
    return number


_SAFE_NAME_RE = re.compile(r"^[A-Za-z0-9_.:+,-]{1,128}$")


@dataclass(frozen=True)
class Resources:
    """A validated request. ``None`` means "scheduler default"."""

    cpus: int | None = None
    memory: int | None = None  # bytes
    walltime: int | None = None  # seconds
    partition: str | None = None  # SLURM partition / PBS queue
    gpus: int | None = None
    account: str | None = None
    nodes: int | None = None
    extra: tuple[str, ...] = field(default_factory=tuple)  # raw scheduler directives, one per line

    def __post_init__(self) -> None:
        for name in ("partition", "account"):
            value = getattr(self, name)
            if value is not None and not _SAFE_NAME_RE.match(value):
                raise ResourceError(f"invalid {name} {value!r}: use letters, digits and _.:+,- only")
        for line in self.extra:
            if "\n" in line or "\r" in line or "\0" in line:
                raise ResourceError(f"invalid extra directive {line!r}: one directive per item, no newlines")

    @classmethod
    def parse(cls, spec: str | dict[str, Any] | Resources | None) -> Resources:
        """From "cpus=4,mem=32G,time=1:30:00", a dict or another Resources."""
        if spec is None or spec == "":
            return cls()
        if isinstance(spec, Resources):
            return spec
        if isinstance(spec, dict):
            return cls.from_dict(spec)
        items: dict[str, Any] = {}
        for part in re.split(r"[,\s]+", str(spec).strip()):
            if not part:
                continue
            key, sep, value = part.partition("=")
            if not sep or not value:
                raise ResourceError(f"invalid resource {part[:60]!r}: write key=value, e.g. mem=32G")
            if key.strip() in items:
                raise ResourceError(f"resource {key.strip()[:40]!r} is given twice: keep one")
            items[key.strip()] = value.strip()
        return cls.from_dict(items)

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> Resources:
        if not data:
            return cls()
        if not isinstance(data, dict):
            raise ResourceError(f"invalid resources {str(data)[:40]!r}: give key=value pairs, e.g. mem=32G")
        kwargs: dict[str, Any] = {}
        given: dict[str, str] = {}
        for raw_key, value in data.items():
            key = _KEY_ALIASES.get(str(raw_key).strip().lower().replace("-", "_"))
            if key is None:
                valid = "cpus, mem, time, partition/queue, gpus, account, nodes, extra"
                raise ResourceError(f"unknown resource {str(raw_key)[:40]!r}: use {valid}")
            if value is None or value == "":
                continue
            if key in given:
                raise ResourceError(f"resources {given[key]!r} and {str(raw_key)[:40]!r} both set the {key}: keep one")
            given[key] = str(raw_key)[:40]
            if key in ("cpus", "nodes"):
                kwargs[key] = _positive_int(key, value)
            elif key == "gpus":
                kwargs[key] = _positive_int(key, value, allow_zero=True)
            elif key == "memory":
                kwargs[key] = parse_memory(value)
            elif key == "walltime":
                kwargs[key] = parse_walltime(value)
            elif key == "extra":
                kwargs[key] = (value,) if isinstance(value, str) else tuple(str(v) for v in value)
            else:
                kwargs[key] = str(value)
        return cls(**kwargs)

    def merged(self, **changes: Any) -> Resources:
        """A copy with ``changes`` parsed like user input (``mem="64G"``) applied."""
        parsed = Resources.from_dict(changes)
        return replace(self, **{k: getattr(parsed, k) for k in _normalised_keys(changes)})

    def scaled(self, memory_factor: float = 1.0, walltime_factor: float = 1.0,
               max_memory: int | None = None, max_walltime: int | None = None) -> Resources:
        """A copy with memory/walltime multiplied (e.g. after an out-of-memory failure), capped."""
        # Never past the limits a request may have: a bumped request must stay a valid one.
        memory = self.memory
        if memory is not None and memory_factor != 1.0:
            memory = min(int(memory * memory_factor), max_memory or MAX_MEMORY_BYTES, MAX_MEMORY_BYTES)
        walltime = self.walltime
        if walltime is not None and walltime_factor != 1.0:
            walltime = min(int(walltime * walltime_factor), max_walltime or MAX_WALLTIME_SECONDS, MAX_WALLTIME_SECONDS)
        return replace(self, memory=memory, walltime=walltime)

    def to_dict(self) -> dict[str, Any]:
        """Only the fields that are set; memory and walltime in their human forms."""
        out: dict[str, Any] = {}
        if self.cpus is not None:
            out["cpus"] = self.cpus
        if self.memory is not None:  # exact, so a stored request reads back the same (0.1G is not whole KiB)
            out["mem"] = format_memory(self.memory) if self.memory % 1024 == 0 else f"{self.memory}b"
        if self.walltime is not None:
            out["time"] = format_walltime(self.walltime)
        for key in ("partition", "gpus", "account", "nodes"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        if self.extra:
            out["extra"] = list(self.extra)
        return out

    def summary(self) -> str:
        """Short text for tables: "4 cpu · 32G · 01:30:00"."""
        parts = []
        if self.cpus is not None:
            parts.append(f"{self.cpus} cpu")
        if self.memory is not None:
            parts.append(format_memory(self.memory))
        if self.walltime is not None:
            parts.append(format_walltime(self.walltime))
        if self.gpus:
            parts.append(f"{self.gpus} gpu")
        if self.partition:
            parts.append(self.partition)
        return " · ".join(parts)


def _normalised_keys(changes: dict[str, Any]) -> list[str]:
    return [_KEY_ALIASES[str(k).strip().lower().replace("-", "_")] for k in changes
            if changes[k] not in (None, "")]
