#!/usr/bin/env bash
# Workspace and allocation commands against a real (private) shared-memory
# directory: new, list, alloc, free, tag, tag-free, memset, write, read,
# usage, query, check, verify, rebuild, reset, delete; good, missing and bad
# arguments; JSON output checked against its schema.
. "$(dirname "$0")/lib.bash"

# ---- new / list / delete ---------------------------------------------------------
ok new "$W" new w1 8M --part-max 64 --seed 7 --mode 0640
check new_file_exists test -f "$WKSP_SHMEM_DIR/w1"
check new_mode_exact [ "$(stat -c %a "$WKSP_SHMEM_DIR/w1")" = 640 ]
err new_exists 1 '^wksp: new: creating workspace "w1": ' "$W" new w1 8M
ok new_suffix_mib "$W" new w2 4MiB
ok new_default_part_max "$W" new w3 1M

ok list "$W" list
out_has list_header '^NAME +SIZE +PAGE +MODE +CREATED +MODIFIED +USED +ALLOCS +LARGEST FREE +MAPPED BY$'
out_has list_w1 '^w1 +8\.00 MiB +normal +0640 +[0-9]+s +[0-9]+s +0\.0% +0 +8\.00 MiB +-$'
ok list_bytes "$W" list --bytes
out_has list_bytes_exact '^w1 +8388608 +normal +0640 +[0-9]+s +[0-9]+s +0\.0% +0 +8384383 +-$'
ok list_json "$W" list --json
json list_json_schema '
assert d["schema"] == 1 and isinstance(d["maps_unreadable"], int)
r = {x["name"]: x for x in d["regions"]}
assert set(r) == {"w1", "w2", "w3"}, r
w1 = r["w1"]
assert set(w1) == {"name", "size", "page", "mode", "mtime", "btime", "mapped_by", "workspace", "usage", "lock"}, w1
assert {k: w1[k] for k in ("name", "size", "page", "mode", "mapped_by", "workspace")} == \
  {"name": "w1", "size": 8388608, "page": "normal", "mode": "0640", "mapped_by": [], "workspace": True}, w1
assert w1["usage"] == {"total_max": 64, "total_cnt": 1, "total_sz": 8384383, "free_cnt": 1, "free_sz": 8384383,
                       "free_max": 8384383, "used_cnt": 0, "used_sz": 0}, w1["usage"]
assert w1["lock"] == {"state": "free", "tid": 0, "writing": False}, w1["lock"]
assert r["w2"]["size"] == 4 << 20 and r["w3"]["mode"] == "0600"
assert [x["name"] for x in d["regions"]] == sorted(r)'

ok delete "$W" delete w3
check delete_gone test ! -e "$WKSP_SHMEM_DIR/w3"
err delete_missing 1 '^wksp: delete: deleting workspace "w3": ' "$W" delete w3
err attach_missing 1 '^wksp: query: attaching workspace "nope": ' "$W" query nope

# A region holding no workspace (what a `wksp new` killed before formatting
# used to leave): check refuses it, delete removes it with a one-line note.
head -c 1048576 /dev/zero >"$WKSP_SHMEM_DIR/zm"
err check_no_workspace 1 '^wksp: check: attaching workspace "zm": .*not a workspace' "$W" check zm
run "$W" delete zm
check delete_no_workspace_status test "$RC" -eq 0 -a ! -s "$T/out"
check delete_no_workspace_note \
  [ "$(cat "$T/err")" = 'wksp: delete: "zm" held no workspace (bad magic 0x0000000000000000); removed the region' ]
check delete_no_workspace_gone test ! -e "$WKSP_SHMEM_DIR/zm"
printf 'abc' >"$WKSP_SHMEM_DIR/odd"
err delete_not_region 1 '^wksp: delete: deleting workspace "odd": .*not a positive multiple' "$W" delete odd
check delete_not_region_kept test -e "$WKSP_SHMEM_DIR/odd"
rm -f "$WKSP_SHMEM_DIR/odd"

# A `wksp new` SIGKILLed as soon as its name appears (formatting 1M partition
# records takes a while): the name must already hold the complete workspace.
"$W" new killed 96M --part-max 1M &
pid=$!
while [ ! -e "$WKSP_SHMEM_DIR/killed" ] && kill -0 "$pid" 2>/dev/null; do :; done
kill -9 "$pid" 2>/dev/null
wait "$pid" 2>/dev/null
ok new_killed_complete "$W" verify killed
"$W" delete killed
printf 'not a workspace' >"$WKSP_SHMEM_DIR/junk"
err attach_not_wksp 1 '^wksp: usage: attaching workspace "junk": ' "$W" usage junk

# ---- query of an empty workspace -----------------------------------------------
ok query_empty "$W" query w1 --json
json query_empty_schema '
assert d["schema"] == 1 and d["name"] == "w1" and d["seed"] == 7 and d["part_max"] == 64
assert d["gaddr_lo"] == 128 + 64 * 64 and d["gaddr_hi"] == d["gaddr_lo"] + d["data_max"]
assert d["partitions"] == [{"gaddr_lo": d["gaddr_lo"], "gaddr_hi": d["gaddr_hi"], "tag": 0}], d["partitions"]'

# ---- alloc / tag / free -----------------------------------------------------------
ok alloc "$W" alloc w1 100000 --tag 5
out_has alloc_prints_addr '^w1:[0-9]+$'
a1=$(cat "$T/out")
ok alloc_aligned "$W" alloc w1 1K --align 64K --tag 18446744073709551615
a2=$(cat "$T/out")
check alloc_alignment [ $(( ${a2#w1:} % 65536 )) -eq 0 ]
ok alloc_default_tag "$W" alloc w1 10
a3=$(cat "$T/out")
ok tag "$W" tag "$a1"
out_is tag_value 5
ok tag_wide "$W" tag "$a2"
out_is tag_wide_value 18446744073709551615
ok tag_default "$W" tag "$a3"
out_is tag_default_value 1
ok tag_inside "$W" tag "w1:$(( ${a1#w1:} + 99999 ))"
out_is tag_inside_value 5
ok tag_hex_addr "$W" tag "w1:$(printf '0x%x' "${a1#w1:}")"
out_is tag_hex_addr_value 5
ok tag_free_space "$W" tag "w1:$(( ${a1#w1:} + 100000 ))"
out_is tag_free_space_value 0
err alloc_full 1 '^wksp: alloc: allocating 1073741824 bytes in "w1": ' "$W" alloc w1 1G
err alloc_bad_align 1 '^wksp: alloc: allocating 10 bytes in "w1": ' "$W" alloc w1 10 --align 3
err alloc_missing_wksp 1 '^wksp: alloc: attaching workspace "nope": ' "$W" alloc nope 10

# ---- write / read ------------------------------------------------------------------
head -c 100000 /dev/urandom >"$T/data"
ok write_file "$W" write "$a1" "$T/data"
ok read_stdout "$W" read "$a1"
check read_back cmp -s "$T/out" "$T/data"
ok read_file "$W" read "$a1" "$T/copy"
check read_file_back cmp -s "$T/copy" "$T/data"
ok read_inside_whole "$W" read "w1:$(( ${a1#w1:} + 5000 ))"
check read_inside_is_whole cmp -s "$T/out" "$T/data"
RUN_STDIN=$T/data ok write_stdin "$W" write "$a1" -
head -c 100001 /dev/zero >"$T/big"
err write_too_long 1 "^wksp: write: writing to $a1: input \"$T/big\" is longer than the 100000 bytes" \
  "$W" write "$a1" "$T/big"
ok write_too_long_untouched "$W" read "$a1"
check write_too_long_nothing_written cmp -s "$T/out" "$T/data"
printf 'HELLO' >"$T/hello"
ok write_at_offset "$W" write "w1:$(( ${a1#w1:} + 10 ))" "$T/hello"
ok read_after_offset_write "$W" read "$a1"
check write_at_offset_bytes [ "$(head -c 15 "$T/out" | tail -c 5)" = HELLO ]
check write_at_offset_rest cmp -s <(tail -c +16 "$T/out") <(tail -c +16 "$T/data")
err write_missing_file 1 "^wksp: write: opening \"$T/nope\": No such file" "$W" write "$a1" "$T/nope"
err read_free_space 1 "^wksp: read: looking up w1:[0-9]+: not inside an allocation" \
  "$W" read "w1:$(( ${a1#w1:} + 100000 ))"
err read_outside_data 1 "^wksp: read: looking up w1:1: outside the data region \\[4224,8388607\\) of \"w1\"$" \
  "$W" read "w1:1"
err write_outside_data 1 "^wksp: write: looking up w1:1: outside the data region \\[4224,8388607\\) of \"w1\"$" \
  "$W" write "w1:1" "$T/hello"
err read_bad_dir 1 "^wksp: read: opening \"$T/nodir/x\": No such file" "$W" read "$a1" "$T/nodir/x"
printf 'abc' | { "$W" write "$a3" - >"$T/out" 2>"$T/err"; echo $? >"$T/rc"; }
check write_pipe [ "$(cat "$T/rc")" = 0 ]
ok read_small "$W" read "$a3"
check read_small_prefix [ "$(head -c 3 "$T/out")" = abc ]

# ---- memset ---------------------------------------------------------------------
ok memset "$W" memset "$a1" 0xAB
ok memset_read "$W" read "$a1"
check memset_bytes cmp -s "$T/out" <(head -c 100000 /dev/zero | tr '\0' '\253')
err memset_free_space 1 '^wksp: memset: filling w1:' "$W" memset "w1:$(( ${a1#w1:} + 100000 ))" 1

# ---- usage -------------------------------------------------------------------------
ok usage "$W" usage w1
out_has usage_used '^used +.* in 3 allocations$'
ok usage_json "$W" usage w1 --json
json usage_json_schema '
assert d["schema"] == 1 and d["name"] == "w1" and d["tags"] == []
assert d["total_max"] == 64 and d["used_cnt"] == 3
assert d["used_sz"] >= 100000 + 1024 + 10
assert d["free_sz"] + d["used_sz"] == d["total_sz"], d
assert d["free_cnt"] + d["used_cnt"] == d["total_cnt"], d'
ok usage_tags_json "$W" usage w1 --tag 5 --tag 18446744073709551615 --json
json usage_tags_schema '
assert d["tags"] == [5, 18446744073709551615] and d["used_cnt"] == 2, d'
ok usage_tag_text "$W" usage w1 --tag 5 --bytes
out_has usage_tag_text_used '^used +100000 in 1 allocation with tag 5$'

# ---- query ------------------------------------------------------------------------
ok query "$W" query w1
out_has query_header '^workspace w1: seed 7, part_max 64'
out_has query_row "^ +${a1#w1:} +$(( ${a1#w1:} + 100000 )) +97\.7 KiB +5$"
ok query_json "$W" query w1 --json
json query_json_schema "
p = d['partitions']
assert d['schema'] == 1 and d['name'] == 'w1'
assert set(d) == {'schema','name','seed','part_max','data_max','gaddr_lo','gaddr_hi','partitions'}, set(d)
assert p[0]['gaddr_lo'] == d['gaddr_lo'] and p[-1]['gaddr_hi'] == d['gaddr_hi']
for x, y in zip(p, p[1:]): assert x['gaddr_hi'] == y['gaddr_lo'], (x, y)
for x in p: assert set(x) == {'gaddr_lo','gaddr_hi','tag'} and x['gaddr_lo'] < x['gaddr_hi']
used = {x['gaddr_lo']: x for x in p if x['tag']}
assert used[${a1#w1:}] == {'gaddr_lo': ${a1#w1:}, 'gaddr_hi': ${a1#w1:} + 100000, 'tag': 5}
assert used[${a2#w1:}]['tag'] == 18446744073709551615 and used[${a3#w1:}]['tag'] == 1
assert len(used) == 3"

# ---- check / verify / rebuild --------------------------------------------------------
ok check "$W" check w1
out_is check_ok "w1: ok"
ok verify "$W" verify w1
out_is verify_ok "w1: ok"
ok rebuild "$W" rebuild w1 --seed 99
ok rebuild_seed "$W" query w1 --json
json rebuild_seed_value 'assert d["seed"] == 99 and sum(1 for x in d["partitions"] if x["tag"]) == 3'
ok rebuild_keep_seed "$W" rebuild w1
ok verify_after_rebuild "$W" verify w1
err verify_missing 1 '^wksp: verify: attaching workspace "nope": ' "$W" verify nope

# One damaged byte of the header's free-index geometry (offset 120): the
# next alloc repairs it first and works; check says what it repaired, and
# "ok" only once nothing is wrong.  Damaged part_max (offset 16, the truth):
# a clear error.
poke() { printf "\\$(printf %o "$3")" | dd of="$WKSP_SHMEM_DIR/$1" bs=1 seek="$2" conv=notrunc status=none; }
"$W" new hb 1M --part-max 64 && "$W" alloc hb 1000 >/dev/null
poke hb 120 200
ok alloc_after_damage "$W" alloc hb 4096
poke hb 120 64
ok check_repairs "$W" check hb
out_has check_repairs_says '^hb: repaired: free index geometry 0x240, expected 0x[0-9a-f]+; rebuilt from the partition records$'
ok check_after_repair "$W" check hb
out_is check_after_repair_ok "hb: ok"
poke hb 16 13
err check_truth_damaged 1 '^wksp: check: checking workspace "hb": .*part_max 13 puts the data region at 960' "$W" check hb
err alloc_truth_damaged 1 '^wksp: alloc: .*part_max 13' "$W" alloc hb 100
poke hb 16 64
ok check_truth_restored "$W" check hb
out_is check_truth_restored_ok "hb: ok"
"$W" delete hb

# ---- free / tag-free / reset ----------------------------------------------------------
ok free "$W" free "$a3"
err free_twice 1 "^wksp: free: freeing $a3: " "$W" free "$a3"
ok tag_free "$W" tag-free w1 5 77
ok tag_free_effect "$W" usage w1 --json
json tag_free_left 'assert d["used_cnt"] == 1, d'
ok reset "$W" reset w1
ok reset_effect "$W" query w1 --json
json reset_empty 'assert [x["tag"] for x in d["partitions"]] == [0] and d["seed"] == 99, d'

# ---- read access only: queries and verify still work ---------------------------------
# As root (file permissions do not stop root) the commands run as nobody,
# with a copy of the binary and the region directory it can read.
ok ro_alloc "$W" alloc w2 4K --tag 3
reader=()
if [ "$(id -u)" -ne 0 ]; then
  chmod 0400 "$WKSP_SHMEM_DIR/w2"
elif command -v setpriv >/dev/null && id nobody >/dev/null 2>&1; then
  ro_bin=$(mktemp -d "${TMPDIR:-/tmp}/wksp-cli-ro.XXXXXX")
  trap 'rm -rf "$WKSP_SHMEM_DIR" "$T" "$ro_bin"' EXIT
  cp "$W" "$ro_bin/wksp" && chmod 0755 "$ro_bin" "$WKSP_SHMEM_DIR"
  chmod 0644 "$WKSP_SHMEM_DIR/w2"
  reader=(setpriv --reuid=nobody --regid="$(id -g nobody)" --clear-groups "$ro_bin/wksp")
fi
if [ "$(id -u)" -ne 0 ] || [ ${#reader[@]} -gt 0 ]; then
  [ ${#reader[@]} -gt 0 ] || reader=("$W")
  ok ro_query "${reader[@]}" query w2 --json
  err ro_alloc_denied 1 '^wksp: alloc: attaching workspace "w2": ' "${reader[@]}" alloc w2 4K
  sum0=$(sha256sum <"$WKSP_SHMEM_DIR/w2")
  ok ro_verify "${reader[@]}" verify w2
  out_is ro_verify_out "w2: ok"
  check ro_verify_unchanged [ "$(sha256sum <"$WKSP_SHMEM_DIR/w2")" = "$sum0" ]
else
  echo "SKIP cli_wksp/ro_verify: running as root without setpriv or user nobody"
fi
chmod 0600 "$WKSP_SHMEM_DIR/w2"
chmod 0700 "$WKSP_SHMEM_DIR"

# A change left half done (gen odd, as a writer killed inside a change
# leaves it): verify only reads, so it reports it and changes nothing;
# check (which takes the lock) repairs it.
python3 - "$WKSP_SHMEM_DIR/w2" <<'EOF'
import struct, sys
with open(sys.argv[1], "r+b") as f:
    f.seek(112)  # struct wksp: gen
    g, = struct.unpack("<I", f.read(4))
    f.seek(112)
    f.write(struct.pack("<I", g | 1))
EOF
sum1=$(sha256sum <"$WKSP_SHMEM_DIR/w2")
err verify_interrupted 1 '^wksp: verify: verifying workspace "w2" \(read-only.*wksp check w2.*writer died' "$W" verify w2
check verify_interrupted_unchanged [ "$(sha256sum <"$WKSP_SHMEM_DIR/w2")" = "$sum1" ]
ok verify_interrupted_check "$W" check w2
ok verify_interrupted_repaired "$W" verify w2

# ---- every workspace command on a missing workspace: exit 1, one line naming it ----------
for c in "check nope" "verify nope" "rebuild nope" "reset nope" "usage nope" "query nope" "tag-free nope 1" \
         "alloc nope 1K"; do
  set -- $c
  err "missing_wksp_$1" 1 "^wksp: $1: attaching workspace \"nope\": " "$W" "$@"
done
for c in free tag read write; do
  err "missing_wksp_$c" 1 "^wksp: $c: attaching workspace \"nope\": " "$W" "$c" nope:4096
done
err missing_wksp_memset 1 '^wksp: memset: attaching workspace "nope": ' "$W" memset nope:4096 0
err new_zero_size 1 '^wksp: new: creating workspace "w0": ' "$W" new w0 0
check new_zero_size_nothing_left test ! -e "$WKSP_SHMEM_DIR/w0"
err new_part_max_too_big 1 '^wksp: new: creating workspace "w0": ' "$W" new w0 64K --part-max 1M
check new_part_max_nothing_left test ! -e "$WKSP_SHMEM_DIR/w0"
run "$W" new wh 4M --page-size huge
if [ "$RC" -eq 0 ]; then pass new_huge; "$W" delete wh
elif [ "$RC" -eq 1 ] && [ "$(wc -l <"$T/err")" -eq 1 ] && grep -q '^wksp: new: creating workspace "wh": ' "$T/err"; then
  pass new_huge
else fail new_huge "status $RC"; fi
WKSP_SHMEM_DIR=$T/no/such/dir err list_bad_dir 1 '^wksp: list: listing regions: ' "$W" list
check list_bad_dir_json_not_started [ ! -s "$T/out" ]

ok delete_all "$W" delete w1
ok delete_w2 "$W" delete w2
ok list_after "$W" list --json
json list_after_empty 'assert [r["name"] for r in d["regions"]] == ["junk"] or d["regions"] == [], d'

done_tests
