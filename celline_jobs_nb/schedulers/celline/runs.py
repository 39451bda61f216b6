"""What celline (1.1.0) leaves on disk: the scripts it renders, their runs, and their job types.

celline renders a shell script per sample and step, then runs it with ``bash`` (its
"multithreading" mode: output only to an in-memory callback, no log file) or with ``qsub`` (its
"PBS" mode: output to the ``#PBS -e`` log, named ``<prefix>_%Y%m%d_%H:%M:%S.log``). It keeps no
history:

    resources/<project>/<sample>/src/{download,count,starsolo}.sh   logs in ../logs/
    data/<project>/<sample>/src/create_seurat.sh                    logs in ../logs/
    data/<project>/<sample>/run_scpred.sh                           no log
    reference/<species>/<suffix>/build.sh                           build.log next to it

Every log file of a script is one run (history); the script as rendered now is the latest run,
even before its log exists. A run has a stable job id derived from the script and its log, so
rescanning never duplicates anything.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from ...core.errors import ParseError
from ...core.models import JobInfo, JobType, to_utc
from ...core.safeio import read_head
from .directives import PbsDirectives, parse_pbs_directives

#: Where celline writes the scripts it runs (relative to the project), per celline 1.1.0.
SCRIPT_PATTERNS = ("resources/*/*/src/*.sh", "data/*/*/src/*.sh", "data/*/*/run_scpred.sh", "reference/*/*/build.sh")
LOG_NAME_RE = re.compile(r"^(?P<prefix>.+)_(?P<stamp>\d{8}_\d{2}:\d{2}:\d{2})\.log$")
LOG_STAMP_FORMAT = "%Y%m%d_%H:%M:%S"
MAX_SCRIPT_BYTES = 1024 * 1024  # celline's scripts are a few KB; anything huge is not one of them

# ------------------------------------------------------------------------------------------------
# Job types
# ------------------------------------------------------------------------------------------------

#: celline's script names and ``#PBS -N`` job names (lower-case, no spaces) -> type.
_KNOWN_NAMES: dict[str, JobType] = {
    "download": JobType.COUNT, "count": JobType.COUNT, "starsolo": JobType.COUNT,
    "create_seurat": JobType.PREPROCESS, "createseurat": JobType.PREPROCESS, "preprocess": JobType.PREPROCESS,
    "run_scpred": JobType.PREDICTION, "predict_celltype": JobType.PREDICTION, "build": JobType.PREDICTION,
    "build_reference": JobType.PREDICTION, "build_reference_scpred": JobType.PREDICTION,
    "buildcelltypemodel": JobType.PREDICTION, "buildreferencescpred": JobType.PREDICTION,
    "integrate": JobType.INTEGRATION, "pure_merge": JobType.INTEGRATION,
    "batch_cor": JobType.BATCH_CORRECTION, "batchcorrection": JobType.BATCH_CORRECTION,
}
#: Words in other script or job names. Harmony and scVI are celline's integration methods
#: (``integration/<method>/``); MNN/ComBat-style corrections are its batch correction.
_NAME_WORDS: tuple[tuple[re.Pattern[str], JobType], ...] = (
    (re.compile(r"batch|mnn|combat|removebatch"), JobType.BATCH_CORRECTION),
    (re.compile(r"integrat|harmony|scvi|merge"), JobType.INTEGRATION),
    (re.compile(r"scpred|celltype|predict"), JobType.PREDICTION),
    (re.compile(r"seurat|preprocess|scrublet|doublet"), JobType.PREPROCESS),
    (re.compile(r"cellranger|starsolo|count|download|fastq"), JobType.COUNT),
)
#: What the script runs (celline's R hooks and tools), for scripts with other names.
_CONTENT_WORDS: tuple[tuple[re.Pattern[str], JobType], ...] = (
    (re.compile(r"mnncorrect\.R|batch_cor"), JobType.BATCH_CORRECTION),
    (re.compile(r"(integrate|pure_merge)\.R|harmony|scvi", re.IGNORECASE), JobType.INTEGRATION),
    (re.compile(r"(run_scpred|build_reference)\.R"), JobType.PREDICTION),
    (re.compile(r"(create_seurat|FilterGenes)\.R|scrublet"), JobType.PREPROCESS),
    (re.compile(r"cellranger\s+(count|bamtofastq)|\bSTAR\s+--|fastq-dump"), JobType.COUNT),
)


def infer_job_type(script_name: str, pbs_name: str | None = None, text: str = "") -> JobType:
    """The type of a celline script: by its file name, its ``#PBS -N`` name, then what it runs."""
    stem = Path(script_name).stem.lower()
    name = re.sub(r"[\s_-]+", "", (pbs_name or "").lower())
    for key in (stem, name):
        if key in _KNOWN_NAMES:
            return _KNOWN_NAMES[key]
    for pattern, job_type in _NAME_WORDS:
        if pattern.search(stem) or (name and pattern.search(name)):
            return job_type
    for pattern, job_type in _CONTENT_WORDS:
        if pattern.search(text):
            return job_type
    return JobType.CUSTOM


# ------------------------------------------------------------------------------------------------
# Scripts and runs
# ------------------------------------------------------------------------------------------------

#: celline's own "done" files for each script (relative to the script's sample directory; what
#: its functions check before running a step again).
OUTPUTS: dict[str, tuple[str, ...]] = {
    "download": ("raw/fastqs/*/*_R1_001.fastq.gz",),
    "count": ("counted/outs/filtered_feature_bc_matrix.h5",),
    "starsolo": ("counted/outs",),
    "create_seurat": ("seurat.rds",),
    "preprocess": ("qc_matrix.tsv",),
    "run_scpred": ("celltype_predicted.tsv",),
    "build": ("reference.pred",),
}


def _read_script(path: Path) -> str:
    """The head of a script celline (or anyone with write access to the project) left: a FIFO,
    a device or a link out of the project reads as empty, never blocks."""
    try:
        data = read_head(path, MAX_SCRIPT_BYTES)
    except ParseError:
        return ""
    return "" if data is None else data.decode("utf-8", errors="replace")


def file_mtime(path: Path) -> float | None:
    try:
        return path.stat().st_mtime
    except OSError:
        return None


def _local_stamp(text: str) -> datetime | None:
    """celline's log-name time (local, naive) as UTC."""
    try:
        return to_utc(datetime.strptime(text, LOG_STAMP_FORMAT).astimezone())
    except ValueError:
        return None


@dataclass(frozen=True)
class CellineScript:
    """One script celline rendered: what it is, for which sample, and where its runs log."""

    path: Path
    root: Path
    text: str = field(repr=False)
    directives: PbsDirectives

    @classmethod
    def read(cls, path: Path, root: Path) -> CellineScript:
        text = _read_script(path)
        return cls(path, root, text, parse_pbs_directives(text))

    @property
    def kind(self) -> str:
        return self.path.stem

    @property
    def sample_dir(self) -> Path:
        """The sample (or reference) directory: ``src/`` scripts live one level below it."""
        return self.path.parent.parent if self.path.parent.name == "src" else self.path.parent

    @property
    def sample(self) -> str:
        """"<project_id>/<sample_id>" (or "<species>/<suffix>" for a reference build)."""
        try:
            parts = self.sample_dir.relative_to(self.root).parts
        except ValueError:
            return self.sample_dir.name
        return "/".join(parts[1:3]) if len(parts) >= 3 else "/".join(parts)

    @property
    def job_type(self) -> JobType:
        return infer_job_type(self.path.name, self.directives.name, self.text)

    @property
    def label(self) -> str:
        """The job name: celline's ``#PBS -N`` name (or the script's) and the sample, e.g. "Count GSM3745812"."""
        what = self.directives.name or self.kind
        # A sample id is unique on its own; a reference is "<species>/<suffix>".
        who = self.sample if self.sample_dir.parent.parent == self.root / "reference" else self.sample_dir.name
        return f"{what} {who}".strip()

    @property
    def current_log(self) -> Path | None:
        """The log the script as rendered now writes to (it need not exist yet)."""
        raw = self.directives.log_path
        if not raw:
            return None
        path = Path(raw).expanduser()
        return path if path.is_absolute() else self.sample_dir / path

    @property
    def log_prefix(self) -> str:
        current = self.current_log
        match = LOG_NAME_RE.match(current.name) if current else None
        return match.group("prefix") if match else self.kind

    def outputs(self) -> list[Path]:
        found: list[Path] = []
        for pattern in OUTPUTS.get(self.kind, ()):
            found.extend(self.sample_dir.glob(pattern))
        return found

    def runs(self) -> list[CellineRun]:
        """Every run this script has had that left a trace, oldest first; the last is the latest."""
        current = self.current_log
        runs: list[CellineRun] = []
        log_dir = current.parent if current else self.sample_dir / "logs"
        try:
            names = sorted(p.name for p in log_dir.iterdir()) if log_dir.is_dir() else []
        except OSError:
            names = []
        for name in names:
            match = LOG_NAME_RE.match(name)
            if match and match.group("prefix") == self.log_prefix and (current is None or name != current.name):
                runs.append(CellineRun(self, log_dir / name, _local_stamp(match.group("stamp")), latest=False))
        runs.append(CellineRun(self, current, self.render_time(), latest=True))
        return runs

    def render_time(self) -> datetime | None:
        """When celline rendered the script as it is now: the time in its log name, else its mtime."""
        current = self.current_log
        match = LOG_NAME_RE.match(current.name) if current else None
        if match:
            return _local_stamp(match.group("stamp"))
        mtime = file_mtime(self.path)
        return to_utc(mtime) if mtime is not None else None


@dataclass(frozen=True)
class CellineRun:
    """One run of a script: its log (may not exist yet) and when it was submitted."""

    script: CellineScript
    log: Path | None
    submitted: datetime | None
    latest: bool

    @property
    def key(self) -> str:
        """What identifies the run across scans. A timestamped log names one run; a script without
        one is a new run each time celline renders it again (its mtime changes)."""
        if self.log is not None and LOG_NAME_RE.match(self.log.name):
            return f"{self.script.path}|{self.log}"
        stamp = int(self.submitted.timestamp()) if self.submitted else 0
        return f"{self.script.path}|{self.log or ''}|{stamp}"

    @property
    def job_id(self) -> str:
        """Stable for the same run, so every scan (in any process) agrees on it."""
        return "c" + hashlib.sha256(self.key.encode("utf-8", "surrogateescape")).hexdigest()[:12]


def find_scripts(root: Path) -> list[CellineScript]:
    """Every script celline rendered in the project (see SCRIPT_PATTERNS)."""
    found: dict[Path, CellineScript] = {}
    for pattern in SCRIPT_PATTERNS:
        for path in sorted(root.glob(pattern)):
            if path.is_file() and path not in found:
                found[path] = CellineScript.read(path, root)
    return list(found.values())


def run_of(job: JobInfo, root: Path) -> CellineRun | None:
    """The run a discovered job stands for, re-read from disk (the script may have been rendered
    again since: then this run is no longer the latest)."""
    info = job.metadata.get("discovered")
    if not isinstance(info, dict) or not info.get("script"):
        return None
    script = CellineScript.read(Path(info["script"]), root)
    run = CellineRun(script, Path(info["log"]) if info.get("log") else None, to_utc(info.get("submitted")),
                     latest=False)
    if script.text and script.runs()[-1].key == run.key:
        return CellineRun(run.script, run.log, run.submitted, latest=True)
    return run
