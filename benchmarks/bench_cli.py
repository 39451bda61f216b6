"""6. The CLI: `celline-jobs list` against a raw `squeue` on the same cluster (both include process
start), and the import time of the CLI's path (`python -X importtime`).

Every Python process here runs as an installed package does: with its bytecode cached (pip
byte-compiles a wheel when it installs it). The caches live in a temporary PYTHONPYCACHEPREFIX,
filled by one untimed run of each command, so a PYTHONDONTWRITEBYTECODE=1 in the caller's
environment cannot make every timed run compile the package from source again.

Besides `squeue`, a second baseline says what any Python command line pays for the same answer:
a stdlib-only script that parses the same arguments, opens the same database and prints the same
rows (argparse, sqlite3, datetime: no package of ours).

The Python commands run in the project's own environment (``common.project_python``), not in a
benchmark venv whose site packages slow every start; each baseline's own start-up is printed
next to it (``squeue --version`` for squeue; ``python -c pass`` and how much of it is site).
"""

from __future__ import annotations

import os
import re
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from .common import Row, project_python

REPEAT = 20
# The least a Python `list` can do: parse arguments, open the database read-only, print the rows.
STDLIB_LIST = """
import argparse, datetime, sqlite3, sys
parser = argparse.ArgumentParser(prog="list")
parser.add_argument("--project")
parser.add_argument("command")
args = parser.parse_args()
db = sqlite3.connect(f"file:{args.project}/.celline/jobs.db?mode=ro", uri=True)
for job_id, name, status, started in db.execute("SELECT job_id, name, status, start_time FROM jobs ORDER BY seq"):
    when = datetime.datetime.fromtimestamp(started).isoformat() if started else ""
    sys.stdout.write(f"{job_id}  {name}  {status}  {when}\\n")
"""


def _cached_bytecode_env(cache: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(cache)
    return env


def _list_command(python: str, project: Path) -> list[str]:
    """What a user types: the `celline-jobs` console script next to ``python`` (pip puts it there;
    a PATH lookup could find a version manager's shim, which adds its own start-up), else
    ``python -m celline_jobs_nb``."""
    script = Path(python).with_name("celline-jobs")
    if script.is_file():
        return [str(script), "--project", str(project), "list"]
    return [python, "-m", "celline_jobs_nb", "--project", str(project), "list"]


def _import_breakdown(python: str, project: Path, env: dict[str, str]) -> str:
    """Where `celline-jobs list` spends its time importing (cumulative ms, ``python -X importtime``)."""
    result = subprocess.run([python, "-X", "importtime", "-m", "celline_jobs_nb", "--project", str(project),
                             "list"], capture_output=True, text=True, env=env)
    wanted = ("celline_jobs_nb", "celline_jobs_nb.cli", "celline_jobs_nb.monitor", "celline_jobs_nb.store.sqlite",
              "sqlite3", "argparse")
    found: dict[str, float] = {}
    for match in re.finditer(r"\|\s+(\d+) \|\s+(\S+)$", result.stderr, re.MULTILINE):
        if match.group(2) in wanted:
            found[match.group(2)] = max(found.get(match.group(2), 0.0), int(match.group(1)) / 1000)
    rich = " (rich imported!)" if re.search(r"\|\s+rich[.\s]", result.stderr) else ", no rich"
    return ", ".join(f"{name} {found[name]:.1f} ms" for name in wanted if name in found) + rich


def _interleaved(commands: dict[str, list[str]], env: dict[str, str], repeat: int) -> dict[str, float]:
    """Median wall seconds of each command, run in turns (one of each per round), so a burst of
    load on the shared machine falls on all of them alike."""
    samples: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(repeat):
        for name, command in commands.items():
            start = time.perf_counter()
            subprocess.run(command, capture_output=True, check=True, env=env)
            samples[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in samples.items()}


def _list_path_modules(python: str, project: Path, env: dict[str, str]) -> str:
    """Which of the heavy modules `celline-jobs list` loaded (``-X importtime``)."""
    result = subprocess.run([python, "-X", "importtime", "-m", "celline_jobs_nb", "--project", str(project), "list"],
                            capture_output=True, text=True, env=env)
    loaded = {line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines() if line.startswith("import time")}
    heavy = ("celline_jobs_nb.monitor", "celline_jobs_nb.store.sqlite", "celline_jobs_nb.core.settings", "logging",
             "subprocess", "tomllib", "celline_jobs_nb.schedulers")
    found = [name for name in heavy if name in loaded]
    return "loads " + ", ".join(found) if found else "loads none of the monitor, store, settings, logging"


def run(quick: bool) -> list[Row]:
    rows: list[Row] = []
    python, how = project_python()
    load = "load average {:.1f} {:.1f} {:.1f}".format(*os.getloadavg())
    with tempfile.TemporaryDirectory() as tmp:
        project = Path(tmp) / "project"
        project.mkdir()
        from celline_jobs_nb import JobMonitor

        monitor = JobMonitor(project)
        ids = [monitor.submit_job(f"j{i}", "true") for i in range(20)]
        monitor.wait(ids, timeout=120)
        env = _cached_bytecode_env(Path(tmp) / "pycache")
        commands = {
            "ours": _list_command(python, project),
            "pass": [python, "-c", "pass"],
            "bare": [python, "-S", "-c", "pass"],  # without site: what the environment's .pth files add
            "isolated": [python, "-I", "-c", "pass"],
            "stdlib": [python, "-c", STDLIB_LIST, "--project", str(project), "list"],
        }
        has_squeue = shutil.which("squeue") is not None
        if has_squeue:
            commands["squeue"] = ["squeue", "-h", "-t", "all"]
            commands["squeue_start"] = ["squeue", "--version"]
        for command in commands.values():  # fill the bytecode cache, untimed
            subprocess.run(command, capture_output=True, check=True, env=env)
        t = _interleaved(commands, env, REPEAT)
        ours, floor, bare, stdlib = t["ours"], t["pass"], t["bare"], t["stdlib"]
        site = max(0.0, floor - bare) * 1000
        start_up = (f"start-up (`python -c pass`): {floor * 1000:.1f} ms, of which site {site:.1f} ms "
                    f"(`-S`: {bare * 1000:.1f} ms, `-I`: {t['isolated'] * 1000:.1f} ms)")
        squeue_note = (f"`squeue -h -t all` {t['squeue'] * 1000:.1f} ms (its own start-up, `squeue --version`: "
                       f"{t['squeue_start'] * 1000:.1f} ms)") if has_squeue else "squeue not installed"
        rows.append(Row("6. CLI", "`celline-jobs list` (20 ended jobs), wall with interpreter start-up", ours * 1000,
                        "ms", floor * 1000, "`python -c pass`, same interpreter", target="ratio <= 2",
                        met=ours <= 2 * floor,
                        note=f"median of {REPEAT}, run in turns; {start_up}; {squeue_note}; a stdlib-only script "
                             f"printing the same rows: {stdlib * 1000:.0f} ms; "
                             f"{_list_path_modules(python, project, env)} (quicklist: no job active); "
                             f"{python} ({how}); {load}"))
        # The full path: a job is running, so the command polls its scheduler first.
        running = monitor.submit_job("sleeper", "sleep 600")
        try:
            busy = _interleaved({"ours": commands["ours"], "pass": commands["pass"]}, env, REPEAT)
        finally:
            monitor.cancel_job(running, wait=10)
        rows.append(Row("6. CLI", "`celline-jobs list` (20 ended jobs + 1 running), wall", busy["ours"] * 1000, "ms",
                        busy["pass"] * 1000, "`python -c pass`, same interpreter",
                        note=f"median of {REPEAT}; the full path (monitor, store, settings, the local adapter's "
                             "check of the running job)"))
        if has_squeue:
            raw = t["squeue"]
            ratio = (ours - floor) / raw if raw else None
            rows.append(Row("6. CLI", "`celline-jobs list` (20 jobs) minus interpreter start", (ours - floor) * 1000,
                            "ms", raw * 1000, "raw `squeue -h -t all`", target="ratio <= 1.3",
                            met=ratio is not None and ratio <= 1.3,
                            note=f"{squeue_note}; imports (cumulative): {_import_breakdown(python, project, env)}"))
        rows.append(Row("6. CLI", "`celline-jobs list` (20 jobs) minus interpreter start", (ours - floor) * 1000,
                        "ms", (stdlib - floor) * 1000, "stdlib-only Python, same rows",
                        note=f"the stdlib script's own {start_up} (the same interpreter); "
                             f"with it: {stdlib * 1000:.0f} ms"))
        result = subprocess.run([python, "-X", "importtime", "-c", "import celline_jobs_nb.cli"],
                                capture_output=True, text=True, env=env)
        cumulative = [int(m.group(1)) for m in re.finditer(r"\|\s+(\d+) \|\s+celline_jobs_nb\.cli$",
                                                           result.stderr, re.MULTILINE)]
        heavy = [name for name in ("pandas", "anywidget", "rich") if re.search(rf"\|\s+{name}$", result.stderr,
                                                                               re.MULTILINE)]
        rows.append(Row("6. CLI", "import time of celline_jobs_nb.cli", (cumulative[0] if cumulative else 0) / 1000,
                        "ms", target="no pandas/anywidget/rich", met=not heavy,
                        note=f"imports {', '.join(heavy)}" if heavy else ""))
    return rows
