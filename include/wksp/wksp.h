/* wksp/wksp.h: workspaces, a robust shared-memory allocator.
 *
 * A workspace lives at the start of a memory region (named or anonymous,
 * see wksp/shmem.h).  Its layout (docs/FORMAT.md section 6 fixes the part that
 * checkpoints depend on):
 *
 *   [0, 128)                       header
 *   [128, 128 + 64*part_max)       partition records, 64 bytes each
 *   [gaddr_lo, gaddr_hi)           data region, gaddr_lo = 128 + 64*part_max,
 *                                  gaddr_hi = gaddr_lo + data_max
 *
 * A global address (gaddr) is a byte offset from the workspace start and
 * means the same in every process; 0 is NULL.  The data region is always
 * tiled exactly by partitions: an allocation is a partition [lo, hi) with a
 * tag > 0, free space is partitions with tag 0 (adjacent free partitions are
 * always merged).  Each partition uses one of the part_max records; the
 * per-partition records are the single source of truth, every other
 * structure (free-size index, address index, idle list) is derived from them
 * and rebuilt by wksp_rebuild().
 *
 * Allocation policy: best fit (the smallest free partition of at least
 * size + align - 1 bytes; among equal sizes the same one as the reference,
 * whose same-size lists prefer the most recently freed), O(log n) alloc
 * and free.  The allocated partition is exactly [aligned start, aligned
 * start + size); the alignment slack before it and the tail after it stay
 * free partitions, so an allocation takes at most 3 records.  When no spare
 * record is left for the slack (taken first) or the tail, that piece stays
 * inside the allocation instead, which wksp_alloc_at_least reports in
 * *lo / *hi.  So once every record is in use (wksp_usage: total_cnt ==
 * total_max) an allocation may be handed the whole free range it is cut
 * from, however small the request, until a free returns records; a later
 * FULL then names that cause.  This is the reference's policy (Firedancer fd_wksp): replaying
 * the allocation sequences of the reference vectors gives identical layouts
 * and usage figures (tests/wksp/test_wksp_vectors.c).
 *
 * Concurrency: any number of threads and processes may call everything here
 * at once; metadata operations serialize on a robust, process-shared pthread
 * mutex in the header (immune to PID reuse and PID namespaces: the kernel
 * tracks the owning thread).  A process that dies holding the lock (even by
 * SIGKILL, at any instruction) does not block the others: the next caller
 * gets the lock, replays a committed bulk journal if there is one, merges
 * and rebuilds every derived structure from the records, verifies, and goes
 * on.  Outcome of the interrupted call: alloc and free are either complete
 * or absent; tag_free, reset and (checkpoint) replace are all or nothing;
 * rebuild leaves the old or new seed.  No completed allocation is ever lost
 * or changed.  The lock does not cover allocation contents: writes into
 * allocated memory are the caller's business.
 *
 * Read-only attachments (wksp_attach(..., WKSP_RDONLY)): the memory is
 * mapped read-only, so the lock cannot be taken.  Mutating calls fail with
 * PERM.  Queries (tag, tag_query, part_list, usage, verify) read without the
 * lock under a sequence counter: they retry while a writer is active or when
 * the counter changed during the read, and return a consistent snapshot.
 * After about 1 s without one (a writer died and no writable process has
 * repaired it yet, or changes never pause) they fail with CORRUPT saying so;
 * nothing is written either way.
 *
 * Errors: every call returns WKSP_SUCCESS (0) or a WKSP_ERR_* code and
 * records a message (wksp_errmsg()).  Unless stated otherwise a failed call
 * leaves the workspace as it was.  Common to every call taking a wksp_t *:
 * INVAL for NULL, CORRUPT when the memory is no longer a workspace (magic
 * gone) or when the metadata was found inconsistent and could not be
 * repaired (the message names the record and field; the next writable call
 * retries the repair), PERM for mutating calls on a read-only attachment.
 * Damage found in the derived structures in the middle of a change makes
 * that call fail with CORRUPT and flags the workspace, so the next call
 * rebuilds it from the records first; the failed change then counts as
 * interrupted (alloc: an allocation with that tag may exist; free: the
 * allocation may be freed), exactly as if its process had died there.
 *
 * Damaged header: every byte of the 128-byte header is either the truth or
 * derived.  The truth (magic, data_max, part_max, name) cannot be rebuilt:
 * damage there is CORRUPT, from wksp_attach / wksp_join (a bad magic or
 * name, sizes beyond the region) or from the first locking call (part_max
 * disagreeing with record 0, which always starts the data region; a data
 * region ending before the last partition does), or is harmless (another
 * valid name).  Derived fields (the free-index geometry, the roots of the
 * used treap and of the idle stack, gen; the seed, which the treaps' shape
 * must match) are checked at every lock before use and rebuilt from the
 * records when wrong, so the call goes on as if nothing happened
 * (wksp_check reports such repairs).  The mutex is the operating system's:
 * a damaged mutex type is CORRUPT (glibc), and a value in its lock word
 * reads as a live holder, which callers wait for. */
#ifndef WKSP_WKSP_H
#define WKSP_WKSP_H

#include <stddef.h>
#include <stdint.h>

#include "wksp/error.h"
#include "wksp/shmem.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct wksp wksp_t; /* opaque; a pointer to the workspace's first byte */

#define WKSP_ALIGN 128          /* alignment of a workspace's memory */
#define WKSP_ALIGN_DEFAULT 4096 /* alignment used for align == 0 */
#define WKSP_HDR_SZ 128
#define WKSP_PART_SZ 64
#define WKSP_PART_MAX_LIMIT 0xFFFFFFFFull

/* One partition: [gaddr_lo, gaddr_hi) with its tag (0 = free). */
typedef struct {
  uint64_t gaddr_lo;
  uint64_t gaddr_hi;
  uint64_t tag;
} wksp_part_t;

/* Usage figures (wksp_usage). */
typedef struct {
  uint64_t total_max; /* part_max */
  uint64_t total_cnt; /* partitions in use, allocated or free */
  uint64_t total_sz;  /* data_max */
  uint64_t free_cnt, free_sz; /* free partitions and their bytes */
  uint64_t used_cnt, used_sz; /* allocated partitions (matching the tag set) and bytes */
  uint64_t free_max;          /* bytes of the largest free partition (0: none) */
} wksp_usage_t;

/* ---- sizing ------------------------------------------------------------ */

/* Bytes needed for a workspace: align_up(128 + 64*part_max + data_max + 1,
 * 128), or 0 if part_max is 0 or > 2^32-1, data_max is 0, or
 * data_max > 2^64-1 - 128 - (128 + 64*part_max) (docs/FORMAT.md 3.2).  Pure. */
WKSP_API uint64_t wksp_footprint(uint64_t part_max, uint64_t data_max);

/* A part_max suited to a region of `footprint` bytes whose allocations are
 * typically `sz_typical` bytes: (align_down(footprint, 128) - 1 - 128) /
 * (64 + sz_typical), capped at 2^32-1 (as the reference).  0 if footprint
 * or sz_typical is 0 or nothing fits.  Pure. */
WKSP_API uint64_t wksp_part_max_est(uint64_t footprint, uint64_t sz_typical);

/* The largest data_max with wksp_footprint(part_max, data_max) <= footprint
 * (0 if none, or part_max is 0 or > 2^32-1).  Pure. */
WKSP_API uint64_t wksp_data_max_est(uint64_t footprint, uint64_t part_max);

/* ---- lifetime ---------------------------------------------------------- */

/* Formats a new, empty workspace at `mem` (128-aligned, at least
 * wksp_footprint(part_max, data_max) writable bytes; the caller owns the
 * memory) named `name` (docs/FORMAT.md 1.2) with treap seed `seed`, and sets *out
 * (== mem).  Writes the header and all part_max records (O(part_max)); the
 * data region is not touched.  The magic is written last, so a concurrent
 * wksp_join never sees a half-formatted workspace.  Not safe against other
 * users of the same memory.  Errors: INVAL (NULL, misaligned, bad name, bad
 * sizes: nothing written), FAIL (mutex attribute setup: memory left without
 * a magic). */
WKSP_API int wksp_new(void *mem, const char *name, uint32_t seed, uint64_t part_max,
                      uint64_t data_max, wksp_t **out);

/* Checks that mem holds a workspace (magic, part_max / data_max validity,
 * name) and sets *out (== mem; *out = NULL on failure).  Only reads, so it
 * works on read-only memory; the metadata itself is checked by the first
 * locking call (or wksp_verify).  Errors: INVAL (NULL, misaligned), CORRUPT
 * (not a workspace, with the magic / fields found). */
WKSP_API int wksp_join(void *mem, wksp_t **out);

/* Ends use of a handle from wksp_join (the memory is untouched; nothing is
 * held per handle).  INVAL (NULL), CORRUPT (not a workspace). */
WKSP_API int wksp_leave(wksp_t *w);

/* Clears the magic so that the memory is no longer a workspace (later joins
 * and calls fail with CORRUPT).  The caller makes sure nobody else is using
 * it.  INVAL (NULL), CORRUPT (not a workspace), PERM (read-only). */
WKSP_API int wksp_delete(void *mem);

/* Creates named region `name` (see wksp/shmem.h) of `sz` bytes rounded up
 * to the page size, with permission bits `mode`, holding a new, empty
 * workspace named `name` that fills it: part_max 0 picks
 * wksp_part_max_est(region size, 64 KiB), data_max is
 * wksp_data_max_est(region size, part_max).  The creator is not left
 * attached (use wksp_attach).  Errors: INVAL (bad name, sz 0 or too large,
 * unknown page kind, a size too small for part_max partitions and some
 * data, bad mode), and those of wksp_shmem_create (EXIST, UNSUP, PERM,
 * FAIL: ENOSPC) and wksp_new.  On failure nothing is left: a region this
 * call created is removed again, an existing one is untouched.  Process
 * safe: of racing creators of one name exactly one succeeds.  The workspace
 * is formatted before the region gets its name, so the name never holds a
 * region without a complete workspace: a creator killed at any point (even
 * by SIGKILL) leaves the name free (see wksp/shmem.h for the hidden file
 * the route without O_TMPFILE may leave). */
WKSP_API int wksp_new_named(const char *name, uint64_t sz, wksp_page_t page, uint32_t mode,
                            uint32_t seed, uint64_t part_max);

/* As wksp_new_named, but the workspace has exactly `part_max` partitions
 * and `data_max` data bytes (what a checkpoint records of its source:
 * wksp_preview), in a region of wksp_footprint(part_max, data_max) bytes
 * rounded up to the page size (the rounding stays unused).  Errors: INVAL
 * (bad name, part_max / data_max with no valid footprint or one too large
 * for the page size, unknown page kind, bad mode), and as wksp_new_named;
 * on failure nothing is left, an existing region is untouched.  Process
 * safe as wksp_new_named. */
WKSP_API int wksp_new_named_exact(const char *name, uint64_t part_max, uint64_t data_max,
                                  wksp_page_t page, uint32_t mode, uint32_t seed);

/* Anonymous workspace (wksp_shmem_anon_new) of `sz` bytes rounded up to
 * the page size, sized as in wksp_new_named; *out gets its handle, which
 * is also the region's first byte (page-size aligned) and is valid in
 * children forked afterwards.  Errors: INVAL (name, sz, page, out NULL,
 * sizes), those of wksp_shmem_anon_new (UNSUP, FAIL) and of wksp_new;
 * nothing is left on failure.
 * wksp_delete_anon clears the workspace (wksp_delete) and unmaps it in
 * this process.  INVAL if w is not the handle of a live anonymous
 * workspace of this process (then nothing changes). */
WKSP_API int wksp_new_anon(const char *name, uint64_t sz, wksp_page_t page, uint32_t seed,
                           uint64_t part_max, wksp_t **out);
WKSP_API int wksp_delete_anon(wksp_t *w);

#define WKSP_RDONLY 1 /* wksp_attach flag: read-only join */

/* Attaches the named workspace: wksp_shmem_join (read-write, or read-only
 * with WKSP_RDONLY) then wksp_join, then checks that the footprint the
 * header claims fits in the region.  Reference counted per process and
 * mode: attaching a name again in the same mode returns the same handle,
 * and every attach needs one wksp_detach.  A read-only attachment is a
 * PROT_READ mapping (a different handle than a read-write one): it may
 * only be queried, and alloc / free / reset / ... return PERM.
 * Errors: INVAL (bad name, out NULL, flags other than 0 / WKSP_RDONLY),
 * NOENT (no such region), PERM (file permissions forbid the mode), CORRUPT
 * (the region is not a workspace, or its header claims more bytes than the
 * region has), FAIL.  *out is written only on success; a failed attach
 * leaves no join behind.  Thread-safe.
 * wksp_detach ends one attachment (wksp_leave + wksp_shmem_leave); the
 * mapping goes at the last one.  INVAL if w is not the handle of an
 * attachment of this process. */
WKSP_API int wksp_attach(const char *name, int flags, wksp_t **out);
WKSP_API int wksp_detach(wksp_t *w);

/* Removes the named region holding workspace `name`.  It is attached
 * read-only first to check that it is a workspace; then only its name is
 * removed: processes still attached keep a working workspace until they
 * detach, when the memory is freed.  Errors: INVAL (name), NOENT, PERM
 * (cannot read the region, or cannot remove it from its directory),
 * CORRUPT (the region is not a workspace: it is left alone;
 * wksp_delete_region removes it), FAIL. */
WKSP_API int wksp_delete_named(const char *name);

#define WKSP_NOTE_MAX 256 /* bytes that always hold a note (wksp_delete_region, wksp_check) */

/* Removes named region `name` whatever it holds: a workspace (as
 * wksp_delete_named) or not, such as a region whose workspace header is
 * damaged or was never written (a creator killed by a version of wksp that
 * named regions before formatting them).  The region is joined read-only
 * first to see what it holds.  note[note_sz] (optional; WKSP_NOTE_MAX bytes
 * hold any note) gets "" when it held a workspace, else why not, e.g.
 * "held no workspace (bad magic 0x0000000000000000)"; written on success
 * only.  A file that is not a region (its size is not a positive multiple of
 * its page size) is left alone.  Errors: INVAL (name), NOENT, PERM (cannot
 * read the region, or cannot remove it from its directory), CORRUPT (not a
 * region: nothing removed), FAIL.  Processes attached keep their mapping. */
WKSP_API int wksp_delete_region(const char *name, char *note, size_t note_sz);

/* ---- accessors (no lock, never fail on a joined workspace) -------------- */
/* The header fields: name (NUL-terminated, lives in the workspace), seed
 * (changes with reset / rebuild / restore), part_max, data_max, and the data
 * region [gaddr_lo, gaddr_hi) = [128 + 64*part_max, gaddr_lo + data_max). */
WKSP_API const char *wksp_name(const wksp_t *w);
WKSP_API uint32_t wksp_seed(const wksp_t *w);
WKSP_API uint64_t wksp_part_max(const wksp_t *w);
WKSP_API uint64_t wksp_data_max(const wksp_t *w);
WKSP_API uint64_t wksp_gaddr_lo(const wksp_t *w);
WKSP_API uint64_t wksp_gaddr_hi(const wksp_t *w);

/* Local address of gaddr in this process: NULL unless gaddr_lo <= gaddr <=
 * gaddr_hi (gaddr_hi itself gives the one-past-the-end pointer); and the
 * inverse: 0 for NULL or an address outside [gaddr_lo, gaddr_hi].  Pure
 * arithmetic, no lock. */
WKSP_API void *wksp_laddr(const wksp_t *w, uint64_t gaddr);
WKSP_API uint64_t wksp_gaddr(const wksp_t *w, const void *laddr);

/* ---- allocation -------------------------------------------------------- */

/* Allocates at least `sz` bytes aligned to `align` (0 = 4096; any power of
 * two up to 2^63) with tag `tag` > 0.  *gaddr gets the aligned start, *lo /
 * *hi (optional, may be NULL) the partition's extent: [*gaddr, *gaddr + sz)
 * when spare records allowed trimming, else larger (see the policy above).
 * sz 0 gives *gaddr = *lo = *hi = 0 and SUCCESS without checking align/tag
 * beyond the power-of-two rule.  Best fit, O(log n).  Alignment holds for
 * gaddrs; for local addresses only up to the alignment of the mapping (page
 * size for shared-memory joins, see wksp/shmem.h).  On any failure *gaddr,
 * *lo, *hi are 0 and nothing changed.  Errors: INVAL (NULL, align not a
 * power of two, tag 0), PERM (read-only), FULL (no free partition of
 * sz + align - 1 bytes; the message gives the largest free one, and says
 * "no partition record left (part_max N, all in use)" when every record
 * is in use, see the policy above), CORRUPT (as
 * above: the metadata is left flagged and repaired by the next call).
 * wksp_alloc is the same without *lo / *hi. */
WKSP_API int wksp_alloc_at_least(wksp_t *w, uint64_t align, uint64_t sz, uint64_t tag,
                                 uint64_t *gaddr, uint64_t *lo, uint64_t *hi);
WKSP_API int wksp_alloc(wksp_t *w, uint64_t align, uint64_t sz, uint64_t tag, uint64_t *gaddr);

/* Frees the allocation containing gaddr (any address inside it) and merges
 * it with free neighbours.  O(log n); finding the allocation is usually O(1)
 * when gaddr is the start wksp_alloc returned (see wksp_private.h, home
 * slots).  INVAL (gaddr 0, outside the data
 * region, or inside free space, e.g. a double free: nothing changes), PERM,
 * CORRUPT. */
WKSP_API int wksp_free(wksp_t *w, uint64_t gaddr);

/* *tag = tag of the allocation containing gaddr; 0 if gaddr is in free
 * space or outside the data region (not an error).  O(log n).  INVAL (NULL
 * w or tag), CORRUPT.  Works on read-only attachments. */
WKSP_API int wksp_tag(wksp_t *w, uint64_t gaddr, uint64_t *tag);

/* *out = the partition containing gaddr: the allocation (tag > 0, the whole
 * partition [gaddr_lo, gaddr_hi) it occupies, alignment slack not included)
 * or the free range (tag 0) around it.  The answer is a snapshot: another
 * thread or process may free, merge or split the partition right after the
 * call returns (hold your own reference to an allocation to keep it alive).
 * O(log n) for an allocation, O(log n) plus one step along the address list
 * for free space.  INVAL (NULL w or out; gaddr outside the data region
 * [wksp_gaddr_lo, wksp_gaddr_hi), which includes 0), CORRUPT (metadata
 * damaged: the message names the record).  *out is zeroed on failure.
 * Works on read-only attachments (see above). */
WKSP_API int wksp_part_find(wksp_t *w, uint64_t gaddr, wksp_part_t *out);

/* Allocations whose tag is in tags[0..tag_cnt) (each tag > 0; tag_cnt 0
 * matches nothing), ascending gaddr; the first min(total, out_max) are
 * written to out (out may be NULL when out_max is 0), *cnt gets the total.
 * O(partitions).  INVAL (NULL cnt, NULL out with out_max > 0, NULL tags with
 * tag_cnt > 0, a tag 0), NOMEM (more than 8 tags need a sorted copy),
 * CORRUPT.  Works on read-only attachments. */
WKSP_API int wksp_tag_query(wksp_t *w, const uint64_t *tags, size_t tag_cnt, wksp_part_t *out,
                            size_t out_max, size_t *cnt);

/* Frees every allocation with a tag in tags[0..tag_cnt) (tag_cnt 0: none),
 * atomically: a crash inside leaves all of them freed or none.
 * O(part_max) when something matches.  INVAL (as tag_query), NOMEM, PERM,
 * CORRUPT. */
WKSP_API int wksp_tag_free(wksp_t *w, const uint64_t *tags, size_t tag_cnt);

/* Every partition, free (tag 0) and allocated, ascending; output and
 * errors as tag_query.  Works on read-only attachments. */
WKSP_API int wksp_part_list(wksp_t *w, wksp_part_t *out, size_t out_max, size_t *cnt);

/* Fills the whole partition of the allocation containing gaddr with byte
 * (unsigned char)c, holding the lock (so it cannot be freed meanwhile).
 * INVAL (as wksp_free), PERM, CORRUPT. */
WKSP_API int wksp_memset(wksp_t *w, uint64_t gaddr, int c);

/* Frees everything (one free partition left) and sets the seed, all or
 * nothing under crashes.  O(part_max).  PERM, CORRUPT. */
WKSP_API int wksp_reset(wksp_t *w, uint32_t seed);

/* Usage figures: total_* and free_* (free_max included) for the whole
 * workspace, used_* only for allocations with a tag in tags[0..tag_cnt)
 * (tag_cnt 0: all).  total_max - total_cnt records are idle.
 * O(partitions).  *out is zeroed on failure.  INVAL (NULL out, tags as
 * tag_query), NOMEM, CORRUPT.  Works on read-only attachments. */
WKSP_API int wksp_usage(wksp_t *w, const uint64_t *tags, size_t tag_cnt, wksp_usage_t *out);

/* ---- integrity --------------------------------------------------------- */

/* Full metadata check, without changing anything: header, address list
 * (tiles the data region exactly, back links, no adjacent free
 * partitions), every record active or on the idle stack exactly once, both
 * indexes (the used treap and every free-size bin: key order, heap order,
 * parent links, bin membership, node counts; the bins' bitmap word by
 * word).  CORRUPT with a message naming the record and what is wrong; NOMEM
 * (scratch for the treap walks).  O(part_max).
 * On a writable attachment it takes the lock, so a workspace left behind by
 * a dead writer, or with a derived header field damaged, is repaired first
 * and then checked (wksp_check repairs everything derived and says what).
 * On a read-only attachment (read access to the region is all it needs) it
 * writes nothing and takes no lock (the lock lives in the region and needs
 * write access): it reads under the header's sequence counter, retrying
 * while a change is in progress or when one completed during the read, so
 * what it checks is the state between two completed changes, never a
 * half-made one.  What it cannot do there is repair: a change left half
 * done by a writer that died (or changes that never pause) makes it fail
 * with CORRUPT after about 1 s, saying so, until a writable attachment
 * (any locking call) has repaired the workspace.  Allocation contents are
 * not metadata and are not checked either way. */
WKSP_API int wksp_verify(wksp_t *w);

/* Checks the workspace and repairs what the partition records allow: takes
 * the lock (which recovers from a holder that died, and rebuilds derived
 * header fields found wrong), verifies every structure as wksp_verify and,
 * if that fails, rebuilds the derived state from the records with the
 * current seed and verifies again.  Never changes an allocation.
 * note[note_sz] (optional; WKSP_NOTE_MAX bytes hold it, longer is cut)
 * gets "" when nothing needed repair, else what was wrong and repaired,
 * e.g. "free index geometry 0x2ff, expected 0x202; rebuilt from the
 * partition records"; written on success only.  Errors: INVAL (NULL),
 * PERM (read-only attachment), CORRUPT (not a workspace, or damage the
 * records cannot repair: a source of truth such as part_max, data_max or
 * the records themselves disagree, or the lock is damaged; the message
 * names what verify found and why the rebuild refused; nothing changed),
 * NOMEM, FAIL.  Thread- and process-safe (it holds the lock throughout). */
WKSP_API int wksp_check(wksp_t *w, char *note, size_t note_sz);

/* State of the workspace lock (wksp_lock_info). */
enum {
  WKSP_LOCK_FREE = 0,   /* not held */
  WKSP_LOCK_HELD = 1,   /* held by thread `tid` */
  WKSP_LOCK_DEAD = 2,   /* its holder died holding it (thread `tid`, 0 if not recorded), or
                         * its word is damaged in a way no holder leaves (tid 0) */
  WKSP_LOCK_BROKEN = 3, /* marked not recoverable (never done by wksp itself) */
  WKSP_LOCK_UNKNOWN = 4 /* this build cannot read the C library's mutex */
};

typedef struct {
  int state;     /* WKSP_LOCK_* */
  uint32_t tid;  /* HELD: the holder; DEAD: the dead holder (0: unknown) */
  int writing;   /* a metadata change is in progress, or was interrupted */
} wksp_lock_info_t;

/* A look at the lock without taking it: never blocks, writes nothing,
 * works on read-only attachments.  The robust mutex records its holder's
 * thread id, and the kernel marks it when that thread dies (even by
 * SIGKILL), so DEAD is certain; tid is a thread id in the holder's PID
 * namespace, which may not be the caller's.  DEAD and `writing` with a
 * free lock are repaired by the next call that takes the lock on a
 * writable attachment (e.g. wksp_usage or `wksp check`).  The answer is a
 * snapshot.  Reads glibc's mutex fields (the futex word and owner); with
 * another C library state is UNKNOWN.  *out is zeroed on failure.
 * Errors: INVAL (NULL w or out), CORRUPT (not a workspace). */
WKSP_API int wksp_lock_info(wksp_t *w, wksp_lock_info_t *out);

/* Rebuilds every derived structure from the partition records with a new
 * seed, merging adjacent free partitions.  Never changes an allocation.
 * CORRUPT, with nothing changed (seed included), if the records do not tile
 * the data region: two records start at the same address, one starts
 * outside the data region, record 0 is not the lowest partition, or an
 * allocation's end overlaps the next partition or leaves a gap.  NOMEM
 * (scratch index, nothing changed), PERM.  O(part_max + n log n). */
WKSP_API int wksp_rebuild(wksp_t *w, uint32_t seed);

/* ---- waiting for the lock ------------------------------------------------ */

/* Calls that hold the lock for long (checkpoint, restore: see the lock_wait
 * options in wksp/checkpt.h) can tell their caller that they are blocked
 * behind another holder, and who it is, through this callback.  It is
 * called on the calling thread, never while the lock is held by the call,
 * and only when the lock was not free at the first try:
 *   - once with done = 0 when the call has waited WKSP_LOCK_NOTICE_NS (the
 *     moment to tell a user; shorter waits, such as behind an allocator
 *     call, raise nothing else);
 *   - once with done = 1 when the wait ends (the lock taken, or the call
 *     giving up), for every wait, short ones included: waited_ns is then
 *     the whole wait (for a summary that keeps it apart from the transfer).
 * pid is the process holding the lock when the event was raised, as its
 * holder's thread recorded it in the lock word (the kernel's robust-futex
 * protocol requires the owner's thread id there) mapped to its process
 * through /proc; 0 when not known (no holder any more, or a C library
 * that keeps it elsewhere).  A holder in another PID namespace shows its
 * own namespace's id.  The callback must not call wksp functions on the
 * workspace. */
typedef struct {
  int64_t pid;        /* process holding the lock; 0 = not known */
  uint64_t waited_ns; /* time waited so far (done = 1: in total) */
  int done;           /* 0: still blocked (the notice); 1: the wait ended */
} wksp_lock_wait_t;

typedef void (*wksp_lock_wait_fn_t)(const wksp_lock_wait_t *ev, void *ctx);

#define WKSP_LOCK_NOTICE_NS 100000000ull /* 0.1 s: a wait this long raises done = 0 */

/* ---- "name:gaddr" address strings ---------------------------------------- */

#define WKSP_ADDR_MAX 64 /* bytes of a formatted address, NUL included */

/* Writes "name:gaddr" (gaddr in decimal) and a NUL into buf[buf_sz];
 * WKSP_ADDR_MAX always suffices.  Errors: INVAL (bad name, buf NULL,
 * buf_sz too small: the message says how many bytes are needed; buf is
 * then untouched).  Pure, thread-safe. */
WKSP_API int wksp_addr_format(const char *name, uint64_t gaddr, char *buf, size_t buf_sz);

/* Parses "name:gaddr": a valid name (1..39 bytes), ':', then the gaddr in
 * decimal or as hex after 0x / 0X, with nothing else (no sign, spaces or
 * trailing bytes).  Errors: INVAL, naming the problem: NULL argument, no
 * ':' within the first 40 bytes, bad name, no digits, a byte that is not a
 * digit, a value above 2^64-1.  name and *gaddr are written only on
 * success.  Pure, thread-safe. */
WKSP_API int wksp_addr_parse(const char *addr, char name[WKSP_NAME_MAX], uint64_t *gaddr);

/* Parses `addr` ("name:gaddr"), attaches workspace `name` read-write and
 * sets *laddr = wksp_laddr(w, gaddr).  Reference counted like
 * wksp_attach: every successful map needs one wksp_unmap.  Errors: INVAL
 * (laddr NULL, bad address string, gaddr 0 or outside the workspace), and
 * those of wksp_attach.  On failure no attachment is left.
 * wksp_unmap(laddr) detaches the workspace containing laddr (any address
 * inside its mapping, such as one wksp_map returned).  INVAL if laddr is
 * in no attached workspace of this process. */
WKSP_API int wksp_map(const char *addr, void **laddr);
WKSP_API int wksp_unmap(void *laddr);

#ifdef __cplusplus
}
#endif

#endif
