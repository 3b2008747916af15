#include "format_private.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "util/err.h"

/* ---- records ---------------------------------------------------------------- */

void wksp_private_checkpt_hdr_encode(uint8_t out[CHECKPT_HDR_SZ], const checkpt_hdr_t *h) {
  checkpt_st64(out + 0, h->magic);
  checkpt_st32(out + 8, (uint32_t)h->style);
  checkpt_st32(out + 12, (uint32_t)h->frame_style);
  checkpt_st32(out + 16, h->reserved);
  memcpy(out + 20, h->name, CHECKPT_NAME_MAX);
  checkpt_st32(out + 60, h->seed);
  checkpt_st64(out + 64, h->part_max);
  checkpt_st64(out + 72, h->data_max);
}

void wksp_private_checkpt_hdr_decode(checkpt_hdr_t *h, const uint8_t in[CHECKPT_HDR_SZ]) {
  h->magic = checkpt_ld64(in + 0);
  h->style = (int32_t)checkpt_ld32(in + 8);
  h->frame_style = (int32_t)checkpt_ld32(in + 12);
  h->reserved = checkpt_ld32(in + 16);
  memcpy(h->name, in + 20, CHECKPT_NAME_MAX);
  h->seed = checkpt_ld32(in + 60);
  h->part_max = checkpt_ld64(in + 64);
  h->data_max = checkpt_ld64(in + 72);
}

void wksp_private_checkpt_info_encode(uint8_t out[CHECKPT_INFO_SZ], const checkpt_info_t *i) {
  const uint64_t v[9] = {i->mode,     (uint64_t)i->wallclock,
                         i->app_id,   i->thread_id,
                         i->host_id,  i->cpu_id,
                         i->group_id, i->tid,
                         i->user_id};
  for (int k = 0; k < 9; k++) checkpt_st64(out + 8 * k, v[k]);
  for (int k = 0; k < CHECKPT_S_CNT; k++) checkpt_st64(out + 72 + 8 * k, i->sz[k]);
}

void wksp_private_checkpt_info_decode(checkpt_info_t *i, const uint8_t in[CHECKPT_INFO_SZ]) {
  i->mode = checkpt_ld64(in + 0);
  i->wallclock = (int64_t)checkpt_ld64(in + 8);
  i->app_id = checkpt_ld64(in + 16);
  i->thread_id = checkpt_ld64(in + 24);
  i->host_id = checkpt_ld64(in + 32);
  i->cpu_id = checkpt_ld64(in + 40);
  i->group_id = checkpt_ld64(in + 48);
  i->tid = checkpt_ld64(in + 56);
  i->user_id = checkpt_ld64(in + 64);
  for (int k = 0; k < CHECKPT_S_CNT; k++) i->sz[k] = checkpt_ld64(in + 72 + 8 * k);
}

void wksp_private_checkpt_cmd_encode(uint8_t out[CHECKPT_CMD_SZ], uint64_t tag, uint64_t a, uint64_t b) {
  checkpt_st64(out + 0, tag);
  checkpt_st64(out + 8, a);
  checkpt_st64(out + 16, b);
}

void wksp_private_checkpt_cmd_decode(checkpt_cmd_t *c, const uint8_t in[CHECKPT_CMD_SZ]) {
  c->tag = checkpt_ld64(in + 0);
  c->a = checkpt_ld64(in + 8);
  c->b = checkpt_ld64(in + 16);
}

void wksp_private_checkpt_ftr_encode(uint8_t out[CHECKPT_FTR_SZ], const checkpt_ftr_t *f) {
  checkpt_st64(out + 0, f->alloc_cnt);
  checkpt_st64(out + 8, f->cgroup_cnt);
  checkpt_st64(out + 16, f->volume_cnt);
  checkpt_st64(out + 24, f->frame_off);
  checkpt_st64(out + 32, f->checkpt_sz);
  checkpt_st64(out + 40, f->data_max);
  checkpt_st64(out + 48, f->part_max);
  checkpt_st32(out + 56, f->seed);
  memcpy(out + 60, f->name, CHECKPT_NAME_MAX);
  checkpt_st32(out + 100, f->reserved);
  checkpt_st32(out + 104, (uint32_t)f->frame_style);
  checkpt_st32(out + 108, (uint32_t)f->style);
  checkpt_st64(out + 112, f->unmagic);
}

void wksp_private_checkpt_ftr_decode(checkpt_ftr_t *f, const uint8_t in[CHECKPT_FTR_SZ]) {
  f->alloc_cnt = checkpt_ld64(in + 0);
  f->cgroup_cnt = checkpt_ld64(in + 8);
  f->volume_cnt = checkpt_ld64(in + 16);
  f->frame_off = checkpt_ld64(in + 24);
  f->checkpt_sz = checkpt_ld64(in + 32);
  f->data_max = checkpt_ld64(in + 40);
  f->part_max = checkpt_ld64(in + 48);
  f->seed = checkpt_ld32(in + 56);
  memcpy(f->name, in + 60, CHECKPT_NAME_MAX);
  f->reserved = checkpt_ld32(in + 100);
  f->frame_style = (int32_t)checkpt_ld32(in + 104);
  f->style = (int32_t)checkpt_ld32(in + 108);
  f->unmagic = checkpt_ld64(in + 112);
}

/* ---- validation -------------------------------------------------------------- */

int wksp_private_checkpt_sizes_valid(uint64_t part_max, uint64_t data_max) {
  if (part_max < 1 || part_max > WKSP_PART_MAX_LIMIT || data_max < 1) return 0;
  uint64_t data_off = checkpt_gaddr_lo(part_max);
  return data_max <= UINT64_MAX - 128 - data_off;
}

int wksp_private_checkpt_hdr_check(const checkpt_hdr_t *h, const char *what) {
  if (h->magic != CHECKPT_MAGIC)
    return wksp_err(WKSP_ERR_CORRUPT, 0, "%s: header magic 0x%016" PRIx64 ", expected 0x%016" PRIx64, what,
                    h->magic, (uint64_t)CHECKPT_MAGIC);
  if (h->style != 2)
    return wksp_err(WKSP_ERR_CORRUPT, 0, "%s: header style %d, expected 2", what, (int)h->style);
  if (h->frame_style != 1 && h->frame_style != 2)
    return wksp_err(WKSP_ERR_CORRUPT, 0, "%s: header frame_style_compressed %d, expected 1 or 2",
                    what, (int)h->frame_style);
  if (h->reserved)
    return wksp_err(WKSP_ERR_CORRUPT, 0, "%s: header reserved field %u, expected 0", what,
                    (unsigned)h->reserved);
  if (!wksp_private_name_len(h->name))
    return wksp_err(WKSP_ERR_CORRUPT, 0, "%s: header workspace name is not a valid name", what);
  if (!wksp_private_checkpt_sizes_valid(h->part_max, h->data_max))
    return wksp_err(WKSP_ERR_CORRUPT, 0,
                    "%s: header part_max %" PRIu64 " / data_max %" PRIu64 " are not valid", what, h->part_max,
                    h->data_max);
  return WKSP_SUCCESS;
}

static const char *const info_str_name[CHECKPT_S_CNT] = {"app",  "thread", "host",  "cpu",  "group",
                                                      "user", "path",   "binfo", "uinfo"};

static uint64_t info_str_max(int k) {
  if (k == CHECKPT_S_PATH) return CHECKPT_PATH_MAX;
  if (k == CHECKPT_S_BINFO || k == CHECKPT_S_UINFO) return CHECKPT_INFO_STR_MAX;
  return CHECKPT_LOG_NAME_MAX;
}

int wksp_private_checkpt_info_check(const checkpt_info_t *i, uint64_t *blob_sz, const char *what) {
  uint64_t sum = 0;
  for (int k = 0; k < CHECKPT_S_CNT; k++) {
    if (i->sz[k] < 1 || i->sz[k] > info_str_max(k))
      return wksp_err(WKSP_ERR_CORRUPT, 0, "%s: info %s size %" PRIu64 ", expected 1..%" PRIu64, what,
                      info_str_name[k], i->sz[k], info_str_max(k));
    sum += i->sz[k];
  }
  if (sum > CHECKPT_INFO_BLOB_MAX)
    return wksp_err(WKSP_ERR_CORRUPT, 0, "%s: info strings total %" PRIu64 " bytes, limit %" PRIu64, what,
                    sum, (uint64_t)CHECKPT_INFO_BLOB_MAX);
  *blob_sz = sum;
  return WKSP_SUCCESS;
}

int wksp_private_checkpt_info_blob_check(const checkpt_info_t *i, const uint8_t *blob, const char *what) {
  const uint8_t *s = blob;
  for (int k = 0; k < CHECKPT_S_CNT; k++) {
    const uint8_t *nul = memchr(s, 0, i->sz[k]);
    if (nul != s + i->sz[k] - 1)
      return wksp_err(WKSP_ERR_CORRUPT, 0, "%s: info %s string is not NUL-terminated at its size %" PRIu64,
                      what, info_str_name[k], i->sz[k]);
    s += i->sz[k];
  }
  return WKSP_SUCCESS;
}

int wksp_private_checkpt_ftr_check(const checkpt_ftr_t *f, const checkpt_hdr_t *h, uint64_t checkpt_sz,
                                const char *what) {
  const char *bad = NULL;
  if (f->checkpt_sz != checkpt_sz) bad = "checkpt_sz";
  else if (f->data_max != h->data_max) bad = "data_max";
  else if (f->part_max != h->part_max) bad = "part_max";
  else if (f->seed != h->seed) bad = "seed";
  else if (memcmp(f->name, h->name, CHECKPT_NAME_MAX)) bad = "name";
  else if (f->reserved != h->reserved) bad = "reserved";
  else if (f->frame_style != h->frame_style) bad = "frame_style_compressed";
  else if (f->style != h->style) bad = "style";
  else if (f->unmagic != ~h->magic) bad = "unmagic";
  if (!bad) return WKSP_SUCCESS;
  if (f->checkpt_sz != checkpt_sz)
    return wksp_err(WKSP_ERR_CORRUPT, 0,
                    "%s: footer checkpt_sz %" PRIu64 ", but the checkpoint is %" PRIu64 " bytes", what,
                    f->checkpt_sz, checkpt_sz);
  return wksp_err(WKSP_ERR_CORRUPT, 0, "%s: footer %s does not match the header", what, bad);
}

int wksp_private_checkpt_meta_check(const checkpt_cmd_t *c, uint64_t src_lo, uint64_t src_hi,
                                 uint64_t off, const char *what) {
  if (!c->tag)
    return wksp_err(WKSP_ERR_CORRUPT, 0, "%s: command at offset %" PRIu64 " is not an allocation (tag 0)",
                    what, off);
  if (!(src_lo <= c->a && c->a < c->b && c->b <= src_hi))
    return wksp_err(WKSP_ERR_CORRUPT, 0,
                    "%s: allocation at offset %" PRIu64 " has range [%" PRIu64 ",%" PRIu64
                    ") outside the source data "
                    "region [%" PRIu64 ",%" PRIu64 ")",
                    what, off, c->a, c->b, src_lo, src_hi);
  return WKSP_SUCCESS;
}

/* ---- cgroup assignment --------------------------------------------------------- */

void wksp_private_checkpt_cgroup_assign(const wksp_part_t *parts, uint64_t cnt, uint64_t *cg_cnt,
                                     uint64_t *cg_start, uint64_t *order) {
  uint64_t C = checkpt_cgroup_cnt(cnt);
  if (!C) {
    cg_start[0] = 0;
    return;
  }
  uint64_t load[CHECKPT_CGROUP_MAX]; /* bytes assigned to each group */
  for (uint64_t g = 0; g < C; g++) load[g] = cg_cnt[g] = 0;
  /* Pass 1, descending address as the reference: order[k] = group of k. */
  uint64_t cursor = 0, last = 0;
  for (uint64_t k = cnt; k-- > 0;) {
    const wksp_part_t *p = &parts[k];
    uint64_t h = checkpt_hash64(p->gaddr_lo);
    uint64_t i0 = last, i1 = cursor, i2 = h % C, i3 = (h >> 32) % C;
    uint64_t x = load[i0] <= load[i1] ? i0 : i1;
    uint64_t y = load[i2] <= load[i3] ? i2 : i3;
    uint64_t g = load[x] <= load[y] ? x : y;
    cursor = cursor < C - 1 ? cursor + 1 : 0;
    last = g;
    cg_cnt[g]++;
    load[g] += CHECKPT_CMD_SZ + (p->gaddr_hi - p->gaddr_lo);
    order[k] = g;
  }
  cg_start[0] = 0;
  for (uint64_t g = 0; g < C; g++) cg_start[g + 1] = cg_start[g] + cg_cnt[g];
  /* Pass 2: stable counting sort by group, in place.  First order[k]
   * becomes k's destination slot (ascending k keeps each group ascending),
   * then the permutation is applied by following its cycles, marking
   * placed slots with the top bit (cnt < 2^63 always). */
  for (uint64_t g = 0; g < C; g++) load[g] = cg_start[g]; /* fill cursors */
  for (uint64_t k = 0; k < cnt; k++) order[k] = load[order[k]]++;
  const uint64_t done = 1ull << 63;
  for (uint64_t k = 0; k < cnt; k++) {
    if (order[k] & done) continue;
    uint64_t src = k, dst = order[k];
    while (!(order[dst] & done)) {
      uint64_t next = order[dst];
      order[dst] = src | done;
      src = dst;
      dst = next;
    }
  }
  for (uint64_t k = 0; k < cnt; k++) order[k] &= ~done;
}

/* ---- SVW ------------------------------------------------------------------------ */

size_t wksp_private_checkpt_svw_encode(uint8_t out[CHECKPT_SVW_MAX], uint64_t x) {
  uint64_t e;
  size_t w;
  if (x < (1ull << 6)) e = x << 1, w = 1;
  else if (x < (1ull << 10)) e = 0x8001ull | x << 3, w = 2;
  else if (x < (1ull << 18)) {
    e = (0x5ull | x << 3) & 0xFFFF;
    e |= (0xA0ull | x >> 13) << 16;
    w = 3;
  } else if (x < (1ull << 24)) e = 0xC0000003ull | x << 4, w = 4;
  else if (x < (1ull << 32)) {
    e = (0xBull | x << 4) & 0xFFFFFFFFull;
    e |= (0xD0ull | x >> 28) << 32;
    w = 5;
  } else if (x < (1ull << 56)) e = 0xE000000000000007ull | x << 4, w = 8;
  else {
    checkpt_st64(out, 0xFull | x << 4);
    out[8] = (uint8_t)(0xF0 | x >> 60);
    return 9;
  }
  for (size_t i = 0; i < w; i++) out[i] = (uint8_t)(e >> (8 * i));
  return w;
}

size_t wksp_private_checkpt_svw_width(uint8_t b) {
  if (!(b & 1)) return 1;
  if ((b & 7) == 1) return 2;
  if ((b & 7) == 5) return 3;
  switch (b & 15) {
  case 3: return 4;
  case 11: return 5;
  case 7: return 8;
  default: return 9; /* 15: the only nibble left with low bits 111 */
  }
}

size_t wksp_private_checkpt_svw_decode(const uint8_t *p, size_t avail, uint64_t *x) {
  if (!avail) return 0;
  size_t w = wksp_private_checkpt_svw_width(p[0]);
  if (w > avail) return 0;
  uint64_t e = 0;
  for (size_t i = 0; i < w && i < 8; i++) e |= (uint64_t)p[i] << (8 * i);
  switch (w) {
  case 1: *x = e >> 1; break;
  case 2: *x = (e >> 3) & 1023; break;
  case 3: *x = ((e & 0xFFFF) >> 3) | (uint64_t)(p[2] & 0x1F) << 13; break;
  case 4: *x = (e >> 4) & 0xFFFFFF; break;
  case 5: *x = ((e & 0xFFFFFFFFull) >> 4) | (uint64_t)(p[4] & 0xF) << 28; break;
  case 8: *x = (e >> 4) & ((1ull << 56) - 1); break;
  default: *x = (e >> 4) | (uint64_t)p[8] << 60; break;
  }
  return w;
}
