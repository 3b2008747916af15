/* Waiting for the workspace lock with a report: who holds it (the lock
 * word says), a notice for the caller once the wait is long enough to
 * mention, and a caller's check that may give up a wait that cannot end
 * (wksp_private.h, wksp_private_waiter_t). */
#include "wksp_private.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/futex.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

static uint64_t mono_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

#ifdef __GLIBC__
/* The kernel's largest thread id (PID_MAX_LIMIT on 64-bit Linux). */
#define TID_LIMIT (4u << 20)

/* A futex word that neither glibc nor the kernel leaves behind: waiters
 * but no holder (an unlock clears the whole word), or a holder id no
 * thread can have.  Only damage writes one, and every locker would sleep
 * on it for ever. */
static int word_impossible(uint32_t word) {
  uint32_t tid = word & FUTEX_TID_MASK;
  return !(word & FUTEX_OWNER_DIED) && ((tid == 0 && word != 0) || tid > TID_LIMIT);
}
#endif

/* glibc's robust mutex: the futex word holds the holder's tid, plus
 * FUTEX_OWNER_DIED once the kernel found the holder dead (the tid is then
 * cleared, but the mutex's owner field still names it); owner
 * INT_MAX - 1 marks a mutex made not recoverable.  An impossible word
 * reads as a dead holder: the next locker repairs it as one
 * (wksp_private_lock_word_repair). */
void wksp_private_lock_read(const wksp_t *w, wksp_lock_info_t *out) {
  const pthread_mutex_t *m = &w->lock.m;
#ifdef __GLIBC__
  uint32_t word = (uint32_t)__atomic_load_n(&m->__data.__lock, __ATOMIC_RELAXED);
  int owner = __atomic_load_n(&m->__data.__owner, __ATOMIC_RELAXED);
  if (owner == INT_MAX - 1) {
    out->state = WKSP_LOCK_BROKEN;
  } else if (word_impossible(word)) {
    out->state = WKSP_LOCK_DEAD;
  } else if (word & FUTEX_OWNER_DIED) {
    out->state = WKSP_LOCK_DEAD;
    out->tid = owner > 0 && owner < INT_MAX - 1 ? (uint32_t)owner : 0;
  } else if (word & FUTEX_TID_MASK) {
    out->state = WKSP_LOCK_HELD;
    out->tid = word & FUTEX_TID_MASK;
  } else {
    out->state = WKSP_LOCK_FREE;
  }
#else
  (void)m;
  out->state = WKSP_LOCK_UNKNOWN;
#endif
}

int wksp_private_lock_word_repair(wksp_t *w, uint32_t *was) {
#ifdef __GLIBC__
  int *word = &w->lock.m.__data.__lock;
  int seen = __atomic_load_n(word, __ATOMIC_RELAXED);
  *was = (uint32_t)seen;
  if (!word_impossible((uint32_t)seen)) return 0;
  /* No locker can change an impossible word (none can take it), so the
   * swap races only with another repair.  The waiters bit stays: the
   * unlock after the recovery wakes whoever sleeps on the word. */
  int dead = (int)(FUTEX_OWNER_DIED | ((uint32_t)seen & FUTEX_WAITERS));
  return __atomic_compare_exchange_n(word, &seen, dead, 0, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED);
#else
  (void)w;
  *was = 0;
  return 0;
#endif
}

/* The holder's thread id.  A robust mutex's futex word must hold it: the
 * kernel releases the lock of a thread that dies by finding its id there
 * (robust-futex ABI), so no field is needed in the header. */
static int64_t owner_tid(const wksp_t *w) {
  wksp_lock_info_t li = {0};
  wksp_private_lock_read(w, &li);
  return li.state == WKSP_LOCK_HELD ? li.tid : 0;
}

/* The process of thread tid, through /proc; tid itself where /proc is
 * missing, 0 when the thread is gone meanwhile. */
static int64_t tid_pid(int64_t tid) {
  char path[64];
  snprintf(path, sizeof path, "/proc/%" PRId64 "/status", tid);
  FILE *f = fopen(path, "re");
  if (!f) return access("/proc/self/status", F_OK) ? tid : 0;
  long long tgid = 0;
  char line[128];
  while (fgets(line, sizeof line, f))
    if (sscanf(line, "Tgid: %lld", &tgid) == 1) break;
  fclose(f);
  return tgid > 0 ? tgid : tid;
}

int64_t wksp_private_lock_owner(const wksp_t *w) {
  int64_t tid = owner_tid(w);
  return tid ? tid_pid(tid) : 0;
}

int wksp_private_mutex_wait(wksp_t *w, const wksp_private_waiter_t *wt, int *give_up) {
  *give_up = WKSP_SUCCESS;
  int e = pthread_mutex_trylock(&w->lock.m);
  if (e != EBUSY) return e;
  uint64_t t0 = mono_ns();
  wksp_lock_wait_t ev = {0};
  int noticed = 0;
  int64_t tid = 0, pid = 0;
  for (;;) {
    uint64_t now = mono_ns();
    /* The lock word is read each time (the holder may change); /proc only
     * when it names another thread, as a thread's process never changes. */
    int64_t t = owner_tid(w);
    if (t != tid || !pid) pid = t ? tid_pid(t) : 0;
    tid = t;
    if (pid) ev.pid = pid; /* the last holder seen, for the final report */
    ev.waited_ns = now - t0;
    int c = wt->check ? wt->check(w, pid, ev.waited_ns, wt->check_ctx) : 0;
    if (c < 0) {
      *give_up = c;
      break;
    }
    if (!noticed && !c && ev.waited_ns >= WKSP_LOCK_NOTICE_NS && wt->notify) {
      /* The holder may have let go while we looked (a pipe's writer: unlocked,
       * then closed the pipe, so the check no longer saw it feed us): a
       * notice only for a lock that is still held. */
      e = pthread_mutex_trylock(&w->lock.m);
      if (e != EBUSY) break;
      wt->notify(&ev, wt->notify_ctx);
      noticed = 1;
    }
    uint64_t until = now + WKSP_LOCK_NOTICE_NS;
    struct timespec ts = {(time_t)(until / 1000000000ull), (long)(until % 1000000000ull)};
    e = pthread_mutex_clocklock(&w->lock.m, CLOCK_MONOTONIC, &ts);
    if (e != ETIMEDOUT) break;
  }
  ev.done = 1;
  ev.waited_ns = mono_ns() - t0;
  if (wt->notify) wt->notify(&ev, wt->notify_ctx);
  return e;
}
