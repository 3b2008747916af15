/* The checkpoint thread pool (src/checkpt/pool.c), its ordered commit:
 * every task committed once, in task order, one commit at a time; task i
 * starts only while i < committed + ahead, so the ring slot i % ahead it
 * fills is never one a commit still has to read; a failing task or commit
 * stops the commits there and its code and message come back.  Tasks
 * sleep a random few microseconds so that threads finish out of order. */
#include "../lib/test.h"
#include "../../src/checkpt/checkpt_private.h"
#include "../../src/util/err.h"

#include <stdatomic.h>
#include <time.h>

enum { CNT_MAX = 600, AHEAD_MAX = 16 };

typedef struct {
  uint64_t cnt, ahead, fail_task, fail_commit; /* UINT64_MAX: none */
  uint64_t ring[AHEAD_MAX];                   /* the task that filled each slot */
  uint64_t order[CNT_MAX];                    /* commit order */
  atomic_uint_fast64_t committed, started, in_commit;
  atomic_int bad_room, bad_slot, bad_overlap;
  uint64_t seed;
} ord_t;

static void nap(uint64_t i, uint64_t seed) {
  uint64_t x = (i + 1) * 0x9E3779B97F4A7C15ull ^ seed;
  x ^= x >> 29;
  struct timespec ts = {0, (long)(x % 40) * 1000};
  if (x % 3) nanosleep(&ts, NULL);
}

static int ord_task(void *ctx, uint64_t i, uint32_t slot) {
  (void)slot;
  ord_t *o = ctx;
  atomic_fetch_add(&o->started, 1);
  if (i >= atomic_load(&o->committed) + o->ahead) atomic_store(&o->bad_room, 1);
  nap(i, o->seed);
  if (i == o->fail_task) return wksp_err(WKSP_ERR_CORRUPT, 0, "task %" PRIu64 " failed", i);
  o->ring[i % o->ahead] = i;
  return WKSP_SUCCESS;
}

static int ord_commit(void *ctx, uint64_t i) {
  ord_t *o = ctx;
  if (atomic_fetch_add(&o->in_commit, 1)) atomic_store(&o->bad_overlap, 1);
  uint64_t c = atomic_load(&o->committed);
  if (o->ring[i % o->ahead] != i) atomic_store(&o->bad_slot, 1);
  nap(i + 7, o->seed);
  int rc = WKSP_SUCCESS;
  if (i == o->fail_commit) rc = wksp_err(WKSP_ERR_FAIL, 0, "commit %" PRIu64 " failed", i);
  else o->order[c] = i;
  if (!rc) atomic_store(&o->committed, c + 1);
  atomic_fetch_sub(&o->in_commit, 1);
  return rc;
}

/* One run of cnt tasks over `threads`, o reset first; UINT64_MAX: nothing fails. */
static int ord_run(ord_t *o, uint32_t threads, uint64_t cnt, uint64_t ahead, uint64_t fail_task,
                   uint64_t fail_commit, uint64_t seed) {
  *o = (ord_t){.cnt = cnt, .ahead = ahead, .fail_task = fail_task, .fail_commit = fail_commit, .seed = seed};
  atomic_init(&o->committed, 0);
  atomic_init(&o->started, 0);
  atomic_init(&o->in_commit, 0);
  atomic_init(&o->bad_room, 0);
  atomic_init(&o->bad_slot, 0);
  atomic_init(&o->bad_overlap, 0);
  return wksp_private_checkpt_pool_run_ordered(threads, cnt, ahead, ord_task, ord_commit, o, NULL);
}

static ord_t o; /* 5 KiB: static */

static void test_ordered_commits_in_order(void) {
  static const uint64_t cnts[] = {0, 1, 2, 7, 64, 599};
  static const uint64_t aheads[] = {1, 2, 3, 8, 16};
  for (uint32_t threads = 1; threads <= 4; threads++)
    for (size_t a = 0; a < sizeof aheads / sizeof *aheads; a++)
      for (size_t c = 0; c < sizeof cnts / sizeof *cnts; c++) {
        CHECK_ERR(ord_run(&o, threads, cnts[c], aheads[a], UINT64_MAX, UINT64_MAX, threads * 1000 + a * 10 + c),
                  WKSP_SUCCESS);
        CHECK_EQ(atomic_load(&o.committed), o.cnt);
        for (uint64_t i = 0; i < o.cnt; i++) CHECK_EQ(o.order[i], i);
        CHECK(!atomic_load(&o.bad_room));
        CHECK(!atomic_load(&o.bad_slot));
        CHECK(!atomic_load(&o.bad_overlap));
      }
}

static void test_ordered_task_failure(void) {
  for (uint32_t threads = 1; threads <= 3; threads++) {
    CHECK_ERR(ord_run(&o, threads, 300, 4, 123, UINT64_MAX, threads), WKSP_ERR_CORRUPT);
    CHECK(strstr(wksp_errmsg(), "task 123 failed") != NULL);
    /* commits stop before the failed task: nothing after it is committed */
    CHECK(atomic_load(&o.committed) <= 123);
    for (uint64_t i = 0; i < atomic_load(&o.committed); i++) CHECK_EQ(o.order[i], i);
    /* and the run stops taking tasks: at most the ring's worth beyond it */
    CHECK(atomic_load(&o.started) <= 123 + o.ahead + threads);
  }
}

static void test_ordered_commit_failure(void) {
  for (uint32_t threads = 1; threads <= 3; threads++) {
    CHECK_ERR(ord_run(&o, threads, 300, 5, UINT64_MAX, 77, threads + 50), WKSP_ERR_FAIL);
    CHECK(strstr(wksp_errmsg(), "commit 77 failed") != NULL);
    CHECK_EQ(atomic_load(&o.committed), 77);
    CHECK(atomic_load(&o.started) <= 78 + o.ahead + threads);
  }
}

int main(void) {
  TEST_RUN(test_ordered_commits_in_order);
  TEST_RUN(test_ordered_task_failure);
  TEST_RUN(test_ordered_commit_failure);
  return test_done();
}
