"""The local executor: runs jobs on this machine, at most ``max_parallel`` at once.

Each job runs under a small detached wrapper process (``runner.py``) in its own session, so
it survives the notebook kernel or CLI that started it. The wrapper records the pids, sends the
command's output to ``logs/<job_id>.log``, writes ``logs/<job_id>.exitcode`` when the command
ends, records the final state, and then starts the next waiting jobs itself: pending jobs start
when a slot frees even if no notebook or CLI is running. The slot claim is one SQLite
transaction, so several processes never start more than ``max_parallel`` jobs together.

A monitor that starts later (a new kernel) re-attaches: it reads exit-code files of jobs that
ended meanwhile and checks the recorded pids (with their start times, so a reused pid is never
mistaken for our job) of those still running.

Never twice: a wrapper runs a job only after the store granted it the job's one run claim; the
command's process group starts with a shell that writes the exit-code file itself, so a command
outliving a killed wrapper is followed to its real end; a job is "lost" (and retried) only once
no process of its group is left.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import psutil

from ...core import reasons
from ...core.errors import ParseError
from ...core.exits import final_update_from_exit, signal_name  # noqa: F401  (re-exported)
from ...core.jobfiles import read_exit_file, read_job_progress
from ...core.models import JobInfo, JobStatus, utcnow
from ...core.paths import ProjectPaths
from ...core.safeio import warn_once
from ...core.settings import MAX_PARALLEL_META_KEY, celline_nthread
from ...core.updates import JobUpdate
from ...core.usage import UsageSample, merge_usage
from ..base import PollResult, SchedulerAdapter

if TYPE_CHECKING:
    from ...store.sqlite import JobStore

log = logging.getLogger("celline.job")

CANCEL_GRACE_SECONDS = 10.0
#: A claimed job that no wrapper has claimed to run by then is launched again (a second wrapper
#: for a slow first one runs nothing: only one claim to run it is ever granted).
LAUNCH_TIMEOUT_SECONDS = 10.0
#: Set (pid and start time) by the one wrapper that runs a job, in the store, before its command starts.
RUN_CLAIM_META_KEY = "run_claim"
#: The wrapper's module, run with ``python -m`` (``schedulers/local_runner.py`` still answers to the
#: old path, for wrappers of an earlier version that start the next waiting jobs after an upgrade).
RUNNER_MODULE = "celline_jobs_nb.schedulers.local.runner"


def runner_argv(paths: ProjectPaths, job_id: str) -> list[str]:
    """The command line of the detached wrapper that runs ``job_id``."""
    return [sys.executable, "-m", RUNNER_MODULE, str(paths.root), job_id]


def default_max_parallel(paths: ProjectPaths) -> int:
    """celline's ``[execution] nthread`` from setting.toml when present, else the CPU count."""
    return celline_nthread(paths) or os.cpu_count() or 1


def max_parallel_of(store: JobStore) -> int:
    value = store.get_meta(MAX_PARALLEL_META_KEY)
    if value is not None and value.isdigit() and int(value) > 0:
        return int(value)
    return default_max_parallel(store.paths)


def process_identity(pid: int) -> float | None:
    """The process's start time, or None when it does not exist (zombies count as gone)."""
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return None
        return proc.create_time()
    except (psutil.NoSuchProcess, psutil.AccessDenied, ValueError):
        return None


def start_time_of(pid: int) -> float | None:
    """The start time of a process we have not reaped yet, also once it has exited (a zombie): what
    identifies a job's group later, when its pid may belong to another program."""
    try:
        return psutil.Process(pid).create_time()
    except (psutil.NoSuchProcess, psutil.AccessDenied, ValueError):
        return None


def is_same_process(pid: object, started: object) -> bool:
    """Whether ``pid`` is still the process that started at ``started`` (pids get reused)."""
    if not isinstance(pid, int) or not isinstance(started, (int, float)):
        return False
    now_started = process_identity(pid)
    return now_started is not None and abs(now_started - float(started)) < 1.0


def runner_of(meta: dict[str, Any]) -> tuple[object, object]:
    """(pid, start time) of the wrapper that runs a job: the one whose claim the store holds, else
    the one launched for it."""
    claim = meta.get(RUN_CLAIM_META_KEY)
    if isinstance(claim, dict) and isinstance(claim.get("pid"), int):
        return claim["pid"], claim.get("started")
    return meta.get("runner_pid"), meta.get("runner_started")


def job_group_alive(meta: dict[str, Any], groups: dict[int, list[int]] | None = None) -> bool:
    """Whether any process of a job's command still runs: any member of its process group
    (``pgid``), or, when its wrapper died before recording that, of the wrapper's session. The only
    proof that a job whose wrapper died is over ("lost" and retried only then).

    Identity is pid + start time: while the group's first process lives it must be the one
    recorded; once it is gone, Linux gives its pid to no new process while any member of its group
    (or session) lives, so every member left started after it is one of ours."""
    runner, runner_started = runner_of(meta)
    if isinstance(meta.get("pgid"), int):
        ident, started, of = int(meta["pgid"]), meta.get("pid_started"), os.getpgid
    elif isinstance(runner, int):
        ident, started, of, groups = runner, runner_started, os.getsid, None
    else:
        return False
    if ident <= 1:
        return False
    first = process_identity(ident)
    known = isinstance(started, (int, float))
    if first is not None:
        return not known or abs(first - float(started)) < 1.0
    members = groups.get(ident, []) if groups is not None else _members(ident, of)
    for pid in members:
        member_started = process_identity(pid)
        if member_started is not None and (not known or member_started >= float(started) - 1.0):
            return True
    return False


def _members(ident: int, of: Callable[[int], int]) -> list[int]:
    found = []
    for pid in psutil.pids():
        try:
            if of(pid) == ident:
                found.append(pid)
        except (ProcessLookupError, PermissionError):
            continue
    return found


class LocalScheduler(SchedulerAdapter):
    name = "local"
    queues_itself = True
    records_own_ends = True
    min_poll_interval = 0.5
    default_poll_interval = 2.0

    @property
    def max_parallel(self) -> int:
        return max_parallel_of(self.context.store)

    def submit(self, job: JobInfo) -> JobUpdate:
        # Local jobs wait in the store as pending; dispatch() starts them when a slot is free.
        return JobUpdate(job.job_id, None, {"submit_time": utcnow()}, source="submit")

    def dispatch(self) -> list[JobUpdate]:
        store = self.context.store
        claimed, _cancelled = store.claim_pending(self.name, self.max_parallel)
        updates = []
        for job in claimed:
            updates.append(self._launch(job))
        return updates

    def _launch(self, job: JobInfo) -> JobUpdate:
        """Start the detached wrapper for a claimed (queued) job."""
        paths = self.context.paths
        try:
            proc = subprocess.Popen(
                runner_argv(paths, job.job_id),
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                start_new_session=True, close_fds=True, cwd=str(paths.root),
            )
        except OSError as exc:
            return JobUpdate(job.job_id, JobStatus.FAILED,
                             {"reason": f"could not start the job wrapper: {exc}", "end_time": utcnow()}, "dispatch")
        _reap_later(proc)
        started = process_identity(proc.pid)
        return JobUpdate(job.job_id, None,
                         {"metadata": {"runner_pid": proc.pid, "runner_started": started,
                                       "launched_at": time.time()}}, "dispatch")

    def poll(self, jobs: Sequence[JobInfo]) -> PollResult:
        result = PollResult()
        groups = process_groups() if any(j.status is JobStatus.RUNNING for j in jobs) else {}
        for job in jobs:
            update = self._poll_one(job, groups)
            if update is not None:
                result.updates.append(update)
        return result

    def _poll_one(self, job: JobInfo, groups: dict[int, list[int]]) -> JobUpdate | None:
        paths = self.context.paths
        unreadable: str | None = None
        try:
            record = read_exit_file(paths.exit_file(job.job_id))
        except ParseError as exc:
            unreadable = f"unreadable exit-code file: {exc}"
            warn_once(log, job.job_id, unreadable)
            record = None
        if record is not None:
            if job.metadata.get("cancel_requested") and job_group_alive(job.metadata, groups or None):
                # Cancelled means stopped: not before the rest of its group is gone too.
                if not is_same_process(*runner_of(job.metadata)):
                    _kill_after_grace(job.metadata, groups or None)
                return None
            return final_update_from_exit(job, record)
        if job.status is JobStatus.PENDING:
            return None
        if job.status is JobStatus.QUEUED and job.array_parent is not None and is_same_process(
                job.metadata.get("array_runner_pid"), job.metadata.get("array_runner_started")):
            return None  # a local array task whose array's wrapper (alive) starts it in its turn
        meta = job.metadata
        runner_alive = is_same_process(*runner_of(meta))
        # A command outliving its wrapper is followed (re-attached) until its whole group is gone.
        command_alive = not runner_alive and job_group_alive(meta, groups or None)
        if runner_alive or command_alive:
            if command_alive and meta.get("cancel_requested"):
                _kill_after_grace(meta, groups or None)  # the cancelling process may have exited before its SIGKILL
            if job.status is not JobStatus.RUNNING:
                return None
            fields: dict[str, object] = {}
            progress = read_job_progress(self.context.paths, job.job_id, job.progress)
            if progress is not None:
                fields["progress"] = progress
            sample = sample_processes(groups.get(meta.get("pgid"), []), meta.get("pid"))
            if sample is not None:
                started = job.start_time.timestamp() if job.start_time else None
                fields["metadata"] = {"usage": merge_usage(meta.get("usage"), sample, started,
                                                           job.resources.cpus or 1, job.resources.memory)}
            return JobUpdate(job.job_id, None, fields) if fields else None
        if job.status is JobStatus.QUEUED and "pid" not in meta and RUN_CLAIM_META_KEY not in meta:
            if meta.get("cancel_requested"):
                # Cancelled while its wrapper was starting (the SIGTERM may have come before the
                # wrapper's handler): nothing ran, and nothing may be launched again.
                return JobUpdate(job.job_id, JobStatus.CANCELLED,
                                 {"reason": reasons.CANCELLED_BY_USER, "end_time": utcnow()}, "poll")
            launched = meta.get("launched_at")
            if not isinstance(launched, (int, float)):
                launched = (job.updated_at or job.created_at).timestamp()
            if time.time() - launched > LAUNCH_TIMEOUT_SECONDS:
                # No wrapper claimed it (the launcher died, or the store refused the claim): its
                # command never started. A second wrapper cannot run it twice: one claim wins.
                return self._launch(job)
            return None
        # The wrapper and every process of the group are gone. The group's first process (and the
        # wrapper) write the exit file before they exit, so read again
        # (it may have appeared between our first look and the liveness check).
        try:
            record = read_exit_file(paths.exit_file(job.job_id))
        except ParseError as exc:
            unreadable, record = f"unreadable exit-code file: {exc}", None
        if record is not None:
            return final_update_from_exit(job, record)
        if meta.get("cancel_requested"):
            return JobUpdate(job.job_id, JobStatus.CANCELLED,
                             {"reason": reasons.CANCELLED_BY_USER, "end_time": utcnow()}, "poll")
        if unreadable is not None:
            # The job (or someone) wrote something else where its exit code belongs: its end is
            # known, its exit status is not. Not "lost", so it is not retried as if it vanished.
            return JobUpdate(job.job_id, JobStatus.FAILED, {"reason": unreadable[:500], "end_time": utcnow()}, "poll")
        return JobUpdate(job.job_id, JobStatus.FAILED, {
            "reason": "lost: every process of the job is gone and none recorded an exit code (wrapper killed?)",
            "end_time": utcnow(),
        }, "poll")

    def cancel(self, jobs: Sequence[JobInfo]) -> list[JobUpdate]:
        never_started: list[JobUpdate] = []
        started: list[tuple[JobInfo, object, bool, bool]] = []
        for job in jobs:
            runner, runner_started = runner_of(job.metadata)
            runner_alive = is_same_process(runner, runner_started)
            command_alive = not runner_alive and job_group_alive(job.metadata)
            if job.status in (JobStatus.PENDING, JobStatus.QUEUED) and not runner_alive and not command_alive:
                # Never started: cancelled without running. The wrapper checks the status before
                # it runs anything, so a racing launch also stops here.
                never_started.append(JobUpdate(job.job_id, JobStatus.CANCELLED,
                                               {"reason": reasons.CANCELLED_BY_USER, "end_time": utcnow(),
                                                "metadata": {"cancel_requested": True}}, "cancel"))
            else:
                started.append((job, runner, runner_alive, command_alive))
        if never_started and started:
            # Stored before any running job is stopped: a wrapper whose command ends starts the next
            # waiting job, and must not find one of these still waiting. Stored once: not returned.
            self.context.store.apply(never_started)
            never_started = []
        updates = never_started
        for job, runner, runner_alive, command_alive in started:
            meta = job.metadata
            # Mark first so whoever records the end (wrapper or poller) says "cancelled", not "failed".
            self.context.store.update(job.job_id, None, source="cancel",
                                      metadata={"cancel_requested": True, "cancel_sent_at": time.time()})
            # Every signal goes with SIGCONT: a stopped (SIGSTOP) wrapper or command would hold it.
            # The end is recorded only once the group is gone (by the wrapper, or by a poll).
            if runner_alive and isinstance(runner, int):
                _signal(runner, signal.SIGTERM, group=False)  # the wrapper escalates to SIGKILL
                _signal(runner, signal.SIGCONT, group=False)
                if job_group_alive(meta):
                    for pgid in _job_pgids(meta):
                        _signal(pgid, signal.SIGCONT, group=True)
            elif command_alive:
                for pgid in _job_pgids(meta):
                    _terminate_group_later(pgid, meta)
            else:
                updates.append(JobUpdate(job.job_id, JobStatus.CANCELLED,
                                         {"reason": reasons.CANCELLED_BY_USER, "end_time": utcnow()}, "cancel"))
        return updates


def process_groups() -> dict[int, list[int]]:
    """Every process group on the machine and its pids (one scan per poll, for all jobs)."""
    groups: dict[int, list[int]] = {}
    for pid in psutil.pids():
        try:
            groups.setdefault(os.getpgid(pid), []).append(pid)
        except (ProcessLookupError, PermissionError):
            continue
    return groups


def sample_processes(group_pids: Sequence[int], pid: object) -> UsageSample | None:
    """CPU time, memory and I/O of every process of a job: its process group, plus descendants of
    its first process that moved to a group of their own."""
    processes: dict[int, psutil.Process] = {}
    for member in group_pids:
        try:
            processes[member] = psutil.Process(member)
        except psutil.Error:
            continue
    if isinstance(pid, int):
        try:
            root = processes.get(pid) or psutil.Process(pid)
            processes[root.pid] = root
            for child in root.children(recursive=True):
                processes.setdefault(child.pid, child)
        except psutil.Error:
            pass
    if not processes:
        return None
    cpu = 0.0
    rss = read = write = 0
    for proc in processes.values():
        try:
            with proc.oneshot():
                times = proc.cpu_times()
                # Reaped children's time is in their parent's children_* fields; live ones count themselves.
                cpu += times.user + times.system + times.children_user + times.children_system
                rss += proc.memory_info().rss
                try:
                    io = proc.io_counters()
                    read += io.read_bytes
                    write += io.write_bytes
                except (psutil.AccessDenied, AttributeError, NotImplementedError):
                    pass
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return UsageSample(time.time(), cpu, rss, read, write)


def _signal(pid: int, sig: int, *, group: bool) -> None:
    try:
        if group:
            os.killpg(pid, sig)
        else:
            os.kill(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _job_pgids(meta: dict[str, Any]) -> set[int]:
    """The process groups to signal for a job: its recorded one, else (its wrapper died before
    recording it) those of the processes left in the wrapper's session."""
    if isinstance(meta.get("pgid"), int):
        return {int(meta["pgid"])} if meta["pgid"] > 1 else set()
    runner = runner_of(meta)[0]
    pgids = set()
    for pid in _members(runner, os.getsid) if isinstance(runner, int) and runner > 1 else []:
        try:
            pgids.add(os.getpgid(pid))
        except (ProcessLookupError, PermissionError):
            continue
    return {p for p in pgids if p > 1}


def provably_the_jobs(meta: dict[str, Any], groups: dict[int, list[int]] | None = None) -> bool:
    """Whether a job's group (or its dead wrapper's session) is, by pid and start time, still the
    job's: the only case a SIGKILL goes to it. Pids are reused, and a group whose start time was never
    recorded could by now be any program's (a daemon is its own group's first process)."""
    started = meta.get("pid_started") if isinstance(meta.get("pgid"), int) else runner_of(meta)[1]
    return isinstance(started, (int, float)) and job_group_alive(meta, groups)


def _kill_after_grace(meta: dict[str, Any], groups: dict[int, list[int]] | None = None) -> None:
    """SIGKILL a cancelled job's group whose wrapper is gone, once the grace period has passed."""
    sent = meta.get("cancel_sent_at")
    if isinstance(sent, (int, float)) and time.time() - sent < CANCEL_GRACE_SECONDS:
        return
    if not provably_the_jobs(meta, groups):
        return
    for pgid in _job_pgids(meta):
        _signal(pgid, signal.SIGKILL, group=True)


def _terminate_group_later(pgid: int, meta: dict[str, Any], grace: float = CANCEL_GRACE_SECONDS) -> None:
    """SIGTERM (with SIGCONT, so a stopped group acts on it) a process group now and SIGKILL it
    after ``grace`` if it is still the job's (for jobs whose wrapper died; later polls kill it if
    this process exits first)."""
    if not provably_the_jobs(meta):
        return
    _signal(pgid, signal.SIGTERM, group=True)
    _signal(pgid, signal.SIGCONT, group=True)

    def escalate() -> None:
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            try:
                os.killpg(pgid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.1)
        if provably_the_jobs(meta):
            _signal(pgid, signal.SIGKILL, group=True)

    threading.Thread(target=escalate, name=f"celline-kill-{pgid}", daemon=True).start()


_children: list[subprocess.Popen[bytes]] = []
_children_lock = threading.Lock()


def _reap_later(proc: subprocess.Popen[bytes]) -> None:
    """Keep wrapper handles so finished wrappers are reaped (no zombies in a long-lived kernel)."""
    with _children_lock:
        _children[:] = [p for p in _children if p.poll() is None]
        _children.append(proc)
