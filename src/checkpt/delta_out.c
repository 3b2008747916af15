/* Writing a delta or index file's frames (docs/FORMAT.md 13.2): what the
 * delta writer (delta_write.c) and the sidecar's writer (index.c) share. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "delta_private.h"
#include "util/err.h"
#include "util/io.h"


/* ---- output --------------------------------------------------------------------- */

int wksp_private_delta_emit(delta_out_t *o, const void *b, uint64_t n, int sum) {
  uint64_t h = wksp_private_delta_frame_hash(b, n, o->pos);
  if (n && wksp_private_write_full(o->fd, b, n))
    return wksp_err(WKSP_ERR_FAIL, errno, "%s: write of %" PRIu64 " bytes at %" PRIu64, o->label, n, o->pos);
  if (sum == DELTA_SUM_META) o->meta_sum += h;
  if (sum == DELTA_SUM_PIECE) o->piece_sum += h;
  o->pos += n;
  return WKSP_SUCCESS;
}

/* n words as one meta frame. */
static int emit_words(delta_out_t *o, const uint64_t *w, uint64_t n) {
  uint8_t *b = malloc(8 * n + 1);
  if (!b)
    return wksp_err(WKSP_ERR_NOMEM, 0, "%s: %" PRIu64 " words", o->label, n);
  for (uint64_t i = 0; i < n; i++) checkpt_st64(b + 8 * i, w[i]);
  int rc = wksp_private_delta_emit(o, b, 8 * n, DELTA_SUM_META);
  free(b);
  return rc;
}

int wksp_private_delta_emit_head(delta_out_t *o, const delta_hdr_t *h, const char *hint,
                                 const char *uinfo, const wksp_part_t *parts) {
  uint8_t hb[DELTA_HDR_SZ];
  wksp_private_delta_hdr_encode(hb, h);
  uint64_t A = h->alloc_cnt, tn = h->hint_sz + h->uinfo_sz;
  uint8_t *t = malloc(tn + 24 * A + 1);
  if (!t)
    return wksp_err(WKSP_ERR_NOMEM, 0, "%s: table of %" PRIu64 " allocations", o->label, A);
  memcpy(t, hint, h->hint_sz);
  memcpy(t + h->hint_sz, uinfo, h->uinfo_sz);
  for (uint64_t k = 0; k < A; k++) {
    checkpt_st64(t + tn + 24 * k, parts[k].gaddr_lo);
    checkpt_st64(t + tn + 24 * k + 8, parts[k].gaddr_hi);
    checkpt_st64(t + tn + 24 * k + 16, parts[k].tag);
  }
  int rc = wksp_private_delta_emit(o, hb, sizeof hb, DELTA_SUM_META);
  if (!rc) rc = wksp_private_delta_emit(o, t, tn, DELTA_SUM_META);
  if (!rc) rc = wksp_private_delta_emit(o, t + tn, 24 * A, DELTA_SUM_META);
  free(t);
  return rc;
}

int wksp_private_delta_emit_tail(delta_out_t *o, const delta_hdr_t *h, const uint64_t *hash,
                                 const uint64_t *bits, const uint64_t *ftab, uint64_t changed_cnt,
                                 uint64_t changed_sz, uint64_t digest, uint64_t pieces_off,
                                 uint64_t table_off) {
  uint64_t P = h->piece_cnt, W = delta_bitmap_words(P);
  delta_ftr_t f = {.digest = digest, .changed_cnt = changed_cnt, .changed_sz = changed_sz,
                   .table_off = table_off, .pieces_off = pieces_off, .index_off = o->pos,
                   .alloc_cnt = h->alloc_cnt, .piece_cnt = P, .base_digest = h->base_digest,
                   .unmagic = ~h->magic};
  int rc = emit_words(o, hash, P);
  f.bitmap_off = o->pos;
  if (!rc) rc = emit_words(o, bits, W);
  f.ftab_off = o->pos;
  uint64_t *ft = malloc((changed_cnt + 1) * sizeof *ft);
  if (!rc && !ft) rc = wksp_err(WKSP_ERR_NOMEM, 0, "%s: frame table", o->label);
  if (!rc) {
    if (changed_cnt) memcpy(ft, ftab, changed_cnt * sizeof *ft); /* an index has no frame table */
    ft[changed_cnt] = f.index_off;
    rc = emit_words(o, ft, changed_cnt + 1);
  }
  free(ft);
  f.file_sz = o->pos + DELTA_FTR_SZ;
  f.meta_digest = o->meta_sum;
  f.piece_digest = o->piece_sum;
  uint8_t fb[DELTA_FTR_SZ];
  wksp_private_delta_ftr_encode(fb, &f);
  if (!rc) rc = wksp_private_delta_emit(o, fb, sizeof fb, DELTA_SUM_NONE);
  return rc;
}
