#!/usr/bin/env bash
# Incremental checkpoints from the command line: checkpt --index, --since
# (file and standard output, the note when BASE is read whole), index,
# restore of a chain (every member checked before the target changes),
# fold, the errors in one line.
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

# diff of a chain: what diff of a full checkpoint of the same state says
ok diff_chain_same "$W" diff src "$T/base" "$T/d1" "$T/d2"
cp "$T/out" "$T/dc"
"$W" diff src "$T/now" >"$T/df"
check diff_chain_as_full cmp -s "$T/dc" "$T/df"
check diff_chain_seal grep -q '^seal: .* matches what it holds' "$T/dc"
printf 'Z' | "$W" write "$a" -
run "$W" diff src "$T/base" "$T/d1" "$T/d2" -v
check diff_chain_byte test "$RC" -eq 1
check diff_chain_byte_says grep -Eq '^\[[0-9]+,[0-9]+\) tag 1: bytes differ from offset 0$' "$T/out"
cp "$T/out" "$T/dc"
"$W" diff src "$T/now" -v >"$T/df"
check diff_chain_byte_as_full cmp -s "$T/dc" "$T/df"
printf 'X' | "$W" write "$a" -
"$W" alloc src 1000 --tag 9 >/dev/null
"$W" free "$a"
run "$W" diff src "$T/base" "$T/d1" "$T/d2" --json -v
check diff_chain_freed test "$RC" -eq 1
check diff_chain_freed_says grep -q '"only_ckpt":1,"only_wksp":1' "$T/out"
cp "$T/out" "$T/dc"
"$W" diff src "$T/now" --json -v >"$T/df"
check diff_chain_freed_as_full cmp -s "$T/dc" "$T/df"
err diff_chain_swapped 3 'd2 applies to content digest [0-9a-f]+; the state before it .* chain out of order' \
  "$W" diff src "$T/base" "$T/d2" "$T/d1"
err diff_chain_delta_first 3 'starts with a full checkpoint' "$W" diff src "$T/d1" "$T/d2"
RUN_STDIN="$T/d1" run "$W" diff src "$T/base" - "$T/d2" -v
check diff_chain_stdin_member test "$RC" -eq 1
"$W" diff src "$T/base" "$T/d1" "$T/d2" -v >"$T/dc_v"
check diff_chain_stdin_as_file cmp -s "$T/out" "$T/dc_v"
ok diff_chain_restored "$W" restore src "$T/base" "$T/d1" "$T/d2" -q

# refused, the target unchanged
"$W" checkpt dst "$T/before" --verify -q
err chain_order 1 'chain out of order' "$W" restore dst "$T/base" "$T/d2"
err chain_delta_first 1 'starts with a full checkpoint' "$W" restore dst "$T/d1" "$T/d2"
err chain_stdin_twice 2 '"-" twice in a chain' "$W" restore dst "$T/base" - -
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
# without --verify-first BASE is checked by the result's digest: still named
err chain_damaged_base_after_reset 1 'bad does not match its seal.*target reset to empty' \
  "$W" restore dst "$T/bad" "$T/d1" "$T/d2"

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
cat "$T/d2" | "$W" new s2 --from "$T/base" "$T/d1" -
run "$W" diff s2 "$T/now"
check new_from_chain_stdin test "$RC" -eq 0
"$W" delete s2
err new_from_chain_stdin_twice 2 '"-" twice in a chain' "$W" new s2 --from "$T/base" - -
err new_size_and_from 2 'SIZE "1M" and --from exclude each other' "$W" new s3 1M --from "$T/base"

# fold: the chain as one full checkpoint, the same frames as a direct one
# of the live state ("now"), sealed; refusals leave nothing at PATH and
# print nothing on standard output
ok fold_chain "$W" fold "$T/base" "$T/d1" "$T/d2" -o "$T/folded" -q
check fold_same_frames same_frames "$T/folded" "$T/now"
ok fold_restores_sealed "$W" restore dst "$T/folded" --require-seal -q
run "$W" diff dst "$T/now"
check fold_restores_live test "$RC" -eq 0
"$W" checkpt src "$T/now2" --style v2 --verify -q
ok fold_v2 "$W" fold "$T/base" "$T/d1" "$T/d2" -o "$T/folded2" --style v2 --threads 2
check fold_v2_same_frames same_frames "$T/folded2" "$T/now2"
run "$W" fold "$T/base" "$T/d1" "$T/d2" -o - --threads 1
check fold_stdout test "$RC" -eq 0 -a ! -s "$T/err"
cp "$T/out" "$T/folded_stdout"
check fold_stdout_same_frames same_frames "$T/folded_stdout" "$T/now"
cp "$T/folded" "$T/folded_before"
err fold_exists 1 '^wksp: fold: folding .*base \.\.\. .*d2 into ".*folded": .*file exists.*\(use --force to replace it\)$' \
  "$W" fold "$T/base" "$T/d1" "$T/d2" -o "$T/folded"
check fold_exists_unchanged cmp -s "$T/folded" "$T/folded_before"
ok fold_force "$W" fold "$T/base" "$T/d1" "$T/d2" -o "$T/folded" --force
check fold_force_same_frames same_frames "$T/folded" "$T/now"
err fold_swapped 1 'd2 applies to content digest [0-9a-f]+; .*chain out of order' \
  "$W" fold "$T/base" "$T/d2" "$T/d1" -o "$T/fx"
err fold_skipped 1 'chain out of order' "$W" fold "$T/base" "$T/d2" -o "$T/fx"
err fold_delta_first 1 'starts with a full checkpoint' "$W" fold "$T/d1" "$T/d2" -o "$T/fx"
err fold_damaged_base 1 'bad does not match its seal' "$W" fold "$T/bad" "$T/d1" "$T/d2" -o "$T/fx"
python3 -c 'import sys; d = bytearray(open(sys.argv[1], "rb").read()); d[len(d) // 2] ^= 4; open(sys.argv[2], "wb").write(d)' \
  "$T/d1" "$T/d1flip"
err fold_damaged_delta 1 '^wksp: fold: folding .*: .*d1flip' "$W" fold "$T/base" "$T/d1flip" "$T/d2" -o "$T/fx"
err fold_stdout_refused 1 'chain out of order' "$W" fold "$T/base" "$T/d2" -o -
check fold_refusals_nothing_at_path test ! -e "$T/fx"
err fold_no_output 2 '^wksp: fold: -o PATH is required' "$W" fold "$T/base" "$T/d1"
err fold_stdin_member 2 'every member must be a file' "$W" fold "$T/base" - -o "$T/fx"
err fold_index_stdout 2 '^wksp: fold: --index needs a PATH' "$W" fold "$T/base" "$T/d1" -o - --index
err fold_bad_style 2 'bad --style "v1"' "$W" fold "$T/base" "$T/d1" -o "$T/fx" --style v1
check fold_usage_nothing_at_path test ! -e "$T/fx"

# info of a delta and of an index: kind, digests linking the chain, counts
digest_of() { sed -n "s/^\t$2 *\([0-9a-f]*\)\$/\1/p" "$1"; }
"$W" info "$T/base" -v 2 | sed -n 's/.*content digest xxh3-sum64 \([0-9a-f]*\)$/\1/p' | head -n 1 >"$T/base_digest"
ok info_d1 "$W" info "$T/d1" -v 4
cp "$T/out" "$T/info_d1"
check info_d1_kind grep -q "$(printf '^\tkind     delta$')" "$T/info_d1"
check info_d1_base_is_base test "$(digest_of "$T/info_d1" 'base digest')" = "$(cat "$T/base_digest")"
check info_d1_changed grep -Eq 'pieces      6, changed 1 \(65536 bytes, [0-9]+ in file\)' "$T/info_d1"
check info_d1_per_alloc grep -q 'tag 1: 1 of 5 pieces changed' "$T/info_d1"
ok info_d2 "$W" info "$T/d2" -v 3
d1_digest=$(digest_of "$T/info_d1" 'digest')
check info_d2_links_d1 test -n "$d1_digest" -a "$(digest_of "$T/out" 'base digest')" = "$d1_digest"
check info_d2_freed grep -q 'allocations 1, 300000 bytes (table 24 bytes)' "$T/out"
ok info_index "$W" info "$T/base.wkspidx" -v 1
check info_index_kind grep -q "$(printf '^\tkind     index$')" "$T/out"
python3 -c 'import sys; d = bytearray(open(sys.argv[1], "rb").read()); d[30] ^= 1; open(sys.argv[2], "wb").write(d)' \
  "$T/d1" "$T/d1bad"
run "$W" info "$T/d1bad"
check info_damaged_delta_status test "$RC" -eq 1
check info_damaged_delta_says grep -q 'd1bad: delta name field not zero-filled' "$T/err"
# info of a chain: each link, whether it applies after the one before, the final state
ok info_chain "$W" info "$T/base" "$T/d1" "$T/d2"
check info_chain_linked grep -q '^chain of 3 files: every link holds$' "$T/out"
check info_chain_link2 grep -Eq "^2 .*d1: delta, base digest $(cat "$T/base_digest") = digest of 1, digest $d1_digest, .* 1 of 6 pieces held \(65536 bytes\)" "$T/out"
check info_chain_final grep -Eq '^final state: 1 allocation, 300000 bytes, 5 pieces, content digest [0-9a-f]{16}$' "$T/out"
ok info_chain_swapped "$W" info "$T/base" "$T/d2" "$T/d1"
check info_chain_swapped_says grep -q '^chain of 3 files: does not link at file 2$' "$T/out"
check info_chain_swapped_link grep -Eq '^2 .*d2: delta, base digest [0-9a-f]+ != digest of 1, .*; does not apply here$' "$T/out"
check info_chain_swapped_no_final test "$(grep -c '^final state' "$T/out")" -eq 0
# --json of a delta and of a chain
ok info_json_delta "$W" info "$T/d1" --json
json info_json_delta_fields 'assert d["kind"] == "delta" and d["base_digest"] == "'"$(cat "$T/base_digest")"'" and d["digest"] == "'"$d1_digest"'" and d["changed_cnt"] == 1 and d["changed_sz"] == 65536 and d["piece_cnt"] == 6 and d["seal"] == "ok"'
ok info_json_chain "$W" info "$T/base" "$T/d1" "$T/d2" --json -v 4
json info_json_chain_fields 'assert d["linked"] and [l["kind"] for l in d["links"]] == ["checkpoint", "delta", "delta"] and d["links"][2]["base_digest"] == d["links"][1]["digest"] and d["final"]["alloc_cnt"] == 1 and d["links"][2]["allocations"][0]["tag"] == 1'
ok info_json_checkpt_unchanged "$W" info "$T/base" --json
mkfifo "$T/fifo"
timeout 20 cat "$T/base" >"$T/fifo" &
ok info_json_checkpt_fifo timeout 20 "$W" info "$T/fifo" --json
wait
json info_json_checkpt_fifo_fields 'assert "cgroup_cnt" in d and d["style"] == 2'
json info_json_checkpt_fields 'assert "cgroup_cnt" in d and d["style"] == 2'
# --check of a delta and of a chain: everything files alone can tell
ok info_check_delta "$W" info --check "$T/d1"
ok info_check_chain "$W" info --check "$T/base" "$T/d1" "$T/d2" --json
json info_check_chain_json 'assert d["check"] == "ok" and len(d["paths"]) == 3'
err info_check_chain_swapped 1 'd2 applies to content digest .*chain out of order' "$W" info --check "$T/base" "$T/d2" "$T/d1"
err info_check_chain_damaged_base 1 'bad does not match its seal' "$W" info --check "$T/bad" "$T/d1" "$T/d2"
python3 - "$T/d1" "$T/d1piece" <<'PY'
import struct, sys
d = bytearray(open(sys.argv[1], "rb").read())
pieces_off, index_off = struct.unpack_from("<QQ", d, len(d) - 128 + 32)
d[(pieces_off + index_off) // 2] ^= 1
open(sys.argv[2], "wb").write(d)
PY
ok info_piece_damage_unseen "$W" info "$T/base" "$T/d1piece"
err info_check_delta_piece 1 'd1piece' "$W" info --check "$T/d1piece"
err info_check_chain_piece 1 'd1piece' "$W" info --check "$T/base" "$T/d1piece"
# "-" as a chain member: a pipe, spooled (bounded by the delta's header)
cat "$T/d1" | "$W" info "$T/base" - "$T/d2" >"$T/out" 2>"$T/err"
check info_chain_stdin grep -q '^chain of 3 files: every link holds$' "$T/out"
cat "$T/d1" | "$W" info --check "$T/base" - "$T/d2" >"$T/out" 2>"$T/err"
check info_check_chain_stdin grep -q '^chain of 3 files: ok' "$T/out"
cat "$T/d1" | "$W" info --check - >"$T/out" 2>"$T/err"
check info_check_delta_stdin grep -q '^-: ok' "$T/out"
cat "$T/d1piece" | "$W" info --check - >"$T/out" 2>"$T/err"
check info_check_delta_stdin_damaged grep -q 'pieces damaged\|does not hash\|hash' "$T/err"
head -c 400 "$T/d1" | "$W" info --check "$T/base" - >"$T/out" 2>"$T/err"
check info_check_chain_stdin_truncated test "$?" -eq 1 -a ! -s "$T/out"
(cat "$T/d1"; printf 'x') | "$W" info --check "$T/base" - >"$T/out" 2>"$T/err"
check info_check_chain_stdin_trailing grep -q '/dev/stdin: footer unmagic' "$T/err"
"$W" new dst2 8M --part-max 128 --seed 4
cat "$T/d1" | "$W" restore dst2 "$T/base" - "$T/d2" -q
run "$W" diff dst2 "$T/now"
check restore_chain_stdin_member test "$RC" -eq 0
cat "$T/base" | "$W" restore dst2 - "$T/d1" -q
run "$W" diff dst2 "$T/base" "$T/d1"
check restore_chain_stdin_base test "$RC" -eq 0
done_tests
