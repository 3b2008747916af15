/* Inspection without a workspace: wksp_preview (the first bytes),
 * wksp_checkpt_info (the whole structure), wksp_checkpt_check (the
 * structure, every allocation decoded, the seal). */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "checkpt_private.h"
#include "delta_private.h"
#include "util/err.h"
#include "util/io.h"

int wksp_preview_mem(const void *buf, size_t sz, wksp_preview_t *out) {
  if (!buf || !out) return wksp_err(WKSP_ERR_INVAL, 0, "wksp_preview_mem: NULL argument");
  if (sz > CHECKPT_PREVIEW_MAX) sz = CHECKPT_PREVIEW_MAX;
  return wksp_private_checkpt_preview_any(buf, sz, out, "preview");
}

static int preview_fd(int fd, wksp_preview_t *out, const char *what) {
  uint8_t buf[CHECKPT_PREVIEW_MAX];
  long n = wksp_private_read_full(fd, buf, sizeof buf);
  if (n < 0) return wksp_err(WKSP_ERR_FAIL, errno, "%s: read", what);
  if (n < 12)
    return wksp_err(WKSP_ERR_FAIL, 0, "%s: only %ld bytes, a checkpoint has at least 12", what, n);
  return wksp_private_checkpt_preview_any(buf, (size_t)n, out, what);
}

int wksp_preview_fd(int fd, const char *label, wksp_preview_t *out) {
  if (fd < 0 || !out) return wksp_err(WKSP_ERR_INVAL, 0, "wksp_preview_fd: bad fd or NULL out");
  return preview_fd(fd, out, label ? label : "-");
}

int wksp_preview(const char *path, wksp_preview_t *out) {
  if (!path || !out) return wksp_err(WKSP_ERR_INVAL, 0, "wksp_preview: NULL argument");
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return wksp_err(WKSP_ERR_FAIL, errno, "preview %s: open", path);
  int rc = preview_fd(fd, out, path);
  close(fd);
  return rc;
}

/* ---- info ---------------------------------------------------------------------------- */

static int info_any(const char *path, int fd, const char *label, wksp_checkpt_info_t *out) {
  checkpt_input_t in;
  int rc = wksp_private_checkpt_input_open(&in, path, fd, label, CHECKPT_IN_NEED_MEM);
  if (rc) return rc;
  checkpt_scan_t s;
  rc = wksp_private_checkpt_scan(&s, &in);
  wksp_private_checkpt_input_fini(&in);
  if (rc) return rc;
  *out = s.info;
  s.info.parts = NULL;
  s.info.cgroups = NULL;
  s.info.priv_ = NULL;
  wksp_private_checkpt_scan_fini(&s);
  return WKSP_SUCCESS;
}

int wksp_checkpt_info(const char *path, wksp_checkpt_info_t *out) {
  if (out) memset(out, 0, sizeof *out);
  if (!out || !path) return wksp_err(WKSP_ERR_INVAL, 0, "wksp_checkpt_info: NULL path or out");
  return info_any(path, -1, path, out);
}

int wksp_checkpt_info_fd(int fd, const char *label, wksp_checkpt_info_t *out) {
  if (out) memset(out, 0, sizeof *out);
  if (!out || fd < 0) return wksp_err(WKSP_ERR_INVAL, 0, "wksp_checkpt_info_fd: bad fd or NULL out");
  return info_any(NULL, fd, label ? label : "-", out);
}

/* ---- check --------------------------------------------------------------------------- */

/* A delta or index file: rules 1-5 of docs/FORMAT.md 13.2 (an index has no pieces). */
static int check_delta(const checkpt_input_t *in, uint32_t threads) {
  delta_file_t df;
  int rc = wksp_private_delta_open(&df, in);
  if (rc) return rc;
  rc = wksp_private_delta_pieces_check(&df, in, threads);
  wksp_private_delta_fini(&df);
  return rc;
}

static int check_any(const char *path, int fd, const char *label, const wksp_check_opts_t *opts,
                     int *seal) {
  wksp_check_opts_t o = opts ? *opts : (wksp_check_opts_t){0};
  o.threads = checkpt_threads(o.threads);
  checkpt_input_t in;
  int rc = wksp_private_checkpt_input_open(&in, path, fd, label, CHECKPT_IN_NEED_MEM);
  if (rc) return rc;
  uint64_t m;
  if ((rc = wksp_private_delta_magic_read(&in, &m))) goto done_in;
  if (delta_magic_any(m)) {
    rc = check_delta(&in, o.threads);
    if (!rc && seal) *seal = WKSP_SEAL_OK;
    goto done_in;
  }
  checkpt_scan_t s;
  rc = wksp_private_checkpt_scan(&s, &in);
  if (rc) goto done_in;
  if (seal) *seal = s.seal.state;
  rc = wksp_private_checkpt_seal_gate(&s.seal, o.require_seal, label);
  /* Decoding everything is the check of the data (LZ4 blocks that decode
   * to their sizes, frames that end where they must); the digest, when
   * recorded, is the check of the bytes themselves. */
  if (!rc) rc = wksp_private_checkpt_check_data(&in, &s, o.threads, seal);
  wksp_private_checkpt_scan_fini(&s);
done_in:
  wksp_private_checkpt_input_fini(&in);
  return rc;
}

int wksp_checkpt_check(const char *path, const wksp_check_opts_t *opts, int *seal) {
  if (seal) *seal = WKSP_SEAL_NONE;
  if (!path) return wksp_err(WKSP_ERR_INVAL, 0, "wksp_checkpt_check: NULL path");
  return check_any(path, -1, path, opts, seal);
}

int wksp_checkpt_check_fd(int fd, const char *label, const wksp_check_opts_t *opts, int *seal) {
  if (seal) *seal = WKSP_SEAL_NONE;
  if (fd < 0) return wksp_err(WKSP_ERR_INVAL, 0, "wksp_checkpt_check_fd: bad fd");
  return check_any(NULL, fd, label ? label : "-", opts, seal);
}

void wksp_checkpt_info_free(wksp_checkpt_info_t *info) {
  if (!info) return;
  free(info->parts);
  free(info->cgroups);
  free(info->priv_);
  memset(info, 0, sizeof *info);
}
