/* tests/lib/faultshim.h: control interface of libfaultshim.so, an
 * LD_PRELOAD library that makes chosen libc I/O calls fail, so that the
 * library's reaction to disk-full, I/O errors, short transfers and EINTR is
 * tested without touching the library's code.
 *
 * Intercepted calls (each has a name used in the `calls` lists below):
 *   write writev pwrite pwritev fsync fdatasync fchmod ftruncate
 *   link linkat rename renameat renameat2 unlink unlinkat
 *   open openat read readv pread mmap (file-backed only) sendfile
 * Writes to fd 2 are never counted nor failed (diagnostics must get out).
 * Nor are opens of /proc/... and reads of descriptors so opened: the
 * library reads there only hints about this process (which pages it maps,
 * who holds a lock), whose failure changes nothing the caller sees.
 *
 * Only calls made while the shim is armed and whose name is in the armed
 * list are counted (1, 2, 3, ... in call order, across threads).  The
 * counted call number `nth` gets the fault; with `sticky` every later
 * counted call fails too (a full disk stays full).
 *
 * Fault kinds:
 *   FAULTSHIM_ERRNO  the call fails (-1 / MAP_FAILED) with errno `err`,
 *                    nothing is done
 *   FAULTSHIM_SHORT  a data transfer (write, writev, pwrite, pwritev, read,
 *                    readv, pread, sendfile) moves only half of its bytes (at least
 *                    1) and succeeds; other calls, and transfers of <= 1
 *                    byte, then fail with `err` instead
 *
 * Two ways to drive it:
 *   - from a test linked normally and started with LD_PRELOAD: look the
 *     functions up with dlsym (faultshim_find below) and arm / disarm
 *     around the call under test;
 *   - from the environment, for any program (e.g. bin/wksp): armed at load
 *     when FAULTSHIM_NTH is set:
 *       FAULTSHIM_CALLS   comma-separated names (default: every name)
 *       FAULTSHIM_NTH     counted call number to fail (1-based)
 *       FAULTSHIM_ERRNO   ENOSPC, EIO, EINTR, EDQUOT, EPERM, ENOMEM, EAGAIN
 *                         or a number (default EIO)
 *       FAULTSHIM_SHORT   1 = short transfer
 *       FAULTSHIM_STICKY  1 = every later counted call fails too
 *       FAULTSHIM_NO_TMPFILE 1 = opens with O_TMPFILE fail (EOPNOTSUPP)
 *       FAULTSHIM_REPORT  file to which the counted calls are appended at
 *                         exit, one name per line (for dry runs)
 */
#ifndef WKSP_TESTS_RELIABILITY_FAULTSHIM_H
#define WKSP_TESTS_RELIABILITY_FAULTSHIM_H

#include <dlfcn.h>
#include <stddef.h>

enum { FAULTSHIM_ERRNO = 0, FAULTSHIM_SHORT = 1 };

/* The functions libfaultshim.so exports (names as in the .so). */
typedef struct {
  /* Starts counting calls named in `calls` (NULL = all) from 0; call `nth`
   * (0 = none: count only) gets fault `kind` with errno `err`. */
  void (*arm)(const char *calls, long nth, int kind, int err, int sticky);
  /* Stops counting; returns the number of calls counted since arm. */
  long (*disarm)(void);
  /* Name of counted call number k (1-based) since the last arm, or NULL
   * (the first 4096 calls are remembered). */
  const char *(*call_name)(long k);
  /* Number of faults injected since the last arm. */
  long (*fired)(void);
  /* on != 0: opens with O_TMPFILE fail with EOPNOTSUPP (not counted), as
   * on a filesystem without O_TMPFILE. */
  void (*no_tmpfile)(int on);
} faultshim_t;

/* Fills *s from the preloaded shim; returns 0, or -1 if it is not loaded. */
static inline int faultshim_find(faultshim_t *s) {
  s->arm = (void (*)(const char *, long, int, int, int))dlsym(RTLD_DEFAULT, "faultshim_arm");
  s->disarm = (long (*)(void))dlsym(RTLD_DEFAULT, "faultshim_disarm");
  s->call_name = (const char *(*)(long))dlsym(RTLD_DEFAULT, "faultshim_call_name");
  s->fired = (long (*)(void))dlsym(RTLD_DEFAULT, "faultshim_fired");
  s->no_tmpfile = (void (*)(int))dlsym(RTLD_DEFAULT, "faultshim_no_tmpfile");
  return s->arm && s->disarm && s->call_name && s->fired && s->no_tmpfile ? 0 : -1;
}

#endif
