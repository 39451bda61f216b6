"""The process that submitted 50 local and 50 SLURM jobs is SIGKILLed; a new monitor in a new
process re-attaches all 100 and records each one's real final state and exit code, including
the jobs that ended while no monitor ran."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slurm, pytest.mark.timeout(400)]

SUBMITTER = textwrap.dedent("""
    import json, sys, time
    from celline_jobs_nb import JobMonitor
    m = JobMonitor(sys.argv[1], max_parallel=4)
    expected = {}
    for i in range(50):
        code = i % 3  # 0 completes, 1 and 2 fail with that exit code
        expected[m.submit_job(f"local {i}", f"sleep {i % 4 * 0.5}; exit {code}")] = code
        expected[m.submit_job(f"slurm {i}", f"sleep {i % 2}; exit {code}", scheduler="slurm")] = code
    print(json.dumps(expected), flush=True)
    time.sleep(600)  # killed long before this
""")

REATTACH = textwrap.dedent("""
    import json, sys
    from celline_jobs_nb import JobMonitor
    m = JobMonitor(sys.argv[1])
    ids = json.loads(sys.argv[2])
    jobs = m.wait(ids, timeout=300, poll=1)
    print(json.dumps({j.job_id: [j.status.value, j.exit_code] for j in jobs}))
""")


def test_a_hundred_jobs_survive_the_death_of_their_monitor(slurm_cluster, slurm_env, project: Path):
    child = subprocess.Popen([sys.executable, "-c", SUBMITTER, str(project)], stdout=subprocess.PIPE, text=True)
    expected = json.loads(child.stdout.readline())
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    assert len(expected) == 100
    time.sleep(5)  # jobs end while no monitor runs at all
    result = subprocess.run([sys.executable, "-c", REATTACH, str(project), json.dumps(list(expected))],
                            capture_output=True, text=True, timeout=360, env=dict(os.environ))
    assert result.returncode == 0, result.stderr[-2000:]
    final = json.loads(result.stdout)
    wrong = {job_id: (final[job_id], code) for job_id, code in expected.items()
             if final[job_id] != ["completed" if code == 0 else "failed", code]}
    assert wrong == {}
