#!/usr/bin/env bash
# Runs every test program and shell test and counts their PASS/FAIL lines.
# A program that dies or exits non-zero without reporting a failure counts as
# one failure.  Last line: "N passed, N failed".  Exit status 1 on any failure.
#   tests/run.sh BUILD_DIR     (BUILD_DIR holds tests/ and fuzz/ binaries)
# WKSP_TEST_RUNNER (e.g. qemu-aarch64) is put before each test program.
# WKSP_TEST_SKIP (comma-separated) names whole programs or shell tests as
# listed below (tests/wksp/test_wksp_kill, tests/cli/lock.sh) or single
# tests (test_wksp/test_prefault) not to run: each is a SKIP line, counted
# apart (scripts/cross.sh).
set -u
runner=(${WKSP_TEST_RUNNER:-})
build=$(cd "${1:?usage: tests/run.sh BUILD_DIR}" && pwd)
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root" # the test programs find tests/vectors and fuzz corpora from here
timeout_s=${WKSP_TEST_TIMEOUT:-600}
passed=0 failed=0 skipped=0
log=$(mktemp -d)
trap 'rm -rf "$log"' EXIT

run_one() { # name, command...
  local name=$1; shift
  case ",${WKSP_TEST_SKIP:-}," in
  *",$name,"*) echo "SKIP $name"; skipped=$((skipped + 1)); return ;;
  esac
  local out="$log/out" t0=$SECONDS
  timeout -k 5 "$timeout_s" "$@" >"$out" 2>"$log/err"
  local rc=$?
  local p f
  p=$(grep -c '^PASS ' "$out")
  f=$(grep -c '^FAIL ' "$out")
  skipped=$((skipped + $(grep -c '^SKIP ' "$out")))
  grep '^SKIP ' "$out"
  grep '^FAIL ' "$out"
  if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
    f=1; echo "FAIL $name (exit status $rc)"
  fi
  if [ "$f" -ne 0 ]; then
    sed 's/^/    /' "$log/err" | tail -n 40
  fi
  printf '%-40s %4d passed %3d failed  %3ds\n' "$name" "$p" "$f" $((SECONDS - t0))
  passed=$((passed + p)); failed=$((failed + f))
}

for t in $(find "$build/tests" -type f -perm -u+x 2>/dev/null | sort); do
  run_one "${t#$build/}" "${runner[@]}" "$t"
done
for t in $(find "$build/fuzz" -name 'replay_*' -type f -perm -u+x 2>/dev/null | sort); do
  n=${t##*/replay_}
  run_one "fuzz/replay_$n" "${runner[@]}" "$t" "$root/fuzz/corpus/$n"
done
for t in $(ls "$root"/tests/cli/*.sh 2>/dev/null | sort); do
  run_one "tests/cli/${t##*/}" bash "$t"
done

[ "$skipped" -eq 0 ] || echo "$skipped skipped"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
