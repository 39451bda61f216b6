# The exit-code file is the evidence the monitor trusts once the scheduler has forgotten the job
# (and the only one under Slurm's Torque wrappers). It is written atomically; "shell": true says a
# status above 128 means "killed by signal status-128".
celline_tmp="$${celline_exit_file}.tmp.$$$$"
printf '{"exit_code": %d, "signal": null, "start_time": %s, "end_time": %s, "shell": true}\n' \
  "$$celline_rc" "$$celline_started" "$$(date +%s)" \
  >"$$celline_tmp" && mv -f -- "$$celline_tmp" "$$celline_exit_file"
exit "$$celline_rc"
