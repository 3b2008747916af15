/* Promise 5: stress.  Four processes run mixed operations on one named
 * workspace while a fifth takes checkpoints in a loop; every checkpoint
 * restores to a workspace that verifies; no allocation is lost.
 *
 * Workers (processes, each attached by name) run WKSP_REL_STRESS_OPS
 * operations each (quick 3000, long 1000000): alloc (random size and
 * alignment, one of the worker's 4 tags, whole partition filled with a
 * pattern of (address, tag)), free (after checking the bytes), check (bytes
 * and wksp_tag), tag_free of one own tag, wksp_usage and wksp_tag_query of
 * own tags (counts must match the worker's own list exactly).
 *
 * The checkpointer alternates v2/v3, 1/2 threads, file/pipe; it restores
 * every checkpoint into a private workspace of the same shape, verifies it,
 * and checks every restored allocation: its tag is a worker's, and its bytes
 * hold the pattern, except for at most one allocation per worker (one that
 * worker was filling while the checkpoint ran: the lock does not stop
 * writes into allocations).
 *
 * At the end the workspace verifies and its allocations are exactly the
 * union of the workers' own lists, bytes intact. */
#include "../lib/rel.h"

#include <inttypes.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>

enum { WORKERS = 4, LIVE_MAX = 1500, PART_MAX = 16384 };
#define WS_NAME "relstress"

typedef struct {
  volatile int stop;
  volatile int workers_done;
  struct {
    uint64_t ops, allocs, frees, full, n;
    wksp_part_t live[LIVE_MAX];
  } w[WORKERS];
  uint64_t ckpts, checkpt_allocs, inflight, max_allocs, checkpt_bad;
  double checkpt_time, restore_time;
} shared_t;

static shared_t *sh;
static char shm_dir[256], checkpt_path[300];

static inline uint64_t mix(uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdull;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ull;
  return x ^ (x >> 33);
}

/* The bytes [lo, hi) of an allocation with tag: word g/8 of the pattern. */
static void fill(uint8_t *base, uint64_t lo, uint64_t hi, uint64_t tag) {
  uint64_t t = mix(tag), word = mix((lo >> 3) ^ t);
  for (uint64_t g = lo; g < hi; g++) {
    if (!(g & 7)) word = mix((g >> 3) ^ t);
    base[g] = (uint8_t)(word >> (8 * (g & 7)));
  }
}

static int intact(const uint8_t *base, uint64_t lo, uint64_t hi, uint64_t tag) {
  uint64_t t = mix(tag), word = mix((lo >> 3) ^ t);
  for (uint64_t g = lo; g < hi; g++) {
    if (!(g & 7)) word = mix((g >> 3) ^ t);
    if (base[g] != (uint8_t)(word >> (8 * (g & 7)))) return 0;
  }
  return 1;
}

static uint64_t tag_of(int id, uint64_t k) { return 1000 * (uint64_t)(id + 1) + k % 4; }
static int worker_of(uint64_t tag) {
  int id = (int)(tag / 1000) - 1;
  return id >= 0 && id < WORKERS && tag % 1000 < 4 ? id : -1;
}

#define FAILW(...) (fprintf(stderr, "worker %d: ", id), fprintf(stderr, __VA_ARGS__), fputc('\n', stderr), 1)

/* One worker; returns the exit status. */
static int worker(int id, uint64_t ops) {
  wksp_t *w;
  if (wksp_attach(WS_NAME, 0, &w)) return FAILW("attach: %s", wksp_errmsg());
  uint8_t *base = (uint8_t *)w;
  uint64_t rng = 0x1234 + (uint64_t)id * 7919;
  wksp_part_t *live = sh->w[id].live;
  uint64_t n = 0;
  for (uint64_t i = 0; i < ops; i++) {
    uint64_t r = test_rng(&rng) % 100;
    if ((r < 50 && n < LIVE_MAX) || !n) {
      uint64_t sz = test_rng(&rng) % 16 ? 1 + test_rng(&rng) % 2048 : 1 + test_rng(&rng) % 65536;
      uint64_t align = test_rng(&rng) % 4 ? 0 : 1ull << (test_rng(&rng) % 13);
      uint64_t tag = tag_of(id, test_rng(&rng)), g, lo, hi;
      int rc = wksp_alloc_at_least(w, align, sz, tag, &g, &lo, &hi);
      if (rc == WKSP_ERR_FULL) {
        sh->w[id].full++;
        continue;
      }
      if (rc) return FAILW("alloc: %s", wksp_errmsg());
      fill(base, lo, hi, tag);
      live[n++] = (wksp_part_t){lo, hi, tag};
      sh->w[id].allocs++;
    } else if (r < 80) {
      uint64_t k = test_rng(&rng) % n;
      if (!intact(base, live[k].gaddr_lo, live[k].gaddr_hi, live[k].tag))
        return FAILW("allocation [%" PRIu64 ",%" PRIu64 ") damaged before free", live[k].gaddr_lo,
                     live[k].gaddr_hi);
      if (wksp_free(w, live[k].gaddr_lo + (live[k].gaddr_hi - live[k].gaddr_lo - 1) / 2))
        return FAILW("free: %s", wksp_errmsg());
      live[k] = live[--n];
      sh->w[id].frees++;
    } else if (r < 90) {
      uint64_t k = test_rng(&rng) % n, tag;
      if (wksp_tag(w, live[k].gaddr_hi - 1, &tag) || tag != live[k].tag)
        return FAILW("tag of [%" PRIu64 ",%" PRIu64 ") is %" PRIu64 ", want %" PRIu64, live[k].gaddr_lo,
                     live[k].gaddr_hi, tag, live[k].tag);
      if (!intact(base, live[k].gaddr_lo, live[k].gaddr_hi, live[k].tag)) return FAILW("allocation damaged");
    } else if (r < 91) {
      uint64_t tag = tag_of(id, test_rng(&rng));
      if (wksp_tag_free(w, &tag, 1)) return FAILW("tag_free: %s", wksp_errmsg());
      for (uint64_t k = 0; k < n;)
        if (live[k].tag == tag) live[k] = live[--n], sh->w[id].frees++;
        else k++;
    } else if (r < 97) {
      uint64_t tags[4] = {tag_of(id, 0), tag_of(id, 1), tag_of(id, 2), tag_of(id, 3)}, want = 0;
      wksp_usage_t u;
      if (wksp_usage(w, tags, 4, &u)) return FAILW("usage: %s", wksp_errmsg());
      for (uint64_t k = 0; k < n; k++) want += live[k].gaddr_hi - live[k].gaddr_lo;
      if (u.used_cnt != n || u.used_sz != want)
        return FAILW("usage says %" PRIu64 " allocations / %" PRIu64 " bytes, the worker holds %" PRIu64 " / %" PRIu64,
                     u.used_cnt, u.used_sz, n, want);
    } else {
      uint64_t tag = tag_of(id, test_rng(&rng)), want = 0;
      size_t cnt = 0;
      for (uint64_t k = 0; k < n; k++) want += live[k].tag == tag;
      if (wksp_tag_query(w, &tag, 1, NULL, 0, &cnt) || cnt != want)
        return FAILW("tag_query %" PRIu64 ": %zu, want %" PRIu64 " (%s)", tag, cnt, want,
                     wksp_errmsg());
    }
    sh->w[id].ops = i + 1;
  }
  for (uint64_t k = 0; k < n; k++)
    if (!intact(base, live[k].gaddr_lo, live[k].gaddr_hi, live[k].tag)) return FAILW("allocation damaged at the end");
  sh->w[id].n = n;
  wksp_detach(w);
  return 0;
}

/* Checks a restored copy; returns 0 if it holds. */
static int check_copy(wksp_t *r) {
  if (wksp_verify(r)) return fprintf(stderr, "checkpointer: restored copy does not verify: %s\n", wksp_errmsg()), 1;
  uint64_t n = 0;
  wksp_part_t *p = ws_allocs(r, &n);
  if (!p && n) return 1;
  int bad_per[WORKERS] = {0};
  const uint8_t *base = (const uint8_t *)r;
  for (uint64_t i = 0; i < n; i++) {
    int id = worker_of(p[i].tag);
    if (id < 0) {
      fprintf(stderr, "checkpointer: restored tag %" PRIu64 " belongs to no worker\n", p[i].tag);
      free(p);
      return 1;
    }
    if (!intact(base, p[i].gaddr_lo, p[i].gaddr_hi, p[i].tag)) bad_per[id]++;
  }
  free(p);
  sh->checkpt_allocs += n;
  if (n > sh->max_allocs) sh->max_allocs = n;
  for (int id = 0; id < WORKERS; id++) {
    sh->inflight += (uint64_t)bad_per[id];
    if (bad_per[id] > 1)
      return fprintf(stderr, "checkpointer: %d allocations of worker %d have wrong bytes\n", bad_per[id], id), 1;
  }
  return 0;
}

static int checkpointer(void) {
  wksp_t *w, *r;
  if (wksp_attach(WS_NAME, 0, &w)) return fprintf(stderr, "checkpointer: attach: %s\n", wksp_errmsg()), 1;
  r = ws_new("copy", 1, wksp_part_max(w), wksp_data_max(w));
  if (!r) return 1;
  for (uint64_t i = 0; !sh->stop; i++) {
    wksp_checkpt_opts_t o = {.style = 2 + (int)(i & 1), .threads = 1 + (uint32_t)((i >> 1) & 1)};
    wksp_restore_opts_t ro = {.seed = (uint32_t)i, .threads = 1 + (uint32_t)(i & 1)};
    int rc, rrc;
    double t0 = rel_now(), t1;
    if (i % 3 == 2) {
      rrc = ws_pipe_copy(w, &o, r, &ro, &rc);
      t1 = t0;
    } else {
      unlink(checkpt_path);
      rc = wksp_checkpt(w, checkpt_path, &o);
      t1 = rel_now();
      rrc = rc ? 0 : wksp_restore(r, checkpt_path, &ro);
    }
    if (rc || rrc) {
      fprintf(stderr, "checkpointer: checkpoint %" PRIu64 ": checkpt %d restore %d: %s\n", i, rc, rrc,
              wksp_errmsg());
      sh->checkpt_bad++;
      return 1;
    }
    sh->checkpt_time += t1 - t0;
    sh->restore_time += rel_now() - t1;
    if (check_copy(r)) {
      sh->checkpt_bad++;
      return 1;
    }
    sh->ckpts++;
  }
  unlink(checkpt_path);
  ws_free(r);
  wksp_detach(w);
  return 0;
}

static void test_stress(void) {
  uint64_t ops = rel_param("STRESS_OPS", 3000, 1000000);
  sh = mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  CHECK(sh != MAP_FAILED);
  CHECK_OK(wksp_new_named(WS_NAME, 48 << 20, WKSP_PAGE_NORMAL, 0600, 1, PART_MAX));
  double t0 = rel_now();
  pid_t pids[WORKERS + 1];
  fflush(NULL);
  for (int i = 0; i <= WORKERS; i++) {
    pids[i] = fork();
    CHECK(pids[i] >= 0);
    if (!pids[i]) _exit(i < WORKERS ? worker(i, ops) : checkpointer());
  }
  int ok = 1;
  for (int i = 0; i < WORKERS; i++) {
    int st;
    waitpid(pids[i], &st, 0);
    if (!WIFEXITED(st) || WEXITSTATUS(st)) ok = 0, fprintf(stderr, "worker %d ended with status 0x%x\n", i, st);
  }
  double dt = rel_now() - t0;
  /* At least one checkpoint, even if the workers were quicker. */
  while (!sh->ckpts && !sh->checkpt_bad) usleep(1000);
  sh->stop = 1;
  int st;
  waitpid(pids[WORKERS], &st, 0);
  if (!WIFEXITED(st) || WEXITSTATUS(st)) ok = 0, fprintf(stderr, "checkpointer ended with status 0x%x\n", st);
  CHECK(ok);

  /* Final state: exactly the union of the workers' lists. */
  wksp_t *w;
  CHECK_OK(wksp_attach(WS_NAME, 0, &w));
  CHECK_OK(wksp_verify(w));
  uint64_t n = 0, want = 0, lost = 0, damaged = 0, total_ops = 0, allocs = 0, full = 0;
  wksp_part_t *p = ws_allocs(w, &n);
  for (int id = 0; id < WORKERS; id++) {
    want += sh->w[id].n;
    total_ops += sh->w[id].ops;
    allocs += sh->w[id].allocs;
    full += sh->w[id].full;
    for (uint64_t k = 0; k < sh->w[id].n; k++) {
      wksp_part_t q = sh->w[id].live[k];
      int found = 0;
      for (uint64_t i = 0; i < n && !found; i++)
        found = p[i].gaddr_lo == q.gaddr_lo && p[i].gaddr_hi == q.gaddr_hi && p[i].tag == q.tag;
      lost += !found;
      damaged += found && !intact((const uint8_t *)w, q.gaddr_lo, q.gaddr_hi, q.tag);
    }
  }
  free(p);
  rel_figure("5", "stress",
             "%d processes x %" PRIu64 " mixed operations (%" PRIu64 " total, %.0f ops/s, %" PRIu64
             " allocations, %" PRIu64 " refused FULL) with a 5th process checkpointing: %" PRIu64
             " checkpoints taken, each restored and verified (up to %" PRIu64 " allocations each; %" PRIu64
             " allocations checked byte for byte, %" PRIu64 " caught mid-fill), %" PRIu64 " checkpoint failures; "
             "at the end %" PRIu64 " allocations held, %" PRIu64 " in the workspace, %" PRIu64 " lost, %" PRIu64
             " damaged (%.1f s)",
             WORKERS, ops, total_ops, (double)total_ops / dt, allocs, full, sh->ckpts, sh->max_allocs,
             sh->checkpt_allocs, sh->inflight, sh->checkpt_bad, want, n, lost, damaged, dt);
  CHECK_EQ(total_ops, WORKERS * ops);
  CHECK_EQ(lost, 0);
  CHECK_EQ(damaged, 0);
  CHECK_EQ(n, want);
  CHECK(sh->ckpts > 0);
  wksp_detach(w);
  wksp_delete_named(WS_NAME);
  munmap(sh, sizeof *sh);
}

int main(void) {
  snprintf(shm_dir, sizeof shm_dir, "/tmp/wksp-rel-stress-%d-XXXXXX", (int)getpid());
  if (!mkdtemp(shm_dir)) return 1;
  setenv("WKSP_SHMEM_DIR", shm_dir, 1);
  snprintf(checkpt_path, sizeof checkpt_path, "/tmp/wksp-rel-stress-%d.ckpt", (int)getpid());
  signal(SIGPIPE, SIG_IGN);
  TEST_RUN(test_stress);
  test_rmdir(shm_dir);
  return test_done();
}
