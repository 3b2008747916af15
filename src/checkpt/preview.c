/* Preview (docs/FORMAT.md 7): style, name, seed and sizes from the first bytes. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "ckpt.h"
#include "util/err.h"

int wksp_private_ckpt_preview_v2(const uint8_t *p, size_t sz, wksp_preview_t *out,
                                 const char *what) {
  if (sz < CKPT_HDR_SZ)
    return wksp_err(WKSP_ERR_CORRUPT, 0, "%s: %zu bytes, a v2 header needs %d", what, sz,
                    CKPT_HDR_SZ);
  ckpt_hdr_t h;
  wksp_private_ckpt_hdr_decode(&h, p);
  int rc = wksp_private_ckpt_hdr_check(&h, what);
  if (rc) return rc;
  memset(out, 0, sizeof *out);
  out->style = 2;
  out->frame_style = h.frame_style;
  memcpy(out->name, h.name, CKPT_NAME_MAX);
  out->name[CKPT_NAME_MAX - 1] = 0;
  out->seed = h.seed;
  out->part_max = h.part_max;
  out->data_max = h.data_max;
  return WKSP_SUCCESS;
}

/* v1 preamble: 13 SVW integers, then the name as SVW length + bytes. */
static int preview_v1(const uint8_t *p, size_t sz, wksp_preview_t *out, const char *what) {
  uint64_t v[14];
  size_t used = 0;
  for (int k = 0; k < 14; k++) {
    size_t n = wksp_private_ckpt_svw_decode(p + used, sz - used, &v[k]);
    if (!n) return wksp_err(WKSP_ERR_CORRUPT, 0, "%s: truncated v1 preamble", what);
    used += n;
  }
  if (v[0] != CKPT_MAGIC)
    return wksp_err(WKSP_ERR_CORRUPT, 0, "%s: not a checkpoint (no v2 header or v1 magic)", what);
  if (v[1] != 1)
    return wksp_err(WKSP_ERR_CORRUPT, 0, "%s: v1 style %llu, expected 1", what,
                    (unsigned long long)v[1]);
  if (v[2] > UINT32_MAX)
    return wksp_err(WKSP_ERR_CORRUPT, 0, "%s: v1 seed %llu does not fit 32 bits", what,
                    (unsigned long long)v[2]);
  if (!wksp_private_ckpt_sizes_valid(v[3], v[4]))
    return wksp_err(WKSP_ERR_CORRUPT, 0, "%s: v1 part_max %llu / data_max %llu are not valid", what,
                    (unsigned long long)v[3], (unsigned long long)v[4]);
  uint64_t len = v[13];
  if (len < 1 || len > CKPT_NAME_MAX - 1 || len > sz - used)
    return wksp_err(WKSP_ERR_CORRUPT, 0, "%s: v1 name length %llu", what, (unsigned long long)len);
  char name[CKPT_NAME_MAX] = {0};
  memcpy(name, p + used, len);
  if (wksp_private_name_len(name) != len)
    return wksp_err(WKSP_ERR_CORRUPT, 0, "%s: v1 workspace name is not a valid name", what);
  memset(out, 0, sizeof *out);
  out->style = 1;
  memcpy(out->name, name, CKPT_NAME_MAX);
  out->seed = (uint32_t)v[2];
  out->part_max = v[3];
  out->data_max = v[4];
  return WKSP_SUCCESS;
}

int wksp_private_ckpt_preview_any(const uint8_t *p, size_t sz, wksp_preview_t *out,
                                  const char *what) {
  if (sz >= CKPT_HDR_SZ && ckpt_ld64(p) == CKPT_MAGIC)
    return wksp_private_ckpt_preview_v2(p, sz, out, what);
  return preview_v1(p, sz, out, what);
}

int wksp_preview_mem(const void *buf, size_t sz, wksp_preview_t *out) {
  if (!buf || !out) return wksp_err(WKSP_ERR_INVAL, 0, "wksp_preview_mem: NULL argument");
  if (sz > CKPT_PREVIEW_MAX) sz = CKPT_PREVIEW_MAX;
  return wksp_private_ckpt_preview_any(buf, sz, out, "preview");
}

static int preview_fd(int fd, wksp_preview_t *out, const char *what) {
  uint8_t buf[CKPT_PREVIEW_MAX];
  long n = wksp_private_ckpt_read_full(fd, buf, sizeof buf);
  if (n < 0) return wksp_err(WKSP_ERR_FAIL, errno, "%s: read", what);
  if (n < 12)
    return wksp_err(WKSP_ERR_FAIL, 0, "%s: only %ld bytes, a checkpoint has at least 12", what, n);
  return wksp_private_ckpt_preview_any(buf, (size_t)n, out, what);
}

int wksp_preview_fd(int fd, wksp_preview_t *out) {
  if (fd < 0 || !out) return wksp_err(WKSP_ERR_INVAL, 0, "wksp_preview_fd: bad fd or NULL out");
  return preview_fd(fd, out, "preview");
}

int wksp_preview(const char *path, wksp_preview_t *out) {
  if (!path || !out) return wksp_err(WKSP_ERR_INVAL, 0, "wksp_preview: NULL argument");
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return wksp_err(WKSP_ERR_FAIL, errno, "preview %s: open", path);
  int rc = preview_fd(fd, out, path);
  close(fd);
  return rc;
}
