/* Frame writer (docs/FORMAT.md 2).
 *
 * Output model (fd and sink): everything the writer produces is described by
 * a list of iovecs, delivered in one go (writev or the sink) when a frame
 * closes or when the list or the gather buffer fills up.  Small pieces (meta
 * buffers, small RAW data, compressed LZ4 chunks) are copied into the gather
 * buffer; large RAW data buffers are referenced in place, which is why data
 * buffers must stay unchanged until close.  Memory mode writes everything
 * straight into the region (LZ4 chunks compressed in place), one copy less.
 *
 * LZ4: one LZ4 stream per frame, fed chunk by chunk exactly as the
 * reference feeds it from its 192 KiB gather ring, so that the bytes are
 * identical; most chunks of large data buffers are compressed in place
 * without changing them (see the LZ4 section).
 *
 * Length: about 620 lines, one file because the three output modes and the
 * LZ4 feeding share the writer's state (iovec list, gather buffer, ring,
 * history) field by field; the reservations and the hand-over for split
 * frames are short sections of it. */
#include <errno.h>
#include <inttypes.h>
#include <lz4.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "frame/frame_private.h"
#include "util/err.h"
#include "util/io.h"

enum {
  GATHER_SZ = 256 * 1024,   /* gather buffer; holds several compressed chunks */
  GATHER_COPY_MAX = 16384,  /* RAW data up to this size is copied, larger is referenced */
  IOV_CAP = 1024,           /* = IOV_MAX on Linux: one writev per delivery */
  SRC_BOUNCE = 1 << 20,     /* a source file's bytes copied to a pipe at a time */
};

enum { OUT_SINK, OUT_FD, OUT_MEM, OUT_REGIONS };

struct wksp_frame_writer {
  int out_kind;
  int fd;                       /* OUT_FD */
  int src_fd;                   /* OUT_FD: referenced bytes in [src_lo, src_hi) are copied from */
  const uint8_t *src_lo, *src_hi; /* this file, at src_off + (p - src_lo); -1: none */
  uint64_t src_off;
  uint8_t *bounce;              /* not a regular output: SRC_BOUNCE bytes, or NULL: sendfile */
  uint8_t *mem;                 /* OUT_MEM, OUT_REGIONS (the current region) */
  size_t mem_sz;
  uint64_t mem_at;              /* OUT_REGIONS: offset of the current region's first byte */
  wksp_private_frame_region_fn_t region_fn; /* OUT_REGIONS */
  void *region_ctx;
  wksp_frame_sink_fn_t sink;    /* OUT_SINK */
  void *sink_ctx;

  int style;                    /* style of the open frame; 0 outside a frame */
  uint64_t frame_off;           /* start of the open frame */
  uint64_t off;                 /* bytes accepted (delivered + pending) */
  uint64_t delivered;           /* bytes handed to the output */

  wksp_err_saved_t fail;        /* sticky failure (err 0 while healthy) */

  uint8_t *gather;              /* GATHER_SZ bytes */
  size_t gather_used;
  int tail_in_gather;           /* last iovec ends at gather + gather_used */
  int iovcnt;
  struct iovec iov[IOV_CAP];

  LZ4_stream_t *lz4;            /* allocated at the first LZ4 open */
  uint8_t *ring;                /* FRAME_RING bytes */
  size_t cursor;                /* ring cursor, reset at every LZ4 open */
  int hist_in_caller;           /* the last chunk was compressed in place ... */
  const uint8_t *hist_end;      /* ... and ended here, in a data buffer of this frame */
  int exact;                    /* tests: every chunk through the ring, as the reference */
  int literal;                  /* LZ4 chunks as literal-only blocks (patchable in place) */
  int warming;                  /* chunks only build history (wksp_private_frame_writer_warm) */
  uint8_t *scratch;             /* their output, dropped (FRAME_CSZ_MAX bytes, on demand) */
};

/* Makes the writer failed with the error just recorded (the code rc). */
static int writer_set_failed(wksp_frame_writer_t *w, int rc) {
  return wksp_err_keep(&w->fail, rc);
}

/* The kept failure again, its cause unchanged (a user reads why the write
 * failed, not that a later call was refused); the refusal is context. */
static int writer_refuse_failed(const wksp_frame_writer_t *w, const char *fn) {
  return wksp_err_wrap(wksp_err_resume(&w->fail), "%s: writer failed earlier", fn);
}

/* Common entry checks of the buffer calls and close. */
static int writer_check_in_frame(const wksp_frame_writer_t *w, const char *fn) {
  if (!w) return wksp_err_in(WKSP_ERR_INVAL, 0, fn, "NULL writer");
  if (w->fail.err) return writer_refuse_failed(w, fn);
  if (!w->style)
    return wksp_err_in(WKSP_ERR_INVAL, 0, fn, "no frame is open (writer at offset %" PRIu64 ")",
                    w->off);
  return 0;
}

/* ---- output ------------------------------------------------------------- */

static int writev_all(wksp_frame_writer_t *w, struct iovec *iov, int cnt, uint64_t at) {
  int e = wksp_private_writev_all(w->fd, iov, cnt);
  if (!e) return 0;
  int rc = wksp_err(WKSP_ERR_FAIL, e, "write of the bytes from offset %" PRIu64 " failed", at);
  return wksp_err_wrap(rc, "frame writer: fd %d", w->fd);
}

/* Whether [p, p + n) are bytes of the source file (not gather bytes). */
static int in_source(const wksp_frame_writer_t *w, const void *p, size_t n) {
  const uint8_t *b = p;
  return w->src_fd >= 0 && b >= w->src_lo && b < w->src_hi && n <= (size_t)(w->src_hi - b);
}

static int from_source(const wksp_frame_writer_t *w, const struct iovec *iov) {
  return in_source(w, iov->iov_base, iov->iov_len);
}

static int source_read_failed(const wksp_frame_writer_t *w, long got, uint64_t at) {
  int rc = wksp_err(WKSP_ERR_FAIL, got < 0 ? errno : EIO, "read of the source file at offset %" PRIu64 " failed", at);
  return wksp_err_wrap(rc, "frame writer: fd %d", w->src_fd);
}

/* One referenced buffer of the source file through the bounce buffer. */
static int bounce_source(wksp_frame_writer_t *w, const struct iovec *iov, uint64_t at) {
  uint64_t src = w->src_off + (uint64_t)((const uint8_t *)iov->iov_base - w->src_lo);
  for (size_t done = 0; done < iov->iov_len;) {
    size_t n = iov->iov_len - done < SRC_BOUNCE ? iov->iov_len - done : SRC_BOUNCE;
    long got = wksp_private_pread_full(w->src_fd, w->bounce, n, src + done);
    if (got != (long)n) return source_read_failed(w, got, src + done);
    if (wksp_private_write_full(w->fd, w->bounce, n)) {
      int rc = wksp_err(WKSP_ERR_FAIL, errno, "write of the bytes from offset %" PRIu64 " failed", at + done);
      return wksp_err_wrap(rc, "frame writer: fd %d", w->fd);
    }
    done += n;
  }
  return 0;
}

/* One referenced buffer of the source file, copied by the kernel (or
 * through the bounce buffer); when the two files cannot be copied between
 * (a kernel or file system without it: nothing was written), from memory,
 * and so on for the rest of the writer. */
static int send_source(wksp_frame_writer_t *w, struct iovec *iov, uint64_t at) {
  if (w->bounce) return bounce_source(w, iov, at);
  const uint8_t *p = iov->iov_base;
  size_t done = 0;
  int e = wksp_private_sendfile_all(w->fd, w->src_fd, w->src_off + (uint64_t)(p - w->src_lo), iov->iov_len, &done);
  if (e && !done && wksp_private_sendfile_unsupported(e)) {
    /* the files cannot be copied between: through the buffer from now on,
     * or, without memory for it, from the mapping */
    if ((w->bounce = malloc(SRC_BOUNCE))) return bounce_source(w, iov, at);
    w->src_fd = -1;
    return writev_all(w, iov, 1, at);
  }
  if (!e) return 0;
  int rc = wksp_err(WKSP_ERR_FAIL, e, "copy of the bytes from offset %" PRIu64 " failed", at + done);
  return wksp_err_wrap(rc, "frame writer: fd %d", w->fd);
}

/* The pending iovecs to the fd: runs of them with one writev, referenced
 * bytes of the source file by the kernel. */
static int deliver_fd(wksp_frame_writer_t *w) {
  uint64_t at = w->delivered;
  int rc = 0;
  for (int i = 0; !rc && i < w->iovcnt;) {
    int j = i;
    while (j < w->iovcnt && !from_source(w, &w->iov[j])) j++;
    size_t run = 0;
    for (int k = i; k < j; k++) run += w->iov[k].iov_len;
    if (j > i) rc = writev_all(w, w->iov + i, j - i, at);
    at += run;
    if (!rc && j < w->iovcnt) {
      rc = send_source(w, &w->iov[j], at);
      at += w->iov[j++].iov_len;
    }
    i = j;
  }
  return rc;
}

static int deliver(wksp_frame_writer_t *w) {
  size_t total = 0;
  for (int i = 0; i < w->iovcnt; i++) total += w->iov[i].iov_len;
  int rc = 0;
  switch (w->out_kind) {
  case OUT_FD: rc = deliver_fd(w); break;
  default: { /* OUT_SINK; OUT_MEM and OUT_REGIONS never have pending iovecs */
    int e = w->sink(w->sink_ctx, w->iov, w->iovcnt);
    if (e)
      rc = wksp_err_in(WKSP_ERR_FAIL, e > 0 ? e : EIO, "frame writer",
                    "sink failed on %zu bytes at offset %" PRIu64, total,
                    w->delivered);
    break;
  }
  }
  if (!rc) w->delivered += total;
  return rc;
}

/* Delivers everything pending; the gather buffer and iovec list are empty
 * afterwards (also after a failure, which fails the writer anyway). */
static int flush(wksp_frame_writer_t *w) {
  int rc = w->iovcnt ? deliver(w) : 0;
  w->iovcnt = 0;
  w->gather_used = 0;
  w->tail_in_gather = 0;
  return rc;
}

/* Memory mode: refuses bytes that would not fit the region. */
static int check_room(const wksp_frame_writer_t *w, size_t n) {
  if (w->out_kind != OUT_MEM || n <= w->mem_sz - w->off) return 0;
  return wksp_err_in(WKSP_ERR_FAIL, ENOSPC, "frame writer",
                  "memory region of %zu bytes is full: %s frame at offset %" PRIu64 " "
                  "needs %zu bytes at offset %" PRIu64,
                  w->mem_sz, frame_style_name(w->style), w->frame_off, n,
                  w->off);
}

/* Makes room for n contiguous gather bytes plus one iovec slot. */
static int gather_reserve(wksp_frame_writer_t *w, size_t n) {
  if (GATHER_SZ - w->gather_used >= n && (w->tail_in_gather || w->iovcnt < IOV_CAP)) return 0;
  return flush(w);
}

/* Appends the n bytes just placed at gather + gather_used. */
static void gather_commit(wksp_frame_writer_t *w, size_t n) {
  if (w->tail_in_gather) {
    w->iov[w->iovcnt - 1].iov_len += n;
  } else {
    w->iov[w->iovcnt++] = (struct iovec){ .iov_base = w->gather + w->gather_used, .iov_len = n };
    w->tail_in_gather = 1;
  }
  w->gather_used += n;
  w->off += n;
}

/* Memory mode never defers: bytes go straight to their place in the region
 * (after check_room), so the gather buffer and iovecs stay unused. */
static void mem_put(wksp_frame_writer_t *w, const uint8_t *src, size_t n) {
  if (n) memcpy(w->mem + w->off, src, n);
  w->off += n;
  w->delivered = w->off;
}

/* Regions mode: hands the current region over with its bytes and gets the
 * next one, which must hold at least `need` bytes. */
static int region_next(wksp_frame_writer_t *w, size_t need) {
  uint8_t *mem = NULL;
  size_t sz = 0;
  int e = w->region_fn(w->region_ctx, w->mem, (size_t)(w->off - w->mem_at), &mem, &sz);
  if (!e && (!mem || sz < need)) e = EINVAL;
  if (e)
    return wksp_err_in(e == ENOMEM ? WKSP_ERR_NOMEM : WKSP_ERR_FAIL, e, "frame writer",
                    "no output region of at least %zu bytes at offset %" PRIu64, need,
                    w->off);
  w->mem = mem;
  w->mem_sz = sz;
  w->mem_at = w->off;
  return 0;
}

static size_t region_room(const wksp_frame_writer_t *w) {
  return w->mem_sz - (size_t)(w->off - w->mem_at);
}

/* Regions mode: copies n bytes, moving to new regions as they fill up. */
static int region_put(wksp_frame_writer_t *w, const uint8_t *src, size_t n) {
  while (n) {
    if (!region_room(w)) {
      int rc = region_next(w, 1);
      if (rc) return rc;
    }
    size_t k = region_room(w) < n ? region_room(w) : n;
    memcpy(w->mem + (w->off - w->mem_at), src, k);
    w->off += k;
    w->delivered = w->off;
    src += k;
    n -= k;
  }
  return 0;
}

static int append_copy(wksp_frame_writer_t *w, const uint8_t *src, size_t n) {
  if (w->out_kind == OUT_REGIONS) return region_put(w, src, n);
  int rc = check_room(w, n);
  if (!rc && w->out_kind == OUT_MEM) {
    mem_put(w, src, n);
    return 0;
  }
  while (!rc && n) {
    rc = gather_reserve(w, 1);
    if (rc) break;
    size_t k = GATHER_SZ - w->gather_used;
    if (k > n) k = n;
    memcpy(w->gather + w->gather_used, src, k);
    gather_commit(w, k);
    src += k;
    n -= k;
  }
  return rc;
}

/* Small RAW data of the source file, read from it into the gather buffer:
 * a process that gave a source does not touch its mapping (the first
 * touch of a page can cost more than the copy). */
static int append_read(wksp_frame_writer_t *w, const uint8_t *src, size_t n) {
  uint64_t at = w->src_off + (uint64_t)(src - w->src_lo);
  int rc = check_room(w, n);
  while (!rc && n) {
    rc = gather_reserve(w, 1);
    if (rc) break;
    size_t k = GATHER_SZ - w->gather_used;
    if (k > n) k = n;
    long got = wksp_private_pread_full(w->src_fd, w->gather + w->gather_used, k, at);
    if (got != (long)k) return source_read_failed(w, got, at);
    gather_commit(w, k);
    at += k;
    n -= k;
  }
  return rc;
}

static int append_ref(wksp_frame_writer_t *w, const uint8_t *src, size_t n) {
  if (w->out_kind == OUT_REGIONS) return region_put(w, src, n);
  int rc = check_room(w, n);
  if (!rc && w->out_kind == OUT_MEM) {
    mem_put(w, src, n);
    return 0;
  }
  if (!rc && w->iovcnt == IOV_CAP) rc = flush(w);
  if (rc) return rc;
  w->iov[w->iovcnt++] = (struct iovec){ .iov_base = (void *)src, .iov_len = n };
  w->tail_in_gather = 0;
  w->off += n;
  return 0;
}

/* ---- LZ4 ---------------------------------------------------------------- */

/* The reference copies every chunk into the ring and compresses it there.
 * LZ4's output depends on that placement only through (a) the mode of each
 * call, prefix (the source directly follows the stream's dictionary in
 * memory) or external dictionary, (b) the stream's dictSize, and (c) the
 * bytes LZ4 reads as history, at most 65535 bytes back.  The reference's
 * dictionary always ends at the ring cursor, so its whole state is (cursor,
 * dictSize).
 *
 * A chunk that is not the first of its data buffer and does not make the
 * ring wrap is compressed by the reference in prefix mode, with history that
 * is exactly the stream's preceding bytes: the same bytes lie right before
 * the chunk in the caller's buffer (the previous chunk is a full 64 KiB one of
 * the same buffer).  Such a chunk is compressed in place: the stream's
 * dictionary pointer is moved to end at the chunk (dictSize unchanged), which
 * is the reference's state translated to the caller's memory.  Every other
 * chunk takes the reference path through the ring; before it, after in-place
 * chunks, the reference's view is restored: for the usual ring wrap, LZ4
 * trims the dictionary to the last 64 KiB, which are pointed to in the
 * caller's buffer (the wrap chunk compresses in external-dictionary mode);
 * otherwise the last 64 KiB are copied to where the reference's ring has them.
 * Output is byte-identical (tests compare with the reference vectors and with
 * the plain ring path on random buffer sequences); about 2 of 3 ring copies of
 * large data buffers are saved.  This reads and sets two fields of liblz4's
 * public stream struct (LZ4_stream_t.internal_donotuse, from lz4.h). */

static LZ4_stream_t_internal *lz4_state(wksp_frame_writer_t *w) { return &w->lz4->internal_donotuse; }

/* The in-place path needs the running liblz4 to be the one lz4.h describes;
 * otherwise every chunk takes the ring path. */
static int lz4_layout_known(void) {
  return LZ4_versionNumber() == LZ4_VERSION_NUMBER && LZ4_sizeofState() == (int)sizeof(LZ4_stream_t);
}

static const uint8_t *ptr_back(const uint8_t *p, size_t n) {
  return (const uint8_t *)((uintptr_t)p - n); /* may precede the buffer; LZ4 only compares it */
}

/* Makes the stream state the reference's again (dictionary in the ring)
 * before a ring-path chunk of usz bytes, after in-place chunks. */
static void lz4_back_to_ring(wksp_frame_writer_t *w, size_t usz) {
  LZ4_stream_t_internal *st = lz4_state(w);
  size_t dsz = st->dictSize, cur = w->cursor;
  w->hist_in_caller = 0;
  if (!dsz) return;
  if (FRAME_RING - cur < usz && usz < cur && cur - dsz < usz && cur - usz >= FRAME_HIST) {
    /* Ring wrap: the reference's dictionary [cur-dsz, cur) overlaps the
     * chunk's new place [0, usz), so LZ4 trims it to its last 64 KiB and
     * compresses in external-dictionary mode.  Same state, pointing at those
     * bytes in the caller's buffer. */
    st->dictSize = FRAME_HIST;
    st->dictionary = w->hist_end - FRAME_HIST;
    return;
  }
  size_t keep = dsz < FRAME_HIST ? dsz : FRAME_HIST;
  memcpy(w->ring + cur - keep, w->hist_end - keep, keep);
  st->dictionary = w->ring + cur - dsz;
}

/* A warm-up chunk: compressed into scratch memory for its effect on the
 * history only. */
static int lz4_warm_chunk(wksp_frame_writer_t *w, const uint8_t *in, size_t usz) {
  size_t bound = frame_csz_bound(usz);
  int csz = LZ4_compress_fast_continue(w->lz4, (const char *)in, (char *)w->scratch, (int)usz,
                                       (int)bound, 1);
  if (csz <= 0)
    return wksp_err_in(WKSP_ERR_FAIL, 0, "frame writer",
                    "LZ4 compression of a %zu-byte warm-up chunk failed (%d)", usz,
                    csz);
  w->cursor += usz;
  return 0;
}

/* A valid LZ4 block that holds src as one run of literals (no match): its
 * size depends only on n, and src's bytes appear verbatim at its end. */
static int lz4_literal_block(uint8_t *out, const uint8_t *src, size_t n) {
  uint8_t *o = out;
  *o++ = (uint8_t)((n < 15 ? n : 15) << 4);
  if (n >= 15) {
    size_t rem = n - 15;
    for (; rem >= 255; rem -= 255) *o++ = 255;
    *o++ = (uint8_t)rem;
  }
  memcpy(o, src, n);
  return (int)(o + n - out);
}

/* One chunk (usz <= FRAME_CHUNK).  first: the chunk starts its buffer. */
static int lz4_chunk(wksp_frame_writer_t *w, const uint8_t *src, size_t usz, int first) {
  const uint8_t *in;
  if (w->literal) {
    in = src; /* no history: the stream is not used (it restarts at the next open) */
  } else if (!first && FRAME_RING - w->cursor >= usz && !w->exact && lz4_layout_known()) {
    LZ4_stream_t_internal *st = lz4_state(w);
    st->dictionary = ptr_back(src, st->dictSize);
    in = src;
    w->hist_in_caller = 1;
    w->hist_end = src + usz;
  } else {
    if (w->hist_in_caller) lz4_back_to_ring(w, usz);
    if (FRAME_RING - w->cursor < usz) w->cursor = 0;
    memcpy(w->ring + w->cursor, src, usz);
    in = w->ring + w->cursor;
  }
  size_t bound = frame_csz_bound(usz);
  if (w->warming) return lz4_warm_chunk(w, in, usz);
  /* memory mode compresses straight into the region when the worst case
   * fits; regions mode always, moving to the next region first if needed */
  int rc = 0, out_direct = w->out_kind == OUT_REGIONS;
  if (out_direct && region_room(w) < FRAME_CHUNK_HDR + bound)
    rc = region_next(w, FRAME_CHUNK_HDR + FRAME_CSZ_MAX);
  if (w->out_kind == OUT_MEM) out_direct = FRAME_CHUNK_HDR + bound <= w->mem_sz - w->off;
  if (!rc && !out_direct) rc = gather_reserve(w, FRAME_CHUNK_HDR + bound);
  if (rc) return rc;
  uint8_t *out = out_direct ? w->mem + (w->off - w->mem_at) : w->gather + w->gather_used;
  int csz = w->literal ? lz4_literal_block(out + FRAME_CHUNK_HDR, in, usz)
                       : LZ4_compress_fast_continue(w->lz4, (const char *)in,
                                                    (char *)out + FRAME_CHUNK_HDR, (int)usz,
                                                    (int)bound, 1);
  if (csz <= 0)
    return wksp_err_in(WKSP_ERR_FAIL, 0, "frame writer",
                    "LZ4 frame at offset %" PRIu64 ": LZ4 compression of a %zu-byte chunk "
                    "at offset %" PRIu64 " failed (%d)",
                    w->frame_off, usz, w->off, csz);
  out[0] = (uint8_t)csz;
  out[1] = (uint8_t)(csz >> 8);
  out[2] = (uint8_t)(csz >> 16);
  w->cursor += usz;
  size_t n = FRAME_CHUNK_HDR + (size_t)csz;
  if (out_direct) {
    w->off += n;
    w->delivered = w->off;
    return 0;
  }
  rc = check_room(w, n);
  if (!rc && w->out_kind == OUT_MEM) { /* near the region's end: staged in the gather buffer */
    mem_put(w, out, n);
    return 0;
  }
  if (!rc) gather_commit(w, n);
  return rc;
}

static int lz4_buffer(wksp_frame_writer_t *w, const uint8_t *src, size_t sz, int is_meta,
                      int cont) {
  int rc = 0;
  for (int first = !cont; !rc && sz; first = 0) {
    size_t usz = sz < FRAME_CHUNK ? sz : FRAME_CHUNK;
    rc = lz4_chunk(w, src, usz, first || is_meta);
    src += usz;
    sz -= usz;
  }
  return rc;
}

static int lz4_alloc(wksp_frame_writer_t *w) {
  if (w->lz4) return 0;
  w->ring = malloc(FRAME_RING);
  w->lz4 = LZ4_createStream();
  if (w->ring && w->lz4) return 0;
  free(w->ring);
  LZ4_freeStream(w->lz4);
  w->ring = NULL;
  w->lz4 = NULL;
  return wksp_err_in(WKSP_ERR_NOMEM, errno, "wksp_frame_writer_open", "cannot allocate the LZ4 state");
}

/* ---- public ------------------------------------------------------------- */

static int writer_new(wksp_frame_writer_t **out, int kind, const char *fn) {
  wksp_frame_writer_t *w = calloc(1, sizeof *w);
  uint8_t *g = malloc(GATHER_SZ);
  if (!w || !g) {
    free(w);
    free(g);
    *out = NULL;
    return wksp_err_in(WKSP_ERR_NOMEM, errno, fn, "cannot allocate the writer");
  }
  w->out_kind = kind;
  w->fd = -1;
  w->src_fd = -1;
  w->gather = g;
  *out = w;
  return 0;
}

int wksp_frame_writer_init_sink(wksp_frame_writer_t **out, wksp_frame_sink_fn_t write_fn,
                                void *ctx) {
  if (!out) return wksp_err_in(WKSP_ERR_INVAL, 0, "wksp_frame_writer_init_sink", "NULL out");
  *out = NULL;
  if (!write_fn) return wksp_err_in(WKSP_ERR_INVAL, 0, "wksp_frame_writer_init_sink", "NULL write_fn");
  int rc = writer_new(out, OUT_SINK, "wksp_frame_writer_init_sink");
  if (!rc) {
    (*out)->sink = write_fn;
    (*out)->sink_ctx = ctx;
  }
  return rc;
}

int wksp_frame_writer_init_fd(wksp_frame_writer_t **out, int fd) {
  if (!out) return wksp_err_in(WKSP_ERR_INVAL, 0, "wksp_frame_writer_init_fd", "NULL out");
  *out = NULL;
  if (fd < 0) return wksp_err_in(WKSP_ERR_INVAL, 0, "wksp_frame_writer_init_fd", "bad fd %d", fd);
  int rc = writer_new(out, OUT_FD, "wksp_frame_writer_init_fd");
  if (!rc) (*out)->fd = fd;
  return rc;
}

void wksp_private_frame_writer_source(wksp_frame_writer_t *w, int fd, const void *mem, uint64_t sz, uint64_t off) {
  if (w->out_kind != OUT_FD || fd < 0) return;
  struct stat st;
  if (fstat(w->fd, &st) || !S_ISREG(st.st_mode)) {
    if (!w->bounce && !(w->bounce = malloc(SRC_BOUNCE))) return; /* no memory: from memory */
  }
  w->src_fd = fd;
  w->src_lo = mem;
  w->src_hi = (const uint8_t *)mem + sz;
  w->src_off = off;
}

int wksp_frame_writer_init_mem(wksp_frame_writer_t **out, void *mem, size_t sz) {
  if (!out) return wksp_err_in(WKSP_ERR_INVAL, 0, "wksp_frame_writer_init_mem", "NULL out");
  *out = NULL;
  if (!mem && sz)
    return wksp_err_in(WKSP_ERR_INVAL, 0, "wksp_frame_writer_init_mem", "NULL memory of %zu bytes", sz);
  int rc = writer_new(out, OUT_MEM, "wksp_frame_writer_init_mem");
  if (!rc) {
    (*out)->mem = mem;
    (*out)->mem_sz = sz;
  }
  return rc;
}

int wksp_private_frame_writer_init_regions(wksp_frame_writer_t **out,
                                           wksp_private_frame_region_fn_t fn, void *ctx) {
  *out = NULL;
  int rc = writer_new(out, OUT_REGIONS, "wksp_private_frame_writer_init_regions");
  if (!rc) {
    (*out)->region_fn = fn;
    (*out)->region_ctx = ctx;
  }
  return rc;
}

static void writer_free(wksp_frame_writer_t *w) {
  LZ4_freeStream(w->lz4);
  free(w->ring);
  free(w->gather);
  free(w->scratch);
  free(w->bounce);
  free(w);
}

int wksp_frame_writer_fini(wksp_frame_writer_t *w, uint64_t *sz) {
  if (!w) return 0;
  int rc = w->fail.err;
  if (rc) rc = writer_refuse_failed(w, "wksp_frame_writer_fini");
  else if (w->style)
    rc = wksp_err_in(WKSP_ERR_INVAL, 0, "wksp_frame_writer_fini",
                  "%s frame opened at offset %" PRIu64 " was never closed",
                  frame_style_name(w->style), w->frame_off);
  if (sz) *sz = w->delivered;
  writer_free(w);
  return rc;
}

void wksp_private_frame_writer_drop(wksp_frame_writer_t *w) {
  if (w) writer_free(w);
}

int wksp_frame_writer_open(wksp_frame_writer_t *w, int style, uint64_t *off) {
  if (!w) return wksp_err_in(WKSP_ERR_INVAL, 0, "wksp_frame_writer_open", "NULL writer");
  if (w->fail.err) return writer_refuse_failed(w, "wksp_frame_writer_open");
  if (w->style)
    return wksp_err_in(WKSP_ERR_INVAL, 0, "wksp_frame_writer_open",
                    "%s frame opened at offset %" PRIu64 " is still open",
                    frame_style_name(w->style), w->frame_off);
  if (!frame_style_ok(style))
    return wksp_err_in(WKSP_ERR_INVAL, 0, "wksp_frame_writer_open", "unknown frame style %d", style);
  if (style == WKSP_FRAME_LZ4) {
    int rc = lz4_alloc(w);
    if (rc) return writer_set_failed(w, rc);
    LZ4_resetStream_fast(w->lz4);
    w->cursor = 0;
    w->literal = 0;
    w->hist_in_caller = 0;
  }
  w->style = style == WKSP_FRAME_LZ4 ? WKSP_FRAME_LZ4 : WKSP_FRAME_RAW;
  w->frame_off = w->off;
  if (off) *off = w->off;
  return 0;
}

static int writer_append(wksp_frame_writer_t *w, const void *buf, size_t sz, int is_meta,
                         int cont, const char *fn) {
  int rc = writer_check_in_frame(w, fn);
  if (rc) return rc;
  if (!buf && sz) return wksp_err_in(WKSP_ERR_INVAL, 0, fn, "NULL buffer of %zu bytes", sz);
  if (is_meta && sz > WKSP_FRAME_META_MAX)
    return wksp_err_in(WKSP_ERR_INVAL, 0, fn, "meta buffer of %zu bytes exceeds %lu", sz,
                    WKSP_FRAME_META_MAX);
  if (w->style == WKSP_FRAME_LZ4) rc = lz4_buffer(w, buf, sz, is_meta, cont);
  else if ((is_meta || sz <= GATHER_COPY_MAX) && in_source(w, buf, sz)) rc = append_read(w, buf, sz);
  else if (is_meta || sz <= GATHER_COPY_MAX) rc = append_copy(w, buf, sz);
  else rc = append_ref(w, buf, sz);
  return rc ? writer_set_failed(w, rc) : 0;
}

int wksp_frame_writer_meta(wksp_frame_writer_t *w, const void *buf, size_t sz) {
  return writer_append(w, buf, sz, 1, 0, "wksp_frame_writer_meta");
}

int wksp_frame_writer_data(wksp_frame_writer_t *w, const void *buf, size_t sz) {
  return writer_append(w, buf, sz, 0, 0, "wksp_frame_writer_data");
}

int wksp_frame_writer_close(wksp_frame_writer_t *w, uint64_t *off) {
  int rc = writer_check_in_frame(w, "wksp_frame_writer_close");
  if (rc) return rc;
  rc = flush(w);
  if (rc) return writer_set_failed(w, rc);
  w->style = 0;
  if (off) *off = w->off;
  return 0;
}

uint64_t wksp_frame_writer_offset(const wksp_frame_writer_t *w) { return w ? w->off : 0; }

void wksp_private_frame_writer_exact(wksp_frame_writer_t *w, int exact) { w->exact = exact; }

/* ---- patchable frames (frame_private.h) ----------------------------------- */

/* The bytes before a literal-only block's copy of n bytes (lz4_literal_block). */
static size_t literal_hdr_sz(size_t n) { return 1 + (n >= 15 ? (n - 15) / 255 + 1 : 0); }

int wksp_private_frame_writer_open_patchable(wksp_frame_writer_t *w, int style, uint64_t *off) {
  int rc = wksp_frame_writer_open(w, style, off);
  if (!rc) w->literal = 1; /* the LZ4 history is not kept: the whole frame is literal */
  return rc;
}

int wksp_private_frame_writer_data_at(wksp_frame_writer_t *w, const void *buf, size_t sz,
                                      uint64_t *at) {
  const char *fn = "wksp_private_frame_writer_data_at";
  int rc = writer_check_in_frame(w, fn);
  if (rc) return rc;
  if (sz > FRAME_CHUNK || (w->style == WKSP_FRAME_LZ4 && !w->literal))
    return wksp_err_in(WKSP_ERR_INVAL, 0, fn, "%zu bytes in a%s frame (at most %d, patchable)",
                    sz, w->literal || w->style == WKSP_FRAME_RAW ? "" : " non-patchable",
                    FRAME_CHUNK);
  /* one chunk: its 3-byte size, the literal block's header, the bytes */
  uint64_t pos = w->off + (w->style == WKSP_FRAME_LZ4 ? FRAME_CHUNK_HDR + literal_hdr_sz(sz) : 0);
  rc = writer_append(w, buf, sz, 0, 0, fn);
  if (!rc) *at = pos;
  return rc;
}

/* ---- LZ4 history hand-over (frame_private.h) ------------------------------ */

int wksp_private_frame_writer_data_cont(wksp_frame_writer_t *w, const void *buf, size_t sz,
                                        int cont) {
  return writer_append(w, buf, sz, 0, cont, "wksp_private_frame_writer_data_cont");
}

int wksp_private_frame_writer_warm(wksp_frame_writer_t *w, const void *buf, size_t sz, int cont) {
  const char *fn = "wksp_private_frame_writer_warm";
  int rc = writer_check_in_frame(w, fn);
  if (rc) return rc;
  if (w->style != WKSP_FRAME_LZ4)
    return wksp_err_in(WKSP_ERR_INVAL, 0, fn, "the open frame is not an LZ4 frame");
  if (!w->scratch && !(w->scratch = malloc(FRAME_CSZ_MAX)))
    return writer_set_failed(w, wksp_err_in(WKSP_ERR_NOMEM, errno, fn, "scratch buffer"));
  w->warming = 1;
  rc = writer_append(w, buf, sz, 0, cont, fn);
  w->warming = 0;
  return rc;
}

void wksp_private_frame_writer_set_cursor(wksp_frame_writer_t *w, size_t cursor) {
  w->cursor = cursor < FRAME_RING ? cursor : FRAME_RING;
}

int wksp_private_frame_lz4_handover_ok(void) {
  return lz4_layout_known() && LZ4_HASH_SIZE_U32 == FRAME_LZ4_SLOTS;
}

int wksp_private_frame_writer_lz4_state(const wksp_frame_writer_t *w,
                                        wksp_private_frame_lz4_state_t *st) {
  if (!w || w->style != WKSP_FRAME_LZ4 || !w->lz4 || !wksp_private_frame_lz4_handover_ok())
    return -1;
  const LZ4_stream_t_internal *s = &w->lz4->internal_donotuse;
  if (s->dictCtx) return -1;
  memset(st, 0, sizeof *st);
  st->cursor = (uint32_t)w->cursor;
  st->dict_sz = s->dictSize;
  st->small_ok = s->dictSize < s->currentOffset;
  st->table_type = s->tableType;
  /* Distances at the next chunk's first byte; a slot this far back or
   * farther is rejected at every later position too.  Counting a slot LZ4
   * would reject for another reason (dictSmall) as usable only makes the
   * comparison stricter. */
  for (uint32_t i = 0; i < FRAME_LZ4_SLOTS; i++) {
    uint32_t d = s->currentOffset - s->hashTable[i];
    st->dist[i] = d >= 1 && d <= 65535 ? d : 0;
  }
  return 0;
}
