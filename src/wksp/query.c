/* Queries and verification.  Everything here only reads the workspace and
 * must survive reading it while another process changes it (read-only
 * attachments read without the lock, see wksp_private_query): every value is
 * loaded once, every index bounds-checked, every walk bounded. */
#include "wksp_private.h"
#include "util/err.h"

#include <inttypes.h>
#include <stdlib.h>

#define NUL WKSP_IDX_NULL

static inline uint64_t ld64(const uint64_t *p) { return __atomic_load_n(p, __ATOMIC_RELAXED); }
static inline uint32_t ld32(const uint32_t *p) { return __atomic_load_n(p, __ATOMIC_RELAXED); }

/* ---- address-order walk ------------------------------------------------ */

typedef int (*visit_fn)(void *ctx, uint64_t lo, uint64_t hi, uint64_t tag);

/* Calls visit for every partition in address order, checking the tiling as
 * it goes.  Stops at the first non-zero return of visit. */
static int walk(const wksp_t *w, const char *who, visit_fn visit, void *ctx) {
  const wksp_rec_t *rec = wksp_private_rec(w);
  uint64_t n = w->part_max, expect = wksp_gaddr_lo(w), ghi = wksp_gaddr_hi(w), steps = 0;
  uint32_t prev = NUL;
  for (uint32_t i = 0; i != NUL; steps++) {
    if (i >= n || steps >= n)
      return wksp_err_in(WKSP_ERR_CORRUPT, 0, who, "address list of \"%.39s\" %s (record %u)", w->name,
                         i >= n ? "links out of range" : "has a cycle", i);
    uint64_t lo = ld64(&rec[i].lo), hi = ld64(&rec[i].hi), tag = ld64(&rec[i].tag);
    uint32_t back = ld32(&rec[i].prev);
    if (back != prev)
      return wksp_err_in(WKSP_ERR_CORRUPT, 0, who, "record %u of \"%.39s\" links back to %u, expected %u", i, w->name,
                         back, prev);
    if (lo != expect || hi <= lo || hi > ghi)
      return wksp_err_in(WKSP_ERR_CORRUPT, 0, who,
                         "record %u of \"%.39s\" is [%" PRIu64 ",%" PRIu64 "), expected to start at %" PRIu64 " "
                         "and end by %" PRIu64,
                         i, w->name, lo, hi, expect, ghi);
    int r = visit(ctx, lo, hi, tag);
    if (r) return r;
    expect = hi;
    prev = i;
    i = ld32(&rec[i].next);
  }
  if (expect != ghi)
    return wksp_err_in(WKSP_ERR_CORRUPT, 0, who,
                       "partitions of \"%.39s\" end at %" PRIu64 ", the data region at %" PRIu64, w->name, expect, ghi);
  return WKSP_SUCCESS;
}

/* ---- verify ------------------------------------------------------------ */

/* Free treap node t's same-size list: members mark themselves, link back,
 * are free and of the node's size; counted into *seen (bounded by expect). */
static int same_check(const wksp_t *w, const char *who, uint32_t t, uint64_t sz, uint64_t *seen, uint64_t expect) {
  const wksp_rec_t *rec = wksp_private_rec(w);
  uint64_t n = w->part_max;
  uint32_t prev = t, m = ld32(&rec[t].same);
  if (m == t)
    return wksp_err_in(WKSP_ERR_CORRUPT, 0, who, "free bin node %u of \"%.39s\" is marked as a list member", t,
                       w->name);
  for (; m != NUL; prev = m, m = ld32(&rec[m].left)) {
    uint64_t lo = m < n ? ld64(&rec[m].lo) : 0;
    if (m >= n || ld32(&rec[m].same) != m || ld32(&rec[m].parent) != prev || !lo || ld64(&rec[m].tag) ||
        ld64(&rec[m].hi) - lo != sz || ++*seen > expect)
      return wksp_err_in(WKSP_ERR_CORRUPT, 0, who,
                         "same-size list of free node %u (size %" PRIu64 ") of \"%.39s\" has a bad "
                         "member %u after %u",
                         t, sz, w->name, m, prev);
  }
  return WKSP_SUCCESS;
}

/* In-order walk of one treap with an explicit stack (stack[0..cap)): keys
 * strictly ascending, heap order of priorities, right kind of partition,
 * parent links, and (free index) every node and list member in bin `bin`
 * and the same-size lists; nodes and list members are counted into *seen,
 * which must not pass expect. */
static int treap_check(const wksp_t *w, const char *who, uint32_t root, int is_free, uint64_t bin, uint32_t *stack,
                       uint64_t expect, uint64_t *seen) {
  const wksp_rec_t *rec = wksp_private_rec(w);
  const char *kind = is_free ? "free" : "used";
  uint64_t n = w->part_max, cap = expect + 1, sp = 0, psz = 0, plo = 0, first = *seen;
  uint32_t seed = ld32(&w->seed), m = wksp_private_bins(ld32(&w->bins)).m;
  uint32_t t = root;
  while (t != NUL || sp) {
    while (t != NUL) {
      if (t >= n || sp == cap)
        return wksp_err_in(WKSP_ERR_CORRUPT, 0, who, "%s treap of \"%.39s\": %s at record %u", kind, w->name,
                           t >= n ? "link out of range" : "deeper than its node count (cycle)", t);
      stack[sp++] = t;
      t = ld32(&rec[t].left);
    }
    t = stack[--sp];
    uint64_t lo = ld64(&rec[t].lo), sz = ld64(&rec[t].hi) - lo, tag = ld64(&rec[t].tag);
    uint32_t kids[2] = {ld32(&rec[t].left), ld32(&rec[t].right)};
    int bad_kind = !lo || (is_free ? tag != 0 || wksp_private_bin_class(m, sz) != bin : tag == 0);
    int bad_order = *seen > first && (is_free ? sz <= psz : lo <= plo);
    if (bad_kind || bad_order || ++*seen > expect)
      return wksp_err_in(WKSP_ERR_CORRUPT, 0, who,
                         "%s treap of \"%.39s\": record %u [%" PRIu64 ",+%" PRIu64 ") tag %" PRIu64 " %s", kind,
                         w->name, t, lo, sz, tag,
                         bad_kind    ? "does not belong in it"
                         : bad_order ? "is out of key order"
                                     : "is one node too many");
    if (t == root && ld32(&rec[t].parent) != NUL)
      return wksp_err_in(WKSP_ERR_CORRUPT, 0, who, "%s treap of \"%.39s\": root %u has parent %u", kind, w->name, t,
                         ld32(&rec[t].parent));
    for (int c = 0; c < 2; c++) {
      uint32_t k = kids[c];
      if (k == NUL || k >= n) continue;
      if (ld32(&rec[k].parent) != t)
        return wksp_err_in(WKSP_ERR_CORRUPT, 0, who, "%s treap of \"%.39s\": record %u's parent is %u, expected %u",
                           kind, w->name, k, ld32(&rec[k].parent), t);
      uint32_t pt = wksp_private_prio(seed, t), pk = wksp_private_prio(seed, k);
      if (pk > pt || (pk == pt && k < t))
        return wksp_err_in(WKSP_ERR_CORRUPT, 0, who, "%s treap of \"%.39s\": child %u outranks parent %u", kind,
                           w->name, k, t);
    }
    if (is_free) {
      int r = same_check(w, who, t, sz, seen, expect);
      if (r) return r;
    }
    psz = sz;
    plo = lo;
    t = kids[1];
  }
  return WKSP_SUCCESS;
}

static int index_count(const wksp_t *w, const char *who, const char *kind, uint64_t seen, uint64_t expect) {
  if (seen == expect) return WKSP_SUCCESS;
  return wksp_err_in(WKSP_ERR_CORRUPT, 0, who, "%s index of \"%.39s\" holds %" PRIu64 " partitions, expected %" PRIu64,
                     kind, w->name, seen, expect);
}

/* Bit i of a bitmap word as the index says it must be. */
static int bits_check(const wksp_t *w, const char *who, uint64_t rec_i, uint64_t expect_word) {
  uint64_t got = ld64(&wksp_private_rec(w)[rec_i].bits);
  if (got == expect_word) return WKSP_SUCCESS;
  return wksp_err_in(WKSP_ERR_CORRUPT, 0, who,
                     "free index bitmap word in record %" PRIu64 " of \"%.39s\" is 0x%016" PRIx64 ", "
                     "expected 0x%016" PRIx64,
                     rec_i, w->name, got, expect_word);
}

/* The free index: geometry as derived from part_max and data_max, every
 * bin's treap, roots only where bins exist, and every bitmap word equal to
 * what the bins' emptiness makes it. */
static int bins_check(const wksp_t *w, const char *who, uint64_t expect) {
  const wksp_rec_t *rec = wksp_private_rec(w);
  uint64_t n = w->part_max, seen = 0;
  uint32_t bins = ld32(&w->bins), want = wksp_private_bins_pick(n, w->data_max);
  if (bins != want)
    return wksp_err_in(WKSP_ERR_CORRUPT, 0, who, "free index geometry of \"%.39s\" is 0x%x, expected 0x%x", w->name,
                       bins, want);
  wksp_bins_t g = wksp_private_bins(bins);
  int single = g.m == WKSP_BIN_SINGLE;
  uint64_t cnt = single ? 1 : wksp_private_bin_class(g.m, w->data_max) + 1;
  uint32_t *stack = malloc((expect + 1) * sizeof *stack);
  if (!stack) return wksp_err_in(WKSP_ERR_NOMEM, 0, who, "no memory to check the free index");
  int r = WKSP_SUCCESS;
  uint64_t word = 0, l1 = 0, l2 = 0;
  uint64_t end = single || 2 * n > 64 * (uint64_t)g.w0 ? 2 * n : 64 * (uint64_t)g.w0;
  for (uint64_t c = 0; c < end && !r; c++) {
    uint32_t root = c < 2 * n ? ld32(&rec[c >> 1].bin[c & 1]) : NUL;
    if (c >= cnt && root != NUL) {
      r = wksp_err_in(WKSP_ERR_CORRUPT, 0, who,
                      "free index of \"%.39s\" has a root %u for bin %" PRIu64 ", beyond its %" PRIu64 " bins", w->name,
                      root, c, cnt);
      break;
    }
    if (c < cnt) r = treap_check(w, who, root, 1, c, stack, expect, &seen);
    if (single || r) continue;
    /* Bitmap words are complete at the end of each group of 64 bins. */
    if (c < cnt && root != NUL) word |= UINT64_C(1) << (c & 63);
    if ((c & 63) == 63 && (c >> 6) < g.w0) {
      r = bits_check(w, who, c >> 6, word);
      if (word) l1 |= UINT64_C(1) << ((c >> 6) & 63);
      if (((c >> 6) & 63) == 63 || (c >> 6) + 1 == g.w0) {
        if (!r) r = bits_check(w, who, g.w0 + (c >> 12), l1);
        if (l1) l2 |= UINT64_C(1) << (c >> 12);
        l1 = 0;
      }
      word = 0;
    }
  }
  if (!r && !single) r = bits_check(w, who, g.w0 + g.w1, l2);
  for (uint64_t i = single ? 0 : g.w0 + g.w1 + 1; i < n && !r; i++) r = bits_check(w, who, i, 0);
  free(stack);
  return r ? r : index_count(w, who, "free", seen, expect);
}

typedef struct {
  const wksp_t *w;
  const char *who;
  uint64_t cnt, used, free, prev_free, prev_lo;
} verify_ctx_t;

static int verify_visit(void *vctx, uint64_t lo, uint64_t hi, uint64_t tag) {
  verify_ctx_t *c = vctx;
  (void)hi;
  if (!tag && c->prev_free)
    return wksp_err_in(WKSP_ERR_CORRUPT, 0, c->who,
                       "free partitions at %" PRIu64 " and %" PRIu64 " of \"%.39s\" are adjacent (not merged)",
                       c->prev_lo, lo, c->w->name);
  c->cnt++;
  c->used += tag != 0;
  c->free += tag == 0;
  c->prev_free = !tag;
  c->prev_lo = lo;
  return WKSP_SUCCESS;
}

static int header_check(const wksp_t *w, const char *who) {
  uint64_t magic = ld64(&w->magic), n = w->part_max;
  if (magic != WKSP_MAGIC || !wksp_footprint(n, w->data_max))
    return wksp_err_in(WKSP_ERR_CORRUPT, 0, who,
                       "header is not a valid workspace (magic 0x%016" PRIx64 ", part_max %" PRIu64 ", "
                       "data_max %" PRIu64 ")",
                       magic, n, w->data_max);
  return WKSP_SUCCESS;
}

int wksp_private_verify(const wksp_t *w, const char *who) {
  const wksp_rec_t *rec = wksp_private_rec(w);
  uint64_t n = w->part_max;
  int r = header_check(w, who);
  if (r) return r;
  verify_ctx_t c = {.w = w, .who = who};
  r = walk(w, who, verify_visit, &c);
  if (r) return r;
  /* The address list's records are distinct and active (their lo rises),
   * the idle stack's distinct (bounded walk) and idle: when the two
   * together count part_max, every record is on exactly one of them, so
   * no scan of all records is needed (it read 2 MiB of cold records per
   * checkpoint of a workspace of 32k records). */
  uint64_t idle = n - c.cnt, k = 0;
  for (uint32_t i = ld32(&w->idle_top), up = NUL; i != NUL; up = i, i = ld32(&rec[i].left)) {
    if (i >= n || ld64(&rec[i].lo) || ++k > idle || ld32(&rec[i].right) != up)
      return wksp_err_in(WKSP_ERR_CORRUPT, 0, who, "idle stack of \"%.39s\" holds record %u (%s)", w->name, i,
                         i >= n             ? "out of range"
                         : k > idle         ? "too many entries: cycle"
                         : ld64(&rec[i].lo) ? "active record"
                                            : "back link does not lead to the record above");
  }
  if (k != idle)
    return wksp_err_in(WKSP_ERR_CORRUPT, 0, who,
                       "idle stack of \"%.39s\" has %" PRIu64 " records, expected %" PRIu64 " (%" PRIu64
                       " records, %" PRIu64 " on the address list): a record is lost or active off the list",
                       w->name, k, idle, n, c.cnt);
  uint32_t *stack = malloc((c.used + 1) * sizeof *stack);
  if (!stack) return wksp_err_in(WKSP_ERR_NOMEM, 0, who, "no memory to check the used treap");
  uint64_t seen = 0;
  r = treap_check(w, who, ld32(&w->used_root), 0, 0, stack, c.used, &seen);
  free(stack);
  if (!r) r = index_count(w, who, "used", seen, c.used);
  return r ? r : bins_check(w, who, c.free);
}

static int verify_fn(const wksp_t *w, void *ctx) {
  (void)ctx;
  return wksp_private_verify(w, "wksp_verify");
}

int wksp_verify(wksp_t *w) { return wksp_private_query(w, "wksp_verify", verify_fn, NULL); }

/* ---- tag --------------------------------------------------------------- */

typedef struct {
  uint64_t gaddr, tag;
} tag_ctx_t;

static int tag_fn(const wksp_t *w, void *vctx) {
  tag_ctx_t *c = vctx;
  const wksp_rec_t *rec = wksp_private_rec(w);
  c->tag = 0;
  if (c->gaddr < wksp_gaddr_lo(w) || c->gaddr >= wksp_gaddr_hi(w)) return WKSP_SUCCESS;
  uint32_t u = wksp_private_used_find(w, c->gaddr);
  if (u != NUL && c->gaddr < ld64(&rec[u].hi)) c->tag = ld64(&rec[u].tag);
  return WKSP_SUCCESS;
}

int wksp_tag(wksp_t *w, uint64_t gaddr, uint64_t *tag) {
  if (!tag) return wksp_err_in(WKSP_ERR_INVAL, 0, "wksp_tag", "NULL tag");
  *tag = 0;
  tag_ctx_t c = {.gaddr = gaddr};
  int r = wksp_private_query(w, "wksp_tag", tag_fn, &c);
  if (!r) *tag = c.tag;
  return r;
}

/* ---- part_find ----------------------------------------------------------- */

typedef struct {
  uint64_t gaddr;
  wksp_part_t part;
} find_ctx_t;

/* The allocation with the greatest lo <= gaddr holds gaddr, or else the free
 * partition right after it does (record 0, the lowest partition, when no
 * allocation starts at or below gaddr).  The walk along the address list is
 * bounded: free neighbours are merged, so it takes one step unless the
 * metadata is damaged. */
static int find_fn(const wksp_t *w, void *vctx) {
  find_ctx_t *c = vctx;
  const wksp_rec_t *rec = wksp_private_rec(w);
  uint64_t glo = wksp_gaddr_lo(w), ghi = wksp_gaddr_hi(w);
  if (c->gaddr < glo || c->gaddr >= ghi)
    return wksp_err_in(WKSP_ERR_INVAL, 0, "wksp_part_find",
                       "gaddr %" PRIu64 " is outside the data region [%" PRIu64 ",%" PRIu64 ") of \"%.39s\"", c->gaddr,
                       glo, ghi, w->name);
  uint32_t n = w->part_max, u = wksp_private_used_find(w, c->gaddr);
  uint32_t i = u != NUL ? u : 0;
  for (uint32_t steps = 0; i < n && steps < n; steps++) {
    uint64_t lo = ld64(&rec[i].lo), hi = ld64(&rec[i].hi);
    if (!lo || lo > c->gaddr || hi <= lo) break;
    if (c->gaddr < hi) {
      c->part = (wksp_part_t){.gaddr_lo = lo, .gaddr_hi = hi, .tag = ld64(&rec[i].tag)};
      return WKSP_SUCCESS;
    }
    i = ld32(&rec[i].next);
  }
  return wksp_err_in(WKSP_ERR_CORRUPT, 0, "wksp_part_find",
                     "no partition of \"%.39s\" holds gaddr %" PRIu64 " (address list broken at record %u)", w->name,
                     c->gaddr, i);
}

int wksp_part_find(wksp_t *w, uint64_t gaddr, wksp_part_t *out) {
  if (out) *out = (wksp_part_t){0};
  if (!w || !out) return wksp_err_in(WKSP_ERR_INVAL, 0, "wksp_part_find", "NULL %s", w ? "out" : "workspace");
  find_ctx_t c = {.gaddr = gaddr};
  int r = wksp_private_query(w, "wksp_part_find", find_fn, &c);
  if (!r) *out = c.part;
  return r;
}

/* ---- listings ---------------------------------------------------------- */

typedef struct {
  const wksp_tagset_t *set; /* NULL: every partition, free ones included */
  wksp_part_t *out;
  size_t out_max, cnt;
} list_ctx_t;

static int list_visit(void *vctx, uint64_t lo, uint64_t hi, uint64_t tag) {
  list_ctx_t *c = vctx;
  if (c->set && (!tag || !wksp_private_tagset_has(c->set, tag))) return 0;
  if (c->cnt < c->out_max) c->out[c->cnt] = (wksp_part_t){.gaddr_lo = lo, .gaddr_hi = hi, .tag = tag};
  c->cnt++;
  return 0;
}

static int list_fn(const wksp_t *w, void *vctx) {
  list_ctx_t *c = vctx;
  c->cnt = 0;
  return walk(w, c->set ? "wksp_tag_query" : "wksp_part_list", list_visit, c);
}

static int list_args(const char *who, wksp_part_t *out, size_t out_max, size_t *cnt) {
  if (!cnt) return wksp_err_in(WKSP_ERR_INVAL, 0, who, "NULL cnt");
  *cnt = 0;
  if (out_max && !out) return wksp_err_in(WKSP_ERR_INVAL, 0, who, "NULL out with out_max %zu", out_max);
  return WKSP_SUCCESS;
}

int wksp_tag_query(wksp_t *w, const uint64_t *tags, size_t tag_cnt, wksp_part_t *out, size_t out_max,
                   size_t *cnt) {
  int r = list_args("wksp_tag_query", out, out_max, cnt);
  if (r) return r;
  wksp_tagset_t set;
  r = wksp_private_tagset_init(&set, tags, tag_cnt, "wksp_tag_query");
  if (r) return r;
  list_ctx_t c = {.set = &set, .out = out, .out_max = out_max};
  r = wksp_private_query(w, "wksp_tag_query", list_fn, &c);
  wksp_private_tagset_fini(&set);
  if (!r) *cnt = c.cnt;
  return r;
}

int wksp_part_list(wksp_t *w, wksp_part_t *out, size_t out_max, size_t *cnt) {
  int r = list_args("wksp_part_list", out, out_max, cnt);
  if (r) return r;
  list_ctx_t c = {.out = out, .out_max = out_max};
  r = wksp_private_query(w, "wksp_part_list", list_fn, &c);
  if (!r) *cnt = c.cnt;
  return r;
}

/* ---- usage ------------------------------------------------------------- */

typedef struct {
  const wksp_tagset_t *set;
  wksp_usage_t u;
} usage_ctx_t;

static int usage_visit(void *vctx, uint64_t lo, uint64_t hi, uint64_t tag) {
  usage_ctx_t *c = vctx;
  c->u.total_cnt++;
  if (!tag) {
    c->u.free_cnt++;
    c->u.free_sz += hi - lo;
    if (hi - lo > c->u.free_max) c->u.free_max = hi - lo;
  } else if (!c->set->cnt || wksp_private_tagset_has(c->set, tag)) {
    c->u.used_cnt++;
    c->u.used_sz += hi - lo;
  }
  return 0;
}

static int usage_fn(const wksp_t *w, void *vctx) {
  usage_ctx_t *c = vctx;
  c->u = (wksp_usage_t){.total_max = w->part_max, .total_sz = w->data_max};
  return walk(w, "wksp_usage", usage_visit, c);
}

int wksp_usage(wksp_t *w, const uint64_t *tags, size_t tag_cnt, wksp_usage_t *out) {
  if (!out) return wksp_err_in(WKSP_ERR_INVAL, 0, "wksp_usage", "NULL out");
  *out = (wksp_usage_t){0};
  wksp_tagset_t set;
  int r = wksp_private_tagset_init(&set, tags, tag_cnt, "wksp_usage");
  if (r) return r;
  usage_ctx_t c = {.set = &set};
  r = wksp_private_query(w, "wksp_usage", usage_fn, &c);
  wksp_private_tagset_fini(&set);
  if (!r) *out = c.u;
  return r;
}

/* ---- checkpoint interface ---------------------------------------------- */

typedef struct {
  wksp_part_t *parts;
  uint64_t cnt;
} alloc_list_ctx_t;

static int alloc_list_visit(void *vctx, uint64_t lo, uint64_t hi, uint64_t tag) {
  alloc_list_ctx_t *c = vctx;
  if (tag) c->parts[c->cnt++] = (wksp_part_t){.gaddr_lo = lo, .gaddr_hi = hi, .tag = tag};
  return 0;
}

static int used_count_visit(void *vctx, uint64_t lo, uint64_t hi, uint64_t tag) {
  (void)lo;
  (void)hi;
  *(uint64_t *)vctx += tag != 0;
  return 0;
}

int wksp_private_alloc_walk(wksp_t *w, wksp_part_t **parts, uint64_t *cnt) {
  *parts = NULL;
  *cnt = 0;
  uint64_t used = 0;
  int r = header_check(w, "alloc_list");
  if (!r) r = walk(w, "alloc_list", used_count_visit, &used);
  if (r || !used) return r;
  alloc_list_ctx_t c = {.parts = malloc(used * sizeof *c.parts)};
  if (!c.parts)
    return wksp_err_in(WKSP_ERR_NOMEM, 0, "alloc_list", "no memory for %" PRIu64 " partitions", used);
  walk(w, "alloc_list", alloc_list_visit, &c);
  *parts = c.parts;
  *cnt = c.cnt;
  return WKSP_SUCCESS;
}

int wksp_private_alloc_list(wksp_t *w, wksp_part_t **parts, uint64_t *cnt) {
  *parts = NULL;
  *cnt = 0;
  int r = wksp_private_verify(w, "alloc_list");
  return r ? r : wksp_private_alloc_walk(w, parts, cnt);
}
