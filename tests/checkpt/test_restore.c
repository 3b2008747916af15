/* Restore from files (src/checkpt/restore.c): the reference vectors, a
 * target too small, v1's first allocation, two volumes, the order in which
 * frames are decoded. */
#include "../lib/ws.h"
#include "../lib/vec.h"
#include "../lib/ckpt_test.h"
#include "../../src/checkpt/checkpt_private.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

static char dir[256]; /* scratch directory */

/* ---- reference vectors --------------------------------------------------------------------- */

/* Exactly the manifest's partitions with their hashes, nothing else. */
static int check_manifest(wksp_t *w, const vec_t *v) {
  uint64_t n = 0;
  wksp_part_t *p = ws_allocs(w, &n);
  int ok = p && n == v->alloc_cnt && !wksp_verify(w);
  for (uint64_t k = 0; ok && k < n; k++) {
    char hex[65];
    sha256_hex(wksp_laddr(w, p[k].gaddr_lo), p[k].gaddr_hi - p[k].gaddr_lo, hex);
    ok = p[k].tag == v->part[k].tag && p[k].gaddr_lo == v->part[k].lo &&
         p[k].gaddr_hi == v->part[k].hi && !strcmp(hex, v->part[k].sha);
    if (!ok)
      fprintf(stderr, "%s: partition %" PRIu64 " differs\n", v->name, k);
  }
  free(p);
  return ok;
}

static void test_vectors_restore(void) {
  for (size_t i = 0; i < VEC_CNT; i++) {
    vec_t v;
    CHECK(!vec_load(&v, i));
    /* Same geometry, smaller part_max (shifted data region), larger data. */
    uint64_t P2 = v.part_max / 2, D2 = v.data_max + 64 * (v.part_max - P2);
    uint64_t geo[3][2] = {{v.part_max, v.data_max}, {P2, D2}, {v.part_max, 2 * v.data_max}};
    for (int g = 0; g < 3; g++) {
      for (uint32_t t = 1; t <= 2; t++) {
        wksp_t *w = ws_new("target", 5, geo[g][0], geo[g][1]);
        CHECK(w);
        uint64_t rng = 42 + i;
        ws_fill(w, 10, 3000, 1, &rng);
        wksp_restore_opts_t ro = {.seed = 3, .threads = t};
        CHECK_OK(wksp_restore(w, v.ckpt, &ro));
        CHECK(check_manifest(w, &v));
        ws_free(w);
      }
    }
    /* Through a pipe: the sequential and the pipelined (3 threads) stream
     * paths for v2, spooled for v1. */
    size_t sz;
    uint8_t *b = (uint8_t *)vec_slurp(v.ckpt, &sz);
    CHECK(b);
    for (uint32_t t = 1; t <= 3; t += 2) {
      wksp_t *w = ws_new("target", 5, v.part_max, v.data_max);
      CHECK_OK(restore_piped(w, b, sz, v.name, &(wksp_restore_opts_t){.seed = 3, .threads = t}));
      CHECK(check_manifest(w, &v));
      ws_free(w);
    }
    free(b);
  }
}


/* A target whose data region misses the lowest addresses: FULL naming a
 * geometry that works, target untouched. */
static void test_vectors_target_too_small(void) {
  vec_t v;
  CHECK(!vec_load(&v, 5)); /* v3-text */
  wksp_t *w = ws_new("target", 5, 2 * v.part_max, v.data_max);
  CHECK(w);
  uint64_t rng = 1;
  ws_fill(w, 10, 3000, 1, &rng);
  uint8_t before[32], after[32];
  ws_digest(w, before);
  CHECK_ERR(wksp_restore(w, v.ckpt, NULL), WKSP_ERR_FULL);
  CHECK(strstr(wksp_errmsg(), "part_max <="));
  ws_digest(w, after);
  CHECK(!memcmp(before, after, 32));
  /* Through a pipe too (spooled because the source region does not fit). */
  size_t sz;
  uint8_t *b = (uint8_t *)vec_slurp(v.ckpt, &sz);
  CHECK(b);
  CHECK_ERR(restore_piped(w, b, sz, "pipe", NULL), WKSP_ERR_FULL);
  ws_digest(w, after);
  CHECK(!memcmp(before, after, 32));
  free(b);
  /* Too few partition records for the allocations: FULL. */
  wksp_t *w2 = ws_new("tiny", 5, 8, v.data_max + 64 * (v.part_max - 8));
  CHECK(w2);
  CHECK_ERR(wksp_restore(w2, v.ckpt, NULL), WKSP_ERR_FULL);
  ws_free(w2);
  ws_free(w);
}

/* v1 fix of docs/FORMAT.md 5.3: a first allocation that does not fit is an
 * error (the reference returned success without restoring). */
static void test_v1_first_alloc_not_fitting(void) {
  vec_t v;
  CHECK(!vec_load(&v, 0));
  wksp_t *w = ws_new("target", 5, v.part_max * 4, v.data_max);
  CHECK(w);
  CHECK_ERR(wksp_restore(w, v.ckpt, NULL), WKSP_ERR_FULL);
  uint64_t n = 0;
  free(ws_allocs(w, &n));
  CHECK_EQ(n, 0);
  ws_free(w);
}


/* Two volumes (docs/FORMAT.md 3.1: readers accept `volume*`; our writer, like
 * the reference, writes one): a RAW checkpoint re-cut into two volumes, its
 * cgroup frames copied verbatim, restores identically through the mapped,
 * the sequential and the pipelined readers. */
static uint8_t *two_volumes(const uint8_t *b, uint64_t sz, uint64_t *out_sz) {
  checkpt_input_t in = checkpt_input_mem(b, sz, "x");
  checkpt_scan_t s;
  if (wksp_private_checkpt_scan(&s, &in) || s.info.cgroup_cnt < 2) return NULL;
  uint64_t C = s.info.cgroup_cnt, C1 = C / 2;
  uint8_t *o = malloc(sz + 200);
  uint64_t at = s.info.cgroups[0].off, app1 = 0, app2 = 0;
  memcpy(o, b, at); /* header and info */
  uint64_t off[2][64], cnt[2][64];
  for (int v = 0; v < 2; v++) {
    uint64_t g0 = v ? C1 : 0, g1 = v ? C : C1;
    for (uint64_t g = g0; g < g1; g++) {
      const wksp_checkpt_cgroup_t *c = &s.info.cgroups[g];
      off[v][g - g0] = at;
      cnt[v][g - g0] = c->alloc_cnt;
      memcpy(o + at, b + c->off, c->end - c->off);
      at += c->end - c->off;
    }
    if (v) app2 = at;
    else app1 = at;
    wksp_private_checkpt_cmd_encode(o + at, 0, g1 - g0, v ? app1 : 0);
    at += CHECKPT_CMD_SZ;
    for (uint64_t g = 0; g < g1 - g0; g++, at += 8) checkpt_st64(o + at, off[v][g]);
    for (uint64_t g = 0; g < g1 - g0; g++, at += 8) checkpt_st64(o + at, cnt[v][g]);
  }
  uint64_t vol = at;
  wksp_private_checkpt_cmd_encode(o + at, 0, UINT64_MAX, app2);
  at += CHECKPT_CMD_SZ;
  checkpt_ftr_t f = s.ftr;
  f.volume_cnt = 2;
  f.frame_off = vol;
  f.checkpt_sz = at + CHECKPT_FTR_SZ;
  wksp_private_checkpt_ftr_encode(o + at, &f);
  *out_sz = at + CHECKPT_FTR_SZ;
  wksp_private_checkpt_scan_fini(&s);
  return o;
}

static void test_two_volumes(void) {
  wksp_t *w = ws_new("vols", 1, 2048, 8 << 20);
  CHECK(w);
  uint64_t rng = 11;
  ws_fill(w, 400, 30000, 1, &rng);
  char path[512];
  snprintf(path, sizeof path, "%s/vols.ckpt", dir);
  CHECK_OK(wksp_checkpt(w, path, &(wksp_checkpt_opts_t){.style = 2}));
  size_t sz;
  uint8_t *b = (uint8_t *)vec_slurp(path, &sz);
  uint64_t sz2 = 0;
  uint8_t *b2 = b ? two_volumes(b, sz, &sz2) : NULL;
  CHECK(b2);
  unlink(path);
  FILE *f = fopen(path, "wb");
  CHECK(f && fwrite(b2, 1, sz2, f) == sz2);
  fclose(f);
  wksp_checkpt_info_t I;
  CHECK_OK(wksp_checkpt_info(path, &I));
  CHECK_EQ(I.volume_cnt, 2);
  wksp_checkpt_info_free(&I);
  uint8_t want[32], got[32];
  ws_digest(w, want);
  for (int mode = 0; mode < 3; mode++) {
    wksp_t *d = ws_new("dst", 1, 2048, 8 << 20);
    int rc;
    if (!mode) {
      rc = wksp_restore(d, path, NULL);
    } else {
      rc = restore_piped(d, b2, sz2, "pipe", &(wksp_restore_opts_t){.threads = (uint32_t)mode * 2 - 1});
    }
    CHECK_OK(rc);
    ws_digest(d, got);
    CHECK(!memcmp(want, got, 32));
    ws_free(d);
  }
  unlink(path);
  free(b);
  free(b2);
  ws_free(w);
}


/* ---- the order frames are decoded in --------------------------------------------------- */

/* Frames cannot be shared between threads, so with several the largest go
 * first and the small ones fill the tail; one thread keeps file order.
 * The seam records which frame the b-th task decoded. */
static uint64_t g_order[1024], g_seen;

static int order_hook(int point, const checkpt_hook_t *h) {
  if (point == CHECKPT_HOOK_DECODE && h->b < 1024) {
    g_order[h->b] = h->a;
    __atomic_fetch_add(&g_seen, 1, __ATOMIC_RELAXED);
  }
  return 0;
}

static void test_largest_frames_first(void) {
  wksp_t *w = ws_new("order", 1, 4096, 32 << 20), *d = ws_new("order-d", 1, 4096, 32 << 20);
  CHECK(w && d);
  uint64_t rng = test_seed();
  ws_fill(w, 600, 40000, 1, &rng);
  char path[512];
  snprintf(path, sizeof path, "%s/order.ckpt", dir);
  wksp_checkpt_opts_t o = {.style = WKSP_CHECKPT_STYLE_V3};
  CHECK_OK(wksp_checkpt(w, path, &o));
  wksp_checkpt_info_t I;
  CHECK_OK(wksp_checkpt_info(path, &I));
  uint64_t n = I.cgroup_cnt;
  CHECK(n >= 3 && n <= 1024);
  int file_order = 1, size_order = 1, every = 1;
  for (uint32_t t = 1; t <= 2; t++) {
    memset(g_order, 0xff, sizeof g_order);
    g_seen = 0;
    wksp_private_checkpt_test_hook = order_hook;
    wksp_restore_opts_t ro = {.threads = t};
    int rc = wksp_restore(d, path, &ro);
    wksp_private_checkpt_test_hook = NULL;
    CHECK_OK(rc);
    every &= g_seen == n;
    for (uint64_t i = 0; i < n; i++) {
      if (t == 1) file_order &= g_order[i] == i;
      if (t == 2 && i && g_order[i] < n && g_order[i - 1] < n) {
        const wksp_checkpt_cgroup_t *a = &I.cgroups[g_order[i - 1]], *b = &I.cgroups[g_order[i]];
        size_order &= a->end - a->off >= b->end - b->off;
      }
    }
  }
  wksp_checkpt_info_free(&I);
  CHECK(ws_same(w, d));
  unlink(path);
  ws_free(w);
  ws_free(d);
  CHECK(every);
  CHECK(file_order);
  CHECK(size_order);
}

int main(void) {
  signal(SIGPIPE, SIG_IGN); /* readers that stop early close their pipe */
  ckpt_test_dir(dir, sizeof dir);
  TEST_RUN(test_vectors_restore);
  TEST_RUN(test_vectors_target_too_small);
  TEST_RUN(test_v1_first_alloc_not_fitting);
  TEST_RUN(test_two_volumes);
  TEST_RUN(test_largest_frames_first);
  test_rmdir(dir);
  return test_done();
}
