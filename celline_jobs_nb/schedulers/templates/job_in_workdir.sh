if cd -- ${workdir}; then
  /bin/bash -c ${command}
  celline_rc=$$?
else
  echo "celline-jobs: cannot enter the working directory of job $${CELLINE_JOB_ID}" >&2
  celline_rc=1
fi
