/* The first bytes of a delta or index file (docs/FORMAT.md 13.2): the
 * header record, its check, and the most bytes a file of that header can
 * have.  Apart from the reader (delta_format.c) because the input layer
 * needs them too, to bound the spooling of a delta read from a pipe
 * (input.c), and the reader needs the input layer: kept here, below both,
 * the two form no circle. */
#include <inttypes.h>
#include <string.h>

#include "delta_private.h"
#include "frame/frame_private.h"
#include "util/err.h"
#include "../wksp/wksp_private.h"

/* ---- the header record -------------------------------------------------------- */

void wksp_private_delta_hdr_encode(uint8_t o[DELTA_HDR_SZ], const delta_hdr_t *h) {
  memset(o, 0, DELTA_HDR_SZ);
  checkpt_st64(o, h->magic);
  checkpt_st32(o + 8, h->version);
  checkpt_st32(o + 12, h->piece_style);
  checkpt_st32(o + 16, h->piece_lg);
  checkpt_st32(o + 20, h->flags);
  memcpy(o + 24, h->name, CHECKPT_NAME_MAX);
  checkpt_st32(o + 64, h->seed);
  checkpt_st32(o + 68, h->reserved0);
  checkpt_st64(o + 72, h->part_max);
  checkpt_st64(o + 80, h->data_max);
  checkpt_st64(o + 88, (uint64_t)h->wallclock);
  checkpt_st64(o + 96, h->base_digest);
  checkpt_st64(o + 104, h->alloc_cnt);
  checkpt_st64(o + 112, h->piece_cnt);
  checkpt_st64(o + 120, h->hint_sz);
  checkpt_st64(o + 128, h->uinfo_sz);
  checkpt_st64(o + 136, h->reserved1);
}

void wksp_private_delta_hdr_decode(delta_hdr_t *h, const uint8_t in[DELTA_HDR_SZ]) {
  memset(h, 0, sizeof *h);
  h->magic = checkpt_ld64(in);
  h->version = checkpt_ld32(in + 8);
  h->piece_style = checkpt_ld32(in + 12);
  h->piece_lg = checkpt_ld32(in + 16);
  h->flags = checkpt_ld32(in + 20);
  memcpy(h->name, in + 24, CHECKPT_NAME_MAX);
  h->seed = checkpt_ld32(in + 64);
  h->reserved0 = checkpt_ld32(in + 68);
  h->part_max = checkpt_ld64(in + 72);
  h->data_max = checkpt_ld64(in + 80);
  h->wallclock = (int64_t)checkpt_ld64(in + 88);
  h->base_digest = checkpt_ld64(in + 96);
  h->alloc_cnt = checkpt_ld64(in + 104);
  h->piece_cnt = checkpt_ld64(in + 112);
  h->hint_sz = checkpt_ld64(in + 120);
  h->uinfo_sz = checkpt_ld64(in + 128);
  h->reserved1 = checkpt_ld64(in + 136);
}

/* ---- the most bytes a file can have ---------------------------------------------- */

static uint64_t sat_add(uint64_t a, uint64_t b) { return a > UINT64_MAX - b ? UINT64_MAX : a + b; }
static uint64_t sat_mul(uint64_t a, uint64_t b) { return b && a > UINT64_MAX / b ? UINT64_MAX : a * b; }

uint64_t wksp_private_delta_max_sz(uint64_t A, uint64_t P) {
  uint64_t sz = DELTA_HDR_SZ + DELTA_HINT_MAX + DELTA_UINFO_MAX + DELTA_FTR_SZ + 8;
  sz = sat_add(sz, sat_mul(A, 24));
  sz = sat_add(sz, sat_mul(P, FRAME_CHUNK_HDR + frame_csz_bound(DELTA_PIECE)));
  sz = sat_add(sz, sat_mul(P, 16));
  return sat_add(sz, sat_mul(delta_bitmap_words(P), 8));
}

/* ---- the header's check -------------------------------------------------------- */

#define BAD(...) wksp_err(WKSP_ERR_CORRUPT, 0, __VA_ARGS__)

int wksp_private_delta_hdr_check(const delta_hdr_t *h, uint64_t file_sz, const char *what) {
  const char *k = h->magic == INDEX_MAGIC ? "index" : "delta";
  if (!delta_magic_any(h->magic))
    return BAD("%s: not a wksp delta: bad magic 0x%016" PRIx64, what, h->magic);
  if (h->version != DELTA_VERSION)
    return wksp_err(WKSP_ERR_UNSUP, 0, "%s: %s version %u; this wksp reads %u", what, k, h->version,
                    DELTA_VERSION);
  if (h->piece_lg != DELTA_PIECE_LG)
    return wksp_err(WKSP_ERR_UNSUP, 0, "%s: %s piece size 2^%u; this wksp reads 2^%u", what, k,
                    h->piece_lg, DELTA_PIECE_LG);
  int idx = h->magic == INDEX_MAGIC;
  if (h->piece_style != WKSP_FRAME_RAW && (idx || h->piece_style != WKSP_FRAME_LZ4))
    return BAD("%s: %s piece style %u, expected 1 (RAW)%s", what, k, h->piece_style, idx ? "" : " or 2 (LZ4)");
  if (h->flags & ~DELTA_FLAG_VERIFIED) return BAD("%s: %s flags 0x%x: unknown bits", what, k, h->flags);
  if (h->reserved0 || h->reserved1) return BAD("%s: %s reserved header fields are not 0", what, k);
  size_t nl = strnlen(h->name, CHECKPT_NAME_MAX);
  if (nl == CHECKPT_NAME_MAX || wksp_private_name_len(h->name) != nl)
    return BAD("%s: %s workspace name is not a valid name", what, k);
  for (size_t i = nl; i < CHECKPT_NAME_MAX; i++)
    if (h->name[i]) return BAD("%s: %s name field not zero-filled", what, k);
  if (!wksp_private_checkpt_sizes_valid(h->part_max, h->data_max))
    return BAD("%s: %s part_max %" PRIu64 " / data_max %" PRIu64 " are not valid", what, k, h->part_max,
               h->data_max);
  if (h->alloc_cnt > h->part_max)
    return BAD("%s: %s alloc_cnt %" PRIu64 " > part_max %" PRIu64, what, k, h->alloc_cnt, h->part_max);
  if (h->piece_cnt > h->alloc_cnt + h->data_max / DELTA_PIECE)
    return BAD("%s: %s piece_cnt %" PRIu64 ": more than %" PRIu64 " allocations of %" PRIu64
               " bytes can have",
               what, k, h->piece_cnt, h->alloc_cnt, h->data_max);
  if (h->hint_sz > DELTA_HINT_MAX || h->uinfo_sz > DELTA_UINFO_MAX)
    return BAD("%s: %s hint_sz %" PRIu64 " / uinfo_sz %" PRIu64 " (at most %" PRIu64 " / %" PRIu64 ")", what,
               k, h->hint_sz, h->uinfo_sz, (uint64_t)DELTA_HINT_MAX, (uint64_t)DELTA_UINFO_MAX);
  uint64_t max = wksp_private_delta_max_sz(h->alloc_cnt, h->piece_cnt);
  if (file_sz > max)
    return BAD("%s: %" PRIu64 " bytes, longer than a %s of %" PRIu64 " allocations and %" PRIu64
               " pieces can be (%" PRIu64 ")",
               what, file_sz, k, h->alloc_cnt, h->piece_cnt, max);
  return WKSP_SUCCESS;
}

int wksp_private_delta_head(const uint8_t *p, size_t n, const char *what, uint64_t *max_sz) {
  if (n < DELTA_HDR_SZ)
    return BAD("%s: truncated: %zu bytes, a delta's header alone has %u", what, n, DELTA_HDR_SZ);
  delta_hdr_t h;
  wksp_private_delta_hdr_decode(&h, p);
  int rc = wksp_private_delta_hdr_check(&h, 0, what);
  *max_sz = rc ? 0 : wksp_private_delta_max_sz(h.alloc_cnt, h.piece_cnt);
  return rc;
}

