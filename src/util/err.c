#include "err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

enum { MSG_MAX = WKSP_ERR_MSG_MAX };

static _Thread_local char msg_buf[MSG_MAX];
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

int wksp_errno(void) { return msg_errno; }

void wksp_log_set(wksp_log_fn_t fn, void *ctx) {
  log_fn = fn;
  log_ctx = ctx;
}

int wksp_err(int err, int errnum, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(msg_buf, MSG_MAX, fmt, ap);
  va_end(ap);
  if (errnum && n >= 0 && n < MSG_MAX)
    snprintf(msg_buf + n, MSG_MAX - (size_t)n, ": %s", strerror(errnum));
  msg_errno = errnum;
  if (log_fn) log_fn(err, msg_buf, log_ctx);
  return err;
}

int wksp_err_again(int err, int errnum, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg_buf, MSG_MAX, fmt, ap);
  va_end(ap);
  msg_errno = errnum;
  if (log_fn) log_fn(err, msg_buf, log_ctx);
  return err;
}

int wksp_err_wrap(int err, const char *fmt, ...) {
  char out[MSG_MAX];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(out, MSG_MAX, fmt, ap);
  va_end(ap);
  if (n < 0) return err;
  size_t used = (size_t)n < MSG_MAX ? (size_t)n : MSG_MAX - 1;
  size_t room = MSG_MAX - 1 - used, old = strlen(msg_buf);
  if (room >= 2) {
    memcpy(out + used, ": ", 2);
    used += 2;
    room -= 2;
    if (old > room) old = room;
    memcpy(out + used, msg_buf, old);
    used += old;
  }
  out[used] = 0;
  memcpy(msg_buf, out, used + 1);
  return err;
}

int wksp_err_keep(wksp_err_kept_t *k, int rc) {
  if (!k->rc) {
    k->rc = rc;
    k->err_errno = msg_errno;
    snprintf(k->msg, sizeof k->msg, "%s", msg_buf);
  }
  return rc;
}

int wksp_err_kept(const wksp_err_kept_t *k) {
  return k->rc ? wksp_err_again(k->rc, k->err_errno, "%s", k->msg) : WKSP_SUCCESS;
}
