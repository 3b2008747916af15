#!/usr/bin/env bash
# The demo (scripts/demo.sh, `make demo`) at a reduced size: it must finish,
# report a byte-for-byte verification, and leave no workspace or temporary
# file behind; interrupted, it must clean up too.
. "$(dirname "$0")/lib.bash"

export TMPDIR=$T
run env WKSP_DEMO_SIZE=24M bash "$ROOT/scripts/demo.sh" "$W"
check demo_status [ "$RC" -eq 0 ]
out_has demo_filled '^   filled .* in [0-9]+ allocations \(text .*, table .*, zeros .*, random .*; [0-9]+ freed again\)'
out_has demo_ratio 'compression ratio [0-9.]+:1'
out_has demo_pipe 'through the pipe in [0-9.]+ s: [0-9]+ MiB/s'
out_has demo_same_layout '^   same [0-9]+ allocations \(tag, address range and bytes\) in all three workspaces$'
out_has demo_verified 'byte for byte .*; metadata verified$'
out_has demo_info '^   wksp info: style 2 with LZ4 frames, [0-9]+ allocations in [0-9]+ cgroup frames'
out_has demo_summary '^   throughput     checkpt [0-9]+ MiB/s, restore from file [0-9]+ MiB/s, checkpt \| restore [0-9]+ MiB/s$'
out_has demo_map '^   A tag [1-4]: .* in [0-9]+ allocations?$'
out_has demo_map_grid '^ +[0-9]+ [A-Da-d#+.]{64}$'
out_has demo_list "^   demo-[0-9]+-c +[0-9.]+ MiB +normal +0600 .*%"
out_has demo_ok '^== demo ok; cleaning up$'
check demo_no_workspaces_left [ -z "$(ls -A "$WKSP_SHMEM_DIR")" ]
check demo_no_temp_left [ -z "$(ls -d "$T"/wksp-demo.* 2>/dev/null)" ]

# The demo's byte compare (scripts/demo_compare.py) on purpose-made
# workspaces: A, and B and C restored from A's checkpoint, agree; a byte
# changed in C's region file (the last one of an allocation) or an
# allocation freed in B is reported as FAILED.
compare() {
  local n
  for n in a b c; do "$W" query "cmp-$n" --json >"$T/$n.json" || return 1; done
  run python3 "$ROOT/scripts/demo_compare.py" "$WKSP_SHMEM_DIR" "$T/a.json" "$T/b.json" "$T/c.json"
}
# field NAME TAG KEY: KEY of the allocation with tag TAG in workspace NAME.
field() {
  "$W" query "$1" --json | python3 -c 'import json, sys
print([x for x in json.load(sys.stdin)["partitions"] if x["tag"] == int(sys.argv[1])][0][sys.argv[2]])' "$2" "$3"
}
"$W" new cmp-a 1M
for i in 1 2 3; do
  g=$("$W" alloc cmp-a $((1000 * i)) --tag "$i")
  head -c $((1000 * i)) /dev/urandom | "$W" write "$g" -
done
"$W" checkpt cmp-a "$T/cmp.ckpt" --quiet
for n in b c; do "$W" new "cmp-$n" --from "$T/cmp.ckpt" && "$W" restore "cmp-$n" "$T/cmp.ckpt"; done
compare
check compare_same [ "$RC" -eq 0 ]
out_has compare_same_line '^   same 3 allocations \(tag, address range and bytes\) in all three workspaces$'
lo=$(field cmp-c 2 gaddr_lo) hi=$(field cmp-c 2 gaddr_hi)
python3 -c 'import sys; f = open(sys.argv[1], "r+b"); f.seek(int(sys.argv[2])); b = f.read(1)[0]
f.seek(int(sys.argv[2])); f.write(bytes([b ^ 0xff]))' "$WKSP_SHMEM_DIR/cmp-c" $((hi - 1))
compare
check compare_byte_status [ "$RC" -eq 1 ]
check compare_byte_line grep -qx "demo: FAILED: bytes of cmp-c:$(printf 0x%x "$lo") differ from cmp-a" "$T/err"
"$W" restore cmp-c "$T/cmp.ckpt"
"$W" free "cmp-b:$(printf 0x%x "$(field cmp-b 3 gaddr_lo)")"
compare
check compare_alloc_status [ "$RC" -eq 1 ]
check compare_alloc_line grep -Eq '^demo: FAILED: allocations of cmp-b differ from cmp-a$' "$T/err"
for n in a b c; do "$W" delete "cmp-$n"; done

# Interrupted early (SIGTERM, as from a supervisor, and SIGINT as from ^C):
# still nothing left.
for sig in TERM INT; do
  # -k: a demo that does not end within 30 s of the signal is killed (and
  # then fails the clean-up check) instead of hanging the run.
  timeout -k 30 -s "$sig" 2 env WKSP_DEMO_SIZE=24M bash "$ROOT/scripts/demo.sh" "$W" >"$T/out" 2>"$T/err"
  RC=$?
  check "demo_interrupted_$sig" [ "$RC" -ne 0 ]
  check "demo_interrupted_${sig}_clean" [ -z "$(ls -A "$WKSP_SHMEM_DIR")" -a -z "$(ls -d "$T"/wksp-demo.* 2>/dev/null)" ]
done

done_tests
