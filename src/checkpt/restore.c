/* Restore (docs/FORMAT.md 4, 5), transactional: the API, the choice of the
 * path from the input's first bytes, and the random-access path (the stream
 * paths, sequential and pipelined, are in stream.c):
 *
 *   random-access input (files read with pread, spooled pipes): scan =
 *   validate the whole structure -> lock -> check the target can hold it ->
 *   reset -> decode the cgroup frames in parallel straight into the target
 *   -> replace the partition records -> unlock.  Until reset nothing has
 *   changed; a data error after it (or a file shortened meanwhile) resets
 *   the target to empty and returns CORRUPT (FAIL for a read error).
 *
 *   stream input (pipes): header and info first, then frame by frame,
 *   writing allocation bytes as they come (the first write resets the
 *   target); every later error resets the target to empty. */
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include "checkpt_private.h"
#include "util/err.h"
#include "util/io.h"
#include <wksp/frame.h>
#include "../wksp/wksp_private.h"

static void *dest_wksp(void *ctx, const wksp_part_t *p) { return wksp_laddr(ctx, p->gaddr_lo); }

/* Lock held, structure validated: everything from the target check on. */
static int restore_locked(wksp_t *w, const checkpt_input_t *in, const checkpt_scan_t *s,
                          const wksp_restore_opts_t *o) {
  const wksp_part_t *parts = s->info.parts;
  uint64_t cnt = s->info.alloc_cnt;
  int rc = wksp_private_checkpt_fit_check(w, parts, cnt, in->label);
  if (!rc) rc = wksp_private_replace_check(w, parts, cnt);
  if (rc) return wksp_err_wrap(rc, "restore %s", in->label);
  uint32_t threads = o->threads;
  /* A sealed checkpoint (written with verify) records a content digest:
   * checked before anything changes with verify_first, else once the bytes
   * are in the target (a mismatch then resets it, as any data error). */
  int sealed = s->seal.state == WKSP_SEAL_OK;
  /* All or nothing: decode every LZ4 frame once before changing anything
   * (RAW data has nothing to decode, only a digest to check, if sealed). */
  if (o->verify_first && (sealed || (s->info.pv.style == 2 && s->hdr.frame_style == WKSP_FRAME_LZ4))) {
    rc = wksp_private_checkpt_check_data(in, s, threads, NULL);
    if (rc) return wksp_err_wrap(rc, "restore %s: verify", in->label);
    sealed = 0; /* checked */
  }
  rc = wksp_private_reset(w, o->seed);
  if (rc) return wksp_err_wrap(rc, "restore %s: reset", in->label);
  /* One fault per page costs more than the copy: the mapping is pre-faulted,
   * or the bytes go to the region's file (wksp_private_bytes_route), from
   * which a seal's digest then reads them back. */
  int fd = -1;
  uint64_t off0 = 0;
  int to_file = wksp_private_bytes_route(w, parts, cnt, 1, 1, &fd, &off0);
  checkpt_progress_t m;
  wksp_private_checkpt_progress_init(&m, o->progress, o->progress_ctx, s->info.alloc_sz);
  rc = to_file ? wksp_private_checkpt_data_run_file(in, s, threads, fd, off0, &m)
               : wksp_private_checkpt_data_run(in, s, threads, dest_wksp, NULL, w, &m);
  if (!rc)
    rc = wksp_private_checkpt_target_finish(w, parts, cnt, sealed ? &s->seal : NULL, o, fd, off0, in->label);
  if (fd >= 0) close(fd);
  if (!rc) wksp_private_checkpt_progress_end(&m, s->info.alloc_sz);
  wksp_private_checkpt_progress_fini(&m);
  if (rc) {
    wksp_private_reset(w, o->seed); /* already empty unless replace half-failed */
    return wksp_private_checkpt_after_reset(wksp_err_short_is_corrupt(rc));
  }
  return WKSP_SUCCESS;
}

static int restore_random(wksp_t *w, const checkpt_input_t *in, const wksp_restore_opts_t *o) {
  checkpt_scan_t s;
  int rc = wksp_private_checkpt_scan(&s, in);
  if (rc) return rc;
  /* A broken seal, or none when one is required, is known from the info
   * alone: refused before anything changes. */
  rc = wksp_private_checkpt_seal_gate(&s.seal, o->require_seal, in->label);
  if (rc) goto done;
  /* Read whole already (a file, or a spooled pipe): its writer is done. */
  rc = wksp_private_checkpt_lock(w, o->lock_wait, o->lock_wait_ctx, -1, "restore", in->label);
  if (rc) goto done;
  rc = restore_locked(w, in, &s, o);
  wksp_private_unlock(w);
done:
  wksp_private_checkpt_scan_fini(&s);
  return rc;
}

/* ---- choosing the path -------------------------------------------------------------- */

/* A stream's first bytes decide, before anything else is read: what is not
 * a checkpoint is refused; v1 (its allocations may not fit), verify_first,
 * and a v2 header whose source data region may not fit the target, spool
 * the stream first, so that it is restored as a file (fit checked before
 * anything changes); the rest is restored as it arrives. */
static int restore_stream_or_spool(wksp_t *w, checkpt_input_t *in, const wksp_restore_opts_t *o) {
  /* A larger pipe buffer lets the writer run ahead while we decode (best
   * effort: not a pipe, or above the system's limit, changes nothing). */
  fcntl(in->fd, F_SETPIPE_SZ, 1 << 20);
  uint8_t hdr[CHECKPT_HDR_SZ];
  long n = wksp_private_read_full(in->fd, hdr, sizeof hdr);
  if (n < 0) return wksp_err(WKSP_ERR_FAIL, errno, "restore %s: read", in->label);
  checkpt_hdr_t h;
  if ((size_t)n == sizeof hdr) wksp_private_checkpt_hdr_decode(&h, hdr);
  int v2 = (size_t)n == sizeof hdr && h.magic == CHECKPT_MAGIC;
  uint64_t v1_magic = 0;
  if (!v2 && !(wksp_private_checkpt_svw_decode(hdr, (size_t)n, &v1_magic) && v1_magic == CHECKPT_MAGIC)) {
    wksp_preview_t pv; /* neither v2 nor v1: refused before anything is read or spooled */
    uint64_t max_sz;
    int rc = wksp_private_checkpt_head(hdr, (size_t)n, in->label, &pv, &max_sz);
    return rc ? rc : wksp_err(WKSP_ERR_CORRUPT, 0, "%s: not a wksp checkpoint", in->label);
  }
  int spool = !v2 || o->verify_first;
  if (!spool) {
    int rc = wksp_private_checkpt_hdr_check(&h, in->label);
    if (rc) return rc;
    uint64_t slo = checkpt_gaddr_lo(h.part_max), shi = slo + h.data_max;
    spool = slo < wksp_gaddr_lo(w) || shi > wksp_gaddr_hi(w); /* may not fit: check first */
  }
  if (!spool) return wksp_private_checkpt_restore_stream(w, in, &h, o);
  int rc = wksp_private_checkpt_input_spool(in, hdr, (size_t)n);
  return rc ? rc : restore_random(w, in, o);
}

/* ---- API --------------------------------------------------------------------------- */

static int restore_any(wksp_t *w, const char *path, int fd, const char *label,
                       const wksp_restore_opts_t *opts) {
  /* the options resolved once: what follows takes the thread count as is */
  wksp_restore_opts_t o = opts ? *opts : (wksp_restore_opts_t){0};
  o.threads = checkpt_threads(o.threads);
  checkpt_input_t in;
  int rc = wksp_private_checkpt_input_open(&in, path, fd, label, 0);
  if (rc) return rc;
  rc = checkpt_input_random(&in) ? restore_random(w, &in, &o) : restore_stream_or_spool(w, &in, &o);
  wksp_private_checkpt_input_fini(&in);
  return rc;
}

int wksp_restore(wksp_t *w, const char *path, const wksp_restore_opts_t *opts) {
  if (!w || !path) return wksp_err(WKSP_ERR_INVAL, 0, "wksp_restore: NULL workspace or path");
  return restore_any(w, path, -1, path, opts);
}

int wksp_restore_fd(wksp_t *w, int fd, const char *label, const wksp_restore_opts_t *opts) {
  if (!w || fd < 0) return wksp_err(WKSP_ERR_INVAL, 0, "wksp_restore_fd: NULL workspace or bad fd");
  return restore_any(w, NULL, fd, label ? label : "-", opts);
}
