"""The benchmark suite keeps working: its table says when a target is missed, the refresh benchmark
runs on the real widget (small sizes), and the counting wrapper counts calls made inside job
scripts. CI also runs the whole quick suite (`python -m benchmarks --quick`) before the tests; these
are the parts cheap enough to check here, with asserts on behaviour, never on timings."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from benchmarks import __main__ as bench_main
from benchmarks import bench_refresh, common
from benchmarks.cluster import CountingPath, slurm_answers
from benchmarks.common import Row, markdown

REQUIRE_SERVICES = os.environ.get("CELLINE_JOBS_REQUIRE_SERVICES") == "1"


def test_the_table_says_missed_and_never_hides_a_failed_measurement():
    rows = [Row("9. demo", "met", 1.0, "ms", 2.0, "naive", target="< 5 ms", met=True),
            Row("9. demo", "missed", 9.0, "ms", target="< 5 ms", met=False),
            Row("9. demo", "failed", float("nan"), "s", float("nan"), "other", note="client crashed")]
    lines = markdown(rows, {"cpu_model": "cpu", "cpus": 2, "python": "3.11"}, quick=True).splitlines()
    assert lines[0].startswith("Machine: cpu, 2 CPUs") and lines[0].endswith("(quick mode)")
    assert "| yes |" in lines[4] and "| 0.5 |" in lines[4]
    assert "| **MISSED** |" in lines[5]
    assert "| n/a s | n/a s (other) |" in lines[6] and lines[6].endswith("client crashed")


def test_refresh_benchmark_runs_on_the_real_widget():
    rows = bench_refresh.run(quick=True)
    assert [r.metric.split(",")[0].split(" (")[0] for r in rows] == [
        "CPU per tick", "bytes to the front end per tick", "CPU per tick", "bytes to the front end per tick"]
    for row in rows:
        assert row.ours > 0 and row.baseline is not None and row.baseline > row.ours
        assert isinstance(row.met, bool) and row.target
    steady_bytes = rows[1]
    assert "rows a tick" in steady_bytes.note  # the changed rows in the open views, no more


def test_main_runs_only_what_is_asked_and_writes_both_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                           capsys: pytest.CaptureFixture[str]):
    monkeypatch.setattr(common, "RESULTS_DIR", tmp_path)
    assert bench_main.main(["--quick", "--only", "refresh"]) == 0
    table = capsys.readouterr().out
    assert "3. refresh" in table and "1. calls per poll" not in table
    payload = json.loads((tmp_path / "quick.json").read_text())
    assert payload["quick"] is True and len(payload["rows"]) == 4
    assert (tmp_path / "quick.md").read_text() in table


@pytest.mark.slurm
def test_the_counting_wrapper_counts_calls_from_inside_job_scripts(tmp_path: Path):
    if not slurm_answers():
        if REQUIRE_SERVICES:
            pytest.fail("no SLURM cluster answers (CELLINE_JOBS_REQUIRE_SERVICES=1 forbids skipping)")
        pytest.skip("no SLURM cluster answers: start one with `scripts/start-slurm.sh`")
    with CountingPath() as counter:
        marker = tmp_path / "done"
        result = subprocess.run(
            ["sbatch", "--parsable", "-o", "/dev/null", "--wrap",
             f"squeue -h -j $SLURM_JOB_ID > /dev/null; touch {marker}"],
            env=counter.env("probe"), capture_output=True, text=True, timeout=60, check=True)
        job_id = result.stdout.strip().split(";")[0]
        try:
            deadline = time.monotonic() + 240  # the shared 2-CPU node may be busy with other tests' jobs
            while not marker.exists() and time.monotonic() < deadline:
                time.sleep(0.5)
        finally:
            subprocess.run(["scancel", job_id], capture_output=True, timeout=60)
        assert marker.exists(), "the probe job never ran"
        calls = counter.calls("probe")
        assert [(c.command, c.in_job) for c in calls] == [("sbatch", False), ("squeue", True)]
        assert counter.count("someone-else") == 0


def test_a_partial_run_never_replaces_the_full_table(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(common, "RESULTS_DIR", tmp_path)
    full = [Row("1. demo", "full", 1.0, "ms")]
    common.write_results(full, quick=False)
    common.write_results([Row("2. demo", "some", 2.0, "ms")], quick=False, partial=True)
    assert [r["metric"] for r in json.loads((tmp_path / "latest.json").read_text())["rows"]] == ["full"]
    assert [r["metric"] for r in json.loads((tmp_path / "partial.json").read_text())["rows"]] == ["some"]
