#!/usr/bin/env bash
# Records real Grid Engine outputs into this folder (how tests/data/sge/*.txt were made; see SOURCE.md).
# Run as root on the cell of scripts/start-sge.sh, with no other jobs queued. Each command's stdout
# goes to <name>.txt, stderr (when not empty) to <name>.stderr.txt, the exit status to <name>.rc.
set -uo pipefail
OUT="$(cd "$(dirname "$0")" && pwd)/recorded"
W="${SGE_RECORD_DIR:-/tmp/sge-record}"
rm -rf "$W"; mkdir -p "$W/logs"; cd "$W"
rec() {  # $1=name, rest: the command
  local name="$1"; shift
  "$@" >"$OUT/$name.txt" 2>"$OUT/$name.stderr.txt"; echo $? >"$OUT/$name.rc"
  [ -s "$OUT/$name.stderr.txt" ] || rm -f "$OUT/$name.stderr.txt"
}
sub() { qsub -terse -cwd -j y -o "$W/logs" -S /bin/bash "$@"; }
printf '#!/bin/bash\nsleep "${1:-2}"\nexit "${2:-0}"\n' > job.sh
printf '#!/bin/bash\nsleep 1\nkill -9 $$\n' > kill9.sh
printf '#!/bin/bash\nsleep 2\n[ "$SGE_TASK_ID" = 2 ] && exit 3\nexit 0\n' > arr.sh

wave1() {
# wave 1: exit 0, exit 3, h_rt kill, kill -9, an array with a failing task, -hold_jid on the failing job
rec qsub-terse-ok sub -N ok_job job.sh 3 0
ok=$(cat "$OUT/qsub-terse-ok.txt")
rec qsub-plain-fail qsub -cwd -j y -o "$W/logs" -S /bin/bash -N fail_job job.sh 3 3
fail=$(grep -o '[0-9]\+' "$OUT/qsub-plain-fail.txt" | head -1)
hrt=$(sub -N hrt_job -l h_rt=0:0:4 job.sh 60 0)
k9=$(sub -N kill9_job kill9.sh)
rec qsub-terse-array sub -N arr_job -t 1-4 arr.sh
arr=$(cut -d. -f1 "$OUT/qsub-terse-array.txt")
dep=$(sub -N dep_on_fail -hold_jid "$fail" job.sh 1 0)
held=$(sub -N held_job -h job.sh 1 0)
eqw=$(qsub -terse -cwd -j y -o /nonexistent/dir/x.log -S /bin/bash -N eqw_job job.sh 1 0)
rec qsub-odd-name sub -N 'q"uo<b>te&amp' job.sh 1 0
odd=$(cat "$OUT/qsub-odd-name.txt")
echo "ok=$ok fail=$fail hrt=$hrt k9=$k9 arr=$arr dep=$dep held=$held eqw=$eqw odd=$odd" > "$OUT/record-ids.txt"
sleep 1.5
rec qstat-xml-w1-t0 qstat -xml
rec qstat-u-all-xml-w1-t0 qstat -u '*' -xml
rec qstat-w1-t0 qstat
rec qstat-j-dep-hqw-xml qstat -j "$dep" -xml
rec qstat-j-held-xml qstat -j "$held" -xml
rec qstat-j-array-xml qstat -j "$arr" -xml
sleep 4
rec qstat-xml-w1-t1 qstat -xml
rec qstat-j-eqw-xml qstat -j "$eqw" -xml
rec qstat-j-eqw qstat -j "$eqw"
rec qstat-j-many-xml qstat -j "$eqw,$held,$dep,999999" -xml
sleep 6
rec qstat-xml-w1-t2 qstat -xml
# leave nothing behind that would run for long
rec qdel-many qdel "$held" "$eqw" 999999
for _ in $(seq 1 60); do [ -z "$(qstat -s pr)" ] && break; sleep 1; done
rec qstat-xml-empty qstat -xml
sleep 17   # accounting flush_time is 15 s by default
rec qacct-j-ok qacct -j "$ok"
rec qacct-j-fail-exit3 qacct -j "$fail"
rec qacct-j-hrt qacct -j "$hrt"
rec qacct-j-kill9 qacct -j "$k9"
rec qacct-j-array qacct -j "$arr"
rec qacct-j-dep-ran-after-failed-parent qacct -j "$dep"
rec qacct-j-held-deleted qacct -j "$held"
rec qacct-j-eqw-deleted qacct -j "$eqw"
rec qacct-j-unknown qacct -j 999999
rec qacct-E-b-all qacct -o root -E -b "$(date -d '-5 min' +%y%m%d%H%M)" -j

}

wave2() {
# wave 2: cancel running, cancel pending, suspended
run=$(sub -N run_long job.sh 300 0)
run2=$(sub -N del_running job.sh 300 0)
pend=$(sub -N del_pending job.sh 1 0)
echo "run=$run run2=$run2 pend=$pend" >> "$OUT/record-ids.txt"
for _ in $(seq 1 30); do qstat -s r | grep -q del_running && break; sleep 0.5; done
qmod -sj "$run" >/dev/null
sleep 2
rec qstat-xml-w2-suspended qstat -xml
rec qdel-running qdel "$run2"
rec qdel-pending qdel "$pend"
sleep 1
rec qstat-xml-w2-after-qdel qstat -xml
rec qdel-suspended qdel "$run"
rec qdel-unknown qdel 999999
for _ in $(seq 1 60); do [ -z "$(qstat)" ] && break; sleep 1; done
sleep 17
rec qacct-j-qdel-running qacct -j "$run2"
rec qacct-j-qdel-pending qacct -j "$pend"
rec qacct-j-qdel-suspended qacct -j "$run"
}

wave3() {
# wave 3: an error state (Eqw: the output path cannot be opened), a name with odd characters running
eqw=$(qsub -terse -cwd -j y -o /nonexistent/dir/x.log -S /bin/bash -N eqw_job job.sh 1 0)
echo "eqw2=$eqw" >> "$OUT/record-ids.txt"
for _ in $(seq 1 40); do qstat | grep -q Eqw && break; sleep 0.5; done
rec qstat-xml-w3-eqw qstat -xml
rec qstat-j-eqw-state-xml qstat -j "$eqw" -xml
rec qstat-j-eqw-state qstat -j "$eqw"
rec qmod-cj-eqw qmod -cj "$eqw"
sleep 1
rec qstat-xml-w3-after-clear qstat -xml
qdel "$eqw" >/dev/null
sleep 17
rec qacct-j-eqw-state-deleted qacct -j "$eqw"
}

extra() {
# qacct's batched form when no job of the owner ended in the window: a summary table, no records
rec qacct-E-b-none qacct -o nobody -E -b "$(date -d '-10 min' +%Y%m%d%H%M.%S)" -j
# qrls of a held job and of an unknown one
held=$(sub -N rls_job -h job.sh 1 0)
rec qrls-held qrls "$held"
rec qrls-unknown qrls 999999
qdel "$held" >/dev/null
}

case "${1:-all}" in
  all) wave1; wave2; wave3; extra ;;
  *) "$1" ;;
esac
