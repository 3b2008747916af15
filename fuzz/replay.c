/* Replay driver for the libFuzzer targets under gcc: feeds every regular file
 * of the directories (or files) given as arguments to
 * LLVMFuzzerTestOneInput, in sorted order, and prints
 *   PASS replay_<name>/<N files>      (name from the program: replay_<name>)
 * A crash or sanitizer report ends the program, which tests/run.sh counts as
 * a failure; an unreadable or empty corpus prints FAIL. */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int run_file(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) return -1;
  uint8_t *buf = NULL;
  size_t sz = 0, cap = 0;
  for (;;) {
    if (cap - sz < 65536) {
      cap = cap ? 2 * cap : 65536;
      uint8_t *q = realloc(buf, cap);
      if (!q) break;
      buf = q;
    }
    size_t n = fread(buf + sz, 1, cap - sz, f);
    if (!n) break;
    sz += n;
  }
  int bad = ferror(f);
  fclose(f);
  if (!bad) { /* an exact-size copy, as libFuzzer gives: overreads are caught */
    uint8_t *exact = malloc(sz ? sz : 1);
    if (exact) {
      memcpy(exact, buf, sz);
      LLVMFuzzerTestOneInput(exact, sz);
      free(exact);
    }
  }
  free(buf);
  return bad ? -1 : 0;
}

static int by_name(const struct dirent **a, const struct dirent **b) {
  return strcmp((*a)->d_name, (*b)->d_name);
}

/* Runs one argument (a file or a directory of files); returns files run or
 * -1. */
static long run_arg(const char *arg) {
  struct stat st;
  if (stat(arg, &st)) return -1;
  if (!S_ISDIR(st.st_mode)) return run_file(arg) ? -1 : 1;
  struct dirent **ents;
  int n = scandir(arg, &ents, NULL, by_name);
  if (n < 0) return -1;
  long cnt = 0;
  for (int i = 0; i < n; i++) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", arg, ents[i]->d_name);
    if (!stat(path, &st) && S_ISREG(st.st_mode)) {
      if (run_file(path)) cnt = -1;
      else if (cnt >= 0) cnt++;
    }
    free(ents[i]);
  }
  free(ents);
  return cnt;
}

int main(int argc, char **argv) {
  const char *prog = strrchr(argv[0], '/');
  prog = prog ? prog + 1 : argv[0];
  long total = 0;
  for (int i = 1; i < argc && total >= 0; i++) {
    long n = run_arg(argv[i]);
    if (n < 0) fprintf(stderr, "%s: cannot read %s: %s\n", prog, argv[i], strerror(errno));
    total = n < 0 ? -1 : total + n;
  }
  if (argc < 2 || total <= 0) {
    printf("FAIL %s/no corpus files\n", prog);
    return 1;
  }
  printf("PASS %s/%ld files\n", prog, total);
  return 0;
}
