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
 * all or nothing.  Record 0 always stays the lowest partition, so its
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
 * ## Treaps
 * Free partitions: treap keyed by size; further free partitions of a size
 * already in the treap hang off that node in a same-size list (as in the
 * reference: a new one goes to the list head, best fit takes the list head
 * if there is one, else the node, and removing a node promotes the list
 * head).  A list member links next / prev through left / parent and holds
 * its own index in `same`.  This reproduces the reference's choices among
 * equal sizes exactly.  Allocated partitions: treap keyed by lo.  Priority
 * of record i: wksp_private_prio(seed, i), ties broken by index, so the
 * shape is a pure function of the keys, the seed and the list order.
 * Parent links make removal O(1) expected (no descent from the root).  Idle
 * records form a stack linked through `left`. */
#ifndef WKSP_SRC_WKSP_PRIVATE_H
#define WKSP_SRC_WKSP_PRIVATE_H

#include <pthread.h>
#include <stdint.h>

#include "wksp/wksp.h"
#include "shmem/shmem_private.h"

#define WKSP_MAGIC 0xF17EDA2C3731C591ull
#define WKSP_IDX_NULL 0xFFFFFFFFu

/* Low bits of the header's gen; the rest counts completed changes. */
enum {
  WKSP_GEN_WRITING = 1u, /* a change is in progress (or its writer died) */
  WKSP_GEN_JOURNAL = 2u  /* bulk shadows committed: recovery must replay */
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
  uint32_t free_root; /* treap of free partitions by (size, lo) */
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
  uint32_t same;    /* free treap node: head of its same-size list; list member: own index */
  uint64_t new_lo;  /* bulk shadow of lo (record 0: the seed to install) */
  uint64_t new_tag; /* bulk shadow of tag */
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
  WKSP_HOOK_ALLOC_UNLINKED,  /* chosen free partition out of the free treap */
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

/* NULL in production.  Tests set it to stop or kill the process at a point. */
extern void (*wksp_private_test_hook)(int point);

static inline void wksp_private_hook(int point) {
  if (__builtin_expect(wksp_private_test_hook != 0, 0)) wksp_private_test_hook(point);
}

/* ---- interface for the checkpoint layer (see private_api.md) ------------ */

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

/* Lock held.  Validates the metadata (wksp_verify's checks) and returns the
 * allocated partitions ascending in a malloc'd array (*parts = NULL when
 * *cnt == 0; caller free()s).  CORRUPT with a precise message, NOMEM. */
int wksp_private_alloc_list(wksp_t *w, wksp_part_t **parts, uint64_t *cnt);

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

/* ---- internals shared between src/wksp/ files ------------------------------ */

/* Lock held.  Marks the start / end of a metadata change (gen odd / even). */
void wksp_private_write_begin(wksp_t *w);
void wksp_private_write_end(wksp_t *w);

/* Lock held, write_begin done.  Recomputes every derived structure from the
 * records with priority seed `seed` (stored in the header), merging adjacent
 * free partitions.  recompute_hi: trust the tiling of the active records also
 * for allocated ones (after a bulk apply); otherwise an allocated record whose
 * hi disagrees with its successor is CORRUPT (overlap or gap).  All checks run
 * before the first change, so on failure nothing was changed.  CORRUPT, NOMEM. */
int wksp_private_rebuild(wksp_t *w, int recompute_hi, uint32_t seed);

/* Lock held, write_begin done: inserts active record x into the free
 * (is_free) or used treap.  CORRUPT on a bad link. */
int wksp_private_treap_insert(wksp_t *w, uint32_t x, int is_free);

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
