/* Internal error recording.
 *
 * A message is a chain "CONTEXT: ... CAUSE".  The cause says what went
 * wrong in words a user of any front end can read ("no region named "x"
 * (looked in /dev/shm)", "allocation [4096,8192): LZ4 block does not
 * decode"); the context says who passed it up (C function names, "restore
 * f.ckpt", ...), for programmers and logs.  wksp_errmsg() is the whole
 * chain, wksp_errcause() the cause alone (include/wksp/error.h), so a
 * front end names the operation in its own terms and adds the cause.
 *
 * Library code fails with one line that records and returns:
 *   return wksp_err_in(WKSP_ERR_INVAL, 0, "wksp_alloc", "align %lu is not a power of two", align);
 *   return wksp_err(WKSP_ERR_CORRUPT, 0, "record %u has a bad link", i);   (no context)
 * an outer layer adds context with wksp_err_wrap(), or, when what it adds
 * belongs to the cause (where in the input the cause was found: a frame,
 * an allocation, an offset), with wksp_err_where().  Never put a function
 * name in a cause: pass it as `who` or wrap with it. */
#ifndef WKSP_UTIL_ERR_H
#define WKSP_UTIL_ERR_H

#include <wksp/error.h>

enum { WKSP_ERR_MSG_MAX = 1024 }; /* bytes of a message, NUL included */

/* Records err with cause fmt (errnum != 0 appends ": <strerror>") and
 * returns err. */
int wksp_err(int err, int errnum, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* As wksp_err, with context `who` (a function or operation name; NULL =
 * none) before the cause: the message is "<who>: <cause>". */
int wksp_err_in(int err, int errnum, const char *who, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Prefixes the current thread's message with "<context>: " (context added by
 * an outer layer: the function, the operation and its subject); the cause
 * is unchanged.  Returns err unchanged. */
int wksp_err_wrap(int err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Puts "<where>: " at the start of the current thread's cause (after its
 * context): where in the input the cause was found ("cgroup frame at
 * 4096").  Returns err unchanged. */
int wksp_err_where(int err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* A failure kept to be reported later or on another thread (a worker's
 * error re-recorded by the thread that returns it): the message, where
 * its cause starts, and the errno. */
typedef struct {
  int err;     /* the code; WKSP_SUCCESS while nothing is saved */
  int errnum;
  unsigned cause;
  char msg[WKSP_ERR_MSG_MAX];
} wksp_err_saved_t;

/* Saves this thread's last failure, with code err, into *s. */
void wksp_err_save(wksp_err_saved_t *s, int err);

/* Records the saved failure on this thread again (message, cause, errno;
 * the log hook is not called again) and returns its code. */
int wksp_err_resume(const wksp_err_saved_t *s);

/* Appends " <text>" to the current thread's message (a note on what was
 * done about the failure: "(target reset to empty)").  Returns err. */
int wksp_err_append(int err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Keeps the calling thread's current failure (code err) in *s unless *s
 * already holds one: the first error wins (the caller serializes threads).
 * Returns err. */
int wksp_err_keep(wksp_err_saved_t *s, int err);
/* Records the kept failure on the calling thread (as wksp_err_resume) and
 * returns its code; WKSP_SUCCESS, recording nothing, when none was kept. */
int wksp_err_kept(const wksp_err_saved_t *s);

/* A frame-layer FAIL without an errno is input that ended early.  Inside an
 * input known to be complete (a file of known size, a frame buffered
 * whole) that means bad bytes: CORRUPT.  A FAIL with an errno (a read
 * error) and every other code stay as they are. */
static inline int wksp_err_short_is_corrupt(int rc) {
  return rc == WKSP_ERR_FAIL && !wksp_errno() ? WKSP_ERR_CORRUPT : rc;
}

#endif
