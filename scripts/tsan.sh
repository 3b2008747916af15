#!/usr/bin/env bash
# ThreadSanitizer run of the parallel checkpoint / restore tests (promise 6
# of docs/RELIABILITY.md): builds each test with clang-14
# -fsanitize=thread against the library sources and runs it.
#   scripts/tsan.sh            (TSAN_TESTS="a.c b.c" to choose the tests)
# Binaries and logs go to build/tsan/.  Prints one FIGURE line; exit status
# 1 on any ThreadSanitizer report or test failure.
set -uo pipefail
cd "$(dirname "$0")/.."
cc=${TSAN_CC:-clang-14}
out=build/tsan
mkdir -p "$out"
lib_src=$(ls src/util/*.c src/shmem/*.c src/wksp/*.c src/frame/*.c src/checkpt/*.c)
# The library version as in the Makefile: tests compare info frames.
version=$(sed -n 's/^VERSION *:= *//p' Makefile)
flags=(-std=c17 -g -O1 -fno-omit-frame-pointer -fsanitize=thread -Iinclude -Isrc -D_GNU_SOURCE
       "-DWKSP_VERSION=\"$version\"" -pthread)
tests=${TSAN_TESTS:-tests/reliability/test_parallel.c tests/checkpt/test_pool.c tests/checkpt/test_progress.c tests/checkpt/test_restore.c tests/checkpt/test_write.c tests/checkpt/test_stream.c tests/checkpt/test_pipeline.c tests/checkpt/test_diff.c tests/checkpt/test_digest.c}
status=0 passed=0 failed=0 reports=0 progs=0
t0=$SECONDS
for t in $tests; do
  name=$(basename "$t" .c)
  bin=$out/$name
  echo "== building $bin"
  # shellcheck disable=SC2086
  if ! "$cc" "${flags[@]}" -o "$bin" "$t" $lib_src -llz4 -lcrypto; then
    status=1
    continue
  fi
  progs=$((progs + 1))
  echo "== running $bin"
  TSAN_OPTIONS="halt_on_error=0 exitcode=66 second_deadlock_stack=1" "$bin" >"$out/$name.out" 2>"$out/$name.err"
  rc=$?
  p=$(grep -c '^PASS ' "$out/$name.out")
  f=$(grep -c '^FAIL ' "$out/$name.out")
  r=$(grep -c 'WARNING: ThreadSanitizer' "$out/$name.err")
  grep -E '^(PASS|FAIL) ' "$out/$name.out"
  # exit status 66 = ThreadSanitizer reports (counted apart from tests)
  [ "$rc" -ne 0 ] && [ "$rc" -ne 66 ] && [ "$f" -eq 0 ] && f=1
  passed=$((passed + p)) failed=$((failed + f)) reports=$((reports + r))
  if [ "$r" -ne 0 ] || [ "$f" -ne 0 ]; then
    status=1
    grep -A30 'WARNING: ThreadSanitizer' "$out/$name.err" | head -n 60
  fi
done
echo "FIGURE 6 tsan: $progs programs ($tests) under ThreadSanitizer (clang-14): $passed tests passed, $failed failed, $reports ThreadSanitizer reports ($((SECONDS - t0)) s)"
exit $status
