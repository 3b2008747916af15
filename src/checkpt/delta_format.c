/* The delta and index file (docs/FORMAT.md 13.2): header and footer
 * records, the integrity sums, the pieces of a state, and the reader that
 * checks a file's metadata (rules 1-4) and its piece frames (rule 5). */
#include <inttypes.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "delta_private.h"
#include "frame/frame_private.h"
#include "util/err.h"
#include <wksp/frame.h>

/* ---- records ------------------------------------------------------------------ */

/* The footer's 16 words in on-disk order. */
static uint64_t *ftr_word(delta_ftr_t *f, int k) {
  uint64_t *w[16] = {&f->digest,     &f->changed_cnt, &f->changed_sz,  &f->table_off,
                     &f->pieces_off, &f->index_off,   &f->bitmap_off,  &f->ftab_off,
                     &f->file_sz,    &f->alloc_cnt,   &f->piece_cnt,   &f->base_digest,
                     &f->meta_digest, &f->piece_digest, &f->footer_check, &f->unmagic};
  return w[k];
}

void wksp_private_delta_ftr_encode(uint8_t o[DELTA_FTR_SZ], delta_ftr_t *f) {
  for (int k = 0; k < 14; k++) checkpt_st64(o + 8 * k, *ftr_word(f, k));
  f->footer_check = XXH3_64bits(o, 112);
  checkpt_st64(o + 112, f->footer_check);
  checkpt_st64(o + 120, f->unmagic);
}

void wksp_private_delta_ftr_decode(delta_ftr_t *f, const uint8_t in[DELTA_FTR_SZ]) {
  for (int k = 0; k < 16; k++) *ftr_word(f, k) = checkpt_ld64(in + 8 * k);
}

uint64_t wksp_private_delta_frame_hash(const void *b, uint64_t n, uint64_t off) {
  return XXH3_64bits_withSeed(b, (size_t)n, off);
}

uint64_t wksp_private_delta_content_digest(const wksp_part_t *parts, uint64_t cnt,
                                           const uint64_t *hash, uint64_t piece_cnt) {
  uint64_t d = wksp_private_checkpt_digest_records(parts, cnt);
  for (uint64_t i = 0; i < piece_cnt; i++) d += hash[i];
  return d;
}

int wksp_private_delta_magic_read(const checkpt_input_t *in, uint64_t *magic) {
  uint8_t m[8] = {0};
  int rc = in->sz >= 8 ? wksp_private_checkpt_input_read(in, m, 8, 0) : WKSP_SUCCESS;
  *magic = checkpt_ld64(m);
  return rc;
}

/* ---- the pieces of a state ------------------------------------------------------- */

int wksp_private_delta_pstart(const wksp_part_t *parts, uint64_t cnt, uint64_t **pstart) {
  uint64_t *ps = malloc((cnt + 1) * sizeof *ps);
  if (!ps)
    return wksp_err(WKSP_ERR_NOMEM, 0, "piece table of %" PRIu64 " allocations", cnt);
  ps[0] = 0;
  for (uint64_t k = 0; k < cnt; k++) ps[k + 1] = ps[k] + delta_pieces_of(parts[k].gaddr_hi - parts[k].gaddr_lo);
  *pstart = ps;
  return WKSP_SUCCESS;
}

uint64_t wksp_private_delta_alloc_of(const uint64_t *pstart, uint64_t cnt, uint64_t i) {
  uint64_t lo = 0, hi = cnt; /* the last k with pstart[k] <= i */
  while (hi - lo > 1) {
    uint64_t m = lo + (hi - lo) / 2;
    if (pstart[m] <= i) lo = m;
    else hi = m;
  }
  return lo;
}

void wksp_private_delta_piece_at(const wksp_part_t *parts, const uint64_t *pstart, uint64_t cnt,
                                 uint64_t i, uint64_t *a, uint64_t *n) {
  delta_cursor_t c = delta_cursor(parts, pstart, cnt, i);
  delta_cursor_at(&c, i, a, n);
}

int wksp_private_delta_match(const wksp_part_t *parts, const uint64_t *pstart, uint64_t cnt,
                             const wksp_part_t *oparts, const uint64_t *opstart, uint64_t ocnt,
                             uint64_t **out) {
  uint64_t P = pstart[cnt];
  uint64_t *m = malloc((P + 1) * sizeof *m);
  if (!m)
    return wksp_err(WKSP_ERR_NOMEM, 0, "piece match of %" PRIu64 " pieces", P);
  uint64_t j = 0;
  for (uint64_t k = 0; k < cnt; k++) {
    const wksp_part_t *p = &parts[k];
    for (uint64_t i = pstart[k], a = p->gaddr_lo; a < p->gaddr_hi; i++, a += DELTA_PIECE) {
      uint64_t n = p->gaddr_hi - a < DELTA_PIECE ? p->gaddr_hi - a : DELTA_PIECE;
      while (j < ocnt && oparts[j].gaddr_hi <= a) j++;
      m[i] = UINT64_MAX;
      if (j == ocnt || oparts[j].gaddr_lo > a || (a - oparts[j].gaddr_lo) % DELTA_PIECE) continue;
      uint64_t on = oparts[j].gaddr_hi - a < DELTA_PIECE ? oparts[j].gaddr_hi - a : DELTA_PIECE;
      if (on == n) m[i] = opstart[j] + (a - oparts[j].gaddr_lo) / DELTA_PIECE;
    }
  }
  *out = m;
  return WKSP_SUCCESS;
}

/* ---- reading: rules 1-4 ----------------------------------------------------------- */

void wksp_private_delta_fini(delta_file_t *df) {
  free(df->hint);
  free(df->uinfo);
  free(df->parts);
  free(df->pstart);
  free(df->hash);
  free(df->bits);
  free(df->ftab);
  free(df->changed);
  memset(df, 0, sizeof *df);
}

#define BAD(...) wksp_err(WKSP_ERR_CORRUPT, 0, __VA_ARGS__)

/* The footer against the header and the file: copies, and the frames back
 * to back from the counts (the piece frames' end is the index's offset). */
static int ftr_check(const delta_ftr_t *f, const delta_hdr_t *h, uint64_t file_sz, const char *what) {
  uint8_t raw[DELTA_FTR_SZ];
  delta_ftr_t g = *f;
  wksp_private_delta_ftr_encode(raw, &g);
  if (f->unmagic != ~h->magic) return BAD("%s: footer unmagic 0x%016" PRIx64 ", expected 0x%016" PRIx64, what, f->unmagic, ~h->magic);
  if (g.footer_check != f->footer_check)
    return BAD("%s: footer damaged: check 0x%016" PRIx64 ", the footer's bytes hash to 0x%016" PRIx64, what,
               f->footer_check, g.footer_check);
  if (f->alloc_cnt != h->alloc_cnt || f->piece_cnt != h->piece_cnt || f->base_digest != h->base_digest)
    return BAD("%s: footer alloc_cnt / piece_cnt / base_digest differ from the header's", what);
  if (f->file_sz != file_sz)
    return BAD("%s: footer file_sz %" PRIu64 ", the file has %" PRIu64 " bytes", what, f->file_sz, file_sz);
  uint64_t P = h->piece_cnt, C = f->changed_cnt;
  if (C > P)
    return BAD("%s: changed_cnt %" PRIu64 " > piece_cnt %" PRIu64, what, C, P);
  if (h->magic == INDEX_MAGIC && (C || f->changed_sz || f->digest != h->base_digest))
    return BAD("%s: an index with changed pieces or base_digest != digest", what);
  uint64_t t = DELTA_HDR_SZ + h->hint_sz + h->uinfo_sz;
  if (f->table_off != t || f->pieces_off != t + 24 * h->alloc_cnt || f->index_off < f->pieces_off ||
      f->bitmap_off != f->index_off + 8 * P || f->ftab_off != f->bitmap_off + 8 * delta_bitmap_words(P) ||
      f->ftab_off > file_sz || (file_sz - f->ftab_off) != 8 * (C + 1) + DELTA_FTR_SZ)
    return BAD("%s: footer offsets (table %" PRIu64 ", pieces %" PRIu64 ", index %" PRIu64 ", bitmap %" PRIu64
               ", frame table %" PRIu64 ") are "
               "not back to back for %" PRIu64 " allocations, %" PRIu64 " pieces, %" PRIu64
               " changed in %" PRIu64 " bytes",
               what, f->table_off, f->pieces_off, f->index_off, f->bitmap_off, f->ftab_off, h->alloc_cnt, P,
               C, file_sz);
  if (f->changed_sz > C * DELTA_PIECE)
    return BAD("%s: changed_sz %" PRIu64 " > %" PRIu64 " pieces", what, f->changed_sz, C);
  return WKSP_SUCCESS;
}

/* Reads the meta frame at [off, off + n) into a new buffer; adds its hash. */
static int meta_read(const checkpt_input_t *in, uint64_t off, uint64_t n, uint8_t **out, uint64_t *sum) {
  uint8_t *b = malloc(n + 1);
  if (!b)
    return wksp_err(WKSP_ERR_NOMEM, 0, "%s: %" PRIu64 " bytes of metadata", in->label, n);
  int rc = wksp_private_checkpt_input_read(in, b, n, off);
  if (rc) {
    free(b);
    return rc;
  }
  b[n] = 0;
  *sum += wksp_private_delta_frame_hash(b, n, off);
  *out = b;
  return WKSP_SUCCESS;
}

static uint64_t *words_of(uint8_t *b, uint64_t n) {
  uint64_t *w = (uint64_t *)b; /* in place: b came from malloc, aligned */
  for (uint64_t i = 0; i < n; i++) w[i] = checkpt_ld64(b + 8 * i);
  return w;
}

/* Rule 4: the table. */
static int table_check(delta_file_t *df, const uint8_t *t, const char *what) {
  const delta_hdr_t *h = &df->h;
  uint64_t lo = checkpt_gaddr_lo(h->part_max), hi = lo + h->data_max, prev = lo;
  for (uint64_t k = 0; k < h->alloc_cnt; k++) {
    wksp_part_t *p = &df->parts[k];
    p->gaddr_lo = checkpt_ld64(t + 24 * k);
    p->gaddr_hi = checkpt_ld64(t + 24 * k + 8);
    p->tag = checkpt_ld64(t + 24 * k + 16);
    if (!p->tag || p->gaddr_lo < prev || p->gaddr_lo >= p->gaddr_hi || p->gaddr_hi > hi)
      return BAD("%s: table entry %" PRIu64 " [%" PRIu64 ",%" PRIu64 ") tag %" PRIu64
                 ": zero tag, empty, out of [%" PRIu64 ",%" PRIu64 ") or not "
                 "ascending and disjoint",
                 what, k, p->gaddr_lo, p->gaddr_hi, p->tag, prev, hi);
    prev = p->gaddr_hi;
    df->data_sz += p->gaddr_hi - p->gaddr_lo;
  }
  return WKSP_SUCCESS;
}

/* Rule 4: bitmap, frame table, changed bytes, digest. */
static int pieces_meta_check(delta_file_t *df, const char *what) {
  const delta_hdr_t *h = &df->h;
  const delta_ftr_t *f = &df->f;
  uint64_t P = h->piece_cnt, C = f->changed_cnt, W = delta_bitmap_words(P);
  if (df->pstart[h->alloc_cnt] != P)
    return BAD("%s: piece_cnt %" PRIu64 ", the table has %" PRIu64 " pieces", what, P,
               df->pstart[h->alloc_cnt]);
  if (P % 64 && W && df->bits[W - 1] >> (P % 64))
    return BAD("%s: bitmap marks a piece >= piece_cnt %" PRIu64, what, P);
  df->changed = malloc((C + 1) * sizeof *df->changed);
  if (!df->changed) return wksp_err(WKSP_ERR_NOMEM, 0, "%s: changed pieces", what);
  uint64_t c = 0, sz = 0;
  for (uint64_t i = 0; i < P; i++) {
    if (!(df->bits[i / 64] >> (i % 64) & 1)) continue;
    if (c == C)
      return BAD("%s: bitmap marks more than changed_cnt %" PRIu64 " pieces", what, C);
    uint64_t a, n;
    wksp_private_delta_piece_at(df->parts, df->pstart, h->alloc_cnt, i, &a, &n);
    uint64_t fs = df->ftab[c + 1] - df->ftab[c];
    int ok = df->ftab[c + 1] > df->ftab[c] &&
             (h->piece_style == WKSP_FRAME_RAW ? fs == n : fs >= 4 && fs <= FRAME_CHUNK_HDR + frame_csz_bound(n));
    if (!ok)
      return BAD("%s: piece frame %" PRIu64 " at %" PRIu64 " is %" PRId64
                 " bytes, a %s frame of piece %" PRIu64 " (%" PRIu64 " bytes) cannot be",
                 what, c, df->ftab[c], (df->ftab[c + 1] - df->ftab[c]), frame_style_name((int)h->piece_style),
                 i, n);
    df->changed[c++] = i;
    sz += n;
  }
  if (c != C)
    return BAD("%s: bitmap marks %" PRIu64 " pieces, changed_cnt is %" PRIu64, what, c, C);
  if (df->ftab[0] != f->pieces_off || df->ftab[C] != f->index_off)
    return BAD("%s: frame table runs [%" PRIu64 ",%" PRIu64 "), the pieces are at [%" PRIu64 ",%" PRIu64 ")",
               what, df->ftab[0], df->ftab[C], f->pieces_off, f->index_off);
  if (sz != f->changed_sz)
    return BAD("%s: changed_sz %" PRIu64 ", the marked pieces have %" PRIu64 " bytes", what, f->changed_sz,
               sz);
  uint64_t d = wksp_private_delta_content_digest(df->parts, h->alloc_cnt, df->hash, P);
  if (d != f->digest)
    return BAD("%s: content digest %016" PRIx64 ", its table and index make %016" PRIx64, what, f->digest, d);
  return WKSP_SUCCESS;
}

static int delta_open(delta_file_t *df, const checkpt_input_t *in) {
  const char *what = in->label;
  uint64_t sz = in->sz, sum = 0;
  uint8_t hb[DELTA_HDR_SZ], fb[DELTA_FTR_SZ];
  if (sz < DELTA_HDR_SZ + DELTA_FTR_SZ + 8)
    return BAD("%s: %" PRIu64 " bytes, a delta has at least %d", what, sz, DELTA_HDR_SZ + DELTA_FTR_SZ + 8);
  int rc = wksp_private_checkpt_input_read(in, hb, sizeof hb, 0);
  if (rc) return rc;
  wksp_private_delta_hdr_decode(&df->h, hb);
  df->kind = df->h.magic == INDEX_MAGIC ? WKSP_FILE_INDEX : WKSP_FILE_DELTA;
  if ((rc = wksp_private_delta_hdr_check(&df->h, sz, what))) return rc;
  if ((rc = wksp_private_checkpt_input_read(in, fb, sizeof fb, sz - DELTA_FTR_SZ))) return rc;
  wksp_private_delta_ftr_decode(&df->f, fb);
  if ((rc = ftr_check(&df->f, &df->h, sz, what))) return rc;
  const delta_hdr_t *h = &df->h;
  const delta_ftr_t *f = &df->f;
  uint64_t P = h->piece_cnt, C = f->changed_cnt;
  sum += wksp_private_delta_frame_hash(hb, sizeof hb, 0);
  uint8_t *text = NULL, *table = NULL, *ix = NULL, *bm = NULL, *ft = NULL;
  rc = meta_read(in, DELTA_HDR_SZ, h->hint_sz + h->uinfo_sz, &text, &sum);
  if (!rc) rc = meta_read(in, f->table_off, 24 * h->alloc_cnt, &table, &sum);
  if (!rc) rc = meta_read(in, f->index_off, 8 * P, &ix, &sum);
  if (!rc) rc = meta_read(in, f->bitmap_off, 8 * delta_bitmap_words(P), &bm, &sum);
  if (!rc) rc = meta_read(in, f->ftab_off, 8 * (C + 1), &ft, &sum);
  if (!rc && sum != f->meta_digest)
    rc = BAD("%s: %s metadata damaged: meta digest %016" PRIx64 ", the footer records %016" PRIx64 " (damaged after it "
             "was written)", what, df->kind == WKSP_FILE_INDEX ? "index" : "delta", sum, f->meta_digest);
  if (!rc) {
    df->hint = strndup((char *)text, h->hint_sz);
    df->uinfo = strdup((char *)text + h->hint_sz);
    df->parts = calloc(h->alloc_cnt + 1, sizeof *df->parts);
    if (!df->hint || !df->uinfo || !df->parts) rc = wksp_err(WKSP_ERR_NOMEM, 0, "%s: table", what);
    else if (memchr(text, 0, h->hint_sz + h->uinfo_sz)) rc = BAD("%s: text frame holds a NUL byte", what);
  }
  if (!rc) rc = table_check(df, table, what);
  if (!rc) rc = wksp_private_delta_pstart(df->parts, h->alloc_cnt, &df->pstart);
  if (!rc) {
    df->hash = words_of(ix, P);
    df->bits = words_of(bm, delta_bitmap_words(P));
    df->ftab = words_of(ft, C + 1);
    ix = bm = ft = NULL;
    rc = pieces_meta_check(df, what);
  }
  free(text);
  free(table);
  free(ix);
  free(bm);
  free(ft);
  return rc;
}

int wksp_private_delta_open(delta_file_t *df, const checkpt_input_t *in) {
  memset(df, 0, sizeof *df);
  int rc = delta_open(df, in);
  if (rc) wksp_private_delta_fini(df);
  return wksp_private_checkpt_input_changed(in, rc);
}

/* ---- rule 5: the piece frames ---------------------------------------------------- */

int wksp_private_delta_piece_read(const delta_file_t *df, const checkpt_input_t *in, uint64_t j,
                                  uint8_t *buf, uint8_t *scratch) {
  uint64_t i = df->changed[j], a, n, off = df->ftab[j], fs = df->ftab[j + 1] - off;
  wksp_private_delta_piece_at(df->parts, df->pstart, df->h.alloc_cnt, i, &a, &n);
  uint8_t *fr = df->h.piece_style == WKSP_FRAME_RAW ? buf : scratch;
  int rc = wksp_private_checkpt_input_read(in, fr, fs, off);
  wksp_frame_reader_t *r = NULL;
  uint64_t end = 0;
  if (!rc && fr == scratch) {
    rc = wksp_frame_reader_init_mem(&r, scratch, fs);
    if (!rc) rc = wksp_frame_reader_open(r, WKSP_FRAME_LZ4, NULL);
    if (!rc) rc = wksp_frame_reader_data(r, buf, n);
    if (!rc) rc = wksp_frame_reader_close(r, &end);
    wksp_frame_reader_fini(r);
    if (!rc && end != fs)
      rc = BAD("the frame has %" PRIu64 " bytes after its piece", fs - end);
    if (rc)
      rc = wksp_err_where(wksp_err_short_is_corrupt(rc), "%s: piece frame %" PRIu64 " at %" PRIu64, in->label,
                          j, off);
  }
  if (!rc && wksp_private_checkpt_digest_piece(a, buf, n) != df->hash[i])
    rc = BAD("%s: piece frame %" PRIu64 " at %" PRIu64 " (piece [%" PRIu64 ",%" PRIu64
             ")) does not match its hash %016" PRIx64,
             in->label, j, off, a, a + n, df->hash[i]);
  return rc;
}

typedef struct {
  const delta_file_t *df;
  const checkpt_input_t *in;
  _Atomic uint64_t sum;
  uint8_t *buf[WKSP_CHECKPT_THREADS_MAX]; /* per slot: piece, then frame scratch */
} pcheck_t;

static int pcheck_one(void *ctx, uint64_t j, uint32_t slot) {
  pcheck_t *c = ctx;
  const uint64_t span = DELTA_PIECE + FRAME_CHUNK_HDR + frame_csz_bound(DELTA_PIECE);
  if (!c->buf[slot] && !(c->buf[slot] = malloc(span)))
    return wksp_err(WKSP_ERR_NOMEM, 0, "%s: piece buffer", c->in->label);
  uint8_t *b = c->buf[slot], *s = b + DELTA_PIECE;
  int rc = wksp_private_delta_piece_read(c->df, c->in, j, b, s);
  uint64_t off = c->df->ftab[j], fs = c->df->ftab[j + 1] - off;
  /* the frame's bytes: in s (LZ4) or b (RAW, verbatim) */
  if (!rc)
    atomic_fetch_add_explicit(&c->sum,
                              wksp_private_delta_frame_hash(c->df->h.piece_style == WKSP_FRAME_RAW ? b : s, fs, off),
                              memory_order_relaxed);
  return rc;
}

int wksp_private_delta_pieces_check(const delta_file_t *df, const checkpt_input_t *in,
                                    uint32_t threads) {
  pcheck_t c = {.df = df, .in = in};
  atomic_init(&c.sum, 0);
  int rc = wksp_private_checkpt_pool_run_slots(threads, df->f.changed_cnt, pcheck_one, &c);
  for (uint32_t t = 0; t < WKSP_CHECKPT_THREADS_MAX; t++) free(c.buf[t]);
  if (!rc && atomic_load(&c.sum) != df->f.piece_digest)
    rc = BAD("%s: delta pieces damaged: piece digest %016" PRIx64 ", the footer records %016" PRIx64, in->label,
             atomic_load(&c.sum), df->f.piece_digest);
  return wksp_private_checkpt_input_changed(in, rc);
}
