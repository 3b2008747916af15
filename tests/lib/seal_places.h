/* Where a sealed checkpoint keeps its seal (src/checkpt/seal.c): the
 * byte ranges of the seal mark and of every digest line, found by their
 * bytes (verbatim in v2 files and in v3's literal info frame).  For tests
 * that damage the seal. */
#ifndef WKSP_TESTS_CHECKPT_SEAL_PLACES_H
#define WKSP_TESTS_CHECKPT_SEAL_PLACES_H

#include <stdint.h>
#include <string.h>

#include "../../src/checkpt/checkpt_private.h"

typedef struct {
  uint64_t n, off[8], len[8]; /* n ranges [off, off + len) of the file */
  uint64_t bytes;             /* their total size */
} seal_places_t;

static inline void seal_places(const uint8_t *b, size_t sz, seal_places_t *p) {
  static const char tag[] = "content digest xxh3-sum64 ";
  uint8_t mark[8];
  for (int i = 0; i < 8; i++) mark[i] = (uint8_t)(CHECKPT_SEAL_MARK >> 8 * i);
  p->n = p->bytes = 0;
  const uint8_t *m = memmem(b, sz, mark, sizeof mark);
  if (m) {
    p->off[p->n] = (uint64_t)(m - b);
    p->len[p->n++] = sizeof mark;
  }
  for (const uint8_t *at = b; p->n < 8; at++) {
    at = memmem(at, sz - (size_t)(at - b), tag, sizeof tag - 1);
    if (!at) break;
    p->off[p->n] = (uint64_t)(at - b);
    p->len[p->n++] = wksp_private_checkpt_digest_line_sz();
  }
  for (uint64_t k = 0; k < p->n; k++) p->bytes += p->len[k];
}

/* The i-th byte (i < p->bytes) of the seal places, as a file offset. */
static inline uint64_t seal_places_at(const seal_places_t *p, uint64_t i) {
  uint64_t k = 0;
  while (k + 1 < p->n && i >= p->len[k]) i -= p->len[k++];
  return p->off[k] + i;
}

#endif
