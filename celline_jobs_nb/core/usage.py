"""Measured resource use of a job, kept in ``job.metadata["usage"]`` (one shape for every scheduler).

    cpu_seconds      total CPU time used so far (user + system, whole process tree)
    elapsed_seconds  wall time the usage covers
    cpu_percent      current CPU use (100 = one core busy)
    rss_bytes        current resident memory of the whole tree
    max_rss_bytes    the peak seen
    read_bytes / write_bytes   I/O so far
    alloc_cpus / req_mem_bytes what was requested, for efficiency
    samples          the last SAMPLE_WINDOW [epoch, cpu_percent, rss_bytes] points (sparklines)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

SAMPLE_WINDOW = 60


@dataclass(frozen=True)
class UsageSample:
    time: float  # epoch seconds
    cpu_seconds: float
    rss_bytes: int
    read_bytes: int | None = None
    write_bytes: int | None = None


def merge_usage(previous: dict[str, Any] | None, sample: UsageSample, started: float | None,
                alloc_cpus: int | None = None, req_mem_bytes: int | None = None) -> dict[str, Any]:
    """The usage record after one more sample: current values, peak memory and a bounded history."""
    prev = previous or {}
    cpu_percent = 0.0
    last_time, last_cpu = prev.get("sampled_at"), prev.get("cpu_seconds")
    if isinstance(last_time, (int, float)) and isinstance(last_cpu, (int, float)) and sample.time > last_time:
        cpu_percent = max(0.0, (sample.cpu_seconds - last_cpu) / (sample.time - last_time) * 100.0)
    samples = list(prev.get("samples") or [])[-(SAMPLE_WINDOW - 1):]
    samples.append([round(sample.time, 3), round(cpu_percent, 1), sample.rss_bytes])
    usage: dict[str, Any] = {
        "cpu_seconds": round(max(sample.cpu_seconds, float(last_cpu or 0.0)), 3),
        "cpu_percent": round(cpu_percent, 1),
        "rss_bytes": sample.rss_bytes,
        "max_rss_bytes": max(sample.rss_bytes, int(prev.get("max_rss_bytes") or 0)),
        "sampled_at": sample.time,
        "samples": samples,
    }
    if started is not None:
        usage["elapsed_seconds"] = round(max(0.0, sample.time - started), 3)
    for key, value in (("read_bytes", sample.read_bytes), ("write_bytes", sample.write_bytes),
                       ("alloc_cpus", alloc_cpus), ("req_mem_bytes", req_mem_bytes)):
        if value is not None:
            usage[key] = value
    return usage


def efficiency(usage: dict[str, Any] | None) -> tuple[float | None, float | None]:
    """(CPU efficiency, memory efficiency) as fractions of the request, when both sides are known."""
    if not usage:
        return None, None
    cpu = mem = None
    cpu_seconds, elapsed, cpus = usage.get("cpu_seconds"), usage.get("elapsed_seconds"), usage.get("alloc_cpus")
    if cpu_seconds is not None and elapsed and cpus:
        cpu = cpu_seconds / (elapsed * cpus)
    peak, requested = usage.get("max_rss_bytes"), usage.get("req_mem_bytes")
    if peak is not None and requested:
        mem = peak / requested
    return cpu, mem
