#!/usr/bin/env bash
# `make install` into a temporary DESTDIR: every file in place (headers,
# static and shared library with its SONAME links, wksp.pc, the binary, both
# man pages, bash completion); only the public API exported; a small program
# built against the installed copy with pkg-config, linked dynamically (run
# with LD_LIBRARY_PATH, checked to load the installed library) and
# statically; then `make uninstall` removes every file.  Always installs the
# release build (SAN and other make variables of an enclosing make are not
# passed on).
. "$(dirname "$0")/lib.bash"

dest=$T/dest
prefix=/usr/local
p=$dest$prefix
cc=${CC:-cc}
command -v "$cc" >/dev/null || cc=gcc

mk() { env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL -u MAKEOVERRIDES make --no-print-directory -C "$ROOT" SAN= "$@"; }

if ! mk install DESTDIR="$dest" PREFIX="$prefix" >"$T/make.log" 2>&1; then
  fail make_install "$(tail -n 5 "$T/make.log")"
  done_tests
fi
pass make_install

# ---- files -------------------------------------------------------------------
for f in include/wksp/error.h include/wksp/shmem.h include/wksp/wksp.h include/wksp/checkpt.h \
         include/wksp/frame.h lib/libwksp.a lib/pkgconfig/wksp.pc bin/wksp \
         share/man/man1/wksp.1 share/man/man3/libwksp.3 share/bash-completion/completions/wksp; do
  check "file_${f//\//_}" test -f "$p/$f"
done
ver=$(sed -n 's/^VERSION *:= *//p' "$ROOT/Makefile")
sover=$(sed -n 's/^SOVERSION *:= *//p' "$ROOT/Makefile")
check shared_lib test -f "$p/lib/libwksp.so.$ver"
check soname_link [ "$(readlink "$p/lib/libwksp.so.$sover")" = "libwksp.so.$ver" ]
check dev_link [ "$(readlink "$p/lib/libwksp.so")" = "libwksp.so.$sover" ]
check soname [ "$(readelf -d "$p/lib/libwksp.so.$ver" | sed -n 's/.*SONAME.*\[\(.*\)\]/\1/p')" = "libwksp.so.$sover" ]
check bin_executable test -x "$p/bin/wksp"
check bin_runs [ "$("$p/bin/wksp" --version)" = "wksp $ver" ]
check completion_parses bash -n "$p/share/bash-completion/completions/wksp"
if command -v man >/dev/null; then
  check man1_renders bash -c "MANWIDTH=80 man -l '$p/share/man/man1/wksp.1' 2>&1 | grep -q 'EXIT STATUS'"
  check man3_renders bash -c "MANWIDTH=80 man -l '$p/share/man/man3/libwksp.3' 2>&1 | grep -q 'wksp_checkpt'"
fi

# ---- exported symbols: exactly the public API ----------------------------------------
nm -D --defined-only "$p/lib/libwksp.so.$ver" | awk '$2 ~ /^[TDBRVW]$/ { print $3 }' | sed 's/@.*//' | sort -u >"$T/exported"
grep -h 'WKSP_API' "$p"/include/wksp/*.h | grep -v '#define' | grep -o 'WKSP_API[^(]*(' | sed -E 's/.*[ *]([a-z_0-9]+)\($/\1/' | sort -u >"$T/declared"
check exports_nonempty [ -s "$T/exported" ]
check exports_only_declared bash -c "comm -23 '$T/exported' '$T/declared' | grep -q . && { comm -23 '$T/exported' '$T/declared' >&2; exit 1; } || exit 0"
check exports_all_declared bash -c "comm -13 '$T/exported' '$T/declared' | grep -q . && { comm -13 '$T/exported' '$T/declared' >&2; exit 1; } || exit 0"
check symbols_versioned bash -c "nm -D --defined-only '$p/lib/libwksp.so.$ver' | grep -q 'wksp_alloc@@WKSP_0'"

# ---- pkg-config ------------------------------------------------------------------------
export PKG_CONFIG_PATH=$p/lib/pkgconfig PKG_CONFIG_SYSROOT_DIR=$dest
check pc_exists pkg-config --exists wksp
check pc_version [ "$(pkg-config --modversion wksp)" = "$ver" ]
cflags=$(pkg-config --cflags wksp)
libs=$(pkg-config --libs wksp)
check pc_cflags [ "$(echo $cflags)" = "-I$p/include" ]
check pc_libs [ "$(echo $libs)" = "-L$p/lib -lwksp" ]
check pc_static_libs bash -c "pkg-config --static --libs wksp | grep -q -- '-llz4'"

cat >"$T/prog.c" <<'EOF'
/* Uses the installed library: a named workspace, an allocation, a
 * checkpoint through a file descriptor, a restore into an anonymous
 * workspace, and a byte comparison. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <wksp/checkpt.h>
#include <wksp/wksp.h>

static int die(const char *what) {
  fprintf(stderr, "prog: %s: %s\n", what, wksp_errmsg());
  return 1;
}

int main(int argc, char **argv) {
  wksp_t *w, *a;
  uint64_t g;
  if (argc != 2) return 2;
  if (wksp_new_named("installed", 1 << 20, WKSP_PAGE_NORMAL, 0600, 1, 0)) return die("new_named");
  if (wksp_attach("installed", 0, &w)) return die("attach");
  if (wksp_alloc(w, 0, 1000, 42, &g)) return die("alloc");
  memset(wksp_laddr(w, g), 'x', 1000);
  FILE *f = fopen(argv[1], "w+");
  if (!f) return 1;
  if (wksp_checkpt_fd(w, fileno(f), argv[1], NULL)) return die("checkpt_fd");
  if (lseek(fileno(f), 0, SEEK_SET)) return 1;
  if (wksp_new_anon("copy", 1 << 20, WKSP_PAGE_NORMAL, 2, wksp_part_max(w), &a)) return die("new_anon");
  if (wksp_restore_fd(a, fileno(f), argv[1], NULL)) return die("restore_fd");
  uint64_t tag = 0;
  if (wksp_tag(a, g, &tag) || tag != 42) return die("tag");
  if (memcmp(wksp_laddr(a, g), wksp_laddr(w, g), 1000)) return die("contents");
  fclose(f);
  wksp_delete_anon(a);
  wksp_detach(w);
  if (wksp_delete_named("installed")) return die("delete_named");
  if (wksp_attach("installed", 0, &w) != WKSP_ERR_NOENT) return die("attach after delete");
  printf("ok %s\n", wksp_strerror(WKSP_ERR_FULL));
  return 0;
}
EOF

# Dynamic: the program needs libwksp.so.<SOVERSION> and runs against the
# installed copy.
if $cc -std=c17 -Wall -Wextra -Werror $cflags -o "$T/prog_dyn" "$T/prog.c" $libs 2>"$T/cc.log"; then
  pass build_dynamic
  check needs_soname bash -c "readelf -d '$T/prog_dyn' | grep -q 'NEEDED.*\[libwksp.so.$sover\]'"
  check loads_installed bash -c "LD_LIBRARY_PATH='$p/lib' ldd '$T/prog_dyn' | grep -q '$p/lib/libwksp.so.$sover'"
  run env LD_LIBRARY_PATH="$p/lib" "$T/prog_dyn" "$T/a.ckpt"
  check run_dynamic [ "$RC" -eq 0 -a "$(cat "$T/out")" = "ok full" ]
  if ! ldconfig -p | grep -q libwksp.so; then
    run "$T/prog_dyn" "$T/b.ckpt"
    check dynamic_needs_library_path [ "$RC" -ne 0 ]
  fi
else
  fail build_dynamic "$(head -n 5 "$T/cc.log")"
fi

# Static: the archive plus the private dependencies pkg-config lists.
static_libs=$(pkg-config --static --libs wksp | sed 's/-lwksp//')
if $cc -std=c17 -Wall -Wextra -Werror $cflags -o "$T/prog_static" "$T/prog.c" "$p/lib/libwksp.a" $static_libs \
     2>"$T/cc.log"; then
  pass build_static
  check static_no_needed bash -c "! readelf -d '$T/prog_static' | grep -q 'libwksp'"
  run "$T/prog_static" "$T/c.ckpt"
  check run_static [ "$RC" -eq 0 -a "$(cat "$T/out")" = "ok full" ]
else
  fail build_static "$(head -n 5 "$T/cc.log")"
fi
unset PKG_CONFIG_PATH PKG_CONFIG_SYSROOT_DIR

# ---- uninstall -------------------------------------------------------------------------
if mk uninstall DESTDIR="$dest" PREFIX="$prefix" >"$T/make.log" 2>&1; then
  pass make_uninstall
  check uninstall_removes_all [ -z "$(find "$dest" -type f -o -type l)" ]
else
  fail make_uninstall "$(tail -n 5 "$T/make.log")"
fi

done_tests
