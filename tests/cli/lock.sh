#!/usr/bin/env bash
# Waiting for the workspace lock: `wksp checkpt W - | wksp restore W -` (the
# same workspace on both sides, which waited forever before) ends at once
# with one clear error on each side and the workspace unchanged; a small
# one, whose checkpoint fits in the pipe, still works; a checkpt or restore
# blocked behind another process says once which pid holds the lock, and
# -v reports the wait apart from the transfer.
. "$(dirname "$0")/lib.bash"

# "big": 8 MB of random bytes (its checkpoint is far larger than a pipe).
"$W" new big 16M --part-max 64 || { fail setup "new big"; done_tests; }
g=$("$W" alloc big 8000000 --tag 7) || fail setup "alloc"
head -c 8000000 /dev/urandom >"$T/rand"
"$W" write "$g" "$T/rand" || fail setup "write"
"$W" query big --json >"$T/q0"

unchanged() { # the allocations and their bytes are as at setup
  "$W" query big --json >"$T/q1" && cmp -s "$T/q0" "$T/q1" && "$W" read "$g" | cmp -s - "$T/rand"
}

# pipeline CHECKPT-OPTIONS RESTORE-OPTIONS: runs `checkpt big - | restore
# big -` under a timeout; $T/status gets both statuses ("" if it never
# ended), $T/ck_err and $T/rs_err their stderr.
pipeline() {
  rm -f "$T/status"
  timeout -k 5 20 bash -c "\"$W\" checkpt big - $1 2>\"$T/ck_err\" | \"$W\" restore big - $2 2>\"$T/rs_err\";
    echo \"\${PIPESTATUS[*]}\" >\"$T/status\""
  touch "$T/status"
}

# self_feed CASE CHECKPT-OPTIONS RESTORE-OPTIONS
self_feed() {
  local name=$1 st
  pipeline "$2" "$3"
  st=$(cat "$T/status")
  if [ -z "$st" ]; then fail "$name" "the pipeline did not end within 20 s"
  elif [ "$st" != "1 1" ]; then fail "$name" "statuses '$st', want '1 1'"
  elif [ "$(wc -l <"$T/rs_err")" -ne 1 ] ||
    ! grep -Eq '^wksp: restore: restoring "big" from "standard input": .*locked by process [0-9]+, which writes this restore.s input pipe.*cannot be restored from a pipe fed by a checkpoint of itself; write the checkpoint to a file first$' "$T/rs_err"
  then fail "$name" "restore said: $(cat "$T/rs_err")"
  elif [ "$(wc -l <"$T/ck_err")" -ne 1 ] ||
    ! grep -Eq '^wksp: checkpt: writing checkpoint of "big" to "standard output": the reader closed the pipe before the end \(broken pipe\)' "$T/ck_err"
  then fail "$name" "checkpt said: $(cat "$T/ck_err")"
  else pass "$name"; fi
  check "${name}_unchanged" unchanged
}

self_feed self_feed_v3 "" ""
self_feed self_feed_v2_one_thread "--style v2" "--threads 1"

# --verify-first reads the whole pipe before locking: no wait at all.
pipeline "" "--verify-first"
both_ok() { [ "$(cat "$T/status")" = "0 0" ] && [ ! -s "$T/rs_err" ] && [ ! -s "$T/ck_err" ]; }
check self_feed_verify_first_works both_ok
check self_feed_verify_first_unchanged unchanged

# A checkpoint that fits in the pipe: the writer finishes and releases the
# lock while the restore waits, silently.
"$W" new small 1M || fail setup "new small"
"$W" alloc small 1000 --tag 3 >/dev/null || fail setup "alloc small"
out_ok_silent() { [ "$(cat "$T/out")" = "0 0" ] && [ ! -s "$T/err" ]; }
for i in 1 2 3 4 5; do
  timeout -k 5 20 bash -c "\"$W\" checkpt small - | \"$W\" restore small -; echo \"\${PIPESTATUS[*]}\"" >"$T/out" 2>"$T/err"
  out_ok_silent || break
done
check small_pipeline_works out_ok_silent

# ---- waiting behind another holder ---------------------------------------------
# hold_lock SECONDS: a `wksp checkpt big -` into a FIFO whose reader takes
# one byte (the writer locks before its first byte, so it holds the lock
# then), waits SECONDS, then drains it.  HP: the holder's pid.
hold_lock() {
  rm -f "$T/fifo" "$T/started"
  mkfifo "$T/fifo"
  { head -c 1 >"$T/started"; sleep "$1"; cat >/dev/null; } <"$T/fifo" &
  RP=$!
  "$W" checkpt big - >"$T/fifo" 2>/dev/null &
  HP=$!
  local i
  for i in $(seq 200); do [ -s "$T/started" ] && return 0; sleep 0.05; done
  return 1
}

"$W" checkpt big "$T/a.ckpt" || fail setup "checkpt big"

# waits CASE COMMAND...: the command, run while another process holds the
# lock, succeeds and says once on stderr which pid holds it; with -v its
# summary gives the wait apart.
waits() {
  local name=$1; shift
  if ! hold_lock 1.5; then fail "$name" "no lock holder"; return; fi
  run "$@"
  wait "$HP" "$RP"
  local cmd=$2
  if [ "$RC" -ne 0 ]; then fail "$name" "exit status $RC"
  elif [ "$(grep -c '^wksp: .*waiting for the lock' "$T/err")" -ne 1 ] ||
    ! grep -Eq "^wksp: $cmd: waiting for the lock of \"big\", held by pid $HP \\($COMM\\)\$" "$T/err"
  then fail "$name" "no single notice naming pid $HP ($cmd)"
  elif ! grep -Eq "^$cmd: big: .* in [0-9.]+ s, .*/s \\(after [0-9.]+ s waiting for the lock\\)\$" "$T/err"
  then fail "$name" "the -v summary does not give the wait apart"
  else pass "$name"; fi
}

waits checkpt_waits "$W" checkpt big "$T/b.ckpt" -v
waits restore_file_waits "$W" restore big "$T/a.ckpt" -v
RUN_STDIN=$T/a.ckpt waits restore_stdin_file_waits "$W" restore big - -v
check restored_unchanged unchanged

# A pipe fed by another process than the holder: waited for, with the notice.
if hold_lock 1.5; then
  cat "$T/a.ckpt" | "$W" restore big - >"$T/out" 2>"$T/err"
  rc=$?
  wait "$HP" "$RP"
  check restore_pipe_status [ "$rc" -eq 0 ]
  check restore_pipe_waits grep -Eq "^wksp: restore: waiting for the lock of \"big\", held by pid $HP \\($COMM\\)\$" "$T/err"
else
  fail restore_pipe_waits "no lock holder"
fi
check restore_pipe_unchanged unchanged

# Nobody holds the lock: no notice, no wait in the summary.
run "$W" restore big "$T/a.ckpt" -v
check free_lock_status [ "$RC" -eq 0 ]
check free_lock_silent [ "$(grep -c lock "$T/err")" -eq 0 ]

done_tests
