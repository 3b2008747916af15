#!/usr/bin/env bash
# Checkpoint commands: checkpt (file, stdout, --force, --verify, styles,
# refusing a terminal; FIFO, device, directory, socket, symlink targets), restore (file, pipe, stdin file), info (levels, --json
# against its schema, stdin), diff, styles, new --from; restores of the shared reference
# vectors checked against their manifests (tags, ranges, SHA-256).
. "$(dirname "$0")/lib.bash"

# A small workspace with text, zeros, random and a wide tag.
"$W" new src 4M --part-max 128 --seed 3 || { fail setup "new src"; done_tests; }
gaddrs=()
for spec in "100000 1" "5000 2" "300000 3" "1 18446744073709551615" "65536 4"; do
  set -- $spec
  a=$("$W" alloc src "$1" --tag "$2") || fail setup "alloc $spec"
  gaddrs+=("$a")
done
seq 1 20000 | head -c 100000 >"$T/text"
"$W" write "${gaddrs[0]}" "$T/text"
"$W" memset "${gaddrs[1]}" 0
head -c 300000 /dev/urandom >"$T/rand"
"$W" write "${gaddrs[2]}" "$T/rand"
printf 'Z' | "$W" write "${gaddrs[3]}" -
"$W" memset "${gaddrs[4]}" 0x5a

# same_allocs A B: the allocations (tag, range) and their bytes are equal.
same_allocs() {
  "$W" query "$1" --json >"$T/qa" && "$W" query "$2" --json >"$T/qb" || return 1
  python3 - "$T/qa" "$T/qb" <<'EOF' || return 1
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
ua = [x for x in a["partitions"] if x["tag"]]
ub = [x for x in b["partitions"] if x["tag"]]
sys.exit(0 if ua == ub and ua else 1)
EOF
  local g
  for g in "${gaddrs[@]}"; do
    cmp -s <("$W" read "$1:${g#*:}") <("$W" read "$2:${g#*:}") || return 1
  done
}

# ---- checkpt to a file --------------------------------------------------------
ok checkpt_v3 "$W" checkpt src "$T/a.ckpt" --info "cli test" --mode 0640
check checkpt_file_mode [ "$(stat -c %a "$T/a.ckpt")" = 640 ]
check checkpt_quiet_when_not_tty [ ! -s "$T/err" ]
err checkpt_exists 1 "^wksp: checkpt: writing checkpoint of \"src\" to \"$T/a.ckpt\": .*\(use --force to replace it\)$" \
  "$W" checkpt src "$T/a.ckpt"
ok checkpt_force "$W" checkpt src "$T/a.ckpt" --force --threads 1 --info "cli test"
check checkpt_force_default_mode [ "$(stat -c %a "$T/a.ckpt")" = 600 ]
ok checkpt_v2 "$W" checkpt src "$T/b.ckpt" --style v2 --threads 2
check v2_bigger_than_v3 [ "$(stat -c %s "$T/b.ckpt")" -gt "$(stat -c %s "$T/a.ckpt")" ]
err checkpt_missing_wksp 1 '^wksp: checkpt: attaching workspace "nope": ' "$W" checkpt nope "$T/x.ckpt"
check checkpt_missing_wksp_no_file test ! -e "$T/x.ckpt"
err checkpt_bad_dir 1 "^wksp: checkpt: writing checkpoint of \"src\" to \"$T/nodir/x.ckpt\": " \
  "$W" checkpt src "$T/nodir/x.ckpt"
run "$W" checkpt src "$T/c.ckpt" -v --bytes
check checkpt_verbose [ "$RC" -eq 0 ]
check checkpt_verbose_summary grep -Eq '^checkpt: src: 470537 bytes of allocations -> [0-9]+ bytes file \([0-9.]+:1\) in [0-9.]+ s, ' "$T/err"

# ---- info ----------------------------------------------------------------------
ok info "$W" info "$T/a.ckpt"
out_has info_name 'src'
ok info_v4 "$W" info "$T/a.ckpt" -v 4
out_has info_v4_alloc '18446744073709551615'
ok info_json "$W" info "$T/a.ckpt" --json -v 4
json info_json_schema "
assert d['schema'] == 1 and d['name'] == 'src' and d['seed'] == 3
assert d['style'] == 2 and d['frame_style'] == 2 and d['part_max'] == 128
assert d['file_sz'] == $(stat -c %s "$T/a.ckpt")
assert d['info']['uinfo'] == 'cli test' and d['info']['mode'] == '0600'
for k in ('wallclock','app_id','thread_id','host_id','cpu_id','group_id','tid','user_id',
          'app','thread','host','cpu','group','user','path','binfo'):
    assert k in d['info'], k
assert d['alloc_cnt'] == 5 and d['alloc_sz'] == 100000 + 5000 + 300000 + 1 + 65536
a = d['allocations']
assert len(a) == 5 and a == sorted(a, key=lambda x: x['gaddr_lo'])
assert sorted(x['tag'] for x in a) == [1, 2, 3, 4, 18446744073709551615]
assert all(set(x) == {'gaddr_lo','gaddr_hi','tag'} for x in a)
assert len(d['cgroups']) == d['cgroup_cnt'] >= 1"
ok info_json_v1 "$W" info "$T/b.ckpt" --json
json info_json_v1_fields "
assert d['frame_style'] == 1 and 'allocations' not in d and 'cgroups' not in d
assert d['info']['uinfo'] == ''"
RUN_STDIN=$T/a.ckpt ok info_stdin_file "$W" info - -v 0
out_has info_stdin_name 'src'
cat "$T/a.ckpt" | "$W" info - --json >"$T/out" 2>"$T/err"
json info_stdin_pipe_json "assert d['name'] == 'src' and d['alloc_cnt'] == 5"
head -c 1000 "$T/a.ckpt" >"$T/trunc.ckpt"
run "$W" info "$T/trunc.ckpt" --json
check info_truncated_status [ "$RC" -eq 1 ]
check info_truncated_msg grep -q "^wksp: info: reading checkpoint \"$T/trunc.ckpt\": " "$T/err"
err info_missing_file 1 "^wksp: info: reading checkpoint \"$T/nope\": " "$W" info "$T/nope" --json
run "$W" info "$T/nope"
check info_missing_text_status [ "$RC" -eq 1 ]

# ---- new --from and restore from a file ------------------------------------------------
ok new_from "$W" new dst --from "$T/a.ckpt"
ok new_from_sizes "$W" query dst --json
json new_from_fits "assert d['part_max'] == 128 and d['data_max'] == $("$W" query src --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["data_max"])')"
"$W" alloc dst 1000 --tag 77 >/dev/null
ok restore_file "$W" restore dst "$T/a.ckpt" --threads 2
check restore_file_same same_allocs src dst
ok restore_keeps_seed "$W" query dst --json
json restore_seed "assert d['seed'] == 3 and d['name'] == 'dst' and 77 not in [x['tag'] for x in d['partitions']]"
run "$W" restore dst "$T/b.ckpt" --seed 11 -v
check restore_seed_opt [ "$RC" -eq 0 ]
check restore_verbose_summary grep -Eq '^restore: dst: 460 KiB of allocations in [0-9.]+ s, ' "$T/err"
check restore_v2_same same_allocs src dst
ok restore_seed_set "$W" query dst --json
json restore_seed_value "assert d['seed'] == 11"
ok verify_restored "$W" verify dst
err restore_missing_file 1 "^wksp: restore: restoring \"dst\" from \"$T/nope\": " "$W" restore dst "$T/nope"
err restore_truncated 1 "^wksp: restore: restoring \"dst\" from \"$T/trunc.ckpt\": " "$W" restore dst "$T/trunc.ckpt"
check restore_truncated_untouched same_allocs src dst
err restore_missing_wksp 1 '^wksp: restore: attaching workspace "nope": ' "$W" restore nope "$T/a.ckpt"
"$W" new tiny 64K --part-max 4
err restore_too_small 1 "^wksp: restore: checkpoint \"$T/a.ckpt\" does not fit workspace \"tiny\": .*allocation \\[430080,495616\\) lies outside .*; \`wksp new NAME --from $T/a.ckpt\` makes one that fits \\(or \`wksp new NAME 4096K --part-max 128\`\\)$" \
  "$W" restore tiny "$T/a.ckpt"
RUN_STDIN=$T/a.ckpt err restore_too_small_pipe 1 "^wksp: restore: checkpoint \"standard input\" does not fit workspace \"tiny\": .*; a workspace made by \`wksp new NAME --from FILE\` from a copy of it in a file fits$" \
  "$W" restore tiny -

# ---- pipes ----------------------------------------------------------------------------
"$W" new piped --from "$T/a.ckpt"
"$W" checkpt src - 2>"$T/err1" | "$W" restore piped - 2>"$T/err2"
st=("${PIPESTATUS[@]}")
check pipe_status [ "${st[0]}${st[1]}" = 00 ]
check pipe_quiet [ ! -s "$T/err1" -a ! -s "$T/err2" ]
check pipe_same same_allocs src piped
for t in 1 2; do # both stream paths (sequential, pipelined) count what they restored
  "$W" checkpt src - | "$W" restore piped - -v --threads $t 2>"$T/err2"
  check pipe_verbose_bytes_t$t grep -Eq '^restore: piped: 460 KiB of allocations in [0-9.]+ s, ' "$T/err2"
done
"$W" reset piped
"$W" checkpt src - --style v2 | "$W" restore piped - --verify-first
check pipe_v2_verify_first same_allocs src piped
RUN_STDIN=$T/a.ckpt ok restore_stdin_file "$W" restore piped -
check restore_stdin_file_same same_allocs src piped
"$W" checkpt src - >"$T/stdout.ckpt"
ok info_stdout_ckpt "$W" info "$T/stdout.ckpt" --json
json stdout_ckpt_path "assert d['info']['path'] == '-' and d['alloc_cnt'] == 5"
head -c 5000 "$T/a.ckpt" | "$W" restore piped - 2>"$T/err"
check pipe_truncated_fails [ "${PIPESTATUS[1]}" = 1 ]
check pipe_truncated_msg grep -q '^wksp: restore: restoring "piped" from "standard input": ' "$T/err"
"$W" checkpt src - 2>"$T/err" | head -c 100 >/dev/null
check checkpt_broken_pipe [ "${PIPESTATUS[0]}" = 1 ]
check checkpt_broken_pipe_msg grep -q '^wksp: checkpt: writing checkpoint of "src" to "standard output": ' "$T/err"
ok check_after_broken_pipe "$W" check src

# ---- targets that are not regular files ----------------------------------------------------
# FIFOs and character devices are written as streams (never replaced, with or
# without --force); directories, sockets, block devices are refused without
# a --force hint; a symlink is replaced, not followed. As root the device
# nodes are copies made with mknod in the scratch directory.
mkdir "$T/tg"
# reap PID: waits up to 10 s for a background reader, then kills it (a FIFO
# that was replaced leaves its reader waiting forever); sets RSTATUS.
reap() {
  local i
  for i in $(seq 100); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$1" 2>/dev/null
  wait "$1"
  RSTATUS=$?
}
mkfifo "$T/tg/fifo"
for force in "" --force; do
  c=checkpt_fifo${force:+_force}
  "$W" reset piped
  "$W" restore piped - <"$T/tg/fifo" 2>"$T/err2" &
  rpid=$!
  ok "$c" "$W" checkpt src "$T/tg/fifo" $force
  reap "$rpid"
  check "${c}_reader_restored" [ "$RSTATUS" = 0 ]
  check "${c}_same" same_allocs src piped
  check "${c}_still_fifo" [ -p "$T/tg/fifo" ]
done
"$W" reset piped
"$W" checkpt src >("$W" restore piped - 2>"$T/err2")
wait $!
check checkpt_process_substitution same_allocs src piped
"$W" checkpt src /dev/stdout --style v2 | "$W" restore piped -
check checkpt_dev_stdout_pipe [ "${PIPESTATUS[*]}" = "0 0" ]
err checkpt_fifo_verify 1 "to \"$T/tg/fifo\": .*verify needs a regular file" "$W" checkpt src "$T/tg/fifo" --verify
err checkpt_dev_stdout_file 1 "names an open file descriptor \(now a regular file\), which is never replaced" \
  "$W" checkpt src /dev/fd/3 --force 3>"$T/tg/fd3"
check checkpt_dev_stdout_file_untouched [ ! -s "$T/tg/fd3" ]

if mknod "$T/tg/null" c 1 3 2>/dev/null && mknod "$T/tg/full" c 1 7 2>/dev/null; then
  nul=$T/tg/null full=$T/tg/full
else
  nul=/dev/null full=/dev/full
fi
for force in "" --force; do
  c=${force:+_force}
  ok "checkpt_null$c" "$W" checkpt src "$nul" $force
  check "checkpt_null${c}_still_device" [ "$(stat -c %F:%t:%T "$nul")" = "character special file:1:3" ]
  # the cause is the write that failed, in the user's terms: no library
  # function or descriptor named (the writer's later refusals are context)
  err "checkpt_full$c" 1 "^wksp: checkpt: writing checkpoint of \"src\" to \"$full\": write of the bytes from offset 0 failed: No space left on device$" \
    "$W" checkpt src "$full" $force
  err "checkpt_full_v3_2threads$c" 1 "^wksp: checkpt: writing checkpoint of \"src\" to \"$full\": write of the bytes from offset 0 failed: No space left on device$" \
    "$W" checkpt src "$full" --style v3 --threads 2 $force
  check "checkpt_full${c}_still_device" [ "$(stat -c %F:%t:%T "$full")" = "character special file:1:7" ]
done

mkdir "$T/tg/dir"
python3 -c 'import socket, sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])' "$T/tg/sock"
mknod "$T/tg/blk" b 7 250 2>/dev/null # root only; never opened
for x in "dir:a directory:directory" "sock:a socket:socket" "blk:a block device:block special file"; do
  IFS=: read -r n what type <<<"$x"
  [ -e "$T/tg/$n" ] || continue
  for force in "" --force; do
    c=checkpt_refuses_$n${force:+_force}
    err "$c" 1 "^wksp: checkpt: writing checkpoint of \"src\" to \"$T/tg/$n\": .*is $what, not a regular file; nothing written$" \
      "$W" checkpt src "$T/tg/$n" $force
    check "${c}_no_force_hint" [ "$(grep -c -- --force "$T/err")" = 0 ]
    check "${c}_unchanged" [ "$(stat -c %F "$T/tg/$n")" = "$type" ]
  done
done

echo keep >"$T/tg/victim"
ln -s victim "$T/tg/link"
err checkpt_symlink_exists 1 "to \"$T/tg/link\": .*\(use --force to replace it\)$" "$W" checkpt src "$T/tg/link"
ok checkpt_symlink_force "$W" checkpt src "$T/tg/link" --force
check checkpt_symlink_replaced [ -f "$T/tg/link" -a ! -L "$T/tg/link" ]
check checkpt_symlink_not_followed [ "$(cat "$T/tg/victim")" = keep ]
ok checkpt_symlink_is_checkpoint "$W" info "$T/tg/link" -v 0
check checkpt_targets_no_temporary [ -z "$(ls -A "$T/tg" | grep wksp-tmp)" ]

# ---- a checkpt killed while it holds the workspace lock ---------------------------------
# The writer blocks on a full pipe (nobody reads) with the lock held, and is
# killed; `check` recovers the lock and the workspace works as before.
if ! skipping killed_holding_lock; then
  mkfifo "$T/fifo"
  "$W" checkpt src - >"$T/fifo" 2>/dev/null &
  pid=$!
  exec 3<"$T/fifo"
  sleep 0.5
  kill -9 "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
  exec 3<&-
  ok check_recovers_lock "$W" check src
  out_is check_recovers_lock_ok "src: repaired: a process died holding the lock; rebuilt from the partition records"
  g=$("$W" alloc src 10 --tag 99 2>"$T/err")
  check alloc_after_recovery [ -n "$g" ]
  ok free_after_recovery "$W" free "$g"
  ok verify_after_recovery "$W" verify src
  check same_after_recovery same_allocs src dst
fi

# ---- terminals: refuse, and show progress -------------------------------------------------
if command -v script >/dev/null; then
  script -qec "'$W' checkpt src -" /dev/null >"$T/tty" 2>&1
  check checkpt_refuses_tty grep -q 'wksp: checkpt: writing checkpoint of "src" to standard output: refusing to write to a terminal' "$T/tty"
  script -qec "'$W' restore piped -" /dev/null >"$T/tty" 2>&1
  check restore_refuses_tty grep -q 'refusing to read a checkpoint from a terminal' "$T/tty"
  script -qec "'$W' checkpt src '$T/p.ckpt'" /dev/null >"$T/tty" 2>&1
  check progress_on_tty grep -q 'checkpt: .* of .* (100%)' "$T/tty"
  script -qec "'$W' checkpt src '$T/q.ckpt' --quiet" /dev/null >"$T/tty" 2>&1
  check quiet_on_tty [ ! -s "$T/tty" ]
fi

# ---- diff and checkpt --verify ---------------------------------------------------------
ok checkpt_verify "$W" checkpt src "$T/v.ckpt" --verify
ok diff_same "$W" diff src "$T/v.ckpt"
out_has diff_same_out "^5 allocations the same, 0 with other bytes, 0 with another tag, 0 only in the checkpoint, 0 only in the workspace$"
out_has diff_same_seal "^seal: the checkpoint's content digest [0-9a-f]{16} matches what it holds$"
ok diff_same_json "$W" diff src "$T/v.ckpt" --json --threads 2
json diff_same_json_fields "
assert {k: v for k, v in d.items() if k != 'digest'} == {'schema': 1, 'same': 5, 'bytes': 0, 'tag': 0, 'only_ckpt': 0, 'only_wksp': 0, 'seal': 'ok'}
assert len(d['digest']) == 16 and int(d['digest'], 16) >= 0"
ok info_sealed "$W" info "$T/v.ckpt" -v 2
out_has info_sealed_line "content digest xxh3-sum64 [0-9a-f]{16}$"
ok diff_unsealed_json "$W" diff src "$T/a.ckpt" --json
json diff_unsealed_seal "assert d['seal'] == 'none' and d['same'] == 5"
# a damaged sealed file (one byte of a v2 copy's data): diff and restore say so
"$W" checkpt src "$T/v2.ckpt" --verify --style v2
python3 -c "
import sys
p = sys.argv[1]; b = bytearray(open(p, 'rb').read()); b[len(b) // 2] ^= 4; open(p, 'wb').write(b)" "$T/v2.ckpt"
# (trouble, as cmp(1) says it: exit status 3, one line, nothing on standard output)
err diff_broken 3 "^wksp: diff: checkpoint \"$T/v2.ckpt\" is damaged: its seal does not hold \\(it holds content with digest [0-9a-f]{16}, " \
  "$W" diff src "$T/v2.ckpt"
"$W" new dbad 4M --part-max 128
err restore_broken_seal 1 "^wksp: restore: restoring \"dbad\" from \"$T/v2.ckpt\": .*content digest [0-9a-f]{16}, the checkpoint records [0-9a-f]{16}: .*[(]target reset to empty[)]$" \
  "$W" restore dbad "$T/v2.ckpt"
"$W" delete dbad
ok info_check_sealed "$W" info "$T/v.ckpt" --check
out_is info_check_sealed_out "$T/v.ckpt: ok: structure valid, every allocation decoded; sealed, its content matches the digest it recorded"
ok info_check_unsealed "$W" info "$T/a.ckpt" --check --threads 2
out_has info_check_unsealed_out ': ok: structure valid, every allocation decoded; not sealed '
RUN_STDIN=$T/v.ckpt ok info_check_stdin_json "$W" info - --check --json
json info_check_stdin_json_fields "assert d == {'schema': 1, 'path': '-', 'check': 'ok', 'seal': 'ok'}"
err info_check_broken 1 "^wksp: info: checking checkpoint \"$T/v2.ckpt\": .*content digest [0-9a-f]{16}, the checkpoint records [0-9a-f]{16}" \
  "$W" info "$T/v2.ckpt" --check
"$W" new dcopy 4M --part-max 128 && "$W" restore dcopy "$T/v.ckpt" --quiet || fail setup "dcopy"
"$W" memset "dcopy:${gaddrs[1]#*:}" 7
run "$W" diff dcopy "$T/v.ckpt" --json
check diff_bytes_status [ "$RC" -eq 1 ]
check diff_bytes_no_err [ ! -s "$T/err" ] # a difference is the answer, not an error (as diff(1))
json diff_bytes_json "
assert d['same'] == 4 and d['bytes'] == 1 and d['only_ckpt'] == d['only_wksp'] == d['tag'] == 0
f = d['first']
assert f['kind'] == 'bytes' and f['off'] == 0 and f['gaddr_lo'] == ${gaddrs[1]#*:}
assert f['tag_ckpt'] == f['tag_wksp'] == 2"
"$W" free "dcopy:${gaddrs[0]#*:}"
RUN_STDIN=$T/v.ckpt run "$W" diff dcopy -
check diff_stdin_status [ "$RC" -eq 1 ]
out_has diff_stdin_counts '^3 allocations the same, 1 with other bytes, 0 with another tag, 1 only in the checkpoint, 0 only in the workspace$'
out_has diff_stdin_first '^first difference: \[[0-9]+,[0-9]+\) tag 1: only in the checkpoint$'
run "$W" diff dcopy "$T/v.ckpt" -v
check diff_verbose_lines [ "$(wc -l <"$T/out")" -eq 4 ]
out_has diff_verbose_only '^\[[0-9]+,[0-9]+\) tag 1: only in the checkpoint$'
out_has diff_verbose_bytes '^\[[0-9]+,[0-9]+\) tag 2: bytes differ from offset 0$'
run "$W" diff dcopy "$T/v.ckpt" -v --json
json diff_verbose_json "
assert [x['kind'] for x in d['differences']] == ['only_ckpt', 'bytes']
assert d['differences'][0] == d['first'] and d['differences'][1]['gaddr_lo'] == ${gaddrs[1]#*:}
assert d['differences'][0]['tag_wksp'] == 0 and d['differences'][0]['tag_ckpt'] == 1"
"$W" delete dcopy
err diff_missing_file 3 "^wksp: diff: comparing \"src\" with checkpoint \"$T/nope\": " "$W" diff src "$T/nope"
err diff_missing_wksp 3 '^wksp: diff: attaching workspace "nope": ' "$W" diff nope "$T/v.ckpt"
err checkpt_verify_stdout 2 '--verify needs a PATH' "$W" checkpt src - --verify

# ---- the seal: damage to it, --require-seal ----------------------------------------------
# flip FILE OUT [OFFSET MASK]...: OUT is FILE with those bits flipped; a
# negative OFFSET -k is the k-th byte from the end of the last seal line
# ("content digest xxh3-sum64 ...", the end of the build info).
flip() {
  python3 - "$@" <<'PY'
import sys
src, dst, rest = sys.argv[1], sys.argv[2], sys.argv[3:]
b = bytearray(open(src, 'rb').read())
end = b.rfind(b'content digest xxh3-sum64 ') + 43
assert end > 43
for off, mask in zip(rest[::2], rest[1::2]):
    off = int(off)
    b[end + off if off < 0 else off] ^= int(mask)
open(dst, 'wb').write(b)
PY
}
"$W" new dflip 4M --part-max 128 && "$W" alloc dflip 1000 --tag 9 >/dev/null || fail setup "dflip"
"$W" query dflip --json >"$T/flip_before"
# every byte of the last seal line with one bit flipped (bits 0-4: never a NUL)
broken=0 untouched=0
for i in $(seq 1 43); do
  flip "$T/v.ckpt" "$T/f.ckpt" "-$i" $((1 << (i % 5)))
  "$W" info "$T/f.ckpt" --check >/dev/null 2>"$T/flip_err" || { grep -q 'broken seal' "$T/flip_err" && broken=$((broken + 1)); }
  "$W" restore dflip "$T/f.ckpt" --quiet 2>/dev/null || { "$W" query dflip --json | cmp -s - "$T/flip_before" && untouched=$((untouched + 1)); }
done
check seal_line_flips_check_broken [ "$broken" -eq 43 ]
check seal_line_flips_restore_untouched [ "$untouched" -eq 43 ]
flip "$T/v.ckpt" "$T/f.ckpt" -20 4
err seal_flip_check 1 "^wksp: info: checking checkpoint \"$T/f.ckpt\": $T/f.ckpt: broken seal: .*[(]the file was damaged after it was written[)]$" \
  "$W" info "$T/f.ckpt" --check
err seal_flip_restore 1 "^wksp: restore: restoring \"dflip\" from \"$T/f.ckpt\": .*broken seal: " \
  "$W" restore dflip "$T/f.ckpt"
check seal_flip_restore_untouched cmp -s <("$W" query dflip --json) "$T/flip_before"
err seal_flip_diff 3 "^wksp: diff: checkpoint \"$T/f.ckpt\" is damaged: its seal does not hold" "$W" diff src "$T/f.ckpt" --json
# and a second flip in the data (v2.ckpt: a raw data byte already flipped above): never restored
for at in -1 -5 -30 -43; do
  flip "$T/v2.ckpt" "$T/f.ckpt" "$at" 2
  if "$W" restore dflip "$T/f.ckpt" --quiet 2>/dev/null; then fail "seal_double_flip_$at" "restored with success"
  else pass "seal_double_flip_$at"; fi
done
"$W" delete dflip
# --require-seal: an unsealed file is refused (before the target changes), a sealed one passes
"$W" new dreq 4M --part-max 128
err restore_require_seal_unsealed 1 "^wksp: restore: restoring \"dreq\" from \"$T/a.ckpt\": .*not sealed" \
  "$W" restore dreq "$T/a.ckpt" --require-seal
check restore_require_seal_untouched [ "$("$W" query dreq --json | python3 -c 'import json,sys; print(sum(1 for p in json.load(sys.stdin)["partitions"] if p["tag"]))')" = 0 ]
RUN_STDIN=$T/a.ckpt err restore_require_seal_pipe 1 'not sealed' "$W" restore dreq - --require-seal --threads 2
ok restore_require_seal_sealed "$W" restore dreq "$T/v.ckpt" --require-seal --quiet
check restore_require_seal_result same_allocs src dreq
"$W" delete dreq
err info_check_require_seal_unsealed 1 "^wksp: info: checking checkpoint \"$T/a.ckpt\": .*not sealed" \
  "$W" info "$T/a.ckpt" --check --require-seal
ok info_check_require_seal_sealed "$W" info "$T/v.ckpt" --check --require-seal
err info_require_seal_needs_check 2 'require-seal goes with --check' "$W" info "$T/v.ckpt" --require-seal
err diff_require_seal_unsealed 3 "^wksp: diff: checkpoint \"$T/a.ckpt\" is not sealed" "$W" diff src "$T/a.ckpt" --require-seal
ok diff_require_seal_sealed "$W" diff src "$T/v.ckpt" --require-seal

# ---- styles ----------------------------------------------------------------------------
ok styles "$W" styles
out_has styles_v3 '^v3 +yes +yes'
out_has styles_v1 '^v1 +no +yes'

# ---- reference vectors ---------------------------------------------------------------------
vec=${WKSP_VECTORS:-$ROOT/tests/vectors}
[ -f "$vec/README.md" ] || { fail vectors_present "no reference vectors in $vec"; vec=""; }
if [ -n "$vec" ]; then
  for m in "$vec"/*.json; do
    v=$(basename "$m" .json)
    n="vec-$v"
    if ! "$W" new "$n" --from "$vec/$v.ckpt" 2>"$T/err"; then fail "vector_$v" "new --from: $(cat "$T/err")"; continue; fi
    if ! "$W" restore "$n" "$vec/$v.ckpt" 2>"$T/err"; then fail "vector_$v" "restore: $(cat "$T/err")"; continue; fi
    "$W" query "$n" --json >"$T/q.json"
    python3 - "$m" "$T/q.json" >"$T/expect" <<'EOF'
import json, sys
m, q = (json.load(open(p)) for p in sys.argv[1:3])
got = [(x["tag"], x["gaddr_lo"], x["gaddr_hi"]) for x in q["partitions"] if x["tag"]]
want = [(x["tag"], x["gaddr_lo"], x["gaddr_hi"]) for x in m["partitions"]]
if got != want:
    print("MISMATCH", file=sys.stderr); sys.exit(1)
for x in m["partitions"]:
    print(x["gaddr_lo"], x["sha256"])
EOF
    if [ $? -ne 0 ]; then fail "vector_$v" "partitions differ from the manifest"; continue; fi
    bad=0
    while read -r g h; do
      [ "$("$W" read "$n:$g" | sha256sum | cut -d' ' -f1)" = "$h" ] || { bad=1; break; }
    done <"$T/expect"
    if [ $bad = 0 ]; then pass "vector_$v"; else fail "vector_$v" "SHA-256 of $n:$g differs"; fi
    "$W" info "$vec/$v.ckpt" --json -v 4 >"$T/out" 2>"$T/err"
    json "vector_info_$v" "
m = json.load(open('$m'))
assert d['name'] == m['wksp']['name'] and d['seed'] == m['wksp']['seed']
assert d['part_max'] == m['wksp']['part_max'] and d['data_max'] == m['wksp']['data_max']
assert d['alloc_cnt'] == m['alloc_cnt'] and d['file_sz'] == m['file_size']
assert d['info']['uinfo'] == m['uinfo'] or d['style'] == 1
assert [(x['tag'], x['gaddr_lo'], x['gaddr_hi']) for x in d['allocations']] == \
       [(x['tag'], x['gaddr_lo'], x['gaddr_hi']) for x in m['partitions']]"
    "$W" delete "$n"
  done
fi

# ---- new --from gives the checkpoint's exact sizes ------------------------------------------
# A checkpoint whose data_max leaves most of its last page unused, as one
# of a workspace made by another writer: a.ckpt with another name and a
# smaller data_max, in the header and the footer (docs/FORMAT.md 3.2, 3.8).
python3 - "$T/a.ckpt" "$T/odd.ckpt" >"$T/odd_max" <<'EOF'
import struct, sys
f = bytearray(open(sys.argv[1], 'rb').read())
dm = struct.unpack_from('<Q', f, 72)[0] - 1001
f[20:60] = f[-60:-20] = b'odd'.ljust(40, b'\0')
struct.pack_into('<Q', f, 72, dm)
struct.pack_into('<Q', f, len(f) - 80, dm)
open(sys.argv[2], 'wb').write(f)
print(dm)
EOF
ok new_from_odd "$W" new odd --from "$T/odd.ckpt"
"$W" query odd --json >"$T/out"
json new_from_odd_data_max "assert d['data_max'] == $(cat "$T/odd_max") and d['data_max'] % 4096"
ok new_from_odd_restore "$W" restore odd "$T/odd.ckpt"
ok new_from_odd_checkpt "$W" checkpt odd "$T/odd2.ckpt"
check new_from_odd_same_frames same_frames "$T/odd.ckpt" "$T/odd2.ckpt"
# Reference files of both styles: re-checkpointing their restores gives
# the same frames.
if [ -n "$vec" ]; then
  for v in v3-text v2-random; do
    n=$(python3 -c "import json; print(json.load(open('$vec/$v.json'))['wksp']['name'])")
    "$W" new "$n" --from "$vec/$v.ckpt" && "$W" restore "$n" "$vec/$v.ckpt" &&
      "$W" checkpt "$n" "$T/re-$v.ckpt" --style "${v%%-*}" --threads 2
    check "new_from_same_frames_$v" same_frames "$vec/$v.ckpt" "$T/re-$v.ckpt"
    "$W" delete "$n"
  done
fi

done_tests
