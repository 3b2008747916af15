/* Reference vectors for the checkpoint tests: locating them and reading the
 * few manifest fields the tests use (a minimal reader for these JSON files,
 * whose layout README.md fixes; integers are exact u64). */
#ifndef WKSP_TESTS_CHECKPT_VEC_H
#define WKSP_TESTS_CHECKPT_VEC_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define VEC_PART_MAX 256
#define VEC_CG_MAX 64

typedef struct {
  char name[64]; /* e.g. "v3-text" */
  char ckpt[512], json[512];
  uint64_t file_size, style, fsc, seed, part_max, data_max, alloc_cnt;
  char wname[40];
  uint64_t cgroup_cnt, info_end, appendix_off, volumes_off;
  uint64_t cg_off[VEC_CG_MAX], cg_cnt[VEC_CG_MAX];
  struct {
    uint64_t tag, lo, hi;
    char sha[65];
  } part[VEC_PART_MAX];
} vec_t;

static const char *const vec_names[] = {"v1-text",   "v2-empty", "v2-random", "v3-mixed",
                                        "v3-single", "v3-text",  "v3-zeros"};
#define VEC_CNT (sizeof vec_names / sizeof vec_names[0])

/* $WKSP_VECTORS, else tests/vectors (the repo's copy; the tests run from the
 * repo root, tests/run.sh sees to that). */
static inline const char *vec_dir(void) {
  const char *e = getenv("WKSP_VECTORS");
  return e && *e ? e : "tests/vectors";
}

static inline char *vec_slurp(const char *path, size_t *sz) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *b = malloc((size_t)n + 1);
  if (b && fread(b, 1, (size_t)n, f) != (size_t)n) {
    free(b);
    b = NULL;
  }
  if (b) b[n] = 0;
  fclose(f);
  if (sz) *sz = (size_t)n;
  return b;
}

/* The number after "key": at or after p (0 if missing); *end past it. */
static inline uint64_t vec_num(const char *p, const char *key, const char **end) {
  char k[64];
  snprintf(k, sizeof k, "\"%s\":", key);
  const char *s = strstr(p, k);
  if (!s) return 0;
  s += strlen(k);
  char *e;
  uint64_t v = strtoull(s, &e, 10);
  if (end) *end = e;
  return v;
}

static inline void vec_str(const char *p, const char *key, char *out, size_t n) {
  char k[64];
  snprintf(k, sizeof k, "\"%s\": \"", key);
  const char *s = strstr(p, k);
  out[0] = 0;
  if (!s) return;
  s += strlen(k);
  size_t i = 0;
  while (s[i] && s[i] != '"' && i + 1 < n) out[i] = s[i], i++;
  out[i] = 0;
}

/* Reads the numbers of array "key": [a, b, ...] into out (max n). */
static inline uint64_t vec_arr(const char *p, const char *key, uint64_t *out, uint64_t n) {
  char k[64];
  snprintf(k, sizeof k, "\"%s\": [", key);
  const char *s = strstr(p, k);
  if (!s) return 0;
  s += strlen(k);
  uint64_t c = 0;
  while (*s && *s != ']' && c < n) {
    char *e;
    out[c++] = strtoull(s, &e, 10);
    s = e;
    while (*s == ',' || *s == ' ') s++;
  }
  return c;
}

/* Loads vector i; 0 on success. */
static inline int vec_load(vec_t *v, size_t i) {
  memset(v, 0, sizeof *v);
  snprintf(v->name, sizeof v->name, "%s", vec_names[i]);
  snprintf(v->ckpt, sizeof v->ckpt, "%s/%s.ckpt", vec_dir(), v->name);
  snprintf(v->json, sizeof v->json, "%s/%s.json", vec_dir(), v->name);
  char *j = vec_slurp(v->json, NULL);
  if (!j) {
    fprintf(stderr, "vector manifest %s missing (set WKSP_VECTORS)\n", v->json);
    return -1;
  }
  v->file_size = vec_num(j, "file_size", NULL);
  v->style = vec_num(j, "style", NULL);
  v->fsc = vec_num(j, "frame_style_compressed", NULL);
  const char *w = strstr(j, "\"wksp\":");
  vec_str(w, "name", v->wname, sizeof v->wname);
  v->seed = vec_num(w, "seed", NULL);
  v->part_max = vec_num(w, "part_max", NULL);
  v->data_max = vec_num(w, "data_max", NULL);
  const char *l = strstr(j, "\"layout\":");
  if (l) {
    v->info_end = vec_num(l, "info_end", NULL);
    v->cgroup_cnt = vec_num(l, "cgroup_cnt", NULL);
    vec_arr(l, "cgroup_frame_off", v->cg_off, VEC_CG_MAX);
    vec_arr(l, "cgroup_alloc_cnt", v->cg_cnt, VEC_CG_MAX);
    v->appendix_off = vec_num(l, "appendix_off", NULL);
    v->volumes_off = vec_num(l, "volumes_off", NULL);
  }
  const char *p = strstr(j, "\"partitions\":");
  v->alloc_cnt = vec_num(strstr(j, "\"hash\":"), "alloc_cnt", NULL);
  for (uint64_t k = 0; p && k < v->alloc_cnt && k < VEC_PART_MAX; k++) {
    p = strstr(p, "{ \"tag\":");
    if (!p) break;
    v->part[k].tag = vec_num(p, "tag", NULL);
    v->part[k].lo = vec_num(p, "gaddr_lo", NULL);
    v->part[k].hi = vec_num(p, "gaddr_hi", NULL);
    vec_str(p, "sha256", v->part[k].sha, sizeof v->part[k].sha);
    p++;
  }
  free(j);
  return 0;
}

#endif
