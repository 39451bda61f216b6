#!/bin/bash
# Batch script rendered by celline_jobs_nb for job ${job_id}; submitted with `sbatch --parsable <this file>`.
# Each #SBATCH value is double-quoted with \ and " escaped (sbatch's own rules) and holds no control
# characters, so every directive stays a single comment line for bash.
${directives}

#@include job_prologue.sh
/bin/bash -c ${command}
celline_rc=$$?

#@include job_epilogue.sh
