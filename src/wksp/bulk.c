/* Rebuild from the records, and the journaled bulk operations (tag_free,
 * reset, replace).  Design: wksp_private.h. */
#include "wksp_private.h"
#include "util/err.h"

#include <inttypes.h>
#include <stdlib.h>

#define NUL WKSP_IDX_NULL

/* ---- rebuild ----------------------------------------------------------- */

static int cmp_lo(const void *a, const void *b, void *ctx) {
  const wksp_rec_t *rec = ctx;
  uint64_t x = rec[*(const uint32_t *)a].lo, y = rec[*(const uint32_t *)b].lo;
  return (x > y) - (x < y);
}

/* The active records' indices in index order (malloc'd, grown as found). */
typedef struct {
  uint32_t *idx;
  uint64_t cnt, cap;
} actives_t;

static int actives_add(actives_t *a, uint32_t i) {
  if (a->cnt == a->cap) {
    uint64_t cap = a->cap ? 2 * a->cap : 1024;
    uint32_t *idx = realloc(a->idx, cap * sizeof *idx);
    if (!idx) return wksp_err_in(WKSP_ERR_NOMEM, 0, "rebuild", "no memory for %" PRIu64 " record indices", cap);
    a->idx = idx;
    a->cap = cap;
  }
  a->idx[a->cnt++] = i;
  return WKSP_SUCCESS;
}

/* Idle stack being built in one ascending walk: the top is the lowest idle
 * record and each `left` leads to the next higher one (as a descending walk
 * pushing every idle record would leave it). */
typedef struct {
  wksp_t *w;
  uint32_t last;
} idle_chain_t;

static void idle_chain_add(idle_chain_t *c, uint32_t i) {
  wksp_rec_t *rec = wksp_private_rec(c->w), *p = &rec[i];
  p->tag = p->hi = 0;
  p->prev = p->next = p->left = p->parent = p->same = NUL;
  p->right = c->last;
  if (c->last == NUL) c->w->idle_top = i;
  else rec[c->last].left = i;
  c->last = i;
}

/* One walk over every record: with `a`, collects the active ones; with
 * `derive`, also writes what each record's derived state is regardless of
 * the others (an empty free index slot; an idle record's idle stack links).
 * Touching each record once matters: part_max records may be far more than
 * the partitions in use (64 bytes each, e.g. 256 MiB for 4 M). */
static int records_walk(wksp_t *w, actives_t *a, int derive) {
  wksp_rec_t *rec = wksp_private_rec(w);
  idle_chain_t c = {w, NUL};
  if (derive) {
    w->idle_top = NUL;
    w->bins = wksp_private_bins_pick(w->part_max, w->data_max);
  }
  for (uint64_t i = 0; i < w->part_max; i++) {
    if (derive) wksp_private_bin_slot_clear(&rec[i]);
    if (rec[i].lo) {
      if (a && actives_add(a, (uint32_t)i)) return WKSP_ERR_NOMEM;
    } else if (derive) {
      idle_chain_add(&c, (uint32_t)i);
    }
  }
  return WKSP_SUCCESS;
}

/* a's records (the active ones) sorted by lo, checked: in range, distinct,
 * record 0 first at gaddr_lo, and (unless recompute_hi) allocated records
 * ending exactly where their successor starts. */
static int actives_check(const wksp_t *w, int recompute_hi, actives_t *a) {
  const wksp_rec_t *rec = wksp_private_rec(w);
  uint64_t glo = wksp_gaddr_lo(w), ghi = wksp_gaddr_hi(w), cnt = a->cnt;
  uint32_t *idx = a->idx;
  if (!cnt || !rec[0].lo) return wksp_err_in(WKSP_ERR_CORRUPT, 0, "rebuild", "record 0 (the lowest partition) is idle");
  qsort_r(idx, cnt, sizeof *idx, cmp_lo, (void *)rec);
  if (idx[0] != 0 || rec[0].lo != glo)
    return wksp_err_in(WKSP_ERR_CORRUPT, 0, "rebuild",
                       "record 0 starts at %" PRIu64 ", the data region at %" PRIu64 " (lowest is record %u)",
                       rec[0].lo, glo, idx[0]);
  for (uint64_t k = 0; k < cnt; k++) {
    const wksp_rec_t *p = &rec[idx[k]];
    uint64_t end = k + 1 < cnt ? rec[idx[k + 1]].lo : ghi;
    if (p->lo < glo || p->lo >= ghi)
      return wksp_err_in(WKSP_ERR_CORRUPT, 0, "rebuild",
                         "record %u starts at %" PRIu64 ", outside the data region [%" PRIu64 ",%" PRIu64 ")", idx[k],
                         p->lo, glo, ghi);
    if (end == p->lo)
      return wksp_err_in(WKSP_ERR_CORRUPT, 0, "rebuild", "records %u and %u both start at %" PRIu64, idx[k], idx[k + 1],
                         p->lo);
    if (!recompute_hi && p->tag && p->hi != end)
      return wksp_err_in(WKSP_ERR_CORRUPT, 0, "rebuild",
                         "allocation record %u [%" PRIu64 ",%" PRIu64 ") tag %" PRIu64
                         " %s the next partition at %" PRIu64,
                         idx[k], p->lo, p->hi, p->tag, p->hi > end ? "overlaps" : "leaves a gap before", end);
  }
  /* Ends are only ever set from the data region's end, so the last one
   * past it means the header's data_max shrank (or that end is damaged):
   * the truth disagrees, and recomputing would cut the data region. */
  const wksp_rec_t *last = &rec[idx[cnt - 1]];
  if (last->hi > ghi)
    return wksp_err_in(WKSP_ERR_CORRUPT, 0, "rebuild",
                       "the last partition (record %u) ends at %" PRIu64 ", past the data region's end %" PRIu64
                       ": the header's data_max %" PRIu64 " or that record is damaged",
                       idx[cnt - 1], last->hi, ghi, w->data_max);
  return WKSP_SUCCESS;
}

/* Merges adjacent free partitions (deactivating all but the first of each
 * run) and returns how many records remain in idx. */
static uint64_t merge_free(wksp_t *w, uint32_t *idx, uint64_t cnt) {
  wksp_rec_t *rec = wksp_private_rec(w);
  uint64_t keep = 0, merged = 0;
  for (uint64_t k = 0; k < cnt; k++) {
    uint32_t i = idx[k];
    if (keep && !rec[i].tag && !rec[idx[keep - 1]].tag) {
      __atomic_store_n(&rec[i].lo, 0, __ATOMIC_RELEASE);
      if (!merged++) wksp_private_hook(WKSP_HOOK_REBUILD_MERGE);
      continue;
    }
    idx[keep++] = i;
  }
  return keep;
}

/* Rechains the idle stack over every idle record (after merges made more). */
static void idle_rechain(wksp_t *w) {
  wksp_rec_t *rec = wksp_private_rec(w);
  idle_chain_t c = {w, NUL};
  w->idle_top = NUL;
  for (uint64_t i = 0; i < w->part_max; i++)
    if (!rec[i].lo) idle_chain_add(&c, (uint32_t)i);
}

int wksp_private_rebuild(wksp_t *w, int recompute_hi, uint32_t seed) {
  actives_t a = {0};
  /* After a bulk apply the caller leaves gen odd on failure (the next lock
   * rebuilds again), so the walk that finds the active records may write
   * the derived state as it goes; otherwise nothing may change before the
   * checks pass, and the derived writes take a second walk. */
  int r = records_walk(w, &a, recompute_hi);
  if (!r) r = actives_check(w, recompute_hi, &a);
  if (r) goto done;
  /* From here on nothing can fail. */
  if (!recompute_hi) records_walk(w, NULL, 1);
  wksp_rec_t *rec = wksp_private_rec(w);
  w->seed = seed;
  uint64_t keep = merge_free(w, a.idx, a.cnt);
  if (keep != a.cnt) idle_rechain(w);
  uint64_t ghi = wksp_gaddr_hi(w);
  for (uint64_t k = 0; k < keep; k++) {
    wksp_rec_t *p = &rec[a.idx[k]];
    p->prev = k ? a.idx[k - 1] : NUL;
    p->next = k + 1 < keep ? a.idx[k + 1] : NUL;
    p->hi = k + 1 < keep ? rec[a.idx[k + 1]].lo : ghi;
    p->left = p->right = p->parent = p->same = NUL;
  }
  w->used_root = NUL;
  wksp_private_hook(WKSP_HOOK_REBUILD_INDEX);
  for (uint64_t k = 0; k < keep && !r; k++) r = wksp_private_treap_insert(w, a.idx[k], !rec[a.idx[k]].tag);
  if (!r) wksp_private_hook(WKSP_HOOK_REBUILD_END);
done:
  free(a.idx);
  return r;
}

int wksp_rebuild(wksp_t *w, uint32_t seed) {
  int r = wksp_private_lock(w);
  if (r) return wksp_err_wrap(r, "wksp_rebuild");
  uint32_t gen = w->gen;
  wksp_private_write_begin(w);
  r = wksp_private_rebuild(w, 0, seed);
  if (r) {
    /* Checks failed before any change: the metadata is as it was. */
    __atomic_store_n(&w->gen, gen, __ATOMIC_RELEASE);
    r = wksp_err_wrap(r, "wksp_rebuild");
  } else {
    wksp_private_write_end(w);
  }
  wksp_private_unlock(w);
  return r;
}

/* ---- journaled bulk operations ------------------------------------------ */

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return (x > y) - (x < y);
}

/* Writes one record's shadow; the crash point sits halfway through. */
static inline void shadow_set(wksp_t *w, uint64_t i, uint64_t lo, uint64_t tag) {
  wksp_rec_t *p = &wksp_private_rec(w)[i];
  p->new_lo = lo;
  p->new_tag = tag;
  if (i == w->part_max / 2) wksp_private_hook(WKSP_HOOK_BULK_SHADOW);
}

/* A committed journal always describes a valid layout: every shadow of
 * records 1.. is idle (lo 0, tag 0) or starts a partition strictly inside
 * the data region (record 0 keeps gaddr_lo), and no two start at the same
 * address.  Outside a bulk operation the shadows hold the free index, which
 * never passes this, so a journal bit set by damage is refused instead of
 * replaying the free index over the records. */
int wksp_private_journal_check(const wksp_t *w) {
  const wksp_rec_t *rec = wksp_private_rec(w);
  uint64_t n = w->part_max, glo = wksp_gaddr_lo(w), ghi = wksp_gaddr_hi(w), cnt = 0;
  for (uint64_t i = 1; i < n; i++) {
    uint64_t lo = rec[i].new_lo;
    if (lo ? lo <= glo || lo >= ghi : rec[i].new_tag != 0)
      return wksp_err(WKSP_ERR_CORRUPT, 0,
                      "journal: shadow of record %" PRIu64 " is [%" PRIu64 ", tag %" PRIu64
                      "), not a partition of [%" PRIu64 ",%" PRIu64 ")",
                      i, lo, rec[i].new_tag, glo, ghi);
    cnt += lo != 0;
  }
  if (!cnt) return WKSP_SUCCESS;
  uint64_t *los = malloc(cnt * sizeof *los);
  if (!los) return wksp_err(WKSP_ERR_NOMEM, 0, "journal: no memory for %" PRIu64 " shadow starts", cnt);
  for (uint64_t i = 1, k = 0; i < n; i++)
    if (rec[i].new_lo) los[k++] = rec[i].new_lo;
  qsort(los, cnt, sizeof *los, cmp_u64);
  int r = WKSP_SUCCESS;
  for (uint64_t k = 1; k < cnt && !r; k++)
    if (los[k] == los[k - 1])
      r = wksp_err(WKSP_ERR_CORRUPT, 0, "journal: two shadows start at %" PRIu64, los[k]);
  free(los);
  return r;
}

void wksp_private_journal_apply(wksp_t *w) {
  wksp_rec_t *rec = wksp_private_rec(w);
  int changed = 0;
  for (uint64_t i = 0; i < w->part_max; i++) {
    wksp_rec_t *p = &rec[i];
    uint64_t lo = wksp_private_shadow_lo(w, i);
    int differs = p->lo != lo || (lo && p->tag != p->new_tag);
    __atomic_store_n(&p->tag, p->new_tag, __ATOMIC_RELAXED);
    __atomic_store_n(&p->lo, lo, __ATOMIC_RELEASE);
    /* The crash point: right after the first real change. */
    if (differs && !changed++) wksp_private_hook(WKSP_HOOK_BULK_APPLY);
  }
  w->seed = (uint32_t)rec[0].new_lo;
  /* Applied: the rebuild overwrites the shadows (the free index lives
   * there), so from here recovery rebuilds from the records, recomputing
   * ends, instead of replaying (gen stays odd until write_end). */
  __atomic_store_n(&w->gen, (w->gen & ~(uint32_t)WKSP_GEN_JOURNAL) | WKSP_GEN_APPLIED, __ATOMIC_RELEASE);
}

/* Lock held, shadows written by the caller inside write_begin: commits,
 * applies, rebuilds, clears the journal. */
static int bulk_commit(wksp_t *w, uint32_t seed) {
  wksp_private_rec(w)[0].new_lo = seed; /* record 0's shadow lo is implied: gaddr_lo */
  __atomic_store_n(&w->gen, w->gen | WKSP_GEN_JOURNAL, __ATOMIC_RELEASE);
  wksp_private_hook(WKSP_HOOK_BULK_COMMIT);
  wksp_private_journal_apply(w);
  wksp_private_hook(WKSP_HOOK_BULK_APPLIED);
  int r = wksp_private_rebuild(w, 1, seed);
  if (r) return r; /* gen stays odd: the next lock rebuilds and retries */
  wksp_private_write_end(w);
  return WKSP_SUCCESS;
}

int wksp_private_reset(wksp_t *w, uint32_t seed) {
  wksp_private_write_begin(w);
  shadow_set(w, 0, wksp_gaddr_lo(w), 0);
  for (uint64_t i = 1; i < w->part_max; i++) shadow_set(w, i, 0, 0);
  return bulk_commit(w, seed);
}

int wksp_reset(wksp_t *w, uint32_t seed) {
  int r = wksp_private_lock(w);
  if (r) return wksp_err_wrap(r, "wksp_reset");
  r = wksp_private_reset(w, seed);
  wksp_private_unlock(w);
  return r ? wksp_err_wrap(r, "wksp_reset") : r;
}

int wksp_private_tagset_init(wksp_tagset_t *s, const uint64_t *tags, size_t cnt, const char *who) {
  *s = (wksp_tagset_t){.tags = tags, .cnt = cnt};
  if (cnt && !tags) return wksp_err_in(WKSP_ERR_INVAL, 0, who, "NULL tags with tag_cnt %zu", cnt);
  for (size_t i = 0; i < cnt; i++)
    if (!tags[i]) return wksp_err_in(WKSP_ERR_INVAL, 0, who, "tags[%zu] is 0 (free space has no tag)", i);
  if (cnt <= 8) return WKSP_SUCCESS;
  s->sorted = malloc(cnt * sizeof *s->sorted);
  if (!s->sorted) return wksp_err_in(WKSP_ERR_NOMEM, 0, who, "no memory for %zu tags", cnt);
  for (size_t i = 0; i < cnt; i++) s->sorted[i] = tags[i];
  qsort(s->sorted, cnt, sizeof *s->sorted, cmp_u64);
  return WKSP_SUCCESS;
}

void wksp_private_tagset_fini(wksp_tagset_t *s) { free(s->sorted); }

int wksp_private_tagset_has(const wksp_tagset_t *s, uint64_t tag) {
  if (!s->sorted) {
    for (size_t i = 0; i < s->cnt; i++)
      if (s->tags[i] == tag) return 1;
    return 0;
  }
  return bsearch(&tag, s->sorted, s->cnt, sizeof tag, cmp_u64) != NULL;
}

int wksp_tag_free(wksp_t *w, const uint64_t *tags, size_t tag_cnt) {
  if (!w) return wksp_err_in(WKSP_ERR_INVAL, 0, "wksp_tag_free", "NULL workspace");
  wksp_tagset_t s;
  int r = wksp_private_tagset_init(&s, tags, tag_cnt, "wksp_tag_free");
  if (r) return r;
  r = wksp_private_lock(w);
  if (r) {
    wksp_private_tagset_fini(&s);
    return wksp_err_wrap(r, "wksp_tag_free");
  }
  wksp_rec_t *rec = wksp_private_rec(w);
  uint64_t n = w->part_max, hits = 0;
  for (uint64_t i = 0; i < n; i++) hits += rec[i].lo && rec[i].tag && wksp_private_tagset_has(&s, rec[i].tag);
  if (hits) {
    wksp_private_write_begin(w);
    for (uint64_t i = 0; i < n; i++) {
      uint64_t lo = rec[i].lo, tag = lo ? rec[i].tag : 0;
      shadow_set(w, i, lo, tag && wksp_private_tagset_has(&s, tag) ? 0 : tag);
    }
    r = bulk_commit(w, w->seed);
  }
  wksp_private_unlock(w);
  wksp_private_tagset_fini(&s);
  return r ? wksp_err_wrap(r, "wksp_tag_free") : r;
}

/* ---- replace (checkpoint restore) ---------------------------------------- */

int wksp_private_replace_check(wksp_t *w, const wksp_part_t *parts, uint64_t cnt) {
  if (cnt && !parts) return wksp_err_in(WKSP_ERR_INVAL, 0, "replace", "NULL parts with cnt %" PRIu64, cnt);
  uint64_t glo = wksp_gaddr_lo(w), ghi = wksp_gaddr_hi(w), pos = glo, gaps = 0;
  for (uint64_t k = 0; k < cnt; k++) {
    const wksp_part_t *p = &parts[k];
    if (!p->tag)
      return wksp_err_in(WKSP_ERR_INVAL, 0, "replace", "partition %" PRIu64 " [%" PRIu64 ",%" PRIu64 ") has tag 0", k,
                         p->gaddr_lo, p->gaddr_hi);
    if (p->gaddr_lo >= p->gaddr_hi)
      return wksp_err_in(WKSP_ERR_INVAL, 0, "replace",
                         "partition %" PRIu64 " [%" PRIu64 ",%" PRIu64 ") is empty or reversed", k, p->gaddr_lo,
                         p->gaddr_hi);
    if (p->gaddr_lo < pos)
      return wksp_err_in(WKSP_ERR_INVAL, 0, "replace", "partition %" PRIu64 " [%" PRIu64 ",%" PRIu64 ") %s %" PRIu64, k,
                         p->gaddr_lo, p->gaddr_hi,
                         k ? "overlaps or precedes the previous one ending at" : "starts below the data region at",
                         pos);
    if (p->gaddr_hi > ghi)
      return wksp_err_in(WKSP_ERR_INVAL, 0, "replace",
                         "partition %" PRIu64 " [%" PRIu64 ",%" PRIu64 ") ends past the data region end %" PRIu64, k,
                         p->gaddr_lo, p->gaddr_hi, ghi);
    gaps += p->gaddr_lo > pos;
    pos = p->gaddr_hi;
  }
  gaps += pos < ghi;
  if (cnt + gaps > w->part_max)
    return wksp_err_in(WKSP_ERR_FULL, 0, "replace",
                       "%" PRIu64 " allocations and %" PRIu64 " free gaps need %" PRIu64
                       " partition records, \"%.39s\" has part_max %u",
                       cnt, gaps, cnt + gaps, w->name, w->part_max);
  return WKSP_SUCCESS;
}

int wksp_private_replace(wksp_t *w, const wksp_part_t *parts, uint64_t cnt, uint32_t seed) {
  int r = wksp_private_replace_check(w, parts, cnt);
  if (r) return r;
  wksp_private_write_begin(w);
  uint64_t pos = wksp_gaddr_lo(w), ghi = wksp_gaddr_hi(w), i = 0;
  for (uint64_t k = 0; k < cnt; k++) {
    if (parts[k].gaddr_lo > pos) shadow_set(w, i++, pos, 0);
    shadow_set(w, i++, parts[k].gaddr_lo, parts[k].tag);
    pos = parts[k].gaddr_hi;
  }
  if (pos < ghi) shadow_set(w, i++, pos, 0);
  for (; i < w->part_max; i++) shadow_set(w, i, 0, 0);
  return bulk_commit(w, seed);
}
