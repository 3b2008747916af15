/* The parallel LZ4 cgroup frames of a checkpoint (write.c writes the rest).
 *
 * `threads` workers (the pool: the calling thread and threads - 1 others)
 * encode cgroup frames, taken in increasing order, each with a frame writer
 * in regions mode: LZ4 output goes straight into 2 MiB output blocks.  One
 * more thread, the output thread, writes the blocks to the fd strictly in
 * file order, several per writev, as soon as they are full: compression and
 * write(2) overlap, and nothing is copied between compressor and fd.  A
 * frame's bytes do not depend on its position (LZ4 history restarts at
 * every frame), so the file is byte-identical for every thread count.
 *
 * Splitting frames.  Whole frames are too coarse to keep every core busy to
 * the end (15 frames on 2 threads: one thread compresses 8, the other waits
 * for the last one), and a workspace of a few huge allocations has fewer
 * frames than cores.  So a worker with no frame left to start takes the
 * second half of the running segment with the most input left (at a chunk
 * boundary, if at least tuning.split_min bytes (4 MiB) remain): a new
 * segment.  Its worker re-compresses up to tuning.warm_sz bytes (256 KiB)
 * before the split point without output (warm-up), records the LZ4 history
 * state it reached there, and goes on compressing its half.  The first
 * worker, on reaching the split point, compares its own state with that
 * record (frame_private.h: equal states give identical bytes from there
 * on): equal, its part ends there and the second's bytes follow; not equal
 * (rare: the warm-up did not reproduce the history), it takes the second
 * half back and compresses it itself, and the second worker's output is
 * dropped.  The file is the same either way.  A segment checks for a split
 * point every SLICE bytes.
 *
 * Memory bound (blocks in use: being filled, waiting, being written):
 *   - the head segment (the first one not fully written) may hold at most
 *     HEAD_BLKS blocks: its worker waits for the output thread beyond that;
 *   - the other segments, all together (and with the head's blocks beyond
 *     HEAD_BLKS), at most (threads - 1) x tuning.par_buf_max
 *     (32 MiB) of blocks: a worker ahead of the head waits for the output
 *     thread beyond that.
 * The head's worker waits for no other worker (except for a split-off
 * half's warm-up, which waits for nothing) and the output thread only for
 * the head, so the pipeline always progresses.  Total: at most HEAD_BLKS +
 * max(1, (threads - 1) x 16) blocks, i.e. (threads - 1) x 32 MiB + 8 MiB
 * (10 MiB for one worker), plus ~470 KiB of frame writer state per worker
 * and 16 KiB per split (a split needs an idle worker, so there are a few
 * per thread), whatever the workspace size.
 *
 * Why 32 MiB: a worker ahead of the head runs ahead by a whole frame (text:
 * ~60 MB of input, ~37 MiB of output) while the head's worker finishes its
 * own; with 16 MiB it stopped halfway and a core idled (1 GiB of text on 2
 * threads: 1.27-1.33 s; 32-64 MiB: 1.10-1.24 s, best of 6, this machine).
 * Blocks are fresh memory in each call, so each is one 2 MiB-aligned run
 * with transparent huge pages asked for (blk_new): 30-130 page faults a
 * checkpoint instead of 5-16k, which made 64 MiB slower than 16 before
 * (18.5k faults for 1 GiB of random bytes on 2 threads).  Without huge
 * pages 32 MiB is still no slower than 16 (1.29-1.35 s against 1.37-1.45). */

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/uio.h>

#include "checkpt_private.h"
#include "frame/frame_private.h"
#include "util/err.h"
#include "util/io.h"
#include "../wksp/wksp_private.h"


enum {
  OUT_BLK_SZ = 2 << 20, /* output block (a multiple of the page size) */
  HEAD_BLKS = 4,        /* blocks the head segment may hold */
  OUT_IOV_MAX = 1024,   /* blocks per writev (IOV_MAX) */
  SLICE = 1 << 20       /* input bytes compressed between checks for a split */
};

typedef struct seg seg_t;

typedef struct out_blk {
  struct out_blk *next;
  size_t used;
  seg_t *seg;
  uint8_t *mem; /* OUT_BLK_SZ bytes, aligned to OUT_BLK_SZ */
} out_blk_t;

/* A block's memory is one 2 MiB-aligned run with transparent huge pages
 * asked for: one page fault per block instead of 512 where the kernel
 * gives them (THP "madvise" or "always"), 4 KiB pages otherwise. */
static out_blk_t *blk_new(void) {
  out_blk_t *b = malloc(sizeof *b);
  if (!b) return NULL;
  b->mem = aligned_alloc(OUT_BLK_SZ, OUT_BLK_SZ);
  if (!b->mem) {
    free(b);
    return NULL;
  }
#ifdef MADV_HUGEPAGE
  (void)madvise(b->mem, OUT_BLK_SZ, MADV_HUGEPAGE);
#endif
  return b;
}

static void blk_del(out_blk_t *b) {
  if (b) free(b->mem);
  free(b);
}

enum { SEG_WARMING, SEG_RUNNING, SEG_DROPPED };

/* A part of a cgroup frame: the frame's allocation bytes [lo, end). */
struct seg {
  seg_t *next;             /* the segment starting at end (NULL: end is the frame's end) */
  seg_t *all;              /* every segment ever made, for freeing */
  uint64_t g, lo, end;     /* end shrinks when split, grows when a split is undone */
  uint64_t pos;            /* where its worker checks next for a split point */
  int state;
  int closed;              /* its worker is done: end, sz and the blocks are final */
  out_blk_t *first, *last; /* full blocks waiting for the output thread */
  uint64_t live;           /* blocks not yet freed */
  uint64_t sz;             /* output bytes, once closed */
  uint64_t counted;        /* allocation bytes it added to the progress (undone if dropped) */
  wksp_private_frame_lz4_state_t *snap; /* split-off halves: the history state at lo */
};

typedef struct {
  const checkpt_plan_t *pl;
  const checkpt_writer_t *cw;
  int fd;
  uint64_t pos0; /* checkpoint offset of the first cgroup frame */
  checkpt_progress_t m;    /* bytes compressed, reported by the calling thread */
  pthread_mutex_t lock;
  pthread_cond_t out_cv;  /* the output thread waits here for blocks */
  pthread_cond_t room_cv; /* workers wait here for the output thread */
  pthread_cond_t seg_cv;  /* a worker waits here for a split-off half's warm-up */
  seg_t **cg;             /* per cgroup: its first segment, once started */
  uint64_t *cg_sz;        /* per cgroup: allocation bytes */
  uint64_t next_g;        /* next cgroup to start */
  seg_t *all;
  out_blk_t *free_blks;   /* written blocks, reused (fresh memory costs page faults) */
  uint64_t live;          /* blocks allocated and not freed */
  uint64_t peak;          /* the most live blocks at once (tests check the bound) */
  uint64_t budget;        /* blocks the non-head segments may hold together */
  uint64_t head;          /* lowest cgroup not fully written */
  seg_t *head_seg;        /* its first segment not fully written (NULL: not started) */
  int can_split;          /* the frame writer can hand LZ4 history over */
  int failed;             /* a worker or the output thread failed: everyone stops */
  wksp_err_saved_t out_err; /* the output thread's failure */
} par_t;

typedef struct {
  par_t *par;
  seg_t *seg;
  out_blk_t *cur;  /* block being filled (NULL before the first) */
  uint64_t handed; /* output bytes of the blocks already handed back */
} seg_out_t;

static void par_fail_locked(par_t *p) {
  p->failed = 1;
  pthread_cond_broadcast(&p->room_cv);
  pthread_cond_broadcast(&p->seg_cv);
  pthread_cond_signal(&p->out_cv);
}

static void blk_free_locked(par_t *p, out_blk_t *b) {
  b->seg->live--;
  p->live--;
  b->next = p->free_blks;
  p->free_blks = b;
  pthread_cond_broadcast(&p->room_cv);
}

/* Frees the blocks s has queued (a dropped or failed segment's). */
static void seg_free_blocks_locked(par_t *p, seg_t *s) {
  while (s->first) {
    out_blk_t *b = s->first;
    s->first = b->next;
    blk_free_locked(p, b);
  }
  s->last = NULL;
}

/* Queues a block for the output thread (an empty one is freed). */
static void blk_publish_locked(par_t *p, out_blk_t *b, size_t used) {
  seg_t *s = b->seg;
  b->used = used;
  b->next = NULL;
  if (!used) {
    blk_free_locked(p, b);
    return;
  }
  if (s->last) s->last->next = b;
  else s->first = b;
  s->last = b;
  if (s == p->head_seg || !p->head_seg) pthread_cond_signal(&p->out_cv);
}

/* A segment that becomes the head may hold more than HEAD_BLKS blocks
 * (taken before, as a non-head one): the excess still counts against the
 * budget of the others until it is written, which keeps the total within
 * budget + HEAD_BLKS. */
static int may_take_blk_locked(const par_t *p, const seg_t *s) {
  uint64_t head_live = p->head_seg ? p->head_seg->live : 0;
  if (s == p->head_seg) return head_live < HEAD_BLKS;
  return p->live - (head_live < HEAD_BLKS ? head_live : HEAD_BLKS) < p->budget;
}

/* The frame writer's region callback: hands the full block back to the
 * output thread and takes a fresh one, waiting for room if needed. */
static int seg_region(void *ctx, uint8_t *full, size_t used, uint8_t **mem, size_t *sz) {
  seg_out_t *c = ctx;
  par_t *p = c->par;
  seg_t *s = c->seg;
  int e = 0;
  (void)full; /* = c->cur->mem */
  pthread_mutex_lock(&p->lock);
  if (c->cur) {
    blk_publish_locked(p, c->cur, used);
    c->handed += used;
    c->cur = NULL;
  }
  while (!p->failed && s->state != SEG_DROPPED && !may_take_blk_locked(p, s))
    pthread_cond_wait(&p->room_cv, &p->lock);
  out_blk_t *b = NULL;
  if (p->failed || s->state == SEG_DROPPED) e = ECANCELED;
  else if (p->free_blks) {
    b = p->free_blks;
    p->free_blks = b->next;
  } else if (!(b = blk_new()))
    e = ENOMEM;
  if (b) {
    b->seg = s;
    s->live++;
    p->live++;
    if (p->live > p->peak) p->peak = p->live;
    c->cur = b;
    *mem = b->mem;
    *sz = OUT_BLK_SZ;
  }
  pthread_mutex_unlock(&p->lock);
  return e;
}

static seg_t *seg_new_locked(par_t *p, uint64_t g, uint64_t lo, uint64_t end, int state) {
  seg_t *s = calloc(1, sizeof *s);
  if (!s) return NULL;
  *s = (seg_t){.g = g, .lo = lo, .end = end, .pos = lo, .state = state, .all = p->all};
  p->all = s;
  return s;
}

/* A split point in the second half of s's remaining input (a chunk
 * boundary), or 0 when too little remains. */
static uint64_t split_point_locked(const par_t *p, const seg_t *s) {
  if (s->end - s->pos < wksp_private_checkpt_tuning.split_min || s->end - s->pos < 2 * FRAME_CHUNK) return 0;
  uint64_t mid = s->pos + (s->end - s->pos) / 2, k, off;
  wksp_private_checkpt_plan_locate(p->pl, s->g, mid, &k, &off);
  uint64_t m = mid - off + off / FRAME_CHUNK * FRAME_CHUNK;
  return m > s->pos && m > s->lo ? m : 0;
}

/* Splits the running segment with the most input left; the new second
 * half (state WARMING) is the caller's to compress, or NULL. */
static seg_t *split_locked(par_t *p) {
  if (!p->can_split) return NULL;
  seg_t *v = NULL;
  for (seg_t *s = p->all; s; s = s->all)
    if (s->state == SEG_RUNNING && !s->closed && (!v || s->end - s->pos > v->end - v->pos)) v = s;
  uint64_t m = v ? split_point_locked(p, v) : 0;
  if (!m) return NULL;
  seg_t *n = seg_new_locked(p, v->g, m, v->end, SEG_WARMING);
  if (!n) return NULL; /* no memory for a split: the first worker just goes on */
  n->next = v->next;
  v->next = n;
  v->end = m;
  checkpt_hook(CHECKPT_HOOK_SPLIT, &(checkpt_hook_t){.a = 1});
  return n;
}

/* A split-off half: sets the ring cursor the frame has where the warm-up
 * starts (up to tuning.warm_sz bytes before lo, at a chunk
 * boundary, not before the first allocation), then re-compresses the bytes
 * from there to lo as history only.  *warmed: some were. */
/* Where a segment's worker reads allocation bytes: the mapping, or (a
 * process that does not map the workspace: write.c source_choose) the
 * region's file, read into a buffer of SLICE bytes.  Through the buffer
 * the frame writer runs in exact mode (every chunk through its ring, as
 * the reference), so that it never keeps a pointer into the buffer once a
 * call returns: the bytes are the same (frame_private.h), and pieces of
 * SLICE bytes (a multiple of the chunk) from a chunk boundary cut the
 * data into the same chunks. */
typedef struct {
  const checkpt_plan_t *pl;
  int fd;        /* -1: the mapping */
  uint64_t off0; /* file offset of gaddr 0 */
  uint8_t *buf;  /* SLICE bytes (fd >= 0) */
} seg_src_t;

/* n <= SLICE bytes of allocation q from its offset off on. */
static int seg_src_get(seg_src_t *src, const wksp_part_t *q, uint64_t off, uint64_t n, const uint8_t **out) {
  if (src->fd < 0) {
    *out = (const uint8_t *)wksp_laddr(src->pl->w, q->gaddr_lo) + off;
    return WKSP_SUCCESS;
  }
  *out = src->buf;
  return wksp_private_region_get(src->fd, src->off0 + q->gaddr_lo + off, src->buf, n);
}

static int seg_warm(seg_src_t *src, const seg_t *s, wksp_frame_writer_t *fw, int *warmed) {
  const checkpt_plan_t *pl = src->pl;
  uint64_t g = s->g, want = wksp_private_checkpt_tuning.warm_sz;
  uint64_t from = s->lo > want ? s->lo - want : 0, k, off;
  wksp_private_checkpt_plan_locate(pl, g, from, &k, &off);
  uint64_t x = from - off % FRAME_CHUNK;
  off -= off % FRAME_CHUNK;
  size_t cursor = 0; /* the commands, then every chunk before (k, off) */
  for (uint64_t i = 0; i <= pl->cg_cnt[g]; i++) cursor = frame_ring_next(cursor, CHECKPT_CMD_SZ);
  for (uint64_t i = 0; i <= k; i++) {
    uint64_t sz = i < k ? checkpt_part_sz(checkpt_cg_part(pl, g, i)) : off;
    for (uint64_t o = 0; o < sz; o += FRAME_CHUNK)
      cursor = frame_ring_next(cursor, sz - o < FRAME_CHUNK ? sz - o : FRAME_CHUNK);
  }
  wksp_private_frame_writer_set_cursor(fw, cursor);
  *warmed = x < s->lo;
  int rc = 0;
  for (; !rc && x < s->lo; k++, off = 0) {
    const wksp_part_t *q = checkpt_cg_part(pl, g, k);
    uint64_t n = checkpt_part_sz(q) - off < s->lo - x ? checkpt_part_sz(q) - off : s->lo - x;
    for (uint64_t at = 0; !rc && at < n; at += SLICE) { /* SLICE: a multiple of the chunk */
      uint64_t m = n - at < SLICE ? n - at : SLICE;
      const uint8_t *b = NULL;
      rc = seg_src_get(src, q, off + at, m, &b);
      if (!rc) rc = wksp_private_frame_writer_warm(fw, b, m, at > 0);
    }
    x += n;
  }
  return rc;
}

/* At s's split point: with the second half's warm-up done, compares the
 * history states; equal: s ends here (returns 1); else takes the half back
 * (its worker's output is dropped) and returns 0.  Lock held. */
static int seg_hand_over_locked(par_t *p, seg_t *s, wksp_frame_writer_t *fw,
                                wksp_private_frame_lz4_state_t *mine) {
  seg_t *n = s->next;
  /* s itself may be dropped meanwhile (by its own predecessor, which then
   * owns n): then n is no longer s's business */
  while (n->state == SEG_WARMING && !p->failed && s->state != SEG_DROPPED)
    pthread_cond_wait(&p->seg_cv, &p->lock);
  if (p->failed || s->state == SEG_DROPPED) return 0;
  /* n keeps its record until the end: if s is dropped later, s's own
   * predecessor compares with it again (n may be closed by then, having
   * handed over to its own second half, which stays valid) */
  if (n->state == SEG_RUNNING && mine && !wksp_private_frame_writer_lz4_state(fw, mine) &&
      !memcmp(mine, n->snap, sizeof *mine))
    return 1;
  n->state = SEG_DROPPED;
  wksp_private_checkpt_progress_undo(&p->m, n->counted); /* s compresses them again */
  if (n->closed) seg_free_blocks_locked(p, n); /* its worker is gone */
  pthread_cond_broadcast(&p->room_cv); /* its worker may wait for room ... */
  pthread_cond_broadcast(&p->seg_cv);  /* ... or for its own second half */
  s->end = n->end;
  s->next = n->next;
  checkpt_hook(CHECKPT_HOOK_SPLIT, &(checkpt_hook_t){.a = 0});
  return 0;
}

/* Compresses s's allocation bytes from lo, slice by slice; at its end
 * (which a split may have moved), hands over to the next segment or takes
 * it back.  cont: lo continues the warm-up's last chunk. */
static int seg_data(par_t *p, seg_t *s, seg_src_t *src, wksp_frame_writer_t *fw, int cont) {
  const checkpt_plan_t *pl = p->pl;
  uint64_t x = s->lo, k = 0, off = 0;
  if (x < p->cg_sz[s->g]) wksp_private_checkpt_plan_locate(pl, s->g, x, &k, &off);
  cont = cont && off; /* an allocation's first chunk is never a continuation */
  wksp_private_frame_lz4_state_t *mine = p->can_split ? malloc(sizeof *mine) : NULL;
  int rc = 0;
  uint64_t fresh = 0; /* compressed since the last lock: counted unless dropped */
  for (;;) {
    pthread_mutex_lock(&p->lock);
    uint64_t add = s->state == SEG_DROPPED ? 0 : fresh;
    s->counted += add;
    fresh = 0;
    int done = 0;
    while (!done && x == s->end && s->next && !p->failed && s->state != SEG_DROPPED)
      done = seg_hand_over_locked(p, s, fw, mine);
    if (p->failed || s->state == SEG_DROPPED) {
      pthread_mutex_unlock(&p->lock);
      rc = wksp_err(WKSP_ERR_FAIL, ECANCELED, "checkpt: segment canceled");
      break;
    }
    if (done || x == s->end) {
      pthread_mutex_unlock(&p->lock);
      wksp_private_checkpt_progress_add(&p->m, add);
      break;
    }
    const wksp_part_t *q = checkpt_cg_part(pl, s->g, k);
    uint64_t n = checkpt_part_sz(q) - off;
    if (n > SLICE) n = SLICE;
    if (n > s->end - x) n = s->end - x;
    s->pos = x + n;
    pthread_mutex_unlock(&p->lock);
    wksp_private_checkpt_progress_add(&p->m, add);
    const uint8_t *b = NULL;
    rc = seg_src_get(src, q, off, n, &b);
    if (!rc) rc = wksp_private_frame_writer_data_cont(fw, b, n, cont);
    if (rc) break;
    fresh = n;
    x += n;
    off += n;
    cont = 1;
    if (off == checkpt_part_sz(q)) {
      k++;
      off = 0;
      cont = 0;
    }
  }
  free(mine);
  return rc;
}

/* Warm-up of a split-off half (rc: its writer's set-up); publishes its
 * history state, or drops the half when anything failed: the first worker
 * then compresses it, a failure here is no error of the checkpoint. */
static int seg_start_half(par_t *p, seg_t *s, seg_src_t *src, wksp_frame_writer_t *fw, int rc, int *cont) {
  wksp_private_frame_lz4_state_t *snap = rc ? NULL : malloc(sizeof *snap);
  if (!rc) rc = snap ? seg_warm(src, s, fw, cont) : WKSP_ERR_NOMEM;
  if (!rc && wksp_private_frame_writer_lz4_state(fw, snap)) rc = WKSP_ERR_FAIL;
  pthread_mutex_lock(&p->lock);
  if (rc) {
    s->state = SEG_DROPPED;
    free(snap);
  } else {
    s->snap = snap;
    s->state = SEG_RUNNING;
  }
  pthread_cond_broadcast(&p->seg_cv);
  pthread_mutex_unlock(&p->lock);
  return rc;
}

/* Compresses segment s into output blocks and hands them to the output
 * thread; a dropped segment's blocks are freed. */
static int seg_run(par_t *p, seg_t *s) {
  seg_out_t c = {.par = p, .seg = s};
  seg_src_t src = {.pl = p->pl, .fd = p->cw->src_fd, .off0 = p->cw->src_off};
  wksp_frame_writer_t *fw = NULL;
  int cont = 0, rc = s->lo ? 0 : checkpt_fail_point(s->g);
  if (!rc && src.fd >= 0 && !(src.buf = malloc(SLICE))) rc = wksp_err(WKSP_ERR_NOMEM, 0, "checkpt: read buffer");
  if (!rc) rc = wksp_private_frame_writer_init_regions(&fw, seg_region, &c);
  if (!rc && src.fd >= 0) wksp_private_frame_writer_exact(fw, 1);
  if (!rc) rc = wksp_frame_writer_open(fw, WKSP_FRAME_LZ4, NULL);
  if (s->lo && seg_start_half(p, s, &src, fw, rc, &cont)) {
    wksp_private_frame_writer_drop(fw);
    free(src.buf);
    return WKSP_SUCCESS;
  }
  if (!rc && !s->lo) rc = wksp_private_checkpt_plan_commands(fw, p->pl, s->g);
  if (!rc) rc = seg_data(p, s, &src, fw, cont);
  if (!rc) rc = wksp_frame_writer_close(fw, NULL);
  uint64_t sz = wksp_frame_writer_offset(fw);
  int canceled = rc && wksp_errno() == ECANCELED;
  pthread_mutex_lock(&p->lock);
  int dropped = s->state == SEG_DROPPED;
  if (rc || dropped) {
    if (c.cur) blk_free_locked(p, c.cur);
    seg_free_blocks_locked(p, s);
    if (rc && !dropped) par_fail_locked(p);
  } else {
    if (c.cur) blk_publish_locked(p, c.cur, sz - c.handed);
    s->sz = sz;
    s->closed = 1;
    pthread_cond_signal(&p->out_cv);
  }
  pthread_mutex_unlock(&p->lock);
  wksp_private_frame_writer_drop(fw); /* written out, or given up: nothing to report */
  free(src.buf);
  return rc && !canceled && !dropped ? rc : WKSP_SUCCESS;
}

/* A worker: starts the next cgroup frame, or splits a running segment when
 * none is left, until there is nothing left to split. */
static int par_worker(void *ctx, uint64_t unused) {
  par_t *p = ctx;
  (void)unused;
  int rc = WKSP_SUCCESS;
  while (!rc) {
    pthread_mutex_lock(&p->lock);
    seg_t *s = NULL;
    if (!p->failed && p->next_g < p->pl->C) {
      uint64_t g = p->next_g++;
      if ((s = seg_new_locked(p, g, 0, p->cg_sz[g], SEG_RUNNING))) {
        p->cg[g] = s;
        pthread_cond_signal(&p->out_cv);
      } else {
        par_fail_locked(p);
        rc = wksp_err(WKSP_ERR_NOMEM, 0, "checkpt: segment of cgroup %" PRIu64, g);
      }
    } else if (!p->failed) {
      s = split_locked(p);
    }
    pthread_mutex_unlock(&p->lock);
    if (!s) break;
    rc = seg_run(p, s);
  }
  return rc;
}

static int par_worker_slot(void *ctx, uint64_t i, uint32_t slot) {
  (void)slot;
  return par_worker(ctx, i);
}

/* Output thread: collects the full blocks from the head segment on (across
 * segments that are complete), writes them with one writev, frees them. */
static int out_write(par_t *p, struct iovec *iov, int cnt, uint64_t at, uint64_t sz) {
  int e = 0;
  e = checkpt_hook(CHECKPT_HOOK_WRITE, &(checkpt_hook_t){.a = at, .b = sz});
  if (!e) e = wksp_private_writev_all(p->fd, iov, cnt);
  return e;
}

/* Moves the head past the segments complete and fully written. */
static void head_advance_locked(par_t *p) {
  for (;;) {
    if (p->head == p->pl->C) return;
    if (!p->head_seg) {
      if (!(p->head_seg = p->cg[p->head])) return;
      pthread_cond_broadcast(&p->room_cv);
    }
    seg_t *h = p->head_seg;
    if (!h->closed || h->first) return;
    if (h->next) {
      p->head_seg = h->next;
    } else {
      p->head++;
      p->head_seg = NULL;
    }
    pthread_cond_broadcast(&p->room_cv);
  }
}

static void *out_main(void *arg) {
  par_t *p = arg;
  const checkpt_plan_t *pl = p->pl;
  struct iovec iov[OUT_IOV_MAX];
  out_blk_t *batch[OUT_IOV_MAX];
  uint64_t pos = 0;
  pthread_mutex_lock(&p->lock);
  for (;;) {
    head_advance_locked(p);
    if (p->failed || p->head == pl->C) break;
    if (!p->head_seg || !p->head_seg->first) {
      pthread_cond_wait(&p->out_cv, &p->lock);
      continue;
    }
    int cnt = 0;
    uint64_t g = p->head;
    for (seg_t *s = p->head_seg; s && cnt < OUT_IOV_MAX;) {
      while (s->first && cnt < OUT_IOV_MAX) {
        out_blk_t *b = s->first;
        s->first = b->next;
        if (!s->first) s->last = NULL;
        batch[cnt] = b;
        iov[cnt++] = (struct iovec){b->mem, b->used};
      }
      if (!s->closed || s->first) break; /* later segments' bytes must wait */
      s = s->next ? s->next : ++g < pl->C ? p->cg[g] : NULL;
    }
    pthread_mutex_unlock(&p->lock);
    uint64_t n = 0;
    for (int i = 0; i < cnt; i++) n += batch[i]->used;
    int e = out_write(p, iov, cnt, p->pos0 + pos, n);
    pos += n;
    pthread_mutex_lock(&p->lock);
    for (int i = 0; i < cnt; i++) blk_free_locked(p, batch[i]);
    if (e) {
      wksp_err_keep(&p->out_err,
                    wksp_err(WKSP_ERR_FAIL, e,
                             "write of %" PRIu64 " bytes of cgroup frames at offset %" PRIu64 " failed", n,
                             (p->pos0 + pos - n)));
      par_fail_locked(p);
      break;
    }
  }
  pthread_mutex_unlock(&p->lock);
  return NULL;
}

static void par_fini(par_t *p) {
  for (seg_t *s = p->all, *nx; s; s = nx) {
    nx = s->all;
    for (out_blk_t *b = s->first, *bn; b; b = bn) {
      bn = b->next;
      blk_del(b);
    }
    free(s->snap);
    free(s);
  }
  for (out_blk_t *b = p->free_blks, *nx; b; b = nx) {
    nx = b->next;
    blk_del(b);
  }
  free(p->cg);
  free(p->cg_sz);
  pthread_cond_destroy(&p->seg_cv);
  pthread_cond_destroy(&p->room_cv);
  pthread_cond_destroy(&p->out_cv);
  pthread_mutex_destroy(&p->lock);
  wksp_private_checkpt_progress_fini(&p->m);
}

int wksp_private_checkpt_pipeline(checkpt_writer_t *cw, uint64_t pos0, uint64_t *pos) {
  checkpt_plan_t *pl = &cw->plan;
  const wksp_checkpt_opts_t *o = cw->o;
  uint32_t threads = cw->threads;
  par_t p = {.pl = pl, .cw = cw, .fd = cw->fd, .pos0 = pos0};
  /* at least one block, so that with one worker the next cgroup can start
   * while the last blocks of the previous one are written */
  p.budget = (threads - 1) * (wksp_private_checkpt_tuning.par_buf_max / OUT_BLK_SZ);
  if (!p.budget) p.budget = 1;
  p.can_split = threads > 1 && wksp_private_frame_lz4_handover_ok();
  wksp_private_checkpt_progress_init(&p.m, o->progress, o->progress_ctx, pl->data_sz);
  pthread_mutex_init(&p.lock, NULL);
  pthread_cond_init(&p.out_cv, NULL);
  pthread_cond_init(&p.room_cv, NULL);
  pthread_cond_init(&p.seg_cv, NULL);
  *pos = pos0;
  int rc = WKSP_SUCCESS;
  pthread_t out;
  p.cg = calloc(pl->C, sizeof *p.cg);
  p.cg_sz = calloc(pl->C, sizeof *p.cg_sz);
  if (!p.cg || !p.cg_sz)
    rc = wksp_err(WKSP_ERR_NOMEM, 0, "checkpt: segment tables of %" PRIu64 " cgroups", pl->C);
  for (uint64_t g = 0; !rc && g < pl->C; g++) p.cg_sz[g] = wksp_private_checkpt_plan_cgroup_sz(pl, g);
  int e = rc ? 0 : pthread_create(&out, NULL, out_main, &p);
  if (e) rc = wksp_err(WKSP_ERR_NOMEM, e, "checkpt: cannot create the output thread");
  if (rc) goto done;
  rc = wksp_private_checkpt_pool_run_watched(threads, threads, par_worker_slot, &p, &p.m);
  pthread_join(out, NULL);
  checkpt_hook(CHECKPT_HOOK_PEAK, &(checkpt_hook_t){.a = p.peak * OUT_BLK_SZ});
  if (!rc) rc = wksp_err_kept(&p.out_err);
  if (rc) goto done;
  uint64_t at = pos0;
  for (uint64_t g = 0; g < pl->C; g++) {
    pl->cg_off[g] = at;
    for (const seg_t *s = p.cg[g]; s; s = s->next) at += s->sz;
  }
  *pos = at;
  wksp_private_checkpt_progress_end(&p.m, pl->data_sz);
done:
  par_fini(&p);
  return rc;
}
