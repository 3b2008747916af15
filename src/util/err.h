/* Internal error recording.  Library code reports a failure with
 *   return wksp_err(WKSP_ERR_INVAL, 0, "wksp_alloc: align %lu is not a power of two", align);
 * which formats the message into the thread's buffer, calls the log hook
 * and returns the code, so that one line both records and propagates. */
#ifndef WKSP_UTIL_ERR_H
#define WKSP_UTIL_ERR_H

#include "wksp/error.h"

/* Records err with message fmt (errnum != 0 appends ": <strerror>") and
 * returns err. */
int wksp_err(int err, int errnum, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Prefixes the current thread's message with "<prefix>: " (context added by
 * an outer layer, e.g. the path) and returns err unchanged. */
int wksp_err_wrap(int err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Re-records a failure remembered from earlier (message text already
 * complete, errnum the errno it had): unlike wksp_err, nothing is appended
 * to the message, but wksp_errno() reports errnum again.  Returns err. */
int wksp_err_again(int err, int errnum, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* A failure kept for later (another thread's, or a sticky object's):
 * its code, errno and message. */
enum { WKSP_ERR_MSG_MAX = 1024 };
typedef struct {
  int rc; /* WKSP_SUCCESS: nothing kept */
  int err_errno;
  char msg[WKSP_ERR_MSG_MAX];
} wksp_err_kept_t;

/* Keeps the calling thread's current failure (code rc) in *k unless *k
 * already holds one: the first error wins (the caller serializes threads).
 * Returns rc. */
int wksp_err_keep(wksp_err_kept_t *k, int rc);
/* Records the kept failure on the calling thread (as wksp_err_again) and
 * returns its code; WKSP_SUCCESS, recording nothing, when none was kept. */
int wksp_err_kept(const wksp_err_kept_t *k);

/* A frame-layer FAIL without an errno is input that ended early.  Inside an
 * input known to be complete (a file of known size, a frame buffered
 * whole) that means bad bytes: CORRUPT.  A FAIL with an errno (a read
 * error) and every other code stay as they are. */
static inline int wksp_err_short_is_corrupt(int rc) {
  return rc == WKSP_ERR_FAIL && !wksp_errno() ? WKSP_ERR_CORRUPT : rc;
}

#endif
