/* Checkpoint / restore throughput beside the limits measured in the same
 * run on the same bytes: liblz4 compression and decompression on one core
 * (64 KiB blocks, the frame layer's chunk size), one memcpy, one write(2).
 *
 * Workspace: WKSP_BENCH_MB MiB of data region (default 1024), filled to 90%
 * with allocations of 64 KiB .. 4 MiB; contents text-like (LZ4 ~2:1) then
 * random.  Files go to $WKSP_BENCH_DIR (default /dev/shm, tmpfs).
 * WKSP_BENCH_REPS (default 3): best of that many runs per figure; each
 * repetition measures the limits and every figure once.
 * WKSP_BENCH_DATA=text|random: only one data set; WKSP_BENCH_STYLE=2|3: only
 * one checkpoint style.
 *
 * On a shared machine wall-clock times mostly show the load; beside each
 * checkpoint the CPU time of the whole process and of the calling thread
 * (which compresses; v3 writes from another thread) are printed for the
 * same best run, and the "cpu" ratios compare them with liblz4's CPU time:
 * 1 thread: lz4 cpu / calling thread cpu (the compressing thread is the
 * critical path when a second core takes the writes); 2 threads: lz4 cpu /
 * (process cpu / 2) (the speed-up two fully used cores would give).  A
 * second reference is liblz4 compressing the same chunks as one stream per
 * 32 allocations (prefix mode), the history a cgroup frame has. */
#include <lz4.h>
#include <spawn.h>
#include <sys/wait.h>

#include "bench_util.h"
#include <wksp/checkpt.h>
#include <wksp/wksp.h>

/* CPU seconds of the best run of the last run_* call (so that a loaded
 * machine, where threads wait for a core, can still be read): the process,
 * and the calling thread. */
static double last_cpu, last_thread_cpu;

/* ---- limits ----------------------------------------------------------------------------- */

typedef struct {
  double lz4c, lz4d, memcpy_s, write_s;
  double lz4c_cpu, lz4d_cpu; /* CPU seconds of the same best runs */
  double lz4s_cpu;           /* streaming compression (see limits), CPU seconds */
  uint64_t csz;
} limits_t;

/* Buffers of the limit measurements, allocated and touched once per data
 * set (a first touch costs page faults that the limits must not pay). */
typedef struct {
  uint8_t *flat, *back, *comp;
  uint32_t *csz;
  LZ4_stream_t *stream;
} lim_bufs_t;

static void lim_bufs_init(lim_bufs_t *b, const ws_t *s) {
  uint64_t cap = (uint64_t)LZ4_compressBound(65536) * (s->bytes / 65536 + s->cnt + 1);
  b->flat = malloc(s->bytes);
  b->back = malloc(s->bytes);
  b->comp = malloc(cap);
  b->csz = malloc((s->bytes / 65536 + 2) * sizeof *b->csz);
  b->stream = LZ4_createStream();
  if (!b->flat || !b->back || !b->comp || !b->csz || !b->stream) {
    fprintf(stderr, "bench: no memory for the limit buffers\n");
    exit(1);
  }
  uint64_t at = 0;
  for (uint64_t k = 0; k < s->cnt; k++) {
    uint64_t sz = s->parts[k].gaddr_hi - s->parts[k].gaddr_lo;
    memcpy(b->flat + at, wksp_laddr(s->w, s->parts[k].gaddr_lo), sz);
    at += sz;
  }
  memset(b->back, 1, s->bytes);
  memset(b->comp, 1, cap);
}

static void lim_bufs_fini(lim_bufs_t *b) {
  LZ4_freeStream(b->stream);
  free(b->csz);
  free(b->flat);
  free(b->back);
  free(b->comp);
}

/* One measurement of every limit. */
static void limits(const ws_t *s, const lim_bufs_t *bufs, const char *dir, limits_t *L) {
  uint8_t *flat = bufs->flat, *back = bufs->back, *comp = bufs->comp;
  uint32_t *csz = bufs->csz;
  LZ4_stream_t *stream = bufs->stream;
  /* liblz4 on 64 KiB blocks (the frame layer's chunk size), each block
   * independent: the plain one-core speed of the library on these bytes. */
  double t0 = now(), c0 = cpu_now();
  uint64_t out = 0, nb = 0;
  for (uint64_t off = 0; off < s->bytes; off += 65536, nb++) {
    int n = (int)(s->bytes - off < 65536 ? s->bytes - off : 65536);
    int c = LZ4_compress_default((const char *)flat + off, (char *)comp + out, n,
                                 LZ4_compressBound(n));
    csz[nb] = (uint32_t)c;
    out += (uint64_t)c;
  }
  L->lz4c = now() - t0;
  L->lz4c_cpu = cpu_now() - c0;
  L->csz = out;
  uint64_t in = 0;
  t0 = now();
  c0 = cpu_now();
  nb = 0;
  for (uint64_t off = 0; off < s->bytes; off += 65536, nb++) {
    int n = (int)(s->bytes - off < 65536 ? s->bytes - off : 65536);
    LZ4_decompress_safe((const char *)comp + in, (char *)back + off, (int)csz[nb], n);
    in += csz[nb];
  }
  L->lz4d = now() - t0;
  L->lz4d_cpu = cpu_now() - c0;
  /* The same 64 KiB chunks as one LZ4 stream per 32 allocations (a cgroup
   * frame's history, in prefix mode): what a format with history costs
   * even without the reference's ring (whose wraps switch LZ4 to its
   * slower external-dictionary mode). */
  c0 = cpu_now();
  out = 0; /* after the decompression: comp is free again */
  uint64_t pos = 0;
  for (uint64_t k = 0; k < s->cnt; k++) {
    uint64_t sz = s->parts[k].gaddr_hi - s->parts[k].gaddr_lo;
    if (k % 32 == 0) LZ4_resetStream_fast(stream);
    for (uint64_t q = 0; q < sz; q += 65536) {
      int n = (int)(sz - q < 65536 ? sz - q : 65536);
      out += (uint64_t)LZ4_compress_fast_continue(stream, (const char *)flat + pos + q,
                                                  (char *)comp + out, n, LZ4_compressBound(n), 1);
    }
    pos += sz;
  }
  L->lz4s_cpu = cpu_now() - c0;
  t0 = now();
  memcpy(back, flat, s->bytes);
  L->memcpy_s = now() - t0;
  L->write_s = write_best2(flat, s->bytes, dir);
}

/* The best of two measurements of the limits, each with its CPU time. */
static void limits_merge(limits_t *best, const limits_t *l) {
  if (l->lz4c < best->lz4c) best->lz4c = l->lz4c, best->lz4c_cpu = l->lz4c_cpu;
  if (l->lz4d < best->lz4d) best->lz4d = l->lz4d, best->lz4d_cpu = l->lz4d_cpu;
  if (l->lz4s_cpu < best->lz4s_cpu) best->lz4s_cpu = l->lz4s_cpu;
  if (l->memcpy_s < best->memcpy_s) best->memcpy_s = l->memcpy_s;
  if (l->write_s < best->write_s) best->write_s = l->write_s;
  best->csz = l->csz;
}

/* One style and thread count: the best checkpoint (with its CPU times and
 * file size), file restore and pipe restore (with their CPU times). */
typedef struct {
  double c, c_cpu, c_tcpu, r, r_cpu, rp, rp_cpu;
  double r2; /* restore from the same file again (its pages warm in the page cache) */
  double cv; /* checkpoint with verify (read back and compared before publishing) */
  double rs; /* restore of the sealed file that writes (again: its pages warm) */
  uint64_t fsz;
} fig_t;

/* ---- checkpoint / restore ------------------------------------------------------------------ */

static double run_checkpt(wksp_t *w, const char *path, int style, uint32_t threads, int verify,
                          int reps, uint64_t *fsz) {
  double best = 1e9;
  for (int r = 0; r < reps; r++) {
    unlink(path);
    wksp_checkpt_opts_t o = {.style = style, .threads = threads, .verify = verify};
    double t0 = now(), c0 = cpu_now(), tc0 = thread_cpu_now();
    if (wksp_checkpt(w, path, &o)) {
      fprintf(stderr, "bench: checkpt: %s\n", wksp_errmsg());
      exit(1);
    }
    double t = now() - t0;
    if (t < best) {
      best = t;
      last_cpu = cpu_now() - c0;
      last_thread_cpu = thread_cpu_now() - tc0;
    }
  }
  FILE *f = fopen(path, "rb");
  fseek(f, 0, SEEK_END);
  *fsz = (uint64_t)ftell(f);
  fclose(f);
  return best;
}

static double run_restore(wksp_t *dst, const char *path, uint32_t threads, int reps) {
  double best = 1e9;
  for (int r = 0; r < reps; r++) {
    wksp_restore_opts_t o = {.seed = 1, .threads = threads};
    double t0 = now(), c0 = cpu_now();
    if (wksp_restore(dst, path, &o)) {
      fprintf(stderr, "bench: restore: %s\n", wksp_errmsg());
      exit(1);
    }
    double t = now() - t0;
    if (t < best) {
      best = t;
      last_cpu = cpu_now() - c0;
    }
  }
  return best;
}

/* Restore from a pipe fed by cat(1) (posix_spawn: no copy of this big
 * process's page tables, unlike fork). */
static double run_restore_pipe(wksp_t *dst, const char *path, uint32_t threads, int reps) {
  double best = 1e9;
  for (int r = 0; r < reps; r++) {
    int p[2];
    if (pipe(p)) exit(1);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, p[1], 1);
    posix_spawn_file_actions_addclose(&fa, p[0]);
    posix_spawn_file_actions_addclose(&fa, p[1]);
    char *argv[] = {"cat", (char *)path, NULL};
    extern char **environ;
    double t0 = now(), c0 = cpu_now();
    pid_t pid;
    if (posix_spawnp(&pid, "cat", &fa, NULL, argv, environ)) exit(1);
    posix_spawn_file_actions_destroy(&fa);
    close(p[1]);
    wksp_restore_opts_t o = {.seed = 1, .threads = threads};
    if (wksp_restore_fd(dst, p[0], "pipe", &o)) {
      fprintf(stderr, "bench: restore from pipe: %s\n", wksp_errmsg());
      exit(1);
    }
    close(p[0]);
    waitpid(pid, NULL, 0);
    double t = now() - t0;
    if (t < best) {
      best = t;
      last_cpu = cpu_now() - c0;
    }
  }
  return best;
}

int main(void) {
  bench_env_t env;
  ws_t s;
  wksp_t *dst;
  bench_setup(&env, &s, &dst);
  uint64_t mb = env.mb;
  int reps = env.reps;
  const char *dir = env.dir;
  printf("workspace: %" PRIu64 " MiB data region, %" PRIu64 " allocations (64 KiB..4 MiB), %" PRIu64
         " bytes used "
         "(%.0f%%); "
         "files in %s; best of %d\n",
         mb, s.cnt, s.bytes, 100.0 * (double)s.bytes / (double)(mb << 20), dir, reps);
  char path[512];
  snprintf(path, sizeof path, "%s/wksp-bench.%d.ckpt", dir, (int)getpid()); /* per process: two runs at once */
  double gb = (double)s.bytes / 1e9;
  const char *only_data = getenv("WKSP_BENCH_DATA"), *only_style = getenv("WKSP_BENCH_STYLE");
  for (int text = 1; text >= 0; text--) {
    if (only_data && strcmp(only_data, text ? "text" : "random")) continue;
    ws_content(&s, text, text ? 1 : 2);
    /* Every repetition measures the limits and then each figure once, and
     * each is the best over the repetitions: limits and figures are sampled
     * over the same minutes, so a change in the machine's speed between
     * them (other tenants of the host) does not show up as a ratio. */
    lim_bufs_t bufs;
    lim_bufs_init(&bufs, &s);
    limits_t L = {.lz4c = 1e9, .lz4d = 1e9, .memcpy_s = 1e9, .write_s = 1e9, .lz4s_cpu = 1e9};
    fig_t F[2][2];
    for (int i = 0; i < 4; i++)
      F[i / 2][i % 2] = (fig_t){.c = 1e9, .r = 1e9, .rp = 1e9, .r2 = 1e9, .cv = 1e9, .rs = 1e9};
    for (int rep = 0; rep < reps; rep++) {
      limits_t l = {0};
      limits(&s, &bufs, dir, &l);
      limits_merge(&L, &l);
      for (int style = 2; style <= 3; style++) {
        if (only_style && atoi(only_style) != style) continue;
        for (uint32_t t = 1; t <= 2; t++) {
          fig_t *f = &F[style - 2][t - 1];
          uint64_t fsz = 0;
          double c = run_checkpt(s.w, path, style, t, 0, 1, &fsz);
          if (c < f->c) f->c = c, f->c_cpu = last_cpu, f->c_tcpu = last_thread_cpu, f->fsz = fsz;
          /* the first restore reads a file just written, as after a copy:
           * the kernel's first touch of its page-cache pages costs more */
          double r = run_restore(dst, path, t, 1);
          if (r < f->r) f->r = r, f->r_cpu = last_cpu;
          r = run_restore(dst, path, t, 1);
          if (r < f->r2) f->r2 = r;
          if (style == 3) {
            double rp = run_restore_pipe(dst, path, t, 1);
            if (rp < f->rp) f->rp = rp, f->rp_cpu = last_cpu;
          }
          if (t == 2) { /* the cost of verify (and of a sealed file's check), 2 threads here */
            uint64_t vsz;
            double cv = run_checkpt(s.w, path, style, t, 1, 1, &vsz);
            if (cv < f->cv) f->cv = cv;
            run_restore(dst, path, t, 1); /* first read, as for r2 */
            double rs = run_restore(dst, path, t, 1);
            if (rs < f->rs) f->rs = rs;
          }
        }
      }
    }
    printf(
        "\n%s contents: limits on the same bytes: liblz4 compress %.3f s (%.2f GB/s, ratio %.2f; "
        "cpu %.3f s; as 64 KiB chunks of one stream per 32 allocations: cpu %.3f s), decompress %.3f s (%.2f GB/s; cpu %.3f s), memcpy %.3f s (%.2f GB/s), one "
        "write(2) %.3f s (%.2f GB/s)\n",
        text ? "text-like" : "random", L.lz4c, gb / L.lz4c, (double)s.bytes / (double)L.csz,
        L.lz4c_cpu, L.lz4s_cpu, L.lz4d, gb / L.lz4d, L.lz4d_cpu, L.memcpy_s, gb / L.memcpy_s, L.write_s,
        gb / L.write_s);
    for (int style = 2; style <= 3; style++) {
      if (only_style && atoi(only_style) != style) continue;
      for (uint32_t t = 1; t <= 2; t++) {
        const fig_t *f = &F[style - 2][t - 1];
        double climit = style == 3 ? L.lz4c : L.write_s, rlimit = style == 3 ? L.lz4d : L.memcpy_s;
        printf("  v%d %u thread%s: checkpoint %.3f s (%.2f GB/s, %.2fx %s; cpu %.3f s, calling "
               "thread %.3f s), file %" PRIu64 " bytes; restore %.3f s (%.2f GB/s, %.2fx %s; cpu %.3f s; "
               "from the same file again %.3f s, %.2fx)\n",
               style, t, t > 1 ? "s" : " ", f->c, gb / f->c, climit / f->c,
               style == 3 ? "lz4 compress" : "write(2)", f->c_cpu, f->c_tcpu, f->fsz, f->r, gb / f->r,
               rlimit / f->r, style == 3 ? "lz4 decompress" : "memcpy", f->r_cpu, f->r2, rlimit / f->r2);
        if (t == 2)
          printf("      v%d checkpoint with verify, %u threads: %.3f s (%.2fx the time without); restore "
                 "of that sealed file (digest checked) %.3f s (%.2fx an unsealed one, both read again)\n",
                 style, t, f->cv, f->cv / f->c, f->rs, f->rs / f->r2);
        if (style == 3) {
          double ref = t == 1 ? f->c_tcpu : f->c_cpu / 2;
          printf("      v3 checkpoint by CPU time, %u thread%s: %.2fx lz4 compress cpu, %.2fx lz4 "
                 "streaming cpu (%s)\n",
                 t, t > 1 ? "s" : " ", L.lz4c_cpu / ref, L.lz4s_cpu / ref,
                 t == 1 ? "lz4 cpu / calling thread cpu" : "lz4 cpu / (process cpu / 2)");
          printf(
              "      v3 restore from a pipe, %u thread%s: %.3f s (%.2f GB/s, %.2fx lz4 decompress; "
              "cpu %.3f s without the feeding process)\n",
              t, t > 1 ? "s" : " ", f->rp, gb / f->rp, L.lz4d / f->rp, f->rp_cpu);
        }
      }
    }
    fflush(stdout);
    lim_bufs_fini(&bufs);
    unlink(path);
  }
  return 0;
}
