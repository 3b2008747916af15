/* For the lock-wait tests: a child process holding a workspace's lock (it
 * takes the lock, says so, holds it until holder_release or holder_stop and
 * hold_ms milliseconds more, then releases it and exits 0; never longer
 * than 10 s + hold_ms, so a waiter that misses its notice fails rather than
 * hangs), and a recorder of lock-wait events that can release a holder when
 * the waiter's notice (done = 0) comes: a wait is then always long enough
 * for its notice, however late the waiter starts, and at least hold_ms
 * longer. */
#ifndef WKSP_TESTS_WKSP_HOLDER_H
#define WKSP_TESTS_WKSP_HOLDER_H

#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../../src/wksp/wksp_private.h"

enum { EV_MAX = 8 };

typedef struct {
  pid_t pid;
  int go; /* closing it releases the holder (-1 once closed) */
} holder_t;

/* Lets the holder go (it releases the lock hold_ms later). */
static inline void holder_release(holder_t *h) {
  if (h->go >= 0) close(h->go);
  h->go = -1;
}

/* The events a wksp_lock_wait_fn_t received (the first EV_MAX of them);
 * with release set, the notice releases that holder. */
typedef struct {
  int n;
  wksp_lock_wait_t ev[EV_MAX];
  holder_t *release;
} events_t;

static inline void events_record(const wksp_lock_wait_t *ev, void *ctx) {
  events_t *e = ctx;
  if (e->n < EV_MAX) e->ev[e->n] = *ev;
  e->n++;
  if (!ev->done && e->release) holder_release(e->release);
}

/* 0 once the child holds w's lock, -1 on failure. */
static inline int holder_start(wksp_t *w, int hold_ms, holder_t *h) {
  int ready[2], go[2];
  if (pipe(ready)) return -1;
  if (pipe(go)) {
    close(ready[0]);
    close(ready[1]);
    return -1;
  }
  h->pid = fork();
  if (h->pid == 0) {
    close(ready[0]);
    close(go[1]);
    if (wksp_private_lock(w)) _exit(1);
    char b = 'x';
    if (write(ready[1], &b, 1) != 1) _exit(2);
    struct pollfd pf = {.fd = go[0], .events = POLLIN};
    while (poll(&pf, 1, 10000) > 0 && read(go[0], &b, 1) > 0) {}
    if (hold_ms > 0) usleep((useconds_t)hold_ms * 1000);
    wksp_private_unlock(w);
    _exit(0);
  }
  close(ready[1]);
  close(go[0]);
  char b;
  int ok = h->pid > 0 && read(ready[0], &b, 1) == 1;
  close(ready[0]);
  h->go = go[1];
  if (!ok) {
    close(h->go);
    if (h->pid > 0) waitpid(h->pid, NULL, 0);
    return -1;
  }
  return 0;
}

/* Releases the holder (if still holding) and reaps it: 0 if it exited 0. */
static inline int holder_stop(holder_t *h) {
  holder_release(h);
  int st = 0;
  if (waitpid(h->pid, &st, 0) != h->pid) return -1;
  return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -1;
}

#endif
