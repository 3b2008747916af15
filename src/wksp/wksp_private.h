/* src/wksp/wksp_private.h: the workspace's in-memory layout and the
 * allocator's internal interface (used by src/wksp/ files, the named-workspace
 * glue, the checkpoint layer and the tests).  Not installed.
 *
 * ## Layout (fixed invariant: header <= 128 bytes, 64 bytes per record)
 *
 *   [0, 128)                  header (struct wksp, with the robust mutex)
 *   [128, 128 + 64*part_max)  wksp_rec_t records, index 0 .. part_max-1
 *   [gaddr_lo, gaddr_hi)      data region
 *
 * ## What is authoritative
 *
 * Only two fields of a record are the truth: `lo` (the partition's first
 * byte; 0 = the record is idle, i.e. describes no partition) and `tag` (0 =
 * free, > 0 = allocated).  The active records (lo != 0) tile the data
 * region: a partition ends where the next active partition (by address)
 * begins, or at gaddr_hi.  Record 0 always holds the lowest partition
 * (lo == gaddr_lo): no operation ever deactivates it.
 *
 * `hi` is stored too.  For an allocated record it must equal the derived end
 * (it never changes while the record is allocated, because only free space
 * is ever split or merged), and rebuild/verify check that: a used record whose
 * hi disagrees with its successor means overlap or a gap, i.e. corruption.
 * For a free record hi is a cache that rebuild recomputes.
 *
 * Every other field (prev/next address list, treap links, idle stack, the
 * roots in the header) is derived and recomputed by rebuild.
 *
 * In the header, the truth is magic, data_max, part_max and name: nothing
 * can rebuild them, so damage there must give CORRUPT (wksp_join, and at
 * every lock: record 0's lo must be gaddr_lo; rebuild refuses a last
 * partition ending past gaddr_hi; recovery refuses a footprint beyond the
 * mapped region).  The seed is a parameter (any value is valid; the treaps
 * follow it).  gen, used_root, bins and idle_top are derived: every lock
 * checks bins against wksp_private_bins_pick and each root against its own
 * record, and runs recovery when one is wrong, before anything uses them.
 * The journal bit in gen is only believed when the shadows form a layout
 * (wksp_private_journal_check): outside a bulk operation they hold the
 * free index, and replaying that would overwrite every record.
 *
 * ## Why a crash anywhere is recoverable
 *
 * Single operations (alloc, free) change the truth with single aligned
 * 8-byte release stores, ordered so that every intermediate state is a valid
 * tiling:
 *   alloc  1. activate a free tail record at r1 (tag 0, hi, then lo)
 *          2. COMMIT: activate the allocated record at r0 (tag, hi, then lo)
 *             or, without head slack, store the tag into the chosen record
 *   free   1. COMMIT: store tag 0
 *          2. deactivate (lo = 0) the absorbed free neighbour(s)
 * A crash leaves at worst two adjacent free partitions (which rebuild merges)
 * and stale derived data.
 *
 * Bulk operations (tag_free, reset, replace) write the complete new truth
 * into every record's shadow (new_lo, new_tag), then commit by setting
 * WKSP_GEN_JOURNAL in the header's gen, then copy the shadows over (lo,
 * tag), rebuild, and clear the bit.  Recovery replays the copy when the bit
 * is set (idempotent), otherwise ignores the shadows: the bulk operation is
 * all or nothing.  Once the copy is complete, WKSP_GEN_APPLIED replaces the
 * journal bit before the rebuild: the rebuild reuses the shadows' space for
 * the free index, and recovery must then rebuild (recomputing the ends of
 * allocated partitions, which the copy does not set) instead of replaying.  Record 0 always stays the lowest partition, so its
 * shadow lo is implied (gaddr_lo) and its new_lo slot carries the seed the
 * bulk operation installs.  So the whole journal is one bit in the header
 * plus 16 bytes per record, and the invariant's 128 + 64 bytes hold.
 *
 * `gen` (header) is a sequence counter: odd (WKSP_GEN_WRITING) while a lock
 * holder is changing metadata.  A writer that dies leaves it odd, so the
 * next wksp_private_lock runs recovery (journal replay, merge, rebuild,
 * verify) before anything else, whether or not the robust mutex reported
 * EOWNERDEAD (which it does, via the kernel's robust futex list, for any
 * thread that dies holding it: PIDs, their reuse and PID namespaces play no
 * part).  Stores of a killed process that executed are visible to the next
 * locker (the mutex orders them); release stores keep the truth's order on
 * weakly ordered CPUs.  Read-only attachments cannot lock (the mutex lives
 * in read-only memory), so their queries read optimistically and retry when
 * gen changed or was odd.
 *
 * ## Free index: size bins
 * Free partitions are grouped by size class ("bin", wksp_private_bin_class):
 * exact sizes below 2^(m+1), then 2^m classes per power of two, so a bin
 * holds few distinct sizes and best fit reads a bin or two instead of
 * descending one tree over every free size.  Each bin is a treap keyed by
 * size; further free partitions of a size already in it hang off that node
 * in a same-size list (as in the reference: a new one goes to the list
 * head, best fit takes the list head if there is one, else the node, and
 * removing a node promotes the list head).  A list member links next /
 * prev through left / parent and holds its own index in `same`.  This
 * reproduces the reference's choices among equal sizes exactly.  A
 * three-level bitmap (bit c: bin c is not empty; a level-1 bit per non-zero
 * level-0 word, a level-2 bit per non-zero level-1 word) finds the next
 * non-empty bin in three word reads.
 *
 * The bins' roots and the bitmap words live in the records' 16-byte bulk
 * shadow (see wksp_rec_t): record i holds the roots of bins 2i and 2i+1 and
 * bitmap word i.  The shadow is only meaningful inside a bulk operation,
 * which rebuilds the index afterwards, so the two never overlap in time:
 * bulk_commit and recovery clear the journal bit once the shadows are
 * applied, before the rebuild overwrites them.  m and the bitmap geometry
 * are derived from part_max and data_max (wksp_private_bins_pick; the
 * header caches them in `bins`, checked by verify) so that the directory
 * always fits in part_max records; a workspace too small for even m = 0
 * keeps a single bin.
 *
 * Allocated partitions: treap keyed by lo.  Priority of record i:
 * wksp_private_prio(seed, i), ties broken by index, so the shape is a pure
 * function of the keys, the seed and the list order.  Parent links make
 * removal O(1) expected (no descent from the root).  Idle records form a
 * stack doubly linked through `left` (down) and `right` (up, NUL at the
 * top), so that alloc can take a partition's home slot (below) out of the
 * middle. */
#ifndef WKSP_SRC_WKSP_PRIVATE_H
#define WKSP_SRC_WKSP_PRIVATE_H

#include <pthread.h>
#include <stdint.h>

#include <wksp/wksp.h>
#include "shmem/shmem_private.h"

#define WKSP_MAGIC 0xF17EDA2C3731C591ull
#define WKSP_IDX_NULL 0xFFFFFFFFu

/* Low bits of the header's gen; the rest counts completed changes. */
enum {
  WKSP_GEN_WRITING = 1u, /* a change is in progress (or its writer died) */
  WKSP_GEN_JOURNAL = 2u, /* bulk shadows committed: recovery must replay */
  WKSP_GEN_APPLIED = 4u, /* bulk shadows applied, ends (hi) not yet recomputed */
  WKSP_GEN_FLAGS = 7u
};

/* Bytes reserved for the robust mutex: enough for glibc on x86-64 (40) and
 * aarch64 (48). */
#define WKSP_LOCK_SZ 48

struct wksp {
  uint64_t magic;    /* WKSP_MAGIC when formatted; written last by wksp_new */
  uint64_t data_max; /* bytes of the data region */
  uint32_t part_max; /* records, 1 .. 2^32-1 */
  uint32_t seed;     /* treap priority seed */
  char name[WKSP_NAME_MAX]; /* NUL-terminated, zero-filled */
  union {
    pthread_mutex_t m; /* robust, process-shared */
    uint8_t sz[WKSP_LOCK_SZ];
  } lock;
  uint32_t gen;       /* seqlock and journal bits (WKSP_GEN_*) */
  uint32_t used_root; /* treap of allocated partitions by lo */
  uint32_t bins;      /* free index geometry: m (bits 0-7) | level-0 words << 8 */
  uint32_t idle_top;  /* stack of idle records (linked via left) */
};

typedef struct {
  uint64_t lo;      /* truth: first byte, 0 = idle record */
  uint64_t tag;     /* truth: 0 = free, else allocated */
  uint64_t hi;      /* end; fixed while allocated, cache while free */
  uint32_t prev;    /* address list */
  uint32_t next;
  uint32_t left;    /* treap children; left is the idle-stack link */
  uint32_t right;
  uint32_t parent;  /* treap parent */
  uint32_t same;    /* node of a free bin treap: head of its same-size list; list member: own index */
  union {
    struct {          /* inside a bulk operation: */
      uint64_t new_lo;  /* shadow of lo (record 0: the seed to install) */
      uint64_t new_tag; /* shadow of tag */
    };
    struct {            /* otherwise, free index directory: */
      uint32_t bin[2];  /* roots of bins 2i and 2i+1 */
      uint64_t bits;    /* bitmap word i (level 0, 1 or 2, see bins) */
    };
  };
} wksp_rec_t;

_Static_assert(sizeof(struct wksp) == WKSP_HDR_SZ, "header must be 128 bytes");
_Static_assert(sizeof(pthread_mutex_t) <= WKSP_LOCK_SZ, "robust mutex does not fit");
_Static_assert(sizeof(wksp_rec_t) == WKSP_PART_SZ, "record must be 64 bytes");

static inline wksp_rec_t *wksp_private_rec(const wksp_t *w) {
  return (wksp_rec_t *)((uint8_t *)w + WKSP_HDR_SZ);
}

static inline uint32_t wksp_private_prio(uint32_t seed, uint32_t idx) {
  uint32_t x = seed ^ idx;
  x ^= x >> 16;
  x *= 0x7feb352du;
  x ^= x >> 15;
  x *= 0x846ca68bu;
  x ^= x >> 16;
  return x;
}

/* ---- free index geometry (see "Free index" above) ------------------------ */

enum {
  WKSP_BIN_M_MAX = 12,     /* 4096 classes per power of two at most */
  WKSP_BIN_SINGLE = 0xFFu  /* m of a workspace with one bin */
};

/* Bin of a free partition of sz >= 1 bytes: sz itself below 2^(m+1), then
 * the power of two and the m bits below the leading one.  Monotonic in sz.
 * Defined for any m (a damaged header's included): an m beyond
 * WKSP_BIN_M_MAX counts as WKSP_BIN_SINGLE. */
static inline uint64_t wksp_private_bin_class(uint32_t m, uint64_t sz) {
  if (m > WKSP_BIN_M_MAX) return 0;
  if (!(sz >> (m + 1))) return sz;
  uint32_t e = 63u - (uint32_t)__builtin_clzll(sz);
  return ((uint64_t)(e - m) << m) + (sz >> (e - m));
}

/* Decoded `bins`: m, and the bitmap's level-0 and level-1 word counts
 * (level 0 at records [0, w0), level 1 at [w0, w0 + w1), level 2 at w0 + w1). */
typedef struct {
  uint32_t m, w0, w1;
} wksp_bins_t;

static inline wksp_bins_t wksp_private_bins(uint32_t bins) {
  uint32_t w0 = bins >> 8;
  return (wksp_bins_t){bins & 0xFFu, w0, (w0 + 63u) >> 6};
}

/* The finest geometry whose directory fits in part_max records (bins
 * ceil(cnt / 2) records, bitmap w0 + w1 + 1), encoded for the header. */
static inline uint32_t wksp_private_bins_pick(uint64_t part_max, uint64_t data_max) {
  for (int m = WKSP_BIN_M_MAX; m >= 0; m--) {
    uint64_t cnt = wksp_private_bin_class((uint32_t)m, data_max) + 1, w0 = (cnt + 63) >> 6, w1 = (w0 + 63) >> 6;
    if ((cnt + 1) / 2 <= part_max && w0 + w1 + 1 <= part_max && w1 <= 64) return (uint32_t)m | (uint32_t)w0 << 8;
  }
  return WKSP_BIN_SINGLE;
}

/* Home slots (see alloc.c): a partition starting at lo preferably lives in
 * one of the WKSP_HOME_PROBE records from wksp_private_home(part_max, lo)
 * on (wrapping), so that looking up an exact start usually reads those few
 * adjacent records instead of descending the used treap.  A hint only:
 * nothing relies on a partition being at home. */
enum { WKSP_HOME_PROBE = 8 };

static inline uint32_t wksp_private_home(uint32_t part_max, uint64_t lo) {
  uint64_t h = lo * 0x9E3779B97F4A7C15ull; /* Fibonacci hashing: the high bits mix every bit of lo */
  return (uint32_t)(((h >> 32) * (uint64_t)part_max) >> 32);
}

/* Lo a committed bulk operation gives record i (record 0: always gaddr_lo;
 * its new_lo slot holds the seed). */
static inline uint64_t wksp_private_shadow_lo(const wksp_t *w, uint64_t i) {
  return i ? wksp_private_rec(w)[i].new_lo : WKSP_HDR_SZ + WKSP_PART_SZ * (uint64_t)w->part_max;
}

/* ---- read-only attachments ---------------------------------------------- */

/* Non-zero when w lies in a region this process joined read-only (the
 * shmem layer's join table knows; anonymous and unknown memory count as
 * writable).  Mutating calls then fail with PERM and queries run lock-free
 * (see wksp.h). */
static inline int wksp_private_is_rdonly(const wksp_t *w) {
  return wksp_private_shmem_writable(w) == 0;
}

/* ---- test-only crash points ------------------------------------------- */

/* Every point where a process killed there leaves metadata half changed.
 * The bulk and rebuild points are shared by tag_free, reset, replace and
 * rebuild (and recovery itself). */
enum {
  WKSP_HOOK_ALLOC_BEGIN = 1, /* gen odd, nothing changed */
  WKSP_HOOK_ALLOC_UNLINKED,  /* chosen free partition out of the free index */
  WKSP_HOOK_ALLOC_SPLIT,     /* free tail record activated (not committed) */
  WKSP_HOOK_ALLOC_COMMIT,    /* allocation committed, indexes not updated */
  WKSP_HOOK_ALLOC_END,       /* all done, gen still odd */
  WKSP_HOOK_FREE_BEGIN,      /* gen odd, nothing changed */
  WKSP_HOOK_FREE_UNLINKED,   /* out of the used treap, still tagged */
  WKSP_HOOK_FREE_COMMIT,     /* tag 0 stored, not merged */
  WKSP_HOOK_FREE_MERGE_NEXT, /* following free partition absorbed */
  WKSP_HOOK_FREE_MERGE_PREV, /* absorbed into the preceding free partition */
  WKSP_HOOK_FREE_END,        /* all done, gen still odd */
  WKSP_HOOK_BULK_SHADOW,     /* half of the shadow records written */
  WKSP_HOOK_BULK_COMMIT,     /* journal committed, nothing applied */
  WKSP_HOOK_BULK_APPLY,      /* first changed record applied, others not */
  WKSP_HOOK_BULK_APPLIED,    /* all applied and seed set, not rebuilt */
  WKSP_HOOK_REBUILD_MERGE,   /* rebuild: first adjacent free pair merged */
  WKSP_HOOK_REBUILD_INDEX,   /* rebuild: list and idle stack done, no treaps */
  WKSP_HOOK_REBUILD_END,     /* rebuild: all derived data rebuilt, gen odd */
  WKSP_HOOK_CNT
};

/* Points inside wksp_new_named (no lock is involved: a creator killed there
 * must leave the name free). */
enum {
  WKSP_HOOK_NEW_REGION = 64, /* region created and sized, unnamed, not formatted */
  WKSP_HOOK_NEW_FORMATTED    /* workspace formatted, region not yet named */
};

/* NULL in production.  Tests set it to stop or kill the process at a point. */
extern void (*wksp_private_test_hook)(int point);

static inline void wksp_private_hook(int point) {
  if (__builtin_expect(wksp_private_test_hook != 0, 0)) wksp_private_test_hook(point);
}

/* ---- interface for the checkpoint layer ---------------------------------- */

/* Takes the workspace lock (robust, process-shared; recovers a lock whose
 * owner died, repairing the metadata first; also repairs when a previous
 * holder left gen odd).  SUCCESS, INVAL (NULL), PERM (read-only attachment),
 * CORRUPT (recovery failed: the lock is released and the next caller tries
 * again), NOMEM (recovery needs scratch memory), FAIL (pthread error).
 * Not re-entrant: locking again from the holding thread is INVAL (the mutex
 * is error-checking), so calling a public allocator function while holding
 * the lock fails instead of deadlocking. */
int wksp_private_lock(wksp_t *w);
void wksp_private_unlock(wksp_t *w);

/* How a caller waits for the lock (wksp_private_lock_wait): the public
 * report (wksp_lock_wait_t, optional) and an optional check, run on the
 * calling thread when the lock is busy and then about every
 * WKSP_LOCK_NOTICE_NS while blocked, with the holder's pid (0 = not known)
 * and the time waited so far.  It returns 0 to keep waiting, > 0 to keep
 * waiting but hold back the done = 0 notice (the wait is expected to end
 * soon or to be given up), or a negative WKSP_ERR_* code, with its message
 * recorded, to give up. */
typedef struct {
  wksp_lock_wait_fn_t notify;
  void *notify_ctx;
  int (*check)(const wksp_t *w, int64_t pid, uint64_t waited_ns, void *ctx);
  void *check_ctx;
} wksp_private_waiter_t;

/* wksp_private_lock, first trying the lock, then waiting as wt says (NULL:
 * as wksp_private_lock).  Also the check's code when it gives up (the lock
 * is not held then). */
int wksp_private_lock_wait(wksp_t *w, const wksp_private_waiter_t *wt);

/* The process holding w's lock, 0 if none or not known (see
 * wksp_lock_wait_t).  A snapshot: the holder may change at once. */
int64_t wksp_private_lock_owner(const wksp_t *w);
/* The lock's state as its C library records it (the one place that reads
 * glibc's mutex fields; wksp_lock_info without the checks; lockwait.c). */
void wksp_private_lock_read(const wksp_t *w, wksp_lock_info_t *out);
/* A damaged lock word that no holder could have left (waiters without a
 * holder, a thread id above the kernel's limit) is marked as left by a
 * dead holder, so that taking the lock returns EOWNERDEAD and recovers
 * instead of sleeping for ever.  1 if it did (*was: the word found). */
int wksp_private_lock_word_repair(wksp_t *w, uint32_t *was);

/* Lock held.  Validates the metadata (wksp_verify's checks) and returns the
 * allocated partitions ascending in a malloc'd array (*parts = NULL when
 * *cnt == 0; caller free()s).  CORRUPT with a precise message, NOMEM. */
int wksp_private_alloc_list(wksp_t *w, wksp_part_t **parts, uint64_t *cnt);
/* The same from the address list alone: its links, order and ranges are
 * checked (so every part lies in the data region), the derived structures
 * (treaps, idle stack, free bins) are not; a caller that must refuse a
 * workspace whose derived state is damaged runs wksp_private_verify too
 * (the delta writer does so while its other thread hashes). */
int wksp_private_alloc_walk(wksp_t *w, wksp_part_t **parts, uint64_t *cnt);

/* Lock held.  Checks, without changing anything, that parts[0..cnt)
 * (ascending, non-overlapping, tag > 0, lo < hi, inside the data region)
 * could replace w's contents: cnt + (maximal free gaps left) <= part_max.
 * INVAL naming the first bad entry, FULL with records needed vs part_max. */
int wksp_private_replace_check(wksp_t *w, const wksp_part_t *parts, uint64_t cnt);

/* Lock held.  Frees every allocation and sets the seed.  All or nothing
 * under crashes.  PERM / CORRUPT as wksp_reset. */
int wksp_private_reset(wksp_t *w, uint32_t seed);

/* Lock held.  Replaces all partitions by exactly parts[0..cnt) plus free
 * partitions for the gaps, then rebuilds with `seed`.  Re-runs
 * wksp_private_replace_check (on failure nothing changes).  All or nothing
 * under crashes (old or new contents after recovery). */
int wksp_private_replace(wksp_t *w, const wksp_part_t *parts, uint64_t cnt, uint32_t seed);

/* Pre-faults the pages of w's mapping holding [gaddr_lo, gaddr_hi) (clamped
 * to the data region's end) in bulk, instead of one fault per page at
 * first touch: writable for a range about to be written whole (write != 0:
 * MADV_POPULATE_WRITE; only on a writable attachment), readable for one
 * about to be read (MADV_POPULATE_READ; read-only attachments too).  2 MiB
 * chunks this process maps already (the middle page of each asked of
 * /proc/self/pagemap) are left alone; prefault.c says why.  Never changes a
 * byte.  A hint: returns 1 when the pages are mapped now (populated, or
 * found mapped), 0 for an empty range or when a populate call failed
 * (kernels before 5.14 say EINVAL, or e.g. no memory now), and the caller
 * goes on either way: each page then faults at first touch as without it.
 * Opens /proc/self/pagemap for the call.  Thread-safe; no lock needed. */
int wksp_private_prefault(const wksp_t *w, uint64_t gaddr_lo, uint64_t gaddr_hi, int write);

/* wksp_private_prefault over the pages holding parts[0..cnt) (ascending),
 * in a few calls: ranges less than 64 KiB apart in one, pagemap opened
 * once, and the list surveyed first (wksp_private_prefault_survey).  Write
 * for restore targets about to be written whole, read for checkpoint
 * sources.  A hint: nothing changes and nothing fails.  Thread-safe; no
 * lock needed. */
void wksp_private_prefault_parts(const wksp_t *w, const wksp_part_t *parts, uint64_t cnt, int write);

/* The same for a caller that pre-faults a list piece by piece, on many
 * threads: a /proc/self/pagemap descriptor kept for its call (threads may
 * share it: the reads are preads) and what a survey found. */
typedef enum {
  WKSP_PREFAULT_ASK,  /* each 2 MiB chunk asked of pagemap (mixed, or not surveyed) */
  WKSP_PREFAULT_SKIP, /* every sampled page mapped: nothing done */
  WKSP_PREFAULT_ALL,  /* no sampled page mapped: everything populated, nothing asked */
} wksp_prefault_mode_t;

typedef struct {
  int pagemap; /* -1 when it cannot be opened: every chunk is populated */
  wksp_prefault_mode_t mode;
} wksp_prefault_t;

/* Opens pagemap (mode ASK); close with wksp_private_prefault_close, which
 * takes a failed open too. */
void wksp_private_prefault_open(wksp_prefault_t *pf);
void wksp_private_prefault_close(wksp_prefault_t *pf);

/* Sets pf's mode from 16 pages spread evenly over the bytes of
 * parts[0..cnt) (16 pagemap reads; prefault.c says why): SKIP, ALL or ASK.
 * Without pagemap or bytes the mode stays. */
void wksp_private_prefault_survey(wksp_prefault_t *pf, const wksp_t *w, const wksp_part_t *parts, uint64_t cnt);

/* Pre-faults parts[0..cnt) (ascending) as pf's mode says. */
void wksp_private_prefault_parts_with(const wksp_t *w, const wksp_prefault_t *pf, const wksp_part_t *parts,
                                      uint64_t cnt, int write);

/* How a call that moves every byte of parts[0..cnt) (ascending) reaches
 * them: through this process's mapping, or through the region's file with
 * read(2)/write(2)-like calls that never touch the mapping.  A fresh
 * process (the CLI) maps none of a workspace, and on some machines its
 * first touch of each 4 KiB page costs more than the copy (bench/FINDINGS.md,
 * "CLI": 1.6 s against 0.15 s a GiB here); a process that works on its
 * own workspace maps all of it, and copies from memory fastest.  So the
 * list is surveyed (wksp_private_prefault_survey): when not all of it is
 * mapped, file_ok is set and the region has a file on normal pages
 * (wksp_private_shmem_file), returns 1 with *fd (a new descriptor, the
 * caller closes it) and *off0 (the file offset of gaddr 0: gaddr g is at
 * *off0 + g); otherwise pre-faults the list as wksp_private_prefault_parts
 * would and returns 0 (*fd = -1).  Nothing fails: the route is a choice
 * of speed, both give the same bytes.  Thread-safe; no lock needed. */
int wksp_private_bytes_route(const wksp_t *w, const wksp_part_t *parts, uint64_t cnt, int write, int file_ok, int *fd,
                             uint64_t *off0);

/* The same choice from a survey the caller made (pf, of the same list),
 * without pre-faulting: for a caller that pre-faults piece by piece on its
 * own threads (the delta writer). */
int wksp_private_bytes_route_with(const wksp_t *w, const wksp_prefault_t *pf, int file_ok, int *fd, uint64_t *off0);

/* n bytes of the region's file fd (from wksp_private_bytes_route) at file
 * offset off, read into b / written from b: FAIL with errno (EIO for a
 * file that ends early), the message naming size and offset. */
int wksp_private_region_get(int fd, uint64_t off, void *b, uint64_t n);
int wksp_private_region_put(int fd, uint64_t off, const void *b, uint64_t n);

/* Test seam of wksp_private_bytes_route: 0 chooses as above, 1 takes the
 * file whenever there is one, -1 never.  Process-wide: set it between
 * calls. */
extern int wksp_private_bytes_route_force;

/* ---- internals shared between src/wksp/ files ------------------------------ */

/* The robust mutex of w, tried first, then waited for as wt says (check and
 * notify, lockwait.c): pthread_mutex_lock's result, or with *give_up set to
 * the check's code when it gave up (the mutex is not held then). */
int wksp_private_mutex_wait(wksp_t *w, const wksp_private_waiter_t *wt, int *give_up);

/* Lock held.  Marks the start / end of a metadata change (gen odd / even). */
void wksp_private_write_begin(wksp_t *w);
void wksp_private_write_end(wksp_t *w);

/* Lock held, write_begin done.  Recomputes every derived structure from the
 * records with priority seed `seed` (stored in the header), merging adjacent
 * free partitions.  recompute_hi: trust the tiling of the active records also
 * for allocated ones (after a bulk apply); otherwise an allocated record whose
 * hi disagrees with its successor is CORRUPT (overlap or gap).  Without
 * recompute_hi all checks run before the first change, so on failure nothing
 * was changed.  With it the caller must leave gen odd on failure (the next
 * lock rebuilds again): the one walk over all part_max records that finds
 * the active ones also rewrites the idle records' links and the free index
 * directory, so a failure can leave those half rewritten.  CORRUPT, NOMEM. */
int wksp_private_rebuild(wksp_t *w, int recompute_hi, uint32_t seed);

/* Lock held.  Whether the shadows form a journal a bulk operation could
 * have committed (every shadow of records 1.. idle or starting a partition
 * strictly inside the data region, no two at the same address), checked
 * before a replay.  CORRUPT saying which shadow is wrong, NOMEM. */
int wksp_private_journal_check(const wksp_t *w);

/* Lock held, write_begin done, the journal committed (WKSP_GEN_JOURNAL):
 * copies every record's shadow over its truth (lo, tag), installs the seed
 * record 0's shadow carries and replaces the journal bit by
 * WKSP_GEN_APPLIED.  Idempotent until then: a bulk operation's commit and
 * recovery's replay both run it.  The caller rebuilds next. */
void wksp_private_journal_apply(wksp_t *w);

/* Lock held, write_begin done: inserts active record x into the free
 * (is_free) or used index.  CORRUPT on a bad link. */
int wksp_private_treap_insert(wksp_t *w, uint32_t x, int is_free);

/* Lock held, write_begin done: an empty free index (every bin root NUL,
 * every bitmap word 0) with the geometry for this part_max and data_max. */
void wksp_private_bins_clear(wksp_t *w);

/* Record p's part of an empty free index directory (bins_clear per record). */
static inline void wksp_private_bin_slot_clear(wksp_rec_t *p) {
  p->bin[0] = p->bin[1] = WKSP_IDX_NULL;
  p->bits = 0;
}

/* The allocated record with the greatest lo <= gaddr (WKSP_IDX_NULL if none);
 * bounded and safe on read-only memory. */
uint32_t wksp_private_used_find(const wksp_t *w, uint64_t gaddr);

/* Full consistency check without writing (works on read-only memory; every
 * index is bounds-checked and every walk bounded).  who names the caller in
 * messages.  CORRUPT, NOMEM. */
int wksp_private_verify(const wksp_t *w, const char *who);

/* Runs fn(w, ctx) as a consistent read: under the lock for a writable
 * attachment; for a read-only one optimistically, retrying while gen is odd
 * or changes (bounded: about 1 s, then CORRUPT). */
int wksp_private_query(wksp_t *w, const char *who, int (*fn)(const wksp_t *w, void *ctx),
                       void *ctx);

/* Tag sets of the tag queries: linear search for a few tags, a sorted copy
 * and binary search beyond.  init: INVAL (NULL tags with cnt > 0, a tag 0),
 * NOMEM; fini frees. */
typedef struct {
  const uint64_t *tags;
  size_t cnt;
  uint64_t *sorted;
} wksp_tagset_t;

int wksp_private_tagset_init(wksp_tagset_t *s, const uint64_t *tags, size_t cnt, const char *who);
void wksp_private_tagset_fini(wksp_tagset_t *s);
int wksp_private_tagset_has(const wksp_tagset_t *s, uint64_t tag);

#endif
