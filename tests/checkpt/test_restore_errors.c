/* Restore of damaged checkpoints: truncations at many offsets and random
 * corruptions, through the mapped path and the pipe path.  The promise
 * checked every time: a clean error code, a target that still verifies,
 * and either an untouched target (structure errors; always on the mapped
 * path for truncation) or, for data errors, an empty target with CORRUPT
 * and a message saying it was reset. */
#include "../lib/ws.h"
#include "../lib/vec.h"
#include "../../src/checkpt/checkpt_private.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>

static char path[256];

typedef struct {
  int ok, untouched, reset;
} tally_t;

static int write_file(const uint8_t *b, uint64_t sz) {
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  if (fd < 0) return -1;
  int r = write(fd, b, sz) == (ssize_t)sz ? 0 : -1;
  close(fd);
  return r;
}

/* Restores b[0..sz) into w (pipe or file) and classifies the outcome;
 * returns 0 if the promise holds. */
static int verify_first; /* restore_case passes it to every restore */

static int restore_case(wksp_t *w, const uint8_t *b, uint64_t sz, int use_pipe, int must_fail,
                        tally_t *t) {
  uint8_t before[32], after[32];
  ws_digest(w, before);
  int rc;
  if (!use_pipe) {
    if (write_file(b, sz)) return -1;
    rc = wksp_restore(
        w, path, &(wksp_restore_opts_t){.seed = 11, .threads = 2, .verify_first = verify_first});
  } else {
    /* Alternately the sequential and the pipelined (2 threads) reader. */
    static unsigned turn;
    uint32_t threads = 1 + (turn++ & 1);
    rc = restore_piped(w, b, sz, "pipe",
                       &(wksp_restore_opts_t){.seed = 11, .threads = threads, .verify_first = verify_first});
  }
  if (wksp_verify(w)) {
    fprintf(stderr, "target does not verify after rc %d: %s\n", rc, wksp_errmsg());
    return -1;
  }
  if (!rc) {
    t->ok++;
    return must_fail ? -1 : 0;
  }
  if (rc != WKSP_ERR_CORRUPT && rc != WKSP_ERR_FULL && rc != WKSP_ERR_FAIL) {
    fprintf(stderr, "unexpected code %d: %s\n", rc, wksp_errmsg());
    return -1;
  }
  ws_digest(w, after);
  if (!memcmp(before, after, 32)) {
    t->untouched++;
    return 0;
  }
  uint64_t n = 1;
  free(ws_allocs(w, &n));
  if (n == 0 && strstr(wksp_errmsg(), "(target reset to empty)")) {
    t->reset++;
    return 0;
  }
  fprintf(stderr, "rc %d left a modified target: %s\n", rc, wksp_errmsg());
  return -1;
}

/* Refills the target with its reference contents. */
static void refill(wksp_t *w) {
  wksp_reset(w, 1);
  uint64_t rng = 99;
  ws_fill(w, 12, 4000, 1, &rng);
}

static uint8_t *make_ckpt(int style, uint64_t *sz) {
  wksp_t *src = ws_new("src", 1, 1024, 4 << 20);
  uint64_t rng = 1234;
  ws_fill(src, 150, 30000, 1, &rng);
  snprintf(path, sizeof path, "/tmp/wksp-test-rerr-%d.ckpt", (int)getpid());
  uint8_t *b = ws_ckpt_bytes(src, style, path, sz);
  ws_free(src);
  return b;
}

/* Truncation offsets: the small ones, every frame boundary +-1, and an even
 * spread. */
static uint64_t trunc_points(const uint8_t *b, uint64_t sz, uint64_t *out) {
  uint64_t n = 0;
  for (uint64_t i = 0; i <= 16; i++) out[n++] = i;
  static const uint64_t fixed[] = {79, 80, 81, 223, 224, 225};
  for (size_t i = 0; i < 6; i++) out[n++] = fixed[i];
  checkpt_input_t in = checkpt_input_mem(b, sz, "x");
  checkpt_scan_t s;
  if (!wksp_private_checkpt_scan(&s, &in)) {
    for (uint64_t g = 0; g < s.info.cgroup_cnt && n < 200; g++)
      for (int d = -1; d <= 1; d++) out[n++] = s.info.cgroups[g].off + (uint64_t)d;
    wksp_private_checkpt_scan_fini(&s);
  }
  for (uint64_t i = 1; i < 40; i++) out[n++] = sz * i / 40;
  for (uint64_t i = 1; i <= 130; i += 7) out[n++] = sz - i;
  return n;
}

static void truncations(const uint8_t *b, uint64_t sz) {
  wksp_t *w = ws_new("target", 1, 1024, 4 << 20);
  CHECK(w);
  refill(w);
  uint64_t pts[400];
  uint64_t n = trunc_points(b, sz, pts);
  tally_t tf = {0}, tp = {0};
  for (uint64_t i = 0; i < n; i++) {
    if (pts[i] >= sz) continue;
    if (restore_case(w, b, pts[i], 0, 1, &tf)) {
      fprintf(stderr, "file truncated to %" PRIu64 "\n", pts[i]);
      CHECK(0);
    }
    refill(w);
    if (restore_case(w, b, pts[i], 1, 1, &tp)) {
      fprintf(stderr, "pipe truncated to %" PRIu64 "\n", pts[i]);
      CHECK(0);
    }
    refill(w);
  }
  /* A truncated file is a structure error: never a change. */
  CHECK_EQ(tf.reset, 0);
  CHECK(tf.untouched > 0);
  /* A truncated pipe is found after writing: both outcomes occur. */
  CHECK(tp.reset > 0 && tp.untouched > 0);
  unlink(path);
  ws_free(w);
}

static void corruptions(uint8_t *b, uint64_t sz, int flips, int need_reset, uint64_t part_max,
                        uint64_t data_max) {
  wksp_t *w = ws_new("target", 1, part_max, data_max);
  CHECK(w);
  refill(w);
  uint64_t rng = test_seed();
  tally_t tf = {0}, tp = {0};
  for (int i = 0; i < flips; i++) {
    /* Half the flips hit the structure-dense ends (header, info, first
     * commands; appendix, volumes, footer), half anywhere. */
    uint64_t at = test_rng(&rng) % sz;
    if (i & 1) {
      uint64_t r = test_rng(&rng) % 1500;
      at = r < 1200 ? r % sz : sz - 1 - (r - 1200) % sz;
    }
    uint8_t x = (uint8_t)(1 + test_rng(&rng) % 255), old = b[at];
    b[at] ^= x;
    int edge = at < CHECKPT_HDR_SZ || at >= sz - CHECKPT_FTR_SZ; /* header and footer are cross-checked */
    int bad = restore_case(w, b, sz, 0, edge, &tf);
    refill(w);
    if (!bad && i % 4 == 0) {
      bad = restore_case(w, b, sz, 1, edge, &tp);
      refill(w);
    }
    b[at] = old;
    if (bad)
      fprintf(stderr, "flip at %" PRIu64 " by 0x%02x\n", at, x);
    CHECK(!bad);
  }
  fprintf(stderr,
          "corruptions: file ok %d untouched %d reset %d; pipe ok %d untouched %d reset %d\n",
          tf.ok, tf.untouched, tf.reset, tp.ok, tp.untouched, tp.reset);
  CHECK(tf.untouched > 0);
  if (need_reset) CHECK(tf.reset > 0);
  unlink(path);
  ws_free(w);
}

static void test_truncate_v2(void) {
  uint64_t sz = 0;
  uint8_t *b = make_ckpt(2, &sz);
  CHECK(b);
  truncations(b, sz);
  free(b);
}

static void test_truncate_v3(void) {
  uint64_t sz = 0;
  uint8_t *b = make_ckpt(3, &sz);
  CHECK(b);
  truncations(b, sz);
  free(b);
  CHECK_EQ(test_thread_count(1), 1); /* failed pipelined restores joined their workers */
}

static void test_corrupt_v2(void) {
  uint64_t sz = 0;
  uint8_t *b = make_ckpt(2, &sz);
  CHECK(b);
  corruptions(b, sz, 150, 0, 1024, 4 << 20);
  free(b);
}

static void test_corrupt_v3(void) {
  uint64_t sz = 0;
  uint8_t *b = make_ckpt(3, &sz);
  CHECK(b);
  corruptions(b, sz, 250, 1, 1024, 4 << 20);
  free(b);
}

/* verify_first: the same damaged v3 files, through files and pipes, never
 * leave a changed target (all or nothing). */
static void test_corrupt_v3_verify_first(void) {
  uint64_t sz = 0;
  uint8_t *b = make_ckpt(3, &sz);
  CHECK(b);
  wksp_t *w = ws_new("target", 1, 1024, 4 << 20);
  refill(w);
  uint64_t rng = test_seed();
  tally_t t = {0};
  verify_first = 1;
  for (int i = 0; i < 120; i++) {
    uint64_t at = test_rng(&rng) % sz;
    uint8_t x = (uint8_t)(1 + test_rng(&rng) % 255), old = b[at];
    b[at] ^= x;
    int bad = restore_case(w, b, sz, i & 1, 0, &t);
    refill(w);
    b[at] = old;
    if (bad) break;
  }
  verify_first = 0;
  fprintf(stderr, "verify_first: ok %d untouched %d reset %d\n", t.ok, t.untouched, t.reset);
  CHECK_EQ(t.reset, 0);
  CHECK(t.untouched > 0);
  unlink(path);
  ws_free(w);
  free(b);
}

/* A data error found after the reset: the CLI prints wksp_errcause(), so
 * the cause names the cgroup frame and ends with the reset note, the same
 * as for the error found before any change (verify_first); and the failure
 * is logged once (the note is appended, not recorded again). */
static int g_logged;
static void count_log(int err, const char *msg, void *ctx) {
  (void)err, (void)msg, (void)ctx;
  g_logged++;
}

static void test_data_error_cause(void) {
  uint64_t sz = 0;
  uint8_t *b = make_ckpt(3, &sz);
  CHECK(b && !write_file(b, sz));
  wksp_checkpt_info_t info;
  CHECK(!wksp_checkpt_info(path, &info) && info.cgroup_cnt > 0);
  const wksp_checkpt_cgroup_t *cg = &info.cgroups[0];
  wksp_t *w = ws_new("target", 1, 1024, 4 << 20);
  refill(w);
  wksp_restore_opts_t o = {.seed = 11, .threads = 1};
  int rc = WKSP_SUCCESS;
  char frame[320];
  snprintf(frame, sizeof frame, "%s: cgroup frame at %" PRIu64 ": ", path, cg->off);
  /* 0xff over a block's bytes (from the frame's second half on, past its
   * commands): the first place that makes LZ4 fail */
  for (uint64_t at = cg->off + (cg->end - cg->off) / 2; rc != WKSP_ERR_CORRUPT && at + 4 < cg->end; at++) {
    memcpy(b + at, "\xff\xff\xff\xff", 4);
    CHECK(!write_file(b, sz));
    g_logged = 0;
    wksp_log_set(count_log, NULL);
    rc = wksp_restore(w, path, &o);
    wksp_log_set(NULL, NULL);
    if (rc != WKSP_ERR_CORRUPT) refill(w); /* undetected (literals): more damage */
  }
  CHECK_EQ(rc, WKSP_ERR_CORRUPT);
  const char *cause = wksp_errcause(), *note = "(target reset to empty)";
  fprintf(stderr, "after the reset: %s\n", cause);
  CHECK(!strncmp(cause, frame, strlen(frame)));
  CHECK(strlen(cause) > strlen(note) && !strcmp(cause + strlen(cause) - strlen(note), note));
  CHECK_EQ(g_logged, 1);
  refill(w);
  o.verify_first = 1;
  CHECK_EQ(wksp_restore(w, path, &o), WKSP_ERR_CORRUPT);
  fprintf(stderr, "verify_first: %s\n", wksp_errcause());
  CHECK(!strncmp(wksp_errcause(), frame, strlen(frame)));
  wksp_checkpt_info_free(&info);
  unlink(path);
  ws_free(w);
  free(b);
}

static void test_corrupt_vectors(void) {
  for (size_t i = 0; i < VEC_CNT; i++) {
    vec_t v;
    CHECK(!vec_load(&v, i));
    size_t sz;
    uint8_t *b = (uint8_t *)vec_slurp(v.ckpt, &sz);
    CHECK(b);
    if (v.style == 1) {
      /* v1: truncation anywhere before the terminator fails, untouched. */
      wksp_t *w = ws_new("target", 1, v.part_max, v.data_max);
      refill(w);
      tally_t t = {0};
      for (uint64_t k = 0; k < 30; k++) CHECK(!restore_case(w, b, sz * k / 30, 0, 1, &t));
      CHECK_EQ(t.untouched, 30);
      ws_free(w);
    } else {
      corruptions((uint8_t *)b, sz, 40, 0, v.part_max, v.data_max);
    }
    free(b);
  }
}

/* Overlapping allocations in two cgroup frames (structure, found before any
 * change), built by editing a RAW checkpoint's meta command. */
static void test_overlap_detected_up_front(void) {
  uint64_t sz = 0;
  uint8_t *b = make_ckpt(2, &sz);
  CHECK(b);
  checkpt_input_t in = checkpt_input_mem(b, sz, "x");
  checkpt_scan_t s;
  CHECK_OK(wksp_private_checkpt_scan(&s, &in));
  CHECK(s.info.cgroup_cnt >= 2);
  /* The first allocation of cgroup 1 gets the range of cgroup 0's first. */
  uint8_t *cmd1 = b + s.info.cgroups[1].off, *cmd0 = b + s.info.cgroups[0].off;
  uint64_t lo0 = checkpt_ld64(cmd0 + 8), lo1 = checkpt_ld64(cmd1 + 8), hi1 = checkpt_ld64(cmd1 + 16);
  wksp_private_checkpt_scan_fini(&s);
  uint64_t len = hi1 - lo1;
  checkpt_st64(cmd1 + 8, lo0);
  checkpt_st64(cmd1 + 16, lo0 + len);
  wksp_t *w = ws_new("target", 1, 1024, 4 << 20);
  refill(w);
  tally_t t = {0};
  CHECK(!restore_case(w, b, sz, 0, 1, &t));
  CHECK_EQ(t.untouched, 1);
  CHECK(strstr(wksp_errmsg(), "overlap") || strstr(wksp_errmsg(), "above the previous"));
  unlink(path);
  ws_free(w);
  free(b);
}

/* ---- a file truncated while it is read ------------------------------------------
 * (ws.h: after the structure was validated, before the data is read), in
 * a child, whose death by a signal (SIGBUS when the file was mapped) is a
 * failure. */

static uint8_t *make_big_ckpt(int style, uint64_t *sz) {
  wksp_t *src = ws_new("src", 1, 1024, 8 << 20);
  uint64_t rng = 77;
  /* random bytes (LZ4 cannot shrink them) in many cgroup frames */
  for (int k = 0; k < 300; k++) {
    uint64_t g, lo, hi;
    if (wksp_alloc_at_least(src, 0, 4096 + test_rng(&rng) % 16384, 1 + k, &g, &lo, &hi)) break;
    uint8_t *b = wksp_laddr(src, lo);
    for (uint64_t i = 0; i < hi - lo; i++) b[i] = (uint8_t)test_rng(&rng);
  }
  snprintf(path, sizeof path, "/tmp/wksp-test-rerr-%d.ckpt", (int)getpid());
  uint8_t *b = ws_ckpt_bytes(src, style, path, sz);
  ws_free(src);
  return b;
}

static off_t trunc_to;

/* Child: restores path into a fresh target; 0 when the restore failed
 * cleanly because of the truncation. */
static int child_restore(uint32_t threads) {
  wksp_t *w = ws_new("target", 1, 1024, 8 << 20);
  if (!w) return 2;
  refill(w);
  int rc = ws_trunc_restore(w, path, trunc_to, &(wksp_restore_opts_t){.seed = 5, .threads = threads});
  const char *msg = wksp_errmsg();
  uint64_t n = 1;
  free(ws_allocs(w, &n));
  fprintf(stderr, "restore (%u thread(s)) of a file truncated while read: rc %d: %s\n", threads, rc,
          msg);
  return !(rc == WKSP_ERR_CORRUPT && strstr(msg, "file truncated while reading") &&
           strstr(msg, "(target reset to empty)") && !wksp_verify(w) && n == 0);
}

/* Child: prints path at level 5, truncated at its first output. */
static int child_print(void) {
  int rc = ws_trunc_print(path, trunc_to, 5);
  fprintf(stderr, "print -v 5 of a file truncated while read: rc %d: %s\n", rc, wksp_errmsg());
  return !(rc == WKSP_ERR_CORRUPT && strstr(wksp_errmsg(), "file truncated while reading"));
}

static void test_truncated_while_reading(void) {
  for (int style = 2; style <= 3; style++)
    for (int what = 0; what < 3; what++) {
      uint64_t sz = 0;
      uint8_t *b = make_big_ckpt(style, &sz);
      CHECK(b && sz > (2u << 20));
      CHECK(!write_file(b, sz));
      free(b);
      trunc_to = (off_t)(sz / 3);
      fflush(stderr);
      pid_t pid = fork();
      if (!pid) _exit(what == 2 ? child_print() : child_restore(1 + what));
      int st = 0;
      CHECK_EQ(waitpid(pid, &st, 0), pid);
      unlink(path);
      if (!WIFEXITED(st))
        fprintf(stderr, "v%d %s: killed by signal %d\n", style, what == 2 ? "print" : "restore",
                WIFSIGNALED(st) ? WTERMSIG(st) : 0);
      CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    }
}

int main(void) {
  signal(SIGPIPE, SIG_IGN); /* readers that stop early close their pipe */
  TEST_RUN(test_truncate_v2);
  TEST_RUN(test_truncate_v3);
  TEST_RUN(test_corrupt_v2);
  TEST_RUN(test_corrupt_v3);
  TEST_RUN(test_corrupt_v3_verify_first);
  TEST_RUN(test_data_error_cause);
  TEST_RUN(test_corrupt_vectors);
  TEST_RUN(test_overlap_detected_up_front);
  TEST_RUN(test_truncated_while_reading);
  return test_done();
}
