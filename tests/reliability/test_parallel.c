/* Parallel checkpoint and restore under concurrency, for ThreadSanitizer
 * (promise 6: scripts/tsan.sh builds this and the checkpt tests
 * with clang -fsanitize=thread) and as a plain test.
 *
 *  - Threads of one process at once: two allocate / free / fill on the
 *    source workspace; one checkpoints it through a pipe (3 writer threads)
 *    and restores the stream into a copy (pipelined reader); one
 *    checkpoints it to a file (2 threads) and restores with 4 threads.
 *    Every copy verifies and holds only allocations of the allocator
 *    threads.  (The allocators do not write into their allocations: such
 *    writes race with a checkpoint by design, docs/FORMAT.md 9.5, and would
 *    hide the library's own races from the sanitizer; the stress test
 *    checks contents.)
 *  - Restores of one file with 1, 2, 3, 4 and 8 threads give identical
 *    workspaces; checkpoints with those thread counts restore identically.
 *
 * Counts: WKSP_REL_PAR_CKPTS (quick 6, long 60) checkpoints per thread. */
#include "../lib/rel.h"

#include <inttypes.h>
#include <signal.h>

enum { ALLOCATORS = 2, LIVE = 300 };

static wksp_t *src;
static volatile int stop_alloc;
static char path[256];

static void *alloc_main(void *arg) {
  uint64_t id = (uint64_t)(uintptr_t)arg, rng = 99 + id, live[LIVE], n = 0;
  while (!__atomic_load_n(&stop_alloc, __ATOMIC_ACQUIRE)) {
    if (n < LIVE && (n == 0 || test_rng(&rng) % 2)) {
      uint64_t g, lo, hi, tag = 100 + id;
      if (wksp_alloc_at_least(src, 0, 1 + test_rng(&rng) % 5000, tag, &g, &lo, &hi)) continue;
      live[n++] = g;
    } else {
      uint64_t k = test_rng(&rng) % n;
      if (wksp_free(src, live[k])) abort();
      live[k] = live[--n];
    }
  }
  return NULL;
}

/* Copy check: verifies and holds allocator tags only.  1 if fine. */
static int copy_ok(wksp_t *r) {
  if (wksp_verify(r)) return 0;
  uint64_t n = 0;
  wksp_part_t *p = ws_allocs(r, &n);
  int ok = p || !n;
  for (uint64_t i = 0; i < n && ok; i++) ok = p[i].tag >= 100 && p[i].tag < 100 + ALLOCATORS;
  free(p);
  return ok;
}

typedef struct {
  int via_pipe, fails;
  uint64_t rounds, done;
} checkpt_thread_t;

static void *checkpt_main(void *arg) {
  checkpt_thread_t *c = arg;
  wksp_t *r = ws_new("copy", 1, wksp_part_max(src), wksp_data_max(src));
  char my_path[300];
  snprintf(my_path, sizeof my_path, "%s.%d", path, c->via_pipe);
  for (uint64_t i = 0; r && i < c->rounds; i++) {
    int rc, rrc;
    if (c->via_pipe) {
      rrc = ws_pipe_copy(src, &(wksp_checkpt_opts_t){.style = 3, .threads = 3}, r,
                         &(wksp_restore_opts_t){.seed = 3, .threads = 2}, &rc);
    } else {
      unlink(my_path);
      rc = wksp_checkpt(src, my_path, &(wksp_checkpt_opts_t){.style = 2 + (int)(i & 1), .threads = 2});
      rrc = rc ? -1 : wksp_restore(r, my_path, &(wksp_restore_opts_t){.seed = 4, .threads = 4});
    }
    if (rc || rrc || !copy_ok(r)) {
      fprintf(stderr, "checkpoint thread (pipe %d) round %" PRIu64 ": %d %d %s\n", c->via_pipe, i, rc,
              rrc, wksp_errmsg());
      c->fails++;
    }
    c->done++;
  }
  unlink(my_path);
  ws_free(r);
  return NULL;
}

static void test_concurrent(void) {
  uint64_t rounds = rel_param("PAR_CKPTS", 6, 60);
  src = ws_new("par", 1, 4096, 16 << 20);
  CHECK(src);
  pthread_t a[ALLOCATORS], c[2];
  checkpt_thread_t ct[2] = {{.via_pipe = 1, .rounds = rounds}, {.via_pipe = 0, .rounds = rounds}};
  stop_alloc = 0;
  for (int i = 0; i < ALLOCATORS; i++) pthread_create(&a[i], NULL, alloc_main, (void *)(uintptr_t)i);
  for (int i = 0; i < 2; i++) pthread_create(&c[i], NULL, checkpt_main, &ct[i]);
  for (int i = 0; i < 2; i++) pthread_join(c[i], NULL);
  __atomic_store_n(&stop_alloc, 1, __ATOMIC_RELEASE);
  for (int i = 0; i < ALLOCATORS; i++) pthread_join(a[i], NULL);
  CHECK_OK(wksp_verify(src));
  rel_figure("6", "concurrent", "%" PRIu64 " + %" PRIu64 " checkpoints (pipe with 3 writer threads, file with 2) "
             "of a workspace two threads were changing, each restored (2 and 4 threads) and checked: %d failures",
             ct[0].done, ct[1].done, ct[0].fails + ct[1].fails);
  CHECK_EQ(ct[0].fails + ct[1].fails, 0);
  CHECK_EQ(ct[0].done + ct[1].done, 2 * rounds);
  ws_free(src);
}

static void test_thread_counts(void) {
  static const uint32_t counts[] = {1, 2, 3, 4, 8};
  wksp_t *s = ws_new("tc", 1, 4096, 16 << 20), *r = ws_new("tcr", 1, 4096, 16 << 20);
  CHECK(s && r);
  uint64_t rng = 5;
  ws_fill(s, 1500, 20000, 1, &rng);
  for (size_t i = 0; i < 5; i++) {
    snprintf(path, sizeof path, "/tmp/wksp-rel-par-%d.ckpt", (int)getpid());
    unlink(path);
    CHECK_OK(wksp_checkpt(s, path, &(wksp_checkpt_opts_t){.style = 3, .threads = counts[i]}));
    for (size_t j = 0; j < 5; j++) {
      CHECK_OK(wksp_restore(r, path, &(wksp_restore_opts_t){.seed = 1, .threads = counts[j]}));
      CHECK_OK(wksp_verify(r));
      CHECK(ws_same(s, r));
    }
    unlink(path);
  }
  ws_free(s);
  ws_free(r);
}

int main(void) {
  signal(SIGPIPE, SIG_IGN);
  snprintf(path, sizeof path, "/tmp/wksp-rel-par-%d.ckpt", (int)getpid());
  TEST_RUN(test_concurrent);
  TEST_RUN(test_thread_counts);
  return test_done();
}
