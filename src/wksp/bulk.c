/* Rebuild from the records, and the journaled bulk operations (tag_free,
 * reset, replace).  Design: wksp_private.h. */
#include "wksp_private.h"
#include "util/err.h"

#include <stdlib.h>

#define NUL WKSP_IDX_NULL

/* ---- rebuild ----------------------------------------------------------- */

static int cmp_lo(const void *a, const void *b, void *ctx) {
  const wksp_rec_t *rec = ctx;
  uint64_t x = rec[*(const uint32_t *)a].lo, y = rec[*(const uint32_t *)b].lo;
  return (x > y) - (x < y);
}

/* The active records sorted by lo, checked: in range, distinct, record 0
 * first at gaddr_lo, and (unless recompute_hi) allocated records ending
 * exactly where their successor starts.  *idx is malloc'd. */
static int active_sorted(const wksp_t *w, int recompute_hi, uint32_t **idx_out, uint64_t *cnt_out) {
  const wksp_rec_t *rec = wksp_private_rec(w);
  uint64_t n = w->part_max, glo = wksp_gaddr_lo(w), ghi = wksp_gaddr_hi(w), cnt = 0;
  *idx_out = NULL;
  for (uint64_t i = 0; i < n; i++) cnt += rec[i].lo != 0;
  if (!cnt || !rec[0].lo) return wksp_err_in(WKSP_ERR_CORRUPT, 0, "rebuild", "record 0 (the lowest partition) is idle");
  uint32_t *idx = malloc(cnt * sizeof *idx);
  if (!idx) return wksp_err_in(WKSP_ERR_NOMEM, 0, "rebuild", "no memory for %lu record indices", (unsigned long)cnt);
  for (uint64_t i = 0, k = 0; i < n; i++)
    if (rec[i].lo) idx[k++] = (uint32_t)i;
  qsort_r(idx, cnt, sizeof *idx, cmp_lo, (void *)rec);
  int r = WKSP_SUCCESS;
  if (idx[0] != 0 || rec[0].lo != glo) {
    r = wksp_err_in(WKSP_ERR_CORRUPT, 0, "rebuild",
                    "record 0 starts at %lu, the data region at %lu (lowest is record %u)", (unsigned long)rec[0].lo,
                    (unsigned long)glo, idx[0]);
    goto done;
  }
  for (uint64_t k = 0; k < cnt; k++) {
    const wksp_rec_t *p = &rec[idx[k]];
    uint64_t end = k + 1 < cnt ? rec[idx[k + 1]].lo : ghi;
    if (p->lo < glo || p->lo >= ghi) {
      r = wksp_err_in(WKSP_ERR_CORRUPT, 0, "rebuild", "record %u starts at %lu, outside the data region [%lu,%lu)",
                      idx[k], (unsigned long)p->lo, (unsigned long)glo, (unsigned long)ghi);
      goto done;
    }
    if (end == p->lo) {
      r = wksp_err_in(WKSP_ERR_CORRUPT, 0, "rebuild", "records %u and %u both start at %lu", idx[k], idx[k + 1],
                      (unsigned long)p->lo);
      goto done;
    }
    if (!recompute_hi && p->tag && p->hi != end) {
      r = wksp_err_in(WKSP_ERR_CORRUPT, 0, "rebuild",
                      "allocation record %u [%lu,%lu) tag %lu %s the next partition at %lu", idx[k],
                      (unsigned long)p->lo, (unsigned long)p->hi, (unsigned long)p->tag,
                      p->hi > end ? "overlaps" : "leaves a gap before", (unsigned long)end);
      goto done;
    }
  }
  /* Ends are only ever set from the data region's end, so the last one
   * past it means the header's data_max shrank (or that end is damaged):
   * the truth disagrees, and recomputing would cut the data region. */
  const wksp_rec_t *last = &rec[idx[cnt - 1]];
  if (last->hi > ghi)
    r = wksp_err_in(WKSP_ERR_CORRUPT, 0, "rebuild",
                    "the last partition (record %u) ends at %lu, past the data region's end %lu: the "
                    "header's data_max %lu or that record is damaged",
                    idx[cnt - 1], (unsigned long)last->hi, (unsigned long)ghi, (unsigned long)w->data_max);
done:
  if (r) free(idx);
  else {
    *idx_out = idx;
    *cnt_out = cnt;
  }
  return r;
}

int wksp_private_rebuild(wksp_t *w, int recompute_hi, uint32_t seed) {
  uint32_t *idx = NULL;
  uint64_t cnt = 0;
  int r = active_sorted(w, recompute_hi, &idx, &cnt);
  if (r) return r;
  /* From here on nothing can fail. */
  wksp_rec_t *rec = wksp_private_rec(w);
  w->seed = seed;
  uint64_t keep = 0;
  int merged = 0;
  for (uint64_t k = 0; k < cnt; k++) {
    uint32_t i = idx[k];
    if (keep && !rec[i].tag && !rec[idx[keep - 1]].tag) {
      __atomic_store_n(&rec[i].lo, 0, __ATOMIC_RELEASE);
      if (!merged++) wksp_private_hook(WKSP_HOOK_REBUILD_MERGE);
      continue;
    }
    idx[keep++] = i;
  }
  uint64_t ghi = wksp_gaddr_hi(w);
  for (uint64_t k = 0; k < keep; k++) {
    wksp_rec_t *p = &rec[idx[k]];
    p->prev = k ? idx[k - 1] : NUL;
    p->next = k + 1 < keep ? idx[k + 1] : NUL;
    p->hi = k + 1 < keep ? rec[idx[k + 1]].lo : ghi;
    p->left = p->right = p->parent = p->same = NUL;
  }
  w->used_root = w->idle_top = NUL;
  wksp_private_bins_clear(w);
  for (uint64_t i = w->part_max; i-- > 0;) {
    wksp_rec_t *p = &rec[i];
    if (p->lo) continue;
    p->tag = p->hi = 0;
    p->prev = p->next = p->right = p->parent = p->same = NUL;
    p->left = w->idle_top;
    if (w->idle_top != NUL) rec[w->idle_top].right = (uint32_t)i;
    w->idle_top = (uint32_t)i;
  }
  wksp_private_hook(WKSP_HOOK_REBUILD_INDEX);
  for (uint64_t k = 0; k < keep && !r; k++) r = wksp_private_treap_insert(w, idx[k], !rec[idx[k]].tag);
  free(idx);
  if (r) return r;
  wksp_private_hook(WKSP_HOOK_REBUILD_END);
  return WKSP_SUCCESS;
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
      return wksp_err(WKSP_ERR_CORRUPT, 0, "journal: shadow of record %lu is [%lu, tag %lu), not a partition of [%lu,%lu)",
                      (unsigned long)i, (unsigned long)lo, (unsigned long)rec[i].new_tag, (unsigned long)glo,
                      (unsigned long)ghi);
    cnt += lo != 0;
  }
  if (!cnt) return WKSP_SUCCESS;
  uint64_t *los = malloc(cnt * sizeof *los);
  if (!los) return wksp_err(WKSP_ERR_NOMEM, 0, "journal: no memory for %lu shadow starts", (unsigned long)cnt);
  for (uint64_t i = 1, k = 0; i < n; i++)
    if (rec[i].new_lo) los[k++] = rec[i].new_lo;
  qsort(los, cnt, sizeof *los, cmp_u64);
  int r = WKSP_SUCCESS;
  for (uint64_t k = 1; k < cnt && !r; k++)
    if (los[k] == los[k - 1])
      r = wksp_err(WKSP_ERR_CORRUPT, 0, "journal: two shadows start at %lu", (unsigned long)los[k]);
  free(los);
  return r;
}

/* Lock held, shadows written by the caller inside write_begin: commits,
 * applies, rebuilds, clears the journal. */
static int bulk_commit(wksp_t *w, uint32_t seed) {
  wksp_rec_t *rec = wksp_private_rec(w);
  rec[0].new_lo = seed; /* record 0's shadow lo is implied: gaddr_lo */
  __atomic_store_n(&w->gen, w->gen | WKSP_GEN_JOURNAL, __ATOMIC_RELEASE);
  wksp_private_hook(WKSP_HOOK_BULK_COMMIT);
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
  w->seed = seed;
  /* Applied: the rebuild overwrites the shadows (the free index lives
   * there), so from here recovery rebuilds from the records, recomputing
   * ends, instead of replaying (gen stays odd until write_end). */
  __atomic_store_n(&w->gen, (w->gen & ~(uint32_t)WKSP_GEN_JOURNAL) | WKSP_GEN_APPLIED, __ATOMIC_RELEASE);
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
  if (cnt && !parts) return wksp_err_in(WKSP_ERR_INVAL, 0, "replace", "NULL parts with cnt %lu", (unsigned long)cnt);
  uint64_t glo = wksp_gaddr_lo(w), ghi = wksp_gaddr_hi(w), pos = glo, gaps = 0;
  for (uint64_t k = 0; k < cnt; k++) {
    const wksp_part_t *p = &parts[k];
    if (!p->tag)
      return wksp_err_in(WKSP_ERR_INVAL, 0, "replace", "partition %lu [%lu,%lu) has tag 0", (unsigned long)k,
                         (unsigned long)p->gaddr_lo, (unsigned long)p->gaddr_hi);
    if (p->gaddr_lo >= p->gaddr_hi)
      return wksp_err_in(WKSP_ERR_INVAL, 0, "replace", "partition %lu [%lu,%lu) is empty or reversed", (unsigned long)k,
                         (unsigned long)p->gaddr_lo, (unsigned long)p->gaddr_hi);
    if (p->gaddr_lo < pos)
      return wksp_err_in(WKSP_ERR_INVAL, 0, "replace", "partition %lu [%lu,%lu) %s %lu", (unsigned long)k,
                         (unsigned long)p->gaddr_lo, (unsigned long)p->gaddr_hi,
                         k ? "overlaps or precedes the previous one ending at" : "starts below the data region at",
                         (unsigned long)pos);
    if (p->gaddr_hi > ghi)
      return wksp_err_in(WKSP_ERR_INVAL, 0, "replace", "partition %lu [%lu,%lu) ends past the data region end %lu",
                         (unsigned long)k, (unsigned long)p->gaddr_lo, (unsigned long)p->gaddr_hi, (unsigned long)ghi);
    gaps += p->gaddr_lo > pos;
    pos = p->gaddr_hi;
  }
  gaps += pos < ghi;
  if (cnt + gaps > w->part_max)
    return wksp_err_in(WKSP_ERR_FULL, 0, "replace",
                       "%lu allocations and %lu free gaps need %lu partition records, \"%.39s\" has part_max %u",
                       (unsigned long)cnt, (unsigned long)gaps, (unsigned long)(cnt + gaps), w->name, w->part_max);
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
