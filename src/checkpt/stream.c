/* Restore from a stream (pipes; docs/FORMAT.md 4.4), more careful than the
 * reference: header and info are checked before the target is touched, the
 * target is reset at the first allocation byte written, and every later
 * error resets it to empty again (with CORRUPT, FULL or FAIL and the note
 * "(target reset to empty)").  Two readers: sequential on the calling
 * thread, and pipelined over several threads.  Whether a stream is read
 * here at all is decided before, from its first bytes (restore.c: v1,
 * verify_first, and a source region that may not fit are spooled and
 * restored as files); nothing here goes back to that path.  A stream read
 * as it comes is bounded by its header: the limits of checkpt_private.h
 * (part_max allocations of data_max bytes in all, frame and volume counts)
 * are checked as the commands arrive, so no stream makes us read more than
 * a checkpoint of its geometry can hold.
 *
 * Length: about 800 lines, kept in one file on purpose.  The pipelined
 * reader is not a second reader but a schedule of this one: it runs the same
 * steps (st_info, st_metas, st_cgroup, st_appendix, st_footer) on the same
 * stream_t and only moves the decoding of whole frames to other threads; a
 * file of its own would have to export stream_t and every step. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "checkpt_private.h"
#include "frame/frame_private.h"
#include "util/err.h"
#include "util/io.h"
#include <wksp/frame.h>
#include "../wksp/wksp_private.h"

/* ---- stream path ---------------------------------------------------------------- */

typedef struct {
  wksp_t *w;
  wksp_frame_reader_t *r;
  const char *what;
  const wksp_restore_opts_t *o;
  checkpt_hdr_t hdr;
  int touched;        /* the target was reset */
  wksp_part_t *parts; /* in file order */
  uint64_t cnt, cap;
  uint64_t *vol_off, *vol_cnt; /* this volume's cgroup offsets / counts */
  uint64_t vol_n;
  uint64_t cgroups, volumes;
  checkpt_progress_t *m; /* allocation bytes restored (the pipelined path's workers use
                            pipe_state's copy: st is snapshot and restored while they run) */
  uint64_t alloc_sz;  /* bytes of the allocations listed so far */
  uint64_t base_off; /* checkpoint offset of the reader's offset 0 */
  int short_read;    /* pipelined reader: the window ended before the frame */
  checkpt_seal_t seal;  /* what the info frame says of a seal (digest.c) */
  wksp_prefault_t pf;   /* for the frames' pre-faults, pagemap opened once per call (prefault.c) */
  int route;            /* where allocation bytes go: ROUTE_* (decided at the first frame) */
  int route_fd;         /* ROUTE_FILE: the region's file, bytes at route_off + gaddr */
  uint64_t route_off;
  uint8_t *bounce;      /* ROUTE_FILE, sequential reader: CHECKPT_COPY_BUF bytes */
} stream_t;

enum { ROUTE_UNDECIDED, ROUTE_MAPPING, ROUTE_FILE };

#define STREAM_BASE CHECKPT_HDR_SZ /* the sequential reader starts after the header */

/* A failure of reader r, whose offset 0 is checkpoint offset base. */
static int st_fail_at(stream_t *st, const wksp_frame_reader_t *r, uint64_t base, int rc,
                      const char *where) {
  if (wksp_err_short_is_corrupt(rc) != rc) st->short_read = 1; /* truncated */
  return wksp_private_checkpt_read_fail(r, base, rc, st->what, where);
}

static int st_fail(stream_t *st, int rc, const char *where) {
  return st_fail_at(st, st->r, st->base_off, rc, where);
}

static int st_cmd(stream_t *st, checkpt_cmd_t *c) {
  uint8_t b[CHECKPT_CMD_SZ];
  int rc = wksp_frame_reader_meta(st->r, b, sizeof b);
  if (rc) return st_fail(st, rc, "command");
  wksp_private_checkpt_cmd_decode(c, b);
  return WKSP_SUCCESS;
}

static int st_push(stream_t *st, const checkpt_cmd_t *c) {
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
static int st_metas(stream_t *st, checkpt_cmd_t c, uint64_t off) {
  uint64_t src_lo = checkpt_gaddr_lo(st->hdr.part_max), src_hi = src_lo + st->hdr.data_max;
  uint64_t tlo = wksp_gaddr_lo(st->w), thi = wksp_gaddr_hi(st->w), prev_hi = 0;
  int rc = WKSP_SUCCESS;
  if (st->vol_n == CHECKPT_CGROUP_MAX)
    return wksp_err(WKSP_ERR_CORRUPT, 0, "%s: more than %" PRIu64 " cgroup frames in a volume", st->what,
                    (uint64_t)CHECKPT_CGROUP_MAX);
  if (st->cgroups == checkpt_frames_max(st->hdr.part_max)) /* the limits of checkpt_private.h, */
    return wksp_err(WKSP_ERR_CORRUPT, 0,
                    "%s: cgroup frame at %" PRIu64 ": more than %" PRIu64 " cgroup frames", st->what, off,
                    st->cgroups);
  while (!checkpt_cmd_is_data(&c)) {
    rc = wksp_private_checkpt_meta_check(&c, src_lo, src_hi, off, st->what);
    if (rc) return rc;
    if (c.a < prev_hi)
      return wksp_err(WKSP_ERR_CORRUPT, 0, "%s: cgroup frame at %" PRIu64 ": allocations out of order",
                      st->what, off);
    /* which bound what a stream can make us read: allocations that do not
     * overlap fit data_max (overlaps are found at the end) */
    st->alloc_sz += c.b - c.a;
    if (st->cnt == st->hdr.part_max || st->alloc_sz > st->hdr.data_max)
      return wksp_err(WKSP_ERR_CORRUPT, 0,
                      "%s: cgroup frame at %" PRIu64 ": more than part_max %" PRIu64
                      " allocations or data_max "
                      "%" PRIu64 " bytes (%" PRIu64 " allocations of %" PRIu64 " bytes so far)",
                      st->what, off, st->hdr.part_max, st->hdr.data_max, st->cnt + 1, st->alloc_sz);
    if (c.a < tlo || c.b > thi)
      return wksp_private_checkpt_fit_check(st->w, &(wksp_part_t){c.a, c.b, c.tag}, 1, st->what);
    if (st->cnt >= wksp_part_max(st->w))
      return wksp_err(WKSP_ERR_FULL, 0, "%s: more allocations than the target's part_max %" PRIu64, st->what,
                      wksp_part_max(st->w));
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

/* Reads the bytes of allocations parts[0, n) into the target, in progress
 * steps (multiples of the writer's LZ4 chunks: the same blocks decode), so
 * that a huge allocation shows progress. */
static int st_data(wksp_t *w, checkpt_progress_t *m, wksp_frame_reader_t *r, const wksp_part_t *parts,
                   uint64_t n) {
  int rc = WKSP_SUCCESS;
  for (uint64_t k = 0; !rc && k < n; k++) {
    uint8_t *d = wksp_laddr(w, parts[k].gaddr_lo);
    uint64_t sz = parts[k].gaddr_hi - parts[k].gaddr_lo;
    for (uint64_t at = 0; !rc && at < sz; at += CHECKPT_PROGRESS_STEP) {
      uint64_t step = sz - at < CHECKPT_PROGRESS_STEP ? sz - at : CHECKPT_PROGRESS_STEP;
      rc = wksp_frame_reader_data(r, d + at, step);
      if (!rc) wksp_private_checkpt_progress_add(m, step);
    }
  }
  return rc;
}

/* The allocations listed since the first `first` (NULL when there are
 * none: a frame may list none, and st->parts stays NULL until one is). */
static const wksp_part_t *st_parts_since(const stream_t *st, uint64_t first) {
  return st->cnt > first ? st->parts + first : NULL;
}

/* Gets parts[0, n) of the target ready to take their bytes.  The first
 * frame decides, for the whole stream, whether they go through the
 * mapping (pre-faulted frame by frame) or, in a process that does not map
 * the target (wksp_private_bytes_route), through the region's file (from
 * which a seal's digest then reads them back).  (The pipelined
 * reader decides at its first frame too, and its workers take the
 * decision from pipe_state.) */
static void st_route(stream_t *st, const wksp_part_t *parts, uint64_t n) {
  if (st->route == ROUTE_MAPPING) {
    wksp_private_prefault_parts_with(st->w, &st->pf, parts, n, 1);
  } else if (st->route == ROUTE_UNDECIDED) {
    st->route = wksp_private_bytes_route(st->w, parts, n, 1, 1, &st->route_fd, &st->route_off) ? ROUTE_FILE
                                                                                            : ROUTE_MAPPING;
  }
}

/* A cgroup frame whose first command c was already read. */
static int st_cgroup(stream_t *st, checkpt_cmd_t c, uint64_t off) {
  uint64_t first = st->cnt;
  int rc = st_metas(st, c, off);
  if (!rc) rc = st_touch(st);
  if (rc) return rc;
  const wksp_part_t *parts = st_parts_since(st, first);
  uint64_t n = st->cnt - first;
  st_route(st, parts, n);
  if (st->route == ROUTE_FILE && !st->bounce && !(st->bounce = malloc(CHECKPT_COPY_BUF)))
    return wksp_err(WKSP_ERR_NOMEM, 0, "%s: copy buffer", st->what);
  rc = st->route == ROUTE_FILE
           ? wksp_private_checkpt_frame_to_file(st->r, st->route_fd, st->route_off, st->bounce, st->m, parts, n)
           : st_data(st->w, st->m, st->r, parts, n);
  if (rc) return st_fail(st, rc, "allocation bytes");
  rc = wksp_frame_reader_close(st->r, NULL);
  if (rc) return st_fail(st, rc, "close");
  st_cgroup_done(st, off, first);
  return WKSP_SUCCESS;
}

static int st_appendix(stream_t *st, const checkpt_cmd_t *c, uint64_t off, uint64_t *prev_app) {
  if (c->b != *prev_app)
    return wksp_err(WKSP_ERR_CORRUPT, 0,
                    "%s: appendix at %" PRIu64 " links to %" PRIu64 ", expected %" PRIu64, st->what, off,
                    c->b, *prev_app);
  uint64_t n = st->vol_n;
  if (st->volumes == checkpt_frames_max(st->hdr.part_max)) /* a limit of checkpt_private.h */
    return wksp_err(WKSP_ERR_CORRUPT, 0, "%s: appendix at %" PRIu64 ": more than %" PRIu64 " volumes",
                    st->what, off, st->volumes);
  if (c->a != n)
    return wksp_err(WKSP_ERR_CORRUPT, 0,
                    "%s: appendix at %" PRIu64 " counts %" PRIu64 " cgroups, saw %" PRIu64, st->what, off,
                    c->a, n);
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
    if (checkpt_ld64(arr + 8 * i) != st->vol_off[i] || checkpt_ld64(arr + 8 * (n + i)) != st->vol_cnt[i])
      rc = wksp_err(WKSP_ERR_CORRUPT, 0, "%s: appendix at %" PRIu64 " disagrees with cgroup frame %" PRIu64,
                    st->what, off, i);
  free(arr);
  *prev_app = off;
  st->vol_n = 0;
  st->volumes++;
  return rc;
}

static int st_footer(stream_t *st, uint64_t vol_off) {
  uint8_t b[CHECKPT_FTR_SZ];
  uint64_t off = 0;
  int rc = wksp_frame_reader_open(st->r, WKSP_FRAME_RAW, &off);
  if (!rc) rc = wksp_frame_reader_data(st->r, b, sizeof b);
  if (!rc) rc = wksp_frame_reader_close(st->r, NULL);
  if (rc) return st_fail(st, rc, "footer");
  off += st->base_off;
  checkpt_ftr_t f;
  wksp_private_checkpt_ftr_decode(&f, b);
  rc = wksp_private_checkpt_ftr_check(&f, &st->hdr, off + CHECKPT_FTR_SZ, st->what);
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
  uint8_t info[CHECKPT_INFO_SZ];
  int rc = wksp_frame_reader_open(st->r, st->hdr.frame_style, NULL);
  if (!rc) rc = wksp_frame_reader_meta(st->r, info, sizeof info);
  if (rc) return st_fail(st, rc, "info frame");
  checkpt_info_t I;
  wksp_private_checkpt_info_decode(&I, info);
  uint64_t blob_sz;
  rc = wksp_private_checkpt_info_check(&I, &blob_sz, st->what);
  if (rc) return rc;
  uint8_t *blob = malloc(blob_sz);
  if (!blob) return wksp_err(WKSP_ERR_NOMEM, 0, "%s: info", st->what);
  rc = wksp_frame_reader_data(st->r, blob, blob_sz);
  if (!rc) rc = wksp_frame_reader_close(st->r, end);
  if (rc) rc = st_fail(st, rc, "info strings");
  if (!rc) rc = wksp_private_checkpt_info_blob_check(&I, blob, st->what);
  if (!rc) {
    uint64_t at = 0; /* the build info: the eighth string, NUL included in its size */
    for (int k = 0; k < CHECKPT_S_BINFO; k++) at += I.sz[k];
    wksp_private_checkpt_seal_read(&st->seal, I.app_id, (const char *)blob + at,
                                I.sz[CHECKPT_S_BINFO] - 1);
    /* before the target is touched, as on the file path */
    rc = wksp_private_checkpt_seal_gate(&st->seal, st->o->require_seal, st->what);
  }
  free(blob);
  return rc;
}

/* After the last frame: the allocations must not overlap and must fit;
 * then they replace the target's. */
static int st_finish(stream_t *st) {
  if (st->cnt) qsort(st->parts, st->cnt, sizeof *st->parts, cmp_part);
  for (uint64_t k = 1; k < st->cnt; k++)
    if (st->parts[k].gaddr_lo < st->parts[k - 1].gaddr_hi)
      return wksp_err(WKSP_ERR_CORRUPT, 0, "%s: allocations at %" PRIu64 " and %" PRIu64 " overlap", st->what,
                      st->parts[k - 1].gaddr_lo, st->parts[k].gaddr_lo);
  if (!st->touched) {
    int rc = wksp_private_replace_check(st->w, st->parts, st->cnt);
    if (rc) return wksp_err_wrap(rc, "restore %s", st->what);
    rc = st_touch(st);
    if (rc) return rc;
  }
  int file = st->route == ROUTE_FILE;
  return wksp_private_checkpt_target_finish(st->w, st->parts, st->cnt, &st->seal, st->o, file ? st->route_fd : -1,
                                            st->route_off, st->what);
}

/* The volumes command c opened at off: it must point at the last appendix. */
static int st_volumes(stream_t *st, const checkpt_cmd_t *c, uint64_t off, uint64_t prev_app) {
  if (c->b != prev_app || st->vol_n)
    return wksp_err(WKSP_ERR_CORRUPT, 0,
                    "%s: volumes command at %" PRIu64 " does not follow the last "
                    "appendix",
                    st->what, off);
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
    checkpt_cmd_t c;
    rc = wksp_frame_reader_open(st->r, fsc, &off);
    if (rc) return st_fail(st, rc, "frame");
    off += STREAM_BASE;
    rc = st_cmd(st, &c);
    if (rc) return rc;
    if (checkpt_cmd_is_volumes(&c)) {
      rc = st_volumes(st, &c, off, prev_app);
      if (!rc) rc = st_footer(st, off);
      break;
    }
    if (checkpt_cmd_is_appendix(&c)) rc = st_appendix(st, &c, off, &prev_app);
    else if (checkpt_cmd_is_meta(&c) || checkpt_cmd_is_data(&c)) rc = st_cgroup(st, c, off);
    else
      rc = wksp_err(WKSP_ERR_CORRUPT, 0, "%s: invalid command at %" PRIu64, st->what, off);
  }
  return rc ? rc : st_finish(st);
}

/* ---- pipelined stream path (v3, threads >= 2) -------------------------------------
 *
 * The calling thread reads the stream into a window and finds where each
 * cgroup frame ends without decoding its data: it decodes the frame's
 * commands (which give every allocation's size, hence the exact sequence of
 * LZ4 chunk sizes) and then walks the 3-byte chunk headers.  The frame's
 * bytes are handed to a worker that decodes them into the target while the
 * calling thread goes on reading; when every worker is busy the calling
 * thread decodes the oldest waiting frame itself.  A frame whose end is not
 * found within tuning.pipe_frame_max (8 MiB) of the window's
 * start is not buffered whole: the calling thread decodes it as it reads
 * it (the window's bytes first, then the pipe), while the workers go on
 * with the frames queued before it.  Memory: at most 3 x threads buffers of
 * at most 8 MiB (+ 1 MiB of read slack) each (the window, frames queued and
 * being decoded, and up to `threads` spare buffers kept for reuse),
 * whatever the frame sizes.  The checks are those of the sequential path;
 * the target is reset before the first frame is handed out.
 *
 * Why 8 MiB and why v3 only: every buffer is fresh memory, paid a page
 * fault per 4 KiB at first touch, and buffers live for one call.  With
 * 64 MiB a 1 GiB restore from a pipe on 2 threads took about 80k faults
 * and 1.1-2.4 s against 0.25-0.40 s on 1 thread (test machine, frames of
 * about 64 MiB); with 8 MiB those frames go through the calling thread
 * (2 threads as fast as 1) and workspaces of small frames still gain (1
 * GiB of 64-256 KiB allocations, v3: 0.32 s on 2 threads, 0.42 s on 1).
 * A v2 stream is never pipelined: its data is read straight into the
 * target by the sequential reader, one copy, which a window (read, then
 * copied) cannot beat (the same small-frame workspace: 0.40 s pipelined
 * on 2 threads, 0.23 s sequential). */

typedef struct {
  uint8_t *buf; /* owned; the frame is buf[at, at + len) */
  uint64_t cap; /* buf's size */
  uint64_t at, len, off;
  wksp_part_t *parts; /* its allocations, owned */
  uint64_t n;
} pipe_job_t;

#define PIPE_QUEUE_MAX WKSP_CHECKPT_THREADS_MAX

struct pipe_state {
  stream_t *st; /* the reading thread's; workers use only the copies below */
  wksp_t *w;    /* copies of st's fields that never change, for the workers */
  int frame_style;
  wksp_prefault_t pf; /* a copy: the reading thread snapshots and restores *st */
  const char *what;
  int fd, eof;
  uint8_t *buf; /* window: checkpoint bytes [base, base + len) */
  uint64_t cap, base, len;
  pthread_mutex_t lock;
  pthread_cond_t cv;
  pipe_job_t q[PIPE_QUEUE_MAX];
  uint64_t q_head, q_cnt, q_max;
  int stop;
  uint32_t left; /* workers that returned */
  checkpt_progress_t *m; /* the call's progress (set before the workers start) */
  wksp_err_saved_t err; /* the first failure of a worker or the reader */
  /* Buffers of decoded frames, reused as windows (fresh memory would cost
   * a page fault per 4 KiB of every frame). */
  uint8_t *spare[PIPE_QUEUE_MAX];
  uint64_t spare_cap[PIPE_QUEUE_MAX];
  uint32_t spare_cnt;
  /* st's route, copied once decided (before the first frame is handed
   * out), and CHECKPT_COPY_BUF buffers for the threads decoding, reused */
  int route, route_fd;
  uint64_t route_off;
  uint8_t *bounce[WKSP_CHECKPT_THREADS_MAX];
  uint32_t bounce_cnt;
};

/* Reads until the window holds checkpoint offset `want` (excluded) or the
 * stream ends; reads whatever is available beyond. */
static int win_fill(struct pipe_state *ps, uint64_t want) {
  while (ps->base + ps->len < want && !ps->eof) {
    uint64_t need = want - ps->base;
    if (need > ps->cap) {
      uint64_t cap = ps->cap * 2 > need ? ps->cap * 2 : need, lim = wksp_private_checkpt_tuning.pipe_frame_max;
      if (cap > lim && need <= lim) cap = lim; /* the bound of the header comment */
      uint8_t *b = realloc(ps->buf, cap);
      if (!b)
        return wksp_err(WKSP_ERR_NOMEM, 0, "%s: %" PRIu64 "-byte window", ps->st->what, cap);
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
    int rc =
        wksp_frame_reader_init_mem(&st->r, ps->buf + (off - ps->base), ps->base + ps->len - off);
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
  wksp_err_keep(&ps->err, rc);
  pthread_mutex_unlock(&ps->lock);
}

/* ROUTE_FILE: the bytes through a bounce buffer taken from the pool (one
 * per decoding thread at most) and given back. */
static int pipe_data_file(struct pipe_state *ps, wksp_frame_reader_t *r, const wksp_part_t *parts, uint64_t n) {
  pthread_mutex_lock(&ps->lock);
  uint8_t *b = ps->bounce_cnt ? ps->bounce[--ps->bounce_cnt] : NULL;
  pthread_mutex_unlock(&ps->lock);
  if (!b && !(b = malloc(CHECKPT_COPY_BUF))) return wksp_err(WKSP_ERR_NOMEM, 0, "%s: copy buffer", ps->what);
  int rc = wksp_private_checkpt_frame_to_file(r, ps->route_fd, ps->route_off, b, ps->m, parts, n);
  pthread_mutex_lock(&ps->lock);
  if (ps->bounce_cnt < WKSP_CHECKPT_THREADS_MAX) ps->bounce[ps->bounce_cnt++] = b, b = NULL;
  pthread_mutex_unlock(&ps->lock);
  free(b);
  return rc;
}

/* Decodes the cgroup frame at r's position, whose n allocations are
 * parts[0, n) (commands already checked), into the target; *end gets the
 * reader's offset after it. */
static int pipe_decode(struct pipe_state *ps, wksp_frame_reader_t *r, const wksp_part_t *parts,
                       uint64_t n, uint64_t *end) {
  int rc = wksp_frame_reader_open(r, ps->frame_style, NULL);
  uint8_t b[CHECKPT_CMD_SZ];
  for (uint64_t k = 0; !rc && k <= n; k++) rc = wksp_frame_reader_meta(r, b, sizeof b);
  if (!rc && ps->route == ROUTE_FILE) {
    rc = pipe_data_file(ps, r, parts, n);
  } else {
    if (!rc) wksp_private_prefault_parts_with(ps->w, &ps->pf, parts, n, 1);
    if (!rc) rc = st_data(ps->w, ps->m, r, parts, n);
  }
  if (!rc) rc = wksp_frame_reader_close(r, end);
  return rc;
}

/* Decodes a job's frame into the target (unless something already failed). */
static void pipe_run(struct pipe_state *ps, pipe_job_t *j) {
  pthread_mutex_lock(&ps->lock);
  int skip = ps->err.err != 0;
  pthread_mutex_unlock(&ps->lock);
  wksp_frame_reader_t *r = NULL;
  uint64_t end = 0;
  int rc = skip ? WKSP_SUCCESS : wksp_frame_reader_init_mem(&r, j->buf + j->at, j->len);
  if (!skip && !rc) rc = pipe_decode(ps, r, j->parts, j->n, &end);
  if (!skip && !rc && end != j->len)
    rc = wksp_err(WKSP_ERR_CORRUPT, 0, "frame ends at %" PRIu64 ", expected %" PRIu64, (j->off + end),
                  (j->off + j->len));
  if (rc) {
    rc = wksp_err_short_is_corrupt(rc); /* the frame's bytes are all there */
    wksp_err_where(rc, "%s: cgroup frame at %" PRIu64, ps->what, j->off);
    pipe_err(ps, rc);
  }
  wksp_frame_reader_fini(r);
  pthread_mutex_lock(&ps->lock);
  if (ps->spare_cnt < ps->q_max + 1) { /* part of the memory bound */
    ps->spare[ps->spare_cnt] = j->buf;
    ps->spare_cap[ps->spare_cnt++] = j->cap;
    j->buf = NULL;
  }
  pthread_mutex_unlock(&ps->lock);
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
  ps->left++;
  pthread_mutex_unlock(&ps->lock);
  wksp_private_checkpt_progress_wake(ps->m);
  return NULL;
}

typedef struct {
  struct pipe_state *ps;
  uint32_t started;
} pipe_wait_t;

static int pipe_all_left(void *arg) {
  const pipe_wait_t *x = arg;
  pthread_mutex_lock(&x->ps->lock);
  int all = x->ps->left == x->started;
  pthread_mutex_unlock(&x->ps->lock);
  return all;
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
  checkpt_cmd_t c;
  int rc = wksp_frame_reader_open(st->r, st->hdr.frame_style, NULL);
  if (rc) return st_fail(st, rc, "frame");
  rc = st_cmd(st, &c);
  if (rc) return rc;
  if (checkpt_cmd_is_volumes(&c)) {
    f->kind = 2;
    rc = st_volumes(st, &c, off, *f->prev_app);
  } else if (checkpt_cmd_is_appendix(&c)) {
    f->kind = 1;
    rc = st_appendix(st, &c, off, f->prev_app);
  } else if (checkpt_cmd_is_meta(&c) || checkpt_cmd_is_data(&c)) {
    f->kind = 0;
    f->first = st->cnt;
    rc = st_metas(st, c, off);
    f->data = off + wksp_frame_reader_offset(st->r);
    return rc;
  } else {
    return wksp_err(WKSP_ERR_CORRUPT, 0, "%s: invalid command at %" PRIu64, st->what, off);
  }
  f->end = off + wksp_frame_reader_offset(st->r);
  return rc;
}

static int pipe_footer(stream_t *st, uint64_t off, void *arg) {
  (void)off;
  return st_footer(st, *(uint64_t *)arg);
}

/* Where the cgroup frame whose data starts at `at` ends: walks the LZ4
 * chunk headers of allocations parts[first, cnt).  *end = 0
 * (and SUCCESS) when the frame does not end within
 * tuning.pipe_frame_max bytes of the window's start. */
static int pipe_walk(struct pipe_state *ps, uint64_t first, uint64_t at, uint64_t *end) {
  stream_t *st = ps->st;
  uint64_t lim = ps->base + wksp_private_checkpt_tuning.pipe_frame_max;
  int rc = WKSP_SUCCESS;
  *end = 0;
  for (uint64_t k = first; !rc && k < st->cnt; k++) {
    uint64_t sz = st->parts[k].gaddr_hi - st->parts[k].gaddr_lo;
    while (!rc && sz) {
      uint64_t usz = sz < WKSP_FRAME_CHUNK_MAX ? sz : WKSP_FRAME_CHUNK_MAX;
      if (at + FRAME_CHUNK_HDR > lim) return WKSP_SUCCESS;
      rc = win_fill(ps, at + FRAME_CHUNK_HDR);
      if (rc) break;
      if (ps->base + ps->len < at + FRAME_CHUNK_HDR) break; /* truncated: found below */
      uint64_t csz = frame_chunk_csz(ps->buf + (at - ps->base));
      if (!frame_chunk_csz_ok(csz, usz))
        rc = wksp_err(WKSP_ERR_CORRUPT, 0,
                      "%s: LZ4 chunk at %" PRIu64 " has block size %" PRIu64 " for %" PRIu64 " "
                      "bytes",
                      st->what, at, csz, usz);
      at += FRAME_CHUNK_HDR + csz;
      sz -= usz;
    }
  }
  if (!rc) rc = win_fill(ps, at);
  if (!rc && ps->base + ps->len < at)
    rc = wksp_private_checkpt_truncated(st->what, ps->base + ps->len, at);
  *end = at;
  return rc;
}

/* Hands the frame [off, end) to the workers; the window keeps what follows. */
static int pipe_dispatch(struct pipe_state *ps, uint64_t off, uint64_t end, uint64_t first) {
  stream_t *st = ps->st;
  uint64_t n = st->cnt - first, rest = ps->base + ps->len - end;
  pipe_job_t j = {
      .buf = ps->buf, .cap = ps->cap, .at = off - ps->base, .len = end - off, .off = off, .n = n};
  j.parts = malloc((n ? n : 1) * sizeof *j.parts);
  uint64_t cap = rest > (1u << 20) ? rest : 1u << 20;
  uint8_t *nb = NULL;
  pthread_mutex_lock(&ps->lock);
  if (ps->spare_cnt && ps->spare_cap[ps->spare_cnt - 1] >= cap) {
    nb = ps->spare[--ps->spare_cnt];
    cap = ps->spare_cap[ps->spare_cnt];
  }
  pthread_mutex_unlock(&ps->lock);
  if (!nb) nb = malloc(cap);
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

/* The cgroup frame at off, too large for the window, decoded by the calling
 * thread as it is read: the window's bytes from off, then the pipe.  The
 * window then holds what the reader read beyond the frame. */
static int pipe_stream_frame(struct pipe_state *ps, uint64_t off, uint64_t first, uint64_t *end) {
  stream_t *st = ps->st;
  wksp_frame_reader_t *r = NULL;
  uint64_t len = 0;
  int rc = st_touch(st);
  if (!rc)
    rc = wksp_private_frame_reader_init_fd_prefix(&r, ps->fd, ps->buf + (off - ps->base),
                                                  ps->base + ps->len - off);
  if (!rc) rc = pipe_decode(ps, r, st_parts_since(st, first), st->cnt - first, &len);
  if (!rc) {
    const uint8_t *rest;
    size_t n;
    wksp_private_frame_reader_buffered(r, &rest, &n);
    if (n > ps->cap) { /* cannot happen: read-ahead <= 256 KiB <= the window */
      rc = wksp_err(WKSP_ERR_NOMEM, 0, "%s: window", st->what);
    } else {
      memmove(ps->buf, rest, n);
      ps->base = off + len;
      ps->len = n;
      *end = off + len;
      st_cgroup_done(st, off, first);
    }
  } else if (rc != WKSP_ERR_NOMEM) {
    rc = st_fail_at(st, r, off, rc, "cgroup frame");
  }
  wksp_frame_reader_fini(r);
  return rc;
}

static int pipe_frames(struct pipe_state *ps) {
  stream_t *st = ps->st;
  uint64_t off = STREAM_BASE, prev_app = 0;
  int rc = pipe_probe(ps, off, pipe_info, &off);
  while (!rc) {
    pthread_mutex_lock(&ps->lock);
    int failed = ps->err.err;
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
    if (st->vol_n == CHECKPT_CGROUP_MAX)
      return wksp_err(WKSP_ERR_CORRUPT, 0, "%s: more than %" PRIu64 " cgroup frames in a volume", st->what,
                      (uint64_t)CHECKPT_CGROUP_MAX);
    uint64_t end = 0;
    rc = pipe_walk(ps, f.first, f.data, &end);
    if (!rc && !ps->route) { /* the first cgroup frame: no job is out yet */
      st_route(st, st_parts_since(st, f.first), st->cnt - f.first);
      ps->route = st->route;
      ps->route_fd = st->route_fd;
      ps->route_off = st->route_off;
    }
    if (!rc && end) rc = pipe_dispatch(ps, off, end, f.first);
    else if (!rc) rc = pipe_stream_frame(ps, off, f.first, &end);
    off = end;
  }
  return rc;
}

/* Lock held; header checked (the caller read it): the pipelined body. */
static int st_body_pipelined(stream_t *st, int fd, uint32_t threads) {
  struct pipe_state *ps = calloc(1, sizeof *ps);
  if (!ps) return wksp_err(WKSP_ERR_NOMEM, 0, "%s: pipeline", st->what);
  ps->st = st;
  ps->w = st->w;
  ps->pf = st->pf;
  ps->m = st->m;
  ps->frame_style = st->hdr.frame_style;
  ps->what = st->what;
  ps->fd = fd;
  ps->base = STREAM_BASE;
  ps->cap = 1 << 20;
  ps->buf = malloc(ps->cap);
  ps->q_max = threads - 1 < PIPE_QUEUE_MAX ? threads - 1 : PIPE_QUEUE_MAX;
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
  wksp_private_checkpt_progress_wait(ps->m, pipe_all_left, &(pipe_wait_t){ps, started});
  for (uint32_t t = 0; t < started; t++) pthread_join(th[t], NULL);
  if (!rc) rc = wksp_err_kept(&ps->err);
  if (!rc) rc = st_finish(st);
  pthread_cond_destroy(&ps->cv);
  pthread_mutex_destroy(&ps->lock);
  for (uint32_t i = 0; i < ps->spare_cnt; i++) free(ps->spare[i]);
  for (uint32_t i = 0; i < ps->bounce_cnt; i++) free(ps->bounce[i]);
  free(ps->buf);
  free(ps);
  return rc;
}

int wksp_private_checkpt_restore_stream(wksp_t *w, checkpt_input_t *in, const checkpt_hdr_t *h,
                                       const wksp_restore_opts_t *o) {
  stream_t st = {.w = w, .what = in->label, .o = o, .hdr = *h, .base_off = STREAM_BASE, .route_fd = -1};
  wksp_private_prefault_open(&st.pf);
  st.vol_off = malloc(2 * CHECKPT_CGROUP_MAX * sizeof *st.vol_off);
  st.vol_cnt = st.vol_off ? st.vol_off + CHECKPT_CGROUP_MAX : NULL;
  int pipelined = o->threads >= 2 && h->frame_style == WKSP_FRAME_LZ4; /* why: the pipelined path's comment */
  checkpt_progress_t m;
  wksp_private_checkpt_progress_init(&m, o->progress, o->progress_ctx, 0);
  st.m = &m;
  int rc = !st.vol_off ? wksp_err(WKSP_ERR_NOMEM, 0, "restore %s", in->label)
           : pipelined ? WKSP_SUCCESS
                       : wksp_frame_reader_init_fd(&st.r, in->fd);
  if (!rc) {
    rc = wksp_private_checkpt_lock(w, o->lock_wait, o->lock_wait_ctx, in->fd, "restore", in->label);
    if (!rc) {
      rc = pipelined ? st_body_pipelined(&st, in->fd, o->threads) : st_body(&st);
      if (rc && st.touched) {
        wksp_private_reset(w, o->seed);
        rc = wksp_private_checkpt_after_reset(rc);
      }
      wksp_private_unlock(w);
      if (!rc) wksp_private_checkpt_progress_end(&m, st.alloc_sz); /* the total, now known */
    }
  }
  wksp_private_checkpt_progress_fini(&m);
  wksp_frame_reader_fini(st.r);
  wksp_private_prefault_close(&st.pf);
  if (st.route_fd >= 0) close(st.route_fd);
  free(st.bounce);
  free(st.vol_off);
  free(st.parts);
  return rc;
}
