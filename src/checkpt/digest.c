/* Content digest of sealed checkpoints (docs/FORMAT.md 9.1: the format has no
 * checksums).
 *
 * A checkpoint written with verify is read back and compared with the
 * workspace before it is published; that pass also computes a digest of
 * the allocations it decoded and writes it into the info frame (the only
 * frame whose bytes are ours to choose), as the last line of the build-info
 * string:
 *
 *     content digest xxh3-sum64 <16 hex digits>
 *
 * Readers that know nothing of it (the reference) show it as text.  A
 * restore of a sealed checkpoint checks it and treats a mismatch as damaged
 * data (CORRUPT).
 *
 * The digest is a sum (mod 2^64) of XXH3-64 hashes: one per allocation
 * record (range and tag) and one per 64 KiB piece of its bytes (counted
 * from the allocation's start, seeded with the piece's global address).  A
 * sum because any thread may hash any piece in any order, with O(1) state;
 * the position seed makes moved or swapped pieces count.  It detects
 * accidental damage (a flipped bit changes it with probability 1 - 2^-64);
 * it is no defence against someone who rewrites the file on purpose. */
#include <stdio.h>
#include <string.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "ckpt.h"
#include "util/err.h"

static const char digest_tag[] = "content digest xxh3-sum64 ";

uint64_t wksp_private_ckpt_digest_piece(uint64_t gaddr, const uint8_t *b, uint64_t n) {
  return XXH3_64bits_withSeed(b, (size_t)n, gaddr);
}

uint64_t wksp_private_ckpt_digest_record(const wksp_part_t *p) {
  uint8_t r[24];
  ckpt_st64(r, p->gaddr_lo);
  ckpt_st64(r + 8, p->gaddr_hi);
  ckpt_st64(r + 16, p->tag);
  return XXH3_64bits(r, sizeof r);
}

uint64_t wksp_private_ckpt_digest_records(const wksp_part_t *parts, uint64_t cnt) {
  uint64_t s = 0;
  for (uint64_t k = 0; k < cnt; k++) s += wksp_private_ckpt_digest_record(&parts[k]);
  return s;
}

size_t wksp_private_ckpt_digest_line(char *out, size_t cap, uint64_t d) {
  int n = snprintf(out, cap, "%s%016llx\n", digest_tag, (unsigned long long)d);
  return n < 0 ? 0 : (size_t)n;
}

size_t wksp_private_ckpt_digest_hex_at(void) { return sizeof digest_tag - 1; }

int wksp_private_ckpt_digest_parse(const char *binfo, size_t len, uint64_t *d) {
  size_t line = sizeof digest_tag - 1 + 16 + 1;
  if (len < line) return 0;
  const char *p = binfo + len - line;
  if ((p != binfo && p[-1] != '\n') || memcmp(p, digest_tag, sizeof digest_tag - 1) ||
      p[line - 1] != '\n')
    return 0;
  uint64_t v = 0;
  for (const char *h = p + sizeof digest_tag - 1; h < p + line - 1; h++) {
    int x = *h >= '0' && *h <= '9' ? *h - '0' : *h >= 'a' && *h <= 'f' ? *h - 'a' + 10 : -1;
    if (x < 0) return 0;
    v = v << 4 | (uint64_t)x;
  }
  *d = v;
  return 1;
}

/* ---- the digest of restored allocations -------------------------------------- */

typedef struct {
  wksp_t *w;
  const wksp_part_t *parts;
  _Atomic uint64_t sum;
} of_t;

static int of_one(void *ctx, uint64_t k) {
  of_t *o = ctx;
  const wksp_part_t *p = &o->parts[k];
  const uint8_t *b = wksp_laddr(o->w, p->gaddr_lo);
  uint64_t sz = p->gaddr_hi - p->gaddr_lo, s = wksp_private_ckpt_digest_record(p);
  for (uint64_t at = 0; at < sz; at += CKPT_DIGEST_PIECE)
    s += wksp_private_ckpt_digest_piece(p->gaddr_lo + at, b + at,
                                        sz - at < CKPT_DIGEST_PIECE ? sz - at : CKPT_DIGEST_PIECE);
  atomic_fetch_add_explicit(&o->sum, s, memory_order_relaxed);
  return WKSP_SUCCESS;
}

int wksp_private_ckpt_digest_of(wksp_t *w, const wksp_part_t *parts, uint64_t cnt,
                                uint32_t threads, uint64_t *d) {
  of_t o = {.w = w, .parts = parts};
  atomic_init(&o.sum, 0);
  int rc = wksp_private_ckpt_pool_run(threads ? threads : 1, cnt, of_one, &o);
  *d = atomic_load(&o.sum);
  return rc;
}

/* ---- the digest of a random-access checkpoint's allocations, decoded ---------------- */

static int file_piece(void *ctx, const wksp_part_t *p, uint64_t at, const uint8_t *b, uint64_t n) {
  atomic_fetch_add_explicit((_Atomic uint64_t *)ctx,
                            wksp_private_ckpt_digest_piece(p->gaddr_lo + at, b, n),
                            memory_order_relaxed);
  return WKSP_SUCCESS;
}

int wksp_private_ckpt_check_data(const ckpt_input_t *in, const ckpt_scan_t *s, uint32_t threads,
                                 int *seal) {
  uint64_t want = 0;
  int sealed = wksp_private_ckpt_sealed(s->info.binfo, &want);
  _Atomic uint64_t sum;
  atomic_init(&sum, 0);
  int rc = wksp_private_ckpt_data_pieces(in, s, threads ? threads : 1, sealed ? file_piece : NULL,
                                         &sum);
  if (seal) *seal = WKSP_SEAL_NONE;
  if (rc || !sealed) return rc;
  uint64_t got = atomic_load(&sum) + wksp_private_ckpt_digest_records(s->info.parts, s->info.alloc_cnt);
  if (seal) *seal = got == want ? WKSP_SEAL_OK : WKSP_SEAL_BROKEN;
  return got == want ? WKSP_SUCCESS : wksp_private_ckpt_seal_mismatch(in->label, want, got);
}

int wksp_private_ckpt_sealed(const char *binfo, uint64_t *d) {
  return binfo && wksp_private_ckpt_digest_parse(binfo, strlen(binfo), d);
}

int wksp_private_ckpt_seal_mismatch(const char *what, uint64_t want, uint64_t got) {
  return wksp_err(WKSP_ERR_CORRUPT, 0,
                  "%s: content digest %016llx, the checkpoint records %016llx: the file was "
                  "damaged after it was written (its allocations, or the recorded digest)",
                  what, (unsigned long long)got, (unsigned long long)want);
}
