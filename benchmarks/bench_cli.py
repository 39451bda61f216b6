"""6. The CLI: `celline-jobs list` against a raw `squeue` on the same cluster (both include process
start), and the import time of the CLI's path (`python -X importtime`)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from .common import Row, timed


def _python_floor() -> float:
    return timed(lambda: subprocess.run([sys.executable, "-c", "pass"], check=True), 7)


def _import_breakdown(command: list[str]) -> str:
    """Where `celline-jobs list` spends its time importing (cumulative ms, ``python -X importtime``):
    the package, the CLI module, the monitor (store, schedulers, settings) and rich (the table)."""
    result = subprocess.run([command[0], "-X", "importtime", *command[1:]], capture_output=True, text=True)
    wanted = ("celline_jobs_nb", "celline_jobs_nb.cli", "celline_jobs_nb.monitor", "rich.console", "rich.table")
    found = {m.group(2): int(m.group(1)) / 1000 for m in re.finditer(r"\|\s+(\d+) \|\s+(\S+)$", result.stderr,
                                                                     re.MULTILINE) if m.group(2) in wanted}
    return ", ".join(f"{name} {found[name]:.0f} ms" for name in wanted if name in found)


def run(quick: bool) -> list[Row]:
    rows: list[Row] = []
    with tempfile.TemporaryDirectory() as tmp:
        project = Path(tmp)
        from celline_jobs_nb import JobMonitor

        monitor = JobMonitor(project)
        ids = [monitor.submit_job(f"j{i}", "true") for i in range(20)]
        monitor.wait(ids, timeout=120)
        cli = [sys.executable, "-m", "celline_jobs_nb", "--project", str(project), "list"]
        ours = timed(lambda: subprocess.run(cli, capture_output=True, check=True), 7)
        floor = _python_floor()
        if shutil.which("squeue"):
            raw = timed(lambda: subprocess.run(["squeue", "-h", "-t", "all"], capture_output=True, check=True), 7)
            ratio = (ours - floor) / raw if raw else None
            rows.append(Row("6. CLI", "`celline-jobs list` (20 jobs) minus interpreter start", (ours - floor) * 1000,
                            "ms", raw * 1000, "raw `squeue -h -t all`", target="ratio <= 1.3",
                            met=ratio is not None and ratio <= 1.3,
                            note=f"with start-up: {ours * 1000:.0f} ms; bare `python -c pass`: {floor * 1000:.0f} ms"))
        else:
            rows.append(Row("6. CLI", "`celline-jobs list` (20 jobs) minus interpreter start", (ours - floor) * 1000,
                            "ms", note="squeue not installed: no baseline"))
        rows[-1].note += f"; imports (cumulative, nested ones overlap): {_import_breakdown(cli)}"
        result = subprocess.run([sys.executable, "-X", "importtime", "-c", "import celline_jobs_nb.cli"],
                                capture_output=True, text=True)
        cumulative = [int(m.group(1)) for m in re.finditer(r"\|\s+(\d+) \|\s+celline_jobs_nb\.cli$",
                                                           result.stderr, re.MULTILINE)]
        pandas = "pandas" in result.stderr
        rows.append(Row("6. CLI", "import time of celline_jobs_nb.cli", (cumulative[0] if cumulative else 0) / 1000,
                        "ms", target="no pandas/anywidget", met=not pandas and "anywidget" not in result.stderr))
    return rows
