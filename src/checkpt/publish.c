/* Atomic, durable publication of a new file (weakness 4 of docs/FORMAT.md 9).
 *
 * The file is written as an unnamed O_TMPFILE in the target directory, so a
 * process killed at any moment leaves nothing behind; at commit its mode is
 * set with fchmod (exact, no umask, umask untouched), it is fsynced, linked
 * at the target path with linkat (which never replaces an existing file:
 * EEXIST), and the directory is fsynced.  Overwrite of an existing file
 * links to a temporary name first and renames it over the target (atomic
 * replacement; Linux cannot link an unnamed file over a name).
 * Filesystems without O_TMPFILE get a named temporary file created O_EXCL,
 * unlinked on every failure path.
 *
 * Only a regular file (or a symlink, itself replaced) is ever replaced.  A
 * FIFO or character device at the path (or a symlink to one: /dev/stdout,
 * /dev/fd/N) is a stream target: it is opened and written like a pipe,
 * nothing is published.  Anything else is refused.
 *
 * A named temporary can outlive a SIGKILL (between the link and the
 * rename, or on the fallback).  Its writer holds an flock on it for its
 * whole life, so a later checkpoint into the directory can tell a dead
 * writer's temporary (the lock is free) from a live one's and removes it
 * (clean_stale). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/magic.h>
#include <sys/file.h>
#include <sys/statfs.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "checkpt_private.h"
#include "util/err.h"

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

/* ---- what is at the target path ------------------------------------------ */

enum {
  TGT_NONE,   /* nothing: a new file */
  TGT_FILE,   /* a regular file or a symlink: replaced (the symlink itself) with overwrite */
  TGT_STREAM, /* a FIFO or character device, or a symlink to one: written as a stream */
  TGT_OTHER,  /* a directory, socket or block device: refused */
  TGT_FD      /* a symlink naming an open descriptor (/dev/stdout to a file): refused */
};

static const char *type_name(mode_t m) {
  return S_ISDIR(m) ? "a directory" : S_ISSOCK(m) ? "a socket" : S_ISBLK(m) ? "a block device"
       : S_ISFIFO(m) ? "a FIFO" : S_ISCHR(m) ? "a character device" : "not a regular file";
}

static int is_stream(mode_t m) { return S_ISFIFO(m) || S_ISCHR(m); }

/* 1 if the symlink base names an open file descriptor: /dev/stdout and
 * the like point into /proc/<pid>/fd/, and /dev/fd/N is in it.  Replacing
 * such a symlink would replace /dev/stdout itself. */
static int fd_alias(int dir_fd, const char *base) {
  struct statfs fs;
  if (!fstatfs(dir_fd, &fs) && fs.f_type == PROC_SUPER_MAGIC) return 1;
  char to[256];
  ssize_t n = readlinkat(dir_fd, base, to, sizeof to - 1);
  if (n <= 0) return 0;
  to[n] = 0;
  return !strncmp(to, "/proc/", 6) && strstr(to, "/fd/");
}

/* Classifies base in dir_fd; *m gets the type of what is there (for a
 * symlink to a stream or an fd alias: of what it leads to). */
static int target_kind(int dir_fd, const char *base, const char *path, int *kind, mode_t *m) {
  struct stat st;
  *m = 0;
  if (fstatat(dir_fd, base, &st, AT_SYMLINK_NOFOLLOW)) {
    *kind = TGT_NONE;
    return errno == ENOENT ? WKSP_SUCCESS : wksp_err(WKSP_ERR_FAIL, errno, "checkpt %s: stat", path);
  }
  *m = st.st_mode;
  if (S_ISLNK(st.st_mode)) {
    /* Followed only to see whether it names a stream (/dev/stdout,
     * /dev/fd/N are symlinks); any other symlink is replaced, not followed. */
    struct stat to;
    int followed = !fstatat(dir_fd, base, &to, 0);
    *kind = followed && is_stream(to.st_mode) ? TGT_STREAM : followed && fd_alias(dir_fd, base) ? TGT_FD : TGT_FILE;
    if (*kind != TGT_FILE) *m = to.st_mode;
  } else {
    *kind = S_ISREG(st.st_mode) ? TGT_FILE : is_stream(st.st_mode) ? TGT_STREAM : TGT_OTHER;
  }
  return WKSP_SUCCESS;
}

/* INVAL for what a checkpoint never replaces (is: found up front, else at
 * the rename: it appeared meanwhile). */
static int refuse_type(const char *path, mode_t m, int is) {
  return wksp_err(WKSP_ERR_INVAL, 0, "checkpt %s: %s %s, not a regular file; nothing written", path,
                  is ? "is" : "became", type_name(m));
}

/* ---- stream targets ------------------------------------------------------ */

/* Opens a FIFO or character device for writing, as a shell redirection
 * would but never creating or truncating anything. */
static int stream_open(checkpt_pub_t *p, const char *base) {
  int fd;
  /* Non-blocking first, so that a terminal or modem line cannot block the
   * open; a FIFO without a reader says ENXIO and is then opened blocking:
   * it waits for its reader (documented). */
  while ((fd = openat(p->dir_fd, base, O_WRONLY | O_NOCTTY | O_CLOEXEC | O_NONBLOCK)) < 0 && errno == EINTR) {}
  if (fd < 0 && errno == ENXIO)
    while ((fd = openat(p->dir_fd, base, O_WRONLY | O_NOCTTY | O_CLOEXEC)) < 0 && errno == EINTR) {}
  if (fd < 0) return wksp_err(WKSP_ERR_FAIL, errno, "checkpt %s: open for writing", p->path);
  p->fd = fd; /* closed by abort from now on */
  struct stat st;
  if (fstat(fd, &st)) return wksp_err(WKSP_ERR_FAIL, errno, "checkpt %s: fstat", p->path);
  /* The path was a stream when looked at; it must still be one now. */
  if (!is_stream(st.st_mode))
    return wksp_err(WKSP_ERR_FAIL, 0, "checkpt %s: changed while it was opened (now %s); nothing written",
                    p->path, type_name(st.st_mode));
  if (isatty(fd))
    return wksp_err(WKSP_ERR_INVAL, 0, "checkpt %s: a terminal: refusing to write a checkpoint (binary) to it",
                    p->path);
  int fl = fcntl(fd, F_GETFL);
  if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK))
    return wksp_err(WKSP_ERR_FAIL, errno, "checkpt %s: fcntl", p->path);
  p->stream = 1;
  return WKSP_SUCCESS;
}

/* ---- temporaries ------------------------------------------------------------ */

#define TMP_TAG ".wksp-tmp."

/* A fresh temporary name beside the target: ".<base>.wksp-tmp.<pid>.<hex>". */
static char *tmp_name(const char *base) {
  static unsigned long counter;
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  unsigned long n = __atomic_add_fetch(&counter, 1, __ATOMIC_RELAXED) ^ (unsigned long)ts.tv_nsec;
  char *s = NULL;
  if (asprintf(&s, ".%s" TMP_TAG "%ld.%lx", base, (long)getpid(), n) < 0) return NULL;
  return s;
}

/* Counts the characters of s[0..n) from its end that satisfy ok, up to max. */
static size_t tail_run(const char *s, size_t n, int (*ok)(int), size_t max) {
  size_t k = 0;
  while (k < n && k < max && ok((unsigned char)s[n - 1 - k])) k++;
  return k;
}

static int is_digit(int c) { return c >= '0' && c <= '9'; }
static int is_lhex(int c) { return is_digit(c) || (c >= 'a' && c <= 'f'); }

/* 1 if name is exactly what tmp_name makes (for some non-empty base), with
 * the writer's pid in *pid. */
static int tmp_name_parse(const char *name, long *pid) {
  size_t n = strlen(name), tag = sizeof TMP_TAG - 1;
  size_t h = tail_run(name, n, is_lhex, 17);
  if (!h || h > 16 || h >= n || name[n - h - 1] != '.') return 0;
  n -= h + 1;
  size_t d = tail_run(name, n, is_digit, 11);
  if (!d || d > 10 || name[n - d] == '0') return 0;
  n -= d;
  /* "." base TMP_TAG, base not empty */
  if (n < tag + 2 || name[0] != '.' || memcmp(name + n - tag, TMP_TAG, tag)) return 0;
  *pid = strtol(name + n, NULL, 10);
  return 1;
}

/* Removes the temporary `name` if its writer is gone: it is a regular file
 * (never following a symlink, never opening anything else) whose lock is
 * free.  Returns 1 if it was removed. */
static int clean_one(int dir_fd, const char *name) {
  struct stat a, b;
  if (fstatat(dir_fd, name, &a, AT_SYMLINK_NOFOLLOW) || !S_ISREG(a.st_mode)) return 0;
  int fd = openat(dir_fd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
  if (fd < 0) return 0;
  int gone = 0;
  if (!fstat(fd, &b) && S_ISREG(b.st_mode) && b.st_dev == a.st_dev && b.st_ino == a.st_ino &&
      !flock(fd, LOCK_EX | LOCK_NB) && !fstatat(dir_fd, name, &a, AT_SYMLINK_NOFOLLOW) &&
      a.st_dev == b.st_dev && a.st_ino == b.st_ino)
    gone = !unlinkat(dir_fd, name, 0);
  close(fd);
  return gone;
}

enum { CLEAN_MAX = 32, CLEAN_SCAN_MAX = 1 << 20 };

/* Best effort, bounded: removes up to CLEAN_MAX temporaries of dead
 * writers among the first CLEAN_SCAN_MAX entries of the directory.  A
 * temporary carrying this process's pid is left alone (a live writer here
 * is this process; where flock is emulated by process-wide locks, as on
 * NFS, our own lock would not keep us out). */
static void clean_stale(int dir_fd) {
  int fd = fcntl(dir_fd, F_DUPFD_CLOEXEC, 0);
  DIR *d = fd < 0 ? NULL : fdopendir(fd);
  if (!d) {
    if (fd >= 0) close(fd);
    return;
  }
  long me = (long)getpid(), pid;
  struct dirent *e;
  unsigned scanned = 0, removed = 0;
  while (scanned++ < CLEAN_SCAN_MAX && removed < CLEAN_MAX && (e = readdir(d)))
    if ((e->d_type == DT_REG || e->d_type == DT_UNKNOWN) && tmp_name_parse(e->d_name, &pid) && pid != me)
      removed += (unsigned)clean_one(dir_fd, e->d_name);
  closedir(d);
}

/* Takes the lock that tells cleaners this temporary's writer is alive.  A
 * filesystem without working flock gets no lock (its cleaners cannot lock
 * either, so they remove nothing); EWOULDBLOCK: a cleaner holds it. */
static int tmp_lock(int fd) {
  int r;
  while ((r = flock(fd, LOCK_EX | LOCK_NB)) && errno == EINTR) {}
  return r && errno == EWOULDBLOCK ? -1 : 0;
}

/* Without O_TMPFILE: a named temporary, created O_EXCL and locked.  A
 * cleaner may take the lock in the moment between the two; the name is then
 * checked to still be ours, else another is made. */
static int named_tmp_open(checkpt_pub_t *p, const char *base) {
  for (int tries = 0; tries < 4; tries++) {
    p->tmp_name = tmp_name(base);
    if (!p->tmp_name) return wksp_err(WKSP_ERR_NOMEM, 0, "checkpt %s: temporary name", p->path);
    p->fd = openat(p->dir_fd, p->tmp_name, O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC, 0600);
    if (p->fd < 0) {
      int e = errno;
      free(p->tmp_name);
      p->tmp_name = NULL;
      return wksp_err(WKSP_ERR_FAIL, e, "checkpt %s: create temporary file", p->path);
    }
    struct stat a, b;
    int ours = !fstat(p->fd, &a) && !fstatat(p->dir_fd, p->tmp_name, &b, AT_SYMLINK_NOFOLLOW) &&
               a.st_dev == b.st_dev && a.st_ino == b.st_ino;
    int locked = ours && !tmp_lock(p->fd);
    if (locked && (ours = !fstatat(p->dir_fd, p->tmp_name, &b, AT_SYMLINK_NOFOLLOW) && a.st_dev == b.st_dev &&
                          a.st_ino == b.st_ino))
      return WKSP_SUCCESS;
    if (ours) unlinkat(p->dir_fd, p->tmp_name, 0); /* a cleaner has it: it was going to */
    free(p->tmp_name);
    p->tmp_name = NULL;
    close(p->fd);
    p->fd = -1;
  }
  return wksp_err(WKSP_ERR_FAIL, 0, "checkpt %s: create temporary file: removed by another process each time",
                  p->path);
}

static int tmp_open(checkpt_pub_t *p, const char *base) {
  p->fd = checkpt_hook(CHECKPT_HOOK_TMPFILE, NULL) ? (errno = EOPNOTSUPP, -1)
                                            : openat(p->dir_fd, ".", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
  if (p->fd >= 0) {
    tmp_lock(p->fd); /* nobody else can have it yet: it has no name */
    return WKSP_SUCCESS;
  }
  if (errno == EOPNOTSUPP || errno == EISDIR || errno == EINVAL) return named_tmp_open(p, base);
  return wksp_err(WKSP_ERR_FAIL, errno, "checkpt %s: create temporary file", p->path);
}

/* ---- open, commit, abort ------------------------------------------------- */

int wksp_private_checkpt_pub_open(checkpt_pub_t *p, const char *path, const wksp_checkpt_opts_t *o) {
  memset(p, 0, sizeof *p);
  p->fd = p->dir_fd = -1;
  p->mode = o->mode ? o->mode : 0600;
  p->overwrite = o->overwrite;
  const char *base = base_name(path);
  if (!*base || !strcmp(base, ".") || !strcmp(base, ".."))
    return wksp_err(WKSP_ERR_INVAL, 0, "checkpt %s: not a file path", path);
  p->path = strdup(path);
  if (!p->path) return wksp_err(WKSP_ERR_NOMEM, 0, "checkpt %s: path copy", path);
  int rc = dir_open(path, &p->dir_fd);
  if (rc) goto fail;
  /* Early check, so that a big checkpoint is not written for nothing; the
   * link or rename at commit checks again. */
  int kind;
  mode_t m;
  rc = target_kind(p->dir_fd, base, path, &kind, &m);
  if (rc) goto fail;
  if (kind == TGT_OTHER) {
    rc = refuse_type(path, m, 1);
  } else if (kind == TGT_FD) {
    rc = wksp_err(WKSP_ERR_INVAL, 0,
                  "checkpt %s: names an open file descriptor (now %s), which is never replaced; write to "
                  "the descriptor itself (standard output: -) or name the file's own path",
                  path, S_ISREG(m) ? "a regular file" : type_name(m));
  } else if (kind == TGT_STREAM) {
    rc = o->verify ? wksp_err(WKSP_ERR_INVAL, 0,
                              "checkpt %s: %s is written as a stream and cannot be read back: verify needs a "
                              "regular file",
                              path, type_name(m))
                   : stream_open(p, base);
  } else if (kind == TGT_FILE && !p->overwrite) {
    rc = wksp_err(WKSP_ERR_EXIST, 0, "checkpt %s: file exists (overwrite not requested)", path);
  } else {
    rc = tmp_open(p, base);
    if (!rc) clean_stale(p->dir_fd);
  }
  if (rc) goto fail;
  return WKSP_SUCCESS;
fail:
  wksp_private_checkpt_pub_abort(p);
  return rc;
}

/* Gives the written file a name in the directory (the final one, or a
 * temporary one for overwrite). */
static int link_as(checkpt_pub_t *p, const char *name) {
  if (p->tmp_name) return linkat(p->dir_fd, p->tmp_name, p->dir_fd, name, 0);
  char proc[64];
  snprintf(proc, sizeof proc, "/proc/self/fd/%d", p->fd);
  int r = linkat(AT_FDCWD, proc, p->dir_fd, name, AT_SYMLINK_FOLLOW);
  /* Without /proc, AT_EMPTY_PATH does the same (it needs privileges). */
  if (r && errno == ENOENT) r = linkat(p->fd, "", p->dir_fd, name, AT_EMPTY_PATH);
  return r;
}

/* Overwrite: the file (already under its temporary name) replaces what is
 * at the path, which must still be a regular file or a symlink. */
static int rename_over(checkpt_pub_t *p, const char *base) {
  checkpt_hook(CHECKPT_HOOK_RENAME, &(checkpt_hook_t){.path = p->path, .name = p->tmp_name});
  /* Again, just before the rename: something else may have appeared at
   * the path since the first check (left: the moment between this check
   * and the rename). */
  struct stat st;
  if (fstatat(p->dir_fd, base, &st, AT_SYMLINK_NOFOLLOW)) {
    if (errno != ENOENT) return wksp_err(WKSP_ERR_FAIL, errno, "checkpt %s: stat", p->path);
  } else if (!S_ISREG(st.st_mode) && !S_ISLNK(st.st_mode)) {
    return refuse_type(p->path, st.st_mode, 0);
  }
  if (renameat(p->dir_fd, p->tmp_name, p->dir_fd, base)) {
    st.st_mode = S_IFDIR; /* EISDIR: a directory that appeared after the check */
    return errno == EISDIR ? refuse_type(p->path, st.st_mode, 0)
                           : wksp_err(WKSP_ERR_FAIL, errno, "checkpt %s: rename", p->path);
  }
  free(p->tmp_name);
  p->tmp_name = NULL; /* renamed: nothing to unlink any more */
  return WKSP_SUCCESS;
}

int wksp_private_checkpt_pub_commit(checkpt_pub_t *p) {
  const char *base = base_name(p->path);
  int rc = WKSP_SUCCESS, replaced = 0;
  if (fchmod(p->fd, p->mode)) {
    rc = wksp_err(WKSP_ERR_FAIL, errno, "checkpt %s: fchmod %o", p->path, p->mode);
    goto fail;
  }
  if (fsync_full(p->fd)) {
    rc = wksp_err(WKSP_ERR_FAIL, errno, "checkpt %s: fsync", p->path);
    goto fail;
  }
  if (p->overwrite && p->tmp_name) {
    rc = rename_over(p, base); /* the fallback's file has its temporary name already */
    replaced = 1;
  } else if (!link_as(p, base)) {
    /* Published without a temporary name (also with overwrite when the
     * path is free): nothing to rename, nothing a kill can leave. */
  } else if (errno != EEXIST) {
    rc = wksp_err(WKSP_ERR_FAIL, errno, "checkpt %s: link", p->path);
  } else if (!p->overwrite) {
    rc = wksp_err(WKSP_ERR_EXIST, 0, "checkpt %s: file exists (overwrite not requested)", p->path);
  } else {
    /* The O_TMPFILE file gets a temporary name of its own, which rename
     * moves over the target. */
    char *name = tmp_name(base);
    if (!name) {
      rc = wksp_err(WKSP_ERR_NOMEM, 0, "checkpt %s: temporary name", p->path);
    } else if (link_as(p, name)) {
      rc = wksp_err(WKSP_ERR_FAIL, errno, "checkpt %s: link temporary", p->path);
      free(name);
    } else {
      p->tmp_name = name; /* from now on abort unlinks it */
      rc = rename_over(p, base);
      replaced = 1;
    }
  }
  if (rc) goto fail;
  if (p->tmp_name) { /* fallback path linked at the target: drop the temp name */
    unlinkat(p->dir_fd, p->tmp_name, 0);
    free(p->tmp_name);
    p->tmp_name = NULL;
  }
  if (fsync_full(p->dir_fd)) {
    /* The new name's durability is in doubt: keep the promise that a
     * failed checkpoint leaves nothing new at the path (a replaced old
     * file is gone already; the new one is left, complete). */
    rc = wksp_err(WKSP_ERR_FAIL, errno, "checkpt %s: fsync directory", p->path);
    if (!replaced) unlinkat(p->dir_fd, base, 0);
    goto fail;
  }
fail:
  wksp_private_checkpt_pub_abort(p);
  return rc;
}

void wksp_private_checkpt_pub_abort(checkpt_pub_t *p) {
  if (p->tmp_name && p->dir_fd >= 0) unlinkat(p->dir_fd, p->tmp_name, 0);
  free(p->tmp_name);
  p->tmp_name = NULL;
  if (p->fd >= 0) close(p->fd);
  if (p->dir_fd >= 0) close(p->dir_fd);
  p->fd = p->dir_fd = -1;
  free(p->path);
  p->path = NULL;
}
