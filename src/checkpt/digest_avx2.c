/* XXH3 for the content digest, compiled for AVX2 (the Makefile gives this
 * file alone -mavx2 when the compiler targets x86-64); digest.c calls it
 * only on CPUs that have AVX2.
 *
 * Why: xxhash.h picks its vector code when it is compiled, and the
 * library is built for baseline x86-64, which gives SSE2: about 16 GB/s a
 * core on the test machine, against about 30 GB/s for the AVX2 code of
 * the same header (the hash values are the same: XXH3 is defined
 * independently of the instructions that compute it).  Every piece hash
 * goes through here: the seal (checkpoint with verify, restore of a sealed
 * file, info --check, diff), the delta writer's change detection and the
 * index sidecar.  Debian's libxxhash dispatches at run time too, but picks
 * AVX-512 here, measured at 19 GB/s, and would be one more dependency. */
#if defined(__x86_64__) && defined(__AVX2__)
#include <immintrin.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "checkpt_private.h"

/* The VZEROUPPER is ours: gcc 12 emits none on the way out of xxhash's
 * AVX2 loop, and SSE code run after it with the upper halves of the ymm
 * registers dirty pays a transition penalty on every instruction (the
 * SSE2 XXH3 of a caller ran 4x slower, 0.031 -> 0.124 s a GiB). */
uint64_t wksp_private_checkpt_xxh3_avx2(const uint8_t *b, uint64_t n, uint64_t seed) {
  uint64_t h = XXH3_64bits_withSeed(b, (size_t)n, seed);
  _mm256_zeroupper();
  return h;
}
#else
typedef int wksp_digest_avx2_unused_t; /* an empty unit is not ISO C */
#endif
