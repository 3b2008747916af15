/* libfaultshim.so: fault injection into libc I/O calls through LD_PRELOAD.
 * The contract (call names, fault kinds, environment variables) is in
 * faultshim.h.  Built without sanitizers; it forwards to the next
 * definition (a sanitizer's interceptor, then libc) found with RTLD_NEXT.
 *
 * Why an interposer and not hooks in the library: the code under test stays
 * exactly the production code, and the same shim drives the CLI binary. */
#include "../lib/faultshim.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

/* Exported control functions (looked up with dlsym by the tests). */
void faultshim_arm(const char *calls, long nth, int kind, int err, int sticky);
long faultshim_disarm(void);
const char *faultshim_call_name(long k);
long faultshim_fired(void);
void faultshim_no_tmpfile(int on);

enum {
  C_WRITE, C_WRITEV, C_PWRITE, C_PWRITEV, C_FSYNC, C_FDATASYNC, C_FCHMOD, C_FTRUNCATE,
  C_LINK, C_LINKAT, C_RENAME, C_RENAMEAT, C_RENAMEAT2, C_UNLINK, C_UNLINKAT,
  C_OPEN, C_OPENAT, C_READ, C_READV, C_PREAD, C_MMAP, C_SENDFILE, C_CNT
};

static const char *const call_names[C_CNT] = {
    "write", "writev", "pwrite", "pwritev", "fsync", "fdatasync", "fchmod", "ftruncate",
    "link", "linkat", "rename", "renameat", "renameat2", "unlink", "unlinkat",
    "open", "openat", "read", "readv", "pread", "mmap", "sendfile"};

enum { TRACE_MAX = 4096 };

static struct {
  atomic_int armed;
  atomic_ulong mask; /* bit per call id */
  atomic_long nth;
  atomic_int kind, err, sticky;
  atomic_long count, fired;
  atomic_int no_tmpfile; /* O_TMPFILE opens fail with EOPNOTSUPP, uncounted */
  unsigned char trace[TRACE_MAX];
  char report[4096];
} S;

/* The next definition of `name` (dlsym is thread-safe; a lost race only
 * looks it up twice). */
static void *next_fn(void **cache, const char *name) {
  void *f = __atomic_load_n(cache, __ATOMIC_ACQUIRE);
  if (!f) {
    f = dlsym(RTLD_NEXT, name);
    if (!f) abort(); /* the process cannot do I/O without it */
    __atomic_store_n(cache, f, __ATOMIC_RELEASE);
  }
  return f;
}

/* Descriptors opened on /proc/...: not counted (faultshim.h says why). */
enum { PROC_FD_MAX = 4096 };
static atomic_uchar proc_fd[PROC_FD_MAX];

static int is_proc_path(const char *path) { return path && !strncmp(path, "/proc/", 6); }

static int proc_opened(int fd) {
  if (fd >= 0 && fd < PROC_FD_MAX) atomic_store(&proc_fd[fd], 1);
  return fd;
}

static int is_proc_fd(int fd) { return fd >= 0 && fd < PROC_FD_MAX && atomic_load(&proc_fd[fd]); }

/* Counts the call if armed and listed; returns 1 if it must fail. */
static int should_fail(int id) {
  if (!atomic_load(&S.armed) || !(atomic_load(&S.mask) >> id & 1)) return 0;
  long k = atomic_fetch_add(&S.count, 1) + 1;
  if (k <= TRACE_MAX) S.trace[k - 1] = (unsigned char)id;
  long nth = atomic_load(&S.nth);
  if (!nth || k < nth || (k > nth && !atomic_load(&S.sticky))) return 0;
  atomic_fetch_add(&S.fired, 1);
  return 1;
}

static unsigned long parse_calls(const char *calls) {
  if (!calls || !*calls) return (1ul << C_CNT) - 1;
  unsigned long m = 0;
  for (int i = 0; i < C_CNT; i++) {
    size_t n = strlen(call_names[i]);
    for (const char *p = calls; (p = strstr(p, call_names[i])); p += n)
      if ((p == calls || p[-1] == ',') && (p[n] == ',' || !p[n])) m |= 1ul << i;
  }
  return m;
}

void faultshim_arm(const char *calls, long nth, int kind, int err, int sticky) {
  atomic_store(&S.armed, 0);
  atomic_store(&S.mask, parse_calls(calls));
  atomic_store(&S.nth, nth);
  atomic_store(&S.kind, kind);
  atomic_store(&S.err, err ? err : EIO);
  atomic_store(&S.sticky, sticky);
  atomic_store(&S.count, 0);
  atomic_store(&S.fired, 0);
  atomic_store(&S.armed, 1);
}

long faultshim_disarm(void) {
  atomic_store(&S.armed, 0);
  return atomic_load(&S.count);
}

const char *faultshim_call_name(long k) {
  return k >= 1 && k <= atomic_load(&S.count) && k <= TRACE_MAX ? call_names[S.trace[k - 1]] : NULL;
}

long faultshim_fired(void) { return atomic_load(&S.fired); }

void faultshim_no_tmpfile(int on) { atomic_store(&S.no_tmpfile, on); }

static int errno_by_name(const char *s) {
  static const struct {
    const char *name;
    int err;
  } t[] = {{"ENOSPC", ENOSPC}, {"EIO", EIO},       {"EINTR", EINTR},   {"EDQUOT", EDQUOT},
           {"EPERM", EPERM},   {"ENOMEM", ENOMEM}, {"EAGAIN", EAGAIN}, {"EROFS", EROFS}};
  for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
    if (!strcmp(s, t[i].name)) return t[i].err;
  return atoi(s);
}

__attribute__((constructor)) static void shim_init(void) {
  const char *nth = getenv("FAULTSHIM_NTH"), *rep = getenv("FAULTSHIM_REPORT");
  const char *nt = getenv("FAULTSHIM_NO_TMPFILE");
  faultshim_no_tmpfile(nt && *nt == '1');
  if (rep) snprintf(S.report, sizeof S.report, "%s", rep);
  if (!nth && !rep) return;
  const char *e = getenv("FAULTSHIM_ERRNO"), *sh = getenv("FAULTSHIM_SHORT"), *st = getenv("FAULTSHIM_STICKY");
  faultshim_arm(getenv("FAULTSHIM_CALLS"), nth ? atol(nth) : 0,
                sh && *sh == '1' ? FAULTSHIM_SHORT : FAULTSHIM_ERRNO, e ? errno_by_name(e) : EIO,
                st && *st == '1');
}

__attribute__((destructor)) static void shim_report(void) {
  if (!S.report[0]) return;
  int was = atomic_exchange(&S.armed, 0);
  FILE *f = fopen(S.report, "a");
  if (f) {
    long n = atomic_load(&S.count);
    for (long k = 1; k <= n && k <= TRACE_MAX; k++) fprintf(f, "%s\n", call_names[S.trace[k - 1]]);
    fclose(f);
  }
  atomic_store(&S.armed, was);
}

/* ---- the fault itself ------------------------------------------------------ */

static int fail_errno(void) {
  errno = atomic_load(&S.err);
  return -1;
}

/* Bytes a short transfer moves instead of n, or 0 if the fault must be an
 * errno one. */
static size_t short_len(size_t n) {
  return atomic_load(&S.kind) == FAULTSHIM_SHORT && n > 1 ? n / 2 : 0;
}

/* iov shortened to half its total length into out (iovcnt <= IOV_MAX). */
static int iov_half(const struct iovec *iov, int iovcnt, struct iovec *out, size_t *half) {
  size_t total = 0;
  for (int i = 0; i < iovcnt; i++) total += iov[i].iov_len;
  size_t keep = short_len(total);
  *half = keep;
  int n = 0;
  for (int i = 0; i < iovcnt && keep; i++) {
    out[n] = iov[i];
    if (out[n].iov_len > keep) out[n].iov_len = keep;
    keep -= out[n].iov_len;
    n++;
  }
  return n;
}

/* ---- wrappers -------------------------------------------------------------- */

#define NEXT(type, name) ((type)next_fn(&next_##name, #name))
static void *next_write, *next_writev, *next_pwrite, *next_pwrite64, *next_pwritev, *next_pwritev64,
    *next_fsync, *next_fdatasync, *next_fchmod, *next_ftruncate, *next_ftruncate64, *next_link,
    *next_linkat, *next_rename, *next_renameat, *next_renameat2, *next_unlink, *next_unlinkat,
    *next_open, *next_open64, *next_openat, *next_openat64, *next_read, *next_readv, *next_pread, *next_close,
    *next_pread64, *next_mmap, *next_mmap64, *next_sendfile, *next_sendfile64;

typedef ssize_t (*write_fn)(int, const void *, size_t);
typedef ssize_t (*iov_fn)(int, const struct iovec *, int);
typedef ssize_t (*pwrite_fn)(int, const void *, size_t, off_t);
typedef ssize_t (*piov_fn)(int, const struct iovec *, int, off_t);
typedef ssize_t (*read_fn)(int, void *, size_t);
typedef ssize_t (*pread_fn)(int, void *, size_t, off_t);
typedef int (*fd_fn)(int);
typedef int (*fchmod_fn)(int, mode_t);
typedef int (*ftruncate_fn)(int, off_t);
typedef int (*path2_fn)(const char *, const char *);
typedef int (*linkat_fn)(int, const char *, int, const char *, int);
typedef int (*renameat_fn)(int, const char *, int, const char *);
typedef int (*renameat2_fn)(int, const char *, int, const char *, unsigned);
typedef int (*path_fn)(const char *);
typedef int (*unlinkat_fn)(int, const char *, int);
typedef int (*open_fn)(const char *, int, ...);
typedef int (*openat_fn)(int, const char *, int, ...);
typedef void *(*mmap_fn)(void *, size_t, int, int, int, off_t);
typedef ssize_t (*sendfile_fn)(int, int, off_t *, size_t);

static ssize_t do_write(write_fn f, int fd, const void *buf, size_t n) {
  if (fd == 2 || !should_fail(C_WRITE)) return f(fd, buf, n);
  size_t k = short_len(n);
  return k ? f(fd, buf, k) : fail_errno();
}
ssize_t write(int fd, const void *buf, size_t n) { return do_write(NEXT(write_fn, write), fd, buf, n); }

static ssize_t do_writev(iov_fn f, int id, int fd, const struct iovec *iov, int iovcnt) {
  if (fd == 2 || iovcnt < 0 || iovcnt > 1024 || !should_fail(id)) return f(fd, iov, iovcnt);
  struct iovec h[1024];
  size_t half;
  int n = iov_half(iov, iovcnt, h, &half);
  return half ? f(fd, h, n) : fail_errno();
}
ssize_t writev(int fd, const struct iovec *iov, int iovcnt) {
  return do_writev(NEXT(iov_fn, writev), C_WRITEV, fd, iov, iovcnt);
}
ssize_t readv(int fd, const struct iovec *iov, int iovcnt) {
  return do_writev(NEXT(iov_fn, readv), C_READV, fd, iov, iovcnt);
}

static ssize_t do_pwrite(pwrite_fn f, int fd, const void *buf, size_t n, off_t off) {
  if (!should_fail(C_PWRITE)) return f(fd, buf, n, off);
  size_t k = short_len(n);
  return k ? f(fd, buf, k, off) : fail_errno();
}
ssize_t pwrite(int fd, const void *buf, size_t n, off_t off) {
  return do_pwrite(NEXT(pwrite_fn, pwrite), fd, buf, n, off);
}
ssize_t pwrite64(int fd, const void *buf, size_t n, off_t off) {
  return do_pwrite(NEXT(pwrite_fn, pwrite64), fd, buf, n, off);
}

static ssize_t do_pwritev(piov_fn f, int fd, const struct iovec *iov, int iovcnt, off_t off) {
  if (iovcnt < 0 || iovcnt > 1024 || !should_fail(C_PWRITEV)) return f(fd, iov, iovcnt, off);
  struct iovec h[1024];
  size_t half;
  int n = iov_half(iov, iovcnt, h, &half);
  return half ? f(fd, h, n, off) : fail_errno();
}
ssize_t pwritev(int fd, const struct iovec *iov, int iovcnt, off_t off) {
  return do_pwritev(NEXT(piov_fn, pwritev), fd, iov, iovcnt, off);
}
ssize_t pwritev64(int fd, const struct iovec *iov, int iovcnt, off_t off) {
  return do_pwritev(NEXT(piov_fn, pwritev64), fd, iov, iovcnt, off);
}

ssize_t read(int fd, void *buf, size_t n) {
  read_fn f = NEXT(read_fn, read);
  if (is_proc_fd(fd) || !should_fail(C_READ)) return f(fd, buf, n);
  size_t k = short_len(n);
  return k ? f(fd, buf, k) : fail_errno();
}

static ssize_t do_pread(pread_fn f, int fd, void *buf, size_t n, off_t off) {
  if (is_proc_fd(fd) || !should_fail(C_PREAD)) return f(fd, buf, n, off);
  size_t k = short_len(n);
  return k ? f(fd, buf, k, off) : fail_errno();
}
ssize_t pread(int fd, void *buf, size_t n, off_t off) { return do_pread(NEXT(pread_fn, pread), fd, buf, n, off); }
ssize_t pread64(int fd, void *buf, size_t n, off_t off) {
  return do_pread(NEXT(pread_fn, pread64), fd, buf, n, off);
}

static ssize_t do_sendfile(sendfile_fn f, int out, int in, off_t *off, size_t n) {
  if (!should_fail(C_SENDFILE)) return f(out, in, off, n);
  size_t k = short_len(n);
  return k ? f(out, in, off, k) : fail_errno();
}
ssize_t sendfile(int out, int in, off_t *off, size_t n) {
  return do_sendfile(NEXT(sendfile_fn, sendfile), out, in, off, n);
}
ssize_t sendfile64(int out, int in, off_t *off, size_t n) {
  return do_sendfile(NEXT(sendfile_fn, sendfile64), out, in, off, n);
}

typedef int (*close_fn)(int);
int close(int fd) {
  if (fd >= 0 && fd < PROC_FD_MAX) atomic_store(&proc_fd[fd], 0);
  return NEXT(close_fn, close)(fd);
}

int fsync(int fd) { return should_fail(C_FSYNC) ? fail_errno() : NEXT(fd_fn, fsync)(fd); }
int fdatasync(int fd) { return should_fail(C_FDATASYNC) ? fail_errno() : NEXT(fd_fn, fdatasync)(fd); }
int fchmod(int fd, mode_t m) { return should_fail(C_FCHMOD) ? fail_errno() : NEXT(fchmod_fn, fchmod)(fd, m); }
int ftruncate(int fd, off_t len) {
  return should_fail(C_FTRUNCATE) ? fail_errno() : NEXT(ftruncate_fn, ftruncate)(fd, len);
}
int ftruncate64(int fd, off_t len) {
  return should_fail(C_FTRUNCATE) ? fail_errno() : NEXT(ftruncate_fn, ftruncate64)(fd, len);
}
int link(const char *a, const char *b) { return should_fail(C_LINK) ? fail_errno() : NEXT(path2_fn, link)(a, b); }
int linkat(int da, const char *a, int db, const char *b, int fl) {
  return should_fail(C_LINKAT) ? fail_errno() : NEXT(linkat_fn, linkat)(da, a, db, b, fl);
}
int rename(const char *a, const char *b) {
  return should_fail(C_RENAME) ? fail_errno() : NEXT(path2_fn, rename)(a, b);
}
int renameat(int da, const char *a, int db, const char *b) {
  return should_fail(C_RENAMEAT) ? fail_errno() : NEXT(renameat_fn, renameat)(da, a, db, b);
}
int renameat2(int da, const char *a, int db, const char *b, unsigned fl) {
  return should_fail(C_RENAMEAT2) ? fail_errno() : NEXT(renameat2_fn, renameat2)(da, a, db, b, fl);
}
int unlink(const char *a) { return should_fail(C_UNLINK) ? fail_errno() : NEXT(path_fn, unlink)(a); }
int unlinkat(int d, const char *a, int fl) {
  return should_fail(C_UNLINKAT) ? fail_errno() : NEXT(unlinkat_fn, unlinkat)(d, a, fl);
}

/* A filesystem without O_TMPFILE, when asked for. */
static int no_tmpfile(int flags) {
  if ((flags & O_TMPFILE) != O_TMPFILE || !atomic_load(&S.no_tmpfile)) return 0;
  errno = EOPNOTSUPP;
  return 1;
}

/* The mode argument exists only with O_CREAT or O_TMPFILE. */
static mode_t open_mode(int flags, va_list ap) {
  return (flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE ? (mode_t)va_arg(ap, int) : 0;
}

int open(const char *path, int flags, ...) {
  va_list ap;
  va_start(ap, flags);
  mode_t m = open_mode(flags, ap);
  va_end(ap);
  if (no_tmpfile(flags)) return -1;
  if (is_proc_path(path)) return proc_opened(NEXT(open_fn, open)(path, flags, m));
  return should_fail(C_OPEN) ? fail_errno() : NEXT(open_fn, open)(path, flags, m);
}
int open64(const char *path, int flags, ...) {
  va_list ap;
  va_start(ap, flags);
  mode_t m = open_mode(flags, ap);
  va_end(ap);
  if (no_tmpfile(flags)) return -1;
  if (is_proc_path(path)) return proc_opened(NEXT(open_fn, open64)(path, flags, m));
  return should_fail(C_OPEN) ? fail_errno() : NEXT(open_fn, open64)(path, flags, m);
}
int openat(int dfd, const char *path, int flags, ...) {
  va_list ap;
  va_start(ap, flags);
  mode_t m = open_mode(flags, ap);
  va_end(ap);
  if (no_tmpfile(flags)) return -1;
  if (is_proc_path(path)) return proc_opened(NEXT(openat_fn, openat)(dfd, path, flags, m));
  return should_fail(C_OPENAT) ? fail_errno() : NEXT(openat_fn, openat)(dfd, path, flags, m);
}
int openat64(int dfd, const char *path, int flags, ...) {
  va_list ap;
  va_start(ap, flags);
  mode_t m = open_mode(flags, ap);
  va_end(ap);
  if (no_tmpfile(flags)) return -1;
  if (is_proc_path(path)) return proc_opened(NEXT(openat_fn, openat64)(dfd, path, flags, m));
  return should_fail(C_OPENAT) ? fail_errno() : NEXT(openat_fn, openat64)(dfd, path, flags, m);
}

/* Only file mappings count: anonymous ones are the allocator's and the
 * threads' business. */
static void *do_mmap(mmap_fn f, void *a, size_t n, int prot, int fl, int fd, off_t off) {
  if (fd < 0 || (fl & MAP_ANONYMOUS) || !should_fail(C_MMAP)) return f(a, n, prot, fl, fd, off);
  errno = atomic_load(&S.err);
  return MAP_FAILED;
}
void *mmap(void *a, size_t n, int prot, int fl, int fd, off_t off) {
  return do_mmap(NEXT(mmap_fn, mmap), a, n, prot, fl, fd, off);
}
void *mmap64(void *a, size_t n, int prot, int fl, int fd, off_t off) {
  return do_mmap(NEXT(mmap_fn, mmap64), a, n, prot, fl, fd, off);
}
