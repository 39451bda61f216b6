"""Hostile job text rendered by the shipped widget bundle in real Chromium shows as text."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from e2e_support import CHROMIUM, REPO, have_node_tools, need

from celline_jobs_nb.core.models import JobInfo, JobStatus, Progress, new_job_id
from celline_jobs_nb.widgets._format import job_row

HOSTILE = [
    "<img src=x onerror=window.__pwned=1;alert(1)>", "</script><script>window.__pwned=1</script>",
    "<b>bold</b> & &amp; &lt;", 'a "b" $c <d> `e` $(f)', "line one\nline two\r\nthree",
    "\x1b[31mred\x1b[0m \x1b]8;;javascript:alert(1)\x1b\\link\x1b]8;;\x1b\\", "名前 🧬 ‮reversed",
    "<svg onload=window.__pwned=1>", "x" * 5000,
]


def test_hostile_job_text_renders_as_text_in_chromium(tmp_path: Path) -> None:
    need(Path(CHROMIUM).exists(), f"Chromium not found at {CHROMIUM} (apt-get install -y chromium)")
    need(have_node_tools(), "node and node_modules/playwright-core are needed (npm ci)")
    rows = []
    for i, text in enumerate(HOSTILE):
        job = JobInfo(job_id=new_job_id(), name=text, command=text, status=JobStatus.FAILED if i % 2 else
                      JobStatus.RUNNING, reason=text, progress=Progress(percent=50, stage=text))
        rows.append(job_row(job))
    rows_file = tmp_path / "rows.json"
    rows_file.write_text(json.dumps(rows))
    driver = subprocess.run(["node", str(REPO / "tests" / "e2e" / "hostile.e2e.mjs")], cwd=REPO,
                            capture_output=True, text=True, timeout=120,
                            env=dict(os.environ, ROWS=str(rows_file), CHROMIUM=CHROMIUM))
    print(driver.stdout, driver.stderr[-2000:])
    failed = [line for line in driver.stdout.splitlines() if line.startswith("CHECK FAIL")]
    assert driver.returncode == 0 and not failed, "\n".join(failed) or driver.stderr[-2000:]
