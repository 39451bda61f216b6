#!/bin/bash
# Batch script rendered by celline_jobs_nb for job 1m8abcdefgh12; submitted with `qsub -j oe -o <log> <this file>`.
# Every #PBS value is made only of characters all PBS flavours take literally (the name is
# sanitised, queue and account are validated, extra lines have no control characters), so no
# directive needs quoting and each stays one comment line for bash.
#PBS -N a_b_c_d_id_q_to
#PBS -S /bin/bash
#PBS -l nodes=1:ppn=4:gpus=1:bigmem
#PBS -l mem=32gb
#PBS -l walltime=36:00:00
#PBS -q long.q
#PBS -A lab-1
#PBS -W depend=afterok:123:124
#PBS -m ae
#PBS -M me@lab.org

# From here on everything runs on the compute node. Every job-provided value is single-quoted.
export EMPTY=''
export GREETING='hello $USER `id`
line 2'
export CELLINE_JOB_ID=1m8abcdefgh12
export CELLINE_JOBS_PROJECT='/home/user/my project 100%'
export CELLINE_JOBS_LOGS='/home/user/my project 100%/logs'
export CELLINE_JOBS_PROGRESS_FILE="${CELLINE_JOBS_LOGS}/${CELLINE_JOB_ID}_progress.json"
celline_exit_file="${CELLINE_JOBS_LOGS}/${CELLINE_JOB_ID}.exitcode"

# The scheduler's cancel and its time limit send SIGTERM to every process of the job first. The
# trap lets this shell outlive the command (which keeps the default handler) and still record how
# it ended.
trap 'celline_terminated=1' TERM

celline_started="$(date +%s)"
# PBS starts a job in the home directory (Slurm's wrapper: where qsub ran): enter the job's own.
if cd -- '/home/user/my project 100%/work dir'; then
  /bin/bash -c 'echo "name=$CELLINE_JOB_ID"; printf "%s\n" '"'"'single quotes'"'"' "$GREETING"; pwd; exit 3'
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
