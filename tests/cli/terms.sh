#!/usr/bin/env bash
# One convention and messages in the tool's terms (issue 16): -q/-v/--json
# mean the same in every command, info's levels (-v N, -vv, --level N),
# diff's exit status as cmp(1)'s, errors without the library's function
# names and nothing on stdout when a command fails, tag outside the data
# region, singular/plural, the nearest command or option suggested, and a
# restore that does not fit saying how to make a workspace that does.
. "$(dirname "$0")/lib.bash"

"$W" new w 1M --part-max 16 --mode 0640 || fail setup "new w"
a1=$("$W" alloc w 4K --tag 7) || fail setup "alloc"
a2=$("$W" alloc w 8K --tag 9) || fail setup "alloc"
printf 'hello' | "$W" write "$a1" || fail setup "write"

# ---- errors: the library's cause, no C function names, nothing on stdout --------------
# (hugetlbfs mounts found in /proc/mounts are searched too and follow in the list)
dir=$WKSP_SHMEM_DIR
err delete_missing 1 "^wksp: delete: deleting workspace \"nope\": no region named \"nope\" \\(looked in $dir(, [^)]+)?\\)$" \
  "$W" delete nope
err attach_missing 1 "^wksp: verify: attaching workspace \"nope\": no region named \"nope\" \\(looked in $dir(, [^)]+)?\\)$" \
  "$W" verify nope
err new_exists 1 "^wksp: new: creating workspace \"w\": region $dir/w already exists$" "$W" new w 1M
err alloc_too_big 1 '^wksp: alloc: allocating 2147483648 bytes in "w": no free range of 2147487743 bytes \(size 2147483648, align 4096\) in "w"; largest free [0-9]+$' \
  "$W" alloc w 2G
err free_outside 1 '^wksp: free: freeing w:5: gaddr 5 is outside the data region \[1152,1048575\) of "w"$' "$W" free w:5
err bad_addr_name 2 '^wksp: read: bad address "a b:4096": name "a b": byte 1 is 0x20' "$W" read "a b:4096"
# Every failure above and these: no "wksp_...:" chain in the line.
for args in "delete nope" "alloc w 2G" "free w:5" "memset w:5 1" "new w 1M" "new s 1000" "rebuild nope" \
            "free w:$((${a2#w:} + 100000))" "checkpt nope $T/x" "restore w $T/none" "info $T/none"; do
  run "$W" $args
  if [ "$RC" -ne 0 ] && ! grep -q 'wksp_[a-z_]*:' "$T/err" && [ ! -s "$T/out" ]; then pass "no_function_names: $args"
  else fail "no_function_names: $args" "status $RC or a function name"; fi
done

# tag: outside the data region is an error, as for free and read; free space is tag 0
err tag_outside 1 '^wksp: tag: looking up w:1: outside the data region \[1152,1048575\) of "w"$' "$W" tag w:1
err tag_outside_json 1 'outside the data region' "$W" tag w:1 --json
ok tag_free_space "$W" tag "w:$((${a2#w:} + 100000))"
out_is tag_free_space_zero 0
ok tag_json "$W" tag "$a1" --json
json tag_json_fields "assert d == {'schema': 1, 'name': 'w', 'gaddr': ${a1#w:}, 'tag': 7}, d"

# ---- unknown commands and options: the nearest one -----------------------------------
err typo_command 2 "^wksp: unknown command \"lsit\"; did you mean \"list\"\\? \\(see 'wksp help'\\)$" "$W" lsit
err typo_command_swap 2 'did you mean "checkpt"\?' "$W" chekcpt
err typo_insert 2 'did you mean "restore"\?' "$W" restor
err typo_prefix 2 'did you mean "styles"\?' "$W" sty
err typo_help 2 "^wksp: help: unknown command \"lsit\"; did you mean \"list\"\\?" "$W" help lsit
err typo_none 2 "^wksp: unknown command \"zzzz\" \\(see 'wksp help'\\)$" "$W" zzzz
err typo_option 2 "^wksp: list: unknown option \"--jsno\"; did you mean --json\\? \\(see 'wksp list --help'\\)$" \
  "$W" list --jsno
err typo_option_none 2 "^wksp: list: unknown option \"--xyzzy\" \\(see 'wksp list --help'\\)$" "$W" list --xyzzy

# ---- help CMD is CMD --help, and lists every option ------------------------------------
ok help_checkpt "$W" help checkpt
cp "$T/out" "$T/help1"
ok help_checkpt_flag "$W" checkpt --help
check help_same cmp -s "$T/out" "$T/help1"
out_has help_checkpt_synopsis '^       \[--verify\] \[--index \| --since BASE\] \[-q\|-v\] \[--json\] \[--bytes\]$'
out_has help_checkpt_quiet '^  -q, --quiet          print nothing but errors and warnings \(no progress,$'

# ---- -q, -v, --json mean the same everywhere -----------------------------------------
ok checkpt_json "$W" checkpt w "$T/w.ckpt" --json --verify
json checkpt_json_fields "
import os
assert d['schema'] == 1 and d['name'] == 'w' and d['path'] == '$T/w.ckpt', d
assert d['alloc_sz'] == 4096 + 8192 and d['style'] == 'v3' and d['sealed'] is True, d
assert d['file_sz'] == os.stat('$T/w.ckpt').st_size and d['seconds'] >= 0 and d['lock_wait_seconds'] >= 0, d"
ok checkpt_json_v2 "$W" checkpt w "$T/w2.ckpt" --json --style v2 --bytes
json checkpt_json_v2_fields "assert d['style'] == 'v2' and d['sealed'] is False, d"
err checkpt_json_stdout 2 '^wksp: checkpt: --json needs a PATH: standard output carries the checkpoint$' \
  "$W" checkpt w - --json
"$W" new r --from "$T/w.ckpt" || fail setup "new r"
ok restore_json "$W" restore r "$T/w.ckpt" --json
json restore_json_fields "
assert set(d) == {'schema', 'name', 'path', 'alloc_sz', 'seconds', 'lock_wait_seconds'}, d
assert d['name'] == 'r' and d['alloc_sz'] == 12288, d"
RUN_STDIN=$T/w.ckpt run "$W" restore r - --json -v
check restore_json_stdin_status [ "$RC" -eq 0 ]
json restore_json_stdin_path "assert d['path'] == '-' and d['alloc_sz'] == 12288, d"
check restore_verbose_line grep -Eq '^restore: r: 12.0 KiB of allocations in [0-9.]+ s, ' "$T/err"
for cmd in checkpt restore diff; do
  err "${cmd}_quiet_verbose" 2 "^wksp: $cmd: --quiet and --verbose exclude each other$" "$W" "$cmd" w "$T/w.ckpt" -q -v
  err "${cmd}_quiet_json" 2 "^wksp: $cmd: --quiet and --json exclude each other$" "$W" "$cmd" w "$T/w.ckpt" -q --json
done
for cmd in check verify; do
  ok "${cmd}_quiet" "$W" "$cmd" w -q
  check "${cmd}_quiet_silent" [ ! -s "$T/out" ]
  ok "${cmd}_json" "$W" "$cmd" w --json
  json "${cmd}_json_fields" "assert d == {'schema': 1, 'name': 'w', 'result': 'ok'}, d"
  err "${cmd}_quiet_json" 2 "^wksp: $cmd: --quiet and --json exclude each other$" "$W" "$cmd" w -q --json
done
ok alloc_json "$W" alloc w 100 --tag 3 --align 64 --json
json alloc_json_fields "
assert d['schema'] == 1 and d['name'] == 'w' and d['size'] == 100 and d['align'] == 64 and d['tag'] == 3, d
assert d['addr'] == 'w:%d' % d['gaddr'] and d['gaddr'] % 64 == 0, d"
"$W" free "w:$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["gaddr"])' "$T/out")"
ok styles_json "$W" styles --json
json styles_json_fields "
assert [s['name'] for s in d['styles']] == ['v1', 'v2', 'v3'], d
assert [s['write'] for s in d['styles']] == [False, True, True] and all(s['read'] for s in d['styles']), d
assert [s['default'] for s in d['styles']] == [False, False, True], d"
ok styles_text "$W" styles
out_is styles_text_out "STYLE  WRITE  READ  DESCRIPTION
v1     no     yes   legacy stream, no frames, no compression
v2     yes    yes   framed, raw (uncompressed) frames
v3     yes    yes   framed, LZ4 frames (the file header says style 2); the default"

# "mode": the same encoding (octal digits in a string) in every JSON
ok list_json "$W" list --json
json list_json_mode "assert [r['mode'] for r in d['regions'] if r['name'] == 'w'] == ['0640'], d"
ok info_json "$W" info "$T/w.ckpt" --json
json info_json_mode "assert d['info']['mode'] == '0600', d"
"$W" checkpt w "$T/m.ckpt" --mode 0640 -q || fail setup "checkpt --mode"
ok info_json_mode_640 "$W" info "$T/m.ckpt" --json
json info_json_mode_640_fields "assert d['info']['mode'] == '0640', d"

# ---- info levels: -v N, -vN, -vv..., --level N, a bare -v is 1 ------------------------------
"$W" info "$T/w.ckpt" -v 2 >"$T/l2" || fail setup "info -v 2"
"$W" info "$T/w.ckpt" >"$T/l1" || fail setup "info"
for form in "-vv" "-v2" "--level 2" "--level=2" "--verbose 2" "--verbose=2"; do
  ok "info_level_$form" "$W" info "$T/w.ckpt" $form
  check "info_level_same_$form" cmp -s "$T/out" "$T/l2"
done
ok info_level_bare "$W" info "$T/w.ckpt" -v
check info_level_bare_is_1 cmp -s "$T/out" "$T/l1"
ok info_level_bare_before "$W" info -v "$T/w.ckpt"
check info_level_bare_before_is_1 cmp -s "$T/out" "$T/l1"
ok info_level_vvvv "$W" info "$T/w.ckpt" -vvvv
"$W" info "$T/w.ckpt" -v 4 >"$T/l4" || fail setup "info -v 4"
check info_level_vvvv_is_4 cmp -s "$T/out" "$T/l4"
err info_level_vvvvvv 2 '^wksp: info: bad -v "6": LEVEL is 0..5$' "$W" info "$T/w.ckpt" -vvvvvv
err info_level_both 2 '^wksp: info: --verbose and --level exclude each other$' "$W" info "$T/w.ckpt" -v 2 --level 2
err info_level_bad 2 '^wksp: info: bad --level "9": LEVEL is 0..5$' "$W" info "$T/w.ckpt" --level 9

# ---- info: a damaged checkpoint prints its error, nothing on stdout -------------------------
head -c 300 "$T/w.ckpt" >"$T/short.ckpt"
err info_damaged 1 "^wksp: info: reading checkpoint \"$T/short.ckpt\": " "$W" info "$T/short.ckpt"
err info_damaged_v3 1 "^wksp: info: reading checkpoint \"$T/short.ckpt\": " "$W" info "$T/short.ckpt" -v 3
RUN_STDIN=$T/short.ckpt err info_damaged_stdin 1 '^wksp: info: reading checkpoint "-": ' "$W" info -

# ---- diff: 0 the same, 1 they differ, 2 usage, 3 trouble --------------------------------------
digest=$("$W" diff w "$T/w.ckpt" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["digest"])')
ok diff_same "$W" diff w "$T/w.ckpt"
out_is diff_same_out "2 allocations the same, 0 with other bytes, 0 with another tag, 0 only in the checkpoint, 0 only in the workspace
seal: the checkpoint's content digest $digest matches what it holds"
ok diff_same_quiet "$W" diff w "$T/w.ckpt" -q
check diff_same_quiet_silent [ ! -s "$T/out" ]
"$W" memset "$a2" 1
run "$W" diff w "$T/w.ckpt"
check diff_differ_status [ "$RC" -eq 1 ]
check diff_differ_no_err [ ! -s "$T/err" ]
out_is diff_differ_out "1 allocation the same, 1 with other bytes, 0 with another tag, 0 only in the checkpoint, 0 only in the workspace
seal: the checkpoint's content digest $digest matches what it holds
first difference: [${a2#w:},$((${a2#w:} + 8192))) tag 9: bytes differ from offset 0"
run "$W" diff w "$T/w.ckpt" -q
check diff_differ_quiet [ "$RC" -eq 1 ]
check diff_differ_quiet_silent [ ! -s "$T/out" ]
check diff_differ_quiet_no_err [ ! -s "$T/err" ]
err diff_usage 2 '^wksp: diff: missing argument PATH' "$W" diff w
err diff_trouble 3 "^wksp: diff: comparing \"w\" with checkpoint \"$T/none\": " "$W" diff w "$T/none"
err diff_trouble_damaged 3 "^wksp: diff: comparing \"w\" with checkpoint \"$T/short.ckpt\": " "$W" diff w "$T/short.ckpt"
err diff_trouble_unsealed 3 "^wksp: diff: checkpoint \"$T/w2.ckpt\" is not sealed" "$W" diff w "$T/w2.ckpt" --require-seal

# ---- a restore that does not fit says how to make one that does ---------------------------
"$W" new small 64K --part-max 4 || fail setup "new small"
big=$("$W" alloc w 600K) || fail setup "alloc big"
"$W" checkpt w "$T/big.ckpt" -q || fail setup "checkpt big"
err restore_no_fit 1 "^wksp: restore: checkpoint \"$T/big.ckpt\" does not fit workspace \"small\": .*lies outside .*; \`wksp new NAME --from $T/big.ckpt\` makes one that fits \\(or \`wksp new NAME [0-9]+K --part-max 16\`\\)$" \
  "$W" restore small "$T/big.ckpt"
# the advice works: both ways of making the workspace take the restore
hint=$(sed -nE 's/.*\(or `wksp new NAME ([0-9]+K) --part-max ([0-9]+)`\)$/\1 --part-max \2/p' "$T/err")
ok restore_advice_from "$W" new fit1 --from "$T/big.ckpt"
ok restore_advice_from_fits "$W" restore fit1 "$T/big.ckpt"
ok restore_advice_size "$W" new fit2 $hint
ok restore_advice_size_fits "$W" restore fit2 "$T/big.ckpt"
ok restore_advice_same "$W" diff fit2 "$T/big.ckpt" -q

done_tests
