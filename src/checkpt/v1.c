/* Legacy v1 checkpoints (docs/FORMAT.md 5): a stream of SVW integers and
 * strings followed by the allocations.  Only reading is supported.  The
 * whole stream is validated before a restore touches the target, which
 * also removes the reference's bug of 5.3 (a first allocation that does not
 * fit the target made it return success without restoring anything): here
 * such a checkpoint is a FULL error with the target untouched. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "checkpt_private.h"
#include "util/err.h"

/* A window on the input: bytes [win_at, win_at + win_len) are in win.
 * Allocation bytes are skipped, not read; after a skip the window starts
 * small (the next allocation's three integers), and grows while the reads
 * are contiguous (many small allocations). */
enum {
  WIN_MIN = 4096,
  WIN_MAX = 64 * 1024,
  /* the most bytes before the first allocation: 13 integers, 9 strings */
  V1_HEAD_MAX = 22 * CHECKPT_SVW_MAX + (CHECKPT_NAME_MAX - 1) + 6 * (CHECKPT_LOG_NAME_MAX - 1) +
                2 * (CHECKPT_INFO_STR_MAX - 1)
};
_Static_assert(V1_HEAD_MAX <= WIN_MAX, "the v1 head fits one window");

typedef struct {
  const checkpt_input_t *in;
  uint8_t *win;
  uint64_t win_at, win_len, win_cap;
  uint64_t sz, at;
  const char *what;
} v1_rd_t;

/* Makes up to n bytes from r->at available at *p (fewer at the end of the
 * input: *have). */
static int v1_see(v1_rd_t *r, uint64_t n, const uint8_t **p, uint64_t *have) {
  if (n > r->sz - r->at) n = r->sz - r->at;
  if (r->at < r->win_at || r->at + n > r->win_at + r->win_len) {
    uint64_t cap = r->at == r->win_at + r->win_len ? 2 * r->win_len : 0;
    cap = cap < WIN_MIN ? WIN_MIN : cap > WIN_MAX ? WIN_MAX : cap;
    if (cap < n) cap = n;
    if (cap > r->win_cap) {
      uint8_t *w = realloc(r->win, cap);
      if (!w) return wksp_err(WKSP_ERR_NOMEM, 0, "%s: v1 read buffer", r->what);
      r->win = w;
      r->win_cap = cap;
    }
    uint64_t len = r->sz - r->at < cap ? r->sz - r->at : cap;
    int rc = wksp_private_checkpt_input_read(r->in, r->win, len, r->at);
    if (rc) return rc;
    r->win_at = r->at;
    r->win_len = len;
  }
  *p = r->win + (r->at - r->win_at);
  *have = n;
  return WKSP_SUCCESS;
}

static int v1_int(v1_rd_t *r, uint64_t *x, const char *field) {
  const uint8_t *p = NULL;
  uint64_t have = 0;
  int rc = v1_see(r, CHECKPT_SVW_MAX, &p, &have);
  if (rc) return rc;
  size_t n = wksp_private_checkpt_svw_decode(p, (size_t)have, x);
  if (!n)
    return wksp_err(WKSP_ERR_CORRUPT, 0, "%s: v1 %s truncated at offset %" PRIu64, r->what, field, r->at);
  r->at += n;
  return WKSP_SUCCESS;
}

/* A string: SVW length (<= max) then that many bytes without NUL. */
static int v1_str(v1_rd_t *r, const char **s, uint64_t *len, uint64_t max, const char *field) {
  int rc = v1_int(r, len, field);
  if (rc) return rc;
  if (*len > max || *len > r->sz - r->at)
    return wksp_err(WKSP_ERR_CORRUPT, 0,
                    "%s: v1 %s length %" PRIu64 " (max %" PRIu64 ", %" PRIu64 " bytes left)", r->what, field,
                    *len, max, (r->sz - r->at));
  const uint8_t *p = NULL;
  uint64_t have = 0;
  rc = v1_see(r, *len, &p, &have); /* inside the head's window: *s stays valid */
  if (rc) return rc;
  *s = (const char *)p;
  if (memchr(*s, 0, *len))
    return wksp_err(WKSP_ERR_CORRUPT, 0, "%s: v1 %s contains a NUL byte", r->what, field);
  r->at += *len;
  return WKSP_SUCCESS;
}

static int v1_head(checkpt_scan_t *s, v1_rd_t *r) {
  static const char *const iname[13] = {"magic",     "style",  "seed",      "part_max", "data_max",
                                        "wallclock", "app_id", "thread_id", "host_id",  "cpu_id",
                                        "group_id",  "tid",    "user_id"};
  /* The whole head in one window, so that the strings stay where they
   * were read until they are copied. */
  const uint8_t *p = NULL;
  uint64_t v[13], have = 0;
  int rc = v1_see(r, V1_HEAD_MAX, &p, &have);
  for (int k = 0; !rc && k < 13; k++) rc = v1_int(r, &v[k], iname[k]);
  if (rc) return rc;
  rc = wksp_private_checkpt_preview_any(p, have < CHECKPT_PREVIEW_MAX ? have : CHECKPT_PREVIEW_MAX,
                                     &s->info.pv, r->what);
  if (rc) return rc;
  if (s->info.pv.style != 1)
    return wksp_err(WKSP_ERR_CORRUPT, 0, "%s: not a v1 checkpoint", r->what);
  static const char *const sname[9] = {"name",  "app",  "thread", "host", "cpu",
                                       "group", "user", "binfo",  "uinfo"};
  const char *str[9];
  uint64_t len[9];
  for (int k = 0; !rc && k < 9; k++) {
    uint64_t max = k == 0   ? CHECKPT_NAME_MAX - 1
                   : k >= 7 ? CHECKPT_INFO_STR_MAX - 1
                            : CHECKPT_LOG_NAME_MAX - 1;
    rc = v1_str(r, &str[k], &len[k], max, sname[k]);
  }
  if (rc) return rc;
  /* Into the v2 order: app..user, path (none in v1), binfo, uinfo. */
  const char *o_str[CHECKPT_S_CNT] = {str[1], str[2], str[3], str[4], str[5],
                                   str[6], "",     str[7], str[8]};
  uint64_t o_len[CHECKPT_S_CNT] = {len[1], len[2], len[3], len[4], len[5], len[6], 0, len[7], len[8]};
  rc = wksp_private_checkpt_info_strings(s, o_str, o_len);
  if (rc) return rc;
  wksp_checkpt_info_t *o = &s->info;
  o->wallclock = (int64_t)v[5];
  o->app_id = v[6];
  o->thread_id = v[7];
  o->host_id = v[8];
  o->cpu_id = v[9];
  o->group_id = v[10];
  o->tid = v[11];
  o->user_id = v[12];
  return WKSP_SUCCESS;
}

static int v1_grow(checkpt_scan_t *s, uint64_t *cap, uint64_t n, const char *what) {
  if (n < *cap) return WKSP_SUCCESS;
  uint64_t c = *cap ? 2 * *cap : 64;
  wksp_part_t *p = realloc(s->file_parts, c * sizeof *p);
  if (p) s->file_parts = p;
  uint64_t *d = p ? realloc(s->v1_data_off, c * sizeof *d) : NULL;
  if (!d) return wksp_err(WKSP_ERR_NOMEM, 0, "%s: allocation list", what);
  s->v1_data_off = d;
  *cap = c;
  return WKSP_SUCCESS;
}

static int v1_allocs(checkpt_scan_t *s, v1_rd_t *r) {
  uint64_t src_lo = checkpt_gaddr_lo(s->info.pv.part_max), src_hi = src_lo + s->info.pv.data_max;
  uint64_t n = 0, cap = 0;
  for (;;) {
    uint64_t tag, lo, sz, at = r->at;
    int rc = v1_int(r, &tag, "allocation tag");
    if (rc) return rc;
    if (!tag) break;
    rc = v1_int(r, &lo, "allocation gaddr");
    if (!rc) rc = v1_int(r, &sz, "allocation size");
    if (rc) return rc;
    if (!(src_lo <= lo && sz && sz <= src_hi - lo))
      return wksp_err(WKSP_ERR_CORRUPT, 0,
                      "%s: v1 allocation at offset %" PRIu64 ": [%" PRIu64 ",+%" PRIu64
                      ") outside the source data "
                      "region [%" PRIu64 ",%" PRIu64 ")",
                      r->what, at, lo, sz, src_lo, src_hi);
    if (sz > r->sz - r->at)
      return wksp_err(WKSP_ERR_CORRUPT, 0, "%s: v1 allocation at offset %" PRIu64 " truncated", r->what, at);
    if (n == s->info.pv.part_max) /* a limit of checkpt_private.h */
      return wksp_err(WKSP_ERR_CORRUPT, 0,
                      "%s: v1 allocation at offset %" PRIu64 ": more allocations than part_max %" PRIu64,
                      r->what, at, s->info.pv.part_max);
    rc = v1_grow(s, &cap, n, r->what);
    if (rc) return rc;
    s->file_parts[n] = (wksp_part_t){.gaddr_lo = lo, .gaddr_hi = lo + sz, .tag = tag};
    s->v1_data_off[n] = r->at;
    n++;
    r->at += sz;
  }
  s->info.file_sz = r->at; /* bytes after the terminator are not part of it */
  s->info.alloc_cnt = n;
  return WKSP_SUCCESS;
}

int wksp_private_checkpt_v1_scan(checkpt_scan_t *s, const checkpt_input_t *in) {
  v1_rd_t r = {.in = in, .sz = in->sz, .what = in->label};
  int rc = v1_head(s, &r);
  if (!rc) rc = v1_allocs(s, &r);
  free(r.win);
  return rc ? rc : wksp_private_checkpt_info_parts(s, r.what);
}
