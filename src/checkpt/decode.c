/* The decoding engine that restore, verify, diff, check and print share:
 * every allocation's bytes of a scanned, random-access checkpoint (v1, v2
 * RAW or LZ4), decoded over threads, either straight to where a caller
 * wants them or in 64 KiB pieces into scratch memory. */
#include <inttypes.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "checkpt_private.h"
#include "../wksp/wksp_private.h"
#include "frame/frame_private.h"
#include "util/err.h"
#include <wksp/frame.h>

/* Files are read with pread(2), never mapped (a file shortened meanwhile is
 * an error, not SIGBUS): each thread has one frame reader, whose buffer it
 * reuses from cgroup frame to cgroup frame and fills up to the frame's end
 * in large reads (the page cache is copied into a buffer that stays in the
 * cache, instead of the file being faulted in page by page). */

typedef struct {
  const checkpt_input_t *in;
  const checkpt_scan_t *s;
  checkpt_dest_fn_t dest;
  checkpt_done_fn_t done;
  checkpt_piece_fn_t piece;
  void *ctx;
  checkpt_progress_t *m; /* bytes placed at dest; NULL = not reported */
  uint64_t *order;       /* cgroup frames in the order handed out (cgroups_run) */
  int dest_fd;           /* the bytes go to this file at dest_off + gaddr (-1: to dest) */
  uint64_t dest_off;
  /* per pool slot (pool.c), kept from task to task */
  wksp_frame_reader_t *rd[WKSP_CHECKPT_THREADS_MAX];
  uint8_t *scratch[WKSP_CHECKPT_THREADS_MAX]; /* WKSP_FRAME_CHUNK_MAX bytes */
  uint8_t *bounce[WKSP_CHECKPT_THREADS_MAX];  /* CHECKPT_COPY_BUF bytes (dest_fd) */
} data_job_t;

static void data_job_fini(data_job_t *j) {
  for (uint32_t i = 0; i < WKSP_CHECKPT_THREADS_MAX; i++) {
    wksp_frame_reader_fini(j->rd[i]);
    free(j->scratch[i]);
    free(j->bounce[i]);
  }
}

/* A frame-layer failure means bad bytes (a frame running past the end of
 * the file is truncation): CORRUPT; a read error (an errno) stays FAIL.
 * Which frame is part of the cause (the frame reader's own offsets are
 * those of the frame's reader). */
static int data_fail(const data_job_t *j, int rc, uint64_t off) {
  return wksp_err_where(wksp_err_short_is_corrupt(rc), "%s: cgroup frame at %" PRIu64, j->in->label, off);
}

/* The slot's scratch buffer for decoding without a destination. */
static int data_scratch(data_job_t *j, uint32_t slot, uint8_t **out) {
  if (!j->scratch[slot] && !(j->scratch[slot] = malloc(WKSP_FRAME_CHUNK_MAX)))
    return wksp_err(WKSP_ERR_NOMEM, 0, "verify buffer");
  *out = j->scratch[slot];
  return WKSP_SUCCESS;
}

/* The slot's buffer for bytes on their way to the file target (dest_fd). */
static int data_bounce(data_job_t *j, uint32_t slot, uint8_t **out) {
  if (!j->bounce[slot] && !(j->bounce[slot] = malloc(CHECKPT_COPY_BUF)))
    return wksp_err(WKSP_ERR_NOMEM, 0, "copy buffer");
  *out = j->bounce[slot];
  return WKSP_SUCCESS;
}

int wksp_private_checkpt_frame_to_file(wksp_frame_reader_t *r, int fd, uint64_t off0, uint8_t *buf,
                                       checkpt_progress_t *m, const wksp_part_t *parts, uint64_t n) {
  int rc = WKSP_SUCCESS;
  for (uint64_t k = 0; !rc && k < n; k++) {
    uint64_t sz = parts[k].gaddr_hi - parts[k].gaddr_lo, dst = off0 + parts[k].gaddr_lo;
    for (uint64_t at = 0; !rc && at < sz; at += CHECKPT_COPY_BUF) {
      uint64_t step = sz - at < CHECKPT_COPY_BUF ? sz - at : CHECKPT_COPY_BUF;
      rc = wksp_frame_reader_data(r, buf, step);
      if (!rc) rc = wksp_private_region_put(fd, dst + at, buf, step);
      if (!rc) wksp_private_checkpt_progress_add(m, step);
    }
  }
  return rc;
}

/* Verbatim bytes [at, at + n) of allocation p, at input offset src, to the
 * file target through the slot's buffer (n <= CHECKPT_COPY_BUF; v1 and RAW). */
static int data_copy(data_job_t *j, uint32_t slot, const wksp_part_t *p, uint64_t at, uint64_t n, uint64_t src) {
  uint8_t *b = NULL;
  int rc = data_bounce(j, slot, &b);
  if (!rc) rc = wksp_private_checkpt_input_read(j->in, b, n, src);
  if (!rc) rc = wksp_private_region_put(j->dest_fd, j->dest_off + p->gaddr_lo + at, b, n);
  return rc;
}

/* Opens cgroup frame g on the slot's reader and checks its commands against
 * the scan. */
static int data_open(data_job_t *j, uint64_t g, uint32_t slot) {
  const checkpt_scan_t *s = j->s;
  const wksp_checkpt_cgroup_t *cg = &s->info.cgroups[g];
  const wksp_part_t *p = s->file_parts + s->cg_first[g];
  int rc = j->rd[slot] ? WKSP_SUCCESS : wksp_private_checkpt_input_reader(j->in, &j->rd[slot]);
  wksp_frame_reader_t *r = j->rd[slot];
  if (!rc) rc = wksp_frame_reader_seek(r, cg->off);
  if (!rc) {
    wksp_private_frame_reader_span(r, cg->end);
    rc = wksp_frame_reader_open(r, s->hdr.frame_style, NULL);
  }
  uint8_t b[CHECKPT_CMD_SZ];
  for (uint64_t k = 0; !rc && k <= cg->alloc_cnt; k++) {
    rc = wksp_frame_reader_meta(r, b, sizeof b);
    checkpt_cmd_t c;
    wksp_private_checkpt_cmd_decode(&c, b);
    int same = k < cg->alloc_cnt ? c.tag == p[k].tag && c.a == p[k].gaddr_lo && c.b == p[k].gaddr_hi
                                 : checkpt_cmd_is_data(&c);
    if (!rc && !same) rc = wksp_err(WKSP_ERR_CORRUPT, 0, "commands changed since validation");
  }
  return rc;
}

/* Decodes cgroup frame g: its commands must be the scanned ones, the bytes
 * go where dest() says, and the frame must end where the next starts. */
static int data_cgroup(void *ctx, uint64_t g, uint32_t slot) {
  data_job_t *j = ctx;
  const checkpt_scan_t *s = j->s;
  const wksp_checkpt_cgroup_t *cg = &s->info.cgroups[g];
  const wksp_part_t *p = s->file_parts + s->cg_first[g];
  uint64_t end = 0;
  int rc = data_open(j, g, slot);
  wksp_frame_reader_t *r = j->rd[slot];
  /* No dest (verification, comparison): each allocation is decoded in 64
   * KiB pieces into scratch memory and handed to piece(), if any.  Pieces of
   * 64 KiB from a buffer's start are exactly the writer's LZ4 chunks, so
   * this decodes the same blocks. */
  uint8_t *scratch = NULL, *bounce = NULL;
  if (!rc && j->dest_fd >= 0) rc = data_bounce(j, slot, &bounce);
  else if (!rc && !j->dest) rc = data_scratch(j, slot, &scratch);
  if (!rc && bounce) rc = wksp_private_checkpt_frame_to_file(r, j->dest_fd, j->dest_off, bounce, j->m, p, cg->alloc_cnt);
  for (uint64_t k = 0; !rc && !bounce && k < cg->alloc_cnt; k++) {
    uint64_t sz = p[k].gaddr_hi - p[k].gaddr_lo;
    if (scratch) {
      for (uint64_t at = 0; !rc && at < sz; at += WKSP_FRAME_CHUNK_MAX) {
        uint64_t n = sz - at < WKSP_FRAME_CHUNK_MAX ? sz - at : WKSP_FRAME_CHUNK_MAX;
        rc = wksp_frame_reader_data(r, scratch, n);
        if (!rc && j->piece) rc = j->piece(j->ctx, &p[k], at, scratch, n, slot);
      }
      continue;
    }
    /* in progress steps: a multiple of the writer's LZ4 chunks, so the
     * same blocks are decoded however the reads are cut */
    uint8_t *d = j->dest(j->ctx, &p[k]);
    for (uint64_t at = 0; !rc && at < sz; at += CHECKPT_PROGRESS_STEP) {
      uint64_t n = sz - at < CHECKPT_PROGRESS_STEP ? sz - at : CHECKPT_PROGRESS_STEP;
      rc = wksp_frame_reader_data(r, d + at, n);
      if (!rc) wksp_private_checkpt_progress_add(j->m, n);
    }
    if (!rc && j->done) rc = j->done(j->ctx, &p[k], d);
  }
  if (!rc) rc = wksp_frame_reader_close(r, &end);
  if (!rc && end != cg->end)
    rc = wksp_err(WKSP_ERR_CORRUPT, 0, "frame ends at %" PRIu64 ", the next frame starts at %" PRIu64, end,
                  cg->end);
  if (!rc) return WKSP_SUCCESS;
  wksp_frame_reader_fini(r); /* failed or inside a frame: not reusable */
  j->rd[slot] = NULL;
  return data_fail(j, rc, cg->off);
}

/* v1: allocation k's bytes are verbatim in the file: read straight into
 * the destination, or in 64 KiB pieces. */
static int data_v1(void *ctx, uint64_t k, uint32_t slot) {
  data_job_t *j = ctx;
  const wksp_part_t *p = &j->s->file_parts[k];
  uint64_t src = j->s->v1_data_off[k], sz = p->gaddr_hi - p->gaddr_lo;
  int rc = WKSP_SUCCESS;
  if (j->dest_fd >= 0) {
    for (uint64_t at = 0; !rc && at < sz; at += CHECKPT_COPY_BUF) {
      uint64_t n = sz - at < CHECKPT_COPY_BUF ? sz - at : CHECKPT_COPY_BUF;
      rc = data_copy(j, slot, p, at, n, src + at);
      if (!rc) wksp_private_checkpt_progress_add(j->m, n);
    }
    return rc;
  }
  if (j->dest) {
    void *d = j->dest(j->ctx, p);
    rc = wksp_private_checkpt_input_read(j->in, d, sz, src);
    if (!rc) wksp_private_checkpt_progress_add(j->m, sz);
    return rc || !j->done ? rc : j->done(j->ctx, p, d);
  }
  uint8_t *b = NULL;
  if (j->piece) rc = data_scratch(j, slot, &b);
  for (uint64_t at = 0; !rc && j->piece && at < sz; at += WKSP_FRAME_CHUNK_MAX) {
    uint64_t n = sz - at < WKSP_FRAME_CHUNK_MAX ? sz - at : WKSP_FRAME_CHUNK_MAX;
    rc = wksp_private_checkpt_input_read(j->in, b, n, src + at);
    if (!rc) rc = j->piece(j->ctx, p, at, b, n, slot);
  }
  return rc;
}

/* ---- v2 RAW frames: the bytes in pieces ---------------------------------------------
 *
 * A RAW cgroup frame is its commands then its allocations' bytes verbatim,
 * so once the commands are checked every allocation's file offset is
 * known.  The data is then cut into pieces of RAW_PIECE bytes of the
 * concatenated allocations (a piece may span small allocations, and large
 * ones span many pieces), so that the threads share the work evenly
 * instead of by whole 60 MiB cgroups.  Each piece is read with pread(2)
 * straight into the target, or, to a file target (dest_fd), into the
 * thread's buffer and written from there with pwrite(2). */

#define RAW_PIECE (1ull << 20)
#define RAW_CMDS 1024 /* commands read at once */

typedef struct {
  data_job_t *j;
  uint64_t *src; /* file offset of file_parts[k]'s bytes */
  uint64_t *sum; /* bytes of file_parts[0..k), k in [0, cnt] */
  uint64_t cnt, total;
} raw_job_t;

/* Checks cgroup g's commands against the scan (read RAW_CMDS at a time). */
static int raw_cmds(const data_job_t *j, uint64_t g) {
  const checkpt_scan_t *s = j->s;
  const wksp_checkpt_cgroup_t *cg = &s->info.cgroups[g];
  const wksp_part_t *p = s->file_parts + s->cg_first[g];
  uint64_t n = cg->alloc_cnt;
  uint8_t b[RAW_CMDS * CHECKPT_CMD_SZ];
  for (uint64_t k0 = 0; k0 <= n; k0 += RAW_CMDS) {
    uint64_t m = n + 1 - k0 < RAW_CMDS ? n + 1 - k0 : RAW_CMDS;
    int rc = wksp_private_checkpt_input_read(j->in, b, m * CHECKPT_CMD_SZ, cg->off + k0 * CHECKPT_CMD_SZ);
    if (rc) return rc;
    for (uint64_t i = 0, k = k0; i < m; i++, k++) {
      checkpt_cmd_t c;
      wksp_private_checkpt_cmd_decode(&c, b + i * CHECKPT_CMD_SZ);
      int same = k < n ? c.tag == p[k].tag && c.a == p[k].gaddr_lo && c.b == p[k].gaddr_hi
                       : checkpt_cmd_is_data(&c);
      if (!same) return wksp_err(WKSP_ERR_CORRUPT, 0, "commands changed since validation");
    }
  }
  return WKSP_SUCCESS;
}

/* Checks every cgroup's commands against the scan and records where each
 * allocation's bytes are. */
static int raw_plan(raw_job_t *rj) {
  const data_job_t *j = rj->j;
  const checkpt_scan_t *s = j->s;
  uint64_t at = 0;
  for (uint64_t g = 0; g < s->info.cgroup_cnt; g++) {
    const wksp_checkpt_cgroup_t *cg = &s->info.cgroups[g];
    const wksp_part_t *p = s->file_parts + s->cg_first[g];
    uint64_t off = cg->off, n = cg->alloc_cnt;
    if (s->cg_first[g] != at || off > j->in->sz || (n + 1) > (j->in->sz - off) / CHECKPT_CMD_SZ)
      return data_fail(j, wksp_err(WKSP_ERR_CORRUPT, 0, "commands past the end"), cg->off);
    int rc = raw_cmds(j, g);
    if (rc) return data_fail(j, rc, cg->off);
    off += (n + 1) * CHECKPT_CMD_SZ;
    for (uint64_t k = 0; k < n; k++, at++) {
      rj->src[at] = off;
      rj->sum[at] = rj->total;
      off += p[k].gaddr_hi - p[k].gaddr_lo;
      rj->total += p[k].gaddr_hi - p[k].gaddr_lo;
    }
    if (off != cg->end)
      return data_fail(j,
                       wksp_err(WKSP_ERR_CORRUPT, 0,
                                "frame ends at %" PRIu64 ", the next frame starts at %" PRIu64, off, cg->end),
                       cg->off);
  }
  rj->sum[at] = rj->total;
  return WKSP_SUCCESS;
}

/* Reads piece i: bytes [i*RAW_PIECE, ...) of the concatenated allocations. */
static int raw_piece(void *ctx, uint64_t i, uint32_t slot) {
  const raw_job_t *rj = ctx;
  data_job_t *j = rj->j;
  uint64_t lo = i * RAW_PIECE, hi = lo + RAW_PIECE < rj->total ? lo + RAW_PIECE : rj->total;
  uint64_t a = 0, b = rj->cnt; /* the allocation holding byte lo: last k with sum[k] <= lo */
  while (b - a > 1) {
    uint64_t m = a + (b - a) / 2;
    if (rj->sum[m] <= lo) a = m;
    else b = m;
  }
  for (uint64_t k = a; lo < hi; k++) {
    const wksp_part_t *p = &j->s->file_parts[k];
    uint64_t in_k = lo - rj->sum[k], end = rj->sum[k + 1] < hi ? rj->sum[k + 1] : hi;
    int rc = j->dest_fd >= 0
                 ? data_copy(j, slot, p, in_k, end - lo, rj->src[k] + in_k)
                 : wksp_private_checkpt_input_read(j->in, (uint8_t *)j->dest(j->ctx, p) + in_k, end - lo,
                                                   rj->src[k] + in_k);
    if (rc)
      return wksp_err_where(rc, "allocation [%" PRIu64 ",%" PRIu64 ")", p->gaddr_lo, p->gaddr_hi);
    wksp_private_checkpt_progress_add(j->m, end - lo);
    lo = end;
  }
  return WKSP_SUCCESS;
}

static int raw_run(data_job_t *j, uint32_t threads) {
  uint64_t cnt = j->s->info.alloc_cnt;
  raw_job_t rj = {.j = j, .cnt = cnt};
  rj.src = malloc((cnt + 1) * sizeof *rj.src);
  rj.sum = malloc((cnt + 1) * sizeof *rj.sum);
  int rc = rj.src && rj.sum
               ? raw_plan(&rj)
               : wksp_err(WKSP_ERR_NOMEM, 0, "%s: offsets of %" PRIu64 " allocations", j->in->label, cnt);
  if (!rc)
    rc = wksp_private_checkpt_pool_run_watched(threads, (rj.total + RAW_PIECE - 1) / RAW_PIECE,
                                               raw_piece, &rj, j->m);
  free(rj.src);
  free(rj.sum);
  return rc;
}

/* ---- cgroup frames, largest first --------------------------------------------------
 *
 * A frame cannot be split between threads (its LZ4 history runs through
 * it), so with several threads the last frame handed out sets the tail:
 * in file order that may be a large one, started last, while the other
 * threads idle.  Handing frames out largest first leaves the small ones
 * for the end.  One thread keeps file order (and so reports the first
 * damaged frame of the file). */

static int by_size_desc(const void *a, const void *b, void *ctx) {
  const wksp_checkpt_cgroup_t *cg = ctx;
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  uint64_t sx = cg[x].end - cg[x].off, sy = cg[y].end - cg[y].off;
  return sx != sy ? (sx < sy ? 1 : -1) : (x > y) - (x < y);
}

static int data_cgroup_ordered(void *ctx, uint64_t i, uint32_t slot) {
  data_job_t *j = ctx;
  checkpt_hook(CHECKPT_HOOK_DECODE, &(checkpt_hook_t){.a = j->order[i], .b = i});
  return data_cgroup(ctx, j->order[i], slot);
}

static int cgroups_run(data_job_t *j, uint32_t threads) {
  const checkpt_scan_t *s = j->s;
  uint64_t n = s->info.cgroup_cnt;
  j->order = malloc((n ? n : 1) * sizeof *j->order);
  if (!j->order)
    return wksp_err(WKSP_ERR_NOMEM, 0, "%s: order of %" PRIu64 " frames", j->in->label, n);
  for (uint64_t g = 0; g < n; g++) j->order[g] = g;
  if (threads > 1) qsort_r(j->order, n, sizeof *j->order, by_size_desc, s->info.cgroups);
  int rc = wksp_private_checkpt_pool_run_watched(threads, n, data_cgroup_ordered, j, j->m);
  free(j->order);
  j->order = NULL;
  return rc;
}

_Static_assert(RAW_PIECE <= CHECKPT_COPY_BUF, "a RAW piece must fit a copy buffer");

/* v2 RAW files read with pread: copied by ranges (raw_run). */
static int data_raw(const checkpt_input_t *in, const checkpt_scan_t *s) {
  return s->info.pv.style == 2 && s->hdr.frame_style == WKSP_FRAME_RAW && in->rfd >= 0;
}

static int data_run_job(data_job_t *j, uint32_t threads) {
  const checkpt_scan_t *s = j->s;
  int rc;
  wksp_private_checkpt_input_sequential(j->in);
  if (data_raw(j->in, s) && (j->dest_fd >= 0 || (j->dest && !j->done)))
    rc = raw_run(j, threads);
  else if (s->info.pv.style == 1)
    rc = wksp_private_checkpt_pool_run_watched(threads, s->info.alloc_cnt, data_v1, j, j->m);
  else
    rc = cgroups_run(j, threads);
  data_job_fini(j);
  return wksp_private_checkpt_input_changed(j->in, rc);
}

int wksp_private_checkpt_data_run(const checkpt_input_t *in, const checkpt_scan_t *s, uint32_t threads,
                               checkpt_dest_fn_t dest, checkpt_done_fn_t done, void *ctx,
                               checkpt_progress_t *m) {
  data_job_t j = {.in = in, .s = s, .dest = dest, .done = done, .ctx = ctx, .m = m, .dest_fd = -1};
  return data_run_job(&j, threads);
}

int wksp_private_checkpt_data_run_file(const checkpt_input_t *in, const checkpt_scan_t *s, uint32_t threads, int fd,
                                       uint64_t off0, checkpt_progress_t *m) {
  if (fd < 0) return wksp_err(WKSP_ERR_INVAL, 0, "%s: no file to write to", in->label);
  data_job_t j = {.in = in, .s = s, .m = m, .dest_fd = fd, .dest_off = off0};
  return data_run_job(&j, threads);
}

int wksp_private_checkpt_data_pieces(const checkpt_input_t *in, const checkpt_scan_t *s, uint32_t threads,
                                  checkpt_piece_fn_t piece, void *ctx) {
  data_job_t j = {.in = in, .s = s, .piece = piece, .ctx = ctx, .dest_fd = -1};
  return data_run_job(&j, threads);
}

/* ---- check: decoding everything, and the digest of what was decoded --------------- */

static int file_piece(void *ctx, const wksp_part_t *p, uint64_t at, const uint8_t *b, uint64_t n, uint32_t slot) {
  (void)slot;
  atomic_fetch_add_explicit((_Atomic uint64_t *)ctx,
                            wksp_private_checkpt_digest_piece(p->gaddr_lo + at, b, n),
                            memory_order_relaxed);
  return WKSP_SUCCESS;
}

int wksp_private_checkpt_check_data(const checkpt_input_t *in, const checkpt_scan_t *s, uint32_t threads,
                                 int *seal) {
  int sealed = s->seal.state == WKSP_SEAL_OK;
  if (seal) *seal = s->seal.state;
  int rc = wksp_private_checkpt_seal_gate(&s->seal, 0, in->label);
  if (rc) return rc;
  _Atomic uint64_t sum;
  atomic_init(&sum, 0);
  rc = wksp_private_checkpt_data_pieces(in, s, threads, sealed ? file_piece : NULL, &sum);
  if (rc || !sealed) return rc;
  uint64_t want = s->seal.digest;
  uint64_t got = atomic_load(&sum) + wksp_private_checkpt_digest_records(s->info.parts, s->info.alloc_cnt);
  if (seal) *seal = got == want ? WKSP_SEAL_OK : WKSP_SEAL_BROKEN;
  return got == want ? WKSP_SUCCESS : wksp_private_checkpt_seal_mismatch(in->label, want, got);
}

