/* A minimal fork-join pool over pthreads: tasks [0, cnt) handed out by an
 * atomic counter; the calling thread works too.  Threads live only for one
 * wksp_private_checkpt_pool_run call, so none can be left behind.
 *
 * Ordered commit (pool_run_ordered): a task's result is committed
 * (commit(ctx, i)) in task order, by whichever thread finds the next one
 * done, one commit at a time (the committing flag: commits run outside the
 * lock while other threads keep finishing tasks).  A thread takes up task
 * i only once i < committed + ahead, so at most `ahead` results wait at any
 * time and the caller's ring slot i % ahead is free for task i.  The task
 * numbered `committed` never waits for room, so the run always progresses;
 * one pool runs the whole job, with no barrier between windows of tasks. */
#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <stdatomic.h>
#include <string.h>

#include "checkpt_private.h"
#include "util/err.h"

typedef struct {
  checkpt_task_fn_t task;         /* one of the two */
  checkpt_slot_task_fn_t slot_task;
  void *ctx;
  uint64_t cnt;
  atomic_uint_fast64_t next;
  atomic_uint slots;           /* slots handed to threads so far */
  atomic_uint left;            /* worker threads that returned */
  checkpt_progress_t *m;       /* reported while the caller waits; NULL = none */
  atomic_int failed;
  pthread_mutex_t lock; /* guards the first error and the ordered-commit state below */
  wksp_err_saved_t err;
  /* ordered commit: commit == NULL for the plain pool */
  checkpt_commit_fn_t commit;
  uint64_t ahead;
  uint8_t *done;      /* per ring slot: its task is done, not committed */
  uint64_t committed; /* tasks [0, committed) committed */
  int committing;
  pthread_cond_t room; /* committed moved (or the run failed) */
} pool_t;

static void pool_fail(pool_t *p, int rc) {
  pthread_mutex_lock(&p->lock);
  wksp_err_keep(&p->err, rc);
  pthread_mutex_unlock(&p->lock);
  atomic_store(&p->failed, 1);
}

static void pool_fail_ordered(pool_t *p, int rc) {
  pool_fail(p, rc);
  pthread_mutex_lock(&p->lock);
  pthread_cond_broadcast(&p->room);
  pthread_mutex_unlock(&p->lock);
}

/* Ordered: waits until task i has a ring slot. */
static void order_wait_room(pool_t *p, uint64_t i) {
  pthread_mutex_lock(&p->lock);
  while (i >= p->committed + p->ahead && !atomic_load(&p->failed)) pthread_cond_wait(&p->room, &p->lock);
  pthread_mutex_unlock(&p->lock);
}

/* Ordered: task i is done; commits every done task in order, unless
 * another thread is doing so (it will find task i). */
static void order_done(pool_t *p, uint64_t i) {
  pthread_mutex_lock(&p->lock);
  p->done[i % p->ahead] = 1;
  if (!p->committing) {
    p->committing = 1;
    while (p->committed < p->cnt && p->done[p->committed % p->ahead] && !atomic_load(&p->failed)) {
      uint64_t c = p->committed;
      p->done[c % p->ahead] = 0;
      pthread_mutex_unlock(&p->lock);
      int rc = p->commit(p->ctx, c);
      pthread_mutex_lock(&p->lock);
      if (rc) {
        wksp_err_keep(&p->err, rc);
        atomic_store(&p->failed, 1);
      }
      p->committed = c + 1;
      pthread_cond_broadcast(&p->room);
    }
    p->committing = 0;
  }
  pthread_mutex_unlock(&p->lock);
}

static void *pool_worker(void *arg) {
  pool_t *p = arg;
  uint32_t slot = atomic_fetch_add(&p->slots, 1);
  while (!atomic_load(&p->failed)) {
    uint64_t i = atomic_fetch_add(&p->next, 1);
    if (i >= p->cnt) break;
    if (p->commit) order_wait_room(p, i);
    if (atomic_load(&p->failed)) break;
    int rc = p->task ? p->task(p->ctx, i) : p->slot_task(p->ctx, i, slot);
    if (rc) {
      if (p->commit) pool_fail_ordered(p, rc);
      else pool_fail(p, rc);
    } else if (p->commit) {
      order_done(p, i);
    }
    /* The count may have grown by other threads' commits: the calling
     * thread reports it after each of its tasks, so that its reports do
     * not depend on which thread commits. */
    wksp_private_checkpt_progress_poll(p->m);
  }
  return NULL;
}

static void *pool_thread(void *arg) {
  pool_t *p = arg;
  pool_worker(p);
  atomic_fetch_add(&p->left, 1);
  if (p->m) wksp_private_checkpt_progress_wake(p->m);
  return NULL;
}

typedef struct {
  pool_t *p;
  uint32_t started;
} pool_wait_t;

static int pool_all_left(void *arg) {
  const pool_wait_t *x = arg;
  return atomic_load(&x->p->left) == x->started;
}

/* Runs p's tasks (p set up but for the atomics and the lock). */
static int pool_go(pool_t *p, uint32_t threads) {
  atomic_init(&p->slots, 0);
  atomic_init(&p->next, 0);
  atomic_init(&p->failed, 0);
  atomic_init(&p->left, 0);
  pthread_mutex_init(&p->lock, NULL);
  pthread_cond_init(&p->room, NULL);
  if (threads > WKSP_CHECKPT_THREADS_MAX) threads = WKSP_CHECKPT_THREADS_MAX;
  if (threads > p->cnt) threads = (uint32_t)p->cnt;
  pthread_t tid[WKSP_CHECKPT_THREADS_MAX];
  uint32_t started = 0;
  /* A thread that cannot be created just means fewer workers. */
  for (uint32_t t = 1; t < threads; t++) {
    if (pthread_create(&tid[started], NULL, pool_thread, p)) break;
    started++;
  }
  pool_worker(p);
  if (p->m && started) wksp_private_checkpt_progress_wait(p->m, pool_all_left, &(pool_wait_t){p, started});
  for (uint32_t t = 0; t < started; t++) pthread_join(tid[t], NULL);
  pthread_cond_destroy(&p->room);
  pthread_mutex_destroy(&p->lock);
  return wksp_err_kept(&p->err);
}

int wksp_private_checkpt_pool_run(uint32_t threads, uint64_t cnt, checkpt_task_fn_t task, void *ctx) {
  pool_t p = {.task = task, .ctx = ctx, .cnt = cnt};
  return pool_go(&p, threads);
}

int wksp_private_checkpt_pool_run_slots(uint32_t threads, uint64_t cnt, checkpt_slot_task_fn_t task,
                                     void *ctx) {
  pool_t p = {.slot_task = task, .ctx = ctx, .cnt = cnt};
  return pool_go(&p, threads);
}

int wksp_private_checkpt_pool_run_watched(uint32_t threads, uint64_t cnt, checkpt_slot_task_fn_t task,
                                        void *ctx, checkpt_progress_t *m) {
  pool_t p = {.slot_task = task, .ctx = ctx, .cnt = cnt, .m = m};
  return pool_go(&p, threads);
}

int wksp_private_checkpt_pool_run_ordered(uint32_t threads, uint64_t cnt, uint64_t ahead,
                                          checkpt_slot_task_fn_t task, checkpt_commit_fn_t commit, void *ctx,
                                          checkpt_progress_t *m) {
  if (!ahead) ahead = 1;
  uint8_t *done = calloc(ahead, 1);
  if (!done) return wksp_err(WKSP_ERR_NOMEM, 0, "pool: %" PRIu64 " ring slots", ahead);
  pool_t p = {.slot_task = task, .ctx = ctx, .cnt = cnt, .m = m, .commit = commit, .ahead = ahead, .done = done};
  int rc = pool_go(&p, threads);
  free(done);
  return rc;
}
