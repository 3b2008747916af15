#!/usr/bin/env bash
# The test suite of another architecture on this machine (`make
# test-aarch64`): the programs cross-built into build/ARCH/ run under
# qemu-user.  It checks what the x86-64 runs cannot: the code as compiled
# for aarch64 (unsigned char, no AVX2 path, the NEON XXH3, Debian's arm64
# liblz4) reads and writes the reference vectors byte for byte and passes
# the unit, round-trip, fuzz-replay and CLI tests.
#   scripts/cross.sh ARCH        (after make test-build CC=ARCH-linux-gnu-gcc)
set -euo pipefail
arch=${1:?usage: scripts/cross.sh ARCH}
root=$(cd "$(dirname "$0")/.." && pwd)
build=$root/build/$arch
qemu=qemu-$arch
command -v "$qemu" >/dev/null || { echo "cross: $qemu not found (Debian package qemu-user)" >&2; exit 1; }

# The loader and libc of Debian's libc6:$arch (multiarch, /lib/<triplet>/),
# the ones liblz4 and libcrypto are built against.  The cross toolchain's
# copy under /usr/<triplet>/ is another build of glibc: a program started
# by that loader with the multiarch libc hangs in its first pthread_create.
export QEMU_LD_PREFIX=/

# Without binfmt_misc the kernel cannot start an $arch program itself, so
# the shell tests, and the tests that run the tool, get a wrapper.
wrap=$build/bin/wksp-$qemu
printf '#!/bin/sh\nexec %s %s "$@"\n' "$qemu" "$build/bin/wksp" >"$wrap"
chmod +x "$wrap"
export WKSP_BIN=$wrap WKSP_TEST_RUNNER=$qemu WKSP_TEST_COMM=$qemu

# What qemu-user cannot do, and the tests that need it (SKIP lines):
# - robust futexes (set_robust_list is ENOSYS): a lock held by a process
#   that dies is never handed back with EOWNERDEAD, so every test that
#   kills a lock holder would wait forever;
# - madvise (ignored, success returned): MADV_POPULATE_* populates nothing,
#   so the tests that count the page faults it saves fail;
# - a preloaded library in an emulated process: the fault-injection tests
#   re-execute themselves (or run the tool) with the fault shim in
#   LD_PRELOAD, which the kernel cannot exec without binfmt_misc and the
#   wrapper's /bin/sh refuses (another architecture's library).
# Everything else runs; figures (speed) mean nothing under emulation.
skip=(
  tests/wksp/test_wksp_kill                 # robust futexes
  tests/reliability/test_kill_points
  test_wksp/test_lock_info
  cli_checkpt/killed_holding_lock
  test_wksp/test_prefault                   # madvise
  test_wksp/test_prefault_parts
  tests/reliability/test_ckpt_faults        # the fault shim
  tests/reliability/test_restore_faults
  tests/reliability/test_cli_faults
)
export WKSP_TEST_SKIP=$(IFS=,; echo "${skip[*]}")
export WKSP_TEST_TIMEOUT=${WKSP_TEST_TIMEOUT:-1200}
exec "$root/tests/run.sh" "$build/build"
