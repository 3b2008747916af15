/* Workspace helpers for the checkpoint tests: create, fill, snapshot and
 * compare workspaces. */
#ifndef WKSP_TESTS_CHECKPT_WS_H
#define WKSP_TESTS_CHECKPT_WS_H

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "test.h"
#include "vec.h"
#include <wksp/checkpt.h>
#include <wksp/wksp.h>

/* A workspace in private memory (freed by ws_free). */
static inline wksp_t *ws_new(const char *name, uint32_t seed, uint64_t part_max,
                             uint64_t data_max) {
  uint64_t fp = wksp_footprint(part_max, data_max);
  if (!fp) return NULL;
  void *mem = aligned_alloc(4096, (fp + 4095) & ~4095ull);
  if (!mem) return NULL;
  wksp_t *w = NULL;
  if (wksp_new(mem, name, seed, part_max, data_max, &w)) {
    fprintf(stderr, "wksp_new: %s\n", wksp_errmsg());
    free(mem);
    return NULL;
  }
  return w;
}

static inline void ws_free(wksp_t *w) {
  if (!w) return;
  wksp_leave(w);
  wksp_delete(w);
  free(w);
}

/* n allocations of 1..max_sz bytes (alignment 1..4096 or default), random
 * tags (some wide), random contents ("text" when text != 0), then about a
 * third freed.  Returns the number of allocations refused (FULL). */
static inline uint64_t ws_fill(wksp_t *w, uint64_t n, uint64_t max_sz, int text, uint64_t *rng) {
  uint64_t *g = calloc(n + 1, sizeof *g), refused = 0;
  static const char *const words[] = {"slot ", "leader ", "vote ", "bank ", "tx ", "shred\n"};
  for (uint64_t k = 0; k < n; k++) {
    uint64_t sz = 1 + test_rng(rng) % max_sz;
    uint64_t r = test_rng(rng) % 14, align = r == 13 ? 0 : 1ull << r;
    uint64_t tag = test_rng(rng) % 8 ? 1 + test_rng(rng) % 1000 : UINT64_MAX - test_rng(rng) % 4;
    uint64_t lo, hi;
    if (wksp_alloc_at_least(w, align, sz, tag, &g[k], &lo, &hi)) {
      refused++;
      g[k] = 0;
      continue;
    }
    uint8_t *p = wksp_laddr(w, lo);
    for (uint64_t i = 0; i < hi - lo;) {
      if (text) {
        const char *s = words[test_rng(rng) % 6];
        for (; *s && i < hi - lo; s++) p[i++] = (uint8_t)*s;
      } else {
        uint64_t x = test_rng(rng);
        for (int b = 0; b < 8 && i < hi - lo; b++) p[i++] = (uint8_t)(x >> (8 * b));
      }
    }
  }
  for (uint64_t k = 0; k < n; k++)
    if (g[k] && test_rng(rng) % 3 == 0) wksp_free(w, g[k]);
  free(g);
  return refused;
}

/* The allocations of w (ascending), malloc'd; *cnt their number. */
static inline wksp_part_t *ws_allocs(wksp_t *w, uint64_t *cnt) {
  size_t n = 0;
  if (wksp_part_list(w, NULL, 0, &n)) return NULL;
  wksp_part_t *all = calloc(n + 1, sizeof *all);
  if (wksp_part_list(w, all, n, &n)) {
    free(all);
    return NULL;
  }
  size_t m = 0;
  for (size_t i = 0; i < n; i++)
    if (all[i].tag) all[m++] = all[i];
  *cnt = m;
  return all;
}

/* SHA-256 of every allocation, chained: one digest summarizing tags,
 * ranges and bytes (compares two workspaces or a before/after state). */
static inline void ws_digest(wksp_t *w, uint8_t out[32]) {
  uint64_t n = 0;
  wksp_part_t *p = ws_allocs(w, &n);
  EVP_MD_CTX *c = EVP_MD_CTX_new();
  EVP_DigestInit_ex(c, EVP_sha256(), NULL);
  for (uint64_t k = 0; p && k < n; k++) {
    EVP_DigestUpdate(c, &p[k], sizeof p[k]);
    EVP_DigestUpdate(c, wksp_laddr(w, p[k].gaddr_lo), p[k].gaddr_hi - p[k].gaddr_lo);
  }
  EVP_DigestUpdate(c, &n, sizeof n);
  unsigned len = 32;
  EVP_DigestFinal_ex(c, out, &len);
  EVP_MD_CTX_free(c);
  free(p);
}

/* True when a and b hold the same allocations (tags, ranges, bytes). */
static inline int ws_same(wksp_t *a, wksp_t *b) {
  uint8_t da[32], db[32];
  ws_digest(a, da);
  ws_digest(b, db);
  return !memcmp(da, db, 32);
}

static inline void sha256_hex(const void *b, uint64_t sz, char out[65]) {
  uint8_t d[32];
  unsigned len = 32;
  EVP_Digest(b, sz, d, &len, EVP_sha256(), NULL);
  for (int i = 0; i < 32; i++) snprintf(out + 2 * i, 3, "%02x", d[i]);
}

/* The bytes (malloc'd, *sz of them) of a checkpoint of w in the given style,
 * written to path and removed again; NULL on failure. */
static inline uint8_t *ws_ckpt_bytes(wksp_t *w, int style, const char *path, uint64_t *sz) {
  unlink(path);
  size_t n = 0;
  uint8_t *b = NULL;
  if (!wksp_checkpt(w, path, &(wksp_checkpt_opts_t){.style = style}))
    b = (uint8_t *)vec_slurp(path, &n);
  unlink(path);
  *sz = n;
  return b;
}

/* ---- a file truncated while it is read ------------------------------------------
 * ws_trunc_restore restores path into w while the file is truncated to `to`
 * bytes at a moment the test controls: when the restore first writes into
 * w (taking its lock: after the structure was validated, before the data
 * is read).  w's header page is made read-only; the SIGSEGV handler
 * truncates the file, makes the page writable again and lets the write go
 * on.  ws_trunc_print prints path at level `verbose` into a pipe whose first
 * byte of output truncates the file before more is read.  Both return the
 * call's code (-100: the set-up failed); run them in a child, as a death
 * by a signal (SIGBUS from a mapped file) is what they look for. */
typedef struct {
  int fd;
  off_t to;
  void *page;
} ws_trunc_t;

static inline ws_trunc_t *ws_trunc_state(void) {
  static ws_trunc_t t = {.fd = -1};
  return &t;
}

static inline void ws_trunc_on_fault(int sig, siginfo_t *si, void *uc) {
  (void)sig, (void)uc;
  ws_trunc_t *t = ws_trunc_state();
  uintptr_t a = (uintptr_t)si->si_addr, pg = (uintptr_t)t->page;
  if (a < pg || a >= pg + 4096) abort(); /* a real fault */
  if (ftruncate(t->fd, t->to) || mprotect(t->page, 4096, PROT_READ | PROT_WRITE)) abort();
}

static inline int ws_trunc_restore(wksp_t *w, const char *path, off_t to,
                                   const wksp_restore_opts_t *o) {
  ws_trunc_t *t = ws_trunc_state();
  struct sigaction sa = {.sa_sigaction = ws_trunc_on_fault, .sa_flags = SA_SIGINFO};
  t->fd = open(path, O_RDWR);
  t->to = to;
  t->page = w; /* the header, where the lock is (w is page-aligned: ws_new) */
  if (t->fd < 0 || sigaction(SIGSEGV, &sa, NULL) || mprotect(t->page, 4096, PROT_READ))
    return -100;
  int rc = wksp_restore(w, path, o);
  mprotect(t->page, 4096, PROT_READ | PROT_WRITE); /* not written: a failure before the lock */
  close(t->fd);
  return rc;
}

static inline void *ws_trunc_output(void *arg) {
  int fd = *(int *)arg;
  char c[65536];
  ws_trunc_t *t = ws_trunc_state();
  if (read(fd, c, 1) == 1 && ftruncate(t->fd, t->to)) abort();
  while (read(fd, c, sizeof c) > 0) {
  }
  return NULL;
}

static inline int ws_trunc_print(const char *path, off_t to, int verbose) {
  ws_trunc_t *t = ws_trunc_state();
  int p[2];
  pthread_t th;
  t->fd = open(path, O_RDWR);
  t->to = to;
  if (t->fd < 0 || pipe(p) || pthread_create(&th, NULL, ws_trunc_output, &p[0])) return -100;
  int rc = wksp_checkpt_print(p[1], path, verbose); /* (its message stays this thread's) */
  close(p[1]);
  pthread_join(th, NULL);
  close(p[0]);
  close(t->fd);
  return rc;
}

/* Restores into w from a pipe that feed(arg), on a thread of its own,
 * fills and closes; *feed_fd is set to the pipe's write end before the
 * thread starts.  wksp_restore_fd's code, or WKSP_ERR_FAIL if no pipe or
 * thread. */
static inline int ws_restore_fed(wksp_t *w, const char *name, const wksp_restore_opts_t *o,
                                 void *(*feed)(void *), void *arg, int *feed_fd) {
  int pfd[2];
  if (pipe(pfd)) return WKSP_ERR_FAIL;
  *feed_fd = pfd[1];
  pthread_t th;
  if (pthread_create(&th, NULL, feed, arg)) {
    close(pfd[0]);
    close(pfd[1]);
    return WKSP_ERR_FAIL;
  }
  int rc = wksp_restore_fd(w, pfd[0], name, o);
  close(pfd[0]);
  pthread_join(th, NULL);
  return rc;
}

/* Pumps a buffer into a pipe from a thread (pump_main as the thread body)
 * with raw write system calls, which the fault shim of the reliability
 * tests does not see: faults go to the reader only. */
typedef struct {
  int fd;
  const uint8_t *b;
  uint64_t sz;
} pump_t;

static inline void *pump_main(void *arg) {
  pump_t *p = arg;
  uint64_t done = 0;
  while (done < p->sz) {
    long n = syscall(SYS_write, p->fd, p->b + done, p->sz - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    done += (uint64_t)n;
  }
  close(p->fd);
  return NULL;
}

/* Restores b[0..sz) into w from a pipe that a thread fills: the stream
 * path.  wksp_restore_fd's code, or WKSP_ERR_FAIL if no pipe or thread. */
static inline int restore_piped(wksp_t *w, const uint8_t *b, uint64_t sz, const char *name,
                                const wksp_restore_opts_t *o) {
  pump_t pm = {.b = b, .sz = sz};
  return ws_restore_fed(w, name, o, pump_main, &pm, &pm.fd);
}

/* A checkpoint of src written to a pipe (closed after) by a thread of its
 * own (writer_main as the thread body); rc is wksp_checkpt_fd's code. */
typedef struct {
  wksp_t *w;
  int fd;
  const wksp_checkpt_opts_t *o;
  int rc;
} writer_t;

static inline void *writer_main(void *arg) {
  writer_t *x = arg;
  x->rc = wksp_checkpt_fd(x->w, x->fd, "pipe", x->o);
  close(x->fd);
  return NULL;
}

/* src checkpointed (options o) through a pipe straight into dst (options
 * ro): the stream path on both sides.  The restore's code (WKSP_ERR_FAIL if
 * no pipe or thread); the checkpoint's goes to *ckpt_rc. */
static inline int ws_pipe_copy(wksp_t *src, const wksp_checkpt_opts_t *o, wksp_t *dst,
                               const wksp_restore_opts_t *ro, int *ckpt_rc) {
  writer_t x = {.w = src, .o = o, .rc = WKSP_ERR_FAIL};
  int rc = ws_restore_fed(dst, "pipe", ro, writer_main, &x, &x.fd);
  *ckpt_rc = x.rc;
  return rc;
}

#endif
