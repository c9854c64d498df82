#!/usr/bin/env bash
# Soak: runs one `meshgrad train` command RUNS times beside a CPU hog (one spinning process per
# core) and checks that no run hangs and every run saves the same bits. Used for the recorded
# soak runs in docs/benchmarks.md; the suite runs it once with a tiny command as a smoke test.
#
#   bench/soak.sh RUNS TIMEOUT_SECONDS OUT_DIR -- meshgrad train ARGS...   (without --save)
#
# Each run gets `--save OUT_DIR/run-N.safetensors`; a run that outlives TIMEOUT_SECONDS counts as
# a hang (its stack is not needed: the pool's own bounded waits would have named the state). The
# last line is `soak: R runs, H hangs, F failures, D distinct results, S s per run (median)`; the
# exit status is 0 only when every run finished and all saved files are identical.
set -euo pipefail
if [ $# -lt 5 ] || [ "$4" != "--" ]; then
  echo "usage: bench/soak.sh RUNS TIMEOUT_SECONDS OUT_DIR -- meshgrad train ARGS..." >&2
  exit 2
fi
runs=$1 limit=$2 out=$3
shift 4
[ "$1" = meshgrad ] || { echo "soak.sh: the command must start with meshgrad, got '$1'" >&2; exit 2; }
shift
root="$(cd "$(dirname "$0")/.." && pwd)"
mkdir -p "$out"

hogs=()
run_pid=""
cleanup() { for p in "${hogs[@]}" $run_pid; do kill "$p" 2>/dev/null || true; done; }
# Interrupted: stop the hogs and the run in flight, then exit (a trap alone would let the loop go on).
trap cleanup EXIT
trap 'cleanup; exit 130' INT TERM
for _ in $(seq "$(nproc)"); do node -e 'for (;;) {}' & hogs+=($!); done

hangs=0 failures=0 times=()
for i in $(seq "$runs"); do
  start=$(date +%s.%N)
  set +e
  timeout --signal=KILL "$limit" node "$root/bin/meshgrad.js" "$@" --save "$out/run-$i.safetensors" >"$out/run-$i.log" 2>&1 &
  run_pid=$!
  wait "$run_pid"
  code=$?
  run_pid=""
  set -e
  seconds=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
  times+=("$seconds")
  if [ "$code" = 137 ]; then hangs=$((hangs + 1)); echo "run $i: killed after $limit s (hang)"
  elif [ "$code" != 0 ]; then failures=$((failures + 1)); echo "run $i: exit $code: $(tail -1 "$out/run-$i.log")"
  else echo "run $i: $seconds s, $(sha256sum "$out/run-$i.safetensors" | cut -c1-16)"; fi
done
distinct=$(sha256sum "$out"/run-*.safetensors 2>/dev/null | cut -d' ' -f1 | sort -u | wc -l)
median=$(printf '%s\n' "${times[@]}" | sort -n | awk '{a[NR]=$1} END {printf "%.1f", a[int((NR+1)/2)]}')
echo "soak: $runs runs, $hangs hangs, $failures failures, $distinct distinct results, $median s per run (median)"
[ "$hangs" = 0 ] && [ "$failures" = 0 ] && [ "$distinct" = 1 ]
