/* Allocation and free: the two treaps, the idle stack and the single-store
 * commit protocol described in wksp_private.h.  About 780 lines in one
 * file on purpose: the treaps, size bins, home slots and idle stack are
 * static (mostly inline) helpers of the alloc and free hot paths, which one
 * translation unit lets the compiler inline (bench_alloc measures them). */
#include "wksp_private.h"
#include "util/err.h"

#include <inttypes.h>
#include <string.h>

#define NUL WKSP_IDX_NULL

/* ---- treaps ------------------------------------------------------------ */

static inline uint64_t part_sz(const wksp_rec_t *rec, uint32_t i) { return rec[i].hi - rec[i].lo; }

/* Does record a sort before record b?  Free treap: size (unique among its
 * nodes, equal sizes go to same-size lists); used treap: address. */
static inline int key_less(const wksp_rec_t *rec, uint32_t a, uint32_t b, int is_free) {
  if (is_free) return part_sz(rec, a) < part_sz(rec, b);
  return rec[a].lo < rec[b].lo;
}

static inline int prio_above(uint32_t seed, uint32_t a, uint32_t b) {
  uint32_t pa = wksp_private_prio(seed, a), pb = wksp_private_prio(seed, b);
  return pa != pb ? pa > pb : a < b;
}

/* Same with b's priority pb already hashed. */
static inline int prio_above_p(uint32_t seed, uint32_t a, uint32_t b, uint32_t pb) {
  uint32_t pa = wksp_private_prio(seed, a);
  return pa != pb ? pa > pb : a < b;
}

/* The link that points at x: its parent's child slot, or *root. */
static inline uint32_t *link_to(wksp_t *w, uint32_t x, uint32_t *root) {
  wksp_rec_t *rec = wksp_private_rec(w);
  uint32_t par = rec[x].parent;
  if (par == NUL) return root;
  if (par >= w->part_max) return NULL;
  return rec[par].left == x ? &rec[par].left : rec[par].right == x ? &rec[par].right : NULL;
}

static int treap_corrupt(const wksp_t *w, int is_free) {
  return wksp_err(WKSP_ERR_CORRUPT, 0, "%s treap of \"%.39s\" has a bad link or a cycle",
                  is_free ? "free" : "used", w->name);
}

/* Second half of a top-down insertion: x takes the place of the subtree at
 * *link (whose parent is par), which is split around x's key into x's
 * children.  steps continues the caller's bound on the walk. */
static inline int treap_split_at(wksp_t *w, uint32_t x, uint32_t *link, uint32_t par, uint32_t steps,
                                 int is_free) {
  wksp_rec_t *rec = wksp_private_rec(w);
  uint32_t n = w->part_max, t = *link, lown = x, rown = x, *l = &rec[x].left, *r = &rec[x].right;
  while (t != NUL) {
    if (t >= n || ++steps > n) return treap_corrupt(w, is_free);
    if (key_less(rec, t, x, is_free)) {
      *l = t;
      rec[t].parent = lown;
      lown = t;
      l = &rec[t].right;
      t = rec[t].right;
    } else {
      *r = t;
      rec[t].parent = rown;
      rown = t;
      r = &rec[t].left;
      t = rec[t].left;
    }
  }
  *l = NUL;
  *r = NUL;
  *link = x;
  rec[x].parent = par;
  return WKSP_SUCCESS;
}

/* Top-down insertion: descend while the nodes outrank x, then split the rest
 * of that subtree around x's key.  Every walk is bounded by part_max so that
 * a corrupted cycle gives CORRUPT instead of a hang.  x's priority is hashed
 * once, not at every level. */
static inline int treap_insert(wksp_t *w, uint32_t x, uint32_t *root, int is_free) {
  wksp_rec_t *rec = wksp_private_rec(w);
  uint32_t seed = w->seed, n = w->part_max, steps = 0, par = NUL, px = wksp_private_prio(seed, x);
  uint32_t *link = root;
  while (*link != NUL) {
    if (*link >= n || ++steps > n) return treap_corrupt(w, is_free);
    if (!prio_above_p(seed, *link, x, px)) break;
    par = *link;
    link = key_less(rec, x, par, is_free) ? &rec[par].left : &rec[par].right;
  }
  return treap_split_at(w, x, link, par, steps, is_free);
}

/* Replaces x by the merge of its subtrees, starting at x's parent link. */
static inline int treap_remove(wksp_t *w, uint32_t x, uint32_t *root, int is_free) {
  wksp_rec_t *rec = wksp_private_rec(w);
  uint32_t seed = w->seed, n = w->part_max, steps = 0;
  uint32_t *link = link_to(w, x, root);
  if (!link || *link != x) goto corrupt;
  uint32_t own = rec[x].parent, a = rec[x].left, b = rec[x].right;
  while (a != NUL && b != NUL) {
    if (a >= n || b >= n || ++steps > n) goto corrupt;
    if (prio_above(seed, a, b)) {
      *link = a;
      rec[a].parent = own;
      own = a;
      link = &rec[a].right;
      a = rec[a].right;
    } else {
      *link = b;
      rec[b].parent = own;
      own = b;
      link = &rec[b].left;
      b = rec[b].left;
    }
  }
  uint32_t rest = a != NUL ? a : b;
  if (rest != NUL && rest >= n) goto corrupt;
  *link = rest;
  if (rest != NUL) rec[rest].parent = own;
  rec[x].left = rec[x].right = rec[x].parent = NUL;
  return WKSP_SUCCESS;
corrupt:
  return wksp_err(WKSP_ERR_CORRUPT, 0, "%s treap of \"%.39s\": record %u has a bad parent or child link",
                  is_free ? "free" : "used", w->name, x);
}

/* Lifts x above its parent (one rotation), keeping key order.  CORRUPT
 * (nothing changed) when a link it follows is out of range or one-sided. */
static int rotate_up(wksp_t *w, uint32_t x, uint32_t *root) {
  wksp_rec_t *rec = wksp_private_rec(w);
  uint32_t n = w->part_max, p = rec[x].parent;
  if (p >= n) return treap_corrupt(w, 0);
  uint32_t g = rec[p].parent, left = rec[p].left == x, b = left ? rec[x].right : rec[x].left;
  if ((g != NUL && g >= n) || (b != NUL && b >= n) || (!left && rec[p].right != x)) return treap_corrupt(w, 0);
  uint32_t *gl = g == NUL ? root : rec[g].left == p ? &rec[g].left : rec[g].right == p ? &rec[g].right : NULL;
  if (!gl) return treap_corrupt(w, 0);
  if (left) {
    rec[p].left = b;
    rec[x].right = p;
  } else {
    rec[p].right = b;
    rec[x].left = p;
  }
  if (b != NUL) rec[b].parent = p;
  rec[p].parent = x;
  rec[x].parent = g;
  *gl = x;
  return WKSP_SUCCESS;
}

/* Inserts allocated record x into the used treap given its neighbours in
 * address order among allocated partitions (NUL: none).  Adjacent keys
 * leave exactly one free slot between them (pred's right or succ's left
 * child), so x goes there as a leaf and rotates up to its priority's place:
 * expected O(1), no descent from the root.  Hints the treap contradicts
 * fall back to the top-down insertion. */
static int used_insert_between(wksp_t *w, uint32_t x, uint32_t pred, uint32_t succ) {
  wksp_rec_t *rec = wksp_private_rec(w);
  uint32_t n = w->part_max, seed = w->seed, par, *link;
  if (pred != NUL && (pred >= n || !rec[pred].tag)) pred = n; /* not a used record: no hint */
  if (succ != NUL && (succ >= n || !rec[succ].tag)) succ = n;
  if (pred != NUL && pred < n && rec[pred].right == NUL) {
    par = pred;
    link = &rec[pred].right;
  } else if (succ != NUL && succ < n && rec[succ].left == NUL) {
    par = succ;
    link = &rec[succ].left;
  } else if (pred == NUL && succ == NUL && w->used_root == NUL) {
    par = NUL;
    link = &w->used_root;
  } else {
    return treap_insert(w, x, &w->used_root, 0);
  }
  *link = x;
  rec[x].parent = par;
  rec[x].left = rec[x].right = NUL;
  uint32_t px = wksp_private_prio(seed, x);
  for (uint32_t steps = 0; par != NUL; steps++) {
    if (par >= n || steps > n) return treap_corrupt(w, 0);
    uint32_t pp = wksp_private_prio(seed, par);
    if (px < pp || (px == pp && x > par)) break; /* par outranks x: heap order holds */
    int r = rotate_up(w, x, &w->used_root);
    if (r) return r;
    par = rec[x].parent;
  }
  return WKSP_SUCCESS;
}

/* ---- free index: size bins, each a treap plus same-size lists ----------- */

static int free_corrupt(const wksp_t *w, uint32_t x, const char *what) {
  return wksp_err(WKSP_ERR_CORRUPT, 0, "free index of \"%.39s\": record %u %s", w->name, x, what);
}

/* Root slot of bin c; NULL when the header's geometry is damaged so that
 * it would lie outside the records. */
static inline uint32_t *bin_root(wksp_t *w, uint64_t c) {
  return (c >> 1) < w->part_max ? &wksp_private_rec(w)[c >> 1].bin[c & 1] : NULL;
}

static inline uint64_t bit(uint64_t i) { return UINT64_C(1) << (i & 63); }

/* Bitmap word k of level 0, 1 or 2; NULL outside the records. */
static inline uint64_t *bin_word(wksp_t *w, wksp_bins_t g, int level, uint64_t k) {
  uint64_t i = level == 0 ? k : level == 1 ? g.w0 + k : g.w0 + g.w1;
  return i < w->part_max ? &wksp_private_rec(w)[i].bits : NULL;
}

/* Records that bin c became non-empty (on) or empty (!on) in all three
 * bitmap levels. */
static void bin_mark(wksp_t *w, wksp_bins_t g, uint64_t c, int on) {
  if (g.m == WKSP_BIN_SINGLE) return;
  uint64_t *l0 = bin_word(w, g, 0, c >> 6), *l1 = bin_word(w, g, 1, c >> 12), *l2 = bin_word(w, g, 2, 0);
  if (!l0 || !l1 || !l2) return; /* damaged geometry: verify reports it */
  if (on) {
    int was0 = *l0 != 0, was1 = *l1 != 0;
    *l0 |= bit(c);
    if (!was0) *l1 |= bit(c >> 6);
    if (!was0 && !was1) *l2 |= bit(c >> 12);
  } else {
    *l0 &= ~bit(c);
    if (!*l0) *l1 &= ~bit(c >> 6);
    if (!*l0 && !*l1) *l2 &= ~bit(c >> 12);
  }
}

/* First non-empty bin >= c per the bitmap, UINT64_MAX if none. */
static uint64_t bin_next(wksp_t *w, wksp_bins_t g, uint64_t c) {
  if (g.m == WKSP_BIN_SINGLE) {
    uint32_t *root = bin_root(w, 0);
    return c == 0 && root && *root != NUL ? 0 : UINT64_MAX;
  }
  uint64_t j = c >> 6, x;
  if (j >= g.w0) return UINT64_MAX;
  uint64_t *p = bin_word(w, g, 0, j);
  if (p && (x = *p & (~UINT64_C(0) << (c & 63)))) return j << 6 | (uint64_t)__builtin_ctzll(x);
  if (++j >= g.w0) return UINT64_MAX; /* next level-0 word to consider */
  uint64_t k = j >> 6;
  p = bin_word(w, g, 1, k);
  x = p ? *p & (~UINT64_C(0) << (j & 63)) : 0;
  if (!x) {
    if (++k >= g.w1) return UINT64_MAX;
    p = bin_word(w, g, 2, 0);
    uint64_t y = p ? *p & (~UINT64_C(0) << k) : 0;
    if (!y) return UINT64_MAX;
    k = (uint64_t)__builtin_ctzll(y);
    p = bin_word(w, g, 1, k);
    x = p ? *p : 0;
    if (!x) return UINT64_MAX;
  }
  j = k << 6 | (uint64_t)__builtin_ctzll(x);
  p = bin_word(w, g, 0, j);
  return p && *p ? j << 6 | (uint64_t)__builtin_ctzll(*p) : UINT64_MAX;
}

/* Last non-empty bin per the bitmap, UINT64_MAX if none. */
static uint64_t bin_last(wksp_t *w, wksp_bins_t g) {
  if (g.m == WKSP_BIN_SINGLE) return bin_next(w, g, 0);
  uint64_t *p = bin_word(w, g, 2, 0);
  if (!p || !*p) return UINT64_MAX;
  uint64_t k = 63 - (uint64_t)__builtin_clzll(*p);
  if (!(p = bin_word(w, g, 1, k)) || !*p) return UINT64_MAX;
  uint64_t j = k << 6 | (63 - (uint64_t)__builtin_clzll(*p));
  if (!(p = bin_word(w, g, 0, j)) || !*p) return UINT64_MAX;
  return j << 6 | (63 - (uint64_t)__builtin_clzll(*p));
}

void wksp_private_bins_clear(wksp_t *w) {
  wksp_rec_t *rec = wksp_private_rec(w);
  w->bins = wksp_private_bins_pick(w->part_max, w->data_max);
  for (uint64_t i = 0; i < w->part_max; i++) wksp_private_bin_slot_clear(&rec[i]);
}

/* Adds free record x to its bin: at the head of the same-size list when its
 * size is already there, else as a treap node.  One descent, without
 * hashing priorities (inserts of equal-size holes end in a list), remembers
 * the path; a new node then finds where its priority stops a top-down
 * insertion on that path and splits from there.  A path deeper than the
 * buffer (practically impossible with random priorities) descends again. */
enum { FREE_PATH_MAX = 64 };

static int free_insert(wksp_t *w, uint32_t x) {
  wksp_rec_t *rec = wksp_private_rec(w);
  wksp_bins_t g = wksp_private_bins(w->bins);
  uint64_t sz = part_sz(rec, x), c = wksp_private_bin_class(g.m, sz);
  uint32_t n = w->part_max, seed = w->seed, depth = 0, path[FREE_PATH_MAX], *root = bin_root(w, c), *link = root;
  uint32_t *links[FREE_PATH_MAX];
  if (!root) return free_corrupt(w, x, "falls in a bin outside the records (bad geometry)");
  if (*root == NUL) bin_mark(w, g, c, 1);
  for (uint32_t t = *link; t != NUL; t = *link) {
    if (t >= n || depth + 1 > n) return free_corrupt(w, t, "is a bad link or in a cycle");
    uint64_t tsz = part_sz(rec, t);
    if (tsz == sz) {
      uint32_t h = rec[t].same;
      if (h != NUL && h >= n) return free_corrupt(w, t, "has a bad same-size list");
      rec[x].same = x;
      rec[x].left = h;
      rec[x].parent = t;
      rec[x].right = NUL;
      if (h != NUL) rec[h].parent = x;
      rec[t].same = x;
      return WKSP_SUCCESS;
    }
    if (depth < FREE_PATH_MAX) {
      path[depth] = t;
      links[depth] = link;
    }
    depth++;
    link = sz < tsz ? &rec[t].left : &rec[t].right;
  }
  rec[x].same = NUL;
  if (depth > FREE_PATH_MAX) return treap_insert(w, x, root, 1);
  uint32_t px = wksp_private_prio(seed, x), k = 0;
  while (k < depth && prio_above_p(seed, path[k], x, px)) k++;
  return treap_split_at(w, x, k < depth ? links[k] : link, k ? path[k - 1] : NUL, k, 1);
}

/* Removes free record x from its bin's list or treap; a removed node's list
 * head takes its place (re-inserted: priorities belong to records).  x's
 * size must be the one it was inserted with. */
static int free_remove(wksp_t *w, uint32_t x) {
  wksp_rec_t *rec = wksp_private_rec(w);
  uint32_t n = w->part_max;
  if (rec[x].same == x) {
    uint32_t pv = rec[x].parent, nx = rec[x].left;
    if (pv >= n || (nx != NUL && nx >= n)) return free_corrupt(w, x, "has a bad same-size link");
    uint32_t *slot = rec[pv].same == pv ? &rec[pv].left : &rec[pv].same;
    if (*slot != x) return free_corrupt(w, x, "is not where its same-size list says");
    *slot = nx;
    if (nx != NUL) rec[nx].parent = pv;
    rec[x].same = rec[x].left = rec[x].parent = NUL;
    return WKSP_SUCCESS;
  }
  wksp_bins_t g = wksp_private_bins(w->bins);
  uint64_t c = wksp_private_bin_class(g.m, part_sz(rec, x));
  uint32_t h = rec[x].same, *root = bin_root(w, c);
  if (!root) return free_corrupt(w, x, "falls in a bin outside the records (bad geometry)");
  if (h != NUL && (h >= n || rec[h].same != h)) return free_corrupt(w, x, "has a bad same-size list");
  int r = treap_remove(w, x, root, 1);
  rec[x].same = NUL;
  if (r) return r;
  if (h == NUL) {
    if (*root == NUL) bin_mark(w, g, c, 0);
    return WKSP_SUCCESS;
  }
  uint32_t rest = rec[h].left;
  if (rest != NUL && rest >= n) return free_corrupt(w, h, "has a bad same-size link");
  rec[h].same = rest;
  rec[h].left = rec[h].parent = NUL;
  if (rest != NUL) rec[rest].parent = h;
  return treap_insert(w, h, root, 1);
}

int wksp_private_treap_insert(wksp_t *w, uint32_t x, int is_free) {
  return is_free ? free_insert(w, x) : treap_insert(w, x, &w->used_root, 0);
}

/* The same-size list head of node t if it has one (the reference's choice
 * among equal sizes), else t. */
static inline uint32_t list_head_or(const wksp_rec_t *rec, uint32_t t, uint32_t n) {
  return rec[t].same != NUL && rec[t].same < n ? rec[t].same : t;
}

/* Best fit: among the free partitions of the smallest size >= need, the one
 * the reference takes; NUL if none.  need's own bin may hold only smaller
 * sizes; any later non-empty bin holds only larger ones, so its smallest
 * (leftmost) node is the answer. */
static uint32_t free_fit(wksp_t *w, uint64_t need) {
  const wksp_rec_t *rec = wksp_private_rec(w);
  wksp_bins_t g = wksp_private_bins(w->bins);
  uint32_t n = w->part_max, best = NUL, steps = 0;
  if (need > w->data_max) return NUL;
  uint64_t c = wksp_private_bin_class(g.m, need);
  uint32_t *root = bin_root(w, c);
  for (uint32_t t = root ? *root : NUL; t != NUL && t < n && steps <= n; steps++) {
    if (part_sz(rec, t) >= need) {
      best = t;
      t = rec[t].left;
    } else {
      t = rec[t].right;
    }
  }
  if (best != NUL) return list_head_or(rec, best, n);
  c = bin_next(w, g, c + 1);
  root = c != UINT64_MAX ? bin_root(w, c) : NULL;
  for (uint32_t t = root ? *root : NUL; t != NUL && t < n && steps <= n; steps++) {
    best = t;
    t = rec[t].left;
  }
  return best != NUL ? list_head_or(rec, best, n) : NUL;
}

static uint64_t free_largest(wksp_t *w) {
  const wksp_rec_t *rec = wksp_private_rec(w);
  uint64_t c = bin_last(w, wksp_private_bins(w->bins)), sz = 0;
  uint32_t *root = c != UINT64_MAX ? bin_root(w, c) : NULL, n = w->part_max;
  for (uint32_t steps = 0, t = root ? *root : NUL; t != NUL && t < n && steps <= n; steps++) {
    sz = rec[t].hi - rec[t].lo;
    t = rec[t].right;
  }
  return sz;
}

/* Starts loading record i's cache line (a hint: no effect on correctness,
 * out-of-range indexes are skipped). */
static inline void prefetch_rec(const wksp_rec_t *rec, uint32_t i, uint32_t n) {
  if (i < n) __builtin_prefetch(&rec[i], 1);
}

/* The records a treap or list removal of i will touch. */
static inline void prefetch_links(const wksp_rec_t *rec, uint32_t i, uint32_t n) {
  prefetch_rec(rec, rec[i].parent, n);
  prefetch_rec(rec, rec[i].left, n);
  prefetch_rec(rec, rec[i].right, n);
  prefetch_rec(rec, rec[i].same, n);
}

/* The records free_insert will read for a partition of sz bytes: its bin's
 * root and level-0 bitmap word (a hint, like prefetch_rec). */
static inline void bin_prefetch(const wksp_t *w, uint64_t sz) {
  wksp_bins_t g = wksp_private_bins(w->bins);
  uint64_t c = wksp_private_bin_class(g.m, sz);
  const wksp_rec_t *rec = wksp_private_rec(w);
  if ((c >> 1) < w->part_max) __builtin_prefetch(&rec[c >> 1], 1);
  if ((c >> 6) < w->part_max) __builtin_prefetch(&rec[c >> 6], 1);
}

/* ---- home slots ---------------------------------------------------------

   A partition's record index does not matter to the layout (only to treap
   shapes), so a newly activated partition takes, when one is idle, one of
   the WKSP_HOME_PROBE consecutive records at wksp_private_home(lo).  A
   record's lo never changes while it is active, so a lookup of an exact
   partition start (what wksp_alloc returned, the common free) checks those
   few adjacent records first and skips the treap descent, a chain of
   dependent cache misses, when one of them is the allocation.  Anything
   else (a gaddr inside an allocation, a record that found its home taken)
   falls back to the descent: the slots are a hint, never the truth. */

/* Allocated record that starts exactly at gaddr among gaddr's home slots,
 * NUL if none.  Safe on read-only memory (single relaxed loads). */
static inline uint32_t home_find(const wksp_t *w, uint64_t gaddr) {
  const wksp_rec_t *rec = wksp_private_rec(w);
  uint32_t n = w->part_max, i = wksp_private_home(n, gaddr);
  for (uint32_t k = 0; k < WKSP_HOME_PROBE && k < n; k++, i = i + 1 < n ? i + 1 : 0)
    __builtin_prefetch(&rec[i]);
  i = wksp_private_home(n, gaddr);
  for (uint32_t k = 0; k < WKSP_HOME_PROBE && k < n; k++, i = i + 1 < n ? i + 1 : 0)
    if (__atomic_load_n(&rec[i].lo, __ATOMIC_RELAXED) == gaddr && __atomic_load_n(&rec[i].tag, __ATOMIC_RELAXED) &&
        gaddr < __atomic_load_n(&rec[i].hi, __ATOMIC_RELAXED))
      return i;
  return NUL;
}

/* Allocated record with the greatest lo <= gaddr, NUL if none.  Works on
 * read-only memory (loads are single and bounds-checked).  An allocation
 * starting exactly at gaddr is unique, so its home slot answers directly. */
uint32_t wksp_private_used_find(const wksp_t *w, uint64_t gaddr) {
  const wksp_rec_t *rec = wksp_private_rec(w);
  uint32_t best = home_find(w, gaddr), n = w->part_max;
  if (best != NUL) return best;
  uint32_t t = __atomic_load_n(&w->used_root, __ATOMIC_RELAXED);
  for (uint32_t steps = 0; t != NUL && t < n && steps <= n; steps++) {
    if (__atomic_load_n(&rec[t].lo, __ATOMIC_RELAXED) <= gaddr) {
      best = t;
      t = __atomic_load_n(&rec[t].right, __ATOMIC_RELAXED);
    } else {
      t = __atomic_load_n(&rec[t].left, __ATOMIC_RELAXED);
    }
  }
  return best;
}

/* ---- idle list ----------------------------------------------------------- */

/* Idle records form a stack doubly linked through left (towards the bottom)
 * and right (towards the top; NUL at the top), so that a home slot can be
 * taken out of the middle in O(1). */

static int idle_corrupt(const wksp_t *w, uint32_t i) {
  return wksp_err(WKSP_ERR_CORRUPT, 0, "idle stack of \"%.39s\" holds bad record %u", w->name, i);
}

/* Unlinks idle record i (checked to be one). */
static int idle_unlink(wksp_t *w, uint32_t i) {
  wksp_rec_t *rec = wksp_private_rec(w);
  uint32_t n = w->part_max;
  if (i >= n) return idle_corrupt(w, i);
  uint32_t down = rec[i].left, up = rec[i].right;
  if (rec[i].lo || (down != NUL && down >= n) || (up != NUL && up >= n)) return idle_corrupt(w, i);
  if (up == NUL ? w->idle_top != i : rec[up].left != i) return idle_corrupt(w, i);
  if (up == NUL) w->idle_top = down;
  else rec[up].left = down;
  if (down != NUL) rec[down].right = up;
  rec[i].left = rec[i].right = rec[i].parent = rec[i].same = NUL;
  return WKSP_SUCCESS;
}

/* Is record i idle and on the list? */
static inline int idle_listed(const wksp_t *w, uint32_t i) {
  const wksp_rec_t *rec = wksp_private_rec(w);
  uint32_t up = rec[i].right;
  if (rec[i].lo) return 0;
  return up == NUL ? w->idle_top == i : up < w->part_max && rec[up].left == i;
}

static inline void home_prefetch(const wksp_t *w, uint64_t lo) {
  const wksp_rec_t *rec = wksp_private_rec(w);
  uint32_t n = w->part_max, i = wksp_private_home(n, lo);
  for (uint32_t k = 0; k < WKSP_HOME_PROBE && k < n; k++, i = i + 1 < n ? i + 1 : 0) __builtin_prefetch(&rec[i], 1);
}

/* Chooses, without unlinking it, the idle record for a partition that will
 * start at lo: one of lo's home slots if one is idle, else the top of the
 * stack; never `taken` (chosen already by the same operation, still
 * listed); NUL when none is left.  Prefetches what unlinking it touches. */
static uint32_t idle_pick(const wksp_t *w, uint64_t lo, uint32_t taken) {
  const wksp_rec_t *rec = wksp_private_rec(w);
  uint32_t n = w->part_max, i = wksp_private_home(n, lo), pick = w->idle_top;
  for (uint32_t k = 0; k < WKSP_HOME_PROBE && k < n; k++, i = i + 1 < n ? i + 1 : 0) {
    if (i != taken && idle_listed(w, i)) {
      pick = i;
      break;
    }
  }
  if (pick == taken && pick < n) pick = rec[pick].left;
  if (pick < n) {
    prefetch_rec(rec, rec[pick].left, n);
    prefetch_rec(rec, rec[pick].right, n);
  }
  return pick;
}

/* Puts record i (just deactivated) on top of the stack. */
static void idle_push(wksp_t *w, uint32_t i) {
  wksp_rec_t *rec = wksp_private_rec(w);
  uint32_t top = w->idle_top;
  rec[i].prev = rec[i].next = rec[i].right = rec[i].parent = rec[i].same = NUL;
  rec[i].left = top;
  if (top != NUL && top < w->part_max) rec[top].right = i;
  w->idle_top = i;
}

/* ---- alloc ------------------------------------------------------------- */

static int bad_link(const wksp_t *w, uint32_t i, const char *field, uint32_t v) {
  return wksp_err(WKSP_ERR_CORRUPT, 0, "record %u of \"%.39s\" has %s link %u (part_max %u)", i, w->name, field, v,
                  w->part_max);
}

/* Lock held.  The free partition the free index offers must really be one
 * and hold the request; anything else means damaged metadata. */
static int fit_check(const wksp_t *w, uint32_t f, uint64_t align, uint64_t sz) {
  const wksp_rec_t *rec = wksp_private_rec(w);
  uint64_t lo = rec[f].lo, hi = rec[f].hi, r0 = (lo + align - 1) & ~(align - 1);
  if (rec[f].tag || lo < wksp_gaddr_lo(w) || hi <= lo || hi > wksp_gaddr_hi(w) || r0 < lo || r0 > hi ||
      hi - r0 < sz)
    return wksp_err(WKSP_ERR_CORRUPT, 0,
                    "free index of \"%.39s\" offers record %u [%" PRIu64 ",%" PRIu64 ") tag %" PRIu64 " for %" PRIu64
                    " bytes",
                    w->name, f, lo, hi, rec[f].tag, sz);
  return WKSP_SUCCESS;
}

/* Lock held and write_begin done; f is the chosen free partition.  Carves
 * [r0, r0 + sz) out of it.  On CORRUPT gen stays odd (the next lock repairs). */
static int carve(wksp_t *w, uint32_t f, uint64_t align, uint64_t sz, uint64_t tag, uint64_t *out_lo,
                 uint64_t *out_hi) {
  wksp_rec_t *rec = wksp_private_rec(w);
  uint64_t flo = rec[f].lo, fhi = rec[f].hi;
  uint64_t r0 = (flo + align - 1) & ~(align - 1), r1 = r0 + sz;
  /* The home slots load while the free index is updated. */
  if (r0 > flo) home_prefetch(w, r0);
  if (r1 < fhi) home_prefetch(w, r1);
  int r = free_remove(w, f);
  if (r) return r;
  wksp_private_hook(WKSP_HOOK_ALLOC_UNLINKED);
  uint32_t a = NUL, t = NUL;
  if (w->idle_top != NUL && r0 > flo) a = idle_pick(w, r0, NUL);
  if (w->idle_top != NUL && r1 < fhi) t = idle_pick(w, r1, a);
  if (a != NUL && (r = idle_unlink(w, a))) return r;
  if (t != NUL && (r = idle_unlink(w, t))) return r;
  uint64_t ahi = t != NUL ? r1 : fhi;
  uint32_t fnx = rec[f].next, fpv = rec[f].prev; /* allocated (free neighbours are always merged) */
  if (fnx != NUL && fnx >= w->part_max) return bad_link(w, f, "next", fnx);
  if (t != NUL) {
    uint32_t nx = fnx;
    rec[t].tag = 0;
    rec[t].hi = fhi;
    rec[t].prev = f;
    rec[t].next = nx;
    __atomic_store_n(&rec[t].lo, r1, __ATOMIC_RELEASE);
    if (nx != NUL) rec[nx].prev = t;
    rec[f].next = t;
    rec[f].hi = r1;
    wksp_private_hook(WKSP_HOOK_ALLOC_SPLIT);
  }
  uint32_t u = f;
  if (a != NUL) {
    uint32_t nx = rec[f].next;
    rec[a].tag = tag;
    rec[a].hi = ahi;
    rec[a].prev = f;
    rec[a].next = nx;
    __atomic_store_n(&rec[a].lo, r0, __ATOMIC_RELEASE); /* commit */
    wksp_private_hook(WKSP_HOOK_ALLOC_COMMIT);
    if (nx != NUL) rec[nx].prev = a;
    rec[f].next = a;
    rec[f].hi = r0;
    if ((r = free_insert(w, f))) return r;
    u = a;
  } else {
    __atomic_store_n(&rec[f].tag, tag, __ATOMIC_RELEASE); /* commit */
    wksp_private_hook(WKSP_HOOK_ALLOC_COMMIT);
  }
  if ((r = used_insert_between(w, u, fpv, fnx))) return r;
  if (t != NUL && (r = free_insert(w, t))) return r;
  *out_lo = rec[u].lo;
  *out_hi = ahi;
  wksp_private_hook(WKSP_HOOK_ALLOC_END);
  return WKSP_SUCCESS;
}

int wksp_alloc_at_least(wksp_t *w, uint64_t align, uint64_t sz, uint64_t tag, uint64_t *gaddr,
                        uint64_t *lo, uint64_t *hi) {
  uint64_t dummy_lo, dummy_hi;
  if (!lo) lo = &dummy_lo;
  if (!hi) hi = &dummy_hi;
  if (gaddr) *gaddr = 0;
  *lo = *hi = 0;
  if (!w || !gaddr) return wksp_err_in(WKSP_ERR_INVAL, 0, "wksp_alloc", "NULL %s", w ? "gaddr" : "workspace");
  if (!align) align = WKSP_ALIGN_DEFAULT;
  if (align & (align - 1))
    return wksp_err_in(WKSP_ERR_INVAL, 0, "wksp_alloc", "align %" PRIu64 " is not a power of two", align);
  if (!sz) return WKSP_SUCCESS;
  if (!tag) return wksp_err_in(WKSP_ERR_INVAL, 0, "wksp_alloc", "tag 0 is reserved for free space");
  if (sz > UINT64_MAX - (align - 1))
    return wksp_err_in(WKSP_ERR_FULL, 0, "wksp_alloc",
                       "%" PRIu64 " bytes aligned to %" PRIu64 " exceed the address space", sz, align);
  uint64_t need = sz + (align - 1);
  int r = wksp_private_lock(w);
  if (r) return wksp_err_wrap(r, "wksp_alloc");
  uint32_t f = free_fit(w, need);
  if (f == NUL) {
    uint64_t largest = free_largest(w);
    /* Without an idle record, earlier allocations were handed whole free
     * ranges (nothing to split them with): that, not the bytes, is the
     * cause to name. */
    char why[80] = "";
    if (w->idle_top == NUL)
      snprintf(why, sizeof why, "; no partition record left (part_max %u, all in use)", w->part_max);
    wksp_private_unlock(w);
    return wksp_err_in(WKSP_ERR_FULL, 0, "wksp_alloc",
                       "no free range of %" PRIu64 " bytes (size %" PRIu64 ", align %" PRIu64
                       ") in \"%.39s\"; largest free %" PRIu64 "%s",
                       need, sz, align, w->name, largest, why);
  }
  wksp_private_write_begin(w); /* from here a failure leaves gen odd: repaired next lock */
  wksp_private_hook(WKSP_HOOK_ALLOC_BEGIN);
  r = fit_check(w, f, align, sz);
  if (!r) r = carve(w, f, align, sz, tag, lo, hi);
  if (!r) wksp_private_write_end(w);
  wksp_private_unlock(w);
  if (r) return wksp_err_wrap(r, "wksp_alloc");
  *gaddr = (*lo + align - 1) & ~(align - 1);
  return WKSP_SUCCESS;
}

int wksp_alloc(wksp_t *w, uint64_t align, uint64_t sz, uint64_t tag, uint64_t *gaddr) {
  return wksp_alloc_at_least(w, align, sz, tag, gaddr, NULL, NULL);
}

/* ---- free -------------------------------------------------------------- */

/* Lock held.  The allocated record containing gaddr, or INVAL saying why
 * there is none. */
static int used_lookup(wksp_t *w, uint64_t gaddr, const char *who, uint32_t *out) {
  const wksp_rec_t *rec = wksp_private_rec(w);
  uint64_t glo = wksp_gaddr_lo(w), ghi = wksp_gaddr_hi(w);
  if (gaddr < glo || gaddr >= ghi)
    return wksp_err_in(WKSP_ERR_INVAL, 0, who,
                       "gaddr %" PRIu64 " is outside the data region [%" PRIu64 ",%" PRIu64 ") of \"%.39s\"", gaddr,
                       glo, ghi, w->name);
  uint32_t u = wksp_private_used_find(w, gaddr);
  if (u == NUL || gaddr >= rec[u].hi || !rec[u].tag)
    return wksp_err_in(WKSP_ERR_INVAL, 0, who,
                       "gaddr %" PRIu64 " of \"%.39s\" is not inside an allocation (free space)", gaddr, w->name);
  *out = u;
  return WKSP_SUCCESS;
}

/* Lock held, write_begin done: frees record u and merges it with free
 * neighbours.  The records it will touch are scattered over the metadata:
 * prefetching them as soon as their indexes are known overlaps the cache
 * misses instead of taking them one after another. */
static int release(wksp_t *w, uint32_t u) {
  wksp_rec_t *rec = wksp_private_rec(w);
  /* Links checked before the first change: a damaged one fails the call
   * with the allocation intact. */
  uint32_t n = rec[u].next, p = rec[u].prev;
  prefetch_rec(rec, n, w->part_max);
  prefetch_rec(rec, p, w->part_max);
  prefetch_links(rec, u, w->part_max);
  if (n != NUL && n >= w->part_max) return bad_link(w, u, "next", n);
  if (p != NUL && p >= w->part_max) return bad_link(w, u, "prev", p);
  uint64_t mlo = rec[u].lo, mhi = rec[u].hi; /* the free partition this free leaves */
  if (p != NUL && !rec[p].tag) {
    prefetch_links(rec, p, w->part_max);
    mlo = rec[p].lo;
  }
  if (n != NUL && !rec[n].tag) {
    prefetch_links(rec, n, w->part_max);
    mhi = rec[n].hi;
  }
  bin_prefetch(w, mhi - mlo);
  if (n != NUL && rec[n].next != NUL && rec[n].next >= w->part_max) return bad_link(w, n, "next", rec[n].next);
  int r = treap_remove(w, u, &w->used_root, 0);
  if (r) return r;
  wksp_private_hook(WKSP_HOOK_FREE_UNLINKED);
  __atomic_store_n(&rec[u].tag, 0, __ATOMIC_RELEASE); /* commit */
  wksp_private_hook(WKSP_HOOK_FREE_COMMIT);
  if (n != NUL && !rec[n].tag) {
    if ((r = free_remove(w, n))) return r;
    uint32_t nn = rec[n].next;
    rec[u].hi = rec[n].hi;
    rec[u].next = nn;
    if (nn != NUL) rec[nn].prev = u;
    __atomic_store_n(&rec[n].lo, 0, __ATOMIC_RELEASE);
    idle_push(w, n);
    wksp_private_hook(WKSP_HOOK_FREE_MERGE_NEXT);
  }
  if (p != NUL && !rec[p].tag) {
    if ((r = free_remove(w, p))) return r;
    uint32_t nx = rec[u].next;
    rec[p].hi = rec[u].hi;
    rec[p].next = nx;
    if (nx != NUL) rec[nx].prev = p;
    __atomic_store_n(&rec[u].lo, 0, __ATOMIC_RELEASE);
    idle_push(w, u);
    u = p;
    wksp_private_hook(WKSP_HOOK_FREE_MERGE_PREV);
  }
  if ((r = free_insert(w, u))) return r;
  wksp_private_hook(WKSP_HOOK_FREE_END);
  return WKSP_SUCCESS;
}

int wksp_free(wksp_t *w, uint64_t gaddr) {
  if (!w) return wksp_err_in(WKSP_ERR_INVAL, 0, "wksp_free", "NULL workspace");
  if (!gaddr) return wksp_err_in(WKSP_ERR_INVAL, 0, "wksp_free", "gaddr 0 (NULL)");
  int r = wksp_private_lock(w);
  if (r) return wksp_err_wrap(r, "wksp_free");
  uint32_t u;
  r = used_lookup(w, gaddr, "wksp_free", &u);
  if (!r) {
    wksp_private_write_begin(w);
    wksp_private_hook(WKSP_HOOK_FREE_BEGIN);
    r = release(w, u);
    if (!r) wksp_private_write_end(w);
    else wksp_err_wrap(r, "wksp_free");
  }
  wksp_private_unlock(w);
  return r;
}

/* ---- memset -------------------------------------------------------------- */

int wksp_memset(wksp_t *w, uint64_t gaddr, int c) {
  if (!w) return wksp_err_in(WKSP_ERR_INVAL, 0, "wksp_memset", "NULL workspace");
  if (!gaddr) return wksp_err_in(WKSP_ERR_INVAL, 0, "wksp_memset", "gaddr 0 (NULL)");
  int r = wksp_private_lock(w);
  if (r) return wksp_err_wrap(r, "wksp_memset");
  uint32_t u;
  r = used_lookup(w, gaddr, "wksp_memset", &u);
  if (!r) {
    const wksp_rec_t *rec = wksp_private_rec(w);
    memset((uint8_t *)w + rec[u].lo, c, rec[u].hi - rec[u].lo);
  }
  wksp_private_unlock(w);
  return r;
}
