/* Opening a checkpoint for reading: map regular files, spool pipes to an
 * unnamed temporary file when the caller needs random access. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ckpt.h"
#include "util/err.h"

long wksp_private_ckpt_read_full(int fd, void *buf, size_t sz) {
  size_t got = 0;
  while (got < sz) {
    ssize_t n = read(fd, (uint8_t *)buf + got, sz - got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return -1;
    if (!n) break;
    got += (size_t)n;
  }
  return (long)got;
}

long wksp_private_ckpt_read_full_at(int fd, void *buf, size_t sz, uint64_t off) {
  size_t got = 0;
  while (got < sz) {
    ssize_t n = pread(fd, (uint8_t *)buf + got, sz - got, (off_t)(off + got));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return -1;
    if (!n) break;
    got += (size_t)n;
  }
  return (long)got;
}

static int write_full(int fd, const void *buf, size_t sz) {
  size_t done = 0;
  while (done < sz) {
    ssize_t n = write(fd, (const uint8_t *)buf + done, sz - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return -1;
    done += (size_t)n;
  }
  return 0;
}

/* Maps fd's bytes [pos, size) read-only. */
static int map_fd(ckpt_input_t *in, int fd, uint64_t pos, uint64_t size, int populate) {
  if (pos > size) pos = size;
  in->sz = size - pos;
  if (!size) {
    static const uint8_t empty[1];
    in->mem = empty;
    return WKSP_SUCCESS;
  }
  if (size > (uint64_t)SIZE_MAX)
    return wksp_err(WKSP_ERR_FAIL, 0, "%s: file of %llu bytes is too large to map", in->label,
                    (unsigned long long)size);
  /* populate: a spooled stream, which is read whole (one call instead of
   * a fault per page); files are mapped lazily (listings read only the
   * commands; restores say MADV_SEQUENTIAL first). */
  void *m = mmap(NULL, (size_t)size, PROT_READ, MAP_PRIVATE | (populate ? MAP_POPULATE : 0), fd, 0);
  if (m == MAP_FAILED) return wksp_err(WKSP_ERR_FAIL, errno, "%s: mmap", in->label);
  in->map = m;
  in->map_sz = (size_t)size;
  in->map_fd = fd;
  in->mem = (const uint8_t *)m + pos;
  return WKSP_SUCCESS;
}

static int tmp_dir_open(int *out) {
  const char *dir = getenv("TMPDIR");
  if (!dir || !*dir) dir = "/tmp";
  int fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
  if (fd < 0) return wksp_err(WKSP_ERR_FAIL, errno, "spool: temporary file in %s", dir);
  *out = fd;
  return WKSP_SUCCESS;
}

int wksp_private_ckpt_input_spool(ckpt_input_t *in, const uint8_t *pre, size_t pre_sz) {
  int tfd = -1, rc = tmp_dir_open(&tfd);
  if (rc) return rc;
  /* The buffer starts at one default pipe capacity and doubles while reads
   * fill it: a small input (the usual spooled v1 file) does not pay for a
   * 1 MiB buffer, a large one still moves 1 MiB per system call. */
  enum { BUF_MIN = 64 << 10, BUF_MAX = 1 << 20 };
  size_t cap = BUF_MIN;
  uint8_t *buf = malloc(cap);
  if (!buf) {
    rc = wksp_err(WKSP_ERR_NOMEM, 0, "%s: spool buffer", in->label);
    goto fail;
  }
  if (pre_sz && write_full(tfd, pre, pre_sz)) {
    rc = wksp_err(WKSP_ERR_FAIL, errno, "%s: spool write", in->label);
    goto fail;
  }
  uint64_t total = pre_sz;
  for (;;) {
    ssize_t n = read(in->fd, buf, cap);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      rc = wksp_err(WKSP_ERR_FAIL, errno, "%s: read", in->label);
      goto fail;
    }
    if (!n) break;
    if (write_full(tfd, buf, (size_t)n)) {
      rc = wksp_err(WKSP_ERR_FAIL, errno, "%s: spool write", in->label);
      goto fail;
    }
    total += (uint64_t)n;
    if ((size_t)n == cap && cap < BUF_MAX) { /* contents written out: no copy */
      free(buf);
      cap *= 2;
      if (!(buf = malloc(cap))) {
        rc = wksp_err(WKSP_ERR_NOMEM, 0, "%s: spool buffer", in->label);
        goto fail;
      }
    }
  }
  free(buf);
  buf = NULL;
  rc = map_fd(in, tfd, 0, total, 1);
  if (rc) goto fail;
  if (in->own_fd >= 0) close(in->own_fd);
  in->own_fd = tfd;
  return WKSP_SUCCESS;
fail:
  free(buf);
  close(tfd);
  return rc;
}

int wksp_private_ckpt_input_open(ckpt_input_t *in, const char *path, int fd, const char *label,
                                 int flags) {
  memset(in, 0, sizeof *in);
  in->own_fd = -1;
  in->map_fd = -1;
  in->fd = fd;
  in->label = label ? label : path ? path : "-";
  if (path) {
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return wksp_err(WKSP_ERR_FAIL, errno, "%s: open", path);
    in->fd = in->own_fd = fd;
  }
  struct stat st;
  int rc;
  if (fstat(fd, &st)) {
    rc = wksp_err(WKSP_ERR_FAIL, errno, "%s: fstat", in->label);
    goto fail;
  }
  if (S_ISREG(st.st_mode)) {
    off_t pos = path ? 0 : lseek(fd, 0, SEEK_CUR);
    if (pos < 0) pos = 0;
    rc = map_fd(in, fd, (uint64_t)pos, (uint64_t)st.st_size, flags & CKPT_IN_POPULATE);
    if (rc) goto fail;
    return WKSP_SUCCESS;
  }
  if (!(flags & CKPT_IN_NEED_MEM)) return WKSP_SUCCESS;
  rc = wksp_private_ckpt_input_spool(in, NULL, 0);
  if (rc) goto fail;
  return WKSP_SUCCESS;
fail:
  wksp_private_ckpt_input_fini(in);
  return rc;
}

void wksp_private_ckpt_input_sequential(const ckpt_input_t *in) {
  if (in->map) madvise(in->map, in->map_sz, MADV_SEQUENTIAL); /* only a hint: errors ignored */
}

void wksp_private_ckpt_input_fini(ckpt_input_t *in) {
  if (in->map) munmap(in->map, in->map_sz);
  if (in->own_fd >= 0) close(in->own_fd);
  in->map = NULL;
  in->mem = NULL;
  in->own_fd = -1;
  in->map_fd = -1;
}
