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

#endif
