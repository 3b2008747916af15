#!/usr/bin/env bash
# Long fuzzing campaign (promise 4 of docs/RELIABILITY.md): every target is
# built with clang-14 + ASan + UBSan (flags as scripts/fuzz.sh) and run for
# FUZZ_RUNS executions (default 10^7) or FUZZ_MAX_TIME seconds (default
# 0 = no limit), whichever comes first, on a copy of its seed corpus.
#   scripts/fuzz_campaign.sh [fuzz/fuzz_a.c ...]    (default: all targets)
# FUZZ_JOBS=N runs N targets at once (default 1).  FUZZ_TIMEOUT: seconds
# (wall clock) after which one input counts as a hang (default 30; raise it
# when the campaign may be paused with SIGSTOP, e.g. around benchmarks).  FUZZ_MERGE=1 merges new
# coverage back into fuzz/corpus/<name>/.  Work files and crash artifacts:
# build/fuzz-campaign/<name>/.  Prints one FIGURE line per target; exit
# status 1 on any finding.
set -uo pipefail
cd "$(dirname "$0")/.."
runs=${FUZZ_RUNS:-10000000}
max_time=${FUZZ_MAX_TIME:-0}
jobs=${FUZZ_JOBS:-1}
timeout=${FUZZ_TIMEOUT:-30}
cc=${FUZZ_CC:-clang-14}
out=build/fuzz-campaign
mkdir -p "$out"
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=(fuzz/fuzz_*.c)
lib_src=$(ls src/util/*.c src/shmem/*.c src/wksp/*.c src/frame/*.c src/checkpt/*.c)
flags=(-std=c17 -g -O1 -fno-omit-frame-pointer -fsanitize=fuzzer,address,undefined
       -fno-sanitize-recover=undefined -Iinclude -Isrc -D_GNU_SOURCE -DWKSP_VERSION='"fuzz"' -pthread)

one() { # target.c
  local target=$1 name bin work t0 rc execs secs finds
  name=$(basename "$target" .c)
  name=${name#fuzz_}
  bin=$out/fuzz_$name
  work=$out/$name
  rm -rf "$work"
  mkdir -p "$work/corpus" "$work/artifacts"
  # shellcheck disable=SC2086
  if ! "$cc" "${flags[@]}" -o "$bin" "$target" $lib_src -llz4 -lcrypto 2>"$work/build.log"; then
    echo "FIGURE 4 fuzz-$name: build failed (see $work/build.log)"
    return 1
  fi
  [ -d "fuzz/corpus/$name" ] && cp -r "fuzz/corpus/$name/." "$work/corpus/"
  t0=$SECONDS
  "$bin" -runs="$runs" -max_total_time="$max_time" -rss_limit_mb=2048 -timeout="$timeout" -close_fd_mask=2 \
    -print_final_stats=1 -artifact_prefix="$work/artifacts/" "$work/corpus" >"$work/log" 2>&1
  rc=$?
  secs=$((SECONDS - t0))
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/log" | tail -n 1)
  [ -z "$execs" ] && execs=$(sed -n 's/^Done \([0-9]*\) runs.*/\1/p' "$work/log" | tail -n 1)
  [ -z "$execs" ] && execs=$(grep -o '^#[0-9]*' "$work/log" | tail -n 1 | tr -d '#')
  finds=$(ls "$work/artifacts" | wc -l)
  [ "$rc" -ne 0 ] && [ "$finds" -eq 0 ] && finds=1
  if [ "${FUZZ_MERGE:-0}" = 1 ] && [ "$finds" -eq 0 ]; then
    mkdir -p "fuzz/corpus/$name"
    "$bin" -merge=1 -close_fd_mask=2 "fuzz/corpus/$name" "$work/corpus" >>"$work/merge.log" 2>&1
  fi
  echo "FIGURE 4 fuzz-$name: ${execs:-0} executions (target $runs) in ${secs} s ($(( ${execs:-0} / (secs > 0 ? secs : 1) )) exec/s) under ASan+UBSan, $finds findings, corpus $(ls "$work/corpus" | wc -l) inputs"
  if [ "$finds" -ne 0 ]; then
    grep -m1 -A20 -E 'ERROR|deadly signal|runtime error' "$work/log"
    return 1
  fi
  return 0
}

status=0
# Start the next target as soon as any running one ends.
for t in "${targets[@]}"; do
  while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do wait -n || status=1; done
  one "$t" &
done
while [ "$(jobs -rp | wc -l)" -gt 0 ]; do wait -n || status=1; done
exit $status
