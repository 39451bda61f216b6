"""Finding the jobs celline starts itself: #PBS headers, job types, runs and their evidence, qstat,
idempotent scans, the ``celline`` adapter, and running celline's scripts on our schedulers.

The fixture projects are laid out as celline 1.1.0 lays them out, with scripts whose headers are
its templates (``celline/template/content/*.sh``) as its functions render them. ``qstat``/``qdel``
are small fakes on PATH that print a recorded output of Slurm's Torque wrappers (a PBS we cannot
run in CI) and log their arguments; processes are real.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import psutil
import pytest

from celline_jobs_nb.core.errors import ResourceError, SchedulerError, SubmitError
from celline_jobs_nb.core.models import JobInfo, JobStatus, JobType
from celline_jobs_nb.core.paths import ProjectPaths
from celline_jobs_nb.core.resources import Resources
from celline_jobs_nb.discover import discover, resubmit, script_spec
from celline_jobs_nb.monitor import JobMonitor
from celline_jobs_nb.schedulers.celline import (
    CELLINE_SCHEDULER,
    CellineRun,
    CellineScript,
    find_scripts,
    infer_job_type,
    log_verdict,
    match_pbs,
    parse_pbs_directives,
    pbs_paths,
    script_processes,
)
from celline_jobs_nb.schedulers.pbs import TORQUE, PbsRecord, parse_qstat_full
from celline_jobs_nb.schedulers.slurm import render_batch_script

SETTING = """[project]
name = "{name}"
version = "0.01"

[fetch]
wait_time = 4

[R]
r_path = ""

[execution]
system = "{system}"
nthread = 4
pbs_server = "{server}"

[custom_functions]
directory = "functions"
enabled = true
"""

# celline/template/content/count.sh as Count renders it (cellranger), header verbatim.
COUNT_SH = """#!/bin/bash
#PBS -S /bin/bash
#PBS -l nodes=1:ppn={nthread}:{server}
#PBS -q {server}
#PBS -N Count
#PBS -j eo
#PBS -m ae
#PBS -e {log}

## Check command ##
if [ -e "$HOME/.bashrc" ]; then
  source "$HOME/.bashrc"
fi
commands=("cellranger")
for command in "${{commands[@]}}"; do
  if command -v "$command" >/dev/null 2>&1; then
    echo "[CHECK] $command: Resolved."
  else
    echo "[CHECK] $command: Could not resolve."
    exit 1
  fi
done
##################

cd "{dist}"
rm -rf "./counted"
cellranger count --id=counted \\
  --fastqs={dist}/raw/fastqs/ \\
  --sample={sample} \\
  --transcriptome=/ref/refdata-gex-GRCh38-2020-A \\
  --no-bam --localcores {nthread}
"""

# download.sh: its own server directive (":server" or nothing) and "default" queue without one.
DOWNLOAD_SH = """#!/bin/bash
#PBS -S /bin/bash
#PBS -l nodes=1:ppn={nthread}{server_directive}
#PBS -q {queue}
#PBS -N Download
#PBS -j eo
#PBS -m ae
#PBS -e {log}

filetype="fastq"
sample_id="{sample}"
mkdir -p "{dist}/raw" && cd "{dist}/raw"
fastq-dump --split-files --origfmt --gzip "SRR8418701"
"""

CREATE_SEURAT_SH = """#!/bin/bash
#PBS -S /bin/bash
#PBS -l nodes=1:ppn=1:{server}
#PBS -q {server}
#PBS -N Create Seurat
#PBS -j eo
#PBS -m ae
#PBS -e {log}

## Check command ##
if [ -e "$HOME/.bashrc" ]; then
  source "$HOME/.bashrc"
fi
##################
/usr/bin/Rscript "/opt/celline/celline/template/hook/R/create_seurat.R" "{h5}" "{dist}" "proj" "true"
"""

BUILD_SH = """#!/bin/bash
#PBS -S /bin/bash
#PBS -l nodes=1:ppn=8:{server}
#PBS -q {server}
#PBS -N BuildCelltypeModel
#PBS -j eo
#PBS -m ae
#PBS -e {dist}/build.log

h5matrix_path="/data/ref.h5"
/usr/bin/Rscript "/opt/celline/celline/template/hook/R/build_reference.R" 8 "$h5matrix_path" "/data/ct.tsv" "{dist}"
"""

# predict_celltype.py writes run_scpred.sh itself: no #PBS header, no log.
RUN_SCPRED_SH = """#!/bin/bash
# scPred Prediction Script for {sample}
set -e

cd /opt/celline

# Run scPred prediction using existing R script
Rscript /usr/lib/R/script/run_scpred.R \\
    /ref/reference.h5seurat \\
    /ref/reference.pred \\
    GSE100 \\
    {sample}
"""

# `qstat -f` of Slurm's Torque wrappers (slurm-wlm-torque 22.05.8), recorded on this kind of
# machine for a celline Count script qsub'ed as celline does (job 1148 queued, then deleted).
QSTAT_F_WRAPPER = """Job Id:\t1147
\tJob_Name = array
\tJob_Owner = root@localhost
\tjob_state = C
\tqueue = debug
\tqtime = Sat Nov 28 22:07:47 2026
\tmtime = Sat Nov 28 22:07:47 2026
\tctime = Sat Nov 28 22:07:49 2026
\texec_host = vm/1
\tPriority = 4294901559
\teuser = root(0)
\tegroup = root(0)
\tResource_List.walltime = 8760:00:00
\tResource_List.nodect = 1
\tResource_List.ncpus = 1

Job Id:\t1148
\tJob_Name = Count
\tJob_Owner = root@localhost
\tjob_state = {state}
\tqueue = debug
\tqtime = Sat Nov 28 22:07:50 2026
\tmtime = Sun Nov 28 22:07:50 2027
\tctime = Thu Jan  5 04:35:06 2164
\tPriority = 4294901558
\teuser = root(0)
\tegroup = root(0)
\tResource_List.walltime = 71582788:15:00
\tResource_List.nodect = 1
\tResource_List.ncpus = 1

"""

# The shape real Torque prints (NOT recorded here: from Torque's documentation): paths with the
# host, long values wrapped onto tab-indented lines mid-word, and exit_status once complete.
QSTAT_F_TORQUE = """Job Id: 4211.headnode.cluster
    Job_Name = Count
    Job_Owner = alice@login1.cluster
    job_state = C
    queue = cluster01
    Error_Path = login1.cluster:{log_head}
\t{log_tail}
    exec_host = node07/0-7
    exit_status = 0
    qtime = Sat Nov 28 09:58:02 2026
    start_time = Sat Nov 28 10:01:13 2026

Job Id: 4212.headnode.cluster
    Job_Name = Count
    Job_Owner = alice@login1.cluster
    job_state = R
    queue = cluster01
    Error_Path = login1.cluster:/home/alice/other-project/resources/X/Y/logs/count_20261128_10:00:00.log
    qtime = Sat Nov 28 09:58:02 2026
"""


def write(path: Path, text: str, *, mtime: float | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    if mtime is not None:
        os.utime(path, (mtime, mtime))
    return path


def stamp_of(moment: datetime) -> str:
    return moment.strftime("%Y%m%d_%H:%M:%S")


def epoch(text: str) -> float:
    return datetime.strptime(text, "%Y%m%d_%H:%M:%S").timestamp()  # local time, as celline names logs


def count_script(root: Path, sample: str, stamp: str, *, server: str = "cluster01", nthread: int = 8) -> Path:
    dist = root / "resources" / "GSE100" / sample
    log = dist / "logs" / f"count_{stamp}.log"
    (dist / "logs").mkdir(parents=True, exist_ok=True)
    return write(dist / "src" / "count.sh", COUNT_SH.format(nthread=nthread, server=server, log=log, dist=dist,
                                                            sample=sample), mtime=epoch(stamp))


def make_project(root: Path, *, system: str = "multithreading", server: str = "") -> Path:
    """A celline project: two counted samples (one with an earlier failed run), a download, a
    Seurat object being made, a cell-type prediction and a reference build."""
    write(root / "setting.toml", SETTING.format(name=root.name, system=system, server=server))
    write(root / "samples.toml", 'GSM001 = "PBMC donor 1"\nGSM002 = "PBMC donor 2"\n')
    count_script(root, "GSM001", "20261127_09:15:02", server=server)
    write(root / "resources/GSE100/GSM001/logs/count_20261126_18:02:44.log",
          "[CHECK] cellranger: Could not resolve.\n")
    write(root / "resources/GSE100/GSM001/logs/count_20261127_09:15:02.log",
          "Martian Runtime - v4.0.8\n...\nPipestance completed successfully!\n", mtime=epoch("20261127_13:40:00"))
    count_script(root, "GSM002", "20261127_09:15:03", server=server)
    write(root / "resources/GSE100/GSM002/logs/count_20261127_09:15:03.log",
          "[error] Pipestance failed. Error log at:\ncounted/SC_RNA_COUNTER_CS/fork0/_errors\n",
          mtime=epoch("20261127_09:30:00"))
    dist = root / "resources/GSE100/GSM003"
    write(dist / "src/download.sh", DOWNLOAD_SH.format(
        nthread=1, server_directive=f":{server}" if server else "", queue=server or "default",
        log=dist / "logs/download_20261127_08:00:00.log", dist=dist, sample="GSM003"), mtime=epoch("20261127_08:00:00"))
    data = root / "data/GSE100/GSM001"
    write(data / "src/create_seurat.sh", CREATE_SEURAT_SH.format(
        server=server, log=data / "logs/create_seurat_20261127_14:00:00.log", dist=data,
        h5=root / "resources/GSE100/GSM001/counted/outs/filtered_feature_bc_matrix.h5"),
        mtime=epoch("20261127_14:00:00"))
    (data / "logs").mkdir(parents=True, exist_ok=True)
    write(data / "run_scpred.sh", RUN_SCPRED_SH.format(sample="GSM001"), mtime=epoch("20261127_15:00:00"))
    ref = root / "reference/Homo_sapiens/default"
    write(ref / "build.sh", BUILD_SH.format(server=server, dist=ref), mtime=epoch("20261127_12:00:00"))
    write(ref / "build.log", "Building scPred reference model in default mode...\nError in readRDS(file) : "
                             "cannot open the connection\nExecution halted\n", mtime=epoch("20261127_12:05:00"))
    return root


@pytest.fixture
def celline_project(project: Path) -> Path:
    return make_project(project)


@pytest.fixture
def fake_pbs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``qstat``/``qdel`` stand-ins on PATH (we cannot run PBS here): qstat prints qstat.out and
    exits with qstat.rc; both append their arguments to calls.log."""
    bin_dir = tmp_path / "fakebin"
    bin_dir.mkdir()
    for name, body in (("qstat", 'cat "$D/qstat.out"; exit "$(cat "$D/qstat.rc" 2>/dev/null || echo 0)"'),
                       ("qdel", "exit 0")):
        script = bin_dir / name
        script.write_text(f'#!/bin/bash\nD={shlex.quote(str(bin_dir))}\necho "{name} $*" >> "$D/calls.log"\n{body}\n')
        script.chmod(script.stat().st_mode | stat.S_IXUSR)
    (bin_dir / "qstat.out").write_text("")
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("CELLINE_JOBS_PBS_FLAVOUR", "torque-slurm")  # what the stand-ins imitate
    return bin_dir


def calls(bin_dir: Path) -> list[str]:
    log = bin_dir / "calls.log"
    return log.read_text().splitlines() if log.exists() else []


def by_name(monitor: JobMonitor) -> dict[str, list[JobInfo]]:
    out: dict[str, list[JobInfo]] = {}
    for job in monitor.list_jobs():
        out.setdefault(job.name, []).append(job)
    return out


# -- #PBS directives ------------------------------------------------------------------------------


def test_directives_of_a_rendered_count_script(tmp_path: Path) -> None:
    script = count_script(tmp_path, "GSM001", "20261127_09:15:02", nthread=8)
    d = parse_pbs_directives(script.read_text())
    assert (d.name, d.queue, d.join) == ("Count", "cluster01", "eo")
    assert d.log_path == str(tmp_path / "resources/GSE100/GSM001/logs/count_20261127_09:15:02.log")
    assert d.to_resources(keep_queue=True) == Resources(cpus=8, nodes=1, partition="cluster01")
    assert d.to_resources(keep_queue=False) == Resources(cpus=8, nodes=1)  # a PBS queue means nothing to SLURM


@pytest.mark.parametrize(("header", "expected"), [
    # celline without a cluster server: "nodes=1:ppn=1:" and an empty -q
    ("#PBS -l nodes=1:ppn=1:\n#PBS -q \n#PBS -N Count\n", dict(name="Count", queue=None, cpus=1)),
    ("#PBS -N Create Seurat\n#PBS -q cluster01@pbs-server\n", dict(name="Create Seurat", queue="cluster01")),
    ("#PBS -l select=2:ncpus=16:mem=64gb:ngpus=1\n#PBS -l walltime=48:00:00\n",
     dict(cpus=16, nodes=2, memory=64 * 1024**3, gpus=1, walltime=48 * 3600)),
    ("#PBS -l nodes=1:ppn=4,mem=32gb,walltime=1:30:00 -A lab-7\n", dict(cpus=4, memory=32 * 1024**3,
                                                                     walltime=5400, account="lab-7")),
    # PBS's units: a bare size is bytes, a bare walltime seconds, "w" a word of 8 bytes.
    ("#PBS -l mem=1048576,walltime=90\n", dict(memory=1048576, walltime=90)),
    ("#PBS -l select=1:ncpus=2:mem=1024w\n#PBS -l walltime=100:00:00\n", dict(memory=8192, walltime=360000)),
    ("#PBS -j oe\n#PBS -o /x/out.log\n#PBS -e /x/err.log\n", dict(log_path="/x/out.log")),
    ("#PBS -V\n#PBS -N after_flag\n", dict(name="after_flag")),
    ("#PBS -N early\necho hi\n#PBS -N too_late\n", dict(name="early")),  # qsub stops at the first command
    ("#!/bin/bash\n# a comment\n\n#PBS -N ok\n", dict(name="ok")),
    ("echo no header\n", dict(present=False)),
])
def test_directive_forms(header: str, expected: dict[str, object]) -> None:
    d = parse_pbs_directives(header)
    resources = d.to_resources(keep_queue=True)
    values = {"name": d.name, "queue": d.queue, "log_path": d.log_path, "present": d.present,
              **{k: getattr(resources, k) for k in ("cpus", "nodes", "memory", "walltime", "gpus", "account")}}
    for key, value in expected.items():
        assert values[key] == value, key


@pytest.mark.parametrize(("header", "message"), [
    ("#PBS -l nodes=1:ppn=%nthread/:\n", "`#PBS -l nodes=1:ppn=%nthread/:`"),  # an unrendered template
    ("#PBS -l mem=lots\n", "invalid memory 'lots'"),
    ("#PBS -l walltime=1:99:00\n", "invalid walltime"),
])
def test_bad_directives_name_the_line(header: str, message: str) -> None:
    with pytest.raises(ResourceError, match=r"count\.sh") as info:
        parse_pbs_directives(header).to_resources(keep_queue=True, source="count.sh")
    assert message in str(info.value) and "\n" not in str(info.value)


# -- job types -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("script", "pbs_name", "text", "expected"), [
    ("download.sh", "Download", "", JobType.COUNT),
    ("count.sh", "Count", "", JobType.COUNT),
    ("starsolo.sh", "STARsolo", "", JobType.COUNT),
    ("create_seurat.sh", "Create Seurat", "", JobType.PREPROCESS),
    ("preprocess.sh", None, "", JobType.PREPROCESS),
    ("run_scpred.sh", None, "", JobType.PREDICTION),
    ("build.sh", "BuildReferenceScPred", "", JobType.PREDICTION),
    ("integrate.sh", None, "", JobType.INTEGRATION),
    ("harmony_all.sh", None, "", JobType.INTEGRATION),
    ("scvi_integration.sh", None, "", JobType.INTEGRATION),
    ("batch_cor.sh", "BatchCorrection", "", JobType.BATCH_CORRECTION),
    ("removebatch_20261127.sh", None, "", JobType.BATCH_CORRECTION),
    ("job.sh", "BatchCorrection", "", JobType.BATCH_CORRECTION),  # by its #PBS -N name
    ("step2.sh", None, 'Rscript "/opt/celline/template/hook/R/mnncorrect.R" a b', JobType.BATCH_CORRECTION),
    ("step1.sh", None, "cellranger count --id=counted", JobType.COUNT),
    ("cleanup.sh", None, "rm -rf tmp", JobType.CUSTOM),
])
def test_job_type_inference(script: str, pbs_name: str | None, text: str, expected: JobType) -> None:
    assert infer_job_type(script, pbs_name, text) is expected


# -- scripts, runs, logs ---------------------------------------------------------------------------


def test_scripts_and_their_runs(celline_project: Path) -> None:
    scripts = {str(s.path.relative_to(celline_project)): s for s in find_scripts(celline_project)}
    assert sorted(scripts) == [
        "data/GSE100/GSM001/run_scpred.sh", "data/GSE100/GSM001/src/create_seurat.sh",
        "reference/Homo_sapiens/default/build.sh", "resources/GSE100/GSM001/src/count.sh",
        "resources/GSE100/GSM002/src/count.sh", "resources/GSE100/GSM003/src/download.sh",
    ]
    count = scripts["resources/GSE100/GSM001/src/count.sh"]
    assert (count.label, count.sample, count.job_type) == ("Count GSM001", "GSE100/GSM001", JobType.COUNT)
    runs = count.runs()
    assert [(r.log.name if r.log else None, r.latest) for r in runs] == [
        ("count_20261126_18:02:44.log", False), ("count_20261127_09:15:02.log", True)]
    assert runs[1].submitted is not None and runs[1].submitted.timestamp() == epoch("20261127_09:15:02")
    assert scripts["reference/Homo_sapiens/default/build.sh"].label == "BuildCelltypeModel Homo_sapiens/default"
    scpred = scripts["data/GSE100/GSM001/run_scpred.sh"]
    assert scpred.label == "run_scpred GSM001" and [r.log for r in scpred.runs()] == [None]


def test_run_ids_are_stable_and_a_rerender_is_a_new_run(celline_project: Path) -> None:
    scpred = celline_project / "data/GSE100/GSM001/run_scpred.sh"
    first = CellineScript.read(scpred, celline_project).runs()[-1]
    assert first.job_id == CellineScript.read(scpred, celline_project).runs()[-1].job_id
    os.utime(scpred, (time.time(), time.time()))  # celline wrote it again: a new run
    assert CellineScript.read(scpred, celline_project).runs()[-1].job_id != first.job_id


@pytest.mark.parametrize(("text", "status", "line"), [
    ("Pipestance completed successfully!\n", JobStatus.COMPLETED, "Pipestance completed successfully!"),
    ("[CHECK] STAR: Could not resolve.\n", JobStatus.FAILED, "[CHECK] STAR: Could not resolve."),
    ("Error in library(Seurat) : there is no package called 'Seurat'\nExecution halted\n", JobStatus.FAILED,
     "Execution halted"),
    ("=>> PBS: job killed: walltime 3630 exceeded limit 3600\n", JobStatus.FAILED, "=>> PBS: job killed"),
    ("ERROR: STARsolo failed\n", JobStatus.FAILED, "ERROR: STARsolo failed"),
    ("[WARNING] Auto-detection failed, falling back\n[SUCCESS] STARsolo completed successfully\n",
     JobStatus.COMPLETED, "[SUCCESS]"),
    ("[error] first try\nretrying\nPipestance completed successfully!\n", JobStatus.COMPLETED, "Pipestance"),
    ("[INFO] Downloading SRR8418701...\nRead 1000 spots\n", None, None),
])
def test_log_verdicts(tmp_path: Path, text: str, status: JobStatus | None, line: str | None) -> None:
    verdict, evidence = log_verdict(write(tmp_path / "x.log", text))
    assert verdict is status
    assert (evidence is None) if line is None else (line in (evidence or ""))


# -- discover ----------------------------------------------------------------------------------------


def test_discover_records_every_run_once_with_its_evidence(celline_project: Path) -> None:
    monitor = JobMonitor(celline_project)
    found = discover(monitor)
    assert found.scripts == 6 and len(found.new_ids) == 7 == len(found.job_ids)
    jobs = by_name(monitor)
    gsm1 = sorted(jobs["Count GSM001"], key=lambda j: j.submit_time or 0)
    assert [j.status for j in gsm1] == [JobStatus.FAILED, JobStatus.COMPLETED]
    assert gsm1[0].reason == "log: [CHECK] cellranger: Could not resolve."
    assert gsm1[1].metadata["evidence"] == "log: Pipestance completed successfully!" and gsm1[1].reason is None
    assert gsm1[1].end_time is not None and gsm1[1].end_time.timestamp() == epoch("20261127_13:40:00")
    assert gsm1[1].runtime_seconds == epoch("20261127_13:40:00") - epoch("20261127_09:15:02")
    assert jobs["Count GSM002"][0].status is JobStatus.FAILED
    assert jobs["BuildCelltypeModel Homo_sapiens/default"][0].reason == "log: Execution halted"
    # No log (multithreading mode) and no output: unknown, and it says why.
    seurat = jobs["Create Seurat GSM001"][0]
    assert seurat.status is JobStatus.UNKNOWN and "no new seurat.rds" in (seurat.reason or "")
    for job in monitor.list_jobs():
        assert job.scheduler == CELLINE_SCHEDULER and job.metadata["attached"] is True
        assert job.command.startswith("bash ") and job.metadata["discovered"]["script"] in job.command
        assert job.resources.partition is None  # multithreading mode: no PBS queue
    assert {j.job_type for j in monitor.list_jobs()} == {JobType.COUNT, JobType.PREPROCESS, JobType.PREDICTION}
    assert jobs["Count GSM001"][0].resources == Resources(cpus=8, nodes=1)

    again = discover(monitor)  # idempotent: nothing new, nothing duplicated
    assert again.new_ids == [] and sorted(again.job_ids) == sorted(found.job_ids)
    assert len(monitor.list_jobs()) == 7
    assert len([e for e in monitor.store.events() if e.source == "discover"]) == 7


def test_discover_from_two_monitors_at_once_never_duplicates(celline_project: Path) -> None:
    import threading

    monitors = [JobMonitor(celline_project) for _ in range(4)]
    threads = [threading.Thread(target=discover, args=(m,)) for m in monitors]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(monitors[0].list_jobs()) == 7


def test_outputs_newer_than_the_run_complete_it_older_ones_do_not(celline_project: Path) -> None:
    data = celline_project / "data/GSE100/GSM001"
    write(data / "seurat.rds", "old", mtime=epoch("20261126_10:00:00"))  # from an earlier run
    monitor = JobMonitor(celline_project)
    discover(monitor)
    seurat = by_name(monitor)["Create Seurat GSM001"][0]
    assert seurat.status is JobStatus.UNKNOWN
    write(data / "seurat.rds", "new", mtime=epoch("20261127_14:30:00"))
    monitor.refresh(force=True)  # the poller (celline adapter) updates it
    seurat = monitor.get_job(seurat.job_id)
    assert seurat.status is JobStatus.COMPLETED and seurat.metadata["evidence"].endswith("seurat.rds")
    assert seurat.end_time is not None and seurat.end_time.timestamp() == epoch("20261127_14:30:00")


def test_a_new_render_adds_a_run_and_keeps_the_history(celline_project: Path) -> None:
    monitor = JobMonitor(celline_project)
    discover(monitor)
    count_script(celline_project, "GSM002", "20261128_08:00:00")  # celline counts GSM002 again
    found = discover(monitor)
    assert len(found.new_ids) == 1
    runs = sorted(by_name(monitor)["Count GSM002"], key=lambda j: j.submit_time or 0)
    assert [j.status for j in runs] == [JobStatus.FAILED, JobStatus.UNKNOWN]  # the new one has no evidence yet


def test_type_filters_work_for_discovered_jobs(celline_project: Path) -> None:
    monitor = JobMonitor(celline_project)
    discover(monitor)
    assert {j.name for j in monitor.list_jobs(job_type="Count")} == {"Count GSM001", "Count GSM002",
                                                                     "Download GSM003"}
    assert {j.name for j in monitor.list_jobs(job_type="prediction")} == {
        "run_scpred GSM001", "BuildCelltypeModel Homo_sapiens/default"}
    assert monitor.list_jobs(job_type="Integration") == []
    frame = monitor.history(job_type="Preprocess")
    assert list(frame["name"]) == ["Create Seurat GSM001"]


# -- processes (multithreading mode) -----------------------------------------------------------------


@pytest.fixture
def running_script(celline_project: Path) -> Iterator[subprocess.Popen[bytes]]:
    """celline's multithreading mode: ``Popen("bash <script>", shell=True, executable=$SHELL)``."""
    script = celline_project / "data/GSE100/GSM001/src/create_seurat.sh"
    text = script.read_text().replace("/usr/bin/Rscript", "sleep 60 #")
    script.write_text(text)
    os.utime(script, (epoch("20261127_14:00:00"),) * 2)
    proc = subprocess.Popen(f"bash {script}", shell=True, executable=os.environ.get("SHELL", "/bin/bash"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 10
    while os.path.realpath(script) not in script_processes() and time.monotonic() < deadline:
        time.sleep(0.05)
    yield proc
    try:
        for member in [*psutil.Process(proc.pid).children(recursive=True), psutil.Process(proc.pid)]:
            member.send_signal(signal.SIGKILL)
    except psutil.Error:
        pass  # already gone: the test cancelled it
    proc.wait(10)


def test_a_running_script_is_running_then_cancelled(running_script: subprocess.Popen[bytes],
                                                    celline_project: Path) -> None:
    proc = running_script
    monitor = JobMonitor(celline_project)
    discover(monitor)
    job = by_name(monitor)["Create Seurat GSM001"][0]
    tree = {proc.pid, *(c.pid for c in psutil.Process(proc.pid).children(recursive=True))}
    assert job.status is JobStatus.RUNNING and job.metadata["pid"] in tree
    assert job.start_time is not None and abs(job.start_time.timestamp() - time.time()) < 30
    assert monitor.cancel_job(job.job_id, wait=10)
    assert proc.wait(10) != 0
    job = monitor.get_job(job.job_id)
    assert job.status is JobStatus.CANCELLED and job.reason == "cancelled by user"


def test_our_own_jobs_running_a_celline_script_are_not_mistaken_for_celline(celline_project: Path) -> None:
    script = celline_project / "data/GSE100/GSM001/src/create_seurat.sh"
    script.write_text(script.read_text().replace("/usr/bin/Rscript", "sleep 60 #"))
    env = {**os.environ, "CELLINE_JOB_ID": "1m8ours0000001"}
    proc = subprocess.Popen(["bash", str(script)], env=env)
    try:
        time.sleep(0.3)
        assert os.path.realpath(script) not in script_processes()
    finally:
        proc.kill()
        proc.wait(10)


def test_cancelling_a_job_with_nothing_running_just_records_it(celline_project: Path) -> None:
    monitor = JobMonitor(celline_project)
    discover(monitor)
    job = by_name(monitor)["run_scpred GSM001"][0]
    assert job.status is JobStatus.UNKNOWN
    assert monitor.cancel_job(job.job_id, wait=0)
    assert monitor.get_job(job.job_id).status is JobStatus.CANCELLED


# -- PBS mode ----------------------------------------------------------------------------------------


def test_parse_qstat_full_of_the_torque_wrappers() -> None:
    records = parse_qstat_full(QSTAT_F_WRAPPER.format(state="Q"))
    assert [(r.job_id, r.name, r.state) for r in records] == [("1147", "array", "C"), ("1148", "Count", "Q")]
    assert pbs_paths(records[1]) == set() and records[1].exit_status is None
    assert records[1].submit is not None
    assert records[1].submit.timestamp() == datetime(2026, 11, 28, 22, 7, 50).timestamp()


def test_parse_qstat_full_joins_wrapped_paths_and_strips_the_host() -> None:
    log = "/home/alice/project/resources/GSE100/GSM001/logs/count_20261128_10:00:00.log"
    records = parse_qstat_full(QSTAT_F_TORQUE.format(log_head=log[:40], log_tail=log[40:]), TORQUE)
    assert pbs_paths(records[0]) == {log} and records[0].exit_status == 0
    assert records[0].start is not None and records[0].job_id == "4211.headnode.cluster"
    assert records[1].state == "R"


def _run(root: Path, sample: str, stamp: str) -> CellineRun:
    return CellineScript.read(count_script(root, sample, stamp), root).runs()[-1]


def test_match_by_log_path_then_by_a_unique_name(tmp_path: Path) -> None:
    a = _run(tmp_path, "GSM001", "20261128_10:00:00")
    b = _run(tmp_path, "GSM002", "20261128_10:00:01")
    runs = {a.key: a, b.key: b}
    by_path = PbsRecord(job_id="4211.h", state="R", name="Count", attributes={"Error_Path": str(b.log)})
    other_project = PbsRecord(job_id="4212.h", state="R", name="Count",
                              attributes={"Error_Path": "/elsewhere/logs/count_x.log"})
    nameless = PbsRecord(job_id="4213.h", state="Q", name="Count")
    matched = match_pbs(runs, [by_path, other_project, nameless])
    # b by its log path; a by name: the one path-less "Count" left, and a the one unmatched Count run.
    assert {k: (r.job_id, how) for k, (r, how) in matched.items()} == {
        b.key: ("4211.h", "log path"), a.key: ("4213.h", "#PBS -N")}
    # Two path-less records (or two candidate runs) with the same name: never guessed.
    assert match_pbs(runs, [nameless, PbsRecord(job_id="4214.h", state="Q", name="Count")]) == {}
    # A job queued before the script was rendered cannot be its run.
    early = PbsRecord(job_id="4215.h", state="Q", name="Count", submit=datetime(2026, 11, 1).astimezone())
    assert match_pbs({a.key: a}, [early]) == {}
    # Once matched, the id holds even when the name becomes ambiguous.
    twin = PbsRecord(job_id="4216.h", state="Q", name="Count")
    assert match_pbs(runs, [nameless, twin], known={a.key: "4213"})[a.key][1] == "id"


def test_pbs_mode_follows_qstat(project: Path, fake_pbs: Path) -> None:
    root = make_project(project, system="PBS", server="cluster01")
    for log in root.glob("resources/GSE100/GSM00[12]/logs/*.log"):
        log.unlink()
    count_script(root, "GSM002", "20261128_22:07:00")  # the run qsub'ed as job 1148
    (root / "resources/GSE100/GSM001/src/count.sh").unlink()  # the only Count run: matched by name
    monitor = JobMonitor(root, poll_intervals={CELLINE_SCHEDULER: 5})
    discover(monitor)
    job = by_name(monitor)["Count GSM002"][0]
    assert job.status is JobStatus.UNKNOWN and job.reason == "not checked with qstat yet"
    assert job.resources.partition == "cluster01" and job.resources.cpus == 8  # PBS mode keeps the queue

    (fake_pbs / "qstat.out").write_text(QSTAT_F_WRAPPER.format(state="Q"))
    monitor.refresh(force=True)
    job = monitor.get_job(job.job_id)
    assert (job.status, job.native_id, job.metadata["pbs_matched_by"]) == (JobStatus.QUEUED, "1148", "#PBS -N")
    assert calls(fake_pbs) == ["qstat -f"]  # ONE qstat for every job of the project

    (fake_pbs / "qstat.out").write_text(QSTAT_F_WRAPPER.format(state="R"))
    monitor.refresh(force=True)
    assert monitor.get_job(job.job_id).status is JobStatus.RUNNING

    # The wrappers show "C" without an exit status, and their own -e file wins over celline's:
    # unknown until celline's output appears.
    (fake_pbs / "qstat.out").write_text(QSTAT_F_WRAPPER.format(state="C"))
    monitor.refresh(force=True)
    job = monitor.get_job(job.job_id)
    assert job.status is JobStatus.UNKNOWN and "without an exit status" in (job.reason or "")
    write(root / "resources/GSE100/GSM002/counted/outs/filtered_feature_bc_matrix.h5", "h5")
    (fake_pbs / "qstat.out").write_text("")  # gone from qstat
    monitor.refresh(force=True)
    job = monitor.get_job(job.job_id)
    assert job.status is JobStatus.COMPLETED and job.native_id == "1148"


def test_pbs_exit_status_and_a_failing_qstat(project: Path, fake_pbs: Path) -> None:
    root = make_project(project, system="PBS", server="cluster01")
    count_script(root, "GSM001", "20261128_10:00:00")
    log = root / "resources/GSE100/GSM001/logs/count_20261128_10:00:00.log"
    monitor = JobMonitor(root)
    discover(monitor)
    job = next(j for j in by_name(monitor)["Count GSM001"] if j.log_file == str(log))
    (fake_pbs / "qstat.out").write_text("Cannot connect to PBS server\n")
    (fake_pbs / "qstat.rc").write_text("1")
    assert monitor.refresh(force=True) == []
    state = monitor.poll_states()[CELLINE_SCHEDULER]
    assert state.stale and state.error == "qstat exited 1: Cannot connect to PBS server"
    assert monitor.get_job(job.job_id).status is JobStatus.UNKNOWN  # stale data never fails a job
    (fake_pbs / "qstat.rc").write_text("0")
    (fake_pbs / "qstat.out").write_text(QSTAT_F_TORQUE.format(log_head=str(log)[:30], log_tail=str(log)[30:])
                                        .replace("exit_status = 0", "exit_status = 271"))
    monitor.refresh(force=True)
    job = monitor.get_job(job.job_id)
    # Read by the PBS adapter's rules: 271 = 256 + SIGTERM, on a job that ran (exec_host, start_time)
    assert (job.status, job.exit_code, job.signal, job.reason) == (JobStatus.FAILED, None, 15,
                                                                   "killed by signal SIGTERM")
    assert job.metadata["failure_kind"] == "signal"
    assert not monitor.poll_states()[CELLINE_SCHEDULER].stale


@pytest.mark.parametrize(("started", "comment", "expected"), [
    # Torque's 271 on a job that never started is a deletion while queued, not a SIGTERM failure.
    (False, "Job deleted at request of alice@login1", (JobStatus.CANCELLED, None, None, "cancelled",
                                                       "deleted before it started: Job deleted at request of "
                                                       "alice@login1")),
    # The MOM's comment names the limit that killed it.
    (True, "job killed: walltime 3610 exceeded limit 3600", (JobStatus.FAILED, None, 15, "timeout",
                                                             "PBS killed the job: walltime 3610 exceeded limit")),
])
def test_pbs_exit_status_271_by_the_pbs_rules(project: Path, fake_pbs: Path, started: bool, comment: str,
                                              expected: tuple[object, ...]) -> None:
    root = make_project(project, system="PBS", server="cluster01")
    count_script(root, "GSM001", "20261128_10:00:00")
    log = root / "resources/GSE100/GSM001/logs/count_20261128_10:00:00.log"
    monitor = JobMonitor(root)
    discover(monitor)
    job = next(j for j in by_name(monitor)["Count GSM001"] if j.log_file == str(log))
    record = (QSTAT_F_TORQUE.format(log_head=str(log)[:30], log_tail=str(log)[30:])
              .replace("exit_status = 0", f"exit_status = 271\n    comment = {comment}"))
    if not started:
        for line in ("    exec_host = node07/0-7\n", "    start_time = Sat Nov 28 10:01:13 2026\n"):
            record = record.replace(line, "")
    (fake_pbs / "qstat.out").write_text(record)
    monitor.refresh(force=True)
    job = monitor.get_job(job.job_id)
    assert (job.status, job.exit_code, job.signal, job.metadata.get("failure_kind"), job.reason) == expected


def test_cancel_in_pbs_mode_runs_qdel(project: Path, fake_pbs: Path) -> None:
    root = make_project(project, system="PBS", server="cluster01")
    (root / "resources/GSE100/GSM001/src/count.sh").unlink()
    for log in root.glob("resources/GSE100/GSM002/logs/*.log"):
        log.unlink()
    count_script(root, "GSM002", "20261128_22:07:00")
    monitor = JobMonitor(root)
    discover(monitor)
    (fake_pbs / "qstat.out").write_text(QSTAT_F_WRAPPER.format(state="R"))
    monitor.refresh(force=True)
    job = by_name(monitor)["Count GSM002"][0]
    assert job.status is JobStatus.RUNNING
    (fake_pbs / "qstat.out").write_text(QSTAT_F_WRAPPER.format(state="C"))
    monitor.cancel_job(job.job_id, wait=0)
    monitor.refresh(force=True)
    assert "qdel 1148" in calls(fake_pbs)
    assert monitor.get_job(job.job_id).status is JobStatus.CANCELLED


def test_a_qdel_that_is_refused_is_an_error_one_for_an_ended_job_is_not(project: Path, fake_pbs: Path) -> None:
    """qdel goes through the PBS adapter: its complaint about a job that already ended is no
    error; a real refusal is reported and the job is not marked as cancelled."""
    root = make_project(project, system="PBS", server="cluster01")
    (root / "resources/GSE100/GSM001/src/count.sh").unlink()
    for log in root.glob("resources/GSE100/GSM002/logs/*.log"):
        log.unlink()
    count_script(root, "GSM002", "20261128_22:07:00")
    monitor = JobMonitor(root)
    discover(monitor)
    (fake_pbs / "qstat.out").write_text(QSTAT_F_WRAPPER.format(state="R"))
    monitor.refresh(force=True)
    job = by_name(monitor)["Count GSM002"][0]
    qdel = fake_pbs / "qdel"
    qdel.write_text(qdel.read_text().replace(
        "exit 0", 'echo "qdel: Unauthorized Request  MSG=operation not permitted 1148.server" >&2; exit 159'))
    with pytest.raises(SchedulerError, match="qdel failed: qdel: Unauthorized Request"):
        monitor.cancel_job(job.job_id, wait=0)
    assert "cancel_requested" not in monitor.get_job(job.job_id).metadata
    qdel.write_text(qdel.read_text().replace("Unauthorized Request  MSG=operation not permitted",
                                             "Request invalid for state of job MSG=invalid state for job - COMPLETE"))
    monitor.cancel_job(job.job_id, wait=0)
    assert monitor.get_job(job.job_id).metadata["cancel_requested"] is True


# -- running celline's scripts with our schedulers --------------------------------------------------


def test_script_spec_for_each_scheduler(celline_project: Path, tmp_path: Path) -> None:
    script = celline_project / "resources/GSE100/GSM001/src/count.sh"
    script.write_text(script.read_text().replace("nodes=1:ppn=8:", "nodes=1:ppn=8:cluster01").replace(
        "#PBS -q ", "#PBS -q cluster01"))
    on_pbs = script_spec(script, celline_project, "pbs")
    assert (on_pbs.name, on_pbs.job_type) == ("Count GSM001", JobType.COUNT)
    assert on_pbs.resources == Resources(cpus=8, nodes=1, partition="cluster01")
    assert script_spec(script, celline_project, "slurm").resources == Resources(cpus=8, nodes=1)
    plain = write(tmp_path / "hello.sh", "echo hello\n")
    spec = script_spec(plain, celline_project, "local")
    assert (spec.name, spec.job_type, spec.resources) == ("hello", None, Resources())


def test_slurm_batch_script_translates_the_pbs_header(celline_project: Path) -> None:
    script = celline_project / "resources/GSE100/GSM001/src/count.sh"
    spec = script_spec(script, celline_project, "slurm")
    job = JobInfo(job_id="1m8abcdefgh56", name=spec.name, command=f"bash {shlex.quote(str(script))}",
                  resources=spec.resources.merged(mem="32G", time="12:00:00"), scheduler="slurm",
                  working_dir=str(celline_project), job_type=spec.job_type or JobType.CUSTOM)
    text = render_batch_script(job, ProjectPaths.of(celline_project))
    header = [line for line in text.splitlines() if line.startswith("#SBATCH")]
    assert "#SBATCH --cpus-per-task=8" in header and "#SBATCH --nodes=1" in header
    assert "#SBATCH --mem=32G" in header and "#SBATCH --time=12:00:00" in header
    assert '#SBATCH --job-name="Count GSM001"' in header
    assert not [line for line in text.splitlines() if line.startswith("#PBS")]  # bash reads them as comments
    assert f"/bin/bash -c {shlex.quote(job.command)}" in text


def run_cli(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "celline_jobs_nb", "--project", str(project), *args],
                          capture_output=True, text=True, timeout=120)


def test_cli_submit_uses_the_pbs_header_and_runs_it_locally(celline_project: Path) -> None:
    script = write(celline_project / "resources/GSE100/GSM004/src/count.sh",
                   "#!/bin/bash\n#PBS -l nodes=1:ppn=2:cluster01\n#PBS -l mem=1gb,walltime=00:10:00\n"
                   "#PBS -q cluster01\n#PBS -N Count\n#PBS -j eo\n"
                   "#PBS -e /nonexistent/logs/count_20261128_10:00:00.log\n\n"
                   'echo "counting in $PWD"\n')
    result = run_cli(celline_project, "submit", str(script), "--json")
    assert result.returncode == 0, result.stderr
    job = json.loads(result.stdout)
    assert (job["name"], job["job_type"], job["scheduler"]) == ("Count GSM004", "Count", "local")
    assert job["resources"] == {"cpus": 2, "mem": "1G", "time": "00:10:00", "nodes": 1}
    monitor = JobMonitor(celline_project)
    (done,) = monitor.wait([job["job_id"]], timeout=60)
    assert done.status is JobStatus.COMPLETED and "counting in" in monitor.logs(done.job_id)
    # Options given on the command line win over the header, one field at a time.
    result = run_cli(celline_project, "submit", str(script), "--cpus", "1", "--type", "Custom", "--name", "mine",
                     "--json")
    job = json.loads(result.stdout)
    assert (job["name"], job["job_type"], job["resources"]["cpus"], job["resources"]["mem"]) == (
        "mine", "Custom", 1, "1G")
    JobMonitor(celline_project).wait([job["job_id"]], timeout=60)


@pytest.mark.parametrize(("args", "message"), [
    (["submit", "--command", "true", "--scheduler", "celline"], "only follows jobs celline starts itself"),
    (["submit", "BAD"], "`#PBS -l mem=lots`"),
])
def test_cli_submit_errors(celline_project: Path, args: list[str], message: str) -> None:
    bad = write(celline_project / "bad.sh", "#PBS -l mem=lots\necho\n")
    result = run_cli(celline_project, *[str(bad) if a == "BAD" else a for a in args])
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and message in result.stderr, result.stderr


def test_cli_discover_list_and_history_by_type(celline_project: Path) -> None:
    result = run_cli(celline_project, "discover", "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["scripts"] == 6 and len(data["new"]) == 7 == len(data["jobs"])
    text = run_cli(celline_project, "discover")
    assert "celline runs its jobs with: multithreading" in text.stdout and "7 runs, 0 new" in text.stdout
    listed = json.loads(run_cli(celline_project, "list", "--type", "Count", "--json").stdout)
    assert sorted(j["name"] for j in listed) == ["Count GSM001", "Count GSM001", "Count GSM002", "Download GSM003"]
    history = json.loads(run_cli(celline_project, "history", "--type", "Prediction", "--status", "failed",
                                 "--json").stdout)
    assert [j["name"] for j in history] == ["BuildCelltypeModel Homo_sapiens/default"]


def test_retry_of_a_discovered_job_runs_its_script_on_our_scheduler(celline_project: Path) -> None:
    script = celline_project / "resources/GSE100/GSM002/src/count.sh"
    header = script.read_text().split("## Check command ##")[0]  # no cellranger here: keep the #PBS lines
    write(script, header + 'echo "re-run of GSM002"\n', mtime=epoch("20261127_09:15:03"))
    monitor = JobMonitor(celline_project)
    discover(monitor)
    failed = by_name(monitor)["Count GSM002"][0]
    result = run_cli(celline_project, "retry", failed.job_id, "--mem", "1G", "--json")
    assert result.returncode == 0, result.stderr
    new = json.loads(result.stdout)
    assert (new["scheduler"], new["retry_of"], new["attempt"], new["job_type"]) == ("local", failed.job_id, 2, "Count")
    assert new["resources"] == {"cpus": 8, "mem": "1G", "nodes": 1}
    (done,) = monitor.wait([new["job_id"]], timeout=60)
    assert done.status is JobStatus.COMPLETED and "re-run of GSM002" in monitor.logs(done.job_id)
    with pytest.raises(SubmitError, match="celline-jobs submit SCRIPT"):
        monitor.adapter(CELLINE_SCHEDULER).submit(failed)
    unknown = by_name(monitor)["Create Seurat GSM001"][0]
    with pytest.raises(Exception, match="still unknown: cancel it before retrying"):
        resubmit(monitor, unknown.job_id)


def test_an_open_dashboard_picks_up_runs_celline_starts_later(celline_project: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    from celline_jobs_nb import celline as interop

    monkeypatch.setattr(interop, "DISCOVER_EVERY", 0.2)
    job = interop.Job(interval=0.1)
    board = job.dashboard(celline_project)
    try:
        assert len(board.monitor.list_jobs()) == 7
        count_script(celline_project, "GSM005", "20261128_11:00:00")  # celline counts one more sample
        deadline = time.monotonic() + 15
        while "Count GSM005" not in by_name(board.monitor) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert "Count GSM005" in by_name(board.monitor)
    finally:
        board.close()
