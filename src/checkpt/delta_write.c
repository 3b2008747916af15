/* The delta writer (docs/FORMAT.md 13.4): wksp_checkpt_delta and _fd.
 *
 * BASE's table and piece hashes are loaded first (index.c), the target
 * opened (publish.c, as wksp_checkpt), the workspace locked and listed
 * (plan.c), each live piece matched with BASE's piece of the same address
 * and length (one merge walk), then the pieces are hashed in batches of 64
 * over the pool: a piece whose hash is BASE's is unchanged; any other is
 * copied, hashed again (the recorded hash is always that of the bytes
 * written) and compressed into its batch's buffer.  One pool runs every
 * batch with ordered commit (pool.c): whichever thread finds the next
 * batch done writes its frames, and a batch starts only while fewer than
 * 4 x threads wait, so the bytes do not depend on the thread count and
 * memory stays at 4 x threads batch buffers.  Windows with a barrier each
 * (the first version) left a thread idle at every window's end and
 * started a pool per 32 MiB.
 *
 * A process that does not map the workspace's bytes (the CLI) reads each
 * batch's pieces from the region's file into its thread's buffer instead
 * (wksp_private_bytes_route_with): a first touch of every page costs more
 * than the read on some machines (bench/FINDINGS.md, "The region file"),
 * and the buffer is already the private copy a changed piece needs. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "delta_private.h"
#include "frame/frame_private.h"
#include "util/err.h"
#include <wksp/frame.h>
#include "../wksp/wksp_private.h"


/* ---- the writer --------------------------------------------------------------------- */

enum { BATCH = 64 };
_Static_assert(BATCH <= 64, "a batch's pieces are bits of one word (batch_run's known, bits[b])");
#define FRAME_MAX (FRAME_CHUNK_HDR + frame_csz_bound(DELTA_PIECE))

typedef struct {
  uint8_t *buf;          /* BATCH * FRAME_MAX bytes once needed */
  uint64_t nfr;
  uint64_t fend[BATCH];  /* end of frame f in buf */
  uint64_t fpiece[BATCH];
  uint64_t sz;           /* bytes of the batch's pieces */
} batch_t;

typedef struct {
  wksp_t *w;
  const char *label, *base_path;
  int style;
  uint32_t threads;
  int verify;
  const wksp_checkpt_opts_t *o;
  delta_base_t base;
  checkpt_plan_t plan;
  uint64_t *pstart, *bmatch, *hash, *bits, *ftab;
  uint64_t P, C, csz, win;
  wksp_prefault_t pf; /* the batches' pre-faults: pagemap, and what the survey found */
  int src_fd;         /* >= 0: pieces read from the region's file (off0 + gaddr) */
  uint64_t src_off0;
  uint8_t *rbuf[WKSP_CHECKPT_THREADS_MAX]; /* per thread: a batch's pieces read from src_fd */
  checkpt_progress_t m;
  batch_t *bt;
  uint8_t *copy[WKSP_CHECKPT_THREADS_MAX];
  delta_hdr_t h;
  delta_out_t out;
  uint64_t digest;
} dw_t;

static void dw_fini(dw_t *d) {
  wksp_private_delta_base_fini(&d->base);
  wksp_private_checkpt_plan_fini(&d->plan);
  free(d->pstart);
  free(d->bmatch);
  free(d->hash);
  free(d->bits);
  free(d->ftab);
  for (uint64_t i = 0; d->bt && i < d->win; i++) free(d->bt[i].buf);
  free(d->bt);
  for (uint32_t t = 0; t < WKSP_CHECKPT_THREADS_MAX; t++) free(d->copy[t]), free(d->rbuf[t]);
  if (d->src_fd >= 0) close(d->src_fd);
}

/* Batch b's pieces [p0, p1) read from the region's file into the slot's
 * buffer, back to back (a run of one allocation's pieces in one pread). */
static int batch_read(dw_t *d, uint64_t p0, uint64_t p1, uint32_t slot) {
  if (!d->rbuf[slot] && !(d->rbuf[slot] = malloc(BATCH * DELTA_PIECE)))
    return wksp_err(WKSP_ERR_NOMEM, 0, "checkpt %s: read buffer", d->label);
  delta_cursor_t c = delta_cursor(d->plan.parts, d->pstart, d->plan.cnt, p0);
  uint64_t lo = 0, hi = 0, at = 0; /* the run [lo, hi) goes to rbuf + at */
  for (uint64_t p = p0; p <= p1; p++) {
    uint64_t a = 0, n = 0;
    if (p < p1) delta_cursor_at(&c, p, &a, &n);
    if (p < p1 && hi > lo && a == hi) { /* contiguous in the file too */
      hi += n;
      continue;
    }
    if (hi > lo) {
      int rc = wksp_private_region_get(d->src_fd, d->src_off0 + lo, d->rbuf[slot] + at, hi - lo);
      if (rc) return wksp_err_wrap(rc, "checkpt %s", d->label);
      at += hi - lo;
    }
    lo = a, hi = a + n;
  }
  return WKSP_SUCCESS;
}

/* Piece p's frame into the batch's buffer (a frame writer per batch with a
 * changed piece: every piece frame is one buffer, decodable alone). */
static int batch_frame(dw_t *d, batch_t *bt, wksp_frame_writer_t **fw, const uint8_t *b, uint64_t n,
                       uint64_t p) {
  int rc = WKSP_SUCCESS;
  if (!bt->buf && !(bt->buf = malloc(BATCH * FRAME_MAX)))
    return wksp_err(WKSP_ERR_NOMEM, 0, "checkpt %s: piece buffer", d->label);
  if (!*fw) rc = wksp_frame_writer_init_mem(fw, bt->buf, BATCH * FRAME_MAX);
  if (!rc) rc = wksp_frame_writer_open(*fw, d->style, NULL);
  if (!rc) rc = wksp_frame_writer_data(*fw, b, n);
  if (!rc) rc = wksp_frame_writer_close(*fw, &bt->fend[bt->nfr]);
  bt->fpiece[bt->nfr++] = p;
  return rc;
}

/* Pieces [p0, p1)'s pages pre-faulted by the thread about to hash them
 * (prefault.c; write_pieces surveyed the whole list), so that the asking
 * and populating run in parallel and overlap the hashing instead of
 * preceding it. */
static void batch_prefault(const dw_t *d, uint64_t p0, uint64_t p1) {
  if (d->pf.mode == WKSP_PREFAULT_SKIP || d->src_fd >= 0) return;
  wksp_part_t r[BATCH];
  uint64_t n = 0;
  delta_cursor_t c = delta_cursor(d->plan.parts, d->pstart, d->plan.cnt, p0);
  for (uint64_t p = p0; p < p1; p++) {
    uint64_t a, len;
    delta_cursor_at(&c, p, &a, &len);
    if (n && r[n - 1].gaddr_hi == a) r[n - 1].gaddr_hi = a + len; /* same allocation */
    else r[n++] = (wksp_part_t){.gaddr_lo = a, .gaddr_hi = a + len};
  }
  wksp_private_prefault_parts_with(d->w, &d->pf, r, n, 0);
}

/* Piece i of a batch hashes to h, as BASE's piece of the same place did. */
static inline int same_as_base(uint64_t known, const uint64_t *was, uint64_t i, uint64_t h) {
  return (known >> i & 1) && was[i] == h;
}

static int batch_run(void *ctx, uint64_t b, uint32_t slot) {
  dw_t *d = ctx;
  uint64_t i1 = BATCH * b + BATCH < d->P ? BATCH * b + BATCH : d->P;
  batch_t *bt = &d->bt[b % d->win];
  wksp_frame_writer_t *fw = NULL;
  uint64_t word = 0;
  int rc = WKSP_SUCCESS;
  bt->nfr = 0;
  bt->sz = 0;
  /* The plan's list came from the address list alone (its ranges checked);
   * the derived structures are verified here, by whichever thread takes
   * batch 0, while the other hashes (cold, for 32k records, 0.5 ms that
   * were serial before the hashing).  A failure ends the run: nothing is
   * published. */
  if (b == 0 && (rc = wksp_private_verify(d->w, "alloc_list"))) return wksp_err_wrap(rc, "checkpt %s", wksp_name(d->w));
  batch_prefault(d, BATCH * b, i1);
  int file = d->src_fd >= 0;
  if (!rc && file) rc = batch_read(d, BATCH * b, i1, slot);
  /* BASE's hash of each piece, gathered before any is hashed: read after
   * 64 KiB of hashing, each was a cache miss (1.4% of an unchanged delta's
   * CPU); gathered, the loads overlap.  Bit i of `known`: BASE has piece i. */
  uint64_t was[BATCH], known = 0;
  for (uint64_t p = BATCH * b; p < i1; p++) {
    uint64_t m = d->bmatch[p];
    was[p % BATCH] = m != UINT64_MAX ? d->base.hash[m] : 0;
    known |= (uint64_t)(m != UINT64_MAX) << (p % BATCH);
  }
  delta_cursor_t c = delta_cursor(d->plan.parts, d->pstart, d->plan.cnt, BATCH * b);
  for (uint64_t p = BATCH * b; !rc && p < i1; p++) {
    uint64_t a, n;
    delta_cursor_at(&c, p, &a, &n);
    const uint8_t *src = file ? d->rbuf[slot] + bt->sz : wksp_laddr(d->w, a);
    bt->sz += n;
    uint64_t h = wksp_private_checkpt_digest_piece(a, src, n);
    d->hash[p] = h;
    if (same_as_base(known, was, p % BATCH, h)) continue;
    if (!file) {
      /* Changed: hashed and compressed from one private copy, so that the
       * recorded hash is the hash of the bytes written whatever the
       * application does meanwhile (written back: unchanged after all).
       * Read from the file, src is such a copy already. */
      if (!d->copy[slot] && !(d->copy[slot] = malloc(DELTA_PIECE)))
        rc = wksp_err(WKSP_ERR_NOMEM, 0, "checkpt %s: piece buffer", d->label);
      if (rc) break;
      memcpy(d->copy[slot], src, n);
      src = d->copy[slot];
      d->hash[p] = h = wksp_private_checkpt_digest_piece(a, src, n);
      if (same_as_base(known, was, p % BATCH, h)) continue;
    }
    word |= 1ull << (p % 64);
    rc = batch_frame(d, bt, &fw, src, n, p);
  }
  d->bits[b] = word;
  int rc2 = wksp_frame_writer_fini(fw, NULL);
  return rc ? rc : rc2;
}

/* Batch b's frames, in piece order (the pool commits batches in order). */
static int batch_write(void *ctx, uint64_t b) {
  dw_t *d = ctx;
  batch_t *bt = &d->bt[b % d->win];
  int rc = WKSP_SUCCESS;
  delta_cursor_t c = delta_cursor(d->plan.parts, d->pstart, d->plan.cnt, BATCH * b);
  for (uint64_t f = 0, at = 0; !rc && f < bt->nfr; at = bt->fend[f++]) {
    uint64_t a, n;
    delta_cursor_at(&c, bt->fpiece[f], &a, &n);
    d->ftab[d->C++] = d->out.pos;
    d->csz += n;
    rc = wksp_private_delta_emit(&d->out, bt->buf + at, bt->fend[f] - at, DELTA_SUM_PIECE);
  }
  if (!rc) wksp_private_checkpt_progress_add(&d->m, bt->sz);
  return rc;
}

/* One pool over every batch; a ring of 4 x threads batch buffers between
 * the hashing and the (ordered) writing. */
static int write_pieces(dw_t *d) {
  uint64_t B = d->P ? (d->P + BATCH - 1) / BATCH : 1; /* batch 0 verifies, even with no pieces */
  d->win = 4ull * d->threads;
  d->bt = calloc(d->win, sizeof *d->bt);
  if (!d->bt) return wksp_err(WKSP_ERR_NOMEM, 0, "checkpt %s: batches", d->label);
  wksp_private_prefault_open(&d->pf);
  wksp_private_prefault_survey(&d->pf, d->w, d->plan.parts, d->plan.cnt);
  wksp_private_bytes_route_with(d->w, &d->pf, 1, &d->src_fd, &d->src_off0);
  wksp_private_checkpt_progress_init(&d->m, d->o->progress, d->o->progress_ctx, d->plan.data_sz);
  int rc = wksp_private_checkpt_pool_run_ordered(d->threads, B, d->win, batch_run, batch_write, d, &d->m);
  if (!rc) wksp_private_checkpt_progress_end(&d->m, d->plan.data_sz);
  wksp_private_checkpt_progress_fini(&d->m);
  wksp_private_prefault_close(&d->pf);
  return rc;
}

/* Lock held: the arrays of the live state. */
static int state_arrays(dw_t *d) {
  const checkpt_plan_t *pl = &d->plan;
  int rc = wksp_private_delta_pstart(pl->parts, pl->cnt, &d->pstart);
  if (rc) return rc;
  d->P = d->pstart[pl->cnt];
  rc = wksp_private_delta_match(pl->parts, d->pstart, pl->cnt, d->base.parts, d->base.pstart, d->base.cnt,
                                &d->bmatch);
  if (rc) return rc;
  d->hash = malloc((d->P + 1) * sizeof *d->hash);
  d->bits = calloc(delta_bitmap_words(d->P) + 1, sizeof *d->bits);
  d->ftab = malloc((d->P + 1) * sizeof *d->ftab);
  if (!d->hash || !d->bits || !d->ftab)
    return wksp_err(WKSP_ERR_NOMEM, 0, "checkpt %s: index of %" PRIu64 " pieces", d->label, d->P);
  return WKSP_SUCCESS;
}

static void hdr_fill(dw_t *d) {
  wksp_t *w = d->w;
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  const char *ui = d->o->uinfo ? d->o->uinfo : "";
  size_t hl = strlen(d->base_path), ul = strlen(ui);
  d->h = (delta_hdr_t){.magic = DELTA_MAGIC, .version = DELTA_VERSION, .piece_style = (uint32_t)d->style,
                       .piece_lg = DELTA_PIECE_LG, .flags = d->verify ? DELTA_FLAG_VERIFIED : 0,
                       .seed = wksp_seed(w), .part_max = wksp_part_max(w), .data_max = wksp_data_max(w),
                       .wallclock = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec,
                       .base_digest = d->base.digest, .alloc_cnt = d->plan.cnt, .piece_cnt = d->P,
                       .hint_sz = hl < DELTA_HINT_MAX ? hl : DELTA_HINT_MAX,
                       .uinfo_sz = ul < DELTA_UINFO_MAX ? ul : DELTA_UINFO_MAX};
  strncpy(d->h.name, wksp_name(w), CHECKPT_NAME_MAX - 1);
}

/* Verify: batch b of w's live pieces hashed again, into d->hash (read as
 * the writer read them: from the mapping or the region's file). */
static int rehash_batch(void *ctx, uint64_t b, uint32_t slot) {
  dw_t *d = ctx;
  uint64_t i1 = BATCH * b + BATCH < d->P ? BATCH * b + BATCH : d->P, at = 0;
  int rc = d->src_fd >= 0 ? batch_read(d, BATCH * b, i1, slot) : WKSP_SUCCESS;
  delta_cursor_t c = delta_cursor(d->plan.parts, d->pstart, d->plan.cnt, BATCH * b);
  for (uint64_t i = BATCH * b; !rc && i < i1; i++) {
    uint64_t a, n;
    delta_cursor_at(&c, i, &a, &n);
    const uint8_t *src = d->src_fd >= 0 ? d->rbuf[slot] + at : wksp_laddr(d->w, a);
    d->hash[i] = wksp_private_checkpt_digest_piece(a, src, n);
    at += n;
  }
  return rc;
}

/* Verify: the file read back as a reader does, and every piece of w hashed
 * again against the index written. */
static int verify_written(dw_t *d, int fd) {
  checkpt_hook(CHECKPT_HOOK_VERIFY, &(checkpt_hook_t){.w = d->w});
  checkpt_input_t in;
  delta_file_t df;
  if (lseek(fd, 0, SEEK_SET) < 0) return wksp_err(WKSP_ERR_FAIL, errno, "verify");
  int rc = wksp_private_checkpt_input_open(&in, NULL, fd, d->label, 0);
  if (rc) return rc;
  rc = wksp_private_delta_open(&df, &in);
  if (!rc) {
    rc = wksp_private_delta_pieces_check(&df, &in, d->threads);
    if (!rc) rc = wksp_private_checkpt_pool_run_slots(d->threads, (d->P + BATCH - 1) / BATCH, rehash_batch, d);
    for (uint64_t i = 0; !rc && i < d->P; i++) {
      if (d->hash[i] == df.hash[i]) continue;
      uint64_t a, n, k = 0;
      wksp_private_delta_piece_at(d->plan.parts, d->pstart, d->plan.cnt, i, &a, &n);
      while (d->plan.parts[k].gaddr_hi <= a) k++;
      const wksp_part_t *p = &d->plan.parts[k];
      rc = wksp_err(WKSP_ERR_AGAIN, 0,
                    "allocation [%" PRIu64 ",%" PRIu64 ") tag %" PRIu64 " changed at byte %" PRIu64
                    " while the delta was written (the "
                    "application wrote into it); nothing was published",
                    p->gaddr_lo, p->gaddr_hi, p->tag, a - p->gaddr_lo);
    }
    wksp_private_delta_fini(&df);
  }
  wksp_private_checkpt_input_fini(&in);
  return rc ? wksp_err_wrap(rc, "verify") : rc;
}

static int write_all(dw_t *d) {
  hdr_fill(d);
  int rc = wksp_private_delta_emit_head(&d->out, &d->h, d->base_path, d->o->uinfo ? d->o->uinfo : "", d->plan.parts);
  uint64_t pieces_off = d->out.pos, table_off = pieces_off - 24 * d->plan.cnt;
  if (!rc) rc = write_pieces(d);
  d->digest = wksp_private_delta_content_digest(d->plan.parts, d->plan.cnt, d->hash, d->P);
  if (!rc)
    rc = wksp_private_delta_emit_tail(&d->out, &d->h, d->hash, d->bits, d->ftab, d->C, d->csz, d->digest,
                                      pieces_off, table_off);
  return rc;
}

/* Locks, writes to fd, verifies, and with pub publishes (under the lock). */
static int delta_locked(dw_t *d, int fd, checkpt_pub_t *pub) {
  const wksp_checkpt_opts_t *o = d->o;
  wksp_t *w = d->w;
  int rc = wksp_private_checkpt_lock(w, o->lock_wait, o->lock_wait_ctx, -1, "checkpt", d->label);
  if (rc) return rc;
  rc = wksp_private_checkpt_plan_list(&d->plan, w);
  if (!rc && (wksp_part_max(w) != d->base.h.part_max || wksp_data_max(w) != d->base.h.data_max))
    rc = wksp_err(WKSP_ERR_INVAL, 0,
                  "workspace \"%s\" has part_max %" PRIu64 " data_max %" PRIu64
                  ", its base %s has part_max %" PRIu64 " data_max "
                  "%" PRIu64 ": a delta needs the same geometry",
                  wksp_name(w), wksp_part_max(w), wksp_data_max(w), d->base_path, d->base.h.part_max,
                  d->base.h.data_max);
  if (!rc) rc = state_arrays(d);
  d->out = (delta_out_t){.fd = fd, .label = d->label};
  if (!rc) rc = write_all(d);
  if (!rc && d->verify) rc = verify_written(d, fd);
  if (!rc && pub) rc = wksp_private_checkpt_pub_commit(pub);
  wksp_private_unlock(w);
  return rc;
}

static void stats_fill(const dw_t *d, wksp_delta_stats_t *s) {
  if (!s) return;
  memset(s, 0, sizeof *s);
  s->alloc_cnt = d->plan.cnt;
  s->piece_cnt = d->P;
  s->changed_cnt = d->C;
  s->changed_sz = d->csz;
  s->file_sz = d->out.pos;
  s->base_digest = d->base.digest;
  s->digest = d->digest;
  s->base_from = d->base.from;
  snprintf(s->base_note, sizeof s->base_note, "%s", d->base.note);
}

/* The options resolved once; then BASE loaded. */
static int dw_init(dw_t *d, wksp_t *w, const char *label, const char *base, const wksp_checkpt_opts_t *o) {
  static const wksp_checkpt_opts_t opts_default = {0};
  memset(d, 0, sizeof *d);
  d->pf.pagemap = -1;
  d->src_fd = -1;
  if (!o) o = &opts_default;
  d->o = o;
  d->w = w;
  d->label = label;
  d->base_path = base;
  if (o->style != WKSP_CHECKPT_STYLE_DEFAULT && o->style != WKSP_CHECKPT_STYLE_V2 && o->style != WKSP_CHECKPT_STYLE_V3)
    return wksp_err(WKSP_ERR_INVAL, 0, "checkpt %s: style %d is not 0, 2 or 3", label, o->style);
  if (o->mode > 07777) return wksp_err(WKSP_ERR_INVAL, 0, "checkpt %s: mode %o has bits outside 07777", label, o->mode);
  if (o->index)
    return wksp_err(WKSP_ERR_INVAL, 0, "checkpt %s: index: a delta carries its own index (no sidecar)", label);
  d->style = o->style == WKSP_CHECKPT_STYLE_V2 ? WKSP_FRAME_RAW : WKSP_FRAME_LZ4;
  d->threads = checkpt_threads(o->threads);
  d->verify = o->verify;
  int rc = wksp_private_delta_base_load(&d->base, base, d->threads, 0);
  return rc ? wksp_err_wrap(rc, "checkpt %s: base", label) : rc;
}

int wksp_checkpt_delta_fd(wksp_t *w, int fd, const char *label, const char *base,
                          const wksp_checkpt_opts_t *opts, wksp_delta_stats_t *stats) {
  if (!w || fd < 0 || !base)
    return wksp_err(WKSP_ERR_INVAL, 0, "wksp_checkpt_delta_fd: NULL workspace or base, or bad fd");
  if (opts && opts->verify)
    return wksp_err(WKSP_ERR_INVAL, 0, "wksp_checkpt_delta_fd: verify needs a path target");
  dw_t d;
  int rc = dw_init(&d, w, label ? label : "-", base, opts);
  if (!rc) rc = delta_locked(&d, fd, NULL);
  if (!rc) stats_fill(&d, stats);
  dw_fini(&d);
  return rc;
}

int wksp_checkpt_delta(wksp_t *w, const char *path, const char *base, const wksp_checkpt_opts_t *opts,
                       wksp_delta_stats_t *stats) {
  if (!w || !path || !base) return wksp_err(WKSP_ERR_INVAL, 0, "wksp_checkpt_delta: NULL workspace, path or base");
  dw_t d;
  int rc = dw_init(&d, w, path, base, opts);
  struct stat st;
  if (!rc && !stat(path, &st) && (uint64_t)st.st_dev == d.base.dev && (uint64_t)st.st_ino == d.base.ino)
    rc = wksp_err(WKSP_ERR_INVAL, 0, "checkpt %s: is its own base %s (the chain would lose its link)", path, base);
  checkpt_pub_t pub;
  if (!rc) rc = wksp_private_checkpt_pub_open(&pub, path, d.o);
  if (!rc) {
    rc = delta_locked(&d, pub.fd, pub.stream ? NULL : &pub);
    wksp_private_checkpt_pub_abort(&pub);
  }
  if (!rc) stats_fill(&d, stats);
  dw_fini(&d);
  return rc;
}
