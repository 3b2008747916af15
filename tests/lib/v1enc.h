/* tests/lib/v1enc.h: a minimal writer of legacy v1 checkpoints
 * (docs/FORMAT.md 5), written from the format text independently of the
 * library's reader, for small v1 test files and fuzz seeds. */
#ifndef WKSP_TESTS_RELIABILITY_V1ENC_H
#define WKSP_TESTS_RELIABILITY_V1ENC_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <wksp/wksp.h>

#include "frame_testlib.h"

static inline void v1_put(ftl_buf_t *o, const void *p, size_t n) {
  if (ftl_buf_append(o, p, n)) abort();
}

static inline void v1_le(ftl_buf_t *o, uint64_t e, size_t n) {
  uint8_t t[8];
  for (size_t i = 0; i < n; i++) t[i] = (uint8_t)(e >> (8 * i));
  v1_put(o, t, n);
}

/* SVW encoding (docs/FORMAT.md 5.1), smallest width. */
static inline void v1_svw(ftl_buf_t *o, uint64_t x) {
  uint8_t hi;
  if (x < (1ull << 6)) return v1_le(o, x << 1, 1);
  if (x < (1ull << 10)) return v1_le(o, 0x8001u | x << 3, 2);
  if (x < (1ull << 18)) {
    v1_le(o, (0x5u | x << 3) & 0xFFFF, 2);
    hi = (uint8_t)(0xA0 | x >> 13);
    return v1_put(o, &hi, 1);
  }
  if (x < (1ull << 24)) return v1_le(o, 0xC0000003u | x << 4, 4);
  if (x < (1ull << 32)) {
    v1_le(o, (0xBu | x << 4) & 0xFFFFFFFFu, 4);
    hi = (uint8_t)(0xD0 | x >> 28);
    return v1_put(o, &hi, 1);
  }
  if (x < (1ull << 56)) return v1_le(o, 0xE000000000000007ull | x << 4, 8);
  v1_le(o, 0xFull | x << 4, 8);
  hi = (uint8_t)(0xF0 | x >> 60);
  v1_put(o, &hi, 1);
}

static inline void v1_str(ftl_buf_t *o, const char *s) {
  v1_svw(o, strlen(s));
  v1_put(o, s, strlen(s));
}

/* A v1 checkpoint (bytes at .p, .sz of them; free .p) of the allocations parts[0..cnt) of w (bytes from w). */
static inline ftl_buf_t v1_encode(wksp_t *w, const wksp_part_t *parts, uint64_t cnt) {
  ftl_buf_t o = {0};
  const uint64_t head[13] = {0xF17EDA2C3731C591ull, 1, wksp_seed(w), wksp_part_max(w), wksp_data_max(w),
                             1700000000000000000ull, 1, 2, 3, 4, 1234, 1235, 1000};
  for (int i = 0; i < 13; i++) v1_svw(&o, head[i]);
  const char *strs[9] = {wksp_name(w), "app", "main", "host", "cpu0", "group", "user", "binfo", "v1 test"};
  for (int i = 0; i < 9; i++) v1_str(&o, strs[i]);
  for (uint64_t i = 0; i < cnt; i++) {
    v1_svw(&o, parts[i].tag);
    v1_svw(&o, parts[i].gaddr_lo);
    v1_svw(&o, parts[i].gaddr_hi - parts[i].gaddr_lo);
    v1_put(&o, wksp_laddr(w, parts[i].gaddr_lo), parts[i].gaddr_hi - parts[i].gaddr_lo);
  }
  v1_svw(&o, 0);
  return o;
}

#endif
