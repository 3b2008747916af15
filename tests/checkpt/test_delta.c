/* Incremental checkpoints (delta.c, delta_format.c, index.c, chain.c,
 * fold.c): exact change detection, random workloads whose every chain
 * restores identical to the live workspace, the sidecar index and its
 * fallbacks, chains refused before anything changes, damaged deltas,
 * verify; folds byte-identical (outside the info frame) to a direct
 * checkpoint, and refused leaving nothing. */
#include "../lib/ws.h"
#include "../lib/vec.h"
#include "../lib/ckpt_test.h"
#include "../../src/checkpt/delta_private.h"
#include "../../src/wksp/wksp_private.h"

#include <errno.h>
#include <pthread.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>

static char dir[256];
static char dirs[32][256]; /* removed at the end */
static int ndirs;

#define PMAX 512
#define DMAX (64ull << 20)

static void mkdir_tmp(void) {
  snprintf(dir, sizeof dir, "/tmp/wksp-test-delta.XXXXXX");
  if (!mkdtemp(dir)) abort();
  if (ndirs < 32) snprintf(dirs[ndirs++], sizeof dirs[0], "%s", dir);
}

static void rm_dirs(void) {
  for (int i = 0; i < ndirs; i++) {
    DIR *d = opendir(dirs[i]);
    struct dirent *e;
    while (d && (e = readdir(d)))
      if (e->d_name[0] != '.' || (e->d_name[1] && strcmp(e->d_name, ".."))) unlinkat(dirfd(d), e->d_name, 0);
    if (d) closedir(d);
    rmdir(dirs[i]);
  }
}

static char *tpath(const char *name) {
  static char b[8][600];
  static int i;
  char *p = b[i++ % 8];
  snprintf(p, 600, "%s/%s", dir, name);
  return p;
}

static int exists(const char *p) { return !access(p, F_OK); }

/* ---- workloads ------------------------------------------------------------------ */

static void fill_text(uint8_t *p, uint64_t n, uint64_t *rng) {
  static const char *const words[] = {"slot ", "leader ", "vote ", "bank ", "tx ", "shred\n"};
  for (uint64_t i = 0; i < n;) {
    const char *s = words[test_rng(rng) % 6];
    for (; *s && i < n; s++) p[i++] = (uint8_t)*s;
  }
}

static uint64_t rand_size(uint64_t *rng) {
  switch (test_rng(rng) % 4) {
    case 0: return 1 + test_rng(rng) % 300;
    case 1: return 1 + test_rng(rng) % (300 << 10);
    case 2: return 65536 - 1 + test_rng(rng) % 3;
    default: return 1 + test_rng(rng) % (4 << 20);
  }
}

/* Replaces w's table by parts (same bytes): retags and resizes. */
static int set_table(wksp_t *w, const wksp_part_t *parts, uint64_t cnt) {
  int rc = wksp_private_lock(w);
  if (rc) return rc;
  rc = wksp_private_replace(w, parts, cnt, wksp_seed(w));
  wksp_private_unlock(w);
  return rc;
}

/* One random change to w. */
static void workload_op(wksp_t *w, uint64_t *rng) {
  uint64_t cnt = 0;
  wksp_part_t *p = ws_allocs(w, &cnt);
  uint64_t op = test_rng(rng) % 8, k = cnt ? test_rng(rng) % cnt : 0;
  if (!cnt || op == 0) {
    uint64_t lo, hi, g, sz = rand_size(rng);
    if (!wksp_alloc_at_least(w, 1, sz, 1 + test_rng(rng) % 1000, &g, &lo, &hi))
      fill_text(wksp_laddr(w, lo), hi - lo, rng);
  } else if (op == 1) {
    wksp_free(w, p[k].gaddr_lo);
  } else if (op == 2) { /* retag */
    p[k].tag = 1 + test_rng(rng) % 1000;
    set_table(w, p, cnt);
  } else if (op == 3) { /* one byte */
    uint8_t *b = wksp_laddr(w, p[k].gaddr_lo);
    b[test_rng(rng) % (p[k].gaddr_hi - p[k].gaddr_lo)] ^= (uint8_t)(1 + test_rng(rng) % 255);
  } else if (op == 4) { /* a span, crossing pieces where it can */
    uint64_t sz = p[k].gaddr_hi - p[k].gaddr_lo, at = sz > 65536 ? 65536 - 100 : 0;
    uint64_t n = sz - at < 300 ? sz - at : 300;
    fill_text((uint8_t *)wksp_laddr(w, p[k].gaddr_lo) + at, n, rng);
  } else if (op == 5) { /* old bytes written back */
    uint8_t *b = wksp_laddr(w, p[k].gaddr_lo);
    memmove(b, b, p[k].gaddr_hi - p[k].gaddr_lo);
  } else if (op == 6 && p[k].gaddr_hi - p[k].gaddr_lo > 1) { /* shrink, same start */
    p[k].gaddr_hi -= 1 + test_rng(rng) % ((p[k].gaddr_hi - p[k].gaddr_lo) - 1);
    set_table(w, p, cnt);
  } else {
    uint64_t lo, hi, g;
    if (!wksp_alloc_at_least(w, 4096, 65536 * (1 + test_rng(rng) % 4), 7, &g, &lo, &hi))
      fill_text(wksp_laddr(w, lo), hi - lo, rng);
  }
  free(p);
}

/* Restores the chain into a fresh workspace and compares it with w. */
static int chain_matches(wksp_t *w, const char *const *chain, size_t n, uint32_t threads, int vf) {
  wksp_t *t = ws_new("target", 1, PMAX, DMAX);
  if (!t) return 0;
  wksp_restore_opts_t o = {.threads = threads, .verify_first = vf, .seed = 5};
  int rc = wksp_restore_chain(t, chain, n, &o);
  if (rc) fprintf(stderr, "restore_chain: %d %s\n", rc, wksp_errmsg());
  uint8_t a[32], b[32];
  ws_digest(w, a);
  ws_digest(t, b);
  int ok = !rc && !memcmp(a, b, 32) && !wksp_verify(t);
  ws_free(t);
  return ok;
}

static wksp_t *fresh_ws(uint64_t seed) {
  wksp_t *w = ws_new("live", 3, PMAX, DMAX);
  uint64_t rng = seed;
  if (w) ws_fill(w, 60, 200000, 1, &rng);
  return w;
}

/* ---- exact detection -------------------------------------------------------------- */

static int delta_of(wksp_t *w, const char *path, const char *base, wksp_delta_stats_t *st) {
  unlink(path);
  return wksp_checkpt_delta(w, path, base, &(wksp_checkpt_opts_t){.threads = 2}, st);
}

static void test_delta_exact(void) {
  mkdir_tmp();
  wksp_t *w = ws_new("live", 3, PMAX, DMAX);
  CHECK(w);
  uint64_t rng = 42, g[3], lo[3], hi[3];
  uint64_t sz[3] = {200 << 10, 3 * 65536, 5000};
  for (int i = 0; i < 3; i++) {
    CHECK_OK(wksp_alloc_at_least(w, 1, sz[i], 10 + i, &g[i], &lo[i], &hi[i]));
    fill_text(wksp_laddr(w, lo[i]), hi[i] - lo[i], &rng);
  }
  const char *base = tpath("base"), *d = tpath("d");
  CHECK_OK(wksp_checkpt(w, base, &(wksp_checkpt_opts_t){.verify = 1}));
  wksp_delta_stats_t st;
  const char *chain[2] = {base, d};
  /* nothing changed: an index, no pieces; the size follows from the counts */
  CHECK_OK(delta_of(w, d, base, &st));
  CHECK_EQ(st.changed_cnt, 0);
  CHECK_EQ(st.base_from, WKSP_BASE_FROM_DECODE);
  CHECK(strstr(st.base_note, "missing"));
  uint64_t P = st.piece_cnt, A = st.alloc_cnt;
  CHECK_EQ(A, 3);
  struct stat sb;
  CHECK(!stat(d, &sb));
  CHECK_EQ((uint64_t)sb.st_size, 280 + strlen(base) + 24 * A + 8 * P + 8 * ((P + 63) / 64));
  CHECK_EQ(st.digest, st.base_digest);
  CHECK(chain_matches(w, chain, 2, 1, 0));
  /* one byte -> one piece */
  ((uint8_t *)wksp_laddr(w, lo[0]))[70000] ^= 1;
  CHECK_OK(delta_of(w, d, base, &st));
  CHECK_EQ(st.changed_cnt, 1);
  CHECK_EQ(st.changed_sz, 65536);
  CHECK(chain_matches(w, chain, 2, 2, 0));
  ((uint8_t *)wksp_laddr(w, lo[0]))[70000] ^= 1;
  /* a tag change alone -> no piece */
  uint64_t cnt = 0;
  wksp_part_t *p = ws_allocs(w, &cnt);
  p[1].tag = 99;
  CHECK_OK(set_table(w, p, cnt));
  CHECK_OK(delta_of(w, d, base, &st));
  CHECK_EQ(st.changed_cnt, 0);
  CHECK(st.digest != st.base_digest);
  CHECK(chain_matches(w, chain, 2, 2, 1));
  /* freed and allocated again at the same start with the same bytes -> 0 */
  CHECK_OK(set_table(w, p + 1, cnt - 1));
  p[1].tag = 11;
  CHECK_OK(set_table(w, p, cnt));
  CHECK_OK(delta_of(w, d, base, &st));
  CHECK_EQ(st.changed_cnt, 0);
  CHECK_EQ(st.digest, st.base_digest);
  /* resized with the same start: only the pieces whose length changed */
  uint64_t h0 = p[0].gaddr_hi;
  p[0].gaddr_hi = p[0].gaddr_lo + 150 * 1024; /* 64, 64, 22 KiB: the third piece changed */
  CHECK_OK(set_table(w, p, cnt));
  CHECK_OK(delta_of(w, d, base, &st));
  CHECK_EQ(st.changed_cnt, 1);
  CHECK_EQ(st.changed_sz, 150 * 1024 - 2 * 65536);
  CHECK(chain_matches(w, chain, 2, 1, 1));
  p[0].gaddr_hi = h0;
  CHECK_OK(set_table(w, p, cnt));
  /* moved content: every piece of it */
  uint64_t g2, l2, x2;
  CHECK_OK(wksp_alloc_at_least(w, 1, hi[1] - lo[1], 12, &g2, &l2, &x2));
  memcpy(wksp_laddr(w, l2), wksp_laddr(w, lo[1]), hi[1] - lo[1]);
  CHECK_OK(delta_of(w, d, base, &st));
  CHECK_EQ(st.changed_cnt, delta_pieces_of(x2 - l2));
  CHECK(chain_matches(w, chain, 2, 2, 0));
  /* a delta is not a checkpoint: restore refuses it, nothing changed */
  uint8_t before[32], after[32];
  ws_digest(w, before);
  int rc = wksp_restore(w, d, NULL);
  CHECK_EQ(rc, WKSP_ERR_UNSUP);
  CHECK(strstr(wksp_errmsg(), "delta"));
  ws_digest(w, after);
  CHECK(!memcmp(before, after, 32));
  free(p);
  ws_free(w);
}

/* Progress of a chain restore: the bytes written (the base's, then each
 * delta's changed pieces), in order, from the calling thread, within the
 * base's large allocation (at least every 4 MiB on one thread), ending at
 * done == total == their sum. */
typedef struct {
  uint64_t calls, last, total, gap;
  int bad;
  pthread_t caller;
} chain_prog_t;

static void chain_prog_fn(uint64_t done, uint64_t total, void *ctx) {
  chain_prog_t *p = ctx;
  if (done < p->last || done > total || !pthread_equal(pthread_self(), p->caller)) p->bad = 1;
  if (done - p->last > p->gap) p->gap = done - p->last;
  p->calls++;
  p->last = done;
  p->total = total;
}

static void test_delta_chain_progress(void) {
  mkdir_tmp();
  wksp_t *w = ws_new("live", 3, PMAX, DMAX), *d = ws_new("dst", 3, PMAX, DMAX);
  CHECK(w && d);
  uint64_t rng = 7, g, lo, hi, big = 20 << 20;
  CHECK_OK(wksp_alloc_at_least(w, 1, big, 5, &g, &lo, &hi));
  fill_text(wksp_laddr(w, lo), hi - lo, &rng);
  const char *base = tpath("base"), *d1 = tpath("d1"), *d2 = tpath("d2");
  CHECK_OK(wksp_checkpt(w, base, &(wksp_checkpt_opts_t){.verify = 1}));
  wksp_delta_stats_t s1, s2;
  ((uint8_t *)wksp_laddr(w, lo))[100] ^= 1;
  CHECK_OK(delta_of(w, d1, base, &s1));
  ((uint8_t *)wksp_laddr(w, lo))[5 << 20] ^= 1;
  ((uint8_t *)wksp_laddr(w, lo))[9 << 20] ^= 1;
  CHECK_OK(delta_of(w, d2, d1, &s2));
  CHECK_EQ(s1.changed_cnt + s2.changed_cnt, 3);
  const char *chain[3] = {base, d1, d2};
  for (uint32_t t = 1; t <= 2; t++) {
    chain_prog_t p = {.caller = pthread_self()};
    wksp_restore_opts_t o = {.threads = t, .progress = chain_prog_fn, .progress_ctx = &p};
    CHECK_OK(wksp_restore_chain(d, chain, 3, &o));
    CHECK(ws_same(w, d));
    CHECK(!p.bad);
    CHECK_EQ(p.total, (hi - lo) + s1.changed_sz + s2.changed_sz);
    CHECK_EQ(p.last, p.total);
    CHECK(p.calls >= 2);
    if (t == 1) CHECK(p.gap <= (4u << 20));
  }
  ws_free(d);
  ws_free(w);
}

/* Progress of a delta checkpoint: the live bytes hashed and written, in
 * order, from the calling thread, at least every 4 MiB on one thread,
 * ending at done == total == the allocated bytes (the pool commits each
 * batch of pieces in order on whichever thread, and the caller reports). */
static void test_delta_progress(void) {
  mkdir_tmp();
  wksp_t *w = ws_new("live", 3, PMAX, DMAX);
  CHECK(w);
  uint64_t rng = 8, g, lo, hi, g2, lo2, hi2;
  CHECK_OK(wksp_alloc_at_least(w, 1, 20 << 20, 5, &g, &lo, &hi));
  CHECK_OK(wksp_alloc_at_least(w, 1, 100000, 6, &g2, &lo2, &hi2));
  fill_text(wksp_laddr(w, lo), hi - lo, &rng);
  const char *base = tpath("base"), *d1 = tpath("d1");
  CHECK_OK(wksp_checkpt(w, base, &(wksp_checkpt_opts_t){.verify = 1}));
  ((uint8_t *)wksp_laddr(w, lo))[7 << 20] ^= 1;
  for (uint32_t t = 1; t <= 3; t++) {
    chain_prog_t p = {.caller = pthread_self()};
    wksp_checkpt_opts_t o = {.threads = t, .progress = chain_prog_fn, .progress_ctx = &p};
    wksp_delta_stats_t st;
    unlink(d1);
    CHECK_OK(wksp_checkpt_delta(w, d1, base, &o, &st));
    CHECK_EQ(st.changed_cnt, 1);
    CHECK(!p.bad);
    CHECK_EQ(p.total, (hi - lo) + (hi2 - lo2));
    CHECK_EQ(p.last, p.total);
    CHECK(p.calls >= 2);
    if (t == 1) CHECK(p.gap <= (4u << 20));
  }
  ws_free(w);
}

/* ---- random workloads --------------------------------------------------------------- */

static void test_delta_random(void) {
  mkdir_tmp();
  uint64_t rng = test_seed();
  wksp_t *w = fresh_ws(rng);
  CHECK(w);
  static char base[600]; /* kept: tpath's buffers are reused */
  snprintf(base, sizeof base, "%s", tpath("base"));
  CHECK_OK(wksp_checkpt(w, base, &(wksp_checkpt_opts_t){.verify = 1, .index = 1, .threads = 2}));
  CHECK(exists(tpath("base.wkspidx")));
  static char names[64][600];
  const char *chain[64] = {base};
  size_t n = 1;
  for (int r = 1; r <= 30; r++) {
    int ops = 1 + (int)(test_rng(&rng) % 8);
    for (int i = 0; i < ops; i++) workload_op(w, &rng);
    if (r % 7 == 0) n = 1; /* a star: since the full base */
    if (r % 5 == 0) unlink(tpath("base.wkspidx"));
    snprintf(names[r], sizeof names[r], "%s/d%d", dir, r);
    wksp_checkpt_opts_t o = {.style = test_rng(&rng) % 2 ? WKSP_CHECKPT_STYLE_V2 : WKSP_CHECKPT_STYLE_V3,
                             .threads = 1 + (uint32_t)(test_rng(&rng) % 2), .verify = (int)(test_rng(&rng) % 2)};
    wksp_delta_stats_t st;
    if (test_rng(&rng) % 4 == 0 && !o.verify) {
      int fd = open(names[r], O_WRONLY | O_CREAT | O_TRUNC, 0600);
      CHECK(fd >= 0);
      CHECK_OK(wksp_checkpt_delta_fd(w, fd, names[r], chain[n - 1], &o, &st));
      close(fd);
    } else {
      CHECK_OK(wksp_checkpt_delta(w, names[r], chain[n - 1], &o, &st));
    }
    CHECK_EQ(st.base_from, n == 1 ? (exists(tpath("base.wkspidx")) ? WKSP_BASE_FROM_INDEX : WKSP_BASE_FROM_DECODE)
                                  : WKSP_BASE_FROM_DELTA);
    chain[n++] = names[r];
    if (!chain_matches(w, chain, n, 1 + (uint32_t)(r % 2), r % 3 == 0)) {
      fprintf(stderr, "round %d: chain of %zu does not restore the live workspace\n", r, n);
      CHECK(0);
    }
    if (r % 5 == 0) CHECK_OK(wksp_checkpt_index(base, 2));
  }
  ws_free(w);
}

/* ---- diff of a chain: what diff of a full checkpoint of that state says ------------- */

typedef struct {
  int kind;
  wksp_part_t c, w;
  uint64_t off;
} diff_rec_t;

typedef struct {
  diff_rec_t v[64];
  int n;
} diff_recs_t;

static void diff_rec(int kind, const wksp_part_t *c, const wksp_part_t *w, uint64_t off, void *ctx) {
  diff_recs_t *r = ctx;
  if (r->n < 64) r->v[r->n++] = (diff_rec_t){kind, *c, *w, off};
}

static int parts_eq(const wksp_part_t *a, const wksp_part_t *b) {
  return a->gaddr_lo == b->gaddr_lo && a->gaddr_hi == b->gaddr_hi && a->tag == b->tag;
}

/* Diffs w with the chain and with a fresh sealed full checkpoint of the
 * chain's state (full, written before w changed): the same results, every
 * difference the same.  Returns the chain's first kind, -1 on a mismatch. */
static int diff_both(wksp_t *w, const char *const *chain, size_t n, const char *full, uint32_t threads) {
  diff_recs_t rc_ = {0}, rf = {0};
  wksp_checkpt_diff_t dc, df;
  int e1 = wksp_checkpt_diff_chain(w, chain, n, &(wksp_diff_opts_t){threads, diff_rec, &rc_}, &dc);
  if (e1) fprintf(stderr, "diff_chain: %s\n", wksp_errmsg());
  int e2 = wksp_checkpt_diff(w, full, &(wksp_diff_opts_t){threads, diff_rec, &rf}, &df);
  int same = !e1 && !e2 && dc.same == df.same && dc.bytes == df.bytes && dc.tag == df.tag &&
             dc.only_ckpt == df.only_ckpt && dc.only_wksp == df.only_wksp && dc.first_kind == df.first_kind &&
             parts_eq(&dc.first_ckpt, &df.first_ckpt) && parts_eq(&dc.first_wksp, &df.first_wksp) &&
             dc.first_off == df.first_off && dc.digest == df.digest && dc.seal == WKSP_SEAL_OK &&
             df.seal == WKSP_SEAL_OK && rc_.n == rf.n;
  for (int i = 0; same && i < rc_.n; i++)
    same = rc_.v[i].kind == rf.v[i].kind && parts_eq(&rc_.v[i].c, &rf.v[i].c) && parts_eq(&rc_.v[i].w, &rf.v[i].w) &&
           rc_.v[i].off == rf.v[i].off;
  return same ? dc.first_kind : -1;
}

static void test_delta_diff(void) {
  mkdir_tmp();
  uint64_t rng = test_seed() + 1;
  wksp_t *w = fresh_ws(rng);
  CHECK(w);
  static char base[600], full[600], names[32][600];
  snprintf(base, sizeof base, "%s", tpath("base"));
  snprintf(full, sizeof full, "%s", tpath("full"));
  CHECK_OK(wksp_checkpt(w, base, &(wksp_checkpt_opts_t){.verify = 1, .threads = 2}));
  const char *chain[32] = {base};
  size_t n = 1;
  for (int r = 1; r <= 12; r++) {
    for (int i = 0, ops = 1 + (int)(test_rng(&rng) % 8); i < ops; i++) workload_op(w, &rng);
    if (r == 7) n = 1;
    snprintf(names[r], sizeof names[r], "%s/d%d", dir, r);
    wksp_checkpt_opts_t o = {.style = r % 2 ? WKSP_CHECKPT_STYLE_V2 : WKSP_CHECKPT_STYLE_V3, .threads = 2};
    CHECK_OK(wksp_checkpt_delta(w, names[r], chain[n - 1], &o, NULL));
    chain[n++] = names[r];
    unlink(full);
    CHECK_OK(wksp_checkpt(w, full, &(wksp_checkpt_opts_t){.verify = 1}));
    CHECK_EQ(diff_both(w, chain, n, full, 1 + (uint32_t)(r % 2)), WKSP_DIFF_NONE);
    /* one change of each kind, each found as the full checkpoint finds it */
    uint64_t cnt = 0;
    wksp_part_t *p = ws_allocs(w, &cnt);
    CHECK(cnt > 2);
    uint64_t k = test_rng(&rng) % cnt, sz = p[k].gaddr_hi - p[k].gaddr_lo;
    uint8_t *b = (uint8_t *)wksp_laddr(w, p[k].gaddr_lo) + test_rng(&rng) % sz;
    *b ^= 0x20;
    CHECK_EQ(diff_both(w, chain, n, full, 2), WKSP_DIFF_BYTES);
    *b ^= 0x20;
    p[k].tag += 1;
    CHECK_OK(set_table(w, p, cnt));
    CHECK_EQ(diff_both(w, chain, n, full, 2), WKSP_DIFF_TAG);
    p[k].tag -= 1;
    CHECK_OK(set_table(w, p, cnt));
    CHECK_EQ(diff_both(w, chain, n, full, 1), WKSP_DIFF_NONE);
    if (r % 3 == 0) { /* freed for good: the workload goes on without it */
      CHECK_OK(wksp_free(w, p[k].gaddr_lo));
      CHECK_EQ(diff_both(w, chain, n, full, 2), WKSP_DIFF_ONLY_CKPT);
    }
    free(p);
  }
  /* out of order: refused, nothing compared */
  wksp_checkpt_diff_t d;
  CHECK_ERR(wksp_checkpt_diff_chain(w, (const char *[]){base, names[2], names[1]}, 3, NULL, &d), WKSP_ERR_INVAL);
  CHECK(strstr(wksp_errmsg(), "chain out of order"));
  CHECK_EQ(d.same, 0);
  CHECK_ERR(wksp_checkpt_diff_chain(w, (const char *[]){names[1], names[2]}, 2, NULL, &d), WKSP_ERR_INVAL);
  CHECK_ERR(wksp_checkpt_diff_chain(w, NULL, 2, NULL, &d), WKSP_ERR_INVAL);
  ws_free(w);
}

/* ---- info and check of deltas and chains, without a workspace ------------------------- */

/* A copy of src at dst with byte `at` flipped. */
static void flip_copy(const char *src, const char *dst, uint64_t at) {
  size_t sz = 0;
  uint8_t *b = (uint8_t *)vec_slurp(src, &sz);
  CHECK(b && at < sz);
  if (!b || at >= sz) return;
  b[at] ^= 0x10;
  int fd = open(dst, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  CHECK(fd >= 0 && write(fd, b, sz) == (ssize_t)sz);
  close(fd);
  free(b);
}

static void test_delta_chain_info(void) {
  mkdir_tmp();
  uint64_t rng = 23;
  wksp_t *w = fresh_ws(rng);
  CHECK(w);
  static char base[600], d1[600], d2[600];
  snprintf(base, sizeof base, "%s", tpath("base"));
  snprintf(d1, sizeof d1, "%s", tpath("d1"));
  snprintf(d2, sizeof d2, "%s", tpath("d2"));
  CHECK_OK(wksp_checkpt(w, base, &(wksp_checkpt_opts_t){.verify = 1, .style = WKSP_CHECKPT_STYLE_V2}));
  for (int i = 0; i < 6; i++) workload_op(w, &rng);
  wksp_delta_stats_t s1, s2;
  CHECK_OK(wksp_checkpt_delta(w, d1, base, NULL, &s1));
  for (int i = 0; i < 6; i++) workload_op(w, &rng);
  CHECK_OK(wksp_checkpt_delta(w, d2, d1, &(wksp_checkpt_opts_t){.style = WKSP_CHECKPT_STYLE_V2}, &s2));
  wksp_chain_info_t ci;
  CHECK_OK(wksp_chain_info((const char *[]){base, d1, d2}, 3, &ci));
  CHECK(ci.linked && ci.first_unlinked == 3 && ci.cnt == 3);
  CHECK_EQ(ci.links[0].kind, WKSP_FILE_CHECKPT);
  CHECK_EQ(ci.links[0].seal, WKSP_SEAL_OK);
  CHECK_EQ(ci.links[0].digest, s1.base_digest);
  CHECK_EQ(ci.links[1].kind, WKSP_FILE_DELTA);
  CHECK_EQ(ci.links[1].digest, s1.digest);
  CHECK_EQ(ci.links[2].base_digest, s1.digest);
  CHECK_EQ(ci.links[2].digest, s2.digest);
  CHECK_EQ(ci.links[2].changed_cnt, s2.changed_cnt);
  CHECK_EQ(ci.links[2].changed_sz, s2.changed_sz);
  CHECK_EQ(ci.links[2].piece_cnt, s2.piece_cnt);
  CHECK_EQ(ci.links[2].alloc_cnt, s2.alloc_cnt);
  uint64_t held = 0, cnt = 0;
  for (uint64_t k = 0; k < ci.links[2].alloc_cnt; k++) held += ci.links[2].changed[k];
  CHECK_EQ(held, s2.changed_cnt);
  wksp_part_t *p = ws_allocs(w, &cnt);
  CHECK_EQ(cnt, ci.links[2].alloc_cnt);
  CHECK(cnt && !memcmp(p, ci.links[2].parts, cnt * sizeof *p));
  free(p);
  wksp_chain_info_free(&ci);
  /* out of order: described, not refused; the first link that fails named */
  CHECK_OK(wksp_chain_info((const char *[]){base, d2, d1}, 3, &ci));
  CHECK(!ci.linked && ci.first_unlinked == 1 && ci.links[0].linked && !ci.links[1].linked && !ci.links[2].linked);
  wksp_chain_info_free(&ci);
  CHECK_OK(wksp_chain_info((const char *[]){d1}, 1, &ci));
  CHECK(!ci.linked && ci.first_unlinked == 0);
  wksp_chain_info_free(&ci);
  /* check: the whole chain, then the first problem */
  int seal = 0;
  CHECK_OK(wksp_chain_check((const char *[]){base, d1, d2}, 3, NULL, &seal));
  CHECK_EQ(seal, WKSP_SEAL_OK);
  CHECK_OK(wksp_checkpt_check(d2, NULL, &seal));
  CHECK_EQ(seal, WKSP_SEAL_OK);
  CHECK_ERR(wksp_chain_check((const char *[]){base, d2, d1}, 3, NULL, &seal), WKSP_ERR_INVAL);
  CHECK(strstr(wksp_errmsg(), "chain out of order"));
  CHECK_EQ(seal, WKSP_SEAL_NONE);
  /* a flipped byte inside a piece frame: info still describes it, check refuses it */
  checkpt_input_t in;
  delta_file_t df;
  CHECK_OK(wksp_private_checkpt_input_open(&in, d2, -1, d2, 0));
  CHECK_OK(wksp_private_delta_open(&df, &in));
  uint64_t at = df.f.pieces_off + (df.f.index_off - df.f.pieces_off) / 2;
  CHECK(df.f.changed_cnt > 0);
  wksp_private_delta_fini(&df);
  wksp_private_checkpt_input_fini(&in);
  const char *bad = tpath("d2bad"), *badbase = tpath("basebad");
  flip_copy(d2, bad, at);
  CHECK_OK(wksp_chain_info((const char *[]){base, d1, bad}, 3, &ci));
  CHECK(ci.linked);
  wksp_chain_info_free(&ci);
  CHECK_ERR(wksp_checkpt_check(bad, NULL, NULL), WKSP_ERR_CORRUPT);
  CHECK(strstr(wksp_errmsg(), "d2bad"));
  CHECK_ERR(wksp_chain_check((const char *[]){base, d1, bad}, 3, NULL, NULL), WKSP_ERR_CORRUPT);
  CHECK(strstr(wksp_errmsg(), "d2bad"));
  /* a base damaged in its bytes: found by its seal, without a workspace */
  struct stat sb;
  CHECK(!stat(base, &sb));
  flip_copy(base, badbase, (uint64_t)sb.st_size / 2);
  CHECK_ERR(wksp_chain_check((const char *[]){badbase, d1, d2}, 3, &(wksp_check_opts_t){.threads = 2}, NULL),
            WKSP_ERR_CORRUPT);
  CHECK(strstr(wksp_errmsg(), "basebad does not match its seal"));
  CHECK_ERR(wksp_chain_info(NULL, 1, &ci), WKSP_ERR_INVAL);
  CHECK_ERR(wksp_chain_check((const char *[]){base, NULL}, 2, NULL, NULL), WKSP_ERR_INVAL);
  ws_free(w);
}

/* ---- a chain member read from a pipe: spooled, bounded by its header ---------------- */

/* A pipe a child fills with the bytes of path (then extra bytes of 'x');
 * returns its read end, *pid the child. */
static int pipe_of(const char *path, size_t extra, pid_t *pid) {
  int fds[2];
  if (pipe(fds)) return -1;
  if (!(*pid = fork())) {
    close(fds[0]);
    size_t sz = 0;
    char *b = vec_slurp(path, &sz);
    int ok = b && write(fds[1], b, sz) == (ssize_t)sz;
    for (size_t i = 0; ok && i < extra; i++) ok = write(fds[1], "x", 1) == 1;
    _exit(ok ? 0 : 1);
  }
  close(fds[1]);
  return fds[0];
}

static void test_delta_pipe_member(void) {
  mkdir_tmp();
  uint64_t rng = 31;
  wksp_t *w = fresh_ws(rng);
  CHECK(w);
  static char base[600], d1[600], d2[600], via[64];
  snprintf(base, sizeof base, "%s", tpath("base"));
  snprintf(d1, sizeof d1, "%s", tpath("d1"));
  snprintf(d2, sizeof d2, "%s", tpath("d2"));
  CHECK_OK(wksp_checkpt(w, base, &(wksp_checkpt_opts_t){.verify = 1}));
  for (int i = 0; i < 8; i++) workload_op(w, &rng);
  CHECK_OK(wksp_checkpt_delta(w, d1, base, NULL, NULL));
  for (int i = 0; i < 8; i++) workload_op(w, &rng);
  CHECK_OK(wksp_checkpt_delta(w, d2, d1, NULL, NULL));
  wksp_t *t = ws_new("target", 1, PMAX, DMAX);
  CHECK(t);
  pid_t pid;
  int st;
  /* the middle delta from a pipe: restored, compared, checked */
  int fd = pipe_of(d1, 0, &pid);
  snprintf(via, sizeof via, "/proc/self/fd/%d", fd);
  CHECK_OK(wksp_restore_chain(t, (const char *[]){base, via, d2}, 3, &(wksp_restore_opts_t){.threads = 2}));
  close(fd);
  waitpid(pid, &st, 0);
  uint8_t a[32], b[32];
  ws_digest(w, a);
  ws_digest(t, b);
  CHECK(!memcmp(a, b, 32));
  wksp_checkpt_diff_t d;
  fd = pipe_of(d2, 0, &pid);
  snprintf(via, sizeof via, "/proc/self/fd/%d", fd);
  CHECK_OK(wksp_checkpt_diff_chain(w, (const char *[]){base, d1, via}, 3, NULL, &d));
  CHECK_EQ(d.first_kind, WKSP_DIFF_NONE);
  CHECK_EQ(d.seal, WKSP_SEAL_OK);
  close(fd);
  waitpid(pid, &st, 0);
  int seal = 0;
  fd = pipe_of(d1, 0, &pid);
  CHECK_OK(wksp_checkpt_check_fd(fd, "pipe", NULL, &seal));
  CHECK_EQ(seal, WKSP_SEAL_OK);
  close(fd);
  waitpid(pid, &st, 0);
  /* a pipe longer than its header allows: refused while spooling */
  struct stat sb;
  CHECK(!stat(d1, &sb));
  delta_hdr_t h;
  uint8_t hb[DELTA_HDR_SZ];
  int rfd = open(d1, O_RDONLY);
  CHECK(rfd >= 0 && read(rfd, hb, sizeof hb) == (ssize_t)sizeof hb);
  close(rfd);
  wksp_private_delta_hdr_decode(&h, hb);
  uint64_t max = wksp_private_delta_max_sz(h.alloc_cnt, h.piece_cnt);
  fd = pipe_of(d1, (size_t)(max - (uint64_t)sb.st_size + 1), &pid);
  CHECK_ERR(wksp_checkpt_check_fd(fd, "pipe", NULL, NULL), WKSP_ERR_CORRUPT);
  CHECK(strstr(wksp_errmsg(), "longer than"));
  close(fd);
  kill(pid, SIGKILL);
  waitpid(pid, &st, 0);
  ws_free(t);
  ws_free(w);
}

/* The same state written with 1 and 2 threads, RAW and LZ4: the same
 * bytes (but the wallclock and what covers it). */
static void norm(uint8_t *b, uint64_t sz) {
  memset(b + 88, 0, 8);
  memset(b + sz - DELTA_FTR_SZ + 96, 0, 8);
  memset(b + sz - DELTA_FTR_SZ + 112, 0, 8);
}

static void test_delta_threads(void) {
  mkdir_tmp();
  uint64_t rng = 7;
  wksp_t *w = fresh_ws(rng);
  CHECK(w);
  const char *base = tpath("base");
  CHECK_OK(wksp_checkpt(w, base, &(wksp_checkpt_opts_t){.verify = 1}));
  for (int i = 0; i < 20; i++) workload_op(w, &rng);
  for (int style = 2; style <= 3; style++) {
    uint8_t *b[3] = {0};
    size_t sz[3] = {0};
    for (uint32_t t = 1; t <= 3; t++) {
      char *p = tpath(t == 1 ? "t1" : t == 2 ? "t2" : "t3");
      unlink(p);
      CHECK_OK(wksp_checkpt_delta(w, p, base, &(wksp_checkpt_opts_t){.style = style, .threads = t}, NULL));
      b[t - 1] = (uint8_t *)vec_slurp(p, &sz[t - 1]);
      CHECK(b[t - 1]);
      norm(b[t - 1], sz[t - 1]);
    }
    CHECK_EQ(sz[0], sz[1]);
    CHECK_EQ(sz[0], sz[2]);
    CHECK(!memcmp(b[0], b[1], sz[0]));
    CHECK(!memcmp(b[0], b[2], sz[0]));
    for (int t = 0; t < 3; t++) free(b[t]);
  }
  ws_free(w);
}

/* A process that does not map the bytes (the CLI) reads the pieces from
 * the region's file (wksp_private_bytes_route_with): a named workspace
 * whose data pages this process cannot read (PROT_NONE: a read through the
 * mapping would crash the test) gives, with the route forced to the file,
 * the same delta as through the mapping, for RAW and LZ4 pieces, 1 and 2
 * threads, with verify (which hashes the workspace again the same way). */
static void test_delta_region_file(void) {
  mkdir_tmp();
  char shm[300];
  snprintf(shm, sizeof shm, "%s/shm", dir);
  CHECK(!mkdir(shm, 0700));
  setenv("WKSP_SHMEM_DIR", shm, 1);
  wksp_t *w = NULL;
  CHECK_OK(wksp_new_named_exact("dlive", PMAX, DMAX, WKSP_PAGE_NORMAL, 0600, 1));
  CHECK_OK(wksp_attach("dlive", 0, &w));
  uint64_t rng = 11;
  ws_fill(w, 60, 200000, 1, &rng);
  char base[600];
  snprintf(base, sizeof base, "%s", tpath("base"));
  CHECK_OK(wksp_checkpt(w, base, &(wksp_checkpt_opts_t){.verify = 1}));
  for (int i = 0; i < 20; i++) workload_op(w, &rng);
  uintptr_t pg = (uintptr_t)sysconf(_SC_PAGESIZE);
  uintptr_t lo = ((uintptr_t)wksp_laddr(w, wksp_gaddr_lo(w)) + pg - 1) & ~(pg - 1);
  uintptr_t hi = (uintptr_t)wksp_laddr(w, wksp_gaddr_hi(w)) & ~(pg - 1);
  for (int style = 2; style <= 3; style++)
    for (uint32_t t = 1; t <= 2; t++) {
      uint8_t *b[2] = {0};
      size_t sz[2] = {0};
      wksp_delta_stats_t st[2];
      for (int file = 0; file < 2; file++) {
        char *p = tpath(file ? "file" : "map");
        unlink(p);
        wksp_private_bytes_route_force = file ? 1 : -1;
        if (file) CHECK(!mprotect((void *)lo, hi - lo, PROT_NONE));
        int rc = wksp_checkpt_delta(w, p, base, &(wksp_checkpt_opts_t){.style = style, .threads = t, .verify = 1},
                                    &st[file]);
        if (file) CHECK(!mprotect((void *)lo, hi - lo, PROT_READ | PROT_WRITE));
        wksp_private_bytes_route_force = 0;
        CHECK_OK(rc);
        b[file] = (uint8_t *)vec_slurp(p, &sz[file]);
        CHECK(b[file]);
        norm(b[file], sz[file]);
      }
      CHECK(st[0].changed_cnt > 0 && st[0].changed_cnt < st[0].piece_cnt);
      CHECK_EQ(st[0].changed_cnt, st[1].changed_cnt);
      CHECK_EQ(st[0].digest, st[1].digest);
      CHECK_EQ(sz[0], sz[1]);
      CHECK(!memcmp(b[0], b[1], sz[0]));
      free(b[0]);
      free(b[1]);
    }
  const char *chain[2] = {base, tpath("file")};
  CHECK(chain_matches(w, chain, 2, 2, 0));
  /* the chain restored into a named workspace through its region file
   * (the target's data pages unreadable), base and pieces written there,
   * the final digest read back from it */
  wksp_t *t = NULL;
  CHECK_OK(wksp_new_named_exact("dtgt", PMAX, DMAX, WKSP_PAGE_NORMAL, 0600, 1));
  CHECK_OK(wksp_attach("dtgt", 0, &t));
  uintptr_t tlo = ((uintptr_t)wksp_laddr(t, wksp_gaddr_lo(t)) + pg - 1) & ~(pg - 1);
  uintptr_t thi = (uintptr_t)wksp_laddr(t, wksp_gaddr_hi(t)) & ~(pg - 1);
  for (uint32_t th = 1; th <= 2; th++) {
    wksp_private_bytes_route_force = 1;
    CHECK(!mprotect((void *)tlo, thi - tlo, PROT_NONE));
    int rc = wksp_restore_chain(t, chain, 2, &(wksp_restore_opts_t){.threads = th, .seed = 5});
    CHECK(!mprotect((void *)tlo, thi - tlo, PROT_READ | PROT_WRITE));
    wksp_private_bytes_route_force = 0;
    CHECK_OK(rc);
    CHECK(ws_same(w, t));
  }
  wksp_detach(t);
  wksp_delete_named("dtgt");
  wksp_detach(w);
  wksp_delete_named("dlive");
  unsetenv("WKSP_SHMEM_DIR");
  rmdir(shm);
}

/* ---- the sidecar index --------------------------------------------------------------- */

static void test_delta_index(void) {
  mkdir_tmp();
  uint64_t rng = 9;
  wksp_t *w = fresh_ws(rng);
  CHECK(w);
  const char *base = tpath("base"), *ix = tpath("base.wkspidx"), *d = tpath("d");
  /* index needs verify; with it, the sidecar beside the checkpoint */
  CHECK_ERR(wksp_checkpt(w, base, &(wksp_checkpt_opts_t){.index = 1}), WKSP_ERR_INVAL);
  CHECK(!exists(base));
  CHECK_OK(wksp_checkpt(w, base, &(wksp_checkpt_opts_t){.verify = 1, .index = 1}));
  CHECK(exists(ix));
  /* made from the verify's hashes: the same bytes as the file decoded makes */
  size_t xsz = 0, ysz = 0;
  char *x = vec_slurp(ix, &xsz);
  unlink(ix);
  CHECK_OK(wksp_checkpt_index(base, 2));
  char *y = vec_slurp(ix, &ysz);
  CHECK(x && y && xsz == ysz && !memcmp(x, y, xsz));
  free(x);
  free(y);
  /* the index is not a checkpoint: refused by restore and as a base */
  CHECK_ERR(wksp_restore(w, ix, NULL), WKSP_ERR_UNSUP);
  CHECK_ERR(wksp_checkpt_delta(w, d, ix, NULL, NULL), WKSP_ERR_INVAL);
  CHECK(!exists(d));
  for (int i = 0; i < 10; i++) workload_op(w, &rng);
  wksp_delta_stats_t s0, s1;
  CHECK_OK(delta_of(w, d, base, &s0));
  CHECK_EQ(s0.base_from, WKSP_BASE_FROM_INDEX);
  CHECK(!s0.base_note[0]);
  /* damaged: a byte of its hashes flipped -> decoded instead, same delta */
  size_t isz = 0;
  uint8_t *ib = (uint8_t *)vec_slurp(ix, &isz);
  CHECK(ib);
  ib[isz - DELTA_FTR_SZ - 40] ^= 4;
  int fd = open(ix, O_WRONLY | O_TRUNC);
  CHECK(fd >= 0 && write(fd, ib, isz) == (ssize_t)isz);
  close(fd);
  free(ib);
  CHECK_OK(delta_of(w, d, base, &s1));
  CHECK_EQ(s1.base_from, WKSP_BASE_FROM_DECODE);
  CHECK(strstr(s1.base_note, "damaged"));
  CHECK_EQ(s1.digest, s0.digest);
  CHECK_EQ(s1.changed_cnt, s0.changed_cnt);
  CHECK_EQ(s1.file_sz, s0.file_sz);
  /* repaired by wksp_checkpt_index */
  CHECK_OK(wksp_checkpt_index(base, 1));
  CHECK_OK(delta_of(w, d, base, &s1));
  CHECK_EQ(s1.base_from, WKSP_BASE_FROM_INDEX);
  /* stale: the checkpoint overwritten with other content */
  const char *ix2 = tpath("other.wkspidx");
  CHECK_OK(wksp_checkpt(w, tpath("other"), &(wksp_checkpt_opts_t){.verify = 1, .index = 1}));
  CHECK(!rename(ix2, ix));
  CHECK_OK(delta_of(w, d, base, &s1));
  CHECK_EQ(s1.base_from, WKSP_BASE_FROM_DECODE);
  CHECK(strstr(s1.base_note, "stale"));
  CHECK_EQ(s1.digest, s0.digest);
  CHECK_EQ(s1.changed_cnt, s0.changed_cnt);
  /* missing */
  unlink(ix);
  CHECK_OK(delta_of(w, d, base, &s1));
  CHECK_EQ(s1.base_from, WKSP_BASE_FROM_DECODE);
  CHECK(strstr(s1.base_note, "missing"));
  /* a file that is not an index at PATH.wkspidx is never replaced */
  fd = open(ix, O_WRONLY | O_CREAT, 0600);
  CHECK(fd >= 0 && write(fd, "precious", 8) == 8);
  close(fd);
  CHECK_ERR(wksp_checkpt(w, base, &(wksp_checkpt_opts_t){.verify = 1, .index = 1, .overwrite = 1}), WKSP_ERR_EXIST);
  CHECK_ERR(wksp_checkpt_index(base, 1), WKSP_ERR_EXIST);
  size_t n = 0;
  char *c = vec_slurp(ix, &n);
  CHECK(c && n == 8 && !memcmp(c, "precious", 8));
  free(c);
  /* the base was not replaced either: its index, written again, is valid */
  unlink(ix);
  CHECK_OK(wksp_checkpt_index(base, 1));
  CHECK_OK(delta_of(w, d, base, &s1));
  CHECK_EQ(s1.base_from, WKSP_BASE_FROM_INDEX);
  CHECK_EQ(s1.digest, s0.digest);
  ws_free(w);
}

/* ---- refusals: nothing changes ------------------------------------------------------------ */

static void test_delta_refusals(void) {
  mkdir_tmp();
  uint64_t rng = 11;
  wksp_t *w = fresh_ws(rng);
  CHECK(w);
  const char *base = tpath("base"), *d1 = tpath("d1"), *d2 = tpath("d2"), *un = tpath("unsealed");
  CHECK_OK(wksp_checkpt(w, un, NULL));
  CHECK_OK(wksp_checkpt(w, base, &(wksp_checkpt_opts_t){.verify = 1, .index = 1}));
  /* base errors of the writer */
  CHECK_ERR(wksp_checkpt_delta(w, d1, un, NULL, NULL), WKSP_ERR_UNSUP);
  CHECK(strstr(wksp_errmsg(), "not sealed"));
  CHECK_ERR(wksp_checkpt_delta(w, base, base, &(wksp_checkpt_opts_t){.overwrite = 1}, NULL), WKSP_ERR_INVAL);
  CHECK_ERR(wksp_checkpt_delta(w, d1, tpath("nothing"), NULL, NULL), WKSP_ERR_FAIL);
  wksp_t *small = ws_new("small", 3, PMAX / 2, DMAX);
  CHECK(small);
  CHECK_ERR(wksp_checkpt_delta(small, d1, base, NULL, NULL), WKSP_ERR_INVAL);
  CHECK(strstr(wksp_errmsg(), "geometry"));
  ws_free(small);
  CHECK(!exists(d1));
  for (int i = 0; i < 6; i++) workload_op(w, &rng);
  CHECK_OK(wksp_checkpt_delta(w, d1, base, NULL, NULL));
  for (int i = 0; i < 6; i++) workload_op(w, &rng);
  CHECK_OK(wksp_checkpt_delta(w, d2, d1, NULL, NULL));
  /* a target with contents of its own, which every refusal must keep */
  wksp_t *t = ws_new("target", 1, PMAX, DMAX);
  uint64_t r2 = 5;
  ws_fill(t, 30, 100000, 0, &r2);
  uint8_t before[32], after[32];
  ws_digest(t, before);
  struct {
    const char *c[4];
    size_t n;
    int rc;
  } bad[] = {
      {{base, d2}, 2, WKSP_ERR_INVAL},              /* skipped */
      {{base, d2, d1}, 3, WKSP_ERR_INVAL},          /* swapped */
      {{base, d1, d1}, 3, WKSP_ERR_INVAL},          /* duplicated */
      {{d1, d2}, 2, WKSP_ERR_INVAL},                /* a delta first */
      {{base, tpath("base.wkspidx")}, 2, WKSP_ERR_INVAL}, /* an index */
      {{base, d1, base}, 3, WKSP_ERR_INVAL},        /* a checkpoint after the first */
      {{un, d1}, 2, WKSP_ERR_INVAL},                /* unsealed base */
      {{base, tpath("nothing")}, 2, WKSP_ERR_FAIL}, /* missing */
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    int rc = wksp_restore_chain(t, bad[i].c, bad[i].n, NULL);
    if (rc != bad[i].rc) fprintf(stderr, "case %zu: %d (%s)\n", i, rc, wksp_errmsg());
    CHECK_EQ(rc, bad[i].rc);
    ws_digest(t, after);
    CHECK(!memcmp(before, after, 32));
  }
  CHECK_ERR(wksp_restore_chain(t, (const char *[]){base, d2}, 2, NULL), WKSP_ERR_INVAL);
  CHECK(strstr(wksp_errmsg(), "chain out of order"));
  /* a target too small for the final ranges: FULL, untouched */
  wksp_t *tiny = ws_new("tiny", 1, PMAX, 1 << 20);
  CHECK(tiny);
  uint8_t tb[32], ta[32];
  ws_digest(tiny, tb);
  CHECK_ERR(wksp_restore_chain(tiny, (const char *[]){base, d1, d2}, 3, NULL), WKSP_ERR_FULL);
  ws_digest(tiny, ta);
  CHECK(!memcmp(tb, ta, 32));
  ws_free(tiny);
  /* the right chain */
  CHECK(chain_matches(w, (const char *[]){base, d1, d2}, 3, 2, 0));
  /* a BASE damaged in its bytes, without verify_first: found by the
   * result's digest after the reset, and BASE named, not the last delta */
  const char *b2 = tpath("b2"), *e1 = tpath("e1");
  CHECK_OK(wksp_checkpt(w, b2, &(wksp_checkpt_opts_t){.verify = 1, .style = WKSP_CHECKPT_STYLE_V2}));
  workload_op(w, &rng);
  CHECK_OK(wksp_checkpt_delta(w, e1, b2, NULL, NULL));
  size_t bsz = 0;
  uint8_t *bb = (uint8_t *)vec_slurp(b2, &bsz);
  CHECK(bb);
  bb[bsz / 2] ^= 4; /* allocation bytes (RAW): the seal's digest, not the structure */
  int fd = open(b2, O_WRONLY | O_TRUNC);
  CHECK(fd >= 0 && write(fd, bb, bsz) == (ssize_t)bsz);
  close(fd);
  free(bb);
  CHECK_ERR(wksp_restore_chain(t, (const char *[]){b2, e1}, 2, NULL), WKSP_ERR_CORRUPT);
  CHECK(strstr(wksp_errmsg(), "b2 does not match its seal"));
  CHECK(!strstr(wksp_errmsg(), e1));
  ws_free(t);
  ws_free(w);
}

/* ---- damage: every bit of a small delta, every truncation --------------------------------- */

static void flip_all(const char *base, const char *d, wksp_t *t, int style) {
  size_t sz = 0;
  uint8_t *b = (uint8_t *)vec_slurp(d, &sz);
  if (!b) abort();
  const char *bad = tpath("bad");
  uint8_t before[32], after[32];
  ws_digest(t, before);
  uint64_t missed = 0;
  /* every byte of the metadata, every 11th of the pieces (one bit each,
   * each bit position in turn): the sums cover the pieces alike */
  delta_ftr_t f;
  wksp_private_delta_ftr_decode(&f, b + sz - DELTA_FTR_SZ);
  for (size_t off = 0; off < sz; off += off >= f.pieces_off && off < f.index_off ? 11 : 1) {
    for (int bit = (int)(off % 8), once = 0; !once; once = 1) {
      b[off] ^= (uint8_t)(1 << bit);
      int fd = open(bad, O_WRONLY | O_CREAT | O_TRUNC, 0600);
      if (fd < 0 || write(fd, b, sz) != (ssize_t)sz) abort();
      close(fd);
      b[off] ^= (uint8_t)(1 << bit);
      int rc = wksp_restore_chain(t, (const char *[]){base, bad}, 2, NULL);
      ws_digest(t, after);
      if (!rc || memcmp(before, after, 32)) missed++;
    }
  }
  for (size_t n = 0; n < sz; n += 1 + n / 4) { /* truncations */
    if (truncate(bad, 0)) abort();
    int fd = open(bad, O_WRONLY | O_TRUNC);
    if (fd < 0 || write(fd, b, n) != (ssize_t)n) abort();
    close(fd);
    int rc = wksp_restore_chain(t, (const char *[]){base, bad}, 2, NULL);
    ws_digest(t, after);
    if (!rc || memcmp(before, after, 32)) missed++;
  }
  free(b);
  if (missed)
    fprintf(stderr, "style %d: %" PRIu64 " damaged deltas not refused untouched\n", style, missed);
  if (missed) test_cur_failed = 1;
}

/* A workspace whose derived structures are damaged (an idle record lost:
 * the lock's cheap checks pass, verify does not): a delta is refused with
 * CORRUPT on 1 and 2 threads, with allocations and without (no pieces: the
 * verifying batch still runs), and nothing is left at the target; the
 * full writer refuses it too.  The delta verifies in its first batch,
 * taken by either thread. */
static void test_delta_corrupt_source(void) {
  mkdir_tmp();
  for (int empty = 0; empty < 2; empty++) {
    wksp_t *w = empty ? ws_new("live", 3, PMAX, DMAX) : fresh_ws(17);
    CHECK(w);
    if (!w) continue;
    const char *base = tpath(empty ? "cbase0" : "cbase1"), *d = tpath(empty ? "cd0" : "cd1");
    CHECK_OK(wksp_checkpt(w, base, &(wksp_checkpt_opts_t){.verify = 1}));
    wksp_rec_t *rec = wksp_private_rec(w);
    uint32_t top = w->idle_top, below = rec[top].left;
    CHECK(below != WKSP_IDX_NULL);
    w->idle_top = below;
    rec[below].right = WKSP_IDX_NULL;
    for (uint32_t th = 1; th <= 2; th++) {
      CHECK_ERR(wksp_checkpt_delta(w, d, base, &(wksp_checkpt_opts_t){.threads = th}, NULL), WKSP_ERR_CORRUPT);
      CHECK(strstr(wksp_errmsg(), "idle stack"));
      CHECK(!exists(d));
    }
    CHECK_ERR(wksp_checkpt(w, d, NULL), WKSP_ERR_CORRUPT);
    CHECK(!exists(d));
    w->idle_top = top;
    rec[below].right = top;
    CHECK_OK(wksp_checkpt_delta(w, d, base, NULL, NULL));
    ws_free(w);
  }
}

static void test_delta_damage(void) {
  mkdir_tmp();
  wksp_t *w = ws_new("live", 3, 64, 1 << 20);
  CHECK(w);
  uint64_t rng = 3, g, lo, hi;
  for (int i = 0; i < 4; i++) {
    CHECK_OK(wksp_alloc_at_least(w, 1, 1000 + 23000 * (uint64_t)i, 1 + (uint64_t)i, &g, &lo, &hi));
    fill_text(wksp_laddr(w, lo), hi - lo, &rng);
  }
  const char *base = tpath("base"), *d = tpath("d");
  CHECK_OK(wksp_checkpt(w, base, &(wksp_checkpt_opts_t){.verify = 1}));
  uint64_t cnt;
  wksp_part_t *p = ws_allocs(w, &cnt);
  CHECK(p && cnt == 4);
  ((uint8_t *)wksp_laddr(w, p[3].gaddr_lo))[100] ^= 1; /* 64 KiB + 5 KiB: a short piece changed */
  ((uint8_t *)wksp_laddr(w, p[3].gaddr_lo))[66000] ^= 1;
  p[1].tag = 77;
  CHECK_OK(set_table(w, p + 1, cnt - 1)); /* p[0] freed, p[1] retagged */
  free(p);
  wksp_t *t = ws_new("target", 1, 64, 1 << 20);
  CHECK(t);
  uint64_t r2 = 1;
  ws_fill(t, 5, 10000, 0, &r2);
  for (int style = 2; style <= 3; style++) {
    unlink(d);
    CHECK_OK(wksp_checkpt_delta(w, d, base, &(wksp_checkpt_opts_t){.style = style}, NULL));
    flip_all(base, d, t, style);
    CHECK(!test_cur_failed);
  }
  ws_free(t);
  ws_free(w);
}

/* ---- verify: the application writes while the delta is written ------------------------------ */

/* The byte the hook changes (recorded before: the lock is held during the
 * hook, so the workspace cannot be listed then). */
static uint8_t *hook_byte;

static int hook_writes(int point, const checkpt_hook_t *h) {
  if (point == CHECKPT_HOOK_VERIFY && h->w && hook_byte) *hook_byte ^= 0x55;
  return 0;
}

static void test_delta_verify(void) {
  mkdir_tmp();
  uint64_t rng = 13;
  wksp_t *w = fresh_ws(rng);
  CHECK(w);
  const char *base = tpath("base"), *d = tpath("d");
  CHECK_OK(wksp_checkpt(w, base, &(wksp_checkpt_opts_t){.verify = 1}));
  uint64_t cnt = 0;
  wksp_part_t *p = ws_allocs(w, &cnt);
  CHECK(p && cnt);
  hook_byte = wksp_laddr(w, p[cnt - 1].gaddr_lo);
  free(p);
  wksp_private_checkpt_test_hook = hook_writes;
  int rc = wksp_checkpt_delta(w, d, base, &(wksp_checkpt_opts_t){.verify = 1}, NULL);
  /* with index: the verify finds the write, neither file nor sidecar is published */
  int rc2 = wksp_checkpt(w, tpath("c"), &(wksp_checkpt_opts_t){.verify = 1, .index = 1});
  wksp_private_checkpt_test_hook = NULL;
  hook_byte = NULL;
  CHECK_EQ(rc, WKSP_ERR_AGAIN);
  CHECK(!exists(d));
  CHECK_EQ(rc2, WKSP_ERR_AGAIN);
  CHECK(!exists(tpath("c")));
  CHECK(!exists(tpath("c.wkspidx")));
  CHECK_OK(wksp_checkpt_delta(w, d, base, &(wksp_checkpt_opts_t){.verify = 1}, NULL));
  CHECK(chain_matches(w, (const char *[]){base, d}, 2, 1, 0));
  ws_free(w);
}


/* ---- fold: a chain written as one full checkpoint ------------------------------------------ */

/* The frames of two checkpoints (ckpt_frames_of) are equal. */
static int same_frames(const char *a, const char *b) {
  uint64_t na = 0, nb = 0;
  uint8_t *x = ckpt_frames_of(a, &na), *y = ckpt_frames_of(b, &nb);
  int same = x && y && na == nb && !memcmp(x, y, na);
  free(x);
  free(y);
  return same;
}

/* The checkpoint at p restores equal to w, and is sealed. */
static int restores_as(wksp_t *w, const char *p) {
  wksp_t *t = ws_new("target", 1, PMAX, DMAX);
  int seal = WKSP_SEAL_NONE;
  int ok = t && !wksp_restore(t, p, &(wksp_restore_opts_t){.threads = 2, .require_seal = 1}) && ws_same(w, t) &&
           !wksp_checkpt_check(p, NULL, &seal) && seal == WKSP_SEAL_OK;
  ws_free(t);
  return ok;
}

/* Folds of the chain in every style and thread count, each compared with
 * a direct checkpoint of w in its style. */
static int fold_matches(wksp_t *w, const char *const *chain, size_t n) {
  int ok = 1;
  for (int style = WKSP_CHECKPT_STYLE_V2; style <= WKSP_CHECKPT_STYLE_V3; style++) {
    const char *direct = tpath("direct"), *fold = tpath("fold");
    unlink(direct);
    if (wksp_checkpt(w, direct, &(wksp_checkpt_opts_t){.style = style, .verify = 1})) return 0;
    for (uint32_t t = 1; t <= 2; t++) {
      unlink(fold);
      int rc = wksp_checkpt_fold(chain, n, fold, &(wksp_checkpt_opts_t){.style = style, .threads = t});
      if (rc) fprintf(stderr, "fold of %zu: %d %s\n", n, rc, wksp_errmsg());
      int same = !rc && same_frames(fold, direct), back = !rc && restores_as(w, fold);
      if (!same || !back)
        fprintf(stderr, "fold of %zu, style %d, %u threads: %s\n", n, style, t,
                !same ? "frames differ from a direct checkpoint" : "does not restore the live workspace");
      ok &= same && back;
    }
  }
  return ok;
}

static void test_fold_random(void) {
  mkdir_tmp();
  uint64_t rng = test_seed() ^ 0xf01d;
  wksp_t *w = fresh_ws(rng);
  CHECK(w);
  static char base[600], names[16][600];
  snprintf(base, sizeof base, "%s", tpath("base"));
  CHECK_OK(wksp_checkpt(w, base, &(wksp_checkpt_opts_t){.verify = 1, .threads = 2}));
  const char *chain[16] = {base};
  CHECK(fold_matches(w, chain, 1)); /* BASE alone */
  for (size_t r = 1; r <= 8; r++) {
    int ops = 1 + (int)(test_rng(&rng) % 8);
    for (int i = 0; i < ops; i++) workload_op(w, &rng);
    snprintf(names[r], sizeof names[r], "%s/d%zu", dir, r);
    wksp_checkpt_opts_t o = {.style = test_rng(&rng) % 2 ? WKSP_CHECKPT_STYLE_V2 : WKSP_CHECKPT_STYLE_V3,
                             .threads = 1 + (uint32_t)(test_rng(&rng) % 2)};
    CHECK_OK(wksp_checkpt_delta(w, names[r], chain[r - 1], &o, NULL));
    chain[r] = names[r];
    if (!fold_matches(w, chain, r + 1)) {
      fprintf(stderr, "round %zu: a fold differs from the live workspace's checkpoint\n", r);
      CHECK(0);
    }
  }
  ws_free(w);
}

/* The style of BASE by default; the name and seed of the last member
 * (the workspace the final state was written from); fd; the index. */
static void test_fold_defaults(void) {
  mkdir_tmp();
  uint64_t rng = 21;
  wksp_t *w = fresh_ws(rng);
  CHECK(w);
  const char *b2 = tpath("b2"), *b3 = tpath("b3"), *f = tpath("f"), *d = tpath("d");
  CHECK_OK(wksp_checkpt(w, b2, &(wksp_checkpt_opts_t){.style = WKSP_CHECKPT_STYLE_V2, .verify = 1}));
  CHECK_OK(wksp_checkpt(w, b3, &(wksp_checkpt_opts_t){.style = WKSP_CHECKPT_STYLE_V3, .verify = 1}));
  wksp_preview_t pv;
  for (int k = 0; k < 2; k++) {
    unlink(f);
    CHECK_OK(wksp_checkpt_fold((const char *[]){k ? b3 : b2}, 1, f, NULL));
    CHECK_OK(wksp_preview(f, &pv));
    CHECK_EQ(pv.frame_style, k ? WKSP_FRAME_LZ4 : WKSP_FRAME_RAW);
    CHECK(same_frames(f, k ? b3 : b2));
  }
  /* the chain continued in another workspace, restored from BASE */
  wksp_t *o = ws_new("other", 77, PMAX, DMAX);
  CHECK(o);
  CHECK_OK(wksp_restore(o, b2, &(wksp_restore_opts_t){.seed = 77}));
  for (int i = 0; i < 10; i++) workload_op(o, &rng);
  CHECK_OK(wksp_checkpt_delta(o, d, b2, NULL, NULL));
  unlink(f);
  CHECK_OK(wksp_checkpt_fold((const char *[]){b2, d}, 2, f, NULL));
  CHECK_OK(wksp_preview(f, &pv));
  CHECK(!strcmp(pv.name, "other"));
  CHECK_EQ(pv.seed, 77);
  const char *direct = tpath("direct");
  CHECK_OK(wksp_checkpt(o, direct, &(wksp_checkpt_opts_t){.style = WKSP_CHECKPT_STYLE_V2, .verify = 1}));
  CHECK(same_frames(f, direct));
  /* to an fd: unsealed, the same frames */
  const char *g = tpath("g");
  int fd = open(g, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  CHECK(fd >= 0);
  CHECK_OK(wksp_checkpt_fold_fd((const char *[]){b2, d}, 2, fd, "g", NULL));
  close(fd);
  CHECK(same_frames(g, direct));
  int seal = WKSP_SEAL_OK;
  CHECK_OK(wksp_checkpt_check(g, NULL, &seal));
  CHECK_EQ(seal, WKSP_SEAL_NONE);
  /* a stream path: written unsealed, not refused; with index: INVAL */
  CHECK_OK(wksp_checkpt_fold((const char *[]){b2, d}, 2, "/dev/null", NULL));
  CHECK_ERR(wksp_checkpt_fold((const char *[]){b2, d}, 2, "/dev/null", &(wksp_checkpt_opts_t){.index = 1}),
            WKSP_ERR_INVAL);
  /* the index: a delta since the fold reads it */
  unlink(f);
  CHECK_OK(wksp_checkpt_fold((const char *[]){b2, d}, 2, f, &(wksp_checkpt_opts_t){.index = 1}));
  CHECK(exists(tpath("f.wkspidx")));
  workload_op(o, &rng);
  wksp_delta_stats_t st;
  CHECK_OK(delta_of(o, tpath("e"), f, &st));
  CHECK_EQ(st.base_from, WKSP_BASE_FROM_INDEX);
  CHECK(chain_matches(o, (const char *[]){f, tpath("e")}, 2, 2, 0));
  ws_free(o);
  ws_free(w);
}

/* Entries of dir (temporaries included). */
static int dir_entries(void) {
  DIR *dd = opendir(dir);
  int n = 0;
  while (dd && readdir(dd)) n++;
  if (dd) closedir(dd);
  return n;
}

static void test_fold_refusals(void) {
  mkdir_tmp();
  uint64_t rng = 23;
  wksp_t *w = fresh_ws(rng);
  CHECK(w);
  const char *base = tpath("base"), *d1 = tpath("d1"), *d2 = tpath("d2"), *un = tpath("unsealed");
  const char *out = tpath("out"), *bad = tpath("bad");
  CHECK_OK(wksp_checkpt(w, base, &(wksp_checkpt_opts_t){.verify = 1}));
  CHECK_OK(wksp_checkpt(w, un, NULL));
  for (int i = 0; i < 6; i++) workload_op(w, &rng);
  CHECK_OK(wksp_checkpt_delta(w, d1, base, NULL, NULL));
  for (int i = 0; i < 6; i++) workload_op(w, &rng);
  CHECK_OK(wksp_checkpt_delta(w, d2, d1, &(wksp_checkpt_opts_t){.style = WKSP_CHECKPT_STYLE_V2}, NULL));
  /* d2 with one byte of a piece flipped (RAW: the bytes are in the file) */
  size_t sz = 0;
  uint8_t *b = (uint8_t *)vec_slurp(d2, &sz);
  CHECK(b);
  delta_ftr_t f;
  wksp_private_delta_ftr_decode(&f, b + sz - DELTA_FTR_SZ);
  CHECK(f.index_off > f.pieces_off);
  b[(f.pieces_off + f.index_off) / 2] ^= 0x10;
  int fd = open(bad, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  CHECK(fd >= 0 && write(fd, b, sz) == (ssize_t)sz);
  close(fd);
  free(b);
  struct {
    const char *c[4];
    size_t n;
    int rc;
    const char *says;
  } cases[] = {
      {{base, d2}, 2, WKSP_ERR_INVAL, "chain out of order"},     /* skipped */
      {{base, d2, d1}, 3, WKSP_ERR_INVAL, "chain out of order"}, /* swapped */
      {{base, d1, bad}, 3, WKSP_ERR_CORRUPT, "bad"},             /* damaged */
      {{d1, d2}, 2, WKSP_ERR_INVAL, "starts with a full checkpoint"},
      {{un, d1}, 2, WKSP_ERR_INVAL, "not sealed"},
      {{base, tpath("nothing")}, 2, WKSP_ERR_FAIL, "nothing"},
  };
  int entries = dir_entries();
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    int rc = wksp_checkpt_fold(cases[i].c, cases[i].n, out, NULL);
    if (rc != cases[i].rc || !strstr(wksp_errmsg(), cases[i].says))
      fprintf(stderr, "case %zu: %d (%s)\n", i, rc, wksp_errmsg());
    CHECK_EQ(rc, cases[i].rc);
    CHECK(strstr(wksp_errmsg(), cases[i].says));
    CHECK(!strncmp(wksp_errmsg(), "fold: ", 6));
    CHECK(!exists(out));
    CHECK_EQ(dir_entries(), entries);
  }
  CHECK_ERR(wksp_checkpt_fold((const char *[]){base}, 0, out, NULL), WKSP_ERR_INVAL);
  CHECK_ERR(wksp_checkpt_fold(NULL, 1, out, NULL), WKSP_ERR_INVAL);
  CHECK_ERR(wksp_checkpt_fold((const char *[]){base}, 1, NULL, NULL), WKSP_ERR_INVAL);
  CHECK_ERR(wksp_checkpt_fold_fd((const char *[]){base}, 1, -1, NULL, NULL), WKSP_ERR_INVAL);
  CHECK(!exists(out));
  /* PATH exists: EXIST without overwrite, the file unchanged; replaced with */
  fd = open(out, O_WRONLY | O_CREAT, 0600);
  CHECK(fd >= 0 && write(fd, "precious", 8) == 8);
  close(fd);
  CHECK_ERR(wksp_checkpt_fold((const char *[]){base, d1, d2}, 3, out, NULL), WKSP_ERR_EXIST);
  size_t n = 0;
  char *c = vec_slurp(out, &n);
  CHECK(c && n == 8 && !memcmp(c, "precious", 8));
  free(c);
  CHECK_EQ(dir_entries(), entries + 1);
  CHECK_OK(wksp_checkpt_fold((const char *[]){base, d1, d2}, 3, out, &(wksp_checkpt_opts_t){.overwrite = 1}));
  CHECK(restores_as(w, out));
  /* a directory is never replaced */
  CHECK_ERR(wksp_checkpt_fold((const char *[]){base, d1, d2}, 3, dir, &(wksp_checkpt_opts_t){.overwrite = 1}),
            WKSP_ERR_INVAL);
  ws_free(w);
}

int main(void) {
  TEST_RUN(test_delta_exact);
  TEST_RUN(test_delta_random);
  TEST_RUN(test_delta_diff);
  TEST_RUN(test_delta_chain_info);
  TEST_RUN(test_delta_chain_progress);
  TEST_RUN(test_delta_progress);
  TEST_RUN(test_delta_pipe_member);
  TEST_RUN(test_delta_threads);
  TEST_RUN(test_delta_region_file);
  TEST_RUN(test_delta_index);
  TEST_RUN(test_delta_refusals);
  TEST_RUN(test_delta_damage);
  TEST_RUN(test_delta_corrupt_source);
  TEST_RUN(test_delta_verify);
  TEST_RUN(test_fold_random);
  TEST_RUN(test_fold_defaults);
  TEST_RUN(test_fold_refusals);
  rm_dirs();
  return test_done();
}
