/* Taking the workspace lock for checkpt and restore: a wait is
 * reported to the caller's lock_wait callback, and a restore reading a pipe
 * gives up the one wait that can never end.  The writer of a checkpoint
 * locks the workspace before its first byte, so a restore of the same
 * workspace from that pipe has the header (it reads it before locking) just
 * when the writer holds the lock; the restore then reads nothing more until
 * it has the lock, the pipe fills, and the writer, blocked on the pipe,
 * never releases it.  Seen from the restore: the lock's holder is a process
 * that has the write end of the input pipe open, and the pipe is full.
 * Best effort: it needs /proc (the holder's fds), so without it, or for a
 * chain of pipes, the wait is only reported. */
#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "checkpt_private.h"
#include "util/err.h"
#include "../wksp/wksp_private.h"

/* A writer that has just written its last byte (filling the pipe exactly)
 * releases the lock at once: so the state must last this long. */
#define SELF_FEED_CONFIRM_NS 250000000ull

typedef struct {
  int fd;
  int64_t pid;    /* suspected holder, 0 = none */
  uint64_t since; /* when it was first seen (ns into the wait) */
} feed_t;

/* The pipe cannot take another page: a writer is blocked on it (or will
 * be).  Its last two pages may be partly used (the one we read the header
 * from, the one a write ended in). */
static int pipe_full(int fd) {
  int n = 0, cap = fcntl(fd, F_GETPIPE_SZ);
  long page = sysconf(_SC_PAGESIZE);
  if (cap <= 0 || page <= 0 || ioctl(fd, FIONREAD, &n) || n <= 0) return 0;
  return (long)n + 2 * page > (long)cap;
}

/* The entry `name` of /proc/<pid>/fdinfo (info: that directory) says the
 * fd is open for writing. */
static int fd_writable(int info, const char *name) {
  int fd = openat(info, name, O_RDONLY | O_CLOEXEC);
  FILE *f = fd >= 0 ? fdopen(fd, "r") : NULL;
  if (!f) {
    if (fd >= 0) close(fd);
    return 0;
  }
  char line[128];
  unsigned flags = 0;
  int found = 0;
  while (!found && fgets(line, sizeof line, f)) found = sscanf(line, "flags: %o", &flags) == 1;
  fclose(f);
  return found && (flags & O_ACCMODE) != O_RDONLY;
}

/* Process pid has the pipe (or FIFO) that fd reads from open for writing. */
static int writes_pipe(int64_t pid, int fd) {
  struct stat me, st;
  if (fstat(fd, &me) || !S_ISFIFO(me.st_mode)) return 0;
  char path[64];
  snprintf(path, sizeof path, "/proc/%" PRId64 "/fdinfo", pid);
  int info = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  snprintf(path, sizeof path, "/proc/%" PRId64 "/fd", pid);
  DIR *d = info >= 0 ? opendir(path) : NULL;
  int found = 0;
  struct dirent *e;
  while (d && !found && (e = readdir(d)))
    found = e->d_name[0] != '.' && !fstatat(dirfd(d), e->d_name, &st, 0) &&
            st.st_dev == me.st_dev && st.st_ino == me.st_ino && fd_writable(info, e->d_name);
  if (d) closedir(d);
  if (info >= 0) close(info);
  return found;
}

/* While the holder writes our pipe the wait is not reported: it either
 * ends soon (the writer finishes and releases the lock) or is given up. */
static int feed_check(const wksp_t *w, int64_t pid, uint64_t waited_ns, void *ctx) {
  feed_t *f = ctx;
  int full = pid > 0 && pipe_full(f->fd);
  if (pid <= 0 || !writes_pipe(pid, f->fd)) {
    f->pid = 0;
    return 0;
  }
  if (!full) {
    f->pid = 0;
    return 1;
  }
  if (f->pid != pid) {
    f->pid = pid;
    f->since = waited_ns;
  }
  if (waited_ns - f->since < SELF_FEED_CONFIRM_NS) return 1;
  return wksp_err(WKSP_ERR_DEADLK, 0,
                  "workspace \"%.39s\" is locked by process %" PRId64 ", which writes this restore's "
                  "input pipe and is blocked on it (the pipe is full and the restore reads on "
                  "only once it has the lock): a workspace cannot be restored from a pipe fed "
                  "by a checkpoint of itself; write the checkpoint to a file first",
                  wksp_name(w), pid);
}

int wksp_private_checkpt_lock(wksp_t *w, wksp_lock_wait_fn_t fn, void *ctx, int feed_fd,
                           const char *verb, const char *label) {
  feed_t f = {.fd = feed_fd};
  wksp_private_waiter_t wt = {.notify = fn, .notify_ctx = ctx};
  if (feed_fd >= 0) {
    wt.check = feed_check;
    wt.check_ctx = &f;
  }
  int rc = wksp_private_lock_wait(w, fn || feed_fd >= 0 ? &wt : NULL);
  return rc ? wksp_err_wrap(rc, "%s %s: lock", verb, label) : WKSP_SUCCESS;
}
