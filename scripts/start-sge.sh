#!/usr/bin/env bash
# A single-host Son of Grid Engine "cell" for CI and the Grid Engine tests (Debian 12's
# gridengine-master / gridengine-exec / gridengine-client 8.1.9, run as root, no systemd).
# Based on ../shared/reference/start-sge.reference.sh.
#
# Usage:
#   scripts/start-sge.sh [start]   configure the cell (idempotent), start sge_qmaster + sge_execd,
#                                  wait until a test job has run and its accounting record exists
#   scripts/start-sge.sh stop      stop the daemons this script started (by the pids its state file holds)
#   scripts/start-sge.sh status    which daemons run and `qstat -f`; exit 0 only when the cell answers
#
# Install first (.ci/run does): preseed debconf with shared/gridenginemaster = $(hostname),
# shared/gridenginecell = default, shared/gridengineconfig = true, then
# `apt-get install gridengine-master gridengine-exec gridengine-client`. Debian's postinst creates the
# cell (SGE_ROOT=/var/lib/gridengine, SGE_CELL=default, berkeleydb spooling in /var/spool/gridengine).
# gridengine-client conflicts with slurm-wlm-torque: scripts/start-pbs.sh unpacks that into its own prefix.
#
# What it sets: act_qmaster = this host, host alias "<host> localhost" (the hostname resolves to
# 127.0.0.1, which SGE otherwise reads back as "localhost"), admin/submit/exec host, queue all.q on
# this host with one slot per CPU, a parallel environment "smp" ($pe_slots) attached to all.q,
# min_uid/min_gid 0 (jobs as root), no login shells for jobs, scheduling every second. The accounting
# flush time is left at its default, so the tests meet the same delay before `qacct` knows a job as on real cells.
#
# The mark: once a test job has run, the script writes $CELLINE_JOBS_TEST_CLUSTER_DIR/sge.state
# (default /tmp/celline-jobs-test-cluster, beside start-slurm.sh's slurm.state) with the cell, the
# host and the pids of the daemons it started, and marks the cell itself ($SGE_ROOT/$SGE_CELL/common/
# celline_jobs_test_cell). The tests use a cell only when that state names live daemons and the
# `qstat` on PATH talks to that cell (tests/support.py). This script never touches a Grid Engine it
# did not set up: it refuses to configure a cell whose qmaster is another host, or beside an
# sge_qmaster it did not start; `stop` stops only pids its state file holds.
#
# Note: sge_qmaster listens on 0.0.0.0:6444 and sge_execd on 0.0.0.0:6445 (SGE 8.1.9 has no bind
# address setting): run this on a machine of its own.
set -euo pipefail

export SGE_ROOT="${SGE_ROOT:-/var/lib/gridengine}" SGE_CELL="${SGE_CELL:-default}"
COMMON="$SGE_ROOT/$SGE_CELL/common"
CELL_MARK="$COMMON/celline_jobs_test_cell"
MARK="celline_jobs_nb test cluster"
STATE_DIR="${CELLINE_JOBS_TEST_CLUSTER_DIR:-/tmp/celline-jobs-test-cluster}"
STATE="$STATE_DIR/sge.state"
HOST="$(hostname)"
SLOTS="${SGE_SLOTS:-$(nproc)}"
WAIT_S="${WAIT_S:-90}"
QMASTER_PID=/var/spool/gridengine/qmaster/qmaster.pid
EXECD_PID=/var/run/gridengine/execd.pid

log() { echo "[start-sge] $*" >&2; }
pid_alive() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }
state_get() { [ -f "$STATE" ] && sed -n "s/^$1=//p" "$STATE" | head -n 1 || true; }
started_here() {  # $1=pid file $2=state key
  pid_alive "$1" && [ -n "$(state_get "$2")" ] && [ "$(state_get "$2")" = "$(cat "$1")" ]
}
stop_pid() {  # $1=pid $2=name: TERM, wait up to 20 s, then KILL
  local p="$1"
  log "stopping $2 (pid $p)"
  kill "$p" 2>/dev/null || true
  for _ in $(seq 1 100); do kill -0 "$p" 2>/dev/null || return 0; sleep 0.2; done
  log "$2 still alive, SIGKILL"; kill -9 "$p" 2>/dev/null || true
}
stop_ours() {  # $1=pid file $2=name $3=state key
  if started_here "$1" "$3"; then stop_pid "$(cat "$1")" "$2"; rm -f "$1"
  elif pid_alive "$1"; then log "$2 (pid $(cat "$1")) was not started by this script: left running"
  fi
}
need_root() { if [ "$(id -u)" != 0 ]; then log "run this as root (it configures and starts daemons)"; exit 1; fi; }

if [ "$(id -u)" = 0 ] && [ "${1:-start}" != status ]; then  # concurrent callers wait for each other
  mkdir -p /run/lock
  exec 9>/run/lock/celline-jobs-start-sge.lck
  flock -w 600 9 || { log "another start-sge.sh holds /run/lock/celline-jobs-start-sge.lck"; exit 1; }
fi

case "${1:-start}" in
  start) ;;
  stop)
    need_root
    stop_ours "$EXECD_PID" sge_execd execd_pid
    stop_ours "$QMASTER_PID" sge_qmaster qmaster_pid
    rm -f "$STATE"; exit 0 ;;
  status)
    if [ -f "$STATE" ]; then echo "state: $STATE"; else echo "state: none ($STATE missing)"; fi
    for f in "$QMASTER_PID" "$EXECD_PID"; do
      if pid_alive "$f"; then echo "$f: running ($(cat "$f"))"; else echo "$f: not running"; fi
    done
    if command -v qstat >/dev/null 2>&1 && timeout 10 qstat -f 2>/dev/null; then exit 0; fi
    exit 1 ;;
  *) echo "usage: $0 [start|stop|status]" >&2; exit 2 ;;
esac
need_root

[ -d "$COMMON" ] || { log "$COMMON missing: install gridengine-master gridengine-exec gridengine-client first"; exit 1; }
command -v qconf >/dev/null || { log "qconf not on PATH: install gridengine-client"; exit 1; }

# ---------- 0. never take over a Grid Engine this script did not set up ----------
if [ ! -f "$CELL_MARK" ]; then
  current="$(cat "$COMMON/act_qmaster" 2>/dev/null || true)"
  case "$current" in
    ""|"$HOST"|localhost|"$(hostname -s)") ;;
    *) log "refusing: the cell $COMMON names qmaster '$current', not this host: it belongs to a real cluster"; exit 1 ;;
  esac
fi
if pid_alive "$QMASTER_PID" && ! started_here "$QMASTER_PID" qmaster_pid && [ ! -f "$CELL_MARK" ]; then
  log "refusing: an sge_qmaster (pid $(cat "$QMASTER_PID")) this script did not start runs an unmarked cell"; exit 1
fi
echo "$MARK: configured by scripts/start-sge.sh" > "$CELL_MARK"

TMP="$(mktemp -d)"; trap 'rm -rf "$TMP"' EXIT
mkdir -p /var/run/gridengine; chown sgeadmin:sgeadmin /var/run/gridengine
declare -A STARTED=()

# ---------- 1. host names: qmaster = this host; "localhost" is an alias of it ----------
if [ "$(cat "$COMMON/act_qmaster" 2>/dev/null)" != "$HOST" ]; then
  echo "$HOST" > "$COMMON/act_qmaster"; log "act_qmaster := $HOST"
fi
if ! grep -qx "$HOST localhost" "$COMMON/host_aliases" 2>/dev/null; then
  echo "$HOST localhost" > "$COMMON/host_aliases"; log "host_aliases := $HOST localhost"
fi
chown sgeadmin:sgeadmin "$COMMON/act_qmaster" "$COMMON/host_aliases"

# ---------- 2. qmaster ----------
if ! pid_alive "$QMASTER_PID"; then
  log "starting sge_qmaster"; /etc/init.d/gridengine-master start >/dev/null 2>&1 9>&- || true
  STARTED[qmaster_pid]=1
fi
for _ in $(seq 1 100); do timeout 10 qstat >/dev/null 2>&1 && break; sleep 0.3; done
timeout 10 qstat >/dev/null || { log "qmaster not answering (see /var/spool/gridengine/qmaster/messages)"; exit 1; }

# ---------- 3. configuration, each step only when needed ----------
qconf -sh 2>/dev/null | grep -qx "$HOST" || qconf -ah "$HOST" >/dev/null 2>&1
qconf -ss 2>/dev/null | grep -qx "$HOST" || qconf -as "$HOST" >/dev/null 2>&1

# global: jobs as root (Debian's min_uid/min_gid 100 refuse uid 0); job shells not started as login
# shells (a login bash runs root's profile first: pyenv's rehash there can wait a minute for its lock).
# The file must be named "global".
qconf -sconf global > "$TMP/global"
if ! grep -Eq '^min_uid +0$' "$TMP/global" || ! grep -Eq '^min_gid +0$' "$TMP/global" \
   || ! grep -Eq '^login_shells +NONE$' "$TMP/global"; then
  sed -i -E 's/^(min_uid +).*/\10/; s/^(min_gid +).*/\10/; s/^(login_shells +).*/\1NONE/; /^#global:/d' "$TMP/global"
  (cd "$TMP" && qconf -Mconf global >/dev/null 2>&1); log "global config: min_uid/min_gid 0, login_shells NONE"
fi

# scheduler: every second, and at once on submit and finish
qconf -ssconf > "$TMP/sconf"
if ! grep -Eq '^schedule_interval +0:0:1$' "$TMP/sconf" || ! grep -Eq '^flush_submit_sec +1$' "$TMP/sconf" \
   || ! grep -Eq '^flush_finish_sec +1$' "$TMP/sconf"; then
  sed -i -E 's/^(schedule_interval +).*/\10:0:1/; s/^(flush_submit_sec +).*/\11/; s/^(flush_finish_sec +).*/\11/' \
    "$TMP/sconf"
  qconf -Msconf "$TMP/sconf" >/dev/null 2>&1; log "scheduler config: interval 1 s, flush 1 s"
fi

# exec host entry
if ! qconf -sel 2>/dev/null | grep -qx "$HOST"; then
  printf 'hostname %s\nload_scaling NONE\ncomplex_values NONE\nuser_lists NONE\nxuser_lists NONE\nprojects NONE\nxprojects NONE\nusage_scaling NONE\nreport_variables NONE\n' \
    "$HOST" > "$TMP/exechost"
  qconf -Ae "$TMP/exechost" >/dev/null 2>&1; log "added exec host $HOST"
fi

# parallel environment "smp": all slots of a job on one host (-pe smp N)
if ! qconf -spl 2>/dev/null | grep -qx smp; then
  printf 'pe_name smp\nslots 9999\nuser_lists NONE\nxuser_lists NONE\nstart_proc_args NONE\nstop_proc_args NONE\nallocation_rule $pe_slots\ncontrol_slaves FALSE\njob_is_first_task TRUE\nurgency_slots min\naccounting_summary FALSE\nqsort_args NONE\n' \
    > "$TMP/smp"
  qconf -Ap "$TMP/smp" >/dev/null 2>&1; log "added parallel environment smp"
fi

# queue all.q on this host, one slot per CPU, with the pe
if qconf -sql 2>/dev/null | grep -qx all.q; then
  qconf -sq all.q | grep -Eq "^hostlist +$HOST\$" || qconf -mattr queue hostlist "$HOST" all.q >/dev/null 2>&1
  qconf -sq all.q | grep -Eq "^slots +$SLOTS\$" || qconf -mattr queue slots "$SLOTS" all.q >/dev/null 2>&1
  qconf -sq all.q | grep -Eq "^pe_list +smp\$" || qconf -mattr queue pe_list smp all.q >/dev/null 2>&1
else
  {
    printf '%-22s%s\n' qname all.q hostlist "$HOST" seq_no 0 load_thresholds NONE suspend_thresholds NONE \
      nsuspend 1 suspend_interval 00:05:00 priority 0 min_cpu_interval 00:05:00 processors UNDEFINED \
      qtype "BATCH INTERACTIVE" ckpt_list NONE pe_list smp rerun FALSE slots "$SLOTS" tmpdir /tmp \
      shell /bin/sh prolog NONE epilog NONE shell_start_mode posix_compliant starter_method NONE \
      suspend_method NONE resume_method NONE terminate_method NONE notify 00:00:60 owner_list NONE \
      user_lists NONE xuser_lists NONE subordinate_list NONE complex_values NONE projects NONE \
      xprojects NONE calendar NONE initial_state default
    for limit in rt cpu fsize data stack core rss vmem; do printf '%-22s%s\n' "s_$limit" INFINITY "h_$limit" INFINITY; done
  } > "$TMP/all.q"
  qconf -Aq "$TMP/all.q" >/dev/null 2>&1; log "added queue all.q ($SLOTS slots)"
fi

# ---------- 4. execd ----------
if ! pid_alive "$EXECD_PID"; then
  log "starting sge_execd"; /etc/init.d/gridengine-exec start >/dev/null 2>&1 9>&- || true
  STARTED[execd_pid]=1
fi

# ---------- 5. wait until a test job has run and is in the accounting file ----------
write_state() {
  local tmp key pidfile
  mkdir -p "$STATE_DIR"; chmod 755 "$STATE_DIR"
  tmp="$(mktemp "$STATE_DIR/.sge.state.XXXXXX")"
  {
    echo "# $MARK: written by scripts/start-sge.sh; the tests check it before using the cell"
    echo "mark=$MARK"
    echo "sge_root=$SGE_ROOT"
    echo "sge_cell=$SGE_CELL"
    echo "host=$HOST"
    echo "qmaster_port=6444"
    echo "qstat=$(readlink -f "$(command -v qstat)")"
    echo "version=$(dpkg-query -W -f='${Version}' gridengine-master 2>/dev/null || echo unknown)"
    for key in qmaster_pid execd_pid; do
      if [ "$key" = qmaster_pid ]; then pidfile="$QMASTER_PID"; else pidfile="$EXECD_PID"; fi
      # a daemon this script started now, or one the previous state already called ours
      if [ -n "${STARTED[$key]:-}" ] || started_here "$pidfile" "$key"; then echo "$key=$(cat "$pidfile")"; fi
    done
  } > "$tmp"
  chmod 644 "$tmp"; mv -f "$tmp" "$STATE"
}

deadline=$(( $(date +%s) + WAIT_S ))
jid="$(cd /tmp && timeout 30 qsub -terse -b y -N celline_smoke -o /dev/null -e /dev/null true)"
log "test job $jid submitted"
while [ "$(date +%s)" -lt "$deadline" ]; do
  if ! timeout 10 qstat -j "$jid" >/dev/null 2>&1 && timeout 10 qacct -j "$jid" 2>/dev/null | grep -Eq '^exit_status +0'; then
    write_state
    log "test job $jid ran (exit 0); qmaster and execd ready; marked in $STATE"
    qstat -f >&2; exit 0
  fi
  # clear an error/alarm state left over from earlier attempts
  if qstat -f 2>/dev/null | grep -Eq "all\.q@.* [aEuc]+ *$"; then qmod -c "all.q@$HOST" >/dev/null 2>&1 || true; fi
  sleep 0.5
done
log "test job $jid did not finish within ${WAIT_S}s"; qstat -f >&2 || true; qstat -j "$jid" >&2 || true
exit 1
