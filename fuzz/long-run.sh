#!/bin/bash
# Long fuzz run of one target: stops once the fuzzer process has used SECONDS of CPU time
# (default 3600), or earlier if libFuzzer's own limits in ARGS (e.g. -runs=10000000) are met.
# Counting CPU time, not wall time, keeps the hour honest when several targets share the cores.
# The stop is SIGUSR1, libFuzzer's graceful exit, so the final stats are printed.
#
#   fuzz/long-run.sh TARGET [SECONDS] [-- libFuzzer ARGS...]
#   → fuzz/long-runs/TARGET.log (libFuzzer output) and TARGET.cpu (last CPU/wall reading)
# Starts from the committed seeds/TARGET and regressions/TARGET, the test vectors (vectors.sh)
# and the local corpus/TARGET
# (not in git), and writes the new inputs it finds to corpus/TARGET.
set -euo pipefail
cd "$(dirname "$0")"
t=${1:?usage: long-run.sh TARGET [SECONDS] [-- ARGS...]}
shift
limit=3600
if [ $# -gt 0 ] && [ "$1" != "--" ]; then limit=$1; shift; fi
[ $# -gt 0 ] && [ "$1" = "--" ] && shift
mkdir -p long-runs
log=long-runs/$t.log
now=long-runs/$t.cpu
RUSTC_BOOTSTRAP=1 cargo fuzz build -O "$t"
bin=target/x86_64-unknown-linux-gnu/release/$t
mkdir -p "corpus/$t"
./vectors.sh "$t" "corpus/$t"   # the test vectors it parses, from their own folders
dirs=("corpus/$t" "seeds/$t")
[ -d "regressions/$t" ] && dirs+=("regressions/$t")
start=$(date +%s)
"$bin" "${dirs[@]}" -print_final_stats=1 -max_total_time=$((limit * 20)) "$@" > "$log" 2>&1 &
pid=$!
tck=$(getconf CLK_TCK)
while kill -0 "$pid" 2>/dev/null; do
  read -r -a f < "/proc/$pid/stat" || break
  cpu=$(( (f[13] + f[14]) / tck ))
  echo "cpu=$cpu wall=$(( $(date +%s) - start ))" > "$now"
  if [ "$cpu" -ge "$limit" ]; then kill -USR1 "$pid"; break; fi
  sleep 10
done
status=0
wait "$pid" || status=$?
grep -a '^stat::' "$log" || true
cat "$now"
exit "$status"
