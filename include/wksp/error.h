/* wksp/error.h: error codes, per-thread error messages and the log hook.
 *
 * Every public wksp call that can fail returns an int: WKSP_SUCCESS (0) or
 * one of the negative WKSP_ERR_* codes below.  On failure the call also
 * records one precise, human-readable message naming the cause (the path,
 * name, field, expected value and value found, errno text); it can be read
 * with wksp_errmsg() from the same thread until the next failing call on that
 * thread overwrites it.  The library never prints and never exits.
 *
 * A message is a chain: the context that passed the failure up (the C
 * functions and operations, "wksp_attach: wksp_shmem_join: "), then the
 * cause, in words that name no function ("no region named "x" (looked in
 * /dev/shm)").  wksp_errmsg() is the whole chain, for logs and
 * programmers; wksp_errcause() is the cause alone, for a program that
 * names the operation in its own terms: the wksp tool prints
 *   wksp: delete: deleting workspace "x": no region named "x" (looked in /dev/shm)
 * with its own context before wksp_errcause().  The cause still names
 * what it is about (paths, fields, offsets, expected versus found values,
 * errno text), so that it reads right after any context that names the
 * operation and its subject.
 *
 * Thread safety: the message buffer is thread-local; everything here is safe
 * to call from any thread.  wksp_log_set() should be called before threads
 * that use the library are started (the hook is read without a lock). */
#ifndef WKSP_ERROR_H
#define WKSP_ERROR_H

#ifdef __cplusplus
extern "C" {
#endif

/* Symbols of the public API are exported from the shared library; all else
 * is hidden. */
#define WKSP_API __attribute__((visibility("default")))

enum {
  WKSP_SUCCESS     =  0,
  WKSP_ERR_INVAL   = -1, /* bad argument: NULL, bad name, size, alignment, tag, gaddr, style, misuse */
  WKSP_ERR_FAIL    = -2, /* an operating-system or I/O call failed (errno in the message and wksp_errno()) */
  WKSP_ERR_CORRUPT = -3, /* inconsistent data: workspace metadata, or checkpoint bytes that cannot be right */
  WKSP_ERR_UNSUP   = -4, /* well-formed but not supported here (unknown style, no hugetlbfs mount, ...) */
  WKSP_ERR_FULL    = -5, /* not enough free space or free partition records in the workspace */
  WKSP_ERR_EXIST   = -6, /* the named region or the target file already exists */
  WKSP_ERR_NOENT   = -7, /* no region / file of that name */
  WKSP_ERR_PERM    = -8, /* not permitted: read-only join, file permissions */
  WKSP_ERR_NOMEM   = -9, /* the process could not allocate private memory */
  WKSP_ERR_AGAIN   = -10, /* the data changed while it was read (a checkpoint with verify saw the
                             application write into an allocation); trying again may succeed */
  WKSP_ERR_DEADLK  = -11  /* waiting would never end: the lock is held by a process that itself
                             waits for this call (a restore reading a pipe that the lock's
                             holder writes, see wksp/checkpt.h); nothing was changed */
};

/* Short constant name of an error code ("success", "inval", "fail",
 * "corrupt", ...); "unknown" for anything else.  Never NULL. */
WKSP_API const char *wksp_strerror(int err);

/* The message recorded by the last failing wksp call on this thread, or ""
 * if none has failed yet.  The pointer stays valid for the thread's life;
 * its contents change at the next failure on this thread. */
WKSP_API const char *wksp_errmsg(void);

/* The cause part of wksp_errmsg(): the same text without the context
 * (the chain of functions and operations before it), so always a suffix of
 * wksp_errmsg() and "" when nothing has failed.  Same lifetime. */
WKSP_API const char *wksp_errcause(void);

/* The errno value behind the last failure on this thread (0 when the
 * failure was not caused by an OS call). */
WKSP_API int wksp_errno(void);

/* Optional log hook: called synchronously, on the failing thread, once per
 * recorded error, with the code and the message.  NULL removes the hook.
 * The hook must not call back into wksp. */
typedef void (*wksp_log_fn_t)(int err, const char *msg, void *ctx);
WKSP_API void wksp_log_set(wksp_log_fn_t fn, void *ctx);

#ifdef __cplusplus
}
#endif

#endif /* WKSP_ERROR_H */
