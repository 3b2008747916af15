#!/usr/bin/env bash
# `make reliability`: the long versions of the reliability suite, one
# figure (or more) per promise of docs/RELIABILITY.md.
#   scripts/reliability.sh [BUILD_DIR]      (default: build, i.e. `make`'s)
# Environment: REL_ONLY="1 2 ..." runs only those promises; REL_OUT=dir
# writes the results there instead; WKSP_REL_*
# counts override the long defaults of the test programs; FUZZ_RUNS,
# FUZZ_MAX_TIME, FUZZ_JOBS tune the fuzzing (scripts/fuzz_campaign.sh).
# Results: build/reliability/<promise>.{out,err} and figures.txt (the
# FIGURE lines with date, commit and command).  Exit status 1 if any
# promise failed.
set -uo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
out=${REL_OUT:-build/reliability}
mkdir -p "$out"
only=${REL_ONLY:-1 2 3 4 5 6}
figs=$out/figures.txt
{
  echo "# make reliability, $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(git rev-parse --short HEAD 2>/dev/null || echo '?'),"
  echo "# $(nproc) CPUs, $(uname -sr), load $(cut -d' ' -f1-3 /proc/loadavg)"
} >"$figs"
status=0
declare -A verdict

step() { # promise, command...
  local p=$1 t0=$SECONDS rc
  shift
  echo "== promise $p: $*"
  echo "# promise $p: $*" >>"$figs"
  WKSP_REL_LONG=1 "$@" >"$out/$p.out" 2>"$out/$p.err"
  rc=$?
  grep '^FIGURE ' "$out/$p.out" | tee -a "$figs"
  grep '^FAIL ' "$out/$p.out"
  if [ $rc -ne 0 ] || grep -q '^FAIL ' "$out/$p.out"; then
    verdict[$p]="FAILED (exit $rc; see $out/$p.err)"
    tail -n 20 "$out/$p.err"
    status=1
  else
    verdict[$p]=${verdict[$p]:-"held"}
  fi
  echo "   ($((SECONDS - t0)) s)"
}

for p in $only; do
  case $p in
  1) step 1 bash -c '"$0"/reliability/test_kill_points; a=$?; "$0"/wksp/test_wksp_kill && exit $a' "$build/tests" ;;
  2) step 2 bash -c '"$0"/test_ckpt_faults; a=$?; "$0"/test_cli_faults && exit $a' "$build/tests/reliability" ;;
  3) step 3 "$build/tests/reliability/test_restore_faults" ;;
  4) step 4 scripts/fuzz_campaign.sh ;;
  5) step 5 "$build/tests/reliability/test_stress" ;;
  6) step 6 scripts/tsan.sh ;;
  esac
done

echo "== summary (figures in $figs)"
for p in $only; do echo "promise $p: ${verdict[$p]}"; done
exit $status
