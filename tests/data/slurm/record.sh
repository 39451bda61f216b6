#!/usr/bin/env bash
# Records the real SLURM outputs the unit tests parse, in the exact formats the adapter uses.
# Run as root on the single-node cluster of scripts/start-slurm.sh (no slurmdbd), from anywhere:
#   tests/data/slurm/record.sh
# It submits a small scenario, waits for it, and rewrites tests/data/slurm/recorded/*. Job ids
# in the files are whatever the cluster hands out; the tests read them from the files.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
OUT="$HERE/recorded"
WORK="$(mktemp -d)"
mkdir -p "$OUT"
cd "$WORK"
# Must match celline_jobs_nb/schedulers/slurm/
POLL_FORMAT='%A|%F|%K|%i|%T|%r|%S|%e|%N'
QUEUE_FORMAT="$POLL_FORMAT|%u|%j"
SACCT_FIELDS='JobID,JobIDRaw,State,ExitCode,DerivedExitCode,Submit,Start,End,Elapsed,MaxRSS,TotalCPU,ReqMem,AllocCPUS,NodeList'
SACCT_C_FIELDS='JobID,JobIDRaw,State,ExitCode,Submit,Start,End,Elapsed,NodeList'

sub() { sbatch --parsable -o "$WORK/slurm-%j.out" "$@"; }
ok=$(sub -J ok_job --wrap 'sleep 2')
fail=$(sub -J fail_job --wrap 'sleep 1; exit 3')
sig=$(sub -J sig_job --wrap 'sleep 1; kill -9 $$')
dep=$(sub -J dep_on_failed --dependency=afterok:$fail --kill-on-invalid-dep=yes --wrap true)
arr=$(sub -J array_job --array=1-4%2 --wrap 'sleep 3')
held=$(sub -J held_job --hold --wrap true)
begin=$(sub -J begin_later --begin=now+1hour --wrap true)
odd=$(sub -J 'odd | "name" $x <d>' --wrap 'sleep 1')
nl=$(sub -J $'multi\nline|name' --wrap 'sleep 1')
cancel_pending=$(sub -J cancel_pending --hold --wrap true)
ids="$ok,$fail,$sig,$dep,$arr,$held,$begin,$odd,$nl,$cancel_pending"
echo "$ok" > "$OUT/ids.txt"; echo "$ids" >> "$OUT/ids.txt"
sleep 1
squeue -h -r -t all -j "$ids" -o "$POLL_FORMAT" > "$OUT/squeue-poll-t1-mixed.txt"
squeue -h -u root -o "$QUEUE_FORMAT" > "$OUT/squeue-queue-t1.txt"
scancel "$cancel_pending"
sleep 9
squeue -h -r -t all -j "$ids" -o "$POLL_FORMAT" > "$OUT/squeue-poll-t2-final.txt"
squeue -h -t all -j "$arr" -o "$POLL_FORMAT" > "$OUT/squeue-poll-t2-array-not-expanded.txt"
raw=$(squeue -h -r -t all -j "$ids" -o '%A' | sort -un | paste -sd, -)
sacct -c -P -j "$raw" -o "$SACCT_C_FIELDS" > "$OUT/sacct-c-final.txt" 2> "$OUT/sacct-c-final.stderr.txt" || true
sacct -P -j "$ids" -o "$SACCT_FIELDS" > "$OUT/sacct-nodbd.txt" 2> "$OUT/sacct-nodbd.stderr.txt" || echo "exit $?" >> "$OUT/sacct-nodbd.stderr.txt"
scontrol -o show job "$fail" > "$OUT/scontrol-o-fail.txt"
scontrol -o show job "$arr" > "$OUT/scontrol-o-array.txt"
scontrol show job "$odd" > "$OUT/scontrol-odd-name.txt"
squeue -h -r -t all -j 999999 -o "$POLL_FORMAT" > /dev/null 2> "$OUT/squeue-unknown-id.stderr.txt" || true
scontrol release "$held" "$begin" 2>/dev/null || true
scancel "$held" "$begin"
rm -rf "$WORK"
echo "recorded into $OUT"
