#!/usr/bin/env bash
# Builds libFuzzer targets with clang-14 (+ASan+UBSan) against the library
# sources and runs each for a while on a copy of its seed corpus.
#   scripts/fuzz.sh SECONDS fuzz/fuzz_a.c [fuzz/fuzz_b.c ...]
# Binaries go to build/fuzz-clang/, work corpora and crash files to
# build/fuzz-clang/<name>/.  New inputs are merged back into
# fuzz/corpus/<name>/ (libFuzzer -merge=1, so only inputs adding coverage)
# only when FUZZ_MERGE=1.  Exit status 1 if any target crashed.
set -euo pipefail
secs=${1:?usage: scripts/fuzz.sh SECONDS fuzz/fuzz_a.c ...}
shift
cd "$(dirname "$0")/.."
cc=${FUZZ_CC:-clang-14}
out=build/fuzz-clang
mkdir -p "$out"
lib_src=$(ls src/util/*.c src/shmem/*.c src/wksp/*.c src/frame/*.c src/checkpt/*.c 2>/dev/null || true)
flags=(-std=c17 -g -O1 -fno-omit-frame-pointer -fsanitize=fuzzer,address,undefined
       -fno-sanitize-recover=undefined -Iinclude -Isrc -D_GNU_SOURCE -DWKSP_VERSION='"fuzz"' -pthread)
status=0
for target in "$@"; do
  name=$(basename "$target" .c)
  name=${name#fuzz_}
  bin=$out/fuzz_$name
  echo "== building $bin"
  # shellcheck disable=SC2086
  "$cc" "${flags[@]}" -o "$bin" "$target" $lib_src -llz4 -lcrypto
  work=$out/$name
  rm -rf "$work/corpus"
  mkdir -p "$work/corpus" "$work/artifacts"
  [ -d "fuzz/corpus/$name" ] && cp -r "fuzz/corpus/$name/." "$work/corpus/"
  echo "== running $bin for ${secs}s"
  if ! "$bin" -max_total_time="$secs" -rss_limit_mb=2048 -timeout=10 \
        -artifact_prefix="$work/artifacts/" "$work/corpus" 2>"$work/log"; then
    echo "!! $name crashed; see $work/log and $work/artifacts/"
    tail -n 40 "$work/log"
    status=1
  fi
  grep -E '^Done|#[0-9]+.*(DONE|pulse)' "$work/log" | tail -n 2 || true
  if [ "${FUZZ_MERGE:-0}" = 1 ]; then
    mkdir -p "fuzz/corpus/$name"
    "$bin" -merge=1 "fuzz/corpus/$name" "$work/corpus" 2>>"$work/log"
    echo "== merged: fuzz/corpus/$name has $(ls "fuzz/corpus/$name" | wc -l) files"
  fi
done
exit $status
