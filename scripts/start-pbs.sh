#!/usr/bin/env bash
# PBS-style commands for the integration tests: Debian's slurm-wlm-torque (Slurm's Torque-compatible
# qsub/qstat/qdel Perl wrappers) on top of the single-node Slurm of scripts/start-slurm.sh.
# There is no PBS daemon: the wrappers submit to, and read from, that Slurm.
#
# Usage:
#   scripts/start-pbs.sh [start]   install slurm-wlm-torque when missing (as root), start Slurm
#                                  (scripts/start-slurm.sh, idempotent), check that qstat answers
#   scripts/start-pbs.sh status    exit 0 only when the wrappers are installed and answer
#
# Once the wrappers answer, it records them in $CELLINE_JOBS_TEST_CLUSTER_DIR/pbs.state (default
# /tmp/celline-jobs-test-cluster, next to start-slurm.sh's mark): the PBS tests run only when the
# qsub/qstat/qdel on PATH are those, on the cluster start-slurm.sh marked. A qsub that is not
# Slurm's wrapper (a real PBS or Torque) is left alone: the script stops with an explanation.
#
# slurm-wlm-torque conflicts with gridengine-client (both ship /usr/bin/qsub, qstat, qdel): on a
# machine with Grid Engine installed this script stops with an explanation instead of letting apt
# remove Grid Engine. (It also makes /usr/bin/mpirun point to Slurm's mpiexec.slurm when no other
# MPI provides mpirun.)
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
STATE_DIR="${CELLINE_JOBS_TEST_CLUSTER_DIR:-/tmp/celline-jobs-test-cluster}"
log() { echo "[start-pbs] $*" >&2; }

is_wrapper() {  # the qstat on PATH is Slurm's Perl wrapper
  local q
  q="$(command -v qstat 2>/dev/null)" || return 1
  head -c 8192 "$q" 2>/dev/null | grep -q "Slurm"
}

answers() {  # qstat -Q lists Slurm's partitions as queues and exits 0 when slurmctld answers
  is_wrapper && command -v qsub >/dev/null && command -v qdel >/dev/null && timeout 20 qstat -Q >/dev/null 2>&1
}

case "${1:-start}" in
  start) ;;
  status)
    if answers; then echo "slurm-wlm-torque wrappers answer ($(command -v qsub))"; exit 0; fi
    echo "slurm-wlm-torque wrappers missing or Slurm not answering"; exit 1 ;;
  *) echo "usage: $0 [start|status]" >&2; exit 2 ;;
esac

if [ "$(id -u)" != 0 ]; then log "run this as root (it installs a package and starts daemons)"; exit 1; fi

if command -v qsub >/dev/null 2>&1 && ! is_wrapper; then
  log "the qstat on PATH ($(command -v qstat)) is not Slurm's Torque wrapper: this machine has its own PBS."
  log "The PBS tests run only on the wrappers over the test cluster of start-slurm.sh; refusing to go on."
  exit 1
fi
if ! dpkg -s slurm-wlm-torque >/dev/null 2>&1; then
  if dpkg -s gridengine-client >/dev/null 2>&1; then
    log "gridengine-client is installed: slurm-wlm-torque conflicts with it (both ship qsub/qstat/qdel)."
    log "Installing it would remove Grid Engine; see ../shared/reference/pbs.md part A for running both."
    exit 1
  fi
  log "installing slurm-wlm-torque"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q -o DPkg::Lock::Timeout=600 slurm-wlm-torque >/dev/null || {
    apt-get update -q >/dev/null
    apt-get install -y -q -o DPkg::Lock::Timeout=600 slurm-wlm-torque >/dev/null
  }
fi

bash "$HERE/start-slurm.sh"

for _ in $(seq 1 20); do
  if answers; then
    tmp="$(mktemp "$STATE_DIR/.pbs.state.XXXXXX")"
    {
      echo "# the Torque wrappers scripts/start-pbs.sh checked, on the cluster of start-slurm.sh"
      for c in qsub qstat qdel; do echo "$c=$(readlink -f "$(command -v $c)")"; done
    } > "$tmp"
    chmod 644 "$tmp"
    mv -f "$tmp" "$STATE_DIR/pbs.state"
    log "qsub/qstat/qdel (Slurm's Torque wrappers) answer; marked in $STATE_DIR/pbs.state"
    exit 0
  fi
  sleep 0.5
done
log "qstat -Q does not answer: check \`qstat -Q\` and scripts/start-slurm.sh status"
exit 1
