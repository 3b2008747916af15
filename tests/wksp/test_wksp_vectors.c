/* Replays the allocation sequence that produced each reference vector
 * (vectors/README.md, "How the data was generated") on a workspace of the
 * same part_max / data_max / seed and compares the resulting allocated
 * partitions and usage with the manifest written by the reference
 * allocator (Firedancer fd_wksp).
 *
 * Draw order per attempt, recovered from the vectors: size class, size,
 * alignment choice (0 = default, k = 2^(k-1)), tag; then one draw per
 * attempt (failed ones included) frees a successful allocation with
 * probability 30%.
 *
 * Every vector's allocated partitions and usage figures must come out
 * identical, which pins the whole policy: best fit, trimming, record
 * exhaustion, merging, and the choice among free partitions of equal size
 * (same-size lists in the reference's order).
 *
 * Vectors: $WKSP_VECTORS, else tests/vectors (relative to the repository
 * root, where the tests run). */
#include "../lib/test.h"
#include "wksp/wksp.h"

#include <sys/mman.h>

typedef struct {
  const char *name;
} vector_t;

static const vector_t vectors[] = {{"v2-empty"}, {"v2-random"}, {"v3-single"}, {"v3-zeros"},
                                   {"v1-text"},  {"v3-mixed"},  {"v3-text"}};

enum { PARTS_MAX = 4096 };

static char *slurp(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  static char buf[1 << 20];
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = 0;
  return buf;
}

static const char *vectors_dir(void) {
  const char *e = getenv("WKSP_VECTORS");
  const char *d = e && *e ? e : "tests/vectors";
  char p[4096];
  snprintf(p, sizeof p, "%s/README.md", d);
  FILE *f = fopen(p, "r");
  if (!f) return NULL;
  fclose(f);
  return d;
}

/* The unsigned number after "key": at or after `from`. */
static int num(const char *from, const char *key, uint64_t *out) {
  char k[64];
  snprintf(k, sizeof k, "\"%s\":", key);
  const char *p = strstr(from, k);
  if (!p) return 0;
  *out = strtoull(p + strlen(k), NULL, 10);
  return 1;
}

static uint64_t draw(uint64_t *s) { return test_rng(s); }

typedef struct {
  uint64_t seed, part_max, data_max, rng_seed, attempts, tag_max, pad, used_cnt, used_sz, free_cnt, total_cnt;
  int mode; /* 0 mix, 1 small, 2 nolarge, 3 big */
  wksp_part_t parts[PARTS_MAX];
  size_t n;
} manifest_t;

static int manifest_load(const char *dir, const char *name, manifest_t *m) {
  char path[512];
  snprintf(path, sizeof path, "%s/%s.json", dir, name);
  const char *j = slurp(path);
  if (!j) return 0;
  const char *w = strstr(j, "\"wksp\":"), *g = strstr(j, "\"generator\":"), *u = strstr(j, "\"usage\":");
  if (!w || !g || !u) return 0;
  int ok = num(w, "seed", &m->seed) && num(w, "part_max", &m->part_max) && num(w, "data_max", &m->data_max) &&
           num(g, "rng_seed", &m->rng_seed) && num(g, "n_alloc_attempts", &m->attempts) &&
           num(g, "tag_max", &m->tag_max) && num(g, "pad", &m->pad) && num(u, "used_cnt", &m->used_cnt) &&
           num(u, "used_sz", &m->used_sz) && num(u, "free_cnt", &m->free_cnt) && num(u, "total_cnt", &m->total_cnt);
  m->mode = strstr(g, "\"size_mode\": \"mix\"") ? 0 : strstr(g, "\"size_mode\": \"small\"") ? 1
          : strstr(g, "\"size_mode\": \"nolarge\"") ? 2 : 3;
  m->n = 0;
  const char *p = strstr(j, "\"partitions\":");
  while (ok && p && (p = strstr(p, "{ \"tag\":")) && m->n < PARTS_MAX) {
    wksp_part_t *q = &m->parts[m->n++];
    ok = num(p, "tag", &q->tag) && num(p, "gaddr_lo", &q->gaddr_lo) && num(p, "gaddr_hi", &q->gaddr_hi);
    p++;
  }
  return ok;
}

static uint64_t size_draw(const manifest_t *m, uint64_t *s) {
  uint64_t c = draw(s) % 100;
  uint64_t med = m->data_max / 16 < 65536 ? m->data_max / 16 : 65536;
  uint64_t big = m->data_max / 4 < (8u << 20) ? m->data_max / 4 : (8u << 20);
  uint64_t max;
  switch (m->mode) {
  case 0: max = c < 70 ? 100 : c < 95 ? med : big; break;
  case 1: max = 100; break;
  case 2: max = c < 70 ? 100 : med; break;
  default: max = c < 50 ? med : big; break;
  }
  return 1 + draw(s) % max;
}

static size_t sym_diff(const wksp_part_t *a, size_t na, const wksp_part_t *b, size_t nb) {
  size_t d = 0;
  for (size_t i = 0; i < na; i++) {
    int found = 0;
    for (size_t k = 0; k < nb && !found; k++) found = !memcmp(&a[i], &b[k], sizeof *a);
    d += !found;
  }
  for (size_t i = 0; i < nb; i++) {
    int found = 0;
    for (size_t k = 0; k < na && !found; k++) found = !memcmp(&b[i], &a[k], sizeof *b);
    d += !found;
  }
  return d;
}

static manifest_t man;
static wksp_part_t got[PARTS_MAX];
static uint64_t gaddrs[PARTS_MAX];

static void replay(const char *dir, const vector_t *v) {
  CHECK(manifest_load(dir, v->name, &man));
  CHECK(man.tag_max && !man.pad && man.attempts <= PARTS_MAX); /* what this replay implements */
  size_t fp = wksp_footprint(man.part_max, man.data_max);
  void *mem = mmap(NULL, fp, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  CHECK(mem != MAP_FAILED);
  wksp_t *w;
  CHECK_OK(wksp_new(mem, "replay", (uint32_t)man.seed, man.part_max, man.data_max, &w));
  uint64_t s = man.rng_seed;
  for (uint64_t i = 0; i < man.attempts; i++) {
    uint64_t sz = size_draw(&man, &s), a = draw(&s) % 14, align = a ? 1ull << (a - 1) : 0;
    uint64_t tag = 1 + draw(&s) % man.tag_max;
    if (wksp_alloc(w, align, sz, tag, &gaddrs[i])) gaddrs[i] = 0;
  }
  for (uint64_t i = 0; i < man.attempts; i++)
    if (draw(&s) % 100 < 30 && gaddrs[i]) CHECK_OK(wksp_free(w, gaddrs[i]));
  CHECK_OK(wksp_verify(w));
  size_t n = 0, all;
  wksp_part_t *list = malloc(sizeof *list * man.part_max);
  CHECK(list);
  int r = wksp_part_list(w, list, man.part_max, &all);
  for (size_t i = 0; !r && i < all; i++)
    if (list[i].tag && n < PARTS_MAX) got[n++] = list[i];
  free(list);
  wksp_usage_t u;
  CHECK_OK(r);
  CHECK_OK(wksp_usage(w, NULL, 0, &u));
  munmap(mem, fp);
  size_t d = sym_diff(got, n, man.parts, man.n);
  if (d) fprintf(stderr, "%s: %zu partitions differ from the reference\n", v->name, d);
  CHECK_EQ(d, 0);
  CHECK_EQ(n, man.n);
  CHECK_EQ(u.used_cnt, man.used_cnt);
  CHECK_EQ(u.used_sz, man.used_sz);
  CHECK_EQ(u.free_cnt, man.free_cnt);
  CHECK_EQ(u.total_cnt, man.total_cnt);
}

static void test_reference_layouts(void) {
  const char *dir = vectors_dir();
  if (!dir) fprintf(stderr, "reference vectors not found in tests/vectors (run from the repo root) or $WKSP_VECTORS\n");
  CHECK(dir);
  for (size_t i = 0; i < sizeof vectors / sizeof vectors[0]; i++) {
    replay(dir, &vectors[i]);
    if (test_cur_failed) {
      fprintf(stderr, "vector %s\n", vectors[i].name);
      return;
    }
  }
}

int main(void) {
  TEST_RUN(test_reference_layouts);
  return test_done();
}
