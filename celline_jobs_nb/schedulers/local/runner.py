"""The wrapper that runs one local job: ``python -m celline_jobs_nb.schedulers.local.runner PROJECT JOB_ID``.

Started detached (its own session) by ``LocalScheduler``. It claims the job in the store (one
wrapper per job), then runs the job's command with ``bash -c`` under a small recording shell in a
new process group, output to ``logs/<job_id>.log``; on SIGTERM (a cancel) it forwards SIGTERM and
SIGCONT to that group and SIGKILLs it after a grace period. When the command ends it writes
``logs/<job_id>.exitcode`` first (the evidence any later monitor trusts; the recording shell wrote
it already, for a wrapper that would not live to), then the final state, then starts the next
waiting local jobs.
"""

from __future__ import annotations

import errno
import os
import resource
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from ...core.errors import CellineJobsError
from ...core.jobfiles import ExitRecord, write_exit_file
from ...core.models import JobInfo, JobStatus, utcnow
from ...core.paths import ENV_JOB_ID, ENV_PROGRESS_FILE, ENV_PROJECT, ProjectPaths
from ...store.sqlite import JobStore
from ..base import SchedulerContext
from .adapter import (
    CANCEL_GRACE_SECONDS,
    RUN_CLAIM_META_KEY,
    LocalScheduler,
    final_update_from_exit,
    process_identity,
    start_time_of,
)

#: How long a wrapper keeps trying to write a finished command's exit-code file on a full disk.
KEEP_EXIT_RECORD_SECONDS = 7 * 24 * 3600.0

#: The command's process group starts with this shell: it runs the command, then writes the
#: exit-code file itself (atomically; "shell": true: a status above 128 means signal status-128),
#: so a command that outlives a killed wrapper still leaves how it ended. Its TERM trap lets it
#: outlive a cancelled command (which keeps the default handler) and record that end too.
RECORDER = r"""trap 'celline_terminated=1' TERM
/bin/bash -c "$1"
celline_rc=$?
LC_ALL=C
celline_tmp="$2.tmp.$$"
printf '{"exit_code": %d, "signal": null, "end_time": %s, "shell": true}\n' \
  "$celline_rc" "${EPOCHREALTIME:-$(command -p date +%s)}" >"$celline_tmp" \
  && command -p mv -f -- "$celline_tmp" "$2"
exit "$celline_rc"
"""


def run(project: str, job_id: str) -> int:
    paths = ProjectPaths.of(project)
    store = JobStore(paths)
    job = store.get(job_id)
    if job.status.final:
        return 0  # cancelled before it started: run nothing
    # The store records which wrapper runs the job before anything runs: a second wrapper (a
    # relaunch racing a slow start) runs nothing, and one whose claim the store refused (a full
    # disk) runs nothing either; the job is then relaunched later.
    me = {"pid": os.getpid(), "started": process_identity(os.getpid())}
    if not store.claim_flag(job.job_id, RUN_CLAIM_META_KEY, me):
        return 0
    claimed = store.get(job_id)
    if claimed.status.final or claimed.metadata.get("cancel_requested"):
        return 0  # cancelled while this wrapper started: the poller records it cancelled
    paths.logs_dir.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env.update({str(k): str(v) for k, v in (job.metadata.get("env") or {}).items()})
    env.update({ENV_JOB_ID: job.job_id, ENV_PROJECT: str(paths.root),
                ENV_PROGRESS_FILE: str(paths.progress_file(job.job_id))})
    cwd = job.working_dir if job.working_dir and Path(job.working_dir).is_dir() else str(paths.root)

    terminate = threading.Event()

    def on_sigterm(_signum: int, _frame: object) -> None:
        terminate.set()

    signal.signal(signal.SIGTERM, on_sigterm)
    signal.signal(signal.SIGINT, on_sigterm)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)  # the terminal that started the CLI may close
    if job.metadata.get("array") and job.array_parent is None:  # a local array: one task per index
        from .array import run_array

        return run_array(paths, store, job, terminate)

    with open(paths.log_file(job.job_id), "ab", buffering=0) as log_handle:
        try:
            child = subprocess.Popen(
                ["/bin/bash", "-c", RECORDER, "celline-job", job.command, str(paths.exit_file(job.job_id))],
                cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                stdout=log_handle, stderr=subprocess.STDOUT, preexec_fn=_child_setup,
            )
        except OSError as exc:
            log_handle.write(f"celline-jobs: could not start the command: {exc}\n".encode())
            write_exit_file(paths.exit_file(job.job_id), 127, None)
            store.update(job.job_id, JobStatus.FAILED, source="runner", exit_code=127, end_time=utcnow(),
                         reason=f"could not start the command: {exc}")
            return 1
        try:
            store.update(
                job.job_id, JobStatus.RUNNING, source="runner", start_time=utcnow(), native_id=str(child.pid),
                metadata={"pid": child.pid, "pid_started": start_time_of(child.pid), "pgid": child.pid,
                          "runner_pid": os.getpid(), "runner_started": me["started"],
                          "host": socket.gethostname()},
            )
        except CellineJobsError:
            pass  # the command runs: wait for it and record its end (its claim names this wrapper)
        returncode, rusage = _wait(child, terminate)

    if returncode < 0:
        exit_code, sig = None, -returncode
    elif returncode > 128:  # the recorder shell passes on the command's status: 128+N is signal N
        exit_code, sig = None, returncode - 128
    else:
        exit_code, sig = returncode, None
    _keep_exit_record(paths.exit_file(job.job_id), exit_code, sig)
    job = store.get(job.job_id)
    if terminate.is_set() and not job.metadata.get("cancel_requested"):
        store.update(job.job_id, None, source="runner", metadata={"cancel_requested": True})
        job = store.get(job.job_id)
    update = final_update_from_exit(job, ExitRecord(exit_code, sig, utcnow()))
    update.source = "runner"
    update.fields["metadata"] = {**(update.fields.get("metadata") or {}), "usage": _final_usage(job, rusage)}
    store.apply([update])
    # Hand the freed slot to the next waiting job, with no notebook or CLI needed.
    LocalScheduler(SchedulerContext(paths, store)).dispatch()
    return 0


def _child_setup() -> None:
    """In the child before exec: its own process group (cancel signals the whole job tree, not the
    wrapper) and default SIGHUP handling (the wrapper ignores it)."""
    os.setpgrp()
    signal.signal(signal.SIGHUP, signal.SIG_DFL)


def _wait(child: subprocess.Popen[bytes], terminate: threading.Event) -> tuple[int, resource.struct_rusage]:
    """Wait for the command (with its resource use); on a cancel, SIGTERM its group, then SIGKILL
    after the grace period. Returns (returncode like Popen's, rusage of the command's tree)."""
    kill_at: float | None = None
    try:  # readable the moment the command ends: its end is recorded at once, not up to 0.1 s later
        pidfd: int | None = os.pidfd_open(child.pid)
    except (AttributeError, OSError):  # Linux < 5.3
        pidfd = None
    try:
        while True:
            pid, status, rusage = os.wait4(child.pid, os.WNOHANG)
            if pid == child.pid:
                child.returncode = os.waitstatus_to_exitcode(status)  # tell Popen it is reaped
                if terminate.is_set():
                    _end_group(child.pid)  # a cancel ends the whole group, not only its first process
                return child.returncode, rusage
            if terminate.is_set() and kill_at is None:
                _killpg(child.pid, signal.SIGTERM)
                _killpg(child.pid, signal.SIGCONT)  # a stopped (SIGSTOP) group acts on it too
                kill_at = time.monotonic() + CANCEL_GRACE_SECONDS
            elif kill_at is not None and time.monotonic() >= kill_at:
                _killpg(child.pid, signal.SIGKILL)
                kill_at = float("inf")
            if pidfd is not None:
                select.select([pidfd], [], [], 0.1)
            elif terminate.is_set():
                time.sleep(0.1)
            else:
                terminate.wait(0.1)
    finally:
        if pidfd is not None:
            os.close(pidfd)


def _final_usage(job: JobInfo, rusage: resource.struct_rusage) -> dict[str, object]:
    """The kernel's exact totals for the finished command (every waited-for descendant included),
    merged with the peak the poller sampled (ru_maxrss is the largest single process, not the sum)."""
    usage = dict(job.metadata.get("usage") or {})
    usage["cpu_seconds"] = round(rusage.ru_utime + rusage.ru_stime, 3)
    usage["max_rss_bytes"] = max(int(usage.get("max_rss_bytes") or 0), rusage.ru_maxrss * 1024)
    if job.start_time is not None:
        usage["elapsed_seconds"] = round(max(0.0, time.time() - job.start_time.timestamp()), 3)
    usage["alloc_cpus"] = job.resources.cpus or 1
    if job.resources.memory:
        usage["req_mem_bytes"] = job.resources.memory
    usage["cpu_percent"] = 0.0
    usage["rss_bytes"] = 0
    return usage


def _keep_exit_record(path: Path, exit_code: int | None, sig: int | None) -> None:
    """Write the exit-code file; on a full disk (or quota) keep trying until there is room. A job
    whose end nobody recorded would be called "lost" and retried: its command would run twice.
    While this wrapper waits, the job shows running."""
    delay, deadline = 0.2, time.monotonic() + KEEP_EXIT_RECORD_SECONDS
    while True:
        try:
            write_exit_file(path, exit_code, sig)
            return
        except FileNotFoundError:
            return  # the project (its logs/) was deleted while the job ran: nobody is left to tell
        except OSError as exc:
            if exc.errno not in (errno.ENOSPC, errno.EDQUOT) or time.monotonic() >= deadline:
                raise
        time.sleep(delay)
        delay = min(delay * 2, 5.0)


def _end_group(pgid: int, timeout: float = 5.0) -> None:
    """SIGKILL what is left of a cancelled job's group and wait (bounded) until it is gone."""
    _killpg(pgid, signal.SIGKILL)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except (ProcessLookupError, PermissionError):
            return
        time.sleep(0.02)


def _killpg(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print("usage: python -m celline_jobs_nb.schedulers.local.runner PROJECT JOB_ID", file=sys.stderr)
        return 2
    try:
        return run(args[0], args[1])
    except CellineJobsError as exc:
        print(f"celline-jobs runner: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
