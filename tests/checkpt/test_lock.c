/* Checkpoint and restore waiting for the workspace lock (src/checkpt/lock.c):
 * the lock_wait option hears once who holds the lock and how long the wait
 * lasted; a restore from a pipe written by a checkpoint of the same
 * workspace, which waited forever before, gives up with DEADLK naming the
 * writer, the workspace untouched, and the writer fails with EPIPE; a
 * holder that writes the pipe without filling it is waited for.  Holders
 * are forked children (tests/lib/holder.h) on anonymous workspaces. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <sys/stat.h>

#include "../lib/holder.h"
#include "../lib/ws.h"

static char dir[64];

/* An anonymous workspace (shared with forked children) of `mib` MiB whose
 * allocations hold about half of it, mostly random bytes (incompressible:
 * its checkpoint is much larger than a pipe). */
static wksp_t *anon_filled(const char *name, uint64_t mib) {
  wksp_t *w = NULL;
  if (wksp_new_anon(name, mib << 20, WKSP_PAGE_NORMAL, 5, 256, &w)) {
    fprintf(stderr, "wksp_new_anon: %s\n", wksp_errmsg());
    return NULL;
  }
  uint64_t rng = 77, g;
  if (wksp_alloc(w, 0, (mib << 20) / 2, 9, &g)) return NULL;
  uint64_t *p = wksp_laddr(w, g);
  for (uint64_t i = 0; i < (mib << 20) / 16; i++) p[i] = test_rng(&rng);
  ws_fill(w, 40, 3000, 1, &rng);
  return w;
}

/* Exactly one notice (done = 0, naming pid) then the end of the wait. */
static int notice_then_end(const events_t *e, pid_t pid) {
  return e->n == 2 && !e->ev[0].done && e->ev[0].pid == pid &&
         e->ev[0].waited_ns >= WKSP_LOCK_NOTICE_NS && e->ev[1].done &&
         e->ev[1].waited_ns >= e->ev[0].waited_ns;
}

static void test_checkpt_reports_wait(void) {
  wksp_t *w = anon_filled("lk_ck", 2);
  CHECK(w);
  char path[96];
  snprintf(path, sizeof path, "%s/a.ckpt", dir);
  holder_t h;
  CHECK(!holder_start(w, 0, &h));
  events_t e = {.release = &h};
  wksp_checkpt_opts_t o = {.lock_wait = events_record, .lock_wait_ctx = &e};
  int rc = wksp_checkpt(w, path, &o);
  CHECK(!holder_stop(&h));
  CHECK_OK(rc);
  CHECK(notice_then_end(&e, h.pid));
  unlink(path);
  wksp_delete_anon(w);
}

/* From a file, and from a pipe that the holder does not write. */
static void test_restore_reports_wait(void) {
  wksp_t *w = anon_filled("lk_rs", 2);
  CHECK(w);
  char path[96];
  snprintf(path, sizeof path, "%s/b.ckpt", dir);
  CHECK_OK(wksp_checkpt(w, path, NULL));
  uint8_t before[32], after[32];
  ws_digest(w, before);
  for (int piped = 0; piped < 2; piped++) {
    holder_t h;
    CHECK(!holder_start(w, 0, &h));
    events_t e = {.release = &h};
    wksp_restore_opts_t o = {.seed = 5, .threads = 2, .lock_wait = events_record, .lock_wait_ctx = &e};
    int rc;
    if (!piped) {
      rc = wksp_restore(w, path, &o);
    } else {
      int fd = open(path, O_RDONLY);
      struct stat st;
      uint8_t *b = fd >= 0 && !fstat(fd, &st) ? malloc((size_t)st.st_size) : NULL;
      rc = b && read(fd, b, (size_t)st.st_size) == st.st_size
               ? restore_piped(w, b, (uint64_t)st.st_size, "pipe", &o)
               : WKSP_ERR_FAIL;
      free(b);
      if (fd >= 0) close(fd);
    }
    CHECK(!holder_stop(&h));
    CHECK_OK(rc);
    CHECK(notice_then_end(&e, h.pid));
    ws_digest(w, after);
    CHECK(!memcmp(before, after, 32));
  }
  unlink(path);
  wksp_delete_anon(w);
}

/* A child writes a checkpoint of w into a pipe that this process restores
 * w from (the CLI's `wksp checkpt W - | wksp restore W -`). */
static void self_feed(int style, uint32_t threads) {
  wksp_t *w = anon_filled("lk_self", 8);
  CHECK(w);
  uint8_t before[32], after[32];
  ws_digest(w, before);
  uint32_t seed = wksp_seed(w);
  int p[2];
  CHECK(!pipe(p));
  pid_t pid = fork();
  if (pid == 0) {
    signal(SIGPIPE, SIG_IGN);
    close(p[0]);
    wksp_checkpt_opts_t co = {.style = style, .threads = 2};
    int rc = wksp_checkpt_fd(w, p[1], "-", &co);
    _exit(rc == WKSP_ERR_FAIL && wksp_errno() == EPIPE ? 0 : 1);
  }
  close(p[1]);
  CHECK(pid > 0);
  events_t e = {0};
  wksp_restore_opts_t o = {.seed = 99, .threads = threads, .lock_wait = events_record, .lock_wait_ctx = &e};
  int rc = wksp_restore_fd(w, p[0], "-", &o);
  char msg[1024];
  snprintf(msg, sizeof msg, "%s", wksp_errmsg());
  close(p[0]);
  int st = 0;
  CHECK(waitpid(pid, &st, 0) == pid);
  CHECK_ERR(rc, WKSP_ERR_DEADLK);
  char want[64];
  snprintf(want, sizeof want, "locked by process %lld,", (long long)pid);
  CHECK(strstr(msg, want));
  CHECK(strstr(msg, "cannot be restored from a pipe fed by a checkpoint of itself"));
  CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0); /* the writer saw EPIPE */
  CHECK(e.n == 1 && e.ev[0].done);             /* no notice: the error says it */
  ws_digest(w, after);
  CHECK(!memcmp(before, after, 32));
  CHECK_EQ(wksp_seed(w), seed);
  CHECK_OK(wksp_verify(w));
  wksp_delete_anon(w);
}

static void test_self_feed_v3_pipelined(void) { self_feed(WKSP_CHECKPT_STYLE_V3, 4); }
static void test_self_feed_v2_sequential(void) { self_feed(WKSP_CHECKPT_STYLE_V2, 1); }

/* The holder writes the whole (small) checkpoint into the pipe, which
 * does not fill, then releases the lock a little later: waited for, no
 * notice, restored. */
static void test_feed_not_full_waits(void) {
  wksp_t *w = NULL;
  CHECK_OK(wksp_new_anon("lk_small", 1 << 20, WKSP_PAGE_NORMAL, 3, 64, &w));
  uint64_t rng = 5;
  ws_fill(w, 20, 500, 1, &rng);
  char path[96];
  snprintf(path, sizeof path, "%s/c.ckpt", dir);
  CHECK_OK(wksp_checkpt(w, path, NULL));
  int fd = open(path, O_RDONLY);
  uint8_t buf[32768];
  long n = fd >= 0 ? read(fd, buf, sizeof buf) : -1;
  if (fd >= 0) close(fd);
  CHECK(n > 0 && n < (long)sizeof buf);
  uint8_t before[32], after[32];
  ws_digest(w, before);
  int p[2];
  CHECK(!pipe(p));
  pid_t pid = fork();
  if (pid == 0) {
    close(p[0]);
    if (wksp_private_lock(w)) _exit(1);
    if (write(p[1], buf, (size_t)n) != n) _exit(2);
    usleep(600000);
    wksp_private_unlock(w);
    close(p[1]);
    _exit(0);
  }
  close(p[1]);
  CHECK(pid > 0);
  events_t e = {0};
  wksp_restore_opts_t o = {.seed = 3, .lock_wait = events_record, .lock_wait_ctx = &e};
  int rc = wksp_restore_fd(w, p[0], "-", &o);
  close(p[0]);
  int st = 0;
  CHECK(waitpid(pid, &st, 0) == pid);
  CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
  CHECK_OK(rc);
  CHECK_EQ(e.n, 1);
  CHECK(e.ev[0].done && e.ev[0].pid == pid && e.ev[0].waited_ns >= 300000000ull);
  ws_digest(w, after);
  CHECK(!memcmp(before, after, 32));
  unlink(path);
  wksp_delete_anon(w);
}

int main(void) {
  alarm(120); /* the self-fed restore waited forever before: fail, do not hang */
  const char *tmp = getenv("TMPDIR");
  snprintf(dir, sizeof dir, "%s/wksp-lock-XXXXXX", tmp && *tmp ? tmp : "/tmp");
  if (!mkdtemp(dir)) return 1;
  TEST_RUN(test_checkpt_reports_wait);
  TEST_RUN(test_restore_reports_wait);
  TEST_RUN(test_self_feed_v3_pipelined);
  TEST_RUN(test_self_feed_v2_sequential);
  TEST_RUN(test_feed_not_full_waits);
  rmdir(dir);
  return test_done();
}
