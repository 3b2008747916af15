/* The v2/v3 writer (docs/FORMAT.md 3.9): wksp_checkpt and wksp_checkpt_fd.
 * The options are resolved once here into the writer context
 * (checkpt_writer_t); then: lock, plan (plan.c: the allocations and their
 * cgroups, exactly as the reference writer assigns them), header and info
 * frame, cgroup frames (RAW here on the calling thread, LZ4 in parallel:
 * pipeline.c), appendix, volumes and footer; with verify the file is read
 * back, compared (diff.c) and sealed (seal.c), and published (publish.c). */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "checkpt_private.h"
#include "delta_private.h"
#include "frame/frame_private.h"
#include "util/err.h"
#include <wksp/frame.h>
#include "../wksp/wksp_private.h"

/* ---- RAW cgroup frames ---------------------------------------------------------- */

/* The whole frame, with the writer given; *sz gets its size.  RAW data is
 * handed over in progress steps (the bytes are the same however they are
 * cut), so that a huge allocation shows progress. */
static int encode_cgroup(wksp_frame_writer_t *fw, const checkpt_plan_t *pl, int fsc, uint64_t g,
                         checkpt_progress_t *m, uint64_t *sz) {
  uint64_t off0 = 0, end = 0;
  int rc = wksp_frame_writer_open(fw, fsc, &off0);
  if (!rc) rc = wksp_private_checkpt_plan_commands(fw, pl, g);
  for (uint64_t k = 0; !rc && k < pl->cg_cnt[g]; k++) {
    const wksp_part_t *q = checkpt_cg_part(pl, g, k);
    const uint8_t *b = wksp_laddr(pl->w, q->gaddr_lo);
    uint64_t n = checkpt_part_sz(q);
    for (uint64_t at = 0; !rc && at < n; at += CHECKPT_PROGRESS_STEP) {
      uint64_t step = n - at < CHECKPT_PROGRESS_STEP ? n - at : CHECKPT_PROGRESS_STEP;
      rc = wksp_frame_writer_data(fw, b + at, step);
      if (!rc) wksp_private_checkpt_progress_add(m, step);
    }
  }
  if (!rc) rc = wksp_frame_writer_close(fw, &end);
  *sz = end - off0;
  return rc;
}

/* RAW frames (v2) are plain copies: written by the calling thread straight
 * from the workspace (the fd writer references large data in place), or
 * copied by the kernel from the region's file (source_choose). */
static int write_cgroups_seq(checkpt_writer_t *cw, uint64_t pos0, uint64_t *pos) {
  checkpt_plan_t *pl = &cw->plan;
  const wksp_checkpt_opts_t *o = cw->o;
  checkpt_progress_t m;
  wksp_private_checkpt_progress_init(&m, o->progress, o->progress_ctx, pl->data_sz);
  wksp_frame_writer_t *fw = NULL;
  int rc = wksp_frame_writer_init_fd(&fw, cw->fd);
  if (!rc && cw->src_fd >= 0)
    wksp_private_frame_writer_source(fw, cw->src_fd, cw->w, wksp_gaddr_hi(cw->w), cw->src_off);
  uint64_t at = pos0;
  for (uint64_t g = 0; !rc && g < pl->C; g++) {
    uint64_t sz = 0;
    pl->cg_off[g] = at;
    rc = checkpt_fail_point(g);
    if (!rc) rc = encode_cgroup(fw, pl, cw->frame_style, g, &m, &sz);
    at += sz;
  }
  int rc2 = wksp_frame_writer_fini(fw, NULL);
  if (!rc && !rc2 && pl->C) wksp_private_checkpt_progress_end(&m, pl->data_sz);
  wksp_private_checkpt_progress_fini(&m);
  *pos = at;
  return rc ? rc : rc2;
}

static int write_cgroups(checkpt_writer_t *cw, uint64_t pos0, uint64_t *pos) {
  if (cw->frame_style == WKSP_FRAME_RAW || !cw->plan.C) return write_cgroups_seq(cw, pos0, pos);
  return wksp_private_checkpt_pipeline(cw, pos0, pos);
}

/* ---- emission -------------------------------------------------------------------- */

static int write_head(checkpt_writer_t *cw, checkpt_hdr_t *h, uint64_t *end) {
  wksp_t *w = cw->w;
  int fsc = cw->frame_style;
  const checkpt_info_frame_t *inf = &cw->info;
  *h = (checkpt_hdr_t){.magic = CHECKPT_MAGIC,
                       .style = 2,
                       .frame_style = fsc,
                       .seed = wksp_seed(w),
                       .part_max = wksp_part_max(w),
                       .data_max = wksp_data_max(w)};
  strncpy(h->name, wksp_name(w), CHECKPT_NAME_MAX - 1); /* zero-fills the rest */
  uint8_t hdr[CHECKPT_HDR_SZ], info[CHECKPT_INFO_SZ];
  wksp_private_checkpt_hdr_encode(hdr, h);
  wksp_private_checkpt_info_encode(info, &inf->info);
  wksp_frame_writer_t *fw = NULL;
  int rc = wksp_frame_writer_init_fd(&fw, cw->fd);
  if (!rc) rc = wksp_frame_writer_open(fw, WKSP_FRAME_RAW, NULL);
  if (!rc) rc = wksp_frame_writer_data(fw, hdr, sizeof hdr);
  if (!rc) rc = wksp_frame_writer_close(fw, NULL);
  /* Sealing: the info frame is patchable (v3: literal blocks), so that the
   * frame layer says where the digest's digits land, to be filled in
   * once the file has been read back. */
  if (!cw->seal) {
    if (!rc) rc = wksp_frame_writer_open(fw, fsc, NULL);
    if (!rc) rc = wksp_frame_writer_meta(fw, info, sizeof info);
    if (!rc) rc = wksp_frame_writer_data(fw, inf->blob, inf->blob_sz);
  } else {
    uint64_t blob_at = 0;
    if (!rc) rc = wksp_private_frame_writer_open_patchable(fw, fsc, NULL);
    if (!rc) rc = wksp_frame_writer_meta(fw, info, sizeof info);
    if (!rc) rc = wksp_private_frame_writer_data_at(fw, inf->blob, inf->blob_sz, &blob_at);
    for (int k = 0; k < 2; k++) cw->seal_off[k] = blob_at + inf->seal_at[k];
  }
  if (!rc) rc = wksp_frame_writer_close(fw, end);
  int rc2 = wksp_frame_writer_fini(fw, NULL);
  return rc ? rc : rc2;
}

/* Appendix, volumes and footer, starting at checkpoint offset base. */
static int write_tail(const checkpt_writer_t *cw, const checkpt_hdr_t *h, uint64_t base) {
  const checkpt_plan_t *pl = &cw->plan;
  int fsc = cw->frame_style;
  uint8_t cmd[CHECKPT_CMD_SZ], ftr[CHECKPT_FTR_SZ];
  uint8_t *arr = malloc(16 * pl->C + 1); /* data buffers: kept until close */
  if (!arr) return wksp_err(WKSP_ERR_NOMEM, 0, "checkpt: appendix");
  for (uint64_t g = 0; g < pl->C; g++) {
    checkpt_st64(arr + 8 * g, pl->cg_off[g]);
    checkpt_st64(arr + 8 * (pl->C + g), pl->cg_cnt[g]);
  }
  wksp_frame_writer_t *fw = NULL;
  uint64_t app_off = 0, vol_off = 0, ftr_off = 0;
  int rc = wksp_frame_writer_init_fd(&fw, cw->fd);
  if (!rc) rc = wksp_frame_writer_open(fw, fsc, &app_off);
  app_off += base;
  wksp_private_checkpt_cmd_encode(cmd, 0, pl->C, 0);
  if (!rc) rc = wksp_frame_writer_meta(fw, cmd, sizeof cmd);
  if (!rc) rc = wksp_frame_writer_data(fw, arr, 8 * pl->C);
  if (!rc) rc = wksp_frame_writer_data(fw, arr + 8 * pl->C, 8 * pl->C);
  if (!rc) rc = wksp_frame_writer_close(fw, NULL);
  if (!rc) rc = wksp_frame_writer_open(fw, fsc, &vol_off);
  vol_off += base;
  wksp_private_checkpt_cmd_encode(cmd, 0, UINT64_MAX, app_off);
  if (!rc) rc = wksp_frame_writer_meta(fw, cmd, sizeof cmd);
  if (!rc) rc = wksp_frame_writer_close(fw, NULL);
  if (!rc) rc = wksp_frame_writer_open(fw, WKSP_FRAME_RAW, &ftr_off);
  ftr_off += base;
  checkpt_ftr_t f = {.alloc_cnt = pl->cnt,
                  .cgroup_cnt = pl->C,
                  .volume_cnt = 1,
                  .frame_off = vol_off,
                  .checkpt_sz = ftr_off + CHECKPT_FTR_SZ,
                  .data_max = h->data_max,
                  .part_max = h->part_max,
                  .seed = h->seed,
                  .reserved = 0,
                  .frame_style = h->frame_style,
                  .style = 2,
                  .unmagic = ~h->magic};
  memcpy(f.name, h->name, CHECKPT_NAME_MAX);
  wksp_private_checkpt_ftr_encode(ftr, &f);
  if (!rc) rc = wksp_frame_writer_data(fw, ftr, sizeof ftr);
  if (!rc) rc = wksp_frame_writer_close(fw, NULL);
  int rc2 = wksp_frame_writer_fini(fw, NULL);
  free(arr);
  return rc ? rc : rc2;
}

static int write_all(checkpt_writer_t *cw) {
  checkpt_hdr_t h;
  uint64_t pos = 0, end = 0;
  int rc = write_head(cw, &h, &pos);
  if (!rc) rc = write_cgroups(cw, pos, &end);
  if (!rc) rc = write_tail(cw, &h, end);
  return rc;
}

/* ---- verify ---------------------------------------------------------------------- */

/* Lock held, the whole file written to fd (a path target's temporary file,
 * from its offset 0): reads it back and compares it with w; if they agree,
 * seals it: the content digest of what was read goes into the info frame at
 * both seal_off. */
static int verify_written(checkpt_writer_t *cw) {
  wksp_t *w = cw->w;
  int fd = cw->fd;
  const char *label = cw->label;
  checkpt_hook(CHECKPT_HOOK_VERIFY, &(checkpt_hook_t){.w = w});
  if (lseek(fd, 0, SEEK_SET) < 0) return wksp_err(WKSP_ERR_FAIL, errno, "checkpt %s: verify", label);
  checkpt_input_t in;
  int rc = wksp_private_checkpt_input_open(&in, NULL, fd, label, CHECKPT_IN_NEED_MEM);
  if (rc) return wksp_err_wrap(rc, "checkpt %s: verify", label);
  wksp_checkpt_diff_t d;
  rc = wksp_private_checkpt_diff_locked(w, &in, cw->threads, NULL, NULL, &d,
                                        cw->o->index ? &cw->piece_hash : NULL);
  wksp_private_checkpt_input_fini(&in);
  if (rc) return wksp_err_wrap(rc, "checkpt %s: verify", label);
  const wksp_part_t *p = &d.first_ckpt;
  if (d.first_kind == WKSP_DIFF_BYTES)
    return wksp_err(WKSP_ERR_AGAIN, 0,
                    "checkpt %s: verify: %" PRIu64 " allocation(s) changed while the checkpoint was "
                    "written, the first [%" PRIu64 ",%" PRIu64 ") tag %" PRIu64 " at byte %" PRIu64
                    " (the application wrote "
                    "into it); nothing was published",
                    label, d.bytes, p->gaddr_lo, p->gaddr_hi, p->tag, d.first_off);
  if (d.first_kind != WKSP_DIFF_NONE) /* the lock keeps ranges and tags: a writer bug */
    return wksp_err(WKSP_ERR_CORRUPT, 0,
                    "checkpt %s: verify: the file's allocations are not the workspace's (%" PRIu64 " "
                    "only in the file, %" PRIu64 " only in the workspace, %" PRIu64 " with another tag)",
                    label, d.only_ckpt, d.only_wksp, d.tag);
  cw->digest = d.digest;
  return wksp_private_checkpt_seal_patch(fd, cw->seal_off, d.digest, label);
}

/* How the data will be read (wksp_private_bytes_route): a process that
 * does not map the workspace's bytes (the CLI) reads them from the
 * region's file: RAW frames copied by the kernel into a regular file or
 * through a buffer into a pipe (wksp_private_frame_writer_source), LZ4
 * frames compressed from buffers read with pread (pipeline.c); a process
 * that maps them reads the mapping (pre-faulted where it does not map
 * all of it). */
static void source_choose(checkpt_writer_t *cw) {
  wksp_private_bytes_route(cw->w, cw->plan.parts, cw->plan.cnt, 0, 1, &cw->src_fd, &cw->src_off);
}

/* ---- API --------------------------------------------------------------------------- */

/* The options, resolved once: INVAL for a style or mode that cannot be. */
static int writer_init(checkpt_writer_t *cw, wksp_t *w, const char *label,
                       const wksp_checkpt_opts_t *o) {
  static const wksp_checkpt_opts_t opts_default = {0};
  if (!o) o = &opts_default;
  memset(cw, 0, sizeof *cw);
  if (o->style != WKSP_CHECKPT_STYLE_DEFAULT && o->style != WKSP_CHECKPT_STYLE_V2 &&
      o->style != WKSP_CHECKPT_STYLE_V3)
    return wksp_err(WKSP_ERR_INVAL, 0, "checkpt: style %d is not 0, 2 or 3 (v1 is read-only)",
                    o->style);
  if (o->mode > 07777)
    return wksp_err(WKSP_ERR_INVAL, 0, "checkpt: mode %o has bits outside 07777", o->mode);
  if (o->index && !o->verify)
    return wksp_err(WKSP_ERR_INVAL, 0, "checkpt: index needs verify (the index is of the verified file)");
  cw->w = w;
  cw->fd = -1;
  cw->src_fd = -1;
  cw->label = label;
  cw->frame_style = o->style == WKSP_CHECKPT_STYLE_V2 ? WKSP_FRAME_RAW : WKSP_FRAME_LZ4;
  cw->mode = o->mode ? o->mode : 0600;
  cw->threads = checkpt_threads(o->threads);
  cw->o = o;
  return WKSP_SUCCESS;
}

/* Writes the checkpoint to cw->fd; when pub is non-NULL, publishes it (the
 * commit happens with the workspace still locked so that the file shows a
 * state the lock protected). */
static int checkpt_to(checkpt_writer_t *cw, checkpt_pub_t *pub) {
  cw->seal = pub && cw->o->verify;
  const char *label = cw->label;
  int rc = wksp_private_checkpt_info_build(&cw->info, label, cw->mode, cw->o->uinfo, cw->seal);
  if (rc) goto out;
  rc = wksp_private_checkpt_lock(cw->w, cw->o->lock_wait, cw->o->lock_wait_ctx, -1, "checkpt", label);
  if (rc) goto out;
  rc = wksp_private_checkpt_plan_build(&cw->plan, cw->w);
  if (!rc) source_choose(cw); /* every byte is read: no fault per page */
  if (!rc) {
    rc = write_all(cw);
    if (rc == WKSP_ERR_FAIL) wksp_err_wrap(rc, "checkpt %s", label); /* I/O: name the target */
  }
  if (!rc && cw->seal) rc = verify_written(cw);
  /* opts.index: the sidecar, from the hashes of the file read back, is
   * published before the checkpoint, and removed again if the checkpoint's
   * commit fails (docs/FORMAT.md 13.3). */
  int indexed = 0;
  if (!rc && pub && cw->o->index) {
    rc = wksp_private_delta_index_of_wksp(cw->w, cw->plan.parts, cw->plan.cnt, cw->piece_hash, cw->digest,
                                          cw->info.info.wallclock, label, cw->mode);
    indexed = !rc;
  }
  if (!rc && pub) rc = wksp_private_checkpt_pub_commit(pub);
  if (rc && indexed) wksp_private_delta_index_unlink(label);
  wksp_private_unlock(cw->w);
out:
  if (cw->src_fd >= 0) close(cw->src_fd);
  cw->src_fd = -1;
  wksp_private_checkpt_plan_fini(&cw->plan);
  free(cw->info.blob);
  free(cw->piece_hash);
  return rc;
}

int wksp_checkpt_fd(wksp_t *w, int fd, const char *path_label, const wksp_checkpt_opts_t *opts) {
  if (!w || fd < 0) return wksp_err(WKSP_ERR_INVAL, 0, "wksp_checkpt_fd: NULL workspace or bad fd");
  if (opts && (opts->verify || opts->index))
    return wksp_err(WKSP_ERR_INVAL, 0,
                    "wksp_checkpt_fd: verify (and index) needs a path target (the file is read back before "
                    "it is published)");
  checkpt_writer_t cw;
  int rc = writer_init(&cw, w, path_label ? path_label : "-", opts);
  if (rc) return rc;
  cw.fd = fd;
  return checkpt_to(&cw, NULL);
}

/* The target is opened before the workspace is made (make NULL: w as
 * given), so that a target refused (EXIST, INVAL) costs nothing. */
static int checkpt_path(wksp_t *w, const char *path, const wksp_checkpt_opts_t *opts, checkpt_make_fn_t make,
                        void *ctx) {
  checkpt_writer_t cw;
  int rc = writer_init(&cw, w, path, opts);
  if (rc) return rc;
  /* A made workspace is sealed on a file target only: a stream target is
   * written unsealed instead of refused. */
  wksp_checkpt_opts_t po = *cw.o;
  po.verify &= !make;
  checkpt_pub_t pub;
  rc = wksp_private_checkpt_pub_open(&pub, path, &po);
  if (rc) return rc;
  if (pub.stream && cw.o->index)
    rc = wksp_err(WKSP_ERR_INVAL, 0, "checkpt %s: a stream: the index needs a file target", path);
  if (!rc && make) rc = make(ctx, &cw.w);
  /* A stream target is written as an fd is: nothing to publish. */
  cw.fd = pub.fd;
  if (!rc) rc = checkpt_to(&cw, pub.stream ? NULL : &pub);
  wksp_private_checkpt_pub_abort(&pub);
  return rc;
}

int wksp_checkpt(wksp_t *w, const char *path, const wksp_checkpt_opts_t *opts) {
  if (!w || !path) return wksp_err(WKSP_ERR_INVAL, 0, "wksp_checkpt: NULL workspace or path");
  return checkpt_path(w, path, opts, NULL, NULL);
}

int wksp_private_checkpt_made(const char *path, const wksp_checkpt_opts_t *opts, checkpt_make_fn_t make, void *ctx) {
  return checkpt_path(NULL, path, opts, make, ctx);
}
