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
                  "128 + 64*(%llu - part_max) + %llu would hold it, e.g. part_max %llu data_max %llu",
                  what, (unsigned long long)bad->gaddr_lo, (unsigned long long)bad->gaddr_hi,
                  (unsigned long long)lo, (unsigned long long)hi,
                  (unsigned long long)wksp_part_max(w), (unsigned long long)wksp_data_max(w),
                  (unsigned long long)pmax, (unsigned long long)pmax,
                  (unsigned long long)(max_hi - WKSP_HDR_SZ - WKSP_PART_SZ * pmax),
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
  wksp_frame_reader_t *r = NULL;
  uint8_t b[CKPT_CMD_SZ];
  uint64_t end = 0;
  int rc = wksp_frame_reader_init_mem(&r, j->in->mem, j->in->sz);
  if (!rc) rc = wksp_frame_reader_seek(r, cg->off);
  if (!rc) rc = wksp_frame_reader_open(r, s->hdr.frame_style, NULL);
  for (uint64_t k = 0; !rc && k <= cg->alloc_cnt; k++) {
    rc = wksp_frame_reader_meta(r, b, sizeof b);
    ckpt_cmd_t c;
    ckpt_cmd_decode(&c, b);
    int same = k < cg->alloc_cnt ? c.tag == p[k].tag && c.a == p[k].gaddr_lo && c.b == p[k].gaddr_hi
                                 : ckpt_cmd_is_data(&c);
    if (!rc && !same) rc = wksp_err(WKSP_ERR_CORRUPT, 0, "commands changed since validation");
  }
  for (uint64_t k = 0; !rc && k < cg->alloc_cnt; k++) {
    void *d = j->dest(j->ctx, &p[k]);
    rc = wksp_frame_reader_data(r, d, p[k].gaddr_hi - p[k].gaddr_lo);
    if (!rc && j->done) rc = j->done(j->ctx, &p[k], d);
  }
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

int ckpt_data_run(const ckpt_input_t *in, const ckpt_scan_t *s, uint32_t threads,
                  ckpt_dest_fn_t dest, ckpt_done_fn_t done, void *ctx) {
  data_job_t j = {.in = in, .s = s, .dest = dest, .done = done, .ctx = ctx};
  if (s->info.pv.style == 1) return ckpt_pool_run(threads, s->info.alloc_cnt, data_v1, &j);
  return ckpt_pool_run(threads, s->info.cgroup_cnt, data_cgroup, &j);
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
  rc = wksp_private_reset(w, o->seed);
  if (rc) return wksp_err_wrap(rc, "restore %s: reset", in->label);
  rc = ckpt_data_run(in, s, o->threads ? o->threads : 1, dest_wksp, NULL, w);
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
  int rc = ckpt_scan(&s, in);
  if (rc) return rc;
  rc = wksp_private_lock(w);
  if (rc) {
    wksp_err_wrap(rc, "restore %s: lock", in->label);
  } else {
    rc = restore_locked(w, in, &s, o);
    wksp_private_unlock(w);
  }
  ckpt_scan_fini(&s);
  return rc;
}

/* ---- stream path ---------------------------------------------------------------- */

typedef struct {
  wksp_t *w;
  wksp_frame_reader_t *r;
  const char *what;
  const wksp_restore_opts_t *o;
  ckpt_hdr_t hdr;
  int touched;       /* the target was reset */
  wksp_part_t *parts; /* in file order */
  uint64_t cnt, cap;
  uint64_t *vol_off, *vol_cnt; /* this volume's cgroup offsets / counts */
  uint64_t vol_n;
  uint64_t cgroups, volumes, done_sz;
} stream_t;

#define STREAM_BASE CKPT_HDR_SZ /* the reader starts after the header */

static int st_fail(stream_t *st, int rc, const char *where) {
  if (rc == WKSP_ERR_FAIL && wksp_errno() == 0) rc = WKSP_ERR_CORRUPT; /* truncated */
  return wksp_err_wrap(rc, "%s: %s", st->what, where);
}

static int st_cmd(stream_t *st, ckpt_cmd_t *c) {
  uint8_t b[CKPT_CMD_SZ];
  int rc = wksp_frame_reader_meta(st->r, b, sizeof b);
  if (rc) return st_fail(st, rc, "command");
  ckpt_cmd_decode(c, b);
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

/* A cgroup frame whose first command c was already read. */
static int st_cgroup(stream_t *st, ckpt_cmd_t c, uint64_t off) {
  uint64_t src_lo = ckpt_gaddr_lo(st->hdr.part_max), src_hi = src_lo + st->hdr.data_max;
  uint64_t tlo = wksp_gaddr_lo(st->w), thi = wksp_gaddr_hi(st->w), first = st->cnt, prev_hi = 0;
  int rc = WKSP_SUCCESS;
  if (st->vol_n == CKPT_CGROUP_MAX)
    return wksp_err(WKSP_ERR_CORRUPT, 0, "%s: more than %llu cgroup frames in a volume", st->what,
                    (unsigned long long)CKPT_CGROUP_MAX);
  while (!ckpt_cmd_is_data(&c)) {
    rc = ckpt_meta_check(&c, src_lo, src_hi, off, st->what);
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
  if (!st->touched) {
    rc = wksp_private_reset(st->w, st->o->seed);
    if (rc) return wksp_err_wrap(rc, "%s: reset", st->what);
    st->touched = 1;
  }
  for (uint64_t k = first; k < st->cnt; k++) {
    const wksp_part_t *p = &st->parts[k];
    rc = wksp_frame_reader_data(st->r, wksp_laddr(st->w, p->gaddr_lo), p->gaddr_hi - p->gaddr_lo);
    if (rc) return st_fail(st, rc, "allocation bytes");
    st->done_sz += p->gaddr_hi - p->gaddr_lo;
  }
  rc = wksp_frame_reader_close(st->r, NULL);
  if (rc) return st_fail(st, rc, "close");
  st->vol_off[st->vol_n] = off;
  st->vol_cnt[st->vol_n] = st->cnt - first;
  st->vol_n++;
  st->cgroups++;
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
  if (rc) rc = st_fail(st, rc, "appendix");
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
  off += STREAM_BASE;
  ckpt_ftr_t f;
  ckpt_ftr_decode(&f, b);
  rc = ckpt_ftr_check(&f, &st->hdr, off + CKPT_FTR_SZ, st->what);
  if (rc) return rc;
  if (f.alloc_cnt != st->cnt || f.cgroup_cnt != st->cgroups || f.volume_cnt != st->volumes ||
      f.frame_off != vol_off)
    return wksp_err(WKSP_ERR_CORRUPT, 0, "%s: footer counts or volumes offset disagree with the "
                                         "frames read", st->what);
  return WKSP_SUCCESS;
}

static int cmp_part(const void *a, const void *b) {
  const wksp_part_t *x = a, *y = b;
  return x->gaddr_lo < y->gaddr_lo ? -1 : x->gaddr_lo > y->gaddr_lo;
}

/* Lock held; header checked.  Reads info, frames, footer. */
static int st_body(stream_t *st) {
  uint8_t info[CKPT_INFO_SZ];
  int fsc = st->hdr.frame_style;
  int rc = wksp_frame_reader_open(st->r, fsc, NULL);
  if (!rc) rc = wksp_frame_reader_meta(st->r, info, sizeof info);
  if (rc) return st_fail(st, rc, "info frame");
  ckpt_info_t I;
  ckpt_info_decode(&I, info);
  uint64_t blob_sz;
  rc = ckpt_info_check(&I, &blob_sz, st->what);
  if (rc) return rc;
  uint8_t *blob = malloc(blob_sz);
  if (!blob) return wksp_err(WKSP_ERR_NOMEM, 0, "%s: info", st->what);
  rc = wksp_frame_reader_data(st->r, blob, blob_sz);
  if (!rc) rc = wksp_frame_reader_close(st->r, NULL);
  if (rc) rc = st_fail(st, rc, "info strings");
  if (!rc) rc = ckpt_info_blob_check(&I, blob, st->what);
  free(blob);
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
      if (c.b != prev_app || st->vol_n)
        return wksp_err(WKSP_ERR_CORRUPT, 0, "%s: volumes command at %llu does not follow the "
                                             "last appendix", st->what, (unsigned long long)off);
      rc = wksp_frame_reader_close(st->r, NULL);
      if (rc) return st_fail(st, rc, "volumes");
      rc = st_footer(st, off);
      break;
    }
    if (ckpt_cmd_is_appendix(&c)) rc = st_appendix(st, &c, off, &prev_app);
    else if (ckpt_cmd_is_meta(&c) || ckpt_cmd_is_data(&c)) rc = st_cgroup(st, c, off);
    else rc = wksp_err(WKSP_ERR_CORRUPT, 0, "%s: invalid command at %llu", st->what,
                       (unsigned long long)off);
  }
  if (rc) return rc;
  if (st->cnt) qsort(st->parts, st->cnt, sizeof *st->parts, cmp_part);
  for (uint64_t k = 1; k < st->cnt; k++)
    if (st->parts[k].gaddr_lo < st->parts[k - 1].gaddr_hi)
      return wksp_err(WKSP_ERR_CORRUPT, 0, "%s: allocations at %llu and %llu overlap", st->what,
                      (unsigned long long)st->parts[k - 1].gaddr_lo,
                      (unsigned long long)st->parts[k].gaddr_lo);
  if (!st->touched) {
    rc = wksp_private_replace_check(st->w, st->parts, st->cnt);
    if (rc) return wksp_err_wrap(rc, "restore %s", st->what);
    rc = wksp_private_reset(st->w, st->o->seed);
    if (rc) return rc;
    st->touched = 1;
  }
  return wksp_private_replace(st->w, st->parts, st->cnt, st->o->seed);
}

static int restore_stream(wksp_t *w, ckpt_input_t *in, const wksp_restore_opts_t *o) {
  uint8_t hdr[CKPT_HDR_SZ];
  long n = ckpt_read_full(in->fd, hdr, sizeof hdr);
  if (n < 0) return wksp_err(WKSP_ERR_FAIL, errno, "restore %s: read", in->label);
  ckpt_hdr_t h;
  if ((size_t)n == sizeof hdr) ckpt_hdr_decode(&h, hdr);
  int spool = (size_t)n < sizeof hdr || h.magic != CKPT_MAGIC || o->verify_first;
  if (!spool) {
    int rc = ckpt_hdr_check(&h, in->label);
    if (rc) return rc;
    uint64_t slo = ckpt_gaddr_lo(h.part_max), shi = slo + h.data_max;
    spool = slo < wksp_gaddr_lo(w) || shi > wksp_gaddr_hi(w); /* may not fit: check first */
  }
  if (spool) {
    int rc = ckpt_input_spool(in, hdr, (size_t)n);
    return rc ? rc : restore_mem(w, in, o);
  }
  stream_t st = {.w = w, .what = in->label, .o = o, .hdr = h};
  st.vol_off = malloc(2 * CKPT_CGROUP_MAX * sizeof *st.vol_off);
  st.vol_cnt = st.vol_off ? st.vol_off + CKPT_CGROUP_MAX : NULL;
  int rc = st.vol_off ? wksp_frame_reader_init_fd(&st.r, in->fd)
                      : wksp_err(WKSP_ERR_NOMEM, 0, "restore %s", in->label);
  if (!rc) {
    rc = wksp_private_lock(w);
    if (rc) {
      wksp_err_wrap(rc, "restore %s: lock", in->label);
    } else {
      rc = st_body(&st);
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
  int rc = ckpt_input_open(&in, path, fd, label, 0);
  if (rc) return rc;
  rc = in.mem ? restore_mem(w, &in, o) : restore_stream(w, &in, o);
  ckpt_input_fini(&in);
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
  int rc = ckpt_input_open(&in, path, path ? -1 : fd, path ? path : "-", 1);
  if (rc) return rc;
  ckpt_scan_t s;
  rc = ckpt_scan(&s, &in);
  ckpt_input_fini(&in);
  if (rc) return rc;
  *out = s.info;
  s.info.parts = NULL;
  s.info.cgroups = NULL;
  s.info.priv_ = NULL;
  ckpt_scan_fini(&s);
  return WKSP_SUCCESS;
}

void wksp_checkpt_info_free(wksp_checkpt_info_t *info) {
  if (!info) return;
  free(info->parts);
  free(info->cgroups);
  free(info->priv_);
  memset(info, 0, sizeof *info);
}
