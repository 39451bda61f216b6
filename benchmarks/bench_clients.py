"""2. Clients side by side on the same cluster in the same run: ours, submitit and psij-python.

Each client submits the same N trivial jobs (write the end time to a file) with its own defaults,
then waits as its documentation says until it reports them all done; the runs alternate (A B C,
then C B A) so that the busy shared cluster treats them alike. SLURM starts about 2 jobs every 3 s
on this node whatever the client does, so only what a client controls is compared:

- time to submit N jobs (client-side wall time of the submit calls);
- scheduler calls per minute from the first submit until the client reports all done (every
  command but sbatch), counted by the PATH wrapper, including the calls made from inside the
  client's job scripts (psij runs ``scontrol show hostnames`` twice per job, submitit ``srun`` once);
- delay between the last job's real end (the time its command wrote) and the client reporting
  every job done.

Then one array (1,000 tasks; 20 in quick mode) through ours: one submission, and every task row
in the state SLURM gives it. A big array is cancelled after a few tasks completed (running all of
them would hold the 2-CPU node for ~25 minutes); the cancelled rows must be right too.
"""

from __future__ import annotations

import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .cluster import NO_CLUSTER, QUERY_COMMANDS, CountingPath, cluster_ready, scancel
from .common import Row, require_service

BENCH = "2. clients"
ROOT = Path(__file__).resolve().parents[1]
CLIENT_PACKAGES = {"submitit": "submitit", "psij": "psij"}  # client -> module (pip: submitit, psij-python)
NAMES = {"ours": "ours", "submitit": "submitit", "psij": "psij-python"}
WAITING_COMMANDS = QUERY_COMMANDS | {"srun"}  # srun inside a batch script asks slurmctld for a step


@dataclass
class ClientRun:
    client: str
    submit_s: float = float("nan")
    calls_per_min: float = float("nan")
    delay_s: float = float("nan")
    wait_s: float = float("nan")
    client_calls: int = 0
    job_calls: int = 0
    result: dict[str, Any] = field(default_factory=dict)
    error: str | None = None


def _driver(client: str, count: int, folder: Path, name: str, env: dict[str, str],
            timeout: float) -> dict[str, Any]:
    proc = subprocess.run([sys.executable, "-m", "benchmarks.client_driver", client, str(count), str(folder), name],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        raise RuntimeError(f"{client} driver exited {proc.returncode}: {' | '.join(tail)}")
    return json.loads(lines[-1])


def _run(client: str, count: int, counter: CountingPath, folder: Path, tag: str, timeout: float) -> ClientRun:
    name = f"cjb-{os.getpid()}-{tag}"  # one job name per run: `scancel --name` cleans up whatever happens
    env = counter.env(tag)
    env.pop("CELLINE_JOBS_SLURM_MIN_POLL_INTERVAL", None)  # every client runs with its defaults
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    run = ClientRun(client)
    try:
        run.result = result = _driver(client, count, folder, name, env, timeout)
    except (RuntimeError, subprocess.TimeoutExpired, ValueError) as exc:
        run.error = str(exc)[:300]
        return run
    finally:
        scancel(name=name)
    ends = [float(p.read_text().strip()) for p in (folder / "ends").glob("*.end") if p.read_text().strip()]
    run.submit_s = result["submit_end"] - result["submit_start"]
    run.wait_s = result["noticed"] - result["submit_end"]
    # Every call but the submissions, from the first submit to the report: job scripts start (and
    # make their calls) while a slow client is still submitting.
    span = result["noticed"] - result["submit_start"]
    calls = counter.calls(tag, commands=WAITING_COMMANDS, since=result["submit_start"], until=result["noticed"])
    run.client_calls = sum(1 for c in calls if not c.in_job)
    run.job_calls = sum(1 for c in calls if c.in_job)
    run.calls_per_min = len(calls) / (span / 60) if span > 0 else float("nan")
    if ends:
        run.delay_s = result["noticed"] - max(ends)
    result["ends"] = len(ends)
    result["sbatch"] = counter.count(tag, commands=["sbatch"])
    if len(ends) != count and client != "ours-array":
        run.error = f"only {len(ends)} of {count} jobs wrote their end time"
    elif result.get("bad"):
        run.error = f"{len(result['bad'])} wrong: {', '.join(result['bad'][:3])}"
    return run


def _sbatch_floor(samples: int = 20) -> float:
    """Median seconds of one bare ``sbatch`` (held, then cancelled): what every client pays per job."""
    name = f"cjb-{os.getpid()}-floor"
    times = []
    try:
        for _ in range(samples):
            start = time.perf_counter()
            subprocess.run(["sbatch", "--parsable", "--hold", "-J", name, "-o", "/dev/null", "--wrap", "true"],
                           capture_output=True, timeout=60)
            times.append(time.perf_counter() - start)
    finally:
        scancel(name=name)
    return statistics.median(times)


def _median(runs: list[ClientRun], attribute: str) -> float:
    values = [getattr(r, attribute) for r in runs if r.error is None and getattr(r, attribute) == getattr(r, attribute)]
    return statistics.median(values) if values else float("nan")


def run(quick: bool) -> list[Row]:
    if not require_service(cluster_ready(), NO_CLUSTER):
        return [Row(BENCH, "clients side by side", 0, "", met=False, note="skipped: no SLURM cluster")]
    count, array, rounds = (10, 20, 1) if quick else (100, 1000, 5)
    clients = ["ours"] + [c for c, module in CLIENT_PACKAGES.items() if importlib.util.find_spec(module)]
    missing = [NAMES[c] for c in CLIENT_PACKAGES if c not in clients]
    timeout = 900.0 if quick else 2400.0
    runs: dict[str, list[ClientRun]] = {c: [] for c in clients}
    with CountingPath() as counter, tempfile.TemporaryDirectory(prefix="cj-bench-clients-") as tmp:
        for round_ in range(rounds):
            for client in clients if round_ % 2 == 0 else list(reversed(clients)):
                print(f"  {NAMES[client]}, round {round_ + 1}: {count} jobs", file=sys.stderr, flush=True)
                runs[client].append(_run(client, count, counter, Path(tmp) / f"{client}-{round_}",
                                         f"{client}-{round_}", timeout))
        print(f"  ours: one array of {array} tasks", file=sys.stderr, flush=True)
        array_run = _run("ours-array", array, counter, Path(tmp) / "array", "ours-array", timeout)
    floor = _sbatch_floor()
    rows = _client_rows(runs, count, rounds, floor)
    rows.extend(_array_rows(array_run, array))
    if missing:
        rows.append(Row(BENCH, f"not compared: {', '.join(missing)}", 0, "", met=False,
                        note="pip install -e '.[bench]' to add them"))
    return rows


def _client_rows(runs: dict[str, list[ClientRun]], count: int, rounds: int, sbatch_s: float) -> list[Row]:
    ours = runs["ours"]
    others: list[str | None] = [c for c in runs if c != "ours"] or [None]  # None: no other client installed
    per = f"median of {rounds} runs, order alternating" if rounds > 1 else "one run each"
    submit = {c: _median(rs, "submit_s") for c, rs in runs.items()}
    calls = {c: _median(rs, "calls_per_min") for c, rs in runs.items()}
    delay = {c: _median(rs, "delay_s") for c, rs in runs.items()}
    fastest = min((v for c, v in submit.items() if c != "ours" and v == v), default=float("nan"))
    lowest_delay = min((v for c, v in delay.items() if c != "ours" and v == v), default=float("nan"))
    interval = _poll_interval_at_end(ours)
    submit_met = submit["ours"] <= fastest if fastest == fastest else None
    delay_met = (delay["ours"] <= interval and delay["ours"] < lowest_delay) if lowest_delay == lowest_delay else None
    rows: list[Row] = []
    for other in others:
        rows.append(Row(BENCH, f"time to submit {count} jobs", submit["ours"], "s", submit.get(other or ""),
                        NAMES.get(other or ""), target="<= fastest client", met=submit_met,
                        note=f"{per}; a bare `sbatch` takes {sbatch_s * 1000:.1f} ms ({sbatch_s * count:.2f} s for "
                             f"{count})"))
    for other in others:
        note = f"ours: {_call_split(ours)}"
        if other:
            note += f"; {NAMES[other]}: {_call_split(runs[other])}"
        rows.append(Row(BENCH, "scheduler calls per minute, submit to all done", calls["ours"], "calls/min",
                        calls.get(other or ""), NAMES.get(other or ""), note=note))
    for other in others:
        note = f"polls: ours {_interval_text(ours)}"
        if other:
            note += f"; {NAMES[other]} {_interval_text(runs[other])}"
        rows.append(Row(BENCH, "delay: last job's end -> client reports all done", delay["ours"], "s",
                        delay.get(other or ""), NAMES.get(other or ""),
                        target=f"<= our poll interval then ({interval:g} s), below both", met=delay_met, note=note))
    errors = [f"{NAMES[r.client]}: {r.error}" for rs in runs.values() for r in rs if r.error]
    if errors:
        rows.append(Row(BENCH, "client runs with errors", len(errors), "runs", met=False, note="; ".join(errors)))
    return rows


def _call_split(runs: list[ClientRun]) -> str:
    good = [r for r in runs if r.error is None]
    if not good:
        return "(no good run)"
    client = statistics.median(r.client_calls for r in good)
    job = statistics.median(r.job_calls for r in good)
    span = statistics.median(r.wait_s + r.submit_s for r in good)
    return f"{client:g} calls from the client + {job:g} from its job scripts in {span:.0f} s"


def _interval_text(runs: list[ClientRun]) -> str:
    return next((str(r.result.get("poll_interval")) for r in runs if r.result.get("poll_interval")), "?")


def _poll_interval_at_end(runs: list[ClientRun]) -> float:
    """Our poll interval when the last job ended: 3 s within a minute of the last submit, else 30 s."""
    good = [r for r in runs if r.error is None]
    if not good:
        return float("nan")
    since_submit = statistics.median(r.wait_s - r.delay_s for r in good)
    return 3.0 if since_submit < 60 else 30.0


def _array_rows(run: ClientRun, tasks: int) -> list[Row]:
    result = run.result
    if not result:
        return [Row(BENCH, f"{tasks:,}-task array", 0, "", met=False, note=f"failed: {run.error}")]
    rows_ok = result.get("rows") == tasks and not result.get("bad") and result.get("rows_after_first_poll") == tasks
    how = (f"{result.get('completed')} tasks completed, then the array was cancelled" if result.get("cancelled")
           else f"all {result.get('completed')} tasks completed")
    return [
        Row(BENCH, f"one {tasks:,}-task array: sbatch calls", result.get("sbatch", 0), "calls", target="1",
            met=result.get("sbatch") == 1, note=f"submitted in {run.submit_s * 1000:.0f} ms"),
        Row(BENCH, f"one {tasks:,}-task array: task rows in SLURM's state", result.get("rows", 0), "rows",
            target=f"{tasks:,}, all right", met=rows_ok and run.error is None,
            note=f"{result.get('rows_after_first_poll')} rows after the first poll; {how}; parent "
                 f"{result.get('parent_status')} {json.dumps(result.get('task_counts'))}"
                 + (f"; wrong: {', '.join(result['bad'][:3])}" if result.get("bad") else "")
                 + (f"; {run.error}" if run.error and not result.get("bad") else "")),
    ]
