/* Waiting for the workspace lock with a report (lockwait.c): the holder's
 * pid as the lock word records it, the done = 0 notice once after
 * WKSP_LOCK_NOTICE_NS with that pid, the done = 1 report with the wait's
 * length, nothing when the lock is free, and a check that holds back the
 * notice or gives up.  Holders are forked children (holder.h) or a thread. */
#include "../lib/test.h"
#include "../lib/holder.h"
#include "util/err.h"

#include <pthread.h>
#include <time.h>

static wksp_t *anon(void) {
  wksp_t *w = NULL;
  if (wksp_new_anon("lockwait", 1 << 20, WKSP_PAGE_NORMAL, 7, 0, &w)) {
    fprintf(stderr, "wksp_new_anon: %s\n", wksp_errmsg());
    return NULL;
  }
  return w;
}

static void test_owner_pid(void) {
  wksp_t *w = anon();
  CHECK(w);
  CHECK_EQ(wksp_private_lock_owner(w), 0);
  CHECK_OK(wksp_private_lock(w));
  CHECK_EQ(wksp_private_lock_owner(w), getpid());
  wksp_private_unlock(w);
  holder_t h;
  CHECK(!holder_start(w, 0, &h));
  CHECK_EQ(wksp_private_lock_owner(w), h.pid);
  CHECK(!holder_stop(&h));
  CHECK_EQ(wksp_private_lock_owner(w), 0);
  wksp_delete_anon(w);
}

/* A thread other than the main one holds the lock: its process is named. */
typedef struct {
  wksp_t *w;
  int ready[2], go[2];
} thread_holder_t;

static void *thread_hold(void *arg) {
  thread_holder_t *t = arg;
  char b = 'x';
  if (wksp_private_lock(t->w)) return NULL;
  if (write(t->ready[1], &b, 1) != 1) {}
  if (read(t->go[0], &b, 1) < 0) {}
  wksp_private_unlock(t->w);
  return NULL;
}

static void test_owner_thread(void) {
  wksp_t *w = anon();
  CHECK(w);
  thread_holder_t t = {.w = w};
  CHECK(!pipe(t.ready) && !pipe(t.go));
  pthread_t th;
  CHECK(!pthread_create(&th, NULL, thread_hold, &t));
  char b;
  CHECK(read(t.ready[0], &b, 1) == 1);
  int64_t owner = wksp_private_lock_owner(w);
  CHECK(write(t.go[1], &b, 1) == 1);
  pthread_join(th, NULL);
  CHECK_EQ(owner, getpid());
  close(t.ready[0]);
  close(t.ready[1]);
  close(t.go[0]);
  close(t.go[1]);
  wksp_delete_anon(w);
}

static void test_free_lock_reports_nothing(void) {
  wksp_t *w = anon();
  CHECK(w);
  events_t e = {0};
  wksp_private_waiter_t wt = {.notify = events_record, .notify_ctx = &e};
  CHECK_OK(wksp_private_lock_wait(w, &wt));
  wksp_private_unlock(w);
  CHECK_EQ(e.n, 0);
  wksp_delete_anon(w);
}

/* Held until the notice and 200 ms more: one notice naming the holder,
 * then the lock and one report of the whole wait. */
static void test_notice_once_with_pid(void) {
  wksp_t *w = anon();
  CHECK(w);
  holder_t h;
  CHECK(!holder_start(w, 200, &h));
  events_t e = {.release = &h};
  wksp_private_waiter_t wt = {.notify = events_record, .notify_ctx = &e};
  int rc = wksp_private_lock_wait(w, &wt);
  if (!rc) wksp_private_unlock(w);
  CHECK(!holder_stop(&h));
  CHECK_OK(rc);
  CHECK_EQ(e.n, 2);
  CHECK_EQ(e.ev[0].done, 0);
  CHECK_EQ(e.ev[0].pid, h.pid);
  CHECK(e.ev[0].waited_ns >= WKSP_LOCK_NOTICE_NS);
  CHECK_EQ(e.ev[1].done, 1);
  CHECK_EQ(e.ev[1].pid, h.pid);
  CHECK(e.ev[1].waited_ns >= e.ev[0].waited_ns);
  CHECK(e.ev[1].waited_ns >= 200000000ull); /* the 200 ms held after the notice */
  wksp_delete_anon(w);
}

/* A check that suspects the wait (> 0) holds back the notice; one that
 * gives up (< 0) ends the wait with its code, the lock not taken. */
typedef struct {
  int calls;
  int64_t pid;
} check_t;

static int suspect_then_give_up(const wksp_t *w, int64_t pid, uint64_t waited_ns, void *ctx) {
  (void)w;
  (void)waited_ns;
  check_t *c = ctx;
  c->pid = pid;
  return ++c->calls < 4 ? 1 : wksp_err(WKSP_ERR_DEADLK, 0, "test: given up");
}

static void test_check_gives_up(void) {
  wksp_t *w = anon();
  CHECK(w);
  holder_t h;
  CHECK(!holder_start(w, 0, &h));
  events_t e = {0};
  check_t c = {0};
  wksp_private_waiter_t wt = {events_record, &e, suspect_then_give_up, &c};
  int rc = wksp_private_lock_wait(w, &wt);
  int still_held = wksp_private_lock_owner(w) == h.pid;
  CHECK(!holder_stop(&h));
  CHECK_ERR(rc, WKSP_ERR_DEADLK);
  CHECK(!strcmp(wksp_errmsg(), "test: given up"));
  CHECK(still_held);
  CHECK_EQ(c.calls, 4);
  CHECK_EQ(c.pid, h.pid);
  CHECK_EQ(e.n, 1); /* no notice while suspected; the end of the wait */
  CHECK_EQ(e.ev[0].done, 1);
  CHECK(e.ev[0].waited_ns >= 3 * WKSP_LOCK_NOTICE_NS);
  wksp_delete_anon(w);
}

/* The lock passes to another process during the wait: the check is given
 * the new holder, not the one first seen. */
typedef struct {
  wksp_t *w;
  holder_t h;
  int calls, handed;
  int64_t pid[3];
} handover_t;

static int hand_over(const wksp_t *w, int64_t pid, uint64_t waited_ns, void *ctx) {
  (void)w;
  (void)waited_ns;
  handover_t *o = ctx;
  o->pid[o->calls++] = pid;
  if (o->calls == 1) /* the first holder lets go and a second takes the lock */
    o->handed = !holder_stop(&o->h) && !holder_start(o->w, -1, &o->h);
  if (!o->handed || o->calls == 3) return wksp_err(WKSP_ERR_DEADLK, 0, "test: given up");
  return 1;
}

static void test_check_sees_new_holder(void) {
  wksp_t *w = anon();
  CHECK(w);
  handover_t o = {.w = w};
  CHECK(!holder_start(w, -1, &o.h));
  int64_t first = o.h.pid;
  wksp_private_waiter_t wt = {.check = hand_over, .check_ctx = &o};
  int rc = wksp_private_lock_wait(w, &wt);
  int64_t second = o.h.pid;
  CHECK(o.handed);
  CHECK(!holder_stop(&o.h));
  CHECK_ERR(rc, WKSP_ERR_DEADLK);
  CHECK_EQ(o.calls, 3);
  CHECK_EQ(o.pid[0], first);
  CHECK(second != first);
  CHECK_EQ(o.pid[1], second);
  CHECK_EQ(o.pid[2], second);
  wksp_delete_anon(w);
}

/* The thread holding the lock asking again: INVAL, not a hang. */
static void test_relock_same_thread(void) {
  wksp_t *w = anon();
  CHECK(w);
  events_t e = {0};
  wksp_private_waiter_t wt = {.notify = events_record, .notify_ctx = &e};
  CHECK_OK(wksp_private_lock(w));
  int rc = wksp_private_lock_wait(w, &wt);
  wksp_private_unlock(w);
  CHECK_ERR(rc, WKSP_ERR_INVAL);
  wksp_delete_anon(w);
}

int main(void) {
  alarm(120); /* a wait that never ends fails the program instead of hanging it */
  TEST_RUN(test_owner_pid);
  TEST_RUN(test_owner_thread);
  TEST_RUN(test_free_lock_reports_nothing);
  TEST_RUN(test_notice_once_with_pid);
  TEST_RUN(test_check_gives_up);
  TEST_RUN(test_check_sees_new_holder);
  TEST_RUN(test_relock_same_thread);
  return test_done();
}
