/* Writes the seed corpus of fuzz/fuzz_v1.c into the directory argv[1]:
 * small v1 checkpoints (v1enc.h) of workspaces shaped like the fuzz
 * target's (part_max 64, data_max 1 MiB), without their first 10 bytes
 * (magic and style, which the target prefixes itself).  Not part of the
 * build; run by hand:
 *   gcc -Iinclude -Isrc -D_GNU_SOURCE -o /tmp/gen tests/reliability/gen_v1_seeds.c lib/libwksp.a -llz4 -lcrypto -pthread
 *   /tmp/gen fuzz/corpus/v1 */
#include "../lib/test.h"
#include "../lib/v1enc.h"

#include <stdio.h>

static void emit(const char *dir, const char *name, wksp_t *w) {
  size_t n = 0;
  wksp_part_t all[256], used[256];
  wksp_part_list(w, all, 256, &n);
  uint64_t k = 0;
  for (size_t i = 0; i < n; i++)
    if (all[i].tag) used[k++] = all[i];
  ftl_buf_t b = v1_encode(w, used, k);
  char path[512];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  FILE *f = fopen(path, "wb");
  if (!f || fwrite(b.p + 10, 1, b.sz - 10, f) != b.sz - 10) exit(1);
  fclose(f);
  free(b.p);
}

int main(int argc, char **argv) {
  if (argc != 2) return 2;
  uint64_t fp = wksp_footprint(64, 1 << 20);
  wksp_t *w;
  void *mem = aligned_alloc(4096, (fp + 4095) & ~4095ull);
  if (!mem || wksp_new(mem, "seedv1", 5, 64, 1 << 20, &w)) return 1;
  emit(argv[1], "empty", w);
  uint64_t g, rng = 3;
  wksp_alloc(w, 1, 40, 7, &g);
  emit(argv[1], "one", w);
  for (int i = 0; i < 6; i++) {
    wksp_alloc(w, 1u << (i * 2), 1 + test_rng(&rng) % 300, 1 + test_rng(&rng) % 1000, &g);
    uint8_t *p = wksp_laddr(w, g);
    for (int k = 0; k < 20; k++) p[k] = (uint8_t)('a' + k);
  }
  emit(argv[1], "several", w);
  wksp_alloc(w, 64, 1100, UINT64_MAX, &g); /* wide tag, 3-byte SVW size */
  emit(argv[1], "wide", w);
  return 0;
}
