#!/bin/bash
# Batch script rendered by celline_jobs_nb for job ${job_id}; submitted with `qsub -j oe -o <log> <this file>`.
# Every #PBS value is made only of characters all PBS flavours take literally (the name is
# sanitised, queue and account are validated, extra lines have no control characters), so no
# directive needs quoting and each stays one comment line for bash.
${directives}

#@include job_prologue.sh
# PBS starts a job in the home directory (Slurm's wrapper: where qsub ran): enter the job's own.
#@include job_in_workdir.sh

#@include job_epilogue.sh
