#!/usr/bin/env bash
# The operator's view (issue 16): `wksp usage` (largest free range,
# fragmentation, exhausted partition records), `wksp list` (workspaces vs
# other regions, figures, mapping processes, dead lock holders, --unused),
# `wksp delete` of several names, and `wksp map` (text picture checked
# exactly, SVG parsed and checked cell by cell, checkpoint files).
. "$(dirname "$0")/lib.bash"

# ---- usage ---------------------------------------------------------------------------
# part_max 3: the second 4 KiB allocation finds no record to split the tail
# off, so it takes the whole tail; the third then fails, naming the cause.
ok new_x "$W" new x 1M --part-max 3
ok alloc_x1 "$W" alloc x 4K
ok alloc_x2 "$W" alloc x 4K
err alloc_no_record 1 \
  '^wksp: alloc: allocating 4096 bytes in "x": .* largest free 3776; no partition record left \(part_max 3, all in use\)$' \
  "$W" alloc x 4K
ok usage_exhausted "$W" usage x --bytes
out_is usage_exhausted_text "workspace     x
partitions    3 of 3 records in use; none left, so an allocation takes a whole free range
data          1048255
free          3776 in 1 partition, largest 3776
fragmentation 0.0%
used          1044479 in 2 allocations"
ok usage_exhausted_json "$W" usage x --json
json usage_exhausted_fields 'assert d["records_left"] == 0 and d["free_max"] == 3776 and d["fragmentation"] == 0, d'

# Three free ranges: the head slack [1152, 4096), a hole [8192, 12288) and
# the tail [20480, 65535): 1 - 45055 / 52095 = 13.5%.
ok new_f "$W" new f 64K --part-max 16
for i in 1 2 3 4; do ok "alloc_f$i" "$W" alloc f 4K; done
ok free_f2 "$W" free f:8192
ok usage_frag "$W" usage f
out_is usage_frag_text "workspace     f
partitions    6 of 16 records in use
data          62.9 KiB
free          50.9 KiB in 3 partitions, largest 44.0 KiB
fragmentation 13.5%
used          12.0 KiB in 3 allocations"
ok usage_frag_json "$W" usage f --json
json usage_frag_fields '
assert d["free_cnt"] == 3 and d["free_sz"] == 2944 + 4096 + 45055 and d["free_max"] == 45055, d
assert d["records_left"] == 10, d
assert abs(d["fragmentation"] - (1 - 45055 / 52095)) < 1e-6, d'

# ---- list ----------------------------------------------------------------------------
# A process mapping a region read-write that takes the workspace lock and
# holds it (or only maps it, read-only), as an application would; it prints
# its pid and sleeps until killed.
holder() { # REGION lock|ro
  python3 - "$WKSP_SHMEM_DIR/$1" "$2" <<'EOF' &
import ctypes, mmap, os, sys, time
path, how = sys.argv[1], sys.argv[2]
f = open(path, "rb" if how == "ro" else "r+b")
m = mmap.mmap(f.fileno(), 0, prot=mmap.PROT_READ if how == "ro" else mmap.PROT_READ | mmap.PROT_WRITE)
if how == "lock":
    buf = (ctypes.c_char * len(m)).from_buffer(m)
    lock = ctypes.c_void_p(ctypes.addressof(buf) + 64)  # the robust mutex in the header (wksp_private.h)
    assert ctypes.CDLL(None).pthread_mutex_lock(lock) == 0
print(os.getpid(), flush=True)
time.sleep(120)
EOF
}
wait_pid() { # FILE: waits (up to 10 s) until FILE holds a pid
  local i
  for ((i = 0; i < 200; i++)); do [ -s "$1" ] && return 0; sleep 0.05; done
  return 1
}
ok new_big "$W" new big 8M
ok new_idle "$W" new idle 1M
ok new_rom "$W" new rom 1M
ok alloc_big "$W" alloc big 1M --tag 4
ok checkpt_idle "$W" checkpt idle "$WKSP_SHMEM_DIR/ckpt" -q
truncate -s 8K "$WKSP_SHMEM_DIR/ckpt" # page-sized, as a region would be
holder big lock >"$T/pid_big"
holder rom ro >"$T/pid_rom"
check holders_started wait_pid "$T/pid_big"
check holders_started_ro wait_pid "$T/pid_rom"
pb=$(cat "$T/pid_big") pr=$(cat "$T/pid_rom")

# A list never takes the lock: with it held it still answers (in time).
ok list_json timeout 20 "$W" list --json
json list_json_fields "
r = {x['name']: x for x in d['regions']}
assert set(r) == {'big', 'idle', 'rom', 'ckpt', 'x', 'f'}, set(r)
b = r['big']
assert b['workspace'] is True and b['size'] == 8 << 20 and b['page'] == 'normal' and b['mode'] == '0600'
assert b['mapped_by'] == [{'pid': $pb, 'writable': True}], b['mapped_by']
assert b['lock'] == {'state': 'held', 'tid': $pb, 'writing': False}, b['lock']
u = b['usage']
assert u['used_cnt'] == 1 and u['used_sz'] == 1 << 20 and u['free_sz'] + u['used_sz'] == u['total_sz'], u
assert u['free_max'] <= u['free_sz'] and u['total_max'] > 0, u
assert r['rom']['mapped_by'] == [{'pid': $pr, 'writable': False}], r['rom']
assert r['idle']['mapped_by'] == [] and r['idle']['lock']['state'] == 'free'
c = r['ckpt']
assert c['workspace'] is False and 'usage' not in c and 'lock' not in c and c['error'], c  # the magic matches, the rest does not
for x in d['regions']:
    assert isinstance(x['mtime'], int) and x['mtime'] > 0
    assert x['btime'] is None or 0 < x['btime'] <= x['mtime'] + 10**9, x
assert isinstance(d['maps_unreadable'], int)"
ok list_unused_json "$W" list --unused --json
json list_unused_only_idle 'assert sorted(x["name"] for x in d["regions"]) == ["f", "idle", "x"], d'
ok list_text "$W" list
out_has list_text_header '^NAME +SIZE +PAGE +MODE +CREATED +MODIFIED +USED +ALLOCS +LARGEST FREE +MAPPED BY +NOTE$'
out_has list_text_big "^big +8\\.00 MiB +normal +0600 +[0-9]+s +[0-9]+s +12\\.5% +1 +[0-9.]+ MiB +$pb\$"
out_has list_text_rom "^rom +.* +0 +[0-9.]+ KiB +$pr\\(ro\\)\$"
out_has list_text_ckpt '^ckpt +8\.00 KiB +normal +0600 +[0-9]+s +[0-9]+s +- +- +- +- +not a workspace$'
out_has list_text_idle '^idle +1\.00 MiB +normal +0600 .* 0\.0% +0 +1023 KiB +-$'

# The holder dies holding the lock: list names it, and does not repair it.
kill -9 "$pb" "$pr"
wait "$pb" "$pr" 2>/dev/null
ok list_dead_json "$W" list --json
json list_dead_fields "
b = {x['name']: x for x in d['regions']}['big']
assert b['lock'] == {'state': 'dead', 'tid': $pb, 'writing': False}, b['lock']
assert b['mapped_by'] == [], b"
ok list_dead_text "$W" list
out_has list_dead_note "^big .* - +lock holder \\(tid $pb\\) died: \`wksp check\` recovers\$"
ok list_dead_unused "$W" list --unused --json
json list_dead_now_unused 'assert sorted(x["name"] for x in d["regions"]) == ["big", "f", "idle", "rom", "x"], d'
ok check_recovers "$W" check big
ok list_recovered "$W" list --json
json list_recovered_free "assert {x['name']: x for x in d['regions']}['big']['lock']['state'] == 'free'"
err list_extra_arg 2 '^wksp: list: ' "$W" list big

# Two processes map one region (and none the regions around it): both are
# listed, in pid order, and only there.
holder idle ro >"$T/pid_i1"
holder idle ro >"$T/pid_i2"
check holders_idle_started wait_pid "$T/pid_i1"
check holders_idle_started_2 wait_pid "$T/pid_i2"
i1=$(cat "$T/pid_i1") i2=$(cat "$T/pid_i2")
ok list_two_mappers "$W" list --json
json list_two_mappers_fields "
r = {x['name']: x for x in d['regions']}
assert r['idle']['mapped_by'] == sorted([{'pid': $i1, 'writable': False}, {'pid': $i2, 'writable': False}], key=lambda m: m['pid']), r['idle']
assert all(r[n]['mapped_by'] == [] for n in r if n != 'idle'), r"
{ kill -9 "$i1" "$i2"; wait "$i1" "$i2"; } 2>/dev/null

# ---- delete several --------------------------------------------------------------------
run "$W" delete idle nope ckpt rom
check delete_many_status [ "$RC" -eq 1 ]
check delete_many_two_lines [ "$(wc -l <"$T/err")" -eq 2 ]
check delete_many_nope grep -q '^wksp: delete: deleting workspace "nope": ' "$T/err"
# a page-sized file holding no workspace is a region left by a dead creator
# or damaged: removed, with a note (issue 13 point 5)
check delete_many_ckpt grep -q '^wksp: delete: "ckpt" held .*; removed the region$' "$T/err"
check delete_many_done [ ! -e "$WKSP_SHMEM_DIR/idle" -a ! -e "$WKSP_SHMEM_DIR/rom" -a ! -e "$WKSP_SHMEM_DIR/ckpt" ]
err delete_bad_name_first 2 '^wksp: delete: bad NAME "b d"' "$W" delete big "b d"
check delete_bad_name_nothing_done test -e "$WKSP_SHMEM_DIR/big"
ok delete_two "$W" delete big x
check delete_two_done [ ! -e "$WKSP_SHMEM_DIR/big" -a ! -e "$WKSP_SHMEM_DIR/x" ]
err delete_none 2 '^wksp: delete: ' "$W" delete

# ---- map ------------------------------------------------------------------------------------
# Data region [1152, 65535) of part_max 16; allocations (best fit):
#   [1152, 3200) tag 3, [3200, 3300) tag 5, [4096, 12288) tag 7, [12288, 28672) tag 9.
# 64 cells at most: 1006 bytes each.  Cell 2 [3164, 4170) holds 36 bytes of
# tag 3, 100 of tag 5 and 74 of tag 7, the rest free: 'd'.  Cell 11
# [12218, 13224): 70 bytes of tag 7, 936 of tag 9: 'A'.  Cell 27 [28314,
# 29320) ends tag 9: 'a'.
ok new_mp "$W" new mp 64K --part-max 16
ok map_a7 "$W" alloc mp 8K --tag 7
ok map_a3 "$W" alloc mp 2K --tag 3 --align 64
ok map_a9 "$W" alloc mp 16K --tag 9
ok map_a5 "$W" alloc mp 100 --tag 5 --align 64
out_is map_a5_addr mp:3200
picture=' 1152 CCdBBBBBBBBAAAAA
17248 AAAAAAAAAAAa....
33344 ................
49440 ................
A tag 9: 16.0 KiB in 1 allocation
B tag 7: 8.00 KiB in 1 allocation
C tag 3: 2.00 KiB in 1 allocation
D tag 5: 100 B in 1 allocation
. free: 36.8 KiB in 2 ranges, largest 36.0 KiB
a cell shows the tag with the most bytes in it; lower case (+ for #): partly free'
ok map_text "$W" map mp --width 16 --rows 4
out_is map_text_exact "workspace mp: data [1152, 65535), 62.9 KiB; 64 cells of 1006 B, 16 per row
$picture"
check map_text_no_escapes [ "$(grep -c $'\033' "$T/out")" -eq 0 ]
ok map_bytes "$W" map mp --width 16 --rows 4 --bytes
out_has map_bytes_title '^workspace mp: data \[1152, 65535\), 64383; 64 cells of 1006, 16 per row$'
out_has map_bytes_free '^\. free: 37659 in 2 ranges, largest 36863$'
ok map_wide "$W" map mp --width 64 --rows 1
out_has map_wide_row '^1152 CCdBBBBBBBBAAAAAAAAAAAAAAAAa\.{36}$'
check map_wide_one_row [ "$(grep -c '^ *[0-9]\+ ' "$T/out")" -eq 1 ]
ok map_color "$W" map mp --width 16 --rows 4 --color
check map_color_blocks grep -q $'\033\\[38;5;[0-9]*m\u2588' "$T/out"
check map_color_partial grep -q $'\u2581\\|\u2582\\|\u2583\\|\u2584\\|\u2585\\|\u2586\\|\u2587' "$T/out"
check map_color_free grep -q $'\u00b7' "$T/out"
# On a terminal (script(1) gives it one): colour unless NO_COLOR or TERM=dumb.
if command -v script >/dev/null; then
  tty_map() { env "$@" script -qec "'$W' map mp --rows 2" /dev/null >"$T/out" 2>&1 </dev/null; }
  tty_map TERM=xterm
  check map_tty_color grep -q $'\033\\[38;5;' "$T/out"
  tty_map TERM=xterm NO_COLOR=1
  check map_tty_no_color_env [ "$(grep -c $'\033' "$T/out")" -eq 0 ]
  tty_map TERM=dumb
  check map_tty_dumb [ "$(grep -c $'\033' "$T/out")" -eq 0 ]
fi
err map_color_both 2 '^wksp: map: --color and --no-color exclude each other' "$W" map mp --color --no-color
err map_width_zero 2 '^wksp: map: bad --width "0": must be 1\.\.4096' "$W" map mp --width 0
err map_rows_big 2 '^wksp: map: bad --rows "5000"' "$W" map mp --rows 5000
err map_missing 1 '^wksp: map: no workspace or checkpoint file named "nope"$' "$W" map nope
err map_not_wksp 1 '^wksp: map: attaching workspace "junk": ' \
  bash -c "printf x >'$WKSP_SHMEM_DIR/junk' && '$W' map junk"

# The SVG: one rect per cell whose data-* attributes match the layout as
# computed here from `wksp query` (the tag with the most bytes in the cell,
# ties to the first), a fill rect of the allocated share in the tag's colour.
ok map_query "$W" query mp --json
cp "$T/out" "$T/mp.json"
ok map_svg "$W" map mp --width 16 --rows 4 --svg "$T/mp.svg"
check map_svg_stdout_empty [ ! -s "$T/out" ]
check map_svg_parsed python3 - "$T/mp.svg" "$T/mp.json" <<'EOF'
import json, sys, xml.etree.ElementTree as ET
ns = "{http://www.w3.org/2000/svg}"
root = ET.parse(sys.argv[1]).getroot()
q = json.load(open(sys.argv[2]))
lo, hi = q["gaddr_lo"], q["gaddr_hi"]
allocs = [p for p in q["partitions"] if p["tag"]]
rects = [r for r in root.iter(ns + "rect") if r.get("class") == "cell"]
fills = [r for r in root.iter(ns + "rect") if r.get("class") == "fill"]
cell_sz = -(-(hi - lo) // 64)
assert len(rects) == -(-(hi - lo) // cell_sz) == 64, len(rects)
rank = sorted({p["tag"] for p in allocs}, key=lambda t: (-sum(p["gaddr_hi"] - p["gaddr_lo"] for p in allocs if p["tag"] == t), t))
palette = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2"]
fi = iter(fills)
for i, r in enumerate(rects):
    a, b = lo + i * cell_sz, min(lo + (i + 1) * cell_sz, hi)
    per = {}
    for p in allocs:
        n = min(b, p["gaddr_hi"]) - max(a, p["gaddr_lo"])
        if n > 0:
            s, first = per.get(p["tag"], (0, p["gaddr_lo"]))
            per[p["tag"]] = (s + n, min(first, max(a, p["gaddr_lo"])))
    used = sum(s for s, _ in per.values())
    tag = min(per, key=lambda t: (-per[t][0], per[t][1])) if per else 0
    got = {k: int(r.get("data-" + k)) for k in ("lo", "hi", "used", "tag")}
    assert got == {"lo": a, "hi": b, "used": used, "tag": tag}, (i, got, (a, b, used, tag))
    assert int(r.get("x")) == int(rects[i - i % 16].get("x")) + 12 * (i % 16) and r.get("width") == "10"
    if used:
        f = next(fi)
        assert f.get("x") == r.get("x") and f.get("fill") == palette[rank.index(tag)], (i, f.attrib)
        assert abs(float(f.get("height")) - 10 * used / (b - a)) < 0.001, (i, f.attrib)
        assert abs(float(f.get("y")) + float(f.get("height")) - int(r.get("y")) - 10) < 0.001
assert next(fi, None) is None
texts = [t.text for t in root.iter(ns + "text")]
assert "tag 9: 16.0 KiB in 1 allocation" in texts and "free: 36.8 KiB in 2 ranges, largest 36.0 KiB" in texts, texts
assert texts[0] == "workspace mp: data [1152, 65535), 62.9 KiB; 64 cells of 1006 B, 16 per row", texts[0]
EOF
ok map_svg_stdout "$W" map mp --width 16 --rows 4 --svg -
check map_svg_stdout_same cmp -s "$T/out" "$T/mp.svg"
err map_svg_bad_dir 1 "^wksp: map: writing \"$T/no/such.svg\": No such file" "$W" map mp --svg "$T/no/such.svg"

# A checkpoint draws the same picture.  The argument is a file when it has
# a '/', else a workspace when one has that name, else a file here.
ok map_ckpt_write "$W" checkpt mp "$T/mp.ckpt" -q
ok map_ckpt "$W" map "$T/mp.ckpt" --width 16 --rows 4
out_is map_ckpt_exact "checkpoint $T/mp.ckpt (workspace mp): data [1152, 65535), 62.9 KiB; 64 cells of 1006 B, 16 per row
$picture"
RUN_STDIN=$T/mp.ckpt ok map_ckpt_stdin "$W" map - --width 16 --rows 4
out_has map_ckpt_stdin_title '^checkpoint - \(workspace mp\): '
ok map_ckpt_here bash -c "cd '$T' && '$W' map mp.ckpt --width 16 --rows 4"
out_has map_ckpt_here_title '^checkpoint mp\.ckpt \(workspace mp\): '
ok new_same_name "$W" new mp.ckpt 64K --part-max 16
ok map_wksp_wins bash -c "cd '$T' && '$W' map mp.ckpt --width 16 --rows 4"
out_has map_wksp_wins_title '^workspace mp\.ckpt: '
ok map_dot_slash bash -c "cd '$T' && '$W' map ./mp.ckpt --width 16 --rows 4"
out_has map_dot_slash_title '^checkpoint \./mp\.ckpt \(workspace mp\): '
printf 'not a checkpoint' >"$T/bad.ckpt"
err map_bad_ckpt 1 "^wksp: map: reading checkpoint \"$T/bad.ckpt\": " "$W" map "$T/bad.ckpt"

# A path may hold any byte: the title shows it escaped (a control byte and
# one that is not UTF-8), never raw, and the SVG stays well-formed XML.
odd="$T/a"$'\001'"b"$'\377'"<&.ckpt"
cp "$T/mp.ckpt" "$odd"
ok map_odd_path "$W" map "$odd" --width 16 --rows 4
out_has map_odd_path_title '^checkpoint .*/a\\x01b\\xff<&\.ckpt \(workspace mp\): data '
check map_odd_path_not_raw bash -c "! grep -q \$'\\001' '$T/out'"
ok map_odd_path_svg "$W" map "$odd" --width 16 --rows 4 --svg -
check map_odd_path_svg_xml python3 -c '
import sys, xml.etree.ElementTree as ET
root = ET.parse(sys.argv[1]).getroot()
title = root.find("{http://www.w3.org/2000/svg}title").text
assert title.endswith("/a\\x01b\\xff<&.ckpt (workspace mp)"), title' "$T/out"

done_tests
