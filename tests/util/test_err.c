#include "../test.h"
#include "../../src/util/err.h"

#include <errno.h>

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

static void test_again_keeps_errno(void) {
  CHECK_EQ(wksp_err_again(WKSP_ERR_FAIL, EIO, "earlier: %s", "write: Input/output error"), WKSP_ERR_FAIL);
  CHECK(!strcmp(wksp_errmsg(), "earlier: write: Input/output error"));
  CHECK_EQ(wksp_errno(), EIO);
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
  TEST_RUN(test_again_keeps_errno);
  TEST_RUN(test_long_message_truncated);
  TEST_RUN(test_log_hook);
  return test_done();
}
