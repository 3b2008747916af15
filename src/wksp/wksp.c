/* Workspace sizing, formatting, joining, accessors, the robust lock and the
 * read paths for read-only attachments.  Layout and crash-safety design:
 * wksp_private.h. */
#include "wksp_private.h"
#include "util/err.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <sched.h>
#include <string.h>
#include <time.h>

void (*wksp_private_test_hook)(int point);

static inline uint64_t data_off(uint64_t part_max) {
  return WKSP_HDR_SZ + WKSP_PART_SZ * part_max;
}

/* ---- sizing ------------------------------------------------------------ */

uint64_t wksp_footprint(uint64_t part_max, uint64_t data_max) {
  if (!part_max || part_max > WKSP_PART_MAX_LIMIT || !data_max) return 0;
  uint64_t off = data_off(part_max);
  if (data_max > UINT64_MAX - WKSP_HDR_SZ - off) return 0;
  uint64_t end = off + data_max + 1;
  return (end + WKSP_ALIGN - 1) & ~(uint64_t)(WKSP_ALIGN - 1);
}

uint64_t wksp_part_max_est(uint64_t footprint, uint64_t sz_typical) {
  footprint &= ~(uint64_t)(WKSP_ALIGN - 1);
  if (!footprint || !sz_typical || sz_typical > UINT64_MAX - WKSP_PART_SZ) return 0;
  uint64_t data_end = footprint - 1;
  if (data_end < WKSP_HDR_SZ) return 0;
  uint64_t part_max = (data_end - WKSP_HDR_SZ) / (WKSP_PART_SZ + sz_typical);
  return part_max < WKSP_PART_MAX_LIMIT ? part_max : WKSP_PART_MAX_LIMIT;
}

uint64_t wksp_data_max_est(uint64_t footprint, uint64_t part_max) {
  if (!part_max || part_max > WKSP_PART_MAX_LIMIT) return 0;
  footprint &= ~(uint64_t)(WKSP_ALIGN - 1);
  uint64_t off = data_off(part_max);
  if (footprint <= off + 1) return 0;
  return footprint - off - 1;
}

/* ---- names ------------------------------------------------------------- */

/* wksp_name_check's verdict, with the calling function named. */
static int name_check(const char *name, const char *who) {
  int r = wksp_name_check(name);
  return r ? wksp_err_wrap(r, "%s", who) : WKSP_SUCCESS;
}

/* ---- lifetime ---------------------------------------------------------- */

static int lock_init(wksp_t *w) {
  pthread_mutexattr_t a;
  int r = pthread_mutexattr_init(&a);
  if (r) return wksp_err_in(WKSP_ERR_FAIL, r, "wksp_new", "pthread_mutexattr_init");
  r = pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
  if (!r) r = pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
  /* Error checking: a thread locking twice gets EDEADLK instead of hanging. */
  if (!r) r = pthread_mutexattr_settype(&a, PTHREAD_MUTEX_ERRORCHECK);
  memset(&w->lock, 0, sizeof w->lock);
  if (!r) r = pthread_mutex_init(&w->lock.m, &a);
  pthread_mutexattr_destroy(&a);
  if (r) return wksp_err_in(WKSP_ERR_FAIL, r, "wksp_new", "robust process-shared mutex init");
  return WKSP_SUCCESS;
}

int wksp_new(void *mem, const char *name, uint32_t seed, uint64_t part_max, uint64_t data_max,
             wksp_t **out) {
  if (!mem || !out) return wksp_err_in(WKSP_ERR_INVAL, 0, "wksp_new", "NULL %s", mem ? "out" : "mem");
  *out = NULL;
  if ((uintptr_t)mem % WKSP_ALIGN)
    return wksp_err_in(WKSP_ERR_INVAL, 0, "wksp_new", "mem %p is not %d-byte aligned", mem, WKSP_ALIGN);
  int r = name_check(name, "wksp_new");
  if (r) return r;
  if (!wksp_footprint(part_max, data_max))
    return wksp_err_in(WKSP_ERR_INVAL, 0, "wksp_new",
                       "part_max %" PRIu64 " / data_max %" PRIu64 " invalid (need 1 <= part_max <= %llu, "
                       "data_max >= 1, footprint within 2^64)",
                       part_max, data_max, WKSP_PART_MAX_LIMIT);
  wksp_t *w = mem;
  __atomic_store_n(&w->magic, 0, __ATOMIC_RELEASE);
  w->data_max = data_max;
  w->part_max = (uint32_t)part_max;
  w->seed = seed;
  memset(w->name, 0, sizeof w->name);
  memcpy(w->name, name, strlen(name));
  r = lock_init(w);
  if (r) return r;
  w->gen = 0;
  w->used_root = WKSP_IDX_NULL;
  w->idle_top = part_max > 1 ? 1 : WKSP_IDX_NULL;
  wksp_rec_t *rec = wksp_private_rec(w);
  for (uint64_t i = 0; i < part_max; i++) {
    /* Idle stack 1, 2, ..., part_max-1 (doubly linked, see wksp_private.h). */
    uint32_t next_idle = i + 1 < part_max ? (uint32_t)(i + 1) : WKSP_IDX_NULL;
    uint32_t prev_idle = i >= 2 ? (uint32_t)(i - 1) : WKSP_IDX_NULL;
    rec[i] = (wksp_rec_t){.prev = WKSP_IDX_NULL, .next = WKSP_IDX_NULL, .left = next_idle,
                          .right = prev_idle, .parent = WKSP_IDX_NULL, .same = WKSP_IDX_NULL};
  }
  rec[0].lo = wksp_gaddr_lo(w);
  rec[0].hi = wksp_gaddr_hi(w);
  rec[0].left = rec[0].right = WKSP_IDX_NULL;
  /* The one free partition in an empty index (cannot fail: fresh links). */
  wksp_private_bins_clear(w);
  wksp_private_treap_insert(w, 0, 1);
  /* Joiners check the magic first: it goes in last. */
  __atomic_store_n(&w->magic, WKSP_MAGIC, __ATOMIC_RELEASE);
  *out = w;
  return WKSP_SUCCESS;
}

int wksp_join(void *mem, wksp_t **out) {
  if (!mem || !out) return wksp_err_in(WKSP_ERR_INVAL, 0, "wksp_join", "NULL %s", mem ? "out" : "mem");
  *out = NULL;
  if ((uintptr_t)mem % WKSP_ALIGN)
    return wksp_err_in(WKSP_ERR_INVAL, 0, "wksp_join", "mem %p is not %d-byte aligned", mem, WKSP_ALIGN);
  const wksp_t *w = mem;
  uint64_t magic = __atomic_load_n(&w->magic, __ATOMIC_ACQUIRE);
  if (magic != WKSP_MAGIC)
    return wksp_err_in(WKSP_ERR_CORRUPT, 0, "wksp_join", "not a workspace (magic 0x%016" PRIx64 ", expected 0x%016llx)",
                       magic, WKSP_MAGIC);
  if (!wksp_footprint(w->part_max, w->data_max))
    return wksp_err_in(WKSP_ERR_CORRUPT, 0, "wksp_join", "header has invalid part_max %u / data_max %" PRIu64,
                       w->part_max, w->data_max);
  char name[WKSP_NAME_MAX];
  memcpy(name, w->name, sizeof name);
  name[WKSP_NAME_MAX - 1] = 0;
  if (memchr(w->name, 0, sizeof w->name) == NULL || name_check(name, "wksp_join"))
    return wksp_err_in(WKSP_ERR_CORRUPT, 0, "wksp_join", "header holds an invalid name \"%.39s\"", name);
  *out = mem;
  return WKSP_SUCCESS;
}

static int handle_check(const wksp_t *w, const char *who) {
  if (!w) return wksp_err_in(WKSP_ERR_INVAL, 0, who, "NULL workspace");
  uint64_t magic = __atomic_load_n(&w->magic, __ATOMIC_ACQUIRE);
  if (magic != WKSP_MAGIC)
    return wksp_err_in(WKSP_ERR_CORRUPT, 0, who, "not a workspace (magic 0x%016" PRIx64 ")", magic);
  return WKSP_SUCCESS;
}

int wksp_leave(wksp_t *w) { return handle_check(w, "wksp_leave"); }

int wksp_delete(void *mem) {
  if (!mem) return wksp_err_in(WKSP_ERR_INVAL, 0, "wksp_delete", "NULL mem");
  wksp_t *w = mem;
  int r = handle_check(w, "wksp_delete");
  if (r) return r;
  if (wksp_private_is_rdonly(w))
    return wksp_err_in(WKSP_ERR_PERM, 0, "wksp_delete", "workspace \"%s\" is attached read-only", w->name);
  __atomic_store_n(&w->magic, 0, __ATOMIC_RELEASE);
  return WKSP_SUCCESS;
}

/* ---- accessors --------------------------------------------------------- */

const char *wksp_name(const wksp_t *w) { return w->name; }
uint32_t wksp_seed(const wksp_t *w) { return __atomic_load_n(&w->seed, __ATOMIC_RELAXED); }
uint64_t wksp_part_max(const wksp_t *w) { return w->part_max; }
uint64_t wksp_data_max(const wksp_t *w) { return w->data_max; }
uint64_t wksp_gaddr_lo(const wksp_t *w) { return data_off(w->part_max); }
uint64_t wksp_gaddr_hi(const wksp_t *w) { return data_off(w->part_max) + w->data_max; }

void *wksp_laddr(const wksp_t *w, uint64_t gaddr) {
  if (!w || gaddr < wksp_gaddr_lo(w) || gaddr > wksp_gaddr_hi(w)) return NULL;
  return (uint8_t *)w + gaddr;
}

uint64_t wksp_gaddr(const wksp_t *w, const void *laddr) {
  if (!w || !laddr) return 0;
  uintptr_t base = (uintptr_t)w, p = (uintptr_t)laddr;
  if (p < base + wksp_gaddr_lo(w) || p > base + wksp_gaddr_hi(w)) return 0;
  return p - base;
}

/* ---- lock -------------------------------------------------------------- */

void wksp_private_write_begin(wksp_t *w) {
  uint32_t g = w->gen;
  __atomic_store_n(&w->gen, g | WKSP_GEN_WRITING, __ATOMIC_RELAXED);
  __atomic_thread_fence(__ATOMIC_RELEASE);
}

void wksp_private_write_end(wksp_t *w) {
  uint32_t g = w->gen;
  __atomic_store_n(&w->gen, (g | WKSP_GEN_FLAGS) + 1u, __ATOMIC_RELEASE);
}

/* ---- header checks at every lock --------------------------------------- */

/* The header's part_max says where the records end and the data region
 * begins; record 0 always starts the data region (nothing deactivates it),
 * so the two must agree.  Neither can be rebuilt from the other: CORRUPT. */
static int records_agree(const wksp_t *w) {
  uint64_t lo0 = wksp_private_rec(w)[0].lo, glo = wksp_gaddr_lo(w);
  if (lo0 == glo) return WKSP_SUCCESS;
  return wksp_err(WKSP_ERR_CORRUPT, 0,
                  "workspace \"%.39s\": its header's part_max %u puts the data region at %" PRIu64 " but record 0 (the "
                  "lowest partition) starts at %" PRIu64 ": the header or record 0 is damaged",
                  w->name, w->part_max, glo, lo0);
}

/* The data region must lie in the memory this process mapped (named and
 * anonymous regions: the join table knows their size; other memory is the
 * caller's business).  Checked at attach, and again before a recovery
 * rebuild, which extends the last partition to the header's data end. */
static int fits_mapping(const wksp_t *w) {
  wksp_private_shmem_region_t reg;
  if (wksp_private_shmem_find(w, &reg) || reg.mem != (const void *)w) return WKSP_SUCCESS;
  uint64_t fp = wksp_footprint(w->part_max, w->data_max);
  if (fp && fp <= reg.sz) return WKSP_SUCCESS;
  return wksp_err(WKSP_ERR_CORRUPT, 0,
                  "workspace \"%.39s\": its header's part_max %u and data_max %" PRIu64 " need %" PRIu64
                  " bytes, the region has %" PRIu64 ": the header is damaged",
                  w->name, w->part_max, w->data_max, fp, reg.sz);
}

/* Header fields derived from the records that the allocator indexes with or
 * shifts by, checked before use (cheaply: the geometry is recomputed, each
 * root's own record looked at).  Writes what is wrong to why and returns 1,
 * else 0.  A wrong value that passes (e.g. a root of NUL) can only send an
 * operation to an inconsistency it detects, or be found by verify. */
static int derived_bad(const wksp_t *w, char *why, size_t why_sz) {
  const wksp_rec_t *rec = wksp_private_rec(w);
  uint32_t n = w->part_max, bins = w->bins, want = wksp_private_bins_pick(n, w->data_max);
  uint32_t root = w->used_root, top = w->idle_top;
  if (bins != want) {
    snprintf(why, why_sz, "free index geometry 0x%x, expected 0x%x", bins, want);
    return 1;
  }
  if (root != WKSP_IDX_NULL && (root >= n || !rec[root].lo || !rec[root].tag || rec[root].parent != WKSP_IDX_NULL)) {
    snprintf(why, why_sz, "used treap root %u is not an allocated record without a parent", root);
    return 1;
  }
  if (top != WKSP_IDX_NULL && (top >= n || rec[top].lo || rec[top].right != WKSP_IDX_NULL)) {
    snprintf(why, why_sz, "idle stack top %u is not an idle record at the top", top);
    return 1;
  }
  return 0;
}

#ifdef __GLIBC__
/* glibc keeps the mutex type in the lock itself; a damaged one makes
 * pthread_mutex_lock fail, block or abort inside glibc, so it is compared
 * with that of a mutex set up as lock_init does before every lock. */
static int kind_want;
static pthread_once_t kind_once = PTHREAD_ONCE_INIT;

static void kind_init(void) {
  wksp_t probe;
  kind_want = lock_init(&probe) ? -1 : probe.lock.m.__data.__kind;
  if (kind_want != -1) pthread_mutex_destroy(&probe.lock.m);
}

static int lock_kind_check(const wksp_t *w) {
  pthread_once(&kind_once, kind_init);
  int kind = __atomic_load_n(&w->lock.m.__data.__kind, __ATOMIC_RELAXED);
  if (kind_want == -1 || kind == kind_want) return WKSP_SUCCESS;
  return wksp_err(WKSP_ERR_CORRUPT, 0, "workspace \"%.39s\": its lock is damaged (mutex kind 0x%x, expected 0x%x)",
                  w->name, (unsigned)kind, (unsigned)kind_want);
}
#else
static int lock_kind_check(const wksp_t *w) {
  (void)w;
  return WKSP_SUCCESS;
}
#endif

/* ---- recovery ------------------------------------------------------------ */

/* Lock held, write_begin done.  Replays a committed bulk journal (when it
 * is one: see wksp_private_journal_check), so that the bulk operation is
 * complete; ignored otherwise.  Sets *replayed. */
static int journal_replay(wksp_t *w, int *replayed) {
  *replayed = 0;
  if (!(w->gen & WKSP_GEN_JOURNAL)) return WKSP_SUCCESS;
  int r = wksp_private_journal_check(w);
  if (r == WKSP_ERR_CORRUPT) {
    /* Never committed by a bulk operation: the bit itself is damage. */
    __atomic_store_n(&w->gen, w->gen & ~(uint32_t)WKSP_GEN_JOURNAL, __ATOMIC_RELEASE);
    return WKSP_SUCCESS;
  }
  if (r) return r;
  wksp_private_journal_apply(w);
  *replayed = 1;
  return WKSP_SUCCESS;
}

/* Repairs after a holder died or left gen odd, or a derived header field
 * was found wrong (why says which): replays a committed bulk journal,
 * merges, rebuilds every derived structure from the records and verifies.
 * On failure gen stays odd so that the next locker tries again.  note
 * (optional) gets what was repaired. */
static int recover(wksp_t *w, const char *why, char *note, size_t note_sz) {
  int r = fits_mapping(w);
  if (r) return r;
  wksp_private_write_begin(w);
  int replayed = 0, applied = (w->gen & WKSP_GEN_APPLIED) != 0;
  r = journal_replay(w, &replayed);
  if (!r) r = wksp_private_rebuild(w, replayed || applied, w->seed);
  if (r) return wksp_err_wrap(r, "wksp recovery of \"%.39s\"", w->name);
  r = wksp_private_verify(w, "wksp recovery");
  if (r) return r;
  wksp_private_write_end(w);
  if (note && note_sz)
    snprintf(note, note_sz, "%s%s; rebuilt from the partition records", why,
             replayed ? "; the interrupted bulk operation completed" : "");
  return WKSP_SUCCESS;
}

/* wksp_private_lock_wait, saying in note (optional, "" if nothing) what it
 * repaired on the way. */
static int lock_repair(wksp_t *w, const wksp_private_waiter_t *wt, char *note, size_t note_sz) {
  if (note && note_sz) note[0] = 0;
  int r = handle_check(w, "wksp_private_lock");
  if (r) return r;
  if (wksp_private_is_rdonly(w))
    return wksp_err(WKSP_ERR_PERM, 0, "workspace \"%.39s\" is attached read-only", w->name);
  if ((r = lock_kind_check(w))) return r;
  uint32_t word;
  int word_bad = wksp_private_lock_word_repair(w, &word);
  int e = wt ? wksp_private_mutex_wait(w, wt, &r) : pthread_mutex_lock(&w->lock.m);
  if (r) return r;
  if (e == ENOTRECOVERABLE)
    return wksp_err(WKSP_ERR_CORRUPT, e, "workspace \"%.39s\": lock not recoverable", w->name);
  if (e == EDEADLK)
    return wksp_err(WKSP_ERR_INVAL, e, "workspace \"%.39s\": this thread already holds its lock", w->name);
  if (e && e != EOWNERDEAD)
    return wksp_err(WKSP_ERR_FAIL, e, "workspace \"%.39s\": pthread_mutex_lock", w->name);
  char why[160] = "";
  if (e == EOWNERDEAD && word_bad) snprintf(why, sizeof why, "the lock word was damaged (0x%08x)", word);
  else if (e == EOWNERDEAD) snprintf(why, sizeof why, "a process died holding the lock");
  else if (w->gen & WKSP_GEN_FLAGS) snprintf(why, sizeof why, "a change was left unfinished (gen 0x%x)", w->gen);
  r = records_agree(w);
  if (!r && (why[0] || derived_bad(w, why, sizeof why))) r = recover(w, why, note, note_sz);
  /* Consistent even after a failed repair: gen stays odd, so the next
   * locker repairs again instead of finding the mutex unusable. */
  if (e == EOWNERDEAD) pthread_mutex_consistent(&w->lock.m);
  if (r) pthread_mutex_unlock(&w->lock.m);
  return r;
}

int wksp_private_lock_wait(wksp_t *w, const wksp_private_waiter_t *wt) {
  return lock_repair(w, wt, NULL, 0);
}

int wksp_private_lock(wksp_t *w) { return lock_repair(w, NULL, NULL, 0); }

/* Lock held.  Verifies; when that fails, rebuilds the derived state from
 * the records (nothing changes if they cannot: CORRUPT naming both
 * findings) and verifies again.  Appends what was repaired to note. */
static int verify_or_rebuild(wksp_t *w, char *note, size_t note_sz) {
  static const char who[] = "verify";
  int r = wksp_private_verify(w, who);
  if (r != WKSP_ERR_CORRUPT) return r;
  char found[WKSP_NOTE_MAX];
  snprintf(found, sizeof found, "%s", wksp_errcause());
  uint32_t gen = w->gen;
  wksp_private_write_begin(w);
  r = wksp_private_rebuild(w, 0, w->seed);
  if (r) {
    __atomic_store_n(&w->gen, gen, __ATOMIC_RELEASE); /* its checks failed before any change */
    char why[WKSP_NOTE_MAX];
    snprintf(why, sizeof why, "%s", wksp_errcause());
    return wksp_err_in(r, 0, "wksp_check", "%s; the partition records cannot rebuild it: %s", found, why);
  }
  wksp_private_write_end(w);
  if ((r = wksp_private_verify(w, who))) return r;
  size_t len = strlen(note);
  int n = snprintf(note + len, note_sz - len, "%s%s; rebuilt from the partition records", len ? "; then " : "", found);
  if (n < 0 || (size_t)n >= note_sz - len) note[note_sz - 1] = 0; /* cut: it is a description */
  return WKSP_SUCCESS;
}

int wksp_check(wksp_t *w, char *note, size_t note_sz) {
  char buf[WKSP_NOTE_MAX];
  if (note && note_sz) note[0] = 0;
  int r = lock_repair(w, NULL, buf, sizeof buf);
  if (r) return wksp_err_wrap(r, "wksp_check");
  r = verify_or_rebuild(w, buf, sizeof buf);
  wksp_private_unlock(w);
  if (!r && note && note_sz) snprintf(note, note_sz, "%s", buf);
  return r;
}

void wksp_private_unlock(wksp_t *w) { pthread_mutex_unlock(&w->lock.m); }

int wksp_lock_info(wksp_t *w, wksp_lock_info_t *out) {
  if (!out) return wksp_err_in(WKSP_ERR_INVAL, 0, "wksp_lock_info", "NULL out");
  *out = (wksp_lock_info_t){0};
  int r = handle_check(w, "wksp_lock_info");
  if (r) return r;
  wksp_private_lock_read(w, out);
  out->writing = (__atomic_load_n(&w->gen, __ATOMIC_ACQUIRE) & WKSP_GEN_WRITING) != 0;
  return WKSP_SUCCESS;
}

/* ---- consistent reads -------------------------------------------------- */

enum { QUERY_TRIES = 2000, QUERY_SPIN_TRIES = 100 };

int wksp_private_query(wksp_t *w, const char *who, int (*fn)(const wksp_t *w, void *ctx),
                       void *ctx) {
  int r = handle_check(w, who);
  if (r) return r;
  if (!wksp_private_is_rdonly(w)) {
    r = wksp_private_lock(w);
    if (r) return wksp_err_wrap(r, "%s", who);
    r = fn(w, ctx);
    wksp_private_unlock(w);
    return r;
  }
  uint32_t g0 = 0;
  for (int i = 0; i < QUERY_TRIES; i++) {
    if (i >= QUERY_SPIN_TRIES) nanosleep(&(struct timespec){0, 500000}, NULL);
    else if (i) sched_yield();
    g0 = __atomic_load_n(&w->gen, __ATOMIC_ACQUIRE);
    if (g0 & WKSP_GEN_FLAGS) continue;
    r = fn(w, ctx);
    __atomic_thread_fence(__ATOMIC_ACQUIRE);
    if (__atomic_load_n(&w->gen, __ATOMIC_RELAXED) == g0) return r;
  }
  return wksp_err_in(WKSP_ERR_CORRUPT, 0, who,
                     "no consistent read of read-only workspace \"%.39s\" after %d tries (gen %u%s)", w->name,
                     QUERY_TRIES, g0,
                     (g0 & 1u) ? ": a change is in progress or its writer died; a read-write attach repairs it"
                               : ": changing constantly");
}
