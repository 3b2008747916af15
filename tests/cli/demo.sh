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

# Interrupted early (SIGTERM, as from a supervisor, and SIGINT as from ^C):
# still nothing left.
for sig in TERM INT; do
  timeout -s "$sig" 2 env WKSP_DEMO_SIZE=24M bash "$ROOT/scripts/demo.sh" "$W" >"$T/out" 2>"$T/err"
  RC=$?
  check "demo_interrupted_$sig" [ "$RC" -ne 0 ]
  check "demo_interrupted_${sig}_clean" [ -z "$(ls -A "$WKSP_SHMEM_DIR")" -a -z "$(ls -d "$T"/wksp-demo.* 2>/dev/null)" ]
done

done_tests
