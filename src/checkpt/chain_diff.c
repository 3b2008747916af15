/* Comparing a chain BASE DELTA1 ... DELTAk with a workspace:
 * wksp_checkpt_diff_chain.  The chain is opened and checked as restore
 * checks it (chain.c), nothing locked.  Then every piece of the final
 * state is traced back to the file that holds its bytes: the last delta
 * that carries it, else the base (the links guarantee one).  Under the
 * workspace lock the base is decoded (its pieces that are still final
 * compared as they come) and the final pieces the deltas carry are
 * decoded over the threads; every final piece is compared with the
 * workspace's bytes and hashed, so the result, digest and seal included,
 * is what wksp_checkpt_diff reports for a full checkpoint of that state. */
#include <inttypes.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "delta_private.h"
#include "frame/frame_private.h"
#include "util/err.h"
#include "../wksp/wksp_private.h"

#define NONE UINT64_MAX

typedef struct {
  wksp_t *w;
  const delta_chain_t *ch;
  const delta_file_t *fin; /* the last delta: the final state */
  uint32_t *src_k;         /* per final piece: 0 the base, k delta k */
  uint64_t *src_j;         /* and its piece number in the base, or frame number in delta k */
  uint64_t *base_to;       /* per base piece: the final piece it is the source of, NONE */
  uint64_t *jobs, njobs;   /* the final pieces the deltas carry */
  const uint8_t *cand;     /* per final allocation: w has its range and tag */
  uint64_t *pdiff;         /* per final piece: first differing byte in its allocation, NONE */
  uint64_t *phash;         /* per final piece: the hash of its bytes as decoded */
  uint8_t *buf[WKSP_CHECKPT_THREADS_MAX], *scratch[WKSP_CHECKPT_THREADS_MAX];
} cdiff_t;

static void cdiff_fini(cdiff_t *d) {
  free(d->src_k);
  free(d->src_j);
  free(d->base_to);
  free(d->jobs);
  free(d->pdiff);
  free(d->phash);
  for (uint32_t t = 0; t < WKSP_CHECKPT_THREADS_MAX; t++) free(d->buf[t]), free(d->scratch[t]);
}

static int nomem(uint64_t n) {
  return wksp_err(WKSP_ERR_NOMEM, 0, "diff of a chain: tables for %" PRIu64 " pieces", n);
}

/* The pieces of state k: the base's (k = 0) or delta k's. */
static void state(const delta_chain_t *ch, size_t k, const wksp_part_t **parts, uint64_t *cnt,
                  const uint64_t **pstart) {
  if (!k) {
    *parts = ch->bs.info.parts, *cnt = ch->bs.info.alloc_cnt, *pstart = ch->bpstart;
    return;
  }
  const delta_file_t *df = &ch->d[k - 1].df;
  *parts = df->parts, *cnt = df->h.alloc_cnt, *pstart = df->pstart;
}

/* One link: the sources of state k's pieces from those of state k - 1. */
static int sources_step(cdiff_t *d, size_t k) {
  const delta_file_t *df = &d->ch->d[k - 1].df;
  const wksp_part_t *pp;
  const uint64_t *ps;
  uint64_t pc, *m = NULL, P = df->h.piece_cnt;
  state(d->ch, k - 1, &pp, &pc, &ps);
  uint32_t *nk = malloc((P + 1) * sizeof *nk);
  uint64_t *nj = malloc((P + 1) * sizeof *nj);
  int rc = nk && nj ? wksp_private_delta_match(df->parts, df->pstart, df->h.alloc_cnt, pp, ps, pc, &m) : nomem(P);
  for (uint64_t i = 0; !rc && i < P; i++) {
    nk[i] = m[i] == NONE ? UINT32_MAX : d->src_k[m[i]];
    nj[i] = m[i] == NONE ? NONE : d->src_j[m[i]];
  }
  for (uint64_t j = 0; !rc && j < df->f.changed_cnt; j++) nk[df->changed[j]] = (uint32_t)k, nj[df->changed[j]] = j;
  for (uint64_t i = 0; !rc && i < P; i++) /* (the links were checked: cannot happen) */
    if (nk[i] == UINT32_MAX)
      rc = wksp_err(WKSP_ERR_CORRUPT, 0, "%s: piece %" PRIu64 " has no source", d->ch->paths[k], i);
  free(m);
  free(d->src_k), free(d->src_j);
  d->src_k = nk, d->src_j = nj;
  return rc;
}

/* Traces every final piece to its file; lists what the base and the
 * deltas must decode. */
static int sources(cdiff_t *d) {
  const delta_chain_t *ch = d->ch;
  uint64_t B = ch->bpstart[ch->bs.info.alloc_cnt], P = d->fin->h.piece_cnt;
  d->src_k = calloc(B + 1, sizeof *d->src_k);
  d->src_j = malloc((B + 1) * sizeof *d->src_j);
  if (!d->src_k || !d->src_j) return nomem(B);
  for (uint64_t i = 0; i < B; i++) d->src_j[i] = i;
  int rc = WKSP_SUCCESS;
  for (size_t k = 1; !rc && k < ch->cnt; k++) rc = sources_step(d, k);
  if (rc) return rc;
  d->base_to = malloc((B + 1) * sizeof *d->base_to);
  d->jobs = malloc((P + 1) * sizeof *d->jobs);
  d->pdiff = malloc((P + 1) * sizeof *d->pdiff);
  d->phash = calloc(P + 1, sizeof *d->phash);
  if (!d->base_to || !d->jobs || !d->pdiff || !d->phash) return nomem(P);
  for (uint64_t i = 0; i < B; i++) d->base_to[i] = NONE;
  for (uint64_t i = 0; i < P; i++) {
    d->pdiff[i] = NONE;
    if (d->src_k[i]) d->jobs[d->njobs++] = i;
    else d->base_to[d->src_j[i]] = i;
  }
  return WKSP_SUCCESS;
}

/* Final piece i, decoded as bytes (n of them, hash h): compared with w. */
static void final_piece(cdiff_t *d, uint64_t i, const uint8_t *bytes, uint64_t n, uint64_t h) {
  const delta_file_t *f = d->fin;
  d->phash[i] = h;
  uint64_t k = wksp_private_delta_alloc_of(f->pstart, f->h.alloc_cnt, i);
  if (!d->cand[k]) return;
  uint64_t at = (i - f->pstart[k]) * DELTA_PIECE, a = f->parts[k].gaddr_lo + at;
  uint64_t x = wksp_private_diff_bytes(bytes, (const uint8_t *)wksp_laddr(d->w, a), n);
  if (x != NONE) d->pdiff[i] = at + x;
}

/* A piece of the base, as it is decoded: compared if it is still final. */
static int base_piece(void *ctx, const wksp_part_t *p, uint64_t at, const uint8_t *bytes, uint64_t n,
                      uint32_t slot) {
  (void)slot;
  cdiff_t *d = ctx;
  const checkpt_scan_t *bs = &d->ch->bs;
  uint64_t b = d->ch->bpstart[checkpt_part_find(bs->info.parts, bs->info.alloc_cnt, p->gaddr_lo)] + at / DELTA_PIECE;
  uint64_t i = d->base_to[b];
  if (i != NONE) final_piece(d, i, bytes, n, wksp_private_checkpt_digest_piece(p->gaddr_lo + at, bytes, n));
  return WKSP_SUCCESS;
}

/* Job j: a final piece a delta carries, decoded (checked against that
 * delta's index entry, which is the final one: same address, length, hash). */
static int delta_piece(void *ctx, uint64_t j, uint32_t slot) {
  cdiff_t *d = ctx;
  uint64_t i = d->jobs[j], a, n;
  const delta_link_t *l = &d->ch->d[d->src_k[i] - 1];
  if (!d->buf[slot] && !(d->buf[slot] = malloc(DELTA_PIECE))) return nomem(1);
  if (!d->scratch[slot] && !(d->scratch[slot] = malloc(FRAME_CHUNK_HDR + frame_csz_bound(DELTA_PIECE))))
    return nomem(1);
  wksp_private_delta_piece_at(d->fin->parts, d->fin->pstart, d->fin->h.alloc_cnt, i, &a, &n);
  int rc = wksp_private_delta_piece_read(&l->df, &l->in, d->src_j[i], d->buf[slot], d->scratch[slot]);
  if (!rc) final_piece(d, i, d->buf[slot], n, l->df.hash[l->df.changed[d->src_j[i]]]);
  return rc;
}

/* Lock held: the comparison itself. */
static int compare(cdiff_t *d, uint32_t threads, const wksp_diff_opts_t *o, wksp_checkpt_diff_t *out) {
  const delta_file_t *f = d->fin;
  uint64_t A = f->h.alloc_cnt, wn = 0, *first = malloc((A + 1) * sizeof *first);
  uint8_t *cand = calloc(A + 1, 1);
  wksp_part_t *wp = NULL;
  int rc = first && cand ? wksp_private_alloc_list(d->w, &wp, &wn) : nomem(A);
  if (rc) goto done;
  wksp_private_diff_walk(f->parts, A, NULL, cand, wp, wn, NULL, NULL, out);
  d->cand = cand;
  const delta_chain_t *ch = d->ch;
  rc = wksp_private_checkpt_data_pieces(&ch->bin, &ch->bs, threads, base_piece, d);
  if (!rc) rc = wksp_private_checkpt_pool_run_slots(threads, d->njobs, delta_piece, d);
  if (rc) goto done;
  uint64_t digest = wksp_private_checkpt_digest_records(f->parts, A);
  for (uint64_t i = 0; i < f->h.piece_cnt; i++) digest += d->phash[i];
  for (uint64_t k = 0; k < A; k++) { /* pieces ascend within an allocation: the first is the lowest */
    first[k] = NONE;
    for (uint64_t i = f->pstart[k]; first[k] == NONE && i < f->pstart[k + 1]; i++) first[k] = d->pdiff[i];
  }
  wksp_private_diff_walk(f->parts, A, first, NULL, wp, wn, o->each, o->each_ctx, out);
  out->digest = digest;
  out->seal = digest == f->f.digest ? WKSP_SEAL_OK : WKSP_SEAL_BROKEN;
done:
  free(first);
  free(cand);
  free(wp);
  return rc;
}

int wksp_checkpt_diff_chain(wksp_t *w, const char *const *paths, size_t cnt, const wksp_diff_opts_t *opts,
                            wksp_checkpt_diff_t *out) {
  if (out) memset(out, 0, sizeof *out);
  int rc = wksp_private_chain_args("wksp_checkpt_diff_chain", w, paths, cnt);
  if (!rc && !out) rc = wksp_err(WKSP_ERR_INVAL, 0, "wksp_checkpt_diff_chain: NULL out");
  if (rc) return rc;
  if (cnt == 1) return wksp_checkpt_diff(w, paths[0], opts, out);
  wksp_diff_opts_t o = opts ? *opts : (wksp_diff_opts_t){0};
  uint32_t threads = checkpt_threads(o.threads);
  delta_chain_t ch;
  if ((rc = wksp_private_chain_open(&ch, paths, cnt, threads, 0))) return wksp_err_wrap(rc, "diff chain");
  cdiff_t d = {.w = w, .ch = &ch, .fin = &ch.d[cnt - 2].df};
  rc = sources(&d);
  if (!rc && (rc = wksp_private_lock(w))) wksp_err_wrap(rc, "diff chain: lock %s", wksp_name(w));
  else if (!rc) {
    rc = compare(&d, threads, &o, out);
    for (size_t k = 1; k < cnt; k++) rc = wksp_private_checkpt_input_changed(&ch.d[k - 1].in, rc);
    rc = wksp_private_checkpt_input_changed(&ch.bin, rc);
    wksp_private_unlock(w);
    if (rc) wksp_err_wrap(rc, "diff chain");
  }
  cdiff_fini(&d);
  wksp_private_chain_fini(&ch);
  if (rc) memset(out, 0, sizeof *out);
  return rc;
}
