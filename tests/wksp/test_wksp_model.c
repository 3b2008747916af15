/* Randomized model test: >= 10^5 random alloc / free / tag_free / reset /
 * rebuild operations against a trivially correct model (a sorted array of
 * partitions that does best fit, splitting and merging by brute force).  The
 * model predicts every result exactly (address, extent, FULL, INVAL), and
 * after every batch the workspace's partitions, usage, tag queries and
 * wksp_verify must agree with it. */
#include "../lib/test.h"
#include "../../src/wksp/wksp_private.h"

#include <sys/mman.h>

enum { MODEL_MAX = 8192, OPS = 120000, BATCH = 400 };

/* A partition of the model; free ones carry the reference's same-size
 * bookkeeping: the first indexed free partition of a size is the "node",
 * later ones are list members stamped in insertion order (best fit takes
 * the newest member, else the node; removing the node promotes the newest
 * member). */
typedef struct {
  wksp_part_t p;
  int indexed, node;
  uint64_t stamp;
} entry_t;

typedef struct {
  entry_t e[MODEL_MAX];
  size_t n;
  uint64_t part_max, clock;
} model_t;

static uint64_t esz(const entry_t *e) { return e->p.gaddr_hi - e->p.gaddr_lo; }

static void free_add(model_t *m, size_t i) {
  int have = 0;
  for (size_t j = 0; j < m->n; j++) have |= m->e[j].indexed && esz(&m->e[j]) == esz(&m->e[i]);
  m->e[i].indexed = 1;
  m->e[i].node = !have;
  m->e[i].stamp = ++m->clock;
}

/* The newest indexed list member of size sz (SIZE_MAX if none). */
static size_t newest_member(const model_t *m, uint64_t sz) {
  size_t best = SIZE_MAX;
  for (size_t j = 0; j < m->n; j++)
    if (m->e[j].indexed && !m->e[j].node && esz(&m->e[j]) == sz &&
        (best == SIZE_MAX || m->e[j].stamp > m->e[best].stamp))
      best = j;
  return best;
}

static void free_del(model_t *m, size_t i) {
  m->e[i].indexed = 0;
  if (!m->e[i].node) return;
  size_t h = newest_member(m, esz(&m->e[i]));
  if (h != SIZE_MAX) m->e[h].node = 1;
}

/* After a rebuild: free partitions re-enter the index in address order. */
static void model_restamp(model_t *m) {
  for (size_t i = 0; i < m->n; i++) m->e[i].indexed = 0;
  for (size_t i = 0; i < m->n; i++)
    if (!m->e[i].p.tag) free_add(m, i);
}

static void model_reset(model_t *m, wksp_t *w) {
  m->n = 1;
  m->e[0] = (entry_t){.p = {wksp_gaddr_lo(w), wksp_gaddr_hi(w), 0}, .indexed = 1, .node = 1};
  m->part_max = wksp_part_max(w);
}

static void model_insert(model_t *m, size_t at, wksp_part_t p) {
  memmove(&m->e[at + 1], &m->e[at], (m->n - at) * sizeof m->e[0]);
  m->e[at] = (entry_t){.p = p};
  m->n++;
}

static void model_remove(model_t *m, size_t at) {
  memmove(&m->e[at], &m->e[at + 1], (m->n - at - 1) * sizeof m->e[0]);
  m->n--;
}

/* Frees partition i as the allocator does: absorb a free successor, then
 * merge into a free predecessor, then index the result. */
static void model_free(model_t *m, size_t i) {
  if (i + 1 < m->n && !m->e[i + 1].p.tag) {
    free_del(m, i + 1);
    m->e[i].p.gaddr_hi = m->e[i + 1].p.gaddr_hi;
    model_remove(m, i + 1);
  }
  if (i > 0 && !m->e[i - 1].p.tag) {
    free_del(m, i - 1);
    m->e[i - 1].p.gaddr_hi = m->e[i].p.gaddr_hi;
    model_remove(m, i);
    i--;
  }
  m->e[i].p.tag = 0;
  free_add(m, i);
}

/* tag_free / reset / rebuild: merge everything, then rebuild the index. */
static void model_merge(model_t *m) {
  size_t k = 0;
  for (size_t i = 0; i < m->n; i++) {
    if (k && !m->e[i].p.tag && !m->e[k - 1].p.tag) m->e[k - 1].p.gaddr_hi = m->e[i].p.gaddr_hi;
    else m->e[k++] = m->e[i];
  }
  m->n = k;
  model_restamp(m);
}

/* Predicts an allocation: returns 0 and the expected gaddr/extent, or FULL. */
static int model_alloc(model_t *m, uint64_t align, uint64_t sz, uint64_t tag, uint64_t *g, uint64_t *lo,
                       uint64_t *hi) {
  if (!align) align = 4096;
  if (sz > UINT64_MAX - (align - 1)) return WKSP_ERR_FULL;
  uint64_t need = sz + align - 1, fit = UINT64_MAX;
  for (size_t i = 0; i < m->n; i++)
    if (!m->e[i].p.tag && esz(&m->e[i]) >= need && esz(&m->e[i]) < fit) fit = esz(&m->e[i]);
  if (fit == UINT64_MAX) return WKSP_ERR_FULL;
  size_t best = newest_member(m, fit);
  for (size_t i = 0; best == SIZE_MAX && i < m->n; i++)
    if (m->e[i].indexed && m->e[i].node && esz(&m->e[i]) == fit) best = i;
  free_del(m, best);
  wksp_part_t f = m->e[best].p;
  uint64_t r0 = (f.gaddr_lo + align - 1) & ~(align - 1), r1 = r0 + sz, idle = m->part_max - m->n;
  int head = r0 > f.gaddr_lo && idle > 0;
  idle -= (uint64_t)head;
  int tail = r1 < f.gaddr_hi && idle > 0;
  *g = r0;
  *lo = head ? r0 : f.gaddr_lo;
  *hi = tail ? r1 : f.gaddr_hi;
  m->e[best] = (entry_t){.p = {*lo, *hi, tag}};
  if (tail) model_insert(m, best + 1, (wksp_part_t){r1, f.gaddr_hi, 0});
  if (head) {
    model_insert(m, best, (wksp_part_t){f.gaddr_lo, r0, 0});
    free_add(m, best);
    best++;
  }
  if (tail) free_add(m, best + 1);
  return 0;
}

static size_t model_find(const model_t *m, uint64_t g) {
  for (size_t i = 0; i < m->n; i++)
    if (g >= m->e[i].p.gaddr_lo && g < m->e[i].p.gaddr_hi) return i;
  return SIZE_MAX;
}

static int tag_in(uint64_t tag, const uint64_t *tags, size_t cnt) {
  for (size_t i = 0; i < cnt; i++)
    if (tags[i] == tag) return 1;
  return 0;
}

static wksp_part_t got[MODEL_MAX];

/* Everything observable agrees with the model. */
static int model_check(const model_t *m, wksp_t *w, uint64_t *rng) {
  if (wksp_verify(w)) return fprintf(stderr, "verify: %s\n", wksp_errmsg()), 0;
  size_t cnt;
  if (wksp_part_list(w, got, MODEL_MAX, &cnt) || cnt != m->n)
    return fprintf(stderr, "part_list: %zu partitions, model %zu\n", cnt, m->n), 0;
  for (size_t i = 0; i < cnt; i++)
    if (memcmp(&got[i], &m->e[i].p, sizeof got[i]))
      return fprintf(stderr,
                     "partition %zu: [%" PRIu64 ",%" PRIu64 ") tag %" PRIu64 ", model [%" PRIu64 ",%" PRIu64
                     ") tag %" PRIu64 "\n",
                     i, got[i].gaddr_lo, got[i].gaddr_hi, got[i].tag, m->e[i].p.gaddr_lo, m->e[i].p.gaddr_hi,
                     m->e[i].p.tag), 0;
  uint64_t tags[3] = {1 + test_rng(rng) % 6, 1 + test_rng(rng) % 6, 1 + test_rng(rng) % 6};
  size_t tag_cnt = 1 + test_rng(rng) % 3;
  wksp_usage_t u;
  if (wksp_usage(w, tags, tag_cnt, &u)) return fprintf(stderr, "usage: %s\n", wksp_errmsg()), 0;
  wksp_usage_t want = {.total_max = m->part_max, .total_cnt = m->n, .total_sz = wksp_data_max(w)};
  size_t q = 0;
  for (size_t i = 0; i < m->n; i++) {
    uint64_t s = m->e[i].p.gaddr_hi - m->e[i].p.gaddr_lo;
    if (!m->e[i].p.tag) {
      want.free_cnt++;
      want.free_sz += s;
      if (s > want.free_max) want.free_max = s;
    } else if (tag_in(m->e[i].p.tag, tags, tag_cnt)) {
      want.used_cnt++;
      want.used_sz += s;
      q++;
    }
  }
  if (memcmp(&u, &want, sizeof u)) return fprintf(stderr, "usage differs from the model\n"), 0;
  if (wksp_tag_query(w, tags, tag_cnt, got, MODEL_MAX, &cnt) || cnt != q)
    return fprintf(stderr, "tag_query: %zu, model %zu\n", cnt, q), 0;
  for (size_t i = 0, k = 0; i < m->n; i++)
    if (m->e[i].p.tag && tag_in(m->e[i].p.tag, tags, tag_cnt) && memcmp(&got[k++], &m->e[i].p, sizeof got[0]))
      return fprintf(stderr, "tag_query entry %zu differs\n", k - 1), 0;
  return 1;
}

static uint64_t rand_size(uint64_t *rng) {
  uint64_t r = test_rng(rng) % 10;
  if (r < 4) return 1 + test_rng(rng) % 64;
  if (r < 8) return 1 + test_rng(rng) % 4096;
  return 1 + test_rng(rng) % 65536;
}

static uint64_t rand_align(uint64_t *rng) {
  uint64_t r = test_rng(rng) % 20;
  if (r < 4) return 0;
  if (r == 19) return 1ull << (20 + test_rng(rng) % 44); /* mostly unsatisfiable */
  return 1ull << (test_rng(rng) % 17);
}

static model_t model;

static void test_model(void) {
  uint64_t rng = test_seed();
  /* part_max picks the free index's geometry: one bin (3, 8), coarse bins
   * (32, 128, 1024), and (8192) a bitmap of more than 64 words, whose
   * searches cross level-1 and level-2 words. */
  static const uint64_t pmax[] = {3, 8, 32, 128, 1024, 8192};
  static const uint64_t dmax[] = {1 << 16, 1 << 18, 1 << 20, 3 << 20};
  uint64_t ops = 0, allocs = 0, fulls = 0, frees = 0, bad = 0;
  void *mem = NULL;
  size_t mem_sz = 0;
  while (ops < OPS) {
    uint64_t part_max = pmax[test_rng(&rng) % 6], data_max = dmax[test_rng(&rng) % 4] + test_rng(&rng) % 999;
    if (mem) munmap(mem, mem_sz);
    mem_sz = wksp_footprint(part_max, data_max);
    mem = mmap(NULL, mem_sz, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    CHECK(mem != MAP_FAILED);
    wksp_t *w;
    CHECK_OK(wksp_new(mem, "model", (uint32_t)test_rng(&rng), part_max, data_max, &w));
    model_reset(&model, w);
    for (int batch = 0; batch < 25 && ops < OPS; batch++) {
      for (int k = 0; k < BATCH; k++, ops++) {
        uint64_t r = test_rng(&rng) % 1000;
        if (r < 560) {
          uint64_t align = rand_align(&rng), sz = rand_size(&rng), tag = 1 + test_rng(&rng) % 6;
          uint64_t g, lo, hi, eg = 0, elo = 0, ehi = 0;
          int want = model_alloc(&model, align, sz, tag, &eg, &elo, &ehi);
          int got_r = wksp_alloc_at_least(w, align, sz, tag, &g, &lo, &hi);
          if (got_r != want || (!want && (g != eg || lo != elo || hi != ehi)))
            fprintf(stderr,
                    "op %" PRIu64 ": alloc(align %" PRIu64 ", sz %" PRIu64 ") = %d [%" PRIu64 " %" PRIu64 ",%" PRIu64
                    "), model %d [%" PRIu64 " %" PRIu64 ",%" PRIu64 ")\n",
                    ops, align, sz, got_r, g, lo, hi, want, eg, elo, ehi);
          CHECK_EQ(got_r, want);
          if (!want) CHECK(g == eg && lo == elo && hi == ehi);
          allocs += !want;
          fulls += want != 0;
        } else if (r < 950) {
          /* Mostly a random address inside an allocation; sometimes free
           * space or outside (INVAL). */
          uint64_t g;
          size_t i = test_rng(&rng) % model.n;
          for (size_t s = 0; s < model.n && !model.e[i].p.tag && test_rng(&rng) % 8; s++) i = (i + 1) % model.n;
          wksp_part_t p = model.e[i].p;
          g = p.gaddr_lo + test_rng(&rng) % (p.gaddr_hi - p.gaddr_lo);
          if (test_rng(&rng) % 50 == 0) g = test_rng(&rng) % (wksp_gaddr_hi(w) + 100);
          size_t at = model_find(&model, g);
          int want = (at == SIZE_MAX || !model.e[at].p.tag) ? WKSP_ERR_INVAL : 0;
          CHECK_ERR(wksp_free(w, g), want);
          if (!want) model_free(&model, at);
          frees += !want;
          bad += want != 0;
        } else if (r < 990) {
          uint64_t g;
          wksp_part_t p = model.e[test_rng(&rng) % model.n].p;
          g = p.gaddr_lo + test_rng(&rng) % (p.gaddr_hi - p.gaddr_lo);
          uint64_t t;
          CHECK_OK(wksp_tag(w, g, &t));
          CHECK_EQ(t, p.tag);
        } else if (r < 996) {
          uint64_t tags[2] = {1 + test_rng(&rng) % 6, 1 + test_rng(&rng) % 6};
          CHECK_OK(wksp_tag_free(w, tags, 2));
          for (size_t i = 0; i < model.n; i++)
            if (tag_in(model.e[i].p.tag, tags, 2)) model.e[i].p.tag = 0;
          model_merge(&model);
        } else if (r < 999) {
          CHECK_OK(wksp_rebuild(w, (uint32_t)test_rng(&rng)));
          model_restamp(&model);
        } else {
          CHECK_OK(wksp_reset(w, (uint32_t)test_rng(&rng)));
          model_reset(&model, w);
        }
      }
      CHECK(model_check(&model, w, &rng));
    }
  }
  munmap(mem, mem_sz);
  fprintf(stderr, "model: %" PRIu64 " ops, %" PRIu64 " allocs, %" PRIu64 " FULL, %" PRIu64 " frees, %" PRIu64
          " bad frees\n", ops, allocs, fulls, frees, bad);
  CHECK(allocs > OPS / 4 && fulls > 100 && frees > OPS / 5 && bad > 100);
}

int main(void) {
  TEST_RUN(test_model);
  return test_done();
}
