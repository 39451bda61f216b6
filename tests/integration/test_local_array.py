"""Arrays on the local executor run for real: one task per index, each with $CELLINE_JOBS_ARRAY_INDEX,
as rows <job_id>_<index> (like SLURM and PBS arrays), at most %N at once; the array's row sums up."""

from __future__ import annotations

import itertools
import subprocess
import sys
import time
from pathlib import Path

from celline_jobs_nb import JobMonitor, JobStatus


def wait_for(condition, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def test_submit_array_1_3_runs_three_tasks_with_their_index(project: Path, tmp_path: Path):
    (project / ".celline").mkdir()
    marks = tmp_path / "marks"
    marks.mkdir()
    command = f'echo "task $CELLINE_JOBS_ARRAY_INDEX"; touch {marks}/$CELLINE_JOBS_ARRAY_INDEX.$$; ' \
              '[ "$CELLINE_JOBS_ARRAY_INDEX" != 2 ] || exit 5'
    result = subprocess.run([sys.executable, "-m", "celline_jobs_nb", "--project", str(project), "submit",
                             "--array", "1-3", "--name", "per sample", "--command", command],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    parent_id = result.stdout.strip()
    monitor = JobMonitor(project)
    monitor.wait([parent_id], timeout=60)
    tasks = {j.job_id: j for j in monitor.list_jobs() if j.array_parent == parent_id}
    assert sorted(tasks) == [f"{parent_id}_1", f"{parent_id}_2", f"{parent_id}_3"]
    assert sorted(p.name.split(".")[0] for p in marks.iterdir()) == ["1", "2", "3"]  # each ran once
    for index in (1, 2, 3):
        task = tasks[f"{parent_id}_{index}"]
        assert task.array_index == index and task.name == "per sample"
        assert monitor.logs(task.job_id).strip() == f"task {index}"  # its own log
    assert [tasks[f"{parent_id}_{i}"].status for i in (1, 2, 3)] == [JobStatus.COMPLETED, JobStatus.FAILED,
                                                                      JobStatus.COMPLETED]
    parent = monitor.get_job(parent_id)
    assert (parent.status, parent.exit_code, parent.reason) == (JobStatus.FAILED, 5, "1 of 3 array tasks failed")
    assert parent.metadata["array_tasks"] == {"total": 3, "completed": 2, "failed": 1}


def test_percent_n_runs_at_most_n_tasks_at_once(monitor: JobMonitor, tmp_path: Path):
    spans = tmp_path / "spans"
    spans.mkdir()
    command = f"s=$(date +%s.%N); sleep 0.5; echo $s $(date +%s.%N) > {spans}/$CELLINE_JOBS_ARRAY_INDEX"
    parent_id = monitor.submit_job("one at a time", command, array="1-3%1")
    monitor.wait([parent_id], timeout=60)
    assert monitor.get_job(parent_id).status is JobStatus.COMPLETED
    intervals = sorted(tuple(map(float, p.read_text().split())) for p in spans.iterdir())
    assert len(intervals) == 3
    assert all(earlier[1] <= later[0] for earlier, later in itertools.pairwise(intervals))  # never overlapping


def test_cancelling_the_array_stops_the_running_task_and_starts_no_other(monitor: JobMonitor, tmp_path: Path):
    marks = tmp_path / "marks"
    marks.mkdir()
    parent_id = monitor.submit_job("long", f"touch {marks}/$CELLINE_JOBS_ARRAY_INDEX; sleep 60", array="1-3%1")
    wait_for(lambda: (marks / "1").exists())
    monitor.cancel_job(parent_id, wait=30)
    monitor.wait([parent_id], timeout=60)
    tasks = sorted((j for j in monitor.list_jobs() if j.array_parent == parent_id), key=lambda j: j.array_index)
    assert [t.status for t in tasks] == [JobStatus.CANCELLED] * 3
    assert [p.name for p in marks.iterdir()] == ["1"]  # tasks 2 and 3 never started
    parent = monitor.get_job(parent_id)
    assert parent.status is JobStatus.CANCELLED and parent.reason == "3 of 3 array tasks cancelled (cancelled by user)"


def test_cancelling_one_task_leaves_the_others_running(monitor: JobMonitor, tmp_path: Path):
    marks = tmp_path / "marks"
    marks.mkdir()
    command = f'touch {marks}/$CELLINE_JOBS_ARRAY_INDEX; [ "$CELLINE_JOBS_ARRAY_INDEX" = 1 ] && sleep 60; sleep 1'
    parent_id = monitor.submit_job("two", command, array="1-2")
    wait_for(lambda: (marks / "1").exists() and monitor.get_job(f"{parent_id}_1").status is JobStatus.RUNNING)
    monitor.cancel_job(f"{parent_id}_1", wait=30)
    monitor.wait([parent_id], timeout=60)
    assert monitor.get_job(f"{parent_id}_1").status is JobStatus.CANCELLED
    assert monitor.get_job(f"{parent_id}_2").status is JobStatus.COMPLETED
    assert monitor.get_job(parent_id).reason == "1 of 2 array tasks cancelled"
