/* Atomic, durable publication of a new file (weakness 4 of docs/FORMAT.md 9).
 *
 * The file is written as an unnamed O_TMPFILE in the target directory, so a
 * process killed at any moment leaves nothing behind; at commit its mode is
 * set with fchmod (exact, no umask, umask untouched), it is fsynced, linked
 * at the target path with linkat (which never replaces an existing file:
 * EEXIST), and the directory is fsynced.  Overwrite links to a temporary
 * name first and renames it over the target (atomic replacement).
 * Filesystems without O_TMPFILE get a named temporary file created O_EXCL,
 * unlinked on every failure path (a SIGKILL can leave that one). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ckpt.h"
#include "util/err.h"

int wksp_private_ckpt_test_no_tmpfile;

/* fsync, retried when a signal interrupts it (POSIX allows EINTR). */
static int fsync_full(int fd) {
  int r;
  while ((r = fsync(fd)) && errno == EINTR) {}
  return r;
}

static const char *base_name(const char *path) {
  const char *s = strrchr(path, '/');
  return s ? s + 1 : path;
}

/* Opens the directory holding path. */
static int dir_open(const char *path, int *out) {
  const char *s = strrchr(path, '/');
  char *dir = s ? strndup(path, (size_t)(s - path) + (s == path)) : strdup(".");
  if (!dir) return wksp_err(WKSP_ERR_NOMEM, 0, "checkpt %s: path copy", path);
  int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  int rc = fd < 0 ? wksp_err(WKSP_ERR_FAIL, errno, "checkpt %s: open directory %s", path, dir) : 0;
  free(dir);
  *out = fd;
  return rc;
}

/* A fresh temporary name beside the target: ".<base>.wksp-tmp.<pid>.<n>". */
static char *tmp_name(const char *base) {
  static unsigned long counter;
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  unsigned long n = __atomic_add_fetch(&counter, 1, __ATOMIC_RELAXED) ^ (unsigned long)ts.tv_nsec;
  char *s = NULL;
  if (asprintf(&s, ".%s.wksp-tmp.%ld.%lx", base, (long)getpid(), n) < 0) return NULL;
  return s;
}

int wksp_private_ckpt_pub_open(ckpt_pub_t *p, const char *path, uint32_t mode, int overwrite) {
  memset(p, 0, sizeof *p);
  p->fd = p->dir_fd = -1;
  p->mode = mode;
  p->overwrite = overwrite;
  const char *base = base_name(path);
  if (!*base || !strcmp(base, ".") || !strcmp(base, ".."))
    return wksp_err(WKSP_ERR_INVAL, 0, "checkpt %s: not a file path", path);
  p->path = strdup(path);
  if (!p->path) return wksp_err(WKSP_ERR_NOMEM, 0, "checkpt %s: path copy", path);
  int rc = dir_open(path, &p->dir_fd);
  if (rc) goto fail;
  /* Early check, so that a big checkpoint is not written for nothing; the
   * link at commit checks again. */
  struct stat st;
  if (!overwrite && !fstatat(p->dir_fd, base, &st, AT_SYMLINK_NOFOLLOW)) {
    rc = wksp_err(WKSP_ERR_EXIST, 0, "checkpt %s: file exists (overwrite not requested)", path);
    goto fail;
  }
  p->fd = wksp_private_ckpt_test_no_tmpfile
              ? (errno = EOPNOTSUPP, -1)
              : openat(p->dir_fd, ".", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
  if (p->fd < 0 && (errno == EOPNOTSUPP || errno == EISDIR || errno == EINVAL)) {
    p->tmp_name = tmp_name(base);
    if (!p->tmp_name) {
      rc = wksp_err(WKSP_ERR_NOMEM, 0, "checkpt %s: temporary name", path);
      goto fail;
    }
    p->fd = openat(p->dir_fd, p->tmp_name, O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC, 0600);
    if (p->fd < 0) {
      free(p->tmp_name);
      p->tmp_name = NULL;
    }
  }
  if (p->fd < 0) {
    rc = wksp_err(WKSP_ERR_FAIL, errno, "checkpt %s: create temporary file", path);
    goto fail;
  }
  return WKSP_SUCCESS;
fail:
  wksp_private_ckpt_pub_abort(p);
  return rc;
}

/* Gives the written file a name in the directory (the final one, or a
 * temporary one for overwrite). */
static int link_as(ckpt_pub_t *p, const char *name) {
  if (p->tmp_name) return linkat(p->dir_fd, p->tmp_name, p->dir_fd, name, 0);
  char proc[64];
  snprintf(proc, sizeof proc, "/proc/self/fd/%d", p->fd);
  int r = linkat(AT_FDCWD, proc, p->dir_fd, name, AT_SYMLINK_FOLLOW);
  /* Without /proc, AT_EMPTY_PATH does the same (it needs privileges). */
  if (r && errno == ENOENT) r = linkat(p->fd, "", p->dir_fd, name, AT_EMPTY_PATH);
  return r;
}

int wksp_private_ckpt_pub_commit(ckpt_pub_t *p) {
  const char *base = base_name(p->path);
  int rc;
  if (fchmod(p->fd, p->mode)) {
    rc = wksp_err(WKSP_ERR_FAIL, errno, "checkpt %s: fchmod %o", p->path, p->mode);
    goto fail;
  }
  if (fsync_full(p->fd)) {
    rc = wksp_err(WKSP_ERR_FAIL, errno, "checkpt %s: fsync", p->path);
    goto fail;
  }
  if (!p->overwrite) {
    if (link_as(p, base)) {
      rc = errno == EEXIST ? wksp_err(WKSP_ERR_EXIST, 0,
                                      "checkpt %s: file exists (overwrite not requested)", p->path)
                           : wksp_err(WKSP_ERR_FAIL, errno, "checkpt %s: link", p->path);
      goto fail;
    }
  } else {
    /* The O_TMPFILE file first gets a temporary name of its own (the
     * fallback file already has one), which rename moves over the target. */
    if (!p->tmp_name) {
      char *name = tmp_name(base);
      if (!name) {
        rc = wksp_err(WKSP_ERR_NOMEM, 0, "checkpt %s: temporary name", p->path);
        goto fail;
      }
      if (link_as(p, name)) {
        rc = wksp_err(WKSP_ERR_FAIL, errno, "checkpt %s: link temporary", p->path);
        free(name);
        goto fail;
      }
      p->tmp_name = name; /* from now on abort unlinks it */
    }
    if (renameat(p->dir_fd, p->tmp_name, p->dir_fd, base)) {
      rc = wksp_err(WKSP_ERR_FAIL, errno, "checkpt %s: rename", p->path);
      goto fail;
    }
    free(p->tmp_name);
    p->tmp_name = NULL; /* renamed: nothing to unlink any more */
  }
  if (p->tmp_name) { /* fallback path without overwrite: drop the temp name */
    unlinkat(p->dir_fd, p->tmp_name, 0);
    free(p->tmp_name);
    p->tmp_name = NULL;
  }
  if (fsync_full(p->dir_fd)) {
    /* The new name's durability is in doubt: keep the promise that a
     * failed checkpoint leaves nothing at the path (with overwrite the old
     * file is already replaced; the new one is left, complete). */
    rc = wksp_err(WKSP_ERR_FAIL, errno, "checkpt %s: fsync directory", p->path);
    if (!p->overwrite) unlinkat(p->dir_fd, base, 0);
    goto fail;
  }
  rc = WKSP_SUCCESS;
fail:
  wksp_private_ckpt_pub_abort(p);
  return rc;
}

void wksp_private_ckpt_pub_abort(ckpt_pub_t *p) {
  if (p->tmp_name && p->dir_fd >= 0) unlinkat(p->dir_fd, p->tmp_name, 0);
  free(p->tmp_name);
  p->tmp_name = NULL;
  if (p->fd >= 0) close(p->fd);
  if (p->dir_fd >= 0) close(p->dir_fd);
  p->fd = p->dir_fd = -1;
  free(p->path);
  p->path = NULL;
}
