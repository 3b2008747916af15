/* Allocator benchmark: 10^5 allocations of random sizes 1 B .. 64 KiB with
 * the default alignment (4096), then freed in random order; ns per alloc and
 * per free, and the same sequence with malloc/free for comparison.
 *   make bench        (or build/bench/bench_alloc [rounds]) */
#include "wksp/wksp.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>

enum { N = 100000 };

static uint64_t rng_next(uint64_t *s) {
  uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

static double now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return 1e9 * (double)ts.tv_sec + (double)ts.tv_nsec;
}

static uint64_t sz[N], gaddr[N];
static uint32_t order[N];
static void *ptr[N];

int main(int argc, char **argv) {
  int rounds = argc > 1 ? atoi(argv[1]) : 5;
  uint64_t s = 42, total = 0;
  for (int i = 0; i < N; i++) {
    sz[i] = 1 + rng_next(&s) % 65536;
    total += sz[i] + 4096;
    order[i] = (uint32_t)i;
  }
  for (int i = N - 1; i > 0; i--) {
    uint32_t j = (uint32_t)(rng_next(&s) % (uint64_t)(i + 1)), t = order[i];
    order[i] = order[j];
    order[j] = t;
  }
  uint64_t part_max = 3 * N, data_max = total + (1 << 20);
  size_t fp = wksp_footprint(part_max, data_max);
  void *mem = mmap(NULL, fp, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (mem != MAP_FAILED) madvise(mem, fp, MADV_HUGEPAGE);
  wksp_t *w;
  if (mem == MAP_FAILED || wksp_new(mem, "bench", 1, part_max, data_max, &w)) {
    fprintf(stderr, "bench_alloc: cannot create a %zu-byte workspace: %s\n", fp, wksp_errmsg());
    return 1;
  }
  double best_a = 1e30, best_f = 1e30, best_ma = 1e30, best_mf = 1e30;
  for (int r = 0; r < rounds; r++) {
    double t0 = now_ns();
    for (int i = 0; i < N; i++)
      if (wksp_alloc(w, 0, sz[i], 1, &gaddr[i])) {
        fprintf(stderr, "bench_alloc: alloc %d: %s\n", i, wksp_errmsg());
        return 1;
      }
    double t1 = now_ns();
    for (int i = 0; i < N; i++)
      if (wksp_free(w, gaddr[order[i]])) {
        fprintf(stderr, "bench_alloc: free: %s\n", wksp_errmsg());
        return 1;
      }
    double t2 = now_ns();
    for (int i = 0; i < N; i++) ptr[i] = malloc(sz[i]);
    double t3 = now_ns();
    for (int i = 0; i < N; i++) free(ptr[order[i]]);
    double t4 = now_ns();
    if (t1 - t0 < best_a) best_a = t1 - t0;
    if (t2 - t1 < best_f) best_f = t2 - t1;
    if (t3 - t2 < best_ma) best_ma = t3 - t2;
    if (t4 - t3 < best_mf) best_mf = t4 - t3;
  }
  if (wksp_verify(w)) {
    fprintf(stderr, "bench_alloc: verify: %s\n", wksp_errmsg());
    return 1;
  }
  printf("bench_alloc: %d allocations of 1 B..64 KiB (align 4096), random free order, best of %d rounds\n", N,
         rounds);
  printf("  wksp   alloc %7.1f ns/op   free %7.1f ns/op   pair %7.1f ns\n", best_a / N, best_f / N,
         (best_a + best_f) / N);
  printf("  malloc alloc %7.1f ns/op   free %7.1f ns/op   pair %7.1f ns\n", best_ma / N, best_mf / N,
         (best_ma + best_mf) / N);
  munmap(mem, fp);
  return 0;
}
