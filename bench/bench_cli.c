/* Checkpoint and restore as an operator runs them: `wksp checkpt` and
 * `wksp restore` as separate processes on a named workspace (to a file, and
 * `wksp checkpt src - | wksp restore dst -`), beside the same work done in
 * this process by the library calls (wksp_checkpt, wksp_restore, and a
 * checkpoint written by a thread into a pipe that the calling thread
 * restores from), and beside the limits measured in the same run on the
 * same bytes: liblz4 compression and decompression of 64 KiB blocks on 1
 * and 2 threads, one write(2) of the v2 file's size, one pread(2) of that
 * file into a mapping whose pages are present, and memcpy.
 *
 * The in-process figures run where the workspaces are attached and their
 * pages mapped, as in an application; a command maps both afresh, starts,
 * and exits: "CLI / in-process" is what that costs (target: at most 1.3).
 *
 * Workspaces: two named workspaces (source and target) of WKSP_BENCH_MB
 * MiB of data region (default 1024) in a private WKSP_SHMEM_DIR under
 * $WKSP_BENCH_DIR (default /dev/shm), the source filled to 90% with
 * allocations of 64 KiB .. 4 MiB, text-like (LZ4 ~2:1) then random, as
 * bench_checkpt.  WKSP_BENCH_REPS (default 3): best of that many; every
 * repetition measures the limits, then each figure once, in-process and
 * command in turn (which goes first alternates), so that limits and
 * figures are sampled over the same minutes.  Each checkpoint writes into
 * pages freed a moment before (the previous file is unlinked just before),
 * as does the write(2) limit (bench_util.h, write_best2).
 * WKSP_BENCH_DATA=text|random and WKSP_BENCH_STYLE=2|3 restrict the run.
 * WKSP_BENCH_PAGE=huge puts both workspaces on 2 MiB pages, in a private
 * directory of the first hugetlbfs mount of 2 MiB pages (or of
 * WKSP_BENCH_HUGE_DIR); without such a mount or free huge pages for both,
 * it says so and measures nothing (exit 0).  Why huge pages: a command maps
 * the workspace afresh, and with 4 KiB pages that is 262144 page-table
 * entries a GiB, which cost the command 1.5 s or more a GiB on the test
 * machine (bench/FINDINGS.md); with 2 MiB pages, 512.
 * WKSP_BIN names the command (default: bin/wksp of this build tree).
 *
 * Each line: the work, the figure, the limit it is compared with, the
 * ratio, the target and whether it is met.  Against a limit the ratio is
 * limit time / figure time (1.00: as fast as the limit); CLI / in-process
 * is command time / in-process time.  Targets are those of the issue that
 * asked for this section; "-" where there is none (the ratio is shown for
 * information). */
#include <inttypes.h>
#include <limits.h>
#include <lz4.h>
#include <pthread.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <sys/wait.h>

#include "bench_util.h"
#include <wksp/checkpt.h>
#include <wksp/wksp.h>

extern char **environ;

enum { BLOCK = 65536, CLI_MAX = 2, REPS_MAX = 20 };

static void die(const char *what) {
  fprintf(stderr, "bench_cli: %s: %s\n", what, wksp_errmsg());
  exit(1);
}

/* ---- the limits ---------------------------------------------------------------------- */

/* One 64 KiB block of an allocation: its bytes in the source, where its
 * decompression goes in the target (same gaddr), its compressed copy. */
typedef struct {
  const uint8_t *src;
  uint8_t *dst, *comp;
  int n, csz;
} block_t;

typedef struct {
  block_t *b;
  uint64_t cnt;
} blocks_t;

static void blocks_init(blocks_t *bl, const ws_t *s, wksp_t *dst) {
  uint64_t cnt = 0;
  for (uint64_t k = 0; k < s->cnt; k++)
    cnt += (s->parts[k].gaddr_hi - s->parts[k].gaddr_lo + BLOCK - 1) / BLOCK;
  uint64_t slot = (uint64_t)LZ4_compressBound(BLOCK);
  bl->b = calloc(cnt, sizeof *bl->b);
  uint8_t *comp = malloc(cnt * slot);
  if (!bl->b || !comp) {
    fprintf(stderr, "bench_cli: no memory for %" PRIu64 " compressed blocks\n", cnt);
    exit(1);
  }
  memset(comp, 1, cnt * slot); /* its page faults are not the limit's */
  bl->cnt = 0;
  for (uint64_t k = 0; k < s->cnt; k++)
    for (uint64_t g = s->parts[k].gaddr_lo; g < s->parts[k].gaddr_hi; g += BLOCK) {
      uint64_t n = s->parts[k].gaddr_hi - g < BLOCK ? s->parts[k].gaddr_hi - g : BLOCK;
      bl->b[bl->cnt] = (block_t){wksp_laddr(s->w, g), wksp_laddr(dst, g), comp + bl->cnt * slot, (int)n, 0};
      bl->cnt++;
    }
}

static void blocks_fini(blocks_t *bl) {
  free(bl->b[0].comp);
  free(bl->b);
}

typedef struct {
  block_t *b;
  uint64_t cnt;
  int decompress;
} lz4_job_t;

static void *lz4_job(void *arg) {
  lz4_job_t *j = arg;
  for (uint64_t i = 0; i < j->cnt; i++) {
    block_t *b = &j->b[i];
    if (!j->decompress)
      b->csz = LZ4_compress_default((const char *)b->src, (char *)b->comp, b->n, LZ4_compressBound(b->n));
    else if (LZ4_decompress_safe((const char *)b->comp, (char *)b->dst, b->csz, b->n) != b->n) {
      fprintf(stderr, "bench_cli: liblz4 did not decode its own block\n");
      exit(1);
    }
  }
  return NULL;
}

/* liblz4 over every block on `threads` threads (each a contiguous half). */
static double lz4_all(blocks_t *bl, uint32_t threads, int decompress) {
  lz4_job_t j[2] = {{bl->b, bl->cnt, decompress}, {NULL, 0, decompress}};
  if (threads == 2) {
    j[0].cnt = bl->cnt / 2;
    j[1] = (lz4_job_t){bl->b + j[0].cnt, bl->cnt - j[0].cnt, decompress};
  }
  pthread_t t;
  double t0 = now();
  if (threads == 2 && pthread_create(&t, NULL, lz4_job, &j[1])) exit(1);
  lz4_job(&j[0]);
  if (threads == 2) pthread_join(t, NULL);
  return now() - t0;
}

static double memcpy_all(const ws_t *s, wksp_t *dst) {
  double t0 = now();
  for (uint64_t k = 0; k < s->cnt; k++)
    memcpy(wksp_laddr(dst, s->parts[k].gaddr_lo), wksp_laddr(s->w, s->parts[k].gaddr_lo),
           s->parts[k].gaddr_hi - s->parts[k].gaddr_lo);
  return now() - t0;
}

/* One pread(2) of the whole file at path into buf (pages present). */
static double pread_all(const char *path, uint8_t *buf, uint64_t n) {
  int fd = open(path, O_RDONLY);
  if (fd < 0) {
    fprintf(stderr, "bench_cli: %s: %s\n", path, strerror(errno));
    exit(1);
  }
  double t0 = now();
  for (uint64_t done = 0; done < n;) {
    ssize_t k = pread(fd, buf + done, n - done, (off_t)done);
    if (k <= 0) {
      fprintf(stderr, "bench_cli: pread %s: %s\n", path, k ? strerror(errno) : "short file");
      exit(1);
    }
    done += (uint64_t)k;
  }
  double t = now() - t0;
  close(fd);
  return t;
}

typedef struct {
  double lz4c[2], lz4d[2], write_s, pread_s, memcpy_s;
} limits_t;

static double min2(double a, double b) { return a < b ? a : b; }

static void limits_measure(limits_t *L, const ws_t *s, wksp_t *dst, blocks_t *bl, const char *dir,
                           const char *v2_path, uint64_t v2_sz) {
  for (uint32_t t = 1; t <= 2; t++) {
    L->lz4c[t - 1] = min2(L->lz4c[t - 1], lz4_all(bl, t, 0));
    L->lz4d[t - 1] = min2(L->lz4d[t - 1], lz4_all(bl, t, 1));
  }
  L->memcpy_s = min2(L->memcpy_s, memcpy_all(s, dst));
  uint8_t *dst_data = wksp_laddr(dst, wksp_gaddr_lo(dst));
  L->pread_s = min2(L->pread_s, pread_all(v2_path, dst_data, v2_sz));
  L->write_s = min2(L->write_s, write_best2(wksp_laddr(s->w, wksp_gaddr_lo(s->w)), v2_sz, dir));
}

/* ---- the commands ---------------------------------------------------------------------- */

static char wksp_bin[PATH_MAX], err_path[PATH_MAX + 16];

/* The command: $WKSP_BIN, else bin/wksp two levels above this program
 * (build/bench/bench_cli in the build tree). */
static void find_wksp_bin(void) {
  const char *e = getenv("WKSP_BIN");
  char self[PATH_MAX];
  ssize_t n;
  if (e) snprintf(wksp_bin, sizeof wksp_bin, "%s", e);
  else if ((n = readlink("/proc/self/exe", self, sizeof self - 1)) > 0) {
    self[n] = 0;
    for (int up = 0; up < 3; up++) {
      char *slash = strrchr(self, '/');
      if (slash) *slash = 0;
    }
    snprintf(wksp_bin, sizeof wksp_bin, "%.*s/bin/wksp", PATH_MAX - 10, self);
  }
  if (access(wksp_bin, X_OK)) {
    fprintf(stderr, "bench_cli: no wksp command at \"%s\" (set WKSP_BIN)\n", wksp_bin);
    exit(1);
  }
}

/* Starts `wksp ARGS...` with stdin / stdout on the given descriptors (-1:
 * /dev/null) and stderr to err_path. */
static pid_t spawn_wksp(char *const argv[], int in_fd, int out_fd) {
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  if (in_fd >= 0) posix_spawn_file_actions_adddup2(&fa, in_fd, 0);
  else posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  if (out_fd >= 0) posix_spawn_file_actions_adddup2(&fa, out_fd, 1);
  else posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 2, err_path, O_WRONLY | O_CREAT | O_APPEND, 0600);
  pid_t pid;
  if (posix_spawn(&pid, wksp_bin, &fa, NULL, argv, environ)) {
    fprintf(stderr, "bench_cli: cannot run %s: %s\n", wksp_bin, strerror(errno));
    exit(1);
  }
  posix_spawn_file_actions_destroy(&fa);
  return pid;
}

/* CPU seconds and minor page faults of the commands of the last run. */
typedef struct {
  double cpu;
  long faults;
} usage_t;

static void wait_wksp(pid_t pid, usage_t *u) {
  int st;
  struct rusage r;
  if (wait4(pid, &st, 0, &r) != pid || !WIFEXITED(st) || WEXITSTATUS(st)) {
    fprintf(stderr, "bench_cli: a wksp command failed; its messages are in %s\n", err_path);
    exit(1);
  }
  u->cpu += (double)(r.ru_utime.tv_sec + r.ru_stime.tv_sec) +
            1e-6 * (double)(r.ru_utime.tv_usec + r.ru_stime.tv_usec);
  u->faults += r.ru_minflt + r.ru_majflt;
}

/* ---- one figure of each kind ---------------------------------------------------------- */

typedef struct {
  const char *dir, *path; /* files; the checkpoint file */
  ws_t *src;
  wksp_t *dst;
  int style;
  uint32_t threads;
  char style_s[4], threads_s[12];
} run_t;

static double cli_checkpt(const run_t *r, usage_t *u) {
  char *argv[] = {"wksp", "checkpt", "src", (char *)r->path, "--style", (char *)r->style_s,
                  "--threads", (char *)r->threads_s, NULL};
  unlink(r->path);
  double t0 = now();
  wait_wksp(spawn_wksp(argv, -1, -1), u);
  return now() - t0;
}

static double lib_checkpt(const run_t *r) {
  wksp_checkpt_opts_t o = {.style = r->style, .threads = r->threads};
  unlink(r->path);
  double t0 = now();
  if (wksp_checkpt(r->src->w, r->path, &o)) die("wksp_checkpt");
  return now() - t0;
}

static double cli_restore(const run_t *r, usage_t *u) {
  char *argv[] = {"wksp", "restore", "dst", (char *)r->path, "--threads", (char *)r->threads_s, NULL};
  double t0 = now();
  wait_wksp(spawn_wksp(argv, -1, -1), u);
  return now() - t0;
}

static double lib_restore(const run_t *r) {
  wksp_restore_opts_t o = {.threads = r->threads};
  double t0 = now();
  if (wksp_restore(r->dst, r->path, &o)) die("wksp_restore");
  return now() - t0;
}

static double cli_pipe(const run_t *r, usage_t *u) {
  char *ca[] = {"wksp", "checkpt", "src", "-", "--style", (char *)r->style_s,
                "--threads", (char *)r->threads_s, NULL};
  char *ra[] = {"wksp", "restore", "dst", "-", "--threads", (char *)r->threads_s, NULL};
  int p[2];
  if (pipe2(p, O_CLOEXEC)) exit(1);
  double t0 = now();
  pid_t w = spawn_wksp(ca, -1, p[1]), rd = spawn_wksp(ra, p[0], -1);
  close(p[0]);
  close(p[1]);
  wait_wksp(w, u);
  wait_wksp(rd, u);
  return now() - t0;
}

typedef struct {
  const run_t *r;
  int fd, rc;
} pipe_writer_t;

static void *pipe_writer(void *arg) {
  pipe_writer_t *pw = arg;
  wksp_checkpt_opts_t o = {.style = pw->r->style, .threads = pw->r->threads};
  pw->rc = wksp_checkpt_fd(pw->r->src->w, pw->fd, "pipe", &o);
  close(pw->fd);
  return NULL;
}

static double lib_pipe(const run_t *r) {
  int p[2];
  if (pipe2(p, O_CLOEXEC)) exit(1);
  pipe_writer_t pw = {r, p[1], 0};
  pthread_t t;
  wksp_restore_opts_t o = {.threads = r->threads};
  double t0 = now();
  if (pthread_create(&t, NULL, pipe_writer, &pw)) exit(1);
  int rc = wksp_restore_fd(r->dst, p[0], "pipe", &o);
  pthread_join(t, NULL);
  double dt = now() - t0;
  close(p[0]);
  if (pw.rc) die("wksp_checkpt_fd");
  if (rc) die("wksp_restore_fd");
  return dt;
}

/* The best times of one style and thread count; usage of the best command runs. */
enum { CKPT, RESTORE, PIPE, KINDS };
typedef struct {
  double lib[KINDS], cli[KINDS];
  usage_t use[KINDS];
} fig_t;

static void keep(double *best, double t, usage_t *bu, const usage_t *u) {
  if (t >= *best) return;
  *best = t;
  if (bu) *bu = *u;
}

static void figures_measure(fig_t *f, const run_t *r, int cli_first) {
  usage_t u[KINDS] = {{0, 0}};
  for (int pass = 0; pass < 2; pass++) {
    if (pass == cli_first) {
      keep(&f->lib[CKPT], lib_checkpt(r), NULL, NULL);
      keep(&f->lib[RESTORE], lib_restore(r), NULL, NULL);
    } else {
      double t = cli_checkpt(r, &u[CKPT]);
      keep(&f->cli[CKPT], t, &f->use[CKPT], &u[CKPT]);
      t = cli_restore(r, &u[RESTORE]);
      keep(&f->cli[RESTORE], t, &f->use[RESTORE], &u[RESTORE]);
    }
  }
  for (int pass = 0; pass < 2; pass++) {
    if (pass == cli_first) keep(&f->lib[PIPE], lib_pipe(r), NULL, NULL);
    else {
      double t = cli_pipe(r, &u[PIPE]);
      keep(&f->cli[PIPE], t, &f->use[PIPE], &u[PIPE]);
    }
  }
}

/* ---- report ---------------------------------------------------------------------------- */

/* One line: work, figure, limit, ratio, target (">= 0.90", "<= 1.30" or
 * none when target is 0) and verdict. */
static void row(const char *work, const char *fig, double ft, const char *lim, double lt, double ratio,
                int at_most, double target) {
  char f[64], l[64], tg[16] = "-";
  snprintf(f, sizeof f, "%s %.3f s", fig, ft);
  snprintf(l, sizeof l, "%s %.3f s", lim, lt);
  if (target > 0) snprintf(tg, sizeof tg, "%s %.2f", at_most ? "<=" : ">=", target);
  const char *verdict = target <= 0 ? "" : (at_most ? ratio <= target : ratio >= target) ? "met" : "missed";
  printf("  %-30s %-34s %-38s %5.2fx  %-8s %s\n", work, f, l, ratio, tg, verdict);
}

/* Figure `kind` against one limit (ratio limit / figure), in-process then command. */
static void rows_vs_limit(const char *work, const fig_t *f, int kind, const char *lim, double lt,
                          double target) {
  row(work, "in-process", f->lib[kind], lim, lt, lt / f->lib[kind], 0, target);
  char cli[64];
  snprintf(cli, sizeof cli, "CLI (cpu %.2f s, %ldk faults)", f->use[kind].cpu, f->use[kind].faults / 1000);
  row(work, cli, f->cli[kind], lim, lt, lt / f->cli[kind], 0, 0);
}

static void row_cli(const char *work, const fig_t *f, int kind) {
  row(work, "CLI", f->cli[kind], "in-process", f->lib[kind], f->cli[kind] / f->lib[kind], 1, 1.3);
}

/* The targets: v3 checkpoint of random data on 1 thread >= 0.9x
 * one-core liblz4 (text on 2 threads: 1.5x one core); v3 restore on 2
 * threads >= 0.7x two-core liblz4 decompression; v2 restore >= 0.6x memcpy
 * on 1 thread, 0.8x on 2. */
static void report(const fig_t *f, const limits_t *L, int text, int style, uint32_t t) {
  char w[3][64];
  const char *data = text ? "text" : "random", *ts = t == 1 ? "1 thread" : "2 threads";
  snprintf(w[CKPT], sizeof w[CKPT], "%s v%d checkpt %s", data, style, ts);
  snprintf(w[RESTORE], sizeof w[RESTORE], "%s v%d restore %s", data, style, ts);
  snprintf(w[PIPE], sizeof w[PIPE], "%s v%d pipe %s", data, style, ts);
  char lim[64];
  if (style == 3) {
    snprintf(lim, sizeof lim, "lz4 compress %u core%s", t, t == 1 ? "" : "s");
    rows_vs_limit(w[CKPT], f, CKPT, lim, L->lz4c[t - 1], !text && t == 1 ? 0.9 : 0);
    if (t == 2) rows_vs_limit(w[CKPT], f, CKPT, "lz4 compress 1 core", L->lz4c[0], text ? 1.5 : 0);
  } else {
    rows_vs_limit(w[CKPT], f, CKPT, "write(2) of the file", L->write_s, 0);
  }
  row_cli(w[CKPT], f, CKPT);
  if (style == 3) {
    snprintf(lim, sizeof lim, "lz4 decompress %u core%s", t, t == 1 ? "" : "s");
    rows_vs_limit(w[RESTORE], f, RESTORE, lim, L->lz4d[t - 1], t == 2 ? 0.7 : 0);
  } else {
    rows_vs_limit(w[RESTORE], f, RESTORE, "memcpy", L->memcpy_s, t == 1 ? 0.6 : 0.8);
    rows_vs_limit(w[RESTORE], f, RESTORE, "pread of the file", L->pread_s, 0);
  }
  row_cli(w[RESTORE], f, RESTORE);
  row_cli(w[PIPE], f, PIPE);
}

/* ---- setup ------------------------------------------------------------------------------ */

static char shm_dir[PATH_MAX], huge_dir[PATH_MAX], ckpt_path[PATH_MAX + 32], v2_path[PATH_MAX + 32];
static wksp_page_t page = WKSP_PAGE_NORMAL;
static int made; /* workspaces this run made: only those are deleted (a name may resolve outside the private directories) */

static void cleanup(void) {
  if (made > 0) wksp_delete_named("src");
  if (made > 1) wksp_delete_named("dst");
  unlink(ckpt_path);
  unlink(v2_path);
  unlink(err_path);
  rmdir(shm_dir);
  if (huge_dir[0]) rmdir(huge_dir);
}

static wksp_t *named_make(const char *name, uint64_t part_max, uint64_t data_max) {
  wksp_t *w = NULL;
  int rc = wksp_new_named_exact(name, part_max, data_max, page, 0600, 1);
  if (!rc) made++;
  if (!rc) rc = wksp_attach(name, 0, &w);
  if (rc && page == WKSP_PAGE_NORMAL) die("creating the workspaces");
  if (rc) {
    printf("bench_cli: huge pages: skipped, the workspaces cannot be made: %s\n"
           "  (two of %" PRIu64 " MiB need about %" PRIu64 " free 2 MiB pages: echo N > /proc/sys/vm/nr_hugepages)\n",
           wksp_errmsg(), data_max >> 20, 2 * (data_max >> 21) + 16);
    exit(0);
  }
  memset(wksp_laddr(w, wksp_gaddr_lo(w)), 0, data_max); /* this process's mapping: pages present */
  return w;
}

/* WKSP_BENCH_PAGE=huge: WKSP_SHMEM_HUGE_DIR set to a new directory in
 * WKSP_BENCH_HUGE_DIR or the first hugetlbfs mount of 2 MiB pages; 0 when
 * there is none (said on stdout). */
static int huge_setup(void) {
  char mnt[PATH_MAX] = "";
  const char *e = getenv("WKSP_BENCH_HUGE_DIR");
  if (e) snprintf(mnt, sizeof mnt, "%s", e);
  FILE *f = e ? NULL : fopen("/proc/mounts", "r");
  char dev[256], at[PATH_MAX], type[64];
  while (f && fscanf(f, "%255s %4095s %63s %*[^\n]", dev, at, type) == 3) {
    struct statfs sf;
    if (!strcmp(type, "hugetlbfs") && !statfs(at, &sf) && (uint64_t)sf.f_bsize == wksp_page_sz(WKSP_PAGE_HUGE)) {
      snprintf(mnt, sizeof mnt, "%s", at);
      break;
    }
  }
  if (f) fclose(f);
  if (!mnt[0]) {
    printf("bench_cli: huge pages: skipped, no hugetlbfs mount of 2 MiB pages (mount -t hugetlbfs -o "
           "pagesize=2M none /dev/hugepages, or set WKSP_BENCH_HUGE_DIR)\n");
    return 0;
  }
  snprintf(huge_dir, sizeof huge_dir, "%s/wksp-bench-cli.XXXXXX", mnt);
  if (!mkdtemp(huge_dir)) {
    printf("bench_cli: huge pages: skipped, mkdtemp %s: %s\n", huge_dir, strerror(errno));
    huge_dir[0] = 0;
    return 0;
  }
  setenv("WKSP_SHMEM_HUGE_DIR", huge_dir, 1);
  page = WKSP_PAGE_HUGE;
  return 1;
}

static void load(const char *when) {
  char buf[128] = "?";
  FILE *f = fopen("/proc/loadavg", "r");
  if (f && fgets(buf, sizeof buf, f)) buf[strcspn(buf, "\n")] = 0;
  if (f) fclose(f);
  printf("load average %s: %s\n", when, buf);
}

int main(void) {
  const char *e = getenv("WKSP_BENCH_MB");
  uint64_t mb = e ? strtoull(e, NULL, 0) : 1024;
  e = getenv("WKSP_BENCH_REPS");
  int reps = e ? atoi(e) : 3;
  if (reps < 1 || reps > REPS_MAX || mb < 16) {
    fprintf(stderr, "bench_cli: WKSP_BENCH_MB at least 16, WKSP_BENCH_REPS 1 to %d\n", REPS_MAX);
    return 1;
  }
  const char *dir = getenv("WKSP_BENCH_DIR");
  if (!dir) dir = "/dev/shm";
  const char *only_data = getenv("WKSP_BENCH_DATA"), *only_style = getenv("WKSP_BENCH_STYLE");
  find_wksp_bin();
  snprintf(shm_dir, sizeof shm_dir, "%s/wksp-bench-cli.XXXXXX", dir);
  if (!mkdtemp(shm_dir)) {
    fprintf(stderr, "bench_cli: mkdtemp %s: %s\n", shm_dir, strerror(errno));
    return 1;
  }
  setenv("WKSP_SHMEM_DIR", shm_dir, 1); /* the commands inherit it */
  atexit(cleanup);
  e = getenv("WKSP_BENCH_PAGE");
  if (e && strcmp(e, "huge") && strcmp(e, "normal")) {
    fprintf(stderr, "bench_cli: WKSP_BENCH_PAGE is normal or huge, not \"%s\"\n", e);
    return 1;
  }
  if (e && !strcmp(e, "huge") && !huge_setup()) return 0;
  snprintf(ckpt_path, sizeof ckpt_path, "%s/bench.ckpt", shm_dir);
  snprintf(v2_path, sizeof v2_path, "%s/limit-v2.ckpt", shm_dir);
  snprintf(err_path, sizeof err_path, "%s/stderr", shm_dir);

  uint64_t data_max = mb << 20, part_max = data_max / BLOCK * 2 + 64;
  ws_t s = {.w = named_make("src", part_max, data_max)};
  wksp_t *dst = named_make("dst", part_max, data_max);
  uint64_t rng = 12345;
  ws_fill(&s, data_max, &rng);
  blocks_t bl;
  blocks_init(&bl, &s, dst);
  printf("workspaces: %" PRIu64 " MiB data region, %" PRIu64 " allocations (64 KiB..4 MiB), %" PRIu64
         " bytes used; in %s; %s; command %s; best of %d\n",
         mb, s.cnt, s.bytes, page == WKSP_PAGE_HUGE ? huge_dir : dir,
         page == WKSP_PAGE_HUGE ? "2 MiB pages (checkpoint files on the other directory)" : "4 KiB pages", wksp_bin,
         reps);
  printf("ratio: limit time / figure time (>= target), or CLI time / in-process time (<= target)\n");
  load("at the start");
  for (int text = 1; text >= 0; text--) {
    if (only_data && strcmp(only_data, text ? "text" : "random")) continue;
    ws_content(&s, text, text ? 1 : 2);
    /* The v2 file of this content: its size for write(2), its bytes for pread. */
    wksp_checkpt_opts_t o2 = {.style = 2, .threads = 1};
    unlink(v2_path);
    if (wksp_checkpt(s.w, v2_path, &o2)) die("wksp_checkpt (v2 file of the limits)");
    struct stat st;
    if (stat(v2_path, &st)) exit(1);
    if ((uint64_t)st.st_size > data_max) { /* write and pread limits use one data region */
      fprintf(stderr, "bench_cli: the v2 file (%lld bytes) exceeds the data region\n", (long long)st.st_size);
      return 1;
    }
    limits_t L = {{1e9, 1e9}, {1e9, 1e9}, 1e9, 1e9, 1e9};
    fig_t F[2][2];
    for (int i = 0; i < 4; i++)
      for (int k = 0; k < KINDS; k++) F[i / 2][i % 2].lib[k] = F[i / 2][i % 2].cli[k] = 1e9;
    for (int rep = 0; rep < reps; rep++) {
      limits_measure(&L, &s, dst, &bl, dir, v2_path, (uint64_t)st.st_size);
      for (int style = 2; style <= 3; style++) {
        if (only_style && atoi(only_style) != style) continue;
        for (uint32_t t = 1; t <= 2; t++) {
          run_t r = {dir, ckpt_path, &s, dst, style, t, "", ""};
          snprintf(r.style_s, sizeof r.style_s, "v%d", style);
          snprintf(r.threads_s, sizeof r.threads_s, "%u", t);
          figures_measure(&F[style - 2][t - 1], &r, rep % 2);
        }
      }
    }
    printf("\n%s contents, limits: liblz4 compress %.3f s (2 cores %.3f s), decompress %.3f s (2 cores "
           "%.3f s), memcpy %.3f s, write(2) of the v2 file %.3f s, pread of it %.3f s (%llu bytes)\n",
           text ? "text-like" : "random", L.lz4c[0], L.lz4c[1], L.lz4d[0], L.lz4d[1], L.memcpy_s,
           L.write_s, L.pread_s, (unsigned long long)st.st_size);
    printf("  %-30s %-34s %-38s %6s  %-8s %s\n", "work", "figure", "limit", "ratio", "target", "verdict");
    for (int style = 2; style <= 3; style++) {
      if (only_style && atoi(only_style) != style) continue;
      for (uint32_t t = 1; t <= 2; t++) report(&F[style - 2][t - 1], &L, text, style, t);
    }
    fflush(stdout);
  }
  load("at the end");
  blocks_fini(&bl);
  wksp_detach(s.w);
  wksp_detach(dst);
  free(s.parts);
  return 0;
}
