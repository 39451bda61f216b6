"""7. The browser: time for the dashboard to apply one tick's diff, on a table of 5,000 jobs.

Runs ``benchmarks/browser_diff.mjs`` (real headless Chromium through playwright-core, the shipped
widget bundle, no JupyterLab), which times each tick with performance.mark/measure from the message
to the updated DOM with style and layout done. A change of 1% of the rows (50, all of them among the
newest, so in the view's window) is the target row; 1 and 500 rows are in its note. Baseline, in the
same run: the bundle of the design before the windowed table (all 5,000 rows in the browser, the
change applied as a ``delta`` trait), taken from git.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
from pathlib import Path

from .common import Row, require_service

BENCH = "7. browser"
ROOT = Path(__file__).resolve().parents[1]
SCRIPT = Path(__file__).with_name("browser_diff.mjs")


def _available() -> bool:
    chromium = os.environ.get("CHROMIUM", "/usr/bin/chromium")
    return (shutil.which("node") is not None and (ROOT / "node_modules" / "playwright-core").is_dir()
            and Path(chromium).exists())


def run(quick: bool) -> list[Row]:
    if not require_service(_available(), "node, node_modules/playwright-core (npm ci) or Chromium is missing"):
        return [Row(BENCH, "apply one tick, a table of 5,000 jobs", 0, "ms", met=False,
                    note="skipped: no node/playwright-core/Chromium")]
    repeats = 10 if quick else 40
    proc = subprocess.run(["node", str(SCRIPT), str(repeats)], cwd=ROOT, capture_output=True, text=True, timeout=600)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"browser_diff.mjs exited {proc.returncode}: {proc.stderr.strip()[-500:]}")
    result = json.loads(lines[-1])
    samples = result["samples"]

    def median(key: str) -> float:
        return statistics.median(samples[key])

    def p90(key: str) -> float:
        ordered = sorted(samples[key])
        return ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))]

    ours = median("diff50")
    old = result.get("baseline")
    naive = statistics.median(old["samples"]["diff50"]) if old else None
    errors = f"; page errors: {result['errors'][:2]}" if result.get("errors") else ""
    layout = statistics.median(result["layout"]["diff50"])
    return [
        Row(BENCH, "apply one tick (50 changed rows = 1%), a table of 5,000 jobs", ours, "ms", naive,
            "all 5,000 rows in the browser (before)", target="< 16 ms", met=ours < 16 and not result.get("errors"),
            note=f"median of {len(samples['diff50'])}, p90 {p90('diff50'):.1f} ms, of which style+layout "
                 f"{layout:.1f} ms; 1 row: {median('diff1'):.1f} ms, 500 rows: {median('diff500'):.1f} ms; "
                 f"first render {result['renderMs']:.0f} ms, {result['visible']} row elements in the DOM; "
                 f"Chromium {result.get('chromium')}{errors}"),
    ]
