/* Progress of one checkpoint or restore call (checkpt_private.h).
 *
 * The callback's contract (include/wksp/checkpt.h) is that it runs on the
 * calling thread only, so worker threads cannot call it: they count the
 * bytes they handled in an atomic, and the calling thread reports the
 * count whenever it gets the chance: after each step of its own work, and,
 * once it has none left, each time a worker crosses a step boundary (it
 * waits for that here instead of in pthread_join).  An operator watching
 * a workspace of a few huge allocations so sees it move, instead of
 * nothing until a whole cgroup frame is done. */
#include "checkpt_private.h"

void wksp_private_checkpt_progress_init(checkpt_progress_t *m, wksp_progress_fn_t fn, void *ctx,
                                        uint64_t total) {
  m->fn = fn;
  m->ctx = ctx;
  m->total = total;
  atomic_init(&m->done, 0);
  m->reported = 0;
  m->caller = pthread_self();
  m->idle = 0;
  pthread_mutex_init(&m->lock, NULL);
  pthread_cond_init(&m->cv, NULL);
}

void wksp_private_checkpt_progress_fini(checkpt_progress_t *m) {
  pthread_mutex_destroy(&m->lock);
  pthread_cond_destroy(&m->cv);
}

void wksp_private_checkpt_progress_add(checkpt_progress_t *m, uint64_t n) {
  if (!m || !n) return;
  uint64_t was = atomic_fetch_add_explicit(&m->done, n, memory_order_relaxed);
  if (pthread_equal(pthread_self(), m->caller)) {
    wksp_private_checkpt_progress_tick(m);
  } else if (was / CHECKPT_PROGRESS_STEP != (was + n) / CHECKPT_PROGRESS_STEP) {
    pthread_mutex_lock(&m->lock);
    if (m->idle) pthread_cond_signal(&m->cv);
    pthread_mutex_unlock(&m->lock);
  }
}

void wksp_private_checkpt_progress_undo(checkpt_progress_t *m, uint64_t n) {
  if (m && n) atomic_fetch_sub_explicit(&m->done, n, memory_order_relaxed);
}

/* Bytes counted so far as the caller may report them: never past the
 * total (work redone after a failed split is counted twice for a while). */
static uint64_t counted(const checkpt_progress_t *m) {
  uint64_t d = atomic_load_explicit(&m->done, memory_order_relaxed);
  return m->total && d > m->total ? m->total : d;
}

void wksp_private_checkpt_progress_tick(checkpt_progress_t *m) {
  if (!m || !m->fn) return;
  uint64_t d = counted(m);
  if (d <= m->reported) return;
  m->reported = d;
  m->fn(d, m->total, m->ctx);
}

void wksp_private_checkpt_progress_poll(checkpt_progress_t *m) {
  if (m && pthread_equal(pthread_self(), m->caller)) wksp_private_checkpt_progress_tick(m);
}

void wksp_private_checkpt_progress_end(checkpt_progress_t *m, uint64_t done) {
  if (!m || !m->fn) return;
  if (done < m->reported) done = m->reported; /* never backwards */
  if (!m->total) m->total = done;           /* a pipe's total is known now */
  m->reported = done;
  m->fn(done, m->total, m->ctx);
}

/* The count is checked under the lock before each wait: a worker that
 * passes a mark after that check finds the caller idle and wakes it, one
 * that passed it before is reported without waiting. */
void wksp_private_checkpt_progress_wait(checkpt_progress_t *m, int (*finished)(void *), void *arg) {
  pthread_mutex_lock(&m->lock);
  for (;;) {
    int fin = finished(arg);
    if (!fin && !(m->fn && counted(m) > m->reported)) {
      m->idle = 1;
      pthread_cond_wait(&m->cv, &m->lock);
      m->idle = 0;
    }
    pthread_mutex_unlock(&m->lock);
    wksp_private_checkpt_progress_tick(m);
    if (fin) return;
    pthread_mutex_lock(&m->lock);
  }
}

void wksp_private_checkpt_progress_wake(checkpt_progress_t *m) {
  pthread_mutex_lock(&m->lock);
  pthread_cond_signal(&m->cv);
  pthread_mutex_unlock(&m->lock);
}
