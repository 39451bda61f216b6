#!/usr/bin/env bash
# Records the outputs tests/unit/test_pbs_parse.py replays, in the exact command forms
# celline_jobs_nb/schedulers/pbs/ uses, from Slurm's Torque wrappers (slurm-wlm-torque) on the
# cluster of scripts/start-slurm.sh. Run as root from anywhere: bash tests/data/pbs/record.sh
# Writes tests/data/pbs/recorded/*; job ids are in recorded/ids.txt. Takes 10-120 s (the node may be busy).
set -euo pipefail
OUT="$(cd "$(dirname "$0")" && pwd)/recorded"
WORK="$(mktemp -d)"
IDS=""
cleanup() { [ -z "$IDS" ] || qdel $IDS >/dev/null 2>&1 || true; rm -rf "$WORK"; }  # leave nothing queued
trap cleanup EXIT
cd "$WORK"
mkdir -p "$OUT"
script() {  # $1=file $2..=#PBS lines, then the body from stdin
  local file=$1; shift
  { echo '#!/bin/bash'; for d in "$@"; do echo "#PBS $d"; done; cat; } > "$file"
}
sub() { qsub -j oe -o "$WORK/$1.log" "$1.sh"; }
state() { qstat -f "$1" | sed -n 's/^[[:space:]]*job_state = //p'; }
wait_done() {  # wait (up to 120 s: the 2-CPU node may be busy with other tests) until every id is C
  for _ in $(seq 1 240); do
    local all=1
    for id in "$@"; do [ "$(state "$id")" = C ] || all=0; done
    [ "$all" = 1 ] && return 0
    sleep 0.5
  done
  echo "jobs $* did not finish in 120 s" >&2; return 1
}

printf 'sleep 2\n' | script ok.sh "-N ok_job"
printf 'sleep 2; exit 3\n' | script fail.sh "-N fail_job"
printf 'sleep 300\n' | script run.sh "-N run_long"
printf 'sleep 300\n' | script run2.sh "-N run_long2"
printf 'true\n' | script held.sh "-N held_job" "-h"
printf 'true\n' | script pend.sh "-N cancel_pending"
printf 'echo $SLURM_ARRAY_TASK_ID\n' | script arr.sh "-N array_job" "-t 1-4%2"
ok=$(sub ok); fail=$(sub fail); run=$(sub run); run2=$(sub run2); held=$(sub held); pend=$(sub pend); arr=$(sub arr)
printf 'true\n' | script dep.sh "-N dep_on_fail" "-W depend=afterok:$fail"
dep=$(sub dep)
qsub -j oe -o "$WORK/x.log" -N bad -q no_such_queue ok.sh > "$OUT/qsub-bad-queue.txt" 2>&1 || echo "exit $?" >> "$OUT/qsub-bad-queue.txt"
IDS="$ok $fail $run $run2 $held $pend $arr $dep"
echo "$IDS" > "$OUT/ids.txt"
sleep 1
qstat -f "$ok" "$fail" "$run" "$run2" "$held" "$pend" "$arr" "$dep" > "$OUT/qstat-f-t1.txt"
qdel "$pend"
wait_done "$ok" "$fail" "$dep" "$pend"
qstat -f "$ok" "$fail" "$run" "$run2" "$held" "$pend" "$arr" "$dep" 999999 > "$OUT/qstat-f-t2.txt"
set +e
qstat -f 999998 999999 > "$OUT/qstat-f-unknown-ids.txt" 2> "$OUT/qstat-f-unknown-ids.stderr.txt"
echo "exit $?" >> "$OUT/qstat-f-unknown-ids.stderr.txt"
qstat --version > "$OUT/qstat-version.txt" 2>&1
echo "exit $?" >> "$OUT/qstat-version.txt"
scontrol -o show job "$dep" > "$OUT/scontrol-o-dep.txt"
scontrol -o show job "$arr" > "$OUT/scontrol-o-array.txt"
qdel "$run" "$ok" 999999 > "$OUT/qdel-mixed.txt" 2>&1
echo "exit $?" >> "$OUT/qdel-mixed.txt"
set -e
sleep 1
qstat -f "$run" "$run2" > "$OUT/qstat-f-t3-after-qdel.txt"
qdel "$run2" "$held" >/dev/null 2>&1 || true
echo "recorded into $OUT (ids: $(cat "$OUT/ids.txt"))"
