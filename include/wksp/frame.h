/* wksp/frame.h: the frame stream layer (docs/FORMAT.md section 2).
 *
 * A checkpoint is a sequence of frames laid end to end, each RAW or LZ4,
 * with no headers, lengths or checksums of their own: a reader must ask for
 * exactly the sequence of buffer sizes the writer wrote, frame by frame.
 *
 *   RAW frame: the buffers concatenated verbatim.
 *   LZ4 frame: every non-empty buffer cut into chunks of at most 64 KiB; each
 *     chunk stored as a 3-byte little-endian block size followed by one LZ4
 *     block.  All chunks of a frame form one LZ4 stream whose history is
 *     reset when the frame opens, so frames are independent of each other and
 *     of their position in the checkpoint.
 *
 * LZ4 frames written here are byte-identical to the reference writer's
 * (Firedancer fd_checkpt: 64 KiB chunks, the 192 KiB gather ring and its wrap
 * rule, acceleration 1) when linked with Debian's liblz4 1.9.4 (also observed
 * identical with 1.10.0; other liblz4 versions may legally differ, docs/FORMAT.md
 * 2.7).
 *
 * Offsets are relative to the first byte of the checkpoint: the position of
 * the fd at init, or the start of the memory region.
 *
 * Buffers: "meta" buffers are at most WKSP_FRAME_META_MAX bytes and may be
 * reused by the caller as soon as the call returns; "data" buffers have any
 * size and, for a writer, must stay allocated and unchanged until the frame
 * is closed (large RAW data is written straight from the caller's memory at
 * close, and LZ4 compression reads earlier data buffers of the frame as its
 * history; if a data buffer changes before close, the frame's contents are
 * unspecified).  On disk both kinds are encoded identically; a reader may read a
 * buffer written as data with a meta call and vice versa.  A zero-length
 * buffer emits nothing.  Reader buffers belong to the caller again when the
 * call returns.
 *
 * Errors (return values; the message, from wksp_errmsg(), names the frame by
 * its start offset and the byte offset where the problem is):
 *   WKSP_ERR_INVAL   misuse: NULL argument, buffer call outside a frame,
 *                    open inside a frame, meta over 64 KiB, unknown style,
 *                    seek inside a frame.  Detected before anything happens:
 *                    the object is left exactly as it was.
 *   WKSP_ERR_UNSUP   seek on a non-seekable fd.  The object is unchanged.
 *   WKSP_ERR_NOMEM   init could not allocate the object (nothing created).
 *   WKSP_ERR_FAIL    I/O: an OS call failed (errno in wksp_errno() and the
 *                    message), end of input ("truncated at offset N"), memory
 *                    region full, seek past the end, a sink failed.
 *   WKSP_ERR_CORRUPT the bytes cannot be a frame of the requested buffers: an
 *                    LZ4 block size out of range, a block that is not valid
 *                    LZ4 or does not decode to exactly its chunk's size.
 * After FAIL or CORRUPT the object is failed: every later call except fini
 * returns the same code (with a message recalling the first failure); the
 * caller's buffer of the failing read holds unspecified bytes.
 *
 * Thread safety: a writer or reader is used by one thread at a time; distinct
 * objects are fully independent (no shared state, liblz4 is reentrant), so
 * several threads may each drive their own.
 *
 * Parallel writing: because an LZ4 frame's bytes do not depend on where the
 * frame sits in the checkpoint, worker threads can each encode frames with
 * their own writer in memory or sink mode (offsets there start at 0), and the
 * thread that owns the output splices the finished frames, in order, as the
 * data of a RAW frame of its own writer (RAW frames are verbatim).  The
 * spliced frame's checkpoint offset is the offset that RAW frame opened at. */
#ifndef WKSP_FRAME_H
#define WKSP_FRAME_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "wksp/error.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Frame styles.  0 is accepted at the API as "default" = RAW (as in the
 * reference); it never appears on disk. */
enum { WKSP_FRAME_DEFAULT = 0, WKSP_FRAME_RAW = 1, WKSP_FRAME_LZ4 = 2 };

#define WKSP_FRAME_META_MAX 65536ul  /* largest meta buffer */
#define WKSP_FRAME_CHUNK_MAX 65536ul /* uncompressed bytes per LZ4 chunk */

typedef struct wksp_frame_writer wksp_frame_writer_t;
typedef struct wksp_frame_reader wksp_frame_reader_t;

/* ---- writer ------------------------------------------------------------- */

/* Output callback of a sink writer: consume all iovcnt (1..1024) buffers, in
 * order.  The buffers are only valid during the call.  Returns 0 when every
 * byte was consumed, or a positive errno value (e.g. ENOSPC, EIO) to fail the
 * writer with WKSP_ERR_FAIL.  Called only from wksp_frame_writer_close() (a
 * frame's bytes are all delivered by the time close returns) and from the
 * buffer calls when the writer's 256 KiB gather buffer or its list of
 * referenced data buffers fills up. */
typedef int (*wksp_frame_sink_fn_t)(void *ctx, const struct iovec *iov, int iovcnt);

/* Creates a writer whose output goes to write_fn(ctx, ...).  The writer
 * allocates about 480 KiB (256 KiB gather buffer; LZ4 state and 192 KiB ring
 * once an LZ4 frame is opened).  INVAL: out or write_fn NULL; NOMEM.  On
 * failure of any init, *out is NULL (when out is not NULL). */
WKSP_API int wksp_frame_writer_init_sink(wksp_frame_writer_t **out, wksp_frame_sink_fn_t write_fn,
                                         void *ctx);

/* Creates a writer onto fd (any fd: file, pipe, socket), writing from its
 * current position with write/writev.  Every write is complete: short writes
 * are continued and EINTR retried; any other write error is FAIL with errno
 * (EPIPE needs SIGPIPE ignored or handled by the caller).  The writer never
 * closes, seeks or syncs the fd.  INVAL: out NULL or fd < 0; NOMEM. */
WKSP_API int wksp_frame_writer_init_fd(wksp_frame_writer_t **out, int fd);

/* Creates a writer into memory [mem, mem+sz).  Nothing is buffered: each
 * call's bytes are in the region when it returns (LZ4 chunks are compressed
 * straight into it); the data buffer rule above still holds.  A buffer
 * call that would write past the end is FAIL ("memory region of N bytes is
 * full"); the bytes before it stay written.  The writer never reads the
 * region.  INVAL: out NULL, or mem NULL with sz > 0; NOMEM. */
WKSP_API int wksp_frame_writer_init_mem(wksp_frame_writer_t **out, void *mem, size_t sz);

/* Frees the writer (NULL: no-op, SUCCESS).  Closing the last frame is the
 * caller's job; close already delivered every byte, so fini writes nothing.
 * *sz (optional) gets the total bytes delivered (the checkpoint size so
 * far).  Returns INVAL if called inside a frame (the frame's pending bytes are
 * dropped, the output is incomplete), the writer's failure code if it had
 * failed, else SUCCESS; the writer is freed in every case. */
WKSP_API int wksp_frame_writer_fini(wksp_frame_writer_t *w, uint64_t *sz);

/* Opens a frame of `style` (RAW or LZ4; 0 = RAW); *off (optional) gets its
 * start offset.  An LZ4 frame starts a fresh LZ4 stream.  INVAL: w NULL,
 * already inside a frame, unknown style.  NOMEM: the LZ4 state could not be
 * allocated at the first LZ4 open (writer failed). */
WKSP_API int wksp_frame_writer_open(wksp_frame_writer_t *w, int style, uint64_t *off);

/* Appends a buffer of sz <= 64 KiB; buf may be reused as soon as this
 * returns.  INVAL: outside a frame, sz > WKSP_FRAME_META_MAX, buf NULL with
 * sz > 0.  FAIL: the output failed while flushing (see init). */
WKSP_API int wksp_frame_writer_meta(wksp_frame_writer_t *w, const void *buf, size_t sz);

/* Appends a buffer of any size; buf must stay allocated and unchanged until
 * the frame is closed (large RAW data is referenced, not copied, and written
 * from buf at close or when the reference list fills up).  INVAL: outside a
 * frame, buf NULL with sz > 0.  FAIL: as meta. */
WKSP_API int wksp_frame_writer_data(wksp_frame_writer_t *w, const void *buf, size_t sz);

/* Closes the frame, delivering all its bytes to the output; *off (optional)
 * gets the offset one past its end.  INVAL: outside a frame.  FAIL: the
 * output failed (the writer is failed; how much of the frame reached the
 * output is unspecified). */
WKSP_API int wksp_frame_writer_close(wksp_frame_writer_t *w, uint64_t *off);

/* Offset of the next byte the writer will produce (bytes accepted so far,
 * delivered or pending); 0 for NULL. */
WKSP_API uint64_t wksp_frame_writer_offset(const wksp_frame_writer_t *w);

/* ---- reader ------------------------------------------------------------- */

/* Creates a reader from fd (seekable or not), starting at its current
 * position.  It reads ahead through a 256 KiB private buffer (never past what
 * it needs to satisfy the current call from a pipe or socket: a read
 * returns as soon as the needed bytes arrived) and reads large RAW buffers
 * straight into the caller's memory.  It never closes the fd.  End of input
 * where bytes are needed is FAIL "truncated at offset N"; EINTR is retried.
 * INVAL: out NULL or fd < 0; NOMEM. */
WKSP_API int wksp_frame_reader_init_fd(wksp_frame_reader_t **out, int fd);

/* Creates a reader from memory [mem, mem+sz) (not copied; it must outlive
 * the reader and stay unchanged).  INVAL: out NULL, or mem NULL with sz > 0;
 * NOMEM. */
WKSP_API int wksp_frame_reader_init_mem(wksp_frame_reader_t **out, const void *mem, size_t sz);

/* Frees the reader (NULL: no-op).  Always SUCCESS; leaves the fd where the
 * reader's read-ahead left it. */
WKSP_API int wksp_frame_reader_fini(wksp_frame_reader_t *r);

/* Moves to checkpoint offset `off`, which must be a frame start (seeking into
 * an LZ4 frame's middle gives CORRUPT or garbage at the next read).  INVAL:
 * inside a frame; UNSUP: non-seekable fd (both leave the reader unchanged).
 * FAIL: off past the end of the memory region or of a regular file, lseek
 * failure (reader failed). */
WKSP_API int wksp_frame_reader_seek(wksp_frame_reader_t *r, uint64_t off);

/* Opens a frame of `style` (RAW or LZ4; 0 = RAW) at the current offset; *off
 * (optional) gets it.  Reads nothing.  INVAL: inside a frame, unknown
 * style. */
WKSP_API int wksp_frame_reader_open(wksp_frame_reader_t *r, int style, uint64_t *off);

/* Reads the next buffer of exactly sz bytes into buf (meta: sz <= 64 KiB;
 * data: any size).  LZ4: each chunk's size field must be in 1..
 * LZ4_COMPRESSBOUND(chunk size) and its block must decode to exactly the chunk
 * size using only this frame's earlier bytes as history, else CORRUPT.
 * Running out of input is FAIL ("truncated at offset N").  INVAL: outside a
 * frame, buf NULL with sz > 0, meta sz > 64 KiB.  On FAIL/CORRUPT buf holds
 * unspecified bytes. */
WKSP_API int wksp_frame_reader_meta(wksp_frame_reader_t *r, void *buf, size_t sz);
WKSP_API int wksp_frame_reader_data(wksp_frame_reader_t *r, void *buf, size_t sz);

/* Closes the frame; *off (optional) gets the offset one past its end (the
 * next frame's start).  Reads nothing and checks nothing (frames have no
 * end mark).  INVAL: outside a frame. */
WKSP_API int wksp_frame_reader_close(wksp_frame_reader_t *r, uint64_t *off);

/* Offset of the next byte the reader will consume; 0 for NULL. */
WKSP_API uint64_t wksp_frame_reader_offset(const wksp_frame_reader_t *r);

#ifdef __cplusplus
}
#endif

#endif
