/* What a checkpoint says about itself: the info frame the writer fills in
 * (who wrote it, where, when, the seal's placeholders), and the public
 * description readers build (wksp_checkpt_info_t: its strings, its
 * allocations sorted and checked for overlaps). */
#include <inttypes.h>
#include <pthread.h>
#include <pwd.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "checkpt_private.h"
#include "util/err.h"

#ifndef WKSP_VERSION
#define WKSP_VERSION "unknown"
#endif

/* Copies s into a log-name field: at most 39 bytes, never empty. */
static void log_name(char out[CHECKPT_LOG_NAME_MAX], const char *s) {
  if (!s || !*s) s = "?";
  snprintf(out, CHECKPT_LOG_NAME_MAX, "%s", s);
}

/* seal: the app id is the seal mark and the build info carries the seal's
 * placeholder lines (seal.c), their digits to be filled in once the file
 * has been read back. */
int wksp_private_checkpt_info_build(checkpt_info_frame_t *inf, const char *path, uint64_t mode,
                                    const char *uinfo, int seal) {
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

  char body[400], binfo[512];
  snprintf(body, sizeof body, "wksp library %s\ncompiler %.300s\n", WKSP_VERSION, __VERSION__);
  uint64_t seal_in_binfo[2] = {0, 0};
  wksp_private_checkpt_seal_binfo(binfo, sizeof binfo, body, seal, seal_in_binfo);
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


/* ---- readers: wksp_checkpt_info_t ------------------------------------------------ */

int wksp_private_checkpt_info_strings(checkpt_scan_t *s, const char *const str[CHECKPT_S_CNT],
                                   const uint64_t len[CHECKPT_S_CNT]) {
  wksp_checkpt_info_t *I = &s->info;
  uint64_t total = 0;
  for (int k = CHECKPT_S_PATH; k < CHECKPT_S_CNT; k++) total += len[k] + 1;
  char *own = malloc(total);
  if (!own) return wksp_err(WKSP_ERR_NOMEM, 0, "checkpt info strings");
  free(I->priv_);
  I->priv_ = own;
  char *small[6] = {I->app, I->thread, I->host, I->cpu, I->group, I->user};
  for (int k = 0; k < 6; k++) {
    size_t n = len[k] < CHECKPT_LOG_NAME_MAX - 1 ? len[k] : CHECKPT_LOG_NAME_MAX - 1;
    memcpy(small[k], str[k], n);
    small[k][n] = 0;
  }
  const char **big[3] = {&I->path, &I->binfo, &I->uinfo};
  for (int k = CHECKPT_S_PATH; k < CHECKPT_S_CNT; k++) {
    memcpy(own, str[k], len[k]);
    own[len[k]] = 0;
    *big[k - CHECKPT_S_PATH] = own;
    own += len[k] + 1;
  }
  return WKSP_SUCCESS;
}

static int cmp_part(const void *a, const void *b) {
  const wksp_part_t *x = a, *y = b;
  return x->gaddr_lo < y->gaddr_lo ? -1 : x->gaddr_lo > y->gaddr_lo;
}

int wksp_private_checkpt_info_parts(checkpt_scan_t *s, const char *what) {
  uint64_t n = s->info.alloc_cnt;
  s->info.parts = malloc((n ? n : 1) * sizeof *s->info.parts);
  if (!s->info.parts) return wksp_err(WKSP_ERR_NOMEM, 0, "%s: allocation list", what);
  if (n) memcpy(s->info.parts, s->file_parts, n * sizeof *s->info.parts);
  qsort(s->info.parts, n, sizeof *s->info.parts, cmp_part);
  s->info.alloc_sz = 0;
  for (uint64_t k = 0; k < n; k++) {
    const wksp_part_t *b = &s->info.parts[k];
    s->info.alloc_sz += b->gaddr_hi - b->gaddr_lo;
    if (!k) continue;
    const wksp_part_t *a = b - 1;
    if (b->gaddr_lo < a->gaddr_hi)
      return wksp_err(WKSP_ERR_CORRUPT, 0,
                      "%s: allocations [%" PRIu64 ",%" PRIu64 ") and [%" PRIu64 ",%" PRIu64 ") overlap", what,
                      a->gaddr_lo, a->gaddr_hi, b->gaddr_lo, b->gaddr_hi);
  }
  return WKSP_SUCCESS;
}
