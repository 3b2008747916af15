#!/usr/bin/env bash
# Incremental checkpoints from the command line: checkpt --index, --since
# (file and standard output, the note when BASE is read whole), index,
# restore of a chain (every member checked before the target changes), the
# errors in one line.
. "$(dirname "$0")/lib.bash"

"$W" new src 8M --part-max 128 --seed 3 || { fail setup "new src"; done_tests; }
"$W" new dst 8M --part-max 128 --seed 4 || { fail setup "new dst"; done_tests; }
a=$("$W" alloc src 300000 --tag 1) && b=$("$W" alloc src 5000 --tag 2) || fail setup alloc
seq 1 60000 | head -c 300000 | "$W" write "$a" -
"$W" memset "$b" 0x41

ok checkpt_index "$W" checkpt src "$T/base" --index -q
check index_written test -s "$T/base.wkspidx"
printf 'X' | "$W" write "$a" -
ok delta_1 "$W" checkpt src "$T/d1" --since "$T/base" -q
run "$W" checkpt src "$T/d1v" --since "$T/base" -v
check delta_summary grep -Eq '^delta of "src" since .*: 1 of [0-9]+ pieces changed' "$T/err"
"$W" free "$b"
ok delta_2 "$W" checkpt src "$T/d2" --since "$T/d1" --style v2 -q
ok restore_chain "$W" restore dst "$T/base" "$T/d1" "$T/d2" -q
"$W" checkpt src "$T/now" --verify -q
run "$W" diff dst "$T/now"
check chain_is_live test "$RC" -eq 0

# standard output, and the note when the sidecar is missing
rm -f "$T/base.wkspidx"
run "$W" checkpt src - --since "$T/base"
check delta_stdout test "$RC" -eq 0 -a -s "$T/out"
check delta_note grep -Eq '^wksp: checkpt: note: .*base.wkspidx: missing: read .* whole; `wksp index' "$T/err"
ok index_repair "$W" index "$T/base"
run "$W" checkpt src "$T/d3" --since "$T/base"
check no_note_with_index test "$RC" -eq 0 -a ! -s "$T/err"

# refused, the target unchanged
"$W" checkpt dst "$T/before" --verify -q
err chain_order 1 'chain out of order' "$W" restore dst "$T/base" "$T/d2"
err chain_delta_first 1 'starts with a full checkpoint' "$W" restore dst "$T/d1" "$T/d2"
err chain_stdin 2 'every member must be a file' "$W" restore dst "$T/base" -
err restore_delta 1 'is a wksp delta' "$W" restore dst "$T/d1"
"$W" checkpt src "$T/unsealed" -q
err since_unsealed 1 'not sealed' "$W" checkpt src "$T/d4" --since "$T/unsealed"
check since_unsealed_nothing test ! -e "$T/d4"
err index_unsealed 1 'not sealed' "$W" index "$T/unsealed"
err index_and_since 2 'exclude each other' "$W" checkpt src "$T/d5" --index --since "$T/base"
run "$W" diff dst "$T/before"
check target_untouched test "$RC" -eq 0

# a swapped chain and a damaged base: refused before the target changes
err chain_swapped 1 'd2 applies to content digest [0-9a-f]+; the state before it \(.*base\) has [0-9a-f]+: chain out of order' \
  "$W" restore dst "$T/base" "$T/d2" "$T/d1"
python3 -c 'import sys; d = bytearray(open(sys.argv[1], "rb").read()); d[len(d) // 2] ^= 4; open(sys.argv[2], "wb").write(d)' \
  "$T/base" "$T/bad"
err chain_damaged_base 1 'bad does not match its seal' "$W" restore dst "$T/bad" "$T/d1" "$T/d2" --verify-first
run "$W" diff dst "$T/before"
check target_untouched_after_swap_and_damage test "$RC" -eq 0

# new --from a chain: sized and restored; a refused chain leaves no workspace
ok new_from_chain "$W" new fresh --from "$T/base" "$T/d1" "$T/d2"
run "$W" diff fresh "$T/now"
check new_from_chain_is_live test "$RC" -eq 0
err new_from_swapped 1 '^wksp: new: restoring "sw" from the chain .*: .*d2 applies to content digest .*chain out of order' \
  "$W" new sw --from "$T/base" "$T/d2" "$T/d1"
run "$W" query sw
check new_from_swapped_nothing_left test "$RC" -ne 0
err new_from_damaged_base 1 'bad does not match its seal' "$W" new dmg --from "$T/bad" "$T/d1" "$T/d2"
run "$W" query dmg
check new_from_damaged_nothing_left test "$RC" -ne 0
err new_from_chain_stdin 2 'every member must be a file' "$W" new s2 --from "$T/base" -
err new_size_and_from 2 'SIZE "1M" and --from exclude each other' "$W" new s3 1M --from "$T/base"
done_tests
