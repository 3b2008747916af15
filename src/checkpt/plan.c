/* The writer's plan (docs/FORMAT.md 3.9): the workspace's allocations,
 * checked, and their cgroups exactly as the reference writer assigns them;
 * a cgroup frame's commands; where a byte of a cgroup's data lies. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "checkpt_private.h"
#include "util/err.h"
#include "../wksp/wksp_private.h"

void wksp_private_checkpt_plan_fini(checkpt_plan_t *pl) {
  free(pl->parts);
  free(pl->cg_cnt);
  free(pl->cg_start);
  free(pl->order);
  free(pl->cg_off);
  memset(pl, 0, sizeof *pl);
}

int wksp_private_checkpt_plan_list(checkpt_plan_t *pl, wksp_t *w) {
  memset(pl, 0, sizeof *pl);
  pl->w = w;
  int rc = wksp_private_alloc_walk(w, &pl->parts, &pl->cnt);
  if (rc) return wksp_err_wrap(rc, "checkpt %s", wksp_name(w));
  /* alloc_walk promised a checked list; re-check what the format needs so
   * that a bad list can never produce an unreadable file. */
  uint64_t lo = wksp_gaddr_lo(w), hi = wksp_gaddr_hi(w), prev = lo;
  for (uint64_t k = 0; k < pl->cnt; k++) {
    const wksp_part_t *p = &pl->parts[k];
    if (!p->tag || p->gaddr_lo < prev || p->gaddr_lo >= p->gaddr_hi || p->gaddr_hi > hi)
      return wksp_err(WKSP_ERR_CORRUPT, 0,
                      "checkpt %s: allocation %" PRIu64 " [%" PRIu64 ",%" PRIu64 ") tag %" PRIu64
                      " is out of order or range",
                      wksp_name(w), k, p->gaddr_lo, p->gaddr_hi, p->tag);
    prev = p->gaddr_hi;
    pl->data_sz += p->gaddr_hi - p->gaddr_lo;
  }
  return WKSP_SUCCESS;
}

int wksp_private_checkpt_plan_build(checkpt_plan_t *pl, wksp_t *w) {
  memset(pl, 0, sizeof *pl); /* for plan_fini after a failed verify */
  int rc = wksp_private_verify(w, "alloc_list");
  if (rc) return wksp_err_wrap(rc, "checkpt %s", wksp_name(w));
  if ((rc = wksp_private_checkpt_plan_list(pl, w))) return rc;
  pl->C = checkpt_cgroup_cnt(pl->cnt);
  pl->cg_cnt = calloc(pl->C + 1, sizeof *pl->cg_cnt);
  pl->cg_start = calloc(pl->C + 1, sizeof *pl->cg_start);
  pl->order = calloc(pl->cnt + 1, sizeof *pl->order);
  pl->cg_off = calloc(2 * pl->C + 1, sizeof *pl->cg_off);
  if (!pl->cg_cnt || !pl->cg_start || !pl->order || !pl->cg_off)
    return wksp_err(WKSP_ERR_NOMEM, 0, "checkpt %s: cgroup tables for %" PRIu64 " allocations", wksp_name(w),
                    pl->cnt);
  wksp_private_checkpt_cgroup_assign(pl->parts, pl->cnt, pl->cg_cnt, pl->cg_start, pl->order);
  return WKSP_SUCCESS;
}

/* A cgroup frame is its allocations' commands, a data command, then their
 * bytes (docs/FORMAT.md 3.5). */
int wksp_private_checkpt_plan_commands(wksp_frame_writer_t *fw, const checkpt_plan_t *pl,
                                       uint64_t g) {
  uint8_t cmd[CHECKPT_CMD_SZ];
  int rc = 0;
  for (uint64_t k = 0; !rc && k < pl->cg_cnt[g]; k++) {
    const wksp_part_t *q = checkpt_cg_part(pl, g, k);
    wksp_private_checkpt_cmd_encode(cmd, q->tag, q->gaddr_lo, q->gaddr_hi);
    rc = wksp_frame_writer_meta(fw, cmd, sizeof cmd);
  }
  wksp_private_checkpt_cmd_encode(cmd, 0, UINT64_MAX, UINT64_MAX);
  return rc ? rc : wksp_frame_writer_meta(fw, cmd, sizeof cmd);
}

uint64_t wksp_private_checkpt_plan_cgroup_sz(const checkpt_plan_t *pl, uint64_t g) {
  uint64_t sz = 0;
  for (uint64_t k = 0; k < pl->cg_cnt[g]; k++) sz += checkpt_part_sz(checkpt_cg_part(pl, g, k));
  return sz;
}

void wksp_private_checkpt_plan_locate(const checkpt_plan_t *pl, uint64_t g, uint64_t x,
                                      uint64_t *k, uint64_t *off) {
  uint64_t at = 0, i = 0;
  for (;; i++) {
    const wksp_part_t *q = checkpt_cg_part(pl, g, i);
    if (x < at + checkpt_part_sz(q)) break;
    at += checkpt_part_sz(q);
  }
  *k = i;
  *off = x - at;
}
