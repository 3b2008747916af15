/* Allocator benchmark: 10^5 allocations of random sizes 1 B .. 64 KiB with
 * the default alignment (4096), then freed in random order; ns per alloc and
 * per free, and the same sequence with malloc/free for comparison.  Times
 * are this thread's CPU time (stable on a loaded machine), best of rounds.
 *   make bench        (or build/bench/bench_alloc [rounds [allocations]]) */
#include "wksp/wksp.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>

enum { N_MAX = 100000 };
static int N = N_MAX;

static uint64_t rng_next(uint64_t *s) {
  uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

static double now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return 1e9 * (double)ts.tv_sec + (double)ts.tv_nsec;
}

static uint64_t sz[N_MAX], gaddr[N_MAX];
static uint32_t order[N_MAX];
static void *ptr[N_MAX];

/* One measurement on a fresh workspace: shared 4 KiB pages (what a /dev/shm
 * workspace gets) or private memory with transparent huge pages (what a
 * hugetlbfs workspace gets: far fewer TLB misses on the metadata). */
static int run_wksp(uint64_t total, int rounds, int huge) {
  uint64_t part_max = 3 * (uint64_t)N, data_max = total + (1 << 20);
  size_t fp = wksp_footprint(part_max, data_max);
  int flags = (huge ? MAP_PRIVATE : MAP_SHARED) | MAP_ANONYMOUS | MAP_NORESERVE;
  void *mem = mmap(NULL, fp, PROT_READ | PROT_WRITE, flags, -1, 0);
  if (mem != MAP_FAILED && huge) madvise(mem, fp, MADV_HUGEPAGE);
  wksp_t *w;
  if (mem == MAP_FAILED || wksp_new(mem, "bench", 1, part_max, data_max, &w)) {
    fprintf(stderr, "bench_alloc: cannot create a %zu-byte workspace: %s\n", fp, wksp_errmsg());
    return 1;
  }
  double best_a = 1e30, best_f = 1e30;
  int rc = 0;
  for (int r = 0; r < rounds && !rc; r++) {
    double t0 = now_ns();
    for (int i = 0; i < N && !rc; i++) rc = wksp_alloc(w, 0, sz[i], 1, &gaddr[i]);
    double t1 = now_ns();
    for (int i = 0; i < N && !rc; i++) rc = wksp_free(w, gaddr[order[i]]);
    double t2 = now_ns();
    if (t1 - t0 < best_a) best_a = t1 - t0;
    if (t2 - t1 < best_f) best_f = t2 - t1;
  }
  if (!rc) rc = wksp_verify(w);
  if (rc) fprintf(stderr, "bench_alloc: %s\n", wksp_errmsg());
  else
    printf("  %-24s alloc %7.1f ns/op   free %7.1f ns/op   pair %7.1f ns\n",
           huge ? "wksp (private, THP)" : "wksp (shared, 4K pages)", best_a / N, best_f / N, (best_a + best_f) / N);
  munmap(mem, fp);
  return rc != 0;
}

int main(int argc, char **argv) {
  int rounds = argc > 1 ? atoi(argv[1]) : 5;
  if (argc > 2) N = atoi(argv[2]);
  if (rounds < 1 || N < 1 || N > N_MAX) {
    fprintf(stderr, "usage: bench_alloc [rounds [allocations <= %d]]\n", N_MAX);
    return 1;
  }
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
  printf("bench_alloc: %d allocations of 1 B..64 KiB (align 4096), random free order, best of %d rounds\n", N,
         rounds);
  double ma = 1e30, mf = 1e30;
  for (int r = 0; r < rounds; r++) {
    double t0 = now_ns();
    for (int i = 0; i < N; i++) ptr[i] = malloc(sz[i]);
    double t1 = now_ns();
    for (int i = 0; i < N; i++) free(ptr[order[i]]);
    double t2 = now_ns();
    if (t1 - t0 < ma) ma = t1 - t0;
    if (t2 - t1 < mf) mf = t2 - t1;
  }
  if (run_wksp(total, rounds, 0) || run_wksp(total, rounds, 1)) return 1;
  printf("  %-24s alloc %7.1f ns/op   free %7.1f ns/op   pair %7.1f ns\n", "malloc", ma / N, mf / N, (ma + mf) / N);
  return 0;
}
