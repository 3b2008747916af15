/* Checkpoint input (input.c): what is not a checkpoint is refused at its
 * first bytes, on every path (restore, verify_first, info, check, diff,
 * print; paths and pipes), and no stream is read or spooled beyond what a
 * checkpoint with its header can hold (the size bound of ckpt.h and the
 * limits behind it) or beyond the spool directory's free space.  Endless
 * streams come from a thread that writes a prefix and then a generated
 * tail until the reader goes away; the bytes it managed to write bound
 * what was read. */
#include "../lib/ws.h"
#include "../../src/checkpt/checkpt_private.h"
#include "../lib/v1enc.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <sys/statvfs.h>

#define PIPE_SLACK (3u << 20) /* read buffers and pipe capacity beyond what was used */

/* ---- endless streams ------------------------------------------------------------ */

enum { TAIL_ZERO, TAIL_RANDOM, TAIL_VOLUMES, TAIL_FRAMES, TAIL_NONE };

typedef struct {
  int fd;
  const uint8_t *pre;
  uint64_t pre_sz;
  int tail;
  uint64_t at;      /* checkpoint offset of the next byte (TAIL_VOLUMES / FRAMES) */
  uint64_t lo, hi;  /* TAIL_FRAMES: the source data region */
  uint64_t written; /* bytes the reader took */
} feed_t;

static int feed_all(feed_t *f, const void *p, size_t n) {
  while (n) {
    ssize_t k = write(f->fd, p, n);
    if (k <= 0) return -1;
    f->written += (uint64_t)k;
    p = (const uint8_t *)p + k;
    n -= (size_t)k;
  }
  return 0;
}

/* Fills b with the next piece of the tail (RAW frames for the structured
 * tails: an appendix of no cgroup frame linking to the previous one, again
 * and again; or cgroup frames that each claim the whole data region). */
static size_t tail_piece(feed_t *f, uint8_t *b, size_t cap, uint64_t *rng, uint64_t *prev) {
  size_t n = 0;
  switch (f->tail) {
    case TAIL_ZERO: memset(b, 0, n = cap); break;
    case TAIL_RANDOM:
      for (n = 0; n + 8 <= cap; n += 8) {
        uint64_t x = test_rng(rng);
        memcpy(b + n, &x, 8);
      }
      break;
    case TAIL_VOLUMES:
      while (n + CHECKPT_CMD_SZ <= cap) {
        wksp_private_checkpt_cmd_encode(b + n, 0, 0, *prev);
        *prev = f->at + n;
        n += CHECKPT_CMD_SZ;
      }
      break;
    default: /* TAIL_FRAMES: one allocation per frame, the data then zeros */
      wksp_private_checkpt_cmd_encode(b, 1, f->lo, f->hi);
      wksp_private_checkpt_cmd_encode(b + CHECKPT_CMD_SZ, 0, UINT64_MAX, UINT64_MAX);
      n = 2 * CHECKPT_CMD_SZ;
      break;
  }
  f->at += n;
  return n;
}

static void *feed_main(void *arg) {
  feed_t *f = arg;
  static _Thread_local uint8_t buf[65536];
  uint64_t rng = 5, prev = 0;
  if (feed_all(f, f->pre, f->pre_sz) || f->tail == TAIL_NONE) goto out;
  f->at = f->pre_sz;
  for (;;) {
    size_t n = tail_piece(f, buf, sizeof buf, &rng, &prev);
    if (feed_all(f, buf, n)) break;
    if (f->tail == TAIL_FRAMES) { /* the allocation's bytes */
      memset(buf, 0, sizeof buf);
      for (uint64_t left = f->hi - f->lo; left;) {
        size_t k = left < sizeof buf ? (size_t)left : sizeof buf;
        if (feed_all(f, buf, k)) goto out;
        left -= k;
        f->at += k;
      }
    }
  }
out:
  close(f->fd);
  return NULL;
}

typedef int (*use_fn_t)(int fd, void *ctx);

/* Runs use(fd) on the read end of a pipe fed by f; the bytes f wrote. */
static int fed(feed_t *f, use_fn_t use, void *ctx) {
  int p[2];
  pthread_t th;
  if (pipe(p)) abort();
  f->fd = p[1];
  f->written = 0;
  if (pthread_create(&th, NULL, feed_main, f)) abort();
  int rc = use(p[0], ctx); /* (its message stays this thread's) */
  close(p[0]);             /* the feeder's next write fails */
  pthread_join(th, NULL);
  return rc;
}

/* ---- the calls, on an fd or a path ----------------------------------------------- */

static wksp_t *target;

enum {
  USE_RESTORE,
  USE_RESTORE2,
  USE_VERIFY_FIRST,
  USE_INFO,
  USE_CHECK,
  USE_DIFF,
  USE_PRINT,
  USE_CNT
};
static const char *const use_name[USE_CNT] = {
    "restore", "restore (2 threads)", "restore verify_first", "info", "check", "diff", "print"};

static int use_one(int kind, const char *path, int fd) {
  wksp_restore_opts_t o = {
      .seed = 3, .threads = kind == USE_RESTORE2 ? 2 : 1, .verify_first = kind == USE_VERIFY_FIRST};
  wksp_checkpt_info_t info;
  wksp_checkpt_diff_t d;
  int rc = WKSP_SUCCESS, null = open("/dev/null", O_WRONLY);
  switch (kind) {
    case USE_RESTORE:
    case USE_RESTORE2:
    case USE_VERIFY_FIRST:
      rc = path ? wksp_restore(target, path, &o) : wksp_restore_fd(target, fd, "-", &o);
      break;
    case USE_INFO:
      rc = path ? wksp_checkpt_info(path, &info) : wksp_checkpt_info_fd(fd, NULL, &info);
      if (!rc) wksp_checkpt_info_free(&info);
      break;
    case USE_CHECK: {
      const wksp_check_opts_t co = {.threads = 2};
      rc = path ? wksp_checkpt_check(path, &co, NULL) : wksp_checkpt_check_fd(fd, NULL, &co, NULL);
      break;
    }
    case USE_DIFF: {
      const wksp_diff_opts_t dopt = {.threads = 2};
      rc = path ? wksp_checkpt_diff(target, path, &dopt, &d)
                : wksp_checkpt_diff_fd(target, fd, NULL, &dopt, &d);
      break;
    }
    default:
      rc = path ? wksp_checkpt_print(null, path, 1) : wksp_checkpt_print_fd(null, fd, "-", 1);
      break;
  }
  close(null);
  return rc;
}

static int use_fd(int fd, void *ctx) { return use_one(*(int *)ctx, NULL, fd); }

/* The target's state, to check that a refused input changed nothing. */
static void refill(void) {
  wksp_reset(target, 1);
  uint64_t rng = 42;
  ws_fill(target, 20, 3000, 1, &rng);
}

/* ---- not a checkpoint --------------------------------------------------------------- */

static int refused(int rc, const char *want, const char *what, int kind) {
  if (rc == WKSP_ERR_CORRUPT && strstr(wksp_errmsg(), want)) return 1;
  fprintf(stderr, "%s, %s: rc %d: %s (want CORRUPT with \"%s\")\n", what, use_name[kind], rc,
          wksp_errmsg(), want);
  return 0;
}

static void test_devices_refused_at_once(void) {
  static const char *const dev[2] = {"/dev/zero", "/dev/urandom"};
  static const char *const want[2] = {
      "/dev/zero: not a wksp checkpoint: bad magic 0x0000000000000000 (expected "
      "0xf17eda2c3731c591)",
      "/dev/urandom: not a wksp checkpoint: bad magic 0x"};
  uint8_t before[32], after[32];
  refill();
  ws_digest(target, before);
  for (int i = 0; i < 2; i++) {
    for (int kind = 0; kind < USE_CNT; kind++)
      CHECK(refused(use_one(kind, dev[i], -1), want[i], dev[i], kind));
    wksp_preview_t pv;
    CHECK_ERR(wksp_preview(dev[i], &pv), WKSP_ERR_CORRUPT);
    CHECK(strstr(wksp_errmsg(), "not a wksp checkpoint: bad magic 0x"));
  }
  /* the same as endless pipes: only the first bytes are read */
  for (int tail = TAIL_ZERO; tail <= TAIL_RANDOM; tail++)
    for (int kind = 0; kind < USE_CNT; kind++) {
      feed_t f = {.tail = tail};
      CHECK(
          refused(fed(&f, use_fd, &kind), "-: not a wksp checkpoint: bad magic 0x", "pipe", kind));
      CHECK(f.written <= PIPE_SLACK);
    }
  ws_digest(target, after);
  CHECK(!memcmp(before, after, 32));
  /* short inputs */
  static const uint8_t v2_magic[8] = {0x91, 0xc5, 0x31, 0x37, 0x2c, 0xda, 0x7e, 0xf1};
  for (int n = 0; n <= 8; n += 4) {
    int kind = USE_INFO;
    feed_t f = {.tail = TAIL_NONE, .pre = (const uint8_t *)"abcdefgh", .pre_sz = (uint64_t)n};
    CHECK_ERR(fed(&f, use_fd, &kind), WKSP_ERR_CORRUPT);
    CHECK(strstr(wksp_errmsg(),
                 n < 8 ? "bytes, not a wksp checkpoint" : "bad magic 0x6867666564636261"));
  }
  int kind = USE_RESTORE;
  feed_t f = {.tail = TAIL_NONE, .pre = v2_magic, .pre_sz = 8};
  CHECK_ERR(fed(&f, use_fd, &kind), WKSP_ERR_CORRUPT);
  CHECK(strstr(wksp_errmsg(), "8 bytes, a v2 header needs 80"));
}

/* ---- bounded by the header --------------------------------------------------------------- */

/* A checkpoint of an empty workspace of the given geometry: its bytes and
 * where its info frame ends (the header and info frame: a valid start). */
static uint8_t *empty_ckpt(int style, uint64_t part_max, uint64_t data_max, uint64_t *sz,
                           uint64_t *info_end) {
  wksp_t *w = ws_new("empty", 1, part_max, data_max);
  if (!w) return NULL;
  char p[128];
  snprintf(p, sizeof p, "/tmp/wksp-test-input-%d.ckpt", (int)getpid());
  uint8_t *b = ws_ckpt_bytes(w, style, p, sz);
  ws_free(w);
  if (!b) return NULL;
  wksp_frame_reader_t *r = NULL;
  uint8_t info[CHECKPT_INFO_SZ], *blob = malloc(CHECKPT_INFO_BLOB_MAX);
  checkpt_info_t I;
  uint64_t blob_sz = 0;
  int fsc = style == 2 ? WKSP_FRAME_RAW : WKSP_FRAME_LZ4;
  if (wksp_frame_reader_init_mem(&r, b + CHECKPT_HDR_SZ, *sz - CHECKPT_HDR_SZ) ||
      wksp_frame_reader_open(r, fsc, NULL) || wksp_frame_reader_meta(r, info, sizeof info))
    abort();
  wksp_private_checkpt_info_decode(&I, info);
  if (wksp_private_checkpt_info_check(&I, &blob_sz, "x") || wksp_frame_reader_data(r, blob, blob_sz) ||
      wksp_frame_reader_close(r, info_end))
    abort();
  *info_end += CHECKPT_HDR_SZ;
  wksp_frame_reader_fini(r);
  free(blob);
  return b;
}

/* A valid header and info frame, then zeros or random bytes forever: the
 * spooling calls stop at the size bound, the others at the first bad
 * frame; nothing reads much more than the bound. */
static void test_endless_after_header(void) {
  for (int style = 2; style <= 3; style++) {
    uint64_t sz, info_end, pmax = 16, dmax = 1u << 20;
    uint8_t *b = empty_ckpt(style, pmax, dmax, &sz, &info_end);
    CHECK(b);
    uint64_t bound =
        wksp_private_checkpt_v2_max_sz(pmax, dmax, style == 2 ? WKSP_FRAME_RAW : WKSP_FRAME_LZ4);
    CHECK(sz <= bound && bound < 4 * dmax);
    char longer[128];
    snprintf(longer, sizeof longer, "-: longer than a checkpoint of this geometry can be (%" PRIu64 " bytes)",
             bound);
    for (int tail = TAIL_ZERO; tail <= TAIL_RANDOM; tail++)
      for (int kind = 0; kind < USE_CNT; kind++) {
        refill();
        uint8_t before[32], after[32];
        ws_digest(target, before);
        feed_t f = {.pre = b, .pre_sz = info_end, .tail = tail};
        int rc = fed(&f, use_fd, &kind);
        int spooled = kind >= USE_VERIFY_FIRST;
        if (spooled)
          CHECK(refused(rc, longer, "endless", kind));
        else
          CHECK_EQ(rc, WKSP_ERR_CORRUPT);
        CHECK(f.written <= (spooled ? bound : 0) + PIPE_SLACK);
        ws_digest(target, after);
        CHECK(!memcmp(before, after, 32)); /* the info frame comes before any change */
      }
    free(b);
  }
}

/* Structured endless streams that the stream path would follow: empty
 * volumes chained forever, or cgroup frames each claiming the whole data
 * region.  The limits stop them (CORRUPT) after at most the bound. */
static void test_endless_structure(void) {
  uint64_t sz, info_end, pmax = 16, dmax = 1u << 20;
  uint8_t *b = empty_ckpt(2, pmax, dmax, &sz, &info_end);
  CHECK(b);
  uint64_t bound = wksp_private_checkpt_v2_max_sz(pmax, dmax, WKSP_FRAME_RAW);
  static const char *const want[2] = {"more than 1024 volumes",
                                      "more than part_max 16 allocations or data_max"};
  for (int t = 0; t < 2; t++)
    for (int kind = 0; kind < USE_CNT; kind++) {
      refill();
      feed_t f = {.pre = b,
                  .pre_sz = info_end,
                  .tail = t ? TAIL_FRAMES : TAIL_VOLUMES,
                  .lo = checkpt_gaddr_lo(pmax),
                  .hi = checkpt_gaddr_lo(pmax) + dmax};
      int rc = fed(&f, use_fd, &kind);
      int spooled = kind >= USE_VERIFY_FIRST;
      CHECK(refused(rc, spooled ? "longer than a checkpoint of this geometry" : want[t],
                    "structure", kind));
      CHECK(f.written <= bound + PIPE_SLACK);
      uint64_t n = 1;
      free(ws_allocs(target, &n));
      CHECK(!wksp_verify(target));
      if (!spooled && t) CHECK(n == 0 && strstr(wksp_errmsg(), "(target reset to empty)"));
    }
  free(b);
}

/* Every limit also holds on the random-access path; the size bound holds
 * for real checkpoints, full ones included. */
static void test_bound_and_limits(void) {
  for (int style = 2; style <= 3; style++) {
    wksp_t *w = ws_new("full", 1, 64, 1u << 20);
    CHECK(w);
    uint64_t rng = 9, g, lo, hi;
    /* random bytes in allocations of every size class, until full */
    while (!wksp_alloc_at_least(w, 1, 1 + test_rng(&rng) % 70000, 1, &g, &lo, &hi)) {
      uint8_t *p = wksp_laddr(w, lo);
      for (uint64_t i = 0; i < hi - lo; i++) p[i] = (uint8_t)test_rng(&rng);
    }
    char p[128];
    snprintf(p, sizeof p, "/tmp/wksp-test-input-%d.ckpt", (int)getpid());
    uint64_t n = 0;
    uint8_t *b = ws_ckpt_bytes(w, style, p, &n);
    CHECK(b);
    uint64_t bound =
        wksp_private_checkpt_v2_max_sz(64, 1u << 20, style == 2 ? WKSP_FRAME_RAW : WKSP_FRAME_LZ4);
    fprintf(stderr, "v%d: full checkpoint of %" PRIu64 " bytes, bound %" PRIu64 "\n", style, n, bound);
    CHECK(n <= bound);
    /* the footer of a file may not claim more than the limits */
    checkpt_ftr_t f;
    wksp_private_checkpt_ftr_decode(&f, b + n - CHECKPT_FTR_SZ);
    f.volume_cnt = 1025;
    wksp_private_checkpt_ftr_encode(b + n - CHECKPT_FTR_SZ, &f);
    checkpt_input_t in = checkpt_input_mem(b, n, "x");
    checkpt_scan_t s;
    CHECK_ERR(wksp_private_checkpt_scan(&s, &in), WKSP_ERR_CORRUPT);
    CHECK(strstr(wksp_errmsg(), "1025 volumes: at most part_max 64 allocations and 1024 frames"));
    /* a file longer than its header allows */
    uint8_t *big = calloc(1, bound + 1);
    memcpy(big, b, CHECKPT_HDR_SZ);
    in = checkpt_input_mem(big, bound + 1, "x");
    CHECK_ERR(wksp_private_checkpt_scan(&s, &in), WKSP_ERR_CORRUPT);
    CHECK(strstr(wksp_errmsg(), "longer than a checkpoint of this geometry can be"));
    free(big);
    free(b);
    unlink(p);
    ws_free(w);
  }
}

/* v1 streams are bounded by their preamble: what follows the terminator
 * is not read beyond the bound (the reference ignores it). */
static void test_v1_bounded(void) {
  wksp_t *w = ws_new("v1src", 1, 8, 1u << 16);
  CHECK(w);
  ftl_buf_t v = v1_encode(w, NULL, 0);
  CHECK(v.sz > 2);
  uint64_t bound = wksp_private_checkpt_v1_max_sz(8, 1u << 16);
  for (int kind = USE_VERIFY_FIRST; kind < USE_CNT; kind++) {
    feed_t f = {.pre = v.p, .pre_sz = v.sz, .tail = TAIL_RANDOM};
    refill();
    int rc = fed(&f, use_fd, &kind);
    CHECK(rc == WKSP_SUCCESS || kind == USE_DIFF);
    CHECK(f.written <= bound + PIPE_SLACK);
  }
  /* a terminator that never comes: 9 allocations of part_max 8 */
  v.sz--; /* drop it */
  uint64_t lo = checkpt_gaddr_lo(8);
  for (int k = 0; k < 9; k++) {
    uint8_t byte = (uint8_t)k;
    v1_svw(&v, 1);
    v1_svw(&v, lo + (uint64_t)k);
    v1_svw(&v, 1);
    v1_put(&v, &byte, 1);
  }
  int kind = USE_INFO;
  feed_t f = {.pre = v.p, .pre_sz = v.sz, .tail = TAIL_ZERO};
  CHECK_ERR(fed(&f, use_fd, &kind), WKSP_ERR_CORRUPT);
  CHECK(strstr(wksp_errmsg(), "more allocations than part_max 8"));
  CHECK(f.written <= bound + PIPE_SLACK);
  free(v.p);
  ws_free(w);
}

/* ---- the spool directory's free space ----------------------------------------------------- */

static int info_fd(int fd, void *ctx) {
  (void)ctx;
  wksp_checkpt_info_t info;
  int rc = wksp_checkpt_info_fd(fd, NULL, &info);
  if (!rc) wksp_checkpt_info_free(&info);
  return rc;
}

/* In a private 4 MiB tmpfs as TMPDIR: a stream whose header allows 64 MiB
 * fails with ENOSPC naming the directory before the filesystem is full
 * (not from a failed write); a small checkpoint with the same header is
 * spooled and read. */
static int space_child(void) {
  char parent[64] = "/tmp/wksp-test-input.XXXXXX", dir[128];
  if (!mkdtemp(parent)) return 1;
  int r = test_private_mount("tmpfs", "size=4m", parent, dir, sizeof dir);
  if (r) {
    rmdir(parent);
    return r;
  }
  setenv("TMPDIR", dir, 1);
  uint64_t sz, info_end, dmax = 64u << 20;
  uint8_t *b = empty_ckpt(2, 16, dmax, &sz, &info_end);
  CHILD_CHECK(b);
  feed_t f = {.pre = b, .pre_sz = info_end, .tail = TAIL_ZERO};
  int rc = fed(&f, info_fd, NULL);
  fprintf(stderr, "spool into a 4 MiB tmpfs: %s\n", wksp_errmsg());
  CHILD_CHECK(rc == WKSP_ERR_FAIL && wksp_errno() == ENOSPC);
  CHILD_CHECK(strstr(wksp_errmsg(), dir) && strstr(wksp_errmsg(), "set TMPDIR"));
  CHILD_CHECK(f.written < (4u << 20) + PIPE_SLACK);
  f = (feed_t){.pre = b, .pre_sz = sz, .tail = TAIL_NONE};
  CHILD_CHECK(fed(&f, info_fd, NULL) == WKSP_SUCCESS);
  free(b);
  umount(dir);
  rmdir(dir);
  rmdir(parent);
  return 0;
}

static int space_result;
static void test_spool_free_space(void) { CHECK_EQ(space_result, 0); }

int main(void) {
  signal(SIGPIPE, SIG_IGN);
  /* part_max 16: the data region holds the test streams' source regions
   * (part_max 16), so that their restores are not spooled to check the fit */
  target = ws_new("target", 1, 16, 4u << 20);
  if (!target) return 1;
  TEST_RUN(test_devices_refused_at_once);
  TEST_RUN(test_endless_after_header);
  TEST_RUN(test_endless_structure);
  TEST_RUN(test_bound_and_limits);
  TEST_RUN(test_v1_bounded);
  space_result = test_run_child(space_child);
  if (space_result == CHILD_SKIP)
    printf("SKIP %s/test_spool_free_space: cannot mount a private tmpfs here\n", test_prog_name());
  else
    TEST_RUN(test_spool_free_space);
  ws_free(target);
  return test_done();
}
