#!/usr/bin/env bash
# PBS-style commands for the integration tests: Debian's slurm-wlm-torque (Slurm's Torque-compatible
# qsub/qstat/qdel Perl wrappers) on top of the single-node Slurm of scripts/start-slurm.sh.
# There is no PBS daemon: the wrappers submit to, and read from, that Slurm.
#
# Usage:
#   scripts/start-pbs.sh [start]   unpack slurm-wlm-torque into its own prefix when missing (as root),
#                                  start Slurm (scripts/start-slurm.sh, idempotent), check that qstat answers
#   scripts/start-pbs.sh status    exit 0 only when the wrappers in the prefix are there and answer
#
# The prefix: slurm-wlm-torque conflicts with gridengine-client (both ship /usr/bin/qsub, qstat, qdel;
# apt would remove Grid Engine), so the package is never apt-installed. Its .deb is unpacked with
# `dpkg -x` into $CELLINE_JOBS_PBS_PREFIX (default /opt/celline-jobs-test/slurm-wlm-torque); its
# dependencies (libslurm-perl, libslurmdb-perl, libswitch-perl) are installed normally. The wrapper
# qsub runs `${FindBin::Bin}/sbatch`, so sbatch, srun, scancel, squeue, scontrol and salloc are
# symlinked next to it. /usr/bin/q* stay whatever they are (Grid Engine's, or nothing); only the PBS
# tests put <prefix>/usr/bin first on PATH (tests/support.py: pbs_bin()).
#
# Once the wrappers answer, it records them in $CELLINE_JOBS_TEST_CLUSTER_DIR/pbs.state (default
# /tmp/celline-jobs-test-cluster, next to start-slurm.sh's mark): bin=<prefix>/usr/bin and the real
# paths of qsub/qstat/qdel. The PBS tests run only on those, on the cluster start-slurm.sh marked.
# A qstat on PATH that is neither Slurm's wrapper nor Grid Engine's (a real PBS or Torque) is left
# alone: the script stops with an explanation before installing or starting anything.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
STATE_DIR="${CELLINE_JOBS_TEST_CLUSTER_DIR:-/tmp/celline-jobs-test-cluster}"
PREFIX="${CELLINE_JOBS_PBS_PREFIX:-/opt/celline-jobs-test/slurm-wlm-torque}"
BIN="$PREFIX/usr/bin"
log() { echo "[start-pbs] $*" >&2; }

is_slurm_wrapper() {  # $1=path: Slurm's Perl wrapper (reads the file, runs nothing)
  [ -f "$1" ] && head -c 8192 "$1" 2>/dev/null | grep -q "Slurm"
}
is_gridengine() {  # $1=path: Debian's Grid Engine command (a symlink to its wrapper script)
  case "$(readlink -f "$1")" in /usr/share/gridengine/*|/usr/lib/gridengine/*) return 0 ;; esac
  return 1
}
answers() {  # qstat -Q lists Slurm's partitions as queues and exits 0 when slurmctld answers
  local c
  for c in qsub qstat qdel sbatch; do [ -x "$BIN/$c" ] || return 1; done
  is_slurm_wrapper "$BIN/qstat" && PATH="$BIN:$PATH" timeout 20 "$BIN/qstat" -Q >/dev/null 2>&1
}

case "${1:-start}" in
  start) ;;
  status)
    if answers; then echo "slurm-wlm-torque wrappers answer ($BIN/qsub)"; exit 0; fi
    echo "slurm-wlm-torque wrappers missing in $BIN or Slurm not answering"; exit 1 ;;
  *) echo "usage: $0 [start|status]" >&2; exit 2 ;;
esac

if [ "$(id -u)" != 0 ]; then log "run this as root (it installs packages and starts daemons)"; exit 1; fi

on_path="$(command -v qstat 2>/dev/null || true)"
if [ -n "$on_path" ] && ! is_slurm_wrapper "$on_path" && ! is_gridengine "$on_path"; then
  log "the qstat on PATH ($on_path) is neither Slurm's Torque wrapper nor Grid Engine's: this machine has its own PBS."
  log "The PBS tests run only on the wrappers over the test cluster of start-slurm.sh; refusing to go on."
  exit 1
fi

export DEBIAN_FRONTEND=noninteractive
apt_install() {
  apt-get install -y -q --no-install-recommends -o DPkg::Lock::Timeout=600 "$@" >/dev/null || {
    apt-get update -q >/dev/null
    apt-get install -y -q --no-install-recommends -o DPkg::Lock::Timeout=600 "$@" >/dev/null
  }
}
missing=()
for p in libslurm-perl libslurmdb-perl libswitch-perl slurm-client; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then log "installing ${missing[*]}"; apt_install "${missing[@]}"; fi

# The wrappers must match the installed Slurm (they load its Perl API): same version as slurm-client.
version="$(dpkg-query -W -f='${Version}' slurm-client)"
if [ "$(cat "$PREFIX/.version" 2>/dev/null)" != "$version" ] || ! is_slurm_wrapper "$BIN/qsub"; then
  log "unpacking slurm-wlm-torque $version into $PREFIX"
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' EXIT
  chmod 755 "$tmp"  # apt-get download runs as _apt
  deb="$(ls /var/cache/apt/archives/slurm-wlm-torque_"${version/:/%3a}"_all.deb 2>/dev/null | head -n 1 || true)"
  if [ -z "$deb" ]; then
    (cd "$tmp" && { apt-get download -q "slurm-wlm-torque=$version" >/dev/null 2>&1 \
        || { apt-get update -q >/dev/null && apt-get download -q "slurm-wlm-torque=$version" >/dev/null; }; })
    deb="$(ls "$tmp"/slurm-wlm-torque_*.deb)"
  fi
  rm -rf "$PREFIX"
  mkdir -p "$PREFIX"
  dpkg -x "$deb" "$PREFIX"
  echo "$version" > "$PREFIX/.version"
fi
for c in sbatch srun scancel squeue scontrol salloc; do  # qsub runs ${FindBin::Bin}/sbatch
  target="$(command -v "$c" 2>/dev/null || true)"
  [ -n "$target" ] || { log "$c not found: install slurm-client (scripts/start-slurm.sh does)"; exit 1; }
  [ "$(readlink "$BIN/$c" 2>/dev/null)" = "$target" ] || ln -sfn "$target" "$BIN/$c"
done
chmod -R go-w "$PREFIX"

bash "$HERE/start-slurm.sh"

for _ in $(seq 1 20); do
  if answers; then
    mkdir -p "$STATE_DIR"
    tmp_state="$(mktemp "$STATE_DIR/.pbs.state.XXXXXX")"
    {
      echo "# the Torque wrappers scripts/start-pbs.sh unpacked and checked, on the cluster of start-slurm.sh;"
      echo "# the PBS tests put bin first on PATH"
      echo "prefix=$PREFIX"
      echo "bin=$BIN"
      for c in qsub qstat qdel; do echo "$c=$(readlink -f "$BIN/$c")"; done
    } > "$tmp_state"
    chmod 644 "$tmp_state"
    mv -f "$tmp_state" "$STATE_DIR/pbs.state"
    log "qsub/qstat/qdel (Slurm's Torque wrappers in $BIN) answer; marked in $STATE_DIR/pbs.state"
    exit 0
  fi
  sleep 0.5
done
log "qstat -Q does not answer: check \`PATH=$BIN:\$PATH qstat -Q\` and scripts/start-slurm.sh status"
exit 1
