/* Scratch directories and a checkpoint writer thread, for the tests of the
 * checkpoint layer (tests/checkpt/). */
#ifndef WKSP_TESTS_LIB_CKPT_TEST_H
#define WKSP_TESTS_LIB_CKPT_TEST_H

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <wksp/checkpt.h>

/* Makes a fresh directory under /tmp; its path goes to d (n bytes). */
static inline void ckpt_test_dir(char *d, size_t n) {
  snprintf(d, n, "/tmp/wksp-test-checkpt.XXXXXX");
  if (!mkdtemp(d)) abort();
}

/* Removes the directory d and the files in it. */
static inline void ckpt_test_dir_remove(const char *d) {
  DIR *h = opendir(d);
  struct dirent *e;
  char p[512];
  while (h && (e = readdir(h)))
    if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
      snprintf(p, sizeof p, "%s/%s", d, e->d_name);
      unlink(p);
    }
  if (h) closedir(h);
  rmdir(d);
}

/* Entries in directory d other than . and .. */
static inline int dir_entries(const char *d) {
  DIR *h = opendir(d);
  struct dirent *e;
  int n = 0;
  while (h && (e = readdir(h))) n += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
  if (h) closedir(h);
  return n;
}

/* A checkpoint of w written to fd (closed after) on a thread of its own:
 * pthread_create(&t, NULL, writer_main, &x); rc is its result. */
typedef struct {
  wksp_t *w;
  int fd;
  wksp_checkpt_opts_t o;
  int rc;
} writer_t;

static inline void *writer_main(void *arg) {
  writer_t *x = arg;
  x->rc = wksp_checkpt_fd(x->w, x->fd, "pipe", &x->o);
  close(x->fd);
  return NULL;
}

#endif
