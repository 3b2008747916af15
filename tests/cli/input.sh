#!/usr/bin/env bash
# Checkpoint input the commands refuse at once or read only as far as a
# checkpoint can go: devices that are no checkpoint (/dev/zero,
# /dev/urandom) and endless pipes that start with a valid header, for
# restore (read as it comes, --verify-first), info and diff.  Every command
# runs under `timeout`: a hang fails the case.  Spools go to a private
# TMPDIR.
. "$(dirname "$0")/lib.bash"

export TMPDIR=$T/spool
mkdir -p "$TMPDIR"
"$W" new ws 1M --part-max 16 || { fail setup "new ws"; done_tests; }
"$W" checkpt ws "$T/ws.ckpt" --style v2 || { fail setup "checkpt ws"; done_tests; }
head -c 80 "$T/ws.ckpt" >"$T/hdr"

# fails CASE REGEX CMD...: CMD exits 1 with one line on stderr matching REGEX
# (what it prints on stdout, a listing for info, does not matter).
fails() {
  local name=$1 re=$2; shift 2
  run "$@"
  if [ "$RC" -ne 1 ]; then fail "$name" "exit status $RC, want 1 ($*)"
  elif [ "$(wc -l <"$T/err")" -ne 1 ] || ! grep -Eq -- "$re" "$T/err"; then
    fail "$name" "stderr is not one line matching /$re/ ($*)"
  else pass "$name"; fi
}

magic='not a wksp checkpoint: bad magic 0x0000000000000000 \(expected 0xf17eda2c3731c591\)$'
err restore_dev_zero 1 "^wksp: restore: restoring \"ws\" from \"/dev/zero\": /dev/zero: $magic" \
  timeout 20 "$W" restore ws /dev/zero
err restore_dev_zero_verify_first 1 "^wksp: restore: .*/dev/zero: $magic" \
  timeout 20 "$W" restore ws /dev/zero --verify-first
err restore_dev_urandom 1 '^wksp: restore: .*/dev/urandom: not a wksp checkpoint: bad magic 0x[0-9a-f]{16} \(expected 0xf17eda2c3731c591\)$' \
  timeout 20 "$W" restore ws /dev/urandom
fails info_dev_zero "^wksp: info: reading checkpoint \"/dev/zero\": /dev/zero: $magic" \
  timeout 20 "$W" info /dev/zero
fails info_dev_zero_v0 "^wksp: info: .*/dev/zero: $magic" timeout 20 "$W" info /dev/zero -v 0
err info_check_dev_zero 1 "^wksp: info: .*/dev/zero: $magic" timeout 20 "$W" info /dev/zero --check
err diff_dev_zero 3 "^wksp: diff: comparing \"ws\" with checkpoint \"/dev/zero\": /dev/zero: $magic" \
  timeout 20 "$W" diff ws /dev/zero
check spool_dir_empty [ -z "$(ls -A "$TMPDIR")" ]

# endless PREFIX: PREFIX then zeros on standard output until the reader goes
# away; the bytes written end up in $T/written.
endless() {
  python3 - "$1" "$T/written" <<'EOF'
import sys
out, n, b = sys.stdout.buffer, 0, open(sys.argv[1], 'rb').read()
try:
    while True:
        out.write(b)
        out.flush()
        n += len(b)
        b = bytes(65536)
except OSError:
    pass
open(sys.argv[2], 'w').write(str(n))
EOF
}

# piped HOW CASE ...: `HOW CASE ...` (err or fails) with standard input from
# `endless $T/hdr` through a FIFO.
piped() {
  rm -f "$T/fifo" "$T/written"
  mkfifo "$T/fifo"
  endless "$T/hdr" 2>/dev/null >"$T/fifo" &
  local feeder=$!
  RUN_STDIN=$T/fifo "$@"
  wait "$feeder"
}

# the bytes read stay within the bound the message names (plus buffers)
bounded() {
  local bound
  bound=$(grep -Eo 'can be \([0-9]+ bytes\)' "$T/err" | grep -Eo '[0-9]+')
  [ -n "$bound" ] && [ "$bound" -lt 2000000 ] && [ "$(cat "$T/written")" -le $((bound + 3 * 1048576)) ]
}

longer='-: longer than a checkpoint of this geometry can be \([0-9]+ bytes\)$'
piped err restore_endless 1 '^wksp: restore: restoring "ws" from "standard input": -: info' \
  timeout 20 "$W" restore ws - --threads 1
check restore_endless_read_little [ "$(cat "$T/written")" -le $((3 * 1048576)) ]
piped err restore_endless_pipelined 1 '^wksp: restore: restoring "ws" from "standard input": -: info' \
  timeout 20 "$W" restore ws - --threads 2
piped err restore_endless_verify_first 1 "^wksp: restore: restoring \"ws\" from \"standard input\": $longer" \
  timeout 20 "$W" restore ws - --verify-first
check restore_endless_verify_first_bounded bounded
piped fails info_endless "^wksp: info: reading checkpoint \"-\": $longer" timeout 20 "$W" info -
check info_endless_bounded bounded
piped err info_check_endless 1 "^wksp: info: .*$longer" timeout 20 "$W" info - --check
check info_check_endless_bounded bounded
piped err diff_endless 3 "^wksp: diff: comparing \"ws\" with checkpoint \"standard input\": $longer" \
  timeout 20 "$W" diff ws -
check diff_endless_bounded bounded
check spool_dir_empty_after [ -z "$(ls -A "$TMPDIR")" ]

done_tests
