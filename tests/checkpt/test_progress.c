/* The progress meter (src/checkpt/progress.c): reports on the calling
 * thread only, never backwards, never past the total; a caller waiting for
 * workers reports each 4 MiB mark a worker passes.  The worker below waits
 * for the caller's report of each mark before it goes on, so the test does
 * not depend on scheduling (a missing report times out, after 5 s, instead
 * of hanging). */
#include "../lib/test.h"
#include "../../src/checkpt/checkpt_private.h"

#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <time.h>

enum { MARKS = 12 };

typedef struct {
  pthread_t caller;
  uint64_t seen[64], totals[64];
  int n, off_thread;
  sem_t reported;
} rec_t;

static void rec_fn(uint64_t done, uint64_t total, void *ctx) {
  rec_t *r = ctx;
  if (!pthread_equal(pthread_self(), r->caller)) r->off_thread = 1;
  if (r->n < 64) {
    r->seen[r->n] = done;
    r->totals[r->n] = total;
  }
  r->n++;
  sem_post(&r->reported);
}

/* ---- one thread ---------------------------------------------------------- */

static void test_caller_reports_at_once(void) {
  rec_t r = {.caller = pthread_self()};
  sem_init(&r.reported, 0, 0);
  checkpt_progress_t m;
  wksp_private_checkpt_progress_init(&m, rec_fn, &r, 100);
  wksp_private_checkpt_progress_add(&m, 10);
  wksp_private_checkpt_progress_add(&m, 0); /* nothing new: no report */
  wksp_private_checkpt_progress_add(&m, 30);
  wksp_private_checkpt_progress_undo(&m, 20); /* below what was reported: not reported */
  wksp_private_checkpt_progress_tick(&m);
  wksp_private_checkpt_progress_add(&m, 500); /* past the total: clamped */
  wksp_private_checkpt_progress_end(&m, 100);
  wksp_private_checkpt_progress_fini(&m);
  sem_destroy(&r.reported);
  CHECK_EQ(r.n, 4);
  CHECK_EQ(r.seen[0], 10);
  CHECK_EQ(r.seen[1], 40);
  CHECK_EQ(r.seen[2], 100);
  CHECK_EQ(r.seen[3], 100);
  CHECK_EQ(r.totals[3], 100);
  CHECK(!r.off_thread);
}

/* A pipe's total is unknown until the end, and the end never goes back. */
static void test_unknown_total(void) {
  rec_t r = {.caller = pthread_self()};
  sem_init(&r.reported, 0, 0);
  checkpt_progress_t m;
  wksp_private_checkpt_progress_init(&m, rec_fn, &r, 0);
  wksp_private_checkpt_progress_add(&m, 7 << 20);
  wksp_private_checkpt_progress_end(&m, 5 << 20); /* less than reported: stays */
  wksp_private_checkpt_progress_fini(&m);
  sem_destroy(&r.reported);
  CHECK_EQ(r.n, 2);
  CHECK_EQ(r.seen[0], 7 << 20);
  CHECK_EQ(r.totals[0], 0);
  CHECK_EQ(r.seen[1], 7 << 20);
  CHECK_EQ(r.totals[1], 7 << 20);
}

/* Without a callback the meter still counts (a waiting caller must not
 * spin on a count it never reports), reports nothing, and a NULL meter is
 * no meter. */
static void test_no_callback(void) {
  checkpt_progress_t m;
  wksp_private_checkpt_progress_init(&m, NULL, NULL, 10);
  wksp_private_checkpt_progress_add(&m, 5);
  wksp_private_checkpt_progress_tick(&m);
  uint64_t counted = atomic_load(&m.done), reported = m.reported;
  wksp_private_checkpt_progress_end(&m, 10);
  uint64_t reported_end = m.reported;
  wksp_private_checkpt_progress_fini(&m);
  wksp_private_checkpt_progress_add(NULL, 5);
  wksp_private_checkpt_progress_tick(NULL);
  wksp_private_checkpt_progress_end(NULL, 5);
  CHECK_EQ(counted, 5);
  CHECK_EQ(reported, 0);
  CHECK_EQ(reported_end, 0);
}

/* ---- a worker, the caller waiting ---------------------------------------- */

typedef struct {
  checkpt_progress_t *m;
  rec_t *r;
  atomic_int finished;
  int timed_out;
} work_t;

static void *worker(void *arg) {
  work_t *x = arg;
  for (int k = 0; k < MARKS; k++) {
    wksp_private_checkpt_progress_add(x->m, CHECKPT_PROGRESS_STEP);
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    t.tv_sec += 5;
    int e;
    while ((e = sem_timedwait(&x->r->reported, &t)) && errno == EINTR) {}
    if (e) x->timed_out++;
  }
  atomic_store(&x->finished, 1);
  wksp_private_checkpt_progress_wake(x->m);
  return NULL;
}

static int work_finished(void *arg) { return atomic_load(&((work_t *)arg)->finished); }

static void test_waiting_caller_reports_marks(void) {
  rec_t r = {.caller = pthread_self()};
  sem_init(&r.reported, 0, 0);
  checkpt_progress_t m;
  uint64_t total = (uint64_t)MARKS * CHECKPT_PROGRESS_STEP;
  wksp_private_checkpt_progress_init(&m, rec_fn, &r, total);
  work_t x = {.m = &m, .r = &r};
  atomic_init(&x.finished, 0);
  pthread_t t;
  CHECK(!pthread_create(&t, NULL, worker, &x));
  wksp_private_checkpt_progress_wait(&m, work_finished, &x);
  pthread_join(t, NULL);
  wksp_private_checkpt_progress_end(&m, total);
  wksp_private_checkpt_progress_fini(&m);
  sem_destroy(&r.reported);
  CHECK_EQ(x.timed_out, 0);
  CHECK(!r.off_thread);
  CHECK(r.n >= MARKS);
  for (int k = 0; k < MARKS; k++) CHECK_EQ(r.seen[k], (uint64_t)(k + 1) * CHECKPT_PROGRESS_STEP);
  CHECK_EQ(r.seen[r.n - 1], total);
}

int main(void) {
  TEST_RUN(test_caller_reports_at_once);
  TEST_RUN(test_unknown_total);
  TEST_RUN(test_no_callback);
  TEST_RUN(test_waiting_caller_reports_marks);
  return test_done();
}
