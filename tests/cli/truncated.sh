#!/usr/bin/env bash
# A truncated checkpoint is reported the same way on every input path: "truncated at offset N
# (expected M bytes)", N the size of what was read (offsets from the checkpoint's first byte)
# and M > N where the data in progress needed to reach.  Paths: a file (restore, info), standard
# input that is a file, and a pipe, with one reader thread and two; v2 (RAW) and v3 (LZ4)
# files cut inside the info frame (at 100 bytes), in the middle, inside their last frame (200
# bytes before the end) and inside the footer (10 bytes before the end).
. "$(dirname "$0")/lib.bash"

"$W" new src 4M --part-max 64 || { fail setup "new src"; done_tests; }
for i in 1 2 3 4 5; do
  head -c 100000 /dev/urandom >"$T/rand"
  "$W" write "$("$W" alloc src 100K --tag "$i")" "$T/rand" || { fail setup "write"; done_tests; }
done
"$W" new dst 4M --part-max 64 || { fail setup "new dst"; done_tests; }

# truncated CASE N: the last command's stderr says the checkpoint is truncated at offset N,
# expecting more bytes than that.
truncated() {
  local m
  m=$(sed -En "s/.*: truncated at offset $2 \\(expected ([0-9]+) bytes\\)( \\(target reset to empty\\))?$/\\1/p" "$T/err")
  if [ -z "$m" ]; then fail "$1" "no 'truncated at offset $2 (expected M bytes)' in stderr"
  elif [ "$m" -le "$2" ]; then fail "$1" "expected $m bytes, not more than the $2 read"
  else pass "$1"; fi
}

for style in v2 v3; do
  "$W" checkpt src "$T/$style.ckpt" --style "$style" || fail "setup_$style" "checkpt"
  full=$(stat -c %s "$T/$style.ckpt")
  for cut in info half end ftr; do
    case $cut in
      info) n=100 ;;
      half) n=$((full / 2)) ;;
      end) n=$((full - 200)) ;;
      ftr) n=$((full - 10)) ;;
    esac
    f=$T/$style-$cut.ckpt
    head -c "$n" "$T/$style.ckpt" >"$f"
    c=${style}_$cut
    err "info_$c" 1 "^wksp: info: reading checkpoint \"$f\": " "$W" info "$f"
    truncated "info_${c}_msg" "$n"
    for t in 1 2; do
      err "file_${c}_t$t" 1 "^wksp: restore: restoring \"dst\" from \"$f\": " \
        "$W" restore dst "$f" --threads "$t"
      truncated "file_${c}_t${t}_msg" "$n"
      RUN_STDIN=$f err "stdin_${c}_t$t" 1 '^wksp: restore: restoring "dst" from "standard input": ' \
        "$W" restore dst - --threads "$t"
      truncated "stdin_${c}_t${t}_msg" "$n"
      cat "$f" | "$W" restore dst - --threads "$t" >"$T/out" 2>"$T/err"
      check "pipe_${c}_t${t}_status" [ "${PIPESTATUS[1]}" = 1 ]
      truncated "pipe_${c}_t${t}_msg" "$n"
    done
  done
done

done_tests
