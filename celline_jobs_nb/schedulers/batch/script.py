"""The job script every batch scheduler renders, written once: the template loader
(``templates/<name>.sh`` with its ``#@include`` fragments), the environment block (job-provided
values are always single-quoted), the checks of arrays and dependencies, the user's extra
directive lines and the substitution itself. Each adapter adds only its directives."""

from __future__ import annotations

import functools
import re
import shlex
import string
from collections.abc import Callable, Iterable, Sequence
from importlib import resources as importlib_resources

from ...core.dependencies import DEPENDENCY_KINDS
from ...core.errors import ParseError, SubmitError
from ...core.models import ENV_NAME_RE, JobInfo
from ...core.paths import ENV_JOB_ID, ENV_PROJECT, ProjectPaths

CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")
_NAME_BAD_RE = re.compile(r"[^A-Za-z0-9_.-]+")
ARRAY_TASK_COMMENT = "# An array task is a job of its own: <job id>_<index> names its log, progress and exit files."


def one_line(text: str) -> str:
    """Control characters (newlines!) become spaces: a directive stays one comment line for bash."""
    return CONTROL_RE.sub(" ", str(text))


def plain_job_name(name: str, limit: int) -> str:
    """A job name of letters, digits and ``_.-`` only, starting with a letter, at most ``limit``
    characters: what PBS and Grid Engine take without quoting (our store keeps the full name)."""
    text = _NAME_BAD_RE.sub("_", str(name)).strip("_.-")
    if not text or not text[0].isalpha():
        text = "j" + text
    return text[:limit]


def export_line(name: str, value: str) -> str:
    return f"export {name}={shlex.quote(str(value).replace(chr(0), ''))}"


def env_exports(job: JobInfo, paths: ProjectPaths) -> list[str]:
    """``export`` lines for the job's own environment, then ours (last, so a user variable of the
    same name cannot redirect the job's files). Refuses names a shell could not assign."""
    exports = []
    for key, value in sorted((job.metadata.get("env") or {}).items()):
        if not ENV_NAME_RE.fullmatch(str(key)):
            raise SubmitError(f"invalid environment variable name {str(key)[:60]!r}: use letters, digits and _")
        exports.append(export_line(str(key), value))
    exports.append(export_line(ENV_JOB_ID, job.job_id))
    exports.append(export_line(ENV_PROJECT, str(paths.root)))
    exports.append(export_line("CELLINE_JOBS_LOGS", str(paths.logs_dir)))
    return exports


def array_task_exports(job: JobInfo, index: str, *, named: bool) -> list[str]:
    """The ``export`` lines that make an array task of ``job`` a job of its own (``<job id>_<index>``
    names its log, progress and exit files) and give it its index as every scheduler names it.
    ``index``: the shell text of the scheduler's task index; ``named``: first keep it in
    ``CELLINE_ARRAY_TASK_INDEX`` (a long expression, or a scheduler variable read twice)."""
    lines = [export_line("CELLINE_ARRAY_PARENT_JOB_ID", job.job_id)]
    if named:
        lines.append(f'export CELLINE_ARRAY_TASK_INDEX="{index}"')
        index = "${CELLINE_ARRAY_TASK_INDEX}"
    lines.append(f'export {ENV_JOB_ID}="${{CELLINE_ARRAY_PARENT_JOB_ID}}_{index}"')
    lines.append(f'export CELLINE_JOBS_ARRAY_INDEX="{index}"  # as every scheduler names it')
    return lines


def checked_array(job: JobInfo, indices: Callable[[str], list[int]]) -> str | None:
    """The job's array spec, checked with the scheduler's own syntax (``indices`` raises
    ParseError); None for a job that is no array. SubmitError names the spec and the problem."""
    array = job.metadata.get("array")
    if not array:
        return None
    spec = str(array).strip()
    try:
        indices(spec)
    except ParseError as exc:
        raise SubmitError(f"invalid array {spec!r}: {exc}") from None
    return spec


def checked_dependencies(job: JobInfo, label: str, valid_id: Callable[[str], str | None]) -> tuple[str, list[str]]:
    """(kind, native ids) of the job's dependencies ((kind, []) without any), checked: a kind
    every scheduler maps (``DEPENDENCY_KINDS``), ids the scheduler can read (``valid_id`` returns
    the problem with one, else None). SubmitError names the problem and the fix."""
    dependencies = [str(d) for d in job.metadata.get("native_dependencies") or []]
    kind = job.dependency_kind or "afterok"
    if dependencies and kind not in DEPENDENCY_KINDS:
        raise SubmitError(f"invalid {label} dependency kind {kind!r}: use {', '.join(DEPENDENCY_KINDS)}")
    for dep in dependencies:
        problem = valid_id(dep)
        if problem:
            raise SubmitError(problem)
    return kind, dependencies


_INCLUDE_RE = re.compile(r"^#@include ([a-z_]+\.sh)\n", re.MULTILINE)


def _template_text(name: str) -> str:
    return (importlib_resources.files("celline_jobs_nb.schedulers").joinpath("templates")
            .joinpath(name).read_text(encoding="utf-8"))


@functools.lru_cache(maxsize=8)
def load_template(name: str) -> string.Template:
    """``templates/<name>`` next to the adapters (shipped in the wheel), with its ``#@include
    <fragment>`` lines replaced by the shared fragments every job script has: the environment
    exports and the SIGTERM trap (``job_prologue.sh``), the atomic exit-code trailer
    (``job_epilogue.sh``), and for schedulers that start a job in the home directory the command
    run in the job's working directory (``job_in_workdir.sh``)."""
    text = _INCLUDE_RE.sub(lambda m: _template_text(m.group(1)), _template_text(name))
    return string.Template(text)


def extra_directives(extras: Iterable[str], prefix: str) -> list[str]:
    """The user's extra lines as ``<prefix> <text>`` directives (``prefix``: "#SBATCH", "#PBS",
    "#$"), each one line; a line that already starts with the prefix (any case) is not given a
    second one, and an empty line is left out."""
    lines = []
    for line in extras:
        text = one_line(line).strip()
        if text.upper().startswith(prefix):
            text = text[len(prefix):].strip()
        if text:
            lines.append(f"{prefix} {text}")
    return lines


def render_job_script(template: str, job: JobInfo, paths: ProjectPaths, directives: Iterable[str],
                      array_setup: Sequence[str] = ()) -> str:
    """``templates/<template>`` for ``job`` (deterministic: same arguments, same text): its
    directives, the environment (``env_exports``) and an array task's set-up lines, the working
    directory (the project's when the job has none) and the command, each single-quoted where the
    shell reads it."""
    return load_template(template).substitute(
        job_id=job.job_id,
        directives="\n".join(directives),
        exports="\n".join(env_exports(job, paths)),
        array_setup="".join(f"{line}\n" for line in array_setup),
        workdir=shlex.quote(job.working_dir or str(paths.root)),
        command=shlex.quote(job.command.replace("\0", "")),
    )
