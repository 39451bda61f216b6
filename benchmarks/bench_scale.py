"""8. Scale: projects of 10,000, 100,000 and 1,000,000 jobs (10,000 only in quick mode).

- ``celline-jobs list --limit 20`` (and with ``--status failed --type Count``): the filters, the
  order and the limit are in the query, so the command reads 20 rows whatever the project's size.
  Timed as users run it (the project's own interpreter, bytecode cached), with its peak memory;
  baseline: the same command on a project of 20 jobs; and beside ``python -c pass`` of the same
  interpreter (the CLI's start-up target: at most twice that).
- The offline report: generation time and memory, file size, opening in Chromium, beside the report
  as it was before (``scale_report``).
- The dashboard (``scale_dashboard``).
- Store size, the filtered listing's query, `list --all --json` streamed, and the history per
  job and in chunks (``scale_store``).
- The daily backup: started by the first command of the day, copied by a detached process with
  SQLite's online backup. Measured: the copy's time and size, and whether the command that started
  it returned while the copy was still running (it must never wait for it). Then the retention:
  what 30 daily copies of that size leave on disk.

The stores come from ``bench_store``'s generator, built once and cached (``bigstore``).
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path

from celline_jobs_nb.core.paths import ProjectPaths
from celline_jobs_nb.store import backup as backups

from .bigstore import cached_store, clear_backups
from .common import Row, project_python
from .scale_dashboard import dashboard_rows, list_rows
from .scale_report import report_rows
from .scale_store import history_rows, size_rows
from .scale_store import list_rows as store_list_rows

REPEAT = 5
DAY = 86400.0


_TIME = shutil.which("time") or ("/usr/bin/time" if Path("/usr/bin/time").is_file() else None)


def _run(command: list[str], env: dict[str, str]) -> tuple[float, int]:
    """Wall seconds and peak RSS (bytes; 0 when unknown) of one run of ``command``. The memory comes
    from GNU time: a child forked straight from this process would report this process's own peak
    (Linux keeps the pre-exec high-water mark)."""
    with tempfile.NamedTemporaryFile("r") as rss_file:
        wrapped = [_TIME, "-f", "%M", "-o", rss_file.name, *command] if _TIME else command
        start = time.perf_counter()
        result = subprocess.run(wrapped, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, text=True)
        elapsed = time.perf_counter() - start
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed: {result.stderr.strip()[-500:]}")
        text = rss_file.read().strip().splitlines() if _TIME else []
    return elapsed, int(text[-1]) * 1024 if text and text[-1].isdigit() else 0


def _timed(command: list[str], env: dict[str, str]) -> tuple[float, int]:
    runs = [_run(command, env) for _ in range(REPEAT)]
    return statistics.median(r[0] for r in runs), max(r[1] for r in runs)


def _in_turns(commands: dict[str, list[str]], env: dict[str, str], repeat: int) -> dict[str, float]:
    """Median wall seconds of each command, run one after the other ``repeat`` times: a burst of
    load on the shared machine falls on all of them alike."""
    samples: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(repeat):
        for name, command in commands.items():
            started = time.perf_counter()
            subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, check=True)
            samples[name].append(time.perf_counter() - started)
    return {name: statistics.median(values) for name, values in samples.items()}


def _list(python: str, project: Path, *extra: str) -> list[str]:
    script = Path(python).with_name("celline-jobs")
    head = [str(script)] if script.is_file() else [python, "-m", "celline_jobs_nb"]
    return [*head, "--project", str(project), "list", "--limit", "20", *extra]


def _wait_for_copy(paths: ProjectPaths, timeout: float = 600.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if backups.list_backups(paths) and not backups.backup_running(paths):
            return True
        time.sleep(0.05)
    return False


def _retention(paths: ProjectPaths, size: int) -> tuple[int, int]:
    """Copies and bytes left by 30 daily backups of ``size`` bytes (sparse files, then pruned)."""
    with tempfile.TemporaryDirectory() as tmp:
        fake = ProjectPaths.of(tmp)
        fake.backups_dir.mkdir(parents=True)
        now = time.time()
        for day in range(30):
            name = f"jobs-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime(now - day * DAY - 60))}.db"
            with open(fake.backups_dir / name, "wb") as handle:
                handle.truncate(size)
        backups.prune_backups(fake, now=now)
        kept = backups.list_backups(fake)
        return len(kept), sum(p.stat().st_size for p in kept)


def run(quick: bool) -> list[Row]:
    python, how = project_python()
    rows: list[Row] = []
    with tempfile.TemporaryDirectory() as tmp:
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        env["PYTHONPYCACHEPREFIX"] = str(Path(tmp) / "pycache")
        small = Path(tmp) / "small"
        small.mkdir()
        from celline_jobs_nb import JobMonitor

        monitor = JobMonitor(small)
        monitor.wait([monitor.submit_job(f"j{i}", "true") for i in range(20)], timeout=120)
        _run(_list(python, small), env)  # fills the bytecode cache
        _wait_for_copy(monitor.paths)  # the small project's own first backup
        small_time, small_rss = _timed(_list(python, small), env)
        def timed(command: list[str]) -> tuple[float, int]:
            return _timed(command, env)

        for total in ((10_000,) if quick else (10_000, 100_000, 1_000_000)):
            project = cached_store(total)
            paths = ProjectPaths.of(project)
            clear_backups(project)
            # The first command of the day: a backup is due; the command starts the copier and returns.
            started = time.perf_counter()
            due_time, _rss = _run(_list(python, project), env)
            copying_after = backups.backup_running(paths) or not backups.list_backups(paths)
            copied = _wait_for_copy(paths)
            copy_time = time.perf_counter() - started
            made = backups.list_backups(paths)
            size = made[0].stat().st_size if made else 0
            # What the copy costs when made in the caller (the old way, and `celline-jobs db backup`).
            copy_started = time.perf_counter()
            backups.create_backup(paths)
            in_caller = time.perf_counter() - copy_started
            # Commands with no backup due.
            plain, rss = _timed(_list(python, project), env)
            waited = due_time - plain
            # Waited for the copy: returned only once it was done, and later by about what a copy costs
            # (the command that starts the copier takes the full path, not the quick list: not waiting).
            blocked = not copying_after and waited >= max(0.1, 0.5 * in_caller)
            filtered, filtered_rss = _timed(_list(python, project, "--status", "failed", "--type", "Count"), env)
            rows.append(Row("8. scale", f"`celline-jobs list --limit 20`, {total:,} jobs", plain * 1000, "ms",
                            small_time * 1000, "the same, 20 jobs", target="ratio <= 1.5",
                            met=plain <= 1.5 * small_time,
                            note=f"peak memory {rss / 2**20:.0f} MiB (20 jobs: {small_rss / 2**20:.0f} MiB); "
                                 f"`--status failed --type Count --limit 20`: {filtered * 1000:.0f} ms, "
                                 f"{filtered_rss / 2**20:.0f} MiB; with interpreter start-up; {python} ({how})"))
            paired = _in_turns({"list": _list(python, project), "pass": [python, "-c", "pass"]}, env, 2 * REPEAT)
            rows.append(Row("8. scale", f"`celline-jobs list --limit 20`, {total:,} jobs, beside interpreter start-up",
                            paired["list"] * 1000, "ms", paired["pass"] * 1000, "`python -c pass`, same interpreter",
                            target="ratio <= 2", met=paired["list"] <= 2 * paired["pass"],
                            note=f"median of {2 * REPEAT} run in turns with `python -c pass`; every job has ended: "
                                 "the store read without the monitor (quicklist)"))
            rows.append(Row("8. scale", f"daily backup of {total:,} jobs: the command that starts it", due_time * 1000,
                            "ms", plain * 1000, "the same command, no backup due", target="never waits for the copy",
                            met=copied and not blocked,
                            note=f"copy {size / 2**20:,.0f} MiB (SQLite online backup) by a detached low-priority "
                                 f"process, done {copy_time:.2f} s after the command started; the command returned "
                                 f"while it was {'still running' if copying_after else 'done'}; the same copy in the "
                                 f"caller (as before, or `db backup`): {in_caller:.2f} s"))
            count, kept_bytes = _retention(paths, size)
            rows.append(Row("8. scale", f"backups kept after 30 daily copies, {total:,} jobs", kept_bytes / 2**30,
                            "GiB", target=f"<= {backups.MAX_TOTAL_BYTES / 2**30:.0f} GiB or the newest two",
                            met=kept_bytes <= backups.MAX_TOTAL_BYTES or count <= backups.KEEP_NEWEST,
                            note=f"{count} copies (the newest two, then one a week while under "
                                 f"{backups.MAX_TOTAL_BYTES / 2**30:.0f} GiB); before: 7 copies, "
                                 f"{7 * size / 2**30:.1f} GiB"))
            clear_backups(project)
            for name, part, extra in (("dashboard", dashboard_rows, ()), ("list", list_rows, (timed,)),
                                      ("store list", store_list_rows, (timed,)), ("store size", size_rows, ()),
                                      ("report", report_rows, ()), ("history", history_rows, ())):
                rows.extend(_part(name, total, part, project, total, *extra))
    return rows


def _part(name: str, total: int, rows: Callable[..., list[Row]], *args: object) -> list[Row]:
    """One contributor's rows; when it crashes, a row that says so (and the traceback on stderr),
    so the other rows of the section still come out."""
    try:
        return rows(*args)
    except Exception as exc:  # any crash of a benchmark becomes a visible MISSED row
        traceback.print_exc()
        return [Row("8. scale", f"{name} rows, {total:,} jobs", 0, "", target="ran", met=False,
                    note=f"crashed: {type(exc).__name__}: {str(exc)[:200]}")]
