/* Incremental checkpoints (docs/FORMAT.md 13) against limits measured in
 * the same run on the same bytes, 2 threads everywhere (issue 17's targets):
 *
 *  (a) 1% of the 64 KiB pieces changed: a delta since a sealed v3 base
 *      (its sidecar index beside it) against a full v3 checkpoint of the
 *      same state: time (target <= 0.1x) and file size (target <= 0.02x);
 *  (b) restoring base + that delta (wksp_restore_chain) against restoring
 *      one full file of the same state (target <= 1.15x): a sealed one (the
 *      chain checks digests too) and, for reference, an unsealed one;
 *  (c) nothing changed: a delta since the previous delta against XXH3 (the
 *      seal's piece hash) over the same bytes in 64 KiB pieces on 2
 *      threads (target <= 1.0x), computed by the same XXH3 code as the
 *      library's (digest_piece: AVX2 where the CPU has it, else the
 *      build's SSE2/NEON), so the ratio is what a delta costs above
 *      hashing; the line says which code ran.
 *
 * Workspace as bench_checkpt: WKSP_BENCH_MB MiB of data region (default
 * 1024), 90% used by allocations of 64 KiB .. 4 MiB, text-like contents;
 * files in $WKSP_BENCH_DIR (default /dev/shm); WKSP_BENCH_REPS (default 3):
 * each repetition measures every limit and figure once, in the same
 * minute ((c), a 20 ms figure, 10 times: limit and delta alternately, and
 * the median of the pairs' ratios is printed beside); the best of each is
 * kept.  Beside each wall time the process's CPU time of the same run. */
#include <pthread.h>

#include "bench_util.h"
#include "checkpt/checkpt_private.h"
#include <wksp/checkpt.h>
#include <wksp/wksp.h>

enum { PIECE = 65536, THREADS = 2 };

typedef struct {
  double t, cpu;
} fig_t;

enum { PAIRS_C = 10 };

static int dbl_cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static void fig_best(fig_t *best, double t, double cpu) {
  if (t < best->t) best->t = t, best->cpu = cpu;
}

static void die(const char *what) {
  fprintf(stderr, "bench: %s: %s\n", what, wksp_errmsg());
  exit(1);
}

static uint64_t file_size(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) return 0;
  fseek(f, 0, SEEK_END);
  uint64_t n = (uint64_t)ftell(f);
  fclose(f);
  return n;
}

/* ---- the limit of (c): XXH3 over every piece, 2 threads ------------------------------ */

typedef struct {
  const ws_t *s;
  uint64_t k0, k1; /* allocations [k0, k1) */
  uint64_t sum;
} hash_job_t;

static void *hash_main(void *arg) {
  hash_job_t *j = arg;
  uint64_t sum = 0;
  for (uint64_t k = j->k0; k < j->k1; k++) {
    uint64_t lo = j->s->parts[k].gaddr_lo, hi = j->s->parts[k].gaddr_hi;
    const uint8_t *p = wksp_laddr(j->s->w, lo);
    for (uint64_t at = lo; at < hi; at += PIECE) /* seeded by the address, as the seal */
      sum += wksp_private_checkpt_digest_piece(at, p + (at - lo), hi - at < PIECE ? hi - at : PIECE);
  }
  j->sum = sum;
  return NULL;
}

static volatile uint64_t hash_sink;

/* Two threads, each half of the bytes (split at an allocation). */
static double hash_limit(const ws_t *s, double *cpu) {
  uint64_t half = 0, k = 0;
  while (k < s->cnt && half < s->bytes / 2) half += s->parts[k].gaddr_hi - s->parts[k].gaddr_lo, k++;
  hash_job_t j[THREADS] = {{s, 0, k, 0}, {s, k, s->cnt, 0}};
  double t0 = now(), c0 = cpu_now();
  pthread_t th;
  pthread_create(&th, NULL, hash_main, &j[1]);
  hash_main(&j[0]);
  pthread_join(th, NULL);
  *cpu = cpu_now() - c0;
  double t = now() - t0;
  hash_sink = j[0].sum + j[1].sum; /* the hashes are used */
  return t;
}

/* ---- 1% of the pieces changed ----------------------------------------------------------- */

/* One piece in every 100 (a random one of each run of 100 pieces, counted
 * across allocations) gets 256 new text bytes at a random place. */
static uint64_t change_pieces(ws_t *s, uint64_t *rng) {
  uint64_t n = 0, idx = 0, pick = 0;
  for (uint64_t k = 0; k < s->cnt; k++) {
    uint64_t lo = s->parts[k].gaddr_lo, hi = s->parts[k].gaddr_hi;
    for (uint64_t at = lo; at < hi; at += PIECE, idx++) {
      if (idx % 100 == 0) pick = rng_next(rng) % 100;
      if (idx % 100 != pick) continue;
      uint64_t len = hi - at < PIECE ? hi - at : PIECE, w = len < 256 ? len : 256;
      fill_text((uint8_t *)wksp_laddr(s->w, at) + rng_next(rng) % (len - w + 1), w, rng);
      n++;
    }
  }
  return n;
}

/* ---- the figures ------------------------------------------------------------------------ */

static double run_checkpt(wksp_t *w, const char *path, const char *base, int verify, int index, double *cpu) {
  unlink(path);
  wksp_checkpt_opts_t o = {.style = WKSP_CHECKPT_STYLE_V3, .threads = THREADS, .verify = verify, .index = index};
  double t0 = now(), c0 = cpu_now();
  int rc = base ? wksp_checkpt_delta(w, path, base, &o, NULL) : wksp_checkpt(w, path, &o);
  if (rc) die(base ? "delta" : "checkpt");
  *cpu = cpu_now() - c0;
  return now() - t0;
}

static double run_restore(wksp_t *dst, const char *const *chain, size_t n, double *cpu) {
  wksp_restore_opts_t o = {.seed = 1, .threads = THREADS};
  double t0 = now(), c0 = cpu_now();
  int rc = n > 1 ? wksp_restore_chain(dst, chain, n, &o) : wksp_restore(dst, chain[0], &o);
  if (rc) die("restore");
  *cpu = cpu_now() - c0;
  return now() - t0;
}

static void ratio_line(const char *what, const fig_t *f, const fig_t *lim, const char *lim_name, double target) {
  double r = f->t / lim->t;
  printf("  %s: %.3f s (cpu %.3f s) / %s %.3f s (cpu %.3f s) = %.3fx (target <= %.2fx: %s; by cpu %.3fx)\n", what,
         f->t, f->cpu, lim_name, lim->t, lim->cpu, r, target, r <= target ? "met" : "MISSED", f->cpu / lim->cpu);
}

int main(void) {
  bench_env_t env;
  ws_t s;
  wksp_t *dst;
  bench_setup(&env, &s, &dst);
  uint64_t rng = 777; /* the changes */
  const char *dir = env.dir;
  ws_content(&s, 1, 1);
  char base[512], full[512], sealed[512], delta[512], delta0[512];
  int pid = (int)getpid(); /* per process: two runs at once */
  snprintf(base, sizeof base, "%s/wksp-bench-delta.%d.base", dir, pid);
  snprintf(full, sizeof full, "%s/wksp-bench-delta.%d.full", dir, pid);
  snprintf(sealed, sizeof sealed, "%s/wksp-bench-delta.%d.sealed", dir, pid);
  snprintf(delta, sizeof delta, "%s/wksp-bench-delta.%d.delta", dir, pid);
  snprintf(delta0, sizeof delta0, "%s/wksp-bench-delta.%d.delta0", dir, pid);
  double cpu;
  /* The base: sealed, with its sidecar (what a service writing deltas keeps). */
  double tb = run_checkpt(s.w, base, NULL, 1, 1, &cpu);
  uint64_t changed = change_pieces(&s, &rng);
  /* A sealed full file of the changed state, restored in (b). */
  run_checkpt(s.w, sealed, NULL, 1, 0, &cpu);
  uint64_t pieces = 0;
  for (uint64_t k = 0; k < s.cnt; k++) pieces += (s.parts[k].gaddr_hi - s.parts[k].gaddr_lo + PIECE - 1) / PIECE;
  printf("workspace: %" PRIu64 " MiB data region, %" PRIu64 " allocations (64 KiB..4 MiB), %" PRIu64
         " bytes used, text-like; "
         "%" PRIu64 " of %" PRIu64
         " pieces changed since the base (sealed v3 with index, written in %.3f s); %u threads; "
         "files in %s; best of %d\n",
         env.mb, s.cnt, s.bytes, changed, pieces, tb, THREADS, dir, env.reps);
  fig_t full_c = {1e9, 0}, delta_c = {1e9, 0}, rest_full = {1e9, 0}, rest_sealed = {1e9, 0}, rest_chain = {1e9, 0};
  fig_t delta0_c = {1e9, 0}, xxh = {1e9, 0};
  const char *chain[2] = {base, delta}, *one_full[1] = {full}, *one_sealed[1] = {sealed};
  double pair[1024]; /* (c): delta / limit of each pair */
  int npair = 0;
  for (int r = 0; r < env.reps; r++) {
    double t = run_checkpt(s.w, full, NULL, 0, 0, &cpu);
    fig_best(&full_c, t, cpu);
    t = run_checkpt(s.w, delta, base, 0, 0, &cpu);
    fig_best(&delta_c, t, cpu);
    t = run_restore(dst, one_full, 1, &cpu);
    fig_best(&rest_full, t, cpu);
    t = run_restore(dst, one_sealed, 1, &cpu);
    fig_best(&rest_sealed, t, cpu);
    t = run_restore(dst, chain, 2, &cpu);
    fig_best(&rest_chain, t, cpu);
    /* (c) is about 20 ms a run, so short that one run of either side can
     * land on a hiccup of the machine: PAIRS_C pairs per repetition. */
    for (int i = 0; i < PAIRS_C; i++) {
      double tl = hash_limit(&s, &cpu);
      fig_best(&xxh, tl, cpu);
      t = run_checkpt(s.w, delta0, delta, 0, 0, &cpu); /* nothing changed since `delta` */
      fig_best(&delta0_c, t, cpu);
      if (npair < (int)(sizeof pair / sizeof *pair)) pair[npair++] = t / tl;
    }
  }
  uint64_t fsz = file_size(full), dsz = file_size(delta), d0sz = file_size(delta0);
  double gb = (double)s.bytes / 1e9;
  printf("\ndelta checkpoints, text-like contents, %u threads:\n", THREADS);
  ratio_line("(a) delta checkpoint, 1% of pieces changed", &delta_c, &full_c, "full v3 checkpoint", 0.1);
  double sr = (double)dsz / (double)fsz;
  printf("  (a) delta file %" PRIu64 " bytes / full v3 file %" PRIu64
         " bytes = %.4fx (target <= 0.02x: %s)\n",
         dsz, fsz, sr, sr <= 0.02 ? "met" : "MISSED");
  ratio_line("(b) restore base + delta", &rest_chain, &rest_sealed, "restore of a sealed full file", 1.15);
  ratio_line("(b) restore base + delta", &rest_chain, &rest_full, "restore of an unsealed full file", 1.15);
  ratio_line("(c) delta checkpoint, nothing changed", &delta0_c, &xxh, "XXH3 over the same bytes", 1.0);
  qsort(pair, (size_t)npair, sizeof *pair, dbl_cmp);
  printf("      (best of %d pairs; the pairs' ratios: median %.3fx, range %.3f-%.3fx; XXH3 limit: %.2f GB/s, %s; "
         "the unchanged delta is %" PRIu64 " bytes)\n",
         npair, pair[npair / 2], pair[0], pair[npair - 1], gb / xxh.t, wksp_private_checkpt_digest_impl(), d0sz);
  fflush(stdout);
  unlink(base);
  char side[600];
  snprintf(side, sizeof side, "%s.wkspidx", base);
  unlink(side);
  unlink(full);
  unlink(sealed);
  unlink(delta);
  unlink(delta0);
  return 0;
}
