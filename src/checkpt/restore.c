/* Restore (FORMAT.md 4, 5), transactional:
 *
 *   mapped input (files, spooled pipes): scan = validate the whole
 *   structure -> lock -> check the target can hold it -> reset -> decode the
 *   cgroup frames in parallel straight into the target -> replace the
 *   partition records -> unlock.  Until reset nothing has changed; a data
 *   error after it resets the target to empty and returns CORRUPT.
 *
 *   stream input (pipes): header and info first, then frame by frame,
 *   writing allocation bytes as they come (the first write resets the
 *   target); every later error resets the target to empty. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ckpt.h"
#include "util/err.h"
#include "wksp/frame.h"
#include "wksp/wksp_private.h"

static const char reset_note[] = "(target reset to empty)";

/* Appends the reset note to the current message and returns rc. */
static int after_reset(int rc) {
  char msg[1024];
  snprintf(msg, sizeof msg, "%s %s", wksp_errmsg(), reset_note);
  return wksp_err(rc, 0, "%s", msg);
}

/* Every range must lie in the target's data region (FORMAT.md 4.5).  The
 * FULL message names the first range that does not and a geometry that
 * works: the lowest address bounds part_max from above, the highest one
 * bounds data_max from below. */
static int fit_check(wksp_t *w, const wksp_part_t *parts, uint64_t cnt, const char *what) {
  if (!cnt) return WKSP_SUCCESS;
  uint64_t lo = wksp_gaddr_lo(w), hi = wksp_gaddr_hi(w);
  uint64_t min_lo = parts[0].gaddr_lo, max_hi = parts[cnt - 1].gaddr_hi;
  if (lo <= min_lo && max_hi <= hi) return WKSP_SUCCESS;
  uint64_t pmax = (min_lo - WKSP_HDR_SZ) / WKSP_PART_SZ; /* largest part_max keeping min_lo */
  uint64_t p = wksp_part_max(w) < pmax ? wksp_part_max(w) : pmax;
  uint64_t dmin = max_hi - (WKSP_HDR_SZ + WKSP_PART_SZ * p);
  const wksp_part_t *bad = min_lo < lo ? &parts[0] : &parts[cnt - 1];
  return wksp_err(WKSP_ERR_FULL, 0,
                  "%s: allocation [%llu,%llu) lies outside the target's data region [%llu,%llu) "
                  "(part_max %llu, data_max %llu); a target with part_max <= %llu and data_max >= "
                  "%llu - 64*part_max would hold every range, e.g. part_max %llu data_max %llu",
                  what, (unsigned long long)bad->gaddr_lo, (unsigned long long)bad->gaddr_hi,
                  (unsigned long long)lo, (unsigned long long)hi,
                  (unsigned long long)wksp_part_max(w), (unsigned long long)wksp_data_max(w),
                  (unsigned long long)pmax, (unsigned long long)(max_hi - WKSP_HDR_SZ),
                  (unsigned long long)p, (unsigned long long)dmin);
}

/* ---- data phase of the mapped path --------------------------------------------- */

/* Decodes cgroup frame g: its commands must be the scanned ones, the bytes
 * go where dest() says, and the frame must end where the next starts. */
typedef struct {
  const ckpt_input_t *in;
  const ckpt_scan_t *s;
  ckpt_dest_fn_t dest;
  ckpt_done_fn_t done;
  void *ctx;
} data_job_t;

static int data_fail(const data_job_t *j, int rc, uint64_t off) {
  if (rc == WKSP_ERR_FAIL) rc = WKSP_ERR_CORRUPT; /* truncation inside a mapped file */
  return wksp_err_wrap(rc, "%s: cgroup frame at %llu", j->in->label, (unsigned long long)off);
}

static int data_cgroup(void *ctx, uint64_t g) {
  const data_job_t *j = ctx;
  const ckpt_scan_t *s = j->s;
  const wksp_checkpt_cgroup_t *cg = &s->info.cgroups[g];
  const wksp_part_t *p = s->file_parts + s->cg_first[g];
  wksp_private_ckpt_input_populate(j->in, cg->off, cg->end - cg->off);
  wksp_frame_reader_t *r = NULL;
  uint8_t b[CKPT_CMD_SZ];
  uint64_t end = 0;
  int rc = wksp_frame_reader_init_mem(&r, j->in->mem, j->in->sz);
  if (!rc) rc = wksp_frame_reader_seek(r, cg->off);
  if (!rc) rc = wksp_frame_reader_open(r, s->hdr.frame_style, NULL);
  for (uint64_t k = 0; !rc && k <= cg->alloc_cnt; k++) {
    rc = wksp_frame_reader_meta(r, b, sizeof b);
    ckpt_cmd_t c;
    wksp_private_ckpt_cmd_decode(&c, b);
    int same = k < cg->alloc_cnt ? c.tag == p[k].tag && c.a == p[k].gaddr_lo && c.b == p[k].gaddr_hi
                                 : ckpt_cmd_is_data(&c);
    if (!rc && !same) rc = wksp_err(WKSP_ERR_CORRUPT, 0, "commands changed since validation");
  }
  /* Verification only (no dest): each allocation is decoded in 64 KiB
   * pieces into scratch memory.  Pieces of 64 KiB from a buffer's start are
   * exactly the writer's LZ4 chunks, so this decodes the same blocks. */
  uint8_t *scratch = NULL;
  if (!rc && !j->dest && !(scratch = malloc(WKSP_FRAME_CHUNK_MAX)))
    rc = wksp_err(WKSP_ERR_NOMEM, 0, "verify buffer");
  for (uint64_t k = 0; !rc && k < cg->alloc_cnt; k++) {
    uint64_t sz = p[k].gaddr_hi - p[k].gaddr_lo;
    if (scratch) {
      for (uint64_t at = 0; !rc && at < sz; at += WKSP_FRAME_CHUNK_MAX)
        rc = wksp_frame_reader_data(
            r, scratch, sz - at < WKSP_FRAME_CHUNK_MAX ? sz - at : WKSP_FRAME_CHUNK_MAX);
      continue;
    }
    void *d = j->dest(j->ctx, &p[k]);
    rc = wksp_frame_reader_data(r, d, sz);
    if (!rc && j->done) rc = j->done(j->ctx, &p[k], d);
  }
  free(scratch);
  if (!rc) rc = wksp_frame_reader_close(r, &end);
  if (!rc && end != cg->end)
    rc = wksp_err(WKSP_ERR_CORRUPT, 0, "frame ends at %llu, the next frame starts at %llu",
                  (unsigned long long)end, (unsigned long long)cg->end);
  wksp_frame_reader_fini(r);
  return rc ? data_fail(j, rc, cg->off) : WKSP_SUCCESS;
}

/* v1: allocation k's bytes are verbatim in the file. */
static int data_v1(void *ctx, uint64_t k) {
  const data_job_t *j = ctx;
  const wksp_part_t *p = &j->s->file_parts[k];
  void *d = j->dest(j->ctx, p);
  const uint8_t *src = j->in->mem + j->s->v1_data_off[k];
  if (d != src) memcpy(d, src, p->gaddr_hi - p->gaddr_lo);
  return j->done ? j->done(j->ctx, p, d) : WKSP_SUCCESS;
}

int wksp_private_ckpt_data_run(const ckpt_input_t *in, const ckpt_scan_t *s, uint32_t threads,
                               ckpt_dest_fn_t dest, ckpt_done_fn_t done, void *ctx) {
  data_job_t j = {.in = in, .s = s, .dest = dest, .done = done, .ctx = ctx};
  if (s->info.pv.style == 1)
    return wksp_private_ckpt_pool_run(threads, s->info.alloc_cnt, data_v1, &j);
  return wksp_private_ckpt_pool_run(threads, s->info.cgroup_cnt, data_cgroup, &j);
}

static void *dest_wksp(void *ctx, const wksp_part_t *p) { return wksp_laddr(ctx, p->gaddr_lo); }

/* Lock held, structure validated: everything from the target check on. */
static int restore_locked(wksp_t *w, const ckpt_input_t *in, const ckpt_scan_t *s,
                          const wksp_restore_opts_t *o) {
  const wksp_part_t *parts = s->info.parts;
  uint64_t cnt = s->info.alloc_cnt;
  int rc = fit_check(w, parts, cnt, in->label);
  if (!rc) rc = wksp_private_replace_check(w, parts, cnt);
  if (rc) return wksp_err_wrap(rc, "restore %s", in->label);
  uint32_t threads = o->threads ? o->threads : 1;
  /* All or nothing: decode every LZ4 frame once before changing anything
   * (RAW data has nothing to decode, its structure is all there is). */
  if (o->verify_first && s->info.pv.style == 2 && s->hdr.frame_style == WKSP_FRAME_LZ4) {
    rc = wksp_private_ckpt_data_run(in, s, threads, NULL, NULL, NULL);
    if (rc) return wksp_err_wrap(rc, "restore %s: verify", in->label);
  }
  rc = wksp_private_reset(w, o->seed);
  if (rc) return wksp_err_wrap(rc, "restore %s: reset", in->label);
  rc = wksp_private_ckpt_data_run(in, s, threads, dest_wksp, NULL, w);
  if (!rc) rc = wksp_private_replace(w, parts, cnt, o->seed);
  if (rc) {
    wksp_private_reset(w, o->seed); /* already empty unless replace half-failed */
    return after_reset(rc == WKSP_ERR_FAIL ? WKSP_ERR_CORRUPT : rc);
  }
  if (o->progress) o->progress(s->info.alloc_sz, s->info.alloc_sz, o->progress_ctx);
  return WKSP_SUCCESS;
}

static int restore_mem(wksp_t *w, const ckpt_input_t *in, const wksp_restore_opts_t *o) {
  ckpt_scan_t s;
  int rc = wksp_private_ckpt_scan(&s, in);
  if (rc) return rc;
  rc = wksp_private_lock(w);
  if (rc) {
    wksp_err_wrap(rc, "restore %s: lock", in->label);
  } else {
    rc = restore_locked(w, in, &s, o);
    wksp_private_unlock(w);
  }
  wksp_private_ckpt_scan_fini(&s);
  return rc;
}

/* ---- stream path ---------------------------------------------------------------- */

typedef struct {
  wksp_t *w;
  wksp_frame_reader_t *r;
  const char *what;
  const wksp_restore_opts_t *o;
  ckpt_hdr_t hdr;
  int touched;        /* the target was reset */
  wksp_part_t *parts; /* in file order */
  uint64_t cnt, cap;
  uint64_t *vol_off, *vol_cnt; /* this volume's cgroup offsets / counts */
  uint64_t vol_n;
  uint64_t cgroups, volumes, done_sz;
  uint64_t base_off; /* checkpoint offset of the reader's offset 0 */
  int pipelined;     /* st->r reads a window of the stream (pipeline.c) */
  int short_read;    /* pipelined: the window ended before the frame */
  struct pipe_state *pipe;
} stream_t;

#define STREAM_BASE CKPT_HDR_SZ /* the sequential reader starts after the header */

static int st_fail(stream_t *st, int rc, const char *where) {
  if (rc == WKSP_ERR_FAIL && wksp_errno() == 0) {
    rc = WKSP_ERR_CORRUPT; /* truncated */
    st->short_read = 1;
  }
  return wksp_err_wrap(rc, "%s: %s", st->what, where);
}

static int st_cmd(stream_t *st, ckpt_cmd_t *c) {
  uint8_t b[CKPT_CMD_SZ];
  int rc = wksp_frame_reader_meta(st->r, b, sizeof b);
  if (rc) return st_fail(st, rc, "command");
  wksp_private_ckpt_cmd_decode(c, b);
  return WKSP_SUCCESS;
}

static int st_push(stream_t *st, const ckpt_cmd_t *c) {
  if (st->cnt == st->cap) {
    uint64_t n = st->cap ? 2 * st->cap : 256;
    wksp_part_t *p = realloc(st->parts, n * sizeof *p);
    if (!p) return wksp_err(WKSP_ERR_NOMEM, 0, "%s: allocation list", st->what);
    st->parts = p;
    st->cap = n;
  }
  st->parts[st->cnt++] = (wksp_part_t){.gaddr_lo = c->a, .gaddr_hi = c->b, .tag = c->tag};
  return WKSP_SUCCESS;
}

/* The allocation list of a cgroup frame whose first command c was read:
 * checked and appended to st->parts, up to and including the data
 * command. */
static int st_metas(stream_t *st, ckpt_cmd_t c, uint64_t off) {
  uint64_t src_lo = ckpt_gaddr_lo(st->hdr.part_max), src_hi = src_lo + st->hdr.data_max;
  uint64_t tlo = wksp_gaddr_lo(st->w), thi = wksp_gaddr_hi(st->w), prev_hi = 0;
  int rc = WKSP_SUCCESS;
  if (st->vol_n == CKPT_CGROUP_MAX)
    return wksp_err(WKSP_ERR_CORRUPT, 0, "%s: more than %llu cgroup frames in a volume", st->what,
                    (unsigned long long)CKPT_CGROUP_MAX);
  while (!ckpt_cmd_is_data(&c)) {
    rc = wksp_private_ckpt_meta_check(&c, src_lo, src_hi, off, st->what);
    if (rc) return rc;
    if (c.a < prev_hi)
      return wksp_err(WKSP_ERR_CORRUPT, 0, "%s: cgroup frame at %llu: allocations out of order",
                      st->what, (unsigned long long)off);
    if (c.a < tlo || c.b > thi)
      return fit_check(st->w, &(wksp_part_t){c.a, c.b, c.tag}, 1, st->what);
    if (st->cnt >= wksp_part_max(st->w))
      return wksp_err(WKSP_ERR_FULL, 0, "%s: more allocations than the target's part_max %llu",
                      st->what, (unsigned long long)wksp_part_max(st->w));
    prev_hi = c.b;
    rc = st_push(st, &c);
    if (!rc) rc = st_cmd(st, &c);
    if (rc) return rc;
  }
  return WKSP_SUCCESS;
}

/* The first write into the target resets it. */
static int st_touch(stream_t *st) {
  if (st->touched) return WKSP_SUCCESS;
  int rc = wksp_private_reset(st->w, st->o->seed);
  if (rc) return wksp_err_wrap(rc, "%s: reset", st->what);
  st->touched = 1;
  return WKSP_SUCCESS;
}

/* Records a finished cgroup frame of this volume. */
static void st_cgroup_done(stream_t *st, uint64_t off, uint64_t first) {
  st->vol_off[st->vol_n] = off;
  st->vol_cnt[st->vol_n] = st->cnt - first;
  st->vol_n++;
  st->cgroups++;
}

/* A cgroup frame whose first command c was already read. */
static int st_cgroup(stream_t *st, ckpt_cmd_t c, uint64_t off) {
  uint64_t first = st->cnt;
  int rc = st_metas(st, c, off);
  if (!rc) rc = st_touch(st);
  if (rc) return rc;
  for (uint64_t k = first; k < st->cnt; k++) {
    const wksp_part_t *p = &st->parts[k];
    rc = wksp_frame_reader_data(st->r, wksp_laddr(st->w, p->gaddr_lo), p->gaddr_hi - p->gaddr_lo);
    if (rc) return st_fail(st, rc, "allocation bytes");
    st->done_sz += p->gaddr_hi - p->gaddr_lo;
  }
  rc = wksp_frame_reader_close(st->r, NULL);
  if (rc) return st_fail(st, rc, "close");
  st_cgroup_done(st, off, first);
  if (st->o->progress) st->o->progress(st->done_sz, 0, st->o->progress_ctx);
  return WKSP_SUCCESS;
}

static int st_appendix(stream_t *st, const ckpt_cmd_t *c, uint64_t off, uint64_t *prev_app) {
  if (c->b != *prev_app)
    return wksp_err(WKSP_ERR_CORRUPT, 0, "%s: appendix at %llu links to %llu, expected %llu",
                    st->what, (unsigned long long)off, (unsigned long long)c->b,
                    (unsigned long long)*prev_app);
  uint64_t n = st->vol_n;
  if (c->a != n)
    return wksp_err(WKSP_ERR_CORRUPT, 0, "%s: appendix at %llu counts %llu cgroups, saw %llu",
                    st->what, (unsigned long long)off, (unsigned long long)c->a,
                    (unsigned long long)n);
  uint8_t *arr = malloc(16 * n + 1);
  if (!arr) return wksp_err(WKSP_ERR_NOMEM, 0, "%s: appendix", st->what);
  int rc = wksp_frame_reader_data(st->r, arr, 8 * n); /* two buffers, see scan.c */
  if (!rc) rc = wksp_frame_reader_data(st->r, arr + 8 * n, 8 * n);
  if (!rc) rc = wksp_frame_reader_close(st->r, NULL);
  if (rc) {
    free(arr);
    return st_fail(st, rc, "appendix");
  }
  for (uint64_t i = 0; !rc && i < n; i++)
    if (ckpt_ld64(arr + 8 * i) != st->vol_off[i] || ckpt_ld64(arr + 8 * (n + i)) != st->vol_cnt[i])
      rc = wksp_err(WKSP_ERR_CORRUPT, 0, "%s: appendix at %llu disagrees with cgroup frame %llu",
                    st->what, (unsigned long long)off, (unsigned long long)i);
  free(arr);
  *prev_app = off;
  st->vol_n = 0;
  st->volumes++;
  return rc;
}

static int st_footer(stream_t *st, uint64_t vol_off) {
  uint8_t b[CKPT_FTR_SZ];
  uint64_t off = 0;
  int rc = wksp_frame_reader_open(st->r, WKSP_FRAME_RAW, &off);
  if (!rc) rc = wksp_frame_reader_data(st->r, b, sizeof b);
  if (!rc) rc = wksp_frame_reader_close(st->r, NULL);
  if (rc) return st_fail(st, rc, "footer");
  off += st->base_off;
  ckpt_ftr_t f;
  wksp_private_ckpt_ftr_decode(&f, b);
  rc = wksp_private_ckpt_ftr_check(&f, &st->hdr, off + CKPT_FTR_SZ, st->what);
  if (rc) return rc;
  if (f.alloc_cnt != st->cnt || f.cgroup_cnt != st->cgroups || f.volume_cnt != st->volumes ||
      f.frame_off != vol_off)
    return wksp_err(WKSP_ERR_CORRUPT, 0,
                    "%s: footer counts or volumes offset disagree with the "
                    "frames read",
                    st->what);
  return WKSP_SUCCESS;
}

static int cmp_part(const void *a, const void *b) {
  const wksp_part_t *x = a, *y = b;
  return x->gaddr_lo < y->gaddr_lo ? -1 : x->gaddr_lo > y->gaddr_lo;
}

/* The info frame, opened at the reader's position; *end (optional) gets
 * the reader offset after it. */
static int st_info(stream_t *st, uint64_t *end) {
  uint8_t info[CKPT_INFO_SZ];
  int rc = wksp_frame_reader_open(st->r, st->hdr.frame_style, NULL);
  if (!rc) rc = wksp_frame_reader_meta(st->r, info, sizeof info);
  if (rc) return st_fail(st, rc, "info frame");
  ckpt_info_t I;
  wksp_private_ckpt_info_decode(&I, info);
  uint64_t blob_sz;
  rc = wksp_private_ckpt_info_check(&I, &blob_sz, st->what);
  if (rc) return rc;
  uint8_t *blob = malloc(blob_sz);
  if (!blob) return wksp_err(WKSP_ERR_NOMEM, 0, "%s: info", st->what);
  rc = wksp_frame_reader_data(st->r, blob, blob_sz);
  if (!rc) rc = wksp_frame_reader_close(st->r, end);
  if (rc) rc = st_fail(st, rc, "info strings");
  if (!rc) rc = wksp_private_ckpt_info_blob_check(&I, blob, st->what);
  free(blob);
  return rc;
}

/* After the last frame: the allocations must not overlap and must fit;
 * then they replace the target's. */
static int st_finish(stream_t *st) {
  if (st->cnt) qsort(st->parts, st->cnt, sizeof *st->parts, cmp_part);
  for (uint64_t k = 1; k < st->cnt; k++)
    if (st->parts[k].gaddr_lo < st->parts[k - 1].gaddr_hi)
      return wksp_err(WKSP_ERR_CORRUPT, 0, "%s: allocations at %llu and %llu overlap", st->what,
                      (unsigned long long)st->parts[k - 1].gaddr_lo,
                      (unsigned long long)st->parts[k].gaddr_lo);
  if (!st->touched) {
    int rc = wksp_private_replace_check(st->w, st->parts, st->cnt);
    if (rc) return wksp_err_wrap(rc, "restore %s", st->what);
    rc = st_touch(st);
    if (rc) return rc;
  }
  return wksp_private_replace(st->w, st->parts, st->cnt, st->o->seed);
}

/* The volumes command c opened at off: it must point at the last appendix. */
static int st_volumes(stream_t *st, const ckpt_cmd_t *c, uint64_t off, uint64_t prev_app) {
  if (c->b != prev_app || st->vol_n)
    return wksp_err(WKSP_ERR_CORRUPT, 0, "%s: volumes command at %llu does not follow the last "
                    "appendix", st->what, (unsigned long long)off);
  int rc = wksp_frame_reader_close(st->r, NULL);
  return rc ? st_fail(st, rc, "volumes") : WKSP_SUCCESS;
}

/* Lock held; header checked.  Reads info, frames, footer, sequentially. */
static int st_body(stream_t *st) {
  int fsc = st->hdr.frame_style;
  int rc = st_info(st, NULL);
  uint64_t prev_app = 0;
  for (;;) {
    if (rc) return rc;
    uint64_t off;
    ckpt_cmd_t c;
    rc = wksp_frame_reader_open(st->r, fsc, &off);
    if (rc) return st_fail(st, rc, "frame");
    off += STREAM_BASE;
    rc = st_cmd(st, &c);
    if (rc) return rc;
    if (ckpt_cmd_is_volumes(&c)) {
      rc = st_volumes(st, &c, off, prev_app);
      if (!rc) rc = st_footer(st, off);
      break;
    }
    if (ckpt_cmd_is_appendix(&c)) rc = st_appendix(st, &c, off, &prev_app);
    else if (ckpt_cmd_is_meta(&c) || ckpt_cmd_is_data(&c)) rc = st_cgroup(st, c, off);
    else
      rc = wksp_err(WKSP_ERR_CORRUPT, 0, "%s: invalid command at %llu", st->what,
                    (unsigned long long)off);
  }
  return rc ? rc : st_finish(st);
}

/* ---- pipelined stream path (threads >= 2) ------------------------------------------
 *
 * The calling thread reads the stream into a window and finds where each
 * cgroup frame ends without decoding its data: it decodes the frame's
 * commands (which give every allocation's size, hence the exact sequence of
 * LZ4 chunk sizes) and then walks the 3-byte chunk headers.  The frame's
 * bytes are handed to a worker that decodes them into the target while the
 * calling thread goes on reading; when every worker is busy the calling
 * thread decodes the oldest waiting frame itself.  Memory: about
 * 2 x threads x the largest compressed cgroup frame (frames in the window,
 * queued and being decoded).  The checks are those of the sequential path;
 * the target is reset before the first frame is handed out. */

typedef struct {
  uint8_t *buf;        /* owned; the frame is buf[at, at + len) */
  uint64_t at, len, off;
  wksp_part_t *parts;  /* its allocations, owned */
  uint64_t n;
} pipe_job_t;

#define PIPE_QUEUE_MAX WKSP_CHECKPT_THREADS_MAX

struct pipe_state {
  stream_t *st;
  int fd, eof;
  uint8_t *buf; /* window: checkpoint bytes [base, base + len) */
  uint64_t cap, base, len;
  pthread_mutex_t lock;
  pthread_cond_t cv;
  pipe_job_t q[PIPE_QUEUE_MAX];
  uint64_t q_head, q_cnt, q_max;
  int stop, err, err_errno;
  char msg[1024];
};

/* Reads until the window holds checkpoint offset `want` (excluded) or the
 * stream ends; reads whatever is available beyond. */
static int win_fill(struct pipe_state *ps, uint64_t want) {
  while (ps->base + ps->len < want && !ps->eof) {
    uint64_t need = want - ps->base;
    if (need > ps->cap) {
      uint64_t cap = ps->cap * 2 > need ? ps->cap * 2 : need;
      uint8_t *b = realloc(ps->buf, cap);
      if (!b) return wksp_err(WKSP_ERR_NOMEM, 0, "%s: %llu-byte window", ps->st->what,
                              (unsigned long long)cap);
      ps->buf = b;
      ps->cap = cap;
    }
    ssize_t n = read(ps->fd, ps->buf + ps->len, ps->cap - ps->len);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return wksp_err(WKSP_ERR_FAIL, errno, "%s: read", ps->st->what);
    if (!n) ps->eof = 1;
    ps->len += (uint64_t)n;
  }
  return WKSP_SUCCESS;
}

typedef int (*pipe_fn_t)(stream_t *st, uint64_t off, void *arg);

/* Runs fn on a reader over the window from checkpoint offset off; when the
 * window ends too early, reads more and runs it again from a snapshot of
 * the bookkeeping. */
static int pipe_probe(struct pipe_state *ps, uint64_t off, pipe_fn_t fn, void *arg) {
  stream_t *st = ps->st, snap = *st;
  for (;;) {
    st->short_read = 0;
    int rc = wksp_frame_reader_init_mem(&st->r, ps->buf + (off - ps->base),
                                        ps->base + ps->len - off);
    if (!rc) {
      st->base_off = off;
      rc = fn(st, off, arg);
    }
    wksp_frame_reader_fini(st->r);
    st->r = NULL;
    if (!rc || !st->short_read || ps->eof) return rc;
    wksp_part_t *parts = st->parts; /* may have moved: keep the new array */
    uint64_t cap = st->cap;
    *st = snap;
    st->parts = parts;
    st->cap = cap;
    rc = win_fill(ps, ps->base + ps->len + 65536);
    if (rc) return rc;
  }
}

static void pipe_err(struct pipe_state *ps, int rc) {
  pthread_mutex_lock(&ps->lock);
  if (!ps->err) {
    ps->err = rc;
    ps->err_errno = wksp_errno();
    snprintf(ps->msg, sizeof ps->msg, "%s", wksp_errmsg());
  }
  pthread_mutex_unlock(&ps->lock);
}

/* Decodes a job's frame into the target (unless something already failed). */
static void pipe_run(struct pipe_state *ps, pipe_job_t *j) {
  stream_t *st = ps->st;
  pthread_mutex_lock(&ps->lock);
  int skip = ps->err != 0;
  pthread_mutex_unlock(&ps->lock);
  wksp_frame_reader_t *r = NULL;
  int rc = skip ? WKSP_SUCCESS : wksp_frame_reader_init_mem(&r, j->buf + j->at, j->len);
  if (!skip && !rc) rc = wksp_frame_reader_open(r, st->hdr.frame_style, NULL);
  uint8_t b[CKPT_CMD_SZ];
  for (uint64_t k = 0; !skip && !rc && k <= j->n; k++) rc = wksp_frame_reader_meta(r, b, sizeof b);
  for (uint64_t k = 0; !skip && !rc && k < j->n; k++) {
    const wksp_part_t *p = &j->parts[k];
    rc = wksp_frame_reader_data(r, wksp_laddr(st->w, p->gaddr_lo), p->gaddr_hi - p->gaddr_lo);
  }
  uint64_t end = 0;
  if (!skip && !rc) rc = wksp_frame_reader_close(r, &end);
  if (!skip && !rc && end != j->len)
    rc = wksp_err(WKSP_ERR_CORRUPT, 0, "frame ends at %llu, expected %llu",
                  (unsigned long long)(j->off + end), (unsigned long long)(j->off + j->len));
  if (rc) {
    if (rc == WKSP_ERR_FAIL) rc = WKSP_ERR_CORRUPT; /* the frame's bytes are all there */
    wksp_err_wrap(rc, "%s: cgroup frame at %llu", st->what, (unsigned long long)j->off);
    pipe_err(ps, rc);
  }
  wksp_frame_reader_fini(r);
  free(j->buf);
  free(j->parts);
}

static void *pipe_worker(void *arg) {
  struct pipe_state *ps = arg;
  pthread_mutex_lock(&ps->lock);
  for (;;) {
    while (!ps->q_cnt && !ps->stop) pthread_cond_wait(&ps->cv, &ps->lock);
    if (!ps->q_cnt) break;
    pipe_job_t j = ps->q[ps->q_head];
    ps->q_head = (ps->q_head + 1) % PIPE_QUEUE_MAX;
    ps->q_cnt--;
    pthread_cond_broadcast(&ps->cv);
    pthread_mutex_unlock(&ps->lock);
    pipe_run(ps, &j);
    pthread_mutex_lock(&ps->lock);
  }
  pthread_mutex_unlock(&ps->lock);
  return NULL;
}

/* Queues a job; when the queue is full the caller decodes the oldest. */
static void pipe_push(struct pipe_state *ps, const pipe_job_t *j) {
  pthread_mutex_lock(&ps->lock);
  while (ps->q_cnt >= ps->q_max) {
    pipe_job_t old = ps->q[ps->q_head];
    ps->q_head = (ps->q_head + 1) % PIPE_QUEUE_MAX;
    ps->q_cnt--;
    pthread_mutex_unlock(&ps->lock);
    pipe_run(ps, &old);
    pthread_mutex_lock(&ps->lock);
  }
  ps->q[(ps->q_head + ps->q_cnt) % PIPE_QUEUE_MAX] = *j;
  ps->q_cnt++;
  pthread_cond_broadcast(&ps->cv);
  pthread_mutex_unlock(&ps->lock);
}

typedef struct {
  uint64_t *prev_app;
  int kind;       /* 0 cgroup, 1 appendix, 2 volumes */
  uint64_t first; /* cgroup: first allocation index */
  uint64_t data;  /* cgroup: offset of its data (after the data command) */
  uint64_t end;   /* appendix / volumes / info: where the frame ends */
} pipe_frame_t;

static int pipe_info(stream_t *st, uint64_t off, void *arg) {
  uint64_t end = 0;
  int rc = st_info(st, &end);
  *(uint64_t *)arg = off + end;
  return rc;
}

/* One frame's commands (and for an appendix or the volumes frame, all of
 * it) from the window. */
static int pipe_frame(stream_t *st, uint64_t off, void *arg) {
  pipe_frame_t *f = arg;
  ckpt_cmd_t c;
  int rc = wksp_frame_reader_open(st->r, st->hdr.frame_style, NULL);
  if (rc) return st_fail(st, rc, "frame");
  rc = st_cmd(st, &c);
  if (rc) return rc;
  if (ckpt_cmd_is_volumes(&c)) {
    f->kind = 2;
    rc = st_volumes(st, &c, off, *f->prev_app);
  } else if (ckpt_cmd_is_appendix(&c)) {
    f->kind = 1;
    rc = st_appendix(st, &c, off, f->prev_app);
  } else if (ckpt_cmd_is_meta(&c) || ckpt_cmd_is_data(&c)) {
    f->kind = 0;
    f->first = st->cnt;
    rc = st_metas(st, c, off);
    f->data = off + wksp_frame_reader_offset(st->r);
    return rc;
  } else {
    return wksp_err(WKSP_ERR_CORRUPT, 0, "%s: invalid command at %llu", st->what,
                    (unsigned long long)off);
  }
  f->end = off + wksp_frame_reader_offset(st->r);
  return rc;
}

static int pipe_footer(stream_t *st, uint64_t off, void *arg) {
  (void)off;
  return st_footer(st, *(uint64_t *)arg);
}

/* Where the cgroup frame whose data starts at `at` ends: walks the chunk
 * headers of allocations parts[first, cnt) (RAW: their sizes). */
static int pipe_walk(struct pipe_state *ps, uint64_t first, uint64_t at, uint64_t *end) {
  stream_t *st = ps->st;
  int rc = WKSP_SUCCESS;
  for (uint64_t k = first; !rc && k < st->cnt; k++) {
    uint64_t sz = st->parts[k].gaddr_hi - st->parts[k].gaddr_lo;
    if (st->hdr.frame_style == WKSP_FRAME_RAW) {
      at += sz;
      continue;
    }
    while (!rc && sz) {
      uint64_t usz = sz < WKSP_FRAME_CHUNK_MAX ? sz : WKSP_FRAME_CHUNK_MAX;
      rc = win_fill(ps, at + 3);
      if (rc) break;
      if (ps->base + ps->len < at + 3) break; /* truncated: found below */
      const uint8_t *h = ps->buf + (at - ps->base);
      uint64_t csz = (uint64_t)h[0] | (uint64_t)h[1] << 8 | (uint64_t)h[2] << 16;
      if (csz < 1 || csz > usz + usz / 255 + 16)
        rc = wksp_err(WKSP_ERR_CORRUPT, 0, "%s: LZ4 chunk at %llu has block size %llu for %llu "
                      "bytes", st->what, (unsigned long long)at, (unsigned long long)csz,
                      (unsigned long long)usz);
      at += 3 + csz;
      sz -= usz;
    }
  }
  if (!rc) rc = win_fill(ps, at);
  if (!rc && ps->base + ps->len < at)
    rc = wksp_err(WKSP_ERR_CORRUPT, 0, "%s: truncated at offset %llu (cgroup frame to %llu)",
                  st->what, (unsigned long long)(ps->base + ps->len), (unsigned long long)at);
  *end = at;
  return rc;
}

/* Hands the frame [off, end) to the workers; the window keeps what follows. */
static int pipe_dispatch(struct pipe_state *ps, uint64_t off, uint64_t end, uint64_t first) {
  stream_t *st = ps->st;
  uint64_t n = st->cnt - first, rest = ps->base + ps->len - end;
  pipe_job_t j = {.buf = ps->buf, .at = off - ps->base, .len = end - off, .off = off, .n = n};
  j.parts = malloc((n ? n : 1) * sizeof *j.parts);
  uint64_t cap = rest > (1u << 20) ? rest : 1u << 20;
  uint8_t *nb = malloc(cap);
  if (!j.parts || !nb) {
    free(j.parts);
    free(nb);
    return wksp_err(WKSP_ERR_NOMEM, 0, "%s: pipeline buffers", st->what);
  }
  if (n) memcpy(j.parts, st->parts + first, n * sizeof *j.parts);
  memcpy(nb, ps->buf + (end - ps->base), rest);
  ps->buf = nb;
  ps->cap = cap;
  ps->base = end;
  ps->len = rest;
  int rc = st_touch(st);
  if (rc) {
    free(j.buf);
    free(j.parts);
    return rc;
  }
  pipe_push(ps, &j);
  st_cgroup_done(st, off, first);
  return WKSP_SUCCESS;
}

static int pipe_frames(struct pipe_state *ps) {
  stream_t *st = ps->st;
  uint64_t off = STREAM_BASE, prev_app = 0;
  int rc = pipe_probe(ps, off, pipe_info, &off);
  while (!rc) {
    pthread_mutex_lock(&ps->lock);
    int failed = ps->err;
    pthread_mutex_unlock(&ps->lock);
    if (failed) break;
    pipe_frame_t f = {.prev_app = &prev_app};
    rc = pipe_probe(ps, off, pipe_frame, &f);
    if (rc) break;
    if (f.kind == 2) {
      uint64_t vol = off;
      rc = pipe_probe(ps, f.end, pipe_footer, &vol);
      break;
    }
    if (f.kind == 1) {
      off = f.end;
      continue;
    }
    if (st->vol_n == CKPT_CGROUP_MAX)
      return wksp_err(WKSP_ERR_CORRUPT, 0, "%s: more than %llu cgroup frames in a volume",
                      st->what, (unsigned long long)CKPT_CGROUP_MAX);
    uint64_t end = 0;
    rc = pipe_walk(ps, f.first, f.data, &end);
    if (!rc) rc = pipe_dispatch(ps, off, end, f.first);
    off = end;
  }
  return rc;
}

/* Lock held; header checked (the caller read it): the pipelined body. */
static int st_body_pipelined(stream_t *st, int fd, uint32_t threads) {
  struct pipe_state *ps = calloc(1, sizeof *ps);
  if (!ps) return wksp_err(WKSP_ERR_NOMEM, 0, "%s: pipeline", st->what);
  ps->st = st;
  ps->fd = fd;
  ps->base = STREAM_BASE;
  ps->cap = 1 << 20;
  ps->buf = malloc(ps->cap);
  ps->q_max = threads - 1 < PIPE_QUEUE_MAX ? threads - 1 : PIPE_QUEUE_MAX;
  st->pipelined = 1;
  pthread_mutex_init(&ps->lock, NULL);
  pthread_cond_init(&ps->cv, NULL);
  pthread_t th[WKSP_CHECKPT_THREADS_MAX];
  uint32_t started = 0;
  for (uint32_t t = 1; ps->buf && t < threads && t < WKSP_CHECKPT_THREADS_MAX; t++)
    if (!pthread_create(&th[started], NULL, pipe_worker, ps)) started++;
  int rc = ps->buf ? pipe_frames(ps) : wksp_err(WKSP_ERR_NOMEM, 0, "%s: window", st->what);
  if (rc) pipe_err(ps, rc); /* stops the decoding of queued frames */
  /* Drain: the queued frames are decoded (or dropped after an error) here
   * and by the workers, which then end. */
  pthread_mutex_lock(&ps->lock);
  while (ps->q_cnt) {
    pipe_job_t j = ps->q[ps->q_head];
    ps->q_head = (ps->q_head + 1) % PIPE_QUEUE_MAX;
    ps->q_cnt--;
    pthread_mutex_unlock(&ps->lock);
    pipe_run(ps, &j);
    pthread_mutex_lock(&ps->lock);
  }
  ps->stop = 1;
  pthread_cond_broadcast(&ps->cv);
  pthread_mutex_unlock(&ps->lock);
  for (uint32_t t = 0; t < started; t++) pthread_join(th[t], NULL);
  if (!rc && ps->err) rc = wksp_err(ps->err, ps->err_errno, "%s", ps->msg);
  if (!rc) rc = st_finish(st);
  pthread_cond_destroy(&ps->cv);
  pthread_mutex_destroy(&ps->lock);
  free(ps->buf);
  free(ps);
  return rc;
}

static int restore_stream(wksp_t *w, ckpt_input_t *in, const wksp_restore_opts_t *o) {
  /* A larger pipe buffer lets the writer run ahead while we decode (best
   * effort: not a pipe, or above the system's limit, changes nothing). */
  fcntl(in->fd, F_SETPIPE_SZ, 1 << 20);
  uint8_t hdr[CKPT_HDR_SZ];
  long n = wksp_private_ckpt_read_full(in->fd, hdr, sizeof hdr);
  if (n < 0) return wksp_err(WKSP_ERR_FAIL, errno, "restore %s: read", in->label);
  ckpt_hdr_t h;
  if ((size_t)n == sizeof hdr) wksp_private_ckpt_hdr_decode(&h, hdr);
  int spool = (size_t)n < sizeof hdr || h.magic != CKPT_MAGIC || o->verify_first;
  if (!spool) {
    int rc = wksp_private_ckpt_hdr_check(&h, in->label);
    if (rc) return rc;
    uint64_t slo = ckpt_gaddr_lo(h.part_max), shi = slo + h.data_max;
    spool = slo < wksp_gaddr_lo(w) || shi > wksp_gaddr_hi(w); /* may not fit: check first */
  }
  if (spool) {
    int rc = wksp_private_ckpt_input_spool(in, hdr, (size_t)n);
    return rc ? rc : restore_mem(w, in, o);
  }
  stream_t st = {.w = w, .what = in->label, .o = o, .hdr = h, .base_off = STREAM_BASE};
  st.vol_off = malloc(2 * CKPT_CGROUP_MAX * sizeof *st.vol_off);
  st.vol_cnt = st.vol_off ? st.vol_off + CKPT_CGROUP_MAX : NULL;
  int pipelined = o->threads >= 2;
  int rc = !st.vol_off ? wksp_err(WKSP_ERR_NOMEM, 0, "restore %s", in->label)
           : pipelined ? WKSP_SUCCESS
                       : wksp_frame_reader_init_fd(&st.r, in->fd);
  if (!rc) {
    rc = wksp_private_lock(w);
    if (rc) {
      wksp_err_wrap(rc, "restore %s: lock", in->label);
    } else {
      uint32_t threads = o->threads > WKSP_CHECKPT_THREADS_MAX ? WKSP_CHECKPT_THREADS_MAX
                                                               : o->threads;
      rc = threads >= 2 ? st_body_pipelined(&st, in->fd, threads) : st_body(&st);
      if (rc && st.touched) {
        wksp_private_reset(w, o->seed);
        rc = after_reset(rc);
      }
      wksp_private_unlock(w);
    }
  }
  wksp_frame_reader_fini(st.r);
  free(st.vol_off);
  free(st.parts);
  return rc;
}

/* ---- API --------------------------------------------------------------------------- */

static const wksp_restore_opts_t ropts_default = {0};

static int restore_any(wksp_t *w, const char *path, int fd, const char *label,
                       const wksp_restore_opts_t *o) {
  if (!o) o = &ropts_default;
  ckpt_input_t in;
  int rc = wksp_private_ckpt_input_open(&in, path, fd, label, 0);
  if (rc) return rc;
  rc = in.mem ? restore_mem(w, &in, o) : restore_stream(w, &in, o);
  wksp_private_ckpt_input_fini(&in);
  return rc;
}

int wksp_restore(wksp_t *w, const char *path, const wksp_restore_opts_t *opts) {
  if (!w || !path) return wksp_err(WKSP_ERR_INVAL, 0, "wksp_restore: NULL workspace or path");
  return restore_any(w, path, -1, path, opts);
}

int wksp_restore_fd(wksp_t *w, int fd, const char *label, const wksp_restore_opts_t *opts) {
  if (!w || fd < 0) return wksp_err(WKSP_ERR_INVAL, 0, "wksp_restore_fd: NULL workspace or bad fd");
  return restore_any(w, NULL, fd, label ? label : "-", opts);
}

int wksp_checkpt_info(const char *path, int fd, wksp_checkpt_info_t *out) {
  if (out) memset(out, 0, sizeof *out);
  if (!out || (!path && fd < 0))
    return wksp_err(WKSP_ERR_INVAL, 0, "wksp_checkpt_info: NULL out or no path / fd");
  ckpt_input_t in;
  int rc =
      wksp_private_ckpt_input_open(&in, path, path ? -1 : fd, path ? path : "-", CKPT_IN_NEED_MEM);
  if (rc) return rc;
  ckpt_scan_t s;
  rc = wksp_private_ckpt_scan(&s, &in);
  wksp_private_ckpt_input_fini(&in);
  if (rc) return rc;
  *out = s.info;
  s.info.parts = NULL;
  s.info.cgroups = NULL;
  s.info.priv_ = NULL;
  wksp_private_ckpt_scan_fini(&s);
  return WKSP_SUCCESS;
}

void wksp_checkpt_info_free(wksp_checkpt_info_t *info) {
  if (!info) return;
  free(info->parts);
  free(info->cgroups);
  free(info->priv_);
  memset(info, 0, sizeof *info);
}
