/* Scratch directories for the tests of the checkpoint layer (tests/checkpt/);
 * test_rmdir (test.h) removes them. */
#ifndef WKSP_TESTS_LIB_CKPT_TEST_H
#define WKSP_TESTS_LIB_CKPT_TEST_H

#include <stdio.h>
#include <stdlib.h>

/* Makes a fresh directory under /tmp; its path goes to d (n bytes). */
static inline void ckpt_test_dir(char *d, size_t n) {
  snprintf(d, n, "/tmp/wksp-test-checkpt.XXXXXX");
  if (!mkdtemp(d)) abort();
}

#endif
