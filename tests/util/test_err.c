#include "../lib/test.h"
#include "../../src/util/err.h"

#include <errno.h>
#include <pthread.h>

static int hook_calls;
static int hook_last;
static void hook(int err, const char *msg, void *ctx) {
  (void)msg;
  hook_calls += *(int *)ctx;
  hook_last = err;
}

static void test_strerror(void) {
  CHECK(!strcmp(wksp_strerror(WKSP_SUCCESS), "success"));
  CHECK(!strcmp(wksp_strerror(WKSP_ERR_INVAL), "inval"));
  CHECK(!strcmp(wksp_strerror(WKSP_ERR_FAIL), "fail"));
  CHECK(!strcmp(wksp_strerror(WKSP_ERR_CORRUPT), "corrupt"));
  CHECK(!strcmp(wksp_strerror(WKSP_ERR_NOMEM), "nomem"));
  CHECK(!strcmp(wksp_strerror(WKSP_ERR_AGAIN), "again"));
  CHECK(!strcmp(wksp_strerror(WKSP_ERR_DEADLK), "deadlk"));
  CHECK(!strcmp(wksp_strerror(12345), "unknown"));
}

static void test_message_and_errno(void) {
  CHECK_EQ(wksp_err(WKSP_ERR_FAIL, ENOENT, "open %s", "/x/y"), WKSP_ERR_FAIL);
  CHECK(!strcmp(wksp_errmsg(), "open /x/y: No such file or directory"));
  CHECK_EQ(wksp_errno(), ENOENT);
  CHECK_EQ(wksp_err(WKSP_ERR_INVAL, 0, "bad %d", 7), WKSP_ERR_INVAL);
  CHECK(!strcmp(wksp_errmsg(), "bad 7"));
  CHECK_EQ(wksp_errno(), 0);
  CHECK_EQ(wksp_err_wrap(WKSP_ERR_INVAL, "restore %s", "f.ckpt"), WKSP_ERR_INVAL);
  CHECK(!strcmp(wksp_errmsg(), "restore f.ckpt: bad 7"));
}

/* The cause is the message without the context that passed it up. */
static void test_cause(void) {
  wksp_err_in(WKSP_ERR_NOENT, 0, "wksp_shmem_join", "no region named \"%s\"", "x");
  CHECK(!strcmp(wksp_errmsg(), "wksp_shmem_join: no region named \"x\""));
  CHECK(!strcmp(wksp_errcause(), "no region named \"x\""));
  wksp_err_wrap(WKSP_ERR_NOENT, "%s", "wksp_attach");
  CHECK(!strcmp(wksp_errmsg(), "wksp_attach: wksp_shmem_join: no region named \"x\""));
  CHECK(!strcmp(wksp_errcause(), "no region named \"x\""));
  /* where: inside the cause, after the context */
  wksp_err_where(WKSP_ERR_NOENT, "frame at %d", 64);
  CHECK(!strcmp(wksp_errmsg(), "wksp_attach: wksp_shmem_join: frame at 64: no region named \"x\""));
  CHECK(!strcmp(wksp_errcause(), "frame at 64: no region named \"x\""));
  /* errno text belongs to the cause; no context: the whole message */
  wksp_err(WKSP_ERR_FAIL, ENOENT, "open %s", "/x");
  CHECK(!strcmp(wksp_errcause(), "open /x: No such file or directory"));
  CHECK(wksp_errcause() == wksp_errmsg());
  wksp_err_in(WKSP_ERR_FAIL, EIO, NULL, "read");
  CHECK(!strcmp(wksp_errcause(), "read: Input/output error"));
}

/* A cause longer than the buffer, behind a long context: the cause
 * pointer stays inside the (cut) message. */
static void test_cause_truncated(void) {
  char big[1500];
  memset(big, 'c', sizeof big - 1);
  big[sizeof big - 1] = 0;
  wksp_err_in(WKSP_ERR_INVAL, 0, "who", "%s", big);
  CHECK(strlen(wksp_errmsg()) == 1023);
  CHECK(strlen(wksp_errcause()) == 1023 - 5);
  wksp_err_wrap(WKSP_ERR_INVAL, "%s", big);
  CHECK(strlen(wksp_errmsg()) == 1023);
  CHECK(!strcmp(wksp_errcause(), ""));
  wksp_err_where(WKSP_ERR_INVAL, "w");
  CHECK(strlen(wksp_errmsg()) == 1023);
}

/* A failure saved on one thread and resumed on another keeps its cause. */
static wksp_err_saved_t saved;
static void *worker(void *arg) {
  (void)arg;
  wksp_err_in(WKSP_ERR_CORRUPT, EIO, "wksp_frame_read", "frame at %d", 8);
  wksp_err_save(&saved, WKSP_ERR_CORRUPT);
  return NULL;
}

static void test_save_resume(void) {
  pthread_t t;
  wksp_err(WKSP_ERR_INVAL, 0, "something else");
  CHECK(!pthread_create(&t, NULL, worker, NULL));
  CHECK(!pthread_join(t, NULL));
  CHECK(!strcmp(wksp_errmsg(), "something else"));
  CHECK_EQ(wksp_err_resume(&saved), WKSP_ERR_CORRUPT);
  CHECK(!strcmp(wksp_errmsg(), "wksp_frame_read: frame at 8: Input/output error"));
  CHECK(!strcmp(wksp_errcause(), "frame at 8: Input/output error"));
  CHECK_EQ(wksp_errno(), EIO);
  CHECK_EQ(wksp_err_append(WKSP_ERR_CORRUPT, "(target reset to %s)", "empty"), WKSP_ERR_CORRUPT);
  CHECK(!strcmp(wksp_errcause(), "frame at 8: Input/output error (target reset to empty)"));
}

/* A failure kept and reported again by a later call (a writer refusing
 * work after a failed write): the later call is context, the cause and
 * the errno are the first failure's. */
static void test_resume_then_wrap(void) {
  wksp_err_saved_t kept = {0};
  CHECK_EQ(wksp_err_keep(&kept, wksp_err(WKSP_ERR_FAIL, ENOSPC, "write at %d", 0)), WKSP_ERR_FAIL);
  wksp_err(WKSP_ERR_INVAL, 0, "something else");
  CHECK_EQ(wksp_err_wrap(wksp_err_kept(&kept), "%s: failed earlier", "fini"), WKSP_ERR_FAIL);
  CHECK(!strcmp(wksp_errmsg(), "fini: failed earlier: write at 0: No space left on device"));
  CHECK(!strcmp(wksp_errcause(), "write at 0: No space left on device"));
  CHECK_EQ(wksp_errno(), ENOSPC);
}

static void test_long_message_truncated(void) {
  char big[3000];
  memset(big, 'a', sizeof big - 1);
  big[sizeof big - 1] = 0;
  wksp_err(WKSP_ERR_INVAL, EIO, "%s", big);
  CHECK(strlen(wksp_errmsg()) == 1023);
}

static void test_log_hook(void) {
  int one = 1;
  wksp_log_set(hook, &one);
  wksp_err(WKSP_ERR_CORRUPT, 0, "x");
  wksp_log_set(NULL, NULL);
  wksp_err(WKSP_ERR_INVAL, 0, "y");
  CHECK_EQ(hook_calls, 1);
  CHECK_EQ(hook_last, WKSP_ERR_CORRUPT);
}

int main(void) {
  TEST_RUN(test_strerror);
  TEST_RUN(test_message_and_errno);
  TEST_RUN(test_cause);
  TEST_RUN(test_cause_truncated);
  TEST_RUN(test_save_resume);
  TEST_RUN(test_resume_then_wrap);
  TEST_RUN(test_long_message_truncated);
  TEST_RUN(test_log_hook);
  return test_done();
}
