/* Comparing a checkpoint with a workspace: wksp_checkpt_diff, and the
 * verify option of wksp_checkpt (docs/FORMAT.md 9.5: the workspace lock does not
 * stop application writes, so a checkpoint can capture allocations at
 * different moments; reading the file back and comparing it with the
 * workspace, lock still held, tells whether that happened).
 *
 * The checkpoint's allocations (the scan's, ascending) and the workspace's
 * (ascending) are merged by address.  Allocations with the same range and
 * tag on both sides have their bytes compared: the checkpoint's are decoded
 * over the threads in 64 KiB pieces, each compared with the workspace's
 * bytes at once; the first differing offset is kept per allocation.  A
 * process that does not map the workspace's bytes (the CLI's diff and
 * checkpt --verify) reads them from the region's file instead of touching
 * every page of its mapping (wksp_private_bytes_route), 1 MiB of an
 * allocation at a time per thread: a read per 64 KiB piece was 16k
 * system calls a GiB. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "checkpt_private.h"
#include "delta_private.h"
#include <wksp/frame.h>
#include "util/err.h"
#include "../wksp/wksp_private.h"

_Static_assert(CHECKPT_DIGEST_PIECE == WKSP_FRAME_CHUNK_MAX, "the digest's pieces are the data pieces");

typedef struct {
  wksp_t *w;
  const wksp_part_t *cp; /* the checkpoint's allocations, ascending */
  uint64_t cn;
  const uint8_t *cand;   /* per cp[i]: w has the same range and tag, compare the bytes */
  uint64_t *first;       /* per cp[i]: offset of the first differing byte, UINT64_MAX: none */
  _Atomic uint64_t digest; /* of the checkpoint's pieces (digest.c) */
  const uint64_t *pstart;  /* with hash: piece number of cp[i]'s first piece */
  uint64_t *hash;          /* optional: each piece's hash, in piece order (the index, FORMAT.md 13) */
  int fd;                  /* >= 0: the workspace's bytes read from its region's file */
  uint64_t off0;           /* the file offset of gaddr 0 */
  /* per pool slot, with fd: the bytes [win_lo, win_hi) of one allocation, read from the file */
  uint8_t *win[WKSP_CHECKPT_THREADS_MAX];
  uint64_t win_lo[WKSP_CHECKPT_THREADS_MAX], win_hi[WKSP_CHECKPT_THREADS_MAX];
} cmp_t;

/* The workspace's bytes [gaddr, gaddr + n) of allocation p (n <= 64 KiB),
 * from the slot's window of the region's file; a piece outside it reads
 * the next window: from gaddr on, 1 MiB or to p's end.  A slot's pieces
 * come in order within an allocation, so each byte is read once. */
static int cmp_have(cmp_t *c, const wksp_part_t *p, uint64_t gaddr, uint64_t n, uint32_t slot, const uint8_t **have) {
  if (!c->win[slot] && !(c->win[slot] = malloc(CHECKPT_COPY_BUF)))
    return wksp_err(WKSP_ERR_NOMEM, 0, "diff: read buffer");
  if (gaddr < c->win_lo[slot] || gaddr + n > c->win_hi[slot]) {
    uint64_t len = p->gaddr_hi - gaddr < CHECKPT_COPY_BUF ? p->gaddr_hi - gaddr : CHECKPT_COPY_BUF;
    c->win_lo[slot] = c->win_hi[slot] = 0; /* empty until read whole */
    int rc = wksp_private_region_get(c->fd, c->off0 + gaddr, c->win[slot], len);
    if (rc) return rc;
    c->win_lo[slot] = gaddr;
    c->win_hi[slot] = gaddr + len;
  }
  *have = c->win[slot] + (gaddr - c->win_lo[slot]);
  return WKSP_SUCCESS;
}

uint64_t wksp_private_diff_bytes(const uint8_t *bytes, const uint8_t *have, uint64_t n) {
  if (!memcmp(bytes, have, n)) return UINT64_MAX;
  /* bounded: the application may be writing these bytes right now (that is
   * what verify looks for), so they may match again by the time of this scan */
  uint64_t d = 0;
  while (d < n && bytes[d] == have[d]) d++;
  return d < n ? d : 0;
}

/* Each allocation's pieces come in order from one thread, so first[i] has
 * one writer. */
static int cmp_piece(void *ctx, const wksp_part_t *p, uint64_t at, const uint8_t *bytes,
                     uint64_t n, uint32_t slot) {
  cmp_t *c = ctx;
  uint64_t h = wksp_private_checkpt_digest_piece(p->gaddr_lo + at, bytes, n);
  atomic_fetch_add_explicit(&c->digest, h, memory_order_relaxed);
  uint64_t i = checkpt_part_find(c->cp, c->cn, p->gaddr_lo);
  if (c->hash) c->hash[c->pstart[i] + at / CHECKPT_DIGEST_PIECE] = h;
  /* (the range check only guards the workspace read below: the scan's
   * allocations are p's, sorted, so cp[i] is p) */
  if (c->cp[i].gaddr_lo != p->gaddr_lo || c->cp[i].gaddr_hi != p->gaddr_hi || !c->cand[i] ||
      c->first[i] != UINT64_MAX)
    return WKSP_SUCCESS;
  if (c->fd < 0) {
    uint64_t d = wksp_private_diff_bytes(bytes, (const uint8_t *)wksp_laddr(c->w, p->gaddr_lo) + at, n);
    if (d != UINT64_MAX) c->first[i] = at + d;
    return WKSP_SUCCESS;
  }
  const uint8_t *have = NULL;
  int rc = cmp_have(c, p, p->gaddr_lo + at, n, slot, &have);
  uint64_t d = rc ? UINT64_MAX : wksp_private_diff_bytes(bytes, have, n);
  if (d != UINT64_MAX) c->first[i] = at + d;
  return rc;
}

/* Records a difference in the counts and, if it is the first, in out;
 * each(), if given, hears of every one. */
static void diff_note(wksp_checkpt_diff_t *out, int kind, const wksp_part_t *c,
                      const wksp_part_t *w, uint64_t off, wksp_diff_fn_t each, void *ctx) {
  static const wksp_part_t none;
  if (each) each(kind, c ? c : &none, w ? w : &none, off, ctx);
  switch (kind) {
  case WKSP_DIFF_BYTES: out->bytes++; break;
  case WKSP_DIFF_TAG: out->tag++; break;
  case WKSP_DIFF_ONLY_CKPT: out->only_ckpt++; break;
  default: out->only_wksp++; break;
  }
  if (out->first_kind != WKSP_DIFF_NONE) return;
  out->first_kind = kind;
  if (c) out->first_ckpt = *c;
  if (w) out->first_wksp = *w;
  out->first_off = off;
}

void wksp_private_diff_walk(const wksp_part_t *cp, uint64_t cn, const uint64_t *first, uint8_t *cand,
                            const wksp_part_t *wp, uint64_t wn, wksp_diff_fn_t each, void *ctx,
                            wksp_checkpt_diff_t *out) {
  uint64_t i = 0, k = 0;
  while (i < cn || k < wn) {
    const wksp_part_t *a = i < cn ? &cp[i] : NULL, *b = k < wn ? &wp[k] : NULL;
    if (a && b && a->gaddr_lo == b->gaddr_lo && a->gaddr_hi == b->gaddr_hi) {
      if (cand) cand[i] = a->tag == b->tag;
      else if (a->tag != b->tag) diff_note(out, WKSP_DIFF_TAG, a, b, 0, each, ctx);
      else if (first[i] != UINT64_MAX)
        diff_note(out, WKSP_DIFF_BYTES, a, b, first[i], each, ctx);
      else out->same++;
      i++, k++;
    } else if (a && (!b || a->gaddr_lo < b->gaddr_lo ||
                     (a->gaddr_lo == b->gaddr_lo && a->gaddr_hi < b->gaddr_hi))) {
      if (!cand) diff_note(out, WKSP_DIFF_ONLY_CKPT, a, NULL, 0, each, ctx);
      i++;
    } else {
      if (!cand) diff_note(out, WKSP_DIFF_ONLY_WKSP, NULL, b, 0, each, ctx);
      k++;
    }
  }
}

int wksp_private_checkpt_diff_locked(wksp_t *w, const checkpt_input_t *in, uint32_t threads,
                                  wksp_diff_fn_t each, void *ctx, wksp_checkpt_diff_t *out,
                                  uint64_t **piece_hash) {
  memset(out, 0, sizeof *out);
  if (piece_hash) *piece_hash = NULL;
  checkpt_scan_t s;
  int rc = wksp_private_checkpt_scan(&s, in);
  if (rc) return rc;
  wksp_part_t *wp = NULL;
  uint64_t wn = 0, *pstart = NULL;
  cmp_t c = {.w = w, .cp = s.info.parts, .cn = s.info.alloc_cnt, .fd = -1};
  uint8_t *cand = calloc(c.cn + 1, 1);
  c.first = malloc((c.cn + 1) * sizeof *c.first);
  if (!cand || !c.first) {
    rc = wksp_err(WKSP_ERR_NOMEM, 0, "diff %s: tables for %" PRIu64 " allocations", in->label, c.cn);
    goto done;
  }
  if (piece_hash) {
    if ((rc = wksp_private_delta_pstart(c.cp, c.cn, &pstart))) goto done;
    c.pstart = pstart;
    if (!(c.hash = malloc((pstart[c.cn] + 1) * sizeof *c.hash))) {
      rc = wksp_err(WKSP_ERR_NOMEM, 0, "diff %s: hashes of %" PRIu64 " pieces", in->label, pstart[c.cn]);
      goto done;
    }
  }
  rc = wksp_private_alloc_list(w, &wp, &wn);
  if (rc) {
    wksp_err_wrap(rc, "diff %s: workspace %s", in->label, wksp_name(w));
    goto done;
  }
  for (uint64_t i = 0; i < c.cn; i++) c.first[i] = UINT64_MAX;
  wksp_private_diff_walk(c.cp, c.cn, c.first, cand, wp, wn, NULL, NULL, out);
  c.cand = cand;
  atomic_init(&c.digest, 0);
  wksp_private_bytes_route(w, wp, wn, 0, 1, &c.fd, &c.off0);
  rc = wksp_private_checkpt_data_pieces(in, &s, threads, cmp_piece, &c);
  if (rc) goto done;
  wksp_private_diff_walk(c.cp, c.cn, c.first, NULL, wp, wn, each, ctx, out);
  out->digest = atomic_load(&c.digest) + wksp_private_checkpt_digest_records(c.cp, c.cn);
  out->seal = s.seal.state; /* a broken seal is a result too */
  if (s.seal.state == WKSP_SEAL_OK && s.seal.digest != out->digest) out->seal = WKSP_SEAL_BROKEN;
  if (piece_hash) *piece_hash = c.hash, c.hash = NULL;
done:
  if (c.fd >= 0) close(c.fd);
  for (uint32_t t = 0; t < WKSP_CHECKPT_THREADS_MAX; t++) free(c.win[t]);
  free(wp);
  free(cand);
  free(c.first);
  free(c.hash);
  free(pstart);
  wksp_private_checkpt_scan_fini(&s);
  return rc;
}

static int diff_any(wksp_t *w, const char *path, int fd, const char *label,
                    const wksp_diff_opts_t *opts, wksp_checkpt_diff_t *out) {
  wksp_diff_opts_t o = opts ? *opts : (wksp_diff_opts_t){0};
  checkpt_input_t in;
  int rc = wksp_private_checkpt_input_open(&in, path, fd, label, CHECKPT_IN_NEED_MEM);
  if (rc) return rc;
  rc = wksp_private_lock(w);
  if (rc) {
    wksp_err_wrap(rc, "diff %s: lock %s", in.label, wksp_name(w));
  } else {
    rc = wksp_private_checkpt_diff_locked(w, &in, checkpt_threads(o.threads), o.each, o.each_ctx,
                                          out, NULL);
    wksp_private_unlock(w);
  }
  wksp_private_checkpt_input_fini(&in);
  if (rc) memset(out, 0, sizeof *out);
  return rc;
}

int wksp_checkpt_diff(wksp_t *w, const char *path, const wksp_diff_opts_t *opts,
                      wksp_checkpt_diff_t *out) {
  if (out) memset(out, 0, sizeof *out);
  if (!w || !out || !path)
    return wksp_err(WKSP_ERR_INVAL, 0, "wksp_checkpt_diff: NULL workspace, path or out");
  return diff_any(w, path, -1, path, opts, out);
}

int wksp_checkpt_diff_fd(wksp_t *w, int fd, const char *label, const wksp_diff_opts_t *opts,
                         wksp_checkpt_diff_t *out) {
  if (out) memset(out, 0, sizeof *out);
  if (!w || !out || fd < 0)
    return wksp_err(WKSP_ERR_INVAL, 0, "wksp_checkpt_diff_fd: NULL workspace or out, or bad fd");
  return diff_any(w, NULL, fd, label ? label : "-", opts, out);
}
