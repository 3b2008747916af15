/* Constants shared by the frame writer and reader (docs/FORMAT.md 1.3, 2.3-2.5). */
#ifndef WKSP_FRAME_PRIVATE_H
#define WKSP_FRAME_PRIVATE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include <wksp/frame.h>

enum {
  FRAME_CHUNK = 65536,                       /* uncompressed bytes per LZ4 chunk */
  FRAME_HIST = 65536,                        /* LZ4 back-references reach at most 65535 bytes */
  FRAME_RING = 2 * 65536 + 65536,            /* reference gather ring (GATHER_RING_SZ) */
  FRAME_CSZ_MAX = 65536 + 65536 / 255 + 16,  /* LZ4_COMPRESSBOUND(FRAME_CHUNK) */
  FRAME_CHUNK_HDR = 3                        /* u24 LE block size before each block */
};

/* LZ4_COMPRESSBOUND for usz <= FRAME_CHUNK, without the macro's int casts. */
static inline size_t frame_csz_bound(size_t usz) { return usz + usz / 255 + 16; }

/* An LZ4 chunk as it lies in a frame: a FRAME_CHUNK_HDR-byte header (the
 * block size, u24 LE) and the block.  The reader and the pipelined restore's
 * look-ahead (which finds a buffered frame's end without decoding it) read
 * chunk headers with these two calls. */
static inline size_t frame_chunk_csz(const uint8_t *hdr) {
  return (size_t)hdr[0] | (size_t)hdr[1] << 8 | (size_t)hdr[2] << 16;
}
/* Whether csz is a block size a chunk of usz uncompressed bytes can have. */
static inline int frame_chunk_csz_ok(size_t csz, size_t usz) {
  return csz >= 1 && csz <= frame_csz_bound(usz);
}

static inline int frame_style_ok(int style) {
  return style == WKSP_FRAME_DEFAULT || style == WKSP_FRAME_RAW || style == WKSP_FRAME_LZ4;
}

static inline const char *frame_style_name(int style) {
  return style == WKSP_FRAME_LZ4 ? "LZ4" : "RAW";
}

/* Regions mode (the parallel checkpoint's output): the writer produces its
 * bytes straight into memory regions supplied one after the other by fn, so
 * that they can be written out elsewhere (another thread) without a copy.
 * fn(ctx, full, used, &mem, &sz) is called when the current region cannot
 * take the next piece: `full` (NULL at the first call) is the region handed
 * back, holding `used` bytes of output (the rest of it is unused: an LZ4
 * chunk is never split across regions, so up to FRAME_CHUNK_HDR +
 * FRAME_CSZ_MAX - 1 bytes at a region's end can stay unused); fn returns 0
 * with a new region of at least FRAME_CHUNK_HDR + FRAME_CSZ_MAX bytes in
 * *mem, *sz, or a positive errno value, which fails the writer (FAIL).  The
 * last region's used bytes are the writer's offset minus the bytes of the
 * regions handed back.  The writer never frees a region.  Only the
 * allocation can fail: NOMEM. */
typedef int (*wksp_private_frame_region_fn_t)(void *ctx, uint8_t *full, size_t used, uint8_t **mem,
                                              size_t *sz);
int wksp_private_frame_writer_init_regions(wksp_frame_writer_t **out,
                                           wksp_private_frame_region_fn_t fn, void *ctx);

/* A reader on fd whose first pre_sz input bytes were already read from it
 * into [pre, pre + pre_sz) (kept by the caller, unchanged, until fini):
 * those are consumed first, then the fd.  Such a reader cannot seek.  As
 * wksp_frame_reader_init_fd otherwise. */
int wksp_private_frame_reader_init_fd_prefix(wksp_frame_reader_t **out, int fd, const void *pre,
                                             size_t pre_sz);
/* A reader on the sz bytes of file fd at file offset base, read with
 * pread(2) (the fd's offset is neither used nor changed, so readers on one
 * fd may run on several threads).  Seekable within [0, sz]; reading past sz
 * is truncation, as for memory; a file that ends before base + sz (it
 * shrank) is FAIL with errno 0 and a message saying so.  INVAL: out NULL,
 * fd < 0, or a range beyond INT64_MAX. */
int wksp_private_frame_reader_init_pread(wksp_frame_reader_t **out, int fd, uint64_t base,
                                         uint64_t sz);
/* pread mode (else no-op): the caller will read up to offset end (the end of
 * the frame it is about to read, known from elsewhere): read-ahead goes up
 * to there in large reads and no further.  A hint only: reads past it still
 * work.  Holds until the next seek. */
void wksp_private_frame_reader_span(wksp_frame_reader_t *r, uint64_t end);

/* Input the reader holds but has not consumed (prefix remainder or its
 * read-ahead): the bytes at offsets [offset, offset + *n) are at *p, valid
 * until the next call on the reader. */
void wksp_private_frame_reader_buffered(const wksp_frame_reader_t *r, const uint8_t **p,
                                        size_t *n);

/* Whether r failed because its input ended inside a read: then the input
 * ended at offset *at (reader offsets) and the read needed the bytes up to
 * *end.  0 (nothing stored) for a reader that did not fail so. */
int wksp_private_frame_reader_short(const wksp_frame_reader_t *r, uint64_t *at, uint64_t *end);

/* Frees a writer its caller gives up on (its output is discarded), open
 * frame or not, recording nothing: the caller's own failure stays the one
 * reported (wksp_frame_writer_fini would record "never closed" over it).
 * NULL is fine. */
void wksp_private_frame_writer_drop(wksp_frame_writer_t *w);

/* An fd writer's source file: data buffers it references in place (RAW
 * data larger than the gather copies) that lie inside [mem, mem + sz) are
 * the bytes of file fd from offset off on (mem maps it): they are copied
 * from the file by the kernel (sendfile(2)) instead of written from
 * memory, so that a process that has not touched that mapping takes no
 * page fault for it; smaller RAW data in that range is read from the file
 * into the gather buffer (pread).  The output bytes are the same; buffers
 * must still stay unchanged until delivered.  Where the kernel cannot copy
 * between the two files (EINVAL, ENOSYS, EOPNOTSUPP or EXDEV before any
 * byte), and for an output that is not a regular file (a pipe, a socket:
 * the kernel could hand a file's pages to a pipe by reference, and its
 * reader would see changes made after the call), the bytes are read from
 * the source file into a 1 MiB buffer and written from there (pread,
 * write); only if that buffer cannot be allocated, from memory.  A read
 * error of the source file is FAIL with its errno.  The writer does not own
 * fd, which must stay open until fini.  Other writer kinds ignore it. */
void wksp_private_frame_writer_source(wksp_frame_writer_t *w, int fd, const void *mem, uint64_t sz, uint64_t off);

/* Tests: exact != 0 makes the writer copy every LZ4 chunk into the ring, as
 * the reference does, instead of compressing eligible chunks in place (the
 * bytes must be the same either way). */
void wksp_private_frame_writer_exact(wksp_frame_writer_t *w, int exact);

/* Patchable frames (the seal of a checkpoint): a frame opened with
 * open_patchable stores every buffer verbatim (RAW as always; LZ4 as
 * literal-only blocks, valid for any LZ4 reader, without compression or
 * history), and data_at, as wksp_frame_writer_data for a buffer of at most
 * WKSP_FRAME_CHUNK_MAX bytes, reports where it landed: its bytes are the
 * output's [*at, *at + sz), to be patched in place once written.  data_at
 * on a larger buffer, or in an LZ4 frame opened otherwise: INVAL. */
int wksp_private_frame_writer_open_patchable(wksp_frame_writer_t *w, int style, uint64_t *off);
int wksp_private_frame_writer_data_at(wksp_frame_writer_t *w, const void *buf, size_t sz,
                                      uint64_t *at);

/* ---- LZ4 history hand-over (the parallel checkpoint splits frames) --------
 *
 * The bytes of an LZ4 chunk depend only on its input and on the stream's
 * history state before it.  That state, in the reference's terms (its
 * dictionary always ends at its ring cursor), is: the ring cursor, LZ4's
 * dictSize, whether dictSize < currentOffset (LZ4's small-dictionary
 * test), and which earlier position each hash slot offers as a match
 * candidate.  A slot whose position is more than 65535 bytes back can never
 * be used again (LZ4 rejects it by distance before reading it), so slots
 * are compared as distances, with every unusable one as 0.  Two writers
 * whose states are equal produce identical bytes for identical input from
 * there on, wherever their history came from: a second writer can start in
 * the middle of a frame after re-compressing (warming up on) a little of
 * the input before it, and its output continues the first writer's exactly
 * when the states agree at the hand-over point. */
enum { FRAME_LZ4_SLOTS = 4096 }; /* LZ4_HASH_SIZE_U32 at LZ4_MEMORY_USAGE 14 */

typedef struct {
  uint32_t cursor, dict_sz, small_ok, table_type;
  uint32_t dist[FRAME_LZ4_SLOTS]; /* per slot: distance back (1..65535), 0 = unusable */
} wksp_private_frame_lz4_state_t;

/* Non-zero when the running liblz4's state layout is the one lz4.h
 * describes, which the hand-over needs. */
int wksp_private_frame_lz4_handover_ok(void);

/* *st = the history state at the writer's position in its open LZ4 frame.
 * Returns 0, or -1 when the running liblz4's state layout is not the one
 * lz4.h describes or no LZ4 frame is open (no hand-over possible then). */
int wksp_private_frame_writer_lz4_state(const wksp_frame_writer_t *w,
                                        wksp_private_frame_lz4_state_t *st);

/* The reference's ring cursor after a chunk of usz bytes placed at cursor. */
static inline size_t frame_ring_next(size_t cursor, size_t usz) {
  return (FRAME_RING - cursor < usz ? 0 : cursor) + usz;
}

/* Right after opening an LZ4 frame: the writer continues a frame whose
 * earlier chunks left the reference's ring cursor at `cursor` (history
 * empty until warm-up). */
void wksp_private_frame_writer_set_cursor(wksp_frame_writer_t *w, size_t cursor);

/* As wksp_frame_writer_data, but the chunks only build history: they are
 * compressed into scratch memory and nothing is output (offset unchanged).
 * cont: buf directly continues, in memory, the previous chunk fed to this
 * writer (the data of one buffer fed in several calls); its first chunk
 * then counts as a continuation, not as a buffer's first chunk (same
 * bytes either way; a continuation may be compressed in place). */
int wksp_private_frame_writer_warm(wksp_frame_writer_t *w, const void *buf, size_t sz, int cont);

/* wksp_frame_writer_data with the `cont` of wksp_private_frame_writer_warm. */
int wksp_private_frame_writer_data_cont(wksp_frame_writer_t *w, const void *buf, size_t sz,
                                        int cont);

#endif
