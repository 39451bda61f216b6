#!/bin/bash
# Batch script rendered by celline_jobs_nb for job ${job_id}; submitted with `sbatch --parsable <this file>`.
# Each #SBATCH value is double-quoted with \ and " escaped (sbatch's own rules) and holds no control
# characters, so every directive stays a single comment line for bash.
${directives}

# From here on everything runs on the compute node. Every job-provided value is single-quoted.
${exports}
${array_setup}export CELLINE_JOBS_PROGRESS_FILE="$${CELLINE_JOBS_LOGS}/$${CELLINE_JOB_ID}_progress.json"
celline_exit_file="$${CELLINE_JOBS_LOGS}/$${CELLINE_JOB_ID}.exitcode"

# scancel and the time limit send SIGTERM to every process of the job. The trap lets this shell
# outlive the command (which keeps the default handler) and still record how it ended.
trap 'celline_terminated=1' TERM

celline_started="$$(date +%s)"
/bin/bash -c ${command}
celline_rc=$$?

# The exit-code file is the evidence the monitor trusts once SLURM has forgotten the job. It is
# written atomically; "shell": true says a status above 128 means "killed by signal status-128".
celline_tmp="$${celline_exit_file}.tmp.$$$$"
printf '{"exit_code": %d, "signal": null, "start_time": %s, "end_time": %s, "shell": true}\n' \
  "$$celline_rc" "$$celline_started" "$$(date +%s)" \
  >"$$celline_tmp" && mv -f -- "$$celline_tmp" "$$celline_exit_file"
exit "$$celline_rc"
