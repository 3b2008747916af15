/* Frame reader (docs/FORMAT.md 2).
 *
 * Input: a memory region (bytes used in place), an fd read through a
 * private buffer, or (private) a file of known size read with pread(2)
 * through that buffer; large RAW reads from an fd go straight into the
 * caller's buffer.  Every size taken from the input is bounded before use.
 *
 * The pread mode is how checkpoints are read from files: no mapping, so a
 * file shortened meanwhile gives an error instead of SIGBUS, each reader has
 * its own position (threads share the fd), and the bytes are copied from
 * the page cache into a buffer reused frame after frame instead of being
 * faulted in page by page.  Its read-ahead starts small after a seek (a
 * listing reads only a frame's first commands) and doubles up to the
 * buffer's size, or is told where the frame ends (span) and reads up to
 * there at once.
 *
 * LZ4 history: instead of mirroring the writer's ring (docs/FORMAT.md 2.5 says a
 * reader need not), the reader keeps the frame's last 64 KiB of decoded bytes
 * contiguous and decodes each block against them.  A read of at least one
 * chunk (64 KiB) decodes straight into the caller's buffer: its first chunk
 * uses the saved history as an external dictionary, every later chunk has the
 * previous full chunk right before it in the caller's buffer; at the end the
 * last 64 KiB are saved, since the caller may change its buffer after the
 * call.  Smaller reads decode into the history buffer and are copied out.
 * The history buffer grows on demand (16 KiB doubling to 64 KiB, then 256
 * KiB): most LZ4 frames (info, volumes, small cgroups) decode to a few KiB,
 * and a reader is made per frame or per call, so a fixed 256 KiB would
 * mostly be allocated for nothing. */
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

enum {
  RBUF_SZ = 256 * 1024,        /* fd read-ahead buffer; >= 3 + FRAME_CSZ_MAX */
  RA_MIN = 16 * 1024,          /* pread mode: first read-ahead after a seek */
  HIST_MIN = 16 * 1024,        /* history buffer's first size */
  HIST_SZ = 4 * FRAME_HIST     /* and its largest: slides back to 64 KiB when full */
};

struct wksp_frame_reader {
  const uint8_t *mem;          /* memory mode (fd < 0) */
  size_t mem_sz;
  int fd;                      /* fd mode */
  int seekable;
  int positional;              /* pread mode: input is fd bytes [fd_base, fd_base + mem_sz) */
  uint64_t fd_base;            /* fd position of checkpoint offset 0 */
  uint64_t src_sz;             /* pread mode: input bytes */
  size_t ra;                   /* pread mode: next read-ahead (RA_MIN..RBUF_SZ) */
  uint64_t ra_end;             /* pread mode: read-ahead stops here (span) */
  uint8_t *rbuf;               /* fd mode: bytes [rlo, rhi) are at offsets [off, ...) */
  size_t rlo, rhi;
  const uint8_t *pre;          /* fd mode: input bytes read before, consumed first; */
  size_t pre_len;              /* rbuf stays empty while pre_len > 0 */

  uint64_t off;                /* offset of the next byte to consume */
  int style;                   /* style of the open frame; 0 outside a frame */
  uint64_t frame_off;

  wksp_err_saved_t fail;       /* sticky failure (err 0 while healthy) */
  uint64_t short_at, short_end; /* the input ended at short_at, a read needed up to short_end */

  uint8_t *hist;               /* hist_cap bytes, allocated at the first LZ4 open */
  size_t hist_cap;             /* HIST_MIN..HIST_SZ */
  size_t hist_len;             /* the frame's decoded bytes end at hist + hist_len */
};

static int reader_set_failed(wksp_frame_reader_t *r, int rc) {
  return wksp_err_keep(&r->fail, rc);
}

/* The kept failure again, its cause unchanged (a user reads why the input
 * failed, not that a later call was refused); the refusal is context. */
static int reader_refuse_failed(const wksp_frame_reader_t *r, const char *fn) {
  return wksp_err_wrap(wksp_err_resume(&r->fail), "%s: reader failed earlier", fn);
}

static int truncated(wksp_frame_reader_t *r, size_t need, size_t have) {
  r->short_at = r->off + have;
  r->short_end = r->off + need;
  return wksp_err_in(WKSP_ERR_FAIL, 0, "frame reader",
                  "%s frame at offset %" PRIu64 " truncated at offset %" PRIu64 " "
                  "(needed %zu bytes, input ended after %zu)",
                  frame_style_name(r->style), r->frame_off,
                  r->off + have, need, have);
}

/* ---- input -------------------------------------------------------------- */

/* read() (pread at checkpoint offset `at` in pread mode) into p, up to n
 * bytes, retrying EINTR; returns bytes read (0 at EOF) or -1 with a
 * recorded error. */
static ssize_t read_some(const wksp_frame_reader_t *r, uint8_t *p, size_t n, uint64_t at) {
  for (;;) {
    ssize_t got = r->positional ? pread(r->fd, p, n, (off_t)(r->fd_base + at)) : read(r->fd, p, n);
    if (got >= 0) return got;
    if (errno != EINTR) {
      wksp_err_in(WKSP_ERR_FAIL, errno, "frame reader",
                  "%s frame at offset %" PRIu64 ": read at offset %" PRIu64 " failed", frame_style_name(r->style),
                  r->frame_off, at);
      return -1;
    }
  }
}

/* pread mode: the file ended at `at`, inside the input it had at init. */
static int shrunk(const wksp_frame_reader_t *r, uint64_t at) {
  return wksp_err_in(WKSP_ERR_FAIL, 0, "frame reader",
                  "%s frame at offset %" PRIu64 ": the input file ends at offset %" PRIu64 ", "
                  "%" PRIu64 " bytes short of its size when the reader was made (it shrank)",
                  frame_style_name(r->style), r->frame_off, at,
                  r->src_sz - at);
}

/* pread mode: how much to read at `at` when `need` more bytes must come and
 * `room` fit: the read-ahead, up to the span's end if one is set ahead. */
static size_t pread_ask(const wksp_frame_reader_t *r, size_t need, size_t room, uint64_t at) {
  uint64_t end = r->ra_end > at ? r->ra_end : r->src_sz;
  uint64_t ask = r->ra < end - at ? r->ra : end - at;
  if (ask > room) ask = room;
  return ask > need ? (size_t)ask : need;
}

/* Makes n (<= RBUF_SZ) bytes available contiguously at *p without
 * consuming them. */
static int peek(wksp_frame_reader_t *r, size_t n, const uint8_t **p) {
  if (r->fd < 0) {
    size_t have = r->mem_sz - (size_t)r->off;
    if (have < n) return truncated(r, n, have);
    *p = r->mem + r->off;
    return 0;
  }
  if (r->positional && r->src_sz - r->off < n) return truncated(r, n, r->src_sz - r->off);
  if (r->pre_len) {
    if (n <= r->pre_len) {
      *p = r->pre;
      return 0;
    }
    /* the piece spans the prefix's end: its remainder moves to the empty buffer */
    memcpy(r->rbuf, r->pre, r->pre_len);
    r->rlo = 0;
    r->rhi = r->pre_len;
    r->pre_len = 0;
  }
  if (r->rhi - r->rlo < n) {
    if (RBUF_SZ - r->rlo < n) { /* not enough room behind: move the tail to the front */
      memmove(r->rbuf, r->rbuf + r->rlo, r->rhi - r->rlo);
      r->rhi -= r->rlo;
      r->rlo = 0;
    }
    while (r->rhi - r->rlo < n) {
      uint64_t at = r->off + (r->rhi - r->rlo);
      size_t room = RBUF_SZ - r->rhi;
      size_t ask = r->positional ? pread_ask(r, n - (r->rhi - r->rlo), room, at) : room;
      ssize_t got = read_some(r, r->rbuf + r->rhi, ask, at);
      if (got < 0) return WKSP_ERR_FAIL;
      if (got == 0) return r->positional ? shrunk(r, at) : truncated(r, n, r->rhi - r->rlo);
      r->rhi += (size_t)got;
    }
    if (r->ra < RBUF_SZ) r->ra *= 2;
  }
  *p = r->rbuf + r->rlo;
  return 0;
}

static void consume(wksp_frame_reader_t *r, size_t n) {
  r->off += n;
  if (r->pre_len) {
    r->pre += n;
    r->pre_len -= n;
  } else if (r->fd >= 0) {
    r->rlo += n;
  }
}

/* Reads n raw bytes into dst: buffered bytes first, then large remainders
 * straight from the fd into dst. */
static int read_raw(wksp_frame_reader_t *r, uint8_t *dst, size_t n) {
  if (!n) return 0;
  if (r->fd < 0) {
    const uint8_t *p = NULL;
    int rc = peek(r, n, &p);
    if (rc) return rc;
    memcpy(dst, p, n);
    consume(r, n);
    return 0;
  }
  if (r->positional && r->src_sz - r->off < n) return truncated(r, n, r->src_sz - r->off);
  size_t k = r->pre_len < n ? r->pre_len : n;
  if (k) { /* the prefix first */
    memcpy(dst, r->pre, k);
    consume(r, k);
    dst += k;
    n -= k;
  }
  k = r->rhi - r->rlo < n ? r->rhi - r->rlo : n;
  memcpy(dst, r->rbuf + r->rlo, k);
  consume(r, k);
  dst += k;
  n -= k;
  if (n >= RBUF_SZ / 2) r->rlo = r->rhi = 0; /* empty; its old bytes are no longer before off */
  while (n >= RBUF_SZ / 2) {
    ssize_t got = read_some(r, dst, n, r->off);
    if (got < 0) return WKSP_ERR_FAIL;
    if (got == 0) return r->positional ? shrunk(r, r->off) : truncated(r, n, 0);
    r->off += (uint64_t)got;
    dst += got;
    n -= (size_t)got;
  }
  const uint8_t *p = NULL;
  int rc = n ? peek(r, n, &p) : 0;
  if (rc || !n) return rc;
  memcpy(dst, p, n);
  consume(r, n);
  return 0;
}

/* ---- LZ4 ---------------------------------------------------------------- */

/* Validates the next chunk's header and makes its block available: *blk,
 * *csz. */
static int chunk_get(wksp_frame_reader_t *r, size_t usz, const uint8_t **blk, size_t *csz) {
  const uint8_t *p = NULL;
  int rc = peek(r, FRAME_CHUNK_HDR, &p);
  if (rc) return rc;
  size_t n = frame_chunk_csz(p);
  size_t bound = frame_csz_bound(usz);
  if (!frame_chunk_csz_ok(n, usz))
    return wksp_err_in(WKSP_ERR_CORRUPT, 0, "frame reader",
                    "LZ4 frame at offset %" PRIu64 ": chunk at offset %" PRIu64 " has block size %zu, "
                    "expected 1..%zu for a %zu-byte chunk",
                    r->frame_off, r->off, n, bound, usz);
  rc = peek(r, FRAME_CHUNK_HDR + n, &p);
  if (rc) return rc;
  *blk = p + FRAME_CHUNK_HDR;
  *csz = n;
  return 0;
}

/* Decodes the next chunk (usz bytes) to dst with dictionary [dict, dict+dsz)
 * (adjacent to dst for prefix mode, elsewhere for external-dictionary mode). */
static int chunk_decode(wksp_frame_reader_t *r, uint8_t *dst, size_t usz, const uint8_t *dict,
                        size_t dsz) {
  const uint8_t *blk = NULL;
  size_t csz = 0;
  int rc = chunk_get(r, usz, &blk, &csz);
  if (rc) return rc;
  int got = LZ4_decompress_safe_usingDict((const char *)blk, (char *)dst, (int)csz, (int)usz,
                                          (const char *)dict, (int)dsz);
  if (got != (int)usz)
    return wksp_err_in(WKSP_ERR_CORRUPT, 0, "frame reader",
                    "LZ4 frame at offset %" PRIu64 ": chunk at offset %" PRIu64 ": %zu-byte LZ4 block %s "
                    "(expected exactly %zu bytes)",
                    r->frame_off, r->off, csz,
                    got < 0 ? "is not valid LZ4 for this frame's history" : "decodes to fewer bytes",
                    usz);
  consume(r, FRAME_CHUNK_HDR + csz);
  return 0;
}

static size_t hist_dict_sz(const wksp_frame_reader_t *r) {
  return r->hist_len < FRAME_HIST ? r->hist_len : FRAME_HIST;
}

/* Makes room for `need` (<= FRAME_CHUNK) more bytes after the history and
 * for at least min_cap (<= FRAME_HIST) bytes in all: grows the buffer
 * (keeping its bytes) up to HIST_SZ, then keeps only the last 64 KiB. */
static int hist_reserve(wksp_frame_reader_t *r, size_t need, size_t min_cap) {
  if (r->hist_cap - r->hist_len >= need && r->hist_cap >= min_cap) return 0;
  if (r->hist_cap < HIST_SZ) {
    /* Doubling up to one chunk of history; a frame that outgrows that is
     * a large one: straight to the largest size, one copy less. */
    size_t cap = 2 * r->hist_cap;
    while (cap < FRAME_HIST && (cap - r->hist_len < need || cap < min_cap)) cap *= 2;
    if (cap - r->hist_len < need || cap < min_cap || cap > FRAME_HIST) cap = HIST_SZ;
    uint8_t *h = realloc(r->hist, cap);
    if (!h)
      return wksp_err_in(WKSP_ERR_NOMEM, errno, "frame reader", "cannot grow the LZ4 history to %zu bytes",
                      cap);
    r->hist = h;
    r->hist_cap = cap;
  }
  if (r->hist_cap - r->hist_len < need) { /* keep only the last 64 KiB */
    size_t keep = hist_dict_sz(r);
    memmove(r->hist, r->hist + r->hist_len - keep, keep);
    r->hist_len = keep;
  }
  return 0;
}

/* A read of less than one chunk: decode into the history, copy out. */
static int lz4_read_small(wksp_frame_reader_t *r, uint8_t *dst, size_t sz) {
  int rc = hist_reserve(r, sz, 0);
  if (rc) return rc;
  size_t dsz = hist_dict_sz(r);
  uint8_t *at = r->hist + r->hist_len;
  rc = chunk_decode(r, at, sz, at - dsz, dsz);
  if (rc) return rc;
  memcpy(dst, at, sz);
  r->hist_len += sz;
  return 0;
}

/* A read of at least one chunk: decode straight into dst. */
static int lz4_read_direct(wksp_frame_reader_t *r, uint8_t *dst, size_t sz) {
  int rc = hist_reserve(r, 0, FRAME_HIST); /* room for the last 64 KiB at the end */
  if (rc) return rc;
  size_t dsz = hist_dict_sz(r);
  rc = chunk_decode(r, dst, FRAME_CHUNK, r->hist + r->hist_len - dsz, dsz);
  for (size_t pos = FRAME_CHUNK; !rc && pos < sz; pos += FRAME_CHUNK) {
    size_t usz = sz - pos < FRAME_CHUNK ? sz - pos : FRAME_CHUNK;
    rc = chunk_decode(r, dst + pos, usz, dst + pos - FRAME_HIST, FRAME_HIST);
  }
  if (rc) return rc;
  memcpy(r->hist, dst + sz - FRAME_HIST, FRAME_HIST);
  r->hist_len = FRAME_HIST;
  return 0;
}

static int lz4_read(wksp_frame_reader_t *r, uint8_t *dst, size_t sz) {
  if (sz >= FRAME_CHUNK) return lz4_read_direct(r, dst, sz);
  return sz ? lz4_read_small(r, dst, sz) : 0;
}

/* ---- public ------------------------------------------------------------- */

static int reader_new(wksp_frame_reader_t **out, int fd, const char *fn) {
  wksp_frame_reader_t *r = calloc(1, sizeof *r);
  uint8_t *b = fd >= 0 ? malloc(RBUF_SZ) : NULL;
  if (!r || (fd >= 0 && !b)) {
    free(r);
    free(b);
    return wksp_err_in(WKSP_ERR_NOMEM, errno, fn, "cannot allocate the reader");
  }
  r->fd = fd;
  r->rbuf = b;
  *out = r;
  return 0;
}

int wksp_frame_reader_init_fd(wksp_frame_reader_t **out, int fd) {
  if (!out) return wksp_err_in(WKSP_ERR_INVAL, 0, "wksp_frame_reader_init_fd", "NULL out");
  *out = NULL;
  if (fd < 0) return wksp_err_in(WKSP_ERR_INVAL, 0, "wksp_frame_reader_init_fd", "bad fd %d", fd);
  int rc = reader_new(out, fd, "wksp_frame_reader_init_fd");
  if (rc) return rc;
  off_t pos = lseek(fd, 0, SEEK_CUR);
  (*out)->seekable = pos >= 0;
  (*out)->fd_base = pos >= 0 ? (uint64_t)pos : 0;
  return 0;
}

int wksp_private_frame_reader_init_fd_prefix(wksp_frame_reader_t **out, int fd, const void *pre,
                                             size_t pre_sz) {
  int rc = wksp_frame_reader_init_fd(out, fd);
  if (!rc) {
    (*out)->pre = pre;
    (*out)->pre_len = pre_sz;
    (*out)->seekable = 0; /* the prefix is not in the file */
  }
  return rc;
}

int wksp_private_frame_reader_init_pread(wksp_frame_reader_t **out, int fd, uint64_t base,
                                         uint64_t sz) {
  if (!out) return wksp_err_in(WKSP_ERR_INVAL, 0, "wksp_private_frame_reader_init_pread", "NULL out");
  *out = NULL;
  if (fd < 0 || base > (uint64_t)INT64_MAX || sz > (uint64_t)INT64_MAX - base)
    return wksp_err_in(WKSP_ERR_INVAL, 0, "wksp_private_frame_reader_init_pread",
                    "bad fd %d or range of %" PRIu64 " bytes at %" PRIu64,
                    fd, sz, base);
  int rc = reader_new(out, fd, "wksp_private_frame_reader_init_pread");
  if (rc) return rc;
  (*out)->positional = 1;
  (*out)->seekable = 1;
  (*out)->fd_base = base;
  (*out)->src_sz = sz;
  (*out)->ra = RA_MIN;
  return 0;
}

void wksp_private_frame_reader_span(wksp_frame_reader_t *r, uint64_t end) {
  if (!r || !r->positional) return;
  r->ra_end = end;
  r->ra = RBUF_SZ;
}

void wksp_private_frame_reader_buffered(const wksp_frame_reader_t *r, const uint8_t **p,
                                        size_t *n) {
  *p = r->pre_len ? r->pre : r->rbuf + r->rlo;
  *n = r->pre_len ? r->pre_len : r->fd >= 0 ? r->rhi - r->rlo : 0;
}

int wksp_frame_reader_init_mem(wksp_frame_reader_t **out, const void *mem, size_t sz) {
  if (!out) return wksp_err_in(WKSP_ERR_INVAL, 0, "wksp_frame_reader_init_mem", "NULL out");
  *out = NULL;
  if (!mem && sz)
    return wksp_err_in(WKSP_ERR_INVAL, 0, "wksp_frame_reader_init_mem", "NULL memory of %zu bytes", sz);
  int rc = reader_new(out, -1, "wksp_frame_reader_init_mem");
  if (rc) return rc;
  static const uint8_t empty[1];
  (*out)->mem = mem ? mem : empty; /* no arithmetic on NULL */
  (*out)->mem_sz = sz;
  return 0;
}

int wksp_frame_reader_fini(wksp_frame_reader_t *r) {
  if (r) {
    free(r->hist);
    free(r->rbuf);
    free(r);
  }
  return 0;
}

static int seek_fd(wksp_frame_reader_t *r, uint64_t off) {
  uint64_t buf_start = r->off - r->rlo;
  if (off >= buf_start && off <= r->off + (r->rhi - r->rlo)) { /* inside the buffer */
    r->rlo = (size_t)(off - buf_start);
    r->off = off;
    return 0;
  }
  struct stat st;
  if (!fstat(r->fd, &st) && S_ISREG(st.st_mode) &&
      (uint64_t)st.st_size - r->fd_base < off)
    return wksp_err_in(WKSP_ERR_FAIL, 0, "wksp_frame_reader_seek",
                    "offset %" PRIu64 " is past the end of the checkpoint (%" PRIu64 " bytes)",
                    off, (uint64_t)st.st_size - r->fd_base);
  if (off > (uint64_t)INT64_MAX - r->fd_base ||
      lseek(r->fd, (off_t)(r->fd_base + off), SEEK_SET) < 0)
    return wksp_err_in(WKSP_ERR_FAIL, errno, "wksp_frame_reader_seek", "lseek to offset %" PRIu64 " failed",
                    off);
  r->rlo = r->rhi = 0;
  r->off = off;
  return 0;
}

/* pread mode: nothing to do but drop a buffer that does not hold off. */
static int seek_pread(wksp_frame_reader_t *r, uint64_t off) {
  if (off > r->src_sz)
    return wksp_err_in(WKSP_ERR_FAIL, 0, "wksp_frame_reader_seek",
                    "offset %" PRIu64 " is past the end of the input (%" PRIu64 " bytes)",
                    off, r->src_sz);
  uint64_t buf_start = r->off - r->rlo;
  if (off >= buf_start && off <= r->off + (r->rhi - r->rlo)) {
    r->rlo = (size_t)(off - buf_start);
  } else {
    r->rlo = r->rhi = 0;
    r->ra = RA_MIN;
  }
  r->ra_end = 0;
  r->off = off;
  return 0;
}

int wksp_frame_reader_seek(wksp_frame_reader_t *r, uint64_t off) {
  if (!r) return wksp_err_in(WKSP_ERR_INVAL, 0, "wksp_frame_reader_seek", "NULL reader");
  if (r->fail.err) return reader_refuse_failed(r, "wksp_frame_reader_seek");
  if (r->style)
    return wksp_err_in(WKSP_ERR_INVAL, 0, "wksp_frame_reader_seek",
                    "%s frame opened at offset %" PRIu64 " is still open",
                    frame_style_name(r->style), r->frame_off);
  if (r->fd >= 0 && !r->seekable)
    return wksp_err_in(WKSP_ERR_UNSUP, 0, "wksp_frame_reader_seek",
                    "fd %d is not seekable (pipe or socket)", r->fd);
  int rc = 0;
  if (r->positional) rc = seek_pread(r, off);
  else if (r->fd >= 0) rc = seek_fd(r, off);
  else if (off > r->mem_sz)
    rc = wksp_err_in(WKSP_ERR_FAIL, 0, "wksp_frame_reader_seek",
                  "offset %" PRIu64 " is past the end of the %zu-byte memory region",
                  off, r->mem_sz);
  else r->off = off;
  return rc ? reader_set_failed(r, rc) : 0;
}

int wksp_frame_reader_open(wksp_frame_reader_t *r, int style, uint64_t *off) {
  if (!r) return wksp_err_in(WKSP_ERR_INVAL, 0, "wksp_frame_reader_open", "NULL reader");
  if (r->fail.err) return reader_refuse_failed(r, "wksp_frame_reader_open");
  if (r->style)
    return wksp_err_in(WKSP_ERR_INVAL, 0, "wksp_frame_reader_open",
                    "%s frame opened at offset %" PRIu64 " is still open",
                    frame_style_name(r->style), r->frame_off);
  if (!frame_style_ok(style))
    return wksp_err_in(WKSP_ERR_INVAL, 0, "wksp_frame_reader_open", "unknown frame style %d", style);
  if (style == WKSP_FRAME_LZ4) {
    if (!r->hist) {
      if (!(r->hist = malloc(HIST_MIN)))
        return reader_set_failed(r, wksp_err_in(WKSP_ERR_NOMEM, errno, "wksp_frame_reader_open",
                                             "cannot allocate LZ4 history"));
      r->hist_cap = HIST_MIN;
    }
    r->hist_len = 0;
  }
  r->style = style == WKSP_FRAME_LZ4 ? WKSP_FRAME_LZ4 : WKSP_FRAME_RAW;
  r->frame_off = r->off;
  if (off) *off = r->off;
  return 0;
}

static int reader_read(wksp_frame_reader_t *r, void *buf, size_t sz, int is_meta, const char *fn) {
  if (!r) return wksp_err_in(WKSP_ERR_INVAL, 0, fn, "NULL reader");
  if (r->fail.err) return reader_refuse_failed(r, fn);
  if (!r->style)
    return wksp_err_in(WKSP_ERR_INVAL, 0, fn, "no frame is open (reader at offset %" PRIu64 ")",
                    r->off);
  if (!buf && sz) return wksp_err_in(WKSP_ERR_INVAL, 0, fn, "NULL buffer of %zu bytes", sz);
  if (is_meta && sz > WKSP_FRAME_META_MAX)
    return wksp_err_in(WKSP_ERR_INVAL, 0, fn, "meta buffer of %zu bytes exceeds %lu", sz,
                    WKSP_FRAME_META_MAX);
  int rc = r->style == WKSP_FRAME_LZ4 ? lz4_read(r, buf, sz) : read_raw(r, buf, sz);
  return rc ? reader_set_failed(r, rc) : 0;
}

int wksp_frame_reader_meta(wksp_frame_reader_t *r, void *buf, size_t sz) {
  return reader_read(r, buf, sz, 1, "wksp_frame_reader_meta");
}

int wksp_frame_reader_data(wksp_frame_reader_t *r, void *buf, size_t sz) {
  return reader_read(r, buf, sz, 0, "wksp_frame_reader_data");
}

int wksp_frame_reader_close(wksp_frame_reader_t *r, uint64_t *off) {
  if (!r) return wksp_err_in(WKSP_ERR_INVAL, 0, "wksp_frame_reader_close", "NULL reader");
  if (r->fail.err) return reader_refuse_failed(r, "wksp_frame_reader_close");
  if (!r->style)
    return wksp_err_in(WKSP_ERR_INVAL, 0, "wksp_frame_reader_close", "no frame is open (offset %" PRIu64 ")",
                    r->off);
  r->style = 0;
  if (off) *off = r->off;
  return 0;
}

int wksp_private_frame_reader_short(const wksp_frame_reader_t *r, uint64_t *at, uint64_t *end) {
  if (!r || !r->fail.err || !r->short_end) return 0;
  *at = r->short_at;
  *end = r->short_end;
  return 1;
}

uint64_t wksp_frame_reader_offset(const wksp_frame_reader_t *r) { return r ? r->off : 0; }
