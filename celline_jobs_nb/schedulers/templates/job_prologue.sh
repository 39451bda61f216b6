# From here on everything runs on the compute node. Every job-provided value is single-quoted.
${exports}
${array_setup}export CELLINE_JOBS_PROGRESS_FILE="$${CELLINE_JOBS_LOGS}/$${CELLINE_JOB_ID}_progress.json"
celline_exit_file="$${CELLINE_JOBS_LOGS}/$${CELLINE_JOB_ID}.exitcode"

# The scheduler's cancel and its time limit send SIGTERM to every process of the job first. The
# trap lets this shell outlive the command (which keeps the default handler) and still record how
# it ended.
trap 'celline_terminated=1' TERM

celline_started="$$(date +%s)"
