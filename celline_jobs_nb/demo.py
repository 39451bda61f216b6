"""``celline-jobs demo``: a celline-style project with six realistic jobs, shown live.

The jobs are short shell scripts named after celline's job types. They log lines and report
progress over 10-35 s; one fails with exit code 3, one waits for another. The whole demo ends
in well under a minute.
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

from .core.paths import atomic_write_text
from .monitor import JobMonitor

SETTING_TOML = """[project]
name = "celline-jobs-demo"
version = "0.01"

[fetch]
wait_time = 4

[R]
r_path = ""

[execution]
system = "multithreading"
nthread = 6
pbs_server = ""
"""

_REPORT = 'report() { "$CELLINE_JOBS_PYTHON" -m celline_jobs_nb progress "$@"; }\n'

# (file name, job name, type, script body). Bodies use only bash builtins, sleep and the progress CLI.
DEMO_JOBS: list[tuple[str, str, str, str]] = [
    ("count.sh", "Count SRR2584863 (cellranger count)", "Count", _REPORT + """
echo "cellranger count --id=SRR2584863 --transcriptome=refdata-gex-GRCh38"
stages=("Reading FASTQ" "Aligning reads" "Counting UMIs" "Filtering barcodes" "Writing matrix")
for i in $(seq 1 10); do
  stage=${stages[$(( (i - 1) / 2 ))]}
  echo "[$(date +%T)] ${stage}: chunk ${i}/10"
  report $(( i * 10 )) "$stage" --detail sample=SRR2584863
  sleep 2.5
done
echo "Estimated number of cells: 5,112"
"""),
    ("preprocess.sh", "Preprocess SRR2584863 (QC, doublets)", "Preprocess", """
echo "create_seurat: QC filtering and scrublet doublet detection"
for i in $(seq 0 10 100); do
  bar=$(printf '%*s' $(( i / 10 )) '' | tr ' ' '#')
  printf 'Preprocess: %3d%%|%-10s| %d/100\\n' "$i" "$bar" "$i"
  sleep 1.3
done
echo "kept 4,871 of 5,112 cells"
"""),
    ("predict.sh", "Predict cell types (scPred)", "Prediction", _REPORT + """
echo "Rscript run_scpred.R --reference pbmc_reference.rds"
for i in 1 2 3 4; do
  echo "[$(date +%T)] training model, fold ${i}/5"
  report $(( i * 20 )) "Training"
  sleep 3
done
echo "Error in readRDS(reference): cannot open file 'pbmc_reference.rds': No such file or directory" >&2
exit 3
"""),
    ("integrate.sh", "Integrate samples (scVI)", "Integration", _REPORT + """
echo "scVI integration of 1 sample(s) after preprocessing"
for epoch in $(seq 1 6); do
  echo "Epoch ${epoch}/6: loss=$(( 1200 - epoch * 150 ))"
  report $(( epoch * 100 / 6 )) "Training scVI" --detail epoch=${epoch}
  sleep 2.5
done
"""),
    ("batch.sh", "Batch correction (Harmony)", "Batch Correction", _REPORT + """
echo "harmony: correcting batch effects on PCA embedding"
for it in $(seq 1 8); do
  echo "Harmony iteration ${it}/8"
  report $(( it * 100 / 8 )) "Harmony" --detail iteration=${it}
  sleep 2.5
done
echo "Harmony converged after 8 iterations"
"""),
    ("custom_plot.sh", "Custom script: marker dot plots", "Custom", _REPORT + """
done_count=0
for gene in CD3E MS4A1 LYZ NKG7 PPBP; do
  echo "plotting ${gene}"
  done_count=$(( done_count + 1 ))
  report $(( done_count * 20 )) "Plotting ${gene}"
  sleep 2
done
echo "wrote results/markers.pdf"
"""),
]


def create_demo_project(directory: Path) -> Path:
    """Create (or reuse) a celline-style project with the demo scripts. Returns its path."""
    root = directory.expanduser().resolve()
    (root / "scripts").mkdir(parents=True, exist_ok=True)
    for sub in ("data", "resources", "results", "integration"):
        (root / sub).mkdir(exist_ok=True)
    if not (root / "setting.toml").exists():
        atomic_write_text(root / "setting.toml", SETTING_TOML)
    for file_name, _name, _type, body in DEMO_JOBS:
        script = "#!/usr/bin/env bash\nset -euo pipefail\n" + body.lstrip("\n")
        atomic_write_text(root / "scripts" / file_name, script)
    return root


def submit_demo_jobs(monitor: JobMonitor) -> list[str]:
    env = {"CELLINE_JOBS_PYTHON": sys.executable}
    scripts = monitor.paths.root / "scripts"
    ids: dict[str, str] = {}
    for file_name, name, job_type, _body in DEMO_JOBS:
        depends = [ids["preprocess.sh"]] if file_name == "integrate.sh" else None
        ids[file_name] = monitor.submit_job(
            name, f"bash scripts/{file_name}", {"cpus": 1, "mem": "2G"}, job_type=job_type,
            depends_on=depends, env=env, metadata={"script": str(scripts / file_name)},
        )
    return list(ids.values())


def _earlier_demo(monitor: JobMonitor) -> tuple[list[str], int]:
    """(ids of a demo batch still running, number of demo jobs from earlier runs)."""
    names = {name for _file, name, _type, _body in DEMO_JOBS}
    jobs = [j for j in monitor.list_jobs() if j.name in names]
    return [j.job_id for j in jobs if j.status.active], len(jobs)


def run_demo(directory: Path, *, watch_jobs: bool = True) -> int:
    from .watch import watch, watch_command

    root = create_demo_project(directory)
    monitor = JobMonitor(root, max_parallel=6)
    running, earlier = _earlier_demo(monitor)
    if running:  # a second `demo` while the first still runs: watch those, start nothing new
        job_ids = running
        print(f"Demo project: {root}  (the demo is already running: {len(job_ids)} of its jobs are not done; "
              "watching them instead of starting six more)")
    else:
        job_ids = submit_demo_jobs(monitor)
        print(f"Demo project: {root}  ({len(job_ids)} jobs submitted on the local executor)")
        if earlier:
            print(f"The project keeps the {earlier} jobs of earlier demo runs: `rm -r {root}` for a fresh start")
    sys.stdout.flush()
    if not watch_jobs:
        print(f"Follow them with: {watch_command(monitor)}")
        return 0
    code = watch(monitor, job_ids=job_ids, title="Final state")
    if code != 0:
        return code
    print(
        "\nOpen the same project in a notebook (JupyterLab):\n\n"
        "    from celline_jobs_nb import Job, Project\n"
        f"    Project({str(root)!r}).call(Job())\n\n"
        f"or from a terminal: celline-jobs --project {shlex.quote(str(root))} list | logs JOB_ID | history"
    )
    return 0
