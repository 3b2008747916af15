#include "err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

enum { MSG_MAX = WKSP_ERR_MSG_MAX };

static _Thread_local char msg_buf[MSG_MAX];
static _Thread_local size_t msg_cause; /* where the cause starts in msg_buf */
static _Thread_local int msg_errno;
static wksp_log_fn_t log_fn;
static void *log_ctx;

const char *wksp_strerror(int err) {
  switch (err) {
  case WKSP_SUCCESS: return "success";
  case WKSP_ERR_INVAL: return "inval";
  case WKSP_ERR_FAIL: return "fail";
  case WKSP_ERR_CORRUPT: return "corrupt";
  case WKSP_ERR_UNSUP: return "unsup";
  case WKSP_ERR_FULL: return "full";
  case WKSP_ERR_EXIST: return "exist";
  case WKSP_ERR_NOENT: return "noent";
  case WKSP_ERR_PERM: return "perm";
  case WKSP_ERR_NOMEM: return "nomem";
  case WKSP_ERR_AGAIN: return "again";
  case WKSP_ERR_DEADLK: return "deadlk";
  default: return "unknown";
  }
}

const char *wksp_errmsg(void) { return msg_buf; }

const char *wksp_errcause(void) {
  size_t len = strlen(msg_buf);
  return msg_buf + (msg_cause < len ? msg_cause : len);
}

int wksp_errno(void) { return msg_errno; }

void wksp_log_set(wksp_log_fn_t fn, void *ctx) {
  log_fn = fn;
  log_ctx = ctx;
}

/* Bytes a snprintf-style count n stands for in a buffer of room bytes. */
static size_t fitted(int n, size_t room) {
  if (n < 0 || !room) return 0;
  return (size_t)n < room ? (size_t)n : room - 1;
}

static int record(int err, int errnum, const char *who, const char *fmt, va_list ap) {
  size_t used = who ? fitted(snprintf(msg_buf, MSG_MAX, "%s: ", who), MSG_MAX) : 0;
  msg_cause = used;
  int n = vsnprintf(msg_buf + used, MSG_MAX - used, fmt, ap);
  if (n < 0) msg_buf[used] = 0;
  used += fitted(n, MSG_MAX - used);
  if (errnum && used < MSG_MAX - 1) snprintf(msg_buf + used, MSG_MAX - used, ": %s", strerror(errnum));
  msg_errno = errnum;
  if (log_fn) log_fn(err, msg_buf, log_ctx);
  return err;
}

int wksp_err(int err, int errnum, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  record(err, errnum, NULL, fmt, ap);
  va_end(ap);
  return err;
}

int wksp_err_in(int err, int errnum, const char *who, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  record(err, errnum, who, fmt, ap);
  va_end(ap);
  return err;
}

/* Inserts the formatted text and ": " at offset `at` of the message (cut
 * at its end if it gets too long); returns the inserted length. */
static size_t insert(size_t at, const char *fmt, va_list ap) {
  char add[MSG_MAX];
  size_t n = fitted(vsnprintf(add, MSG_MAX - 2, fmt, ap), MSG_MAX - 2);
  memcpy(add + n, ": ", 2);
  n += 2;
  size_t old = strlen(msg_buf);
  if (at > old) at = old;
  if (n > MSG_MAX - 1 - at) n = MSG_MAX - 1 - at;
  size_t keep = old - at; /* bytes after the insertion point that still fit */
  if (keep > MSG_MAX - 1 - at - n) keep = MSG_MAX - 1 - at - n;
  memmove(msg_buf + at + n, msg_buf + at, keep);
  memcpy(msg_buf + at, add, n);
  msg_buf[at + n + keep] = 0;
  return n;
}

int wksp_err_wrap(int err, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  msg_cause += insert(0, fmt, ap);
  va_end(ap);
  return err;
}

int wksp_err_where(int err, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  insert(msg_cause, fmt, ap);
  va_end(ap);
  return err;
}

int wksp_err_append(int err, const char *fmt, ...) {
  size_t used = strlen(msg_buf);
  if (used < MSG_MAX - 2) {
    msg_buf[used++] = ' ';
    msg_buf[used] = 0;
    va_list ap;
    va_start(ap, fmt);
    if (vsnprintf(msg_buf + used, MSG_MAX - used, fmt, ap) < 0) msg_buf[used] = 0;
    va_end(ap);
  }
  return err;
}

void wksp_err_save(wksp_err_saved_t *s, int err) {
  s->err = err;
  s->errnum = msg_errno;
  s->cause = (unsigned)(wksp_errcause() - msg_buf);
  memcpy(s->msg, msg_buf, MSG_MAX);
}

int wksp_err_resume(const wksp_err_saved_t *s) {
  memcpy(msg_buf, s->msg, MSG_MAX);
  msg_buf[MSG_MAX - 1] = 0;
  msg_cause = s->cause;
  msg_errno = s->errnum;
  return s->err;
}

int wksp_err_keep(wksp_err_saved_t *s, int err) {
  if (!s->err) wksp_err_save(s, err);
  return err;
}

int wksp_err_kept(const wksp_err_saved_t *s) {
  return s->err ? wksp_err_resume(s) : WKSP_SUCCESS;
}
