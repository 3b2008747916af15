/* The picture `wksp map` draws, as data (see map.h). */
#include "map.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Allocated bytes of one tag inside the cell being summarised; first is
 * where they start, for the tie-break. */
typedef struct {
  uint64_t tag, sz, first;
} piece_t;

static int piece_cmp(const void *a, const void *b) {
  const piece_t *x = a, *y = b;
  if (x->tag != y->tag) return x->tag < y->tag ? -1 : 1;
  return x->first < y->first ? -1 : x->first > y->first;
}

/* The tag with the most bytes among p[0..n) (address order), ties to the
 * one that starts first.  Sorts p. */
static uint64_t dominant(piece_t *p, size_t n) {
  if (n == 1) return p[0].tag;
  qsort(p, n, sizeof *p, piece_cmp);
  uint64_t best = 0, best_sz = 0, best_first = UINT64_MAX;
  for (size_t i = 0; i < n;) {
    uint64_t sz = 0, first = p[i].first, tag = p[i].tag;
    for (; i < n && p[i].tag == tag; i++) sz += p[i].sz;
    if (sz > best_sz || (sz == best_sz && first < best_first)) {
      best = tag;
      best_sz = sz;
      best_first = first;
    }
  }
  return best;
}

static int tag_cmp(const void *a, const void *b) {
  const map_tag_t *x = a, *y = b;
  return x->tag < y->tag ? -1 : x->tag > y->tag;
}

static int rank_cmp(const void *a, const void *b) {
  const map_tag_t *x = a, *y = b;
  if (x->sz != y->sz) return x->sz > y->sz ? -1 : 1;
  return tag_cmp(a, b);
}

/* Every tag with its bytes and allocations, ranked for the legend. */
static int tags_build(map_t *m, const wksp_part_t *parts, size_t cnt) {
  m->tags = malloc((m->used_cnt + 1) * sizeof *m->tags);
  if (!m->tags) return ENOMEM;
  size_t n = 0;
  for (size_t i = 0; i < cnt; i++)
    if (parts[i].tag) m->tags[n++] = (map_tag_t){parts[i].tag, parts[i].gaddr_hi - parts[i].gaddr_lo, 1};
  qsort(m->tags, n, sizeof *m->tags, tag_cmp);
  size_t k = 0;
  for (size_t i = 0; i < n; i++) {
    if (k && m->tags[k - 1].tag == m->tags[i].tag) {
      m->tags[k - 1].sz += m->tags[i].sz;
      m->tags[k - 1].cnt++;
    } else {
      m->tags[k++] = m->tags[i];
    }
  }
  qsort(m->tags, k, sizeof *m->tags, rank_cmp);
  m->tag_cnt = k;
  return 0;
}

static int sym_of(const map_t *m, uint64_t tag) {
  for (size_t i = 0; i < m->tag_cnt && i < MAP_LEGEND_MAX; i++)
    if (m->tags[i].tag == tag) return (int)i;
  return MAP_SYM_OTHER;
}

/* Checks the allocations and sums them and the gaps between them. */
static int parts_scan(map_t *m, const wksp_part_t *parts, size_t cnt) {
  uint64_t at = m->lo;
  for (size_t i = 0; i < cnt; i++) {
    const wksp_part_t *p = &parts[i];
    if (!p->tag) continue;
    if (p->gaddr_lo < at || p->gaddr_lo >= p->gaddr_hi || p->gaddr_hi > m->hi) return EINVAL;
    if (p->gaddr_lo > at) {
      m->free_cnt++;
      m->free_sz += p->gaddr_lo - at;
      if (p->gaddr_lo - at > m->free_max) m->free_max = p->gaddr_lo - at;
    }
    m->used_cnt++;
    m->used_sz += p->gaddr_hi - p->gaddr_lo;
    at = p->gaddr_hi;
  }
  if (at < m->hi) {
    m->free_cnt++;
    m->free_sz += m->hi - at;
    if (m->hi - at > m->free_max) m->free_max = m->hi - at;
  }
  return 0;
}

/* Fills every cell; scratch has room for one piece per allocation plus
 * one. */
static void cells_fill(map_t *m, const wksp_part_t *parts, size_t cnt, piece_t *scratch) {
  size_t j = 0; /* first allocation that may reach the current cell */
  for (size_t c = 0; c < m->cell_cnt; c++) {
    map_cell_t *cell = &m->cells[c];
    cell->lo = m->lo + (uint64_t)c * m->cell_sz;
    cell->hi = m->hi - cell->lo > m->cell_sz ? cell->lo + m->cell_sz : m->hi;
    while (j < cnt && (!parts[j].tag || parts[j].gaddr_hi <= cell->lo)) j++;
    size_t n = 0;
    for (size_t k = j; k < cnt && parts[k].gaddr_lo < cell->hi; k++) {
      if (!parts[k].tag) continue;
      uint64_t a = parts[k].gaddr_lo > cell->lo ? parts[k].gaddr_lo : cell->lo;
      uint64_t b = parts[k].gaddr_hi < cell->hi ? parts[k].gaddr_hi : cell->hi;
      scratch[n++] = (piece_t){parts[k].tag, b - a, a};
      cell->used += b - a;
    }
    cell->tag = n ? dominant(scratch, n) : 0;
    cell->sym = n ? sym_of(m, cell->tag) : MAP_SYM_FREE;
  }
}

int map_build(map_t *m, const wksp_part_t *parts, size_t cnt, uint64_t lo, uint64_t hi, size_t cells_max) {
  memset(m, 0, sizeof *m);
  if (lo >= hi || !cells_max || (cnt && !parts)) return EINVAL;
  uint64_t span = hi - lo;
  m->lo = lo;
  m->hi = hi;
  m->cell_sz = span / cells_max + (span % cells_max != 0);
  m->cell_cnt = (size_t)(span / m->cell_sz + (span % m->cell_sz != 0));
  int rc = parts_scan(m, parts, cnt);
  if (!rc) rc = tags_build(m, parts, cnt);
  piece_t *scratch = NULL;
  if (!rc) {
    m->cells = calloc(m->cell_cnt, sizeof *m->cells);
    scratch = malloc((m->used_cnt + 1) * sizeof *scratch);
    if (!m->cells || !scratch) rc = ENOMEM;
  }
  if (!rc) cells_fill(m, parts, cnt, scratch);
  free(scratch);
  if (rc) map_free(m);
  return rc;
}

void map_free(map_t *m) {
  free(m->cells);
  free(m->tags);
  memset(m, 0, sizeof *m);
}

int map_eighths(const map_cell_t *c) {
  uint64_t sz = c->hi - c->lo;
  if (!c->used) return 0;
  if (c->used >= sz) return 8;
  uint64_t e = (uint64_t)(((unsigned __int128)c->used * 8 + sz - 1) / sz);
  return e >= 8 ? 7 : (int)e;
}
