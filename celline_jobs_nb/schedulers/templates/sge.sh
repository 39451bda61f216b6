#!/bin/bash
# Batch script rendered by celline_jobs_nb for job ${job_id}; submitted with `qsub -terse -j y -o <log> <this file>`.
# Every #$$ value is made only of characters Grid Engine takes literally (the name is sanitised,
# queue and project are validated, extra lines have no control characters), so no directive needs
# quoting and each stays one comment line for bash. qsub stops reading #$$ lines at the first command.
${directives}

#@include job_prologue.sh
# Grid Engine starts a job in the home directory (no -cwd): enter the job's own.
#@include job_in_workdir.sh

#@include job_epilogue.sh
