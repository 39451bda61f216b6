"""The real single-node SLURM, seen from the benchmarks: is it there, and a counting wrapper
directory that logs every scheduler command run through it.

``CountingPath`` puts one small bash script per SLURM command (sbatch, squeue, sacct, ...) in a
directory that goes first on PATH. Each logs a line (time, tag, inside-a-job flag, command,
arguments) and execs the real binary. The tag comes from ``CJ_BENCH_TAG`` in the environment, and
SLURM hands the submitting environment to the job (``--export=ALL`` is its default), so commands
run from inside job scripts (psij's ``scontrol show hostnames``, submitit's ``srun``) are counted
for the client that submitted them. Other developers' commands never pass through it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1] / "tests"
#: Every command that talks to slurmctld or slurmd. srun inside a batch script starts a job step.
SLURM_COMMANDS = ("sbatch", "squeue", "sacct", "scontrol", "scancel", "srun", "sstat", "sinfo")
#: The ones that ask about jobs (the politeness metric "scheduler queries").
QUERY_COMMANDS = frozenset({"squeue", "sacct", "scontrol", "sstat", "sinfo"})

_WRAPPER = """#!/bin/bash
# Counting wrapper written by benchmarks/cluster.py: log this call, then run the real {name}.
printf '%s\\t%s\\t%s\\t{name}\\t%s\\n' "$EPOCHREALTIME" "${{CJ_BENCH_TAG:-untagged}}" \\
  "${{SLURM_JOB_ID:+job}}" "${{*//[$'\\t\\n']/ }}" >> {log}
exec {real} "$@"
"""


def slurm_answers(timeout: float = 20) -> bool:
    """Whether the test cluster that scripts/start-slurm.sh started and marked is up, with a usable
    node. Any other SLURM (a real cluster's login node) is never benchmarked against: the same
    guard as the tests (tests/support.py), so nothing is submitted to a cluster we did not start."""
    if str(TESTS) not in sys.path:
        sys.path.append(str(TESTS))
    from support import check_test_cluster

    if check_test_cluster()[0] is None:
        return False
    try:
        result = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return result.returncode == 0 and any(
        s.rstrip("*~#") in ("idle", "mixed", "allocated", "completing") for s in result.stdout.split())


@dataclass(frozen=True)
class Call:
    time: float  # epoch seconds
    tag: str
    in_job: bool  # run from inside a job script (SLURM_JOB_ID was set)
    command: str
    args: str


class CountingPath:
    """A directory of counting wrappers and their log (a context manager; removed on exit)."""

    def __init__(self, commands: Iterable[str] = SLURM_COMMANDS) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="cj-bench-path-"))
        self.log = self.dir / "calls.log"
        self.log.touch()
        for name in commands:
            real = shutil.which(name)
            if real is None:
                continue
            wrapper = self.dir / name
            wrapper.write_text(_WRAPPER.format(name=name, real=real, log=self.log))
            wrapper.chmod(0o755)
        # Jobs read the log path from the wrapper itself; the directory must stay readable by them.
        self.dir.chmod(0o755)

    def env(self, tag: str, base: dict[str, str] | None = None) -> dict[str, str]:
        """An environment whose scheduler commands are counted under ``tag``."""
        env = dict(os.environ if base is None else base)
        env["PATH"] = f"{self.dir}{os.pathsep}{env.get('PATH', '')}"
        env["CJ_BENCH_TAG"] = tag
        return env

    def calls(self, tag: str | None = None, *, commands: Iterable[str] | None = None,
              since: float | None = None, until: float | None = None, in_job: bool | None = None) -> list[Call]:
        wanted = set(commands) if commands is not None else None
        out = []
        for line in self.log.read_text(errors="replace").splitlines():
            parts = line.split("\t", 4)
            if len(parts) != 5:
                continue
            try:
                call = Call(float(parts[0]), parts[1], parts[2] == "job", parts[3], parts[4])
            except ValueError:
                continue
            if tag is not None and call.tag != tag:
                continue
            if wanted is not None and call.command not in wanted:
                continue
            if since is not None and call.time < since:
                continue
            if until is not None and call.time > until:
                continue
            if in_job is not None and call.in_job != in_job:
                continue
            out.append(call)
        return out

    def count(self, tag: str | None = None, **filters: object) -> int:
        return len(self.calls(tag, **filters))  # type: ignore[arg-type]

    def close(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> CountingPath:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


def scancel(ids: Iterable[str] = (), *, name: str | None = None) -> None:
    """Cancel what a benchmark left behind (by ids or by job name); never raises."""
    args = ["scancel", *dict.fromkeys(str(i) for i in ids)]
    if name:
        args += ["--name", name]
    if len(args) == 1:
        return
    try:
        subprocess.run(args, capture_output=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        pass


def slurmctld_cpu() -> tuple[int, float] | None:
    """(pid, user+system CPU seconds so far) of slurmctld, from /proc; None when it cannot be read.
    Compare pids: other developers' tests restart the controller (a restart resets the figure)."""
    try:
        out = subprocess.run(["pidof", "slurmctld"], capture_output=True, text=True, timeout=5).stdout.split()
        pid = int(out[0])
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, subprocess.TimeoutExpired, ValueError, IndexError):
        return None
    return pid, (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def cpu_between(before: tuple[int, float] | None, after: tuple[int, float] | None) -> float | None:
    """slurmctld CPU seconds spent between two ``slurmctld_cpu()`` readings (None across a restart)."""
    if before is None or after is None or before[0] != after[0]:
        return None
    return after[1] - before[1]


def wait_until(predicate: Callable[[], bool], timeout: float, step: float = 0.5) -> bool:
    """Call ``predicate()`` until it is true or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(step)


NO_CLUSTER = "no SLURM cluster answers (start it: bash scripts/start-slurm.sh)"


def cluster_ready(timeout: float = 120) -> bool:
    """Whether the cluster answers, waiting out a restart (other developers' tests restart slurmctld)."""
    return wait_until(slurm_answers, timeout, step=3)
