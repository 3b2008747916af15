/* Allocator benchmark: 10^5 allocations of random sizes 1 B .. 64 KiB with
 * the default alignment (4096), then freed in random order; ns per alloc and
 * per free, side by side with the same sequence through malloc/free, and the
 * ratio of the pairs (wksp / malloc).
 *
 * What is measured, the same way for every allocator:
 *   - one untimed warm-up round first, so that no timed round pays first-touch
 *     page faults (wksp's metadata; malloc's heap, which the warm-up touches
 *     page by page, since malloc's headers land in the data at addresses
 *     that shift from round to round); malloc keeps 64 KiB blocks on its
 *     heap (fixed M_MMAP_THRESHOLD) and a block pinned above them stops it
 *     from returning the heap to the kernel between rounds (the faults/pair
 *     column shows what is left);
 *   - the best of the timed rounds, both in this thread's CPU time (steadier
 *     on a shared machine) and in wall time (includes preemption);
 *   - the allocators never touch the data they hand out beyond their own
 *     headers (malloc writes one into each block, wksp keeps its records
 *     apart from the data).
 *   make bench        (or build/bench/bench_alloc [rounds [allocations]]) */
#include <wksp/wksp.h>

#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <time.h>

enum { N_MAX = 100000 };
static int N = N_MAX;

static uint64_t rng_next(uint64_t *s) {
  uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

static double clock_ns(clockid_t id) {
  struct timespec ts;
  clock_gettime(id, &ts);
  return 1e9 * (double)ts.tv_sec + (double)ts.tv_nsec;
}

/* Times of one phase: thread CPU and wall. */
typedef struct {
  double cpu, wall, faults;
} stamp_t;

static stamp_t stamp(void) {
  struct rusage ru;
  getrusage(RUSAGE_THREAD, &ru);
  return (stamp_t){clock_ns(CLOCK_THREAD_CPUTIME_ID), clock_ns(CLOCK_MONOTONIC), (double)ru.ru_minflt + (double)ru.ru_majflt};
}

/* Best (smallest) alloc and free phase times over the timed rounds. */
typedef struct {
  const char *name;
  double alloc_cpu, free_cpu, alloc_wall, free_wall;
  double faults; /* page faults in all timed rounds */
  int rounds;
} result_t;

static void result_add(result_t *r, stamp_t t0, stamp_t t1, stamp_t t2) {
  if (t1.cpu - t0.cpu < r->alloc_cpu) r->alloc_cpu = t1.cpu - t0.cpu;
  if (t2.cpu - t1.cpu < r->free_cpu) r->free_cpu = t2.cpu - t1.cpu;
  if (t1.wall - t0.wall < r->alloc_wall) r->alloc_wall = t1.wall - t0.wall;
  if (t2.wall - t1.wall < r->free_wall) r->free_wall = t2.wall - t1.wall;
  r->faults += t2.faults - t0.faults;
  r->rounds++;
}

static result_t result_new(const char *name) { return (result_t){name, 1e30, 1e30, 1e30, 1e30, 0, 0}; }

static uint64_t sz[N_MAX], gaddr[N_MAX];
static uint32_t order[N_MAX];
static void *ptr[N_MAX];

/* Round 0 is the untimed warm-up. */
static void run_malloc(int rounds, result_t *res) {
  void *pin = NULL;
  mallopt(M_MMAP_THRESHOLD, 1 << 20);
  for (int r = 0; r <= rounds; r++) {
    stamp_t t0 = stamp();
    for (int i = 0; i < N; i++) ptr[i] = malloc(sz[i]);
    stamp_t t1 = stamp();
    /* A block above the others, never freed: the freed heap cannot merge
     * into the top chunk, so glibc cannot trim it (M_TRIM_THRESHOLD is an
     * int, smaller than this heap) and later rounds do not fault it in. */
    if (!pin) {
      pin = malloc(4096);
      /* Later rounds place blocks, hence malloc's headers, at slightly
       * different addresses (its bins and caches hold what the previous
       * round freed): fault in every page of the heap now, so that no
       * timed round pays a first touch. */
      for (int i = 0; i < N; i++)
        for (uint64_t o = 0; o < sz[i]; o += 4096) ((volatile char *)ptr[i])[o] = 0;
    }
    for (int i = 0; i < N; i++) free(ptr[order[i]]);
    stamp_t t2 = stamp();
    if (r) result_add(res, t0, t1, t2);
  }
  free(pin);
}

/* One workspace: shared 4 KiB pages (what a /dev/shm workspace gets) or
 * private memory with transparent huge pages (what a hugetlbfs workspace
 * gets: far fewer TLB misses on the metadata). */
static int run_wksp(uint64_t total, int rounds, int huge, result_t *res) {
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
  int rc = 0;
  for (int r = 0; r <= rounds && !rc; r++) {
    stamp_t t0 = stamp();
    for (int i = 0; i < N && !rc; i++) rc = wksp_alloc(w, 0, sz[i], 1, &gaddr[i]);
    stamp_t t1 = stamp();
    for (int i = 0; i < N && !rc; i++) rc = wksp_free(w, gaddr[order[i]]);
    stamp_t t2 = stamp();
    if (r) result_add(res, t0, t1, t2);
  }
  if (!rc) rc = wksp_verify(w);
  if (rc) fprintf(stderr, "bench_alloc: %s\n", wksp_errmsg());
  munmap(mem, fp);
  return rc != 0;
}

static void print_row(const char *clock, const result_t *r, const result_t *base) {
  double pair = (r->alloc_cpu + r->free_cpu) / N, base_pair = (base->alloc_cpu + base->free_cpu) / N;
  double a = r->alloc_cpu, f = r->free_cpu;
  if (clock[0] == 'w') {
    pair = (r->alloc_wall + r->free_wall) / N;
    base_pair = (base->alloc_wall + base->free_wall) / N;
    a = r->alloc_wall;
    f = r->free_wall;
  }
  printf("  %-24s %-4s alloc %7.1f   free %7.1f   pair %7.1f ns   x%.2f malloc   %.3f faults/pair\n", r->name,
         clock, a / N, f / N, pair, pair / base_pair, r->faults / ((double)r->rounds * N));
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
  printf("bench_alloc: %d allocations of 1 B..64 KiB (align 4096), random free order; 1 warm-up + best of %d "
         "rounds; ns per op (cpu: thread CPU time, wall: elapsed)\n",
         N, rounds);
  result_t m = result_new("malloc"), ws = result_new("wksp (shared, 4K pages)"), wh = result_new("wksp (private, THP)");
  run_malloc(rounds, &m);
  if (run_wksp(total, rounds, 0, &ws) || run_wksp(total, rounds, 1, &wh)) return 1;
  const result_t *rows[] = {&m, &ws, &wh};
  for (int k = 0; k < 3; k++) print_row("cpu", rows[k], &m);
  for (int k = 0; k < 3; k++) print_row("wall", rows[k], &m);
  return 0;
}
