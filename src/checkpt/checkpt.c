/* The v2/v3 writer (docs/FORMAT.md 3.9): lock, validate and list the
 * allocations, assign them to cgroups exactly as the reference writer, and
 * emit header, info, cgroup frames, appendix, volumes and footer. */
#include <errno.h>
#include <pthread.h>
#include <pwd.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "checkpt_private.h"
#include "frame/frame_private.h"
#include "util/err.h"
#include "util/io.h"
#include "wksp/frame.h"
#include "wksp/wksp_private.h"

int (*wksp_private_checkpt_test_fail_hook)(uint64_t cgroup);

#ifndef WKSP_VERSION
#define WKSP_VERSION "unknown"
#endif

/* ---- info frame ------------------------------------------------------------ */

typedef struct {
  checkpt_info_t info;
  uint8_t *blob; /* the nine strings, NULs included */
  uint64_t blob_sz;
  uint64_t seal_at[2];  /* sealing: where the digests' hex digits are in the blob (else 0) */
  uint64_t seal_off[2]; /* and in the file, once the info frame is written */
} info_t;

/* Copies s into a log-name field: at most 39 bytes, never empty. */
static void log_name(char out[CHECKPT_LOG_NAME_MAX], const char *s) {
  if (!s || !*s) s = "?";
  snprintf(out, CHECKPT_LOG_NAME_MAX, "%s", s);
}

/* seal: the app id is the seal mark and the build info starts and ends with
 * a content digest line (digest.c), their digits to be filled in once the
 * file has been read back. */
static int info_build(info_t *inf, const char *path, uint64_t mode, const char *uinfo, int seal) {
  char app[CHECKPT_LOG_NAME_MAX], thread[CHECKPT_LOG_NAME_MAX], host[CHECKPT_LOG_NAME_MAX];
  char cpu[CHECKPT_LOG_NAME_MAX], group[CHECKPT_LOG_NAME_MAX], user[CHECKPT_LOG_NAME_MAX];
  extern char *program_invocation_short_name;
  log_name(app, program_invocation_short_name);
  char tname[64] = "";
  pthread_getname_np(pthread_self(), tname, sizeof tname);
  log_name(thread, tname);
  char hname[256] = "";
  gethostname(hname, sizeof hname - 1);
  log_name(host, hname);
  int c = sched_getcpu();
  char cname[32];
  snprintf(cname, sizeof cname, "cpu%d", c < 0 ? 0 : c);
  log_name(cpu, cname);
  char gname[32];
  snprintf(gname, sizeof gname, "%ld", (long)getpid());
  log_name(group, gname);
  struct passwd pw, *pwp = NULL;
  char pwbuf[1024];
  getpwuid_r(getuid(), &pw, pwbuf, sizeof pwbuf, &pwp);
  log_name(user, pwp ? pwp->pw_name : getenv("USER"));

  char binfo[512];
  size_t bn = seal ? wksp_private_checkpt_digest_line(binfo, sizeof binfo, 0) : 0;
  int n = snprintf(binfo + bn, sizeof binfo - bn, "wksp library %s\ncompiler %.300s\n",
                   WKSP_VERSION, __VERSION__);
  bn += n < 0 ? 0 : (size_t)n;
  size_t seal_in_binfo[2] = {wksp_private_checkpt_digest_hex_at(),
                             bn + wksp_private_checkpt_digest_hex_at()};
  if (seal) wksp_private_checkpt_digest_line(binfo + bn, sizeof binfo - bn, 0);
  size_t path_len = strlen(path);
  if (path_len > CHECKPT_PATH_MAX - 1) path_len = CHECKPT_PATH_MAX - 1; /* keep the file readable */
  if (!uinfo) uinfo = "";
  size_t uinfo_len = strnlen(uinfo, WKSP_CHECKPT_UINFO_MAX);

  const char *str[CHECKPT_S_CNT] = {app, thread, host, cpu, group, user, path, binfo, uinfo};
  size_t len[CHECKPT_S_CNT];
  uint64_t total = 0;
  for (int k = 0; k < CHECKPT_S_CNT; k++) {
    len[k] = k == CHECKPT_S_PATH ? path_len : k == CHECKPT_S_UINFO ? uinfo_len : strlen(str[k]);
    inf->info.sz[k] = len[k] + 1;
    total += len[k] + 1;
  }
  inf->blob = malloc(total);
  if (!inf->blob) return wksp_err(WKSP_ERR_NOMEM, 0, "checkpt: info strings");
  uint8_t *b = inf->blob;
  for (int k = 0; k < CHECKPT_S_CNT; k++) {
    memcpy(b, str[k], len[k]);
    b[len[k]] = 0;
    b += len[k] + 1;
  }
  inf->blob_sz = total;
  uint64_t binfo_at = 0;
  for (int k = 0; k < CHECKPT_S_BINFO; k++) binfo_at += len[k] + 1;
  for (int k = 0; k < 2; k++) inf->seal_at[k] = seal ? binfo_at + seal_in_binfo[k] : 0;
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  inf->info.mode = mode;
  inf->info.wallclock = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
  inf->info.app_id = seal ? CHECKPT_SEAL_MARK : 0; /* no application id of our own */
  inf->info.thread_id = (uint64_t)syscall(SYS_gettid);
  inf->info.host_id = (uint64_t)(uint32_t)gethostid();
  inf->info.cpu_id = c < 0 ? 0 : (uint64_t)c;
  inf->info.group_id = (uint64_t)getpid();
  inf->info.tid = (uint64_t)syscall(SYS_gettid);
  inf->info.user_id = (uint64_t)getuid();
  return WKSP_SUCCESS;
}

/* ---- plan: the allocations and their cgroups ------------------------------------ */

typedef struct {
  wksp_t *w;
  wksp_part_t *parts; /* ascending */
  uint64_t cnt;
  uint64_t C;
  uint64_t *cg_cnt, *cg_start, *order; /* see wksp_private_checkpt_cgroup_assign */
  uint64_t *cg_off;                    /* frame offsets, then the counts (appendix arrays) */
  uint64_t data_sz;
} plan_t;

static void plan_fini(plan_t *pl) {
  free(pl->parts);
  free(pl->cg_cnt);
  free(pl->cg_start);
  free(pl->order);
  free(pl->cg_off);
}

static int plan_build(plan_t *pl, wksp_t *w) {
  memset(pl, 0, sizeof *pl);
  pl->w = w;
  int rc = wksp_private_alloc_list(w, &pl->parts, &pl->cnt);
  if (rc) return wksp_err_wrap(rc, "checkpt %s", wksp_name(w));
  pl->C = checkpt_cgroup_cnt(pl->cnt);
  pl->cg_cnt = calloc(pl->C + 1, sizeof *pl->cg_cnt);
  pl->cg_start = calloc(pl->C + 1, sizeof *pl->cg_start);
  pl->order = calloc(pl->cnt + 1, sizeof *pl->order);
  pl->cg_off = calloc(2 * pl->C + 1, sizeof *pl->cg_off);
  if (!pl->cg_cnt || !pl->cg_start || !pl->order || !pl->cg_off)
    return wksp_err(WKSP_ERR_NOMEM, 0, "checkpt %s: cgroup tables for %llu allocations",
                    wksp_name(w), (unsigned long long)pl->cnt);
  /* alloc_list promised a validated list; re-check what the format needs
   * so that a bad list can never produce an unreadable file. */
  uint64_t lo = wksp_gaddr_lo(w), hi = wksp_gaddr_hi(w), prev = lo;
  for (uint64_t k = 0; k < pl->cnt; k++) {
    const wksp_part_t *p = &pl->parts[k];
    if (!p->tag || p->gaddr_lo < prev || p->gaddr_lo >= p->gaddr_hi || p->gaddr_hi > hi)
      return wksp_err(WKSP_ERR_CORRUPT, 0,
                      "checkpt %s: allocation %llu [%llu,%llu) tag %llu is out of order or range",
                      wksp_name(w), (unsigned long long)k, (unsigned long long)p->gaddr_lo,
                      (unsigned long long)p->gaddr_hi, (unsigned long long)p->tag);
    prev = p->gaddr_hi;
    pl->data_sz += p->gaddr_hi - p->gaddr_lo;
  }
  wksp_private_checkpt_cgroup_assign(pl->parts, pl->cnt, pl->cg_cnt, pl->cg_start, pl->order);
  return WKSP_SUCCESS;
}

/* ---- cgroup frames -------------------------------------------------------------
 *
 * A cgroup frame is its allocations' commands, a data command, then their
 * bytes (docs/FORMAT.md 3.5). */

/* Allocation k of cgroup g, in frame order. */
static const wksp_part_t *cg_part(const plan_t *pl, uint64_t g, uint64_t k) {
  return &pl->parts[pl->order[pl->cg_start[g] + k]];
}

static uint64_t part_sz(const wksp_part_t *q) { return q->gaddr_hi - q->gaddr_lo; }

/* The frame's commands. */
static int cgroup_commands(wksp_frame_writer_t *fw, const plan_t *pl, uint64_t g) {
  uint8_t cmd[CHECKPT_CMD_SZ];
  int rc = 0;
  for (uint64_t k = 0; !rc && k < pl->cg_cnt[g]; k++) {
    const wksp_part_t *q = cg_part(pl, g, k);
    wksp_private_checkpt_cmd_encode(cmd, q->tag, q->gaddr_lo, q->gaddr_hi);
    rc = wksp_frame_writer_meta(fw, cmd, sizeof cmd);
  }
  wksp_private_checkpt_cmd_encode(cmd, 0, UINT64_MAX, UINT64_MAX);
  return rc ? rc : wksp_frame_writer_meta(fw, cmd, sizeof cmd);
}

/* The whole frame, with the writer given (any output mode); *sz gets its
 * size. */
static int encode_cgroup(wksp_frame_writer_t *fw, const plan_t *pl, int fsc, uint64_t g,
                         uint64_t *sz) {
  uint64_t off0 = 0, end = 0;
  int rc = wksp_frame_writer_open(fw, fsc, &off0);
  if (!rc) rc = cgroup_commands(fw, pl, g);
  for (uint64_t k = 0; !rc && k < pl->cg_cnt[g]; k++) {
    const wksp_part_t *q = cg_part(pl, g, k);
    rc = wksp_frame_writer_data(fw, wksp_laddr(pl->w, q->gaddr_lo), part_sz(q));
  }
  if (!rc) rc = wksp_frame_writer_close(fw, &end);
  *sz = end - off0;
  return rc;
}

static uint64_t cgroup_data_sz(const plan_t *pl, uint64_t g) {
  uint64_t sz = 0;
  for (uint64_t k = 0; k < pl->cg_cnt[g]; k++) sz += part_sz(cg_part(pl, g, k));
  return sz;
}

static int test_fail(uint64_t g) {
  if (wksp_private_checkpt_test_fail_hook && wksp_private_checkpt_test_fail_hook(g))
    return wksp_err(WKSP_ERR_FAIL, EIO, "injected failure at cgroup %llu", (unsigned long long)g);
  return WKSP_SUCCESS;
}

/* RAW frames (v2) are plain copies: written by the calling thread straight
 * from the workspace (the fd writer references large data in place). */
static int write_cgroups_seq(int fd, plan_t *pl, int fsc, uint64_t pos0,
                             const wksp_checkpt_opts_t *o, uint64_t *pos) {
  wksp_frame_writer_t *fw = NULL;
  int rc = wksp_frame_writer_init_fd(&fw, fd);
  uint64_t at = pos0, done = 0;
  for (uint64_t g = 0; !rc && g < pl->C; g++) {
    uint64_t sz = 0;
    pl->cg_off[g] = at;
    rc = test_fail(g);
    if (!rc) rc = encode_cgroup(fw, pl, fsc, g, &sz);
    at += sz;
    done += cgroup_data_sz(pl, g);
    if (!rc && o->progress) o->progress(done, pl->data_sz, o->progress_ctx);
  }
  int rc2 = wksp_frame_writer_fini(fw, NULL);
  *pos = at;
  return rc ? rc : rc2;
}

/* ---- parallel LZ4 cgroup frames ---------------------------------------------------
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
 * boundary, if at least wksp_private_checkpt_split_min bytes remain): a new
 * segment.  Its worker re-compresses up to wksp_private_checkpt_warm_sz bytes
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
 *     HEAD_BLKS), at most (threads - 1) x wksp_private_checkpt_par_buf_max
 *     (64 MiB) of blocks: a worker ahead of the head waits for the output
 *     thread beyond that.
 * The head's worker waits for no other worker (except for a split-off
 * half's warm-up, which waits for nothing) and the output thread only for
 * the head, so the pipeline always progresses.  Total: at most HEAD_BLKS +
 * max(1, (threads - 1) x 32) blocks, i.e. (threads - 1) x 64 MiB + 8 MiB
 * (10 MiB for one worker), plus ~470 KiB of frame writer state per worker
 * and 16 KiB per split (a split needs an idle worker, so there are a few
 * per thread), whatever the workspace size. */

uint64_t wksp_private_checkpt_par_buf_max = 64ull << 20;
uint64_t wksp_private_checkpt_split_min = 4ull << 20;
uint64_t wksp_private_checkpt_warm_sz = 256ull << 10;
_Atomic uint64_t wksp_private_checkpt_test_splits[2];
int (*wksp_private_checkpt_test_write_fail_hook)(uint64_t pos, uint64_t sz);
_Atomic uint64_t wksp_private_checkpt_test_out_peak;

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
  uint8_t mem[]; /* OUT_BLK_SZ bytes */
} out_blk_t;

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
  wksp_private_frame_lz4_state_t *snap; /* split-off halves: the history state at lo */
};

typedef struct {
  const plan_t *pl;
  int fd;
  uint64_t pos0; /* checkpoint offset of the first cgroup frame */
  const wksp_checkpt_opts_t *o;
  pthread_t caller;
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
  uint64_t done_sz;       /* allocation bytes of the cgroups written */
  uint64_t reported;      /* last done_sz given to the progress callback (caller only) */
  int can_split;          /* the frame writer can hand LZ4 history over */
  int failed;             /* a worker or the output thread failed: everyone stops */
  wksp_err_kept_t out_err; /* the output thread's failure */
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
  } else if (!(b = malloc(sizeof *b + OUT_BLK_SZ)))
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

/* The allocation holding cgroup g's data byte x (x < the cgroup's bytes):
 * its index, and x's offset in it. */
static void cg_locate(const plan_t *pl, uint64_t g, uint64_t x, uint64_t *k, uint64_t *off) {
  uint64_t at = 0, i = 0;
  for (;; i++) {
    const wksp_part_t *q = cg_part(pl, g, i);
    if (x < at + part_sz(q)) break;
    at += part_sz(q);
  }
  *k = i;
  *off = x - at;
}

/* A split point in the second half of s's remaining input (a chunk
 * boundary), or 0 when too little remains. */
static uint64_t split_point_locked(const par_t *p, const seg_t *s) {
  if (s->end - s->pos < wksp_private_checkpt_split_min || s->end - s->pos < 2 * FRAME_CHUNK) return 0;
  uint64_t mid = s->pos + (s->end - s->pos) / 2, k, off;
  cg_locate(p->pl, s->g, mid, &k, &off);
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
  atomic_fetch_add_explicit(&wksp_private_checkpt_test_splits[0], 1, memory_order_relaxed);
  return n;
}

/* A split-off half: sets the ring cursor the frame has where the warm-up
 * starts (up to wksp_private_checkpt_warm_sz bytes before lo, at a chunk
 * boundary, not before the first allocation), then re-compresses the bytes
 * from there to lo as history only.  *warmed: some were. */
static int seg_warm(const plan_t *pl, const seg_t *s, wksp_frame_writer_t *fw, int *warmed) {
  uint64_t g = s->g, want = wksp_private_checkpt_warm_sz;
  uint64_t from = s->lo > want ? s->lo - want : 0, k, off;
  cg_locate(pl, g, from, &k, &off);
  uint64_t x = from - off % FRAME_CHUNK;
  off -= off % FRAME_CHUNK;
  size_t cursor = 0; /* the commands, then every chunk before (k, off) */
  for (uint64_t i = 0; i <= pl->cg_cnt[g]; i++) cursor = frame_ring_next(cursor, CHECKPT_CMD_SZ);
  for (uint64_t i = 0; i <= k; i++) {
    uint64_t sz = i < k ? part_sz(cg_part(pl, g, i)) : off;
    for (uint64_t o = 0; o < sz; o += FRAME_CHUNK)
      cursor = frame_ring_next(cursor, sz - o < FRAME_CHUNK ? sz - o : FRAME_CHUNK);
  }
  wksp_private_frame_writer_set_cursor(fw, cursor);
  *warmed = x < s->lo;
  int rc = 0;
  for (; !rc && x < s->lo; k++, off = 0) {
    const wksp_part_t *q = cg_part(pl, g, k);
    uint64_t n = part_sz(q) - off < s->lo - x ? part_sz(q) - off : s->lo - x;
    rc = wksp_private_frame_writer_warm(fw, (const uint8_t *)wksp_laddr(pl->w, q->gaddr_lo) + off,
                                        n, 0);
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
  if (n->closed) seg_free_blocks_locked(p, n); /* its worker is gone */
  pthread_cond_broadcast(&p->room_cv); /* its worker may wait for room ... */
  pthread_cond_broadcast(&p->seg_cv);  /* ... or for its own second half */
  s->end = n->end;
  s->next = n->next;
  atomic_fetch_add_explicit(&wksp_private_checkpt_test_splits[1], 1, memory_order_relaxed);
  return 0;
}

/* Compresses s's allocation bytes from lo, slice by slice; at its end
 * (which a split may have moved), hands over to the next segment or takes
 * it back.  cont: lo continues the warm-up's last chunk. */
static int seg_data(par_t *p, seg_t *s, wksp_frame_writer_t *fw, int cont) {
  const plan_t *pl = p->pl;
  uint64_t x = s->lo, k = 0, off = 0;
  if (x < p->cg_sz[s->g]) cg_locate(pl, s->g, x, &k, &off);
  cont = cont && off; /* an allocation's first chunk is never a continuation */
  wksp_private_frame_lz4_state_t *mine = p->can_split ? malloc(sizeof *mine) : NULL;
  int rc = 0;
  for (;;) {
    pthread_mutex_lock(&p->lock);
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
      break;
    }
    const wksp_part_t *q = cg_part(pl, s->g, k);
    uint64_t n = part_sz(q) - off;
    if (n > SLICE) n = SLICE;
    if (n > s->end - x) n = s->end - x;
    s->pos = x + n;
    pthread_mutex_unlock(&p->lock);
    rc = wksp_private_frame_writer_data_cont(
        fw, (const uint8_t *)wksp_laddr(pl->w, q->gaddr_lo) + off, n, cont);
    if (rc) break;
    x += n;
    off += n;
    cont = 1;
    if (off == part_sz(q)) {
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
static int seg_start_half(par_t *p, seg_t *s, wksp_frame_writer_t *fw, int rc, int *cont) {
  wksp_private_frame_lz4_state_t *snap = rc ? NULL : malloc(sizeof *snap);
  if (!rc) rc = snap ? seg_warm(p->pl, s, fw, cont) : WKSP_ERR_NOMEM;
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
  wksp_frame_writer_t *fw = NULL;
  int cont = 0, rc = s->lo ? 0 : test_fail(s->g);
  if (!rc) rc = wksp_private_frame_writer_init_regions(&fw, seg_region, &c);
  if (!rc) rc = wksp_frame_writer_open(fw, WKSP_FRAME_LZ4, NULL);
  if (s->lo && seg_start_half(p, s, fw, rc, &cont)) {
    wksp_frame_writer_fini(fw, NULL);
    return WKSP_SUCCESS;
  }
  if (!rc && !s->lo) rc = cgroup_commands(fw, p->pl, s->g);
  if (!rc) rc = seg_data(p, s, fw, cont);
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
  wksp_frame_writer_fini(fw, NULL);
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
        rc = wksp_err(WKSP_ERR_NOMEM, 0, "checkpt: segment of cgroup %llu", (unsigned long long)g);
      }
    } else if (!p->failed) {
      s = split_locked(p);
    }
    uint64_t done = p->done_sz;
    pthread_mutex_unlock(&p->lock);
    if (!s) break;
    rc = seg_run(p, s);
    if (!rc && p->o->progress && pthread_equal(pthread_self(), p->caller) && done > p->reported) {
      p->reported = done; /* only the calling thread reads or writes it */
      p->o->progress(done, p->pl->data_sz, p->o->progress_ctx);
    }
  }
  return rc;
}

/* Output thread: collects the full blocks from the head segment on (across
 * segments that are complete), writes them with one writev, frees them. */
static int out_write(par_t *p, struct iovec *iov, int cnt, uint64_t at, uint64_t sz) {
  int e = 0;
  if (wksp_private_checkpt_test_write_fail_hook) e = wksp_private_checkpt_test_write_fail_hook(at, sz);
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
      p->done_sz += p->cg_sz[p->head];
      p->head++;
      p->head_seg = NULL;
    }
    pthread_cond_broadcast(&p->room_cv);
  }
}

static void *out_main(void *arg) {
  par_t *p = arg;
  const plan_t *pl = p->pl;
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
                    wksp_err(WKSP_ERR_FAIL, e, "write of %llu bytes of cgroup frames at offset %llu failed",
                             (unsigned long long)n, (unsigned long long)(p->pos0 + pos - n)));
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
      free(b);
    }
    free(s->snap);
    free(s);
  }
  for (out_blk_t *b = p->free_blks, *nx; b; b = nx) {
    nx = b->next;
    free(b);
  }
  free(p->cg);
  free(p->cg_sz);
  pthread_cond_destroy(&p->seg_cv);
  pthread_cond_destroy(&p->room_cv);
  pthread_cond_destroy(&p->out_cv);
  pthread_mutex_destroy(&p->lock);
}

/* Writes the LZ4 cgroup frames at checkpoint offset pos0; *pos gets the end. */
static int write_cgroups_par(int fd, plan_t *pl, uint64_t pos0, const wksp_checkpt_opts_t *o,
                             uint64_t *pos) {
  uint32_t threads = o->threads ? o->threads : 1;
  if (threads > WKSP_CHECKPT_THREADS_MAX) threads = WKSP_CHECKPT_THREADS_MAX;
  par_t p = {.pl = pl, .fd = fd, .pos0 = pos0, .o = o, .caller = pthread_self()};
  /* at least one block, so that with one worker the next cgroup can start
   * while the last blocks of the previous one are written */
  p.budget = (threads - 1) * (wksp_private_checkpt_par_buf_max / OUT_BLK_SZ);
  if (!p.budget) p.budget = 1;
  p.can_split = threads > 1 && wksp_private_frame_lz4_handover_ok();
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
    rc = wksp_err(WKSP_ERR_NOMEM, 0, "checkpt: segment tables of %llu cgroups",
                  (unsigned long long)pl->C);
  for (uint64_t g = 0; !rc && g < pl->C; g++) p.cg_sz[g] = cgroup_data_sz(pl, g);
  int e = rc ? 0 : pthread_create(&out, NULL, out_main, &p);
  if (e) rc = wksp_err(WKSP_ERR_NOMEM, e, "checkpt: cannot create the output thread");
  if (rc) goto done;
  rc = wksp_private_checkpt_pool_run(threads, threads, par_worker, &p);
  pthread_join(out, NULL);
  atomic_store_explicit(&wksp_private_checkpt_test_out_peak, p.peak * OUT_BLK_SZ, memory_order_relaxed);
  if (!rc) rc = wksp_err_kept(&p.out_err);
  if (rc) goto done;
  uint64_t at = pos0;
  for (uint64_t g = 0; g < pl->C; g++) {
    pl->cg_off[g] = at;
    for (const seg_t *s = p.cg[g]; s; s = s->next) at += s->sz;
  }
  *pos = at;
  if (o->progress && p.reported < pl->data_sz) /* others finished the last cgroups */
    o->progress(pl->data_sz, pl->data_sz, o->progress_ctx);
done:
  par_fini(&p);
  return rc;
}

static int write_cgroups(int fd, plan_t *pl, int fsc, uint64_t pos0, const wksp_checkpt_opts_t *o,
                         uint64_t *pos) {
  if (fsc == WKSP_FRAME_RAW || !pl->C) return write_cgroups_seq(fd, pl, fsc, pos0, o, pos);
  return write_cgroups_par(fd, pl, pos0, o, pos);
}

/* ---- emission -------------------------------------------------------------------- */

static int write_head(int fd, const plan_t *pl, int fsc, info_t *inf, checkpt_hdr_t *h,
                      uint64_t *end) {
  wksp_t *w = pl->w;
  *h = (checkpt_hdr_t){.magic = CHECKPT_MAGIC,
                    .style = 2,
                    .frame_style = fsc,
                    .seed = wksp_seed(w),
                    .part_max = wksp_part_max(w),
                    .data_max = wksp_data_max(w)};
  strncpy(h->name, wksp_name(w), CHECKPT_NAME_MAX - 1); /* zero-fills the rest */
  uint8_t hdr[CHECKPT_HDR_SZ], info[CHECKPT_INFO_SZ];
  wksp_private_checkpt_hdr_encode(hdr, h);
  wksp_private_checkpt_info_encode(info, &inf->info);
  wksp_frame_writer_t *fw = NULL;
  int rc = wksp_frame_writer_init_fd(&fw, fd);
  if (!rc) rc = wksp_frame_writer_open(fw, WKSP_FRAME_RAW, NULL);
  if (!rc) rc = wksp_frame_writer_data(fw, hdr, sizeof hdr);
  if (!rc) rc = wksp_frame_writer_close(fw, NULL);
  uint64_t info_off = 0;
  if (!rc) rc = wksp_frame_writer_open(fw, fsc, &info_off);
  /* Sealing: an LZ4 info frame is written as literal blocks, so that the
   * digest's digits sit at a known offset and can be filled in later. */
  int sealing = inf->seal_at[0] != 0;
  if (!rc && sealing && fsc == WKSP_FRAME_LZ4) wksp_private_frame_writer_literal(fw, 1);
  if (!rc) rc = wksp_frame_writer_meta(fw, info, sizeof info);
  if (!rc) rc = wksp_frame_writer_data(fw, inf->blob, inf->blob_sz);
  if (!rc) rc = wksp_frame_writer_close(fw, end);
  /* where the blob's bytes are in the file */
  uint64_t blob_off = fsc == WKSP_FRAME_RAW
                          ? info_off + sizeof info
                          : info_off + FRAME_CHUNK_HDR + wksp_private_frame_literal_hdr_sz(sizeof info) +
                                sizeof info + FRAME_CHUNK_HDR +
                                wksp_private_frame_literal_hdr_sz(inf->blob_sz);
  for (int k = 0; k < 2 && sealing; k++) inf->seal_off[k] = blob_off + inf->seal_at[k];
  int rc2 = wksp_frame_writer_fini(fw, NULL);
  return rc ? rc : rc2;
}

/* Appendix, volumes and footer, starting at checkpoint offset base. */
static int write_tail(int fd, const plan_t *pl, int fsc, const checkpt_hdr_t *h, uint64_t base) {
  uint8_t cmd[CHECKPT_CMD_SZ], ftr[CHECKPT_FTR_SZ];
  uint8_t *arr = malloc(16 * pl->C + 1); /* data buffers: kept until close */
  if (!arr) return wksp_err(WKSP_ERR_NOMEM, 0, "checkpt: appendix");
  for (uint64_t g = 0; g < pl->C; g++) {
    checkpt_st64(arr + 8 * g, pl->cg_off[g]);
    checkpt_st64(arr + 8 * (pl->C + g), pl->cg_cnt[g]);
  }
  wksp_frame_writer_t *fw = NULL;
  uint64_t app_off = 0, vol_off = 0, ftr_off = 0;
  int rc = wksp_frame_writer_init_fd(&fw, fd);
  if (!rc) rc = wksp_frame_writer_open(fw, fsc, &app_off);
  app_off += base;
  wksp_private_checkpt_cmd_encode(cmd, 0, pl->C, 0);
  if (!rc) rc = wksp_frame_writer_meta(fw, cmd, sizeof cmd);
  if (!rc) rc = wksp_frame_writer_data(fw, arr, 8 * pl->C);
  if (!rc) rc = wksp_frame_writer_data(fw, arr + 8 * pl->C, 8 * pl->C);
  if (!rc) rc = wksp_frame_writer_close(fw, NULL);
  if (!rc) rc = wksp_frame_writer_open(fw, fsc, &vol_off);
  vol_off += base;
  wksp_private_checkpt_cmd_encode(cmd, 0, UINT64_MAX, app_off);
  if (!rc) rc = wksp_frame_writer_meta(fw, cmd, sizeof cmd);
  if (!rc) rc = wksp_frame_writer_close(fw, NULL);
  if (!rc) rc = wksp_frame_writer_open(fw, WKSP_FRAME_RAW, &ftr_off);
  ftr_off += base;
  checkpt_ftr_t f = {.alloc_cnt = pl->cnt,
                  .cgroup_cnt = pl->C,
                  .volume_cnt = 1,
                  .frame_off = vol_off,
                  .checkpt_sz = ftr_off + CHECKPT_FTR_SZ,
                  .data_max = h->data_max,
                  .part_max = h->part_max,
                  .seed = h->seed,
                  .reserved = 0,
                  .frame_style = h->frame_style,
                  .style = 2,
                  .unmagic = ~h->magic};
  memcpy(f.name, h->name, CHECKPT_NAME_MAX);
  wksp_private_checkpt_ftr_encode(ftr, &f);
  if (!rc) rc = wksp_frame_writer_data(fw, ftr, sizeof ftr);
  if (!rc) rc = wksp_frame_writer_close(fw, NULL);
  int rc2 = wksp_frame_writer_fini(fw, NULL);
  free(arr);
  return rc ? rc : rc2;
}

static int write_all(int fd, plan_t *pl, int fsc, info_t *inf, const wksp_checkpt_opts_t *o) {
  checkpt_hdr_t h;
  uint64_t pos = 0, end = 0;
  int rc = write_head(fd, pl, fsc, inf, &h, &pos);
  if (!rc) rc = write_cgroups(fd, pl, fsc, pos, o, &end);
  if (!rc) rc = write_tail(fd, pl, fsc, &h, end);
  return rc;
}

static int opts_check(const wksp_checkpt_opts_t *o, int *fsc) {
  if (o->style != WKSP_CHECKPT_STYLE_DEFAULT && o->style != WKSP_CHECKPT_STYLE_V2 &&
      o->style != WKSP_CHECKPT_STYLE_V3)
    return wksp_err(WKSP_ERR_INVAL, 0, "checkpt: style %d is not 0, 2 or 3 (v1 is read-only)",
                    o->style);
  if (o->mode > 07777)
    return wksp_err(WKSP_ERR_INVAL, 0, "checkpt: mode %o has bits outside 07777", o->mode);
  *fsc = o->style == WKSP_CHECKPT_STYLE_V2 ? WKSP_FRAME_RAW : WKSP_FRAME_LZ4;
  return WKSP_SUCCESS;
}

/* ---- verify ---------------------------------------------------------------------- */

void (*wksp_private_checkpt_test_verify_hook)(wksp_t *w);

/* Lock held, the whole file written to fd (a path target's temporary file,
 * from its offset 0): reads it back and compares it with w; if they agree,
 * seals it: the content digest of what was read goes into the info frame at
 * both seal_off. */
static int verify_written(wksp_t *w, int fd, const char *label, const wksp_checkpt_opts_t *o,
                          const uint64_t seal_off[2]) {
  if (wksp_private_checkpt_test_verify_hook) wksp_private_checkpt_test_verify_hook(w);
  if (lseek(fd, 0, SEEK_SET) < 0) return wksp_err(WKSP_ERR_FAIL, errno, "checkpt %s: verify", label);
  checkpt_input_t in;
  int rc = wksp_private_checkpt_input_open(&in, NULL, fd, label, CHECKPT_IN_NEED_MEM);
  if (rc) return wksp_err_wrap(rc, "checkpt %s: verify", label);
  wksp_checkpt_diff_t d;
  rc = wksp_private_checkpt_diff_locked(w, &in, o->threads, NULL, NULL, &d);
  wksp_private_checkpt_input_fini(&in);
  if (rc) return wksp_err_wrap(rc, "checkpt %s: verify", label);
  const wksp_part_t *p = &d.first_ckpt;
  if (d.first_kind == WKSP_DIFF_BYTES)
    return wksp_err(WKSP_ERR_AGAIN, 0,
                    "checkpt %s: verify: %llu allocation(s) changed while the checkpoint was "
                    "written, the first [%llu,%llu) tag %llu at byte %llu (the application wrote "
                    "into it); nothing was published",
                    label, (unsigned long long)d.bytes, (unsigned long long)p->gaddr_lo,
                    (unsigned long long)p->gaddr_hi, (unsigned long long)p->tag,
                    (unsigned long long)d.first_off);
  if (d.first_kind != WKSP_DIFF_NONE) /* the lock keeps ranges and tags: a writer bug */
    return wksp_err(WKSP_ERR_CORRUPT, 0,
                    "checkpt %s: verify: the file's allocations are not the workspace's (%llu "
                    "only in the file, %llu only in the workspace, %llu with another tag)",
                    label, (unsigned long long)d.only_ckpt, (unsigned long long)d.only_wksp,
                    (unsigned long long)d.tag);
  char line[64];
  wksp_private_checkpt_digest_line(line, sizeof line, d.digest);
  int e = 0;
  for (int k = 0; k < 2 && !e; k++) {
    struct iovec hex = {line + wksp_private_checkpt_digest_hex_at(), 16}; /* consumed by the write */
    e = lseek(fd, (off_t)seal_off[k], SEEK_SET) < 0 ? errno : wksp_private_writev_all(fd, &hex, 1);
  }
  return e ? wksp_err(WKSP_ERR_FAIL, e, "checkpt %s: writing the content digest", label)
           : WKSP_SUCCESS;
}

/* Writes the checkpoint to fd; when pub is non-NULL, publishes it (the
 * commit happens with the workspace still locked so that the file shows a
 * state the lock protected). */
static int checkpt_to(wksp_t *w, int fd, checkpt_pub_t *pub, const char *label,
                      const wksp_checkpt_opts_t *o) {
  int fsc = 0, rc = opts_check(o, &fsc);
  if (rc) return rc;
  uint32_t mode = o->mode ? o->mode : 0600;
  info_t inf = {0};
  plan_t pl = {0};
  rc = info_build(&inf, label, mode, o->uinfo, pub && o->verify);
  if (rc) goto out;
  rc = wksp_private_checkpt_lock(w, o->lock_wait, o->lock_wait_ctx, -1, "checkpt", label);
  if (rc) goto out;
  rc = plan_build(&pl, w);
  if (!rc) {
    rc = write_all(fd, &pl, fsc, &inf, o);
    if (rc == WKSP_ERR_FAIL) wksp_err_wrap(rc, "checkpt %s", label); /* I/O: name the target */
  }
  if (!rc && pub && o->verify) rc = verify_written(w, fd, label, o, inf.seal_off);
  if (!rc && pub) rc = wksp_private_checkpt_pub_commit(pub);
  wksp_private_unlock(w);
out:
  plan_fini(&pl);
  free(inf.blob);
  return rc;
}

static const wksp_checkpt_opts_t opts_default = {0};

int wksp_checkpt_fd(wksp_t *w, int fd, const char *path_label, const wksp_checkpt_opts_t *opts) {
  if (!w || fd < 0) return wksp_err(WKSP_ERR_INVAL, 0, "wksp_checkpt_fd: NULL workspace or bad fd");
  if (opts && opts->verify)
    return wksp_err(WKSP_ERR_INVAL, 0,
                    "wksp_checkpt_fd: verify needs a path target (the file is read back before "
                    "it is published)");
  return checkpt_to(w, fd, NULL, path_label ? path_label : "-", opts ? opts : &opts_default);
}

int wksp_checkpt(wksp_t *w, const char *path, const wksp_checkpt_opts_t *opts) {
  if (!w || !path) return wksp_err(WKSP_ERR_INVAL, 0, "wksp_checkpt: NULL workspace or path");
  if (!opts) opts = &opts_default;
  int fsc;
  int rc = opts_check(opts, &fsc);
  if (rc) return rc;
  checkpt_pub_t pub;
  rc = wksp_private_checkpt_pub_open(&pub, path, opts);
  if (rc) return rc;
  /* A stream target is written as an fd is: nothing to publish. */
  rc = checkpt_to(w, pub.fd, pub.stream ? NULL : &pub, path, opts);
  wksp_private_checkpt_pub_abort(&pub);
  return rc;
}
