/* The v2/v3 writer (FORMAT.md 3.9): lock, validate and list the
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

#include "ckpt.h"
#include "frame/frame_private.h"
#include "util/err.h"
#include "wksp/frame.h"
#include "wksp/wksp_private.h"

int (*wksp_private_ckpt_test_fail_hook)(uint64_t cgroup);

#ifndef WKSP_VERSION
#define WKSP_VERSION "unknown"
#endif

/* ---- info frame ------------------------------------------------------------ */

typedef struct {
  ckpt_info_t info;
  uint8_t *blob; /* the nine strings, NULs included */
  uint64_t blob_sz;
} info_t;

/* Copies s into a log-name field: at most 39 bytes, never empty. */
static void log_name(char out[CKPT_LOG_NAME_MAX], const char *s) {
  if (!s || !*s) s = "?";
  snprintf(out, CKPT_LOG_NAME_MAX, "%s", s);
}

static int info_build(info_t *inf, const char *path, uint64_t mode, const char *uinfo) {
  char app[CKPT_LOG_NAME_MAX], thread[CKPT_LOG_NAME_MAX], host[CKPT_LOG_NAME_MAX];
  char cpu[CKPT_LOG_NAME_MAX], group[CKPT_LOG_NAME_MAX], user[CKPT_LOG_NAME_MAX];
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

  char binfo[256];
  snprintf(binfo, sizeof binfo, "wksp library %s\ncompiler %s\n", WKSP_VERSION, __VERSION__);
  size_t path_len = strlen(path);
  if (path_len > CKPT_PATH_MAX - 1) path_len = CKPT_PATH_MAX - 1; /* keep the file readable */
  if (!uinfo) uinfo = "";
  size_t uinfo_len = strnlen(uinfo, WKSP_CHECKPT_UINFO_MAX);

  const char *str[CKPT_S_CNT] = {app, thread, host, cpu, group, user, path, binfo, uinfo};
  size_t len[CKPT_S_CNT];
  uint64_t total = 0;
  for (int k = 0; k < CKPT_S_CNT; k++) {
    len[k] = k == CKPT_S_PATH ? path_len : k == CKPT_S_UINFO ? uinfo_len : strlen(str[k]);
    inf->info.sz[k] = len[k] + 1;
    total += len[k] + 1;
  }
  inf->blob = malloc(total);
  if (!inf->blob) return wksp_err(WKSP_ERR_NOMEM, 0, "checkpt: info strings");
  uint8_t *b = inf->blob;
  for (int k = 0; k < CKPT_S_CNT; k++) {
    memcpy(b, str[k], len[k]);
    b[len[k]] = 0;
    b += len[k] + 1;
  }
  inf->blob_sz = total;
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  inf->info.mode = mode;
  inf->info.wallclock = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
  inf->info.app_id = 0;
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
  uint64_t *cg_cnt, *cg_start, *order; /* see wksp_private_ckpt_cgroup_assign */
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
  pl->C = ckpt_cgroup_cnt(pl->cnt);
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
  wksp_private_ckpt_cgroup_assign(pl->parts, pl->cnt, pl->cg_cnt, pl->cg_start, pl->order);
  return WKSP_SUCCESS;
}

/* ---- parallel cgroup frames ----------------------------------------------------
 *
 * Cgroup frames are encoded by the pool's threads, each with its own sink
 * writer, and reach the fd strictly in cgroup order: only the thread holding
 * the "head" (the lowest cgroup not yet fully written) writes to the fd; the
 * others buffer their frame's bytes, up to wksp_private_ckpt_par_buf_max
 * each (64 MiB: a whole frame of 32 allocations of 2 MiB, so that workers
 * rarely wait), then wait for their turn.  Tasks are handed out in
 * increasing order, so the head's owner never waits and the pipeline always
 * progresses.  A frame's bytes do not depend on its position (LZ4 history
 * restarts at every frame), so the file is byte-identical for every thread
 * count.  Memory: threads x (64 MiB + the frame writer's ~470 KiB),
 * whatever the workspace size. */

uint64_t wksp_private_ckpt_par_buf_max = 64ull << 20;

typedef struct {
  const plan_t *pl;
  int fd, fsc;
  const wksp_checkpt_opts_t *o;
  pthread_t caller;
  pthread_mutex_t lock;
  pthread_cond_t turn;
  uint64_t head;    /* cgroup whose bytes go to the fd now */
  uint64_t pos;     /* checkpoint offset of the next byte written to fd */
  uint64_t done_sz;  /* allocation bytes of the cgroups written */
  uint64_t reported; /* last done_sz given to the progress callback */
  int failed;
  /* Frame buffers of finished tasks, reused by the next ones (fresh memory
   * would cost a page fault per 4 KiB for every frame). */
  uint8_t *spare[WKSP_CHECKPT_THREADS_MAX];
  uint64_t spare_cap[WKSP_CHECKPT_THREADS_MAX];
  uint32_t spare_cnt;
} par_t;

typedef struct {
  par_t *par;
  uint64_t g;
  uint8_t *buf; /* bytes waiting for the head */
  uint64_t buf_sz, buf_cap;
  int is_head; /* the head was reached: write straight to the fd */
} cg_out_t;

/* The sink's iovecs are const and at most IOV_MAX (the frame writer's cap). */
static int fd_writev(int fd, const struct iovec *iov0, int cnt) {
  struct iovec iov[1024];
  if (cnt > 1024) return EINVAL;
  memcpy(iov, iov0, (size_t)cnt * sizeof *iov);
  return wksp_private_frame_writev_all(fd, iov, cnt);
}

/* Waits until this cgroup is the head (ECANCELED if another one failed),
 * then writes out what was buffered. */
static int wait_head(cg_out_t *c) {
  par_t *p = c->par;
  pthread_mutex_lock(&p->lock);
  while (p->head != c->g && !p->failed) pthread_cond_wait(&p->turn, &p->lock);
  int failed = p->failed;
  pthread_mutex_unlock(&p->lock);
  if (failed) return ECANCELED;
  c->is_head = 1;
  int e = 0;
  if (c->buf_sz) {
    struct iovec v = {c->buf, c->buf_sz};
    e = fd_writev(p->fd, &v, 1);
    p->pos += c->buf_sz; /* only the head touches pos */
    c->buf_sz = 0;
  }
  return e;
}

static int cg_sink(void *ctx, const struct iovec *iov, int cnt) {
  cg_out_t *c = ctx;
  uint64_t total = 0;
  for (int i = 0; i < cnt; i++) total += iov[i].iov_len;
  int turn = c->is_head;
  if (!turn) {
    pthread_mutex_lock(&c->par->lock);
    turn = c->par->head == c->g;
    pthread_mutex_unlock(&c->par->lock);
  }
  if (!turn && c->buf_sz + total <= wksp_private_ckpt_par_buf_max) {
    if (c->buf_sz + total > c->buf_cap) {
      uint64_t cap = c->buf_cap ? c->buf_cap : 1 << 20;
      while (cap < c->buf_sz + total) cap *= 2;
      uint8_t *b = realloc(c->buf, cap);
      if (!b) return ENOMEM;
      c->buf = b;
      c->buf_cap = cap;
    }
    for (int i = 0; i < cnt; i++) {
      memcpy(c->buf + c->buf_sz, iov[i].iov_base, iov[i].iov_len);
      c->buf_sz += iov[i].iov_len;
    }
    return 0;
  }
  int e = c->is_head ? 0 : wait_head(c);
  if (!e) e = fd_writev(c->par->fd, iov, cnt);
  if (!e) c->par->pos += total;
  return e;
}

/* Encodes cgroup g through a sink writer whose output is cg_sink. */
static int encode_cgroup(cg_out_t *c) {
  const plan_t *pl = c->par->pl;
  wksp_frame_writer_t *fw = NULL;
  int rc = wksp_frame_writer_init_sink(&fw, cg_sink, c);
  if (!rc) rc = wksp_frame_writer_open(fw, c->par->fsc, NULL);
  const uint64_t *idx = pl->order + pl->cg_start[c->g];
  uint64_t n = pl->cg_cnt[c->g];
  uint8_t cmd[CKPT_CMD_SZ];
  for (uint64_t k = 0; !rc && k < n; k++) {
    const wksp_part_t *p = &pl->parts[idx[k]];
    wksp_private_ckpt_cmd_encode(cmd, p->tag, p->gaddr_lo, p->gaddr_hi);
    rc = wksp_frame_writer_meta(fw, cmd, sizeof cmd);
  }
  wksp_private_ckpt_cmd_encode(cmd, 0, UINT64_MAX, UINT64_MAX);
  if (!rc) rc = wksp_frame_writer_meta(fw, cmd, sizeof cmd);
  for (uint64_t k = 0; !rc && k < n; k++) {
    const wksp_part_t *p = &pl->parts[idx[k]];
    rc = wksp_frame_writer_data(fw, wksp_laddr(pl->w, p->gaddr_lo), p->gaddr_hi - p->gaddr_lo);
  }
  if (!rc) rc = wksp_frame_writer_close(fw, NULL);
  int rc2 = wksp_frame_writer_fini(fw, NULL);
  return rc ? rc : rc2;
}

static int par_task(void *ctx, uint64_t g) {
  par_t *p = ctx;
  cg_out_t c = {.par = p, .g = g};
  int rc = WKSP_SUCCESS;
  pthread_mutex_lock(&p->lock);
  int stop = p->failed; /* another cgroup failed: its error is the one */
  if (!stop && p->spare_cnt) {
    p->spare_cnt--;
    c.buf = p->spare[p->spare_cnt];
    c.buf_cap = p->spare_cap[p->spare_cnt];
  }
  pthread_mutex_unlock(&p->lock);
  if (stop) return WKSP_SUCCESS;
  if (wksp_private_ckpt_test_fail_hook && wksp_private_ckpt_test_fail_hook(g))
    rc = wksp_err(WKSP_ERR_FAIL, EIO, "injected failure at cgroup %llu", (unsigned long long)g);
  if (!rc) rc = encode_cgroup(&c);
  /* An empty-output frame cannot exist (the data command is 24 bytes), but
   * the frame may still be fully buffered: write it out in turn. */
  int e = !rc && !c.is_head ? wait_head(&c) : 0;
  int canceled = e == ECANCELED || (rc && wksp_errno() == ECANCELED);
  if (e && !canceled) rc = wksp_err(WKSP_ERR_FAIL, e, "cgroup %llu: write", (unsigned long long)g);
  pthread_mutex_lock(&p->lock);
  if (c.buf && p->spare_cnt < WKSP_CHECKPT_THREADS_MAX) {
    p->spare[p->spare_cnt] = c.buf;
    p->spare_cap[p->spare_cnt++] = c.buf_cap;
    c.buf = NULL;
  }
  if (rc || canceled) p->failed = 1;
  else {
    const plan_t *pl = p->pl;
    for (uint64_t k = 0; k < pl->cg_cnt[g]; k++) {
      const wksp_part_t *q = &pl->parts[pl->order[pl->cg_start[g] + k]];
      p->done_sz += q->gaddr_hi - q->gaddr_lo;
    }
    p->head = g + 1;
    if (g + 1 < pl->C) pl->cg_off[g + 1] = p->pos;
  }
  pthread_cond_broadcast(&p->turn);
  uint64_t done = p->done_sz;
  pthread_mutex_unlock(&p->lock);
  free(c.buf);
  if (canceled) return WKSP_SUCCESS; /* another cgroup failed first: its error is the one */
  if (!rc && p->o->progress && pthread_equal(pthread_self(), p->caller)) {
    p->reported = done; /* only the calling thread reads or writes it */
    p->o->progress(done, p->pl->data_sz, p->o->progress_ctx);
  }
  return rc;
}

/* Writes the cgroup frames at checkpoint offset pos0; *pos gets the end. */
static int write_cgroups(int fd, plan_t *pl, int fsc, uint64_t pos0, const wksp_checkpt_opts_t *o,
                         uint64_t *pos) {
  par_t p = {.pl = pl, .fd = fd, .fsc = fsc, .o = o, .caller = pthread_self(), .pos = pos0};
  pthread_mutex_init(&p.lock, NULL);
  pthread_cond_init(&p.turn, NULL);
  if (pl->C) pl->cg_off[0] = pos0;
  /* RAW frames are plain copies: more threads would only add a buffer
   * copy for the frames waiting their turn, so they are written by one. */
  uint32_t threads = fsc == WKSP_FRAME_RAW ? 1 : o->threads ? o->threads : 1;
  int rc = wksp_private_ckpt_pool_run(threads, pl->C, par_task, &p);
  for (uint32_t i = 0; i < p.spare_cnt; i++) free(p.spare[i]);
  if (!rc && o->progress && p.reported < pl->data_sz) /* others finished the last cgroups */
    o->progress(pl->data_sz, pl->data_sz, o->progress_ctx);
  pthread_cond_destroy(&p.turn);
  pthread_mutex_destroy(&p.lock);
  *pos = p.pos;
  return rc;
}

/* ---- emission -------------------------------------------------------------------- */

static int write_head(int fd, const plan_t *pl, int fsc, const info_t *inf, ckpt_hdr_t *h,
                      uint64_t *end) {
  wksp_t *w = pl->w;
  *h = (ckpt_hdr_t){.magic = CKPT_MAGIC,
                    .style = 2,
                    .frame_style = fsc,
                    .seed = wksp_seed(w),
                    .part_max = wksp_part_max(w),
                    .data_max = wksp_data_max(w)};
  strncpy(h->name, wksp_name(w), CKPT_NAME_MAX - 1); /* zero-fills the rest */
  uint8_t hdr[CKPT_HDR_SZ], info[CKPT_INFO_SZ];
  wksp_private_ckpt_hdr_encode(hdr, h);
  wksp_private_ckpt_info_encode(info, &inf->info);
  wksp_frame_writer_t *fw = NULL;
  int rc = wksp_frame_writer_init_fd(&fw, fd);
  if (!rc) rc = wksp_frame_writer_open(fw, WKSP_FRAME_RAW, NULL);
  if (!rc) rc = wksp_frame_writer_data(fw, hdr, sizeof hdr);
  if (!rc) rc = wksp_frame_writer_close(fw, NULL);
  if (!rc) rc = wksp_frame_writer_open(fw, fsc, NULL);
  if (!rc) rc = wksp_frame_writer_meta(fw, info, sizeof info);
  if (!rc) rc = wksp_frame_writer_data(fw, inf->blob, inf->blob_sz);
  if (!rc) rc = wksp_frame_writer_close(fw, end);
  int rc2 = wksp_frame_writer_fini(fw, NULL);
  return rc ? rc : rc2;
}

/* Appendix, volumes and footer, starting at checkpoint offset base. */
static int write_tail(int fd, const plan_t *pl, int fsc, const ckpt_hdr_t *h, uint64_t base) {
  uint8_t cmd[CKPT_CMD_SZ], ftr[CKPT_FTR_SZ];
  uint8_t *arr = malloc(16 * pl->C + 1); /* data buffers: kept until close */
  if (!arr) return wksp_err(WKSP_ERR_NOMEM, 0, "checkpt: appendix");
  for (uint64_t g = 0; g < pl->C; g++) {
    ckpt_st64(arr + 8 * g, pl->cg_off[g]);
    ckpt_st64(arr + 8 * (pl->C + g), pl->cg_cnt[g]);
  }
  wksp_frame_writer_t *fw = NULL;
  uint64_t app_off = 0, vol_off = 0, ftr_off = 0;
  int rc = wksp_frame_writer_init_fd(&fw, fd);
  if (!rc) rc = wksp_frame_writer_open(fw, fsc, &app_off);
  app_off += base;
  wksp_private_ckpt_cmd_encode(cmd, 0, pl->C, 0);
  if (!rc) rc = wksp_frame_writer_meta(fw, cmd, sizeof cmd);
  if (!rc) rc = wksp_frame_writer_data(fw, arr, 8 * pl->C);
  if (!rc) rc = wksp_frame_writer_data(fw, arr + 8 * pl->C, 8 * pl->C);
  if (!rc) rc = wksp_frame_writer_close(fw, NULL);
  if (!rc) rc = wksp_frame_writer_open(fw, fsc, &vol_off);
  vol_off += base;
  wksp_private_ckpt_cmd_encode(cmd, 0, UINT64_MAX, app_off);
  if (!rc) rc = wksp_frame_writer_meta(fw, cmd, sizeof cmd);
  if (!rc) rc = wksp_frame_writer_close(fw, NULL);
  if (!rc) rc = wksp_frame_writer_open(fw, WKSP_FRAME_RAW, &ftr_off);
  ftr_off += base;
  ckpt_ftr_t f = {.alloc_cnt = pl->cnt,
                  .cgroup_cnt = pl->C,
                  .volume_cnt = 1,
                  .frame_off = vol_off,
                  .checkpt_sz = ftr_off + CKPT_FTR_SZ,
                  .data_max = h->data_max,
                  .part_max = h->part_max,
                  .seed = h->seed,
                  .reserved = 0,
                  .frame_style = h->frame_style,
                  .style = 2,
                  .unmagic = ~h->magic};
  memcpy(f.name, h->name, CKPT_NAME_MAX);
  wksp_private_ckpt_ftr_encode(ftr, &f);
  if (!rc) rc = wksp_frame_writer_data(fw, ftr, sizeof ftr);
  if (!rc) rc = wksp_frame_writer_close(fw, NULL);
  int rc2 = wksp_frame_writer_fini(fw, NULL);
  free(arr);
  return rc ? rc : rc2;
}

static int write_all(int fd, plan_t *pl, int fsc, const info_t *inf, const wksp_checkpt_opts_t *o) {
  ckpt_hdr_t h;
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

/* Writes the checkpoint to fd; when pub is non-NULL, publishes it (the
 * commit happens with the workspace still locked so that the file shows a
 * state the lock protected). */
static int checkpt_to(wksp_t *w, int fd, ckpt_pub_t *pub, const char *label,
                      const wksp_checkpt_opts_t *o) {
  int fsc = 0, rc = opts_check(o, &fsc);
  if (rc) return rc;
  uint32_t mode = o->mode ? o->mode : 0600;
  info_t inf = {0};
  plan_t pl = {0};
  rc = info_build(&inf, label, mode, o->uinfo);
  if (rc) goto out;
  rc = wksp_private_lock(w);
  if (rc) {
    wksp_err_wrap(rc, "checkpt %s: lock", label);
    goto out;
  }
  rc = plan_build(&pl, w);
  if (!rc) {
    rc = write_all(fd, &pl, fsc, &inf, o);
    if (rc == WKSP_ERR_FAIL) wksp_err_wrap(rc, "checkpt %s", label); /* I/O: name the target */
  }
  if (!rc && pub) rc = wksp_private_ckpt_pub_commit(pub);
  wksp_private_unlock(w);
out:
  plan_fini(&pl);
  free(inf.blob);
  return rc;
}

static const wksp_checkpt_opts_t opts_default = {0};

int wksp_checkpt_fd(wksp_t *w, int fd, const char *path_label, const wksp_checkpt_opts_t *opts) {
  if (!w || fd < 0) return wksp_err(WKSP_ERR_INVAL, 0, "wksp_checkpt_fd: NULL workspace or bad fd");
  return checkpt_to(w, fd, NULL, path_label ? path_label : "-", opts ? opts : &opts_default);
}

int wksp_checkpt(wksp_t *w, const char *path, const wksp_checkpt_opts_t *opts) {
  if (!w || !path) return wksp_err(WKSP_ERR_INVAL, 0, "wksp_checkpt: NULL workspace or path");
  if (!opts) opts = &opts_default;
  int fsc;
  int rc = opts_check(opts, &fsc);
  if (rc) return rc;
  ckpt_pub_t pub;
  rc = wksp_private_ckpt_pub_open(&pub, path, opts->mode ? opts->mode : 0600, opts->overwrite);
  if (rc) return rc;
  rc = checkpt_to(w, pub.fd, &pub, path, opts);
  wksp_private_ckpt_pub_abort(&pub);
  return rc;
}
