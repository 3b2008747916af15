/* gcc replay driver for a libFuzzer target: feeds every file of the corpus
 * directory given as argv[1] to LLVMFuzzerTestOneInput, then prints
 *   PASS replay_<name>/<N files>
 * (name = the corpus directory's last component) and exits 0.  A crash or
 * sanitizer report ends the program abnormally (counted as a failure by
 * tests/run.sh); a missing or empty corpus prints FAIL. */
#include <dirent.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int cmp(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

int main(int argc, char **argv) {
  const char *dir = argc > 1 ? argv[1] : NULL;
  const char *name = dir ? strrchr(dir, '/') : NULL;
  name = name ? name + 1 : dir ? dir : "?";
  DIR *d = dir ? opendir(dir) : NULL;
  if (!d) {
    printf("FAIL replay_%s/no corpus directory\n", name);
    return 1;
  }
  char **files = NULL;
  size_t n = 0, cap = 0;
  struct dirent *e;
  while ((e = readdir(d))) {
    if (e->d_name[0] == '.') continue;
    if (n == cap) {
      cap = cap ? 2 * cap : 64;
      char **f = realloc(files, cap * sizeof *f);
      if (!f) return 1;
      files = f;
    }
    size_t len = strlen(dir) + strlen(e->d_name) + 2;
    files[n] = malloc(len);
    snprintf(files[n++], len, "%s/%s", dir, e->d_name);
  }
  closedir(d);
  qsort(files, n, sizeof *files, cmp);
  for (size_t i = 0; i < n; i++) {
    FILE *f = fopen(files[i], "rb");
    if (!f) {
      printf("FAIL replay_%s/cannot open %s\n", name, files[i]);
      return 1;
    }
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *buf = malloc(sz > 0 ? (size_t)sz : 1);
    size_t got = fread(buf, 1, (size_t)sz, f);
    fclose(f);
    LLVMFuzzerTestOneInput(buf, got);
    free(buf);
    free(files[i]);
  }
  free(files);
  if (!n) {
    printf("FAIL replay_%s/empty corpus\n", name);
    return 1;
  }
  printf("PASS replay_%s/%zu files\n", name, n);
  return 0;
}
