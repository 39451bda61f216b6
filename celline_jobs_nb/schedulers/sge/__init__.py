"""Grid Engine (Son of Grid Engine 8.1.x, Univa / Altair Grid Engine): ``scheduler="sge"``.

Built on ``schedulers/batch`` (submit, poll, settle, cancel written once); this folder holds only
what is Grid Engine's: the state map (``states``), pure parsers over its outputs (``parse``), the
batch script and command lines (``script`` + ``templates/sge.sh``), the queue and attach
(``inspect``) and the hooks (``adapter``).

Commands, per poll: ONE ``qstat -xml -u <user>`` for every tracked job (Grid Engine lists only
unfinished jobs; the ids are not on the command line). Only when needed: ONE ``qstat -j <ids>
-xml`` for jobs newly in error state (``Eqw``: held, with the reason, until ``qmod -cj``), ONE
``qacct`` for jobs that left qstat without an exit-code file (killed by ``h_rt``, ``kill -9``...;
``qacct -j <id>`` for one, ``qacct -o <user> -E -b <time> -j`` for several). The accounting file
is written up to ``flush_time`` (15 s by default) after a job ends: until its record is there the
job keeps its last status (``missing_since``), becoming UNKNOWN only after ``missing_grace``.
Cancel: ONE ``qdel`` of many ids.

Job script (``#$`` directives): ``-N``, ``-S /bin/bash``, ``-pe <pe> N`` for cpus > 1 (the parallel
environment from ``[jobs.sge] pe``, default "smp"), ``-l h_vmem=...`` (``[jobs.sge] memory``: one
or more of h_vmem, mem_free, h_rss, virtual_free...; per slot unless ``memory_per_slot = false``),
``-l h_rt=H:MM:SS``, ``-q`` (partition), ``-P`` (account as project), ``-t n-m:s`` and ``-tc`` for
arrays (``$SGE_TASK_ID``; each task logs to ``logs/<job id>_<index>.log`` through ``$TASK_ID`` in
``-o``), the shared environment/trap/exit-code fragments; ``qsub -terse -j y -o logs/<job id>.log``.

Dependencies: Grid Engine's ``-hold_jid`` only *orders* jobs: the child starts once its parents
have left the system, however they ended (exit 3, killed, deleted). That is exactly ``afterany``.
For ``afterok`` and ``afternotok`` the child is also submitted with a user hold (``-h``); the poll
that sees its parents end releases it (ONE ``qrls``) when they ended as required, or deletes it
(ONE ``qdel``) and cancels it with "DependencyNeverSatisfied: ..." when they did not, as SLURM
does itself.

Exits (``qacct``'s ``failed``): 0 and 100 ("assumedly after job") carry the job's own exit status
(137 = killed by SIGKILL: qdel, ``kill -9``); 37 is a limit the qmaster enforced (h_rt: timeout,
h_vmem: oom); 25 a reschedule; other codes mean the job could not be set up on its host
(node_fail, with qacct's text).
"""

from __future__ import annotations

from .adapter import SgeScheduler
from .parse import (
    AcctRecord,
    SgeDetail,
    SgeRecord,
    parse_job_details,
    parse_qacct,
    parse_qstat_xml,
    parse_qsub_output,
    qdel_problems,
    sge_unescape,
    task_range,
)
from .script import qsub_command, render_sge_script, sge_array, sge_directives, sge_job_name
from .states import KNOWN_STATES, map_state, state_reason

__all__ = [
    "KNOWN_STATES",
    "AcctRecord",
    "SgeDetail",
    "SgeRecord",
    "SgeScheduler",
    "map_state",
    "parse_job_details",
    "parse_qacct",
    "parse_qstat_xml",
    "parse_qsub_output",
    "qdel_problems",
    "qsub_command",
    "render_sge_script",
    "sge_array",
    "sge_directives",
    "sge_job_name",
    "sge_unescape",
    "state_reason",
    "task_range",
]
