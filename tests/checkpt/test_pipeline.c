/* The parallel checkpoint (src/checkpt/pipeline.c): identity of the bytes
 * across thread counts, the memory bound, failing workers and output,
 * frames split between workers. */
#include "../lib/ws.h"
#include "../lib/vec.h"
#include "../lib/ckpt_test.h"
#include "../../src/checkpt/checkpt_private.h"
#include "../../src/wksp/wksp_private.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

/* The layer's test seam (checkpt_private.h): one hook for the program,
 * steered by these (its points come from several threads). */
static uint64_t g_fail_cgroup = UINT64_MAX; /* this cgroup frame fails */
static uint64_t g_write_fail_pos;
static int g_write_fail_errno;
static int g_write_armed;
static _Atomic uint64_t g_splits[2]; /* splits made, undone */
static _Atomic uint64_t g_out_peak;  /* the last parallel checkpoint's peak output */

static int test_hook(int point, const checkpt_hook_t *h) {
  switch (point) {
  case CHECKPT_HOOK_CGROUP: return h->a == g_fail_cgroup;
  case CHECKPT_HOOK_WRITE: /* the write reaching that offset */
    return g_write_armed && h->a + h->b > g_write_fail_pos ? g_write_fail_errno : 0;
  case CHECKPT_HOOK_SPLIT: atomic_fetch_add(&g_splits[h->a ? 0 : 1], 1); return 0;
  case CHECKPT_HOOK_PEAK: atomic_store(&g_out_peak, h->a); return 0;
  default: return 0;
  }
}

static char dir[256]; /* scratch directory */

/* ---- parallel checkpoint (issue 6) --------------------------------------------------------- */

/* Contents of the workspaces below: text, random bytes, or text with runs
 * of zeros (every third allocation zeroed from a random offset on: long
 * matches, few LZ4 hash insertions). */
enum { FILL_TEXT, FILL_RANDOM, FILL_ZERO_RUNS };

/* g_named: the source is a named workspace (a region file in a private
 * WKSP_SHMEM_DIR), and every thread count is written twice, from the
 * mapping and from the region file (wksp_private_bytes_route: what a CLI
 * process does); all must give the same bytes. */
static int g_named;
static char g_shm[300];

static wksp_t *par_src(uint64_t part_max, uint64_t data_max) {
  if (!g_named) return ws_new("par", 1, part_max, data_max);
  wksp_t *w = NULL;
  if (wksp_new_named_exact("par", part_max, data_max, WKSP_PAGE_NORMAL, 0600, 1) || wksp_attach("par", 0, &w))
    return NULL;
  return w;
}

static void par_src_free(wksp_t *w) {
  if (!g_named) {
    ws_free(w);
  } else {
    if (w) wksp_detach(w);
    wksp_delete_named("par");
  }
}

static void parallel_identity_of(uint64_t part_max, uint64_t data_max, uint64_t n, uint64_t max_sz,
                                 int fill) {
  uint64_t rng = test_seed() ^ n;
  wksp_t *w = par_src(part_max, data_max);
  CHECK(w);
  ws_fill(w, n, max_sz, fill != FILL_RANDOM, &rng);
  if (fill == FILL_ZERO_RUNS) {
    uint64_t cnt = 0;
    wksp_part_t *a = ws_allocs(w, &cnt);
    CHECK(a);
    for (uint64_t k = 0; k < cnt; k += 3) {
      uint64_t sz = a[k].gaddr_hi - a[k].gaddr_lo, from = test_rng(&rng) % sz;
      memset((uint8_t *)wksp_laddr(w, a[k].gaddr_lo) + from, 0, sz - from);
    }
    free(a);
  }
  static const uint32_t th[] = {1, 2, 3, 4, 8};
  for (int style = 2; style <= 3; style++) {
    uint8_t *ref = NULL;
    uint64_t ref_sz = 0;
    for (size_t i = 0; i < (g_named ? 10u : 5u); i++) {
      char p[512];
      snprintf(p, sizeof p, "%s/par-%d.ckpt", dir, style);
      unlink(p);
      wksp_checkpt_opts_t o = {.style = style, .threads = th[i % 5], .uinfo = "par"};
      wksp_private_bytes_route_force = !g_named ? 0 : i < 5 ? -1 : 1;
      int rc = wksp_checkpt(w, p, &o);
      wksp_private_bytes_route_force = 0;
      CHECK_OK(rc);
      uint64_t sz;
      uint8_t *b = ckpt_frames_of(p, &sz);
      CHECK(b);
      if (!ref) {
        ref = b;
        ref_sz = sz;
      } else {
        CHECK_EQ(sz, ref_sz);
        CHECK(!memcmp(b, ref, sz));
        free(b);
      }
      /* Restores with every thread count give the same workspace. */
      wksp_t *d = ws_new("dst", 1, part_max, data_max);
      CHECK_OK(wksp_restore(d, p, &(wksp_restore_opts_t){.seed = 5, .threads = th[i % 5]}));
      CHECK(ws_same(w, d));
      ws_free(d);
      unlink(p);
    }
    free(ref);
  }
  par_src_free(w);
}

static void parallel_identity(uint64_t part_max, uint64_t data_max, uint64_t n, uint64_t max_sz) {
  parallel_identity_of(part_max, data_max, n, max_sz, FILL_TEXT);
}

static void test_parallel_identity_small(void) {
  parallel_identity(64, 1 << 20, 0, 1);
  parallel_identity(64, 1 << 20, 1, 300000);
  parallel_identity(2048, 8 << 20, 500, 40000);
}
static void test_parallel_identity_cap(void) { parallel_identity(131072, 8 << 20, 62000, 48); }
/* Allocations of several MiB: a v2 file restore reads them in 1 MiB
 * pieces shared by the threads, so one allocation spans several pieces. */
static void test_parallel_identity_large_allocs(void) {
  parallel_identity(256, 24 << 20, 9, 3 << 20);
}

/* Frames larger than the per-thread buffer (lowered from 64 MiB to 64 KiB
 * here): workers that wait for their turn block instead of growing memory,
 * and the file is still identical. */
static void test_parallel_identity_big_frames(void) {
  uint64_t old = wksp_private_checkpt_tuning.par_buf_max;
  wksp_private_checkpt_tuning.par_buf_max = 65536;
  parallel_identity(256, 12 << 20, 90, 250000);
  wksp_private_checkpt_tuning.par_buf_max = old;
}


/* Frames of many output blocks (random bytes: ~20 MiB per frame) with the
 * per-thread budget lowered to 16 MiB: the output blocks held at once stay
 * within the bound of checkpt.c, (threads - 1) x budget (at least one 2 MiB
 * block) + 8 MiB, also when a frame that filled the budget while waiting
 * becomes the head; the file is the same for 1-4 threads. */
static void test_parallel_memory_bound(void) {
  uint64_t rng = 5;
  wksp_t *w = ws_new("mem", 1, 1024, 128 << 20);
  CHECK(w);
  ws_fill(w, 100, 2 << 20, 0, &rng);
  uint64_t old = wksp_private_checkpt_tuning.par_buf_max;
  wksp_private_checkpt_tuning.par_buf_max = 16 << 20;
  char p[512];
  snprintf(p, sizeof p, "%s/mem.ckpt", dir);
  uint8_t *ref = NULL;
  uint64_t ref_sz = 0;
  for (uint32_t t = 1; t <= 4; t++) {
    unlink(p);
    CHECK_OK(wksp_checkpt(w, p, &(wksp_checkpt_opts_t){.style = 3, .threads = t, .uinfo = "m"}));
    uint64_t budget = (t - 1) * (16ull << 20);
    if (budget < (2u << 20)) budget = 2u << 20;
    if (g_out_peak > budget + (8u << 20))
      fprintf(stderr, "%u threads: %" PRIu64 " bytes of output blocks at once\n", t, g_out_peak);
    CHECK(g_out_peak <= budget + (8u << 20));
    CHECK(g_out_peak >= (4u << 20)); /* frames of several blocks */
    uint64_t sz;
    uint8_t *b = ckpt_frames_of(p, &sz);
    CHECK(b);
    if (!ref) {
      ref = b;
      ref_sz = sz;
    } else {
      CHECK(sz == ref_sz && !memcmp(b, ref, sz));
      free(b);
    }
  }
  free(ref);
  unlink(p);
  wksp_private_checkpt_tuning.par_buf_max = old;
  ws_free(w);
}

/* A failing worker ends the checkpoint: no file, no thread left behind. */
static void test_parallel_failure(void) {
  wksp_t *w = ws_new("pub", 1, 2048, 8 << 20);
  CHECK(w);
  uint64_t rng = 8;
  ws_fill(w, 600, 20000, 1, &rng);
  char p[512];
  snprintf(p, sizeof p, "%s/pfail.ckpt", dir);
  int before = test_thread_count(-1);
  for (uint32_t t = 1; t <= 4; t++) {
    g_fail_cgroup = 5;
    int rc = wksp_checkpt(w, p, &(wksp_checkpt_opts_t){.threads = t});
    g_fail_cgroup = UINT64_MAX;
    CHECK_ERR(rc, WKSP_ERR_FAIL);
    CHECK(strstr(wksp_errmsg(), "injected failure at cgroup 5"));
    CHECK_EQ(test_dir_entries(dir), 0);
    CHECK_EQ(test_thread_count(before), before);
  }
  ws_free(w);
}

/* The output thread's write fails (EIO, ENOSPC injected at the first and
 * at a later write; EPIPE from a real pipe whose reader is gone): FAIL with
 * that errno, nothing at the path, no thread left behind, for 1-4 workers
 * and with the per-worker buffer lowered so that workers are waiting for
 * their turn when the failure comes. */

static void *read_some_main(void *arg) {
  int fd = *(int *)arg;
  static uint8_t buf[65536];
  for (size_t got = 0; got < (1u << 20);) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n <= 0) break;
    got += (size_t)n;
  }
  close(fd);
  return NULL;
}

static void test_parallel_output_failure(void) {
  wksp_t *w = ws_new("out", 1, 2048, 16 << 20);
  CHECK(w);
  uint64_t rng = 9;
  ws_fill(w, 700, 40000, 1, &rng);
  char p[512];
  snprintf(p, sizeof p, "%s/ofail.ckpt", dir);
  int before = test_thread_count(-1);
  uint64_t old = wksp_private_checkpt_tuning.par_buf_max;
  for (int k = 0; k < 4; k++) {
    g_write_fail_errno = k % 2 ? ENOSPC : EIO;
    g_write_fail_pos = k < 2 ? 0 : 1u << 20;
    wksp_private_checkpt_tuning.par_buf_max = k == 3 ? 65536 : old;
    for (uint32_t t = 1; t <= 4; t++) {
      g_write_armed = 1;
      int rc = wksp_checkpt(w, p, &(wksp_checkpt_opts_t){.style = 3, .threads = t});
      g_write_armed = 0;
      CHECK_ERR(rc, WKSP_ERR_FAIL);
      CHECK_EQ(wksp_errno(), g_write_fail_errno);
      CHECK(strstr(wksp_errmsg(), "cgroup frames") && strstr(wksp_errmsg(), p));
      CHECK_EQ(test_dir_entries(dir), 0);
      CHECK_EQ(test_thread_count(before), before);
    }
  }
  wksp_private_checkpt_tuning.par_buf_max = old;
  for (uint32_t t = 1; t <= 2; t++) { /* SIGPIPE is ignored (main) */
    int pfd[2];
    CHECK(!pipe(pfd));
    pthread_t th; /* the reader goes away after the header and some frames */
    CHECK(!pthread_create(&th, NULL, read_some_main, &pfd[0]));
    int rc = wksp_checkpt_fd(w, pfd[1], "gone", &(wksp_checkpt_opts_t){.style = 3, .threads = t});
    pthread_join(th, NULL);
    close(pfd[1]);
    CHECK_ERR(rc, WKSP_ERR_FAIL);
    CHECK_EQ(wksp_errno(), EPIPE);
    CHECK_EQ(test_thread_count(before), before);
  }
  CHECK_OK(wksp_verify(w));
  ws_free(w);
}

/* Frames split between workers (a worker with no frame left takes the
 * second half of a running one; split_min lowered from 8 MiB to 128 KiB so
 * that these small workspaces split many times, down to 2-chunk halves):
 * files stay byte-identical to the 1-thread file for every thread count and
 * restore identically, one frame (9 allocations; text, random bytes, runs
 * of zeros) or many.  With no warm-up
 * the second half's history never matches, every split is undone (the
 * first worker compresses the half itself, the other's output is dropped),
 * and the file is still the same.  An output failure while frames are split
 * leaves no file and no thread. */
static void test_parallel_split(void) {
  uint64_t old_min = wksp_private_checkpt_tuning.split_min, old_warm = wksp_private_checkpt_tuning.warm_sz;
  wksp_private_checkpt_tuning.split_min = 128 << 10;
  for (int warm = 1; warm >= 0; warm--) {
    wksp_private_checkpt_tuning.warm_sz = warm ? old_warm : 0;
    uint64_t made = g_splits[0], undone = g_splits[1];
    for (int fill = FILL_TEXT; fill <= FILL_ZERO_RUNS; fill++)
      parallel_identity_of(256, 24 << 20, 9, 3 << 20, fill);
    parallel_identity(2048, 16 << 20, 300, 200000);
    made = g_splits[0] - made;
    undone = g_splits[1] - undone;
    fprintf(stderr, "warm-up %" PRIu64 " bytes: %" PRIu64 " splits, %" PRIu64 " undone\n",
            wksp_private_checkpt_tuning.warm_sz, made, undone);
    CHECK(made >= 8);
    if (warm) CHECK(undone * 4 <= made);
    else CHECK_EQ(undone, made);
  }
  wksp_private_checkpt_tuning.warm_sz = old_warm;
  wksp_t *w = ws_new("split", 1, 256, 24 << 20);
  CHECK(w);
  uint64_t rng = 11;
  ws_fill(w, 9, 3 << 20, 1, &rng);
  char p[512];
  snprintf(p, sizeof p, "%s/sfail.ckpt", dir);
  int before = test_thread_count(-1);
  for (int k = 0; k < 3; k++) {
    g_write_fail_errno = EIO;
    g_write_fail_pos = (uint64_t)k << 20;
    g_write_armed = 1;
    int rc = wksp_checkpt(w, p, &(wksp_checkpt_opts_t){.style = 3, .threads = 2 + (uint32_t)k});
    g_write_armed = 0;
    CHECK_ERR(rc, WKSP_ERR_FAIL);
    CHECK_EQ(wksp_errno(), EIO);
    CHECK_EQ(test_dir_entries(dir), 0);
    CHECK_EQ(test_thread_count(before), before);
  }
  wksp_private_checkpt_tuning.split_min = old_min;
  ws_free(w);
}


/* The same identities (frames split between workers, with and without the
 * warm-up) with the data read from the region file instead of the mapping:
 * through read buffers the frame writer runs in exact mode. */
static void test_parallel_identity_region_file(void) {
  snprintf(g_shm, sizeof g_shm, "%s-shm-XXXXXX", dir);
  CHECK(mkdtemp(g_shm));
  setenv("WKSP_SHMEM_DIR", g_shm, 1);
  g_named = 1;
  uint64_t old_min = wksp_private_checkpt_tuning.split_min, old_warm = wksp_private_checkpt_tuning.warm_sz;
  wksp_private_checkpt_tuning.split_min = 128 << 10;
  uint64_t made = g_splits[0];
  for (int warm = 1; warm >= 0; warm--) {
    wksp_private_checkpt_tuning.warm_sz = warm ? old_warm : 0;
    for (int fill = FILL_TEXT; fill <= FILL_ZERO_RUNS; fill++) parallel_identity_of(256, 24 << 20, 9, 3 << 20, fill);
    parallel_identity(2048, 16 << 20, 300, 200000);
  }
  wksp_private_checkpt_tuning.warm_sz = old_warm;
  wksp_private_checkpt_tuning.split_min = old_min;
  g_named = 0;
  unsetenv("WKSP_SHMEM_DIR");
  test_rmdir(g_shm);
  CHECK(g_splits[0] - made >= 8);
}

int main(void) {
  wksp_private_checkpt_test_hook = test_hook;
  signal(SIGPIPE, SIG_IGN); /* readers that stop early close their pipe */
  ckpt_test_dir(dir, sizeof dir);
  TEST_RUN(test_parallel_identity_small);
  TEST_RUN(test_parallel_identity_cap);
  TEST_RUN(test_parallel_identity_large_allocs);
  TEST_RUN(test_parallel_identity_big_frames);
  TEST_RUN(test_parallel_failure);
  TEST_RUN(test_parallel_output_failure);
  TEST_RUN(test_parallel_split);
  TEST_RUN(test_parallel_identity_region_file);
  TEST_RUN(test_parallel_memory_bound);
  test_rmdir(dir);
  return test_done();
}
