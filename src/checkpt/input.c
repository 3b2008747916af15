/* Opening a checkpoint for reading.  A regular file is read with pread(2),
 * never mapped: a file shortened while it is read must give an error, not
 * SIGBUS, and copying from the page cache into buffers each thread reuses
 * is cheaper than faulting the file in page by page.  A pipe that must be
 * read at random is first spooled into an unnamed temporary file, after
 * its header has been checked and never beyond what a checkpoint with that
 * header can hold or the spool directory has room for. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "checkpt_private.h"
#include "delta_private.h"
#include "frame/frame_private.h"
#include "util/err.h"
#include "util/io.h"

/* ---- reading a random-access input ------------------------------------------------ */

/* The message of a file that is now shorter than when it was opened. */
static int shrank(const checkpt_input_t *in, uint64_t now) {
  return wksp_err(WKSP_ERR_CORRUPT, 0,
                  "file truncated while reading: %s is now %" PRIu64 " bytes, expected %" PRIu64, in->label,
                  now, (in->base + in->sz));
}

int wksp_private_checkpt_input_changed(const checkpt_input_t *in, int rc) {
  struct stat st;
  if (!rc || in->rfd < 0 || fstat(in->rfd, &st) || (uint64_t)st.st_size >= in->base + in->sz)
    return rc;
  return shrank(in, (uint64_t)st.st_size);
}

int wksp_private_checkpt_input_read(const checkpt_input_t *in, void *buf, uint64_t n, uint64_t off) {
  if (off > in->sz || n > in->sz - off)
    return wksp_err(WKSP_ERR_CORRUPT, 0,
                    "%s: truncated: %" PRIu64 " bytes at offset %" PRIu64 ", the file has %" PRIu64,
                    in->label, n, off, in->sz);
  if (in->mem) {
    memcpy(buf, in->mem + off, n);
    return WKSP_SUCCESS;
  }
  long got = wksp_private_pread_full(in->rfd, buf, n, in->base + off);
  if (got < 0)
    return wksp_err(WKSP_ERR_FAIL, errno, "%s: read of %" PRIu64 " bytes at offset %" PRIu64, in->label, n,
                    off);
  if ((uint64_t)got < n) return shrank(in, in->base + off + (uint64_t)got);
  return WKSP_SUCCESS;
}

int wksp_private_checkpt_input_reader(const checkpt_input_t *in, wksp_frame_reader_t **r) {
  return in->mem ? wksp_frame_reader_init_mem(r, in->mem, in->sz)
                 : wksp_private_frame_reader_init_pread(r, in->rfd, in->base, in->sz);
}

int wksp_private_checkpt_truncated(const char *what, uint64_t at, uint64_t end) {
  return wksp_err(WKSP_ERR_CORRUPT, 0, "%s: truncated at offset %" PRIu64 " (expected %" PRIu64 " bytes)",
                  what, at, end);
}

int wksp_private_checkpt_read_fail(const wksp_frame_reader_t *r, uint64_t base, int rc,
                                   const char *what, const char *where) {
  uint64_t at, end;
  if (wksp_err_short_is_corrupt(rc) != rc && wksp_private_frame_reader_short(r, &at, &end))
    return wksp_private_checkpt_truncated(what, base + at, base + end);
  return wksp_err_where(wksp_err_short_is_corrupt(rc), "%s: %s", what, where);
}

void wksp_private_checkpt_input_sequential(const checkpt_input_t *in) {
  if (in->rfd >= 0) /* only a hint: errors ignored */
    posix_fadvise(in->rfd, (off_t)in->base, (off_t)in->sz, POSIX_FADV_SEQUENTIAL);
}

/* ---- spooling a stream --------------------------------------------------------------- */

static const char *tmp_dir(void) {
  const char *dir = getenv("TMPDIR");
  return dir && *dir ? dir : "/tmp";
}

/* What the spool may write: at the start (and again when it reaches its
 * limit) the spool directory's free space, less a margin that stays free
 * (1/32 of the filesystem, at most 64 MiB), so that the spool fails before
 * the disk is full instead of filling it. */
typedef struct {
  int fd;
  uint64_t total, limit, max_sz;
  int bounded; /* limit >= max_sz: no need to look again */
} room_t;

static void room_look(room_t *rm) {
  struct statvfs v;
  rm->limit = UINT64_MAX; /* unknown: write errors (ENOSPC) still end the spool */
  if (fstatvfs(rm->fd, &v) || !v.f_frsize) return;
  uint64_t fs = (uint64_t)v.f_blocks * v.f_frsize;
  uint64_t margin = fs / 32 < (64u << 20) ? fs / 32 : 64u << 20;
  uint64_t avail = (uint64_t)v.f_bavail * v.f_frsize;
  rm->limit = rm->total + (avail > margin ? avail - margin : 0);
}

/* Can n more bytes be spooled? */
static int room_for(room_t *rm, uint64_t n, const char *label) {
  if (rm->bounded || rm->total + n <= rm->limit) return WKSP_SUCCESS;
  room_look(rm); /* space may have been freed meanwhile */
  if (rm->total + n <= rm->limit) return WKSP_SUCCESS;
  return wksp_err(WKSP_ERR_FAIL, ENOSPC,
                  "%s: spooling to %s: room for %" PRIu64 " bytes (1/32 of the filesystem, at most 64 "
                  "MiB, is kept free), %" PRIu64 " spooled, and a checkpoint with this header can be up "
                  "to %" PRIu64 " bytes; set TMPDIR to a directory with more room",
                  label, tmp_dir(), rm->limit, rm->total, rm->max_sz);
}

/* Spools the rest of in->fd into tfd after the head already written;
 * stops at max_sz bytes (v1: what follows is never read) or fails beyond
 * them (v2). */
static int spool_rest(checkpt_input_t *in, room_t *rm, int v1) {
  /* The buffer starts at one default pipe capacity and doubles while reads
   * fill it: a small input (the usual spooled v1 file) does not pay for a
   * 1 MiB buffer, a large one still moves 1 MiB per system call. */
  enum { BUF_MIN = 64 << 10, BUF_MAX = 1 << 20 };
  size_t cap = BUF_MIN;
  uint8_t *buf = malloc(cap);
  int rc = buf ? WKSP_SUCCESS : wksp_err(WKSP_ERR_NOMEM, 0, "%s: spool buffer", in->label);
  while (!rc && !(v1 && rm->total == rm->max_sz)) {
    size_t ask = cap;
    if (v1 && rm->max_sz - rm->total < ask) ask = (size_t)(rm->max_sz - rm->total);
    ssize_t n = read(in->fd, buf, ask);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      rc = wksp_err(WKSP_ERR_FAIL, errno, "%s: read", in->label);
      break;
    }
    if (!n) break;
    if ((uint64_t)n > rm->max_sz - rm->total) {
      rc = wksp_err(WKSP_ERR_CORRUPT, 0,
                    "%s: longer than a checkpoint of this geometry can be (%" PRIu64 " bytes)", in->label,
                    rm->max_sz);
      break;
    }
    rc = room_for(rm, (uint64_t)n, in->label);
    if (!rc && wksp_private_write_full(rm->fd, buf, (size_t)n))
      rc = wksp_err(WKSP_ERR_FAIL, errno, "%s: spool write to %s", in->label, tmp_dir());
    rm->total += rc ? 0 : (uint64_t)n;
    if (!rc && (size_t)n == cap && cap < BUF_MAX) { /* contents written out: no copy */
      free(buf);
      cap *= 2;
      if (!(buf = malloc(cap))) rc = wksp_err(WKSP_ERR_NOMEM, 0, "%s: spool buffer", in->label);
    }
  }
  free(buf);
  return rc;
}

int wksp_private_checkpt_input_spool(checkpt_input_t *in, const uint8_t *pre, size_t pre_sz) {
  /* The header first: nothing is spooled for what is not a checkpoint,
   * and the header bounds what is. */
  uint8_t head[CHECKPT_PREVIEW_MAX];
  size_t n = pre_sz < sizeof head ? pre_sz : sizeof head;
  if (n) memcpy(head, pre, n); /* (pre may be NULL) */
  long got = wksp_private_read_full(in->fd, head + n, sizeof head - n);
  if (got < 0) return wksp_err(WKSP_ERR_FAIL, errno, "%s: read", in->label);
  n += (size_t)got;
  wksp_preview_t pv;
  room_t rm = {.fd = -1};
  /* a delta (docs/FORMAT.md 13.2) is bounded by the counts in its header */
  int delta = n >= 8 && delta_magic_any(checkpt_ld64(head));
  int rc = delta ? wksp_private_delta_head(head, n, in->label, &rm.max_sz)
                 : wksp_private_checkpt_head(head, n, in->label, &pv, &rm.max_sz);
  if (rc) return rc;
  if (delta) pv.style = 2;
  rm.fd = open(tmp_dir(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
  if (rm.fd < 0) return wksp_err(WKSP_ERR_FAIL, errno, "spool: temporary file in %s", tmp_dir());
  room_look(&rm);
  rm.bounded = rm.limit >= rm.max_sz;
  rc = room_for(&rm, n, in->label);
  if (!rc && wksp_private_write_full(rm.fd, head, n))
    rc = wksp_err(WKSP_ERR_FAIL, errno, "%s: spool write to %s", in->label, tmp_dir());
  rm.total = n;
  if (!rc && n == sizeof head) rc = spool_rest(in, &rm, pv.style == 1);
  if (rc) {
    close(rm.fd);
    return rc;
  }
  if (in->own_fd >= 0) close(in->own_fd);
  in->own_fd = in->rfd = rm.fd;
  in->base = 0;
  in->sz = rm.total;
  return WKSP_SUCCESS;
}

int wksp_private_checkpt_input_open(checkpt_input_t *in, const char *path, int fd, const char *label,
                                 int flags) {
  memset(in, 0, sizeof *in);
  in->own_fd = -1;
  in->rfd = -1;
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
    if (pos < 0 || pos > st.st_size) pos = pos < 0 ? 0 : st.st_size;
    in->rfd = fd;
    in->base = (uint64_t)pos;
    in->sz = (uint64_t)(st.st_size - pos);
    return WKSP_SUCCESS;
  }
  if (!(flags & CHECKPT_IN_NEED_MEM)) return WKSP_SUCCESS;
  rc = wksp_private_checkpt_input_spool(in, NULL, 0);
  if (rc) goto fail;
  return WKSP_SUCCESS;
fail:
  wksp_private_checkpt_input_fini(in);
  return rc;
}

void wksp_private_checkpt_input_fini(checkpt_input_t *in) {
  if (in->own_fd >= 0) close(in->own_fd);
  in->own_fd = -1;
  in->rfd = -1;
  in->mem = NULL;
}
