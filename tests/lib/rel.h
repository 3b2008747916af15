/* tests/lib/rel.h: helpers shared by the reliability tests.
 *
 * Every reliability test has a quick version (the default, run by
 * `make test`) and a long one (WKSP_REL_LONG=1, run by `make reliability`).
 * Single counts can be overridden with WKSP_REL_<NAME>=<n>.  Each program
 * prints its measured figures as lines
 *   FIGURE <promise> <key>: <text>
 * on stdout; scripts/reliability.sh collects them. */
#ifndef WKSP_TESTS_RELIABILITY_REL_H
#define WKSP_TESTS_RELIABILITY_REL_H

#include <dirent.h>
#include <errno.h>
#include <libgen.h>
#include <pthread.h>
#include <sys/syscall.h>
#include <sys/stat.h>
#include <stdarg.h>
#include <time.h>
#include <unistd.h>

#include "vec.h"
#include "ws.h"
#include "faultshim.h"

/* Count for this run: WKSP_REL_<name> if set, else the long or the quick
 * default. */
static inline uint64_t rel_param(const char *name, uint64_t quick, uint64_t long_run) {
  char var[128];
  snprintf(var, sizeof var, "WKSP_REL_%s", name);
  const char *e = getenv(var);
  if (e && *e) return strtoull(e, NULL, 0);
  e = getenv("WKSP_REL_LONG");
  return e && *e == '1' ? long_run : quick;
}

static inline int rel_long(void) {
  const char *e = getenv("WKSP_REL_LONG");
  return e && *e == '1';
}

static inline double rel_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static inline void rel_figure(const char *promise, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static inline void rel_figure(const char *promise, const char *key, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  printf("FIGURE %s %s: ", promise, key);
  vprintf(fmt, ap);
  printf("\n");
  fflush(stdout);
  va_end(ap);
}

/* Makes sure libfaultshim.so is preloaded: if it is not, re-executes the
 * program with LD_PRELOAD set (once).  The shim is $FAULTSHIM_LIB, else
 * build/shim/libfaultshim.so beside this program's build/tests/.
 * Returns 0 with *s filled, or -1. */
static inline int rel_shim(char **argv, faultshim_t *s) {
  if (!faultshim_find(s)) {
    unsetenv("LD_PRELOAD"); /* children need not inherit it */
    return 0;
  }
  if (getenv("WKSP_REL_REEXEC")) return -1;
  char exe[4096], lib[4200];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (n <= 0) return -1;
  exe[n] = 0;
  const char *e = getenv("FAULTSHIM_LIB");
  if (e && *e) snprintf(lib, sizeof lib, "%s", e);
  else snprintf(lib, sizeof lib, "%s/../../shim/libfaultshim.so", dirname(exe));
  if (access(lib, R_OK)) {
    fprintf(stderr, "faultshim: %s: %s\n", lib, strerror(errno));
    return -1;
  }
  setenv("LD_PRELOAD", lib, 1);
  setenv("WKSP_REL_REEXEC", "1", 1);
  /* The sanitizer runtime wants to be first; the shim forwards to it. */
  char asan[1024];
  const char *old = getenv("ASAN_OPTIONS");
  snprintf(asan, sizeof asan, "%s%sverify_asan_link_order=0", old ? old : "", old && *old ? ":" : "");
  setenv("ASAN_OPTIONS", asan, 1);
  fflush(NULL);
  execv("/proc/self/exe", argv);
  fprintf(stderr, "faultshim: exec: %s\n", strerror(errno));
  return -1;
}

/* Entries of dir other than . and .., as "a,b,c" (sorted) into out. */
static inline int rel_dir_list(const char *dir, char *out, size_t out_sz) {
  struct dirent **ents;
  int n = scandir(dir, &ents, NULL, alphasort);
  if (n < 0) return -1;
  size_t len = 0;
  int cnt = 0;
  out[0] = 0;
  for (int i = 0; i < n; i++) {
    const char *d = ents[i]->d_name;
    if (strcmp(d, ".") && strcmp(d, "..")) {
      len += (size_t)snprintf(out + len, len < out_sz ? out_sz - len : 0, "%s%s", cnt ? "," : "", d);
      cnt++;
    }
    free(ents[i]);
  }
  free(ents);
  return cnt;
}

/* Entries of a /proc/self directory (fd or task). */
static inline int rel_proc_count(const char *what) {
  char dir[64], buf[8192];
  snprintf(dir, sizeof dir, "/proc/self/%s", what);
  return rel_dir_list(dir, buf, sizeof buf);
}

/* Restores the checkpoint at path into a fresh workspace shaped like src
 * and compares; 1 if identical. */
static inline int rel_restores_same(wksp_t *src, const char *path) {
  wksp_t *w = ws_new("check", 7, wksp_part_max(src), wksp_data_max(src));
  int same = w && !wksp_restore(w, path, &(wksp_restore_opts_t){.seed = 5, .threads = 2}) &&
             !wksp_verify(w) && ws_same(src, w);
  ws_free(w);
  return same;
}

/* A few allocations of w changed, for deltas: a span of bytes rewritten
 * in five, one freed, one new of new_sz bytes. */
static inline void rel_mutate(wksp_t *w, uint64_t *rng, uint64_t new_sz) {
  uint64_t cnt = 0, g, lo, hi;
  wksp_part_t *p = ws_allocs(w, &cnt);
  for (int i = 0; p && i < 5 && cnt; i++) {
    const wksp_part_t *a = &p[test_rng(rng) % cnt];
    uint64_t sz = a->gaddr_hi - a->gaddr_lo, at = test_rng(rng) % sz;
    memset((uint8_t *)wksp_laddr(w, a->gaddr_lo) + at, 'A' + i, sz - at < 500 ? sz - at : 500);
  }
  if (p && cnt > 1) wksp_free(w, p[test_rng(rng) % cnt].gaddr_lo);
  if (!wksp_alloc_at_least(w, 1, new_sz, 9, &g, &lo, &hi)) memset(wksp_laddr(w, lo), 'z', hi - lo);
  free(p);
}

/* Restores the chain paths[0..n) (a sealed checkpoint, then deltas) into
 * a fresh workspace shaped like src and compares; 1 if identical. */
static inline int rel_chain_restores_same(wksp_t *src, const char *const *paths, size_t n) {
  wksp_t *w = ws_new("check", 7, wksp_part_max(src), wksp_data_max(src));
  int same = w && !wksp_restore_chain(w, paths, n, &(wksp_restore_opts_t){.seed = 5, .threads = 2}) &&
             !wksp_verify(w) && ws_same(src, w);
  ws_free(w);
  return same;
}

/* SHA-256 (hex) of the names and bytes of the regular files of dir: one
 * value to see that nothing there changed. */
static inline void rel_dir_digest(const char *dir, char out[65]) {
  char ls[4096], p[4400], *save = NULL;
  int n = rel_dir_list(dir, ls, sizeof ls);
  size_t cap = 0, len = 0;
  char *all = NULL;
  for (char *e = n > 0 ? strtok_r(ls, ",", &save) : NULL; e; e = strtok_r(NULL, ",", &save)) {
    size_t sz = 0;
    snprintf(p, sizeof p, "%s/%s", dir, e);
    char *b = vec_slurp(p, &sz);
    size_t need = len + strlen(e) + 1 + sz;
    if (need > cap && !(all = realloc(all, cap = 2 * need))) abort();
    memcpy(all + len, e, strlen(e) + 1);
    len += strlen(e) + 1;
    if (b) memcpy(all + len, b, sz), len += sz;
    free(b);
  }
  sha256_hex(all ? all : "", len, out);
  free(all);
}

#endif
