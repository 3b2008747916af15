/* Content digest of sealed checkpoints (docs/FORMAT.md 9.1: the format has no
 * checksums; docs/FORMAT.md 12 has the design and the reasons).
 *
 * A checkpoint written with verify is read back and compared with the
 * workspace before it is published; that pass also computes a digest of
 * the allocations it decoded and seals the file with it, in the info frame
 * (the only frame whose bytes are ours to choose), in three places:
 *
 *   - the info's app id (a number the reference shows but never checks)
 *     holds the seal mark CHECKPT_SEAL_MARK ("WKSPSEAL" on disk);
 *   - the build info's first line and its last line are both
 *
 *         content digest xxh3-sum64 <16 hex digits>
 *
 * Each place alone shows that the file is sealed, and each still does with
 * up to CHECKPT_SEAL_NEAR flipped bits in its fixed part (the mark, the text
 * before the digits): so no one or two flipped bits can make a sealed file
 * look unsealed.  The seal holds only when all three are exact and the two
 * digests agree; any other sign of a seal is a broken seal.  Files sealed
 * before the mark existed carry only the last line (the "line-only" seal),
 * and are still read as sealed.
 *
 * Readers that know nothing of it (the reference) show it as text and a
 * number.  A restore of a sealed checkpoint checks it and treats a broken
 * seal or a content mismatch as damaged data (CORRUPT).
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

#include "checkpt_private.h"
#include "util/err.h"

static const char digest_tag[] = "content digest xxh3-sum64 ";

uint64_t wksp_private_checkpt_digest_piece(uint64_t gaddr, const uint8_t *b, uint64_t n) {
  return XXH3_64bits_withSeed(b, (size_t)n, gaddr);
}

uint64_t wksp_private_checkpt_digest_record(const wksp_part_t *p) {
  uint8_t r[24];
  checkpt_st64(r, p->gaddr_lo);
  checkpt_st64(r + 8, p->gaddr_hi);
  checkpt_st64(r + 16, p->tag);
  return XXH3_64bits(r, sizeof r);
}

uint64_t wksp_private_checkpt_digest_records(const wksp_part_t *parts, uint64_t cnt) {
  uint64_t s = 0;
  for (uint64_t k = 0; k < cnt; k++) s += wksp_private_checkpt_digest_record(&parts[k]);
  return s;
}

size_t wksp_private_checkpt_digest_line(char *out, size_t cap, uint64_t d) {
  int n = snprintf(out, cap, "%s%016llx\n", digest_tag, (unsigned long long)d);
  return n < 0 ? 0 : (size_t)n;
}

size_t wksp_private_checkpt_digest_hex_at(void) { return sizeof digest_tag - 1; }

size_t wksp_private_checkpt_digest_line_sz(void) { return sizeof digest_tag - 1 + 16 + 1; }

/* 1 and *d when p (line_sz bytes) is exactly a digest line. */
static int line_parse(const char *p, uint64_t *d) {
  size_t n = wksp_private_checkpt_digest_line_sz();
  if (memcmp(p, digest_tag, sizeof digest_tag - 1) || p[n - 1] != '\n') return 0;
  uint64_t v = 0;
  for (const char *h = p + sizeof digest_tag - 1; h < p + n - 1; h++) {
    int x = *h >= '0' && *h <= '9' ? *h - '0' : *h >= 'a' && *h <= 'f' ? *h - 'a' + 10 : -1;
    if (x < 0) return 0;
    v = v << 4 | (uint64_t)x;
  }
  *d = v;
  return 1;
}

/* Whether p (line_sz bytes) shows a digest line: its text within
 * CHECKPT_SEAL_NEAR bits of the tag's. */
static int line_near(const char *p) {
  unsigned apart = 0;
  for (size_t i = 0; i < sizeof digest_tag - 1; i++)
    apart += (unsigned)__builtin_popcount((unsigned char)(p[i] ^ digest_tag[i]));
  return apart <= CHECKPT_SEAL_NEAR;
}

int wksp_private_checkpt_digest_parse(const char *binfo, size_t len, uint64_t *d) {
  size_t n = wksp_private_checkpt_digest_line_sz();
  if (len < n) return 0;
  const char *p = binfo + len - n;
  return (p == binfo || p[-1] == '\n') && line_parse(p, d);
}

/* The seal of an info (app id, build info of len bytes), as three places
 * show it (see the top of this file). */
void wksp_private_checkpt_seal_read(checkpt_seal_t *s, uint64_t app_id, const char *binfo, size_t len) {
  size_t n = wksp_private_checkpt_digest_line_sz();
  uint64_t first = 0, last = 0;
  int mark_near = __builtin_popcountll(app_id ^ CHECKPT_SEAL_MARK) <= CHECKPT_SEAL_NEAR;
  int first_near = len >= n && line_near(binfo), last_near = len >= n && line_near(binfo + len - n);
  int first_ok = len >= 2 * n && line_parse(binfo, &first);
  int last_ok = wksp_private_checkpt_digest_parse(binfo, len, &last);
  *s = (checkpt_seal_t){.state = WKSP_SEAL_NONE};
  if (!mark_near && !first_near && !last_near) return;
  s->state = WKSP_SEAL_BROKEN;
  if (!mark_near && !first_near && last_ok) {
    s->state = WKSP_SEAL_OK; /* line-only seal */
    s->digest = last;
  } else if (app_id != CHECKPT_SEAL_MARK) {
    snprintf(s->why, sizeof s->why, "the seal mark (the info's app id) is %016llx, not %016llx",
             (unsigned long long)app_id, (unsigned long long)CHECKPT_SEAL_MARK);
  } else if (!first_ok || !last_ok) {
    snprintf(s->why, sizeof s->why, "the build info's %s line is not a digest line",
             first_ok ? "last" : "first");
  } else if (first != last) {
    snprintf(s->why, sizeof s->why, "the build info's two digests differ: %016llx and %016llx",
             (unsigned long long)first, (unsigned long long)last);
  } else {
    s->state = WKSP_SEAL_OK;
    s->digest = first;
  }
}

int wksp_private_checkpt_seal_gate(const checkpt_seal_t *s, int require, const char *what) {
  if (s->state == WKSP_SEAL_BROKEN)
    return wksp_err(WKSP_ERR_CORRUPT, 0,
                    "%s: broken seal: %s (the file was damaged after it was written)", what,
                    s->why);
  if (require && s->state == WKSP_SEAL_NONE)
    return wksp_err(WKSP_ERR_UNSUP, 0,
                    "%s: not sealed (written without verify), and a seal is required", what);
  return WKSP_SUCCESS;
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
  uint64_t sz = p->gaddr_hi - p->gaddr_lo, s = wksp_private_checkpt_digest_record(p);
  for (uint64_t at = 0; at < sz; at += CHECKPT_DIGEST_PIECE)
    s += wksp_private_checkpt_digest_piece(p->gaddr_lo + at, b + at,
                                        sz - at < CHECKPT_DIGEST_PIECE ? sz - at : CHECKPT_DIGEST_PIECE);
  atomic_fetch_add_explicit(&o->sum, s, memory_order_relaxed);
  return WKSP_SUCCESS;
}

int wksp_private_checkpt_digest_of(wksp_t *w, const wksp_part_t *parts, uint64_t cnt,
                                uint32_t threads, uint64_t *d) {
  of_t o = {.w = w, .parts = parts};
  atomic_init(&o.sum, 0);
  int rc = wksp_private_checkpt_pool_run(threads ? threads : 1, cnt, of_one, &o);
  *d = atomic_load(&o.sum);
  return rc;
}

/* ---- the digest of a random-access checkpoint's allocations, decoded ---------------- */

static int file_piece(void *ctx, const wksp_part_t *p, uint64_t at, const uint8_t *b, uint64_t n) {
  atomic_fetch_add_explicit((_Atomic uint64_t *)ctx,
                            wksp_private_checkpt_digest_piece(p->gaddr_lo + at, b, n),
                            memory_order_relaxed);
  return WKSP_SUCCESS;
}

int wksp_private_checkpt_check_data(const checkpt_input_t *in, const checkpt_scan_t *s, uint32_t threads,
                                 int *seal) {
  int sealed = s->seal.state == WKSP_SEAL_OK;
  if (seal) *seal = s->seal.state;
  int rc = wksp_private_checkpt_seal_gate(&s->seal, 0, in->label);
  if (rc) return rc;
  _Atomic uint64_t sum;
  atomic_init(&sum, 0);
  rc = wksp_private_checkpt_data_pieces(in, s, threads ? threads : 1, sealed ? file_piece : NULL, &sum);
  if (rc || !sealed) return rc;
  uint64_t want = s->seal.digest;
  uint64_t got = atomic_load(&sum) + wksp_private_checkpt_digest_records(s->info.parts, s->info.alloc_cnt);
  if (seal) *seal = got == want ? WKSP_SEAL_OK : WKSP_SEAL_BROKEN;
  return got == want ? WKSP_SUCCESS : wksp_private_checkpt_seal_mismatch(in->label, want, got);
}

int wksp_private_checkpt_seal_mismatch(const char *what, uint64_t want, uint64_t got) {
  return wksp_err(WKSP_ERR_CORRUPT, 0,
                  "%s: content digest %016llx, the checkpoint records %016llx: the file was "
                  "damaged after it was written (its allocations, or the recorded digest)",
                  what, (unsigned long long)got, (unsigned long long)want);
}
