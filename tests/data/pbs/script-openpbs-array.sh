#!/bin/bash
# Batch script rendered by celline_jobs_nb for job 1m8abcdefgh34; submitted with `qsub -j oe -o <log> <this file>`.
# Every #PBS value is made only of characters all PBS flavours take literally (the name is
# sanitised, queue and account are validated, extra lines have no control characters), so no
# directive needs quoting and each stays one comment line for bash.
#PBS -N count_sample
#PBS -S /bin/bash
#PBS -l select=1:ncpus=2:mem=1536mb
#PBS -J 1-4

# From here on everything runs on the compute node. Every job-provided value is single-quoted.
export CELLINE_JOB_ID=1m8abcdefgh34
export CELLINE_JOBS_PROJECT='/home/user/my project 100%'
export CELLINE_JOBS_LOGS='/home/user/my project 100%/logs'
# An array task is a job of its own: <job id>_<index> names its log, progress and exit files.
# Each task writes its own log from here (no PBS flavour has a portable per-task -o).
export CELLINE_ARRAY_PARENT_JOB_ID=1m8abcdefgh34
export CELLINE_ARRAY_TASK_INDEX="${PBS_ARRAYID:-${PBS_ARRAY_INDEX:-${SLURM_ARRAY_TASK_ID:-}}}"
export CELLINE_JOB_ID="${CELLINE_ARRAY_PARENT_JOB_ID}_${CELLINE_ARRAY_TASK_INDEX}"
export CELLINE_JOBS_ARRAY_INDEX="${CELLINE_ARRAY_TASK_INDEX}"  # as every scheduler names it
exec >>"${CELLINE_JOBS_LOGS}/${CELLINE_JOB_ID}.log" 2>&1
export CELLINE_JOBS_PROGRESS_FILE="${CELLINE_JOBS_LOGS}/${CELLINE_JOB_ID}_progress.json"
celline_exit_file="${CELLINE_JOBS_LOGS}/${CELLINE_JOB_ID}.exitcode"

# The scheduler's cancel and its time limit send SIGTERM to every process of the job first. The
# trap lets this shell outlive the command (which keeps the default handler) and still record how
# it ended.
trap 'celline_terminated=1' TERM

celline_started="$(date +%s)"
# PBS starts a job in the home directory (Slurm's wrapper: where qsub ran): enter the job's own.
if cd -- '/home/user/my project 100%'; then
  /bin/bash -c 'celline run count --sample $CELLINE_ARRAY_TASK_INDEX'
  celline_rc=$?
else
  echo "celline-jobs: cannot enter the working directory of job ${CELLINE_JOB_ID}" >&2
  celline_rc=1
fi

# The exit-code file is the evidence the monitor trusts once the scheduler has forgotten the job
# (and the only one under Slurm's Torque wrappers). It is written atomically; "shell": true says a
# status above 128 means "killed by signal status-128".
celline_tmp="${celline_exit_file}.tmp.$$"
printf '{"exit_code": %d, "signal": null, "start_time": %s, "end_time": %s, "shell": true}\n' \
  "$celline_rc" "$celline_started" "$(date +%s)" \
  >"$celline_tmp" && mv -f -- "$celline_tmp" "$celline_exit_file"
exit "$celline_rc"
