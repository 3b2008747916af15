/* Kill test: for every crash point of every mutating operation, a child
 * process stops itself there while holding the workspace lock and is
 * SIGKILLed.  The parent must then allocate at once (lock recovered, metadata
 * repaired), wksp_verify must pass, every allocation that existed before is
 * still there with its tag, extent and contents, and the interrupted
 * operation is either complete or absent (all or nothing for bulk ones). */
#include "../lib/test.h"
#include "../lib/crash_points.h"

#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>


enum { PART_MAX = 64, DATA_MAX = 1 << 20, NEW_TAG = 5, LIST_MAX = PART_MAX };

static int stop_point;

static void stop_hook(int point) {
  if (point == stop_point) raise(SIGSTOP);
}

typedef struct {
  wksp_part_t p[LIST_MAX];
  size_t n;
} alist_t;

static int alist_get(wksp_t *w, alist_t *a) {
  wksp_part_t all[LIST_MAX];
  size_t n;
  int r = wksp_part_list(w, all, LIST_MAX, &n);
  a->n = 0;
  for (size_t i = 0; !r && i < n && i < LIST_MAX; i++)
    if (all[i].tag) a->p[a->n++] = all[i];
  return r;
}

static int alist_has(const alist_t *a, wksp_part_t p) {
  for (size_t i = 0; i < a->n; i++)
    if (!memcmp(&a->p[i], &p, sizeof p)) return 1;
  return 0;
}

static uint8_t pattern(uint64_t gaddr) { return (uint8_t)(gaddr * 131 + (gaddr >> 8)); }

static void fill(wksp_t *w, wksp_part_t p) {
  uint8_t *b = (uint8_t *)w;
  for (uint64_t g = p.gaddr_lo; g < p.gaddr_hi; g++) b[g] = pattern(g);
}

static int intact(wksp_t *w, wksp_part_t p) {
  const uint8_t *b = (const uint8_t *)w;
  for (uint64_t g = p.gaddr_lo; g < p.gaddr_hi; g++)
    if (b[g] != pattern(g)) return 0;
  return 1;
}

/* The starting layout: allocations with tags 1..3, and a tag-9 allocation B
 * whose neighbours are both free, so a free of B merges on both sides. */
static int setup(wksp_t *w, uint64_t *b_gaddr) {
  uint64_t g, a, c;
  for (int i = 0; i < 8; i++)
    if (wksp_alloc(w, 1 << (i % 5), 300 + 77 * (uint64_t)i, 1 + (uint64_t)i % 3, &g)) return 0;
  if (wksp_alloc(w, 1, 111, 9, &a) || wksp_alloc(w, 1, 222, 9, b_gaddr) || wksp_alloc(w, 1, 333, 9, &c) ||
      wksp_alloc(w, 1, 444, 2, &g))
    return 0;
  if (wksp_free(w, a) || wksp_free(w, c)) return 0;
  alist_t l;
  if (alist_get(w, &l)) return 0;
  for (size_t i = 0; i < l.n; i++) fill(w, l.p[i]);
  return 1;
}

static wksp_part_t replacement[2];

static int child_op(wksp_t *w, int op, uint64_t b_gaddr) {
  uint64_t g, tag2 = 2;
  int r;
  switch (op) {
  case OP_ALLOC: return wksp_alloc(w, 4096, 1000, NEW_TAG, &g);
  case OP_FREE: return wksp_free(w, b_gaddr);
  case OP_TAG_FREE: return wksp_tag_free(w, &tag2, 1);
  case OP_RESET: return wksp_reset(w, 1234);
  case OP_REBUILD: return wksp_rebuild(w, 4321);
  case OP_REPLACE:
    if ((r = wksp_private_lock(w))) return r;
    r = wksp_private_replace(w, replacement, 2, 99);
    wksp_private_unlock(w);
    return r;
  }
  return -1;
}

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Forks a child that runs op and stops at `point`; kills it there.
 * Returns 1 if it stopped and was killed. */
static int kill_at(wksp_t *w, int op, int point, uint64_t b_gaddr) {
  pid_t pid = fork();
  if (pid < 0) return 0;
  if (!pid) {
    stop_point = point;
    wksp_private_test_hook = stop_hook;
    child_op(w, op, b_gaddr);
    _exit(3); /* the point was never reached */
  }
  int st;
  if (waitpid(pid, &st, WUNTRACED) != pid) return 0;
  int stopped = WIFSTOPPED(st);
  kill(pid, SIGKILL);
  waitpid(pid, &st, 0);
  if (!stopped) fprintf(stderr, "%s: point %d not reached (status 0x%x)\n", op_name[op], point, st);
  return stopped;
}

/* The interrupted operation is all or nothing and nothing else changed. */
static int outcome_ok(wksp_t *w, int op, const alist_t *before, const alist_t *after, uint64_t b_gaddr) {
  size_t kept = 0, extra = 0;
  for (size_t i = 0; i < before->n; i++) {
    if (!alist_has(after, before->p[i])) continue;
    kept++;
    if (!intact(w, before->p[i])) return fprintf(stderr, "allocation %zu contents damaged\n", i), 0;
  }
  for (size_t i = 0; i < after->n; i++) extra += !alist_has(before, after->p[i]);
  size_t tag2 = 0, b_gone = 1;
  for (size_t i = 0; i < before->n; i++) {
    tag2 += before->p[i].tag == 2;
    if (b_gaddr >= before->p[i].gaddr_lo && b_gaddr < before->p[i].gaddr_hi) b_gone = !alist_has(after, before->p[i]);
  }
  int ok;
  switch (op) {
  case OP_ALLOC:
    ok = kept == before->n && extra <= 1;
    for (size_t i = 0; ok && i < after->n; i++)
      if (!alist_has(before, after->p[i])) ok = after->p[i].tag == NEW_TAG;
    break;
  case OP_FREE: ok = !extra && kept + b_gone == before->n; break;
  case OP_TAG_FREE: ok = !extra && (kept == before->n || kept == before->n - tag2) && wksp_seed(w) == 3; break;
  case OP_RESET:
    /* All or nothing, the seed included. */
    ok = !extra && ((kept == before->n && wksp_seed(w) == 3) || (kept == 0 && wksp_seed(w) == 1234));
    break;
  case OP_REPLACE:
    ok = (kept == before->n && !extra && wksp_seed(w) == 3) ||
         (after->n == 2 && !memcmp(after->p, replacement, sizeof replacement) && wksp_seed(w) == 99);
    break;
  default: ok = kept == before->n && !extra && (wksp_seed(w) == 3 || wksp_seed(w) == 4321); break;
  }
  if (!ok)
    fprintf(stderr, "%s: before %zu allocations, kept %zu, %zu new, after %zu\n", op_name[op], before->n, kept,
            extra, after->n);
  return ok;
}


static void run_scenario(int op, int point, int then_recovery_point) {
  size_t sz = wksp_footprint(PART_MAX, DATA_MAX);
  void *mem = mmap(NULL, sz, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  CHECK(mem != MAP_FAILED);
  wksp_t *w;
  CHECK_OK(wksp_new(mem, "kill", 3, PART_MAX, DATA_MAX, &w));
  uint64_t b_gaddr = 0;
  CHECK(setup(w, &b_gaddr));
  uint64_t glo = wksp_gaddr_lo(w);
  replacement[0] = (wksp_part_t){glo + 5000, glo + 6000, 40};
  replacement[1] = (wksp_part_t){glo + 6000, glo + 9000, 41};
  alist_t before, after;
  CHECK_OK(alist_get(w, &before));
  int stopped = kill_at(w, op, point, b_gaddr);
  /* Optionally a second process dies inside the recovery of the first. */
  int stopped2 = !then_recovery_point || kill_at(w, OP_REBUILD, then_recovery_point, 0);
  double t0 = now();
  uint64_t g;
  int r = wksp_alloc(w, 0, 64, 77, &g);
  double dt = now() - t0;
  int v = wksp_verify(w);
  int got = alist_get(w, &after);
  if (!r) {
    /* The parent's own allocation is not part of the outcome. */
    size_t k = 0;
    for (size_t i = 0; i < after.n; i++)
      if (after.p[i].tag != 77) after.p[k++] = after.p[i];
    after.n = k;
  }
  int ok = outcome_ok(w, op, &before, &after, b_gaddr);
  munmap(mem, sz);
  if (!stopped || !stopped2 || r || v || !ok)
    fprintf(stderr, "scenario %s point %d (+%d): alloc %d verify %d: %s\n", op_name[op], point,
            then_recovery_point, r, v, wksp_errmsg());
  CHECK(stopped);
  CHECK(stopped2);
  CHECK_OK(r);
  CHECK(dt < 1.0);
  CHECK_OK(v);
  CHECK_OK(got);
  CHECK(ok);
}


static void test_every_point(void) {
  int covered[WKSP_HOOK_CNT] = {0};
  for (size_t i = 0; i < sizeof scenarios / sizeof scenarios[0]; i++) {
    int before = test_cur_failed;
    run_scenario(scenarios[i].op, scenarios[i].point, 0);
    if (test_cur_failed && !before) return;
    covered[scenarios[i].point] = 1;
  }
  for (int p = 1; p < WKSP_HOOK_CNT; p++) {
    if (!covered[p]) fprintf(stderr, "hook point %d has no scenario\n", p);
    CHECK(covered[p]);
  }
}

/* A crash inside recovery: the first child dies after splitting (leaving
 * two adjacent free partitions), the second dies while its recovery merges
 * them or rebuilds; or the first dies just after committing a bulk
 * journal and the second halfway through replaying it (the replay is the
 * commit's own apply, with its crash point).  The parent's recovery still
 * succeeds. */
static void test_crash_in_recovery(void) {
  run_scenario(OP_ALLOC, WKSP_HOOK_ALLOC_SPLIT, WKSP_HOOK_REBUILD_MERGE);
  if (test_cur_failed) return;
  run_scenario(OP_TAG_FREE, WKSP_HOOK_BULK_APPLY, WKSP_HOOK_REBUILD_INDEX);
  if (test_cur_failed) return;
  run_scenario(OP_FREE, WKSP_HOOK_FREE_COMMIT, WKSP_HOOK_REBUILD_END);
  if (test_cur_failed) return;
  run_scenario(OP_TAG_FREE, WKSP_HOOK_BULK_COMMIT, WKSP_HOOK_BULK_APPLY);
  if (test_cur_failed) return;
  run_scenario(OP_REPLACE, WKSP_HOOK_BULK_COMMIT, WKSP_HOOK_BULK_APPLY);
}

/* A process that dies holding the lock outside any change (e.g. a
 * checkpoint writer): the next locker gets EOWNERDEAD, checks, goes on. */
static void test_death_while_locked(void) {
  size_t sz = wksp_footprint(PART_MAX, DATA_MAX);
  void *mem = mmap(NULL, sz, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  CHECK(mem != MAP_FAILED);
  wksp_t *w;
  CHECK_OK(wksp_new(mem, "kill", 3, PART_MAX, DATA_MAX, &w));
  uint64_t b;
  CHECK(setup(w, &b));
  alist_t before, after;
  CHECK_OK(alist_get(w, &before));
  pid_t pid = fork();
  CHECK(pid >= 0);
  if (!pid) {
    if (wksp_private_lock(w)) _exit(1);
    raise(SIGKILL);
  }
  int st;
  waitpid(pid, &st, 0);
  CHECK(WIFSIGNALED(st));
  uint64_t g;
  int r = wksp_alloc(w, 0, 10, 77, &g);
  int v = wksp_verify(w);
  int l = alist_get(w, &after);
  munmap(mem, sz);
  CHECK_OK(r);
  CHECK_OK(v);
  CHECK_OK(l);
  CHECK_EQ(after.n, before.n + 1);
}

int main(void) {
  TEST_RUN(test_death_while_locked);
  TEST_RUN(test_every_point);
  TEST_RUN(test_crash_in_recovery);
  return test_done();
}
