/* Frame layer throughput next to its limits, measured in the same run on the
 * same bytes:
 *   LZ4 write (memory, tmpfs file)  vs liblz4 LZ4_compress_fast_continue over
 *                                      the same 64 KiB chunks, in place (also
 *                                      shown: the writer forced to copy every
 *                                      chunk into the ring like the reference)
 *   LZ4 read  (memory, tmpfs file)  vs liblz4 LZ4_decompress_safe of 64 KiB
 *                                      blocks (and _usingDict streaming)
 *   RAW write (memory / tmpfs file) vs memcpy / one write(2) of all bytes
 *   RAW read  (memory / tmpfs file) vs memcpy / one read(2) of all bytes
 * for text-like data (the vectors' "text" pattern, LZ4 ~1.8x) and random
 * data.  Buffers mimic cgroup frames: frames of 32 partitions of 64 KiB..4
 * MiB, each frame starting with one 24-byte meta command per partition.
 *
 *   bench_frame [MB]       size per data set; default $WKSP_BENCH_MB or 1024
 *   WKSP_BENCH_REPS=n      best of n runs per measurement (default 3: one run alone
 *                          catches the host returning freed pages, see bench_checkpt.c)
 *   WKSP_BENCH_DIR=dir     directory for the tmpfs file (default /dev/shm)
 *   WKSP_BENCH_DATA=text|random   only one data set
 *   WKSP_BENCH_CLOCK=wall  wall-clock instead of thread CPU time */
#include <errno.h>
#include <fcntl.h>
#include <lz4.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../tests/lib/frame_testlib.h"
#include "frame/frame_private.h"
#include "wksp/frame.h"

enum { PARTS_PER_FRAME = 32, CHUNK = 65536 };

typedef struct {
  uint8_t *src;            /* all partition bytes, contiguous */
  size_t sz;
  size_t nparts;
  size_t *part_off, *part_sz;
} dataset_t;

static int g_reps = 3;
static char g_path[512];

/* Thread CPU time by default: the machine may be shared, and preemption
 * would otherwise dominate the noise (syscall time is included);
 * WKSP_BENCH_CLOCK=wall for wall-clock time. */
static clockid_t g_clock = CLOCK_THREAD_CPUTIME_ID;

static double now(void) {
  struct timespec t;
  clock_gettime(g_clock, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static void die(const char *what) {
  fprintf(stderr, "bench_frame: %s failed: %s (errno %s)\n", what, wksp_errmsg(), strerror(errno));
  exit(1);
}

static void dataset_make(dataset_t *d, size_t sz, int text) {
  d->sz = sz;
  d->src = malloc(sz);
  size_t cap = sz / CHUNK + 1;
  d->part_off = malloc(cap * sizeof(size_t));
  d->part_sz = malloc(cap * sizeof(size_t));
  uint64_t s = text ? 1 : 2;
  d->nparts = 0;
  for (size_t off = 0; off < sz;) {
    size_t n = CHUNK + (size_t)(ftl_rng(&s) % (4u * 1024 * 1024 - CHUNK + 1));
    if (n > sz - off) n = sz - off;
    d->part_off[d->nparts] = off;
    d->part_sz[d->nparts++] = n;
    off += n;
  }
  if (text) ftl_fill_text(d->src, sz, 42);
  else ftl_fill_random(d->src, sz, 42);
}

/* ---- frame writer / reader passes ---------------------------------------- */

static void cmd_of(const dataset_t *d, size_t p, uint8_t cmd[24]) {
  uint64_t v[3] = { 1 + p, 4096 + d->part_off[p], 4096 + d->part_off[p] + d->part_sz[p] };
  memcpy(cmd, v, 24);
}

static void frames_write(wksp_frame_writer_t *w, const dataset_t *d, int style) {
  for (size_t p0 = 0; p0 < d->nparts; p0 += PARTS_PER_FRAME) {
    size_t p1 = p0 + PARTS_PER_FRAME < d->nparts ? p0 + PARTS_PER_FRAME : d->nparts;
    if (wksp_frame_writer_open(w, style, NULL)) die("writer_open");
    for (size_t p = p0; p < p1; p++) {
      uint8_t cmd[24];
      cmd_of(d, p, cmd);
      if (wksp_frame_writer_meta(w, cmd, 24)) die("writer_meta");
    }
    for (size_t p = p0; p < p1; p++)
      if (wksp_frame_writer_data(w, d->src + d->part_off[p], d->part_sz[p])) die("writer_data");
    if (wksp_frame_writer_close(w, NULL)) die("writer_close");
  }
}

static void frames_read(wksp_frame_reader_t *r, const dataset_t *d, int style, uint8_t *dst) {
  for (size_t p0 = 0; p0 < d->nparts; p0 += PARTS_PER_FRAME) {
    size_t p1 = p0 + PARTS_PER_FRAME < d->nparts ? p0 + PARTS_PER_FRAME : d->nparts;
    if (wksp_frame_reader_open(r, style, NULL)) die("reader_open");
    for (size_t p = p0; p < p1; p++) {
      uint8_t cmd[24];
      if (wksp_frame_reader_meta(r, cmd, 24)) die("reader_meta");
    }
    for (size_t p = p0; p < p1; p++)
      if (wksp_frame_reader_data(r, dst + d->part_off[p], d->part_sz[p])) die("reader_data");
    if (wksp_frame_reader_close(r, NULL)) die("reader_close");
  }
}

static int open_file(int trunc) {
  int fd = open(g_path, O_RDWR | O_CREAT | (trunc ? O_TRUNC : 0), 0600);
  if (fd < 0) die(g_path);
  return fd;
}

/* ---- measurements -------------------------------------------------------- */

typedef struct {
  const dataset_t *d;
  int style;
  uint8_t *out;      /* encoded checkpoint (memory) */
  size_t out_cap, out_sz;
  uint8_t *dst;      /* decoded partitions */
  uint8_t *blocks;   /* baseline: compressed 64 KiB blocks */
  size_t blocks_sz;
} ctx_t;

static int g_exact; /* writer copies every LZ4 chunk into the ring, as the reference */

static double t_write_mem(ctx_t *c) {
  wksp_frame_writer_t *w;
  uint64_t sz;
  double t0 = now();
  if (wksp_frame_writer_init_mem(&w, c->out, c->out_cap)) die("init_mem");
  wksp_private_frame_writer_exact(w, g_exact);
  frames_write(w, c->d, c->style);
  if (wksp_frame_writer_fini(w, &sz)) die("writer_fini");
  double t = now() - t0;
  c->out_sz = (size_t)sz;
  return t;
}

static double t_write_file(ctx_t *c) {
  int fd = open_file(1);
  wksp_frame_writer_t *w;
  uint64_t sz;
  double t0 = now();
  if (wksp_frame_writer_init_fd(&w, fd)) die("init_fd");
  frames_write(w, c->d, c->style);
  if (wksp_frame_writer_fini(w, &sz)) die("writer_fini");
  double t = now() - t0;
  close(fd);
  if (sz != c->out_sz) die("file size");
  return t;
}

static double t_read_mem(ctx_t *c) {
  wksp_frame_reader_t *r;
  double t0 = now();
  if (wksp_frame_reader_init_mem(&r, c->out, c->out_sz)) die("reader_init_mem");
  frames_read(r, c->d, c->style, c->dst);
  wksp_frame_reader_fini(r);
  return now() - t0;
}

static double t_read_file(ctx_t *c) {
  int fd = open_file(0);
  wksp_frame_reader_t *r;
  double t0 = now();
  if (wksp_frame_reader_init_fd(&r, fd)) die("reader_init_fd");
  frames_read(r, c->d, c->style, c->dst);
  wksp_frame_reader_fini(r);
  double t = now() - t0;
  close(fd);
  return t;
}

/* liblz4 streaming compression of the same chunks, in place (no ring), one
 * stream reset per frame, output blocks stored back to back. */
static double t_lz4_compress(ctx_t *c) {
  LZ4_stream_t *s = LZ4_createStream();
  const dataset_t *d = c->d;
  uint8_t *o = c->blocks;
  double t0 = now();
  for (size_t p = 0; p < d->nparts; p++) {
    if (p % PARTS_PER_FRAME == 0) LZ4_resetStream_fast(s);
    for (size_t i = 0; i < d->part_sz[p]; i += CHUNK) {
      int usz = (int)(d->part_sz[p] - i < CHUNK ? d->part_sz[p] - i : CHUNK);
      int n = LZ4_compress_fast_continue(s, (const char *)d->src + d->part_off[p] + i, (char *)o + 3,
                                         usz, LZ4_COMPRESSBOUND(usz), 1);
      if (n <= 0) die("LZ4_compress_fast_continue");
      o[0] = (uint8_t)n, o[1] = (uint8_t)(n >> 8), o[2] = (uint8_t)(n >> 16);
      o += 3 + n;
    }
  }
  double t = now() - t0;
  LZ4_freeStream(s);
  return t;
}

/* Independent 64 KiB blocks for the LZ4_decompress_safe baseline (prepared
 * untimed). */
static void lz4_independent_blocks(ctx_t *c) {
  const dataset_t *d = c->d;
  uint8_t *o = c->blocks;
  for (size_t p = 0; p < d->nparts; p++)
    for (size_t i = 0; i < d->part_sz[p]; i += CHUNK) {
      int usz = (int)(d->part_sz[p] - i < CHUNK ? d->part_sz[p] - i : CHUNK);
      int n = LZ4_compress_default((const char *)d->src + d->part_off[p] + i, (char *)o + 3, usz,
                                   LZ4_COMPRESSBOUND(usz));
      o[0] = (uint8_t)n, o[1] = (uint8_t)(n >> 8), o[2] = (uint8_t)(n >> 16);
      o += 3 + n;
    }
  c->blocks_sz = (size_t)(o - c->blocks);
}

static double t_lz4_decompress(ctx_t *c) {
  const dataset_t *d = c->d;
  const uint8_t *o = c->blocks;
  double t0 = now();
  for (size_t p = 0; p < d->nparts; p++)
    for (size_t i = 0; i < d->part_sz[p]; i += CHUNK) {
      int usz = (int)(d->part_sz[p] - i < CHUNK ? d->part_sz[p] - i : CHUNK);
      int n = o[0] | o[1] << 8 | o[2] << 16;
      if (LZ4_decompress_safe((const char *)o + 3, (char *)c->dst + d->part_off[p] + i, n, usz) != usz)
        die("LZ4_decompress_safe");
      o += 3 + n;
    }
  return now() - t0;
}

static double t_memcpy(ctx_t *c) {
  double t0 = now();
  memcpy(c->dst, c->d->src, c->d->sz);
  return now() - t0;
}

static double t_write1(ctx_t *c) {
  int fd = open_file(1);
  double t0 = now();
  if (ftl_write_all(fd, c->d->src, c->d->sz)) die("write");
  double t = now() - t0;
  close(fd);
  return t;
}

static double t_read1(ctx_t *c) {
  int fd = open_file(0);
  double t0 = now();
  size_t done = 0;
  while (done < c->d->sz) {
    ssize_t n = read(fd, c->dst + done, c->d->sz - done);
    if (n <= 0) die("read");
    done += (size_t)n;
  }
  double t = now() - t0;
  close(fd);
  return t;
}

/* One write(2) / read(2) of the encoded checkpoint bytes: added to the
 * liblz4 time, this is the limit for LZ4 frames to or from a file. */
static double t_write1_out(ctx_t *c) {
  int fd = open_file(1);
  double t0 = now();
  if (ftl_write_all(fd, c->out, c->out_sz)) die("write");
  double t = now() - t0;
  close(fd);
  return t;
}

static double t_read1_out(ctx_t *c) {
  int fd = open_file(0);
  double t0 = now();
  size_t done = 0;
  while (done < c->out_sz) {
    ssize_t n = read(fd, c->blocks + done, c->out_sz - done);
    if (n <= 0) die("read");
    done += (size_t)n;
  }
  double t = now() - t0;
  close(fd);
  return t;
}

static double best(double (*fn)(ctx_t *), ctx_t *c) {
  double b = 1e30;
  for (int i = 0; i < g_reps; i++) {
    double t = fn(c);
    if (t < b) b = t;
  }
  return b;
}

/* Best times of a limit and of the frame layer, run alternately so that load
 * from elsewhere hits both alike; the frame layer runs last (its output is
 * what gets checked). */
static void best2(double (*limit)(ctx_t *), double (*ours)(ctx_t *), ctx_t *c, double *tl,
                  double *to) {
  *tl = *to = 1e30;
  for (int i = 0; i < g_reps; i++) {
    double a = limit(c), b = ours(c);
    if (a < *tl) *tl = a;
    if (b < *to) *to = b;
  }
}

static double t_write_mem_exact(ctx_t *c) {
  g_exact = 1;
  double t = t_write_mem(c);
  g_exact = 0;
  return t;
}

static void check_dst(const ctx_t *c, const char *what) {
  if (memcmp(c->dst, c->d->src, c->d->sz)) {
    fprintf(stderr, "bench_frame: %s decoded wrong bytes\n", what);
    exit(1);
  }
  memset(c->dst, 0, c->d->sz);
}

static void row(const char *name, double t, const char *lname, double lt, double mb) {
  printf("  %-26s %8.0f MB/s   %-30s %8.0f MB/s   ratio %.2fx\n", name, mb / t, lname, mb / lt, lt / t);
}

static void run(const char *label, int text, size_t sz) {
  dataset_t d;
  dataset_make(&d, sz, text);
  double mb = (double)sz / 1e6;
  ctx_t c = { .d = &d };
  c.out_cap = sz + sz / 100 + (d.nparts + 1) * 1024;
  c.out = malloc(c.out_cap);
  c.dst = malloc(sz);
  c.blocks = malloc(c.out_cap);
  memset(c.out, 1, c.out_cap); /* fault the pages in before timing */
  memset(c.dst, 1, sz);
  memset(c.blocks, 1, c.out_cap);
  printf("%s: %zu bytes in %zu partitions (%zu frames)\n", label, sz, d.nparts,
         (d.nparts + PARTS_PER_FRAME - 1) / PARTS_PER_FRAME);

  double lim, t, t2;
  c.style = WKSP_FRAME_LZ4;
  best2(t_lz4_compress, t_write_mem, &c, &lim, &t);
  printf("  LZ4 frames: %zu bytes (ratio %.2f)\n", c.out_sz, (double)sz / (double)c.out_sz);
  row("LZ4 write -> memory", t, "liblz4 compress_fast_continue", lim, mb);
  best2(t_lz4_compress, t_write_mem_exact, &c, &lim, &t);
  row("  (reference ring path)", t, "liblz4 compress_fast_continue", lim, mb);
  best2(t_lz4_compress, t_write_file, &c, &lim, &t);
  row("LZ4 write -> tmpfs file", t, "liblz4 compress_fast_continue", lim, mb);
  t2 = best(t_write1_out, &c);
  row("LZ4 write -> tmpfs file", t, "  same + write(2) of output", lim + t2, mb);
  t2 = best(t_read1_out, &c); /* the file holds the frames written above */
  lz4_independent_blocks(&c);
  best2(t_lz4_decompress, t_read_mem, &c, &lim, &t);
  check_dst(&c, "LZ4 read memory");
  row("LZ4 read <- memory", t, "liblz4 decompress_safe", lim, mb);
  best2(t_lz4_decompress, t_read_file, &c, &lim, &t);
  check_dst(&c, "LZ4 read file");
  row("LZ4 read <- tmpfs file", t, "liblz4 decompress_safe", lim, mb);
  row("LZ4 read <- tmpfs file", t, "  same + read(2) of input", lim + t2, mb);

  c.style = WKSP_FRAME_RAW;
  best2(t_memcpy, t_write_mem, &c, &lim, &t);
  row("RAW write -> memory", t, "memcpy", lim, mb);
  best2(t_write1, t_write_file, &c, &lim, &t);
  row("RAW write -> tmpfs file", t, "one write(2)", lim, mb);
  best2(t_memcpy, t_read_mem, &c, &lim, &t);
  check_dst(&c, "RAW read memory");
  row("RAW read <- memory", t, "memcpy", lim, mb);
  best2(t_read1, t_read_file, &c, &lim, &t);
  check_dst(&c, "RAW read file");
  row("RAW read <- tmpfs file", t, "one read(2)", lim, mb);
  unlink(g_path);
  free(c.out);
  free(c.dst);
  free(c.blocks);
  free(d.src);
  free(d.part_off);
  free(d.part_sz);
}

int main(int argc, char **argv) {
  const char *e = getenv("WKSP_BENCH_MB");
  size_t mb = argc > 1 ? strtoull(argv[1], NULL, 0) : e ? strtoull(e, NULL, 0) : 1024;
  if (!mb) mb = 1;
  e = getenv("WKSP_BENCH_REPS");
  if (e && atoi(e) > 0) g_reps = atoi(e);
  e = getenv("WKSP_BENCH_CLOCK");
  if (e && !strcmp(e, "wall")) g_clock = CLOCK_MONOTONIC;
  e = getenv("WKSP_BENCH_DIR");
  snprintf(g_path, sizeof g_path, "%s/bench_frame.%d", e ? e : "/dev/shm", (int)getpid());
  printf("bench_frame: %zu MiB per data set, best of %d, %s time, file %s, liblz4 %s\n", mb, g_reps,
         g_clock == CLOCK_MONOTONIC ? "wall" : "thread CPU", g_path, LZ4_versionString());
  e = getenv("WKSP_BENCH_DATA"); /* text, random or unset for both */
  if (!e || !strcmp(e, "text")) run("text", 1, mb << 20);
  if (!e || !strcmp(e, "random")) run("random", 0, mb << 20);
  return 0;
}
