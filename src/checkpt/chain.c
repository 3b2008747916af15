/* Restoring a chain BASE DELTA1 ... DELTAk (docs/FORMAT.md 13.5):
 * wksp_restore_chain, in steps that fold.c (into a private workspace),
 * chain_diff.c and chain_info.c share.  Everything that can be checked without the target
 * is checked before it is locked: the base's structure and seal, every
 * delta's metadata and pieces, the digests linking each file to the state
 * before it, and each link piece by piece.  Then, under the lock: fit,
 * reset, the base decoded into the target, each delta's pieces written in
 * order (within one delta in parallel: its pieces are disjoint), the
 * result checked against the last digest, the records replaced. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "delta_private.h"
#include "frame/frame_private.h"
#include "util/err.h"
#include "../wksp/wksp_private.h"


typedef struct {
  wksp_t *w;
  wksp_restore_opts_t o;
  const delta_chain_t *ch;
  /* applying delta k */
  const delta_link_t *cur;
  uint8_t *scratch[WKSP_CHECKPT_THREADS_MAX];
  /* A process that does not map the target (the CLI) writes the bytes into
   * the region's file (wksp_private_bytes_route): a piece is decoded into
   * its thread's buffer, then pwritten. */
  int fd;        /* >= 0: the region's file, gaddr g at off0 + g */
  uint64_t off0;
  uint8_t *piece[WKSP_CHECKPT_THREADS_MAX]; /* DELTA_PIECE bytes each */
  /* Bytes written: the base's, then each delta's changed pieces.  The
   * final state's size would be the other choice, but a chain writes more
   * than that and progress must reach its total without going back. */
  checkpt_progress_t m;
} chain_t;

void wksp_private_chain_fini(delta_chain_t *c) {
  if (c->bs_open) wksp_private_checkpt_scan_fini(&c->bs);
  if (c->bin_open) wksp_private_checkpt_input_fini(&c->bin);
  for (size_t k = 0; c->d && k + 1 < c->cnt; k++) {
    if (!c->d[k].opened) continue;
    wksp_private_delta_fini(&c->d[k].df);
    wksp_private_checkpt_input_fini(&c->d[k].in);
  }
  free(c->d);
  free(c->bpstart);
  free(c->bhash);
  memset(c, 0, sizeof *c);
}

/* Opens member path as a random-access input (a stream spooled); *magic its first 8 bytes. */
static int member_open(checkpt_input_t *in, const char *path, uint64_t *magic) {
  /* a stream is spooled: a chain's members are read at random */
  int rc = wksp_private_checkpt_input_open(in, path, -1, path, CHECKPT_IN_NEED_MEM);
  if (rc) return rc;
  if ((rc = wksp_private_delta_magic_read(in, magic))) wksp_private_checkpt_input_fini(in);
  return rc;
}

/* Step 1: the base, a sealed v2/v3 checkpoint. */
static int base_open(delta_chain_t *c) {
  const char *p = c->paths[0];
  uint64_t m;
  int rc = member_open(&c->bin, p, &m);
  if (rc) return rc;
  c->bin_open = 1;
  if (delta_magic_any(m))
    return wksp_err(WKSP_ERR_INVAL, 0, "%s is a %s: a chain starts with a full checkpoint", p,
                    m == DELTA_MAGIC ? "delta" : "index file");
  if ((rc = wksp_private_checkpt_scan(&c->bs, &c->bin))) return rc;
  c->bs_open = 1;
  if (c->bs.info.pv.style != 2 || c->bs.seal.state == WKSP_SEAL_NONE)
    return wksp_err(WKSP_ERR_INVAL, 0, "%s is not sealed, so no delta can apply to it", p);
  if ((rc = wksp_private_checkpt_seal_gate(&c->bs.seal, 1, p))) return rc;
  if (c->verify_first) {
    rc = wksp_private_delta_scan_hashes(&c->bin, &c->bs, c->threads, &c->bpstart, &c->bhash);
    return rc ? wksp_err_wrap(rc, "verify") : rc;
  }
  return wksp_private_delta_pstart(c->bs.info.parts, c->bs.info.alloc_cnt, &c->bpstart);
}

/* The state before delta k (1 <= k <= cnt; k = cnt: the final state): its
 * table, pieces, hashes (NULL: the base without verify_first) and
 * digest. */
static void state_of(const delta_chain_t *c, size_t k, const wksp_part_t **parts, uint64_t *cnt,
                     const uint64_t **pstart, const uint64_t **hash, uint64_t *digest) {
  if (k == 1) {
    *parts = c->bs.info.parts;
    *cnt = c->bs.info.alloc_cnt;
    *pstart = c->bpstart;
    *hash = c->bhash;
    *digest = c->bs.seal.digest;
    return;
  }
  const delta_file_t *df = &c->d[k - 2].df;
  *parts = df->parts;
  *cnt = df->h.alloc_cnt;
  *pstart = df->pstart;
  *hash = df->hash;
  *digest = df->f.digest;
}

/* Step 3: every piece delta k does not carry is in the state before it
 * with the same address, length (and, where known, hash). */
static int link_check(const delta_chain_t *c, size_t k) {
  const delta_file_t *df = &c->d[k - 1].df;
  const wksp_part_t *pp;
  const uint64_t *ps, *ph;
  uint64_t pc, pd, *m = NULL;
  state_of(c, k, &pp, &pc, &ps, &ph, &pd);
  int rc = wksp_private_delta_match(df->parts, df->pstart, df->h.alloc_cnt, pp, ps, pc, &m);
  for (uint64_t i = 0; !rc && i < df->h.piece_cnt; i++) {
    if (df->bits[i / 64] >> (i % 64) & 1) continue;
    if (m[i] != UINT64_MAX && (!ph || ph[m[i]] == df->hash[i])) continue;
    uint64_t a, n;
    wksp_private_delta_piece_at(df->parts, df->pstart, df->h.alloc_cnt, i, &a, &n);
    rc = wksp_err(WKSP_ERR_CORRUPT, 0,
                  "%s: piece [%" PRIu64 ",%" PRIu64
                  ") is not in the file, and the state before it (%s) has %s: broken link",
                  c->paths[k], a, a + n, c->paths[k - 1],
                  m[i] == UINT64_MAX ? "no such piece" : "other bytes there");
  }
  free(m);
  return rc;
}

/* Step 2 and 4 for delta k. */
static int delta_check(delta_chain_t *c, size_t k) {
  const char *p = c->paths[k];
  delta_link_t *l = &c->d[k - 1];
  uint64_t m;
  int rc = member_open(&l->in, p, &m);
  if (rc) return rc;
  l->opened = 1;
  if (m == CHECKPT_MAGIC) {
    wksp_private_checkpt_input_fini(&l->in);
    l->opened = 0;
    return wksp_err(WKSP_ERR_INVAL, 0, "%s is a full checkpoint: only the first file of a chain is", p);
  }
  if ((rc = wksp_private_delta_open(&l->df, &l->in))) {
    wksp_private_checkpt_input_fini(&l->in);
    l->opened = 0;
    return rc;
  }
  const delta_file_t *df = &l->df;
  if (df->kind == WKSP_FILE_INDEX) return wksp_err(WKSP_ERR_INVAL, 0, "%s is an index, not a delta", p);
  const checkpt_hdr_t *bh = &c->bs.hdr;
  if (df->h.part_max != bh->part_max || df->h.data_max != bh->data_max)
    return wksp_err(WKSP_ERR_INVAL, 0,
                    "%s: part_max %" PRIu64 " data_max %" PRIu64 ", the base %s has %" PRIu64 " / %" PRIu64,
                    p, df->h.part_max, df->h.data_max, c->paths[0], bh->part_max, bh->data_max);
  const wksp_part_t *pp;
  const uint64_t *ps, *ph;
  uint64_t pc, pd;
  state_of(c, k, &pp, &pc, &ps, &ph, &pd);
  if (df->h.base_digest != pd)
    return wksp_err(WKSP_ERR_INVAL, 0,
                    "%s applies to content digest %016" PRIx64 "; the state before it (%s%s) has %016" PRIx64 ": chain out of "
                    "order, incomplete or of another base; nothing changed",
                    p, df->h.base_digest, k == 1 ? "" : "after ", c->paths[k - 1], pd);
  if ((rc = wksp_private_delta_pieces_check(df, &l->in, c->threads))) return rc;
  return link_check(c, k);
}

/* ---- applying, lock held ---------------------------------------------------------- */

static void *dest_wksp(void *ctx, const wksp_part_t *p) { return wksp_laddr(ctx, p->gaddr_lo); }

static int apply_piece(void *ctx, uint64_t j, uint32_t slot) {
  chain_t *c = ctx;
  const delta_file_t *df = &c->cur->df;
  if (!c->scratch[slot] && !(c->scratch[slot] = malloc(FRAME_CHUNK_HDR + frame_csz_bound(DELTA_PIECE))))
    return wksp_err(WKSP_ERR_NOMEM, 0, "piece buffer");
  if (c->fd >= 0 && !c->piece[slot] && !(c->piece[slot] = malloc(DELTA_PIECE)))
    return wksp_err(WKSP_ERR_NOMEM, 0, "piece buffer");
  uint64_t a, n;
  wksp_private_delta_piece_at(df->parts, df->pstart, df->h.alloc_cnt, df->changed[j], &a, &n);
  uint8_t *dst = c->fd >= 0 ? c->piece[slot] : wksp_laddr(c->w, a);
  int rc = wksp_private_delta_piece_read(df, &c->cur->in, j, dst, c->scratch[slot]);
  if (!rc && c->fd >= 0) rc = wksp_private_region_put(c->fd, c->off0 + a, dst, n);
  if (!rc) wksp_private_checkpt_progress_add(&c->m, n);
  return rc;
}

/* A failure after the reset, without verify_first: every delta was checked
 * whole before the target changed, but BASE's bytes were not checked
 * against its seal, so a result that misses the last digest most likely
 * comes from a damaged BASE.  Only on this failure path BASE is decoded
 * once more, to name it ("does not match its seal") instead of the last
 * delta; else the failure stays as it was. */
static int blame_base(chain_t *c, int rc) {
  if (rc != WKSP_ERR_CORRUPT || c->o.verify_first) return rc;
  wksp_err_saved_t first;
  wksp_err_save(&first, rc);
  uint64_t *ps = NULL, *h = NULL;
  int brc = wksp_private_delta_scan_hashes(&c->ch->bin, &c->ch->bs, c->o.threads, &ps, &h);
  free(ps);
  free(h);
  return brc == WKSP_ERR_CORRUPT ? brc : wksp_err_resume(&first);
}

static int apply(chain_t *c) {
  wksp_t *w = c->w;
  const delta_chain_t *ch = c->ch;
  const char *what = ch->paths[ch->cnt - 1];
  const wksp_part_t *fp; /* the final state (the base's for a chain of one) */
  const uint64_t *ps, *ph;
  uint64_t fc, fd;
  state_of(ch, ch->cnt, &fp, &fc, &ps, &ph, &fd);
  int rc = wksp_private_checkpt_fit_check(w, ch->bs.info.parts, ch->bs.info.alloc_cnt, ch->paths[0]);
  if (!rc) rc = wksp_private_checkpt_fit_check(w, fp, fc, what);
  if (!rc) rc = wksp_private_replace_check(w, fp, fc);
  if (rc) return rc;
  if ((rc = wksp_private_reset(w, c->o.seed))) return wksp_err_wrap(rc, "reset");
  const wksp_part_t *bp = ch->bs.info.parts;
  if (wksp_private_bytes_route(w, bp, ch->bs.info.alloc_cnt, 1, 1, &c->fd, &c->off0))
    rc = wksp_private_checkpt_data_run_file(&ch->bin, &ch->bs, c->o.threads, c->fd, c->off0, &c->m);
  else
    rc = wksp_private_checkpt_data_run(&ch->bin, &ch->bs, c->o.threads, dest_wksp, NULL, w, &c->m);
  for (size_t k = 1; !rc && k < ch->cnt; k++) {
    c->cur = &ch->d[k - 1];
    rc = wksp_private_checkpt_pool_run_watched(c->o.threads, c->cur->df.f.changed_cnt, apply_piece, c, &c->m);
    rc = wksp_private_checkpt_input_changed(&c->cur->in, rc);
  }
  checkpt_seal_t seal = {.state = WKSP_SEAL_OK, .digest = fd};
  if (!rc) rc = wksp_private_checkpt_target_finish(w, fp, fc, &seal, &c->o, c->fd, c->off0, what);
  if (rc) {
    wksp_private_reset(w, c->o.seed);
    return wksp_private_checkpt_after_reset(blame_base(c, wksp_err_short_is_corrupt(rc)));
  }
  wksp_private_checkpt_progress_end(&c->m, c->m.total);
  return WKSP_SUCCESS;
}

int wksp_private_chain_apply(const delta_chain_t *ch, wksp_t *w, const wksp_restore_opts_t *o) {
  chain_t c = {.w = w, .o = *o, .ch = ch, .fd = -1};
  c.o.threads = checkpt_threads(c.o.threads);
  uint64_t total = ch->bs.info.alloc_sz;
  for (size_t k = 1; k < ch->cnt; k++) total += ch->d[k - 1].df.f.changed_sz;
  wksp_private_checkpt_progress_init(&c.m, c.o.progress, c.o.progress_ctx, total);
  int rc = wksp_private_checkpt_lock(w, c.o.lock_wait, c.o.lock_wait_ctx, -1, "restore", ch->paths[ch->cnt - 1]);
  if (!rc) {
    rc = apply(&c);
    wksp_private_unlock(w);
  }
  for (uint32_t t = 0; t < WKSP_CHECKPT_THREADS_MAX; t++) free(c.scratch[t]), free(c.piece[t]);
  if (c.fd >= 0) close(c.fd);
  wksp_private_checkpt_progress_fini(&c.m);
  return rc;
}

void wksp_private_chain_final(const delta_chain_t *ch, chain_final_t *f) {
  const char *name = ch->cnt > 1 ? ch->d[ch->cnt - 2].df.h.name : ch->bs.hdr.name;
  *f = (chain_final_t){.seed = ch->cnt > 1 ? ch->d[ch->cnt - 2].df.h.seed : ch->bs.hdr.seed,
                       .part_max = ch->bs.hdr.part_max,
                       .data_max = ch->bs.hdr.data_max,
                       .frame_style = ch->bs.hdr.frame_style};
  memcpy(f->name, name, CHECKPT_NAME_MAX);
}

int wksp_private_chain_open(delta_chain_t *c, const char *const *paths, size_t cnt, uint32_t threads,
                            int verify_first) {
  *c = (delta_chain_t){.paths = paths, .cnt = cnt, .threads = threads, .verify_first = verify_first};
  int rc = base_open(c);
  if (!rc && !(c->d = calloc(cnt, sizeof *c->d))) rc = wksp_err(WKSP_ERR_NOMEM, 0, "chain of %zu files", cnt);
  for (size_t k = 1; !rc && k < cnt; k++) rc = delta_check(c, k);
  if (rc) wksp_private_chain_fini(c);
  return rc;
}

int wksp_private_chain_args(const char *fn, const void *w, const char *const *paths, size_t cnt) {
  if (!w || !paths || !cnt) return wksp_err(WKSP_ERR_INVAL, 0, "%s: NULL workspace or paths, or no file", fn);
  for (size_t k = 0; k < cnt; k++)
    if (!paths[k]) return wksp_err(WKSP_ERR_INVAL, 0, "%s: path %zu is NULL", fn, k);
  return WKSP_SUCCESS;
}

int wksp_restore_chain(wksp_t *w, const char *const *paths, size_t cnt, const wksp_restore_opts_t *opts) {
  int rc = wksp_private_chain_args("wksp_restore_chain", w, paths, cnt);
  if (rc) return rc;
  wksp_restore_opts_t o = opts ? *opts : (wksp_restore_opts_t){0};
  o.threads = checkpt_threads(o.threads);
  o.require_seal = 1;
  if (cnt == 1) return wksp_restore(w, paths[0], &o);
  delta_chain_t ch;
  rc = wksp_private_chain_open(&ch, paths, cnt, o.threads, o.verify_first);
  if (!rc) {
    rc = wksp_private_chain_apply(&ch, w, &o);
    wksp_private_chain_fini(&ch);
  }
  return rc ? wksp_err_wrap(rc, "restore chain") : rc;
}
