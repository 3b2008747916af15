/* wksp/frame.h: the frame stream layer (FORMAT.md section 2).
 *
 * A checkpoint is a sequence of frames laid end to end, each RAW or LZ4,
 * with no headers or lengths of their own: a reader must ask for exactly the
 * buffer sizes the writer wrote.  LZ4 frames are byte-identical to the
 * reference writer's (64 KiB chunks with 3-byte sizes, one LZ4 stream per
 * frame reset at open, the 192 KiB gather ring, acceleration 1), built on
 * Debian's liblz4.
 *
 * Offsets are relative to the first byte of the checkpoint (the position
 * of the fd, or the start of the memory region, at init).
 *
 * Thread safety: a writer or reader object is used by one thread at a time;
 * distinct objects are independent.  Errors: INVAL (misuse: not in a frame,
 * meta over 64 KiB, bad style), UNSUP, FAIL (I/O, with errno; EOF), CORRUPT
 * (bytes that cannot be a valid frame); the message names the frame offset
 * and byte offset.  After any error the object is failed: every later call
 * except fini returns the same code. */
#ifndef WKSP_FRAME_H
#define WKSP_FRAME_H

#include <stddef.h>
#include <stdint.h>

#include "wksp/error.h"

#ifdef __cplusplus
extern "C" {
#endif

enum { WKSP_FRAME_RAW = 1, WKSP_FRAME_LZ4 = 2 };

#define WKSP_FRAME_META_MAX 65536ul  /* largest meta buffer */
#define WKSP_FRAME_CHUNK_MAX 65536ul /* uncompressed bytes per LZ4 chunk */

typedef struct wksp_frame_writer wksp_frame_writer_t;
typedef struct wksp_frame_reader wksp_frame_reader_t;

/* ---- writer ------------------------------------------------------------- */

/* Writer onto fd (any fd: file, pipe, socket), starting at its current
 * position.  The writer owns a private buffer, never the fd. */
WKSP_API int wksp_frame_writer_init_fd(wksp_frame_writer_t **out, int fd);

/* Writer into memory [mem, mem+sz); writing past the end is FAIL. */
WKSP_API int wksp_frame_writer_init_mem(wksp_frame_writer_t **out, void *mem, size_t sz);

/* Flushes what is buffered (fd mode) and frees the writer.  *sz (optional)
 * gets the total bytes written.  Closing a frame is the caller's job; fini
 * inside a frame is INVAL (the writer is still freed). */
WKSP_API int wksp_frame_writer_fini(wksp_frame_writer_t *w, uint64_t *sz);

/* Opens a frame of `style`; *off (optional) gets its start offset. */
WKSP_API int wksp_frame_writer_open(wksp_frame_writer_t *w, int style, uint64_t *off);

/* Appends a buffer of sz <= 64 KiB; buf may be reused as soon as it returns. */
WKSP_API int wksp_frame_writer_meta(wksp_frame_writer_t *w, const void *buf, size_t sz);

/* Appends a buffer of any size; buf must stay unchanged until the frame is
 * closed (RAW data may be written straight from it later). */
WKSP_API int wksp_frame_writer_data(wksp_frame_writer_t *w, const void *buf, size_t sz);

/* Closes the frame; *off (optional) gets the offset one past its end. */
WKSP_API int wksp_frame_writer_close(wksp_frame_writer_t *w, uint64_t *off);

/* ---- reader ------------------------------------------------------------- */

/* Reader from fd (seekable or not), starting at its current position. */
WKSP_API int wksp_frame_reader_init_fd(wksp_frame_reader_t **out, int fd);

/* Reader from memory [mem, mem+sz) (not copied; must outlive the reader). */
WKSP_API int wksp_frame_reader_init_mem(wksp_frame_reader_t **out, const void *mem, size_t sz);

WKSP_API int wksp_frame_reader_fini(wksp_frame_reader_t *r);

/* Moves to checkpoint offset `off` (outside a frame).  UNSUP for a
 * non-seekable fd; FAIL if off is past the end (memory). */
WKSP_API int wksp_frame_reader_seek(wksp_frame_reader_t *r, uint64_t off);

/* Opens a frame of `style` at the current offset (*off gets it). */
WKSP_API int wksp_frame_reader_open(wksp_frame_reader_t *r, int style, uint64_t *off);

/* Reads the next buffer of exactly sz bytes into buf (meta: sz <= 64 KiB).
 * An LZ4 block that does not decode to exactly its chunk's size is CORRUPT;
 * running out of bytes is FAIL ("truncated"). */
WKSP_API int wksp_frame_reader_meta(wksp_frame_reader_t *r, void *buf, size_t sz);
WKSP_API int wksp_frame_reader_data(wksp_frame_reader_t *r, void *buf, size_t sz);

/* Closes the frame; *off (optional) gets the offset one past its end. */
WKSP_API int wksp_frame_reader_close(wksp_frame_reader_t *r, uint64_t *off);

#ifdef __cplusplus
}
#endif

#endif
