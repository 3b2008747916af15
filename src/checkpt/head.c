/* The first bytes of a checkpoint (docs/FORMAT.md 4.2, 5.1, 7): v2 header or
 * v1 preamble recognized and checked, the preview fields, and the most
 * bytes a checkpoint with that header can have (the limits of
 * checkpt_private.h).  Pure functions on bytes. */
#include <inttypes.h>
#include <string.h>

#include "checkpt_private.h"
#include "delta_private.h"
#include "util/err.h"
#include <wksp/frame.h>

int wksp_private_checkpt_preview_v2(const uint8_t *p, size_t sz, wksp_preview_t *out,
                                 const char *what) {
  if (sz < CHECKPT_HDR_SZ)
    return wksp_err(WKSP_ERR_CORRUPT, 0, "%s: %zu bytes, a v2 header needs %d", what, sz,
                    CHECKPT_HDR_SZ);
  checkpt_hdr_t h;
  wksp_private_checkpt_hdr_decode(&h, p);
  int rc = wksp_private_checkpt_hdr_check(&h, what);
  if (rc) return rc;
  memset(out, 0, sizeof *out);
  out->style = 2;
  out->frame_style = h.frame_style;
  memcpy(out->name, h.name, CHECKPT_NAME_MAX);
  out->name[CHECKPT_NAME_MAX - 1] = 0;
  out->seed = h.seed;
  out->part_max = h.part_max;
  out->data_max = h.data_max;
  return WKSP_SUCCESS;
}

/* Neither the v2 magic nor the v1 one (an SVW integer) at the start. */
static int bad_magic(const uint8_t *p, size_t sz, const char *what) {
  if (sz < 8)
    return wksp_err(WKSP_ERR_CORRUPT, 0, "%s: only %zu bytes, not a wksp checkpoint", what, sz);
  if (checkpt_ld64(p) == DELTA_MAGIC)
    return wksp_err(WKSP_ERR_UNSUP, 0,
                    "%s is a wksp delta (incremental checkpoint): restore it after its base "
                    "(wksp restore NAME BASE DELTA..., wksp_restore_chain)", what);
  if (checkpt_ld64(p) == INDEX_MAGIC)
    return wksp_err(WKSP_ERR_UNSUP, 0,
                    "%s is a wksp index (the sidecar of a checkpoint), not a checkpoint", what);
  return wksp_err(WKSP_ERR_CORRUPT, 0,
                  "%s: not a wksp checkpoint: bad magic 0x%016" PRIx64 " (expected 0x%016" PRIx64 ")", what,
                  checkpt_ld64(p), (uint64_t)CHECKPT_MAGIC);
}

/* v1 preamble: 13 SVW integers, then the name as SVW length + bytes. */
static int preview_v1(const uint8_t *p, size_t sz, wksp_preview_t *out, const char *what) {
  uint64_t v[14];
  size_t used = 0;
  for (int k = 0; k < 14; k++) {
    size_t n = wksp_private_checkpt_svw_decode(p + used, sz - used, &v[k]);
    if (!k && (!n || v[0] != CHECKPT_MAGIC)) return bad_magic(p, sz, what);
    if (!n) return wksp_err(WKSP_ERR_CORRUPT, 0, "%s: truncated v1 preamble", what);
    used += n;
  }
  if (v[1] != 1)
    return wksp_err(WKSP_ERR_CORRUPT, 0, "%s: v1 style %" PRIu64 ", expected 1", what, v[1]);
  if (v[2] > UINT32_MAX)
    return wksp_err(WKSP_ERR_CORRUPT, 0, "%s: v1 seed %" PRIu64 " does not fit 32 bits", what, v[2]);
  if (!wksp_private_checkpt_sizes_valid(v[3], v[4]))
    return wksp_err(WKSP_ERR_CORRUPT, 0, "%s: v1 part_max %" PRIu64 " / data_max %" PRIu64 " are not valid",
                    what, v[3], v[4]);
  uint64_t len = v[13];
  if (len < 1 || len > CHECKPT_NAME_MAX - 1 || len > sz - used)
    return wksp_err(WKSP_ERR_CORRUPT, 0, "%s: v1 name length %" PRIu64, what, len);
  char name[CHECKPT_NAME_MAX] = {0};
  memcpy(name, p + used, len);
  if (wksp_private_name_len(name) != len)
    return wksp_err(WKSP_ERR_CORRUPT, 0, "%s: v1 workspace name is not a valid name", what);
  memset(out, 0, sizeof *out);
  out->style = 1;
  memcpy(out->name, name, CHECKPT_NAME_MAX);
  out->seed = (uint32_t)v[2];
  out->part_max = v[3];
  out->data_max = v[4];
  return WKSP_SUCCESS;
}

int wksp_private_checkpt_preview_any(const uint8_t *p, size_t sz, wksp_preview_t *out,
                                  const char *what) {
  if (sz >= 8 && checkpt_ld64(p) == CHECKPT_MAGIC) return wksp_private_checkpt_preview_v2(p, sz, out, what);
  return preview_v1(p, sz, out, what);
}

/* ---- the most bytes a checkpoint can have (checkpt_private.h, limits) ------------------- */

static uint64_t sat_add(uint64_t a, uint64_t b) { return a > UINT64_MAX - b ? UINT64_MAX : a + b; }
static uint64_t sat_mul(uint64_t a, uint64_t b) {
  return b && a > UINT64_MAX / b ? UINT64_MAX : a * b;
}

uint64_t wksp_private_checkpt_v2_max_sz(uint64_t part_max, uint64_t data_max, int frame_style) {
  uint64_t A = part_max < data_max ? part_max : data_max; /* allocations: records, bytes */
  uint64_t G = checkpt_frames_max(part_max);                   /* cgroup frames, and volumes */
  /* Per frame kind: header, footer; the info struct and its strings (one
   * buffer each); a command for every allocation, cgroup frame (its data
   * command), volume (its appendix) and the volumes frame; the
   * allocations' bytes; the appendices' two arrays (8 bytes per cgroup
   * frame each). */
  uint64_t sz = CHECKPT_HDR_SZ + CHECKPT_FTR_SZ;
  uint64_t cmds = sat_add(sat_add(A, G), sat_add(G, 1));
  if (frame_style == WKSP_FRAME_RAW) {
    sz += CHECKPT_INFO_SZ + CHECKPT_INFO_BLOB_MAX;
    sz = sat_add(sz, sat_mul(cmds, CHECKPT_CMD_SZ));
    return sat_add(sat_add(sz, data_max), sat_mul(G, 16));
  }
  /* LZ4: a buffer of n bytes is cut into 64 KiB chunks, each stored in at
   * most 3 + LZ4_COMPRESSBOUND(usz) = usz + usz / 255 + 19 bytes; the sum
   * over buffers of total size S, k of them, is at most S + S / 255 +
   * 19 * (S / 64 KiB + k). */
  enum { CHUNK_OVER = 3 + 16 };
  sz += CHUNK_OVER + CHECKPT_INFO_SZ + CHECKPT_INFO_SZ / 255;
  sz += CHUNK_OVER + CHECKPT_INFO_BLOB_MAX + CHECKPT_INFO_BLOB_MAX / 255;
  sz = sat_add(sz, sat_mul(cmds, CHUNK_OVER + CHECKPT_CMD_SZ));
  uint64_t data = sat_add(sat_add(data_max, data_max / 255),
                          sat_mul(CHUNK_OVER, sat_add(data_max / 65536, A)));
  uint64_t arr = sat_mul(G, 16); /* bytes of the arrays; 2 per volume */
  arr = sat_add(sat_add(arr, arr / 255), sat_mul(CHUNK_OVER, sat_mul(G, 2)));
  return sat_add(sat_add(sz, data), arr);
}

uint64_t wksp_private_checkpt_v1_max_sz(uint64_t part_max, uint64_t data_max) {
  uint64_t A = part_max < data_max ? part_max : data_max;
  /* 13 integers; 9 strings with their lengths (name, six log names, build
   * and user info); per allocation three integers and its bytes; the zero
   * tag that ends the list. */
  uint64_t head = 13 * CHECKPT_SVW_MAX + 9 * CHECKPT_SVW_MAX + (CHECKPT_NAME_MAX - 1) +
                  6 * (CHECKPT_LOG_NAME_MAX - 1) + 2 * (CHECKPT_INFO_STR_MAX - 1) + CHECKPT_SVW_MAX;
  return sat_add(sat_add(head, sat_mul(A, 3 * CHECKPT_SVW_MAX)), data_max);
}

int wksp_private_checkpt_head(const uint8_t *p, size_t n, const char *what, wksp_preview_t *pv,
                           uint64_t *max_sz) {
  int rc = wksp_private_checkpt_preview_any(p, n, pv, what);
  if (rc) return rc;
  *max_sz = pv->style == 2
                ? wksp_private_checkpt_v2_max_sz(pv->part_max, pv->data_max, pv->frame_style)
                : wksp_private_checkpt_v1_max_sz(pv->part_max, pv->data_max);
  return WKSP_SUCCESS;
}
