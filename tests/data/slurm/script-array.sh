#!/bin/bash
# Batch script rendered by celline_jobs_nb for job 1m8abcdefgh34; submitted with `sbatch --parsable <this file>`.
# Each #SBATCH value is double-quoted with \ and " escaped (sbatch's own rules) and holds no control
# characters, so every directive stays a single comment line for bash.
#SBATCH --job-name="count sample"
#SBATCH --output="/home/user/my project 100%%/logs/1m8abcdefgh34_%a.log"
#SBATCH --open-mode=append
#SBATCH --chdir="/home/user/my project 100%"
#SBATCH --array=1-4%2

# From here on everything runs on the compute node. Every job-provided value is single-quoted.
export CELLINE_JOB_ID=1m8abcdefgh34
export CELLINE_JOBS_PROJECT='/home/user/my project 100%'
export CELLINE_JOBS_LOGS='/home/user/my project 100%/logs'
# An array task is a job of its own: <job id>_<index> names its log, progress and exit files.
export CELLINE_ARRAY_PARENT_JOB_ID=1m8abcdefgh34
export CELLINE_JOB_ID="${CELLINE_ARRAY_PARENT_JOB_ID}_${SLURM_ARRAY_TASK_ID}"
export CELLINE_JOBS_ARRAY_INDEX="${SLURM_ARRAY_TASK_ID}"  # as every scheduler names it
export CELLINE_JOBS_PROGRESS_FILE="${CELLINE_JOBS_LOGS}/${CELLINE_JOB_ID}_progress.json"
celline_exit_file="${CELLINE_JOBS_LOGS}/${CELLINE_JOB_ID}.exitcode"

# The scheduler's cancel and its time limit send SIGTERM to every process of the job first. The
# trap lets this shell outlive the command (which keeps the default handler) and still record how
# it ended.
trap 'celline_terminated=1' TERM

celline_started="$(date +%s)"
/bin/bash -c 'celline run count --sample $SLURM_ARRAY_TASK_ID'
celline_rc=$?

# The exit-code file is the evidence the monitor trusts once the scheduler has forgotten the job
# (and the only one under Slurm's Torque wrappers). It is written atomically; "shell": true says a
# status above 128 means "killed by signal status-128".
celline_tmp="${celline_exit_file}.tmp.$$"
printf '{"exit_code": %d, "signal": null, "start_time": %s, "end_time": %s, "shell": true}\n' \
  "$celline_rc" "$celline_started" "$(date +%s)" \
  >"$celline_tmp" && mv -f -- "$celline_tmp" "$celline_exit_file"
exit "$celline_rc"
