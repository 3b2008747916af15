/* The content digest of a checkpoint's allocations (the seal's, seal.c).
 *
 * The digest is a sum (mod 2^64) of XXH3-64 hashes: one per allocation
 * record (range and tag) and one per 64 KiB piece of its bytes (counted
 * from the allocation's start, seeded with the piece's global address).  A
 * sum because any thread may hash any piece in any order, with O(1) state;
 * the position seed makes moved or swapped pieces count.  It detects
 * accidental damage (a flipped bit changes it with probability 1 - 2^-64);
 * it is no defence against someone who rewrites the file on purpose. */
#include <inttypes.h>
#include <stdatomic.h>
#include <stdlib.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "checkpt_private.h"
#include "../wksp/wksp_private.h"
#include "util/err.h"

/* The vector code xxhash.h chose for this file (the build's baseline). */
#if XXH_VECTOR == XXH_AVX512
#define XXH3_IMPL_NAME "AVX-512"
#elif XXH_VECTOR == XXH_AVX2
#define XXH3_IMPL_NAME "AVX2"
#elif XXH_VECTOR == XXH_SSE2
#define XXH3_IMPL_NAME "SSE2"
#elif XXH_VECTOR == XXH_NEON
#define XXH3_IMPL_NAME "NEON"
#else
#define XXH3_IMPL_NAME "scalar"
#endif

uint64_t wksp_private_checkpt_digest_piece(uint64_t gaddr, const uint8_t *b, uint64_t n) {
#if defined(WKSP_DIGEST_AVX2)
  /* __builtin_cpu_supports reads what libgcc found at start-up: a load and a test */
  if (__builtin_cpu_supports("avx2")) return wksp_private_checkpt_xxh3_avx2(b, n, gaddr);
#endif
  return XXH3_64bits_withSeed(b, (size_t)n, gaddr);
}

const char *wksp_private_checkpt_digest_impl(void) {
#if defined(WKSP_DIGEST_AVX2)
  if (__builtin_cpu_supports("avx2")) return "XXH3, AVX2";
#endif
  return "XXH3, " XXH3_IMPL_NAME;
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

/* ---- the digest of restored allocations -------------------------------------- */

typedef struct {
  wksp_t *w;
  const wksp_part_t *parts;
  int fd;        /* >= 0: the bytes read from the region's file */
  uint64_t off0; /* its offset of gaddr 0 */
  uint8_t *buf[WKSP_CHECKPT_THREADS_MAX]; /* per thread: CHECKPT_COPY_BUF bytes read */
  _Atomic uint64_t sum;
} of_t;

/* n bytes of allocation p at offset at, from the mapping or read. */
static int of_bytes(of_t *o, const wksp_part_t *p, uint64_t at, uint64_t n, uint32_t slot, const uint8_t **b) {
  if (o->fd < 0) {
    *b = (const uint8_t *)wksp_laddr(o->w, p->gaddr_lo) + at;
    return WKSP_SUCCESS;
  }
  if (!o->buf[slot] && !(o->buf[slot] = malloc(CHECKPT_COPY_BUF)))
    return wksp_err(WKSP_ERR_NOMEM, 0, "digest: read buffer");
  *b = o->buf[slot];
  return wksp_private_region_get(o->fd, o->off0 + p->gaddr_lo + at, o->buf[slot], n);
}

static int of_one(void *ctx, uint64_t k, uint32_t slot) {
  of_t *o = ctx;
  const wksp_part_t *p = &o->parts[k];
  uint64_t sz = p->gaddr_hi - p->gaddr_lo, s = wksp_private_checkpt_digest_record(p);
  int rc = WKSP_SUCCESS;
  /* in steps of CHECKPT_COPY_BUF, a multiple of the piece: pieces stay whole */
  for (uint64_t at = 0; !rc && at < sz; at += CHECKPT_COPY_BUF) {
    uint64_t n = sz - at < CHECKPT_COPY_BUF ? sz - at : CHECKPT_COPY_BUF;
    const uint8_t *b = NULL;
    rc = of_bytes(o, p, at, n, slot, &b);
    for (uint64_t i = 0; !rc && i < n; i += CHECKPT_DIGEST_PIECE)
      s += wksp_private_checkpt_digest_piece(p->gaddr_lo + at + i, b + i,
                                             n - i < CHECKPT_DIGEST_PIECE ? n - i : CHECKPT_DIGEST_PIECE);
  }
  atomic_fetch_add_explicit(&o->sum, s, memory_order_relaxed);
  return rc;
}

int wksp_private_checkpt_digest_of(wksp_t *w, const wksp_part_t *parts, uint64_t cnt, uint32_t threads, int fd,
                                   uint64_t off0, uint64_t *d) {
  of_t o = {.w = w, .parts = parts, .fd = fd, .off0 = off0};
  atomic_init(&o.sum, 0);
  int rc = wksp_private_checkpt_pool_run_slots(threads, cnt, of_one, &o);
  *d = atomic_load(&o.sum);
  for (uint32_t t = 0; t < WKSP_CHECKPT_THREADS_MAX; t++) free(o.buf[t]);
  return rc;
}
