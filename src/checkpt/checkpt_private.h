/* The checkpoint layer's private interface: what its files share (not API;
 * docs/ARCHITECTURE.md has the layout: one concern per file, calls going
 * down its list).  Sections name the file that implements them. */
#ifndef WKSP_CHECKPT_PRIVATE_H
#define WKSP_CHECKPT_PRIVATE_H

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "format_private.h"
#include "util/err.h"
#include <wksp/checkpt.h>
#include <wksp/frame.h>

/* ---- input (input.c) -----------------------------------------------------
 * A checkpoint to read: random access (a regular file read with pread(2),
 * an unnamed temporary file a pipe was spooled into, or bytes in memory)
 * or a sequential fd. */
typedef struct {
  const uint8_t *mem; /* the checkpoint in memory (tests), else NULL */
  int rfd;            /* random access: the file, read with pread (-1 none) */
  uint64_t base;      /* its file offset of checkpoint byte 0 */
  uint64_t sz;        /* checkpoint bytes (mem or rfd): fixed at open */
  int fd;             /* stream fd (not owned) when neither */
  int own_fd;         /* fd to close at fini (-1 none) */
  const char *label;  /* path or label for messages */
} checkpt_input_t;

static inline int checkpt_input_random(const checkpt_input_t *in) { return in->mem || in->rfd >= 0; }

/* An input over sz bytes at b (not copied). */
static inline checkpt_input_t checkpt_input_mem(const void *b, uint64_t sz, const char *label) {
  return (checkpt_input_t){.mem = b, .sz = sz, .rfd = -1, .fd = -1, .own_fd = -1, .label = label};
}

/* Opens path (fd < 0) or fd.  A regular file is random access from fd's
 * current offset (path: 0) to its size now; anything else is a stream
 * unless flags has CHECKPT_IN_NEED_MEM, which spools it (wksp_private_checkpt_
 * input_spool). */
enum {
  CHECKPT_IN_NEED_MEM = 1 /* spool streams so that everything is random access */
};
int wksp_private_checkpt_input_open(checkpt_input_t *in, const char *path, int fd, const char *label,
                                 int flags);
/* Spools stream in->fd, whose first pre_sz (<= CHECKPT_PREVIEW_MAX) bytes the
 * caller already consumed (pre), into an unnamed temporary file in $TMPDIR
 * (else /tmp), which becomes the input.  The head is checked first
 * (wksp_private_checkpt_head: CORRUPT, nothing written, for what is not a
 * checkpoint); v2: CORRUPT as soon as the stream is longer than its header
 * allows; v1: reading stops there (what follows the terminator is never
 * read).  FAIL (ENOSPC) before the spool would leave less than 1/32 of its
 * filesystem (at most 64 MiB) free; FAIL on read / write errors. */
int wksp_private_checkpt_input_spool(checkpt_input_t *in, const uint8_t *pre, size_t pre_sz);
void wksp_private_checkpt_input_fini(checkpt_input_t *in);
/* Reads bytes [off, off + n) of a random-access input into buf.  CORRUPT
 * past its size or when the file ended early (it shrank: "file truncated
 * while reading ..."), FAIL with errno on a read error. */
int wksp_private_checkpt_input_read(const checkpt_input_t *in, void *buf, uint64_t n, uint64_t off);
/* A frame reader on a random-access input (pread for files). */
int wksp_private_checkpt_input_reader(const checkpt_input_t *in, wksp_frame_reader_t **r);
/* A failure rc of frame reader r while reading the checkpoint `what`,
 * whose offset 0 is checkpoint offset base: when the input ended inside a
 * read, CORRUPT "truncated at offset N (expected M bytes)" (checkpoint
 * offsets: where the bytes stop, where the read in progress needed them
 * to reach); otherwise rc with "<what>: <where>: " at the start of its
 * cause (a FAIL without errno, bytes missing inside a complete input,
 * becomes CORRUPT). */
int wksp_private_checkpt_read_fail(const wksp_frame_reader_t *r, uint64_t base, int rc,
                                   const char *what, const char *where);
/* The message of every truncated checkpoint: CORRUPT "<what>: truncated at
 * offset <at> (expected <end> bytes)", at where its bytes stop and end
 * where the read in progress needed them to reach (checkpoint offsets). */
int wksp_private_checkpt_truncated(const char *what, uint64_t at, uint64_t end);
/* Before reading all of a file input: tells the kernel so
 * (POSIX_FADV_SEQUENTIAL: larger read-ahead where the filesystem reads
 * ahead). */
void wksp_private_checkpt_input_sequential(const checkpt_input_t *in);
/* rc, unless rc is an error and the file is now shorter than when it was
 * opened: then CORRUPT "file truncated while reading: <label> is now N
 * bytes, expected M", whatever the reading error was (a frame that seemed
 * to end early, a short read). */
int wksp_private_checkpt_input_changed(const checkpt_input_t *in, int rc);

/* ---- the first bytes (head.c) --------------------------------------------- */
#define CHECKPT_PREVIEW_MAX 165
int wksp_private_checkpt_preview_v2(const uint8_t *p, size_t sz, wksp_preview_t *out,
                                 const char *what);
int wksp_private_checkpt_preview_any(const uint8_t *p, size_t sz, wksp_preview_t *out,
                                  const char *what);
/* The first n (<= CHECKPT_PREVIEW_MAX; fewer only if that is all there is)
 * bytes p of a checkpoint: *pv as preview, and *max_sz the most bytes a
 * checkpoint with that header can have (the checkpt_*_max_sz below).  CORRUPT
 * naming `what`: "not a wksp checkpoint: bad magic 0x... (expected 0x...)",
 * or the header field that is wrong. */
int wksp_private_checkpt_head(const uint8_t *p, size_t n, const char *what, wksp_preview_t *pv,
                           uint64_t *max_sz);

/* ---- limits ------------------------------------------------------------------
 * Beyond docs/FORMAT.md, a checkpoint of source geometry (part_max, data_max)
 * holds at most part_max allocations (each needs a partition record of
 * the source) and at most checkpt_frames_max(part_max) cgroup frames in all
 * and as many volumes (the reference writes one volume of at most 1024
 * frames; a writer that splits volumes needs no more than a frame per
 * allocation).  Readers enforce them (CORRUPT), and with them its size has
 * a bound: the sizes of header, info (at most 64 KiB of strings), every
 * command, data_max bytes of allocations, appendices and footer, with
 * LZ4's worst-case expansion of each chunk (LZ4_COMPRESSBOUND) for v3.
 * (Saturated at UINT64_MAX.) */
static inline uint64_t checkpt_frames_max(uint64_t part_max) {
  return part_max > CHECKPT_CGROUP_MAX ? part_max : CHECKPT_CGROUP_MAX;
}
uint64_t wksp_private_checkpt_v2_max_sz(uint64_t part_max, uint64_t data_max, int frame_style);
uint64_t wksp_private_checkpt_v1_max_sz(uint64_t part_max, uint64_t data_max);

/* The seal (digest.c, docs/FORMAT.md 12): the info's app id holds the mark and
 * the build info's first and last lines the digest.  A place within
 * CHECKPT_SEAL_NEAR bits of its sealed form shows a seal. */
#define CHECKPT_SEAL_MARK 0x4c41455350534b57ull /* "WKSPSEAL" on disk */
#define CHECKPT_SEAL_NEAR 8
typedef struct {
  int state;       /* WKSP_SEAL_NONE (no sign of a seal), _OK (intact: the content must
                      still match digest), _BROKEN (signs of a seal that does not hold) */
  uint64_t digest; /* _OK: the recorded digest */
  char why[128];   /* _BROKEN: what is wrong with it */
} checkpt_seal_t;

/* ---- scan (scan.c, v1.c, info.c): the whole structure of a random-access checkpoint */
typedef struct {
  wksp_checkpt_info_t info; /* the public description */
  checkpt_hdr_t hdr;           /* v2 */
  checkpt_ftr_t ftr;           /* v2 */
  uint64_t *cg_next;        /* v2: where each cgroup frame must end */
  uint64_t *cg_first;       /* index into file_parts of each cgroup's first allocation */
  wksp_part_t *file_parts;  /* allocations in file order (cgroup by cgroup) */
  uint64_t *v1_data_off;    /* v1: file offset of each allocation's bytes (file order) */
  checkpt_seal_t seal;         /* what the info says of a seal (digest.c) */
} checkpt_scan_t;

/* Validates the whole structure of a random-access input (v1 or v2) without
 * decoding allocation contents.  CORRUPT / NOMEM (FAIL on a read error)
 * with the scan freed. */
int wksp_private_checkpt_scan(checkpt_scan_t *s, const checkpt_input_t *in);
void wksp_private_checkpt_scan_fini(checkpt_scan_t *s);
/* info.c, for the v1 and v2 scanners: copy the nine info strings (str[k] of
 * len[k] bytes, no NUL needed) into owned memory; sort the allocations into
 * info.parts and check they do not overlap (CORRUPT). */
int wksp_private_checkpt_info_strings(checkpt_scan_t *s, const char *const str[CHECKPT_S_CNT],
                                   const uint64_t len[CHECKPT_S_CNT]);
int wksp_private_checkpt_info_parts(checkpt_scan_t *s, const char *what);

/* ---- progress (progress.c) ------------------------------------------------
 * The progress of one call, for wksp_progress_fn_t: any thread counts the
 * allocation bytes it handled (add; undo when work is thrown away to be
 * redone), and the calling thread alone calls the callback: from add and
 * tick, with the count when it grew (never past total, never backwards),
 * and from end.  Work is done in steps of at most CHECKPT_PROGRESS_STEP
 * bytes (a multiple of the LZ4 chunk, so that a buffer read in steps
 * decodes the writer's chunks) so that the caller reports at least that
 * often while it works itself; once it has nothing left to do, it waits
 * for the workers in progress_wait, which reports each time a worker
 * crosses a step boundary.  m NULL or without a callback: nothing. */
enum { CHECKPT_PROGRESS_STEP = 4 << 20 };
typedef struct {
  wksp_progress_fn_t fn;
  void *ctx;
  uint64_t total;       /* 0 when not known (pipes) */
  _Atomic uint64_t done;
  uint64_t reported;    /* the calling thread's only */
  pthread_t caller;
  int idle;             /* the caller waits in progress_wait (lock held) */
  pthread_mutex_t lock;
  pthread_cond_t cv;
} checkpt_progress_t;

void wksp_private_checkpt_progress_init(checkpt_progress_t *m, wksp_progress_fn_t fn, void *ctx,
                                        uint64_t total);
void wksp_private_checkpt_progress_fini(checkpt_progress_t *m);
void wksp_private_checkpt_progress_add(checkpt_progress_t *m, uint64_t n);
void wksp_private_checkpt_progress_undo(checkpt_progress_t *m, uint64_t n);
void wksp_private_checkpt_progress_tick(checkpt_progress_t *m);
/* tick when called on the calling thread, else nothing: for code that
 * runs on any thread (a pool's task loop). */
void wksp_private_checkpt_progress_poll(checkpt_progress_t *m);
/* The last report: done (the call's whole work; also the total when it
 * was not known), on the calling thread. */
void wksp_private_checkpt_progress_end(checkpt_progress_t *m, uint64_t done);
/* Waits until finished(arg), which a worker makes true and then announces
 * with progress_wake, reporting the count whenever a worker wakes it. */
void wksp_private_checkpt_progress_wait(checkpt_progress_t *m, int (*finished)(void *), void *arg);
void wksp_private_checkpt_progress_wake(checkpt_progress_t *m);

/* ---- decoding (decode.c) ---------------------------------------------------
 * Decodes every allocation of a scanned, random-access checkpoint over `threads`
 * threads: dest(ctx, p) says where p's bytes go, then done(ctx, p, bytes)
 * (optional) is called.  Each cgroup frame's commands must match the scan
 * and the frame must end where the next starts.  CORRUPT naming the frame.
 * dest NULL (v2 only): decode everything into scratch memory and discard it
 * (verification).  m (may be NULL): the bytes placed at dest are added to
 * it, and the caller reports them while it waits for the other threads. */
typedef void *(*checkpt_dest_fn_t)(void *ctx, const wksp_part_t *p);
typedef int (*checkpt_done_fn_t)(void *ctx, const wksp_part_t *p, const void *bytes);
int wksp_private_checkpt_data_run(const checkpt_input_t *in, const checkpt_scan_t *s, uint32_t threads,
                               checkpt_dest_fn_t dest, checkpt_done_fn_t done, void *ctx,
                               checkpt_progress_t *m);
/* Bytes on their way to a region's file (wksp_private_bytes_route) go
 * through buffers of this size: a multiple of the writer's LZ4 chunks, so
 * that the same blocks decode however the reads are cut. */
#define CHECKPT_COPY_BUF (1ull << 20)

/* The bytes of allocations parts[0, n), in order, from frame reader r (at
 * the first one's bytes) into file fd at off0 + gaddr, through buf
 * (CHECKPT_COPY_BUF bytes) and pwrite(2); each step added to m (may be
 * NULL).  The reader's failure, or FAIL with the errno of a write. */
int wksp_private_checkpt_frame_to_file(wksp_frame_reader_t *r, int fd, uint64_t off0, uint8_t *buf,
                                       checkpt_progress_t *m, const wksp_part_t *parts, uint64_t n);

/* data_run with every allocation's bytes written to file fd at offset
 * off0 + gaddr (a region's file: wksp_private_bytes_route) instead of to
 * a destination in memory: read or decoded into a 1 MiB buffer per thread,
 * then pwrite(2), never through a mapping.  Errors as data_run; a write
 * that fails is FAIL with its errno. */
int wksp_private_checkpt_data_run_file(const checkpt_input_t *in, const checkpt_scan_t *s, uint32_t threads, int fd,
                                       uint64_t off0, checkpt_progress_t *m);
/* The same without a destination: every allocation's bytes are handed to
 * piece(ctx, p, at, bytes, n, slot) in pieces of at most 64 KiB, in order
 * within an allocation (bytes [at, at + n) of p), each allocation on one
 * thread, whose pool slot (< WKSP_CHECKPT_THREADS_MAX) is `slot`; pieces
 * are only valid during the call.  A non-zero return stops the run with
 * that code. */
typedef int (*checkpt_piece_fn_t)(void *ctx, const wksp_part_t *p, uint64_t at, const uint8_t *bytes,
                               uint64_t n, uint32_t slot);
int wksp_private_checkpt_data_pieces(const checkpt_input_t *in, const checkpt_scan_t *s, uint32_t threads,
                                  checkpt_piece_fn_t piece, void *ctx);

/* ---- content digest (digest.c) and seal (seal.c) ---------------------------
 * The digest is the sum of digest_record(p) for every allocation and of
 * digest_piece(gaddr, bytes, n) for its bytes in pieces of
 * CHECKPT_DIGEST_PIECE counted from its start (gaddr: the piece's address). */
#define CHECKPT_DIGEST_PIECE 65536
uint64_t wksp_private_checkpt_digest_piece(uint64_t gaddr, const uint8_t *b, uint64_t n);
/* Which XXH3 code digest_piece runs on this CPU ("XXH3, AVX2", "XXH3,
 * SSE2", ...), for benchmarks.  With WKSP_DIGEST_AVX2 (x86-64 builds, the
 * Makefile) digest_avx2.c's XXH3 compiled for AVX2 is used on CPUs that
 * have it: the same values, about twice as fast as SSE2. */
const char *wksp_private_checkpt_digest_impl(void);
#if defined(WKSP_DIGEST_AVX2)
uint64_t wksp_private_checkpt_xxh3_avx2(const uint8_t *b, uint64_t n, uint64_t seed);
#endif
uint64_t wksp_private_checkpt_digest_record(const wksp_part_t *p);
uint64_t wksp_private_checkpt_digest_records(const wksp_part_t *parts, uint64_t cnt); /* their sum */
/* seal.c: the build-info line carrying d (written into out, its length returned:
 * digest_line_sz(); the 16 hex digits start at digest_hex_at()). */
size_t wksp_private_checkpt_digest_line(char *out, size_t cap, uint64_t d);
size_t wksp_private_checkpt_digest_hex_at(void);
size_t wksp_private_checkpt_digest_line_sz(void);
/* 1 and *d if binfo (len bytes, no NUL needed) ends with a digest line. */
int wksp_private_checkpt_digest_parse(const char *binfo, size_t len, uint64_t *d);
/* The digest of w's bytes at parts[0..cnt) (a restore's result), read
 * through the mapping (fd < 0) or from the region's file fd (gaddr g at
 * off0 + g; a CHECKPT_COPY_BUF buffer per thread): FAIL with errno if a
 * read fails. */
int wksp_private_checkpt_digest_of(wksp_t *w, const wksp_part_t *parts, uint64_t cnt, uint32_t threads, int fd,
                                   uint64_t off0, uint64_t *d);

void wksp_private_checkpt_seal_read(checkpt_seal_t *s, uint64_t app_id, const char *binfo, size_t len);
/* CORRUPT for a broken seal; UNSUP for no seal when `require`; else SUCCESS.
 * Messages start with `what`. */
int wksp_private_checkpt_seal_gate(const checkpt_seal_t *s, int require, const char *what);
/* decode.c: decodes every allocation of a scanned, random-access checkpoint (a data check)
 * and, when it is sealed, checks its content digest: CORRUPT for a broken
 * seal or a mismatch.  *seal (if not NULL): WKSP_SEAL_NONE, _OK or
 * _BROKEN. */
int wksp_private_checkpt_check_data(const checkpt_input_t *in, const checkpt_scan_t *s, uint32_t threads,
                                 int *seal);
/* CORRUPT: the allocations do not match the recorded digest. */
int wksp_private_checkpt_seal_mismatch(const char *what, uint64_t want, uint64_t got);
/* The build info of a checkpoint written now: body, and with seal a
 * placeholder digest line before and after it; hex_at[k] gets where digest
 * k's 16 hex digits are in it (0 without seal).  Returns its length. */
size_t wksp_private_checkpt_seal_binfo(char *out, size_t cap, const char *body, int seal,
                                      uint64_t hex_at[2]);
/* Fills in the digest d at the file offsets off[k] of the placeholders'
 * digits (fd: the written file).  FAIL naming label. */
int wksp_private_checkpt_seal_patch(int fd, const uint64_t off[2], uint64_t d, const char *label);

/* ---- diff (diff.c) --------------------------------------------------------
 * Lock held: wksp_checkpt_diff of a random-access input (verify of wksp_checkpt).
 * piece_hash (may be NULL): on success a malloc'd array of the hash of
 * every 64 KiB piece of the file's allocations, in piece order (the index
 * of docs/FORMAT.md 13), from the decoding the digest needs anyway. */
int wksp_private_checkpt_diff_locked(wksp_t *w, const checkpt_input_t *in, uint32_t threads,
                                  wksp_diff_fn_t each, void *ctx, wksp_checkpt_diff_t *out,
                                  uint64_t **piece_hash);
/* The offset of the first byte where bytes and have (n bytes, have in a
 * workspace the application may be writing) differ, UINT64_MAX if none. */
uint64_t wksp_private_diff_bytes(const uint8_t *bytes, const uint8_t *have, uint64_t n);
/* Merges a file's allocations cp (cn, ascending) with a workspace's wp (wn,
 * ascending) by range.  With cand: only marks cand[i] = cp[i] has w's range
 * and tag (its bytes are to be compared).  Without: counts every
 * difference in out and tells each (first[i]: cp[i]'s first differing
 * byte, UINT64_MAX none). */
void wksp_private_diff_walk(const wksp_part_t *cp, uint64_t cn, const uint64_t *first, uint8_t *cand,
                            const wksp_part_t *wp, uint64_t wn, wksp_diff_fn_t each, void *ctx,
                            wksp_checkpt_diff_t *out);

/* ---- the workspace lock (lock.c) -------------------------------------------
 * Takes w's lock for checkpt / restore, reporting a wait to fn (may be
 * NULL).  feed_fd >= 0: a restore's input still being read (a pipe), whose
 * writer may be the lock's holder: when it is, blocked on the full pipe,
 * the wait cannot end and the call gives up with DEADLK.  Errors as
 * wksp_private_lock, wrapped with "<verb> <label>: lock". */
int wksp_private_checkpt_lock(wksp_t *w, wksp_lock_wait_fn_t fn, void *ctx, int feed_fd,
                           const char *verb, const char *label);

/* ---- restore (stream.c, target.c) -------------------------------------------
 * Options as resolved by wksp_restore: o->threads in 1..THREADS_MAX. */

/* Stream path: in is a stream whose header h (read, checked) says a v2
 * checkpoint whose source data region lies inside w's: lock, then restore
 * frame by frame as they arrive (on the calling thread for threads 1, else
 * pipelined, also in stream.c).  Any error after the first change resets w. */
int wksp_private_checkpt_restore_stream(wksp_t *w, checkpt_input_t *in, const checkpt_hdr_t *h,
                                       const wksp_restore_opts_t *o);
/* target.c: FULL with advice when a range of parts[0..cnt) (ascending) lies outside
 * w's data region. */
int wksp_private_checkpt_fit_check(wksp_t *w, const wksp_part_t *parts, uint64_t cnt,
                                const char *what);
/* Appends " (target reset to empty)" to the current message (its cause
 * too; wksp_err_append); returns rc. */
int wksp_private_checkpt_after_reset(int rc);
/* The restored bytes of parts[0..cnt) are in w: with seal (may be NULL) OK,
 * they must match its digest (CORRUPT naming both, messages start with
 * `what`), read back from the region's file fd (off0 as for
 * wksp_private_bytes_route) when they went there, else from the mapping
 * (fd -1); then the partition records are replaced (seed o->seed). */
int wksp_private_checkpt_target_finish(wksp_t *w, const wksp_part_t *parts, uint64_t cnt,
                                       const checkpt_seal_t *seal, const wksp_restore_opts_t *o, int fd,
                                       uint64_t off0, const char *what);

/* The thread count of an API call (0 = 1, clamped to the maximum): resolved
 * once at the edge, taken as is everywhere below. */
static inline uint32_t checkpt_threads(uint32_t threads) {
  return !threads ? 1 : threads > WKSP_CHECKPT_THREADS_MAX ? WKSP_CHECKPT_THREADS_MAX : threads;
}

/* ---- thread pool (pool.c) ------------------------------------------------
 * Runs task(ctx, i) for i in [0, cnt) on `threads` threads (the caller is
 * one of them), handing tasks out in increasing order.  The first failing
 * task's code and message win; tasks not yet started are then skipped.
 * Returns SUCCESS or that code, with its message recorded on the calling
 * thread. */
typedef int (*checkpt_task_fn_t)(void *ctx, uint64_t i);
int wksp_private_checkpt_pool_run(uint32_t threads, uint64_t cnt, checkpt_task_fn_t task, void *ctx);
/* The same with the running thread's slot: a number in [0, min(threads,
 * cnt, WKSP_CHECKPT_THREADS_MAX)), distinct between the threads of the run,
 * so that a task can keep per-thread state (buffers reused from task to
 * task) in an array indexed by it. */
typedef int (*checkpt_slot_task_fn_t)(void *ctx, uint64_t i, uint32_t slot);
int wksp_private_checkpt_pool_run_slots(uint32_t threads, uint64_t cnt, checkpt_slot_task_fn_t task,
                                     void *ctx);
/* The same, with the progress m of the call reported by the calling
 * thread after each of its tasks (progress_poll) and, out of tasks, while
 * it waits for the others (progress_wait). */
int wksp_private_checkpt_pool_run_watched(uint32_t threads, uint64_t cnt, checkpt_slot_task_fn_t task,
                                        void *ctx, checkpt_progress_t *m);
/* The same (m may be NULL), and commit(ctx, i) called for every task in
 * task order, one at a time, on whichever thread finds task i done and
 * committed up to it: a result consumed in order (written to a file)
 * without a barrier between tasks.  Task i starts only once i < (tasks
 * committed) + ahead, so a caller keeps `ahead` result slots and task i
 * uses slot i % ahead.  A failing task or commit ends the run as above;
 * commits stop at the first failure.  NOMEM if the ring's flags cannot be
 * had (nothing ran). */
typedef int (*checkpt_commit_fn_t)(void *ctx, uint64_t i);
int wksp_private_checkpt_pool_run_ordered(uint32_t threads, uint64_t cnt, uint64_t ahead,
                                          checkpt_slot_task_fn_t task, checkpt_commit_fn_t commit, void *ctx,
                                          checkpt_progress_t *m);

/* ---- publish (publish.c) ---------------------------------------------- */
typedef struct {
  int fd; /* write the checkpoint here */
  int dir_fd;
  char *path;     /* target path (copy) */
  char *tmp_name; /* named temp: the fallback's, or the overwrite's link (NULL with O_TMPFILE) */
  uint32_t mode;
  int overwrite;
  int stream;     /* the path is a FIFO or character device: fd writes to it, nothing to commit */
} checkpt_pub_t;

/* Creates the temporary file for `path` (o->mode, o->overwrite), or opens
 * the stream at path (then p->stream).  EXIST (unless overwrite), INVAL
 * (what is at path is never replaced; verify to a stream), FAIL. */
int wksp_private_checkpt_pub_open(checkpt_pub_t *p, const char *path, const wksp_checkpt_opts_t *o);
/* fchmod, fsync, link into place, fsync the directory, close. */
int wksp_private_checkpt_pub_commit(checkpt_pub_t *p);
/* Discards everything (idempotent; also after commit). */
void wksp_private_checkpt_pub_abort(checkpt_pub_t *p);

/* write.c: wksp_checkpt to path of a workspace that make(ctx, &w) makes
 * once the target is open (a target refused costs nothing; the workspace
 * stays the caller's, ctx's).  opts->verify seals a file target only: a
 * stream target is written unsealed, not refused; opts->index with a
 * stream target is INVAL.  Errors as wksp_checkpt's and make's; nothing
 * new at path after a failure. */
typedef int (*checkpt_make_fn_t)(void *ctx, wksp_t **w);
int wksp_private_checkpt_made(const char *path, const wksp_checkpt_opts_t *opts, checkpt_make_fn_t make, void *ctx);

/* ---- v1 (v1.c) ----------------------------------------------------------- */
int wksp_private_checkpt_v1_scan(checkpt_scan_t *s, const checkpt_input_t *in);

/* ---- the writer (write.c, plan.c, pipeline.c, info.c) ----------------------- */

/* The allocations of the workspace being written and their cgroups. */
typedef struct {
  wksp_t *w;
  wksp_part_t *parts;                  /* ascending */
  uint64_t cnt;
  uint64_t C;                          /* cgroup frames */
  uint64_t *cg_cnt, *cg_start, *order; /* see wksp_private_checkpt_cgroup_assign */
  uint64_t *cg_off;                    /* frame offsets, then the counts (appendix arrays) */
  uint64_t data_sz;                    /* bytes of all allocations */
} checkpt_plan_t;

/* Lock held: lists w's allocations (checked again: CORRUPT for a list that
 * would make an unreadable file) and assigns them to cgroups.  NOMEM. */
int wksp_private_checkpt_plan_build(checkpt_plan_t *pl, wksp_t *w);
/* The list alone (parts, cnt, data_sz; no cgroup tables), from the
 * address list without wksp_private_verify (wksp_private_alloc_walk): the
 * delta writer's plan; it verifies on its own while hashing. */
int wksp_private_checkpt_plan_list(checkpt_plan_t *pl, wksp_t *w);
void wksp_private_checkpt_plan_fini(checkpt_plan_t *pl);
/* Allocation k of cgroup g, in frame order; its size. */
static inline const wksp_part_t *checkpt_cg_part(const checkpt_plan_t *pl, uint64_t g, uint64_t k) {
  return &pl->parts[pl->order[pl->cg_start[g] + k]];
}
static inline uint64_t checkpt_part_sz(const wksp_part_t *q) { return q->gaddr_hi - q->gaddr_lo; }
/* The last k with p[k].gaddr_lo <= lo in p[0 .. n) (ascending, n > 0):
 * the allocation starting at lo when there is one. */
static inline uint64_t checkpt_part_find(const wksp_part_t *p, uint64_t n, uint64_t lo) {
  uint64_t a = 0, b = n;
  while (b - a > 1) {
    uint64_t m = a + (b - a) / 2;
    if (p[m].gaddr_lo <= lo) a = m;
    else b = m;
  }
  return a;
}
/* Writes cgroup g's commands (its allocations', then the data command). */
int wksp_private_checkpt_plan_commands(wksp_frame_writer_t *fw, const checkpt_plan_t *pl,
                                       uint64_t g);
/* The bytes of cgroup g's allocations. */
uint64_t wksp_private_checkpt_plan_cgroup_sz(const checkpt_plan_t *pl, uint64_t g);
/* The allocation holding cgroup g's data byte x (x < the cgroup's bytes):
 * its index k in the frame, and x's offset in it. */
void wksp_private_checkpt_plan_locate(const checkpt_plan_t *pl, uint64_t g, uint64_t x,
                                      uint64_t *k, uint64_t *off);

/* The info frame being written. */
typedef struct {
  checkpt_info_t info;
  uint8_t *blob; /* the nine strings, NULs included */
  uint64_t blob_sz;
  uint64_t seal_at[2]; /* sealing: where the digests' hex digits are in the blob */
} checkpt_info_frame_t;

/* The info frame of a checkpoint to path, written now by this process
 * (seal: with the seal's placeholders, seal.c).  NOMEM. */
int wksp_private_checkpt_info_build(checkpt_info_frame_t *inf, const char *path, uint64_t mode,
                                    const char *uinfo, int seal);

/* A checkpoint being written: the options, resolved once by wksp_checkpt
 * and wksp_checkpt_fd, and what the steps share. */
typedef struct {
  wksp_t *w;
  int fd;             /* the output, from its current position */
  const char *label;  /* the target's path or label (messages, the info frame) */
  int frame_style;    /* WKSP_FRAME_RAW (v2) or WKSP_FRAME_LZ4 (v3) */
  uint32_t mode;      /* the file's mode (0 resolved to 0600) */
  uint32_t threads;   /* 1..WKSP_CHECKPT_THREADS_MAX */
  int seal;           /* verify, then seal (a path target) */
  int src_fd;         /* RAW frames: the region's file, data copied from it (-1: from memory) */
  uint64_t src_off;   /* its file offset of gaddr 0 */
  const wksp_checkpt_opts_t *o; /* uinfo, progress, lock_wait */
  checkpt_plan_t plan;
  checkpt_info_frame_t info;
  uint64_t seal_off[2]; /* sealing: where the digests' hex digits are in the file */
  uint64_t digest;      /* sealing: the content digest of what was read back */
  uint64_t *piece_hash; /* opts.index: the hashes of the pieces read back (diff_locked) */
} checkpt_writer_t;

/* pipeline.c: writes the LZ4 cgroup frames of cw->plan (C > 0) at
 * checkpoint offset pos0 over cw->threads compressing threads and one
 * output thread; fills plan.cg_off, *pos gets the end.  FAIL (the write's
 * errno), NOMEM, or the failure of a frame. */
int wksp_private_checkpt_pipeline(checkpt_writer_t *cw, uint64_t pos0, uint64_t *pos);

/* ---- the test seam (seam.c) ------------------------------------------------
 * One per layer, as the allocator's wksp_private_test_hook: sizes that
 * production leaves alone and tests lower to reach rare paths with small
 * inputs, and one hook that tests set to see or steer what happens at
 * these points.  Both are process-wide: set them before a call, not during
 * one. */
typedef struct {
  uint64_t par_buf_max;    /* pipeline.c: output bytes each worker but one may hold (32 MiB) */
  uint64_t split_min;      /* pipeline.c: input left for a segment to be split (4 MiB) */
  uint64_t warm_sz;        /* pipeline.c: bytes a split-off half re-compresses (256 KiB) */
  uint64_t pipe_frame_max; /* stream.c: largest frame the pipelined restore buffers (8 MiB) */
} checkpt_tuning_t;
extern checkpt_tuning_t wksp_private_checkpt_tuning;

enum {
  CHECKPT_HOOK_CGROUP,  /* a checkpoint starts cgroup frame a: non-zero fails it (FAIL, EIO) */
  CHECKPT_HOOK_WRITE,   /* pipeline.c writes b bytes at checkpoint offset a: non-zero is that
                           write's errno */
  CHECKPT_HOOK_VERIFY,  /* verify: the file is written, not yet read back (w) */
  CHECKPT_HOOK_TMPFILE, /* publish: non-zero = as on a filesystem without O_TMPFILE */
  CHECKPT_HOOK_RENAME,  /* an overwrite: the temporary has its name (name), the target (path)
                           is about to be checked again and replaced */
  CHECKPT_HOOK_SPLIT,   /* pipeline.c split a running segment (a = 1) or undid a split (a = 0:
                           the warm-up did not reproduce the history) */
  CHECKPT_HOOK_PEAK,    /* a parallel checkpoint ends: a = the most output bytes it held */
  CHECKPT_HOOK_DECODE   /* decode.c starts cgroup frame a as the b-th frame handed out */
};
typedef struct {
  wksp_t *w;
  uint64_t a, b;
  const char *path, *name;
} checkpt_hook_t;
/* NULL in production; called from any thread of a call (it must be
 * thread-safe). */
extern int (*wksp_private_checkpt_test_hook)(int point, const checkpt_hook_t *h);

static inline int checkpt_hook(int point, const checkpt_hook_t *h) {
  if (__builtin_expect(wksp_private_checkpt_test_hook != 0, 0))
    return wksp_private_checkpt_test_hook(point, h);
  return 0;
}

/* CHECKPT_HOOK_CGROUP: FAIL (EIO) when the hook says so. */
static inline int checkpt_fail_point(uint64_t g) {
  if (checkpt_hook(CHECKPT_HOOK_CGROUP, &(checkpt_hook_t){.a = g}))
    return wksp_err(WKSP_ERR_FAIL, EIO, "injected failure at cgroup %" PRIu64, g);
  return WKSP_SUCCESS;
}

#endif
