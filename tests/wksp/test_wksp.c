/* Unit tests of the workspace allocator: every public call, good and bad
 * input, plus the checkpoint-facing private interface. */
#include "../lib/test.h"
#include "../../src/wksp/wksp_private.h"

#include <inttypes.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

static void *map_sz;
static size_t map_len;

/* A fresh 128-aligned, zeroed shared mapping of at least sz bytes. */
static void *mem_new(size_t sz) {
  if (map_sz) munmap(map_sz, map_len);
  map_len = (sz + 4095) & ~(size_t)4095;
  map_sz = mmap(NULL, map_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  return map_sz == MAP_FAILED ? (map_sz = NULL) : map_sz;
}

static wksp_t *wksp_make(uint64_t part_max, uint64_t data_max) {
  void *mem = mem_new(wksp_footprint(part_max, data_max));
  wksp_t *w = NULL;
  if (!mem || wksp_new(mem, "unit", 42, part_max, data_max, &w)) return NULL;
  return w;
}

static int errmsg_set(void) { return wksp_errmsg()[0] != 0; }

static void test_footprint(void) {
  CHECK_EQ(wksp_footprint(1, 1), 256);             /* 128+64+1+1 = 194 -> 256 */
  CHECK_EQ(wksp_footprint(2, 62), 384);            /* 128+128+62+1 = 319 -> 384 */
  CHECK_EQ(wksp_footprint(0, 1), 0);
  CHECK_EQ(wksp_footprint(1, 0), 0);
  CHECK_EQ(wksp_footprint(1ull << 32, 1), 0);
  CHECK_EQ(wksp_footprint(WKSP_PART_MAX_LIMIT, 1) % 128, 0);
  CHECK_EQ(wksp_footprint(1, UINT64_MAX), 0);
  uint64_t off = 128 + 64;
  CHECK_EQ(wksp_footprint(1, UINT64_MAX - 128 - off), UINT64_MAX - 127); /* largest valid */
  CHECK_EQ(wksp_footprint(1, UINT64_MAX - 128 - off + 1), 0);
  CHECK_EQ(wksp_footprint(1024, 2097152), 65664 + 2097152 + 128);
}

static void test_estimates(void) {
  for (uint64_t fp = 256; fp < 1u << 20; fp = fp * 3 + 128) {
    for (uint64_t pm = 1; pm < 64; pm += 7) {
      uint64_t d = wksp_data_max_est(fp, pm);
      if (!d) {
        CHECK(wksp_footprint(pm, 1) > fp || wksp_footprint(pm, 1) == 0);
        continue;
      }
      CHECK(wksp_footprint(pm, d) <= fp);
      CHECK(wksp_footprint(pm, d + 1) > fp);
    }
    uint64_t pm = wksp_part_max_est(fp, 1000);
    if (pm) CHECK(wksp_data_max_est(fp, pm) >= pm * 1000 - 1000);
  }
  CHECK_EQ(wksp_part_max_est(0, 10), 0);
  CHECK_EQ(wksp_part_max_est(1 << 20, 0), 0);
  CHECK_EQ(wksp_part_max_est(100, 10), 0);
  CHECK_EQ(wksp_part_max_est(UINT64_MAX, 1), WKSP_PART_MAX_LIMIT);
  CHECK_EQ(wksp_data_max_est(1 << 20, 0), 0);
  CHECK_EQ(wksp_data_max_est(100, 1), 0);
}

static void test_new_join_delete(void) {
  void *mem = mem_new(wksp_footprint(16, 4096));
  CHECK(mem);
  wksp_t *w = NULL;
  CHECK_ERR(wksp_new(NULL, "a", 1, 16, 4096, &w), WKSP_ERR_INVAL);
  CHECK(errmsg_set());
  CHECK_ERR(wksp_new((char *)mem + 64, "a", 1, 16, 4096, &w), WKSP_ERR_INVAL);
  CHECK_ERR(wksp_new(mem, "", 1, 16, 4096, &w), WKSP_ERR_INVAL);
  CHECK_ERR(wksp_new(mem, "-bad", 1, 16, 4096, &w), WKSP_ERR_INVAL);
  CHECK_ERR(wksp_new(mem, "a/b", 1, 16, 4096, &w), WKSP_ERR_INVAL);
  CHECK_ERR(wksp_new(mem, "0123456789012345678901234567890123456789", 1, 16, 4096, &w), WKSP_ERR_INVAL);
  CHECK_ERR(wksp_new(mem, "a", 1, 0, 4096, &w), WKSP_ERR_INVAL);
  CHECK_ERR(wksp_new(mem, "a", 1, 16, 0, &w), WKSP_ERR_INVAL);
  CHECK_ERR(wksp_join(mem, &w), WKSP_ERR_CORRUPT); /* zeros: not a workspace */
  CHECK(strstr(wksp_errmsg(), "magic"));
  CHECK_OK(wksp_new(mem, "good.name-1", 7, 16, 4096, &w));
  CHECK(w == mem);
  CHECK(!strcmp(wksp_name(w), "good.name-1"));
  CHECK_EQ(wksp_seed(w), 7);
  CHECK_EQ(wksp_part_max(w), 16);
  CHECK_EQ(wksp_data_max(w), 4096);
  CHECK_EQ(wksp_gaddr_lo(w), 128 + 64 * 16);
  CHECK_EQ(wksp_gaddr_hi(w), 128 + 64 * 16 + 4096);
  CHECK_OK(wksp_verify(w));
  wksp_t *j = NULL;
  CHECK_OK(wksp_join(mem, &j));
  CHECK(j == w);
  CHECK_ERR(wksp_join(NULL, &j), WKSP_ERR_INVAL);
  CHECK_ERR(wksp_join((char *)mem + 1, &j), WKSP_ERR_INVAL);
  CHECK(j == NULL);
  CHECK_OK(wksp_join(mem, &j));
  CHECK_OK(wksp_leave(j));
  CHECK_ERR(wksp_leave(NULL), WKSP_ERR_INVAL);
  /* Damaged header fields. */
  w->part_max = 0;
  CHECK_ERR(wksp_join(mem, &j), WKSP_ERR_CORRUPT);
  w->part_max = 16;
  w->name[0] = '-';
  CHECK_ERR(wksp_join(mem, &j), WKSP_ERR_CORRUPT);
  w->name[0] = 'g';
  CHECK_OK(wksp_join(mem, &j));
  CHECK_OK(wksp_delete(mem));
  CHECK_ERR(wksp_join(mem, &j), WKSP_ERR_CORRUPT);
  CHECK_ERR(wksp_delete(mem), WKSP_ERR_CORRUPT);
  CHECK_ERR(wksp_delete(NULL), WKSP_ERR_INVAL);
  uint64_t g;
  CHECK_ERR(wksp_alloc(w, 0, 8, 1, &g), WKSP_ERR_CORRUPT); /* deleted */
}

static void test_laddr_gaddr(void) {
  wksp_t *w = wksp_make(8, 8192);
  CHECK(w);
  uint64_t lo = wksp_gaddr_lo(w), hi = wksp_gaddr_hi(w);
  CHECK(wksp_laddr(w, 0) == NULL);
  CHECK(wksp_laddr(w, lo - 1) == NULL);
  CHECK(wksp_laddr(w, hi + 1) == NULL);
  CHECK(wksp_laddr(w, lo) == (uint8_t *)w + lo);
  CHECK(wksp_laddr(w, hi) == (uint8_t *)w + hi);
  CHECK_EQ(wksp_gaddr(w, (uint8_t *)w + lo + 5), lo + 5);
  CHECK_EQ(wksp_gaddr(w, NULL), 0);
  CHECK_EQ(wksp_gaddr(w, w), 0);
  CHECK_EQ(wksp_gaddr(w, (uint8_t *)w + hi + 1), 0);
}

static void test_alloc_basic(void) {
  wksp_t *w = wksp_make(16, 1 << 16);
  CHECK(w);
  uint64_t g, lo, hi, glo = wksp_gaddr_lo(w);
  CHECK_OK(wksp_alloc_at_least(w, 0, 100, 5, &g, &lo, &hi));
  CHECK_EQ(g % 4096, 0);
  CHECK_EQ(lo, g);
  CHECK_EQ(hi, g + 100); /* exact trim */
  uint64_t t;
  CHECK_OK(wksp_tag(w, g, &t));
  CHECK_EQ(t, 5);
  CHECK_OK(wksp_tag(w, g + 99, &t));
  CHECK_EQ(t, 5);
  CHECK_OK(wksp_tag(w, g + 100, &t));
  CHECK_EQ(t, 0);
  CHECK_OK(wksp_tag(w, 0, &t));
  CHECK_EQ(t, 0);
  CHECK_OK(wksp_tag(w, UINT64_MAX, &t));
  CHECK_EQ(t, 0);
  CHECK_ERR(wksp_tag(w, g, NULL), WKSP_ERR_INVAL);
  /* Head slack and tail are free partitions. */
  wksp_part_t parts[8];
  size_t cnt;
  CHECK_OK(wksp_part_list(w, parts, 8, &cnt));
  CHECK_EQ(cnt, 3);
  CHECK_EQ(parts[0].gaddr_lo, glo);
  CHECK_EQ(parts[0].gaddr_hi, g);
  CHECK_EQ(parts[0].tag, 0);
  CHECK_EQ(parts[1].tag, 5);
  CHECK_EQ(parts[2].gaddr_lo, g + 100);
  CHECK_EQ(parts[2].gaddr_hi, wksp_gaddr_hi(w));
  /* Alignment 1 reuses the head slack (best fit: smallest that fits). */
  uint64_t g2;
  CHECK_OK(wksp_alloc(w, 1, 10, 6, &g2));
  CHECK_EQ(g2, glo);
  /* Size 0: silent NULL. */
  uint64_t g0 = 99;
  CHECK_OK(wksp_alloc(w, 0, 0, 1, &g0));
  CHECK_EQ(g0, 0);
  CHECK_OK(wksp_alloc(w, 0, 0, 0, &g0)); /* even with tag 0 */
  /* Bad input. */
  CHECK_ERR(wksp_alloc(w, 3, 10, 1, &g0), WKSP_ERR_INVAL);
  CHECK(strstr(wksp_errmsg(), "power of two"));
  CHECK_ERR(wksp_alloc(w, 0, 10, 0, &g0), WKSP_ERR_INVAL);
  CHECK(strstr(wksp_errmsg(), "tag"));
  CHECK_ERR(wksp_alloc(NULL, 0, 10, 1, &g0), WKSP_ERR_INVAL);
  CHECK_ERR(wksp_alloc(w, 0, 10, 1, NULL), WKSP_ERR_INVAL);
  CHECK_ERR(wksp_alloc(w, 0, 1 << 20, 1, &g0), WKSP_ERR_FULL);
  CHECK(strstr(wksp_errmsg(), "largest free"));
  CHECK_ERR(wksp_alloc(w, 1ull << 63, 1, 1, &g0), WKSP_ERR_FULL);
  CHECK_ERR(wksp_alloc(w, 1ull << 63, 1ull << 63, 1, &g0), WKSP_ERR_FULL);
  CHECK_ERR(wksp_alloc(w, 0, UINT64_MAX, 1, &g0), WKSP_ERR_FULL);
  CHECK_OK(wksp_verify(w));
  /* Free from any address inside; double free; free space; outside. */
  CHECK_OK(wksp_free(w, g + 50));
  CHECK_ERR(wksp_free(w, g), WKSP_ERR_INVAL);
  CHECK(strstr(wksp_errmsg(), "not inside an allocation"));
  CHECK_ERR(wksp_free(w, 0), WKSP_ERR_INVAL);
  CHECK_ERR(wksp_free(w, 5), WKSP_ERR_INVAL);
  CHECK(strstr(wksp_errmsg(), "outside"));
  CHECK_ERR(wksp_free(w, wksp_gaddr_hi(w)), WKSP_ERR_INVAL);
  CHECK_ERR(wksp_free(NULL, g), WKSP_ERR_INVAL);
  CHECK_OK(wksp_free(w, g2));
  CHECK_OK(wksp_verify(w));
  CHECK_OK(wksp_part_list(w, parts, 8, &cnt));
  CHECK_EQ(cnt, 1); /* everything merged back */
}

static void test_alloc_large_align(void) {
  wksp_t *w = wksp_make(64, 1 << 20);
  CHECK(w);
  uint64_t g;
  CHECK_OK(wksp_alloc(w, 1 << 19, 1, 1, &g));
  CHECK_EQ(g % (1 << 19), 0);
  for (uint64_t a = 1; a <= 4096; a <<= 1) {
    CHECK_OK(wksp_alloc(w, a, 3, 2, &g));
    CHECK_EQ(g % a, 0);
  }
  CHECK_OK(wksp_verify(w));
}

static void test_part_records_exhausted(void) {
  /* part_max 2: no record for head slack and tail: the allocation keeps
   * them (alloc_at_least reports the real extent), later FULL is clean. */
  wksp_t *w = wksp_make(2, 1 << 16);
  CHECK(w);
  uint64_t g, lo, hi;
  CHECK_OK(wksp_alloc_at_least(w, 0, 10, 1, &g, &lo, &hi));
  CHECK_EQ(g % 4096, 0);
  CHECK_EQ(lo, g);                /* the one spare record took the head slack */
  CHECK_EQ(hi, wksp_gaddr_hi(w)); /* none left for a tail */
  CHECK_OK(wksp_alloc_at_least(w, 1, 10, 1, &g, &lo, &hi));
  CHECK_EQ(lo, wksp_gaddr_lo(w)); /* the whole head slack */
  CHECK_EQ(hi, lo + 4096 - wksp_gaddr_lo(w) % 4096);
  CHECK_ERR(wksp_alloc(w, 1, 1, 1, &g), WKSP_ERR_FULL);
  CHECK(strstr(wksp_errmsg(), "; no partition record left (part_max 2, all in use)"));
  wksp_usage_t u;
  CHECK_OK(wksp_usage(w, NULL, 0, &u));
  CHECK_EQ(u.total_cnt, u.total_max); /* how a caller sees it coming */
  CHECK_OK(wksp_verify(w));
  CHECK_OK(wksp_free(w, lo));
  CHECK_OK(wksp_verify(w));
}

/* The case an operator meets (`wksp new x 1M --part-max 3`): the second
 * 4 KiB allocation silently takes the whole tail; the third fails for lack
 * of bytes, and the message names the cause: no record left.  A FULL with
 * records to spare does not say so. */
static void test_full_names_records(void) {
  wksp_t *w = wksp_make(3, (1 << 20) - 320);
  CHECK(w);
  uint64_t g, lo, hi;
  CHECK_OK(wksp_alloc_at_least(w, 0, 4096, 1, &g, &lo, &hi));
  CHECK_EQ(hi - lo, 4096);
  CHECK_OK(wksp_alloc_at_least(w, 0, 4096, 1, &g, &lo, &hi));
  CHECK_EQ(hi, wksp_gaddr_hi(w)); /* handed the whole free range */
  CHECK_ERR(wksp_alloc(w, 0, 4096, 1, &g), WKSP_ERR_FULL);
  char want[160];
  snprintf(want, sizeof want, "largest free %" PRIu64 "; no partition record left (part_max 3, all in use)",
           4096 - wksp_gaddr_lo(w));
  CHECK(strstr(wksp_errmsg(), want));
  wksp_t *roomy = wksp_make(64, 1 << 16);
  CHECK(roomy);
  CHECK_ERR(wksp_alloc(roomy, 0, 1 << 20, 1, &g), WKSP_ERR_FULL);
  CHECK(!strstr(wksp_errmsg(), "partition record"));
}

static void test_tag_query_free_usage(void) {
  wksp_t *w = wksp_make(64, 1 << 16);
  CHECK(w);
  uint64_t g[12];
  for (int i = 0; i < 12; i++) CHECK_OK(wksp_alloc(w, 64, 100 + (uint64_t)i, 1 + (uint64_t)i % 3, &g[i]));
  uint64_t t13[2] = {1, 3};
  wksp_part_t out[16];
  size_t cnt;
  CHECK_OK(wksp_tag_query(w, t13, 2, out, 16, &cnt));
  CHECK_EQ(cnt, 8);
  for (size_t i = 0; i < cnt; i++) {
    CHECK(out[i].tag == 1 || out[i].tag == 3);
    if (i) CHECK(out[i].gaddr_lo > out[i - 1].gaddr_lo);
  }
  CHECK_OK(wksp_tag_query(w, t13, 2, out, 3, &cnt)); /* truncated output, full count */
  CHECK_EQ(cnt, 8);
  CHECK_OK(wksp_tag_query(w, t13, 2, NULL, 0, &cnt));
  CHECK_EQ(cnt, 8);
  CHECK_ERR(wksp_tag_query(w, t13, 2, NULL, 4, &cnt), WKSP_ERR_INVAL);
  CHECK_ERR(wksp_tag_query(w, t13, 2, out, 4, NULL), WKSP_ERR_INVAL);
  CHECK_ERR(wksp_tag_query(w, NULL, 2, out, 4, &cnt), WKSP_ERR_INVAL);
  uint64_t t0[2] = {1, 0};
  CHECK_ERR(wksp_tag_query(w, t0, 2, out, 4, &cnt), WKSP_ERR_INVAL);
  CHECK_ERR(wksp_tag_free(w, t0, 2), WKSP_ERR_INVAL);
  CHECK_ERR(wksp_usage(w, t0, 2, &(wksp_usage_t){0}), WKSP_ERR_INVAL);
  /* Many tags: the sorted path. */
  uint64_t many[20];
  for (int i = 0; i < 20; i++) many[i] = 1000 + (uint64_t)i;
  many[7] = 2;
  CHECK_OK(wksp_tag_query(w, many, 20, out, 16, &cnt));
  CHECK_EQ(cnt, 4);
  wksp_usage_t u;
  CHECK_OK(wksp_usage(w, NULL, 0, &u));
  CHECK_EQ(u.total_max, 64);
  CHECK_EQ(u.total_sz, 1 << 16);
  CHECK_EQ(u.used_cnt, 12);
  CHECK_EQ(u.total_cnt, u.used_cnt + u.free_cnt);
  CHECK_EQ(u.used_sz + u.free_sz, 1 << 16);
  uint64_t want = 0;
  for (int i = 0; i < 12; i++) want += 100 + (uint64_t)i;
  CHECK_EQ(u.used_sz, want);
  wksp_part_t all[32];
  CHECK_OK(wksp_part_list(w, all, 32, &cnt));
  uint64_t free_max = 0;
  for (size_t i = 0; i < cnt; i++)
    if (!all[i].tag && all[i].gaddr_hi - all[i].gaddr_lo > free_max) free_max = all[i].gaddr_hi - all[i].gaddr_lo;
  CHECK(free_max > 0 && free_max < u.free_sz);
  CHECK_EQ(u.free_max, free_max);
  CHECK_OK(wksp_usage(w, t13, 2, &u));
  CHECK_EQ(u.used_cnt, 8);
  CHECK_ERR(wksp_usage(w, NULL, 0, NULL), WKSP_ERR_INVAL);
  CHECK_OK(wksp_tag_free(w, t13, 2));
  CHECK_OK(wksp_verify(w));
  CHECK_OK(wksp_usage(w, NULL, 0, &u));
  CHECK_EQ(u.used_cnt, 4);
  for (int i = 0; i < 12; i++) {
    uint64_t t;
    CHECK_OK(wksp_tag(w, g[i], &t));
    CHECK_EQ(t, (i % 3 == 1) ? 2 : 0);
  }
  CHECK_OK(wksp_tag_free(w, t13, 2)); /* nothing left with those tags */
  CHECK_OK(wksp_tag_free(w, NULL, 0));
  CHECK_OK(wksp_reset(w, 99));
  CHECK_EQ(wksp_seed(w), 99);
  CHECK_OK(wksp_usage(w, NULL, 0, &u));
  CHECK_EQ(u.used_cnt, 0);
  CHECK_EQ(u.total_cnt, 1);
  CHECK_EQ(u.free_max, 1 << 16);
  CHECK_OK(wksp_verify(w));
}

static void test_memset(void) {
  wksp_t *w = wksp_make(16, 1 << 16);
  CHECK(w);
  uint64_t g, lo, hi;
  CHECK_OK(wksp_alloc_at_least(w, 0, 300, 1, &g, &lo, &hi));
  CHECK_OK(wksp_memset(w, g + 10, 0xAB));
  uint8_t *p = wksp_laddr(w, lo);
  for (uint64_t i = 0; i < hi - lo; i++) CHECK_EQ(p[i], 0xAB);
  CHECK_EQ(p[hi - lo], 0);
  CHECK_ERR(wksp_memset(w, hi, 1), WKSP_ERR_INVAL);
  CHECK_ERR(wksp_memset(w, 0, 1), WKSP_ERR_INVAL);
  CHECK_ERR(wksp_memset(NULL, g, 1), WKSP_ERR_INVAL);
}

static void test_verify_detects(void) {
  wksp_t *w = wksp_make(16, 1 << 16);
  CHECK(w);
  uint64_t g[4];
  for (int i = 0; i < 4; i++) CHECK_OK(wksp_alloc(w, 64, 100, 1 + (uint64_t)i, &g[i]));
  CHECK_OK(wksp_verify(w));
  wksp_rec_t *rec = wksp_private_rec(w);
  /* Each damage is found with a message, then undone. */
  struct {
    void *p;
    size_t sz;
  } f[] = {{&rec[1].hi, 8}, {&rec[2].next, 4}, {&rec[3].prev, 4}, {&rec[2].left, 4}, {&rec[15].lo, 8},
           {&rec[3].parent, 4}};
  for (size_t k = 0; k < sizeof f / sizeof f[0]; k++) {
    uint8_t save[8];
    memcpy(save, f[k].p, f[k].sz);
    memset(f[k].p, 0x17, f[k].sz);
    CHECK_ERR(wksp_verify(w), WKSP_ERR_CORRUPT);
    CHECK(errmsg_set());
    memcpy(f[k].p, save, f[k].sz);
    CHECK_OK(wksp_verify(w));
  }
  /* The header's derived fields are checked at every lock and rebuilt
   * before use; wksp_check says which one it found wrong. */
  struct {
    uint32_t *p;
    const char *what;
  } hf[] = {{&w->used_root, "used treap root"}, {&w->bins, "free index geometry"}, {&w->idle_top, "idle stack top"}};
  for (size_t k = 0; k < sizeof hf / sizeof hf[0]; k++) {
    char note[WKSP_NOTE_MAX];
    *hf[k].p = 0x17171717;
    CHECK_OK(wksp_check(w, note, sizeof note));
    CHECK(strstr(note, hf[k].what) && strstr(note, "rebuilt from the partition records"));
    CHECK_OK(wksp_check(w, note, sizeof note));
    CHECK(!strcmp(note, ""));
    *hf[k].p = 0x17171717;
    CHECK_OK(wksp_verify(w)); /* a writable verify locks: repaired first */
  }
}

/* wksp_check repairs derived damage the lock does not see (the treaps'
 * links, a seed they do not match) and says what it found; damage to the
 * records themselves is CORRUPT, naming both findings, with nothing
 * changed. */
static void test_check_repairs(void) {
  wksp_t *w = wksp_make(16, 1 << 16);
  CHECK(w);
  uint64_t g[5];
  for (int i = 0; i < 5; i++) CHECK_OK(wksp_alloc(w, 64, 100 + (uint64_t)i, 1 + (uint64_t)i, &g[i]));
  char note[WKSP_NOTE_MAX] = "stale";
  CHECK_OK(wksp_check(w, note, sizeof note));
  CHECK(!strcmp(note, ""));
  wksp_rec_t *rec = wksp_private_rec(w);
  uint32_t u = wksp_private_used_find(w, g[2]);
  CHECK(u != WKSP_IDX_NULL);
  rec[u].left = 9;
  CHECK_OK(wksp_check(w, note, sizeof note));
  /* What was found and done, in words: no function name before it. */
  CHECK(!strncmp(note, "used treap of ", 14) && strstr(note, "rebuilt from the partition records"));
  CHECK_OK(wksp_verify(w));
  CHECK_OK(wksp_check(w, NULL, 0));
  /* A note longer than its buffer is cut. */
  rec[u].left = 9;
  CHECK_OK(wksp_check(w, note, 12));
  CHECK_EQ(strlen(note), 11);

  uint64_t t;
  CHECK_OK(wksp_tag(w, g[2], &t));
  CHECK_EQ(t, 3);
  u = wksp_private_used_find(w, g[3]);
  rec[u].hi += 8; /* overlaps the next partition: the truth is damaged */
  size_t meta = wksp_gaddr_lo(w);
  uint8_t *copy = malloc(meta);
  CHECK(copy);
  memcpy(copy, w, meta);
  strcpy(note, "kept");
  int r = wksp_check(w, note, sizeof note);
  int same = !memcmp(copy, w, meta);
  free(copy);
  CHECK_EQ(r, WKSP_ERR_CORRUPT);
  CHECK(strstr(wksp_errmsg(), "cannot rebuild it") && strstr(wksp_errmsg(), "overlaps"));
  CHECK(!strcmp(note, "")); /* cleared, not filled on failure */
  CHECK(same);
  rec[u].hi -= 8;
  CHECK_OK(wksp_check(w, note, sizeof note));
  CHECK_ERR(wksp_check(NULL, note, sizeof note), WKSP_ERR_INVAL);
}

/* The journal bit set by damage (no bulk operation running) is not
 * replayed: the shadows hold the free index then, and replaying it would
 * overwrite every record.  (That a real committed journal still is: the
 * kill tests, test_wksp_kill.c, at WKSP_HOOK_BULK_COMMIT and _APPLY.) */
static void test_journal_bit_damage(void) {
  wksp_t *w = wksp_make(32, 1 << 16);
  CHECK(w);
  uint64_t g[10];
  for (int i = 0; i < 10; i++) CHECK_OK(wksp_alloc(w, 64, 300 + (uint64_t)i, 1 + (uint64_t)i % 3, &g[i]));
  CHECK_OK(wksp_free(w, g[4]));
  wksp_part_t before[32], after[32];
  size_t nb, na;
  CHECK_OK(wksp_part_list(w, before, 32, &nb));
  for (uint32_t flags = WKSP_GEN_JOURNAL; flags <= WKSP_GEN_FLAGS; flags++) {
    if (!(flags & WKSP_GEN_JOURNAL)) continue;
    w->gen |= flags;
    char note[WKSP_NOTE_MAX];
    CHECK_OK(wksp_check(w, note, sizeof note));
    CHECK(strstr(note, "left unfinished") && !strstr(note, "bulk operation completed"));
    CHECK_OK(wksp_part_list(w, after, 32, &na));
    CHECK_EQ(na, nb);
    CHECK(!memcmp(before, after, nb * sizeof *before));
  }
  CHECK_OK(wksp_verify(w));
}

/* Equal-size holes share a same-size list; damage to it is found, and the
 * newest hole is the one reused (the reference's choice). */
static void test_same_size_list(void) {
  wksp_t *w = wksp_make(32, 1 << 16);
  CHECK(w);
  uint64_t g[7];
  for (int i = 0; i < 7; i++) CHECK_OK(wksp_alloc(w, 1, 100, 1, &g[i]));
  CHECK_OK(wksp_free(w, g[1]));
  CHECK_OK(wksp_free(w, g[3]));
  CHECK_OK(wksp_free(w, g[5]));
  CHECK_OK(wksp_verify(w));
  wksp_rec_t *rec = wksp_private_rec(w);
  uint32_t member = WKSP_IDX_NULL;
  for (uint32_t i = 0; i < 32; i++)
    if (rec[i].lo && !rec[i].tag && rec[i].same == i) member = i;
  CHECK(member != WKSP_IDX_NULL);
  uint32_t save = rec[member].parent;
  rec[member].parent = 31;
  CHECK_ERR(wksp_verify(w), WKSP_ERR_CORRUPT);
  CHECK(strstr(wksp_errmsg(), "same-size"));
  rec[member].parent = save;
  rec[member].same = WKSP_IDX_NULL;
  CHECK_ERR(wksp_verify(w), WKSP_ERR_CORRUPT);
  rec[member].same = member;
  CHECK_OK(wksp_verify(w));
  uint64_t x;
  CHECK_OK(wksp_alloc(w, 1, 100, 2, &x));
  CHECK_EQ(x, g[5]); /* newest hole first */
  CHECK_OK(wksp_alloc(w, 1, 100, 2, &x));
  CHECK_EQ(x, g[3]);
  CHECK_OK(wksp_alloc(w, 1, 100, 2, &x));
  CHECK_EQ(x, g[1]); /* the node last */
  CHECK_OK(wksp_verify(w));
}

/* Damaged derived links are caught before any out-of-range access; the
 * call fails CORRUPT and the next call repairs from the records. */
static void test_self_repair(void) {
  wksp_t *w = wksp_make(16, 1 << 16);
  CHECK(w);
  uint64_t g[3];
  for (int i = 0; i < 3; i++) CHECK_OK(wksp_alloc(w, 1, 100, 1 + (uint64_t)i, &g[i]));
  wksp_rec_t *rec = wksp_private_rec(w);
  uint32_t u = wksp_private_used_find(w, g[1]);
  CHECK(u != WKSP_IDX_NULL);
  rec[u].next = 0x17171717;
  CHECK_ERR(wksp_free(w, g[1]), WKSP_ERR_CORRUPT);
  CHECK(strstr(wksp_errmsg(), "next link"));
  uint64_t t;
  CHECK_OK(wksp_tag(w, g[1], &t)); /* repaired by this call's lock */
  CHECK_EQ(t, 2);
  CHECK_OK(wksp_verify(w));
  CHECK_OK(wksp_free(w, g[1]));
  CHECK_OK(wksp_verify(w));
}

/* Random damage to the records (never to the header's mutex): every call
 * returns some code without crashing, hanging or touching memory outside
 * the workspace (ASan build), and the error codes are the documented ones. */
static void test_garbage_no_crash(void) {
  uint64_t rng = test_seed();
  for (int it = 0; it < 300; it++) {
    wksp_t *w = wksp_make(32, 1 << 16);
    CHECK(w);
    uint64_t g[16];
    for (int i = 0; i < 16; i++) g[i] = 0, wksp_alloc(w, 1 << (test_rng(&rng) % 8), 1 + test_rng(&rng) % 3000, 1 + (uint64_t)i % 4, &g[i]);
    uint8_t *meta = (uint8_t *)wksp_private_rec(w);
    int hits = 1 + (int)(test_rng(&rng) % 8);
    for (int k = 0; k < hits; k++) {
      size_t off = test_rng(&rng) % (64 * 32);
      meta[off] = (uint8_t)test_rng(&rng);
    }
    if (test_rng(&rng) % 4 == 0) w->used_root = (uint32_t)test_rng(&rng) % 40;
    if (test_rng(&rng) % 4 == 0) w->gen |= 1; /* force a repair attempt */
    for (int op = 0; op < 40; op++) {
      uint64_t x, t;
      wksp_part_t parts[64];
      size_t cnt;
      wksp_usage_t u;
      int r;
      switch (test_rng(&rng) % 7) {
      case 0: r = wksp_alloc(w, 1 << (test_rng(&rng) % 6), 1 + test_rng(&rng) % 2000, 3, &x); break;
      case 1: r = wksp_free(w, g[test_rng(&rng) % 16] + test_rng(&rng) % 8); break;
      case 2:
        r = test_rng(&rng) % 2 ? wksp_tag(w, g[test_rng(&rng) % 16], &t)
                               : wksp_part_find(w, g[test_rng(&rng) % 16] + test_rng(&rng) % 4000, parts);
        break;
      case 3: r = wksp_part_list(w, parts, 64, &cnt); break;
      case 4: r = wksp_usage(w, NULL, 0, &u); break;
      case 5: r = wksp_verify(w); break;
      default: r = wksp_rebuild(w, (uint32_t)test_rng(&rng)); break;
      }
      CHECK(r == 0 || r == WKSP_ERR_INVAL || r == WKSP_ERR_CORRUPT || r == WKSP_ERR_FULL);
      if (r) CHECK(errmsg_set());
    }
  }
}

/* A new partition takes one of its home slots when one is idle, and an
 * exact start is then found there without the used treap; any other
 * address still goes through the treap.  Damage to the idle list's back
 * links is found by verify. */
static void test_home_slots(void) {
  wksp_t *w = wksp_make(64, 1 << 18);
  CHECK(w);
  wksp_rec_t *rec = wksp_private_rec(w);
  uint64_t g;
  CHECK_OK(wksp_alloc(w, 0, 1000, 3, &g));
  uint32_t h = wksp_private_home(w->part_max, g), at = WKSP_IDX_NULL;
  for (uint32_t k = 0; k < WKSP_HOME_PROBE; k++)
    if (rec[(h + k) % w->part_max].lo == g) at = (h + k) % w->part_max;
  CHECK(at != WKSP_IDX_NULL);
  uint32_t root = w->used_root;
  w->used_root = WKSP_IDX_NULL; /* the treap can no longer answer */
  CHECK_EQ(wksp_private_used_find(w, g), at);
  CHECK_EQ(wksp_private_used_find(w, g + 1), WKSP_IDX_NULL);
  w->used_root = root;
  CHECK_EQ(wksp_private_used_find(w, g + 999), at);
  CHECK_OK(wksp_verify(w));
  /* A record below the top of the idle stack with a wrong back link. */
  uint32_t top = w->idle_top, below = rec[top].left;
  CHECK(below != WKSP_IDX_NULL);
  rec[below].right = below;
  CHECK_ERR(wksp_verify(w), WKSP_ERR_CORRUPT);
  CHECK(strstr(wksp_errmsg(), "back link"));
  rec[below].right = top;
  CHECK_OK(wksp_verify(w));
  CHECK_OK(wksp_free(w, g));
  CHECK_OK(wksp_verify(w));
}

/* Every record is on the address list or the idle stack: verify counts
 * the two instead of scanning every record, so a record dropped from the
 * idle stack (idle, or made active off the list) must still be found, as
 * must an active record on the stack.  wksp_private_verify itself: taking
 * the lock (wksp_verify) would repair the stack first. */
static void test_verify_lost_record(void) {
  wksp_t *w = wksp_make(64, 1 << 18);
  CHECK(w);
  if (!w) return;
  wksp_rec_t *rec = wksp_private_rec(w);
  uint64_t g;
  CHECK_OK(wksp_alloc(w, 0, 1000, 3, &g));
  CHECK_OK(wksp_private_verify(w, "t"));
  uint32_t top = w->idle_top, below = rec[top].left;
  CHECK(below != WKSP_IDX_NULL);
  /* the top popped without being used: lost */
  w->idle_top = below;
  rec[below].right = WKSP_IDX_NULL;
  CHECK_ERR(wksp_private_verify(w, "t"), WKSP_ERR_CORRUPT);
  CHECK(strstr(wksp_errmsg(), "lost or active off the list"));
  /* ... and made active, off the address list: the same */
  rec[top].lo = wksp_gaddr_hi(w) - 64;
  rec[top].hi = wksp_gaddr_hi(w);
  rec[top].tag = 9;
  CHECK_ERR(wksp_private_verify(w, "t"), WKSP_ERR_CORRUPT);
  CHECK(strstr(wksp_errmsg(), "lost or active off the list"));
  /* pushed back while active */
  w->idle_top = top;
  rec[below].right = top;
  CHECK_ERR(wksp_private_verify(w, "t"), WKSP_ERR_CORRUPT);
  CHECK(strstr(wksp_errmsg(), "active record"));
  rec[top].lo = rec[top].hi = rec[top].tag = 0;
  CHECK_OK(wksp_private_verify(w, "t"));
  CHECK_OK(wksp_verify(w));
}

/* wksp_part_find against the full partition list, at every partition's
 * first and last byte and at random addresses, while random allocations and
 * frees change the layout; then the bad inputs. */
static void test_part_find(void) {
  enum { PARTS = 64 };
  wksp_t *w = wksp_make(PARTS, 1 << 18);
  CHECK(w);
  uint64_t rng = test_seed(), g[24] = {0}, glo = wksp_gaddr_lo(w), ghi = wksp_gaddr_hi(w);
  wksp_part_t list[PARTS], p;
  for (int round = 0; round < 200; round++) {
    uint64_t *s = &g[test_rng(&rng) % 24];
    if (*s) {
      CHECK_OK(wksp_free(w, *s));
      *s = 0;
    } else {
      wksp_alloc(w, 1ull << (test_rng(&rng) % 13), 1 + test_rng(&rng) % 20000, 1 + test_rng(&rng) % 5, s);
    }
    size_t cnt;
    CHECK_OK(wksp_part_list(w, list, PARTS, &cnt));
    for (size_t i = 0; i < cnt; i++) {
      uint64_t probe[3] = {list[i].gaddr_lo, list[i].gaddr_hi - 1,
                           list[i].gaddr_lo + test_rng(&rng) % (list[i].gaddr_hi - list[i].gaddr_lo)};
      for (int k = 0; k < 3; k++) {
        CHECK_OK(wksp_part_find(w, probe[k], &p));
        CHECK_EQ(p.gaddr_lo, list[i].gaddr_lo);
        CHECK_EQ(p.gaddr_hi, list[i].gaddr_hi);
        CHECK_EQ(p.tag, list[i].tag);
      }
    }
  }
  CHECK_OK(wksp_part_find(w, glo, &p));
  CHECK_EQ(p.gaddr_lo, glo);
  CHECK_OK(wksp_part_find(w, ghi - 1, &p));
  CHECK_EQ(p.gaddr_hi, ghi);
  p.tag = 7;
  CHECK_ERR(wksp_part_find(w, ghi, &p), WKSP_ERR_INVAL);
  CHECK(strstr(wksp_errmsg(), "outside the data region"));
  CHECK_EQ(p.tag, 0); /* zeroed on failure */
  CHECK_ERR(wksp_part_find(w, glo - 1, &p), WKSP_ERR_INVAL);
  CHECK_ERR(wksp_part_find(w, 0, &p), WKSP_ERR_INVAL);
  CHECK_ERR(wksp_part_find(w, UINT64_MAX, &p), WKSP_ERR_INVAL);
  CHECK_ERR(wksp_part_find(w, glo, NULL), WKSP_ERR_INVAL);
  CHECK_ERR(wksp_part_find(NULL, glo, &p), WKSP_ERR_INVAL);
  CHECK_OK(wksp_verify(w));
}

/* The free index's size bins: the geometry follows part_max, best fit
 * crosses bitmap words at every level, and damage to a root or a bitmap
 * word is found. */
static void test_free_bins(void) {
  wksp_t *w = wksp_make(3, 1 << 16);
  CHECK(w);
  CHECK_EQ(w->bins, WKSP_BIN_SINGLE);
  uint64_t g;
  CHECK_OK(wksp_alloc(w, 1, 100, 1, &g));
  CHECK_OK(wksp_free(w, g));
  CHECK_OK(wksp_verify(w));

  /* 1 GiB (never touched) with room for the finest bins. */
  w = wksp_make(40000, UINT64_C(1) << 30);
  CHECK(w);
  wksp_bins_t geo = wksp_private_bins(w->bins);
  CHECK_EQ(geo.m, 12);
  CHECK(geo.w0 > 64); /* level-1 words in use */
  /* Holes of 100 B, 1 MiB and 100 MiB, kept apart by small allocations:
   * their bins lie in different level-0 and level-1 words. */
  uint64_t hole_sz[3] = {100, 1 << 20, 100 << 20}, hole[3], sep;
  for (int i = 0; i < 3; i++) {
    CHECK_OK(wksp_alloc(w, 1, hole_sz[i], 1, &hole[i]));
    CHECK_OK(wksp_alloc(w, 1, 8, 2, &sep));
  }
  for (int i = 0; i < 3; i++) CHECK_OK(wksp_free(w, hole[i]));
  CHECK_OK(wksp_verify(w));
  uint64_t bin_hole1 = wksp_private_bin_class(geo.m, 1 << 20), bin_hole2 = wksp_private_bin_class(geo.m, 100 << 20);
  CHECK((bin_hole1 >> 12) != (wksp_private_bin_class(geo.m, 200) >> 12));
  CHECK((bin_hole2 >> 12) != (bin_hole1 >> 12));
  CHECK_OK(wksp_alloc(w, 1, 200, 3, &g)); /* too big for the 100 B hole: next bin with space is 1 MiB */
  CHECK_EQ(g, hole[1]);
  CHECK_OK(wksp_alloc(w, 1, 2 << 20, 3, &g)); /* the 100 MiB hole, not the tail */
  CHECK_EQ(g, hole[2]);
  CHECK_OK(wksp_alloc(w, 1, 100, 3, &g)); /* exact fit */
  CHECK_EQ(g, hole[0]);
  CHECK_OK(wksp_verify(w));

  wksp_rec_t *rec = wksp_private_rec(w);
  uint64_t c = wksp_private_bin_class(geo.m, (1 << 20) - 200);
  uint32_t save_root = rec[c >> 1].bin[c & 1];
  CHECK(save_root != WKSP_IDX_NULL);
  rec[c >> 1].bin[c & 1] = WKSP_IDX_NULL;
  CHECK_ERR(wksp_verify(w), WKSP_ERR_CORRUPT);
  rec[c >> 1].bin[c & 1] = save_root;
  CHECK_OK(wksp_verify(w));
  uint64_t *word = &rec[geo.w0 + (c >> 12)].bits, save = *word;
  *word ^= 1;
  CHECK_ERR(wksp_verify(w), WKSP_ERR_CORRUPT);
  CHECK(strstr(wksp_errmsg(), "bitmap"));
  *word = save;
  CHECK_OK(wksp_verify(w));
  CHECK_OK(wksp_reset(w, 7));
  CHECK_OK(wksp_verify(w));
}

static void test_rebuild(void) {
  wksp_t *w = wksp_make(32, 1 << 16);
  CHECK(w);
  uint64_t g[8];
  for (int i = 0; i < 8; i++) CHECK_OK(wksp_alloc(w, 8, 200 + (uint64_t)i, 1 + (uint64_t)i, &g[i]));
  CHECK_OK(wksp_free(w, g[3]));
  wksp_part_t before[32], after[32];
  size_t nb, na;
  CHECK_OK(wksp_part_list(w, before, 32, &nb));
  /* Scramble derived data; rebuild restores it without touching allocations. */
  wksp_rec_t *rec = wksp_private_rec(w);
  for (int i = 0; i < 32; i++) rec[i].left = rec[i].right = rec[i].prev = rec[i].next = 7;
  CHECK_ERR(wksp_private_verify(w, "test"), WKSP_ERR_CORRUPT); /* without the lock, which would repair */
  w->used_root = w->bins = w->idle_top = 3;
  CHECK_OK(wksp_rebuild(w, 1234));
  CHECK_EQ(wksp_seed(w), 1234);
  CHECK_OK(wksp_verify(w));
  CHECK_OK(wksp_part_list(w, after, 32, &na));
  CHECK_EQ(na, nb);
  CHECK(!memcmp(before, after, nb * sizeof *before));
  /* Overlap: rebuild fails and changes nothing. */
  uint32_t u = wksp_private_used_find(w, g[5]);
  CHECK(u != WKSP_IDX_NULL);
  rec[u].hi += 8;
  size_t meta = wksp_gaddr_lo(w);
  uint8_t *copy = malloc(meta);
  CHECK(copy);
  memcpy(copy, w, meta);
  int r = wksp_rebuild(w, 5);
  int same = !memcmp(copy, w, meta);
  free(copy);
  CHECK_EQ(r, WKSP_ERR_CORRUPT);
  CHECK(strstr(wksp_errmsg(), "overlaps"));
  CHECK(same);
  rec[u].hi -= 8;
  /* Duplicate start. */
  uint32_t idle = w->idle_top;
  rec[idle].lo = rec[u].lo;
  CHECK_ERR(wksp_rebuild(w, 5), WKSP_ERR_CORRUPT);
  CHECK(strstr(wksp_errmsg(), "both start"));
  rec[idle].lo = 0;
  CHECK_OK(wksp_rebuild(w, 6));
  CHECK_OK(wksp_verify(w));
}

/* Adjacent free partitions left by a crash are merged by rebuild. */
static void test_rebuild_merges(void) {
  wksp_t *w = wksp_make(8, 1 << 16);
  CHECK(w);
  wksp_rec_t *rec = wksp_private_rec(w);
  uint32_t i = w->idle_top;
  rec[i].tag = 0;
  rec[i].lo = wksp_gaddr_lo(w) + 1000;
  CHECK_OK(wksp_rebuild(w, 1));
  wksp_usage_t u;
  CHECK_OK(wksp_usage(w, NULL, 0, &u));
  CHECK_EQ(u.total_cnt, 1);
  CHECK_OK(wksp_verify(w));
}

/* Idle records of w form the stack ascending from the top (the order every
 * rebuild gives): returns how many, or -1 when it is not that order. */
static int64_t idle_ascending(const wksp_t *w) {
  const wksp_rec_t *rec = wksp_private_rec(w);
  int64_t cnt = 0;
  for (uint32_t i = w->idle_top, up = WKSP_IDX_NULL; i != WKSP_IDX_NULL; up = i, i = rec[i].left, cnt++)
    if (rec[i].right != up || (up != WKSP_IDX_NULL && i <= up) || rec[i].lo) return -1;
  return cnt;
}

/* The rebuild after a bulk apply (one walk over the records, writing as it
 * goes) and wksp_rebuild (checks first, then writes) derive the same bytes,
 * also when the apply left adjacent free partitions to merge in the middle
 * of the records. */
static void test_rebuild_paths_agree(void) {
  wksp_t *w = wksp_make(64, 1 << 16);
  CHECK(w);
  uint64_t g[12];
  for (int i = 0; i < 12; i++) CHECK_OK(wksp_alloc(w, 8, 100 + (uint64_t)i, i % 3 ? 5 : 6, &g[i]));
  for (int i = 1; i < 12; i += 4) CHECK_OK(wksp_free(w, g[i]));
  uint64_t tag = 5;
  CHECK_OK(wksp_tag_free(w, &tag, 1)); /* frees neighbours of free space: merges */
  CHECK_OK(wksp_verify(w));
  int64_t idle = idle_ascending(w);
  CHECK(idle > 0);
  wksp_usage_t u;
  CHECK_OK(wksp_usage(w, NULL, 0, &u));
  CHECK_EQ((uint64_t)idle + u.total_cnt, 64);
  size_t meta = wksp_gaddr_lo(w);
  uint8_t *after_bulk = malloc(meta);
  CHECK(after_bulk);
  memcpy(after_bulk, w, meta);
  CHECK_OK(wksp_rebuild(w, wksp_seed(w)));
  ((struct wksp *)after_bulk)->gen = w->gen; /* the one field a rebuild must change */
  CHECK(!memcmp(after_bulk, w, meta));
  free(after_bulk);
}

/* A named workspace attached twice: *rw writable and the result read-only
 * (a PROT_READ mapping of its own, so any write would fault).  Regions live
 * in a private temporary WKSP_SHMEM_DIR. */
static char shm_dir[64];
/* Named workspaces of these tests live in a directory of their own. */
static int shm_dir_init(void) {
  if (shm_dir[0]) return 1;
  strcpy(shm_dir, "/tmp/wksp-test-XXXXXX");
  if (!mkdtemp(shm_dir)) return 0;
  setenv("WKSP_SHMEM_DIR", shm_dir, 1);
  return 1;
}

static wksp_t *rdonly_pair(const char *name, uint64_t part_max, wksp_t **rw) {
  wksp_t *ro = NULL;
  if (!shm_dir_init()) return NULL;
  if (wksp_new_named(name, 1 << 20, WKSP_PAGE_NORMAL, 0600, 1, part_max)) return NULL;
  if (wksp_attach(name, 0, rw)) return NULL;
  if (wksp_attach(name, WKSP_RDONLY, &ro)) return NULL;
  return ro;
}

static void rdonly_pair_done(const char *name, wksp_t *rw, wksp_t *ro) {
  wksp_detach(ro);
  wksp_detach(rw);
  wksp_delete_named(name);
}

static void test_rdonly(void) {
  wksp_t *w, *ro = rdonly_pair("ro-test", 16, &w);
  CHECK(ro && ro != w);
  uint64_t g;
  CHECK_OK(wksp_alloc(w, 0, 100, 9, &g));
  uint64_t g2, t;
  int r1 = wksp_alloc(ro, 0, 10, 1, &g2);
  int r2 = wksp_free(ro, g);
  int r3 = wksp_tag_free(ro, &t, 0);
  int r4 = wksp_reset(ro, 1);
  int r5 = wksp_rebuild(ro, 1);
  int r6 = wksp_memset(ro, g, 0);
  int r7 = wksp_private_lock(ro);
  int r8 = wksp_delete(ro);
  int q1 = wksp_verify(ro);
  int q2 = wksp_tag(ro, g, &t);
  wksp_usage_t u;
  int q3 = wksp_usage(ro, NULL, 0, &u);
  size_t cnt;
  wksp_part_t parts[4];
  int q4 = wksp_part_list(ro, parts, 4, &cnt);
  wksp_part_t found;
  int q5 = wksp_part_find(ro, g + 50, &found);
  rdonly_pair_done("ro-test", w, ro);
  CHECK_ERR(r1, WKSP_ERR_PERM);
  CHECK_ERR(r2, WKSP_ERR_PERM);
  CHECK_ERR(r3, WKSP_ERR_PERM);
  CHECK_ERR(r4, WKSP_ERR_PERM);
  CHECK_ERR(r5, WKSP_ERR_PERM);
  CHECK_ERR(r6, WKSP_ERR_PERM);
  CHECK_ERR(r7, WKSP_ERR_PERM);
  CHECK_ERR(r8, WKSP_ERR_PERM);
  CHECK_OK(q1);
  CHECK_OK(q2);
  CHECK_EQ(t, 9);
  CHECK_OK(q3);
  CHECK_EQ(u.used_cnt, 1);
  CHECK_OK(q4);
  CHECK_EQ(cnt, 3);
  CHECK_OK(q5);
  CHECK_EQ(found.gaddr_lo, g);
  CHECK_EQ(found.gaddr_hi, g + 100);
  CHECK_EQ(found.tag, 9);
}

/* Page faults this process took so far (minor: the pages are in memory). */
static long minor_faults(void) {
  struct rusage ru;
  return getrusage(RUSAGE_SELF, &ru) ? -1 : ru.ru_minflt;
}

/* Whether this kernel fills page tables on request (MADV_POPULATE_*,
 * Linux 5.14): then wksp_private_prefault must do it and say so. */
static int kernel_populates(void) {
#if defined(MADV_POPULATE_READ)
  void *p = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  int ok = p != MAP_FAILED && !madvise(p, 4096, MADV_POPULATE_READ);
  if (p != MAP_FAILED) munmap(p, 4096);
  return ok;
#else
  return 0;
#endif
}

/* Compares w's bytes [lo, hi) with want, counting the faults of the reads. */
static int same_bytes(const wksp_t *w, uint64_t lo, uint64_t hi, const uint8_t *want, long *faults) {
  long f0 = minor_faults();
  int same = !memcmp((const uint8_t *)w + lo, want, hi - lo);
  *faults = minor_faults() - f0;
  return same;
}

/* Pre-faulting changes no byte, writable and read-only (PROT_READ), on
 * mappings whose page table entries were dropped, and leaves the range
 * readable without a fault per page. */
static void test_prefault(void) {
  wksp_t *w, *ro = rdonly_pair("prefault", 16, &w);
  CHECK(ro);
  uint64_t lo = wksp_gaddr_lo(w) + 1000, hi = wksp_gaddr_hi(w) - 1000, sz = hi - lo, pages = sz / 4096;
  uint8_t *want = malloc(sz);
  CHECK(want);
  uint64_t rng = test_seed();
  for (uint64_t i = 0; i < sz; i++) want[i] = (uint8_t)test_rng(&rng);
  memcpy((uint8_t *)w + lo, want, sz);
  /* Both mappings read once, then their page table entries dropped (shared:
   * the bytes stay): under ASan that first read also faults in the shadow
   * memory of the range (one fault per 8 pages), which the counts below
   * must not see. */
  long f_first;
  int same_first = same_bytes(w, lo, hi, want, &f_first) && same_bytes(ro, lo, hi, want, &f_first);
  wksp_t *maps[2] = {w, ro};
  int dropped = 1;
  for (int m = 0; m < 2; m++) {
    uintptr_t a = ((uintptr_t)maps[m] + lo + 4095) & ~(uintptr_t)4095, b = ((uintptr_t)maps[m] + hi) & ~(uintptr_t)4095;
    dropped &= !madvise((void *)a, b - a, MADV_DONTNEED);
  }
  long fw = 0, fr = 0;
  int done_w = wksp_private_prefault(w, lo, hi, 1);
  int same_w = same_bytes(w, lo, hi, want, &fw);
  int done_r = wksp_private_prefault(ro, lo, hi, 0);
  int same_r = same_bytes(ro, lo, hi, want, &fr);
  int empty_1 = wksp_private_prefault(ro, hi, lo, 0); /* empty range: nothing to do */
  int empty_2 = wksp_private_prefault(ro, wksp_gaddr_hi(w), UINT64_MAX, 0);
  rdonly_pair_done("prefault", w, ro);
  free(want);
  CHECK(same_first);
  CHECK(dropped);
  CHECK_EQ(empty_1, 0);
  CHECK_EQ(empty_2, 0);
  CHECK(same_w);
  CHECK(same_r);
  CHECK(pages > 200);
  /* Without it: a fault per page, or per 16 with the kernel's fault-around. */
  if (kernel_populates()) {
    CHECK(done_w);
    CHECK(done_r);
    CHECK((uint64_t)fw < pages / 32);
    CHECK((uint64_t)fr < pages / 32);
  } else {
    fprintf(stderr, "test_prefault: this kernel does not populate page tables: only the bytes are checked\n");
  }
}

/* A range some of whose 2 MiB chunks this process maps and some not (page
 * table entries dropped; step 2: every other chunk, so the survey finds a
 * mix and each chunk is asked) or none (step 1: the survey finds nothing
 * mapped and everything is populated without asking):
 * wksp_private_prefault_parts skips the mapped ones and must still
 * populate every dropped one, in allocations that span chunks, start
 * inside one, or sit in one. */
static void prefault_parts_case(int step) {
  const char *name = "prefault-parts";
  wksp_t *w = NULL;
  int made = shm_dir_init() && !wksp_new_named(name, 24 << 20, WKSP_PAGE_NORMAL, 0600, 1, 64) && !wksp_attach(name, 0, &w);
  CHECK(made);
  if (!made) return;
  uint64_t sizes[] = {5 << 20, 300 << 10, 1 << 20, 7 << 20, 4096, 3 << 20};
  wksp_part_t parts[6];
  uint64_t rng = test_seed();
  for (int k = 0; k < 6; k++) {
    CHECK_OK(wksp_alloc(w, 0, sizes[k], (uint64_t)k + 1, &parts[k].gaddr_lo));
    parts[k].gaddr_hi = parts[k].gaddr_lo + sizes[k];
    parts[k].tag = (uint64_t)k + 1;
  }
  /* ascending, as the checkpoint code passes them */
  for (int i = 1; i < 6; i++)
    for (int j = i; j > 0 && parts[j].gaddr_lo < parts[j - 1].gaddr_lo; j--) {
      wksp_part_t t = parts[j];
      parts[j] = parts[j - 1];
      parts[j - 1] = t;
    }
  uint64_t lo = parts[0].gaddr_lo, hi = parts[5].gaddr_hi, sz = hi - lo;
  uint8_t *want = malloc(sz);
  CHECK(want);
  if (!want) return;
  for (uint64_t i = 0; i < sz; i++) want[i] = (uint8_t)test_rng(&rng);
  memcpy((uint8_t *)w + lo, want, sz);
  long f;
  int same_first = same_bytes(w, lo, hi, want, &f);
  /* every step-th 2 MiB chunk of the mapping dropped (the bytes stay) */
  uintptr_t chunk = 2u << 20, a = ((uintptr_t)w + lo) & ~(chunk - 1), dropped_pages = 0;
  int dropped = 1;
  for (uintptr_t c = a; c < (uintptr_t)w + hi; c += (uintptr_t)step * chunk) {
    uintptr_t c0 = c < (uintptr_t)w + wksp_gaddr_lo(w) ? (((uintptr_t)w + wksp_gaddr_lo(w) + 4095) & ~(uintptr_t)4095) : c;
    dropped &= !madvise((void *)c0, c + chunk - c0, MADV_DONTNEED);
    dropped_pages += (c + chunk - c0) / 4096;
  }
  wksp_prefault_t pf;
  wksp_private_prefault_open(&pf);
  wksp_private_prefault_survey(&pf, w, parts, 6);
  wksp_prefault_mode_t found = pf.mode;
  wksp_private_prefault_parts(w, parts, 6, 0);
  pf.mode = WKSP_PREFAULT_ASK;
  wksp_private_prefault_survey(&pf, w, parts, 6);
  wksp_prefault_mode_t after = pf.mode;
  int asked = pf.pagemap >= 0;
  wksp_private_prefault_close(&pf);
  long fr = 0;
  int same = same_bytes(w, lo, hi, want, &fr);
  wksp_detach(w);
  wksp_delete_named(name);
  free(want);
  CHECK(same_first);
  CHECK(dropped);
  CHECK(same);
  CHECK(dropped_pages > 1000);
  if (kernel_populates()) CHECK((uint64_t)fr < dropped_pages / 32);
  if (asked && kernel_populates()) {
    CHECK_EQ(found, step == 1 ? WKSP_PREFAULT_ALL : WKSP_PREFAULT_ASK);
    CHECK_EQ(after, WKSP_PREFAULT_SKIP);
  }
}

static void test_prefault_parts(void) {
  prefault_parts_case(2);
  prefault_parts_case(1);
}

static void test_rdonly_stuck_writer(void) {
  wksp_t *w, *ro = rdonly_pair("ro-stuck", 4, &w);
  CHECK(ro);
  w->gen |= 1; /* as if a writer died mid-change */
  int r = wksp_verify(ro);
  char msg[1024];
  snprintf(msg, sizeof msg, "%s", wksp_errmsg());
  int repaired = wksp_verify(w); /* a writable locker repairs */
  uint64_t gen = w->gen;
  rdonly_pair_done("ro-stuck", w, ro);
  CHECK_EQ(r, WKSP_ERR_CORRUPT);
  CHECK(strstr(msg, "consistent"));
  CHECK_OK(repaired);
  CHECK_EQ(gen & 1, 0);
}

/* wksp_lock_info on a lock that is free, held by another process, and
 * left by a process killed holding it in the middle of an allocation;
 * then repaired by the next writable call.  Read-only: never blocks. */
static void test_lock_info(void) {
  wksp_t *w = wksp_make(16, 1 << 16);
  CHECK(w);
  wksp_lock_info_t li;
  CHECK_OK(wksp_lock_info(w, &li));
  CHECK_EQ(li.state, WKSP_LOCK_FREE);
  CHECK_EQ(li.tid, 0);
  CHECK_EQ(li.writing, 0);
  int held[2], dead[2];
  CHECK(!pipe(held) && !pipe(dead));
  pid_t kid = fork();
  if (kid == 0) {
    char b = 'h';
    if (wksp_private_lock(w)) _exit(1);
    if (write(held[1], &b, 1) != 1) _exit(1);
    if (read(dead[0], &b, 1) != 1) _exit(1); /* then start a change and wait to be killed */
    wksp_private_write_begin(w);
    if (write(held[1], &b, 1) != 1) _exit(1);
    pause();
    _exit(0);
  }
  char b;
  int ok = kid > 0 && read(held[0], &b, 1) == 1;
  wksp_lock_info_t h = {0}, d = {0}, r = {0};
  int rc_h = ok ? wksp_lock_info(w, &h) : -1;
  ok = ok && write(dead[1], "w", 1) == 1 && read(held[0], &b, 1) == 1;
  int rc_w = ok ? wksp_lock_info(w, &d) : -1;
  if (kid > 0) kill(kid, SIGKILL), waitpid(kid, NULL, 0);
  int rc_d = wksp_lock_info(w, &d);
  wksp_usage_t u;
  int rc_u = wksp_usage(w, NULL, 0, &u); /* takes the lock: recovers */
  int rc_r = wksp_lock_info(w, &r);
  close(held[0]), close(held[1]), close(dead[0]), close(dead[1]);
  CHECK(ok);
  CHECK_OK(rc_h);
  CHECK_EQ(h.state, WKSP_LOCK_HELD);
  CHECK_EQ(h.tid, (uint32_t)kid); /* its only thread */
  CHECK_EQ(h.writing, 0);
  CHECK_OK(rc_w);
  CHECK_OK(rc_d);
  CHECK_EQ(d.state, WKSP_LOCK_DEAD);
  CHECK_EQ(d.tid, (uint32_t)kid);
  CHECK_EQ(d.writing, 1);
  CHECK_OK(rc_u);
  CHECK_OK(rc_r);
  CHECK_EQ(r.state, WKSP_LOCK_FREE);
  CHECK_EQ(r.writing, 0);
  CHECK_ERR(wksp_lock_info(w, NULL), WKSP_ERR_INVAL);
  CHECK_ERR(wksp_lock_info(NULL, &li), WKSP_ERR_INVAL);
  CHECK_EQ(li.state, 0);
}

static void test_private_interface(void) {
  wksp_t *w = wksp_make(8, 1 << 16);
  CHECK(w);
  uint64_t glo = wksp_gaddr_lo(w), ghi = wksp_gaddr_hi(w);
  uint64_t g;
  CHECK_OK(wksp_alloc(w, 0, 500, 3, &g));
  CHECK_OK(wksp_private_lock(w));
  int relock = wksp_private_lock(w); /* same thread: refused, no deadlock */
  wksp_part_t *list;
  uint64_t n;
  int r = wksp_private_alloc_list(w, &list, &n);
  wksp_private_unlock(w);
  CHECK_ERR(relock, WKSP_ERR_INVAL);
  CHECK_OK(r);
  CHECK_EQ(n, 1);
  CHECK_EQ(list[0].gaddr_lo, g);
  CHECK_EQ(list[0].tag, 3);
  free(list);
  wksp_part_t p[4] = {{glo, glo + 10, 1}, {glo + 10, glo + 20, 2}, {glo + 100, glo + 200, 3}, {ghi - 5, ghi, 4}};
  CHECK_OK(wksp_private_lock(w));
  int c1 = wksp_private_replace_check(w, p, 4);
  wksp_part_t bad[2] = {{glo, glo + 10, 1}, {glo + 5, glo + 20, 2}};
  int c2 = wksp_private_replace_check(w, bad, 2);
  bad[1] = (wksp_part_t){glo + 20, glo + 30, 0};
  int c3 = wksp_private_replace_check(w, bad, 2);
  bad[1] = (wksp_part_t){glo + 20, ghi + 1, 1};
  int c4 = wksp_private_replace_check(w, bad, 2);
  bad[0] = (wksp_part_t){glo - 1, glo + 1, 1};
  int c5 = wksp_private_replace_check(w, bad, 1);
  int r1 = wksp_private_reset(w, 5);
  int r2 = wksp_private_replace(w, p, 4, 77);
  int r3 = wksp_private_replace(w, bad, 1, 78); /* refused: nothing changes */
  wksp_private_unlock(w);
  CHECK_OK(c1);
  CHECK_ERR(c2, WKSP_ERR_INVAL);
  CHECK_ERR(c3, WKSP_ERR_INVAL);
  CHECK_ERR(c4, WKSP_ERR_INVAL);
  CHECK_ERR(c5, WKSP_ERR_INVAL);
  CHECK_OK(r1);
  CHECK_OK(r2);
  CHECK_ERR(r3, WKSP_ERR_INVAL);
  CHECK_EQ(wksp_seed(w), 77);
  CHECK_OK(wksp_verify(w));
  wksp_part_t out[8];
  size_t cnt;
  CHECK_OK(wksp_part_list(w, out, 8, &cnt));
  CHECK_EQ(cnt, 6); /* 4 allocations, 2 gaps */
  CHECK_EQ(out[0].tag, 1);
  CHECK_EQ(out[2].tag, 0);
  CHECK_EQ(out[5].gaddr_hi, ghi);
  /* part_max 8 but 9 records needed: FULL. */
  wksp_part_t many[5];
  for (int i = 0; i < 5; i++) many[i] = (wksp_part_t){glo + 10 + 20 * (uint64_t)i, glo + 20 + 20 * (uint64_t)i, 1};
  CHECK_OK(wksp_private_lock(w));
  r = wksp_private_replace_check(w, many, 5);
  wksp_private_unlock(w);
  CHECK_ERR(r, WKSP_ERR_FULL);
  CHECK(strstr(wksp_errmsg(), "part_max 8"));
}

int main(void) {
  TEST_RUN(test_footprint);
  TEST_RUN(test_estimates);
  TEST_RUN(test_new_join_delete);
  TEST_RUN(test_laddr_gaddr);
  TEST_RUN(test_alloc_basic);
  TEST_RUN(test_alloc_large_align);
  TEST_RUN(test_part_records_exhausted);
  TEST_RUN(test_full_names_records);
  TEST_RUN(test_tag_query_free_usage);
  TEST_RUN(test_memset);
  TEST_RUN(test_part_find);
  TEST_RUN(test_home_slots);
  TEST_RUN(test_verify_detects);
  TEST_RUN(test_check_repairs);
  TEST_RUN(test_journal_bit_damage);
  TEST_RUN(test_same_size_list);
  TEST_RUN(test_self_repair);
  TEST_RUN(test_garbage_no_crash);
  TEST_RUN(test_free_bins);
  TEST_RUN(test_rebuild);
  TEST_RUN(test_rebuild_merges);
  TEST_RUN(test_verify_lost_record);
  TEST_RUN(test_rebuild_paths_agree);
  TEST_RUN(test_rdonly);
  TEST_RUN(test_prefault);
  TEST_RUN(test_prefault_parts);
  TEST_RUN(test_rdonly_stuck_writer);
  TEST_RUN(test_lock_info);
  TEST_RUN(test_private_interface);
  if (shm_dir[0]) rmdir(shm_dir);
  return test_done();
}
