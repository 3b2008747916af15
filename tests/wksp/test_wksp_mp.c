/* Concurrency: several processes (fork) and several threads allocate,
 * write a pattern, check it and free in one shared workspace for a couple
 * of seconds.  Any overlap between two workers' allocations shows up as a
 * damaged pattern.  Afterwards every allocation a worker still holds is
 * intact and owned by it (tag_query), and wksp_verify passes. */
#include "../lib/test.h"
#include "../../src/wksp/wksp_private.h"

#include <pthread.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

enum { WORKERS = 4, LIVE_MAX = 64, PART_MAX = 2048, DATA_MAX = 8 << 20 };

typedef struct {
  uint64_t gaddr, sz;
} held_t;

typedef struct {
  int errors;
  uint64_t ops, full;
  size_t n;
  held_t held[LIVE_MAX];
} result_t;

static uint8_t pat(uint64_t gaddr, uint64_t tag, uint64_t i) { return (uint8_t)((gaddr >> 4) + i * 7 + tag); }

static int pattern_ok(wksp_t *w, held_t h, uint64_t tag) {
  const uint8_t *p = wksp_laddr(w, h.gaddr);
  for (uint64_t i = 0; i < h.sz; i++)
    if (p[i] != pat(h.gaddr, tag, i)) return 0;
  return 1;
}

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* One worker: tag = id + 1 identifies its allocations. */
static void worker(wksp_t *w, int id, double seconds, result_t *res) {
  uint64_t rng = 0x1234567ull * (uint64_t)(id + 1), tag = (uint64_t)id + 1;
  static const uint64_t aligns[] = {0, 1, 8, 64, 256};
  res->n = 0;
  double end = now() + seconds;
  while (now() < end) {
    for (int k = 0; k < 64; k++, res->ops++) {
      if (res->n < LIVE_MAX && (res->n == 0 || test_rng(&rng) % 2)) {
        held_t h = {0, 1 + test_rng(&rng) % 8192};
        int r = wksp_alloc(w, aligns[test_rng(&rng) % 5], h.sz, tag, &h.gaddr);
        if (r == WKSP_ERR_FULL) {
          res->full++;
          continue;
        }
        if (r) {
          fprintf(stderr, "worker %d: alloc: %s\n", id, wksp_errmsg());
          res->errors++;
          return;
        }
        uint8_t *p = wksp_laddr(w, h.gaddr);
        for (uint64_t i = 0; i < h.sz; i++) p[i] = pat(h.gaddr, tag, i);
        res->held[res->n++] = h;
      } else {
        size_t i = test_rng(&rng) % res->n;
        held_t h = res->held[i];
        uint64_t t = 0;
        wksp_tag(w, h.gaddr + h.sz - 1, &t);
        if (!pattern_ok(w, h, tag) || t != tag) {
          fprintf(stderr, "worker %d: allocation %" PRIu64 "+%" PRIu64 " damaged (tag %" PRIu64 ")\n", id, h.gaddr,
                  h.sz, t);
          res->errors++;
        }
        if (wksp_free(w, h.gaddr + test_rng(&rng) % h.sz)) {
          fprintf(stderr, "worker %d: free: %s\n", id, wksp_errmsg());
          res->errors++;
        }
        res->held[i] = res->held[--res->n];
      }
    }
  }
  for (size_t i = 0; i < res->n; i++) res->errors += !pattern_ok(w, res->held[i], (uint64_t)id + 1);
}

/* Every worker's remaining allocations are exactly its tag's partitions. */
static int final_check(wksp_t *w, const result_t *res) {
  if (wksp_verify(w)) return fprintf(stderr, "verify: %s\n", wksp_errmsg()), 0;
  for (int id = 0; id < WORKERS; id++) {
    const result_t *r = &res[id];
    wksp_part_t parts[LIVE_MAX];
    size_t cnt = 0;
    uint64_t tag = (uint64_t)id + 1;
    if (r->errors || wksp_tag_query(w, &tag, 1, parts, LIVE_MAX, &cnt) || cnt != r->n)
      return fprintf(stderr, "worker %d: %d errors, holds %zu, tag_query %zu\n", id, r->errors, r->n, cnt), 0;
    for (size_t i = 0; i < r->n; i++) {
      int found = 0;
      for (size_t k = 0; k < cnt; k++)
        found |= r->held[i].gaddr >= parts[k].gaddr_lo && r->held[i].gaddr + r->held[i].sz <= parts[k].gaddr_hi;
      if (!found || !pattern_ok(w, r->held[i], tag))
        return fprintf(stderr, "worker %d: allocation %zu lost or damaged\n", id, i), 0;
    }
  }
  return 1;
}

/* A named workspace "mp" holding exactly DATA_MAX data bytes, in a private
 * temporary WKSP_SHMEM_DIR; children inherit the attachment. */
static char shm_dir[64];
static wksp_t *shared_wksp(size_t *sz) {
  if (!shm_dir[0]) {
    strcpy(shm_dir, "/tmp/wksp-mp-XXXXXX");
    if (!mkdtemp(shm_dir)) return NULL;
    setenv("WKSP_SHMEM_DIR", shm_dir, 1);
  }
  *sz = wksp_footprint(PART_MAX, DATA_MAX);
  wksp_t *w = NULL;
  if (wksp_new_named("mp", *sz, WKSP_PAGE_NORMAL, 0600, 1, PART_MAX) || wksp_attach("mp", 0, &w)) {
    fprintf(stderr, "shared_wksp: %s\n", wksp_errmsg());
    return NULL;
  }
  return w;
}

static void shared_wksp_done(wksp_t *w) {
  wksp_detach(w);
  wksp_delete_named("mp");
}

static void test_processes(void) {
  size_t sz;
  wksp_t *w = shared_wksp(&sz);
  CHECK(w);
  result_t *res = mmap(NULL, sizeof *res * WORKERS, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  CHECK(res != MAP_FAILED);
  pid_t pid[WORKERS];
  for (int i = 0; i < WORKERS; i++) {
    pid[i] = fork();
    CHECK(pid[i] >= 0);
    if (!pid[i]) {
      worker(w, i, 3.0, &res[i]);
      _exit(res[i].errors ? 1 : 0);
    }
  }
  int bad = 0;
  for (int i = 0; i < WORKERS; i++) {
    int st;
    waitpid(pid[i], &st, 0);
    bad += !WIFEXITED(st) || WEXITSTATUS(st);
  }
  uint64_t ops = 0;
  for (int i = 0; i < WORKERS; i++) ops += res[i].ops;
  fprintf(stderr, "processes: %" PRIu64 " operations\n", ops);
  int ok = final_check(w, res);
  munmap(res, sizeof *res * WORKERS);
  shared_wksp_done(w);
  CHECK_EQ(bad, 0);
  CHECK(ok);
  CHECK(ops > 1000);
}

typedef struct {
  wksp_t *w;
  int id;
  result_t *res;
} targ_t;

static void *thread_main(void *p) {
  targ_t *a = p;
  worker(a->w, a->id, 1.0, a->res);
  return NULL;
}

static void test_threads(void) {
  size_t sz;
  wksp_t *w = shared_wksp(&sz);
  CHECK(w);
  static result_t res[WORKERS];
  pthread_t th[WORKERS];
  targ_t args[WORKERS];
  for (int i = 0; i < WORKERS; i++) {
    args[i] = (targ_t){w, i, &res[i]};
    CHECK_EQ(pthread_create(&th[i], NULL, thread_main, &args[i]), 0);
  }
  for (int i = 0; i < WORKERS; i++) pthread_join(th[i], NULL);
  int ok = final_check(w, res);
  shared_wksp_done(w);
  CHECK(ok);
}

/* A reader attached read-only (its own PROT_READ mapping) queries while two
 * writers work: it never crashes or writes, and every answer it gets is
 * consistent; it may only give up with "no consistent read". */
static void reader(double seconds, result_t *res) {
  wksp_t *w;
  if (wksp_attach("mp", WKSP_RDONLY, &w)) {
    res->errors++;
    return;
  }
  double end = now() + seconds;
  while (now() < end) {
    wksp_usage_t u;
    int r = wksp_usage(w, NULL, 0, &u);
    if (!r && (u.used_sz + u.free_sz != wksp_data_max(w) || u.total_cnt != u.used_cnt + u.free_cnt)) res->errors++;
    int v = wksp_verify(w);
    for (int i = 0; i < 2; i++) {
      int e = i ? v : r;
      if (!e) res->ops++;
      else if (e == WKSP_ERR_CORRUPT && strstr(wksp_errmsg(), "no consistent read")) res->full++;
      else {
        fprintf(stderr, "reader: %d %s\n", e, wksp_errmsg());
        res->errors++;
      }
    }
  }
}

static void test_rdonly_reader(void) {
  size_t sz;
  wksp_t *w = shared_wksp(&sz);
  CHECK(w);
  result_t *res = mmap(NULL, sizeof *res * 3, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  CHECK(res != MAP_FAILED);
  pid_t pid[3];
  for (int i = 0; i < 3; i++) {
    pid[i] = fork();
    CHECK(pid[i] >= 0);
    if (!pid[i]) {
      if (i < 2) worker(w, i, 1.0, &res[i]);
      else reader(1.0, &res[i]);
      _exit(res[i].errors ? 1 : 0);
    }
  }
  int bad = 0;
  for (int i = 0; i < 3; i++) {
    int st;
    waitpid(pid[i], &st, 0);
    bad += !WIFEXITED(st) || WEXITSTATUS(st);
  }
  fprintf(stderr, "reader: %" PRIu64 " consistent answers, %" PRIu64 " gave up\n", res[2].ops, res[2].full);
  int ok = res[2].ops > 0;
  munmap(res, sizeof *res * 3);
  shared_wksp_done(w);
  CHECK_EQ(bad, 0);
  CHECK(ok);
}

int main(void) {
  TEST_RUN(test_rdonly_reader);
  TEST_RUN(test_processes);
  TEST_RUN(test_threads);
  if (shm_dir[0]) rmdir(shm_dir);
  return test_done();
}
