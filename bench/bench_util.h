/* Shared by the checkpoint benchmarks (bench_checkpt.c, bench_cli.c): clocks,
 * the workspace contents (allocations of 64 KiB .. 4 MiB filling 90% of the
 * data region; text-like of LZ4 ratio ~2 or random) and one timed write(2). */
#ifndef WKSP_BENCH_UTIL_H
#define WKSP_BENCH_UTIL_H

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <wksp/wksp.h>

/* CPU seconds used by this process (all threads) so far. */
static inline double cpu_now(void) {
  struct rusage u;
  getrusage(RUSAGE_SELF, &u);
  return (double)(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         1e-6 * (double)(u.ru_utime.tv_usec + u.ru_stime.tv_usec);
}

static inline double thread_cpu_now(void) {
  struct timespec t;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static inline double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static inline uint64_t rng_next(uint64_t *s) {
  uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

static inline void fill_text(uint8_t *p, uint64_t sz, uint64_t *rng) {
  static const char *const words[] = {
      "slot",  "leader", "vote",   "bank",   "transaction", "shred",  "entry",   "block",
      "fee",   "signer", "hash",   "parent", "root",        "epoch",  "stake",   "account",
      "index", "replay", "gossip", "repair", "turbine",     "poh",    "tick",    "ledger",
      "write", "read",   "lock",   "commit", "success",     "failed", "program", "readonly"};
  uint64_t i = 0;
  while (i < sz) {
    uint64_t r = rng_next(rng);
    char tok[32];
    int n = r % 5 == 0 ? snprintf(tok, sizeof tok, "%" PRIu64, (r >> 8) % 1000000)
                       : snprintf(tok, sizeof tok, "%s", words[(r >> 8) % 32]);
    char sep = (r >> 40) % 9 == 0 ? '\n' : (r >> 40) % 7 == 0 ? '=' : ' ';
    for (int k = 0; k < n && i < sz; k++) p[i++] = (uint8_t)tok[k];
    if (i < sz) p[i++] = (uint8_t)sep;
  }
}

static inline void fill_random(uint8_t *p, uint64_t sz, uint64_t *rng) {
  for (uint64_t i = 0; i < sz; i += 8) {
    uint64_t x = rng_next(rng);
    memcpy(p + i, &x, sz - i < 8 ? sz - i : 8);
  }
}

/* A workspace and the allocations the benchmark made in it. */
typedef struct {
  wksp_t *w;
  wksp_part_t *parts;
  uint64_t cnt, bytes;
} ws_t;

/* Allocations of 64 KiB .. 4 MiB until 90% of data_max is used. */
static inline void ws_fill(ws_t *s, uint64_t data_max, uint64_t *rng) {
  uint64_t target = data_max / 10 * 9;
  s->parts = calloc(data_max / 65536 + 16, sizeof *s->parts);
  if (!s->parts) {
    fprintf(stderr, "bench: no memory for the allocation list\n");
    exit(1);
  }
  while (s->bytes < target) {
    uint64_t sz = 65536 + rng_next(rng) % (4 * 1048576 - 65536 + 1);
    if (sz > target - s->bytes) sz = target - s->bytes;
    if (sz < 4096) break;
    uint64_t g, lo, hi;
    if (wksp_alloc_at_least(s->w, 0, sz, 1 + rng_next(rng) % 100, &g, &lo, &hi)) break;
    s->parts[s->cnt++] = (wksp_part_t){lo, hi, 1};
    s->bytes += hi - lo;
  }
}

/* Fills every allocation with text-like (text != 0) or random bytes. */
static inline void ws_content(ws_t *s, int text, uint64_t seed) {
  uint64_t rng = seed;
  for (uint64_t k = 0; k < s->cnt; k++) {
    uint8_t *p = wksp_laddr(s->w, s->parts[k].gaddr_lo);
    uint64_t sz = s->parts[k].gaddr_hi - s->parts[k].gaddr_lo;
    if (text) fill_text(p, sz, &rng);
    else fill_random(p, sz, &rng);
  }
}

/* A workspace in private memory with every page of its data region
 * touched (a first touch must not be measured). */
static inline wksp_t *ws_make(uint64_t data_max, uint64_t part_max) {
  uint64_t fp = wksp_footprint(part_max, data_max);
  void *mem = aligned_alloc(4096, (fp + 4095) & ~4095ull);
  wksp_t *w = NULL;
  if (!mem || wksp_new(mem, "bench", 1, part_max, data_max, &w)) {
    fprintf(stderr, "bench: cannot create a %" PRIu64 "-byte workspace: %s\n", fp, wksp_errmsg());
    exit(1);
  }
  memset((uint8_t *)w + wksp_gaddr_lo(w), 0, data_max); /* fault the pages in */
  return w;
}

/* The knobs the checkpoint benchmarks share: WKSP_BENCH_MB (data region,
 * default 1024 MiB), WKSP_BENCH_REPS (default 3), WKSP_BENCH_DIR (default
 * /dev/shm). */
typedef struct {
  uint64_t mb;
  int reps;
  const char *dir;
} bench_env_t;

/* Reads the knobs, makes the source workspace (filled by ws_fill, contents
 * not yet written) and a target of the same geometry. */
static inline void bench_setup(bench_env_t *b, ws_t *s, wksp_t **dst) {
  const char *e = getenv("WKSP_BENCH_MB");
  b->mb = e ? strtoull(e, NULL, 0) : 1024;
  e = getenv("WKSP_BENCH_REPS");
  b->reps = e ? atoi(e) : 3;
  b->dir = getenv("WKSP_BENCH_DIR");
  if (!b->dir) b->dir = "/dev/shm";
  uint64_t data_max = b->mb << 20, part_max = data_max / 65536 * 2 + 64, rng = 12345;
  *s = (ws_t){.w = ws_make(data_max, part_max)};
  *dst = ws_make(data_max, part_max);
  ws_fill(s, data_max, &rng);
}

/* One write(2) of n bytes into a new file in dir, timed; the file is removed. */
static inline double write_once(const uint8_t *buf, uint64_t n, const char *dir) {
  char p[512];
  snprintf(p, sizeof p, "%s/wksp-bench-write.%d.bin", dir, (int)getpid()); /* per process: two runs at once */
  unlink(p);
  int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  if (fd < 0) {
    fprintf(stderr, "bench: %s: %s\n", p, strerror(errno));
    exit(1);
  }
  double t0 = now();
  uint64_t done = 0;
  while (done < n) {
    ssize_t k = write(fd, buf + done, n - done);
    if (k <= 0) {
      fprintf(stderr, "bench: write %s: %s\n", p, k ? strerror(errno) : "wrote nothing");
      exit(1);
    }
    done += (uint64_t)k;
  }
  double t = now() - t0;
  close(fd);
  unlink(p);
  return t;
}

/* The best of two write_once: on this kind of VM (virtio-balloon free page
 * reporting) memory left free for a few seconds goes back to the host, and
 * the first touch of such a page costs a host fault (a first write of 1 GB
 * took 1.4-3.2 s, the next 0.33 s).  Every checkpoint in the figures
 * writes into the pages that the previous file, unlinked just before, gave
 * back: so must the limit. */
static inline double write_best2(const uint8_t *buf, uint64_t n, const char *dir) {
  double a = write_once(buf, n, dir), b = write_once(buf, n, dir);
  return a < b ? a : b;
}

#endif
