/* wksp/checkpt.h: checkpoint a workspace to a file or pipe; preview, inspect,
 * list and restore checkpoints (docs/FORMAT.md sections 3-5 and 7).
 *
 * Files are Firedancer fd_wksp "checkpoint v2" files: style V2 (RAW frames)
 * or V3 (= v2 with LZ4 frames; the header says style 2).  For a workspace
 * holding the same allocations, the header, every cgroup frame and the
 * footer's fields are byte-identical to the reference writer's; only the
 * info frame (time, host, process..., and in sealed files the seal,
 * see opts.verify) and the offsets that follow from its length differ.
 * Legacy v1 files (docs/FORMAT.md 5) can be previewed, listed and restored,
 * not written.  docs/FORMAT.md describes the format and says where wksp
 * differs from the reference.
 *
 * Errors: every call returns WKSP_SUCCESS (0) or a negative WKSP_ERR_* code
 * and records one message (wksp_errmsg()) naming the path, the field or
 * offset, and what was expected versus found.  The codes used here:
 *   INVAL   bad argument (NULL, bad fd, unsupported style, mode > 07777, ...)
 *   FAIL    an OS or I/O call failed (errno in the message / wksp_errno())
 *   CORRUPT checkpoint bytes that cannot be right (bad magic: "not a wksp
 *           checkpoint: bad magic 0x... (expected 0x...)", bad field,
 *           inconsistent offsets, an LZ4 block that does not decode to its
 *           size, a truncated file or pipe, more than a checkpoint of its
 *           geometry can hold, see "Inputs" below), a file shortened while
 *           it is read ("file truncated while reading: PATH is now N
 *           bytes, expected M"), or source workspace metadata found
 *           inconsistent by the writer
 *   FULL    the target workspace cannot hold the checkpoint (its data region
 *           misses some original global addresses, or it has too few
 *           partition records); the message says what part_max / data_max
 *           would work
 *   EXIST   the target path exists and overwrite was not asked for
 *   PERM    the workspace is attached read-only (the lock needs write access)
 *   NOMEM   private memory could not be allocated
 *   AGAIN   wksp_checkpt with verify: an allocation changed while it was
 *           written (the application wrote into it); nothing was published
 *   UNSUP   a seal was required (require_seal) and the checkpoint has none
 *   DEADLK  a restore from a pipe found the target's lock held by the process
 *           that writes the pipe and is blocked on it (a checkpoint of the
 *           same workspace): the wait could never end (wksp_restore)
 *
 * Conventions: every call that reads or writes a checkpoint comes as a
 * pair, X(..., path, ...) and X_fd(..., fd, label, ...): the fd (owned by
 * the caller, used from its current position) and a label naming it in
 * messages (NULL = "-"); wksp_preview_mem reads memory.  Thread counts,
 * flags and callbacks are fields of the call's opts struct (NULL = all
 * defaults); a thread count of 0 means 1, and counts above
 * WKSP_CHECKPT_THREADS_MAX are clamped to it.
 *
 * Thread safety: every call may be made from any thread.  Checkpoint and
 * restore take the workspace lock for their whole duration, so they are
 * serialized with each other and with allocator calls on that workspace
 * (from any process); one blocked on the lock behind another holder tells
 * its opts->lock_wait callback who holds it (wksp/wksp.h, wksp_lock_wait_t).
 * The lock does not stop application writes into
 * allocation contents: a checkpoint taken while the application writes into
 * its allocations captures those bytes in no particular order (as with the
 * reference); the verify option detects that and publishes nothing then.
 * Worker threads are created and joined inside each call; none outlives
 * it, also after a failure.
 *
 * Inputs (restore, info, check, diff, print): a regular file is read with
 * pread(2), never mapped, so a file shortened while it is read gives
 * CORRUPT, not a signal.  Anything else (pipe, socket, character device)
 * is a stream: its first bytes are checked at once (a stream that is not a
 * checkpoint is refused before anything else is read), and what needs
 * random access (info, check, diff, print, restore with verify_first or of
 * a v1 checkpoint) spools it first to an unnamed temporary file in $TMPDIR
 * (else /tmp).  No stream is read or spooled further than a checkpoint
 * with its header can be: a checkpoint of source part_max P and data_max D
 * holds at most P allocations, D bytes of them, and max(1024, P) cgroup
 * frames and volumes (CORRUPT beyond; the reference writer stays
 * inside), which bounds its size (v3: a little over D + D/255 + 62 bytes
 * per allocation + 140 per frame + 66 KiB; v2 less); a longer v2 file or
 * stream is CORRUPT "longer than a checkpoint of this geometry can be (N
 * bytes)" (a v1 stream is not read past that size: the rest would follow
 * its terminator, which readers ignore).  The spool also stops with FAIL
 * (ENOSPC), naming the directory and the sizes, before it would leave
 * less than 1/32 of the directory's filesystem (at most 64 MiB) free.
 *
 * Caveats (the limits of the promises made below, in one place):
 *   - The input must not change while it is read.  A file that shrinks is
 *     found (CORRUPT "file truncated while reading"); bytes rewritten in
 *     place are not, and are restored or reported as they were read.
 *   - Without O_TMPFILE (some filesystems), wksp_checkpt writes a named
 *     temporary ".<name>.wksp-tmp.<pid>.<hex>" in the target's directory,
 *     which a SIGKILL can leave behind (as can one between the link and the
 *     rename of an overwrite); the next wksp_checkpt into that directory
 *     removes it (see wksp_checkpt).
 *   - A write to a pipe whose reader went away raises SIGPIPE, which ends
 *     the process unless it is ignored or handled (then FAIL, EPIPE), and
 *     may be delivered to a worker thread of the call rather than the
 *     calling one.
 *   - Byte identity across thread counts and the in-place compression of
 *     large buffers read two fields of liblz4's public stream struct; they
 *     are used only when the running liblz4 is the version lz4.h describes
 *     (else the output is the same, made more slowly: no frame is split
 *     between threads and every chunk is copied first).
 *   - The format has no checksums (docs/FORMAT.md 9.1): an unsealed file
 *     with flipped bits inside its data can restore "successfully" with
 *     wrong bytes; a sealed one (opts.verify) cannot. */
#ifndef WKSP_CHECKPT_H
#define WKSP_CHECKPT_H

#include <stddef.h>
#include <stdint.h>

#include "wksp/error.h"
#include "wksp/wksp.h"

#ifdef __cplusplus
extern "C" {
#endif

enum {
  WKSP_CHECKPT_STYLE_DEFAULT = 0, /* = V3 */
  WKSP_CHECKPT_STYLE_V1 = 1,      /* legacy stream (read only) */
  WKSP_CHECKPT_STYLE_V2 = 2,      /* framed, RAW frames */
  WKSP_CHECKPT_STYLE_V3 = 3       /* framed, LZ4 frames (header says style 2) */
};

#define WKSP_CHECKPT_UINFO_MAX 16383 /* bytes of user info kept (longer is truncated) */
#define WKSP_CHECKPT_THREADS_MAX 256 /* larger thread counts are clamped to this */

/* Progress callback: done / total bytes of allocation contents so far
 * (total 0 until the end when not known: restores from pipes).  Called
 * from the calling thread only, done never decreasing, last with done ==
 * total when the call succeeds.  Within large allocations too: with one
 * thread at least every 4 MiB; with more, each time the calling thread
 * finishes 4 MiB of its own work or, with none left, another thread
 * passes a 4 MiB mark (so how often depends on scheduling).  V3
 * checkpoints count bytes compressed, which run ahead of the bytes
 * written by up to the output buffers.  It must not call back into wksp
 * on the same workspace (the lock is held), and it runs on the path of
 * the work: keep it short (print, or note the figure). */
typedef void (*wksp_progress_fn_t)(uint64_t done, uint64_t total, void *ctx);

typedef struct {
  int style;             /* WKSP_CHECKPT_STYLE_*: 0 = V3; V1 cannot be written (INVAL) */
  uint32_t mode;         /* permission bits of the new file, applied exactly (no umask);
                            0 = 0600; > 07777 is INVAL */
  uint32_t threads;      /* V3: threads compressing LZ4 cgroup frames in parallel (the
                            calling thread is one of them); 0 = 1, at most
                            WKSP_CHECKPT_THREADS_MAX.  One more thread, created and joined
                            inside the call, writes the compressed frames to the file or
                            fd in order while they are compressed, so a V3 checkpoint uses
                            threads + 1 threads (for threads = 1: one compressing, one
                            writing).  V2's RAW frames are plain copies, written by the
                            calling thread alone whatever the count.  Threads share
                            large frames too, so a few large frames still keep every
                            thread busy.  The file is byte-identical for every count.
                            Memory is bounded per thread, whatever the workspace size
                            (a thread ahead of the writing waits; the figures are in
                            docs/ARCHITECTURE.md). */
  int overwrite;         /* replace an existing file at the path (else EXIST) */
  int verify;            /* before publishing, read the file back and compare it with the
                            workspace (wksp_checkpt_diff, the lock still held): AGAIN if
                            an allocation's bytes changed while the checkpoint was written
                            (the application wrote into it), and nothing is published.
                            On success the file holds every allocation as it was at one
                            moment (when the writing ended), unless bytes were changed and
                            changed back in between, and it is sealed: a content digest of
                            what was read back (XXH3-64 per 64 KiB piece and per record,
                            summed) is written as the first and the last line of the info
                            frame's build info ("content digest xxh3-sum64 <hex>"), and the
                            info's app id is set to a seal mark (V3 then stores the info
                            frame as literal LZ4 blocks).  Three places, each of which alone
                            shows the seal, so that flipped bits cannot make the file pass
                            for unsealed (docs/FORMAT.md 12).  Every later restore, check or
                            diff of the file checks the seal (docs/FORMAT.md 9.1: the format has
                            no checksum of its own).  Costs one more read of the file (V3: a
                            decompression, over `threads` threads), a compare and a hash.
                            wksp_checkpt to a file only (the fd call, or a FIFO or device
                            path, cannot be read back: INVAL) */
  const char *uinfo;     /* user info text, NULL = ""; truncated to 16383 bytes */
  wksp_progress_fn_t progress;
  void *progress_ctx;
  wksp_lock_wait_fn_t lock_wait; /* optional: hears when the call is blocked on the workspace
                                    lock and by whom, and how long the wait lasted
                                    (wksp/wksp.h, wksp_lock_wait_t) */
  void *lock_wait_ctx;
  int index;             /* also write the index sidecar PATH.wkspidx (docs/FORMAT.md 13.3),
                            which lets a later wksp_checkpt_delta with this file as its base
                            skip decoding it; needs verify (else INVAL) and a path target */
} wksp_checkpt_opts_t;

/* Writes a checkpoint of w to `path`.  opts NULL = defaults.
 *
 * Steps: the workspace is locked; its partition list is walked and checked
 * (any inconsistency: CORRUPT and no file is created); the file is written
 * into an unnamed temporary file in the target's directory (O_TMPFILE), its
 * mode set with fchmod (the process umask is neither used nor changed),
 * fsynced, linked at `path` (never replacing an existing file unless
 * opts->overwrite; then through a temporary name and rename(2)), and the
 * directory fsynced; the lock is released.
 *
 * What is at `path` decides (the last component is looked at with lstat):
 *   - nothing: a new file, as above;
 *   - a regular file, or a symlink to anything but a FIFO or character
 *     device: EXIST, or with overwrite atomically replaced (a symlink is
 *     replaced itself, never followed: the file it names is unchanged);
 *     but a symlink naming an open file descriptor (its text starts
 *     "/proc/" and holds "/fd/", as /dev/stdout's does, or it lies in a
 *     /proc fd directory: /dev/fd/N) is INVAL when that descriptor is not
 *     a FIFO or character device: replacing it would replace /dev/stdout;
 *   - a directory, socket or block device: INVAL ("is a block device, not
 *     a regular file"), with or without overwrite, nothing written.  This
 *     is checked up front and again just before the rename (rename itself
 *     refuses a directory); only something created in the moment between
 *     that last check and the rename could still be replaced;
 *   - a FIFO or character device, or a symlink to one (/dev/null,
 *     /dev/stdout, /dev/fd/N, a named pipe): a stream target, whatever
 *     opts->overwrite says.  It is opened O_WRONLY (never created or
 *     truncated: it stays what it is) and the checkpoint written to it as
 *     by wksp_checkpt_fd: no temporary file, no fsync, nothing published;
 *     after a failure the bytes already written stay there.  A FIFO with no
 *     reader blocks in open until one opens it (as a shell redirection
 *     does; the workspace is not locked yet).  A terminal is refused
 *     (INVAL: a checkpoint is binary); opts->verify is INVAL (a stream
 *     cannot be read back); /dev/full gives FAIL with ENOSPC.  The reader
 *     of a FIFO going away raises SIGPIPE, as for wksp_checkpt_fd.
 *
 * Failure: INVAL (w or path NULL, style, mode; a target that is never
 * replaced; a terminal; verify to a stream), EXIST (path exists and no
 * overwrite; checked up front and again at the final link), CORRUPT
 * (workspace metadata), AGAIN (opts->verify: an allocation changed while
 * it was written; the message names it and its first differing byte),
 * PERM (read-only attachment: taking the lock needs
 * write access), FAIL (open/write/fsync/link error with errno and path;
 * e.g. ENOSPC), NOMEM.  After any failure, and even if the process is
 * killed at any moment, nothing new is left at `path` (an existing file
 * there is unchanged) and no temporary file remains, with three documented
 * exceptions: on a filesystem without O_TMPFILE a named temporary
 * ".<name>.wksp-tmp.<pid>.<hex>" is used, which a SIGKILL can leave
 * behind; with overwrite of an existing file, a SIGKILL between the link
 * of such a name and the rename can leave it; with overwrite, if only the
 * final directory fsync fails, the new (complete) file has already
 * replaced the old one.  A temporary so left is removed by the next
 * wksp_checkpt to a path in the same directory: a writer holds an flock on
 * its temporary for the temporary's whole life, and a regular file
 * named exactly ".<name>.wksp-tmp.<pid>.<hex>" whose lock is free is
 * unlinked (never following a symlink, never opening another type of file,
 * at most 32 per call among the directory's first 2^20 entries, not one
 * named with the calling process's pid; best effort: errors are ignored;
 * on a filesystem where flock does not work nothing is removed).  The
 * workspace is never modified, apart from its lock word (released on
 * every path; taking it may first repair metadata left by a process that
 * died holding it).
 *
 * How the bytes move (speed only: the file is the same either way).  A
 * process that has not touched most of w's mapping (a fresh `wksp`
 * command) would fault each page in, one at a time, and on some machines
 * that costs more than the copy (bench/FINDINGS.md, "The region file").
 * So, when a sample of 16 of the allocations' pages shows that this
 * process does not map them all, the data of a named workspace on normal
 * pages is read from the region's file: v2 data copied by the kernel into
 * a regular file (sendfile(2); where the two files cannot be copied
 * between, from memory after all) or through a 1 MiB buffer into anything
 * else (a pipe: the kernel could hand the file's pages to it by reference,
 * and its reader would see later changes), allocations of 16 KiB or less
 * read with pread(2); v3 data read with pread(2) into a 1 MiB buffer per
 * compressing thread (the bytes written are the same); opts->verify then
 * compares the file read back with the region's file, piece by piece.
 * Otherwise (anonymous or huge-page workspaces, or a process that
 * maps part of them) the mapping is read, pre-faulted in bulk
 * (MADV_POPULATE_READ, where the kernel has it).  A process that maps all
 * of w reads it from memory. */
WKSP_API int wksp_checkpt(wksp_t *w, const char *path, const wksp_checkpt_opts_t *opts);

/* Writes a checkpoint of w to fd (file, pipe, socket) from its current
 * position; `path_label` (NULL = "-") is what the info frame records as the
 * path.  The caller owns fd (it is not closed, not fsynced).  opts->mode is
 * recorded in the info frame only; opts->overwrite is ignored.
 * Failure: as wksp_checkpt minus EXIST and AGAIN (opts->verify is INVAL
 * here); after a failure the bytes already
 * written to fd stay there (the caller must discard them).  A pipe whose
 * reader went away gives FAIL (EPIPE) only if SIGPIPE is ignored or
 * handled; otherwise the signal ends the process, as for any write. */
WKSP_API int wksp_checkpt_fd(wksp_t *w, int fd, const char *path_label,
                             const wksp_checkpt_opts_t *opts);

typedef struct {
  int style;          /* 1 or 2 (as in the file header) */
  int frame_style;    /* v2: WKSP_FRAME_RAW (1) or WKSP_FRAME_LZ4 (2); v1: 0 */
  char name[WKSP_NAME_MAX];
  uint32_t seed;
  uint64_t part_max;
  uint64_t data_max;
} wksp_preview_t;

/* Reads only the first bytes (at most 165) of a checkpoint, v1 or v2, and
 * describes it.  Nothing past them is validated.
 * Failure: INVAL (NULL), FAIL (cannot open or read at least 12 bytes),
 * CORRUPT (neither a v2 header nor a v1 preamble; the message says why).
 * *out is written only on success. */
WKSP_API int wksp_preview(const char *path, wksp_preview_t *out);
WKSP_API int wksp_preview_mem(const void *buf, size_t sz, wksp_preview_t *out);

/* As wksp_preview on an fd from its current position (label, NULL = "-",
 * names it in messages).  It reads (consumes) up to 165 bytes: on a pipe
 * those bytes are gone afterwards. */
WKSP_API int wksp_preview_fd(int fd, const char *label, wksp_preview_t *out);

typedef struct {
  uint32_t seed;     /* seed the target is rebuilt with */
  uint32_t threads;  /* threads; 0 = 1, at most WKSP_CHECKPT_THREADS_MAX: files decode
                        cgroup frames in parallel, v3 pipes use the pipelined reader.
                        The result is the same for every count. */
  int verify_first;  /* all or nothing: check everything, LZ4 data included (one extra
                        decoding pass), before touching the target.  A pipe is first
                        spooled to an unnamed temporary file in $TMPDIR, else /tmp
                        (needs that much disk; bounded, see "Inputs" above).  RAW data
                        carries no check: only its structure can be verified. */
  int require_seal;  /* refuse a checkpoint that is not sealed (written without verify, or
                        by another writer): UNSUP, the target untouched (known from the info
                        frame, before anything changes, also on a pipe).  The seal's digest
                        itself is checked as for any sealed file (see below): with
                        verify_first before the target changes, else after (a mismatch then
                        resets the target). */
  wksp_progress_fn_t progress;
  void *progress_ctx;
  wksp_lock_wait_fn_t lock_wait; /* optional, as in wksp_checkpt_opts_t: the wait for the
                                    target's lock (after the header was read) */
  void *lock_wait_ctx;
} wksp_restore_opts_t;

/* Replaces every allocation of w by the checkpoint's: each at its original
 * global address with its tag and bytes; the rest of the data region
 * becomes free (bytes of free space are not cleared); the metadata is
 * rebuilt with opts->seed (w's seed afterwards).  w keeps its name and size.
 * v1 and v2/v3 files are accepted.
 *
 * A target of another size works when its data region contains every
 * restored range and its part_max covers the allocations plus the free gaps
 * between them (docs/FORMAT.md 4.5).  This is checked before anything changes;
 * the FULL message names the first range that does not fit and a part_max /
 * data_max that would work.
 *
 * Files (regular files, also from restore_fd; read with pread(2), over
 * opts->threads threads, each reusing one buffer) take the random-access
 * path: the whole structure (header, info, footer, volumes,
 * appendix, every cgroup's allocation list: tag > 0, range inside source and
 * target, ascending and non-overlapping, count within part_max) is
 * validated before the first byte of w changes; then the cgroup frames are
 * decoded in parallel over opts->threads threads straight into w (RAW
 * frames, v2: each frame's commands are checked again, then the data is
 * read straight into w by all threads; a read error or a file shortened
 * meanwhile is a data error as below).
 * Pipes take the sequential path: header and info are checked first; the
 * cgroup frames are then restored as they arrive: on the calling thread for
 * threads <= 1 and for every v2 pipe (read straight into w: one copy, which
 * no other thread can speed up), else pipelined (the calling thread reads
 * ahead while the other threads decode earlier frames; a frame over 8 MiB
 * is decoded by the calling thread as it arrives).  Memory is bounded per
 * thread, whatever the workspace and frame sizes (docs/ARCHITECTURE.md),
 * plus one cgroup's allocation list.  Set verify_first to get the file
 * behaviour.
 * A pipe whose header says the source data region is not inside w's, or
 * that holds a v1 checkpoint, is spooled as with verify_first, so that the
 * fit is checked before anything changes.  A pipe that is not a checkpoint
 * is refused at its first bytes; one that goes on beyond the limits of its
 * header ("Inputs" above) is CORRUPT as soon as its commands say so.
 * A file that shrinks while it is read is CORRUPT "file truncated while
 * reading" (w untouched if it is found during validation, else reset as
 * below; see "Caveats" above).
 *
 * The lock: w is locked once the header is read (pipes) or the whole input
 * validated (files, spooled pipes), and held to the end.  A restore from a
 * pipe that a checkpoint of w itself writes (`wksp checkpt W - | wksp
 * restore W -`) would wait forever: the writer holds the lock until it has
 * written everything, and the restore reads no more until it has the lock.
 * While blocked, the restore checks (first at once, then every 0.1 s)
 * whether the lock's holder has the write end of its input pipe open
 * (/proc/<pid>/fd) and the pipe is full; when that lasts 0.25 s it gives up
 * with DEADLK naming the pid, w untouched.  A writer that is not blocked
 * (the whole checkpoint fits in the pipe) is waited for without a notice
 * to opts->lock_wait: it releases the lock once done.  Best effort:
 * without access to the holder's /proc entries, or through a chain of
 * pipes, the wait is only reported (opts->lock_wait).
 *
 * Failure and the state of w afterwards:
 *   - INVAL (NULL w or path), PERM (read-only attachment), NOMEM, FAIL
 *     (open/read/spool error before any change; ENOSPC when the spool
 *     directory lacks room), CORRUPT or FULL found during validation,
 *     DEADLK (the pipe's writer holds w's lock, see above): w is
 *     untouched.
 *   - After the first change (only data errors on files: an LZ4 block that
 *     does not decode to its size, a frame that does not end where the
 *     appendix says, none of which happens with verify_first, a read error
 *     or the file shortened meanwhile; on pipes also a bad command, a
 *     truncated stream or a read error): w is reset to empty (every
 *     allocation freed, seed opts->seed) and the code is CORRUPT (FAIL for
 *     a read error, FULL for a pipe checkpoint that turns out not to fit);
 *     the message ends with "(target reset to empty)".
 *   - The restoring process killed at any instant (SIGKILL, the OOM
 *     killer): w is as it was (killed before the reset), empty (after it;
 *     its data region's bytes partly overwritten), or the whole
 *     checkpoint (once the records' replacement is committed, the last
 *     step); never old records over new bytes.  The next process to take
 *     w's lock (any changing call, `wksp check`) recovers the lock and
 *     finishes or rolls back that replacement (wksp.h).
 *   - Sealed checkpoints (written with verify): a broken seal (any of its
 *     three places showing a seal that is not intact: a flipped mark, a
 *     digest line that does not parse, two digests that differ) is
 *     CORRUPT, found with the info frame, w untouched.  Then the
 *     allocations restored must match the recorded content digest, else
 *     CORRUPT naming both digests; checked before anything changes with
 *     verify_first (one more decoding pass), else once the bytes are in w
 *     (a mismatch then resets w to empty, as any data error; the check
 *     costs one hashing pass over the restored bytes, over the threads).
 *   - opts->require_seal and the checkpoint is not sealed: UNSUP, w
 *     untouched.
 *   - Undetectable in files that are not sealed: a flipped bit inside RAW
 *     data, or inside LZ4 data that still decodes to the right size,
 *     restores "successfully" with wrong bytes (the format has no checksums,
 *     docs/FORMAT.md 9.1).
 *   - If w's own metadata is inconsistent when locked: CORRUPT, untouched.
 *
 * How the bytes move (as for wksp_checkpt): when this process does not map
 * all of the target's pages that the allocations will occupy, the data
 * restored into a named workspace on normal pages is written into the
 * region's file (decoded into a 1 MiB buffer per thread, from a file or a
 * pipe, then pwrite(2); the mapping shows the same bytes), and a seal's
 * digest is computed from the file read back (pread into a 1 MiB buffer per
 * thread); otherwise the bytes are written and hashed through the mapping,
 * pre-faulted in bulk (MADV_POPULATE_WRITE).  A failed write into or read
 * of the region file is FAIL with its errno, w reset as above. */
WKSP_API int wksp_restore(wksp_t *w, const char *path, const wksp_restore_opts_t *opts);

/* As wksp_restore from fd's current position (the caller owns fd; a
 * regular file is read with pread(2) from there to its size at the call,
 * anything else is read sequentially).  `label`
 * (NULL = "-") names the input in messages. */
WKSP_API int wksp_restore_fd(wksp_t *w, int fd, const char *label, const wksp_restore_opts_t *opts);

/* ---- inspection ---------------------------------------------------------- */

typedef struct {
  uint64_t off, end;  /* v2: the frame occupies file bytes [off, end) */
  uint64_t alloc_cnt; /* allocations in the frame */
  uint64_t data_sz;   /* uncompressed bytes: commands + allocation contents */
} wksp_checkpt_cgroup_t;

/* Everything a checkpoint says about itself (wksp_checkpt_info). */
typedef struct {
  wksp_preview_t pv;
  uint64_t file_sz;              /* bytes of the checkpoint */
  uint64_t mode;                 /* v2 only (v1: 0) */
  int64_t wallclock;             /* ns since the epoch */
  uint64_t app_id, thread_id, host_id, cpu_id, group_id, tid, user_id;
  char app[40], thread[40], host[40], cpu[40], group[40], user[40];
  const char *path, *binfo, *uinfo; /* NUL-terminated, owned by the info (v1 path: "") */
  uint64_t alloc_cnt;            /* allocations */
  uint64_t alloc_sz;             /* sum of their sizes */
  uint64_t cgroup_cnt, volume_cnt; /* v2 (v1: 0) */
  wksp_part_t *parts;            /* alloc_cnt entries, ascending gaddr_lo */
  wksp_checkpt_cgroup_t *cgroups; /* cgroup_cnt entries in file order */
  void *priv_;                   /* owned memory; released by wksp_checkpt_info_free */
} wksp_checkpt_info_t;

/* Reads and validates the whole structure of the checkpoint at path and
 * describes it.  The allocation contents are not decoded, so LZ4 data
 * errors are not found here (restore finds them).
 * Failure: INVAL (NULL path or out), FAIL (open, read), CORRUPT (as
 * restore's validation), NOMEM; *out is then zeroed (wksp_checkpt_info_free
 * on it is harmless).  On success free with wksp_checkpt_info_free. */
WKSP_API int wksp_checkpt_info(const char *path, wksp_checkpt_info_t *out);
/* The same from fd (a pipe is spooled to an unnamed temporary file,
 * bounded: see "Inputs" above; FAIL, ENOSPC, when its directory lacks
 * room); INVAL for fd < 0. */
WKSP_API int wksp_checkpt_info_fd(int fd, const char *label, wksp_checkpt_info_t *out);
WKSP_API void wksp_checkpt_info_free(wksp_checkpt_info_t *info);

typedef struct {
  uint32_t threads; /* threads decoding the allocations (0 = 1); the result is the same */
  int require_seal; /* fail with UNSUP, nothing decoded, unless the file is sealed */
} wksp_check_opts_t;

/* Checks the checkpoint at path as far as a file can be checked without a
 * workspace: its whole structure (as wksp_checkpt_info), every
 * allocation's data decoded, and, for a sealed checkpoint (written with
 * verify), its seal and its allocations against the content digest it
 * records.  opts NULL = defaults.  An unsealed file that passes can still
 * hold flipped bits (docs/FORMAT.md 9.1).  A delta or index file
 * (docs/FORMAT.md 13) is checked by rules 1-5 of 13.2 (its metadata digest,
 * every piece decoded and checked against its hash, its piece digest);
 * *seal is then WKSP_SEAL_OK when it passes (a delta is always sealed).
 * *seal (if not NULL) says what was found of a seal, also on failure:
 * WKSP_SEAL_NONE until the structure has been read (bad arguments, an
 * input that cannot be opened, a structure that fails before the info's
 * seal is known), then the seal as the info frame shows it (NONE, OK or
 * BROKEN), and BROKEN when the allocations do not match its digest.
 * Failure: INVAL (NULL path), FAIL (open, read), CORRUPT (the structure, a
 * data error, the file shortened meanwhile, or a broken seal: the message
 * says which place of the seal is damaged, or names both digests), UNSUP
 * (require_seal and the file is not sealed; nothing decoded), NOMEM. */
WKSP_API int wksp_checkpt_check(const char *path, const wksp_check_opts_t *opts, int *seal);
/* The same from fd (a pipe is spooled, as for wksp_checkpt_info_fd);
 * INVAL for fd < 0. */
WKSP_API int wksp_checkpt_check_fd(int fd, const char *label, const wksp_check_opts_t *opts,
                                   int *seal);

/* Human-readable listing of the checkpoint at path to out_fd (docs/FORMAT.md 7):
 *   < 0 nothing; 0 the preview fields; 1 + writer identity (magic,
 *   wallclock, app, thread, host, cpu, group, tid, user, frame style);
 *   2 + mode, path, build info, user info; 3 + summary (allocations,
 *   bytes, cgroups, volumes, and per cgroup frame its offset, allocations,
 *   bytes and compression ratio); 4 + one line per allocation (range, size,
 *   tag); 5 + a hex dump of every allocation's bytes.
 * The strings a checkpoint carries (app ... user, path, build and user
 * info), the label and any error message are printed escaped, since a file
 * may hold any byte: C-style \\, \n, \r, \t, \xNN for other control bytes
 * (and 0x7f) and bytes that are not valid UTF-8, \uXXXX for C1 controls
 * and invisible bidirectional or line-breaking characters; other UTF-8
 * text passes.  Build and user info keep one listing line per line of
 * text.  (wksp_checkpt_info returns the strings unchanged.)
 * A delta or index file (docs/FORMAT.md 13) is listed from its metadata,
 * checked by every rule but the piece frames' contents: 0 kind (delta,
 * index), version, name, seed, part_max, data_max; 1 + wallclock, base
 * digest, its own content digest, piece style, flags; 2 + the base hint
 * and user info; 3 + allocations (table size), pieces, changed pieces
 * (count, bytes, bytes in the file), file size; 4 + per allocation its
 * changed-piece count (5 = 4).
 * An unreadable or invalid checkpoint is reported in the listing
 * ("invalid or unsupported (<message>)") and its code returned.
 * Returns WKSP_SUCCESS, the checkpoint's error code, or FAIL if writing to
 * out_fd failed. */
WKSP_API int wksp_checkpt_print(int out_fd, const char *path, int verbose);

/* As wksp_checkpt_print reading from in_fd (label names it in the listing;
 * a pipe is spooled, bounded: see "Inputs" above). */
WKSP_API int wksp_checkpt_print_fd(int out_fd, int in_fd, const char *label, int verbose);

/* ---- comparison ---------------------------------------------------------- */

enum {
  WKSP_DIFF_NONE = 0,      /* no difference */
  WKSP_DIFF_BYTES = 1,     /* same range and tag on both sides, different bytes */
  WKSP_DIFF_TAG = 2,       /* same range, different tag (bytes not compared) */
  WKSP_DIFF_ONLY_CKPT = 3, /* a range in the checkpoint that the workspace does not have */
  WKSP_DIFF_ONLY_WKSP = 4  /* a range in the workspace that the checkpoint does not have */
};

/* What wksp_checkpt_diff found.  Ranges match only when equal: an allocation
 * moved or resized counts once on each side (ONLY_CKPT and ONLY_WKSP). */
typedef struct {
  uint64_t same;          /* allocations equal in range, tag and bytes */
  uint64_t bytes, tag;    /* allocations per difference kind (WKSP_DIFF_*) */
  uint64_t only_ckpt, only_wksp;
  int first_kind;         /* kind of the lowest-addressed difference; WKSP_DIFF_NONE if none */
  wksp_part_t first_ckpt; /* that allocation as the checkpoint has it (zero if it has none) */
  wksp_part_t first_wksp; /* and as the workspace has it (zero if it has none) */
  uint64_t first_off;     /* WKSP_DIFF_BYTES: offset of the first differing byte in it */
  uint64_t digest;        /* content digest of the checkpoint's allocations, as decoded */
  int seal;               /* WKSP_SEAL_*: is the checkpoint sealed, and does its seal hold
                             (a broken seal is a result too: the call still succeeds) */
} wksp_checkpt_diff_t;

enum {
  WKSP_SEAL_NONE = 0,   /* no sign of a seal (written without verify, or elsewhere) */
  WKSP_SEAL_OK = 1,     /* sealed, the seal intact, its digest matches the allocations */
  WKSP_SEAL_BROKEN = -1 /* signs of a seal that does not hold (a place of it damaged, or a
                           digest that does not match): the file was damaged after it was
                           written */
};

/* One difference, as wksp_checkpt_diff reports it to its callback: its
 * kind (WKSP_DIFF_*), the allocation as the checkpoint and as the workspace
 * have it (all zero on the side that has none), and for WKSP_DIFF_BYTES the
 * offset of the first differing byte in it. */
typedef void (*wksp_diff_fn_t)(int kind, const wksp_part_t *ckpt, const wksp_part_t *wksp,
                               uint64_t off, void *ctx);

typedef struct {
  uint32_t threads;    /* threads decoding the checkpoint (0 = 1); the result is the same */
  wksp_diff_fn_t each; /* optional: hears of every difference, in address order, on the
                          calling thread, after the comparison and with w still locked
                          (it must not call wksp functions on w); only on success */
  void *each_ctx;
} wksp_diff_opts_t;

/* Compares the checkpoint at path with the workspace w: which allocations
 * are the same in range, tag and bytes, and which differ.  The
 * checkpoint's structure is validated as by restore and its data decoded;
 * w is locked for the comparison (so its allocations do not change
 * meanwhile; application writes into them are not stopped) and not
 * modified (but for the lock, as by wksp_checkpt).  Differences are a
 * result, not an error: the call succeeds and *out says what differs.
 * opts NULL = defaults.  A process that does not map w's bytes (a fresh
 * `wksp` command: as for wksp_checkpt) reads them from the region's file,
 * 64 KiB at a time, instead of touching every page of its mapping.
 * Failure: INVAL (NULL w, path or out), FAIL (open, read; of the region's
 * file too), CORRUPT
 * (checkpoint bytes that cannot be right, as restore), PERM (read-only
 * attachment: the lock needs write access), NOMEM; *out is then zeroed. */
WKSP_API int wksp_checkpt_diff(wksp_t *w, const char *path, const wksp_diff_opts_t *opts,
                               wksp_checkpt_diff_t *out);
/* The same from fd (a pipe is spooled to an unnamed temporary file first,
 * bounded: see "Inputs" above; FAIL, ENOSPC, when its directory lacks
 * room); INVAL for fd < 0. */
WKSP_API int wksp_checkpt_diff_fd(wksp_t *w, int fd, const char *label,
                                  const wksp_diff_opts_t *opts, wksp_checkpt_diff_t *out);


/* ---- incremental checkpoints (docs/FORMAT.md 13) -------------------------
 *
 * A delta records a workspace state relative to a base file (a sealed
 * v2/v3 checkpoint, or another delta): the whole allocation table, the
 * XXH3 hash of every 64 KiB piece of every allocation (its index), and
 * the bytes of the pieces whose (address, length, hash) the base does not
 * have.  Change detection is by content, so writes by any process are
 * seen.  A delta carries its base's content digest and its own (the seal
 * of docs/FORMAT.md 12): a chain BASE DELTA1 ... DELTAk restores only in
 * order.  Hash collisions (2^-64 per piece) would go unseen, as for the
 * seal: accidents, not an adversary writing crafted bytes. */

enum { WKSP_FILE_CHECKPT = 0, WKSP_FILE_DELTA = 1, WKSP_FILE_INDEX = 2 };
/* How a delta's writer learnt its base's piece hashes. */
enum { WKSP_BASE_FROM_DELTA = 1, WKSP_BASE_FROM_INDEX = 2, WKSP_BASE_FROM_DECODE = 3 };

typedef struct {
  uint64_t alloc_cnt, piece_cnt; /* of the state written */
  uint64_t changed_cnt;          /* pieces whose bytes the file holds */
  uint64_t changed_sz;           /* their bytes (uncompressed) */
  uint64_t file_sz;              /* bytes written */
  uint64_t base_digest, digest;  /* content digests of the base and of this state */
  int base_from;                 /* WKSP_BASE_FROM_* */
  char base_note[256];           /* FROM_DECODE from a checkpoint: why the sidecar was not
                                    used ("missing", "stale: ..."), else "" */
} wksp_delta_stats_t;

/* Writes a delta of w since `base` to `path` (docs/FORMAT.md 13).
 *
 * base: a sealed v2/v3 checkpoint or a delta.  Of a delta only its table
 * and index are read (checked by its metadata digest); of a checkpoint its
 * structure and seal, then its sidecar index base + ".wkspidx" if that is
 * valid (a well-formed index whose digest is the checkpoint's seal digest
 * and whose geometry is its), else the checkpoint is decoded once, its
 * pieces hashed and checked against its seal (stats->base_from says which,
 * base_note why the sidecar was not used; never an error).
 *
 * Steps, publication, what is at path, the temporaries, stream targets,
 * the lock and the options are as for wksp_checkpt, with: opts->style the
 * piece frames' style (V2 RAW, V3 or 0 LZ4); opts->threads hash and
 * compress pieces (the file is the same for every count); opts->verify
 * reads the written file back (every piece decoded and checked) and hashes
 * every piece of w again, AGAIN if one differs from what was written
 * (nothing published), and sets the file's verified flag; opts->index is
 * INVAL.  Memory: about 4 x threads x 4.2 MiB of piece buffers, plus 8
 * bytes per piece of w and of the base.  A process that does not map w's
 * bytes (a fresh CLI process: as for wksp_checkpt's region file) reads the
 * pieces from the region's file into a 4 MiB buffer per thread instead of
 * touching every page of its mapping; the file is the same either way.
 *
 * Failure: INVAL (NULL argument; base is an index or v1 file, or path
 * itself; the base's part_max / data_max differ from w's; opts->index),
 * UNSUP (base unsealed; a delta of a newer version), CORRUPT (base damaged:
 * its seal broken, its metadata digest, its decoded content not matching
 * its seal; w's metadata), AGAIN, EXIST, PERM, FAIL, NOMEM.  After a
 * failure nothing new is at path (as wksp_checkpt).  stats (optional) is
 * filled on success.  w is not changed. */
WKSP_API int wksp_checkpt_delta(wksp_t *w, const char *path, const char *base,
                                const wksp_checkpt_opts_t *opts, wksp_delta_stats_t *stats);
/* The same to fd from its current position (owned by the caller; a pipe
 * works: the file is written front to back); label (NULL = "-") names it.
 * No publication; opts->verify is INVAL. */
WKSP_API int wksp_checkpt_delta_fd(wksp_t *w, int fd, const char *label, const char *base,
                                   const wksp_checkpt_opts_t *opts, wksp_delta_stats_t *stats);

/* Writes the index sidecar path + ".wkspidx" of the sealed v2/v3
 * checkpoint at path (decoded over `threads` threads; its content must
 * match its seal), published atomically as a checkpoint is, replacing an
 * older index file there (anything else there: EXIST).  The repair for a
 * missing or stale sidecar.  Failure: INVAL (NULL, a delta, index or v1
 * file), UNSUP (not sealed), CORRUPT (damaged, or content not matching
 * its seal), EXIST, FAIL, NOMEM; nothing new is left then. */
WKSP_API int wksp_checkpt_index(const char *path, uint32_t threads);

/* Restores the chain paths[0] (a sealed v2/v3 checkpoint) then paths[1 ..
 * cnt) (deltas, in order) into w: w then holds the state of the last
 * delta, as wksp_restore of a checkpoint of that state would leave it
 * (seed opts->seed).  A member that is not a regular file (a pipe, e.g.
 * "/dev/stdin") is spooled to an unnamed temporary file first, bounded as
 * in "Inputs" above (a delta: by the most bytes its header's counts
 * allow), since a chain is checked whole before the target changes.
 *
 * Before w is locked or changed, the whole chain is validated: the base's
 * structure and seal, each delta's metadata (rules of docs/FORMAT.md
 * 13.2), every delta's piece frames decoded and checked against its index,
 * each delta's base digest against the digest of the state before it,
 * and each link: every piece a delta does not carry exists with the same
 * address, length and hash in the state before it (for the base: its
 * address and length; with opts->verify_first also its hash, the base
 * then decoded in advance).  The target must hold every range of the base
 * and of the final state (FULL otherwise, nothing changed).  Then w is
 * reset, the base decoded into it, each delta's pieces written in order,
 * the result checked against the last delta's digest, and the partition
 * records replaced.  opts->progress counts the bytes written: the base's
 * allocation bytes, then each delta's changed pieces (total: their sum,
 * which is more than the final state's size), as restore reports them.
 * The bytes move as for wksp_restore: a process that does not map the
 * target (a fresh `wksp` command) writes the base's data and each piece
 * into the region's file (pwrite) and reads them back for the digest.
 *
 * Failure and the state of w: INVAL (NULL, cnt 0, a delta first, an index
 * in the chain, a full checkpoint after the first, an unsealed base,
 * geometry differing, a base digest that does not match: "chain out of
 * order, incomplete or of another base"), CORRUPT (a damaged file, a
 * broken link), UNSUP, FULL, FAIL, NOMEM, PERM: w untouched.  After the
 * reset (only base data errors, a result not matching the last digest, a
 * read error; none but read errors with verify_first): w reset to empty,
 * CORRUPT (FAIL for a read error), "(target reset to empty)"; a result
 * not matching the last digest names the base ("does not match its
 * seal", the base decoded once more to tell) when that is the cause.  cnt 1 is
 * wksp_restore with require_seal. */
WKSP_API int wksp_restore_chain(wksp_t *w, const char *const *paths, size_t cnt,
                                const wksp_restore_opts_t *opts);

/* Folds the chain paths[0] (a sealed v2/v3 checkpoint) then paths[1 ..
 * cnt) (deltas, in order; cnt 1: BASE alone) into one ordinary full
 * checkpoint at `path`: the chain's final state, as wksp_checkpt of a
 * workspace holding it writes it.  The header, every cgroup frame and the
 * footer's fields are byte-identical to that checkpoint's (only the info
 * frame and the offsets that follow from its length differ), so the
 * reference reads it.  That workspace: BASE's part_max and data_max (every
 * member has them) and the name and seed the last member records (the
 * workspace its state was written from).
 *
 * Steps: the whole chain is checked as wksp_restore_chain checks it before
 * its target changes (same rules, same errors); the target is opened as by
 * wksp_checkpt; the final state is restored into a private workspace (an
 * anonymous private mapping of this process, never named, never seen by
 * others); that is checkpointed to path and the mapping released.
 *
 * opts (NULL = defaults) as for wksp_checkpt, with: style 0 = BASE's style
 * (V2 for a BASE of RAW frames, else V3); verify is implied: a file target
 * is always read back and sealed (so the file can be the base of further
 * deltas), a stream target (FIFO, character device: see wksp_checkpt) is
 * written unsealed; index also writes path + ".wkspidx" (a file target
 * only: INVAL for a stream); lock_wait is never called (nobody else holds
 * the private workspace's lock); progress hears the writing.
 *
 * Memory: the private mapping is made without reserving memory
 * (MAP_NORESERVE); only what the restore writes takes pages: 64 bytes per
 * partition record of BASE's part_max, the bytes allocated in BASE and in
 * the final state (BASE is decoded whole, then each delta's pieces written
 * over it), released before the call returns; plus the chain restore's
 * and the writer's per-thread buffers and tables (as wksp_restore_chain
 * and wksp_checkpt).  If the machine runs out of memory while the mapping
 * is filled, the kernel's out-of-memory handling applies, as for any
 * memory the process touches.
 *
 * Failure: INVAL (NULL paths or path, cnt 0, and the chain refusals of
 * wksp_restore_chain: a delta first, an index, a full checkpoint after the
 * first, an unsealed base, geometry differing, a base digest that does not
 * match: "chain out of order, incomplete or of another base"; bad style or
 * mode; a target never replaced; index to a stream), CORRUPT (a damaged
 * member, a broken link, BASE's bytes not matching its seal), UNSUP (a
 * delta of a newer version), EXIST (path exists, no overwrite), FAIL
 * (open, read, write, fsync, link; the private mapping, e.g. ENOMEM: the
 * address space), NOMEM.  Messages start with "fold: ".  After any
 * failure nothing new is at path and no temporary remains, as for
 * wksp_checkpt (its exceptions included); no member file and no
 * workspace is changed. */
WKSP_API int wksp_checkpt_fold(const char *const *paths, size_t cnt, const char *path,
                               const wksp_checkpt_opts_t *opts);
/* The same to fd from its current position (owned by the caller; a pipe
 * works), unsealed; label (NULL = "-") is the path the info frame records.
 * opts->index is INVAL; no publication: after a failure the bytes already
 * written stay there (the caller must discard them). */
WKSP_API int wksp_checkpt_fold_fd(const char *const *paths, size_t cnt, int fd, const char *label,
                                  const wksp_checkpt_opts_t *opts);

/* Compares the final state of the chain paths[0] (a sealed v2/v3
 * checkpoint) then paths[1 .. cnt) (deltas, in order) with w, as
 * wksp_checkpt_diff compares a full checkpoint of that state: the same
 * counts, first difference, each() calls (same rules), digest (of the
 * final state as decoded) and seal (OK when that digest is the last
 * delta's, BROKEN when not: the base's bytes are damaged, as every delta
 * piece is checked against its hash).  A member that is not a regular
 * file is spooled, as for wksp_restore_chain.
 * The chain is checked first as wksp_restore_chain checks it before the
 * lock (base digests, links, every delta's pieces), nothing locked; then w
 * is locked, the base decoded once and every final piece a delta carries
 * decoded from the last delta that carries it.  w is not modified (but
 * for the lock).  cnt 1 is wksp_checkpt_diff.
 * Failure: INVAL (NULL w, paths, a path or out, cnt 0, and the chain's
 * INVAL cases of wksp_restore_chain: "chain out of order, incomplete or of
 * another base" ...), CORRUPT (a damaged file, a broken link, a base whose
 * data does not decode), UNSUP, FAIL (open, read), PERM (read-only
 * attachment), NOMEM; *out is then zeroed. */
WKSP_API int wksp_checkpt_diff_chain(wksp_t *w, const char *const *paths, size_t cnt,
                                     const wksp_diff_opts_t *opts, wksp_checkpt_diff_t *out);

/* One file of a chain as wksp_chain_info describes it. */
typedef struct {
  const char *path;          /* as given (owned by the caller) */
  int kind;                  /* WKSP_FILE_* */
  int seal;                  /* a checkpoint: WKSP_SEAL_* as its info frame shows it (the bytes are
                                not decoded); a delta or index: WKSP_SEAL_OK (every delta is
                                sealed; its metadata digest was checked) */
  int linked;                /* the first file: a sealed v2/v3 checkpoint (a delta can apply to
                                it); a later one: a delta whose base_digest is the digest of the
                                file before it */
  char name[WKSP_NAME_MAX];  /* workspace name at writing */
  uint32_t seed;
  uint32_t version;          /* a checkpoint: its style (1, 2); a delta or index: its version */
  uint32_t piece_style;      /* a checkpoint: its frame style; a delta: its pieces' (1 RAW, 2 LZ4) */
  uint32_t flags;            /* a delta: bit 0 = written with verify */
  uint64_t part_max, data_max;
  int64_t wallclock;         /* ns since the epoch */
  uint64_t base_digest;      /* a delta: the content digest of the state it applies to (else 0) */
  uint64_t digest;           /* its own content digest (a checkpoint's seal digest; 0 unsealed) */
  uint64_t alloc_cnt, alloc_sz;  /* the state it records: allocations and their bytes */
  uint64_t piece_cnt;        /* 64 KiB pieces of that state */
  uint64_t changed_cnt, changed_sz; /* pieces (and their bytes) the file holds: a checkpoint all */
  uint64_t file_sz;
  const char *hint, *uinfo;  /* a delta: the base path it was written with, the user info (else "") */
  const wksp_part_t *parts;  /* alloc_cnt, ascending */
  const uint64_t *changed;   /* alloc_cnt: pieces of each allocation the file holds */
} wksp_chain_link_t;

typedef struct {
  size_t cnt;
  wksp_chain_link_t *links;  /* cnt */
  int linked;                /* every link's `linked`: the files form a chain that restores */
  size_t first_unlinked;     /* the first link that does not (cnt if linked) */
  void *priv_;               /* owned memory; released by wksp_chain_info_free */
} wksp_chain_info_t;

/* Describes the files paths[0 .. cnt) (checkpoints, deltas, index files,
 * in any order) from their metadata, each checked as far as wksp_checkpt_info
 * checks a checkpoint (a delta: rules 1-4 of docs/FORMAT.md 13.2, its
 * piece frames not decoded), and says whether they link as a chain: a
 * mismatched link is a result (linked 0), not an error.  Files or streams
 * (a stream is spooled, bounded as for wksp_checkpt_info_fd; "-" is not
 * special here: pass "/dev/stdin").
 * Failure: INVAL (NULL paths or out, a NULL path, cnt 0), FAIL (open,
 * read; ENOSPC spooling), CORRUPT (a damaged file, named), UNSUP (a delta
 * of another version), NOMEM; *out is then zeroed (free is harmless).  On
 * success free with wksp_chain_info_free. */
WKSP_API int wksp_chain_info(const char *const *paths, size_t cnt, wksp_chain_info_t *out);
WKSP_API void wksp_chain_info_free(wksp_chain_info_t *info);

/* Checks a file or a chain as far as files can be checked without a
 * workspace, stopping at the first problem.  cnt 1: a checkpoint as
 * wksp_checkpt_check; a delta: rules 1-5 of docs/FORMAT.md 13.2 (metadata
 * digest, every piece decoded and checked against its hash, the piece
 * digest); an index: rules 1-4.  cnt > 1: the chain as wksp_restore_chain
 * with verify_first checks it before changing anything (the base decoded
 * and checked against its seal, every delta, every base digest and every
 * link piece by piece).  *seal (if not NULL): as for wksp_checkpt_check
 * for a single checkpoint; WKSP_SEAL_OK for a delta, index or chain that
 * passes; WKSP_SEAL_NONE otherwise.
 * Failure: INVAL (NULL paths, a NULL path, cnt 0; a chain's INVAL cases:
 * "chain out of order ...", a delta first, an unsealed base), CORRUPT (the
 * first damage found, naming the file), UNSUP (require_seal and an
 * unsealed checkpoint; another delta version), FAIL, NOMEM. */
WKSP_API int wksp_chain_check(const char *const *paths, size_t cnt, const wksp_check_opts_t *opts, int *seal);

#ifdef __cplusplus
}
#endif

#endif
