/* What both restore paths (restore.c for files, stream.c for pipes) do
 * to the target: check that it can hold the checkpoint's ranges, note
 * that a failure reset it, and finish: check a sealed checkpoint's digest
 * against the restored bytes and replace the partition records. */
#include <inttypes.h>

#include "checkpt_private.h"
#include "util/err.h"
#include "../wksp/wksp_private.h"

/* A note on what was done about the failure: the cause (what the CLI
 * prints) and the context stay apart, and nothing is logged again. */
int wksp_private_checkpt_after_reset(int rc) { return wksp_err_append(rc, "(target reset to empty)"); }

/* Every range must lie in the target's data region (docs/FORMAT.md 4.5).  The
 * FULL message names the first range that does not and a geometry that
 * works: the lowest address bounds part_max from above, the highest one
 * bounds data_max from below. */
int wksp_private_checkpt_fit_check(wksp_t *w, const wksp_part_t *parts, uint64_t cnt,
                                const char *what) {
  if (!cnt) return WKSP_SUCCESS;
  uint64_t lo = wksp_gaddr_lo(w), hi = wksp_gaddr_hi(w);
  uint64_t min_lo = parts[0].gaddr_lo, max_hi = parts[cnt - 1].gaddr_hi;
  if (lo <= min_lo && max_hi <= hi) return WKSP_SUCCESS;
  uint64_t pmax = (min_lo - WKSP_HDR_SZ) / WKSP_PART_SZ; /* largest part_max keeping min_lo */
  uint64_t p = wksp_part_max(w) < pmax ? wksp_part_max(w) : pmax;
  uint64_t dmin = max_hi - (WKSP_HDR_SZ + WKSP_PART_SZ * p);
  const wksp_part_t *bad = min_lo < lo ? &parts[0] : &parts[cnt - 1];
  return wksp_err(
      WKSP_ERR_FULL, 0,
      "%s: allocation [%" PRIu64 ",%" PRIu64 ") lies outside the target's data region [%" PRIu64 ",%" PRIu64
      ") "
      "(part_max %" PRIu64 ", data_max %" PRIu64 "); a target with part_max <= %" PRIu64 " and data_max >= "
      "%" PRIu64 " - 64*part_max would hold every range, e.g. part_max %" PRIu64 " data_max %" PRIu64,
      what, bad->gaddr_lo, bad->gaddr_hi, lo, hi, wksp_part_max(w), wksp_data_max(w), pmax,
      (max_hi - WKSP_HDR_SZ), p, dmin);
}

int wksp_private_checkpt_target_finish(wksp_t *w, const wksp_part_t *parts, uint64_t cnt,
                                       const checkpt_seal_t *seal, const wksp_restore_opts_t *o, int fd,
                                       uint64_t off0, const char *what) {
  if (seal && seal->state == WKSP_SEAL_OK) {
    uint64_t got = 0, want = seal->digest;
    int rc = wksp_private_checkpt_digest_of(w, parts, cnt, o->threads, fd, off0, &got);
    if (rc) rc = wksp_err_wrap(rc, "%s: content digest", what);
    if (!rc && got != want) rc = wksp_private_checkpt_seal_mismatch(what, want, got);
    if (rc) return rc;
  }
  return wksp_private_replace(w, parts, cnt, o->seed);
}
