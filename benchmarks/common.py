"""Result rows, timing helpers and the table writer shared by every benchmark module."""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

RESULTS_DIR = Path(__file__).parent / "results"


@dataclass
class Row:
    benchmark: str  # e.g. "5. store"
    metric: str
    ours: float
    unit: str
    baseline: float | None = None  # the same measure of the naive design / other client, same run
    baseline_name: str | None = None
    target: str | None = None  # e.g. "< 50 ms", "ratio <= 1.3"
    met: bool | None = None
    note: str = ""

    @property
    def ratio(self) -> float | None:
        if self.baseline in (None, 0) or self.ours is None:
            return None
        return self.ours / self.baseline


def timed(function: Callable[[], Any], repeat: int = 5) -> float:
    """Median wall seconds of ``repeat`` calls."""
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        function()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def machine() -> dict[str, Any]:
    info: dict[str, Any] = {"python": platform.python_version(), "cpus": os.cpu_count(),
                            "platform": platform.platform()}
    try:
        info["cpu_model"] = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text()
                                 .splitlines() if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    try:
        info["memory_gib"] = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    except (ValueError, OSError):
        pass
    try:
        info["slurm"] = subprocess.run(["sinfo", "--version"], capture_output=True, text=True,
                                       timeout=10).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        pass
    return info


def _fmt(value: float | None) -> str:
    if value is None:
        return ""
    if value != value:  # NaN: the measurement failed (the row's note says why)
        return "n/a"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.3g}"


def markdown(rows: list[Row], info: dict[str, Any], quick: bool) -> str:
    lines = [f"Machine: {info.get('cpu_model', '?')}, {info.get('cpus')} CPUs, {info.get('memory_gib', '?')} GiB, "
             f"Python {info.get('python')}, {info.get('slurm', 'no SLURM')}" + (" (quick mode)" if quick else ""), "",
             "| benchmark | metric | ours | baseline | ratio | target | met |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        base = f"{_fmt(r.baseline)} {r.unit} ({r.baseline_name})" if r.baseline is not None else ""
        met = "" if r.met is None else ("yes" if r.met else "**MISSED**")
        lines.append(f"| {r.benchmark} | {r.metric} | {_fmt(r.ours)} {r.unit} | {base} | {_fmt(r.ratio)} | "
                     f"{r.target or ''} | {met} |" + (f" {r.note}" if r.note else ""))
    return "\n".join(lines) + "\n"


def write_results(rows: list[Row], quick: bool, partial: bool = False) -> str:
    """Write the table as results/latest.{json,md}: a full run's; quick.* and partial.* (a run of
    only some benchmarks) are kept apart, so they never replace the full table README quotes."""
    info = machine()
    RESULTS_DIR.mkdir(exist_ok=True)
    name = "quick" if quick else "partial" if partial else "latest"
    payload = {"machine": info, "quick": quick, "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
               "rows": [{**asdict(r), "ratio": r.ratio} for r in rows]}
    (RESULTS_DIR / f"{name}.json").write_text(json.dumps(payload, indent=2) + "\n")
    text = markdown(rows, info, quick)
    (RESULTS_DIR / f"{name}.md").write_text(text)
    return text


def project_python() -> tuple[str, str]:
    """The interpreter of the project's own environment, and how it was chosen.

    The full suite may run in a separate venv that holds the ``bench`` extra (submitit,
    psij-python); its site packages can add start-up to every Python process (a ``.pth`` that
    imports certifi made ``python -c pass`` 40 ms instead of 12 ms). Commands users type are timed
    with the interpreter they use: ``CELLINE_JOBS_BENCH_PYTHON`` if set, else, inside a venv, the
    interpreter it was made from when that one imports this same package, else this one."""
    chosen = os.environ.get("CELLINE_JOBS_BENCH_PYTHON")
    if chosen:
        return chosen, "CELLINE_JOBS_BENCH_PYTHON"
    if sys.prefix != sys.base_prefix:
        base = getattr(sys, "_base_executable", None)
        if base and Path(base).resolve() != Path(sys.executable).resolve():
            import celline_jobs_nb

            ours = str(Path(celline_jobs_nb.__file__).resolve().parent)
            try:
                found = subprocess.run([base, "-c", "import celline_jobs_nb, pathlib; "
                                        "print(pathlib.Path(celline_jobs_nb.__file__).resolve().parent)"],
                                       capture_output=True, text=True, timeout=60).stdout.strip()
            except (OSError, subprocess.TimeoutExpired):
                found = ""
            if found == ours:
                return base, "the interpreter this venv was made from"
        return sys.executable, "this venv's (no other environment has this package: set CELLINE_JOBS_BENCH_PYTHON)"
    return sys.executable, "this interpreter"


def require_service(available: bool, reason: str) -> bool:
    """Whether a service a benchmark needs is there. With CELLINE_JOBS_REQUIRE_SERVICES=1 (CI) a
    missing one is an error, as it is for the tests: nothing may silently stop being measured."""
    if not available and os.environ.get("CELLINE_JOBS_REQUIRE_SERVICES") == "1":
        raise RuntimeError(f"{reason} (CELLINE_JOBS_REQUIRE_SERVICES=1)")
    return available
