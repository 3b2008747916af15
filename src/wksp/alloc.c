/* Allocation and free: the two treaps, the idle stack and the single-store
 * commit protocol described in wksp_private.h. */
#include "wksp/wksp_private.h"
#include "util/err.h"

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

static inline uint32_t *root_of(wksp_t *w, int is_free) {
  return is_free ? &w->free_root : &w->used_root;
}

/* The link that points at x: its parent's child slot, or the root. */
static inline uint32_t *link_to(wksp_t *w, uint32_t x, int is_free) {
  wksp_rec_t *rec = wksp_private_rec(w);
  uint32_t par = rec[x].parent;
  if (par == NUL) return root_of(w, is_free);
  if (par >= w->part_max) return NULL;
  return rec[par].left == x ? &rec[par].left : rec[par].right == x ? &rec[par].right : NULL;
}

/* Top-down insertion: descend while the nodes outrank x, then split the rest
 * of that subtree around x's key.  Every walk is bounded by part_max so that
 * a corrupted cycle gives CORRUPT instead of a hang. */
static inline int treap_insert(wksp_t *w, uint32_t x, int is_free) {
  wksp_rec_t *rec = wksp_private_rec(w);
  uint32_t seed = w->seed, n = w->part_max, steps = 0, par = NUL;
  uint32_t *link = root_of(w, is_free);
  while (*link != NUL) {
    if (*link >= n || ++steps > n) goto corrupt;
    if (!prio_above(seed, *link, x)) break;
    par = *link;
    link = key_less(rec, x, par, is_free) ? &rec[par].left : &rec[par].right;
  }
  uint32_t t = *link, lown = x, rown = x, *l = &rec[x].left, *r = &rec[x].right;
  while (t != NUL) {
    if (t >= n || ++steps > n) goto corrupt;
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
corrupt:
  return wksp_err(WKSP_ERR_CORRUPT, 0, "%s treap of \"%.39s\" has a bad link or a cycle",
                  is_free ? "free" : "used", w->name);
}

/* Replaces x by the merge of its subtrees, starting at x's parent link. */
static inline int treap_remove(wksp_t *w, uint32_t x, int is_free) {
  wksp_rec_t *rec = wksp_private_rec(w);
  uint32_t seed = w->seed, n = w->part_max, steps = 0;
  uint32_t *link = link_to(w, x, is_free);
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

/* ---- free index: size treap plus same-size lists ----------------------- */

static int free_corrupt(const wksp_t *w, uint32_t x, const char *what) {
  return wksp_err(WKSP_ERR_CORRUPT, 0, "free index of \"%.39s\": record %u %s", w->name, x, what);
}

/* Adds free record x: at the head of the same-size list when its size is
 * already in the treap, else as a treap node. */
static int free_insert(wksp_t *w, uint32_t x) {
  wksp_rec_t *rec = wksp_private_rec(w);
  uint32_t n = w->part_max, t = w->free_root;
  uint64_t sz = part_sz(rec, x);
  for (uint32_t steps = 0; t != NUL; t = sz < part_sz(rec, t) ? rec[t].left : rec[t].right) {
    if (t >= n || ++steps > n) return free_corrupt(w, t, "is a bad link or in a cycle");
    if (part_sz(rec, t) != sz) continue;
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
  rec[x].same = NUL;
  return treap_insert(w, x, 1);
}

/* Removes free record x from the list or the treap; a removed node's list
 * head takes its place (re-inserted: priorities belong to records). */
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
  uint32_t h = rec[x].same;
  if (h != NUL && (h >= n || rec[h].same != h)) return free_corrupt(w, x, "has a bad same-size list");
  int r = treap_remove(w, x, 1);
  rec[x].same = NUL;
  if (r || h == NUL) return r;
  uint32_t rest = rec[h].left;
  if (rest != NUL && rest >= n) return free_corrupt(w, h, "has a bad same-size link");
  rec[h].same = rest;
  rec[h].left = rec[h].parent = NUL;
  if (rest != NUL) rec[rest].parent = h;
  return treap_insert(w, h, 1);
}

int wksp_private_treap_insert(wksp_t *w, uint32_t x, int is_free) {
  return is_free ? free_insert(w, x) : treap_insert(w, x, 0);
}

/* Best fit: the node of the smallest size >= need, or rather its same-size
 * list head if it has one (the reference's choice); NUL if none. */
static uint32_t free_fit(const wksp_t *w, uint64_t need) {
  const wksp_rec_t *rec = wksp_private_rec(w);
  uint32_t best = NUL, t = w->free_root, n = w->part_max;
  for (uint32_t steps = 0; t != NUL && t < n && steps <= n; steps++) {
    if (part_sz(rec, t) >= need) {
      best = t;
      t = rec[t].left;
    } else {
      t = rec[t].right;
    }
  }
  if (best != NUL && rec[best].same != NUL && rec[best].same < n) best = rec[best].same;
  return best;
}

static uint64_t free_largest(const wksp_t *w) {
  const wksp_rec_t *rec = wksp_private_rec(w);
  uint32_t t = w->free_root, n = w->part_max;
  uint64_t sz = 0;
  for (uint32_t steps = 0; t != NUL && t < n && steps <= n; steps++) {
    sz = rec[t].hi - rec[t].lo;
    t = rec[t].right;
  }
  return sz;
}

/* Allocated record with the greatest lo <= gaddr, NUL if none.  Works on
 * read-only memory (loads are single and bounds-checked). */
uint32_t wksp_private_used_find(const wksp_t *w, uint64_t gaddr) {
  const wksp_rec_t *rec = wksp_private_rec(w);
  uint32_t best = NUL, n = w->part_max;
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

/* ---- idle stack -------------------------------------------------------- */

/* Pops an idle record into *out (NUL when none is left).  A popped record
 * that is active means the derived stack is corrupt. */
static int idle_pop(wksp_t *w, uint32_t *out) {
  wksp_rec_t *rec = wksp_private_rec(w);
  uint32_t i = w->idle_top;
  *out = NUL;
  if (i == NUL) return WKSP_SUCCESS;
  if (i >= w->part_max || rec[i].lo)
    return wksp_err(WKSP_ERR_CORRUPT, 0, "idle stack of \"%.39s\" holds bad record %u", w->name, i);
  w->idle_top = rec[i].left;
  rec[i].left = rec[i].right = rec[i].parent = rec[i].same = NUL;
  *out = i;
  return WKSP_SUCCESS;
}

static void idle_push(wksp_t *w, uint32_t i) {
  wksp_rec_t *rec = wksp_private_rec(w);
  rec[i].prev = rec[i].next = rec[i].right = rec[i].parent = rec[i].same = NUL;
  rec[i].left = w->idle_top;
  w->idle_top = i;
}

/* ---- alloc ------------------------------------------------------------- */

static int bad_link(const wksp_t *w, uint32_t i, const char *field, uint32_t v) {
  return wksp_err(WKSP_ERR_CORRUPT, 0, "record %u of \"%.39s\" has %s link %u (part_max %u)", i, w->name, field, v,
                  w->part_max);
}

/* Lock held.  The free partition the free treap offers must really be one
 * and hold the request; anything else means damaged metadata. */
static int fit_check(const wksp_t *w, uint32_t f, uint64_t align, uint64_t sz) {
  const wksp_rec_t *rec = wksp_private_rec(w);
  uint64_t lo = rec[f].lo, hi = rec[f].hi, r0 = (lo + align - 1) & ~(align - 1);
  if (rec[f].tag || lo < wksp_gaddr_lo(w) || hi <= lo || hi > wksp_gaddr_hi(w) || r0 < lo || r0 > hi ||
      hi - r0 < sz)
    return wksp_err(WKSP_ERR_CORRUPT, 0, "free treap of \"%.39s\" offers record %u [%lu,%lu) tag %lu for %lu bytes",
                    w->name, f, (unsigned long)lo, (unsigned long)hi, (unsigned long)rec[f].tag, (unsigned long)sz);
  return WKSP_SUCCESS;
}

/* Lock held and write_begin done; f is the chosen free partition.  Carves
 * [r0, r0 + sz) out of it.  On CORRUPT gen stays odd (the next lock repairs). */
static int carve(wksp_t *w, uint32_t f, uint64_t align, uint64_t sz, uint64_t tag, uint64_t *out_lo,
                 uint64_t *out_hi) {
  wksp_rec_t *rec = wksp_private_rec(w);
  uint64_t flo = rec[f].lo, fhi = rec[f].hi;
  uint64_t r0 = (flo + align - 1) & ~(align - 1), r1 = r0 + sz;
  int r = free_remove(w, f);
  if (r) return r;
  wksp_private_hook(WKSP_HOOK_ALLOC_UNLINKED);
  uint32_t a = NUL, t = NUL;
  if (r0 > flo && (r = idle_pop(w, &a))) return r;
  if (r1 < fhi && (r = idle_pop(w, &t))) return r;
  uint64_t ahi = t != NUL ? r1 : fhi;
  uint32_t fnx = rec[f].next;
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
  if ((r = treap_insert(w, u, 0))) return r;
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
  if (!w || !gaddr) return wksp_err(WKSP_ERR_INVAL, 0, "wksp_alloc: NULL %s", w ? "gaddr" : "workspace");
  if (!align) align = WKSP_ALIGN_DEFAULT;
  if (align & (align - 1))
    return wksp_err(WKSP_ERR_INVAL, 0, "wksp_alloc: align %lu is not a power of two", (unsigned long)align);
  if (!sz) return WKSP_SUCCESS;
  if (!tag) return wksp_err(WKSP_ERR_INVAL, 0, "wksp_alloc: tag 0 is reserved for free space");
  if (sz > UINT64_MAX - (align - 1))
    return wksp_err(WKSP_ERR_FULL, 0, "wksp_alloc: %lu bytes aligned to %lu exceed the address space",
                    (unsigned long)sz, (unsigned long)align);
  uint64_t need = sz + (align - 1);
  int r = wksp_private_lock(w);
  if (r) return wksp_err_wrap(r, "wksp_alloc");
  uint32_t f = free_fit(w, need);
  if (f == NUL) {
    uint64_t largest = free_largest(w);
    wksp_private_unlock(w);
    return wksp_err(WKSP_ERR_FULL, 0,
                    "wksp_alloc: no free range of %lu bytes (size %lu, align %lu) in \"%.39s\"; largest free %lu",
                    (unsigned long)need, (unsigned long)sz, (unsigned long)align, w->name,
                    (unsigned long)largest);
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
    return wksp_err(WKSP_ERR_INVAL, 0, "%s: gaddr %lu is outside the data region [%lu,%lu) of \"%.39s\"", who,
                    (unsigned long)gaddr, (unsigned long)glo, (unsigned long)ghi, w->name);
  uint32_t u = wksp_private_used_find(w, gaddr);
  if (u == NUL || gaddr >= rec[u].hi || !rec[u].tag)
    return wksp_err(WKSP_ERR_INVAL, 0, "%s: gaddr %lu of \"%.39s\" is not inside an allocation (free space)",
                    who, (unsigned long)gaddr, w->name);
  *out = u;
  return WKSP_SUCCESS;
}

/* Lock held, write_begin done: frees record u and merges it with free
 * neighbours. */
static int release(wksp_t *w, uint32_t u) {
  wksp_rec_t *rec = wksp_private_rec(w);
  /* Links checked before the first change: a damaged one fails the call
   * with the allocation intact. */
  uint32_t n = rec[u].next, p = rec[u].prev;
  if (n != NUL && n >= w->part_max) return bad_link(w, u, "next", n);
  if (p != NUL && p >= w->part_max) return bad_link(w, u, "prev", p);
  if (n != NUL && rec[n].next != NUL && rec[n].next >= w->part_max) return bad_link(w, n, "next", rec[n].next);
  int r = treap_remove(w, u, 0);
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
  if (!w) return wksp_err(WKSP_ERR_INVAL, 0, "wksp_free: NULL workspace");
  if (!gaddr) return wksp_err(WKSP_ERR_INVAL, 0, "wksp_free: gaddr 0 (NULL)");
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
  if (!w) return wksp_err(WKSP_ERR_INVAL, 0, "wksp_memset: NULL workspace");
  if (!gaddr) return wksp_err(WKSP_ERR_INVAL, 0, "wksp_memset: gaddr 0 (NULL)");
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
