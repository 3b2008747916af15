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
#include <time.h>
#include <unistd.h>

#include "ckpt.h"
#include "util/err.h"
#include "wksp/frame.h"
#include "wksp/wksp_private.h"

int (*ckpt_test_fail_hook)(uint64_t cgroup);

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
  uint64_t *cg_cnt, *cg_start, *order; /* see ckpt_cgroup_assign */
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
  ckpt_cgroup_assign(pl->parts, pl->cnt, pl->cg_cnt, pl->cg_start, pl->order);
  return WKSP_SUCCESS;
}

/* ---- emission -------------------------------------------------------------------- */

static int write_cgroup(wksp_frame_writer_t *fw, const plan_t *pl, int fsc, uint64_t g,
                        uint64_t *off) {
  int rc = wksp_frame_writer_open(fw, fsc, off);
  const uint64_t *idx = pl->order + pl->cg_start[g];
  uint64_t n = pl->cg_cnt[g];
  uint8_t cmd[CKPT_CMD_SZ];
  for (uint64_t k = 0; !rc && k < n; k++) {
    const wksp_part_t *p = &pl->parts[idx[k]];
    ckpt_cmd_encode(cmd, p->tag, p->gaddr_lo, p->gaddr_hi);
    rc = wksp_frame_writer_meta(fw, cmd, sizeof cmd);
  }
  ckpt_cmd_encode(cmd, 0, UINT64_MAX, UINT64_MAX);
  if (!rc) rc = wksp_frame_writer_meta(fw, cmd, sizeof cmd);
  for (uint64_t k = 0; !rc && k < n; k++) {
    const wksp_part_t *p = &pl->parts[idx[k]];
    rc = wksp_frame_writer_data(fw, wksp_laddr(pl->w, p->gaddr_lo), p->gaddr_hi - p->gaddr_lo);
  }
  if (!rc) rc = wksp_frame_writer_close(fw, NULL);
  return rc;
}

static int write_all(wksp_frame_writer_t *fw, plan_t *pl, int fsc, const info_t *inf,
                     const wksp_checkpt_opts_t *o) {
  wksp_t *w = pl->w;
  ckpt_hdr_t h = {.magic = CKPT_MAGIC, .style = 2, .frame_style = fsc, .seed = wksp_seed(w),
                  .part_max = wksp_part_max(w), .data_max = wksp_data_max(w)};
  strncpy(h.name, wksp_name(w), CKPT_NAME_MAX - 1); /* zero-fills the rest */
  uint8_t hdr[CKPT_HDR_SZ], info[CKPT_INFO_SZ], cmd[CKPT_CMD_SZ], ftr[CKPT_FTR_SZ];
  ckpt_hdr_encode(hdr, &h);
  ckpt_info_encode(info, &inf->info);
  int rc = wksp_frame_writer_open(fw, WKSP_FRAME_RAW, NULL);
  if (!rc) rc = wksp_frame_writer_data(fw, hdr, sizeof hdr);
  if (!rc) rc = wksp_frame_writer_close(fw, NULL);
  if (!rc) rc = wksp_frame_writer_open(fw, fsc, NULL);
  if (!rc) rc = wksp_frame_writer_meta(fw, info, sizeof info);
  if (!rc) rc = wksp_frame_writer_data(fw, inf->blob, inf->blob_sz);
  if (!rc) rc = wksp_frame_writer_close(fw, NULL);
  uint64_t done = 0;
  for (uint64_t g = 0; !rc && g < pl->C; g++) {
    if (ckpt_test_fail_hook && ckpt_test_fail_hook(g)) {
      rc = wksp_err(WKSP_ERR_FAIL, EIO, "injected failure at cgroup %llu", (unsigned long long)g);
      break;
    }
    rc = write_cgroup(fw, pl, fsc, g, &pl->cg_off[g]);
    for (uint64_t k = 0; !rc && k < pl->cg_cnt[g]; k++) {
      const wksp_part_t *p = &pl->parts[pl->order[pl->cg_start[g] + k]];
      done += p->gaddr_hi - p->gaddr_lo;
    }
    if (!rc && o->progress) o->progress(done, pl->data_sz, o->progress_ctx);
  }
  /* Appendix arrays, as little-endian u64 (data buffers: kept until close). */
  uint8_t *arr = NULL;
  if (!rc && pl->C) {
    arr = malloc(16 * pl->C);
    if (!arr) rc = wksp_err(WKSP_ERR_NOMEM, 0, "checkpt: appendix");
    for (uint64_t g = 0; !rc && g < pl->C; g++) {
      ckpt_st64(arr + 8 * g, pl->cg_off[g]);
      ckpt_st64(arr + 8 * (pl->C + g), pl->cg_cnt[g]);
    }
  }
  uint64_t app_off = 0, vol_off = 0, ftr_off = 0;
  if (!rc) rc = wksp_frame_writer_open(fw, fsc, &app_off);
  ckpt_cmd_encode(cmd, 0, pl->C, 0);
  if (!rc) rc = wksp_frame_writer_meta(fw, cmd, sizeof cmd);
  if (!rc && pl->C) rc = wksp_frame_writer_data(fw, arr, 8 * pl->C);
  if (!rc && pl->C) rc = wksp_frame_writer_data(fw, arr + 8 * pl->C, 8 * pl->C);
  if (!rc) rc = wksp_frame_writer_close(fw, NULL);
  free(arr);
  if (!rc) rc = wksp_frame_writer_open(fw, fsc, &vol_off);
  ckpt_cmd_encode(cmd, 0, UINT64_MAX, app_off);
  if (!rc) rc = wksp_frame_writer_meta(fw, cmd, sizeof cmd);
  if (!rc) rc = wksp_frame_writer_close(fw, NULL);
  if (!rc) rc = wksp_frame_writer_open(fw, WKSP_FRAME_RAW, &ftr_off);
  ckpt_ftr_t f = {.alloc_cnt = pl->cnt, .cgroup_cnt = pl->C, .volume_cnt = 1,
                  .frame_off = vol_off, .checkpt_sz = ftr_off + CKPT_FTR_SZ,
                  .data_max = h.data_max, .part_max = h.part_max, .seed = h.seed,
                  .reserved = 0, .frame_style = fsc, .style = 2, .unmagic = ~h.magic};
  memcpy(f.name, h.name, CKPT_NAME_MAX);
  ckpt_ftr_encode(ftr, &f);
  if (!rc) rc = wksp_frame_writer_data(fw, ftr, sizeof ftr);
  if (!rc) rc = wksp_frame_writer_close(fw, NULL);
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
  wksp_frame_writer_t *fw = NULL;
  rc = info_build(&inf, label, mode, o->uinfo);
  if (rc) goto out;
  rc = wksp_private_lock(w);
  if (rc) {
    wksp_err_wrap(rc, "checkpt %s: lock", label);
    goto out;
  }
  rc = plan_build(&pl, w);
  if (!rc) rc = wksp_frame_writer_init_fd(&fw, fd);
  if (!rc) rc = write_all(fw, &pl, fsc, &inf, o);
  if (fw) {
    int rc2 = wksp_frame_writer_fini(fw, NULL);
    if (!rc) rc = rc2;
    if (rc == WKSP_ERR_FAIL) wksp_err_wrap(rc, "checkpt %s", label); /* I/O: name the target */
  }
  if (!rc && pub) rc = ckpt_pub_commit(pub);
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
  rc = ckpt_pub_open(&pub, path, opts->mode ? opts->mode : 0600, opts->overwrite);
  if (rc) return rc;
  rc = checkpt_to(w, pub.fd, &pub, path, opts);
  ckpt_pub_abort(&pub);
  return rc;
}
