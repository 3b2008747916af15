/* Scratch directories for the tests of the checkpoint layer (tests/checkpt/);
 * test_rmdir (test.h) removes them. */
#ifndef WKSP_TESTS_LIB_CKPT_TEST_H
#define WKSP_TESTS_LIB_CKPT_TEST_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vec.h"
#include "../../src/checkpt/checkpt_private.h"

/* Makes a fresh directory under /tmp; its path goes to d (n bytes). */
static inline void ckpt_test_dir(char *d, size_t n) {
  snprintf(d, n, "/tmp/wksp-test-checkpt.XXXXXX");
  if (!mkdtemp(d)) abort();
}

/* The bytes of checkpoint p that do not depend on its info frame: the
 * header frame, all cgroup frames (one region, back to back), the footer
 * apart from the offsets that move with the info frame's length, and each
 * frame's allocation count; malloc'd, *sz its length, NULL on failure.
 * Two checkpoints of the same workspace state (other thread counts, or a
 * fold) must have equal ones: the info frame differs between any two
 * writes (time, host, process; the seal). */
static inline uint8_t *ckpt_frames_of(const char *p, uint64_t *sz) {
  wksp_checkpt_info_t I;
  if (wksp_checkpt_info(p, &I)) return NULL;
  size_t n = 0;
  uint8_t *b = (uint8_t *)vec_slurp(p, &n);
  if (!b) {
    wksp_checkpt_info_free(&I);
    return NULL;
  }
  uint64_t lo = I.cgroup_cnt ? I.cgroups[0].off : 0,
           hi = I.cgroup_cnt ? I.cgroups[I.cgroup_cnt - 1].end : 0;
  checkpt_ftr_t f;
  wksp_private_checkpt_ftr_decode(&f, b + n - CHECKPT_FTR_SZ);
  f.frame_off = f.checkpt_sz = 0;
  uint64_t at = 0;
  uint8_t *out = malloc(CHECKPT_HDR_SZ + hi - lo + CHECKPT_FTR_SZ + 8 * I.cgroup_cnt + 1);
  memcpy(out, b, CHECKPT_HDR_SZ);
  at += CHECKPT_HDR_SZ;
  memcpy(out + at, b + lo, hi - lo);
  at += hi - lo;
  wksp_private_checkpt_ftr_encode(out + at, &f);
  at += CHECKPT_FTR_SZ;
  for (uint64_t g = 0; g < I.cgroup_cnt; g++, at += 8) checkpt_st64(out + at, I.cgroups[g].alloc_cnt);
  *sz = at;
  wksp_checkpt_info_free(&I);
  free(b);
  return out;
}

#endif
